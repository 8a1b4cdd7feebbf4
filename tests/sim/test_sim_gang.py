"""``vecsched sim`` with pod groups: the workload forms that name them, the replay that
places a group all together or not at all (and members one by one with ``:no-gang``),
the ``groups`` and ``gpus_held_by_partial_groups`` metrics, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import node, sim, write

from benchmarks.sim.loaders import open_workload
from benchmarks.sim.model import SimInputError, SimPod
from benchmarks.sim.replay import Event, RunMetrics, replay
from benchmarks.sim.sweep import prepare_pods
from benchmarks.strategies import builtin_profile
from scheduler.cli import main
from scoring.objects import NodeInfo, pod_from_json
from scoring.plugins.podgroups import POD_GROUP_LABEL, group_of, podgroup_from_json

NEW_KEYS = {"groups", "gpus_held_by_partial_groups"}


def _podgroup(name: str, size: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "t"}, "spec": {"minMember": size, **spec}}


def _member(name: str, cpu: str, group: str, size: int, *, at: float = 0.0, runs: float | None = None,
            gpus: int = 0, priority: int = 0, **spec: Any) -> SimPod:
    requests = {"cpu": cpu, "memory": "1Gi", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    pod = pod_from_json({"metadata": {"name": name, "namespace": "t", "labels": {POD_GROUP_LABEL: group}},
                         "spec": {"priority": priority,
                                  "containers": [{"name": "c", "resources": {"requests": requests}}]}})
    return SimPod(pod, at, runs, pod_group=_podgroup(group, size, **spec))


def _run(nodes: list[NodeInfo], pods: list[SimPod], *, retry: bool = False, gang: bool = True,
         preemption: bool = False, strategy: str = "FirstFit") -> tuple[RunMetrics, list[Event]]:
    events: list[Event] = []
    m = replay(nodes=nodes, pods=pods, profile=builtin_profile(strategy).build(seed=0), retry=retry, events=events,
               gang=gang, preemption=preemption)
    assert m.placed + m.failed == m.pods  # every pod is counted once, whatever happened to its group
    return m, events


# ---- the replay -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("nodes", "pods", "retry", "expected", "counts", "groups"), [
    # minMember 3, members at 0, 5 and 10: nothing is tried before the third arrives; then
    # all three (1 cpu each, 3 of 4) are placed together at t=10.
    pytest.param([node("n", "4", "8Gi")],
                 [_member("g0", "1", "g", 3, at=0), _member("g1", "1", "g", 3, at=5),
                  _member("g2", "1", "g", 3, at=10)],
                 False,
                 [(10, "place", "t/g0", "n"), (10, "place", "t/g1", "n"), (10, "place", "t/g2", "n")],
                 (3, 0, 0), (1, 1, 0), id="waits-for-min-member"),
    # Three members of 1 cpu on a node of 2: two would fit, the group needs three, so none is
    # placed and all three fail; the single pod s (2 cpu) at t=1 finds the node empty.
    pytest.param([node("n", "2", "8Gi")],
                 [_member("g0", "1", "g", 3), _member("g1", "1", "g", 3), _member("g2", "1", "g", 3),
                  sim("s", "2", "1Gi", at=1)],
                 False,
                 [(0, "fail", "t/g0", None), (0, "fail", "t/g1", None), (0, "fail", "t/g2", None),
                  (1, "place", "t/s", "n")],
                 (1, 3, 0), (1, 0, 1), id="does-not-fit-places-none"),
    # 2 + 2 cpu on 3 fails as a group at t=0; its third member (1 cpu, t=5) would fit alone,
    # but the group has failed, so it fails on arrival.
    pytest.param([node("n", "3", "8Gi")],
                 [_member("g0", "2", "g", 2), _member("g1", "2", "g", 2), _member("g2", "1", "g", 2, at=5)],
                 False,
                 [(0, "fail", "t/g0", None), (0, "fail", "t/g1", None), (5, "fail", "t/g2", None)],
                 (0, 3, 0), (1, 0, 1), id="failed-group-fails-later-members"),
    # The group (minMember 2) is placed at t=0 (2 of 4 cpu); g2 (1 cpu) at t=5 is placed on
    # its own, and g3 (3 cpu) at t=6 fails on its own (1 cpu free): the others stay.
    pytest.param([node("n", "4", "8Gi")],
                 [_member("g0", "1", "g", 2), _member("g1", "1", "g", 2), _member("g2", "1", "g", 2, at=5),
                  _member("g3", "3", "g", 2, at=6)],
                 False,
                 [(0, "place", "t/g0", "n"), (0, "place", "t/g1", "n"), (5, "place", "t/g2", "n"),
                  (6, "fail", "t/g3", None)],
                 (3, 1, 0), (1, 1, 0), id="later-members-one-by-one"),
    # minMember 3 but only two members ever arrive: they fail when the last pod of the
    # workload (s, t=7) has arrived; s is placed.
    pytest.param([node("n", "4", "8Gi")],
                 [_member("g0", "1", "g", 3), _member("g1", "1", "g", 3, at=4), sim("s", "1", "1Gi", at=7)],
                 False,
                 [(7, "place", "t/s", "n"), (7, "fail", "t/g0", None), (7, "fail", "t/g1", None)],
                 (1, 2, 0), (1, 0, 1), id="never-reaches-min-member"),
    # With retry: b fills the node (2 cpu) until t=10; the group (2 x 1 cpu) fails at t=1,
    # waits as a group and is placed together when b leaves.
    pytest.param([node("n", "2", "8Gi")],
                 [sim("b", "2", "1Gi", runs=10), _member("g0", "1", "g", 2, at=1), _member("g1", "1", "g", 2, at=1)],
                 True,
                 [(0, "place", "t/b", "n"), (1, "fail", "t/g0", None), (1, "fail", "t/g1", None),
                  (10, "depart", "t/b", "n"), (10, "place", "t/g0", "n"), (10, "place", "t/g1", "n")],
                 (3, 0, 2), (1, 1, 0), id="retry-as-a-group"),
    # With retry, members past minMember: b (3 cpu) until t=10; members of 1500m at 1, 2, 3
    # (minMember 2). t=2: two arrived, tried, fail; t=3: the third arrives, the waiting group
    # is tried again with all three, fails. t=10: g0 + g1 = 3 cpu fit, g2 does not: the group
    # is placed, and g2 fails and waits on its own -- to the end (nothing else leaves).
    pytest.param([node("n", "3", "8Gi")],
                 [sim("b", "3", "1Gi", runs=10), _member("g0", "1500m", "g", 2, at=1),
                  _member("g1", "1500m", "g", 2, at=2), _member("g2", "1500m", "g", 2, at=3)],
                 True,
                 [(0, "place", "t/b", "n"), (2, "fail", "t/g0", None), (2, "fail", "t/g1", None),
                  (3, "fail", "t/g0", None), (3, "fail", "t/g1", None), (3, "fail", "t/g2", None),
                  (10, "depart", "t/b", "n"), (10, "place", "t/g0", "n"), (10, "place", "t/g1", "n"),
                  (10, "fail", "t/g2", None)],
                 (3, 1, 2), (1, 1, 0), id="retry-members-past-min-member"),
])
def test_groups_are_placed_together(nodes: list[NodeInfo], pods: list[SimPod], retry: bool, expected: list[Event],
                                    counts: tuple[int, int, int], groups: tuple[int, int, int]) -> None:
    m, events = _run(nodes, pods, retry=retry)
    assert events == expected
    assert (m.placed, m.failed, m.retried_placed) == counts
    assert m.groups == dict(zip(("total", "placed", "failed"), groups))
    # Nothing is held by a group short of minMember: members are placed only with their group.
    assert m.gpus_held_by_partial_groups == 0.0


# Two nodes of 4 GPUs (8 in all). Groups a and b of three 2-GPU members each (minMember 3),
# arriving interleaved a0 b0 a1 b1 a2 b2 at t=0.
#   together: a is tried when a2 arrives: 3 x 2 = 6 of 8 GPUs fit (FirstFit: a0, a1 on g0,
#             a2 on g1); b is tried when b2 arrives: 2 GPUs free < 6, none of b is placed.
#             Pods placed 3, failed 3; groups placed 1, failed 1; GPUs held by partial groups 0.
#   one by one: a0 b0 -> g0, a1 b1 -> g1 (8 of 8 GPUs), a2 and b2 fit nowhere. Each group has
#             2 of its 3 members on nodes and neither can run: pods placed 4, failed 2; groups
#             placed 0, failed 2; GPUs held by partial groups 2 x 2 x 2 = 8, all of them.
GPU_NODES = [node(n, "16", "64Gi", extra={"nvidia.com/gpu": "4"}) for n in ("g0", "g1")]
GPU_PODS = [_member(f"{g}{i}", "1", g, 3, gpus=2) for i in range(3) for g in "ab"]


@pytest.mark.parametrize(("gang", "nodes_of", "counts", "groups", "held", "alloc_gpu"), [
    pytest.param(True, {"t/a0": "g0", "t/a1": "g0", "t/a2": "g1"}, (3, 3), (2, 1, 1), 0.0, 75.0, id="together"),
    pytest.param(False, {"t/a0": "g0", "t/b0": "g0", "t/a1": "g1", "t/b1": "g1"}, (4, 2), (2, 0, 2), 8.0, 100.0,
                 id="one-by-one"),
])
def test_one_by_one_strands_gpus(gang: bool, nodes_of: dict[str, str], counts: tuple[int, int],
                                 groups: tuple[int, int, int], held: float, alloc_gpu: float) -> None:
    m, events = _run(GPU_NODES, GPU_PODS, gang=gang)
    assert {key: n for _, kind, key, n in events if kind == "place"} == nodes_of
    assert (m.placed, m.failed) == counts
    assert m.groups == dict(zip(("total", "placed", "failed"), groups))
    assert m.gpus_held_by_partial_groups == held
    # 6 or 8 of 8 GPUs allocated (the lab's milli-GPU resource, and nvidia.com/gpu itself).
    assert m.alloc_ratio["gpu"] == m.alloc_ratio["nvidia.com/gpu"] == alloc_gpu


def test_held_gpus_follow_the_table() -> None:
    # One by one, a group that does reach minMember holds nothing: a0, a1 (minMember 2, 2 GPUs
    # each) fill g0; b0 (minMember 2) goes to g1, b1 arrives after a0 left at t=5 and takes
    # its place on g0: both groups complete, 0 held. Drop b1 and b0 alone is held: 2 GPUs.
    both = [_member("a0", "1", "a", 2, gpus=2, runs=5), _member("a1", "1", "a", 2, gpus=2),
            _member("b0", "1", "b", 2, gpus=2, at=1), _member("b1", "1", "b", 2, gpus=2, at=6)]
    m, events = _run(GPU_NODES, both, gang=False)
    assert (6, "place", "t/b1", "g0") in events
    assert m.groups == {"total": 2, "placed": 2, "failed": 0} and m.gpus_held_by_partial_groups == 0.0
    m, _ = _run(GPU_NODES, both[:3] + [sim("s", "1", "1Gi", at=6)], gang=False)
    assert m.groups == {"total": 2, "placed": 1, "failed": 1} and m.gpus_held_by_partial_groups == 2.0


def test_pods_without_groups_replay_as_before() -> None:
    # No groups: the same events and metrics with groups on or off, and no new keys.
    nodes = [node("n1", "4", "8Gi"), node("n2", "4", "8Gi")]
    pods = [sim("p1", "2", "2Gi", runs=3), sim("p2", "3", "2Gi", at=1), sim("p3", "4", "4Gi", at=2),
            sim("p4", "2", "1Gi", at=4)]
    on, on_events = _run(nodes, pods, retry=True)
    off, off_events = _run(nodes, pods, retry=True, gang=False)
    assert on_events == off_events and on.groups is None and on.gpus_held_by_partial_groups is None
    timing = ("decision_us", "seconds")
    assert {k: v for k, v in on.to_json().items() if k not in timing} == \
           {k: v for k, v in off.to_json().items() if k not in timing}
    assert not NEW_KEYS & set(on.to_json())


def test_group_members_never_preempt() -> None:
    # Two nodes of 2 cpu full of four low pods (1 cpu, priority 1). At t=5 a group of two
    # high pods (2 cpu, priority 100, minMember 2) fits nowhere: it fails and evicts nobody.
    # At t=6 a single high pod (2 cpu) evicts the two low pods of one node and takes it.
    lows = [SimPod(pod_from_json({"metadata": {"name": f"low{i}", "namespace": "t"},
                                  "spec": {"priority": 1, "containers": [{"name": "c", "resources": {
                                      "requests": {"cpu": "1", "memory": "1Gi"}}}]}})) for i in range(4)]
    high = SimPod(pod_from_json({"metadata": {"name": "h", "namespace": "t"},
                                 "spec": {"priority": 100, "containers": [{"name": "c", "resources": {
                                     "requests": {"cpu": "2", "memory": "1Gi"}}}]}}), 6.0)
    gang = [_member(f"g{i}", "2", "g", 2, at=5, priority=100) for i in range(2)]
    m, events = _run([node("n1", "2", "8Gi"), node("n2", "2", "8Gi")], [*lows, *gang, high], preemption=True)
    assert [e for e in events if e[0] == 5] == [(5, "fail", "t/g0", None), (5, "fail", "t/g1", None)]
    at_6 = [(kind, n) for t, kind, _, n in events if t == 6]
    assert [kind for kind, _ in at_6] == ["evict", "evict", "place"] and len({n for _, n in at_6}) == 1
    # placed 4 low + h = 5 (the evicted low pods count as placed), failed g0 and g1.
    assert (m.placed, m.failed, m.preemptions, m.evicted) == (5, 2, 1, 2)
    assert m.groups == {"total": 1, "placed": 0, "failed": 1}


@pytest.mark.parametrize(("spec", "placed"), [
    # Two members of 1 cpu fit on the node of 4 ...
    pytest.param({}, 2, id="fits"),
    # ... but the PodGroup's minResources asks for 8 cpu: Coscheduling's PreFilter (in
    # FirstFit's profile, as in every built-in) finds a resource gap, so neither is placed.
    pytest.param({"minResources": {"cpu": "8"}}, 0, id="min-resources-gap"),
])
def test_the_strategy_profile_judges_the_group(spec: dict[str, Any], placed: int) -> None:
    m, _ = _run([node("n", "4", "8Gi")], [_member(f"g{i}", "1", "g", 2, **spec) for i in range(2)])
    assert m.placed == placed


def test_inflated_clones_join_their_group() -> None:
    # Inflating a 2-GPU member to 2x of 8 GPUs adds seven clones (2 + 7 x 2 = 16), all members of a.
    pods = prepare_pods(GPU_PODS[:1], seed=0, inflate=2.0, primary="gpu", capacity={"gpu": 8000})
    assert len(pods) == 8 and {group_of(p.pod) for p in pods} == {"t/a"}
    assert all(p.pod_group is GPU_PODS[0].pod_group for p in pods)


# ---- workload forms ---------------------------------------------------------------------------------

_ANNOTATED = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: t, annotations: {{vecsched.io/pod-group: g{size}}}}}
spec: {{containers: [{{name: c, resources: {{requests: {{cpu: "1", memory: 1Gi}}}}}}]}}
"""
_LABELLED = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: t, labels: {{scheduling.x-k8s.io/pod-group: g}}}}
spec: {{containers: [{{name: c, resources: {{requests: {{cpu: "1", memory: 1Gi}}}}}}]}}
"""
_SINGLE = """\
apiVersion: v1
kind: Pod
metadata: {name: s, namespace: t}
spec: {containers: [{name: c, resources: {requests: {cpu: "1", memory: 1Gi}}}]}
"""
_PODGROUP = """\
apiVersion: scheduling.x-k8s.io/v1alpha1
kind: PodGroup
metadata: {name: g, namespace: t}
spec: {minMember: 2}
"""


@pytest.mark.parametrize(("name", "text", "namespace"), [
    # vecsched's annotations; the size on one member only.
    pytest.param("w.yaml", "---\n".join([
        _ANNOTATED.format(name="a", size=", vecsched.io/pod-group-min-member: '2'"),
        _ANNOTATED.format(name="b", size=""), _SINGLE]), "t", id="annotations"),
    # scheduler-plugins' label and PodGroup.
    pytest.param("w.yaml", "---\n".join([_PODGROUP, _LABELLED.format(name="a"), _LABELLED.format(name="b"), _SINGLE]),
                 "t", id="podgroup"),
    # CSV columns (CSV pods live in the namespace sim).
    pytest.param("w.csv", "name,cpu,memory,arrival,departure,pod_group,pod_group_min_member\n"
                          "a,1,1Gi,0,,g,2\nb,1,1Gi,0,,g,2\ns,1,1Gi,0,,,\n", "sim", id="csv"),
])
def test_workload_forms(tmp_path: Path, name: str, text: str, namespace: str) -> None:
    pods = open_workload(write(tmp_path / name, text)).pods(seed=0)
    a, b, s = pods
    for member in (a, b):
        # Every form ends as scheduler-plugins' label and a PodGroup of minMember 2.
        assert member.pod.labels[POD_GROUP_LABEL] == "g" and group_of(member.pod) == f"{namespace}/g"
        assert member.pod_group is not None
        pg = podgroup_from_json(member.pod_group)
        assert (pg.key, pg.min_member) == (f"{namespace}/g", 2)
    assert s.pod_group is None and POD_GROUP_LABEL not in s.pod.labels


_CSV = "name,cpu,memory,arrival,departure,pod_group,pod_group_min_member\n"


@pytest.mark.parametrize(("name", "text", "message"), [
    pytest.param("w.csv", _CSV + "a,1,1Gi,0,,g,2\nb,1,1Gi,0,,g,3\n",
                 "w.csv: line 3 (pod b): pod_group_min_member: 3 differs from the size 2 of group sim/g given at "
                 "{dir}/w.csv: line 2 (pod a)", id="csv-inconsistent"),
    pytest.param("w.csv", _CSV + "a,1,1Gi,0,,g,0\n",
                 "w.csv: line 2 (pod a): pod_group_min_member: expected a whole number >= 1, got '0'", id="csv-zero"),
    pytest.param("w.csv", _CSV + "a,1,1Gi,0,,g,1.5\n",
                 "w.csv: line 2 (pod a): pod_group_min_member: expected a whole number >= 1, got '1.5'",
                 id="csv-not-integer"),
    pytest.param("w.csv", _CSV + "a,1,1Gi,0,,g,\nb,1,1Gi,0,,g,\n",
                 "w.csv: line 2 (pod a): pod_group_min_member: required: no member of group sim/g gives its size",
                 id="csv-no-size"),
    pytest.param("w.csv", _CSV + "a,1,1Gi,0,,,2\n",
                 "w.csv: line 2: pod_group_min_member: the pod names no group (pod_group is empty)",
                 id="csv-size-without-group"),
    pytest.param("w.yaml", _ANNOTATED.format(name="a", size=", vecsched.io/pod-group-min-member: two"),
                 "w.yaml: pod t/a: metadata.annotations.vecsched.io/pod-group-min-member: expected a whole number "
                 ">= 1, got 'two'", id="annotation-not-integer"),
    pytest.param("w.yaml", _LABELLED.format(name="a"),
                 "w.yaml: pod t/a: metadata.annotations.vecsched.io/pod-group-min-member: required: no member of "
                 "group t/g gives its size, and the workload has no PodGroup t/g", id="label-without-podgroup"),
    pytest.param("w.yaml", "---\n".join([_PODGROUP, _ANNOTATED.format(
        name="a", size=", vecsched.io/pod-group-min-member: '3'")]),
                 "w.yaml: document 1: pod t/a: metadata.annotations.vecsched.io/pod-group-min-member: 3 differs from "
                 "the size 2 of group t/g given at {dir}/w.yaml: PodGroup t/g", id="annotation-against-podgroup"),
    pytest.param("w.yaml", _SINGLE.replace("namespace: t}", "namespace: t, annotations: "
                                           "{vecsched.io/pod-group-min-member: '2'}}"),
                 "w.yaml: pod t/s: metadata.annotations.vecsched.io/pod-group-min-member: the pod names no group "
                 "(annotation vecsched.io/pod-group or label scheduling.x-k8s.io/pod-group)",
                 id="annotation-size-without-group"),
    pytest.param("w.yaml", _LABELLED.format(name="a").replace("g}}\nspec", "g}, annotations: "
                                                                "{vecsched.io/pod-group: h}}\nspec"),
                 "w.yaml: pod t/a: metadata.annotations.vecsched.io/pod-group: names group 'h' but the label "
                 "scheduling.x-k8s.io/pod-group names 'g'", id="label-and-annotation-differ"),
    pytest.param("w.yaml", _PODGROUP.replace("minMember: 2", "minMember: 0"),
                 "w.yaml: PodGroup t/g: spec.minMember: expected a whole number >= 1, got 0", id="podgroup-zero"),
    pytest.param("w.yaml", _PODGROUP.replace("x-k8s.io/v1alpha1", "volcano.sh/v1beta1"),
                 "w.yaml: PodGroup t/g: apiVersion: expected scheduling.x-k8s.io/v1alpha1, got "
                 "'scheduling.volcano.sh/v1beta1'", id="podgroup-volcano"),
    pytest.param("w.yaml", "---\n".join([_PODGROUP, _PODGROUP]),
                 "w.yaml: document 1: PodGroup t/g: metadata.name: duplicate PodGroup", id="podgroup-duplicate"),
])
def test_bad_groups_one_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(SimInputError) as err:
        open_workload(write(tmp_path / name, text))
    assert str(err.value) == f"{tmp_path}/" + message.format(dir=tmp_path)


# ---- the command ----------------------------------------------------------------------------------


def test_command_compares_together_and_one_by_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GPU_PODS as a CSV (the gpu column is nvidia.com/gpu): the numbers of test_one_by_one_strands_gpus.
    cluster = write(tmp_path / "cluster.yaml", "- {count: 2, name: g, cpu: 16, memory: 64Gi, "
                                               "resources: {nvidia.com/gpu: 4}}\n")
    rows = "".join(f"{g}{i},1,1Gi,0,,2,{g},3\n" for i in range(3) for g in "ab")
    workload = write(tmp_path / "w.csv", "name,cpu,memory,arrival,departure,gpu,pod_group,pod_group_min_member\n"
                     + rows)
    code = main(["sim", "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit,FirstFit:no-gang",
                 "--jobs", "1", "--no-plots", "--out", str(tmp_path / "o"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    strategies = json.loads(out)["strategies"]
    together, one_by_one = strategies["FirstFit"], strategies["FirstFit:no-gang"]
    zero = {"mean": 0.0, "std": 0.0}
    assert together["placed"] == {"mean": 3.0, "std": 0.0} and one_by_one["placed"] == {"mean": 4.0, "std": 0.0}
    assert together["groups"] == {"total": {"mean": 2.0, "std": 0.0}, "placed": {"mean": 1.0, "std": 0.0},
                                  "failed": {"mean": 1.0, "std": 0.0}}
    assert one_by_one["groups"] == {"total": {"mean": 2.0, "std": 0.0}, "placed": zero,
                                    "failed": {"mean": 2.0, "std": 0.0}}
    assert together["gpus_held_by_partial_groups"] == zero
    assert one_by_one["gpus_held_by_partial_groups"] == {"mean": 8.0, "std": 0.0}
    # The table (on stderr with --json) and the CSV gain the group columns.
    header = err.splitlines()[-4]
    assert "groups placed" in header and "partial-group GPUs" in header
    csv_rows = (tmp_path / "o" / "runs.csv").read_text().splitlines()
    assert csv_rows[0].endswith(",groups_total,groups_placed,groups_failed,gpus_held_by_partial_groups")
    assert csv_rows[1].endswith(",2,1,1,0.0") and csv_rows[2].endswith(",2,0,2,8.0")


def test_command_without_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A workload without groups: no new keys, and a note that :no-gang changes nothing.
    cluster = write(tmp_path / "cluster.yaml", "- {count: 1, cpu: 4, memory: 8Gi}\n")
    workload = write(tmp_path / "w.csv", "name,cpu,memory,arrival,departure\na,1,1Gi,0,\n")
    code = main(["sim", "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit,FirstFit:no-gang",
                 "--jobs", "1", "--no-plots", "--out", str(tmp_path / "o"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "note: the workload has no pod groups; FirstFit:no-gang replays as FirstFit" in err
    for s in json.loads(out)["strategies"].values():
        assert not NEW_KEYS & set(s) and s["placed"] == {"mean": 1.0, "std": 0.0}
    assert "groups" not in (tmp_path / "o" / "runs.csv").read_text()


@pytest.mark.parametrize(("strategies", "workload", "message"), [
    pytest.param("FirstFit:no-gang,FirstFit:no-gang", "name,cpu,memory,arrival,departure\na,1,1Gi,0,\n",
                 "strategy 'FirstFit:no-gang' is listed twice", id="listed-twice"),
    pytest.param("Tetris:no-gang", "name,cpu,memory,arrival,departure\na,1,1Gi,0,\n",
                 "unknown strategy 'Tetris'", id="unknown-base"),
    pytest.param("FirstFit", _CSV + "a,1,1Gi,0,,g,x\n",
                 "w.csv: line 2 (pod a): pod_group_min_member: expected a whole number >= 1, got 'x'", id="bad-size"),
])
def test_command_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], strategies: str, workload: str,
                           message: str) -> None:
    cluster = write(tmp_path / "cluster.yaml", "- {count: 1, cpu: 4, memory: 8Gi}\n")
    code = main(["sim", "--cluster", cluster, "--workload", write(tmp_path / "w.csv", workload),
                 "--strategies", strategies, "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err
