"""NodeName: cases ported from upstream's node_name_test.go (TestNodeName)."""

import pytest

from scoring.objects import node_from_json, pod_from_json
from scoring.plugins import node_name
from scoring.table import NodeTable
from tests.explain_support import explain_reasons

ERR_REASON = "node(s) didn't match the requested node name"


@pytest.mark.parametrize(
    ("pod_node", "node", "want"),
    [
        pytest.param("", "foo", [], id="no host specified"),
        pytest.param("foo", "foo", [], id="host matches"),
        pytest.param("bar", "foo", [ERR_REASON], id="host doesn't match"),
    ],
)
def test_node_name(pod_node: str, node: str, want: list[str]) -> None:
    t = NodeTable()
    t.set_node(node_from_json({"metadata": {"name": node}}))
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [], "nodeName": pod_node}})
    reasons = node_name.new({}, "args").filter(pod, t, {}) or []
    assert [r.message for r in reasons if r.nodes[0]] == want
    assert all(r.unresolvable for r in reasons)  # UnschedulableAndUnresolvable
    assert explain_reasons(nodes=t.infos, pod=pod, plugin=node_name.NAME) == {node: want}


def test_only_the_named_row_fits() -> None:
    t = NodeTable()
    for name in ("a", "b", "c"):
        t.set_node(node_from_json({"metadata": {"name": name}}))
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [], "nodeName": "b"}})
    reasons = node_name.new({}, "args").filter(pod, t, {}) or []
    assert [(r.message, r.nodes.tolist()) for r in reasons] == [(ERR_REASON, [True, False, True])]
