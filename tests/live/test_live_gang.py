"""Gang scheduling live: PodGroups are placed all together or not at all, over real HTTP.

The PodGroup CRD is applied with kubectl, as a user installs it; the members are plain
Pods labelled ``scheduling.x-k8s.io/pod-group``. What must hold: no member is bound (or
even assumed) while the group cannot fit, plain pods are not blocked meanwhile, the group
is bound in one scheduling cycle once capacity appears, a missing PodGroup or quorum is
reported with Coscheduling's messages, and a stop while members wait at Permit binds none
of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.apiserver.controllers.job import JobController
from scheduler.config import default_config
from scheduler.runtime import Scheduler
from scoring.framework import PERMIT_REJECT, PERMIT_SUCCESS, PERMIT_WAIT, CycleState, PermitResult, WaitingPods
from scoring.objects import PodInfo
from scoring.table import NodeTable
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane
from tests.live.support import (bound_count, condition, events_for, fast_config, pod, pods_of, running, settings_for,
                                wait_for)

CRD: Final = "deploy/crds/scheduling.x-k8s.io_podgroups.yaml"
LABEL: Final = "scheduling.x-k8s.io/pod-group"


def member(name: str, group: str, *, cpu: str, **labels: str) -> dict[str, Any]:
    p = pod(name, cpu=cpu)
    p["metadata"]["labels"] = {LABEL: group, **labels}
    return p


def held(name: str, *, cpu: str) -> dict[str, Any]:
    """A pod of no group that the test's Barrier holds at Permit."""
    p = pod(name, cpu=cpu)
    p["metadata"]["labels"] = {"hold": "true"}
    return p


def podgroup(name: str, min_member: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"minMember": min_member, **spec}}


@asynccontextmanager
async def cluster(nodes: int, cpu: str = "4") -> AsyncIterator[ApiServer]:
    """``nodes`` nodes of ``cpu`` CPU / 8Gi, with the PodGroup CRD applied by kubectl."""
    async with serve_apiserver(nodes=[NodeShape(count=nodes, cpu=cpu, memory="8Gi")], kubelet_delay=0.05,
                               bookmark_interval=0.5) as srv:
        rc, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", CRD)
        assert rc == 0, err
        yield srv


def bound(srv: ApiServer, *names: str) -> dict[str, str]:
    pods = pods_of(srv)
    return {n: pods[n]["spec"].get("nodeName") or "" for n in names}


async def test_a_group_that_cannot_fit_holds_nothing_and_is_bound_at_once_when_room_appears() -> None:
    async with cluster(2) as srv:
        writes: list[tuple[str, bool]] = []  # (pod, bound) for every stored write of a pod

        def watch(_key: str, _old: Any, new: Any) -> None:
            if new is not None:
                obj = new.obj()
                writes.append((obj["metadata"]["name"], bool(obj["spec"].get("nodeName"))))

        srv.store.add_listener(srv.resource("pods").key, watch)
        srv.create("podgroups", podgroup("train", 4))
        async with running(srv) as s:
            # 4 members of 3 CPU on 2 nodes of 4 CPU: each node holds one, so 2 of the 4 fit at once.
            for i in range(4):
                srv.create("pods", member(f"w{i}", "train", cpu="3"))
            await wait_for(lambda: all(events_for(srv, f"w{i}", reason="FailedScheduling") for i in range(4)),
                           what="every member reported")
            message = events_for(srv, "w0", reason="FailedScheduling")[-1]["message"]
            assert message.startswith("pod group default/train: 2 of the 4 members it needs fit at once "
                                      "(minMember 4, 0 already placed);"), message
            assert "Insufficient cpu" in message
            assert "PodGroup default/train gets rejected due to Pod" in message
            assert condition(pods_of(srv)["w3"]) is not None
            # Nothing of the group is held: no member assumed, the nodes' room is free ...
            assert s.cache.sizes()["assumed_pods"] == 0 and bound_count(srv) == 0
            # ... so a plain pod that needs 3 CPU is bound meanwhile, not blocked behind the group.
            srv.create("pods", pod("plain", cpu="3"))
            await wait_for(lambda: bool(bound(srv, "plain")["plain"]), what="plain pod bound")
            assert not any(b for name, b in writes if name.startswith("w"))
            # Room for all four appears (two more nodes; the plain pod holds 3 of one old node's 4 CPU).
            before = s.queue.scheduling_cycle
            srv.add_node(name="big-1", shape=NodeShape(count=1, cpu="8", memory="8Gi"))
            srv.add_node(name="big-2", shape=NodeShape(count=1, cpu="8", memory="8Gi"))
            await wait_for(lambda: bound_count(srv) == 5, timeout=15, what="the whole group bound")
            # One cycle placed all four: the first member popped takes its siblings along.
            group_cycles = s.queue.scheduling_cycle - before
            assert group_cycles == 1, group_cycles
            nodes = bound(srv, "w0", "w1", "w2", "w3")
            # 3 CPU each: big-1 and big-2 hold two each (6 of 8), the free old node one -- and the
            # old node where "plain" runs none; 4 members on at most 3 nodes.
            assert sorted(nodes.values()).count(bound(srv, "plain")["plain"]) == 0
            assert len(set(nodes.values())) >= 2


