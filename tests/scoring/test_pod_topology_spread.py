"""PodTopologySpread: upstream's filtering_test.go (TestSingleConstraint,
TestMultipleConstraints) and scoring_test.go (TestPodTopologySpreadScore) tables,
plus args validation, PreFilter errors, default constraints from workloads and the
incremental counters. In upstream's unit tables only this plugin runs, so nodes
that other filters would reject still show up as fitting."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.args import ArgsError
from scoring.plugins import pod_topology_spread as pts
from scoring.plugins.workloads import Workloads
from tests.scoring.pod_constraint_helpers import (
    explained_scores,
    explained_verdicts,
    BAR, FOO, HOSTNAME, UNSCHEDULABLE_TAINT, node, node_affinity_in, node_affinity_not_in, pod, run_filter, run_score,
    sc, table_of,
)

DNS, SA = "DoNotSchedule", "ScheduleAnyway"
OK, SKEW, LABEL = "", pts.ERR_REASON_CONSTRAINTS_NOT_MATCH, pts.ERR_REASON_NODE_LABEL_NOT_MATCH


def zn(name: str, zone: str, **extra: str) -> dict[str, Any]:
    return node(name, {"zone": zone, "node": name, **extra})


FOUR = [zn("node-a", "zone1"), zn("node-b", "zone1"), zn("node-x", "zone2"), zn("node-y", "zone2")]


def on(name: str, node_name: str, *labels: str, ns: str = "default", terminating: bool = False) -> Any:
    return pod(name, {k: "" for k in labels}, node_name=node_name, ns=ns, terminating=terminating)


def spread_2103(label: str = "foo") -> list[Any]:
    """Matching pods 2/1/0/3 on node-a/b/x/y."""
    return [on("p-a1", "node-a", label), on("p-a2", "node-a", label), on("p-b1", "node-b", label),
            on("p-y1", "node-y", label), on("p-y2", "node-y", label), on("p-y3", "node-y", label)]


FILTER_CASES = [
    # No pods: every zone has 0, skew 0+1-0 = 1 <= 1.
    ("no existing pods", pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO)]), FOUR, [],
     {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK}),
    ("no existing pods, incoming pod doesn't match itself", pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, BAR)]),
     FOUR, [], {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK}),
    # zone1 counts 0 (other namespaces), zone2 counts 2: zone2 skew 2+1-0 = 3 > 1.
    ("existing pods in a different namespace do not count", pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO)]),
     FOUR, [on("p-a1", "node-a", "foo", ns="ns1"), on("p-b1", "node-a", "foo", ns="ns2"),
            on("p-x1", "node-x", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": OK, "node-b": OK, "node-x": SKEW, "node-y": SKEW}),
    # A nil selector matches no pod: every zone counts 0 and the pod does not match itself.
    ("existing pods do not match null selector", pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, None)]),
     FOUR, [on("p-x1", "node-x", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK}),
    # zone1 = 3, zone2 = 3, min 3: 3+1-3 = 1 <= 1 everywhere.
    ("pods spread across zones as 3/3, all nodes fit", pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO)]),
     FOUR, spread_2103(), {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK}),
    # node-b has "zon" not "zone": unresolvable; zone1 = 1 (node-a), zone2 = 2, min 1:
    # zone2 2+1-1 = 2 > 1.
    ("pods spread across zones as 1/2 due to absence of label 'zone' on node-b",
     pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO)]),
     [zn("node-a", "zone1"), node("node-b", {"zon": "zone1", "node": "node-b"}), zn("node-x", "zone2"), zn("node-y", "zone2")],
     [on("p-a1", "node-a", "foo"), on("p-b1", "node-b", "foo"), on("p-x1", "node-x", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": OK, "node-b": LABEL, "node-x": SKEW, "node-y": SKEW}),
    ("pod cannot be scheduled as all nodes don't have label 'rack'",
     pod("p", {"foo": ""}, spread=[sc(1, "rack", DNS, FOO)]), [zn("node-a", "zone1"), zn("node-x", "zone2")], [],
     {"node-a": LABEL, "node-x": LABEL}),
    # per node 2/1/0/3, min 0: a 2+1 = 3, b 2, x 1, y 4 -> only x <= 1.
    ("pods spread across nodes as 2/1/0/3, only node-x fits", pod("p", {"foo": ""}, spread=[sc(1, "node", DNS, FOO)]),
     FOUR, spread_2103(), {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW}),
    # maxSkew 2: a 3 > 2, b 2, x 1, y 4 > 2.
    ("pods spread across nodes as 2/1/0/3, maxSkew is 2, node-b and node-x fit",
     pod("p", {"foo": ""}, spread=[sc(2, "node", DNS, FOO)]), FOUR, spread_2103(),
     {"node-a": SKEW, "node-b": OK, "node-x": OK, "node-y": SKEW}),
    # no self match: a 2 > 1, b 1, x 0, y 3.
    ("pods spread across nodes as 2/1/0/3, but pod doesn't match itself",
     pod("p", {"bar": ""}, spread=[sc(1, "node", DNS, FOO)]), FOUR, spread_2103(),
     {"node-a": SKEW, "node-b": OK, "node-x": OK, "node-y": SKEW}),
    # Only node-a and node-y pass the pod's node affinity (Honor): domains a=2, y=3, min 2:
    # a 2+1-2 = 1 ok, y 3+1-2 = 2 > 1; b 1+1-2 = 0 and x 0+1-2 = -1 pass (NodeAffinity not run here).
    ("incoming pod has nodeAffinity, pods spread as 2/~1~/~0~/3, hence node-a fits",
     pod("p", {"foo": ""}, affinity=node_affinity_in("node", ["node-a", "node-y"]), spread=[sc(1, "node", DNS, FOO)]),
     FOUR, spread_2103(), {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": SKEW}),
    # node-a's only pod is terminating: a 0+1-0 = 1 ok, b 1+1-0 = 2 > 1.
    ("terminating Pods should be excluded", pod("p", {"foo": ""}, spread=[sc(1, "node", DNS, FOO)]),
     [node("node-a", {"node": "node-a"}), node("node-b", {"node": "node-b"})],
     [on("p-a", "node-a", "foo", terminating=True), on("p-b", "node-b", "foo")], {"node-a": OK, "node-b": SKEW}),
    # node-b excluded by NotIn: zone1 = 0 (node-a), zone2 = 1, min 0: zone2 1+1 = 2 > 1.
    ("incoming pod has nodeAffinity, pods spread as 0/~2~/0/1, hence node-a fits",
     pod("p", {"foo": ""}, affinity=node_affinity_not_in("node", ["node-b"]), spread=[sc(1, "zone", DNS, FOO)]),
     FOUR, [on("p-b1", "node-b", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": OK, "node-b": OK, "node-x": SKEW, "node-y": SKEW}),
    # 3 domains < minDomains 4 -> min 0: a 2+1 = 3 > 2, b 3 > 2, c 1+1 = 2 ok.
    ("pods spread across nodes as 2/2/1, maxSkew is 2, and the number of domains < minDomains, then the third node fits",
     pod("p", {"foo": ""}, spread=[sc(2, "node", DNS, FOO, min_domains=4)]),
     [node("node-a", {"node": "node-a"}), node("node-b", {"node": "node-b"}), node("node-c", {"node": "node-c"})],
     [on("p-a1", "node-a", "foo"), on("p-a2", "node-a", "foo"), on("p-b1", "node-b", "foo"),
      on("p-b2", "node-b", "foo"), on("p-c1", "node-c", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-c": OK}),
    # 3 domains >= 2 -> min 1: a 2+1-1 = 2 ok, b 2, c 1.
    ("pods spread across nodes as 2/2/1, maxSkew is 2, and the number of domains > minDomains, then the all nodes fit",
     pod("p", {"foo": ""}, spread=[sc(2, "node", DNS, FOO, min_domains=2)]),
     [node("node-a", {"node": "node-a"}), node("node-b", {"node": "node-b"}), node("node-c", {"node": "node-c"})],
     [on("p-a1", "node-a", "foo"), on("p-a2", "node-a", "foo"), on("p-b1", "node-b", "foo"),
      on("p-b2", "node-b", "foo"), on("p-c1", "node-c", "foo")],
     {"node-a": OK, "node-b": OK, "node-c": OK}),
    # 2 zones < 3 -> min 0: zone1 2+1 = 3 > 2, zone2 1+1 = 2 ok.
    ("pods spread across zone as 2/1, maxSkew is 2 and the number of domains < minDomains, then the third and fourth nodes fit",
     pod("p", {"foo": ""}, spread=[sc(2, "zone", DNS, FOO, min_domains=3)]), FOUR,
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK}),
    # 2 zones >= 1 -> min 1: zone1 2+1-1 = 2 ok, zone2 1.
    ("pods spread across zone as 2/1, maxSkew is 2 and the number of domains > minDomains, then the all nodes fit",
     pod("p", {"foo": ""}, spread=[sc(2, "zone", DNS, FOO, min_domains=1)]), FOUR,
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK}),
    # node-y lacks foo=: excluded (Honor), domains a=1, b=1, x=0, min 0: a,b 2 > 1; y 1+1 = 2 > 1?
    # upstream: node-y's own domain is not eligible, so its count is 0 -> 0+1-0 = 1 ok.
    ("NodeAffinityPolicy honored with labelSelectors",
     pod("p", {"foo": ""}, node_selector={"foo": ""}, spread=[sc(1, "node", DNS, FOO)]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}),
      node("node-x", {"node": "node-x", "foo": ""}), node("node-y", {"node": "node-y"})],
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK}),
    # Ignore: node-y counts 1: y 1+1-0 = 2 > 1.
    ("NodeAffinityPolicy ignored with labelSelectors",
     pod("p", {"foo": ""}, node_selector={"foo": ""}, spread=[sc(1, "node", DNS, FOO, affinity_policy="Ignore")]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}),
      node("node-x", {"node": "node-x", "foo": ""}), node("node-y", {"node": "node-y"})],
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW}),
    ("NodeAffinityPolicy honored with nodeAffinity",
     pod("p", {"foo": ""}, affinity=node_affinity_in("foo", [""]), spread=[sc(1, "node", DNS, FOO)]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}),
      node("node-x", {"node": "node-x", "foo": ""}), node("node-y", {"node": "node-y"})],
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK}),
    ("NodeAffinityPolicy ignored with nodeAffinity",
     pod("p", {"foo": ""}, affinity=node_affinity_in("foo", [""]), spread=[sc(1, "node", DNS, FOO, affinity_policy="Ignore")]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}),
      node("node-x", {"node": "node-x", "foo": ""}), node("node-y", {"node": "node-y"})],
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW}),
    # node-y's untolerated NoSchedule taint excludes its domain (Honor): y 0+1-0 = 1 ok.
    ("NodeTaintsPolicy honored", pod("p", {"foo": ""}, spread=[sc(1, "node", DNS, FOO, taints_policy="Honor")]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}),
      node("node-x", {"node": "node-x", "foo": ""}), node("node-y", {"node": "node-y"}, [UNSCHEDULABLE_TAINT])],
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": OK}),
    ("NodeTaintsPolicy ignored", pod("p", {"foo": ""}, spread=[sc(1, "node", DNS, FOO)]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}),
      node("node-x", {"node": "node-x", "foo": ""}), node("node-y", {"node": "node-y"}, [UNSCHEDULABLE_TAINT])],
     [on("p-b1", "node-a", "foo"), on("p-b2", "node-b", "foo"), on("p-y1", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW}),
    # TestMultipleConstraints ------------------------------------------------------------
    # zone 3/3 (all pass), node 2/1/0/3 (only x).
    ("two Constraints on zone and node, spreads = [3/3, 2/1/0/3]",
     pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, FOO)]), FOUR, spread_2103(),
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW}),
    # zone 3/4: zone2 4+1-3 = 2 fails x, y; node: a, b fail.
    ("two Constraints on zone and node, spreads = [3/4, 2/1/0/4]",
     pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, FOO)]), FOUR,
     spread_2103() + [on("p-y4", "node-y", "foo")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": SKEW, "node-y": SKEW}),
    # foo by zone 1/0 (zone2 only), bar by node 0/0/0/1 (a, b, x): x.
    ("Constraints hold different labelSelectors, spreads = [1/0, 1/0/0/1]",
     pod("p", {"foo": "", "bar": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, BAR)]), FOUR,
     [on("p-a1", "node-a", "foo"), on("p-y1", "node-y", "bar")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": OK, "node-y": SKEW}),
    ("Constraints hold different labelSelectors, spreads = [1/0, 0/0/1/1]",
     pod("p", {"foo": "", "bar": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, BAR)]), FOUR,
     [on("p-a1", "node-a", "foo"), on("p-x1", "node-x", "bar"), on("p-y1", "node-y", "bar")],
     {"node-a": SKEW, "node-b": SKEW, "node-x": SKEW, "node-y": SKEW}),
    # foo by zone 2/3 (zone1), bar by node 1/0/0/1 (b, x): b.
    ("Constraints hold different labelSelectors, spreads = [2/3, 1/0/0/1]",
     pod("p", {"foo": "", "bar": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, BAR)]), FOUR,
     [on("p-a1", "node-a", "foo"), pod("p-a2", {"foo": "", "bar": ""}, node_name="node-a"), on("p-y1", "node-y", "foo"),
      pod("p-y2", {"foo": "", "bar": ""}, node_name="node-y"), on("p-y3", "node-y", "foo")],
     {"node-a": SKEW, "node-b": OK, "node-x": SKEW, "node-y": SKEW}),
    ("Constraints hold different labelSelectors but pod doesn't match itself on 'zone' constraint",
     pod("p", {"bar": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, BAR)]), FOUR,
     [on("p-a1", "node-a", "foo"), on("p-x1", "node-x", "bar"), on("p-y1", "node-y", "bar")],
     {"node-a": OK, "node-b": OK, "node-x": SKEW, "node-y": SKEW}),
    # node-x lacks "node": unresolvable, and a, b, y only count: zone 1/1, node 1/0/-/1.
    ("two Constraints on zone and node, absence of label 'node' on node-x, spreads = [1/1, 1/0/0/1]",
     pod("p", {"foo": ""}, spread=[sc(1, "zone", DNS, FOO), sc(1, "node", DNS, FOO)]),
     [zn("node-a", "zone1"), zn("node-b", "zone1"), node("node-x", {"zone": "zone2"}), zn("node-y", "zone2")],
     [on("p-a1", "node-a", "foo"), on("p-y3", "node-y", "foo")],
     {"node-a": SKEW, "node-b": OK, "node-x": LABEL, "node-y": SKEW}),
]


@pytest.mark.parametrize("name,p,nodes,existing,want", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filter(name: str, p: Any, nodes: Any, existing: Any, want: dict[str, str]) -> None:
    table = table_of(nodes, existing)
    got, _ = run_filter(pts.new({}, "args"), p, table)
    assert got == want
    assert explained_verdicts(table, p, pts.NAME) == want


def hn(name: str, **extra: str) -> dict[str, Any]:
    return node(name, {HOSTNAME: name, **extra})


def foo_pods(counts: dict[str, int], label: str = "foo") -> list[Any]:
    return [on(f"p-{n[-1]}{i}", n, label) for n, c in counts.items() for i in range(c)]


# (name, pod, candidate nodes, failed nodes, existing pods, want scores)
SCORE_CASES = [
    ("one constraint on node, no existing pods", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b")], [], [], {"node-a": 100, "node-b": 100}),
    ("one constraint on node, only one node is candidate", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a")], [hn("node-b")], foo_pods({"node-a": 2, "node-b": 1}), {"node-a": 100}),
    ("one constraint on node, all nodes have the same number of matching pods",
     pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]), [hn("node-a"), hn("node-b")], [],
     foo_pods({"node-a": 1, "node-b": 1}), {"node-a": 100, "node-b": 100}),
    # weight ln(4+2) = 1.79: raw 2->3.58=4, 1->1.79=2, 0, 3->5.38=5; max 5, min 0:
    # 100*(5+0-s)/5 -> a 20, b 60, c 100, d 0.
    ("one constraint on node, all 4 nodes are candidates", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b"), hn("node-c"), hn("node-d")], [], foo_pods({"node-a": 2, "node-b": 1, "node-d": 3}),
     {"node-a": 20, "node-b": 60, "node-c": 100, "node-d": 0}),
    ("one constraint on node, null selector", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, None)]),
     [hn("node-a"), hn("node-b"), hn("node-c"), hn("node-d")], [], foo_pods({"node-a": 2, "node-b": 1, "node-d": 3}),
     {"node-a": 100, "node-b": 100, "node-c": 100, "node-d": 100}),
    # +1 each: raw a 3.58+1 = 5, b 3, c 1, d 6.38 = 6; max 6 min 1: a 100*2/6 = 33, b 66, c 100, d 16.
    ("one constraint on node, all 4 nodes are candidates, maxSkew=2", pod("p", {"foo": ""}, spread=[sc(2, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b"), hn("node-c"), hn("node-d")], [], foo_pods({"node-a": 2, "node-b": 1, "node-d": 3}),
     {"node-a": 33, "node-b": 66, "node-c": 100, "node-d": 16}),
    # 4/3/2/1, +2: a 7.17+2 = 9, b 7.38 = 7, c 5.58 = 6, d 3.79 = 4; max 9 min 4:
    # a 100*4/9 = 44, b 66, c 77, d 100.
    ("one constraint on node, all 4 nodes are candidates, maxSkew=3", pod("p", {"foo": ""}, spread=[sc(3, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b"), hn("node-c"), hn("node-d")], [],
     foo_pods({"node-a": 4, "node-b": 3, "node-c": 2, "node-d": 1}),
     {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100}),
    # 3 candidates: weight ln(5) = 1.61; a 4 -> 6.44 = 6, b 2 -> 3, x 1 -> 2; 100*(6+2-s)/6: 33, 83, 100.
    ("one constraint on node, 3 out of 4 nodes are candidates", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b"), hn("node-x")], [hn("node-y")],
     foo_pods({"node-a": 4, "node-b": 2, "node-x": 1, "node-y": 3}), {"node-a": 33, "node-b": 83, "node-x": 100}),
    # node-b ignored: weight ln(2+2) = 1.39; a 4 -> 5.55 = 6, x 1 -> 1; 100*(6+1-s)/6: a 16, x 100, b 0.
    ("one constraint on node, 3 out of 4 nodes are candidates, one node doesn't match topology key",
     pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a"), node("node-b", {"n": "node-b"}), hn("node-x")], [hn("node-y")],
     foo_pods({"node-a": 4, "node-b": 2, "node-x": 1, "node-y": 3}), {"node-a": 16, "node-b": 0, "node-x": 100}),
    # zones among candidates: 2 -> ln 4 = 1.39; zone1 6 -> 8.32 = 8, zone2 4 -> 5.55 = 6:
    # 100*(8+6-s)/8: a, b 75, x 100.
    ("one constraint on zone, 3 out of 4 nodes are candidates", pod("p", {"foo": ""}, spread=[sc(1, "zone", SA, FOO)]),
     [hn("node-a", zone="zone1"), hn("node-b", zone="zone1"), hn("node-x", zone="zone2")], [hn("node-y", zone="zone2")],
     foo_pods({"node-a": 4, "node-b": 2, "node-x": 1, "node-y": 3}), {"node-a": 75, "node-b": 75, "node-x": 100}),
    # zone ln 4 = 1.386: zone1 3 -> 4.16, zone2 6 -> 8.32; node ln 4: a 2 -> 2.77, x 2 -> 2.77:
    # a 6.93 = 7, x 11.09 = 11; 100*(11+7-s)/11: a 100, x 63.
    ("two Constraints on zone and node, 2 out of 4 nodes are candidates",
     pod("p", {"foo": ""}, spread=[sc(1, "zone", SA, FOO), sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a", zone="zone1"), hn("node-x", zone="zone2")], [hn("node-b", zone="zone1"), hn("node-y", zone="zone2")],
     foo_pods({"node-a": 2, "node-b": 1, "node-x": 2, "node-y": 4}), {"node-a": 100, "node-x": 63}),
    # zone (foo) 2/2/1/1 at ln 4, node (bar) 0/1/0/1 at ln 6 = 1.79:
    # a 2.77 = 3, b 2.77+1.79 = 4.57 = 5, x 1.39 = 1, y 3.18 = 3; 100*(5+1-s)/5: 60, 20, 100, 60.
    ("two Constraints on zone and node, with different labelSelectors",
     pod("p", {"foo": "", "bar": ""}, spread=[sc(1, "zone", SA, FOO), sc(1, HOSTNAME, SA, BAR)]),
     [hn("node-a", zone="zone1"), hn("node-b", zone="zone1"), hn("node-x", zone="zone2"), hn("node-y", zone="zone2")], [],
     [on("p-a1", "node-a", "foo"), pod("p-b1", {"foo": "", "bar": ""}, node_name="node-b"),
      on("p-y1", "node-y", "foo"), on("p-y2", "node-y", "bar")],
     {"node-a": 60, "node-b": 20, "node-x": 100, "node-y": 60}),
    # zone 0/0/2/2 -> a 0, b 1.79 = 2, x 2.77 = 3, y 4.57 = 5; 100*(5+0-s)/5: 100, 60, 40, 0.
    ("two Constraints on zone and node, with different labelSelectors, some nodes have 0 pods",
     pod("p", {"foo": "", "bar": ""}, spread=[sc(1, "zone", SA, FOO), sc(1, HOSTNAME, SA, BAR)]),
     [hn("node-a", zone="zone1"), hn("node-b", zone="zone1"), hn("node-x", zone="zone2"), hn("node-y", zone="zone2")], [],
     [on("p-b1", "node-b", "bar"), on("p-x1", "node-x", "foo"), pod("p-y1", {"foo": "", "bar": ""}, node_name="node-y")],
     {"node-a": 100, "node-b": 60, "node-x": 40, "node-y": 0}),
    # zone ln 4: zone1 2 -> 2.77, zone2 1 -> 1.39; node ln 5 = 1.61: b +1.61:
    # a 3, b 4.38 = 4, x 1; 100*(4+1-s)/4: 50, 25, 100.
    ("two Constraints on zone and node, with different labelSelectors, 3 out of 4 nodes are candidates",
     pod("p", {"foo": "", "bar": ""}, spread=[sc(1, "zone", SA, FOO), sc(1, HOSTNAME, SA, BAR)]),
     [hn("node-a", zone="zone1"), hn("node-b", zone="zone1"), hn("node-x", zone="zone2")], [hn("node-y", zone="zone2")],
     [on("p-a1", "node-a", "foo"), pod("p-b1", {"foo": "", "bar": ""}, node_name="node-b"),
      on("p-y1", "node-y", "foo"), on("p-y2", "node-y", "bar")],
     {"node-a": 50, "node-b": 25, "node-x": 100}),
    # ln 4: a 1 -> 1.39 = 1, b 2 -> 2.77 = 3; 100*(3+1-s)/3: 100, 33.
    ("existing pods in a different namespace do not count", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b")], [],
     [on("p-a1", "node-a", "foo", ns="ns1"), on("p-a2", "node-a", "foo"), on("p-b1", "node-b", "foo"), on("p-b2", "node-b", "foo")],
     {"node-a": 100, "node-b": 33}),
    ("terminating Pods should be excluded", pod("p", {"foo": ""}, spread=[sc(1, HOSTNAME, SA, FOO)]),
     [hn("node-a"), hn("node-b")], [], [on("p-a", "node-a", "foo", terminating=True), on("p-b", "node-b", "foo")],
     {"node-a": 100, "node-b": 0}),
    # key "node" (not hostname): ln(3+2) = 1.61, +1: a 2 -> 4.22 = 4, b 1 -> 2.61 = 3, c 1 -> 3;
    # 100*(4+3-s)/4: 75, 100, 100... upstream expects 75/75/100 because b has 2 pods.
    ("minDomains has no effect when ScheduleAnyway",
     pod("p", {"foo": ""}, spread=[sc(2, "node", SA, FOO, min_domains=10)]),
     [node("node-a", {"node": "node-a"}), node("node-b", {"node": "node-b"}), node("node-c", {"node": "node-c"})], [],
     foo_pods({"node-a": 2, "node-b": 2, "node-c": 1}), {"node-a": 75, "node-b": 75, "node-c": 100}),
    # node-c excluded from counting (Honor): a 2 -> 2*1.61 = 3, b 1.61 = 2, c 0; 100*(3+0-s)/3: 0, 33, 100.
    ("NodeAffinityPolicy honoed with labelSelectors",
     pod("p", {"foo": ""}, node_selector={"foo": ""}, spread=[sc(1, "node", SA, FOO)]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}), node("node-c", {"node": "node-c"})],
     [], foo_pods({"node-a": 2, "node-b": 1, "node-c": 1}), {"node-a": 0, "node-b": 33, "node-c": 100}),
    # Ignore: c counts 1 too: a 3, b 2, c 2; 100*(3+2-s)/3: 66, 100, 100.
    ("NodeAffinityPolicy ignored with labelSelectors",
     pod("p", {"foo": ""}, node_selector={"foo": ""}, spread=[sc(1, "node", SA, FOO, affinity_policy="Ignore")]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}), node("node-c", {"node": "node-c"})],
     [], foo_pods({"node-a": 2, "node-b": 1, "node-c": 1}), {"node-a": 66, "node-b": 100, "node-c": 100}),
    ("NodeAffinityPolicy honoed with nodeAffinity",
     pod("p", {"foo": ""}, affinity=node_affinity_in("foo", [""]), spread=[sc(1, "node", SA, FOO)]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}), node("node-c", {"node": "node-c"})],
     [], foo_pods({"node-a": 2, "node-b": 1, "node-c": 1}), {"node-a": 0, "node-b": 33, "node-c": 100}),
    ("NodeAffinityPolicy ignored with nodeAffinity",
     pod("p", {"foo": ""}, affinity=node_affinity_in("foo", [""]), spread=[sc(1, "node", SA, FOO, affinity_policy="Ignore")]),
     [node("node-a", {"node": "node-a", "foo": ""}), node("node-b", {"node": "node-b", "foo": ""}), node("node-c", {"node": "node-c"})],
     [], foo_pods({"node-a": 2, "node-b": 1, "node-c": 1}), {"node-a": 66, "node-b": 100, "node-c": 100}),
    ("NodeTaintsPolicy honored", pod("p", {"foo": ""}, spread=[sc(1, "node", SA, FOO, taints_policy="Honor")]),
     [node("node-a", {"node": "node-a"}), node("node-b", {"node": "node-b"}), node("node-c", {"node": "node-c"}, [UNSCHEDULABLE_TAINT])],
     [], foo_pods({"node-a": 2, "node-b": 1, "node-c": 1}), {"node-a": 0, "node-b": 33, "node-c": 100}),
    ("NodeTaintsPolicy ignored", pod("p", {"foo": ""}, spread=[sc(1, "node", SA, FOO)]),
     [node("node-a", {"node": "node-a"}), node("node-b", {"node": "node-b"}), node("node-c", {"node": "node-c"}, [UNSCHEDULABLE_TAINT])],
     [], foo_pods({"node-a": 2, "node-b": 1, "node-c": 1}), {"node-a": 66, "node-b": 100, "node-c": 100}),
]


@pytest.mark.parametrize("name,p,candidates,failed,existing,want", SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_score(name: str, p: Any, candidates: Any, failed: Any, existing: Any, want: dict[str, int]) -> None:
    table = table_of([*candidates, *failed], existing)
    names = [n["metadata"]["name"] for n in candidates]
    assert run_score(pts.new({}, "args"), p, table, names) == want
    assert explained_scores(table, p, pts.NAME, names) == want


def test_system_defaulting_uses_service_selector() -> None:
    # upstream "system defaulting, nodes don't have zone, pods match service": hostname maxSkew 3
    # only (nodes have no zone, and system defaults do not require every key):
    # 4/3/2/1 at ln 6 = 1.79, +2 -> 9, 7, 6, 4 -> 44, 66, 77, 100, as with one constraint.
    nodes = [hn("node-a"), hn("node-b"), hn("node-c"), hn("node-d")]
    table = table_of(nodes, foo_pods({"node-a": 4, "node-b": 3, "node-c": 2, "node-d": 1}))
    Workloads.of(table).apply({"kind": "Service", "metadata": {"name": "s", "namespace": "default"},
                               "spec": {"selector": {"foo": ""}}})
    got = run_score(pts.new({}, "args"), pod("p", {"foo": ""}), table, ["node-a", "node-b", "node-c", "node-d"])
    assert got == {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100}


def test_no_workload_selector_means_no_default_spreading() -> None:
    table = table_of([hn("node-a"), hn("node-b")], foo_pods({"node-a": 3}))
    plugin = pts.new({}, "args")
    state: dict[str, Any] = {}
    assert plugin.prefilter(pod("p", {"foo": ""}), table, state) is None
    assert plugin.score(pod("p", {"foo": ""}), table, __import__("numpy").array([0, 1]), state) is None


def test_list_defaulting_with_replicaset_owner_filters() -> None:
    # defaultConstraints (List) apply DoNotSchedule too, selector from the owning ReplicaSet:
    # hostname 3/0 -> node-a 3+1-0 = 4 > 1.
    plugin = pts.new({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule"}]}, "args")
    table = table_of([hn("node-a"), hn("node-b")], foo_pods({"node-a": 3}))
    Workloads.of(table).apply({"kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "default"},
                               "spec": {"selector": {"matchLabels": {"foo": ""}}}})
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "controller": True, "uid": "u"}
    got, _ = run_filter(plugin, pod("p", {"foo": ""}, owner=owner), table)
    assert got == {"node-a": SKEW, "node-b": OK}


@pytest.mark.parametrize("args,path", [
    ({"defaultingType": "Other"}, "args.defaultingType"),
    ({"defaultConstraints": [{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}]},
     "args.defaultConstraints"),
    ({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 0, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}]},
     "args.defaultConstraints[0].maxSkew"),
    ({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "", "whenUnsatisfiable": "DoNotSchedule"}]},
     "args.defaultConstraints[0].topologyKey"),
    ({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "Maybe"}]},
     "args.defaultConstraints[0].whenUnsatisfiable"),
    ({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}]},
     "args.defaultConstraints[0].labelSelector"),
    ({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"},
        {"maxSkew": 2, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}]}, "args.defaultConstraints[1]"),
    ({"unknown": 1}, "args.unknown"),
])
def test_args_errors_name_the_field(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ArgsError) as e:
        pts.new(args, "args")
    assert e.value.path == path


@pytest.mark.parametrize("constraint,fragment", [
    (sc(1, "zone", DNS, {"matchExpressions": [{"key": "foo", "operator": "Bogus"}]}),
     "obtaining pod's hard topology spread constraints: spec.topologySpreadConstraints[0].labelSelector"
     '.matchExpressions[0].operator: "Bogus" is not a valid label selector operator'),
    (sc(1, "zone", SA, {"matchExpressions": [{"key": "foo", "operator": "In"}]}),
     "obtaining pod's soft topology spread constraints: spec.topologySpreadConstraints[0].labelSelector"
     ".matchExpressions[0].values: for 'in', 'notin' operators, values set can't be empty"),
    ({"maxSkew": "one", "topologyKey": "zone", "whenUnsatisfiable": DNS}, "spec.topologySpreadConstraints[0].maxSkew"),
])
def test_invalid_constraints_are_prefilter_rejections(constraint: dict[str, Any], fragment: str) -> None:
    table = table_of(FOUR)
    got, _ = run_filter(pts.new({}, "args"), pod("p", {"foo": ""}, spread=[constraint]), table)
    assert all(fragment in msg for msg in got.values()), got


def test_match_label_keys_and_with_selector() -> None:
    # matchLabelKeys [app] adds app=web: only p-a1 (foo, app=web) counts: a 1+1-0 = 2 > 1.
    p = pod("p", {"foo": "", "app": "web"}, spread=[sc(1, "node", DNS, FOO, match_label_keys=["app"])])
    existing = [pod("p-a1", {"foo": "", "app": "web"}, node_name="node-a"), pod("p-b1", {"foo": "", "app": "db"}, node_name="node-b")]
    got, _ = run_filter(pts.new({}, "args"), p, table_of(FOUR, existing))
    assert got == {"node-a": SKEW, "node-b": OK, "node-x": OK, "node-y": OK}


def test_counters_follow_pod_and_node_changes() -> None:
    # One counter, shared by both decisions, updated by add/remove and by a swap-remove of a node.
    plugin = pts.new({}, "args")
    table = table_of(FOUR, spread_2103())
    p = pod("p", {"foo": ""}, spread=[sc(1, "node", DNS, FOO)])
    assert run_filter(plugin, p, table)[0]["node-x"] == OK
    table.add_pod(on("p-x1", "node-x", "foo"), "node-x")
    table.add_pod(on("p-x2", "node-x", "foo"), "node-x")
    # 2/1/2/3: min 1 (node-b): b 1+1-1 = 1 ok, x 2+1-1 = 2 > 1.
    assert run_filter(plugin, p, table)[0] == {"node-a": SKEW, "node-b": OK, "node-x": SKEW, "node-y": SKEW}
    table.remove_node("node-b")  # node-y moves into node-b's row
    # 2/-/2/3: min 2: a 1 ok, x 1 ok, y 2 > 1.
    assert run_filter(plugin, p, table)[0] == {"node-a": OK, "node-y": SKEW, "node-x": OK}
    table.remove_pod("default/p-y1")
    table.remove_pod("default/p-y2")
    # 2/-/2/1: min 1: a 2+1-1 = 2 > 1, x 2 > 1, y 1 ok.
    assert run_filter(plugin, p, table)[0] == {"node-a": SKEW, "node-y": OK, "node-x": SKEW}
