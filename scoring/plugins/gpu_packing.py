"""GpuPacking: fill partly used GPUs first, then used nodes, then idle nodes (a
baseline of Weng et al., ATC '23, section 6.1).

Paper: "GPU Packing" prefers, in order, (1) a GPU already shared by other
pods, (2) free GPUs on a node that is already in use, (3) an idle node.
Public simulator (``pkg/simulator/plugin/gpu_packing_score.go``,
``getPackingScore``), followed here, for a pod asking for k GPUs of u milli:

- case 3, every GPU of the node is fully free (F of them):
  ``max(100/3 - F, F)`` = ``max(33 - F, F)``;
- otherwise take GPUs in ascending order of free milli that fit u (best fit);
  case 2, some taken GPU is fully free (t of them): ``max(50 - t, 33)``;
- case 1, only shared GPUs are taken: ``max(100 - sum(free * 100 / 1000) / 10, 50)``
  over the taken GPUs (Go integer division);
- a pod asking for no GPU scores 0 on every node.

No NormalizeScore; ties are drawn at random by the framework. The GPUs are
chosen by GpuShare's default BestFit selection (the simulator runs GpuPacking
with ``gpuSelMethod: best``), which takes the same GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.framework import CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.gpu_state import MILLI, GpuRequest, gpu_table, request_of
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "GpuPacking", "packing_scores", "new"]

NAME: Final = "GpuPacking"


def packing_scores(free: npt.NDArray[np.int32], count: npt.NDArray[np.int32], req: GpuRequest) -> IntArray:
    """Scores 0..100 per node from per-GPU free milli ``free`` (nodes x G, 0 beyond a
    node's ``count`` GPUs); see the module docstring for the three cases."""
    if req.count == 0:
        return np.zeros(len(free), np.int64)
    fully = (free == MILLI).sum(axis=1).astype(np.int64)
    case3 = np.maximum(33 - fully, fully)
    if req.shared:
        tightest = np.where(free >= req.milli, free, MILLI + 1).min(axis=1).astype(np.int64)
        case1 = np.maximum(100 - (tightest * 100 // MILLI) // 10, 50)
        used = np.where(tightest == MILLI, max(50 - 1, 33), case1)
    else:
        used = np.full(len(free), max(50 - req.count, 33), np.int64)
    return np.where(fully == count, case3, used).astype(np.int64)


class GpuPacking:
    name: Final = NAME

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        req = request_of(pod, state)
        if req.count == 0:
            return np.zeros(len(nodes), np.int64)
        ext = gpu_table(table)
        return packing_scores(ext.free[nodes], ext.count[nodes], req)


def new(args: Mapping[str, Any], path: str) -> GpuPacking:
    known_fields(mapping(args, path), (), path)
    return GpuPacking()


_: type[ScorePlugin] = GpuPacking
