"""Opportunistic batching (kube-scheduler 1.35's KEP-5598), done with arrays and exact.

Replicas of one workload arrive one after another with the same requests, selectors
and tolerations, and a profile decides each over every node although, since the last
one, only a row or two changed: the assumed pod's node, and the nodes a watch event
touched. A ``Batcher`` keeps, for the last *scheduling signatures* its profile decided
(``KEPT_SIGNATURES``, within ``KEPT_BYTES``), each filter plugin's verdict over all
nodes and each score plugin's raw (not yet normalised) score over all nodes, and brings
them up to date for the next pod of the same signature by recomputing only those rows.
Normalisation depends on every feasible node, so it runs again over the kept raw
vectors (or, while the filters' verdicts on the changed rows stay the same, the last
decision's normalised scores take the changed rows' new ones), followed by the weighted
total and the selection (the same tie-break, the same draws from the seeded generator):
the decision is the one ``Profile.schedule`` makes, field by field. A replica's signing
is reused too, while every plugin's ``sign_stamp`` (what its ``sign`` reads of the table)
stays the same.

A replica's decision after an assume usually differs from the last one in a row or two,
and over thousands of nodes its cost is then numpy's per-call overhead, not arithmetic.
So, while the changed rows are few (``_FEW_ROWS``) and no ROWS score plugin normalises
(none of kube-scheduler's ROWS plugins does: NodeResourcesFit and
NodeResourcesBalancedAllocation score 0..100 as they are), the changed rows' scores and
totals are moved in Python integers, and the best total and the nodes that have it (the
*tie set*) are kept from one decision to the next: a total that rises above the best
starts a new tie set, one that reaches it joins, one that leaves it is taken out -- and
only when the last of the tie set leaves is the best found again by a pass over every
total. ``tie_break.break_tie`` then chooses as ``Profile.select`` does.

A pod is *signed* by every plugin of the profile's PreFilter, Filter and Score lists
(``sign``, see ``SignPlugin``). A plugin answers how its results for the pod can be
kept:

- ``SKIP``: it does nothing for this pod (upstream's PreFilter/PreScore Skip): no
  verdict, a skipped score. NodePorts for a pod without host ports, the volume
  plugins for a pod without the volumes they act on, PodTopologySpread without
  constraints, InterPodAffinity when neither the pod nor any placed pod has terms.
- ``NODES``: its results depend on the nodes alone (labels, taints, images): they
  are kept until ``NodeTable.node_generation`` changes. TaintToleration,
  NodeAffinity, NodeName, NodeUnschedulable, ImageLocality.
- ``ROWS``: a node's result depends on that node's row alone (its allocatable and
  the pods placed on it): rows whose pods changed are recomputed. NodeResourcesFit,
  NodeResourcesBalancedAllocation, NodePorts. A ROWS filter plugin provides
  ``filter_rows`` (its per-row verdict data) and ``reasons_of_rows`` (the reasons of
  that data over all rows, as its ``filter`` would give them); score plugins already
  score the rows they are given.

and a *fragment*: what of the pod its results depend on (requests, tolerations,
selectors, images, host ports...). The signature is the pod's priority, scheduler
name and node name with every plugin's (name, mode, fragment). A plugin that has
no ``sign`` (a custom plugin, the GPU and load-aware ones, whose results read
state that changes outside the rows the table logs) makes every pod *unsignable*,
and so do: a plugin that returns a reason instead of a mode (a pod with pod
(anti-)affinity, topology spread constraints -- explicit, or the defaults that
apply to it --, a PodGroup, volumes, or a placed pod with affinity terms); a
nominated node; pods nominated elsewhere that the filters would count; and a
``percentageOfNodesToScore`` that samples the nodes (its rotating start makes the
scored set differ from one pod to the next).

Whenever nothing fits, the batcher gives the decision back to the ordinary path,
so that PostFilter (preemption) runs exactly as it would. A batched decision's arrays
are read-only: decisions of one signature share those that did not change.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from time import perf_counter

import numpy as np
import numpy.typing as npt

from scoring.framework import (
    MAX_NODE_SCORE,
    PREFILTER_REJECTION,
    SKIPPED_SCORES,
    CycleState,
    Decision,
    FilterPlugin,
    Plugin,
    ScorePlugin,
    Profile,
    Reason,
    apply_verdict,
    check_scores,
    num_feasible_nodes_to_find,
)
from scoring.nominations import Nominations, nominated_node
from scoring.objects import PodInfo
from scoring.row_log import RowLog
from scoring.table import BoolArray, IntArray, NodeTable, read_only
from scoring.tie_break import break_tie, move_tie_set

__all__ = [
    "SKIP",
    "NODES",
    "ROWS",
    "MODES",
    "HIT",
    "MISS",
    "UNSIGNABLE",
    "Signed",
    "SignPlugin",
    "StampedSignPlugin",
    "RowFilterPlugin",
    "Signature",
    "BatchOutcome",
    "RowLog",
    "Batcher",
    "sign_pod",
    "Observe",
    "KEPT_SIGNATURES",
    "KEPT_BYTES",
]

SKIP: Final = "skip"
"""The plugin does nothing for the pod: no prefilter verdict, no filter verdict, a skipped score."""
NODES: Final = "nodes"
"""The plugin's results for the pod depend on the nodes alone (kept until ``node_generation`` changes)."""
ROWS: Final = "rows"
"""A node's result depends on its own row alone (recomputed for the rows whose pods changed)."""
MODES: Final = (SKIP, NODES, ROWS)

