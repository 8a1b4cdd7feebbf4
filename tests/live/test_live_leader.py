"""Two replicas with leader election: one schedules; when it stops, the other takes over."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

from scheduler.apiserver import ApiServer
from scheduler.kube.client import ClientSettings, connect
from scheduler.leader import LeaderElector, LeaseSettings
from tests.live.support import assert_no_overcommit, bound_count, pod, running, wait_for

LEASE = dict(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)


def lease(identity: str) -> LeaseSettings:
    return LeaseSettings(namespace="kube-system", name="vecsched-test", identity=identity, **LEASE)  # type: ignore[arg-type]


async def test_standby_takes_over_within_the_lease_duration(apiserver: ApiServer) -> None:
    async with running(apiserver, leader_elect=True, lease=lease("a")) as a:
        async with running(apiserver, leader_elect=True, lease=lease("b"), ready=False) as b:
            await asyncio.sleep(0.5)
            assert a.ready() and not b.ready() and b.synced  # b has caches, but does not lead
            # Both answer /readyz, as kube-scheduler's replicas do: a Deployment of two can roll.
            async with aiohttp.ClientSession() as http:
                for s in (a, b):
                    async with http.get(f"{s.metrics_url}/readyz") as r:
                        assert (r.status, await r.text()) == (200, "ok")
            for i in range(20):
                apiserver.create("pods", pod(f"p{i}"))
            await wait_for(lambda: bound_count(apiserver) == 20, what="a binds")
            assert a.cycle is not None and b.cycle is not None and b.cycle.bound == 0
            held = apiserver.get("leases", "vecsched-test", namespace="kube-system")["spec"]
            assert held["holderIdentity"] == "a" and held["leaseDurationSeconds"] == 2
            loop = asyncio.get_running_loop()
            stopped = loop.time()
            await a.stop()  # graceful: releases the lease
            await wait_for(lambda: b.ready(), timeout=LEASE["lease_duration"], what="b leads")
            assert loop.time() - stopped < LEASE["lease_duration"]
            for i in range(20, 40):
                apiserver.create("pods", pod(f"p{i}"))
            await wait_for(lambda: bound_count(apiserver) == 40, what="b binds")
            await wait_for(lambda: b.cycle is not None and b.cycle.bound == 20, what="b counted its bindings")
            assert a.cycle.bound == 20
    # Every pod was bound exactly once: one Scheduled event each, from one replica or the other.
    scheduled = Counter(e["involvedObject"]["name"] for e in apiserver.list("events", namespace="default")
                        if e["reason"] == "Scheduled")
    assert len(scheduled) == 40 and set(scheduled.values()) == {1}
    assert_no_overcommit(apiserver)


async def test_a_leader_that_stops_renewing_is_replaced_after_its_lease_expires(apiserver: ApiServer) -> None:
    client = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
    try:
        a = LeaderElector(client=client, settings=lease("a"))
        assert await a.try_acquire_or_renew()  # a takes the lease, then hangs (never renews)
        a.leading.set()
        async with running(apiserver, leader_elect=True, lease=lease("b"), ready=False) as b:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await wait_for(lambda: b.ready(), timeout=5, what="b leads after expiry")
            # b waits until the lease expired as b observed it: leaseDurationSeconds (2 s, rounded up).
            assert 1.5 < loop.time() - started < 3.5
            # a, had it kept running, would have stopped leading at its renew deadline.
            assert not a.is_leader()
            apiserver.create("pods", pod("after"))
            await wait_for(lambda: bound_count(apiserver) == 1, what="b binds")
            spec = apiserver.get("leases", "vecsched-test", namespace="kube-system")["spec"]
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    finally:
        await client.close()
