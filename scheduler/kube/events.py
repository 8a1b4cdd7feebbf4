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
``repeat_interval``. Reporting never blocks scheduling: calls are sent from
background tasks, and a failure to report is logged, not raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from scheduler.kube.client import STRATEGIC_MERGE_PATCH, KubeClient
from scheduler.kube.errors import KubeError, NotFoundError, retryable
from scheduler.tasks import drain
from scoring.nominations import status_nominated_node
from scoring.objects import PodInfo

__all__ = ["PodRef", "EventLimiter", "EventRecorder", "COMPONENT"]

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
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventRecorder:
    """Sends Events and PodScheduled conditions in the background."""

    def __init__(self, *, client: KubeClient, instance: str, limiter: EventLimiter | None = None,
                 on_suppressed: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.instance = instance
        self.limiter = limiter if limiter is not None else EventLimiter()  # an empty limiter is falsy (__len__)
        self._on_suppressed = on_suppressed
        self._tasks: set[asyncio.Task[None]] = set()
        self._deferred: dict[str, tuple[PodRef, str, str, Mapping[str, Any] | None]] = {}
        """Per pod, the latest report held back by the rate limit: sent once the interval is over,
        so that a pod whose reason changed quickly does not show the old one until its next attempt."""
        self.sent = 0

    def _spawn(self, what: str, coro: Any) -> None:
        if len(self._tasks) >= _MAX_PENDING:
            coro.close()
            if self._on_suppressed:
                self._on_suppressed("backlog")
            return
        task = asyncio.create_task(coro, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def scheduled(self, pod: PodRef, node: str) -> None:
        """The pod was bound to ``node``."""
        self.limiter.forget(pod.key)
        msg = f"Successfully assigned {pod.namespace}/{pod.name} to {node}"
        self._spawn(f"event Scheduled {pod.key}", self._event(pod, "Normal", "Scheduled", "Binding", msg))

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
                self._spawn(f"deferred FailedScheduling {pod.key}", self._send_deferred(pod.key))
            self._deferred[pod.key] = (pod, message, reason, current)
        elif why is None:
            self._deferred.pop(pod.key, None)
        if why is None:
            self._spawn(f"event FailedScheduling {pod.key}",
                        self._event(pod, "Warning", "FailedScheduling", "Scheduling", message))
        condition = why is None and not _has_condition(current, reason, message)
        nominate = nominated is not None and nominated != status_nominated_node(current)
        if condition or nominate:
            self._spawn(f"condition {pod.key}", self._condition(
                pod, reason if condition else None, message, nominated if nominate else None))
        return why is None

    def preempted(self, victim: PodRef, *, by: PodRef, node: str) -> None:
        """``victim`` was deleted to make room for ``by`` on ``node`` (upstream's text, the preemptor's UID)."""
        self._spawn(f"event Preempted {victim.key}", self._event(
            victim, "Normal", "Preempted", "Preempting", f"Preempted by pod {by.uid} on node {node}", related=by))

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
        self._spawn(f"event {reason} {kind} {namespace}/{name}", self._send(obj, type_, reason, action, message))

    async def _event(self, pod: PodRef, type_: str, reason: str, action: str, message: str,
                     related: PodRef | None = None) -> None:
        await self._send(_Involved.pod(pod), type_, reason, action, message,
                         related=_Involved.pod(related) if related is not None else None)

    async def _send(self, obj: _Involved, type_: str, reason: str, action: str, message: str,
                    related: _Involved | None = None) -> None:
        now = _now()
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Event",
            # client-go's naming (<object>.<unique hex>), kept within the 253 characters of a name.
            "metadata": {"name": f"{obj.name[:236]}.{time.time_ns():x}", "namespace": obj.namespace},
            "involvedObject": obj.reference(),
            "reason": reason, "message": message[:1024], "type": type_, "action": action,
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "reportingInstance": self.instance[:128],  # the API's ReportingInstanceLengthLimit
            "firstTimestamp": now, "lastTimestamp": now, "eventTime": _micro_now(), "count": 1,
        }
        if related is not None:
            body["related"] = related.reference()
        try:
            await _retrying(lambda: self.client.request("POST", f"/api/v1/namespaces/{obj.namespace}/events", body=body))
            self.sent += 1
        except KubeError as e:
            log.info("could not record event %s for %s %s/%s: %s", reason, obj.kind.lower(), obj.namespace, obj.name, e)

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
            await _retrying(lambda: self.client.patch(f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status",
                                                      body=patch, content_type=STRATEGIC_MERGE_PATCH),
                            attempts=attempts)
        except NotFoundError:
            pass  # deleted meanwhile
        except KubeError as e:
            log.info("could not patch the scheduling status (PodScheduled, nominatedNodeName) of %s: %s", pod.key, e)

    async def drain(self, *, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for reports in flight; cancel the rest."""
        await drain(self._tasks, timeout=timeout)


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
