"""The plugin framework: extension-point protocols, the registry, and a
profile that turns one pending pod into a decision over every node at once.

A profile is kube-scheduler's framework reduced to what placement needs:
ordered *filters* that each return a feasibility verdict over all nodes, and
weighted *scores* that each return an integer per feasible node, normalised by
the plugin and checked here to lie in ``0..MAX_NODE_SCORE``. The total is the
weighted sum; the winner among equal totals is drawn by a seeded random key,
never by node order.

Filters report *why* a node is rejected as ``Reason`` rows -- a message plus a
boolean mask over nodes -- so that a FailedScheduling message such as
``0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated
taint {dedicated: gpu}.`` is one ``sum()`` per message, not a loop over nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from scoring.nominations import Nominations, nominated_node
from scoring.objects import PodInfo, with_annotations
from scoring.table import BoolArray, IntArray, NodeTable

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
    "default_normalize_score",
    "fit_error_message",
    "num_feasible_nodes_to_find",
    "score_source",
]

MAX_NODE_SCORE: Final = 100
"""Upstream's framework.MaxNodeScore: every normalised score lies in 0..100."""
NO_NODES_MESSAGE: Final = "no nodes available to schedule pods"
"""Upstream's ErrNoNodesAvailable, reported when the cluster has no node at all."""
_MIN_FEASIBLE_NODES_TO_FIND: Final = 100
_MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: Final = 5

CycleState = dict[str, Any]
"""Scratch space shared by one pod's plugins during one decision."""
PREFILTER_REJECTION: Final = "framework/prefilter-rejection"
"""CycleState key: the message of the PreFilter plugin that rejected the pod."""
SKIPPED_SCORES: Final = "framework/skipped-scores"
"""CycleState key: names of the score plugins that skipped (added nothing) this cycle."""
ALL_CANDIDATES: Final = "framework/all-candidates"
"""CycleState key: set (by ``explain``) to make PostFilter plugins consider every node
instead of upstream's sample of candidates."""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the nodes in ``nodes`` (a mask over ``[:n]``) cannot take the pod.

    ``unresolvable`` marks reasons that preemption cannot fix (upstream's
    UnschedulableAndUnresolvable), which the extender reports separately.
    """

    message: str
    nodes: BoolArray
    unresolvable: bool = False


class PluginError(RuntimeError):
    """A plugin broke its contract (e.g. a score outside 0..100); names the plugin."""


class Plugin(Protocol):
    """Every plugin has a name: the one used by the registry and the config."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class NodeSubset:
    """A PreFilter result that limits the pod to the named nodes (upstream's
    PreFilterResult.NodeNames); other nodes are rejected before any filter runs."""

    names: frozenset[str]


@runtime_checkable
class PreFilterPlugin(Protocol):
    """Checks the pod once before any node is looked at.

    Returns a message that rejects the pod on every node (upstream's
    UnschedulableAndUnresolvable), a NodeSubset that limits the nodes to
    consider, or None to go on. May put work in ``state`` for later
    extension points.
    """

    @property
    def name(self) -> str: ...

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None: ...


@runtime_checkable
class FilterPlugin(Protocol):
    """Decides feasibility for all nodes at once.

    Returns the reasons that reject nodes (an empty sequence or None when
    every node passes). A node is feasible when no reason's mask holds it.
    """

    @property
    def name(self) -> str: ...

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """Scores the feasible nodes ``nodes`` (row indices into the table).

    Returns an int64 array aligned with ``nodes``, or None to skip (upstream's
    PreScore Skip: the plugin then adds nothing to any node's total).
    Without ``normalize`` the scores must already be in 0..MAX_NODE_SCORE.
    """

    @property
    def name(self) -> str: ...

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None: ...


@runtime_checkable
class ScoreExtensions(Protocol):
    """Maps a score plugin's raw scores over the feasible nodes into 0..MAX_NODE_SCORE."""

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray: ...


