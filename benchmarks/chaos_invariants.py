"""The chaos soak's invariants: what must hold however the control plane misbehaves.

``benchmarks.chaos`` lists pods, nodes, events and PodGroups from the API
server every second or so and feeds each snapshot to ``Invariants``, which
keeps the history it needs and records a ``Violation``, with its evidence,
whenever a snapshot breaks a rule:

- **bound once** -- a pod's ``spec.nodeName`` never changes once set, and no
  pod gets a second ``Scheduled`` event (a second Binding);
- **allocatable** -- on every node, the requests of its non-terminal pods
  (read by the scheduler's own ``scoring.objects.pod_from_json``) and their
  number stay within the node's allocatable;
- **no idle fit** -- a pending pod that some schedulable node has room for
  (after the room held for nominated pods of at least its priority, as
  kube-scheduler counts it) does not stay so for longer than
  ``pending_bound`` seconds (gated pods and gang members are left to the gang rule);
- **whole gangs** -- ``gang_settle`` seconds after a PodGroup's first member
  was bound, 0 or at least ``minMember`` of its members have been bound;
- **preemption has a preemptor** -- every pod deleted by preemption (a
  ``Preempted`` event, or the ``DisruptionTarget`` condition with reason
  ``PreemptionByScheduler``) was deleted for a pod of higher priority that
  was seen nominated to, or bound on, the victim's node -- or that was
  deleted, never bound, after the preemption (on the store's resourceVersion
  clock) and within the grace: the scheduler writes the nomination as it
  starts evicting (as kube-scheduler does), and a preemptor deleted meanwhile
  (a Deployment scaled down) never shows it (counted, not a violation). A
  victim preempted for a pod already deleted is a violation.

Between snapshots, the soak also feeds it every pod version a watch delivers
(``record``), so that states shorter than a snapshot interval -- a preemptor
nominated and bound within a second -- are part of the history too. The class
is pure (no I/O, times are passed in) so that tests can feed it synthetic
histories with a known violation each.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.objects import ObjectError, PodInfo, node_from_json, pod_from_json
from scoring.plugins.podgroups import POD_GROUP_LABEL

__all__ = ["Violation", "Invariants", "PENDING_BOUND_SECONDS", "GANG_SETTLE_SECONDS", "PREEMPTION_GRACE_SECONDS",
           "SCHEDULER_NAME"]

SCHEDULER_NAME: Final = "vecsched"

PENDING_BOUND_SECONDS: Final = 30.0
"""How long a pending pod may have room somewhere before it counts as left behind: the scheduler's
maximum pod backoff (10 s, upstream's podMaxBackoffDuration) + a leader failover (the soak's 4 s
lease, then a relist of a few seconds), doubled for a shared 2-core machine. Far below upstream's
5-minute flush of unschedulable pods, so a lost requeue event shows up."""

GANG_SETTLE_SECONDS: Final = 30.0
"""How long after a gang's first member was bound the rest must be: the members of an allowed
gang are bound together within a second; a leader killed between two of their Bindings leaves the
rest to its successor (lease 4 s + relist + the gang's own backoff, 10 s), doubled for the VM."""

PREEMPTION_GRACE_SECONDS: Final = 10.0
"""How long after a victim's preemption its preemptor must have been seen nominated or bound: the
scheduler nominates before it deletes a victim, so the preemptor is nominated within a sampling
interval or two; 10 s leaves room for an API server restart in between."""

_PREEMPTED_BY: Final = re.compile(r"Preempted by pod (\S+) on node (\S+)")
_TERMINAL: Final = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which (``kind``), when (seconds into the run), and the evidence."""

    kind: str
    at: float
    evidence: str

    def line(self) -> str:
        return f"[{self.at:7.1f}s] {self.kind}: {self.evidence}"


@dataclass
class _Pod:
    key: str
    priority: int
    group: str
    node: str = ""
    bound_at: float | None = None
    nominated: set[str] = field(default_factory=set)
    deleted_at: float | None = None
    deleted_rv: int = 0
    """The resourceVersion of its deletion, when a watch delivered it (0: unknown)."""
    rv: int = -1
    """The newest resourceVersion recorded: a list and a watch that lags behind it may deliver the same
    versions in another order, and an older one says nothing new."""


@dataclass
class _Gang:
    key: str
    min_member: int
    first_seen: float
    last_seen: float
    bound: set[str] = field(default_factory=set)
    first_bound: float | None = None
    verdict: str = ""  # "", "placed", "violation", "unchecked"


@dataclass
class _Victim:
    uid: str
    first_seen: float
    preemptor_uid: str = ""
    node: str = ""
    checked: bool = False
    rv: int = 0
    """The resourceVersion at which it was first seen preempted (its DisruptionTarget condition, else its
    Preempted event): when the preemption happened, on the store's own clock."""


class Invariants:
    """Feed it snapshots in time order (``observe``); read ``violations`` and the counters."""

    def __init__(self, *, pending_bound: float = PENDING_BOUND_SECONDS, gang_settle: float = GANG_SETTLE_SECONDS,
                 preemption_grace: float = PREEMPTION_GRACE_SECONDS) -> None:
        self.pending_bound = pending_bound
        self.gang_settle = gang_settle
        self.preemption_grace = preemption_grace
        self.violations: list[Violation] = []
        self.pods: dict[str, _Pod] = {}
        self.gangs: dict[str, _Gang] = {}
        self.victims: dict[str, _Victim] = {}
        self.preemptors_deleted_unplaced = 0
        """Victims whose preemptor was deleted, never bound, within ``preemption_grace`` of the preemption
        (a scale-down can delete a preemptor while its nomination is still being written): not a violation."""
        self._scheduled: dict[str, set[str]] = defaultdict(set)  # pod uid -> Scheduled event names
        self._fit_since: dict[str, float] = {}  # pending pod uid -> first time of its current "fits" streak
        self._reported: set[tuple[str, str]] = set()  # (kind, subject) already reported once
        self.snapshots = 0
        self._snapshot_uids: set[str] = set()

    # ---- counters -------------------------------------------------------------------------

    @property
    def scheduled(self) -> int:
        """Pods seen bound."""
        return sum(1 for p in self.pods.values() if p.node)

    @property
    def gangs_placed(self) -> int:
        return sum(1 for g in self.gangs.values() if g.verdict == "placed")

    @property
    def preemptions(self) -> int:
        return len(self.victims)

    # ---- input ----------------------------------------------------------------------------

    def reset_pending(self) -> None:
        """Forget every pending pod's fit streak (the API server restarted: the scheduler relists)."""
        self._fit_since.clear()

    def observe(self, *, now: float, pods: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]] = (),
                events: Iterable[Mapping[str, Any]] = (), podgroups: Iterable[Mapping[str, Any]] = ()) -> None:
        """One consistent look at the cluster at ``now`` (seconds): every pod, node, scheduling event and
        PodGroup of the soak."""
        self.snapshots += 1
        pods = [p for p in pods if (p.get("spec") or {}).get("schedulerName") == SCHEDULER_NAME]
        self._observe_pods(now, pods)
        self._observe_events(now, events)
        room = self._check_allocatable(now, pods, nodes)
        self._check_pending(now, pods, room)
        self._observe_gangs(now, podgroups)
        self._check_victims(now)

    def finish(self, *, now: float) -> None:
        """The run is over: judge what can be judged (gangs whose settle time has passed, victims whose
        grace has; the later ones are left unjudged, as their preemptors may not have been seen yet)."""
        self._check_gangs(now)
        self._check_victims(now)

    # ---- rules ----------------------------------------------------------------------------

    def _violate(self, kind: str, subject: str, now: float, evidence: str) -> None:
        if (kind, subject) in self._reported:
            return
        self._reported.add((kind, subject))
        self.violations.append(Violation(kind=kind, at=now, evidence=evidence))

    def record(self, *, now: float, pod: Mapping[str, Any], deleted: bool = False) -> None:
        """One version of one pod, from a list or a watch event (``deleted``: its final one): what it is bound
        or nominated to, whether it was preempted; a pod whose ``spec.nodeName`` changes once set is reported."""
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        if spec.get("schedulerName") != SCHEDULER_NAME:
            return
        uid = str(meta.get("uid", ""))
        rec = self.pods.get(uid)
        if rec is None:
            rec = self.pods[uid] = _Pod(key=f"{meta.get('namespace')}/{meta.get('name')}",
                                        priority=int(spec.get("priority") or 0),
                                        group=str((meta.get("labels") or {}).get(POD_GROUP_LABEL, "")))
        try:
            rv = int(meta.get("resourceVersion") or 0)
        except (TypeError, ValueError):
            rv = 0  # not a number: judge it as it comes
        if deleted and rec.deleted_at is None:
            rec.deleted_at = now
            rec.deleted_rv = rv
        if rv and rv <= rec.rv:
            return
        rec.rv = max(rec.rv, rv)
        node = str(spec.get("nodeName") or "")
        if rec.node and node != rec.node:
            self._violate("moved", uid, now, f"pod {rec.key} (uid {uid}) was bound to {rec.node} at "
                          f"{rec.bound_at:.1f}s, then spec.nodeName was {node or 'empty'!r} "
                          f"(resourceVersion {meta.get('resourceVersion')})")
        elif node and not rec.node:
            rec.node, rec.bound_at = node, now
        nominated = status.get("nominatedNodeName")
        if nominated:
            rec.nominated.add(str(nominated))
        for c in status.get("conditions") or []:
            if (c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                    and c.get("reason") == "PreemptionByScheduler" and uid not in self.victims):
                self.victims[uid] = _Victim(uid=uid, first_seen=now, node=rec.node, rv=rv)

    def _observe_pods(self, now: float, pods: list[Mapping[str, Any]]) -> None:
        for obj in pods:
            self.record(now=now, pod=obj)
        live = {str((p.get("metadata") or {}).get("uid", "")) for p in pods}
        for uid in self._snapshot_uids - live:
            if self.pods[uid].deleted_at is None:
                self.pods[uid].deleted_at = now
        self._snapshot_uids = live

    def _observe_events(self, now: float, events: Iterable[Mapping[str, Any]]) -> None:
        for ev in events:
            obj = ev.get("involvedObject") or {}
            uid = str(obj.get("uid", ""))
            reason = ev.get("reason")
            if reason == "Scheduled" and obj.get("kind") == "Pod":
                names = self._scheduled[uid]
                names.add(str((ev.get("metadata") or {}).get("name", "")))
                rec = self.pods.get(uid)
                target = str(ev.get("message", "")).rpartition(" to ")[2]
                if len(names) > 1:
                    self._violate("bound twice", uid, now, f"pod {obj.get('namespace')}/{obj.get('name')} (uid {uid}) "
                                  f"has {len(names)} Scheduled events: {', '.join(sorted(names))}")
                elif rec is not None and rec.node and target and target != rec.node:
                    self._violate("bound twice", uid, now, f"pod {rec.key} (uid {uid}) is bound to {rec.node} but "
                                  f"its Scheduled event says {ev.get('message')!r}")
            elif reason == "Preempted":
                m = _PREEMPTED_BY.search(str(ev.get("message", "")))
                v = self.victims.get(uid)
                if v is None:
                    rec = self.pods.get(uid)
                    try:
                        ev_rv = int((ev.get("metadata") or {}).get("resourceVersion") or 0)
                    except (TypeError, ValueError):
                        ev_rv = 0
                    v = self.victims[uid] = _Victim(uid=uid, first_seen=now, node=rec.node if rec else "", rv=ev_rv)
                if m:
                    v.preemptor_uid, v.node = m.group(1), m.group(2)

    def _check_pending(self, now: float, pods: list[Mapping[str, Any]], room: Mapping[str, Mapping[str, int]]) -> None:
        pending = []
        for obj in pods:
            if _pending(obj):
                try:
                    pending.append(pod_from_json(obj))
                except ObjectError:
                    continue
        # (node, priority, uid, requests) of the pending pods nominated to a node
        nominated = [(str(p.raw["status"]["nominatedNodeName"]), p.priority, p.uid, p.requests) for p in pending
                     if (p.raw.get("status") or {}).get("nominatedNodeName")]
        still: dict[str, float] = {}
        for pod in pending:
            if pod.scheduling_gates or pod.labels.get(POD_GROUP_LABEL):
                continue  # gated, or a gang member: the gang rule judges those
            fits = [n for n, free in room.items()
                    if _fits(pod.requests, free, reserved=_reserved(nominated, node=n, pod=pod))]
            if not fits:
                continue
            since = self._fit_since.get(pod.uid, now)
            still[pod.uid] = since
            if now - since > self.pending_bound:
                self._violate("left pending", pod.uid, now,
                              f"pod {pod.key} (priority {pod.priority}, requests {dict(pod.requests)}) has been "
                              f"pending since at least {since:.1f}s while it fit on {', '.join(sorted(fits))} "
                              f"(> {self.pending_bound:g} s)")
        self._fit_since = still

    def _check_allocatable(self, now: float, pods: list[Mapping[str, Any]],
                           nodes: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
        """Report nodes over allocatable; returns the free room of each schedulable node."""
        used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        holders: dict[str, list[str]] = defaultdict(list)
        for obj in pods:
            node = (obj.get("spec") or {}).get("nodeName")
            if not node or (obj.get("status") or {}).get("phase") in _TERMINAL:
                continue
            try:
                pod = pod_from_json(obj)
            except ObjectError:
                continue
            for r, v in pod.requests.items():
                used[node][r] += v
            used[node]["pods"] += 1
            holders[node].append(pod.key)
        room: dict[str, dict[str, int]] = {}
        for obj in nodes:
            try:
                n = node_from_json(obj)
            except ObjectError:
                continue
            free = {r: n.allocatable.get(r, 0) - used[n.name].get(r, 0) for r in set(n.allocatable) | set(used[n.name])}
            for r, v in sorted(free.items()):
                if v < 0:
                    self._violate("over allocatable", f"{n.name}/{r}", now,
                                  f"node {n.name}: {r} requested {used[n.name][r]} > allocatable "
                                  f"{n.allocatable.get(r, 0)} by {len(holders[n.name])} pods: "
                                  f"{', '.join(sorted(holders[n.name]))}")
            if not n.unschedulable and not any(t.effect in ("NoSchedule", "NoExecute") for t in n.taints):
                room[n.name] = free
        return room

    def _observe_gangs(self, now: float, podgroups: Iterable[Mapping[str, Any]]) -> None:
        for pg in podgroups:
            meta = pg.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            g = self.gangs.get(key)
            if g is None:
                g = self.gangs[key] = _Gang(key=key, min_member=int((pg.get("spec") or {}).get("minMember") or 0),
                                            first_seen=now, last_seen=now)
            g.last_seen = now
        for uid in self._snapshot_uids:
            rec = self.pods[uid]
            if rec.group and rec.node:
                g = self.gangs.get(f"{rec.key.partition('/')[0]}/{rec.group}")
                if g is not None and uid not in g.bound:
                    g.bound.add(uid)
                    if g.first_bound is None:
                        g.first_bound = rec.bound_at if rec.bound_at is not None else now
        self._check_gangs(now)

    def _check_gangs(self, now: float) -> None:
        for g in self.gangs.values():
            if g.verdict or g.first_bound is None or now < g.first_bound + self.gang_settle:
                continue
            if g.last_seen < g.first_bound + self.gang_settle:
                g.verdict = "unchecked"  # deleted before it had settled
            elif len(g.bound) >= g.min_member:
                g.verdict = "placed"
            else:
                g.verdict = "violation"
                self._violate("partial gang", g.key, now,
                              f"PodGroup {g.key} (minMember {g.min_member}) had {len(g.bound)} member(s) bound "
                              f"{self.gang_settle:g} s after its first at {g.first_bound:.1f}s: "
                              f"{', '.join(sorted(self.pods[u].key + '@' + self.pods[u].node for u in g.bound))}")

    def _check_victims(self, now: float) -> None:
        for v in self.victims.values():
            if v.checked or now < v.first_seen + self.preemption_grace:
                continue
            v.checked = True
            victim = self.pods.get(v.uid)
            if victim is None:
                self._violate("victim without preemptor", v.uid, now,
                              f"pod uid {v.uid} was preempted but was never seen (nothing to check it against)")
                continue
            node = v.node or victim.node
            if v.preemptor_uid:
                p = self.pods.get(v.preemptor_uid)
                if p is None:
                    problem = "which was never seen"
                elif p.priority <= victim.priority:
                    problem = f"{p.key} of priority {p.priority}, not above the victim's {victim.priority}"
                elif p.deleted_rv and v.rv and p.deleted_rv < v.rv and not p.node:
                    problem = (f"{p.key}, which had been deleted (resourceVersion {p.deleted_rv}) before its victim "
                               f"was preempted (resourceVersion {v.rv})")
                elif not p.node and p.deleted_at is not None and p.deleted_at <= v.first_seen + self.preemption_grace:
                    self.preemptors_deleted_unplaced += 1
                    continue
                elif node not in p.nominated and p.node != node:
                    problem = (f"{p.key}, which was nominated to {sorted(p.nominated) or 'no node'} and bound to "
                               f"{p.node or 'no node'}, never to {node}")
                else:
                    continue
                self._violate("victim without preemptor", v.uid, now,
                              f"pod {victim.key} (priority {victim.priority}) on {node} was preempted for pod uid "
                              f"{v.preemptor_uid}, {problem}")
                continue
            # No Preempted event (it may have been dropped): any higher-priority pod nominated to or bound on
            # the victim's node will do.
            if not any(p.priority > victim.priority and (node in p.nominated or p.node == node)
                       for p in self.pods.values()):
                self._violate("victim without preemptor", v.uid, now,
                              f"pod {victim.key} (priority {victim.priority}) on {node or 'no node'} was preempted "
                              f"(DisruptionTarget) but no pod of higher priority was ever nominated to or bound on {node}")


def _pending(obj: Mapping[str, Any]) -> bool:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return (not spec.get("nodeName") and not meta.get("deletionTimestamp")
            and status.get("phase", "Pending") == "Pending")


def _reserved(nominated: Iterable[tuple[str, int, str, Mapping[str, int]]], *, node: str,
              pod: PodInfo) -> dict[str, int]:
    """Requests of the other pending pods nominated to ``node`` with at least ``pod``'s priority: room that
    kube-scheduler's filters hold for them (``addGENominatedPods``)."""
    out: dict[str, int] = defaultdict(int)
    for n, priority, uid, requests in nominated:
        if n == node and uid != pod.uid and priority >= pod.priority:
            for r, v in requests.items():
                out[r] += v
            out["pods"] += 1
    return out


def _fits(requests: Mapping[str, int], free: Mapping[str, int], *, reserved: Mapping[str, int]) -> bool:
    if free.get("pods", 0) - reserved.get("pods", 0) < 1:
        return False
    return all(v <= free.get(r, 0) - reserved.get(r, 0) for r, v in requests.items() if v)
