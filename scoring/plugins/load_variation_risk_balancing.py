"""LoadVariationRiskBalancing: spread the *risk* of load, not just its average
(scheduler-plugins' ``pkg/trimaran/loadvariationriskbalancing``).

For CPU and memory separately, from the node's measured average and standard
deviation (percent) and its **allocatable** (milli-CPU; memory in MiB, upstream's
``MegaFactor``)::

    used_avg = avg% * allocatable / 100          clamped to 0..allocatable
    used_std = std% * allocatable / 100          clamped to 0..allocatable
    mu       = (used_avg + pod request) / allocatable     clamped to 0..1
    sigma    = used_std / allocatable                     clamped to 0..1
    sigma    = margin * sigma ** (1 / sensitivity)        clamped to 0..1
    score    = (1 - (mu + sigma) / 2) * 100

A resource is *valid* when the node has any metric of its type; an allocatable of
0 scores 0. The node's score is the minimum over CPU and memory when both are
valid, else the one that is (upstream takes the maximum with the invalid one's 0),
rounded half away from zero. A node without metrics scores 0. The pod's request is
upstream's GetResourceRequested: its containers' requests summed, at least each
init container's, plus overhead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.load import SOURCE_FIELDS, MetricsSource, metrics_source_from_args
from scoring.objects import CPU, MEMORY, PodInfo
from scoring.plugins.node_load import (
    ContainerAmounts,
    FloatArray,
    LoadMetrics,
    PodMemo,
    container_amounts,
    go_round,
    overhead_amounts,
)
from scoring.table import BoolArray, IntArray, NodeTable
from scoring.safe_input import quote

__all__ = [
    "NAME",
    "MEGA_FACTOR",
    "DEFAULT_SAFE_VARIANCE_MARGIN",
    "DEFAULT_SAFE_VARIANCE_SENSITIVITY",
    "LoadVariationRiskBalancingArgs",
    "LoadVariationRiskBalancing",
    "parse_args",
    "resource_requested",
    "resource_stats",
    "mu_sigma",
    "compute_score",
    "risk_scores",
    "new",
]

NAME: Final = "LoadVariationRiskBalancing"
MEGA_FACTOR: Final = 1.0 / 1024.0 / 1024.0
"""Upstream's MegaFactor: memory is reckoned in MiB."""
DEFAULT_SAFE_VARIANCE_MARGIN: Final = 1.0
DEFAULT_SAFE_VARIANCE_SENSITIVITY: Final = 1.0


@dataclass(frozen=True, slots=True)
class LoadVariationRiskBalancingArgs:
    margin: float
    """``safeVarianceMargin``: the multiplier of sigma."""
    sensitivity: float
    """``safeVarianceSensitivity``: the root taken of sigma."""
    source: MetricsSource


def _number(args: Mapping[str, Any], name: str, path: str, default: float) -> float:
    v = args.get(name)
    at = f"{path}.{name}" if path else name
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgsError(at, f"expected a number, got {quote(v)}")
    if not math.isfinite(v):
        raise ArgsError(at, f"expected a finite number, got {quote(v)}")
    return default if v < 0 else float(v)


def parse_args(args: Mapping[str, Any], path: str) -> LoadVariationRiskBalancingArgs:
    """Upstream's LoadVariationRiskBalancingArgs with its v1 defaults: ``safeVarianceMargin``
    and ``safeVarianceSensitivity`` unset or negative are 1."""
    args = mapping(args, path)
    known_fields(args, ("safeVarianceMargin", "safeVarianceSensitivity", *SOURCE_FIELDS), path)
    return LoadVariationRiskBalancingArgs(
        margin=_number(args, "safeVarianceMargin", path, DEFAULT_SAFE_VARIANCE_MARGIN),
        sensitivity=_number(args, "safeVarianceSensitivity", path, DEFAULT_SAFE_VARIANCE_SENSITIVITY),
        source=metrics_source_from_args(args, path),
    )


def _requests(c: ContainerAmounts) -> Mapping[str, int]:
    # The API server defaults a missing request to the limit; a pod from a file gets the same.
    return {**c.limits, **c.requests} if c.limits else c.requests


