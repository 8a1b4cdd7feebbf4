"""The cluster's storage objects as the volume plugins read them: PersistentVolumes,
PersistentVolumeClaims, StorageClasses, CSINodes, CSIDrivers and CSIStorageCapacities.

Each object is read once from its JSON into a small frozen record
(``scoring.volume_objects``, whose names are re-exported here) and kept in ``Volumes``, a table extension (``Volumes.of(table)``) that the live cache's
informers -- or a snapshot, for ``explain`` and ``sim`` -- feed through ``apply`` and
``delete``.

PersistentVolumes and claims are held as upstream's AssumeCache
(``pkg/scheduler/util/assumecache``) holds them: VolumeBinding's Reserve *assumes* a
copy -- a PV pre-bound to a claim, a claim with the selected-node annotation -- that
hides the informer's version from every later decision, until it is restored (the pod
was not bound after all) or the informer delivers a version newer than the one the
copy was made from (the API has caught up). ``api_pv``/``api_claim`` read past the
assumed copies, as upstream's ``GetAPIPV``/``GetAPIPVC``, for ``bindings_done``.

So that the plugins' per-decision work follows what changed rather than how many
objects the cluster holds, ``Volumes`` also keeps, as the objects come and go and are
assumed and restored: the PVs of each class a claim could bind (no claimRef, not being
deleted, phase Available: what upstream's FindMatchingVolume considers for a claim
not pre-bound), smallest first, with how many there are of each ``pv_shape``; the PVs
whose claimRef names each claim; and a bounded log of the latest changes
(``changes_since``).

A PV's ``spec.nodeAffinity.required`` is a NodeSelector, matched over the node table's
labels with NodeAffinity's matcher (``scoring.plugins.node_affinity``). As upstream's
``volume.CheckNodeAffinity`` matches it against a node made of the node's labels
alone, a ``matchFields`` requirement sees an empty node name here too.

``VolumeBindingPlan`` is what VolumeBinding's Reserve decided for a pod (the PVs to
pre-bind, the claims to provision on the chosen node), and ``bindings_done`` is
upstream's ``volumeBinder.checkBindings``: whether the PV controller has finished.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from scoring.objects import NodeInfo, ObjectError
from scoring.table import NodeTable
from scoring.volume_objects import (BETA_DEFAULT_CLASS_ANNOTATION, BETA_STORAGE_CLASS, BIND_COMPLETED, BLOCK,
                                    BOUND_BY_CONTROLLER, CLAIM_LOST, DEFAULT_CLASS_ANNOTATION, FILESYSTEM, IMMEDIATE,
                                    KINDS, NO_PROVISIONER, SELECTED_NODE, STORAGE, VOLUME_AVAILABLE,
                                    VOLUME_BINDING_PLAN, WAIT_FOR_FIRST_CONSUMER, ClaimRef, CSIDriver, CSINode,
                                    CSINodeDriver, CSIStorageCapacity, PersistentVolume, PersistentVolumeClaim,
                                    PodVolumes, StorageClass, capacity_from_json, csidriver_from_json,
                                    csinode_from_json, pod_volumes, pv_from_json, pvc_from_json,
                                    storage_class_from_json)

__all__ = [
    "SELECTED_NODE", "BIND_COMPLETED", "BOUND_BY_CONTROLLER", "NO_PROVISIONER", "IMMEDIATE",
    "WAIT_FOR_FIRST_CONSUMER", "DEFAULT_CLASS_ANNOTATION", "BETA_DEFAULT_CLASS_ANNOTATION", "BETA_STORAGE_CLASS",
    "FILESYSTEM", "BLOCK", "VOLUME_AVAILABLE", "CLAIM_LOST", "STORAGE", "KINDS", "VOLUME_BINDING_PLAN",
    "ClaimRef", "PersistentVolume", "PersistentVolumeClaim", "StorageClass", "CSINodeDriver", "CSINode",
    "CSIDriver", "CSIStorageCapacity", "PodVolumes", "VolumeBindingPlan", "Volumes",
    "pv_from_json", "pvc_from_json", "storage_class_from_json", "csinode_from_json", "csidriver_from_json",
    "capacity_from_json", "pod_volumes", "pv_node_matches", "bindings_done", "is_fully_bound", "with_claim_ref",
    "with_selected_node", "Shape", "pv_shape",
]


# ---- node affinity of a PV -----------------------------------------------------------------


def pv_node_matches(pv: PersistentVolume, node: NodeInfo) -> bool:
    """Upstream's volume.CheckNodeAffinity for one node (its labels)."""
    from scoring.plugins.node_affinity import terms_mask

    if pv.terms is None:
        return True
    one = NodeTable(capacity=1)
    one.set_node(node)
    return bool(terms_mask(pv.terms, one)[0])


