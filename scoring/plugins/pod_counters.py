"""Per-node counts of pods matching selectors, kept up to date as pods come and go.

PodTopologySpread and InterPodAffinity ask, for every decision, how many pods
matching a selector live in each topology domain, and which existing pods'
(anti-)affinity terms reach the incoming pod. Upstream walks every pod on every
node each time (O(pods)). Here the answers are kept incrementally in
``table.extensions["pod_counters"]`` (a ``PodCounters``, which is also a
``TableListener``), so that a decision is O(nodes) numpy work:

- **Counters.** A ``PodMatcher`` (selector + namespaces) or ``AllOf`` is interned
  into one int32 array over node rows: the number of matching pods on each node.
  A counter is made on first use by scanning the existing pods once; after that
  every pod add/remove updates the counters whose namespaces hold the pod.
  Ten thousand replicas of a Deployment share one counter. Domain counts are a
  ``np.bincount`` of a counter over the topology key's label codes.
- **Term index.** Existing pods' (anti-)affinity terms, interned by (kind, term,
  weight), each with an int32 array over node rows counting the pods on each
  node that carry the term. The incoming pod is checked against each distinct
  term once, not against each pod.

Rows follow the table: ``node_moved`` copies a row's counts to its new place,
and the capacity grows with the table's. Neither structure grows without bound
in a long-running scheduler whose workloads come and go (every rollout brings a
new ``pod-template-hash`` selector): the least recently used counters are
dropped past ``_COUNTER_LIMIT`` (a later request rebuilds one by a scan), and a
term entry is dropped when the last pod carrying it leaves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from scoring.objects import PodInfo
from scoring.plugins.pod_selectors import AffinityTerm, PodTerms, has_pod_affinity, parse_pod_terms_cached
from scoring.table import NodeTable

__all__ = ["KEY", "Matcher", "PodCounters", "REQUIRED_AFFINITY", "REQUIRED_ANTI_AFFINITY",
           "PREFERRED_AFFINITY", "PREFERRED_ANTI_AFFINITY", "domain_sums"]

KEY: Final = "pod_counters"
REQUIRED_AFFINITY: Final = "requiredAffinity"
REQUIRED_ANTI_AFFINITY: Final = "requiredAntiAffinity"
PREFERRED_AFFINITY: Final = "preferredAffinity"
PREFERRED_ANTI_AFFINITY: Final = "preferredAntiAffinity"

Counts = npt.NDArray[np.int32]
_COUNTER_LIMIT: Final = 2048
"""Counters kept before the least recently used half is dropped: far more selectors than
a cluster's live workloads ask about, few enough that updating them per pod stays cheap
(each pod add or remove tests every counter of its namespace)."""
_MEMO_LIMIT: Final = 4096
"""Distinct (namespace, labels) memo entries kept before the memo is cleared: a guess
large enough for the label sets of a cluster's workloads, small enough to not matter."""


class Matcher(Protocol):
    """What a counter counts: hashable, with the namespaces it is limited to (None: all)."""

    @property
    def namespaces(self) -> frozenset[str] | None: ...

    def matches(self, pod: PodInfo) -> bool: ...


@dataclass(slots=True)
class _Counter:
    matcher: Matcher
    counts: Counts
    used: int = 0
    """When ``counts()`` last asked for it (PodCounters' tick), for LRU eviction."""


@dataclass(slots=True)
class _TermEntry:
    kind: str
    term: AffinityTerm
    weight: int
    counts: Counts
    total: int = 0


def domain_sums(codes: npt.NDArray[np.int32], values: npt.NDArray[np.integer], mask: npt.NDArray[np.bool_] | None,
                size: int) -> npt.NDArray[np.int64]:
    """Sum of ``values`` per label code over the rows in ``mask`` (None: every row with a
    code >= 0): an int64 array of length ``size``. Exact: counts stay far below 2**53."""
    if mask is None:
        # Shift codes by one so that -1 (no label) lands in slot 0, which is dropped:
        # cheaper than masking both arrays.
        sums = np.bincount(codes + 1, weights=values, minlength=size + 1)
        return sums[1:].astype(np.int64)
    sel = codes[mask]
    if len(sel) == 0:
        return np.zeros(size, np.int64)
    return np.bincount(sel, weights=values[mask], minlength=size).astype(np.int64)


