"""How long one scheduling decision takes, without I/O, and what the cluster costs in memory.

For clusters of 1,000 / 5,000 / 15,000 random nodes with 15 bound pods each
(``--pods-per-node``; so ``--sizes 5000,20000`` holds 75,000 and 300,000 pods), time
filter + score + select + assume for 2,000 pending pods with the default profile,
scoring every feasible node. Each size runs in a fresh subprocess, so the peak
resident memory printed (``rss_mib``, the process's VmHWM) is that size's alone: the
interpreter, the table with its plugins' state, and what building it took. The
ratio of each size's time per decision to the first size's is printed too (the
scale-out cost: 4x the nodes should cost at most 4x the time). The per-node
reference implementation (``benchmarks.reference``) decides a few of the same pods
in the same run (``--reference-pods``, 0 to leave it out), and the ratio of the two is
printed, since absolute figures on a shared machine are noisy.

    python -m benchmarks.decision [--sizes 1000,5000,15000] [--pods 2000] [--pods-per-node 15]
        [--reference-pods 20] [--json]

``--case`` runs upstream scheduler_perf's pod-level shapes instead (see
``benchmarks.pod_shapes``): ``topology-spread``, ``preferred-topology-spread``,
``pod-anti-affinity``, ``pod-affinity``, or ``pod-constraints`` for all four, on
``--sizes`` nodes (default 5000) with ``--existing`` bound pods (default 5000).
Besides the default profile it times PodTopologySpread + InterPodAffinity alone.

    python -m benchmarks.decision --case pod-constraints [--pods 1000] [--json]

``--case preemption`` times DefaultPreemption's decision for high-priority pods that
fit nowhere in a full cluster, against the per-node reference (see
``benchmarks.preemption_bench``, which reads the options after it).

    python -m benchmarks.decision --case preemption [--nodes 5000] [--pods 20000]
        [--preemptors 50] [--reference-preemptors 5] [--json]

``--case gang`` times placing a whole PodGroup of 8, 64 and 512 GPU members on 5,000 GPU
nodes, vecsched's group placement against scheduler-plugins' member-by-member way in the
same run, for a group that fits and one that does not (see ``benchmarks.gang_bench``,
which reads the options after it).

    python -m benchmarks.decision --case gang [--nodes 5000] [--sizes 8,64,512] [--repeat 10] [--json]

``--case load-aware`` times the load plugins (TargetLoadPacking, LoadVariationRiskBalancing,
LoadAware) added to the default profile, against the default profile in the same run
(``benchmarks.load_bench``)::

    python -m benchmarks.decision --case load-aware [--sizes 1000,5000] [--pods 1000] [--json]

``--case volumes`` times the volume plugins (VolumeRestrictions, NodeVolumeLimits,
VolumeBinding, VolumeZone) for pods without volumes, with a bound claim, with a claim to
provision and with a claim of static local PVs, against the default profile without them
in the same run (``benchmarks.volume_bench``)::

    python -m benchmarks.decision --case volumes [--sizes 1000,5000] [--pods 500] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.clusters import random_nodes, random_pods
from benchmarks.pod_shapes import CASES, bench_case
from scheduler.config import default_config
from scoring.framework import Profile
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.safe_input import quote
from scoring.table import NodeTable


def decide_all(profile: Profile, table: NodeTable, pods: Sequence[PodInfo]) -> tuple[int, float]:
    """Decide each pod in turn and assume it where it goes: (pods placed, seconds taken)."""
    placed = 0
    # Collect the setup's garbage now: otherwise a full collection over the millions of
    # objects just built (about a second at 5,000 nodes) lands inside the timed loop or
    # not, depending on where the collector's thresholds happen to fall, and swamps it.
    gc.collect()
    start = time.perf_counter()
    for pod in pods:
        d = profile.schedule(pod, table)
        if d.node is not None:
            table.add_pod(pod, d.node)  # assume
            placed += 1
    return placed, time.perf_counter() - start


_CHUNK = 10_000
"""Bound pods generated, read and charged at a time: the JSON of all 300,000 at once would
add a few hundred MiB to the peak that the scheduler itself never holds."""


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_size(*, size: int, pending: int, per_node: int, reference_pods: int, seed: int) -> dict[str, Any]:
    """One size, in this process: build the table (``per_node`` bound pods per node on average),
    decide ``pending`` pods, and the reference's ``reference_pods`` of them (0: not at all)."""
    rng = np.random.default_rng(seed)
    nodes = [node_from_json(n) for n in random_nodes(rng, size)]
    names = [n.name for n in nodes]
    table = NodeTable(capacity=size)
    for n in nodes:
        table.set_node(n)
    existing: list[PodInfo] = []
    total = per_node * size
    build_start = time.perf_counter()
    for chunk, first in enumerate(range(0, total, _CHUNK)):
        for raw in random_pods(rng, min(_CHUNK, total - first), prefix=f"run{chunk}", node_names=names):
            p = pod_from_json(raw)
            table.add_pod(p, p.node_name)
            if reference_pods:
                existing.append(p)
    build_s = time.perf_counter() - build_start
    todo = [pod_from_json(p) for p in random_pods(rng, pending, prefix="new")]
    cfg = default_config().profiles[0]
    profile = cfg.build(seed=seed)
    # One decision first, not assumed: it builds the plugins' table extensions (topology and
    # affinity counters over every bound pod), which a live cache has built at its start.
    profile.schedule(todo[0], table)

    placed, vec_s = decide_all(profile, table, todo)

    ref_us = None
    if reference_pods:
        from benchmarks.reference import time_reference  # (only when asked for: it is not needed otherwise)

        ref_s = time_reference(filters=cfg.filters, scores=cfg.scores, plugin_args=cfg.plugin_args, nodes=nodes,
                               existing=existing, pending=todo[:reference_pods], seed=seed)
        ref_us = ref_s / reference_pods * 1e6
    vec_us = vec_s / len(todo) * 1e6
    return {
        "nodes": size, "existing_pods": total, "pending_pods": len(todo), "placed": placed,
        "us_per_decision": round(vec_us, 1), "decisions_per_s": round(1e6 / vec_us, 1),
        "reference_us_per_decision": round(ref_us, 1) if ref_us else None, "reference_pods": reference_pods,
        "speedup_vs_reference": round(ref_us / vec_us, 1) if ref_us else None,
        "build_s": round(build_s, 1), "rss_mib": round(peak_rss_mib(), 1),
    }


