"""Idempotent setup of a Prefect installation for idp-workflows: block types, block
documents, work pool and deployments."""
