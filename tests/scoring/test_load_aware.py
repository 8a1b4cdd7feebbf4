"""LoadAware: its args, the filter (usage thresholds, expired metrics, nodes without metrics,
unresolvable by preemption), the usage estimate of a pod, and the free-capacity score with
the pods placed since the sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scoring.args import ArgsError
from scoring.framework import Profile
from scoring.load import watcher_metrics_from_json
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import REGISTRY, load_aware
from scoring.plugins.load_aware import estimate_pod_usage
from scoring.plugins.node_load import LoadMetrics
from scoring.plugins.preemption import STATIC, dry_run_mode
from scoring.table import NodeTable
from tests.explain_support import explain_reasons

G = 10**9
NODE = {"cpu": "4", "memory": "10G", "pods": "110"}
CPU_OVER = "node(s) had cpu usage above the threshold 65%"
MEMORY_OVER = "node(s) had memory usage above the threshold 95%"
EXPIRED = "node(s) had node metrics older than 180s"


def make_node(name: str, *, capacity: dict[str, str] | None = None) -> NodeInfo:
    return node_from_json({"metadata": {"name": name}, "status": {"capacity": capacity or NODE, "allocatable": NODE}})


def make_pod(name: str = "p", *containers: dict[str, Any], owner: str = "", inits: list[dict[str, Any]] | None = None,
             overhead: dict[str, str] | None = None) -> PodInfo:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "uid": "o", "controller": True, "apiVersion": "apps/v1"}]
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]}
    if inits:
        spec["initContainers"] = inits
    if overhead:
        spec["overhead"] = overhead
    return pod_from_json({"metadata": meta, "spec": spec})


def requesting(cpu: str, memory: str, name: str = "p") -> PodInfo:
    return make_pod(name, {"requests": {"cpu": cpu, "memory": memory}})


def usage(cpu: float | None = None, memory: float | None = None) -> dict[str, Any]:
    m = [{"type": "CPU", "operator": "AVG", "value": cpu}] if cpu is not None else []
    m += [{"type": "Memory", "operator": "AVG", "value": memory}] if memory is not None else []
    return {"metrics": m}


def cluster(nodes: list[NodeInfo], per_node: dict[str, Any] | None, *, end: int = 1000, now: float = 1000,
            placed: Sequence[tuple[PodInfo, str, float]] = ()) -> NodeTable:
    """A table of ``nodes`` with the sample ``per_node`` (None: no sample) taken at ``end``,
    the clock at ``now``, and ``placed`` pods added at their times."""
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    load = LoadMetrics.of(table)
    for p, where, t in placed:
        load.clock = lambda t=t: t  # type: ignore[misc]
        table.add_pod(p, where)
    load.clock = lambda: now
    if per_node is not None:
        load.set_sample(watcher_metrics_from_json(
            {"timestamp": end, "window": {"duration": "15m", "start": end - 900, "end": end},
             "data": {"NodeMetricsMap": per_node}}, what="sample"))
    return table


def reasons(plugin: load_aware.LoadAware, pod: PodInfo, table: NodeTable) -> dict[str, list[str]] | None:
    found = plugin.filter(pod, table, {})
    if found is None:
        return None
    assert all(r.unresolvable for r in found)  # preemption cannot lower measured usage
    return {r.message: [table.names[i] for i in np.flatnonzero(r.nodes)] for r in found}


# ---- args ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "want"), [
    ({}, ({"cpu": 65, "memory": 95}, 180, True, {"cpu": 1, "memory": 1}, {"cpu": 85, "memory": 70})),
    ({"usageThresholds": {"cpu": 80}, "resourceWeights": {"memory": 3}, "estimatedScalingFactors": {"cpu": 100},
      "metricsExpirationSeconds": 60, "filterExpiredNodeMetrics": False},
     ({"cpu": 80}, 60, False, {"memory": 3}, {"cpu": 100, "memory": 70})),
    ({"usageThresholds": {}}, ({}, 180, True, {"cpu": 1, "memory": 1}, {"cpu": 85, "memory": 70})),
    # scheduler-plugins' source fields are accepted as the Trimaran plugins take them
    ({"metricProvider": {"type": "Prometheus", "address": "http://prom:9090"}},
     ({"cpu": 65, "memory": 95}, 180, True, {"cpu": 1, "memory": 1}, {"cpu": 85, "memory": 70})),
])
def test_args(args: dict[str, Any], want: tuple[Any, ...]) -> None:
    a = load_aware.parse_args(args, "args")
    assert (a.usage_thresholds, a.metrics_expiration_seconds, a.filter_expired_node_metrics, a.resource_weights,
            a.estimated_scaling_factors) == want


@pytest.mark.parametrize(("args", "path"), [
    ({"usageThresholds": {"nvidia.com/gpu": 50}}, "args.usageThresholds.nvidia.com/gpu"),
    ({"usageThresholds": {"cpu": 101}}, "args.usageThresholds.cpu"),
    ({"usageThresholds": {"cpu": "65%"}}, "args.usageThresholds.cpu"),
    ({"usageThresholds": [65]}, "args.usageThresholds"),
    ({"resourceWeights": {}}, "args.resourceWeights"),
    ({"resourceWeights": {"cpu": 0}}, "args.resourceWeights.cpu"),
    ({"estimatedScalingFactors": {"memory": 0}}, "args.estimatedScalingFactors.memory"),
    ({"metricsExpirationSeconds": 0}, "args.metricsExpirationSeconds"),
    ({"filterExpiredNodeMetrics": "yes"}, "args.filterExpiredNodeMetrics"),
    ({"usageThreshold": {"cpu": 65}}, "args.usageThreshold"),
    ({"metricProvider": {"type": "Graphite"}}, "args.metricProvider.type"),
])
def test_args_errors_name_the_field(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ArgsError) as e:
        load_aware.new(args, "args")
    assert e.value.path == path and "\n" not in str(e.value)


def test_registered_with_its_metrics_source() -> None:
    plugin = REGISTRY[load_aware.NAME]({"watcherAddress": "http://load-watcher:2020"}, "args")
    assert isinstance(plugin, load_aware.LoadAware)
    assert plugin.metrics_source.watcher_address == "http://load-watcher:2020"


# ---- filter ---------------------------------------------------------------------------------------------------

NODES = [make_node(n) for n in ("a", "b", "c", "d", "e", "f")]
SAMPLE = {
    "a": usage(cpu=50, memory=50),   # passes
    "b": usage(cpu=70, memory=10),   # cpu 70 > 65
    "c": usage(cpu=66, memory=96),   # both
    # d: no metrics at all -> passes (a node not scraped yet)
    "e": usage(memory=99),           # memory only: cpu unknown is never above
    "f": usage(cpu=65, memory=95),   # at the thresholds: not above
}


@pytest.mark.parametrize(("args", "now", "want"), [
    pytest.param({}, 1000, {CPU_OVER: ["b", "c"], MEMORY_OVER: ["c", "e"]}, id="thresholds"),
    pytest.param({"usageThresholds": {"memory": 50}}, 1000,
                 {"node(s) had memory usage above the threshold 50%": ["c", "e", "f"]}, id="memory only"),
    pytest.param({"usageThresholds": {}}, 1000, {}, id="no thresholds"),
    # the sample is 180 s old: not older than 180 s yet
    pytest.param({}, 1180, {CPU_OVER: ["b", "c"], MEMORY_OVER: ["c", "e"]}, id="at the expiration"),
    # 181 s old: every node with metrics is rejected; d (no metrics) still passes
    pytest.param({}, 1181, {EXPIRED: ["a", "b", "c", "e", "f"]}, id="expired"),
    pytest.param({"metricsExpirationSeconds": 30}, 1031,
                 {"node(s) had node metrics older than 30s": ["a", "b", "c", "e", "f"]}, id="expired sooner"),
    # filterExpiredNodeMetrics false: the last sample is used however old
    pytest.param({"filterExpiredNodeMetrics": False}, 100_000, {CPU_OVER: ["b", "c"], MEMORY_OVER: ["c", "e"]},
                 id="expired but used"),
])
def test_filter(args: dict[str, Any], now: float, want: dict[str, list[str]]) -> None:
    table = cluster(NODES, SAMPLE, now=now)
    assert reasons(load_aware.new(args, "args"), requesting("1", "1G"), table) == want


@pytest.mark.parametrize(("args", "want"), [
    pytest.param({}, {CPU_OVER: ["b", "c"], MEMORY_OVER: ["c", "e"]}, id="thresholds"),
    pytest.param({"usageThresholds": {"memory": 50}},
                 {"node(s) had memory usage above the threshold 50%": ["c", "e", "f"]}, id="memory only"),
])
def test_filter_through_explain(args: dict[str, Any], want: dict[str, list[str]]) -> None:
    # `vecsched explain --node-metrics FILE` decides as when the sample was taken (an old file is not stale),
    # so the thresholds alone reject: each node's reasons are the messages whose node lists name it.
    sample = {"timestamp": 1000, "window": {"duration": "15m", "start": 100, "end": 1000},
              "data": {"NodeMetricsMap": SAMPLE}}
    got = explain_reasons(nodes=NODES, pod=requesting("1", "1G"), plugin="LoadAware", args=args or None,
                          node_metrics=sample)
    assert got == {n.name: [m for m, names in want.items() if n.name in names] for n in NODES}


def test_filter_passes_everything_without_a_sample_and_for_daemonset_pods() -> None:
    plugin = load_aware.new({}, "args")
    assert reasons(plugin, requesting("1", "1G"), cluster(NODES, None)) is None
    assert reasons(plugin, make_pod("ds", {}, owner="DaemonSet"), cluster(NODES, SAMPLE)) is None
    assert reasons(plugin, make_pod("rs", {}, owner="ReplicaSet"), cluster(NODES, SAMPLE)) == {
        CPU_OVER: ["b", "c"], MEMORY_OVER: ["c", "e"]}


def test_no_node_fits_message_and_preemption_keeps_the_verdict() -> None:
    plugin = load_aware.new({}, "args")
    table = cluster([make_node("b"), make_node("c")], {"b": SAMPLE["b"], "c": SAMPLE["c"]})
    decision = Profile(name="p", filters=[plugin], scorers=[(plugin, 1)]).schedule(requesting("1", "1G"), table)
    assert decision.node is None
    assert decision.message == ("0/2 nodes are available: 1 node(s) had memory usage above the threshold 95%, "
                                "2 node(s) had cpu usage above the threshold 65%.")
    assert all(r.unresolvable for r in decision.reasons)
    # the preemption dry run does not run it again: evicting pods changes no measurement
    assert dry_run_mode(plugin, requesting("1", "1G"), table, {}) == STATIC


# ---- estimate ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pod", "resource", "factor", "want"), [
    (make_pod("p", {"limits": {"cpu": "2"}, "requests": {"cpu": "1"}}), "cpu", 85, 2000),  # the limit
    (make_pod("p", {"requests": {"cpu": "1"}}), "cpu", 85, 850),  # 1000 * 85%
    (make_pod("p", {"requests": {"cpu": "1m"}}), "cpu", 85, 1),  # 0.85 -> 1
    (make_pod("p", {"requests": {"cpu": "3m"}}), "cpu", 50, 2),  # 1.5 -> 2 (half away from zero)
    (make_pod("p", {"requests": {"memory": "1G"}}), "memory", 70, 700_000_000),
    (make_pod("p", {}), "cpu", 85, 100),  # no request: the scheduler's default, 100m
    (make_pod("p", {}), "memory", 70, 200 * 1024 * 1024),  # and 200Mi
    # sidecars count, init containers that finish do not; the overhead is added
    (make_pod("p", {"requests": {"cpu": "1"}}, overhead={"cpu": "50m"},
              inits=[{"name": "sidecar", "restartPolicy": "Always", "resources": {"limits": {"cpu": "200m"}}},
                     {"name": "setup", "resources": {"limits": {"cpu": "8"}}}]), "cpu", 85, 850 + 200 + 50),
])
def test_estimate_pod_usage(pod: PodInfo, resource: str, factor: int, want: int) -> None:
    assert estimate_pod_usage(pod, resource, factor) == want


# ---- score -------------------------------------------------------------------------------------------------------

# Nodes of 4 CPU and 10G; the pod requests 1 CPU and 1G, estimated at 850m and 0.7G.
SCORE_SAMPLE = {
    # cpu 25% = 1000m + 850 -> free 2150/4000 -> 53; memory 30% = 3G + .7 -> 6.3/10 -> 63; (53 + 63) // 2 = 58
    "a": usage(cpu=25, memory=30),
    # cpu 60% = 2400 + 850 -> 750/4000 -> 18; memory 90% + 7% -> 3; (18 + 3) // 2 = 10
    "b": usage(cpu=60, memory=90),
    # c: no metrics -> 0
    # cpu 10% = 400 + 850 -> 2750/4000 -> 68; memory unknown -> 0; (68 + 0) // 2 = 34
    "d": usage(cpu=10),
    # cpu 99% = 3960 + 850 > 4000 -> 0; memory 0% + 7% -> 93; (0 + 93) // 2 = 46
    "e": usage(cpu=99, memory=0),
}


def score(args: dict[str, Any], table: NodeTable, pod: PodInfo) -> dict[str, int]:
    got = load_aware.new(args, "args").score(pod, table, np.arange(table.n, dtype=np.intp), {})
    return {table.names[i]: int(s) for i, s in enumerate(got)}


def test_score() -> None:
    table = cluster([make_node(n) for n in "abcde"], SCORE_SAMPLE)
    assert score({}, table, requesting("1", "1G")) == {"a": 58, "b": 10, "c": 0, "d": 34, "e": 46}


def test_score_weights() -> None:
    table = cluster([make_node(n) for n in "abcde"], SCORE_SAMPLE)
    # (3 * 53 + 63) // 4 = 55; (3 * 18 + 3) // 4 = 14; (3 * 68 + 0) // 4 = 51; (0 + 93) // 4 = 23
    assert score({"resourceWeights": {"cpu": 3, "memory": 1}}, table, requesting("1", "1G")) == {
        "a": 55, "b": 14, "c": 0, "d": 51, "e": 23}
    # cpu alone at 100%: a 1000 + 1000 -> 50; b 2400 + 1000 -> 15; d 400 + 1000 -> 65; e -> 0
    assert score({"resourceWeights": {"cpu": 1}, "estimatedScalingFactors": {"cpu": 100}}, table,
                 requesting("1", "1G")) == {"a": 50, "b": 15, "c": 0, "d": 65, "e": 0}


def test_score_counts_pods_placed_since_the_sample() -> None:
    # Window end 1000: a pod on a at 990 (limits 500m, 1G) is not in the metrics yet; one on b at
    # 900 is. a: cpu 1850 + 500 = 2350 -> 1650/4000 -> 41; memory 3.7 + 1 = 4.7 -> 53; (41 + 53) // 2 = 47
    placed = [(make_pod("new", {"limits": {"cpu": "500m", "memory": "1G"}}), "a", 990),
              (make_pod("old", {"limits": {"cpu": "2", "memory": "5G"}}), "b", 900)]
    table = cluster([make_node(n) for n in "abcde"], SCORE_SAMPLE, placed=placed, now=1010)
    assert score({}, table, requesting("1", "1G")) == {"a": 47, "b": 10, "c": 0, "d": 34, "e": 46}


def test_score_measures_usage_over_capacity_and_frees_allocatable() -> None:
    # capacity 8 CPU, allocatable 4: 25% of 8000 = 2000 + 850 -> free 1150/4000 -> 28
    table = cluster([make_node("a", capacity={"cpu": "8", "memory": "10G"})], {"a": usage(cpu=25)})
    assert score({"resourceWeights": {"cpu": 1}}, table, requesting("1", "1G")) == {"a": 28}


def test_score_without_a_sample_is_zero() -> None:
    assert score({}, cluster(NODES, None), requesting("1", "1G")) == dict.fromkeys("abcdef", 0)


def test_score_for_a_subset_of_rows() -> None:
    table = cluster([make_node(n) for n in "abcde"], SCORE_SAMPLE)
    plugin = load_aware.new({}, "args")
    assert plugin.score(requesting("1", "1G"), table, np.array([4, 0], np.intp), {}).tolist() == [46, 58]
    assert plugin.score(requesting("1", "1G"), table, np.array([4, 0, 1], np.intp), {}).tolist() == [46, 58, 10]
