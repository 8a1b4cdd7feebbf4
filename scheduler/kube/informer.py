"""Informers: the cluster's Nodes, Pods, Namespaces (and more), kept current by list-then-watch.

The scheduler decides from its own copy of the cluster and must never miss a
change for long: a missed pod deletion strands capacity, a missed binding
over-commits a node. Watching is built as a stack of small async generators,
one concern each, so that each failure mode has exactly one place that
handles it:

``_json_lines``         bytes of one HTTP response -> decoded JSON lines
``_watch_once``         one watch request from a resourceVersion -> events;
                        BOOKMARKs move the resourceVersion, an in-stream
                        410 ERROR is raised as ``GoneError``
``_list_then_watch``    list (paged), diff against what was known, then watch
                        again and again from the last resourceVersion; a 410
                        means list again, not fail
``watch_resource``      reconnect with exponential backoff and jitter after
                        any API failure, resuming where it left off

``Informer`` runs the stack as a named task and hands every change to a
synchronous handler as a ``Delta``. All pods are watched, whatever their
scheduler: any pod on a node uses its capacity.

The stack reads of an object only what identifies it (``metadata.name`` and
``namespace``, ``resourceVersion``) and never fails on the rest: what the rest
says is the handler's to check. An object without a readable name cannot be
told apart from others, so it is passed over with a warning line (at most one a
minute per collection), and the watch goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp

from scheduler.kube.client import KubeClient
from scheduler.tasks import cancel
from scheduler.kube.errors import (ClientError, GoneError, KubeError, NotFoundError, TooManyRequests, TransportError,
                                   status_error)
from scoring.safe_input import quote

__all__ = ["Backoff", "Delta", "Informer", "watch_resource", "NODES", "PODS", "NAMESPACES", "WORKLOADS",
           "POD_DISRUPTION_BUDGETS", "PODGROUPS", "PERSISTENT_VOLUMES", "PERSISTENT_VOLUME_CLAIMS", "STORAGE_CLASSES",
           "CSI_NODES", "CSI_DRIVERS", "CSI_STORAGE_CAPACITIES", "STORAGE"]

log = logging.getLogger("vecsched.informer")

NODES: Final = "/api/v1/nodes"
PODS: Final = "/api/v1/pods"
NAMESPACES: Final = "/api/v1/namespaces"
POD_DISRUPTION_BUDGETS: Final = "/apis/policy/v1/poddisruptionbudgets"
PODGROUPS: Final = "/apis/scheduling.x-k8s.io/v1alpha1/podgroups"
"""scheduler-plugins' PodGroups (a CRD: served only where it is installed)."""
WORKLOADS: Final = (
    ("/api/v1/services", "Service"),
    ("/api/v1/replicationcontrollers", "ReplicationController"),
    ("/apis/apps/v1/replicasets", "ReplicaSet"),
    ("/apis/apps/v1/statefulsets", "StatefulSet"),
)
"""Collections whose selectors give PodTopologySpread its default constraints (list items carry no kind)."""
PERSISTENT_VOLUMES: Final = "/api/v1/persistentvolumes"
PERSISTENT_VOLUME_CLAIMS: Final = "/api/v1/persistentvolumeclaims"
STORAGE_CLASSES: Final = "/apis/storage.k8s.io/v1/storageclasses"
CSI_NODES: Final = "/apis/storage.k8s.io/v1/csinodes"
CSI_DRIVERS: Final = "/apis/storage.k8s.io/v1/csidrivers"
CSI_STORAGE_CAPACITIES: Final = "/apis/storage.k8s.io/v1/csistoragecapacities"
STORAGE: Final = (
    (PERSISTENT_VOLUMES, "PersistentVolume"),
    (PERSISTENT_VOLUME_CLAIMS, "PersistentVolumeClaim"),
    (STORAGE_CLASSES, "StorageClass"),
    (CSI_NODES, "CSINode"),
    (CSI_DRIVERS, "CSIDriver"),
    (CSI_STORAGE_CAPACITIES, "CSIStorageCapacity"),
)
"""The storage objects the volume plugins read (upstream's VolumeBinding informers), with their kinds."""
_PAGE: Final = 500  # client-go's reflector page size
_MIN_WATCH_TIMEOUT: Final = 300.0  # client-go's minWatchTimeout: watches last 5-10 minutes
_READ_SLACK: Final = 30.0  # a stream silent this long past its timeout is dead
_QUICK_CLOSE: Final = 1.0  # a stream that ends sooner than this with no event ...
_QUICK_CLOSE_PAUSE: Final = 0.1  # ... is re-opened after this pause (semi-arbitrary: <= 10 watches/s)

