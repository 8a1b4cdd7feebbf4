"""Failures are Status objects with kube-apiserver's reasons, codes and messages."""

from __future__ import annotations

import json

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .kube import pod_manifest


async def test_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        await core.read_namespaced_pod("web-1", "default")
    body = json.loads(e.value.body)
    assert e.value.status == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "web-1" not found', "reason": "NotFound", "code": 404,
                    "details": {"name": "web-1", "kind": "pods"}}


async def test_already_exists(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("web-1"))
    with pytest.raises(ApiException) as e:
        await core.create_namespaced_pod("default", pod_manifest("web-1"))
    body = json.loads(e.value.body)
    assert (e.value.status, body["reason"], body["message"]) == (409, "AlreadyExists", 'pods "web-1" already exists')


async def test_stale_update_conflicts(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod_manifest("web-1"))
    first = await core.read_namespaced_pod("web-1", "default")
    second = await core.read_namespaced_pod("web-1", "default")
    first.metadata.labels = {"v": "1"}
    await core.replace_namespaced_pod("web-1", "default", first)
    second.metadata.labels = {"v": "2"}
    with pytest.raises(ApiException) as e:
        await core.replace_namespaced_pod("web-1", "default", second)
    body = json.loads(e.value.body)
    assert e.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on pods "web-1": the object has been modified; '
                               "please apply your changes to the latest version and try again")
    assert body["details"] == {"name": "web-1", "kind": "pods"}


async def test_grouped_resource_messages_are_qualified(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as e:
        await client.CoordinationV1Api(api).read_namespaced_lease("missing", "default")
    body = json.loads(e.value.body)
    assert body["message"] == 'leases.coordination.k8s.io "missing" not found'
    assert body["details"] == {"name": "missing", "group": "coordination.k8s.io", "kind": "leases"}


async def test_create_in_missing_namespace(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        await core.create_namespaced_pod("nowhere", pod_manifest("web-1"))
    assert e.value.status == 404 and json.loads(e.value.body)["message"] == 'namespaces "nowhere" not found'


async def test_unknown_path_is_a_status(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v1/widgets") as r:
        assert r.status == 404
        assert (await r.json())["message"] == "the server could not find the requested resource"


async def test_protected_namespace_cannot_be_deleted(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        await core.delete_namespace("kube-system")
    assert e.value.status == 403
