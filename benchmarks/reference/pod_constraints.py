"""Per-node references for PodTopologySpread and InterPodAffinity.

Written the way upstream's Go reads: PreFilter/PreScore walk every node and
every pod on it into maps keyed by topology pair, Filter and Score look at one
node, NormalizeScore at the list of raw scores. No counters, no numpy. Only the
parsing of selectors and terms (``scoring.plugins.pod_selectors``) and of the
plugins' args is shared with the vectorised plugins.

The per-pod maps are computed once per (pod, cluster state) and cached for the
node-by-node calls (a single-entry cache holding the objects themselves, so
that a new decision always recomputes). Upstream's invalidScore (-1) marks
PodTopologySpread's ignored nodes between ``score`` and ``normalize``, as it
does in upstream's NormalizeScore. Namespace labels and workloads are read from
optional ``namespaces`` (name -> labels) and ``workloads`` (a ``Workloads``)
attributes of the RefCluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin
from benchmarks.reference.node_plugins import term_matches
from scoring.objects import NodeInfo, PodInfo
from scoring.plugins import inter_pod_affinity as ipa
from scoring.plugins import node_affinity
from scoring.plugins import pod_topology_spread as pts
from scoring.plugins.pod_selectors import AffinityTerm, PodTerms, parse_pod_terms
from scoring.plugins.tolerations import tolerates
from scoring.plugins.workloads import Workloads

__all__: list[str] = []

_MAX_INT32 = 2**31 - 1
_MAX_INT64 = 2**63 - 1
_MIN_INT64 = -(2**63)


class _Memo:
    """The last (pod, cluster, pod count) -> value; identity, not equality."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value: Any = None

    def get(self, pod: PodInfo, cluster: RefCluster, make: Callable[[], Any]) -> Any:
        sig = sum(len(n.pods) for n in cluster.nodes)
        k = self._key
        if k is None or k[0] is not pod or k[1] is not cluster or k[2] != sig or k[3] != len(cluster.nodes):
            self._value = make()
            self._key = (pod, cluster, sig, len(cluster.nodes))
        return self._value


