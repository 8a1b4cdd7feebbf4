"""InterPodAffinity: pods that want (or refuse) to share a topology domain with
other pods (upstream's interpodaffinity plugin).

Filter, in upstream's order (a node's reason is the first check it fails):
1. the pod's required affinity terms: the node must carry every term's
   topology key, and for each term its domain must hold a pod matching *all*
   the terms -- unless no such pod exists anywhere and the pod matches all its
   own terms (the first pod of a self-affine group);
   ``node(s) didn't match pod affinity rules`` (unresolvable);
2. the pod's required anti-affinity terms: no pod matching a term in the
   node's domain of that term's key; ``node(s) didn't match pod anti-affinity rules``;
3. existing pods' required anti-affinity terms that match the incoming pod
   (symmetry): the node must not share the term's domain with a pod carrying
   it; ``node(s) didn't satisfy existing pods anti-affinity rules``.

Score: the sum over terms of ``weight x matching pods in the node's domain``:
the incoming pod's preferred affinity (+weight) and anti-affinity (-weight)
terms counted against existing pods, and existing pods' required affinity
(+``hardPodAffinityWeight``), preferred affinity (+weight) and preferred
anti-affinity (-weight) terms that match the incoming pod. NormalizeScore is
min-max to 0..100 (``int(100 * (s - min) / (max - min))`` in float64, all 0
when max == min). Scoring is skipped when no term touches any node, and, with
``ignorePreferredTermsOfExistingPods``, when the pod has no preferred terms.

Namespaces: a term applies to its ``namespaces``, or to those its
``namespaceSelector`` picks by label (``table.extensions["namespaces"]``, see
``scoring.plugins.workloads``; ``{}`` means all), or, with neither, to its own
pod's namespace. ``matchLabelKeys``/``mismatchLabelKeys`` add ``key In/NotIn
(pod's value)`` to the selector. A pod whose terms do not parse is rejected in
PreFilter with ``parsing pod: <kind>: <field>: <problem>``.

Counts come from ``scoring.plugins.pod_counters``: one counter per distinct
(selector, namespaces) for the incoming pod's terms, and an index of existing
pods' terms with per-node counts, so the work per decision is O(nodes x
distinct terms), not O(pods).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.batching import SKIP, Signed
from scoring.args import boolean, integer, known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, FilterPlugin, PreFilterPlugin, Reason, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.pod_counters import (
    PREFERRED_AFFINITY, PREFERRED_ANTI_AFFINITY, REQUIRED_AFFINITY, REQUIRED_ANTI_AFFINITY, PodCounters,
)
from scoring.plugins.pod_selectors import AllOf, PodTerms, has_pod_affinity, parse_pod_terms_cached
from scoring.plugins.workloads import Namespaces
from scoring.table import BoolArray, IntArray, NodeTable

__all__ = [
    "NAME", "ERR_REASON_AFFINITY_RULES_NOT_MATCH", "ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH",
    "ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH", "InterPodAffinity", "domain_lookup", "minmax_normalize", "new",
]

NAME: Final = "InterPodAffinity"
ERR_REASON_AFFINITY_RULES_NOT_MATCH: Final = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: Final = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: Final = "node(s) didn't satisfy existing pods anti-affinity rules"
DEFAULT_HARD_POD_AFFINITY_WEIGHT: Final = 1
_STATE_KEY: Final = "PreFilter" + NAME


def domain_lookup(codes: npt.NDArray[np.int32], per_node: npt.NDArray[np.integer]) -> IntArray:
    """For every node, the sum of ``per_node`` over the nodes sharing its value of a
    topology key (0 for nodes without the key): a bincount over label codes read back
    at each node's code."""
    shifted = codes + 1  # code -1 (no label) -> slot 0, which stays 0
    dom = np.bincount(shifted, weights=per_node).astype(np.int64)
    dom[0] = 0
    return dom[shifted]


def minmax_normalize(scores: IntArray) -> IntArray:
    """upstream's NormalizeScore: ``int64(100 * (float64(s - min) / float64(max - min)))``,
    all 0 when max == min."""
    if len(scores) == 0:
        return scores
    lo, hi = int(scores.min()), int(scores.max())
    if hi - lo <= 0:
        return np.zeros(len(scores), np.int64)
    return (float(MAX_NODE_SCORE) * ((scores - lo).astype(np.float64) / float(hi - lo))).astype(np.int64)


