"""The scheduler keeps going through a misbehaving API server, and never over-commits."""

from __future__ import annotations

import asyncio

from scheduler.apiserver import ApiServer
from tests.live.support import assert_no_overcommit, bound_count, pod, running, wait_for


async def test_watch_streams_closed_mid_stream(apiserver: ApiServer) -> None:
    apiserver.faults.watch_close_seconds = 0.15  # every watch ends after 150 ms
    async with running(apiserver) as s:
        for i in range(60):
            apiserver.create("pods", pod(f"p{i}"))
            if i % 10 == 0:
                await asyncio.sleep(0.1)
        await wait_for(lambda: bound_count(apiserver) == 60, what="all pods bound")
        await wait_for(lambda: s.cycle is not None and s.cycle.bound == 60, what="bindings counted")
        await wait_for(lambda: s.cache.sizes() == {"nodes": 4, "pods": 60, "assumed_pods": 0}, what="all confirmed")
    assert_no_overcommit(apiserver)


def expire_history(srv: ApiServer, n: int) -> None:
    """A write the watchers have not seen, then compaction, then every stream cut: each
    watch resumes from a resourceVersion older than the history and gets 410 Expired."""
    srv.create("configmaps", {"metadata": {"name": f"bump-{n}", "namespace": "default"}})
    srv.compact()
    srv.close_watches()


async def test_expired_resource_version_on_resume_relists(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        for i in range(40):
            apiserver.create("pods", pod(f"p{i}"))
            if i % 8 == 0:
                expire_history(apiserver, i)
                await asyncio.sleep(0.05)
        await wait_for(lambda: bound_count(apiserver) == 40, what="all pods bound")
        apiserver.delete_node("node-0003")
        expire_history(apiserver, 100)
        await wait_for(lambda: s.cache.sizes()["nodes"] == 3, what="deletion seen through a relist")
        relists = s.metrics.informer_events.labels("pods", "SYNCED")._value.get()
        assert relists > 1
        await wait_for(lambda: s.cycle is not None and s.cycle.bound == 40, what="bindings counted")
        on_live_nodes = sum(1 for p in apiserver.list("pods") if p["spec"]["nodeName"] != "node-0003")
        await wait_for(lambda: s.cache.sizes()["pods"] == on_live_nodes, what="cache matches the server")
    assert_no_overcommit(apiserver)


async def test_api_answering_500_and_429_for_a_while(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        apiserver.faults.error_rate = 0.3
        apiserver.faults.throttle_rate = 0.2
        apiserver.faults.retry_after_seconds = 0
        for i in range(40):
            apiserver.create("pods", pod(f"p{i}"))
        await asyncio.sleep(1.0)
        assert apiserver.faults.injected.get(500) and apiserver.faults.injected.get(429)
        apiserver.faults.reset()
        await wait_for(lambda: bound_count(apiserver) == 40, timeout=15, what="all pods bound after recovery")
        # Each success is one accepted binding, and the server refuses a second one: bound exactly once.
        await wait_for(lambda: s.cycle is not None and s.cycle.bound == 40, what="bindings counted")
        await wait_for(lambda: s.cache.sizes()["assumed_pods"] == 0, what="assumptions confirmed")
        assert s.metrics.binding_failures.labels("retry")._value.get() > 0
    assert_no_overcommit(apiserver)


async def test_slow_api_does_not_block_scheduling(apiserver: ApiServer) -> None:
    apiserver.faults.latency_seconds = 0.2  # every request takes 200 ms
    async with running(apiserver) as s:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(30):
            apiserver.create("pods", pod(f"p{i}"))
        await wait_for(lambda: bound_count(apiserver) == 30, what="all pods bound")
        # Bindings run concurrently: 30 sequential bindings would take >= 6 s.
        assert loop.time() - started < 3.0
        await wait_for(lambda: s.cycle is not None and s.cycle.bound == 30, what="bindings counted")
    assert_no_overcommit(apiserver)
