"""The PodGroup operator's state machine (``podgroup_status``), case by case.

The first table is scheduler-plugins' podgroup_controller_test.go (Test_Run and
TestFillGroupStatusOccupied) ported with its fixture: the PodGroup starts with
``occupiedBy: test``, ``scheduleStartTime: now`` and the case's phase; the store
holds the first two of the case's pods (upstream's setUp adds ``ps[0], ps[1]``
only), and for every pod name the pod is given its next phase (when the case has
one) and the group reconciled once. The second table covers what upstream's
tests leave out, and vecsched's own scheduleStartTime.
"""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.podgroup_operator import Member, normal_status, podgroup_status, status_patch

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NOW_TEXT = "2027-01-15T08:00:00Z"
HOUR = 3600.0


def _members(names: list[str], phase: str, owners: tuple[str, ...] = ()) -> list[Member]:
    return [Member("default", n, phase, "", owners) for n in names]


def _upstream_run(*, min_member: int, pods: list[str], phase: str, next_phase: str | None, previous: str,
                  created: float = NOW, owners: tuple[str, ...] = ()) -> dict[str, Any]:
    status: dict[str, Any] = {"occupiedBy": "test", "scheduleStartTime": NOW_TEXT, "phase": previous}
    stored = _members(pods[:2], phase, owners)
    for i, _ in enumerate(pods):
        if next_phase and i < len(stored):
            stored[i] = Member("default", stored[i].name, next_phase, "", owners)
        new = podgroup_status(min_member=min_member, status=status, members=stored, created=created, now=NOW)
        if new is not None:
            status = new
    return status


UPSTREAM = [
    # name, minMember, pods, their phase, next phase, previous group phase, expected phase
    ("Group running", 2, ["pod1", "pod2"], "Running", None, "Scheduling", "Running"),
    # running 2 + succeeded 0 = 2 >= minMember 2
    ("Group running, more than min member", 2, ["pod11", "pod21", "pod31", "pod41"], "Running", None, "Scheduling",
     "Running"),
    # the store holds pod11 and pod21: running 2 >= 2 (4 reconciles, the same answer)
    ("Group failed", 2, ["pod1", "pod2"], "Failed", None, "Scheduling", "Failed"),
    # running+succeeded 0 < 2 -> Scheduling; failed 2 != 0 and 2+0+0 >= 2 -> Failed (final for the 2nd reconcile)
    ("Group finished", 2, ["pod1", "pod2"], "Succeeded", None, "Scheduling", "Finished"),
    # 0+2 >= 2 -> Running; succeeded 2 >= 2 -> Finished
    ("Group status convert from pending to prescheduling", 2, ["pod1", "pod2"], "Pending", None, "Pending",
     "Scheduling"),
    # 1st: Pending, 2 pods >= 2 -> Scheduling; 2nd: running+succeeded 0 < 2 -> Scheduling
    ("Group status convert from scheduling to finished", 2, ["pod1", "pod2"], "Pending", "Succeeded", "Scheduling",
     "Finished"),
    # 1st (pod1 succeeded): 0+1 < 2 -> Scheduling; 2nd (pod2 too): succeeded 2 >= 2 -> Finished
    ("Group status keeps pending", 3, ["pod1", "pod2"], "Running", None, "Pending", "Pending"),
    # Pending: 2 pods < minMember 3
    ("Group status convert from pending to finished", 2, ["pod1", "pod2"], "Pending", "Succeeded", "Pending",
     "Finished"),
    # 1st: Pending, 2 pods >= 2 -> Scheduling (phases not counted there); 2nd: succeeded 2 >= 2 -> Finished
    ("Group min member more than Pod number", 3, ["pod91", "pod92"], "Pending", None, "Pending", "Pending"),
    # 2 pods < 3
    ("Group status convert from running to pending", 4, ["pod101", "pod102"], "Pending", None, "Running", "Pending"),
    # Running: 2 pods < minMember 4 -> Pending; then Pending, 2 < 4 stays
]


@pytest.mark.parametrize(("min_member", "pods", "phase", "next_phase", "previous", "expected"),
                         [c[1:] for c in UPSTREAM], ids=[c[0] for c in UPSTREAM])
def test_upstream_run(min_member: int, pods: list[str], phase: str, next_phase: str | None, previous: str,
                      expected: str) -> None:
    status = _upstream_run(min_member=min_member, pods=pods, phase=phase, next_phase=next_phase, previous=previous)
    assert status["phase"] == expected
    assert status["scheduleStartTime"] == NOW_TEXT  # set before the first reconcile: kept


