"""Fitness functions: the conventions the seeds and the architecture promise, on the code.

- Workflow names are the seed's CamelCase names and every deployment runs a platform
  workflow; no top-level package shadows the standard library.
- Domain event names follow ``workflow_<aggregate>_<flow>_<completed|failed>`` and live
  in ``blocks.platform.domain.EventName`` only.
- Every public environment variable is read, with its default, by a settings class; the
  kernel's settings name no family or provider variable.
- The ``X-Internal-Token`` header is named in code only by ``core.internal_auth``.
- execution-workers make no state-changing control-plane call.
- Every error leaving a block or a service carries a ``core.errors`` code: blocks and
  services raise only domain errors, and both services' one handler answers each code
  with its status.

The other architecture checks live once each: import rules (layers, families, provider
libraries, what services and the sandbox may import) are import-linter contracts in
``pyproject.toml`` (``make layers``); step declarations in
``tests/tasks/platform/test_task_contracts.py``; vendor errors at run time in
``tests/test_fitness_blocks.py``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prefect import Flow

from blocks.platform import domain
from blocks.platform.domain import EVENT_NAME_PATTERN, PLATFORM_WORKFLOWS, WORKFLOWS, EventName
from blocks.platform.workflows import DEPLOYMENT_NAME
from core.errors import DomainError, all_error_classes
from core.internal_auth import INTERNAL_TOKEN_HEADER
from core.settings import EnvSettings

ROOT = Path(__file__).resolve().parent.parent
CAMEL_CASE = re.compile(r"^(?:[A-Z][a-z0-9]+)+$")
SNAKE_CASE = re.compile(r"^[a-z]+(?:_[a-z]+)+$")
# Seed 001: the workflows and the events their dashboards select (event=~"<prefix>.*").
SEED_WORKFLOW_EVENTS = {
    "ApplicationOnboarding": "workflow_application_onboarding_",
    "ApplicationEnvironmentProvisioning": "workflow_appenv_provisioning_",
    "SecretRotation": "workflow_secret_rotation_",
}
WORKFLOW_EVENT = re.compile(
    r"^workflow_(application|appenv|secret)_[a-z]+(?:_[a-z]+)*_(completed|failed)$"
)
# Codes are public API: add, never rename or remove (clients and dashboards match on them).
PUBLISHED_CODES = {
    "domain_error",
    "transient_error",
    "upstream_unavailable",
    "rate_limited",
    "upstream_timeout",
    "workflow_engine_unavailable",
    "permanent_error",
    "invalid_input",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "illegal_transition",
    "secret_locked",
    "resource_mismatch",
    "precondition_failed",
    "upstream_rejected",
}


def modules(package: str, *, skip: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if any(part in skip for part in relative.parts):
            continue
        found.append((".".join(relative.with_suffix("").parts).removesuffix(".__init__"), path))
    return found


def objects_of(package: str, kind: type) -> list[Any]:
    found = []
    for name, _ in modules(package):
        module = importlib.import_module(name)
        found += [v for v in vars(module).values() if isinstance(v, kind)]
    return found


# -- workflow and step names ------------------------------------------------------------
def test_every_flow_is_a_platform_workflow_named_in_camel_case() -> None:
    names = {flow.name for flow in objects_of("flows", Flow)}
    assert names <= set(PLATFORM_WORKFLOWS)
    assert set(WORKFLOWS) <= names
    assert [n for n in PLATFORM_WORKFLOWS if not CAMEL_CASE.match(n)] == []
    assert set(SEED_WORKFLOW_EVENTS) <= set(WORKFLOWS)


def test_every_deployment_runs_a_platform_workflow() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = config["deployments"]
    assert deployments
    for deployment in deployments:
        path, attribute = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, attribute)
        assert isinstance(flow, Flow) and flow.name in PLATFORM_WORKFLOWS, deployment
        assert deployment["name"] == DEPLOYMENT_NAME


# -- domain event names -----------------------------------------------------------------
def test_event_names_follow_the_convention() -> None:
    names = [event.value for event in EventName]
    assert [n for n in names if not SNAKE_CASE.match(n) or not EVENT_NAME_PATTERN.match(n)] == []
    workflow_events = [n for n in names if n.startswith("workflow_")]
    assert [n for n in workflow_events if not WORKFLOW_EVENT.match(n)] == []
    for workflow, prefix in SEED_WORKFLOW_EVENTS.items():
        mine = sorted(n for n in workflow_events if n.startswith(prefix))
        assert mine == [f"{prefix}completed", f"{prefix}failed"], workflow


def string_constants(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


@pytest.mark.parametrize("package", ["flows", "tasks", "blocks", "services"])
def test_event_names_are_written_only_in_the_domain_module(package: str) -> None:
    """Code names events through ``EventName``; a literal is a typo waiting to happen."""
    names = {event.value for event in EventName}
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {text}"
        for _, path in modules(package, skip=("migrations",))
        if path != ROOT / "blocks" / "platform" / "domain.py"
        for line, text in string_constants(path)
        if text in names or WORKFLOW_EVENT.match(text)
    ]
    assert offenders == []


# -- settings: per consumer, with the public variable names ------------------------------
# Every environment variable the platform reads, with its default: public contract (README,
# docs/*.md, deployments). Add names; never rename one or change its default.
PUBLIC_VARIABLES: dict[str, Any] = {
    "GITHUB_TOKEN": None,
    "GITHUB_API_URL": "https://api.github.com",
    "GITHUB_ORG": None,
    "HARBOR_URL": None,
    "HARBOR_ROBOT_USERNAME": None,
    "HARBOR_ROBOT_PASSWORD": None,
    "HARBOR_PROJECT": None,
    "APPENV_SECRETS_ENDPOINT": None,
    "APPENV_SECRET_BINDINGS_ENDPOINT": None,
    "APPENV_GITOPS_VERIFY_ENDPOINT": None,
    "SECRET_BINDINGS_UPDATE_ENDPOINT": None,
    "VAULT_ADDR": None,
    "VAULT_TOKEN": None,
    "VAULT_KV_MOUNT": "secret",
    "INTERNAL_AUTH_TOKEN": None,
    "CONTROL_PLANE_URL": "http://127.0.0.1:8080",
    "EXECUTION_WORKERS_URL": "http://127.0.0.1:8081",
    "IDP_GIT_BLOCK": "idp-github/default",
    "IDP_REGISTRY_BLOCK": "idp-harbor/default",
    "IDP_SECRET_BACKEND_BLOCK": "idp-vault-secret-backend/default",
    "IDP_SECRET_BINDINGS_BLOCK": "idp-http-secret-backend/default",
    "IDP_GITOPS_BLOCK": "idp-http-secret-backend/default",
    "IDP_CONTROL_PLANE_BLOCK": "idp-control-plane/default",
    "DATABASE_URL": None,
    "IDP_DATA_DIR": ROOT / "data",
    "IDP_SECRET_LOCK_TTL_SECONDS": 3600.0,
    "IDP_IDEMPOTENCY_TTL_SECONDS": 86400.0,
    "PROVIDER_TIMEOUT_SECONDS": 10.0,
    "IDP_RETRY_DELAY_SCALE": 1.0,
    "OTEL_EXPORTER_OTLP_ENDPOINT": None,
    "IDP_TRACES_FILE": None,
    "IDP_TRACES_CONSOLE": False,
}
# The kernel's settings hold no family or provider variable.
KERNEL_VARIABLES = {
    "INTERNAL_AUTH_TOKEN",
    "IDP_RETRY_DELAY_SCALE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "IDP_TRACES_FILE",
    "IDP_TRACES_CONSOLE",
}


def settings_classes() -> list[type[EnvSettings]]:
    """Every settings class of ours (the modules that may define one imported first)."""
    for package in ("core", "blocks", "flows", "services"):
        for name, _ in modules(package, skip=("migrations",)):
            importlib.import_module(name)
    found: list[type[EnvSettings]] = []
    todo = [EnvSettings]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] != "tests" and sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def test_every_public_variable_is_read_with_its_default() -> None:
    defaults: dict[str, set[Any]] = {}
    for cls in settings_classes():
        for name, field in cls.model_fields.items():
            defaults.setdefault(name, set()).add(field.default)
    assert set(defaults) == set(PUBLIC_VARIABLES), "a variable was renamed, removed or added"
    assert {n: d for n, d in defaults.items() if d != {PUBLIC_VARIABLES[n]}} == {}


def test_the_kernel_settings_name_no_family_or_provider() -> None:
    kernel = [cls for cls in settings_classes() if cls.__module__.split(".")[0] == "core"]
    assert kernel
    assert {n for cls in kernel for n in cls.model_fields} <= KERNEL_VARIABLES


# -- the internal-auth header is named once ---------------------------------------------
# Packages with code of ours (tests too); docstrings and descriptions may name the header.
CODE_PACKAGES = (
    "core",
    "blocks",
    "tasks",
    "flows",
    "services",
    "sandbox",
    "deployments",
    "idp",
    "bench",
    "tests",
)
HEADER_HOME = ROOT / "core" / "internal_auth.py"
# The one test that pins the header's wire name (a public contract) writes it too.
HEADER_CONTRACT = ROOT / "tests" / "core" / "test_internal_auth.py"


def test_the_internal_token_header_is_written_only_in_its_module() -> None:
    """Code says ``core.internal_auth.INTERNAL_TOKEN_HEADER`` (and builds the headers with
    ``internal_auth_headers``); a second spelling of the name is a drift waiting to happen."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in CODE_PACKAGES
        for _, path in modules(package)
        if path not in (HEADER_HOME, HEADER_CONTRACT)
        for line, text in string_constants(path)
        if text.strip().lower() == INTERNAL_TOKEN_HEADER.lower()
    ]
    assert offenders == []


