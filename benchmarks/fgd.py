"""How long one FGD (and CpuAwareFGD) decision takes on the Alibaba GPU trace's 1,213 nodes.

The cluster is filled by the strategy itself with the default pod list in a seeded
shuffled order up to ``--fill`` percent of its GPU capacity (the state the
strategy lab's replay sees mid-way); then the next ``--pods`` pods of the
same order are decided against that state without being placed, so every
decision sees the same cluster. Reported: µs per whole decision
(``Profile.schedule`` of the built-in FGD strategy: kube-scheduler's default
filters + GpuShare, FGD scoring, select by node name, reserve) and µs per call
of the FGD score plugin alone, as median and mean; then the same for the
built-in CpuAwareFGD strategy (``scoring.plugins.cpu_aware_fgd``), so the two
are printed side by side.

    python -m benchmarks.fgd [--fill 50,90] [--pods 2000] [--strategies FGD,CpuAwareFGD] [--json]

The fragmentation measure itself is reported by the strategy lab for every
GPU cluster (``vecsched sim``: ``fragmentation.gpu`` and ``frag_curve.gpu``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


import numpy as np

from benchmarks.gpu_strategies import gpu_strategies_for
from benchmarks.openb import gpu_capacity, gpu_demand, load_openb_nodes, load_openb_pods
from benchmarks.strategies import builtin_profile
from scoring.framework import Profile
from scoring.table import NodeTable

TRACE = Path("benchmarks/traces/openb")
"""What `make openb` writes."""


def _us(xs: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(xs)) * 1e6, 1), "mean": round(float(np.mean(xs)) * 1e6, 1)}


STRATEGIES = ("FGD", "CpuAwareFGD")
"""The strategies timed, each by the score plugin of the same name."""


def _score_plugin(profile: Profile, name: str) -> Any:
    return next(p for p, _ in profile.scorers if p.name == name)


def bench(*, fill: int, pods: int, seed: int, trace: Path, strategy: str = "FGD") -> dict[str, Any]:
    nodes = load_openb_nodes(trace / "openb_node_list_gpu_node.csv")
    workload = load_openb_pods(trace / "openb_pod_list_default.csv")
    profile = builtin_profile(strategy, body=gpu_strategies_for(workload)[strategy]).build(seed=seed)
    table = NodeTable(capacity=len(nodes))
    for n in nodes:
        table.set_node(n)
    order = np.random.default_rng(seed).permutation(len(workload)).tolist()
    target, arrived, i = fill * gpu_capacity(nodes) // 100, 0, 0
    while arrived < target and i < len(order):
        pod = workload[order[i]]
        arrived += gpu_demand(pod)
        d = profile.schedule(pod, table)
        if d.node is not None:
            table.add_pod(d.assumed_pod(), d.node)
        i += 1
    todo = [workload[j] for j in (order[i:] + order[:i])[:pods]]
    fgd = _score_plugin(profile, strategy)
    rows = np.arange(table.n)
    decide, decide_cpu, score = [], [], []
    for pod in todo:
        c0, t0 = time.thread_time(), time.perf_counter()
        profile.schedule(pod, table)
        t1, c1 = time.perf_counter(), time.thread_time()
        fgd.score(pod, table, rows, {})
        c2 = time.thread_time()
        decide.append(t1 - t0)
        decide_cpu.append(c1 - c0)
        score.append(c2 - c1)
    return {"strategy": strategy, "nodes": table.n, "fill_percent": fill, "pods": len(todo), "decision_us": _us(decide),
            "decision_cpu_us": _us(decide_cpu), "fgd_score_cpu_us": _us(score)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fill", default="50,90", help="GPU fill levels in percent (default 50,90)")
    ap.add_argument("--pods", type=int, default=2000, help="decisions timed per level (default 2000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--trace", type=Path, default=TRACE, help="directory of the openb CSVs")
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help=f"strategies to time, from {', '.join(STRATEGIES)} (default: both)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    if not (args.trace / "openb_node_list_gpu_node.csv").is_file():
        print(f"benchmarks.fgd: no openb_node_list_gpu_node.csv in {args.trace}: run `make openb` first, "
              "or pass --trace DIR", file=sys.stderr)
        return 2
    names = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        ap.error(f"--strategies: unknown strategy {unknown[0]!r} (known: {', '.join(STRATEGIES)})" if unknown
                 else "--strategies: empty")
    results = {name: [bench(fill=int(f), pods=args.pods, seed=args.seed, trace=args.trace, strategy=name)
                      for f in args.fill.split(",")] for name in names}
    if args.json:
        print(json.dumps({"fgd" if name == "FGD" else name: rs for name, rs in results.items()}))
    else:
        for name, rs in results.items():
            for r in rs:
                d, c, f = r["decision_us"], r["decision_cpu_us"], r["fgd_score_cpu_us"]
                print(f"{name}: {r['nodes']} nodes, {r['fill_percent']}% GPU filled, {r['pods']} pods: decision "
                      f"{d['median']} µs median / {d['mean']} mean wall, {c['median']} / {c['mean']} CPU; "
                      f"{name} score alone {f['median']} / {f['mean']} µs CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
