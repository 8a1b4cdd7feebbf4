"""FGD: Fragmentation Gradient Descent, the GPU-sharing placement of Weng et al. (ATC '23).

Paper ("Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", section 4.2): place each pod on the node --
and the GPU(s) of that node -- whose expected fragmentation, measured against
the target workload's popularity distribution of typical pods, grows the
least; i.e. move the cluster along the steepest descent of fragmentation.
The fragmentation measure is ``gpu_frag`` (see there, with the points where
the simulator's code differs from the paper).

Public simulator (``pkg/simulator/plugin/fgd_score.go``,
``calculateGpuShareFragExtendScore``), followed here:

- score = ``int64(sigmoid((F_n(M) - F_n'(M)) / 1000) * 100)``, F in milli-GPU,
  n' the node after the placement; no NormalizeScore (an unchanged node 50,
  one GPU more of fragmentation 26);
- a GPU share is tried on every GPU with enough free milli-GPU, the node's
  score is the best of them and the chosen GPU is the first (lowest index)
  reaching it; it is recorded in CycleState for ``GpuShare``'s Reserve, which
  writes it to the pod's ``vecsched.io/gpu-index`` (the simulator's
  ``allocateGpuIdBasedOnFGDScore``);
- whole GPUs go to the lowest-indexed fully free GPUs (``NodeResource.Sub``);
- a pod asking for no GPU takes the same branch: ``Sub`` moves only n's free CPU
  (by the pod's non-zero request, ``GetPodResource``), so it scores 50 where
  every typical pod keeps or lacks its CPU as before and less where it takes
  CPU a typical GPU pod needs; it is not filtered (Open-Gpu-Share's Filter
  passes pods without a GPU request). ``Sub`` leaves a node with less CPU left
  than the pod's non-zero request unchanged (50), and a share is scored
  without that check -- as there;
- a pod without any request scores 100 everywhere (code: "len(podReq) == 0";
  here a GPU annotation also counts as a request).

Integer scores tie often (every node a pod leaves unchanged scores 50). The
framework's default tie-break draws among ties at random; the simulator's
kube-scheduler fork gives them to the smallest node name, which matters a lot
on the Alibaba trace (95% against 90.6% GPU allocation), so the lab's built-in
FGD strategy sets ``vecsched.io/tieBreak: NodeName`` (see
``benchmarks.gpu_strategies``). The plugin itself is the simulator's.

Args::

    typicalPods: [{milliCPU: 6000, gpuMilli: 460, gpuCount: 1, gpuModels: [T4], weight: 120}, ...]

the target workload (weights are popularity counts). The strategy lab fills
it from the loaded trace (``benchmarks.openb.typical_pods``); a live profile
writes it from its own history. Without typical pods every node scores 50.

Speed: each node's current F is cached per GpuTable row and refreshed only
for rows whose version changed. A share's candidates are deduplicated (a
node's fully free GPUs are one candidate), and each candidate's F' comes from
per-node prefix sums over the typical-pod groups (``share_fragmentation``), so
a decision is O(nodes x groups) array work: about 0.3 ms on the trace's
1,213 nodes (``python -m benchmarks.fgd``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.objects import CPU, PodInfo
from scoring.plugins.gpu_frag import (
    TargetWorkload,
    frag_score,
    gpu_profile,
    group_weights,
    share_fragmentation,
    weighted_fragmentation,
)
from scoring.plugins.gpu_state import CHOICE_KEY, MILLI, GpuChoice, GpuRequest, GpuTable, gpu_table, request_of
from scoring.table import IntArray, NodeTable

FloatArray = npt.NDArray[np.float64]

__all__ = ["NAME", "FGD", "FragView", "neutral_scores", "new", "share_candidates"]

NAME: Final = "FGD"
class _Cache:
    """Per GpuTable row: below/cnt profile, idle milli-GPU S and W*F, valid for ``seen`` versions."""

    def __init__(self, u: int) -> None:
        self.seen = np.full(0, -1, np.int64)
        self.below = np.zeros((0, u), np.int64)
        self.cnt = np.zeros((0, u), np.int64)
        self.idle = np.zeros(0, np.int64)
        self.frag = np.zeros(0, np.float64)

    def grow(self, cap: int) -> None:
        if cap <= len(self.seen):
            return
        def grow(a: np.ndarray, fill: float) -> np.ndarray:
            out = np.full((cap, *a.shape[1:]), fill, a.dtype)
            out[: len(a)] = a
            return out
        self.seen = grow(self.seen, -1)
        self.below = grow(self.below, 0)
        self.cnt = grow(self.cnt, 0)
        self.idle = grow(self.idle, 0)
        self.frag = grow(self.frag, 0.0)


class FragView(NamedTuple):
    """Candidate rows as FGD sees them before a placement: their fragmentation W F (``before``),
    ``below``/``cnt`` profiles and idle milli-GPU from the row cache, the CPU left before and
    after the pod's non-zero request, and the typical-pod group weights for the CPU after."""

    ext: GpuTable
    before: FloatArray
    below: IntArray
    cnt: IntArray
    idle: IntArray
    cpu_left: IntArray
    cpu_after: IntArray
    weights: FloatArray


