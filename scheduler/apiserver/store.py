"""Object storage, the global resourceVersion, watch history and watch fan-out.

This plays etcd plus kube-apiserver's watch cache. Every write takes the next
value of one global, monotonically increasing resourceVersion, is serialised
to JSON bytes exactly once, and is fanned out synchronously to every open
watch on that resource, with selectors applied per watcher (an object that
stops matching is sent as DELETED, one that starts matching as ADDED). The
bytes of the current version are reused for every GET, LIST and watcher.

A bounded ring buffer of recent changes serves watches that start from an
older resourceVersion; one older than the buffer (or than a forced
``compact()``) is ``410 Expired``, as after an etcd compaction.
"""

from __future__ import annotations

import builtins

import asyncio
import base64
import bisect
import json
import sys
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from scheduler.kube.wire import loads

from . import errors
from .limits import nonfinite_seen, note_nonfinite
from .resources import Registry, ResourceType
from .selectors import FieldSelector, LabelSelector, field_values

__all__ = ["Store", "Entry", "EventQueue", "WatchEvent", "Watcher", "ListResult", "Listener", "dumps", "loads"]

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# A watcher whose queue holds this many undelivered events is closed, as the
# real server drops watchers that cannot keep up; large enough that the
# benchmark's bursts never trip it.
_MAX_BACKLOG: Final = 500_000


_NO_LABELS: Final[dict[str, str]] = {}


_PASSTHROUGH: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""Types ``json`` cannot write either: orjson refuses them too, so that ``json`` raises its own error."""


def dumps(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON, the same value as ``json`` writes it.

    Every write and every watch event goes through here, so ``orjson`` writes it (an order of
    magnitude faster). Where the two differ, ``json`` writes it: what orjson refuses (an integer
    beyond 64 bits, a key that is not a string, a lone surrogate, which ``json`` refuses as well
    at ``.encode()``), and anything holding ``null``, since orjson also writes a NaN or an
    infinity as ``null`` where ``json`` writes ``NaN`` -- once a NaN or an infinity can be in an
    object at all (``limits.nonfinite_seen``; every pod's ``lastProbeTime`` is ``null``). Floats
    may be spelled differently (``1.5e-7`` for ``1.5e-07``): the same number.
    """
    try:
        out = orjson.dumps(obj, option=_PASSTHROUGH)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODER.encode(obj).encode()
    if b"null" in out and nonfinite_seen():
        return _ENCODER.encode(obj).encode()
    return out


class Entry:
    """One stored version of an object: its JSON bytes plus what selectors read."""

    __slots__ = ("raw", "labels", "fields", "rv", "namespace", "name", "uid", "owners", "controller")

    def __init__(self, *, raw: bytes, obj: dict[str, Any], rv: int, rt: ResourceType) -> None:
        meta = obj["metadata"]
        self.raw = raw
        self.rv = rv
        self.namespace: str = meta.get("namespace", "")
        self.name: str = meta["name"]
        self.uid: str = meta.get("uid", "")
        labels = meta.get("labels")
        self.labels: dict[str, str] = {sys.intern(k): v for k, v in labels.items()} if labels else _NO_LABELS
        self.fields = field_values(obj, rt.field_paths)
        refs = meta.get("ownerReferences")
        self.owners: tuple[str, ...] = ()
        """uids of the object's owners (for the garbage collector's and controllers' indexes)."""
        self.controller: tuple[str, str, str] | None = None
        """(kind, name, uid) of the owner marked ``controller: true``."""
        if refs:
            self.owners = tuple(str(r.get("uid", "")) for r in refs if isinstance(r, dict))
            for r in refs:
                if isinstance(r, dict) and r.get("controller"):
                    self.controller = (str(r.get("kind", "")), str(r.get("name", "")), str(r.get("uid", "")))
                    break

    def obj(self) -> dict[str, Any]:
        """A fresh, mutable copy of the object."""
        result: dict[str, Any] = loads(self.raw)
        return result


class WatchEvent:
    """A watch event, with its JSON line built once and shared by all watchers."""

    __slots__ = ("type", "raw", "rv", "_line")

    def __init__(self, *, type: str, raw: bytes, rv: int) -> None:
        self.type = type
        self.raw = raw
        self.rv = rv
        self._line: bytes | None = None

    def line(self) -> bytes:
        if self._line is None:
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + self.raw + b"}\n"
        return self._line


