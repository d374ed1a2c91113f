"""ApplicationOnboarding end to end: Prefect harness, sandbox GitHub, real control plane."""

from __future__ import annotations

import pytest
import yaml

from blocks.platform.workflows import ApplicationOnboardingRequest
from flows.platform.application_onboarding import application_onboarding
from flows.platform.results import ApplicationOnboardingResult
from sandbox.run import DEFAULT_GITHUB_ORG, Sandbox
from tests.flows.platform.support import (
    ControlPlaneServer,
    Domain,
    flow_run_id,
    read_artifacts,
    run,
)

CREATE_REPO = rf"/api/v3/orgs/{DEFAULT_GITHUB_ORG}/repos$"


def onboard(app_id: str):
    request = ApplicationOnboardingRequest(application_id=app_id)
    return run(application_onboarding(request=request, return_state=True))


def test_onboarding_creates_the_base_repository_and_seeds_its_configuration(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    app_id = domain.application()

    state = onboard(app_id)

    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, ApplicationOnboardingResult)
    repo = sandbox.github.state()["repos"][f"{DEFAULT_GITHUB_ORG}/{app_id}"]
    assert repo["private"] is True
    files = repo["files"][repo["default_branch"]]
    assert {"README.md", "catalog-info.yaml"} <= set(files)
    assert f"name: {app_id}" in files["catalog-info.yaml"]
    assert "owner: payments" in files["catalog-info.yaml"]
    assert result.repository.html_url.endswith(f"/{DEFAULT_GITHUB_ORG}/{app_id}")
    assert domain.application_state(app_id)["status"] == "onboarded"
    assert domain.event_names(app_id) == [
        "application_created",
        "workflow_application_onboarding_completed",
    ]
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None
    assert (reported["workflow"], reported["result"], reported["retries"]) == (
        "ApplicationOnboarding",
        "success",
        0,
    )
    summary = [a for a in run(read_artifacts(flow_run_id(state))) if a.type == "markdown"]
    assert len(summary) == 1 and result.repository.html_url in str(summary[0].data)


def test_onboarding_again_changes_nothing(domain: Domain, sandbox: Sandbox) -> None:
    app_id = domain.application()
    assert onboard(app_id).is_completed()
    before = sandbox.github.state()["repos"][f"{DEFAULT_GITHUB_ORG}/{app_id}"]

    again = onboard(app_id)

    assert again.is_completed(), again.message
    result = again.result()
    assert result.repository.created is False
    assert result.files_created == []
    repos = [name for name in sandbox.github.state()["repos"] if name.endswith(f"/{app_id}")]
    assert repos == [f"{DEFAULT_GITHUB_ORG}/{app_id}"]
    after = sandbox.github.state()["repos"][repos[0]]
    assert after["branches"] == before["branches"]  # no new commit either


def test_transient_github_errors_are_retried_and_counted(
    domain: Domain, sandbox: Sandbox, control_plane_server: ControlPlaneServer
) -> None:
    app_id = domain.application()
    sandbox.github.server.faults.add(method="POST", path=CREATE_REPO, statuses=[503, 503, 200])

    state = onboard(app_id)

    assert state.is_completed(), state.message
    assert domain.application_state(app_id)["status"] == "onboarded"
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None and reported["retries"] == 2


@pytest.mark.parametrize("status, code", [(401, "unauthorized"), (403, "forbidden")])
def test_a_permanent_error_fails_at_once_and_marks_the_application_failed(
    status: int,
    code: str,
    domain: Domain,
    sandbox: Sandbox,
    control_plane_server: ControlPlaneServer,
) -> None:
    app_id = domain.application()
    # One scripted failure: had the task retried, the second attempt would have passed.
    sandbox.github.server.faults.add(method="POST", path=CREATE_REPO, statuses=[status])

    state = onboard(app_id)

    assert state.is_failed()
    assert f"[{code}]" in str(state.message)
    application = domain.application_state(app_id)
    assert application["status"] == "onboarding_failed"
    assert f"[{code}]" in application["status_reason"]
    failed = domain.events(app_id)[-1]
    assert failed["name"] == "workflow_application_onboarding_failed"
    assert (failed["result"], failed["payload"]["error_code"]) == ("error", code)
    reported = control_plane_server.reported_run(flow_run_id(state))
    assert reported is not None
    assert (reported["result"], reported["retries"]) == ("failure", 0)


def test_an_unknown_application_fails_with_not_found(domain: Domain) -> None:
    state = onboard("no-such-application")

    assert state.is_failed()
    assert "[not_found]" in str(state.message)


# Free text from the public API (up to 500 characters) must never break the documents the
# workflow writes: each ends up, unchanged, in a catalog-info.yaml that parses.
NASTY_DESCRIPTIONS = {
    "both-quotes": """It's the "payments" service""",
    "backslashes": "C:\\new\\table \\n is not a newline \\",
    "newlines": "line one\nline two: with a colon\n- and a list marker\n",
    "yaml-syntax": "key: value # not a comment {flow: [map]} &anchor *alias !tag |",
    "unicode": "Pagos con tarjeta: café, 支付, emoji \U0001f4b3, \u2028 separator",
    "leading-indicator": "- starts like a list item",
    "max-length": ("x\\'\"" * 125)[:500],
}


@pytest.mark.parametrize("description", NASTY_DESCRIPTIONS.values(), ids=NASTY_DESCRIPTIONS.keys())
def test_any_description_round_trips_into_the_catalog_file(
    domain: Domain, sandbox: Sandbox, description: str
) -> None:
    app_id = domain.application(description=description)

    state = onboard(app_id)

    assert state.is_completed(), state.message
    repo = sandbox.github.state()["repos"][f"{DEFAULT_GITHUB_ORG}/{app_id}"]
    files = repo["files"][repo["default_branch"]]
    catalog = yaml.safe_load(files["catalog-info.yaml"])
    assert catalog["metadata"] == {"name": app_id, "description": description}
    assert catalog["spec"]["owner"] == "payments"
