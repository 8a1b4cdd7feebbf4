"""Pure packing heuristics shared by vecsched's own placement-strategy plugins.

The strategy lab (``vecsched sim``) compares kube-scheduler's scoring with the
classic vector bin-packing heuristics: Tetris's dot-product alignment, best
fit, worst fit, first fit and a random baseline. The same heuristics also
serve as the GPU-sharing baselines of Weng et al. (ATC '23), with GPU
resources in the resource list. So the arithmetic lives here, as functions of
plain numpy arrays over the candidate nodes -- free amounts, capacities, the
pod's request, per-resource weights -- and the plugin modules
(``dot_product``, ``best_fit``, ``worst_fit``, ``first_fit``,
``random_score``) are thin shells that slice those arrays out of a NodeTable.

Every function returns int64 scores in ``0..MAX_NODE_SCORE`` (higher is
better), already normalised over the candidate nodes, so the plugins need no
NormalizeScore step. Arithmetic is float64 and the result is floored; the
node a heuristic prefers always gets exactly ``MAX_NODE_SCORE``.

Plugin args, shared by DotProduct, BestFit and WorstFit::

    resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]   # the default

Any resource the table knows may be listed (``nvidia.com/gpu``, ...); a weight
of 0 or none means 1, as in kube-scheduler's resource specs. A listed resource
that no node has is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, integer, known_fields, mapping, sequence, string
from scoring.framework import MAX_NODE_SCORE
from scoring.objects import CPU, MEMORY, PodInfo
from scoring.table import IntArray, NodeTable
from scoring.safe_input import quote

__all__ = [
    "ResourceWeight",
    "DEFAULT_RESOURCES",
    "parse_resources",
    "resource_matrices",
    "largest_capacity",
    "min_max_scores",
    "weighted_leftover",
    "best_fit_scores",
    "worst_fit_scores",
    "dot_product_scores",
    "first_fit_scores",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ResourceWeight:
    name: str
    weight: int


DEFAULT_RESOURCES: Final = (ResourceWeight(CPU, 1), ResourceWeight(MEMORY, 1))
_MAX_WEIGHT: Final = 100  # the same bound kube-scheduler puts on resource weights


def parse_resources(args: Mapping[str, Any], path: str) -> tuple[ResourceWeight, ...]:
    """Read ``{resources: [{name, weight}]}`` strictly; the default is cpu:1, memory:1."""
    m = mapping(args, path)
    known_fields(m, ("resources",), path)
    rpath = f"{path}.resources" if path else "resources"
    out: list[ResourceWeight] = []
    for i, r in enumerate(sequence(m.get("resources"), rpath)):
        ipath = f"{rpath}[{i}]"
        r = mapping(r, ipath)
        known_fields(r, ("name", "weight"), ipath)
        name = string(r.get("name"), f"{ipath}.name")
        if not name:
            raise ArgsError(f"{ipath}.name", "must not be empty")
        if any(o.name == name for o in out):
            raise ArgsError(f"{ipath}.name", f"resource {quote(name)} listed twice")
        weight = integer(r.get("weight", 0), f"{ipath}.weight", lo=0, hi=_MAX_WEIGHT)
        out.append(ResourceWeight(name, weight or 1))
    return tuple(out) or DEFAULT_RESOURCES


def resource_matrices(
    pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], resources: Sequence[ResourceWeight]
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """(free, capacity, request, weights) for the listed resources the table knows.

    ``free`` and ``capacity`` are (len(nodes) x k) int64 slices of
    allocatable - requested and allocatable; ``request`` is the pod's fit
    request (k,); ``weights`` (k,). Resources without a table column are left out.
    """
    known = [r for r in resources if r.name in table.resource_index]
    cols = [table.resource_index[r.name] for r in known]
    weights = np.array([r.weight for r in known], np.float64)
    rows = np.ix_(nodes, np.asarray(cols, np.intp))
    cap = table.allocatable[rows]
    free = cap - table.requested[rows]
    request = np.array([pod.requests.get(r.name, 0) for r in known], np.int64)
    return free, cap, request, weights


def largest_capacity(table: NodeTable, resources: Sequence[ResourceWeight]) -> IntArray:
    """The largest allocatable of each listed resource the table knows, over all live nodes."""
    cols = [table.resource_index[r.name] for r in resources if r.name in table.resource_index]
    if table.n == 0:
        return np.zeros(len(cols), np.int64)
    return np.asarray(table.allocatable[: table.n, cols].max(axis=0), np.int64)


def min_max_scores(values: FloatArray, *, higher_is_better: bool) -> IntArray:
    """Map values onto 0..MAX_NODE_SCORE linearly between their min and max.

    ``floor(100 * (v - min) / (max - min))`` (or ``(max - v)`` when lower is
    better), so the preferred node scores exactly 100. All equal: all 100.
    """
    if len(values) == 0:
        return np.zeros(0, np.int64)
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return np.full(len(values), MAX_NODE_SCORE, np.int64)
    frac = (values - lo) / (hi - lo) if higher_is_better else (hi - values) / (hi - lo)
    return np.floor(MAX_NODE_SCORE * frac).astype(np.int64)


def weighted_leftover(free: IntArray, request: IntArray, scale: IntArray, weights: FloatArray) -> FloatArray:
    """``sum_r w_r * max(free_r - req_r, 0) / scale_r / sum_r w_r`` per node.

    ``scale_r`` is the largest capacity of resource r among the table's nodes,
    so one unit of leftover weighs the same on every node (as the ``maxSpec``
    normalisation of Weng et al.'s BestFit); resources with ``scale_r == 0``
    are dropped from both sums. Result in [0, 1]; 0 = the pod fills the node.
    """
    keep = scale > 0
    if not keep.any():
        return np.zeros(len(free), np.float64)
    w = weights[keep]
    left = np.maximum(free[:, keep] - request[keep], 0) / scale[keep]
    # An elementwise sum (not a BLAS dot) adds in resource order, as a per-node loop would.
    return np.asarray((left * w).sum(axis=1) / w.sum(), np.float64)


def best_fit_scores(free: IntArray, request: IntArray, scale: IntArray, weights: FloatArray) -> IntArray:
    """BestFit: the node left with the least weighted leftover scores 100.

    ``score = floor(100 * (L_max - L) / (L_max - L_min))`` with L the
    ``weighted_leftover`` of each candidate node. Source: the best-fit rule of
    bin packing (Johnson 1974, "Fast algorithms for bin packing"), in its
    multi-resource form as the BestFit baseline of Weng et al., "Beware of
    Fragmentation", USENIX ATC 2023.
    """
    return min_max_scores(weighted_leftover(free, request, scale, weights), higher_is_better=False)


def worst_fit_scores(free: IntArray, request: IntArray, scale: IntArray, weights: FloatArray) -> IntArray:
    """WorstFit: the node left with the most weighted leftover scores 100.

    ``score = floor(100 * (L - L_min) / (L_max - L_min))``, L as in BestFit.
    Source: the worst-fit rule of bin packing (Johnson 1974); it spreads load.
    """
    return min_max_scores(weighted_leftover(free, request, scale, weights), higher_is_better=True)


def dot_product_scores(free: IntArray, capacity: IntArray, request: IntArray, weights: FloatArray) -> IntArray:
    """DotProduct (Tetris): the node whose free vector best aligns with the demand scores 100.

    ``A = sum_r w_r * (req_r / cap_r) * (free_r / cap_r)``, both vectors
    normalised per resource by the node's own capacity (a resource the node
    lacks adds 0); then ``score = floor(100 * A / A_max)`` over the candidates
    (all 0 when every A is 0). Source: Grandl et al., "Multi-Resource Packing
    for Cluster Schedulers" (Tetris), SIGCOMM 2014, section 3.1 alignment score.
    """
    if len(free) == 0:
        return np.zeros(0, np.int64)
    cap = capacity.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(cap > 0, (request / cap) * (np.maximum(free, 0) / cap), 0.0)
    align = (terms * weights).sum(axis=1)
    top = float(align.max())
    if top <= 0:
        return np.zeros(len(free), np.int64)
    out: IntArray = np.floor(MAX_NODE_SCORE * align / top).astype(np.int64)
    return out


def first_fit_scores(sequence_numbers: IntArray) -> IntArray:
    """FirstFit: the candidate node added first (lowest sequence number) scores 100.

    ``score = floor(100 * (s_max - s) / (s_max - s_min))`` over the
    candidates' insertion sequence numbers ``s``; the first node is the only
    one with 100. Source: the first-fit rule of bin packing (Johnson 1974).
    """
    return min_max_scores(sequence_numbers.astype(np.float64), higher_is_better=False)
