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

``ShapeCache`` keeps, per pod shape (the requests that enter a score or a fit
check), the value of every node, and recomputes only the rows whose pods changed
since: replicas of one workload, and the few request sizes most clusters use, then
cost a handful of rows per decision instead of every node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.framework import MAX_NODE_SCORE
from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, PodInfo
from scoring.plugins.resource_args import MAX_CUSTOM_PRIORITY_SCORE
from scoring.plugins.resource_names import is_scalar
from scoring.row_log import RowLog
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
    "allocation_row",
    "wrap_int64",
    "least_allocated_row",
    "most_allocated_row",
    "balanced_allocation_row",
    "TABLE_OWNED_RESOURCES",
    "ShapeCache",
]

MAX_UTILIZATION: Final = 100
_INT64_MAX: Final = 2**63 - 1
_NONZERO_COLUMN: Final = {CPU: 0, MEMORY: 1}
"""Columns of NodeTable.nonzero."""
TABLE_OWNED_RESOURCES: Final = frozenset((CPU, MEMORY, EPHEMERAL_STORAGE, PODS))
"""Resources whose columns (allocatable, requested, the non-zero sums) only NodeTable
itself writes -- on node writes, which bump ``node_generation``, and on pod adds and
removes, which ``ShapeCache`` hears as a listener. Plugins may write other columns
(the GPU plugins do), so what depends on other resources is not cached."""
_SHAPE_CACHE_KEY: Final = "resource_shape_scores"
_SHAPE_CACHE_BYTES: Final = 32 * 2**20
"""Memory for cached arrays, counted as 8 bytes per node each: a semi-arbitrary
bound, some 800 shapes at 5,000 nodes, 40 at 100,000."""


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
    table: NodeTable, rows: npt.NDArray[np.intp] | slice, resources: Sequence[str], pod_requests: Sequence[int],
    *, use_requested: bool,
) -> tuple[IntArray, IntArray]:
    """(allocatable, requested), each ``len(rows) x len(resources)``; ``rows`` are row
    indices or a slice of rows.

    requested = what pods on the node request + ``pod_requests``: for cpu and
    memory the non-zero sums unless ``use_requested``; for everything else the
    plain sums. Entries whose allocatable is 0 are 0 in both (upstream skips them),
    as are scalar resources the pod does not request and names upstream does not
    score (``pods``, unknown names without a domain).

    The matrices are column-major: the strategies below walk them one resource
    (a contiguous column) at a time.
    """
    # Views for a slice of rows, else one gather of each table matrix.
    node_alloc, requested, nonzero = table.allocatable[rows], table.requested[rows], table.nonzero[rows]
    k = len(node_alloc)
    alloc = np.zeros((k, len(resources)), np.int64, order="F")
    req = np.zeros((k, len(resources)), np.int64, order="F")
    for j, (name, pod_req) in enumerate(zip(resources, pod_requests)):
        col = table.resource_index.get(name)
        if name in _NONZERO_COLUMN:
            used = requested[:, col] if use_requested else nonzero[:, _NONZERO_COLUMN[name]]
        elif name == EPHEMERAL_STORAGE or (is_scalar(name) and pod_req != 0 and col is not None):
            used = requested[:, col]
        else:
            continue
        alloc[:, j] = node_alloc[:, col]
        np.add(used, pod_req, out=req[:, j])
    if not alloc.all():  # rare: a node without a resource
        req[alloc == 0] = 0
    return alloc, req


def _columns_all_valid(alloc: IntArray) -> bool:
    """Whether every entry of ``alloc`` is non-zero (every node has every resource),
    which lets the strategies skip their per-node masks."""
    return bool(alloc.all())


