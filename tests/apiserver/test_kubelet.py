"""Simulated kubelets run pods bound to Ready nodes, and hold them while a node is NotReady."""

from __future__ import annotations

import asyncio

from scheduler.apiserver import ApiServer, serve_apiserver

from .kube import pod_manifest


def _bind(srv: ApiServer, name: str, node: str) -> None:
    srv.ops.bind({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": name}, "target": {"name": node}},
                 namespace="default", name=name)


async def _phase(srv: ApiServer, name: str, want: str, timeout: float = 2.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        pod = srv.get("pods", name, namespace="default")
        if pod["status"]["phase"] == want or asyncio.get_running_loop().time() > deadline:
            return pod
        await asyncio.sleep(0.01)


async def test_bound_pod_runs_after_the_delay() -> None:
    async with serve_apiserver(nodes=2, kubelet_delay=0.2) as srv:
        srv.create("pods", pod_manifest("web-1"), namespace="default")
        _bind(srv, "web-1", "node-0001")
        await asyncio.sleep(0.05)
        assert srv.get("pods", "web-1", namespace="default")["status"]["phase"] == "Pending"
        pod = await _phase(srv, "web-1", "Running")
    status = pod["status"]
    assert status["phase"] == "Running"
    assert {c["type"] for c in status["conditions"] if c["status"] == "True"} >= {
        "PodScheduled", "Initialized", "Ready", "ContainersReady"}
    assert status["startTime"] and status["podIP"] and status["hostIP"].startswith("172.")
    assert status["containerStatuses"][0]["ready"] is True


async def test_not_ready_node_holds_pods_until_ready(apiserver: ApiServer) -> None:
    apiserver.set_node_ready("node-0002", False)
    node = apiserver.get("nodes", "node-0002")
    assert {t["key"] for t in node["spec"]["taints"]} == {"node.kubernetes.io/not-ready"}
    apiserver.create("pods", pod_manifest("web-1"), namespace="default")
    _bind(apiserver, "web-1", "node-0002")
    await asyncio.sleep(0.1)
    assert apiserver.get("pods", "web-1", namespace="default")["status"]["phase"] == "Pending"
    apiserver.set_node_ready("node-0002", True)
    assert "taints" not in apiserver.get("nodes", "node-0002")["spec"]
    assert (await _phase(apiserver, "web-1", "Running"))["status"]["phase"] == "Running"


async def test_thousands_of_pods_start_in_one_batch() -> None:
    async with serve_apiserver(nodes=10, kubelet_delay=0.05) as srv:
        for i in range(2000):
            srv.create("pods", pod_manifest(f"p{i}", node=f"node-{i % 10:04d}"), namespace="default")
        await asyncio.sleep(0.3)
        phases = {p["status"]["phase"] for p in srv.list("pods", namespace="default")}
        assert phases == {"Running"} and srv.kubelet.started == 2000
