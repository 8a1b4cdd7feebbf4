"""The GPU-sharing policies of Weng et al. (ATC '23) as strategy-lab built-ins.

"Beware of Fragmentation" compares FGD with five baselines on Alibaba's GPU
trace; the lab offers each under the paper's name, defined as the public
simulator's experiment scripts run them (``experiments/run_scripts/
generate_run_scripts.py``, ``scripts/generate_config_and_run.py``): kube-
scheduler's default filters plus GpuShare (the simulator's Open-Gpu-Share),
all default score plugins off, one policy plugin, and GpuShare's GPU
selection as the artifact configures it. Ties between equal totals go to the
smallest node name (the profile's ``vecsched.io/tieBreak: NodeName``), except
for Random:

=============  ==============  ==========  ========================================
strategy       score plugin    tie-break   GPU choice for a share (gpuSelMethod)
=============  ==============  ==========  ========================================
FGD            FGD             NodeName    FGD's least-fragmenting GPU
BestFit        GpuBestFit      NodeName    BestFit (tightest GPU that fits)
DotProduct     GpuDotProduct   NodeName    BestFit (``merge``/``max``, ``best``)
GpuPacking     GpuPacking      NodeName    BestFit
GpuClustering  GpuClustering   NodeName    BestFit
Random         Random          Random      Random
=============  ==============  ==========  ========================================

Why NodeName: the simulator builds on a fork of kube-scheduler 1.20
(``k8s.io/kubernetes => github.com/mental2008/kubernetes v1.20.5-minor`` in
its go.mod, vendored in its ``vendor/`` tree), whose ``selectHost``
(``vendor/k8s.io/kubernetes/pkg/scheduler/core/generic_scheduler.go``) keeps,
among the nodes of the highest total, the one with the smallest name ("for
reproducibility, choose the smallest lexicographical order"; upstream's
reservoir sampling is commented out). The names it compares are not the
trace's: before a run the simulator prefixes each node's name with a random
``NNNN-`` drawn from the run's seed (``syncClusterResourceList``), so "the
smallest name" is a random node order fixed for the run; the lab names
``openb:`` nodes the same way (``benchmarks.openb.simulator_node_names``).
It matters: FGD and the packing scores give many nodes the same score (50
for a pod that changes no node's fragmentation), and the tie-break decides
where such pods go. At 130% arrived demand on the default trace (10 seeds)
FGD reaches 95.40% GPU allocation and GpuPacking 92.04%, against the authors'
published 95.39% and 92.00% (means over their 10 seeds in
``experiments/analysis/expected_results/analysis_allo_discrete.csv``); with
the trace's own names 95.2% and 91.3%, and with kube-scheduler's random
choice among ties, which spreads such pods over every node, 90.6% and 89.7%
(seeds 0 and 1). On the CPU-heavy ``cpu250`` list the node order decides
even more: FGD 92.9% with the simulator's names (published 93.4%), 91.4%
with the trace's.
Random keeps the random tie-break: the simulator's Random gives one random
feasible node 100 and the rest 0, so its choice is uniform and never ties;
vecsched's Random draws a score per node and leaves equal draws to the
tie-break, which must then be random too for the choice to stay uniform.

vecsched adds ``CpuAwareFGD`` (``scoring.plugins.cpu_aware_fgd``: FGD's score
plus the GPUs a node's CPU can no longer feed, ties broken towards packing),
defined like FGD (GpuShare with BestFit selection, the NodeName tie-break, the
workload's typical pods); it is not one of the paper's six
(``GPU_STRATEGY_NAMES``) but is offered beside them (``VECSCHED_GPU_STRATEGY_NAMES``).

FGD's ``typicalPods`` come from the workload (``benchmarks.openb.typical_pods``:
the simulator's 95%-popularity typical pods). ``gpu_strategies_for(pods)``
returns these bodies when the workload has GPU pods, and ``resolve_strategies``
(benchmarks.strategies) lets them replace the lab's generic built-ins of the
same names (whose BestFit/DotProduct work on cpu and memory and know nothing
of GPU shares). ``GPU_ONLY_STRATEGIES`` are the static fallbacks of the names
the generic table lacks (FGD there has no target workload: every node 50).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from benchmarks.openb import typical_pods
from scheduler.config import TIE_BREAK_FIELD
from scoring.framework import NODE_NAME, RANDOM
from scoring.objects import PodInfo
from scoring.objects import CPU
from scoring.plugins.gpu_frag import TargetWorkload, node_fragmentation, parse_typical_pods
from scoring.plugins.gpu_state import gpu_table, request_of
from scoring.table import NodeTable

__all__ = ["GPU_STRATEGY_NAMES", "VECSCHED_GPU_STRATEGY_NAMES", "GPU_ONLY_STRATEGIES", "gpu_body", "gpu_strategies_for"]

GPU_STRATEGY_NAMES: Final = ("FGD", "BestFit", "DotProduct", "GpuPacking", "GpuClustering", "Random")
_PLUGIN: Final = {"FGD": "FGD", "BestFit": "GpuBestFit", "DotProduct": "GpuDotProduct",
                  "GpuPacking": "GpuPacking", "GpuClustering": "GpuClustering", "Random": "Random",
                  "CpuAwareFGD": "CpuAwareFGD"}
VECSCHED_GPU_STRATEGY_NAMES: Final = ("CpuAwareFGD",)
"""vecsched's own GPU strategies, offered beside the paper's six."""
_TARGETED: Final = ("FGD", "CpuAwareFGD")
"""The strategies whose plugin takes the workload's typical pods."""


