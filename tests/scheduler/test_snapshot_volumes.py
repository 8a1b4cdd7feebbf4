"""Snapshots with storage objects: `kubectl get nodes,pods,pv,pvc,storageclasses,csinodes,
csidrivers,csistoragecapacities -A -o json` read into the table's ``Volumes``, as the live
scheduler's informers fill it; a malformed or repeated storage object is a SnapshotError
naming the file, the object and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.snapshot import SnapshotError, load_snapshot
from scoring.framework import Profile
from scoring.objects import pod_from_json
from scoring.plugins import volume_binding
from scoring.volumes import VOLUME_BINDING_PLAN, VolumeBindingPlan, Volumes


def _node(name: str, zone: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def _pv(name: str, *, size: Any = "10Gi", claim: str = "", node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "local", "local": {"path": f"/mnt/{name}"}}
    if claim:
        ns, cname = claim.split("/")
        spec["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": cname, "uid": f"uid-{cname}"}
    if node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "resourceVersion": "7"},
            "spec": spec, "status": {"phase": "Bound" if claim else "Available"}}


def _pvc(name: str, *, request: Any = "5Gi", volume: str = "", cls: str | None = "local") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": request}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume:
        spec["volumeName"] = volume
    meta: dict[str, Any] = {"name": name, "namespace": "app", "uid": f"uid-{name}"}
    if volume:
        meta["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec,
            "status": {"phase": "Bound" if volume else "Pending"}}


def _class(name: str, mode: str = "WaitForFirstConsumer", provisioner: str = "kubernetes.io/no-provisioner",
           default: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta,
            "provisioner": provisioner, "volumeBindingMode": mode}


def _csinode(name: str, count: Any = 16) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": name},
            "spec": {"drivers": [{"name": "csi.vecsched.io", "nodeID": name,
                                  "topologyKeys": ["topology.kubernetes.io/zone"], "allocatable": {"count": count}}]}}


def _driver(name: str = "csi.vecsched.io", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name}, "spec": spec}


def _capacity(name: str, capacity: Any = "100Gi", zone: str = "a") -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity",
            "metadata": {"name": name, "namespace": "kube-system"}, "storageClassName": "zonal",
            "nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": zone}}, "capacity": capacity}


def _storage_objects() -> list[dict[str, Any]]:
    return [_pv("pv-a", node="n1"), _pv("pv-b", size="20Gi", claim="app/logs", node="n2"),
            _pvc("data"), _pvc("logs", request="20Gi", volume="pv-b"),
            _class("local"), _class("zonal", "WaitForFirstConsumer", "csi.vecsched.io", default=True),
            _csinode("n1"), _csinode("n2", count=8), _driver(attachRequired=False, storageCapacity=True),
            _capacity("cap-a"), _capacity("cap-b", "50Gi", "b")]


def _write_list(tmp_path: Path, items: list[dict[str, Any]]) -> Path:
    # kubectl get ... -A -o json writes one List whose items carry their kind
    path = tmp_path / "snap.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


@pytest.mark.parametrize("layout", ["json-list", "yaml-documents"])
def test_every_storage_kind_is_read_into_volumes(tmp_path: Path, layout: str) -> None:
    items = [_node("n1", "a"), _node("n2", "b"), *_storage_objects()]
    if layout == "json-list":
        path = _write_list(tmp_path, items)
    else:
        path = tmp_path / "snap.yaml"
        path.write_text(yaml.safe_dump_all(items))
    snap = load_snapshot(path)
    v = Volumes.of(snap.table)
    pv_a, pv_b = v.pv("pv-a"), v.pv("pv-b")
    assert pv_a is not None and pv_b is not None
    # 10Gi = 10 * 2^30 bytes; 20Gi = 21474836480
    assert (pv_a.capacity, pv_a.claim_ref, pv_a.phase) == (10 * 2**30, None, "Available")
    assert pv_b.capacity == 21474836480 and pv_b.claim_ref is not None and pv_b.claim_ref.key == "app/logs"
    assert pv_a.node_affinity is not None and pv_a.storage_class == "local"
    data, logs = v.claim("app", "data"), v.claim("app", "logs")
    assert data is not None and logs is not None
    assert (data.request, data.volume_name, data.storage_class) == (5 * 2**30, "", "local")
    assert (logs.volume_name, logs.phase) == ("pv-b", "Bound")
    local, zonal = v.storage_class("local"), v.storage_class("zonal")
    assert local is not None and zonal is not None
    assert (local.provisioner, local.binding_mode, local.is_default) == \
        ("kubernetes.io/no-provisioner", "WaitForFirstConsumer", False)
    default = v.default_class()
    assert default is not None and default.name == "zonal"
    n1, n2 = v.csinode("n1"), v.csinode("n2")
    assert n1 is not None and n2 is not None
    assert (n1.drivers["csi.vecsched.io"].allocatable_count, n2.drivers["csi.vecsched.io"].allocatable_count) == (16, 8)
    driver = v.driver("csi.vecsched.io")
    assert driver is not None and (driver.attach_required, driver.storage_capacity) == (False, True)
    # 100Gi and 50Gi of the zonal class, one capacity per zone
    assert sorted((c.name, c.capacity) for c in v.capacities()) == [("cap-a", 100 * 2**30), ("cap-b", 50 * 2**30)]
    # The nodes are read as before, and a snapshot with storage objects has no pod
    assert [n.name for n in snap.nodes] == ["n1", "n2"] and snap.pods == []


def test_a_decision_on_the_snapshot_reads_its_volumes(tmp_path: Path) -> None:
    # pv-a (10Gi, Available) is on n1 and can take the unbound 5Gi claim "data" of the WaitForFirstConsumer
    # class "local"; pv-b is bound to "logs". On n2 no volume fits: VolumeBinding's Filter rejects it, the
    # pod goes to n1, and Reserve plans the static binding pv-a <- app/data.
    items = [_node("n1", "a"), _node("n2", "b"), *_storage_objects()]
    snap = load_snapshot(_write_list(tmp_path, items))
    vb = volume_binding.new({}, "args")
    profile = Profile(name="volumes", prefilters=[vb], filters=[vb], scorers=[], reservers=[vb])
    pod = pod_from_json({"metadata": {"name": "app", "namespace": "app", "uid": "uid-app"},
                         "spec": {"containers": [{"name": "c"}],
                                  "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    d = profile.schedule(pod, snap.table)
    assert d.node == "n1"
    assert d.reasons_of(snap.table.index["n2"]) == ["node(s) didn't find available persistent volumes to bind"]
    plan = d.state[VOLUME_BINDING_PLAN]
    assert isinstance(plan, VolumeBindingPlan)
    assert (plan.node, plan.bindings, plan.provisions, plan.claims) == \
        ("n1", (("pv-a", "app/data"),), (), ("app/data",))


def test_a_snapshot_without_storage_objects_has_empty_volumes(tmp_path: Path) -> None:
    snap = load_snapshot(_write_list(tmp_path, [_node("n1", "a")]))
    v = Volumes.of(snap.table)
    assert (list(v.pvs()), v.default_class(), list(v.capacities())) == ([], None, [])


@pytest.mark.parametrize(("objects", "expected"), [
    pytest.param([_pv("pv-x", size="lots")],
                 "items[1]: PersistentVolume pv-x: spec.capacity.storage:", id="pv-capacity-not-a-quantity"),
    pytest.param([_pvc("c", request="-1Gi")],
                 "items[1]: PersistentVolumeClaim app/c: spec.resources.requests.storage:", id="pvc-negative-request"),
    pytest.param([_class("sc", mode="Later")],
                 "items[1]: StorageClass sc: volumeBindingMode: must be one of Immediate, WaitForFirstConsumer, "
                 "got 'Later'", id="storageclass-unknown-binding-mode"),
    pytest.param([_csinode("n1", count=-3)],
                 "items[1]: CSINode n1: spec.drivers[0].allocatable.count: expected a non-negative integer, got -3",
                 id="csinode-negative-count"),
    pytest.param([_driver(attachRequired="yes")],
                 "items[1]: CSIDriver csi.vecsched.io: spec.attachRequired: expected true or false, got 'yes'",
                 id="csidriver-attach-required-not-a-bool"),
    pytest.param([_capacity("cap", capacity="much")],
                 "items[1]: CSIStorageCapacity kube-system/cap: capacity:", id="capacity-not-a-quantity"),
    pytest.param([_pv("pv-a"), _pv("pv-a")],
                 "items[2]: PersistentVolume pv-a: metadata.name: duplicate PersistentVolume", id="duplicate-pv"),
    pytest.param([_pvc("c"), _pvc("c")],
                 "items[2]: PersistentVolumeClaim app/c: metadata.name: duplicate PersistentVolumeClaim",
                 id="duplicate-pvc"),
    pytest.param([_class("sc"), _class("sc")],
                 "items[2]: StorageClass sc: metadata.name: duplicate StorageClass", id="duplicate-storageclass"),
    pytest.param([_csinode("n1"), _csinode("n1")],
                 "items[2]: CSINode n1: metadata.name: duplicate CSINode", id="duplicate-csinode"),
    pytest.param([_driver(), _driver()],
                 "items[2]: CSIDriver csi.vecsched.io: metadata.name: duplicate CSIDriver", id="duplicate-csidriver"),
    pytest.param([_capacity("cap"), _capacity("cap")],
                 "items[2]: CSIStorageCapacity kube-system/cap: metadata.name: duplicate CSIStorageCapacity",
                 id="duplicate-capacity"),
])
def test_an_invalid_storage_object_is_a_snapshot_error(tmp_path: Path, objects: list[dict[str, Any]],
                                                       expected: str) -> None:
    path = _write_list(tmp_path, [_node("n1", "a"), *objects])
    with pytest.raises(SnapshotError) as err:
        load_snapshot(path)
    # one line: the file, the object's place in it, the object, the field
    message = str(err.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_an_unknown_kind_still_lists_the_storage_kinds(tmp_path: Path) -> None:
    path = _write_list(tmp_path, [{"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                                   "metadata": {"name": "va"}}])
    with pytest.raises(SnapshotError) as err:
        load_snapshot(path)
    assert "kind: expected Node, Pod," in str(err.value)
    assert ("PersistentVolume, PersistentVolumeClaim, StorageClass, CSINode, CSIDriver, CSIStorageCapacity, "
            "got 'VolumeAttachment'") in str(err.value)