async def test_members_wait_for_their_quorum_then_go_together() -> None:
    async with cluster(4) as srv:
        srv.create("podgroups", podgroup("job", 3))
        async with running(srv):
            srv.create("pods", member("a", "job", cpu="1"))
            srv.create("pods", member("b", "job", cpu="1"))
            # Coscheduling's PreFilter: 2 pods carry the label, minMember is 3.
            await wait_for(lambda: bool(events_for(srv, "a", reason="FailedScheduling")), what="a reported")
            msg = events_for(srv, "a", reason="FailedScheduling")[-1]["message"]
            assert ("pre-filter pod a cannot find enough sibling pods, current pods number: 2, minMember of group: 3"
                    in msg), msg
            assert bound_count(srv) == 0
            # The third member's arrival (Pod Add) moves the parked ones; all three are bound.
            srv.create("pods", member("c", "job", cpu="1"))
            await wait_for(lambda: bound_count(srv) == 3, what="quorum bound")


async def test_a_member_whose_podgroup_does_not_exist_is_rejected_at_permit() -> None:
    async with cluster(2) as srv:
        async with running(srv) as s:
            srv.create("pods", member("lost", "nowhere", cpu="1"))
            await wait_for(lambda: bool(events_for(srv, "lost", reason="FailedScheduling")), what="reported")
            assert events_for(srv, "lost", reason="FailedScheduling")[-1]["message"] == "0/1 nodes are available: 1 PodGroup not found."
            # Unreserved: the capacity it was assumed on is given back.
            assert bound(srv, "lost")["lost"] == "" and s.cache.sizes()["assumed_pods"] == 0
            assert s.cache.table.pods.get("default/lost") is None


# ---- Permit's waiting pods, with a Permit plugin of the test's own ------------------------------------------


class Barrier:
    """Holds pods labelled ``hold: "true"`` at Permit (for ``timeout`` seconds) until the test allows them;
    rejects pods labelled ``deny: "true"``."""

    name = "Barrier"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def permit(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState,
               waiting: WaitingPods) -> PermitResult:
        if pod.labels.get("hold") == "true":
            return PermitResult(PERMIT_WAIT, timeout=self.timeout)
        if pod.labels.get("deny") == "true":
            return PermitResult(PERMIT_REJECT, "denied by the test's Barrier")
        return PermitResult(PERMIT_SUCCESS)


@asynccontextmanager
async def with_barrier(srv: ApiServer, timeout: float) -> AsyncIterator[Scheduler]:
    profile = default_config().build()["vecsched"]
    profile.permits.insert(0, Barrier(timeout))
    s = Scheduler(config=fast_config(), settings=settings_for(srv), profiles={"vecsched": profile})
    await s.start()
    try:
        await s.wait_ready()
        yield s
    finally:
        await s.stop()


async def test_a_waiting_pod_holds_its_node_until_allowed() -> None:
    async with cluster(1) as srv:
        async with with_barrier(srv, timeout=30.0) as s:
            srv.create("pods", held("held", cpu="3"))
            assert s.cycle is not None
            await wait_for(lambda: s.cycle is not None and s.cycle.waiting.get("default/held") is not None,
                           what="held at Permit")
            # Assumed, not bound: its 3 CPU are taken, so a 2-CPU pod does not fit on the 4-CPU node.
            srv.create("pods", pod("other", cpu="2"))
            await wait_for(lambda: bool(events_for(srv, "other", reason="FailedScheduling")), what="other refused")
            assert bound(srv, "held", "other") == {"held": "", "other": ""}
            waiting = s.cycle.waiting.get("default/held")
            assert waiting is not None
            waiting.allow("Barrier")
            await wait_for(lambda: bool(bound(srv, "held")["held"]), what="held bound once allowed")
            wait = s.metrics.exposition().decode()
            assert 'scheduler_permit_wait_duration_seconds_count{result="success"} 1.0' in wait


