"""kubernetes_asyncio's Watch helper, as vecsched's informers use it: list, then watch with bookmarks."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio import client, watch

from scheduler.apiserver import ApiServer

from .kube import pod_manifest


async def test_list_then_watch_with_bookmarks(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.create("pods", pod_manifest("before"), namespace="default")
    listed = await core.list_namespaced_pod("default")
    seen: list[tuple[str, str]] = []

    async def produce() -> None:
        await asyncio.sleep(0.3)
        apiserver.create("pods", pod_manifest("after"), namespace="default")
        apiserver.ops.bind({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "after"},
                            "target": {"name": "node-0000"}}, namespace="default", name="after")

    producer = asyncio.create_task(produce())
    w = watch.Watch()
    async for event in w.stream(core.list_namespaced_pod, "default", resource_version=listed.metadata.resource_version,
                                allow_watch_bookmarks=True, timeout_seconds=1):
        seen.append((event["type"], event["object"].metadata.name if event["type"] != "BOOKMARK" else ""))
    await producer
    kinds = [t for t, _ in seen]
    assert ("ADDED", "after") in seen and ("MODIFIED", "after") in seen
    assert "BOOKMARK" in kinds and ("ADDED", "before") not in seen
    assert w.resource_version is not None and int(w.resource_version) >= apiserver.store.resource_version - 1
