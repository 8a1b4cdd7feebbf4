"""Pod groups in the strategy lab: how a workload names them, and what a replay keeps of them.

A gang's pods are placed all together or not at all (scheduler-plugins' Coscheduling;
vecsched places a group only once all the members it needs fit at once, see
``scoring.plugins.gang``). A workload names its groups in one of these ways:

- Pod manifests, vecsched's annotations: ``vecsched.io/pod-group: "<name>"`` puts the pod
  in the group ``<name>`` of its namespace, and ``vecsched.io/pod-group-min-member: "<n>"``
  gives the group's size (its ``minMember``). A member may leave the size out when another
  member gives it.
- Pod manifests, scheduler-plugins' own form: pods labelled ``scheduling.x-k8s.io/pod-group:
  <name>``, and ``PodGroup`` objects (``scheduling.x-k8s.io/v1alpha1``) in the same file
  whose ``spec.minMember`` is the size. Such a PodGroup is used as it is: a strategy whose
  profile has Coscheduling also checks its ``minResources`` at PreFilter, as upstream does.
  (``scheduleTimeoutSeconds`` does not matter here: a replayed group never waits at Permit.)
- CSV: the columns ``pod_group`` (empty: no group) and ``pod_group_min_member``; CSV pods
  live in the namespace ``sim``.
- Alibaba's trace (``openb:``) and synthetic specs have no groups.

Whatever the form, the member pod ends up labelled ``scheduling.x-k8s.io/pod-group`` and
its SimPod holds the group's PodGroup object (a synthetic one, ``minMember`` only, when
the workload gave the size by annotation or column). Bad groups are one-line
``SimInputError``s naming the pod (or the PodGroup) and the field: a size that is not a
whole number >= 1, members (or a member and its PodGroup) that disagree on the size, a
group that no member and no PodGroup gives a size, a label and an annotation that name
different groups, a size on a pod that names no group. A PodGroup that no pod names is
ignored.

``Gangs`` is a replay's memory of the groups (``benchmarks.sim.replay`` says how groups
are replayed): each group's members that arrived and wait for it, whether it has been
placed, and which groups ever reached ``minMember`` members on nodes. A strategy named
``<name>:no-gang`` (``NO_GANG_SUFFIX``) replays the same profile with groups off: members
are placed one by one as independent pods, which shows what gang placement avoids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmarks.sim.model import SimInputError, SimPod
from scoring.objects import ObjectError, PodInfo
from scoring.plugins.podgroups import POD_GROUP_LABEL, PodGroup, PodGroups, group_of, podgroup_from_json
from scoring.table import NodeTable
from scoring.safe_input import quote

__all__ = [
    "POD_GROUP_ANNOTATION",
    "MIN_MEMBER_ANNOTATION",
    "GROUP_COLUMN",
    "MIN_MEMBER_COLUMN",
    "PODGROUP_KIND",
    "PODGROUP_API",
    "NO_GANG_SUFFIX",
    "GroupSizes",
    "Gang",
    "Gangs",
    "strategy_gang",
]

POD_GROUP_ANNOTATION: Final = "vecsched.io/pod-group"
"""Pod annotation: the name of the pod's group, in the pod's namespace."""
MIN_MEMBER_ANNOTATION: Final = "vecsched.io/pod-group-min-member"
"""Pod annotation: the group's size (minMember), a whole number >= 1."""
GROUP_COLUMN: Final = "pod_group"
"""CSV column: the pod's group (empty: none)."""
MIN_MEMBER_COLUMN: Final = "pod_group_min_member"
"""CSV column: the group's size."""
PODGROUP_KIND: Final = "PodGroup"
PODGROUP_API: Final = "scheduling.x-k8s.io/v1alpha1"
NO_GANG_SUFFIX: Final = ":no-gang"
"""Strategy name suffix: the strategy before it, with members placed one by one."""

GATHERING: Final = "gathering"
"""Fewer than minMember members have arrived (upstream's PreFilter turns them away)."""
WAITING: Final = "waiting"
"""Tried and did not fit; with retry, it waits as a group for departures."""
PLACED: Final = "placed"
"""minMember members were placed together; later members go one by one."""
FAILED: Final = "failed"
"""Tried and did not fit, without retry; its members fail."""