class _Weighted:
    """Per-topology-key sums of ``weight x counts`` arrays, then one domain lookup per key."""

    def __init__(self, n: int, *, track: bool = False) -> None:
        self.n = n
        self.by_key: dict[str, IntArray] = {}
        self.track = track
        self.touched = False

    def add(self, key: str, weight: int, counts: npt.NDArray[np.int32], codes: npt.NDArray[np.int32]) -> None:
        # upstream's processTerm adds an entry (even of value 0) for a matching pod on a
        # node with the key; scoring is skipped only when no term did so anywhere.
        if self.track and not self.touched and bool(((counts > 0) & (codes >= 0)).any()):
            self.touched = True
        acc = self.by_key.get(key)
        if acc is None:
            self.by_key[key] = weight * counts.astype(np.int64)
        else:
            acc += weight * counts.astype(np.int64)


class InterPodAffinity:
    name: Final = NAME

    def __init__(self, *, hard_pod_affinity_weight: int = DEFAULT_HARD_POD_AFFINITY_WEIGHT,
                 ignore_preferred_terms_of_existing_pods: bool = False) -> None:
        self.hard_pod_affinity_weight = hard_pod_affinity_weight
        self.ignore_preferred_terms_of_existing_pods = ignore_preferred_terms_of_existing_pods

    @staticmethod
    def _terms(pod: PodInfo, state: CycleState) -> PodTerms:
        t = state.get(_STATE_KEY)
        if t is None:
            t = state[_STATE_KEY] = parse_pod_terms_cached(pod)
        return t

    def sign_stamp(self, table: NodeTable) -> bool:
        """Batching: ``sign`` reads whether placed pods carry terms."""
        return PodCounters.of(table).carries_terms()

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: pod (anti-)affinity counts pods across a domain, not a row. A pod with
        terms is unsignable, and so is every pod while placed pods carry terms (their
        required anti-affinity can reject it, their affinity terms score it); otherwise the
        plugin skips."""
        if has_pod_affinity(pod):
            return "pods with pod affinity or anti-affinity are not signable"
        if PodCounters.of(table).carries_terms():
            return "placed pods have pod affinity or anti-affinity terms"
        return Signed(SKIP)

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | None:
        terms = self._terms(pod, state)
        return f"parsing pod: {terms.error}" if terms.error else None

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        """For the preemption dry run: whether removing pods can change the verdict -- the
        pod has required (anti-)affinity terms, or placed pods have anti-affinity to it."""
        terms = self._terms(pod, state)
        if terms.error:
            return False
        if terms.required_affinity or terms.required_anti_affinity:
            return True
        counters = PodCounters.of(table)
        namespaces = Namespaces.of(table)
        return any(True for _ in counters.terms_matching(REQUIRED_ANTI_AFFINITY, pod, namespaces.get(pod.namespace)))

    def pods_matter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> BoolArray:
        """For the preemption dry run: the nodes holding pods the filter counts -- pods
        matching all the pod's required affinity terms, or one of its required
        anti-affinity terms, or carrying an anti-affinity term against the pod. Taking
        pods away from any other node changes no count, so no verdict."""
        terms = self._terms(pod, state)
        counters = PodCounters.of(table)
        namespaces = Namespaces.of(table)
        out = np.zeros(table.n, np.bool_)
        if terms.required_affinity:
            out |= counters.counts(AllOf(tuple(t.matcher(namespaces.labels) for t in terms.required_affinity))) > 0
        for t in terms.required_anti_affinity:
            out |= counters.counts(t.matcher(namespaces.labels)) > 0
        for _, _, counts in counters.terms_matching(REQUIRED_ANTI_AFFINITY, pod, namespaces.get(pod.namespace)):
            out |= counts > 0
        return out

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        terms = self._terms(pod, state)
        n = table.n
        if terms.error:
            return [Reason(f"parsing pod: {terms.error}", np.ones(n, np.bool_), unresolvable=True)]
        counters = PodCounters.of(table)
        namespaces = Namespaces.of(table)
        existing = [(t, c) for t, _, c in
                    counters.terms_matching(REQUIRED_ANTI_AFFINITY, pod, namespaces.get(pod.namespace))]
        if n == 0 or (not terms.required_affinity and not terms.required_anti_affinity and not existing):
            return None  # upstream's PreFilter Skip (or nothing that can reject a node)
        out: list[Reason] = []
        decided = np.zeros(n, np.bool_)
        if terms.required_affinity:
            fail = self._affinity_fails(pod, terms, table, counters, namespaces)
            if fail.any():
                out.append(Reason(ERR_REASON_AFFINITY_RULES_NOT_MATCH, fail, unresolvable=True))
                decided |= fail
        if terms.required_anti_affinity:
            per_key = _Weighted(n)
            for t in terms.required_anti_affinity:
                codes = table.labels.column(t.topology_key)
                per_key.add(t.topology_key, 1, counters.counts(t.matcher(namespaces.labels)), codes)
            fail = self._any_in_domain(per_key, table) & ~decided
            if fail.any():
                out.append(Reason(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH, fail))
                decided |= fail
        if existing:
            per_key = _Weighted(n)
            for t, counts in existing:
                per_key.add(t.topology_key, 1, counts, table.labels.column(t.topology_key))
            fail = self._any_in_domain(per_key, table) & ~decided
            if fail.any():
                out.append(Reason(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH, fail))
        return out

    @staticmethod
    def _any_in_domain(per_key: _Weighted, table: NodeTable) -> BoolArray:
        fail = np.zeros(table.n, np.bool_)
        for key, counts in per_key.by_key.items():
            fail |= domain_lookup(table.labels.column(key), counts) > 0
        return fail

    @staticmethod
    def _affinity_fails(pod: PodInfo, terms: PodTerms, table: NodeTable, counters: PodCounters,
                        namespaces: Namespaces) -> BoolArray:
        """satisfyPodAffinity over all nodes: pods matching *all* terms, per term's domain."""
        n = table.n
        matchers = tuple(t.matcher(namespaces.labels) for t in terms.required_affinity)
        counts = counters.counts(AllOf(matchers))
        has_all = np.ones(n, np.bool_)
        pods_exist = np.ones(n, np.bool_)
        any_pair = False
        for t in terms.required_affinity:
            codes = table.labels.column(t.topology_key)
            has = codes >= 0
            has_all &= has
            in_domain = domain_lookup(codes, counts)
            pods_exist &= in_domain > 0
            any_pair = any_pair or bool((in_domain[has] > 0).any())
        if not any_pair and all(m.matches(pod) for m in matchers):
            return ~has_all
        return ~(has_all & pods_exist)

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        terms = self._terms(pod, state)
        n = table.n
        if terms.error or len(nodes) == 0:
            return None
        has_preferred = _has_preferred(pod)
        if self.ignore_preferred_terms_of_existing_pods and not has_preferred:
            return None
        counters = PodCounters.of(table)
        namespaces = Namespaces.of(table)
        acc = _Weighted(n, track=True)
        for sign, weighted in ((1, terms.preferred_affinity), (-1, terms.preferred_anti_affinity)):
            for w in weighted:
                codes = table.labels.column(w.term.topology_key)
                acc.add(w.term.topology_key, sign * w.weight, counters.counts(w.term.matcher(namespaces.labels)), codes)
        ns_labels = namespaces.get(pod.namespace)
        existing: list[tuple[int, Iterable[Any]]] = [
            (1, counters.terms_matching(PREFERRED_AFFINITY, pod, ns_labels)),
            (-1, counters.terms_matching(PREFERRED_ANTI_AFFINITY, pod, ns_labels))]
        if self.hard_pod_affinity_weight > 0:
            existing.insert(0, (1, ((t, self.hard_pod_affinity_weight, c)
                                    for t, _, c in counters.terms_matching(REQUIRED_AFFINITY, pod, ns_labels))))
        for sign, entries in existing:
            for t, weight, counts in entries:
                acc.add(t.topology_key, sign * weight, counts, table.labels.column(t.topology_key))
        if not acc.touched:
            return None  # upstream's PreScore Skip: no term reached any node
        total = np.zeros(n, np.int64)
        for key, per_node in acc.by_key.items():
            total += domain_lookup(table.labels.column(key), per_node)
        return total[nodes]

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray:
        return minmax_normalize(scores)


