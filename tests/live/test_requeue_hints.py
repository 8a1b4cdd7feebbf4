"""Precise requeueing against the embedded API server: a parked pod moves only on a cluster
event that one of the plugins that rejected it says may help (queueing hints), seen through
``queue.where`` and ``scheduler_queue_incoming_pods_total``. The cluster is the fixture's
4 nodes of 4 CPU / 8Gi (110 pods each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.runtime import Scheduler
from tests.live.support import pod, pods_of, running, wait_for

NS = "default"


def _incoming(s: Scheduler, event: str) -> float:
    """Pods the queue moved on ``event`` (to activeQ or backoffQ)."""
    r = s.metrics.registry
    return sum(r.get_sample_value("scheduler_queue_incoming_pods_total", {"queue": q, "event": event}) or 0.0
               for q in ("active", "backoff"))


def _node_writes(s: Scheduler) -> float:
    return s.metrics.registry.get_sample_value("vecsched_informer_events_total",
                                               {"resource": "nodes", "type": "MODIFIED"}) or 0.0


def _update_node(srv: ApiServer, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    def apply(node: dict[str, Any]) -> dict[str, Any]:
        change(node)
        return node
    srv.store.update(srv.resource("nodes"), "", name, apply)


def _heartbeat(node: dict[str, Any]) -> None:
    """What a kubelet's status report changes: every condition's lastHeartbeatTime."""
    for c in node["status"].get("conditions") or []:
        c["lastHeartbeatTime"] = "2030-01-01T00:00:00Z"


def _label(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(node: dict[str, Any]) -> None:
        node["metadata"].setdefault("labels", {})[key] = value
    return change


def _cpu(amount: str) -> Callable[[dict[str, Any]], None]:
    def change(node: dict[str, Any]) -> None:
        node["status"]["allocatable"]["cpu"] = node["status"]["capacity"]["cpu"] = amount
    return change


def _taints(*taints: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def change(node: dict[str, Any]) -> None:
        node.setdefault("spec", {})["taints"] = list(taints)
    return change


async def _parked(s: Scheduler, key: str, plugins: set[str]) -> None:
    await wait_for(lambda: s.queue.where(key) == "unschedulable", what=f"{key} parked")
    assert {p for qp in s.queue.unschedulable_pods() if qp.key == key for p in qp.unschedulable_plugins} == plugins


async def _seen(s: Scheduler, srv: ApiServer, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Write a node and wait until the scheduler has handled the write."""
    before = _node_writes(s)
    _update_node(srv, name, change)
    await wait_for(lambda: _node_writes(s) > before, what=f"the scheduler to see the write of {name}")


def _node_of(srv: ApiServer, name: str) -> str:
    return str(pods_of(srv)[name]["spec"].get("nodeName") or "")


# A pod too big for every node (6 CPU > 4): node writes that do not help it, then the one that does.
UNHELPFUL: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("heartbeat", _heartbeat, ""),                              # nothing a plugin reads: no event at all
    ("label", _label("team", "a"), "NodeLabelChange"),          # NodeResourcesFit does not register labels
    ("taint", _taints({"key": "k", "value": "v", "effect": "PreferNoSchedule"}), "NodeTaintChange"),
    ("cpu-grows-short", _cpu("5"), "NodeAllocatableChange"),   # 5 < 6: the node still cannot take it
]


@pytest.mark.parametrize(("change", "event"), [c[1:] for c in UNHELPFUL], ids=[c[0] for c in UNHELPFUL])
async def test_too_big_pod_stays_parked_until_a_node_grows(apiserver: ApiServer,
                                                          change: Callable[[dict[str, Any]], None], event: str) -> None:
    srv = apiserver
    async with running(srv) as s:
        srv.create("pods", pod("big", cpu="6"))
        await _parked(s, f"{NS}/big", {"NodeResourcesFit"})
        await _seen(s, srv, "node-0001", change)
        assert s.queue.where(f"{NS}/big") == "unschedulable"
        if event:
            assert _incoming(s, event) == 0
        # 4 -> 8 CPU on node-0002: 6 <= 8, and cpu (which the pod requests) grew
        await _seen(s, srv, "node-0002", _cpu("8"))
        await wait_for(lambda: _node_of(srv, "big") != "", what="big bound")
        assert _node_of(srv, "big") == "node-0002"
        assert _incoming(s, "NodeAllocatableChange") == 1


async def test_tainted_pod_moves_when_the_taint_goes_not_on_a_label(apiserver: ApiServer) -> None:
    srv = apiserver
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    for n in ("node-0000", "node-0001", "node-0002", "node-0003"):
        _update_node(srv, n, _taints(taint))
    async with running(srv) as s:
        srv.create("pods", pod("web"))
        await _parked(s, f"{NS}/web", {"TaintToleration"})
        await _seen(s, srv, "node-0003", _label("team", "a"))
        assert s.queue.where(f"{NS}/web") == "unschedulable" and _incoming(s, "NodeLabelChange") == 0
        # a taint changed, but to another one the pod does not tolerate either
        await _seen(s, srv, "node-0002", _taints({**taint, "value": "tpu"}))
        assert s.queue.where(f"{NS}/web") == "unschedulable" and _incoming(s, "NodeTaintChange") == 0
        await _seen(s, srv, "node-0001", _taints())
        await wait_for(lambda: _node_of(srv, "web") != "", what="web bound")
        assert _node_of(srv, "web") == "node-0001"
        assert _incoming(s, "NodeTaintChange") == 1


async def test_a_deleted_pod_moves_the_pods_waiting_for_its_room(apiserver: ApiServer) -> None:
    srv = apiserver
    async with running(srv) as s:
        # 3 CPU on each node: 4 - 3 = 1 CPU left on every one
        for i in range(4):
            srv.create("pods", pod(f"fill-{i}", cpu="3"))
        await wait_for(lambda: sum(1 for i in range(4) if _node_of(srv, f"fill-{i}")) == 4, what="fillers bound")
        assert len({_node_of(srv, f"fill-{i}") for i in range(4)}) == 4
        srv.create("pods", pod("small", cpu="0", memory="64Mi"))
        await wait_for(lambda: _node_of(srv, "small") != "", what="small bound")
        srv.create("pods", pod("waiter", cpu="2", memory="0"))  # 2 > 1 left anywhere; no memory asked
        await _parked(s, f"{NS}/waiter", {"NodeResourcesFit"})
        # "small" held memory but no CPU, and its node holds 2 of 110 pods: its room cannot help
        srv.ops.delete(srv.resource("pods"), namespace=NS, name="small", grace=0)
        await wait_for(lambda: f"{NS}/small" not in s.cache.table.pods, what="small forgotten")
        assert s.queue.where(f"{NS}/waiter") == "unschedulable" and _incoming(s, "AssignedPodDelete") == 0
        freed = _node_of(srv, "fill-2")
        srv.ops.delete(srv.resource("pods"), namespace=NS, name="fill-2", grace=0)
        await wait_for(lambda: _node_of(srv, "waiter") != "", what="waiter bound")
        assert _node_of(srv, "waiter") == freed
        assert _incoming(s, "AssignedPodDelete") == 1
