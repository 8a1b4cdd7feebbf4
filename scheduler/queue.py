"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

kube-scheduler's queue, reduced to what a single scheduling loop needs:

- **activeQ**, ordered as upstream's PrioritySort: higher ``spec.priority``
  first, then earlier arrival -- or by the profiles' QueueSort plugin
  (Coscheduling's: a group's members by the group's time, together);
- **backoffQ**: pods whose attempt failed, each waiting ``initial * 2^(attempts-1)``
  seconds (1 s doubling to 10 s by default: ``podInitialBackoffSeconds`` /
  ``podMaxBackoffSeconds``) before it returns to activeQ;
- **unschedulable**: pods that fit nowhere, parked until a cluster event that
  could help them or for at most 5 minutes (upstream's
  podMaxInUnschedulablePodsDuration), or until activated (upstream's Activate).
  Which events help which pod is ``scoring.queueing_hints``' business: ``on_event``
  moves only the parked pods for which one of the plugins that rejected them
  answers QUEUE (a node that grew for a pod too big, the deletion of a victim on a
  preemptor's node...), asking only the pods whose rejecting plugins registered the
  event's kind -- a parked pod that no plugin rejected moves on any event;
- **gated**: pods with ``spec.schedulingGates``, which wait until the gates
  are removed.

A popped pod is *in flight* until ``done`` or ``requeue``; updates that arrive
meanwhile are remembered, so a pod is never held twice, and so are the cluster
events: an attempt that fails unschedulable is backed off rather than parked when
an event that arrived during it says QUEUE for it (upstream's inFlightEvents).
Time comes from an injectable clock so that tests step it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.objects import PodInfo
from scoring.queueing_hints import REGISTRY, ClusterEvent, interest, worth_requeuing

__all__ = ["QueuedPod", "SchedulingQueue", "priority_sort", "ACTIVE", "BACKOFF", "UNSCHEDULABLE", "GATED",
           "MAX_IN_UNSCHEDULABLE_SECONDS"]

ACTIVE: Final = "active"
BACKOFF: Final = "backoff"
UNSCHEDULABLE: Final = "unschedulable"
GATED: Final = "gated"
MAX_IN_UNSCHEDULABLE_SECONDS: Final = 300.0
"""Upstream's podMaxInUnschedulablePodsDuration: a parked pod is retried after 5 minutes anyway."""
_FORCE_ACTIVATE: Final = "ForceActivate"
_MAX_IN_FLIGHT_EVENTS: Final = 10_000
"""Cluster events kept for the pods in flight. Past it (an attempt held up for long while
the cluster churns) every pod in flight is treated as having seen a helpful event and
the list starts over: memory stays bounded and no pod is parked on a missed event."""

Clock = Callable[[], float]


@dataclass(slots=True)
class QueuedPod:
    """A pending pod and its scheduling history."""

    pod: PodInfo
    timestamp: float
    """When it last entered the queue (PrioritySort's tie-breaker, and the start of its backoff)."""
    attempts: int = 0
    initial_attempt: float | None = None
    """When it was first popped (start of the pod scheduling SLI)."""
    unschedulable_plugins: frozenset[str] = frozenset()
    """Plugins that rejected it in its last attempt: their queueing hints decide which
    cluster events move it while it is parked (and the metrics count it per plugin)."""
    min_backoff_until: float = 0.0
    """An earliest retry time imposed from outside (e.g. a 429's Retry-After)."""
    cycle: int = 0
    """The scheduling cycle that last popped it."""
    first_seen: float = field(default_factory=time.time)
    """Wall-clock time the queue first saw it (a QueueSort plugin may order by it)."""

    @property
    def key(self) -> str:
        return self.pod.key


@dataclass(slots=True)
class _InFlight:
    qp: QueuedPod
    deleted: bool = False
    newer: PodInfo | None = None
    """A different pod (new UID) under the same name that arrived while this one was in flight."""
    activate: bool = False
    """``activate`` was called meanwhile: the attempt's failure sends it to activeQ."""
    moved: bool = False
    """``move`` named it meanwhile (an event that may help it): a failure backs it off
    instead of parking it, as ``move_all`` does for every pod in flight."""
    since: int = 0
    """Sequence number of the first cluster event that arrived during the attempt."""


@dataclass(slots=True)
class _Heap:
    """A heap with lazy deletion: entries whose sequence number is stale are skipped."""

    items: list[tuple[tuple[Any, ...], int, str]] = field(default_factory=list)
    live: dict[str, tuple[int, QueuedPod]] = field(default_factory=dict)

    def push(self, order: tuple[Any, ...], seq: int, qp: QueuedPod) -> None:
        self.live[qp.key] = (seq, qp)
        heapq.heappush(self.items, (order, seq, qp.key))

    def _clean(self) -> None:
        while self.items:
            _, seq, key = self.items[0]
            cur = self.live.get(key)
            if cur is not None and cur[0] == seq:
                return
            heapq.heappop(self.items)

    def peek(self) -> tuple[tuple[Any, ...], QueuedPod] | None:
        self._clean()
        if not self.items:
            return None
        order, _, key = self.items[0]
        return order, self.live[key][1]

    def pop(self) -> QueuedPod:
        self._clean()
        _, _, key = heapq.heappop(self.items)
        return self.live.pop(key)[1]

    def remove(self, key: str) -> QueuedPod | None:
        cur = self.live.pop(key, None)
        if len(self.items) > 64 and len(self.items) > 4 * len(self.live):
            self.items = [e for e in self.items if self.live.get(e[2], (None,))[0] == e[1]]
            heapq.heapify(self.items)
        return cur[1] if cur else None

    def __len__(self) -> int:
        return len(self.live)

    def __contains__(self, key: str) -> bool:
        return key in self.live


def priority_sort(qp: QueuedPod) -> tuple[Any, ...]:
    """Upstream's PrioritySort: higher priority first, then earlier in the queue."""
    return -float(qp.pod.priority), qp.timestamp


def _same_request(a: PodInfo, b: PodInfo) -> bool:
    """Upstream's isPodUpdated, inverted: equal but for status and resourceVersion."""
    return a.raw.get("spec") == b.raw.get("spec") and a.labels == b.labels and a.annotations == b.annotations


class SchedulingQueue:
    """activeQ / backoffQ / unschedulable / gated, with upstream's moves between them."""

    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE_SECONDS,
        clock: Clock = time.monotonic,
        on_incoming: Callable[[str, str], None] | None = None,
        sort_key: Callable[[QueuedPod], tuple[Any, ...]] | None = None,
    ) -> None:
        if initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError(f"backoff must satisfy 0 < initial ({initial_backoff}) <= max ({max_backoff})")
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self.clock = clock
        self._on_incoming = on_incoming
        self.sort_key: Callable[[QueuedPod], tuple[Any, ...]] = sort_key or priority_sort
        """activeQ's order (smaller first): PrioritySort unless the profiles' QueueSort plugin says otherwise."""
        self._active = _Heap()
        self._backoff = _Heap()
        self._unschedulable: dict[str, QueuedPod] = {}
        self._by_plugin: dict[str, dict[str, None]] = {}
        """Parked pods by rejecting plugin (insertion-ordered sets): an event asks only the
        pods of the plugins that registered its kind."""
        self._plain: dict[str, None] = {}
        """Parked pods that no plugin rejected: any event moves them."""
        self._events: list[ClusterEvent] = []
        """Cluster events since the oldest attempt in flight began (upstream's inFlightEvents)."""
        self._events_base = 0
        """Sequence number of ``_events[0]``."""
        self._gated: dict[str, QueuedPod] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._seq = 0
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._wake = asyncio.Event()
        self._closed = False

    # ---- bookkeeping -----------------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _incoming(self, queue: str, event: str) -> None:
        if self._on_incoming is not None:
            self._on_incoming(queue, event)

    def backoff_duration(self, attempts: int) -> float:
        """Upstream's calculateBackoffDuration: initial, doubled per earlier attempt, capped."""
        d = self.initial_backoff
        for _ in range(1, attempts):
            if d > self.max_backoff - d:
                return self.max_backoff
            d += d
        return min(d, self.max_backoff)

    def backoff_until(self, qp: QueuedPod) -> float:
        return max(qp.timestamp + self.backoff_duration(qp.attempts), qp.min_backoff_until)

    def _to_active(self, qp: QueuedPod, event: str) -> None:
        self._active.push(self.sort_key(qp), self._next(), qp)
        self._incoming(ACTIVE, event)
        self._wake.set()

    def _to_backoff_or_active(self, qp: QueuedPod, event: str) -> None:
        until = self.backoff_until(qp)
        if qp.attempts > 0 and until > self.clock():
            self._backoff.push((until,), self._next(), qp)
            self._incoming(BACKOFF, event)
        else:
            self._to_active(qp, event)

    def _park(self, qp: QueuedPod) -> None:
        """Into the unschedulable pool, just stamped (``requeue``): the pool stays in
        timestamp order, which ``flush`` relies on."""
        self._unschedulable[qp.key] = qp
        if not qp.unschedulable_plugins:
            self._plain[qp.key] = None
        for name in qp.unschedulable_plugins:
            self._by_plugin.setdefault(name, {})[qp.key] = None

    def _unpark(self, key: str) -> QueuedPod | None:
        qp = self._unschedulable.pop(key, None)
        if qp is None:
            return None
        self._plain.pop(key, None)
        for name in qp.unschedulable_plugins:
            keys = self._by_plugin.get(name)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._by_plugin[name]
        return qp

    def _holding(self, key: str) -> QueuedPod | None:
        for heap in (self._active, self._backoff):
            if key in heap.live:
                return heap.live[key][1]
        return self._unschedulable.get(key) or self._gated.get(key)

    def _remove(self, key: str) -> QueuedPod | None:
        return (self._active.remove(key) or self._backoff.remove(key)
                or self._unpark(key) or self._gated.pop(key, None))

    # ---- pod events ------------------------------------------------------------------------

    def add(self, pod: PodInfo) -> None:
        """A pending pod of ours was seen (new or updated)."""
        key = pod.key
        flight = self._in_flight.get(key)
        if flight is not None:
            if pod.uid == flight.qp.pod.uid:
                flight.qp.pod = pod
                flight.deleted = False
            else:
                flight.newer = pod
            return
        held = self._holding(key)
        if held is not None and held.pod.uid == pod.uid and _same_request(held.pod, pod) \
                and bool(held.pod.scheduling_gates) == bool(pod.scheduling_gates):
            held.pod = pod  # only status or bookkeeping changed (e.g. our own condition): no move
            return
        qp = self._remove(key)
        if qp is not None and qp.pod.uid != pod.uid:
            qp = None  # deleted and recreated under the same name: a new pod
        now = self.clock()
        if qp is None:
            qp = QueuedPod(pod=pod, timestamp=now)
            event = "PodAdd"
        else:
            qp.pod = pod
            event = "PodUpdate"
        if pod.scheduling_gates:
            self._gated[key] = qp
            self._incoming(GATED, event)
        elif qp.attempts:
            self._to_backoff_or_active(qp, event)
        else:
            self._to_active(qp, event)

    def delete(self, key: str) -> None:
        """The pod was deleted, bound (by anyone) or finished: it leaves the queue."""
        self._remove(key)
        flight = self._in_flight.get(key)
        if flight is not None:
            flight.deleted = True
            flight.newer = None

    def __contains__(self, key: str) -> bool:
        return (key in self._active or key in self._backoff or key in self._unschedulable
                or key in self._gated or key in self._in_flight)

    # ---- the scheduling loop's side ----------------------------------------------------------

    def pop_nowait(self) -> QueuedPod | None:
        """The next pod of activeQ, now in flight; None when activeQ is empty."""
        if not len(self._active):
            return None
        qp = self._active.pop()
        self.scheduling_cycle += 1
        return self._attempt(qp)

    def _attempt(self, qp: QueuedPod) -> QueuedPod:
        qp.cycle = self.scheduling_cycle
        qp.attempts += 1
        if qp.initial_attempt is None:
            qp.initial_attempt = self.clock()
        self._in_flight[qp.key] = _InFlight(qp, since=self._events_base + len(self._events))
        return qp

    def take(self, key: str) -> QueuedPod | None:
        """Pop ``key`` out of turn into the current scheduling cycle (a group's members are
        placed with the pod that was popped), from activeQ, backoffQ or the unschedulable
        pool; None when the queue holds it nowhere it could be taken from (gated, in
        flight, unknown)."""
        qp = self._active.remove(key) or self._backoff.remove(key) or self._unpark(key)
        return self._attempt(qp) if qp is not None else None

    async def pop(self) -> QueuedPod | None:
        """Wait for the next pod; None once the queue is closed."""
        while not self._closed:
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            self._wake.clear()
            await self._wake.wait()
        return None

    def close(self) -> None:
        """Wake every ``pop`` with None (shutdown)."""
        self._closed = True
        self._wake.set()

    def done(self, key: str) -> None:
        """The attempt is over and the pod needs no retry (bound, or gone)."""
        flight = self._land(key)
        if flight is not None and flight.newer is not None:
            self.add(flight.newer)

    def put_back(self, qp: QueuedPod) -> None:
        """Undo a pop that did not lead to an attempt (e.g. leadership was lost meanwhile)."""
        flight = self._land(qp.key)
        if flight is None or flight.deleted:
            return
        if flight.newer is not None:
            self.add(flight.newer)
            return
        qp.attempts -= 1
        self._active.push(self.sort_key(qp), self._next(), qp)
        self._wake.set()

    def requeue(self, qp: QueuedPod, *, unschedulable: bool, plugins: frozenset[str] = frozenset(),
                not_before: float = 0.0) -> None:
        """After a failed attempt: park it (unschedulable) or back it off (an error)."""
        flight = self._in_flight.get(qp.key)
        missed = unschedulable and flight is not None and (
            flight.moved or self._missed_event(flight, qp.pod, plugins))
        self._land(qp.key)
        if flight is not None and flight.deleted:
            return
        if flight is not None and flight.newer is not None:
            self.add(flight.newer)
            return
        if qp.key in self:
            return
        qp.timestamp = self.clock()
        qp.unschedulable_plugins = plugins
        qp.min_backoff_until = not_before
        if qp.pod.scheduling_gates:
            self._gated[qp.key] = qp
            self._incoming(GATED, "ScheduleAttemptFailure")
        elif flight is not None and flight.activate:
            self._to_active(qp, _FORCE_ACTIVATE)
        elif unschedulable and self._move_request_cycle < qp.cycle and not missed:
            self._park(qp)
            self._incoming(UNSCHEDULABLE, "ScheduleAttemptFailure")
        else:
            # An error, or a cluster event arrived during the attempt that may have helped it.
            self._backoff.push((self.backoff_until(qp),), self._next(), qp)
            self._incoming(BACKOFF, "ScheduleAttemptFailure")

    def _land(self, key: str) -> _InFlight | None:
        """The attempt of ``key`` is over: stop holding events for it."""
        flight = self._in_flight.pop(key, None)
        if not self._in_flight:
            self._events_base += len(self._events)
            self._events.clear()
        elif flight is not None and flight.since == self._events_base and len(self._events) > 64:
            # It was (one of) the oldest: drop the events no attempt in flight can have missed.
            oldest = max(min(f.since for f in self._in_flight.values()), self._events_base)
            del self._events[: oldest - self._events_base]
            self._events_base = oldest
        return flight

    def _missed_event(self, flight: _InFlight, pod: PodInfo, plugins: frozenset[str]) -> bool:
        """Whether a cluster event that arrived during the attempt says QUEUE for the pod
        (upstream's determineSchedulingHintForInFlightPod)."""
        start = max(flight.since - self._events_base, 0)
        return any(worth_requeuing(pod=pod, plugins=plugins, event=e) for e in self._events[start:])

    # ---- cluster events and time -----------------------------------------------------------

    def on_event(self, event: ClusterEvent) -> int:
        """A cluster event: move the parked pods it may help -- those that no plugin rejected,
        and those for which a rejecting plugin's queueing hint says QUEUE -- and remember it
        for the pods in flight. Only the pods of the plugins that registered the event's kind
        are asked. Returns how many parked pods moved."""
        plugins, unknown_care = interest(event)
        asked: dict[str, None] = dict(self._plain)
        for name, keys in self._by_plugin.items():
            if name in plugins or (unknown_care and name not in REGISTRY):
                asked.update(keys)
        moved = 0
        for key in asked:
            qp = self._unschedulable[key]
            if worth_requeuing(pod=qp.pod, plugins=qp.unschedulable_plugins, event=event):
                self._unpark(key)
                self._to_backoff_or_active(qp, event.label)
                moved += 1
        if self._in_flight:
            if len(self._events) >= _MAX_IN_FLIGHT_EVENTS:
                for flight in self._in_flight.values():
                    flight.moved = True
                self._events_base += len(self._events)
                self._events.clear()
            self._events.append(event)
        return moved

    def move_all(self, event: str) -> int:
        """A cluster event that could make any parked pod schedulable (an assumed pod's room
        given back, ...): retry them all (after their backoff); pods in flight are backed off
        if their attempt fails."""
        self._move_request_cycle = self.scheduling_cycle
        parked = list(self._unschedulable.values())
        self._unschedulable.clear()
        self._by_plugin.clear()
        self._plain.clear()
        for qp in parked:
            self._to_backoff_or_active(qp, event)
        return len(parked)

    def move(self, keys: Iterable[str], event: str) -> int:
        """A cluster event that may help these parked pods only (e.g. their PodGroup's members
        arrived): retry them after their backoff. A named pod in flight is backed off, not
        parked, if its attempt fails. Returns how many parked pods moved."""
        moved = 0
        for key in keys:
            qp = self._unpark(key)
            if qp is not None:
                self._to_backoff_or_active(qp, event)
                moved += 1
            elif (flight := self._in_flight.get(key)) is not None:
                flight.moved = True  # its attempt may have missed the event: do not park it on failure
        return moved

    def activate(self, key: str) -> bool:
        """Upstream's Activate: a parked or backing-off pod goes to activeQ now (a preemptor whose
        victims could not be evicted must not wait in the unschedulable pool for an event that
        will never come); a pod in flight goes there when its attempt fails. Returns whether
        the queue holds the pod."""
        flight = self._in_flight.get(key)
        if flight is not None:
            flight.activate = True
            return True
        qp = self._unpark(key) or self._backoff.remove(key)
        if qp is None:
            return key in self._active
        self._to_active(qp, _FORCE_ACTIVATE)
        return True

    def flush(self) -> None:
        """Move pods whose backoff is over to activeQ, and pods parked too long back to the queue."""
        now = self.clock()
        while (top := self._backoff.peek()) is not None and top[0][0] <= now:
            self._to_active(self._backoff.pop(), "BackoffComplete")
        stale = []
        for qp in self._unschedulable.values():  # in parking order, hence by timestamp: stop at the first fresh one
            if now - qp.timestamp <= self.max_in_unschedulable:
                break
            stale.append(qp)
        for qp in stale:
            self._unpark(qp.key)
            self._to_backoff_or_active(qp, "UnschedulableTimeout")

    async def run_flusher(self, *, interval: float = 0.05) -> None:
        """Flush forever (upstream flushes backoffQ every second; finer costs nothing here)."""
        while not self._closed:
            self.flush()
            await asyncio.sleep(interval)

    # ---- inspection ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {ACTIVE: len(self._active), BACKOFF: len(self._backoff),
                UNSCHEDULABLE: len(self._unschedulable), GATED: len(self._gated)}

    def unschedulable_pods(self) -> Iterator[QueuedPod]:
        return iter(self._unschedulable.values())

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def where(self, key: str) -> str | None:
        """Which queue holds ``key`` (``in_flight`` while an attempt runs), for tests and debugging."""
        for name, holder in ((ACTIVE, self._active), (BACKOFF, self._backoff), (UNSCHEDULABLE, self._unschedulable),
                             (GATED, self._gated), ("in_flight", self._in_flight)):
            if key in holder:
                return name
        return None
