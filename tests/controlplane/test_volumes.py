"""Persistent volumes in the embedded control plane: binding, provisioning, reclaiming, CSINodes.

The matching rules are checked as a table ported from upstream's
``index_test.go`` (persistentvolume controller); everything else runs against
the API server on loopback: objects are written over HTTP as a user or the
scheduler's PreBind would write them (the scheduler's choice of a node is
played by setting ``volume.kubernetes.io/selected-node`` on a claim, as
vecsched's volume binder does), and the controllers' answers are read back.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape
from scheduler.apiserver.controllers import GarbageCollector, StatefulSetController
from scheduler.apiserver.controllers import VOLUME_CONTROLLERS
from scheduler.apiserver.controllers.volumes import default_class, find_best_match
from scheduler.apiserver.store import Entry
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane, wait_async, wait_for

SELECTED = "volume.kubernetes.io/selected-node"
ZONE = "topology.kubernetes.io/zone"
DRIVER = "csi.vecsched.io"
_PATHS = {
    "PersistentVolume": "/api/v1/persistentvolumes",
    "PersistentVolumeClaim": "/api/v1/namespaces/default/persistentvolumeclaims",
    "Pod": "/api/v1/namespaces/default/pods",
    "StorageClass": "/apis/storage.k8s.io/v1/storageclasses",
    "StatefulSet": "/apis/apps/v1/namespaces/default/statefulsets",
    "Node": "/api/v1/nodes",
}


# ---- FindMatchingVolume / findBestMatchForClaim, as upstream's index_test.go --------------------------------


def pv(name: str, size: str, *modes: str, cls: str = "", labels: Mapping[str, str] | None = None,
       claim: Mapping[str, str] | None = None, phase: str = "Available", mode: str | None = None,
       beta_class: str | None = None, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
    if beta_class is not None:
        meta["annotations"] = {"volume.beta.kubernetes.io/storage-class": beta_class}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes or ("ReadWriteOnce",))}
    if cls:
        spec["storageClassName"] = cls
    if claim is not None:
        spec["claimRef"] = dict(claim)
    if mode is not None:
        spec["volumeMode"] = mode
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec, "status": {"phase": phase}}


def pvc(size: str, *modes: str, name: str = "claim01", cls: str | None = None, selector: Any = None,
        mode: str | None = None, beta_class: str | None = None, volume: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "myns", "uid": "claim01-uid"}
    if beta_class is not None:
        meta["annotations"] = {"volume.beta.kubernetes.io/storage-class": beta_class}
    spec: dict[str, Any] = {"accessModes": list(modes or ("ReadOnlyMany", "ReadWriteOnce")),
                            "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    if mode is not None:
        spec["volumeMode"] = mode
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


RWO, ROX, RWX = "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"
BOUND_ELSEWHERE = {"namespace": "other", "name": "other", "uid": "abc123"}
PREBOUND = {"namespace": "myns", "name": "claim01"}  # a user's pre-binding: no uid yet
# createTestVolumes (index_test.go); upstream names each by uid, here by that uid.
TEST_VOLUMES = [
    pv("gce-pd-10", "10G", RWO, ROX),
    pv("gce-pd-20", "20G", RWO, ROX, claim={"uid": "def456"}),
    pv("nfs-5", "5G", RWO, ROX, RWX),
    pv("gce-pd-1", "1G", RWO, ROX, claim={"uid": "abc123"}),
    pv("nfs-10", "10G", RWO, ROX, RWX),
    pv("gce-pd-5", "5G", RWO, ROX),
    pv("nfs-1", "1G", RWO, ROX, RWX),
    pv("gce-pd-2", "20000G", RWO, labels={"should-exist": "true"}),
    pv("gce-pd-silver1", "10000G", RWO, labels={"should-exist": "true"}, beta_class="silver"),
    pv("gce-pd-silver2", "100G", RWO, beta_class="silver"),
    pv("gce-pd-gold", "50G", RWO, beta_class="gold"),
]
SHOULD_EXIST = {"matchLabels": {"should-exist": "true"}}
DIFFERENT_MODES = [pv("gce", "10G", RWO, ROX), pv("ebs", "10G", RWO), pv("nfs", "10G", RWO, ROX, RWX)]
PREBOUND_SIZES = [pv("pv1", "1Gi"), pv("pv5", "5Gi"), pv("pv8", "8Gi"), pv("pvBadSize", "1Mi"),
                  pv("pvBadMode", "1Gi", ROX)]


def _with(volumes: list[dict[str, Any]], name: str, **changes: Any) -> list[dict[str, Any]]:
    """``volumes`` with one of them rebuilt with ``changes`` to its spec/metadata."""
    out = []
    for v in volumes:
        v = json.loads(json.dumps(v))
        if v["metadata"]["name"] == name:
            for k, val in changes.items():
                if k == "claim":
                    v["spec"]["claimRef"] = val
                elif k == "phase":
                    v["status"]["phase"] = val
                else:
                    v["spec"][k] = val
        out.append(v)
    return out


MATCH_CASES = [
    # TestMatchVolume. The claim asks for ROX+RWO: gce-pd-1 (1G) is bound elsewhere, so 8G -> the 10G
    # one of the RWO+ROX group (the group with fewest modes that offers both).
    pytest.param(TEST_VOLUMES, pvc("8G"), False, "gce-pd-10", id="TestMatchVolume/successful-match-gce-10"),
    # RWX too: only the RWO+ROX+RWX group; 5G -> nfs-5 (nfs-10 is larger).
    pytest.param(TEST_VOLUMES, pvc("5G", ROX, RWO, RWX), False, "nfs-5", id="TestMatchVolume/successful-match-nfs-5"),
    # 1G: gce-pd-1 is bound to another claim, so the next size up, gce-pd-5.
    pytest.param(TEST_VOLUMES, pvc("1G"), False, "gce-pd-5", id="TestMatchVolume/successful-skip-1g-bound-volume"),
    pytest.param(TEST_VOLUMES, pvc("999G"), False, None, id="TestMatchVolume/successful-no-match"),
    pytest.param(TEST_VOLUMES, pvc("999G", selector={"matchLabels": {"should-not-exist": "true"}}), False, None,
                 id="TestMatchVolume/successful-no-match-due-to-label"),
    # 20000G with ROX+RWO: gce-pd-2 is RWO only, gce-pd-silver1 has class silver -> nothing.
    pytest.param(TEST_VOLUMES, pvc("20000G", selector=SHOULD_EXIST), False, None,
                 id="TestMatchVolume/successful-no-match-due-to-size-constraint-with-label-selector"),
    pytest.param(TEST_VOLUMES, pvc("20000G", RWO, selector=SHOULD_EXIST), False, "gce-pd-2",
                 id="TestMatchVolume/successful-match-due-with-constraint-and-label-selector"),
    # class silver (beta annotation) and the label: silver1 (silver2 has no label).
    pytest.param(TEST_VOLUMES, pvc("1G", RWO, beta_class="silver", selector=SHOULD_EXIST), False, "gce-pd-silver1",
                 id="TestMatchVolume/successful-match-with-class"),
    # class silver, no selector: silver2 (100G) is smaller than silver1 (10000G).
    pytest.param(TEST_VOLUMES, pvc("1G", RWO, beta_class="silver"), False, "gce-pd-silver2",
                 id="TestMatchVolume/successful-match-with-class-and-labels"),
    # the class through spec.storageClassName reads the same as through the beta annotation.
    pytest.param(TEST_VOLUMES, pvc("1G", RWO, cls="gold"), False, "gce-pd-gold", id="storageClassName-field"),
    # TestMatchingWithBoundVolumes: two equal volumes, the first bound elsewhere.
    pytest.param([pv("gce001", "1G", RWO, ROX, claim={"uid": "abc123"}), pv("gce002", "1G", RWO, ROX)],
                 pvc("1G"), False, "gce002", id="TestMatchingWithBoundVolumes"),
    # TestFindingVolumeWithDifferentAccessModes, step by step: RWO -> the RWO-only ebs ...
    pytest.param(DIFFERENT_MODES, pvc("1G", RWO), False, "ebs", id="TestFindingVolumeWithDifferentAccessModes/rwo"),
    pytest.param(DIFFERENT_MODES, pvc("1G", RWO, ROX), False, "gce",
                 id="TestFindingVolumeWithDifferentAccessModes/rwo-rox"),
    pytest.param(DIFFERENT_MODES, pvc("1G", RWX, RWO, ROX), False, "nfs",
                 id="TestFindingVolumeWithDifferentAccessModes/order-does-not-matter"),
    pytest.param(DIFFERENT_MODES, pvc("1G", RWX), False, "nfs",
                 id="TestFindingVolumeWithDifferentAccessModes/fewer-modes"),
    # ... the exact match taken: the next level of modes up, then the next.
    pytest.param(_with(DIFFERENT_MODES, "ebs", claim=BOUND_ELSEWHERE), pvc("1G", RWO), False, "gce",
                 id="TestFindingVolumeWithDifferentAccessModes/exact-bound"),
    pytest.param(_with(_with(DIFFERENT_MODES, "ebs", claim=BOUND_ELSEWHERE), "gce", claim=BOUND_ELSEWHERE),
                 pvc("1G", RWO), False, "nfs", id="TestFindingVolumeWithDifferentAccessModes/next-bound"),
    pytest.param(_with(DIFFERENT_MODES, "ebs", claim=BOUND_ELSEWHERE), pvc("1G", ROX), False, "gce",
                 id="TestFindingVolumeWithDifferentAccessModes/partial-mode"),
    # TestFindingPreboundVolumes: 1Gi -> pv1 exactly ...
    pytest.param(PREBOUND_SIZES, pvc("1Gi", RWO), False, "pv1", id="TestFindingPreboundVolumes/exact"),
    # ... pv1 pre-bound to another claim: pv5, the next size up ...
    pytest.param(_with(PREBOUND_SIZES, "pv1", claim={"namespace": "bar", "name": "foo"}), pvc("1Gi", RWO), False,
                 "pv5", id="TestFindingPreboundVolumes/exact-prebound-elsewhere"),
    # ... pv8 pre-bound to this claim wins over the smaller pv1 ...
    pytest.param(_with(PREBOUND_SIZES, "pv8", claim=PREBOUND), pvc("1Gi", RWO), False, "pv8",
                 id="TestFindingPreboundVolumes/largest-prebound"),
    # ... but not one too small (1Mi < 1Gi), nor one without the claim's access mode.
    pytest.param(_with(PREBOUND_SIZES, "pvBadSize", claim=PREBOUND), pvc("1Gi", RWO), False, "pv1",
                 id="TestFindingPreboundVolumes/prebound-too-small"),
    pytest.param(_with(PREBOUND_SIZES, "pvBadMode", claim=PREBOUND), pvc("1Gi", RWO), False, "pv1",
                 id="TestFindingPreboundVolumes/prebound-wrong-mode"),
    # FindMatchingVolume's other rules: a delayed (WaitForFirstConsumer) claim takes only a pre-bound volume...
    pytest.param(PREBOUND_SIZES, pvc("1Gi", RWO), True, None, id="delay-binding-skips-unbound"),
    pytest.param(_with(PREBOUND_SIZES, "pv5", claim=PREBOUND), pvc("1Gi", RWO), True, "pv5",
                 id="delay-binding-takes-prebound"),
    # ... volumes not Available (Released, or not synced yet) and volumes being deleted are skipped ...
    pytest.param(_with(PREBOUND_SIZES, "pv1", phase="Released"), pvc("1Gi", RWO), False, "pv5", id="not-available"),
    pytest.param([pv("a", "1Gi", deleting=True), pv("b", "2Gi")], pvc("1Gi", RWO), False, "b", id="being-deleted"),
    # ... and the volume mode must be the claim's (Filesystem when unset).
    pytest.param([pv("fs", "1Gi"), pv("block", "5Gi", mode="Block")], pvc("1Gi", RWO, mode="Block"), False, "block",
                 id="volume-mode-block"),
    pytest.param([pv("block", "1Gi", mode="Block"), pv("fs", "5Gi", mode="Filesystem")], pvc("1Gi", RWO), False,
                 "fs", id="volume-mode-filesystem-default"),
]


@pytest.mark.parametrize(("volumes", "claim", "delay", "want"), MATCH_CASES)
def test_find_best_match(volumes: list[dict[str, Any]], claim: dict[str, Any], delay: bool, want: str | None) -> None:
    found = find_best_match(claim, volumes, delay_binding=delay)
    assert (found["metadata"]["name"] if found is not None else None) == want


def sc(name: str, *, created: str = "2024-01-01T00:00:00Z", default: str | None = None,
       beta_default: str | None = None, provisioner: str = DRIVER, mode: str = "Immediate",
       **extra: Any) -> dict[str, Any]:
    ann = {}
    if default is not None:
        ann["storageclass.kubernetes.io/is-default-class"] = default
    if beta_default is not None:
        ann["storageclass.beta.kubernetes.io/is-default-class"] = beta_default
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "creationTimestamp": created, "annotations": ann},
            "provisioner": provisioner, "volumeBindingMode": mode, **extra}


@pytest.mark.parametrize(("classes", "want"), [
    pytest.param([sc("a"), sc("b")], None, id="none-marked"),
    pytest.param([sc("a", default="true"), sc("b")], "a", id="one"),
    pytest.param([sc("a", default="false"), sc("b", beta_default="true")], "b", id="beta-annotation"),
    # GetDefaultClass: the newest of several defaults ...
    pytest.param([sc("old", default="true", created="2024-01-01T00:00:00Z"),
                  sc("new", default="true", created="2024-02-01T00:00:00Z")], "new", id="newest"),
    # ... and of equally new ones, the first by name.
    pytest.param([sc("zeta", default="true"), sc("alpha", default="true")], "alpha", id="tie-by-name"),
])
def test_default_class(classes: list[dict[str, Any]], want: str | None) -> None:
    found = default_class(classes)
    assert (found["metadata"]["name"] if found is not None else None) == want


# ---- through the API server ---------------------------------------------------------------------------------


class Api:
    """Writes over HTTP, as kubectl or the scheduler's volume binder send them."""

    def __init__(self, srv: ApiServer, session: aiohttp.ClientSession) -> None:
        self.srv, self.session = srv, session

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.srv.url + _PATHS[obj["kind"]], json=obj) as r:
            body: dict[str, Any] = await r.json()
            assert r.status == 201, body
            return body

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        url = f"{self.srv.url}{_PATHS[obj['kind']]}/{obj['metadata']['name']}"
        async with self.session.put(url, json=obj) as r:
            body: dict[str, Any] = await r.json()
            assert r.status == 200, body
            return body

    async def delete(self, kind: str, name: str) -> None:
        async with self.session.delete(f"{self.srv.url}{_PATHS[kind]}/{name}") as r:
            assert r.status == 200, await r.text()

    async def annotate(self, kind: str, name: str, key: str, value: str) -> None:
        """GET, set one annotation, PUT (conflicts retried): what vecsched's PreBind does to a claim."""
        for _ in range(10):
            async with self.session.get(f"{self.srv.url}{_PATHS[kind]}/{name}") as r:
                obj = await r.json()
            obj["metadata"].setdefault("annotations", {})[key] = value
            async with self.session.put(f"{self.srv.url}{_PATHS[kind]}/{name}", json=obj) as r:
                if r.status == 200:
                    return
                assert r.status == 409, await r.text()
        raise AssertionError(f"{kind} {name}: annotation {key} kept conflicting")


