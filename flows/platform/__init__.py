"""The platform family's workflows (seed 001), one module per workflow.

Each flow takes one request model (``blocks.platform.workflows``) named ``request`` and
returns one result model (``flows.platform.results``); its body reads as the workflow's
steps (``docs/workflows/overview.md``), driven by ``core.steps`` through ``PlatformRun``.
Import the flows from their modules (``flows.platform.application_onboarding`` ...):
importing this package does no work.
"""
