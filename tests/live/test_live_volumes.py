"""Volume binding live, over real HTTP: the scheduler chooses, the PV controller completes.

The scheduler decides at Reserve which PersistentVolume each unbound claim of a pod gets
(or that the claim is to be provisioned on the chosen node); before binding the pod
(PreBind) it writes that to the API -- the PV's ``claimRef``, the claim's
``volume.kubernetes.io/selected-node`` -- and waits for the PV controller to finish. Here
the test plays the PV controller and the provisioner itself (``PVController``, through the
API as kube-controller-manager would), so that every step can be watched and held back,
and the embedded control plane runs no controller at all.

What must hold: a static PV chosen by the scheduler is pre-bound and the pod is bound only
once the claim is; a WaitForFirstConsumer claim gets its selected node, then a volume,
then the pod is bound there; a binding nobody completes within ``bindTimeoutSeconds``
fails with upstream's message, the assumed PVs and claims are given back and the pod is
tried again; a refused update is reported with the API's message; parked pods move on
the storage events that may help them (and only those); a malformed PersistentVolume is
skipped with a log line while scheduling goes on; a pod deleted, or a scheduler stopped,
while the volumes are being bound ends the wait at once. The PreBind executor alone
(``VolumeBinder``) is also run against the API for each way the objects can have
changed between Reserve and PreBind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
from scheduler.apiserver.objects import prepare_create
from scheduler.cache import SchedulerCache
from scheduler.config import API_VERSION, SchedulerConfig, parse_config
from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.errors import ConflictError
from scheduler.kube.informer import Delta
from scheduler.runtime import VOLUME_PLUGINS, Scheduler
from scheduler.volume_binder import TIMEOUT_MESSAGE, VolumeBinder, VolumeBindingError
from scoring.objects import pod_from_json
from scoring.plugins import volume_binding
from scoring.volumes import (BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE, VolumeBindingPlan, Volumes,
                             with_claim_ref, with_selected_node)
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane
from tests.live.support import condition, events_for, fast_config, pod, pods_of, settings_for, wait_for

NS: Final = "default"
DRIVER: Final = "csi.vecsched.io"
LOCAL: Final = "local"
"""A WaitForFirstConsumer class of static PVs (no provisioner): the scheduler picks the PV."""
ZONAL: Final = "zonal"
"""A WaitForFirstConsumer class the CSI driver provisions: the scheduler picks the node."""
FAST: Final = "fast"
"""An Immediate class: the PV controller binds its claims before any pod is scheduled."""
RBAC: Final = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"


# ---- objects -----------------------------------------------------------------------------------------------


def storage_class(name: str, *, mode: str = "WaitForFirstConsumer",
                  provisioner: str = "kubernetes.io/no-provisioner") -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": provisioner, "volumeBindingMode": mode}


def local_pv(name: str, *, size: str, node: str, cls: str = LOCAL) -> dict[str, Any]:
    """A static local volume on ``node`` (its node affinity names the node's hostname)."""
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                     "persistentVolumeReclaimPolicy": "Retain", "local": {"path": f"/mnt/disks/{name}"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}


def add_pv(srv: ApiServer, pv: dict[str, Any]) -> None:
    """Create ``pv`` and, as the PV controller does with a new unbound volume, make it Available
    (upstream's FindMatchingVolume passes over volumes in any other phase)."""
    srv.create("persistentvolumes", pv)
    srv.store.update(srv.resource("persistentvolumes"), "", pv["metadata"]["name"],
                     lambda obj: {**obj, "status": {"phase": "Available"}})


def claim(name: str, *, size: str, cls: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                     "resources": {"requests": {"storage": size}}}}


def pod_with(name: str, *claims: str, cpu: str = "100m") -> dict[str, Any]:
    p = pod(name, cpu=cpu)
    p["spec"]["volumes"] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    return p


def node_of(srv: ApiServer, name: str) -> str:
    return str(pods_of(srv)[name]["spec"].get("nodeName") or "")


def failures(srv: ApiServer, name: str) -> list[str]:
    return [e["message"] for e in events_for(srv, name, reason="FailedScheduling")]


# ---- the scheduler ---------------------------------------------------------------------------------------------------


def volume_config(*, bind_timeout: int | None = None, backoff: float | None = None) -> SchedulerConfig:
    """The default profile (VolumeBinding among its plugins), with VolumeBindingArgs'
    ``bindTimeoutSeconds`` when given, and short pod backoff (``backoff`` seconds, flat, when given)."""
    profile: dict[str, Any] = {"schedulerName": "vecsched"}
    if bind_timeout is not None:
        profile["pluginConfig"] = [{"name": volume_binding.NAME, "args": {"bindTimeoutSeconds": bind_timeout}}]
    config = fast_config(parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
                                       "profiles": [profile]}, source="test"))
    if backoff is not None:
        config = dataclasses.replace(config, pod_initial_backoff_seconds=backoff, pod_max_backoff_seconds=backoff)
    return config


