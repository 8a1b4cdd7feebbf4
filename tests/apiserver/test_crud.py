"""Create, read, update and delete through kubernetes_asyncio, with server-filled metadata."""

from __future__ import annotations

import json

from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer

from .kube import pod_manifest


async def test_create_fills_metadata_and_defaults(core: client.CoreV1Api) -> None:
    pod = await core.create_namespaced_pod("default", pod_manifest("web-1"))
    assert pod.metadata.uid and pod.metadata.creation_timestamp is not None
    assert pod.metadata.namespace == "default"
    assert int(pod.metadata.resource_version) > 0
    assert pod.status.phase == "Pending" and pod.status.qos_class == "Burstable"
    assert pod.spec.scheduler_name == "vecsched" and pod.spec.restart_policy == "Always"


async def test_generate_name(core: client.CoreV1Api) -> None:
    body = pod_manifest("")
    body["metadata"] = {"generateName": "batch-"}
    a = await core.create_namespaced_pod("default", body)
    b = await core.create_namespaced_pod("default", body)
    assert a.metadata.name.startswith("batch-") and len(a.metadata.name) == len("batch-") + 5
    assert a.metadata.name != b.metadata.name


async def test_get_update_delete_roundtrip(core: client.CoreV1Api, apiserver: ApiServer) -> None:
    created = await core.create_namespaced_pod("default", pod_manifest("web-1"))
    got = await core.read_namespaced_pod("web-1", "default")
    assert got.metadata.uid == created.metadata.uid
    got.metadata.labels = {"tier": "frontend"}
    updated = await core.replace_namespaced_pod("web-1", "default", got)
    assert updated.metadata.labels == {"tier": "frontend"}
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    assert apiserver.get("pods", "web-1", namespace="default")["metadata"]["labels"] == {"tier": "frontend"}
    await core.delete_namespaced_pod("web-1", "default")
    assert apiserver.store.find(apiserver.resource("pods"), "default", "web-1") is None


async def test_resource_version_is_global_and_increasing(core: client.CoreV1Api) -> None:
    rvs = []
    for i in range(3):
        rvs.append(int((await core.create_namespaced_pod("default", pod_manifest(f"p{i}"))).metadata.resource_version))
        ns = await core.create_namespace({"metadata": {"name": f"team-{i}"}})
        rvs.append(int(ns.metadata.resource_version))
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    listed = await core.list_pod_for_all_namespaces()
    assert int(listed.metadata.resource_version) >= rvs[-1]


async def test_main_resource_update_keeps_status(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("web-1"))
    pod = await core.read_namespaced_pod("web-1", "default")
    pod.status.phase = "Succeeded"
    after = await core.replace_namespaced_pod("web-1", "default", pod)
    assert after.status.phase == "Pending"
    pod = await core.read_namespaced_pod("web-1", "default")
    pod.status.phase = "Failed"
    after = await core.replace_namespaced_pod_status("web-1", "default", pod)
    assert after.status.phase == "Failed"


async def test_default_namespaces_and_cluster_scoped_objects(core: client.CoreV1Api) -> None:
    names = {ns.metadata.name for ns in (await core.list_namespace()).items}
    assert {"default", "kube-system"} <= names
    node = await core.read_node("node-0001")
    assert node.metadata.namespace is None


async def test_other_served_resources(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert (await core.read_namespaced_config_map("cfg", "default")).data == {"a": "1"}
    await core.create_namespaced_service("default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    assert (await core.read_namespaced_service("svc", "default")).spec.type == "ClusterIP"
    leases = client.CoordinationV1Api(api)
    lease = await leases.create_namespaced_lease("kube-system", {"metadata": {"name": "vecsched"},
                                                                 "spec": {"holderIdentity": "a"}})
    lease.spec.holder_identity = "b"
    assert (await leases.replace_namespaced_lease("vecsched", "kube-system", lease)).spec.holder_identity == "b"
    events = client.EventsV1Api(api)
    ev = await events.create_namespaced_event("default", {
        "metadata": {"generateName": "web-1."}, "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "vecsched", "reportingInstance": "vecsched-0", "action": "Scheduling",
        "reason": "Scheduled", "type": "Normal", "note": "bound", "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default"},
    })
    assert ev.regarding.name == "web-1"
    await core.create_namespaced_event("default", {
        "metadata": {"name": "web-1.1"}, "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
        "reason": "Scheduled", "message": "bound", "type": "Normal"})
    assert len((await core.list_namespaced_event("default")).items) == 1
    assert len((await events.list_namespaced_event("default")).items) == 1


async def test_namespace_delete_removes_its_objects(core: client.CoreV1Api, apiserver: ApiServer) -> None:
    await core.create_namespace({"metadata": {"name": "team"}})
    await core.create_namespaced_pod("team", pod_manifest("p"))
    await core.delete_namespace("team")
    assert apiserver.list("pods", namespace="team") == []


async def test_deletecollection_of_pods(core: client.CoreV1Api, apiserver: ApiServer) -> None:
    for i in range(4):
        await core.create_namespaced_pod("default", pod_manifest(f"p{i}", labels={"batch": "a" if i < 3 else "b"}))
    # The real server answers with the list of deleted pods (kubernetes_asyncio types it as a Status).
    resp = await core.delete_collection_namespaced_pod("default", label_selector="batch=a", _preload_content=False)
    deleted = json.loads(await resp.read())
    assert deleted["kind"] == "PodList"
    assert sorted(p["metadata"]["name"] for p in deleted["items"]) == ["p0", "p1", "p2"]
    assert [p["metadata"]["name"] for p in apiserver.list("pods", namespace="default")] == ["p3"]
