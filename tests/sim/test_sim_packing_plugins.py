"""vecsched's own packing plugins (BestFit, WorstFit, DotProduct, FirstFit, Random):
their scores on small hand-made clusters, worked by hand, and the node each picks."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import node, pod, table

from benchmarks.strategies import builtin_profile
from scoring.args import ArgsError
from scoring.plugins import best_fit, dot_product, first_fit, random_score, worst_fit
from scoring.plugins.packing import ResourceWeight, min_max_scores, parse_resources
from scoring.table import NodeTable


def _c3() -> NodeTable:
    """a, b, c: 4 cpu / 8Gi each; a holds 3 cpu + 2Gi, b holds 1 cpu + 5Gi, c is empty."""
    return table([node("a", "4", "8Gi"), node("b", "4", "8Gi"), node("c", "4", "8Gi")],
                 [(pod("on-a", "3", "2Gi"), "a"), (pod("on-b", "1", "5Gi"), "b")])


def _scores(plugin: object, p: object, t: NodeTable) -> list[int]:
    return plugin.score(p, t, np.arange(t.n), {}).tolist()  # type: ignore[attr-defined]


SMALL = pod("p", "1", "1Gi")


@pytest.mark.parametrize(("module", "args", "expected"), [
    # Leftover after placing 1 cpu / 1Gi, per resource over the largest capacity (4 cpu, 8Gi):
    # a (0, 5Gi) -> (0 + 5/8)/2 = .3125; b (2, 2Gi) -> (.5 + .25)/2 = .375; c (3, 7Gi) -> (.75 + .875)/2 = .8125
    # BestFit: a 100; b floor(100 * (.8125 - .375) / .5) = floor(87.5) = 87; c 0
    pytest.param(best_fit, {}, [100, 87, 0], id="best-fit-cpu-memory"),
    # WorstFit: a 0; b floor(100 * (.375 - .3125) / .5) = floor(12.5) = 12; c 100
    pytest.param(worst_fit, {}, [0, 12, 100], id="worst-fit-cpu-memory"),
    # cpu weight 3: a (0*3 + .625)/4 = .15625; b (1.5 + .25)/4 = .4375; c (2.25 + .875)/4 = .78125
    # BestFit b: floor(100 * (.78125 - .4375) / .625) = 55
    pytest.param(best_fit, {"resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]},
                 [100, 55, 0], id="best-fit-weighted"),
    # A resource no node has is dropped (nvidia.com/gpu): same as cpu alone:
    # a 0, b .5, c .75 -> a 100, b floor(100 * .25/.75) = 33, c 0
    pytest.param(best_fit, {"resources": [{"name": "cpu"}, {"name": "nvidia.com/gpu", "weight": 5}]},
                 [100, 33, 0], id="best-fit-missing-resource"),
    # Tetris: req/cap = (.25, .125); free/cap a (.25, .75), b (.75, .375), c (1, 1)
    # a .0625 + .09375 = .15625; b .1875 + .046875 = .234375; c .25 + .125 = .375
    # -> a floor(100 * .15625/.375) = 41, b floor(62.5) = 62, c 100
    pytest.param(dot_product, {}, [41, 62, 100], id="dot-product-cpu-memory"),
])
def test_scores_on_three_nodes(module: object, args: dict, expected: list[int]) -> None:
    plugin = module.new(args, "args")  # type: ignore[attr-defined]
    assert _scores(plugin, SMALL, _c3()) == expected


@pytest.mark.parametrize(("p", "expected"), [
    # d: 16 cpu / 8Gi, e: 2 cpu / 16Gi, both empty (free/cap = 1, 1).
    # memory-heavy 1 cpu / 4Gi: d 1/16 + 4/8 = .5625; e 1/2 + 4/16 = .75 -> d floor(75) = 75, e 100
    pytest.param(pod("mem", "1", "4Gi"), [75, 100], id="memory-heavy"),
    # cpu-heavy 2 cpu / 1Gi: d 2/16 + 1/8 = .25; e 2/2 + 1/16 = 1.0625 -> d floor(23.5) = 23, e 100
    pytest.param(pod("cpu", "2", "1Gi"), [23, 100], id="cpu-heavy"),
])
def test_dot_product_normalises_by_node_capacity(p: object, expected: list[int]) -> None:
    t = table([node("d", "16", "8Gi"), node("e", "2", "16Gi")])
    assert _scores(dot_product.new({}, ""), p, t) == expected


@pytest.mark.parametrize(("strategy", "chosen"), [
    ("BestFit", "a"),      # least leftover (see above)
    ("WorstFit", "c"),     # most leftover
    ("DotProduct", "c"),   # best aligned
    ("FirstFit", "a"),     # first added
])
def test_each_strategy_picks(strategy: str, chosen: str) -> None:
    profile = builtin_profile(strategy).build(seed=0)
    assert profile.schedule(SMALL, _c3()).node == chosen


def test_first_fit_follows_insertion_order_not_rows() -> None:
    # n0..n3 added in order; removing n1 moves n3 into row 1: rows are n0, n3, n2.
    t = table([node(f"n{i}", "4", "8Gi") for i in range(4)])
    first_fit.node_sequence(t)  # numbered on first use (here: before the removal), then kept current
    t.remove_node("n1")
    assert t.names == ["n0", "n3", "n2"]
    # sequence numbers 0, 3, 2: n0 100, n3 0, n2 floor(100 * (3-2)/3) = 33
    assert _scores(first_fit.new({}, ""), SMALL, t) == [100, 0, 33]
    # n0 full: the first feasible node by insertion is n2 (row 2), not n3 (row 1).
    t.add_pod(pod("big", "4", "1Gi"), "n0")
    assert builtin_profile("FirstFit").build(seed=0).schedule(SMALL, t).node == "n2"
    # A node added later comes after every earlier one, even in a freed row.
    t.set_node(node("n9", "4", "8Gi"))
    assert first_fit.node_sequence(t).seq[t.index["n9"]] == 4


def test_random_is_seeded() -> None:
    t = _c3()
    a, b = random_score.new({"seed": 7}, ""), random_score.new({"seed": 7}, "")
    a.reseed(3)
    b.reseed(3)
    first = _scores(a, SMALL, t)
    assert first == _scores(b, SMALL, t)                       # same (args seed, run seed): same draws
    assert first == np.random.default_rng([7, 3]).integers(0, 101, size=3).tolist()
    b.reseed(4)
    draws = [_scores(b, SMALL, t) for _ in range(5)]
    assert any(d != first for d in draws)                      # another run seed draws otherwise
    assert all(0 <= s <= 100 for d in draws for s in d)


def test_random_profile_spreads_over_feasible_nodes() -> None:
    # Four empty nodes, 400 one-off decisions: every node is chosen (P(miss one) ~ 4 * .75^400).
    t = table([node(f"n{i}", "4", "8Gi") for i in range(4)])
    profile = builtin_profile("Random").build(seed=1)
    assert {profile.schedule(SMALL, t).node for _ in range(400)} == {"n0", "n1", "n2", "n3"}


@pytest.mark.parametrize(("values", "higher", "expected"), [
    pytest.param([1.0, 2.0, 3.0], True, [0, 50, 100], id="higher-better"),
    pytest.param([1.0, 2.0, 3.0], False, [100, 50, 0], id="lower-better"),
    pytest.param([5.0, 5.0], False, [100, 100], id="all-equal"),
    pytest.param([], True, [], id="empty"),
])
def test_min_max_scores(values: list[float], higher: bool, expected: list[int]) -> None:
    assert min_max_scores(np.array(values), higher_is_better=higher).tolist() == expected


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param({}, (ResourceWeight("cpu", 1), ResourceWeight("memory", 1)), id="default"),
    pytest.param({"resources": [{"name": "nvidia.com/gpu", "weight": 0}]}, (ResourceWeight("nvidia.com/gpu", 1),),
                 id="zero-weight-means-1"),
])
def test_parse_resources(args: dict, expected: tuple) -> None:
    assert parse_resources(args, "args") == expected


@pytest.mark.parametrize(("args", "path"), [
    pytest.param({"resource": []}, "args.resource", id="unknown-field"),
    pytest.param({"resources": [{"name": "cpu", "weight": -1}]}, "args.resources[0].weight", id="negative-weight"),
    pytest.param({"resources": [{"weight": 1}]}, "args.resources[0].name", id="missing-name"),
    pytest.param({"resources": [{"name": "cpu"}, {"name": "cpu"}]}, "args.resources[1].name", id="duplicate"),
])
def test_bad_args_name_the_field(args: dict, path: str) -> None:
    with pytest.raises(ArgsError) as e:
        best_fit.new(args, "args")
    assert e.value.path == path
