"""The storage model (scoring.volumes): reading the six storage kinds, a pod's volumes,
the ``Volumes`` table extension with upstream's assume cache (ported from
assume_cache_test.go), and ``bindings_done`` (upstream's checkBindings, ported from
binder_test.go TestCheckBindings)."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.objects import ObjectError, node_from_json, pod_from_json
from scoring.table import NodeTable
from scoring.volumes import (BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE, PersistentVolume,
                             PersistentVolumeClaim, VolumeBindingPlan, Volumes, bindings_done, capacity_from_json,
                             csidriver_from_json, csinode_from_json, pod_volumes, pv_from_json, pv_node_matches,
                             pv_shape, pvc_from_json, storage_class_from_json, with_claim_ref, with_selected_node)

GI = 2**30


# ---- builders (binder_test.go's makeTestPV / makeTestPVC, as JSON) -------------------------------

NODE_KEY = "nodeKey"  # binder_test.go's nodeLabelKey


def pv(name: str, *, node: str = "", size: str = "5G", rv: str = "1", claim: tuple[str, str, str] | None = None,
       cls: str = "waitClass", phase: str = "Available", **spec: Any) -> dict[str, Any]:
    """makeTestPV: ``node`` puts ``nodeKey In [node]`` in the PV's node affinity; ``claim`` is
    (namespace, name, uid) of the claim it is bound to (then bound-by-controller is set)."""
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv}
    body: dict[str, Any] = {"capacity": {"storage": size}, "storageClassName": cls, "volumeMode": "Filesystem",
                            **spec}
    if node:
        body["nodeAffinity"] = {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": NODE_KEY, "operator": "In", "values": [node]}]}]}}
    if claim is not None:
        ns, cname, uid = claim
        body["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": cname,
                            "uid": uid}
        meta["annotations"] = {BOUND_BY_CONTROLLER: "yes"}
    return {"metadata": meta, "spec": body, "status": {"phase": phase}}


def pvc(name: str, *, size: str = "1G", state: str = "unbound", volume: str = "", rv: str = "1",
        cls: str | None = "waitClass", node: str = "", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """makeTestPVC: ``state`` unbound, prebound (volumeName only), bound (volumeName and
    bind-completed) or selected (the selected-node annotation set to ``node``)."""
    meta: dict[str, Any] = {"name": name, "namespace": "testns", "uid": "pvc-uid", "resourceVersion": rv}
    ann = dict(annotations or {})
    spec: dict[str, Any] = {"resources": {"requests": {"storage": size}}, "volumeMode": "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if state == "selected":
        ann[SELECTED_NODE] = node
    if state == "bound":
        ann[BIND_COMPLETED] = "yes"
    if state in ("bound", "prebound"):
        spec["volumeName"] = volume
    if ann:
        meta["annotations"] = ann
    return {"metadata": meta, "spec": spec}


def node(name: str, **labels: str) -> Any:
    return node_from_json({"metadata": {"name": name, "labels": labels}})


def bump(obj: dict[str, Any], rv: str) -> dict[str, Any]:
    """``obj`` as the API returns it after an update: a newer resourceVersion."""
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": rv}}


# ---- reading the objects ------------------------------------------------------------------------


def test_pv_from_json_reads_what_the_scheduler_needs() -> None:
    got = pv_from_json({
        "metadata": {"name": "pv-a", "uid": "u1", "resourceVersion": "7", "labels": {"tier": "gold"},
                     "deletionTimestamp": "2026-12-04T10:00:00Z"},
        "spec": {"capacity": {"storage": "10Gi"}, "storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                 "volumeMode": "Block", "claimRef": {"namespace": "ns", "name": "c", "uid": "cu"},
                 "csi": {"driver": "csi.vecsched.io", "volumeHandle": "h-1"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [
                     {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        "status": {"phase": "Bound"}})
    assert (got.name, got.uid, got.resource_version, got.capacity, got.storage_class) == ("pv-a", "u1", "7", 10 * GI,
                                                                                          "fast")
    assert (got.access_modes, got.volume_mode, got.phase, got.deleting) == (("ReadWriteOnce",), "Block", "Bound", True)
    assert got.claim_ref is not None and (got.claim_ref.key, got.claim_ref.uid) == ("ns/c", "cu")
    assert (got.csi_driver, got.volume_handle, got.labels) == ("csi.vecsched.io", "h-1", {"tier": "gold"})
    assert got.node_affinity is not None and got.terms is not None and len(got.terms) == 1


@pytest.mark.parametrize("annotations, spec_class, want", [
    # GetPersistentVolumeClass: the beta annotation first, then spec.storageClassName
    ({}, "fast", "fast"),
    ({"volume.beta.kubernetes.io/storage-class": "slow"}, "fast", "slow"),
    ({}, None, ""),
])
def test_pv_class_reads_the_beta_annotation_first(annotations: dict[str, str], spec_class: str | None,
                                                  want: str) -> None:
    spec = {} if spec_class is None else {"storageClassName": spec_class}
    assert pv_from_json({"metadata": {"name": "p", "annotations": annotations}, "spec": spec}).storage_class == want


@pytest.mark.parametrize("spec, want", [
    # GetPersistentVolumeClaimClass keeps "" apart from "no class at all" (None here)
    ({}, None),
    ({"storageClassName": ""}, ""),
    ({"storageClassName": "fast"}, "fast"),
])
def test_pvc_class(spec: dict[str, Any], want: str | None) -> None:
    claim = pvc_from_json({"metadata": {"name": "c", "namespace": "ns"}, "spec": spec})
    assert claim.storage_class == want and claim.class_name == (want or "")


def test_pvc_from_json_reads_what_the_scheduler_needs() -> None:
    got = pvc_from_json({
        "metadata": {"name": "c", "namespace": "ns", "uid": "u", "resourceVersion": "3",
                     "annotations": {SELECTED_NODE: "n1"},
                     "ownerReferences": [{"kind": "Pod", "name": "p", "uid": "pod-uid", "controller": True},
                                         {"kind": "Thing", "name": "t", "uid": "other"}]},
        "spec": {"resources": {"requests": {"storage": "1500Mi"}}, "volumeName": "pv-a",
                 "accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "selector": {"matchLabels": {"tier": "gold"}}},
        "status": {"phase": "Pending"}})
    assert (got.key, got.request, got.has_request, got.volume_name) == ("ns/c", 1500 * 2**20, True, "pv-a")
    assert (got.volume_mode, got.phase, got.owners) == ("Filesystem", "Pending", ("pod-uid",))
    assert got.selector == {"matchLabels": {"tier": "gold"}}
    # a claim without a storage request: 0 bytes, and hasEnoughCapacity has nothing to check
    bare = pvc_from_json({"metadata": {"name": "c"}})
    assert (bare.namespace, bare.request, bare.has_request) == ("default", 0, False)


def test_storage_class_csinode_csidriver_capacity() -> None:
    sc = storage_class_from_json({"metadata": {"name": "s", "annotations": {
        "storageclass.beta.kubernetes.io/is-default-class": "true"}}, "provisioner": "p"})
    # volumeBindingMode defaults to Immediate; the beta default annotation counts too
    assert (sc.binding_mode, sc.is_default, sc.allowed_topologies) == ("Immediate", True, ())
    cn = csinode_from_json({"metadata": {"name": "n1"}, "spec": {"drivers": [
        {"name": "d", "nodeID": "n1", "topologyKeys": ["zone"], "allocatable": {"count": 16}},
        {"name": "e", "nodeID": "n1"}]}})
    assert (cn.drivers["d"].allocatable_count, cn.drivers["d"].topology_keys, cn.drivers["e"].allocatable_count) == \
        (16, ("zone",), None)
    drv = csidriver_from_json({"metadata": {"name": "d"}, "spec": {}})
    assert (drv.attach_required, drv.storage_capacity) == (True, False)  # the API's defaults
    cap = capacity_from_json({"metadata": {"name": "c1", "namespace": "kube-system"}, "storageClassName": "s",
                              "nodeTopology": {"matchLabels": {"zone": "a"}}, "capacity": "1Gi"})
    assert (cap.key, cap.capacity, cap.maximum_volume_size) == ("kube-system/c1", GI, None)


@pytest.mark.parametrize("parse, obj, message", [
    (pv_from_json, {"metadata": {}}, "PersistentVolume None: metadata.name: required"),
    (pv_from_json, {"metadata": {"name": "p"}, "spec": {"capacity": {"storage": "lots"}}},
     "PersistentVolume p: spec.capacity.storage: invalid quantity 'lots': expected <number><suffix> such as 100m, "
     "1.5, 2Gi or 1e3"),
    (pv_from_json, {"metadata": {"name": "p"}, "spec": {"volumeMode": "Tape"}},
     "PersistentVolume p: spec.volumeMode: must be one of Filesystem, Block, got 'Tape'"),
    (pv_from_json, {"metadata": {"name": "p"}, "spec": {"claimRef": "ns/c"}},
     "PersistentVolume p: spec.claimRef: expected an object, got str"),
    (pv_from_json, {"metadata": {"name": "p"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["a"]}]}]}}}},
     'PersistentVolume p: spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].operator: '
     '"Near" is not a valid node selector operator'),
    (pvc_from_json, {"metadata": {"name": "c", "namespace": "ns"}, "spec": {"resources": {"requests": {
        "storage": "-1Gi"}}}},
     "PersistentVolumeClaim ns/c: spec.resources.requests.storage: must not be negative, got '-1Gi'"),
    (pvc_from_json, {"metadata": {"name": "c", "namespace": "ns"}, "spec": {"selector": {"matchExpressions": [
        {"key": "tier", "operator": "In"}]}}},
     "PersistentVolumeClaim ns/c: spec.selector.matchExpressions[0].values: "
     "for 'in', 'notin' operators, values set can't be empty"),
    (storage_class_from_json, {"metadata": {"name": "s"}, "volumeBindingMode": "Later"},
     "StorageClass s: volumeBindingMode: must be one of Immediate, WaitForFirstConsumer, got 'Later'"),
    (csinode_from_json, {"metadata": {"name": "n"}, "spec": {"drivers": [{"name": "d", "allocatable": {
        "count": -1}}]}},
     "CSINode n: spec.drivers[0].allocatable.count: expected a non-negative integer, got -1"),
    (csidriver_from_json, {"metadata": {"name": "d"}, "spec": {"storageCapacity": "yes"}},
     "CSIDriver d: spec.storageCapacity: expected true or false, got 'yes'"),
    (capacity_from_json, {"metadata": {"name": "c", "namespace": "ns"}},
     "CSIStorageCapacity ns/c: storageClassName: required"),
])
def test_bad_objects_raise_one_line_naming_object_and_field(parse: Any, obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ObjectError) as e:
        parse(obj)
    assert str(e.value) == message and "\n" not in str(e.value)


# ---- a pod's volumes ------------------------------------------------------------------------------


def _pod(volumes: Any, *, uid: str = "pod-uid") -> Any:
    return pod_from_json({"metadata": {"name": "web-0", "namespace": "ns", "uid": uid},
                          "spec": {"containers": [{"name": "c"}], "volumes": volumes}})


def test_pod_volumes_names_claims_ephemeral_claims_and_inline_csi() -> None:
    got = pod_volumes(_pod([
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
        {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "secrets", "csi": {"driver": "secrets.csi"}},
        {"name": "tmp", "emptyDir": {}},
    ]))
    # ephemeral.VolumeClaimName: "<pod name>-<volume name>"; inline CSI: "<pod uid>-<volume name>"
    assert got.claims == ("data-web-0", "web-0-scratch")
    assert got.ephemeral == frozenset({"web-0-scratch"})
    assert got.inline_csi == (("secrets.csi", "pod-uid-secrets"),)
    assert len(got.raw_volumes) == 4
    assert pod_volumes(pod_from_json({"metadata": {"name": "p"}, "spec": {}})).claims == ()


@pytest.mark.parametrize("volumes, message", [
    ("data", "pod ns/web-0: spec.volumes: expected a list, got str"),
    ([{"name": "d", "persistentVolumeClaim": {}}],
     "pod ns/web-0: spec.volumes[0].persistentVolumeClaim.claimName: required"),
    ([{"name": "d", "persistentVolumeClaim": {"claimName": 7}}],
     "pod ns/web-0: spec.volumes[0].persistentVolumeClaim.claimName: expected a string, got 7"),
])
def test_pod_volumes_rejects_a_malformed_spec(volumes: Any, message: str) -> None:
    with pytest.raises(ObjectError, match="^" + message.replace("[", r"\[").replace("]", r"\]") + "$"):
        pod_volumes(_pod(volumes))


# ---- the table extension --------------------------------------------------------------------------


def test_apply_delete_and_generation() -> None:
    t = NodeTable()
    v = Volumes.of(t)
    assert Volumes.of(t) is v and t.extensions[Volumes.KEY] is v
    g0 = v.generation
    v.apply("PersistentVolume", pv("pv-a"))
    v.apply("PersistentVolumeClaim", pvc("c"))
    v.apply("StorageClass", {"metadata": {"name": "waitClass"}, "provisioner": "p",
                             "volumeBindingMode": "WaitForFirstConsumer"})
    v.apply("CSINode", {"metadata": {"name": "n1"}, "spec": {"drivers": []}})
    v.apply("CSIDriver", {"metadata": {"name": "p"}})
    v.apply("CSIStorageCapacity", {"metadata": {"name": "cap", "namespace": "ns"}, "storageClassName": "waitClass"})
    assert v.generation == g0 + 6
    assert v.pv("pv-a") is not None and v.claim("testns", "c") is not None
    assert [p.name for p in v.pvs()] == ["pv-a"] and list(v.pvs_of_class("waitClass")) == ["pv-a"]
    assert v.storage_class("waitClass") is not None and v.csinode("n1") is not None and v.driver("p") is not None
    assert [c.key for c in v.capacities()] == ["ns/cap"]
    v.delete("PersistentVolume", {"metadata": {"name": "pv-a"}})
    v.delete("PersistentVolumeClaim", {"metadata": {"name": "c", "namespace": "testns"}})
    v.delete("CSIStorageCapacity", {"metadata": {"name": "cap", "namespace": "ns"}})
    v.delete("PersistentVolume", {"metadata": {"name": "never-seen"}})  # unknown: a no-op
    assert v.pv("pv-a") is None and v.claim("testns", "c") is None and list(v.capacities()) == []
    assert list(v.pvs_of_class("waitClass")) == []


def test_bad_input_changes_nothing() -> None:
    v = Volumes()
    v.apply("PersistentVolume", pv("pv-a", size="5G"))
    g = v.generation
    with pytest.raises(ObjectError, match="^PersistentVolume pv-a: spec.capacity.storage: "):
        v.apply("PersistentVolume", pv("pv-a", size="five"))
    assert v.generation == g and v.pv("pv-a") is not None and v.pv("pv-a").capacity == 5 * 10**9  # type: ignore[union-attr]
    with pytest.raises(ObjectError, match="^Pod: kind: not a storage kind"):
        v.apply("Pod", {"metadata": {"name": "x"}})


@pytest.mark.parametrize("classes, want", [
    # GetDefaultClass: the newest of the classes marked default; on a tie, the first by name
    ([("a", "2026-01-01T00:00:00Z", True), ("b", "2026-06-01T00:00:00Z", True)], "b"),
    ([("b", "2026-01-01T00:00:00Z", True), ("a", "2026-01-01T00:00:00Z", True)], "a"),
    ([("a", "2026-01-01T00:00:00Z", False), ("b", "2026-06-01T00:00:00Z", True)], "b"),
    ([("a", "2026-01-01T00:00:00Z", False)], None),
])
def test_default_class(classes: list[tuple[str, str, bool]], want: str | None) -> None:
    v = Volumes()
    for name, created, default in classes:
        v.apply("StorageClass", {"metadata": {"name": name, "creationTimestamp": created, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true" if default else "false"}}, "provisioner": "p"})
    got = v.default_class()
    assert (got.name if got else None) == want


# ---- the assume cache (assume_cache_test.go) ------------------------------------------------------


def _pv(name: str, rv: str, cls: str = "") -> PersistentVolume:
    return pv_from_json(pv(name, rv=rv, cls=cls))


@pytest.mark.parametrize("old_rv, new_rv, old_name, ok", [
    ("5", "5", "pv1", True),   # TestAssumePV success-same-version
    ("5", "6", "pv1", True),   # success-new-higher-version
    ("5", "5", "pv0", False),  # fail-old-not-found: nothing named pv1 is held
    ("5", "4", "pv1", False),  # fail-new-lower-version
    ("5", "a", "pv1", False),  # fail-new-bad-version
    ("a", "5", "pv1", False),  # fail-old-bad-version
], ids=["success-same-version", "success-new-higher-version", "fail-old-not-found", "fail-new-lower-version",
        "fail-new-bad-version", "fail-old-bad-version"])
def test_assume_pv(old_rv: str, new_rv: str, old_name: str, ok: bool) -> None:
    v = Volumes()
    v.apply("PersistentVolume", pv(old_name, rv=old_rv))
    new = _pv("pv1", new_rv, cls="other")
    g = v.generation
    if ok:
        v.assume_pv(new)
        assert v.pv("pv1") == new and v.generation == g + 1
        assert list(v.pvs_of_class("other")) == ["pv1"]  # ListPVs by class sees the assumed version
    else:
        with pytest.raises(ValueError):
            v.assume_pv(new)
        assert v.generation == g and (v.pv("pv1") is None or v.pv("pv1").resource_version == old_rv)  # type: ignore[union-attr]


def test_restore_pv() -> None:
    """TestRestorePV: restore brings the informer's version back; unknown names are no-ops."""
    v = Volumes()
    v.apply("PersistentVolume", pv("pv1", rv="5"))
    original = v.pv("pv1")
    v.restore_pv("nothing")
    v.assume_pv(with_claim_ref(original, pvc_from_json(pvc("c")))[0])  # type: ignore[arg-type]
    assert v.pv("pv1") != original and v.is_assumed_pv("pv1")
    v.restore_pv("pv1")
    assert v.pv("pv1") == original and not v.is_assumed_pv("pv1")


