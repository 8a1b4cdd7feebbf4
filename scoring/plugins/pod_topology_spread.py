"""PodTopologySpread: spread matching pods evenly over topology domains
(upstream's podtopologyspread plugin).

Filter (``whenUnsatisfiable: DoNotSchedule``): for each constraint, a node
passes when ``matching pods in its domain + (1 if the pod matches its own
selector) - global minimum <= maxSkew``. The global minimum is the smallest
count over the *eligible* domains (domains of nodes that carry every
constraint's topology key and, with ``nodeAffinityPolicy: Honor`` (default) /
``nodeTaintsPolicy: Honor`` (default Ignore), match the pod's required node
affinity / tolerate the node's NoSchedule and NoExecute taints); it is 0 when
fewer than ``minDomains`` domains are eligible. A node without the topology key
fails as unresolvable (``... (missing required label)``). Constraints are
checked in order and the first failure is the node's reason.

Score (``ScheduleAnyway``): for each constraint and each feasible node with
the key, ``count * log(domains + 2) + (maxSkew - 1)``, summed in float64 and
rounded; ``count`` is the matching pods in the node's domain (on the node
itself for ``kubernetes.io/hostname``), and ``domains`` the number of distinct
values among the feasible nodes (their number, for hostname). Feasible nodes
missing a key are ignored (score 0) unless the constraints are the system
defaults. NormalizeScore: ``100 * (max + min - s) // max`` (100 when max is 0).

Pods that set no constraints get the plugin's default constraints
(``defaultingType: System``: hostname maxSkew 3 and zone maxSkew 5,
ScheduleAnyway; ``List``: ``args.defaultConstraints``) with the selector of
the pod's Services and owning ReplicaSet/StatefulSet/ReplicationController,
read from ``table.extensions["workloads"]`` (see ``scoring.plugins.workloads``).

Pods are counted in the incoming pod's namespace only, leaving out pods with a
deletionTimestamp. Counts come from the shared incremental counters of
``scoring.plugins.pod_counters``, so a decision is O(nodes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.batching import SKIP, Signed
from scoring.args import ArgsError, integer, known_fields, mapping, sequence, string
from scoring.framework import MAX_NODE_SCORE, CycleState, FilterPlugin, PreFilterPlugin, Reason, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins import node_affinity
from scoring.plugins.pod_counters import PodCounters, domain_sums
from scoring.plugins.pod_selectors import PodMatcher, Selector, SelectorError, merge_match_labels, parse_selector
from scoring.plugins.tolerations import tolerates
from scoring.plugins.workloads import Workloads
from scoring.table import BoolArray, IntArray, NodeTable
from scoring.safe_input import quote

__all__ = [
    "NAME", "ERR_REASON_CONSTRAINTS_NOT_MATCH", "ERR_REASON_NODE_LABEL_NOT_MATCH", "LABEL_HOSTNAME", "LABEL_ZONE",
    "SYSTEM_DEFAULT_CONSTRAINTS", "Constraint", "PodTopologySpread", "skew_filter", "score_for_counts",
    "go_round", "normalize_spread_scores", "new",
]

NAME: Final = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH: Final = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH: Final = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
LABEL_HOSTNAME: Final = "kubernetes.io/hostname"
LABEL_ZONE: Final = "topology.kubernetes.io/zone"
DO_NOT_SCHEDULE: Final = "DoNotSchedule"
SCHEDULE_ANYWAY: Final = "ScheduleAnyway"
HONOR: Final = "Honor"
IGNORE: Final = "Ignore"
_MAX_INT32: Final = 2**31 - 1
_STATE_KEY: Final = "PreFilter" + NAME
_SCORE_STATE_KEY: Final = "PreScore" + NAME
_CACHE_LIMIT: Final = 4096
"""Distinct constraint sets whose parse is kept (replicas share one); cleared past this."""

SYSTEM_DEFAULT_CONSTRAINTS: Final[tuple[Mapping[str, Any], ...]] = (
    {"topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 3},
    {"topologyKey": LABEL_ZONE, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 5},
)
"""upstream's systemDefaultConstraints, in its order (the order of the float sum)."""