HIT: Final = "hit"
"""The kept state of the pod's signature was brought up to date and used."""
MISS: Final = "miss"
"""The pod was signable but nothing was kept for its signature (or the nodes changed): computed in full."""
UNSIGNABLE: Final = "unsignable"
"""The pod was decided by the ordinary path."""

KEPT_SIGNATURES: Final = 4
"""Signatures a profile keeps state for, the most recently decided: replicas of a few
workloads scaling at once take turns in the queue, and each would otherwise find the
state of another (kube-scheduler keeps one; a few cost little more here)."""
KEPT_BYTES: Final = 32 * 2**20
"""Memory the kept arrays of one profile may take (the most recent signature's always
stays): ShapeCache's bound, some 3 MB per signature at 20,000 nodes."""
_NO_ROWS: Final = np.zeros(0, np.intp)
_FEW_ROWS: Final = 16
"""Changed rows up to which a decision moves their scores and totals one by one in Python
integers (a few numpy scalar reads per row and plugin) rather than with array operations (a
few us each whatever the size). Measured on the batching benchmark's 2,000 nodes with the
default profile: 16 rows take ~11 us one by one against ~18 us with arrays, which win past
~30 rows; 16 leaves room for a slower machine's Python."""


@dataclass(frozen=True, slots=True)
class Signed:
    """How a plugin's results for a pod can be kept: one of ``MODES``, and what of the pod
    they depend on (hashable; equal fragments must give equal results)."""

    mode: str
    fragment: Hashable = ()


@runtime_checkable
class SignPlugin(Protocol):
    """A plugin that can take part in batching (upstream's SignPlugin)."""

    @property
    def name(self) -> str: ...

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """How this plugin's results for ``pod`` can be kept, or why they cannot (one line).
        It reads the pod's spec, labels, namespace and owner references, and of the table
        at most what ``sign_stamp`` (optional) stands for."""


class StampedSignPlugin(SignPlugin, Protocol):
    """A SignPlugin that says what of the table its ``sign`` reads, so that a replica (the
    same spec, labels, namespace and owners) reuses the last pod's signing while those
    stamps stay the same. Without ``sign_stamp``, a plugin signs every pod anew."""

    def sign_stamp(self, table: NodeTable) -> Hashable:
        """A value that changes whenever what ``sign`` reads of ``table`` may have (None: nothing)."""


class RowFilterPlugin(Protocol):
    """A filter whose verdict on a node depends on that node's row alone."""

    def filter_rows(self, pod: PodInfo, table: NodeTable, rows: npt.NDArray[np.intp],
                    state: CycleState) -> npt.NDArray[np.generic]:
        """Verdict data for ``rows`` (first axis aligned with them), each row's from that row alone."""

    def reasons_of_rows(self, pod: PodInfo, table: NodeTable, data: npt.NDArray[np.generic],
                        state: CycleState) -> Sequence[Reason]:
        """The reasons ``filter`` gives when ``data`` is ``filter_rows`` of every row ``[:n]``."""


