"""GpuDotProduct: the DotProduct baseline of Weng et al. (ATC '23) over CPU and GPU.

Paper (section 6.1): the dot-product heuristic of Tetris (Grandl et al.,
SIGCOMM '14) over the node's unallocated resources and the task's request.
Public simulator (``pkg/simulator/plugin/dot_product_score.go`` with the
artifact's ``dimExtMethod: merge``, ``normMethod: max``), followed here. Note
that the simulator *prefers the smallest* dot product (its score is
``1 - dot``), unlike Tetris's alignment score and the strategy lab's generic
``DotProduct``, which prefer the largest::

    node = (cpu_free / 128000, gpu_free / 8000)      # all GPUs merged in one dimension
    pod  = (cpu_req  / 128000, gpu_req  / 8000)
    score = int64(100 * (1 - (node . pod) / 2))       # float64, truncated; 0 when cpu_free < cpu_req

cpu_free: allocatable minus fit requests; cpu_req: the pod's non-zero
request; gpu_*: milli-GPU (free on the node; milli x count for the pod).
No NormalizeScore. GPUs are chosen by GpuShare's BestFit selection, as in the
artifact (``gpuSelMethod: best``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.objects import CPU, PodInfo
from scoring.plugins.gpu_best_fit import MAX_SPEC_CPU, MAX_SPEC_GPU
from scoring.plugins.gpu_state import gpu_table, request_of
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "GpuDotProduct", "dot_product_scores", "new"]

NAME: Final = "GpuDotProduct"


def dot_product_scores(cpu_free: IntArray, gpu_free: IntArray, cpu_req: int, gpu_req: int) -> IntArray:
    """``int64(100 * (1 - dot / 2))`` per node (see the module docstring)."""
    dot = (cpu_free / MAX_SPEC_CPU) * (cpu_req / MAX_SPEC_CPU)
    dot = dot + (gpu_free / MAX_SPEC_GPU) * (gpu_req / MAX_SPEC_GPU)
    score = np.trunc(float(MAX_NODE_SCORE) * (1.0 - dot / 2.0)).astype(np.int64)
    return np.where(cpu_free < cpu_req, 0, score)


class GpuDotProduct:
    name: Final = NAME

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        req = request_of(pod, state)
        ext = gpu_table(table)
        c = table.resource_index[CPU]
        cpu_free = table.allocatable[nodes, c] - table.requested[nodes, c]
        return dot_product_scores(cpu_free, ext.free[nodes].sum(axis=1, dtype=np.int64), pod.nonzero_cpu, req.total)


def new(args: Mapping[str, Any], path: str) -> GpuDotProduct:
    known_fields(mapping(args, path), (), path)
    return GpuDotProduct()


_: type[ScorePlugin] = GpuDotProduct