@dataclass(frozen=True, slots=True)
class Constraint:
    """upstream's internal topologySpreadConstraint: the selector parsed and merged."""

    max_skew: int
    topology_key: str
    selector: Selector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_node_taints: bool = False


@dataclass(frozen=True, slots=True)
class _Parsed:
    hard: tuple[Constraint, ...]
    soft: tuple[Constraint, ...]
    pod_has_constraints: bool
    error: str | None = None


# ---- reading constraints -------------------------------------------------------------------


def _check_constraints(raw: Any, path: str) -> list[Mapping[str, Any]]:
    """The JSON shape of a topologySpreadConstraints list; SelectorError names the field."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SelectorError(path, f"expected a list, got {type(raw).__name__}")
    for i, c in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(c, Mapping):
            raise SelectorError(p, "expected an object")
        ms = c.get("maxSkew")
        if not isinstance(ms, int) or isinstance(ms, bool):
            raise SelectorError(f"{p}.maxSkew", f"expected an integer, got {quote(ms)}")
        md = c.get("minDomains")
        if md is not None and (not isinstance(md, int) or isinstance(md, bool)):
            raise SelectorError(f"{p}.minDomains", f"expected an integer, got {quote(md)}")
        for f in ("topologyKey", "whenUnsatisfiable"):
            if not isinstance(c.get(f, ""), str):
                raise SelectorError(f"{p}.{f}", f"expected a string, got {quote(c.get(f))}")
        keys = c.get("matchLabelKeys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise SelectorError(f"{p}.matchLabelKeys", "expected a list of strings")
    return list(raw)


def filter_constraints(raw: Sequence[Mapping[str, Any]], pod_labels: Mapping[str, str], action: str,
                       path: str) -> tuple[Constraint, ...]:
    """upstream's filterTopologySpreadConstraints: the constraints with ``action``, their
    selectors parsed and merged with ``matchLabelKeys`` taken from the pod's labels."""
    out = []
    for i, c in enumerate(raw):
        if c.get("whenUnsatisfiable") != action:
            continue
        selector = parse_selector(c.get("labelSelector"), f"{path}[{i}].labelSelector")
        match = {k: pod_labels[k] for k in c.get("matchLabelKeys") or () if k in pod_labels}
        if match:
            selector = merge_match_labels(selector, match)
        min_domains = c.get("minDomains")
        out.append(Constraint(
            max_skew=c["maxSkew"], topology_key=c.get("topologyKey", ""), selector=selector,
            min_domains=1 if min_domains is None else min_domains,
            honor_node_affinity=(c.get("nodeAffinityPolicy") or HONOR) == HONOR,
            honor_node_taints=(c.get("nodeTaintsPolicy") or IGNORE) == HONOR,
        ))
    return tuple(out)


# ---- the arithmetic ------------------------------------------------------------------------


def skew_filter(codes: npt.NDArray[np.int32], counts: npt.NDArray[np.int32], eligible: BoolArray | None, *,
                max_skew: int, min_domains: int, self_match: int) -> BoolArray:
    """Nodes (with the key) failing one constraint: ``count(domain) + self_match -
    min over eligible domains > max_skew``, the minimum being 0 with fewer than
    ``min_domains`` eligible domains. ``codes`` are the key's label codes (-1: absent),
    ``counts`` the matching pods per node, ``eligible`` the nodes whose pods count
    (None: every node with the key)."""
    size = int(codes.max(initial=-1)) + 1
    # One extra slot at the end: code -1 reads it, and it stays 0 / absent.
    if eligible is None:
        dom = np.zeros(size + 1, np.int64)
        dom[:size] = domain_sums(codes, counts, None, size)
        exists = np.bincount(codes + 1, minlength=size + 1)[1:] > 0
        exists = np.append(exists, False)
    else:
        dom = domain_sums(codes, counts, eligible, size + 1)
        exists = np.bincount(codes[eligible], minlength=size + 1) > 0
    domains = int(exists.sum())
    if domains < min_domains:
        min_match = 0
    elif domains == 0:
        min_match = _MAX_INT32  # upstream's untouched critical path
    else:
        min_match = int(dom[exists].min())
    skew = dom[codes] + (self_match - min_match)
    return (codes >= 0) & (skew > max_skew)