_CREATED: dict[int, list[str]] = {}
"""Per server (by id), the names of the Events in the order they were created."""


@asynccontextmanager
async def cluster(nodes: list[NodeShape] | None = None, *extra: Any) -> AsyncIterator[tuple[ApiServer, Api]]:
    """The volume controllers (and ``extra`` ones) over 2 zoned nodes, with an HTTP client."""
    shapes = nodes or [NodeShape(count=2, cpu="4", memory="8Gi", zones=("zone-a", "zone-b"))]
    async with control_plane(*VOLUME_CONTROLLERS, *extra, nodes=shapes) as srv, aiohttp.ClientSession() as s:
        order = _CREATED[id(srv)] = []

        def on_event(key: str, old: Entry | None, new: Entry | None) -> None:
            if old is None and new is not None:
                order.append(new.name)

        srv.store.add_listener("events", on_event)
        try:
            await wait_for(lambda: len(srv.list("csinodes")) == len(srv.list("nodes")), what="CSINodes registered")
            yield srv, Api(srv, s)
        finally:
            del _CREATED[id(srv)]


def claim(name: str, size: str = "1Gi", *, cls: str | None = None, modes: tuple[str, ...] = (RWO,),
          **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "default"},
            "spec": body}


def get_claim(srv: ApiServer, name: str) -> dict[str, Any]:
    return srv.get("persistentvolumeclaims", name, namespace="default")