@asynccontextmanager
async def scheduling(srv: ApiServer, *, bind_timeout: int | None = None, backoff: float | None = None,
                     **kw: Any) -> AsyncIterator[Scheduler]:
    """``volume_config`` running against ``srv``."""
    s = Scheduler(config=volume_config(bind_timeout=bind_timeout, backoff=backoff), settings=settings_for(srv, **kw))
    await s.start()
    try:
        await s.wait_ready(timeout=10)
        yield s
    finally:
        await s.stop()


@asynccontextmanager
async def cluster(nodes: int = 2, *, cpu: str = "4") -> AsyncIterator[ApiServer]:
    """``nodes`` nodes and the three classes, with no controller running: the test is the PV controller."""
    async with control_plane(nodes=[NodeShape(count=nodes, cpu=cpu, memory="8Gi")]) as srv:
        srv.create("storageclasses", storage_class(LOCAL))
        srv.create("storageclasses", storage_class(ZONAL, provisioner=DRIVER))
        srv.create("storageclasses", storage_class(FAST, mode="Immediate", provisioner=DRIVER))
        yield srv


# ---- the PV controller, played by the test over HTTP ----------------------------------------------------------


class PVController:
    """Does what kube-controller-manager's PV controller (and the external provisioner) do
    once the scheduler has chosen: completes a pre-bound PV's binding, or provisions a
    volume on the selected node and binds it -- through the API, retrying on conflicts."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def _update(self, path: str, change: Any, *, status: bool = False) -> dict[str, Any]:
        while True:
            obj: dict[str, Any] = await self.client.request("GET", path)
            change(obj)
            try:
                out: dict[str, Any] = await self.client.request("PUT", path + ("/status" if status else ""), body=obj)
                return out
            except ConflictError:
                continue

    async def bind(self, pv_name: str, claim_name: str) -> None:
        """pv_controller's bindVolumeToClaim, then bindClaimToVolume."""
        c = await self.client.request("GET", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{claim_name}")
        ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": NS, "name": claim_name,
               "uid": c["metadata"]["uid"], "resourceVersion": c["metadata"]["resourceVersion"]}
        pv_path = f"/api/v1/persistentvolumes/{pv_name}"

        def pv_claimed(pv: dict[str, Any]) -> None:
            if (pv["spec"].get("claimRef") or {}).get("uid") != ref["uid"]:
                pv["spec"]["claimRef"] = ref

        def pv_bound(pv: dict[str, Any]) -> None:
            pv["status"] = {**(pv.get("status") or {}), "phase": "Bound"}

        await self._update(pv_path, pv_claimed)
        pv = await self._update(pv_path, pv_bound, status=True)
        claim_path = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{claim_name}"

        def claim_bound(c: dict[str, Any]) -> None:
            c["spec"]["volumeName"] = pv_name
            c["metadata"]["annotations"] = {**(c["metadata"].get("annotations") or {}), BIND_COMPLETED: "yes",
                                            BOUND_BY_CONTROLLER: "yes"}

        def claim_status(c: dict[str, Any]) -> None:
            c["status"] = {"phase": "Bound", "accessModes": pv["spec"]["accessModes"],
                           "capacity": pv["spec"]["capacity"]}

        await self._update(claim_path, claim_bound)
        await self._update(claim_path, claim_status, status=True)

    async def provision(self, claim_name: str) -> str:
        """external-provisioner's answer to selected-node: a volume on that node, then the binding.
        Returns the PV's name."""
        c = await self.client.request("GET", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{claim_name}")
        node = c["metadata"]["annotations"][SELECTED_NODE]
        name = f"pvc-{c['metadata']['uid']}"
        pv = local_pv(name, size=c["spec"]["resources"]["requests"]["storage"], node=node,
                      cls=c["spec"]["storageClassName"])
        del pv["spec"]["local"]
        pv["spec"]["csi"] = {"driver": DRIVER, "volumeHandle": name}
        pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": NS,
                                  "name": claim_name, "uid": c["metadata"]["uid"]}
        await self.client.request("POST", "/api/v1/persistentvolumes", body=pv)
        await self.bind(name, claim_name)
        return name


@asynccontextmanager
async def pv_controller(srv: ApiServer) -> AsyncIterator[PVController]:
    client = await connect(ClientSettings(kubeconfig=str(srv.kubeconfig_path)))
    try:
        yield PVController(client)
    finally:
        await client.close()


def claim_ref(srv: ApiServer, pv: str) -> dict[str, Any]:
    return dict(srv.get("persistentvolumes", pv)["spec"].get("claimRef") or {})


def annotations_of(srv: ApiServer, resource: str, name: str, namespace: str = "") -> dict[str, str]:
    return dict(srv.get(resource, name, namespace=namespace)["metadata"].get("annotations") or {})


# ---- which informers run -------------------------------------------------------------------------------------------


STORAGE_RESOURCES: Final = ("persistentvolumes", "persistentvolumeclaims", "storageclasses", "csinodes", "csidrivers",
                            "csistoragecapacities")