def bench_sizes(*, sizes: Sequence[int], pending: int, per_node: int, reference_pods: int,
                seed: int) -> list[dict[str, Any]]:
    """``bench_size`` for each size in a subprocess of its own (so that its peak memory is its
    own), with ``ratio_to_first``: its time per decision over the first size's."""
    results: list[dict[str, Any]] = []
    for size in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.decision", "--one-size", str(size), "--pods", str(pending),
             "--pods-per-node", str(per_node), "--reference-pods", str(reference_pods), "--seed", str(seed)],
            stdout=subprocess.PIPE, check=True, text=True)
        results.append(json.loads(out.stdout))
    for r in results:
        r["ratio_to_first"] = round(r["us_per_decision"] / results[0]["us_per_decision"], 2)
    return results


def main_cases(a: argparse.Namespace) -> None:
    """``--case``: the pod-level constraint shapes."""
    cases = CASES if a.case == "pod-constraints" else (a.case,)
    sizes = a.sizes or "5000"
    results = [bench_case(c, size=int(s), existing=a.existing, pending=a.pods, reference_pods=a.reference_pods, seed=a.seed)
               for c in cases for s in sizes.split(",")]
    if a.json:
        print(json.dumps({"benchmark": "decision", "profile": "default", "results": results}, indent=2))
        return
    print(f"{'case':<26} {'nodes':>6} {'existing':>8} {'us/decision':>12} {'decisions/s':>12} "
          f"{'plugins only/s':>15} {'reference us':>13} {'speedup':>8}")
    for r in results:
        print(f"{r['case']:<26} {r['nodes']:>6} {r['existing_pods']:>8} {r['us_per_decision']:>12} "
              f"{r['decisions_per_s']:>12} {r['plugins_only_decisions_per_s']:>15} "
              f"{_opt(r['reference_us_per_decision']):>13} {_opt(r['speedup_vs_reference'], 'x'):>8}")


