"""NodeAffinity: filter and score cases ported from upstream's node_affinity_test.go
(TestNodeAffinity, TestNodeAffinityPriority) and component-helpers'
nodeaffinity_test.go, plus operator parsing and vecsched's rejection of an
affinity that does not parse."""

from typing import Any

import numpy as np
import pytest

from scoring.args import ArgsError
from scoring.framework import CycleState, Profile
from scoring.objects import node_from_json, pod_from_json
from scoring.plugins import node_affinity
from scoring.plugins.node_affinity import (
    ERR_REASON_CONFLICT,
    ERR_REASON_ENFORCED,
    ERR_REASON_NOT_IN_NODE_NAMES,
    ERR_REASON_POD,
    FieldRequirement,
    PreferredTerm,
    Requirement,
    Term,
)
from scoring.table import NodeTable
from tests.explain_support import explain_reasons, explain_scores

REQ = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


def _name_in(*values: str) -> dict[str, Any]:
    return {"key": "metadata.name", "operator": "In", "values": list(values)}


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def _pod(*, selector: dict[str, str] | None = None, affinity: dict[str, Any] | None = None) -> Any:
    spec: dict[str, Any] = {"containers": []}
    if selector is not None:
        spec["nodeSelector"] = selector
    if affinity is not None:
        spec["affinity"] = affinity
    return pod_from_json({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec})


def _table(*nodes: tuple[str, dict[str, str]]) -> NodeTable:
    t = NodeTable()
    for name, labels in nodes:
        t.set_node(node_from_json({"metadata": {"name": name, "labels": labels}}))
    return t


def _verdicts(plugin: node_affinity.NodeAffinity, pod: Any, table: NodeTable, *, prefilter: bool = True) -> dict[str, list[str]]:
    """Node name -> reasons (empty: fits), through PreFilter then Filter as a profile runs them."""
    if prefilter:
        profile = Profile(name="t", prefilters=[plugin], filters=[plugin], scorers=[])
        _, reasons = profile.run_filters(pod, table, {})
    else:
        reasons = list(plugin.filter(pod, table, {}) or [])
    return {name: [r.message for r in reasons if r.nodes[row]] for name, row in table.index.items()}


# ---- TestNodeAffinity -----------------------------------------------------------------------