# -- execution-workers never write domain state -----------------------------------------
# (What they may import is an import-linter contract in pyproject.toml; what they call is
# checked here: no state-changing control-plane call.)
STATE_CHANGES = {
    "transition_application",
    "transition_environment",
    "transition_secret",
    "record_rotation",
    "acquire_secret_lock",
    "release_secret_lock",
    "report_workflow_run",
    "record_compensation",
    "settle_compensation",
}


def test_execution_workers_make_no_state_changing_call() -> None:
    """They report ``appenv_*`` events; state belongs to control-plane-api alone."""
    found = modules("services/platform/execution_workers")
    assert found
    offenders = {}
    for _, path in found:
        calls = sorted(
            node.func.attr
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in STATE_CHANGES
        )
        if calls:
            offenders[str(path.relative_to(ROOT))] = calls
    assert offenders == {}


def test_no_package_shadows_the_standard_library() -> None:
    """A package named like a stdlib module (``platform``!) breaks every flow-run process:
    Prefect puts the project directory first on ``sys.path``."""
    import sys

    ours = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert {"core", "flows", "tasks", "blocks"} <= ours
    assert not ours & set(sys.stdlib_module_names)


# -- errors carry codes -----------------------------------------------------------------
def test_error_codes_are_published_api() -> None:
    classes = all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert set(codes) >= PUBLISHED_CODES, "a code was renamed or removed"
    assert [c for c in codes if not re.match(r"^[a-z]+(_[a-z]+)*$", c)] == []
    for cls in classes:
        assert 400 <= cls.http_status <= 599, cls
        assert cls.retryable == (cls.http_status in (429, 503, 504)), cls


