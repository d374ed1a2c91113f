"""No span, span attribute, span event or status holds a secret value.

The workflows run for real with tracing on: a provisioning (Vault generates values), a
rotation (Harbor issues a new robot secret, Vault stores it), a rotation whose bindings
fail after the value was stored, and a rotation routed through execution-workers (the new
value travels in a request body to the service). Then every finished span, serialized
whole (name, attributes, events, status, links, resource), is searched for every secret
value the test can know.
"""

from __future__ import annotations

import hvac
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from blocks.vault import VaultSecretBackend
from core.telemetry import flush_tracing
from sandbox.run import Sandbox
from tests.flows.platform.support import robot_secret
from tests.observability.conftest import Platform
from tests.observability.workflows import provision, rotate


def vault_values(sandbox: Sandbox) -> list[str]:
    client = hvac.Client(url=sandbox.vault.url, token=sandbox.vault.token)
    values = []
    for path in sandbox.vault.state()["mounts"]["secret"]:
        data = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point="secret", raise_on_deleted_version=True
        )
        values.append(str(data["data"]["data"]["value"]))
    return values


def test_no_span_holds_a_secret_value(platform: Platform, spans: InMemorySpanExporter) -> None:
    sandbox, domain = platform.sandbox, platform.domain
    env_id = domain.environment(secrets=("db-password", "api-key"))
    rotated, rotated_robot = domain.secret(environments=(env_id,))
    pending, pending_robot = domain.secret(environments=(env_id,))
    robots = [rotated_robot, pending_robot]
    before = [robot_secret(sandbox, r) for r in robots]
    spans.clear()

    provisioned = provision(env_id)
    completed = rotate(rotated)
    sandbox.endpoints.server.faults.add(path="/secrets/bindings/update", statuses=[403])
    failed = rotate(pending)

    assert [s.type.value for s in (provisioned, completed, failed)] == [
        "COMPLETED",
        "COMPLETED",
        "FAILED",
    ]
    flush_tracing()
    after = [robot_secret(sandbox, r) for r in robots]
    assert not set(before) & set(after)  # both robots were rotated
    backend = VaultSecretBackend.from_env()
    values = sorted(
        {
            *before,
            *after,
            *vault_values(sandbox),
            sandbox.harbor.robot_secret("robot$idp-rotator"),
            sandbox.github.token,
            sandbox.vault.token,
            backend.token.get_secret_value(),
        }
    )
    assert len(values) >= 8
    texts = [span.to_json(indent=None) for span in spans.get_finished_spans()]
    assert len(texts) > 50  # the runs were traced
    # Name a leaked value by its index, so the test output does not leak it either.
    leaks = sorted({f"value #{i}" for i, v in enumerate(values) for t in texts if v in t})
    assert leaks == []


def test_no_span_holds_a_secret_value_sent_through_execution_workers(
    platform: Platform, routed: str, spans: InMemorySpanExporter
) -> None:
    sandbox, domain = platform.sandbox, platform.domain
    env_id = domain.environment(secrets=())
    secret_id, robot = domain.secret(environments=(env_id,))
    old = robot_secret(sandbox, robot)
    spans.clear()

    state = rotate(secret_id)

    assert state.is_completed(), state.message
    flush_tracing()
    new = robot_secret(sandbox, robot)
    assert new != old
    texts = [span.to_json(indent=None) for span in spans.get_finished_spans()]
    assert any('"execution_workers.update_secret_bindings"' in t for t in texts)
    assert [v for v in (old, new) if any(v in t for t in texts)] == []