Signature = tuple[Hashable, ...]

Observe = Callable[[str, str, float, str], None]
"""Told (plugin name, extension point, seconds, status) for each plugin verdict a batched
decision takes from kept state instead of calling the plugin -- so that per-plugin timing
(kube-scheduler's plugin metrics, which count a Filter run per pod also with batching) sees
every decision. Calls of the plugins themselves are the plugins' own to time."""


def sign_pod(profile: Profile, pod: PodInfo, table: NodeTable) -> tuple[Signature, dict[str, Signed]] | str:
    """The pod's scheduling signature under ``profile`` and each plugin's ``Signed`` by
    name, or the reason it is unsignable (one line)."""
    return _unsignable(profile, pod, table) or _sign_plugins(profile, _signing_plugins(profile), pod, table)


def _unsignable(profile: Profile, pod: PodInfo, table: NodeTable) -> str:
    """Why the pod is unsignable whatever the plugins say, or ""."""
    if nominated_node(pod, table):
        return "the pod has a nominated node"
    noms = table.extensions.get(Nominations.KEY)
    if isinstance(noms, Nominations) and any(
            other.key != pod.key and other.priority >= pod.priority for other, _ in noms.pods.values()):
        return "pods of equal or higher priority are nominated to nodes (the filters count them)"
    n = table.n
    if num_feasible_nodes_to_find(profile.percentage_of_nodes_to_score, n) < n:
        return "percentageOfNodesToScore samples the nodes"
    return ""


def _sign_plugins(profile: Profile, plugins: Sequence[Plugin], pod: PodInfo, table: NodeTable
                  ) -> tuple[Signature, dict[str, Signed]] | str:
    """Each plugin's ``Signed`` (or the first refusal) and the signature they make."""
    signed: dict[str, Signed] = {}
    parts: list[Hashable] = [pod.priority, pod.scheduler_name, pod.node_name]
    for plugin in plugins:
        sign = getattr(plugin, "sign", None)
        if sign is None:
            return f"plugin {plugin.name} cannot sign pods"
        got = sign(pod, table)
        if isinstance(got, str):
            return f"{plugin.name}: {got}"
        if got.mode not in MODES:
            raise ValueError(f"plugin {plugin.name} signed with unknown mode {got.mode!r}")
        signed[plugin.name] = got
        try:
            hash(got.fragment)
        except TypeError:
            return f"plugin {plugin.name} signed with a fragment that cannot be compared"
        parts.append((plugin.name, got.mode, got.fragment))
    for pre in profile.prefilters:
        if signed[pre.name].mode == ROWS:
            return f"plugin {pre.name} has a PreFilter whose verdict depends on the pods"
    return tuple(parts), signed


def _signing_plugins(profile: Profile) -> list[Plugin]:
    """The PreFilter, Filter and Score plugins, each name once, in profile order."""
    seen: dict[str, Plugin] = {}
    plugins: list[Plugin] = [*profile.prefilters, *profile.filters, *(s for s, _ in profile.scorers)]
    for p in plugins:
        seen.setdefault(p.name, p)
    return list(seen.values())


@dataclass(slots=True)
class _Filter:
    plugin: FilterPlugin
    mode: str
    reasons: Sequence[Reason] = ()
    """NODES: the plugin's reasons over ``[:n]``."""
    data: npt.NDArray[np.generic] | None = None
    """ROWS: ``filter_rows`` of every row."""
    rows: RowFilterPlugin | None = None
    """ROWS: the plugin as a RowFilterPlugin."""


@dataclass(slots=True)
class _Score:
    plugin: ScorePlugin
    name: str
    weight: int
    mode: str
    raw: IntArray | None = None
    """Raw scores of every row ``[:n]``; None: the plugin skips (a skipped score)."""
    score_rows: Callable[[PodInfo, NodeTable, npt.NDArray[np.intp], CycleState], IntArray | None] | None = None
    """ROWS: what scores the changed rows -- the plugin's own row function when it has one
    (ShapeCache serves ``score`` whole columns), else ``score``."""
    normalize: Callable[[IntArray, CycleState], IntArray] | None = None
    """The plugin's NormalizeScore, if it has one."""


