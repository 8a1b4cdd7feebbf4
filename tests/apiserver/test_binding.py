"""pods/binding: assigns a node once, with the real server's Success and refusal bodies."""

from __future__ import annotations

import json

import aiohttp
import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer

from .kube import pod_manifest


def binding(name: str, node: str, uid: str = "") -> dict:
    meta: dict = {"name": name}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "v1", "kind": "Binding", "metadata": meta, "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


async def _bind(core: client.CoreV1Api, name: str, node: str, uid: str = "") -> tuple[int, dict]:
    # kubernetes_asyncio cannot deserialise the Status that binding returns; read the raw response.
    try:
        resp = await core.create_namespaced_pod_binding(name, "default", binding(name, node, uid), _preload_content=False)
    except client.exceptions.ApiException as e:
        return e.status, json.loads(e.body)
    return resp.status, json.loads(await resp.read())


async def test_bind_sets_node_and_condition(core: client.CoreV1Api, apiserver: ApiServer) -> None:
    pod = await core.create_namespaced_pod("default", pod_manifest("web-1"))
    status, body = await _bind(core, "web-1", "node-0002", uid=pod.metadata.uid)
    assert (status, body) == (201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    stored = apiserver.get("pods", "web-1", namespace="default")
    assert stored["spec"]["nodeName"] == "node-0002"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in stored["status"]["conditions"])


async def test_second_binding_conflicts(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("web-1"))
    await _bind(core, "web-1", "node-0000")
    status, body = await _bind(core, "web-1", "node-0001")
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on pods/binding "web-1": '
                               'pod web-1 is already assigned to node "node-0000"')


async def test_uid_precondition(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("web-1"))
    status, body = await _bind(core, "web-1", "node-0000", uid="not-the-uid")
    assert status == 409 and "Precondition failed: UID in precondition: not-the-uid" in body["message"]
    assert body["message"].startswith('Operation cannot be fulfilled on pods "web-1": ')


async def test_binding_a_missing_pod(core: client.CoreV1Api) -> None:
    status, body = await _bind(core, "ghost", "node-0000")
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'pods "ghost" not found')


@pytest.mark.parametrize(("body", "code", "text"), [
    ({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-1"}}, 422, "target.name: Required value"),
    ({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "other"}, "target": {"name": "node-0000"}}, 400,
     "name in URL does not match name in Binding object"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1"}}, 400, "cannot be handled as a Binding"),
])
async def test_bad_bindings(apiserver: ApiServer, http: aiohttp.ClientSession, body: dict, code: int, text: str) -> None:
    apiserver.create("pods", pod_manifest("web-1"), namespace="default")
    async with http.post("/api/v1/namespaces/default/pods/web-1/binding", json=body) as r:
        status = await r.json()
    assert r.status == code and text in status["message"]


async def test_legacy_bindings_collection(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.create("pods", pod_manifest("web-1"), namespace="default")
    async with http.post("/api/v1/namespaces/default/bindings", json=binding("web-1", "node-0001")) as r:
        assert r.status == 201
    assert apiserver.get("pods", "web-1", namespace="default")["spec"]["nodeName"] == "node-0001"
