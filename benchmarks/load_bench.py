"""What the load-aware plugins add to a decision, against the default profile in the same run.

A random cluster (``benchmarks.clusters``: four node sizes, three zones, 10
bound pods a node) gets a node-metrics sample for every node (CPU average
5-95% with a standard deviation up to 20 points, memory 10-90%), and the same
pending pods are decided, and assumed, by five profiles in turn, each on its
own copy of the cluster: ``default``, and ``default`` plus each load plugin
(``TargetLoadPacking``, ``LoadVariationRiskBalancing``, ``LoadAware``) or all
three. Each load profile's time is printed against ``default``'s from the
same run, since the ratio is what holds from machine to machine::

    python -m benchmarks.decision --case load-aware [--sizes 1000,5000] [--pods 1000] [--json]

The sample is set once, before the timed loop, as the live scheduler's
refresher sets it between cycles; pods assumed during the loop count as
placed since the sample, as they would live.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from benchmarks.clusters import random_nodes, random_pods, table_of
from benchmarks.decision import decide_all
from benchmarks.gang_bench import _sizes
from benchmarks.sim_command import _positive_int  # the same check as `vecsched sim`
from scheduler.config import API_VERSION, parse_config
from scoring.load import AVERAGE, CPU, LOAD_PLUGINS, MEMORY, STD, Metric, WatcherMetrics, Window
from scoring.objects import pod_from_json
from scoring.plugins.node_load import LoadMetrics

__all__ = ["PROFILES", "sample", "bench_load", "main"]

_PROG: Final = "python -m benchmarks.decision --case load-aware"
PROFILES: Final = (("default", ()), *((p, (p,)) for p in LOAD_PLUGINS), ("all three", LOAD_PLUGINS))
_ADDRESS: Final = "http://prometheus.invalid:9090"
"""Where the profiles' plugins would fetch from live; the benchmark sets the sample itself."""
_SAMPLE_AT: Final = 1_700_000_000


def sample(names: Sequence[str], rng: np.random.Generator, *, at: int = _SAMPLE_AT) -> WatcherMetrics:
    """A 15-minute node-metrics sample for ``names``, ending at ``at``, drawn from ``rng``."""
    cpu = rng.uniform(5, 95, len(names))
    cpu_std = rng.uniform(0, 20, len(names))
    mem = rng.uniform(10, 90, len(names))
    mem_std = rng.uniform(0, 10, len(names))
    cpu_rule, mem_rule = "instance:node_cpu:ratio", "instance:node_memory_utilisation:ratio"
    nodes = {name: (Metric(cpu_rule, CPU, AVERAGE, "15m", float(cpu[i])),
                    Metric(cpu_rule, CPU, STD, "15m", float(cpu_std[i])),
                    Metric(mem_rule, MEMORY, AVERAGE, "15m", float(mem[i])),
                    Metric(mem_rule, MEMORY, STD, "15m", float(mem_std[i])))
             for i, name in enumerate(names)}
    return WatcherMetrics(timestamp=at, window=Window("15m", at - 900, at), source="Prometheus", nodes=nodes)


def _config(plugins: Sequence[str]) -> Any:
    """A profile: the default plugins plus ``plugins`` (weight 1), reading from ``_ADDRESS``."""
    source = {"metricProvider": {"type": "Prometheus", "address": _ADDRESS}}
    return parse_config({
        "apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "vecsched",
                      "plugins": {"multiPoint": {"enabled": [{"name": p, "weight": 1} for p in plugins]}},
                      "pluginConfig": [{"name": p, "args": dict(source)} for p in plugins]}],
    }, source="benchmark")


def bench_load(*, size: int, pending: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    raw_nodes = random_nodes(rng, size)
    names = [n["metadata"]["name"] for n in raw_nodes]
    raw_existing = random_pods(rng, 10 * size, prefix="run", node_names=names)
    todo = [pod_from_json(p) for p in random_pods(rng, pending, prefix="new")]
    wm = sample(names, rng)
    rows: list[dict[str, Any]] = []
    for label, plugins in PROFILES:
        table = table_of(raw_nodes, raw_existing, capacity=size)
        metrics = LoadMetrics.of(table)
        metrics.clock = lambda: float(_SAMPLE_AT + 10)  # ten seconds after the sample: fresh, and every pod counts
        metrics.set_sample(wm)
        profile = _config(plugins).profiles[0].build(seed=seed)
        placed, seconds = decide_all(profile, table, todo)
        rows.append({"profile": label, "plugins": list(plugins), "placed": placed,
                     "us_per_decision": round(seconds / len(todo) * 1e6, 1)})
    base = rows[0]["us_per_decision"]
    for r in rows:
        r["ratio_vs_default"] = round(r["us_per_decision"] / base, 2)
    return {"nodes": size, "existing_pods": len(raw_existing), "pending_pods": len(todo), "results": rows}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog=_PROG, description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=_sizes, default=[1000, 5000], help="node counts, comma-separated (default 1000,5000)")
    ap.add_argument("--pods", type=_positive_int, default=1000, help="pending pods decided by each profile (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    results = [bench_load(size=s, pending=a.pods, seed=a.seed) for s in a.sizes]
    if a.json:
        print(json.dumps({"benchmark": "load-aware", "seed": a.seed, "results": results}, indent=2))
        return
    print(f"{'nodes':>6} {'profile':<28} {'placed':>6} {'us/decision':>12} {'vs default':>10}")
    for r in results:
        for x in r["results"]:
            print(f"{r['nodes']:>6} {x['profile']:<28} {x['placed']:>6} {x['us_per_decision']:>12} "
                  f"{x['ratio_vs_default']:>9}x")
    print("each profile decides and assumes the same pending pods on its own copy of the cluster; "
          "vs default: its time over the default profile's in this run")


if __name__ == "__main__":
    main()
