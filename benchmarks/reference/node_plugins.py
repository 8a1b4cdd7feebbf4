"""Per-node references for the node-level plugins: NodeUnschedulable, NodeName,
TaintToleration, NodeAffinity, NodePorts and ImageLocality.

Each function looks at one node the way upstream's Go does (a loop over the
node's taints, labels, used ports and images), so that property tests can hold
the vectorised plugins to it. Only the parsing and validation of a pod's node
affinity is shared with the plugin (``parse_pod``); matching is written here
again from ``labels.Requirement.Matches`` and ``fields.Selector``.

NodeAffinity's PreFilter rejections (an affinity that does not parse, or
``matchFields`` naming no common node) have no PreFilter hook here: the reference
filter returns that message for every node, which is what the vectorised
profile reports when it runs NodeAffinity's PreFilter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin
from scoring.objects import NodeInfo, PodInfo, Taint
from scoring.plugins import image_locality, node_affinity, node_name, node_ports, node_unschedulable, taint_toleration
from scoring.plugins.tolerations import tolerates

__all__ = ["default_normalize_score"]

_MAX = 100


def default_normalize_score(scores: Sequence[int], reverse: bool) -> list[int]:
    """helper.DefaultNormalizeScore, one score at a time."""
    max_count = max(scores, default=0)
    if max_count == 0:
        return [_MAX] * len(scores) if reverse else list(scores)
    out = []
    for s in scores:
        s = _MAX * s // max_count
        out.append(_MAX - s if reverse else s)
    return out


# ---- NodeUnschedulable, NodeName ------------------------------------------------------


def _unschedulable_filter(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
    taint = Taint(key="node.kubernetes.io/unschedulable", value="", effect="NoSchedule")
    tolerated = any(tolerates(t, taint) for t in pod.tolerations)
    if node.info.unschedulable and not tolerated:
        return [node_unschedulable.REASON]
    return []


def _node_name_filter(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
    if pod.node_name == "" or pod.node_name == node.info.name:
        return []
    return [node_name.REASON]


# ---- TaintToleration ----------------------------------------------------------------


def _taint_filter(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
    for taint in node.info.taints:  # FindMatchingUntoleratedTaint, in the node's order
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in pod.tolerations):
            return [f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"]
    return []


def _taint_score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
    prefer = [t for t in pod.tolerations if not t.get("effect") or t.get("effect") == "PreferNoSchedule"]
    count = 0
    for taint in node.info.taints:
        if taint.effect != "PreferNoSchedule":
            continue
        if not any(tolerates(t, taint) for t in prefer):
            count += 1
    return count


# ---- NodeAffinity ---------------------------------------------------------------------


def _parse_int(s: str) -> int | None:
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        return None
    v = int(s)
    return v if -(2**63) <= v < 2**63 else None


def requirement_matches(r: node_affinity.Requirement, labels: Mapping[str, str]) -> bool:
    if r.operator == "In":
        return r.key in labels and labels[r.key] in r.values
    if r.operator == "NotIn":
        return r.key not in labels or labels[r.key] not in r.values
    if r.operator == "Exists":
        return r.key in labels
    if r.operator == "DoesNotExist":
        return r.key not in labels
    if r.key not in labels:
        return False
    value = _parse_int(labels[r.key])
    if value is None:
        return False
    return value > r.number if r.operator == "Gt" else value < r.number


def term_matches(term: node_affinity.Term, node: NodeInfo) -> bool:
    for r in term.expressions:
        if not requirement_matches(r, node.labels):
            return False
    fields = {"metadata.name": node.name}
    for f in term.fields:
        equal = fields.get(f.key, "") == f.value
        if equal != (f.operator == "In"):
            return False
    return True


def _selector_matches(terms: Sequence[node_affinity.Term], node: NodeInfo) -> bool:
    return any(term_matches(t, node) for t in terms)


def _node_affinity(args: Mapping[str, Any]) -> RefPlugin:
    added_required, added_preferred = node_affinity.parse_added_affinity(args, "args")

    def filter_(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
        a = node_affinity.parse_pod(pod)
        if a.error is not None:
            return [a.error]
        if a.node_names is not None and not a.node_names:
            return [node_affinity.ERR_REASON_CONFLICT]
        if a.node_names is not None and node.info.name not in a.node_names:
            return [node_affinity.ERR_REASON_NOT_IN_NODE_NAMES]
        if added_required is not None and not _selector_matches(added_required, node.info):
            return [node_affinity.ERR_REASON_ENFORCED]
        for k, v in a.node_selector.items():
            if node.info.labels.get(k) != v:
                return [node_affinity.ERR_REASON_POD]
        if a.required is not None and not _selector_matches(a.required, node.info):
            return [node_affinity.ERR_REASON_POD]
        return []

    def prefilter(pod: PodInfo, cluster: RefCluster) -> str | set[str] | None:
        a = node_affinity.parse_pod(pod)
        if a.error is not None:
            return a.error
        if a.node_names is not None:
            return set(a.node_names) if a.node_names else node_affinity.ERR_REASON_CONFLICT
        return None

    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        a = node_affinity.parse_pod(pod)
        count = 0
        for p in (*(added_preferred or ()), *(a.preferred or ())):
            if term_matches(p.term, node.info):
                count += p.weight
        return count

    def skip(pod: PodInfo, cluster: RefCluster) -> bool:
        a = node_affinity.parse_pod(pod)
        return a.error is not None or (a.preferred is None and added_preferred is None)

    return RefPlugin(node_affinity.NAME, filter=filter_, score=score, prefilter=prefilter,
                     normalize=lambda s: default_normalize_score(s, False), skip=skip)


# ---- NodePorts ----------------------------------------------------------------------------


def _ports_filter(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
    used: dict[str, set[tuple[str, int]]] = {}  # HostPortInfo: ip -> {(protocol, port)}
    for p in node.pods:
        for hp in p.host_ports:
            used.setdefault(hp.ip, set()).add((hp.protocol, hp.port))
    for hp in pod.host_ports:  # CheckConflict
        pp = (hp.protocol, hp.port)
        if hp.ip == "0.0.0.0":
            conflict = any(pp in s for s in used.values())
        else:
            conflict = pp in used.get("0.0.0.0", set()) or pp in used.get(hp.ip, set())
        if conflict:
            return [node_ports.ERR_REASON]
    return []


# ---- ImageLocality --------------------------------------------------------------------------


def _normalized_image_name(name: str) -> str:
    if name.rfind(":") <= name.rfind("/"):
        name = name + ":latest"
    return name


def _image_score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
    total_nodes = len(cluster.nodes)
    states: dict[str, int] = {}  # the node's ImageStates: name -> size
    for names, size in node.info.images:
        for name in names:
            states[name] = size
    total = 0
    for image in pod.images:
        name = _normalized_image_name(image)
        if name in states:
            num_nodes = sum(1 for n in cluster.nodes if any(name in names for names, _ in n.info.images))
            spread = float(num_nodes) / float(total_nodes)
            total += int(float(states[name]) * spread)
    containers = image_locality.num_containers(pod)
    max_threshold = image_locality.MAX_CONTAINER_THRESHOLD * containers
    if total < image_locality.MIN_THRESHOLD:
        total = image_locality.MIN_THRESHOLD
    elif total > max_threshold:
        total = max_threshold
    num = _MAX * (total - image_locality.MIN_THRESHOLD)
    den = max_threshold - image_locality.MIN_THRESHOLD
    return num // den if num else 0  # num >= 0, den > 0 whenever num > 0


REFERENCE[node_unschedulable.NAME] = lambda args: RefPlugin(node_unschedulable.NAME, filter=_unschedulable_filter)
REFERENCE[node_name.NAME] = lambda args: RefPlugin(node_name.NAME, filter=_node_name_filter)
REFERENCE[taint_toleration.NAME] = lambda args: RefPlugin(
    taint_toleration.NAME, filter=_taint_filter, score=_taint_score,
    normalize=lambda s: default_normalize_score(s, True))
REFERENCE[node_affinity.NAME] = _node_affinity
REFERENCE[node_ports.NAME] = lambda args: RefPlugin(node_ports.NAME, filter=_ports_filter)
REFERENCE[image_locality.NAME] = lambda args: RefPlugin(image_locality.NAME, score=_image_score)