@dataclass(slots=True)
class _Kept:
    signature: Signature
    table: NodeTable
    node_generation: int
    n: int
    epoch: int
    position: int
    state: CycleState
    base: BoolArray
    """Feasibility after PreFilter (NodeSubset results)."""
    base_reasons: list[Reason]
    filters: list[_Filter] = field(default_factory=list)
    scores: list[_Score] = field(default_factory=list)
    last: _Last | None = None
    """The last decision made from this state, which the next one starts from."""
    row_filters: list[_Filter] = field(default_factory=list)
    """The ROWS filters (of ``filters``)."""
    row_scores: list[_Score] = field(default_factory=list)
    """The ROWS score plugins (of ``scores``)."""
    renormalises: bool = False
    """Whether a ROWS score plugin normalises (a changed row may move every score)."""

    def nbytes(self) -> int:
        """What the kept arrays take."""
        total = self.base.nbytes + sum(f.data.nbytes for f in self.filters if f.data is not None)
        total += sum(s.raw.nbytes for s in self.scores if s.raw is not None)
        last = self.last
        if last is not None:
            total += last.feasible.nbytes + last.rows.nbytes + last.position.nbytes + last.totals.nbytes
            total += last.ties.nbytes + sum(v.nbytes for v in last.scores.values())
        return total


@dataclass(slots=True)
class _Last:
    """What the last decision of a signature produced (arrays read-only: decisions share them).
    While the filters' verdicts on the rows changed since are the same, the feasible nodes,
    the reasons and every normalised score but those of the changed rows stay."""

    feasible: BoolArray
    reasons: list[Reason]
    rows: npt.NDArray[np.intp]
    position: npt.NDArray[np.intp]
    """For every row, its index into ``rows`` (-1: not feasible)."""
    scores: dict[str, IntArray]
    totals: IntArray
    statuses: list[tuple[str, str]]
    """Each filter plugin that ran and its status, for ``Observe``."""
    skipped: frozenset[str]
    best: int
    """``totals.max()``."""
    ties: npt.NDArray[np.intp]
    """The indices into ``rows`` (ascending) whose total is ``best``: the tie set."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What ``Batcher.decide`` did: the decision (None: run ``Profile.schedule``), how
    (HIT, MISS or UNSIGNABLE) and, when unsignable, why."""

    decision: Decision | None
    result: str
    reason: str = ""


class _Fallback(Exception):
    """A plugin's results were not what its signing promised: use the ordinary path."""


