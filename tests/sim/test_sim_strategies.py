"""Built-in strategies: each validates like a user's profile, and names resolve to
--config profiles first, then built-ins, with a clear error otherwise."""

from __future__ import annotations

import pytest

from benchmarks.strategies import (
    STRATEGIES,
    UnknownStrategyError,
    builtin_profile,
    builtin_profiles,
    register_strategy,
    resolve_strategies,
    score_only,
)
from scheduler.config import API_VERSION, parse_config

DEFAULT_FILTERS = builtin_profile("default").filters


@pytest.mark.parametrize(("name", "scores"), [
    ("default", None),
    ("MostAllocated", (("NodeResourcesFit", 1),)),
    ("RequestedToCapacityRatio", (("NodeResourcesFit", 1),)),
    ("DotProduct", (("DotProduct", 1),)),
    ("BestFit", (("BestFit", 1),)),
    ("WorstFit", (("WorstFit", 1),)),
    ("FirstFit", (("FirstFit", 1),)),
    ("Random", (("Random", 1),)),
])
def test_builtin_profiles(name: str, scores: tuple | None) -> None:
    p = builtin_profiles()[name]
    assert p.scheduler_name == name and p.filters == DEFAULT_FILTERS
    if scores is not None:
        assert p.scores == scores            # the default score plugins are all disabled
    p.build(seed=0)


def test_most_allocated_args() -> None:
    args = builtin_profile("MostAllocated").plugin_args["NodeResourcesFit"]
    assert args["scoringStrategy"]["type"] == "MostAllocated"
    assert args["scoringStrategy"]["resources"] == [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]


def test_register_strategy() -> None:
    register_strategy("TestBestFitGpu", score_only("BestFit", args={"resources": [{"name": "nvidia.com/gpu"}]}))
    try:
        assert builtin_profile("TestBestFitGpu").plugin_args["BestFit"] == {"resources": [{"name": "nvidia.com/gpu"}]}
        with pytest.raises(ValueError, match="registered twice"):
            register_strategy("TestBestFitGpu", {})
    finally:
        del STRATEGIES["TestBestFitGpu"]


def test_config_profile_wins_over_builtin() -> None:
    config = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
        {"schedulerName": "BestFit"},  # a user profile that happens to share a built-in's name
        {"schedulerName": "mine", **score_only("WorstFit")}]})
    got = resolve_strategies(["BestFit", "mine", "Random"], config=config)
    assert got["BestFit"].scores == builtin_profile("default").scores
    assert got["mine"].scores == (("WorstFit", 1),) and got["Random"].scores == (("Random", 1),)


@pytest.mark.parametrize(("names", "message"), [
    (["Tetris"], "unknown strategy 'Tetris' (profiles in --config: none; built-in: default, MostAllocated"),
    (["BestFit", "BestFit"], "strategy 'BestFit' is listed twice"),
])
def test_unknown_strategy(names: list[str], message: str) -> None:
    with pytest.raises(UnknownStrategyError) as e:
        resolve_strategies(names)
    assert message in str(e.value)