GT = _required({"matchExpressions": [_expr("kernel-version", "Gt", "0204")]})
GPU_EXISTS_NOT_IN = _required({"matchExpressions": [_expr("GPU", "Exists"), _expr("GPU", "NotIn", "AMD", "INTER")]})
FOO_EXISTS = _required({"matchExpressions": [_expr("foo", "Exists")]})
ZONE_IN_NODE2 = {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchFields": [_name_in("node2")]}]}}}

FILTER_CASES = [
    # (id, pod, node name, labels, args, want reasons, run PreFilter)
    ("missing labels", _pod(selector={"foo": "bar"}), "node", {}, {}, [ERR_REASON_POD], True),
    ("same labels", _pod(selector={"foo": "bar"}), "node", {"foo": "bar"}, {}, [], True),
    ("node labels are superset", _pod(selector={"foo": "bar"}), "node", {"foo": "bar", "baz": "blah"}, {}, [], True),
    ("node labels are subset", _pod(selector={"foo": "bar", "baz": "blah"}), "node", {"foo": "bar"}, {},
     [ERR_REASON_POD], True),
    ("Pod with matchExpressions using In operator that matches the existing node",
     _pod(affinity=_required({"matchExpressions": [_expr("foo", "In", "bar", "value2")]})), "node", {"foo": "bar"}, {},
     [], True),
    # 0206 > 0204 as integers (Go's ParseInt reads the leading zeros as decimal)
    ("Pod with matchExpressions using Gt operator that matches the existing node",
     _pod(affinity=GT), "node", {"kernel-version": "0206"}, {}, [], True),
    ("Pod with matchExpressions using NotIn operator that matches the existing node",
     _pod(affinity=_required({"matchExpressions": [_expr("mem-type", "NotIn", "DDR", "DDR2")]})), "node",
     {"mem-type": "DDR3"}, {}, [], True),
    ("Pod with matchExpressions using Exists operator that matches the existing node",
     _pod(affinity=_required({"matchExpressions": [_expr("GPU", "Exists")]})), "node", {"GPU": "NVIDIA-GRID-K1"}, {},
     [], True),
    ("Pod with affinity that don't match node's labels won't schedule onto the node",
     _pod(affinity=_required({"matchExpressions": [_expr("foo", "In", "value1", "value2")]})), "node", {"foo": "bar"},
     {}, [ERR_REASON_POD], True),
    # a term with an empty matchExpressions (and no matchFields) matches nothing
    ("Pod with empty MatchExpressions is not a valid value will match no objects and won't schedule onto the node",
     _pod(affinity=_required({"matchExpressions": []})), "node", {"foo": "bar"}, {}, [ERR_REASON_POD], True),
    ("Pod with no Affinity will schedule onto a node", _pod(), "node", {"foo": "bar"}, {}, [], True),
    ("Pod with Affinity but nil NodeSelector will schedule onto a node",
     _pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": None}}), "node", {"foo": "bar"},
     {}, [], True),
    ("Pod with multiple matchExpressions ANDed that matches the existing node",
     _pod(affinity=GPU_EXISTS_NOT_IN), "node", {"GPU": "NVIDIA-GRID-K1"}, {}, [], True),
    ("Pod with multiple matchExpressions ANDed that doesn't match the existing node",
     _pod(affinity=_required({"matchExpressions": [_expr("GPU", "Exists"), _expr("GPU", "In", "AMD", "INTER")]})),
     "node", {"GPU": "NVIDIA-GRID-K1"}, {}, [ERR_REASON_POD], True),
    ("Pod with multiple NodeSelectorTerms ORed in affinity, matches the node's labels and will schedule onto the node",
     _pod(affinity=_required({"matchExpressions": [_expr("foo", "In", "bar", "value2")]},
                             {"matchExpressions": [_expr("diffkey", "In", "wrong", "value2")]})),
     "node", {"foo": "bar"}, {}, [], True),
    ("Pod with an Affinity and a PodSpec.NodeSelector(the old thing that we are deprecating) both are satisfied, "
     "will schedule onto the node", _pod(selector={"foo": "bar"}, affinity=FOO_EXISTS), "node", {"foo": "bar"}, {},
     [], True),
    ("Pod with an Affinity matches node's labels but the PodSpec.NodeSelector(the old thing that we are deprecating) "
     "is not satisfied, won't schedule onto the node", _pod(selector={"foo": "bar"}, affinity=FOO_EXISTS), "node",
     {"foo": "barrrrrr"}, {}, [ERR_REASON_POD], True),
    # Upstream drops the unparsable term (ErrReasonPod); vecsched rejects the pod naming the field.
    ("Pod with an invalid value in Affinity term won't be scheduled onto the node",
     _pod(affinity=_required({"matchExpressions": [_expr("foo", "NotIn", "invalid value: ___@#$%^")]})), "node",
     {"foo": "bar"}, {},
     [f"{REQ}.nodeSelectorTerms[0].matchExpressions[0].values[0][foo]: Invalid value: \"invalid value: ___@#$%^\": "
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
      "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"], True),
    ("Pod with matchFields using In operator that matches the existing node",
     _pod(affinity=_required({"matchFields": [_name_in("node1")]})), "node1", {}, {}, [], True),
    # Upstream's PreFilterResult {node1} leaves node2 out: the scheduler reports it as not satisfying the plugin.
    ("Pod with matchFields using In operator that does not match the existing node",
     _pod(affinity=_required({"matchFields": [_name_in("node1")]})), "node2", {}, {}, [ERR_REASON_NOT_IN_NODE_NAMES],
     True),
    ("Pod with two terms: matchFields does not match, but matchExpressions matches",
     _pod(affinity=_required({"matchFields": [_name_in("node1")]}, {"matchExpressions": [_expr("foo", "In", "bar")]})),
     "node2", {"foo": "bar"}, {}, [], True),
    ("Pod with one term: matchFields does not match, but matchExpressions matches",
     _pod(affinity=_required({"matchFields": [_name_in("node1")], "matchExpressions": [_expr("foo", "In", "bar")]})),
     "node2", {"foo": "bar"}, {}, [ERR_REASON_NOT_IN_NODE_NAMES], True),
    ("Pod with one term: both matchFields and matchExpressions match",
     _pod(affinity=_required({"matchFields": [_name_in("node1")], "matchExpressions": [_expr("foo", "In", "bar")]})),
     "node1", {"foo": "bar"}, {}, [], True),
    ("Pod with two terms: both matchFields and matchExpressions do not match",
     _pod(affinity=_required({"matchFields": [_name_in("node1")]},
                             {"matchExpressions": [_expr("foo", "In", "not-match-to-bar")]})),
     "node2", {"foo": "bar"}, {}, [ERR_REASON_POD], True),
    # PreFilterResult {node1} u {node2}
    ("Pod with two terms of node.Name affinity",
     _pod(affinity=_required({"matchFields": [_name_in("node1")]}, {"matchFields": [_name_in("node2")]})),
     "node2", {}, {}, [], True),
    # {node1} n {node2} is empty: PreFilter rejects the pod everywhere
    ("Pod with two conflicting mach field requirements",
     _pod(affinity=_required({"matchFields": [_name_in("node1"), _name_in("node2")]})), "node2", {"foo": "bar"}, {},
     [ERR_REASON_CONFLICT], True),
    ("Matches added affinity and Pod's node affinity",
     _pod(affinity=_required({"matchExpressions": [_expr("zone", "In", "foo")]})), "node2", {"zone": "foo"},
     ZONE_IN_NODE2, [], True),
    ("Matches added affinity but not Pod's node affinity",
     _pod(affinity=_required({"matchExpressions": [_expr("zone", "In", "bar")]})), "node2", {"zone": "foo"},
     ZONE_IN_NODE2, [ERR_REASON_POD], True),
    ("Doesn't match added affinity", _pod(), "node2", {"zone": "foo"},
     {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
         "nodeSelectorTerms": [{"matchExpressions": [_expr("zone", "In", "bar")]}]}}},
     [ERR_REASON_ENFORCED], True),
    ("Matches node selector correctly even if PreFilter is not called", _pod(selector={"foo": "bar"}), "node",
     {"foo": "bar", "baz": "blah"}, {}, [], False),
    ("Matches node affinity correctly even if PreFilter is not called", _pod(affinity=GPU_EXISTS_NOT_IN), "node",
     {"GPU": "NVIDIA-GRID-K1"}, {}, [], False),
]


