"""The preemptor's side effects: a victim is deleted once however many preemptions pick it;
a preemptor of higher priority takes the room a lower one was nominated to (whose
nomination is cleared); failing API calls are retried, counted, and the preemptor is
scheduled again instead of stranded. Nodes are 4 CPU / 8Gi; victims terminate within
their grace period (1 s unless said)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from scheduler.apiserver.auth import read_rbac_file
from scheduler.kube.client import ClientSettings
from scheduler.preemptor import PreemptorSettings
from scoring.objects import pod_from_json
from tests.controlplane.support import control_plane
from tests.live.support import assert_no_overcommit, events_for, pod, pods_of, running, wait_async, wait_for
from tests.live.test_live_preemption import (NS, all_running, node_of, nominated, pending, place, priority_class,
                                             scrape, terminating)

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
SERVICE_ACCOUNT = "system:serviceaccount:vecsched:vecsched"


async def test_two_preemptions_that_pick_the_same_victim_delete_it_once(tmp_path: Path) -> None:
    async with control_plane(nodes=1, rbac=read_rbac_file(RBAC), tokens={"sa": SERVICE_ACCOUNT}) as srv:
        priority_class(srv, "urgent", 1000)
        place(srv, "victim", "node-0000", cpu="1", grace=2)
        await all_running(srv)
        # A pod no scheduler places, standing for two preemptors that chose the same victim
        # before either deletion was seen by the watch.
        srv.create("pods", pod("preemptor", scheduler="nobody", priorityClassName="urgent"))
        kubeconfig = srv.kubeconfig_for(token="sa", path=tmp_path / "sa.kubeconfig")
        async with running(srv, client=ClientSettings(kubeconfig=str(kubeconfig))) as s:
            assert s.preemptor is not None
            victim = s.cache.table.pods[f"{NS}/victim"].pod
            preemptor = pod_from_json(srv.get("pods", "preemptor", namespace=NS))
            first = s.preemptor.preempt(pod=preemptor, node="node-0000", victims=[victim])
            second = s.preemptor.preempt(pod=preemptor, node="node-0000", victims=[victim])
            assert [p.key for p in first] == [victim.key] and second == []  # the second finds it under way
            await wait_for(lambda: terminating(srv) == {"victim"}, what="victim terminating")
            await wait_for(lambda: "victim" not in pods_of(srv), what="victim gone")
            await wait_for(lambda: not s.preemptor.evicting(victim.key), what="the watch saw it go")
        deletes = Counter(d.name for d in srv.auth_log if d.verb == "delete" and d.resource == "pods")
        assert deletes == Counter({"victim": 1})
        [ev] = events_for(srv, "victim", reason="Preempted")
        assert ev["message"] == f"Preempted by pod {preemptor.uid} on node node-0000"


async def test_a_higher_preemptor_takes_the_room_and_clears_the_lower_ones_nomination() -> None:
    async with control_plane(nodes=1) as srv:
        priority_class(srv, "mid", 100)
        priority_class(srv, "top", 1000)
        for i in range(4):  # node-0000 full: 4 x 1 CPU of priority 0, 3 s grace periods
            place(srv, f"p{i}", "node-0000", cpu="1", grace=3)
        await all_running(srv)
        async with running(srv):
            # mid (1 CPU, priority 100): 3 of the 4 given back (3 + 1 = 4) -> 1 victim; nominated.
            pending(srv, "mid", cpu="1", priority="mid")
            await wait_for(lambda: nominated(srv, "mid") == "node-0000" and len(terminating(srv)) == 1,
                           what="mid nominated")
            # top (4 CPU, priority 1000) ignores mid's nomination (lower priority): all 4 pods of
            # priority 0 must go (4 + 4 > 4 for any given back) -> nominated; mid's nomination
            # is cleared, since top takes the room mid waited for.
            pending(srv, "top", cpu="4", priority="top")
            await wait_for(lambda: nominated(srv, "top") == "node-0000", what="top nominated")
            await wait_for(lambda: nominated(srv, "mid") is None, what="mid's nomination cleared")
            await wait_for(lambda: node_of(srv, "top") == "node-0000", timeout=10, what="top bound")
            # mid retried: top (of higher priority) fills the node and mid may preempt no one -- top
            # is not of lower priority -- so it waits, with no nomination.
            assert node_of(srv, "mid") is None and nominated(srv, "mid") is None
            assert set(pods_of(srv)) == {"mid", "top"}
            for i in range(4):
                assert len(events_for(srv, f"p{i}", reason="Preempted")) == 1
            assert_no_overcommit(srv)


async def test_failed_evictions_are_retried_counted_and_the_preemptor_scheduled_again() -> None:
    async with control_plane(nodes=1) as srv:
        priority_class(srv, "urgent", 1000)
        for i in range(2):  # 2 x 2 CPU of priority 0
            place(srv, f"v{i}", "node-0000", cpu="2")
        await all_running(srv)
        settings = PreemptorSettings(attempts=2, initial_backoff=0.01, max_backoff=0.05)
        async with running(srv, preemptor=settings) as s:
            srv.faults.include_watches = False
            srv.faults.error_rate = 1.0  # every request but the watches answered 500
            pending(srv, "urgent", cpu="3", priority="urgent")  # both pods must go: 2 + 3 > 4

            async def two_rounds_failed() -> bool:  # so the pod was scheduled again after the first
                m = await scrape(s)
                return m.get('scheduler_preemption_goroutines_execution_total{result="error"}', 0.0) >= 2

            await wait_async(two_rounds_failed, what="two failed rounds")
            srv.faults.error_rate = 0.0
            await wait_for(lambda: node_of(srv, "urgent") == "node-0000", timeout=10, what="urgent bound")
            m = await scrape(s)
            # Each failed round: the preemptor's own read tried twice, then given up, so no victim
            # was touched on a guess (two rounds at least: 2 x 2 errors).
            assert m['vecsched_preemption_api_errors_total{call="get_preemptor"}'] >= 2 * 2
            assert m['scheduler_queue_incoming_pods_total{event="ForceActivate",queue="active"}'] >= 2
            assert m['scheduler_preemption_goroutines_execution_total{result="success"}'] == 1
            for name in ("v0", "v1"):  # evicted once, by the round that succeeded
                assert len(events_for(srv, name, reason="Preempted")) == 1
            assert set(pods_of(srv)) == {"urgent"}


# How the preemptor stands in the API server when its eviction task starts, against the
# watch's (stale) view the decision came from -> whether its victim is evicted.
CALLED_OFF_CASES = [
    ("still pending", "pending", True),
    ("deleted meanwhile", "deleted", False),
    ("recreated under another UID", "recreated", False),
    ("bound elsewhere meanwhile", "bound", False),
]


@pytest.mark.parametrize(("change", "evicted"), [c[1:] for c in CALLED_OFF_CASES], ids=[c[0] for c in CALLED_OFF_CASES])
async def test_a_preemption_is_called_off_when_the_preemptor_no_longer_needs_room(change: str, evicted: bool) -> None:
    async with control_plane(nodes=2) as srv:
        priority_class(srv, "urgent", 1000)
        place(srv, "victim", "node-0000", cpu="1", grace=1)
        await all_running(srv)
        # A pod no scheduler places, standing for a preemptor the scheduler decided about from a
        # watch that had not yet seen what happened to it next.
        srv.create("pods", pod("preemptor", scheduler="nobody", priorityClassName="urgent"))
        stale = pod_from_json(srv.get("pods", "preemptor", namespace=NS))
        if change in ("deleted", "recreated"):
            srv.ops.delete(srv.resource("pods"), namespace=NS, name="preemptor", grace=0)
        if change == "recreated":
            srv.create("pods", pod("preemptor", scheduler="nobody", priorityClassName="urgent"))
        if change == "bound":  # room freed elsewhere and another cycle bound it there
            srv.ops.bind({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "preemptor"},
                          "target": {"kind": "Node", "name": "node-0001"}}, namespace=NS, name="preemptor")
        async with running(srv) as s:
            assert s.preemptor is not None
            victim = s.cache.table.pods[f"{NS}/victim"].pod
            assert [p.key for p in s.preemptor.preempt(pod=stale, node="node-0000", victims=[victim])] == [victim.key]
            await s.preemptor.drain(timeout=10)
            if evicted:
                await wait_for(lambda: "victim" not in pods_of(srv), what="victim gone")
                assert len(events_for(srv, "victim", reason="Preempted")) == 1
                assert nominated(srv, "preemptor") == "node-0000"  # written before the victim was touched
            else:
                assert "victim" in pods_of(srv) and "victim" not in terminating(srv)
                assert events_for(srv, "victim", reason="Preempted") == []
                assert not s.preemptor.evicting(victim.key)  # a later preemption may pick it


async def test_an_eviction_is_called_off_when_the_preemptor_goes_while_it_is_under_way() -> None:
    async with control_plane(nodes=1) as srv:
        priority_class(srv, "urgent", 1000)
        place(srv, "victim", "node-0000", cpu="1", grace=1)
        await all_running(srv)
        srv.create("pods", pod("preemptor", scheduler="nobody", priorityClassName="urgent"))
        preemptor = pod_from_json(srv.get("pods", "preemptor", namespace=NS))
        async with running(srv) as s:
            assert s.preemptor is not None
            victim = s.cache.table.pods[f"{NS}/victim"].pod
            # Every request now waits 0.3 s, so the preemptor is deleted after the victim's
            # DisruptionTarget condition is written and before the delete that would follow it:
            # the read just before that delete finds it gone.
            srv.faults.latency_seconds = 0.3
            s.preemptor.preempt(pod=preemptor, node="node-0000", victims=[victim])

            def condition_written() -> bool:
                conditions = srv.get("pods", "victim", namespace=NS)["status"].get("conditions") or []
                return any(c.get("type") == "DisruptionTarget" for c in conditions)

            await wait_for(condition_written, what="the victim's DisruptionTarget condition")
            srv.ops.delete(srv.resource("pods"), namespace=NS, name="preemptor", grace=0)
            await s.preemptor.drain(timeout=10)
            srv.faults.latency_seconds = 0.0
            assert "victim" in pods_of(srv) and "victim" not in terminating(srv)
            assert events_for(srv, "victim", reason="Preempted") == []
