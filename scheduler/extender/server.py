"""The extender's HTTP server: routes, limits, time budget, TLS and metrics.

kube-scheduler calls an extender synchronously inside its scheduling cycle
and gives up after ``httpTimeout`` (5 s by default), failing the pod's
attempt unless the extender is ``ignorable``. A slow or crashing extender
therefore stalls every pod, so this server answers within a budget (2 s by
default, well under the timeout, counted from the request's first byte so
that time queued behind other requests counts) or answers *with an error*
rather than late, refuses oversized bodies before reading them (413) and
malformed ones with a message naming the field (400), and never lets a
plugin fault escape as a dropped connection or a bare HTML error page.

Routes (``<profile>`` selects a profile by schedulerName; without it, the
``--profile`` one, else the first)::

    POST [/<profile>]/filter      ExtenderArgs          -> ExtenderFilterResult
    POST [/<profile>]/prioritize  ExtenderArgs          -> HostPriorityList
    POST [/<profile>]/bind        ExtenderBindingArgs   -> ExtenderBindingResult (--enable-bind only)
    POST [/<profile>]/preempt     ExtenderPreemptionArgs -> ExtenderPreemptionResult
    GET  /healthz /livez /readyz /metrics

Errors travel where kube-scheduler reads them: ``Error`` in the filter and
bind results (HTTP 200); prioritize and preempt results have no such field,
so their failures are HTTP 503 (over budget, cache not synced) or 500 (a
fault) with ``{"Error": ...}``, which kube-scheduler logs -- a failed
prioritize is ignored for that cycle; a failed preempt is skipped when the
extender is ``ignorable`` and fails that preemption attempt otherwise. What
preempt answers: ``scheduler.extender.preempt``. Every other refusal is
``{"Error": "<one line>"}`` with its status: 400 a malformed body (bad JSON,
nested deeper than ``MAX_DEPTH``, an integer outside int64, a plain body
labelled gzip), 404 an unknown route or profile (and ``/bind`` without
``--enable-bind``), 408 a body that did not arrive within ``--read-timeout``,
413 a body over ``--max-body-bytes`` (also once gunzipped), 415 a
``Content-Encoding`` other than identity or gzip, 429 (with ``Retry-After``)
for a verb that finds ``--max-inflight`` requests arrived and unanswered
ahead of it (they share one event loop, so it would wait for all of them), as
kube-apiserver's max-in-flight limit answers.

Who may call. A verb binds pods or steers where they go, so it is served in
the clear only on a loopback address (kube-scheduler's sidecar); on any other
address ``ExtenderSettings`` refuses to start without TLS and
``--client-ca-file``, and the verbs then require a client certificate signed
by that CA (kube-scheduler's ``tlsConfig.certFile``). ``/healthz``,
``/livez``, ``/readyz`` and ``/metrics`` stay open for probes and Prometheus.
There is no switch to serve the verbs in the clear elsewhere: a mesh that
brings its own mutual TLS forwards to the loopback address.

Slow clients. Each connection has ``--read-timeout`` seconds from its first
byte (or from being opened) to send a request's headers, and the body must be
in by then too; a trickle is cut (408 once the handler has the headers, the
connection closed before). The TLS handshake has the same limit. Idle
keep-alive connections are closed after ``IDLE_SECONDS``.
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
from scheduler.extender.connections import IDLE_SECONDS, Connection, bound_address, gunzip, is_loopback
from scheduler.extender.cluster import DEFAULT_CACHE_BYTES, DEFAULT_CACHE_TTL, ClusterView, RequestCache, content_digest
from scheduler.extender.preempt import preempt_nodes
from scheduler.extender.verbs import BudgetExceeded, Deadline, filter_nodes, prioritize_nodes
from scheduler.kube.client import MERGE_PATCH, ClientSettings, KubeClient
from scheduler.kube.errors import KubeError
from scheduler.kube.informer import Backoff
from scheduler.metrics import exponential_buckets
from scheduler.replies import Reply, read_bounded
from scoring.framework import Profile
from scoring.objects import NodeInfo
from scoring.safe_input import MAX_DEPTH, InputError, loads_json, quote
from scoring.table import NodeTable

__all__ = ["ExtenderSettings", "ExtenderMetrics", "ExtenderServer", "serve_extender", "VERBS", "is_loopback"]

log = logging.getLogger("vecsched.extender")

VERBS: Final = ("filter", "prioritize", "bind", "preempt")
_DURATION_BUCKETS: Final = exponential_buckets(0.0005, 2, 14)  # 0.5 ms .. 4 s: past kube-scheduler's 5 s timeout is moot
_JSON: Final = "application/json"
_PROBES: Final = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})
_RETRY_AFTER: Final = "1"
"""Seconds a refused (429) caller is told to wait: kube-apiserver's max-in-flight answer."""


