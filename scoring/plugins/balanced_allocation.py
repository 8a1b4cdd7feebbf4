"""NodeResourcesBalancedAllocation: prefer nodes whose resources would be used
evenly (upstream's noderesources ``BalancedAllocation``).

For each configured resource (default cpu and memory) the fraction
requested/allocatable with the pod placed on the node, capped at 1; the score
is ``(1 - std) * 100`` over those fractions (see resource_scoring). Unlike
NodeResourcesFit's scoring it uses the pods' plain requests, without the
non-zero defaults. A pod that requests none of the resources is skipped
(upstream's PreScore Skip), so best-effort pods do not pile onto one node.
Weights must be 1: upstream validates them but does not use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.framework import CycleState, ScorePlugin, score_source
from scoring.objects import PodInfo
from scoring.plugins.resource_args import ResourceSpec, parse_balanced_allocation_args
from scoring.plugins.resource_scoring import (
    TABLE_OWNED_RESOURCES,
    ShapeCache,
    allocation_matrices,
    balanced_allocation,
    pod_request_list,
)
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "NodeResourcesBalancedAllocation", "new"]

NAME: Final = "NodeResourcesBalancedAllocation"


class NodeResourcesBalancedAllocation:
    name: Final = NAME

    def __init__(self, resources: tuple[ResourceSpec, ...]) -> None:
        self.resources = resources
        self._names = [r.name for r in resources]
        self._shape_cached = set(self._names) <= TABLE_OWNED_RESOURCES

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        requests = pod_request_list(pod, self._names, use_requested=True)
        if not any(requests):
            return None

        def score_rows(rows: npt.NDArray[np.intp] | slice) -> IntArray:
            alloc, req = allocation_matrices(table, rows, self._names, requests, use_requested=True)
            return balanced_allocation(alloc, req)

        if self._shape_cached:
            return ShapeCache.of(table).get((self, *requests), score_rows)[nodes]  # type: ignore[return-value]
        rows, take = score_source(nodes, table.n)
        scores = score_rows(rows)
        return scores if take is None else scores[take]


def new(args: Mapping[str, Any], path: str) -> NodeResourcesBalancedAllocation:
    return NodeResourcesBalancedAllocation(parse_balanced_allocation_args(args, path))


_: type[ScorePlugin] = NodeResourcesBalancedAllocation
