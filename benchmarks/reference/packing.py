"""Per-node references for vecsched's own packing plugins (DotProduct, BestFit,
WorstFit, FirstFit): one node at a time in plain Python floats, with the
candidate-set normalisation done over the list of raw values, as the formulas
in ``scoring.plugins.packing`` read. Random has no reference: its scores are
draws, and its contract (uniform 0..100, seeded) is tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin
from scoring.objects import PodInfo
from scoring.plugins.packing import ResourceWeight, parse_resources

__all__ = ["dot_product", "best_fit", "worst_fit", "first_fit"]

MAX_NODE_SCORE = 100


def _requested(node: RefNode, resource: str) -> int:
    return sum(p.requests.get(resource, 0) for p in node.pods)


def _known(resources: Sequence[ResourceWeight], cluster: RefCluster) -> list[ResourceWeight]:
    """The listed resources some node has a column for (the table's columns: any node lists it)."""
    names = {r for n in cluster.nodes for r in n.info.allocatable} | {"cpu", "memory", "ephemeral-storage", "pods"}
    names |= {r for n in cluster.nodes for p in n.pods for r in p.requests}
    return [r for r in resources if r.name in names]


def _min_max(values: list[float], higher_is_better: bool) -> list[int]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi == lo:
        return [MAX_NODE_SCORE] * len(values)
    return [math.floor(MAX_NODE_SCORE * ((v - lo) / (hi - lo) if higher_is_better else (hi - v) / (hi - lo)))
            for v in values]


def _leftover(resources: Sequence[ResourceWeight]):  # type: ignore[no-untyped-def]
    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> float:
        total = weights = 0.0
        terms = []
        for r in _known(resources, cluster):
            scale = max(n.info.allocatable.get(r.name, 0) for n in cluster.nodes)
            if scale <= 0:
                continue
            free = node.info.allocatable.get(r.name, 0) - _requested(node, r.name)
            terms.append(max(free - pod.requests.get(r.name, 0), 0) / scale * r.weight)
            weights += r.weight
        if not terms:
            return 0.0
        for t in terms:
            total += t
        return total / weights
    return score


def best_fit(args: Mapping[str, Any]) -> RefPlugin:
    return RefPlugin("BestFit", score=_leftover(parse_resources(args, "")),  # type: ignore[arg-type]
                     normalize=lambda raw: _min_max(raw, False))  # type: ignore[arg-type]


def worst_fit(args: Mapping[str, Any]) -> RefPlugin:
    return RefPlugin("WorstFit", score=_leftover(parse_resources(args, "")),  # type: ignore[arg-type]
                     normalize=lambda raw: _min_max(raw, True))  # type: ignore[arg-type]


def dot_product(args: Mapping[str, Any]) -> RefPlugin:
    resources = parse_resources(args, "")

    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> float:
        total = 0.0
        for r in _known(resources, cluster):
            cap = node.info.allocatable.get(r.name, 0)
            if cap <= 0:
                term = 0.0
            else:
                free = max(cap - _requested(node, r.name), 0)
                term = (pod.requests.get(r.name, 0) / cap) * (free / cap)
            total += term * r.weight
        return total

    def normalize(raw: list[float]) -> list[int]:
        top = max(raw) if raw else 0.0
        if top <= 0:
            return [0] * len(raw)
        return [math.floor(MAX_NODE_SCORE * a / top) for a in raw]

    return RefPlugin("DotProduct", score=score, normalize=normalize)  # type: ignore[arg-type]


def first_fit(args: Mapping[str, Any]) -> RefPlugin:
    # RefCluster.nodes is in the order nodes were added.
    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        return next(i for i, n in enumerate(cluster.nodes) if n is node)

    return RefPlugin("FirstFit", score=score,
                     normalize=lambda raw: _min_max([float(s) for s in raw], False))  # type: ignore[arg-type]


REFERENCE["DotProduct"] = dot_product
REFERENCE["BestFit"] = best_fit
REFERENCE["WorstFit"] = worst_fit
REFERENCE["FirstFit"] = first_fit
