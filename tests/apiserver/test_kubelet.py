"""Simulated kubelets run pods bound to Ready nodes, and hold them while a node is NotReady."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from scheduler.apiserver import ApiServer, serve_apiserver
from scheduler.apiserver.podstatus import start_pod
from scheduler.apiserver.usage import pod_demand

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


_PAUSE_ID = "sha256:" + hashlib.sha256(b"registry.k8s.io/pause:3.9").hexdigest()
_NGINX_ID = "sha256:" + hashlib.sha256(b"nginx:1.27").hexdigest()


@pytest.mark.parametrize(("images", "expected"), [
    # the imageID is the digest of the image's name; a pod's containers each get their own image's
    pytest.param(["registry.k8s.io/pause:3.9"], [_PAUSE_ID], id="one"),
    pytest.param(["nginx:1.27", "registry.k8s.io/pause:3.9", "nginx:1.27"], [_NGINX_ID, _PAUSE_ID, _NGINX_ID],
                 id="repeated-images"),
])
def test_started_containers_report_their_image_ids(images: list[str], expected: list[str]) -> None:
    for _ in range(2):  # the second pod asks again for digests already computed
        pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{"name": f"c{i}", "image": image}
                                                                 for i, image in enumerate(images)]}}
        status = start_pod(pod, now=0.0, pod_ip="10.244.0.1", host_ip="172.18.0.2")["status"]
        assert [c["imageID"] for c in status["containerStatuses"]] == expected


@pytest.mark.parametrize(("requests", "expected"), [
    # (cores, bytes) each container uses at ratio 1: its requests; 128Mi = 134217728 bytes
    pytest.param([{"cpu": "100m", "memory": "128Mi"}], [(0.1, 134217728)], id="requests"),
    pytest.param([{"cpu": "100m"}, {"cpu": "100m", "memory": "1Gi"}], [(0.1, 0), (0.1, 1073741824)],
                 id="repeated-and-missing"),
    # what admission refuses, read from a restored state: counted as requesting nothing
    pytest.param([{"cpu": "-1", "memory": "lots"}], [(0.0, 0)], id="negative-and-malformed"),
])
def test_running_pod_uses_its_requests(requests: list[dict[str, str]], expected: list[tuple[float, int]]) -> None:
    pod = {"spec": {"containers": [{"name": f"c{i}", "resources": {"requests": r}} for i, r in enumerate(requests)]}}
    for _ in range(2):  # the second pod asks again for quantities already read
        demand, problems = pod_demand(pod)
        assert ([(cpu, mem) for _, cpu, mem in demand], problems) == (expected, [])
