"""The vectorised node-level plugins (NodeUnschedulable, NodeName, TaintToleration,
NodeAffinity, NodePorts, ImageLocality) give the per-node reference's answers on
random clusters: random labels (numeric ones included), taints, tolerations,
affinity terms (invalid ones included), images and host ports."""

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin, ReferenceProfile
from scoring.framework import CycleState, Profile, ScoreExtensions
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import REGISTRY, node_affinity
from scoring.table import NodeTable

KEYS = ["zone", "num", "gpu", "example.com/tier"]
VALUES = ["a", "b", "1", "5", "0012", "1_0", "-3", "+7", "99999999999999999999", ""]
VALID_VALUES = ["a", "b", "1", "5", "0012"]
TAINT_KEYS = ["a", "b", "node.kubernetes.io/unschedulable"]
EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
IMAGES = ["gcr.io/x", "gcr.io/x:latest", "gcr.io/x:v1", "y", "y:latest", "reg:5000/z", "reg:5000/z:latest",
          "w@sha256:abc"]
SIZES = [0, 1, 5 * 2**20, 23 * 2**20, 300 * 2**20, 999 * 2**20, 2000 * 2**20]
PORTS = [("TCP", "0.0.0.0", 80), ("TCP", "10.0.0.1", 80), ("UDP", "0.0.0.0", 80), ("TCP", "10.0.0.2", 443), ("", "", 8080)]
FILTERS = ["NodeAffinity", "NodeUnschedulable", "NodeName", "TaintToleration", "NodePorts"]
SCORES = [("TaintToleration", 3), ("NodeAffinity", 2), ("ImageLocality", 1)]


NAMES = [f"n{i}" for i in range(12)]
_OPS = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]

# Strategies are built once: building them inside every draw dominated the run time.
_PORT = st.sampled_from(PORTS).map(lambda p: {"containerPort": p[2], "hostPort": p[2], "protocol": p[0], "hostIP": p[1]})
_CONTAINER = st.fixed_dictionaries({"name": st.just("c"), "ports": st.lists(_PORT, max_size=2)},
                                   optional={"image": st.sampled_from(IMAGES)})
_INIT = st.fixed_dictionaries({"name": st.just("i"), "ports": st.lists(_PORT, max_size=2)},
                              optional={"image": st.sampled_from(IMAGES), "restartPolicy": st.just("Always")})
_CONTAINERS = st.lists(_CONTAINER, max_size=2)
_INITS = st.lists(_INIT, max_size=2)

_VALID_EXPRESSION = st.one_of(
    st.fixed_dictionaries({"key": st.sampled_from(KEYS), "operator": st.sampled_from(["In", "NotIn"]),
                           "values": st.lists(st.sampled_from(VALID_VALUES), min_size=1, max_size=3)}),
    st.fixed_dictionaries({"key": st.sampled_from(KEYS), "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
    st.fixed_dictionaries({"key": st.sampled_from(KEYS), "operator": st.sampled_from(["Gt", "Lt"]),
                           "values": st.lists(st.sampled_from(["1", "5", "0012"]), min_size=1, max_size=1)}),
)
_ANY_EXPRESSION = st.fixed_dictionaries({
    "key": st.sampled_from([*KEYS, "bad key"]), "operator": st.sampled_from([*_OPS, "Foo"]),
    "values": st.lists(st.sampled_from(VALUES), max_size=2)})
_NAME_VALUES = st.sampled_from([*NAMES, "ghost", ""])
_VALID_FIELD = st.fixed_dictionaries({"key": st.sampled_from(["metadata.name", "metadata.name", "metadata.uid"]),
                                      "operator": st.sampled_from(["In", "NotIn"]),
                                      "values": st.lists(_NAME_VALUES, min_size=1, max_size=1)})
_ANY_FIELD = st.fixed_dictionaries({"key": st.sampled_from(["metadata.name", "metadata.uid"]),
                                    "operator": st.sampled_from(["In", "NotIn", "Exists"]),
                                    "values": st.lists(_NAME_VALUES, max_size=2)})


def _terms(expression: Any, field: Any) -> Any:
    term = st.fixed_dictionaries({}, optional={"matchExpressions": st.lists(expression, max_size=3),
                                               "matchFields": st.lists(field, max_size=2)})
    return term


_NAME_IN = st.fixed_dictionaries({"key": st.just("metadata.name"), "operator": st.just("In"),
                                  "values": st.lists(st.sampled_from([*NAMES, "ghost"]), min_size=1, max_size=1)})
# every term names nodes: upstream's PreFilterResult (or a conflict)
_NAMED_TERMS = st.lists(st.fixed_dictionaries({"matchFields": st.lists(_NAME_IN, min_size=1, max_size=2)},
                                              optional={"matchExpressions": st.lists(_VALID_EXPRESSION, max_size=1)}),
                        min_size=1, max_size=3)


def _affinity(valid: bool) -> Any:
    term = _terms(_VALID_EXPRESSION, _VALID_FIELD) if valid else _terms(_ANY_EXPRESSION, _ANY_FIELD)
    weight = st.integers(0, 100) if valid else st.sampled_from([0, 1, 7, 100, -1])
    required = st.one_of(st.lists(term, max_size=3), _NAMED_TERMS).map(lambda ts: {"nodeSelectorTerms": ts})
    preferred = st.lists(st.fixed_dictionaries({"weight": weight, "preference": term}), max_size=3)
    return st.fixed_dictionaries({}, optional={"requiredDuringSchedulingIgnoredDuringExecution": required,
                                               "preferredDuringSchedulingIgnoredDuringExecution": preferred})


_VALID_AFFINITY = _affinity(True)
_ANY_AFFINITY = _affinity(False)
_TAINTS = st.one_of(st.just([]), st.lists(
    st.fixed_dictionaries({"key": st.sampled_from(TAINT_KEYS), "value": st.sampled_from(["", "1", "2"]),
                           "effect": st.sampled_from(EFFECTS)}),
    max_size=3, unique_by=lambda t: (t["key"], t["effect"])))
_NODE_IMAGES = st.lists(st.fixed_dictionaries({"names": st.lists(st.sampled_from(IMAGES), min_size=1, max_size=2),
                                               "sizeBytes": st.sampled_from(SIZES)}), max_size=3)
_LABELS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES))
_TOLERATIONS = st.lists(st.fixed_dictionaries({
    "key": st.sampled_from(["", *TAINT_KEYS]), "operator": st.sampled_from(["", "Equal", "Exists"]),
    "value": st.sampled_from(["", "1", "2"]), "effect": st.sampled_from(["", *EFFECTS])}), max_size=3)
