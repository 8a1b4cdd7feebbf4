"""Informers: the cluster's Nodes, Pods, Namespaces (and more), kept current by list-then-watch.

The scheduler decides from its own copy of the cluster and must never miss a
change for long: a missed pod deletion strands capacity, a missed binding
over-commits a node. Watching is built as a stack of small async generators,
one concern each, so that each failure mode has exactly one place that
handles it:

``_json_lines``         bytes of one HTTP response -> decoded JSON lines
                        (``orjson`` where it is exact: ``scheduler.kube.wire``)
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
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp

from scheduler.kube import wire
from scheduler.kube.client import KubeClient
from scheduler.tasks import cancel
from scheduler.kube.errors import (ClientError, GoneError, KubeError, NotFoundError, TooManyRequests, TransportError,
                                   status_error)
from scoring.safe_input import is_mapping, quote

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
    meta = obj.get("metadata") if is_mapping(obj) else None
    return meta if is_mapping(meta) else {}


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


_Known = tuple[str, str, str, str]
"""What the informer remembers of an object it delivered: (resourceVersion, namespace, name,
uid) -- a relist passes over an object whose resourceVersion it has, and names one that
vanished in a DELETED delta (whose handlers read only ``metadata``'s name, namespace and uid).
Not the object: the handlers keep what they need of it, and a second reference to each of
300,000 pods would keep gigabytes alive."""


def _known(obj: Mapping[str, Any]) -> _Known:
    meta = _meta(obj)
    ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
    return (_rv(obj), ns if isinstance(ns, str) else "", name if isinstance(name, str) else "",
            uid if isinstance(uid, str) else "")


def _tombstone(known: _Known) -> dict[str, Any]:
    """The object a relist's DELETED delta carries: its last known metadata."""
    rv, ns, name, uid = known
    meta = {"name": name, "uid": uid, "resourceVersion": rv, **({"namespace": ns} if ns else {})}
    return {"metadata": meta}


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


_MAX_LINE: Final = 4 * 1024 * 1024
"""Longest watch line accepted: one event holds one object, at most the API's 3 MiB request limit
(``MAX_OBJECT_BYTES``) plus its envelope; 4 MiB is also what aiohttp's own line reader allowed
with the session's 2 MiB read buffer."""


async def _json_lines(resp: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """Newline-delimited JSON from a streaming response until it ends. The lines are split from
    the chunks as they arrive (one ``split`` per chunk: reading line by line through aiohttp
    cost more than decoding the line)."""
    parts: list[bytes] = []  # the start of a line not yet complete
    size = 0
    try:
        async for chunk in resp.content.iter_any():
            if chunk.find(b"\n") < 0:
                parts.append(chunk)
                size += len(chunk)
                if size > _MAX_LINE:
                    raise ValueError(f"a line longer than {_MAX_LINE:,} bytes")
                continue
            if parts:
                parts.append(chunk)
                chunk, parts, size = b"".join(parts), [], 0
            lines = chunk.split(b"\n")
            if tail := lines.pop():
                parts, size = [tail], len(tail)
            for line in lines:
                if line[:1] == b"{" or line.strip():  # an event; else a blank keep-alive line
                    yield _decoded(line)
        if parts and (last := b"".join(parts)).strip():  # the last line, without its newline
            yield _decoded(last)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:  # ValueError: line too long
        raise TransportError(f"watch stream broke: {type(e).__name__}: {e}") from e


def _decoded(line: bytes) -> Any:
    """One watch line's JSON."""
    try:
        return wire.loads(line)
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deep to decode
        raise TransportError(f"watch stream sent a line that is not JSON: {line[:100]!r}") from e


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
                raise status_error(code=int(obj.get("code") or 500), body=wire.dumps(obj))
            if obj_rv := _rv(obj):
                rv[0] = obj_rv
            if kind == "BOOKMARK":
                continue
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                yield ev


async def _relist(client: KubeClient, *, path: str, known: dict[str, _Known], unnamed: _Unnamed,
                  rv: list[str]) -> AsyncIterator[Delta]:
    """List ``path`` page by page (client-go's reflector page size), handing each page's new and
    changed objects on before the next page is fetched -- so that no more than a page of whole
    objects is alive at once --, then DELETED for what ``known`` had and the list no longer
    holds, then SYNCED; ``rv[0]`` becomes the list's resourceVersion."""
    seen: set[str] = set()
    cont = ""
    while True:
        query = [("limit", str(_PAGE))] + ([("continue", cont)] if cont else [])
        page = await client.request("GET", path, query=query)
        got = page.get("items") if isinstance(page, Mapping) else None
        for item in got if isinstance(got, list) else ():
            k = _key(item)
            if not k:
                unnamed(item)
                continue
            seen.add(k)
            old = known.get(k)
            if old is None or old[0] != _rv(item):
                known[k] = _known(item)
                yield Delta("MODIFIED" if old is not None else "ADDED", item)
        meta = _meta(page)
        cont = meta.get("continue") or ""
        if not isinstance(cont, str) or not cont:
            break
        del page, got  # (the page's objects live on only in what the handlers kept)
    for k in [k for k in known if k not in seen]:
        yield Delta("DELETED", _tombstone(known.pop(k)))
    rv[0] = str(meta.get("resourceVersion") or "")
    yield Delta("SYNCED")


async def _list_then_watch(client: KubeClient, *, path: str, known: dict[str, _Known],
                           rv: list[str]) -> AsyncIterator[Delta]:
    """Watch from ``rv[0]`` (listing first when it is empty or expired); keeps ``known`` current."""
    unnamed = _Unnamed(path)
    while True:
        if not rv[0]:
            async for delta in _relist(client, path=path, known=known, unnamed=unnamed, rv=rv):
                yield delta
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
                    known[k] = _known(obj)
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
    known: dict[str, _Known] = {}
    rv = [""]
    delays = backoff.delays(rng)
    failing = False
    while True:
        try:
            async for delta in _list_then_watch(client, path=path, known=known, rv=rv):
                if failing:  # healthy again: the next failure starts over
                    delays, failing = backoff.delays(rng), False
                yield delta
        except KubeError as e:
            failing = True
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