def phase(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase", ""))


def claim_phase(srv: ApiServer, name: str) -> str:
    return phase(get_claim(srv, name))


def events(srv: ApiServer, name: str) -> list[tuple[str, str, str, str]]:
    """(type, reason, message, source) of the Events about objects named ``name``, in the order they were
    first recorded (a repeated one is counted on the first)."""
    rank = {n: i for i, n in enumerate(_CREATED[id(srv)])}
    evs = [e for e in srv.list("events", namespace="default") if e["involvedObject"]["name"] == name]
    evs.sort(key=lambda e: rank.get(e["metadata"]["name"], -1))
    return [(e["type"], e["reason"], e["message"], e["source"]["component"]) for e in evs]


def reasons(srv: ApiServer, name: str) -> list[str]:
    return [r for _, r, _, _ in events(srv, name)]


def bound_pair(srv: ApiServer, claim_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    c = get_claim(srv, claim_name)
    return c, srv.get("persistentvolumes", c["spec"]["volumeName"])


def assert_bound(srv: ApiServer, claim_name: str, *, by_controller_pv: bool) -> dict[str, Any]:
    """The binding upstream's ``bind`` leaves: both sides point at each other, both Bound."""
    c, v = bound_pair(srv, claim_name)
    ref = v["spec"]["claimRef"]
    assert (ref["kind"], ref["apiVersion"], ref["namespace"], ref["name"], ref["uid"]) == (
        "PersistentVolumeClaim", "v1", "default", claim_name, c["metadata"]["uid"])
    assert phase(v) == "Bound" and phase(c) == "Bound"
    assert c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert c["status"]["accessModes"] == v["spec"]["accessModes"]
    assert c["status"]["capacity"] == v["spec"]["capacity"]
    pv_ann = v["metadata"].get("annotations") or {}
    assert (pv_ann.get("pv.kubernetes.io/bound-by-controller") == "yes") == by_controller_pv
    return v


STATIC_CASES = [
    # (static volumes, claim) -> the volume it binds to, or None (Pending)
    # smallest fit: 3Gi fits 5Gi and 10Gi -> 5Gi
    pytest.param([pv("small", "1Gi"), pv("mid", "5Gi"), pv("big", "10Gi")], claim("data", "3Gi"), "mid",
                 id="smallest-fit"),
    # the class must be the claim's ("gold" has no StorageClass object: matched by name only)
    pytest.param([pv("plain", "2Gi"), pv("gold", "5Gi", cls="gold")], claim("data", cls="gold"), "gold", id="class"),
    pytest.param([pv("a", "2Gi", labels={"tier": "a"}), pv("b", "1Gi", labels={"tier": "b"})],
                 claim("data", selector={"matchLabels": {"tier": "a"}}), "a", id="selector"),
    # fewest access modes first: the RWO-only 10Gi before the 1Gi that also offers ROX and RWX
    pytest.param([pv("rwo", "10Gi", RWO), pv("all", "1Gi", RWO, ROX, RWX)], claim("data"), "rwo",
                 id="fewest-access-modes"),
    pytest.param([pv("fs", "1Gi"), pv("block", "5Gi", mode="Block")], claim("data", volumeMode="Block"), "block",
                 id="volume-mode"),
    pytest.param([pv("small", "1Gi")], claim("data", "2Gi"), None, id="none-fits"),
]


def _static(v: dict[str, Any]) -> dict[str, Any]:
    """A test volume as a user creates it: no status (the server starts it Pending)."""
    return {k: val for k, val in v.items() if k != "status"}


@pytest.mark.parametrize(("volumes", "want_claim", "want"), STATIC_CASES)
async def test_immediate_claim_binds_the_best_available_volume(volumes: list[dict[str, Any]],
                                                              want_claim: dict[str, Any], want: str | None) -> None:
    async with cluster() as (srv, api):
        for v in volumes:
            await api.create(_static(v))
        # the volume loop makes the new volumes Available before any claim can take them
        await wait_for(lambda: all(phase(v) == "Available" for v in srv.list("persistentvolumes")),
                       what="volumes Available")
        await api.create(want_claim)
        if want is None:
            await wait_for(lambda: "FailedBinding" in reasons(srv, "data"), what="FailedBinding")
            assert claim_phase(srv, "data") == "Pending" and not get_claim(srv, "data")["spec"].get("volumeName")
            assert events(srv, "data")[0] == ("Normal", "FailedBinding", "no persistent volumes available for this "
                                              "claim and no storage class is set", "persistentvolume-controller")
            return
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        v = assert_bound(srv, "data", by_controller_pv=True)
        assert v["metadata"]["name"] == want
        c = get_claim(srv, "data")
        assert c["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        # the other volumes stay Available
        assert sorted(phase(o) for o in srv.list("persistentvolumes") if o["metadata"]["name"] != want) == \
            ["Available"] * (len(volumes) - 1)


async def test_claim_waiting_for_a_volume_binds_when_one_becomes_available() -> None:
    async with cluster() as (srv, api):
        await api.create(claim("data", "2Gi"))
        await wait_for(lambda: "FailedBinding" in reasons(srv, "data"), what="FailedBinding")
        await api.create(_static(pv("late", "4Gi")))
        # the volume turning Available brings the pending claim back at once (not at the 30 s resync)
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", timeout=5.0, what="claim Bound")
        assert assert_bound(srv, "data", by_controller_pv=True)["metadata"]["name"] == "late"


async def test_immediate_claim_is_provisioned_with_the_class_settings() -> None:
    zones = [{"matchLabelExpressions": [{"key": ZONE, "values": ["zone-b"]}]}]
    async with cluster() as (srv, api):
        await api.create(sc("fast", reclaimPolicy="Retain", mountOptions=["noatime"], allowedTopologies=zones))
        created = await api.create(claim("data", "3Gi", cls="fast", modes=(RWO, ROX), volumeMode="Block"))
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        v = assert_bound(srv, "data", by_controller_pv=False)  # the provisioner pre-binds its volume
        uid = created["metadata"]["uid"]
        assert v["metadata"]["name"] == f"pvc-{uid}"
        assert v["metadata"]["annotations"] == {
            "pv.kubernetes.io/provisioned-by": DRIVER, "volume.kubernetes.io/provisioner-deletion-secret-name": "",
            "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""}
        spec = dict(v["spec"])
        assert spec.pop("claimRef")["uid"] == uid
        assert spec == {
            "accessModes": [RWO, ROX], "capacity": {"storage": "3Gi"},
            "csi": {"driver": DRIVER, "volumeHandle": f"pvc-{uid}",
                    "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": "vecsched-simulated"}},
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast", "mountOptions": ["noatime"],
            "volumeMode": "Block",
            # no node was selected: the class's allowedTopologies, each label expression an In
            "nodeAffinity": {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["zone-b"]}]}]}}}
        c = get_claim(srv, "data")
        assert c["metadata"]["annotations"] == {
            "volume.beta.kubernetes.io/storage-provisioner": DRIVER, "volume.kubernetes.io/storage-provisioner": DRIVER,
            "pv.kubernetes.io/bound-by-controller": "yes", "pv.kubernetes.io/bind-completed": "yes"}
        provisioner = f"{DRIVER}_vecsched-simulated"
        assert events(srv, "data") == [
            ("Normal", "ExternalProvisioning", f"Waiting for a volume to be created either by the external provisioner "
             f"'{DRIVER}' or manually by the system administrator. If volume creation is delayed, please verify that "
             f"the provisioner is running and correctly registered.", "persistentvolume-controller"),
            ("Normal", "Provisioning", 'External provisioner is provisioning volume for claim "default/data"',
             provisioner),
            ("Normal", "ProvisioningSucceeded", f"Successfully provisioned volume pvc-{uid}", provisioner)]