@pytest.mark.parametrize(("pod", "node", "labels", "args", "want", "prefilter"),
                         [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES])
def test_filter(pod: Any, node: str, labels: dict[str, str], args: dict[str, Any], want: list[str],
                prefilter: bool) -> None:
    plugin = node_affinity.new(args, "args")
    table = _table((node, labels))
    assert _verdicts(plugin, pod, table, prefilter=prefilter) == {node: want}
    assert explain_reasons(nodes=table.infos, pod=pod, plugin=node_affinity.NAME, args=args) == {node: want}


def test_prefilter_skip_and_node_names() -> None:
    # Skip: no nodeSelector, no required affinity, no added affinity -> the filter has nothing to say
    plugin = node_affinity.new({}, "args")
    t = _table(("node1", {}), ("node2", {}), ("node3", {}))
    assert plugin.filter(_pod(), t, {}) is None
    # two terms naming node1 and node2: node3 is left out by the PreFilterResult
    pod = _pod(affinity=_required({"matchFields": [_name_in("node1")]}, {"matchFields": [_name_in("node2")]}))
    assert _verdicts(plugin, pod, t) == {"node1": [], "node2": [], "node3": [ERR_REASON_NOT_IN_NODE_NAMES]}


# ---- TestNodeAffinityPriority ----------------------------------------------------------------

