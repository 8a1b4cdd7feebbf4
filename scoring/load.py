"""Measured node load: load-watcher's ``WatcherMetrics``, and where the load plugins read it from.

Load-aware plugins (``TargetLoadPacking``, ``LoadVariationRiskBalancing``,
``LoadAware``) score nodes by what they *use*, not what their pods request.
They share one sample of node metrics in load-watcher's ``WatcherMetrics``
form (``github.com/paypal/load-watcher/pkg/watcher``), which is also the JSON
that ``vecsched explain --node-metrics`` and ``vecsched sim --node-metrics``
read and load-watcher's ``/watcher`` endpoint serves::

    {"timestamp": 1700000000,
     "window": {"duration": "15m", "start": 1699999100, "end": 1700000000},
     "source": "Prometheus",
     "data": {"NodeMetricsMap": {
         "node-1": {"metrics": [
             {"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "AVG", "rollup": "15m", "value": 31.5},
             {"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "STD", "rollup": "15m", "value": 4.2},
             {"name": "instance:node_memory_utilisation:ratio", "type": "Memory", "operator": "AVG",
              "rollup": "15m", "value": 55.0}]}}}}

Values are percent (0..100) of the node's capacity; ``timestamp`` and the
window's ``start``/``end`` are Unix seconds. ``MetricsSource`` is where a live
scheduler fetches such samples: scheduler-plugins' ``TrimaranSpec``
(``watcherAddress``, ``metricProvider``) plus the label that names the node in
Prometheus' series, so that a Trimaran configuration works unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.args import ArgsError, boolean, known_fields, mapping, string
from scoring.safe_input import (PATH_CHARS, PROBLEM_CHARS, QUOTE_CHARS, InputError, check_tree, clip, loads_json,
                                 one_line, quote, read_text)

__all__ = [
    "CPU",
    "MEMORY",
    "AVERAGE",
    "STD",
    "LATEST",
    "PROMETHEUS",
    "MAX_METRICS_BYTES",
    "LOAD_PLUGINS",
    "PROVIDER_TYPES",
    "LoadMetricsError",
    "Metric",
    "Window",
    "WatcherMetrics",
    "watcher_metrics_from_json",
    "watcher_metrics_to_json",
    "read_watcher_metrics",
    "MetricsSource",
    "SOURCE_FIELDS",
    "metrics_source_from_args",
]

# load-watcher's constants (pkg/watcher/watcher.go).
CPU: Final = "CPU"
MEMORY: Final = "Memory"
AVERAGE: Final = "AVG"
STD: Final = "STD"
LATEST: Final = "Latest"

LOAD_PLUGINS: Final = ("TargetLoadPacking", "LoadVariationRiskBalancing", "LoadAware")
"""The plugins that read node metrics."""
MAX_METRICS_BYTES: Final = 64 * 1024 * 1024
"""Largest node-metrics file read: a 5,000-node cluster's sample with ten metrics per node is
about 5 MB; 64 MiB leaves a factor of ten and still refuses a file that would exhaust memory."""
PROMETHEUS: Final = "Prometheus"
PROVIDER_TYPES: Final = ("KubernetesMetricsServer", "Prometheus", "SignalFx")
"""What scheduler-plugins accepts as ``metricProvider.type``; vecsched fetches from Prometheus only."""


class LoadMetricsError(ValueError):
    """A WatcherMetrics document vecsched cannot read: ``what`` names it (a file, a URL), ``path`` the field."""

    def __init__(self, what: str, path: str, problem: str) -> None:
        short = f"{one_line(what, PATH_CHARS)}: {one_line(path, PATH_CHARS)}" if path else one_line(what, PATH_CHARS)
        super().__init__(f"{short}: {one_line(problem, PROBLEM_CHARS)}")
        self.what = what
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    """The metric's name at the provider (a Prometheus series or recording rule)."""
    type: str
    """``CPU`` or ``Memory`` (others are read and ignored)."""
    operator: str
    """``AVG``, ``STD``, ``Latest`` or empty."""
    rollup: str
    value: float
    """Percent of the node's capacity."""


@dataclass(frozen=True, slots=True)
class Window:
    duration: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class WatcherMetrics:
    timestamp: int
    window: Window
    source: str
    nodes: Mapping[str, tuple[Metric, ...]] = field(default_factory=dict)
    """Metrics per node name (``data.NodeMetricsMap``)."""


