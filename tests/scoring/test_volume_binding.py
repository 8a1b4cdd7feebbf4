"""VolumeBinding: cases ported from upstream's volume_binding_test.go (TestVolumeBinding),
binder_test.go (TestFindPodVolumesWithoutProvisioning, TestFindPodVolumesWithProvisioning,
TestCapacity, TestAssumePodVolumes, TestRevertAssumedPodVolumes, TestFindAssumeVolumes),
pv_helpers_test.go (TestFindMatchVolumeWithNode) and scorer_test.go, run over a NodeTable of
several nodes at once, plus the args, a Profile run and the PreFilter Skip fast path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.args import ArgsError
from scoring.framework import Profile
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins import volume_binding
from scoring.plugins.resource_scoring import broken_linear_table
from scoring.plugins.volume_binding import (ERR_REASON_BIND_CONFLICT, ERR_REASON_NODE_CONFLICT,
                                            ERR_REASON_NOT_ENOUGH_SPACE, ERR_REASON_PV_NOT_EXIST,
                                            ERR_UNBOUND_IMMEDIATE, VolumeBinding, capacity_score, evaluate,
                                            find_matching, pod_claims, pv_mask)
from scoring.table import NodeTable
from scoring.volumes import (BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE, VOLUME_BINDING_PLAN,
                             VolumeBindingPlan, Volumes, pod_volumes, pv_from_json, pvc_from_json)

HOSTNAME = "kubernetes.io/hostname"
GI = 2**30


# ---- builders (upstream's test_utils.go makeNode/makePV/makePVC/makePod, as JSON) -----------------


def make_table(*nodes: tuple[str, dict[str, str]]) -> NodeTable:
    """Nodes carry their hostname label, as upstream's makeNode."""
    t = NodeTable(capacity=2)
    for name, labels in nodes:
        t.set_node(node_from_json({"metadata": {"name": name, "labels": {HOSTNAME: name, **labels}},
                                   "status": {"allocatable": {"cpu": "4", "pods": "110"}}}))
    return t


def make_pv(name: str, cls: str, *, phase: str = "", size: str | None = None,
            affinity: dict[str, list[str]] | None = None, claim: tuple[str, str, str] | None = None,
            modes: list[str] | None = None, labels: dict[str, str] | None = None, rv: str = "1",
            annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """``affinity`` is upstream's withNodeAffinity: one term, each key In its values."""
    body: dict[str, Any] = {"storageClassName": cls, **spec}
    if size is not None:
        body["capacity"] = {"storage": size}
    if modes is not None:
        body["accessModes"] = modes
    if affinity is not None:
        body["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": k, "operator": "In", "values": v} for k, v in affinity.items()]}]}}
    if claim is not None:
        body["claimRef"] = {"namespace": claim[0], "name": claim[1], "uid": claim[2]}
    return {"metadata": {"name": name, "resourceVersion": rv, "labels": labels or {}, "annotations": annotations or {}},
            "spec": body,
            "status": {"phase": phase} if phase else {}}


