"""The profile's tie-break among nodes of equal best total: ``Random`` (kube-scheduler's
uniform choice, drawn from the profile's seeded generator exactly as before the setting
existed), ``NodeName`` (the smallest name, byte order, as the FGD authors' simulator) and
``NodeOrder`` (the first row of the table) -- through ``Profile.schedule`` and through gang
planning, on tables whose names are not in table order, and after nodes come and go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scheduler.config import API_VERSION, parse_config
from scoring.framework import TIE_BREAKS, CycleState, Profile, Reason
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.gang import place_group
from scoring.plugins.podgroups import POD_GROUP_LABEL, PodGroups
from scoring.table import IntArray, NodeTable

POD = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": []}})


def _node(name: str, cpu: str = "1") -> NodeInfo:
    return node_from_json({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                           "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "32"}}})


def _table(names: Sequence[str]) -> NodeTable:
    t = NodeTable(capacity=2)  # small, so that the table grows while nodes are added
    for n in names:
        t.set_node(_node(n))
    return t


class _Fixed:
    """Scores each row by a fixed list."""

    def __init__(self, name: str, values: Sequence[int]) -> None:
        self.name, self.values = name, values

    def score(self, pod: PodInfo, table: NodeTable, nodes: Any, state: CycleState) -> IntArray:
        return np.asarray(self.values, np.int64)[nodes]


class _Reject:
    """Rejects the listed rows."""

    def __init__(self, rows: Sequence[int]) -> None:
        self.name, self.rows = "Reject", rows

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason]:
        mask = np.zeros(table.n, np.bool_)
        mask[list(self.rows)] = True
        return [Reason("rejected", mask)] if self.rows else []


def _profile(tie_break: str, scores: Sequence[Sequence[int]], *, weights: Sequence[int] = (), reject: Sequence[int] = (),
             seed: int = 0) -> Profile:
    scorers = [(_Fixed(f"S{i}", s), weights[i] if weights else 1) for i, s in enumerate(scores)]
    return Profile(name="p", filters=[_Reject(reject)], scorers=scorers, seed=seed, tie_break=tie_break)


# (names in table order, scores per plugin, weights, rejected rows, NodeName's pick, NodeOrder's pick)
CASES = [
    # Best total 9 on rows 2, 3, 4 (node-a, node-2, node-c). Byte order: '2' (0x32) < 'a' (0x61),
    # so NodeName takes node-2; the first of them in the table is node-a.
    pytest.param(["node-b", "node-10", "node-a", "node-2", "node-c"], [[5, 3, 9, 9, 9]], [], [],
                 "node-2", "node-a", id="names-not-in-table-order"),
    # All tie. Byte order, not numeric: "n-10" < "n-100" < "n-9" ('1' < '9'; a prefix sorts first).
    pytest.param(["n-9", "n-10", "n-100"], [[4, 4, 4]], [], [], "n-10", "n-9", id="byte-order-not-numeric"),
    # One best node: no tie, both take it whatever its name or row.
    pytest.param(["z", "a"], [[10, 0]], [], [], "z", "z", id="unique-best"),
    # All tie but "a" (row 1) is filtered out: the smallest feasible name is "b"; the first feasible row "c".
    pytest.param(["c", "a", "b"], [[1, 1, 1]], [], [1], "b", "c", id="smallest-name-infeasible"),
    # Totals of two plugins: 100+0, 0+100, 50+50 all 100 -> a three-way tie: NodeName "k", NodeOrder "m".
    pytest.param(["m", "k", "x"], [[100, 0, 50], [0, 100, 50]], [1, 1], [], "k", "m", id="tie-of-weighted-totals"),
    # Weight 2 on the second: 100, 200, 150 -> "k" alone, for both.
    pytest.param(["m", "k", "x"], [[100, 0, 50], [0, 100, 50]], [1, 2], [], "k", "k", id="weights-break-the-tie"),
]


@pytest.mark.parametrize(("names", "scores", "weights", "reject", "by_name", "by_order"), CASES)
@pytest.mark.parametrize("seed", [0, 7])
def test_node_name_and_node_order(names: list[str], scores: list[list[int]], weights: list[int], reject: list[int],
                                  by_name: str, by_order: str, seed: int) -> None:
    table = _table(names)
    for mode, expected in (("NodeName", by_name), ("NodeOrder", by_order)):
        profile = _profile(mode, scores, weights=weights, reject=reject, seed=seed)
        # The seed plays no part, and deciding again gives the same node.
        assert [profile.schedule(POD, table).node for _ in range(3)] == [expected] * 3, mode


# Best total 9 on rows 2, 3, 4 = node-a, node-2, node-c. Random's pick is
# ties[default_rng(seed).integers(3)], the draw vecsched always made: numpy's PCG64 gives
# 2, 1, 2, 2, 2 for seeds 0..4 -> node-c, node-2, node-c, node-c, node-c (the same picks as
# the code before the setting existed, checked against it when the setting was added).
RANDOM_NAMES = ["node-b", "node-10", "node-a", "node-2", "node-c"]
RANDOM_SCORES = [5, 3, 9, 9, 9]


@pytest.mark.parametrize(("seed", "expected"), [(0, "node-c"), (1, "node-2"), (2, "node-c"), (3, "node-c"),
                                                (4, "node-c")])
def test_random_is_the_default_and_draws_as_before(seed: int, expected: str) -> None:
    table = _table(RANDOM_NAMES)
    draw = int(np.random.default_rng(seed).integers(3))
    assert RANDOM_NAMES[2 + draw] == expected
    default = Profile(name="p", filters=[], scorers=[(_Fixed("S", RANDOM_SCORES), 1)], seed=seed)
    assert default.tie_break == "Random"
    assert default.schedule(POD, table).node == expected
    assert _profile("Random", [RANDOM_SCORES], seed=seed).schedule(POD, table).node == expected


def test_random_draws_only_on_ties() -> None:
    table = _table(["a", "b", "c"])
    profile = _profile("Random", [[0, 0, 0]], seed=0)
    rows = np.arange(3, dtype=np.intp)
    # A unique best takes no draw: the tie after it gets the stream's first draw (2 for seed 0),
    # the next tie its second (1).
    assert profile.select(np.array([1, 5, 2], np.int64), rows, table) == 1
    assert profile.select(np.array([9, 9, 9], np.int64), rows, table) == 2
    assert profile.select(np.array([9, 9, 9], np.int64), rows, table) == 1
    # Over 20 seeds, 3 equal nodes: Random lands on each of them (NodeName would always take "a").
    picks = {_profile("Random", [[0, 0, 0]], seed=s).schedule(POD, table).node for s in range(20)}
    assert picks == {"a", "b", "c"}


# Steps on one table, each followed by a decision where every node ties: NodeName must take the
# smallest name now in the table, NodeOrder the node in row 0. Removing a node moves the last row
# into its place; removing the last row moves nothing.
STEPS: list[tuple[str, str, str, str]] = [
    # (operation, node, NodeName's pick, NodeOrder's pick)
    ("add", "n-d", "n-d", "n-d"),
    ("add", "n-b", "n-b", "n-d"),
    ("add", "n-e", "n-b", "n-d"),
    ("add", "n-a", "n-a", "n-d"),      # rows: n-d n-b n-e n-a
    ("remove", "n-e", "n-a", "n-d"),   # n-a moves to row 2 (and must keep its rank): n-d n-b n-a
    ("add", "n-c", "n-a", "n-d"),      # n-d n-b n-a n-c
    ("remove", "n-a", "n-b", "n-d"),   # n-c moves to row 2: n-d n-b n-c
    ("remove", "n-c", "n-b", "n-d"),   # the last row: nothing moves: n-d n-b
    ("add", "n-0", "n-0", "n-d"),      # a new name in the row n-c left: n-d n-b n-0
    ("remove", "n-0", "n-b", "n-d"),
    ("add", "n-0", "n-0", "n-d"),      # the same name in the same row again
    ("remove", "n-d", "n-0", "n-0"),   # n-0 moves to row 0: n-0 n-b
    ("update", "n-b", "n-0", "n-0"),   # a changed node, same name
]


@pytest.mark.parametrize("mode", ["NodeName", "NodeOrder"])
def test_picks_follow_nodes_added_and_removed(mode: str) -> None:
    table = NodeTable(capacity=2)

    class Flat:
        name = "Flat"

        def score(self, pod: PodInfo, t: NodeTable, nodes: Any, state: CycleState) -> IntArray:
            return np.zeros(len(nodes), np.int64)

    profile = Profile(name="p", filters=[], scorers=[(Flat(), 1)], tie_break=mode)
    for op, name, by_name, by_order in STEPS:
        if op == "remove":
            table.remove_node(name)
        else:
            table.set_node(_node(name, cpu="2" if op == "update" else "1"))
        got = profile.schedule(POD, table).node
        assert got == (by_name if mode == "NodeName" else by_order), (op, name, table.names)
        if mode == "NodeName":
            assert got == min(table.names)


def test_unknown_tie_break_is_refused() -> None:
    with pytest.raises(ValueError, match="tie_break must be one of Random, NodeName, NodeOrder, got 'Smallest'"):
        Profile(name="p", filters=[], scorers=[], tie_break="Smallest")
    assert TIE_BREAKS == ("Random", "NodeName", "NodeOrder")


# Gang planning places a group's members one after another with the profile's own
# selection. Nodes of 4 CPU, members of 3: one member per node. Every score plugin is off,
# so every feasible node ties.
@pytest.mark.parametrize(("mode", "expected"), [
    # smallest names first: g-0, g-1, g-2 (g-3 is left)
    ("NodeName", ["g-0", "g-1", "g-2"]),
    # table order: g-3, g-1, g-2 (g-0 is left)
    ("NodeOrder", ["g-3", "g-1", "g-2"]),
])
def test_gang_planning_uses_the_tie_break(mode: str, expected: list[str]) -> None:
    cfg = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [{
        "vecsched.io/tieBreak": mode, "plugins": {"score": {"disabled": [{"name": "*"}]}}}]})
    profile = cfg.profiles[0].build(seed=0)
    table = NodeTable(capacity=4)
    for name in ("g-3", "g-1", "g-2", "g-0"):
        table.set_node(_node(name, cpu="4"))
    members = [pod_from_json({"metadata": {"name": f"m{i}", "namespace": "ns", "labels": {POD_GROUP_LABEL: "pg"}},
                              "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}]}})
               for i in range(3)]
    groups = PodGroups.of(table)
    pg = groups.apply({"metadata": {"name": "pg", "namespace": "ns"}, "spec": {"minMember": 3}})
    for m in members:
        groups.observe(m)
    plan = place_group(profile, pg, members, table)
    assert plan.fits
    assert [d.node for d in plan.decisions] == expected