class Batcher:
    """Batched decisions for one profile (see the module docstring); ``decide`` is exact."""

    def __init__(self, profile: Profile, *, observe: Observe | None = None) -> None:
        self.profile = profile
        self.observe = observe
        self._kept: dict[Signature, _Kept] = {}
        """Kept state by signature, least recently used first (see KEPT_SIGNATURES)."""
        self._plugins: _Signers | None = None
        self._signed: list[tuple[tuple[object, ...], tuple[Hashable, ...], tuple[Signature, dict[str, Signed]] | str]] = []
        """The last pods' signings (one per distinct pod, up to KEPT_SIGNATURES, most recent last):
        what of the pod and (stamps) of the table each read, and the result."""

    def forget(self) -> None:
        """Drop the kept state (the next signable pod is a MISS)."""
        self._kept.clear()

    def decide(self, pod: PodInfo, table: NodeTable) -> BatchOutcome:
        """Decide ``pod`` as ``Profile.schedule(pod, table)`` would; nothing is changed
        but the profile's generator (as ``select`` draws) and the kept state. A None
        decision means: nothing fits, or the pod is unsignable -- call ``schedule``."""
        signed = self._sign(pod, table)
        if isinstance(signed, str):
            return BatchOutcome(None, UNSIGNABLE, signed)
        signature, by_name = signed
        log = RowLog.of(table)
        kept = self._kept.pop(signature, None)
        result = HIT
        try:
            if (kept is None or kept.table is not table or kept.node_generation != table.node_generation
                    or kept.n != table.n or kept.epoch != log.epoch):
                result = MISS
                kept = self._compute(pod, table, signature, by_name, log)
            if kept is None:
                return BatchOutcome(None, result)
            self._keep(signature, kept, new=result == MISS)
            changed, same = _NO_ROWS, True
            if result == HIT and kept.position < len(log.rows):
                changed, same = self._refresh(pod, table, kept, log)
            timed: list[tuple[str, str, float, str]] = []
            decision: Decision | None
            if same and kept.last is not None:
                decision = self._again(pod, table, kept, kept.last, changed, timed)
            else:
                decision = self._decision(pod, table, kept, batched=result == HIT, timed=timed)
            if decision is not None and self.observe is not None:
                for entry in timed:
                    self.observe(*entry)
            return BatchOutcome(decision, result)
        except _Fallback:
            self._kept.pop(signature, None)
            return BatchOutcome(None, MISS)
        except BaseException:
            # A plugin failed part-way through (bad input, a fault): what is kept may be
            # half brought up to date, so none of it is used again.
            self._kept.pop(signature, None)
            raise

    def _keep(self, signature: Signature, kept: _Kept, *, new: bool) -> None:
        """Keep ``kept`` as the most recently used; a ``new`` one may push the least recently
        used out (KEPT_SIGNATURES, KEPT_BYTES)."""
        self._kept[signature] = kept
        while new and len(self._kept) > 1 and (len(self._kept) > KEPT_SIGNATURES
                                               or sum(k.nbytes() for k in self._kept.values()) > KEPT_BYTES):
            del self._kept[next(iter(self._kept))]

    def _signers(self) -> _Signers:
        """The profile's signing plugins and their ``sign_stamp`` methods, looked up again
        only when the profile's plugin lists are replaced (``scheduler.instrument`` does so
        once, before the first cycle)."""
        profile = self.profile
        got = self._plugins
        if (got is None or got.prefilters is not profile.prefilters or got.filters is not profile.filters
                or got.scorers is not profile.scorers):
            plugins = _signing_plugins(profile)
            found = [getattr(plugin, "sign_stamp", None) for plugin in plugins]
            stamps: list[Callable[[NodeTable], Hashable]] = [stamp for stamp in found if stamp is not None]
            got = self._plugins = _Signers(profile.prefilters, profile.filters, profile.scorers, plugins,
                                           stamps if len(stamps) == len(found) else None)
        return got

    def _sign(self, pod: PodInfo, table: NodeTable) -> tuple[Signature, dict[str, Signed]] | str:
        """``sign_pod``, reusing the last pod's plugin signing for a replica of it while every
        plugin's ``sign_stamp`` says the same (all plugins must have one)."""
        profile = self.profile
        reason = _unsignable(profile, pod, table)
        if reason:
            return reason
        signers = self._signers()
        if signers.stamps is None:
            return _sign_plugins(profile, signers.plugins, pod, table)
        stamped = tuple([stamp(table) for stamp in signers.stamps])
        raw = pod.raw if isinstance(pod.raw, dict) else {}
        meta = raw.get("metadata")
        # What plugins read of a pod: its spec and the fields derived from it (compared too,
        # for pods built without their manifest), its labels, namespace and owners.
        key = (raw.get("spec"), pod.labels, pod.namespace, meta.get("ownerReferences") if isinstance(meta, dict) else None,
               pod.requests, pod.nonzero_cpu, pod.nonzero_memory, pod.priority, pod.node_name, pod.scheduler_name,
               pod.host_ports, pod.images, pod.tolerations, pod.node_selector, pod.affinity)
        for i in range(len(self._signed) - 1, -1, -1):
            memo = self._signed[i]
            if memo[0] == key:
                if memo[1] == stamped:
                    return memo[2]
                del self._signed[i]
                break
        got = _sign_plugins(profile, signers.plugins, pod, table)
        self._signed.append((key, stamped, got))
        if len(self._signed) > KEPT_SIGNATURES:
            del self._signed[0]
        return got

    # ---- keeping ----------------------------------------------------------------------

    def _compute(self, pod: PodInfo, table: NodeTable, signature: Signature, by_name: dict[str, Signed],
                 log: RowLog) -> _Kept | None:
        """Everything over every row; None when a PreFilter rejects the pod."""
        profile = self.profile
        n = table.n
        state: CycleState = {}
        base = np.ones(n, np.bool_)
        base_reasons: list[Reason] = []
        allowed: frozenset[str] | None = None
        limiting: list[str] = []
        for pre in profile.prefilters:  # as Profile.run_filters
            if by_name[pre.name].mode == SKIP:
                continue
            out = pre.prefilter(pod, table, state)
            if out is None:
                continue
            if isinstance(out, str):
                return None
            limiting.append(pre.name)
            allowed = out.names if allowed is None else allowed & out.names
            if not allowed:
                return None
        if allowed is not None:
            base[:] = False
            base[[row for name in allowed if (row := table.index.get(name)) is not None]] = True
            if not base.all():
                base_reasons.append(Reason(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(limiting))}]",
                                           ~base, unresolvable=True))
        kept = _Kept(signature, table, table.node_generation, n, log.epoch, len(log.rows), state, base, base_reasons)
        every = np.arange(n, dtype=np.intp)
        for plugin in profile.filters:
            mode = by_name[plugin.name].mode
            if mode == SKIP:
                continue
            if mode == NODES:
                kept.filters.append(_Filter(plugin, mode, reasons=list(plugin.filter(pod, table, state) or ())))
            else:
                rows = _row_filter(plugin)
                f = _Filter(plugin, mode, data=rows.filter_rows(pod, table, every, state), rows=rows)
                kept.filters.append(f)
                kept.row_filters.append(f)
        for scorer, weight in profile.scorers:
            mode = by_name[scorer.name].mode
            raw = None if mode == SKIP else scorer.score(pod, table, every, state)
            s = _Score(scorer, scorer.name, weight, mode, None if raw is None else np.array(raw, np.int64),
                       normalize=getattr(scorer, "normalize", None))
            kept.scores.append(s)
            if mode == ROWS:
                s.score_rows = getattr(scorer, "score_rows", None) or scorer.score
                kept.row_scores.append(s)
                kept.renormalises = kept.renormalises or s.normalize is not None
        return kept

    def _refresh(self, pod: PodInfo, table: NodeTable, kept: _Kept, log: RowLog
                 ) -> tuple[npt.NDArray[np.intp], bool]:
        """Recompute the ROWS plugins' results on the rows logged since ``kept.position``:
        those rows (ascending), and whether every filter's verdict data on them stayed the same."""
        changed = log.rows[kept.position:]
        kept.position = len(log.rows)
        # (An assumed pod's row, and the rows of the pods the watch confirmed since -- each
        # logged twice, as the confirmation replaces the assumed pod.)
        rows = np.array(changed if len(changed) == 1 else sorted(set(changed)), np.intp)
        few = len(rows) <= _FEW_ROWS
        state = kept.state
        same = True
        for f in kept.row_filters:
            assert f.data is not None and f.rows is not None
            got = f.rows.filter_rows(pod, table, rows, state)
            if same:
                # (Lists compare a row or two faster than np.array_equal's several calls.)
                same = f.data[rows].tolist() == got.tolist() if few else bool(np.array_equal(f.data[rows], got))
            f.data[rows] = got
        for s in kept.row_scores:
            assert s.score_rows is not None
            raw = s.score_rows(pod, table, rows, state)
            if (raw is None) != (s.raw is None):
                raise _Fallback
            if s.raw is not None and raw is not None:
                s.raw[rows] = raw
        return rows, same

    # ---- deciding ---------------------------------------------------------------------

    def _decision(self, pod: PodInfo, table: NodeTable, kept: _Kept, *, batched: bool,
                  timed: list[tuple[str, str, float, str]]) -> Decision | None:
        """Filter, score, select and reserve from the kept state, as ``Profile.schedule``;
        ``batched``: the state was kept from an earlier pod (a HIT), not computed for this one."""
        profile = self.profile
        n = table.n
        state: CycleState = dict(kept.state)
        skipped: set[str] = set()
        state[SKIPPED_SCORES] = skipped
        state.pop(PREFILTER_REJECTION, None)
        feasible = kept.base.copy()
        reasons = list(kept.base_reasons)
        kept.last = None  # (set again below once a node fits)
        # Filter: each plugin's verdict over all rows, in order, as Profile.run_filter_plugins.
        statuses: list[tuple[str, str]] = []
        alive = bool(np.count_nonzero(feasible) > 0)
        for f in kept.filters:
            if not alive:
                break
            started = perf_counter()
            if f.mode == NODES:
                found = f.reasons
            else:
                assert f.data is not None and f.rows is not None
                found = f.rows.reasons_of_rows(pod, table, f.data, state)
            if found:
                alive = apply_verdict(found, feasible, reasons)
            status = "Unschedulable" if found and any(r.nodes.any() for r in found) else "Success"
            statuses.append((f.plugin.name, status))
            if batched or f.mode == ROWS:  # (a MISS called the NODES filters themselves)
                timed.append((f.plugin.name, "Filter", perf_counter() - started, status))
        if not alive:
            return None  # nothing fits: the ordinary path reports it and runs PostFilter
        # Score: every feasible row (sign_pod refused sampling), from the kept raw scores.
        rows = np.flatnonzero(feasible)
        profile._next_start = 0  # as Profile._to_score does when it scores every feasible node
        scores: dict[str, IntArray] = {}
        for s in kept.scores:
            if s.raw is None:
                scores[s.name] = np.zeros(len(rows), np.int64)
                skipped.add(s.name)
                continue
            raw = s.raw[rows]
            if s.normalize is not None:
                raw = s.normalize(raw, state)
            check_scores(s.name, raw)
            scores[s.name] = raw
        totals = profile.weighted_total(scores, len(rows))
        position = np.full(n, -1, np.intp)
        position[rows] = np.arange(len(rows), dtype=np.intp)
        best = int(totals.max())  # (as Profile.select finds the tie set)
        kept.last = _Last(read_only(feasible), reasons, read_only(rows), position,
                          {k: read_only(v) for k, v in scores.items()}, read_only(totals),
                          statuses, frozenset(skipped), best, np.flatnonzero(totals == best))
        return self._select(pod, table, kept.last, state, batched=batched)

    def _again(self, pod: PodInfo, table: NodeTable, kept: _Kept, last: _Last, changed: npt.NDArray[np.intp],
               timed: list[tuple[str, str, float, str]]) -> Decision:
        """A HIT whose filters said the same on the changed rows: the last decision's feasible
        nodes and reasons, its scores with the changed rows' raw scores put in (a plugin that
        normalises renormalises all), its totals moved by the weighted differences, then select."""
        started = perf_counter()
        state: CycleState = dict(kept.state)
        state[SKIPPED_SCORES] = set(last.skipped)
        self.profile._next_start = 0  # as Profile._to_score does when it scores every feasible node
        if len(changed):
            if len(changed) <= _FEW_ROWS and not kept.renormalises:
                _move_rows(kept, last, changed.tolist())
            else:
                _move_arrays(kept, last, changed, state)
        if self.observe is not None:
            took = (perf_counter() - started) / max(len(last.statuses), 1)
            timed.extend((name, "Filter", took, status) for name, status in last.statuses)
        return self._select(pod, table, last, state, batched=True)

    def _select(self, pod: PodInfo, table: NodeTable, last: _Last, state: CycleState, *, batched: bool) -> Decision:
        """Select (the best total, ties broken by the profile's tie-break: the same draws) and
        Reserve, as ``Profile.schedule``."""
        profile = self.profile
        rows = last.rows
        row = int(rows[break_tie(ties=last.ties, rows=rows, table=table, tie_break=profile.tie_break, rng=profile._rng)])
        annotations: dict[str, str] = {}
        for plugin in profile.reservers:
            got = plugin.reserve(pod, table, row, state)
            if got:
                annotations.update(got)
        return Decision(pod, profile.name, table.names[row], "", last.feasible, list(last.reasons), rows,
                        dict(last.scores), last.totals, node_names=table.names, annotations=annotations, state=state, batched=batched)


