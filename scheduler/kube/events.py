"""Telling users what happened to their pod: Events and the PodScheduled condition.

``kubectl describe pod`` is where a user looks first, so every outcome is
reported as kube-scheduler reports it: a ``Scheduled`` Event (type Normal,
"Successfully assigned ns/name to node") on success; on failure a
``FailedScheduling`` Event (type Warning) and the pod condition
``PodScheduled=False`` with the same message -- in the same ``pods/status``
patch as the ``nominatedNodeName`` that preemption sets or clears, as upstream's
updatePod; and on a pod evicted to make room, a ``Preempted`` Event (type
Normal, "Preempted by pod <preemptor UID> on node <node>"). Events are core/v1
objects with ``source.component`` and ``reportingComponent`` set to ``vecsched``.
Events about other objects (a PodGroup's ``Scheduled`` and ``FailedScheduling``) are
built the same way by ``object_event``.

A pod that fits nowhere is retried again and again; reporting every attempt
would flood the API. ``EventLimiter`` lets at most one FailedScheduling per
pod through per ``min_interval`` and repeats an unchanged message only after
``repeat_interval``. A repeat that does go out is folded into the Event already
recorded, as client-go's core/v1 ``EventCorrelator`` (its ``eventLogger``) does:
the same involved object, reason, message, type and source (and related object)
seen again within ``EventAggregator.window`` of the last time becomes a
strategic-merge PATCH of that Event's ``count`` and ``lastTimestamp``, not a new
Event; after the window, or with any field different, a new Event is created.

Reporting never blocks scheduling: a report is queued (a bounded queue) and sent
by one of ``_LANES`` long-lived sender tasks, a pod's reports always by the same
one, so that they reach the API in the order they were made (a repeat after the
Event it counts); a failure to report is logged, not raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any, Final

from scheduler.kube.client import STRATEGIC_MERGE_PATCH, KubeClient
from scheduler.kube.errors import KubeError, NotFoundError, retryable
from scheduler.tasks import drain
from scoring.nominations import status_nominated_node
from scoring.objects import PodInfo

__all__ = ["PodRef", "EventLimiter", "EventAggregator", "EventRecorder", "COMPONENT"]

log = logging.getLogger("vecsched.events")

COMPONENT: Final = "vecsched"
_MAX_PENDING: Final = 1000  # reports queued beyond this are dropped: the API is the bottleneck then


@dataclass(frozen=True, slots=True)
class PodRef:
    """The identity of a pod an Event is about (readable even when the rest of the pod is not)."""

    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, pod: PodInfo) -> PodRef:
        return cls(pod.namespace, pod.name, pod.uid)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PodRef:
        m = raw.get("metadata")
        meta: Mapping[str, Any] = m if isinstance(m, Mapping) else {}
        return cls(str(meta.get("namespace") or "default"), str(meta.get("name") or ""), str(meta.get("uid") or ""))


@dataclass(frozen=True, slots=True)
class _Involved:
    """The object an Event is about (its ``involvedObject``, or its ``related`` object)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def pod(cls, pod: PodRef) -> _Involved:
        return cls("v1", "Pod", pod.namespace, pod.name, pod.uid)

    def reference(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name,
                "uid": self.uid}


