"""InterPodAffinity: upstream's interpodaffinity filtering_test.go
(TestRequiredAffinitySingleNode) and scoring_test.go (TestPreferredAffinity) tables,
plus args, PreFilter errors, namespace selectors, matchLabelKeys and the term index."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.args import ArgsError
from scoring.plugins import inter_pod_affinity as ipa
from scoring.plugins.pod_counters import PodCounters
from scoring.plugins.pod_selectors import EVERYTHING, PodMatcher
from scoring.plugins.workloads import Namespaces
from tests.scoring.pod_constraint_helpers import explained_scores, explained_verdicts, node, pod, run_filter, run_score, table_of

OK = ""
AFF, ANTI, EXISTING = (ipa.ERR_REASON_AFFINITY_RULES_NOT_MATCH, ipa.ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
                       ipa.ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH)


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


def term(*exprs: dict[str, Any], key: str = "", namespaces: list[str] | None = None,
         ns_selector: dict[str, Any] | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"labelSelector": {"matchExpressions": list(exprs)}, "topologyKey": key}
    if namespaces is not None:
        t["namespaces"] = namespaces
    if ns_selector is not None:
        t["namespaceSelector"] = ns_selector
    return t


def required(affinity: list[Any] | None = None, anti: list[Any] | None = None) -> dict[str, Any]:
    """createPodWithAffinityTerms: required pod affinity / anti-affinity terms."""
    out: dict[str, Any] = {}
    if affinity is not None:
        out["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": affinity}
    if anti is not None:
        out["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": anti}
    return out


SERVICE = {"service": "securityscan"}
SECURITY = {"security": "S1"}
NODE1 = node("machine1", {"region": "r1", "zone": "z11"})

# (name, incoming labels, incoming affinity, existing pods [(labels, affinity, ns)], want)
FILTER_CASES = [
    ("A pod that has no required pod affinity scheduling rules can schedule onto a node with no existing pods",
     {}, None, [], OK),
    ("satisfies with requiredDuringSchedulingIgnoredDuringExecution in PodAffinity using In operator that matches the existing pod",
     SECURITY, required([term(expr("service", "In", "securityscan", "value2"), key="region")]), [(SERVICE, None, "default")], OK),
    ("satisfies the pod with requiredDuringSchedulingIgnoredDuringExecution in PodAffinity using not in operator in labelSelector that matches the existing pod",
     SECURITY, required([term(expr("service", "NotIn", "securityscan3", "value3"), key="region")]), [(SERVICE, None, "default")], OK),
    # namespaces [DiffNameSpace] and no topology key: no node has key "" -> unresolvable.
    ("Does not satisfy the PodAffinity with labelSelector because of diff Namespace",
     SECURITY, required([term(expr("service", "In", "securityscan", "value2"), namespaces=["DiffNameSpace"])]),
     [(SERVICE, None, "ns")], AFF),
    ("Doesn't satisfy the PodAffinity because of unmatching labelSelector with the existing pod",
     SERVICE, required([term(expr("service", "In", "antivirusscan", "value2"))]), [(SERVICE, None, "default")], AFF),
    ("satisfies the PodAffinity with different label Operators in multiple RequiredDuringSchedulingIgnoredDuringExecution ",
     SECURITY, required([term(expr("service", "Exists"), expr("wrongkey", "DoesNotExist"), key="region"),
                         term(expr("service", "In", "securityscan"), expr("service", "NotIn", "WrongValue"), key="region")]),
     [(SERVICE, None, "default")], OK),
    # The existing pod matches the first term but not the second (securityscan2): no pod matches
    # all terms, and the incoming pod does not match its own terms.
    ("The labelSelector requirements(items of matchExpressions) are ANDed, the pod cannot schedule onto the node because one of the matchExpression item don't match.",
     SECURITY, required([term(expr("service", "Exists"), expr("wrongkey", "DoesNotExist"), key="region"),
                         term(expr("service", "In", "securityscan2"), expr("service", "NotIn", "WrongValue"), key="region")]),
     [(SERVICE, None, "default")], AFF),
    ("satisfies the PodAffinity and PodAntiAffinity with the existing pod",
     SECURITY, required([term(expr("service", "In", "securityscan", "value2"), key="region")],
                        [term(expr("service", "In", "antivirusscan", "value2"), key="node")]),
     [(SERVICE, None, "default")], OK),
    ("satisfies the PodAffinity and PodAntiAffinity and PodAntiAffinity symmetry with the existing pod",
     SECURITY, required([term(expr("service", "In", "securityscan", "value2"), key="region")],
                        [term(expr("service", "In", "antivirusscan", "value2"), key="node")]),
     [(SERVICE, required(None, [term(expr("service", "In", "antivirusscan", "value2"), key="node")]), "default")], OK),
    ("satisfies the PodAffinity but doesn't satisfy the PodAntiAffinity with the existing pod",
     SECURITY, required([term(expr("service", "In", "securityscan", "value2"), key="region")],
                        [term(expr("service", "In", "securityscan", "value2"), key="zone")]),
     [(SERVICE, None, "default")], ANTI),
    ("satisfies the PodAffinity and PodAntiAffinity but doesn't satisfy PodAntiAffinity symmetry with the existing pod",
     SERVICE, required([term(expr("service", "In", "securityscan", "value2"), key="region")],
                       [term(expr("service", "In", "antivirusscan", "value2"), key="node")]),
     [(SERVICE, required(None, [term(expr("service", "In", "securityscan", "value2"), key="zone")]), "default")], EXISTING),
    ("pod matches its own Label in PodAffinity and that matches the existing pod Labels",
     SERVICE, required([term(expr("service", "NotIn", "securityscan", "value2"), key="region")]),
     [(SERVICE, None, "default")], AFF),
    ("verify that PodAntiAffinity from existing pod is respected when pod has no AntiAffinity constraints. doesn't satisfy PodAntiAffinity symmetry with the existing pod",
     SERVICE, None, [(SERVICE, required(None, [term(expr("service", "In", "securityscan", "value2"), key="zone")]), "default")],
     EXISTING),
    ("verify that PodAntiAffinity from existing pod is respected when pod has no AntiAffinity constraints. satisfy PodAntiAffinity symmetry with the existing pod",
     SERVICE, None, [(SERVICE, required(None, [term(expr("service", "NotIn", "securityscan", "value2"), key="zone")]), "default")],
     OK),
    ("satisfies the PodAntiAffinity with existing pod but doesn't satisfy PodAntiAffinity symmetry with incoming pod",
     SERVICE, required(None, [term(expr("service", "Exists"), key="region"), term(expr("security", "Exists"), key="region")]),
     [(SECURITY, required(None, [term(expr("security", "Exists"), key="zone")]), "default")], ANTI),
    ("PodAntiAffinity symmetry check a1: incoming pod and existing pod partially match each other on AffinityTerms",
     SERVICE, required(None, [term(expr("service", "Exists"), key="zone"), term(expr("security", "Exists"), key="zone")]),
     [(SECURITY, required(None, [term(expr("security", "Exists"), key="zone")]), "default")], ANTI),
    ("PodAntiAffinity symmetry check a2: incoming pod and existing pod partially match each other on AffinityTerms",
     SECURITY, required(None, [term(expr("security", "Exists"), key="zone")]),
     [(SERVICE, required(None, [term(expr("service", "Exists"), key="zone"), term(expr("security", "Exists"), key="zone")]), "default")],
     EXISTING),
    # Both directions match; the incoming pod's own anti-affinity is checked first.
    ("PodAntiAffinity symmetry check b1: incoming pod and existing pod partially match each other on AffinityTerms",
     {"abc": "", "xyz": ""}, required(None, [term(expr("abc", "Exists"), key="zone"), term(expr("def", "Exists"), key="zone")]),
     [({"def": "", "xyz": ""}, required(None, [term(expr("abc", "Exists"), key="zone"), term(expr("def", "Exists"), key="zone")]), "default")],
     ANTI),
    ("PodAntiAffinity symmetry check b2: incoming pod and existing pod partially match each other on AffinityTerms",
     {"def": "", "xyz": ""}, required(None, [term(expr("abc", "Exists"), key="zone"), term(expr("def", "Exists"), key="zone")]),
     [({"abc": "", "xyz": ""}, required(None, [term(expr("abc", "Exists"), key="zone"), term(expr("def", "Exists"), key="zone")]), "default")],
     ANTI),
]


@pytest.mark.parametrize("name,labels,affinity,existing,want", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filter_single_node(name: str, labels: Any, affinity: Any, existing: Any, want: str) -> None:
    pods = [pod(f"e{i}", lbl, affinity=aff, ns=ns, node_name="machine1") for i, (lbl, aff, ns) in enumerate(existing)]
    table = table_of([NODE1], pods)
    incoming = pod("p", labels, affinity=affinity)
    got, _ = run_filter(ipa.new({}, "args"), incoming, table)
    assert got == {"machine1": want}
    assert explained_verdicts(table, incoming, ipa.NAME) == {"machine1": want}


def preferred(weight: int, t: dict[str, Any]) -> dict[str, Any]:
    return {"weight": weight, "podAffinityTerm": t}


def pref(affinity: list[Any] | None = None, anti: list[Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if affinity:
        out["podAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": affinity}
    if anti:
        out["podAntiAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": anti}
    return out


S1, S2 = {"security": "S1"}, {"security": "S2"}
CHINA, INDIA, AZ1, AZ2 = {"region": "China"}, {"region": "India"}, {"az": "az1"}, {"az": "az2"}
CHINA_AZ1 = {"region": "China", "az": "az1"}
STAY_S1_REGION = pref([preferred(5, term(expr("security", "In", "S1"), key="region"))])
STAY_S2_REGION = pref([preferred(6, term(expr("security", "In", "S2"), key="region"))])
AFFINITY3 = pref([preferred(8, term(expr("security", "NotIn", "S1"), expr("security", "In", "S2"), key="region")),
                  preferred(2, term(expr("security", "Exists"), expr("wrongkey", "DoesNotExist"), key="region"))])
HARD = required([term(expr("security", "In", "S1", "value2"), key="region"),
                 term(expr("security", "Exists"), expr("wrongkey", "DoesNotExist"), key="region")])
AWAY_S1_AZ = pref(anti=[preferred(5, term(expr("security", "In", "S1"), key="az"))])
AWAY_S2_AZ = pref(anti=[preferred(5, term(expr("security", "In", "S2"), key="az"))])
STAY_S1_AWAY_S2 = {**pref([preferred(8, term(expr("security", "In", "S1"), key="region"))]),
                   **pref(anti=[preferred(5, term(expr("security", "In", "S2"), key="az"))])}
TEAM1 = {"matchExpressions": [expr("team", "In", "team1")]}
AFF_NS_SELECTOR = pref([preferred(5, term(expr("security", "In", "S1"), key="region", namespaces=["subteam2.team2"], ns_selector=TEAM1))])
ANTI_NS_SELECTOR = pref(anti=[preferred(5, term(expr("security", "In", "S1"), key="region", namespaces=["subteam2.team2"], ns_selector=TEAM1))])
NAMESPACES = {"subteam1.team1": {"team": "team1"}, "subteam2.team1": {"team": "team1"},
              "subteam1.team2": {"team": "team2"}, "subteam2.team2": {"team": "team2"}}

# (name, (labels, affinity, ns), existing [(node, labels, affinity, ns)], nodes [(name, labels)], want)
SCORE_CASES = [
    ("all nodes are same priority as Affinity is nil", (S1, None, "default"), [],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 0, "node2": 0, "node3": 0}),
    # region China gets +5 (node1's S1 pod); node3 has no region: 5/0/0 -> 100/0/0.
    ("Affinity: pod that matches topology key & pods in nodes will get high score comparing to otherswhich doesn't match either pods in nodes or in topology key",
     (S1, STAY_S1_REGION, "default"), [("node1", S1, None, "default"), ("node2", S2, None, "default"), ("node3", S1, None, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 100, "node2": 0, "node3": 0}),
    ("All the nodes that have the same topology key & label value with one of them has an existing pod that match the affinity rules, have the same score",
     ({}, STAY_S1_REGION, "default"), [("node1", S1, None, "default")],
     [("node1", CHINA), ("node2", CHINA_AZ1), ("node3", INDIA)], {"node1": 100, "node2": 100, "node3": 0}),
    # China 3 pods x 6 = 18, India 2 x 6 = 12: min 12: (18-12)/6 = 100, 0.
    ("Affinity: nodes in one region has more matching pods comparing to other region, so the region which has more matches will get high score",
     (S1, STAY_S2_REGION, "default"),
     [("node1", S2, None, "default"), ("node1", S2, None, "default"), ("node2", S2, None, "default"),
      ("node3", S2, None, "default"), ("node4", S2, None, "default"), ("node5", S2, None, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", CHINA), ("node4", CHINA), ("node5", INDIA)],
     {"node1": 100, "node2": 0, "node3": 100, "node4": 100, "node5": 0}),
    # China: S1 pod matches term 2 (+2); India: S2 matches both (+8+2 = 10); node3 none:
    # 2/10/0 -> 100*2/10 = 20, 100, 0.
    ("Affinity: different Label operators and values for pod affinity scheduling preference, including some match failures ",
     (S1, AFFINITY3, "default"), [("node1", S1, None, "default"), ("node2", S2, None, "default"), ("node3", S1, None, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 20, "node2": 100, "node3": 0}),
    # Existing S2 pod on node2 prefers S2 (weight 6): India +6.
    ("Affinity symmetry: considered only the preferredDuringSchedulingIgnoredDuringExecution in pod affinity symmetry",
     (S2, None, "default"), [("node1", S1, STAY_S1_REGION, "default"), ("node2", S2, STAY_S2_REGION, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 0, "node2": 100, "node3": 0}),
    # The term on node1 selects namespaces labelled team1; the incoming pod's namespace is one: China +5.
    ("Affinity symmetry with namespace selector",
     (S1, None, "subteam1.team1"), [("node1", S1, AFF_NS_SELECTOR, "default"), ("node2", S2, STAY_S2_REGION, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 100, "node2": 0, "node3": 0}),
    # China -5; min -5, max 0: node1 0, node2 and node3 (0+5)/5 = 100.
    ("AntiAffinity symmetry with namespace selector",
     (S1, None, "subteam1.team1"), [("node1", S1, ANTI_NS_SELECTOR, "default"), ("node2", S2, STAY_S2_REGION, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 0, "node2": 100, "node3": 100}),
    # hardPodAffinityWeight 1 per required term matching the incoming S1 pod: node1's pod has 2
    # matching terms (China +2), node2's too (India +2): 2/2/0 -> 100, 100, 0.
    ("Affinity symmetry: considered RequiredDuringSchedulingIgnoredDuringExecution in pod affinity symmetry",
     (S1, None, "default"), [("node1", S1, HARD, "default"), ("node2", S2, HARD, "default")],
     [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)], {"node1": 100, "node2": 100, "node3": 0}),
    ("Anti Affinity: pod that does not match existing pods in node will get high score ",
     (S1, AWAY_S1_AZ, "default"), [("node1", S1, None, "default"), ("node2", S2, None, "default")],
     [("node1", AZ1), ("node2", CHINA)], {"node1": 0, "node2": 100}),
    ("Anti Affinity: pod that does not match topology key & match the pods in nodes will get higher score comparing to others ",
     (S1, AWAY_S1_AZ, "default"), [("node1", S1, None, "default"), ("node2", S1, None, "default")],
     [("node1", AZ1), ("node2", CHINA)], {"node1": 0, "node2": 100}),
    ("Anti Affinity: one node has more matching pods comparing to other node, so the node which has more unmatches will get high score",
     (S1, AWAY_S1_AZ, "default"), [("node1", S1, None, "default"), ("node1", S1, None, "default"), ("node2", S2, None, "default")],
     [("node1", AZ1), ("node2", INDIA)], {"node1": 0, "node2": 100}),
    # node1's pod avoids S2 (the incoming pod) in az1: -5; node2's avoids S1: no match.
    ("Anti Affinity symmetry: the existing pods in node which has anti affinity match will get high score",
     (S2, None, "default"), [("node1", S1, AWAY_S2_AZ, "default"), ("node2", S2, AWAY_S1_AZ, "default")],
     [("node1", AZ1), ("node2", AZ2)], {"node1": 0, "node2": 100}),
    ("Affinity and Anti Affinity: considered only preferredDuringSchedulingIgnoredDuringExecution in both pod affinity & anti affinity",
     (S1, STAY_S1_AWAY_S2, "default"), [("node1", S1, None, "default"), ("node2", S1, None, "default")],
     [("node1", CHINA), ("node2", AZ1)], {"node1": 100, "node2": 0}),
    # China: 5 S1 pods in China... node1 (2), node3 (2), node4 (1) -> +8 x 5 = 40; India 2 x 8 = 16;
    # no S2 pods: 40/16/40/40/16 -> 100, 0, 100, 100, 0.
    ("Affinity and Anti Affinity: considering both affinity and anti-affinity, the pod to schedule and existing pods have the same labels",
     (S1, STAY_S1_AWAY_S2, "default"),
     [("node1", S1, None, "default"), ("node1", S1, None, "default"), ("node2", S1, None, "default"), ("node3", S1, None, "default"),
      ("node3", S1, None, "default"), ("node4", S1, None, "default"), ("node5", S1, None, "default")],
     [("node1", CHINA_AZ1), ("node2", INDIA), ("node3", CHINA), ("node4", CHINA), ("node5", INDIA)],
     {"node1": 100, "node2": 0, "node3": 100, "node4": 100, "node5": 0}),
    # China +8 (own affinity), az1 -5 (own anti vs S2 on node2), India +8 (node3's pod prefers S1),
    # az2 -5 (node4's pod avoids S1): 8/-5/8/-5 -> 100, 0, 100, 0.
    ("Affinity and Anti Affinity and symmetry: considered only preferredDuringSchedulingIgnoredDuringExecution in both pod affinity & anti affinity & symmetry",
     (S1, STAY_S1_AWAY_S2, "default"),
     [("node1", S1, None, "default"), ("node2", S2, None, "default"), ("node3", {}, STAY_S1_AWAY_S2, "default"),
      ("node4", {}, AWAY_S1_AZ, "default")],
     [("node1", CHINA), ("node2", AZ1), ("node3", INDIA), ("node4", AZ2)],
     {"node1": 100, "node2": 0, "node3": 100, "node4": 0}),
    # node2's pod prefers S1 in region China (+8 to both nodes): equal -> 0, 0.
    ("Avoid panic when partial nodes in a topology don't have pods with affinity",
     (S1, None, "default"), [("node1", S1, None, "default"), ("node2", {}, STAY_S1_AWAY_S2, "default")],
     [("node1", CHINA), ("node2", CHINA)], {"node1": 0, "node2": 0}),
]


def _score_table(existing: Any, nodes: Any) -> Any:
    pods = [pod(f"e{i}", lbl, affinity=aff, ns=ns, node_name=n) for i, (n, lbl, aff, ns) in enumerate(existing)]
    table = table_of([node(name, labels) for name, labels in nodes], pods)
    for ns, labels in NAMESPACES.items():
        Namespaces.of(table).set(ns, labels)
    return table


@pytest.mark.parametrize("name,incoming,existing,nodes,want", SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_preferred_affinity(name: str, incoming: Any, existing: Any, nodes: Any, want: dict[str, int]) -> None:
    table = _score_table(existing, nodes)
    labels, affinity, ns = incoming
    incoming = pod("p", labels, affinity=affinity, ns=ns)
    got = run_score(ipa.new({}, "args"), incoming, table, [n for n, _ in nodes])
    assert got == want
    assert explained_scores(table, incoming, ipa.NAME, [n for n, _ in nodes]) == want


def test_affinity_with_pods_matching_namespace_selector() -> None:
    # upstream "Affinity with pods matching NamespaceSelector": the incoming pod's term picks
    # namespaces labelled team1 plus subteam2.team2. China: 2 S1 pods in subteam1.team1 (+10);
    # the subteam1.team2 pod does not count: 10/0 -> 100, 0.
    existing = [("node1", S1, None, "subteam1.team1"), ("node1", S1, None, "subteam1.team1"),
                ("node1", S1, None, "subteam1.team2"), ("node2", S1, None, "subteam1.team2")]
    table = _score_table(existing, [("node1", CHINA), ("node2", INDIA)])
    got = run_score(ipa.new({}, "args"), pod("p", S1, affinity=AFF_NS_SELECTOR, ns="subteam1.team1"), table, ["node1", "node2"])
    assert got == {"node1": 100, "node2": 0}


def test_hard_pod_affinity_weight_and_ignore_preferred_terms() -> None:
    existing = [("node1", S1, HARD, "default"), ("node2", S2, STAY_S1_REGION, "default")]
    table = _score_table(existing, [("node1", CHINA), ("node2", INDIA), ("node3", AZ1)])
    p = pod("p", S1)
    # weight 0: only node2's preferred term (+5 India) counts.
    assert run_score(ipa.new({"hardPodAffinityWeight": 0}, "a"), p, table, ["node1", "node2", "node3"]) == \
        {"node1": 0, "node2": 100, "node3": 0}
    # weight 10: China 2 terms x 10 = 20, India 5: 20/5/0 -> 100, 25, 0.
    assert run_score(ipa.new({"hardPodAffinityWeight": 10}, "a"), p, table, ["node1", "node2", "node3"]) == \
        {"node1": 100, "node2": 25, "node3": 0}
    # ignorePreferredTermsOfExistingPods and no preferred terms of its own: skipped.
    assert run_score(ipa.new({"ignorePreferredTermsOfExistingPods": True}, "a"), p, table, ["node1", "node2", "node3"]) == \
        {"node1": 0, "node2": 0, "node3": 0}


@pytest.mark.parametrize("args,path", [
    ({"hardPodAffinityWeight": 101}, "a.hardPodAffinityWeight"),
    ({"hardPodAffinityWeight": -1}, "a.hardPodAffinityWeight"),
    ({"ignorePreferredTermsOfExistingPods": "yes"}, "a.ignorePreferredTermsOfExistingPods"),
    ({"other": 1}, "a.other"),
])
def test_args_errors(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ArgsError) as e:
        ipa.new(args, "a")
    assert e.value.path == path


@pytest.mark.parametrize("affinity,message", [
    # upstream "invalid Affinity fails PreScore": caught at PreFilter here, naming the field.
    (pref([preferred(8, term(expr("security", "In", "{{.bad-value.}}"), key="region"))]),
     "parsing pod: preferredAffinityTerms: spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
     ".podAffinityTerm.labelSelector.matchExpressions[0].values[0]: Invalid value: '{{.bad-value.}}'"),
    (pref(anti=[preferred(5, term(expr("security", "In", "{{.bad-value.}}"), key="az"))]),
     "parsing pod: preferredAntiAffinityTerms: spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"),
    (required([term(expr("security", "Bogus"), key="region")]),
     'parsing pod: requiredAffinityTerms: spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]'
     '.labelSelector.matchExpressions[0].operator: "Bogus" is not a valid label selector operator'),
    (required(None, [term(expr("security", "Exists", "x"), key="region")]),
     "parsing pod: requiredAntiAffinityTerms: spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
     ".labelSelector.matchExpressions[0].values: values set must be empty for exists and does not exist"),
])
def test_invalid_terms_are_prefilter_rejections(affinity: dict[str, Any], message: str) -> None:
    table = _score_table([], [("node1", CHINA)])
    got, _ = run_filter(ipa.new({}, "args"), pod("p", S1, affinity=affinity), table)
    assert got["node1"].startswith(message), got


def test_existing_pod_with_invalid_terms_is_ignored_not_a_crash() -> None:
    bad = required(None, [term(expr("security", "Bogus"), key="region")])
    table = _score_table([("node1", S1, bad, "default")], [("node1", CHINA)])
    assert run_filter(ipa.new({}, "args"), pod("p", S1), table)[0] == {"node1": OK}


def test_first_pod_of_a_self_affine_group_may_go_anywhere_with_the_key() -> None:
    t = required([term(expr("app", "In", "web"), key="region")])
    table = _score_table([], [("node1", CHINA), ("node2", AZ1)])
    got, _ = run_filter(ipa.new({}, "args"), pod("p", {"app": "web"}, affinity=t), table)
    assert got == {"node1": OK, "node2": AFF}


def test_match_label_keys_and_mismatch_label_keys() -> None:
    # anti-affinity to app=web with matchLabelKeys [rev]: only rev=2 pods count (node1 has rev=1).
    t = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {**term(expr("app", "In", "web"), key="region"), "matchLabelKeys": ["rev"]}]}}
    table = _score_table([("node1", {"app": "web", "rev": "1"}, None, "default"),
                          ("node2", {"app": "web", "rev": "2"}, None, "default")], [("node1", CHINA), ("node2", INDIA)])
    got, _ = run_filter(ipa.new({}, "args"), pod("p", {"app": "web", "rev": "2"}, affinity=t), table)
    assert got == {"node1": OK, "node2": ANTI}
    t2 = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {**term(expr("app", "In", "web"), key="region"), "mismatchLabelKeys": ["rev"]}]}}
    got, _ = run_filter(ipa.new({}, "args"), pod("q", {"app": "web", "rev": "2"}, affinity=t2), table)
    assert got == {"node1": ANTI, "node2": OK}


def test_required_namespace_selector_reads_namespace_labels() -> None:
    t = required(None, [term(expr("app", "In", "web"), key="region", ns_selector=TEAM1)])
    table = _score_table([("node1", {"app": "web"}, None, "subteam2.team1"),
                          ("node2", {"app": "web"}, None, "subteam1.team2")], [("node1", CHINA), ("node2", INDIA)])
    got, _ = run_filter(ipa.new({}, "args"), pod("p", {}, affinity=t, ns="x"), table)
    assert got == {"node1": ANTI, "node2": OK}
    # An empty namespaceSelector means every namespace.
    t_all = required(None, [term(expr("app", "In", "web"), key="region", ns_selector={})])
    got, _ = run_filter(ipa.new({}, "args"), pod("q", {}, affinity=t_all, ns="x"), table)
    assert got == {"node1": ANTI, "node2": ANTI}


def test_term_index_follows_pod_removal() -> None:
    anti = required(None, [term(expr("app", "In", "web"), key="region")])
    table = _score_table([("node1", {"app": "db"}, anti, "default")], [("node1", CHINA), ("node2", INDIA)])
    plugin = ipa.new({}, "args")
    assert run_filter(plugin, pod("p", {"app": "web"}), table)[0] == {"node1": EXISTING, "node2": OK}
    table.remove_pod("default/e0")
    assert run_filter(plugin, pod("p", {"app": "web"}), table)[0] == {"node1": OK, "node2": OK}
    assert np.all(PodCounters.of(table).counts(PodMatcher(None, EVERYTHING)) == 0)
