"""Builders for the PodTopologySpread / InterPodAffinity tests, shaped like
upstream's ``st.MakePod()`` / ``st.MakeNode()`` so that ported cases read alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scoring.framework import CycleState, Reason
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins.workloads import Namespaces
from scoring.table import NodeTable
from tests.explain_support import explain_reasons, explain_scores

HOSTNAME = "kubernetes.io/hostname"
FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}
BAR = {"matchExpressions": [{"key": "bar", "operator": "Exists"}]}
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "value": "", "effect": "NoSchedule"}


def node(name: str, labels: Mapping[str, str] | None = None, taints: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": {"taints": list(taints)},
            "status": {"allocatable": {"cpu": "100", "memory": "100Gi", "pods": "1000"}}}


def sc(max_skew: int, key: str, when: str, selector: Any, *, min_domains: int | None = None,
       affinity_policy: str | None = None, taints_policy: str | None = None,
       match_label_keys: Sequence[str] | None = None) -> dict[str, Any]:
    """st.SpreadConstraint(maxSkew, key, when, selector, minDomains, nodeAffinityPolicy, nodeTaintsPolicy, matchLabelKeys)."""
    c: dict[str, Any] = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when}
    if selector is not None:
        c["labelSelector"] = selector
    if min_domains is not None:
        c["minDomains"] = min_domains
    if affinity_policy is not None:
        c["nodeAffinityPolicy"] = affinity_policy
    if taints_policy is not None:
        c["nodeTaintsPolicy"] = taints_policy
    if match_label_keys is not None:
        c["matchLabelKeys"] = list(match_label_keys)
    return c


def pod_json(name: str, labels: Mapping[str, str] | None = None, *, ns: str = "default", node_name: str = "",
             spread: Sequence[Mapping[str, Any]] = (), affinity: Mapping[str, Any] | None = None,
             node_selector: Mapping[str, str] | None = None, terminating: bool = False,
             tolerations: Sequence[Mapping[str, Any]] = (), owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if owner is not None:
        meta["ownerReferences"] = [dict(owner)]
    spec: dict[str, Any] = {"containers": [{"name": "c"}]}
    if node_name:
        spec["nodeName"] = node_name
    if spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in spread]
    if affinity:
        spec["affinity"] = dict(affinity)
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = list(tolerations)
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Running" if node_name else "Pending"}}


def pod(name: str, labels: Mapping[str, str] | None = None, **kw: Any) -> PodInfo:
    return pod_from_json(pod_json(name, labels, **kw))


def node_affinity_in(key: str, values: Sequence[str]) -> dict[str, Any]:
    """st.NodeAffinityIn(key, values, NodeSelectorTypeMatchExpressions)."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}]}}}


def node_affinity_not_in(key: str, values: Sequence[str]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": key, "operator": "NotIn", "values": list(values)}]}]}}}


def table_of(nodes: Sequence[Mapping[str, Any]], existing: Sequence[PodInfo] = ()) -> NodeTable:
    t = NodeTable()
    for n in nodes:
        t.set_node(node_from_json(n))
    for p in existing:
        t.add_pod(p, p.node_name)
    return t


def verdicts(reasons: Sequence[Reason] | None, table: NodeTable) -> dict[str, str]:
    """node -> "" (fits) or the first reason's message."""
    out = {name: "" for name in table.names}
    for r in reasons or ():
        for row in np.flatnonzero(r.nodes):
            if not out[table.names[row]]:
                out[table.names[row]] = r.message
    return out


def run_filter(plugin: Any, p: PodInfo, table: NodeTable) -> tuple[dict[str, str], CycleState]:
    state: CycleState = {}
    msg = plugin.prefilter(p, table, state)
    if msg is not None:
        return {name: msg for name in table.names}, state
    return verdicts(plugin.filter(p, table, state), table), state


def explained_verdicts(table: NodeTable, p: PodInfo, plugin: str) -> dict[str, str]:
    """What `vecsched explain` reports with ``plugin`` alone as PreFilter and Filter, in
    :func:`verdicts`' form (node -> "" or the first reason)."""
    reasons = explain_reasons(nodes=table.infos, pod=p, plugin=plugin,
                              existing=[(placed.pod, placed.node) for placed in table.pods.values()])
    return {name: rs[0] if rs else "" for name, rs in reasons.items()}


def explained_scores(table: NodeTable, p: PodInfo, plugin: str, candidates: Sequence[str]) -> dict[str, int]:
    """What `vecsched explain` reports for ``plugin``'s score when only ``candidates`` pass
    the filters: the other nodes are made infeasible with NodeAffinity's addedAffinity
    (which the pod-level plugins do not read), as upstream's tests hand PreScore the
    nodes that passed. The table's namespace labels go into the snapshot."""
    others = [n for n in table.names if n not in candidates]
    filters = {}
    if others:
        filters["NodeAffinity"] = {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            # metadata.name takes one value per requirement; requirements of a term are ANDed
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": [n]}
                                                   for n in others]}]}}}
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
                  for ns, labels in Namespaces.of(table).labels.items()]
    return explain_scores(nodes=table.infos, pod=p, plugin=plugin, filters=filters, objects=namespaces,
                          existing=[(placed.pod, placed.node) for placed in table.pods.values()])


def run_score(plugin: Any, p: PodInfo, table: NodeTable, candidates: Sequence[str]) -> dict[str, int]:
    """PreScore + Score + NormalizeScore over ``candidates`` (the nodes that passed filters)."""
    state: CycleState = {}
    assert plugin.prefilter(p, table, state) is None
    rows = np.array([table.index[c] for c in candidates], np.intp)
    raw = plugin.score(p, table, rows, state)
    if raw is None:
        return {c: 0 for c in candidates}
    out = plugin.normalize(raw, state)
    return {c: int(s) for c, s in zip(candidates, out)}