def _resolve(expr: ast.expr, namespace: dict[str, Any]) -> Any:
    """The object a ``raise`` names, when it is a module-level name (else None)."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.insert(0, expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or expr.id not in namespace:
        return None  # a local variable or attribute: typed by the code around it
    found = namespace[expr.id]
    for part in parts:
        found = getattr(found, part, None)
    return found


def _raises_domain_errors(found: Any) -> bool:
    if inspect.isclass(found):
        return issubclass(found, DomainError)
    if callable(found):  # a factory such as ``_error_from(response) -> DomainError``
        returned = typing.get_type_hints(found).get("return")
        return inspect.isclass(returned) and issubclass(returned, DomainError)
    return False


def non_domain_raises(package: str, allowed: set[tuple[str, str]]) -> list[str]:
    offenders = []
    for name, path in modules(package, skip=("migrations",)):
        namespace = {**vars(builtins), **vars(importlib.import_module(name))}
        for function in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            decorators = " ".join(ast.unparse(d) for d in function.decorator_list)
            if "validator" in decorators:
                continue  # pydantic's protocol: ValueError becomes a ValidationError
            for node in ast.walk(function):
                if not isinstance(node, ast.Raise) or node.exc is None:
                    continue
                found = _resolve(node.exc, namespace)
                label = getattr(found, "__name__", ast.unparse(node.exc))
                where = str(path.relative_to(ROOT))
                if (
                    found is not None
                    and not _raises_domain_errors(found)
                    and (where, label) not in allowed
                ):
                    offenders.append(f"{where}:{node.lineno} {label}")
    return offenders


def test_blocks_raise_only_domain_errors() -> None:
    assert non_domain_raises("blocks", allowed=set()) == []


# Raised inside a service, never leaving it as such (each with its reason).
SERVICE_EXCEPTIONS = {
    # Internal signal of a concurrent Idempotency-Key insert; commands.py answers Conflict.
    ("services/platform/control_plane/crud/idempotency.py", "KeyTaken"),
    # A caller passed the wrong request model: a bug in our code, answered 500.
    ("services/platform/control_plane/launcher.py", "TypeError"),
}


def test_services_raise_only_domain_errors() -> None:
    assert non_domain_raises("services", allowed=SERVICE_EXCEPTIONS) == []


def control_plane_app(tmp_path: Path) -> FastAPI:
    from services.platform.control_plane.app import create_app
    from services.platform.control_plane.settings import ControlPlaneSettings
    from tests.services.platform.control_plane.launchers import RecordingLauncher

    settings = ControlPlaneSettings(DATABASE_URL=f"sqlite:///{tmp_path / 'cp.db'}")
    return create_app(settings, launcher=RecordingLauncher())


def execution_workers_app(tmp_path: Path) -> FastAPI:
    from services.platform.execution_workers.app import create_app
    from services.platform.execution_workers.settings import ExecutionWorkersSettings

    return create_app(ExecutionWorkersSettings())


@pytest.mark.parametrize("factory", [control_plane_app, execution_workers_app])
def test_every_code_leaves_a_service_with_its_status(factory: Any, tmp_path: Path) -> None:
    app = factory(tmp_path)
    classes = all_error_classes()

    def fail(code: str) -> None:
        cls = next(c for c in classes if c.code == code)
        raise cls("failing on purpose", details={"code": code})

    def bug() -> None:
        raise RuntimeError("a bug with a message nobody should see")

    app.add_api_route("/_fitness/fail/{code}", fail)
    app.add_api_route("/_fitness/bug", bug)
    with TestClient(app, raise_server_exceptions=False) as client:
        for cls in classes:
            answer = client.get(f"/_fitness/fail/{cls.code}")
            assert (answer.status_code, answer.json()["error"]["code"]) == (
                cls.http_status,
                cls.code,
            ), cls
        bug_answer = client.get("/_fitness/bug")
        framework = [
            client.get("/_fitness/nowhere"),
            client.post("/_fitness/bug"),
        ]
    assert (bug_answer.status_code, bug_answer.json()["error"]["code"]) == (500, "internal_error")
    assert "nobody" not in bug_answer.text
    assert [(a.status_code, a.json()["error"]["code"]) for a in framework] == [
        (404, "not_found"),
        (405, "method_not_allowed"),
    ]


def test_the_domain_module_names_every_workflow_once() -> None:
    constants = {
        value
        for name, value in vars(domain).items()
        if name.startswith("WORKFLOW_") and isinstance(value, str)
    }
    assert constants == set(PLATFORM_WORKFLOWS)


def test_the_vocabulary_and_the_local_stack_import_no_engine_and_no_vendor_library() -> None:
    """Services, the demo and the benchmark import a family's vocabulary and ``idp.stack``
    before they point Prefect at a server: importing them must not load Prefect (its
    settings would be read too early) nor PyGithub or hvac (seconds of start-up)."""
    import subprocess
    import sys

    light = ["blocks", "blocks.models", "blocks.platform", "blocks.platform.domain"]
    light += ["blocks.platform.workflows", "core.errors", "flows", "tasks", "idp.stack"]
    probe = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in light)
        + "print(sorted(m for m in ('prefect', 'github', 'hvac') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
