"""VolumeRestrictions: a pod may not share a node with another pod mounting the same
in-tree disk in a conflicting way, nor use a ReadWriteOncePod claim another pod
already uses (upstream's volumerestrictions plugin,
``pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go``).

Disk conflicts, between a volume of the pod and one of a pod on the node
(``isVolumeConflict``):
- GCE PD: the same ``pdName``, unless both mount it read-only;
- AWS EBS: the same ``volumeID``, always;
- ISCSI: the same ``iqn``, unless both are read-only;
- Ceph RBD: a monitor in common, the same pool and image, unless both are read-only
  (the pool defaults to ``rbd``, as the API server defaults it).
Such a node is ``node(s) had no available disk``.

ReadWriteOncePod: PreFilter looks up each ``persistentVolumeClaim`` of the pod (a
missing one rejects the pod everywhere, UnschedulableAndUnresolvable, with the
lister's NotFound text); when one with the ReadWriteOncePod access mode is used by
any pod placed anywhere in the cluster, every node is ``node has pod using
PersistentVolumeClaim with the same name and ReadWriteOncePod access mode``. Both
verdicts are Unschedulable: preempting the pod that holds the disk or the claim
helps. A pod with neither in-tree disks nor a ReadWriteOncePod claim in use skips
the plugin (upstream's PreFilter Skip).

Which placed pods use which disk and claim is kept by ``VolumeUsage``, a table
extension and TableListener, so that a decision looks up only the pods that
conflict. The ReadWriteOncePod verdict on a node depends on pods elsewhere, so in
the preemption dry run the plugin is a cross-node filter whose pods matter only on
the nodes holding such pods (``pods_matter``): those are dry-run one by one, as
upstream's RemovePod would see them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import numpy as np

from scoring.args import known_fields, mapping
from scoring.batching import SKIP, Signed
from scoring.framework import CycleState, FilterPlugin, NodeSubset, PreFilterPlugin, Reason
from scoring.objects import ObjectError, PodInfo
from scoring.plugins.volume_zone import not_found, uses_volumes
from scoring.table import BoolArray, NodeTable
from scoring.volumes import Volumes, pod_volumes

__all__ = ["NAME", "ERR_REASON_DISK_CONFLICT", "ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT", "READ_WRITE_ONCE_POD",
           "DiskKey", "VolumeUsage", "VolumeRestrictions", "disk_keys", "conflict_keys", "new"]

NAME: Final = "VolumeRestrictions"
ERR_REASON_DISK_CONFLICT: Final = "node(s) had no available disk"
ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT: Final = (
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode")
READ_WRITE_ONCE_POD: Final = "ReadWriteOncePod"
_DEFAULT_RBD_POOL: Final = "rbd"
_STATE_KEY: Final = "PreFilter" + NAME
_SOURCES: Final = frozenset({"persistentVolumeClaim", "gcePersistentDisk", "awsElasticBlockStore", "iscsi", "rbd"})
"""The volume sources the plugin reads: a pod with none of them skips it."""
_DISKS: Final = _SOURCES - {"persistentVolumeClaim"}

DiskKey = tuple[str, ...]
"""An in-tree disk as a placed pod mounts it: (kind, identity..., "ro"|"rw")."""


def _source(volume: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    src = volume.get(field)
    return src if isinstance(src, Mapping) else None


def _text(src: Mapping[str, Any], key: str, default: str = "") -> str:
    v = src.get(key)
    return v if isinstance(v, str) and v else default


def _mode(src: Mapping[str, Any]) -> str:
    return "ro" if src.get("readOnly") is True else "rw"


def disk_keys(volume: Mapping[str, Any]) -> list[DiskKey]:
    """The keys a placed pod's volume is indexed under (an RBD image once per monitor)."""
    if _DISKS.isdisjoint(volume):
        return []
    if (gce := _source(volume, "gcePersistentDisk")) is not None:
        return [("gce", _text(gce, "pdName"), _mode(gce))]
    if (ebs := _source(volume, "awsElasticBlockStore")) is not None:
        return [("ebs", _text(ebs, "volumeID"))]
    if (iscsi := _source(volume, "iscsi")) is not None:
        return [("iscsi", _text(iscsi, "iqn"), _mode(iscsi))]
    if (rbd := _source(volume, "rbd")) is not None:
        monitors = rbd.get("monitors")
        pool, image = _text(rbd, "pool", _DEFAULT_RBD_POOL), _text(rbd, "image")
        return [("rbd", pool, image, m, _mode(rbd)) for m in dict.fromkeys(monitors or ()) if isinstance(m, str)]
    return []


