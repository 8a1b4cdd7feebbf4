"""The MILP bound on cases small enough to solve by hand."""

from __future__ import annotations

import pytest
from sim_helpers import node, sim

from benchmarks.sim.bound import milp_bound, pod_classes
from benchmarks.sim.replay import replay
from benchmarks.strategies import builtin_profile

TAINT = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
# Pods of 5, 3, 7 and 5 cpu, arriving in that order.
PODS = [sim("p5a", "5", "1Gi"), sim("p3", "3", "1Gi"), sim("p7", "7", "1Gi"), sim("p5b", "5", "1Gi")]


@pytest.mark.parametrize(("nodes", "objective", "expected"), [
    # Two 10-cpu nodes: {5, 5} on one and {7, 3} on the other place all 4 pods (20 cpu).
    pytest.param([node("a", "10", "64Gi"), node("b", "10", "64Gi")], "pods", 4, id="pods-two-nodes"),
    pytest.param([node("a", "10", "64Gi"), node("b", "10", "64Gi")], "cpu", 20_000, id="cpu-two-nodes"),
    # b is tainted and no pod tolerates it (the profile's TaintToleration filter): only a's 10 cpu.
    # Any three pods need >= 3 + 5 + 5 = 13 cpu, so at most 2 pods; {5, 5} or {7, 3} fill it: 10 cpu.
    pytest.param([node("a", "10", "64Gi"), node("b", "10", "64Gi", taints=[TAINT])], "pods", 2, id="pods-taint"),
    pytest.param([node("a", "10", "64Gi"), node("b", "10", "64Gi", taints=[TAINT])], "cpu", 10_000, id="cpu-taint"),
    # Pod slots count too: 1 pod per node -> 2 pods.
    pytest.param([node("a", "10", "64Gi", pods=1), node("b", "10", "64Gi", pods=1)], "pods", 2, id="pod-slots"),
])
def test_bound_by_hand(nodes: list, objective: str, expected: float) -> None:
    b = milp_bound(nodes=nodes, pods=PODS, profile=builtin_profile("FirstFit").build(), resources=["cpu", "memory"],
                   objective=objective, time_limit=30)
    assert b.optimal and b.value == pytest.approx(expected)


def test_first_fit_against_the_bound() -> None:
    # FirstFit: 5 -> a, 3 -> a (8), 7 -> b, 5 -> nowhere (a has 2, b has 3): 3 of the optimal 4 = 0.75.
    nodes = [node("a", "10", "64Gi"), node("b", "10", "64Gi")]
    m = replay(nodes=nodes, pods=PODS, profile=builtin_profile("FirstFit").build())
    b = milp_bound(nodes=nodes, pods=PODS, profile=builtin_profile("FirstFit").build(), resources=["cpu", "memory"])
    assert (m.placed, b.value, m.placed / b.value) == (3, 4, 0.75)


def test_classes_group_identical_pods() -> None:
    nodes = [node("a", "10", "64Gi"), node("b", "10", "64Gi", taints=[TAINT])]
    req, feas, counts = pod_classes(nodes, PODS, builtin_profile("default").build(), ["cpu", "memory"])
    # 5 cpu (x2), 3 cpu, 7 cpu; each feasible on a only; last column = one pod slot
    assert sorted(zip(req[:, 0].tolist(), counts.tolist())) == [(3000, 1), (5000, 2), (7000, 1)]
    assert feas.tolist() == [[True, False]] * 3 and set(req[:, 2].tolist()) == {1}


@pytest.mark.parametrize(("pods", "objective", "status"), [
    pytest.param([sim("a", "1", "1Gi", runs=5)], "pods", "skipped: the workload has departures", id="dynamic"),
    pytest.param(PODS, "nvidia.com/gpu", "skipped: the cluster has no nvidia.com/gpu", id="unknown-resource"),
])
def test_bound_skipped(pods: list, objective: str, status: str) -> None:
    b = milp_bound(nodes=[node("a", "10", "64Gi")], pods=pods, profile=builtin_profile("default").build(),
                   resources=["cpu", "memory"], objective=objective)
    assert b.value is None and b.status.startswith(status)
