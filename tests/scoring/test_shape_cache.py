"""The incremental caches (ShapeCache rows, NodeTable.node_derived) give what a
fresh computation gives, through pod adds/removes, node adds/updates/removals."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from benchmarks.clusters import random_nodes, random_pods
from scheduler.config import default_config
from scoring.objects import node_from_json, pod_from_json
from scoring.table import NodeTable


def _fresh(nodes: list, placed: dict) -> NodeTable:
    t = NodeTable()
    for n in nodes.values():
        t.set_node(n)
    for p, node in placed.values():
        t.add_pod(p, node)
    return t


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_cached_decisions_equal_fresh_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = random_nodes(rng, 12)
    nodes = {n["metadata"]["name"]: node_from_json(n) for n in raw}
    pods = [pod_from_json(p) for p in random_pods(rng, 120, prefix="p")]
    cached = _fresh(nodes, {})
    profile = default_config().profiles[0].build(seed=seed)
    placed: dict = {}
    for i, pod in enumerate(pods):
        got = profile.schedule(pod, cached)
        fresh = _fresh(nodes, placed)  # rows in another order once a node was removed: compare by name
        rows = np.array([fresh.index[cached.names[r]] for r in got.scored], np.intp)
        want = default_config().profiles[0].build(seed=seed).run_scores(pod, fresh, rows, {}) if len(rows) else {}
        for name, scores in want.items():
            assert got.scores[name].tolist() == scores.tolist(), (i, name)
        _, fresh_reasons = default_config().profiles[0].build().run_filters(pod, fresh, {})
        assert sorted((r.message, r.unresolvable, tuple(sorted(fresh.names[j] for j in np.flatnonzero(r.nodes))))
                      for r in fresh_reasons) == \
            sorted((r.message, r.unresolvable, tuple(sorted(cached.names[j] for j in np.flatnonzero(r.nodes))))
                   for r in got.reasons), i
        if got.node is not None:
            cached.add_pod(pod, got.node)
            placed[pod.key] = (pod, got.node)
        if i % 9 == 4 and placed:  # a pod goes away
            key = sorted(placed)[int(rng.integers(len(placed)))]
            cached.remove_pod(key)
            del placed[key]
        if i % 23 == 11:  # a node changes (taints, images) or goes away
            name = sorted(nodes)[int(rng.integers(len(nodes)))]
            if rng.random() < 0.5 and len(nodes) > 2:
                cached.remove_node(name)
                del nodes[name]
                placed = {k: v for k, v in placed.items() if v[1] != name}
            else:
                r = next(n for n in raw if n["metadata"]["name"] == name)
                r = {**r, "spec": {"taints": [{"key": "k", "value": str(i), "effect": "PreferNoSchedule"}]}}
                nodes[name] = node_from_json(r)
                cached.set_node(nodes[name])
