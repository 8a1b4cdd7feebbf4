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

from scoring.batching import ROWS, SKIP, Signed
from scoring.framework import CycleState, ScorePlugin, score_source
from scoring.objects import PodInfo
from scoring.plugins.resource_args import ResourceSpec, parse_balanced_allocation_args
from scoring.plugins.resource_scoring import (
    TABLE_OWNED_RESOURCES,
    ShapeCache,
    allocation_matrices,
    allocation_row,
    balanced_allocation,
    balanced_allocation_row,
    pod_request_list,
)
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "NodeResourcesBalancedAllocation", "new"]

NAME: Final = "NodeResourcesBalancedAllocation"
_FEW_ROWS: Final = 4
"""Rows up to which ``score_rows`` uses Python floats rather than numpy (whose cost per call
outweighs the arithmetic of up to four rows)."""


class NodeResourcesBalancedAllocation:
    name: Final = NAME

    def __init__(self, resources: tuple[ResourceSpec, ...]) -> None:
        self.resources = resources
        self._names = [r.name for r in resources]
        self._shape_cached = set(self._names) <= TABLE_OWNED_RESOURCES

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a node's score depends on its own row and the pod's requests (a pod
        requesting none of the resources skips)."""
        requests = pod_request_list(pod, self._names, use_requested=True)
        if not any(requests):
            return Signed(SKIP)
        if not self._shape_cached:
            return "scores resources that plugins account for outside the table"
        return Signed(ROWS, tuple(requests))

    def score_rows(self, pod: PodInfo, table: NodeTable, rows: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        """Batching: ``score`` of ``rows``, computed for them alone (not through ShapeCache,
        which ``score`` keeps for every row)."""
        requests = pod_request_list(pod, self._names, use_requested=True)
        if not any(requests):
            return None
        if len(rows) <= _FEW_ROWS:  # up to four rows: in Python floats, as balanced_allocation_row says
            return np.array([balanced_allocation_row(*allocation_row(table, row, self._names, requests,
                                                                     use_requested=True))
                             for row in rows.tolist()], np.int64)
        alloc, req = allocation_matrices(table, rows, self._names, requests, use_requested=True)
        return balanced_allocation(alloc, req)

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
