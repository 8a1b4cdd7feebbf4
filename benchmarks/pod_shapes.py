"""Workload shapes for pod-level constraints, after upstream's scheduler_perf.

Each shape is a cluster of ``size`` random nodes (three zones, hostnames; see
``benchmarks.clusters``) with ``existing`` pods already bound, and a stream of
pending pods that carry one kind of pod-level constraint:

- ``topology-spread``: ``maxSkew: 1`` over zones, ``DoNotSchedule``
  (scheduler_perf's TopologySpreading);
- ``preferred-topology-spread``: the same with ``ScheduleAnyway``
  (PreferredTopologySpreading);
- ``pod-anti-affinity``: required anti-affinity to the pod's own group on
  ``kubernetes.io/hostname`` (SchedulingPodAntiAffinity); the existing pods
  belong to 50 groups with the same kind of rule, so the symmetry index holds
  50 distinct terms;
- ``pod-affinity``: required affinity to pods labelled ``app: target`` in the
  same zone (SchedulingPodAffinity); a tenth of the existing pods are targets.

Used by ``benchmarks.decision --case``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from benchmarks.clusters import random_nodes

__all__ = ["CASES", "shape", "bench_case"]

ZONE: Final = "topology.kubernetes.io/zone"
HOSTNAME: Final = "kubernetes.io/hostname"
CASES: Final = ("topology-spread", "preferred-topology-spread", "pod-anti-affinity", "pod-affinity")


def _pod(name: str, labels: dict[str, str], *, node: str | None = None, affinity: Any = None,
         spread: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"schedulerName": "vecsched", "containers": [
        {"name": "app", "image": "registry.example/app-1:v1", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    if node is not None:
        spec["nodeName"] = node
    if affinity is not None:
        spec["affinity"] = affinity
    if spread is not None:
        spec["topologySpreadConstraints"] = spread
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "bench", "labels": labels},
            "spec": spec, "status": {"phase": "Running" if node else "Pending"}}


def _anti(app: str) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": HOSTNAME, "labelSelector": {"matchLabels": {"app": app}}}]}}


def shape(case: str, *, size: int, existing: int, pending: int, seed: int
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, existing pods bound to nodes, pending pods) as Kubernetes JSON."""
    if case not in CASES:
        raise ValueError(f"unknown case {case!r} (known: {', '.join(CASES)})")
    rng = np.random.default_rng(seed)
    nodes = random_nodes(rng, size)
    for n in nodes:  # scheduler_perf's nodes are untainted
        n["spec"]["taints"] = []
    names = [n["metadata"]["name"] for n in nodes]
    bound: list[dict[str, Any]] = []
    todo: list[dict[str, Any]] = []
    if case in ("topology-spread", "preferred-topology-spread"):
        when = "DoNotSchedule" if case == "topology-spread" else "ScheduleAnyway"
        spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": when,
                   "labelSelector": {"matchLabels": {"color": "blue"}}}]
        for i in range(existing):
            bound.append(_pod(f"init-{i:06d}", {"color": "blue" if i % 2 else "red"}, node=names[int(rng.integers(size))]))
        todo = [_pod(f"new-{i:06d}", {"color": "blue"}, spread=spread) for i in range(pending)]
    elif case == "pod-anti-affinity":
        for i in range(existing):
            app = f"group-{i % 50}"
            bound.append(_pod(f"init-{i:06d}", {"app": app}, node=names[i % size], affinity=_anti(app)))
        todo = [_pod(f"new-{i:06d}", {"app": "new"}, affinity=_anti("new")) for i in range(pending)]
    else:
        affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": ZONE, "labelSelector": {"matchLabels": {"app": "target"}}}]}}
        for i in range(existing):
            app = "target" if i % 10 == 0 else "other"
            bound.append(_pod(f"init-{i:06d}", {"app": app}, node=names[int(rng.integers(size))]))
        todo = [_pod(f"new-{i:06d}", {"app": "follower"}, affinity=affinity) for i in range(pending)]
    return nodes, bound, todo


def bench_case(case: str, *, size: int, existing: int, pending: int, reference_pods: int, seed: int) -> dict[str, Any]:
    """Time filter + score + select + assume for ``pending`` pods of one shape, with the
    default profile (every registered plugin, every feasible node scored) and with a
    profile of PodTopologySpread and InterPodAffinity alone; the per-node reference
    decides the first ``reference_pods`` of them on the same cluster."""
    import time

    from benchmarks.reference import time_reference
    from scheduler.config import default_config
    from scoring.framework import Profile
    from scoring.objects import node_from_json, pod_from_json
    from scoring.plugins import inter_pod_affinity, pod_topology_spread
    from scoring.table import NodeTable

    raw_nodes, raw_bound, raw_todo = shape(case, size=size, existing=existing, pending=pending, seed=seed)
    nodes = [node_from_json(n) for n in raw_nodes]
    bound = [pod_from_json(p) for p in raw_bound]
    todo = [pod_from_json(p) for p in raw_todo]
    cfg = default_config().profiles[0]

    def table() -> NodeTable:
        t = NodeTable(capacity=size)
        for n in nodes:
            t.set_node(n)
        for p in bound:
            t.add_pod(p, p.node_name)
        return t

    def run(profile: Any) -> tuple[float, int]:
        t = table()
        profile.schedule(todo[0], t)  # builds the counters once, as a live cache would have
        placed = 0
        start = time.perf_counter()
        for pod in todo:
            d = profile.schedule(pod, t)
            if d.node is not None:
                t.add_pod(pod, d.node)  # assume
                placed += 1
        return time.perf_counter() - start, placed

    full_s, placed = run(cfg.build(seed=seed))
    pts, ipa = pod_topology_spread.new({}, ""), inter_pod_affinity.new({}, "")
    own_s, _ = run(Profile(name="pod-constraints", prefilters=[pts, ipa], filters=[pts, ipa], scorers=[(pts, 2), (ipa, 2)]))

    ref_s = time_reference(filters=cfg.filters, scores=cfg.scores, plugin_args=cfg.plugin_args, nodes=nodes,
                           existing=bound, pending=todo[:reference_pods], seed=seed)
    us = full_s / len(todo) * 1e6
    ref_us = ref_s / reference_pods * 1e6 if reference_pods else None
    return {
        "case": case, "nodes": size, "existing_pods": existing, "pending_pods": len(todo), "placed": placed,
        "us_per_decision": round(us, 1), "decisions_per_s": round(1e6 / us, 1),
        "plugins_only_decisions_per_s": round(len(todo) / own_s, 1),
        "reference_us_per_decision": round(ref_us, 1) if ref_us else None, "reference_pods": reference_pods,
        "speedup_vs_reference": round(ref_us / us, 1) if ref_us else None,
    }