LABEL1 = {"foo": "bar"}
LABEL2 = {"key": "value"}
LABEL3 = {"az": "az1"}
LABEL4 = {"abc": "az11", "def": "az22"}
LABEL5 = {"foo": "bar", "key": "value", "az": "az1"}


def _pref(weight: int, *exprs: dict[str, Any]) -> dict[str, Any]:
    return {"weight": weight, "preference": {"matchExpressions": list(exprs)}}


AFFINITY1 = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [_pref(2, _expr("foo", "In", "bar"))]}}
AFFINITY2 = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
    _pref(2, _expr("foo", "In", "bar")),
    _pref(4, _expr("key", "In", "value")),
    _pref(5, _expr("foo", "In", "bar"), _expr("key", "In", "value"), _expr("az", "In", "az1")),
]}}

SCORE_CASES = [
    # (id, pod, nodes, args, expected normalised scores)
    ("all nodes are same priority as NodeAffinity is nil", _pod(),
     [("node1", LABEL1), ("node2", LABEL2), ("node3", LABEL3)], {}, [0, 0, 0]),
    ("no node matches preferred scheduling requirements in NodeAffinity of pod so all nodes' priority is zero",
     _pod(affinity=AFFINITY1), [("node1", LABEL4), ("node2", LABEL2), ("node3", LABEL3)], {}, [0, 0, 0]),
    # raw 2, 0, 0 -> 100*2//2 = 100
    ("only node1 matches the preferred scheduling requirements of pod", _pod(affinity=AFFINITY1),
     [("node1", LABEL1), ("node2", LABEL2), ("node3", LABEL3)], {}, [100, 0, 0]),
    # raw node1 2, node5 2+4+5 = 11, node2 4 -> 100*2//11 = 18, 100, 100*4//11 = 36
    ("all nodes matches the preferred scheduling requirements of pod but with different priorities ",
     _pod(affinity=AFFINITY2), [("node1", LABEL1), ("node5", LABEL5), ("node2", LABEL2)], {}, [18, 100, 36]),
    # the added term alone: raw 2, 0
    ("added affinity", _pod(), [("node1", LABEL1), ("node2", LABEL2)],
     {"addedAffinity": AFFINITY1["nodeAffinity"]}, [100, 0]),
    # pod foo=bar (2) + added key=value (3): node1 2, node2 3, node3 5 -> 40, 60, 100
    ("added affinity and pod has default affinity", _pod(affinity=AFFINITY1),
     [("node1", LABEL1), ("node2", LABEL2), ("node3", LABEL5)],
     {"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [_pref(3, _expr("key", "In", "value"))]}},
     [40, 60, 100]),
    # as above with affinity2: 18, 100, 36 (vecsched has no separate PreScore to skip)
    ("calculate the priorities correctly even if PreScore is not called", _pod(affinity=AFFINITY2),
     [("node1", LABEL1), ("node5", LABEL5), ("node2", LABEL2)], {}, [18, 100, 36]),
]


@pytest.mark.parametrize(("pod", "nodes", "args", "expected"), [c[1:] for c in SCORE_CASES],
                         ids=[c[0] for c in SCORE_CASES])
def test_score(pod: Any, nodes: list[tuple[str, dict[str, str]]], args: dict[str, Any], expected: list[int]) -> None:
    plugin = node_affinity.new(args, "args")
    t = _table(*nodes)
    rows = np.array([t.index[name] for name, _ in nodes], np.intp)
    state: CycleState = {}
    raw = plugin.score(pod, t, rows, state)
    got = [0] * len(nodes) if raw is None else plugin.normalize(raw, state).tolist()
    assert got == expected
    shown = explain_scores(nodes=t.infos, pod=pod, plugin=node_affinity.NAME, args=args)
    assert [shown[name] for name, _ in nodes] == expected


def test_prescore_skips_without_preferred_terms() -> None:
    t = _table(("n", LABEL1))
    rows = np.array([0], np.intp)
    assert node_affinity.new({}, "args").score(_pod(), t, rows, {}) is None
    # an empty (non-nil) preferred list does not skip: every node scores 0
    empty = _pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}})
    assert node_affinity.new({}, "args").score(empty, t, rows, {}).tolist() == [0]  # type: ignore[union-attr]


