"""The replay's event order (departures before arrivals at equal times, FIFO
arrivals, retry after departures) and its metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import GI, node, sim

from benchmarks.sim.model import SimPod
from benchmarks.sim.replay import Event, replay, stranded_capacity, typical_shapes
from benchmarks.strategies import builtin_profile
from scoring.objects import NodeInfo


def _run(nodes: list[NodeInfo], pods: list[SimPod], *, strategy: str = "FirstFit", retry: bool = False
         ) -> tuple[object, list[Event]]:
    events: list[Event] = []
    m = replay(nodes=nodes, pods=pods, profile=builtin_profile(strategy).build(seed=0), retry=retry, events=events)
    return m, events


ONE_CPU = [node("n", "1", "4Gi")]


@pytest.mark.parametrize(("pods", "expected"), [
    # A leaves at t=10 and B arrives at t=10: the departure goes first, so B fits.
    pytest.param([sim("a", "1", "1Gi", at=0, runs=10), sim("b", "1", "1Gi", at=10)],
                 [(0, "place", "t/a", "n"), (10, "depart", "t/a", "n"), (10, "place", "t/b", "n")],
                 id="departure-before-arrival-at-equal-time"),
    # B arrives a moment before A leaves: no room.
    pytest.param([sim("a", "1", "1Gi", at=0, runs=10), sim("b", "1", "1Gi", at=9.5)],
                 [(0, "place", "t/a", "n"), (9.5, "fail", "t/b", None)],
                 id="arrival-before-departure"),
    # Equal arrival times keep workload order: first come, first served.
    pytest.param([sim("c", "1", "1Gi"), sim("d", "1", "1Gi"), sim("e", "500m", "1Gi")],
                 [(0, "place", "t/c", "n"), (0, "fail", "t/d", None), (0, "fail", "t/e", None)],
                 id="fifo-at-equal-time"),
])
def test_event_order(pods: list[SimPod], expected: list[Event]) -> None:
    _, events = _run(ONE_CPU, pods)
    assert events[: len(expected)] == expected


def test_departures_are_ordered_by_time_not_by_arrival() -> None:
    # a runs 30 s, b runs 5 s: b leaves first (t=6), then a (t=30).
    _, events = _run([node("n", "4", "4Gi")], [sim("a", "1", "1Gi", at=0, runs=30), sim("b", "1", "1Gi", at=1, runs=5),
                                                sim("z", "1", "1Gi", at=100)])
    assert [(t, kind, key) for t, kind, key, _ in events if kind == "depart"] == [(6, "depart", "t/b"), (30, "depart", "t/a")]


@pytest.mark.parametrize(("retry", "placed", "failed"), [
    # b arrives at 5 while a (until 10) fills the node: without retry b fails ...
    pytest.param(False, 1, 1, id="no-retry"),
    # ... with retry it waits and is placed when a leaves at 10.
    pytest.param(True, 2, 0, id="retry"),
])
def test_retry(retry: bool, placed: int, failed: int) -> None:
    m, events = _run(ONE_CPU, [sim("a", "1", "1Gi", at=0, runs=10), sim("b", "1", "1Gi", at=5)], retry=retry)
    assert (m.placed, m.failed) == (placed, failed)
    if retry:
        assert (10, "place", "t/b", "n") in events


def test_metrics_two_nodes_first_fit() -> None:
    # Two nodes of 4 cpu / 8Gi (capacity 8 cpu, 16Gi). FirstFit: p1, p2 -> n1 (full cpu), p3 -> n2.
    nodes = [node("n1", "4", "8Gi"), node("n2", "4", "8Gi")]
    pods = [sim("p1", "2", "2Gi"), sim("p2", "2", "2Gi"), sim("p3", "4", "4Gi")]
    m, events = _run(nodes, pods)
    assert [n for _, _, _, n in events] == ["n1", "n1", "n2"]
    assert (m.placed, m.failed) == (3, 0)
    # cpu 8/8 = 100 %, memory 8Gi/16Gi = 50 %
    assert m.alloc_ratio == {"cpu": 100.0, "memory": 50.0}
    # cpu arrived 25 % after p1 (keys 1..25 -> 25.0), 50 % after p2 (26..50 -> 50.0), 100 % after p3 (51..100 -> 100.0)
    cpu = m.alloc_curve["cpu"]
    assert list(cpu) == list(range(0, 101))  # key 0: before any arrival, 0 % allocated
    assert cpu[0] == 0.0
    assert (cpu[1], cpu[25], cpu[26], cpu[50], cpu[51], cpu[100]) == (25.0, 25.0, 50.0, 50.0, 100.0, 100.0)
    # memory arrived 12.5 % (keys 1..12 -> 12.5), 25 % (13..25 -> 25.0), 50 % (26..50 -> 50.0)
    mem = m.alloc_curve["memory"]
    assert list(mem) == list(range(0, 51))
    assert (mem[12], mem[13], mem[25], mem[26], mem[50]) == (12.5, 25.0, 25.0, 50.0, 50.0)
    # n1 has 0 cpu left: stranded (no typical shape fits), with its 4Gi of free memory: 4/16 = 25 %.
    # n2 has 0 cpu left too, 4Gi free: another 25 %.
    assert m.stranded == {"cpu": 0.0, "memory": 50.0}
    assert m.empty_nodes == 0


def test_stranded_capacity_and_empty_nodes() -> None:
    # Three nodes of 4 cpu / 8Gi; five pods of 1 cpu / 3Gi (the only, hence typical, shape).
    # FirstFit: p1, p2 -> n1 (6Gi; a third would need 9Gi), p3 -> n2; n3 stays empty.
    nodes = [node(f"n{i}", "4", "8Gi") for i in (1, 2, 3)]
    pods = [sim(f"p{i}", "1", "3Gi") for i in (1, 2, 3)]
    m, _ = _run(nodes, pods)
    # n1 free (2 cpu, 2Gi): 1 cpu / 3Gi does not fit -> stranded 2 of 12 cpu = 16.67 %, 2 of 24Gi = 8.33 %
    # n2 free (3 cpu, 5Gi) and n3 free (4, 8Gi) still take one.
    assert m.stranded == pytest.approx({"cpu": 100 * 2 / 12, "memory": 100 * 2 / 24})
    assert m.empty_nodes == 1
    # allocated cpu 3/12 = 25 %, memory 9/24 = 37.5 %
    assert m.alloc_ratio == {"cpu": 25.0, "memory": 37.5}


@pytest.mark.parametrize(("free", "slots", "expected_amount", "expected_mask"), [
    # shape (1, 3): node 0 (2, 2) too little memory; node 1 (3, 5) fits; node 2 (4, 8) fits but no pod slot left.
    pytest.param([[2, 2], [3, 5], [4, 8]], [5, 5, 0], [6, 10], [True, False, True], id="memory-and-slots"),
    pytest.param([[2, 2]], [1], [0, 0], [False], id="second-shape-fits"),
])
def test_stranded_capacity_function(free: list, slots: list, expected_amount: list, expected_mask: list) -> None:
    shapes = np.array([[1, 3], [2, 2]]) if len(free) == 1 else np.array([[1, 3]])
    amount, mask = stranded_capacity(np.array(free), np.array(slots), shapes)
    assert amount.tolist() == expected_amount
    assert mask.tolist() == expected_mask


def test_typical_shapes_cover_ninety_percent() -> None:
    # 6 x A, 3 x B, 1 x C: A covers 60 %, A+B 90 % -> C (10 %) is not typical.
    pods = [sim(f"a{i}", "1", "1Gi").pod for i in range(6)] + [sim(f"b{i}", "2", "1Gi").pod for i in range(3)] \
        + [sim("c", "8", "8Gi").pod]
    assert typical_shapes(pods, ["cpu", "memory"]).tolist() == [[1000, GI], [2000, GI]]


def test_empty_workload() -> None:
    m, events = _run([node("n", "1", "1Gi")], [])
    assert (m.pods, m.placed, m.failed, events) == (0, 0, 0, [])
    assert m.alloc_ratio == {"cpu": 0.0, "memory": 0.0}
    assert m.alloc_curve == {"cpu": {}, "memory": {}}
    assert m.empty_nodes == 1


def test_every_seed_keeps_file_order_unless_shuffled() -> None:
    from benchmarks.sim.sweep import prepare_pods
    pods = [sim(f"p{i:02d}", "1", "1Gi") for i in range(30)]  # all arrive at time 0
    names = [p.pod.name for p in pods]

    def order(seed: int, shuffle: bool) -> list[str]:
        return [p.pod.name for p in prepare_pods(pods, seed=seed, inflate=None, primary="cpu",
                                                 capacity={"cpu": 100_000}, shuffle=shuffle)]

    assert order(0, shuffle=False) == names  # a manifest's file order is its arrival order
    assert order(1, shuffle=False) == names  # for every seed
    assert order(0, shuffle=True) != names  # a trace replayed as in the FGD protocol: shuffled by every seed
    assert sorted(order(0, shuffle=True)) == names
    assert order(3, shuffle=True) == order(3, shuffle=True)  # reproducible