def strategy_gang(name: str) -> tuple[str, bool]:
    """(the profile a strategy name runs, whether it places groups together)."""
    if name.endswith(NO_GANG_SUFFIX):
        return name[: -len(NO_GANG_SUFFIX)], False
    return name, True


def _size(v: Any, where: str) -> int:
    """A group size: an integer >= 1 (or a string of one), below 2^31 as minMember's int32."""
    n: int | None = None
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str) and v.strip().isdigit():
        n = int(v.strip())
    if n is None or not 1 <= n < 2**31:
        raise SimInputError(f"{where}: expected a whole number >= 1, got {str(v)[:64]!r}")
    return n


class GroupSizes:
    """Collects the groups while a workload is read, then gives every member its PodGroup.

    PodGroup objects come first (``podgroup``), then each pod that names a group
    (``member``); ``attach`` checks that every group has a size and sets ``pod_group``.
    """

    def __init__(self) -> None:
        self._objects: dict[str, tuple[Mapping[str, Any], str]] = {}
        """Group key -> (its PodGroup from the workload, where it is)."""
        self._sizes: dict[str, tuple[int, str]] = {}
        """Group key -> (minMember, where it was given)."""
        self._first: dict[str, tuple[str, str]] = {}
        """Group key -> (where its first member is, the field that would give its size)."""

    def podgroup(self, obj: Mapping[str, Any], where: str) -> None:
        """A ``PodGroup`` object of the workload (scheduler-plugins' only: Volcano's has the same kind)."""
        try:
            pg = podgroup_from_json(obj)
        except ObjectError as e:
            raise SimInputError(f"{where}: {e}") from None
        ref = f"{where}: PodGroup {pg.key}"
        api = obj.get("apiVersion")
        if api is not None and api != PODGROUP_API:
            raise SimInputError(f"{ref}: apiVersion: expected {PODGROUP_API}, got {quote(api)}")
        if not pg.name:
            raise SimInputError(f"{ref}: metadata.name: required")
        if pg.key in self._objects:
            raise SimInputError(f"{ref}: metadata.name: duplicate PodGroup")
        if pg.min_member < 1:
            raise SimInputError(f"{ref}: spec.minMember: expected a whole number >= 1, got {pg.min_member}")
        self._objects[pg.key] = (obj, ref)
        self._sizes[pg.key] = (pg.min_member, ref)

    def member(self, key: str, size: Any, where: str, field_name: str) -> None:
        """A pod of group ``key`` (``namespace/name``); ``size`` as the pod gives it (None: not at all),
        ``field_name`` is where (the annotation or column)."""
        self._first.setdefault(key, (where, field_name))
        if size is None or size == "":
            return
        n = _size(size, f"{where}: {field_name}")
        known = self._sizes.get(key)
        if known is None:
            self._sizes[key] = (n, where)
        elif known[0] != n:
            raise SimInputError(f"{where}: {field_name}: {n} differs from the size {known[0]} of group {key} "
                                f"given at {known[1]}")

    def manifest_member(self, pod: PodInfo, obj: Mapping[str, Any], where: str) -> Mapping[str, Any] | None:
        """The group of a Pod manifest: registers it, and returns the manifest with the
        ``scheduling.x-k8s.io/pod-group`` label added when only the annotation named the group
        (None: the pod needs no change)."""
        label = pod.labels.get(POD_GROUP_LABEL, "")
        named = pod.annotations.get(POD_GROUP_ANNOTATION, "")
        size = pod.annotations.get(MIN_MEMBER_ANNOTATION)
        size_field = f"metadata.annotations.{MIN_MEMBER_ANNOTATION}"
        if label and named and label != named:
            raise SimInputError(f"{where}: metadata.annotations.{POD_GROUP_ANNOTATION}: names group {quote(named)} but "
                                f"the label {POD_GROUP_LABEL} names {quote(label)}")
        group = named or label
        if not group:
            if size is not None:
                raise SimInputError(f"{where}: {size_field}: the pod names no group "
                                    f"(annotation {POD_GROUP_ANNOTATION} or label {POD_GROUP_LABEL})")
            return None
        self.member(f"{pod.namespace}/{group}", size, where, size_field)
        if label:
            return None
        meta = dict(obj.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), POD_GROUP_LABEL: group}
        return {**obj, "metadata": meta}

    def attach(self, pods: Sequence[SimPod]) -> list[SimPod]:
        """``pods`` with their PodGroups set; a group without a size is an error naming its first member."""
        shared: dict[str, Mapping[str, Any]] = {}
        for key, (where, field_name) in self._first.items():
            if key not in self._sizes:
                raise SimInputError(f"{where}: {field_name}: required: no member of group {key} gives its size"
                                    + ("" if field_name == MIN_MEMBER_COLUMN else
                                       f", and the workload has no {PODGROUP_KIND} {key}"))
            obj = self._objects.get(key)
            if obj is not None:
                shared[key] = obj[0]
            else:
                ns, name = key.split("/", 1)
                shared[key] = {"apiVersion": PODGROUP_API, "kind": PODGROUP_KIND,
                               "metadata": {"name": name, "namespace": ns},
                               "spec": {"minMember": self._sizes[key][0]}}
        if not shared:
            return list(pods)
        return [replace(sp, pod_group=shared[k]) if (k := group_of(sp.pod)) in shared else sp for sp in pods]