DeltaType = Literal["ADDED", "MODIFIED", "DELETED", "SYNCED"]


@dataclass(frozen=True, slots=True)
class Delta:
    """One change: an object ADDED, MODIFIED or DELETED, or SYNCED after a complete list."""

    type: DeltaType
    obj: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter (client-go's reflector: 0.8 s doubling to 30 s, jitter 1.0)."""

    initial: float = 0.8
    """First delay, seconds."""
    cap: float = 30.0
    """Longest delay, seconds."""
    factor: float = 2.0
    jitter: float = 1.0
    """Each delay is stretched by up to this fraction, so that replicas do not retry in step."""

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The delays before the 1st, 2nd, ... retry."""
        rng = rng or random.Random()
        d = self.initial
        while True:
            yield d * (1.0 + self.jitter * rng.random())
            d = min(d * self.factor, self.cap)


_UNNAMED_LOG_INTERVAL: Final = 60.0  # seconds between two lines about unidentifiable objects of one collection


def _meta(obj: object) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _key(obj: Mapping[str, Any]) -> str:
    """``ns/name`` (``name`` when cluster-scoped), "" when the object has no readable name."""
    meta = _meta(obj)
    ns, name = meta.get("namespace"), meta.get("name")
    if not isinstance(name, str) or not name or (ns is not None and not isinstance(ns, str)):
        return ""
    return f"{ns}/{name}" if ns else name


def _rv(obj: Mapping[str, Any]) -> str:
    rv = _meta(obj).get("resourceVersion")
    return rv if isinstance(rv, str) else ""


class _Unnamed:
    """Says, at most once per ``_UNNAMED_LOG_INTERVAL``, that a collection held an object
    without a readable name (passed over: nothing could update or delete it later)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._last = -_UNNAMED_LOG_INTERVAL

    def __call__(self, obj: object) -> None:
        now = time.monotonic()
        if now - self._last >= _UNNAMED_LOG_INTERVAL:
            self._last = now
            meta = obj.get("metadata") if isinstance(obj, Mapping) else None
            got = quote(meta.get("name")) if isinstance(meta, Mapping) else f"metadata {quote(meta)}"
            log.warning("%s: passing over an object without a readable metadata.name/namespace (got %s)",
                        self.path, got)


async def _json_lines(resp: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """Newline-delimited JSON from a streaming response until it ends."""
    try:
        async for line in resp.content:
            if line.strip():
                try:
                    yield json.loads(line)
                except (ValueError, RecursionError) as e:  # RecursionError: nested too deep to decode
                    raise TransportError(f"watch stream sent a line that is not JSON: {line[:100]!r}") from e
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:  # ValueError: line too long
        raise TransportError(f"watch stream broke: {type(e).__name__}: {e}") from e


async def _watch_once(client: KubeClient, *, path: str, rv: list[str]) -> AsyncIterator[dict[str, Any]]:
    """One watch request from ``rv[0]``; yields ADDED/MODIFIED/DELETED events and keeps ``rv[0]`` current."""
    timeout = int(_MIN_WATCH_TIMEOUT * (1.0 + random.random()))
    query = [("watch", "true"), ("resourceVersion", rv[0]), ("allowWatchBookmarks", "true"),
             ("timeoutSeconds", str(timeout))]
    async with client.stream(path, query=query, read_timeout=timeout + _READ_SLACK) as resp:
        async for ev in _json_lines(resp):
            kind = ev.get("type") if isinstance(ev, dict) else None
            obj = ev.get("object") if isinstance(ev, dict) else None
            if not isinstance(obj, dict):
                raise TransportError(f"watch event without an object: {str(ev)[:100]}")
            if kind == "ERROR":
                raise status_error(code=int(obj.get("code") or 500), body=json.dumps(obj).encode())
            if obj_rv := _rv(obj):
                rv[0] = obj_rv
            if kind == "BOOKMARK":
                continue
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                yield ev


async def _list(client: KubeClient, *, path: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    cont = ""
    while True:
        query = [("limit", str(_PAGE))] + ([("continue", cont)] if cont else [])
        page = await client.request("GET", path, query=query)
        got = page.get("items") if isinstance(page, Mapping) else None
        items.extend(got if isinstance(got, list) else [])
        meta = _meta(page)
        cont = meta.get("continue") or ""
        if not isinstance(cont, str) or not cont:
            return items, str(meta.get("resourceVersion") or "")


async def _list_then_watch(client: KubeClient, *, path: str, known: dict[str, Mapping[str, Any]],
                           rv: list[str]) -> AsyncIterator[Delta]:
    """Watch from ``rv[0]`` (listing first when it is empty or expired); keeps ``known`` current."""
    unnamed = _Unnamed(path)
    while True:
        if not rv[0]:
            items, list_rv = await _list(client, path=path)
            fresh: dict[str, Mapping[str, Any]] = {}
            for item in items:
                if k := _key(item):
                    fresh[k] = item
                else:
                    unnamed(item)
            for k in [k for k in known if k not in fresh]:
                yield Delta("DELETED", known.pop(k))
            for k, o in fresh.items():
                old = known.get(k)
                if old is None or _rv(old) != _rv(o):
                    known[k] = o
                    yield Delta("MODIFIED" if old is not None else "ADDED", o)
            rv[0] = list_rv
            yield Delta("SYNCED")
        loop = asyncio.get_running_loop()
        opened, events = loop.time(), 0
        try:
            async for ev in _watch_once(client, path=path, rv=rv):
                events += 1
                obj = ev["object"]
                k = _key(obj)
                if not k:
                    unnamed(obj)
                    continue
                if ev["type"] == "DELETED":
                    known.pop(k, None)
                else:
                    known[k] = obj
                yield Delta(ev["type"], obj)
        except GoneError:
            log.info("watch %s: resourceVersion %s expired, listing again", path, rv[0])
            rv[0] = ""
            continue
        # A stream that ended cleanly (timeout, server closing it) is simply watched again --
        # but a server that closes every stream at once is not hammered: at most 10 per second.
        if not events and loop.time() - opened < _QUICK_CLOSE:
            await asyncio.sleep(_QUICK_CLOSE_PAUSE)


async def watch_resource(client: KubeClient, *, path: str, backoff: Backoff = Backoff(),
                         rng: random.Random | None = None) -> AsyncGenerator[Delta, None]:
    """Every change of the collection at ``path``, forever, surviving API failures."""
    known: dict[str, Mapping[str, Any]] = {}
    rv = [""]
    delays = backoff.delays(rng)
    while True:
        try:
            async for delta in _list_then_watch(client, path=path, known=known, rv=rv):
                delays = backoff.delays(rng)  # healthy again: the next failure starts over
                yield delta
        except KubeError as e:
            wait = next(delays)
            log.warning("watch %s failed (%s); retrying in %.2fs", path, e, wait)
            await asyncio.sleep(wait)


class Informer:
    """Runs ``watch_resource`` for one collection and feeds a handler; ``synced`` after the first list.

    An ``optional`` informer watches a resource some servers do not serve (e.g. ReplicaSets on
    the embedded API server): if listing it answers 404, it logs that once and stays idle.
    """

    def __init__(self, *, client: KubeClient, path: str, handler: Callable[[Delta], None],
                 backoff: Backoff = Backoff(), optional: bool = False) -> None:
        self.client = client
        self.path = path
        self.handler = handler
        self.backoff = backoff
        self.optional = optional
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"informer {self.path} already started")
        self._task = asyncio.create_task(self._run(), name=f"informer {self.path}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _served(self) -> bool:
        delays = self.backoff.delays()
        while True:
            try:
                await self.client.request("GET", self.path, query=[("limit", "1")])
                return True
            except NotFoundError:
                log.info("%s is not served by the API server; not watching it", self.path)
                self.synced.set()
                return False
            except ClientError as e:
                if not isinstance(e, TooManyRequests):
                    log.warning("cannot list %s (%s); not watching it", self.path, e)  # e.g. 403: RBAC
                    self.synced.set()
                    return False
                wait = max(e.retry_after, next(delays))
                await asyncio.sleep(wait)
            except KubeError as e:
                wait = next(delays)
                log.warning("probing %s failed (%s); retrying in %.2fs", self.path, e, wait)
                await asyncio.sleep(wait)

    async def _run(self) -> None:
        if self.optional and not await self._served():
            return
        while True:
            try:
                async for delta in watch_resource(self.client, path=self.path, backoff=self.backoff):
                    if delta.type == "SYNCED":
                        self.synced.set()
                    try:
                        self.handler(delta)
                    except Exception:  # a bug in a handler must not stop the watch
                        log.exception("informer %s: handler failed on %s", self.path, delta.type)
            except Exception:  # a bug below: start over from a fresh list rather than go blind
                log.exception("informer %s failed; starting over", self.path)
                await asyncio.sleep(self.backoff.cap)
