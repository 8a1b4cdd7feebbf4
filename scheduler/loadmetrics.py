"""Where a live scheduler's node metrics come from, and how they are kept fresh.

The load plugins (``TargetLoadPacking``, ``LoadVariationRiskBalancing``,
``LoadAware``) score nodes by one shared sample of measured utilisation, the
table's ``LoadMetrics``. ``vecsched run`` refreshes that sample in a background
task, never inside a scheduling cycle, from one of three places:

* **Prometheus** (``metricProvider.address``): the instant queries
  load-watcher's Prometheus provider issues --
  ``avg_over_time(instance:node_cpu:ratio[15m])``, ``stddev_over_time`` of
  the same, and both of ``instance:node_memory_utilisation:ratio`` -- read
  into percent (x100), keyed by the ``instance`` label (or
  ``metricProvider.nodeLabel``). load-watcher's ``GetLatestWatcherMetrics``
  falls back from its 15-minute window to the 10- and 5-minute ones when it
  holds no sample of the wider one, which happens when that window's fetch
  failed; so a 15m fetch that fails (a query timeout or sample limit on a
  large Prometheus) is retried over 10m, then 5m. An empty answer is an
  answer: a narrower window of the same instant holds no more series.
* **load-watcher as a service** (``watcherAddress``): ``GET <address>/watcher``,
  load-watcher's WatcherMetrics JSON, as scheduler-plugins' service client.
* **a file** (``vecsched run --node-metrics FILE``): the same JSON, read again
  at every refresh.

A failed refresh keeps the last good sample and says so: a log line with the
cause, ``vecsched_load_metrics_refresh_errors_total{source}``, and
``vecsched_load_metrics_age_seconds`` growing until a refresh succeeds. A
Prometheus without one of the two recording rules answers with no series; rather
than scoring on silent zeros, vecsched logs once which rule to install (the
sample then lacks that resource, and the plugins treat it as missing).

Errors::

    FetchError            a sample could not be fetched (the cause in one line; the last sample stays)
    ConfigError           (scheduler.config) load plugins disagree on their source, or name none
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import aiohttp

from scheduler.config import ConfigError, SchedulerConfig
from scheduler.metrics import Metrics
from scoring.framework import Profile
from scoring.load import (AVERAGE, CPU, MAX_METRICS_BYTES, MEMORY, PROMETHEUS, STD, LoadMetricsError, Metric,
                          MetricsSource, WatcherMetrics, Window, read_watcher_metrics, watcher_metrics_from_json)
from scoring.plugins.node_load import LoadMetrics
from scoring.table import NodeTable
from scoring.safe_input import QUOTE_CHARS, InputError, clip, loads_json, quote

__all__ = [
    "CPU_RULE",
    "MEMORY_RULE",
    "RULES_FILE",
    "WINDOWS",
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "FetchError",
    "Fetcher",
    "PrometheusFetcher",
    "WatcherFetcher",
    "FileFetcher",
    "LoadMetricsRefresher",
    "load_fetcher",
    "prometheus_query",
    "vector_from_answer",
]

log = logging.getLogger("vecsched.loadmetrics")

# load-watcher's names (pkg/watcher/internal/metricsprovider/prometheus.go, pkg/watcher/watcher.go).
MAX_ANSWER_BYTES: Final = MAX_METRICS_BYTES
"""Largest answer read from Prometheus or load-watcher: a node-metrics file's limit (64 MiB),
ten times a 5,000-node cluster's sample."""
CPU_RULE: Final = "instance:node_cpu:ratio"
MEMORY_RULE: Final = "instance:node_memory_utilisation:ratio"
_METHODS: Final = (("avg_over_time", AVERAGE), ("stddev_over_time", STD))
_RULES: Final = ((CPU_RULE, CPU), (MEMORY_RULE, MEMORY))
WINDOWS: Final = (("15m", 15 * 60), ("10m", 10 * 60), ("5m", 5 * 60))
"""load-watcher's windows, widest first: ``GetLatestWatcherMetrics(FifteenMinutes)`` falls back in this order."""
RULES_FILE: Final = "deploy/monitoring/rules/recording-rules.yaml"
"""Where vecsched ships the two recording rules (kube-prometheus' and node-mixin's definitions)."""

DEFAULT_INTERVAL: Final = 30.0
"""Seconds between refreshes: scheduler-plugins' metricsUpdateIntervalSeconds."""
DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one HTTP request may take: load-watcher's timeout for a Prometheus query."""