def test_upstream_group_should_not_enqueue_created_too_long() -> None:
    # scheduleStartTime (now) - creationTimestamp (now - 72 h) = 72 h > 48 h, Pending, running 0:
    # every reconcile is held (None) and the phase stays Pending although 2 pods >= minMember 2 run.
    assert podgroup_status(min_member=2, status={"phase": "Pending", "scheduleStartTime": NOW_TEXT},
                           members=_members(["pod1", "pod2"], "Running"), created=NOW - 72 * HOUR, now=NOW) is None
    status = _upstream_run(min_member=2, pods=["pod1", "pod2"], phase="Running", next_phase=None, previous="Pending",
                           created=NOW - 72 * HOUR)
    assert status["phase"] == "Pending"


OCCUPIED = [
    # name, ownerReferences' names, expected occupiedBy: the first pod's owners, "ns/name", sorted, joined by ","
    ("fill the Occupied of PodGroup with a single ownerReference", ("new-occupied",), "default/new-occupied"),
    ("fill the Occupied of PodGroup with multi ownerReferences", ("new-occupied-2", "new-occupied-1"),
     "default/new-occupied-1,default/new-occupied-2"),
]


@pytest.mark.parametrize(("owners", "expected"), [c[1:] for c in OCCUPIED], ids=[c[0] for c in OCCUPIED])
def test_upstream_fill_group_status_occupied(owners: tuple[str, ...], expected: str) -> None:
    # one reconcile of a Pending group with 2 pods >= minMember 2 -> Scheduling, occupiedBy filled
    status = {"occupiedBy": "test", "scheduleStartTime": NOW_TEXT, "phase": "Pending"}
    new = podgroup_status(min_member=2, status=status, members=_members(["pod1", "pod2"], "Pending", owners),
                          created=NOW, now=NOW)
    assert new is not None and new["phase"] == "Scheduling" and new["occupiedBy"] == expected


def _m(name: str, phase: str = "Pending", node: str = "", owners: tuple[str, ...] = ()) -> Member:
    return Member("team-a", name, phase, node, owners)


EARLIER = "2027-01-15T07:00:00Z"
MORE = [
    # name, minMember, status, members, expected status
    ("a new group is Pending", 3, {}, [], {"phase": "Pending"}),
    ("a status that is not an object reads as empty", 3, "broken", [_m("a")], {"phase": "Pending"}),
    # Pending -> Scheduling: vecsched writes scheduleStartTime (now); occupiedBy from the first member by name
    ("scheduling starts now", 2, {"phase": "Pending"}, [_m("a", owners=("train",)), _m("b", owners=("other",))],
     {"phase": "Scheduling", "occupiedBy": "team-a/train", "scheduleStartTime": NOW_TEXT}),
    ("a first pod without owners leaves occupiedBy unset", 2, {"phase": "Pending"}, [_m("a"), _m("b")],
     {"phase": "Scheduling", "scheduleStartTime": NOW_TEXT}),
    ("scheduleStartTime is kept when scheduling again", 2,
     {"phase": "Running", "running": 2, "scheduleStartTime": EARLIER}, [_m("a", "Running"), _m("b", "Pending")],
     {"phase": "Scheduling", "running": 1, "scheduleStartTime": EARLIER}),  # running 1 + 0 < 2
    ("a count back to 0 is dropped (omitempty)", 2, {"phase": "Running", "running": 2},
     [_m("a"), _m("b")], {"phase": "Scheduling", "scheduleStartTime": NOW_TEXT}),  # 0 < 2; no start yet: now
    ("Pending: more pods than minMember", 2, {"phase": "Pending"}, [_m("a"), _m("b"), _m("c")],
     {"phase": "Scheduling", "scheduleStartTime": NOW_TEXT}),  # 3 >= 2
    ("Pending with minMember 0 and no pods", 0, {"phase": "Pending"}, [],
     {"phase": "Scheduling", "scheduleStartTime": NOW_TEXT}),  # 0 >= 0, as upstream (an unset minMember)
    ("running counts", 3, {"phase": "Scheduling", "scheduleStartTime": EARLIER},
     [_m("a", "Running", "n1"), _m("b", "Running", "n2"), _m("c", "Succeeded", "n1"), _m("d")],
     {"phase": "Running", "running": 2, "succeeded": 1, "scheduleStartTime": EARLIER}),  # 2 + 1 >= 3
    ("one failure among too few is not Failed", 4, {"phase": "Scheduling", "scheduleStartTime": EARLIER},
     [_m("a", "Failed"), _m("b", "Running"), _m("c", "Running"), _m("d")],
     {"phase": "Scheduling", "running": 2, "failed": 1, "scheduleStartTime": EARLIER}),  # 2 < 4; 1+2+0 = 3 < 4
    ("a failure among enough is Failed", 3, {"phase": "Running", "running": 3},
     [_m("a", "Failed"), _m("b", "Running"), _m("c", "Running")],
     {"phase": "Failed", "running": 2, "failed": 1}),  # 2 < 3 -> Scheduling, then 1 != 0 and 1+2+0 >= 3
    ("Finished overrides Failed", 2, {"phase": "Running", "running": 2},
     [_m("a", "Succeeded"), _m("b", "Succeeded"), _m("c", "Failed")],
     {"phase": "Finished", "succeeded": 2, "failed": 1}),  # Running, Failed (1+0+2 >= 2), Finished (2 >= 2)
    ("members gone: back to Pending, counts updated", 3, {"phase": "Running", "running": 3},
     [_m("a", "Running"), _m("b", "Running")], {"phase": "Pending", "running": 2}),  # 2 pods < 3
    ("Unknown is reconciled as any other phase", 1, {"phase": "Unknown"}, [_m("a", "Running")],
     {"phase": "Running", "running": 1}),
    ("Finished is final", 2, {"phase": "Finished", "succeeded": 2}, [], {"phase": "Finished", "succeeded": 2}),
    ("Failed is final", 2, {"phase": "Failed", "failed": 1}, [_m("a", "Running"), _m("b", "Running")],
     {"phase": "Failed", "failed": 1}),
    # the 48-hour guard needs running == 0: with running 1 (72 h after creation) the group is reconciled
    ("the guard spares a group with a running pod", 1,
     {"phase": "Scheduling", "running": 1, "scheduleStartTime": "2027-01-18T08:00:00Z"}, [_m("a", "Running")],
     {"phase": "Running", "running": 1, "scheduleStartTime": "2027-01-18T08:00:00Z"}),
]


