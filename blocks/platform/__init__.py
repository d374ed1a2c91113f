"""The platform family's blocks (its own services: control plane, execution-workers) and
its vocabulary (``domain``: statuses, transitions, events; ``workflows``: flow inputs
and deployment names), which its tasks, flows and services share.

Importing this package does no work: ``blocks.platform.catalog`` lists its block types.
"""