def make_pvc(name: str, cls: str | None, *, ns: str = "default", size: str | None = None, bound: str = "",
             prebound: str = "", selected: str = "", phase: str = "", uid: str = "pvc-uid", rv: str = "1",
             modes: list[str] | None = None, owner: str = "", deleting: bool = False,
             **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": rv}
    annotations: dict[str, str] = {}
    body: dict[str, Any] = dict(spec)
    if cls is not None:
        body["storageClassName"] = cls
    if size is not None:
        body["resources"] = {"requests": {"storage": size}}
    if modes is not None:
        body["accessModes"] = modes
    if bound:
        body["volumeName"] = bound
        annotations[BIND_COMPLETED] = "yes"
    if prebound:
        body["volumeName"] = prebound
    if selected:
        annotations[SELECTED_NODE] = selected
    if annotations:
        meta["annotations"] = annotations
    if owner:
        meta["ownerReferences"] = [{"kind": "Pod", "name": "p", "uid": owner, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T10:00:00Z"
    return {"metadata": meta, "spec": body, "status": {"phase": phase} if phase else {}}


def make_pod(*claims: str, ns: str = "default", name: str = "pod-a", uid: str = "pod-uid",
             ephemeral: tuple[str, ...] = ()) -> PodInfo:
    volumes: list[dict[str, Any]] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                     for i, c in enumerate(claims)]
    volumes += [{"name": e, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} for e in ephemeral]
    spec: dict[str, Any] = {"containers": [{"name": "c"}]}
    if volumes:
        spec["volumes"] = volumes
    return pod_from_json({"metadata": {"name": name, "namespace": ns, "uid": uid}, "spec": spec})


def sc(name: str, mode: str, provisioner: str = "", topologies: list[dict[str, list[str]]] | None = None,
       ) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}
    if topologies is not None:
        obj["allowedTopologies"] = [{"matchLabelExpressions": [{"key": k, "values": v} for k, v in t.items()]}
                                    for t in topologies]
    return obj


def feed(table: NodeTable, *, classes: list[Any] = (), pvs: list[Any] = (), pvcs: list[Any] = (),  # type: ignore[assignment]
         drivers: list[Any] = (), capacities: list[Any] = ()) -> Volumes:  # type: ignore[assignment]
    v = Volumes.of(table)
    for kind, objs in (("StorageClass", classes), ("PersistentVolume", pvs), ("PersistentVolumeClaim", pvcs),
                       ("CSIDriver", drivers), ("CSIStorageCapacity", capacities)):
        for o in objs:
            v.apply(kind, o)
    return v


def verdicts(plugin: VolumeBinding, pod: PodInfo, table: NodeTable, state: dict[str, Any]) -> dict[str, list[str]]:
    """Each node's reasons from Filter (an empty list: the node fits)."""
    reasons = plugin.filter(pod, table, state) or []
    for r in reasons:
        assert r.unresolvable  # every VolumeBinding reason is UnschedulableAndUnresolvable
    return {name: [r.message for r in reasons if r.nodes[i]] for i, name in enumerate(table.names)}


# ---- TestVolumeBinding (volume_binding_test.go) ---------------------------------------------------

IMMEDIATE_SC = sc("immediate-sc", "Immediate")
WAIT_SC = sc("wait-sc", "WaitForFirstConsumer")
WAIT_HDD_SC = sc("wait-hdd-sc", "WaitForFirstConsumer")
UPSTREAM_SHAPE = [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]
"""The shape volume_binding_test.go configures (defaultShapePoint): fuller is better."""

A, B, C = ("node-a", {}), ("node-b", {}), ("node-c", {})


def _zone(name: str, z: str) -> tuple[str, dict[str, str]]:
    return name, {"topology.kubernetes.io/region": f"region-{z}", "topology.kubernetes.io/zone": f"zone-{z}"}


ZONES = [_zone("zone-a-node-a", "a"), _zone("zone-a-node-b", "a"), _zone("zone-b-node-a", "b"),
         _zone("zone-b-node-b", "b"), _zone("zone-c-node-a", "c"), _zone("zone-c-node-b", "c")]


def _local(name: str, cls: str, size: str, host: str) -> dict[str, Any]:
    return make_pv(name, cls, phase="Available", size=size, affinity={HOSTNAME: [host]})


def _zonal(name: str, size: str, z: str) -> dict[str, Any]:
    return make_pv(name, "wait-sc", phase="Available", size=size, affinity={
        "topology.kubernetes.io/region": [f"region-{z}"], "topology.kubernetes.io/zone": [f"zone-{z}"]})


LOCAL_PVS = [_local("pv-a-0", "wait-sc", "200Gi", "node-a"), _local("pv-a-1", "wait-sc", "200Gi", "node-a"),
             _local("pv-b-0", "wait-sc", "100Gi", "node-b"), _local("pv-b-1", "wait-sc", "100Gi", "node-b")]
ZONAL_PVS = [_zonal("pv-a-0", "200Gi", "a"), _zonal("pv-a-1", "200Gi", "a"), _zonal("pv-b-0", "100Gi", "b"),
             _zonal("pv-b-1", "100Gi", "b")]

# (id, pod, nodes, pvcs, pvs, args, prefilter (None, a message or a node-name set),
#  filter reasons per node, scores of the feasible nodes (None: Score skips))
VOLUME_BINDING_CASES: list[tuple[Any, ...]] = [
    ("pod has not pvcs", make_pod(), [A], [], [], {}, None, {"node-a": []}, None),
    ("all bound", make_pod("pvc-a"), [A], [make_pvc("pvc-a", "wait-sc", bound="pv-a")],
     [make_pv("pv-a", "wait-sc", phase="Available")], {}, None, {"node-a": []}, [0]),
    # both PVs name node-a by hostname: upstream's PreFilterResult {node-a}
    ("all bound with local volumes", make_pod("pvc-a", "pvc-b"), [A],
     [make_pvc("pvc-a", "wait-sc", bound="pv-a"), make_pvc("pvc-b", "wait-sc", bound="pv-b")],
     [make_pv("pv-a", "wait-sc", phase="Bound", affinity={HOSTNAME: ["node-a"]}),
      make_pv("pv-b", "wait-sc", phase="Bound", affinity={HOSTNAME: ["node-a"]})], {}, {"node-a"},
     {"node-a": []}, [0]),
    ("PVC does not exist", make_pod("pvc-a"), [A], [], [], {}, 'persistentvolumeclaim "pvc-a" not found', None,
     None),
    ("Part of PVCs do not exist", make_pod("pvc-a", "pvc-b"), [A], [make_pvc("pvc-a", "wait-sc", bound="pv-a")], [],
     {}, 'persistentvolumeclaim "pvc-b" not found', None, None),
    ("immediate claims not bound", make_pod("pvc-a"), [A], [make_pvc("pvc-a", "immediate-sc")], [], {},
     ERR_UNBOUND_IMMEDIATE, None, None),
    # wait-sc has no provisioner: the claim can neither be matched nor provisioned
    ("unbound claims no matches", make_pod("pvc-a"), [A], [make_pvc("pvc-a", "wait-sc")], [], {}, None,
     {"node-a": [ERR_REASON_BIND_CONFLICT]}, None),
    ("bound and unbound unsatisfied", make_pod("pvc-a", "pvc-b"), [("node-a", {"foo": "barbar"})],
     [make_pvc("pvc-a", "wait-sc", bound="pv-a"), make_pvc("pvc-b", "wait-sc")],
     [make_pv("pv-a", "wait-sc", phase="Available", affinity={"foo": ["bar"]})], {}, None,
     {"node-a": [ERR_REASON_NODE_CONFLICT, ERR_REASON_BIND_CONFLICT]}, None),
    ("pv not found", make_pod("pvc-a"), [A], [make_pvc("pvc-a", "wait-sc", bound="pv-a")], [], {}, None,
     {"node-a": [ERR_REASON_PV_NOT_EXIST]}, None),
    ("pv not found claim lost", make_pod("pvc-a"), [A], [make_pvc("pvc-a", "wait-sc", bound="pv-a", phase="Lost")],
     [], {}, 'persistentvolumeclaim "pvc-a" bound to non-existent persistentvolume "pv-a"', None, None),
    # 50Gi of 200Gi on node-a -> 25% -> 25; of 100Gi on node-b -> 50% -> 50 (shape 0->0, 100->100)
    ("local volumes with close capacity are preferred", make_pod("pvc-a"), [A, B, C],
     [make_pvc("pvc-a", "wait-sc", size="50Gi")], LOCAL_PVS, {"shape": UPSTREAM_SHAPE}, None,
     {"node-a": [], "node-b": [], "node-c": [ERR_REASON_BIND_CONFLICT]}, [25, 50]),
    # node-a: 50/200 -> 25 and 100/200 -> 50, mean 37.5 -> 38; node-b: 50/100 -> 50 and 100/100 -> 100 -> 75
    ("local volumes with close capacity are preferred (multiple pvcs)", make_pod("pvc-0", "pvc-1"), [A, B, C],
     [make_pvc("pvc-0", "wait-sc", size="50Gi"), make_pvc("pvc-1", "wait-hdd-sc", size="100Gi")],
     [*LOCAL_PVS, _local("pv-a-2", "wait-hdd-sc", "200Gi", "node-a"), _local("pv-a-3", "wait-hdd-sc", "200Gi", "node-a"),
      _local("pv-b-2", "wait-hdd-sc", "100Gi", "node-b"), _local("pv-b-3", "wait-hdd-sc", "100Gi", "node-b")],
     {"shape": UPSTREAM_SHAPE}, None, {"node-a": [], "node-b": [], "node-c": [ERR_REASON_BIND_CONFLICT]}, [38, 75]),
    ("zonal volumes with close capacity are preferred", make_pod("pvc-a"), ZONES,
     [make_pvc("pvc-a", "wait-sc", size="50Gi")], ZONAL_PVS, {"shape": UPSTREAM_SHAPE}, None,
     {"zone-a-node-a": [], "zone-a-node-b": [], "zone-b-node-a": [], "zone-b-node-b": [],
      "zone-c-node-a": [ERR_REASON_BIND_CONFLICT], "zone-c-node-b": [ERR_REASON_BIND_CONFLICT]}, [25, 25, 50, 50]),
    # shape 0->0, 50->3, 100->5 (x10: 0, 30, 50): 25% -> 15, 50% -> 30
    ("zonal volumes with close capacity are preferred (custom shape)", make_pod("pvc-a"), ZONES,
     [make_pvc("pvc-a", "wait-sc", size="50Gi")], ZONAL_PVS,
     {"bindTimeoutSeconds": 300, "shape": [{"utilization": 0, "score": 0}, {"utilization": 50, "score": 3},
                                           {"utilization": 100, "score": 5}]}, None,
     {"zone-a-node-a": [], "zone-a-node-b": [], "zone-b-node-a": [], "zone-b-node-b": [],
      "zone-c-node-a": [ERR_REASON_BIND_CONFLICT], "zone-c-node-b": [ERR_REASON_BIND_CONFLICT]}, [15, 15, 30, 30]),
    # vecsched's default shape (StorageCapacityScoring's: 0->10, 100->0): 25% -> 75, 50% -> 50
    ("local volumes, default shape prefers the emptier volume", make_pod("pvc-a"), [A, B, C],
     [make_pvc("pvc-a", "wait-sc", size="50Gi")], LOCAL_PVS, {}, None,
     {"node-a": [], "node-b": [], "node-c": [ERR_REASON_BIND_CONFLICT]}, [75, 50]),
    ("local volumes, storage capacity scoring off", make_pod("pvc-a"), [A, B, C],
     [make_pvc("pvc-a", "wait-sc", size="50Gi")], LOCAL_PVS, {volume_binding.SCORING_ARG: False}, None,
     {"node-a": [], "node-b": [], "node-c": [ERR_REASON_BIND_CONFLICT]}, None),
]


@pytest.mark.parametrize("pod, nodes, pvcs, pvs, args, want_pre, want_filter, want_scores",
                         [c[1:] for c in VOLUME_BINDING_CASES], ids=[c[0] for c in VOLUME_BINDING_CASES])
def test_volume_binding(pod: PodInfo, nodes: list[Any], pvcs: list[Any], pvs: list[Any], args: dict[str, Any],
                        want_pre: Any, want_filter: dict[str, list[str]] | None, want_scores: list[int] | None) -> None:
    table = make_table(*nodes)
    feed(table, classes=[IMMEDIATE_SC, WAIT_SC, WAIT_HDD_SC], pvs=pvs, pvcs=pvcs)
    plugin = volume_binding.new(args, "args")
    state: dict[str, Any] = {}
    pre = plugin.prefilter(pod, table, state)
    if isinstance(want_pre, set):
        assert pre is not None and not isinstance(pre, str) and pre.names == frozenset(want_pre)
    else:
        assert pre == want_pre
    if isinstance(pre, str):
        # the framework stops at a PreFilter rejection; Filter alone rejects every node the same way
        got = plugin.filter(pod, table, {})
        assert got is not None and [r.message for r in got] == [pre] and got[0].nodes.all()
        return
    assert verdicts(plugin, pod, table, state) == want_filter
    feasible = np.array([i for i, name in enumerate(table.names) if not want_filter[name]], np.intp)
    if not len(feasible):
        assert want_scores is None  # no node to score: the framework does not call Score
        return
    scores = plugin.score(pod, table, feasible, state)
    if want_scores is None:
        assert scores is None
    else:
        assert scores is not None and scores.tolist() == want_scores


# ---- FindMatchingVolume (pv_helpers_test.go TestFindMatchVolumeWithNode) ----------------------------


def _fm_pv(name: str, size: str, available: bool, cls: str = "", affinity: str = "",
           claim: tuple[str, str, str] | None = None, vac: str = "") -> dict[str, Any]:
    extra: dict[str, Any] = {"local": {"path": "/mnt"}}
    if vac:
        extra["volumeAttributesClassName"] = vac
    return make_pv(name, cls, phase="Available" if available else "", size=size,
                   modes=["ReadWriteOnce", "ReadOnlyMany"], claim=claim,
                   affinity={"key1": [affinity]} if affinity else None, **extra)


def _fm_pvs(vac: str = "") -> list[dict[str, Any]]:
    # upstream's volumes, named by their uids; "200E" is out of int64 range here, so the
    # PV of class "large" (never a candidate: the claims ask for class "wait") holds 8E.
    # affinity-prebound shares upstream's name affinity003 with affinity-pv3; a store of
    # PVs keys them by name, so it is named apart here.
    return [
        _fm_pv("local-small", "5G", True, vac=vac),
        _fm_pv("local-pd-very-large", "8E", True, cls="large", vac=vac),
        _fm_pv("affinity-pv", "100G", True, "wait", "value1", vac=vac),
        _fm_pv("affinity-pv2", "150G", True, "wait", "value1", vac=vac),
        _fm_pv("affinity-prebound", "100G", True, "wait", "value1", claim=("myns", "claim02", ""), vac=vac),
        _fm_pv("affinity-pv3", "200G", True, "wait", "value3", vac=vac),
        _fm_pv("affinity-pv4", "200G", False, "wait", "value4", vac=vac),
    ]


def _fm_claim(name: str, modes: list[str], vac: str = "") -> dict[str, Any]:
    extra = {"volumeAttributesClassName": vac} if vac else {}
    return make_pvc(name, "wait", ns="myns", size="100G", modes=modes, uid="", **extra)


RWO, RWX = ["ReadWriteOnce"], ["ReadWriteMany"]
FIND_MATCH_CASES = [
    ("success-match", _fm_pvs(), _fm_claim("claim01", RWO), "node1", (), "affinity-pv"),
    ("success-prebound", _fm_pvs(), _fm_claim("claim02", RWO), "node1", (), "affinity-prebound"),
    # the smallest (100G) is excluded: the next smallest on node1 (150G)
    ("success-exclusion", _fm_pvs(), _fm_claim("claim01", RWO), "node1", ("affinity-pv",), "affinity-pv2"),
    ("fail-exclusion", _fm_pvs(), _fm_claim("claim01", RWO), "node1", ("affinity-pv", "affinity-pv2"), None),
    ("fail-accessmode", _fm_pvs(), _fm_claim("claim01", RWX), "node1", (), None),
    ("fail-nodeaffinity", _fm_pvs(), _fm_claim("claim01", RWO), "node2", (), None),
    # the pre-bound PV does not fit node3: no match, although affinity-pv3 would
    ("fail-prebound-node-affinity", _fm_pvs(), _fm_claim("claim02", RWO), "node3", (), None),
    ("fail-nonavaliable", _fm_pvs(), _fm_claim("claim04", RWO), "node4", (), None),
    ("success-bad-and-good-node-affinity", _fm_pvs(), _fm_claim("claim03", RWO), "node3", (), "affinity-pv3"),
    ("success-match-with-vac", _fm_pvs("gold"), _fm_claim("claim01", RWO, "gold"), "node1", (), "affinity-pv"),
    ("fail-vac", _fm_pvs(), _fm_claim("claim01", RWO, "silver"), "node1", (), None),
    ("fail-prebound-vac", _fm_pvs("gold"), _fm_claim("claim02", RWO, "silver"), "node1", (), None),
]


@pytest.mark.parametrize("pvs, claim, node, excluded, want", [c[1:] for c in FIND_MATCH_CASES],
                         ids=[c[0] for c in FIND_MATCH_CASES])
def test_find_matching_volume(pvs: list[Any], claim: dict[str, Any], node: str, excluded: tuple[str, ...],
                              want: str | None) -> None:
    table = make_table(*[(f"node{i}", {"key1": f"value{i}"}) for i in (1, 2, 3, 4)])
    volumes = feed(table, pvs=pvs)
    row = table.index[node]
    only_there = np.zeros(table.n, np.bool_)
    only_there[row] = True
    [match] = find_matching(table, volumes, [pvc_from_json(claim)], excluded={e: only_there for e in excluded})
    i = int(match.choice[row])
    assert (match.candidates[i].name if i >= 0 else None) == want


# ---- FindPodVolumes (binder_test.go) ----------------------------------------------------------------

PROVISIONER = "test-provisioner"
NODE_KEY = "nodeKey"
BINDER_CLASSES = [
    sc("waitClassWithProvisioner", "WaitForFirstConsumer", PROVISIONER, [{NODE_KEY: ["node1", "reference-value"]}]),
    sc("immediateClass", "Immediate"),
    sc("waitClass", "WaitForFirstConsumer", "kubernetes.io/no-provisioner"),
    sc("topoMismatchClass", "WaitForFirstConsumer", PROVISIONER, [{NODE_KEY: ["reference-value"]}]),
]


def _claim(name: str, size: str, cls: str, *, bound: str = "", prebound: str = "", selected: str = "",
           rv: str = "1") -> dict[str, Any]:
    return make_pvc(name, cls, ns="testns", size=size, bound=bound, prebound=prebound, selected=selected, rv=rv,
                    volumeMode="Filesystem")


def _vol(name: str, node: str, size: str, claim: dict[str, Any] | None = None, cls: str = "waitClass",
         rv: str = "1") -> dict[str, Any]:
    ref = None if claim is None else ("testns", claim["metadata"]["name"], "pvc-uid")
    # makeTestPV: a PV bound to a claim carries bound-by-controller
    return make_pv(name, cls, phase="Available", size=size, affinity={NODE_KEY: [node]} if node else None,
                   claim=ref, volumeMode="Filesystem", rv=rv,
                   annotations={BOUND_BY_CONTROLLER: "yes"} if claim is not None else None)


UNBOUND = _claim("unbound-pvc", "1G", "waitClass")
UNBOUND2 = _claim("unbound-pvc2", "5G", "waitClass")
PREBOUND = _claim("prebound-pvc", "1G", "waitClass", prebound="pv-node1a")
BOUND = _claim("bound-pvc", "1G", "waitClass", bound="pv-bound")
IMMEDIATE_UNBOUND = _claim("immediate-unbound-pvc", "1G", "immediateClass")
IMMEDIATE_BOUND = _claim("immediate-bound-pvc", "1G", "immediateClass", bound="pv-bound-immediate")
PROVISIONED = _claim("provisioned-pvc", "1Gi", "waitClassWithProvisioner")
PROVISIONED_HIGHER = _claim("provisioned-pvc2", "1Gi", "waitClassWithProvisioner", rv="2")
NO_PROVISIONER = _claim("no-provisioner-pvc", "1Gi", "waitClass")
TOPO_MISMATCH = _claim("topo-mismatch-pvc", "1Gi", "topoMismatchClass")
SELECTED = _claim("provisioned-pvc", "1Gi", "waitClassWithProvisioner", selected="node1")

PV_NODE1A = _vol("pv-node1a", "node1", "5G")
PV_NODE1B = _vol("pv-node1b", "node1", "10G")
PV_NODE1C = _vol("pv-node1b", "node1", "5G")  # upstream's pvNode1c: named pv-node1b too
PV_NODE2 = _vol("pv-node2", "node2", "1G")
PV_BOUND = _vol("pv-bound", "node1", "1G", BOUND)
PV_NODE1A_BOUND = _vol("pv-node1a", "node1", "5G", UNBOUND)
PV_BOUND_IMMEDIATE = _vol("pv-bound-immediate", "node1", "1G", IMMEDIATE_BOUND, cls="immediateClass")
PV_BOUND_IMMEDIATE_NODE2 = _vol("pv-bound-immediate", "node2", "1G", IMMEDIATE_BOUND, cls="immediateClass")
NODE1 = ("node1", {NODE_KEY: "node1"})
NODE2 = ("node2", {NODE_KEY: "node2"})


def _generic(owned: bool) -> dict[str, Any]:
    """makeGenericEphemeralPVC: the claim of the pod's ephemeral volume "test-volume"."""
    return make_pvc("test-pod-test-volume", "immediateClass", ns="testns", size="1G", bound="pv-bound",
                    owner="pod-uid" if owned else "")


def _pod_of(claims: list[dict[str, Any]]) -> PodInfo:
    return make_pod(*[c["metadata"]["name"] for c in claims], ns="testns", name="test-pod")


def _ephemeral_pod(volume: str) -> PodInfo:
    return make_pod(ns="testns", name="test-pod", ephemeral=(volume,))


# (id, pod claims, pvs, claims in the cache (None: the pod's), pod (None: from the claims),
#  reasons on node1, bindings on node1 (claim, PV), or the PreFilter message)
WITHOUT_PROVISIONING = [
    ("no-volumes", [], [], None, make_pod(ns="testns", name="test-pod"), [], []),
    ("no-pvcs", [], [], None, pod_from_json({"metadata": {"name": "test-pod", "namespace": "testns"}, "spec": {
        "containers": [{"name": "c"}], "volumes": [{"name": "tmp", "emptyDir": {}}]}}), [], []),
    ("pvc-not-found", [BOUND], [], [], None, 'persistentvolumeclaim "bound-pvc" not found', []),
    ("bound-pvc", [BOUND], [PV_BOUND], None, None, [], []),
    ("bound-pvc,pv-not-exists", [BOUND], [], None, None, [ERR_REASON_PV_NOT_EXIST], []),
    # a claim naming a volume without bind-completed is handled by the PV controller
    ("prebound-pvc", [PREBOUND], [PV_NODE1A_BOUND], None, None, ERR_UNBOUND_IMMEDIATE, []),
    ("unbound-pvc,pv-same-node", [UNBOUND], [PV_NODE2, PV_NODE1A, PV_NODE1B], None, None, [],
     [("unbound-pvc", "pv-node1a")]),
    ("unbound-pvc,pv-different-node", [UNBOUND], [PV_NODE2], None, None, [ERR_REASON_BIND_CONFLICT], []),
    # 1G takes the 5G PV, 5G the 10G one
    ("two-unbound-pvcs", [UNBOUND, UNBOUND2], [PV_NODE1A, PV_NODE1B], None, None, [],
     [("unbound-pvc", "pv-node1a"), ("unbound-pvc2", "pv-node1b")]),
    ("two-unbound-pvcs,order-by-size", [UNBOUND2, UNBOUND], [PV_NODE1A, PV_NODE1B], None, None, [],
     [("unbound-pvc", "pv-node1a"), ("unbound-pvc2", "pv-node1b")]),
    ("two-unbound-pvcs,partial-match", [UNBOUND, UNBOUND2], [PV_NODE1A], None, None, [ERR_REASON_BIND_CONFLICT],
     [("unbound-pvc", "pv-node1a")]),
    ("one-bound,one-unbound", [UNBOUND, BOUND], [PV_BOUND, PV_NODE1A], None, None, [],
     [("unbound-pvc", "pv-node1a")]),
    ("one-bound,one-unbound,no-match", [UNBOUND, BOUND], [PV_BOUND, PV_NODE2], None, None,
     [ERR_REASON_BIND_CONFLICT], []),
    ("one-prebound,one-unbound", [UNBOUND, PREBOUND], [PV_NODE1A, PV_NODE1B], None, None, ERR_UNBOUND_IMMEDIATE, []),
    ("immediate-bound-pvc", [IMMEDIATE_BOUND], [PV_BOUND_IMMEDIATE], None, None, [], []),
    ("immediate-bound-pvc-wrong-node", [IMMEDIATE_BOUND], [PV_BOUND_IMMEDIATE_NODE2], None, None,
     [ERR_REASON_NODE_CONFLICT], []),
    ("immediate-unbound-pvc", [IMMEDIATE_UNBOUND], [], None, None, ERR_UNBOUND_IMMEDIATE, []),
    ("immediate-unbound-pvc,delayed-mode-bound", [IMMEDIATE_UNBOUND, BOUND], [PV_BOUND], None, None,
     ERR_UNBOUND_IMMEDIATE, []),
    ("immediate-unbound-pvc,delayed-mode-unbound", [IMMEDIATE_UNBOUND, UNBOUND], [], None, None,
     ERR_UNBOUND_IMMEDIATE, []),
    ("generic-ephemeral,no-pvc", [], [], [], _ephemeral_pod("no-such-pvc"),
     'waiting for ephemeral volume controller to create the persistentvolumeclaim "test-pod-no-such-pvc"', []),
    ("generic-ephemeral,with-pvc", [], [_vol("pv-bound", "node1", "1G", _generic(True))], [_generic(True)],
     _ephemeral_pod("test-volume"), [], []),
    ("generic-ephemeral,wrong-pvc", [], [_vol("pv-bound", "node1", "1G", _generic(False))], [_generic(False)],
     _ephemeral_pod("test-volume"),
     "PVC testns/test-pod-test-volume was not created for pod testns/test-pod (pod is not owner)", []),
]

CSI_DRIVERS = {
    "no CSIDriver": None,
    "CSIDriver with capacity tracking": {"metadata": {"name": PROVISIONER}, "spec": {"storageCapacity": True}},
    "CSIDriver without capacity tracking": {"metadata": {"name": PROVISIONER}, "spec": {"storageCapacity": False}},
}


def _find(pod_claims_: list[Any], pvs: list[Any], cache: list[Any] | None, pod: PodInfo | None,
          driver: Any = None, capacities: list[Any] = ()) -> tuple[Any, VolumeBinding, NodeTable, PodInfo, dict[str, Any]]:  # type: ignore[assignment]
    # node2 is there too, to show every node is decided at once
    table = make_table(NODE1, NODE2)
    feed(table, classes=BINDER_CLASSES, pvs=pvs, pvcs=pod_claims_ if cache is None else cache,
         drivers=[driver] if driver else [], capacities=capacities)
    pod = pod or _pod_of(pod_claims_)
    plugin = volume_binding.new({}, "args")
    state: dict[str, Any] = {}
    return plugin.prefilter(pod, table, state), plugin, table, pod, state


def _bindings_on(plugin: VolumeBinding, pod: PodInfo, table: NodeTable, state: dict[str, Any],
                 node: str) -> tuple[list[tuple[str, str]], list[str]]:
    """What FindPodVolumes found for ``node``: static bindings (claim, PV) and claims to provision."""
    claims = pod_claims(pod, Volumes.of(table))
    assert claims is not None and not isinstance(claims, str)
    outcome = evaluate(table, Volumes.of(table), claims)
    row = table.index[node]
    bindings = [(m.claim.name, m.candidates[int(m.choice[row])].name) for m in outcome.matches if m.choice[row] >= 0]
    provisions = [c.name for c, wanted, _ in outcome.provisions if wanted[row]]
    return bindings, provisions


@pytest.mark.parametrize("driver", list(CSI_DRIVERS.values()), ids=list(CSI_DRIVERS))
@pytest.mark.parametrize("claims, pvs, cache, pod, want, want_bindings", [c[1:] for c in WITHOUT_PROVISIONING],
                         ids=[c[0] for c in WITHOUT_PROVISIONING])
def test_find_pod_volumes_without_provisioning(claims: list[Any], pvs: list[Any], cache: list[Any] | None,
                                               pod: PodInfo | None, want: Any, want_bindings: list[Any],
                                               driver: Any) -> None:
    pre, plugin, table, pod, state = _find(claims, pvs, cache, pod, driver)
    if isinstance(want, str):
        assert pre == want
        return
    assert not isinstance(pre, str)
    assert verdicts(plugin, pod, table, state)["node1"] == want
    if not pod_volumes(pod).claims:
        assert pre is None and plugin.filter(pod, table, state) is None  # PreFilter Skip
        return
    assert _bindings_on(plugin, pod, table, state, "node1") == (want_bindings, [])


# (id, pod claims, pvs, reasons on node1, bindings on node1, provisions on node1, needs capacity)
WITH_PROVISIONING = [
    ("one-provisioned", [PROVISIONED], [], [], [], ["provisioned-pvc"], True),
    ("two-unbound-pvcs,one-matched,one-provisioned", [UNBOUND, PROVISIONED], [PV_NODE1A], [],
     [("unbound-pvc", "pv-node1a")], ["provisioned-pvc"], True),
    ("one-bound,one-provisioned", [BOUND, PROVISIONED], [PV_BOUND], [], [], ["provisioned-pvc"], True),
    ("one-binding,one-selected-node", [BOUND, SELECTED], [PV_BOUND], [], [], ["provisioned-pvc"], True),
    ("one-immediate-bound,one-provisioned", [IMMEDIATE_BOUND, PROVISIONED], [PV_BOUND_IMMEDIATE], [], [],
     ["provisioned-pvc"], True),
    ("invalid-provisioner", [NO_PROVISIONER], [], [ERR_REASON_BIND_CONFLICT], [], [], False),
    ("volume-topology-unsatisfied", [TOPO_MISMATCH], [], [ERR_REASON_BIND_CONFLICT], [], [], False),
]


@pytest.mark.parametrize("driver", list(CSI_DRIVERS.values()), ids=list(CSI_DRIVERS))
@pytest.mark.parametrize("claims, pvs, want, want_bindings, want_provisions, needs_capacity",
                         [c[1:] for c in WITH_PROVISIONING], ids=[c[0] for c in WITH_PROVISIONING])
def test_find_pod_volumes_with_provisioning(claims: list[Any], pvs: list[Any], want: list[str],
                                            want_bindings: list[Any], want_provisions: list[str],
                                            needs_capacity: bool, driver: Any) -> None:
    pre, plugin, table, pod, state = _find(claims, pvs, None, None, driver)
    assert pre is None
    reasons = verdicts(plugin, pod, table, state)
    if needs_capacity and driver is not None and driver["spec"]["storageCapacity"]:
        # a driver that publishes capacity but no CSIStorageCapacity at all: provisioning is blocked
        assert reasons["node1"] == [*want, ERR_REASON_NOT_ENOUGH_SPACE]
        return
    assert reasons["node1"] == want
    if not want:
        assert _bindings_on(plugin, pod, table, state, "node1") == (want_bindings, want_provisions)


def test_find_pod_volumes_with_provisioning_other_node() -> None:
    """node2 fails waitClassWithProvisioner's allowedTopologies (nodeKey in node1,
    reference-value), and a claim whose selected node is node1 fits node1 only."""
    pre, plugin, table, pod, state = _find([PROVISIONED], [], None, None)
    assert verdicts(plugin, pod, table, state) == {"node1": [], "node2": [ERR_REASON_BIND_CONFLICT]}
    pre, plugin, table, pod, state = _find([BOUND, SELECTED], [PV_BOUND], None, None)
    # pv-bound is node1's too: node2 fails both ways
    assert verdicts(plugin, pod, table, state) == {"node1": [],
                                                   "node2": [ERR_REASON_NODE_CONFLICT, ERR_REASON_BIND_CONFLICT]}


def _capacity(name: str, cls: str, node: str | None, capacity: str = "", maximum: str = "") -> dict[str, Any]:
    """makeCapacity: node None -> an empty nodeTopology (every node); else nodeKey = node."""
    obj: dict[str, Any] = {"metadata": {"name": name, "namespace": "default"}, "storageClassName": cls,
                           "nodeTopology": {} if node is None else {"matchLabels": {NODE_KEY: node}}}
    if capacity:
        obj["capacity"] = capacity
    if maximum:
        obj["maximumVolumeSize"] = maximum
    return obj


WCP = "waitClassWithProvisioner"
CAPACITY_CASES = [
    ("network-attached", [_capacity("net", WCP, None, "1Gi")], [], GI),
    ("local-storage", [_capacity("net", WCP, "node1", "1Gi")], [], GI),
    # upstream's three objects share the name "net": the last one stored wins, as in its informer
    ("multiple", [_capacity("net", WCP, None, "1Gi"), _capacity("net", WCP, "node2", "1Gi"),
                  _capacity("net", WCP, "node1", "1Gi")], [], GI),
    ("no-storage", [], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    ("wrong-node", [_capacity("net", WCP, "node2", "1Gi")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    ("wrong-storage-class", [_capacity("net", "waitClass", "node1", "1Gi")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    ("insufficient-storage", [_capacity("net", WCP, "node1", "1Mi")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    # maximumVolumeSize, when set, is what counts
    ("insufficient-volume-size", [_capacity("net", WCP, "node1", "1Gi", "1Mi")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    ("zero-storage", [_capacity("net", WCP, "node1", "0Mi")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    ("zero-volume-size", [_capacity("net", WCP, "node1", "", "0Mi")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
    ("nil-storage", [_capacity("net", WCP, "node1")], [ERR_REASON_NOT_ENOUGH_SPACE], None),
]


@pytest.mark.parametrize("opt_in", [True, False], ids=["CSIDriver.StorageCapacity=true",
                                                       "CSIDriver.StorageCapacity=false"])
@pytest.mark.parametrize("capacities, want, want_capacity", [c[1:] for c in CAPACITY_CASES],
                         ids=[c[0] for c in CAPACITY_CASES])
def test_capacity(capacities: list[Any], want: list[str], want_capacity: int | None, opt_in: bool) -> None:
    """TestCapacity: the claim asks 1Gi; with the driver opted out nothing is checked."""
    driver = {"metadata": {"name": PROVISIONER}, "spec": {"storageCapacity": opt_in}}
    pre, plugin, table, pod, state = _find([PROVISIONED], [], None, None, driver, capacities)
    assert verdicts(plugin, pod, table, state)["node1"] == (want if opt_in else [])
    claims = pod_claims(pod, Volumes.of(table))
    assert claims is not None and not isinstance(claims, str)
    [(claim, wanted, found)] = evaluate(table, Volumes.of(table), claims).provisions
    # the capacity recorded for scoring (upstream's DynamicProvision.NodeCapacity), -1: none
    row = table.index["node1"]
    if opt_in and not want:
        assert int(found[row]) == want_capacity
    elif not opt_in:
        assert int(found[row]) == -1


# ---- Reserve / Unreserve (TestAssumePodVolumes, TestRevertAssumedPodVolumes, TestFindAssumeVolumes) ---


def _reserve(claims: list[Any], pvs: list[Any], node: str = "node1") -> tuple[VolumeBinding, NodeTable, PodInfo,
                                                                            dict[str, Any], Volumes]:
    table = make_table(NODE1, NODE2)
    volumes = feed(table, classes=BINDER_CLASSES, pvs=pvs, pvcs=claims)
    pod = _pod_of(claims)
    plugin = volume_binding.new({"bindTimeoutSeconds": 30}, "args")
    state: dict[str, Any] = {}
    assert not isinstance(plugin.prefilter(pod, table, state), str)
    assert verdicts(plugin, pod, table, state)[node] == []
    assert plugin.reserve(pod, table, table.index[node], state) is None  # no pod annotations
    return plugin, table, pod, state, volumes


@pytest.mark.parametrize("claims, pvs, want_bindings, want_provisions", [
    # all-bound: nothing to assume, the plan still lists the claims
    ([BOUND], [PV_BOUND], (), ()),
    ([UNBOUND], [PV_NODE1A], (("pv-node1a", "testns/unbound-pvc"),), ()),
    ([UNBOUND, UNBOUND2], [PV_NODE1A, PV_NODE1B],
     (("pv-node1a", "testns/unbound-pvc"), ("pv-node1b", "testns/unbound-pvc2")), ()),
    # pv-already-bound: the PV already names the claim; nothing to change, but it is in the plan
    ([UNBOUND], [PV_NODE1A_BOUND], (("pv-node1a", "testns/unbound-pvc"),), ()),
    ([UNBOUND, PROVISIONED], [PV_NODE1A], (("pv-node1a", "testns/unbound-pvc"),), ("testns/provisioned-pvc",)),
], ids=["all-bound", "one-binding", "two-bindings", "pv-already-bound", "one-binding, one-pvc-provisioned"])
def test_assume_pod_volumes(claims: list[Any], pvs: list[Any], want_bindings: tuple[Any, ...],
                            want_provisions: tuple[str, ...]) -> None:
    plugin, table, pod, state, volumes = _reserve(claims, pvs)
    plan = state[VOLUME_BINDING_PLAN]
    keys = tuple(f"testns/{c['metadata']['name']}" for c in claims)
    assert plan == VolumeBindingPlan("node1", want_bindings, want_provisions, keys, 30.0)
    for pv_name, claim_key in want_bindings:  # validateAssume
        held = volumes.pv(pv_name)
        assert held is not None and held.claim_ref is not None and held.claim_ref.key == claim_key
        assert held.annotations.get(BOUND_BY_CONTROLLER) == "yes"
    for key in want_provisions:
        ns, name = key.split("/")
        assert volumes.claim(ns, name).annotations[SELECTED_NODE] == "node1"  # type: ignore[union-attr]


def test_revert_assumed_pod_volumes() -> None:
    plugin, table, pod, state, volumes = _reserve([UNBOUND, PROVISIONED], [PV_NODE1A])
    assert volumes.is_assumed_pv("pv-node1a") and volumes.is_assumed_claim("testns/provisioned-pvc")
    g = volumes.generation
    plugin.unreserve(pod, table, "node1", state, waiting=None)  # type: ignore[arg-type]
    # validateCacheRestored: the informer's versions are seen again
    assert volumes.pv("pv-node1a") == volumes.api_pv("pv-node1a") and volumes.pv("pv-node1a").claim_ref is None  # type: ignore[union-attr]
    assert SELECTED_NODE not in volumes.claim("testns", "provisioned-pvc").annotations  # type: ignore[union-attr]
    assert volumes.generation == g + 2
    plugin.unreserve(pod, table, "node2", state, waiting=None)  # type: ignore[arg-type]  # another node: nothing
    assert volumes.generation == g + 2


def test_find_assume_volumes() -> None:
    """TestFindAssumeVolumes: once assumed, the PV is pre-bound to the claim and found again
    for it, although another PV of the same size fits (pv-node1b, 5G, here by name after
    pv-node1a: the pre-bound PV wins whatever the order)."""
    plugin, table, pod, state, volumes = _reserve([UNBOUND], [PV_NODE2, PV_NODE1A, PV_NODE1C])
    assert state[VOLUME_BINDING_PLAN].bindings == (("pv-node1a", "testns/unbound-pvc"),)
    for _ in range(3):
        again: dict[str, Any] = {}
        assert plugin.prefilter(pod, table, again) is None
        assert verdicts(plugin, pod, table, again)["node1"] == []
        assert _bindings_on(plugin, pod, table, again, "node1") == ([("unbound-pvc", "pv-node1a")], [])


def test_assumed_pv_is_not_offered_to_another_pod() -> None:
    """A PV pre-bound (assumed) for one pod's claim names that claim: another pod's claim
    cannot take it (FindMatchingVolume skips a claimRef naming another claim)."""
    other = make_pvc("other", "waitClass", ns="testns", size="1G", uid="other-uid")
    plugin, table, pod, state, volumes = _reserve([UNBOUND], [PV_NODE1A])
    volumes.apply("PersistentVolumeClaim", other)
    second = make_pod("other", ns="testns", name="second")
    s2: dict[str, Any] = {}
    assert plugin.prefilter(second, table, s2) is None
    assert verdicts(plugin, second, table, s2)["node1"] == [ERR_REASON_BIND_CONFLICT]
    plugin.unreserve(pod, table, "node1", state, waiting=None)  # type: ignore[arg-type]
    s3: dict[str, Any] = {}
    assert verdicts(plugin, second, table, s3)["node1"] == []  # free again once restored


# ---- PreFilter: missing, deleting claims; eligible nodes -------------------------------------------


@pytest.mark.parametrize("claims, pvs, want", [
    ([make_pvc("c", "waitClass", ns="testns", deleting=True)], [], 'persistentvolumeclaim "c" is being deleted'),
    # GetEligibleNodes: PVs naming nodes by hostname, intersected
    ([make_pvc("c1", "waitClass", ns="testns", bound="p1"), make_pvc("c2", "waitClass", ns="testns", bound="p2")],
     [make_pv("p1", "waitClass", affinity={HOSTNAME: ["node1", "node2"]}),
      make_pv("p2", "waitClass", affinity={HOSTNAME: ["node2", "node3"]})], {"node2"}),
    # disjoint: the empty set (the framework then rejects every node)
    ([make_pvc("c1", "waitClass", ns="testns", bound="p1"), make_pvc("c2", "waitClass", ns="testns", bound="p2")],
     [make_pv("p1", "waitClass", affinity={HOSTNAME: ["node1"]}),
      make_pv("p2", "waitClass", affinity={HOSTNAME: ["node2"]})], set()),
    # a PV constrained by zone names no node: no limit
    ([make_pvc("c1", "waitClass", ns="testns", bound="p1")],
     [make_pv("p1", "waitClass", affinity={"topology.kubernetes.io/zone": ["a"]})], None),
    # a bound claim's PV is missing: no limit (Filter reports it)
    ([make_pvc("c1", "waitClass", ns="testns", bound="p1"), make_pvc("c2", "waitClass", ns="testns", bound="p2")],
     [make_pv("p1", "waitClass", affinity={HOSTNAME: ["node1"]})], None),
], ids=["claim-deleting", "eligible-intersection", "eligible-disjoint", "eligible-zonal", "eligible-pv-missing"])
def test_prefilter(claims: list[Any], pvs: list[Any], want: Any) -> None:
    table = make_table(NODE1, NODE2, ("node3", {}))
    feed(table, classes=BINDER_CLASSES, pvs=pvs, pvcs=claims)
    got = volume_binding.new({}, "args").prefilter(_pod_of(claims), table, {})
    if isinstance(want, set):
        assert got is not None and not isinstance(got, str) and got.names == frozenset(want)
    else:
        assert got == want


def test_unbound_claim_without_class_is_immediate() -> None:
    """IsDelayBindingMode: no class, or a class that does not exist, binds immediately."""
    table = make_table(NODE1)
    feed(table, classes=BINDER_CLASSES, pvcs=[make_pvc("c1", None, ns="testns"), make_pvc("c2", "gone", ns="testns")])
    plugin = volume_binding.new({}, "args")
    assert plugin.prefilter(make_pod("c1", ns="testns"), table, {}) == ERR_UNBOUND_IMMEDIATE
    assert plugin.prefilter(make_pod("c2", ns="testns"), table, {}) == ERR_UNBOUND_IMMEDIATE


def test_malformed_volumes_reject_the_pod_with_the_field() -> None:
    table = make_table(NODE1)
    pod = pod_from_json({"metadata": {"name": "p", "namespace": "ns"},
                         "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", "persistentVolumeClaim": {}}]}})
    assert volume_binding.new({}, "args").prefilter(pod, table, {}) == \
        "pod ns/p: spec.volumes[0].persistentVolumeClaim.claimName: required"


def test_pod_without_claims_costs_nothing() -> None:
    """PreFilter Skip: no claim lookup, no state beyond the cached verdict, Filter and Score skip."""
    table = make_table(NODE1)
    plugin = volume_binding.new({}, "args")
    pod = make_pod()
    state: dict[str, Any] = {}
    assert plugin.prefilter(pod, table, state) is None
    assert plugin.filter(pod, table, state) is None
    assert plugin.score(pod, table, np.arange(1, dtype=np.intp), state) is None
    assert plugin.reserve(pod, table, 0, state) is None and VOLUME_BINDING_PLAN not in state
    assert Volumes.KEY in table.extensions  # created empty on first use
    assert pod_claims(pod, Volumes.of(table)) is None
    assert plugin.depends_on_pods(pod, table, state) is False  # node-only: the preemption dry run keeps it


def test_pv_masks_are_shared_and_follow_the_nodes() -> None:
    table = make_table(NODE1, NODE2)
    p1 = pv_from_json(make_pv("p1", "c", affinity={NODE_KEY: ["node1"]}))
    p2 = pv_from_json(make_pv("p2", "c", affinity={NODE_KEY: ["node1"]}))
    assert pv_mask(table, p1) is pv_mask(table, p2)  # one mask per distinct affinity
    assert pv_mask(table, p1).tolist() == [True, False]
    table.set_node(node_from_json({"metadata": {"name": "node3", "labels": {NODE_KEY: "node1"}}}))
    assert pv_mask(table, p1).tolist() == [True, False, True]  # recomputed once the nodes change


def test_errors_from_provisioning_checks() -> None:
    """checkVolumeProvisions' errors (a WaitForFirstConsumer claim whose class has gone
    since PreFilter) are reported on the nodes they stop, alone."""
    table = make_table(NODE1)
    volumes = feed(table, classes=BINDER_CLASSES, pvcs=[PROVISIONED])
    plugin = volume_binding.new({}, "args")
    pod = _pod_of([PROVISIONED])
    state: dict[str, Any] = {}
    assert plugin.prefilter(pod, table, state) is None
    volumes.delete("StorageClass", {"metadata": {"name": "waitClassWithProvisioner"}})
    assert verdicts(plugin, pod, table, state) == {
        "node1": ['failed to find storage class "waitClassWithProvisioner"']}


# ---- Score: scorer.go (scorer_test.go) and provisioned volumes --------------------------------------


@pytest.mark.parametrize("shape, classes, want", [
    # default shape of scorer_test.go: 0 -> 0, 100 -> 10 (x10)
    ([(0, 0), (100, 10)], [], 0),
    ([(0, 0), (100, 10)], [(0, 100)], 0),
    ([(0, 0), (100, 10)], [(30, 100)], 30),
    ([(0, 0), (100, 10)], [(50, 100)], 50),
    ([(0, 0), (100, 10)], [(100, 100)], 100),
    # more than capacity, or no capacity: scored as 100% used
    ([(0, 0), (100, 10)], [(150, 100)], 100),
    ([(0, 0), (100, 10)], [(10, 0)], 100),
    # two classes: (30 + 50) / 2 = 40; (30 + 45) / 2 = 37.5 -> 38 (math.Round)
    ([(0, 0), (100, 10)], [(30, 100), (50, 100)], 40),
    ([(0, 0), (100, 10)], [(30, 100), (45, 100)], 38),
    # StorageCapacityScoring's default shape, 0 -> 10, 100 -> 0 (x10): 30% -> 70
    ([(0, 10), (100, 0)], [(30, 100)], 70),
    # 0 -> 0, 20 -> 5, 100 -> 10 (x10: 0, 50, 100): 10% -> 25; 60% -> 50 + 50*40/80 = 75
    ([(0, 0), (20, 5), (100, 10)], [(10, 100)], 25),
    ([(0, 0), (20, 5), (100, 10)], [(60, 100)], 75),
])
def test_capacity_score(shape: list[tuple[int, int]], classes: list[tuple[int, int]], want: int) -> None:
    k = max(len(classes), 1)
    requested = np.array([[r for r, _ in classes] or [0]], np.int64).reshape(1, k)
    capacity = np.array([[c for _, c in classes] or [0]], np.int64).reshape(1, k)
    present = np.array([[True] * len(classes) or [False]]).reshape(1, k)
    assert capacity_score(requested, capacity, present, broken_linear_table(shape)).tolist() == [want]


def test_score_of_provisioned_volumes() -> None:
    """StorageCapacityScoring without static bindings: the provisioned claims' requests
    against the node's CSIStorageCapacity. 10Gi of 100Gi on node1 -> 10% -> 90; of 50Gi on
    node2 -> 20% -> 80 (default shape 0 -> 100, 100 -> 0)."""
    table = make_table(("node1", {NODE_KEY: "node1"}), ("node2", {NODE_KEY: "node2"}))
    cls = sc("csi", "WaitForFirstConsumer", PROVISIONER)
    claim = make_pvc("data", "csi", ns="testns", size="10Gi")
    feed(table, classes=[cls], pvcs=[claim], drivers=[{"metadata": {"name": PROVISIONER},
                                                      "spec": {"storageCapacity": True}}],
         capacities=[_capacity("n1", "csi", "node1", "100Gi"), _capacity("n2", "csi", "node2", "50Gi")])
    plugin = volume_binding.new({}, "args")
    pod = make_pod("data", ns="testns")
    state: dict[str, Any] = {}
    assert plugin.prefilter(pod, table, state) is None
    assert verdicts(plugin, pod, table, state) == {"node1": [], "node2": []}
    assert plugin.score(pod, table, np.array([0, 1], np.intp), state).tolist() == [90, 80]  # type: ignore[union-attr]
    # without published capacity there is nothing to score: 0
    plain = make_table(("node1", {}))
    feed(plain, classes=[cls], pvcs=[claim])
    s2: dict[str, Any] = {}
    assert plugin.prefilter(pod, plain, s2) is None
    assert plugin.score(pod, plain, np.array([0], np.intp), s2).tolist() == [0]  # type: ignore[union-attr]


# ---- args -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    ({"bindTimeoutSeconds": -1},
     "args.bindTimeoutSeconds: Invalid value: -1: invalid BindTimeoutSeconds, should not be a negative value"),
    ({"bindTimeoutSeconds": "10s"}, "args.bindTimeoutSeconds: expected an integer, got '10s'"),
    ({"shape": [{"utilization": 50, "score": 1}, {"utilization": 10, "score": 2}]},
     "args.shape[1].utilization: Invalid value: 10: values must be sorted in increasing order"),
    ({"shape": [{"utilization": 101, "score": 1}]},
     "args.shape[0].utilization: Invalid value: 101: not in valid range [0, 100]"),
    ({"shape": [{"utilization": 10, "score": 11}]}, "args.shape[0].score: Invalid value: 11: not in valid range [0, 10]"),
    ({volume_binding.SCORING_ARG: False, "shape": [{"utilization": 0, "score": 1}]},
     "args.shape: unexpected field `shape`, remove it or turn on the feature gate StorageCapacityScoring "
     "(vecsched.io/storageCapacityScoring)"),
    ({"bindTimeout": 5}, "args.bindTimeout: unknown field (known: bindTimeoutSeconds, shape, "
                         "vecsched.io/storageCapacityScoring)"),
])
def test_bad_args(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgsError) as e:
        volume_binding.new(args, "args")
    assert str(e.value) == message


def test_default_args() -> None:
    plugin = volume_binding.new({}, "args")
    assert plugin.bind_timeout == 600 and plugin.lookup is not None
    # StorageCapacityScoring's default shape: 0% -> 100, 100% -> 0
    assert (int(plugin.lookup[0]), int(plugin.lookup[40]), int(plugin.lookup[100])) == (100, 60, 0)
    assert volume_binding.new({volume_binding.SCORING_ARG: False}, "args").lookup is None


# ---- through a Profile --------------------------------------------------------------------------------


def test_profile_places_binds_and_explains() -> None:
    """A Profile with VolumeBinding at PreFilter, Filter, Score and Reserve: the pod goes to
    the node whose local PV is emptier after it (default shape), the plan is in the state;
    a pod that fits nowhere gets upstream's FailedScheduling text."""
    table = make_table(A, B, C)
    feed(table, classes=[WAIT_SC], pvs=LOCAL_PVS, pvcs=[make_pvc("pvc-a", "wait-sc", size="50Gi"),
                                                         make_pvc("pvc-z", "wait-sc", size="500Gi")])
    plugin = volume_binding.new({}, "args")
    profile = Profile(name="p", prefilters=[plugin], filters=[plugin], scorers=[(plugin, 1)], reservers=[plugin])
    decision = profile.schedule(make_pod("pvc-a"), table)
    # node-a: 50/200 -> 75, node-b: 50/100 -> 50
    assert decision.node == "node-a" and decision.scores["VolumeBinding"].tolist() == [75, 50]
    plan = decision.state[VOLUME_BINDING_PLAN]
    assert plan.node == "node-a" and plan.bindings == (("pv-a-0", "default/pvc-a"),) and plan.provisions == ()
    profile.run_unreserve(decision.pod, table, "node-a", decision.state, waiting=None)  # type: ignore[arg-type]
    assert Volumes.of(table).pv("pv-a-0").claim_ref is None  # type: ignore[union-attr]
    nowhere = profile.schedule(make_pod("pvc-z", name="big"), table)
    assert nowhere.node is None
    assert nowhere.message == "0/3 nodes are available: 3 node(s) didn't find available persistent volumes to bind."
    missing = profile.schedule(make_pod("nope", name="lost"), table)
    assert missing.message == '0/3 nodes are available: persistentvolumeclaim "nope" not found.'


# ---- the per-class masks -----------------------------------------------------------------------------


def test_class_masks_match_each_pvs_affinity() -> None:
    """One entry per class: single ``key In [value]`` affinities compared at once, others
    matched alone, a value no node has matching nothing, no affinity matching everything;
    rebuilt when a PV of the class comes or its affinity changes, not when it is assumed."""
    table = make_table(NODE1, NODE2, ("node3", {}))
    volumes = feed(table, pvs=[
        make_pv("local-1", "local", affinity={NODE_KEY: ["node1"]}),
        make_pv("local-2", "local", affinity={NODE_KEY: ["node2"]}),
        make_pv("ghost", "local", affinity={NODE_KEY: ["node9"]}),
        make_pv("either", "local", affinity={NODE_KEY: ["node1", "node2"]}),
        make_pv("anywhere", "local"),
    ])
    cm = volume_binding.class_masks(table, volumes, "local")
    got = {name: cm.masks[row].tolist() for name, row in cm.rows.items()}
    assert got == {"local-1": [True, False, False], "local-2": [False, True, False], "ghost": [False, False, False],
                   "either": [True, True, False], "anywhere": [True, True, True]}
    assert volume_binding.class_masks(table, volumes, "local") is cm  # memoised
    volumes.assume_pv(pv_from_json(make_pv("local-1", "local", affinity={NODE_KEY: ["node1"]},
                                           claim=("ns", "c", "u"))))
    assert volume_binding.class_masks(table, volumes, "local") is cm  # a pre-binding changes no mask
    volumes.apply("PersistentVolume", make_pv("local-3", "local", affinity={"other": ["x"]}))
    again = volume_binding.class_masks(table, volumes, "local")
    assert again is not cm and again.masks[again.rows["local-3"]].tolist() == [False, False, False]


def test_two_claims_of_a_pod_take_two_volumes_on_each_node() -> None:
    """Local PVs, two per node on node1 and one on node2: a pod with two claims of the class
    fits node1 (one PV each) but not node2, where the second claim finds its PV taken."""
    table = make_table(NODE1, NODE2)
    feed(table, classes=[sc("local", "WaitForFirstConsumer", "kubernetes.io/no-provisioner")],
         pvs=[_local("n1-a", "local", "10Gi", "node1"), _local("n1-b", "local", "10Gi", "node1"),
              _local("n2-a", "local", "10Gi", "node2")],
         pvcs=[make_pvc("d1", "local", size="5Gi"), make_pvc("d2", "local", size="5Gi")])
    plugin = volume_binding.new({}, "args")
    pod = make_pod("d1", "d2")
    state: dict[str, Any] = {}
    assert plugin.prefilter(pod, table, state) is None
    assert verdicts(plugin, pod, table, state) == {"node1": [], "node2": [ERR_REASON_BIND_CONFLICT]}
    assert _bindings_on(plugin, pod, table, state, "node1") == ([("d1", "n1-a"), ("d2", "n1-b")], [])
    plugin.reserve(pod, table, table.index["node1"], state)
    assert state[VOLUME_BINDING_PLAN].bindings == (("n1-a", "default/d1"), ("n1-b", "default/d2"))


# ---- many nodes: the sparse and the dense matching against upstream's per-node loop ---------------------

ZONE = "topology.kubernetes.io/zone"


def _reference(table: NodeTable, volumes: Volumes, claims: list[Any], excluded: dict[str, set[str]],
               ) -> list[list[str | None]]:
    """Per node, per claim (smallest request first): the PV upstream's findMatchingVolumes
    takes there, FindMatchingVolume over every PV of the class in name order (a PV
    pre-bound to the claim decides it; else the smallest fitting Available PV, then by
    name, that the node matches and no earlier claim took)."""
    from scoring.volumes import pv_node_matches

    out: list[list[str | None]] = []
    for row in range(table.n):
        node = table.infos[row]
        taken = set(excluded.get(table.names[row], ()))
        picks: list[str | None] = []
        for claim in sorted(claims, key=lambda c: c.request):
            pvs = sorted(volumes.pvs_of_class(claim.class_name).values(), key=lambda p: p.name)
            usable = [pv for pv in pvs if pv.name not in taken and (pv.claim_ref is None or pv.is_bound_to(claim))
                      and pv.capacity >= claim.request and pv.volume_mode == claim.volume_mode
                      and pv.attributes_class == claim.attributes_class and not pv.deleting]
            prebound = [pv for pv in usable if pv.is_bound_to(claim)]
            if prebound:
                pick = prebound[0] if pv_node_matches(prebound[0], node) else None
            else:
                fits = [pv for pv in usable if pv.claim_ref is None and pv.phase == "Available"
                        and set(claim.access_modes) <= set(pv.access_modes) and pv_node_matches(pv, node)]
                pick = min(fits, key=lambda p: (p.capacity, p.name)) if fits else None
            if pick is not None:
                taken.add(pick.name)
            picks.append(None if pick is None else pick.name)
        out.append(picks)
    return out


def _layout(kind: str, nodes: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """PVs of class ``local``: ``local`` 0-3 per node (hostname), ``zonal`` 60 over three
    zones, ``mixed`` local ones plus two anywhere and two zonal; sizes 1-4Gi, a few
    Released (and in ``mixed`` a few pre-bound to claim ``c1``); outside ``local`` a
    few ReadWriteMany or Block ones, which the ReadWriteOnce Filesystem claims skip."""
    pvs: list[dict[str, Any]] = []

    def add(name: str, affinity: dict[str, list[str]] | None) -> None:
        size = f"{int(rng.integers(1, 5))}Gi"
        roll = rng.random()
        shape: dict[str, Any] = {"modes": ["ReadWriteOnce"]}
        if kind != "local":  # a few PVs of other shapes than the claims ask for
            shape = {"modes": ["ReadWriteMany"] if rng.random() < 0.2 else ["ReadWriteOnce"],
                     "volumeMode": "Block" if rng.random() < 0.1 else "Filesystem"}
        if roll < 0.05 and kind == "mixed":
            pvs.append(make_pv(name, "local", phase="Bound", size=size, affinity=affinity,
                               claim=("default", "c1", "pvc-uid"), **shape))
        else:
            pvs.append(make_pv(name, "local", phase="Released" if roll < 0.1 else "Available", size=size,
                               affinity=affinity, **shape))
    if kind in ("local", "mixed"):
        for i in range(nodes):
            for j in range(int(rng.integers(0, 4))):
                add(f"pv-n{i}-{j}", {HOSTNAME: [f"n{i}"]})
    if kind == "zonal":
        for i in range(60):
            add(f"pv-z{i}", {ZONE: [f"zone-{i % 3}"]})
    if kind == "mixed":
        add("pv-any-0", None)
        add("pv-any-1", None)
        add("pv-z0", {ZONE: ["zone-0"]})
        add("pv-z1", {ZONE: ["zone-1"]})
    return pvs


@pytest.mark.parametrize("kind, seed, excluded_share, sparse", [
    ("local", 1, 0.0, True),   # one node per PV: 8 x the pairs < the candidates x nodes matrix
    ("local", 2, 0.3, True),   # PVs excluded on their node (upstream's excludedVolumes)
    ("mixed", 3, 0.2, True),   # two PVs of every node and two of a zone still leave few pairs
    ("zonal", 4, 0.2, False),  # a third of the nodes per PV: the dense matrix
], ids=["local", "local-excluded", "mixed", "zonal"])
def test_matching_over_many_nodes_agrees_with_the_per_node_loop(kind: str, seed: int, excluded_share: float,
                                                                sparse: bool) -> None:
    n = 48
    rng = np.random.default_rng(seed)
    table = make_table(*((f"n{i}", {ZONE: f"zone-{i % 3}"}) for i in range(n)))
    volumes = feed(table, classes=[sc("local", "WaitForFirstConsumer", "kubernetes.io/no-provisioner")],
                   pvs=_layout(kind, n, rng))
    claims = [pvc_from_json(make_pvc(f"c{i}", "local", size=f"{i}Gi", modes=modes))
              for i, modes in ((1, None), (2, ["ReadWriteOnce"]), (3, ["ReadWriteOnce"]))]
    names = sorted(volumes.pvs_of_class("local"))
    excluded: dict[str, set[str]] = {f"n{i}": {str(x) for x in rng.choice(names, 2)} for i in range(n)
                                     if rng.random() < excluded_share}
    masks = {name: np.array([name in excluded.get(f"n{i}", ()) for i in range(n)]) for name in names}
    # which path the claims of 1Gi take: the (candidate, node) pairs of its free PVs against the matrix
    cm = volume_binding.class_masks(table, volumes, "local")
    free = [p for p in volumes.available_by_size("local") if p.capacity >= GI]
    pairs = sum(int(cm.masks[cm.rows[p.name]].sum()) for p in free)
    assert (pairs * volume_binding._SPARSE < min(len(free), 256) * n) is sparse
    matches = find_matching(table, volumes, claims, excluded={k: m for k, m in masks.items() if m.any()})
    got = [[None if m.choice[row] < 0 else m.candidates[m.choice[row]].name for m in matches] for row in range(n)]
    want = _reference(table, volumes, claims, excluded)
    assert got == want
    assert sum(x is not None for row in want for x in row) > n  # the cases do match PVs
