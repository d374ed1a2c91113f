"""ApplicationOnboarding (seed 001): make a registered application ready for environments.

Trigger: ``POST /api/v1/applications`` on control-plane-api starts a run of
``ApplicationOnboarding/idp`` with ``{"request": {"application_id": ...}}``.

Steps: ValidateApplicationOnboarding (the application may enter onboarding) ->
MarkApplication onboarding -> MaterializeRepositories (the application's base repository,
named after it) -> SeedInitialConfiguration (README.md and a Backstage
catalog-info.yaml, create-only) -> MarkApplication onboarded ->
``workflow_application_onboarding_completed``. On failure after the application was marked
onboarding it is marked ``onboarding_failed``, the ``_failed`` event is recorded and the
run ends Failed with the error's code in its message.
"""

from __future__ import annotations

import yaml
from prefect import flow

from blocks.platform.control_plane import ApplicationState
from blocks.platform.domain import (
    WORKFLOW_APPLICATION_ONBOARDING,
    Aggregate,
    ApplicationStatus,
    EventName,
)
from blocks.platform.workflows import ApplicationOnboardingRequest
from flows.platform.results import ApplicationOnboardingResult
from flows.platform.run import PlatformRun, best_effort, error_text
from tasks.platform.control_plane import MARK_APPLICATION, VALIDATE_APPLICATION_ONBOARDING
from tasks.platform.repositories import MATERIALIZE_REPOSITORIES, SEED_INITIAL_CONFIGURATION

SEED_COMMIT_MESSAGE = "Initial configuration from the IDP"
STEPS = (
    VALIDATE_APPLICATION_ONBOARDING,
    MARK_APPLICATION,
    MATERIALIZE_REPOSITORIES,
    SEED_INITIAL_CONFIGURATION,
)


def initial_configuration(application: ApplicationState) -> dict[str, str]:
    """The files every onboarded application starts with (kept if they already exist)."""
    description = application.description or f"{application.name}, owned by {application.team}"
    readme = (
        f"# {application.name}\n\n{description}\n\n"
        f"Owned by team `{application.team}`. Onboarded by the internal developer platform.\n"
    )
    # User text goes through the YAML serializer: quotes, backslashes, newlines or a
    # leading "- " in a description can never change the document's structure.
    catalog = yaml.safe_dump(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": application.name, "description": description},
            "spec": {"type": "service", "lifecycle": "production", "owner": application.team},
        },
        sort_keys=False,
        allow_unicode=True,
        width=1000,
    )
    return {"README.md": readme, "catalog-info.yaml": catalog}


@flow(
    name=WORKFLOW_APPLICATION_ONBOARDING,
    flow_run_name="onboard-{request.application_id}",
    persist_result=True,
)
async def application_onboarding(
    request: ApplicationOnboardingRequest,
) -> ApplicationOnboardingResult:
    """Onboard an application: base repository and initial configuration."""
    app_id = request.application_id
    async with PlatformRun.open(
        WORKFLOW_APPLICATION_ONBOARDING, Aggregate.APPLICATION, app_id, roles=["git"], steps=STEPS
    ) as run:
        cp, git = run.roles.control_plane, run.roles.git
        marked = False
        try:
            application = await run(VALIDATE_APPLICATION_ONBOARDING, cp, app_id)
            await run(MARK_APPLICATION, cp, app_id, ApplicationStatus.ONBOARDING, run.flow_run_id)
            marked = True
            repository = await run(
                MATERIALIZE_REPOSITORIES, git, app_id, f"Base repository of {app_id}"
            )
            files = initial_configuration(application)
            created = await run(
                SEED_INITIAL_CONFIGURATION, git, repository.name, files, SEED_COMMIT_MESSAGE
            )
            await run(MARK_APPLICATION, cp, app_id, ApplicationStatus.ONBOARDED, run.flow_run_id)
        except Exception as exc:
            if marked:
                failed = ApplicationStatus.ONBOARDING_FAILED
                await best_effort(
                    run(MARK_APPLICATION, cp, app_id, failed, run.flow_run_id, error_text(exc)),
                    f"marking application {app_id} {failed}",
                )
            event = run.failure_event(EventName.APPLICATION_ONBOARDING_FAILED, exc)
            await run.fail(event, exc, f"Onboarding of {app_id} failed")
            raise

        event = run.event(
            EventName.APPLICATION_ONBOARDING_COMPLETED,
            payload={"repository": repository.full_name, "files_created": created},
        )
        summary = [
            ("application", app_id),
            ("repository", repository.html_url),
            ("repository created", repository.created),
            ("files created", ", ".join(created) or "none (already present)"),
        ]
        await run.succeed(event, f"Onboarded {app_id}", summary)
        return ApplicationOnboardingResult(
            flow_run_id=run.flow_run_id,
            application_id=app_id,
            status=ApplicationStatus.ONBOARDED,
            repository=repository,
            files_created=created,
        )