# ---- the cache -----------------------------------------------------------------------------


def _newer(new: str, old: str) -> bool:
    """Whether resourceVersion ``new`` is newer than ``old`` (upstream compares them as
    integers; a version that does not parse counts as newer when it differs)."""
    try:
        return int(new) > int(old)
    except ValueError:
        return new != old


def _older(new: str, old: str) -> bool:
    """Whether resourceVersion ``new`` is older than ``old``, when both are integers."""
    try:
        return int(new) < int(old)
    except ValueError:
        return False


_LOG_LIMIT: Final = 4096
"""Changes ``Volumes.changes_since`` remembers: a reader further behind looks at everything."""


Shape = tuple[str, str, tuple[str, ...]]
"""What a claim asks of a PV besides its size and labels: (volume mode, volume
attributes class, access modes)."""


def pv_shape(pv: PersistentVolume) -> Shape:
    return pv.volume_mode, pv.attributes_class, pv.access_modes


def _size_order(pv: PersistentVolume) -> tuple[int, str]:
    return pv.capacity, pv.name


def _unfile(index: dict[str, dict[str, PersistentVolume]], key: str, name: str) -> bool:
    """Drop ``name`` from ``index[key]``; whether it was there."""
    by_name = index.get(key)
    if by_name is None or by_name.pop(name, None) is None:
        return False
    if not by_name:
        del index[key]
    return True


