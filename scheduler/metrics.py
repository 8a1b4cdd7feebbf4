"""Prometheus metrics with kube-scheduler's names, and the /metrics /healthz /readyz /livez server.

SREs already have dashboards and alerts for kube-scheduler; vecsched exports
the same series (names, labels, bucket boundaries) so they work unchanged.
Each scheduler instance owns its ``CollectorRegistry`` -- never the global
one -- so several schedulers (tests, two replicas in one process) do not mix
their numbers. Queue lengths, cache sizes and unschedulable pods per plugin
are read when scraped rather than kept in step on every change. Metrics only
vecsched has carry the prefix ``vecsched_``.
"""

from __future__ import annotations

import logging
import math
import ssl
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as _PromCounter
from prometheus_client import Gauge as _PromGauge
from prometheus_client import Histogram as _PromHistogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.values import MutexValue

__all__ = ["Metrics", "MetricsServer", "exponential_buckets"]

log = logging.getLogger("vecsched.metrics")


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """Upstream's metrics.ExponentialBuckets: ``start * factor**k`` for k in 0..count-1."""
    return [start * factor**k for k in range(count)]


_M = TypeVar("_M", bound=MetricWrapperBase)


def _child(metric: _M, labels: Callable[..., _M], values: tuple[object, ...], named: dict[str, object]) -> _M:
    """``labels(*values)`` with the child kept by the values as given: ``prometheus_client``'s own
    ``labels`` checks the count, converts every value to a string and takes a lock on each call,
    and the scheduling path asks several times per pod. (No metric here ever removes a child.)"""
    if named:
        return labels(metric, *values, **named)
    kept: dict[tuple[object, ...], _M] | None = metric.__dict__.get("_children_by_values")
    if kept is None:
        kept = metric.__dict__["_children_by_values"] = {}
    child = kept.get(values)
    if child is None:
        child = kept[values] = labels(metric, *values)
    return child


class _LoopValue:
    """``prometheus_client``'s ``MutexValue`` without its mutex. A scheduler's metrics are written
    on its event loop's thread alone (the /metrics server runs on that loop too), so the lock taken
    on every write guarded nothing, and the scheduling path writes some thirty values per pod."""

    __slots__ = ("_value", "_exemplar")

    def __init__(self) -> None:
        self._value = 0.0
        self._exemplar: Any = None

    def inc(self, amount: float) -> None:
        self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value

    def set_exemplar(self, exemplar: Any) -> None:
        self._exemplar = exemplar

    def get(self) -> float:
        return self._value

    def get_exemplar(self) -> Any:
        return self._exemplar


def _unlocked(value: Any) -> Any:
    """A ``_LoopValue`` for a ``MutexValue`` (any other kind of value, e.g. multiprocess mode's, is kept)."""
    return _LoopValue() if type(value) is MutexValue else value


class Counter(_PromCounter):
    def labels(self, *values: object, **named: object) -> Counter:
        return _child(self, _PromCounter.labels, values, named)

    def _metric_init(self) -> None:
        super()._metric_init()
        self._value = _unlocked(self._value)


class Gauge(_PromGauge):
    def labels(self, *values: object, **named: object) -> Gauge:
        return _child(self, _PromGauge.labels, values, named)

    def _metric_init(self) -> None:
        super()._metric_init()
        self._value = _unlocked(self._value)


class Histogram(_PromHistogram):
    def labels(self, *values: object, **named: object) -> Histogram:
        return _child(self, _PromHistogram.labels, values, named)

    def _metric_init(self) -> None:
        super()._metric_init()
        self._sum = _unlocked(self._sum)
        self._buckets = [_unlocked(b) for b in self._buckets]

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        """``prometheus_client``'s ``observe``, its bucket found by bisection rather than by a
        loop over up to 20 bounds in Python: the first bound ``amount`` is at most, as before (a
        NaN, which is at most no bound, counts in the sum alone). Several per scheduled pod."""
        if exemplar or (self._labelnames and not self._labelvalues):
            super().observe(amount, exemplar)  # (its checks and errors: a labelled parent is not observed)
            return
        self._sum.inc(amount)
        if amount == amount:
            i = bisect_left(self._upper_bounds, amount)
            if i < len(self._buckets):
                self._buckets[i].inc(1)


_ATTEMPT_BUCKETS: Final = exponential_buckets(0.001, 2, 15)
_SLI_BUCKETS: Final = exponential_buckets(0.01, 2, 20)
_ATTEMPTS_BUCKETS: Final = exponential_buckets(1, 2, 5)
_EXTENSION_POINT_BUCKETS: Final = exponential_buckets(0.0001, 2, 12)
_PLUGIN_BUCKETS: Final = exponential_buckets(0.00001, 1.5, 20)
_VICTIM_BUCKETS: Final = exponential_buckets(1, 2, 7)
_GOROUTINE_BUCKETS: Final = exponential_buckets(0.01, 2, 20)