def _go_round(x: float) -> int:
    """Go's math.Round: half away from zero."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += int(math.copysign(1, x))
    return int(t)


def _terminating(pod: PodInfo) -> bool:
    return (pod.raw.get("metadata") or {}).get("deletionTimestamp") is not None


# ---- node affinity, one node (RequiredNodeAffinity.Match) -----------------------------------


def _required_node_affinity_matches(pod: PodInfo, node: NodeInfo) -> bool:
    for k, v in pod.node_selector.items():
        if node.labels.get(k) != v:
            return False
    required = node_affinity.parse_pod(pod).required
    if required is None:
        return True
    return any(term_matches(t, node) for t in required)


def _untolerated_no_schedule(pod: PodInfo, node: NodeInfo) -> bool:
    for taint in node.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not any(tolerates(t, taint) for t in pod.tolerations):
            return True
    return False


# ---- PodTopologySpread ---------------------------------------------------------------------


def _match_node_inclusion_policies(c: pts.Constraint, pod: PodInfo, node: NodeInfo) -> bool:
    if c.honor_node_affinity and not _required_node_affinity_matches(pod, node):
        return False
    if c.honor_node_taints and _untolerated_no_schedule(pod, node):
        return False
    return True


def _node_labels_match_spread_constraints(labels: Mapping[str, str], constraints: Sequence[pts.Constraint]) -> bool:
    return all(c.topology_key in labels for c in constraints)


def _count_pods_match_selector(pods: Sequence[PodInfo], c: pts.Constraint, ns: str) -> int:
    count = 0
    for p in pods:
        if _terminating(p) or p.namespace != ns:
            continue
        if c.selector.matches(p.labels):
            count += 1
    return count


def _pts(args: Mapping[str, Any]) -> RefPlugin:
    plugin = pts.new(args, "args")

    def constraints(pod: PodInfo, cluster: RefCluster) -> Any:
        # The plugin's own reading of the pod (constraints, defaults, errors) is the
        # "API types" both sides share; the table it wants only carries workloads.
        class _T:
            extensions = {"workloads": getattr(cluster, "workloads", None) or Workloads()}
        return plugin._parse(pod, _T())  # type: ignore[arg-type]

    pre_filter = _Memo()

    def cal_pre_filter_state(pod: PodInfo, cluster: RefCluster) -> tuple[Any, list[dict[str, int]], list[int]]:
        parsed = constraints(pod, cluster)
        cs = parsed.hard
        tp_value_to_match_num: list[dict[str, int]] = [{} for _ in cs]
        for node in cluster.nodes:
            labels = node.info.labels
            if not _node_labels_match_spread_constraints(labels, cs):
                continue
            for i, c in enumerate(cs):
                if not _match_node_inclusion_policies(c, pod, node.info):
                    continue
                value = labels[c.topology_key]
                count = _count_pods_match_selector(node.pods, c, pod.namespace)
                tp_value_to_match_num[i][value] = tp_value_to_match_num[i].get(value, 0) + count
        min_match = []
        for i, c in enumerate(cs):
            m = min(tp_value_to_match_num[i].values(), default=_MAX_INT32)
            if len(tp_value_to_match_num[i]) < c.min_domains:
                m = 0
            min_match.append(m)
        return parsed, tp_value_to_match_num, min_match

    def filter_(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
        parsed, tp_counts, min_match = pre_filter.get(pod, cluster, lambda: cal_pre_filter_state(pod, cluster))
        if parsed.error:
            return [parsed.error]
        for i, c in enumerate(parsed.hard):
            tp_val = node.info.labels.get(c.topology_key)
            if tp_val is None:
                return [pts.ERR_REASON_NODE_LABEL_NOT_MATCH]
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = tp_counts[i].get(tp_val, 0) + self_match - min_match[i]
            if skew > c.max_skew:
                return [pts.ERR_REASON_CONSTRAINTS_NOT_MATCH]
        return []

    pre_score: dict[str, Any] = {}

    def prescore(pod: PodInfo, filtered: list[RefNode], cluster: RefCluster) -> None:
        parsed = constraints(pod, cluster)
        pre_score.clear()
        pre_score["constraints"] = cs = () if parsed.error else parsed.soft
        if not cs or not cluster.nodes:
            return
        require_all = parsed.pod_has_constraints or not plugin.system_defaulted
        ignored: set[str] = set()
        counts: list[dict[str, int]] = [{} for _ in cs]
        topo_size = [0] * len(cs)
        for node in filtered:
            if require_all and not _node_labels_match_spread_constraints(node.info.labels, cs):
                ignored.add(node.info.name)
                continue
            for i, c in enumerate(cs):
                if c.topology_key == pts.LABEL_HOSTNAME:
                    continue
                value = node.info.labels.get(c.topology_key, "")
                if value not in counts[i]:
                    counts[i][value] = 0
                    topo_size[i] += 1
        weights = []
        for i, c in enumerate(cs):
            sz = topo_size[i]
            if c.topology_key == pts.LABEL_HOSTNAME:
                sz = len(filtered) - len(ignored)
            weights.append(math.log(sz + 2))
        for node in cluster.nodes:
            if require_all and not _node_labels_match_spread_constraints(node.info.labels, cs):
                continue
            for i, c in enumerate(cs):
                if not _match_node_inclusion_policies(c, pod, node.info):
                    continue
                value = node.info.labels.get(c.topology_key, "")
                if value not in counts[i]:
                    continue
                counts[i][value] += _count_pods_match_selector(node.pods, c, pod.namespace)
        pre_score.update(ignored=ignored, counts=counts, weights=weights)

    def skip(pod: PodInfo, cluster: RefCluster) -> bool:
        return not pre_score.get("constraints") or "ignored" not in pre_score

    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        if node.info.name in pre_score["ignored"]:
            return -1  # upstream's invalidScore, resolved to 0 in normalize
        total = 0.0
        for i, c in enumerate(pre_score["constraints"]):
            tp_val = node.info.labels.get(c.topology_key)
            if tp_val is None:
                continue
            if c.topology_key == pts.LABEL_HOSTNAME:
                cnt = _count_pods_match_selector(node.pods, c, pod.namespace)
            else:
                cnt = pre_score["counts"][i][tp_val]
            total += float(cnt) * pre_score["weights"][i] + float(c.max_skew - 1)
        return _go_round(total)

    def normalize(scores: list[int]) -> list[int]:
        min_score, max_score = _MAX_INT64, 0
        for s in scores:
            if s == -1:
                continue
            min_score = min(min_score, s)
            max_score = max(max_score, s)
        out = []
        for s in scores:
            if s == -1:
                out.append(0)
            elif max_score == 0:
                out.append(100)
            else:
                out.append(100 * (max_score + min_score - s) // max_score)
        return out

    return RefPlugin(pts.NAME, filter=filter_, score=score, normalize=normalize, skip=skip, prescore=prescore)


# ---- InterPodAffinity ------------------------------------------------------------------------


def _ns_labels(cluster: RefCluster) -> Mapping[str, Mapping[str, str]]:
    return getattr(cluster, "namespaces", None) or {}


def _merge_namespaces(term: AffinityTerm, cluster: RefCluster) -> tuple[frozenset[str] | None, AffinityTerm]:
    """mergeAffinityTermNamespacesIfNotEmpty: (namespaces or None for all, term)."""
    if term.namespace_selector.empty:
        return None, term
    if term.namespace_selector.nothing:
        return term.namespaces, term
    chosen = {ns for ns, lbl in _ns_labels(cluster).items() if term.namespace_selector.matches(lbl)}
    return term.namespaces | chosen, term


def _incoming_matches(merged: tuple[frozenset[str] | None, AffinityTerm], pod: PodInfo) -> bool:
    namespaces, term = merged
    if namespaces is None or pod.namespace in namespaces:
        return term.selector.matches(pod.labels)
    return False


def _update(m: dict[tuple[str, str], int], node: NodeInfo, key: str, value: int) -> None:
    if key in node.labels:
        pair = (key, node.labels[key])
        m[pair] = m.get(pair, 0) + value
        if m[pair] == 0:
            del m[pair]


def _ipa(args: Mapping[str, Any]) -> RefPlugin:
    plugin = ipa.new(args, "args")
    pre_filter = _Memo()

    def state(pod: PodInfo, cluster: RefCluster) -> tuple[PodTerms, Any, Any, Any, Any]:
        terms = parse_pod_terms(pod)
        aff = [_merge_namespaces(t, cluster) for t in terms.required_affinity]
        anti = [_merge_namespaces(t, cluster) for t in terms.required_anti_affinity]
        ns_labels = _ns_labels(cluster).get(pod.namespace)
        existing: dict[tuple[str, str], int] = {}
        affinity_counts: dict[tuple[str, str], int] = {}
        anti_counts: dict[tuple[str, str], int] = {}
        for node in cluster.nodes:
            for existing_pod in node.pods:
                for t in parse_pod_terms(existing_pod).required_anti_affinity:
                    if t.matches(pod, ns_labels):
                        _update(existing, node.info, t.topology_key, 1)
                if aff and all(_incoming_matches(m, existing_pod) for m in aff):
                    for _, t in aff:
                        _update(affinity_counts, node.info, t.topology_key, 1)
                for m in anti:
                    if _incoming_matches(m, existing_pod):
                        _update(anti_counts, node.info, m[1].topology_key, 1)
        return terms, aff, existing, affinity_counts, anti_counts

    def filter_(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
        terms, aff, existing, affinity_counts, anti_counts = pre_filter.get(pod, cluster, lambda: state(pod, cluster))
        if terms.error:
            return [f"parsing pod: {terms.error}"]
        labels = node.info.labels
        # satisfyPodAffinity
        pods_exist = True
        for _, t in aff:
            if t.topology_key in labels:
                if affinity_counts.get((t.topology_key, labels[t.topology_key]), 0) <= 0:
                    pods_exist = False
            else:
                return [ipa.ERR_REASON_AFFINITY_RULES_NOT_MATCH]
        if not pods_exist:
            if not (len(affinity_counts) == 0 and all(_incoming_matches(m, pod) for m in aff)):
                return [ipa.ERR_REASON_AFFINITY_RULES_NOT_MATCH]
        # satisfyPodAntiAffinity
        for t in terms.required_anti_affinity:
            if t.topology_key in labels and anti_counts.get((t.topology_key, labels[t.topology_key]), 0) > 0:
                return [ipa.ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH]
        # satisfyExistingPodsAntiAffinity
        for k, v in labels.items():
            if existing.get((k, v), 0) > 0:
                return [ipa.ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH]
        return []

    pre_score: dict[str, Any] = {}

    def prescore(pod: PodInfo, filtered: list[RefNode], cluster: RefCluster) -> None:
        pre_score.clear()
        terms = parse_pod_terms(pod)
        if terms.error or not filtered:
            return
        has_constraints = ipa._has_preferred(pod)
        if plugin.ignore_preferred_terms_of_existing_pods and not has_constraints:
            return
        pref_aff = [(_merge_namespaces(w.term, cluster), w.weight) for w in terms.preferred_affinity]
        pref_anti = [(_merge_namespaces(w.term, cluster), w.weight) for w in terms.preferred_anti_affinity]
        ns_labels = _ns_labels(cluster).get(pod.namespace)
        topology_score: dict[str, dict[str, int]] = {}

        def process(matches: bool, key: str, node: NodeInfo, weight: int) -> None:
            if matches and key in node.labels:
                topology_score.setdefault(key, {})
                v = node.labels[key]
                topology_score[key][v] = topology_score[key].get(v, 0) + weight

        for node in cluster.nodes:
            if not node.info.labels:
                continue
            for existing_pod in node.pods:
                for m, w in pref_aff:
                    process(_incoming_matches(m, existing_pod), m[1].topology_key, node.info, w)
                for m, w in pref_anti:
                    process(_incoming_matches(m, existing_pod), m[1].topology_key, node.info, -w)
                et = parse_pod_terms(existing_pod)
                if plugin.hard_pod_affinity_weight > 0:
                    for t in et.required_affinity:
                        process(t.matches(pod, ns_labels), t.topology_key, node.info, plugin.hard_pod_affinity_weight)
                for wt in et.preferred_affinity:
                    process(wt.term.matches(pod, ns_labels), wt.term.topology_key, node.info, wt.weight)
                for wt in et.preferred_anti_affinity:
                    process(wt.term.matches(pod, ns_labels), wt.term.topology_key, node.info, -wt.weight)
        if topology_score:
            pre_score["topology_score"] = topology_score

    def skip(pod: PodInfo, cluster: RefCluster) -> bool:
        return "topology_score" not in pre_score

    def score(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        total = 0
        for key, values in pre_score["topology_score"].items():
            if key in node.info.labels:
                total += values.get(node.info.labels[key], 0)
        return total

    def normalize(scores: list[int]) -> list[int]:
        max_count, min_count = _MIN_INT64, _MAX_INT64
        for s in scores:
            max_count = max(max_count, s)
            min_count = min(min_count, s)
        diff = max_count - min_count
        out = []
        for s in scores:
            f = 0.0
            if diff > 0:
                f = 100.0 * (float(s - min_count) / float(diff))
            out.append(int(f))
        return out

    return RefPlugin(ipa.NAME, filter=filter_, score=score, normalize=normalize, skip=skip, prescore=prescore)


REFERENCE[pts.NAME] = _pts
REFERENCE[ipa.NAME] = _ipa
