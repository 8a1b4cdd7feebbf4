"""Preemption, live: `vecsched run` acts on DefaultPreemption's plan against the API server.

A pod of higher priority that fits nowhere is nominated to the node whose eviction
costs least (``status.nominatedNodeName``); its victims get the DisruptionTarget
condition, are deleted gracefully and get a ``Preempted`` Event; the pod is bound
there once they are gone. A ``preemptionPolicy: Never`` pod waits instead, and a
second preemptor counts the first one's nomination as taken room.

Every cluster here is built from pods created already bound (``spec.nodeName``,
started by the simulated kubelets), so that which pod sits where is fixed; victims
terminate within their 1-second grace period. Nodes are 4 CPU / 8Gi.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from scheduler.apiserver import ApiServer
from scheduler.runtime import Scheduler
from tests.controlplane.support import control_plane
from tests.live.support import assert_no_overcommit, condition, events_for, pod, pods_of, running, wait_for

NS = "default"


# ---- building clusters -------------------------------------------------------------------------


def priority_class(srv: ApiServer, name: str, value: int, *, policy: str | None = None) -> None:
    pc: dict[str, Any] = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                          "value": value}
    if policy is not None:
        pc["preemptionPolicy"] = policy
    srv.create("priorityclasses", pc)


def place(srv: ApiServer, name: str, node: str, *, cpu: str, priority: str | None = None,
          labels: dict[str, str] | None = None, grace: int = 1) -> None:
    """A pod created bound to ``node`` (its kubelet starts it), of PriorityClass ``priority`` (none: 0)."""
    p = pod(name, cpu=cpu, nodeName=node, terminationGracePeriodSeconds=grace)
    if priority is not None:
        p["spec"]["priorityClassName"] = priority
    if labels:
        p["metadata"]["labels"] = labels
    srv.create("pods", p)


def pending(srv: ApiServer, name: str, *, cpu: str, priority: str) -> None:
    """A pod for vecsched to place, of PriorityClass ``priority``."""
    srv.create("pods", pod(name, cpu=cpu, priorityClassName=priority))


async def all_running(srv: ApiServer) -> None:
    await wait_for(lambda: all((p.get("status") or {}).get("phase") == "Running" for p in pods_of(srv).values()),
                   what="every placed pod running")


def node_of(srv: ApiServer, name: str) -> str | None:
    got = pods_of(srv).get(name)
    return got["spec"].get("nodeName") if got else None


def nominated(srv: ApiServer, name: str) -> str | None:
    got = pods_of(srv).get(name)
    return (got.get("status") or {}).get("nominatedNodeName") if got else None


def terminating(srv: ApiServer) -> set[str]:
    return {n for n, p in pods_of(srv).items() if p["metadata"].get("deletionTimestamp")}


async def scrape(s: Scheduler) -> dict[str, float]:
    """The scheduler's /metrics over HTTP: ``name{label="v",...}`` (labels sorted) -> value."""
    async with aiohttp.ClientSession() as http, http.get(s.metrics_url + "/metrics") as r:
        text = await r.text()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


# ---- the tests -------------------------------------------------------------------------------


async def test_the_fewest_victims_on_one_node_make_room_and_the_pod_is_bound_there() -> None:
    async with control_plane(nodes=4) as srv:
        priority_class(srv, "mid", 100)
        priority_class(srv, "urgent", 1000)
        # A full cluster (16 CPU of 16):
        #   node-0000, node-0001, node-0003: 4 pods of 1 CPU, priority 0
        #   node-0002: "low" 2 CPU priority 0 + "mid" 2 CPU priority 100
        for n in ("node-0000", "node-0001", "node-0003"):
            for i in range(4):
                place(srv, f"{n[-1]}-{i}", n, cpu="1")
        place(srv, "low", "node-0002", cpu="2")
        place(srv, "mid", "node-0002", cpu="2", priority="mid")
        await all_running(srv)
        async with running(srv) as s:
            # "urgent" (2 CPU, priority 1000) fits nowhere. The dry run per node, removing every
            # pod of lower priority and giving back the most important ones while it still fits:
            #   node-0000/1/3: 4 x 1 CPU -> 2 given back (2 + 2 = 4) -> 2 victims of priority 0
            #   node-0002: mid given back (2 + 2 = 4), low not (6 > 4) -> 1 victim (low)
            # pickOneNodeForPreemption: no PDBs; highest victim priority 0 everywhere; the sum of
            # victim priorities (each + 2^31) is smallest on node-0002: 2^31 < 2 * 2^31.
            pending(srv, "urgent", cpu="2", priority="urgent")
            await wait_for(lambda: nominated(srv, "urgent") == "node-0002", what="urgent nominated to node-0002")
            await wait_for(lambda: terminating(srv) == {"low"}, what="the victim terminating")
            await wait_for(lambda: node_of(srv, "urgent") == "node-0002", timeout=10, what="urgent bound")
            pods = pods_of(srv)
            assert "low" not in pods  # its 1 s grace period is over and the kubelet removed it
            assert len(pods) == 3 * 4 + 1 + 1  # every other pod is still there, and urgent
            assert_no_overcommit(srv)

            [failed] = events_for(srv, "urgent", reason="FailedScheduling")
            # The first attempt's message is upstream's FitError alone: preemption succeeded, so it adds nothing.
            assert failed["message"] == "0/4 nodes are available: 4 Insufficient cpu."
            [preempted] = events_for(srv, "low", reason="Preempted")
            urgent_uid = pods["urgent"]["metadata"]["uid"]
            assert (preempted["type"], preempted["action"], preempted["message"]) == (
                "Normal", "Preempting", f"Preempted by pod {urgent_uid} on node node-0002")
            assert preempted["related"]["name"] == "urgent"

            m = await scrape(s)
            # One PostFilter run; one preemption with 1 victim (buckets 1, 2, 4, ... 64).
            assert m["scheduler_preemption_attempts_total"] == 1
            assert m["scheduler_preemption_victims_count"] == 1 and m["scheduler_preemption_victims_sum"] == 1
            assert m['scheduler_preemption_victims_bucket{le="1.0"}'] == 1
            assert m['scheduler_preemption_goroutines_execution_total{result="success"}'] == 1
            assert s.preemptor is not None and s.preemptor.evicted == 1


