"""WorstFit: place the pod where it leaves the most weighted leftover (vecsched's own).

The spreading counterpart of BestFit, a baseline for the strategy lab:
``score = floor(100 * (L - L_min) / (L_max - L_min))`` over the feasible
nodes, where ``L = sum_r w_r * (free_r - req_r) / maxcap_r / sum_r w_r`` and
``maxcap_r`` is the largest capacity of resource r in the cluster (see
``packing.worst_fit_scores`` for the source). Args: ``resources`` with weights
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
    largest_capacity,
    parse_resources,
    resource_matrices,
    worst_fit_scores,
)
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "WorstFit", "new"]

NAME: Final = "WorstFit"


class WorstFit:
    name: Final = NAME

    def __init__(self, *, resources: tuple[ResourceWeight, ...]) -> None:
        self.resources = resources

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        free, _, request, weights = resource_matrices(pod, table, nodes, self.resources)
        scale = largest_capacity(table, self.resources)
        return worst_fit_scores(free, request, scale, weights)


def new(args: Mapping[str, Any], path: str) -> WorstFit:
    return WorstFit(resources=parse_resources(args, path))


_: type[ScorePlugin] = WorstFit
