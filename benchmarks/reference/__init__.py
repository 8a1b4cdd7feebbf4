"""A straightforward per-node reference scheduler.

The vectorised plugins in ``scoring`` must give exactly the answers of a
plain loop over nodes written the way upstream's Go code reads. This package
is that loop: one small function per plugin and extension point, operating on
one node and the pods on it. Property tests compare the two on random
clusters, and ``benchmarks/decision.py`` times both in the same run.

A reference plugin is a ``RefPlugin`` with any of ``filter`` (reasons for one
node, empty when it fits), ``score`` (raw score for one node) and
``normalize`` (raw scores of the feasible nodes -> 0..100).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scoring.framework import fit_error_message
from scoring.objects import NodeInfo, PodInfo

__all__ = ["RefNode", "RefCluster", "RefPlugin", "RefDecision", "ReferenceProfile", "REFERENCE", "build_reference", "cluster_from", "time_reference"]


@dataclass
class RefNode:
    info: NodeInfo
    pods: list[PodInfo] = field(default_factory=list)


@dataclass
class RefCluster:
    nodes: list[RefNode]

    def add_pod(self, pod: PodInfo, node: str) -> None:
        for n in self.nodes:
            if n.info.name == node:
                n.pods.append(pod)
                return
        raise KeyError(node)


@dataclass
class RefPlugin:
    name: str
    filter: Callable[[PodInfo, RefNode, RefCluster], list[str]] | None = None
    score: Callable[[PodInfo, RefNode, RefCluster], int] | None = None
    normalize: Callable[[list[int]], list[int]] | None = None
    skip: Callable[[PodInfo, RefCluster], bool] | None = None
    """Upstream's PreScore Skip: when true the plugin adds nothing to any node."""
    prefilter: Callable[[PodInfo, RefCluster], str | set[str] | None] | None = None
    """Upstream's PreFilter: a message rejecting the pod, the only node names to consider, or None."""
    prescore: Callable[[PodInfo, list[RefNode], RefCluster], None] | None = None
    """Upstream's PreScore: sees the feasible nodes before ``skip`` and ``score`` are called."""


@dataclass
class RefDecision:
    node: str | None
    message: str
    reasons: dict[str, list[str]]
    scores: dict[str, dict[str, int]]
    """plugin -> node -> normalised score."""
    totals: dict[str, int]


# name -> factory(args) -> RefPlugin; filled by the modules of this package.
REFERENCE: dict[str, Callable[[Mapping[str, Any]], RefPlugin]] = {}


class ReferenceProfile:
    """The per-node loop: filter each node, score each feasible node, pick the best."""

    def __init__(self, *, filters: Sequence[RefPlugin], scorers: Sequence[tuple[RefPlugin, int]], seed: int = 0) -> None:
        self.filters = list(filters)
        self.scorers = list(scorers)
        self._rng = random.Random(seed)

    def schedule(self, pod: PodInfo, cluster: RefCluster) -> RefDecision:
        reasons: dict[str, list[str]] = {}
        feasible: list[RefNode] = []
        allowed: set[str] | None = None
        limiting: list[str] = []
        for plugin in self.filters:
            out = plugin.prefilter(pod, cluster) if plugin.prefilter is not None else None
            if isinstance(out, str):
                n = len(cluster.nodes)
                return RefDecision(None, f"0/{n} nodes are available: {out}." if n else fit_error_message(0, {}),
                                   {node.info.name: [out] for node in cluster.nodes}, {}, {})
            if out is not None:
                limiting.append(plugin.name)
                allowed = out if allowed is None else allowed & out
        for node in cluster.nodes:
            if allowed is not None and node.info.name not in allowed:
                reasons[node.info.name] = [f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(limiting))}]"]
                continue
            for plugin in self.filters:
                assert plugin.filter is not None
                failed = plugin.filter(pod, node, cluster)
                if failed:
                    reasons[node.info.name] = failed
                    break
            else:
                feasible.append(node)
        if not feasible:
            counts: dict[str, int] = {}
            for rs in reasons.values():
                for r in rs:
                    counts[r] = counts.get(r, 0) + 1
            return RefDecision(None, fit_error_message(len(cluster.nodes), counts), reasons, {}, {})
        scores: dict[str, dict[str, int]] = {}
        totals = {n.info.name: 0 for n in feasible}
        for plugin, weight in self.scorers:
            assert plugin.score is not None
            if plugin.prescore is not None:
                plugin.prescore(pod, feasible, cluster)
            if plugin.skip is not None and plugin.skip(pod, cluster):
                raw = [0] * len(feasible)
            else:
                raw = [plugin.score(pod, n, cluster) for n in feasible]
                if plugin.normalize is not None:
                    raw = plugin.normalize(raw)
            scores[plugin.name] = {n.info.name: s for n, s in zip(feasible, raw)}
            for n, s in zip(feasible, raw):
                totals[n.info.name] += weight * s
        best = max(totals.values())
        ties = [name for name, t in totals.items() if t == best]
        return RefDecision(self._rng.choice(ties), "", reasons, scores, totals)


def build_reference(*, filters: Sequence[str], scores: Sequence[tuple[str, int]],
                    plugin_args: Mapping[str, Mapping[str, Any]], seed: int = 0) -> ReferenceProfile:
    """The reference counterpart of a profile (``scheduler.config.ProfileConfig`` fields)."""
    made: dict[str, RefPlugin] = {}

    def get(name: str) -> RefPlugin:
        if name not in made:
            made[name] = REFERENCE[name](plugin_args.get(name, {}))
        return made[name]

    return ReferenceProfile(
        filters=[get(n) for n in filters if get(n).filter is not None],
        scorers=[(get(n), w) for n, w in scores if get(n).score is not None],
        seed=seed,
    )


def cluster_from(nodes: Sequence[NodeInfo], pods: Sequence[PodInfo]) -> RefCluster:
    """A RefCluster of ``nodes`` with each bound, unfinished pod on its node."""
    by_name = {n.name: RefNode(n) for n in nodes}
    for p in pods:
        if p.node_name in by_name and not p.terminated:
            by_name[p.node_name].pods.append(p)
    return RefCluster(list(by_name.values()))
def time_reference(*, filters: Sequence[str], scores: Sequence[tuple[str, int]],
                   plugin_args: Mapping[str, Mapping[str, Any]], nodes: Sequence[NodeInfo],
                   existing: Sequence[PodInfo], pending: Sequence[PodInfo], seed: int = 0) -> float:
    """Seconds the reference takes to decide (and assume) ``pending`` one by one on a
    cluster of ``nodes`` holding ``existing``: the baseline benchmarks quote ratios against."""
    ref = build_reference(filters=filters, scores=scores, plugin_args=plugin_args, seed=seed)
    cluster = cluster_from(nodes, existing)
    gc.collect()
    start = time.perf_counter()
    for pod in pending:
        d = ref.schedule(pod, cluster)
        if d.node is not None:
            cluster.add_pod(pod, d.node)
    return time.perf_counter() - start


from benchmarks.reference import resources  # noqa: E402,F401
from benchmarks.reference import node_plugins  # noqa: E402,F401
from benchmarks.reference import pod_constraints  # noqa: E402,F401
from benchmarks.reference import packing  # noqa: E402,F401
from benchmarks.reference import gpu  # noqa: E402,F401
from benchmarks.reference import volumes  # noqa: E402,F401
