"""Stopping: no new pods are taken, bindings in flight finish, the lease is released."""

from __future__ import annotations

from scheduler.apiserver import ApiServer
from scheduler.leader import LeaseSettings
from tests.live.support import bound_count, pod, running, wait_for


async def test_stop_lets_bindings_in_flight_finish_then_releases_the_lease(apiserver: ApiServer) -> None:
    lease = LeaseSettings(namespace="kube-system", name="vecsched-stop", identity="only",
                          lease_duration=3.0, renew_deadline=2.0, retry_period=0.2)
    async with running(apiserver, leader_elect=True, lease=lease) as s:
        assert s.cycle is not None
        apiserver.faults.latency_seconds = 0.4  # every binding takes 400 ms to arrive
        for i in range(10):
            apiserver.create("pods", pod(f"p{i}"))
        await wait_for(lambda: s.cycle is not None and s.cycle.bindings_in_flight == 10, what="10 bindings in flight")
        await s.stop()
        assert s.cycle.bound == 10 and bound_count(apiserver) == 10
        apiserver.faults.reset()
        spec = apiserver.get("leases", "vecsched-stop", namespace="kube-system")["spec"]
        assert spec["holderIdentity"] == ""  # released only after the bindings finished
        apiserver.create("pods", pod("after-stop"))
        assert bound_count(apiserver) == 10  # a stopped scheduler takes nothing new