class PodCounters:
    """Interned per-node pod counters and the index of existing pods' affinity terms."""

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        self._capacity = table.capacity
        self._counters: dict[Matcher, _Counter] = {}
        self._tick = 0
        self.counter_limit = _COUNTER_LIMIT
        self._by_namespace: dict[str, list[_Counter]] = {}
        self._all_namespaces: list[_Counter] = []
        self._terms: dict[tuple[str, AffinityTerm, int], _TermEntry] = {}
        self._terms_by_kind: dict[str, list[_TermEntry]] = {}
        self._pod_terms: dict[str, list[_TermEntry]] = {}
        self._match_memo: dict[tuple[object, ...], list[_TermEntry]] = {}
        self._live: dict[str, int] = {}
        """Placed pods' terms per kind (a pod with two terms counts twice)."""
        # Only pods with pod (anti-)affinity carry terms: test that first (has_pod_affinity,
        # inlined, as this walks every pod of the cluster once) and look up their rows alone.
        for placed in table.pods.values():
            a = placed.pod.affinity
            if a and (a.get("podAffinity") is not None or a.get("podAntiAffinity") is not None):
                row = table.index.get(placed.node)
                if row is not None:
                    self._index_terms(placed.pod, row, +1)

    @classmethod
    def of(cls, table: NodeTable) -> PodCounters:
        """The table's counters, built from its current pods on first use."""
        ext = table.extensions.get(KEY)
        if not isinstance(ext, PodCounters):
            ext = PodCounters(table)
            table.extensions[KEY] = ext
            table.listeners.append(ext)
        return ext

    # ---- counters ----------------------------------------------------------------------

    def counts(self, matcher: Matcher) -> Counts:
        """Matching pods per node row, ``[:n]`` (a view: do not modify)."""
        c = self._counters.get(matcher)
        if c is None:
            if len(self._counters) >= self.counter_limit:
                self._evict_counters()
            c = self._new_counter(matcher)
        elif len(c.counts) < self._table.capacity:
            self._grow()
        self._tick += 1
        c.used = self._tick
        return c.counts[: self._table.n]

    def _evict_counters(self) -> None:
        """Drop the least recently used half of the counters."""
        keep = sorted(self._counters.values(), key=lambda c: c.used)[len(self._counters) // 2:]
        self._counters = {c.matcher: c for c in keep}
        kept = {id(c) for c in keep}
        self._all_namespaces = [c for c in self._all_namespaces if id(c) in kept]
        self._by_namespace = {ns: live for ns, cs in self._by_namespace.items()
                              if (live := [c for c in cs if id(c) in kept])}

    def _new_counter(self, matcher: Matcher) -> _Counter:
        table = self._table
        if self._capacity < table.capacity:
            self._grow()
        arr = np.zeros(self._capacity, np.int32)
        for placed in table.pods.values():
            if matcher.matches(placed.pod):
                arr[table.index[placed.node]] += 1
        c = _Counter(matcher, arr)
        self._counters[matcher] = c
        ns = matcher.namespaces
        if ns is None:
            self._all_namespaces.append(c)
        else:
            for name in ns:
                self._by_namespace.setdefault(name, []).append(c)
        return c

    def _grow(self) -> None:
        cap = self._table.capacity
        for c in self._counters.values():
            c.counts = np.concatenate([c.counts, np.zeros(cap - len(c.counts), np.int32)])
        for t in self._terms.values():
            t.counts = np.concatenate([t.counts, np.zeros(cap - len(t.counts), np.int32)])
        self._capacity = cap

    # ---- term index --------------------------------------------------------------------

    def carries_terms(self) -> bool:
        """Whether any placed pod carries a pod (anti-)affinity term of any kind."""
        return any(v > 0 for v in self._live.values())

    def terms(self, kind: str) -> Iterator[tuple[AffinityTerm, int, Counts]]:
        """(term, weight, pods carrying it per node ``[:n]``) for live terms of ``kind``."""
        if self._capacity < self._table.capacity:
            self._grow()
        n = self._table.n
        for t in self._terms_by_kind.get(kind, ()):
            if t.total > 0:
                yield t.term, t.weight, t.counts[:n]

    def terms_matching(self, kind: str, pod: PodInfo, ns_labels: Mapping[str, str] | None
                       ) -> Iterator[tuple[AffinityTerm, int, Counts]]:
        """``terms(kind)`` limited to the terms that match ``pod`` (AffinityTerm.Matches with
        ``ns_labels``, the labels of the pod's namespace). Which terms match depends only on
        the pod's namespace and labels, so it is memoised per distinct (namespace, labels)
        until a new term is interned: replicas of one Deployment check each term once."""
        if self._capacity < self._table.capacity:
            self._grow()
        if not self._live.get(kind):
            return  # no placed pod carries such a term: nothing to match (the common case)
        entries = self._terms_by_kind.get(kind, ())
        key = (kind, len(entries), pod.namespace, frozenset(pod.labels.items()),
               None if ns_labels is None else frozenset(ns_labels.items()))
        hit = self._match_memo.get(key)
        if hit is None:
            if len(self._match_memo) > _MEMO_LIMIT:
                self._match_memo.clear()
            hit = self._match_memo[key] = [e for e in entries if e.term.matches(pod, ns_labels)]
        n = self._table.n
        for e in hit:
            if e.total > 0:
                yield e.term, e.weight, e.counts[:n]

    def _index_terms(self, pod: PodInfo, row: int, delta: int) -> None:
        if delta > 0:
            if not has_pod_affinity(pod):
                return
            terms = parse_pod_terms_cached(pod)
            entries = list(self._entries(terms))
            if not entries:
                return
            self._pod_terms[pod.key] = entries
        else:
            entries = self._pod_terms.pop(pod.key, [])
        for e in entries:
            e.counts[row] += delta
            e.total += delta
            self._live[e.kind] = self._live.get(e.kind, 0) + delta
            if e.total == 0 and self._terms.get((e.kind, e.term, e.weight)) is e:
                # The last pod carrying the term left: forget it (memoised matches too).
                del self._terms[(e.kind, e.term, e.weight)]
                self._terms_by_kind[e.kind].remove(e)
                self._match_memo.clear()

    def _entries(self, terms: PodTerms) -> Iterator[_TermEntry]:
        groups = ((REQUIRED_AFFINITY, ((t, 0) for t in terms.required_affinity)),
                  (REQUIRED_ANTI_AFFINITY, ((t, 0) for t in terms.required_anti_affinity)),
                  (PREFERRED_AFFINITY, ((w.term, w.weight) for w in terms.preferred_affinity)),
                  (PREFERRED_ANTI_AFFINITY, ((w.term, w.weight) for w in terms.preferred_anti_affinity)))
        for kind, items in groups:
            for term, weight in items:
                k = (kind, term, weight)
                e = self._terms.get(k)
                if e is None:
                    if self._capacity < self._table.capacity:
                        self._grow()
                    e = self._terms[k] = _TermEntry(kind, term, weight, np.zeros(self._capacity, np.int32))
                    self._terms_by_kind.setdefault(kind, []).append(e)
                yield e

    # ---- TableListener -----------------------------------------------------------------

    def _update(self, pod: PodInfo, row: int, delta: int) -> None:
        if self._capacity < self._table.capacity:
            self._grow()
        for c in self._by_namespace.get(pod.namespace, ()):
            if c.matcher.matches(pod):
                c.counts[row] += delta
        for c in self._all_namespaces:
            if c.matcher.matches(pod):
                c.counts[row] += delta
        self._index_terms(pod, row, delta)

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self._update(pod, node, +1)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self._update(pod, node, -1)

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        for c in self._counters.values():
            c.counts[dst] = c.counts[src]
            c.counts[src] = 0
        for t in self._terms.values():
            t.counts[dst] = t.counts[src]
            t.counts[src] = 0

    def node_set(self, table: NodeTable, node: int) -> None:
        if self._capacity < table.capacity:
            self._grow()
