"""Full Nodes are reused by content: the same node sent again (same bytes) is not read again;
a node that differs in any byte -- a new resourceVersion, or the same name and resourceVersion
with other content -- is read afresh, so no request can poison the answer to a later one."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from scheduler.extender import ExtenderServer
from scheduler.extender.cluster import content_digest
from tests.extender.wire import kube_node, kube_pod, node_list, post


def _node(cpu: str, rv: str) -> dict[str, Any]:
    n = kube_node("a", cpu=cpu)
    n["metadata"]["resourceVersion"] = rv
    return n


@pytest.mark.parametrize(("first", "second", "reused", "unresolvable"), [
    # same bytes: the node read for the first request answers the second (4 CPUs fit the 2-CPU pod)
    pytest.param(("4", "10"), ("4", "10"), True, {}, id="same-content-reused"),
    # a new resourceVersion with 1 CPU: read again, and 2 CPUs > 1 -> Insufficient cpu
    pytest.param(("4", "10"), ("1", "11"), False, {"a": "Insufficient cpu"}, id="new-version-read-again"),
    # poisoning: a first request claims 64 CPUs at resourceVersion 10; the real node at the same
    # resourceVersion has 1. The real content is read and used: 2 > 1 -> Insufficient cpu.
    pytest.param(("64", "10"), ("1", "10"), False, {"a": "Insufficient cpu"}, id="same-version-other-content"),
    # and the other way: a made-up 1-CPU node first does not make the real 4-CPU one fail
    pytest.param(("1", "10"), ("4", "10"), False, {}, id="same-version-poison-the-other-way"),
])
async def test_a_node_is_reused_only_for_identical_content(
        extender: ExtenderServer, http: aiohttp.ClientSession, first: tuple[str, str], second: tuple[str, str],
        reused: bool, unresolvable: dict[str, str]) -> None:
    pod = kube_pod("p", cpu="2")
    before, after = _node(*first), _node(*second)
    await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": node_list(before)})
    kept = extender.view.seen.get(content_digest(before))
    assert kept is not None and kept.name == "a"

    status, r = await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": node_list(after)})
    assert status == 200 and r["Error"] == ""
    assert r["FailedAndUnresolvableNodes"] == unresolvable
    now = extender.view.seen.get(content_digest(after))
    assert (now is kept) is reused
    # preempt names nodes only: it gets the node as the latest request sent it
    assert extender.view.node_seen("a") is now
