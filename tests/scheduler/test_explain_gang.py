"""`vecsched explain` with PodGroups, as a user runs it: whether the pod's whole group
fits at once and where each pending member would go (`"gang"` in the JSON, a section
in the table), the pod left without a node when its group cannot be placed or its
PodGroup is missing, Coscheduling's PreFilter verdicts in the message, PodGroups read
from JSON Lists and multi-document YAML, and one-line errors with exit code 2.

Every case runs the default profile, whose scores on these nodes (no taints, no
affinity, no spreading, no images) are TaintToleration 100 (x3), NodeResourcesFit
(LeastAllocated: the mean over cpu and memory of free/allocatable x 100, each rounded
down) and NodeResourcesBalancedAllocation ((1 - |cpu fraction - memory fraction| / 2)
x 100, rounded down); the other plugins score 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main
from tests.explain_support import explain_snapshot, write_yaml

LABEL = "scheduling.x-k8s.io/pod-group"
KEYS = {"pod", "profile", "selected", "message", "nodes", "preemption", "gang", "batching"}


# ---- building the user's files ------------------------------------------------------------------


def _node(name: str, cpu: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}


def _pod(name: str, *, group: str = "train", node: str = "", phase: str = "", gated: bool = False,
         cpu: str = "2") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "w", "resources": {"requests": {"cpu": cpu, "memory": "2Gi"}}}]}
    if node:
        spec["nodeName"] = node
    if gated:
        spec["schedulingGates"] = [{"name": "example.com/quota"}]
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": "ml", "labels": {LABEL: group} if group else {}},
                           "spec": spec}
    if phase or node:
        pod["status"] = {"phase": phase or "Running"}
    return pod


def _group(name: str = "train", min_member: Any = 3, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "ml"}, "spec": {"minMember": min_member, **spec}}


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]], pod: dict[str, Any],
         *args: str) -> tuple[int, str, str]:
    # kubectl get nodes,pods,podgroups -A -o json writes one List
    return explain_snapshot(tmp_path, capsys, items, pod, *args)


def _doc(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]], pod: dict[str, Any],
         *args: str) -> dict[str, Any]:
    code, out, err = _run(tmp_path, capsys, items, pod, "-o", "json", *args)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert set(doc) == KEYS
    return doc


def _config(tmp_path: Path, **plugins: Any) -> str:
    return write_yaml(tmp_path / "c.yaml", {"apiVersion": "kubescheduler.config.k8s.io/v1",
                                        "kind": "KubeSchedulerConfiguration",
                                        "profiles": [{"schedulerName": "vecsched", "plugins": plugins}]})


WITHOUT_COSCHEDULING = {"multiPoint": {"disabled": [{"name": "Coscheduling"}]}}

# docs/explain.md's example: three nodes of 8Gi, the group ml/train of three pods of 2 CPUs
# and 2Gi each, minMember 3; train-0 is the --pod, its two siblings are pending.
NODES = [_node("node-a", "4"), _node("node-b", "8"), _node("node-c", "2")]
EXAMPLE = [_group(), *NODES, _pod("train-1"), _pod("train-2")]


# ---- a group that fits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "assigned", "need", "members"),
    [
        pytest.param(
            EXAMPLE, 0, 3, {"ml/train-0": "node-b", "ml/train-1": "node-b", "ml/train-2": "node-a"},
            # train-0 on the empty nodes: node-a cpu 2/4 free = 50, memory 6/8 = 75 -> fit 62,
            #   balanced 1 - |.5 - .25|/2 = .875 -> 87: 300 + 62 + 87 = 449; node-b cpu 6/8 = 75,
            #   memory 75 -> fit 75, balanced 100: 475; node-c cpu 0, memory 75 -> 37, 1 - |1 - .25|/2
            #   -> 62: 399. node-b.
            # train-1 sees train-0 on node-b: node-b cpu 4/8 = 50, memory 4/8 = 50 -> 50, balanced
            #   100: 450 > node-a's 449 -> node-b.
            # train-2: node-b cpu 2/8 = 25, memory 25 -> 25 + 100 = 425 < node-a 449 -> node-a.
            id="all-pending"),
        pytest.param(
            [_group(), *NODES, _pod("train-1", node="node-a"), _pod("train-2")],
            1, 2, {"ml/train-0": "node-b", "ml/train-2": "node-b"},
            # train-1 is bound to node-a: one assigned, two more needed. node-a with train-1 and
            #   the pod: cpu 0/4 free -> 0, memory 4/8 -> 50: fit 25; balanced 1 - |1 - .5|/2 = .75
            #   -> 75: 400. node-b 475, node-c 399 -> node-b.
            # train-2: node-b 450 (as above) > node-a 400 -> node-b.
            id="one-bound-already"),
        pytest.param(
            [_group(min_member=2), *NODES, _pod("train-1"), _pod("train-2")],
            0, 2, {"ml/train-0": "node-b", "ml/train-1": "node-b", "ml/train-2": "node-a"},
            # more pending pods than minMember: every one is still placed, as above
            id="more-than-minMember"),
        pytest.param(
            [_group(), *NODES, _pod("train-1"), _pod("train-2"), _pod("done", phase="Succeeded", node="node-c")],
            0, 3, {"ml/train-0": "node-b", "ml/train-1": "node-b", "ml/train-2": "node-a"},
            # a finished member is one of the group's pods but holds no node and is not assigned
            id="finished-member-not-assigned"),
        pytest.param(
            [_group(min_member=2), *NODES, _pod("train-1"), {**_pod("train-2"), "spec": {
                **_pod("train-2")["spec"], "schedulerName": "batch-scheduler"}}],
            0, 2, {"ml/train-0": "node-b", "ml/train-1": "node-b"},
            # train-2 counts for minMember but another scheduler places it: not in the plan
            id="sibling-of-another-scheduler"),
    ],
)
def test_a_group_that_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]],
                           assigned: int, need: int, members: dict[str, str]) -> None:
    doc = _doc(tmp_path, capsys, items, _pod("train-0"))
    min_member = items[0]["spec"]["minMember"]
    assert doc["gang"] == {"group": "ml/train", "minMember": min_member, "assigned": assigned, "need": need,
                           "fits": True, "members": members, "message": ""}
    # the pod's own decision is unchanged, and the plan puts the pod where that decision does
    assert (doc["selected"], doc["message"], doc["preemption"]) == (members["ml/train-0"], "", None)


def test_the_pods_own_decision_is_detailed_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc(tmp_path, capsys, EXAMPLE, _pod("train-0"))
    # the totals worked out in test_a_group_that_fits for train-0
    assert {n: v["total"] for n, v in doc["nodes"].items()} == {"node-a": 449, "node-b": 475, "node-c": 399}
    assert doc["nodes"]["node-b"]["scores"]["NodeResourcesFit"] == 75


@pytest.mark.parametrize("seed", range(4))
def test_a_tie_is_broken_the_same_way_for_the_pod_and_its_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                seed: int) -> None:
    items = [_group(min_member=2), _node("n1", "4"), _node("n2", "4"), _pod("train-1")]
    doc = _doc(tmp_path, capsys, items, _pod("train-0"), "--seed", str(seed))
    # n1 and n2 are equal (449 each, as node-a above): the seeded draw picks one for train-0,
    # in its own decision and in the plan alike; train-1 then prefers the empty other node
    # (449 > 300 + 25 + 75 = 400). Seeds 0..3 draw n2, n1, n2, n2.
    first = doc["selected"]
    other = {"n1": "n2", "n2": "n1"}[first]
    assert doc["gang"]["members"] == {"ml/train-0": first, "ml/train-1": other}


# ---- a group that does not fit --------------------------------------------------------------------


def test_one_member_short(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [_group(), _node("node-a", "4"), _node("node-c", "1"), _pod("train-1"), _pod("train-2")]
    doc = _doc(tmp_path, capsys, items, _pod("train-0"))
    # node-c (1 CPU) takes no member; node-a (4) takes train-0 and train-1, and train-2 fits nowhere
    message = ("pod group ml/train: 2 of the 3 members it needs fit at once (minMember 3, 0 already placed); "
               "train-2: 0/2 nodes are available: 2 Insufficient cpu.")
    assert doc["gang"] == {"group": "ml/train", "minMember": 3, "assigned": 0, "need": 3, "fits": False,
                           "members": {"ml/train-0": "node-a", "ml/train-1": "node-a", "ml/train-2": None},
                           "message": message}
    # train-0 alone would fit on node-a, but the scheduler binds nothing of a group that cannot be placed
    assert (doc["selected"], doc["message"], doc["preemption"]) == (None, message, None)
    assert doc["nodes"]["node-a"]["feasible"] and doc["nodes"]["node-a"]["total"] is not None
    assert doc["nodes"]["node-c"] == {"feasible": False, "reasons": ["Insufficient cpu"], "scores": {}, "total": None}


_NOT_HELPFUL = "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
_REJECTED = "PodGroup ml/train gets rejected due to Pod train-0 is unschedulable even after PostFilter"


@pytest.mark.parametrize(
    ("items", "why", "members"),
    [
        pytest.param([_group(), *NODES, _pod("train-1")],
                     "pre-filter pod train-0 cannot find enough sibling pods, current pods number: 2, "
                     "minMember of group: 3", {"ml/train-0": None, "ml/train-1": None},
                     # train-0 and train-1 carry the label: 2 < 3
                     id="two-of-three"),
        pytest.param([_group(), *NODES, _pod("train-0"), _pod("train-1")],
                     "pre-filter pod train-0 cannot find enough sibling pods, current pods number: 2, "
                     "minMember of group: 3", {"ml/train-0": None, "ml/train-1": None},
                     # the --pod is in the snapshot too, under the same key: one pod, still 2 < 3
                     id="the-pod-in-the-snapshot-counts-once"),
        pytest.param([_group(), *NODES, _pod("train-1"), _pod("train-2", gated=True)],
                     "pre-filter pod train-0 cannot proceed due to gated pods in the same PodGroup",
                     {"ml/train-0": None, "ml/train-1": None},
                     # three pods carry the label, one is scheduling-gated: 3 - 3 + 1 > 0. The gated
                     # pod is not pending for the plan: the scheduler does not place gated pods
                     id="gated-sibling"),
    ],
)
def test_min_member_not_reached(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]],
                                why: str, members: dict[str, None]) -> None:
    doc = _doc(tmp_path, capsys, items, _pod("train-0"))
    # Coscheduling's PreFilter rejects the pod outright: no node is tried (unresolvable, so
    # preemption cannot help), and its PostFilter rejects the group (0 of 3 assigned > 10%)
    assert doc["selected"] is None
    assert doc["message"] == f"0/3 nodes are available: {why}. {_NOT_HELPFUL}, {_REJECTED}"
    assert all(n == {"feasible": False, "reasons": [why], "scores": {}, "total": None} for n in doc["nodes"].values())
    # the plan stops at train-0: the one member left cannot make up the three needed
    gang = doc["gang"]
    assert (gang["fits"], gang["need"], gang["members"]) == (False, 3, members)
    assert gang["message"] == ("pod group ml/train: 0 of the 3 members it needs fit at once (minMember 3, "
                               f"0 already placed); train-0: 0/3 nodes are available: {why}.")


# ---- the PodGroup is missing, or the pod has none --------------------------------------------------


@pytest.mark.parametrize(
    ("config", "selected", "message"),
    [
        # Coscheduling's Permit rejects the pod on the node it chose; upstream reports that as
        # a fit error over that one node
        pytest.param(None, None, "0/1 nodes are available: 1 PodGroup not found.", id="default-profile"),
        # without Coscheduling nothing reads the label: the pod is placed as any other
        pytest.param(WITHOUT_COSCHEDULING, "node-b", "", id="without-coscheduling"),
    ],
)
def test_group_absent(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict[str, Any] | None,
                      selected: str | None, message: str) -> None:
    args = ("--config", _config(tmp_path, **config)) if config else ()
    doc = _doc(tmp_path, capsys, [*NODES, _pod("train-1")], _pod("train-0"), *args)
    assert (doc["selected"], doc["message"], doc["gang"], doc["preemption"]) == (selected, message, None, None)
    # the nodes are the pod's own decision: node-b scored best (475, as in the example)
    assert {n: v["total"] for n, v in doc["nodes"].items()} == {"node-a": 449, "node-b": 475, "node-c": 399}


def test_a_pod_without_a_group_is_explained_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = _pod("web", group="")
    with_groups = _doc(tmp_path, capsys, EXAMPLE, plain)
    # the same nodes with no PodGroup and no members, by a profile without Coscheduling
    before = _doc(tmp_path, capsys, NODES, plain, "--config", _config(tmp_path, **WITHOUT_COSCHEDULING))
    assert with_groups == before
    assert (with_groups["gang"], with_groups["selected"], with_groups["message"]) == (None, "node-b", "")


def test_the_documented_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # docs/explain.md shows EXAMPLE as its snapshot, train-0 as its pod, and the table this prints
    doc = (Path(__file__).resolve().parents[2] / "docs" / "explain.md").read_text()
    section = doc[doc.index("## PodGroups"):]
    blocks = section.split("```")[1::2]
    snapshot, pod = (yaml.safe_load(b.removeprefix("yaml\n")) for b in blocks if b.startswith("yaml\n"))
    assert (snapshot["items"], pod) == (EXAMPLE, _pod("train-0"))
    shown = next(b for b in blocks if b.startswith("\n$ vecsched explain --snapshot snapshot.yaml"))
    code, out, _ = _run(tmp_path, capsys, snapshot["items"], pod)
    assert code == 0
    assert out.splitlines() == shown.strip("\n").splitlines()[1:]


# ---- snapshot formats and bad input ---------------------------------------------------------------


def test_multi_document_yaml_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = tmp_path / "s.yaml"
    # one object per document, as kubectl get -o yaml objects are often concatenated
    snap.write_text(yaml.safe_dump_all(EXAMPLE))
    code = main(["explain", "--snapshot", str(snap), "--pod", write_yaml(tmp_path / "p.yaml", _pod("train-0")),
                 "-o", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out) == _doc(tmp_path, capsys, EXAMPLE, _pod("train-0"))


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param([_group(min_member="three")],
                     "s.json: items[0]: PodGroup ml/train: spec.minMember: expected a non-negative int32, got 'three'",
                     id="minMember-string"),
        pytest.param([_group(min_member=-1)],
                     "s.json: items[0]: PodGroup ml/train: spec.minMember: expected a non-negative int32, got '-1'",
                     id="minMember-negative"),
        pytest.param([_group(scheduleTimeoutSeconds="10s")],
                     "s.json: items[0]: PodGroup ml/train: spec.scheduleTimeoutSeconds: expected a non-negative "
                     "int32, got '10s'", id="timeout-string"),
        pytest.param([_group(minResources={"cpu": "lots"})],
                     "s.json: items[0]: PodGroup ml/train: spec.minResources.cpu: invalid quantity 'lots': "
                     "expected <number><suffix> such as 100m, 1.5, 2Gi or 1e3",
                     id="minResources-quantity"),
        pytest.param([{**_group(), "spec": [3]}], "s.json: items[0]: PodGroup ml/train: spec: expected a mapping",
                     id="spec-not-a-mapping"),
        pytest.param([{**_group(), "metadata": {"namespace": "ml"}}],
                     "s.json: items[0]: PodGroup ml/: metadata.name: required", id="without-name"),
        pytest.param([_group(), _group(min_member=2)],
                     "s.json: items[1]: PodGroup ml/train: metadata.name: duplicate PodGroup", id="duplicate"),
        pytest.param([{**_group(), "apiVersion": "scheduling.volcano.sh/v1beta1"}],
                     "s.json: items[0]: PodGroup ml/train: apiVersion: expected scheduling.x-k8s.io/v1alpha1, "
                     "got 'scheduling.volcano.sh/v1beta1'", id="another-api"),
    ],
)
def test_malformed_podgroup_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   items: list[dict[str, Any]], expected: str) -> None:
    code, out, err = _run(tmp_path, capsys, [*items, *NODES], _pod("train-0"))
    assert (code, out) == (2, "")
    assert err.strip() == f"vecsched explain: {tmp_path}/{expected}"
    assert "Traceback" not in err


# ---- the table view -------------------------------------------------------------------------------


def test_table_view_shows_the_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, EXAMPLE, _pod("train-0"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "pod ml/train-0  profile vecsched  selected node-b"
    assert lines[lines.index("GANG        ml/train"):] == [
        "GANG        ml/train",
        "MIN MEMBER  3 (0 assigned, 3 more needed)",
        "FITS        yes",
        "",
        "MEMBER      NODE",
        "ml/train-0  node-b",
        "ml/train-1  node-b",
        "ml/train-2  node-a",
    ]


def test_table_view_of_a_group_that_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [_group(), _node("node-a", "4"), _node("node-c", "1"), _pod("train-1"), _pod("train-2")]
    code, out, _ = _run(tmp_path, capsys, items, _pod("train-0"))
    assert code == 0
    lines = out.splitlines()
    message = ("pod group ml/train: 2 of the 3 members it needs fit at once (minMember 3, 0 already placed); "
               "train-2: 0/2 nodes are available: 2 Insufficient cpu.")
    assert lines[0] == "pod ml/train-0  profile vecsched  selected (none)"
    assert lines[lines.index("GANG        ml/train") - 2:] == [
        message,  # the pod's message is the plan's
        "",
        "GANG        ml/train",
        "MIN MEMBER  3 (0 assigned, 3 more needed)",
        "FITS        no",
        f"MESSAGE     {message}",
        "",
        "MEMBER      NODE",
        "ml/train-0  node-a",
        "ml/train-1  node-a",
        "ml/train-2  (none)",
    ]


def test_table_view_without_a_group_has_no_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, EXAMPLE, _pod("web", group=""))
    assert code == 0
    assert "GANG" not in out and "MEMBER" not in out
