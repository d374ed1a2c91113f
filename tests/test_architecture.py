"""Fitness functions: the layering the architecture promises, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_LIBRARIES = {"httpx", "github", "hvac", "requests", "urllib3"}
OUR_PACKAGES = ["core", "blocks", "tasks", "flows", "services", "sandbox", "deployments", "idp"]
# What each package may import of ours (imports point down only).
ALLOWED = {
    "core": {"core"},
    "blocks": {"blocks", "core"},
    "tasks": {"tasks", "blocks", "core"},
    "flows": {"flows", "tasks", "blocks", "core"},
    "services": {"services", "blocks", "core"},
    "sandbox": {"sandbox", "core"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["flows", "tasks"])
def test_workflows_never_import_a_provider_library(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & PROVIDER_LIBRARIES)
        for path in _modules(package)
        if _imports(path) & PROVIDER_LIBRARIES
    }
    assert offenders == {}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down_only(package: str) -> None:
    forbidden = set(OUR_PACKAGES) - ALLOWED[package]
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & forbidden)
        for path in _modules(package)
        if _imports(path) & forbidden
    }
    assert offenders == {}


def test_no_package_shadows_the_standard_library() -> None:
    import sys

    assert not set(OUR_PACKAGES) & set(sys.stdlib_module_names)


# Execution workers perform side effects and *report* them (ControlPlane block); the domain
# state is the control plane's alone (seed 002's fitness function).
DOMAIN_STATE_MODULES = {"sqlmodel", "sqlalchemy", "alembic"}


def _full_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_execution_workers_never_write_domain_state() -> None:
    offenders = {}
    for path in _modules("services/platform/execution_workers"):
        imports = _full_imports(path)
        bad = {
            name
            for name in imports
            if name.split(".")[0] in DOMAIN_STATE_MODULES
            or name == "services.platform.control_plane"
            or name.startswith("services.platform.control_plane.")
        }
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert _modules("services/platform/execution_workers"), "the service moved: update this test"
    assert offenders == {}
