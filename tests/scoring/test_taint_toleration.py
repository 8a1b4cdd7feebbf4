"""TaintToleration: cases ported from upstream's taint_toleration_test.go
(TestTaintTolerationScore, TestTaintTolerationFilter), plus the first untolerated
taint in the node's own order and the shared toleration matcher."""

from typing import Any

import numpy as np
import pytest

from scoring.framework import CycleState
from scoring.objects import Taint, node_from_json, pod_from_json
from scoring.plugins import taint_toleration
from scoring.plugins.tolerations import tolerates
from scoring.table import NodeTable
from tests.explain_support import explain_reasons, explain_scores

PNS, NS, NE = "PreferNoSchedule", "NoSchedule", "NoExecute"


def _tol(key: str, value: str = "", effect: str = "", op: str = "") -> dict[str, Any]:
    t = {"key": key, "value": value, "effect": effect}
    if op:
        t["operator"] = op
    return t


def _pod(*tolerations: dict[str, Any]) -> Any:
    return pod_from_json({"metadata": {"name": "pod1"}, "spec": {"containers": [], "tolerations": list(tolerations)}})


def _table(*nodes: tuple[str, list[tuple[str, str, str]]]) -> NodeTable:
    t = NodeTable()
    for name, taints in nodes:
        t.set_node(node_from_json({"metadata": {"name": name},
                                   "spec": {"taints": [{"key": k, "value": v, "effect": e} for k, v, e in taints]}}))
    return t


SCORE_CASES = [
    # raw = intolerable PreferNoSchedule taints; normalised 100 - 100*raw//max (all zero -> 100)
    # nodeA 0, nodeB 1 -> 100, 0
    ("node with taints tolerated by the pod, gets a higher score than those node with intolerable taints",
     _pod(_tol("foo", "bar", PNS, "Equal")),
     [("nodeA", [("foo", "bar", PNS)]), ("nodeB", [("foo", "blah", PNS)])], [100, 0]),
    # all raw 0 -> 100 each
    ("the nodes that all of their taints are tolerated by the pod, get the same score, no matter how many tolerable "
     "taints a node has",
     _pod(_tol("cpu-type", "arm64", PNS, "Equal"), _tol("disk-type", "ssd", PNS, "Equal")),
     [("nodeA", []), ("nodeB", [("cpu-type", "arm64", PNS)]), ("nodeC", [("cpu-type", "arm64", PNS), ("disk-type", "ssd", PNS)])],
     [100, 100, 100]),
    # raw 0, 1, 2 -> 100, 100 - 100*1//2 = 50, 0
    ("the more intolerable taints a node has, the lower score it gets.",
     _pod(_tol("foo", "bar", PNS, "Equal")),
     [("nodeA", []), ("nodeB", [("cpu-type", "arm64", PNS)]), ("nodeC", [("cpu-type", "arm64", PNS), ("disk-type", "ssd", PNS)])],
     [100, 50, 0]),
    # NoSchedule tolerations do not count for scoring and NoSchedule taints are not scored: raw 0, 0, 2
    ("only taints and tolerations that have effect PreferNoSchedule are checked by taints-tolerations priority function",
     _pod(_tol("cpu-type", "arm64", NS, "Equal"), _tol("disk-type", "ssd", NS, "Equal")),
     [("nodeA", []), ("nodeB", [("cpu-type", "arm64", NS)]), ("nodeC", [("cpu-type", "arm64", PNS), ("disk-type", "ssd", PNS)])],
     [100, 100, 0]),
    # raw 0, 1 -> 100, 0
    ("Default behaviour No taints and tolerations, lands on node with no taints", _pod(),
     [("nodeA", []), ("nodeB", [("cpu-type", "arm64", PNS)])], [100, 0]),
]


@pytest.mark.parametrize(("pod", "nodes", "expected"), [c[1:] for c in SCORE_CASES], ids=[c[0] for c in SCORE_CASES])
def test_score(pod: Any, nodes: list[tuple[str, list[tuple[str, str, str]]]], expected: list[int]) -> None:
    t = _table(*nodes)
    plugin = taint_toleration.new({}, "args")
    state: CycleState = {}
    rows = np.array([t.index[name] for name, _ in nodes], np.intp)
    raw = plugin.score(pod, t, rows, state)
    assert plugin.normalize(raw, state).tolist() == expected
    shown = explain_scores(nodes=t.infos, pod=pod, plugin=taint_toleration.NAME)
    assert [shown[name] for name, _ in nodes] == expected