# Labels of vecsched_load_metrics_refresh_errors_total.
_PROMETHEUS_SOURCE: Final = "prometheus"
_WATCHER_SOURCE: Final = "load-watcher"
_FILE_SOURCE: Final = "file"


class FetchError(Exception):
    """A sample could not be fetched: ``where`` names the source (a URL, a file), the message gives the cause."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class Fetcher(Protocol):
    """Fetches one WatcherMetrics sample. ``source`` labels the error counter, ``where`` the log lines."""

    source: str
    where: str

    async def fetch(self) -> WatcherMetrics:
        """The current sample; ``FetchError`` with the cause when there is none."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...


def _cause(e: BaseException, timeout: float) -> str:
    """A library error as one line."""
    if isinstance(e, asyncio.TimeoutError):
        return f"no answer within {timeout:g}s"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text


class _Http:
    """One lazily opened aiohttp session (created in the running loop, closed by ``close``)."""

    def __init__(self, *, timeout: float, headers: Mapping[str, str] | None = None) -> None:
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# ---- Prometheus ------------------------------------------------------------------------------


def prometheus_query(method: str, rule: str, window: str) -> str:
    """load-watcher's all-hosts query (``buildPromQuery`` with host ``all``): ``avg_over_time(rule[15m])``."""
    return f"{method}({rule}[{window}])"


def _said(v: Any, limit: int = QUOTE_CHARS) -> str:
    """What Prometheus said (an error type, a message), as it said it when it is a short string;
    cut or quoted otherwise, so that an answer cannot flood the log line."""
    if isinstance(v, str) and len(v) <= limit:
        return v
    return f"{v[:limit]}..." if isinstance(v, str) else quote(v)


def vector_from_answer(answer: Any, *, query: str, where: str) -> list[tuple[Mapping[str, Any], float]]:
    """(labels, value) of every series of an instant-vector answer of Prometheus' ``/api/v1/query``.

    A non-finite value (``NaN`` from an empty rate, ``+Inf``) is left out: it
    says nothing about the node's load. Anything but a successful vector is a
    ``FetchError`` naming the query.
    """
    if not isinstance(answer, Mapping):
        raise FetchError(where, f"{query}: expected a JSON object, got {type(answer).__name__}")
    if answer.get("status") != "success":
        raise FetchError(where, f"{query}: {_said(answer.get('errorType') or 'error')}: "
                                f"{_said(answer.get('error') or answer.get('status'), 120)}")
    data = answer.get("data")
    if not isinstance(data, Mapping) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, Mapping) else type(data).__name__
        raise FetchError(where, f"{query}: expected an instant vector, got {_said(kind)}")
    result = data.get("result")
    if not isinstance(result, list):
        raise FetchError(where, f"{query}: data.result: expected a list, got {type(result).__name__}")
    out: list[tuple[Mapping[str, Any], float]] = []
    for i, series in enumerate(result):
        labels = series.get("metric") if isinstance(series, Mapping) else None
        sample = series.get("value") if isinstance(series, Mapping) else None
        if not isinstance(labels, Mapping) or not isinstance(sample, list) or len(sample) != 2:
            raise FetchError(where, f"{query}: data.result[{i}]: expected {{metric, value: [time, \"number\"]}}")
        try:
            value = float(sample[1])
        except (TypeError, ValueError, OverflowError):
            raise FetchError(where, f"{query}: data.result[{i}].value: not a number: {quote(sample[1])}") from None
        if math.isfinite(value):
            out.append((labels, value))
    return out


