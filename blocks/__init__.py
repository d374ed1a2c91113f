"""Prefect blocks: provider configuration plus ``get_client()``.

The provider blocks every family may use (GitHub, Harbor, Vault, the secret system's HTTP
endpoints) live here; a family's own blocks live in ``blocks/<family>/``. Vendor errors
are translated into ``core.errors`` exactly once, in the block; no PyGithub, httpx or
hvac exception escapes a block.

Importing this package does no work (no Prefect, no vendor library): ``blocks.catalog``
lists the provider block types, for registration.
"""
