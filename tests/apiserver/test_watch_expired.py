"""A watch from a resourceVersion older than the history window gets 410 Expired in-stream."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client, watch

from scheduler.apiserver import serve_apiserver

from .kube import kube_client, pod_manifest, read_watch


async def test_compact_expires_older_versions(apiserver, http: aiohttp.ClientSession) -> None:
    apiserver.create("pods", pod_manifest("a"), namespace="default")
    old = apiserver.store.resource_version - 1
    now = apiserver.compact()
    async with http.get("/api/v1/pods", params={"watch": "1", "resourceVersion": str(old)}) as r:
        assert r.status == 200
        [event] = await read_watch(r, count=2)
    assert event["type"] == "ERROR"
    assert event["object"] == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": f"too old resource version: {old} ({now})", "reason": "Expired", "code": 410}
    async with http.get("/api/v1/pods", params={"watch": "1", "resourceVersion": str(now), "timeoutSeconds": "1"}) as r:
        assert await read_watch(r, count=1) == []  # the current version is still watchable


async def test_history_window_overflow_expires() -> None:
    async with serve_apiserver(history=5) as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        start = srv.store.resource_version
        for i in range(10):
            srv.create("pods", pod_manifest(f"p{i}"), namespace="default")
        async with http.get("/api/v1/pods", params={"watch": "1", "resourceVersion": str(start)}) as r:
            [event] = await read_watch(r, count=1)
        assert event["type"] == "ERROR" and event["object"]["code"] == 410
        recent = srv.store.resource_version - 3
        async with http.get("/api/v1/pods", params={"watch": "1", "resourceVersion": str(recent), "timeoutSeconds": "1"}) as r:
            assert len(await read_watch(r, count=10)) == 3


async def test_kubernetes_asyncio_sees_410(apiserver) -> None:
    apiserver.create("pods", pod_manifest("a"), namespace="default")
    old = apiserver.store.resource_version - 1
    apiserver.compact()
    async with await kube_client(apiserver.kubeconfig_path) as api:
        core = client.CoreV1Api(api)
        with pytest.raises(client.exceptions.ApiException) as e:
            async for _ in watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=str(old),
                                                timeout_seconds=2):
                pass
    assert e.value.status == 410
