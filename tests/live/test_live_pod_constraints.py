"""Topology spread and pod anti-affinity hold in the live scheduler, also when
all replicas are created at once (assumed pods count before they are bound)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp

from scheduler.apiserver import NodeShape, serve_apiserver
from tests.live.support import bound_count, events_for, pod, pods_of, running, wait_for

ZONE = "topology.kubernetes.io/zone"


async def _create_concurrently(url: str, pods: list[dict[str, Any]]) -> None:
    async with aiohttp.ClientSession() as http:
        async def one(p: dict[str, Any]) -> None:
            async with http.post(f"{url}/api/v1/namespaces/default/pods", json=p) as r:
                assert r.status == 201, await r.text()
        await asyncio.gather(*(one(p) for p in pods))


def _replica(name: str, app: str, **spec: Any) -> dict[str, Any]:
    p = pod(name, cpu="100m", **spec)
    p["metadata"]["labels"] = {"app": app}
    return p


async def test_thirty_replicas_spread_ten_per_zone() -> None:
    # 9 nodes, 3 per zone; maxSkew 1 over zones with DoNotSchedule: 30 replicas end 10/10/10
    shape = NodeShape(count=9, cpu="16", memory="32Gi", zones=("zone-a", "zone-b", "zone-c"))
    async with serve_apiserver(nodes=shape, kubelet_delay=0.0) as srv:
        zone_of = {n["metadata"]["name"]: n["metadata"]["labels"][ZONE] for n in srv.list("nodes")}
        spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "web"}}}]
        async with running(srv):
            await _create_concurrently(srv.url, [_replica(f"web-{i:02d}", "web", topologySpreadConstraints=spread)
                                                 for i in range(30)])
            await wait_for(lambda: bound_count(srv) == 30, timeout=30, what="30 replicas bound")
        per_zone = Counter(zone_of[p["spec"]["nodeName"]] for p in pods_of(srv).values())
        assert per_zone == {"zone-a": 10, "zone-b": 10, "zone-c": 10}


async def test_required_anti_affinity_never_puts_two_replicas_on_a_node() -> None:
    # 6 nodes, 8 replicas that refuse to share a hostname: 6 bound on 6 distinct nodes, 2 pending
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}}}]}}
    async with serve_apiserver(nodes=NodeShape(count=6, cpu="16", memory="32Gi"), kubelet_delay=0.0) as srv:
        async with running(srv):
            await _create_concurrently(srv.url, [_replica(f"db-{i}", "db", affinity=anti) for i in range(8)])
            await wait_for(lambda: bound_count(srv) == 6, timeout=30, what="six replicas bound")
            pending = [n for n, p in pods_of(srv).items() if not p["spec"].get("nodeName")]
            assert len(pending) == 2
            await wait_for(lambda: all(events_for(srv, n, reason="FailedScheduling") for n in pending),
                           what="FailedScheduling for the two left over")
            message = events_for(srv, pending[0], reason="FailedScheduling")[0]["message"]
            # Anti-affinity is resolvable by preemption, but every replica has the same
            # priority (0), so no node has a victim of lower priority.
            assert message == ("0/6 nodes are available: 6 node(s) didn't match pod anti-affinity rules. "
                               "preemption: 0/6 nodes are available: 6 No preemption victims found for incoming pod.")
        nodes = [p["spec"]["nodeName"] for p in pods_of(srv).values() if p["spec"].get("nodeName")]
        assert len(nodes) == len(set(nodes)) == 6
