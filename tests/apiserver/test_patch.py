"""PATCH with merge, strategic-merge and JSON patch, as the scheduler and kubectl send them."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer
from scheduler.apiserver.patch import strategic_merge_patch

from .kube import pod_manifest

POD = "/api/v1/namespaces/default/pods/web-1"


@pytest.mark.parametrize(("target", "patch", "expected"), [
    # conditions merge by type: the scheduler's PodScheduled=False update keeps other conditions
    ({"conditions": [{"type": "Ready", "status": "True"}]},
     {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
     {"conditions": [{"type": "Ready", "status": "True"},
                     {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
    ({"conditions": [{"type": "PodScheduled", "status": "False", "message": "x"}]},
     {"conditions": [{"type": "PodScheduled", "status": "True", "message": None}]},
     {"conditions": [{"type": "PodScheduled", "status": "True"}]}),
    # $patch: delete removes one keyed element
    ({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
     {"env": [{"name": "A", "$patch": "delete"}]},
     {"env": [{"name": "B", "value": "2"}]}),
    # kubectl apply's $setElementOrder reorders and is not stored
    ({"containers": [{"name": "a"}, {"name": "b"}]},
     {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "x"}]},
     {"containers": [{"name": "b"}, {"name": "a", "image": "x"}]}),
    # lists without a merge key are replaced; null deletes a map key
    ({"args": ["a", "b"], "labels": {"x": "1", "y": "2"}}, {"args": ["c"], "labels": {"x": None}},
     {"args": ["c"], "labels": {"y": "2"}}),
    # finalizers merge as a set; $deleteFromPrimitiveList removes
    ({"finalizers": ["a", "b"]}, {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
     {"finalizers": ["b", "c"]}),
    ({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}}, {"spec": {"c": 3}}),
])
def test_strategic_merge_table(target: dict, patch: dict, expected: dict) -> None:
    assert strategic_merge_patch(target, patch) == expected


async def test_scheduler_style_status_patch(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("web-1"))
    body = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                       "message": "0/3 nodes are available"}]}}
    pod = await core.patch_namespaced_pod_status("web-1", "default", body)
    assert [(c.type, c.status) for c in pod.status.conditions] == [("PodScheduled", "False")]
    assert pod.status.phase == "Pending"


@pytest.mark.parametrize(("ctype", "body", "labels"), [
    ("application/merge-patch+json", {"metadata": {"labels": {"b": "2", "a": None}}}, {"b": "2"}),
    ("application/strategic-merge-patch+json", {"metadata": {"labels": {"b": "2"}}}, {"a": "1", "b": "2"}),
    ("application/json-patch+json", [{"op": "add", "path": "/metadata/labels/b", "value": "2"},
                                      {"op": "remove", "path": "/metadata/labels/a"}], {"b": "2"}),
    ("application/json-patch+json", [{"op": "replace", "path": "/metadata/labels", "value": {"c": "3"}}], {"c": "3"}),
])
async def test_patch_types_over_http(apiserver: ApiServer, http: aiohttp.ClientSession, ctype: str, body: object,
                                     labels: dict) -> None:
    apiserver.create("pods", pod_manifest("web-1", labels={"a": "1"}), namespace="default")
    async with http.patch(POD, json=body, headers={"Content-Type": ctype}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["metadata"]["labels"] == labels


@pytest.mark.parametrize(("ctype", "body", "code", "text"), [
    ("application/json-patch+json", [{"op": "test", "path": "/metadata/name", "value": "other"}], 422, "testing value"),
    ("application/json-patch+json", [{"op": "remove", "path": "/spec/nothing"}], 422, "missing path"),
    ("application/merge-patch+json", {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}}, 409, "has been modified"),
    ("application/xml", {"a": 1}, 415, "unknown format"),
    ("application/merge-patch+json", "not-an-object", 400, "must be a JSON object"),
])
async def test_patch_failures(apiserver: ApiServer, http: aiohttp.ClientSession, ctype: str, body: object, code: int,
                              text: str) -> None:
    apiserver.create("pods", pod_manifest("web-1"), namespace="default")
    async with http.patch(POD, json=body, headers={"Content-Type": ctype}) as r:
        status = await r.json()
    assert r.status == code and text in status["message"], status


async def test_noop_patch_keeps_resource_version(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    rv = apiserver.create("pods", pod_manifest("web-1", labels={"a": "1"}), namespace="default")["metadata"]["resourceVersion"]
    async with http.patch(POD, json={"metadata": {"labels": {"a": "1"}}},
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert (await r.json())["metadata"]["resourceVersion"] == rv


async def test_patch_missing_object_is_404(http: aiohttp.ClientSession) -> None:
    async with http.patch(POD, json={}, headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 404 and (await r.json())["message"] == 'pods "web-1" not found'


async def test_node_status_patch(core: client.CoreV1Api) -> None:
    body = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Test"}]}}
    node = await core.patch_node_status("node-0000", body)
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "False" and ready["MemoryPressure"] == "False"
