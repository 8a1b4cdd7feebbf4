"""Extender bind records what reserve plugins chose, as `vecsched run` does: a GPU-sharing
pod's GPU index is patched onto the pod before the Binding, and the extender's cache
charges that GPU at once, so the next pod that cannot share it gets the other GPU."""

from __future__ import annotations

from typing import Any

import aiohttp

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.config import API_VERSION, parse_config
from tests.extender.cached import cached_extender
from tests.extender.wire import kube_pod, post
from tests.live.support import wait_for

GPU_PROFILE = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
    {"schedulerName": "gpu", "plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]}}}]})


def _gpu_share(srv: ApiServer, name: str) -> dict[str, Any]:
    p = kube_pod(name, cpu="100m")
    for k in ("uid", "resourceVersion", "creationTimestamp"):
        p["metadata"].pop(k)
    p["metadata"]["annotations"] = {"vecsched.io/gpu-milli": "600"}
    p["status"] = {}
    srv.create("pods", p, namespace="default")
    return srv.get("pods", name, namespace="default")


async def test_bind_patches_the_gpu_index_then_binds() -> None:
    async with serve_apiserver(nodes=[NodeShape(count=1, cpu="8", gpus=2)], kubelet_delay=0.0) as srv, \
            cached_extender(srv, config=GPU_PROFILE) as ext, aiohttp.ClientSession() as http:
        indices = []
        for name in ("a", "b"):
            pod = _gpu_share(srv, name)
            status, result = await post(http, f"{ext.url}/gpu/filter", {"Pod": pod, "NodeNames": ["node-0000"]})
            assert status == 200 and result["NodeNames"] == ["node-0000"]
            status, result = await post(http, f"{ext.url}/gpu/bind", {
                "PodName": name, "PodNamespace": "default", "PodUID": pod["metadata"]["uid"], "Node": "node-0000"})
            assert (status, result) == (200, {"Error": ""})
            stored = srv.get("pods", name, namespace="default")
            assert stored["spec"]["nodeName"] == "node-0000"
            indices.append(stored["metadata"]["annotations"]["vecsched.io/gpu-index"])
        # 600 + 600 > 1000 milli-GPU: had the first pod's GPU not been charged, both would get GPU 0
        assert sorted(indices) == ["0", "1"]
        await wait_for(lambda: len(ext.view.cache.table.pods) == 2 if ext.view.cache else False, what="cache")