@pytest.mark.parametrize("informer_rv, assumed_kept", [
    ("5", True),   # TestAssumeUpdatePVCache: the informer's copy of the same version does not win
    ("6", False),  # a newer version from the API replaces the assumption
])
def test_assume_update_pv_cache(informer_rv: str, assumed_kept: bool) -> None:
    v = Volumes()
    v.apply("PersistentVolume", pv("pv1", rv="5"))
    assumed = with_claim_ref(v.pv("pv1"), pvc_from_json(pvc("c")))[0]  # type: ignore[arg-type]
    v.assume_pv(assumed)
    v.apply("PersistentVolume", pv("pv1", rv=informer_rv))
    assert (v.pv("pv1") == assumed) is assumed_kept
    assert v.api_pv("pv1") is not None and v.api_pv("pv1").resource_version == informer_rv  # type: ignore[union-attr]


def test_older_informer_version_is_ignored() -> None:
    v = Volumes()
    v.apply("PersistentVolumeClaim", pvc("c", rv="7"))
    v.apply("PersistentVolumeClaim", pvc("c", rv="6", state="bound", volume="pv"))
    assert v.claim("testns", "c").resource_version == "7"  # type: ignore[union-attr]


def test_assume_and_restore_claim() -> None:
    v = Volumes()
    v.apply("PersistentVolumeClaim", pvc("c", rv="3"))
    claim = v.claim("testns", "c")
    assert claim is not None
    v.assume_claim(with_selected_node(claim, "node1"))
    assert v.claim("testns", "c").annotations[SELECTED_NODE] == "node1"  # type: ignore[union-attr]
    assert v.api_claim("testns/c") == claim and v.is_assumed_claim("testns/c")
    v.restore_claim("testns/c")
    assert v.claim("testns", "c") == claim
    with pytest.raises(ValueError):
        v.assume_claim(pvc_from_json(pvc("missing")))


