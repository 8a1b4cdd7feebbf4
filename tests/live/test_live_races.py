"""Races between a decision and the world: deleted pods, other schedulers, vanishing nodes."""

from __future__ import annotations


from scheduler.apiserver import ApiServer
from tests.live.support import assert_no_overcommit, bound_count, events_for, pod, pods_of, running, wait_for

PODS = "pods"


async def test_pod_deleted_between_selection_and_binding(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        apiserver.faults.latency_seconds = 0.3  # the binding call is slow to arrive
        apiserver.create(PODS, pod("doomed"))
        await wait_for(lambda: s.cache.is_assumed("default/doomed"), what="assumed")
        apiserver.ops.delete(apiserver.resource(PODS), namespace="default", name="doomed")
        await wait_for(lambda: s.metrics.binding_failures.labels("gone")._value.get() == 1, what="binding found pod gone")
        apiserver.faults.reset()
        await wait_for(lambda: s.cache.sizes()["pods"] == 0 and "default/doomed" not in s.queue, what="forgotten")
        assert not events_for(apiserver, "doomed", reason="Scheduled")
        # Everything else keeps flowing.
        apiserver.create(PODS, pod("next"))
        await wait_for(lambda: bound_count(apiserver) == 1, what="next bound")


async def test_pod_bound_by_another_scheduler_meanwhile(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        apiserver.faults.latency_seconds = 0.3
        created = apiserver.create(PODS, pod("contested"))
        await wait_for(lambda: s.cache.is_assumed("default/contested"), what="assumed")
        ours = s.cache.node_of("default/contested")
        other = next(n for n in ("node-0000", "node-0001") if n != ours)
        apiserver.ops.bind({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "contested", "uid": created["metadata"]["uid"]},
                            "target": {"kind": "Node", "name": other}}, namespace="default", name="contested")
        await wait_for(lambda: s.metrics.binding_failures.labels("gone")._value.get() == 1, what="409 seen")
        apiserver.faults.reset()
        # The cache follows the other scheduler's binding; nothing is charged twice.
        await wait_for(lambda: s.cache.node_of("default/contested") == other and not s.cache.is_assumed("default/contested"),
                       what="cache follows the real binding")
        assert s.cache.sizes()["pods"] == 1
        assert pods_of(apiserver)["contested"]["spec"]["nodeName"] == other
        assert not events_for(apiserver, "contested", reason="Scheduled")


async def test_node_deleted_while_pods_are_queued(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        for i in range(12):
            apiserver.create(PODS, pod(f"g{i}", schedulingGates=[{"name": "hold"}]))
        await wait_for(lambda: s.queue.counts()["gated"] == 12, what="queued")
        apiserver.delete_node("node-0000")
        await wait_for(lambda: s.cache.sizes()["nodes"] == 3, what="node gone")
        for i in range(12):
            apiserver.store.update(apiserver.resource(PODS), "default", f"g{i}",
                                   lambda p: {**p, "spec": {k: v for k, v in p["spec"].items() if k != "schedulingGates"}})
        await wait_for(lambda: bound_count(apiserver) == 12, what="all bound")
        assert all(p["spec"]["nodeName"] != "node-0000" for p in pods_of(apiserver).values())


async def test_node_deleted_during_a_burst(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        assert s.cycle is not None
        for i in range(20):
            apiserver.create(PODS, pod(f"p{i}"))
        apiserver.delete_node("node-0001")
        await wait_for(lambda: s.cache.sizes()["nodes"] == 3, what="deletion seen")
        await wait_for(lambda: s.cycle is not None and s.cycle.bindings_in_flight == 0, what="bindings settled")
        before = {n for n, p in pods_of(apiserver).items() if p["spec"].get("nodeName") == "node-0001"}
        for i in range(20, 40):
            apiserver.create(PODS, pod(f"p{i}"))
        await wait_for(lambda: bound_count(apiserver) == 40, what="all bound")
        after = {n for n, p in pods_of(apiserver).items() if p["spec"].get("nodeName") == "node-0001"}
        assert after == before  # nothing is bound to a node the scheduler knows is gone
    assert_no_overcommit(apiserver)
