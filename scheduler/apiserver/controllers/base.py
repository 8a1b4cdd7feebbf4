"""What every controller of the embedded control plane shares: queue, indexes, client, events.

Controllers in kube-controller-manager are level-triggered: watch events only
say *which* object to look at; a worker then reads the current state and
moves the world one step towards the spec, and a failure puts the key back
with an exponential backoff. The embedded controllers follow the same shape,
in the API server's own process: the store's synchronous listeners play the
informers (the store is always current, so no expectations are needed), a
``WorkQueue`` with client-go's dirty/processing semantics deduplicates keys,
and every write goes through ``Operations`` -- the admission, validation and
conflict checks a request over HTTP gets -- so a controller's work is visible
through the API exactly as a real controller's would be (objects, status,
Events). The pods a controller creates also go to the admission webhooks
(``Client.create_admitted``), as user ``system:kube-controller-manager``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .. import errors
from ..admitted import AdmittedOperations
from ..auth import User
from ..objects import now_rfc3339
from ..operations import Operations
from ..resources import ResourceType
from ..store import Entry, Store

if TYPE_CHECKING:  # pods.py builds on this module; the manager hands its index to every controller
    from .pods import PodIndex

__all__ = [
    "Key",
    "Mapper",
    "WorkQueue",
    "ClusterView",
    "Client",
    "Recorder",
    "ControllerContext",
    "Controller",
    "owner_ref",
    "controller_of",
]

log = logging.getLogger("vecsched.apiserver.controllers")

Key = tuple[str, str]
"""(namespace, name) of a controller's primary object; namespace "" for cluster-scoped kinds."""
Mapper = Callable[[Entry | None, Entry | None], Iterable[Key]]
"""Maps a write to another kind (old, new entries) to the primary keys it concerns."""

# client-go's DefaultControllerRateLimiter: 5 ms doubling per failure, capped at 1000 s; the cap
# here is a minute, since a test or demo waiting 16 minutes for a retry looks like a hang.
_BASE_DELAY: Final = 0.005
_MAX_DELAY: Final = 60.0
# Who the controllers' webhook-admitted writes come from (kube-controller-manager's own credentials).
CONTROLLER_MANAGER: Final = User.of("system:kube-controller-manager")


class WorkQueue:
    """A deduplicating FIFO of keys, as client-go's workqueue.

    A key added while it is queued is queued once; a key added while a worker
    processes it is queued again only after ``done`` (so one key is never
    processed by two workers at once, and no event between read and write is
    lost). ``add_rate_limited`` retries with a per-key exponential backoff that
    ``forget`` resets.
    """

    def __init__(self, *, base_delay: float = _BASE_DELAY, max_delay: float = _MAX_DELAY) -> None:
        self._queue: OrderedDict[Key, None] = OrderedDict()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._wakeup: asyncio.Event | None = None
        self._base, self._max = base_delay, max_delay
        self.closed = False

    @property
    def base_delay(self) -> float:
        """The delay of a key's first retry."""
        return self._base

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: Key) -> None:
        if self.closed:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queue:
            self._queue[key] = None
            if self._wakeup is not None:
                self._wakeup.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Add ``key`` in ``delay`` seconds (an earlier pending timer for it wins)."""
        if self.closed:
            return
        if delay <= 0:
            self.add(key)
            return
        existing = self._timers.get(key)
        loop = asyncio.get_running_loop()
        if existing is not None:
            if existing.when() <= loop.time() + delay:
                return
            existing.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Key) -> float:
        """Retry ``key`` after its backoff; returns the delay chosen."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        delay: float = min(self._base * float(2 ** min(n, 30)), self._max)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)

    async def get(self) -> Key | None:
        """The next key (marked as processing), or None once the queue is shut down."""
        while not self._queue:
            if self.closed:
                return None
            self._wakeup = self._wakeup or asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()
        key, _ = self._queue.popitem(last=False)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def shutdown(self) -> None:
        self.closed = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self._wakeup is not None:
            self._wakeup.set()


def owner_ref(obj: Mapping[str, Any], *, controller: bool = True, block: bool = True) -> dict[str, Any]:
    """An ownerReference to ``obj``, as controllers set on what they create."""
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": controller, "blockOwnerDeletion": block}


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference marked ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