async def test_the_storage_objects_are_watched_only_for_a_profile_with_a_volume_plugin() -> None:
    without = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
        {"schedulerName": "vecsched", "plugins": {"multiPoint": {"disabled": [{"name": n} for n in sorted(
            VOLUME_PLUGINS)]}}}]}, source="test")
    async with cluster(1) as srv:
        s = Scheduler(config=fast_config(without), settings=settings_for(srv))
        async with s:
            await s.wait_ready(timeout=10)
            assert s.volume_plugins == frozenset()
            synced = {r: s.metrics.informer_events.labels(r, "SYNCED")._value.get()
                      for r in ("nodes", *STORAGE_RESOURCES)}
            assert synced == {"nodes": 1.0, **{r: 0.0 for r in STORAGE_RESOURCES}}
        async with scheduling(srv) as s:
            assert volume_binding.NAME in s.volume_plugins
            # Every storage kind listed (and so synced) before the first pod is taken.
            assert all(s.metrics.informer_events.labels(r, "SYNCED")._value.get() == 1.0 for r in STORAGE_RESOURCES)


# ---- static PVs -------------------------------------------------------------------------------------------------


async def test_a_static_pv_chosen_by_the_scheduler_is_bound_before_the_pod() -> None:
    async with cluster(2) as srv, pv_controller(srv) as ctl:
        # A 5Gi claim; node-0000 has a 1Gi volume (too small), node-0001 a 10Gi one: the only fit.
        add_pv(srv, local_pv("small", size="1Gi", node="node-0000"))
        add_pv(srv, local_pv("big", size="10Gi", node="node-0001"))
        data = srv.create("persistentvolumeclaims", claim("data", size="5Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv) as s:
            srv.create("pods", pod_with("app", "data"))
            await wait_for(lambda: bool(claim_ref(srv, "big")), what="big pre-bound by the scheduler")
            # GetBindVolumeToClaim's result: the claim referenced with its uid, bound-by-controller set;
            # the pod waits (PreBind) for the PV controller.
            ref = claim_ref(srv, "big")
            assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == \
                ("PersistentVolumeClaim", NS, "data", data["metadata"]["uid"])
            assert annotations_of(srv, "persistentvolumes", "big")[BOUND_BY_CONTROLLER] == "yes"
            assert claim_ref(srv, "small") == {}
            await asyncio.sleep(0.3)
            assert node_of(srv, "app") == "" and s.cycle is not None and s.cycle.volume_binder.waiting == 1
            await ctl.bind("big", "data")
            await wait_for(lambda: node_of(srv, "app") == "node-0001", what="the pod bound where its volume is")
            assert failures(srv, "app") == []
            exposition = s.metrics.exposition().decode()
            assert ('scheduler_framework_extension_point_duration_seconds_count{extension_point="PreBind",'
                    'profile="vecsched",status="Success"} 1.0') in exposition
            # Nothing stays assumed: the API's versions are the ones the next pods see.
            await wait_for(lambda: s.cache.sizes()["assumed_pods"] == 0, what="the binding confirmed by the watch")
            assert not Volumes.of(s.cache.table).is_assumed_pv("big")


async def test_two_pods_do_not_get_the_same_volume() -> None:
    async with cluster(1) as srv, pv_controller(srv) as ctl:
        # Two 1Gi claims, two volumes of 2Gi and 3Gi on the one node: the first pod's claim takes
        # the smaller (smallest fit), the assumed PV hides it from the second, which takes the other.
        add_pv(srv, local_pv("v2", size="2Gi", node="node-0000"))
        add_pv(srv, local_pv("v3", size="3Gi", node="node-0000"))
        for name in ("a", "b"):
            srv.create("persistentvolumeclaims", claim(name, size="1Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv):
            srv.create("pods", pod_with("pa", "a"))
            srv.create("pods", pod_with("pb", "b"))
            await wait_for(lambda: bool(claim_ref(srv, "v2")) and bool(claim_ref(srv, "v3")), what="both pre-bound")
            # pa is created (and so queued) first: its claim "a" gets v2, the smallest fit.
            assert (claim_ref(srv, "v2")["name"], claim_ref(srv, "v3")["name"]) == ("a", "b")
            for pv in ("v2", "v3"):
                await ctl.bind(pv, claim_ref(srv, pv)["name"])
            await wait_for(lambda: node_of(srv, "pa") == node_of(srv, "pb") == "node-0000", what="both bound")


# ---- WaitForFirstConsumer provisioning ----------------------------------------------------------------------------


async def test_a_wffc_claim_gets_its_selected_node_then_a_volume_then_the_pod_is_bound() -> None:
    async with cluster(2) as srv, pv_controller(srv) as ctl:
        steps: list[str] = []

        def on_claim(_key: str, _old: Any, new: Any) -> None:
            if new is None:
                return
            c = new.obj()
            step = ("bound" if c["spec"].get("volumeName") else
                    "selected" if SELECTED_NODE in (c["metadata"].get("annotations") or {}) else "")
            if step and (not steps or steps[-1] != f"claim {step}"):
                steps.append(f"claim {step}")

        def on_pod(_key: str, _old: Any, new: Any) -> None:
            if new is not None and new.name == "app" and new.obj()["spec"].get("nodeName") and "pod bound" not in steps:
                steps.append("pod bound")

        srv.store.add_listener(srv.resource("persistentvolumeclaims").key, on_claim)
        srv.store.add_listener(srv.resource("pods").key, on_pod)
        srv.create("persistentvolumeclaims", claim("scratch", size="2Gi", cls=ZONAL), namespace=NS)
        async with scheduling(srv) as s:
            # 3 CPU of node-0000 taken by a pod placed by hand: the pod (2 CPU) can only go to node-0001.
            srv.create("pods", pod("busy", cpu="3", scheduler="someone-else", nodeName="node-0000"))
            srv.create("pods", pod_with("app", "scratch", cpu="2"))
            await wait_for(lambda: SELECTED_NODE in annotations_of(srv, "persistentvolumeclaims", "scratch", NS),
                           what="the claim's selected node")
            assert annotations_of(srv, "persistentvolumeclaims", "scratch", NS)[SELECTED_NODE] == "node-0001"
            await asyncio.sleep(0.3)
            assert node_of(srv, "app") == ""  # waits for the provisioner
            pv = await ctl.provision("scratch")
            await wait_for(lambda: node_of(srv, "app") == "node-0001", what="the pod bound on the selected node")
            assert steps == ["claim selected", "claim bound", "pod bound"], steps
            assert srv.get("persistentvolumeclaims", "scratch", namespace=NS)["spec"]["volumeName"] == pv
            assert not Volumes.of(s.cache.table).is_assumed_claim(f"{NS}/scratch")


# ---- failures ------------------------------------------------------------------------------------------------


async def test_a_binding_nobody_completes_times_out_is_reverted_and_retried() -> None:
    async with cluster(1) as srv, pv_controller(srv) as ctl:
        add_pv(srv, local_pv("only", size="1Gi", node="node-0000"))
        srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace=NS)
        # bindTimeoutSeconds 1; a 2 s backoff leaves the state after the failure to be looked at.
        async with scheduling(srv, bind_timeout=1, backoff=2.0) as s:
            srv.create("pods", pod_with("app", "data"))
            await wait_for(lambda: bool(claim_ref(srv, "only")), what="pre-bound")
            await wait_for(lambda: bool(failures(srv, "app")), timeout=10, what="the timeout reported")
            # Upstream's text: RunPreBindPlugins wrapping BindPodVolumes' poll deadline.
            assert failures(srv, "app") == \
                ['running PreBind plugin "VolumeBinding": binding volumes: context deadline exceeded']
            await wait_for(lambda: condition(pods_of(srv)["app"]) is not None, what="PodScheduled=False")
            cond = condition(pods_of(srv)["app"])
            assert cond is not None and (cond["status"], cond["reason"]) == ("False", "SchedulerError")
            # Unreserved: the pod's assumption and the volumes it assumed are given back ...
            volumes = Volumes.of(s.cache.table)
            assert not volumes.is_assumed_pv("only") and not volumes.is_assumed_claim(f"{NS}/data")
            assert s.cache.sizes()["assumed_pods"] == 0 and s.cache.table.pods.get(f"{NS}/app") is None
            assert s.queue.where(f"{NS}/app") == "backoff"
            # ... while what was written stays (upstream rolls nothing back): the PV names the claim.
            assert claim_ref(srv, "only")["name"] == "data"
            assert s.metrics.extension_point_duration.labels("PreBind", "Error", "vecsched")._sum.get() >= 1.0
            assert s.metrics.schedule_attempts.labels("error", "vecsched")._value.get() == 1
            # Retried after its backoff: the PV pre-bound to its claim is chosen again, and once the
            # PV controller completes the binding the pod is bound.
            await ctl.bind("only", "data")
            await wait_for(lambda: node_of(srv, "app") == "node-0000", timeout=10, what="bound on a retry")
            assert s.metrics.schedule_attempts.labels("scheduled", "vecsched")._value.get() == 1


async def test_a_refused_volume_update_is_reported_with_the_api_message_and_reverted(tmp_path: Path) -> None:
    # The scheduler's own RBAC without `update` on PersistentVolumes: the PreBind PUT is refused
    # (403), so no newer version of the PV comes back from the API -- only the Unreserve gives
    # the assumed copy back.
    rules = list(read_rbac_file(RBAC))
    for doc in rules:
        for rule in doc.get("rules") or []:
            if "persistentvolumes" in rule.get("resources", []) and "update" in rule.get("verbs", []):
                rule["verbs"] = [v for v in rule["verbs"] if v != "update"]
    user = "system:serviceaccount:vecsched:vecsched"
    async with serve_apiserver(nodes=[NodeShape(count=1, cpu="4", memory="8Gi")], controllers=[],
                               kubelet_delay=0.02, bookmark_interval=0.5, rbac=rules,
                               tokens={"sched-token": user}) as srv:
        srv.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vecsched"}})
        srv.create("storageclasses", storage_class(LOCAL))
        add_pv(srv, local_pv("only", size="1Gi", node="node-0000"))
        srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace=NS)
        kubeconfig = srv.kubeconfig_for(token="sched-token", path=tmp_path / "sa.kubeconfig")
        async with scheduling(srv, backoff=1.0, client=ClientSettings(kubeconfig=str(kubeconfig))) as s:
            srv.create("pods", pod_with("app", "data"))
            await wait_for(lambda: bool(failures(srv, "app")), timeout=10, what="reported")
            # The API's message, as upstream's PreBind returns the Update's error.
            assert failures(srv, "app") == [
                'running PreBind plugin "VolumeBinding": persistentvolumes "only" is forbidden: '
                f'User "{user}" cannot update resource "persistentvolumes" in API group "" at the cluster scope']
            volumes = Volumes.of(s.cache.table)
            pv = volumes.pv("only")
            assert pv is not None and pv.claim_ref is None and not volumes.is_assumed_pv("only")
            assert claim_ref(srv, "only") == {} and s.cache.sizes()["assumed_pods"] == 0
            # Tried again after its backoff (and refused again: the FailedScheduling Event of the
            # same message is not repeated within a minute, the attempts are counted).
            await wait_for(lambda: s.metrics.schedule_attempts.labels("error", "vecsched")._value.get() >= 2,
                           timeout=10, what="a second attempt")
            assert node_of(srv, "app") == ""


# ---- requeueing on storage events -----------------------------------------------------------------------------------


async def test_a_parked_pod_moves_when_a_volume_for_it_appears_and_others_stay() -> None:
    async with cluster(1) as srv, pv_controller(srv) as ctl:
        srv.create("persistentvolumeclaims", claim("data", size="5Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv) as s:
            srv.create("pods", pod_with("waits", "data"))
            srv.create("pods", pod("too-big", cpu="64"))
            await wait_for(lambda: bool(failures(srv, "waits")) and bool(failures(srv, "too-big")),
                           what="both reported")
            # No 5Gi volume anywhere: VolumeBinding's Filter, upstream's reason (then preemption's verdict).
            assert failures(srv, "waits")[0].startswith(
                "0/1 nodes are available: 1 node(s) didn't find available persistent volumes to bind."), \
                failures(srv, "waits")
            await wait_for(lambda: s.queue.where(f"{NS}/waits") == s.queue.where(f"{NS}/too-big") == "unschedulable",
                           what="both parked")
            add_pv(srv, local_pv("late", size="5Gi", node="node-0000"))
            # PersistentVolume/Add is registered by VolumeBinding: "waits" moves, "too-big"
            # (NodeResourcesFit's) stays where it is.
            await wait_for(lambda: bool(claim_ref(srv, "late")), what="the new volume chosen")
            assert s.queue.where(f"{NS}/too-big") == "unschedulable"
            moved = sum(s.metrics.queue_incoming.labels(q, "PersistentVolumeAdd")._value.get()
                        for q in ("active", "backoff"))
            assert moved == 1  # "waits" alone
            await ctl.bind("late", "data")
            await wait_for(lambda: node_of(srv, "waits") == "node-0000", what="bound")


async def test_an_unbound_immediate_claim_holds_the_pod_until_the_pv_controller_binds_it() -> None:
    async with cluster(1) as srv, pv_controller(srv) as ctl:
        srv.create("persistentvolumeclaims", claim("db", size="1Gi", cls=FAST), namespace=NS)
        async with scheduling(srv) as s:
            srv.create("pods", pod_with("app", "db"))
            await wait_for(lambda: bool(failures(srv, "app")), what="reported")
            # VolumeBinding's PreFilter (UnschedulableAndUnresolvable) for an Immediate claim not bound yet.
            assert failures(srv, "app")[0].startswith(
                "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."), failures(srv, "app")
            await wait_for(lambda: s.queue.where(f"{NS}/app") == "unschedulable", what="parked")
            add_pv(srv, local_pv("pv-db", size="1Gi", node="node-0000", cls=FAST))
            await ctl.bind("pv-db", "db")  # PersistentVolumeClaim/Update moves it
            await wait_for(lambda: node_of(srv, "app") == "node-0000", what="bound once its claim is")
            # All its claims were bound already: PreBind had nothing to write.
            assert annotations_of(srv, "persistentvolumes", "pv-db").get(BOUND_BY_CONTROLLER) is None


# ---- the informers: malformed objects --------------------------------------------------------------------------------


async def test_a_malformed_pv_is_skipped_with_a_log_line_and_scheduling_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    async with cluster(1) as srv, pv_controller(srv) as ctl:
        caplog.set_level(logging.WARNING, logger="vecsched.cache")
        srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv) as s:
            # Past the API's validation (as a server that validates less, or an older object would hold it).
            rt = srv.resource("persistentvolumes")
            srv.store.create(rt, prepare_create(rt, local_pv("broken", size="lots", node="node-0000"), namespace=""))
            add_pv(srv, local_pv("good", size="1Gi", node="node-0000"))
            await wait_for(lambda: "PersistentVolume broken" in s.cache.skipped_storage, what="broken skipped")
            lines = [r.getMessage() for r in caplog.records if "skipping malformed PersistentVolume" in r.getMessage()]
            assert len(lines) == 1 and "PersistentVolume broken: spec.capacity.storage" in lines[0], lines
            assert Volumes.of(s.cache.table).pv("broken") is None
            assert s.metrics.malformed_objects.labels("persistentvolume")._value.get() == 1
            srv.create("pods", pod_with("app", "data"))
            srv.create("pods", pod("plain"))
            await wait_for(lambda: bool(claim_ref(srv, "good")), what="the good volume chosen")
            await ctl.bind("good", "data")
            await wait_for(lambda: node_of(srv, "app") == node_of(srv, "plain") == "node-0000", what="both bound")
            # Fixed, it is read again.
            srv.store.update(rt, "", "broken",
                             lambda pv: {**pv, "spec": {**pv["spec"], "capacity": {"storage": "2Gi"}}})
            await wait_for(lambda: Volumes.of(s.cache.table).pv("broken") is not None, what="broken read once fixed")
            assert "PersistentVolume broken" not in s.cache.skipped_storage


# ---- the wait, cut short ---------------------------------------------------------------------------------------------


async def test_a_pod_deleted_while_its_volumes_are_bound_is_dropped_without_a_report() -> None:
    async with cluster(1) as srv:
        add_pv(srv, local_pv("only", size="1Gi", node="node-0000"))
        srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv) as s:
            srv.create("pods", pod_with("app", "data"))
            await wait_for(lambda: s.cycle is not None and s.cycle.volume_binder.waiting == 1, what="waiting")
            srv.ops.delete(srv.resource("pods"), namespace=NS, name="app")
            await wait_for(lambda: s.cycle is not None and s.cycle.volume_binder.waiting == 0, what="the wait ended")
            await wait_for(lambda: s.cache.sizes()["assumed_pods"] == 0, what="forgotten")
            assert f"{NS}/app" not in s.queue and failures(srv, "app") == []
            assert not Volumes.of(s.cache.table).is_assumed_claim(f"{NS}/data")


async def test_a_stop_ends_the_wait_at_once_and_binds_nothing() -> None:
    async with cluster(1) as srv:
        add_pv(srv, local_pv("only", size="1Gi", node="node-0000"))
        srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv, drain_seconds=30.0) as s:
            srv.create("pods", pod_with("app", "data"))
            await wait_for(lambda: s.cycle is not None and s.cycle.volume_binder.waiting == 1, what="waiting")
            loop = asyncio.get_running_loop()
            started = loop.time()
        # The stop did not wait out drain_seconds (30 s) nor bindTimeoutSeconds (600 s).
        assert loop.time() - started < 5.0
        assert node_of(srv, "app") == "" and failures(srv, "app") == []


async def test_a_group_that_cannot_fit_keeps_no_volume_assumed() -> None:
    async with cluster(2, cpu="2") as srv:
        assert srv.kubeconfig_path is not None
        rc, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "deploy/crds/scheduling.x-k8s.io_podgroups.yaml")
        assert rc == 0, err
        srv.create("podgroups", {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                                 "metadata": {"name": "g", "namespace": NS}, "spec": {"minMember": 3}})
        for i in range(3):
            add_pv(srv, local_pv(f"pv{i}", size="1Gi", node=f"node-000{i % 2}"))
            srv.create("persistentvolumeclaims", claim(f"c{i}", size="1Gi", cls=LOCAL), namespace=NS)
        async with scheduling(srv) as s:
            # 3 members of 2 CPU on 2 nodes of 2 CPU: two fit, the group does not -- and the volumes the two
            # planned members took at Reserve are given back with the plan.
            for i in range(3):
                member = pod_with(f"m{i}", f"c{i}", cpu="2")
                member["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": "g"}
                srv.create("pods", member)
            await wait_for(lambda: all(failures(srv, f"m{i}") for i in range(3)), what="all reported")
            volumes = Volumes.of(s.cache.table)
            assert [volumes.is_assumed_pv(f"pv{i}") for i in range(3)] == [False, False, False]
            assert all(claim_ref(srv, f"pv{i}") == {} for i in range(3))


