"""Malformed and oversized requests get a JSON error naming the field, never a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from scheduler.config import default_config
from scheduler.extender import ExtenderServer, ExtenderSettings, serve_extender
from tests.extender.wire import kube_node, kube_pod, node_list, post

NODES = node_list(kube_node("node-a"))


def _with(pod: dict[str, Any], **spec: object) -> dict[str, Any]:
    pod["spec"].update(spec)
    return pod


@pytest.mark.parametrize(("verb", "body", "error"), [
    pytest.param("filter", b"{not json", "request body is not valid JSON: Expecting property name", id="not-json"),
    pytest.param("filter", [], "ExtenderArgs: expected a JSON object, got array", id="not-an-object"),
    pytest.param("filter", {"Nodes": NODES}, "Pod: required", id="no-pod"),
    pytest.param("filter", {"Pod": kube_pod("p", cpu="lots"), "Nodes": NODES},
                 "Pod.spec.containers[0].resources.requests.cpu: invalid quantity 'lots'", id="bad-quantity"),
    pytest.param("prioritize", {"Pod": kube_pod("p"), "NodeNames": ["a", 7]}, "NodeNames[1]: expected a node name",
                 id="bad-name"),
    pytest.param("filter", {"Pod": kube_pod("p")}, "one of NodeNames (nodeCacheCapable: true) or Nodes is required",
                 id="no-nodes"),
    pytest.param("filter", {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"), {"metadata": {"name": "b"},
                 "status": {"allocatable": {"memory": "-1"}}})},
                 "Nodes.items[1].status.allocatable.memory: must not be negative", id="bad-node"),
    pytest.param("filter", {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"), kube_node("a"))},
                 "Nodes.items[1].metadata.name: duplicate node 'a'", id="duplicate-node"),
    pytest.param("filter", {"Pod": _with(kube_pod("p"), tolerations="all"), "Nodes": NODES},
                 "Pod.spec.tolerations", id="bad-tolerations"),
    pytest.param("bind", {"PodName": "p", "PodNamespace": "default", "PodUID": "u"}, "Node: expected a non-empty string",
                 id="bind-no-node"),
    pytest.param("preempt", {"Pod": kube_pod("p")}, "one of NodeNameToMetaVictims or NodeNameToVictims is required",
                 id="preempt-no-victims"),
    pytest.param("preempt", {"Pod": kube_pod("p"), "NodeNameToMetaVictims": {"a": {"Pods": [{"UID": 3}]}}},
                 "NodeNameToMetaVictims[a].Pods[0].UID: expected a non-empty string", id="preempt-bad-uid"),
])
async def test_malformed_bodies_are_400_naming_the_field(extender: ExtenderServer, http: aiohttp.ClientSession,
                                                         verb: str, body: object, error: str) -> None:
    status, result = await post(http, f"{extender.url}/{verb}", body)
    assert status == 400
    assert error in result["Error"]


@pytest.fixture
async def small() -> AsyncIterator[ExtenderServer]:
    async with serve_extender(config=default_config(), settings=ExtenderSettings(
            bind_address="127.0.0.1", port=0, max_body_bytes=4096)) as srv:
        yield srv


async def test_oversized_bodies_are_413(small: ExtenderServer, http: aiohttp.ClientSession) -> None:
    body = {"Pod": kube_pod("p"), "Nodes": node_list(*(kube_node(f"n{i}") for i in range(10)))}
    status, result = await post(http, f"{small.url}/filter", body)
    assert status == 413
    assert result == {"Error": "request body is larger than the extender's limit of 4096 bytes"}


async def test_oversized_chunked_bodies_are_413_too(small: ExtenderServer, http: aiohttp.ClientSession) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: only reading can tell
        for _ in range(10):
            yield b" " * 1000

    async with http.post(f"{small.url}/filter", data=chunks()) as resp:
        assert resp.status == 413
        assert "limit of 4096 bytes" in (await resp.json())["Error"]


async def test_the_server_keeps_serving_after_bad_requests(extender: ExtenderServer,
                                                           http: aiohttp.ClientSession) -> None:
    for _ in range(3):
        await post(http, f"{extender.url}/filter", b"\xff\xfe")
    status, result = await post(http, f"{extender.url}/filter", {"Pod": kube_pod("p"), "Nodes": NODES})
    assert status == 200 and result["Error"] == ""
