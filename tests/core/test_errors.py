from __future__ import annotations

import pickle

import pytest

from core import errors


@pytest.mark.parametrize(
    "cls, code, retryable, status",
    [
        (errors.UpstreamUnavailable, "upstream_unavailable", True, 503),
        (errors.RateLimited, "rate_limited", True, 429),
        (errors.UpstreamTimeout, "upstream_timeout", True, 504),
        (errors.WorkflowEngineUnavailable, "workflow_engine_unavailable", True, 503),
        (errors.InvalidInput, "invalid_input", False, 422),
        (errors.Unauthorized, "unauthorized", False, 401),
        (errors.Forbidden, "forbidden", False, 403),
        (errors.NotFound, "not_found", False, 404),
        (errors.Conflict, "conflict", False, 409),
        (errors.IllegalTransition, "illegal_transition", False, 409),
        (errors.SecretLocked, "secret_locked", False, 409),
        (errors.ResourceMismatch, "resource_mismatch", False, 409),
        (errors.PreconditionFailed, "precondition_failed", False, 412),
        (errors.UpstreamRejected, "upstream_rejected", False, 502),
    ],
)
def test_codes_are_stable_public_api(
    cls: type[errors.DomainError], code: str, retryable: bool, status: int
) -> None:
    err = cls("boom")
    assert (err.code, err.retryable, err.http_status) == (code, retryable, status)
    assert errors.is_retryable(err) is retryable
    assert errors.error_for_code(code) is cls


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in errors.all_error_classes()]
    assert len(codes) == len(set(codes))


def test_errors_survive_pickling_with_their_details() -> None:
    err = errors.RateLimited("slow down", retry_after=7, upstream_status=429)
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, errors.RateLimited)
    assert copy.retry_after == 7
    assert copy.upstream_status == 429
    assert copy.to_dict()["code"] == "rate_limited"


def test_long_messages_are_cut() -> None:
    err = errors.UpstreamRejected("x" * 10_000)
    assert len(err.message) <= errors.MAX_MESSAGE


def test_non_domain_errors_are_not_retried() -> None:
    assert errors.is_retryable(RuntimeError("bug")) is False