@pytest.mark.parametrize(("shape", "key", "value"), [
    # a zoned node: the volume follows the node's zone (node-0000 is in zone-a)
    pytest.param(NodeShape(count=2, cpu="4", memory="8Gi", zones=("zone-a", "zone-b")), ZONE, "zone-a", id="zoned"),
    # a node without a zone: the volume is the node's own (its hostname)
    pytest.param(NodeShape(count=2, cpu="4", memory="8Gi"), "kubernetes.io/hostname", "node-0000", id="unzoned"),
])
async def test_wait_for_first_consumer_claim_waits_then_follows_the_selected_node(shape: NodeShape, key: str,
                                                                                 value: str) -> None:
    async with cluster([shape]) as (srv, api):
        await api.create(sc("local", mode="WaitForFirstConsumer"))
        await api.create(claim("data", cls="local"))
        await wait_for(lambda: "WaitForFirstConsumer" in reasons(srv, "data"), what="WaitForFirstConsumer Event")
        # waiting means: no volume, no provisioner annotation, Pending
        assert srv.list("persistentvolumes") == [] and claim_phase(srv, "data") == "Pending"
        assert "volume.kubernetes.io/storage-provisioner" not in (get_claim(srv, "data")["metadata"].get(
            "annotations") or {})
        assert events(srv, "data")[0] == ("Normal", "WaitForFirstConsumer",
                                          "waiting for first consumer to be created before binding",
                                          "persistentvolume-controller")
        await api.annotate("PersistentVolumeClaim", "data", SELECTED, "node-0000")
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        v = assert_bound(srv, "data", by_controller_pv=False)
        assert v["spec"]["nodeAffinity"] == {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}]}}
        assert reasons(srv, "data")[-3:] == ["ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"]


