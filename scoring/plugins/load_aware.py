"""LoadAware: keep pods off nodes that are busy *now*, and prefer the ones with the
most room left once the pods placed since the last sample are accounted for.

vecsched's own plugin, after the idea of Koordinator's LoadAwareScheduling, reading
the same node-metrics sample as the Trimaran plugins (``node_load.LoadMetrics``).

Filter. A node is rejected when its measured utilisation of a resource (the
metric's average, else its latest value, in percent of the node's capacity) is
above ``usageThresholds`` for that resource (default cpu 65, memory 95), with one
reason per resource: ``node(s) had cpu usage above the threshold 65%``. When
``filterExpiredNodeMetrics`` is true (the default) and the sample is older than
``metricsExpirationSeconds`` (default 180), every node that has metrics is
rejected instead -- ``node(s) had node metrics older than 180s`` -- because its
numbers no longer say how busy it is; set it to false to keep scheduling on the
last sample during a metrics outage. A node with no metrics at all passes (a
node not scraped yet must stay schedulable); so does every node before the
first sample, and a DaemonSet's pod (its node is chosen for it; refusing it
would leave the node without its daemon). These reasons are unresolvable by
preemption: evicting pods does not lower the measured usage before the next
sample, so the preemption dry run keeps this filter's verdict.

Score. For each resource in ``resourceWeights`` (default cpu 1, memory 1), with
the node's allocatable ``A``::

    used  = measured% * capacity / 100 + recent + pod
    score = floor((A - used) * 100 / A), clamped to 0..100

where ``recent`` is the estimated usage of the pods placed on the node since the
sample (those ``LoadMetrics`` counts as recent) and ``pod`` the pod's own. A
container is estimated at its limit when it sets one, else at its request times
``estimatedScalingFactors`` percent (default cpu 85, memory 70, rounded half
away from zero), else at the scheduler's default request (100m CPU, 200 MiB);
restartable init containers (sidecars) count as containers, and the pod adds its
overhead. The node's score is the weighted mean of its resources' scores,
rounded down. A node without metrics, and a resource without a metric, scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, boolean, integer, known_fields, mapping
from scoring.framework import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    NodeOnlyFilter,
    Reason,
    ScorePlugin,
    score_source,
)
from scoring.load import SOURCE_FIELDS, MetricsSource, metrics_source_from_args
from scoring.objects import CPU, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, MEMORY, PodInfo
from scoring.plugins.node_load import (
    FloatArray,
    LoadMetrics,
    PodMemo,
    Predictor,
    container_amounts,
    overhead_amounts,
)
from scoring.table import IntArray, NodeTable

__all__ = [
    "NAME",
    "RESOURCES",
    "DEFAULT_USAGE_THRESHOLDS",
    "DEFAULT_RESOURCE_WEIGHTS",
    "DEFAULT_ESTIMATED_SCALING_FACTORS",
    "DEFAULT_METRICS_EXPIRATION_SECONDS",
    "LoadAwareArgs",
    "LoadAware",
    "parse_args",
    "usage_reason",
    "expired_reason",
    "estimate_pod_usage",
    "free_scores",
    "new",
]

NAME: Final = "LoadAware"
RESOURCES: Final = (CPU, MEMORY)
"""What node metrics measure, so what LoadAware can filter and score on."""
DEFAULT_USAGE_THRESHOLDS: Final = {CPU: 65, MEMORY: 95}
DEFAULT_RESOURCE_WEIGHTS: Final = {CPU: 1, MEMORY: 1}
DEFAULT_ESTIMATED_SCALING_FACTORS: Final = {CPU: 85, MEMORY: 70}
"""Requests overstate usage: a container without a limit is expected to use this percent of its request."""
DEFAULT_METRICS_EXPIRATION_SECONDS: Final = 180
"""Six refresh periods of 30 s: a sample this old means the source has been failing for minutes."""
_DEFAULT_REQUEST: Final = {CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST}


@dataclass(frozen=True, slots=True)
class LoadAwareArgs:
    usage_thresholds: Mapping[str, int]
    """Percent per resource above which a node is filtered; a resource not named is not checked."""
    metrics_expiration_seconds: int
    filter_expired_node_metrics: bool
    resource_weights: Mapping[str, int]
    estimated_scaling_factors: Mapping[str, int]
    source: MetricsSource


def _percentages(v: Any, path: str, *, lo: int, hi: int) -> dict[str, int]:
    out = {}
    for name, amount in mapping(v, path).items():
        if name not in RESOURCES:
            raise ArgsError(f"{path}.{name}", f"node metrics measure {' and '.join(RESOURCES)} only")
        out[name] = integer(amount, f"{path}.{name}", lo=lo, hi=hi)
    return out


def parse_args(args: Mapping[str, Any], path: str) -> LoadAwareArgs:
    """LoadAware's args. A map given replaces its default (``usageThresholds: {cpu: 80}``
    checks cpu only; ``{}`` checks nothing), except ``estimatedScalingFactors``, whose
    resources not named keep their defaults."""
    args = mapping(args, path)
    fields = ("usageThresholds", "metricsExpirationSeconds", "filterExpiredNodeMetrics", "resourceWeights",
              "estimatedScalingFactors")
    known_fields(args, (*fields, *SOURCE_FIELDS), path)

    def at(f: str) -> str:
        return f"{path}.{f}" if path else f

    thresholds = dict(DEFAULT_USAGE_THRESHOLDS)
    if args.get("usageThresholds") is not None:
        thresholds = _percentages(args["usageThresholds"], at("usageThresholds"), lo=0, hi=100)
    weights = dict(DEFAULT_RESOURCE_WEIGHTS)
    if args.get("resourceWeights") is not None:
        weights = _percentages(args["resourceWeights"], at("resourceWeights"), lo=1, hi=100)
        if not weights:
            raise ArgsError(at("resourceWeights"), f"name at least one of {', '.join(RESOURCES)}")
    factors = {**DEFAULT_ESTIMATED_SCALING_FACTORS,
               **_percentages(args.get("estimatedScalingFactors"), at("estimatedScalingFactors"), lo=1, hi=100)}
    expiration = args.get("metricsExpirationSeconds")
    expiration = (DEFAULT_METRICS_EXPIRATION_SECONDS if expiration is None
                  else integer(expiration, at("metricsExpirationSeconds"), lo=1))
    filter_expired = args.get("filterExpiredNodeMetrics")
    filter_expired = True if filter_expired is None else boolean(filter_expired, at("filterExpiredNodeMetrics"))
    return LoadAwareArgs(thresholds, expiration, filter_expired, weights, factors, metrics_source_from_args(args, path))


def usage_reason(resource: str, threshold: int) -> str:
    return f"node(s) had {resource} usage above the threshold {threshold}%"


def expired_reason(seconds: int) -> str:
    return f"node(s) had node metrics older than {seconds}s"


def estimate_pod_usage(pod: PodInfo, resource: str, factor: int) -> int:
    """The pod's estimated use of ``resource`` (milli-CPU or bytes; see the module docstring)."""
    total = 0
    containers = container_amounts(pod)
    containers += [c for c in container_amounts(pod, "initContainers") if c.restartable]
    for c in containers:
        if resource in c.limits:
            total += c.limits[resource]
        elif resource in c.requests:
            total += (2 * c.requests[resource] * factor + 100) // 200  # * factor / 100, half away from zero
        else:
            total += _DEFAULT_REQUEST[resource]
    return total + overhead_amounts(pod).get(resource, 0)