# ---- the change log and the PVs a claim could bind --------------------------------------------------


def _step(v: Volumes, op: str, arg: Any) -> None:
    """One change to ``v``: apply/delete (kind, JSON), assume a PV pre-bound to claim
    ``testns/c`` (name) or a claim with a selected node (name), restore (kind, key)."""
    if op == "apply":
        v.apply(*arg)
    elif op == "delete":
        v.delete(*arg)
    elif op == "assume-pv":
        held = v.pv(arg)
        assert held is not None
        v.assume_pv(with_claim_ref(held, pvc_from_json(pvc("c")))[0])
    elif op == "assume-claim":
        held_claim = v.claim("testns", arg)
        assert held_claim is not None
        v.assume_claim(with_selected_node(held_claim, "node1"))
    elif op == "restore-pv":
        v.restore_pv(arg)
    else:
        v.restore_claim(arg)


_SC = {"metadata": {"name": "waitClass"}, "provisioner": "p", "volumeBindingMode": "WaitForFirstConsumer"}


@pytest.mark.parametrize("setup, steps, want", [
    # nothing since: the empty set
    ([], [], set()),
    # each kind is logged under its key: the name, namespace/name for claims and capacities
    ([], [("apply", ("PersistentVolume", pv("pv-a"))), ("apply", ("PersistentVolumeClaim", pvc("c"))),
          ("apply", ("StorageClass", _SC)), ("apply", ("CSINode", {"metadata": {"name": "n1"}})),
          ("apply", ("CSIDriver", {"metadata": {"name": "p"}})),
          ("apply", ("CSIStorageCapacity", {"metadata": {"name": "cap", "namespace": "ns"},
                                            "storageClassName": "waitClass"}))],
     {("PersistentVolume", "pv-a"), ("PersistentVolumeClaim", "testns/c"), ("StorageClass", "waitClass"),
      ("CSINode", "n1"), ("CSIDriver", "p"), ("CSIStorageCapacity", "ns/cap")}),
    # only what changed after the generation asked about: pv-a before it is left out
    ([("apply", ("PersistentVolume", pv("pv-a")))], [("apply", ("PersistentVolume", pv("pv-b")))],
     {("PersistentVolume", "pv-b")}),
    # assumptions and restores are changes; an object changed twice is named once
    ([("apply", ("PersistentVolume", pv("pv-a"))), ("apply", ("PersistentVolumeClaim", pvc("c")))],
     [("assume-pv", "pv-a"), ("assume-claim", "c"), ("restore-pv", "pv-a"), ("restore-claim", "testns/c")],
     {("PersistentVolume", "pv-a"), ("PersistentVolumeClaim", "testns/c")}),
    # deletes are changes (an unknown object too: the generation moved)
    ([("apply", ("PersistentVolume", pv("pv-a")))],
     [("delete", ("PersistentVolume", {"metadata": {"name": "pv-a"}})),
      ("delete", ("CSINode", {"metadata": {"name": "never-seen"}}))],
     {("PersistentVolume", "pv-a"), ("CSINode", "never-seen")}),
    # what does not move the generation is not logged: an older version, a restore of nothing
    ([("apply", ("PersistentVolume", pv("pv-a", rv="5")))],
     [("apply", ("PersistentVolume", pv("pv-a", rv="4"))), ("restore-pv", "pv-a"), ("restore-claim", "testns/c")],
     set()),
], ids=["nothing", "every-kind", "only-after", "assume-restore", "delete", "no-op"])
def test_changes_since(setup: list[tuple[str, Any]], steps: list[tuple[str, Any]], want: set[tuple[str, str]]) -> None:
    v = Volumes()
    for op, arg in setup:
        _step(v, op, arg)
    g = v.generation
    for op, arg in steps:
        _step(v, op, arg)
    assert v.changes_since(g) == want
    assert v.changes_since(v.generation) == set()