async def test_waiting_claim_names_the_pods_waiting_to_be_scheduled() -> None:
    async with cluster() as (srv, api):
        await api.create(sc("local", mode="WaitForFirstConsumer"))
        for name in ("b", "a"):
            await api.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                              "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "x"}],
                                       "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}})
        await api.create(claim("data", cls="local"))
        # upstream's message lists the unscheduled pods using the claim (in name order here)
        await wait_for(lambda: "WaitForPodScheduled" in reasons(srv, "data"), what="WaitForPodScheduled Event")
        assert events(srv, "data")[0][1:3] == ("WaitForPodScheduled", "waiting for pods a,b to be scheduled")


async def test_volume_prebound_by_the_scheduler_is_completed() -> None:
    """vecsched's PreBind for a static volume: the volume's claimRef (with uid) and bound-by-controller."""
    affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-0001"]}]}]}}
    async with cluster() as (srv, api):
        await api.create(sc("local", provisioner="kubernetes.io/no-provisioner", mode="WaitForFirstConsumer"))
        await api.create({**_static(pv("local-1", "10Gi", cls="local")),
                          "spec": {**pv("local-1", "10Gi", cls="local")["spec"], "nodeAffinity": affinity}})
        created = await api.create(claim("data", cls="local"))
        await wait_for(lambda: "WaitForFirstConsumer" in reasons(srv, "data"), what="claim waiting")
        # a WaitForFirstConsumer claim is never bound to an unbound volume by the controller
        assert phase(srv.get("persistentvolumes", "local-1")) == "Available" and claim_phase(srv, "data") == "Pending"
        volume = srv.get("persistentvolumes", "local-1")
        volume["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default",
                                      "name": "data", "uid": created["metadata"]["uid"]}
        volume["metadata"]["annotations"] = {"pv.kubernetes.io/bound-by-controller": "yes"}
        await api.replace(volume)
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        assert assert_bound(srv, "data", by_controller_pv=True)["metadata"]["name"] == "local-1"
        # the controller set the claim's volumeName, so the claim is bound-by-controller too
        assert get_claim(srv, "data")["metadata"]["annotations"] == {
            "pv.kubernetes.io/bound-by-controller": "yes", "pv.kubernetes.io/bind-completed": "yes"}


