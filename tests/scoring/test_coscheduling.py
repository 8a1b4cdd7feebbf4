"""Coscheduling: scheduler-plugins' cases, ported.

From pkg/coscheduling/coscheduling_test.go: TestPodGroupBackoffTime, TestLess, TestPermit,
TestLessAfterScheduleFailure, TestPostFilter, TestPostFilterRejectThreshold; from
pkg/coscheduling/core/core_test.go: TestPreFilter, TestPermit, TestCheckClusterResource,
TestMarkAndClearPodGroupScheduleFailure; and ValidateCoschedulingArgs with the defaults of
apis/config/v1/defaults.go.

Upstream builds ``st.MakeNode().Capacity(...)`` (32 pods unless it says) and
``st.MakePod()`` objects and hands them to a PodGroupManager through a fake client, a
fake snapshot lister and a pod informer. Here they are JSON read by ``node_from_json`` /
``pod_from_json`` into a NodeTable, PodGroups are applied to ``PodGroups.of(table)``,
every pod upstream adds to the informer is ``observe``d, and a pod with ``spec.nodeName``
is placed on its node with ``table.add_pod``. Upstream's ``time.Now()`` is NOW on a fake
wall clock, which a test steps.

Where vecsched models a thing differently, the cases test vecsched's documented behaviour:
- upstream's assignedPodsByPG (pods seen bound by the informer, plus every pod that went
  through Permit) is, in vecsched, the group's members placed in the table -- bound or
  assumed. Permit runs once the pod is assumed, so a pod reaching Permit is in the table:
  the cases place it there first, as the scheduling cycle does;
- upstream's PostFilter answers "can not find pod group" for a pod without the group
  label, which would end every plain pod's FailedScheduling message; vecsched's says
  nothing for such a pod (and still answers "can not find pod group" for a pod whose
  label names a PodGroup that does not exist);
- upstream prints the resource gap as Go prints a ``map[ResourceName]Quantity`` (the
  Quantity structs' fields); vecsched prints the quantities (``map[cpu:2]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from scheduler.config import API_VERSION, ConfigError, parse_config
from scoring.args import ArgsError
from scoring.framework import (PERMIT_REJECT, PERMIT_SUCCESS, PERMIT_WAIT, CycleState, Profile, WaitingPod,
                               WaitingPods)
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.coscheduling import (NAME, PODS_TO_ACTIVATE, Coscheduling, CoschedulingArgs, go_duration,
                                          parse_args, resource_gap)
from scoring.plugins.podgroups import POD_GROUP_LABEL, PodGroups
from scoring.table import NodeTable

NOW = 1_700_000_000.0
"""Upstream's ``time.Now()``: 2023-11-14T22:13:20Z, a whole second (creationTimestamp has no fraction)."""
LOW, HIGH = 10, 100
REJECTED = "PodGroup ns/pg1 gets rejected due to Pod p is unschedulable even after PostFilter"


# ---- builders, shaped like upstream's st.MakeNode() / st.MakePod() / tu.MakePodGroup() ----------


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_node(name: str, cpu: str = "4", *, pods: str = "32") -> NodeInfo:
    res = {"cpu": cpu, "pods": pods}
    return node_from_json({"metadata": {"name": name}, "status": {"capacity": res, "allocatable": res}})


def make_pod(name: str, *, ns: str = "ns", group: str = "", node: str = "", priority: int | None = None,
             cpu: str | None = None, gated: bool = False) -> PodInfo:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": name}
    if group:
        meta["labels"] = {POD_GROUP_LABEL: group}
    container: dict[str, Any] = {"name": "c"}
    if cpu is not None:
        container["resources"] = {"requests": {"cpu": cpu}}
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    if priority is not None:
        spec["priority"] = priority
    if gated:
        spec["schedulingGates"] = [{"name": "example-gate"}]
    return pod_from_json({"metadata": meta, "spec": spec})


def make_pg(name: str, *, ns: str = "ns", min_member: int = 0, created: float | None = None,
            min_resources: Mapping[str, str] | None = None, timeout: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if created is not None:
        meta["creationTimestamp"] = rfc3339(created)
    spec: dict[str, Any] = {"minMember": min_member}
    if min_resources is not None:
        spec["minResources"] = dict(min_resources)
    if timeout is not None:
        spec["scheduleTimeoutSeconds"] = timeout
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": meta, "spec": spec}


@dataclass
class Cluster:
    table: NodeTable
    groups: PodGroups
    now: list[float]


def cluster(nodes: Sequence[NodeInfo] = (), *, pgs: Sequence[Mapping[str, Any]] = (),
            pods: Sequence[PodInfo] = ()) -> Cluster:
    """Nodes in the table, PodGroups applied, every pod observed (as the informer has it)
    and placed on its ``spec.nodeName``."""
    table = NodeTable(capacity=4)
    for n in nodes:
        table.set_node(n)
    groups = PodGroups.of(table)
    now = [NOW]
    groups.clock = lambda: now[0]
    for pg in pgs:
        groups.apply(pg)
    for p in pods:
        groups.observe(p)
        if p.node_name:
            table.add_pod(p, p.node_name)
    return Cluster(table, groups, now)


@dataclass
class FakeWaitingPod:
    """A pod held at Permit; records what plugins do to it."""

    pod: PodInfo
    node: str
    calls: list[tuple[str, ...]]

    def allow(self, plugin: str) -> None:
        self.calls.append(("allow", self.pod.key, plugin))

    def reject(self, plugin: str, message: str) -> None:
        self.calls.append(("reject", self.pod.key, plugin, message))


@dataclass
class FakeWaitingPods:
    """The WaitingPods protocol over a list, recording allow/reject calls in order."""

    pods: list[FakeWaitingPod] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, pod: PodInfo, node: str = "node") -> None:
        self.pods.append(FakeWaitingPod(pod, node, self.calls))

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(list(self.pods))

    def get(self, key: str) -> WaitingPod | None:
        return next((w for w in self.pods if w.pod.key == key), None)