_SELECTOR = st.one_of(st.just({}), st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALID_VALUES), max_size=1))


@st.composite
def _case(draw: Any) -> tuple[list[NodeInfo], list[PodInfo], PodInfo, dict[str, Any]]:
    names = NAMES[: draw(st.integers(1, len(NAMES)))]
    nodes = [node_from_json({
        "metadata": {"name": name, "labels": draw(_LABELS)},
        "spec": {"unschedulable": draw(st.integers(0, 7)) == 0, "taints": draw(_TAINTS)},
        "status": {"images": draw(_NODE_IMAGES)},
    }) for name in names]
    placed = [pod_from_json({"metadata": {"name": f"e{i}", "namespace": "ns"}, "spec": {
        "nodeName": draw(st.sampled_from(names)), "containers": draw(_CONTAINERS), "initContainers": draw(_INITS)}})
        for i in range(draw(st.integers(0, 8)))]
    spec: dict[str, Any] = {
        "containers": draw(_CONTAINERS), "initContainers": draw(_INITS), "tolerations": draw(_TOLERATIONS),
        "nodeSelector": draw(_SELECTOR),
        "affinity": {"nodeAffinity": draw(_VALID_AFFINITY if draw(st.integers(0, 5)) else _ANY_AFFINITY)},
    }
    if draw(st.integers(0, 5)) == 0:
        spec["nodeName"] = draw(st.sampled_from([*names, "ghost"]))
    pod = pod_from_json({"metadata": {"name": "pending", "namespace": "ns"}, "spec": spec})
    args = {"addedAffinity": draw(_VALID_AFFINITY)} if draw(st.integers(0, 3)) == 0 else {}
    return nodes, placed, pod, args


def _setup(nodes: list[NodeInfo], placed: list[PodInfo]) -> tuple[NodeTable, RefCluster]:
    table = NodeTable(capacity=4)
    for n in nodes:
        table.set_node(n)
    cluster = RefCluster([RefNode(n) for n in nodes])
    for p in placed:
        table.add_pod(p, p.node_name)
        cluster.add_pod(p, p.node_name)
    return table, cluster


def _reference(name: str, args: dict[str, Any]) -> RefPlugin:
    return REFERENCE[name](args if name == node_affinity.NAME else {})


def _plugin(name: str, args: dict[str, Any]) -> Any:
    return REGISTRY[name](args if name == node_affinity.NAME else {}, "args")


@settings(max_examples=100, deadline=None)
@given(_case())
def test_each_plugin_matches_the_reference(case: tuple[list[NodeInfo], list[PodInfo], PodInfo, dict[str, Any]]) -> None:
    nodes, placed, pod, args = case
    table, cluster = _setup(nodes, placed)
    for name in FILTERS:
        plugin, ref = _plugin(name, args), _reference(name, args)
        profile = Profile(name="p", prefilters=[plugin] if hasattr(plugin, "prefilter") else [], filters=[plugin], scorers=[])
        _, reasons = profile.run_filters(pod, table, {})
        got = {n.name: [r.message for r in reasons if r.nodes[table.index[n.name]]] for n in nodes}
        assert ref.filter is not None
        want = {node.info.name: ref.filter(pod, node, cluster) for node in cluster.nodes}
        assert got == want, name
    rows = np.array([table.index[n.name] for n in nodes], np.intp)
    for name, _ in SCORES:
        plugin, ref = _plugin(name, args), _reference(name, args)
        state: CycleState = {}
        raw = plugin.score(pod, table, rows, state)
        if raw is None:
            scores = [0] * len(nodes)
        else:
            scores = (plugin.normalize(raw, state) if isinstance(plugin, ScoreExtensions) else raw).tolist()
        assert ref.score is not None
        if ref.skip is not None and ref.skip(pod, cluster):
            expected = [0] * len(nodes)
        else:
            expected = [ref.score(pod, node, cluster) for node in cluster.nodes]
            if ref.normalize is not None:
                expected = ref.normalize(expected)
        assert scores == expected, name