@dataclass(frozen=True)
class ObjectRef:
    """Where an object lives in the store."""

    key: str
    namespace: str
    name: str


class ClusterView:
    """Indexes over the whole store, kept current by a listener on every write.

    ``by_uid`` answers "does the owner with this uid still exist" (the garbage
    collector's question) and ``dependents`` answers "what does this object
    own" (every workload controller's), both in O(1) instead of a scan.
    """

    def __init__(self, *, store: Store) -> None:
        self.by_uid: dict[str, ObjectRef] = {}
        self.dependents: dict[str, set[ObjectRef]] = defaultdict(set)
        self._owners: dict[ObjectRef, tuple[str, ...]] = {}
        for rt in store.registry:
            for e in store.entries(rt):
                self._on_write(rt.key, None, e)
        store.add_any_listener(self._on_write)

    def _on_write(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if new is not None:
            # Most writes (a bind, a status, a lease) change neither the uid nor the owners: when the
            # indexes already say what this write would make them say, leave them.
            known = self.by_uid.get(new.uid)
            if (known is not None and known.name == new.name and known.namespace == new.namespace
                    and known.key == key and self._owners.get(known, ()) == new.owners):
                return
        cur = new or old
        assert cur is not None
        ref = ObjectRef(key, cur.namespace, cur.name)
        if new is None:
            if self.by_uid.get(cur.uid) == ref:
                del self.by_uid[cur.uid]
            for uid in self._owners.pop(ref, ()):
                deps = self.dependents.get(uid)
                if deps is not None:
                    deps.discard(ref)
                    if not deps:
                        del self.dependents[uid]
            return
        self.by_uid[new.uid] = ref
        owners = new.owners
        before = self._owners.get(ref, ())
        if owners == before:
            return
        for uid in before:
            if uid not in owners:
                deps = self.dependents.get(uid)
                if deps is not None:
                    deps.discard(ref)
                    if not deps:
                        del self.dependents[uid]
        for uid in owners:
            self.dependents[uid].add(ref)
        if owners:
            self._owners[ref] = owners
        else:
            self._owners.pop(ref, None)

    def owned(self, uid: str, key: str) -> list[ObjectRef]:
        """Objects of store key ``key`` with an ownerReference to ``uid``."""
        return [r for r in self.dependents.get(uid, ()) if r.key == key]


class Client:
    """Controllers' writes, through the same admission and checks as HTTP requests.

    Objects are plain dicts as on the wire; ``update`` sends the object's
    ``resourceVersion``, so a controller that read a stale copy gets the 409
    Conflict a real one would, and retries from the queue.
    """

    def __init__(self, *, store: Store, ops: Operations) -> None:
        self.store = store
        self.ops = ops
        self.admitted = AdmittedOperations(ops=ops)

    def type(self, key: str) -> ResourceType:
        return self.store.type(key)

    def get(self, key: str, namespace: str, name: str) -> dict[str, Any] | None:
        e = self.store.find(self.type(key), namespace, name)
        return e.obj() if e is not None else None

    def create(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self.type(key)
        return self.ops.create(rt, obj, namespace=obj["metadata"].get("namespace", "")).obj()

    async def create_admitted(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """``create`` through the admission webhooks too, as a controller's pods go on a real cluster."""
        rt = self.type(key)
        entry = await self.admitted.create(rt, obj, namespace=obj["metadata"].get("namespace", ""),
                                           user=CONTROLLER_MANAGER)
        return entry.obj()

    def update(self, key: str, obj: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        rt = self.type(key)
        meta = obj["metadata"]
        return self.ops.update(rt, obj, namespace=meta.get("namespace", ""), name=meta["name"],
                               subresource=subresource).obj()

    def update_status(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.update(key, obj, subresource="status")

    def delete(self, key: str, namespace: str, name: str, *, uid: str = "", propagation: str | None = None,
               grace: int | None = None) -> bool:
        """Delete (or start deleting) an object; False when it was already gone or replaced."""
        try:
            self.ops.delete(self.type(key), namespace=namespace, name=name, uid=uid, propagation=propagation,
                            grace=grace)
        except errors.ApiError as e:
            if e.code in (404, 409):
                return False
            raise
        return True


class Recorder:
    """Events a controller reports about its objects, aggregated as client-go's recorder does.

    The same (object, reason, message) within ten minutes bumps ``count`` and
    ``lastTimestamp`` of the existing Event instead of writing a new one.
    """

    _WINDOW: Final = 600.0
    _REMEMBER: Final = 4096  # recent series kept for aggregation; older ones start a new Event

    def __init__(self, *, client: Client) -> None:
        self.client = client
        self._series: OrderedDict[tuple[str, str, str], tuple[str, str, float]] = OrderedDict()
        self._n = 0

    def event(self, obj: Mapping[str, Any], *, component: str, type: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        series = (meta["uid"], reason, message)
        now = now_rfc3339()
        seen = self._series.get(series)
        try:
            if seen is not None and time.monotonic() - seen[2] < self._WINDOW:
                ev = self.client.get("events", seen[0], seen[1])
                if ev is not None:
                    ev["count"] = int(ev.get("count") or 1) + 1
                    ev["lastTimestamp"] = now
                    self.client.update("events", ev)
                    self._series[series] = (seen[0], seen[1], time.monotonic())
                    return
            self._n += 1
            name = f"{meta['name']}.{time.time_ns():x}{self._n:x}"[:253]
            self.client.create("events", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""),
                                   "name": meta["name"], "namespace": meta.get("namespace", ""),
                                   "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion", "")},
                "reason": reason, "message": message, "type": type, "count": 1,
                "source": {"component": component}, "reportingComponent": component,
                "firstTimestamp": now, "lastTimestamp": now,
            })
        except errors.ApiError as e:  # an Event is best effort: its namespace may be going away
            log.debug("event %s for %s/%s not recorded: %s", reason, ns, meta["name"], e.message)
            return
        self._series[series] = (ns, name, time.monotonic())
        self._series.move_to_end(series)
        while len(self._series) > self._REMEMBER:
            self._series.popitem(last=False)


@dataclass
class ControllerContext:
    """What the controller manager hands every controller."""

    store: Store
    client: Client
    view: ClusterView
    recorder: Recorder
    pods: PodIndex
    """Every pod parsed once per write and counted per controlling owner, shared by the controllers."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Per-run knobs a controller reads by name (documented where it reads them)."""


class Controller(abc.ABC):
    """One control loop: a primary kind, the writes that concern it, and ``reconcile``.

    Subclasses set ``name`` (the Event source component, e.g.
    ``replicaset-controller``) and ``primary`` (the store key of the kind
    they reconcile), implement ``reconcile`` and, when other kinds matter,
    ``watches``. ``reconcile`` returns None when done, or seconds after which
    the key should be looked at again (a timer, such as a Job's deadline);
    raising retries with backoff.
    """

    name: ClassVar[str] = ""
    primary: ClassVar[str] = ""
    workers: ClassVar[int] = 1

    def __init__(self, *, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.client = ctx.client
        self.view = ctx.view
        self.queue = WorkQueue()
        self.reconciles = 0

    def watches(self) -> Mapping[str, Mapper]:
        """Other store keys whose writes map to primary keys (e.g. pods -> their owner)."""
        return {}

    @abc.abstractmethod
    async def reconcile(self, key: Key) -> float | None:
        """Move the world one step towards ``key``'s spec; seconds to look again, or None."""

    def event(self, obj: Mapping[str, Any], *, reason: str, message: str, type: str = "Normal") -> None:
        self.ctx.recorder.event(obj, component=self.name, type=type, reason=reason, message=message)

    def enqueue_owner(self, kind: str) -> Mapper:
        """A mapper from a dependent's write to its controlling owner of ``kind``."""

        def mapper(old: Entry | None, new: Entry | None) -> Iterable[Key]:
            keys = []
            for e in (old, new):
                if e is not None and e.controller is not None and e.controller[0] == kind:
                    keys.append((e.namespace, e.controller[1]))
            return keys

        return mapper