# ---- the PreBind executor alone: what it writes, and what it refuses ----------------------------------------------


def _deliver(cache: SchedulerCache, srv: ApiServer, kind: str, name: str, namespace: str = "") -> None:
    """What the informer would hand the cache: the API's current version of the object."""
    resource = {"PersistentVolume": "persistentvolumes", "PersistentVolumeClaim": "persistentvolumeclaims"}[kind]
    cache.on_storage(kind, Delta("MODIFIED", srv.get(resource, name, namespace=namespace)))


def _set_claim_ref(srv: ApiServer, ref: Mapping[str, str] | None, *, annotate: bool = False) -> None:
    def change(pv: dict[str, Any]) -> dict[str, Any]:
        spec = {k: v for k, v in pv["spec"].items() if k != "claimRef"}
        meta = dict(pv["metadata"])
        if annotate:
            meta["annotations"] = {BOUND_BY_CONTROLLER: "yes"}
        return {**pv, "metadata": meta, "spec": {**spec, **({"claimRef": dict(ref)} if ref else {})}}
    srv.store.update(srv.resource("persistentvolumes"), "", "pv", change)


def _data_ref(srv: ApiServer) -> dict[str, str]:
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": NS, "name": "data",
            "uid": srv.get("persistentvolumeclaims", "data", namespace=NS)["metadata"]["uid"]}


