"""The IDP workflows as Prefect flows (seed 001), one module per workflow.

Each flow takes one request model (``blocks.platform.workflows``) named ``request`` and returns one
result model (``flows.platform.results``); the step lists are in ``docs/workflows/overview.md``.
Import the flows from their modules (``flows.platform.application_onboarding`` ...): importing
this package does no work.
"""