# ---- component-helpers nodeaffinity_test.go ---------------------------------------------------

INVALID_TERMS = [
    {"matchFields": [_name_in("host_1", "host_2")]},
    {"matchExpressions": [_expr("label_1", "In", "label_1_val")], "matchFields": [_name_in("host_1")]},
    {"matchExpressions": [_expr("invalid key", "In", "label_value")]},
]
KEY_DETAIL = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
              "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def test_node_selector_match_invalid_field_selector_and_label_selector() -> None:
    # TestNodeSelectorMatch "invalid field selector and label selector": two errors, aggregated.
    added = {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": INVALID_TERMS}}}
    with pytest.raises(ArgsError) as e:
        node_affinity.new(added, "args")
    assert e.value.path == "args.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution" \
                           ".nodeSelectorTerms[0].matchFields[0].values"
    assert e.value.problem == 'Invalid value: []string{"host_1", "host_2"}: must have one element'
    # the same selector in a pod: both errors, in Go's aggregate form
    a = node_affinity.parse_pod(_pod(affinity=_required(*INVALID_TERMS)))
    assert a.error == (
        f'[{REQ}.nodeSelectorTerms[0].matchFields[0].values: Invalid value: []string{{"host_1", "host_2"}}: '
        f'must have one element, {REQ}.nodeSelectorTerms[2].matchExpressions[0].key: Invalid value: "invalid key": '
        f"{KEY_DETAIL}]")


HOST_1_TERM = {"matchExpressions": [_expr("label_1", "In", "label_1_val")], "matchFields": [_name_in("host_1")]}


@pytest.mark.parametrize(
    ("terms", "labels", "want"),
    [
        pytest.param([HOST_1_TERM], {}, False, id="node matches field selector, but not labels"),
        pytest.param([HOST_1_TERM], {"label_1": "label_1_val"}, True,
                     id="node matches field selector and label selector"),
        pytest.param([{"matchExpressions": [_expr("label_1", "In", "label_1_val")]}, {"matchFields": [_name_in("host_1")]}],
                     {}, True, id="second term matches"),
    ],
)
def test_node_selector_match(terms: list[dict[str, Any]], labels: dict[str, str], want: bool) -> None:
    added = {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    plugin = node_affinity.new(added, "args")
    assert _verdicts(plugin, _pod(), _table(("host_1", labels))) == {"host_1": [] if want else [ERR_REASON_ENFORCED]}


def test_preferred_scheduling_terms_score() -> None:
    # "invalid field selector and label selector": the weight-1 terms are parsed and fail
    bad = [{"weight": 1, "preference": t} for t in INVALID_TERMS]
    pre = "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
    a = node_affinity.parse_pod(_pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": bad}}))
    assert a.error == (f'[{pre}[0].preference.matchFields[0].values: Invalid value: []string{{"host_1", "host_2"}}: '
                       f'must have one element, {pre}[2].preference.matchExpressions[0].key: Invalid value: '
                       f'"invalid key": {KEY_DETAIL}]')
    # "invalid field selector but no weight, error not reported": weight 0 is skipped unparsed
    zero = [{"weight": 0, "preference": INVALID_TERMS[0]}]
    a = node_affinity.parse_pod(_pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": zero}}))
    assert a.error is None and a.preferred == ()
    # "first and third term match": 5 + 11 = 16
    terms = [
        {"weight": 5, "preference": {"matchFields": [_name_in("host_1")]}},
        _pref(7, _expr("unknown_label", "In", "unknown_label_val")),
        _pref(11, _expr("label_1", "In", "label_1_val")),
    ]
    pod = _pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}})
    t = _table(("host_1", {"label_1": "label_1_val"}))
    assert node_affinity.new({}, "args").score(pod, t, np.array([0], np.intp), {}).tolist() == [16]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("expr", "parsed", "error"),
    [
        pytest.param(_expr("foo", "In", "bar", "baz"), Requirement("foo", "In", ("bar", "baz")), None, id="foo in (baz,bar)"),
        pytest.param(_expr("foo", "Exists", "bar", "baz"), None,
                     'values: Invalid value: []string{"bar", "baz"}: values set must be empty for exists and does not exist',
                     id="exists with values"),
        pytest.param(_expr("foo", "Gt", "1"), Requirement("foo", "Gt", ("1",), 1), None, id="foo>1"),
        pytest.param(_expr("bar", "Lt", "7"), Requirement("bar", "Lt", ("7",), 7), None, id="bar<7"),
    ],
)
def test_node_selector_requirements_as_selector(expr: dict[str, Any], parsed: Requirement | None, error: str | None) -> None:
    a = node_affinity.parse_pod(_pod(affinity=_required({"matchExpressions": [expr]})))
    path = f"{REQ}.nodeSelectorTerms[0].matchExpressions[0]."
    assert a.error == (None if error is None else path + error)
    if parsed is not None:
        assert a.required == (Term((parsed,), ()),)


