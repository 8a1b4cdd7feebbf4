"""Per-node references for NodeResourcesFit and NodeResourcesBalancedAllocation,
written the way upstream's Go reads (fit.go, resource_allocation.go,
least_allocated.go, most_allocated.go, requested_to_capacity_ratio.go,
balanced_allocation.go, helper/shape_score.go): one node at a time, plain
Python ints and floats, upstream's NodeInfo sums rebuilt from the node's pods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin
from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, PodInfo
from scoring.plugins.resource_args import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    ResourceSpec,
    parse_balanced_allocation_args,
    parse_fit_args,
)
from scoring.plugins.resource_names import is_extended, is_scalar

__all__ = ["NodeSums", "InsufficientResource", "node_sums", "fits_request", "fit", "balanced_allocation"]

MAX_NODE_SCORE = 100
MAX_UTILIZATION = 100


@dataclass
class NodeSums:
    """Upstream's NodeInfo.Allocatable, .Requested, .NonZeroRequested and len(.Pods)."""

    allocatable: dict[str, int]
    requested: dict[str, int]
    nonzero_cpu: int
    nonzero_memory: int
    pods: int


def node_sums(node: RefNode) -> NodeSums:
    requested: dict[str, int] = {}
    nonzero_cpu = nonzero_memory = 0
    for p in node.pods:
        for k, v in p.requests.items():
            requested[k] = requested.get(k, 0) + v
        cpu, memory = p.nonzero_on_node  # NodeInfo.update: calculateResource's non0CPU, non0Mem
        nonzero_cpu += cpu
        nonzero_memory += memory
    return NodeSums(dict(node.info.allocatable), requested, nonzero_cpu, nonzero_memory, len(node.pods))


@dataclass
class InsufficientResource:
    resource: str
    reason: str
    requested: int
    used: int
    capacity: int
    unresolvable: bool


def fits_request(pod: PodInfo, node: RefNode, ignored: frozenset[str] = frozenset(),
                 ignored_groups: frozenset[str] = frozenset()) -> list[InsufficientResource]:
    """fit.go's fitsRequest. Scalar resources are walked in name order (Go: map order)."""
    info = node_sums(node)
    out = []
    allowed = info.allocatable.get(PODS, 0)
    if info.pods + 1 > allowed:
        out.append(InsufficientResource(PODS, "Too many pods", 1, info.pods, allowed, False))
    req = pod.requests
    scalars = {k: v for k, v in req.items() if is_scalar(k)}
    if req.get(CPU, 0) == 0 and req.get(MEMORY, 0) == 0 and req.get(EPHEMERAL_STORAGE, 0) == 0 and not scalars:
        return out
    for r in (CPU, MEMORY, EPHEMERAL_STORAGE):
        q, alloc, used = req.get(r, 0), info.allocatable.get(r, 0), info.requested.get(r, 0)
        if q > 0 and q > alloc - used:
            out.append(InsufficientResource(r, f"Insufficient {r}", q, used, alloc, q > alloc))
    for r in sorted(scalars):
        q = scalars[r]
        if q == 0:
            continue
        if is_extended(r):
            prefix = r.split("/")[0] if ignored_groups else ""
            if r in ignored or prefix in ignored_groups:
                continue
        alloc, used = info.allocatable.get(r, 0), info.requested.get(r, 0)
        if q > alloc - used:
            out.append(InsufficientResource(r, f"Insufficient {r}", q, used, alloc, q > alloc))
    return out


def _pod_request(pod: PodInfo, resource: str, use_requested: bool) -> int:
    """calculatePodResourceRequest: non-zero cpu/memory unless useRequested."""
    if not use_requested and resource == CPU:
        return pod.nonzero_cpu
    if not use_requested and resource == MEMORY:
        return pod.nonzero_memory
    return pod.requests.get(resource, 0)


def _allocatable_request(info: NodeSums, resource: str, pod_request: int, use_requested: bool) -> tuple[int, int]:
    """calculateResourceAllocatableRequest."""
    if pod_request == 0 and is_scalar(resource):
        return 0, 0
    if resource == CPU:
        used = info.requested.get(CPU, 0) if use_requested else info.nonzero_cpu
        return info.allocatable.get(CPU, 0), used + pod_request
    if resource == MEMORY:
        used = info.requested.get(MEMORY, 0) if use_requested else info.nonzero_memory
        return info.allocatable.get(MEMORY, 0), used + pod_request
    if resource == EPHEMERAL_STORAGE:
        return info.allocatable.get(EPHEMERAL_STORAGE, 0), info.requested.get(EPHEMERAL_STORAGE, 0) + pod_request
    if is_scalar(resource) and resource in info.allocatable:
        return info.allocatable[resource], info.requested.get(resource, 0) + pod_request
    return 0, 0


