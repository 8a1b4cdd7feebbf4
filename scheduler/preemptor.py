"""Acting on a preemption plan: evict the victims, and never strand the preemptor.

DefaultPreemption (``scoring/plugins/default_preemption.py``) only decides: which
node the pod is nominated to and which pods of lower priority must leave it.
The scheduling cycle records the nomination in the cache at once (so the next
cycles leave that room alone) and in the pod's ``status.nominatedNodeName``;
the side effects are here, run in the background as upstream's
``prepareCandidateAsync`` runs them, so the next cycle does not wait for the API:

1. pods of lower priority nominated to the same node lose their nomination
   (the preemptor takes the room they were waiting for): in the cache, in their
   status, and they go back to activeQ to find another place sooner
   (upstream's ``getLowerPriorityNominatedPods`` + ``clearNominatedNodeName``);
2. each victim not already terminating gets the ``DisruptionTarget`` condition
   (reason ``PreemptionByScheduler``) through ``pods/status``, is then deleted
   gracefully -- its ``terminationGracePeriodSeconds`` applies -- and gets a
   ``Preempted`` Event (upstream's ``PreemptPod``). Both calls carry the victim's
   UID as a precondition, so a pod recreated under the same name is never hit by a
   decision about its predecessor; a victim already gone (404, or 409 for another
   UID) counts as evicted.

Before the first victim is touched, the preemptor itself is read from the API
server: a decision comes from the watch's view of the cluster, which can be
seconds behind (an API server that restarted, a watch being re-established),
and a preemptor deleted meanwhile -- a Deployment scaled down, a Job finished
-- needs no room. If it is gone, recreated under another UID, already
terminating or already bound, its victims are left alone; if it cannot be
read, nobody is evicted and the pod is scheduled again. Its
``status.nominatedNodeName`` is then written (the cycle's report writes it
too, in the background) and must have landed before a victim is touched, so
that a replica taking over after this one dies knows whom the room is for.
Each victim's deletion, which retries may delay by seconds, reads the
preemptor once more just before it is sent.

A victim whose eviction is under way is tracked by key until the watch shows it
gone, so a second preemptor that picks it before its ``deletionTimestamp`` is
seen does not delete it again. After a restart nothing needs to be remembered:
the preemptor's ``status.nominatedNodeName`` is set and its victims are
terminating with the DisruptionTarget condition, which makes DefaultPreemption
answer "not eligible due to a terminating pod on the nominated node." and the
pod waits for them.

A call that fails is logged with the pod and the error, counted
(``vecsched_preemption_api_errors_total``) and, when the failure is transient
(5xx, 429, timeouts), tried again with backoff a bounded number of times. When
an eviction still fails, the preemptor is moved to activeQ (upstream's
``Activate``), so it is scheduled again -- and preempts again if it must --
instead of waiting in the unschedulable pool for victims that will not leave.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from scoring.objects import PodInfo
from scoring.plugins.victims import DISRUPTION_TARGET, PREEMPTION_BY_SCHEDULER, disruption_target
from scheduler.cache import SchedulerCache
from scheduler.kube.client import STRATEGIC_MERGE_PATCH, KubeClient
from scheduler.kube.errors import ConflictError, KubeError, NotFoundError, TooManyRequests, retryable
from scheduler.kube.events import EventRecorder, PodRef
from scheduler.metrics import Metrics
from scheduler.queue import SchedulingQueue
from scheduler.tasks import drain

__all__ = ["PreemptorSettings", "Preemptor"]

log = logging.getLogger("vecsched.preemptor")

_SUCCESS: Final = "success"
_ERROR: Final = "error"


@dataclass(frozen=True, slots=True)
class PreemptorSettings:
    """How hard the preemptor tries one API call before it gives up and reschedules the pod."""

    attempts: int = 5
    """Tries per call when the failure is transient (5xx, 429, timeouts); others are not retried."""
    initial_backoff: float = 0.2
    """Seconds before the second try, doubled for each one after it (with up to 100% jitter)."""
    max_backoff: float = 5.0
    """Longest pause between two tries, seconds; a 429's Retry-After is honoured up to this."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"preemptor attempts must be >= 1, got {self.attempts}")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError(f"preemptor backoff must satisfy 0 <= initial ({self.initial_backoff}) "
                             f"<= max ({self.max_backoff})")


class _Gone(Exception):
    """The victim no longer exists (404), or another pod holds its name now (409 on the UID)."""


