"""DotProduct: Tetris's alignment of the pod's demand with the node's free resources
(vecsched's own).

``A = sum_r w_r * (req_r / cap_r) * (free_r / cap_r)`` per feasible node, both
vectors normalised per resource by the node's capacity, and
``score = floor(100 * A / A_max)``: the best-aligned node scores 100 (see
``packing.dot_product_scores`` for the source). Args: ``resources`` with
weights (default cpu:1, memory:1); list a GPU resource to use it as the
GPU-sharing baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.framework import CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.packing import ResourceWeight, dot_product_scores, parse_resources, resource_matrices
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "DotProduct", "new"]

NAME: Final = "DotProduct"


class DotProduct:
    name: Final = NAME

    def __init__(self, *, resources: tuple[ResourceWeight, ...]) -> None:
        self.resources = resources

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        free, cap, request, weights = resource_matrices(pod, table, nodes, self.resources)
        return dot_product_scores(free, cap, request, weights)


def new(args: Mapping[str, Any], path: str) -> DotProduct:
    return DotProduct(resources=parse_resources(args, path))


_: type[ScorePlugin] = DotProduct
