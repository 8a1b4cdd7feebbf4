"""Property: NodeResourcesFit (filter and all three scoring strategies) and
NodeResourcesBalancedAllocation give exactly the per-node reference's answers on
random clusters: random allocatable (some resources absent or zero), random
extended resources and hugepages, random pods already placed (some removed
again), requests with missing, zero and positive amounts, init containers,
sidecars, overhead and pod-level requests, and random args."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.reference import RefCluster, RefNode
from benchmarks.reference.resources import balanced_allocation as ref_balanced
from benchmarks.reference.resources import fit as ref_fit
from benchmarks.reference.resources import fits_request
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import balanced_allocation, node_resources_fit
from scoring.table import NodeTable

EXTENDED = ["example.com/gpu", "vendor.io/fpga", "hugepages-2Mi", "kubernetes.io/batteries"]
SCORED = ["cpu", "memory", "ephemeral-storage", *EXTENDED, "pods", "foo"]
_ids = itertools.count()

amount = st.integers(0, 12)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, str]:
    """A container's requests: each resource missing, zero or positive."""
    out: dict[str, str] = {}
    for name, unit in (("cpu", "m"), ("memory", "Mi"), ("ephemeral-storage", "Mi")):
        choice = draw(st.sampled_from(["missing", "zero", "some", "some"]))
        if choice == "zero":
            out[name] = "0"
        elif choice == "some":
            out[name] = f"{draw(st.integers(1, 3000))}{unit}"
    for name in draw(st.lists(st.sampled_from(EXTENDED), max_size=2, unique=True)):
        out[name] = str(draw(amount))
    return out


@st.composite
def pods(draw: st.DrawFn, node: str = "") -> PodInfo:
    containers = [{"name": f"c{i}", "resources": {"requests": r}}
                  for i, r in enumerate(draw(st.lists(requests(), max_size=3)))]
    inits = [{"name": f"i{i}", "resources": {"requests": r}, **({"restartPolicy": "Always"} if sidecar else {})}
             for i, (r, sidecar) in enumerate(draw(st.lists(st.tuples(requests(), st.booleans()), max_size=2)))]
    spec: dict[str, Any] = {"nodeName": node, "containers": containers, "initContainers": inits}
    if draw(st.integers(0, 4)) == 0:  # pod-level requests replace the containers' cpu/memory
        level = {r: v for r, v in draw(requests()).items() if r in ("cpu", "memory")}
        if level:
            spec["resources"] = {"requests": level}
    if draw(st.integers(0, 4)) == 0:
        spec["overhead"] = {"cpu": f"{draw(st.integers(0, 500))}m", "memory": f"{draw(st.integers(0, 64))}Mi"}
    return pod_from_json({"metadata": {"name": f"p{next(_ids)}", "namespace": "ns"}, "spec": spec})


@st.composite
def nodes(draw: st.DrawFn, name: str) -> NodeInfo:
    alloc: dict[str, str] = {}
    for res, hi, unit in (("cpu", 8000, "m"), ("memory", 16384, "Mi"), ("ephemeral-storage", 16384, "Mi"), ("pods", 6, "")):
        if draw(st.integers(0, 5)) > 0:
            alloc[res] = f"{draw(st.integers(0, hi))}{unit}"
    for res in draw(st.lists(st.sampled_from(EXTENDED), max_size=4, unique=True)):
        alloc[res] = str(draw(amount))
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": alloc}})


@st.composite
def clusters(draw: st.DrawFn) -> tuple[NodeTable, RefCluster]:
    infos = [draw(nodes(f"n{i}")) for i in range(draw(st.integers(1, 10)))]
    table = NodeTable(capacity=4)  # small, so that rows and columns grow
    for n in infos:
        table.set_node(n)
    ref = {n.name: RefNode(n) for n in infos}
    for n in infos:
        for _ in range(draw(st.integers(0, 3))):
            p = draw(pods(n.name))
            table.add_pod(p, n.name)
            if draw(st.integers(0, 5)) == 0:
                table.remove_pod(p.key)   # placed, then gone again
            else:
                ref[n.name].pods.append(p)
    return table, RefCluster(list(ref.values()))


@st.composite
def fit_args(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"]))
    resources = [{"name": r, "weight": draw(st.integers(1, 100))}
                 for r in draw(st.lists(st.sampled_from(SCORED), min_size=1, max_size=5))]
    strategy: dict[str, Any] = {"type": kind, "resources": resources}
    if kind == "RequestedToCapacityRatio":
        utils = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=5, unique=True)))
        strategy["requestedToCapacityRatio"] = {"shape": [{"utilization": u, "score": draw(st.integers(0, 10))} for u in utils]}
    return {
        "ignoredResources": draw(st.lists(st.sampled_from(EXTENDED), max_size=2, unique=True)),
        "ignoredResourceGroups": draw(st.lists(st.sampled_from(["example.com", "vendor.io", "kubernetes.io"]),
                                               max_size=1, unique=True)),
        "scoringStrategy": strategy,
    }


def _rows(table: NodeTable, cluster: RefCluster) -> np.ndarray:
    return np.array([table.index[n.info.name] for n in cluster.nodes], np.intp)


@settings(max_examples=100, deadline=None)
@given(clusters(), pods(), fit_args())
def test_fit_filter_matches_reference(cluster: tuple[NodeTable, RefCluster], pod: PodInfo, args: dict[str, Any]) -> None:
    table, ref = cluster
    plugin = node_resources_fit.new(args, "")
    reasons = plugin.filter(pod, table, {}) or []
    for node in ref.nodes:
        row = table.index[node.info.name]
        got = [(r.message, r.unresolvable) for r in reasons if r.nodes[row]]
        want = fits_request(pod, node, plugin.args.ignored_resources, plugin.args.ignored_resource_groups)
        unresolvable = any(w.unresolvable for w in want)
        assert got == [(w.reason, unresolvable) for w in want], node.info.name


@settings(max_examples=100, deadline=None)
@given(clusters(), pods(), fit_args())
def test_fit_score_matches_reference(cluster: tuple[NodeTable, RefCluster], pod: PodInfo, args: dict[str, Any]) -> None:
    table, ref = cluster
    got = node_resources_fit.new(args, "").score(pod, table, _rows(table, ref), {})
    reference = ref_fit(args)
    assert reference.score is not None
    assert got.tolist() == [reference.score(pod, n, ref) for n in ref.nodes]
    assert all(0 <= s <= 100 for s in got.tolist())


@settings(max_examples=100, deadline=None)
@given(clusters(), pods(), st.lists(st.sampled_from(SCORED), max_size=5, unique=True))
def test_balanced_allocation_matches_reference(cluster: tuple[NodeTable, RefCluster], pod: PodInfo,
                                               resources: list[str]) -> None:
    table, ref = cluster
    args = {"resources": [{"name": r, "weight": 1} for r in resources]}
    got = balanced_allocation.new(args, "").score(pod, table, _rows(table, ref), {})
    reference = ref_balanced(args)
    assert reference.skip is not None and reference.score is not None
    if reference.skip(pod, ref):
        assert got is None
    else:
        assert got is not None
        assert got.tolist() == [reference.score(pod, n, ref) for n in ref.nodes]
        assert all(0 <= s <= 100 for s in got.tolist())
