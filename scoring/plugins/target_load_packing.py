"""TargetLoadPacking: pack pods onto nodes until their measured CPU reaches a target
(scheduler-plugins' ``pkg/trimaran/targetloadpacking``), a best-fit bin packing on
real usage rather than requests.

A node's predicted CPU utilisation is, in percent of its CPU **capacity**
(``status.capacity``, as upstream; allocatable where the node reports none)::

    predicted = 100 * (measured% / 100 * capacity + pod + recent) / capacity

with ``measured%`` the node's CPU metric (the last one with operator AVG or
Latest), ``pod`` the pod's predicted milli-CPU and ``recent`` that of the pods
placed on the node since the metrics' window (see ``node_load``). A container is
predicted at its CPU limit, else its request times ``defaultRequestsMultiplier``
(rounded half away from zero, as Go's ``math.Round``), else ``defaultRequests``'
cpu; the pod adds its overhead. With the target ``T`` (``targetUtilization``)::

    predicted <= T:        score = round((100 - T) * predicted / T + T)     T..100
    T < predicted <= 100:  score = round(T * (100 - predicted) / (100 - T))  0..T
    predicted > 100:       score = 0

so nodes just under the target are preferred, then emptier ones, then hotter
ones. A node without metrics, or without a CPU metric, scores 0 (upstream's
MinNodeScore). Scores are final: there is no normalisation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, integer, known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin, score_source
from scoring.load import SOURCE_FIELDS, MetricsSource, metrics_source_from_args
from scoring.objects import CPU, PodInfo
from scoring.plugins.node_load import (
    FloatArray,
    LoadMetrics,
    PodMemo,
    container_amounts,
    go_round,
    go_round_int,
    overhead_amounts,
)
from scoring.quantity import QuantityError, milli_value, value
from scoring.table import IntArray, NodeTable
from scoring.safe_input import quote

__all__ = [
    "NAME",
    "DEFAULT_TARGET_UTILIZATION",
    "DEFAULT_REQUESTS_MILLI_CORES",
    "DEFAULT_REQUESTS_MULTIPLIER",
    "TargetLoadPackingArgs",
    "TargetLoadPacking",
    "parse_args",
    "predict_utilisation",
    "predict_pod_cpu",
    "target_load_scores",
    "new",
]

NAME: Final = "TargetLoadPacking"
DEFAULT_TARGET_UTILIZATION: Final = 40
"""Upstream's DefaultTargetUtilizationPercent ("recommended to keep -10 than desired limit")."""
DEFAULT_REQUESTS_MILLI_CORES: Final = 1000
"""Upstream's DefaultRequestsMilliCores: one core for a container with neither limit nor request."""
DEFAULT_REQUESTS_MULTIPLIER: Final = "1.5"
"""Upstream's DefaultRequestsMultiplier: a burstable container is predicted at 1.5 x its request."""

# strconv.ParseFloat's decimal syntax (no spaces, no "_" outside a base prefix); hex floats,
# infinities and NaN are refused below, as no useful multiplier is written that way.
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class TargetLoadPackingArgs:
    target_utilization: int
    """Percent of CPU capacity to fill a node to (1..100)."""
    default_requests_milli: int
    """Milli-CPU predicted for a container with neither CPU limit nor request."""
    multiplier: float
    """A CPU request is predicted at this multiple when the container has no CPU limit."""
    source: MetricsSource


def _multiplier(v: Any, path: str) -> float:
    if not isinstance(v, str):
        raise ArgsError(path, f'expected a string such as "1.5", got {quote(v)}')
    if _GO_FLOAT.fullmatch(v) is None:
        raise ArgsError(path, f"unable to parse {quote(v)} as a number")
    f = float(v)
    if not math.isfinite(f) or f < 0:
        raise ArgsError(path, f"must be a finite number >= 0, got {quote(v)}")
    return f


