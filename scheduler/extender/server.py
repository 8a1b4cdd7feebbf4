"""The extender's HTTP server: routes, limits, time budget, TLS and metrics.

kube-scheduler calls an extender synchronously inside its scheduling cycle
and gives up after ``httpTimeout`` (5 s by default), failing the pod's
attempt unless the extender is ``ignorable``. A slow or crashing extender
therefore stalls every pod, so this server answers within a budget (2 s by
default, well under the timeout) or answers *with an error* rather than late,
refuses oversized bodies before reading them (413) and malformed ones with a
message naming the field (400), and never lets a plugin fault escape as a
dropped connection.

Routes (``<profile>`` selects a profile by schedulerName; without it, the
``--profile`` one, else the first)::

    POST [/<profile>]/filter      ExtenderArgs          -> ExtenderFilterResult
    POST [/<profile>]/prioritize  ExtenderArgs          -> HostPriorityList
    POST [/<profile>]/bind        ExtenderBindingArgs   -> ExtenderBindingResult
    POST [/<profile>]/preempt     ExtenderPreemptionArgs -> ExtenderPreemptionResult
    GET  /healthz /readyz /metrics

Errors travel where kube-scheduler reads them: ``Error`` in the filter and
bind results (HTTP 200); prioritize and preempt results have no such field,
so their failures are HTTP 503 (over budget, cache not synced) or 500 (a
fault) with ``{"Error": ...}``, which kube-scheduler logs -- a failed
prioritize is ignored for that cycle; a failed preempt is skipped when the
extender is ``ignorable`` and fails that preemption attempt otherwise. What
preempt answers: ``scheduler.extender.preempt``. Bad requests are 400, oversized ones 413, an unknown profile 404,
all with ``{"Error": ...}``.

With ``--client-ca-file``, the four verbs require a client certificate signed
by that CA (kube-scheduler's ``tlsConfig.certFile``); ``/healthz``,
``/readyz`` and ``/metrics`` stay open for probes and Prometheus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scheduler.cache import SchedulerCache
from scheduler.config import ConfigError, SchedulerConfig
from scheduler.extender import protocol as wire
from scheduler.extender.cluster import ClusterView
from scheduler.extender.preempt import preempt_nodes
from scheduler.extender.verbs import BudgetExceeded, Deadline, filter_nodes, prioritize_nodes
from scheduler.kube.client import MERGE_PATCH, ClientSettings, KubeClient
from scheduler.kube.errors import KubeError
from scheduler.kube.informer import Backoff
from scheduler.metrics import exponential_buckets
from scheduler.replies import Reply, read_bounded
from scoring.framework import Profile
from scoring.objects import NodeInfo
from scoring.table import NodeTable

__all__ = ["ExtenderSettings", "ExtenderMetrics", "ExtenderServer", "serve_extender", "VERBS"]

log = logging.getLogger("vecsched.extender")

VERBS: Final = ("filter", "prioritize", "bind", "preempt")
_DURATION_BUCKETS: Final = exponential_buckets(0.0005, 2, 14)  # 0.5 ms .. 4 s: past kube-scheduler's 5 s timeout is moot
_JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class ExtenderSettings:
    """How the extender serves (its profiles come from the SchedulerConfig)."""

    bind_address: str = "0.0.0.0"
    port: int = 8888
    """0 picks a free port (tests)."""
    profile: str | None = None
    """The profile answering routes without a profile prefix; None: the first profile."""
    client: ClientSettings | None = None
    """API access for the node/pod cache and for bind; None: standalone (Nodes requests only, no bind)."""
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    client_ca_file: str | None = None
    """Require verbs' callers to present a certificate signed by this CA."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body. 8 MiB holds a full NodeList of ~5,000 typical nodes (about 1.5 KiB each)."""
    request_budget_seconds: float = 2.0
    """Answer (possibly with an error) within this time; well under kube-scheduler's 5 s httpTimeout."""
    informer_backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
        if self.client_ca_file and not self.tls_cert_file:
            raise ValueError("--client-ca-file needs TLS: give --tls-cert-file and --tls-private-key-file too")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max body must be at least 1024 bytes, got {self.max_body_bytes}")
        if self.request_budget_seconds <= 0:
            raise ValueError(f"request budget must be > 0 seconds, got {self.request_budget_seconds}")