class _Snapshot:
    """Gauges computed at scrape time from the queue and the cache."""

    def __init__(self) -> None:
        self.pending: Callable[[], Mapping[str, int]] = dict
        self.cache_sizes: Callable[[], Mapping[str, int]] = dict
        self.unschedulable: Callable[[], Iterable[tuple[str, str]]] = list
        """(plugin, profile) once per parked pod and rejecting plugin."""
        self.load_metrics_age: Callable[[], float | None] | None = None
        """Seconds since the load plugins' node metrics were taken (None before the first sample);
        None (the gauge is not exported) where no profile has a load plugin."""

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily("scheduler_pending_pods",
                                    "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; "
                                    "'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in "
                                    "unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the "
                                    "number of unschedulable pods that the scheduler never attempted to schedule because "
                                    "they are gated.", labels=["queue"])
        counts = {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
        counts.update(self.pending())
        for q, n in counts.items():
            pending.add_metric([q], n)
        yield pending
        cache = GaugeMetricFamily("scheduler_scheduler_cache_size",
                                  "Number of nodes, pods, and assumed (bound) pods in the scheduler cache.", labels=["type"])
        sizes = {"nodes": 0, "pods": 0, "assumed_pods": 0}
        sizes.update(self.cache_sizes())
        for t, n in sizes.items():
            cache.add_metric([t], n)
        yield cache
        unsched = GaugeMetricFamily("scheduler_unschedulable_pods",
                                    "The number of unschedulable pods broken down by plugin name. A pod will increment the "
                                    "gauge for all plugins that caused it to not schedule and so this metric have meaning "
                                    "only when broken down by plugin.", labels=["plugin", "profile"])
        per: dict[tuple[str, str], int] = {}
        for key in self.unschedulable():
            per[key] = per.get(key, 0) + 1
        for (plugin, profile), n in sorted(per.items()):
            unsched.add_metric([plugin, profile], n)
        yield unsched
        if self.load_metrics_age is not None:
            age = self.load_metrics_age()
            yield GaugeMetricFamily("vecsched_load_metrics_age_seconds",
                                    "Seconds since the node metrics the load plugins score with were taken "
                                    "(NaN before the first sample).", value=math.nan if age is None else age)


class Metrics:
    """Every metric of one scheduler instance, in its own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.schedule_attempts = Counter(
            "scheduler_schedule_attempts", "Number of attempts to schedule pods, by the result. 'unschedulable' means a "
            "pod could not be scheduled, while 'error' means an internal scheduler problem.",
            ["result", "profile"], registry=r)
        self.attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds", "Scheduling attempt latency in seconds "
            "(scheduling algorithm + binding)", ["result", "profile"], buckets=_ATTEMPT_BUCKETS, registry=r)
        self.algorithm_duration = Histogram(
            "scheduler_scheduling_algorithm_duration_seconds", "Scheduling algorithm latency in seconds",
            buckets=_ATTEMPT_BUCKETS, registry=r)
        self.sli_duration = Histogram(
            "scheduler_pod_scheduling_sli_duration_seconds", "E2e latency for a pod being scheduled, from the time the "
            "pod enters the scheduling queue and might involve multiple scheduling attempts.", ["attempts"],
            buckets=_SLI_BUCKETS, registry=r)
        self.pod_attempts = Histogram(
            "scheduler_pod_scheduling_attempts", "Number of attempts to successfully schedule a pod.",
            buckets=_ATTEMPTS_BUCKETS, registry=r)
        self.queue_incoming = Counter(
            "scheduler_queue_incoming_pods", "Number of pods added to scheduling queues by event and queue type.",
            ["queue", "event"], registry=r)
        self.extension_point_duration = Histogram(
            "scheduler_framework_extension_point_duration_seconds", "Latency for running all plugins of a specific "
            "extension point.", ["extension_point", "status", "profile"], buckets=_EXTENSION_POINT_BUCKETS, registry=r)
        self.plugin_duration = Histogram(
            "scheduler_plugin_execution_duration_seconds", "Duration for running a plugin at a specific extension point.",
            ["plugin", "extension_point", "status"], buckets=_PLUGIN_BUCKETS, registry=r)
        self.preemption_attempts = Counter(
            "scheduler_preemption_attempts", "Total preemption attempts in the cluster till now", registry=r)
        self.preemption_victims = Histogram(
            "scheduler_preemption_victims", "Number of selected preemption victims", buckets=_VICTIM_BUCKETS, registry=r)
        # Upstream's names for its asynchronous preemption, which vecsched's preemptor is.
        self.preemption_goroutines = Counter(
            "scheduler_preemption_goroutines_execution", "Number of preemption goroutines executed.", ["result"],
            registry=r)
        self.preemption_goroutine_duration = Histogram(
            "scheduler_preemption_goroutines_duration_seconds", "Duration in seconds for running goroutines for the "
            "preemption.", ["result"], buckets=_GOROUTINE_BUCKETS, registry=r)
        self.permit_wait_duration = Histogram(
            "scheduler_permit_wait_duration_seconds", "Duration of waiting on permit.", ["result"],
            buckets=_ATTEMPT_BUCKETS, registry=r)
        # Upstream's names for OpportunisticBatching (KEP-5598): hint_used when the state kept for
        # the pod's signature decided it, no_hint when the pod was decided in full (a new
        # signature, changed nodes, or an unsignable pod). vecsched's batching is exact, so
        # upstream's third result, hint_not_used (a hint that no longer fits), never occurs.
        self.batch_attempts = Counter(
            "scheduler_batch_attempts", "Counts of results when we attempt to use batching.", ["profile", "result"],
            registry=r)
        self.snapshot = _Snapshot()
        r.register(self.snapshot)
        # vecsched's own.
        self.binding_failures = Counter(
            "vecsched_binding_failures", "Bindings that failed, by outcome (gone: the pod was deleted or bound "
            "elsewhere; retry: a server error, throttling or timeout).", ["outcome"], registry=r)
        self.events_dropped = Counter(
            "vecsched_events_suppressed", "Events not sent because of per-pod rate limiting or deduplication.",
            ["reason"], registry=r)
        self.informer_events = Counter(
            "vecsched_informer_events", "Changes received from the API, by resource and type.", ["resource", "type"],
            registry=r)
        self.is_leader = Gauge("vecsched_leader", "1 while this replica holds the leader lease (or needs none).",
                               registry=r)
        self.malformed_objects = Counter(
            "vecsched_malformed_objects", "Objects from the watch that could not be read, by kind (node, pod, poddisruptionbudget, podgroup, "
            "the storage kinds, namespace, the workload kinds).", ["kind"], registry=r)
        self.preemption_api_errors = Counter(
            "vecsched_preemption_api_errors", "Failed API calls of preemption, by call (disruption_condition, delete, "
            "clear_nomination); transient ones are retried.", ["call"], registry=r)
        self.podgroups = Gauge(
            "vecsched_podgroups", "PodGroups the PodGroup operator knows, by status.phase (Pending, Scheduling, "
            "Running, Finished, Failed, Unknown; a group with no phase yet is in none).", ["phase"], registry=r)
        self.podgroup_schedule_duration = Histogram(
            "vecsched_podgroup_schedule_duration_seconds", "Time from a PodGroup's creation to the moment its "
            "minMember-th member was seen bound to a node, once per group.", buckets=_SLI_BUCKETS, registry=r)
        self.load_metrics_refresh_errors = Counter(
            "vecsched_load_metrics_refresh_errors", "Refreshes of the load plugins' node metrics that failed, by "
            "source (prometheus, load-watcher, file); the last good sample stays in use.", ["source"], registry=r)

    def incoming(self, queue: str, event: str) -> None:
        self.queue_incoming.labels(queue, event).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """Serves ``/metrics``, ``/healthz``, ``/livez`` and ``/readyz`` over HTTP, or HTTPS given a TLS context
    (or certificate files); ``guard`` (``scheduler.delegated.DelegatingAuth``) checks every request first."""

    def __init__(self, *, metrics: Metrics, ready: Callable[[], bool], host: str = "127.0.0.1", port: int = 10259,
                 tls_cert_file: str | None = None, tls_key_file: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, guard: _Guard | None = None) -> None:
        if bool(tls_cert_file) != bool(tls_key_file):
            raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
        self.metrics = metrics
        self.ready = ready
        self.host = host
        self.port = port
        self.tls_cert_file = tls_cert_file
        self.tls_key_file = tls_key_file
        self.ssl_context = ssl_context
        self.guard = guard
        self._runner: web.AppRunner | None = None
        self.url = ""
        """Base URL of the first address actually bound (``https://0.0.0.0:10259``, ``http://[::1]:41234``)."""
        self.urls: list[str] = []
        """Every address bound (``localhost`` may bind 127.0.0.1 and ::1)."""

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready():
            return web.Response(text="ok")
        return web.Response(text="not ready: informers syncing", status=503)

    async def start(self) -> None:
        ctx = self.ssl_context
        if ctx is None and self.tls_cert_file and self.tls_key_file:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        app = web.Application(middlewares=[self.guard.middleware] if self.guard is not None else [])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, ssl_context=ctx)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        scheme = "https" if ctx else "http"
        self.urls = [_url(scheme, a) for a in runner.addresses]
        self.url = self.urls[0]
        log.info("serving /metrics /healthz /readyz /livez on %s%s", ", ".join(self.urls),
                 " (delegated authentication and authorization)" if self.guard is not None else "")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class _Guard(Protocol):
    """What guards the server's requests (``scheduler.delegated.DelegatingAuth``)."""

    @property
    def middleware(self) -> Middleware: ...


def _url(scheme: str, address: Any) -> str:
    """The base URL of a bound socket address (host, port[, flowinfo, scope]); IPv6 bracketed."""
    host, port = str(address[0]), int(address[1])
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