@dataclass(frozen=True, slots=True)
class ExtenderSettings:
    """How the extender serves (its profiles come from the SchedulerConfig)."""

    bind_address: str = "127.0.0.1"
    """Loopback by default: kube-scheduler's sidecar. Any other address needs TLS and a client CA."""
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
    enable_bind: bool = False
    """Serve ``/bind`` (kube-scheduler's ``bindVerb``): binding any pod with the extender's
    ServiceAccount, which then needs ``pods/binding``. Off: ``/bind`` is a 404."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body. 8 MiB holds a full NodeList of ~5,000 typical nodes (about 1.5 KiB each)."""
    request_budget_seconds: float = 2.0
    """Answer (possibly with an error) within this time of the request's first byte; well
    under kube-scheduler's 5 s httpTimeout."""
    read_timeout_seconds: float = 5.0
    """A request's headers and body must arrive within this time of its first byte (a new
    connection's headers, of its opening; a TLS handshake, of its start). 5 s is
    kube-scheduler's default httpTimeout: a request still arriving then has been given up."""
    max_inflight: int = 32
    """Requests arrived and not yet answered; a verb that finds this many ahead of it gets 429.
    kube-scheduler sends filter, prioritize and preempt one pod at a time and binds a few pods
    concurrently, so 32 is far above what it needs; the handlers share one event loop, and 32
    filters of a 5,000-node cluster (about 15 ms each, benchmarks/extender.py) take half a
    second, so the last one admitted still answers within the 2 s budget; 32 bodies of 8 MiB
    (256 MiB) stay within the Deployment's memory limit."""
    cache_bytes: int = DEFAULT_CACHE_BYTES
    """Bytes (of JSON) of nodes and pods kept from requests; see ``cluster.DEFAULT_CACHE_BYTES``."""
    cache_ttl_seconds: float = DEFAULT_CACHE_TTL
    """Seconds a request's node or pod is kept; see ``cluster.DEFAULT_CACHE_TTL``."""
    informer_backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
        if self.client_ca_file and not self.tls_cert_file:
            raise ValueError("--client-ca-file needs TLS: give --tls-cert-file and --tls-private-key-file too")
        if not is_loopback(self.bind_address):
            missing = [flag for flag, v in (("--tls-cert-file", self.tls_cert_file),
                                            ("--tls-private-key-file", self.tls_key_file),
                                            ("--client-ca-file", self.client_ca_file)) if not v]
            if missing:
                raise ValueError(f"--bind-address {quote(self.bind_address)} is not a loopback address, where callers "
                                 f"must prove who they are: add {', '.join(missing)} (TLS with client certificates), "
                                 "or serve on --bind-address 127.0.0.1 beside kube-scheduler")
        if self.max_body_bytes < 1024:
            raise ValueError(f"--max-body-bytes must be at least 1024, got {self.max_body_bytes}")
        if self.request_budget_seconds <= 0:
            raise ValueError(f"--request-budget must be > 0 seconds, got {self.request_budget_seconds:g}")
        if self.read_timeout_seconds <= 0:
            raise ValueError(f"--read-timeout must be > 0 seconds, got {self.read_timeout_seconds:g}")
        if self.max_inflight < 1:
            raise ValueError(f"--max-inflight must be at least 1, got {self.max_inflight}")
        if self.cache_bytes < 0:
            raise ValueError(f"--cache-bytes must be >= 0, got {self.cache_bytes}")
        if self.cache_ttl_seconds <= 0:
            raise ValueError(f"--cache-ttl must be > 0 seconds, got {self.cache_ttl_seconds:g}")


