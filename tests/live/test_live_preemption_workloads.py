"""Preemption among workloads: PodDisruptionBudgets steer the choice of node (a budget
the scheduler cannot read is reported once and left out), and a Deployment's evicted
pods are replaced -- and wait, because the preemptor's nomination holds the room they
were evicted from -- until a node arrives for them.

The control plane runs the controllers each test needs (the disruption controller
keeps the budgets' ``status.disruptionsAllowed``; the Deployment and ReplicaSet
controllers replace evicted pods). Nodes are 4 CPU / 8Gi.
"""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape
from scheduler.apiserver.controllers import DeploymentController, DisruptionController, ReplicaSetController
from scoring.plugins.budgets import Budgets
from tests.controlplane.support import control_plane, deployment
from tests.live.support import assert_no_overcommit, events_for, pods_of, running, wait_async, wait_for
from tests.live.test_live_preemption import (NS, all_running, node_of, nominated, pending, place, priority_class,
                                             scrape, terminating)


def _budget(name: str, app: str, min_available: int) -> dict[str, object]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": NS},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}}


async def _patch_status(srv: ApiServer, name: str, status: dict[str, object]) -> None:
    """A merge patch of the budget's ``status`` subresource over HTTP (this server takes what it is given)."""
    url = f"{srv.url}/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{name}/status"
    async with aiohttp.ClientSession() as http, http.patch(url, data=json.dumps({"status": status}), headers={
            "Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200, await r.text()


async def test_a_budget_that_allows_no_disruption_steers_preemption_to_the_other_node() -> None:
    async with control_plane(DisruptionController, nodes=2) as srv:
        priority_class(srv, "urgent", 1000)
        # node-0000: 4 x 1 CPU "guarded" pods; node-0001: 4 x 1 CPU "spare" pods; all priority 0.
        for i in range(4):
            place(srv, f"guarded-{i}", "node-0000", cpu="1", labels={"app": "guarded"})
            place(srv, f"spare-{i}", "node-0001", cpu="1", labels={"app": "spare"})
        await all_running(srv)
        # The disruption controller: guarded has 4 healthy of minAvailable 4 -> disruptionsAllowed 0;
        # spare has 4 healthy of minAvailable 0 -> disruptionsAllowed 4.
        srv.create("poddisruptionbudgets", _budget("guarded", "guarded", 4))
        srv.create("poddisruptionbudgets", _budget("spare", "spare", 0))

        def allowed(name: str) -> int | None:
            return (srv.get("poddisruptionbudgets", name, namespace=NS).get("status") or {}).get("disruptionsAllowed")

        await wait_for(lambda: allowed("guarded") == 0 and allowed("spare") == 4, what="budget status")
        async with running(srv) as s:
            budgets = Budgets.of(s.cache.table)
            await wait_for(lambda: {k: b.allowed for k, b in budgets.items.items()} ==
                           {(NS, "guarded"): 0, (NS, "spare"): 4}, what="the scheduler sees the budgets")
            # "urgent" (2 CPU): both nodes would give 2 victims of priority 0 (2 + 2 = 4), alike in
            # priorities and counts; on node-0000 both violate guarded's budget (2 disruptions, 0
            # allowed), on node-0001 none does (2 <= 4). Fewest PDB violations comes first -> node-0001.
            pending(srv, "urgent", cpu="2", priority="urgent")
            await wait_for(lambda: node_of(srv, "urgent") == "node-0001", timeout=10, what="urgent bound")
            pods = pods_of(srv)
            assert {f"guarded-{i}" for i in range(4)} <= set(pods)  # no guarded pod touched
            assert len([n for n in pods if n.startswith("spare-")]) == 2
            assert nominated(srv, "urgent") == "node-0001"
            assert_no_overcommit(srv)


async def test_evicted_replicas_are_replaced_and_wait_for_a_node_while_the_room_is_held() -> None:
    async with control_plane(DeploymentController, ReplicaSetController, nodes=2) as srv:
        priority_class(srv, "urgent", 1000)
        dep = deployment("batch", replicas=8, cpu="1")
        dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
        srv.create("deployments", dep)
        async with running(srv) as s:
            # 8 replicas of 1 CPU fill both nodes (2 x 4 CPU): 4 on each.
            await wait_for(lambda: sum(1 for p in pods_of(srv).values() if p["spec"].get("nodeName")) == 8,
                           what="the Deployment placed")
            await all_running(srv)
            before = set(pods_of(srv))
            # "urgent" (2 CPU): either node gives 2 victims of priority 0 (2 + 2 = 4); it is nominated
            # to one of them, say N, whose 2 victims are deleted.
            pending(srv, "urgent", cpu="2", priority="urgent")
            await wait_for(lambda: nominated(srv, "urgent") is not None, what="urgent nominated")
            target = nominated(srv, "urgent")
            await wait_for(lambda: node_of(srv, "urgent") == target, timeout=10, what="urgent bound")
            # The ReplicaSet replaced its 2 evicted pods. They fit nowhere: N holds 2 replicas + urgent
            # (2 + 2 = 4), the other node 4 replicas; and with priority 0 they preempt no one.
            replacements = set(pods_of(srv)) - before - {"urgent"}
            assert len(replacements) == 2 and len(before - set(pods_of(srv))) == 2
            for name in replacements:
                await wait_for(lambda: bool(events_for(srv, name, reason="FailedScheduling")), what="reported")
                [ev] = events_for(srv, name, reason="FailedScheduling")
                assert ev["message"] == ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are "
                                         "available: 2 No preemption victims found for incoming pod.")
                assert node_of(srv, name) is None
            # A third node (4 CPU) takes both (1 + 1 <= 4).
            srv.add_nodes(NodeShape(count=1, cpu="4", memory="8Gi"))
            await wait_for(lambda: all(node_of(srv, n) == "node-0002" for n in replacements), timeout=10,
                           what="the replacements placed on the new node")
            assert terminating(srv) == set()
            assert s.preemptor is not None and s.preemptor.evicted == 2
            assert_no_overcommit(srv)


async def test_a_malformed_budget_is_reported_once_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="vecsched.cache")
    async with control_plane(nodes=1) as srv:
        srv.create("poddisruptionbudgets", _budget("web", "web", 1))
        async with running(srv) as s:
            budgets = Budgets.of(s.cache.table)
            await wait_for(lambda: (NS, "web") in budgets.items, what="the budget seen")
            # Two updates that leave status.disruptionsAllowed unreadable: left out, logged once.
            await _patch_status(srv, "web", {"disruptionsAllowed": "two"})
            await _patch_status(srv, "web", {"observedGeneration": 7})
            await wait_for(lambda: (NS, "web") not in budgets.items, what="the budget left out")
            m: dict[str, float] = {}

            async def both_counted() -> bool:
                m.update(await scrape(s))
                return m.get('vecsched_malformed_objects_total{kind="poddisruptionbudget"}') == 2

            await wait_async(both_counted, what="both malformed versions counted")
            lines = [r.getMessage() for r in caplog.records if "PodDisruptionBudget" in r.getMessage()]
            assert lines == ["skipping malformed PodDisruptionBudget: PodDisruptionBudget default/web: "
                             "status.disruptionsAllowed: expected an integer, got 'two'"]
            # Readable again: back in, as it now says.
            await _patch_status(srv, "web", {"disruptionsAllowed": 3})
            await wait_for(lambda: (NS, "web") in budgets.items and budgets.items[(NS, "web")].allowed == 3,
                           what="the budget back")
            assert s.ready()