def test_changes_since_beyond_the_log_is_none() -> None:
    """The log keeps the latest 4096 changes: a reader further behind gets None (look at
    everything); one within them still gets the changes."""
    v = Volumes()
    for i in range(4096):
        v.apply("CSINode", {"metadata": {"name": f"n{i}"}})  # generations 1..4096
    assert v.changes_since(0) is not None and len(v.changes_since(0) or ()) == 4096  # all still logged
    v.apply("CSINode", {"metadata": {"name": "n4096"}})  # generation 4097: the change of generation 1 goes
    assert v.changes_since(0) is None
    assert v.changes_since(1) == {("CSINode", f"n{i}") for i in range(1, 4097)}
    assert v.changes_since(4095) == {("CSINode", "n4095"), ("CSINode", "n4096")}


_BOUND = ("testns", "c", "pvc-uid")  # the claimRef of a PV pre-bound to testns/c


@pytest.mark.parametrize("steps, available, by_size, prebound", [
    # Available PVs without a claimRef are candidates, smallest first then by name; a PV of
    # another phase, being deleted, or with a claimRef is not (one naming testns/c is pre-bound)
    ([("apply", ("PersistentVolume", pv("big", size="9G"))), ("apply", ("PersistentVolume", pv("b", size="5G"))),
      ("apply", ("PersistentVolume", pv("a", size="5G"))),
      ("apply", ("PersistentVolume", pv("released", phase="Released"))),
      ("apply", ("PersistentVolume", {**pv("going"), "metadata": {"name": "going",
                                                                   "deletionTimestamp": "2026-12-04T10:00:00Z"}})),
      ("apply", ("PersistentVolume", pv("mine", claim=_BOUND, phase="Bound"))),
      ("apply", ("PersistentVolume", pv("other", claim=("testns", "d", "u"), phase="Bound")))],
     ["a", "b", "big"], ["a", "b", "big"], ["mine"]),
    # assuming a PV pre-bound takes it out of the candidates and files it under its claim;
    # restoring puts it back
    ([("apply", ("PersistentVolume", pv("a"))), ("apply", ("PersistentVolume", pv("b"))), ("assume-pv", "a")],
     ["b"], ["b"], ["a"]),
    ([("apply", ("PersistentVolume", pv("a"))), ("apply", ("PersistentVolume", pv("b"))), ("assume-pv", "a"),
      ("restore-pv", "a")],
     ["a", "b"], ["a", "b"], []),
    # the API's version bound to the claim (newer than the assumption) keeps it pre-bound
    ([("apply", ("PersistentVolume", pv("a"))), ("assume-pv", "a"),
      ("apply", ("PersistentVolume", pv("a", rv="2", claim=_BOUND, phase="Bound")))],
     [], [], ["a"]),
    # an update that resizes a PV moves it in the size order; one that binds it elsewhere drops it
    ([("apply", ("PersistentVolume", pv("a", size="5G"))), ("apply", ("PersistentVolume", pv("b", size="6G"))),
      ("apply", ("PersistentVolume", pv("a", size="7G", rv="2"))),
      ("apply", ("PersistentVolume", pv("c", size="1G"))),
      ("apply", ("PersistentVolume", pv("c", rv="2", claim=("testns", "d", "u"), phase="Bound")))],
     ["a", "b"], ["b", "a"], []),
    # deleting PVs (candidate, pre-bound, assumed) forgets them everywhere
    ([("apply", ("PersistentVolume", pv("a"))), ("apply", ("PersistentVolume", pv("b"))),
      ("apply", ("PersistentVolume", pv("mine", claim=_BOUND))), ("assume-pv", "b"),
      ("delete", ("PersistentVolume", {"metadata": {"name": "a"}})),
      ("delete", ("PersistentVolume", {"metadata": {"name": "b"}})),
      ("delete", ("PersistentVolume", {"metadata": {"name": "mine"}}))],
     [], [], []),
    # a PV that changes class moves to the other class's candidates
    ([("apply", ("PersistentVolume", pv("a"))), ("apply", ("PersistentVolume", pv("a", rv="2", cls="other")))],
     [], [], []),
], ids=["what-counts", "assume", "restore", "api-caught-up", "update", "delete", "class-change"])
def test_candidate_pvs_follow_the_changes(steps: list[tuple[str, Any]], available: list[str], by_size: list[str],
                                          prebound: list[str]) -> None:
    v = Volumes()
    for op, arg in steps:
        _step(v, op, arg)
    assert sorted(v.available_of_class("waitClass")) == available
    assert [p.name for p in v.available_by_size("waitClass")] == by_size
    assert sorted(v.prebound_to("testns/c")) == prebound
    shapes: dict[Any, int] = {}
    for held in v.available_of_class("waitClass").values():
        shapes[pv_shape(held)] = shapes.get(pv_shape(held), 0) + 1
    assert v.available_shapes("waitClass") == shapes  # counted as the candidates come and go
    # what is filed is the version the scheduler sees (the assumed one when assumed)
    for name, held in [*v.available_of_class("waitClass").items(), *v.prebound_to("testns/c").items()]:
        assert held is v.pv(name)


