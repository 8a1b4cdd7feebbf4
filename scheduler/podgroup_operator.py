"""The PodGroup operator: every PodGroup's status, kept as scheduler-plugins' controller keeps it.

A PodGroup (``scheduling.x-k8s.io/v1alpha1``) names a gang: the pods labelled
``scheduling.x-k8s.io/pod-group: <name>`` in its namespace, ``spec.minMember``
of which must be placed together. Users follow a gang through the group's
status, which scheduler-plugins' PodGroup controller
(pkg/controllers/podgroup_controller.go) keeps; vecsched runs the same state
machine in the scheduler, fed by its informers, so no second controller is
needed. "" -> Pending; Pending -> Scheduling once the group has minMember pods
(``occupiedBy``: the first pod's owners as "ns/owner", sorted, joined by ",");
from any other phase the pods' phases are counted and the group is Pending
with fewer than minMember pods, Scheduling while running + succeeded <
minMember, Running from then on, Failed when failed != 0 and failed + running +
succeeded >= minMember, Finished when succeeded >= minMember. Finished and
Failed are final. As upstream, a Pending or Scheduling group with no running
pod whose scheduleStartTime is over 48 hours after its creation is left alone
("pod may have been GCed") with a ``Timeout`` Event.

On purpose unlike upstream: ``status.scheduleStartTime`` (RFC 3339, seconds) is
set when the group first enters Scheduling (upstream never sets it); members
are the labelled pods of the group's own namespace (upstream lists the label
cluster-wide, so same-named groups in two namespaces count each other's pods);
and the PodGroup gets Events: ``Scheduled`` once, when the members bound to a
node (``spec.nodeName`` set, not Failed) first reach minMember, saying
``Scheduled <bound> of <members> members (minMember <n>)``, and
``FailedScheduling`` when the scheduling cycle calls ``group_failed``,
rate-limited per group as pods' are.

Only the leader writes, only a changed status (a merge patch of ``status``,
the group's UID as precondition), and every group again after leading anew. A
PodGroup that cannot be read (``spec`` not an object, ``spec.minMember`` not an
integer) is logged once and skipped; a transient API failure is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from scheduler.kube.client import KubeClient
from scheduler.kube.errors import ConflictError, KubeError, NotFoundError, retryable
from scheduler.kube.events import EventLimiter, EventRecorder
from scheduler.kube.informer import PODGROUPS, Backoff, Delta  # PODGROUPS: re-exported, the operator's collection
from scheduler.metrics import Metrics
from scoring.objects import ObjectError
from scoring.plugins.podgroups import POD_GROUP_LABEL, parse_time, podgroup_from_json

__all__ = ["PODGROUPS", "API_VERSION", "PHASES", "Member", "normal_status", "podgroup_status", "status_patch",
           "PodGroupOperator"]

log = logging.getLogger("vecsched.podgroups")

API_VERSION: Final = "scheduling.x-k8s.io/v1alpha1"
PHASES: Final = ("Pending", "Scheduling", "Running", "Finished", "Failed", "Unknown")  # upstream never sets Unknown
_FINAL: Final = frozenset({"Finished", "Failed"})
_GC_GUARD: Final = 48 * 3600.0  # upstream: "schedule time longer than 48 hours"
_COUNTS: Final = ("running", "succeeded", "failed")
_FIELDS: Final = ("phase", "occupiedBy", *_COUNTS, "scheduleStartTime")
_LEADER_POLL: Final = 0.5  # seconds between looks at leadership: a quarter of the election's 2 s retry period


@dataclass(frozen=True, slots=True)
class Member:
    """What the operator keeps of a member pod."""

    namespace: str
    name: str
    phase: str = "Pending"
    node_name: str = ""
    owners: tuple[str, ...] = ()  # the names in metadata.ownerReferences

    @property
    def bound(self) -> bool:
        """Placed on a node and not failed there."""
        return bool(self.node_name) and self.phase != "Failed"

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> Member:
        """Read leniently: a field of the wrong type reads as absent."""
        meta, spec, status = (_section(pod, k) for k in ("metadata", "spec", "status"))
        refs = meta.get("ownerReferences")
        owners = tuple(str(r["name"]) for r in refs or () if isinstance(r, Mapping) and r.get("name")) \
            if isinstance(refs, list) else ()
        phase, node = status.get("phase"), spec.get("nodeName")
        return cls(str(meta.get("namespace") or "default"), str(meta.get("name") or ""),
                   phase if isinstance(phase, str) and phase else "Pending", node if isinstance(node, str) else "",
                   owners)


def normal_status(raw: Any) -> dict[str, Any]:
    """The status fields the operator owns, as Go writes them (``omitempty``: no empty string, no
    zero count); a field of the wrong type reads as absent."""
    status = raw if isinstance(raw, Mapping) else {}
    out = {k: status[k] for k in ("phase", "occupiedBy", "scheduleStartTime")
           if isinstance(status.get(k), str) and status[k]}
    out.update({k: status[k] for k in _COUNTS
                if isinstance(status.get(k), int) and not isinstance(status[k], bool) and status[k]})
    return out


def podgroup_status(*, min_member: int, status: Any, members: Sequence[Member], created: float | None,
                    now: float) -> dict[str, Any] | None:
    """Upstream's Reconcile of one group: its next status (``normal_status`` form) from its current
    ``status`` and ``members`` (in name order: the first gives ``occupiedBy``); None when upstream's
    48-hour guard holds the group (nothing changes, a Timeout Event is due). ``created`` is the
    group's creationTimestamp and ``now`` the time written as ``scheduleStartTime``, epoch seconds."""
    old = normal_status(status)
    phase = old.get("phase", "")
    if phase in _FINAL:
        return old
    start = parse_time(old.get("scheduleStartTime"))
    if (phase in ("Scheduling", "Pending") and not old.get("running") and start is not None and created is not None
            and start - created > _GC_GUARD):
        return None
    new = dict(old)
    if phase == "":
        new["phase"] = "Pending"
    elif phase == "Pending":
        if len(members) >= min_member:
            new["phase"] = "Scheduling"
            if members and members[0].owners:
                new["occupiedBy"] = ",".join(sorted(f"{members[0].namespace}/{o}" for o in members[0].owners))
    else:
        running = sum(m.phase == "Running" for m in members)
        succeeded = sum(m.phase == "Succeeded" for m in members)
        failed = sum(m.phase == "Failed" for m in members)
        for k, n in zip(_COUNTS, (running, succeeded, failed)):
            new[k] = n
        if len(members) < min_member:
            new["phase"] = "Pending"
        else:
            new["phase"] = "Scheduling" if running + succeeded < min_member else "Running"
            if failed and failed + running + succeeded >= min_member:
                new["phase"] = "Failed"
            if succeeded >= min_member:
                new["phase"] = "Finished"
    if new["phase"] == "Scheduling" and "scheduleStartTime" not in new:
        new["scheduleStartTime"] = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return normal_status(new)


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch of ``status`` from ``old`` to ``new`` (both ``normal_status``): the changed
    fields, None for the removed ones."""
    return {k: new.get(k) for k in _FIELDS if old.get(k) != new.get(k)}


class PodGroupOperator:
    """Keeps PodGroups' status: fed by ``on_podgroup`` and ``on_pod``, writing from ``run()``."""

    def __init__(self, *, client: KubeClient, recorder: EventRecorder, metrics: Metrics,
                 clock: Callable[[], float] = time.time, limiter: EventLimiter | None = None,
                 backoff: Backoff = Backoff()) -> None:
        self.client = client
        self.recorder = recorder
        self.metrics = metrics
        self.clock = clock  # wall clock, epoch seconds: scheduleStartTime and the schedule duration
        self.limiter = limiter if limiter is not None else EventLimiter()  # FailedScheduling Events, per group
        self.backoff = backoff  # before writing a status again after a transient failure
        self.patches = 0  # status writes that succeeded
        self._groups: dict[str, Mapping[str, Any]] = {}  # "ns/name" -> PodGroup as last seen or written
        self._members: dict[str, dict[str, Member]] = {}  # group key -> pod key -> member
        self._group_of: dict[str, str] = {}  # pod key -> group key
        self._dirty: set[str] = set()
        self._retry: dict[str, tuple[float, Iterator[float]]] = {}  # group key -> (loop time due, next delays)
        self._reported: dict[str, str] = {}  # group key -> the problem already logged
        self._below: set[str] = set()  # UIDs of groups seen with fewer than minMember members bound
        self._announced: set[str] = set()  # UIDs past that point (Scheduled sent, or bound when first seen)
        self._timed_out: set[str] = set()  # UIDs whose Timeout Event was sent
        self._synced = {"pods": False, "podgroups": False}
        self._wake = asyncio.Event()
        self._gauge_stale = True

    # ---- informer handlers -----------------------------------------------------------------

    def on_pod(self, delta: Delta) -> None:
        """Any pod (the informer lists all); kept only when labelled with a group."""
        if delta.type == "SYNCED":
            self._synced["pods"] = True
            self._wake.set()
            return
        meta = _section(delta.obj, "metadata")
        name = _section(meta, "labels").get(POD_GROUP_LABEL) if delta.type != "DELETED" else None
        named = isinstance(name, str) and name
        if not named and not self._group_of:
            return  # not a member, and no pod is: nothing to forget (the common case, on every update)
        ns = str(meta.get("namespace") or "default")
        key = f"{ns}/{meta.get('name') or ''}"
        group = f"{ns}/{name}" if named else None
        old = self._group_of.get(key)
        if old is not None and old != group:  # deleted, or moved to another group
            members = self._members.get(old, {})
            members.pop(key, None)
            if not members:
                self._members.pop(old, None)
            del self._group_of[key]
            self._mark(old)
        if group is not None:
            member = Member.of(delta.obj)
            members = self._members.setdefault(group, {})
            if members.get(key) != member:  # a kubelet update that changes nothing counted is skipped
                members[key] = member
                self._group_of[key] = group
                self._mark(group)

    def on_podgroup(self, delta: Delta) -> None:
        """PodGroups, from an informer on ``PODGROUPS``."""
        if delta.type == "SYNCED":
            self._synced["podgroups"] = True
            self._wake.set()
            return
        meta = _section(delta.obj, "metadata")
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"
        old = self._groups.get(key)
        if old is not None and delta.type != "DELETED" and _older(delta.obj, old):
            return  # the watch is behind the answer to our own write
        if old is not None and (delta.type == "DELETED" or _uid(old) != _uid(delta.obj)):
            self._forget(key, _uid(old))  # deleted (and maybe created again)
        if delta.type == "DELETED":
            self._groups.pop(key, None)
            return
        self._groups[key] = delta.obj
        self._gauge_stale = True
        self._mark(key)

    def group_failed(self, *, namespace: str, name: str, message: str) -> None:
        """The scheduling cycle could not place the group: a Warning ``FailedScheduling`` Event on
        the PodGroup, at most one per ``limiter.min_interval`` and an unchanged message only after
        ``limiter.repeat_interval``. A group the operator does not know is not reported."""
        key = f"{namespace}/{name}"
        pg = self._groups.get(key)
        if pg is None:
            log.debug("no PodGroup %s to report FailedScheduling on", key)
            return
        why = self.limiter.allow(key, message)
        if why is not None:
            self.metrics.events_dropped.labels(why).inc()
            return
        self._event(key, pg, "Warning", "FailedScheduling", "Scheduling", message)

    # ---- the loop ------------------------------------------------------------------------------

    async def run(self, *, stop: asyncio.Event, is_leader: Callable[[], bool]) -> None:
        """Reconcile changed groups until ``stop`` is set: only while ``is_leader()`` and once both
        informers have synced; every group again when leadership is regained."""
        loop = asyncio.get_running_loop()
        leading = False
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: self._wake.set())
        try:
            while not stop.is_set():
                was_leading, leading = leading, is_leader()
                if leading and not was_leading:
                    self._dirty.update(self._groups)
                    self._below.clear()  # bindings made while another replica led are not ours to announce
                self._wake.clear()  # before taking the dirty groups: a change from now on wakes the next pass
                if leading and all(self._synced.values()):
                    self._dirty.update(k for k, (due, _) in self._retry.items() if due <= loop.time())
                    while self._dirty and not stop.is_set() and is_leader():
                        key = self._dirty.pop()
                        try:
                            await self._reconcile(key)
                        except Exception:  # a bug must not end the operator: the next change tries again
                            log.exception("PodGroup %s: reconcile failed", key)
                        await asyncio.sleep(0)  # thousands of unchanged groups must not hold up scheduling
                if self._gauge_stale:
                    self._publish()
                dues = [due - loop.time() for k, (due, _) in self._retry.items() if leading and k not in self._dirty]
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.0, min([_LEADER_POLL, *dues])))
                except asyncio.TimeoutError:
                    pass
        finally:
            stopping.cancel()

    async def _reconcile(self, key: str) -> None:
        pg = self._groups.get(key)
        if pg is None:
            return
        try:
            spec = podgroup_from_json(pg)  # the reader Coscheduling uses
        except ObjectError as e:
            self._report(key, f"cannot read {e}", malformed=True)
            return
        members = sorted(self._members.get(key, {}).values(), key=lambda m: m.name)
        created, now = parse_time(_section(pg, "metadata").get("creationTimestamp")), self.clock()
        self._watch_binding(key, pg, spec.min_member, members, now=now, created=created)
        new = podgroup_status(min_member=spec.min_member, status=pg.get("status"), members=members,
                              created=created, now=now)
        if new is None and spec.uid not in self._timed_out:
            self._timed_out.add(spec.uid)
            self._event(key, pg, "Warning", "Timeout", "Scheduling", "schedule time longer than 48 hours")
        patch = status_patch(normal_status(pg.get("status")), new) if new is not None else {}
        if not patch:
            self._settled(key)
            return
        try:
            answer = await self.client.patch(
                f"/apis/{API_VERSION}/namespaces/{spec.namespace}/podgroups/{spec.name}/status",
                body={"metadata": {"uid": spec.uid}, "status": patch})
        except (NotFoundError, ConflictError):
            self._settled(key)  # deleted, or deleted and created again: the watch brings the news
            return
        except KubeError as e:
            if not retryable(e):
                self._report(key, f"PodGroup {key}: cannot write its status: {e}")
                return
            _, delays = self._retry.get(key) or (0.0, self.backoff.delays())
            wait = max(getattr(e, "retry_after", 0.0), next(delays))
            self._retry[key] = (asyncio.get_running_loop().time() + wait, delays)
            log.info("PodGroup %s: writing its status failed (%s); retrying in %.2fs", key, e, wait)
            return
        self._settled(key)
        self.patches += 1
        if isinstance(answer, Mapping) and _uid(answer) == spec.uid and key in self._groups:
            self._groups[key] = answer
            self._gauge_stale = True

    def _watch_binding(self, key: str, pg: Mapping[str, Any], min_member: int, members: Sequence[Member], *,
                       now: float, created: float | None) -> None:
        """The Scheduled Event and the schedule duration, when the bound members first reach minMember."""
        uid = _uid(pg)
        if uid in self._announced:
            return
        bound = sum(m.bound for m in members)
        if bound < min_member:
            self._below.add(uid)
            return
        self._announced.add(uid)
        if uid not in self._below:
            return  # already bound when first seen: the moment is not known
        self._below.discard(uid)
        self.limiter.forget(key)
        if created is not None:
            self.metrics.podgroup_schedule_duration.observe(max(0.0, now - created))
        self._event(key, pg, "Normal", "Scheduled", "Binding",
                    f"Scheduled {bound} of {len(members)} members (minMember {min_member})")

    # ---- bookkeeping -------------------------------------------------------------------------

    def _mark(self, key: str) -> None:
        self._dirty.add(key)
        self._wake.set()

    def _settled(self, key: str) -> None:
        self._retry.pop(key, None)
        self._reported.pop(key, None)

    def _report(self, key: str, problem: str, *, malformed: bool = False) -> None:
        """Log ``problem`` once per group, until it changes or goes away."""
        self._retry.pop(key, None)
        if self._reported.get(key) != problem:
            self._reported[key] = problem
            log.warning("%s", problem)
            if malformed:
                self.metrics.malformed_objects.labels("podgroup").inc()

    def _forget(self, key: str, uid: str) -> None:
        self._dirty.discard(key)
        self._settled(key)
        self.limiter.forget(key)
        for seen in (self._below, self._announced, self._timed_out):
            seen.discard(uid)
        self._gauge_stale = True

    def _event(self, key: str, pg: Mapping[str, Any], type_: str, reason: str, action: str, message: str) -> None:
        ns, name = key.split("/", 1)
        self.recorder.object_event(api_version=API_VERSION, kind="PodGroup", namespace=ns, name=name, uid=_uid(pg),
                                   type_=type_, reason=reason, action=action, message=message)

    def _publish(self) -> None:
        """``vecsched_podgroups{phase}``: every phase, zeros included."""
        counts = dict.fromkeys(PHASES, 0)
        for phase in (normal_status(pg.get("status")).get("phase") for pg in self._groups.values()):
            if phase in counts:
                counts[phase] += 1
        for phase, n in counts.items():
            self.metrics.podgroups.labels(phase).set(n)
        self._gauge_stale = False


def _section(obj: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for k in path:
        v = obj.get(k)
        obj = v if isinstance(v, Mapping) else {}
    return obj


def _uid(obj: Mapping[str, Any]) -> str:
    return str(_section(obj, "metadata").get("uid") or "")


def _older(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """``new`` is an earlier version of ``old`` (resourceVersions are opaque, but etcd's are increasing integers)."""
    a, b = (str(_section(o, "metadata").get("resourceVersion") or "") for o in (new, old))
    return _uid(new) == _uid(old) and a.isdigit() and b.isdigit() and int(a) < int(b)
