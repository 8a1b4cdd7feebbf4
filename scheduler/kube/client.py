"""One configured connection to the Kubernetes API, with vecsched's errors and rate limit.

``kubernetes_asyncio`` knows how to find and authenticate to a cluster
(kubeconfig files, exec plugins, in-cluster service-account tokens that
rotate), so vecsched uses it for that and for sending requests. It does not
use the library's model objects: the scheduler reads Pods and Nodes as raw
JSON (``scoring.objects`` validates them field by field), every call is made
with ``_preload_content=False`` and the response is read here. That also
sidesteps the Python clients' known failure to deserialise the answer to
``create_namespaced_pod_binding``.

Requests pass a client-side token bucket like client-go's (``--kube-api-qps``
/ ``--kube-api-burst``). Failures leave this module only as
``scheduler.kube.errors`` exceptions, raised ``from`` the library's.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException, OpenApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from scheduler.kube.errors import GoneError, KubeError, TransportError, status_error

__all__ = ["CHUNK_SIZE", "ClientSettings", "RateLimiter", "KubeClient", "connect", "default_namespace"]

_AUTH: Final = ["BearerToken"]
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

    async def acquire(self) -> None:
        """Take one token, waiting until one is available (fair: callers are served in order)."""
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


def _library_error(resp: aiohttp.ClientResponse, body: bytes) -> ApiException:
    """The library's own exception for a failed answer, kept as the ``__cause__`` of ours."""
    e = ApiException(status=resp.status, reason=resp.reason)
    e.body = body
    e.headers = resp.headers
    return e


def _raise_for_status(resp: aiohttp.ClientResponse, body: bytes) -> None:
    if resp.status >= 400:
        err = status_error(code=resp.status, body=body, headers=resp.headers)
        raise err from _library_error(resp, body)


class KubeClient:
    """A configured API client: JSON requests, watch streams and bindings."""

    def __init__(self, *, api: k8s.ApiClient, settings: ClientSettings, owns_api: bool = True) -> None:
        self.api = api
        self.settings = settings
        self.limiter = RateLimiter(qps=settings.qps, burst=settings.burst)
        self._core = k8s.CoreV1Api(api)
        self._owns_api = owns_api

    def with_own_limiter(self) -> KubeClient:
        """The same connection with a separate rate limit (kube-scheduler gives Events their own
        client, so that reporting never slows binding); closing it leaves this one open."""
        return KubeClient(api=self.api, settings=self.settings, owns_api=False)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    async def close(self) -> None:
        if self._owns_api:
            await self.api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                    body: Any = None, content_type: str = "application/json",
                    timeout: float | aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        await self.limiter.acquire()
        try:
            resp: aiohttp.ClientResponse = await self.api.call_api(
                path, method, query_params=list(query), header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body, auth_settings=_AUTH, _preload_content=False,
                _request_timeout=timeout if timeout is not None else self.settings.timeout_seconds)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"{method} {path}: {type(e).__name__}: {e}") from e
        except (OpenApiException, ConfigException) as e:
            raise KubeError(f"{method} {path}: {e}") from e
        return resp

    async def request(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
                      content_type: str = "application/json", timeout: float | None = None) -> Any:
        """One call; the decoded JSON answer. Raises a ``KubeError`` subclass on any failure."""
        resp = await self._call(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        try:
            data = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"{method} {path}: reading the answer: {type(e).__name__}: {e}") from e
        finally:
            resp.release()
        _raise_for_status(resp, data)
        try:
            return json.loads(data) if data else None
        except ValueError as e:
            raise KubeError(f"{method} {path}: the answer is not JSON: {data[:100]!r}") from e

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
        await self.limiter.acquire()
        path = f"POST /api/v1/namespaces/{namespace}/pods/{name}/binding"
        try:
            # _preload_content=False: the library cannot deserialise the binding answer.
            resp = cast(aiohttp.ClientResponse, await self._core.create_namespaced_pod_binding(
                name, namespace, cast(Any, body), _preload_content=False,
                _request_timeout=self.settings.timeout_seconds))
            try:
                data = await resp.read()
            finally:
                resp.release()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"{path}: {type(e).__name__}: {e}") from e
        except (OpenApiException, ConfigException) as e:
            raise KubeError(f"{path}: {e}") from e
        _raise_for_status(resp, data)

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