def parse_args(args: Mapping[str, Any], path: str) -> TargetLoadPackingArgs:
    """Upstream's TargetLoadPackingArgs with its v1 defaults: ``targetUtilization`` unset or
    <= 0 is 40 (vecsched also refuses more than 100, which would give scores above 100);
    ``defaultRequests`` unset is ``{cpu: 1000m}`` (set without cpu: 0, as upstream reads
    it); ``defaultRequestsMultiplier`` is a string, ``"1.5"`` by default."""
    args = mapping(args, path)
    known_fields(args, ("targetUtilization", "defaultRequests", "defaultRequestsMultiplier", *SOURCE_FIELDS), path)

    def at(f: str) -> str:
        return f"{path}.{f}" if path else f

    target = args.get("targetUtilization")
    target = DEFAULT_TARGET_UTILIZATION if target is None else integer(target, at("targetUtilization"), hi=MAX_NODE_SCORE)
    if target <= 0:
        target = DEFAULT_TARGET_UTILIZATION
    default_milli = DEFAULT_REQUESTS_MILLI_CORES
    if args.get("defaultRequests") is not None:
        requests = mapping(args["defaultRequests"], at("defaultRequests"))
        parsed: dict[str, int] = {}
        for name, q in requests.items():
            try:
                parsed[name] = milli_value(q) if name == CPU else value(q)
            except QuantityError as e:
                raise ArgsError(at(f"defaultRequests.{name}"), str(e)) from None
            if parsed[name] < 0:
                raise ArgsError(at(f"defaultRequests.{name}"), f"must not be negative, got {quote(q)}")
        default_milli = parsed.get(CPU, 0)
    raw = args.get("defaultRequestsMultiplier")
    multiplier = _multiplier(DEFAULT_REQUESTS_MULTIPLIER if raw is None else raw, at("defaultRequestsMultiplier"))
    return TargetLoadPackingArgs(target, default_milli, multiplier, metrics_source_from_args(args, path))


def predict_utilisation(limits: Mapping[str, int], requests: Mapping[str, int], *, multiplier: float,
                        default_milli: int) -> int:
    """Upstream's PredictUtilisation for one container: milli-CPU of its limit when set,
    else ``round(request * multiplier)`` when a request is set, else ``default_milli``."""
    if CPU in limits:
        return limits[CPU]
    if CPU in requests:
        return go_round_int(float(requests[CPU]) * multiplier)
    return default_milli


def predict_pod_cpu(pod: PodInfo, *, multiplier: float, default_milli: int) -> int:
    """The pod's predicted milli-CPU: its (app) containers' predictions plus its overhead."""
    total = sum(predict_utilisation(c.limits, c.requests, multiplier=multiplier, default_milli=default_milli)
                for c in container_amounts(pod))
    return total + overhead_amounts(pod).get(CPU, 0)


def target_load_scores(measured: FloatArray, capacity: FloatArray, pod_milli: float, recent_milli: FloatArray,
                       target: int) -> IntArray:
    """The score of each node (see the module docstring), in Go's operation order so
    that ties round as upstream's do. ``measured`` is percent (NaN: no CPU metric ->
    0), ``capacity`` and ``recent_milli`` milli-CPU per node. A broken negative
    metric could take upstream's formula below 0: scores are clamped to 0..100."""
    t = float(target)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = (measured / 100) * capacity
        predicted = np.where(capacity != 0, 100 * (util + pod_milli + recent_milli) / capacity, 0.0)
        # Each branch's float is rounded once, as upstream rounds the one it takes.
        raw = np.where(predicted > t, t * (100 - predicted) / (100 - t), (100 - t) * predicted / t + t)
    score = np.where((predicted > 100) | np.isnan(measured), 0.0, go_round(raw))
    return np.clip(score, 0, MAX_NODE_SCORE).astype(np.int64)


class TargetLoadPacking:
    name: Final = NAME

    def __init__(self, args: TargetLoadPackingArgs) -> None:
        self.args = args
        self.metrics_source: MetricsSource = args.source
        """Where ``vecsched run`` fetches the node metrics from."""
        self._key = (NAME, args.multiplier, args.default_requests_milli)
        self.predict: PodMemo[float] = PodMemo(self._predict)
        """The pod's predicted milli-CPU under this plugin's args (remembered per pod)."""

    def _predict(self, pod: PodInfo) -> float:
        return float(predict_pod_cpu(pod, multiplier=self.args.multiplier,
                                     default_milli=self.args.default_requests_milli))

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        load = LoadMetrics.of(table)
        recent = load.recent_usage(self._key, self.predict)
        rows, take = score_source(nodes, table.n)
        scores = target_load_scores(load.cpu_packing[rows], load.cpu_capacity[rows], self.predict(pod), recent[rows],
                                    self.args.target_utilization)
        return scores if take is None else scores[take]


def new(args: Mapping[str, Any], path: str) -> TargetLoadPacking:
    return TargetLoadPacking(parse_args(args, path))


_: type[ScorePlugin] = TargetLoadPacking