async def test_victims_carry_the_disruption_target_condition_and_the_preemptor_waits_for_them() -> None:
    async with control_plane(nodes=1) as srv:
        priority_class(srv, "urgent", 1000)
        # 2 x 2 CPU on the one node, with grace periods of 1 s and 3 s.
        place(srv, "v0", "node-0000", cpu="2", grace=1)
        place(srv, "v1", "node-0000", cpu="2", grace=3)
        await all_running(srv)
        async with running(srv) as s:
            # "urgent" needs 3 CPU: both pods must go (2 + 3 > 4), the node is the only candidate.
            pending(srv, "urgent", cpu="3", priority="urgent")
            await wait_for(lambda: terminating(srv) == {"v0", "v1"}, what="both victims terminating")
            for name, grace in (("v0", 1), ("v1", 3)):
                p = pods_of(srv)[name]
                cond = condition(p, "DisruptionTarget")
                assert cond is not None
                assert (cond["status"], cond["reason"], cond["message"]) == (
                    "True", "PreemptionByScheduler", "vecsched: preempting to accommodate a higher priority pod")
                assert p["metadata"]["deletionGracePeriodSeconds"] == grace  # the pod's own grace period
            # v0 gone (after 1 s) moves urgent back to the queue; it still does not fit (2 + 3 > 4)
            # and, v1 terminating by preemption on its nominated node, is not eligible to preempt
            # again: it waits. v1 gone (after 3 s): it fits and is bound.
            await wait_for(lambda: "v0" not in pods_of(srv), what="v0 gone")
            assert node_of(srv, "urgent") is None and nominated(srv, "urgent") == "node-0000"
            await wait_for(lambda: node_of(srv, "urgent") == "node-0000", timeout=10, what="urgent bound")
            m = await scrape(s)
            # PostFilter ran twice (first attempt; after v0 left), preempted once, with 2 victims.
            assert m["scheduler_preemption_attempts_total"] == 2
            assert (m["scheduler_preemption_victims_count"], m["scheduler_preemption_victims_sum"]) == (1, 2)


async def test_preemption_policy_never_waits_without_evicting() -> None:
    async with control_plane(nodes=2) as srv:
        priority_class(srv, "patient", 1000, policy="Never")
        for n in ("node-0000", "node-0001"):  # full: 2 x 4 pods of 1 CPU, priority 0
            for i in range(4):
                place(srv, f"{n[-1]}-{i}", n, cpu="1")
        await all_running(srv)
        async with running(srv) as s:
            pending(srv, "patient", cpu="2", priority="patient")
            await wait_for(lambda: bool(events_for(srv, "patient", reason="FailedScheduling")), what="FailedScheduling")
            [ev] = events_for(srv, "patient", reason="FailedScheduling")
            assert ev["message"] == ("0/2 nodes are available: 2 Insufficient cpu. "
                                     "preemption: not eligible due to preemptionPolicy=Never.")
            await wait_for(lambda: s.queue.where("default/patient") == "unschedulable", what="parked")
            assert terminating(srv) == set() and len(pods_of(srv)) == 9
            assert nominated(srv, "patient") is None
            m = await scrape(s)
            assert m["scheduler_preemption_attempts_total"] == 1  # PostFilter ran ...
            assert m["scheduler_preemption_victims_count"] == 0  # ... and chose no victim
            # It waits, it is not lost: room made by someone else takes it (4 - 2 = 2 CPU on node-0001).
            for name in ("1-0", "1-1"):
                srv.ops.delete(srv.resource("pods"), namespace=NS, name=name)
            await wait_for(lambda: node_of(srv, "patient") == "node-0001", timeout=10, what="patient bound")


