"""The plugin framework: the registry, and a profile that turns one pending pod
into a decision over every node at once. The extension points' protocols live in
``scoring.extension_points`` and are re-exported here.

A profile is kube-scheduler's framework reduced to what placement needs:
ordered *filters* that each return a feasibility verdict over all nodes, and
weighted *scores* that each return an integer per feasible node, normalised by
the plugin and checked here to lie in ``0..MAX_NODE_SCORE``. The total is the
weighted sum. The winner among equal totals is the profile's tie-break
(``TIE_BREAKS``, the profile field ``vecsched.io/tieBreak``): ``Random`` -- the
default, kube-scheduler's selectHost (``pkg/scheduler/schedule_one.go``), which
keeps one of the best nodes uniformly at random -- draws it from the profile's
seeded generator; ``NodeName`` takes the smallest node name, as the FGD
authors' simulator does (its vendored kube-scheduler 1.20 selectHost,
``vendor/k8s.io/kubernetes/pkg/scheduler/core/generic_scheduler.go`` of
hkust-adsl/kubernetes-scheduler-simulator, is patched "for reproducibility,
choose the smallest lexicographical order"); ``NodeOrder`` takes the node
that comes first in the table (the order nodes were added -- a node list's
order in ``vecsched sim`` and ``explain`` -- except that removing a node
moves the last row into its place). Every decision goes through
``Profile.select``: the live cycle, ``explain``, gang planning and the lab.

Filters report *why* a node is rejected as ``Reason`` rows -- a message plus a
boolean mask over nodes -- so that a FailedScheduling message such as
``0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated
taint {dedicated: gpu}.`` is one ``sum()`` per message, not a loop over nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.extension_points import (
    CycleState,
    PREFILTER_REJECTION,
    SKIPPED_SCORES,
    ALL_CANDIDATES,
    Reason,
    PluginError,
    Plugin,
    NodeSubset,
    PreFilterPlugin,
    FilterPlugin,
    ScorePlugin,
    ScoreExtensions,
    ReservePlugin,
    UnreservePlugin,
    QueueSortPlugin,
    PERMIT_SUCCESS,
    PERMIT_WAIT,
    PERMIT_REJECT,
    MAX_PERMIT_TIMEOUT_SECONDS,
    PermitResult,
    WaitingPod,
    WaitingPods,
    NO_WAITING_PODS,
    PermitPlugin,
    Remaining,
    DryRunFilter,
    NodeOnlyFilter,
    PostFilterResult,
    PostFilterPlugin,
)
from scoring.nominations import Nominations, nominated_node
from scoring.objects import PodInfo, with_annotations
from scoring.table import BoolArray, IntArray, NodeTable
from scoring.tie_break import NODE_NAME, NODE_ORDER, RANDOM, TIE_BREAKS, break_tie

__all__ = [
    "MAX_NODE_SCORE",
    "NO_NODES_MESSAGE",
    "CycleState",
    "PREFILTER_REJECTION",
    "SKIPPED_SCORES",
    "Reason",
    "NodeSubset",
    "PluginError",
    "Plugin",
    "PreFilterPlugin",
    "FilterPlugin",
    "ScorePlugin",
    "ScoreExtensions",
    "ReservePlugin",
    "UnreservePlugin",
    "QueueSortPlugin",
    "PermitPlugin",
    "PermitResult",
    "WaitingPod",
    "WaitingPods",
    "PERMIT_SUCCESS",
    "PERMIT_WAIT",
    "PERMIT_REJECT",
    "MAX_PERMIT_TIMEOUT_SECONDS",
    "NO_WAITING_PODS",
    "PostFilterPlugin",
    "PostFilterResult",
    "Remaining",
    "DryRunFilter",
    "NodeOnlyFilter",
    "ALL_CANDIDATES",
    "PluginFactory",
    "Registry",
    "Profile",
    "Decision",
    "TIE_BREAKS",
    "RANDOM",
    "NODE_NAME",
    "NODE_ORDER",
    "default_normalize_score",
    "check_scores",
    "fit_error_message",
    "num_feasible_nodes_to_find",
    "score_source",
    "apply_verdict",
]

MAX_NODE_SCORE: Final = 100
"""Upstream's framework.MaxNodeScore: every normalised score lies in 0..100."""
NO_NODES_MESSAGE: Final = "no nodes available to schedule pods"
"""Upstream's ErrNoNodesAvailable, reported when the cluster has no node at all."""
_MIN_FEASIBLE_NODES_TO_FIND: Final = 100
_MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: Final = 5