class EventLimiter:
    """Per-pod rate limit and deduplication of failure reports."""

    def __init__(self, *, min_interval: float = 5.0, repeat_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval = min_interval
        """Seconds between two failure reports of one pod, whatever they say."""
        self.repeat_interval = repeat_interval
        """Seconds before the same message is reported again for the same pod."""
        self.clock = clock
        self._last: dict[str, tuple[float, str]] = {}

    def allow(self, key: str, message: str) -> str | None:
        """None when the report may go out (and records it); else why it is suppressed."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None:
            at, msg = last
            if msg == message and now - at < self.repeat_interval:
                return "duplicate"
            if now - at < self.min_interval:
                return "rate_limited"
        self._last[key] = (now, message)
        return None

    def wait(self, key: str) -> float:
        """Seconds before a report with a new message may go out for ``key`` (0: now)."""
        last = self._last.get(key)
        return 0.0 if last is None else max(0.0, self.min_interval - (self.clock() - last[0]))

    def forget(self, key: str) -> None:
        self._last.pop(key, None)

    def __len__(self) -> int:
        return len(self._last)


def _now() -> str:
    return _stamps()[0]


_second: list[tuple[int, str]] = [(-1, "")]
"""The last whole second formatted (``strftime`` costs more than the rest of an Event's body, and
Events come hundreds a second)."""


def _stamps() -> tuple[str, str]:
    """Now as an Event's ``lastTimestamp`` (seconds) and ``eventTime`` (microseconds), read once."""
    t = datetime.now(timezone.utc)
    whole = int(t.timestamp())
    last, seconds = _second[0]
    if whole != last:
        seconds = t.strftime("%Y-%m-%dT%H:%M:%S")
        _second[0] = (whole, seconds)
    return f"{seconds}Z", f"{seconds}.{t.microsecond:06d}Z"


_EventKey = tuple[_Involved, "_Involved | None", str, str, str]
"""What makes two Events the same one (client-go's ``getEventKey``, plus ``related``): the
involved object, the related object, type, reason and message; the source is always vecsched."""


@dataclass(slots=True)
class _Recorded:
    """An Event as the API holds it after our last write (client-go's ``eventLog``)."""

    name: str
    count: int
    first_timestamp: str
    seen: float
    """``clock()`` when it was last written."""


class EventAggregator:
    """Which Events are repeats of one already recorded: client-go's core/v1 ``eventLogger``,
    with the time limit of its events.k8s.io broadcaster.

    ``observe`` says whether an Event is new or the ``count``-th occurrence of a recorded one;
    ``recorded`` notes what the API now holds. A bounded LRU, as upstream's."""

    def __init__(self, *, window: float = 360.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        """Seconds after an Event's last occurrence within which the same Event is counted on it
        (client-go's events.k8s.io broadcaster ends a series after 6 minutes without a repeat)."""
        self.max_entries = max_entries
        """Events remembered (client-go's ``maxLruCacheEntries``); the least recently seen go first."""
        self.clock = clock
        self._cache: dict[_EventKey, _Recorded] = {}

    def observe(self, key: _EventKey) -> _Recorded | None:
        """The recorded Event that ``key`` repeats (within the window), None when it is new."""
        rec = self._cache.get(key)
        if rec is None:
            return None
        if self.clock() - rec.seen > self.window:
            del self._cache[key]
            return None
        return rec

    def recorded(self, key: _EventKey, *, name: str, count: int, first_timestamp: str) -> None:
        """The API now holds ``key``'s Event as ``name`` with ``count`` occurrences."""
        self._cache.pop(key, None)  # re-inserted last: the dict's order is the LRU's
        self._cache[key] = _Recorded(name, count, first_timestamp, self.clock())
        if len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]

    def __len__(self) -> int:
        return len(self._cache)


_LANES: Final = 16
"""Sender tasks. A pod's reports all go through one lane (by a hash of its key), in order; 16
lanes keep up with the binder on a loopback API server and, with the connector's 100
connections shared with bindings and watches, never take more than a sixth of them."""

_Job = Callable[[], Awaitable[None]]


class EventRecorder:
    """Sends Events and PodScheduled conditions in the background."""

    def __init__(self, *, client: KubeClient, instance: str, limiter: EventLimiter | None = None,
                 on_suppressed: Callable[[str], None] | None = None,
                 aggregator: EventAggregator | None = None) -> None:
        self.client = client
        self.instance = instance
        self.limiter = limiter if limiter is not None else EventLimiter()  # an empty limiter is falsy (__len__)
        self.aggregator = aggregator if aggregator is not None else EventAggregator()
        self._on_suppressed = on_suppressed
        self._lanes: list[deque[_Job]] = [deque() for _ in range(_LANES)]
        self._wake: list[asyncio.Event] = [asyncio.Event() for _ in range(_LANES)]
        self._senders: list[asyncio.Task[None]] = []
        self._pending = 0
        """Reports queued or being sent."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._timers: set[asyncio.Task[None]] = set()
        self._deferred: dict[str, tuple[PodRef, str, str, Mapping[str, Any] | None]] = {}
        """Per pod, the latest report held back by the rate limit: sent once the interval is over,
        so that a pod whose reason changed quickly does not show the old one until its next attempt."""
        self.sent = 0

    def _queue(self, key: str, job: _Job) -> None:
        """Send ``job`` in the background, after the reports queued before it for ``key``."""
        if self._pending >= _MAX_PENDING:
            if self._on_suppressed:
                self._on_suppressed("backlog")
            return
        if not self._senders:  # started on first use, in the running loop (again after a drain)
            self._wake = [asyncio.Event() for _ in range(_LANES)]
            self._idle = asyncio.Event()
            self._senders = [asyncio.create_task(self._sender(i), name=f"event sender {i}") for i in range(_LANES)]
        lane = hash(key) % _LANES
        self._lanes[lane].append(job)
        self._pending += 1
        self._idle.clear()
        self._wake[lane].set()

    async def _sender(self, lane: int) -> None:
        jobs, wake = self._lanes[lane], self._wake[lane]
        while True:
            await wake.wait()
            wake.clear()
            while jobs:
                job = jobs.popleft()
                try:
                    await job()
                except Exception:  # a bug in reporting must not stop the lane
                    log.exception("sending a report failed")
                finally:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.set()

    def scheduled(self, pod: PodRef, node: str) -> None:
        """The pod was bound to ``node``."""
        self.limiter.forget(pod.key)
        msg = f"Successfully assigned {pod.namespace}/{pod.name} to {node}"
        self._queue(pod.key, partial(self._send, _Involved.pod(pod), "Normal", "Scheduled", "Binding", msg))

    def failed(self, pod: PodRef, message: str, *, reason: str = "Unschedulable",
               current: Mapping[str, Any] | None = None, nominated: str | None = None) -> bool:
        """The attempt failed: FailedScheduling Event + PodScheduled=False (unless rate limited).

        ``current`` is the pod's JSON as last seen, so an unchanged condition is not patched again.
        ``nominated`` is the node preemption nominated the pod to (``""``: clear the nomination;
        None: leave it); it is written whenever it differs from ``current``, rate limit or not.
        Returns whether the Event was sent.
        """
        why = self.limiter.allow(pod.key, message)
        if why is not None and self._on_suppressed:
            self._on_suppressed(why)
        if why == "rate_limited":
            if pod.key not in self._deferred:
                timer = asyncio.create_task(self._send_deferred(pod.key), name=f"deferred FailedScheduling {pod.key}")
                self._timers.add(timer)
                timer.add_done_callback(self._timers.discard)
            self._deferred[pod.key] = (pod, message, reason, current)
        elif why is None:
            self._deferred.pop(pod.key, None)
        if why is None:
            self._queue(pod.key, partial(self._send, _Involved.pod(pod), "Warning", "FailedScheduling", "Scheduling",
                                         message))
        condition = why is None and not _has_condition(current, reason, message)
        nominate = nominated is not None and nominated != status_nominated_node(current)
        if condition or nominate:
            self._queue(pod.key, partial(self._condition, pod, reason if condition else None, message,
                                         nominated if nominate else None))
        return why is None

    def preempted(self, victim: PodRef, *, by: PodRef, node: str) -> None:
        """``victim`` was deleted to make room for ``by`` on ``node`` (upstream's text, the preemptor's UID)."""
        self._queue(victim.key, partial(self._send, _Involved.pod(victim), "Normal", "Preempted", "Preempting",
                                        f"Preempted by pod {by.uid} on node {node}", _Involved.pod(by)))

    def forget(self, key: str) -> None:
        """The pod left (bound or deleted): drop its rate-limit state and any report held back."""
        self.limiter.forget(key)
        self._deferred.pop(key, None)

    async def _send_deferred(self, key: str) -> None:
        """Once the rate limit allows, send the latest report held back for ``key`` (if still held)."""
        while (held := self._deferred.get(key)) is not None and (wait := self.limiter.wait(key)) > 0:
            await asyncio.sleep(wait)
        held = self._deferred.pop(key, None)
        if held is not None:
            pod, message, reason, current = held
            self.failed(pod, message, reason=reason, current=current)

    def object_event(self, *, api_version: str, kind: str, namespace: str, name: str, uid: str, type_: str,
                     reason: str, action: str, message: str) -> None:
        """An Event about any namespaced object (a PodGroup, ...), sent in the background; not rate
        limited here (callers that repeat themselves keep their own ``EventLimiter``)."""
        obj = _Involved(api_version, kind, namespace, name, uid)
        self._queue(f"{kind} {namespace}/{name}", partial(self._send, obj, type_, reason, action, message))

    async def _send(self, obj: _Involved, type_: str, reason: str, action: str, message: str,
                    related: _Involved | None = None) -> None:
        """Create the Event, or count a repeat on the one recorded (client-go's ``recordToSink``)."""
        message = message[:1024]
        key: _EventKey = (obj, related, type_, reason, message)
        seen = self.aggregator.observe(key)
        now, micro = _stamps()
        events = f"/api/v1/namespaces/{obj.namespace}/events"
        try:
            if seen is not None:
                name, count, first = seen.name, seen.count + 1, seen.first_timestamp
                try:
                    # The fields client-go's two-way merge patch of a repeat holds.
                    await _retrying(lambda: self.client.send(
                        "PATCH", f"{events}/{name}", body={"count": count, "lastTimestamp": now, "message": message},
                        content_type=STRATEGIC_MERGE_PATCH))
                except NotFoundError:  # deleted meanwhile (expired): created again, with the count
                    await _retrying(lambda: self.client.send("POST", events, body=self._body(
                        obj, type_, reason, action, message, related, name=name, count=count, first=first, now=now,
                        micro=micro)))
            else:
                # client-go's naming (<object>.<unique hex>), kept within the 253 characters of a name.
                name, count, first = f"{obj.name[:236]}.{time.time_ns():x}", 1, now
                await _retrying(lambda: self.client.send("POST", events, body=self._body(
                    obj, type_, reason, action, message, related, name=name, count=1, first=now, now=now, micro=micro)))
            self.aggregator.recorded(key, name=name, count=count, first_timestamp=first)
            self.sent += 1
        except KubeError as e:
            log.info("could not record event %s for %s %s/%s: %s", reason, obj.kind.lower(), obj.namespace, obj.name, e)

    def _body(self, obj: _Involved, type_: str, reason: str, action: str, message: str, related: _Involved | None,
              *, name: str, count: int, first: str, now: str, micro: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": obj.namespace},
            "involvedObject": obj.reference(),
            "reason": reason, "message": message, "type": type_, "action": action,
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "reportingInstance": self.instance[:128],  # the API's ReportingInstanceLengthLimit
            "firstTimestamp": first, "lastTimestamp": now, "eventTime": micro, "count": count,
        }
        if related is not None:
            body["related"] = related.reference()
        return body

    async def _condition(self, pod: PodRef, reason: str | None, message: str, nominated: str | None = None) -> None:
        """One ``pods/status`` patch: PodScheduled=False (when ``reason``) and ``nominatedNodeName``
        (when not None; ``""`` removes it)."""
        status: dict[str, Any] = {}
        if reason is not None:
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                                     "lastProbeTime": None, "lastTransitionTime": _now()}]
        if nominated is not None:
            status["nominatedNodeName"] = nominated or None
        patch = {"metadata": {"uid": pod.uid} if pod.uid else {}, "status": status}
        # A nomination is worth the preemptor's eviction retries (about 6 s): while its victims
        # leave, it is what tells other schedulers and `kubectl` whom the room is for.
        attempts = _NOMINATION_ATTEMPTS if nominated else _ATTEMPTS
        try:
            await _retrying(lambda: self.client.send("PATCH", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status",
                                                     body=patch, content_type=STRATEGIC_MERGE_PATCH),
                            attempts=attempts)
        except NotFoundError:
            pass  # deleted meanwhile
        except KubeError as e:
            log.info("could not patch the scheduling status (PodScheduled, nominatedNodeName) of %s: %s", pod.key, e)

    @property
    def pending(self) -> int:
        """Reports queued or being sent."""
        return self._pending

    async def drain(self, *, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for reports queued or in flight; drop the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await drain(self._timers, timeout=timeout)  # reports held back join the queue first
        if self._pending:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                log.info("%d reports not sent within %.1fs", self._pending, timeout)
        senders, self._senders = self._senders, []
        for task in senders:
            task.cancel()
        if senders:
            await asyncio.wait(senders, timeout=1.0)
        for jobs in self._lanes:
            jobs.clear()
        self._pending = 0
        self._idle.set()


_ATTEMPTS: Final = 3  # client-go's recorder tries 12 times; a scheduler's report is worth less than its next bind
_NOMINATION_ATTEMPTS: Final = 6  # 0.2 + 0.4 + ... + 3.2 s, doubled at most by jitter: PreemptorSettings' budget
_RETRY_DELAY: Final = 0.2


async def _retrying(call: Callable[[], Awaitable[Any]], *, attempts: int = _ATTEMPTS) -> Any:
    """``call()``, tried again after a short randomised pause when the failure is transient."""
    for attempt in range(attempts):
        try:
            return await call()
        except KubeError as e:
            if attempt == attempts - 1 or not retryable(e):
                raise
            delay = getattr(e, "retry_after", 0.0) or _RETRY_DELAY * (2**attempt)
            await asyncio.sleep(delay * (1.0 + random.random()))


def _has_condition(pod: Mapping[str, Any] | None, reason: str, message: str) -> bool:
    if not pod:
        return False
    status = pod.get("status")
    for c in (status.get("conditions") if isinstance(status, Mapping) else None) or []:
        if isinstance(c, Mapping) and c.get("type") == "PodScheduled":
            return c.get("status") == "False" and c.get("reason") == reason and c.get("message") == message
    return False