def score_for_counts(counts: IntArray, weight: float, max_skew: int) -> npt.NDArray[np.float64]:
    """upstream's scoreForCount: ``float64(cnt) * weight + float64(maxSkew - 1)``."""
    return counts.astype(np.float64) * weight + float(max_skew - 1)


def go_round(x: npt.NDArray[np.float64]) -> IntArray:
    """Go's math.Round for non-negative floats (half away from zero), exactly."""
    whole = np.floor(x)
    return (whole + (x - whole >= 0.5)).astype(np.int64)


def normalize_spread_scores(scores: IntArray, ignored: BoolArray) -> IntArray:
    """upstream's NormalizeScore: ``100 * (max + min - s) // max`` over the nodes not
    ignored (100 each when max is 0); ignored nodes get 0."""
    out = np.zeros(len(scores), np.int64)
    valid = ~ignored
    if not valid.any():
        return out
    s = scores[valid]
    lo, hi = int(s.min()), max(int(s.max()), 0)
    if hi == 0:
        out[valid] = MAX_NODE_SCORE
    else:
        out[valid] = MAX_NODE_SCORE * (hi + lo - s) // hi
    return out


# ---- node inclusion policies ---------------------------------------------------------------


def required_affinity_mask(pod: PodInfo, table: NodeTable) -> BoolArray:
    """Nodes ``[:n]`` matching the pod's nodeSelector and required node affinity
    (upstream's RequiredNodeAffinity.Match; unparsable terms match nothing)."""
    aff = node_affinity.parse_pod(pod)
    mask = node_affinity.node_selector_mask(pod.node_selector, table) if pod.node_selector else np.ones(table.n, np.bool_)
    if aff.required is not None:
        mask &= node_affinity.terms_mask(aff.required, table)
    return mask


def tolerated_mask(pod: PodInfo, table: NodeTable) -> BoolArray:
    """Nodes ``[:n]`` whose NoSchedule/NoExecute taints the pod all tolerates."""
    ok = np.ones(table.n, np.bool_)
    for tid, taint in enumerate(table.taints):
        if taint.effect in ("NoSchedule", "NoExecute") and not any(tolerates(t, taint) for t in pod.tolerations):
            ok &= table.taint_pos[: table.n, tid] == 0
    return ok


class _Inclusion:
    """The two inclusion masks, computed at most once per decision."""

    def __init__(self, pod: PodInfo, table: NodeTable) -> None:
        self._pod, self._table = pod, table
        self._aff: BoolArray | None = None
        self._taints: BoolArray | None = None

    def mask(self, c: Constraint, base: BoolArray | None) -> BoolArray | None:
        """``base`` narrowed by the constraint's Honor policies; None stands for "every node
        with the key" and is kept when nothing narrows it."""
        out = base
        if c.honor_node_affinity and (self._pod.node_selector or self._pod.affinity.get("nodeAffinity")):
            if self._aff is None:
                self._aff = required_affinity_mask(self._pod, self._table)
            out = self._aff if out is None else out & self._aff
        if c.honor_node_taints and self._table.taints:
            if self._taints is None:
                self._taints = tolerated_mask(self._pod, self._table)
            out = self._taints if out is None else out & self._taints
        return out


# ---- the plugin ------------------------------------------------------------------------------