def _annotate_claim(srv: ApiServer, name: str, annotations: Mapping[str, str]) -> None:
    """The claim's annotations replaced by ``annotations`` (none: the field left out, as the API does)."""
    def change(c: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in c["metadata"].items() if k != "annotations"}
        return {**c, "metadata": {**meta, **({"annotations": dict(annotations)} if annotations else {})}}
    srv.store.update(srv.resource("persistentvolumeclaims"), NS, name, change)


def _recreate_claim(srv: ApiServer, name: str) -> None:
    srv.ops.delete(srv.resource("persistentvolumeclaims"), namespace=NS, name=name)
    srv.create("persistentvolumeclaims", claim(name, size="1Gi", cls=ZONAL), namespace=NS)


def _being_deleted(srv: ApiServer) -> None:
    rt = srv.resource("persistentvolumes")
    srv.store.update(rt, "", "pv",
                     lambda pv: {**pv, "metadata": {**pv["metadata"], "finalizers": ["example.com/hold"]}})
    srv.ops.delete(rt, namespace="", name="pv")


def _provisioner_gave_up(keep: Mapping[str, str]) -> Callable[[SchedulerCache, ApiServer], None]:
    """external-provisioner's signal that it cannot provision on the node: selected-node removed."""
    def change(cache: SchedulerCache, srv: ApiServer) -> None:
        _annotate_claim(srv, "scratch", keep)
        _deliver(cache, srv, "PersistentVolumeClaim", "scratch", NS)
    return change


