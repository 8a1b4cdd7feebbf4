"""The scheduling queue: PrioritySort order, backoff, gates, moves, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.queueing_hints import ClusterEvent, node_events
from scheduler.queue import SchedulingQueue
from tests.live.support import FakeClock


def mk(name: str, *, priority: int = 0, gates: tuple[str, ...] = (), uid: str = "", **spec: Any) -> PodInfo:
    s: dict[str, Any] = {"containers": [{"name": "c"}], "priority": priority, "schedulerName": "vecsched", **spec}
    if gates:
        s["schedulingGates"] = [{"name": g} for g in gates]
    return pod_from_json({"metadata": {"name": name, "namespace": "default", "uid": uid or f"uid-{name}"}, "spec": s})


def queue(clock: FakeClock, **kw: Any) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, **kw)


def drain(q: SchedulingQueue) -> list[str]:
    out = []
    while (qp := q.pop_nowait()) is not None:
        out.append(qp.pod.name)
        q.done(qp.key)
    return out


def test_priority_then_arrival(clock: FakeClock) -> None:
    q = queue(clock)
    for name, prio in [("a", 0), ("b", 10), ("c", 0), ("d", 10), ("e", -5)]:
        q.add(mk(name, priority=prio))
        clock.advance(0.001)
    # priority desc; equal priority keeps arrival order
    assert drain(q) == ["b", "d", "a", "c", "e"]


@pytest.mark.parametrize(("attempts", "seconds"), [
    (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0),  # 1 s doubling, capped at 10 s
], ids=["1st", "2nd", "3rd", "4th", "capped", "still-capped"])
def test_backoff_duration(clock: FakeClock, attempts: int, seconds: float) -> None:
    assert queue(clock).backoff_duration(attempts) == seconds


def test_backoff_uses_config(clock: FakeClock) -> None:
    q = queue(clock, initial_backoff=2.0, max_backoff=5.0)
    assert [q.backoff_duration(a) for a in (1, 2, 3)] == [2.0, 4.0, 5.0]


def test_error_goes_to_backoff_then_active(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None and qp.attempts == 1
    q.requeue(qp, unschedulable=False)
    assert q.where("default/a") == "backoff"
    clock.advance(0.9)
    q.flush()
    assert q.pop_nowait() is None  # 1 s backoff not over
    clock.advance(0.2)
    q.flush()
    qp = q.pop_nowait()
    assert qp is not None and qp.attempts == 2
    q.requeue(qp, unschedulable=False)
    clock.advance(1.5)
    q.flush()
    assert q.where("default/a") == "backoff"  # 2nd backoff is 2 s
    clock.advance(0.6)
    q.flush()
    assert q.where("default/a") == "active"


def test_unschedulable_moves_on_cluster_event(clock: FakeClock) -> None:
    incoming: list[tuple[str, str]] = []
    q = queue(clock, on_incoming=lambda qn, ev: incoming.append((qn, ev)))
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue(qp, unschedulable=True, plugins=frozenset({"NodeResourcesFit"}))
    assert q.where("default/a") == "unschedulable"
    assert [p.unschedulable_plugins for p in q.unschedulable_pods()] == [frozenset({"NodeResourcesFit"})]
    clock.advance(0.5)
    q.move_all("NodeAdd")
    assert q.where("default/a") == "backoff"  # still within its 1 s backoff
    clock.advance(0.6)
    q.flush()
    assert q.where("default/a") == "active"
    assert ("backoff", "NodeAdd") in incoming and ("active", "BackoffComplete") in incoming


def test_unschedulable_after_backoff_moves_straight_to_active(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue(qp, unschedulable=True)
    clock.advance(5)
    q.move_all("AssignedPodDelete")
    assert q.where("default/a") == "active"


def test_unschedulable_retried_after_five_minutes(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue(qp, unschedulable=True)
    clock.advance(299)
    q.flush()
    assert q.where("default/a") == "unschedulable"
    clock.advance(2)
    q.flush()
    assert q.where("default/a") == "active"


def test_event_during_attempt_sends_pod_to_backoff_not_unschedulable(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.move_all("NodeAdd")  # a node arrived while the pod was being tried
    q.requeue(qp, unschedulable=True)
    assert q.where("default/a") == "backoff"


@pytest.mark.parametrize(("named", "where"), [
    # its PodGroup arrived while it was being tried: the attempt may have missed it, so it backs off
    (["default/a"], "backoff"),
    # an event for other pods: it is parked as usual
    (["default/b"], "unschedulable"),
])
def test_targeted_move_during_attempt(clock: FakeClock, named: list[str], where: str) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    assert q.move(named, "PodGroupAdd") == 0  # no parked pod moved
    q.requeue(qp, unschedulable=True)
    assert q.where("default/a") == where


def test_gated_pods_wait_until_ungated(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a", gates=("example.com/quota",)))
    assert q.counts() == {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 1}
    assert q.pop_nowait() is None
    q.move_all("NodeAdd")
    assert q.where("default/a") == "gated"
    q.add(mk("a"))  # gates removed
    assert q.where("default/a") == "active"


def test_deleted_or_bound_pods_are_dropped(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    q.add(mk("b"))
    q.delete("default/a")
    assert drain(q) == ["b"]
    q.add(mk("c"))
    qp = q.pop_nowait()
    assert qp is not None
    q.delete("default/c")  # bound or deleted while in flight
    q.requeue(qp, unschedulable=True)
    assert "default/c" not in q


def test_update_while_in_flight_is_kept_not_duplicated(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.add(mk("a", priority=5))  # same uid: remembered on the in-flight pod
    assert q.counts()["active"] == 0 and qp.pod.priority == 5
    q.add(mk("a", uid="new"))  # recreated under the same name while in flight
    q.done(qp.key)
    again = q.pop_nowait()
    assert again is not None and again.pod.uid == "new" and again.attempts == 1


def test_status_only_update_does_not_move_a_parked_pod(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(mk("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue(qp, unschedulable=True)
    raw = dict(qp.pod.raw)
    raw["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    q.add(pod_from_json(raw))
    assert q.where("default/a") == "unschedulable"
    q.add(mk("a", nodeSelector={"disk": "ssd"}))  # a spec change may help it
    assert q.where("default/a") in ("backoff", "active")


async def test_pop_waits_and_close_wakes(clock: FakeClock) -> None:
    import asyncio
    q = queue(clock)
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.add(mk("a"))
    got = await asyncio.wait_for(waiter, 1)
    assert got is not None and got.pod.name == "a"
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.close()
    assert await asyncio.wait_for(waiter, 1) is None


# ---- cluster events and queueing hints ------------------------------------------------------


def _node(cpu: str, **labels: str) -> NodeInfo:
    return node_from_json({"metadata": {"name": "n", "labels": labels},
                           "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}})


def _wanting_cpu(name: str, cpu: str = "6") -> PodInfo:
    return mk(name, containers=[{"name": "c", "resources": {"requests": {"cpu": cpu}}}])


GROWN = node_events(old=_node("4"), new=_node("8"))[0]                  # NodeAllocatableChange: 4 -> 8 CPU
RELABELLED = node_events(old=_node("4", a="1"), new=_node("4", a="2"))[0]  # NodeLabelChange
PARKED = [  # name, the plugins that rejected it
    ("fit", frozenset({"NodeResourcesFit"})),
    ("taint", frozenset({"TaintToleration"})),
    ("error", frozenset()),
    ("load", frozenset({"LoadAware"})),  # not in the registry: the events that moved everyone before hints
]


def _park_all(q: SchedulingQueue) -> None:
    for name, plugins in PARKED:
        q.add(_wanting_cpu(name))
        qp = q.pop_nowait()
        assert qp is not None
        q.requeue(qp, unschedulable=True, plugins=plugins)


@pytest.mark.parametrize(("event", "moved"), [
    # 6 CPU fit an 8-CPU node and cpu grew: Fit says QUEUE; TaintToleration did not register
    # allocatable changes; no plugin rejected "error"; "load" gets every node change
    (GROWN, ["error", "fit", "load"]),
    # nobody's hint cares for labels but the pods without a hint to ask
    (RELABELLED, ["error", "load"]),
    # a node without the 6 CPU the pod wants: Fit says SKIP
    (node_events(old=None, new=_node("4"))[0], ["error", "load", "taint"]),
], ids=["allocatable-grew", "relabelled", "small-node-added"])
def test_on_event_moves_only_the_pods_it_may_help(clock: FakeClock, event: ClusterEvent, moved: list[str]) -> None:
    incoming: list[tuple[str, str]] = []
    q = queue(clock, on_incoming=lambda queue_, ev: incoming.append((queue_, ev)))
    _park_all(q)
    clock.advance(5)  # past every backoff: moved pods go straight to activeQ
    assert q.on_event(event) == len(moved)
    assert sorted(qp.pod.name for qp in q.unschedulable_pods()) == sorted(
        {n for n, _ in PARKED} - set(moved))
    assert sorted(drain(q)) == moved
    assert incoming.count(("active", event.label)) == len(moved)


@pytest.mark.parametrize(("event", "where"), [
    (GROWN, "backoff"),             # it may fit now: its failure is not parked
    (RELABELLED, "unschedulable"),  # no use to it: parked as usual
], ids=["helpful", "unhelpful"])
def test_event_during_attempt_backs_off_only_if_its_hint_says_queue(clock: FakeClock, event: ClusterEvent,
                                                                   where: str) -> None:
    q = queue(clock)
    q.add(_wanting_cpu("a"))
    qp = q.pop_nowait()
    assert qp is not None
    q.on_event(event)  # arrived while the attempt ran
    q.requeue(qp, unschedulable=True, plugins=frozenset({"NodeResourcesFit"}))
    assert q.where("default/a") == where


def test_events_before_an_attempt_do_not_count_for_it(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(_wanting_cpu("other"))
    first = q.pop_nowait()  # keeps an attempt in flight, so that events are held
    assert first is not None
    q.on_event(GROWN)
    q.add(_wanting_cpu("a"))
    qp = q.pop_nowait()  # its attempt starts after the event
    assert qp is not None
    q.requeue(qp, unschedulable=True, plugins=frozenset({"NodeResourcesFit"}))
    assert q.where("default/a") == "unschedulable"
    q.requeue(first, unschedulable=True, plugins=frozenset({"NodeResourcesFit"}))
    assert q.where("default/other") == "backoff"


@pytest.mark.parametrize(("leave", "moved"), [
    # "fit" left the pool; of the others the grown node moves "error" and "load" (not "taint")
    ("activate", 2), ("take", 2), ("delete", 2), ("move", 2),
    ("flush", 0),  # everyone left (parked longer than 5 minutes)
], ids=["activate", "take", "delete", "move", "flush"])
def test_a_pod_that_left_the_pool_is_not_moved_again(clock: FakeClock, leave: str, moved: int) -> None:
    q = queue(clock)
    _park_all(q)
    key = "default/fit"
    if leave == "activate":
        assert q.activate(key)
    elif leave == "flush":
        clock.advance(301)  # parked longer than 5 minutes: every pod leaves
        q.flush()
    elif leave == "take":
        assert q.take(key) is not None
    elif leave == "delete":
        q.delete(key)
    else:
        assert q.move([key], "PodGroupUpdate") == 1
    where = q.where(key)
    assert q.on_event(GROWN) == moved
    assert q.where(key) == where  # untouched by the event


@pytest.mark.parametrize(("event", "where"), [
    (GROWN, "backoff"),             # seen during b's attempt: kept for it when a's attempt ends
    (RELABELLED, "unschedulable"),
], ids=["helpful", "unhelpful"])
def test_events_are_kept_for_the_attempts_still_in_flight(clock: FakeClock, event: ClusterEvent, where: str) -> None:
    q = queue(clock)
    q.add(_wanting_cpu("a"))
    a = q.pop_nowait()
    assert a is not None
    for _ in range(70):  # more than the 64 events below which the held list is not trimmed
        q.on_event(RELABELLED)
    q.add(_wanting_cpu("b"))
    b = q.pop_nowait()
    assert b is not None
    q.on_event(event)
    q.done(a.key)  # the oldest attempt ends: the 70 events before b's are dropped, not b's
    q.requeue(b, unschedulable=True, plugins=frozenset({"NodeResourcesFit"}))
    assert q.where("default/b") == where


def test_too_many_events_during_an_attempt_back_it_off(clock: FakeClock) -> None:
    q = queue(clock)
    q.add(_wanting_cpu("a"))
    qp = q.pop_nowait()
    assert qp is not None
    for _ in range(10_001):  # past the 10,000 held: the attempt is taken to have missed a helpful one
        q.on_event(RELABELLED)
    q.requeue(qp, unschedulable=True, plugins=frozenset({"NodeResourcesFit"}))
    assert q.where("default/a") == "backoff"