class PodTopologySpread:
    name: Final = NAME

    def __init__(self, *, default_constraints: Sequence[Mapping[str, Any]] = SYSTEM_DEFAULT_CONSTRAINTS,
                 system_defaulted: bool = True) -> None:
        self.default_constraints = list(default_constraints)
        self.system_defaulted = system_defaulted
        self._cache: dict[tuple[object, ...], _Parsed] = {}

    def _parsed(self, pod: PodInfo, table: NodeTable, state: CycleState) -> _Parsed:
        p = state.get(_STATE_KEY)
        if p is None:
            key = self._cache_key(pod, table)
            p = self._cache.get(key)
            if p is None:
                if len(self._cache) > _CACHE_LIMIT:
                    self._cache.clear()
                p = self._cache[key] = self._parse(pod, table)
            state[_STATE_KEY] = p
        return p

    @staticmethod
    def _cache_key(pod: PodInfo, table: NodeTable) -> tuple[object, ...]:
        """What ``_parse`` reads: the constraints (and the labels, for matchLabelKeys), or
        for default constraints the workloads, the namespace, labels and owner."""
        spec = pod.raw.get("spec") if isinstance(pod.raw, Mapping) else None
        raw = spec.get("topologySpreadConstraints") if isinstance(spec, Mapping) else None
        if raw:
            text = repr(raw)
            return (text, frozenset(pod.labels.items()) if "matchLabelKeys" in text else None)
        w = Workloads.of(table)
        meta = pod.raw.get("metadata") if isinstance(pod.raw, Mapping) else None
        owners = repr(meta.get("ownerReferences")) if isinstance(meta, Mapping) else None
        return (None, id(w), w.generation, pod.namespace, frozenset(pod.labels.items()), owners)

    def _parse(self, pod: PodInfo, table: NodeTable) -> _Parsed:
        spec = pod.raw.get("spec") if isinstance(pod.raw, Mapping) else None
        raw_constraints = spec.get("topologySpreadConstraints") if isinstance(spec, Mapping) else None
        path = "spec.topologySpreadConstraints"
        try:
            raw = _check_constraints(raw_constraints, path)
        except SelectorError as e:
            return _Parsed((), (), True, f"get constraints from pod: {e}")
        if raw:
            try:
                hard = filter_constraints(raw, pod.labels, DO_NOT_SCHEDULE, path)
            except SelectorError as e:
                return _Parsed((), (), True, f"get constraints from pod: obtaining pod's hard topology spread constraints: {e}")
            try:
                soft = filter_constraints(raw, pod.labels, SCHEDULE_ANYWAY, path)
            except SelectorError as e:
                return _Parsed((), (), True, f"calculating preScoreState: obtaining pod's soft topology spread constraints: {e}")
            return _Parsed(hard, soft, True)
        # buildDefaultConstraints: default constraints with the pod's workload selector.
        if not self.default_constraints:
            return _Parsed((), (), False)
        selector = Workloads.of(table).default_selector(pod)
        if selector.empty:
            return _Parsed((), (), False)
        hard_d = filter_constraints(self.default_constraints, pod.labels, DO_NOT_SCHEDULE, "defaultConstraints")
        soft_d = filter_constraints(self.default_constraints, pod.labels, SCHEDULE_ANYWAY, "defaultConstraints")
        return _Parsed(tuple(_with_selector(c, selector) for c in hard_d),
                       tuple(_with_selector(c, selector) for c in soft_d), False)

    def sign_stamp(self, table: NodeTable) -> tuple[int, int]:
        """Batching: ``sign`` reads the workloads' selectors (whether defaults apply)."""
        w = Workloads.of(table)
        return id(w), w.generation

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching (upstream's SignPod): spreading is not local to a node, so a pod with
        constraints -- its own, or the default constraints when its workload selector makes
        them apply (upstream refuses whenever defaults are configured; vecsched asks whether
        they apply to this pod) -- is unsignable; any other pod skips the plugin."""
        spec = pod.raw.get("spec") if isinstance(pod.raw, Mapping) else None
        if isinstance(spec, Mapping) and spec.get("topologySpreadConstraints"):
            return "pods with topology spread constraints are not signable"
        p = self._parsed(pod, table, {})
        if p.error or p.hard or p.soft:
            return "default topology spread constraints apply to the pod"
        return Signed(SKIP)

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | None:
        return self._parsed(pod, table, state).error

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        """For the preemption dry run: only hard constraints can change with the pods."""
        p = self._parsed(pod, table, state)
        return bool(p.hard) and not p.error

    def pods_matter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> BoolArray:
        """For the preemption dry run: the nodes holding pods that a hard constraint counts.
        Taking pods away from any other node changes no count, so no verdict."""
        p = self._parsed(pod, table, state)
        counters = PodCounters.of(table)
        out = np.zeros(table.n, np.bool_)
        for c in p.hard:
            out |= counters.counts(PodMatcher(frozenset((pod.namespace,)), c.selector, True)) > 0
        return out

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        p = self._parsed(pod, table, state)
        n = table.n
        if p.error:
            return [Reason(p.error, np.ones(n, np.bool_), unresolvable=True)]
        if not p.hard or n == 0:
            return None
        counters = PodCounters.of(table)
        cols = [table.labels.column(c.topology_key) for c in p.hard]
        has_all: BoolArray | None = None
        if len(cols) > 1 or not (cols[0] >= 0).all():
            has_all = np.ones(n, np.bool_)
            for col in cols:
                has_all &= col >= 0
        inclusion = _Inclusion(pod, table)
        decided = np.zeros(n, np.bool_)
        missing = np.zeros(n, np.bool_)
        skewed = np.zeros(n, np.bool_)
        for c, col in zip(p.hard, cols):
            miss = (col < 0) & ~decided
            missing |= miss
            decided |= miss
            counts = counters.counts(PodMatcher(frozenset((pod.namespace,)), c.selector, True))
            fail = skew_filter(col, counts, inclusion.mask(c, has_all), max_skew=c.max_skew,
                               min_domains=c.min_domains, self_match=int(c.selector.matches(pod.labels)))
            fail &= ~decided
            skewed |= fail
            decided |= fail
        out = []
        if missing.any():
            out.append(Reason(ERR_REASON_NODE_LABEL_NOT_MATCH, missing, unresolvable=True))
        if skewed.any():
            out.append(Reason(ERR_REASON_CONSTRAINTS_NOT_MATCH, skewed))
        return out

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        p = self._parsed(pod, table, state)
        n = table.n
        if p.error or not p.soft or n == 0:
            return None
        require_all = p.pod_has_constraints or not self.system_defaulted
        counters = PodCounters.of(table)
        cols = [table.labels.column(c.topology_key) for c in p.soft]
        has_all = np.ones(n, np.bool_)
        if require_all:
            for col in cols:
                has_all &= col >= 0
        ignored = ~has_all[nodes]
        kept = nodes[~ignored]
        inclusion = _Inclusion(pod, table)
        total = np.zeros(len(nodes), np.float64)
        for c, col in zip(p.soft, cols):
            counts = counters.counts(PodMatcher(frozenset((pod.namespace,)), c.selector, True))
            if c.topology_key == LABEL_HOSTNAME:
                weight = math.log(len(kept) + 2)
                node_counts = counts[nodes].astype(np.int64)
            else:
                dom_codes = _domain_codes(table, c.topology_key, col)
                size = int(dom_codes.max(initial=0)) + 1
                present = np.zeros(size, np.bool_)
                present[dom_codes[kept]] = True
                weight = math.log(int(present.sum()) + 2)
                eligible = inclusion.mask(c, None if require_all is False or has_all.all() else has_all)
                dom = domain_sums(dom_codes, counts, eligible, size)
                node_counts = dom[dom_codes[nodes]]
            total += np.where(col[nodes] >= 0, score_for_counts(node_counts, weight, c.max_skew), 0.0)
        state[_SCORE_STATE_KEY] = ignored
        out = go_round(total)
        out[ignored] = 0
        return out

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray:
        ignored = state.get(_SCORE_STATE_KEY)
        if ignored is None:
            ignored = np.zeros(len(scores), np.bool_)
        return normalize_spread_scores(scores, ignored)


def _with_selector(c: Constraint, selector: Selector) -> Constraint:
    return Constraint(c.max_skew, c.topology_key, selector, c.min_domains, c.honor_node_affinity, c.honor_node_taints)


def _domain_codes(table: NodeTable, key: str, col: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Domain ids for ``key``: the label codes, with an absent label read as the value
    "" (Go's ``node.Labels[key]`` of a missing key), which gets its own id if no node
    has "" as the value."""
    if (col >= 0).all():
        return col
    empty = table.labels.code(key, "")
    if empty < 0:
        empty = len(table.labels.values.get(key, ()))
    return np.where(col >= 0, col, empty).astype(np.int32)


# ---- args ------------------------------------------------------------------------------------


def _default_constraints(v: Any, path: str) -> list[Mapping[str, Any]]:
    """ValidatePodTopologySpreadArgs on ``defaultConstraints``."""
    out = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(sequence(v, path)):
        p = f"{path}[{i}]"
        c = mapping(c, p)
        known_fields(c, ("maxSkew", "topologyKey", "whenUnsatisfiable", "labelSelector", "minDomains",
                         "nodeAffinityPolicy", "nodeTaintsPolicy", "matchLabelKeys"), p)
        integer(c.get("maxSkew"), f"{p}.maxSkew", lo=1)
        key = string(c.get("topologyKey"), f"{p}.topologyKey")
        if not key:
            raise ArgsError(f"{p}.topologyKey", "Required value: can not be empty")
        when = string(c.get("whenUnsatisfiable"), f"{p}.whenUnsatisfiable", choices=(DO_NOT_SCHEDULE, SCHEDULE_ANYWAY))
        if (key, when) in seen:
            raise ArgsError(f"{p}", f"Duplicate value: {{{key!r}, {when!r}}}")
        seen.add((key, when))
        if c.get("labelSelector") is not None:
            raise ArgsError(f"{p}.labelSelector", "Forbidden: constraint must not define a selector, as they deduced for each pod")
        if c.get("minDomains") is not None:
            integer(c.get("minDomains"), f"{p}.minDomains", lo=1)
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            if c.get(policy) is not None:
                string(c.get(policy), f"{p}.{policy}", choices=(HONOR, IGNORE))
        keys = sequence(c.get("matchLabelKeys"), f"{p}.matchLabelKeys")
        for j, k in enumerate(keys):
            string(k, f"{p}.matchLabelKeys[{j}]")
        out.append(c)
    return out


def new(args: Mapping[str, Any], path: str) -> PodTopologySpread:
    """PodTopologySpreadArgs: ``defaultingType`` System (default) or List, and
    ``defaultConstraints`` (only with List)."""
    args = mapping(args, path)
    known_fields(args, ("defaultConstraints", "defaultingType"), path)
    defaulting = string(args.get("defaultingType", "System"), f"{path}.defaultingType", choices=("System", "List"))
    constraints = _default_constraints(args.get("defaultConstraints"), f"{path}.defaultConstraints")
    if defaulting == "System":
        if constraints:
            raise ArgsError(f"{path}.defaultConstraints", 'Invalid value: when .defaultingType is "System", .defaultConstraints must be empty')
        return PodTopologySpread()
    return PodTopologySpread(default_constraints=constraints, system_defaulted=False)


_: type[PreFilterPlugin] = PodTopologySpread
_f: type[FilterPlugin] = PodTopologySpread
_s: type[ScorePlugin] = PodTopologySpread
