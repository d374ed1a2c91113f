"""The ``idp`` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from idp.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "usage: idp" in capsys.readouterr().out


def test_walkthrough_drives_every_block_against_the_sandbox() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "idp.cli", "walkthrough"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "acme/appenv-payments-dev created=True" in out
    assert "created=False (adopted)" in out
    assert "1 approving review(s)" in out
    assert "refresh_robot_secret" in out and "differs=True" in out
    assert "update_secret_bindings" in out and "@v1" in out
    # The walk-through shows that secrets exist, never their values.
    assert "**********" in out
