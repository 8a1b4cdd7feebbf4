"""`vecsched explain` shows preemption as a user runs it: the plan in the JSON
(`"preemption"`) and in the table, PodDisruptionBudgets and PriorityClasses read
from the snapshot, nominated pods holding room, and one-line errors with exit
code 2. Upstream's TestPostFilter and TestDryRunPreemption cases
(pkg/scheduler/framework/plugins/defaultpreemption/default_preemption_test.go)
run end to end through the command as well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.explain_support import explain_snapshot, write_yaml

# Upstream's priorities (default_preemption_test.go).
LOW, MID, HIGH, VERY_HIGH = 0, 100, 1000, 10000


# ---- building the user's files ------------------------------------------------------------------


def _node(name: str, cpu: str = "2", memory: str = "8Gi", pods: str = "110",
          labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    allocatable = {k: v for k, v in (("cpu", cpu), ("memory", memory), ("pods", pods)) if v}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": allocatable}}


def _pod(name: str, cpu: str = "", memory: str = "", *, priority: int | str | None = None, node: str = "",
         ns: str = "shop", labels: dict[str, str] | None = None, start: str = "",
         nominated: str = "", **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    body: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": requests}}], **spec}
    if priority is not None:
        body["priority"] = priority
    if node:
        body["nodeName"] = node
    status: dict[str, Any] = {"phase": "Running" if node else "Pending"}
    if start:
        status["startTime"] = start
    if nominated:
        status["nominatedNodeName"] = nominated
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": body, "status": status}


def _pdb(name: str, match: dict[str, str], allowed: int, ns: str = "shop",
         disrupted: tuple[str, ...] = ()) -> dict[str, Any]:
    status: dict[str, Any] = {"disruptionsAllowed": allowed}
    if disrupted:
        status["disruptedPods"] = {p: "2026-01-01T00:00:00Z" for p in disrupted}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": match}}, "status": status}


def _class(name: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **extra}


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]], pod: dict[str, Any],
         *args: str) -> tuple[int, str, str]:
    # kubectl get nodes,pods,pdb,priorityclasses -A -o json writes one List
    return explain_snapshot(tmp_path, capsys, items, pod, *args)


def _doc(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]],
         pod: dict[str, Any], *args: str) -> dict[str, Any]:
    code, out, err = _run(tmp_path, capsys, items, pod, "-o", "json", *args)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _candidates(plan: dict[str, Any]) -> dict[str, tuple[list[str], int]]:
    """Each candidate's victims (sorted by name, as upstream's test sorts them) and PDB violations."""
    return {n: (sorted(c["victims"]), c["pdb_violations"]) for n, c in plan["candidates"].items()}


# ---- the plan: which node, which victims --------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "node", "candidates"),
    [
        pytest.param(
            [_node("n1"), _node("n2"), _pod("a", "2", priority=100, node="n1"),
             _pod("b1", "1", priority=10, node="n2"), _pod("b2", "1", priority=10, node="n2")],
            "n2", {"n1": (["shop/a"], 0), "n2": (["shop/b1", "shop/b2"], 0)},
            # each node is full (2 of 2 CPUs) and the pod asks for 2: n1 must lose a (100), n2 both
            # b (10 each). No PDBs; the lower highest victim priority wins, 10 < 100 -> n2, although
            # it evicts two pods
            id="lowest-highest-victim-priority-beats-fewer-victims"),
        pytest.param(
            [_node("n1"), _node("n2"), _pod("a", "2", priority=100, node="n1"),
             _pod("b1", "1", priority=100, node="n2"), _pod("b2", "1", priority=100, node="n2")],
            "n1", {"n1": (["shop/a"], 0), "n2": (["shop/b1", "shop/b2"], 0)},
            # highest victim priority 100 on both; sums of (priority + 2^31): n1 100 + 2^31 <
            # n2 2 x (100 + 2^31) -> n1, the fewer victims
            id="equal-highest-priority-fewest-victims"),
        pytest.param(
            [_node("n1", cpu="3"), _pod("small", "1", priority=10, node="n1"),
             _pod("big", "2", priority=20, node="n1")],
            "n1", {"n1": (["shop/big"], 0)},
            # 3 - 1 - 2 = 0 free. Without both: 3 free >= 2. Given back most important first:
            # big (20): 2 + 2 = 4 > 3, a victim; small (10): 1 + 2 = 3 <= 3, stays
            id="only-the-victims-needed"),
        pytest.param(
            [_node("n1"), _node("n2"), _pod("a", "2", priority=10, node="n1", labels={"app": "db"}),
             _pod("b", "2", priority=100, node="n2"), _pdb("db", {"app": "db"}, allowed=0)],
            "n2", {"n1": (["shop/a"], 1), "n2": (["shop/b"], 0)},
            # evicting a leaves the db budget (0 disruptions allowed) at -1: one violation on n1;
            # fewest violations comes first, 0 < 1 -> n2, despite b's higher priority (100 > 10)
            id="pdb-steers-away"),
        pytest.param(
            [_node("n1"), _node("n2"), _pod("a", "2", priority=10, node="n1", labels={"app": "db"}),
             _pod("b", "2", priority=100, node="n2"), _pdb("db", {"app": "db"}, allowed=1)],
            "n1", {"n1": (["shop/a"], 0), "n2": (["shop/b"], 0)},
            # one disruption allowed: evicting a leaves it at 0, no violation; then 10 < 100 -> n1
            id="pdb-with-room-allows"),
        pytest.param(
            [_node("n1"), _node("n2"), _pod("a", "2", priority=10, node="n1", labels={"app": "db"}),
             _pod("b", "2", priority=100, node="n2", labels={"app": "db"}), _pdb("db", {"app": "db"}, allowed=0)],
            "n1", {"n1": (["shop/a"], 1), "n2": (["shop/b"], 1)},
            # one violation on each node: a tie, so priorities decide, 10 < 100 -> n1
            id="pdb-violated-everywhere"),
        pytest.param(
            [_node("n1"), _node("n2"), _pod("a", "2", priority=10, node="n1", labels={"app": "db"}, ns="data"),
             _pod("b", "2", priority=100, node="n2"), _pdb("db", {"app": "db"}, allowed=0)],
            "n1", {"n1": (["data/a"], 0), "n2": (["shop/b"], 0)},
            # the budget lives in namespace shop, a in data: it does not cover a -> n1 (10 < 100)
            id="pdb-in-another-namespace"),
    ],
)
def test_the_plan_names_node_and_victims(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         items: list[dict[str, Any]], node: str,
                                         candidates: dict[str, tuple[list[str], int]]) -> None:
    doc = _doc(tmp_path, capsys, items, _pod("hi", "2", priority=1000))
    assert doc["selected"] is None
    assert doc["message"].endswith("Insufficient cpu.")  # preemption found a node: nothing appended
    plan = doc["preemption"]
    assert set(plan) == {"node", "victims", "candidates", "message"}
    assert (plan["node"], plan["message"]) == (node, "")
    assert sorted(plan["victims"]) == candidates[node][0]
    assert _candidates(plan) == candidates


def test_victims_are_listed_most_important_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [_node("n1", cpu="3"), _pod("c", "1", priority=5, node="n1"), _pod("a", "1", priority=50, node="n1"),
             _pod("b", "1", priority=20, node="n1")]
    plan = _doc(tmp_path, capsys, items, _pod("hi", "3", priority=1000))["preemption"]
    # all three must go (3 CPUs needed of 3); listed by priority, 50 > 20 > 5
    assert plan["victims"] == ["shop/a", "shop/b", "shop/c"]
    assert plan["candidates"]["n1"]["victims"] == ["shop/a", "shop/b", "shop/c"]


# ---- when preemption does not run, or cannot help -----------------------------------------------


def test_no_preemption_when_the_pod_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [_node("n1"), _node("n2"), _pod("a", "2", priority=10, node="n1")]
    doc = _doc(tmp_path, capsys, items, _pod("hi", "2", priority=1000))
    # n2 is empty: the pod fits there and preemption never runs
    assert (doc["selected"], doc["message"], doc["preemption"]) == ("n2", "", None)


def test_no_preemption_when_the_profile_does_not_preempt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_yaml(tmp_path / "c.yaml", {
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "vecsched",
                      "plugins": {"postFilter": {"disabled": [{"name": "DefaultPreemption"}]}}}]})
    items = [_node("n1"), _pod("a", "2", priority=10, node="n1")]
    doc = _doc(tmp_path, capsys, items, _pod("hi", "2", priority=1000), "--config", config)
    # nothing fits, but no PostFilter plugin runs: no plan, and the message has no preemption part
    assert (doc["selected"], doc["preemption"]) == (None, None)
    assert doc["message"] == "0/1 nodes are available: 1 Insufficient cpu."


_TERMINATING = {**_pod("old", "2", priority=0, node="n1"),
                "metadata": {"name": "old", "namespace": "shop", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"phase": "Running", "conditions": [
                    {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]}}


@pytest.mark.parametrize(
    ("items", "pod", "why"),
    [
        pytest.param([_node("n1"), _pod("a", "2", priority=0, node="n1")],
                     _pod("hi", "2", priority=1000, preemptionPolicy="Never"),
                     "not eligible due to preemptionPolicy=Never.", id="preemptionPolicy-Never"),
        pytest.param([_node("n1"), _pod("a", "2", priority=0, node="n1"),
                      _class("opportunist", 1000, preemptionPolicy="Never")],
                     _pod("hi", "2", priorityClassName="opportunist"),
                     # the class gives the pod both its priority and its policy, as admission does
                     "not eligible due to preemptionPolicy=Never.", id="Never-from-the-PriorityClass"),
        pytest.param([_node("n1"), _TERMINATING],
                     _pod("hi", "2", priority=1000, nominated="n1"),
                     # the pod already preempted old on n1, which is still terminating: it waits
                     "not eligible due to a terminating pod on the nominated node.", id="waiting-for-a-victim"),
    ],
)
def test_a_pod_not_eligible_gets_no_node_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      items: list[dict[str, Any]], pod: dict[str, Any],
                                                      why: str) -> None:
    doc = _doc(tmp_path, capsys, items, pod)
    assert doc["preemption"] == {"node": None, "victims": [], "candidates": {}, "message": f"preemption: {why}"}
    assert doc["message"] == f"0/1 nodes are available: 1 Insufficient cpu. preemption: {why}"


@pytest.mark.parametrize(
    ("items", "pod", "message"),
    [
        pytest.param([_node("n1"), _node("n2"), _pod("a", "2", node="n1"), _pod("b", "2", node="n2")],
                     _pod("p", "2"),
                     # no PriorityClasses and no priority anywhere: every pod has 0, none is lower
                     "0/2 nodes are available: 2 Insufficient cpu. "
                     "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
                     id="no-victims"),
        pytest.param([_node("n1", unschedulable=True), _node("n2"), _pod("a", "1", priority=0, node="n1"),
                      _pod("peer", "1", priority=1000, node="n2"), _pod("b", "1", priority=0, node="n2")],
                     _pod("hi", "2", priority=1000),
                     # n1 is cordoned (unresolvable): not helpful there; n2 without b still holds peer
                     # (1000, not lower): 2 - 1 = 1 < 2 CPUs
                     "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable. "
                     "preemption: 0/2 nodes are available: 1 Insufficient cpu, 1 Preemption is not helpful for "
                     "scheduling.", id="not-helpful"),
        pytest.param([_node("n1"), _node("n2", cpu="1"), _pod("a", "2", priority=0, node="n1"),
                      _pod("b", "1", priority=0, node="n2")],
                     _pod("hi", "3", priority=1000),
                     # 3 CPUs is more than either node has at all (2, 1): unresolvable everywhere
                     "0/2 nodes are available: 2 Insufficient cpu. "
                     "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
                     id="larger-than-any-node"),
    ],
)
def test_preemption_that_cannot_help(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]],
                                     pod: dict[str, Any], message: str) -> None:
    doc = _doc(tmp_path, capsys, items, pod)
    assert doc["message"] == message
    preemption = message[message.index("preemption: "):]
    assert doc["preemption"] == {"node": None, "victims": [], "candidates": {}, "message": preemption}


# ---- PriorityClasses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "pod", "node", "candidates"),
    [
        pytest.param(
            [_class("high", 1000), _class("batch", 600), _node("n1"), _node("n2"),
             _pod("a", "2", node="n1", priorityClassName="batch"), _pod("b", "2", priority=500, node="n2")],
            _pod("hi", "2", priorityClassName="high"), "n2", {"n1": (["shop/a"], 0), "n2": (["shop/b"], 0)},
            # hi gets 1000 from its class (without it: 0, and no victims at all); a gets 600 from
            # batch, b keeps its 500: the lower highest victim, 500 < 600 -> n2 (were a at 0: n1)
            id="priorityClassName"),
        pytest.param(
            [_class("standard", 500, globalDefault=True), _class("high", 1000), _node("n1"), _node("n2"),
             _pod("x", "2", node="n1"), _pod("y", "2", priority=100, node="n2")],
            _pod("p", "2"), "n2", {"n2": (["shop/y"], 0)},
            # no class named: the globalDefault's 500 for p and for x; x (500) is not lower than p
            # (500), y (100) is -> only n2 is a candidate
            id="globalDefault"),
        pytest.param(
            [_class("a-default", 300, globalDefault=True), _class("b-default", 200, globalDefault=True),
             _node("n1"), _pod("x", "2", priority=250, node="n1")],
            _pod("p", "2"), None, {},
            # two globalDefault classes: upstream's admission takes the lowest value, 200 < 250
            id="lowest-globalDefault"),
        pytest.param(
            [_node("n1"), _pod("x", "2", priority=1_000_000_000, node="n1")],
            _pod("p", "2", priorityClassName="system-cluster-critical"), "n1", {"n1": (["shop/x"], 0)},
            # the built-in class every cluster has, listed or not: 2,000,000,000 > 10^9
            id="system-class"),
        pytest.param(
            [_class("high", 1000), _node("n1"), _pod("x", "2", priority=100, node="n1")],
            _pod("p", "2", priority=1000, priorityClassName="high"), "n1", {"n1": (["shop/x"], 0)},
            # spec.priority equal to the class's value, as an exported pod has it: 1000 > 100
            id="spec-priority-agrees"),
        pytest.param(
            [_node("n1"), _pod("x", "2", priority=100, node="n1")],
            _pod("p", "2", priority=150, priorityClassName="exported"), "n1", {"n1": (["shop/x"], 0)},
            # a class the snapshot does not list, on a pod that carries its value: kept, 150 > 100
            id="spec-priority-of-an-unlisted-class"),
    ],
)
def test_priority_from_priority_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        items: list[dict[str, Any]], pod: dict[str, Any], node: str | None,
                                        candidates: dict[str, tuple[list[str], int]]) -> None:
    plan = _doc(tmp_path, capsys, items, pod)["preemption"]
    assert plan["node"] == node
    assert _candidates(plan) == candidates
    if node is None:
        assert plan["message"].endswith("No preemption victims found for incoming pod.")


# ---- nominated pods -------------------------------------------------------------------------------

# n1 has 2 CPUs; low (priority 0) runs there with 1. nom (priority 1000) preempted
# earlier and waits for n1 (status.nominatedNodeName), asking for 1 CPU.
_NOMINATED = [_node("n1"), _pod("low", "1", priority=0, node="n1"),
              _pod("nom", "1", priority=1000, nominated="n1")]


@pytest.mark.parametrize(
    ("items", "priority", "selected", "plan"),
    [
        pytest.param(_NOMINATED[:2], 500, "n1", None,
                     # without nom: 2 - 1 = 1 CPU free, the pod fits
                     id="no-nominated-pod"),
        pytest.param(_NOMINATED, 500, None, {"node": "n1", "victims": ["shop/low"],
                                              "candidates": {"n1": {"victims": ["shop/low"], "pdb_violations": 0}},
                                              "message": ""},
                     # nom (1000) outranks the pod (500): its 1 CPU counts, 2 - 1 - 1 = 0 free.
                     # Preemption may evict low (0) but not count nom's room: 2 - 1 (nom) = 1 >= 1
                     id="nominated-pod-holds-its-room"),
        pytest.param(_NOMINATED, 2000, "n1", None,
                     # the pod (2000) outranks nom (1000): nom's room is not held against it
                     id="outranked-nominated-pod"),
    ],
)
def test_nominated_pods_in_the_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        items: list[dict[str, Any]], priority: int, selected: str | None,
                                        plan: dict[str, Any] | None) -> None:
    doc = _doc(tmp_path, capsys, items, _pod("mid", "1", priority=priority))
    assert (doc["selected"], doc["preemption"]) == (selected, plan)


# ---- the table view -----------------------------------------------------------------------------


def test_table_view_shows_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [_node("n1"), _node("n2"), _pod("a", "2", priority=100, node="n1"),
             _pod("b1", "1", priority=10, node="n2"), _pod("b2", "1", priority=10, node="n2")]
    code, out, _ = _run(tmp_path, capsys, items, _pod("hi", "2", priority=1000))
    assert code == 0
    lines = out.splitlines()
    plan = lines[lines.index("0/2 nodes are available: 2 Insufficient cpu.") + 2:]
    assert plan == [
        "PREEMPTION  nominate n2",
        "VICTIMS     shop/b1, shop/b2",
        "CANDIDATES  2",
        "",
        "CANDIDATE  PDB VIOLATIONS  VICTIMS",
        "*n2        0               shop/b1, shop/b2",  # the chosen node first
        " n1        0               shop/a",
    ]


def test_table_view_says_why_preemption_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [_node("n1"), _pod("a", "2", priority=0, node="n1")]
    code, out, _ = _run(tmp_path, capsys, items, _pod("hi", "2", priority=1000, preemptionPolicy="Never"))
    assert code == 0
    assert out.splitlines()[-4:] == [
        "PREEMPTION  no node",
        "VICTIMS     (none)",
        "CANDIDATES  0",
        "MESSAGE     preemption: not eligible due to preemptionPolicy=Never.",
    ]


def test_table_view_without_preemption_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, [_node("n1")], _pod("p", "1"))
    assert code == 0
    assert "PREEMPTION" not in out


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "pod", "expected"),
    [
        pytest.param([_node("n1")], _pod("hi", "1", priorityClassName="gold"),
                     "p.yaml: pod shop/hi: spec.priorityClassName: no PriorityClass with name gold was found",
                     id="unknown-class-of-the-pod"),
        pytest.param([_node("n1"), _pod("a", "1", node="n1", priorityClassName="gold")], _pod("hi", "1"),
                     "s.json: items[1]: pod shop/a: spec.priorityClassName: no PriorityClass with name gold was found",
                     id="unknown-class-in-the-snapshot"),
        pytest.param([_node("n1"), {**_pdb("db", {"app": "db"}, 0), "status": {"disruptionsAllowed": "two"}}],
                     _pod("hi", "1"),
                     "s.json: items[1]: PodDisruptionBudget shop/db: status.disruptionsAllowed: "
                     "expected an integer, got 'two'", id="pdb-disruptionsAllowed"),
        pytest.param([_node("n1"), {**_pdb("db", {"app": "db"}, 0), "spec": ["app"]}], _pod("hi", "1"),
                     "s.json: items[1]: PodDisruptionBudget shop/db: spec: expected a mapping", id="pdb-spec"),
        pytest.param([_node("n1"), _pdb("db", {"app": "db"}, 0), _pdb("db", {"app": "web"}, 1)], _pod("hi", "1"),
                     "s.json: items[2]: PodDisruptionBudget shop/db: metadata.name: duplicate PodDisruptionBudget",
                     id="pdb-duplicate"),
        pytest.param([_node("n1"), _class("gold", "high")], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass gold: value: expected an integer, got 'high'", id="class-value"),
        pytest.param([_node("n1"), {**_class("gold", 1), "value": None}], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass gold: value: required", id="class-without-value"),
        pytest.param([_node("n1"), _class("gold", 2**31)], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass gold: value: 2147483648 is out of the int32 range",
                     id="class-value-range"),
        pytest.param([_node("n1"), _class("gold", 1, preemptionPolicy="Sometimes")], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass gold: preemptionPolicy: expected one of PreemptLowerPriority, "
                     "Never, got 'Sometimes'", id="class-policy"),
        pytest.param([_node("n1"), _class("gold", 1, globalDefault="yes")], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass gold: globalDefault: expected true or false, got 'yes'",
                     id="class-globalDefault"),
        pytest.param([_node("n1"), {**_class("gold", 1), "metadata": {}}], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass <unnamed>: metadata.name: required", id="class-without-name"),
        pytest.param([_node("n1"), _class("gold", 1), _class("gold", 2)], _pod("hi", "1"),
                     "s.json: items[2]: PriorityClass gold: metadata.name: duplicate PriorityClass",
                     id="class-duplicate"),
        pytest.param([_class("high", 1000), _node("n1")], _pod("hi", "1", priority=50, priorityClassName="high"),
                     # admission refuses a spec.priority that its class contradicts (50 != 1000)
                     "p.yaml: pod shop/hi: spec.priority: the integer value of priority (50) must not be provided "
                     "in pod spec; priority admission controller computed 1000 from the given PriorityClass name",
                     id="spec-priority-disagrees"),
        pytest.param([_class("low", 10, preemptionPolicy="Never"), _node("n1")],
                     _pod("hi", "1", priorityClassName="low", preemptionPolicy="PreemptLowerPriority"),
                     "p.yaml: pod shop/hi: spec.preemptionPolicy: the string value of PreemptionPolicy "
                     "(PreemptLowerPriority) must not be provided in pod spec; priority admission controller "
                     "computed Never from the given PriorityClass name", id="spec-policy-disagrees"),
        pytest.param([_node("n1")], _pod("hi", "1", priority="1000"),
                     # a numeric string is refused, as the API server's decoder refuses it for an int32
                     "p.yaml: pod shop/hi: spec.priority: expected an integer, got '1000'", id="priority-string"),
        pytest.param([_node("n1"), {**_class("gold", 1), "labels": {}}], _pod("hi", "1"),
                     "s.json: items[1]: PriorityClass gold: labels: unknown field of a PriorityClass",
                     id="class-unknown-field"),
        pytest.param([_node("n1")], _pod("hi", "1", priorityClassName=["gold"]),
                     "p.yaml: pod shop/hi: spec.priorityClassName: expected a string, got ['gold']",
                     id="class-name-not-a-string"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          items: list[dict[str, Any]], pod: dict[str, Any], expected: str) -> None:
    code, out, err = _run(tmp_path, capsys, items, pod)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert expected in err


# ---- upstream's cases, end to end ---------------------------------------------------------------
# default_preemption_test.go, through `vecsched explain` with the default profile. Its
# resource sizes: small 100m/100, medium 200m/200, large 300m/300, very large 500m/500
# (CPU/memory bytes); its nodes allow 32 pods unless they say otherwise.

SMALL, MEDIUM, LARGE, VERY_LARGE = ("100m", "100"), ("200m", "200"), ("300m", "300"), ("500m", "500")


def _up_node(name: str, res: tuple[str, str] | None = VERY_LARGE, pods: str = "32", **kw: Any) -> dict[str, Any]:
    cpu, memory = res or ("", "")
    return _node(name, cpu=cpu, memory=memory, pods=pods, **kw)


def _up_pod(name: str, priority: int = LOW, res: tuple[str, str] = ("", ""), node: str = "",
            **kw: Any) -> dict[str, Any]:
    return _pod(name, res[0], res[1], priority=priority, node=node, ns="default", **kw)


def _tight(name: str) -> list[dict[str, Any]]:
    """Upstream's nodeRes node (200m CPU, 400 bytes) as the filters meet it. Upstream's
    TestPostFilter hands the plugin a made-up verdict (Unschedulable); run for real, a
    300m pod on a 200m node is more than the node has at all, which NodeResourcesFit calls
    unresolvable (preemption would not even try). So: 500m/700 of which a pod of the
    preemptor's priority (1000, never a victim) holds 300m/300, leaving upstream's 200m/400."""
    return [_up_node(name, ("500m", "700")), _up_pod(f"{name}-peer", HIGH, LARGE, node=name)]


def _epoch(seconds: int) -> str:
    # upstream's epochTime1..5 are nanoseconds past the epoch; a startTime has whole seconds, same order
    return f"1970-01-01T00:00:{seconds:02d}Z"


_UPSTREAM = [
    # ---- TestPostFilter ----
    pytest.param(
        [_up_node("node1", None, pods="1"), _up_pod("p1", node="node1")], _up_pod("p", HIGH),
        "node1", {"node1": (["default/p1"], 0)}, "",
        # one pod allowed, p1 (0) holds it; p (1000) evicts it
        id="PostFilter/pod with higher priority can be made schedulable"),
    pytest.param(
        [_up_node("node1", None, pods="1"), _up_pod("p1", node="node1")], _up_pod("p"),
        None, {}, "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
        # p has priority 0 as p1: no pod of lower priority
        id="PostFilter/pod with tied priority is still unschedulable"),
    pytest.param(
        [_up_node("node1", None, pods="1"), _up_node("node2", None, pods="1"),
         _up_pod("p1", HIGH, node="node1"), _up_pod("p2", LOW, node="node2")], _up_pod("p", MID),
        "node2", {"node2": (["default/p2"], 0)}, "",
        # p (100) may evict p2 (0) but not p1 (1000)
        id="PostFilter/pod can be made schedulable on one node"),
    pytest.param(
        [_up_node("node1", None, pods="1"), _up_node("node2", None, pods="1"),
         _up_pod("p1", HIGH, node="node1", labels={"test.kubernetes.io/is-violating-pdb": "non-violating"}),
         _up_pod("p2", LOW, node="node1", labels={"test.kubernetes.io/is-violating-pdb": "violating"}),
         _up_pod("p3", MID, node="node2", labels={"test.kubernetes.io/is-violating-pdb": "violating"}),
         _pdb("violating-pdb", {"test.kubernetes.io/is-violating-pdb": "violating"}, 0, ns="default"),
         _pdb("non-violating-pdb", {"test.kubernetes.io/is-violating-pdb": "non-violating"}, 2**31 - 1,
              ns="default")],
        _up_pod("p", VERY_HIGH),
        "node2", {"node1": (["default/p1", "default/p2"], 1), "node2": (["default/p3"], 1)}, "",
        # node1 (1 pod allowed, 2 placed) must lose both; p2 breaks violating-pdb (0 allowed), p1's
        # budget allows 2^31 - 1: 1 violation. node2 loses p3: 1 violation. Tied on violations, the
        # highest victim decides: node2's 100 < node1's 1000 -> node2
        id="PostFilter/pod can be made schedulable on minHighestPriority node"),
    pytest.param(
        [*_tight("node1"), *_tight("node2"), _up_pod("p1", node="node1"), _up_pod("p2", node="node2")],
        _up_pod("p", HIGH, LARGE),
        None, {}, "preemption: 0/2 nodes are available: 2 Insufficient cpu.",
        # 200m free without p1/p2 (the rest held by a pod of p's priority) < 300m
        id="PostFilter/no candidate nodes found, no enough resource after removing low priority pods"),
    pytest.param(
        [_up_node("node1", pods="1"), *_tight("node2"), _up_node("node3", pods="1"),
         _up_pod("p1", HIGH, node="node1"), _up_pod("p2", node="node2"), _up_pod("p3", HIGH, node="node3")],
        _up_pod("p", HIGH, LARGE),
        None, {}, "preemption: 0/3 nodes are available: 1 Insufficient cpu, "
                  "2 No preemption victims found for incoming pod.",
        # node1, node3: their one pod slot held by a pod of equal priority; node2: 200m < 300m
        # even without p2
        id="PostFilter/no candidate nodes found with mixed reasons"),
    pytest.param(
        [*_tight("node1"), *_tight("node2"), _up_node("node3", unschedulable=True),
         _up_node("node4", unschedulable=True), _up_pod("p1", node="node1"), _up_pod("p2", node="node2")],
        _up_pod("p", HIGH, LARGE),
        None, {}, "preemption: 0/4 nodes are available: 2 Insufficient cpu, 2 Preemption is not helpful for "
                  "scheduling.",
        # upstream marks node3 and node4 UnschedulableAndUnresolvable; a cordon is such a verdict here
        id="PostFilter/no candidate nodes found with mixed reason, 2 UnschedulableAndUnresolvable nodes"),
    # ---- TestDryRunPreemption (its candidates; the choice among them by pickOneNodeForPreemption) ----
    pytest.param(
        [_up_node("node1"), _up_node("node2"), _up_pod("p1", MID, LARGE, node="node1"),
         _up_pod("p2", MID, LARGE, node="node2")], _up_pod("p", HIGH, LARGE),
        ("node1", "node2"), {"node1": (["default/p1"], 0), "node2": (["default/p2"], 0)}, "",
        # 300m + 300m > 500m on each; without the one victim 300m fits. Both tie all the way.
        id="DryRun/a pod that fits on both nodes when lower priority pods are preempted"),
    pytest.param(
        [_up_node("node1"), _up_node("node2"), _up_pod("p1.1", LOW, SMALL, node="node1"),
         _up_pod("p1.2", MID, LARGE, node="node1"), _up_pod("p2", MID, LARGE, node="node2")],
        _up_pod("p", HIGH, LARGE),
        ("node1", "node2"), {"node1": (["default/p1.2"], 0), "node2": (["default/p2"], 0)}, "",
        # node1 without both: 0 + 300m. Given back: p1.2 (100) 300m + 300m > 500m, a victim;
        # p1.1 (0) 100m + 300m = 400m <= 500m, stays. Both candidates: 1 victim of 100 -> a tie
        id="DryRun/medium priority pod is preempted, but lower priority one stays as it is small"),
    pytest.param(
        [_up_node("node1"), _up_node("node2"), _up_pod("p1.1", MID, SMALL, node="node1"),
         _up_pod("p1.2", LOW, SMALL, node="node1"), _up_pod("p1.3", MID, MEDIUM, node="node1"),
         _up_pod("p1.4", HIGH, SMALL, node="node1"), _up_pod("p2", HIGH, LARGE, node="node2")],
        _up_pod("p", HIGH, LARGE),
        "node1", {"node1": (["default/p1.2", "default/p1.3"], 0)}, "",
        # node1 without p1.1, p1.2, p1.3: 100m (p1.4) + 300m = 400m. Given back by priority:
        # p1.1 (100, 100m) -> 500m <= 500m stays; p1.3 (100, 200m) -> 700m, a victim;
        # p1.2 (0, 100m) -> 600m, a victim. node2 holds only p2 (1000): no victims
        id="DryRun/mixed priority pods are preempted"),
    pytest.param(
        [_up_node("node1"), _up_node("node2"),
         _up_pod("p1.1", LOW, SMALL, node="node1", start=_epoch(5)),
         _up_pod("p1.2", LOW, SMALL, node="node1", start=_epoch(4)),
         _up_pod("p1.3", MID, MEDIUM, node="node1", start=_epoch(3)),
         _up_pod("p1.4", HIGH, SMALL, node="node1", start=_epoch(2)),
         _up_pod("p2", HIGH, LARGE, node="node2", start=_epoch(1))],
        _up_pod("p", HIGH, LARGE),
        "node1", {"node1": (["default/p1.1", "default/p1.3"], 0)}, "",
        # without p1.1-3: 100m + 300m = 400m. Given back: p1.3 (100) -> 600m, a victim; then the
        # two of priority 0, earlier start first: p1.2 (4s) -> 500m stays; p1.1 (5s) -> 600m, a victim
        id="DryRun/mixed priority pods are preempted, pick later StartTime one when priorities are equal"),
    pytest.param(
        [_up_node("node1"), _up_pod("p1.1", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _up_pod("p1.2", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _pdb("pdb", {"app": "foo"}, 1, ns="default")],
        _up_pod("p", HIGH, VERY_LARGE),
        "node1", {"node1": (["default/p1.1", "default/p1.2"], 1)}, "",
        # 500m needs both gone; the budget allows 1 disruption: the second breaks it -> 1 violation
        id="DryRun/preemption with violation of same pdb"),
    pytest.param(
        [_up_node("node1"), _up_pod("p1.1", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _up_pod("p1.2", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _pdb("pdb", {"app": "foo"}, 1, ns="default", disrupted=("p1.2",))],
        _up_pod("p", HIGH, VERY_LARGE),
        "node1", {"node1": (["default/p1.1", "default/p1.2"], 0)}, "",
        # p1.2 is already in disruptedPods (counted by the API server): only p1.1 uses the 1 allowed
        id="DryRun/preemption with violation of the pdb with pod whose eviction was processed, "
           "the victim belongs to DisruptedPods"),
    pytest.param(
        [_up_node("node1"), _up_pod("p1.1", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _up_pod("p1.2", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _up_pod("p1.3", MID, MEDIUM, node="node1", labels={"app": "foo"}),
         _pdb("pdb", {"app": "foo"}, 1, ns="default", disrupted=("p1.3",))],
        _up_pod("p", HIGH, VERY_LARGE),
        "node1", {"node1": (["default/p1.1", "default/p1.2", "default/p1.3"], 1)}, "",
        # all three go; p1.3 is already counted, p1.1 takes the 1 allowed, p1.2 breaks it -> 1
        id="DryRun/preemption with violation of the pdb with pod whose eviction was processed, "
           "the victim which belongs to DisruptedPods is treated as 'nonViolating'"),
    pytest.param(
        [_up_node("node-a", labels={"hostname": "node-a", "zone": "zone1"}),
         _up_node("node-b", labels={"hostname": "node-b", "zone": "zone1"}),
         _up_node("node-x", labels={"hostname": "node-x", "zone": "zone2"}),
         _up_pod("pod-a1", MID, node="node-a", labels={"foo": ""}),
         _up_pod("pod-a2", LOW, node="node-a", labels={"foo": ""}),
         _up_pod("pod-b1", LOW, node="node-b", labels={"foo": ""}),
         _up_pod("pod-x1", HIGH, node="node-x", labels={"foo": ""}),
         _up_pod("pod-x2", HIGH, node="node-x", labels={"foo": ""})],
        _up_pod("p", HIGH, labels={"foo": ""}, topologySpreadConstraints=[
            {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}}
            for key in ("zone", "hostname")]),
        ("node-a", "node-b"), {"node-a": (["default/pod-a2"], 0), "node-b": (["default/pod-b1"], 0)}, "",
        # zones: zone1 3, zone2 2; hosts a 2, b 1, x 2. Every node fails a constraint (zone1:
        # 3 + 1 - 2 = 2 > 1; node-x: 2 + 1 - 1 = 2 > 1). node-a without a1, a2: fits; given back
        # a1 (100): zone1 2 + 1 - 2 = 1, host a 1 + 1 - 1 = 1, stays; a2 (0): zone1 3 + 1 - 2 = 2,
        # a victim. node-b: b1 a victim (zone1 3 + 1 - 2). node-x: both pods 1000, no victims
        id="DryRun/preemption to resolve pod topology spread filter failure"),
]


@pytest.mark.parametrize(("items", "pod", "node", "candidates", "message"), _UPSTREAM)
def test_upstream_cases_through_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            items: list[dict[str, Any]], pod: dict[str, Any],
                                            node: str | tuple[str, ...] | None,
                                            candidates: dict[str, tuple[list[str], int]], message: str) -> None:
    doc = _doc(tmp_path, capsys, items, pod)
    plan = doc["preemption"]
    assert doc["selected"] is None and plan is not None
    if isinstance(node, tuple):  # upstream's "any of the items is valid"
        assert plan["node"] in node
    else:
        assert plan["node"] == node
    assert _candidates(plan) == candidates
    assert sorted(plan["victims"]) == (candidates[plan["node"]][0] if plan["node"] else [])
    assert plan["message"] == message
    if message:
        assert doc["message"].endswith(f". {message}")