_w: type[WaitingPods] = FakeWaitingPods


def profile_with(plugin: Coscheduling, waiting: WaitingPods) -> Profile:
    profile = Profile(name="t", prefilters=[plugin], filters=[], scorers=[], postfilters=[plugin],
                      permits=[plugin], reservers=[plugin])
    profile.waiting = waiting
    return profile


# ---- coscheduling_test.go: TestPodGroupBackoffTime --------------------------------------------


def test_pod_group_backoff_time() -> None:
    """Upstream's "prevent pod falling into infinite scheduling loop": Permit of pod1 waits
    and asks for pod2 and pod3; PostFilter of pod2 rejects the group and backs it off;
    PreFilter of pod3 is then refused, unresolvably, while the backoff holds."""
    pods = [make_pod(f"pod{i}", group="pg1") for i in (1, 2, 3)]
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=3)], pods=pods)
    # Upstream's plugin: scheduleTimeout 10s, pgBackoff 1s, pgRejectThreshold 0.1.
    plugin = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=10, pod_group_backoff_seconds=1,
                                           pod_group_reject_percentage=10))
    waiting = FakeWaitingPods()
    profile = profile_with(plugin, waiting)

    c.table.add_pod(pods[0], "node")  # pod1 is assumed when Permit runs
    state: CycleState = {}
    got = plugin.permit(pods[0], c.table, "node", state, waiting)
    # 1 assigned < minMember 3: Wait, for the plugin's 10 s (the group sets no timeout);
    # the first member to wait asks for its pending siblings.
    assert (got.status, got.timeout) == (PERMIT_WAIT, 10.0)
    assert state[PODS_TO_ACTIVATE] == {"ns/pod2", "ns/pod3"}
    waiting.add(pods[0])

    post = plugin.postfilter(pods[1], c.table, {}, [], profile)
    # unassigned (3 - 1) / 3 = .67 > .1: the group is rejected, its waiting pod1 with it;
    # 3 pods carry the label >= minMember 3, so the group is backed off for 1 s.
    assert post.message == "PodGroup ns/pg1 gets rejected due to Pod pod2 is unschedulable even after PostFilter"
    assert waiting.calls == [("reject", "ns/pod1", NAME, "optimistic rejection in PostFilter")]
    assert c.groups.backoff_until == {"ns/pg1": NOW + 1}

    # UnschedulableAndUnresolvable: the framework's reason is unresolvable (no preemption).
    feasible, reasons = profile.run_filters(pods[2], c.table, {})
    assert not feasible.any()
    assert [(r.message, r.unresolvable) for r in reasons] == [("podGroup ns/pg1 failed recently", True)]

    # A member tried again while the group is backed off fails PreFilter and reaches
    # PostFilter, which rejects the group again -- but, as upstream's go-cache Add, does
    # not extend the backoff (else members retrying would keep their group out for ever).
    c.now[0] = NOW + 0.9
    decision = profile.schedule(pods[2], c.table)
    assert decision.node is None
    assert decision.message == ("0/1 nodes are available: podGroup ns/pg1 failed recently. "
                                "PodGroup ns/pg1 gets rejected due to Pod pod3 is unschedulable even after PostFilter")
    assert c.groups.backoff_until == {"ns/pg1": NOW + 1}
    c.now[0] = NOW + 1  # go-cache: an entry expires once the clock is past it, not at it
    assert plugin.prefilter(pods[2], c.table, {}) == "podGroup ns/pg1 failed recently"
    c.now[0] = NOW + 1.5
    assert plugin.prefilter(pods[2], c.table, {}) is None


def test_backoff_only_when_configured_and_the_group_is_complete() -> None:
    # Upstream backs a group off only when pgBackoff is set and at least minMember pods
    # carry the label (a group still being created is not kept out).
    for backoff, members, want in ((0, 3, {}), (5, 2, {}), (5, 3, {"ns/pg1": NOW + 5})):
        pods = [make_pod(f"pod{i}", group="pg1") for i in range(1, members + 1)]
        c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=3)], pods=pods)
        plugin = Coscheduling(CoschedulingArgs(pod_group_backoff_seconds=backoff))
        plugin.postfilter(pods[0], c.table, {}, [], profile_with(plugin, FakeWaitingPods()))
        assert c.groups.backoff_until == want, (backoff, members)