def neutral_scores(pod: PodInfo, req: GpuRequest, workload: TargetWorkload, n: int) -> IntArray | None:
    """FGD's scores where fragmentation says nothing, else None: a pod without any request
    scores 100 everywhere (the simulator's "len(podReq) == 0"; here a GPU annotation also counts
    as a request), and every node scores 50 without typical pods."""
    if (not pod.requests and req.count == 0) or workload.total == 0:
        return np.full(n, MAX_NODE_SCORE if not pod.requests else MAX_NODE_SCORE // 2, np.int64)
    return None


class FGD:
    name: Final = NAME

    def __init__(self, workload: TargetWorkload) -> None:
        self.workload = workload
        self._key = ("fgd", tuple(workload.pods))
        self._scratch = np.empty(0, np.float64)

    def fresh(self, ext: GpuTable, table: NodeTable) -> _Cache:
        """The row cache, with rows whose GpuTable version changed recomputed."""
        wl = self.workload
        cache = ext.caches.get(self._key)
        if not isinstance(cache, _Cache):
            cache = _Cache(len(wl.u_values))
            ext.caches[self._key] = cache
        cache.grow(len(ext.version))
        n = table.n
        stale = np.flatnonzero(cache.seen[:n] != ext.version[:n])
        if len(stale):
            free = ext.free[stale]
            below, cnt = gpu_profile(free, wl.u_values)
            idle = free.sum(axis=1, dtype=np.int64)
            c = table.resource_index[CPU]
            cpu_left = table.allocatable[stale, c] - table.requested[stale, c]
            w = group_weights(cpu_left, ext.model[stale], wl.access(ext.models), wl)
            cache.below[stale], cache.cnt[stale], cache.idle[stale] = below, cnt, idle
            cache.frag[stale] = weighted_fragmentation(idle, below, cnt, w, wl)
            cache.seen[stale] = ext.version[stale]
        return cache

    def view(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp]) -> FragView:
        """The candidate rows as FGD sees them before ``pod`` is placed (see ``FragView``)."""
        wl = self.workload
        ext = gpu_table(table)
        cache = self.fresh(ext, table)
        c = table.resource_index[CPU]
        cpu_left = table.allocatable[nodes, c] - table.requested[nodes, c]
        cpu_after = cpu_left - pod.nonzero_cpu
        return FragView(ext=ext, before=cache.frag[nodes], below=cache.below[nodes], cnt=cache.cnt[nodes],
                        idle=cache.idle[nodes], cpu_left=cpu_left, cpu_after=cpu_after,
                        weights=group_weights(cpu_after, ext.model[nodes], wl.access(ext.models), wl))

    def sub_after(self, v: FragView, pod: PodInfo, req: GpuRequest,
                  nodes: npt.NDArray[np.intp]) -> tuple[FloatArray, IntArray]:
        """(W F', idle milli-GPU) of each row after a pod that is not a share, as NodeResource.Sub
        leaves it: a node with less CPU left than the pod's non-zero request, or fewer GPUs than
        it asks for, stays as it is (F' = F). Otherwise the CPU is taken and, for whole GPUs,
        fully free GPUs become empty (all it has when too few: Sub keeps what it subtracted). A
        full GPU is >= every u and adds nothing to any ``below``, an empty one adds 0 too. No
        GPU: only the CPU moves."""
        full = (v.ext.free[nodes] >= MILLI).sum(axis=1) if req.count else np.zeros(len(nodes), np.int64)
        take = np.minimum(full, req.count)
        idle_after = v.idle - take * req.milli
        after = weighted_fragmentation(idle_after, v.below, v.cnt - take[:, None], v.weights, self.workload)
        unchanged = (v.cpu_left < pod.nonzero_cpu) | (v.ext.count[nodes] < req.count)
        return np.where(unchanged, v.before, after), idle_after

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        req = request_of(pod, state)
        wl = self.workload
        neutral = neutral_scores(pod, req, wl, len(nodes))
        if neutral is not None:
            return neutral
        v = self.view(pod, table, nodes)
        ext, before, below, cnt, idle, w = v.ext, v.before, v.below, v.cnt, v.idle, v.weights
        if not req.shared:
            after, _ = self.sub_after(v, pod, req, nodes)
            return frag_score(before - after, wl.total)
        r = len(nodes)
        cand_r, cand_g, cand_f = share_candidates(ext.free[nodes], req.milli)
        need = (len(wl.group_u) + 1) * 4 * r
        if self._scratch.size < need:
            self._scratch = np.empty(need, np.float64)
        after = share_fragmentation(idle, below, cnt, w, cand_r, cand_f, req.milli, wl, self._scratch)
        cand_score = frag_score(before[cand_r] - after, wl.total)
        best = np.full(r, -1, np.int64)
        np.maximum.at(best, cand_r, cand_score)
        # The simulator keeps the first GPU (lowest index) reaching the best score.
        top = cand_score == best[cand_r]
        gpu = np.full(r, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(gpu, cand_r[top], cand_g[top].astype(np.int64))
        gpu[best < 0] = -1
        state[CHOICE_KEY] = GpuChoice(np.asarray(nodes, np.intp), gpu)
        return np.maximum(best, 0)


def share_candidates(free: npt.NDArray[np.int32], milli: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp],
                                                                         IntArray]:
    """The (row, GPU, free milli) candidates for a share of ``milli`` on rows of per-GPU free
    milli ``free`` (R x G). Equal free milli give equal results, so a row's fully free GPUs are
    one candidate (the lowest index), its partly used GPUs that fit one each."""
    full = free == MILLI
    has_full = np.flatnonzero(full.any(axis=1))
    part_r, part_g = np.nonzero((free >= milli) & ~full)
    cand_r = np.concatenate([has_full, part_r])
    cand_g = np.concatenate([full[has_full].argmax(axis=1), part_g])
    return cand_r, cand_g, free[cand_r, cand_g].astype(np.int64)


def new(args: Mapping[str, Any], path: str) -> FGD:
    m = mapping(args, path)
    known_fields(m, ("typicalPods",), path)
    return FGD(TargetWorkload.from_args(m, path))


_: type[ScorePlugin] = FGD
