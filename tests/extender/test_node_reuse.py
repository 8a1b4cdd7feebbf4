"""Full Nodes are read once per resourceVersion: a new version is read again (and changes the
answer); the same version is taken from what was read before."""

from __future__ import annotations

from typing import Any

import aiohttp

from scheduler.extender import ExtenderServer
from tests.extender.wire import kube_node, kube_pod, node_list, post


def _node(cpu: str, rv: str) -> dict[str, Any]:
    n = kube_node("a", cpu=cpu)
    n["metadata"]["resourceVersion"] = rv
    return n


async def test_nodes_are_read_again_only_when_their_version_changes(extender: ExtenderServer,
                                                                    http: aiohttp.ClientSession) -> None:
    pod = kube_pod("p", cpu="2")
    _, r = await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": node_list(_node("4", "10"))})
    assert r["Nodes"]["items"][0]["metadata"]["name"] == "a"
    first = extender.view.nodes_seen["a"]

    _, r = await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": node_list(_node("4", "10"))})
    assert extender.view.nodes_seen["a"] is first  # same version: not read again

    _, r = await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": node_list(_node("1", "11"))})
    assert r["FailedAndUnresolvableNodes"] == {"a": "Insufficient cpu"}  # the new version counts
    assert extender.view.nodes_seen["a"] is not first