# ---- coscheduling_test.go: TestLess and TestLessAfterScheduleFailure --------------------------


def queued(name: str, ns: str, priority: int, group: str = "") -> PodInfo:
    return make_pod(name, ns=ns, priority=priority, group=group)


@pytest.mark.parametrize(
    ("p1", "t1", "p2", "t2", "pgs", "want"),
    [
        # "p1.priority less than p2.priority": 10 < 100 -> p2 first.
        (queued("p1", "ns1", LOW), None, queued("p2", "ns2", HIGH), None, [], False),
        # "p1.priority greater than p2.priority".
        (queued("p1", "ns1", HIGH), None, queued("p2", "ns2", LOW), None, [], True),
        # "equal priority. p1 is added to schedulingQ earlier than p2": now+1 < now+2.
        (queued("p1", "ns1", HIGH), 1, queued("p2", "ns2", HIGH), 2, [], True),
        # "equal priority. p2 is added to schedulingQ earlier than p1".
        (queued("p1", "ns1", HIGH), 2, queued("p2", "ns2", HIGH), 1, [], False),
        # "p1.priority less than p2.priority, p1 belongs to pg1": priority decides.
        (queued("p1", "ns1", LOW, "pg1"), None, queued("p2", "ns2", HIGH), None,
         [make_pg("pg1", ns="ns1")], False),
        # "p1.priority greater than p2.priority, p1 belongs to pg1".
        (queued("p1", "ns1", HIGH, "pg1"), None, queued("p2", "ns2", LOW), None,
         [make_pg("pg1", ns="ns1")], True),
        # "equal priority. p1 is added to schedulingQ earlier than p2, p1 belongs to pg1":
        # p1 takes pg1's creation now+1, p2 (no group) its own now+2.
        (queued("p1", "ns1", HIGH, "pg1"), 1, queued("p2", "ns2", HIGH), 2,
         [make_pg("pg1", ns="ns1", created=NOW + 1)], True),
        # "equal priority. p2 is added to schedulingQ earlier than p1, p1 belongs to pg1":
        # pg1 created now+2 > p2's now+1.
        (queued("p1", "ns1", HIGH, "pg1"), 2, queued("p2", "ns2", HIGH), 1,
         [make_pg("pg1", ns="ns1", created=NOW + 2)], False),
        # "p1.priority less than p2.priority, p1 belongs to pg1 and p2 belongs to pg2".
        (queued("p1", "ns1", LOW, "pg1"), None, queued("p2", "ns2", HIGH, "pg2"), None,
         [make_pg("pg1", ns="ns1", created=NOW + 1), make_pg("pg2", ns="ns2", created=NOW + 2)], False),
        # "p1.priority greater than p2.priority, p1 belongs to pg1 and and p2 belongs to pg2"
        # (p2's label names pg1 in ns2, which does not exist; priority decides anyway).
        (queued("p1", "ns1", HIGH, "pg1"), None, queued("p2", "ns2", LOW, "pg1"), None,
         [make_pg("pg1", ns="ns1", created=NOW + 1), make_pg("pg2", ns="ns2", created=NOW + 2)], True),
        # "equal priority. p1 is added to schedulingQ earlier than p2, p1 belongs to pg1 and
        # p2 belongs to pg2": pg1 created now+1 < pg2 now+2.
        (queued("p1", "ns1", HIGH, "pg1"), 1, queued("p2", "ns2", HIGH, "pg2"), 2,
         [make_pg("pg1", ns="ns1", created=NOW + 1), make_pg("pg2", ns="ns2", created=NOW + 2)], True),
        # "equal priority. p2 is added to schedulingQ earlier than p1, p1 belongs to pg2 and
        # p2 belongs to pg1": p1's priority is 10 < 100, which decides.
        (queued("p1", "ns", LOW, "pg2"), 1, queued("p2", "ns", HIGH, "pg1"), 2,
         [make_pg("pg1", ns="ns", created=NOW + 1), make_pg("pg2", ns="ns", created=NOW + 2)], False),
        # "equal priority and creation time, p1 belongs pg1 and p2 belong to pg2": p1's label
        # names pg2 in ns1, which does not exist, so p1 keeps its own now+1; p2's group
        # ns2/pg2 was created now+2 -> p1 first.
        (queued("p1", "ns1", HIGH, "pg2"), 1, queued("p2", "ns2", HIGH, "pg2"), 1,
         [make_pg("pg1", ns="ns1", created=NOW + 1), make_pg("pg2", ns="ns2", created=NOW + 2)], True),
        # "equal priority and creation time, and p2 belong to pg2": p1 now+1 < pg2 now+2.
        (queued("p1", "ns1", HIGH), 1, queued("p2", "ns2", HIGH, "pg2"), 1,
         [make_pg("pg2", ns="ns2", created=NOW + 2)], True),
    ],
)
def test_less(p1: PodInfo, t1: int | None, p2: PodInfo, t2: int | None, pgs: list[dict[str, Any]],
              want: bool) -> None:
    c = cluster(pgs=pgs)
    plugin = Coscheduling()

    def key(p: PodInfo, t: int | None) -> tuple[Any, ...]:
        # Upstream's cases without an InitialAttemptTimestamp are decided by priority alone.
        ts = NOW + t if t is not None else 0.0
        return plugin.queue_key(p, c.table, timestamp=ts, first_seen=ts)

    assert (key(p1, t1) < key(p2, t2)) is want


