"""GpuClustering: keep pods of the same GPU demand together (a baseline of Weng et
al., ATC '23, section 6.1).

Paper: "GPU Clustering" packs tasks with the same GPU request onto the same
nodes and avoids mixing heterogeneous GPU tasks on one node. Public simulator
(``pkg/simulator/plugin/gpu_clustering_score.go``), followed here: a pod's
tag is ``share-gpu`` (a share of one GPU) or ``k-gpu`` (k whole GPUs), a
node's tags are those of its pods, L is the node's free milli-GPU and
``b = 25 * (8000 - L) / 8000`` (Go integer division, 8000 = the simulator's
MaxSpecGpu), so fuller nodes score higher within a band:

- the node holds only pods of the pod's tag:          ``75 + b``  (75..100)
- the node holds the pod's tag among others:         ``50 + b``  (50..75)
- the node holds no GPU pod:                         ``25 + b``  (25..50)
- the node holds only other tags:                    ``b``       (0..25)
- a pod asking for no GPU scores 0 on every node.

A node with more than 8 GPUs mostly free would get a negative b (an error in
kube-scheduler's framework); it is clamped to 0 here.

No NormalizeScore; GPUs are chosen by GpuShare's default BestFit selection,
as in the simulator's runs (``gpuSelMethod: best``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.framework import CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.gpu_state import gpu_table, request_of
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "MAX_SPEC_GPU", "GpuClustering", "clustering_scores", "new"]

NAME: Final = "GpuClustering"
MAX_SPEC_GPU: Final = 8000
"""The simulator's MaxSpecGpu: milli-GPU of its largest (8-GPU) node."""


def _go_div(a: IntArray, b: int) -> IntArray:
    """Go's integer division (truncates toward zero) for a positive divisor."""
    return np.where(a >= 0, a // b, -((-a) // b))


def clustering_scores(free_total: IntArray, tags: npt.NDArray[np.int32], tag: int) -> IntArray:
    """Scores 0..100 from each node's free milli-GPU and its pods per tag (nodes x tags)."""
    base = _go_div(25 * (MAX_SPEC_GPU - free_total.astype(np.int64)), MAX_SPEC_GPU)
    present = tags > 0
    kinds = present.sum(axis=1)
    has = present[:, tag] if tag < tags.shape[1] else np.zeros(len(tags), np.bool_)
    band = np.where(has, np.where(kinds == 1, 75, 50), np.where(kinds == 0, 25, 0))
    return np.clip(base + band, 0, 100).astype(np.int64)


class GpuClustering:
    name: Final = NAME

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        req = request_of(pod, state)
        if req.count == 0:
            return np.zeros(len(nodes), np.int64)
        ext = gpu_table(table)
        return clustering_scores(ext.free[nodes].sum(axis=1), ext.tags[nodes], req.tag)


def new(args: Mapping[str, Any], path: str) -> GpuClustering:
    known_fields(mapping(args, path), (), path)
    return GpuClustering()


_: type[ScorePlugin] = GpuClustering
