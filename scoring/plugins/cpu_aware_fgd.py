"""CpuAwareFGD: FGD that also counts the GPUs a node's CPU can no longer feed.

FGD (``scoring.plugins.fgd``) scores a placement by how much it grows a node's
fragmentation against the target workload's typical pods. It checks CPU one
typical pod at a time: a node with four idle GPUs and 12 cores left looks
unfragmented to it, because each typical pod alone fits, though together they
need some 44 cores. On Alibaba's GPU trace that is where about a third of
FGD's unallocated GPUs end up at 130% arrived demand: on nodes with less than
2 cores left. CPU-only pods add to it: FGD scores them 50 on most nodes, so the
node-name tie-break decides between an 8-GPU node with 12 cores per GPU and a
2-GPU node with 52.

Cost of placing the pod on a node (lower is better)::

    cost = -FGD + strandingWeight * (stranded' - stranded)      [score points]
    stranded = max(0, idle GPUs - CPU left / milliCpuPerGpu)    [GPUs]

- ``FGD`` is FGD's own integer score (0..100, 50 = no change, 26 = one GPU more
  of expected fragmentation), computed as FGD computes it;
- ``stranded`` estimates the node's idle GPUs that its CPU cannot serve, with
  ``milliCpuPerGpu`` the target workload's milli-CPU per GPU (the typical GPU
  pods' CPU over their GPUs, popularity-weighted: about 10,900 on the trace);
- ``strandingWeight`` defaults to 25 score points per stranded GPU, FGD's own
  slope at 50 (one GPU more of fragmentation costs it about 25 points).

Exact ties are broken towards packing, before the profile's tie-break: a pod
asking for no GPU goes where the fewest milli-GPU stay idle (GPU-poor nodes
keep GPU-rich nodes' CPU for GPU pods), a shared-GPU pod to the GPU it fills
the most (the smallest remainder), and a whole-GPU pod where the fewest
milli-GPU stay idle. The GPU a share takes on each node is the one with the
lowest cost (lowest index among equals), recorded in CycleState for
``GpuShare``'s Reserve like FGD's choice.

Score: 100 for the nodes of the lowest cost, the others
``max(0, 100 - ceil(cost - lowest))`` (at most 99), so that alone in a profile
it selects the lowest cost, and beside other plugins it keeps FGD's scale
(a tie-break alone costs one point). A pod without any request scores 100 everywhere, and every node
scores 50 without typical pods (FGD's conventions).

Args::

    typicalPods: [{milliCPU: 6000, gpuMilli: 460, gpuCount: 1, weight: 120}, ...]   # as FGD's
    strandingWeight: 25      # score points per GPU stranded by CPU, 0..1000
    milliCpuPerGpu: 10900    # optional; default: from typicalPods

Speed: FGD's per-row cache and prefix sums, plus O(nodes) array work: about
the time of FGD (``python -m benchmarks.fgd``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import integer, known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.fgd import FGD, neutral_scores, share_candidates
from scoring.plugins.gpu_frag import TargetWorkload, frag_score, share_fragmentation
from scoring.plugins.gpu_state import CHOICE_KEY, MILLI, GpuChoice, request_of
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "DEFAULT_STRANDING_WEIGHT", "CpuAwareFGD", "cpu_per_gpu", "stranded", "cost_scores", "new"]

NAME: Final = "CpuAwareFGD"
DEFAULT_STRANDING_WEIGHT: Final = 25
"""Score points per stranded GPU: FGD's slope at 50 (100 x sigmoid'(0) = 25 per GPU)."""
_TIE: Final = 1e-6
"""Weight of the packing tie-breaks: milli-GPU x 1e-6 stays below 0.01 for a node of 8
GPUs, far below the smallest step of the other terms (FGD's integer score, or the
stranding term's 25 points per GPU x 1 milli-GPU of CPU resolution = 0.025)."""
FloatArray = npt.NDArray[np.float64]


def cpu_per_gpu(workload: TargetWorkload) -> float:
    """Milli-CPU per GPU of the typical GPU pods: ``sum w_m c_m / sum w_m k_m u_m x 1000``
    (0 when none asks for a GPU)."""
    gpu = np.array([p.gpu_milli * p.gpu_count for p in workload.pods], np.float64)
    per = float((workload.weight * gpu).sum())
    if per == 0:
        return 0.0
    return float((workload.weight * workload.cpu * (gpu > 0)).sum()) * MILLI / per


def stranded(*, idle: IntArray | FloatArray, cpu_left: IntArray, milli_cpu_per_gpu: float) -> FloatArray:
    """Idle milli-GPU the CPU left cannot serve: ``max(0, idle - cpu_left / per_gpu x 1000)``."""
    if milli_cpu_per_gpu <= 0:
        return np.zeros(np.shape(idle), np.float64)
    served = np.maximum(cpu_left, 0).astype(np.float64) * (MILLI / milli_cpu_per_gpu)
    return np.asarray(np.maximum(0.0, np.asarray(idle, np.float64) - served), np.float64)


def cost_scores(cost: FloatArray) -> IntArray:
    """Costs in score points to scores: 100 for the lowest cost, the others
    ``max(0, 100 - ceil(cost - lowest))`` (at most 99: a tie-break alone costs one point)."""
    if len(cost) == 0:
        return np.zeros(0, np.int64)
    excess = cost - cost.min()
    out: IntArray = np.clip(MAX_NODE_SCORE - np.ceil(excess), 0, MAX_NODE_SCORE - 1).astype(np.int64)
    out[excess == 0] = MAX_NODE_SCORE
    return out


class CpuAwareFGD:
    name: Final = NAME

    def __init__(self, *, workload: TargetWorkload, stranding_weight: int = DEFAULT_STRANDING_WEIGHT,
                 milli_cpu_per_gpu: float | None = None) -> None:
        self.workload = workload
        self.stranding_weight = float(stranding_weight)
        self.milli_cpu_per_gpu = cpu_per_gpu(workload) if milli_cpu_per_gpu is None else float(milli_cpu_per_gpu)
        self._fgd = FGD(workload)  # its per-row cache (shared with an FGD of the same typical pods)
        self._scratch = np.empty(0, np.float64)

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        req = request_of(pod, state)
        wl = self.workload
        neutral = neutral_scores(pod, req, wl, len(nodes))
        if neutral is not None:
            return neutral
        v = self._fgd.view(pod, table, nodes)
        ext, before, below, cnt, idle, w = v.ext, v.before, v.below, v.cnt, v.idle, v.weights
        cpu_left, cpu_after = v.cpu_left, v.cpu_after
        per_gpu = self.milli_cpu_per_gpu
        strand_before = stranded(idle=idle, cpu_left=cpu_left, milli_cpu_per_gpu=per_gpu)
        if not req.shared:
            # As FGD (NodeResource.Sub): whole GPUs come from fully free ones; a node with too
            # little CPU or too few GPUs stays as it is for the fragmentation term.
            after, idle_after = self._fgd.sub_after(v, pod, req, nodes)
            strand = stranded(idle=idle_after, cpu_left=cpu_after, milli_cpu_per_gpu=per_gpu) - strand_before
            cost = (-frag_score(before - after, wl.total) + self.stranding_weight * strand / MILLI
                    + _TIE * idle_after)
            return cost_scores(cost)
        # A share: every (node, GPU) candidate as FGD enumerates them, the node's best one kept.
        r = len(nodes)
        cand_r, cand_g, cand_f = share_candidates(ext.free[nodes], req.milli)
        need = (len(wl.group_u) + 1) * 4 * r
        if self._scratch.size < need:
            self._scratch = np.empty(need, np.float64)
        after = share_fragmentation(idle, below, cnt, w, cand_r, cand_f, req.milli, wl, self._scratch)
        strand = stranded(idle=idle[cand_r] - req.milli, cpu_left=cpu_after[cand_r],
                          milli_cpu_per_gpu=per_gpu) - strand_before[cand_r]
        cand_cost = (-frag_score(before[cand_r] - after, wl.total) + self.stranding_weight * strand / MILLI
                     + _TIE * (cand_f - req.milli))
        best = np.full(r, np.inf)
        np.minimum.at(best, cand_r, cand_cost)
        top = cand_cost == best[cand_r]
        gpu = np.full(r, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(gpu, cand_r[top], cand_g[top].astype(np.int64))
        fits = np.isfinite(best)
        gpu[~fits] = -1
        state[CHOICE_KEY] = GpuChoice(np.asarray(nodes, np.intp), gpu)
        # Nodes where no GPU holds the share (GpuShare filters them) get the worst cost.
        worst = float(best[fits].max()) if fits.any() else 0.0
        return cost_scores(np.where(fits, best, worst))


def new(args: Mapping[str, Any], path: str) -> CpuAwareFGD:
    m = mapping(args, path)
    known_fields(m, ("typicalPods", "strandingWeight", "milliCpuPerGpu"), path)
    prefix = f"{path}." if path else ""
    weight = integer(m.get("strandingWeight", DEFAULT_STRANDING_WEIGHT), f"{prefix}strandingWeight", lo=0, hi=1000)
    per_gpu = m.get("milliCpuPerGpu")
    per = None if per_gpu is None else integer(per_gpu, f"{prefix}milliCpuPerGpu", lo=1, hi=1 << 40)
    return CpuAwareFGD(workload=TargetWorkload.from_args(m, path), stranding_weight=weight,
                       milli_cpu_per_gpu=None if per is None else float(per))


_: type[ScorePlugin] = CpuAwareFGD
