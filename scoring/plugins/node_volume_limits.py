"""NodeVolumeLimits: a node takes a pod only while each CSI driver stays within the
number of volumes the node's CSINode says it can attach (upstream's nodevolumelimits
plugin, ``pkg/scheduler/framework/plugins/nodevolumelimits/csi.go`` and ``utils.go``).

What counts, as upstream's ``filterAttachableVolumes``: every claim of the pod
(``persistentVolumeClaim`` and generic ``ephemeral`` volumes, whose claim must be
controlled by the pod) as ``<driver>/<volume handle>`` -- of its PV's ``spec.csi``
when bound; through its StorageClass's provisioner, with a placeholder handle per
claim, when unbound or bound to a PV that does not exist -- and in-tree AWS EBS,
GCE PD, Azure Disk, Cinder and Portworx volumes (inline or as PVs) translated to
their CSI drivers as csi-translation-lib does, on nodes that have a CSINode
(``isCSIMigrationOn``). A volume several pods of a node use counts once, and a
volume of the pod that is already on the node adds nothing. The limits are
``CSINode.spec.drivers[].allocatable.count``; a node over the limit of a driver the
pod adds a volume of is ``node(s) exceed max volume count`` (unschedulable:
preempting a pod can free a slot). A missing claim of the pod, or an ephemeral claim
it does not own, rejects it on every node.

Beyond upstream, as vecsched's storage model defines: inline CSI volumes
(``spec.volumes[].csi``) count with one handle per pod and volume, and a driver whose
CSIDriver object says ``attachRequired: false`` counts nothing (nothing of it is
attached). VolumeAttachment objects are not read.

The counts of the pods already placed live in ``AttachedVolumes``, a table extension
and TableListener: per driver, the number of distinct volumes on each node (an int64
array over the table's rows), and which nodes hold each volume. Pods come and go
through the listener; claims, PVs and classes change behind the pods' backs (a claim
bound after its pod was placed), so each placed pod keeps the storage objects its
count was read from, and when ``Volumes.generation`` moved its count is read again
if any of them is no longer current (one lookup per storage object read, then only
the pods that read a changed one). A pod without volumes costs a dict lookup or two.
The objects to look up are those ``Volumes.changes_since`` names (all of them only
when its log does not reach back far enough), and the nodes' CSINodes are read again
only when the nodes or a CSINode changed: the work after each decision follows what
the decision changed, not the size of the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np

from scoring.args import known_fields, mapping
from scoring.batching import SKIP, Signed
from scoring.framework import CycleState, FilterPlugin, Reason
from scoring.objects import ObjectError, PodInfo
from scoring.plugins.volume_zone import BETA_ZONE, ZONE, not_found, uses_volumes
from scoring.table import BoolArray, IntArray, NodeTable
from scoring.volumes import PersistentVolume, Volumes, pod_volumes

__all__ = ["NAME", "ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED", "MIGRATED_PLUGINS", "Volume", "AttachedVolumes",
           "NodeVolumeLimits", "ebs_volume_id", "new"]

NAME: Final = "NodeVolumeLimits"
ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED: Final = "node(s) exceed max volume count"

MIGRATED_PLUGINS: Final = {
    "kubernetes.io/aws-ebs": "ebs.csi.aws.com",
    "kubernetes.io/gce-pd": "pd.csi.storage.gke.io",
    "kubernetes.io/azure-disk": "disk.csi.azure.com",
    "kubernetes.io/cinder": "cinder.csi.openstack.org",
    "kubernetes.io/portworx-volume": "pxd.portworx.com",
}
"""In-tree plugins whose volumes upstream counts as their CSI driver's (``isCSIMigrationOn``)."""
_UNCOUNTED_MIGRATABLE: Final = frozenset({"kubernetes.io/azure-file", "kubernetes.io/vsphere-volume"})
"""Migratable in-tree provisioners ``isCSIMigrationOn`` refuses: their claims count for nothing."""
_SOURCES: Final = {
    "awsElasticBlockStore": "kubernetes.io/aws-ebs",
    "gcePersistentDisk": "kubernetes.io/gce-pd",
    "azureDisk": "kubernetes.io/azure-disk",
    "cinder": "kubernetes.io/cinder",
    "portworxVolume": "kubernetes.io/portworx-volume",
}
"""Volume source field -> in-tree plugin, for the counted ones."""
_IN_TREE: Final = frozenset(_SOURCES)
_COUNTABLE: Final = frozenset({"persistentVolumeClaim", "ephemeral", "csi", *_SOURCES})
_UNSPECIFIED: Final = "UNSPECIFIED"
_EBS_VOLUME: Final = re.compile(r"vol-[^/]*")
_STATE_KEY: Final = "Filter" + NAME