def free_scores(measured: FloatArray, capacity: FloatArray, allocatable: FloatArray, recent: FloatArray,
                pod: float) -> IntArray:
    """One resource's score per node: ``floor((A - used) * 100 / A)`` clamped to 0..100,
    with ``used = measured% * capacity / 100 + recent + pod``; 0 where the measurement is
    NaN or the allocatable ``A`` is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        used = measured * capacity / 100 + recent + pod
        score = np.floor((allocatable - used) * MAX_NODE_SCORE / allocatable)
    ok = ~np.isnan(measured) & (allocatable > 0)
    return np.where(ok, np.clip(score, 0, MAX_NODE_SCORE), 0).astype(np.int64)


def _estimator(resource: str, factor: int) -> Predictor:
    return PodMemo(lambda pod: float(estimate_pod_usage(pod, resource, factor)))


def _daemonset_pod(pod: PodInfo) -> bool:
    meta = pod.raw.get("metadata") if isinstance(pod.raw, Mapping) else None
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    return any(isinstance(r, Mapping) and r.get("kind") == "DaemonSet" and r.get("controller") is True
               for r in (refs if isinstance(refs, list) else ()))


class LoadAware(NodeOnlyFilter):
    name: Final = NAME

    def __init__(self, args: LoadAwareArgs) -> None:
        self.args = args
        self.metrics_source: MetricsSource = args.source
        """Where ``vecsched run`` fetches the node metrics from."""
        self._estimators = [(r, w, (NAME, r, args.estimated_scaling_factors[r]),
                             _estimator(r, args.estimated_scaling_factors[r]))
                            for r, w in args.resource_weights.items()]
        """Per scored resource: its weight, and the key and function of its estimate for
        ``LoadMetrics.recent_usage``."""
        self._total_weight = sum(args.resource_weights.values())
        self._expired_reason = expired_reason(args.metrics_expiration_seconds)
        self._usage_reasons = {r: usage_reason(r, t) for r, t in args.usage_thresholds.items()}

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        load = LoadMetrics.of(table)
        if load.sample is None or _daemonset_pod(pod):
            return None
        n = table.n
        age = load.age()
        if self.args.filter_expired_node_metrics and age is not None and age > self.args.metrics_expiration_seconds:
            stale = load.has_metrics[:n].copy()
            return [Reason(self._expired_reason, stale, unresolvable=True)] if stale.any() else None
        reasons = []
        for resource, threshold in self.args.usage_thresholds.items():
            measured = load.cpu[:n] if resource == CPU else load.memory[:n]
            over = measured > threshold  # NaN (no metric) is never above
            if over.any():
                reasons.append(Reason(self._usage_reasons[resource], over, unresolvable=True))
        return reasons

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        load = LoadMetrics.of(table)
        rows, take = score_source(nodes, table.n)
        total = np.zeros(table.n if take is not None else len(nodes), np.int64)
        for resource, weight, key, predict in self._estimators:
            recent = load.recent_usage(key, predict)
            measured, capacity = ((load.cpu, load.cpu_capacity) if resource == CPU
                                  else (load.memory, load.memory_capacity))
            alloc = table.allocatable[rows, table.resource_index[resource]].astype(np.float64)
            total += weight * free_scores(measured[rows], capacity[rows], alloc, recent[rows], predict(pod))
        scores = np.where(load.has_metrics[rows], total // self._total_weight, 0)
        return scores if take is None else scores[take]


def new(args: Mapping[str, Any], path: str) -> LoadAware:
    return LoadAware(parse_args(args, path))


_: tuple[type[FilterPlugin], type[ScorePlugin]] = (LoadAware, LoadAware)
