"""The admission webhook's HTTPS server: routes, limits, the per-request deadline, metrics.

kube-apiserver calls an admission webhook inside every matching write and
waits for it (``timeoutSeconds``, 10 s by default; vecsched's manifests say
5), so a slow webhook slows the whole cluster's writes. This server answers
within a budget (1 s by default) or answers 504; refuses an oversized body
before reading it (413) and a malformed one with one line naming the field
(400); and never lets a fault escape as a dropped connection (500, logged).
What kube-apiserver does with a failed call is the configuration's
``failurePolicy``: Ignore for the pod mutation, Fail for the validations.

Routes::

    POST /mutate-pods          Pods: scheduler.webhook.pods
    POST /validate-podgroups   PodGroups: scheduler.webhook.podgroups
    POST /validate-config      ConfigMaps labelled vecsched.io/config: scheduler.webhook.configs
    GET  /healthz /livez       the process serves
    GET  /readyz               the namespace informer has listed namespaces (503 before, and while stopping)
    GET  /metrics              on this port, or on a plain-HTTP ``metrics_port``

Metrics: ``vecsched_admission_requests_total{webhook,result}`` (result:
allowed, patched, denied, or error for any non-200 answer) and
``vecsched_admission_request_duration_seconds{webhook}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.informer import Backoff
from scheduler.metrics import exponential_buckets
from scheduler.replies import Reply, read_bounded
from scheduler.webhook import configs, podgroups
from scheduler.webhook.cluster import NamespaceLabels, NodeCapacity
from scheduler.webhook.pods import SYSTEM_NAMESPACE, PodRouting, Verdict, mutate_pod
from scheduler.webhook.review import AdmissionRequest, BadReview, invalid_status, read_review, review_response
from scheduler.webhook.tls import ReloadingCertificate

__all__ = ["WebhookSettings", "WebhookMetrics", "WebhookServer", "serve_webhook", "WEBHOOKS", "RESULTS"]

log = logging.getLogger("vecsched.webhook")

WEBHOOKS: Final = ("mutate-pods", "validate-podgroups", "validate-config")
RESULTS: Final = ("allowed", "patched", "denied", "error")
_DURATION_BUCKETS: Final = exponential_buckets(0.0005, 2, 12)  # 0.5 ms .. 1.024 s: just past the 1 s budget
MAX_BODY_BYTES: Final = 3 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How the webhook serves (its profiles come from the ``PodRouting``)."""

    tls_cert_file: str
    tls_key_file: str
    bind_address: str = "0.0.0.0"
    port: int = 9443
    """0 picks a free port (tests)."""
    metrics_port: int | None = None
    """None: ``/metrics`` on the HTTPS port. A number: ``/metrics``, ``/healthz`` and ``/readyz`` over plain
    HTTP on that port instead (0 picks a free one), for a Prometheus that does not speak the webhook's TLS."""
    client: ClientSettings = field(default_factory=ClientSettings)
    """API access for the Namespaces (and Nodes) informers."""
    max_body_bytes: int = MAX_BODY_BYTES
    """Largest review. kube-apiserver's own request limit is 3 MiB, and what it sends a webhook is one
    object (CREATE) or two (UPDATE) of at most etcd's 1.5 MiB, a ConfigMap at most 1 MiB."""
    request_budget_seconds: float = 1.0
    """Answer (with 504 if need be) within this time; kube-apiserver waits up to ``timeoutSeconds``."""
    tls_reload_seconds: float = 1.0
    """Seconds between checks of the certificate files (two stat calls)."""
    shutdown_delay_seconds: float = 0.0
    """On SIGTERM, report not-ready and keep serving this long before closing, so that the Service's
    endpoints drop this replica before it stops answering (the command's default is 5 s)."""
    informer_backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not self.tls_cert_file or not self.tls_key_file:
            raise ValueError("the webhook serves HTTPS only: give --tls-cert-file and --tls-private-key-file")
        if self.max_body_bytes < 1024:
            raise ValueError(f"--max-body-bytes must be at least 1024, got {self.max_body_bytes}")
        if not self.request_budget_seconds > 0:
            raise ValueError(f"--request-budget must be > 0 seconds, got {self.request_budget_seconds}")
        if self.shutdown_delay_seconds < 0:
            raise ValueError(f"--shutdown-delay-seconds must be >= 0, got {self.shutdown_delay_seconds}")