class ExtenderMetrics:
    """The extender's own registry: requests by verb and HTTP code, latency by verb, cache size."""

    def __init__(self, *, cache_sizes: Callable[[], dict[str, int]] = dict) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("vecsched_extender_requests", "Extender requests served, by verb and HTTP status code.",
                                ["verb", "code"], registry=r)
        self.duration = Histogram("vecsched_extender_request_duration_seconds",
                                  "Time to answer an extender request, by verb.", ["verb"],
                                  buckets=_DURATION_BUCKETS, registry=r)
        self._cache_sizes = cache_sizes
        r.register(self)

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("vecsched_extender_cache_size",
                              "Nodes, pods and assumed pods in the extender's cache (zero without API access).",
                              labels=["type"])
        sizes = {"nodes": 0, "pods": 0, "assumed_pods": 0}
        sizes.update(self._cache_sizes())
        for t, n in sizes.items():
            g.add_metric([t], n)
        yield g

    def describe(self) -> Iterator[Metric]:
        return iter(())


_Reply = Reply


class _NeedsCache(Exception):
    """A request that only a cache can answer reached a standalone extender."""


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=_JSON)


class ExtenderServer:
    """One extender: ``start()``, ``stop()`` (or ``async with``); ``url`` once started."""

    def __init__(self, *, config: SchedulerConfig, settings: ExtenderSettings | None = None,
                 client: KubeClient | None = None, cache: SchedulerCache | None = None) -> None:
        """``client``: an API client to use instead of connecting with ``settings.client``.
        ``cache``: a cache someone else keeps current (e.g. a live scheduler's), answered from
        instead of running informers."""
        self.config = config
        self.settings = s = settings or ExtenderSettings()
        self.profiles: dict[str, Profile] = config.build()
        self.default_profile = s.profile or config.profiles[0].scheduler_name
        if self.default_profile not in self.profiles:
            raise ConfigError("--profile", f"no profile {self.default_profile!r} (have: {', '.join(self.profiles)})")
        self.view = ClusterView(client_settings=s.client, backoff=s.informer_backoff, client=client, cache=cache,
                                profiles=self.profiles)
        self.metrics = ExtenderMetrics(cache_sizes=lambda: self.view.cache.sizes() if self.view.cache else {})
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------

    def app(self) -> web.Application:
        # client_max_size makes aiohttp refuse a larger body while reading it; Content-Length
        # is checked first so that an honest oversized request is refused unread.
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        for verb in VERBS:
            app.router.add_post(f"/{verb}", self._route(verb))
            app.router.add_post(f"/{{profile}}/{verb}", self._route(verb))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    def _ssl_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls_cert_file or not s.tls_key_file:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(s.tls_cert_file, s.tls_key_file)
        if s.client_ca_file:
            # OPTIONAL, not REQUIRED: probes and Prometheus reach /healthz and /metrics without a
            # certificate; a certificate that is presented must verify, and the verbs demand one.
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(cafile=s.client_ca_file)
        return ctx

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("ExtenderServer.start() called twice; call stop() first")
        ctx = self._ssl_context()
        await self.view.start()
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.bind_address, self.settings.port, ssl_context=ctx)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self.view.stop()
            raise
        self._runner = runner
        port = int(runner.addresses[0][1])
        host = self.settings.bind_address
        host = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        self.url = f"{'https' if ctx else 'http'}://{host}:{port}"
        log.info("vecsched extender serving on %s (profiles %s; default %s; %s)", self.url,
                 ", ".join(self.profiles), self.default_profile,
                 "node cache from the API" if self.view.cache is not None else "standalone: Nodes requests only")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.view.stop()

    async def __aenter__(self) -> ExtenderServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- plumbing ---------------------------------------------------------------------------

    def _route(self, verb: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        handler: Callable[[web.Request, Profile, Deadline], Awaitable[web.Response]] = getattr(self, f"_{verb}")

        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            status = 500
            try:
                deadline = Deadline(self.settings.request_budget_seconds)
                try:
                    self._check_client(request)
                    profile = self._profile(request)
                    resp = await handler(request, profile, deadline)
                except _Reply as e:
                    resp = _json({"Error": e.message}, e.status)
                status = resp.status
                return resp
            finally:
                self.metrics.requests.labels(verb, str(status)).inc()
                self.metrics.duration.labels(verb).observe(time.perf_counter() - started)

        return serve

    def _check_client(self, request: web.Request) -> None:
        if not self.settings.client_ca_file:
            return
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        if not cert:
            raise _Reply(401, "a client certificate signed by the extender's --client-ca-file is required")

    def _profile(self, request: web.Request) -> Profile:
        name = request.match_info.get("profile", self.default_profile)
        profile = self.profiles.get(name)
        if profile is None:
            raise _Reply(404, f"no profile {name!r} in the vecsched extender (have: {', '.join(self.profiles)})")
        return profile

    async def _body(self, request: web.Request) -> Any:
        data = await read_bounded(request, limit=self.settings.max_body_bytes, owner="extender")
        try:
            return json.loads(data)
        except ValueError as e:
            raise _Reply(400, f"request body is not valid JSON: {e}") from None

    def _known_node(self, name: str) -> NodeInfo | None:
        """A node as last read (from the cache's table, or from an earlier request)."""
        cache = self.view.cache
        if cache is not None:
            row = cache.table.index.get(name)
            return cache.table.infos[row] if row is not None else None
        return self.view.nodes_seen.get(name)

    def _read_extender_args(self, body: Any) -> wire.ExtenderArgs:
        return wire.read_extender_args(body, known=self._known_node)

    async def _args(self, request: web.Request, read: Callable[[Any], Any]) -> Any:
        body = await self._body(request)
        try:
            return read(body)
        except wire.BadRequest as e:
            raise _Reply(400, str(e)) from None

    async def _table(self, args: wire.ExtenderArgs | None, deadline: Deadline) -> NodeTable:
        """The cache's table (synced), or one built from the request's nodes without a cache."""
        view = self.view
        if view.cache is not None:
            if not view.synced:
                try:
                    await asyncio.wait_for(view.wait_synced(), deadline.remaining())
                except asyncio.TimeoutError:
                    raise BudgetExceeded("vecsched extender: the node cache is not synced with the API yet") from None
            return view.cache.table
        if args is None or args.nodes is None:
            raise _NeedsCache("vecsched extender: NodeNames requests need the extender's node cache; start it with "
                              "API access (--kubeconfig or in a cluster), or set nodeCacheCapable: false")
        view.remember_nodes(args.nodes)
        return ClusterView.table_of(args.nodes)

    # ---- verbs ------------------------------------------------------------------------------

    async def _filter(self, request: web.Request, profile: Profile, deadline: Deadline) -> web.Response:
        args: wire.ExtenderArgs = await self._args(request, self._read_extender_args)
        self.view.remember_pod(args.pod)
        try:
            table = await self._table(args, deadline)
            passed, failed, hopeless = filter_nodes(profile=profile, pod=args.pod, table=table, names=args.names,
                                                    deadline=deadline)
        except (BudgetExceeded, _NeedsCache) as e:
            return _json(wire.error_filter_result(str(e)))
        except Exception as e:  # a plugin fault: the pod's attempt fails with a message, the server lives
            log.exception("filter of pod %s failed", args.pod.key)
            return _json(wire.error_filter_result(f"vecsched extender: filter failed: {type(e).__name__}: {e}"))
        return _json(wire.filter_result(args=args, passed=passed, failed=failed, unresolvable=hopeless))

    async def _prioritize(self, request: web.Request, profile: Profile, deadline: Deadline) -> web.Response:
        args: wire.ExtenderArgs = await self._args(request, self._read_extender_args)
        self.view.remember_pod(args.pod)
        try:
            table = await self._table(args, deadline)
            scores = prioritize_nodes(profile=profile, pod=args.pod, table=table, names=args.names, deadline=deadline)
        except (BudgetExceeded, _NeedsCache) as e:
            raise _Reply(503, str(e)) from None
        except Exception as e:
            log.exception("prioritize of pod %s failed", args.pod.key)
            raise _Reply(500, f"vecsched extender: prioritize failed: {type(e).__name__}: {e}") from None
        return _json(wire.host_priority_list(args.names, scores))

    async def _preempt(self, request: web.Request, profile: Profile, deadline: Deadline) -> web.Response:
        args: wire.PreemptionArgs = await self._args(request, wire.read_preemption_args)
        try:
            if self.view.cache is not None:
                table = await self._table(None, deadline)
            else:
                # No cache: the nodes last seen in Nodes requests, with the victims sent in full.
                nodes = [self.view.nodes_seen[n] for n in args.victims if n in self.view.nodes_seen]
                known = {n.name for n in nodes}
                table = ClusterView.table_of(nodes, [(p, node) for node, v in args.victims.items() if node in known
                                                     for p in v.pods])
            kept = preempt_nodes(profile=profile, pod=args.pod, table=table, victims=args.victims, deadline=deadline)
        except BudgetExceeded as e:
            raise _Reply(503, str(e)) from None
        except Exception as e:
            log.exception("preempt for pod %s failed", args.pod.key)
            raise _Reply(500, f"vecsched extender: preempt failed: {type(e).__name__}: {e}") from None
        return _json(wire.preemption_result(kept))

    async def _bind(self, request: web.Request, profile: Profile, deadline: Deadline) -> web.Response:
        args: wire.BindingArgs = await self._args(request, wire.read_binding_args)
        client = self.view.client
        if client is None:
            return _json({"Error": "vecsched extender: bind needs API access; start it with --kubeconfig or in a "
                                   "cluster, or leave bindVerb unset"})
        annotations = self.view.reserve(profile, uid=args.pod_uid, namespace=args.pod_namespace,
                                        name=args.pod_name, node=args.node)

        async def bind() -> None:
            if annotations:  # recorded on the pod before it is bound, as `vecsched run` does
                await client.patch(f"/api/v1/namespaces/{args.pod_namespace}/pods/{args.pod_name}",
                                   body={"metadata": {"uid": args.pod_uid, "annotations": annotations}},
                                   content_type=MERGE_PATCH)
            await client.bind(namespace=args.pod_namespace, name=args.pod_name, uid=args.pod_uid, node=args.node)

        try:
            await asyncio.wait_for(bind(), deadline.remaining())
        except asyncio.TimeoutError:
            return _json({"Error": f"vecsched extender: binding {args.pod_namespace}/{args.pod_name} to {args.node} "
                                   f"did not finish within {self.settings.request_budget_seconds:g}s"})
        except KubeError as e:
            return _json({"Error": f"binding {args.pod_namespace}/{args.pod_name} to {args.node}: {e}"})
        self.view.assume_bound(uid=args.pod_uid, namespace=args.pod_namespace, name=args.pod_name, node=args.node,
                               annotations=annotations)
        return _json({"Error": ""})

    # ---- probes and metrics -----------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.view.synced:
            return web.Response(text="ok")
        return web.Response(text="not ready: the node cache is syncing", status=503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@asynccontextmanager
async def serve_extender(*, config: SchedulerConfig, settings: ExtenderSettings | None = None,
                         client: KubeClient | None = None,
                         cache: SchedulerCache | None = None) -> AsyncIterator[ExtenderServer]:
    """An extender serving until the block ends."""
    server = ExtenderServer(config=config, settings=settings, client=client, cache=cache)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