def _deleting(pod: PodInfo) -> bool:
    meta = pod.raw.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def _has_target_condition(pod: PodInfo, message: str) -> bool:
    """Upstream's UpdatePodCondition is a no-op when the condition is already there as it would write it."""
    c = disruption_target(pod.raw)
    return (c is not None and c.get("status") == "True" and c.get("reason") == PREEMPTION_BY_SCHEDULER
            and c.get("message") == message)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Preemptor:
    """Evicts the victims of each preemption in a named background task."""

    def __init__(self, *, client: KubeClient, recorder: EventRecorder, cache: SchedulerCache, queue: SchedulingQueue,
                 metrics: Metrics, settings: PreemptorSettings | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.cache = cache
        self.queue = queue
        self.metrics = metrics
        self.settings = settings or PreemptorSettings()
        self._tasks: set[asyncio.Task[None]] = set()
        self._evicting: dict[str, str] = {}
        """Victim key -> its UID, from the moment its eviction starts until the watch shows it gone."""
        self._rng = random.Random()
        self.evicted = 0
        """Victims deleted (or found gone) by this preemptor."""

    # ---- the cycle's side --------------------------------------------------------------------

    def preempt(self, *, pod: PodInfo, node: str, victims: Sequence[PodInfo]) -> list[PodInfo]:
        """Make room on ``node`` for ``pod`` (already nominated there by the cycle). Returns the
        victims this call evicts: those neither terminating already nor being evicted for
        another preemptor."""
        lower = [p for p in self.cache.nominations.on(node) if p.priority < pod.priority and p.key != pod.key]
        for p in lower:
            self.cache.nominate(p, "")  # the room it waited for is the preemptor's now
        todo: list[PodInfo] = []
        for v in victims:
            if _deleting(v):
                continue  # graceful deletion has started: another call would change nothing
            if self._evicting.get(v.key) == v.uid:
                continue  # another preemptor's eviction of it is under way
            self._evicting[v.key] = v.uid
            todo.append(v)
        if todo or lower:
            task = asyncio.create_task(self._run(pod, node, todo, lower), name=f"preempt for {pod.key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return todo

    def forget(self, key: str) -> None:
        """The pod is gone (the watch saw it deleted): it is no longer being evicted."""
        self._evicting.pop(key, None)

    def evicting(self, key: str) -> bool:
        return key in self._evicting

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, *, timeout: float) -> int:
        """Wait (at most ``timeout`` seconds) for evictions in flight; returns how many were cut short."""
        return await drain(self._tasks, timeout=timeout)

    # ---- the background task -----------------------------------------------------------------

    async def _run(self, pod: PodInfo, node: str, victims: list[PodInfo], lower: list[PodInfo]) -> None:
        started = time.perf_counter()
        ok = True
        try:
            for other in lower:
                ok = await self._clear_nomination(other) and ok
                self.queue.activate(other.key)
            if victims:
                try:
                    why_not = await self._no_longer_preempting(pod) or await self._nominate(pod, node)
                except KubeError:
                    why_not, ok = "cannot be read", False  # evict nobody on a guess; the pod is scheduled again
                if why_not:
                    log.info("preemption for %s on %s called off: the pod %s; %d victim(s) left alone",
                             pod.key, node, why_not, len(victims))
                    for v in victims:
                        self._evicting.pop(v.key, None)
                    victims = []
            results = await asyncio.gather(*(self._evict(pod, node, v) for v in victims))
            ok = ok and all(results)
            if not ok:
                # Victims that did not leave keep the pod from fitting: schedule it again now
                # (it preempts again if it must) rather than wait for an event that will not come.
                # As upstream, a failure to clear a lower pod's nomination counts too.
                self.queue.activate(pod.key)
                log.warning("preemption for %s on %s failed; the pod is scheduled again", pod.key, node)
        finally:
            result = _SUCCESS if ok else _ERROR
            self.metrics.preemption_goroutines.labels(result).inc()
            self.metrics.preemption_goroutine_duration.labels(result).observe(time.perf_counter() - started)

    async def _evict(self, preemptor: PodInfo, node: str, victim: PodInfo) -> bool:
        """Upstream's PreemptPod: the DisruptionTarget condition, then the graceful delete, then the Event."""
        base = f"/api/v1/namespaces/{victim.namespace}/pods/{victim.name}"
        message = f"{preemptor.scheduler_name}: preempting to accommodate a higher priority pod"
        try:
            if not _has_target_condition(victim, message):
                patch = {"metadata": {"uid": victim.uid},
                         "status": {"conditions": [{"type": DISRUPTION_TARGET, "status": "True",
                                                    "reason": PREEMPTION_BY_SCHEDULER, "message": message,
                                                    "lastTransitionTime": _now()}]}}
                await self._call("disruption_condition", victim, lambda: self.client.patch(
                    f"{base}/status", body=patch, content_type=STRATEGIC_MERGE_PATCH))
            why_not = await self._no_longer_preempting(preemptor)
            if why_not:
                log.info("eviction of %s called off: its preemptor %s %s", victim.key, preemptor.key, why_not)
                self._evicting.pop(victim.key, None)
                return True
            options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": victim.uid}}
            await self._call("delete", victim, lambda: self.client.request("DELETE", base, body=options))
        except _Gone:
            log.info("victim %s of %s is already gone", victim.key, preemptor.key)
            self.evicted += 1
            return True
        except KubeError:
            self._evicting.pop(victim.key, None)  # a later preemption may try it again
            return False
        except asyncio.CancelledError:
            self._evicting.pop(victim.key, None)
            raise
        self.evicted += 1
        log.info("preempted pod", extra={"fields": {"victim": victim.key, "preemptor": preemptor.key, "node": node}})
        self.recorder.preempted(PodRef.of(victim), by=PodRef.of(preemptor), node=node)
        return True

    async def _no_longer_preempting(self, pod: PodInfo) -> str:
        """Why the preemptor, as the API server has it now, needs no room ("" when it still does):
        deleted, recreated under another UID, terminating, or bound. ``KubeError`` when it cannot
        be read."""
        try:
            raw = await self._call("get_preemptor", pod, lambda: self.client.request(
                "GET", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"))
        except _Gone:
            return "was deleted"
        meta = raw.get("metadata") if isinstance(raw, Mapping) else None
        spec = raw.get("spec") if isinstance(raw, Mapping) else None
        if not isinstance(meta, Mapping) or meta.get("uid") != pod.uid:
            return "was deleted and recreated under another UID"
        if meta.get("deletionTimestamp"):
            return "is being deleted"
        if isinstance(spec, Mapping) and spec.get("nodeName"):
            return f"is bound to {spec['nodeName']} already"
        return ""

    async def _nominate(self, pod: PodInfo, node: str) -> str:
        """Write the preemptor's ``status.nominatedNodeName`` (UID precondition); "was deleted" when
        it is gone, "" once written. ``KubeError`` when it cannot be written."""
        patch = {"metadata": {"uid": pod.uid}, "status": {"nominatedNodeName": node}}
        try:
            await self._call("nominate", pod, lambda: self.client.patch(
                f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status", body=patch,
                content_type=STRATEGIC_MERGE_PATCH))
        except _Gone:
            return "was deleted"
        return ""

    async def _clear_nomination(self, pod: PodInfo) -> bool:
        """Remove ``status.nominatedNodeName`` of a pod whose room the preemptor takes. Sent even when
        the pod's status, as last seen, has none: the cycle's own patch setting it may be on its way."""
        patch = {"metadata": {"uid": pod.uid}, "status": {"nominatedNodeName": None}}
        try:
            await self._call("clear_nomination", pod, lambda: self.client.patch(
                f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status", body=patch,
                content_type=STRATEGIC_MERGE_PATCH))
        except _Gone:
            return True
        except KubeError:
            return False
        return True

    async def _call(self, what: str, pod: PodInfo, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()``, tried again after a backoff while the failure is transient. Raises ``_Gone``
        when the pod does not exist (any more) under its UID, the last ``KubeError`` otherwise."""
        s = self.settings
        delay = s.initial_backoff
        for attempt in range(1, s.attempts + 1):
            try:
                return await call()
            except NotFoundError as e:
                raise _Gone(str(e)) from e
            except ConflictError as e:
                if "UID" in e.message:
                    raise _Gone(str(e)) from e
                err: KubeError = e
            except KubeError as e:
                err = e
            self.metrics.preemption_api_errors.labels(what).inc()
            last = attempt == s.attempts or not retryable(err)
            log.warning("preemption call %s for pod %s failed (attempt %d of %d%s): %s", what, pod.key, attempt,
                        s.attempts, "" if not last else ", giving up", err)
            if last:
                raise err
            wait = delay * (1.0 + self._rng.random())
            if isinstance(err, TooManyRequests) and err.retry_after:
                wait = max(wait, err.retry_after)
            await asyncio.sleep(min(wait, s.max_backoff))
            delay = min(delay * 2, s.max_backoff)
        raise AssertionError("unreachable: the last attempt returns or raises")