def test_less_equal_times_fall_back_to_namespace_and_name() -> None:
    # Same priority, same group creation time: "ns/a" < "ns/b".
    c = cluster(pgs=[make_pg("pg1", created=NOW)])
    plugin = Coscheduling()
    a, b = make_pod("a", group="pg1", priority=HIGH), make_pod("b", group="pg1", priority=HIGH)
    ka = plugin.queue_key(a, c.table, timestamp=NOW + 5, first_seen=NOW + 5)
    kb = plugin.queue_key(b, c.table, timestamp=NOW + 1, first_seen=NOW + 1)
    assert ka == (-HIGH, NOW, "ns/a") and ka < kb


def test_less_after_schedule_failure() -> None:
    # pg1 created 10 s ago, pg2 5 s ago; both pods entered the queue now.
    c = cluster(pgs=[make_pg("pg1", min_member=3, created=NOW - 10), make_pg("pg2", min_member=3, created=NOW - 5)])
    plugin = Coscheduling()
    p1, p2 = make_pod("p1", group="pg1", priority=HIGH), make_pod("p2", group="pg2", priority=HIGH)

    def less(a: PodInfo, b: PodInfo) -> bool:
        return plugin.queue_key(a, c.table, timestamp=NOW, first_seen=NOW) < \
            plugin.queue_key(b, c.table, timestamp=NOW, first_seen=NOW)

    assert less(p1, p2)  # before the failure: now-10 < now-5
    c.now[0] = NOW + 3
    c.groups.mark_failure("ns/pg1")
    # pg1 now sorts by its failure, now+3 > pg2's now-5
    assert not less(p1, p2) and less(p2, p1)
    c.groups.clear_failure("ns/pg1")
    assert less(p1, p2)


def test_mark_and_clear_pod_group_schedule_failure() -> None:
    # core_test.go: GetCreationTimestamp gives the group's creation time, the failure time
    # once marked (after the creation), and the creation time again once cleared.
    created = NOW - 10
    c = cluster(pgs=[make_pg("pg1", min_member=3, created=created)])
    pod = make_pod("p1", group="pg1")
    assert c.groups.sort_time(pod, NOW) == created
    c.groups.mark_failure("ns/pg1")
    assert c.groups.sort_time(pod, NOW) == NOW > created
    c.groups.clear_failure("ns/pg1")
    assert c.groups.sort_time(pod, NOW) == created
    # A pod without a group, or whose group does not exist, keeps its own time.
    assert c.groups.sort_time(make_pod("q"), NOW + 7) == NOW + 7
    assert c.groups.sort_time(make_pod("q", group="nope"), NOW + 7) == NOW + 7


# ---- Permit: coscheduling_test.go TestPermit and core_test.go TestPermit ----------------------


@pytest.mark.parametrize(
    ("pod", "existing", "pgs", "want", "message"),
    [
        # coscheduling_test "pods do not belong to any podGroup"; core "PodGroupNotSpecified".
        (make_pod("p"), [], [make_pg("pg1", min_member=1), make_pg("pg2", min_member=2)], PERMIT_SUCCESS, ""),
        # coscheduling_test "pods belong to a pg1, but quorum not satisfied" (the label says
        # pg2, minMember 2): 1 assigned (p itself) < 2.
        (make_pod("p", group="pg2"), [], [make_pg("pg1", min_member=1), make_pg("pg2", min_member=2)],
         PERMIT_WAIT, ""),
        # coscheduling_test "pods belong to a podGroup, and quorum satisfied": 1 >= 1.
        (make_pod("p", group="pg1"), [], [make_pg("pg1", min_member=1), make_pg("pg2", min_member=2)],
         PERMIT_SUCCESS, ""),
        # core "pod specifies a non-existent pg": PodGroupNotFound -> Unschedulable.
        (make_pod("p", group="pg-non-existent"), [], [make_pg("pg1", min_member=2)], PERMIT_REJECT,
         "PodGroup not found"),
        # core "pod belongs to a pg that doesn't have quorum": 1 < 2.
        (make_pod("p", group="pg1"), [], [make_pg("pg1", min_member=2)], PERMIT_WAIT, ""),
        # core "pod belongs to a pg that have quorum satisfied": p1b bound + p1a = 2 >= 2.
        (make_pod("p1a", group="pg1"), [make_pod("p1b", group="pg1", node="node")], [make_pg("pg1", min_member=2)],
         PERMIT_SUCCESS, ""),
    ],
)
def test_permit(pod: PodInfo, existing: list[PodInfo], pgs: list[dict[str, Any]], want: str, message: str) -> None:
    c = cluster([make_node("node")], pgs=pgs, pods=[*existing, pod])
    c.table.add_pod(pod, "node")  # assumed, as when the cycle runs Permit
    got = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=10)).permit(pod, c.table, "node", {},
                                                                                FakeWaitingPods())
    assert (got.status, got.message) == (want, message)
    # Upstream's Wait carries the wait; Success and Unschedulable carry 0.
    assert got.timeout == (10.0 if want == PERMIT_WAIT else 0.0)


