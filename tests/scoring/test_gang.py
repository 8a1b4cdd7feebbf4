"""The whole-group fit check: ``place_group`` places a PodGroup's pending members one after
another with the profile's own plugins, reports where each goes and why one does not,
and leaves the table as it found it.

The profile is vecsched's default one (kube-scheduler's default plugins and Coscheduling),
or that with GpuShare for the GPU cases; every member is ``observe``d, as the cache's pod
informer does, so that Coscheduling's PreFilter sees the group complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from scheduler.config import API_VERSION, default_config, parse_config
from scoring.framework import Profile
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.gang import GroupPlan, group_need, pending_members, place_group
from scoring.plugins.gpu_state import GPU_INDEX_ANNOTATION, GPU_MILLI_ANNOTATION, gpu_table
from scoring.plugins.podgroups import POD_GROUP_LABEL, PodGroup, PodGroups
from scoring.table import NodeTable

SELECTOR_MISS = "node(s) didn't match Pod's node affinity/selector"


def make_node(name: str, *, cpu: str = "4", gpus: int = 0, labels: Mapping[str, str] | None = None,
              taint: tuple[str, str] | None = None) -> NodeInfo:
    alloc: dict[str, Any] = {"cpu": cpu, "memory": "16Gi", "pods": "32"}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
    spec: dict[str, Any] = {}
    if taint:
        spec["taints"] = [{"key": taint[0], "value": taint[1], "effect": "NoSchedule"}]
    return node_from_json({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                           "spec": spec, "status": {"allocatable": alloc}})


def member(name: str, *, group: str = "pg", cpu: str = "3", gpu_milli: int | None = None,
           selector: Mapping[str, str] | None = None) -> PodInfo:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {POD_GROUP_LABEL: group} if group else {}}
    if gpu_milli is not None:
        meta["annotations"] = {GPU_MILLI_ANNOTATION: str(gpu_milli)}
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    if selector:
        spec["nodeSelector"] = dict(selector)
    return pod_from_json({"metadata": meta, "spec": spec})


def gang(nodes: Sequence[NodeInfo], members: Sequence[PodInfo], *, min_member: int,
         placed: Sequence[tuple[PodInfo, str]] = ()) -> tuple[NodeTable, PodGroup]:
    """A table of ``nodes``; PodGroup ns/pg; every member observed; ``placed`` bound."""
    table = NodeTable(capacity=4)
    for n in nodes:
        table.set_node(n)
    groups = PodGroups.of(table)
    pg = groups.apply({"metadata": {"name": "pg", "namespace": "ns"}, "spec": {"minMember": min_member}})
    for p in [*members, *(p for p, _ in placed)]:
        groups.observe(p)
    for p, node in placed:
        table.add_pod(p, node)
    return table, pg


def default_profile(seed: int = 0) -> Profile:
    return default_config().profiles[0].build(seed=seed)


def gpu_profile(seed: int = 0) -> Profile:
    cfg = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
                        "profiles": [{"plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]}}}]})
    return cfg.profiles[0].build(seed=seed)


def snapshot(table: NodeTable) -> tuple[Any, ...]:
    """What a plan must leave as it was: the requested matrix, the pods and their nodes,
    the group's placed members, and (when there is one) the GPU table's free milli."""
    groups = PodGroups.of(table)
    gpus = gpu_table(table).free[: table.n].copy() if any(r == "nvidia.com/gpu" for r in table.resources) else None
    return (table.requested[: table.n].copy(), {k: p.node for k, p in table.pods.items()},
            {k: set(v) for k, v in groups.placed.items()}, groups.assigned("ns/pg"), gpus)


def assert_same(before: tuple[Any, ...], after: tuple[Any, ...]) -> None:
    assert np.array_equal(before[0], after[0])
    assert before[1:4] == after[1:4]
    if before[4] is not None or after[4] is not None:
        assert np.array_equal(before[4], after[4])


def plan_of(profile: Profile, table: NodeTable, pg: PodGroup, members: Sequence[PodInfo]) -> GroupPlan:
    before = snapshot(table)
    plan = place_group(profile, pg, members, table)
    assert_same(before, snapshot(table))
    return plan


def test_a_group_that_fits_is_planned_on_distinct_nodes() -> None:
    # 3 members of 3 cpu on 3 nodes of 4 cpu: 3 + 3 > 4, so one member per node.
    members = [member(f"m{i}") for i in (1, 2, 3)]
    table, pg = gang([make_node(f"n{i}") for i in (1, 2, 3)], members, min_member=3)
    plan = plan_of(default_profile(), table, pg, members)
    assert (plan.assigned, plan.need, len(plan.placed), plan.fits, plan.failed, plan.message) == (0, 3, 3, True,
                                                                                                   None, "")
    nodes = plan.nodes()
    assert list(nodes) == ["ns/m1", "ns/m2", "ns/m3"] and sorted(nodes.values()) == ["n1", "n2", "n3"]  # type: ignore[type-var]


def test_a_group_one_member_short_does_not_fit() -> None:
    # 2 nodes of 4 cpu hold two 3-cpu members; the third finds 4 - 3 = 1 cpu on each.
    members = [member(f"m{i}") for i in (1, 2, 3)]
    table, pg = gang([make_node("n1"), make_node("n2")], members, min_member=3)
    plan = plan_of(default_profile(), table, pg, members)
    assert (len(plan.placed), plan.need, plan.fits) == (2, 3, False)
    assert sorted(d.node for d in plan.placed) == ["n1", "n2"]  # type: ignore[type-var]
    assert plan.failed is not None and plan.failed.pod.name == "m3"
    # The member's own FailedScheduling text (PostFilter plugins do not run in a plan).
    assert plan.failed.message == "0/2 nodes are available: 2 Insufficient cpu."
    assert plan.message == ("pod group ns/pg: 2 of the 3 members it needs fit at once (minMember 3, 0 already "
                            "placed); m3: 0/2 nodes are available: 2 Insufficient cpu.")
    assert plan.nodes()["ns/m3"] is None


@pytest.mark.parametrize(
    ("placed_on", "free_nodes", "want_need", "want_fits"),
    [
        # minMember 3, one member bound: 3 - 1 = 2 needed; two free nodes take m2 and m3.
        ("n1", ["n2", "n3"], 2, True),
        # the same with one free node: 1 of the 2 needed.
        ("n1", ["n2"], 2, False),
    ],
)
def test_need_accounts_for_members_already_placed(placed_on: str, free_nodes: list[str], want_need: int,
                                                  want_fits: bool) -> None:
    bound = member("m1")
    pending = [member("m2"), member("m3")]
    table, pg = gang([make_node(placed_on), *(make_node(n) for n in free_nodes)], pending, min_member=3,
                     placed=[(bound, placed_on)])
    assert group_need(pg, table) == (1, want_need)
    plan = plan_of(default_profile(), table, pg, pending)
    assert (plan.assigned, plan.need, plan.fits) == (1, want_need, want_fits)
    # n1 has 4 - 3 = 1 cpu left: the pending members go to the free nodes only.
    assert {d.node for d in plan.placed} <= set(free_nodes)
    if not want_fits:
        assert plan.message.startswith("pod group ns/pg: 1 of the 2 members it needs fit at once "
                                       "(minMember 3, 1 already placed); m3: ")


def test_need_is_at_least_one() -> None:
    # A group already at minMember still needs its next member placed to place it at all.
    pods = [member("m1"), member("m2")]
    table, pg = gang([make_node("n1"), make_node("n2")], [pods[1]], min_member=1, placed=[(pods[0], "n1")])
    assert group_need(pg, table) == (1, 1)


def test_a_member_no_node_satisfies() -> None:
    # n1 is tainted, n2 and n3 lack the label m2 selects: m2 fits nowhere.
    nodes = [make_node("n1", labels={"pool": "a"}, taint=("dedicated", "gpu")), make_node("n2"), make_node("n3")]
    members = [member("m1"), member("m2", selector={"pool": "a"}), member("m3")]
    # minMember 2: m1 and m3 make up the group without m2.
    table, pg = gang(nodes, members, min_member=2)
    plan = plan_of(default_profile(), table, pg, members)
    assert (len(plan.placed), plan.need, plan.fits, plan.message) == (2, 2, True, "")
    assert plan.failed is not None and plan.failed.pod.name == "m2"
    # Each node's reason is the first filter that rejects it: TaintToleration on n1 (its
    # label matches), NodeAffinity on n2 and n3; rendered "<count> <reason>", sorted.
    assert plan.failed.message == ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                                   f"2 {SELECTOR_MISS}.")
    # minMember 3: without m2 the group cannot be made up.
    table, pg = gang(nodes, members, min_member=3)
    plan = plan_of(default_profile(), table, pg, members)
    assert plan.fits is False and plan.message.endswith(f"m2: {plan.failed.message}")  # type: ignore[union-attr]


def test_stops_once_the_members_left_cannot_make_up_the_need() -> None:
    # need 3 of 4 members; m1 selects a label no node has. After m1: 0 placed + 3 left >= 3,
    # go on; m2 fits; m3 too big (5 cpu > 4): 1 placed + 1 left = 2 < 3 -> stop, m4 untried.
    members = [member("m1", selector={"pool": "none"}), member("m2"), member("m3", cpu="5"), member("m4")]
    table, pg = gang([make_node(f"n{i}") for i in (1, 2, 3)], members, min_member=3)
    plan = plan_of(default_profile(), table, pg, members)
    assert [(d.pod.name, d.node is not None) for d in plan.decisions] == [("m1", False), ("m2", True), ("m3", False)]
    assert plan.fits is False
    assert plan.message == ("pod group ns/pg: 1 of the 3 members it needs fit at once (minMember 3, 0 already "
                            f"placed); m1: 0/3 nodes are available: 3 {SELECTOR_MISS}.")
    # need 3 of 3 members and the first fails: 0 + 2 left < 3, nothing else is tried.
    table, pg = gang([make_node(f"n{i}") for i in (1, 2, 3)], members[:3], min_member=3)
    plan = plan_of(default_profile(), table, pg, members[:3])
    assert [d.pod.name for d in plan.decisions] == ["m1"]


def test_a_group_coscheduling_refuses_at_prefilter() -> None:
    # Only 2 of minMember 3 pods exist: Coscheduling's PreFilter refuses the first member
    # with upstream's message, and the plan stops there.
    members = [member("m1"), member("m2")]
    table, pg = gang([make_node("n1"), make_node("n2")], members, min_member=3)
    plan = plan_of(default_profile(), table, pg, members)
    assert [d.pod.name for d in plan.decisions] == ["m1"] and not plan.fits
    assert plan.failed is not None and plan.failed.message == (
        "0/2 nodes are available: pre-filter pod m1 cannot find enough sibling pods, current pods number: 2, "
        "minMember of group: 3.")


def test_gpu_members_whose_sum_exceeds_the_cluster() -> None:
    # 2 nodes with 1 GPU (1000 milli) each; 3 members of 800 milli: each alone fits
    # (800 <= 1000), together 3 x 800 = 2400 > 2000 and no GPU holds two (1600 > 1000).
    nodes = [make_node("g1", cpu="8", gpus=1), make_node("g2", cpu="8", gpus=1)]
    members = [member(f"m{i}", cpu="1", gpu_milli=800) for i in (1, 2, 3)]
    table, pg = gang(nodes, members, min_member=3)
    for m in members:
        assert default_profile().schedule(m, table).node is not None
        assert gpu_profile().schedule(m, table).node is not None
    plan = plan_of(gpu_profile(), table, pg, members)
    assert (len(plan.placed), plan.fits) == (2, False)
    assert sorted(d.node for d in plan.placed) == ["g1", "g2"]  # type: ignore[type-var]
    assert [d.annotations for d in plan.placed] == [{GPU_INDEX_ANNOTATION: "0"}] * 2
    assert plan.message == ("pod group ns/pg: 2 of the 3 members it needs fit at once (minMember 3, 0 already "
                            "placed); m3: 0/2 nodes are available: 2 Insufficient GPU.")
    # 500 milli each: 2 per GPU, 3 x 500 = 1500 <= 2000 -> fits.
    halves = [member(f"h{i}", cpu="1", gpu_milli=500) for i in (1, 2, 3)]
    table, pg = gang(nodes, halves, min_member=3)
    assert plan_of(gpu_profile(), table, pg, halves).fits


@pytest.mark.parametrize(("make_profile", "gpu_milli"), [(default_profile, None), (gpu_profile, 250)])
def test_the_plan_is_placing_the_members_one_by_one(make_profile: Any, gpu_milli: int | None) -> None:
    # 6 identical nodes, 5 small members: nodes tie on score, the seeded draw picks; the plan
    # must be the members scheduled and assumed one after another by a profile of the same seed.
    nodes = [make_node(f"n{i}", cpu="8", gpus=1) for i in range(6)]
    members = [member(f"m{i}", cpu="1", gpu_milli=gpu_milli) for i in range(5)]
    plans = set()
    for seed in (0, 1, 2):
        table, pg = gang(nodes, members, min_member=5)
        plan = plan_of(make_profile(seed), table, pg, members)
        assert plan.fits
        one_by_one = make_profile(seed)
        want: list[tuple[str | None, dict[str, str]]] = []
        for m in members:
            d = one_by_one.schedule(m, table)
            assert d.node is not None
            table.add_pod(d.assumed_pod(), d.node)
            want.append((d.node, d.annotations))
        assert [(d.node, d.annotations) for d in plan.decisions] == want
        plans.add(tuple(node for node, _ in want))
    assert len(plans) > 1  # the seed does decide among the tied nodes


def test_pending_members_order() -> None:
    pod = member("m2")
    others = [member("m3"), member("x", group="other"), member("m1"), member("m2")]
    assert [p.name for p in pending_members(pod, others)] == ["m2", "m1", "m3"]  # pod first, then by key
