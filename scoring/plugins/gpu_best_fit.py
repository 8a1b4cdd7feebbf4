"""GpuBestFit: the BestFit baseline of Weng et al. (ATC '23) over CPU and GPU.

Paper (section 6.1): Best-fit allocates the node with the least remaining
resources after placement, measured as a weighted sum of the leftover
resources of all dimensions. Public simulator
(``pkg/simulator/plugin/best_fit_score.go``, ``getBestFitScore``), followed
here (the strategy lab's generic ``BestFit`` normalises by the cluster's
largest node and does not round, which ties and orders nodes differently)::

    L   = 0.5 * (cpu_free - cpu_req) / 128000 + 0.5 * (gpu_free - gpu_req) / 8000
    raw = int64((1 - L) * 100)                       # float64, truncated
    score = (raw - min) * 100 / (max - min)          # NormalizeScore over feasible nodes

cpu_free is allocatable minus the node's fit requests, cpu_req the pod's
non-zero request, gpu_free the node's free milli-GPU and gpu_req the pod's
milli-GPU x count; 128000 and 8000 are the simulator's MaxSpecCpu and
MaxSpecGpu. All raw scores equal: all 0. Where the pod does not fit the
leftover (the simulator returns an error) the raw score is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.objects import CPU, PodInfo
from scoring.plugins.gpu_state import gpu_table, request_of
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "MAX_SPEC_CPU", "MAX_SPEC_GPU", "GpuBestFit", "best_fit_raw", "min_max_normalize", "new"]

NAME: Final = "GpuBestFit"
MAX_SPEC_CPU: Final = 128000.0
MAX_SPEC_GPU: Final = 8000.0


def best_fit_raw(cpu_free: IntArray, gpu_free: IntArray, cpu_req: int, gpu_req: int) -> IntArray:
    """``int64((1 - L) * 100)`` per node, L the weighted leftover above (float64, Go's order)."""
    left = (cpu_free - cpu_req) / MAX_SPEC_CPU * 0.5
    left = left + (gpu_free - gpu_req) / MAX_SPEC_GPU * 0.5
    raw = np.trunc((1.0 - left) * MAX_NODE_SCORE).astype(np.int64)
    return np.where((cpu_free < cpu_req) | (gpu_free < gpu_req), 0, raw)


def min_max_normalize(scores: IntArray) -> IntArray:
    """The simulator's NormalizeScore: ``(s - lo) * 100 / (hi - lo)``; all equal: all 0."""
    if len(scores) == 0:
        return scores
    lo, hi = int(scores.min()), int(scores.max())
    if hi == lo:
        return np.zeros_like(scores)
    return (scores - lo) * MAX_NODE_SCORE // (hi - lo)


class GpuBestFit:
    name: Final = NAME

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        req = request_of(pod, state)
        ext = gpu_table(table)
        c = table.resource_index[CPU]
        cpu_free = table.allocatable[nodes, c] - table.requested[nodes, c]
        gpu_free = ext.free[nodes].sum(axis=1, dtype=np.int64)
        return best_fit_raw(cpu_free, gpu_free, pod.nonzero_cpu, req.total)

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray:
        return min_max_normalize(scores)


def new(args: Mapping[str, Any], path: str) -> GpuBestFit:
    known_fields(mapping(args, path), (), path)
    return GpuBestFit()


_: type[ScorePlugin] = GpuBestFit