def _opt(value: float | None, unit: str = "") -> str:
    """A figure, or "-" when it was not measured (``--reference-pods 0``)."""
    return "-" if value is None else f"{value}{unit}"


def main(argv: Sequence[str] | None = None) -> None:
    # The preemption and gang cases have options of their own (--nodes, ...): hand them the rest.
    case = argparse.ArgumentParser(add_help=False)
    case.add_argument("--case")
    first, rest = case.parse_known_args(argv)
    if first.case == "preemption":
        from benchmarks import preemption_bench

        preemption_bench.main(rest)
        return
    if first.case == "gang":
        from benchmarks import gang_bench

        gang_bench.main(rest)
        return
    if first.case == "load-aware":
        from benchmarks import load_bench

        load_bench.main(rest)
        return
    if first.case == "volumes":
        from benchmarks import volume_bench

        volume_bench.main(rest)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="default", choices=("default", *CASES, "pod-constraints", "preemption", "gang",
                                                         "load-aware", "volumes"),
                    help="default: the random-cluster benchmark; preemption: DefaultPreemption's decision "
                         "(its own options: --case preemption --help); gang: placing a whole PodGroup "
                         "(its own options: --case gang --help); load-aware: the load plugins against the default "
                         "profile (its own options: --case load-aware --help); volumes: the volume plugins against "
                         "the default profile without them (--case volumes --help); otherwise a pod-level constraint shape")
    ap.add_argument("--existing", type=int, default=5000, help="bound pods for --case shapes (default 5000)")
    ap.add_argument("--sizes", default=None, help="node counts (default 1000,5000,15000; 5000 with --case)")
    ap.add_argument("--pods", type=int, default=2000)
    ap.add_argument("--pods-per-node", type=int, default=15,
                    help="bound pods per node on average (default 15: 300,000 at 20,000 nodes)")
    ap.add_argument("--reference-pods", type=int, default=20, help="pods the per-node reference decides (0: none)")
    ap.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)  # a bench_sizes subprocess
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.case != "default":
        main_cases(a)
        return
    for flag, v in (("--pods", a.pods), ("--pods-per-node", a.pods_per_node)):
        if v < (1 if flag == "--pods" else 0):
            ap.error(f"{flag}: expected a {'positive' if flag == '--pods' else 'non-negative'} integer, got {v}")
    if a.one_size is not None:
        print(json.dumps(bench_size(size=a.one_size, pending=a.pods, per_node=a.pods_per_node,
                                    reference_pods=a.reference_pods, seed=a.seed)))
        return
    try:
        sizes = [int(s) for s in (a.sizes or "1000,5000,15000").split(",")]
    except ValueError:
        ap.error(f"--sizes: expected comma-separated node counts, got {quote(a.sizes)}")
    if any(s < 1 for s in sizes):
        ap.error(f"--sizes: node counts must be positive, got {quote(a.sizes)}")
    results = bench_sizes(sizes=sizes, pending=a.pods, per_node=a.pods_per_node,
                          reference_pods=a.reference_pods, seed=a.seed)
    if a.json:
        print(json.dumps({"benchmark": "decision", "profile": "default", "results": results}, indent=2))
        return
    print(f"{'nodes':>7} {'existing':>9} {'us/decision':>12} {'decisions/s':>12} {'x first':>8} {'RSS MiB':>8} "
          f"{'reference us':>13} {'speedup':>8}")
    for r in results:
        print(f"{r['nodes']:>7} {r['existing_pods']:>9} {r['us_per_decision']:>12} {r['decisions_per_s']:>12} "
              f"{r['ratio_to_first']:>8} {r['rss_mib']:>8} "
              f"{_opt(r['reference_us_per_decision']):>13} {_opt(r['speedup_vs_reference'], 'x'):>8}")


if __name__ == "__main__":
    main()