Volume = tuple[str, str, bool]
"""(driver, volume handle, placeholder): upstream's ``<driver>/<handle>`` unique name;
``placeholder`` marks the handle made up for an unbound claim (``<namespace>/<claim>``),
which never equals a real one."""


def ebs_volume_id(kubernetes_id: str) -> str | None:
    """csi-translation-lib's KubernetesVolumeIDToEBSVolumeID: ``aws://<zone>/vol-...`` ->
    ``vol-...``; a bare id as it is; None for an ``aws://`` id of another shape."""
    if not kubernetes_id.startswith("aws://"):
        return kubernetes_id
    aws_id = kubernetes_id[len("aws://"):].partition("/")[2].strip("/")
    return aws_id if _EBS_VOLUME.fullmatch(aws_id) else None


def _gce_handle(pd_name: str, zone_label: str | None) -> str | None:
    """The GCE PD handle csi-translation-lib builds: zonal, regional (zones of one region
    joined by ``__``) or UNSPECIFIED; None when the zones name several regions."""
    zones = zone_label.split("__") if zone_label else [""]
    if len(zones) == 1 and zones[0]:
        return f"projects/{_UNSPECIFIED}/zones/{zones[0]}/disks/{pd_name}"
    if len(zones) > 1:
        regions = set()
        for z in zones:
            parts = z.split("-")
            if len(parts) != 3:
                return None
            regions.add("-".join(parts[:2]))
        if len(regions) != 1:
            return None
        return f"projects/{_UNSPECIFIED}/regions/{regions.pop()}/disks/{pd_name}"
    return f"projects/{_UNSPECIFIED}/zones/{_UNSPECIFIED}/disks/{pd_name}"


def _in_tree_handle(field: str, source: Mapping[str, Any], labels: Mapping[str, str] | None) -> str | None:
    """The CSI volume handle of an in-tree source (``labels``: the PV's, None inline)."""
    def text(key: str) -> str:
        v = source.get(key)
        return v if isinstance(v, str) else ""
    if field == "awsElasticBlockStore":
        return ebs_volume_id(text("volumeID"))
    if field == "gcePersistentDisk":
        zone = None if labels is None else (labels.get(BETA_ZONE) or labels.get(ZONE))
        return _gce_handle(text("pdName"), zone)
    if field == "azureDisk":
        return text("diskURI")
    return text("volumeID")  # cinder, portworxVolume