async def test_prebound_by_users_on_either_side() -> None:
    async with cluster() as (srv, api):
        # a volume pre-bound by its creator to a claim (no uid): that claim gets it, although smaller fits exist
        await api.create(_static(pv("small", "1Gi")))
        await api.create(_static(pv("reserved", "8Gi", claim={"namespace": "default", "name": "mine"})))
        # a claim asking for a volume by name; and one asking for a volume whose class differs
        await api.create(_static(pv("named", "2Gi")))
        await api.create(_static(pv("gold", "2Gi", cls="gold")))
        await wait_for(lambda: all(phase(v) == "Available" for v in srv.list("persistentvolumes")),
                       what="volumes Available")
        await api.create(claim("mine"))
        await api.create(claim("wants-named", volumeName="named", storageClassName=""))
        await api.create(claim("wants-gold", volumeName="gold", storageClassName=""))
        await wait_for(lambda: claim_phase(srv, "mine") == "Bound" and claim_phase(srv, "wants-named") == "Bound",
                       what="claims Bound")
        assert assert_bound(srv, "mine", by_controller_pv=False)["metadata"]["name"] == "reserved"
        # the user named the volume: the claim is not bound-by-controller, the volume is
        assert assert_bound(srv, "wants-named", by_controller_pv=True)["metadata"]["name"] == "named"
        assert get_claim(srv, "wants-named")["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes"}
        await wait_for(lambda: "VolumeMismatch" in reasons(srv, "wants-gold"), what="VolumeMismatch")
        assert events(srv, "wants-gold")[0] == (
            "Warning", "VolumeMismatch", 'Cannot bind to requested volume "gold": storageClassName does not match',
            "persistentvolume-controller")
        assert claim_phase(srv, "wants-gold") == "Pending" and phase(srv.get("persistentvolumes", "gold")) == "Available"


@pytest.mark.parametrize(("storage_class", "want"), [
    # no storageClassName: the default class is assigned (which of several: test_default_class), then provisions
    pytest.param(None, "standard", id="absent-gets-default"),
    # storageClassName "" asks for no class: no default, no provisioning
    pytest.param("", "", id="empty-stays-classless"),
    pytest.param("other", "other", id="named-kept"),
])
async def test_default_class_is_assigned_to_claims_without_one(storage_class: str | None, want: str) -> None:
    async with cluster() as (srv, api):
        await api.create(sc("other", default="false"))
        await api.create(sc("standard", default="true"))
        await api.create(claim("data", cls=storage_class))
        if want:
            await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
            c, v = bound_pair(srv, "data")
            assert (c["spec"]["storageClassName"], v["spec"]["storageClassName"]) == (want, want)
        else:
            await wait_for(lambda: "FailedBinding" in reasons(srv, "data"), what="FailedBinding")
            assert get_claim(srv, "data")["spec"]["storageClassName"] == "" and srv.list("persistentvolumes") == []


async def test_claim_of_a_class_without_provisioner_is_not_provisioned() -> None:
    async with cluster() as (srv, api):
        await api.create(sc("manual", provisioner="kubernetes.io/no-provisioner"))
        await api.create(claim("data", cls="manual"))
        await wait_for(lambda: "ProvisioningFailed" in reasons(srv, "data"), what="ProvisioningFailed")
        assert events(srv, "data")[0] == ("Warning", "ProvisioningFailed",
                                          "no volume plugin matched name: kubernetes.io/no-provisioner",
                                          "persistentvolume-controller")
        assert srv.list("persistentvolumes") == [] and claim_phase(srv, "data") == "Pending"


@pytest.mark.parametrize(("spec", "reason", "message"), [
    pytest.param({"resources": {"requests": {"storage": "lots"}}}, "InvalidQuantity",
                 "PersistentVolumeClaim data: spec.resources.requests.storage: invalid quantity 'lots'", id="quantity"),
    pytest.param({"selector": {"matchExpressions": [{"key": "a", "operator": "Sometimes"}]}}, "InvalidSelector",
                 'PersistentVolumeClaim data: spec.selector: "Sometimes" is not a valid label selector operator',
                 id="selector"),
])
async def test_unreadable_claim_is_reported_and_left_alone(spec: dict[str, Any], reason: str, message: str) -> None:
    async with cluster() as (srv, api):
        await api.create(sc("fast"))
        await api.create(_static(pv("any", "100Gi", cls="fast")))
        await wait_for(lambda: phase(srv.list("persistentvolumes")[0]) == "Available", what="volume Available")
        body = claim("data", cls="fast")
        body["spec"].update(spec)
        await api.create(body)
        await wait_for(lambda: reason in reasons(srv, "data"), what=reason)
        [(type_, got_reason, got, source)] = events(srv, "data")
        assert (type_, got_reason, source) == ("Warning", reason, "persistentvolume-controller")
        assert got.startswith(message)
        # nothing half done: not bound, not handed to the provisioner, the volume untouched
        c = get_claim(srv, "data")
        assert phase(c) == "Pending" and not c["spec"].get("volumeName") and not c["metadata"].get("annotations")
        assert [(v["metadata"]["name"], phase(v)) for v in srv.list("persistentvolumes")] == [("any", "Available")]