@dataclass
class _Change:
    rv: int
    key: str
    namespace: str
    old: Entry | None
    new: Entry | None
    final: bytes | None = None  # a deletion's last state, at the deletion's resourceVersion
    events: dict[str, WatchEvent] = field(default_factory=dict)

    def forget_events(self) -> None:
        """Drop cached event lines once fanned out; queued events keep theirs until sent."""
        self.events = {}

    def event(self, type: str) -> WatchEvent:
        ev = self.events.get(type)
        if ev is None:
            if type == "DELETED" and self.final is not None:
                raw = self.final
            elif type == "DELETED" and self.new is not None and self.old is not None:
                # Stopped matching: the previous content at the new resourceVersion.
                obj = self.old.obj()
                obj["metadata"]["resourceVersion"] = str(self.rv)
                raw = dumps(obj)
            else:
                raw = (self.new or self.old).raw  # type: ignore[union-attr]
            ev = self.events[type] = WatchEvent(type=type, raw=raw, rv=self.rv)
        return ev


class EventQueue:
    """An unbounded FIFO of watch events with one waiting reader.

    Cheaper than ``asyncio.Queue`` on the fan-out path (every write puts into
    every matching watcher's queue): a put is a deque append, and the reader
    is woken only when it is actually waiting.
    """

    def __init__(self) -> None:
        self._items: deque[WatchEvent | None] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: WatchEvent | None) -> None:
        self._items.append(item)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def drain(self, limit: int) -> list[WatchEvent | None]:
        items = self._items
        n = min(limit, len(items))
        return [items.popleft() for _ in range(n)]

    async def wait(self, timeout: float) -> bool:
        """Wait until an item is queued or ``timeout`` seconds pass; True when items are there."""
        if self._items:
            return True
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, timeout=max(timeout, 0))
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiter = None
        return bool(self._items)