def _num(v: Any, what: str, path: str, *, integral: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise LoadMetricsError(what, path, f"expected a number, got {quote(v)}")
    if not math.isfinite(v):
        raise LoadMetricsError(what, path, f"expected a finite number, got {quote(v)}")
    if integral and v != int(v):
        raise LoadMetricsError(what, path, f"expected whole Unix seconds, got {quote(v)}")
    return float(v)


def _str(v: Any, what: str, path: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise LoadMetricsError(what, path, f"expected a string, got {quote(v)}")
    return v


def _obj(v: Any, what: str, path: str) -> Mapping[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise LoadMetricsError(what, path, f"expected an object, got {type(v).__name__}")
    return v


def watcher_metrics_from_json(obj: Any, *, what: str) -> WatcherMetrics:
    """Read a WatcherMetrics document; ``LoadMetricsError`` names ``what`` and the field when it is invalid.

    As Go's decoder does, missing fields read as zero values and unknown fields
    are ignored (load-watcher adds ``tags`` and ``metadata`` per node).
    """
    try:
        check_tree(obj)
    except InputError as e:
        raise LoadMetricsError(what, e.path, e.problem) from None
    top = _obj(obj, what, "")
    window = _obj(top.get("window"), what, "window")
    data = _obj(top.get("data"), what, "data")
    per_node = _obj(data.get("NodeMetricsMap"), what, "data.NodeMetricsMap")
    nodes: dict[str, tuple[Metric, ...]] = {}
    for name, entry in per_node.items():
        base = f"data.NodeMetricsMap.{name if len(name) <= QUOTE_CHARS else quote(name)}"
        raw = _obj(entry, what, base).get("metrics")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise LoadMetricsError(what, f"{base}.metrics", f"expected a list, got {type(raw).__name__}")
        metrics = []
        for i, m in enumerate(raw):
            p = f"{base}.metrics[{i}]"
            m = _obj(m, what, p)
            metrics.append(Metric(
                name=_str(m.get("name"), what, f"{p}.name"),
                type=_str(m.get("type"), what, f"{p}.type"),
                operator=_str(m.get("operator"), what, f"{p}.operator"),
                rollup=_str(m.get("rollup"), what, f"{p}.rollup"),
                value=_num(m.get("value", 0), what, f"{p}.value"),
            ))
        nodes[str(name)] = tuple(metrics)
    return WatcherMetrics(
        timestamp=int(_num(top.get("timestamp", 0), what, "timestamp", integral=True)),
        window=Window(
            duration=_str(window.get("duration"), what, "window.duration"),
            start=int(_num(window.get("start", 0), what, "window.start", integral=True)),
            end=int(_num(window.get("end", 0), what, "window.end", integral=True)),
        ),
        source=_str(top.get("source"), what, "source"),
        nodes=nodes,
    )


def watcher_metrics_to_json(wm: WatcherMetrics) -> dict[str, Any]:
    """The WatcherMetrics document, as load-watcher's ``/watcher`` serves it."""
    return {
        "timestamp": wm.timestamp,
        "window": {"duration": wm.window.duration, "start": wm.window.start, "end": wm.window.end},
        "source": wm.source,
        "data": {"NodeMetricsMap": {
            node: {"metrics": [
                {"name": m.name, "type": m.type, "operator": m.operator, **({"rollup": m.rollup} if m.rollup else {}),
                 "value": m.value}
                for m in metrics]}
            for node, metrics in wm.nodes.items()}},
    }


def read_watcher_metrics(path: str, *, what: str | None = None) -> WatcherMetrics:
    """Read a WatcherMetrics JSON file (``LoadMetricsError`` naming ``what``, else the path, when it cannot)."""
    what = what or path
    try:
        doc = loads_json(read_text(path, max_bytes=MAX_METRICS_BYTES), max_bytes=None)
    except OSError as e:
        raise LoadMetricsError(what, "", f"cannot read: {e.strerror or type(e).__name__}") from None
    except InputError as e:
        raise LoadMetricsError(what, e.path, e.problem) from None
    except json.JSONDecodeError as e:
        raise LoadMetricsError(what, "", f"not valid JSON: {clip(str(e))}") from None
    return watcher_metrics_from_json(doc, what=what)


@dataclass(frozen=True, slots=True)
class MetricsSource:
    """Where a live scheduler fetches node metrics from: a load-watcher service, or Prometheus."""

    watcher_address: str = ""
    """load-watcher's base URL (``http://load-watcher:2020``); when set, ``metricProvider`` is not used."""
    provider_type: str = PROMETHEUS
    address: str = ""
    """Prometheus' base URL (``http://prometheus-k8s.monitoring:9090``)."""
    token: str = ""
    """A bearer token sent to Prometheus, if any."""
    insecure_skip_verify: bool = False
    node_label: str = "instance"
    """The label whose value is the node's name in the utilisation series."""


SOURCE_FIELDS: Final = ("watcherAddress", "metricProvider")
"""The args every load plugin takes besides its own (scheduler-plugins' TrimaranSpec)."""


def metrics_source_from_args(args: Mapping[str, Any], path: str) -> MetricsSource:
    """The ``watcherAddress`` and ``metricProvider`` fields of a load plugin's args (``ArgsError`` if invalid).

    ``metricProvider.type`` accepts scheduler-plugins' names and rejects the
    ones vecsched cannot fetch from, naming the alternatives; it defaults to
    ``Prometheus``. ``metricProvider.nodeLabel`` (vecsched's) names the node in
    the series, ``instance`` by default.
    """
    watcher = string(args.get("watcherAddress", ""), f"{path}.watcherAddress") if args.get("watcherAddress") is not None else ""
    mp_path = f"{path}.metricProvider"
    mp = mapping(args.get("metricProvider"), mp_path)
    known_fields(mp, ("type", "address", "token", "insecureSkipVerify", "nodeLabel"), mp_path)
    kind = string(mp.get("type", PROMETHEUS), f"{mp_path}.type", choices=PROVIDER_TYPES)
    if kind != PROMETHEUS and not watcher:
        raise ArgsError(f"{mp_path}.type", f"vecsched reads node metrics from Prometheus or from a load-watcher "
                                            f"service (watcherAddress), not from {kind}")
    node_label = string(mp.get("nodeLabel", "instance"), f"{mp_path}.nodeLabel")
    if not node_label:
        raise ArgsError(f"{mp_path}.nodeLabel", "must not be empty")
    return MetricsSource(
        watcher_address=watcher,
        provider_type=kind,
        address=string(mp.get("address", ""), f"{mp_path}.address"),
        token=string(mp.get("token", ""), f"{mp_path}.token"),
        insecure_skip_verify=boolean(mp.get("insecureSkipVerify", False), f"{mp_path}.insecureSkipVerify"),
        node_label=node_label,
    )