def _meta_key(kind: str, obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    name = str(meta.get("name") or "")
    if kind in ("PersistentVolumeClaim", "CSIStorageCapacity"):
        return f"{meta.get('namespace') or 'default'}/{name}"
    return name


class Volumes:
    """The cluster's storage objects, as a table extension. Not a TableListener: nothing
    here follows the table's rows."""

    KEY: ClassVar[str] = "volumes"

    def __init__(self) -> None:
        self.generation = 0
        """Bumped on every change, assumptions included."""
        self._pvs: dict[str, PersistentVolume] = {}
        self._claims: dict[str, PersistentVolumeClaim] = {}
        self._assumed_pvs: dict[str, PersistentVolume] = {}
        self._assumed_claims: dict[str, PersistentVolumeClaim] = {}
        self._by_class: dict[str, dict[str, PersistentVolume]] = {}
        """Class -> PV name -> the PV as seen (assumed copy when one is assumed)."""
        self._available: dict[str, dict[str, PersistentVolume]] = {}
        """Class -> PV name -> the PVs as seen that a claim could bind: no claimRef, not
        being deleted, phase Available (upstream's FindMatchingVolume skips the others)."""
        self._by_size: dict[str, list[PersistentVolume]] = {}
        """Class -> the PVs of ``_available`` smallest first, then by name."""
        self._shapes: dict[str, dict[Shape, int]] = {}
        """Class -> how many PVs of ``_available`` have each shape."""
        self._prebound: dict[str, dict[str, PersistentVolume]] = {}
        """Claim key ``namespace/name`` -> PV name -> the PVs as seen whose claimRef names it."""
        self._log: deque[tuple[int, str, str]] = deque()
        """(generation, kind, key) of the latest changes, oldest first, at most _LOG_LIMIT."""
        self._log_floor = 0
        """``changes_since`` answers for any generation from this one on."""
        self._affinity_versions: dict[str, int] = {}
        self._classes: dict[str, StorageClass] = {}
        self._csinodes: dict[str, CSINode] = {}
        self._drivers: dict[str, CSIDriver] = {}
        self._capacities: dict[str, CSIStorageCapacity] = {}

    @classmethod
    def of(cls, table: NodeTable) -> Volumes:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, Volumes):
            ext = table.extensions[cls.KEY] = Volumes()
        return ext

    # ---- the informers' side ------------------------------------------------------------

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        """Add or update an object of ``kind`` (one of KINDS) from its JSON; ObjectError
        when unreadable, with nothing changed."""
        if kind == "PersistentVolume":
            pv = pv_from_json(obj)
            held = self._pvs.get(pv.name)
            if held is not None and _older(pv.resource_version, held.resource_version):
                return  # older than what is held (a relist racing an update): upstream ignores it
            assumed = self._assumed_pvs.get(pv.name)
            if assumed is not None and _newer(pv.resource_version, assumed.resource_version):
                del self._assumed_pvs[pv.name]  # the API caught up with (or overtook) the assumption
            self._pvs[pv.name] = pv
            self._index_pv(pv.name)
            key = pv.name
        elif kind == "PersistentVolumeClaim":
            claim = pvc_from_json(obj)
            key = claim.key
            held_claim = self._claims.get(key)
            if held_claim is not None and _older(claim.resource_version, held_claim.resource_version):
                return
            assumed_claim = self._assumed_claims.get(key)
            if assumed_claim is not None and _newer(claim.resource_version, assumed_claim.resource_version):
                del self._assumed_claims[key]
            self._claims[key] = claim
        elif kind == "StorageClass":
            sc = storage_class_from_json(obj)
            key = sc.name
            self._classes[key] = sc
        elif kind == "CSINode":
            node = csinode_from_json(obj)
            key = node.name
            self._csinodes[key] = node
        elif kind == "CSIDriver":
            driver = csidriver_from_json(obj)
            key = driver.name
            self._drivers[key] = driver
        elif kind == "CSIStorageCapacity":
            cap = capacity_from_json(obj)
            key = cap.key
            self._capacities[key] = cap
        else:
            raise ObjectError(kind, "kind", f"not a storage kind (known: {', '.join(KINDS)})")
        self._changed(kind, key)

    def delete(self, kind: str, obj: Mapping[str, Any]) -> None:
        """Forget an object by its ``metadata.name`` (and namespace); unknown is a no-op."""
        key = _meta_key(kind, obj)
        if kind == "PersistentVolume":
            self._pvs.pop(key, None)
            self._assumed_pvs.pop(key, None)
            self._index_pv(key)
        elif kind == "PersistentVolumeClaim":
            self._claims.pop(key, None)
            self._assumed_claims.pop(key, None)
        elif kind == "StorageClass":
            self._classes.pop(key, None)
        elif kind == "CSINode":
            self._csinodes.pop(key, None)
        elif kind == "CSIDriver":
            self._drivers.pop(key, None)
        elif kind == "CSIStorageCapacity":
            self._capacities.pop(key, None)
        else:
            raise ObjectError(kind, "kind", f"not a storage kind (known: {', '.join(KINDS)})")
        self._changed(kind, key)

    def _changed(self, kind: str, key: str) -> None:
        """Bump the generation and log what changed."""
        self.generation += 1
        log = self._log
        log.append((self.generation, kind, key))
        if len(log) > _LOG_LIMIT:
            self._log_floor = log.popleft()[0]

    def _index_pv(self, name: str) -> None:
        """Re-file PV ``name`` under the class of the version now seen (and among the
        available or pre-bound PVs as it is); a PV that comes, goes, changes class or
        changes node affinity bumps its classes' affinity versions."""
        before: PersistentVolume | None = None
        for by_name in self._by_class.values():
            before = by_name.pop(name, None) or before
        if before is not None:
            if _unfile(self._available, before.storage_class, name):
                by_size = self._by_size[before.storage_class]
                del by_size[bisect_left(by_size, (before.capacity, name), key=_size_order)]
                if not by_size:
                    del self._by_size[before.storage_class]
                shapes = self._shapes[before.storage_class]
                shape = pv_shape(before)
                shapes[shape] -= 1
                if not shapes[shape]:
                    del shapes[shape]
                    if not shapes:
                        del self._shapes[before.storage_class]
            if before.claim_ref is not None:
                _unfile(self._prebound, before.claim_ref.key, name)
        seen = self.pv(name)
        if seen is not None:
            self._by_class.setdefault(seen.storage_class, {})[name] = seen
            if seen.claim_ref is not None:
                self._prebound.setdefault(seen.claim_ref.key, {})[name] = seen
            elif not seen.deleting and seen.phase == VOLUME_AVAILABLE:
                self._available.setdefault(seen.storage_class, {})[name] = seen
                insort(self._by_size.setdefault(seen.storage_class, []), seen, key=_size_order)
                shapes = self._shapes.setdefault(seen.storage_class, {})
                shape = pv_shape(seen)
                shapes[shape] = shapes.get(shape, 0) + 1
        if before is None or seen is None or before.storage_class != seen.storage_class or before.terms != seen.terms:
            for pv in (before, seen):
                if pv is not None:
                    self._bump(self._affinity_versions, pv.storage_class)

    @staticmethod
    def _bump(versions: dict[str, int], class_name: str) -> None:
        versions[class_name] = versions.get(class_name, 0) + 1

    # ---- lookups (assumed versions first) ---------------------------------------------------

    def pv(self, name: str) -> PersistentVolume | None:
        """The PV as the scheduler sees it: the assumed version when one is assumed."""
        assumed = self._assumed_pvs.get(name)
        return assumed if assumed is not None else self._pvs.get(name)

    def claim(self, namespace: str, name: str) -> PersistentVolumeClaim | None:
        """The claim as the scheduler sees it: the assumed version when one is assumed."""
        key = f"{namespace}/{name}"
        assumed = self._assumed_claims.get(key)
        return assumed if assumed is not None else self._claims.get(key)

    def api_pv(self, name: str) -> PersistentVolume | None:
        """The PV as the API last delivered it (upstream's GetAPIPV)."""
        return self._pvs.get(name)

    def api_claim(self, key: str) -> PersistentVolumeClaim | None:
        """The claim ``namespace/name`` as the API last delivered it (upstream's GetAPIPVC)."""
        return self._claims.get(key)

    def is_assumed_pv(self, name: str) -> bool:
        return name in self._assumed_pvs

    def is_assumed_claim(self, key: str) -> bool:
        return key in self._assumed_claims

    def pvs(self) -> Iterable[PersistentVolume]:
        """Every PV (assumed versions where assumed)."""
        return [p for name in self._pvs if (p := self.pv(name)) is not None]

    def pvs_of_class(self, class_name: str) -> Mapping[str, PersistentVolume]:
        """PVs of ``class_name`` by name (assumed versions): upstream's ListPVs(class)."""
        return self._by_class.get(class_name, {})

    def available_of_class(self, class_name: str) -> Mapping[str, PersistentVolume]:
        """PVs of ``class_name`` by name (assumed versions) that a claim could bind: no
        claimRef, not being deleted, phase Available."""
        return self._available.get(class_name, {})

    def available_by_size(self, class_name: str) -> Sequence[PersistentVolume]:
        """``available_of_class(class_name)`` smallest first (``capacity``), then by name
        (the order FindMatchingVolume's smallest fit takes them in). Read it, do not keep it."""
        return self._by_size.get(class_name, ())

    def available_shapes(self, class_name: str) -> Mapping[Shape, int]:
        """How many PVs of ``available_of_class(class_name)`` have each ``pv_shape``."""
        return self._shapes.get(class_name, {})

    def prebound_to(self, claim_key: str) -> Mapping[str, PersistentVolume]:
        """PVs by name (assumed versions, any class) whose claimRef names the claim
        ``namespace/name`` (its uid unchecked: see ``PersistentVolume.is_bound_to``)."""
        return self._prebound.get(claim_key, {})

    def changes_since(self, generation: int) -> set[tuple[str, str]] | None:
        """The objects changed after ``generation`` (assumptions and restores included), as
        (kind, key) -- key the name, or ``namespace/name`` for claims and capacities; None
        when ``generation`` is older than the changes kept (look at everything then)."""
        if generation < self._log_floor:
            return None
        out: set[tuple[str, str]] = set()
        for gen, kind, key in reversed(self._log):
            if gen <= generation:
                break
            out.add((kind, key))
        return out

    def affinity_version(self, class_name: str) -> int:
        """Changes whenever the set of PVs of ``class_name`` or one's node affinity changes
        (not when a PV is only bound or assumed): a key for per-class node masks."""
        return self._affinity_versions.get(class_name, 0)

    def storage_class(self, name: str) -> StorageClass | None:
        return self._classes.get(name)

    def default_class(self) -> StorageClass | None:
        """Upstream's GetDefaultClass: among the classes marked default, the newest
        (then the first by name)."""
        defaults = sorted((sc for sc in self._classes.values() if sc.is_default), key=lambda sc: sc.name)
        return max(defaults, key=lambda sc: sc.created) if defaults else None  # max keeps the first of equals

    def csinode(self, node: str) -> CSINode | None:
        return self._csinodes.get(node)

    def driver(self, name: str) -> CSIDriver | None:
        return self._drivers.get(name)

    def capacities(self) -> Iterable[CSIStorageCapacity]:
        return self._capacities.values()

    # ---- the assume cache ---------------------------------------------------------------------

    def assume_pv(self, pv: PersistentVolume) -> None:
        """Hide the informer's version of ``pv.name`` behind ``pv`` (upstream's Assume).
        ValueError when the PV is unknown or ``pv`` was made from an older version than
        the one now held (the cache is unchanged then)."""
        held = self.pv(pv.name)
        if held is None:
            raise ValueError(f'could not find v1.PersistentVolume "{pv.name}"')
        if _newer(held.resource_version, pv.resource_version) and held.resource_version and pv.resource_version:
            raise ValueError(f'v1.PersistentVolume "{pv.name}" is out of sync '
                             f"(stored: {held.resource_version}, assume: {pv.resource_version})")
        self._assumed_pvs[pv.name] = pv
        self._index_pv(pv.name)
        self._changed("PersistentVolume", pv.name)

    def assume_claim(self, claim: PersistentVolumeClaim) -> None:
        """As ``assume_pv``, for a claim."""
        held = self.claim(claim.namespace, claim.name)
        if held is None:
            raise ValueError(f'could not find v1.PersistentVolumeClaim "{claim.key}"')
        if _newer(held.resource_version, claim.resource_version) and held.resource_version and claim.resource_version:
            raise ValueError(f'v1.PersistentVolumeClaim "{claim.key}" is out of sync '
                             f"(stored: {held.resource_version}, assume: {claim.resource_version})")
        self._assumed_claims[claim.key] = claim
        self._changed("PersistentVolumeClaim", claim.key)

    def restore_pv(self, name: str) -> None:
        """Drop the assumed version of PV ``name`` (upstream's Restore); no-op when none."""
        if self._assumed_pvs.pop(name, None) is not None:
            self._index_pv(name)
            self._changed("PersistentVolume", name)

    def restore_claim(self, key: str) -> None:
        """Drop the assumed version of claim ``namespace/name``; no-op when none."""
        if self._assumed_claims.pop(key, None) is not None:
            self._changed("PersistentVolumeClaim", key)


