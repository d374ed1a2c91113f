"""The IDP workflows as Prefect flows (seed 001), one module per workflow.

Each flow takes one request model (``core.workflows``) named ``request`` and returns one
result model (``flows.results``); the step lists are in ``docs/workflows/overview.md``.
Import the flows from their modules (``flows.application_onboarding`` ...): importing
this package does no work.
"""
