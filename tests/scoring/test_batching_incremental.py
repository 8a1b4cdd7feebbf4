"""A batched decision moves only the changed rows' scores and totals, and keeps the best total's
tie set from one decision to the next: these cases show it take the shortcut where it can and
fall back where it must (the best row leaves the tie set, a tie appears or disappears, a filter's
verdict flips, many rows changed, a ROWS plugin normalises), always deciding as Profile.schedule.

Unless a case says otherwise: nodes of N cores and N Gi, replicas of 1 cpu and 1Gi, and one
plugin, NodeResourcesFit (LeastAllocated, cpu and memory weighted 1), as filter and score: a
node of 4 holding k replicas scores (4 - (k + 1)) * 100 // 4 for the next one (75, 50, 25, 0),
a node of 8 (8 - (k + 1)) * 100 // 8 (87, 75, 62, 50, 37, 25, 12, 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings, strategies as st

import scoring.batching as batching
from scheduler.config import default_config
from scoring.batching import HIT, MISS, ROWS, Batcher, Signed
from scoring.framework import Decision, PluginError, Profile, ScorePlugin, default_normalize_score
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.node_resources_fit import new as node_resources_fit
from scoring.table import IntArray, NodeTable
from scoring.tie_break import NODE_NAME, NODE_ORDER, RANDOM, break_tie, move_tie_set


def _node(name: str, cores: int) -> NodeInfo:
    return node_from_json({"metadata": {"name": name},
                           "status": {"allocatable": {"cpu": str(cores), "memory": f"{cores}Gi", "pods": "110"}}})


def _pod(name: str) -> PodInfo:
    return pod_from_json({"metadata": {"name": name, "namespace": "d", "uid": name}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}})


def _tables(nodes: list[tuple[str, int]], placed: list[tuple[str, str]]) -> tuple[NodeTable, NodeTable]:
    """Two equal tables: one for Profile.schedule, one for the Batcher."""
    out = []
    for _ in range(2):
        table = NodeTable()
        for name, cores in nodes:
            table.set_node(_node(name, cores))
        for pod, node in placed:
            table.add_pod(_pod(pod), node)
        out.append(table)
    return out[0], out[1]


def _assert_same(got: Decision, want: Decision) -> None:
    assert (got.node, got.message, got.feasible.tolist(), got.scored.tolist(), got.totals.tolist()) == \
        (want.node, want.message, want.feasible.tolist(), want.scored.tolist(), want.totals.tolist())
    assert {k: v.tolist() for k, v in got.scores.items()} == {k: v.tolist() for k, v in want.scores.items()}


def _tie_set(batcher: Batcher, table: NodeTable) -> list[str]:
    """The nodes of the best total that the batcher keeps for its one signature (which path
    ran shows in it: a pass over every total finds them all again)."""
    (kept,) = batcher._kept.values()
    assert kept.last is not None
    return [table.names[int(kept.last.rows[i])] for i in kept.last.ties]


Step = tuple[Any, ...]
"""("decide", result, node, totals, tie set) -- decide a replica, assume it where it went; or
("remove", pod): a watch event takes the pod off its node."""


@pytest.mark.parametrize("tie_break,nodes,placed,steps", [
    # Three equal nodes: each replica leaves the tie set, no pass over the totals, until the
    # last of it leaves (n02: 75 -> 50) and a pass finds all three again at 50.
    (NODE_ORDER, [("n00", 4), ("n01", 4), ("n02", 4)], [], [
        ("decide", MISS, "n00", [75, 75, 75], ["n00", "n01", "n02"]),
        ("decide", HIT, "n01", [50, 75, 75], ["n01", "n02"]),
        ("decide", HIT, "n02", [50, 50, 75], ["n02"]),  # the tie disappears: one best, no draw
        ("decide", HIT, "n00", [50, 50, 50], ["n00", "n01", "n02"]),  # the best row left: a pass
    ]),
    # The same with NodeName: rows n02, n00, n01 (the order the nodes came in), and the smallest
    # name among the ties wins.
    (NODE_NAME, [("n02", 4), ("n00", 4), ("n01", 4)], [], [
        ("decide", MISS, "n00", [75, 75, 75], ["n02", "n00", "n01"]),
        ("decide", HIT, "n01", [75, 50, 75], ["n02", "n01"]),
        ("decide", HIT, "n02", [75, 50, 50], ["n02"]),
        ("decide", HIT, "n00", [50, 50, 50], ["n02", "n00", "n01"]),
    ]),
    # A tie appears: n00 holds e0 (50), so the first replica goes to n01 (ties n01, n02 at 75).
    # Then e0 goes: n00 rises 50 -> 75 and joins the tie set, n01 falls 75 -> 50 and leaves it.
    (NODE_ORDER, [("n00", 4), ("n01", 4), ("n02", 4)], [("e0", "n00")], [
        ("decide", MISS, "n01", [50, 75, 75], ["n01", "n02"]),
        ("remove", "d/e0"),
        ("decide", HIT, "n00", [75, 50, 75], ["n00", "n02"]),
    ]),
    # A row rises above the best: n00 (8 cores) holds e0..e2, (8 - 4) * 100 // 8 = 50; once they
    # go it scores 87 > 75 and is the best alone; n01's fall 75 -> 50 no longer touches the best.
    (NODE_ORDER, [("n00", 8), ("n01", 4), ("n02", 4)], [("e0", "n00"), ("e1", "n00"), ("e2", "n00")], [
        ("decide", MISS, "n01", [50, 75, 75], ["n01", "n02"]),
        ("remove", "d/e0"), ("remove", "d/e1"), ("remove", "d/e2"),
        ("decide", HIT, "n00", [87, 50, 75], ["n00"]),
    ]),
    # A filter verdict flips: n00 (4 cores) holds e0, e1 -> 25; n01 (8 cores) holds f0..f5 -> 12.
    # The best row falls each time (passes), then n00 is full: "Insufficient cpu" and memory for it,
    # a full decision from the kept state over n01 alone; then nothing fits (no decision: the
    # ordinary path reports it).
    (NODE_ORDER, [("n00", 4), ("n01", 8)], [("e0", "n00"), ("e1", "n00"), *((f"f{i}", "n01") for i in range(6))], [
        ("decide", MISS, "n00", [25, 12], ["n00"]),
        ("decide", HIT, "n01", [0, 12], ["n01"]),  # n00: (4 - 4) * 100 // 4 = 0
        ("decide", HIT, "n00", [0, 0], ["n00", "n01"]),  # n01: (8 - 8) * 100 // 8 = 0: a tie appears
        ("decide", HIT, "n01", [0], ["n01"]),  # n00 holds 4: it no longer fits
        ("decide", HIT, None, [], []),  # n01 holds 8: "0/2 nodes are available: 2 Insufficient cpu, ..."
    ]),
    # Many rows changed (20 > _FEW_ROWS, 16): n00..n19 each hold e0..e19 (50 each); the first
    # replica goes to n00 (25 after), then e1..e19 go (75 each): array operations and a pass.
    (NODE_ORDER, [(f"n{i:02d}", 4) for i in range(20)], [(f"e{i}", f"n{i:02d}") for i in range(20)], [
        ("decide", MISS, "n00", [50] * 20, [f"n{i:02d}" for i in range(20)]),
        *(("remove", f"d/e{i}") for i in range(1, 20)),
        ("decide", HIT, "n01", [25] + [75] * 19, [f"n{i:02d}" for i in range(1, 20)]),
    ]),
], ids=["leave-one-by-one", "node-name", "tie-appears", "rises-above-best", "filter-flips", "many-rows"])
def test_a_batched_decision_keeps_the_tie_set(tie_break: str, nodes: list[tuple[str, int]],
                                              placed: list[tuple[str, str]], steps: list[Step]) -> None:
    assert batching._FEW_ROWS < 20  # (the many-rows case is moved with arrays)
    plain_table, table = _tables(nodes, placed)
    fit = node_resources_fit({}, "")
    plain = Profile(name="p", filters=[fit], scorers=[(fit, 1)], tie_break=tie_break)
    batcher = Batcher(Profile(name="p", filters=[fit], scorers=[(fit, 1)], tie_break=tie_break))
    replicas = 0
    for step in steps:
        if step[0] == "remove":
            for t in (plain_table, table):
                assert t.remove_pod(step[1]) is not None
            continue
        _, result, node, totals, ties = step
        replicas += 1
        pod = _pod(f"r{replicas}")
        want = plain.schedule(pod, plain_table)
        out = batcher.decide(pod, table)
        assert out.result == result
        assert (want.node, want.totals.tolist()) == (node, totals)
        if node is None:
            assert out.decision is None
            assert want.message == "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."
            continue
        assert out.decision is not None
        _assert_same(out.decision, want)
        assert _tie_set(batcher, table) == ties
        for t in (plain_table, table):
            t.add_pod(pod, node)


def test_random_ties_draw_as_unbatched() -> None:
    # Three equal nodes, RANDOM with the same seed on both sides: tie sets of 3, 2 and 1 nodes
    # (each replica takes one of them to 50), so two draws -- then a pass finds all 3 again at
    # 50 and a third draw. Every choice is Profile.schedule's, draw for draw.
    plain_table, table = _tables([("n00", 4), ("n01", 4), ("n02", 4)], [])
    fit = node_resources_fit({}, "")
    plain = Profile(name="p", filters=[fit], scorers=[(fit, 1)], tie_break=RANDOM, seed=3)
    batcher = Batcher(Profile(name="p", filters=[fit], scorers=[(fit, 1)], tie_break=RANDOM, seed=3))
    sizes = []
    for i in range(4):
        pod = _pod(f"r{i}")
        want = plain.schedule(pod, plain_table)
        out = batcher.decide(pod, table)
        assert out.decision is not None
        _assert_same(out.decision, want)
        sizes.append(len(_tie_set(batcher, table)))
        for t in (plain_table, table):
            t.add_pod(pod, str(want.node))
    assert sizes == [3, 2, 1, 3]


class _FreeCores:
    """A ROWS score plugin that normalises: a node's free whole cores, scaled by
    DefaultNormalizeScore (the most free scores 100). A changed row can move every score."""

    name = "FreeCores"

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        return Signed(ROWS)

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: dict[str, Any]) -> IntArray:
        cpu = table.resource_index["cpu"]
        free: IntArray = (table.allocatable[nodes, cpu] - table.requested[nodes, cpu]) // 1000
        return free

    def normalize(self, scores: IntArray, state: dict[str, Any]) -> IntArray:
        return default_normalize_score(scores)


class _Crowded:
    """A ROWS score plugin that breaks the score range on a node holding a pod: 100, else 101."""

    name = "Crowded"

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        return Signed(ROWS)

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: dict[str, Any]) -> IntArray:
        held: IntArray = 100 + (table.requested[nodes, table.resource_index["cpu"]] > 0)
        return held


_: tuple[type[ScorePlugin], type[ScorePlugin]] = (_FreeCores, _Crowded)


def test_a_rows_plugin_that_normalises_moves_every_score() -> None:
    # n00 (8 cores), n01 and n02 (4): NodeResourcesFit + FreeCores, weights 1, NodeOrder.
    # 1: free 8, 4, 4 -> 100 * free // 8 = 100, 50, 50; fit 87, 75, 75 -> 187, 125, 125: n00.
    # 2: free 7, 4, 4 -> 100, 100 * 4 // 7 = 57, 57; fit 75, 75, 75 -> 175, 132, 132: n00.
    # 3: free 6, 4, 4 -> 100, 66, 66; fit 62, 75, 75 -> 162, 141, 141: n00.
    # 4: free 5, 4, 4 -> 100, 80, 80; fit 50, 75, 75 -> 150, 155, 155: n01 (ties n01, n02).
    # The changed row held the top free count each time: every normalised score moved.
    plain_table, table = _tables([("n00", 8), ("n01", 4), ("n02", 4)], [])
    fit, free = node_resources_fit({}, ""), _FreeCores()
    plain = Profile(name="p", filters=[fit], scorers=[(fit, 1), (free, 1)], tie_break=NODE_ORDER)
    batcher = Batcher(Profile(name="p", filters=[fit], scorers=[(fit, 1), (free, 1)], tie_break=NODE_ORDER))
    expected = [("n00", [187, 125, 125]), ("n00", [175, 132, 132]), ("n00", [162, 141, 141]), ("n01", [150, 155, 155])]
    for i, (node, totals) in enumerate(expected):
        pod = _pod(f"r{i}")
        want = plain.schedule(pod, plain_table)
        out = batcher.decide(pod, table)
        assert (out.result, want.node, want.totals.tolist()) == (MISS if i == 0 else HIT, node, totals)
        assert out.decision is not None
        _assert_same(out.decision, want)
        for t in (plain_table, table):
            t.add_pod(pod, node)


def test_a_changed_row_out_of_range_fails_as_unbatched() -> None:
    # Crowded scores 100 on the two empty nodes (a MISS computes that), then 101 on the row the
    # first replica took: the batched decision refuses it with Profile.schedule's message.
    plain_table, table = _tables([("n00", 4), ("n01", 4)], [])
    crowded = _Crowded()
    plain = Profile(name="p", filters=[], scorers=[(crowded, 1)], tie_break=NODE_ORDER)
    batcher = Batcher(Profile(name="p", filters=[], scorers=[(crowded, 1)], tie_break=NODE_ORDER))
    first = batcher.decide(_pod("r0"), table)
    assert first.result == MISS and first.decision is not None and first.decision.node == "n00"
    for t in (plain_table, table):
        t.add_pod(_pod("r0"), "n00")
    with pytest.raises(PluginError) as want:
        plain.schedule(_pod("r1"), plain_table)
    with pytest.raises(PluginError) as got:
        batcher.decide(_pod("r1"), table)
    assert str(got.value) == str(want.value) == "plugin Crowded returned score 101 outside 0..100"


@pytest.mark.parametrize("tie_break,ties,rows,expected", [
    (RANDOM, [4], [0, 2, 5, 7, 9], 4),  # one best: no draw
    (NODE_ORDER, [1, 3], [0, 2, 5, 7, 9], 1),  # rows 2 and 7: the earlier, index 1
    (NODE_NAME, [1, 3], [0, 2, 5, 7, 9], 3),  # rows 2 ("z") and 7 ("b"): "b", index 3
], ids=["single", "node-order", "node-name"])
def test_break_tie(tie_break: str, ties: list[int], rows: list[int], expected: int) -> None:
    table = NodeTable()
    for i in range(10):
        table.set_node(_node({2: "z", 7: "b"}.get(i, f"n{i}"), 4))
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    got = break_tie(ties=np.array(ties, np.intp), rows=np.array(rows, np.intp), table=table, tie_break=tie_break, rng=rng)
    assert got == expected
    assert rng.bit_generator.state == before  # none of these draws


@pytest.mark.parametrize("totals,at,total,expected", [
    # totals [75, 50, 75, 75]: best 75, tie set [0, 2, 3]
    ([75, 50, 75, 75], 1, 87, (87, [1])),  # 87 > 75: a best of its own
    ([75, 50, 75, 75], 1, 75, (75, [0, 1, 2, 3])),  # reaches 75: joins, in order
    ([75, 50, 75, 75], 1, 25, (75, [0, 2, 3])),  # 50 -> 25, below before and after
    ([75, 50, 75, 75], 2, 50, (75, [0, 3])),  # 75 -> 50: leaves
    ([75, 50, 75, 75], 2, 80, (80, [2])),  # a tie member rises: alone
    ([75, 50, 50, 50], 0, 50, None),  # the only best falls: the new best (50, [0..3]) needs a pass
    ([75, 50, 50, 50], 0, 62, None),  # ... even to above the others: 62, but only a pass knows
], ids=["rises-above", "joins", "below", "leaves", "member-rises", "last-leaves", "last-leaves-above-rest"])
def test_move_tie_set(totals: list[int], at: int, total: int, expected: tuple[int, list[int]] | None) -> None:
    best = max(totals)
    ties = np.flatnonzero(np.array(totals) == best).astype(np.intp)
    got = move_tie_set(best=best, ties=ties, at=at, was=totals[at], total=total)
    assert (got if got is None else (got[0], got[1].tolist())) == expected
    if got is not None:  # what a pass over the moved totals finds
        moved = [total if i == at else t for i, t in enumerate(totals)]
        assert (got[0], got[1].tolist()) == (max(moved), [i for i, t in enumerate(moved) if t == max(moved)])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), picks=st.lists(st.integers(0, 3), min_size=4, max_size=12))
def test_random_break_tie_draws_as_profile_select(seed: int, picks: list[int]) -> None:
    # Totals where the best (3) is held by the picked indices: Profile.select and break_tie over
    # the same tie set choose the same index with generators of one seed, draw after draw.
    table = NodeTable()
    for i in range(4):
        table.set_node(_node(f"n{i}", 4))
    profile = Profile(name="p", filters=[], scorers=[], seed=seed)
    rng = np.random.default_rng(seed)
    rows = np.arange(4, dtype=np.intp)
    for k in picks:
        totals = np.array([3 if i <= k else 1 for i in range(4)], np.int64)  # ties 0..k
        ties = np.flatnonzero(totals == 3)
        assert break_tie(ties=ties, rows=rows, table=table, tie_break=RANDOM, rng=rng) == profile.select(totals, rows, table)


_OPS = st.lists(st.one_of(
    st.tuples(st.just("pods"), st.integers(1, 6)),
    st.tuples(st.just("remove"), st.integers(1, 24)),  # that many placed pods go: up to 24 rows at once
), min_size=1, max_size=10)


@pytest.mark.parametrize("few_rows", [0, 10**6], ids=["arrays-always", "rows-always"])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), sizes=st.lists(st.sampled_from([2, 4, 8]), min_size=1, max_size=24), ops=_OPS)
def test_both_ways_of_moving_rows_decide_as_unbatched(few_rows: int, seed: int, sizes: list[int],
                                                      ops: list[tuple[str, int]]) -> None:
    # The default profile, random ties, replicas of one pod between bursts of pod removals, with
    # every change moved by array operations or every change moved row by row.
    plain_table, table = _tables([(f"n{i:02d}", c) for i, c in enumerate(sizes)], [])
    cfg = default_config().profiles[0]
    plain, batcher = cfg.build(seed=seed), Batcher(cfg.build(seed=seed))
    replicas = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batching, "_FEW_ROWS", few_rows)
        for kind, count in ops:
            if kind == "remove":
                for key in sorted(plain_table.pods)[:count]:
                    for t in (plain_table, table):
                        t.remove_pod(key)
                continue
            for _ in range(count):
                replicas += 1
                pod = _pod(f"r{replicas}")
                want = plain.schedule(pod, plain_table)
                out = batcher.decide(pod, table)
                _assert_same(out.decision if out.decision is not None else batcher.profile.schedule(pod, table), want)
                if want.node is not None:
                    for t in (plain_table, table):
                        t.add_pod(pod, want.node)