@pytest.mark.parametrize(("static", "want_phase", "want_event"), [
    # a provisioned volume with policy Delete: Released, then deleted by the provisioner
    pytest.param(None, None, None, id="provisioned-delete"),
    # a static volume that is retained: Released, and kept
    pytest.param(pv("kept", "1Gi", cls="manual") | {"spec": {**pv("kept", "1Gi", cls="manual")["spec"],
                                                             "persistentVolumeReclaimPolicy": "Retain"}},
                 "Released", None, id="static-retain"),
    # a static volume with policy Delete and no CSI driver: nothing can delete it -> Failed
    pytest.param(pv("nfs", "1Gi", cls="manual") | {"spec": {**pv("nfs", "1Gi", cls="manual")["spec"],
                                                            "persistentVolumeReclaimPolicy": "Delete",
                                                            "nfs": {"server": "nfs", "path": "/x"}}},
                 "Failed", ("Warning", "VolumeFailedDelete", 'error getting deleter volume plugin for volume "nfs": '
                            "no deletable volume plugin matched", "persistentvolume-controller"), id="static-delete"),
    # a static CSI volume of the simulated driver with policy Delete: the provisioner deletes it too
    pytest.param(pv("csi", "1Gi", cls="manual") | {"spec": {**pv("csi", "1Gi", cls="manual")["spec"],
                                                            "persistentVolumeReclaimPolicy": "Delete",
                                                            "csi": {"driver": DRIVER, "volumeHandle": "h-1"}}},
                 None, None, id="static-csi-delete"),
])
async def test_deleting_a_claim_releases_and_reclaims_its_volume(static: dict[str, Any] | None, want_phase: str | None,
                                                                 want_event: tuple[str, ...] | None) -> None:
    async with cluster() as (srv, api):
        if static is None:
            await api.create(sc("fast"))
            await api.create(claim("data", cls="fast"))
        else:
            await api.create(sc("manual", provisioner="kubernetes.io/no-provisioner"))
            await api.create(_static(static))
            await wait_for(lambda: phase(srv.list("persistentvolumes")[0]) == "Available", what="volume Available")
            await api.create(claim("data", cls="manual"))
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        name = get_claim(srv, "data")["spec"]["volumeName"]
        await api.delete("PersistentVolumeClaim", "data")
        if want_phase is None:
            await wait_for(lambda: srv.list("persistentvolumes") == [], what="volume deleted")
            return
        await wait_for(lambda: phase(srv.get("persistentvolumes", name)) == want_phase, what=want_phase)
        if want_event is not None:
            await wait_for(lambda: bool(events(srv, name)), what="volume Event")
            assert events(srv, name) == [want_event]
        else:
            assert events(srv, name) == []
        # the volume remembers the claim it was bound to
        assert srv.get("persistentvolumes", name)["spec"]["claimRef"]["name"] == "data"


async def test_selected_node_gone_hands_the_claim_back_to_the_scheduler() -> None:
    async with cluster() as (srv, api):
        await api.create(sc("local", mode="WaitForFirstConsumer"))
        await api.create(claim("data", cls="local"))
        await wait_for(lambda: "WaitForFirstConsumer" in reasons(srv, "data"), what="claim waiting")
        await api.annotate("PersistentVolumeClaim", "data", SELECTED, "node-0009")  # no such node
        # external-provisioner's rescheduleProvisioning: the Event, then the annotation removed
        await wait_for(lambda: SELECTED not in (get_claim(srv, "data")["metadata"].get("annotations") or {}),
                       what="selected-node removed")
        provisioner = f"{DRIVER}_vecsched-simulated"
        assert [e for e in events(srv, "data") if e[3] == provisioner] == [
            ("Normal", "Provisioning", 'External provisioner is provisioning volume for claim "default/data"',
             provisioner),
            ("Warning", "ProvisioningFailed",
             'failed to get selected CSINode node-0009: csinode.storage.k8s.io "node-0009" not found', provisioner)]
        assert srv.list("persistentvolumes") == [] and claim_phase(srv, "data") == "Pending"
        # picked again, on a node that exists: provisioned there
        await api.annotate("PersistentVolumeClaim", "data", SELECTED, "node-0001")
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        assert bound_pair(srv, "data")[1]["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [
            {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["zone-b"]}]}]


async def test_statefulset_claims_bind_once_their_nodes_are_selected() -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
           "spec": {"replicas": 3, "serviceName": "db", "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"schedulerName": "vecsched",
                                          "containers": [{"name": "db", "image": "postgres:16"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": [RWO], "storageClassName": "zonal",
                        "resources": {"requests": {"storage": "2Gi"}}}}]}}
    names = [f"data-db-{i}" for i in range(3)]
    async with cluster(None, StatefulSetController) as (srv, api):
        await api.create(sc("zonal", mode="WaitForFirstConsumer"))
        await api.create(sts)
        # no scheduler runs: each claim waits for its (unscheduled) pod
        await wait_for(lambda: all("WaitForPodScheduled" in reasons(srv, n) for n in names), what="claims waiting")
        for i, n in enumerate(names):
            assert (f"waiting for pod db-{i} to be scheduled" in
                    [m for _, r, m, _ in events(srv, n) if r == "WaitForPodScheduled"])
        assert srv.list("persistentvolumes") == []
        # the scheduler's picks: db-0 and db-2 on node-0000 (zone-a), db-1 on node-0001 (zone-b)
        for n, node in zip(names, ("node-0000", "node-0001", "node-0000")):
            await api.annotate("PersistentVolumeClaim", n, SELECTED, node)
        await wait_for(lambda: all(claim_phase(srv, n) == "Bound" for n in names), what="claims Bound")
        zones = [bound_pair(srv, n)[1]["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"] for n in names]
        assert zones == [["zone-a"], ["zone-b"], ["zone-a"]]
        assert [bound_pair(srv, n)[1]["spec"]["capacity"] for n in names] == [{"storage": "2Gi"}] * 3