async def test_a_pod_that_times_out_at_permit_is_unreserved_and_tried_again() -> None:
    async with cluster(1) as srv:
        async with with_barrier(srv, timeout=0.3) as s:
            srv.create("pods", held("slow", cpu="3"))
            await wait_for(lambda: bool(events_for(srv, "slow", reason="FailedScheduling")), what="timed out")
            # Upstream's text for a plugin's timer (Go's duration: 300ms), as a FitError over the one node.
            assert (events_for(srv, "slow", reason="FailedScheduling")[0]["message"]
                    == "0/1 nodes are available: 1 rejected due to timeout after waiting 300ms at plugin Barrier.")
            assert bound(srv, "slow")["slow"] == ""
            # Its capacity came back: a pod that needs it is bound.
            srv.create("pods", pod("next", cpu="3"))
            await wait_for(lambda: bool(bound(srv, "next")["next"]) or bool(bound(srv, "slow")["slow"]),
                           what="the room reused")
            assert s.metrics.exposition().decode().count('scheduler_permit_wait_duration_seconds_count{result="unschedulable"}') == 1


async def test_a_stop_while_group_members_wait_binds_none_and_a_restart_binds_all() -> None:
    async with cluster(3) as srv:
        srv.create("podgroups", podgroup("g", 3))
        async with with_barrier(srv, timeout=60.0) as s:
            for name in ("m0", "m1", "m2"):
                srv.create("pods", member(name, "g", cpu="2", hold="true"))
            # The group fits; Coscheduling allows its members (the third completes the quorum), the Barrier holds them.
            await wait_for(lambda: s.cycle is not None and len(s.cycle.waiting) == 3, what="all three waiting")
        # The stop rejected them: nothing of the group was bound.
        assert bound(srv, "m0", "m1", "m2") == {"m0": "", "m1": "", "m2": ""}
        async with running(srv):
            await wait_for(lambda: bound_count(srv) == 3, what="bound after the restart")


async def test_a_member_rejected_at_permit_releases_its_waiting_siblings() -> None:
    async with cluster(3) as srv:
        srv.create("podgroups", podgroup("g", 3))
        async with with_barrier(srv, timeout=60.0) as s:
            # The plan fits; m0 and m1 wait at Coscheduling's Permit for the quorum, then m2 -- the
            # one that would complete it -- is rejected by the Barrier. Its Unreserve (Coscheduling's)
            # rejects m0 and m1, which give their nodes back.
            srv.create("pods", member("m0", "g", cpu="2"))
            srv.create("pods", member("m1", "g", cpu="2"))
            srv.create("pods", member("m2", "g", cpu="2", deny="true"))
            await wait_for(lambda: all(events_for(srv, n, reason="FailedScheduling") for n in ("m0", "m1", "m2")),
                           what="all three reported")
            assert events_for(srv, "m2", reason="FailedScheduling")[0]["message"] == "0/1 nodes are available: 1 denied by the test's Barrier."
            for n in ("m0", "m1"):
                assert events_for(srv, n, reason="FailedScheduling")[0]["message"] == "0/1 nodes are available: 1 rejection in Unreserve."
            assert bound_count(srv) == 0
            assert s.cache.sizes()["assumed_pods"] == 0 and s.cycle is not None and len(s.cycle.waiting) == 0


async def test_a_job_gang_applied_with_kubectl_waits_whole_then_runs_whole() -> None:
    # deploy/examples/training-job.yaml: a Job of 4 workers asking 1 CPU each, and its PodGroup (minMember 4).
    # Three nodes of 1 CPU hold 3 of them: the gang holds nothing until a fourth node comes.
    async with control_plane(JobController, nodes=[NodeShape(count=3, cpu="1", memory="8Gi")],
                             controller_settings={"job.sync_batch_seconds": 0.05}) as srv:
        rc, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", CRD)
        assert rc == 0, err
        async with running(srv):
            rc, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "deploy/examples/training-job.yaml")
            assert rc == 0, err
            await wait_for(lambda: any(e["involvedObject"]["kind"] == "PodGroup"
                                       for e in events_for(srv, "training", reason="FailedScheduling")),
                           what="FailedScheduling on the PodGroup")
            [event] = [e for e in events_for(srv, "training", reason="FailedScheduling")
                       if e["involvedObject"]["kind"] == "PodGroup"]
            assert event["message"].startswith("pod group default/training: 3 of the 4 members it needs fit at once")
            # The operator saw 4 pods (minMember): Scheduling, started; none bound.
            status = srv.get("podgroups", "training", namespace="default")["status"]
            assert status["phase"] == "Scheduling" and status["occupiedBy"] == "default/training"
            assert bound_count(srv) == 0
            srv.add_node(name="late", shape=NodeShape(count=1, cpu="1", memory="8Gi"))
            await wait_for(lambda: bound_count(srv) == 4, timeout=15, what="the whole Job bound")
            await wait_for(lambda: srv.get("podgroups", "training", namespace="default")["status"].get("phase")
                           == "Running", what="Running")
            [scheduled] = [e for e in events_for(srv, "training", reason="Scheduled")
                           if e["involvedObject"]["kind"] == "PodGroup"]
            assert scheduled["message"] == "Scheduled 4 of 4 members (minMember 4)"