def gpu_body(strategy: str, *, typical: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The ``profiles[]`` entry (without schedulerName) of one GPU strategy."""
    random = strategy == "Random"
    body: dict[str, Any] = {
        TIE_BREAK_FIELD: RANDOM if random else NODE_NAME,
        "plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]},
                    "score": {"disabled": [{"name": "*"}], "enabled": [{"name": _PLUGIN[strategy], "weight": 1}]}},
        "pluginConfig": [{"name": "GpuShare", "args": {"gpuSelection": "Random" if random else "BestFit"}}],
    }
    if strategy in _TARGETED and typical is not None:
        body["pluginConfig"].append({"name": _PLUGIN[strategy], "args": {"typicalPods": [dict(t) for t in typical]}})
    return body


GPU_ONLY_STRATEGIES: Final[dict[str, dict[str, Any]]] = {
    name: gpu_body(name) for name in ("FGD", "GpuPacking", "GpuClustering", *VECSCHED_GPU_STRATEGY_NAMES)}


def gpu_strategies_for(pods: Sequence[PodInfo]) -> dict[str, dict[str, Any]]:
    """The GPU strategies' bodies (the paper's six and vecsched's) for a workload with GPU
    pods; {} for one without."""
    if not any(request_of(p).count for p in pods):
        return {}
    typical = typical_pods(pods)
    return {name: gpu_body(name, typical=typical) for name in (*GPU_STRATEGY_NAMES, *VECSCHED_GPU_STRATEGY_NAMES)}


def cluster_fragmentation(table: NodeTable, wl: TargetWorkload) -> tuple[float, int]:
    """(sum over nodes of F_n(M), idle milli-GPU) of the table's current state: the paper's
    cluster fragmentation against the target workload M."""
    ext = gpu_table(table)
    n, c = table.n, table.resource_index[CPU]
    cpu_left = table.allocatable[:n, c] - table.requested[:n, c]
    frag = node_fragmentation(ext.free[:n], cpu_left, ext.model[:n], ext.models, wl)
    return float(frag.sum()), int(ext.free[:n].sum())


def fragmentation_measure(pods: Sequence[PodInfo]) -> Callable[[NodeTable], float] | None:
    """The lab's fragmentation measure for a workload: milli-GPU fragmented against its
    typical pods (as FGD sees them); None when no pod asks for a GPU."""
    if not any(request_of(p).count for p in pods):
        return None
    wl = TargetWorkload(parse_typical_pods(typical_pods(pods), "typicalPods"))
    return lambda table: cluster_fragmentation(table, wl)[0]