FILTER_CASES = [
    ("A pod having no tolerations can't be scheduled onto a node with nonempty taints",
     _pod(), [("dedicated", "user1", NS)], ["node(s) had untolerated taint {dedicated: user1}"]),
    ("A pod which can be scheduled on a dedicated node assigned to user1 with effect NoSchedule",
     _pod(_tol("dedicated", "user1", NS)), [("dedicated", "user1", NS)], []),
    ("A pod which can't be scheduled on a dedicated node assigned to user2 with effect NoSchedule",
     _pod(_tol("dedicated", "user2", NS, "Equal")), [("dedicated", "user1", NS)],
     ["node(s) had untolerated taint {dedicated: user1}"]),
    ("A pod can be scheduled onto the node, with a toleration uses operator Exists that tolerates the taints on the node",
     _pod(_tol("foo", "", NS, "Exists")), [("foo", "bar", NS)], []),
    ("A pod has multiple tolerations, node has multiple taints, all the taints are tolerated, pod can be scheduled onto "
     "the node", _pod(_tol("dedicated", "user2", NS, "Equal"), _tol("foo", "", NS, "Exists")),
     [("dedicated", "user2", NS), ("foo", "bar", NS)], []),
    ("A pod has a toleration that keys and values match the taint on the node, but (non-empty) effect doesn't match, "
     "can't be scheduled onto the node", _pod(_tol("foo", "bar", PNS, "Equal")), [("foo", "bar", NS)],
     ["node(s) had untolerated taint {foo: bar}"]),
    ("The pod has a toleration that keys and values match the taint on the node, the effect of toleration is empty, "
     "and the effect of taint is NoSchedule. Pod can be scheduled onto the node",
     _pod(_tol("foo", "bar", "", "Equal")), [("foo", "bar", NS)], []),
    ("The pod has a toleration that key and value don't match the taint on the node, but the effect of taint on node "
     "is PreferNoSchedule. Pod can be scheduled onto the node",
     _pod(_tol("dedicated", "user2", NS, "Equal")), [("dedicated", "user1", PNS)], []),
    ("The pod has no toleration, but the effect of taint on node is PreferNoSchedule. Pod can be scheduled onto the node",
     _pod(), [("dedicated", "user1", PNS)], []),
]


@pytest.mark.parametrize(("pod", "taints", "want"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES])
def test_filter(pod: Any, taints: list[tuple[str, str, str]], want: list[str]) -> None:
    t = _table(("nodeA", taints))
    reasons = taint_toleration.new({}, "args").filter(pod, t, {}) or []
    assert [r.message for r in reasons if r.nodes[0]] == want
    assert all(r.unresolvable for r in reasons)  # UnschedulableAndUnresolvable
    assert explain_reasons(nodes=t.infos, pod=pod, plugin=taint_toleration.NAME) == {"nodeA": want}


def test_filter_names_the_first_untolerated_taint_in_each_nodes_order() -> None:
    # the same two taints in opposite orders; a third node only has a tolerated one
    a, b = ("a", "1", NS), ("b", "2", NE)
    t = _table(("n1", [a, b]), ("n2", [b, a]), ("n3", [("ok", "", NS)]), ("n4", [("x", "", PNS), b]))
    reasons = taint_toleration.new({}, "args").filter(_pod(_tol("ok", "", NS, "Exists")), t, {}) or []
    got = {name: [r.message for r in reasons if r.nodes[row]] for name, row in t.index.items()}
    assert got == {
        "n1": ["node(s) had untolerated taint {a: 1}"],
        "n2": ["node(s) had untolerated taint {b: 2}"],
        "n3": [],
        "n4": ["node(s) had untolerated taint {b: 2}"],  # the PreferNoSchedule taint before it does not count
    }


def test_taints_with_the_same_key_and_value_share_one_message() -> None:
    t = _table(("n1", [("k", "v", NS)]), ("n2", [("k", "v", NE)]))
    reasons = taint_toleration.new({}, "args").filter(_pod(), t, {}) or []
    assert [(r.message, r.nodes.tolist()) for r in reasons] == [("node(s) had untolerated taint {k: v}", [True, True])]


@pytest.mark.parametrize(
    ("toleration", "taint", "want"),
    [
        pytest.param(_tol("", "", "", "Exists"), Taint("k", "v", NS), True, id="empty key with Exists tolerates all"),
        pytest.param(_tol("", "v", NS, "Equal"), Taint("other", "v", NS), True, id="empty key with Equal compares values"),
        pytest.param(_tol("k", "v", ""), Taint("k", "v", NE), True, id="empty effect matches every effect"),
        pytest.param(_tol("k", "", NS), Taint("k", "v", NS), False, id="empty operator is Equal"),
        pytest.param(_tol("k", "5", NS, "Gt"), Taint("k", "7", NS), False,
                     id="Gt is not an operator (TaintTolerationComparisonOperators is alpha, off)"),
    ],
)
def test_tolerates(toleration: dict[str, Any], taint: Taint, want: bool) -> None:
    assert tolerates(toleration, taint) is want
