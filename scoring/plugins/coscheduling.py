"""Coscheduling: a PodGroup's pods are placed all together or not at all, as
scheduler-plugins' plugin of that name decides (kubernetes-sigs/scheduler-plugins
``pkg/coscheduling/``), so that Kubeflow jobs and other users of its ``PodGroup`` run
on vecsched unchanged.

Its verdicts, upstream's, at each extension point:

- **QueueSort**: higher priority first; then the group's creation time -- or the time
  it last failed, so that a failing group does not hold the head of the queue -- or, for
  a pod without a group, its own time in the queue; then ``namespace/name``.
- **PreFilter**: reject (unresolvably, so no preemption is tried) while the group is
  backed off after a rejection, while fewer than ``minMember`` pods carry its label
  (scheduling-gated pods count as missing), and while ``minResources`` plus ``minMember``
  pods exceed what the cluster has free (the group's own pods not counted); a passed
  resource check holds for ``permitWaitingTimeSeconds``.
- **PostFilter**: when a member fits nowhere and more than ``podGroupRejectPercentage``
  percent of ``minMember`` is unassigned, reject the group's waiting members, back the
  group off for ``podGroupBackoffSeconds`` and remember the failure.
- **Permit**: a member waits (``scheduleTimeoutSeconds``, else
  ``permitWaitingTimeSeconds``) until ``minMember`` members are assigned -- bound, or
  assumed and waiting -- and the one that completes the quorum allows them all.
- **Unreserve**: a member that is rejected or times out rejects its waiting siblings.

vecsched places a group's members together in one scheduling cycle once they are known
to fit at once (``scoring.plugins.gang``), so members rarely wait at Permit; these
verdicts still hold wherever they do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from scoring.batching import SKIP, Signed
from scoring.args import ArgsError, integer, known_fields, mapping
from scoring.framework import (PERMIT_REJECT, PERMIT_SUCCESS, PERMIT_WAIT, CycleState, PermitPlugin, PermitResult,
                               PostFilterPlugin, PostFilterResult, PreFilterPlugin, Profile, QueueSortPlugin, Reason,
                               ReservePlugin, UnreservePlugin, WaitingPods)
from scoring.objects import CPU, PODS, PodInfo
from scoring.plugins.podgroups import PodGroup, PodGroups, group_of
from scoring.table import NodeTable

__all__ = ["NAME", "PODS_TO_ACTIVATE", "DEFAULT_WAIT_SECONDS", "CoschedulingArgs", "Coscheduling", "parse_args",
           "new", "resource_gap", "go_duration"]

NAME: Final = "Coscheduling"
PODS_TO_ACTIVATE: Final = "framework/pods-to-activate"
"""CycleState key: keys of pods the scheduler should move to the active queue after this
cycle (upstream's PodsToActivate; Coscheduling's ActivateSiblings fills it)."""
DEFAULT_WAIT_SECONDS: Final = 60
"""scheduler-plugins' DefaultWaitTime: the Permit timeout when nothing else sets one."""
REJECTED_IN_POSTFILTER: Final = "optimistic rejection in PostFilter"
REJECTED_IN_UNRESERVE: Final = "rejection in Unreserve"
_PERMITTED_DEFAULT_SECONDS: Final = 3
"""How long a passed minResources check holds when ``permitWaitingTimeSeconds`` is 0:
upstream's permittedPG cache takes a 0 expiry as its default, 3 seconds."""


@dataclass(frozen=True, slots=True)
class CoschedulingArgs:
    """``CoschedulingArgs`` with scheduler-plugins' defaults."""

    permit_waiting_time_seconds: int = 60
    """How long a member waits at Permit for its quorum when its PodGroup sets no
    ``scheduleTimeoutSeconds``; also how long a passed minResources check holds."""
    pod_group_backoff_seconds: int = 0
    """How long a rejected group is refused at PreFilter (0: not at all)."""
    pod_group_reject_percentage: int = 10
    """A failing member rejects its group only when more than this percentage of
    ``minMember`` is still unassigned."""