@pytest.mark.parametrize(
    ("affinity", "want"),
    [
        pytest.param(None, True, id="no selector"),
        pytest.param({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": None}}},
                     False, id="Pod with a nil []NodeSelectorTerm in affinity, can't match the node's labels and won't "
                               "schedule onto the node"),
        pytest.param(_required(), False, id="Pod with an empty []NodeSelectorTerm in affinity, can't match the node's "
                                            "labels and won't schedule onto the node"),
    ],
)
def test_pod_matches_node_selector_and_affinity_terms(affinity: dict[str, Any] | None, want: bool) -> None:
    plugin = node_affinity.new({}, "args")
    got = _verdicts(plugin, _pod(affinity=affinity), _table(("node", {"foo": "bar"})))
    assert got == {"node": [] if want else [ERR_REASON_POD]}


# ---- operators, Go integer parsing, invalid pods (vecsched cases) -------------------------------


@pytest.mark.parametrize(
    ("expr", "matching"),
    [
        # n1 {v: "5"}, n2 {v: "0012"}, n3 {v: "1_0"}, n4 {v: "x"}, n5 no label
        pytest.param(_expr("v", "Gt", "4"), ["n1", "n2"], id="Gt: 5 > 4, 12 > 4; '1_0' is no Go integer"),
        pytest.param(_expr("v", "Lt", "12"), ["n1"], id="Lt: 5 < 12, 12 is not < 12"),
        pytest.param(_expr("v", "DoesNotExist"), ["n5"], id="DoesNotExist"),
        pytest.param(_expr("v", "NotIn", "5", "x"), ["n2", "n3", "n5"], id="NotIn holds for an absent label"),
        pytest.param(_expr("v", "In", "5", "nowhere"), ["n1"], id="In with a value no node has"),
    ],
)
def test_operators(expr: dict[str, Any], matching: list[str]) -> None:
    t = _table(("n1", {"v": "5"}), ("n2", {"v": "0012"}), ("n3", {"v": "1_0"}), ("n4", {"v": "x"}), ("n5", {}))
    got = _verdicts(node_affinity.new({}, "args"), _pod(affinity=_required({"matchExpressions": [expr]})), t)
    assert sorted(n for n, r in got.items() if not r) == matching


@pytest.mark.parametrize(
    ("field", "matching"),
    [
        pytest.param({"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}, ["n2"], id="name NotIn"),
        pytest.param({"key": "metadata.uid", "operator": "In", "values": [""]}, ["n1", "n2"],
                     id="another field reads as empty: In ''"),
        pytest.param({"key": "metadata.uid", "operator": "In", "values": ["x"]}, [], id="another field: In 'x'"),
    ],
)
def test_match_fields(field: dict[str, Any], matching: list[str]) -> None:
    t = _table(("n1", {}), ("n2", {}))
    got = _verdicts(node_affinity.new({}, "args"), _pod(affinity=_required({"matchFields": [field]})), t)
    assert sorted(n for n, r in got.items() if not r) == matching


def test_node_selector_value_no_node_has_matches_nothing() -> None:
    # a value never seen has no label code; nodes without the label must not match it
    t = _table(("n1", {}), ("n2", {"zone": "a"}))
    got = _verdicts(node_affinity.new({}, "args"), _pod(selector={"zone": "b"}), t)
    assert got == {"n1": [ERR_REASON_POD], "n2": [ERR_REASON_POD]}


PATH = f"{REQ}.nodeSelectorTerms[0].matchExpressions[0]"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        pytest.param(_expr("zone", "Foo", "a"), f'{PATH}.operator: "Foo" is not a valid node selector operator',
                     id="unknown operator"),
        pytest.param(_expr("zone", "Gt", "ten"),
                     f"{PATH}.values[0]: Invalid value: \"ten\": for 'Gt', 'Lt' operators, the value must be an integer",
                     id="Gt with a non-integer value"),
        pytest.param(_expr("zone", "In"),
                     f"{PATH}.values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
                     id="In with no values"),
        pytest.param(_expr("zone", "Lt", "1", "2"),
                     f"{PATH}.values: Invalid value: []string{{\"1\", \"2\"}}: for 'Gt', 'Lt' operators, exactly one "
                     "value is required", id="Lt with two values"),
    ],
)
def test_invalid_pod_affinity_is_rejected_naming_the_field(expr: dict[str, Any], message: str) -> None:
    t = _table(("n1", {"zone": "a"}), ("n2", {}))
    pod = _pod(affinity=_required({"matchExpressions": [expr]}, {"matchExpressions": [_expr("zone", "Exists")]}))
    plugin = node_affinity.new({}, "args")
    assert plugin.prefilter(pod, t, {}) == message
    # without PreFilter the filter says the same for every node, and the pod fits nowhere
    assert _verdicts(plugin, pod, t, prefilter=False) == {"n1": [message], "n2": [message]}
    assert Profile(name="t", prefilters=[plugin], filters=[plugin], scorers=[]).schedule(pod, t).node is None


def test_invalid_preferred_weight_and_wrong_types_do_not_crash() -> None:
    pre = "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
    a = node_affinity.parse_pod(_pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": -3, "preference": {"matchExpressions": [_expr("a", "Exists")]}}]}}))
    assert a.error == f"{pre}[0].weight: Invalid value: -3: must be in the range 0-100"
    a = node_affinity.parse_pod(_pod(affinity=_required({"matchExpressions": "zone"})))
    assert a.error == f"{REQ}.nodeSelectorTerms[0].matchExpressions: expected a list, got str"


@pytest.mark.parametrize(
    ("args", "path"),
    [
        pytest.param({"addedAffinty": {}}, "args.addedAffinty", id="unknown field"),
        pytest.param({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [_expr("a", "Gt", "b")]}]}}},
            "args.addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].values[0]", id="Gt with a non-integer"),
        pytest.param({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [_expr("a", "Exists")], "extra": 1}}]}},
            "args.addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.extra",
            id="unknown nested field"),
    ],
)
def test_invalid_args_name_the_field(args: dict[str, Any], path: str) -> None:
    with pytest.raises(ArgsError) as e:
        node_affinity.new(args, "args")
    assert e.value.path == path


def test_added_affinity_is_parsed() -> None:
    plugin = node_affinity.new({"addedAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [_name_in("a")]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [_pref(3, _expr("k", "In", "v"))]}}, "args")
    assert plugin.added_required == (Term((), (FieldRequirement("metadata.name", "In", "a"),)),)
    assert plugin.added_preferred == (PreferredTerm(3, Term((Requirement("k", "In", ("v",)),), ())),)


def test_invalid_preferred_terms_alone_also_reject_without_prefilter() -> None:
    pod = _pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [_expr("a", "Foo")]}}]}})
    message = ("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference"
               '.matchExpressions[0].operator: "Foo" is not a valid node selector operator')
    assert _verdicts(node_affinity.new({}, "args"), pod, _table(("n", {})), prefilter=False) == {"n": [message]}
