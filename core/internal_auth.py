"""Internal authentication (seed 000): the shared token, its header and what a client sends.

Every internal client (the blocks that call our services and the secret system's
endpoints) sends the shared ``INTERNAL_AUTH_TOKEN`` (``InternalAuthSettings``, which every
settings class that needs it derives from) in ``INTERNAL_TOKEN_HEADER``, built by
``internal_auth_headers``; every internal endpoint checks it (the services through the
one FastAPI dependency ``services.http.internal_auth``, the sandbox's secret endpoints on
their own). An unset or empty token means no header and no enforcement (local
development). This module is the only place the header's name is written in code
(``tests/test_fitness.py`` checks it).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.settings import EnvSettings

INTERNAL_TOKEN_HEADER = "X-Internal-Token"


class InternalAuthSettings(EnvSettings):
    """The shared token: what internal clients send and internal endpoints require.
    Every settings class that needs it derives from this one."""

    INTERNAL_AUTH_TOKEN: SecretStr | None = Field(
        None, description=f"Shared token of internal calls, sent as {INTERNAL_TOKEN_HEADER}"
    )


def internal_auth_headers(token: SecretStr | str | None) -> dict[str, str]:
    """The headers an internal client sends: ``INTERNAL_TOKEN_HEADER`` only when ``token``
    is set and not empty."""
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    return {INTERNAL_TOKEN_HEADER: value} if value else {}
