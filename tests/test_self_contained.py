"""The repository is self-contained: a user's clone has no ``../shared`` beside it.

The contract tests are the ones that read files outside the Python packages (the API
descriptions in ``tests/contracts/specs``), so they run here from a copy of the
repository in an empty folder, with no sibling ``shared/`` and no ``IDP_CONTRACTS_DIR``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def repository_files() -> list[str]:
    """What a clone of the working tree holds: tracked files and new, not ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    )
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return [name for name in names if (PROJECT_ROOT / name).is_file()]


def test_no_file_of_the_repository_points_outside_it() -> None:
    offenders = []
    for name in repository_files():
        if name.startswith("tests/contracts/specs/") or name == "tests/test_self_contained.py":
            continue
        path = PROJECT_ROOT / name
        if path.suffix not in {".py", ".toml", ".yaml", ".yml", ".cfg", ".ini", ""}:
            continue
        # Code, not comments: a comment may say the repository needs no ../shared.
        code = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if not line.lstrip().startswith("#")
        ]
        if any("../shared" in line or '"shared"' in line for line in code):
            offenders.append(name)
    assert offenders == []


def test_the_contract_tests_pass_from_a_clone_with_no_shared_folder_beside_it(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "empty" / "idp-workflows"
    for name in repository_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, target)
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "IDP_CONTRACTS_DIR"}
    # The clone's packages come first on the path, ahead of this checkout's editable install.
    env["PYTHONPATH"] = str(clone)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contracts", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