def _in_tree(spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    if _IN_TREE.isdisjoint(spec):
        return None
    for source in _SOURCES:
        src = spec.get(source)
        if isinstance(src, Mapping):
            return source, src
    return None


@dataclass(slots=True)
class _Resolution:
    """One pod's countable volumes, read from the storage objects in ``deps``."""

    volumes: dict[Volume, bool]
    """Volume -> whether it counts only on a node with a CSINode (a migrated in-tree one)."""
    error: str | None = None
    """The first error, on a node without a CSINode."""
    csinode_error: str | None = None
    """The first error, on a node with one (translating an inline volume can fail there only)."""
    deps: dict[Dep, object] = field(default_factory=dict)
    """The storage objects read (None: not found): the count holds while they are current."""


Dep = tuple[int, str, str]
"""A storage object a count was read from: (kind, name, namespace)."""
_CLAIM, _PV, _CLASS, _DRIVER, _CSINODE = range(5)
_DEP_KINDS: Final = {"PersistentVolumeClaim": _CLAIM, "PersistentVolume": _PV, "StorageClass": _CLASS,
                     "CSIDriver": _DRIVER, "CSINode": _CSINODE}
"""Volumes' kinds (as ``changes_since`` names them) -> the kind of Dep."""


def _lookup(volumes: Volumes, dep: Dep) -> object:
    kind, name, namespace = dep
    if kind == _CLAIM:
        return volumes.claim(namespace, name)
    if kind == _PV:
        return volumes.pv(name)
    if kind == _CLASS:
        return volumes.storage_class(name)
    if kind == _DRIVER:
        return volumes.driver(name)
    return volumes.csinode(name)


def _resolve(pod: PodInfo, volumes: Volumes, *, new_pod: bool) -> _Resolution:
    """Upstream's filterAttachableVolumes for ``pod``, for both kinds of node at once."""
    out = _Resolution({})
    deps = out.deps

    def look(kind: int, name: str) -> Any:
        dep = (kind, name, pod.namespace if kind == _CLAIM else "")
        obj = deps[dep] = _lookup(volumes, dep)
        return obj

    def fail(message: str, *, csinode_only: bool = False) -> None:
        if out.csinode_error is None:
            out.csinode_error = message
        if not csinode_only and out.error is None:
            out.error = message

    def count(driver: str, handle: str, placeholder: bool, csinode_only: bool) -> None:
        if not driver or not handle:
            return
        csi_driver = look(_DRIVER, driver)
        if csi_driver is not None and not csi_driver.attach_required:
            return  # nothing of it is attached
        vol = (driver, handle, placeholder)
        out.volumes[vol] = out.volumes.get(vol, True) and csinode_only

    try:
        parsed = pod_volumes(pod)
    except ObjectError as e:
        fail(str(e))
        return out
    claims, at = parsed.claims, 0
    for raw in parsed.raw_volumes:
        if raw.get("persistentVolumeClaim") is not None or raw.get("ephemeral") is not None:
            name = claims[at]  # pod_volumes lists the claims in this order
            at += 1
            ephemeral = name in parsed.ephemeral
            claim = look(_CLAIM, name)
            if claim is None:
                if new_pod:
                    fail(f"looking up PVC {pod.namespace}/{name}: {not_found('persistentvolumeclaim', name)}")
                continue  # an existing pod's missing claim is not counted
            if ephemeral and pod.uid not in claim.owners:  # ephemeral.VolumeIsForPod
                fail(f"PVC {pod.namespace}/{name} was not created for pod {pod.namespace}/{pod.name} "
                     "(pod is not owner)")
                continue
            pv = look(_PV, claim.volume_name) if claim.volume_name else None
            if pv is not None:
                _count_pv(pv, count)
                continue
            # Unbound, or bound to a PV not (yet) seen: count through the class (getCSIDriverInfoFromSC).
            class_name = claim.class_name
            sc = look(_CLASS, class_name) if class_name else None
            if sc is None or sc.provisioner in _UNCOUNTED_MIGRATABLE:
                continue
            handle = f"{pod.namespace}/{name}"
            migrated = MIGRATED_PLUGINS.get(sc.provisioner)
            if migrated is not None:
                count(migrated, handle, True, True)
            else:
                count(sc.provisioner, handle, True, False)
            continue
        inline = _in_tree(raw)
        if inline is not None:
            field, src = inline
            translated = _in_tree_handle(field, src, None)
            if translated is None:
                fail(f"converting volume({raw.get('name', '')}) from inline to csi: failed to translate "
                     f"Kubernetes ID to EBS Volume ID Invalid format for AWS volume ({src.get('volumeID')})",
                     csinode_only=True)
                continue
            count(MIGRATED_PLUGINS[_SOURCES[field]], translated, False, True)
    for driver, handle in parsed.inline_csi:
        count(driver, handle, False, False)
    return out


def _count_pv(pv: PersistentVolume, count: Callable[[str, str, bool, bool], None]) -> None:
    """getCSIDriverInfo for a bound claim's PV: its CSI source, or its in-tree one translated."""
    if pv.csi_driver:
        count(pv.csi_driver, pv.volume_handle, False, False)
        return
    spec = pv.raw.get("spec")
    inline = _in_tree(spec) if isinstance(spec, Mapping) else None
    if inline is None:
        return
    field, src = inline
    handle = _in_tree_handle(field, src, pv.labels)
    if handle is not None:
        count(MIGRATED_PLUGINS[_SOURCES[field]], handle, False, True)


def _countable(pod: PodInfo) -> bool:
    """Whether any volume of the pod could count (upstream's PreFilter, which skips the rest)."""
    return uses_volumes(pod, _COUNTABLE)


@dataclass(slots=True)
class _Placed:
    pod: PodInfo
    node: str
    resolution: _Resolution
    counted: tuple[Volume, ...]
    """What the pod adds to its node (the resolution, for that node's kind)."""
    deps: tuple[Dep, ...] = ()
    """What it is registered under in AttachedVolumes' dependency index."""


class AttachedVolumes:
    """Per node row: the distinct volumes of the pods placed there, counted per driver."""

    KEY: ClassVar[str] = "NodeVolumeLimits/attached"

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        self._volumes = Volumes.of(table)
        self._generation = self._volumes.generation
        self._capacity = table.capacity
        self._pods: dict[str, _Placed] = {}
        self._rows: list[dict[Volume, int]] = [{} for _ in range(table.capacity)]
        """Per row: volume -> how many of its pods use it."""
        self._holders: dict[Volume, set[int]] = {}
        self._counts: dict[str, IntArray] = {}
        """Driver -> distinct volumes per row."""
        self._seen: list[dict[tuple[str, str], object]] = [{} for _ in range(_CSINODE + 1)]
        """Per kind of Dep, (name, namespace) -> every storage object some placed pod's
        count was read from, as it was then."""
        self._dependents: dict[Dep, set[str]] = {}
        self._csinodes: list[object] = []
        self._limits: dict[str, IntArray] = {}
        self._limits_key: tuple[int, int] = (-1, -1)
        self._has_csinode: BoolArray = np.zeros(0, np.bool_)
        for key, placed in table.pods.items():
            if _countable(placed.pod):
                self._place(placed.pod, table.index[placed.node])

    @classmethod
    def of(cls, table: NodeTable) -> AttachedVolumes:
        """The table's extension, built from its current pods on first use."""
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, AttachedVolumes):
            ext = AttachedVolumes(table)
            table.extensions[cls.KEY] = ext
            table.listeners.append(ext)
        return ext

    # ---- counting -----------------------------------------------------------------------

    def _place(self, pod: PodInfo, row: int) -> None:
        placed = self._pods[pod.key] = _Placed(pod, self._table.names[row], _Resolution({}), ())
        self._count(placed, row)

    def _count(self, placed: _Placed, row: int) -> None:
        """(Re)read what ``placed`` adds to its node, and register what that was read from."""
        res = placed.resolution = _resolve(placed.pod, self._volumes, new_pod=False)
        vols = res.volumes
        if any(vols.values()):  # migrated in-tree volumes: they count where the node has a CSINode
            dep = (_CSINODE, placed.node, "")
            csinode = res.deps[dep] = self._volumes.csinode(placed.node)
        else:
            csinode = None
        self._register(placed, tuple(res.deps))
        counted = tuple(v for v, only in vols.items() if csinode is not None or not only)
        if counted != placed.counted:
            self._shift(placed.counted, row, -1)
            self._shift(counted, row, +1)
            placed.counted = counted

    def _register(self, placed: _Placed, deps: tuple[Dep, ...]) -> None:
        key = placed.pod.key
        for dep in placed.deps:
            users = self._dependents.get(dep)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._dependents[dep]
                    del self._seen[dep[0]][dep[1:]]
        for dep in deps:
            users = self._dependents.get(dep)
            if users is None:
                users = self._dependents[dep] = set()
                # The object as this pod's count read it; an entry already there keeps the
                # object the older counts read, so that a change since is still noticed.
                self._seen[dep[0]][dep[1:]] = placed.resolution.deps[dep]
            users.add(key)
        placed.deps = deps

    def _shift(self, vols: Sequence[Volume], row: int, delta: int) -> None:
        if not vols:
            return
        if self._capacity < self._table.capacity:
            self._grow()
        used = self._rows[row]
        for v in vols:
            if delta < 0 and v not in used:
                continue
            c = used.get(v, 0) + delta
            if c > 0:
                used[v] = c
                if c == 1 and delta > 0:
                    self._holders.setdefault(v, set()).add(row)
                    self._column(v[0])[row] += 1
                continue
            used.pop(v, None)
            holders = self._holders.get(v)
            if holders is not None:
                holders.discard(row)
                if not holders:
                    del self._holders[v]
            self._column(v[0])[row] -= 1

    def _column(self, driver: str) -> IntArray:
        col = self._counts.get(driver)
        if col is None:
            col = self._counts[driver] = np.zeros(self._capacity, np.int64)
        return col

    def _grow(self) -> None:
        cap = self._table.capacity
        for d, col in self._counts.items():
            self._counts[d] = np.concatenate([col, np.zeros(cap - len(col), np.int64)])
        self._rows += [{} for _ in range(cap - len(self._rows))]
        self._capacity = cap

    def sync(self) -> None:
        """Read again the counts of the placed pods whose storage objects changed: one
        lookup per object some count was read from, then only the pods that read a
        changed one (every pod when the table's Volumes was replaced)."""
        if self._replaced():
            return
        volumes = self._volumes
        if volumes.generation == self._generation:
            return
        changed: list[Dep] = []
        since = volumes.changes_since(self._generation)
        if since is not None:  # only the objects changed since, when the log reaches back that far
            for kind_name, key in since:
                kind = _DEP_KINDS.get(kind_name)
                if kind is None:
                    continue
                ns, _, name = key.rpartition("/") if kind == _CLAIM else ("", "", key)
                seen = self._seen[kind]
                if (name, ns) in seen and _lookup(volumes, (kind, name, ns)) is not seen[(name, ns)]:
                    changed.append((kind, name, ns))
        else:
            claim = volumes.claim
            for (name, ns), obj in self._seen[_CLAIM].items():
                if claim(ns, name) is not obj:
                    changed.append((_CLAIM, name, ns))
            for kind, look in ((_PV, volumes.pv), (_CLASS, volumes.storage_class), (_DRIVER, volumes.driver),
                               (_CSINODE, volumes.csinode)):
                for (name, ns), obj in self._seen[kind].items():
                    if look(name) is not obj:
                        changed.append((kind, name, ns))
        stale: set[str] = set()
        for dep in changed:
            stale |= self._dependents[dep]
        self._recount(stale)

    def _replaced(self) -> bool:
        """Follow a replaced Volumes extension (every count is read again then)."""
        volumes = Volumes.of(self._table)
        if volumes is self._volumes:
            return False
        self._volumes = volumes
        self._limits_key, self._csinodes = (-1, -1), []
        self._recount(set(self._pods))
        return True

    def _recount(self, keys: set[str]) -> None:
        table = self._table
        for key in keys:
            self._register(self._pods[key], ())
        for key in keys:
            placed = self._pods[key]
            self._count(placed, table.index[placed.node])
        self._generation = self._volumes.generation

    # ---- what the filter reads ------------------------------------------------------------

    def attached(self, driver: str) -> IntArray:
        """Distinct volumes of ``driver`` per node ``[:n]``."""
        if self._capacity < self._table.capacity:
            self._grow()
        return self._column(driver)[: self._table.n]

    def holding(self, vol: Volume) -> BoolArray:
        """Nodes ``[:n]`` where a placed pod uses ``vol``."""
        mask = np.zeros(self._table.n, np.bool_)
        rows = self._holders.get(vol)
        if rows:
            mask[list(rows)] = True
        return mask

    def node_limits(self) -> tuple[BoolArray, dict[str, IntArray]]:
        """Which nodes ``[:n]`` have a CSINode, and per driver the nodes' allocatable count
        (-1: no limit), read again when nodes or storage objects changed."""
        table = self._table
        self._replaced()
        key = (table.node_generation, self._volumes.generation)
        if key != self._limits_key and key[0] == self._limits_key[0]:
            since = self._volumes.changes_since(self._limits_key[1])
            if since is not None and not any(kind == "CSINode" for kind, _ in since):
                self._limits_key = key  # the same nodes, and no CSINode changed
        if key != self._limits_key:
            n = table.n
            csinodes = [self._volumes.csinode(name) for name in table.names]
            if len(csinodes) != len(self._csinodes) or any(a is not b for a, b in zip(csinodes, self._csinodes)):
                self._has_csinode = np.fromiter((c is not None for c in csinodes), np.bool_, n)
                limits: dict[str, IntArray] = {}
                for row, c in enumerate(csinodes):
                    if c is None:
                        continue
                    for d in c.drivers.values():
                        if d.allocatable_count is not None:
                            limits.setdefault(d.name, np.full(n, -1, np.int64))[row] = d.allocatable_count
                self._limits = limits
                self._csinodes = list(csinodes)
            self._limits_key = key
        return self._has_csinode, self._limits

    # ---- TableListener --------------------------------------------------------------------

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        if _countable(pod):
            self._place(pod, node)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        placed = self._pods.pop(pod.key, None)
        if placed is not None:
            self._shift(placed.counted, node, -1)
            self._register(placed, ())

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        moved = self._rows[src]
        self._rows[dst], self._rows[src] = moved, {}
        for v in moved:
            holders = self._holders[v]
            holders.discard(src)
            holders.add(dst)
        for col in self._counts.values():
            col[dst], col[src] = col[src], 0

    def node_set(self, table: NodeTable, node: int) -> None:
        if self._capacity < table.capacity:
            self._grow()


