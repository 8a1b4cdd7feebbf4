"""The extender applies the volume plugins where it can read the cluster's storage, and leaves
them to kube-scheduler where it cannot.

With API access its cache watches PersistentVolumes, claims, StorageClasses and CSINodes (as
``vecsched run`` does), so a pod's volumes decide, with upstream's reasons: a PV's node
affinity and zone label rule nodes out for good (``FailedAndUnresolvableNodes``, as
VolumeBinding and VolumeZone are UnschedulableAndUnresolvable upstream), a full attach limit
for now (``FailedNodes``). Its ``bind`` neither writes nor assumes volumes: kube-scheduler's
VolumeBinding has bound them by then. Without API access (request-only ``Nodes`` mode) there
are no claims to read: the volume plugins are left out of the profile, logged once at start,
and a pod is judged on everything else. A profile without volume plugins does not watch
storage at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
from scheduler.config import API_VERSION, SchedulerConfig, parse_config
from scheduler.extender import ExtenderSettings, serve_extender
from scheduler.kube.client import ClientSettings
from scheduler.kube.informer import Backoff
from scheduler.runtime import VOLUME_PLUGINS
from tests.deploy.support import DEPLOY
from tests.extender.cached import cached_extender
from tests.extender.wire import kube_node, kube_pod, node_list, post
from tests.live.support import wait_for

NS: Final = "default"
SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
DRIVER: Final = "csi.vecsched.io"
ZONE: Final = "topology.kubernetes.io/zone"
STATIC: Final = "static"
"""Immediate, no provisioner: the embedded PV controller binds each claim to the PV it names."""
ZONAL: Final = "zonal"
"""WaitForFirstConsumer, provisioned by the CSI driver once the scheduler selects a node."""
# Upstream's reasons (volumebinding ErrReasonNodeConflict, volumezone ErrReasonConflict,
# nodevolumelimits ErrReasonMaxVolumeCountExceeded), spelled out.
NODE_CONFLICT: Final = "node(s) had volume node affinity conflict"
ZONE_CONFLICT: Final = "node(s) had no available volume zone"
MAX_VOLUME_COUNT: Final = "node(s) exceed max volume count"
BIND_CONFLICT: Final = "node(s) didn't find available persistent volumes to bind"
NODES: Final = ("node-0000", "node-0001", "node-0002", "node-0003")
SHAPES: Final = (NodeShape(count=1, cpu="4", memory="8Gi", zones=("zone-a",)),   # node-0000
                 NodeShape(count=1, cpu="4", memory="8Gi", zones=("zone-b",)),   # node-0001
                 NodeShape(count=1, cpu="4", memory="8Gi", zones=("zone-c",)),   # node-0002
                 NodeShape(count=1, cpu="4", memory="8Gi", zones=("zone-b",), attach_limit=1))  # node-0003
EXTENDER_RBAC: Final = DEPLOY / "extender" / "rbac.yaml"
SERVICE_ACCOUNT: Final = "system:serviceaccount:vecsched:vecsched-extender"
STORAGE_RESOURCES: Final = {("", "persistentvolumes"), ("", "persistentvolumeclaims"),
                            ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csinodes"),
                            ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "csistoragecapacities")}


# ---- objects -----------------------------------------------------------------------------------------------------


def storage_class(name: str, *, mode: str, provisioner: str) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": provisioner, "volumeBindingMode": mode}


def pv(name: str, *, labels: Mapping[str, str] | None = None, zone: str = "") -> dict[str, Any]:
    """A static CSI volume of ``DRIVER``; ``zone``: its node affinity requires that zone."""
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": STATIC,
                            "persistentVolumeReclaimPolicy": "Retain",
                            "csi": {"driver": DRIVER, "volumeHandle": f"handle-{name}"}}
    if zone:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": ZONE, "operator": "In", "values": [zone]}]}]}}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, **({"labels": dict(labels)} if labels else {})}, "spec": spec}


def claim(name: str, *, cls: str = STATIC, volume: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                            "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS},
            "spec": spec}


def pod_using(name: str, *claims: str, cpu: str = "500m", node: str = "") -> dict[str, Any]:
    """A pod as kube-scheduler sends it (its service-account volume kept), with ``claims`` mounted."""
    p = kube_pod(name, cpu=cpu, node=node)
    p["spec"]["volumes"] += [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    return p


def api_pod(name: str, *claims: str, node: str = "") -> dict[str, Any]:
    """``pod_using`` as a client creates it (the API server fills in uid and the rest)."""
    p = pod_using(name, *claims, node=node)
    for k in ("uid", "resourceVersion", "creationTimestamp"):
        p["metadata"].pop(k)
    p["status"] = {}
    return p


def storage(srv: ApiServer) -> None:
    """The volumes the cases use, bound by the embedded PV controller:
    affine -> pv-a, node affinity zone-a; legacy -> pv-legacy, labelled zone-a, no node affinity;
    any, held -> CSI volumes any node reaches; and ``holder`` on node-0003 (attach limit 1) using held."""
    srv.create("storageclasses", storage_class(STATIC, mode="Immediate", provisioner="kubernetes.io/no-provisioner"))
    srv.create("storageclasses", storage_class(ZONAL, mode="WaitForFirstConsumer", provisioner=DRIVER))
    for p, c in ((pv("pv-a", zone="zone-a"), "affine"), (pv("pv-legacy", labels={ZONE: "zone-a"}), "legacy"),
                 (pv("pv-any"), "any"), (pv("pv-held"), "held")):
        srv.create("persistentvolumes", p)
        srv.create("persistentvolumeclaims", claim(c, volume=p["metadata"]["name"]), namespace=NS)
    srv.create("persistentvolumeclaims", claim("later", cls=ZONAL), namespace=NS)
    srv.create("pods", api_pod("holder", "held", node="node-0003"), namespace=NS)


async def bound(srv: ApiServer, *claims: str) -> None:
    await wait_for(lambda: all((srv.get("persistentvolumeclaims", c, namespace=NS).get("status") or {}).get("phase")
                               == "Bound" for c in claims), timeout=10, what=f"claims {claims} bound")


# ---- with API access: the volume plugins decide --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    claims: tuple[str, ...]
    names: tuple[str, ...]
    passed: list[str]
    failed: dict[str, str]
    unresolvable: dict[str, str]


CASES: Final = [
    # pv-a requires zone-a: node-0000 (zone-a) passes; zone-b and zone-c fail VolumeBinding for good.
    pytest.param(Case(("affine",), NODES[:3], ["node-0000"], {},
                      {"node-0001": NODE_CONFLICT, "node-0002": NODE_CONFLICT}), id="pv-node-affinity-zone-a"),
    # pv-legacy only carries the zone label: VolumeBinding passes every node, VolumeZone keeps zone-a.
    pytest.param(Case(("legacy",), NODES[:3], ["node-0000"], {},
                      {"node-0001": ZONE_CONFLICT, "node-0002": ZONE_CONFLICT}), id="pv-zone-label-zone-a"),
    # node-0003 allows 1 CSI attachment and holder's pv-held takes it: 1 + 1 > 1 fails there, for
    # now (Unschedulable: a pod leaving frees it); node-0001, same zone, no limit, passes.
    pytest.param(Case(("any",), ("node-0001", "node-0003"), ["node-0001"], {"node-0003": MAX_VOLUME_COUNT}, {}),
                 id="attach-limit-reached"),
    # A pod naming no claim the API holds: VolumeBinding's PreFilter rejects it on every node.
    pytest.param(Case(("nope",), NODES[:2], [], {},
                      {"node-0000": 'persistentvolumeclaim "nope" not found',
                       "node-0001": 'persistentvolumeclaim "nope" not found'}), id="claim-not-found"),
    # An unbound WaitForFirstConsumer claim of a provisioning class: any zone will do, but the
    # volume to come counts against node-0003's limit through the class's provisioner (the
    # CSI driver): 1 + 1 > 1 there.
    pytest.param(Case(("later",), NODES, list(NODES[:3]), {"node-0003": MAX_VOLUME_COUNT}, {}),
                 id="unbound-wffc-provisionable"),
    pytest.param(Case((), NODES, list(NODES), {}, {}), id="no-claims"),
]


@pytest.mark.parametrize("case", CASES)
async def test_informer_fed_extender_filters_by_the_pods_volumes(case: Case) -> None:
    async with serve_apiserver(nodes=list(SHAPES), kubelet_delay=0.0, bookmark_interval=0.5) as srv:
        storage(srv)
        await bound(srv, "affine", "legacy", "any", "held")
        async with cached_extender(srv) as ext, aiohttp.ClientSession() as http:
            # The volume plugins read what the informers brought: ready means storage is listed too.
            status, result = await post(http, f"{ext.url}/filter",
                                        {"Pod": pod_using("web", *case.claims), "NodeNames": list(case.names)})
            assert status == 200 and result["Error"] == ""
            assert result["NodeNames"] == case.passed
            assert result["FailedNodes"] == case.failed
            assert result["FailedAndUnresolvableNodes"] == case.unresolvable


async def test_extender_bind_neither_writes_nor_assumes_volumes() -> None:
    async with serve_apiserver(nodes=list(SHAPES), kubelet_delay=0.0, bookmark_interval=0.5) as srv:
        storage(srv)
        await bound(srv, "held")
        created = srv.create("pods", api_pod("writer", "later"), namespace=NS)
        async with cached_extender(srv) as ext, aiohttp.ClientSession() as http:
            _, result = await post(http, f"{ext.url}/filter", {"Pod": created, "NodeNames": ["node-0000", "node-0001"]})
            assert result["NodeNames"] == ["node-0000", "node-0001"]
            _, result = await post(http, f"{ext.url}/bind", {"PodName": "writer", "PodNamespace": NS,
                                                             "PodUID": created["metadata"]["uid"], "Node": "node-0000"})
            assert result == {"Error": ""}
            # The claim is as the API has it -- no selected node written ...
            later = srv.get("persistentvolumeclaims", "later", namespace=NS)
            assert SELECTED_NODE not in (later["metadata"].get("annotations") or {})
            assert not later["spec"].get("volumeName")
            # ... nor assumed in the extender's cache: a second pod of the same claim is still
            # free to go anywhere (an assumed selected-node would pin it to node-0000 and fail
            # node-0001 with BIND_CONFLICT).
            _, result = await post(http, f"{ext.url}/filter",
                                   {"Pod": pod_using("reader", "later"), "NodeNames": ["node-0000", "node-0001"]})
            assert (result["NodeNames"], result["FailedAndUnresolvableNodes"]) == (["node-0000", "node-0001"], {})
        assert srv.get("pods", "writer", namespace=NS)["spec"]["nodeName"] == "node-0000"


# ---- without API access: kube-scheduler's own volume plugins are the ones that count ------------------------------


def zoned_node(name: str, zone: str, *, cpu: str = "4") -> dict[str, Any]:
    return kube_node(name, cpu=cpu, labels={ZONE: zone})


@pytest.mark.parametrize("claims,cpu,passed,unresolvable", [
    # The same pods as above: their claims are unknown here, and not held against them.
    pytest.param(("affine",), "500m", ["a", "b", "c"], {}, id="pv-node-affinity-zone-a"),
    pytest.param(("legacy",), "500m", ["a", "b", "c"], {}, id="pv-zone-label-zone-a"),
    pytest.param(("nope",), "500m", ["a", "b", "c"], {}, id="claim-not-found"),
    # The other plugins still judge: 3 cpu > node c's allocatable 2 is "Insufficient cpu",
    # unresolvable (upstream's NodeResourcesFit: no eviction makes room the node does not have).
    pytest.param(("affine",), "3", ["a", "b"], {"c": "Insufficient cpu"}, id="resources-still-checked"),
])
async def test_request_only_extender_leaves_volumes_to_kube_scheduler(
        claims: tuple[str, ...], cpu: str, passed: list[str], unresolvable: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vecsched.extender")
    async with serve_extender(config=_config(), settings=ExtenderSettings(bind_address="127.0.0.1", port=0)) as ext, \
            aiohttp.ClientSession() as http:
        nodes = node_list(zoned_node("a", "zone-a"), zoned_node("b", "zone-b"), zoned_node("c", "zone-c", cpu="2"))
        status, result = await post(http, f"{ext.url}/filter",
                                    {"Pod": pod_using("web", *claims, cpu=cpu), "Nodes": nodes, "NodeNames": None})
        assert status == 200 and result["Error"] == ""
        assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == passed
        assert (result["FailedNodes"], result["FailedAndUnresolvableNodes"]) == ({}, unresolvable)
        # prioritize answers too (VolumeBinding's storage-capacity score is out with the rest)
        status, scores = await post(http, f"{ext.url}/prioritize",
                                    {"Pod": pod_using("web", *claims, cpu=cpu), "Nodes": nodes, "NodeNames": None})
        assert status == 200 and [s["Host"] for s in scores] == ["a", "b", "c"]
        assert VOLUME_PLUGINS.isdisjoint(ext.profiles["vecsched"].plugin_names)
    said = [r.getMessage() for r in caplog.records if "volume plugins" in r.getMessage()]
    assert said == ["no API access, so no PersistentVolumes or claims to read: the volume plugins (NodeVolumeLimits, "
                    "VolumeBinding, VolumeRestrictions, VolumeZone) pass every node; kube-scheduler runs its own "
                    "before it calls the extender"]


async def test_informer_fed_extender_keeps_its_volume_plugins(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vecsched.extender")
    async with serve_apiserver(nodes=list(SHAPES[:1]), kubelet_delay=0.0, bookmark_interval=0.5) as srv, \
            cached_extender(srv) as ext:
        assert VOLUME_PLUGINS <= set(ext.profiles["vecsched"].plugin_names)
    assert not [r for r in caplog.records if "volume plugins" in r.getMessage()]


# ---- what is watched -----------------------------------------------------------------------------------------------


def _config(*, disabled: tuple[str, ...] = ()) -> SchedulerConfig:
    profile: dict[str, Any] = {"schedulerName": "vecsched"}
    if disabled:
        profile["plugins"] = {"multiPoint": {"disabled": [{"name": n} for n in disabled]}}
    return parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [profile]},
                        source="test")


def _without_storage_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The extender's RBAC manifest with every rule on a storage resource taken out."""
    out = []
    for doc in docs:
        if doc["kind"] == "ClusterRole":
            doc = {**doc, "rules": [r for r in doc["rules"] if not any(
                (g, res) in STORAGE_RESOURCES for g in r.get("apiGroups", []) for res in r.get("resources", []))]}
        out.append(doc)
    return out


