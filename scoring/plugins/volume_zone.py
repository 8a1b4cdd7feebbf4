"""VolumeZone: a pod whose bound PersistentVolumes carry zone or region labels goes only
to nodes in those zones and regions (upstream's volumezone plugin,
``pkg/scheduler/framework/plugins/volumezone/volume_zone.go``).

Semantics, as upstream:
- Only ``spec.volumes[].persistentVolumeClaim`` volumes count (not generic ephemeral
  ones). A claim bound to a PV (``spec.volumeName``) contributes the PV's labels
  ``failure-domain.beta.kubernetes.io/zone``, ``.../region``,
  ``topology.kubernetes.io/zone`` and ``.../region``; a value may name several zones
  joined by ``__`` (``LabelZonesToSet``: blanks trimmed, a value with an empty zone is
  ignored). The PV's ``spec.nodeAffinity`` is not looked at here (VolumeBinding does).
- An unbound claim of a WaitForFirstConsumer class is skipped; any other unbound
  claim rejects the pod on every node (``PersistentVolumeClaim had no pv name and
  storageClass name`` without a class, ``PersistentVolume had no name`` for an
  Immediate one), as do a missing claim, PV or class (the informer listers'
  NotFound text). These are upstream's PreFilter errors, UnschedulableAndUnresolvable.
- A node without any of the four labels takes the pod (a single-zone cluster whose
  nodes are not labelled). Otherwise every PV label must be matched: by the node's
  label of the same key or, for a beta key the node lacks, by the node's GA key.
  A mismatch is ``node(s) had no available volume zone``, unresolvable.

vecsched reads classes with the API server's defaulting applied (``volumeBindingMode``
absent is Immediate), so upstream's ``VolumeBindingMode not set`` cannot occur.
The node side is a few comparisons of interned label codes over all nodes, cached
per set of PV topologies until a node changes: replicas of a StatefulSet whose
volumes are in one zone share one mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from scoring.args import known_fields, mapping
from scoring.batching import SKIP, Signed
from scoring.framework import CycleState, FilterPlugin, NodeOnlyFilter, NodeSubset, PreFilterPlugin, Reason
from scoring.objects import ObjectError, PodInfo
from scoring.safe_input import is_mapping
from scoring.table import BoolArray, NodeTable, read_only
from scoring.volumes import WAIT_FOR_FIRST_CONSUMER, PersistentVolume, Volumes, pod_volumes

__all__ = [
    "NAME", "ERR_REASON_CONFLICT", "ERR_NO_PV_NAME_AND_CLASS", "ERR_NO_PV_NAME", "BETA_ZONE", "BETA_REGION",
    "ZONE", "REGION", "TOPOLOGY_LABELS", "Topology", "VolumeZone", "not_found",
    "label_zones_to_set", "pv_topologies", "conflicting_nodes", "uses_volumes", "new",
]

NAME: Final = "VolumeZone"
ERR_REASON_CONFLICT: Final = "node(s) had no available volume zone"
ERR_NO_PV_NAME_AND_CLASS: Final = "PersistentVolumeClaim had no pv name and storageClass name"
ERR_NO_PV_NAME: Final = "PersistentVolume had no name"

BETA_ZONE: Final = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION: Final = "failure-domain.beta.kubernetes.io/region"
ZONE: Final = "topology.kubernetes.io/zone"
REGION: Final = "topology.kubernetes.io/region"
TOPOLOGY_LABELS: Final = (BETA_ZONE, BETA_REGION, ZONE, REGION)
"""Upstream's topologyLabels, in its order."""
_GA: Final = {BETA_ZONE: ZONE, BETA_REGION: REGION}
"""translateToGALabel: the GA key a beta PV label falls back to on the node."""
MULTI_ZONE_DELIMITER: Final = "__"
_STATE_KEY: Final = "PreFilter" + NAME
_CLAIMS: Final = frozenset({"persistentVolumeClaim"})

Topology = tuple[str, frozenset[str]]
"""A PV label key and the zones (or regions) its value names."""


def not_found(resource: str, name: str) -> str:
    """The NotFound error of an informer lister (``errors.NewNotFound``):
    ``persistentvolumeclaim "data" not found``."""
    return f'{resource} "{name}" not found'


def label_zones_to_set(value: str) -> frozenset[str] | None:
    """volumehelpers.LabelZonesToSet: the ``__``-separated zones, trimmed; None (upstream's
    error, and the label is then ignored) when one of them is empty."""
    zones = [z.strip() for z in value.split(MULTI_ZONE_DELIMITER)]
    if any(not z for z in zones):
        return None
    return frozenset(zones)