class ExtenderMetrics:
    """The extender's own registry: requests by verb and HTTP code, latency by verb, cache
    sizes, what requests left behind (bytes), verbs in flight."""

    def __init__(self, *, cache_sizes: Callable[[], dict[str, int]] = dict,
                 request_cache: RequestCache | None = None, inflight: Callable[[], int] = lambda: 0) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("vecsched_extender_requests", "Extender requests served, by verb and HTTP status code.",
                                ["verb", "code"], registry=r)
        self.duration = Histogram("vecsched_extender_request_duration_seconds",
                                  "Time from a request's first byte to its answer, by verb.", ["verb"],
                                  buckets=_DURATION_BUCKETS, registry=r)
        self._cache_sizes = cache_sizes
        self._request_cache = request_cache
        self._inflight = inflight
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
        rc = self._request_cache
        b = GaugeMetricFamily("vecsched_extender_request_cache_bytes",
                              "Bytes (of JSON) of the nodes and pods kept from requests (bounded by --cache-bytes).")
        b.add_metric([], rc.bytes if rc is not None else 0)
        yield b
        o = GaugeMetricFamily("vecsched_extender_request_cache_objects",
                              "Nodes and pods kept from requests, by type.", labels=["type"])
        for t, n in (rc.counts() if rc is not None else {"nodes": 0, "pods": 0}).items():
            o.add_metric([t], n)
        yield o
        i = GaugeMetricFamily("vecsched_extender_inflight_requests",
                              "Requests arrived and not yet answered (a verb beyond --max-inflight of them gets 429).")
        i.add_metric([], self._inflight())
        yield i

    def describe(self) -> Iterator[Metric]:
        return iter(())


_Reply = Reply


