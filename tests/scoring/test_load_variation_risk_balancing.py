"""LoadVariationRiskBalancing: the cases of loadvariationriskbalancing_test.go (TestNew, TestScore),
analysis_test.go (TestComputeScore) and resourcestats_test.go (TestCreateResourceStats,
TestGetMuSigma, TestGetResourceRequested) with upstream's numbers, plus its args. resourcestats'
GetResourceLimits and GetNodeRequestsAndLimits serve LowRiskOverCommitment only and are not
ported."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.args import ArgsError
from scoring.load import watcher_metrics_from_json
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import REGISTRY, load_variation_risk_balancing as lvrb
from scoring.plugins.node_load import LoadMetrics, go_round
from scoring.table import NodeTable
from tests.explain_support import explain_scores

MEGA = 1024 * 1024
NODE_RESOURCES = {"cpu": "1000m", "memory": "1Gi", "pods": "32"}


def make_node(name: str, allocatable: dict[str, str] | None = None) -> NodeInfo:
    res = allocatable or NODE_RESOURCES
    return node_from_json({"metadata": {"name": name}, "status": {"capacity": res, "allocatable": res}})


def pod_with_containers_and_overhead(overhead: int, init_cpu: int, init_mem: int, cpu: list[int],
                                     mem: list[int]) -> PodInfo:
    """The tests' getPodWithContainersAndOverhead: an init container requesting (init_cpu,
    init_mem), containers requesting and limited to (cpu[i] milli, mem[i] bytes), CPU overhead."""
    containers = [{"name": f"c{i}", "resources": {"requests": {"cpu": f"{c}m", "memory": str(m)},
                                                  "limits": {"cpu": f"{c}m", "memory": str(m)}}}
                  for i, (c, m) in enumerate(zip(cpu, mem))]
    return pod_from_json({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "overhead": {"cpu": f"{overhead}m"},
        "initContainers": [{"name": "init", "resources": {"requests": {"cpu": f"{init_cpu}m", "memory": str(init_mem)}}}],
        "containers": containers}})


def empty_pod() -> PodInfo:
    return pod_from_json({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": []}})


def metrics(*m: tuple[str, str, float]) -> dict[str, Any]:
    return {"metrics": [{"type": t, "operator": o, "value": v} for t, o, v in m]}


def scores(pod: PodInfo, nodes: list[NodeInfo], watcher: dict[str, Any], args: dict[str, Any] | None = None) -> list[int]:
    plugin = lvrb.new(args or {}, "args")
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    LoadMetrics.of(table).set_sample(watcher_metrics_from_json(watcher, what="watcher"))
    return [int(s) for s in plugin.score(pod, table, np.arange(table.n, dtype=np.intp), {})]


# ---- TestScore ---------------------------------------------------------------------------------------------

UPSTREAM = [
    # cpu: mu = 500/1000 = .5, sigma 0 -> risk .25 -> 75; memory not valid -> max(75, 0) = 75
    pytest.param(empty_pod(), metrics(("CPU", "AVG", 50)), 75, id="new node"),
    # cpu: mu 1, sigma 0 -> risk .5 -> 50
    pytest.param(empty_pod(), metrics(("CPU", "AVG", 100)), 50, id="hot node"),
    # cpu: mu (300 + 200)/1000 = .5, sigma 160/1000 = .16 -> risk .33 -> 67
    pytest.param(pod_with_containers_and_overhead(0, 0, 0, [200], [256 * MEGA]),
                 metrics(("CPU", "AVG", 30), ("CPU", "STD", 16)), 67, id="average and stDev metrics"),
    # cpu: mu (400 + 100)/1000 = .5, sigma .16 -> 67; memory (MiB): mu (512 + 512)/1024 = 1,
    # sigma 102.4/1024 = .1 -> risk .55 -> 45; min(67, 45) = 45
    pytest.param(pod_with_containers_and_overhead(0, 0, 0, [100], [512 * MEGA]),
                 metrics(("CPU", "AVG", 40), ("CPU", "STD", 16), ("Memory", "AVG", 50), ("Memory", "STD", 10)), 45,
                 id="CPU and Memory metrics"),
    # cpu: mu (800 + 100)/1000 = .9, sigma .2 -> risk .55 -> 45; memory: mu (256 + 512)/1024 = .75,
    # sigma .15 -> risk .45 -> 55; min -> 45
    pytest.param(pod_with_containers_and_overhead(0, 0, 0, [100], [512 * MEGA]),
                 metrics(("CPU", "AVG", 80), ("CPU", "STD", 20), ("Memory", "AVG", 25), ("Memory", "STD", 15)), 45,
                 id="pick worst case: CPU or Memory"),
]


@pytest.mark.parametrize(("pod", "node_metrics", "want"), UPSTREAM)
def test_upstream_score(pod: PodInfo, node_metrics: dict[str, Any], want: int) -> None:
    watcher = {"window": {}, "data": {"NodeMetricsMap": {"node-1": node_metrics}}}
    assert scores(pod, [make_node("node-1")], watcher) == [want]


@pytest.mark.parametrize(("pod", "node_metrics", "want"), UPSTREAM)
def test_upstream_score_through_explain(pod: PodInfo, node_metrics: dict[str, Any], want: int) -> None:
    # The same cases as a user runs them: `vecsched explain --node-metrics FILE` with the sample as a file.
    watcher = {"window": {}, "data": {"NodeMetricsMap": {"node-1": node_metrics}}}
    assert explain_scores(nodes=[make_node("node-1")], pod=pod, plugin="LoadVariationRiskBalancing",
                          node_metrics=watcher) == {"node-1": want}


def test_upstream_score_404_resp_from_watcher() -> None:
    assert scores(empty_pod(), [make_node("node-1")], {}) == [0]


def test_many_nodes_at_once() -> None:
    nodes = [make_node("a"), make_node("b"), make_node("c"), make_node("d", {"cpu": "1", "pods": "32"})]
    watcher = {"data": {"NodeMetricsMap": {
        "a": metrics(("CPU", "AVG", 50)),  # 75 (as "new node")
        "b": metrics(("Memory", "AVG", 25), ("Memory", "STD", 15)),  # memory alone: mu .25, sigma .15 -> 80
        # c: no metrics -> 0
        "d": metrics(("CPU", "AVG", 0), ("Memory", "AVG", 10)),  # cpu 100; memory allocatable 0 -> 0; min -> 0
    }}}
    assert scores(empty_pod(), nodes, watcher) == [75, 80, 0, 0]


def test_margin_and_sensitivity() -> None:
    # cpu mu .5, sigma .16: margin 2, sensitivity 2 -> 2 * sqrt(.16) = .8 -> risk .65 -> 35
    watcher = {"data": {"NodeMetricsMap": {"node-1": metrics(("CPU", "AVG", 50), ("CPU", "STD", 16))}}}
    assert scores(empty_pod(), [make_node("node-1")], watcher,
                  {"safeVarianceMargin": 2, "safeVarianceSensitivity": 2}) == [35]


# ---- TestComputeScore (analysis_test.go) -------------------------------------------------------------------

@pytest.mark.parametrize(("margin", "sensitivity", "capacity", "req", "avg", "std", "want"), [
    # mu (40 + 10)/100 = .5, sigma .36 -> risk .43 -> 57
    pytest.param(1, 1, 100, 10, 40, 36, 57, id="valid data"),
    pytest.param(1, 2, 0, 10, 40, 36, 0, id="zero capacity"),
    # avg -> 0: mu .1; sigma sqrt(.36) = .6 -> risk .35 -> 65
    pytest.param(1, 2, 100, 10, -40, 36, 65, id="negative usedAvg"),
    # avg -> 100: mu 1.1 -> 1; sigma .6 -> risk .8 -> 20
    pytest.param(1, 2, 100, 10, 200, 36, 20, id="large usedAvg"),
    # std -> 0: mu .5 -> risk .25 -> 75
    pytest.param(1, 2, 100, 10, 40, -36, 75, id="negative usedStdev"),
    # std -> 100: sigma 1 -> risk .75 -> 25
    pytest.param(1, 2, 100, 10, 40, 120, 25, id="large usedStdev"),
    # sigma .36 * -1 -> 0: risk .25 -> 75
    pytest.param(-1, 1, 100, 10, 40, 36, 75, id="negative margin"),
    # a negative sensitivity leaves sigma .36: 57
    pytest.param(1, -1, 100, 10, 40, 36, 57, id="negative sensitivity"),
    # .36 ** (1/0 = +Inf) = 0: 75
    pytest.param(1, 0, 100, 10, 40, 36, 75, id="zero sensitivity"),
])
def test_compute_score(margin: float, sensitivity: float, capacity: float, req: float, avg: float, std: float,
                       want: int) -> None:
    got = lvrb.compute_score(np.array([avg], float), np.array([std], float), req, np.array([capacity], float),
                             margin=margin, sensitivity=sensitivity)
    assert int(go_round(got)[0]) == want


# ---- TestGetMuSigma, TestCreateResourceStats, TestGetResourceRequested ------------------------------------

@pytest.mark.parametrize(("capacity", "req", "avg", "std", "mu", "sigma"), [
    pytest.param(1000, 100, 400, 360, 0.5, 0.36, id="proper arguments"),
    pytest.param(0, 0, 0, 0, 0.0, 0.0, id="zero arguments"),
    pytest.param(1000, 100, 1400, 300, 1.0, 0.3, id="large used"),
    pytest.param(1000, 100, 400, 1600, 0.5, 1.0, id="large deviation"),
    pytest.param(1000, 0, 1400, 1600, 1.0, 1.0, id="large arguments"),
    pytest.param(1000, 0, -100, 200, 0.0, 0.2, id="negative used"),
    pytest.param(1000, 400, 0, -200, 0.4, 0.0, id="negative deviation"),
])
def test_mu_sigma(capacity: float, req: float, avg: float, std: float, mu: float, sigma: float) -> None:
    got_mu, got_sigma = lvrb.mu_sigma(np.array([avg], float), np.array([std], float), req, np.array([capacity], float))
    assert (float(got_mu[0]), float(got_sigma[0])) == (mu, sigma)  # exactly, as upstream compares


def test_create_resource_stats() -> None:
    # resourcestats_test.go: node0 1000m / 1Gi; CPU 40% avg, 36% std; Memory 20% avg, 10% std;
    # pod request 100m and 1 MiB.
    cap, req, avg, std = lvrb.resource_stats(np.array([40.0]), np.array([36.0]), np.array([1000.0]), 100, memory=False)
    assert (float(cap[0]), req, float(avg[0]), float(std[0])) == (1000, 100, 400, 360)
    cap, req, avg, std = lvrb.resource_stats(np.array([20.0]), np.array([10.0]), np.array([float(1 << 30)]), MEGA,
                                             memory=True)
    assert (float(cap[0]), req, float(avg[0]), float(std[0])) == (1024, 1, 204.8, 102.4)


@pytest.mark.parametrize(("overhead", "init_cpu", "init_mem", "cpu", "mem", "want"), [
    # 1000 + 500 + 10 overhead; memory 2048 + 1024 (the init container's 100m / 512 are smaller)
    (10, 100, 512, [1000, 500], [2048, 1024], (1510, 3072)),
    # the init container is larger: max(1500, 2000) + 10; max(3072, 4096)
    (10, 2000, 4096, [1000, 500], [2048, 1024], (2010, 4096)),
    (0, 0, 0, [0, 0, 1000], [0, 200 * MEGA, 400 * MEGA], (1000, 600 * MEGA)),
])
def test_resource_requested(overhead: int, init_cpu: int, init_mem: int, cpu: list[int], mem: list[int],
                            want: tuple[int, int]) -> None:
    assert lvrb.resource_requested(pod_with_containers_and_overhead(overhead, init_cpu, init_mem, cpu, mem)) == want


def test_resource_requested_reads_a_limit_as_the_missing_request() -> None:
    # as the API server defaults it: requests = limits when only limits are set
    p = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}},
        {"name": "b", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "4", "memory": "1Mi"}}}]}})
    assert lvrb.resource_requested(p) == (2000 + 100, (1 << 30) + MEGA)


# ---- args (TestNew) ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "want"), [
    ({"watcherAddress": "http://deadbeef:2020", "safeVarianceMargin": 1.0, "safeVarianceSensitivity": 1.0}, (1.0, 1.0)),
    ({}, (1.0, 1.0)),
    ({"safeVarianceMargin": -5}, (1.0, 1.0)),  # bad arguments are replaced by the defaults
    ({"safeVarianceMargin": -5, "safeVarianceSensitivity": -1}, (1.0, 1.0)),
    ({"safeVarianceMargin": 3, "safeVarianceSensitivity": 0.5}, (3.0, 0.5)),
    ({"safeVarianceMargin": 0, "safeVarianceSensitivity": 0}, (0.0, 0.0)),
])
def test_args_defaults(args: dict[str, Any], want: tuple[float, float]) -> None:
    plugin = lvrb.new(args, "args")
    assert (plugin.args.margin, plugin.args.sensitivity) == want


@pytest.mark.parametrize(("args", "path"), [
    ({"safeVarianceMargin": "1"}, "args.safeVarianceMargin"),
    ({"safeVarianceSensitivity": True}, "args.safeVarianceSensitivity"),
    ({"safeVarianceSensitivity": float("inf")}, "args.safeVarianceSensitivity"),
    ({"safeVarianceMargins": 1}, "args.safeVarianceMargins"),
    ({"metricProvider": {"type": "SignalFx"}}, "args.metricProvider.type"),  # only through a load-watcher
])
def test_args_errors_name_the_field(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ArgsError) as e:
        lvrb.new(args, "args")
    assert e.value.path == path and "\n" not in str(e.value)


def test_registered_with_its_metrics_source() -> None:
    plugin = REGISTRY[lvrb.NAME]({"watcherAddress": "http://load-watcher:2020"}, "args")
    assert isinstance(plugin, lvrb.LoadVariationRiskBalancing)
    assert plugin.metrics_source.watcher_address == "http://load-watcher:2020"


@pytest.mark.parametrize("seed", range(6))
def test_the_plugin_keeps_node_risks_and_scores_as_risk_scores(seed: int) -> None:
    # The plugin keeps what it derives from the sample and the nodes between decisions; its scores must
    # be risk_scores' for every pod, and follow a new sample and a new node at once.
    rng = np.random.default_rng(seed)
    margin, sensitivity = float(rng.choice([0.5, 1, 2])), float(rng.choice([-1, 0, 0.5, 1, 3]))
    plugin = lvrb.new({"safeVarianceMargin": margin, "safeVarianceSensitivity": sensitivity}, "args")
    table = NodeTable()
    for i in range(40):
        table.set_node(node_from_json({"metadata": {"name": f"n{i}"}, "status": {"allocatable": {
            "cpu": f"{int(rng.integers(0, 4)) * 1000}m", "memory": f"{int(rng.integers(1, 64))}Gi"}}}))

    def sample() -> dict[str, Any]:
        per = {}
        for i in range(table.n):
            m = []
            if rng.random() < 0.8:
                m += [("CPU", "AVG", float(rng.uniform(-5, 110))), ("CPU", "STD", float(rng.uniform(0, 30)))]
            if rng.random() < 0.8:
                m += [("Memory", "AVG", float(rng.uniform(0, 100))), ("Memory", "STD", float(rng.uniform(0, 30)))]
            per[f"n{i}"] = metrics(*m)
        return {"window": {}, "data": {"NodeMetricsMap": per}}

    load = LoadMetrics.of(table)
    for round_ in range(3):
        load.set_sample(watcher_metrics_from_json(sample(), what="watcher"))
        if round_ == 2:
            table.set_node(node_from_json({"metadata": {"name": "late"}, "status": {"allocatable": {
                "cpu": "2", "memory": "4Gi"}}}))
        n = table.n
        rows = np.arange(n, dtype=np.intp)
        cpu_alloc = table.allocatable[:n, table.resource_index["cpu"]].astype(np.float64)
        mem_alloc = table.allocatable[:n, table.resource_index["memory"]].astype(np.float64)
        for _ in range(5):
            pod = pod_with_containers_and_overhead(0, 0, 0, [int(rng.integers(0, 3000))],
                                                   [int(rng.integers(0, 8 * 1024)) * MEGA])
            want = lvrb.risk_scores((load.cpu[:n], load.cpu_std[:n], cpu_alloc), (load.memory[:n], load.memory_std[:n],
                                                                               mem_alloc),
                                    lvrb.resource_requested(pod), margin=margin, sensitivity=sensitivity)
            assert plugin.score(pod, table, rows, {}).tolist() == want.tolist()
            some = rows[::3]
            assert plugin.score(pod, table, some, {}).tolist() == want[some].tolist()