def test_permit_that_completes_the_quorum_allows_the_waiting_members_of_its_group_only() -> None:
    pods = [make_pod(f"a{i}", group="pg1") for i in (1, 2, 3)]
    other = make_pod("b1", group="pg2")
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=3), make_pg("pg2", min_member=2)],
                pods=[*pods, other])
    plugin = Coscheduling()
    waiting = FakeWaitingPods()
    c.groups.mark_failure("ns/pg1")
    for p in (pods[0], pods[1], other):
        c.table.add_pod(p, "node")
        assert plugin.permit(p, c.table, "node", {}, waiting).status == PERMIT_WAIT
        waiting.add(p)
    c.table.add_pod(pods[2], "node")
    state: CycleState = {}
    # 3 of pg1 assigned >= minMember 3: Success, a1 and a2 allowed, pg2's b1 left waiting.
    assert plugin.permit(pods[2], c.table, "node", state, waiting).status == PERMIT_SUCCESS
    assert waiting.calls == [("allow", "ns/a1", NAME), ("allow", "ns/a2", NAME)]
    assert "ns/pg1" not in c.groups.last_failure  # the group's failure is forgotten
    assert PODS_TO_ACTIVATE not in state  # only the first member to wait activates siblings


def test_only_the_first_waiting_member_activates_its_siblings() -> None:
    pods = [make_pod(f"a{i}", group="pg1") for i in (1, 2, 3)]
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=3)], pods=pods)
    plugin = Coscheduling()
    states: list[CycleState] = []
    for p in pods[:2]:
        c.table.add_pod(p, "node")
        states.append({})
        assert plugin.permit(p, c.table, "node", states[-1], FakeWaitingPods()).status == PERMIT_WAIT
    # a1: 1 assigned -> activate its siblings not yet placed (a2, a3); a2: 2 assigned -> nothing.
    assert states == [{PODS_TO_ACTIVATE: {"ns/a2", "ns/a3"}}, {}]


@pytest.mark.parametrize(
    ("schedule_timeout", "permit_waiting", "want"),
    [
        (None, 10, 10.0),  # the args' permitWaitingTimeSeconds
        (5, 10, 5.0),  # the group's scheduleTimeoutSeconds first
        (None, 0, 60.0),  # args 0 and nothing set: util.DefaultWaitTime
        (0, 10, 10.0),  # GetWaitTimeDuration gives 0, which Permit ignores: the args' 10 s
        (0, 0, 0.0),  # ... and the args' 0 as it is: upstream's member times out at once
        (2000, 10, 2000.0),  # the framework, not the plugin, caps a wait at 15 minutes
    ],
)
def test_permit_wait_time(schedule_timeout: int | None, permit_waiting: int, want: float) -> None:
    pod = make_pod("p", group="pg1")
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=2, timeout=schedule_timeout)], pods=[pod])
    c.table.add_pod(pod, "node")
    got = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=permit_waiting)).permit(
        pod, c.table, "node", {}, FakeWaitingPods())
    assert (got.status, got.timeout) == (PERMIT_WAIT, want)


@pytest.mark.parametrize(("seconds", "want"), [
    (0, "0s"), (0.3, "300ms"), (1.5, "1.5s"), (10, "10s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"),
    (3661, "1h1m1s"),
])
def test_go_duration(seconds: float, want: str) -> None:
    # Go's time.Duration.String(), as "rejected due to timeout after waiting 10s" prints it.
    assert go_duration(seconds) == want


# ---- PostFilter: coscheduling_test.go TestPostFilter and TestPostFilterRejectThreshold --------


@pytest.mark.parametrize(
    ("pod", "existing", "pgs", "message"),
    [
        # "pod does not belong to any pod group": upstream says "can not find pod group";
        # vecsched says nothing for a pod without the label (see the module docstring).
        (make_pod("p"), [], [make_pg("pg1", min_member=2)], ""),
        # ... and says upstream's words when the label names a PodGroup that is not there.
        (make_pod("p", group="pg-non-existent"), [], [make_pg("pg1", min_member=2)], "can not find pod group"),
        # "enough pods assigned, do not reject all": 1 assigned >= minMember 1.
        (make_pod("p", group="pg1"), [make_pod("p1", group="pg1", node="node")], [make_pg("pg1", min_member=1)], ""),
        # "pod failed at filter phase, reject all pods": (2 - 1) / 2 = .5 > .1.
        (make_pod("p", group="pg1"), [make_pod("p1", group="pg1", node="node")], [make_pg("pg1", min_member=2)],
         REJECTED),
    ],
)
def test_post_filter(pod: PodInfo, existing: list[PodInfo], pgs: list[dict[str, Any]], message: str) -> None:
    c = cluster([make_node("node")], pgs=pgs, pods=[*existing, pod])
    plugin = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=10))
    got = plugin.postfilter(pod, c.table, {}, [], profile_with(plugin, FakeWaitingPods()))
    # Upstream's status is Unschedulable in every case: PostFilter never makes the pod fit.
    assert (got.plugin, got.success, got.message, got.nominated_node) == (NAME, False, message, None)


