"""Property: DotProduct, BestFit, WorstFit and FirstFit give exactly the per-node
reference's scores (benchmarks/reference/packing.py) on random clusters with
random pods placed (some over capacity), random resources and weights."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.reference import REFERENCE, RefCluster, RefNode
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import REGISTRY
from scoring.table import NodeTable

GPU = "example.com/gpu"
_ids = itertools.count()


@st.composite
def pods(draw: st.DrawFn) -> PodInfo:
    req = {"cpu": f"{draw(st.integers(0, 4000))}m", "memory": f"{draw(st.integers(0, 8192))}Mi"}
    if draw(st.booleans()):
        req[GPU] = str(draw(st.integers(0, 4)))
    return pod_from_json({"metadata": {"name": f"p{next(_ids)}"},
                          "spec": {"containers": [{"name": "c", "resources": {"requests": req}}]}})


@st.composite
def nodes(draw: st.DrawFn, name: str) -> NodeInfo:
    alloc = {"cpu": f"{draw(st.integers(0, 16000))}m", "memory": f"{draw(st.integers(0, 32768))}Mi", "pods": "110"}
    if draw(st.booleans()):
        alloc[GPU] = str(draw(st.integers(0, 8)))
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": alloc}})


@st.composite
def clusters(draw: st.DrawFn) -> tuple[NodeTable, RefCluster]:
    infos = [draw(nodes(f"n{i}")) for i in range(draw(st.integers(1, 20)))]
    table = NodeTable(capacity=4)
    ref = RefCluster([RefNode(n) for n in infos])
    for n, rn in zip(infos, ref.nodes):
        table.set_node(n)
        for _ in range(draw(st.integers(0, 3))):
            p = draw(pods())
            table.add_pod(p, n.name)
            rn.pods.append(p)
    table.resource_column(GPU)  # the column exists whether or not a node or pod names it
    return table, ref


resource_lists = st.lists(st.sampled_from(["cpu", "memory", GPU]), min_size=1, max_size=3, unique=True).flatmap(
    lambda names: st.lists(st.integers(0, 5), min_size=len(names), max_size=len(names)).map(
        lambda ws: [{"name": n, "weight": w} for n, w in zip(names, ws)]))


@settings(max_examples=100, deadline=None)
@given(cluster=clusters(), pod=pods(), name=st.sampled_from(["DotProduct", "BestFit", "WorstFit", "FirstFit"]),
       resources=resource_lists)
def test_matches_reference(cluster: tuple[NodeTable, RefCluster], pod: PodInfo, name: str, resources: list) -> None:
    table, ref = cluster
    args = {} if name == "FirstFit" else {"resources": resources}
    got = REGISTRY[name](args, "args").score(pod, table, np.arange(table.n), {})  # type: ignore[attr-defined]
    plugin = REFERENCE[name](args)
    assert plugin.score is not None and plugin.normalize is not None
    want = plugin.normalize([plugin.score(pod, n, ref) for n in ref.nodes])
    assert got.tolist() == want