class PrometheusFetcher:
    """load-watcher's Prometheus provider: four instant queries, the first window that answers."""

    source: str = _PROMETHEUS_SOURCE

    def __init__(self, metrics_source: MetricsSource, *, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        if not metrics_source.address:
            raise ValueError("metricProvider.address is empty: give Prometheus' URL")
        self.metrics_source = metrics_source
        self.where = metrics_source.address.rstrip("/")
        self.clock = clock
        headers = {"Authorization": f"Bearer {metrics_source.token}"} if metrics_source.token else {}
        self._http = _Http(timeout=timeout, headers=headers)
        self._missing: set[str] = set()
        """Rules reported as missing (once each, until they answer again)."""
        self._unlabelled: set[str] = set()
        """Rules reported as answering without the node label (once each)."""
        self.window = WINDOWS[0][0]
        """The window of the last sample (logged when it changes)."""

    async def _query(self, query: str, at: float) -> list[tuple[Mapping[str, Any], float]]:
        url = f"{self.where}/api/v1/query"
        try:
            async with self._http.session().get(url, params={"query": query, "time": f"{at:.3f}"},
                                                ssl=not self.metrics_source.insecure_skip_verify) as r:
                text = await r.text()
                status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise FetchError(self.where, _cause(e, self._http.timeout)) from None
        try:
            answer = loads_json(text, max_bytes=MAX_ANSWER_BYTES)
        except InputError as e:
            raise FetchError(self.where, f"{query}: HTTP {status}: {e}") from None
        except ValueError:
            raise FetchError(self.where, f"{query}: HTTP {status}, not a Prometheus answer: {text[:120]!r}") from None
        if status != 200 and isinstance(answer, Mapping) and answer.get("status") == "success":
            raise FetchError(self.where, f"{query}: HTTP {status}")
        return vector_from_answer(answer, query=query, where=self.where)

    async def _window(self, window: str, at: float) -> tuple[dict[str, dict[str, list[Metric]]], set[str]]:
        """rule -> node -> metrics of one window (AVG, then STD), and the rules that answered any series."""
        label = self.metrics_source.node_label
        per_rule: dict[str, dict[str, list[Metric]]] = {rule: {} for rule, _ in _RULES}
        answered: set[str] = set()
        for method, operator in _METHODS:
            for rule, kind in _RULES:
                query = prometheus_query(method, rule, window)
                series = await self._query(query, at)
                if series:
                    answered.add(rule)
                nodes = per_rule[rule]
                unlabelled = 0
                for labels, value in series:
                    node = labels.get(label)
                    if not isinstance(node, str) or not node:
                        unlabelled += 1
                        continue
                    nodes.setdefault(node, []).append(
                        Metric(name=rule, type=kind, operator=operator, rollup=window, value=value * 100))
                if series and unlabelled == len(series) and rule not in self._unlabelled:
                    self._unlabelled.add(rule)
                    log.warning("Prometheus at %s answers %s without the label %r that names the node: set "
                                "metricProvider.nodeLabel to the label that holds the node's name",
                                self.where, rule, label)
        return per_rule, answered

    async def fetch(self) -> WatcherMetrics:
        now = self.clock()
        errors: list[tuple[str, str]] = []  # (window, cause)
        for window, seconds in WINDOWS:
            try:
                per_rule, answered = await self._window(window, now)
            except FetchError as e:
                errors.append((window, e.problem))
                continue
            if window != self.window:
                log.info("node metrics from Prometheus at %s over %s from now on%s", self.where, window,
                         "".join(f"; {w}: {c}" for w, c in errors))
                self.window = window
            self._report_missing(answered, window)
            nodes: dict[str, list[Metric]] = {}
            # Per node: CPU AVG, memory AVG, CPU STD, memory STD -- load-watcher's FetchAllHostsMetrics order.
            for operator in (AVERAGE, STD):
                for rule, _ in _RULES:
                    for node, metrics in per_rule[rule].items():
                        nodes.setdefault(node, []).extend(m for m in metrics if m.operator == operator)
            end = int(now)
            return WatcherMetrics(timestamp=end, window=Window(duration=window, start=end - seconds, end=end),
                                  source=PROMETHEUS, nodes={n: tuple(ms) for n, ms in nodes.items()})
        if len({cause for _, cause in errors}) == 1:
            raise FetchError(self.where, errors[0][1])  # one cause for every window (Prometheus is down)
        raise FetchError(self.where, "; ".join(f"{w}: {c}" for w, c in errors))

    def _report_missing(self, answered: set[str], window: str) -> None:
        for rule, kind in _RULES:
            if rule in answered:
                if rule in self._missing:
                    self._missing.discard(rule)
                    log.info("Prometheus at %s now answers %s: nodes are scored with their %s utilisation",
                             self.where, rule, kind)
            elif rule not in self._missing:
                self._missing.add(rule)
                log.warning("Prometheus at %s has no %s series over the last %s: install the recording rule %s "
                            "(from %s) and make sure node-exporter is scraped; until then the load plugins see no "
                            "%s utilisation for any node", self.where, rule, window, rule, RULES_FILE, kind)

    async def close(self) -> None:
        await self._http.close()


# ---- load-watcher, file ------------------------------------------------------------------------


class WatcherFetcher:
    """scheduler-plugins' load-watcher service client: ``GET <watcherAddress>/watcher``."""

    source: str = _WATCHER_SOURCE

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.where = f"{address.rstrip('/')}/watcher"
        self._http = _Http(timeout=timeout, headers={"Content-Type": "application/json"})

    async def fetch(self) -> WatcherMetrics:
        try:
            async with self._http.session().get(self.where) as r:
                if r.status != 200:
                    raise FetchError(self.where, f"received status code {r.status} from watcher")
                body = await r.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise FetchError(self.where, _cause(e, self._http.timeout)) from None
        try:
            return watcher_metrics_from_json(loads_json(body, max_bytes=MAX_ANSWER_BYTES), what=self.where)
        except ValueError as e:  # json.JSONDecodeError and LoadMetricsError
            raise FetchError(self.where, _json_problem(e)) from None

    async def close(self) -> None:
        await self._http.close()


def _json_problem(e: ValueError) -> str:
    if isinstance(e, LoadMetricsError):
        return f"{e.path}: {e.problem}" if e.path else e.problem
    return f"not valid JSON: {clip(str(e))}"


class FileFetcher:
    """load-watcher's WatcherMetrics JSON from a file, read again at every fetch."""

    source: str = _FILE_SOURCE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.where = str(path)

    async def fetch(self) -> WatcherMetrics:
        try:
            return await asyncio.to_thread(read_watcher_metrics, str(self.path), what=self.where)
        except LoadMetricsError as e:
            raise FetchError(self.where, _json_problem(e)) from None

    async def close(self) -> None:
        return None


# ---- which source ------------------------------------------------------------------------------


def _load_plugins(profile: Profile) -> list[tuple[str, MetricsSource]]:
    """(plugin name, its source) of every plugin of the profile that reads node metrics."""
    plugins: list[object] = [*profile.prefilters, *profile.filters, *(p for p, _ in profile.scorers),
                             *profile.reservers, *profile.postfilters, *profile.permits]
    seen: set[int] = set()
    out = []
    for p in plugins:
        src = getattr(p, "metrics_source", None)
        if id(p) in seen or not isinstance(src, MetricsSource):
            continue
        seen.add(id(p))
        out.append((str(getattr(p, "name", type(p).__name__)), src))
    return out


def _fields(src: MetricsSource) -> list[tuple[str, str]]:
    """The fields that decide where a plugin's metrics come from, with printable values (never the token)."""
    if src.watcher_address:
        return [("watcherAddress", src.watcher_address)]
    return [("metricProvider.address", src.address or "<empty>"),
            ("metricProvider.token", "<set>" if src.token else "<empty>"),
            ("metricProvider.insecureSkipVerify", str(src.insecure_skip_verify).lower()),
            ("metricProvider.nodeLabel", src.node_label)]


def load_fetcher(profiles: Mapping[str, Profile], *, config: SchedulerConfig | None = None,
                 node_metrics: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Fetcher | None:
    """The fetcher the load plugins of ``profiles`` read from; None when no profile has one.

    ``node_metrics`` (``--node-metrics FILE``) replaces the plugins' own source.
    Otherwise every load plugin must name the same one (vecsched fetches one
    sample for all) and it must be set: a ``ConfigError`` names the fields.
    """
    found: list[tuple[str, str, MetricsSource]] = []  # (args path, plugin, source)
    cfg_profiles = {p.scheduler_name: (i, p) for i, p in enumerate(config.profiles)} if config is not None else {}
    no_args: list[tuple[str, str]] = []  # (profile path, plugin) of load plugins given no pluginConfig
    for j, (pname, profile) in enumerate(profiles.items()):
        i, pc = cfg_profiles.get(pname, (j, None))
        order = list(pc.args_paths) if pc is not None else []  # pluginConfig's order, for the messages
        for name, src in sorted(_load_plugins(profile), key=lambda p: order.index(p[0]) if p[0] in order else len(order)):
            path = pc.args_paths.get(name) if pc is not None else None
            if path is None:
                no_args.append((f"profiles[{i}]", name))
            found.append((path or f"profiles[{i}].pluginConfig[{name}].args", name, src))
    if not found:
        if node_metrics:
            log.warning("--node-metrics %s is not read: no profile enables a load plugin (TargetLoadPacking, "
                        "LoadVariationRiskBalancing, LoadAware)", node_metrics)
        return None
    if node_metrics:
        return FileFetcher(node_metrics)
    prefix = f"{config.source}: " if config is not None else ""
    if no_args:
        where, name = no_args[0]
        raise ConfigError(f"{prefix}{where}.pluginConfig",
                          f"{name} has no args: set its args.metricProvider.address (Prometheus' URL) or "
                          f"args.watcherAddress (a load-watcher service), or run with --node-metrics FILE")
    path0, name0, src0 = found[0]
    fields0 = _fields(src0)
    for path, name, src in found[1:]:
        fields = _fields(src)
        if fields == fields0:
            continue
        if len(fields) != len(fields0):
            (fa, va), (fb, vb) = fields0[0], fields[0]
        else:
            (fa, va), (fb, vb) = next((a, b) for a, b in zip(fields0, fields) if a != b)
        raise ConfigError(f"{prefix}{path}.{fb}",
                          f"{name} has {vb}, {name0} ({path0}.{fa}) has {va}: every load plugin must name the same "
                          f"source (vecsched fetches one sample for all)")
    if src0.watcher_address:
        return WatcherFetcher(src0.watcher_address, timeout=timeout)
    if not src0.address:
        raise ConfigError(f"{prefix}{path0}.metricProvider.address",
                          f"{name0} needs Prometheus' URL here (or watcherAddress: a load-watcher service), "
                          f"or run with --node-metrics FILE")
    return PrometheusFetcher(src0, timeout=timeout)


# ---- the refresher -----------------------------------------------------------------------------


class LoadMetricsRefresher:
    """Keeps the table's ``LoadMetrics`` sample fresh: a fetch now, then every ``interval`` seconds.

    Runs beside the scheduling loop (on every replica: reading metrics is
    harmless), so a cycle never waits for Prometheus. A fetch replaces the
    sample between two cycles; a failed one keeps the sample, counts the
    error, and logs one line with the cause.
    """

    def __init__(self, *, fetcher: Fetcher, table: NodeTable, metrics: Metrics | None = None,
                 interval: float = DEFAULT_INTERVAL) -> None:
        if not interval > 0:
            raise ValueError(f"--load-metrics-interval must be > 0 seconds, got {interval:g}")
        self.fetcher = fetcher
        self.table = table
        self.metrics = metrics
        self.interval = interval
        self.failures = 0
        """Failed refreshes since the last good one."""
        self.first_attempt = asyncio.Event()
        """Set once the first fetch has succeeded or failed (the scheduling loop waits for it, briefly)."""
        if metrics is not None:
            metrics.load_metrics_refresh_errors.labels(fetcher.source)  # exported as 0 from the start
            metrics.snapshot.load_metrics_age = self.age

    def age(self) -> float | None:
        """Seconds since the sample in use was taken; None before the first."""
        return LoadMetrics.of(self.table).age()

    async def refresh(self) -> bool:
        """Fetch once; True when the sample was replaced."""
        try:
            wm = await self.fetcher.fetch()
        except FetchError as e:
            self.failures += 1
            if self.metrics is not None:
                self.metrics.load_metrics_refresh_errors.labels(self.fetcher.source).inc()
            age = self.age()
            kept = "no sample yet" if age is None else f"keeping the sample taken {age:.0f}s ago"
            log.warning("cannot refresh node metrics from %s %s: %s; %s", self.fetcher.source, e.where, e.problem,
                        kept, extra={"fields": {"source": self.fetcher.source, "failures": self.failures}})
            return False
        finally:
            self.first_attempt.set()
        LoadMetrics.of(self.table).set_sample(wm)
        if self.failures:
            log.info("node metrics from %s %s are fresh again after %d failed refreshes", self.fetcher.source,
                     self.fetcher.where, self.failures)
        self.failures = 0
        log.debug("node metrics refreshed: %d nodes, window %s", len(wm.nodes), wm.window.duration,
                  extra={"fields": {"source": self.fetcher.source}})
        return True

    async def run(self, *, stop: asyncio.Event) -> None:
        """Refresh until ``stop`` is set."""
        log.info("reading node metrics from %s %s every %gs", self.fetcher.source, self.fetcher.where, self.interval)
        try:
            while not stop.is_set():
                await self.refresh()
                try:
                    await asyncio.wait_for(stop.wait(), self.interval)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.fetcher.close()