def _vectors(pod: PodInfo, node: RefNode, resources: tuple[ResourceSpec, ...], use_requested: bool) -> tuple[list[int], list[int]]:
    """resourceAllocationScorer.score: (requested, allocatable), 0 where allocatable is 0."""
    info = node_sums(node)
    requested = [0] * len(resources)
    allocatable = [0] * len(resources)
    for i, r in enumerate(resources):
        alloc, req = _allocatable_request(info, r.name, _pod_request(pod, r.name, use_requested), use_requested)
        if alloc == 0:
            continue
        allocatable[i] = alloc
        requested[i] = req
    return requested, allocatable


def _least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    if requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def _most_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    if requested > capacity:
        requested = capacity
    return requested * MAX_NODE_SCORE // capacity


def _weighted(resources: tuple[ResourceSpec, ...], requested: list[int], allocatable: list[int], per: Any) -> int:
    node_score = weight_sum = 0
    for i in range(len(requested)):
        if allocatable[i] == 0:
            continue
        node_score += per(requested[i], allocatable[i]) * resources[i].weight
        weight_sum += resources[i].weight
    if weight_sum == 0:
        return 0
    return node_score // weight_sum


def _go_quo(a: int, b: int) -> int:
    """Go's int64 a / b (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _go_round(x: float) -> int:
    """Go's math.Round: half away from zero (x >= 0 here); x - floor(x) is exact."""
    f = math.floor(x)
    return int(f) + 1 if x - f >= 0.5 else int(f)


def _broken_linear(shape: list[tuple[int, int]], p: int) -> int:
    for i in range(len(shape)):
        if p <= shape[i][0]:
            if i == 0:
                return shape[0][1]
            return shape[i - 1][1] + _go_quo((shape[i][1] - shape[i - 1][1]) * (p - shape[i - 1][0]),
                                             shape[i][0] - shape[i - 1][0])
    return shape[-1][1]


def _ratio_score(resources: tuple[ResourceSpec, ...], shape: tuple[tuple[int, int], ...],
                 requested: list[int], allocatable: list[int]) -> int:
    scaled = [(u, s * (MAX_NODE_SCORE // 10)) for u, s in shape]

    def resource_score(req: int, capacity: int) -> int:
        if capacity == 0 or req > capacity:
            return _broken_linear(scaled, MAX_UTILIZATION)
        return _broken_linear(scaled, req * MAX_UTILIZATION // capacity)

    node_score = weight_sum = 0
    for i in range(len(requested)):
        if allocatable[i] == 0:
            continue
        s = resource_score(requested[i], allocatable[i])
        if s > 0:
            node_score += s * resources[i].weight
            weight_sum += resources[i].weight
    if weight_sum == 0:
        return 0
    return _go_round(float(node_score) / float(weight_sum))


def _balanced_score(requested: list[int], allocatable: list[int]) -> int:
    fractions: list[float] = []
    total = 0.0
    for i in range(len(requested)):
        if allocatable[i] == 0:
            continue
        fraction = float(requested[i]) / float(allocatable[i])
        if fraction > 1:
            fraction = 1.0
        total += fraction
        fractions.append(fraction)
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = total / float(len(fractions))
        s = 0.0
        for f in fractions:
            s = s + (f - mean) * (f - mean)
        std = math.sqrt(s / float(len(fractions)))
    return int((1 - std) * float(MAX_NODE_SCORE))


def fit(args: Mapping[str, Any]) -> RefPlugin:
    a = parse_fit_args(args, "")
    strategy = a.strategy

    def filter_(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
        return [r.reason for r in fits_request(pod, node, a.ignored_resources, a.ignored_resource_groups)]

    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        requested, allocatable = _vectors(pod, node, strategy.resources, use_requested=False)
        if strategy.type == LEAST_ALLOCATED:
            return _weighted(strategy.resources, requested, allocatable, _least_requested_score)
        if strategy.type == MOST_ALLOCATED:
            return _weighted(strategy.resources, requested, allocatable, _most_requested_score)
        return _ratio_score(strategy.resources, strategy.shape, requested, allocatable)

    return RefPlugin(name="NodeResourcesFit", filter=filter_, score=score)


def balanced_allocation(args: Mapping[str, Any]) -> RefPlugin:
    resources = parse_balanced_allocation_args(args, "")

    def skip(pod: PodInfo, cluster: RefCluster) -> bool:
        return all(_pod_request(pod, r.name, True) == 0 for r in resources)

    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        requested, allocatable = _vectors(pod, node, resources, use_requested=True)
        return _balanced_score(requested, allocatable)

    return RefPlugin(name="NodeResourcesBalancedAllocation", score=score, skip=skip)


REFERENCE["NodeResourcesFit"] = fit
REFERENCE["NodeResourcesBalancedAllocation"] = balanced_allocation