def _claim_ref_reset(cache: SchedulerCache, srv: ApiServer) -> None:
    """pv_controller's unbindVolume: the claimRef dropped from the PV."""
    _set_claim_ref(srv, None)
    _deliver(cache, srv, "PersistentVolume", "pv")


@dataclass(frozen=True)
class BinderCase:
    """One PreBind of a plan made at Reserve on node-0000: the static binding of PV ``pv`` to
    claim ``data`` (LOCAL), or the provisioning of claim ``scratch`` (ZONAL)."""

    provision: bool = False
    before: Callable[[ApiServer], object] | None = None
    """Changes to the API's objects before Reserve (the cache sees them)."""
    meanwhile: Callable[[ApiServer], object] | None = None
    """Changes between Reserve and PreBind (the cache does not see them)."""
    during: Callable[[SchedulerCache, ApiServer], object] | None = None
    """Changes the informers deliver while the executor waits."""
    error: str = TIMEOUT_MESSAGE
    """The VolumeBindingError's message (nothing completes the bindings here: a wait times out)."""
    writes: int = 1
    """PUTs the executor made (of the PV, or of the claim)."""
    after: str = "data+uid"
    """The API's object afterwards. PV: its claimRef, "data+uid" (the claim and its uid), "other",
    "none"; claim: its selected node ("" for none). "gone": deleted."""
    bound_by_controller: bool = True
    """Whether the PV carries pv.kubernetes.io/bound-by-controller afterwards."""