@pytest.mark.parametrize(
    ("percentage", "min_member", "assigned", "rejected"),
    [
        (10, 10, 9, False),  # default 10%: (10 - 9) / 10 = .1 <= .1 -> no rejection
        (10, 10, 8, True),  # (10 - 8) / 10 = .2 > .1 -> rejection
        (0, 10, 9, True),  # 0%: .1 > 0 -> always reject
        (100, 10, 0, False),  # 100%: (10 - 0) / 10 = 1 <= 1 -> never reject
        (50, 10, 6, False),  # .4 <= .5
        (50, 10, 4, True),  # .6 > .5
    ],
)
def test_post_filter_reject_threshold(percentage: int, min_member: int, assigned: int, rejected: bool) -> None:
    placed = [make_pod(f"assigned-{i}", group="pg1", node="node") for i in range(assigned)]
    pod = make_pod("p", group="pg1")
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=min_member)], pods=[*placed, pod])
    plugin = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=10, pod_group_reject_percentage=percentage))
    got = plugin.postfilter(pod, c.table, {}, [], profile_with(plugin, FakeWaitingPods()))
    assert got.message == (REJECTED if rejected else "")


def test_post_filter_rejection_rejects_waiting_members_and_forgets_the_resource_check() -> None:
    waiting_pod = make_pod("w", group="pg1")
    namesake = make_pod("w2", ns="other", group="pg1")  # same group name, another namespace
    pod = make_pod("p", group="pg1")
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=2, min_resources={"cpu": "1"})],
                pods=[waiting_pod, namesake, pod])
    c.table.add_pod(waiting_pod, "node")
    plugin = Coscheduling()
    # 2 pods of ns/pg1 >= 2; cpu 1 <= 4 free (w is the group's own), pods 2 <= 32: passes, remembered.
    assert plugin.prefilter(pod, c.table, {}) is None
    assert "ns/pg1" in c.groups.permitted_until
    waiting = FakeWaitingPods()
    waiting.add(waiting_pod)
    waiting.add(namesake)
    c.now[0] = NOW + 4
    # (2 - 1) / 2 = .5 > .1: the group is rejected.
    assert plugin.postfilter(pod, c.table, {}, [], profile_with(plugin, waiting)).message == \
        "PodGroup ns/pg1 gets rejected due to Pod p is unschedulable even after PostFilter"
    assert waiting.calls == [("reject", "ns/w", NAME, "optimistic rejection in PostFilter")]
    assert "ns/pg1" not in c.groups.permitted_until  # DeletePermittedPodGroup
    assert c.groups.last_failure == {"ns/pg1": NOW + 4}  # MarkPodGroupScheduleFailure
    assert c.groups.backoff_until == {}  # podGroupBackoffSeconds defaults to 0


# ---- Unreserve ----------------------------------------------------------------------------------


def test_unreserve_rejects_the_waiting_siblings() -> None:
    a, b, x = make_pod("a", group="pg1"), make_pod("b", group="pg1"), make_pod("x", group="pg2")
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=3), make_pg("pg2", min_member=2)],
                pods=[a, b, x])
    waiting = FakeWaitingPods()
    for p in (a, b, x):
        c.table.add_pod(p, "node")
        waiting.add(p)
    c.groups.permit("ns/pg1", 60)
    c.now[0] = NOW + 2
    Coscheduling().unreserve(a, c.table, "node", {}, waiting)
    # a itself is the pod being unreserved; b, its sibling, is rejected; pg2's x is not.
    assert waiting.calls == [("reject", "ns/b", NAME, "rejection in Unreserve")]
    assert "ns/pg1" not in c.groups.permitted_until and c.groups.last_failure == {"ns/pg1": NOW + 2}
    # A pod without a group (or whose group is gone) touches nothing.
    Coscheduling().unreserve(make_pod("plain"), c.table, "node", {}, waiting)
    Coscheduling().unreserve(make_pod("lost", group="gone"), c.table, "node", {}, waiting)
    assert len(waiting.calls) == 1


# ---- core_test.go: TestPreFilter ------------------------------------------------------------------


P1A = make_pod("p1a", group="pg1")