# ---- a replay's memory of the groups --------------------------------------------------------


@dataclass(eq=False, slots=True)
class Gang:
    """One group during a replay."""

    group: PodGroup
    obj: Mapping[str, Any]
    """Its PodGroup object, as the workload gave it."""
    pending: list[tuple[int, SimPod, npt.NDArray[np.int64]]] = field(default_factory=list)
    """Members that arrived and wait for the group to be placed (arrival index, pod, demand), in arrival order."""
    arrived: int = 0
    state: str = GATHERING


class Gangs:
    """The workload's groups, for one replay."""

    def __init__(self, pods: Sequence[SimPod]) -> None:
        self.by_key: dict[str, Gang] = {}
        self.reached: set[str] = set()
        """Groups that had minMember members on nodes at some moment."""
        for sp in pods:
            if sp.pod_group is None:
                continue
            key = group_of(sp.pod)
            gang = self.by_key.get(key)
            if gang is None:
                try:
                    pg = podgroup_from_json(sp.pod_group)
                except ObjectError as e:
                    raise SimInputError(f"pod {sp.pod.key}: its PodGroup: {e}") from None
                if pg.min_member < 1:
                    raise SimInputError(f"PodGroup {pg.key}: spec.minMember: expected a whole number >= 1, "
                                        f"got {pg.min_member}")
                gang = self.by_key[key] = Gang(pg, sp.pod_group)
            if gang.group.key != key:
                raise SimInputError(f"pod {sp.pod.key}: metadata.labels.{POD_GROUP_LABEL}: names group {key or '-'} "
                                    f"but its PodGroup is {gang.group.key}")

    def of(self, sp: SimPod) -> Gang | None:
        """The group of a pod (None: it has none)."""
        return self.by_key.get(group_of(sp.pod)) if sp.pod_group is not None else None

    def note_placed(self, table: NodeTable, gang: Gang) -> None:
        """After a member was placed: has the group minMember members on nodes now?"""
        if PodGroups.of(table).assigned(gang.group.key) >= gang.group.min_member:
            self.reached.add(gang.group.key)

    def partial_members(self, table: NodeTable) -> list[PodInfo]:
        """Pods on nodes whose group never had minMember members on nodes."""
        placed = PodGroups.of(table).placed
        return [table.pods[k].pod for key in self.by_key if key not in self.reached
                for k in sorted(placed.get(key, ())) if k in table.pods]

    def counts(self) -> dict[str, int]:
        """``{"total", "placed", "failed"}``: groups, those that reached minMember, the others."""
        total, placed = len(self.by_key), len(self.reached & self.by_key.keys())
        return {"total": total, "placed": placed, "failed": total - placed}
