"""Informers: list then watch; resume after closed streams; relist after 410 with correct deletions."""

from __future__ import annotations

import asyncio
from typing import Any

from scheduler.apiserver import ApiServer
from scheduler.kube.client import ClientSettings, connect
from scheduler.kube.informer import Backoff, Delta, Informer
from tests.live.support import pod, wait_for


class Mirror:
    """What a handler would build from the deltas: the collection, by name."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[str, Any]] = {}
        self.types: list[str] = []

    def __call__(self, d: Delta) -> None:
        self.types.append(d.type)
        if d.type == "SYNCED":
            return
        name = d.obj["metadata"]["name"]
        if d.type == "DELETED":
            self.objs.pop(name, None)
        else:
            self.objs[name] = dict(d.obj)


async def test_mirror_follows_the_server_through_faults(apiserver: ApiServer) -> None:
    client = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
    mirror = Mirror()
    inf = Informer(client=client, path="/api/v1/pods", handler=mirror, backoff=Backoff(initial=0.01, cap=0.05))
    try:
        for i in range(5):
            apiserver.create("pods", pod(f"before{i}"))
        inf.start()
        await asyncio.wait_for(inf.synced.wait(), 5)
        assert set(mirror.objs) == {f"before{i}" for i in range(5)}
        # streams cut mid-stream: resume from the last resourceVersion, nothing missed
        apiserver.faults.watch_close_seconds = 0.05
        for i in range(10):
            apiserver.create("pods", pod(f"during{i}"))
            await asyncio.sleep(0.02)
        await wait_for(lambda: len(mirror.objs) == 15, what="15 pods mirrored")
        assert mirror.types.count("SYNCED") == 1  # resumed, never relisted
        apiserver.faults.watch_close_seconds = 0
        # history compacted while a stream is down: 410 on resume -> relist, deletions synthesised
        apiserver.ops.delete(apiserver.resource("pods"), namespace="default", name="before0")
        apiserver.create("configmaps", {"metadata": {"name": "bump", "namespace": "default"}})
        apiserver.compact()
        apiserver.close_watches()
        apiserver.ops.delete(apiserver.resource("pods"), namespace="default", name="before1")
        apiserver.create("pods", pod("after"))
        await wait_for(lambda: "after" in mirror.objs and "before1" not in mirror.objs, what="relisted")
        assert "before0" not in mirror.objs
        assert mirror.types.count("SYNCED") >= 2
        # server errors for a while: back off, come back, catch up
        apiserver.faults.error_rate = 1.0
        apiserver.close_watches()
        apiserver.create("pods", pod("while-failing"))
        await asyncio.sleep(0.2)
        apiserver.faults.reset()
        await wait_for(lambda: "while-failing" in mirror.objs, what="caught up after errors")
        assert set(mirror.objs) == {p["metadata"]["name"] for p in apiserver.list("pods")}
    finally:
        await inf.stop()
        await client.close()


async def test_bookmarks_move_the_resource_version(apiserver: ApiServer) -> None:
    # bookmark_interval is 0.5 s in the fixture; a quiet watch still learns the latest version.
    client = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
    mirror = Mirror()
    inf = Informer(client=client, path="/api/v1/nodes", handler=mirror, backoff=Backoff(initial=0.01, cap=0.05))
    try:
        inf.start()
        await asyncio.wait_for(inf.synced.wait(), 5)
        for i in range(3):  # writes to another resource: node watchers see only bookmarks
            apiserver.create("configmaps", {"metadata": {"name": f"c{i}", "namespace": "default"}})
        await asyncio.sleep(0.7)
        apiserver.compact()  # the history up to now is gone, but the bookmark made us current
        apiserver.close_watches()
        await asyncio.sleep(0.3)
        assert mirror.types.count("SYNCED") == 1  # resumed without a relist
    finally:
        await inf.stop()
        await client.close()
