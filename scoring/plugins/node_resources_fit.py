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

from scoring.framework import CycleState, FilterPlugin, Reason, ScorePlugin
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
    allocation_matrices,
    broken_linear_table,
    least_allocated,
    most_allocated,
    pod_request_list,
    requested_to_capacity_ratio,
)
from scoring.table import BoolArray, IntArray, NodeTable

__all__ = ["NAME", "TOO_MANY_PODS", "NodeResourcesFit", "insufficient", "new"]

NAME: Final = "NodeResourcesFit"
TOO_MANY_PODS: Final = "Too many pods"

Scorer = Callable[[IntArray, IntArray], IntArray]


def insufficient(request: int, allocatable: IntArray, requested: IntArray) -> tuple[BoolArray, BoolArray]:
    """(short, unresolvable) per node for one resource the pod requests (> 0):
    short = request > allocatable - requested; unresolvable = request > allocatable."""
    return request > allocatable - requested, request > allocatable


def _scorer(strategy: ScoringStrategy) -> Scorer:
    weights = np.array([r.weight for r in strategy.resources], np.int64)
    if strategy.type == LEAST_ALLOCATED:
        return lambda alloc, req: least_allocated(alloc, req, weights)
    if strategy.type == MOST_ALLOCATED:
        return lambda alloc, req: most_allocated(alloc, req, weights)
    lookup = broken_linear_table(strategy.shape)
    return lambda alloc, req: requested_to_capacity_ratio(alloc, req, weights, lookup)


class NodeResourcesFit:
    name: Final = NAME

    def __init__(self, args: FitArgs) -> None:
        self.args = args
        self._resources = [r.name for r in args.strategy.resources]
        self._scorer = _scorer(args.strategy)

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

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        n = table.n
        alloc, used = table.allocatable[:n], table.requested[:n]
        pods = table.resource_index[PODS]
        failures: list[tuple[str, BoolArray]] = [(TOO_MANY_PODS, used[:, pods] + 1 > alloc[:, pods])]
        unresolvable = np.zeros(n, np.bool_)
        zeros = np.zeros(n, np.int64)
        for resource in self.checked_resources(pod):
            col = table.resource_index.get(resource)
            short, beyond = insufficient(pod.requests[resource],
                                         zeros if col is None else alloc[:, col],
                                         zeros if col is None else used[:, col])
            failures.append((f"Insufficient {resource}", short))
            unresolvable |= short & beyond
        reasons = []
        for message, mask in failures:
            for unres in (False, True):
                part = mask & (unresolvable if unres else ~unresolvable)
                if part.any():
                    reasons.append(Reason(message, part, unresolvable=unres))
        return reasons

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        requests = pod_request_list(pod, self._resources, use_requested=False)
        alloc, req = allocation_matrices(table, nodes, self._resources, requests, use_requested=False)
        return self._scorer(alloc, req)


def new(args: Mapping[str, Any], path: str) -> NodeResourcesFit:
    return NodeResourcesFit(parse_fit_args(args, path))


_: tuple[type[FilterPlugin], type[ScorePlugin]] = (NodeResourcesFit, NodeResourcesFit)
