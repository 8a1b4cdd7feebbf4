"""How much opportunistic batching saves per decision, and a check that it decides the same.

On a random cluster (``benchmarks.clusters``, 30 running pods per node, as
``benchmarks.decision``), two identical tables and two profiles built from the default
configuration with the same seed decide the same stream of pending pods, each pod
assumed where it goes: one through ``Profile.schedule``, one through
``scoring.batching.Batcher`` (falling back to ``schedule`` when it gives no decision,
as the live cycle does). The two decide each pod in turn, so that a shared machine's
load falls alike on both; a decision is timed without its assume (the same on both
sides). Two streams: identical replicas of one pod, and a mix of 4 shapes in random
order. Per stream and size it prints the median us/decision of both and the speed-up
(the JSON adds the means), the batcher's hit/miss/unsignable counts, and whether every
decision (node, feasible mask, scores, totals) was the same -- the benchmark exits 1
if not.

    python -m benchmarks.batching_bench [--nodes 2000,5000] [--pods 1000] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.clusters import random_nodes, random_pods
from scheduler.config import default_config
from scoring.batching import HIT, MISS, UNSIGNABLE, Batcher
from scoring.framework import Decision, Profile
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.table import NodeTable

__all__ = ["main", "bench"]

_SHAPES = 4
"""Distinct pod shapes of the mixed stream."""


def _table(nodes: Sequence[dict[str, Any]], existing: Sequence[PodInfo]) -> NodeTable:
    table = NodeTable(capacity=len(nodes))
    for n in nodes:
        table.set_node(node_from_json(n))
    for p in existing:
        table.add_pod(p, p.node_name)
    return table


def _replicas(shapes: Sequence[dict[str, Any]], order: Sequence[int], prefix: str) -> list[PodInfo]:
    pods = []
    for i, k in enumerate(order):
        raw = copy.deepcopy(shapes[k])
        raw["metadata"]["name"] = f"{prefix}-{i:06d}"
        raw["metadata"]["uid"] = f"{prefix}-uid-{i}"
        pods.append(pod_from_json(raw))
    return pods


def _same(a: Decision, b: Decision) -> bool:
    """The same node, feasible mask, scored rows, scores and totals."""
    return (a.node == b.node and np.array_equal(a.feasible, b.feasible) and np.array_equal(a.scored, b.scored)
            and np.array_equal(a.totals, b.totals) and a.scores.keys() == b.scores.keys()
            and all(np.array_equal(a.scores[k], b.scores[k]) for k in a.scores))


def _lockstep(pods: Sequence[PodInfo], plain: tuple[Profile, NodeTable], batched: tuple[Profile, NodeTable]
              ) -> tuple[list[float], list[float], dict[str, int], bool, int]:
    """Each pod decided on both sides in turn, each decision assumed where it went: the
    seconds of every unbatched and batched decision (the assume, the same on both sides,
    is not timed), the batcher's result counts, whether every decision was the same, and
    how many pods were placed. Interleaving the two keeps the load of a shared machine
    alike for both."""
    (plain_profile, plain_table), (profile, table) = plain, batched
    batcher = Batcher(profile)
    counts = {HIT: 0, MISS: 0, UNSIGNABLE: 0}
    plain_s: list[float] = []
    batched_s: list[float] = []
    same = True
    placed = 0
    # Collect the setup's garbage first, as benchmarks.decision does, and freeze what is left
    # (the cluster's objects): otherwise the collector's passes over them, which both paths
    # trigger as they allocate, land on one decision or another and swamp the difference.
    gc.collect()
    gc.freeze()
    try:
        for pod in pods:
            t0 = time.perf_counter()
            want = plain_profile.schedule(pod, plain_table)
            t1 = time.perf_counter()
            out = batcher.decide(pod, table)
            got = out.decision if out.decision is not None else profile.schedule(pod, table)
            t2 = time.perf_counter()
            plain_s.append(t1 - t0)
            batched_s.append(t2 - t1)
            counts[out.result] += 1
            same = same and _same(got, want)
            if want.node is not None:
                placed += 1
                plain_table.add_pod(pod, want.node)
            if got.node is not None:
                table.add_pod(pod, got.node)
    finally:
        gc.unfreeze()
    return plain_s, batched_s, counts, same, placed


def bench(*, size: int, pending: int, seed: int) -> list[dict[str, Any]]:
    """Both streams at ``size`` nodes: a result row each."""
    rng = np.random.default_rng(seed)
    nodes = random_nodes(rng, size)
    names = [n["metadata"]["name"] for n in nodes]
    existing = [pod_from_json(p) for p in random_pods(rng, 30 * size, prefix="run", node_names=names)]
    shapes = random_pods(rng, _SHAPES, prefix="shape")
    streams = {"identical": [0] * pending, "mixed-4": [int(k) for k in rng.integers(_SHAPES, size=pending)]}
    cfg = default_config().profiles[0]
    out = []
    for stream, order in streams.items():
        pods = _replicas(shapes, order, stream)
        plain_s, batched_s, counts, same, placed = _lockstep(
            pods, (cfg.build(seed=seed), _table(nodes, existing)), (cfg.build(seed=seed), _table(nodes, existing)))
        plain_us, batched_us = statistics.median(plain_s) * 1e6, statistics.median(batched_s) * 1e6
        plain_mean, batched_mean = statistics.fmean(plain_s) * 1e6, statistics.fmean(batched_s) * 1e6
        out.append({"nodes": size, "stream": stream, "pods": len(pods), "placed": placed,
                    "unbatched_us_per_decision": round(plain_us, 1), "batched_us_per_decision": round(batched_us, 1),
                    "speedup": round(plain_us / batched_us, 2),
                    "unbatched_mean_us": round(plain_mean, 1), "batched_mean_us": round(batched_mean, 1),
                    "speedup_of_means": round(plain_mean / batched_mean, 2),
                    "hits": counts[HIT], "misses": counts[MISS], "unsignable": counts[UNSIGNABLE],
                    "same_decisions": same})
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="2000,5000", help="node counts, comma-separated (default 2000,5000)")
    ap.add_argument("--pods", type=int, default=1000, help="pending pods per stream (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in a.nodes.split(",")]
    except ValueError:
        ap.error(f"--nodes: expected comma-separated integers, got {a.nodes[:40]!r}")
    if any(s <= 0 for s in sizes) or a.pods <= 0:
        ap.error("--nodes and --pods must be positive")
    results = [r for s in sizes for r in bench(size=s, pending=a.pods, seed=a.seed)]
    if a.json:
        print(json.dumps({"benchmark": "batching", "profile": "default", "results": results}, indent=2))
    else:
        print(f"{'nodes':>6} {'stream':<10} {'unbatched us':>13} {'batched us':>11} {'speedup':>8} "
              f"{'hits':>6} {'misses':>6} {'unsignable':>10} {'same':>5}")
        for r in results:
            print(f"{r['nodes']:>6} {r['stream']:<10} {r['unbatched_us_per_decision']:>13} "
                  f"{r['batched_us_per_decision']:>11} {r['speedup']:>7}x {r['hits']:>6} {r['misses']:>6} "
                  f"{r['unsignable']:>10} {'yes' if r['same_decisions'] else 'NO':>5}")
    if not all(r["same_decisions"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