def parse_args(args: Mapping[str, Any], path: str) -> CoschedulingArgs:
    """Read and validate as scheduler-plugins' ValidateCoschedulingArgs (its messages)."""
    m = mapping(args, path)
    known_fields(m, ("permitWaitingTimeSeconds", "podGroupBackoffSeconds", "podGroupRejectPercentage"), path)
    d = CoschedulingArgs()
    wait = integer(m.get("permitWaitingTimeSeconds", d.permit_waiting_time_seconds), f"{path}.permitWaitingTimeSeconds")
    backoff = integer(m.get("podGroupBackoffSeconds", d.pod_group_backoff_seconds), f"{path}.podGroupBackoffSeconds")
    reject = integer(m.get("podGroupRejectPercentage", d.pod_group_reject_percentage),
                     f"{path}.podGroupRejectPercentage")
    if wait < 0:
        raise ArgsError(f"{path}.permitWaitingTimeSeconds", f"Invalid value: {wait}: must be greater than 0")
    if backoff < 0:
        raise ArgsError(f"{path}.podGroupBackoffSeconds", f"Invalid value: {backoff}: must be greater than 0")
    if not 0 <= reject <= 100:
        raise ArgsError(f"{path}.podGroupRejectPercentage", f"Invalid value: {reject}: must be between 0 and 100")
    return CoschedulingArgs(wait, backoff, reject)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``300ms``, ``1.5s``, ``10s``, ``1m0s``, ``1h0m0s``."""
    if seconds == 0:
        return "0s"
    for scale, unit in ((1e-6, "ns"), (1e-3, "µs"), (1.0, "ms")):
        if seconds < scale:
            return f"{round(seconds / scale * 1000, 9):g}{unit}"
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    frac = f"{seconds - whole:.9f}".rstrip("0").rstrip(".")[1:] if seconds != whole else ""
    return (f"{h}h" if h else "") + f"{m}m{s}{frac}s"


def _quantity(resource: str, amount: int) -> str:
    if resource == CPU:
        return f"{amount // 1000}" if amount % 1000 == 0 else f"{amount}m"
    return str(amount)


def resource_gap(table: NodeTable, request: Mapping[str, int], group: str) -> str:
    """Upstream's CheckClusterResource: "" when the nodes' free resources, summed in table
    order, reach every amount of ``request`` (the group's own pods counted as free);
    otherwise ``resource gap: map[<resource>:<still missing> ...]``.

    A node's free amount is allocatable minus requested (for ``pods``: the pod limit minus
    the pods there). Upstream subtracts node by node and drops a resource once its
    remainder is <= 0, so a resource is covered when some prefix sum of the free amounts
    reaches it: the maximum of the cumulative sum decides, one vector step per resource.
    """
    n = table.n
    own = np.zeros((n, len(table.resources)), np.int64)
    placed = PodGroups.of(table).placed.get(group, set())
    for key in placed:
        p = table.pods.get(key)
        if p is not None:
            own[table.index[p.node], : len(p.vector)] += p.vector
    missing: dict[str, int] = {}
    for resource, amount in sorted(request.items()):
        if amount <= 0:
            continue  # removed by upstream's first step, whatever the nodes hold
        col = table.resource_index.get(resource)
        if col is None or n == 0:
            missing[resource] = amount
            continue
        free = table.allocatable[:n, col] - table.requested[:n, col] + own[:, col]
        running = np.cumsum(free)
        if int(running.max()) < amount:
            missing[resource] = amount - int(running[-1])
    if not missing:
        return ""
    return "resource gap: map[" + " ".join(f"{r}:{_quantity(r, v)}" for r, v in sorted(missing.items())) + "]"


class Coscheduling:
    """scheduler-plugins' Coscheduling: QueueSort, PreFilter, PostFilter, Permit, Reserve/Unreserve."""

    name: Final = NAME

    def __init__(self, args: CoschedulingArgs | None = None) -> None:
        self.args = args or CoschedulingArgs()

    # ---- QueueSort ------------------------------------------------------------------------------

    def queue_key(self, pod: PodInfo, table: NodeTable, *, timestamp: float, first_seen: float) -> tuple[Any, ...]:
        """Upstream's Less as a sort key: (-priority, the group's (or pod's) time, namespace/name)."""
        return -pod.priority, PodGroups.of(table).sort_time(pod, first_seen), f"{pod.namespace}/{pod.name}"

    # ---- PreFilter ------------------------------------------------------------------------------

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a member of a PodGroup is unsignable (its group decides together); any
        other pod skips the plugin's PreFilter."""
        return "the pod belongs to a PodGroup" if group_of(pod) else Signed(SKIP)

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | None:
        """Upstream's PodGroupManager.PreFilter, with its messages."""
        key = group_of(pod)
        groups = PodGroups.of(table)
        pg = groups.group(key) if key else None
        if pg is None:
            return None
        if groups.backed_off(key):
            return f"podGroup {key} failed recently"
        total, gated = groups.counts(key)
        if pg.min_member - total > 0:
            return (f"pre-filter pod {pod.name} cannot find enough sibling pods, "
                    f"current pods number: {total}, minMember of group: {pg.min_member}")
        # Upstream adds one to the (non-positive) gap per gated pod and fails once it is positive.
        if pg.min_member - total + gated > 0:
            return f"pre-filter pod {pod.name} cannot proceed due to gated pods in the same PodGroup"
        if pg.min_resources is None or groups.permitted(key):
            return None
        gap = resource_gap(table, {**pg.min_resources, PODS: pg.min_member}, key)
        if gap:
            return gap
        groups.permit(key, self.args.permit_waiting_time_seconds or _PERMITTED_DEFAULT_SECONDS)
        return None

    # ---- PostFilter -----------------------------------------------------------------------------

    def postfilter(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                   profile: Profile) -> PostFilterResult:
        """Upstream's PostFilter: reject the whole group unless it is (nearly) complete."""
        key = group_of(pod)
        if not key:
            # Upstream says "can not find pod group" here too, which would end every plain
            # pod's FailedScheduling message; a pod that names no group gets no word from us.
            return PostFilterResult(NAME, False, "")
        groups = PodGroups.of(table)
        pg = groups.group(key)
        if pg is None:
            return PostFilterResult(NAME, False, "can not find pod group")
        assigned = groups.assigned(key)
        if assigned >= pg.min_member:
            return PostFilterResult(NAME, False, "")
        if (pg.min_member - assigned) / pg.min_member <= self.args.pod_group_reject_percentage / 100:
            return PostFilterResult(NAME, False, "")  # a small gap: later members may still complete it
        self.reject_waiting(pg, profile.waiting, REJECTED_IN_POSTFILTER)
        total, _ = groups.counts(key)
        if self.args.pod_group_backoff_seconds > 0 and total >= pg.min_member:
            groups.back_off(key, self.args.pod_group_backoff_seconds)
        groups.permitted_until.pop(key, None)
        groups.mark_failure(key)
        return PostFilterResult(NAME, False,
                                f"PodGroup {key} gets rejected due to Pod {pod.name} is unschedulable even after PostFilter")

    # ---- Permit, Reserve, Unreserve ---------------------------------------------------------------

    def timeout(self, pg: PodGroup) -> float:
        """Upstream's Permit wait: ``scheduleTimeoutSeconds`` when set and not 0; else
        ``permitWaitingTimeSeconds``, or DEFAULT_WAIT_SECONDS when that is 0 -- unless the
        group sets ``scheduleTimeoutSeconds: 0``, where upstream keeps the args' value as
        it is, 0 included (GetWaitTimeDuration returns 0 and Permit ignores a 0)."""
        if pg.schedule_timeout:
            return float(pg.schedule_timeout)
        if pg.schedule_timeout == 0:
            return float(self.args.permit_waiting_time_seconds)
        return float(self.args.permit_waiting_time_seconds or DEFAULT_WAIT_SECONDS)

    def permit(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState,
               waiting: WaitingPods) -> PermitResult:
        """Upstream's Permit: Success once ``minMember`` members are assigned (this one, assumed,
        included), allowing the waiting ones; otherwise Wait, and the first member to wait
        asks for its siblings to be tried at once."""
        key = group_of(pod)
        if not key:
            return PermitResult(PERMIT_SUCCESS)
        groups = PodGroups.of(table)
        pg = groups.group(key)
        if pg is None:
            return PermitResult(PERMIT_REJECT, "PodGroup not found")
        assigned = groups.assigned(key)
        if assigned >= pg.min_member:
            groups.clear_failure(key)
            for w in list(waiting):
                if group_of(w.pod) == key:
                    w.allow(NAME)
            return PermitResult(PERMIT_SUCCESS)
        if assigned == 1:
            siblings = [k for k in groups.pending_members(key, table) if k != pod.key]
            state.setdefault(PODS_TO_ACTIVATE, set()).update(siblings)
        return PermitResult(PERMIT_WAIT, timeout=self.timeout(pg))

    def reserve(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> Mapping[str, str] | None:
        return None

    def unreserve(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState, waiting: WaitingPods) -> None:
        """Upstream's Unreserve: a member that will not be bound takes its waiting siblings with it."""
        key = group_of(pod)
        groups = PodGroups.of(table)
        pg = groups.group(key) if key else None
        if pg is None:
            return
        self.reject_waiting(pg, waiting, REJECTED_IN_UNRESERVE, but=pod.key)
        groups.permitted_until.pop(key, None)
        groups.mark_failure(key)

    @staticmethod
    def reject_waiting(pg: PodGroup, waiting: WaitingPods, message: str, *, but: str = "") -> None:
        for w in list(waiting):
            if w.pod.key != but and w.pod.namespace == pg.namespace and group_of(w.pod) == pg.key:
                w.reject(NAME, message)


def new(args: Mapping[str, Any], path: str) -> Coscheduling:
    return Coscheduling(parse_args(args, path))


_q: type[QueueSortPlugin] = Coscheduling
_pre: type[PreFilterPlugin] = Coscheduling
_post: type[PostFilterPlugin] = Coscheduling
_permit: type[PermitPlugin] = Coscheduling
_reserve: type[ReservePlugin] = Coscheduling
_unreserve: type[UnreservePlugin] = Coscheduling