@pytest.mark.parametrize(
    ("pod", "pending", "pgs", "want"),
    [
        pytest.param(make_pod("p", ns="default"), [make_pod("p1", group="pg1"), make_pod("p2", group="pg2")],
                     [make_pg("pg1", min_member=1), make_pg("pg2", min_member=1)], None,
                     id="pod does not belong to any pg"),
        pytest.param(make_pod("p", group="pg-non-existent"), [], [make_pg("pg1", min_member=1)], None,
                     id="pod belongs to a non-existent pg"),
        # 1 pod (p itself) carries pg1's label < minMember 2.
        pytest.param(make_pod("p", group="pg1"), [make_pod("pg2-1", group="pg2")],
                     [make_pg("pg1", min_member=2), make_pg("pg2", min_member=2)],
                     "pre-filter pod p cannot find enough sibling pods, current pods number: 1, minMember of group: 2",
                     id="pod count less than minMember"),
        # 3 pods >= 2 (upstream's case name says "equal", its pods are three).
        pytest.param(P1A, [make_pod("p1b", group="pg1"), make_pod("p1c", group="pg1")],
                     [make_pg("pg1", min_member=2), make_pg("pg2", min_member=2)], None,
                     id="pod count equal minMember"),
        pytest.param(P1A, [make_pod("p1b", group="pg1"), make_pod("p1c", group="pg1")],
                     [make_pg("pg1", min_member=2), make_pg("pg2", min_member=2)], None,
                     id="pod count more than minMember"),
        # gap 2 - 3 = -1, one gated pod +1 -> 0, not > 0.
        pytest.param(P1A, [make_pod("p1b", group="pg1"), make_pod("p1c", group="pg1", gated=True)],
                     [make_pg("pg1", min_member=2)], None,
                     id="gated pods but still meeting quorum (minMember < replicas)"),
        # gap 3 - 3 = 0, one gated pod +1 -> 1 > 0.
        pytest.param(P1A, [make_pod("p1b", group="pg1", gated=True), make_pod("p1c", group="pg1")],
                     [make_pg("pg1", min_member=3)],
                     "pre-filter pod p1a cannot proceed due to gated pods in the same PodGroup",
                     id="gated pods push group below quorum"),
        # gap 2 - 3 = -1, two gated pods +2 -> 1 > 0.
        pytest.param(P1A, [make_pod("p1b", group="pg1", gated=True), make_pod("p1c", group="pg1", gated=True)],
                     [make_pg("pg1", min_member=2)],
                     "pre-filter pod p1a cannot proceed due to gated pods in the same PodGroup",
                     id="all sibling pods are gated"),
        # 2 nodes x 4 cpu: cpu 6 <= 4 + 4 and pods 2 <= 32 (although it'd fail in Filter).
        pytest.param(P1A, [make_pod("p1b", group="pg1"), make_pod("p1c", group="pg1")],
                     [make_pg("pg1", min_member=2, min_resources={"cpu": "6"})], None,
                     id="cluster's resource satisfies minResource"),
        # cpu 10 > 4 + 4: 10 - 8 = 2 missing.
        pytest.param(P1A, [make_pod("p1b", group="pg1"), make_pod("p1c", group="pg1")],
                     [make_pg("pg1", min_member=2, min_resources={"cpu": "10"})], "resource gap: map[cpu:2]",
                     id="cluster's resource cannot satisfy minResource"),
    ],
)
def test_pre_filter(pod: PodInfo, pending: list[PodInfo], pgs: list[dict[str, Any]], want: str | None) -> None:
    # Upstream's informer holds the pending pods and the pod itself; the nodes are empty.
    c = cluster([make_node("node-a"), make_node("node-b")], pgs=pgs, pods=[*pending, pod])
    assert Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=10)).prefilter(pod, c.table, {}) == want


def test_pre_filter_resource_check_holds_for_permit_waiting_time() -> None:
    pods = [make_pod("p1a", group="pg1"), make_pod("p1b", group="pg1")]
    c = cluster([make_node("node-a"), make_node("node-b")],
                pgs=[make_pg("pg1", min_member=2, min_resources={"cpu": "6"})], pods=pods)
    plugin = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=10))
    assert plugin.prefilter(pods[0], c.table, {}) is None  # 6 <= 8: passes, held until now+10
    # Another pod takes 4 cpu on node-a: 0 + 4 = 4 < 6 free, but the passed check holds ...
    c.table.add_pod(make_pod("big", cpu="4", node="node-a"), "node-a")
    c.now[0] = NOW + 10
    assert plugin.prefilter(pods[1], c.table, {}) is None
    # ... until the clock is past it: 6 - 4 = 2 missing.
    c.now[0] = NOW + 10.5
    assert plugin.prefilter(pods[1], c.table, {}) == "resource gap: map[cpu:2]"


def test_pre_filter_resource_check_with_no_permit_waiting_time_holds_three_seconds() -> None:
    # permitWaitingTimeSeconds 0: upstream adds the group to permittedPG with expiry 0,
    # which go-cache takes as the cache's default, 3 s.
    pods = [make_pod("p1a", group="pg1"), make_pod("p1b", group="pg1")]
    c = cluster([make_node("node-a")], pgs=[make_pg("pg1", min_member=2, min_resources={"cpu": "2"})], pods=pods)
    plugin = Coscheduling(CoschedulingArgs(permit_waiting_time_seconds=0))
    assert plugin.prefilter(pods[0], c.table, {}) is None
    assert c.groups.permitted_until == {"ns/pg1": NOW + 3}


def test_pre_filter_counts_members_as_the_api_has_them() -> None:
    # Members leave the count when deleted and when their label changes.
    pods = [make_pod("a", group="pg1"), make_pod("b", group="pg1")]
    c = cluster([make_node("node")], pgs=[make_pg("pg1", min_member=2)], pods=pods)
    plugin = Coscheduling()
    assert plugin.prefilter(pods[0], c.table, {}) is None
    c.groups.forget("ns/b")
    assert plugin.prefilter(pods[0], c.table, {}) == \
        "pre-filter pod a cannot find enough sibling pods, current pods number: 1, minMember of group: 2"
    c.groups.observe(pods[1])
    c.groups.observe(make_pod("b", group="pg2"))
    assert c.groups.counts("ns/pg1") == (1, 0)


