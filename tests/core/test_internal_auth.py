from __future__ import annotations

import pytest
from pydantic import SecretStr

from core.internal_auth import INTERNAL_TOKEN_HEADER, internal_auth_headers


def test_the_header_name_is_the_seeds() -> None:
    # Public contract (seed 000): every internal client and endpoint speaks this header.
    assert INTERNAL_TOKEN_HEADER == "X-Internal-Token"


@pytest.mark.parametrize("token", [None, "", SecretStr("")])
def test_no_header_without_a_token(token: SecretStr | str | None) -> None:
    assert internal_auth_headers(token) == {}


@pytest.mark.parametrize("token", ["s3", SecretStr("s3")])
def test_the_token_is_sent_when_set(token: SecretStr | str) -> None:
    assert internal_auth_headers(token) == {"X-Internal-Token": "s3"}
