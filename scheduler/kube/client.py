"""One configured connection to the Kubernetes API, with vecsched's errors and rate limit.

``kubernetes_asyncio`` knows how to find and authenticate to a cluster
(kubeconfig files, exec plugins, in-cluster service-account tokens that
rotate), so vecsched uses it for that: its ``Configuration`` gives the host,
the Authorization header (refreshed through its ``refresh_api_key_hook``, as
the library does before every request) and the proxy settings, and its
session's connector holds the TLS setup (CA, client certificates). Requests
themselves are sent here: the library's request path (header sanitising,
``sanitize_for_serialization``, model objects, a JSON encode per call) costs
more CPU than the scheduling decision a request carries. Reads and watches go
through plain ``aiohttp`` on the library's session; writes (bindings, Events,
patches: several per scheduled pod) through ``scheduler.kube.http1``'s
pipelined connections, with a TLS context built from the same configuration as
the library builds its own (CA, client certificate, ``verify_ssl``), unless a
proxy is configured. Headers are built once (again only when the token
changes), bodies are encoded once with ``orjson`` (``scheduler.kube.wire``),
answers are read as raw JSON (``scoring.objects`` validates Pods and Nodes
field by field).

Requests pass a client-side token bucket like client-go's (``--kube-api-qps``
/ ``--kube-api-burst``). Failures leave this module only as
``scheduler.kube.errors`` exceptions, raised ``from`` the library's (or
``aiohttp``'s).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException, OpenApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from scheduler.kube import wire
from scheduler.kube.errors import GoneError, KubeError, TransportError, status_error
from scheduler.kube.http1 import Answer, Http1Pool, header_block

__all__ = ["CHUNK_SIZE", "ClientSettings", "RateLimiter", "KubeClient", "connect", "default_namespace"]

CHUNK_SIZE: Final = 500
"""Items per list request when listing in pages: kubectl's ``--chunk-size`` default."""
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to reach the API server and how hard to use it."""

    kubeconfig: str | None = None
    """Path of a kubeconfig file; None: ``$KUBECONFIG``, else in-cluster config, else ``~/.kube/config``."""
    context: str | None = None
    """kubeconfig context; None: the file's current-context."""
    qps: float = 2000.0
    """Sustained requests per second (kube-scheduler's ``--kube-api-qps``). Its default of 50
    would cap binding at 50 pods/s; vecsched decides far faster, so its default lets binding
    reach 2,000 pods/s. A real API server protects itself with priority and fairness (429s,
    which the binder backs off from)."""
    burst: int = 4000
    """Requests allowed at once above ``qps`` (``--kube-api-burst``)."""
    timeout_seconds: float = 30.0
    """Total time allowed for one non-watch request."""
    max_connections: int = 100
    """Simultaneous HTTP connections (watches hold one each)."""

    def __post_init__(self) -> None:
        if self.qps <= 0:
            raise ValueError(f"kube-api-qps must be > 0, got {self.qps}")
        if self.burst < 1:
            raise ValueError(f"kube-api-burst must be >= 1, got {self.burst}")


