"""NodeUnschedulable: cases ported from upstream's node_unschedulable_test.go
(TestNodeUnschedulable)."""

from typing import Any

import pytest

from scoring.objects import node_from_json, pod_from_json
from scoring.plugins import node_unschedulable
from scoring.table import NodeTable
from tests.explain_support import explain_reasons

UNSCHEDULABLE = "node(s) were unschedulable"


def _pod(*tolerations: dict[str, Any]) -> Any:
    return pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": list(tolerations)}})


@pytest.mark.parametrize(
    ("pod", "unschedulable", "want"),
    [
        pytest.param(_pod(), True, [UNSCHEDULABLE],
                     id="Does not schedule pod to unschedulable node (node.Spec.Unschedulable==true)"),
        pytest.param(_pod(), False, [], id="Schedule pod to normal node"),
        # {key: node.kubernetes.io/unschedulable, effect: NoSchedule}, operator "" (Equal) and value "" == ""
        pytest.param(_pod({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}), True, [],
                     id="Schedule pod with toleration to unschedulable node (node.Spec.Unschedulable==true)"),
    ],
)
def test_node_unschedulable(pod: Any, unschedulable: bool, want: list[str]) -> None:
    t = NodeTable()
    t.set_node(node_from_json({"metadata": {"name": "n"}, "spec": {"unschedulable": unschedulable}}))
    reasons = node_unschedulable.new({}, "args").filter(pod, t, {}) or []
    assert [r.message for r in reasons if r.nodes[0]] == want
    assert all(r.unresolvable for r in reasons)  # UnschedulableAndUnresolvable
    assert explain_reasons(nodes=t.infos, pod=pod, plugin=node_unschedulable.NAME) == {"n": want}


def test_only_cordoned_rows_are_rejected() -> None:
    t = NodeTable()
    for name, cordoned in (("a", False), ("b", True), ("c", False)):
        t.set_node(node_from_json({"metadata": {"name": name}, "spec": {"unschedulable": cordoned}}))
    reasons = node_unschedulable.new({}, "args").filter(_pod(), t, {}) or []
    assert [(r.message, r.nodes.tolist()) for r in reasons] == [(UNSCHEDULABLE, [False, True, False])]