async def test_csinode_and_csidriver_per_simulated_node() -> None:
    shapes = [NodeShape(count=2, cpu="4", memory="8Gi", zones=("zone-a",), attach_limit=2),
              NodeShape(count=1, cpu="4", memory="8Gi"),
              NodeShape(count=1, cpu="4", memory="8Gi", csi_driver="")]
    async with cluster(shapes, GarbageCollector) as (srv, api):
        nodes = {n["metadata"]["name"]: n for n in srv.list("nodes")}
        got = {c["metadata"]["name"]: c for c in srv.list("csinodes")}
        assert sorted(got) == ["node-0000", "node-0001", "node-0002", "node-0003"]
        for name, c in got.items():
            assert c["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                         "uid": nodes[name]["metadata"]["uid"]}]
        assert got["node-0000"]["spec"] == {"drivers": [{"name": DRIVER, "nodeID": "node-0000",
                                                         "topologyKeys": [ZONE], "allocatable": {"count": 2}}]}
        # no zone: no topology keys; no attach limit: no allocatable
        assert got["node-0002"]["spec"] == {"drivers": [{"name": DRIVER, "nodeID": "node-0002", "topologyKeys": []}]}
        assert got["node-0003"]["spec"] == {"drivers": []}
        assert nodes["node-0000"]["metadata"]["annotations"]["csi.volume.kubernetes.io/nodeid"] == \
            '{"csi.vecsched.io":"node-0000"}'
        [driver] = srv.list("csidrivers")
        assert driver["metadata"]["name"] == DRIVER
        assert (driver["spec"]["attachRequired"], driver["spec"]["storageCapacity"]) == (True, False)
        # a node that joins later registers too; one that leaves takes its CSINode along (garbage collector)
        srv.add_node(name="late", shape=NodeShape(cpu="4", memory="8Gi", zones=("zone-c",), attach_limit=7))
        await wait_for(lambda: any(c["metadata"]["name"] == "late" for c in srv.list("csinodes")), what="late CSINode")
        assert srv.get("csinodes", "late")["spec"]["drivers"][0]["allocatable"] == {"count": 7}
        await api.delete("Node", "node-0001")
        await wait_for(lambda: all(c["metadata"]["name"] != "node-0001" for c in srv.list("csinodes")),
                       what="CSINode collected")


async def test_kubectl_get_pv_pvc_sc_csinode() -> None:
    async with cluster() as (srv, api):
        await api.create(sc("fast", default="true"))
        created = await api.create(claim("data", "2Gi"))
        await wait_for(lambda: claim_phase(srv, "data") == "Bound", what="claim Bound")
        pv_name = f"pvc-{created['metadata']['uid']}"
        assert srv.kubeconfig_path is not None
        code, out, err = await kubectl(srv.kubeconfig_path, "get", "pv,pvc,sc,csinode")
        assert code == 0, err
        rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]
        assert ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"] in rows
        assert [f"persistentvolume/{pv_name}", "2Gi", "RWO", "Delete", "Bound", "default/data", "fast", "<unset>"] in \
            [r[:8] for r in rows]
        assert ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS",
                "AGE"] in rows
        assert ["persistentvolumeclaim/data", "Bound", pv_name, "2Gi", "RWO", "fast", "<unset>"] in [r[:7] for r in rows]
        assert ["storageclass.storage.k8s.io/fast (default)", DRIVER, "Delete", "Immediate", "false"] in \
            [r[:5] for r in rows]
        assert [["csinode.storage.k8s.io/node-0000", "1"], ["csinode.storage.k8s.io/node-0001", "1"]] == \
            [r[:2] for r in rows if r[0].startswith("csinode")]
        code, out, err = await kubectl(srv.kubeconfig_path, "get", "csidrivers")
        assert code == 0, err
        assert out.split()[:9] == ["NAME", "ATTACHREQUIRED", "PODINFOONMOUNT", "STORAGECAPACITY", "TOKENREQUESTS",
                                  "REQUIRESREPUBLISH", "MODES", "AGE", DRIVER]
        assert out.split()[9:15] == ["true", "false", "false", "<unset>", "false", "Persistent"]


async def _start_apiserver(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "scheduler.cli", "apiserver", "--port", "0",
                                                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    m = re.match(r"vecsched apiserver serving (http://\S+) ", line)
    assert m, line
    return proc, m.group(1)


async def test_apiserver_flags_set_the_driver_and_attach_limit(tmp_path: Path) -> None:
    proc, url = await _start_apiserver("--nodes", "1", "--node-zones", "z1", "--node-attach-limit", "5",
                                       "--csi-driver", "disk.example.com", "--shape", "count=1,attach-limit=9",
                                       "--kubeconfig-out", str(tmp_path / "kc"))
    try:
        async with aiohttp.ClientSession() as s:
            async def csinodes() -> list[dict[str, Any]]:
                async with s.get(url + "/apis/storage.k8s.io/v1/csinodes") as r:
                    items: list[dict[str, Any]] = (await r.json())["items"]
                    return items

            async def registered() -> bool:
                return len(await csinodes()) == 2

            await wait_async(registered, what="CSINodes registered")
            assert [c["spec"] for c in await csinodes()] == [
                {"drivers": [{"name": "disk.example.com", "nodeID": "node-0000", "topologyKeys": [ZONE],
                              "allocatable": {"count": 5}}]},
                {"drivers": [{"name": "disk.example.com", "nodeID": "node-0001", "topologyKeys": [],
                              "allocatable": {"count": 9}}]}]
            async with s.get(url + "/apis/storage.k8s.io/v1/csidrivers") as r:
                assert [d["metadata"]["name"] for d in (await r.json())["items"]] == ["disk.example.com"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--node-attach-limit", "-1"], "--node-attach-limit must be a count >= 0, got -1"),
    (["--csi-driver", "Not_A_Driver"], "invalid CSI driver name 'Not_A_Driver'"),
    (["--shape", "count=1,attach-limit=many"], "attach-limit must be an integer, got 'many'"),
])
async def test_bad_volume_flags_exit_2(args: list[str], message: str) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "scheduler.cli", "apiserver", "--port", "0",
                                                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and message in err.decode(), err.decode()