class Watcher:
    """One open watch: its filters and the queue its stream drains."""

    def __init__(self, *, rt: ResourceType, namespace: str, labels: LabelSelector, fields: FieldSelector) -> None:
        self.rt = rt
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue = EventQueue()
        self.closed = False
        self.everything = not namespace and labels.empty and fields.empty

    def matches(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        if self.namespace and entry.namespace != self.namespace:
            return False
        return (self.labels.empty or self.labels.matches(entry.labels)) and (
            self.fields.empty or self.fields.matches(entry.fields)
        )

    def offer(self, change: _Change) -> None:
        if self.closed:
            return
        if self.everything:
            was, now = change.old is not None, change.new is not None
        else:
            was, now = self.matches(change.old), self.matches(change.new)
        if now:
            kind = "MODIFIED" if was else "ADDED"
        elif was:
            kind = "DELETED"
        else:
            return
        if self.queue.qsize() >= _MAX_BACKLOG:
            self.close()
            return
        self.queue.put_nowait(change.event(kind))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


@dataclass
class ListResult:
    rv: int
    items: list[Entry]
    continue_token: str
    remaining: int


Listener = Callable[[str, Entry | None, Entry | None], None]


class Store:
    """All objects of the server, keyed by resource then (namespace, name)."""

    def __init__(self, *, history: int = 50_000, registry: Registry | None = None) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1 event, got {history}")
        self.registry = registry or Registry()
        """The served types; a custom resource's objects live here from its type's first write."""
        self._rv = 1
        self._objs: dict[str, dict[tuple[str, str], Entry]] = defaultdict(dict)
        self._sorted: dict[str, list[tuple[str, str]] | None] = {}
        self._history: deque[_Change] = deque(maxlen=history)
        self._compacted = 0  # watches from a resourceVersion below this are Expired
        self._watchers: dict[str, set[Watcher]] = defaultdict(set)
        self._listeners: dict[str, list[Listener]] = {}
        self._any_listeners: list[Listener] = []

    # ---- reads ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def type(self, key: str) -> ResourceType:
        """A served type by store key (``pods``, ``deployments.apps``) or plural."""
        return self.registry.find(key)

    def get(self, rt: ResourceType, namespace: str, name: str) -> Entry:
        entry = self._objs[rt.key].get((namespace, name))
        if entry is None:
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        return entry

    def find(self, rt: ResourceType, namespace: str, name: str) -> Entry | None:
        return self._objs[rt.key].get((namespace, name))

    def count(self, rt: ResourceType) -> int:
        return len(self._objs[rt.key])

    def entries(self, rt: ResourceType, namespace: str = "") -> Iterator[Entry]:
        for (ns, _), e in list(self._objs[rt.key].items()):
            if not namespace or ns == namespace:
                yield e

    def list(
        self,
        rt: ResourceType,
        *,
        namespace: str = "",
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        """Matching objects in (namespace, name) order, a page at a time when ``limit`` is set."""
        objs = self._objs[rt.key]
        list_rv = self._rv
        start: tuple[str, str] | None = None
        if continue_token:
            list_rv, start = _decode_continue(continue_token)
            if list_rv < self._compacted:
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the provided "
                    "token results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list."
                )
        check_labels, check_fields = not labels.empty, not fields.empty

        def keep(e: Entry) -> bool:
            return (not check_labels or labels.matches(e.labels)) and (not check_fields or fields.matches(e.fields))

        if not limit and start is None:
            if namespace:
                items = [e for (ns, _), e in objs.items() if ns == namespace and keep(e)]
            else:
                items = [e for e in objs.values() if keep(e)]
            items.sort(key=lambda e: (e.namespace, e.name))
            return ListResult(rv=list_rv, items=items, continue_token="", remaining=0)
        keys = self._sorted_keys(rt)
        lo = bisect.bisect_right(keys, start) if start is not None else 0
        if namespace and (start is None or start < (namespace, "")):
            lo = max(lo, bisect.bisect_left(keys, (namespace, "")))
        items = []
        i = lo
        while i < len(keys) and (not limit or len(items) < limit):
            k = keys[i]
            if namespace and k[0] != namespace:
                break
            e = objs.get(k)
            if e is not None and keep(e):
                items.append(e)
            i += 1
        token, remaining = "", 0
        if limit and len(items) == limit:
            rest = [k for k in keys[i:] if not namespace or k[0] == namespace]
            if rest:
                token = _encode_continue(list_rv, (items[-1].namespace, items[-1].name))
                if not check_labels and not check_fields:
                    remaining = len(rest)
        return ListResult(rv=list_rv, items=items, continue_token=token, remaining=remaining)

    def _sorted_keys(self, rt: ResourceType) -> builtins.list[tuple[str, str]]:
        keys = self._sorted.get(rt.key)
        if keys is None:
            keys = self._sorted[rt.key] = sorted(self._objs[rt.key])
        return keys

    # ---- writes --------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: dict[str, Any]) -> Entry:
        """Store a new object (metadata already prepared); 409 AlreadyExists if the name is taken."""
        meta = obj["metadata"]
        k = (meta.get("namespace", ""), meta["name"])
        if k in self._objs[rt.key]:
            raise errors.already_exists(resource=rt.plural, group=rt.group, name=meta["name"])
        entry = self._commit(rt, obj)
        self._objs[rt.key][k] = entry
        self._sorted[rt.key] = None
        self._record(rt, None, entry)
        return entry

    def replace(self, rt: ResourceType, obj: dict[str, Any], *, expect_rv: str = "") -> Entry:
        """Store a new version of an existing object; ``expect_rv`` gives optimistic concurrency."""
        meta = obj["metadata"]
        k = (meta.get("namespace", ""), meta["name"])
        old = self._objs[rt.key].get(k)
        if old is None:
            raise errors.not_found(resource=rt.plural, group=rt.group, name=meta["name"])
        if expect_rv and expect_rv != str(old.rv):
            raise errors.stale_update(resource=rt.plural, group=rt.group, name=meta["name"])
        entry = self._commit(rt, obj)
        self._objs[rt.key][k] = entry
        self._record(rt, old, entry)
        return entry

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> Entry:
        """Read-modify-write of the current version; ``mutate`` returning None means no change."""
        old = self.get(rt, namespace, name)
        new = mutate(old.obj())
        if new is None:
            return old
        new["metadata"]["resourceVersion"] = str(old.rv)
        return self.replace(rt, new)

    def delete(self, rt: ResourceType, namespace: str, name: str, *, uid: str = "", rv: str = "") -> dict[str, Any]:
        """Remove an object; returns its final state (at the deletion's resourceVersion)."""
        old = self.get(rt, namespace, name)
        if uid and uid != old.uid:
            raise errors.conflict(
                resource=rt.plural, group=rt.group, name=name,
                cause=f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old.uid}",
            )
        if rv and rv != str(old.rv):
            raise errors.conflict(
                resource=rt.plural, group=rt.group, name=name,
                cause=f"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old.rv}",
            )
        obj = old.obj()
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        final = Entry(raw=dumps(obj), obj=obj, rv=self._rv, rt=rt)
        del self._objs[rt.key][(namespace, name)]
        self._sorted[rt.key] = None
        self._record(rt, old, None, final=final)
        return obj

    def _commit(self, rt: ResourceType, obj: dict[str, Any]) -> Entry:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return Entry(raw=dumps(obj), obj=obj, rv=self._rv, rt=rt)

    def _record(self, rt: ResourceType, old: Entry | None, new: Entry | None, *, final: Entry | None = None) -> None:
        change = _Change(rv=self._rv, key=rt.key, namespace=(new or old).namespace, old=old, new=new,  # type: ignore[union-attr]
                         final=final.raw if final is not None else None)
        if len(self._history) == self._history.maxlen:
            self._compacted = max(self._compacted, self._history[0].rv)
        self._history.append(change)
        for w in self._watchers[rt.key]:
            w.offer(change)
        change.forget_events()
        for fn in self._listeners.get(rt.key, ()):
            fn(change.key, old, new)
        for fn in self._any_listeners:
            fn(change.key, old, new)

    # ---- watch ---------------------------------------------------------------------------

    def watch(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        labels: LabelSelector,
        fields: FieldSelector,
        since: int | None,
    ) -> Watcher:
        """Open a watch; ``since=None`` first replays current state as ADDED events.

        A ``since`` older than the retained history raises 410 Expired.
        """
        w = Watcher(rt=rt, namespace=namespace, labels=labels, fields=fields)
        if since is None:
            objs = self._objs[rt.key]
            for k in sorted(objs):
                e = objs[k]
                if w.matches(e):
                    w.queue.put_nowait(WatchEvent(type="ADDED", raw=e.raw, rv=e.rv))
        else:
            if since < self._compacted:
                raise errors.expired(f"too old resource version: {since} ({self._compacted})")
            backlog = []
            for change in reversed(self._history):
                if change.rv <= since:
                    break
                backlog.append(change)
            for change in reversed(backlog):
                if change.key == rt.key:
                    w.offer(change)
                    change.forget_events()
        self._watchers[rt.key].add(w)
        return w

    def stop_watch(self, w: Watcher) -> None:
        self._watchers[w.rt.key].discard(w)
        w.close()

    def close_watches(self) -> int:
        """End every open watch stream (fault injection, shutdown); returns how many."""
        n = 0
        for ws in self._watchers.values():
            for w in list(ws):
                w.close()
                ws.discard(w)
                n += 1
        return n

    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def compact(self) -> int:
        """Forget all history: every resourceVersion before now becomes Expired for watches."""
        self._history.clear()
        self._compacted = self._rv
        return self._rv

    def add_listener(self, key: str, fn: Listener) -> None:
        """Call ``fn(key, old, new)`` synchronously after every write to resource ``key``."""
        self._listeners.setdefault(key, []).append(fn)

    def add_any_listener(self, fn: Listener) -> None:
        """Call ``fn(key, old, new)`` after every write to any resource (the garbage collector's view)."""
        self._any_listeners.append(fn)

    def drop_resource(self, rt: ResourceType) -> builtins.list[dict[str, Any]]:
        """Delete every object of ``rt`` (its CRD went away); returns their final states."""
        return [self.delete(rt, e.namespace, e.name) for e in list(self.entries(rt))]

    # ---- persistence ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to restore the store: objects and the resourceVersion counter."""
        return {
            "resourceVersion": self._rv,
            "objects": {key: [json.loads(e.raw) for e in objs.values()] for key, objs in self._objs.items() if objs},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a ``snapshot()``; watches from before it are Expired."""
        note_nonfinite()  # written by json, which writes NaN and infinities: they may be in it
        try:
            rv = int(state["resourceVersion"])
            groups = state["objects"]
            loaded: dict[str, dict[tuple[str, str], Entry]] = defaultdict(dict)
            for key, items in groups.items():
                try:
                    rt = self.registry.find(key)
                except KeyError:
                    raise ValueError(f"unknown resource {key!r}") from None
                for obj in items:
                    meta = obj["metadata"]
                    item_rv = int(meta["resourceVersion"])
                    loaded[key][(meta.get("namespace", ""), meta["name"])] = Entry(
                        raw=dumps(obj), obj=obj, rv=item_rv, rt=rt
                    )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"state file is not a vecsched apiserver snapshot: {e}") from e
        self._objs = loaded
        self._sorted.clear()
        self._rv = rv
        self.compact()


def _encode_continue(rv: int, start: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start)})).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise errors.bad_request(f"continue key is not valid: {e}") from e
