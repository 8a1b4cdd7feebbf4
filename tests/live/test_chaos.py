"""The chaos soak: its invariant checkers on synthetic histories, and a one-minute slice of the real soak."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

import pytest

from benchmarks.chaos import disruption_times
from benchmarks.chaos_invariants import Invariants

Snapshot = dict[str, Any]


def _pod(name: str, *, node: str = "", cpu: str = "1", priority: int = 0, phase: str = "", nominated: str = "",
         group: str = "", gated: bool = False, preempted: bool = False, terminating: bool = False,
         rv: int = 0) -> dict[str, Any]:
    labels = {"scheduling.x-k8s.io/pod-group": group} if group else {}
    spec: dict[str, Any] = {"schedulerName": "vecsched", "priority": priority,
                            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    if node:
        spec["nodeName"] = node
    if gated:
        spec["schedulingGates"] = [{"name": "example.com/wait"}]
    status: dict[str, Any] = {"phase": phase or ("Running" if node else "Pending")}
    if nominated:
        status["nominatedNodeName"] = nominated
    if preempted:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]
    meta: dict[str, Any] = {"name": name, "namespace": "chaos", "uid": f"uid-{name}", "labels": labels}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if rv:
        meta["resourceVersion"] = str(rv)
    return {"metadata": meta, "spec": spec, "status": status}


def _node(name: str, *, cpu: str = "4", pods: str = "110") -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": "16Gi", "pods": pods}
    return {"metadata": {"name": name}, "spec": {}, "status": {"allocatable": alloc, "capacity": alloc}}


def _event(reason: str, pod: str, message: str, *, name: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name or f"{pod}.{reason}"}, "reason": reason, "message": message,
            "involvedObject": {"kind": "Pod", "namespace": "chaos", "name": pod, "uid": f"uid-{pod}"}}


def _group(name: str, min_member: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "chaos"}, "spec": {"minMember": min_member}}


N1, N2 = _node("n1"), _node("n2")


def _run(history: list[tuple[float, Snapshot]], *, restart_at: float | None = None) -> list[str]:
    inv = Invariants(pending_bound=30, gang_settle=30, preemption_grace=10)
    for t, snap in history:
        if restart_at is not None and t >= restart_at:
            inv.reset_pending()
            restart_at = None
        inv.observe(now=t, **snap)
    inv.finish(now=history[-1][0])
    return [v.kind for v in inv.violations]


def _pending_history(*pods: dict[str, Any], until: float = 31) -> list[tuple[float, Snapshot]]:
    """A pending pod sampled at 0, 10, 20 and ``until`` on one empty 4-CPU node (plus ``pods``)."""
    return [(t, {"pods": list(pods), "nodes": [N1]}) for t in (0, 10, 20, until)]


PREEMPTED = "Preempted by pod uid-urgent on node n1"
# The preemptor is seen pending (nominated to another node before), then deleted -- gone from the next
# list, at 1 s, within the 10 s grace -- before a nomination to n1 was seen.
PREEMPTOR_DELETED: list[tuple[float, Snapshot]] = [
    (0, {"pods": [_pod("v", node="n1", priority=-10), _pod("urgent", priority=1000, nominated="n2")]}),
    (1, {"pods": [], "events": [_event("Preempted", "v", PREEMPTED)]}), (11, {"pods": []})]


@pytest.mark.parametrize(("history", "want"), [
    # -- bound once ------------------------------------------------------------------------------------
    pytest.param([(0, {"pods": [_pod("a", node="n1")]}), (1, {"pods": [_pod("a", node="n2")]})], ["moved"],
                 id="moved-to-another-node"),
    pytest.param([(0, {"pods": [_pod("a", node="n1")]}), (1, {"pods": [_pod("a")]})], ["moved"],
                 id="node-name-cleared"),
    pytest.param([(0, {"pods": [_pod("a", node="n1")]}), (1, {"pods": [_pod("a", node="n1")]})], [],
                 id="stays-put"),
    pytest.param([(0, {"pods": [_pod("a", node="n1", rv=5)]}), (1, {"pods": [_pod("a", node="n2", rv=6)]})],
                 ["moved"], id="moved-in-a-newer-version"),
    # a watch lagging behind the list delivers the pending version 3 after the bound version 5: old news
    pytest.param([(0, {"pods": [_pod("a", node="n1", rv=5)]}), (1, {"pods": [_pod("a", rv=3)]})], [],
                 id="older-version-ignored"),
    pytest.param([(0, {"pods": [_pod("a", node="n1")], "events": [
        _event("Scheduled", "a", "Successfully assigned chaos/a to n1", name="a.1"),
        _event("Scheduled", "a", "Successfully assigned chaos/a to n1", name="a.2")]})], ["bound twice"],
        id="two-scheduled-events"),
    pytest.param([(t, {"pods": [_pod("a", node="n1")], "events": [
        _event("Scheduled", "a", "Successfully assigned chaos/a to n1")]}) for t in (0, 1)], [],
        id="one-scheduled-event-seen-twice"),
    pytest.param([(0, {"pods": [_pod("a", node="n1")], "events": [
        _event("Scheduled", "a", "Successfully assigned chaos/a to n2")]})], ["bound twice"],
        id="scheduled-event-names-another-node"),
    # -- allocatable: n1 has 4 CPU (4000m) and room for 110 pods ---------------------------------------------
    pytest.param([(0, {"pods": [_pod("a", node="n1", cpu="3"), _pod("b", node="n1", cpu="2")], "nodes": [N1]})],
                 ["over allocatable"], id="cpu-3000m+2000m>4000m"),
    pytest.param([(0, {"pods": [_pod("a", node="n1", cpu="3"), _pod("b", node="n1", cpu="2", phase="Succeeded")],
                       "nodes": [N1]})], [], id="succeeded-pod-frees-room-3000m<=4000m"),
    pytest.param([(0, {"pods": [_pod(f"p{i}", node="n9", cpu="0") for i in range(3)],
                       "nodes": [_node("n9", pods="2")]})], ["over allocatable"], id="3-pods>2-allowed"),
    # -- no idle fit: pending 1 CPU pod, empty 4 CPU node, bound 30 s ---------------------------------------
    pytest.param(_pending_history(_pod("p")), ["left pending"], id="fits-for-31s>30s"),
    pytest.param(_pending_history(_pod("p"), until=30), [], id="fits-for-30s-not-over"),
    pytest.param(_pending_history(_pod("p", cpu="5")), [], id="5-cpu-fits-nowhere"),
    pytest.param(_pending_history(_pod("p", group="g")), [], id="gang-member-left-to-gang-rule"),
    pytest.param(_pending_history(_pod("p", gated=True)), [], id="gated"),
    # A terminating victim holds 3000m until it is gone: 1000m free, and a pending pod of higher priority
    # nominated to n1 (waiting for the victim; 3500m > 1000m, so it does not fit yet) holds 3500m of it:
    # 1000m - 3500m < 1000m requested.
    pytest.param(_pending_history(_pod("p"), _pod("victim", node="n1", cpu="3", terminating=True),
                                  _pod("hi", cpu="3500m", priority=10, nominated="n1")), [],
                 id="room-held-for-nominated-pod"),
    # ... but a nominated pod of lower priority does not hold room against it: 1000m <= 1000m free
    pytest.param(_pending_history(_pod("p", priority=10), _pod("victim", node="n1", cpu="3", terminating=True),
                                  _pod("lo", cpu="3500m", nominated="n1")),
                 ["left pending"], id="lower-priority-nomination-does-not-hold-room"),
    pytest.param(_pending_history(_pod("p", cpu="3"), _pod("x", node="n1", cpu="2")), [],
                 id="3000m>4000m-2000m-no-room"),
    # -- whole gangs: minMember 3, settle 30 s -------------------------------------------------------------
    pytest.param([(t, {"pods": [_pod("g0", node="n1", group="g"), _pod("g1", node="n2", group="g"),
                                _pod("g2", group="g")], "podgroups": [_group("g", 3)]}) for t in (0, 31)],
                 ["partial gang"], id="2-of-3-bound-after-31s"),
    pytest.param([(0, {"pods": [_pod("g0", node="n1", group="g"), _pod("g1", group="g")],
                       "podgroups": [_group("g", 2)]}),
                  (5, {"pods": [_pod("g0", node="n1", group="g"), _pod("g1", node="n2", group="g")],
                       "podgroups": [_group("g", 2)]}),
                  (31, {"pods": [_pod("g0", node="n1", group="g", phase="Succeeded")],
                        "podgroups": [_group("g", 2)]})], [], id="second-member-bound-within-settle-time"),
    pytest.param([(0, {"pods": [_pod("g0", node="n1", group="g"), _pod("g1", group="g")],
                       "podgroups": [_group("g", 2)]}),
                  (31, {"pods": []})], [], id="deleted-before-it-settled"),
    pytest.param([(t, {"pods": [_pod("g0", group="g"), _pod("g1", group="g")], "podgroups": [_group("g", 2)]})
                  for t in (0, 31)], [], id="none-bound"),
    # -- preemption: victim v (priority -10) on n1; judged 10 s (the grace) after it was seen preempted ----
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10), _pod("urgent", priority=1000, nominated="n1")]}),
                  (1, {"pods": [_pod("urgent", priority=1000, node="n1")],
                       "events": [_event("Preempted", "v", PREEMPTED)]}), (11, {"pods": []})], [],
                 id="preemptor-nominated-then-bound"),
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10), _pod("urgent", priority=-10, nominated="n1")]}),
                  (1, {"pods": [], "events": [_event("Preempted", "v", PREEMPTED)]}), (11, {"pods": []})],
                 ["victim without preemptor"], id="preemptor-of-equal-priority"),
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10)]}),
                  (1, {"pods": [], "events": [_event("Preempted", "v", PREEMPTED)]}), (11, {"pods": []})],
                 ["victim without preemptor"], id="preemptor-never-seen"),
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10)]}),
                  (1, {"pods": [], "events": [_event("Preempted", "v", PREEMPTED)]}), (10, {"pods": []})], [],
                 id="not-judged-before-the-grace"),  # seen at 1 s: judged from 1 + 10 = 11 s on
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10), _pod("urgent", priority=1000, nominated="n2")]}),
                  (1, {"pods": [_pod("urgent", priority=1000, nominated="n2")],
                       "events": [_event("Preempted", "v", PREEMPTED)]}),
                  (11, {"pods": [_pod("urgent", priority=1000, nominated="n2")]})],
                 ["victim without preemptor"], id="preemptor-nominated-elsewhere"),
    # deleted at 12 s, after the grace (seen preempted at 1 s: 1 + 10 = 11 s): judged at 11 s, still pending
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10), _pod("urgent", priority=1000)]}),
                  (1, {"pods": [_pod("urgent", priority=1000)], "events": [_event("Preempted", "v", PREEMPTED)]}),
                  (11, {"pods": [_pod("urgent", priority=1000)]}), (12, {"pods": []})],
                 ["victim without preemptor"], id="preemptor-deleted-after-the-grace"),
    pytest.param(PREEMPTOR_DELETED, [], id="preemptor-deleted-before-its-nomination"),
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10), _pod("urgent", priority=1000)]}),
                  (1, {"pods": [_pod("urgent", priority=1000)], "events": [_event("Preempted", "v", PREEMPTED)]}),
                  (11, {"pods": [_pod("urgent", priority=1000)]})],
                 ["victim without preemptor"], id="preemptor-still-pending-never-nominated"),
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10, preempted=True)]}), (11, {"pods": []})],
                 ["victim without preemptor"], id="disruption-condition-and-no-preemptor"),
    pytest.param([(0, {"pods": [_pod("v", node="n1", priority=-10, preempted=True),
                                _pod("hi", priority=5, node="n1")]}), (11, {"pods": []})], [],
                 id="disruption-condition-with-preemptor"),
])
def test_invariant_checkers(history: list[tuple[float, Snapshot]], want: list[str]) -> None:
    assert _run(history) == want


def test_a_preemptor_deleted_before_its_nomination_is_counted() -> None:
    inv = Invariants(preemption_grace=10)
    for t, snap in PREEMPTOR_DELETED:
        inv.observe(now=t, **snap)
    assert (inv.violations, inv.preemptors_deleted_unplaced, inv.preemptions) == ([], 1, 1)


@pytest.mark.parametrize(("deleted_rv", "want"), [
    # the victim's DisruptionTarget version is resourceVersion 60; the preemptor's DELETED event:
    pytest.param(70, [], id="deleted-after-the-preemption"),  # 70 > 60: it existed when the victim was chosen
    pytest.param(50, ["victim without preemptor"], id="deleted-before-the-preemption"),  # 50 < 60: a ghost
])
def test_preemption_for_a_pod_already_deleted(deleted_rv: int, want: list[str]) -> None:
    inv = Invariants(preemption_grace=10)
    inv.observe(now=0, pods=[_pod("v", node="n1", priority=-10, rv=40), _pod("urgent", priority=1000, rv=41)])
    inv.record(now=1, pod=_pod("urgent", priority=1000, rv=deleted_rv), deleted=True)
    inv.record(now=1, pod=_pod("v", node="n1", priority=-10, preempted=True, rv=60))
    inv.observe(now=2, pods=[], events=[_event("Preempted", "v", PREEMPTED)])
    inv.observe(now=12, pods=[])  # 1 + 10 s of grace
    assert [v.kind for v in inv.violations] == want


def test_an_api_server_restart_restarts_the_pending_clock() -> None:
    # fits from 0 to 31 s, but the server restarted at 20 s: 31 - 20 = 11 s <= 30 s
    assert _run(_pending_history(_pod("p")), restart_at=20) == []


@pytest.mark.parametrize(("seconds", "want"), [
    # first kill at 15 s; each gap min(uniform(25, 65), 0.35 x 60 = 21) = 21 s: 36 s; 57 s > 60 - 5 is left out
    pytest.param(60, [(15, "leader-kill"), (36, "apiserver-restart")], id="one-minute"),
    pytest.param(10, [], id="too-short-for-any"),  # 15 s > 10 - 5
])
def test_disruption_times(seconds: float, want: list[tuple[float, str]]) -> None:
    assert disruption_times(seconds=seconds, rng=random.Random(1)) == want


async def test_one_minute_soak() -> None:
    # Faster periodic faults than the soak's default, so that one minute sees each kind.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.chaos", "--minutes", "1", "--seed", "7", "--json",
        "--faults", "errors=0.02,throttle=0.02,latency=10ms,watch-drop=10s,compact=10s",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    result = json.loads(out)
    assert result["violations"] == [], result["violations"]
    assert proc.returncode == 0, err.decode()[-2000:]
    assert all(result["faults"][kind] > 0 for kind in ("errors", "throttle", "latency", "watch-drop", "compact")), \
        result["faults"]
    assert result["leader_kills"] >= 1 and result["apiserver_restarts"] >= 1
    assert result["pods_scheduled"] > 0
