"""BestFit: place the pod where it leaves the least weighted leftover (vecsched's own).

A bin-packing baseline for the strategy lab and for GPU-sharing studies:
``score = floor(100 * (L_max - L) / (L_max - L_min))`` over the feasible
nodes, where ``L = sum_r w_r * (free_r - req_r) / maxcap_r / sum_r w_r`` and
``maxcap_r`` is the largest capacity of resource r in the cluster (see
``packing.best_fit_scores`` for the source). Args: ``resources`` with weights
(default cpu:1, memory:1), e.g. ``[{name: nvidia.com/gpu, weight: 2}, {name: cpu}]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.framework import CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.packing import (
    ResourceWeight,
    best_fit_scores,
    largest_capacity,
    parse_resources,
    resource_matrices,
)
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "BestFit", "new"]

NAME: Final = "BestFit"


class BestFit:
    name: Final = NAME

    def __init__(self, *, resources: tuple[ResourceWeight, ...]) -> None:
        self.resources = resources

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        free, _, request, weights = resource_matrices(pod, table, nodes, self.resources)
        scale = largest_capacity(table, self.resources)
        return best_fit_scores(free, request, scale, weights)


def new(args: Mapping[str, Any], path: str) -> BestFit:
    return BestFit(resources=parse_resources(args, path))


_: type[ScorePlugin] = BestFit