@dataclass(slots=True)
class _Signers:
    """The plugins that sign a profile's pods, for the plugin lists they were found in."""

    prefilters: object
    filters: object
    scorers: object
    plugins: list[Plugin]
    stamps: list[Callable[[NodeTable], Hashable]] | None
    """Each plugin's ``sign_stamp``; None when one has none (every pod is signed anew)."""


def _move_rows(kept: _Kept, last: _Last, changed: list[int]) -> None:
    """``last`` brought to the raw scores of the ``changed`` rows (a few, ascending), in Python
    integers: each ROWS score plugin's changed scores and the totals they move, copied on write
    (decisions share the arrays), and the tie set kept -- found again by a pass over every
    total only when the last of it leaves. No ROWS plugin normalises (``kept.renormalises``)."""
    position = last.position
    moved = [(row, at) for row in changed if (at := int(position[row])) >= 0]
    if not moved:
        return
    scores = last.scores
    changed_scores: dict[str, IntArray] = {}
    deltas = [0] * len(moved)
    for s in kept.row_scores:
        raw = s.raw
        if raw is None:
            continue  # a skipped score: zeros, as it was
        old = scores[s.name]
        new: IntArray | None = None
        for i, (row, at) in enumerate(moved):
            value, was = int(raw[row]), int(old[at])
            if value == was:
                continue  # (``was`` passed check_scores, and so does ``value``)
            if not 0 <= value <= MAX_NODE_SCORE:
                check_scores(s.name, raw[[r for r, _ in moved]])  # raises, as Profile.run_scores would
            if new is None:
                new = old.copy()
            new[at] = value
            deltas[i] += s.weight * (value - was)
        if new is not None:
            changed_scores[s.name] = read_only(new)
    if changed_scores:
        last.scores = {**scores, **changed_scores}
    if not any(deltas):
        return
    totals = last.totals.copy()
    kept_ties: tuple[int, npt.NDArray[np.intp]] | None = (last.best, last.ties)  # (no decision holds these)
    for (_, at), delta in zip(moved, deltas):
        if not delta:
            continue
        was = int(totals[at])
        # (Python integers, written back into int64: totals stay far inside it, as the config
        # keeps weights below 2**31 and every score is at most 100.)
        total = was + delta
        totals[at] = total
        if kept_ties is not None:
            kept_ties = move_tie_set(best=kept_ties[0], ties=kept_ties[1], at=at, was=was, total=total)
    if kept_ties is None:  # the best row fell below another: a pass over every total finds which
        best = int(totals.max())
        kept_ties = best, np.flatnonzero(totals == best)
    last.totals = read_only(totals)
    last.best, last.ties = kept_ties


