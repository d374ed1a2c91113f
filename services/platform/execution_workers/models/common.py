"""Field types shared by the request models (their patterns are what providers accept)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from blocks.platform.workflows import ID_PATTERN

# GitHub repository names (without the "." and ".." GitHub refuses).
REPOSITORY_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$"
# Secret names and ids: what the secret endpoints and Vault key segments accept.
SECRET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

EnvironmentId = Annotated[
    str, Field(pattern=ID_PATTERN, description="Application environment id, e.g. payments-dev")
]
ApplicationId = Annotated[str, Field(pattern=ID_PATTERN, description="Application id")]
RepositoryName = Annotated[
    str, Field(pattern=REPOSITORY_PATTERN, description="Repository name in the organization")
]
SecretName = Annotated[str, Field(pattern=SECRET_PATTERN, description="Secret name or id")]
Target = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="Delivery target, e.g. k8s:payments-dev/db-password",
    ),
]


class Request(BaseModel):
    """Requests refuse unknown fields: a typo must not silently change a side effect."""

    model_config = ConfigDict(extra="forbid")
