"""A kube-scheduler conversation with nodeCacheCapable: true against a cluster (the embedded
API server): NodeNames in, NodeNames back; prioritize; bind creates the Binding through the
API; preempt keeps the nodes where the victims make room (more: tests/extender/test_preempt.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.extender.verbs import NOT_IN_CACHE
from tests.extender.cached import cached_extender
from tests.extender.wire import kube_pod, post
from tests.live.support import wait_for

NAMES = ["node-0000", "node-0001", "node-0002"]


@pytest.fixture
async def cluster() -> AsyncIterator[ApiServer]:
    """Three 4-CPU nodes; `old` (3 CPU) runs on node-0000; `web` (2 CPU) is pending."""
    async with serve_apiserver(nodes=[NodeShape(count=3, cpu="4", memory="8Gi")], kubelet_delay=0.0,
                               bookmark_interval=0.5) as srv:
        for p in (kube_pod("old", cpu="3", node="node-0000"), kube_pod("web", cpu="2")):
            for k in ("uid", "resourceVersion", "creationTimestamp"):
                p["metadata"].pop(k)
            p["status"] = {}
            srv.create("pods", p, namespace="default")
        yield srv


def _pod(srv: ApiServer, name: str) -> dict[str, Any]:
    """The pod as kube-scheduler has it: from the API."""
    return srv.get("pods", name, namespace="default")


async def test_filter_prioritize_bind_preempt(cluster: ApiServer) -> None:
    async with cached_extender(cluster) as ext, aiohttp.ClientSession() as http:
        web = _pod(cluster, "web")
        args = {"Pod": web, "Nodes": None, "NodeNames": [*NAMES, "node-9999"]}

        status, result = await post(http, f"{ext.url}/filter", args)
        assert status == 200
        assert result == {
            "Nodes": None,
            "NodeNames": ["node-0001", "node-0002"],
            # 3 + 2 > 4 CPUs: resolvable (preempting `old` would make room).
            "FailedNodes": {"node-0000": "Insufficient cpu", "node-9999": NOT_IN_CACHE},
            "FailedAndUnresolvableNodes": {},
            "Error": "",
        }

        status, scores = await post(http, f"{ext.url}/prioritize",
                                    {"Pod": web, "Nodes": None, "NodeNames": ["node-0001", "node-0002"]})
        assert status == 200
        assert [s["Host"] for s in scores] == ["node-0001", "node-0002"]
        assert all(0 <= s["Score"] <= 10 for s in scores)
        assert scores[0]["Score"] == scores[1]["Score"]  # identical empty nodes

        status, result = await post(http, f"{ext.url}/bind", {
            "PodName": "web", "PodNamespace": "default", "PodUID": web["metadata"]["uid"], "Node": "node-0001"})
        assert (status, result) == (200, {"Error": ""})
        assert _pod(cluster, "web")["spec"]["nodeName"] == "node-0001"
        # Assumed at once: a 3-CPU pod no longer fits node-0001, before any watch event.
        status, result = await post(http, f"{ext.url}/filter",
                                    {"Pod": kube_pod("big", cpu="3"), "NodeNames": NAMES})
        assert result["NodeNames"] == ["node-0002"]
        cache = ext.view.cache
        assert cache is not None
        await wait_for(lambda: not cache.is_assumed("default/web"), what="the watch to confirm web")

        # Binding a pod that does not exist is an error result, not an HTTP failure.
        status, result = await post(http, f"{ext.url}/bind", {
            "PodName": "ghost", "PodNamespace": "default", "PodUID": "x", "Node": "node-0001"})
        assert status == 200 and "404" in result["Error"]

        # Preempt for `big` (3 CPU): evicting `old` frees node-0000; node-0001 keeps `web`
        # (2 + 3 > 4 CPU; web's priority 0 is not below big's 0, so nothing can be added);
        # node-0002 fits with no victim, which upstream never offers as a candidate.
        old_uid = _pod(cluster, "old")["metadata"]["uid"]
        status, result = await post(http, f"{ext.url}/preempt", {
            "Pod": kube_pod("big", cpu="3"), "NodeNameToVictims": None, "NodeNameToMetaVictims": {
                "node-0000": {"Pods": [{"UID": old_uid}], "NumPDBViolations": 0},
                "node-0001": {"Pods": [], "NumPDBViolations": 0},
                "node-0002": {"Pods": [], "NumPDBViolations": 0},
            }})
        assert status == 200
        assert result == {"NodeNameToMetaVictims": {
            "node-0000": {"Pods": [{"UID": old_uid}], "NumPDBViolations": 0},
        }}
        # The victims were only removed for the check.
        assert cache.node_of("default/old") == "node-0000"


async def test_nodes_requests_are_answered_from_the_cache_too(cluster: ApiServer) -> None:
    """With a cache, a full NodeList selects nodes by name and the cache supplies the pods on them."""
    async with cached_extender(cluster) as ext, aiohttp.ClientSession() as http:
        nodes = {"metadata": {}, "items": [cluster.get("nodes", n) for n in NAMES]}
        status, result = await post(http, f"{ext.url}/filter", {"Pod": _pod(cluster, "web"), "Nodes": nodes})
        assert status == 200
        assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["node-0001", "node-0002"]
        assert result["FailedNodes"] == {"node-0000": "Insufficient cpu"}
