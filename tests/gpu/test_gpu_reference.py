"""The vectorised GPU plugins give the per-node reference's answers on random clusters."""

from __future__ import annotations

import numpy as np
from gpu_helpers import gpu_node, gpu_pod, table_of
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.reference import RefNode
from benchmarks.reference.gpu import (
    best_fit_raw,
    clustering_score,
    dot_product_score,
    fgd_score,
    node_res,
    packing_score,
)
from scoring.plugins.fgd import FGD
from scoring.plugins.gpu_best_fit import GpuBestFit
from scoring.plugins.gpu_clustering import GpuClustering
from scoring.plugins.gpu_dot_product import GpuDotProduct
from scoring.plugins.gpu_frag import TargetWorkload, TypicalPod
from scoring.plugins.gpu_packing import GpuPacking
from scoring.plugins.gpu_share import GpuShare
from scoring.plugins.gpu_state import CHOICE_KEY, request_of

MODELS = ("T4", "V100")
SHARES = (100, 250, 470, 500, 810, 1000)


@st.composite
def pods(draw: st.DrawFn, name: str) -> object:
    kind = draw(st.sampled_from(["cpu", "share", "whole"]))
    cpu = f"{draw(st.integers(1, 12))}"
    models = draw(st.sampled_from([None, None, "T4", "T4,V100"]))
    if kind == "cpu":
        return gpu_pod(name, cpu=cpu)
    if kind == "share":
        return gpu_pod(name, milli=draw(st.sampled_from(SHARES[:-1])), cpu=cpu, models=models)
    return gpu_pod(name, milli=1000, count=draw(st.sampled_from([1, 2, 4])), cpu=cpu, models=models)


@st.composite
def clusters(draw: st.DrawFn) -> tuple[object, list[object], object, TargetWorkload]:
    n = draw(st.integers(1, 8))
    nodes = [gpu_node(f"n{i}", draw(st.sampled_from([0, 1, 2, 4, 8])), cpu=str(draw(st.sampled_from([16, 32, 64]))),
                      model=draw(st.sampled_from([None, *MODELS]))) for i in range(n)]
    table = table_of(nodes)
    share = GpuShare()
    for j in range(draw(st.integers(0, 25))):
        pod = draw(pods(f"p{j}"))
        node = draw(st.integers(0, n - 1))
        state: dict[str, object] = {}
        if share.prefilter(pod, table, state) is None and not any(r.nodes[node] for r in share.filter(pod, table, state) or ()):
            if table.requested[node, 0] + pod.requests["cpu"] <= table.allocatable[node, 0]:
                idx = share.choose(pod, table, node, state)
                ann = {} if idx is None or draw(st.booleans()) else {"vecsched.io/gpu-index": ",".join(map(str, idx))}
                from scoring.objects import with_annotations
                table.add_pod(with_annotations(pod, ann) if ann else pod, table.names[node])
    typical = tuple(TypicalPod(int(draw(st.integers(1, 16))) * 1000, u, k, m, draw(st.integers(1, 9)))
                    for u, k, m in draw(st.lists(st.tuples(st.sampled_from((0, *SHARES)), st.sampled_from([1, 2]),
                                                           st.sampled_from([(), ("T4",)])), min_size=1, max_size=6))
                    if not (0 < u < 1000 and k > 1) and not (u == 0 and m))
    typical = tuple(TypicalPod(t.milli_cpu, t.gpu_milli, t.gpu_count if t.gpu_milli else 0, t.models, t.weight)
                    for t in typical)
    return table, nodes, draw(pods("new")), TargetWorkload(typical)


def _ref_nodes(table: object) -> list[RefNode]:
    out = []
    for row in range(table.n):  # type: ignore[attr-defined]
        ref = RefNode(table.infos[row], [])  # type: ignore[attr-defined]
        ref.pods = sorted(table.node_pods(table.names[row]), key=lambda p: int(p.name[1:]))  # type: ignore[attr-defined]
        out.append(ref)
    return out


@settings(max_examples=100, deadline=None)
@given(clusters())
def test_gpu_plugins_match_reference(case: tuple[object, list[object], object, TargetWorkload]) -> None:
    table, _, pod, wl = case
    share = GpuShare()
    state: dict[str, object] = {}
    if share.prefilter(pod, table, state) is not None:  # type: ignore[arg-type]
        return
    reasons = share.filter(pod, table, state) or []  # type: ignore[arg-type]
    feasible = np.ones(table.n, bool)  # type: ignore[attr-defined]
    for r in reasons:
        feasible &= ~r.nodes
    rows = np.flatnonzero(feasible)
    refs = _ref_nodes(table)
    res = [node_res(refs[r]) for r in rows]
    req = request_of(pod)  # type: ignore[arg-type]
    fgd = FGD(wl)
    got = fgd.score(pod, table, rows, state)  # type: ignore[arg-type]
    want = [fgd_score(r, pod, wl.pods) for r in res]  # type: ignore[arg-type]
    assert got.tolist() == [w[0] for w in want]
    if req.shared and len(rows) and wl.total:
        choice = state[CHOICE_KEY]
        assert [choice.for_row(int(r)) for r in rows] == [w[1] for w in want]  # type: ignore[attr-defined]
    assert GpuPacking().score(pod, table, rows, state).tolist() == [packing_score(r, req) for r in res]  # type: ignore[arg-type]
    assert GpuClustering().score(pod, table, rows, state).tolist() == [clustering_score(r, req) for r in res]  # type: ignore[arg-type]
    assert GpuBestFit().score(pod, table, rows, state).tolist() == [best_fit_raw(r, pod) for r in res]  # type: ignore[arg-type]
    assert GpuDotProduct().score(pod, table, rows, state).tolist() == [dot_product_score(r, pod) for r in res]  # type: ignore[arg-type]
    # Each node's per-GPU free list equals the reference's replay of its pods.
    from scoring.plugins.gpu_state import gpu_table
    ext = gpu_table(table)  # type: ignore[arg-type]
    for row, ref in enumerate(refs):
        g = int(ext.count[row])
        assert ext.free[row, :g].tolist() == node_res(ref).gpu_left