def _weighted_average(scores: Sequence[IntArray], counted: Sequence[BoolArray] | None, weights: IntArray,
                      k: int) -> IntArray:
    """sum(score_r * w_r) // sum(w_r) over the counted resources; 0 when none counts.
    ``scores`` and ``counted`` hold one column per resource; ``counted`` None: all count."""
    total = np.zeros(k, np.int64)
    if counted is None:  # the same weight sum on every node: one division by a scalar
        wsum = 0
        for per, w in zip(scores, weights.tolist()):
            total += per if w == 1 else per * w
            wsum += w
        return total // wsum if wsum > 0 else total
    wsums = np.zeros(k, np.int64)
    for per, ok, w in zip(scores, counted, weights.tolist()):
        wcol = ok * np.int64(w)
        total += per * wcol
        wsums += wcol
    return np.where(wsums > 0, total // np.maximum(wsums, 1), 0)


def _share_average(alloc: IntArray, share: Callable[[IntArray, int], IntArray], weights: IntArray) -> IntArray:
    """Per resource ``share(alloc, req) * 100 // alloc``, then the weighted average over
    resources with alloc > 0 -- the shape Least- and MostAllocated have in common.
    ``share`` returns a fresh array (it is scaled in place)."""
    dense = _columns_all_valid(alloc)
    per, counted = [], []
    for j in range(alloc.shape[1]):
        a = alloc[:, j]
        part = share(a, j)
        part *= MAX_NODE_SCORE
        if dense:
            part //= a
        else:
            valid = a != 0
            part //= np.where(valid, a, 1)
            counted.append(valid)
        per.append(part)
    return _weighted_average(per, None if dense else counted, weights, len(alloc))


def least_allocated(alloc: IntArray, req: IntArray, weights: IntArray) -> IntArray:
    """Per resource ``(alloc - req) * 100 // alloc`` (0 when req > alloc), then the
    weighted average over resources with alloc > 0. Scale 0..MAX_NODE_SCORE."""
    def free(a: IntArray, j: int) -> IntArray:
        out = a - req[:, j]
        np.maximum(out, 0, out=out)  # req > alloc scores 0, as 0 * 100 // alloc does
        return out
    return _share_average(alloc, free, weights)


def most_allocated(alloc: IntArray, req: IntArray, weights: IntArray) -> IntArray:
    """Per resource ``min(req, alloc) * 100 // alloc``, then the weighted average
    over resources with alloc > 0. Scale 0..MAX_NODE_SCORE."""
    return _share_average(alloc, lambda a, j: np.minimum(req[:, j], a), weights)


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
    k, width = alloc.shape
    if _columns_all_valid(alloc):
        # Every node counts every resource: the same sums as the masked loop below
        # (which starts from 0.0, and 0.0 + f == f), without the masks.
        fracs = [np.minimum(req[:, j] / alloc[:, j], 1.0) for j in range(width)]
        if width == 2:
            std = np.abs((fracs[0] - fracs[1]) / 2.0)
        elif width > 2:
            total = fracs[0].copy()
            for f in fracs[1:]:
                total += f
            mean = total / float(width)
            squares = np.zeros(k, np.float64)
            for f in fracs:
                d = f - mean
                squares += d * d
            std = np.sqrt(squares / float(width))
        else:
            return np.full(k, MAX_NODE_SCORE, np.int64)  # (1 - 0) * 100
        return np.trunc((1.0 - std) * float(MAX_NODE_SCORE)).astype(np.int64)
    valid = alloc != 0
    frac = np.minimum(req.astype(np.float64) / np.where(valid, alloc, 1).astype(np.float64), 1.0)
    count = np.zeros(k, np.int64)
    total = np.zeros(k, np.float64)
    first = np.zeros(k, np.float64)
    second = np.zeros(k, np.float64)
    for j in range(width):
        v = valid[:, j]
        f = frac[:, j]
        total = np.where(v, total + f, total)
        first = np.where(v & (count == 0), f, first)
        second = np.where(v & (count == 1), f, second)
        count += v
    mean = total / np.maximum(count, 1).astype(np.float64)
    squares = np.zeros(k, np.float64)
    for j in range(width):
        d = frac[:, j] - mean
        squares = np.where(valid[:, j], squares + d * d, squares)
    std = np.zeros(k, np.float64)
    std = np.where(count == 2, np.abs((first - second) / 2.0), std)
    std = np.where(count > 2, np.sqrt(squares / np.maximum(count, 1).astype(np.float64)), std)
    return np.trunc((1.0 - std) * float(MAX_NODE_SCORE)).astype(np.int64)



# ---- one node at a time ------------------------------------------------------------------
# For a decision that recomputes a row or two (``scoring.batching``), numpy's cost per call
# outweighs the arithmetic: these are the functions above for one row, in Python integers and
# float64 (Python's float), in the same order of operations, so with the same results --
# int64's wrap-around included (``wrap_int64``), for sums the table itself let wrap.


def wrap_int64(v: int) -> int:
    """``v`` as int64 arithmetic leaves it: wrapped around into -2**63 .. 2**63 - 1."""
    return ((v + 2**63) & (2**64 - 1)) - 2**63


def allocation_row(table: NodeTable, row: int, resources: Sequence[str], pod_requests: Sequence[int],
                   *, use_requested: bool) -> tuple[list[int], list[int]]:
    """``allocation_matrices`` of one row, as two lists."""
    node_alloc, requested = table.allocatable[row].tolist(), table.requested[row].tolist()
    nonzero = table.nonzero[row].tolist()
    alloc, req = [], []
    for name, pod_req in zip(resources, pod_requests):
        col = table.resource_index.get(name)
        if name in _NONZERO_COLUMN:
            used = requested[col] if use_requested else nonzero[_NONZERO_COLUMN[name]]
        elif col is not None and (name == EPHEMERAL_STORAGE or (is_scalar(name) and pod_req != 0)):
            used = requested[col]
        else:
            alloc.append(0)
            req.append(0)
            continue
        a = node_alloc[col]
        alloc.append(a)
        req.append(wrap_int64(used + pod_req) if a != 0 else 0)
    return alloc, req


def _share_average_row(alloc: Sequence[int], shares: Sequence[int], weights: Sequence[int]) -> int:
    """``_share_average`` of one row: ``share * 100 // alloc`` averaged over alloc > 0."""
    total = wsum = 0
    for a, share, w in zip(alloc, shares, weights):
        if a != 0:
            total = wrap_int64(total + wrap_int64(wrap_int64(share * MAX_NODE_SCORE) // a * w))
            wsum += w
    return total // wsum if wsum > 0 else 0


def least_allocated_row(alloc: Sequence[int], req: Sequence[int], weights: Sequence[int]) -> int:
    """``least_allocated`` of one row."""
    return _share_average_row(alloc, [max(wrap_int64(a - r), 0) for a, r in zip(alloc, req)], weights)


def most_allocated_row(alloc: Sequence[int], req: Sequence[int], weights: Sequence[int]) -> int:
    """``most_allocated`` of one row."""
    return _share_average_row(alloc, [min(r, a) for a, r in zip(alloc, req)], weights)


def balanced_allocation_row(alloc: Sequence[int], req: Sequence[int]) -> int:
    """``balanced_allocation`` of one row: float64 in the same order (Python's float is
    float64; amounts are converted before dividing, as numpy does)."""
    fracs = [min(float(r) / float(a), 1.0) for a, r in zip(alloc, req) if a != 0]
    count = len(fracs)
    if count == 2:
        std = abs((fracs[0] - fracs[1]) / 2.0)
    elif count > 2:
        total = 0.0
        for f in fracs:
            total += f
        mean = total / float(count)
        squares = 0.0
        for f in fracs:
            d = f - mean
            squares += d * d
        std = math.sqrt(squares / float(count))
    else:
        std = 0.0
    score = math.trunc((1.0 - std) * float(MAX_NODE_SCORE))
    if -(2**63) <= score <= _INT64_MAX:
        return score
    # Out of int64 (negative amounts: sums the table let wrap): numpy's own conversion.
    return int(np.array([(1.0 - std) * float(MAX_NODE_SCORE)]).astype(np.int64)[0])


RowFunction = Callable[[npt.NDArray[np.intp] | slice], npt.NDArray[np.generic]]
"""An array whose first axis is the given rows (indices, or a slice of ``[:n]``),
each row's entries depending on that row of the table alone."""


@dataclass(slots=True)
class _Shape:
    values: npt.NDArray[np.generic]
    node_generation: int
    log_epoch: int
    log_position: int


class ShapeCache:
    """Per pod shape, a row-wise array over every node ``[:n]`` (scores, fit masks),
    kept up to date row by row.

    What NodeResourcesFit and BalancedAllocation compute for one node depends only on
    that node's allocatable and requested amounts (of TABLE_OWNED_RESOURCES) and on
    the pod's requests (its "shape"). Allocatable changes only on node writes
    (``node_generation``: every shape is then recomputed in full); requested changes
    only on the row of a pod added or removed, which the table's ``RowLog`` records
    (``scoring.row_log``, shared with opportunistic batching). A shape seen
    again recomputes just the rows logged since it was last brought up to date, with
    the same row-wise function, so the values are those a full computation gives.
    """

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        self._log = RowLog.of(table)
        self._shapes: dict[Hashable, _Shape] = {}

    @classmethod
    def of(cls, table: NodeTable) -> ShapeCache:
        ext = table.extensions.get(_SHAPE_CACHE_KEY)
        if not isinstance(ext, ShapeCache):
            ext = table.extensions[_SHAPE_CACHE_KEY] = ShapeCache(table)
        return ext

    def get(self, key: Hashable, of_rows: RowFunction) -> npt.NDArray[np.generic]:
        """``of_rows(slice(0, n))`` for the shape ``key``, which must name the function
        and everything it reads besides the table. The array is updated in place
        later: index or copy what you keep (``[nodes]`` copies)."""
        table, log = self._table, self._log
        n = table.n
        shape = self._shapes.get(key)
        if shape is None or shape.node_generation != table.node_generation or shape.log_epoch != log.epoch:
            if shape is None:
                while len(self._shapes) * max(n, 1) * 8 >= _SHAPE_CACHE_BYTES and self._shapes:
                    del self._shapes[next(iter(self._shapes))]  # the oldest shape
            shape = _Shape(of_rows(slice(0, n)), table.node_generation, log.epoch, len(log.rows))
            self._shapes[key] = shape
        elif shape.log_position < len(log.rows):
            # Rows changed since (all < n: removing a node bumps node_generation). A row
            # logged twice is computed twice, with the same result: cheaper than deduplicating.
            changed = log.rows[shape.log_position:]
            if 2 * len(changed) >= n:
                shape.values = of_rows(slice(0, n))
            else:
                rows = np.array(changed, np.intp)
                shape.values[rows] = of_rows(rows)
            shape.log_position = len(log.rows)
        return shape.values