class NodeVolumeLimits:
    name: Final = NAME
    node_local: Final = True
    """Its verdict on a node reads only the pods placed on that node (through the
    extension, which follows them): the preemption dry run removes victims and asks again."""

    def _new_volumes(self, pod: PodInfo, table: NodeTable, state: CycleState) -> _Resolution:
        volumes = Volumes.of(table)
        cached = state.get(_STATE_KEY)
        if isinstance(cached, tuple) and cached[0] == volumes.generation:
            return cached[1]  # type: ignore[no-any-return]
        res = _resolve(pod, volumes, new_pod=True)
        state[_STATE_KEY] = (volumes.generation, res)
        return res

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a pod without countable volumes skips this plugin; others are unsignable."""
        return "the pod has volumes that NodeVolumeLimits counts" if _countable(pod) else Signed(SKIP)

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        if not _countable(pod):
            return None  # upstream's PreFilter Skip
        res = self._new_volumes(pod, table, state)
        ext = AttachedVolumes.of(table)
        has_csinode, limits = ext.node_limits()
        n = table.n
        reasons: list[Reason] = []
        errored = np.zeros(n, np.bool_)
        for message, mask in ((res.error, ~has_csinode), (res.csinode_error, has_csinode)):
            if message is not None and mask.any():
                reasons.append(Reason(message, mask, unresolvable=True))
                errored |= mask
        wanted = {d for d, _, _ in res.volumes if d in limits}
        if not wanted:
            return reasons or None  # no node limits a driver the pod adds a volume of
        ext.sync()
        exceed = np.zeros(n, np.bool_)
        for driver in wanted:
            adds = np.zeros(n, np.int64)
            for vol, csinode_only in res.volumes.items():
                if vol[0] != driver:
                    continue
                new = ~ext.holding(vol)
                if csinode_only:
                    new &= has_csinode
                adds += new
            limit = limits[driver]
            exceed |= (adds > 0) & (limit >= 0) & (ext.attached(driver) + adds > limit)
        exceed &= ~errored
        if exceed.any():
            reasons.append(Reason(ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED, exceed))
        return reasons or None

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        return _countable(pod)


def new(args: Mapping[str, Any], path: str) -> NodeVolumeLimits:
    known_fields(mapping(args, path), (), path)
    return NodeVolumeLimits()


_: type[FilterPlugin] = NodeVolumeLimits
