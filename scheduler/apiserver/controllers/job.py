"""The Job controller: run a batch/v1 Job's pods until enough succeed, or give up.

Batch workloads are half of what a scheduler is measured on (gang-like
bursts, queues of short pods, retries after failures), so the embedded
control plane runs Jobs the way kube-controller-manager does and a scheduler
tested here sees the same pods come and go:

* pods are created from the template (``generateName: <job>-``, the
  template's labels and annotations, a controller ownerReference), at most
  ``parallelism`` at a time and never more than the completions still
  missing, in slow-start batches (1, 2, 4, ...) that stop at the first error;
  ``SuccessfulCreate`` / ``SuccessfulDelete`` Events as upstream's pod control;
* ``completionMode: Indexed`` gives each pod an index (annotation and label
  ``batch.kubernetes.io/job-completion-index``, hostname ``<job>-<index>``,
  ``JOB_COMPLETION_INDEX``), fills the lowest missing indexes, removes
  duplicates, and reports ``completedIndexes`` as upstream's intervals;
* finished pods are counted into ``succeeded`` / ``failed`` (a terminating
  pod counts as failed under ``podReplacementPolicy: TerminatingOrFailed``),
  replacements wait out the pod-failure backoff (10 s doubling to 10 min;
  settings ``job.pod_failure_backoff_seconds`` and
  ``job.pod_failure_backoff_max_seconds``);
* more failures than ``backoffLimit`` (or, for ``OnFailure`` pods, that many
  container restarts) fail the Job with ``BackoffLimitExceeded``, "Job has
  reached the specified backoff limit"; ``activeDeadlineSeconds`` fails it
  with ``DeadlineExceeded`` through a requeue timer; the remaining active pods
  are deleted and counted as failed;
* as current upstream, the interim ``FailureTarget`` / ``SuccessCriteriaMet``
  condition comes first, and ``Failed`` / ``Complete`` (with
  ``completionTime``, Events ``Completed`` "Job completed" or the failure
  reason) only once no pod of the Job is terminating;
* ``suspend`` deletes the active pods and sets ``Suspended`` (``JobSuspended``,
  Event ``Suspended``); resuming sets it False (``JobResumed``), restarts the
  deadline clock and emits ``Resumed``;
* status ``active``, ``ready``, ``terminating``, ``succeeded``, ``failed``,
  ``startTime``, ``completionTime``, ``uncountedTerminatedPods: {}``;
* ``ttlSecondsAfterFinished`` (the TTL-after-finished controller's job)
  deletes a finished Job with foreground propagation once its time is up.

Counting without finalizers: upstream puts a ``batch.kubernetes.io/job-tracking``
finalizer on every pod and stages counts in ``status.uncountedTerminatedPods``
because its informers may miss a pod that finishes and vanishes between two
syncs. Here every write reaches the controller synchronously and a pod cannot
vanish unseen, so finished pods are counted from the store and the uids of
counted pods (and of pods the controller itself deleted, which upstream
releases uncounted) are remembered in memory. A controller that starts on a
Job that already has a status (a restored state file) treats the pods that
are finished at that moment as counted.

Also simplified or left out: adoption and release of pods by selector (the
Job's pods are those whose controller reference names it); pod events are
batched by ``job.sync_batch_seconds`` (upstream's 1 s); ``podFailurePolicy``,
``successPolicy``, ``backoffLimitPerIndex`` and ``managedBy`` are not
interpreted; while a replacement waits for its backoff ``active`` shows the
pods that run (upstream reports 0).

What a sync reads of the pods (``JobPod``, parsed once per pod version) and
the completion-index bookkeeping of Indexed Jobs are in ``jobutil.py``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .. import errors
from ..objects import now_rfc3339
from ..store import Entry
from .base import Controller, ControllerContext, Key, Mapper
from .jobutil import (COMPLETION_INDEX, Intervals, JobPod, JobPods, first_pending_indexes, format_intervals, job_pod,
                      merge_intervals, parse_intervals, pods_for_removal)
from .pods import parse_time

__all__ = ["JobController", "COMPLETION_INDEX"]

JOBS: Final = "jobs.batch"
PODS: Final = "pods"
_TERMINAL: Final = frozenset({"Succeeded", "Failed"})
_MAX_PER_SYNC: Final = 500  # upstream's MaxPodCreateDeletePerSync
_COMPLETIONS_REACHED: Final = ("CompletionsReached", "Reached expected number of succeeded pods")


@dataclass
class _Tracking:
    """What upstream keeps in pod finalizers and its backoff store, for one Job."""

    done: set[str] = field(default_factory=set)
    """uids of pods already counted, or deleted by the controller and so never counted."""
    failures: int = 0
    """Pod failures since the last success (the backoff exponent)."""
    last_failure: float | None = None


@dataclass(frozen=True)
class _Finish:
    type: str
    reason: str
    message: str


class JobController(Controller):
    """Reconciles batch/v1 Jobs against their pods."""

    name = "job-controller"
    primary = JOBS

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        s = ctx.settings
        self.batch = float(s.get("job.sync_batch_seconds", 1.0))
        """Seconds pod changes are collected before a sync (``job.sync_batch_seconds``; upstream's 1 s)."""
        self.backoff = float(s.get("job.pod_failure_backoff_seconds", 10.0))
        """First delay before replacing a failed pod (``job.pod_failure_backoff_seconds``; upstream 10 s)."""
        self.max_backoff = float(s.get("job.pod_failure_backoff_max_seconds", 600.0))
        """Cap of that doubling delay (``job.pod_failure_backoff_max_seconds``; upstream 10 min)."""
        self._jobs = self.store.type(JOBS)
        self._pods = JobPods(store=self.store, view=self.view)
        self._tracking: dict[str, _Tracking] = {}
        self._uid_of: dict[Key, str] = {}

    def watches(self) -> Mapping[str, Mapper]:
        return {PODS: self._on_pod}

    def _on_pod(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        if new is None and old is not None:
            self._pods.forget(old.uid)
        for e in (old, new):
            if e is not None and e.controller is not None and e.controller[0] == "Job":
                self.queue.add_after((e.namespace, e.controller[1]), self.batch)
        return ()

    async def reconcile(self, key: Key) -> float | None:
        entry = self.store.find(self._jobs, *key)
        seen = self._uid_of.get(key)
        if seen is not None and (entry is None or seen != entry.uid):
            self._tracking.pop(seen, None)  # the Job went (or was replaced): forget what was counted for it
            del self._uid_of[key]
        if entry is None:
            return None
        self._uid_of[key] = entry.uid
        job = entry.obj()
        status = job.setdefault("status", {})
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or []):
            self._tracking.pop(entry.uid, None)
            return self._expire(job)
        mode = (job.get("spec") or {}).get("completionMode") or "NonIndexed"
        if mode not in ("NonIndexed", "Indexed"):
            self.event(job, type="Warning", reason="UnknownCompletionMode",
                       message="Skipped Job sync because completion mode is unknown")
            return None
        return await self._sync(job, entry.uid, indexed=mode == "Indexed")

    async def _sync(self, job: dict[str, Any], uid: str, *, indexed: bool) -> float | None:
        meta, spec, status = job["metadata"], job.get("spec") or {}, job["status"]
        before = copy.deepcopy(status)
        pods = self._pods.controlled_by(uid)
        t = self._tracking.get(uid)
        if t is None:
            t = self._tracking[uid] = _Tracking()
            if status.get("startTime") or status.get("succeeded") or status.get("failed"):
                t.done = {p.uid for p in pods if p.phase in _TERMINAL or p.terminating}  # counted before a restart
        now = time.time()
        completions = spec.get("completions")
        only_failed = spec.get("podReplacementPolicy") == "Failed"
        suspended = bool(spec.get("suspend"))

        def failed_pod(p: JobPod) -> bool:  # upstream's isPodFailed
            return p.phase == "Failed" or (not only_failed and p.terminating and p.phase != "Succeeded")

        def valid(p: JobPod) -> bool:
            return not indexed or 0 <= p.index < int(completions or 0)

        active_pods = [p for p in pods if p.phase not in _TERMINAL and not p.terminating]
        terminating = sum(1 for p in pods if p.terminating and p.phase not in _TERMINAL)
        ready = sum(1 for p in active_pods if p.ready)
        new_ok = [p for p in pods if p.uid not in t.done and p.phase == "Succeeded" and valid(p)]
        new_bad = [p for p in pods if p.uid not in t.done and failed_pod(p) and valid(p)]
        succeeded = int(status.get("succeeded") or 0) + len(new_ok)
        failed = int(status.get("failed") or 0) + len(new_bad)
        if not status.get("startTime") and not suspended:
            status["startTime"] = now_rfc3339()
        failures, last_failure = self._next_backoff(t, new_ok, new_bad)
        conds: list[dict[str, Any]] = status.setdefault("conditions", [])
        requeue: list[float] = []
        events: list[tuple[str, str, str]] = []
        finish: _Finish | None = None
        if (c := _cond(conds, "SuccessCriteriaMet")) is not None:
            finish = _Finish("SuccessCriteriaMet", c.get("reason", ""), c.get("message", ""))
        elif (c := _cond(conds, "FailureTarget")) is not None:
            finish = _Finish("Failed", c.get("reason", ""), c.get("message", ""))
        else:
            limit = int(spec.get("backoffLimit", 6))
            deadline = spec.get("activeDeadlineSeconds")
            started = parse_time(status.get("startTime"))
            if failed > limit or _past_restart_limit(spec, pods, limit):
                finish = _Finish("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            elif deadline is not None and started is not None and not suspended:
                if now - started >= int(deadline):
                    finish = _Finish("FailureTarget", "DeadlineExceeded",
                                     "Job was active longer than specified deadline")
                else:
                    requeue.append(started + int(deadline) - now)
        done_idx: Intervals = []
        if indexed:
            done_idx = merge_intervals(parse_intervals(str(status.get("completedIndexes") or ""),
                                                       completions=int(completions or 0)),
                                       add=[(p.index, p.index) for p in new_ok])
            succeeded = sum(last - first + 1 for first, last in done_idx)
        if finish is not None:
            gone, gone_ready = self._delete(job, active_pods, t, release=False, events=events)
            active, terminating, ready = len(active_pods) - gone, terminating + gone, ready - gone_ready
        else:
            active = len(active_pods)
            managed = not meta.get("deletionTimestamp")
            if managed:
                active, terminating, ready = await self._manage(
                    job, t, active_pods, pods, done_idx, succeeded=succeeded, terminating=terminating, ready=ready,
                    backoff=(failures, last_failure), now=now, requeue=requeue, events=events, indexed=indexed)
            if (succeeded > 0 if completions is None else succeeded >= int(completions)) and active == 0:
                finish = _Finish("SuccessCriteriaMet", *_COMPLETIONS_REACHED)
            elif managed and suspended:
                if _ensure(conds, "Suspended", "True", "JobSuspended", "Job suspended"):
                    events.append(("Normal", "Suspended", "Job suspended"))
            elif managed and _ensure(conds, "Suspended", "False", "JobResumed", "Job resumed"):
                events.append(("Normal", "Resumed", "Job resumed"))
                status["startTime"] = now_rfc3339()  # the deadline counts time spent running, not suspended
        # Count what finished (upstream: the pods whose tracking finalizer goes in this sync).
        counted: set[str] = set()
        for p in pods:
            if p.uid in t.done or not (finish is not None or p.phase == "Succeeded" or failed_pod(p)
                                       or meta.get("deletionTimestamp")):
                continue
            counted.add(p.uid)
            if p.phase == "Succeeded":
                if not indexed:
                    status["succeeded"] = int(status.get("succeeded") or 0) + 1
            elif (failed_pod(p) or (finish is not None and finish.type != "SuccessCriteriaMet")) and valid(p):
                status["failed"] = int(status.get("failed") or 0) + 1
        if indexed:
            status["succeeded"] = succeeded  # the completed indexes, each counted once
        if finish is not None and finish.type == "FailureTarget":
            _ensure(conds, "FailureTarget", "True", finish.reason, finish.message)
            finish = _Finish("Failed", finish.reason, finish.message)
        elif finish is not None and finish.type == "SuccessCriteriaMet":
            _ensure(conds, "SuccessCriteriaMet", "True", finish.reason, finish.message)
            finish = _Finish("Complete", finish.reason, finish.message)
        finished = finish is not None and terminating == 0
        if finish is not None and finished:
            _ensure(conds, finish.type, "True", finish.reason, finish.message)
            if finish.type == "Complete":
                status["completionTime"] = next(c["lastTransitionTime"] for c in conds if c.get("type") == "Complete")
                if completions is not None and int(status.get("succeeded") or 0) > int(completions):
                    events.append(("Warning", "TooManySucceededPods",
                                   "Too many succeeded pods running after completion count reached"))
                events.append(("Normal", "Completed", "Job completed"))
            else:
                events.append(("Warning", finish.reason, finish.message))
        _set_counts(status, active=active, ready=ready, terminating=terminating,
                    completed=format_intervals(done_idx) if indexed else None)
        if status != before:
            job = self.client.update_status(JOBS, job)
        t.done |= counted
        t.failures, t.last_failure = failures, last_failure
        for type_, reason, message in events:
            self.event(job, type=type_, reason=reason, message=message)
        if finished:
            expire = self._expire(job)
            if expire is not None:
                requeue.append(expire)
        return max(min(requeue), 0.0) if requeue else None

    async def _manage(self, job: dict[str, Any], t: _Tracking, active_pods: list[JobPod], pods: list[JobPod],
                      done_idx: Intervals, *, succeeded: int, terminating: int, ready: int,
                      backoff: tuple[int, float | None], now: float, requeue: list[float],
                      events: list[tuple[str, str, str]], indexed: bool) -> tuple[int, int, int]:
        """``manageJob``: delete the pods too many, or create the pods missing; (active, terminating, ready)."""
        spec = job["spec"]
        active = len(active_pods)
        completions = spec.get("completions")
        if spec.get("suspend"):
            gone, gone_ready = self._delete(job, active_pods, t, release=True, events=events)
            return active - gone, terminating + gone, ready - gone_ready
        parallelism = int(spec.get("parallelism", 1))
        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(min(int(completions) - succeeded, parallelism), 0)
        extra = pods_for_removal(active_pods, at_least=max(active - want, 0),
                                 completions=int(completions or 0) if indexed else None)
        if extra:
            gone, gone_ready = self._delete(job, extra[:_MAX_PER_SYNC], t, release=True, events=events)
            return active - gone, terminating + gone, ready - gone_ready
        missing = want - (terminating if spec.get("podReplacementPolicy") == "Failed" else 0) - active
        if missing <= 0:
            return active, terminating, ready
        wait = self._remaining_backoff(*backoff, now=now)
        if wait > 0:
            requeue.append(max(wait, self.batch))
            return active, terminating, ready
        missing = min(missing, _MAX_PER_SYNC)
        indexes: list[int] = []
        if indexed:
            taken = merge_intervals(done_idx, add=[(p.index, p.index) for p in active_pods if p.index >= 0])
            if spec.get("podReplacementPolicy") == "Failed":
                taken = merge_intervals(taken, add=[(p.index, p.index) for p in pods
                                                    if p.terminating and p.phase not in _TERMINAL and p.index >= 0])
            indexes = first_pending_indexes(count=missing, completions=int(completions or 0), taken=taken)
            missing = len(indexes)
        return active + await self._create(job, missing, indexes, events), terminating, ready

    async def _create(self, job: dict[str, Any], count: int, indexes: list[int],
                      events: list[tuple[str, str, str]]) -> int:
        """Create ``count`` pods in slow-start batches (1, 2, 4, ...), stopping after a batch with an error."""
        created, batch = 0, min(count, 1)
        while count > 0:
            failed = False
            for _ in range(batch):
                index = indexes.pop(0) if indexes else None
                try:
                    pod = await self.client.create_admitted(PODS, job_pod(job, index=index))
                except errors.ApiError as e:
                    failed = True
                    if not (e.code == 403 and "being terminated" in e.message):  # a namespace going away: stay quiet
                        events.append(("Warning", "FailedCreate", f"Error creating: {e.message}"))
                    continue
                created += 1
                self.event(job, reason="SuccessfulCreate", message=f"Created pod: {pod['metadata']['name']}")
            count -= batch
            if failed:
                break
            batch = min(2 * batch, count)
            await asyncio.sleep(0)  # let the API server answer between batches
        return created

    def _delete(self, job: dict[str, Any], pods: list[JobPod], t: _Tracking, *, release: bool,
                events: list[tuple[str, str, str]]) -> tuple[int, int]:
        """Delete pods (gracefully, as a DELETE would); ``release`` means they are never counted."""
        gone = gone_ready = 0
        for p in pods:
            try:
                self.client.delete(PODS, job["metadata"]["namespace"], p.name, uid=p.uid)
            except errors.ApiError as e:
                events.append(("Warning", "FailedDelete", f"Error deleting: {e.message}"))
                continue
            if release:
                t.done.add(p.uid)
            gone += 1
            gone_ready += p.ready
            self.event(job, reason="SuccessfulDelete", message=f"Deleted pod: {p.name}")
        return gone, gone_ready

    @staticmethod
    def _next_backoff(t: _Tracking, ok: list[JobPod], bad: list[JobPod]) -> tuple[int, float | None]:
        """``newBackoffRecord``: failures since the last success and the time of the latest one."""
        if not ok:
            if not bad:
                return t.failures, t.last_failure
            return t.failures + len(bad), max(p.finished for p in bad)
        last_ok = max(p.finished for p in ok)
        after = sorted(p.finished for p in bad if p.finished > last_ok)
        return len(after), (after[-1] if after else None)

    def _remaining_backoff(self, failures: int, last: float | None, *, now: float) -> float:
        if failures == 0 or last is None:
            return 0.0
        delay = min(self.backoff * 2.0 ** min(failures - 1, 30), self.max_backoff)
        return max(delay - (now - last), 0.0)

    def _expire(self, job: dict[str, Any]) -> float | None:
        """``ttlSecondsAfterFinished``: seconds until the finished Job goes, deleting it when due."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        meta = job["metadata"]
        if ttl is None or meta.get("deletionTimestamp"):
            return None
        finished = [parse_time(c.get("lastTransitionTime")) for c in (job.get("status") or {}).get("conditions") or []
                    if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"]
        at = (finished[0] or 0.0) + int(ttl) if finished else None
        if at is None:
            return None
        if time.time() >= at:
            self.client.delete(JOBS, meta["namespace"], meta["name"], uid=meta["uid"], propagation="Foreground")
            return None
        return at - time.time()


def _cond(conds: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    """The condition of ``type_`` when it is True."""
    return next((c for c in conds if c.get("type") == type_ and c.get("status") == "True"), None)


def _ensure(conds: list[dict[str, Any]], type_: str, status: str, reason: str, message: str) -> bool:
    """``ensureJobConditionStatus``: set a condition; a False one is never added, only updated."""
    now = now_rfc3339()
    new: dict[str, Any] = {"type": type_, "status": status, "lastProbeTime": now, "lastTransitionTime": now}
    if reason:
        new["reason"] = reason
    if message:
        new["message"] = message
    for i, c in enumerate(conds):
        if c.get("type") == type_:
            if (c.get("status"), c.get("reason", ""), c.get("message", "")) == (status, reason, message):
                return False
            conds[i] = new
            return True
    if status == "False":
        return False
    conds.append(new)
    return True


def _past_restart_limit(spec: Mapping[str, Any], pods: list[JobPod], limit: int) -> bool:
    """``pastBackoffLimitOnFailure``: container restarts of running ``OnFailure`` pods count as failures."""
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(p.restarts for p in pods if p.phase in ("Running", "Pending"))
    return restarts > 0 if limit == 0 else restarts >= limit


def _set_counts(status: dict[str, Any], *, active: int, ready: int, terminating: int, completed: str | None) -> None:
    """The counters in batch/v1's field order, zero ones left out where upstream's ``omitempty`` drops them."""
    rest = {k: v for k, v in status.items() if k not in ("conditions", "startTime", "completionTime", "active",
                                                           "succeeded", "failed", "terminating", "completedIndexes",
                                                           "uncountedTerminatedPods", "ready")}
    ordered: dict[str, Any] = {}
    for k in ("conditions", "startTime", "completionTime"):
        if status.get(k):
            ordered[k] = status[k]
    for k, v in (("active", active), ("succeeded", status.get("succeeded")), ("failed", status.get("failed"))):
        if v:
            ordered[k] = int(v)
    ordered["terminating"] = terminating
    if completed:
        ordered["completedIndexes"] = completed
    ordered["uncountedTerminatedPods"] = {}
    ordered["ready"] = ready
    status.clear()
    status.update(ordered, **rest)


_: type[Controller] = JobController