@pytest.mark.parametrize("before, claim_uid, want_dirty, want_annotation", [
    # GetBindVolumeToClaim: claimRef set and bound-by-controller added for an unbound PV
    (pv("p"), "pvc-uid", True, "yes"),
    # already bound to the claim (pvNode1aBound): nothing to change
    (pv("p", claim=("testns", "c", "pvc-uid")), "pvc-uid", False, "yes"),
    # pre-bound by the user without a uid: the uid is filled in, no bound-by-controller
    ({**pv("p"), "spec": {**pv("p")["spec"], "claimRef": {"namespace": "testns", "name": "c"}}}, "pvc-uid", True,
     None),
])
def test_with_claim_ref(before: dict[str, Any], claim_uid: str, want_dirty: bool, want_annotation: str | None) -> None:
    claim = pvc_from_json(pvc("c"))
    got, dirty = with_claim_ref(pv_from_json(before), claim)
    assert dirty is want_dirty
    assert got.claim_ref is not None and (got.claim_ref.key, got.claim_ref.uid) == ("testns/c", claim_uid)
    assert got.annotations.get(BOUND_BY_CONTROLLER) == want_annotation
    assert got.raw["spec"]["claimRef"]["uid"] == claim_uid


def test_pv_node_matches_sees_labels_only() -> None:
    """CheckNodeAffinity matches a node built from the labels alone: a matchFields term on
    metadata.name sees an empty name."""
    by_label = pv_from_json(pv("p", node="node1"))
    by_name = pv_from_json({"metadata": {"name": "p"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node1"]}]}]}}}})
    not_named = pv_from_json({"metadata": {"name": "p"}, "spec": {"nodeAffinity": {"required": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["x"]}]}]}}}})
    n1 = node("node1", nodeKey="node1")
    assert pv_node_matches(by_label, n1) and not pv_node_matches(by_label, node("node2", nodeKey="node2"))
    assert not pv_node_matches(by_name, n1) and pv_node_matches(not_named, n1)
    assert pv_node_matches(pv_from_json(pv("free")), n1)  # no node affinity: every node