class WebhookMetrics:
    """The webhook's own registry: admissions by webhook and result, latency by webhook."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("vecsched_admission_requests", "Admission reviews answered, by webhook and result "
                                "(allowed, patched, denied; error: any answer other than a review).",
                                ["webhook", "result"], registry=r)
        self.duration = Histogram("vecsched_admission_request_duration_seconds",
                                  "Time to answer an admission review, by webhook.", ["webhook"],
                                  buckets=_DURATION_BUCKETS, registry=r)
        for w in WEBHOOKS:  # every series exists from the start, at zero: rate() and alerts see them
            self.duration.labels(w)
            for result in RESULTS:
                self.requests.labels(w, result)


_Reply = Reply


_REASONS: Final = {400: "BadRequest", 413: "RequestEntityTooLarge", 500: "InternalError", 504: "Timeout"}


def _status_body(status: int, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": _REASONS.get(status, "Unknown"), "code": status}
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


Handler = Callable[[AdmissionRequest], Awaitable[Verdict]]


class WebhookServer:
    """One webhook server: ``start()``, ``stop()`` (or ``async with``); ``url`` once started."""

    def __init__(self, *, routing: PodRouting, settings: WebhookSettings, client: KubeClient | None = None) -> None:
        """``client``: an API client to use instead of connecting with ``settings.client`` (not closed here)."""
        self.routing = routing
        self.settings = settings
        self.metrics = WebhookMetrics()
        self.certificate = ReloadingCertificate(cert_file=settings.tls_cert_file, key_file=settings.tls_key_file,
                                                interval=settings.tls_reload_seconds)
        self._client = client
        self._own_client = client is None
        self.namespaces: NamespaceLabels | None = None
        self.nodes: NodeCapacity | None = None
        self._runners: list[web.AppRunner] = []
        self._stopping = False
        self.url = ""
        self.metrics_url = ""
        self._warned_kinds: set[tuple[str, str]] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    def app(self, *, admission: bool = True, metrics: bool = True) -> web.Application:
        # client_max_size makes aiohttp refuse a larger body while reading it (chunked bodies);
        # Content-Length is checked first so that an honest oversized request is refused unread.
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        if admission:
            app.router.add_post("/mutate-pods", self._route("mutate-pods", self._mutate_pods))
            app.router.add_post("/validate-podgroups", self._route("validate-podgroups", self._validate_podgroups))
            app.router.add_post("/validate-config", self._route("validate-config", self._validate_config))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        if metrics:
            app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        if self._runners:
            raise RuntimeError("WebhookServer.start() called twice; call stop() first")
        s = self.settings
        if self._client is None:
            self._client = await connect(s.client)
        self.namespaces = NamespaceLabels(client=self._client, backoff=s.informer_backoff)
        self.nodes = NodeCapacity(client=self._client, backoff=s.informer_backoff)
        self.namespaces.start()
        self.nodes.start()
        self.certificate.start()
        try:
            separate = s.metrics_port is not None
            self.url = await self._listen(self.app(metrics=not separate), s.port, tls=True)
            if s.metrics_port is not None:
                self.metrics_url = await self._listen(self.app(admission=False), s.metrics_port, tls=False)
            else:
                self.metrics_url = self.url
        except BaseException:
            await self.stop()
            raise
        # The addresses actually bound (0.0.0.0 is every interface, not 127.0.0.1), with the scheme served.
        bound = [f"{'https' if tls else 'http'}://[{a[0]}]:{a[1]}" if ":" in str(a[0])
                 else f"{'https' if tls else 'http'}://{a[0]}:{a[1]}"
                 for runner, tls in zip(self._runners, (True, False)) for a in runner.addresses]
        log.info("vecsched webhook serving on %s (profiles %s; default %s; unknown profiles: %s)", ", ".join(bound),
                 ", ".join(sorted(self.routing.profiles)), self.routing.default_profile, self.routing.unknown_profile)

    async def _listen(self, app: web.Application, port: int, *, tls: bool) -> str:
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               shutdown_timeout=self.settings.request_budget_seconds + 1.0)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.settings.bind_address, port,
                           ssl_context=self.certificate.context if tls else None, backlog=1024)
        await site.start()
        bound = int(runner.addresses[-1][1])
        host = self.settings.bind_address
        host = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"{'https' if tls else 'http'}://{host}:{bound}"

    async def drain(self) -> None:
        """Report not-ready, then keep serving for ``shutdown_delay_seconds`` (SIGTERM's first step)."""
        self._stopping = True
        if self.settings.shutdown_delay_seconds > 0:
            log.info("not ready; serving %.1fs more before stopping", self.settings.shutdown_delay_seconds)
            await asyncio.sleep(self.settings.shutdown_delay_seconds)

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish, stop the informers."""
        self._stopping = True
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        await self.certificate.stop()
        for part in (self.nodes, self.namespaces):
            if part is not None:
                await part.stop()
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ready(self) -> bool:
        return not self._stopping and self.namespaces is not None and self.namespaces.synced.is_set()

    # ---- plumbing ---------------------------------------------------------------------------

    def _route(self, webhook: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        budget = self.settings.request_budget_seconds

        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            result = "error"
            try:
                try:
                    async with asyncio.timeout(budget):
                        review = read_review(await self._body(request))
                        verdict = await handler(review)
                except _Reply as e:
                    return _status_body(e.status, e.message)
                except BadReview as e:
                    return _status_body(400, f"vecsched webhook /{webhook}: {e}")
                except TimeoutError:
                    return _status_body(504, f"vecsched webhook /{webhook}: no answer within {budget:g}s")
                except Exception as e:  # a fault: logged here, one line to the caller
                    log.exception("/%s failed", webhook)
                    return _status_body(500, f"vecsched webhook /{webhook}: internal error: {type(e).__name__}")
                result = verdict.result
                body = review_response(review.uid, allowed=verdict.allowed, patch=verdict.patch,
                                       status=verdict.status, warnings=verdict.warnings)
                return web.Response(body=json.dumps(body, separators=(",", ":")).encode(),
                                    content_type="application/json")
            finally:
                self.metrics.requests.labels(webhook, result).inc()
                self.metrics.duration.labels(webhook).observe(time.perf_counter() - started)

        return serve

    async def _body(self, request: web.Request) -> bytes:
        return await read_bounded(request, limit=self.settings.max_body_bytes, owner="webhook")

    def _unexpected_kind(self, webhook: str, review: AdmissionRequest, expected: str) -> bool:
        """True (and logged once per kind) when ``review`` is not about ``expected``: allowed unexamined."""
        if review.kind == expected:
            return False
        if (webhook, review.kind) not in self._warned_kinds:
            self._warned_kinds.add((webhook, review.kind))
            log.warning("/%s was sent a %s (expected %s): allowed without checks; check the webhook "
                        "configuration's rules", webhook, review.kind, expected)
        return True

    # ---- webhooks -----------------------------------------------------------------------------

    async def _mutate_pods(self, review: AdmissionRequest) -> Verdict:
        if review.operation != "CREATE" or review.sub_resource or self._unexpected_kind("mutate-pods", review, "Pod"):
            return Verdict(allowed=True)
        assert self.namespaces is not None
        meta = (review.object or {}).get("metadata")
        namespace = review.namespace or (str(meta.get("namespace") or "") if isinstance(meta, dict) else "")
        labels = self.namespaces.cached(namespace)
        if labels is None and namespace != SYSTEM_NAMESPACE:  # kube-system's pods are never touched
            labels = await self.namespaces.get(namespace)
        return mutate_pod(operation=review.operation, pod=review.object, namespace=namespace,
                          namespace_labels=labels, routing=self.routing)

    def _object(self, review: AdmissionRequest) -> dict[str, Any]:
        if review.object is None:
            raise BadReview(f"request.object: required for {review.operation}")
        return dict(review.object)

    def _name(self, review: AdmissionRequest, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata")
        return review.name or (str(meta.get("name") or "") if isinstance(meta, dict) else "")

    async def _validate_podgroups(self, review: AdmissionRequest) -> Verdict:
        if (review.operation not in ("CREATE", "UPDATE") or review.sub_resource
                or self._unexpected_kind("validate-podgroups", review, podgroups.KIND)):
            return Verdict(allowed=True)
        obj = self._object(review)
        assert self.nodes is not None
        errors, warnings = podgroups.validate_podgroup(obj, capacity=self.nodes.capacity())
        if errors:
            return Verdict(allowed=False, status=invalid_status(kind=podgroups.KIND, group=podgroups.GROUP,
                                                                name=self._name(review, obj), errors=errors))
        return Verdict(allowed=True, warnings=warnings)

    async def _validate_config(self, review: AdmissionRequest) -> Verdict:
        if (review.operation not in ("CREATE", "UPDATE")
                or self._unexpected_kind("validate-config", review, "ConfigMap")):
            return Verdict(allowed=True)
        obj = self._object(review)
        meta = obj.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if not isinstance(labels, dict) or configs.CONFIG_LABEL not in labels:
            return Verdict(allowed=True)  # not a vecsched configuration (any more)
        errors, warnings = configs.validate_config_map(obj)
        if errors:
            return Verdict(allowed=False, status=invalid_status(kind="ConfigMap", group="",
                                                                name=self._name(review, obj), errors=errors))
        return Verdict(allowed=True, warnings=warnings)

    # ---- probes and metrics -----------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ok")
        why = "shutting down" if self._stopping else "the namespace informer is syncing"
        return web.Response(text=f"not ready: {why}", status=503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@asynccontextmanager
async def serve_webhook(*, routing: PodRouting, settings: WebhookSettings,
                        client: KubeClient | None = None) -> AsyncIterator[WebhookServer]:
    """A webhook server serving until the block ends."""
    server = WebhookServer(routing=routing, settings=settings, client=client)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()

