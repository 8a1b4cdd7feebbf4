"""Node heartbeats: a Lease per node renewed on a shared, spread timer, and the Ready condition's heartbeat.

Leases are read through kubectl and the server's in-process API; periods
are shortened to fractions of a second (upstream: 10 s and 5 minutes).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import time

from scheduler.apiserver import ApiServer
from tests.apiserver.kube import kubectl
from tests.live.support import FakeClock

from .support import control_plane, wait_for

NS = "kube-node-lease"


def _renewed(srv: ApiServer) -> dict[str, float]:
    """Each lease's renewTime, as epoch seconds (MicroTime keeps the microseconds)."""
    out = {}
    for lease in srv.list("leases", namespace=NS):
        text = lease["spec"]["renewTime"]
        whole = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
        out[lease["metadata"]["name"]] = whole + float("0" + text[19:-1])
    return out


async def test_every_node_registers_its_lease() -> None:
    async with control_plane(nodes=3) as srv:
        code, out, err = await kubectl(srv.kubeconfig_path, "get", "leases", "-n", NS, "-o", "json")  # type: ignore[arg-type]
        assert code == 0, err
        leases = {item["metadata"]["name"]: item for item in json.loads(out)["items"]}
        nodes = {n["metadata"]["name"]: n["metadata"]["uid"] for n in srv.list("nodes")}
        assert sorted(leases) == sorted(nodes) == ["node-0000", "node-0001", "node-0002"]
        for name, lease in leases.items():
            # as pkg/kubelet/nodelease creates it: held by the node for 40 s, owned by the Node
            assert lease["spec"]["holderIdentity"] == name and lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["spec"]["renewTime"].endswith("Z") and len(lease["spec"]["renewTime"]) == 27  # microseconds
            assert lease["metadata"]["ownerReferences"] == [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": nodes[name]}]
        srv.add_node(name="late")  # a node registering later gets one from the shared timer
        await wait_for(lambda: "late" in _renewed(srv), what="late node's lease")


async def test_renewals_stop_while_not_ready_and_resume_at_once() -> None:
    async with control_plane(nodes=2, node_lease_seconds=0.2) as srv:
        first = _renewed(srv)
        await wait_for(lambda: all(t > first[n] for n, t in _renewed(srv).items()), what="both renewed")
        srv.set_node_ready("node-0001", False)
        stopped = _renewed(srv)["node-0001"]
        await asyncio.sleep(0.6)  # three renewal periods
        now = _renewed(srv)
        assert now["node-0001"] == stopped and now["node-0000"] > first["node-0000"]
        srv.set_node_ready("node-0001", True)
        await wait_for(lambda: _renewed(srv)["node-0001"] > stopped, what="renewed once Ready again")


async def test_renewals_are_spread_over_the_period() -> None:
    # 50 leases renewed every 0.5 s, each at its own phase: at any instant their ages cover most of the
    # period (evenly spread phases differ by up to 49/50 of it), instead of all being renewed together.
    async with control_plane(nodes=50, node_lease_seconds=0.5) as srv:
        start = _renewed(srv)
        assert max(start.values()) - min(start.values()) < 0.5  # all created together at registration
        await wait_for(lambda: all(t > start[n] for n, t in _renewed(srv).items()), what="every lease renewed")
        ages = _renewed(srv).values()
        assert max(ages) - min(ages) > 0.25
        renewals = srv.kubelet.heartbeats.renewals
        await asyncio.sleep(0.5)
        assert srv.kubelet.heartbeats.renewals - renewals <= 2 * 50  # about one each per period, not a storm


async def test_deleted_lease_is_recreated() -> None:
    async with control_plane(nodes=1, node_lease_seconds=0.2) as srv:
        code, _, err = await kubectl(srv.kubeconfig_path, "delete", "lease", "node-0000", "-n", NS)  # type: ignore[arg-type]
        assert code == 0, err
        await wait_for(lambda: "node-0000" in _renewed(srv), what="lease recreated")


async def test_leases_can_be_switched_off() -> None:
    async with control_plane(nodes=2, node_lease_seconds=None) as srv:
        await asyncio.sleep(0.1)
        assert srv.list("leases", namespace=NS) == []


def _heartbeats(srv: ApiServer, node: str) -> set[str]:
    return {c["lastHeartbeatTime"] for c in srv.get("nodes", node)["status"]["conditions"]}


async def test_node_status_heartbeat() -> None:
    clock = FakeClock(start=1_900_000_000.0)  # 2030-03-17T17:46:40Z
    async with control_plane(nodes=2, node_status_seconds=0.2, kubelet_clock=clock) as srv:
        srv.set_node_ready("node-0001", False)
        before = _heartbeats(srv, "node-0001")
        # every condition of the Ready node carries the kubelet's time; the NotReady one is silent
        await wait_for(lambda: _heartbeats(srv, "node-0000") == {"2030-03-17T17:46:40Z"}, what="heartbeat")
        clock.advance(60)
        await wait_for(lambda: _heartbeats(srv, "node-0000") == {"2030-03-17T17:47:40Z"}, what="next heartbeat")
        assert _heartbeats(srv, "node-0001") == before


async def test_default_status_period_leaves_nodes_alone() -> None:
    # Every Node write wakes the scheduler: by default (5 minutes) a second passes without one.
    async with control_plane(nodes=3) as srv:
        versions = {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in srv.list("nodes")}
        await asyncio.sleep(1.0)
        assert {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in srv.list("nodes")} == versions
