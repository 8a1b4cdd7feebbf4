"""LoadMetrics: the node-metrics sample aligned to the table's rows, and the pods placed
recently (upstream's PodAssignEventHandler with the window rule of TargetLoadPacking),
plus the readers they share: GetResourceData (resourcestats_test.go's metrics) and Go's
rounding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.load import Metric, Window, WatcherMetrics
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.node_load import (
    LoadMetrics,
    container_amounts,
    go_round,
    go_round_int,
    overhead_amounts,
    packing_cpu,
    resource_data,
    scheduled_time,
)
from scoring.table import NodeTable

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
NAN = float("nan")


def node(name: str, *, allocatable: dict[str, str] | None = None, capacity: dict[str, str] | None = None) -> NodeInfo:
    status: dict[str, Any] = {"allocatable": allocatable or {"cpu": "4", "memory": "8Gi", "pods": "110"}}
    if capacity is not None:
        status["capacity"] = capacity
    return node_from_json({"metadata": {"name": name}, "status": status})


def pod(name: str, *, cpu: str = "1", uid: str = "", condition: dict[str, str] | None = None) -> PodInfo:
    obj: dict[str, Any] = {"metadata": {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}"},
                           "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}
    if condition is not None:
        obj["status"] = {"conditions": [{"type": "PodScheduled", **condition}]}
    return pod_from_json(obj)


def metric(kind: str, operator: str, value: float) -> Metric:
    return Metric(name="m", type=kind, operator=operator, rollup="15m", value=value)


def sample(nodes: dict[str, tuple[Metric, ...]], *, end: int = 1000, timestamp: int | None = None) -> WatcherMetrics:
    return WatcherMetrics(timestamp=end if timestamp is None else timestamp, window=Window("15m", end - 900, end),
                          source="Prometheus", nodes=nodes)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def loaded(*names: str, t: float = 0.0) -> tuple[NodeTable, LoadMetrics, Clock]:
    table = NodeTable(capacity=2)
    for name in names:
        table.set_node(node(name))
    load = LoadMetrics.of(table)
    clock = Clock(t)
    load.clock = clock
    return table, load, clock


def by_name(table: NodeTable, values: np.ndarray) -> dict[str, float]:
    return {table.names[i]: float(values[i]) for i in range(table.n)}


def cpu_milli(p: PodInfo) -> float:
    return float(p.requests.get("cpu", 0))


# ---- readers ----------------------------------------------------------------------------------------

# resourcestats_test.go's metrics: CPU "" 40, CPU AVG 40, CPU STD 36, Memory AVG 20, Memory STD 10.
UPSTREAM_METRICS = (metric("CPU", "", 40), metric("CPU", "AVG", 40), metric("CPU", "STD", 36),
                    metric("Memory", "AVG", 20), metric("Memory", "STD", 10))


@pytest.mark.parametrize(("metrics", "kind", "want"), [
    pytest.param(UPSTREAM_METRICS, "CPU", (40, 36, True), id="test-cpu"),
    pytest.param(UPSTREAM_METRICS, "Memory", (20, 10, True), id="test-memory"),
    pytest.param(UPSTREAM_METRICS[3:], "CPU", (0, 0, False), id="test-missing"),
    # Latest stands in until an AVG is seen; a Latest after the AVG does not replace it.
    pytest.param((metric("CPU", "Latest", 50), metric("CPU", "AVG", 30)), "CPU", (30, 0, True), id="latest-then-avg"),
    pytest.param((metric("CPU", "AVG", 30), metric("CPU", "Latest", 50)), "CPU", (30, 0, True), id="avg-then-latest"),
    pytest.param((metric("CPU", "Latest", 50),), "CPU", (50, 0, True), id="latest-only"),
    # a STD alone makes the resource valid with an average of 0, as upstream.
    pytest.param((metric("CPU", "STD", 5),), "CPU", (0, 5, True), id="std-only"),
    pytest.param((metric("cpu", "AVG", 30),), "CPU", (0, 0, False), id="type-is-case-sensitive"),
])
def test_resource_data_is_upstreams_get_resource_data(metrics: tuple[Metric, ...], kind: str,
                                                       want: tuple[float, float, bool]) -> None:
    assert resource_data(metrics, kind) == want


@pytest.mark.parametrize(("metrics", "want"), [
    ((metric("CPU", "AVG", 30), metric("CPU", "Latest", 50)), 50),  # the last AVG-or-Latest wins
    ((metric("CPU", "Latest", 50), metric("CPU", "AVG", 30)), 30),
    ((metric("CPU", "", 40),), None),  # TargetLoadPacking ignores a metric without operator
    ((metric("CPU", "STD", 40), metric("Memory", "AVG", 40)), None),
    ((), None),
])
def test_packing_cpu_is_target_load_packings_reading(metrics: tuple[Metric, ...], want: float | None) -> None:
    assert packing_cpu(metrics) == want


@pytest.mark.parametrize(("x", "want"), [
    (0.5, 1), (1.5, 2), (2.5, 3), (44.5, 45),  # half away from zero (numpy's round: 0, 2, 2, 44)
    (-0.5, -1), (-2.5, -3), (2.4999, 2), (-2.4999, -2),
    (0.49999999999999994, 0),  # floor(x + 0.5) would give 1
    (33.333333333333336, 33), (0.0, 0),
])
def test_go_round_is_half_away_from_zero(x: float, want: int) -> None:
    assert go_round_int(x) == want
    assert go_round(np.array([x]))[0] == want


def test_container_amounts_and_overhead_read_cpu_and_memory_as_written() -> None:
    p = pod_from_json({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}},
                       {"name": "b"}],
        "initContainers": [{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"memory": "64Mi"}}}],
        "overhead": {"cpu": "10m", "memory": "1Mi"}}})
    a, b = container_amounts(p)
    assert (a.requests, a.limits, a.restartable) == ({"cpu": 250}, {"memory": 1 << 30}, False)
    assert (b.requests, b.limits) == ({}, {})
    (s,) = container_amounts(p, "initContainers")
    assert (s.requests, s.restartable) == ({"memory": 64 << 20}, True)
    assert overhead_amounts(p) == {"cpu": 10, "memory": 1 << 20}


@pytest.mark.parametrize(("condition", "want"), [
    ({"status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"}, NOW),
    ({"status": "False", "lastTransitionTime": "2023-11-14T22:13:20Z"}, None),  # pending: when it became unschedulable
    ({"status": "True"}, None),
    (None, None),
])
def test_scheduled_time_reads_a_true_pod_scheduled_condition(condition: dict[str, str] | None,
                                                             want: float | None) -> None:
    assert scheduled_time(pod("p", condition=condition)) == want


# ---- the sample aligned to the rows --------------------------------------------------------------------


def test_arrays_follow_the_rows_as_nodes_come_go_and_move() -> None:
    table, load, _ = loaded("a")  # capacity 2: the third node grows the table and the arrays
    table.set_node(node("b"))
    table.set_node(node("c"))
    assert load.sample is None and not load.has_metrics[: table.n].any()
    load.set_sample(sample({
        "a": (metric("CPU", "AVG", 10),),
        "b": (metric("CPU", "AVG", 20), metric("Memory", "AVG", 30), metric("Memory", "STD", 5)),
        "d": (metric("CPU", "AVG", 40), metric("CPU", "Latest", 45)),  # not in the table yet
    }))
    np.testing.assert_array_equal(load.cpu[:3], [10, 20, NAN])
    np.testing.assert_array_equal(load.cpu_std[:3], [0, 0, NAN])  # no STD: 0 where CPU is valid
    np.testing.assert_array_equal(load.memory[:3], [NAN, 30, NAN])
    np.testing.assert_array_equal(load.memory_std[:3], [NAN, 5, NAN])
    np.testing.assert_array_equal(load.has_metrics[:3], [True, True, False])
    table.set_node(node("d"))  # a new node picks up its metrics
    assert (by_name(table, load.cpu)["d"], by_name(table, load.cpu_packing)["d"]) == (40, 45)
    table.remove_node("a")  # d (the last row) moves into a's row 0
    assert table.names == ["d", "b", "c"]
    np.testing.assert_array_equal(load.cpu[:3], [40, 20, NAN])
    np.testing.assert_array_equal(load.has_metrics[:3], [True, True, False])
    table.set_node(node("e"))  # the recycled row 3 holds nothing of d
    assert np.isnan(load.cpu[3]) and not load.has_metrics[3]
    # a new sample replaces the old one entirely
    load.set_sample(sample({"c": (metric("Memory", "AVG", 70),)}))
    np.testing.assert_array_equal(load.has_metrics[:4], [False, False, True, False])
    np.testing.assert_array_equal(load.memory[:4], [NAN, NAN, 70, NAN])
    assert np.isnan(load.cpu[:4]).all()


def test_capacity_comes_from_status_capacity_else_allocatable() -> None:
    table = NodeTable()
    table.set_node(node("full", allocatable={"cpu": "3500m", "memory": "7Gi"}, capacity={"cpu": "4", "memory": "8Gi"}))
    table.set_node(node("alloc-only", allocatable={"cpu": "2", "memory": "1Gi"}))
    table.set_node(node("cpu-only", allocatable={"cpu": "2", "memory": "1Gi"}, capacity={"cpu": "3"}))
    load = LoadMetrics.of(table)
    assert by_name(table, load.cpu_capacity) == {"full": 4000, "alloc-only": 2000, "cpu-only": 3000}
    assert by_name(table, load.memory_capacity) == {"full": 8 << 30, "alloc-only": 1 << 30, "cpu-only": 1 << 30}
    # a changed node is re-read
    table.set_node(node("alloc-only", allocatable={"cpu": "2", "memory": "1Gi"}, capacity={"cpu": "6"}))
    assert by_name(table, load.cpu_capacity)["alloc-only"] == 6000


def test_age_is_clock_minus_the_sample_timestamp() -> None:
    _, load, clock = loaded("a", t=NOW)
    assert load.age() is None
    load.set_sample(sample({}, end=int(NOW) - 30, timestamp=int(NOW) - 20))
    clock.t = NOW + 5
    assert load.age() == 25


def test_of_registers_once_and_reads_the_pods_already_placed() -> None:
    table = NodeTable()
    table.set_node(node("a"))
    table.add_pod(pod("old", condition={"status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"}), "a")
    table.add_pod(pod("snapshot"), "a")
    load = LoadMetrics.of(table)
    assert LoadMetrics.of(table) is load and table.listeners.count(load) == 1
    assert load.placed_at("ns/old") == NOW
    # no binding time: placed before anyone watched, so in every sample's measurements
    assert load.placed_at("ns/snapshot") == float("-inf")
    load.set_sample(sample({}, end=int(NOW) + 30))  # old was bound 30 s before the window end: recent
    assert load.is_recent("ns/old") and not load.is_recent("ns/snapshot")
    load.set_sample(sample({}, end=0))  # even a sample without a window (upstream counts everything)
    assert load.is_recent("ns/old") and not load.is_recent("ns/snapshot")


# ---- recent pods -------------------------------------------------------------------------------------------

# Upstream counts a pod when its time (whole seconds) is after the window end, or less than
# 60 s before it: floor(t) > end - 60. The window end here is 1000.
@pytest.mark.parametrize(("placed", "counted"), [
    (1001.0, True),   # after the window: the sample cannot show it
    (1000.0, True),   # at the end: 0 < 60
    (941.0, True),    # 59 s before the end
    (940.9, False),   # whole seconds 940: 60 s before the end
    (940.0, False),
    (500.0, False),
])
def test_window_rule(placed: float, counted: bool) -> None:
    table, load, clock = loaded("a", t=placed)
    table.add_pod(pod("p", cpu="500m"), "a")
    load.set_sample(sample({"a": ()}, end=1000))
    assert load.is_recent("ns/p") is counted
    assert load.recent_usage("cpu", cpu_milli)[0] == (500 if counted else 0)


def test_nothing_counts_before_the_first_sample() -> None:
    table, load, _ = loaded("a", t=1000)
    table.add_pod(pod("p"), "a")
    assert load.placed_at("ns/p") == 1000 and not load.is_recent("ns/p")
    assert load.recent_usage("cpu", cpu_milli)[0] == 0


def test_recent_sums_follow_adds_removals_and_new_samples() -> None:
    table, load, clock = loaded("a", "b")
    load.set_sample(sample({}, end=1000))  # pods placed after 940 count

    def sums() -> dict[str, float]:
        return by_name(table, load.recent_usage("cpu", cpu_milli))

    sums()  # registered before the pods come
    for name, cpu, where, t in (("p1", "100m", "a", 950), ("p2", "200m", "a", 990), ("p3", "400m", "b", 1010),
                                ("old", "800m", "b", 900)):
        clock.t = t
        table.add_pod(pod(name, cpu=cpu), where)
    # a: 100 + 200; b: 400 (old was placed 100 s before the window end: the sample shows it)
    assert sums() == {"a": 300, "b": 400}
    # a predictor asked for later starts from the pods counted now: 2 x cpu
    assert by_name(table, load.recent_usage("double", lambda p: 2 * cpu_milli(p))) == {"a": 600, "b": 800}
    table.remove_pod("ns/p2")  # a: 100
    assert sums() == {"a": 100, "b": 400} and load.placed_at("ns/p2") is None
    load.set_sample(sample({}, end=1020))  # now after 960: p1 (950) is in the metrics
    assert sums() == {"a": 0, "b": 400} and not load.is_recent("ns/p1")
    assert by_name(table, load.recent_usage("double", lambda p: 0.0)) == {"a": 0, "b": 800}
    load.set_sample(sample({}, end=1000))  # an earlier window end: p1 counts again
    assert sums() == {"a": 100, "b": 400}


def test_stale_metrics_keep_counting_pods_bound_since_the_sample() -> None:
    # Upstream forgets a pod one to six minutes after it was bound; vecsched counts it for as
    # long as the sample in use predates it.
    table, load, clock = loaded("a", t=1010)
    load.set_sample(sample({}, end=1000))
    table.add_pod(pod("p", cpu="300m"), "a")
    clock.t = 1010 + 3600  # an hour without a new sample
    assert load.recent_usage("cpu", cpu_milli)[0] == 300


def test_a_pod_keeps_its_time_when_updated_on_the_same_node() -> None:
    table, load, clock = loaded("a", "b", t=1000)
    load.set_sample(sample({}, end=1000))
    table.add_pod(pod("p"), "a")
    clock.t = 2000
    table.add_pod(pod("p", cpu="2"), "a")  # an update: add_pod replaces the placement
    assert load.placed_at("ns/p") == 1000
    assert load.recent_usage("cpu", cpu_milli)[0] == 2000  # the new spec, counted once
    table.add_pod(pod("p", uid="other"), "a")  # another pod of the same name: a new time
    assert load.placed_at("ns/p") == 2000
    clock.t = 3000
    table.add_pod(pod("p", uid="other"), "b")  # moved to another node: a new time
    assert load.placed_at("ns/p") == 3000
    # the binding arrives with the API's PodScheduled time, which wins over the assumed time
    table.add_pod(pod("p", uid="other", condition={"status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"}),
                  "b")
    assert load.placed_at("ns/p") == NOW


def test_pods_restored_after_a_restart_count_from_their_binding_not_from_now() -> None:
    # The informer re-adds every pod after a restart; their PodScheduled times are long past.
    table, load, _ = loaded("a", t=NOW)
    load.set_sample(sample({}, end=int(NOW)))
    table.add_pod(pod("p", condition={"status": "True", "lastTransitionTime": "2023-11-14T20:00:00Z"}), "a")
    assert not load.is_recent("ns/p") and load.recent_usage("cpu", cpu_milli)[0] == 0


def test_removing_a_node_takes_its_pods_out_and_moves_the_last_rows_sums() -> None:
    table, load, _ = loaded("a", "b", "c", t=1000)
    load.set_sample(sample({}, end=1000))
    load.recent_usage("cpu", cpu_milli)
    table.add_pod(pod("pa", cpu="100m"), "a")
    table.add_pod(pod("pc", cpu="300m"), "c")
    table.remove_node("a")  # c moves into row 0
    assert by_name(table, load.recent_usage("cpu", cpu_milli)) == {"c": 300, "b": 0}
    assert not load.is_recent("ns/pa")
    table.set_node(node("d"))  # recycled row 2 (c's old row) starts empty
    assert by_name(table, load.recent_usage("cpu", cpu_milli)) == {"c": 300, "b": 0, "d": 0}
    table.set_node(node("a"))  # a comes back with its pod (held aside by the table), placed again now
    assert by_name(table, load.recent_usage("cpu", cpu_milli)) == {"c": 300, "b": 0, "d": 0, "a": 100}


def test_a_pod_given_back_to_its_node_keeps_its_time() -> None:
    # The preemption dry run takes victims off their nodes and gives them back, with other
    # changes in between; an old pod must not come back as a recent one.
    table, load, clock = loaded("a", "b", t=100)
    table.add_pod(pod("victim", cpu="2"), "a")
    table.add_pod(pod("other"), "b")
    clock.t = 1000
    load.set_sample(sample({}, end=1000))
    table.remove_pod("ns/victim")
    table.remove_pod("ns/other")
    table.add_pod(pod("other"), "b")
    table.add_pod(pod("victim", cpu="2"), "a")
    assert load.placed_at("ns/victim") == 100 and not load.is_recent("ns/victim")
    assert load.recent_usage("cpu", cpu_milli)[0] == 0
    # put on another node, it is a new placement
    table.add_pod(pod("victim", cpu="2"), "b")
    assert load.placed_at("ns/victim") == 1000 and load.is_recent("ns/victim")