PluginFactory = Callable[[Mapping[str, Any], str], Plugin]
"""Builds a plugin from its (possibly empty) args; the string is the args' path for errors."""


class Registry(Mapping[str, PluginFactory]):
    """A plain mapping from plugin name to factory that refuses duplicates."""

    def __init__(self) -> None:
        self._factories: dict[str, PluginFactory] = {}

    def register(self, name: str, factory: PluginFactory) -> None:
        if name in self._factories:
            raise ValueError(f"plugin {name!r} is registered twice")
        self._factories[name] = factory

    def __getitem__(self, name: str) -> PluginFactory:
        return self._factories[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def default_normalize_score(scores: IntArray, *, reverse: bool = False, max_priority: int = MAX_NODE_SCORE) -> IntArray:
    """Upstream's helper.DefaultNormalizeScore, vectorised.

    ``score * max_priority // max(scores)`` (and ``max_priority - that`` when
    reversed). All zeros stay zero, or become ``max_priority`` when reversed.
    """
    if len(scores) == 0:
        return scores
    top = int(scores.max())
    if top == 0:
        return np.full_like(scores, max_priority) if reverse else scores
    out = max_priority * scores // top
    return max_priority - out if reverse else out


def fit_error_message(num_nodes: int, counts: Mapping[str, int], *, prefilter: str = "") -> str:
    """Upstream's FitError.Error(): ``0/N nodes are available: <count> <reason>, ....``

    Reasons are rendered ``"<count> <message>"`` and sorted as strings, as upstream does.
    When a PreFilter plugin rejected the pod, its message alone follows the colon.
    """
    if num_nodes == 0:
        return NO_NODES_MESSAGE
    if prefilter:
        return f"0/{num_nodes} nodes are available: {prefilter}."
    parts = sorted(f"{c} {m}" for m, c in counts.items() if c > 0)
    return f"0/{num_nodes} nodes are available: {', '.join(parts)}."


def check_scores(plugin: str, scores: IntArray) -> None:
    """Raise PluginError unless every score lies in 0..MAX_NODE_SCORE."""
    if len(scores) == 0:
        return
    # One pass instead of min() and max(): seen as uint64, a negative int64 is >= 2**63.
    if scores.dtype == np.int64 and int(scores.view(np.uint64).max()) <= MAX_NODE_SCORE:
        return
    lo, hi = int(scores.min()), int(scores.max())
    if lo < 0 or hi > MAX_NODE_SCORE:
        raise PluginError(f"plugin {plugin} returned score {lo if lo < 0 else hi} outside 0..{MAX_NODE_SCORE}")


def apply_verdict(found: Sequence[Reason], feasible: BoolArray, reasons: list[Reason]) -> bool:
    """One filter plugin's verdict applied: each of its reasons, cut to the nodes still
    ``feasible``, is appended to ``reasons``, and those nodes become infeasible (in place).
    Returns whether any node is still feasible."""
    rejected = np.zeros(len(feasible), np.bool_)
    for r in found:
        mask = r.nodes & feasible
        if np.count_nonzero(mask):
            reasons.append(Reason(r.message, mask, r.unresolvable))
            rejected |= mask
    if np.count_nonzero(rejected):
        feasible &= ~rejected
    # (np.count_nonzero is the cheapest "any" on a bool array; this runs per plugin per decision.)
    return bool(np.count_nonzero(feasible) > 0)


def score_source(nodes: npt.NDArray[np.intp], n: int) -> tuple[slice | npt.NDArray[np.intp], npt.NDArray[np.intp] | None]:
    """For a score plugin computing from per-node table columns: where to read them,
    and which rows of its result to return.

    When at least half of the ``n`` rows are scored, computing over every row (plain
    slices ``[:n]``) and taking ``nodes`` from the result once is cheaper than gathering
    every input column at ``nodes`` (the break-even is an empirical guess); that is
    ``(slice(0, n), nodes)``. Otherwise ``(nodes, None)``: gather, and the result is
    already aligned with ``nodes``.
    """
    if 2 * len(nodes) >= n:
        return slice(0, n), nodes
    return nodes, None


def num_feasible_nodes_to_find(percentage: int | None, num_all: int) -> int:
    """How many feasible nodes to score. ``None`` (vecsched's default) means all of
    them; otherwise upstream's numFeasibleNodesToFind, including its adaptive
    percentage for 0 and its floor of 100 nodes."""
    if percentage is None or num_all < _MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all
    if percentage == 0:
        percentage = max(50 - num_all // 125, _MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all * percentage // 100, _MIN_FEASIBLE_NODES_TO_FIND)


@dataclass(slots=True)
class Decision:
    """The outcome of one scheduling attempt, with enough detail to explain it."""

    pod: PodInfo
    profile: str
    node: str | None
    """The chosen node, or None when nothing fits."""
    message: str
    """FailedScheduling text when nothing fits; empty otherwise."""
    feasible: BoolArray
    reasons: list[Reason]
    scored: npt.NDArray[np.intp]
    """Rows that were scored (all feasible rows unless percentageOfNodesToScore limits them)."""
    scores: dict[str, IntArray] = field(default_factory=dict)
    """Normalised, unweighted score per plugin, aligned with ``scored``."""
    totals: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    node_names: Sequence[str] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    """What reserve plugins recorded for the chosen node; ``assumed_pod()`` carries them."""
    post_filter: PostFilterResult | None = None
    """What the PostFilter plugins concluded when nothing fits (None when none ran)."""
    post_filters: dict[str, PostFilterResult] = field(default_factory=dict)
    """Each PostFilter plugin's own result, by plugin name, in the order they ran."""
    state: CycleState = field(default_factory=dict)
    """The cycle's scratch space, which Permit and Unreserve receive as upstream's plugins do."""
    batched: bool = False
    """Whether ``scoring.batching`` decided it from state kept from an earlier pod of the same
    signature (the same decision ``Profile.schedule`` makes, reached by recomputing the rows
    changed since)."""

    def assumed_pod(self) -> PodInfo:
        """The pod as it is assumed and bound: with the reserve plugins' annotations."""
        return with_annotations(self.pod, self.annotations) if self.annotations else self.pod

    def reasons_of(self, row: int) -> list[str]:
        return [r.message for r in self.reasons if r.nodes[row]]

    @property
    def best_total(self) -> int | None:
        return int(self.totals.max()) if len(self.totals) else None


class Profile:
    """One scheduling profile: ordered filters and weighted score plugins."""

    def __init__(
        self,
        *,
        name: str,
        prefilters: Sequence[PreFilterPlugin] = (),
        filters: Sequence[FilterPlugin],
        scorers: Sequence[tuple[ScorePlugin, int]],
        reservers: Sequence[ReservePlugin] = (),
        postfilters: Sequence[PostFilterPlugin] = (),
        permits: Sequence[PermitPlugin] = (),
        queue_sort: QueueSortPlugin | None = None,
        percentage_of_nodes_to_score: int | None = None,
        seed: int = 0,
        tie_break: str = RANDOM,
        batching: bool = True,
    ) -> None:
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
        self.name = name
        self.prefilters = list(prefilters)
        self.filters = list(filters)
        self.scorers = list(scorers)
        self.reservers = list(reservers)
        self.unreservers = [p for p in self.reservers if isinstance(p, UnreservePlugin)]
        self.postfilters = list(postfilters)
        self.permits = list(permits)
        self.queue_sort = queue_sort
        """None: upstream's PrioritySort (higher priority first, then earlier in the queue)."""
        self.waiting: WaitingPods = NO_WAITING_PODS
        """The pods waiting at Permit, as PostFilter plugins reach them (upstream's framework
        handle); the live scheduler sets its own."""
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.tie_break = tie_break
        """How ``select`` chooses among the nodes of equal best total (one of TIE_BREAKS)."""
        self.batching = batching
        """Whether the live cycle decides signable pods with ``scoring.batching`` (the profile
        field ``vecsched.io/batching``); ``schedule`` itself never batches."""
        self._rng = np.random.default_rng(seed)
        self._next_start = 0

    @property
    def plugin_names(self) -> list[str]:
        names = [p.name for p in self.prefilters] + [p.name for p in self.filters] + [p.name for p, _ in self.scorers]
        names += [p.name for p in self.postfilters] + [p.name for p in self.permits]
        return list(dict.fromkeys(names))

    # Phases -------------------------------------------------------------------------

    def run_filters(self, pod: PodInfo, table: NodeTable, state: CycleState) -> tuple[BoolArray, list[Reason]]:
        """PreFilter then Filter: the feasibility mask over ``[:n]`` and the reasons.

        When a PreFilter plugin rejects the pod outright, its message is also left
        in ``state[PREFILTER_REJECTION]`` (upstream reports it alone).

        A node's reasons come from the first plugin that rejected it, as
        upstream stops at the first failing filter for each node.
        """
        n = table.n
        feasible = np.ones(n, np.bool_)
        reasons: list[Reason] = []
        allowed: frozenset[str] | None = None
        limiting: list[str] = []
        for pre in self.prefilters:
            out = pre.prefilter(pod, table, state)
            if out is None:
                continue
            if isinstance(out, str):
                state[PREFILTER_REJECTION] = out
                return np.zeros(n, np.bool_), [Reason(out, np.ones(n, np.bool_), unresolvable=True)]
            limiting.append(pre.name)
            allowed = out.names if allowed is None else allowed & out.names
            if not allowed:
                msg = (f"node(s) didn't satisfy plugin {limiting[0]}" if len(limiting) == 1
                       else f"node(s) didn't satisfy plugin(s) [{' '.join(limiting)}] simultaneously")
                state[PREFILTER_REJECTION] = msg
                return np.zeros(n, np.bool_), [Reason(msg, np.ones(n, np.bool_), unresolvable=True)]
        if allowed is not None:
            feasible[:] = False
            feasible[[row for name in allowed if (row := table.index.get(name)) is not None]] = True
            if not feasible.all():
                reasons.append(Reason(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(limiting))}]",
                                      ~feasible, unresolvable=True))
        return feasible, self.filter_with_nominated(pod, table, state, feasible, reasons)

    def filter_with_nominated(self, pod: PodInfo, table: NodeTable, state: CycleState, feasible: BoolArray,
                              reasons: list[Reason]) -> list[Reason]:
        """The Filter plugins over the nodes still ``feasible`` (updated in place), as
        upstream's RunFilterPluginsWithNominatedPods: a node must take the pod both with
        the pods nominated to it (of equal or higher priority) and -- for filters such as
        inter-pod affinity, which fewer pods can fail -- without them. Returns ``reasons``
        with the rejected nodes' reasons appended."""
        nominated = Nominations.of(table).add_to(table, pod) if Nominations.KEY in table.extensions else ()
        if not nominated:
            return self.run_filter_plugins(pod, table, state, feasible, reasons)
        try:
            reasons = self.run_filter_plugins(pod, table, state, feasible, reasons)
        finally:
            for key, _ in nominated:
                table.remove_pod(key)
        touched = np.zeros(table.n, np.bool_)
        touched[[row for _, row in nominated]] = True
        second = feasible & touched
        reasons = self.run_filter_plugins(pod, table, state, second, reasons)
        feasible &= ~touched | second
        return reasons

    def run_filter_plugins(self, pod: PodInfo, table: NodeTable, state: CycleState, feasible: BoolArray,
                           reasons: list[Reason]) -> list[Reason]:
        """The Filter plugins over the nodes still ``feasible`` (updated in place); the
        reasons of the nodes each rejects are appended to ``reasons``, which is returned."""
        alive = bool(np.count_nonzero(feasible) > 0)
        for plugin in self.filters:
            if not alive:
                break
            found = plugin.filter(pod, table, state)
            if found:
                alive = apply_verdict(found, feasible, reasons)
        return reasons

    def run_scores(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> dict[str, IntArray]:
        """Score and NormalizeScore per plugin, each checked to lie in 0..MAX_NODE_SCORE.

        A plugin that skips (upstream's PreScore Skip) scores 0 everywhere and is
        named in ``state[SKIPPED_SCORES]``.
        """
        out: dict[str, IntArray] = {}
        skipped: set[str] = state.setdefault(SKIPPED_SCORES, set())
        for plugin, _weight in self.scorers:
            raw = plugin.score(pod, table, nodes, state)
            if raw is None:
                out[plugin.name] = np.zeros(len(nodes), np.int64)
                skipped.add(plugin.name)
                continue
            # getattr is what isinstance(plugin, ScoreExtensions) checks, without the
            # runtime Protocol machinery (several µs per plugin per decision).
            normalize = getattr(plugin, "normalize", None)
            if normalize is not None:
                raw = normalize(raw, state)
            check_scores(plugin.name, raw)
            out[plugin.name] = raw
        return out

    def weighted_total(self, scores: Mapping[str, IntArray], n: int) -> IntArray:
        """sum(weight * normalised score) per scored node."""
        totals = np.zeros(n, np.int64)
        for plugin, weight in self.scorers:
            totals += scores[plugin.name] if weight == 1 else weight * scores[plugin.name]
        return totals

    def _to_score(self, feasible: BoolArray) -> npt.NDArray[np.intp]:
        rows = np.flatnonzero(feasible)
        n = len(feasible)
        k = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, n)
        if k >= len(rows):
            self._next_start = 0
            return rows
        # Upstream walks nodes round-robin from where the last cycle stopped
        # and keeps the first k feasible ones it meets.
        start = self._next_start % n
        rotated = np.concatenate([rows[rows >= start], rows[rows < start]])
        chosen = rotated[:k]
        last = int(chosen[-1])
        self._next_start = (last + 1) % n
        return np.sort(chosen)

    def select(self, totals: IntArray, rows: npt.NDArray[np.intp], table: NodeTable) -> int:
        """The index into ``rows`` (the scored rows, ``totals`` aligned with them) of the
        chosen node: the best total, ties broken by the profile's ``tie_break``.

        ``Random`` draws from the profile's seeded generator only when there is a tie,
        as vecsched always has (the same draws for the same seed); upstream's reservoir
        sampling is the same uniform choice."""
        ties = np.flatnonzero(totals == totals.max())
        return break_tie(ties=ties, rows=rows, table=table, tie_break=self.tie_break, rng=self._rng)

    def run_post_filters(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                         each: dict[str, PostFilterResult] | None = None) -> PostFilterResult | None:
        """Upstream's RunPostFilterPlugins: the first plugin that succeeds wins; otherwise
        the failures' messages are joined and the last result that nominates (or clears
        a nomination) is kept. Each plugin's own result goes into ``each`` when given."""
        if not self.postfilters:
            return None
        messages: list[str] = []
        kept: PostFilterResult | None = None
        first: PostFilterResult | None = None
        for plugin in self.postfilters:
            result = plugin.postfilter(pod, table, state, reasons, self)
            if each is not None:
                each[plugin.name] = result
            if result.success:
                return result
            first = first or result
            if result.message:
                messages.append(result.message)
            if result.nominated_node is not None or result.detail is not None:
                kept = result
        base = kept or first
        assert base is not None
        return PostFilterResult(base.plugin, False, ", ".join(messages), base.nominated_node, base.detail)

    def run_permit(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState,
                   waiting: WaitingPods) -> tuple[PermitResult, dict[str, float]]:
        """Upstream's RunPermitPlugins for ``pod`` assumed on ``node``: the first rejection
        wins; otherwise the pod waits when any plugin asks it to, each such plugin with its
        own timeout (at most MAX_PERMIT_TIMEOUT_SECONDS), returned by plugin name."""
        waits: dict[str, float] = {}
        for plugin in self.permits:
            got = plugin.permit(pod, table, node, state, waiting)
            if got.status == PERMIT_REJECT:
                return got, {}
            if got.status == PERMIT_WAIT:
                waits[plugin.name] = min(got.timeout, MAX_PERMIT_TIMEOUT_SECONDS)
        if waits:
            return PermitResult(PERMIT_WAIT, timeout=min(waits.values())), waits
        return PermitResult(PERMIT_SUCCESS), {}

    def run_unreserve(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState,
                      waiting: WaitingPods) -> None:
        """Upstream's RunReservePluginsUnreserve: every Reserve plugin's Unreserve, in reverse order."""
        for plugin in reversed(self.unreservers):
            plugin.unreserve(pod, table, node, state, waiting)

    def schedule(self, pod: PodInfo, table: NodeTable, *, all_candidates: bool = False,
                 post_filter: bool = True) -> Decision:
        """Decide where ``pod`` goes. Nothing is changed; the caller assumes the result.

        When no node fits, the PostFilter plugins run (DefaultPreemption plans which pods
        to evict) unless ``post_filter`` is False; ``all_candidates`` makes them consider
        every node (for ``explain``)."""
        state: CycleState = {}
        if all_candidates:
            state[ALL_CANDIDATES] = True
        # Filter: a verdict for every node.
        feasible, reasons = self.run_filters(pod, table, state)
        if not feasible.any():
            counts: dict[str, int] = {}
            for r in reasons:
                counts[r.message] = counts.get(r.message, 0) + int(r.nodes.sum())
            message = fit_error_message(table.n, counts, prefilter=state.get(PREFILTER_REJECTION, ""))
            each: dict[str, PostFilterResult] = {}
            post = self.run_post_filters(pod, table, state, reasons, each) if table.n and post_filter else None
            if post is not None and post.message:
                message = f"{message} {post.message}"
            return Decision(pod, self.name, None, message, feasible, reasons,
                            np.zeros(0, np.intp), node_names=table.names, post_filter=post, post_filters=each,
                            state=state)
        nominated = table.index.get(nominated_node(pod, table), -1)
        if nominated >= 0 and feasible[nominated]:
            # The node an earlier preemption freed for the pod, if it fits there, is taken
            # without scoring (upstream's evaluateNominatedNode).
            row = nominated
            rows = np.array([row], np.intp)
            scores: dict[str, IntArray] = {}
            totals = np.zeros(1, np.int64)
        else:
            # Score: every feasible node (or upstream's sample when configured).
            rows = self._to_score(feasible)
            scores = self.run_scores(pod, table, rows, state)
            totals = self.weighted_total(scores, len(rows))
            # Select: the best total, ties broken by the profile's tie-break.
            row = int(rows[self.select(totals, rows, table)])
        # Reserve: node-local choices (e.g. GPU indices) recorded as annotations.
        annotations: dict[str, str] = {}
        for plugin in self.reservers:
            got = plugin.reserve(pod, table, row, state)
            if got:
                annotations.update(got)
        return Decision(pod, self.name, table.names[row], "", feasible, reasons, rows,
                        scores, totals, node_names=table.names, annotations=annotations, state=state)