class _NeedsCache(Exception):
    """A request that only a cache can answer reached a standalone extender."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=_JSON,
                        headers=headers)


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
                                profiles=self.profiles,
                                seen=RequestCache(max_bytes=s.cache_bytes, max_age=s.cache_ttl_seconds))
        self._queue: dict[Connection, float] = {}
        """Requests that have arrived (their first byte) and are not answered yet, in arrival order."""
        self.metrics = ExtenderMetrics(cache_sizes=lambda: self.view.cache.sizes() if self.view.cache else {},
                                       request_cache=self.view.seen, inflight=lambda: self.inflight)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.base_events.Server | None = None
        self.url = ""
        """Where a client on this machine reaches the extender (a wildcard address as loopback)."""
        self.address = ""
        """The address actually bound, ``host:port`` (IPv6 bracketed)."""

    @property
    def inflight(self) -> int:
        """Requests that have arrived and are not answered yet (probes included)."""
        return len(self._queue)

    # ---- lifecycle -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes, middlewares=[self._guard])
        for verb in VERBS:
            route = self._route(verb) if verb != "bind" or self.settings.enable_bind else self._bind_disabled
            app.router.add_post(f"/{verb}", route)
            app.router.add_post(f"/{{profile}}/{verb}", route)
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
        s = self.settings
        ctx = self._ssl_context()
        await self.view.start()
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        loop = asyncio.get_running_loop()
        server = runner.server
        assert server is not None

        def connection() -> Connection:
            # Request bodies are not inflated by aiohttp (auto_decompress=False): _body does it
            # within --max-body-bytes, and names a body that is not what its header says.
            return Connection(server, loop=loop, read_timeout=s.read_timeout_seconds, queue=self._queue,
                               keepalive_timeout=IDLE_SECONDS, access_log=None, auto_decompress=False)

        try:
            self._listener = await loop.create_server(
                connection, s.bind_address, s.port, ssl=ctx,
                ssl_handshake_timeout=s.read_timeout_seconds if ctx is not None else None)
        except BaseException:
            await runner.cleanup()
            await self.view.stop()
            raise
        self._runner = runner
        host, port = bound_address(self._listener.sockets)
        scheme = "https" if ctx else "http"
        self.address = f"{host}:{port}"
        local = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
        self.url = f"{scheme}://{local}:{port}"
        log.info("vecsched extender serving on %s://%s (profiles %s; default %s; %s; %s; bind %s)", scheme,
                 self.address, ", ".join(self.profiles), self.default_profile,
                 "node cache from the API" if self.view.cache is not None else "standalone: Nodes requests only",
                 "client certificates required for the verbs" if s.client_ca_file else "no client certificates",
                 "enabled" if s.enable_bind else "disabled")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
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

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Every request: its arrival noted, the header deadline ended, and whatever goes wrong
        answered as one line of JSON (aiohttp's own 404/405 pages and 500s included)."""
        conn = request.protocol
        if isinstance(conn, Connection):
            conn.headers_read()
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _json({"Error": f"vecsched extender: {e.reason}: {request.method} {quote(request.path)}"}, e.status)
        except Exception as e:
            log.exception("%s %s failed", request.method, quote(request.path))
            return _json({"Error": f"vecsched extender: internal error: {type(e).__name__}: {quote(str(e), 200)}"},
                         500)
        finally:
            if isinstance(conn, Connection):
                conn.request_done()

    def _route(self, verb: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        handler: Callable[[web.Request, Profile, Deadline], Awaitable[web.Response]] = getattr(self, f"_{verb}")

        async def serve(request: web.Request) -> web.Response:
            conn = request.protocol
            arrival = conn.request_arrival if isinstance(conn, Connection) else time.monotonic()
            status = 500
            try:
                # In flight = arrived and not answered: handlers share one event loop, so a request
                # waits for every one that was there when it arrived. Refusing it costs little.
                if isinstance(conn, Connection) and conn.ahead >= self.settings.max_inflight:
                    resp = _json({"Error": f"vecsched extender: too many requests in flight (--max-inflight "
                                           f"{self.settings.max_inflight}); retry"}, 429,
                                 headers={"Retry-After": _RETRY_AFTER})
                    status = resp.status
                    return resp
                deadline = Deadline(self.settings.request_budget_seconds, start=arrival)
                try:
                    self._check_client(request)
                    profile = self._profile(request)
                    resp = await handler(request, profile, deadline)
                except _Reply as e:
                    resp = _json({"Error": e.message}, e.status)
                    if e.status == 408:
                        resp.force_close()  # the rest of the body may still be on its way
                status = resp.status
                return resp
            finally:
                self.metrics.requests.labels(verb, str(status)).inc()
                self.metrics.duration.labels(verb).observe(time.monotonic() - arrival)

        return serve

    async def _bind_disabled(self, request: web.Request) -> web.Response:
        self.metrics.requests.labels("bind", "404").inc()
        return _json({"Error": "vecsched extender: bind is not served; start the extender with --enable-bind (and "
                               "grant it pods/binding) or leave bindVerb out of kube-scheduler's extenders"}, 404)

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
            raise _Reply(404, f"no profile {quote(name)} in the vecsched extender (have: {', '.join(self.profiles)})")
        return profile

    async def _body(self, request: web.Request, deadline: Deadline) -> Any:
        """The request's JSON document: its encoding checked, read within the read timeout and
        the size limit (once gunzipped too), parsed within ``MAX_DEPTH`` and int64."""
        limit = self.settings.max_body_bytes
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "x-gzip"):
            raise _Reply(415, f"Content-Encoding {quote(encoding)} is not accepted: send identity (as kube-scheduler "
                              "does) or gzip")
        left = deadline.start + self.settings.read_timeout_seconds - time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, left)):
                data = await read_bounded(request, limit=limit, owner="extender")
        except TimeoutError:
            raise _Reply(408, f"request body did not arrive within --read-timeout "
                              f"{self.settings.read_timeout_seconds:g}s") from None
        if encoding in ("gzip", "x-gzip"):
            data = gunzip(data, limit=limit)
        try:
            deadline.check("queueing and reading the request")
        except BudgetExceeded as e:
            raise _Budget(str(e)) from None
        try:
            return loads_json(data, max_bytes=limit, max_depth=MAX_DEPTH)
        except InputError as e:
            raise _Reply(400, f"request body: {e}") from None
        except ValueError as e:  # syntax, or bytes that are not UTF-8/16/32 text
            raise _Reply(400, f"request body is not valid JSON: {str(e)[:200]}") from None

    def _known_node(self, name: str) -> NodeInfo | None:
        """A node as last read from the cache's table (its informers: the API's copy)."""
        cache = self.view.cache
        if cache is None:
            return None
        row = cache.table.index.get(name)
        return cache.table.infos[row] if row is not None else None

    def _read_extender_args(self, body: Any) -> wire.ExtenderArgs:
        if self.view.cache is not None:
            return wire.read_extender_args(body, known=self._known_node)
        # Standalone: a node is reused only when a request sent exactly this content before.
        items = _node_items(body)
        digests = [content_digest(raw) if isinstance(raw, dict) else None for raw in items]
        by_name: dict[str, str | None] = {}
        for raw, digest in zip(items, digests):
            name = _item_name(raw)
            if name is not None:
                by_name[name] = None if name in by_name else digest  # a duplicate name reuses nothing
        seen = self.view.seen

        def known(name: str) -> NodeInfo | None:
            digest = by_name.get(name)
            got = seen.get(digest) if digest else None
            return got if isinstance(got, NodeInfo) else None

        args = wire.read_extender_args(body, known=known)
        if args.nodes is not None:
            self.view.remember_nodes(args.nodes, digests)
        return args

    async def _args(self, request: web.Request, read: Callable[[Any], Any], deadline: Deadline) -> Any:
        body = await self._body(request, deadline)
        try:
            return read(body)
        except wire.BadRequest as e:
            raise _Reply(400, str(e)) from None
        except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, AttributeError) as e:
            # a body the reader did not foresee: still the request's fault, named as far as known
            log.warning("unforeseen request body: %s: %s", type(e).__name__, quote(str(e), 200))
            raise _Reply(400, f"request body cannot be read: {type(e).__name__}: {quote(str(e), 120)}") from None

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
        return ClusterView.table_of(args.nodes)

    # ---- verbs ------------------------------------------------------------------------------

    async def _filter(self, request: web.Request, profile: Profile, deadline: Deadline) -> web.Response:
        try:
            args: wire.ExtenderArgs = await self._args(request, self._read_extender_args, deadline)
        except _Budget as e:
            return _json(wire.error_filter_result(str(e)))
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
        try:
            args: wire.ExtenderArgs = await self._args(request, self._read_extender_args, deadline)
        except _Budget as e:
            raise _Reply(503, str(e)) from None
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
        try:
            args: wire.PreemptionArgs = await self._args(request, wire.read_preemption_args, deadline)
        except _Budget as e:
            raise _Reply(503, str(e)) from None
        try:
            if self.view.cache is not None:
                table = await self._table(None, deadline)
            else:
                # No cache: the nodes last seen in Nodes requests, with the victims sent in full.
                nodes = [n for n in map(self.view.node_seen, args.victims) if n is not None]
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
        try:
            args: wire.BindingArgs = await self._args(request, wire.read_binding_args, deadline)
        except _Budget as e:
            return _json({"Error": str(e)})
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


class _Budget(Exception):
    """The budget ran out before the body was parsed; each verb answers it its own way."""


def _get_folded(m: dict[str, Any], key: str) -> Any:
    """``m[key]`` as Go's encoding/json matches keys (exact, then case-insensitively)."""
    if key in m:
        return m[key]
    folded = key.casefold()
    return next((v for k, v in m.items() if isinstance(k, str) and k.casefold() == folded), None)


def _node_items(body: Any) -> list[Any]:
    """``Nodes.items`` of an ExtenderArgs body when it has that shape, else empty (the reader
    then names what is wrong)."""
    if not isinstance(body, dict) or _get_folded(body, "NodeNames") is not None:
        return []
    nodes = _get_folded(body, "Nodes")
    items = _get_folded(nodes, "items") if isinstance(nodes, dict) else None
    return items if isinstance(items, list) else []


def _item_name(raw: Any) -> str | None:
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


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
