"""Workflow steps: each a ``core.steps.Step`` wrapping one block operation (or a few that
must happen together) with its retry policy, in one subpackage per family
(``tasks.platform``)."""
