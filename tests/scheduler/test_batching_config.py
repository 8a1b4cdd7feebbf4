"""The profile field ``vecsched.io/batching``: on by default, off when false, and a value
that is not a boolean is a one-line error naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.config import API_VERSION, BATCHING_FIELD, ConfigError, parse_config

_ABSENT = object()


def _cfg(value: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {"schedulerName": "vecsched"}
    if value is not _ABSENT:
        profile[BATCHING_FIELD] = value
    return {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [profile]}


@pytest.mark.parametrize("value,want", [
    (_ABSENT, True),   # kube-scheduler 1.35 has OpportunisticBatching on by default
    (None, True),      # null reads as absent, as vecsched.io/tieBreak does
    (True, True),
    (False, False),
], ids=["absent", "null", "true", "false"])
def test_the_field_sets_the_profile_and_its_build(value: Any, want: bool) -> None:
    cfg = parse_config(_cfg(value))
    assert cfg.profiles[0].batching is want
    assert cfg.profiles[0].build().batching is want


@pytest.mark.parametrize("value,problem", [
    ("false", "expected true or false, got 'false'"),
    (0, "expected true or false, got 0"),
    ([True], "expected true or false, got [True]"),
], ids=["string", "integer", "list"])
def test_a_non_boolean_is_refused_naming_the_field(value: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(value), source="sched.yaml")
    assert (err.value.path, err.value.problem) == (f"sched.yaml: profiles[0].{BATCHING_FIELD}", problem)