def conflict_keys(volume: Mapping[str, Any]) -> list[DiskKey]:
    """The keys of placed volumes that conflict with the pod's ``volume`` (isVolumeConflict):
    a read-only mount clashes only with read-write ones of the same disk, except for EBS."""
    out: list[DiskKey] = []
    for key in disk_keys(volume):
        if key[0] == "ebs":
            out.append(key)
            continue
        out.append((*key[:-1], "rw"))
        if key[-1] == "rw":
            out.append((*key[:-1], "ro"))
    return out


def _volumes_of(pod: PodInfo) -> Sequence[Mapping[str, Any]]:
    spec = pod.raw.get("spec")
    vols = spec.get("volumes") if isinstance(spec, Mapping) else None
    return [v for v in vols if isinstance(v, Mapping)] if isinstance(vols, list) else []


def _claim_names(volumes: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """``persistentVolumeClaim`` claim names, as upstream's PVCRefCounts (not ephemeral ones)."""
    for v in volumes:
        ref = _source(v, "persistentVolumeClaim")
        if ref is not None:
            yield _text(ref, "claimName")


class VolumeUsage:
    """Which placed pods mount each in-tree disk and use each claim (by pod key)."""

    KEY: ClassVar[str] = "VolumeRestrictions/usage"

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        self.disks: dict[DiskKey, dict[str, int]] = {}
        self.claims: dict[str, dict[str, int]] = {}
        """``namespace/claim`` -> pod key -> how many of its volumes name the claim."""
        self._by_pod: dict[str, tuple[list[DiskKey], list[str]]] = {}
        for placed in table.pods.values():
            self.pod_added(table, placed.pod, -1)

    @classmethod
    def of(cls, table: NodeTable) -> VolumeUsage:
        """The table's index, built from its current pods on first use."""
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, VolumeUsage):
            ext = VolumeUsage(table)
            table.extensions[cls.KEY] = ext
            table.listeners.append(ext)
        return ext

    def rows(self, pod_keys: Iterator[str]) -> BoolArray:
        """The nodes ``[:n]`` of the placed pods ``pod_keys``."""
        table = self._table
        mask = np.zeros(table.n, np.bool_)
        for k in pod_keys:
            placed = table.pods.get(k)
            if placed is not None:
                mask[table.index[placed.node]] = True
        return mask

    def disk_holders(self, keys: Sequence[DiskKey]) -> Iterator[str]:
        for key in keys:
            yield from self.disks.get(key, ())

    def claim_users(self, claims: Sequence[str]) -> Iterator[str]:
        for c in claims:
            yield from self.claims.get(c, ())

    @staticmethod
    def _add(index: dict[Any, dict[str, int]], key: Any, pod: str, delta: int) -> None:
        users = index.setdefault(key, {})
        c = users.get(pod, 0) + delta
        if c > 0:
            users[pod] = c
        else:
            users.pop(pod, None)
            if not users:
                del index[key]

    # ---- TableListener --------------------------------------------------------------------

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        if not uses_volumes(pod, _SOURCES):
            return
        vols = _volumes_of(pod)
        disks = [k for v in vols for k in disk_keys(v)]
        claims = [f"{pod.namespace}/{c}" for c in _claim_names(vols)]
        if not disks and not claims:
            return
        self._by_pod[pod.key] = (disks, claims)
        for d in disks:
            self._add(self.disks, d, pod.key, +1)
        for c in claims:
            self._add(self.claims, c, pod.key, +1)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        disks, claims = self._by_pod.pop(pod.key, ([], []))
        for d in disks:
            self._add(self.disks, d, pod.key, -1)
        for c in claims:
            self._add(self.claims, c, pod.key, -1)

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        pass  # pods are indexed by key; their rows are looked up when asked

    def node_set(self, table: NodeTable, node: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _PreFilterState:
    conflicts: tuple[DiskKey, ...]
    """Disk keys of placed volumes the pod's in-tree disks clash with."""
    rwop: tuple[str, ...]
    """The pod's ReadWriteOncePod claims, ``namespace/name``."""
    skip: bool
    """Upstream's PreFilter Skip: no in-tree disk, and no ReadWriteOncePod claim in use."""


def _prefilter_state(pod: PodInfo, table: NodeTable) -> _PreFilterState | str:
    try:
        pod_volumes(pod)  # a malformed spec.volumes rejects the pod, naming the field
    except ObjectError as e:
        return str(e)
    vols = _volumes_of(pod)
    conflicts = tuple(dict.fromkeys(k for v in vols for k in conflict_keys(v)))
    needs_check = any(disk_keys(v) for v in vols)
    volumes = Volumes.of(table)
    rwop: list[str] = []
    for name in _claim_names(vols):
        claim = volumes.claim(pod.namespace, name)
        if claim is None:
            return not_found("persistentvolumeclaim", name)
        if READ_WRITE_ONCE_POD in claim.access_modes:
            rwop.append(f"{pod.namespace}/{name}")
    usage = VolumeUsage.of(table)
    in_use = any(True for _ in usage.claim_users(rwop))
    return _PreFilterState(conflicts, tuple(dict.fromkeys(rwop)), not needs_check and not in_use)


class VolumeRestrictions:
    name: Final = NAME

    def _state(self, pod: PodInfo, table: NodeTable, state: CycleState) -> _PreFilterState | str:
        cached = state.get(_STATE_KEY)
        if cached is None:
            cached = state[_STATE_KEY] = _prefilter_state(pod, table)
        return cached

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a pod without the volumes this plugin checks skips it; others are unsignable."""
        return "the pod has volumes that VolumeRestrictions checks" if uses_volumes(pod, _SOURCES) else Signed(SKIP)

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None:
        if not uses_volumes(pod, _SOURCES):
            return None
        got = self._state(pod, table, state)
        return got if isinstance(got, str) else None

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        if not uses_volumes(pod, _SOURCES):
            return None  # upstream's PreFilter Skip
        s = self._state(pod, table, state)
        n = table.n
        if isinstance(s, str):  # when the profile did not run PreFilter
            return [Reason(s, np.ones(n, np.bool_), unresolvable=True)]
        if s.skip:
            return None
        usage = VolumeUsage.of(table)
        reasons: list[Reason] = []
        disk = usage.rows(usage.disk_holders(s.conflicts)) if s.conflicts else np.zeros(n, np.bool_)
        if disk.any():
            reasons.append(Reason(ERR_REASON_DISK_CONFLICT, disk))
        if s.rwop and any(True for _ in usage.claim_users(s.rwop)) and not disk.all():
            reasons.append(Reason(ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT, ~disk))
        return reasons or None

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        if not uses_volumes(pod, _SOURCES):
            return False
        s = self._state(pod, table, state)
        return not isinstance(s, str) and not s.skip

    def pods_matter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> BoolArray:
        """The nodes whose pods count for the verdict: those holding a conflicting disk or
        using one of the pod's ReadWriteOncePod claims."""
        s = self._state(pod, table, state)
        if isinstance(s, str):
            return np.zeros(table.n, np.bool_)
        usage = VolumeUsage.of(table)
        return usage.rows(usage.disk_holders(s.conflicts)) | usage.rows(usage.claim_users(s.rwop))


def new(args: Mapping[str, Any], path: str) -> VolumeRestrictions:
    known_fields(mapping(args, path), (), path)
    return VolumeRestrictions()


_: type[FilterPlugin] = VolumeRestrictions
_p: type[PreFilterPlugin] = VolumeRestrictions
