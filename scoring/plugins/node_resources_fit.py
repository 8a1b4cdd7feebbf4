"""NodeResourcesFit: a node takes a pod only if it has room for its requests,
and nodes are scored by how allocated they would be (upstream's
noderesources ``Fit``).

Filter is upstream's ``fitsRequest``: ``Too many pods`` when the node already
holds its allowed pod count; then, for cpu, memory, ephemeral-storage and each
scalar resource (extended, hugepages, ...) the pod requests, ``Insufficient
<resource>`` when the request exceeds allocatable minus what the node's pods
request. A node lacking a resource has 0 of it. ``ignoredResources`` and
``ignoredResourceGroups`` (the part before ``/``) skip extended resources only.
A node is rejected as *unresolvable* (preemption cannot help) when any request
exceeds its whole allocatable; upstream then marks all of the node's reasons so.

Score is the configured ``scoringStrategy`` (see resource_scoring): LeastAllocated
(the default, over cpu and memory), MostAllocated or RequestedToCapacityRatio,
computed with the pod's non-zero cpu/memory requests as upstream does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.batching import ROWS, Signed
from scoring.framework import CycleState, DryRunFilter, FilterPlugin, Reason, Remaining, ScorePlugin, score_source
from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, PodInfo
from scoring.plugins.resource_args import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    FitArgs,
    ScoringStrategy,
    parse_fit_args,
)
from scoring.plugins.resource_names import is_extended, is_scalar
from scoring.plugins.resource_scoring import (
    TABLE_OWNED_RESOURCES,
    ShapeCache,
    allocation_matrices,
    allocation_row,
    least_allocated_row,
    most_allocated_row,
    wrap_int64,
    broken_linear_table,
    least_allocated,
    most_allocated,
    pod_request_list,
    requested_to_capacity_ratio,
)
from scoring.table import BoolArray, IntArray, NodeTable

__all__ = ["NAME", "TOO_MANY_PODS", "NodeResourcesFit", "insufficient", "fit_masks", "fit_reasons", "new"]

NAME: Final = "NodeResourcesFit"
TOO_MANY_PODS: Final = "Too many pods"
_FEW_ROWS: Final = 4
"""Rows up to which the batching row functions use Python integers rather than numpy (whose
cost per call outweighs the arithmetic of up to four rows)."""

Scorer = Callable[[IntArray, IntArray], IntArray]


def insufficient(request: int, allocatable: IntArray, requested: IntArray) -> tuple[BoolArray, BoolArray]:
    """(short, unresolvable) per node for one resource the pod requests (> 0):
    short = request > allocatable - requested; unresolvable = request > allocatable."""
    return request > allocatable - requested, request > allocatable


def fit_masks(table: NodeTable, rows: npt.NDArray[np.intp] | slice, resources: Sequence[str],
              requests: Sequence[int], requested: IntArray | None = None) -> BoolArray:
    """fitsRequest for ``rows`` (indices, or a slice of ``[:n]``) as a column-major
    ``len(rows) x (len(resources) + 2)`` matrix: too many pods (the node already holds
    its allowed count), short of each resource (request > allocatable - requested),
    and unresolvable (some request > the whole allocatable, where also short).
    ``requested``, when given, stands for ``table.requested[rows]``."""
    alloc = table.allocatable[rows]  # a view for a slice, else one gather
    used = table.requested[rows] if requested is None else requested
    pods = table.resource_index[PODS]
    out = np.empty((len(alloc), len(resources) + 2), np.bool_, order="F")
    np.greater_equal(used[:, pods], alloc[:, pods], out=out[:, 0])  # used + 1 > allocatable
    unresolvable = out[:, -1]
    unresolvable[:] = False
    for j, (resource, request) in enumerate(zip(resources, requests), start=1):
        col = table.resource_index.get(resource)
        if col is None:  # no node has the resource: short everywhere, and beyond too
            out[:, j] = True
            unresolvable[:] = True
            continue
        short, beyond = insufficient(request, alloc[:, col], used[:, col])
        out[:, j] = short
        beyond &= short
        unresolvable |= beyond
    return out


def fit_row(table: NodeTable, row: int, resources: Sequence[str], requests: Sequence[int]) -> list[bool]:
    """``fit_masks`` of one row, as a list: too many pods, short of each resource, unresolvable."""
    alloc, used = table.allocatable[row].tolist(), table.requested[row].tolist()
    pods = table.resource_index[PODS]
    out = [used[pods] >= alloc[pods]]
    unresolvable = False
    for resource, request in zip(resources, requests):
        col = table.resource_index.get(resource)
        if col is None:
            out.append(True)
            unresolvable = True
            continue
        short = request > wrap_int64(alloc[col] - used[col])  # int64 arithmetic, as fit_masks
        out.append(short)
        unresolvable = unresolvable or (short and request > alloc[col])
    out.append(unresolvable)
    return out


def fit_reasons(resources: Sequence[str], masks: BoolArray) -> list[Reason]:
    """The filter's reasons from ``fit_masks`` over all nodes: one per message, split
    into a resolvable and an unresolvable part when some node is unresolvable (upstream
    marks all of such a node's reasons so). The masks are copies."""
    unresolvable = masks[:, -1]
    split = bool(unresolvable.any())
    reasons = []
    for message, mask in zip((TOO_MANY_PODS, *(f"Insufficient {r}" for r in resources)), masks.T[:-1]):
        if not split:  # the common case: one reason per message
            if mask.any():
                reasons.append(Reason(message, mask.copy()))
            continue
        for unres in (False, True):
            part = mask & (unresolvable if unres else ~unresolvable)
            if part.any():
                reasons.append(Reason(message, part, unresolvable=unres))
    return reasons


def _scorer(strategy: ScoringStrategy) -> Scorer:
    weights = np.array([r.weight for r in strategy.resources], np.int64)
    if strategy.type == LEAST_ALLOCATED:
        return lambda alloc, req: least_allocated(alloc, req, weights)
    if strategy.type == MOST_ALLOCATED:
        return lambda alloc, req: most_allocated(alloc, req, weights)
    lookup = broken_linear_table(strategy.shape)
    return lambda alloc, req: requested_to_capacity_ratio(alloc, req, weights, lookup)


def _row_scorer(strategy: ScoringStrategy) -> Callable[[list[int], list[int]], int] | None:
    """The strategy for one row (``allocation_row``'s lists), or None: RequestedToCapacityRatio
    goes through its tables with numpy."""
    weights = [r.weight for r in strategy.resources]
    if strategy.type == LEAST_ALLOCATED:
        return lambda alloc, req: least_allocated_row(alloc, req, weights)
    if strategy.type == MOST_ALLOCATED:
        return lambda alloc, req: most_allocated_row(alloc, req, weights)
    return None


_CHECKED_KEPT: Final = 4096
"""Requests maps ``NodeResourcesFit`` keeps its checked resources for before it starts afresh."""


class NodeResourcesFit:
    name: Final = NAME

    def __init__(self, args: FitArgs) -> None:
        self.args = args
        self._resources = [r.name for r in args.strategy.resources]
        self._scorer = _scorer(args.strategy)
        self._row_scorer = _row_scorer(args.strategy)
        self._shape_cached = set(self._resources) <= TABLE_OWNED_RESOURCES
        self._checked: dict[int, tuple[Mapping[str, int], tuple[str, ...], tuple[int, ...]]] = {}
        """``_checked_requests`` by the id of the pod's requests map (kept with it, so that the id
        stays its own): the pods of one workload share one map (``PodInfo.requests``)."""

    def _ignored(self, resource: str) -> bool:
        if not is_extended(resource):
            return False
        groups = self.args.ignored_resource_groups
        return resource in self.args.ignored_resources or (bool(groups) and resource.split("/")[0] in groups)

    def checked_resources(self, pod: PodInfo) -> list[str]:
        """The resources fitsRequest checks, in its order: cpu, memory,
        ephemeral-storage, then the requested scalar resources (sorted by name;
        upstream walks a Go map, whose order is unspecified)."""
        names = [r for r in (CPU, MEMORY, EPHEMERAL_STORAGE) if pod.requests.get(r, 0) > 0]
        scalars = (r for r, v in pod.requests.items() if v > 0 and is_scalar(r) and not self._ignored(r))
        return names + sorted(scalars)

    def _checked_requests(self, pod: PodInfo) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """``checked_resources(pod)`` and the pod's requests of them, worked out once per requests
        map: batching asks for them three times a decision."""
        requests = pod.requests
        kept = self._checked.get(id(requests))
        if kept is None or kept[0] is not requests:
            if len(self._checked) >= _CHECKED_KEPT:
                self._checked.clear()
            checked = tuple(self.checked_resources(pod))
            kept = self._checked[id(requests)] = (requests, checked, tuple(requests[r] for r in checked))
        return kept[1], kept[2]

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a node's verdict and score depend on its own allocatable and requested
        amounts and the pod's requests -- for the resources only the table writes (plugins
        write others, such as GPU columns, outside the rows the table logs)."""
        checked, requests = self._checked_requests(pod)
        if not self._shape_cached or not TABLE_OWNED_RESOURCES.issuperset(checked):
            return "requests or scores resources that plugins account for outside the table"
        return Signed(ROWS, (checked, requests, tuple(pod_request_list(pod, self._resources, use_requested=False))))

    def filter_rows(self, pod: PodInfo, table: NodeTable, rows: npt.NDArray[np.intp], state: CycleState) -> BoolArray:
        """``fit_masks`` of ``rows`` (up to four rows in Python integers: ``fit_row``)."""
        checked, requests = self._checked_requests(pod)
        if len(rows) <= _FEW_ROWS:
            return np.array([fit_row(table, row, checked, requests) for row in rows.tolist()], np.bool_
                            ).reshape(len(rows), len(checked) + 2)
        if len(rows) == table.n and TABLE_OWNED_RESOURCES.issuperset(checked):
            # Every row (a new signature): the columns ``filter`` keeps, copied.
            masks = ShapeCache.of(table).get((NAME, checked, requests), lambda r: fit_masks(table, r, checked, requests))
            return masks[rows]  # type: ignore[return-value]
        return fit_masks(table, rows, checked, requests)

    def reasons_of_rows(self, pod: PodInfo, table: NodeTable, data: BoolArray, state: CycleState) -> Sequence[Reason]:
        """``filter``'s reasons from ``fit_masks`` of every row."""
        return fit_reasons(self.checked_resources(pod), data)

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        checked = tuple(self.checked_resources(pod))
        requests = tuple(pod.requests[r] for r in checked)

        def masks_of(rows: npt.NDArray[np.intp] | slice) -> BoolArray:
            return fit_masks(table, rows, checked, requests)

        if TABLE_OWNED_RESOURCES.issuperset(checked):
            masks = ShapeCache.of(table).get((NAME, checked, requests), masks_of)
        else:
            masks = masks_of(slice(0, table.n))
        return fit_reasons(checked, masks)  # type: ignore[arg-type]

    def filter_remaining(self, pod: PodInfo, table: NodeTable, state: CycleState,
                         remaining: Remaining) -> Sequence[Reason] | None:
        """The filter over ``remaining.rows`` as they would be with ``remaining.requested``."""
        checked = tuple(self.checked_resources(pod))
        requests = tuple(pod.requests[r] for r in checked)
        masks = fit_masks(table, remaining.rows, checked, requests, remaining.requested)
        return fit_reasons(checked, masks)

    def score_rows(self, pod: PodInfo, table: NodeTable, rows: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        """Batching: ``score`` of ``rows``, computed for them alone (not through ShapeCache,
        which ``score`` keeps for every row); up to four rows in Python integers."""
        requests = pod_request_list(pod, self._resources, use_requested=False)
        row_scorer = self._row_scorer
        if len(rows) <= _FEW_ROWS and row_scorer is not None:
            return np.array([row_scorer(*allocation_row(table, row, self._resources, requests, use_requested=False))
                             for row in rows.tolist()], np.int64)
        alloc, req = allocation_matrices(table, rows, self._resources, requests, use_requested=False)
        return self._scorer(alloc, req)

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        requests = pod_request_list(pod, self._resources, use_requested=False)

        def score_rows(rows: npt.NDArray[np.intp] | slice) -> IntArray:
            alloc, req = allocation_matrices(table, rows, self._resources, requests, use_requested=False)
            return self._scorer(alloc, req)

        if self._shape_cached:
            return ShapeCache.of(table).get((self, *requests), score_rows)[nodes]  # type: ignore[return-value]
        rows, take = score_source(nodes, table.n)
        scores = score_rows(rows)
        return scores if take is None else scores[take]


def new(args: Mapping[str, Any], path: str) -> NodeResourcesFit:
    return NodeResourcesFit(parse_fit_args(args, path))


_: tuple[type[FilterPlugin], type[ScorePlugin], type[DryRunFilter]] = (NodeResourcesFit, NodeResourcesFit, NodeResourcesFit)
