"""The framework: reasons from the first rejecting filter, upstream's FailedScheduling
text, normalisation helper, score range check, weighted totals and seeded tie-break."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scoring.framework import (
    CycleState,
    PluginError,
    PostFilterResult,
    Profile,
    Reason,
    default_normalize_score,
    fit_error_message,
    num_feasible_nodes_to_find,
)
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.table import IntArray, NodeTable


def _table(n: int) -> NodeTable:
    t = NodeTable()
    for i in range(n):
        t.set_node(node_from_json({"metadata": {"name": f"n{i}"}, "status": {"allocatable": {"cpu": "1"}}}))
    return t


POD = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": []}})


class _Reject:
    """Rejects the listed rows with one message."""

    def __init__(self, name: str, message: str, rows: Sequence[int]) -> None:
        self.name, self.message, self.rows = name, message, rows

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason]:
        mask = np.zeros(table.n, np.bool_)
        mask[list(self.rows)] = True
        return [Reason(self.message, mask)]


class _Fixed:
    def __init__(self, name: str, values: Sequence[int]) -> None:
        self.name, self.values = name, values

    def score(self, pod: PodInfo, table: NodeTable, nodes: Any, state: CycleState) -> IntArray:
        return np.asarray(self.values, np.int64)[nodes]


@pytest.mark.parametrize(
    ("num", "counts", "expected"),
    [
        (3, {"Insufficient cpu": 1, "node(s) had untolerated taint {dedicated: gpu}": 2},
         "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}."),
        # sorted as strings, as upstream's sort.Strings does: "10 ..." < "2 ..."
        (12, {"Insufficient memory": 2, "Insufficient cpu": 10},
         "0/12 nodes are available: 10 Insufficient cpu, 2 Insufficient memory."),
        (0, {}, "no nodes available to schedule pods"),
    ],
)
def test_fit_error_message(num: int, counts: dict[str, int], expected: str) -> None:
    assert fit_error_message(num, counts) == expected


@pytest.mark.parametrize(
    ("scores", "reverse", "expected"),
    [
        ([1, 2, 4], False, [25, 50, 100]),  # 100*s//4
        ([1, 2, 4], True, [75, 50, 0]),  # 100 - 100*s//4
        ([0, 0], False, [0, 0]),
        ([0, 0], True, [100, 100]),  # all zero, reversed: everyone gets the maximum
        ([3, 7], False, [42, 100]),  # 300//7 = 42
    ],
)
def test_default_normalize_score(scores: list[int], reverse: bool, expected: list[int]) -> None:
    assert default_normalize_score(np.array(scores, np.int64), reverse=reverse).tolist() == expected


@pytest.mark.parametrize(
    ("percentage", "nodes", "expected"),
    [
        (None, 5000, 5000),  # vecsched's default: every node
        (0, 50, 50),  # fewer than 100 nodes: all
        (0, 1000, 420),  # adaptive: 50 - 1000/125 = 42%
        (0, 6000, 300),  # 50 - 48 = 2% < 5% floor -> 5% of 6000
        (10, 5000, 500),
        (1, 5000, 100),  # 50 nodes < the 100-node floor
        (100, 5000, 5000),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int | None, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_reasons_come_from_the_first_rejecting_filter() -> None:
    t = _table(4)
    profile = Profile(name="p", filters=[_Reject("A", "first", [0, 1]), _Reject("B", "second", [1, 2, 3])], scorers=[])
    d = profile.schedule(POD, t)
    # n1 was rejected by A already, so B only counts n2 and n3
    assert d.node is None
    assert [d.reasons_of(r) for r in range(4)] == [["first"], ["first"], ["second"], ["second"]]
    assert d.message == "0/4 nodes are available: 2 first, 2 second."


def test_weighted_total_and_best_node() -> None:
    t = _table(3)
    profile = Profile(name="p", filters=[_Reject("A", "no", [0])],
                      scorers=[(_Fixed("S1", [100, 10, 50]), 1), (_Fixed("S2", [0, 40, 10]), 2)])
    d = profile.schedule(POD, t)
    # n0 is infeasible; n1: 10 + 2*40 = 90, n2: 50 + 2*10 = 70
    assert d.node == "n1"
    assert d.scored.tolist() == [1, 2]
    assert d.totals.tolist() == [90, 70]


def test_out_of_range_score_names_the_plugin() -> None:
    profile = Profile(name="p", filters=[], scorers=[(_Fixed("Greedy", [101, 0]), 1)])
    with pytest.raises(PluginError, match="Greedy returned score 101"):
        profile.schedule(POD, _table(2))


def test_ties_are_broken_by_seed_not_by_node_order() -> None:
    t = _table(8)
    picks = {Profile(name="p", filters=[], scorers=[(_Fixed("Flat", [7] * 8), 1)], seed=s).schedule(POD, t).node
             for s in range(20)}
    # 20 seeds over 8 equal nodes land on several of them, not always the first
    assert len(picks) > 3
    again = {Profile(name="p", filters=[], scorers=[(_Fixed("Flat", [7] * 8), 1)], seed=3).schedule(POD, t).node
             for _ in range(5)}
    assert len(again) == 1  # same seed, same pick


def test_percentage_of_nodes_to_score_limits_scored_nodes() -> None:
    t = _table(300)
    profile = Profile(name="p", filters=[], scorers=[(_Fixed("Flat", [1] * 300), 1)], percentage_of_nodes_to_score=10)
    # 10% of 300 = 30 < floor of 100 -> 100 nodes scored, starting at row 0
    d = profile.schedule(POD, t)
    assert len(d.scored) == 100 and d.scored[0] == 0
    # the next decision starts where the last stopped (round-robin), as upstream
    d2 = profile.schedule(POD, t)
    assert d2.scored.min() == 100


class _Pre:
    def __init__(self, name: str, out: Any) -> None:
        self.name, self.out = name, out

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Any:
        return self.out


def test_prefilter_rejection_is_reported_alone() -> None:
    # upstream: "0/N nodes are available: <PreFilter message>." with no per-node counts
    profile = Profile(name="p", prefilters=[_Pre("A", "parsing pod: bad")], filters=[_Reject("B", "x", [0])], scorers=[])
    d = profile.schedule(POD, _table(3))
    assert d.message == "0/3 nodes are available: parsing pod: bad."


def test_prefilter_node_subset_rejects_other_nodes_before_filters() -> None:
    from scoring.framework import NodeSubset
    profile = Profile(name="p", prefilters=[_Pre("NodeAffinity", NodeSubset(frozenset({"n1", "n2", "gone"})))],
                      filters=[_Reject("B", "second", [0, 2])], scorers=[])
    d = profile.schedule(POD, _table(4))
    # n0 and n3 are outside the subset: B never judges them; n2 fails B; n1 fits
    assert d.node == "n1"
    assert [d.reasons_of(r) for r in range(4)] == [
        ["node(s) didn't satisfy plugin(s) [NodeAffinity]"], [], ["second"],
        ["node(s) didn't satisfy plugin(s) [NodeAffinity]"]]


@pytest.mark.parametrize(
    ("subsets", "message"),
    [
        ([("A", set())], "0/2 nodes are available: node(s) didn't satisfy plugin A."),
        ([("A", {"n0"}), ("B", {"n1"})], "0/2 nodes are available: node(s) didn't satisfy plugin(s) [A B] simultaneously."),
    ],
)
def test_empty_prefilter_intersection(subsets: list[tuple[str, set[str]]], message: str) -> None:
    from scoring.framework import NodeSubset
    profile = Profile(name="p", prefilters=[_Pre(n, NodeSubset(frozenset(s))) for n, s in subsets], filters=[], scorers=[])
    assert profile.schedule(POD, _table(2)).message == message


class _Post:
    """A PostFilter plugin with a fixed answer."""

    def __init__(self, name: str, success: bool, message: str, node: str | None, detail: Any = None) -> None:
        self.name, self.result = name, PostFilterResult(name, success, message, node, detail)
        self.calls = 0

    def postfilter(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                   profile: Profile) -> PostFilterResult:
        self.calls += 1
        return self.result


@pytest.mark.parametrize(("answers", "message", "node", "ran"), [
    # Upstream's RunPostFilterPlugins: the first success wins and the later plugins do not run.
    ([("A", True, "", "n0"), ("B", True, "", "n1")], "0/2 nodes are available: 2 full.", "n0", ["A"]),
    # Failures' messages are joined with ", " after the FitError; the last nominating result is kept.
    ([("A", False, "a: no", ""), ("B", False, "b: no", None)], "0/2 nodes are available: 2 full. a: no, b: no", "",
     ["A", "B"]),
    # A failure then a success: the success, and its (empty) message.
    ([("A", False, "a: no", None), ("B", True, "", "n1")], "0/2 nodes are available: 2 full.", "n1", ["A", "B"]),
])
def test_post_filters_run_in_order_until_one_succeeds(answers: list[tuple[str, bool, str, str | None]], message: str,
                                                      node: str | None, ran: list[str]) -> None:
    posts = [_Post(*a) for a in answers]
    profile = Profile(name="p", filters=[_Reject("F", "full", [0, 1])], scorers=[], postfilters=posts)
    d = profile.schedule(POD, _table(2))
    assert d.node is None and d.message == message
    assert d.post_filter is not None and d.post_filter.nominated_node == node
    # Each plugin that ran keeps its own result, by name, in order.
    assert list(d.post_filters) == ran and all(d.post_filters[p.name] is p.result for p in posts if p.name in ran)