def _move_arrays(kept: _Kept, last: _Last, changed: npt.NDArray[np.intp], state: CycleState) -> None:
    """``_move_rows`` with array operations, for many changed rows or a ROWS plugin that
    normalises (it renormalises every score); the tie set is found again by a pass."""
    at = last.position[changed]
    if len(at) and at.min() < 0:
        at_rows, at = changed[at >= 0], at[at >= 0]
    else:
        at_rows = changed
    if not len(at):
        return
    scores = dict(last.scores)
    totals = last.totals.copy()
    for s in kept.row_scores:
        if s.raw is None:
            continue  # a skipped score: zeros, as it was
        old = scores[s.name]
        if s.normalize is not None:
            new = s.normalize(s.raw[last.rows], state)
            check_scores(s.name, new)
            totals += s.weight * (new - old)
        else:
            values = s.raw[at_rows]
            check_scores(s.name, values)
            new = old.copy()
            new[at] = values
            totals[at] += s.weight * (values - old[at])
        scores[s.name] = read_only(new)
    last.scores = scores
    last.totals = read_only(totals)
    last.best = int(totals.max())
    last.ties = np.flatnonzero(totals == last.best)


def _row_filter(plugin: object) -> RowFilterPlugin:
    """The plugin as a RowFilterPlugin (it signed ROWS as a filter, so it must be one)."""
    if not (hasattr(plugin, "filter_rows") and hasattr(plugin, "reasons_of_rows")):
        raise _Fallback
    return plugin