@settings(max_examples=100, deadline=None)
@given(_case())
def test_decisions_match_the_reference(case: tuple[list[NodeInfo], list[PodInfo], PodInfo, dict[str, Any]]) -> None:
    nodes, placed, pod, args = case
    table, cluster = _setup(nodes, placed)
    na = _plugin(node_affinity.NAME, args)
    # NodeAffinity first: its PreFilter rejection then reads the same in both (the reference has no PreFilter).
    filters = [na if n == node_affinity.NAME else _plugin(n, args) for n in FILTERS]
    profile = Profile(name="p", prefilters=[na], filters=filters,
                      scorers=[(na if n == node_affinity.NAME else _plugin(n, args), w) for n, w in SCORES])
    reference = ReferenceProfile(filters=[_reference(n, args) for n in FILTERS],
                                 scorers=[(_reference(n, args), w) for n, w in SCORES])
    got, want = profile.schedule(pod, table), reference.schedule(pod, cluster)
    assert got.message == want.message
    assert {n: got.reasons_of(table.index[n]) for n in want.reasons} == want.reasons
    assert {table.names[r] for r in np.flatnonzero(got.feasible)} == set(want.totals)
    if got.node is None:
        assert want.node is None
        return
    scored = [table.names[r] for r in got.scored]
    for name, _ in SCORES:
        assert dict(zip(scored, got.scores[name].tolist())) == want.scores[name], name
    assert dict(zip(scored, got.totals.tolist())) == want.totals
    assert want.totals[got.node] == max(want.totals.values())


# One requirement at a time, on labels crowded around its boundaries: Gt/Lt at equality,
# NotIn/DoesNotExist on absent labels, labels that are no Go integer, fields other than the name.
_NUMS = ["0", "1", "4", "5", "6", "0012", "-3", "+7", "1_0", "x", "99999999999999999999"]
_NARROW_LABELS = st.fixed_dictionaries({}, optional={"num": st.sampled_from(_NUMS), "zone": st.sampled_from(["a", "b"])})
_ONE_REQUIREMENT = st.one_of(
    st.fixed_dictionaries({"key": st.sampled_from(["num", "zone", "absent"]), "operator": st.sampled_from(["In", "NotIn"]),
                           "values": st.lists(st.sampled_from(["a", "b", "0", "1", "5", "0012", "nope"]),
                                              min_size=1, max_size=3)}).map(lambda e: {"matchExpressions": [e]}),
    st.fixed_dictionaries({"key": st.sampled_from(["num", "absent"]), "operator": st.sampled_from(["Exists", "DoesNotExist"])}
                          ).map(lambda e: {"matchExpressions": [e]}),
    st.fixed_dictionaries({"key": st.sampled_from(["num", "zone"]), "operator": st.sampled_from(["Gt", "Lt"]),
                           "values": st.lists(st.sampled_from(["0", "1", "4", "5", "6", "0012", "12"]), min_size=1, max_size=1)}
                          ).map(lambda e: {"matchExpressions": [e]}),
    _VALID_FIELD.map(lambda f: {"matchFields": [f]}),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_NARROW_LABELS, min_size=1, max_size=12), _ONE_REQUIREMENT, st.booleans())
def test_single_requirements_match_the_reference(labels: list[dict[str, str]], term: dict[str, Any], preferred: bool) -> None:
    nodes = [node_from_json({"metadata": {"name": NAMES[i], "labels": ls}}) for i, ls in enumerate(labels)]
    table, cluster = _setup(nodes, [])
    key = "preferredDuringSchedulingIgnoredDuringExecution" if preferred else "requiredDuringSchedulingIgnoredDuringExecution"
    value: Any = [{"weight": 3, "preference": term}] if preferred else {"nodeSelectorTerms": [term]}
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [], "affinity": {"nodeAffinity": {key: value}}}})
    plugin, ref = _plugin(node_affinity.NAME, {}), _reference(node_affinity.NAME, {})
    if preferred:
        raw = plugin.score(pod, table, np.arange(table.n), {})
        assert ref.score is not None
        assert raw.tolist() == [ref.score(pod, node, cluster) for node in cluster.nodes]
    else:
        _, reasons = Profile(name="p", prefilters=[plugin], filters=[plugin], scorers=[]).run_filters(pod, table, {})
        assert ref.filter is not None
        assert [[r.message for r in reasons if r.nodes[i]] for i in range(table.n)] == \
               [ref.filter(pod, node, cluster) for node in cluster.nodes]