_PROVISIONER: Final = {"volume.kubernetes.io/storage-provisioner": DRIVER}
BINDER_CASES: Final = [
    pytest.param(BinderCase(), id="bindAPIUpdate-prebinds-the-pv-then-waits"),
    pytest.param(BinderCase(before=lambda srv: _set_claim_ref(srv, {"namespace": NS, "name": "data"}),
                            bound_by_controller=False),
                 id="GetBindVolumeToClaim-pv-prebound-by-its-author-gets-the-uid-not-the-annotation"),
    pytest.param(BinderCase(before=lambda srv: _set_claim_ref(srv, _data_ref(srv), annotate=True), writes=0),
                 id="pv-already-prebound-to-the-claim-is-not-written-again"),
    pytest.param(BinderCase(meanwhile=lambda srv: _set_claim_ref(srv, {"namespace": NS, "name": "other", "uid": "x"}),
                            error='persistentvolume "pv" is bound to another claim: "default/other"', writes=0,
                            after="other", bound_by_controller=False),
                 id="pv-bound-to-another-claim-meanwhile-is-refused"),
    pytest.param(BinderCase(meanwhile=lambda srv: srv.ops.delete(srv.resource("persistentvolumes"), namespace="",
                                                                 name="pv"),
                            error='persistentvolumes "pv" not found', writes=0, after="gone"),
                 id="pv-deleted-meanwhile-the-apis-message"),
    pytest.param(BinderCase(meanwhile=_being_deleted, error='persistentvolume "pv" is being deleted', writes=0,
                            after="none", bound_by_controller=False),
                 id="pv-being-deleted-meanwhile-is-refused"),
    pytest.param(BinderCase(during=lambda cache, srv: cache.remove_node("node-0000"),
                            error='binding volumes: failed to get node "node-0000": node "node-0000" not found'),
                 id="checkBindings-node-gone"),
    pytest.param(BinderCase(during=_claim_ref_reset, error='binding volumes: ClaimRef got reset for pv "pv"',
                            after="none"),
                 id="checkBindings-claimref-reset-by-the-pv-controller"),
    pytest.param(BinderCase(provision=True, after="node-0000"), id="bindAPIUpdate-selects-the-node-then-waits"),
    pytest.param(BinderCase(provision=True, meanwhile=lambda srv: _recreate_claim(srv, "scratch"),
                            error='persistentvolumeclaim "scratch" was deleted and created again', writes=0, after=""),
                 id="claim-recreated-meanwhile-is-refused"),
    pytest.param(BinderCase(provision=True, meanwhile=lambda srv: _annotate_claim(srv, "scratch",
                                                                                  {SELECTED_NODE: "node-0001"}),
                            error='persistentvolumeclaim "scratch" was selected for node "node-0001" meanwhile',
                            writes=0, after="node-0001"),
                 id="claim-selected-for-another-node-meanwhile-is-refused"),
    pytest.param(BinderCase(provision=True, meanwhile=lambda srv: srv.ops.delete(
        srv.resource("persistentvolumeclaims"), namespace=NS, name="scratch"),
                            error='persistentvolumeclaims "scratch" not found', writes=0, after="gone"),
                 id="claim-deleted-meanwhile-the-apis-message"),
    pytest.param(BinderCase(provision=True, during=_provisioner_gave_up(_PROVISIONER),
                            error='binding volumes: provisioning failed for PVC "scratch"', after=""),
                 id="checkBindings-provisioner-removed-selected-node"),
    pytest.param(BinderCase(provision=True, during=_provisioner_gave_up({}),
                            error='binding volumes: selectedNode annotation reset for PVC "scratch"', after=""),
                 id="checkBindings-provisioner-removed-every-annotation"),
]