@pytest.mark.parametrize(("min_member", "status", "members", "expected"), [c[1:] for c in MORE],
                         ids=[c[0] for c in MORE])
def test_status(min_member: int, status: Any, members: list[Member], expected: dict[str, Any]) -> None:
    assert podgroup_status(min_member=min_member, status=status, members=members, created=NOW - HOUR,
                           now=NOW) == expected


def test_the_guard_holds_only_pending_and_scheduling_groups() -> None:
    # 72 h between creation and scheduleStartTime, running 0: Pending and Scheduling are held ...
    start = {"scheduleStartTime": NOW_TEXT}
    for phase in ("Pending", "Scheduling"):
        assert podgroup_status(min_member=1, status={**start, "phase": phase}, members=[_m("a", "Running")],
                               created=NOW - 72 * HOUR, now=NOW) is None
    # ... Running is not (1 running >= 1), nor is a group 47 h old at its start
    assert podgroup_status(min_member=1, status={**start, "phase": "Running"}, members=[_m("a", "Running")],
                           created=NOW - 72 * HOUR, now=NOW) == {**start, "phase": "Running", "running": 1}
    assert podgroup_status(min_member=1, status={**start, "phase": "Scheduling"}, members=[_m("a", "Running")],
                           created=NOW - 47 * HOUR, now=NOW) == {**start, "phase": "Running", "running": 1}


def test_status_patch_sets_changes_and_removes_with_null() -> None:
    old = normal_status({"phase": "Running", "running": 2, "occupiedBy": "ns/job", "other": "kept"})
    assert old == {"phase": "Running", "running": 2, "occupiedBy": "ns/job"}  # fields the operator does not own: out
    new = {"phase": "Scheduling", "occupiedBy": "ns/job", "failed": 1}
    assert status_patch(old, new) == {"phase": "Scheduling", "running": None, "failed": 1}
    assert status_patch(new, new) == {}


def test_normal_status_reads_wrong_types_as_absent() -> None:
    assert normal_status({"phase": 3, "running": "2", "succeeded": True, "failed": 0, "occupiedBy": ""}) == {}
    assert normal_status(None) == {}


MEMBERS = [
    # pod JSON, expected member, bound (nodeName set and not Failed)
    ({"metadata": {"name": "p", "namespace": "ns", "ownerReferences": [{"kind": "Job", "name": "train"}]},
      "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}, Member("ns", "p", "Running", "n1", ("train",)), True),
    ({"metadata": {"name": "p"}, "spec": {}, "status": {}}, Member("default", "p", "Pending", "", ()), False),
    ({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Failed"}},
     Member("default", "p", "Failed", "n1", ()), False),
    ({"metadata": {"name": "p", "ownerReferences": "x"}, "spec": "x", "status": {"phase": 7}},
     Member("default", "p", "Pending", "", ()), False),
]


@pytest.mark.parametrize(("pod", "member", "bound"), MEMBERS)
def test_member_of(pod: dict[str, Any], member: Member, bound: bool) -> None:
    assert Member.of(pod) == member and member.bound is bound