@pytest.mark.parametrize("disabled,watched", [
    # the default profile runs all four volume plugins: the six storage kinds are listed and watched
    pytest.param((), STORAGE_RESOURCES, id="default-profile"),
    # a profile without any: nothing of storage is read (an RBAC role without it serves)
    pytest.param(tuple(sorted(VOLUME_PLUGINS)), set(), id="no-volume-plugin"),
])
async def test_storage_is_watched_only_for_volume_plugins(disabled: tuple[str, ...], watched: set[tuple[str, str]],
                                                          tmp_path: Path) -> None:
    rbac = read_rbac_file(EXTENDER_RBAC)
    async with serve_apiserver(nodes=list(SHAPES[:1]), kubelet_delay=0.0, bookmark_interval=0.5,
                               rbac=rbac if watched else _without_storage_rules(rbac),
                               tokens={"ext-token": SERVICE_ACCOUNT}) as srv:
        kubeconfig = srv.kubeconfig_for(token="ext-token", path=tmp_path / "sa.kubeconfig")
        settings = ExtenderSettings(bind_address="127.0.0.1", port=0, client=ClientSettings(kubeconfig=str(kubeconfig)),
                                    informer_backoff=Backoff(initial=0.02, cap=0.2))
        async with serve_extender(config=_config(disabled=disabled), settings=settings) as ext:
            await asyncio.wait_for(ext.view.wait_synced(), 10)

            def storage_seen() -> set[tuple[str, str, str]]:
                return {(d.group, d.resource, d.verb) for d in srv.auth_log
                        if d.user == SERVICE_ACCOUNT and (d.group, d.resource) in STORAGE_RESOURCES}
            def watching(group: str, resource: str) -> bool:
                return any((d.group, d.resource, d.verb) == (group, resource, "watch") for d in srv.auth_log
                           if d.user == SERVICE_ACCOUNT)
            want = {(g, r, v) for g, r in watched for v in ("list", "watch")}
            # Every informer starts at once; by the time the last of the others (budgets) watches,
            # the storage ones, if started, have listed and watched as well.
            await wait_for(lambda: watching("policy", "poddisruptionbudgets") and storage_seen() >= want, timeout=10,
                           what="the informers listing and watching")
            assert storage_seen() == want
            assert not [d for d in srv.auth_log if d.user == SERVICE_ACCOUNT and not d.allowed]