@pytest.mark.parametrize("case", BINDER_CASES)
async def test_the_prebind_executor_writes_what_reserve_decided_and_refuses_what_changed(case: BinderCase) -> None:
    async with cluster(2) as srv:
        add_pv(srv, local_pv("pv", size="1Gi", node="node-0000"))
        srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace=NS)
        srv.create("persistentvolumeclaims", claim("scratch", size="1Gi", cls=ZONAL), namespace=NS)
        if case.before is not None:
            case.before(srv)
        # The cache as the informers would have filled it, and Reserve's assumption (AssumePodVolumes).
        cache = SchedulerCache()
        cache.set_node(srv.get("nodes", "node-0000"))
        _deliver(cache, srv, "PersistentVolume", "pv")
        for name in ("data", "scratch"):
            _deliver(cache, srv, "PersistentVolumeClaim", name, NS)
        volumes = Volumes.of(cache.table)
        data, scratch, pv = volumes.claim(NS, "data"), volumes.claim(NS, "scratch"), volumes.pv("pv")
        assert data is not None and scratch is not None and pv is not None
        if case.provision:
            volumes.assume_claim(with_selected_node(scratch, "node-0000"))
            plan = VolumeBindingPlan("node-0000", (), (f"{NS}/scratch",), (f"{NS}/scratch",), timeout=0.3)
        else:
            assumed, dirty = with_claim_ref(pv, data)
            if dirty:
                volumes.assume_pv(assumed)
            plan = VolumeBindingPlan("node-0000", (("pv", f"{NS}/data"),), (), (f"{NS}/data",), timeout=0.3)
        resource, name = ("persistentvolumeclaims", "scratch") if case.provision else ("persistentvolumes", "pv")
        writes: list[int] = []
        srv.store.add_listener(srv.resource(resource).key, lambda _k, _o, new: writes.append(1) if new else None)
        async with pv_controller(srv) as ctl:
            binder = VolumeBinder(client=ctl.client, cache=cache, poll_interval=0.05)
            prepared = binder.prepare(plan)
            if case.meanwhile is not None:
                case.meanwhile(srv)
            writes.clear()
            task = asyncio.create_task(binder.bind(pod=pod_from_json(pod("app")), prepared=prepared))
            made = case.writes
            if case.during is not None:
                await wait_for(lambda: len(writes) >= case.writes and binder.waiting == 1, what="waiting")
                made = len(writes)
                case.during(cache, srv)
                binder.notify()
            with pytest.raises(VolumeBindingError) as err:
                await task
            assert binder.waiting == 0
        assert err.value.message == case.error
        assert (made if case.during is not None else len(writes)) == case.writes
        if case.after == "gone":
            return
        if case.provision:
            assert annotations_of(srv, resource, name, NS).get(SELECTED_NODE, "") == case.after
            return
        ref = claim_ref(srv, "pv")
        got = ("none" if not ref else "data+uid" if (ref["name"], ref.get("uid")) == ("data", data.uid)
               else ref["name"])
        assert got == case.after
        assert (annotations_of(srv, resource, name).get(BOUND_BY_CONTROLLER) == "yes") == case.bound_by_controller