class RateLimiter:
    """A token bucket: ``qps`` tokens per second, holding at most ``burst``."""

    def __init__(self, *, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None
        self._lock = asyncio.Lock()
        self._queued = 0
        """Callers waiting for the lock or holding it: while there are any, nobody takes the fast path."""

    async def acquire(self) -> None:
        """Take one token, waiting until one is available (fair: callers are served in order)."""
        if not self._queued:  # nobody waits: take a token without the lock when there is one
            now = asyncio.get_running_loop().time()
            if self._last is not None:
                self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
        self._queued += 1
        try:
            async with self._lock:
                loop = asyncio.get_running_loop()
                now = loop.time()
                if self._last is not None:
                    self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
                self._last = now
                if self._tokens < 1.0:
                    wait = (1.0 - self._tokens) / self.qps
                    await asyncio.sleep(wait)
                    self._tokens = 1.0
                    self._last = loop.time()
                self._tokens -= 1.0
        finally:
            self._queued -= 1


def _library_error(resp: aiohttp.ClientResponse | Answer, body: bytes) -> ApiException:
    """The library's own exception for a failed answer, kept as the ``__cause__`` of ours."""
    e = ApiException(status=resp.status, reason=resp.reason)
    e.body = body
    e.headers = resp.headers
    return e


def _raise_for_status(resp: aiohttp.ClientResponse | Answer, body: bytes) -> None:
    if resp.status >= 400:
        err = status_error(code=resp.status, body=body, headers=resp.headers)
        raise err from _library_error(resp, body)


_JSON: Final = "application/json"


class _Auth:
    """The headers every request carries: the library's default headers (User-Agent), its
    cookie, and the Authorization header its ``Configuration`` produces. Rebuilt only when the
    token changed: the library's refresh hook (in-cluster tokens re-read from their file) is
    called before every request, as ``get_api_key_with_prefix`` calls it; a kubeconfig's
    exec plugin or OIDC refresher replaces ``api_key`` in place, which the next request sees."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self.cfg: k8s.Configuration = api.configuration
        self._token: object = None
        self._by_type: dict[str, dict[str, str]] = {}
        self._blocks: dict[str, tuple[dict[str, str], bytes]] = {}

    async def headers(self, content_type: str) -> dict[str, str]:
        cfg = self.cfg
        hook: Any = cfg.refresh_api_key_hook
        if hook is not None:
            result = hook(cfg)
            if asyncio.iscoroutine(result):
                await result
        token = cfg.api_key.get("BearerToken")
        if token is not self._token or not self._by_type:
            self._token, self._by_type = token, {}
        cached = self._by_type.get(content_type)
        if cached is None:
            cached = self._by_type[content_type] = self._build(content_type)
            self._blocks.pop(content_type, None)
        return cached

    async def block(self, content_type: str) -> bytes:
        """``headers`` as the lines of an HTTP/1.1 request (``http1.header_block``)."""
        headers = await self.headers(content_type)
        cached = self._blocks.get(content_type)
        if cached is None or cached[0] is not headers:
            try:
                cached = self._blocks[content_type] = (headers, header_block(headers))
            except ValueError as e:  # a token with a line break, say
                raise KubeError(f"cannot send the client's headers: {e}") from e
        return cached[1]

    def _build(self, content_type: str) -> dict[str, str]:
        headers: dict[str, str] = {str(k): str(v) for k, v in self.api.default_headers.items()}
        if self.api.cookie:
            headers["Cookie"] = str(self.api.cookie)
        headers["Accept"] = _JSON
        headers["Content-Type"] = content_type
        token = self.cfg.api_key.get("BearerToken")
        if token:
            prefix = self.cfg.api_key_prefix.get("BearerToken")
            headers["authorization"] = f"{prefix} {token}" if prefix else str(token)
        return headers


class KubeClient:
    """A configured API client: JSON requests, watch streams and bindings."""

    def __init__(self, *, api: k8s.ApiClient, settings: ClientSettings, owns_api: bool = True,
                 writes: Http1Pool | None = None) -> None:
        self.api = api
        self.settings = settings
        self.limiter = RateLimiter(qps=settings.qps, burst=settings.burst)
        self._owns_api = owns_api
        self._auth = _Auth(api)
        self._host = str(api.configuration.host).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        rest = api.rest_client
        extra: dict[str, Any] = {}
        if rest.proxy:
            extra["proxy"] = rest.proxy
        if rest.proxy_headers:
            extra["proxy_headers"] = rest.proxy_headers
        if rest.server_hostname:
            extra["server_hostname"] = rest.server_hostname
        self._extra = extra
        if writes is None and owns_api:
            writes = _write_pool(api.configuration, settings)
        self._writes = writes
        """Where writes go; None: through ``aiohttp`` like reads (a proxy is configured)."""

    def with_own_limiter(self) -> KubeClient:
        """The same connection with a separate rate limit (kube-scheduler gives Events their own
        client, so that reporting never slows binding); closing it leaves this one open."""
        return KubeClient(api=self.api, settings=self.settings, owns_api=False, writes=self._writes)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    async def close(self) -> None:
        if self._owns_api:
            if self._writes is not None:
                await self._writes.close()
            await self.api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                    data: bytes | None = None, content_type: str = _JSON,
                    timeout: float | aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """Send one request (``data`` already encoded) and return the open response."""
        await self.limiter.acquire()
        url = self._host + path
        if query:
            url += "?" + urlencode(query)
        if timeout is None:
            timeout = self._timeout
        elif not isinstance(timeout, aiohttp.ClientTimeout):
            timeout = aiohttp.ClientTimeout(total=timeout)
        try:
            headers = await self._auth.headers(content_type)
            # The session is looked up per call: ``connect`` may have swapped it for one that skips
            # the proxy-variable lookup, keeping the library's connector (its TLS setup).
            session: aiohttp.ClientSession = self.api.rest_client.pool_manager
            return await session.request(method, url, headers=headers, data=data, timeout=timeout, **self._extra)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"{method} {path}: {type(e).__name__}: {e}") from e
        except (OpenApiException, ConfigException) as e:  # e.g. the refresh hook found no token
            raise KubeError(f"{method} {path}: {e}") from e

    async def _exchange(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                        data: bytes | None = None, content_type: str = _JSON,
                        timeout: float | None = None) -> bytes:
        """One call; the answer's bytes once its status is checked."""
        if self._writes is not None and method != "GET":
            return await self._write(method, path, query=query, data=data, content_type=content_type, timeout=timeout)
        resp = await self._call(method, path, query=query, data=data, content_type=content_type, timeout=timeout)
        try:
            answer = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"{method} {path}: reading the answer: {type(e).__name__}: {e}") from e
        finally:
            resp.release()
        _raise_for_status(resp, answer)
        return answer

    async def _write(self, method: str, path: str, *, query: Sequence[tuple[str, str]], data: bytes | None,
                     content_type: str, timeout: float | None) -> bytes:
        """``_exchange`` on the pipelined connections."""
        await self.limiter.acquire()
        target = path + ("?" + urlencode(query) if query else "")
        try:
            headers = await self._auth.block(content_type)
        except (OpenApiException, ConfigException) as e:  # e.g. the refresh hook found no token
            raise KubeError(f"{method} {path}: {e}") from e
        assert self._writes is not None
        answer = await self._writes.request(method, target, headers=headers, body=data,
                                            timeout=self.settings.timeout_seconds if timeout is None else timeout)
        _raise_for_status(answer, answer.body)
        return answer.body

    async def request(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
                      content_type: str = _JSON, timeout: float | None = None) -> Any:
        """One call; the decoded JSON answer. Raises a ``KubeError`` subclass on any failure."""
        data = wire.dumps(body) if body is not None else None
        answer = await self._exchange(method, path, query=query, data=data, content_type=content_type, timeout=timeout)
        try:
            return wire.loads(answer) if answer else None
        except (ValueError, RecursionError) as e:
            raise KubeError(f"{method} {path}: the answer is not JSON: {answer[:100]!r}") from e

    async def send(self, method: str, path: str, *, body: Any = None, content_type: str = _JSON) -> None:
        """One call whose answer is not needed, only its success (an Event, a status patch):
        ``request`` without decoding the answer."""
        await self._exchange(method, path, data=wire.dumps(body) if body is not None else None,
                             content_type=content_type)

    async def list_items(self, path: str, *, query: Sequence[tuple[str, str]] = (),
                         chunk_size: int = CHUNK_SIZE) -> list[Any]:
        """Every item of the collection at ``path``, in pages of ``chunk_size`` (0: one request)
        with ``limit`` and ``continue``, as kubectl's ``--chunk-size`` lists. A ``continue`` token
        that expired (410) while paging restarts with one full list, as client-go's pager does."""
        items: list[Any] = []
        token = ""
        while True:
            paging = ([("limit", str(chunk_size))] if chunk_size > 0 else []) + ([("continue", token)] if token else [])
            try:
                page = await self.request("GET", path, query=[*query, *paging])
            except GoneError:
                if not token:
                    raise
                page, items = await self.request("GET", path, query=query), []
            items += (page or {}).get("items") or []
            token = ((page or {}).get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    @asynccontextmanager
    async def stream(self, path: str, *, query: Sequence[tuple[str, str]], read_timeout: float) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streaming GET (a watch): the open response, checked for status, closed on exit."""
        timeout = aiohttp.ClientTimeout(connect=10.0, sock_connect=10.0, sock_read=read_timeout)
        resp = await self._call("GET", path, query=query, timeout=timeout)
        try:
            if resp.status >= 400:
                try:
                    data = await resp.read()
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                    raise TransportError(f"GET {path}: {type(e).__name__}: {e}") from e
                _raise_for_status(resp, data)
            yield resp
        finally:
            resp.close()

    async def bind(self, *, namespace: str, name: str, uid: str, node: str) -> None:
        """POST ``pods/<name>/binding`` with a UID precondition (a recreated pod is not bound)."""
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        # The answer (a Status) is not read: a failure's status and body are all that matter.
        await self._exchange("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", data=wire.dumps(body))

    async def patch(self, path: str, *, body: Mapping[str, Any], content_type: str = MERGE_PATCH) -> Any:
        return await self.request("PATCH", path, body=dict(body), content_type=content_type)


_SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _kubeconfig_path(settings: ClientSettings) -> str | None:
    """The kubeconfig to read (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``); None in a cluster."""
    path = settings.kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    return path or str(Path("~/.kube/config").expanduser())


def default_namespace(settings: ClientSettings) -> str:
    """The namespace kubectl would use without ``-n``: the kubeconfig context's (``settings.context``
    or the current one), the service account's in a cluster, else ``default``. Call it after
    ``connect`` succeeded, which has checked the file and the context."""
    path = _kubeconfig_path(settings)
    if path is None:
        try:
            return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=path)
    except ConfigException as e:
        raise ValueError(f"cannot load Kubernetes client configuration: {e}") from e
    chosen = next((c for c in contexts if c.get("name") == settings.context), None) if settings.context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


def _ssl_context(cfg: k8s.Configuration) -> ssl.SSLContext:
    """The TLS setup the library gives its own session (``kubernetes_asyncio.rest``), from the
    same configuration: CA file, client certificate, ``verify_ssl``, strict X.509 checks."""
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, keyfile=cfg.key_file)
    if not cfg.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cfg.disable_strict_ssl_verification:
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.set_alpn_protocols(["http/1.1"])
    return context


def _write_pool(cfg: k8s.Configuration, settings: ClientSettings) -> Http1Pool | None:
    """Pipelined connections for writes, as many as ``settings.max_connections`` before any is
    pipelined (a server serves each connection's requests in turn, and shares itself between
    connections: fewer would queue binds behind other clients' writes); None when a proxy is set
    (the library's session knows how to go through one)."""
    if cfg.proxy or any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    host = str(cfg.host)
    return Http1Pool(url=host, ssl_context=_ssl_context(cfg) if host.startswith("https://") else None,
                     server_hostname=cfg.tls_server_name or None,
                     max_connections=settings.max_connections)


async def _configuration(settings: ClientSettings) -> k8s.Configuration:
    cfg = k8s.Configuration()
    path = _kubeconfig_path(settings)
    try:
        if path is None:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            first = path.split(os.pathsep)[0]
            if not Path(first).exists():
                raise ValueError(f"kubeconfig {first} does not exist; pass --kubeconfig, set KUBECONFIG, or run in a cluster")
            await k8s_config.load_kube_config(config_file=path, context=settings.context, client_configuration=cfg,
                                              persist_config=False)
    except ConfigException as e:
        raise ValueError(f"cannot load Kubernetes client configuration: {e}") from e
    cfg.connection_pool_maxsize = settings.max_connections
    return cfg


_PROXY_VARS: Final = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


async def _without_env_lookups(api: k8s.ApiClient) -> None:
    """The library's session has ``trust_env=True``, which costs a thread hop per request to
    look for proxy variables. When none is set, swap in a session that skips the lookup."""
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return
    rest = api.rest_client
    old: aiohttp.ClientSession = rest.pool_manager
    connector = old.connector
    if connector is None:
        return
    # Keep the library's connector (its TLS setup) and hand it to the new session.
    old._connector_owner = False
    await old.close()
    rest.pool_manager = aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=2**21)


async def connect(settings: ClientSettings | None = None) -> KubeClient:
    """A ``KubeClient`` from ``settings`` (kubeconfig, ``$KUBECONFIG`` or in-cluster)."""
    settings = settings or ClientSettings()
    cfg = await _configuration(settings)
    api = k8s.ApiClient(configuration=cfg)
    await _without_env_lookups(api)
    return KubeClient(api=api, settings=settings)