# ---- bindings_done: checkBindings (binder_test.go TestCheckBindings) --------------------------------

UNBOUND = pvc("unbound-pvc", size="1G")
UNBOUND2 = pvc("unbound-pvc2", size="5G")
PREBOUND_1A = pvc("unbound-pvc", state="prebound", volume="pv-node1a")
BOUND_1A = pvc("unbound-pvc", state="bound", volume="pv-node1a")
PROVISIONED = pvc("provisioned-pvc", size="1Gi", cls="waitClassWithProvisioner")
PROVISIONED_BOUND = pvc("provisioned-pvc", size="1Gi", cls="waitClassWithProvisioner", state="bound",
                        volume="pv-bound")
PV_1A = pv("pv-node1a", node="node1", size="5G")
PV_1A_BOUND = pv("pv-node1a", node="node1", size="5G", claim=("testns", "unbound-pvc", "pvc-uid"))
PV_1B_BOUND = pv("pv-node1b", node="node1", size="10G", claim=("testns", "unbound-pvc2", "pvc-uid"))
PV_BOUND = pv("pv-bound", node="node1", size="1G", claim=("testns", "bound-pvc", "pvc-uid"))


def _ann(obj: dict[str, Any], **ann: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {**obj, "metadata": {**meta, "annotations": {**meta.get("annotations", {}), **ann}}}


def _no_annotations(obj: dict[str, Any], *, empty: bool) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k != "annotations"}
    if empty:
        meta["annotations"] = {}
    return {**obj, "metadata": meta}


