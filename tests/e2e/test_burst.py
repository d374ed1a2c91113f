"""A burst of commands on the embedded default: 20 environment requests at once, each its
own flow run, all complete and Prefect's server keeps answering throughout.

Prefect's server on SQLite wedged under exactly this (docs/embedded-default.md): lock
errors, event messages dead-lettered, ``/api/health`` unanswered for minutes, runs that
never finished. The 100-command burst, with its figures, is in ``make bench``.
"""

from __future__ import annotations

import pytest

from bench.burst import run_burst
from tests.e2e.support import SLOW_MACHINE_TIMEOUT, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow, SLOW_MACHINE_TIMEOUT]


def test_twenty_commands_at_once_all_complete_and_the_server_keeps_answering(
    platform: Platform,
) -> None:
    result = run_burst(platform.stack, 20, 20, timeout=480)
    print(result.line())

    assert result.states == {"Completed": 20}, result.line()
    assert result.health_unanswered == 0, result.line()
    assert (result.lock_errors, result.dead_lettered) == (0, 0), result.line()
