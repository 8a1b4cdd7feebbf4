"""NodeNames mode follows the cluster through the informers: nodes that join are answered for,
pods that go away give their capacity back, and the answers change without a restart."""

from __future__ import annotations

from typing import Any

import aiohttp

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.extender.verbs import NOT_IN_CACHE
from tests.extender.cached import cached_extender
from tests.extender.wire import kube_pod, post
from tests.live.support import wait_async


def _api_pod(name: str, *, cpu: str, node: str = "") -> dict[str, Any]:
    p = kube_pod(name, cpu=cpu, node=node)
    for k in ("uid", "resourceVersion", "creationTimestamp"):
        p["metadata"].pop(k)
    p["status"] = {}
    return p


async def test_cache_follows_nodes_and_pods() -> None:
    async with serve_apiserver(nodes=[NodeShape(count=1, cpu="4", memory="8Gi")], kubelet_delay=0.0,
                               bookmark_interval=0.5) as srv:
        srv.create("pods", _api_pod("old", cpu="3", node="node-0000"), namespace="default")
        async with cached_extender(srv) as ext, aiohttp.ClientSession() as http:
            args = {"Pod": kube_pod("web", cpu="2"), "NodeNames": ["node-0000", "node-0001"]}
            _, result = await post(http, f"{ext.url}/filter", args)
            assert result["NodeNames"] == []
            assert result["FailedNodes"] == {"node-0000": "Insufficient cpu", "node-0001": NOT_IN_CACHE}

            srv.add_nodes(NodeShape(count=1, cpu="4", memory="8Gi"))  # node-0001 joins

            async def joined() -> bool:
                return bool((await post(http, f"{ext.url}/filter", args))[1]["NodeNames"] == ["node-0001"])
            await wait_async(joined, what="node-0001 in the extender's cache")

            srv.ops.delete(srv.resource("pods"), namespace="default", name="old", grace=0)  # force: gone at once

            async def freed() -> bool:
                return bool((await post(http, f"{ext.url}/filter", args))[1]["NodeNames"] == ["node-0000", "node-0001"])
            await wait_async(freed, what="old's capacity to be given back")

            async with http.get(f"{ext.url}/metrics") as r:
                text = await r.text()
            assert 'vecsched_extender_cache_size{type="nodes"} 2.0' in text
