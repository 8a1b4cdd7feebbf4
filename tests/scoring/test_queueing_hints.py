"""Queueing hints: the cases of upstream's plugin tests (Test_isSchedulableAfterNodeChange,
Test_isSchedulableAfterPodChange / PodEvent / PodDeleted of noderesources, tainttoleration,
nodeaffinity, nodeunschedulable, nodename, nodeports, interpodaffinity and
podtopologyspread) ported as tables, plus the events a node or pod change gives and the
queue's rule (isPodWorthRequeuing). Nodes get 32 pods unless set, as upstream's
``st.MakeNode().Capacity`` does; quantities are as written (memory "2" is 2 bytes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from scoring import queueing_hints as qh
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import build_registry
from scoring.queueing_hints import QUEUE, SKIP, ClusterEvent, Hint
from scoring.table import NodeTable

A = "example.com/aaa"  # upstream's extendedResourceA
B = "example.com/bbb"


def node(name: str = "n", *, capacity: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
         taints: Sequence[Mapping[str, str]] = (), unschedulable: bool = False) -> NodeInfo:
    alloc = {"pods": "32", **(capacity or {})}
    return node_from_json({"metadata": {"name": name, "labels": dict(labels or {})},
                           "spec": {"taints": list(taints), "unschedulable": unschedulable},
                           "status": {"allocatable": alloc}})


def pod(name: str = "p", *, uid: str = "", ns: str = "default", requests: Mapping[str, str] | None = None,
        node_name: str = "", labels: Mapping[str, str] | None = None, ports: Sequence[int] = (),
        container_ports: Sequence[int] = (), **spec: Any) -> PodInfo:
    c: dict[str, Any] = {"name": "c", "resources": {"requests": dict(requests or {})}}
    if ports or container_ports:
        c["ports"] = ([{"containerPort": p, "hostPort": p} for p in ports]
                      + [{"containerPort": p} for p in container_ports])
    s: dict[str, Any] = {"containers": [c], **spec}
    if node_name:
        s["nodeName"] = node_name
    return pod_from_json({"metadata": {"name": name, "namespace": ns, "uid": uid or f"uid-{name}",
                                       "labels": dict(labels or {})}, "spec": s})


def node_event(old: NodeInfo | None, new: NodeInfo | None, action: str = qh.ADD) -> ClusterEvent:
    return ClusterEvent(qh.NODE, action, "test", old_node=old, new_node=new)


def pod_event(old: PodInfo | None, new: PodInfo | None, *, node_info: NodeInfo | None = None,
              full: bool | None = None) -> ClusterEvent:
    action = qh.ADD if old is None else qh.DELETE if new is None else qh.UPDATE_POD_LABEL
    return ClusterEvent(qh.ASSIGNED_POD, action, "test", old_pod=old, new_pod=new, node=node_info, node_was_full=full)


# ---- NodeResourcesFit ---------------------------------------------------------------------

MEM2_A1 = {"memory": "2", A: "1"}


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    # memory 2 > 1 allocatable: the new node cannot take the pod even empty
    (pod(requests={"memory": "2"}), None, node(capacity={"memory": "1"}), SKIP),
    # the pod needs A; the node has only B (0 of A < 1)
    (pod(requests={A: "1"}), None, node(capacity={B: "1"}), SKIP),
    # memory 2 <= 4, A 1 <= 2, pods 1 <= 32: a new node that fits
    (pod(requests=MEM2_A1), None, node(capacity={"memory": "4", A: "2"}), QUEUE),
    # fits (2 <= 2, 1 <= 1) but nothing the pod requests grew (A 2 -> 1, B is not requested)
    (pod(requests=MEM2_A1), node(capacity={"memory": "2", A: "2"}), node(capacity={"memory": "2", A: "1", B: "2"}), SKIP),
    # A grew 1 -> 2 and the node fits
    (pod(requests=MEM2_A1), node(capacity={"memory": "2", A: "1"}), node(capacity={"memory": "2", A: "2"}), QUEUE),
    # memory shrank 4 -> 1 < 2: no longer fits
    (pod(requests=MEM2_A1), node(capacity={"memory": "4", A: "2"}), node(capacity={"memory": "1", A: "2"}), SKIP),
    # memory grew 1 -> 4 >= 2: fits now
    (pod(requests=MEM2_A1), node(capacity={"memory": "1", A: "2"}), node(capacity={"memory": "4", A: "2"}), QUEUE),
    # a pod requesting nothing: only the pod count can help, and it grew 1 -> 2
    (pod(), node(capacity={"pods": "1", "cpu": "1"}), node(capacity={"pods": "2", "cpu": "1"}), QUEUE),
    # ... and cpu growing 1 -> 2 does not (upstream's no-requested-resources case)
    (pod(), node(capacity={"pods": "1", "cpu": "1"}), node(capacity={"pods": "1", "cpu": "2"}), SKIP),
], ids=["add-without-sufficient-resources", "add-without-required-resource-type", "add-with-sufficient-resources",
        "unrelated-changes", "requested-resource-increased", "suitable-to-unsuitable", "unsuitable-to-suitable",
        "no-requests-pods-increased", "no-requests-cpu-increased"])
def test_fit_after_node_change(target: PodInfo, old: NodeInfo | None, new: NodeInfo, want: Hint) -> None:
    assert qh.fit_after_node_change(target, node_event(old, new)) is want


BIG = node(capacity={"cpu": "4", "memory": "8Gi"})


@pytest.mark.parametrize(("target", "old", "new", "node_info", "full", "want"), [
    # upstream's queue-on-other-pod-deleted: an assigned pod with cpu 1 deleted, the node unknown
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"cpu": "1"}, node_name="fake"), None, None, None, QUEUE),
    # an unscheduled pod's deletion frees nothing
    (pod("pod1"), pod("pod2"), None, None, None, SKIP),
    # upstream's skip-queue-on-other-unscheduled-pod: cpu 2 -> 1 on a pod with no node
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"cpu": "2"}), pod("pod2", requests={"cpu": "1"}),
     None, None, SKIP),
    # skip-queue-on-other-pod-unrelated-resource-scaled-down: memory 2 -> 1, the pod wants cpu
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"memory": "2"}, node_name="fake"),
     pod("pod2", requests={"memory": "1"}, node_name="fake"), None, None, SKIP),
    # queue-on-other-pod-some-resource-scale-down: cpu 2 -> 1, the pod wants cpu
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"cpu": "2"}, node_name="fake"),
     pod("pod2", requests={"cpu": "1"}, node_name="fake"), None, None, QUEUE),
    # queue-on-target-pod-some-resource-scale-down: the pod itself got smaller
    (pod("pod1", requests={"cpu": "1"}), pod("pod1", requests={"cpu": "2"}), pod("pod1", requests={"cpu": "1"}),
     None, None, QUEUE),
    # vecsched: 8 cpu > the node's 4 even empty, so room freed there cannot help
    (pod("pod1", requests={"cpu": "8"}), pod("pod2", requests={"cpu": "1"}, node_name="n"), None, BIG, False, SKIP),
    # vecsched: the deleted pod held only memory, the pod wants only cpu, and the node was
    # not full (a freed pod slot is no help)
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"memory": "1Gi"}, node_name="n"), None, BIG, False, SKIP),
    # ... but with the node full, the freed slot may be the one missing
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"memory": "1Gi"}, node_name="n"), None, BIG, True, QUEUE),
    # cpu freed, cpu wanted, the node could hold the pod (1 <= 4)
    (pod("pod1", requests={"cpu": "1"}), pod("pod2", requests={"cpu": "2"}, node_name="n"), None, BIG, False, QUEUE),
], ids=["other-pod-deleted", "unscheduled-pod-deleted", "other-unscheduled-pod-scaled", "unrelated-resource-scaled-down",
        "some-resource-scaled-down", "target-scaled-down", "node-too-small", "no-overlap-not-full", "no-overlap-full",
        "overlap"])
def test_fit_after_pod_event(target: PodInfo, old: PodInfo, new: PodInfo | None, node_info: NodeInfo | None,
                             full: bool | None, want: Hint) -> None:
    ev = ClusterEvent(qh.ASSIGNED_POD, qh.DELETE if new is None else qh.UPDATE_POD_SCALE_DOWN, "test",
                      old_pod=old, new_pod=new, node=node_info, node_was_full=full)
    assert qh.fit_after_pod_event(target, ev) is want


# ---- TaintToleration, NodeUnschedulable, NodeName, NodeAffinity ----------------------------

TAINT = {"key": "taint-key", "value": "taint-value", "effect": "NoSchedule"}
OTHER_TAINT = {"key": "other", "value": "v", "effect": "NoExecute"}
TOLERATES = [{"key": "taint-key", "operator": "Equal", "value": "taint-value", "effect": "NoSchedule"}]


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    # a new node whose NoSchedule taint the pod does not tolerate
    (pod(), None, node(taints=[TAINT]), SKIP),
    # a new node whose taint the pod tolerates
    (pod(tolerations=TOLERATES), None, node(taints=[TAINT]), QUEUE),
    # tolerated before and after: the change did not undo the rejection
    (pod(tolerations=TOLERATES), node(taints=[TAINT]), node(taints=[TAINT, {**TAINT, "effect": "PreferNoSchedule"}]), SKIP),
    # an untolerated taint replaced by a tolerated one
    (pod(tolerations=TOLERATES), node(taints=[OTHER_TAINT]), node(taints=[TAINT]), QUEUE),
    # a tolerated taint replaced by an untolerated one
    (pod(tolerations=TOLERATES), node(taints=[TAINT]), node(taints=[OTHER_TAINT]), SKIP),
    # the untolerated taint removed
    (pod(), node(taints=[TAINT]), node(), QUEUE),
], ids=["untolerated-node-added", "tolerated-node-added", "unrelated-change", "taint-made-tolerable",
        "taint-made-untolerable", "taint-removed"])
def test_taint_after_node_change(target: PodInfo, old: NodeInfo | None, new: NodeInfo, want: Hint) -> None:
    assert qh.taint_after_node_change(target, node_event(old, new)) is want


@pytest.mark.parametrize(("old", "new", "want"), [
    (None, node(unschedulable=True), SKIP),           # an unschedulable node added
    (None, node(), QUEUE),                            # a schedulable node added
    (node(), node(taints=[TAINT]), SKIP),              # schedulable before and after
    (node(unschedulable=True), node(), QUEUE),         # spec.unschedulable cleared
    (node(), node(unschedulable=True), SKIP),          # cordoned: helps nobody
], ids=["unschedulable-added", "schedulable-added", "unrelated-change", "uncordoned", "cordoned"])
def test_unschedulable_after_node_change(old: NodeInfo | None, new: NodeInfo, want: Hint) -> None:
    assert qh.unschedulable_after_node_change(pod(), node_event(old, new)) is want


@pytest.mark.parametrize(("target", "new", "want"), [
    (pod(node_name="node1"), node("node1"), QUEUE),   # the node it names arrived
    (pod(node_name="node1"), node("node2"), SKIP),    # another node
    (pod(), node("node2"), QUEUE),                    # it names none: NodeName never rejected it for this node
], ids=["named-node-added", "other-node-added", "no-node-name"])
def test_node_name_after_node_add(target: PodInfo, new: NodeInfo, want: Hint) -> None:
    assert qh.node_name_after_node_add(target, node_event(None, new)) is want


FOO_BAR = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]}]}}}


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    (pod(affinity=FOO_BAR), None, node(), SKIP),                                            # added, no foo=bar
    (pod(affinity=FOO_BAR), None, node(labels={"foo": "bar"}), QUEUE),                        # added, matching
    (pod(affinity=FOO_BAR), node(labels={"foo": "bar"}), node(labels={"foo": "bar", "x": "y"}), SKIP),  # matched already
    (pod(affinity=FOO_BAR), node(), node(labels={"x": "y"}), SKIP),                          # matches neither time
    (pod(affinity=FOO_BAR), node(labels={"foo": "bar"}), node(), SKIP),                      # suitable -> unsuitable
    (pod(affinity=FOO_BAR), node(labels={"foo": "baz"}), node(labels={"foo": "bar"}), QUEUE),  # unsuitable -> suitable
    (pod(nodeSelector={"foo": "bar"}), node(), node(labels={"foo": "bar"}), QUEUE),         # nodeSelector counts too
    (pod(nodeSelector={"foo": "bar"}, affinity=FOO_BAR), node(labels={"foo": "baz"}), node(labels={"x": "y"}), SKIP),
    # Gt on a label read as an integer: 5 > 3 now, "2" before
    (pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpus", "operator": "Gt", "values": ["3"]}]}]}}}),
     node(labels={"gpus": "2"}), node(labels={"gpus": "5"}), QUEUE),
    # matchFields on the name: only node "n" is wanted, and it is that node
    (pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}}), None, node("n"), QUEUE),
], ids=["skip-add", "queue-add", "skip-already-suitable", "skip-unrelated-labels", "skip-suitable-to-unsuitable",
        "queue-unsuitable-to-suitable", "node-selector", "node-selector-and-affinity-unmatched", "gt", "match-fields"])
def test_node_affinity_after_node_change(target: PodInfo, old: NodeInfo | None, new: NodeInfo, want: Hint) -> None:
    assert qh.node_affinity_after_node_change(target, node_event(old, new)) is want


# ---- NodePorts ------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "deleted", "want"), [
    (pod(ports=[8080]), pod("d", ports=[8080]), SKIP),                          # the deleted pod was never placed
    (pod(ports=[8080]), pod("d", container_ports=[8080], node_name="n"), SKIP),  # no host port
    (pod(ports=[8081]), pod("d", ports=[8080], node_name="n"), SKIP),            # an unrelated host port
    (pod(ports=[8080]), pod("d", ports=[8080], node_name="n"), QUEUE),           # the very port released
], ids=["unscheduled", "non-hostport", "unrelated-hostport", "released-hostport"])
def test_ports_after_pod_deleted(target: PodInfo, deleted: PodInfo, want: Hint) -> None:
    assert qh.ports_after_pod_deleted(target, pod_event(deleted, None)) is want


# ---- InterPodAffinity -----------------------------------------------------------------------


def _aff(kind: str, *terms: Mapping[str, Any]) -> dict[str, Any]:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def _term(key: str, value: str, topology: str = "zone") -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": {key: value}}, "topologyKey": topology}


AFFINITY = _aff("podAffinity", _term("service", "securityscan"))
AFFINITY2 = _aff("podAffinity", _term("service", "securityscan"), _term("aaa", "a"))
ANTI = _aff("podAntiAffinity", _term("service", "securityscan"))
SCAN = {"service": "securityscan"}


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    (pod(affinity=AFFINITY), None, pod("o", labels=SCAN, node_name="n"), QUEUE),        # added, matching the affinity
    (pod(affinity=AFFINITY), None, pod("o", labels=SCAN), SKIP),                         # added but not scheduled
    (pod(affinity=AFFINITY), None, pod("o", labels={"aaa": "a"}, node_name="n"), SKIP),  # added, not matching
    (pod(affinity=AFFINITY), pod("o", labels={"aaa": "a"}, node_name="n"), pod("o", labels=SCAN, node_name="n"), QUEUE),
    (pod(affinity=AFFINITY), pod("o", labels={**SCAN, "a": "1"}, node_name="n"), pod("o", labels=SCAN, node_name="n"),
     SKIP),                                                                               # matched before and after
    (pod(affinity=AFFINITY), pod("o", labels={"aaa": "a"}), pod("o", labels=SCAN), SKIP),  # an unscheduled pod updated
    (pod(affinity=ANTI), pod("o", labels=SCAN, node_name="n"), pod("o", labels={"aaa": "b"}, node_name="n"), QUEUE),
    # two affinity terms: matching one, then both
    (pod(affinity=AFFINITY2), pod("o", labels=SCAN, node_name="n"), pod("o", labels={**SCAN, "aaa": "a"}, node_name="n"),
     QUEUE),
    # two affinity terms: matching both, then one (it no longer helps)
    (pod(affinity=AFFINITY2), pod("o", labels={**SCAN, "aaa": "a"}, node_name="n"), pod("o", labels=SCAN, node_name="n"),
     SKIP),
    (pod(affinity=ANTI), pod("o", labels={"aaa": "a"}, node_name="n"), None, SKIP),      # deleted, not hated
    (pod(affinity=ANTI), pod("o", labels=SCAN, node_name="n"), None, QUEUE),             # deleted, hated
    (pod(affinity=AFFINITY), pod("o", labels=SCAN, node_name="n"), None, SKIP),          # a deletion never helps affinity
    # vecsched: deleted, its own anti-affinity rejected the pod (the pod carries the label it hates)
    (pod(labels=SCAN), pod("o", node_name="n", affinity=ANTI), None, QUEUE),
    (pod(labels={"aaa": "a"}), pod("o", node_name="n", affinity=ANTI), None, SKIP),
    # a term choosing namespaces by label: the hint cannot see namespaces' labels, so a pod
    # of another namespace may be chosen -- it counts (upstream's nil labels would skip it)
    (pod(affinity=_aff("podAffinity", {**_term("service", "securityscan"),
                                       "namespaceSelector": {"matchLabels": {"team": "a"}}})),
     None, pod("o", ns="other", labels=SCAN, node_name="n"), QUEUE),
    # a term listing its namespaces: a pod elsewhere is not chosen
    (pod(affinity=_aff("podAffinity", {**_term("service", "securityscan"), "namespaces": ["x"]})),
     None, pod("o", ns="other", labels=SCAN, node_name="n"), SKIP),
], ids=["add-matching", "add-unscheduled", "add-not-matching", "update-to-match", "update-still-matching",
        "update-unscheduled", "update-out-of-anti-affinity", "update-multiple-terms-to-match",
        "update-multiple-terms-from-match", "delete-not-hated", "delete-hated", "delete-affinity",
        "delete-existing-anti-affinity", "delete-existing-anti-affinity-unrelated", "namespace-selector",
        "namespaces-listed"])
def test_affinity_after_pod_change(target: PodInfo, old: PodInfo | None, new: PodInfo | None, want: Hint) -> None:
    assert qh.affinity_after_pod_change(target, pod_event(old, new)) is want


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    (pod(affinity=AFFINITY), None, node(labels={"zone": "zone1"}), QUEUE),                      # new node, with the key
    (pod(affinity=AFFINITY), None, node(labels={"aaa": "a"}), SKIP),                             # new node, without it
    (pod(affinity=AFFINITY), node(labels={"zone": "zone1"}), node(labels={"zone": "zone2"}), QUEUE),  # value changed
    (pod(affinity=AFFINITY), node(labels={"zone": "zone1"}), node(labels={"zone": "zone1", "x": "y"}), SKIP),
    (pod(affinity=AFFINITY), node(labels={"aaa": "a"}), node(labels={"aaa": "b"}), SKIP),       # unrelated label
    (pod(affinity=AFFINITY), node(), node(labels={"zone": "zone1"}), QUEUE),                     # gained the key
    (pod(affinity=ANTI), None, node(labels={"zone": "zone1"}), QUEUE),                           # any new node
    (pod(affinity=ANTI), None, node(), QUEUE),
    (pod(affinity=ANTI), node(labels={"aaa": "a"}), node(labels={"aaa": "b"}), SKIP),
    (pod(affinity=ANTI), node(labels={"zone": "zone1"}), node(labels={"zone": "zone2"}), QUEUE),
    (pod(affinity=ANTI), node(labels={"zone": "zone1"}), node(), QUEUE),                        # lost the key
    (pod(affinity=ANTI), node(), node(labels={"zone": "zone1"}), SKIP),                         # gained it: no help
], ids=["add-with-key", "add-without-key", "key-value-changed", "other-label-added", "unrelated-label",
        "gained-key", "anti-add-with-key", "anti-add-without-key", "anti-unrelated-label", "anti-key-value-changed",
        "anti-lost-key", "anti-gained-key"])
def test_affinity_after_node_change(target: PodInfo, old: NodeInfo | None, new: NodeInfo, want: Hint) -> None:
    assert qh.affinity_after_node_change(target, node_event(old, new)) is want


# ---- PodTopologySpread ----------------------------------------------------------------------


def _spread(*keys: str, selector: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    sel = selector or {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
    return [{"maxSkew": 1, "topologyKey": k, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel} for k in keys]


ZONE = _spread("zone")
ZONE_NODE = _spread("zone", "node")
ZONE_NODE_BAR = [*_spread("zone"), *_spread("node", selector={"matchExpressions": [{"key": "bar", "operator": "Exists"}]})]


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    (pod(topologySpreadConstraints=ZONE), node(labels={"zone": "zone1"}), node(labels={"zone": "zone2"}), QUEUE),
    (pod(topologySpreadConstraints=ZONE), node(labels={"aaa": "a"}), node(labels={"aaa": "b"}), SKIP),
    (pod(topologySpreadConstraints=ZONE), node(labels={"zone": "zone1"}), node(labels={"zone": "zone1", "a": "b"}), SKIP),
    (pod(topologySpreadConstraints=ZONE), None, node(labels={"aaa": "a"}), SKIP),
    (pod(topologySpreadConstraints=ZONE), None, node(labels={"zone": "zone1"}), QUEUE),
    (pod(topologySpreadConstraints=ZONE), node(labels={"zone": "zone1"}), None, QUEUE),
    (pod(topologySpreadConstraints=ZONE), node(labels={"aaa": "a"}), None, SKIP),
    (pod(topologySpreadConstraints=ZONE_NODE), None, node(labels={"zone": "zone1"}), SKIP),   # only one of the keys
    (pod(topologySpreadConstraints=ZONE_NODE), node(labels={"zone": "zone1"}), node(labels={"zone": "zone2"}), SKIP),
    (pod(topologySpreadConstraints=ZONE_NODE), node(labels={"zone": "z", "node": "n"}),
     node(labels={"zone": "z", "node": "n"}, taints=[TAINT]), QUEUE),                        # taints changed, all keys
    (pod(topologySpreadConstraints=ZONE_NODE), node(labels={"zone": "z"}), node(labels={"zone": "z"}, taints=[TAINT]),
     SKIP),                                                                                   # taints, one key only
], ids=["key-value-changed", "unrelated-label", "other-label-added", "add-unrelated", "add-related", "delete-related",
        "delete-unrelated", "add-one-key-of-two", "update-one-key-of-two", "taints-all-keys", "taints-one-key"])
def test_spread_after_node_change(target: PodInfo, old: NodeInfo | None, new: NodeInfo | None, want: Hint) -> None:
    action = qh.ADD if old is None else qh.DELETE if new is None else qh.UPDATE_NODE_LABEL
    assert qh.spread_after_node_change(target, node_event(old, new, action)) is want


@pytest.mark.parametrize(("target", "old", "new", "want"), [
    (pod(topologySpreadConstraints=ZONE), None, pod("o", labels={"foo": ""}, node_name="n"), QUEUE),
    (pod(topologySpreadConstraints=ZONE), None, pod("o", labels={"foo": ""}), SKIP),               # unscheduled
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"foo": ""}), pod("o"), SKIP),           # unscheduled
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"foo": ""}), None, SKIP),               # unscheduled
    (pod(topologySpreadConstraints=ZONE), None, pod("o", ns="other", labels={"foo": ""}, node_name="n"), SKIP),
    (pod(topologySpreadConstraints=ZONE), None, pod("o", labels={"bar": ""}, node_name="n"), SKIP),
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"foo": ""}, node_name="n"), None, QUEUE),
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"bar": ""}, node_name="n"), None, SKIP),
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"foo": "", "bar": ""}, node_name="n"),
     pod("o", labels={"foo": ""}, node_name="n"), SKIP),                                           # non-related label
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"bar": ""}, node_name="n"),
     pod("o", labels={"foo": "", "bar": ""}, node_name="n"), QUEUE),                               # label now selected
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"foo": ""}, node_name="n"),
     pod("o", node_name="n"), QUEUE),                                                              # label removed
    (pod(topologySpreadConstraints=ZONE), pod("o", labels={"foo": "a"}, node_name="n"),
     pod("o", labels={"foo": "b"}, node_name="n"), SKIP),                                          # Exists either way
    (pod(topologySpreadConstraints=ZONE_NODE_BAR), pod("o", labels={"foo": ""}, node_name="n"),
     pod("o", labels={"foo": "", "bar": ""}, node_name="n"), QUEUE),                               # the second selector
    (pod(topologySpreadConstraints=ZONE_NODE_BAR), pod("o", labels={"foo": ""}, node_name="n"),
     pod("o", labels={"foo": "", "baz": ""}, node_name="n"), SKIP),
    (pod(topologySpreadConstraints=ZONE_NODE_BAR), pod("o", labels={"foo": "", "bar": "a"}, node_name="n"),
     pod("o", labels={"foo": "", "bar": "b"}, node_name="n"), SKIP),
], ids=["add-matching", "add-unscheduled", "update-unscheduled", "delete-unscheduled", "add-other-namespace",
        "add-not-matching", "delete-matching", "delete-not-matching", "update-unrelated-label", "label-added",
        "label-removed", "label-changed-still-selected", "multi-label-added", "multi-unrelated-label",
        "multi-label-changed"])
def test_spread_after_pod_change(target: PodInfo, old: PodInfo | None, new: PodInfo | None, want: Hint) -> None:
    assert qh.spread_after_pod_change(target, pod_event(old, new)) is want


# ---- Coscheduling (vecsched's hint for a pod joining on a node) -------------------------------

GROUP = {"scheduling.x-k8s.io/pod-group": "g"}


@pytest.mark.parametrize(("target", "added", "want"), [
    (pod(labels=GROUP), pod("o", labels=GROUP, node_name="n"), QUEUE),                   # a member bound
    (pod(labels=GROUP), pod("o", node_name="n"), SKIP),                                  # a stranger
    (pod(labels=GROUP), pod("o", ns="other", labels=GROUP, node_name="n"), SKIP),         # same name, another namespace
], ids=["member", "stranger", "other-namespace"])
def test_coscheduling_after_pod_add(target: PodInfo, added: PodInfo, want: Hint) -> None:
    assert qh.coscheduling_after_pod_add(target, pod_event(None, added)) is want


# ---- events from changes ----------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "labels"), [
    (None, node(), ["NodeAdd"]),
    (node(), node(), []),                                                   # a heartbeat: nothing plugins read changed
    (node(capacity={"cpu": "1"}), node(capacity={"cpu": "2"}), ["NodeAllocatableChange"]),
    (node(labels={"a": "1"}), node(labels={"a": "2"}), ["NodeLabelChange"]),
    (node(taints=[TAINT]), node(), ["NodeTaintChange"]),
    (node(unschedulable=True), node(), ["NodeSpecUnschedulableChange"]),
    (node(), node(unschedulable=True), []),                                 # cordoning helps nobody
    # several at once, in upstream's order: unschedulable, allocatable, labels, taints
    (node(unschedulable=True, taints=[TAINT], capacity={"cpu": "1"}), node(labels={"a": "1"}, capacity={"cpu": "2"}),
     ["NodeSpecUnschedulableChange", "NodeAllocatableChange", "NodeLabelChange", "NodeTaintChange"]),
], ids=["add", "heartbeat", "allocatable", "labels", "taints", "uncordon", "cordon", "several"])
def test_node_events(old: NodeInfo | None, new: NodeInfo, labels: list[str]) -> None:
    assert [e.label for e in qh.node_events(old=old, new=new)] == labels


@pytest.mark.parametrize(("old", "new", "labels"), [
    (None, pod(node_name="n"), ["AssignedPodAdd"]),
    (pod(node_name="n", labels={"a": "1"}), pod(node_name="n", labels={"a": "2"}), ["PodLabelChange"]),
    (pod(node_name="n", requests={"cpu": "2"}), pod(node_name="n", requests={"cpu": "1"}), ["PodRequestScaledDown"]),
    (pod(node_name="n", requests={"cpu": "1"}), pod(node_name="n", requests={"cpu": "2"}), []),  # scaled up
    (pod(node_name="n"), pod(node_name="n"), []),
], ids=["bound", "relabelled", "scaled-down", "scaled-up", "unchanged"])
def test_assigned_pod_events(old: PodInfo | None, new: PodInfo, labels: list[str]) -> None:
    assert [e.label for e in qh.assigned_pod_events(old=old, new=new, node=None)] == labels


@pytest.mark.parametrize(("pods_allowed", "held", "full"), [
    ("2", 2, True),    # 2 pods on a node allowing 2: full
    ("3", 2, False),   # 2 of 3
], ids=["full", "room"])
def test_assigned_pod_left(pods_allowed: str, held: int, full: bool) -> None:
    t = NodeTable()
    t.set_node(node("n", capacity={"pods": pods_allowed, "cpu": "4"}))
    placed = [pod(f"p{i}", requests={"cpu": "1"}) for i in range(held)]
    for p in placed:
        t.add_pod(p, "n")
    ev = qh.assigned_pod_left(table=t, pod=placed[0], node="n")
    assert (ev.label, ev.node_was_full, ev.old_pod is not None and ev.old_pod.node_name) == ("AssignedPodDelete", full, "n")
    assert ev.node is not None and ev.node.name == "n"


# ---- isPodWorthRequeuing ------------------------------------------------------------------------


GROWN = qh.node_events(old=node(capacity={"cpu": "1"}), new=node(capacity={"cpu": "8"}))[0]
RELABELLED = qh.node_events(old=node(labels={"a": "1"}), new=node(labels={"a": "2"}))[0]


@pytest.mark.parametrize(("plugins", "event", "want"), [
    (frozenset(), RELABELLED, True),                                  # no rejecting plugin: any event
    (frozenset({"NodeResourcesFit"}), GROWN, True),                   # cpu 1 -> 8 >= 4 wanted
    (frozenset({"NodeResourcesFit"}), RELABELLED, False),             # Fit does not register label changes
    (frozenset({"NodeResourcesFit", "NodeAffinity"}), RELABELLED, False),  # registered, but the hint says SKIP
    (frozenset({"NodeName"}), GROWN, False),                          # registers node additions only
    (frozenset({"LoadAware"}), RELABELLED, True),                     # not in the registry: the default kinds
    (frozenset({"LoadAware"}), qh.node_deleted(old=node()), False),   # ... which leave node deletions out
    (frozenset({"GpuShare"}), GROWN, True),                           # GPU plugins: node events without hints
    (frozenset({"VolumeBinding"}), qh.storage_event(kind="PersistentVolume", action="Add"), True),
    (frozenset({"NodeVolumeLimits"}), qh.storage_event(kind="PersistentVolume", action="Add"), False),
], ids=["no-plugins", "fit-grown", "fit-relabelled", "two-plugins-skip", "other-kinds", "unknown-plugin",
        "unknown-plugin-node-delete", "gpu", "volume-binding-pv", "node-volume-limits-pv"])
def test_worth_requeuing(plugins: frozenset[str], event: ClusterEvent, want: bool) -> None:
    assert qh.worth_requeuing(pod=pod(requests={"cpu": "4"}), plugins=plugins, event=event) is want


def test_hint_failure_means_queue() -> None:
    # A pod whose affinity cannot be read (an unknown operator): NodeAffinity cannot judge, so QUEUE.
    bad = pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "foo", "operator": "Near", "values": ["bar"]}]}]}}})
    assert qh.worth_requeuing(pod=bad, plugins=frozenset({"NodeAffinity"}), event=RELABELLED) is True


@pytest.mark.parametrize(("target", "want"), [
    # no constraints of its own: the profile's default constraints apply, which a hint
    # cannot see -- so it cannot judge, and the pod is retried
    (pod(), True),
    # its own zone constraint: a new node without the zone key cannot help
    (pod(topologySpreadConstraints=ZONE), False),
], ids=["default-constraints", "own-constraints"])
def test_spread_without_own_constraints(target: PodInfo, want: bool) -> None:
    ev = qh.node_events(old=None, new=node(labels={"aaa": "a"}))[0]
    assert qh.worth_requeuing(pod=target, plugins=frozenset({"PodTopologySpread"}), event=ev) is want


def test_interest() -> None:
    plugins, unknown = qh.interest(RELABELLED)
    # label changes: NodeAffinity, InterPodAffinity, PodTopologySpread, and the plugins
    # registering every node change (volume, GPU, Coscheduling); unknown plugins too
    assert {"NodeAffinity", "InterPodAffinity", "PodTopologySpread", "VolumeBinding", "GpuShare"} <= plugins
    assert "NodeResourcesFit" not in plugins and "TaintToleration" not in plugins and unknown


def test_registry_names_are_plugins() -> None:
    # every name the registry gives events to is a plugin a profile can enable (no typo
    # silently sending a plugin's pods to the default registration)
    assert set(qh.REGISTRY) <= set(build_registry())
