"""What the platform does about a flow run whose worker died: detect it, then run it again.

A process worker starts each flow run as a child process in a session of its own. When
the worker dies (SIGKILL, OOM, a lost node) two things can happen to the run:

1. The flow-run process loses its worker and exits; the engine records the run
   **Crashed** itself (observed here when only the worker's process group is killed).
2. The flow-run process dies too (the whole host is gone, or it is killed): nobody
   reports anything and the run stays **Running** forever. Prefect 3 workers do not mark
   runs of a dead worker (PrefectHQ/prefect#16746).

Two automations on the Prefect server cover both, with no process of ours that must
stay alive:

- ``idp-crash-zombie-flow-runs``: every flow run sends a heartbeat event each
  ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (30 here; Prefect's default is 180). A
  run on the platform that sent a heartbeat and then neither another heartbeat nor a
  final state within ``heartbeat + grace`` seconds is moved to Crashed.
  A heartbeat that arrives after the run finished cannot hurt: Prefect refuses to move
  a finished run to Crashed.
- ``idp-reschedule-crashed-flow-runs``: a Crashed run on the platform is moved back to
  Scheduled ("AwaitingRetry"), so any worker on the pool runs the same flow run again,
  at most ``max_attempts`` attempts in all (the event carries the run count; a run that
  keeps crashing, or crashed before it ever ran, stays Crashed for a human to look at).

Running a flow run again is safe because every step is an ``ensure`` and provider
results are cached per flow-run id: the new attempt replays the steps that completed
and redoes the one that was cut off (docs/workflows/overview.md). An operator can do
the same by hand with ``prefect flow-run retry <id>`` once the run is Crashed.

``idp bootstrap`` installs both (idempotent: same names are replaced); the end-to-end
test ``tests/e2e/test_worker_crash.py`` proves them with a SIGKILLed worker.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

PLATFORM_TAG = "idp"  # every deployment in prefect.yaml carries it
ZOMBIE_AUTOMATION = "idp-crash-zombie-flow-runs"
RESCHEDULE_AUTOMATION = "idp-reschedule-crashed-flow-runs"
ZOMBIE_MESSAGE = "No heartbeat from the flow run: its worker or host is gone (idp recovery)"
RESCHEDULE_MESSAGE = "Rescheduled after a crash (idp recovery)"

# Events that prove a run is alive or no longer needs a heartbeat.
_ALIVE_OR_DONE = {
    "prefect.flow-run.heartbeat",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Paused",
    "prefect.flow-run.Suspended",
}
_PLATFORM_RUNS = {
    "prefect.resource.role": "tag",
    "prefect.resource.id": f"prefect.tag.{PLATFORM_TAG}",
}


def zombie_automation(*, heartbeat_seconds: int, grace_seconds: int) -> AutomationCore:
    """Crash a platform run that stopped sending heartbeats. Production: a grace of two
    heartbeats (90 s in all for 30 s heartbeats) so a busy host is not taken for dead."""
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Mark a flow run Crashed when its heartbeats stop (worker or host lost).",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=_PLATFORM_RUNS,
            after={"prefect.flow-run.heartbeat"},
            expect=_ALIVE_OR_DONE,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=heartbeat_seconds + grace_seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=ZOMBIE_MESSAGE)],
    )


def reschedule_automation(*, max_attempts: int = 3) -> AutomationCore:
    """Run a crashed platform run again, up to ``max_attempts`` attempts in all."""
    counts = [str(n) for n in range(1, max_attempts)]
    return AutomationCore(
        name=RESCHEDULE_AUTOMATION,
        description=f"Reschedule a Crashed flow run (at most {max_attempts} attempts).",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*", "prefect.run-count": counts},
            match_related=_PLATFORM_RUNS,
            expect={"prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        # Crashed is final; only a forced transition reopens it (as `prefect flow-run retry`).
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                name="AwaitingRetry",
                message=RESCHEDULE_MESSAGE,
                force=True,
            )
        ],
    )


def install_recovery(
    client: SyncPrefectClient,
    *,
    heartbeat_seconds: int,
    grace_seconds: int,
    max_attempts: int = 3,
) -> list[UUID]:
    """Create (or replace) both automations; returns their ids."""
    ids = []
    for automation in (
        zombie_automation(heartbeat_seconds=heartbeat_seconds, grace_seconds=grace_seconds),
        reschedule_automation(max_attempts=max_attempts),
    ):
        for existing in client.read_automations_by_name(automation.name):
            client.delete_automation(existing.id)
        ids.append(client.create_automation(automation))
    return ids
