"""Each workflow is a flow named as in the seed, taking one request model and returning one
result model (so the Prefect UI renders a form), with its result persisted."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from prefect import Flow

from blocks.platform.domain import WORKFLOWS
from blocks.platform.workflows import REQUEST_MODELS
from flows.platform import results
from flows.platform.application_onboarding import application_onboarding
from flows.platform.environment_provisioning import application_environment_provisioning
from flows.platform.secret_rotation import secret_rotation
from flows.platform.secret_rotation_sweep import secret_rotation_sweep

FLOWS: dict[str, Flow[Any, Any]] = {
    f.name: f
    for f in (
        application_onboarding,
        application_environment_provisioning,
        secret_rotation,
        secret_rotation_sweep,
    )
}


def test_every_workflow_of_the_seed_is_a_flow() -> None:
    assert set(FLOWS) == set(WORKFLOWS)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_flow_takes_one_request_and_returns_one_result(name: str) -> None:
    flow = FLOWS[name]
    signature = inspect.signature(flow.fn, eval_str=True)
    assert list(signature.parameters) == ["request"]
    assert signature.parameters["request"].annotation is REQUEST_MODELS[name]
    assert signature.return_annotation is getattr(results, f"{name}Result")
    schema = flow.parameters.model_dump()
    assert list(schema["properties"]) == ["request"]
    assert REQUEST_MODELS[name].__name__ in schema["definitions"]
    assert flow.persist_result is True
    assert inspect.iscoroutinefunction(flow.fn)
