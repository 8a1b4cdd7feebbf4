"""VolumeZone: cases ported from upstream's volumezone/volume_zone_test.go (TestSingleZone,
TestMultiZone, TestWithBinding), then the verdict over many nodes at once, the labels
LabelZonesToSet ignores and the claims VolumeZone does not read.

Upstream runs PreFilter then Filter on one node; here PreFilter and Filter run on a
table holding that node, and a PreFilter error is also what Filter reports when the
profile skipped PreFilter. Two messages differ from upstream's test listers, which are
fakes: a missing object gives the informer lister's NotFound text
(``storageclass.storage.k8s.io "Class_0" not found``, where the fake says
``storageclasses.storage.k8s.io``). Upstream's "unbound volume immediate binding mode"
uses a class without ``volumeBindingMode``, which the fake leaves nil (``VolumeBindingMode
not set``); the API server defaults it to Immediate, as vecsched reads classes, so the
case gives the Immediate message, ``PersistentVolume had no name``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.framework import CycleState
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins import volume_zone
from scoring.plugins.volume_zone import (ERR_NO_PV_NAME, ERR_NO_PV_NAME_AND_CLASS, ERR_REASON_CONFLICT, VolumeZone,
                                         label_zones_to_set)
from scoring.table import NodeTable
from scoring.volumes import Volumes

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"


def _pv(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}


def _pvc(name: str, *, volume: str = "", sc: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    if sc is not None:
        spec["storageClassName"] = sc
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}, "spec": spec}


def _sc(name: str, mode: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                           "provisioner": "csi.example.com"}
    if mode is not None:
        obj["volumeBindingMode"] = mode
    return obj


def _pod(*claims: str, ephemeral: tuple[str, ...] = ()) -> PodInfo:
    """st.MakePod().Name("pod_1").Namespace("default").PVC(claim)..."""
    vols: list[dict[str, Any]] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                  for i, c in enumerate(claims)]
    vols += [{"name": e, "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}
             for e in ephemeral]
    spec: dict[str, Any] = {"containers": [{"name": "c"}]}
    if vols:
        spec["volumes"] = vols
    return pod_from_json({"metadata": {"name": "pod-1", "namespace": "default", "uid": "pod-uid"}, "spec": spec})


def _table(nodes: dict[str, dict[str, str]], objects: list[tuple[str, dict[str, Any]]]) -> NodeTable:
    t = NodeTable()
    for name, labels in nodes.items():
        t.set_node(node_from_json({"metadata": {"name": name, "labels": labels}}))
    vols = Volumes.of(t)
    for kind, obj in objects:
        vols.apply(kind, obj)
    return t


def _run(plugin: VolumeZone, pod: PodInfo, table: NodeTable) -> tuple[str | None, dict[str, tuple[str, bool]]]:
    """(PreFilter's rejection, {node: (Filter reason, unresolvable)}) with one CycleState."""
    state: CycleState = {}
    pre = plugin.prefilter(pod, table, state)
    assert pre is None or isinstance(pre, str)
    reasons = plugin.filter(pod, table, state) or []
    got = {table.names[i]: (r.message, r.unresolvable) for r in reasons for i in np.flatnonzero(r.nodes)}
    return pre, got


SINGLE_ZONE_OBJECTS = [
    ("PersistentVolume", _pv("Vol_1", {BETA_ZONE: "us-west1-a"})),
    ("PersistentVolume", _pv("Vol_2", {BETA_REGION: "us-west1", "uselessLabel": "none"})),
    ("PersistentVolume", _pv("Vol_3", {BETA_REGION: "us-west1"})),
    ("PersistentVolume", _pv("Vol_Stable_1", {ZONE: "us-west1-a"})),
    ("PersistentVolume", _pv("Vol_Stable_2", {REGION: "us-west1", "uselessLabel": "none"})),
    ("PersistentVolume", _pv("Vol_Stable_3", {ZONE: "us-west1-a", REGION: "us-west1-a"})),
    ("PersistentVolumeClaim", _pvc("PVC_1", volume="Vol_1")),
    ("PersistentVolumeClaim", _pvc("PVC_2", volume="Vol_2")),
    ("PersistentVolumeClaim", _pvc("PVC_3", volume="Vol_3")),
    ("PersistentVolumeClaim", _pvc("PVC_4", volume="Vol_not_exist")),
    ("PersistentVolumeClaim", _pvc("PVC_Stable_1", volume="Vol_Stable_1")),
    ("PersistentVolumeClaim", _pvc("PVC_Stable_2", volume="Vol_Stable_2")),
    ("PersistentVolumeClaim", _pvc("PVC_Stable_3", volume="Vol_Stable_3")),
]
CONFLICT = (ERR_REASON_CONFLICT, True)  # UnschedulableAndUnresolvable

SINGLE_ZONE = [
    # (upstream case, pod's claims, node labels, want filter verdict on host1 or None)
    ("pod without volume", (), {BETA_ZONE: "us-west1-a"}, None),
    # no topology label on the node: a single-zone cluster, anything goes
    ("node without labels", ("PVC_1",), {}, None),
    ("beta zone label matched", ("PVC_1",), {BETA_ZONE: "us-west1-a", "uselessLabel": "none"}, None),
    ("beta region label matched", ("PVC_2",), {BETA_REGION: "us-west1", "uselessLabel": "none"}, None),
    ("beta region label doesn't match", ("PVC_2",), {BETA_REGION: "no_us-west1", "uselessLabel": "none"}, CONFLICT),
    ("beta zone label doesn't match", ("PVC_1",), {BETA_ZONE: "no_us-west1-a", "uselessLabel": "none"}, CONFLICT),
    ("zone label matched", ("PVC_Stable_1",), {ZONE: "us-west1-a", "uselessLabel": "none"}, None),
    ("region label matched", ("PVC_Stable_2",), {REGION: "us-west1", "uselessLabel": "none"}, None),
    ("region label doesn't match", ("PVC_Stable_2",), {REGION: "no_us-west1", "uselessLabel": "none"}, CONFLICT),
    ("zone label doesn't match", ("PVC_Stable_1",), {ZONE: "no_us-west1-a", "uselessLabel": "none"}, CONFLICT),
    # the PV's region label finds no region label on the node (GA keys have no fallback)
    ("pv with zone and region, node with only zone", ("PVC_Stable_3",), {ZONE: "us-west1-a"}, CONFLICT),
    # a GA PV label is never matched by a node's beta label
    ("pv with zone,node with beta zone", ("PVC_Stable_1",), {BETA_ZONE: "us-west1-a"}, CONFLICT),
    # a beta PV label falls back to the node's GA label
    ("pv with beta label,node with ga label, matched", ("PVC_1",), {ZONE: "us-west1-a"}, None),
    ("pv with beta label,node with ga label, don't match", ("PVC_1",), {ZONE: "us-west1-b"}, CONFLICT),
]


@pytest.mark.parametrize("name,claims,labels,want", SINGLE_ZONE, ids=[f"TestSingleZone/{c[0]}" for c in SINGLE_ZONE])
def test_single_zone(name: str, claims: tuple[str, ...], labels: dict[str, str],
                     want: tuple[str, bool] | None) -> None:
    table = _table({"host1": labels}, SINGLE_ZONE_OBJECTS)
    pre, got = _run(volume_zone.new({}, "args"), _pod(*claims), table)
    assert pre is None
    assert got == ({"host1": want} if want else {})


MULTI_ZONE_OBJECTS = [
    ("PersistentVolume", _pv("Vol_1", {BETA_ZONE: "us-west1-a"})),
    ("PersistentVolume", _pv("Vol_2", {BETA_ZONE: "us-west1-b", "uselessLabel": "none"})),
    ("PersistentVolume", _pv("Vol_3", {BETA_ZONE: "us-west1-c__us-west1-a"})),
    ("PersistentVolume", _pv("Vol_Stable_1", {ZONE: "us-west1-a"})),
    ("PersistentVolume", _pv("Vol_Stable_2", {ZONE: "us-west1-c__us-west1-a"})),
    ("PersistentVolumeClaim", _pvc("PVC_1", volume="Vol_1")),
    ("PersistentVolumeClaim", _pvc("PVC_2", volume="Vol_2")),
    ("PersistentVolumeClaim", _pvc("PVC_3", volume="Vol_3")),
    ("PersistentVolumeClaim", _pvc("PVC_4", volume="Vol_not_exist")),
    ("PersistentVolumeClaim", _pvc("PVC_Stable_1", volume="Vol_Stable_1")),
    ("PersistentVolumeClaim", _pvc("PVC_Stable_2", volume="Vol_Stable_2")),
]

MULTI_ZONE = [
    ("node without labels", "PVC_3", {}, None),
    # Vol_3 is in us-west1-c and us-west1-a: a node in us-west1-a matches
    ("beta zone label matched", "PVC_3", {BETA_ZONE: "us-west1-a", "uselessLabel": "none"}, None),
    ("beta zone label doesn't match", "PVC_1", {BETA_ZONE: "us-west1-b", "uselessLabel": "none"}, CONFLICT),
    ("zone label matched", "PVC_Stable_2", {ZONE: "us-west1-a", "uselessLabel": "none"}, None),
    ("zone label doesn't match", "PVC_Stable_1", {ZONE: "us-west1-b", "uselessLabel": "none"}, CONFLICT),
]


@pytest.mark.parametrize("name,claim,labels,want", MULTI_ZONE, ids=[f"TestMultiZone/{c[0]}" for c in MULTI_ZONE])
def test_multi_zone(name: str, claim: str, labels: dict[str, str], want: tuple[str, bool] | None) -> None:
    table = _table({"host1": labels}, MULTI_ZONE_OBJECTS)
    pre, got = _run(volume_zone.new({}, "args"), _pod(claim), table)
    assert pre is None
    assert got == ({"host1": want} if want else {})


BINDING_OBJECTS = [
    ("StorageClass", _sc("Class_Immediate", "Immediate")),
    ("StorageClass", _sc("Class_Wait", "WaitForFirstConsumer")),
    ("PersistentVolume", _pv("Vol_1", {BETA_ZONE: "us-west1-a"})),
    ("PersistentVolumeClaim", _pvc("PVC_1", volume="Vol_1")),
    ("PersistentVolumeClaim", _pvc("PVC_NoSC", sc="Class_0")),
    ("PersistentVolumeClaim", _pvc("PVC_EmptySC")),
    ("PersistentVolumeClaim", _pvc("PVC_WaitSC", sc="Class_Wait")),
    ("PersistentVolumeClaim", _pvc("PVC_ImmediateSC", sc="Class_Immediate")),
]

WITH_BINDING = [
    ("label zone failure domain matched", "PVC_1", None),
    ("unbound volume empty storage class", "PVC_EmptySC", ERR_NO_PV_NAME_AND_CLASS),
    ("unbound volume no storage class", "PVC_NoSC", 'storageclass.storage.k8s.io "Class_0" not found'),
    # the class is Immediate: an unbound claim of it should have been bound before scheduling
    ("unbound volume immediate binding mode", "PVC_ImmediateSC", ERR_NO_PV_NAME),
    # WaitForFirstConsumer claims are skipped: no PV topology at all, upstream's PreFilter Skip
    ("unbound volume wait binding mode", "PVC_WaitSC", None),
]


@pytest.mark.parametrize("name,claim,error", WITH_BINDING, ids=[f"TestWithBinding/{c[0]}" for c in WITH_BINDING])
def test_with_binding(name: str, claim: str, error: str | None) -> None:
    table = _table({"host1": {BETA_ZONE: "us-west1-a", "uselessLabel": "none"}}, BINDING_OBJECTS)
    plugin = volume_zone.new({}, "args")
    pre, got = _run(plugin, _pod(claim), table)
    assert pre == error
    # PreFilter's error, UnschedulableAndUnresolvable, is also Filter's (upstream's fallback)
    assert got == ({"host1": (error, True)} if error else {})
    reasons = plugin.filter(_pod(claim), table, {}) or []
    got_reasons = [(r.message, r.unresolvable, r.nodes.tolist()) for r in reasons]
    assert got_reasons == ([(error, True, [True])] if error else [])


ERRORS = [
    # a claim that does not exist, and one bound to a PV that does not exist (upstream's PVC_4)
    ("missing claim", "PVC_missing", 'persistentvolumeclaim "PVC_missing" not found'),
    ("missing pv", "PVC_4", 'persistentvolume "Vol_not_exist" not found'),
]


@pytest.mark.parametrize("name,claim,error", ERRORS, ids=[c[0] for c in ERRORS])
def test_missing_objects_reject_the_pod_everywhere(name: str, claim: str, error: str) -> None:
    table = _table({"host1": {ZONE: "a"}, "host2": {}}, SINGLE_ZONE_OBJECTS)
    pre, got = _run(volume_zone.new({}, "args"), _pod(claim), table)
    assert pre == error
    assert got == {"host1": (error, True), "host2": (error, True)}


def test_many_nodes_at_once() -> None:
    # Vol_3 in zones c and a (beta key), Vol_Stable_2 region us-west1 (GA key): a node must
    # be in zone a or c (beta or, lacking it, GA label) and in region us-west1 (GA only).
    objects = [
        ("PersistentVolume", _pv("Vol_3", {BETA_ZONE: "us-west1-c__us-west1-a"})),
        ("PersistentVolume", _pv("Vol_R", {REGION: "us-west1"})),
        ("PersistentVolumeClaim", _pvc("PVC_3", volume="Vol_3")),
        ("PersistentVolumeClaim", _pvc("PVC_R", volume="Vol_R")),
    ]
    nodes = {
        "a-beta": {BETA_ZONE: "us-west1-a", REGION: "us-west1"},  # both match
        "c-ga": {ZONE: "us-west1-c", REGION: "us-west1"},  # beta zone absent -> GA zone c matches
        "b-ga": {ZONE: "us-west1-b", REGION: "us-west1"},  # zone b: conflict
        "a-no-region": {ZONE: "us-west1-a"},  # region label missing: conflict
        "beta-b-ga-a": {BETA_ZONE: "us-west1-b", ZONE: "us-west1-a", REGION: "us-west1"},  # beta present, b: conflict
        "unlabelled": {},  # no topology label at all: fits
    }
    table = _table(nodes, objects)
    pre, got = _run(volume_zone.new({}, "args"), _pod("PVC_3", "PVC_R"), table)
    assert pre is None
    assert got == {"b-ga": CONFLICT, "a-no-region": CONFLICT, "beta-b-ga-a": CONFLICT}


def test_the_node_side_is_recomputed_when_a_node_changes() -> None:
    table = _table({"host1": {ZONE: "us-west1-b"}}, SINGLE_ZONE_OBJECTS)
    plugin = volume_zone.new({}, "args")
    assert _run(plugin, _pod("PVC_Stable_1"), table)[1] == {"host1": CONFLICT}
    table.set_node(node_from_json({"metadata": {"name": "host1", "labels": {ZONE: "us-west1-a"}}}))
    assert _run(plugin, _pod("PVC_Stable_1"), table)[1] == {}


LABEL_ZONES = [
    ("one zone", "us-west1-a", {"us-west1-a"}),
    ("two zones, blanks trimmed", " us-west1-a__us-west1-b ", {"us-west1-a", "us-west1-b"}),
    ("an empty zone makes the label unreadable", "us-west1-a__", None),
    ("empty", "", None),
]


@pytest.mark.parametrize("name,value,want", LABEL_ZONES, ids=[c[0] for c in LABEL_ZONES])
def test_label_zones_to_set(name: str, value: str, want: set[str] | None) -> None:
    got = label_zones_to_set(value)
    assert (None if got is None else set(got)) == want


def test_an_unreadable_pv_label_is_ignored() -> None:
    # upstream logs and skips a label LabelZonesToSet refuses: the PV then constrains nothing
    objects = [("PersistentVolume", _pv("Vol_bad", {ZONE: "us-west1-a__"})),
               ("PersistentVolumeClaim", _pvc("PVC_bad", volume="Vol_bad"))]
    table = _table({"host1": {ZONE: "us-west1-b"}}, objects)
    assert _run(volume_zone.new({}, "args"), _pod("PVC_bad"), table) == (None, {})


def test_generic_ephemeral_claims_are_not_read() -> None:
    # upstream's getPersistentVolumeClaimNameFromPod reads persistentVolumeClaim volumes only:
    # the ephemeral claim "pod-1-scratch" does not exist, and that is not an error here
    table = _table({"host1": {ZONE: "us-west1-b"}}, SINGLE_ZONE_OBJECTS)
    assert _run(volume_zone.new({}, "args"), _pod("PVC_Stable_1", ephemeral=("scratch",)), table) == (
        None, {"host1": CONFLICT})
    assert _run(volume_zone.new({}, "args"), _pod(ephemeral=("scratch",)), table) == (None, {})


def test_node_only() -> None:
    plugin = volume_zone.new({}, "args")
    table = _table({"host1": {}}, SINGLE_ZONE_OBJECTS)
    assert plugin.depends_on_pods(_pod("PVC_1"), table, {}) is False
    with pytest.raises(ValueError, match="args.x: unknown field"):
        volume_zone.new({"x": 1}, "args")
