"""core.settings: how every settings class reads the environment, and how tests reset it."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from core.settings import EnvSettings, reset_settings


class Knobs(EnvSettings):
    IDP_TEST_KNOB: str = "default"
    IDP_TEST_COUNT: int = Field(1, gt=0)


class OtherKnobs(EnvSettings):
    IDP_TEST_KNOB: str = "other default"


def test_field_names_are_the_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_TEST_KNOB", "set")
    monkeypatch.setenv("idp_test_count", "5")  # names are exact: another case is not read
    monkeypatch.setenv("IDP_TEST_UNRELATED", "x")  # the rest of the environment is ignored
    knobs = Knobs()
    assert (knobs.IDP_TEST_KNOB, knobs.IDP_TEST_COUNT) == ("set", 1)


def test_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_TEST_COUNT", "0")
    with pytest.raises(ValidationError, match="IDP_TEST_COUNT"):
        Knobs()


def test_current_reads_once_per_class_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_TEST_KNOB", "first")
    first = Knobs.current()
    assert first.IDP_TEST_KNOB == "first"
    monkeypatch.setenv("IDP_TEST_KNOB", "second")
    assert Knobs.current() is first  # read on first use, then kept for the process
    assert OtherKnobs.current().IDP_TEST_KNOB == "second"  # each class has its own
    assert Knobs().IDP_TEST_KNOB == "second"  # constructing always reads afresh
    reset_settings()
    assert Knobs.current().IDP_TEST_KNOB == "second"
    assert Knobs.current() is not first


def test_a_subclass_is_cached_apart_from_its_base() -> None:
    class More(Knobs):
        IDP_TEST_MORE: bool = False

    assert isinstance(More.current(), More)
    assert type(Knobs.current()) is Knobs