def _no_claim_uid(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    return {**obj, "spec": {**spec, "claimRef": {**spec["claimRef"], "uid": ""}}}


SEL = {SELECTED_NODE: "node1"}
CHECK_CASES = [
    # (id, initPVs, initPVCs, bindings (claim json, assumed pv json), provisions (claim json),
    #  apiPVs, apiPVCs, deletePVs, deletePVCs, want)
    ("nothing-to-bind", [], [], [], [], [], [], False, False, (True, "")),
    # the claim is fully bound and the PV names it with a uid
    ("binding-bound", [PV_1A_BOUND], [BOUND_1A], [(UNBOUND, PV_1A_BOUND)], [], [], [], False, False, (True, "")),
    # the PV controller has not finished: wait
    ("binding-prebound", [PV_1A_BOUND], [PREBOUND_1A], [(UNBOUND, PV_1A_BOUND)], [], [], [], False, False,
     (False, "")),
    ("binding-unbound", [PV_1A_BOUND], [UNBOUND], [(UNBOUND, PV_1A_BOUND)], [], [], [], False, False, (False, "")),
    ("binding-pvc-not-exists", [PV_1A_BOUND], [], [(UNBOUND, PV_1A_BOUND)], [], [], [], False, False,
     (False, 'failed to check binding: could not find v1.PersistentVolumeClaim "testns/unbound-pvc"')),
    ("binding-pv-not-exists", [PV_1A_BOUND], [BOUND_1A], [(UNBOUND, PV_1A_BOUND)], [], [], [], True, False,
     (False, 'failed to check binding: could not find v1.PersistentVolume "pv-node1a"')),
    # the API's newer PV has no claimRef: the PV controller unbound it
    ("binding-claimref-nil", [PV_1A], [BOUND_1A], [(UNBOUND, PV_1A_BOUND)], [], [bump(PV_1A, "2")],
     [bump(BOUND_1A, "2")], False, False, (False, 'ClaimRef got reset for pv "pv-node1a"')),
    ("binding-claimref-uid-empty", [PV_1A_BOUND], [BOUND_1A], [(UNBOUND, PV_1A_BOUND)], [],
     [bump(_no_claim_uid(PV_1A_BOUND), "2")], [bump(BOUND_1A, "2")], False, False,
     (False, 'ClaimRef got reset for pv "pv-node1a"')),
    ("binding-one-bound,one-unbound", [PV_1A_BOUND, PV_1B_BOUND], [BOUND_1A, UNBOUND2],
     [(UNBOUND, PV_1A_BOUND), (UNBOUND2, PV_1B_BOUND)], [], [], [], False, False, (False, "")),
    ("provisioning-pvc-bound", [PV_BOUND], [PROVISIONED_BOUND], [], [PROVISIONED], [],
     [bump(_ann(PROVISIONED_BOUND, **SEL), "2")], False, False, (True, "")),
    # the assumed claim still hides the API's (the update has not come back): wait
    ("provisioning-pvc-unbound", [], [_ann(PROVISIONED, **SEL)], [], [PROVISIONED], [], [], False, False,
     (False, "")),
    ("provisioning-pvc-not-exists", [], [PROVISIONED], [], [PROVISIONED], [], [], False, True,
     (False, 'failed to check provisioning pvc: could not find v1.PersistentVolumeClaim "testns/provisioned-pvc"')),
    # annotations gone altogether (Go's nil map) or emptied (the provisioner gave up)
    ("provisioning-pvc-annotations-nil", [], [PROVISIONED], [], [PROVISIONED], [],
     [bump(_no_annotations(PROVISIONED, empty=False), "2")], False, False,
     (False, 'selectedNode annotation reset for PVC "provisioned-pvc"')),
    ("provisioning-pvc-selected-node-dropped", [], [PROVISIONED], [], [PROVISIONED], [],
     [bump(_no_annotations(PROVISIONED, empty=True), "2")], False, False,
     (False, 'provisioning failed for PVC "provisioned-pvc"')),
    ("provisioning-pvc-selected-node-wrong-node", [], [PROVISIONED], [], [PROVISIONED], [],
     [bump(_ann(PROVISIONED, **{SELECTED_NODE: "wrong-node"}), "2")], False, False,
     (False, 'provisioning failed for PVC "provisioned-pvc"')),
    ("binding-bound-provisioning-unbound", [PV_1A_BOUND], [BOUND_1A, _ann(PROVISIONED, **SEL)],
     [(UNBOUND, PV_1A_BOUND)], [PROVISIONED], [], [], False, False, (False, "")),
    # the claim names a PV the informer has not delivered: wait
    ("tolerate-provisioning-pvc-bound-pv-not-found", [PV_1A], [PROVISIONED], [], [PROVISIONED], [],
     [bump(_ann(PROVISIONED_BOUND, **SEL), "2")], True, False, (False, "")),
    # not upstream's table: the PV's node affinity does not match the node any more
    ("binding-node-affinity-mismatch", [pv("pv-node1a", node="node2", claim=("testns", "unbound-pvc", "pvc-uid"))],
     [BOUND_1A], [(UNBOUND, pv("pv-node1a", node="node2", claim=("testns", "unbound-pvc", "pvc-uid")))], [], [], [],
     False, False,
     (False, 'pv "pv-node1a" node affinity doesn\'t match node "node1": no matching NodeSelectorTerms')),
    ("provisioned-pv-node-affinity-mismatch", [pv("pv-bound", node="node2")], [PROVISIONED], [], [PROVISIONED], [],
     [bump(_ann(PROVISIONED_BOUND, **SEL), "2")], False, False,
     (False, 'pv "pv-bound" node affinity doesn\'t match node "node1": no matching NodeSelectorTerms')),
]


@pytest.mark.parametrize("init_pvs, init_pvcs, bindings, provisions, api_pvs, api_pvcs, delete_pvs, delete_pvcs, want",
                         [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES])
def test_bindings_done(init_pvs: list[Any], init_pvcs: list[Any], bindings: list[tuple[Any, Any]],
                       provisions: list[Any], api_pvs: list[Any], api_pvcs: list[Any], delete_pvs: bool,
                       delete_pvcs: bool, want: tuple[bool, str]) -> None:
    v = Volumes()
    for o in init_pvs:
        v.apply("PersistentVolume", o)
    for o in init_pvcs:
        v.apply("PersistentVolumeClaim", o)
    # assumeVolumes: the PVs as Reserve pre-bound them (only those it changed: upstream's
    # "dirty"), the claims as Reserve annotated them
    for claim_json, assumed in bindings:
        held_pv = v.pv(assumed["metadata"]["name"])
        if held_pv is not None and with_claim_ref(held_pv, pvc_from_json(claim_json))[1]:
            v.assume_pv(pv_from_json(assumed))
    for claim in provisions:
        held = v.claim("testns", claim["metadata"]["name"])
        if held is not None:
            v.assume_claim(with_selected_node(held, "node1"))
    for o in init_pvs if delete_pvs else ():
        v.delete("PersistentVolume", o)
    for o in init_pvcs if delete_pvcs else ():
        v.delete("PersistentVolumeClaim", o)
    for o in api_pvs:
        v.apply("PersistentVolume", o)
    for o in api_pvcs:
        v.apply("PersistentVolumeClaim", o)
    plan = VolumeBindingPlan(
        "node1", tuple((p["metadata"]["name"], f"testns/{c['metadata']['name']}") for c, p in bindings),
        tuple(f"testns/{c['metadata']['name']}" for c in provisions), (), 600.0)
    assert bindings_done(v, plan, node("node1", nodeKey="node1")) == want


def test_claim_and_pv_records_are_frozen() -> None:
    claim: PersistentVolumeClaim = pvc_from_json(pvc("c"))
    with pytest.raises(AttributeError):
        claim.name = "d"  # type: ignore[misc]
