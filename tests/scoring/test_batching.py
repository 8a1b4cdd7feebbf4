"""Opportunistic batching is exact: a Batcher decides every pod as Profile.schedule does,
field by field and tie-breaks included, through pod adds/removes and node adds, updates
and removals; and a pod is signable or not for each of the documented reasons."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scheduler.config import default_config
from scoring.batching import HIT, MISS, ROWS, UNSIGNABLE, Batcher, RowLog, Signed, sign_pod
from scoring.framework import Decision, Profile, Reason
from scoring.nominations import Nominations
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.node_resources_fit import fit_masks, fit_row
from scoring.plugins.resource_scoring import (allocation_matrices, allocation_row, balanced_allocation,
                                              balanced_allocation_row, least_allocated, least_allocated_row,
                                              most_allocated, most_allocated_row)
from scoring.plugins.workloads import Workloads
from scoring.table import NodeTable
from scoring.tie_break import NODE_NAME, NODE_ORDER, RANDOM

# ---- random clusters and pod streams ---------------------------------------------------------

_ZONES = ("a", "b")
_IMAGES = ("img-0:v1", "img-1:v1", "img-2:v1")
# Few node shapes, so that equal totals (ties) are common.
_NODE_SHAPES: tuple[tuple[str, str | None], ...] = (("4", "8Gi"), ("8", "16Gi"), ("2", None))
"""(cpu, memory): the last has no memory at all (resources a node lacks score apart)."""


def _node(i: int, shape: int, zone: int, tainted: bool, image: int, pods: int = 110) -> NodeInfo:
    cpu, mem = _NODE_SHAPES[shape]
    allocatable = {"cpu": cpu, "pods": str(pods), **({"memory": mem} if mem else {})}
    return node_from_json({
        "metadata": {"name": f"n{i:02d}", "labels": {"zone": _ZONES[zone], "kubernetes.io/hostname": f"n{i:02d}"}},
        "spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}] if tainted else []},
        "status": {"allocatable": allocatable,
                   "images": [{"names": [_IMAGES[image]], "sizeBytes": 300_000_000}] if image >= 0 else []},
    })


_POD_SHAPES: tuple[dict[str, Any], ...] = (
    {"containers": [{"name": "c", "image": _IMAGES[0], "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
    {"containers": [{"name": "c", "image": _IMAGES[1], "resources": {"requests": {"cpu": "500m"}}}],
     "nodeSelector": {"zone": "a"}},
    {"containers": [{"name": "c", "image": _IMAGES[2], "resources": {"requests": {"cpu": "2", "memory": "2Gi"}},
                     "ports": [{"containerPort": 80, "hostPort": 8080}]}],
     "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]},
    {"containers": [{"name": "c", "image": "other:v1"}],  # no requests: non-zero defaults score it
     "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
         {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}},
     "volumes": [{"name": "scratch", "emptyDir": {}}]},
)


def _pod(i: int, shape: int) -> PodInfo:
    spec = copy.deepcopy(_POD_SHAPES[shape])
    spec["schedulerName"] = "vecsched"
    return pod_from_json({"metadata": {"name": f"p{i:03d}", "namespace": "default", "uid": f"u{i}",
                                       "labels": {"app": f"s{shape}"}}, "spec": spec})


_nodes = st.lists(st.tuples(st.integers(0, len(_NODE_SHAPES) - 1), st.integers(0, 1), st.booleans(), st.integers(-1, 2)),
                  min_size=1, max_size=8)
# A run of 1..6 replicas of one shape (so that signatures repeat), or one watch event.
_ops = st.lists(st.one_of(
    st.tuples(st.just("pods"), st.integers(0, len(_POD_SHAPES) - 1), st.integers(1, 6)),
    st.tuples(st.just("pods"), st.integers(0, len(_POD_SHAPES) - 1), st.integers(1, 6)),  # twice as often
    st.tuples(st.just("remove_pod"), st.integers(0, 10_000), st.just(1)),
    st.tuples(st.just("update_node"), st.integers(0, 10_000), st.just(1)),
    st.tuples(st.just("add_node"), st.integers(0, 10_000), st.just(1)),
    st.tuples(st.just("remove_node"), st.integers(0, 10_000), st.just(1)),
    # Cluster state that makes pods unsignable for a while: a Service selecting shape 0's pods
    # (PodTopologySpread's default constraints then apply to them), a placed pod with anti-affinity.
    st.tuples(st.just("service"), st.just(0), st.just(1)),
    st.tuples(st.just("anti_affinity_pod"), st.integers(0, 10_000), st.just(1)),
), min_size=1, max_size=25)


def _assert_same(got: Decision, want: Decision, step: int) -> None:
    """Every field of the decision, in order."""
    where = f"step {step}"
    assert got.node == want.node, where
    assert got.message == want.message, where
    assert got.feasible.tolist() == want.feasible.tolist(), where
    assert [(r.message, r.nodes.tolist(), r.unresolvable) for r in got.reasons] == \
        [(r.message, r.nodes.tolist(), r.unresolvable) for r in want.reasons], where
    assert got.scored.tolist() == want.scored.tolist(), where
    assert list(got.scores) == list(want.scores), where
    for name in want.scores:
        assert got.scores[name].tolist() == want.scores[name].tolist(), (where, name)
    assert got.totals.tolist() == want.totals.tolist(), where
    assert got.annotations == want.annotations, where
    assert got.state.get("framework/skipped-scores", set()) == want.state.get("framework/skipped-scores", set()), where


_AWAY_FROM_S1 = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "s1"}}, "topologyKey": "zone"}]}}
"""A placed pod's required anti-affinity: shape 1's pods stay out of its zone."""


def _apply(table: NodeTable, op: tuple[str, int, int], next_node: int) -> None:
    """A watch event on ``table`` (the same on both tables)."""
    kind, k, _ = op
    if kind == "remove_pod" and table.pods:
        table.remove_pod(sorted(table.pods)[k % len(table.pods)])
    elif kind == "update_node" and table.n:
        old = table.infos[k % table.n]
        # A relabel (zone flips) and a new pod limit: both change feasibility or scores.
        labels = {**old.labels, "zone": "b" if old.labels.get("zone") == "a" else "a"}
        table.set_node(replace(old, labels=labels))
    elif kind == "add_node":
        table.set_node(_node(next_node, k % 2, k % 2, k % 3 == 0, k % 4 - 1, pods=2 + k % 3))
    elif kind == "remove_node" and table.n > 1:
        table.remove_node(table.names[k % table.n])
    elif kind == "service":
        web = {"kind": "Service", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"app": "s0"}}}
        workloads = Workloads.of(table)
        if workloads.services.get("default", {}).get("web") is None:
            workloads.apply(web)
        else:
            workloads.delete(web)
    elif kind == "anti_affinity_pod" and table.n:
        table.add_pod(pod_from_json({"metadata": {"name": f"anti{k}", "namespace": "default", "uid": f"a{k}",
                                                  "labels": {"app": "db"}},
                                     "spec": {"containers": [{"name": "c"}], "affinity": _AWAY_FROM_S1}}),
                      table.names[k % table.n])


@pytest.mark.parametrize("tie_break", [RANDOM, NODE_NAME, NODE_ORDER], ids=["random", "node-name", "node-order"])
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), node_specs=_nodes, ops=_ops)
def test_batched_decisions_equal_unbatched(tie_break: str, seed: int, node_specs: list[tuple[int, int, bool, int]],
                                           ops: list[tuple[str, int, int]]) -> None:
    cfg = replace(default_config().profiles[0], tie_break=tie_break)
    plain_profile: Profile = cfg.build(seed=seed)
    batched_profile: Profile = cfg.build(seed=seed)
    batcher = Batcher(batched_profile)
    nodes = [_node(i, *spec) for i, spec in enumerate(node_specs)]
    plain, batched = NodeTable(), NodeTable()
    for t in (plain, batched):
        for n in nodes:
            t.set_node(n)
    results = set()
    step = 0
    for op in ops:
        if op[0] != "pods":
            for t in (plain, batched):
                _apply(t, op, len(node_specs) + step)
            step += 1
            continue
        for _ in range(op[2]):
            step += 1
            pod = _pod(step, op[1])
            want = plain_profile.schedule(pod, plain)
            out = batcher.decide(pod, batched)
            results.add(out.result)
            got = out.decision if out.decision is not None else batched_profile.schedule(pod, batched)
            assert got.batched == (out.result == HIT and out.decision is not None)
            _assert_same(got, want, step)
            if want.node is not None:  # assume, on both
                plain.add_pod(pod, want.node)
                batched.add_pod(pod, want.node)
    if not any(op[0] in ("service", "anti_affinity_pod") for op in ops):
        assert UNSIGNABLE not in results  # every shape above is signable under the default profile


def test_a_replica_after_an_assume_is_a_hit_that_recomputes_one_row() -> None:
    # 3 nodes of 4 cpu; replicas of 1 cpu: the first is a MISS (everything computed), the
    # second a HIT with the first one's row (and only it) logged since.
    table = NodeTable()
    for i in range(3):
        table.set_node(_node(i, 0, 0, False, -1))
    profile = default_config().profiles[0].build(seed=1)
    batcher = Batcher(profile)
    first = batcher.decide(_pod(0, 0), table)
    assert first.result == MISS and first.decision is not None and first.decision.node is not None
    table.add_pod(_pod(0, 0), first.decision.node)
    log = RowLog.of(table)
    assert log.rows == [table.index[first.decision.node]]
    second = batcher.decide(_pod(1, 0), table)
    assert second.result == HIT and second.decision is not None
    # LeastAllocated over cpu and memory with the replica placed: on the used node 2 of 4 cpu
    # and 2 of 8Gi -> (50 + 75) // 2 = 62; on an empty one 1 of 4 and 1 of 8Gi -> (75 + 87) // 2 = 81:
    # the second replica goes to an empty node.
    assert second.decision.scores["NodeResourcesFit"].tolist() == [
        62 if name == first.decision.node else 81 for name in table.names]
    assert second.decision.node != first.decision.node


def test_nothing_fits_goes_to_the_ordinary_path() -> None:
    # 1 node of 4 cpu holding a 4-cpu pod: a 1-cpu pod fits nowhere, so the batcher gives no
    # decision and Profile.schedule reports it, with DefaultPreemption's PostFilter finding no
    # victim (the big pod has the same priority, 0).
    table = NodeTable()
    table.set_node(_node(0, 0, 0, False, -1))
    big = pod_from_json({"metadata": {"name": "big", "namespace": "default", "uid": "big"},
                         "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "4"}}}]}})
    table.add_pod(big, "n00")
    profile = default_config().profiles[0].build(seed=1)
    out = Batcher(profile).decide(_pod(1, 0), table)
    assert out.decision is None and out.result == MISS
    assert profile.schedule(_pod(1, 0), table).message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")


# ---- signability -------------------------------------------------------------------------------


def _spec_pod(spec: dict[str, Any], *, labels: dict[str, str] | None = None,
              status: dict[str, Any] | None = None) -> PodInfo:
    spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}], **spec}
    raw: dict[str, Any] = {"metadata": {"name": "x", "namespace": "default", "uid": "x", "labels": labels or {}},
                           "spec": spec}
    if status:
        raw["status"] = status
    return pod_from_json(raw)


_ANTI = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}
_SPREAD = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}}]


@pytest.mark.parametrize("pod_spec,labels,status,reason", [
    ({}, None, None, ""),
    ({"affinity": _ANTI}, None, None, "InterPodAffinity: pods with pod affinity or anti-affinity are not signable"),
    ({"topologySpreadConstraints": _SPREAD}, None, None,
     "PodTopologySpread: pods with topology spread constraints are not signable"),
    ({}, {"scheduling.x-k8s.io/pod-group": "g"}, None, "Coscheduling: the pod belongs to a PodGroup"),
    ({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]}, None, None,
     "VolumeRestrictions: the pod has volumes that VolumeRestrictions checks"),
    ({"volumes": [{"name": "d", "csi": {"driver": "x"}}]}, None, None,
     "NodeVolumeLimits: the pod has volumes that NodeVolumeLimits counts"),
    ({"volumes": [{"name": "d", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]}, None, None,
     "VolumeBinding: the pod has persistent or ephemeral volume claims"),
    ({}, None, {"nominatedNodeName": "n00"}, "the pod has a nominated node"),
    ({"containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}, None, None,
     "NodeResourcesFit: requests or scores resources that plugins account for outside the table"),
], ids=["plain", "pod-anti-affinity", "spread-constraints", "pod-group", "pvc", "inline-csi", "ephemeral",
        "nominated", "extended-resource"])
def test_signability_of_a_pod(pod_spec: dict[str, Any], labels: dict[str, str] | None,
                              status: dict[str, Any] | None, reason: str) -> None:
    # The default profile: every plugin signs; the first that refuses names the reason
    # (plugins sign in PreFilter, Filter, Score order: the volume plugins' PreFilters come
    # before NodeResourcesFit, VolumeRestrictions before NodeVolumeLimits).
    table = NodeTable()
    table.set_node(_node(0, 0, 0, False, -1))
    got = sign_pod(default_config().profiles[0].build(), _spec_pod(pod_spec, labels=labels, status=status), table)
    assert (got if isinstance(got, str) else "") == reason


def _profile_with(**changes: Any) -> Profile:
    return replace(default_config().profiles[0], **changes).build()


@pytest.mark.parametrize("case,reason", [
    ("existing-anti-affinity", "InterPodAffinity: placed pods have pod affinity or anti-affinity terms"),
    ("nominated-elsewhere", "pods of equal or higher priority are nominated to nodes (the filters count them)"),
    ("sampling", "percentageOfNodesToScore samples the nodes"),
    ("unsigned-plugin", "plugin Random cannot sign pods"),
    ("default-spread", "PodTopologySpread: default topology spread constraints apply to the pod"),
], ids=lambda v: v if v.islower() else "")
def test_signability_of_the_cluster_and_profile(case: str, reason: str) -> None:
    # 120 nodes: percentageOfNodesToScore 50 keeps max(120 * 50 // 100, 100) = 100 < 120 of them.
    table = NodeTable()
    for i in range(120):
        table.set_node(_node(i, 0, i % 2, False, -1))
    profile = default_config().profiles[0].build()
    pod = _spec_pod({})
    if case == "existing-anti-affinity":
        table.add_pod(_spec_pod({"affinity": _ANTI}, labels={"app": "db"}), "n00")
    elif case == "nominated-elsewhere":
        other = pod_from_json({"metadata": {"name": "o", "namespace": "default", "uid": "o"},
                               "spec": {"containers": [{"name": "c"}]}})
        Nominations.of(table).set(other, "n01")
    elif case == "sampling":
        profile = _profile_with(percentage_of_nodes_to_score=50)
    elif case == "unsigned-plugin":
        cfg = default_config().profiles[0]
        profile = replace(cfg, scores=(*cfg.scores, ("Random", 1))).build()
    elif case == "default-spread":
        # A Service selecting the pod makes the system default constraints apply.
        Workloads.of(table).apply({"kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                                   "spec": {"selector": {"app": "web"}}})
        pod = _spec_pod({}, labels={"app": "web"})
    got = sign_pod(profile, pod, table)
    assert got == reason


class _Flaky:
    """A ROWS filter -- a node is full with less than 3500m cpu free -- that can be made to
    fail, as a plugin meeting bad input part-way through would."""

    name = "Flaky"

    def __init__(self) -> None:
        self.fail = False

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        return Signed(ROWS)

    def filter(self, pod: PodInfo, table: NodeTable, state: dict[str, Any]) -> list[Reason]:
        return list(self.reasons_of_rows(pod, table, self.filter_rows(pod, table, np.arange(table.n), state), state))

    def filter_rows(self, pod: PodInfo, table: NodeTable, rows: Any, state: dict[str, Any]) -> Any:
        if self.fail:
            raise ValueError("bad input")
        cpu = table.resource_index["cpu"]
        return table.allocatable[rows, cpu] - table.requested[rows, cpu] < 3500

    def reasons_of_rows(self, pod: PodInfo, table: NodeTable, data: Any, state: dict[str, Any]) -> list[Reason]:
        return [Reason("full", data.copy())] if data.any() else []


def test_a_plugin_failing_part_way_drops_what_is_kept() -> None:
    # 2 nodes of 4 cpu, NodeOrder ties: replica 0 (1 cpu) goes to n00 (MISS), leaving 3000m
    # free there: full. Replica 1 finds n00's row logged, and the refresh fails. It is placed
    # on n01 by hand (3000m free: full too). Nothing kept is used again, so replica 2 is a
    # MISS that sees both nodes full -- not a HIT that refreshes n01 alone and still finds
    # n00 with 4000m free.
    table = NodeTable()
    for i in range(2):
        table.set_node(_node(i, 0, 0, False, -1))
    flaky = _Flaky()
    batcher = Batcher(Profile(name="p", filters=[flaky], scorers=[], tie_break=NODE_ORDER))
    first = batcher.decide(_pod(0, 0), table)
    assert (first.result, first.decision and first.decision.node) == (MISS, "n00")
    table.add_pod(_pod(0, 0), "n00")
    flaky.fail = True
    with pytest.raises(ValueError):
        batcher.decide(_pod(1, 0), table)
    flaky.fail = False
    table.add_pod(_pod(1, 0), "n01")
    third = batcher.decide(_pod(2, 0), table)
    assert (third.result, third.decision) == (MISS, None)


# ---- the one-row functions the batched path uses equal the matrix ones -------------------------

_AMOUNT = st.one_of(st.just(0), st.integers(1, 64), st.integers(1, 2**40), st.integers(2**56, 2**62))


@settings(max_examples=60, deadline=None)
@given(nodes=st.lists(st.tuples(_AMOUNT, _AMOUNT, _AMOUNT, st.integers(0, 3)), min_size=1, max_size=5),
       placed=st.lists(st.tuples(st.integers(0, 4), _AMOUNT, _AMOUNT, _AMOUNT), max_size=6),
       pod=st.tuples(_AMOUNT, _AMOUNT, _AMOUNT))
def test_row_functions_equal_the_matrix_functions(nodes: list[tuple[int, int, int, int]],
                                                  placed: list[tuple[int, int, int, int]],
                                                  pod: tuple[int, int, int]) -> None:
    # cpu, memory and an extended resource, some 0 (a node without it), some near int64's
    # end (where sums and LeastAllocated's "x 100" wrap around, in numpy as in the row functions).
    table = NodeTable()
    for i, (cpu, mem, gpu, pods) in enumerate(nodes):
        table.set_node(NodeInfo(name=f"n{i}", labels={}, allocatable={"cpu": cpu, "memory": mem,
                                "example.com/gpu": gpu, "pods": pods}, unschedulable=False, taints=(), images=(),
                                raw={}))
    for j, (k, cpu, mem, gpu) in enumerate(placed):
        p = pod_from_json({"metadata": {"name": f"e{j}", "namespace": "d", "uid": f"e{j}"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": f"{cpu}m", "memory": str(mem), "example.com/gpu": str(gpu)}}}]}})
        table.add_pod(p, f"n{k % len(nodes)}")
    resources = ["cpu", "memory", "example.com/gpu"]
    requests = list(pod)
    rows = np.arange(table.n, dtype=np.intp)
    weights = np.array([1, 2, 3], np.int64)
    for use_requested in (False, True):
        alloc, req = allocation_matrices(table, rows, resources, requests, use_requested=use_requested)
        for row in range(table.n):
            a, r = allocation_row(table, row, resources, requests, use_requested=use_requested)
            assert (a, r) == (alloc[row].tolist(), req[row].tolist())
            assert balanced_allocation_row(a, r) == balanced_allocation(alloc, req)[row]
            for row_fn, matrix_fn in ((least_allocated_row, least_allocated), (most_allocated_row, most_allocated)):
                assert row_fn(a, r, weights.tolist()) == matrix_fn(alloc, req, weights)[row]
    masks = fit_masks(table, rows, resources, requests)
    assert [fit_row(table, row, resources, requests) for row in range(table.n)] == masks.tolist()


@pytest.mark.parametrize("change,reason", [
    (("service", 0, 1), "PodTopologySpread: default topology spread constraints apply to the pod"),
    (("anti_affinity_pod", 0, 1), "InterPodAffinity: placed pods have pod affinity or anti-affinity terms"),
], ids=["service-selects-it", "placed-anti-affinity"])
def test_a_replica_is_signed_again_when_the_cluster_changes_what_signing_reads(
        change: tuple[str, int, int], reason: str) -> None:
    # The batcher reuses a replica's signing while each plugin's sign_stamp stays: a Service
    # selecting the pods (PodTopologySpread's stamp: the workloads' generation) or a placed
    # pod with anti-affinity (InterPodAffinity's: whether placed pods carry terms) changes it,
    # and the next replica, signed anew, is unsignable.
    table = NodeTable()
    for i in range(3):
        table.set_node(_node(i, 0, i % 2, False, -1))
    batcher = Batcher(default_config().profiles[0].build(seed=1))
    assert batcher.decide(_pod(1, 0), table).result == MISS
    assert batcher.decide(_pod(2, 0), table).result == HIT
    _apply(table, change, 10)
    out = batcher.decide(_pod(3, 0), table)
    assert (out.result, out.reason, out.decision) == (UNSIGNABLE, reason, None)