# ---- the binding plan ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolumeBindingPlan:
    """What VolumeBinding's Reserve decided for a pod on ``node`` (upstream's PodVolumes
    after AssumePodVolumes), executed by the live scheduler's PreBind."""

    node: str
    bindings: tuple[tuple[str, str], ...]
    """(PV name, claim key ``namespace/name``): PVs the scheduler pre-binds to claims."""
    provisions: tuple[str, ...]
    """Claim keys to provision on ``node`` (the selected-node annotation)."""
    claims: tuple[str, ...]
    """Every claim key of the pod."""
    timeout: float = 600.0
    """VolumeBindingArgs.bindTimeoutSeconds."""


def is_fully_bound(claim: PersistentVolumeClaim) -> bool:
    """Upstream's isPVCFullyBound: a volume named and the bind-completed annotation set."""
    return bool(claim.volume_name) and BIND_COMPLETED in claim.annotations


def bindings_done(volumes: Volumes, plan: VolumeBindingPlan, node: NodeInfo) -> tuple[bool, str]:
    """Upstream's volumeBinder.checkBindings over the API's versions of the objects.

    (True, "") when every PV pre-bound and every claim provisioned by the plan is done:
    the claim fully bound, the PV's claimRef kept (with a uid) and its node affinity
    matching ``node``. (False, "") while the PV controller is still at work -- or while
    the informer has not yet delivered the update the PreBind made (the assumed copy
    still hides it: keep it assumed until the wait ends). (False, message) for an error
    that will not heal, with upstream's message; the caller reports it as upstream's
    BindPodVolumes does, ``binding volumes: <message>``.
    """
    for pv_name, claim_key in plan.bindings:
        pv = volumes.api_pv(pv_name)
        if pv is None:
            return False, f'failed to check binding: could not find v1.PersistentVolume "{pv_name}"'
        claim = volumes.api_claim(claim_key)
        if claim is None:
            return False, f'failed to check binding: could not find v1.PersistentVolumeClaim "{claim_key}"'
        if volumes.is_assumed_pv(pv_name):
            return False, ""  # the update of the PV has not come back from the API yet
        if not pv_node_matches(pv, node):
            return False, (f'pv "{pv.name}" node affinity doesn\'t match node "{node.name}": '
                           "no matching NodeSelectorTerms")
        if pv.claim_ref is None or not pv.claim_ref.uid:
            return False, f'ClaimRef got reset for pv "{pv.name}"'
        if not is_fully_bound(claim):
            return False, ""
    for claim_key in plan.provisions:
        claim = volumes.api_claim(claim_key)
        if claim is None:
            return False, f'failed to check provisioning pvc: could not find v1.PersistentVolumeClaim "{claim_key}"'
        if volumes.is_assumed_claim(claim_key):
            return False, ""
        meta = claim.raw.get("metadata") if isinstance(claim.raw, Mapping) else None
        if not isinstance(meta, Mapping) or meta.get("annotations") is None:
            # Go's nil map: the API leaves an empty annotations map out of the object.
            return False, f'selectedNode annotation reset for PVC "{claim.name}"'
        if claim.annotations.get(SELECTED_NODE, "") != plan.node:
            # The provisioner removes the annotation when it cannot provision: retry.
            return False, f'provisioning failed for PVC "{claim.name}"'
        if claim.volume_name:
            pv = volumes.api_pv(claim.volume_name)
            if pv is None:
                return False, ""  # not delivered yet; a deleted PV unbinds the claim in time
            if not pv_node_matches(pv, node):
                return False, (f'pv "{pv.name}" node affinity doesn\'t match node "{node.name}": '
                               "no matching NodeSelectorTerms")
        if not is_fully_bound(claim):
            return False, ""
    return True, ""


