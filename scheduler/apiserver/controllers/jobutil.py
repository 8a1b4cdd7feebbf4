"""What the Job controller reads of its pods, and how an Indexed Job's completion indexes are kept.

The Job controller (``job.py``) decides what to do from two things it derives
rather than stores, and both are kept here so that the controller reads as
the sync it is:

* **pod summaries**: a Job is synced after every batch of writes to its pods
  and each sync looks at every pod of the Job, so ``JobPods`` parses each pod
  version once into a ``JobPod`` (phase, readiness, completion index,
  restarts, creation and finish times) and keeps it until the pod changes or
  goes; ``pods_for_removal`` says which active pods go first when there are
  too many (upstream's ``controller.ActivePods`` order, with an Indexed Job's
  duplicated and out-of-range indexes first);
* **completion indexes** (``completionMode: Indexed``): a pod carries its index
  in the ``batch.kubernetes.io/job-completion-index`` annotation and label,
  its hostname and ``JOB_COMPLETION_INDEX`` (``job_pod``), and the Job's
  ``status.completedIndexes`` is a list of ordered intervals written as
  upstream writes them (``"1,3-5,7"``, two adjacent indexes as ``"a,b"``):
  ``parse_intervals``, ``merge_intervals``, ``format_intervals``, and
  ``first_pending_indexes`` for the lowest indexes still missing a pod.

These follow upstream's ``pkg/controller/job`` (``indexed_job_utils.go`` and
the pod helpers of ``job_controller.go``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..store import Entry, Store
from .base import ClusterView
from .pods import parse_time, pod_from_template

__all__ = [
    "COMPLETION_INDEX",
    "Intervals",
    "JobPod",
    "JobPods",
    "summarize",
    "pods_for_removal",
    "job_pod",
    "parse_intervals",
    "merge_intervals",
    "format_intervals",
    "first_pending_indexes",
]

PODS: Final = "pods"
COMPLETION_INDEX: Final = "batch.kubernetes.io/job-completion-index"
"""Annotation (and label) with an Indexed Job's pod's completion index."""
_MAX_GENERATED_NAME: Final = 58  # 63-character names minus the 5 random characters generateName adds
_PHASE_RANK: Final = {"Pending": 0, "Unknown": 1, "Running": 2}  # controller.ActivePods: earlier stages go first

Intervals = list[tuple[int, int]]
"""Ordered, disjoint, non-adjacent ``(first, last)`` index ranges, both ends included."""


# ---- pod summaries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPod:
    """What a Job sync reads of one pod version (parsed once per version)."""

    name: str
    uid: str
    rv: int
    phase: str
    node: str
    terminating: bool
    ready: bool
    index: int  # -1 when the pod has no valid completion index
    restarts: int
    created: float
    finished: float  # upstream's getFinishedTime, for the pod-failure backoff


def summarize(e: Entry) -> JobPod:
    """The ``JobPod`` of one stored pod version."""
    pod = e.obj()
    meta, status = pod["metadata"], pod.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready_cond = conds.get("Ready") or {}
    try:
        index = int((meta.get("annotations") or {}).get(COMPLETION_INDEX, "-1"))
    except ValueError:
        index = -1
    statuses = status.get("containerStatuses") or []
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses + (status.get("initContainerStatuses") or []))
    ends = [parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt")) for c in statuses]
    created = parse_time(meta.get("creationTimestamp")) or 0.0
    if statuses and all(t is not None for t in ends):
        finished = max(t for t in ends if t is not None)
    elif ready_cond.get("status") == "False" and parse_time(ready_cond.get("lastTransitionTime")) is not None:
        finished = parse_time(ready_cond.get("lastTransitionTime")) or 0.0
    elif meta.get("deletionTimestamp"):
        finished = (parse_time(meta["deletionTimestamp"]) or 0.0) - int(meta.get("deletionGracePeriodSeconds") or 0)
    else:
        finished = created
    return JobPod(e.name, e.uid, e.rv, str(status.get("phase") or ""), str((pod.get("spec") or {}).get("nodeName") or ""),
                  bool(meta.get("deletionTimestamp")), ready_cond.get("status") == "True", max(index, -1), restarts,
                  created, finished)


class JobPods:
    """The summaries of the pods Jobs control, by pod uid, each pod version parsed once."""

    def __init__(self, *, store: Store, view: ClusterView) -> None:
        self.store = store
        self.view = view
        self._pod_type = store.type(PODS)
        self._infos: dict[str, JobPod] = {}

    def controlled_by(self, uid: str) -> list[JobPod]:
        """The pods whose controller reference names the Job with ``uid``."""
        out = []
        for ref in self.view.owned(uid, PODS):
            e = self.store.find(self._pod_type, ref.namespace, ref.name)
            if e is None or e.controller is None or e.controller[2] != uid:
                continue
            info = self._infos.get(e.uid)
            if info is None or info.rv != e.rv:
                info = self._infos[e.uid] = summarize(e)
            out.append(info)
        return out

    def forget(self, uid: str) -> None:
        """Drop the summary of the pod with ``uid`` (it was deleted)."""
        self._infos.pop(uid, None)


def _removal_order(p: JobPod) -> tuple[bool, int, bool, int, float]:
    """controller.ActivePods: unassigned, then earlier phase, unready, more restarts, newer pods go first."""
    return bool(p.node), _PHASE_RANK.get(p.phase, 1), p.ready, -p.restarts, -p.created


def pods_for_removal(active: list[JobPod], *, at_least: int, completions: int | None) -> list[JobPod]:
    """``activePodsForRemoval``: for Indexed Jobs (``completions`` given) duplicated, unindexed and
    out-of-range pods first, then ``at_least`` pods in all in ``controller.ActivePods`` order."""
    rm: list[JobPod] = []
    left = active
    if completions is not None:
        left = []
        by_index: dict[int, list[JobPod]] = {}
        for p in active:
            if p.index < 0 or p.index >= completions:
                rm.append(p)
            else:
                by_index.setdefault(p.index, []).append(p)
        for same in by_index.values():
            same.sort(key=_removal_order)
            rm.extend(same[:-1])
            left.append(same[-1])
    if len(rm) < at_least:
        rm.extend(sorted(left, key=_removal_order)[:at_least - len(rm)])
    return rm


# ---- completion indexes ------------------------------------------------------------------------------


def job_pod(job: Mapping[str, Any], *, index: int | None) -> dict[str, Any]:
    """A pod of the Job from its template; an Indexed Job's pod carries its index (and a hostname from it)."""
    pod = pod_from_template((job.get("spec") or {}).get("template") or {}, owner=job)
    if index is None:
        return pod
    name, meta, spec = job["metadata"]["name"], pod["metadata"], pod["spec"]
    meta.setdefault("annotations", {})[COMPLETION_INDEX] = meta["labels"][COMPLETION_INDEX] = str(index)
    suffix = f"-{index}-"
    meta["generateName"] = name[:_MAX_GENERATED_NAME - len(suffix)] + suffix
    spec["hostname"] = f"{name}-{index}"
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        env = c.setdefault("env", [])
        if not any(v.get("name") == "JOB_COMPLETION_INDEX" for v in env):
            env.append({"name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}})
    return pod


def parse_intervals(text: str, *, completions: int) -> Intervals:
    """``parseIndexesFromString``: ``"1,3-5,7"`` as intervals, cut at ``completions``; corrupt parts skipped."""
    out: Intervals = []
    for part in (text or "").split(","):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            continue  # upstream logs a corrupted interval and ignores it
        if first >= completions:
            break
        out = merge_intervals(out, add=[(first, min(last, completions - 1))])
    return out


def merge_intervals(intervals: Intervals, *, add: Iterable[tuple[int, int]]) -> Intervals:
    """``intervals`` with the ranges of ``add`` (in any order) merged in; touching ranges join."""
    out: Intervals = []
    for first, last in sorted([*intervals, *add]):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def format_intervals(intervals: Intervals) -> str:
    """Upstream's ``orderedIntervals.String``: two adjacent indexes as ``a,b``, longer runs as ``a-b``."""
    return ",".join(str(f) if f == l else f"{f},{l}" if l == f + 1 else f"{f}-{l}" for f, l in intervals)


def first_pending_indexes(*, count: int, completions: int, taken: Intervals) -> list[int]:
    """``firstPendingIndexes``: up to ``count`` of the lowest indexes below ``completions`` not in ``taken``."""
    out: list[int] = []
    candidate = 0
    for first, last in taken + [(completions, completions)]:
        while candidate < min(first, completions) and len(out) < count:
            out.append(candidate)
            candidate += 1
        candidate = max(candidate, last + 1)
        if len(out) >= count or candidate >= completions:
            break
    return out