@runtime_checkable
class ReservePlugin(Protocol):
    """Claims node-local resources for the chosen node (e.g. which GPUs) before the pod
    is assumed. Returns annotations to record on the pod -- the live scheduler patches
    them onto the Pod before binding, so that a device plugin can honour the choice --
    or None when there is nothing to record. Must not change the table."""

    @property
    def name(self) -> str: ...

    def reserve(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> Mapping[str, str] | None: ...


@runtime_checkable
class UnreservePlugin(Protocol):
    """Undoes what Reserve did for a pod that will not be bound after all (rejected at Permit,
    timed out waiting, or its binding failed): upstream's Unreserve, called in the reverse
    order of Reserve. Must not change the table (the caller forgets the assumed pod)."""

    @property
    def name(self) -> str: ...

    def unreserve(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState, waiting: WaitingPods) -> None: ...


@runtime_checkable
class QueueSortPlugin(Protocol):
    """Orders the scheduling queue (upstream's QueueSort ``Less``, as a sort key: smaller
    goes first). ``timestamp`` is when the pod last entered the queue and ``first_seen``
    when it first did, both in wall-clock seconds. One per profile, the same in all."""

    @property
    def name(self) -> str: ...

    def queue_key(self, pod: PodInfo, table: NodeTable, *, timestamp: float, first_seen: float) -> tuple[Any, ...]: ...


PERMIT_SUCCESS: Final = "Success"
PERMIT_WAIT: Final = "Wait"
PERMIT_REJECT: Final = "Unschedulable"
MAX_PERMIT_TIMEOUT_SECONDS: Final = 15 * 60.0
"""Upstream's maxTimeout: no pod waits at Permit longer than 15 minutes, whatever a plugin asks."""


@dataclass(frozen=True, slots=True)
class PermitResult:
    """A Permit verdict: ``status`` is PERMIT_SUCCESS, PERMIT_WAIT (``timeout`` seconds at
    most) or PERMIT_REJECT (``message`` says why)."""

    status: str
    message: str = ""
    timeout: float = 0.0


class WaitingPod(Protocol):
    """A pod assumed on its node and held at Permit until every plugin that asked it to
    wait allows it, or one rejects it (upstream's WaitingPod)."""

    @property
    def pod(self) -> PodInfo: ...

    @property
    def node(self) -> str: ...

    def allow(self, plugin: str) -> None: ...

    def reject(self, plugin: str, message: str) -> None: ...


class WaitingPods(Protocol):
    """The profile's waiting pods, as Permit, PostFilter and Unreserve plugins see them
    (upstream's IterateOverWaitingPods / GetWaitingPod). Allowing or rejecting one takes
    effect when the caller next runs: never inside the plugin's call."""

    def __iter__(self) -> Iterator[WaitingPod]: ...

    def get(self, key: str) -> WaitingPod | None: ...


class _NoWaitingPods:
    """No pod waits (``explain``, the simulator, a scheduler without Permit plugins)."""

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(())

    def get(self, key: str) -> WaitingPod | None:
        return None


NO_WAITING_PODS: Final[WaitingPods] = _NoWaitingPods()


@runtime_checkable
class PermitPlugin(Protocol):
    """Decides, once the pod is assumed on ``node``, whether it may be bound now, must wait,
    or is rejected (upstream's Permit). A waiting pod keeps its capacity until allowed."""

    @property
    def name(self) -> str: ...

    def permit(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState,
               waiting: WaitingPods) -> PermitResult: ...


@dataclass(frozen=True, slots=True)
class Remaining:
    """Nodes ``rows`` as they would be with some of their pods gone (the preemption dry
    run): ``requested`` stands for ``table.requested[rows]`` and ``port_counts`` for
    ``table.port_counts[rows]``; the table itself is not changed."""

    rows: npt.NDArray[np.intp]
    requested: IntArray
    port_counts: npt.NDArray[np.int32]


@runtime_checkable
class DryRunFilter(Protocol):
    """A filter that sees a node's pods only through the table's summed columns
    (requested resources, pod count, used host ports), so that it can judge nodes as
    they would be without some pods, for many nodes at once and without changing the
    table. Returns reasons whose masks are aligned with ``remaining.rows``."""

    @property
    def name(self) -> str: ...

    def filter_remaining(self, pod: PodInfo, table: NodeTable, state: CycleState,
                         remaining: Remaining) -> Sequence[Reason] | None: ...


class NodeOnlyFilter:
    """Mixed into a filter whose verdict depends on the node alone, never on the pods
    placed there (taints, node affinity, ...): the preemption dry run keeps its verdict
    instead of running it again. A filter that can say so per pod defines
    ``depends_on_pods`` itself."""

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    """What a PostFilter plugin concluded when no node fits (upstream's PostFilterResult
    with its Status). ``message`` is appended to the FailedScheduling text (empty when
    the plugin succeeded); ``nominated_node`` is the node to nominate the pod to, ``""``
    to clear its nomination, or None to leave it as it is; ``detail`` is the plugin's
    own account (for DefaultPreemption, its ``Preemption`` plan)."""

    plugin: str
    success: bool
    message: str
    nominated_node: str | None = None
    detail: Any = None


@runtime_checkable
class PostFilterPlugin(Protocol):
    """Runs when no node fits (upstream's PostFilter), with the filters' verdict:
    the feasibility mask (all False) and the reasons. Must leave the table as it was."""

    @property
    def name(self) -> str: ...

    def postfilter(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                   profile: Profile) -> PostFilterResult: ...


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


def _check_scores(plugin: str, scores: IntArray) -> None:
    """Raise PluginError unless every score lies in 0..MAX_NODE_SCORE."""
    if len(scores) == 0:
        return
    # One pass instead of min() and max(): seen as uint64, a negative int64 is >= 2**63.
    if scores.dtype == np.int64 and int(scores.view(np.uint64).max()) <= MAX_NODE_SCORE:
        return
    lo, hi = int(scores.min()), int(scores.max())
    if lo < 0 or hi > MAX_NODE_SCORE:
        raise PluginError(f"plugin {plugin} returned score {lo if lo < 0 else hi} outside 0..{MAX_NODE_SCORE}")


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
    ) -> None:
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
        n = table.n
        # (np.count_nonzero is the cheapest "any" on a bool array; this loop runs per decision.)
        alive = np.count_nonzero(feasible) > 0
        for plugin in self.filters:
            if not alive:
                break
            found = plugin.filter(pod, table, state)
            if not found:
                continue
            rejected = np.zeros(n, np.bool_)
            for r in found:
                mask = r.nodes & feasible
                if np.count_nonzero(mask):
                    reasons.append(Reason(r.message, mask, r.unresolvable))
                    rejected |= mask
            if np.count_nonzero(rejected):
                feasible &= ~rejected
                alive = np.count_nonzero(feasible) > 0
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
            _check_scores(plugin.name, raw)
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
            # Select: the best total, ties broken by a seeded random draw.
            ties = np.flatnonzero(totals == totals.max())
            pick = ties[0] if len(ties) == 1 else ties[self._rng.integers(len(ties))]
            row = int(rows[pick])
        # Reserve: node-local choices (e.g. GPU indices) recorded as annotations.
        annotations: dict[str, str] = {}
        for plugin in self.reservers:
            got = plugin.reserve(pod, table, row, state)
            if got:
                annotations.update(got)
        return Decision(pod, self.name, table.names[row], "", feasible, reasons, rows,
                        scores, totals, node_names=table.names, annotations=annotations, state=state)