def with_claim_ref(pv: PersistentVolume, claim: PersistentVolumeClaim) -> tuple[PersistentVolume, bool]:
    """Upstream's GetBindVolumeToClaim: ``pv`` pre-bound to ``claim`` (claimRef set, and
    BOUND_BY_CONTROLLER unless the user had pre-bound it), and whether anything changed."""
    dirty = False
    annotations = dict(pv.annotations)
    claim_ref = pv.claim_ref
    set_by_us = not pv.is_bound_to(claim)
    if claim_ref is None or (claim_ref.name, claim_ref.namespace, claim_ref.uid) != (claim.name, claim.namespace, claim.uid):
        claim_ref = ClaimRef(claim.namespace, claim.name, claim.uid)
        dirty = True
    if set_by_us and BOUND_BY_CONTROLLER not in annotations:
        annotations[BOUND_BY_CONTROLLER] = "yes"
        dirty = True
    if not dirty:
        return pv, False
    raw = dict(pv.raw)
    raw["metadata"] = {**(raw.get("metadata") or {}), "annotations": annotations}
    raw["spec"] = {**(raw.get("spec") or {}), "claimRef": {
        "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": claim.namespace, "name": claim.name,
        "uid": claim.uid, "resourceVersion": claim.resource_version}}
    return replace(pv, annotations=annotations, claim_ref=claim_ref, raw=raw), True


def with_selected_node(claim: PersistentVolumeClaim, node: str) -> PersistentVolumeClaim:
    """``claim`` with the SELECTED_NODE annotation set to ``node``."""
    annotations = {**claim.annotations, SELECTED_NODE: node}
    raw = dict(claim.raw)
    raw["metadata"] = {**(raw.get("metadata") or {}), "annotations": annotations}
    return replace(claim, annotations=annotations, raw=raw)