def resource_requested(pod: PodInfo) -> tuple[int, int]:
    """Upstream's GetResourceRequested, for (milli-CPU, memory bytes): the app containers'
    requests summed, raised to any init container's, plus the pod's overhead."""
    cpu = mem = 0
    for c in container_amounts(pod):
        r = _requests(c)
        cpu += r.get(CPU, 0)
        mem += r.get(MEMORY, 0)
    for c in container_amounts(pod, "initContainers"):
        r = _requests(c)
        cpu = max(cpu, r.get(CPU, 0))
        mem = max(mem, r.get(MEMORY, 0))
    overhead = overhead_amounts(pod)
    return cpu + overhead.get(CPU, 0), mem + overhead.get(MEMORY, 0)


def resource_stats(avg: FloatArray, std: FloatArray, allocatable: FloatArray, request: int, *,
                   memory: bool) -> tuple[FloatArray, float, FloatArray, FloatArray]:
    """Upstream's CreateResourceStats for valid nodes: (capacity, request, used average,
    used deviation) in milli-CPU, or in MiB for memory."""
    if memory:
        capacity = allocatable * MEGA_FACTOR
        req = float(request) * MEGA_FACTOR
    else:
        capacity, req = allocatable, float(request)
    return capacity, req, avg * capacity / 100, std * capacity / 100


