"""How long one FGD decision takes on the Alibaba GPU trace's 1,213 nodes.

The cluster is filled by FGD itself with the default pod list in a seeded
shuffled order up to ``--fill`` percent of its GPU capacity (the state the
strategy lab's replay sees mid-way); then the next ``--pods`` pods of the
same order are decided against that state without being placed, so every
decision sees the same cluster. Reported: µs per whole decision
(``Profile.schedule`` of the built-in FGD strategy: kube-scheduler's default
filters + GpuShare, FGD + FirstFit scoring, select, reserve) and µs per call
of the FGD score plugin alone, as median and mean.

    python -m benchmarks.fgd [--fill 50,90] [--pods 2000] [--json]

``--fragmentation`` instead replays the strategy lab's protocol (the lab's
seeded pod order and ``--inflate`` clones, no departures, the GPU built-in
strategies) and records, when the arrived GPU request first reaches each of
``--at`` percent of capacity, the GPU allocation and the cluster's expected
fragmentation ``sum_n F_n(M)`` against the workload's typical pods (the paper's
measure, ``scoring.plugins.gpu_frag``), both in percent of GPU capacity, mean
over seeds. The lab's own report has no fragmentation column (its "stranded"
is a different, shape-based measure).

    python -m benchmarks.fgd --fragmentation [--seeds 10] [--at 100,130] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from concurrent.futures import ProcessPoolExecutor

import numpy as np

from benchmarks.gpu_strategies import gpu_strategies_for
from benchmarks.openb import gpu_capacity, gpu_demand, load_openb_nodes, load_openb_pods, typical_pods
from benchmarks.sim.model import SimPod
from benchmarks.sim.replay import reseed_plugins
from benchmarks.sim.sweep import prepare_pods
from benchmarks.strategies import builtin_profile, resolve_strategies
from scoring.framework import Profile
from scoring.objects import CPU
from scoring.plugins.gpu_frag import TargetWorkload, node_fragmentation, parse_typical_pods
from scoring.plugins.gpu_state import gpu_table
from scoring.table import NodeTable

TRACE = Path("/work/shared/traces/openb")


def _us(xs: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(xs)) * 1e6, 1), "mean": round(float(np.mean(xs)) * 1e6, 1)}


def _fgd_plugin(profile: Profile) -> Any:
    return next(p for p, _ in profile.scorers if p.name == "FGD")


def bench(*, fill: int, pods: int, seed: int, trace: Path) -> dict[str, Any]:
    nodes = load_openb_nodes(trace / "openb_node_list_gpu_node.csv")
    workload = load_openb_pods(trace / "openb_pod_list_default.csv")
    profile = builtin_profile("FGD", body=gpu_strategies_for(workload)["FGD"]).build(seed=seed)
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
    fgd = _fgd_plugin(profile)
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
    return {"nodes": table.n, "fill_percent": fill, "pods": len(todo), "decision_us": _us(decide),
            "decision_cpu_us": _us(decide_cpu), "fgd_score_cpu_us": _us(score)}


def cluster_fragmentation(table: NodeTable, wl: TargetWorkload) -> tuple[float, int]:
    """(sum over nodes of F_n(M), idle milli-GPU) of the table's current state."""
    ext = gpu_table(table)
    n, c = table.n, table.resource_index[CPU]
    cpu_left = table.allocatable[:n, c] - table.requested[:n, c]
    frag = node_fragmentation(ext.free[:n], cpu_left, ext.model[:n], ext.models, wl)
    return float(frag.sum()), int(ext.free[:n].sum())


def _frag_run(task: tuple[str, int, float, list[int], Path]) -> dict[str, Any]:
    strategy, seed, inflate, marks, trace = task
    nodes = load_openb_nodes(trace / "openb_node_list_gpu_node.csv")
    workload = load_openb_pods(trace / "openb_pod_list_default.csv")
    capacity = gpu_capacity(nodes)
    pods = prepare_pods([SimPod(p) for p in workload], seed=seed, inflate=inflate, primary="gpu",
                        capacity={"gpu": capacity}, unordered=True)
    config = resolve_strategies([strategy], workload=workload)[strategy]
    profile = config.build(seed=seed)
    reseed_plugins(profile, seed)
    wl = TargetWorkload(parse_typical_pods(typical_pods(workload), "typicalPods"))
    table = NodeTable(capacity=len(nodes))
    for node in nodes:
        table.set_node(node)
    arrived = allocated = 0
    out: dict[str, Any] = {"strategy": strategy, "seed": seed}
    todo = sorted(marks)
    for sp in pods:
        demand = gpu_demand(sp.pod)
        arrived += demand
        d = profile.schedule(sp.pod, table)
        if d.node is not None:
            table.add_pod(d.assumed_pod(), d.node)
            allocated += demand
        while todo and arrived * 100 >= todo[0] * capacity:
            frag, idle = cluster_fragmentation(table, wl)
            out[str(todo.pop(0))] = {"alloc": 100.0 * allocated / capacity, "frag": 100.0 * frag / capacity,
                                     "frag_of_idle": 100.0 * frag / idle if idle else 0.0}
    return out


def fragmentation(*, strategies: list[str], seeds: int, inflate: float, marks: list[int], trace: Path,
                  jobs: int) -> dict[str, Any]:
    tasks = [(s, seed, inflate, marks, trace) for s in strategies for seed in range(seeds)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(_frag_run, tasks))
    summary: dict[str, Any] = {}
    for s in strategies:
        mine = [r for r in runs if r["strategy"] == s]
        summary[s] = {str(m): {k: round(float(np.mean([r[str(m)][k] for r in mine if str(m) in r])), 2)
                               for k in ("alloc", "frag", "frag_of_idle")} for m in marks}
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fill", default="50,90", help="GPU fill levels in percent (default 50,90)")
    ap.add_argument("--pods", type=int, default=2000, help="decisions timed per level (default 2000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--trace", type=Path, default=TRACE, help="directory of the openb CSVs")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--fragmentation", action="store_true", help="allocation and fragmentation per strategy")
    ap.add_argument("--strategies", default="FGD,BestFit,DotProduct,GpuPacking,GpuClustering,Random")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--inflate", type=float, default=1.3)
    ap.add_argument("--at", default="100,130", help="arrived GPU request marks in percent (default 100,130)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if args.fragmentation:
        marks = [int(m) for m in args.at.split(",")]
        summary = fragmentation(strategies=args.strategies.split(","), seeds=args.seeds, inflate=args.inflate,
                                marks=marks, trace=args.trace, jobs=args.jobs)
        if args.json:
            print(json.dumps({"fragmentation": summary}))
        else:
            for s, by in summary.items():
                print(f"{s:14}" + "  ".join(f"@{m}%: alloc {v['alloc']:.2f} frag {v['frag']:.2f} "
                                           f"({v['frag_of_idle']:.1f}% of idle)" for m, v in by.items()))
        return 0
    results = [bench(fill=int(f), pods=args.pods, seed=args.seed, trace=args.trace) for f in args.fill.split(",")]
    if args.json:
        print(json.dumps({"fgd": results}))
    else:
        for r in results:
            d, c, f = r["decision_us"], r["decision_cpu_us"], r["fgd_score_cpu_us"]
            print(f"{r['nodes']} nodes, {r['fill_percent']}% GPU filled, {r['pods']} pods: decision "
                  f"{d['median']} µs median / {d['mean']} mean wall, {c['median']} / {c['mean']} CPU; "
                  f"FGD score alone {f['median']} / {f['mean']} µs CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