# ---- core_test.go: TestCheckClusterResource -------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "existing", "wanted", "want"),
    [
        # "Cluster resource enough": free 3 - 2 = 1 on node-a, 3 on node-b; 1 + 3 = 4 >= 4.
        ([("node-a", "3"), ("node-b", "3")], [make_pod("p1", node="node-a", cpu="2")], {"cpu": 4000}, ""),
        # "Cluster resource not enough": free 1 + 2 = 3 < 4, 1 missing.
        ([("node-a", "3"), ("node-b", "3")],
         [make_pod("p1", node="node-a", cpu="2"), make_pod("p2", node="node-b", cpu="1")], {"cpu": 4000},
         "resource gap: map[cpu:1]"),
        # "Cluster resource enough as p1's resource needs to be excluded from minResources":
        # p1 is pg1's own, so node-a counts 3 free; 3 + 2 = 5 >= 4.
        ([("node-a", "3"), ("node-b", "3")],
         [make_pod("p1", group="pg1", node="node-a", cpu="2"), make_pod("p2", node="node-b", cpu="1")],
         {"cpu": 4000}, ""),
        # Upstream subtracts node by node and drops a resource once it is covered: 3 free on
        # node-a covers 3, though node-b is over-committed (3 - 5 = -2 free; sum 1).
        ([("node-a", "3"), ("node-b", "3")], [make_pod("p2", node="node-b", cpu="5")], {"cpu": 3000}, ""),
        # The same nodes the other way round: -2 then 3, never 3 at once; 3 - (-2 + 3) = 2.
        ([("node-a", "3"), ("node-b", "3")], [make_pod("p2", node="node-a", cpu="5")], {"cpu": 3000},
         "resource gap: map[cpu:2]"),
        # Pods count too (32 per node, the placed pod takes one): 63 free < 64, 1 missing;
        # a request of 0 is dropped at the first node.
        ([("node-a", "3"), ("node-b", "3")], [make_pod("p1", node="node-a")], {"pods": 64, "memory": 0},
         "resource gap: map[pods:1]"),
        # A resource no node has is missing whole; cpu in milli when not whole.
        ([("node-a", "3")], [], {"nvidia.com/gpu": 2, "cpu": 3500}, "resource gap: map[cpu:500m nvidia.com/gpu:2]"),
        # No node at all: everything is missing.
        ([], [], {"cpu": 1000}, "resource gap: map[cpu:1]"),
    ],
)
def test_check_cluster_resource(nodes: list[tuple[str, str]], existing: list[PodInfo], wanted: dict[str, int],
                                want: str) -> None:
    c = cluster([make_node(n, cpu) for n, cpu in nodes], pods=existing)
    assert resource_gap(c.table, wanted, "ns/pg1") == want


# ---- CoschedulingArgs: defaults.go and ValidateCoschedulingArgs ------------------------------------


def test_args_defaults() -> None:
    # SetDefaults_CoschedulingArgs: permitWaitingTimeSeconds 60, podGroupBackoffSeconds 0,
    # podGroupRejectPercentage 10.
    assert parse_args({}, "args") == CoschedulingArgs(60, 0, 10) == Coscheduling().args
    assert parse_args({"permitWaitingTimeSeconds": 0, "podGroupRejectPercentage": 100}, "args") == \
        CoschedulingArgs(0, 0, 100)  # the bounds themselves are valid


@pytest.mark.parametrize(
    ("args", "field", "problem"),
    [
        ({"permitWaitingTimeSeconds": -1}, "permitWaitingTimeSeconds", "Invalid value: -1: must be greater than 0"),
        ({"podGroupBackoffSeconds": -5}, "podGroupBackoffSeconds", "Invalid value: -5: must be greater than 0"),
        ({"podGroupRejectPercentage": -1}, "podGroupRejectPercentage", "Invalid value: -1: must be between 0 and 100"),
        ({"podGroupRejectPercentage": 101}, "podGroupRejectPercentage",
         "Invalid value: 101: must be between 0 and 100"),
        ({"permitWaitingTimeSeconds": "ten"}, "permitWaitingTimeSeconds", "expected an integer"),
        ({"scheduleTimeoutSeconds": 10}, "scheduleTimeoutSeconds", "unknown field"),
    ],
)
def test_args_validation_names_the_field(args: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ArgsError) as err:
        parse_args(args, "profiles[0].pluginConfig[0].args")
    assert err.value.path == f"profiles[0].pluginConfig[0].args.{field}"
    assert problem in err.value.problem
    # The same through a configuration file: one line naming the file and the field.
    doc = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
           "profiles": [{"pluginConfig": [{"name": "Coscheduling", "args": args}]}]}
    with pytest.raises(ConfigError) as cfg_err:
        parse_config(doc, source="sched.yaml")
    assert cfg_err.value.path == f"sched.yaml: profiles[0].pluginConfig[0].args.{field}"
    assert "\n" not in str(cfg_err.value)