async def test_a_second_preemptor_counts_the_first_ones_nomination() -> None:
    async with control_plane(nodes=2) as srv:
        priority_class(srv, "urgent", 1000)
        priority_class(srv, "system", 2000)
        # node-0000 (A): 4 x 1 CPU of priority 0.
        # node-0001 (B): 2 CPU of priority 2000 + 4 x 500m of priority 0.
        for i in range(4):
            place(srv, f"a{i}", "node-0000", cpu="1")
            place(srv, f"b{i}", "node-0001", cpu="500m")
        place(srv, "b-system", "node-0001", cpu="2", priority="system")
        await all_running(srv)
        async with running(srv) as s:
            # first (3 CPU) and second (1 CPU), both of priority 1000, arrive together.
            pending(srv, "first", cpu="3", priority="urgent")
            pending(srv, "second", cpu="1", priority="urgent")
            # first: A gives back 1 of its 4 pods (1 + 3 = 4) -> 3 victims; B cannot take 3 CPU even
            #   without its 500m pods (2 + 3 > 4). -> A, 3 victims.
            # second, with first nominated to A: A gives back none (3 + 1 = 4 already) -> 4 victims;
            #   B gives back 2 of 4 (2 + 1 + 0.5 + 0.5 = 4) -> 2 victims. Fewer victims, smaller sum
            #   (2 * 2^31 < 4 * 2^31) -> B.
            #   Blind to the nomination, A would cost 1 victim (1 + 1 + 1 + 1 = 4) and beat B's 2:
            #   both pods would then wait for the same room on A.
            seen: dict[str, set[str | None]] = {"first": set(), "second": set()}

            def both_bound() -> bool:
                for name, got in seen.items():
                    if node_of(srv, name) is None:
                        got.add(nominated(srv, name))  # the nominations while they wait (1 s grace)
                return node_of(srv, "first") == "node-0000" and node_of(srv, "second") == "node-0001"

            await wait_for(both_bound, timeout=10, what="both bound")
            assert seen["first"] - {None} == {"node-0000"} and seen["second"] - {None} == {"node-0001"}
            gone = {f"{n}{i}" for n in "ab" for i in range(4)} - set(pods_of(srv))
            # 3 + 2 evicted, no more; each once.
            assert len({g for g in gone if g.startswith("a")}) == 3 and len({g for g in gone if g.startswith("b")}) == 2
            for name in gone:
                assert len(events_for(srv, name, reason="Preempted")) == 1
            assert "b-system" in pods_of(srv)
            assert_no_overcommit(srv)
            m = await scrape(s)
            # Two preemptions: 3 victims, then 2.
            assert (m["scheduler_preemption_victims_count"], m["scheduler_preemption_victims_sum"]) == (2, 5)
            assert s.preemptor is not None and s.preemptor.evicted == 5


async def test_pods_of_lower_priority_leave_the_room_to_the_nominated_pod() -> None:
    async with control_plane(nodes=1) as srv:
        priority_class(srv, "mid", 100)
        priority_class(srv, "urgent", 1000)
        # node-0000: k0, k1 (1 CPU, priority 100), v0 (1 CPU, priority 0, 1 s grace), v1 (1 CPU,
        # priority 0, 3 s grace).
        place(srv, "k0", "node-0000", cpu="1", priority="mid")
        place(srv, "k1", "node-0000", cpu="1", priority="mid")
        place(srv, "v0", "node-0000", cpu="1", grace=1)
        place(srv, "v1", "node-0000", cpu="1", grace=3)
        await all_running(srv)
        async with running(srv):
            # urgent (2 CPU): k0 and k1 are given back first (higher priority), v0 and v1 not (2 + 2 = 4).
            pending(srv, "urgent", cpu="2", priority="urgent")
            await wait_for(lambda: terminating(srv) == {"v0", "v1"}, what="v0 and v1 terminating")
            # filler (1 CPU, priority 100) arrives while they terminate. It cannot preempt its way in
            # either: without v0 and v1 (priority 0), k0 + k1 + urgent (nominated, of higher
            # priority) + filler = 1 + 1 + 2 + 1 = 5 > 4. When v0 is gone (after 1 s) 1 CPU is free,
            # and still k0 + k1 + v1 + urgent = 5 > 4: the room is urgent's.
            pending(srv, "filler", cpu="1", priority="mid")
            await wait_for(lambda: "v0" not in pods_of(srv), what="v0 gone")
            await wait_for(lambda: node_of(srv, "urgent") == "node-0000", timeout=10, what="urgent bound")
            # With urgent bound the node is full (1 + 1 + 2 = 4): filler waits; no one else was evicted.
            assert node_of(srv, "filler") is None
            assert set(pods_of(srv)) == {"k0", "k1", "urgent", "filler"}
            ev = events_for(srv, "filler", reason="FailedScheduling")[0]
            assert ev["message"] == ("0/1 nodes are available: 1 Insufficient cpu. "
                                     "preemption: 0/1 nodes are available: 1 Insufficient cpu.")
            assert_no_overcommit(srv)