def mu_sigma(used_avg: FloatArray, used_std: FloatArray, req: float | FloatArray,
             capacity: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Upstream's GetMuSigma: ``(used_avg + req) / capacity`` and ``used_std / capacity``,
    each clamped to 0..1; both 0 where the capacity is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.clip((used_avg + req) / capacity, 0.0, 1.0)
        sigma = np.clip(used_std / capacity, 0.0, 1.0)
    positive = capacity > 0
    return np.where(positive, mu, 0.0), np.where(positive, sigma, 0.0)


def _root(sigma: FloatArray, sensitivity: float) -> FloatArray:
    """``sigma ** (1 / sensitivity)`` as Go's math.Pow: 1/0 is +Inf (sigma < 1 -> 0), and an
    exponent of 1 or 1/2 is exact (Pow takes Sqrt for 1/2)."""
    exponent = math.inf if sensitivity == 0 else 1 / sensitivity
    if exponent == 1:
        return sigma
    if exponent == 0.5:
        return np.sqrt(sigma)
    return np.power(sigma, exponent)


def compute_score(used_avg: FloatArray, used_std: FloatArray, req: float | FloatArray, capacity: FloatArray, *,
                  margin: float, sensitivity: float) -> FloatArray:
    """Upstream's computeScore: ``(1 - (mu + sigma) / 2) * 100`` (unrounded), 0 where the
    capacity is not positive. A negative sensitivity leaves sigma as it is; a negative
    margin makes it 0."""
    req = np.maximum(req, 0.0)
    used_avg = np.maximum(np.minimum(used_avg, capacity), 0.0)
    used_std = np.maximum(np.minimum(used_std, capacity), 0.0)
    mu, sigma = mu_sigma(used_avg, used_std, req, capacity)
    if sensitivity >= 0:
        sigma = _root(sigma, sensitivity)
    sigma = np.clip(sigma * margin, 0.0, 1.0)
    risk = (mu + sigma) / 2
    return np.where(capacity > 0, (1.0 - risk) * float(MAX_NODE_SCORE), 0.0)


def risk_scores(cpu: tuple[FloatArray, FloatArray, FloatArray], memory: tuple[FloatArray, FloatArray, FloatArray],
                request: tuple[int, int], *, margin: float, sensitivity: float) -> IntArray:
    """Each node's score from ``(avg%, std%, allocatable)`` per resource (NaN avg: the
    resource is not valid) and the pod's (milli-CPU, bytes) request."""
    scores = []
    valid = []
    for (avg, std, alloc), req, is_memory in ((cpu, request[0], False), (memory, request[1], True)):
        ok = ~np.isnan(avg)
        capacity, r, used_avg, used_std = resource_stats(np.where(ok, avg, 0.0), np.where(ok, std, 0.0), alloc, req,
                                                         memory=is_memory)
        s = compute_score(used_avg, used_std, r, capacity, margin=margin, sensitivity=sensitivity)
        scores.append(np.where(ok, s, 0.0))
        valid.append(ok)
    both = valid[0] & valid[1]
    total = np.where(both, np.minimum(scores[0], scores[1]), np.maximum(scores[0], scores[1]))
    return np.clip(go_round(total), 0, MAX_NODE_SCORE).astype(np.int64)


@dataclass(frozen=True, slots=True)
class _NodeRisk:
    """What ``compute_score`` derives from one resource's metrics and the nodes alone,
    over every row: only ``mu`` depends on the pod."""

    valid: BoolArray
    capacity: FloatArray
    used_avg: FloatArray
    """Clamped to 0..capacity."""
    sigma: FloatArray
    """After the sensitivity's root and the margin, clamped to 0..1."""
    positive: BoolArray


def _node_risk(avg: FloatArray, std: FloatArray, alloc: FloatArray, *, memory: bool, margin: float,
               sensitivity: float) -> _NodeRisk:
    ok = ~np.isnan(avg)
    capacity, _, used_avg, used_std = resource_stats(np.where(ok, avg, 0.0), np.where(ok, std, 0.0), alloc, 0,
                                                     memory=memory)
    used_avg = np.maximum(np.minimum(used_avg, capacity), 0.0)
    used_std = np.maximum(np.minimum(used_std, capacity), 0.0)
    _, sigma = mu_sigma(used_avg, used_std, 0.0, capacity)
    if sensitivity >= 0:
        sigma = _root(sigma, sensitivity)
    return _NodeRisk(ok, capacity, used_avg, np.clip(sigma * margin, 0.0, 1.0), capacity > 0)


class LoadVariationRiskBalancing:
    """Scores as ``risk_scores`` does, keeping what it derives from the sample and the nodes
    between decisions (until ``LoadMetrics.version`` or the nodes change): per pod, only
    the mean's share of the risk is computed."""

    name: Final = NAME

    def __init__(self, args: LoadVariationRiskBalancingArgs) -> None:
        self.args = args
        self.metrics_source: MetricsSource = args.source
        """Where ``vecsched run`` fetches the node metrics from."""
        self._requested: PodMemo[tuple[int, int]] = PodMemo(resource_requested)
        self._derived: tuple[tuple[int, int, int], tuple[_NodeRisk, _NodeRisk]] | None = None

    def _node_risks(self, load: LoadMetrics, table: NodeTable) -> tuple[_NodeRisk, _NodeRisk]:
        key = (load.version, table.node_generation, table.n)
        if self._derived is None or self._derived[0] != key:
            n = table.n
            alloc = table.allocatable[:n]
            risks = tuple(
                _node_risk(avg[:n], std[:n], alloc[:, table.resource_index[r]].astype(np.float64), memory=r == MEMORY,
                           margin=self.args.margin, sensitivity=self.args.sensitivity)
                for r, avg, std in ((CPU, load.cpu, load.cpu_std), (MEMORY, load.memory, load.memory_std)))
            self._derived = key, (risks[0], risks[1])
        return self._derived[1]

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        cpu, memory = self._node_risks(LoadMetrics.of(table), table)
        request = self._requested(pod)
        scores = []
        for risk, req in ((cpu, max(float(request[0]), 0.0)), (memory, max(float(request[1]) * MEGA_FACTOR, 0.0))):
            with np.errstate(divide="ignore", invalid="ignore"):
                mu = np.clip((risk.used_avg + req) / risk.capacity, 0.0, 1.0)
            s = (1.0 - (mu + risk.sigma) / 2) * float(MAX_NODE_SCORE)
            scores.append(np.where(risk.valid & risk.positive, s, 0.0))
        both = cpu.valid & memory.valid
        total = np.where(both, np.minimum(scores[0], scores[1]), np.maximum(scores[0], scores[1]))
        return np.clip(go_round(total), 0, MAX_NODE_SCORE).astype(np.int64)[nodes]


def new(args: Mapping[str, Any], path: str) -> LoadVariationRiskBalancing:
    return LoadVariationRiskBalancing(parse_args(args, path))


_: type[ScorePlugin] = LoadVariationRiskBalancing
