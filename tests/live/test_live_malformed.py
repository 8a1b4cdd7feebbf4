"""Malformed pods are reported, naming the field, while everything else keeps flowing."""

from __future__ import annotations

from typing import Any

from scheduler.apiserver import ApiServer
from scheduler.apiserver.objects import prepare_create
from tests.live.support import bound_count, condition, events_for, pod, pods_of, running, wait_for


def _past_admission(srv: ApiServer, obj: dict[str, Any]) -> None:
    """Store a pod that the API's validation would refuse (as kube-apiserver's does), to prove the
    scheduler survives one anyway -- a server that validates less, or an older object."""
    rt = srv.resource("pods")
    srv.store.create(rt, prepare_create(rt, obj, namespace="default"))


async def test_malformed_pods_get_failed_scheduling_naming_the_field(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        _past_admission(apiserver, pod("lots", cpu="lots"))
        bad_affinity = pod("bad-affinity", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["a"]}]}]}}})
        apiserver.create("pods", bad_affinity)
        for i in range(20):
            apiserver.create("pods", pod(f"ok{i}"))
        await wait_for(lambda: bound_count(apiserver) == 20, what="the good pods bound")
        await wait_for(lambda: bool(events_for(apiserver, "lots", reason="FailedScheduling")), what="lots reported")
        await wait_for(lambda: bool(events_for(apiserver, "bad-affinity", reason="FailedScheduling")),
                       what="bad-affinity reported")
        [lots] = events_for(apiserver, "lots", reason="FailedScheduling")
        assert "spec.containers[0].resources.requests.cpu" in lots["message"] and lots["type"] == "Warning"
        [aff] = events_for(apiserver, "bad-affinity", reason="FailedScheduling")
        assert "matchExpressions[0].operator" in aff["message"] and "Near" in aff["message"]
        await wait_for(lambda: condition(pods_of(apiserver)["lots"]) is not None, what="condition on lots")
        cond = condition(pods_of(apiserver)["lots"])
        assert cond is not None and cond["status"] == "False" and cond["message"] == lots["message"]
        pods = pods_of(apiserver)
        assert not pods["lots"]["spec"].get("nodeName") and not pods["bad-affinity"]["spec"].get("nodeName")
        assert s.metrics.malformed_objects.labels("pod")._value.get() >= 1
        # Fixing the pod lets it through (a pod's requests are immutable through the API; the edit
        # in the store stands in for delete-and-recreate).
        apiserver.store.update(apiserver.resource("pods"), "default", "lots", lambda p: {
            **p, "spec": {**p["spec"], "containers": [{"name": "c", "image": "busybox:1.36",
                                                        "resources": {"requests": {"cpu": "100m"}}}]}})
        await wait_for(lambda: bound_count(apiserver) == 21, what="fixed pod bound")


async def test_malformed_node_is_skipped(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        apiserver.store.create(apiserver.resource("nodes"), {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "broken"},
            "status": {"allocatable": {"cpu": "many", "memory": "1Gi", "pods": "10"}}})
        await wait_for(lambda: "broken" in s.cache.skipped_nodes, what="node skipped")
        for i in range(8):
            apiserver.create("pods", pod(f"p{i}"))
        await wait_for(lambda: bound_count(apiserver) == 8, what="pods bound")
        assert all(p["spec"]["nodeName"] != "broken" for p in pods_of(apiserver).values())
