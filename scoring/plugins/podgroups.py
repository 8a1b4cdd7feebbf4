"""PodGroups as gang scheduling reads them: the groups, their members, and the
scheduler's memory of each group (recent failures, backoff, the resource check).

A pod joins a group with the label ``scheduling.x-k8s.io/pod-group: <name>``, naming a
scheduler-plugins ``PodGroup`` (``scheduling.x-k8s.io/v1alpha1``) in its own namespace.
Coscheduling needs, per group: its spec (``minMember``, ``minResources``,
``scheduleTimeoutSeconds``) and creation time; every pod that carries the label, as the
API has them (pending, placed or finished, scheduling-gated or not: upstream's pod
lister); and the members placed on a node -- bound or assumed, which is upstream's
``assignedPodsByPG``. The first two are fed by the live cache's informers (or a
snapshot, for ``explain`` and ``sim``); the third follows the node table itself, as a
table listener, so that a member assumed, forgotten or deleted is counted at once.

The per-group memory -- when it last failed (queue order), until when it is backed off,
until when its ``minResources`` check holds -- is upstream's PodGroupManager caches,
kept here with an injectable wall clock so that tests step time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final

from scoring.objects import ObjectError, PodInfo, _string, checked, object_ref, parse_resource_list
from scoring.safe_input import quote
from scoring.table import NodeTable

__all__ = ["POD_GROUP_LABEL", "PodGroup", "PodGroups", "group_of", "podgroup_from_json", "parse_time"]

POD_GROUP_LABEL: Final = "scheduling.x-k8s.io/pod-group"
"""scheduler-plugins' ``v1alpha1.PodGroupLabel``: the pod label naming its group."""


def group_of(pod: PodInfo) -> str:
    """``namespace/name`` of the pod's group ("" when it has none): upstream's GetPodGroupFullName."""
    name = pod.labels.get(POD_GROUP_LABEL, "")
    return f"{pod.namespace}/{name}" if name else ""