def pv_topologies(pv: PersistentVolume) -> list[Topology]:
    """Upstream's getPVTopologies: each topology label of the PV with its zone set."""
    out: list[Topology] = []
    for key in TOPOLOGY_LABELS:
        value = pv.labels.get(key)
        if value is None:
            continue
        zones = label_zones_to_set(value)
        if zones is not None:
            out.append((key, zones))
    return out


def _pod_topologies(pod: PodInfo, volumes: Volumes) -> tuple[Topology, ...] | str:
    """Upstream's getPVbyPod: the topologies of the pod's bound PVs, or the message that
    rejects the pod (a malformed ``spec.volumes`` too, naming the field: an empty
    claimName, upstream's ``PersistentVolumeClaim had no name``, is one)."""
    try:
        pv_claims = pod_volumes(pod)
    except ObjectError as e:
        return str(e)
    out: list[Topology] = []
    for name in pv_claims.claims:
        if name in pv_claims.ephemeral:
            continue
        claim = volumes.claim(pod.namespace, name)
        if claim is None:
            return not_found("persistentvolumeclaim", name)
        if not claim.volume_name:
            class_name = claim.class_name
            if not class_name:
                return ERR_NO_PV_NAME_AND_CLASS
            sc = volumes.storage_class(class_name)
            if sc is None:
                return not_found("storageclass.storage.k8s.io", class_name)
            if sc.binding_mode == WAIT_FOR_FIRST_CONSUMER:
                continue  # provisioned (or bound) for the node chosen: no zone yet
            return ERR_NO_PV_NAME
        pv = volumes.pv(claim.volume_name)
        if pv is None:
            return not_found("persistentvolume", claim.volume_name)
        out.extend(pv_topologies(pv))
    return tuple(out)


def uses_volumes(pod: PodInfo, sources: frozenset[str]) -> bool:
    """Whether a volume of the pod has one of the ``sources`` fields (``persistentVolumeClaim``,
    ``gcePersistentDisk``, ...), or one is not an object at all (for the volume filters to
    report): their fast path, a few dict lookups for a pod whose only volume is its
    service-account token."""
    spec = pod.raw.get("spec")
    vols = spec.get("volumes") if isinstance(spec, Mapping) else None
    if not vols:
        return False
    if not isinstance(vols, list):
        return True
    return any(not sources.isdisjoint(v) if is_mapping(v) else True for v in vols)


def _values_mask(table: NodeTable, key: str, values: frozenset[str]) -> BoolArray:
    """Nodes whose label ``key`` is one of ``values``."""
    codes = [c for v in values if (c := table.labels.code(key, v)) >= 0]
    if not codes:
        return np.zeros(table.n, np.bool_)
    return np.isin(table.labels.column(key), codes)


def conflicting_nodes(topologies: Sequence[Topology], table: NodeTable) -> BoolArray:
    """Nodes ``[:n]`` with a topology label that do not match every one of ``topologies``."""
    labels = table.labels
    zoned = np.zeros(table.n, np.bool_)
    for key in TOPOLOGY_LABELS:
        zoned |= labels.column(key) >= 0
    ok = np.ones(table.n, np.bool_)
    for key, values in topologies:
        match = _values_mask(table, key, values)
        ga = _GA.get(key)
        if ga is not None:
            match |= (labels.column(key) < 0) & _values_mask(table, ga, values)
        ok &= match
    return zoned & ~ok


class VolumeZone(NodeOnlyFilter):
    name: Final = NAME

    def _topologies(self, pod: PodInfo, table: NodeTable, state: CycleState) -> tuple[Topology, ...] | str:
        cached = state.get(_STATE_KEY)
        if cached is None:
            cached = state[_STATE_KEY] = _pod_topologies(pod, Volumes.of(table))
        return cached

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a pod without claims skips this plugin; others are unsignable."""
        return "the pod has persistent volume claims" if uses_volumes(pod, _CLAIMS) else Signed(SKIP)

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None:
        if not uses_volumes(pod, _CLAIMS):
            return None
        got = self._topologies(pod, table, state)
        return got if isinstance(got, str) else None

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        if not uses_volumes(pod, _CLAIMS):
            return None  # no claim: upstream's PreFilter Skip
        got = self._topologies(pod, table, state)
        if isinstance(got, str):  # when the profile did not run PreFilter
            return [Reason(got, np.ones(table.n, np.bool_), unresolvable=True)]
        if not got:
            return None  # upstream's PreFilter Skip: no bound PV with topology labels
        mask = table.node_derived((NAME, got), lambda: read_only(conflicting_nodes(got, table)))
        return [Reason(ERR_REASON_CONFLICT, mask, unresolvable=True)] if mask.any() else None


def new(args: Mapping[str, Any], path: str) -> VolumeZone:
    known_fields(mapping(args, path), (), path)
    return VolumeZone()


_: type[FilterPlugin] = VolumeZone
_p: type[PreFilterPlugin] = VolumeZone
