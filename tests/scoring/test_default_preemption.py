"""DefaultPreemption: upstream's cases, ported.

From pkg/scheduler/framework/plugins/defaultpreemption/default_preemption_test.go:
TestPostFilter, TestDryRunPreemption (with the PDB cases and the "expected number
of candidates" cases that set minCandidateNodes args and fix getOffsetRand),
TestSelectBestCandidate, TestPodEligibleToPreemptOthers and TestPreempt; from
pkg/scheduler/framework/preemption/preemption_test.go, TestNodesWherePreemptionMightHelp
(the potential nodes are those whose status is Unschedulable); upstream's
calculateNumCandidates; the DefaultPreemptionArgs cases of
validation_pluginargs_test.go; and pods nominated to a node (addGENominatedPods).

Upstream builds ``st.MakeNode().Capacity(res)`` (32 pods unless ``res`` says) and
``st.MakePod()`` objects; here they are JSON read by ``node_from_json`` /
``pod_from_json`` into a NodeTable, and the plugins are those of a profile read by
``scheduler.config.parse_config``. Upstream's start times ``time.Unix(0, n)``
(nanoseconds) become ``n`` seconds after the epoch: only their order matters.

Not ported, because vecsched has no such thing:
- TestPostFilter's "only one node but failed with TestPlugin" / "one failed with
  TestPlugin and the other pass": PreFilter AddPod/RemovePod extensions that fail;
  vecsched's filters read the table and have no such extension point;
- TestPostFilter's pod-group cases (SchedulingGroup, TopologyAwareWorkloadScheduling,
  WorkloadAwarePreemption) and TestPreEnqueue (asynchronous preemption's gate):
  vecsched has no pod groups, and the live scheduler carries out a preemption
  outside the decision;
- every extender case (TestPostFilter "preemption result filtered out by extenders",
  TestPreempt's extender cases, TestCallExtenders): vecsched's DefaultPreemption
  consults no extenders;
- TestCustomSelection and TestCustomOrdering: the IsEligiblePod / MoreImportantPod
  hooks that out-of-tree plugins replace do not exist in vecsched;
- preemption_test.go's TestDryRunPreemption and TestSelectCandidate: they swap in a
  fake SelectVictimsOnNode / OrderedScoreFuncs; TestPrepareCandidate: the eviction
  API calls, which the live scheduler makes;
- TestNodesWherePreemptionMightHelp's volume cases (VolumeZone, VolumeBinding,
  VolumeRestrictions): vecsched has no volume plugins -- the rule they test (an
  UnschedulableAndUnresolvable status is never a potential node) is covered below;
- DryRunPreemption's counts of Filter calls (expectedNumFilterCalled): vecsched runs
  a filter over many nodes at once; the nodes visited are asserted instead.

TestDryRunPreemption's fake filters become real ones with the same effect: FalseFilter
(rejects every node whatever its pods) an unschedulable node, MatchFilter (fits the
node named like the pod) ``spec.nodeName``, FakeFilter returning Unschedulable an
untolerated taint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from scheduler.config import API_VERSION, ConfigError, parse_config
from scoring.framework import Profile, Reason
from scoring.nominations import Nominations
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins.default_preemption import NOW, DefaultPreemption, DefaultPreemptionArgs, Preemption
from scoring.plugins.budgets import Budgets
from scoring.plugins.preemption import find_candidates
from scoring.table import NodeTable

NEG, LOW, MID, HIGH, VERY_HIGH = -100, 0, 100, 1000, 10000
SMALL = {"cpu": "100m", "memory": "100"}
MEDIUM = {"cpu": "200m", "memory": "200"}
LARGE = {"cpu": "300m", "memory": "300"}
VERY_LARGE = {"cpu": "500m", "memory": "500"}
ONE_POD = {"pods": "1"}
NODE_RES = {"cpu": "200m", "memory": "400"}
LATER = 10**9
"""The clock (seconds) for pods without a start time: after every start time used here."""
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"


# ---- builders, shaped like upstream's st.MakePod() / st.MakeNode() -------------------------


def epoch(n: int) -> str:
    return f"1970-01-01T00:00:{n:02d}Z"


def make_pod(name: str, *, priority: int | None = None, node: str = "", req: Mapping[str, str] | None = None,
             labels: Mapping[str, str] | None = None, start: str | None = None, host_ports: Sequence[int] = (),
             affinity: Mapping[str, Any] | None = None, spread: Sequence[Mapping[str, Any]] = (),
             policy: str | None = None, nominated: str = "", terminating: bool = False,
             preempted: bool = False, node_name: str = "") -> PodInfo:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": dict(labels or {})}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    container: dict[str, Any] = {"name": "c"}
    if req:
        container["resources"] = {"requests": dict(req)}
    if host_ports:
        container["ports"] = [{"containerPort": p, "hostPort": p} for p in host_ports]
    spec: dict[str, Any] = {"containers": [container]}
    if priority is not None:
        spec["priority"] = priority
    if node or node_name:
        spec["nodeName"] = node or node_name
    if affinity:
        spec["affinity"] = dict(affinity)
    if spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in spread]
    if policy:
        spec["preemptionPolicy"] = policy
    status: dict[str, Any] = {"phase": "Running" if node else "Pending"}
    if start is not None:
        status["startTime"] = start
    if nominated:
        status["nominatedNodeName"] = nominated
    if preempted:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]
    return pod_from_json({"kind": "Pod", "metadata": meta, "spec": spec, "status": status})


def make_node(spec: str, capacity: Mapping[str, str] | None = None, *, taints: Sequence[Mapping[str, str]] = (),
              unschedulable: bool = False) -> dict[str, Any]:
    """``"node-a/zone1"``: node ``node-a`` labelled hostname=node-a, zone=zone1 (upstream's
    TestDryRunPreemption labelling); allocatable ``capacity`` with 32 pods unless it says."""
    parts = spec.split("/")
    labels = dict(zip(("hostname", "zone", "region"), parts))
    node: dict[str, Any] = {"kind": "Node", "metadata": {"name": parts[0], "labels": labels},
                            "spec": {"taints": list(taints), "unschedulable": unschedulable},
                            "status": {"allocatable": {"pods": "32", **(capacity or {})}}}
    return node


def make_pdb(name: str, labels: Mapping[str, str], allowed: int, disrupted: Iterable[str] = ()) -> dict[str, Any]:
    return {"kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": dict(labels)}},
            "status": {"disruptionsAllowed": allowed, "disruptedPods": {p: epoch(0) for p in disrupted}}}


def cluster(nodes: Sequence[Mapping[str, Any]], pods: Sequence[PodInfo] = (), *,
            pdbs: Sequence[Mapping[str, Any]] = (), nominated: Sequence[tuple[PodInfo, str]] = ()) -> NodeTable:
    t = NodeTable()
    for n in nodes:
        t.set_node(node_from_json(n))
    for p in pods:
        t.add_pod(p, p.node_name)
    if pdbs:
        budgets = Budgets.of(t)
        for pdb in pdbs:
            budgets.apply(pdb)
    if nominated:
        noms = Nominations.of(t)
        for p, node in nominated:
            noms.set(p, node)
    return t


def profile(*plugins: str, pct: int | None = None, absolute: int | None = None) -> Profile:
    """A profile with just ``plugins`` and DefaultPreemption (upstream's tests register
    only the plugins a case needs), its args from ``pluginConfig``."""
    args: dict[str, int] = {}
    if pct is not None:
        args["minCandidateNodesPercentage"] = pct
    if absolute is not None:
        args["minCandidateNodesAbsolute"] = absolute
    doc = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [{
        "schedulerName": "vecsched",
        "plugins": {"multiPoint": {"enabled": [{"name": n} for n in (*plugins, "DefaultPreemption")],
                                   "disabled": [{"name": "*"}]}},
        "pluginConfig": [{"name": "DefaultPreemption", "args": args}] if args else []}]}
    return parse_config(doc).profiles[0].build()


def preemption_of(prof: Profile) -> DefaultPreemption:
    plugin = prof.postfilters[0]
    assert isinstance(plugin, DefaultPreemption)
    return plugin


def fix_offsets(prof: Profile, *values: int) -> DefaultPreemption:
    """getOffsetRand fixed: the plugin's draws are ``values`` in turn. Upstream's tests
    seed it with 4, which draws 4, 1, 3 from Int31n(5) (the comments of its cases say so)."""
    it = iter(values)
    plugin = preemption_of(prof)
    setattr(plugin, "offset", lambda n: next(it) % n)
    return plugin


def statuses(table: NodeTable, unschedulable: Iterable[str] = (), unresolvable: Iterable[str] = ()) -> list[Reason]:
    """A NodeToStatus as reasons: the named nodes Unschedulable or
    UnschedulableAndUnresolvable, every other node absent (UnschedulableAndUnresolvable,
    upstream's NewNodeToStatus default)."""
    resolvable = np.isin(np.array(table.names), list(unschedulable))
    return [Reason("Unschedulable", resolvable), Reason("UnschedulableAndUnresolvable", ~resolvable, True)]


def candidates(p: Preemption | None) -> dict[str, tuple[list[str], int]]:
    """{node: (victim names sorted, PDB violations)}, as upstream's tests compare them."""
    if p is None:
        return {}
    return {c.node: (sorted(v.name for v in c.victims), c.pdb_violations) for c in p.candidate_list()}


# ---- TestPostFilter ----------------------------------------------------------------------------

POST_FILTER = [
    # node1 allows 1 pod and holds p1 (priority 0): evicting p1 frees the slot.
    ("pod with higher priority can be made schedulable",
     make_pod("p", priority=HIGH), [make_pod("p1", node="node1")], [make_node("node1", ONE_POD)], (),
     ["node1"], (True, "node1", "")),
    # p1 has the pod's priority (0): no pod may be evicted.
    ("pod with tied priority is still unschedulable",
     make_pod("p"), [make_pod("p1", node="node1")], [make_node("node1", ONE_POD)], (),
     ["node1"], (False, "", f"preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.")),
    # node1 is UnschedulableAndUnresolvable: not a potential node.
    ("preemption should respect filteredNodesStatuses",
     make_pod("p", priority=HIGH), [make_pod("p1", node="node1")], [make_node("node1", ONE_POD)], (),
     [], (False, "", f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.")),
    ("preemption should respect absent NodeToStatusReader entry meaning UnschedulableAndUnresolvable",
     make_pod("p", priority=HIGH), [make_pod("p1", node="node1")], [make_node("node1", ONE_POD)], (),
     [], (False, "", f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.")),
    # node1's p1 outranks the pod (1000 > 100); node2's p2 (0) can go.
    ("pod can be made schedulable on one node",
     make_pod("p", priority=MID),
     [make_pod("p1", priority=HIGH, node="node1"), make_pod("p2", priority=LOW, node="node2")],
     [make_node("node1", ONE_POD), make_node("node2", ONE_POD)], (),
     ["node1", "node2"], (True, "node2", "")),
    # node1: p2 (0, violating-pdb allows 0) and p1 (1000, non-violating) both go -> 1 violation,
    # highest victim 1000; node2: p3 (100, violating) -> 1 violation, highest 100. Equal
    # violations, so the lower highest priority wins: node2.
    ("pod can be made schedulable on minHighestPriority node",
     make_pod("p", priority=VERY_HIGH),
     [make_pod("p1", priority=HIGH, node="node1", labels={"pdb": "non-violating"}),
      make_pod("p2", priority=LOW, node="node1", labels={"pdb": "violating"}),
      make_pod("p3", priority=MID, node="node2", labels={"pdb": "violating"})],
     [make_node("node1", ONE_POD), make_node("node2", ONE_POD)],
     (make_pdb("violating-pdb", {"pdb": "violating"}, 0),
      make_pdb("non-violating-pdb", {"pdb": "non-violating"}, 2**31 - 1)),
     ["node1", "node2"], (True, "node2", "")),
    # 300m requested of 200m allocatable: even an empty node is short of cpu.
    ("no candidate nodes found, no enough resource after removing low priority pods",
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1", node="node1"), make_pod("p2", node="node2")],
     [make_node("node1", NODE_RES), make_node("node2", NODE_RES)], (),
     ["node1", "node2"], (False, "", "preemption: 0/2 nodes are available: 2 Insufficient cpu.")),
    # node1 and node3 hold only pods of the pod's priority; node2 is short of cpu anyway.
    ("no candidate nodes found with mixed reasons, no lower priority pod and no enough CPU resource",
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1", priority=HIGH, node="node1"), make_pod("p2", node="node2"),
      make_pod("p3", priority=HIGH, node="node3")],
     [make_node("node1", ONE_POD), make_node("node2", NODE_RES), make_node("node3", ONE_POD)], (),
     ["node1", "node2", "node3"],
     (False, "", f"preemption: 0/3 nodes are available: 1 Insufficient cpu, 2 {NO_VICTIMS}.")),
    # node3 (absent) and node4 (unresolvable) are not dry-run: "not helpful".
    ("no candidate nodes found with mixed reason, 2 UnschedulableAndUnresolvable nodes and 2 nodes don't have "
     "enough CPU resource",
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1", node="node1"), make_pod("p2", node="node2")],
     [make_node(f"node{i}", NODE_RES) for i in range(1, 5)], (),
     ["node1", "node2"],
     (False, "", f"preemption: 0/4 nodes are available: 2 Insufficient cpu, 2 {NOT_HELPFUL}.")),
]


@pytest.mark.parametrize("name,pod,pods,nodes,pdbs,unschedulable,expected", POST_FILTER,
                         ids=[c[0] for c in POST_FILTER])
def test_post_filter(name: str, pod: PodInfo, pods: list[PodInfo], nodes: list[dict[str, Any]],
                     pdbs: Sequence[Mapping[str, Any]], unschedulable: list[str],
                     expected: tuple[bool, str, str]) -> None:
    table = cluster(nodes, pods, pdbs=pdbs)
    prof = profile("NodeResourcesFit")
    result = preemption_of(prof).postfilter(pod, table, {NOW: LATER}, statuses(table, unschedulable), prof)
    assert (result.success, result.nominated_node, result.message) == expected


def test_post_filter_through_the_profile_appends_to_the_fit_error() -> None:
    # The real filter says "Too many pods" (node1 allows 1 and holds p1); p1 has the pod's
    # priority, so preemption finds no victim. The message is upstream's FitError
    # followed by the PostFilter's.
    table = cluster([make_node("node1", ONE_POD)], [make_pod("p1", node="node1")])
    d = profile("NodeResourcesFit").schedule(make_pod("p"), table)
    assert d.node is None
    assert d.message == ("0/1 nodes are available: 1 Too many pods. "
                         f"preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.")
    assert d.post_filter is not None and d.post_filter.nominated_node == ""


# ---- TestDryRunPreemption ------------------------------------------------------------------------


def dry_run(prof: Profile, pod: PodInfo, table: NodeTable) -> dict[str, tuple[list[str], int]]:
    """DryRunPreemption over every node (upstream's test hands it all the NodeInfos, sorted
    by name), with the plugin's offset and numCandidates."""
    plugin = preemption_of(prof)
    dry = find_candidates(prof, pod, table, {}, statuses(table, table.names), offset=plugin.offset,
                          num_candidates=plugin.args.num_candidates, now=LATER)
    return {c.node: (sorted(v.name for v in c.victims), c.pdb_violations) for c in dry.candidates}


RES = ("NodeResourcesFit",)
FOO = {"pdb": "x", "app": "foo"}
DRY_RUN: list[tuple[str, tuple[str, ...], list[dict[str, Any]], PodInfo, list[PodInfo],
                    Sequence[Mapping[str, Any]], dict[str, tuple[list[str], int]]]] = [
    # FalseFilter: nothing an eviction changes rejects both nodes.
    ("a pod that does not fit on any node", ("NodeUnschedulable",),
     [make_node("node1", VERY_LARGE, unschedulable=True), make_node("node2", VERY_LARGE, unschedulable=True)],
     make_pod("p", priority=HIGH),
     [make_pod("p1", node="node1", priority=MID), make_pod("p2", node="node2", priority=MID)], (), {}),
    # TrueFilter: the pod fits with every pod given back, so no node has a victim (upstream:
    # "expected at least one victim pod on node"), and none is a candidate.
    ("a pod that fits with no preemption", RES,
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=HIGH),
     [make_pod("p1", node="node1", priority=MID), make_pod("p2", node="node2", priority=MID)], (), {}),
    # MatchFilter: the pod fits node1 only, and there with every pod given back.
    ("a pod that fits on one node with no preemption", ("NodeName", *RES),
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("node1", priority=HIGH, node_name="node1"),
     [make_pod("p1", node="node1", priority=MID), make_pod("p2", node="node2", priority=MID)], (), {}),
    # 300m + 300m > 500m on each node: each node's one pod must go.
    ("a pod that fits on both nodes when lower priority pods are preempted", RES,
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1", node="node1", priority=MID, req=LARGE), make_pod("p2", node="node2", priority=MID, req=LARGE)],
     (), {"node1": (["p1"], 0), "node2": (["p2"], 0)}),
    ("a pod that would fit on the nodes, but other pods running are higher priority, no preemption would happen",
     RES, [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=LOW, req=LARGE),
     [make_pod("p1", node="node1", priority=MID, req=LARGE), make_pod("p2", node="node2", priority=MID, req=LARGE)],
     (), {}),
    # node1: without both, 0 + 300 fits; p1.2 (100, more important) back -> 600 > 500, a victim;
    # p1.1 (0, 100m) back -> 400 fits.
    ("medium priority pod is preempted, but lower priority one stays as it is small", RES,
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1.1", node="node1", priority=LOW, req=SMALL), make_pod("p1.2", node="node1", priority=MID, req=LARGE),
      make_pod("p2", node="node2", priority=MID, req=LARGE)],
     (), {"node1": (["p1.2"], 0), "node2": (["p2"], 0)}),
    # node1 keeps p1.4 (1000, not lower) = 100m; reprieve order p1.1 (100, 100m) -> 500 fits,
    # p1.3 (100, 200m) -> 700 no, p1.2 (0, 100m) -> 600 no. node2: only p2 (1000).
    ("mixed priority pods are preempted", RES,
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1.1", node="node1", priority=MID, req=SMALL), make_pod("p1.2", node="node1", priority=LOW, req=SMALL),
      make_pod("p1.3", node="node1", priority=MID, req=MEDIUM), make_pod("p1.4", node="node1", priority=HIGH, req=SMALL),
      make_pod("p2", node="node2", priority=HIGH, req=LARGE)],
     (), {"node1": (["p1.2", "p1.3"], 0)}),
    # As above, with start times: p1.3 (100) first, 100 + 200 + 300 = 600 no; then among the
    # priority-0 pods the earlier p1.2 (t4) -> 500 fits, p1.1 (t5) -> 600 no.
    ("mixed priority pods are preempted, pick later StartTime one when priorities are equal", RES,
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1.1", node="node1", priority=LOW, req=SMALL, start=epoch(5)),
      make_pod("p1.2", node="node1", priority=LOW, req=SMALL, start=epoch(4)),
      make_pod("p1.3", node="node1", priority=MID, req=MEDIUM, start=epoch(3)),
      make_pod("p1.4", node="node1", priority=HIGH, req=SMALL, start=epoch(2)),
      make_pod("p2", node="node2", priority=HIGH, req=LARGE, start=epoch(1))],
     (), {"node1": (["p1.1", "p1.3"], 0)}),
    # p1.1 repels pods labelled foo on its host; without p1.1 and p1.2 the pod fits, p1.2
    # (100m) comes back (100 + 100 + 100 <= 500); p1.1 would bring its anti-affinity back.
    ("pod with anti-affinity is preempted", ("NodeResourcesFit", "InterPodAffinity"),
     [make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=SMALL, labels={"foo": ""}),
     [make_pod("p1.1", node="node1", priority=LOW, req=SMALL, labels={"foo": ""}, affinity={"podAntiAffinity": {
         "requiredDuringSchedulingIgnoredDuringExecution": [
             {"labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
              "topologyKey": "hostname"}]}}),
      make_pod("p1.2", node="node1", priority=MID, req=SMALL), make_pod("p1.3", node="node1", priority=HIGH, req=SMALL),
      make_pod("p2", node="node2", priority=HIGH, req=SMALL)],
     (), {"node1": (["p1.1"], 0)}),
    # foo-pods per zone: zone1 3 (node-a 2, node-b 1), zone2 2; per host a 2, b 1, x 2.
    # node-a without a1, a2: zone1 1 -> 1+1-1 = 1 <= 1, host 0+1-0 = 1: fits; a1 back: zone1
    # 2 -> 3-2 = 1, host a 1 -> 2-1 = 1: fits; a2 back: zone1 3 -> 4-2 = 2 > 1: victim.
    # node-b without b1: zone1 2 -> 3-2 = 1, host b 0 -> 1-0 = 1: fits; b1 back: 4-2 = 2: victim.
    # node-x: both pods outrank nobody below 1000.
    ("preemption to resolve pod topology spread filter failure", ("PodTopologySpread",),
     [make_node("node-a/zone1", VERY_LARGE), make_node("node-b/zone1", VERY_LARGE),
      make_node("node-x/zone2", VERY_LARGE)],
     make_pod("p", priority=HIGH, labels={"foo": ""}, spread=[
         {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
          "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}},
         {"maxSkew": 1, "topologyKey": "hostname", "whenUnsatisfiable": "DoNotSchedule",
          "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}}]),
     [make_pod("pod-a1", node="node-a", priority=MID, labels={"foo": ""}),
      make_pod("pod-a2", node="node-a", priority=LOW, labels={"foo": ""}),
      make_pod("pod-b1", node="node-b", priority=LOW, labels={"foo": ""}),
      make_pod("pod-x1", node="node-x", priority=HIGH, labels={"foo": ""}),
      make_pod("pod-x2", node="node-x", priority=HIGH, labels={"foo": ""})],
     (), {"node-a": (["pod-a2"], 0), "node-b": (["pod-b1"], 0)}),
    # FakeFilter Unschedulable on every node: whatever is evicted, the node stays rejected.
    ("get Unschedulable in the preemption phase when the filter plugins filtering the nodes",
     ("TaintToleration", *RES),
     [make_node("node1", VERY_LARGE, taints=[{"key": "fake", "value": "x", "effect": "NoSchedule"}]),
      make_node("node2", VERY_LARGE, taints=[{"key": "fake", "value": "x", "effect": "NoSchedule"}])],
     make_pod("p", priority=HIGH, req=LARGE),
     [make_pod("p1", node="node1", priority=MID, req=LARGE), make_pod("p2", node="node2", priority=MID, req=LARGE)],
     (), {}),
    # 500m pod on a 500m node: both 200m pods go. Equal priority and no start time: key order
    # p1.1, p1.2. The budget (1 allowed) takes p1.1 to 0, p1.2 to -1: p1.2 violates.
    ("preemption with violation of same pdb", RES, [make_node("node1", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=VERY_LARGE),
     [make_pod("p1.1", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"}),
      make_pod("p1.2", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"})],
     (make_pdb("pdb", {"app": "foo"}, 1),), {"node1": (["p1.1", "p1.2"], 1)}),
    # p2 (disrupted already) is not on the node: the budget counts as above.
    ("preemption with violation of the pdb with pod whose eviction was processed, the victim doesn't belong to "
     "DisruptedPods", RES, [make_node("node1", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=VERY_LARGE),
     [make_pod("p1.1", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"}),
      make_pod("p1.2", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"})],
     (make_pdb("pdb", {"app": "foo"}, 1, disrupted=["p2"]),), {"node1": (["p1.1", "p1.2"], 1)}),
    # p1.2 is in disruptedPods: not counted; p1.1 takes the budget to 0: no violation.
    ("preemption with violation of the pdb with pod whose eviction was processed, the victim belongs to "
     "DisruptedPods", RES, [make_node("node1", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=VERY_LARGE),
     [make_pod("p1.1", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"}),
      make_pod("p1.2", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"})],
     (make_pdb("pdb", {"app": "foo"}, 1, disrupted=["p1.2"]),), {"node1": (["p1.1", "p1.2"], 0)}),
    # p1.1 -> 0, p1.2 -> -1 (violates), p1.3 disrupted: not counted, non-violating. All go.
    ("preemption with violation of the pdb with pod whose eviction was processed, the victim which belongs to "
     "DisruptedPods is treated as 'nonViolating'", RES, [make_node("node1", VERY_LARGE)],
     make_pod("p", priority=HIGH, req=VERY_LARGE),
     [make_pod("p1.1", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"}),
      make_pod("p1.2", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"}),
      make_pod("p1.3", node="node1", priority=MID, req=MEDIUM, labels={"app": "foo"})],
     (make_pdb("pdb", {"app": "foo"}, 1, disrupted=["p1.3"]),), {"node1": (["p1.1", "p1.2", "p1.3"], 1)}),
]


@pytest.mark.parametrize("name,plugins,nodes,pod,pods,pdbs,expected", DRY_RUN, ids=[c[0] for c in DRY_RUN])
def test_dry_run_preemption(name: str, plugins: tuple[str, ...], nodes: list[dict[str, Any]],
                            pod: PodInfo, pods: list[PodInfo], pdbs: Sequence[Mapping[str, Any]],
                            expected: dict[str, tuple[list[str], int]]) -> None:
    table = cluster(nodes, pods, pdbs=pdbs)
    prof = profile(*plugins)
    fix_offsets(prof, 0)
    assert dry_run(prof, pod, table) == expected


FIVE = [make_node(f"node{i}", VERY_LARGE) for i in range(1, 6)]


def five_pods(priorities: Sequence[int], labelled: Sequence[int] = ()) -> list[PodInfo]:
    return [make_pod(f"p{i}", node=f"node{i}", priority=prio, req=LARGE, labels={"app": "foo"} if i in labelled else {})
            for i, prio in enumerate(priorities, start=1)]


# numCandidates = max(5 x pct / 100, absolute) capped at 5; the offset draws are 4, 1, 3.
NUM_CANDIDATES = [
    # 5 x 40 / 100 = 2; offset 4: node5 (yes), node1 (yes) -> 2 candidates, stop.
    ("all nodes are possible candidates, but DefaultPreemptionArgs limits to 2", 40, 1,
     five_pods([MID] * 5), (), [{"node1": (["p1"], 0), "node5": (["p5"], 0)}]),
    # offset 4: node5 (p5 outranks), node1 (yes), node2 (p2 outranks), node3 (yes) -> stop.
    ("some nodes are not possible candidates, DefaultPreemptionArgs limits to 2", 40, 1,
     five_pods([MID, VERY_HIGH, MID, MID, VERY_HIGH]), (), [{"node1": (["p1"], 0), "node3": (["p3"], 0)}]),
    # Three cycles: offset 4 -> node5, node1; 1 -> node2, node3; 3 -> node4, node5.
    ("preemption offset across multiple scheduling cycles and wrap around", 40, 1,
     five_pods([MID] * 5), (),
     [{"node1": (["p1"], 0), "node5": (["p5"], 0)}, {"node2": (["p2"], 0), "node3": (["p3"], 0)},
      {"node4": (["p4"], 0), "node5": (["p5"], 0)}]),
    # numCandidates 2 (5 x 40 / 100 = 2 >= 2). The budget allows 0 disruptions of app=foo.
    # offset 4: node5 (violating: list of 1), node1 (violating: 2), node2 (violating: the list
    # holds 2, dropped), node3 (non-violating: 1 + 2 >= 2, stop). Three candidates: more than
    # numCandidates, as the search goes on until one violates no budget.
    ("preemption looks past numCandidates until a non-PDB violating node is found", 40, 2,
     five_pods([MID] * 5, labelled=(1, 2, 5)), (make_pdb("pdb", {"app": "foo"}, 0),),
     [{"node1": (["p1"], 1), "node3": (["p3"], 0), "node5": (["p5"], 1)}]),
]


@pytest.mark.parametrize("name,pct,absolute,pods,pdbs,expected", NUM_CANDIDATES, ids=[c[0] for c in NUM_CANDIDATES])
def test_dry_run_preemption_number_of_candidates(name: str, pct: int, absolute: int, pods: list[PodInfo],
                                                 pdbs: Sequence[Mapping[str, Any]],
                                                 expected: list[dict[str, tuple[list[str], int]]]) -> None:
    table = cluster(FIVE, pods, pdbs=pdbs)
    prof = profile("NodeResourcesFit", pct=pct, absolute=absolute)
    fix_offsets(prof, 4, 1, 3)
    for cycle, want in enumerate(expected):
        pod = make_pod(f"tp{cycle + 1}", priority=HIGH, req=LARGE)
        assert dry_run(prof, pod, table) == want, f"cycle {cycle}"


def test_dry_run_candidates_are_non_violating_first_in_visiting_order() -> None:
    # The last case above, in upstream's order: the non-violating list, then the violating
    # one, each in the order the nodes were visited (node5 before node1).
    table = cluster(FIVE, five_pods([MID] * 5, labelled=(1, 2, 5)), pdbs=[make_pdb("pdb", {"app": "foo"}, 0)])
    prof = profile("NodeResourcesFit", pct=40, absolute=2)
    plugin = fix_offsets(prof, 4)
    dry = find_candidates(prof, make_pod("p", priority=HIGH, req=LARGE), table, {}, statuses(table, table.names),
                          offset=plugin.offset, num_candidates=plugin.args.num_candidates, now=LATER)
    assert [c.node for c in dry.candidates] == ["node3", "node5", "node1"]
    assert dry.visited == 4  # node5, node1, node2, node3


def test_no_candidate_when_num_candidates_is_zero() -> None:
    # minCandidateNodesAbsolute 0 and 5 x 10 / 100 = 0: upstream's candidate lists have
    # room for none, so every node is visited and no candidate kept; the nodes that would
    # have been candidates are reported "not helpful".
    table = cluster(FIVE, five_pods([MID, VERY_HIGH, MID, MID, MID]))
    prof = profile("NodeResourcesFit", pct=10, absolute=0)
    fix_offsets(prof, 0, 0)
    assert dry_run(prof, make_pod("p", priority=HIGH, req=LARGE), table) == {}
    d = prof.schedule(make_pod("p", priority=HIGH, req=LARGE), table)
    assert d.post_filter is not None
    assert d.post_filter.message == f"preemption: 0/5 nodes are available: 1 {NO_VICTIMS}, 4 {NOT_HELPFUL}."


# ---- TestSelectBestCandidate ---------------------------------------------------------------------


def at(name: str, node: str, prio: int, req: Mapping[str, str], start: int = 0) -> PodInfo:
    return make_pod(name, node=node, priority=prio, req=req, start=epoch(start))


# Every pod requests 500m of a 500m node: all its lower-priority pods go. Victim priorities
# are summed each plus 2^31 (2147483648).
SELECT_BEST = [
    ("a pod that fits on both nodes when lower priority pods are preempted", HIGH, LARGE,
     [at("p1", "node1", MID, LARGE), at("p2", "node2", MID, LARGE)], ["node1", "node2"]),
    # Highest victim: node1 100, node2 100, node3 0 -> node3.
    ("node with min highest priority pod is picked", HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, MEDIUM), at("p1.2", "node1", MID, LARGE), at("p2.1", "node2", MID, MEDIUM),
      at("p2.2", "node2", LOW, MEDIUM), at("p3.1", "node3", LOW, MEDIUM), at("p3.2", "node3", LOW, MEDIUM)], ["node3"]),
    # Highest 100 everywhere; sums: node1 200 + 2x2^31, node2 100 + 2x2^31, node3 200 + 2x2^31.
    ("when highest priorities are the same, minimum sum of priorities is picked", HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, MEDIUM), at("p1.2", "node1", MID, LARGE), at("p2.1", "node2", MID, LARGE),
      at("p2.2", "node2", LOW, MEDIUM), at("p3.1", "node3", MID, MEDIUM), at("p3.2", "node3", MID, MEDIUM)], ["node2"]),
    # Sums: node1 100-100+100-100 + 4x2^31, node2 100-100 + 2x2^31, node3 100-100+0 + 3x2^31:
    # the adjusted sum already prefers the node with fewest victims, node2.
    ("when highest priority and sum are the same, minimum number of pods is picked", HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, SMALL), at("p1.2", "node1", NEG, SMALL), at("p1.3", "node1", MID, SMALL),
      at("p1.4", "node1", NEG, SMALL), at("p2.1", "node2", MID, LARGE), at("p2.2", "node2", NEG, MEDIUM),
      at("p3.1", "node3", MID, MEDIUM), at("p3.2", "node3", NEG, SMALL), at("p3.3", "node3", LOW, SMALL)], ["node2"]),
    # Sums: node1 100-100-100 + 3x2^31, node2 100-100 + 2x2^31, node3 100-100+0 + 3x2^31 -> node2.
    ("sum of adjusted priorities is considered", HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, SMALL), at("p1.2", "node1", NEG, SMALL), at("p1.3", "node1", NEG, SMALL),
      at("p2.1", "node2", MID, LARGE), at("p2.2", "node2", NEG, MEDIUM), at("p3.1", "node3", MID, MEDIUM),
      at("p3.2", "node3", NEG, SMALL), at("p3.3", "node3", LOW, SMALL)], ["node2"]),
    # node2's p2.1 (1000) is the highest victim anywhere; node1 100 + 3x2^31, node3 100 +
    # 4x2^31, node4 200 + 4x2^31 -> node1.
    ("non-overlapping lowest high priority, sum priorities, and number of pods", VERY_HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, SMALL), at("p1.2", "node1", LOW, SMALL), at("p1.3", "node1", LOW, SMALL),
      at("p2.1", "node2", HIGH, LARGE), at("p3.1", "node3", MID, MEDIUM), at("p3.2", "node3", LOW, SMALL),
      at("p3.3", "node3", LOW, SMALL), at("p3.4", "node3", LOW, MEDIUM), at("p4.1", "node4", MID, MEDIUM),
      at("p4.2", "node4", MID, SMALL), at("p4.3", "node4", MID, SMALL), at("p4.4", "node4", NEG, SMALL)], ["node1"]),
    # Two 100-victims everywhere; earliest start: node1 t2, node2 t3, node3 t1 -> the latest, node2.
    ("same priority, same number of victims, different start time for each node's pod", HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, MEDIUM, 2), at("p1.2", "node1", MID, MEDIUM, 2), at("p2.1", "node2", MID, MEDIUM, 3),
      at("p2.2", "node2", MID, MEDIUM, 3), at("p3.1", "node3", MID, MEDIUM, 1), at("p3.2", "node3", MID, MEDIUM, 1)],
     ["node2"]),
    # Earliest: node1 min(4, 2) = 2, node2 min(5, 1) = 1, node3 min(3, 6) = 3 -> node3.
    ("same priority, same number of victims, different start time for all pods", HIGH, VERY_LARGE,
     [at("p1.1", "node1", MID, MEDIUM, 4), at("p1.2", "node1", MID, MEDIUM, 2), at("p2.1", "node2", MID, MEDIUM, 5),
      at("p2.2", "node2", MID, MEDIUM, 1), at("p3.1", "node3", MID, MEDIUM, 3), at("p3.2", "node3", MID, MEDIUM, 6)],
     ["node3"]),
    # Equal highest (100), sums and counts; earliest start among each node's 100-victims:
    # node1 t2, node2 t6, node3 t5 -> node2.
    ("different priority, same number of victims, different start time for all pods", HIGH, VERY_LARGE,
     [at("p1.1", "node1", LOW, MEDIUM, 4), at("p1.2", "node1", MID, MEDIUM, 2), at("p2.1", "node2", MID, MEDIUM, 6),
      at("p2.2", "node2", LOW, MEDIUM, 1), at("p3.1", "node3", LOW, MEDIUM, 3), at("p3.2", "node3", MID, MEDIUM, 5)],
     ["node2"]),
]


@pytest.mark.parametrize("name,prio,req,pods,expected", SELECT_BEST, ids=[c[0] for c in SELECT_BEST])
def test_select_best_candidate(name: str, prio: int, req: Mapping[str, str], pods: list[PodInfo],
                               expected: list[str]) -> None:
    nodes = sorted({p.node_name for p in pods})
    table = cluster([make_node(n, VERY_LARGE) for n in nodes], pods)
    prof = profile("NodeResourcesFit")
    fix_offsets(prof, 0)
    d = prof.schedule(make_pod("p", priority=prio, req=req), table)
    assert d.post_filter is not None and d.post_filter.success
    assert d.post_filter.nominated_node in expected


# ---- TestPreempt (the whole of Preempt, every node Unschedulable) ----------------------------------

PREEMPT = [
    # node1: 100 + 100 + 500 > 500, both priority-0 pods go (highest victim 0); node2's p2.1
    # has the pod's priority; node3: p3.1 (100) goes. Lowest highest victim: node1.
    ("basic preemption logic", make_pod("p", priority=HIGH, req=VERY_LARGE, policy="PreemptLowerPriority"),
     [make_node(f"node{i}", VERY_LARGE) for i in (1, 2, 3)],
     [make_pod("p1.1", node="node1", priority=LOW, req=SMALL), make_pod("p1.2", node="node1", priority=LOW, req=SMALL),
      make_pod("p2.1", node="node2", priority=HIGH, req=LARGE), make_pod("p3.1", node="node3", priority=MID, req=MEDIUM)],
     ("NodeResourcesFit",), "node1", ["p1.1", "p1.2"]),
    # foo-pods: zone1 3 (a: 2 of priority 1000, b: 1 of 0), zone2 2. Only p-b1 is lower than
    # the pod; without it zone1 has 2: 2+1-2 = 1 and host b 0+1-0 = 1: fits on node-b.
    ("preemption for topology spread constraints",
     make_pod("p", priority=HIGH, labels={"foo": ""}, spread=[
         {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
          "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}},
         {"maxSkew": 1, "topologyKey": "hostname", "whenUnsatisfiable": "DoNotSchedule",
          "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}}]),
     [make_node("node-a/zone1", VERY_LARGE), make_node("node-b/zone1", VERY_LARGE), make_node("node-x/zone2", VERY_LARGE)],
     [make_pod("p-a1", node="node-a", priority=HIGH, labels={"foo": ""}),
      make_pod("p-a2", node="node-a", priority=HIGH, labels={"foo": ""}),
      make_pod("p-b1", node="node-b", priority=LOW, labels={"foo": ""}),
      make_pod("p-x1", node="node-x", priority=HIGH, labels={"foo": ""}),
      make_pod("p-x2", node="node-x", priority=HIGH, labels={"foo": ""})],
     ("PodTopologySpread",), "node-b", ["p-b1"]),
    ("no preempting in pod", make_pod("p", priority=HIGH, req=VERY_LARGE, policy="Never"),
     [make_node(f"node{i}", VERY_LARGE) for i in (1, 2, 3)],
     [make_pod("p1.1", node="node1", priority=LOW, req=SMALL), make_pod("p1.2", node="node1", priority=LOW, req=SMALL),
      make_pod("p2.1", node="node2", priority=HIGH, req=LARGE), make_pod("p3.1", node="node3", priority=MID, req=MEDIUM)],
     ("NodeResourcesFit",), None, []),
    ("PreemptionPolicy is nil", make_pod("p", priority=HIGH, req=VERY_LARGE),
     [make_node(f"node{i}", VERY_LARGE) for i in (1, 2, 3)],
     [make_pod("p1.1", node="node1", priority=LOW, req=SMALL), make_pod("p1.2", node="node1", priority=LOW, req=SMALL),
      make_pod("p2.1", node="node2", priority=HIGH, req=LARGE), make_pod("p3.1", node="node3", priority=MID, req=MEDIUM)],
     ("NodeResourcesFit",), "node1", ["p1.1", "p1.2"]),
]


@pytest.mark.parametrize("name,pod,nodes,pods,plugins,node,victims", PREEMPT, ids=[c[0] for c in PREEMPT])
def test_preempt(name: str, pod: PodInfo, nodes: list[dict[str, Any]], pods: list[PodInfo], plugins: tuple[str, ...],
                 node: str | None, victims: list[str]) -> None:
    table = cluster(nodes, pods)
    prof = profile(*plugins)
    plugin = fix_offsets(prof, 0)
    result = plugin.postfilter(pod, table, {NOW: LATER}, statuses(table, table.names), prof)
    assert result.nominated_node == node
    assert isinstance(result.detail, Preemption)
    assert [v.name for v in result.detail.victims] == victims


def test_preempt_through_the_profile_uses_the_real_filters() -> None:
    # The same as "basic preemption logic", every node's status now from NodeResourcesFit
    # (short of cpu on each: resolvable).
    case = PREEMPT[0]
    table = cluster(case[2], case[3])
    d = profile("NodeResourcesFit").schedule(case[1], table)
    assert d.message.startswith("0/3 nodes are available: 3 Insufficient cpu")
    assert d.post_filter is not None and d.post_filter.nominated_node == "node1"
    assert isinstance(d.post_filter.detail, Preemption)
    assert [v.name for v in d.post_filter.detail.victims] == ["p1.1", "p1.2"]


def test_victims_are_listed_most_important_first() -> None:
    # "mixed priority pods are preempted, pick later StartTime": victims p1.3 (100) then
    # p1.1 (0), as upstream keeps them (it re-sorts after reprieving both kinds).
    case = next(c for c in DRY_RUN if c[0].startswith("mixed priority pods are preempted, pick"))
    table = cluster(case[2], case[4])
    prof = profile(*case[1])
    d = prof.schedule(case[3], table)
    assert d.post_filter is not None and isinstance(d.post_filter.detail, Preemption)
    assert [v.name for v in d.post_filter.detail.victims] == ["p1.3", "p1.1"]


# ---- TestPodEligibleToPreemptOthers ---------------------------------------------------------------

ELIGIBLE = [
    # The nominated node is UnschedulableAndUnresolvable now: preempt again.
    ("Pod with nominated node", make_pod("p_with_nominated_node", priority=HIGH, nominated="node1"),
     [make_pod("p1", priority=LOW, node="node1", terminating=True)], ["node1"], [], True),
    ("Pod without nominated node", make_pod("p_without_nominated_node", priority=HIGH), [], [], [], True),
    ("Pod with 'PreemptNever' preemption policy", make_pod("p_with_preempt_never_policy", priority=HIGH, policy="Never"),
     [], [], [], False),
    # A lower-priority pod on the nominated node is terminating because of a preemption.
    ("preemption victim pod terminating, as indicated by the dedicated DisruptionTarget condition",
     make_pod("p_with_nominated_node", priority=HIGH, nominated="node1"),
     [make_pod("p1", priority=LOW, node="node1", terminating=True, preempted=True)], [], ["node1"], False),
    # Terminating, but not by preemption.
    ("non-victim Pods terminating", make_pod("p_with_nominated_node", priority=HIGH, nominated="node1"),
     [make_pod("p1", priority=LOW, node="node1", terminating=True)], [], ["node1"], True),
    # isPreemptionAllowed: only a pod of lower priority could have been this pod's victim.
    ("terminating pod of the same priority is not a victim of this pod",
     make_pod("p_with_nominated_node", priority=HIGH, nominated="node1"),
     [make_pod("p1", priority=HIGH, node="node1", terminating=True, preempted=True)], [], ["node1"], True),
]


@pytest.mark.parametrize("name,pod,pods,unresolvable,unschedulable,expected", ELIGIBLE, ids=[c[0] for c in ELIGIBLE])
def test_pod_eligible_to_preempt_others(name: str, pod: PodInfo, pods: list[PodInfo], unresolvable: list[str],
                                        unschedulable: list[str], expected: bool) -> None:
    table = cluster([make_node("node1", VERY_LARGE)], pods)
    plugin = preemption_of(profile("NodeResourcesFit"))
    reasons = [Reason("Unschedulable", np.isin(np.array(table.names), unschedulable)),
               Reason("UnschedulableAndUnresolvable", np.isin(np.array(table.names), unresolvable), True)]
    assert plugin.eligible(pod, table, reasons)[0] is expected


@pytest.mark.parametrize("pod,message", [
    (make_pod("p", priority=HIGH, policy="Never"), "preemption: not eligible due to preemptionPolicy=Never."),
    (make_pod("p", priority=HIGH, nominated="node1"),
     "preemption: not eligible due to a terminating pod on the nominated node."),
])
def test_ineligible_pod_keeps_its_nomination(pod: PodInfo, message: str) -> None:
    # Upstream returns a nil PostFilterResult: the nomination is left as it is.
    table = cluster([make_node("node1", ONE_POD)],
                    [make_pod("p1", priority=LOW, node="node1", terminating=True, preempted=True)])
    prof = profile("NodeResourcesFit")
    result = preemption_of(prof).postfilter(pod, table, {NOW: LATER}, statuses(table, ["node1"]), prof)
    assert (result.success, result.nominated_node, result.message) == (False, None, message)


def test_scheduler_nomination_takes_precedence_over_the_pod_status() -> None:
    # The scheduler's own record (Nominations) names node1, where a victim is terminating;
    # the pod object has not been updated yet.
    pod = make_pod("p", priority=HIGH)
    table = cluster([make_node("node1", ONE_POD)],
                    [make_pod("p1", priority=LOW, node="node1", terminating=True, preempted=True)],
                    nominated=[(pod, "node1")])
    assert preemption_of(profile("NodeResourcesFit")).eligible(pod, table, statuses(table, ["node1"]))[0] is False


# ---- nodesWherePreemptionMightHelp ----------------------------------------------------------------

# Upstream's cases with the statuses that matter here: the nodes listed are Unschedulable,
# every other one UnschedulableAndUnresolvable (listed so, or absent from the map).
MIGHT_HELP = [
    # node1..4: NodeAffinity, NodeName, TaintToleration, InterPodAffinity's affinity rules.
    ("No node should be attempted", [], set()),
    # node1: anti-affinity rules (Unschedulable); node2 NodeName, node3 NodeUnschedulable,
    # node4 absent.
    ("ErrReasonAntiAffinityRulesNotMatch should be tried", ["node1"], {"node1"}),
    # node2: "Insufficient memory" (Unschedulable); node1 a volume conflict; node3, node4 absent.
    ("Mix of failed predicates works fine", ["node2"], {"node2"}),
    # node1, node3: topology spread constraints (Unschedulable); node2 NodeName; node4 absent.
    ("ErrReasonConstraintsNotMatch should be tried", ["node1", "node3"], {"node1", "node3"}),
    ("UnschedulableAndUnresolvable status should be skipped but Unschedulable should be tried",
     ["node3"], {"node3"}),
]


@pytest.mark.parametrize("name,unschedulable,expected", MIGHT_HELP, ids=[c[0] for c in MIGHT_HELP])
def test_nodes_where_preemption_might_help(name: str, unschedulable: list[str], expected: set[str]) -> None:
    # Every node holds a pod that can go, and the pod fits once it has: the candidates are
    # exactly the nodes dry-run, the Unschedulable ones.
    nodes = [make_node(f"node{i}", ONE_POD) for i in range(1, 5)]
    table = cluster(nodes, [make_pod(f"p{i}", node=f"node{i}") for i in range(1, 5)])
    prof = profile("NodeResourcesFit")
    plugin = fix_offsets(prof, 0)
    dry = find_candidates(prof, make_pod("p", priority=HIGH), table, {}, statuses(table, unschedulable),
                          offset=plugin.offset, num_candidates=plugin.args.num_candidates, now=LATER)
    assert {c.node for c in dry.candidates} == expected
    assert dry.potential == len(expected)


# ---- nominated pods (addGENominatedPods) -----------------------------------------------------------


def two_nodes_with(nominated: PodInfo, **pod: Any) -> tuple[NodeTable, PodInfo]:
    """node1 holds p1 (priority 0, 300m), node2 p2 (priority 100, 300m), both 500m; the
    preemptor (priority 1000) asks 300m; ``nominated`` waits for node1."""
    table = cluster([make_node("node1", VERY_LARGE), make_node("node2", VERY_LARGE)],
                    [make_pod("p1", node="node1", priority=LOW, req=LARGE),
                     make_pod("p2", node="node2", priority=MID, req=LARGE)],
                    nominated=[(nominated, "node1")])
    return table, make_pod("p", priority=HIGH, req=LARGE, **pod)


NOMINATED = [
    # The nominated pod (10000, 300m) keeps node1 taken: 300 + 300 > 500 even without p1.
    # Only node2 is a candidate.
    ("a higher-priority nominated pod keeps its room", make_pod("n", priority=VERY_HIGH, req=LARGE), {},
     "node2", {"node2": (["p2"], 0)}),
    # Equal priority counts too (">=").
    ("a nominated pod of equal priority keeps its room", make_pod("n", priority=HIGH, req=LARGE), {},
     "node2", {"node2": (["p2"], 0)}),
    # A lower-priority nominated pod is not seen: node1 (victim 0) beats node2 (victim 100).
    ("a lower-priority nominated pod is ignored", make_pod("n", priority=MID, req=LARGE), {},
     "node1", {"node1": (["p1"], 0), "node2": (["p2"], 0)}),
    # The nominated pod (no cpu) holds host port 8080, which the preemptor wants; no pod on
    # the nodes uses it, so only the nominated pod conflicts, on node1.
    ("a nominated pod's host port keeps node1", make_pod("n", priority=VERY_HIGH, host_ports=[8080]),
     {"host_ports": [8080]}, "node2", {"node2": (["p2"], 0)}),
    # A resource no node offers, on a nominated pod: only the cpu matters to the preemptor.
    ("a nominated pod's unknown resource", make_pod("n", priority=VERY_HIGH, req={"example.com/dongle": "1"}), {},
     "node1", {"node1": (["p1"], 0), "node2": (["p2"], 0)}),
    # The nominated pod repels pods labelled app=web from its host: node1 cannot take the
    # preemptor whatever is evicted (the filters see the nominated pod).
    ("a nominated pod's anti-affinity keeps node1",
     make_pod("n", priority=VERY_HIGH, affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
         {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "hostname"}]}}),
     {"labels": {"app": "web"}}, "node2", {"node2": (["p2"], 0)}),
]


@pytest.mark.parametrize("name,nominated,pod_kw,node,expected", NOMINATED, ids=[c[0] for c in NOMINATED])
def test_nominated_pods(name: str, nominated: PodInfo, pod_kw: dict[str, Any], node: str,
                        expected: dict[str, tuple[list[str], int]]) -> None:
    table, pod = two_nodes_with(nominated, **pod_kw)
    prof = profile("NodePorts", "NodeResourcesFit", "InterPodAffinity")
    d = prof.schedule(pod, table, all_candidates=True)
    assert d.node is None and d.post_filter is not None
    assert d.post_filter.nominated_node == node
    assert isinstance(d.post_filter.detail, Preemption)
    assert candidates(d.post_filter.detail) == expected


@pytest.mark.parametrize("nominated", [
    make_pod("n", priority=VERY_HIGH, host_ports=[8080]),
    make_pod("n", priority=VERY_HIGH, req={"example.com/dongle": "1"}),
], ids=["host port", "resource"])
def test_dry_run_reads_columns_only_a_nominated_pod_has(nominated: PodInfo) -> None:
    # The dry run alone, before any filter has charged the nominated pod to the table: its
    # port (or resource) has no column yet. node1: 300m + the preemptor's 300m > 500m, p1
    # goes; the nominated pod asks no cpu and no port the preemptor wants.
    table, pod = two_nodes_with(nominated)
    prof = profile("NodePorts", "NodeResourcesFit")
    fix_offsets(prof, 0)
    assert dry_run(prof, pod, table) == {"node1": (["p1"], 0), "node2": (["p2"], 0)}


def test_the_pods_own_nomination_is_not_in_its_way() -> None:
    # The preemptor is itself nominated to node1 (an earlier cycle): it does not count
    # against node1.
    table, pod = two_nodes_with(make_pod("n", priority=LOW))
    Nominations.of(table).set(pod, "node1")
    d = profile("NodeResourcesFit").schedule(pod, table, all_candidates=True)
    assert d.post_filter is not None and d.post_filter.nominated_node == "node1"


# ---- calculateNumCandidates --------------------------------------------------------------------------

NUM = [
    # (pct, absolute, nodes, expected): n = nodes x pct / 100 (integer), raised to absolute,
    # capped at nodes.
    (10, 100, 0, 0),     # no nodes
    (50, 100, 50, 50),   # 25 < 100 -> 100, capped at 50
    (50, 10, 200, 100),  # 100 >= 10
    (10, 50, 200, 50),   # 20 < 50 -> 50
    (60, 10, 200, 120),  # 120
    (100, 0, 7, 7),      # 7
    (10, 0, 9, 0),       # 9 x 10 / 100 = 0, and absolute 0
    (10, 1, 5, 1),       # 0 -> 1
    (40, 1, 5, 2),       # 200 / 100 = 2
    (33, 1, 10, 3),      # 330 / 100 = 3 (truncated)
]


@pytest.mark.parametrize("pct,absolute,nodes,expected", NUM)
def test_calculate_num_candidates(pct: int, absolute: int, nodes: int, expected: int) -> None:
    assert DefaultPreemptionArgs(pct, absolute).num_candidates(nodes) == expected


# ---- DefaultPreemptionArgs validation ----------------------------------------------------------------

ARGS = "<config>: profiles[0].pluginConfig[0].args"
VALIDATION = [
    ("valid args (default)", {"minCandidateNodesPercentage": 10, "minCandidateNodesAbsolute": 100}, None),
    ("negative minCandidateNodesPercentage", {"minCandidateNodesPercentage": -1, "minCandidateNodesAbsolute": 100},
     f"{ARGS}.minCandidateNodesPercentage: not in valid range [0, 100], got -1"),
    ("minCandidateNodesPercentage over 100", {"minCandidateNodesPercentage": 900, "minCandidateNodesAbsolute": 100},
     f"{ARGS}.minCandidateNodesPercentage: not in valid range [0, 100], got 900"),
    ("negative minCandidateNodesAbsolute", {"minCandidateNodesPercentage": 20, "minCandidateNodesAbsolute": -1},
     f"{ARGS}.minCandidateNodesAbsolute: not in valid range [0, inf), got -1"),
    ("all zero", {"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0},
     f"{ARGS}.minCandidateNodesPercentage: cannot be zero at the same time as minCandidateNodesAbsolute"),
    ("both negative", {"minCandidateNodesPercentage": -1, "minCandidateNodesAbsolute": -1},
     f"{ARGS}.minCandidateNodesPercentage: not in valid range [0, 100], got -1"),
    # Strict decoding, as upstream's.
    ("unknown field", {"minCandidateNodes": 3},
     f"{ARGS}.minCandidateNodes: unknown field (known: minCandidateNodesAbsolute, minCandidateNodesPercentage)"),
    ("not an integer", {"minCandidateNodesPercentage": "10%"},
     f"{ARGS}.minCandidateNodesPercentage: expected an integer, got '10%'"),
    ("defaults when unset", {}, None),
]


@pytest.mark.parametrize("name,args,error", VALIDATION, ids=[c[0] for c in VALIDATION])
def test_default_preemption_args_validation(name: str, args: dict[str, Any], error: str | None) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
           "profiles": [{"schedulerName": "vecsched",
                         "pluginConfig": [{"name": "DefaultPreemption", "args": {"kind": "DefaultPreemptionArgs",
                                                                                **args}}]}]}
    if error is None:
        plugin = parse_config(doc).profiles[0].build().postfilters[0]
        assert isinstance(plugin, DefaultPreemption)
        assert plugin.args == DefaultPreemptionArgs(args.get("minCandidateNodesPercentage", 10),
                                                     args.get("minCandidateNodesAbsolute", 100))
        return
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    assert str(e.value) == error