def parse_time(v: Any) -> float | None:
    """An RFC 3339 time as the API writes it (``2026-12-03T10:00:00Z``), as epoch seconds."""
    if not isinstance(v, str) or not v:
        return None
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PodGroup:
    """What Coscheduling reads of a PodGroup."""

    namespace: str
    name: str
    min_member: int
    min_resources: Mapping[str, int] | None
    """``spec.minResources`` in vecsched's units (milli-CPU, bytes, counts); None when unset."""
    schedule_timeout: int | None
    """``spec.scheduleTimeoutSeconds``; None when unset."""
    created: float
    """``metadata.creationTimestamp`` as epoch seconds (0 when the object has none)."""
    uid: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def podgroup_from_json(obj: Mapping[str, Any]) -> PodGroup:
    """A ``scheduling.x-k8s.io/v1alpha1`` PodGroup; ObjectError names a field gang scheduling cannot read."""
    if not isinstance(obj, Mapping):
        raise ObjectError("PodGroup", "(object)", f"expected an object, got {quote(obj)}")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise ObjectError("PodGroup", "metadata", "expected a mapping")
    ref = object_ref("PodGroup", obj)
    checked(ref, obj)
    ns = _string(ref, "metadata.namespace", meta.get("namespace"), "default")
    name = _string(ref, "metadata.name", meta.get("name"))
    ref = f"PodGroup {ns}/{name}"
    if not name:
        raise ObjectError(ref, "metadata.name", "required")
    spec = obj.get("spec")
    spec = {} if spec is None else spec
    if not isinstance(spec, Mapping):
        raise ObjectError(ref, "spec", "expected a mapping")
    # The CRD's schema says minMember >= 1 but does not require it; unset reads as 0, as in Go.
    min_member = spec.get("minMember", 0)
    if not isinstance(min_member, int) or isinstance(min_member, bool) or min_member < 0 or min_member >= 2**31:
        raise ObjectError(ref, "spec.minMember", f"expected a non-negative int32, got {str(min_member)[:64]!r}")
    min_resources = None
    if spec.get("minResources") is not None:
        min_resources = parse_resource_list(ref, "spec.minResources", spec.get("minResources"))
    timeout = spec.get("scheduleTimeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout < 2**31):
        raise ObjectError(ref, "spec.scheduleTimeoutSeconds", f"expected a non-negative int32, got {str(timeout)[:64]!r}")
    return PodGroup(ns, name, min_member, min_resources, timeout, parse_time(meta.get("creationTimestamp")) or 0.0,
                    _string(ref, "metadata.uid", meta.get("uid")))


@dataclass(slots=True)
class _Member:
    gated: bool


@dataclass
class PodGroups:
    """The cluster's PodGroups and their members, as a table extension (and listener)."""

    KEY: ClassVar[str] = "coscheduling/podgroups"
    groups: dict[str, PodGroup] = field(default_factory=dict)
    members: dict[str, dict[str, _Member]] = field(default_factory=dict)
    """Group key -> pod key -> member: every pod in the API carrying the group's label."""
    member_of: dict[str, str] = field(default_factory=dict)
    """Pod key -> its group key, for every pod in ``members``."""
    gated: dict[str, int] = field(default_factory=dict)
    """Group key -> how many of its members are scheduling-gated (kept as they change, so that
    PreFilter's count does not walk a large group for each member)."""
    placed: dict[str, set[str]] = field(default_factory=dict)
    """Group key -> keys of members charged to a node in the table (bound or assumed)."""
    clock: Callable[[], float] = time.time
    """Wall clock (epoch seconds): the failure times, backoffs and checks below use it."""
    last_failure: dict[str, float] = field(default_factory=dict)
    """Upstream's lastFailedSchedulePG: when the group last failed (its queue order until it succeeds)."""
    backoff_until: dict[str, float] = field(default_factory=dict)
    """Upstream's backedOffPG: groups rejected recently, with when their backoff ends."""
    permitted_until: dict[str, float] = field(default_factory=dict)
    """Upstream's permittedPG: groups whose minResources check passed, until when it holds."""

    @classmethod
    def of(cls, table: NodeTable) -> PodGroups:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, PodGroups):
            ext = table.extensions[cls.KEY] = PodGroups()
            for placed in table.pods.values():
                ext.pod_added(table, placed.pod, 0)
            table.listeners.append(ext)
        return ext

    # ---- the groups ----------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> PodGroup:
        """Add or replace a PodGroup from its JSON (ObjectError when unreadable: nothing changes)."""
        pg = podgroup_from_json(obj)
        self.groups[pg.key] = pg
        return pg

    def delete(self, namespace: str, name: str) -> None:
        self.groups.pop(f"{namespace}/{name}", None)

    def group(self, key: str) -> PodGroup | None:
        return self.groups.get(key)

    # ---- members as the API has them ----------------------------------------------------------

    def observe(self, pod: PodInfo) -> None:
        """A pod as the API has it now (any phase); it joins, stays in or leaves its group."""
        key = group_of(pod)
        before = self.member_of.get(pod.key)
        if before is not None and before != key:
            self._leave(before, pod.key)
        if key:
            members = self.members.setdefault(key, {})
            old = members.get(pod.key)
            gated = bool(pod.scheduling_gates)
            self.gated[key] = self.gated.get(key, 0) - (1 if old is not None and old.gated else 0) + gated
            members[pod.key] = _Member(gated)
            self.member_of[pod.key] = key

    def forget(self, key: str) -> None:
        """The pod ``namespace/name`` was deleted from the API."""
        group = self.member_of.get(key)
        if group is not None:
            self._leave(group, key)

    def _leave(self, group: str, key: str) -> None:
        self.member_of.pop(key, None)
        members = self.members.get(group)
        if members is not None:
            gone = members.pop(key, None)
            if gone is not None and gone.gated:
                self.gated[group] -= 1
            if not members:
                del self.members[group]
                self.gated.pop(group, None)

    def member_keys(self, group: str) -> list[str]:
        """Keys of every pod carrying the group's label, sorted."""
        return sorted(self.members.get(group, ()))

    def counts(self, group: str) -> tuple[int, int]:
        """(pods carrying the label, of which scheduling-gated) -- what upstream's PreFilter lists."""
        return len(self.members.get(group, ())), self.gated.get(group, 0)

    def assigned(self, group: str) -> int:
        """Members charged to a node (bound or assumed): upstream's GetAssignedPodCount."""
        return len(self.placed.get(group, ()))

    def pending_members(self, group: str, table: NodeTable) -> Iterator[str]:
        """Members not on any node, sorted by key."""
        placed = self.placed.get(group, set())
        return (k for k in self.member_keys(group) if k not in placed and k not in table.pods)

    # ---- the scheduler's memory of each group --------------------------------------------------

    # Upstream keeps backedOffPG and permittedPG in go-caches: an entry is gone only once
    # the clock is past its expiry (at the expiry itself it still holds), and Add does
    # not replace an entry that still holds -- a group rejected again while backed off
    # is not backed off for longer.

    def backed_off(self, group: str) -> bool:
        return self._holds(self.backoff_until, group)

    def back_off(self, group: str, seconds: float) -> None:
        if seconds > 0 and not self.backed_off(group):
            self.backoff_until[group] = self.clock() + seconds

    def permitted(self, group: str) -> bool:
        return self._holds(self.permitted_until, group)

    def permit(self, group: str, seconds: float) -> None:
        if not self.permitted(group):
            self.permitted_until[group] = self.clock() + seconds

    def _holds(self, entries: dict[str, float], group: str) -> bool:
        until = entries.get(group)
        if until is None:
            return False
        if until < self.clock():
            del entries[group]
            return False
        return True

    def mark_failure(self, group: str) -> None:
        self.last_failure[group] = self.clock()

    def clear_failure(self, group: str) -> None:
        self.last_failure.pop(group, None)

    def sort_time(self, pod: PodInfo, default: float) -> float:
        """Upstream's GetCreationTimestamp: the group's last failure, else its creation time;
        ``default`` (the pod's own time) for a pod without a group or whose group is unknown."""
        key = group_of(pod)
        if not key:
            return default
        failed = self.last_failure.get(key)
        if failed is not None:
            return failed
        pg = self.groups.get(key)
        return pg.created if pg is not None else default

    # ---- TableListener: members placed on nodes ------------------------------------------------

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        key = group_of(pod)
        if key:
            self.placed.setdefault(key, set()).add(pod.key)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        key = group_of(pod)
        placed = self.placed.get(key) if key else None
        if placed is not None:
            placed.discard(pod.key)
            if not placed:
                del self.placed[key]

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        pass

    def node_set(self, table: NodeTable, node: int) -> None:
        pass
