"""TargetLoadPacking: the cases of targetloadpacking_test.go (TestNew, TestTargetLoadPackingScoring)
with upstream's integers, its args with the v1 defaults, PredictUtilisation, and what the
upstream tests leave out: pods bound since the metrics window, capacity over allocatable,
Go's rounding, many nodes at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scoring.args import ArgsError
from scoring.load import MetricsSource, watcher_metrics_from_json
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import REGISTRY, target_load_packing
from scoring.plugins.node_load import LoadMetrics
from scoring.plugins.target_load_packing import predict_pod_cpu, predict_utilisation
from scoring.table import NodeTable
from tests.explain_support import explain_scores

# targetloadpacking_test.go's nodes: st.MakeNode().Capacity({cpu: 1000m, memory: 1Gi}), which
# sets capacity and allocatable alike.
NODE_RESOURCES = {"cpu": "1000m", "memory": "1Gi", "pods": "32"}


def make_node(name: str, *, capacity: dict[str, str] | None = None, allocatable: dict[str, str] | None = None) -> NodeInfo:
    return node_from_json({"metadata": {"name": name}, "status": {"capacity": capacity or NODE_RESOURCES,
                                                                  "allocatable": allocatable or NODE_RESOURCES}})


def make_pod(name: str = "p", *containers: dict[str, Any], overhead: str | None = None) -> PodInfo:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]}
    if overhead is not None:
        spec["overhead"] = {"cpu": overhead}
    return pod_from_json({"metadata": {"name": name, "namespace": "ns", "uid": name}, "spec": spec})


def pod_with_containers_and_overhead(overhead: int, *requests: int, name: str = "p") -> PodInfo:
    """targetloadpacking_test.go's getPodWithContainersAndOverhead: each container requests
    and is limited to its milli-CPU."""
    return make_pod(name, *({"requests": {"cpu": f"{r}m"}, "limits": {"cpu": f"{r}m"}} for r in requests),
                    overhead=f"{overhead}m")


def cpu_latest(value: float) -> dict[str, Any]:
    return {"metrics": [{"type": "CPU", "operator": "Latest", "value": value}]}


def scores(pod: PodInfo, nodes: list[NodeInfo], watcher: dict[str, Any], *, args: dict[str, Any] | None = None,
           bound: Sequence[tuple[PodInfo, str, float]] = (), now: float = 0.0) -> list[int]:
    """Score ``pod`` on ``nodes`` with ``watcher`` as the sample; ``bound`` pods are placed
    at the given times first (clock ``now`` afterwards)."""
    plugin = target_load_packing.new(args or {}, "args")
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    load = LoadMetrics.of(table)
    for p, where, t in bound:
        load.clock = lambda t=t: t  # type: ignore[misc]
        table.add_pod(p, where)
    load.clock = lambda: now
    load.set_sample(watcher_metrics_from_json(watcher, what="watcher"))
    rows = np.arange(table.n, dtype=np.intp)
    return [int(s) for s in plugin.score(pod, table, rows, {})]


# ---- TestTargetLoadPackingScoring ----------------------------------------------------------------------

UPSTREAM = [
    # no containers: predicted 0% -> round((100-40) * 0/40 + 40) = 40 (DefaultTargetUtilizationPercent)
    pytest.param(make_pod(), {"window": {}, "data": {"NodeMetricsMap": {"node-1": cpu_latest(0)}}}, 40,
                 id="new node"),
    # 50% of 1000m = 500m, pod 0 -> 50% > 40: round(40 * (100-50) / (100-40)) = round(33.33) = 33
    pytest.param(make_pod(), {"window": {}, "data": {"NodeMetricsMap": {"node-1": cpu_latest(40 + 10)}}}, 33,
                 id="hot node"),
    # 30% = 300m, pod limit 1000m -> 100 * 1300/1000 = 130% > 100 -> MinNodeScore
    pytest.param(pod_with_containers_and_overhead(0, 1000),
                 {"window": {}, "data": {"NodeMetricsMap": {"node-1": cpu_latest(30)}}}, 0,
                 id="excess utilization returns min score"),
    # an empty WatcherMetrics: no metrics for the node -> MinNodeScore
    pytest.param(make_pod(), {}, 0, id="404 resp from watcher"),
]


@pytest.mark.parametrize(("pod", "watcher", "want"), UPSTREAM)
def test_upstream_scoring(pod: PodInfo, watcher: dict[str, Any], want: int) -> None:
    assert scores(pod, [make_node("node-1")], watcher) == [want]


@pytest.mark.parametrize(("pod", "watcher", "want"), UPSTREAM)
def test_upstream_scoring_through_explain(pod: PodInfo, watcher: dict[str, Any], want: int) -> None:
    # The same cases as a user runs them: `vecsched explain --node-metrics FILE` with the sample as a file.
    assert explain_scores(nodes=[make_node("node-1")], pod=pod, plugin="TargetLoadPacking",
                          node_metrics=watcher) == {"node-1": want}


# ---- more scoring -----------------------------------------------------------------------------------------

def sample_of(per_node: dict[str, Any], *, end: int = 0) -> dict[str, Any]:
    return {"timestamp": end, "window": {"duration": "15m", "start": end - 900, "end": end},
            "data": {"NodeMetricsMap": per_node}}


def test_many_nodes_at_once_with_the_piecewise_score() -> None:
    nodes = [make_node(f"n{i}") for i in range(6)]
    watcher = sample_of({
        "n0": cpu_latest(10),  # 10% + 100m pod = 20% -> round(60 * 20/40 + 40) = 70
        "n1": cpu_latest(30),  # 30% + 10% = 40% = target -> round(60 * 40/40 + 40) = 100
        "n2": cpu_latest(60),  # 70% > 40 -> round(40 * 30/60) = 20
        "n3": cpu_latest(95),  # 105% > 100 -> 0
        "n4": {"metrics": [{"type": "Memory", "operator": "AVG", "value": 10}]},  # no CPU metric -> 0
        # n5: not in the sample -> 0
    })
    assert scores(pod_with_containers_and_overhead(0, 100), nodes, watcher) == [70, 100, 20, 0, 0, 0]


def test_rounding_is_half_away_from_zero() -> None:
    # 0% + 30m pod = 3% -> 60 * 3/40 + 40 = 44.5 -> Go rounds to 45 (numpy's round: 44)
    watcher = sample_of({"node-1": cpu_latest(0)})
    assert scores(pod_with_containers_and_overhead(0, 30), [make_node("node-1")], watcher) == [45]
    # 60% + 30m = 63% -> 40 * 37/60 = 24.67 -> 25
    assert scores(pod_with_containers_and_overhead(0, 30), [make_node("node-1")],
                  sample_of({"node-1": cpu_latest(60)})) == [25]


def test_utilisation_is_over_capacity_not_allocatable() -> None:
    # capacity 2000m, allocatable 1000m: 20% of 2000 = 400m, + 400m pod = 800/2000 = 40% -> 100
    # (over allocatable it would be 80% -> 13)
    node = make_node("node-1", capacity={"cpu": "2", "memory": "1Gi"}, allocatable=NODE_RESOURCES)
    assert scores(pod_with_containers_and_overhead(0, 400), [node], sample_of({"node-1": cpu_latest(20)})) == [100]
    # no status.capacity: allocatable stands in -> 20% of 1000 = 200 + 400 = 60% -> round(40 * 40/60) = 27
    bare = node_from_json({"metadata": {"name": "node-1"}, "status": {"allocatable": NODE_RESOURCES}})
    assert scores(pod_with_containers_and_overhead(0, 400), [bare], sample_of({"node-1": cpu_latest(20)})) == [27]


def test_avg_and_latest_the_last_one_wins() -> None:
    # [AVG 10, Latest 30]: 30% -> 60 * 30/40 + 40 = 85; [Latest 30, AVG 10]: 10% -> 55
    node = [make_node("node-1")]
    both = [{"type": "CPU", "operator": "AVG", "value": 10}, {"type": "CPU", "operator": "Latest", "value": 30}]
    assert scores(make_pod(), node, sample_of({"node-1": {"metrics": both}})) == [85]
    assert scores(make_pod(), node, sample_of({"node-1": {"metrics": both[::-1]}})) == [55]


def test_pods_bound_since_the_window_add_their_predicted_cpu() -> None:
    # Window end 1000: pods bound after 940 count. node-1 measured 10% = 100m; pod 100m.
    nodes = [make_node("node-1"), make_node("node-2")]
    watcher = sample_of({"node-1": cpu_latest(10), "node-2": cpu_latest(10)}, end=1000)
    bound = [
        (pod_with_containers_and_overhead(0, 200, name="p1"), "node-1", 990),  # counted: +200m
        (make_pod("be", {}), "node-1", 1005),  # best effort, after the window: +1000m default
        (pod_with_containers_and_overhead(0, 300, name="p3"), "node-2", 900),  # 100 s before the end: measured
    ]
    # node-1: 100 + 100 + 200 + 1000 = 1400m = 140% -> 0; node-2: 100 + 100 = 20% -> 60*20/40 + 40 = 70
    assert scores(pod_with_containers_and_overhead(0, 100), nodes, watcher, bound=bound, now=1010) == [0, 70]
    # without the best-effort pod: node-1 = 400m = 40% -> 100
    assert scores(pod_with_containers_and_overhead(0, 100), nodes, watcher, bound=bound[:1] + bound[2:],
                  now=1010) == [100, 70]


def test_scores_for_a_subset_of_rows() -> None:
    nodes = [make_node(f"n{i}") for i in range(4)]
    watcher = sample_of({"n0": cpu_latest(0), "n1": cpu_latest(10), "n2": cpu_latest(20), "n3": cpu_latest(30)})
    plugin = target_load_packing.new({}, "args")
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    LoadMetrics.of(table).set_sample(watcher_metrics_from_json(watcher, what="w"))
    # 0, 10, 20, 30% -> 40, 55, 70, 85; rows 3 and 1 only (fewer than half gathered, then all)
    assert plugin.score(make_pod(), table, np.array([3], np.intp), {}).tolist() == [85]
    assert plugin.score(make_pod(), table, np.array([3, 1], np.intp), {}).tolist() == [85, 55]
    assert plugin.score(make_pod(), table, np.array([3, 1, 0], np.intp), {}).tolist() == [85, 55, 40]


# ---- PredictUtilisation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("limits", "requests", "want"), [
    ({"cpu": 2000}, {"cpu": 500}, 2000),  # a limit wins
    ({"cpu": 0}, {"cpu": 500}, 0),  # a limit of 0 is still a limit
    ({}, {"cpu": 500}, 750),  # request x 1.5
    ({}, {"cpu": 333}, 500),  # 499.5 -> 500 (half away from zero)
    ({}, {"cpu": 1}, 2),  # 1.5 -> 2
    ({}, {"cpu": 0}, 0),
    ({"memory": 1}, {"memory": 1}, 1000),  # no cpu at all: defaultRequests.cpu
])
def test_predict_utilisation(limits: dict[str, int], requests: dict[str, int], want: int) -> None:
    assert predict_utilisation(limits, requests, multiplier=1.5, default_milli=1000) == want


def test_predicted_pod_cpu_sums_app_containers_and_overhead() -> None:
    # 2000 (limit) + round(100 * 1.5) + 1000 (default) + 10 overhead; the init container is not counted
    p = pod_from_json({"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "8"}}}],
        "containers": [{"name": "a", "resources": {"limits": {"cpu": "2"}}},
                       {"name": "b", "resources": {"requests": {"cpu": "100m"}}},
                       {"name": "c"}],
        "overhead": {"cpu": "10m"}}})
    assert predict_pod_cpu(p, multiplier=1.5, default_milli=1000) == 2000 + 150 + 1000 + 10
    assert predict_pod_cpu(p, multiplier=2.0, default_milli=250) == 2000 + 200 + 250 + 10


# ---- args (TestNew, v1 defaults) ---------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "want"), [
    ({}, (40, 1000, 1.5)),
    # TestNew: WatcherAddress plus the defaults written out
    ({"watcherAddress": "http://deadbeef:2020", "targetUtilization": 40, "defaultRequestsMultiplier": "1.5"},
     (40, 1000, 1.5)),
    ({"targetUtilization": 0}, (40, 1000, 1.5)),  # <= 0: the default, as upstream
    ({"targetUtilization": -5}, (40, 1000, 1.5)),
    ({"targetUtilization": 70, "defaultRequests": {"cpu": "500m"}, "defaultRequestsMultiplier": "2"}, (70, 500, 2.0)),
    ({"defaultRequests": {"memory": "1Gi"}}, (40, 0, 1.5)),  # set without cpu: 0, as upstream reads it
    ({"defaultRequestsMultiplier": "1e0"}, (40, 1000, 1.0)),
])
def test_args_defaults(args: dict[str, Any], want: tuple[int, int, float]) -> None:
    a = target_load_packing.parse_args(args, "args")
    assert (a.target_utilization, a.default_requests_milli, a.multiplier) == want


@pytest.mark.parametrize(("args", "path"), [
    ({"defaultRequestsMultiplier": "abc"}, "args.defaultRequestsMultiplier"),
    ({"defaultRequestsMultiplier": " 1.5"}, "args.defaultRequestsMultiplier"),  # ParseFloat takes no spaces
    ({"defaultRequestsMultiplier": "-1"}, "args.defaultRequestsMultiplier"),
    ({"defaultRequestsMultiplier": 1.5}, "args.defaultRequestsMultiplier"),  # a string, as upstream's type
    ({"targetUtilization": 101}, "args.targetUtilization"),  # scores would exceed 100
    ({"targetUtilization": "40"}, "args.targetUtilization"),
    ({"defaultRequests": {"cpu": "lots"}}, "args.defaultRequests.cpu"),
    ({"defaultRequests": {"cpu": "-1"}}, "args.defaultRequests.cpu"),
    ({"defaultRequests": "1000m"}, "args.defaultRequests"),
    ({"targetUtilisation": 40}, "args.targetUtilisation"),
    ({"metricProvider": {"type": "Graphite"}}, "args.metricProvider.type"),
])
def test_args_errors_name_the_field(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ArgsError) as e:
        target_load_packing.new(args, "args")
    assert e.value.path == path
    assert str(e.value).startswith(path + ": ") and "\n" not in str(e.value)


def test_metrics_source_is_exposed_and_the_plugin_is_registered() -> None:
    plugin = REGISTRY[target_load_packing.NAME]({
        "metricProvider": {"type": "Prometheus", "address": "http://prometheus:9090", "token": "t"}}, "args")
    assert isinstance(plugin, target_load_packing.TargetLoadPacking)
    assert plugin.metrics_source == MetricsSource(address="http://prometheus:9090", token="t")
    watcher = target_load_packing.new({"watcherAddress": "http://deadbeef:2020"}, "args")
    assert watcher.metrics_source.watcher_address == "http://deadbeef:2020"