def _has_preferred(pod: PodInfo) -> bool:
    """upstream's hasPreferredAffinityConstraints || hasPreferredAntiAffinityConstraints."""
    for kind in ("podAffinity", "podAntiAffinity"):
        section = pod.affinity.get(kind)
        if isinstance(section, Mapping) and section.get("preferredDuringSchedulingIgnoredDuringExecution"):
            return True
    return False


def new(args: Mapping[str, Any], path: str) -> InterPodAffinity:
    """InterPodAffinityArgs: ``hardPodAffinityWeight`` (0..100, default 1) and
    ``ignorePreferredTermsOfExistingPods`` (default false)."""
    args = mapping(args, path)
    known_fields(args, ("hardPodAffinityWeight", "ignorePreferredTermsOfExistingPods"), path)
    weight = integer(args.get("hardPodAffinityWeight", DEFAULT_HARD_POD_AFFINITY_WEIGHT),
                     f"{path}.hardPodAffinityWeight", lo=0, hi=100)
    ignore = boolean(args.get("ignorePreferredTermsOfExistingPods", False), f"{path}.ignorePreferredTermsOfExistingPods")
    return InterPodAffinity(hard_pod_affinity_weight=weight, ignore_preferred_terms_of_existing_pods=ignore)


_: type[PreFilterPlugin] = InterPodAffinity
_f: type[FilterPlugin] = InterPodAffinity
_s: type[ScorePlugin] = InterPodAffinity
