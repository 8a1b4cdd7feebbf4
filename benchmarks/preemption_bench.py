"""How long one preemption decision takes, against the per-node reference.

kube-scheduler spends about 20 ms per unschedulable high-priority pod in a cluster
running 20,000 pods (kubernetes/kubernetes#128466), nearly all of it in
DefaultPreemption's dry run; vecsched aims at a tenth of that. This benchmark
builds such a cluster -- ``--nodes`` nodes of 8 CPU / 32Gi / 110 pods, filled on
CPU by ``--pods`` pods of priority 0..3 with varied start times, a few
PodDisruptionBudgets over some of them -- and times ``Profile.schedule`` for
high-priority pods that fit nowhere: the filters, then the dry run over the
candidates and the choice of node and victims. Nothing is applied, so every
preemptor meets the same cluster.

The per-node reference (``benchmarks.reference.preemption``) decides the first
``--reference-preemptors`` of them in the same run, visiting the nodes from the
same offset and stopping at the same number of candidates as upstream's default
(10% of the nodes, at least 100); both must choose the same node and victims.

    python -m benchmarks.decision --case preemption [--nodes 5000] [--pods 20000]
        [--preemptors 50] [--reference-preemptors 5] [--spread APP] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import numpy as np

from benchmarks.clusters import table_of
from benchmarks.reference.preemption import preempt_per_node
from scheduler.config import default_config
from scoring.framework import Decision, Profile
from scoring.objects import pod_from_json
from scoring.plugins.default_preemption import DefaultPreemption, DefaultPreemptionArgs, Preemption
from scoring.plugins.budgets import Budgets

__all__ = ["UPSTREAM_US", "TARGET_US", "shape", "bench_preemption", "main"]

UPSTREAM_US: Final = 20_000.0
"""kube-scheduler's time per unschedulable high-priority pod with 20,000 pods running
(kubernetes/kubernetes#128466), in µs."""
TARGET_US: Final = UPSTREAM_US / 10
"""vecsched's target: ten times faster than upstream."""

_NODE_CPU_UNITS: Final = 16
"""A node's 8 CPU in units of 500m, split among its pods (each at least one unit)."""
_APPS: Final = 20
"""Placed pods carry ``app: app-<k>`` for k drawn from this many apps."""
_BUDGETS: Final = (("critical", 0, 0), ("frontend", 1, 1), ("cache", 2, 2))
"""(name, app, disruptionsAllowed): three budgets over 3 of the 20 apps (about 15% of the pods)."""
_PREEMPTOR_PRIORITY: Final = 1000
_PREEMPTOR_CPU: Final = "3"
"""Three of a full node's eight CPUs: one or two victims on most nodes."""
_EPOCH: Final = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _pod(name: str, *, priority: int, cpu: str, memory: str, node: str | None = None, app: str | None = None,
         start: datetime | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "bench", "uid": f"uid-{name}"}
    if app is not None:
        meta["labels"] = {"app": app}
    spec: dict[str, Any] = {"schedulerName": "vecsched", "priority": priority, "containers": [
        {"name": "app", "image": "registry.example/app:v1", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    status: dict[str, Any] = {"phase": "Pending"}
    if node is not None:
        spec["nodeName"] = node
        status = {"phase": "Running"}
    if start is not None:
        status["startTime"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def shape(*, nodes: int, pods: int, preemptors: int, seed: int, spread: str | None = None
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, placed pods, PodDisruptionBudgets, preemptors) as Kubernetes JSON.

    Pods go to nodes round robin; each node's 8 CPU are split at random among its pods
    in steps of 500m, so every node is full on CPU and a 3-CPU preemptor fits nowhere.
    Memory (4-7Gi a pod, 4Gi for a preemptor) never binds at four pods a node. Start
    times are whole minutes within one day, so some victims tie on them."""
    rng = np.random.default_rng(seed)
    raw_nodes = [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"node-{i:05d}", "labels": {"kubernetes.io/hostname": f"node-{i:05d}"}},
        "spec": {},
        "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}},
    } for i in range(nodes)]
    per_node = np.bincount(np.arange(pods) % nodes, minlength=nodes)
    placed: list[dict[str, Any]] = []
    for i, count in enumerate(per_node):
        cuts = np.sort(rng.choice(np.arange(1, _NODE_CPU_UNITS), size=int(count) - 1, replace=False))
        shares = np.diff(np.concatenate(([0], cuts, [_NODE_CPU_UNITS])))
        for share in shares:
            k = len(placed)
            placed.append(_pod(f"low-{k:06d}", priority=int(rng.integers(4)), cpu=f"{500 * int(share)}m",
                               memory=f"{int(rng.integers(4, 8))}Gi", node=f"node-{i:05d}",
                               app=f"app-{int(rng.integers(_APPS))}",
                               start=_EPOCH + timedelta(minutes=int(rng.integers(24 * 60)))))
    budgets = [{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "namespace": "bench"},
                "spec": {"selector": {"matchLabels": {"app": f"app-{app}"}}},
                "status": {"disruptionsAllowed": allowed}} for name, app, allowed in _BUDGETS]
    high = [_pod(f"high-{i:04d}", priority=_PREEMPTOR_PRIORITY, cpu=_PREEMPTOR_CPU, memory="4Gi", app=spread)
            for i in range(preemptors + 1)]  # the last one warms the caches up, untimed
    if spread is not None:
        # A hard spread over hostnames of the pods labelled ``app: <spread>``: a filter that looks
        # across nodes, so the dry run is exact node by node wherever such pods are placed.
        for p in high:
            p["spec"]["topologySpreadConstraints"] = [{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": spread}}}]
    return raw_nodes, placed, budgets, high


class _RecordingPreemption(DefaultPreemption):
    """DefaultPreemption that keeps each (offset, potential nodes) it drew, so that the
    reference can visit the nodes from the same place."""

    def __init__(self, args: DefaultPreemptionArgs) -> None:
        super().__init__(args)
        self.drawn: list[tuple[int, int]] = []

    def offset(self, nodes: int) -> int:
        start = super().offset(nodes)
        self.drawn.append((start, nodes))
        return start


def _recording(profile: Profile, seed: int) -> _RecordingPreemption:
    for i, plugin in enumerate(profile.postfilters):
        if isinstance(plugin, DefaultPreemption):
            rec = _RecordingPreemption(plugin.args)
            rec.reseed(seed)
            profile.postfilters[i] = rec
            return rec
    raise SystemExit("benchmarks.preemption_bench: the default profile has no DefaultPreemption PostFilter")


def _plan(d: Decision) -> Preemption:
    post = d.post_filter
    if d.node is not None or post is None or not isinstance(post.detail, Preemption):
        raise SystemExit(f"benchmarks.preemption_bench: pod {d.pod.key} was not a preemption decision "
                         f"(node {d.node!r}): the cluster is not full")
    return post.detail


def bench_preemption(*, nodes: int, pods: int, preemptors: int, reference_preemptors: int,
                     seed: int, spread: str | None = None) -> dict[str, Any]:
    """Time vecsched's decision for ``preemptors`` pods and the reference's for the first
    ``reference_preemptors`` of them, on one table that neither changes; compare them."""
    raw_nodes, raw_placed, raw_budgets, raw_high = shape(nodes=nodes, pods=pods, preemptors=preemptors, seed=seed,
                                                         spread=spread)
    table = table_of(raw_nodes, raw_placed, capacity=nodes)
    budgets = Budgets.of(table)
    for b in raw_budgets:
        budgets.apply(b)
    high = [pod_from_json(p) for p in raw_high]
    profile = default_config().profiles[0].build(seed=seed)
    plugin = _recording(profile, seed)
    before = (len(table.pods), table.requested[: table.n].copy())

    # Warm up: the first dry run indexes the placed pods and their budgets, as a live
    # cache has done long before a preemptor arrives.
    _plan(profile.schedule(high[-1], table))
    plugin.drawn.clear()
    plans: list[Preemption] = []
    visits: list[tuple[int, int]] = []
    took: list[float] = []
    gc.collect()  # the setup's garbage, so that a full collection does not land in the timed loop
    for pod in high[:preemptors]:
        start = time.perf_counter()
        d = profile.schedule(pod, table)
        took.append(time.perf_counter() - start)
        plans.append(_plan(d))
        if len(plugin.drawn) != len(plans):
            raise SystemExit(f"benchmarks.preemption_bench: pod {pod.key} had no potential node to preempt on")
        visits.append(plugin.drawn[-1])

    now = time.time()  # every placed pod has a start time; the reference still wants one
    ref_took: list[float] = []
    mismatches = candidate_mismatches = 0
    gc.collect()
    for pod, plan, (offset, potential) in zip(high[:reference_preemptors], plans, visits):
        wanted = plugin.args.num_candidates(potential)
        start = time.perf_counter()
        ref_node, ref_candidates = preempt_per_node(profile, pod, table, offset=offset, num_candidates=wanted, now=now)
        ref_took.append(time.perf_counter() - start)
        ours = {c.node: ([v.key for v in c.victims], c.pdb_violations) for c in plan.candidate_list()}
        ref_victims = ref_candidates[ref_node][0] if ref_node is not None and ref_node in ref_candidates else []
        if ref_node != plan.node or list(ref_victims) != [v.key for v in plan.victims]:
            mismatches += 1
        if ours != {n: (list(keys), violations) for n, (keys, violations) in ref_candidates.items()}:
            candidate_mismatches += 1

    after = (len(table.pods), table.requested[: table.n])
    if after[0] != before[0] or not np.array_equal(after[1], before[1]):
        raise SystemExit("benchmarks.preemption_bench: a decision changed the table")
    us = statistics.fmean(took) * 1e6
    ref_us = statistics.fmean(ref_took) * 1e6 if ref_took else None
    return {
        "benchmark": "decision", "case": "preemption",
        "nodes": nodes, "placed_pods": pods, "budgets": len(raw_budgets), "spread": spread,
        "preemptors": preemptors, "reference_preemptors": len(ref_took),
        "num_candidates": plugin.args.num_candidates(visits[0][1]),
        "nominated": sum(p.node is not None for p in plans),
        "victims_per_decision": round(statistics.fmean(len(p.victims) for p in plans), 2),
        "victims_per_candidate": round(statistics.fmean(len(c.victims) for p in plans for c in p.candidate_list()), 2),
        "pdb_violating_candidates_per_decision": round(
            statistics.fmean(sum(c.pdb_violations > 0 for c in p.candidate_list()) for p in plans), 1),
        "us_per_decision": round(us, 1), "median_us_per_decision": round(statistics.median(took) * 1e6, 1),
        "reference_us_per_decision": round(ref_us, 1) if ref_us is not None else None,
        "speedup_vs_reference": round(ref_us / us, 1) if ref_us is not None else None,
        "mismatches": mismatches, "candidate_mismatches": candidate_mismatches,
        "upstream_us": UPSTREAM_US, "target_us": TARGET_US, "meets_target": us <= TARGET_US,
    }


def _at_least(low: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_positive = _at_least(1, "a positive integer")
_count = _at_least(0, "a non-negative integer")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.decision --case preemption",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nodes", type=_positive, default=5000, help="nodes of 8 CPU / 32Gi (default 5000)")
    ap.add_argument("--pods", type=_positive, default=20000,
                    help="placed low-priority pods, filling the nodes' CPU (default 20000)")
    ap.add_argument("--preemptors", type=_positive, default=50, help="preemptors vecsched decides (default 50)")
    ap.add_argument("--reference-preemptors", type=_count, default=5,
                    help="of those, how many the per-node reference decides too (default 5)")
    ap.add_argument("--spread", metavar="APP", default=None,
                    help="give the preemptors a hard topology spread over hostnames of the pods labelled app=APP "
                         f"(app-0 .. app-{_APPS - 1} are placed pods, 1 in {_APPS} each; any other name matches none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if not a.nodes <= a.pods <= _NODE_CPU_UNITS * a.nodes:
        ap.error(f"--pods: between --nodes ({a.nodes}) and {_NODE_CPU_UNITS} x --nodes "
                 f"({_NODE_CPU_UNITS * a.nodes}), so that every node is full on CPU; got {a.pods}")
    if a.reference_preemptors > a.preemptors:
        ap.error(f"--reference-preemptors: at most --preemptors ({a.preemptors}); got {a.reference_preemptors}")
    r = bench_preemption(nodes=a.nodes, pods=a.pods, preemptors=a.preemptors,
                         reference_preemptors=a.reference_preemptors, seed=a.seed, spread=a.spread)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"preemption: {r['nodes']} nodes full of {r['placed_pods']} pods (priority 0-3), {r['budgets']} PDBs; "
          f"{r['preemptors']} preemptors of priority {_PREEMPTOR_PRIORITY} requesting {_PREEMPTOR_CPU} CPU; "
          f"{r['num_candidates']} candidates per decision"
          + (f"; preemptors spread (hard) over hostnames of app={r['spread']}" if r["spread"] else ""))
    print(f"{'':<10} {'us/decision':>12} {'median us':>10} {'decisions':>10}")
    print(f"{'vecsched':<10} {r['us_per_decision']:>12} {r['median_us_per_decision']:>10} {r['preemptors']:>10}")
    ref = r["reference_us_per_decision"]
    print(f"{'reference':<10} {'-' if ref is None else ref:>12} {'':>10} {r['reference_preemptors']:>10}")
    if r["speedup_vs_reference"] is not None:
        print(f"ratio: vecsched is {r['speedup_vs_reference']}x the reference's speed")
    print(f"same node and victims as the reference: {r['reference_preemptors'] - r['mismatches']} of "
          f"{r['reference_preemptors']} (mismatches: {r['mismatches']}; candidate sets differing: "
          f"{r['candidate_mismatches']})")
    print(f"nominated {r['nominated']} of {r['preemptors']}, {r['victims_per_decision']} victims each on average "
          f"(candidates: {r['victims_per_candidate']} victims each, "
          f"{r['pdb_violating_candidates_per_decision']} per decision violating a PDB)")
    print(f"anchor: kube-scheduler ~{UPSTREAM_US / 1000:.0f} ms per unschedulable high-priority pod with 20,000 pods "
          f"running (kubernetes/kubernetes#128466); target {TARGET_US:.0f} us: "
          f"{'met' if r['meets_target'] else 'not met'} ({r['us_per_decision']} us)")


if __name__ == "__main__":
    main()
