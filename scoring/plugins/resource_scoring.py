"""Resource-allocation scores over nodes x resources, as upstream's
``noderesources`` package computes them one node at a time.

``allocation_matrices`` gathers, for the configured resources, each node's
allocatable and what would be requested with the pod placed there (upstream's
``resourceAllocationScorer.score`` / ``calculateResourceAllocatableRequest``).
The strategy functions turn those matrices into one integer score per node on
``0..MAX_NODE_SCORE``: LeastAllocated, MostAllocated, RequestedToCapacityRatio
(integer arithmetic, as upstream) and BalancedAllocation (float64, evaluated in
upstream's order so that every rounding step is the same).

A resource whose allocatable on a node is 0 (or that the node lacks) does not
take part in that node's score, and neither does a scalar resource (extended,
hugepages, ...) the pod does not request.

Like upstream's, LeastAllocated and MostAllocated multiply an amount by 100 in
int64: they are exact for amounts below 2**63 / 100 (about 92 PB).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.framework import MAX_NODE_SCORE
from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, PodInfo
from scoring.plugins.resource_args import MAX_CUSTOM_PRIORITY_SCORE
from scoring.plugins.resource_names import is_scalar
from scoring.table import BoolArray, IntArray, NodeTable

__all__ = [
    "pod_request_list",
    "allocation_matrices",
    "least_allocated",
    "most_allocated",
    "broken_linear",
    "broken_linear_table",
    "utilization",
    "requested_to_capacity_ratio",
    "balanced_allocation",
]

MAX_UTILIZATION: Final = 100
_INT64_MAX: Final = 2**63 - 1
_NONZERO_COLUMN: Final = {CPU: 0, MEMORY: 1}
"""Columns of NodeTable.nonzero."""


def pod_request_list(pod: PodInfo, resources: Sequence[str], *, use_requested: bool) -> list[int]:
    """Upstream's calculatePodResourceRequestList: the pod's request of each resource.

    For cpu and memory, unless ``use_requested`` (BalancedAllocation), the
    non-zero request (100m / 200Mi charged to containers that set none).
    """
    out = []
    for name in resources:
        if not use_requested and name == CPU:
            out.append(pod.nonzero_cpu)
        elif not use_requested and name == MEMORY:
            out.append(pod.nonzero_memory)
        else:
            out.append(pod.requests.get(name, 0))
    return out


def allocation_matrices(
    table: NodeTable, rows: npt.NDArray[np.intp], resources: Sequence[str], pod_requests: Sequence[int],
    *, use_requested: bool,
) -> tuple[IntArray, IntArray]:
    """(allocatable, requested), each ``len(rows) x len(resources)``.

    requested = what pods on the node request + ``pod_requests``: for cpu and
    memory the non-zero sums unless ``use_requested``; for everything else the
    plain sums. Entries whose allocatable is 0 are 0 in both (upstream skips them),
    as are scalar resources the pod does not request and names upstream does not
    score (``pods``, unknown names without a domain).
    """
    k = len(rows)
    alloc = np.zeros((k, len(resources)), np.int64)
    req = np.zeros((k, len(resources)), np.int64)
    for j, (name, pod_req) in enumerate(zip(resources, pod_requests)):
        col = table.resource_index.get(name)
        if name in _NONZERO_COLUMN:
            used = table.requested[rows, col] if use_requested else table.nonzero[rows, _NONZERO_COLUMN[name]]
        elif name == EPHEMERAL_STORAGE or (is_scalar(name) and pod_req != 0 and col is not None):
            used = table.requested[rows, col]
        else:
            continue
        alloc[:, j] = table.allocatable[rows, col]
        req[:, j] = used + pod_req
    req[alloc == 0] = 0
    return alloc, req


def _weighted_average(scores: IntArray, counted: BoolArray, weights: IntArray) -> IntArray:
    """sum(score_r * w_r) // sum(w_r) over the counted resources; 0 when none counts."""
    w = np.where(counted, weights[None, :], 0)
    total = (scores * w).sum(axis=1)
    wsum = w.sum(axis=1)
    return np.where(wsum > 0, total // np.maximum(wsum, 1), 0)


def least_allocated(alloc: IntArray, req: IntArray, weights: IntArray) -> IntArray:
    """Per resource ``(alloc - req) * 100 // alloc`` (0 when req > alloc), then the
    weighted average over resources with alloc > 0. Scale 0..MAX_NODE_SCORE."""
    valid = alloc != 0
    safe = np.where(valid, alloc, 1)
    per = np.where(req > alloc, 0, (alloc - req) * MAX_NODE_SCORE // safe)
    return _weighted_average(per, valid, weights)


def most_allocated(alloc: IntArray, req: IntArray, weights: IntArray) -> IntArray:
    """Per resource ``min(req, alloc) * 100 // alloc``, then the weighted average
    over resources with alloc > 0. Scale 0..MAX_NODE_SCORE."""
    valid = alloc != 0
    safe = np.where(valid, alloc, 1)
    per = np.minimum(req, alloc) * MAX_NODE_SCORE // safe
    return _weighted_average(per, valid, weights)


def _go_div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def broken_linear(shape: Sequence[tuple[int, int]], p: int) -> int:
    """Upstream's helper.BuildBrokenLinearFunction(shape)(p).

    shape[0].score for p <= shape[0].utilization; shape[n-1].score past the last
    point; otherwise, for the first i with p <= u[i],
    s[i-1] + (s[i] - s[i-1]) * (p - u[i-1]) / (u[i] - u[i-1]) in Go integer
    arithmetic (the division truncates toward zero, also for falling segments).
    """
    for i, (u, s) in enumerate(shape):
        if p <= u:
            if i == 0:
                return s
            pu, ps = shape[i - 1]
            return ps + _go_div((s - ps) * (p - pu), u - pu)
    return shape[-1][1]


def broken_linear_table(shape: Sequence[tuple[int, int]]) -> IntArray:
    """RequestedToCapacityRatio's function of utilization p = 0..100, tabulated: the
    configured shape with scores scaled from 0..10 to 0..MAX_NODE_SCORE (x 10, as
    upstream does before building the function), then ``broken_linear``."""
    scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
    scaled = [(u, s * scale) for u, s in shape]
    return np.array([broken_linear(scaled, p) for p in range(MAX_UTILIZATION + 1)], np.int64)


def utilization(alloc: IntArray, req: IntArray) -> IntArray:
    """``req * 100 // alloc`` clamped to 0..100 (100 when req >= alloc or alloc == 0),
    exact even where ``req * 100`` would overflow int64."""
    safe = np.where(alloc > 0, alloc, 1)
    small = req <= _INT64_MAX // MAX_UTILIZATION
    out = np.where(small, np.minimum(req, _INT64_MAX // MAX_UTILIZATION) * MAX_UTILIZATION // safe, 0)
    for i, j in zip(*np.nonzero(~small & (req < alloc))):  # only for requests above ~92 PB
        out[i, j] = int(req[i, j]) * MAX_UTILIZATION // int(alloc[i, j])
    out = np.where((alloc <= 0) | (req >= alloc), MAX_UTILIZATION, out)
    return np.where((req <= 0) & (alloc > 0), 0, out)


def requested_to_capacity_ratio(alloc: IntArray, req: IntArray, weights: IntArray, lookup: IntArray) -> IntArray:
    """Per resource ``lookup[utilization]`` (see broken_linear_table); resources with
    alloc > 0 *and a positive score* enter the weighted average, which is rounded
    half away from zero (upstream's math.Round of the float64 quotient; done
    exactly in integers as (2 * sum + wsum) // (2 * wsum)). Scale 0..MAX_NODE_SCORE."""
    per = lookup[utilization(alloc, req)]
    counted = (alloc != 0) & (per > 0)
    w = np.where(counted, weights[None, :], 0)
    total = (per * w).sum(axis=1)
    wsum = w.sum(axis=1)
    return np.where(wsum > 0, (2 * total + wsum) // np.maximum(2 * wsum, 1), 0)


def balanced_allocation(alloc: IntArray, req: IntArray) -> IntArray:
    """``int64((1 - std) * 100)`` over the fractions ``min(req / alloc, 1)`` of the
    resources with alloc > 0: std = |f1 - f2| / 2 for two of them, the population
    standard deviation for more, 0 for fewer. float64, summed in resource order
    as upstream does, so the result is bit-identical to Go on amd64 (which does not
    fuse multiply-adds). Scale 0..MAX_NODE_SCORE."""
    valid = alloc != 0
    k = len(alloc)
    frac = np.minimum(req.astype(np.float64) / np.where(valid, alloc, 1).astype(np.float64), 1.0)
    count = np.zeros(k, np.int64)
    total = np.zeros(k, np.float64)
    first = np.zeros(k, np.float64)
    second = np.zeros(k, np.float64)
    for j in range(alloc.shape[1]):
        v = valid[:, j]
        f = frac[:, j]
        total = np.where(v, total + f, total)
        first = np.where(v & (count == 0), f, first)
        second = np.where(v & (count == 1), f, second)
        count += v
    mean = total / np.maximum(count, 1).astype(np.float64)
    squares = np.zeros(k, np.float64)
    for j in range(alloc.shape[1]):
        d = frac[:, j] - mean
        squares = np.where(valid[:, j], squares + d * d, squares)
    std = np.zeros(k, np.float64)
    std = np.where(count == 2, np.abs((first - second) / 2.0), std)
    std = np.where(count > 2, np.sqrt(squares / np.maximum(count, 1).astype(np.float64)), std)
    return np.trunc((1.0 - std) * float(MAX_NODE_SCORE)).astype(np.int64)
