"""Preemption as kube-scheduler's DefaultPreemption decides it, for every node at once.

When no node fits a pod, upstream dry-runs preemption node by node
(``SelectVictimsOnNode``): remove every pod of lower priority, check that the pod
then fits (all filters, with the nominated pods), and give pods back -- the
PodDisruptionBudget-violating ones first, each group from the most important down
(higher priority, then earlier start) -- keeping each whose return still lets the
pod fit. The pods not given back are the node's victims. The candidates are then
compared (``pickOneNodeForPreemption``): fewest PDB violations, lowest
highest-victim priority, smallest sum of victim priorities (each plus 2^31),
fewest victims, latest start among the highest-priority victims, the first.

Here the same dry run runs over all candidate nodes together. Which way depends on
what the profile's filters read of a node's pods, asked of each filter for this pod:

- a filter that says it does not depend on the pods (``depends_on_pods`` is False:
  taints, node affinity, a GPU filter for a pod without GPUs) keeps its verdict;
- a ``DryRunFilter`` (NodeResourcesFit, NodePorts) judges nodes from summed columns,
  so the dry run is array arithmetic: the victims' requests are subtracted per node
  with one reduction, and giving pods back is one step per victim *rank* (the k-th
  victim of every node at once), not per pod;
- a filter whose state follows the pods through table listeners and looks only at
  the node itself (``node_local``: GPU slots) is run on the table with the victims
  really removed and given back, many nodes per step;
- anything else (inter-pod affinity and topology spread with hard terms, which look
  across a topology domain) gets upstream's node-by-node dry run on the real table.

Every way leaves the table as it found it and gives upstream's answer; tests
compare them with each other and with upstream's cases. Candidates are visited from
a random offset and the search stops at upstream's ``numCandidates`` (or visits
every node for ``explain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from scoring.framework import CycleState, DryRunFilter, Profile, Reason, Remaining
from scoring.nominations import Nominations
from scoring.objects import ObjectError, PodInfo
from scoring.plugins.pod_selectors import Selector, SelectorError, parse_selector
from scoring.table import BoolArray, IntArray, NodeTable

__all__ = [
    "NO_VICTIMS",
    "NOT_HELPFUL",
    "Budget",
    "Budgets",
    "PlacedPods",
    "Candidate",
    "Candidates",
    "budget_from_json",
    "find_candidates",
    "pick_one",
    "pod_start_time",
    "terminating_by_preemption",
    "dry_run_mode",
]

NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
_PRIORITY_SHIFT: Final = 2**31
"""Upstream adds MaxInt32+1 to each victim priority before summing, so that all are >= 0."""

# Dry-run modes, from cheapest to most general.
STATIC: Final = 0
COLUMNS: Final = 1
NODE_LOCAL: Final = 2
GLOBAL: Final = 3


def _inner(plugin: Any) -> Any:
    """The plugin itself when it is wrapped (the live scheduler times plugins in proxies)."""
    return getattr(plugin, "inner", plugin)


def dry_run_mode(plugin: Any, pod: PodInfo, table: NodeTable, state: CycleState) -> int:
    """How ``plugin`` must be run in the dry run for ``pod`` (see the module docstring)."""
    p = _inner(plugin)
    depends = getattr(p, "depends_on_pods", None)
    if depends is not None and not depends(pod, table, state):
        return STATIC
    if isinstance(p, DryRunFilter):
        return COLUMNS
    if getattr(p, "node_local", False):
        return NODE_LOCAL
    return GLOBAL


# ---- pod facts -------------------------------------------------------------------------------


def pod_start_time(pod: PodInfo) -> float:
    """``status.startTime`` in seconds since the epoch; NaN when the pod has none (or it
    does not parse): upstream's GetPodStartTime then uses "now"."""
    status = pod.raw.get("status")
    raw = status.get("startTime") if isinstance(status, Mapping) else None
    if not isinstance(raw, str):
        return math.nan
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return math.nan


def terminating_by_preemption(pod: PodInfo) -> bool:
    """Upstream's podTerminatingByPreemption: being deleted, with the DisruptionTarget
    condition True for reason PreemptionByScheduler."""
    meta = pod.raw.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("deletionTimestamp"):
        return False
    status = pod.raw.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for c in conditions if isinstance(conditions, list) else ():
        if isinstance(c, Mapping) and c.get("type") == "DisruptionTarget":
            return c.get("status") == "True" and c.get("reason") == "PreemptionByScheduler"
    return False


# ---- PodDisruptionBudgets ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """What preemption reads of a PodDisruptionBudget."""

    namespace: str
    name: str
    selector: Selector | None
    """None when the selector is missing, empty or invalid: it then matches no pod."""
    allowed: int
    """``status.disruptionsAllowed``."""
    disrupted: frozenset[str]
    """Names in ``status.disruptedPods``: already counted by the API server."""

    def selects(self, pod: PodInfo) -> bool:
        """Whether the budget covers ``pod`` (disrupted pods included)."""
        return (self.selector is not None and pod.namespace == self.namespace and bool(pod.labels)
                and self.selector.matches(pod.labels))


def budget_from_json(obj: Mapping[str, Any]) -> Budget:
    """A ``policy/v1`` PodDisruptionBudget; ObjectError names a field preemption cannot read."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise ObjectError("PodDisruptionBudget", "metadata", "expected a mapping")
    ns, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    ref = f"PodDisruptionBudget {ns}/{name}"
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise ObjectError(ref, "spec", "expected a mapping")
    status = obj.get("status") or {}
    if not isinstance(status, Mapping):
        raise ObjectError(ref, "status", "expected a mapping")
    selector: Selector | None = None
    if spec.get("selector") is not None:
        try:
            selector = parse_selector(spec.get("selector"), "spec.selector")
        except SelectorError:
            selector = None  # upstream: an invalid selector matches nothing
        if selector is not None and selector.empty:
            selector = None  # ... and so does an empty one, for a PDB
    allowed = status.get("disruptionsAllowed", 0) or 0
    if not isinstance(allowed, int) or isinstance(allowed, bool):
        raise ObjectError(ref, "status.disruptionsAllowed", f"expected an integer, got {allowed!r}")
    disrupted = status.get("disruptedPods") or {}
    if not isinstance(disrupted, Mapping):
        raise ObjectError(ref, "status.disruptedPods", "expected a mapping of pod names to times")
    return Budget(ns, name, selector, allowed, frozenset(str(k) for k in disrupted))


@dataclass
class Budgets:
    """The cluster's PodDisruptionBudgets, kept as a table extension by the cache (live)
    or the snapshot (``explain``). ``selector_generation`` changes only when which pods a
    budget selects may change, not when its status does."""

    KEY: ClassVar[str] = "preemption/budgets"
    items: dict[tuple[str, str], Budget] = field(default_factory=dict)
    selector_generation: int = 0

    @classmethod
    def of(cls, table: NodeTable) -> Budgets:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, Budgets):
            ext = table.extensions[cls.KEY] = Budgets()
        return ext

    def apply(self, obj: Mapping[str, Any]) -> Budget:
        b = budget_from_json(obj)
        key = (b.namespace, b.name)
        old = self.items.get(key)
        if old is None or old.selector != b.selector:
            self.selector_generation += 1
            if old is not None:
                del self.items[key]  # keep ``order`` stable for the others
        self.items[key] = b
        return b

    def delete(self, namespace: str, name: str) -> None:
        if self.items.pop((namespace, name), None) is not None:
            self.selector_generation += 1

    @property
    def order(self) -> list[Budget]:
        return list(self.items.values())


# ---- placed pods as arrays -----------------------------------------------------------------


class PlacedPods:
    """Every pod placed in the table as rows of arrays -- node row, priority, start time,
    request vector, host-port use, and which budgets select it -- kept in step with the
    table as a listener, so that a dry run finds a priority's potential victims on all
    nodes with array operations."""

    KEY: ClassVar[str] = "preemption/placed-pods"

    def __init__(self, table: NodeTable) -> None:
        cap = max(64, len(table.pods))
        self.count = 0
        self.node = np.zeros(cap, np.intp)
        self.priority = np.zeros(cap, np.int64)
        self.start = np.zeros(cap, np.float64)
        self.ports = np.zeros(cap, np.bool_)
        self.req: IntArray = np.zeros((cap, len(table.resources)), np.int64)
        self.infos: list[PodInfo] = []
        self.pos: dict[str, int] = {}
        self._budget_generation = -1
        self.selected: BoolArray = np.zeros((cap, 0), np.bool_)
        """Per pod and budget (in ``Budgets.order``): whether the budget selects the pod."""

    @classmethod
    def of(cls, table: NodeTable) -> PlacedPods:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, PlacedPods):
            ext = table.extensions[cls.KEY] = PlacedPods(table)
            table.listeners.append(ext)
            for placed in list(table.pods.values()):
                ext.pod_added(table, placed.pod, table.index[placed.node])
        return ext

    def _grow(self, rows: int, cols: int) -> None:
        cap = len(self.node)
        if rows > cap:
            new = max(rows, 2 * cap)
            for attr in ("node", "priority", "start", "ports"):
                old = getattr(self, attr)
                grown = np.zeros(new, old.dtype)
                grown[:cap] = old
                setattr(self, attr, grown)
            req = np.zeros((new, self.req.shape[1]), np.int64)
            req[:cap] = self.req
            self.req = req
            sel = np.zeros((new, self.selected.shape[1]), np.bool_)
            sel[:cap] = self.selected
            self.selected = sel
        if cols > self.req.shape[1]:
            self.req = np.hstack([self.req, np.zeros((len(self.req), cols - self.req.shape[1]), np.int64)])

    # TableListener ------------------------------------------------------------------------

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        vec = table.pods[pod.key].vector
        self._grow(self.count + 1, len(vec))
        i = self.count
        self.count += 1
        self.node[i] = node
        self.priority[i] = pod.priority
        self.start[i] = pod_start_time(pod)
        self.ports[i] = bool(pod.host_ports)
        self.req[i] = 0
        self.req[i, : len(vec)] = vec
        if self.selected.shape[1]:
            budgets = table.extensions.get(Budgets.KEY)
            order = budgets.order if isinstance(budgets, Budgets) else []
            self.selected[i] = False
            for j, b in enumerate(order[: self.selected.shape[1]]):
                self.selected[i, j] = b.selects(pod)
        self.infos.append(pod)
        self.pos[pod.key] = i

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        i = self.pos.pop(pod.key, None)
        if i is None:
            return
        last = self.count - 1
        if i != last:
            for a in (self.node, self.priority, self.start, self.ports, self.req, self.selected):
                a[i] = a[last]
            moved = self.infos[last]
            self.infos[i] = moved
            self.pos[moved.key] = i
        self.infos.pop()
        self.count -= 1

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        for p in table.node_pods(table.names[dst]):
            i = self.pos.get(p.key)
            if i is not None:
                self.node[i] = dst

    def node_set(self, table: NodeTable, node: int) -> None:
        pass

    # Budgets ----------------------------------------------------------------------------------

    def budget_selection(self, budgets: Budgets) -> BoolArray:
        """``selected[:count]`` for ``budgets.order``, recomputed when selectors changed."""
        order = budgets.order
        if self._budget_generation != budgets.selector_generation or self.selected.shape[1] != len(order):
            sel = np.zeros((len(self.node), len(order)), np.bool_)
            for j, b in enumerate(order):
                if b.selector is None:
                    continue
                for i in range(self.count):
                    sel[i, j] = b.selects(self.infos[i])
            self.selected = sel
            self._budget_generation = budgets.selector_generation
        return self.selected[: self.count]


# ---- candidates ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node where preemption lets the pod fit, with its victims (most important first)."""

    node: str
    victims: tuple[PodInfo, ...]
    pdb_violations: int


@dataclass(slots=True)
class Candidates:
    """Candidates as arrays, in upstream's order (the non-violating ones in the order the
    nodes were visited, then the violating ones), with what selection compares."""

    rows: npt.NDArray[np.intp]
    pdb_violations: IntArray
    highest: IntArray
    """Priority of each candidate's most important victim."""
    priority_sum: IntArray
    """Sum over victims of priority + 2^31."""
    victims: IntArray
    """Number of victims."""
    earliest: npt.NDArray[np.float64]
    """Earliest start among the highest-priority victims (missing start: now)."""
    members: list[tuple[PodInfo, ...]]
    names: Sequence[str]

    def __len__(self) -> int:
        return len(self.rows)

    def candidate(self, i: int) -> Candidate:
        return Candidate(self.names[int(self.rows[i])], self.members[i], int(self.pdb_violations[i]))

    def __iter__(self) -> Iterator[Candidate]:
        return (self.candidate(i) for i in range(len(self)))

    def take(self, idx: npt.NDArray[np.intp]) -> Candidates:
        return Candidates(self.rows[idx], self.pdb_violations[idx], self.highest[idx], self.priority_sum[idx],
                          self.victims[idx], self.earliest[idx], [self.members[int(i)] for i in idx], self.names)


def pick_one(c: Candidates) -> int | None:
    """Upstream's pickOneNodeForPreemption over the candidates: the index of the chosen one."""
    if len(c) == 0:
        return None
    alive = np.arange(len(c))
    for key in (-c.pdb_violations, -c.highest, -c.priority_sum, -c.victims, c.earliest):
        vals = key[alive]
        alive = alive[vals == vals.max()]
        if len(alive) == 1:
            break
    return int(alive[0])


# ---- the dry run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Victims:
    """The potential victims on some nodes, in importance order per node (sorted by node
    row, then priority descending, then start ascending), with the reprieve plan."""

    idx: npt.NDArray[np.intp]
    """Rows in PlacedPods."""
    node: npt.NDArray[np.intp]
    priority: IntArray
    start: npt.NDArray[np.float64]
    violating: BoolArray
    groups: npt.NDArray[np.intp]
    """Start of each node's run in the arrays above."""
    group_nodes: npt.NDArray[np.intp]
    group: npt.NDArray[np.intp]
    """Per victim: its node's group number."""
    steps: list[npt.NDArray[np.intp]]
    """Per reprieve step k: the k-th victim (in reprieve order: violating first) of every group."""


def _potential_victims(placed: PlacedPods, table: NodeTable, pod: PodInfo, on: BoolArray, budgets: Budgets | None,
                       now: float) -> _Victims:
    m = placed.count
    node_all = placed.node[:m]
    idx = np.flatnonzero((placed.priority[:m] < pod.priority) & on[node_all])
    node, prio = node_all[idx], placed.priority[idx]
    start = placed.start[idx]
    start = np.where(np.isnan(start), now, start)
    order = np.lexsort((idx, start, -prio, node))
    idx, node, prio, start = idx[order], node[order], prio[order], start[order]
    k = len(idx)
    if k:
        groups = np.flatnonzero(np.concatenate(([True], node[1:] != node[:-1])))
    else:
        groups = np.zeros(0, np.intp)
    sizes = np.diff(np.append(groups, k))
    group = np.repeat(np.arange(len(groups)), sizes)
    violating = np.zeros(k, np.bool_)
    if budgets is not None and budgets.items and k:
        selected = placed.budget_selection(budgets)[idx]
        for j, b in enumerate(budgets.order):
            hit = selected[:, j].copy()
            if b.disrupted:
                names = np.fromiter((placed.infos[int(i)].name in b.disrupted for i in idx), np.bool_, k)
                hit &= ~names
            if not hit.any():
                continue
            # Upstream decrements the budget for each selected victim of a node in importance
            # order; the victim that takes it below zero, and every later one, violates it.
            seen: IntArray = np.cumsum(hit)
            before: IntArray = (seen - hit)[groups]
            violating |= hit & (seen - np.repeat(before, sizes) > b.allowed)
    # Reprieve order within a node: violating victims first, each part most important first.
    rep = np.lexsort((np.arange(k), ~violating, node))
    rank = np.empty(k, np.intp)
    rank[rep] = np.arange(k) - np.repeat(groups, sizes)
    by_rank = rep[np.argsort(rank[rep], kind="stable")]
    steps = np.split(by_rank, np.cumsum(np.bincount(rank, minlength=1))[:-1]) if k else []
    return _Victims(idx, node, prio, start, violating, groups, node[groups] if k else groups, group, steps)


@dataclass(slots=True)
class _Outcome:
    """The dry run over some nodes: which fit with which victims, and why the others do not."""

    fits: BoolArray
    """Per group (node) of the _Victims."""
    victim: BoolArray
    """Per potential victim: not given back."""
    failed: dict[int, list[str]]
    """Row -> the reasons the pod does not fit there even without the victims."""
    infos: list[PodInfo] | None = None
    """The potential victims, aligned with the _Victims, when PlacedPods' rows moved
    during the dry run (the table was changed and restored)."""


def _messages(reasons: Sequence[Reason], pick: npt.NDArray[np.intp]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in reasons:
        for i in np.flatnonzero(r.nodes[pick]):
            out.setdefault(int(pick[i]), []).append(r.message)
    return out


def _nominated_load(table: NodeTable, pod: PodInfo, rows: npt.NDArray[np.intp], req: IntArray,
                    ports: npt.NDArray[np.int32]) -> None:
    """Charge, into the dry run's columns for ``rows``, the nominated pods the pod must
    make room for (upstream's addGENominatedPods). Resource filters are monotone, so
    this first pass is the one that can fail."""
    nominations = table.extensions.get(Nominations.KEY)
    if not isinstance(nominations, Nominations) or not nominations.pods:
        return
    where = {int(r): i for i, r in enumerate(rows)}
    for other, node in nominations.pods.values():
        if other.priority < pod.priority or other.key == pod.key or other.key in table.pods:
            continue
        i = where.get(table.index.get(node, -1))
        if i is None:
            continue
        vec = table.vector(other.requests)
        vec[table.resource_index["pods"]] = 1
        req[i, : len(vec)] += vec
        for hp in other.host_ports:
            ports[i, table.port_column(hp)] += 1


def _columns_dry_run(profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState, v: _Victims,
                     placed: PlacedPods, modes: Sequence[int]) -> _Outcome:
    """The dry run for filters that are STATIC or COLUMNS: array arithmetic over all nodes."""
    rows = v.group_nodes
    k = len(v.idx)
    r = len(table.resources)
    placed._grow(placed.count, r)
    vreq = placed.req[v.idx, :r]
    if np.count_nonzero(placed.ports[v.idx]) or pod.host_ports:
        port_counts = table.port_counts[rows].copy()
        for j in np.flatnonzero(placed.ports[v.idx]):
            holder = placed.infos[int(v.idx[j])]
            for hp in holder.host_ports:
                port_counts[v.group[j], table.port_column(hp)] -= 1
    else:
        port_counts = np.zeros((len(rows), table.port_counts.shape[1]), np.int32)
    req = table.requested[rows, :r] - (np.add.reduceat(vreq, v.groups, axis=0) if k else 0)
    _nominated_load(table, pod, rows, req, port_counts)
    if port_counts.shape[1] < table.port_counts.shape[1]:  # a nominated pod's port added a column
        port_counts = np.hstack([port_counts, np.zeros((len(rows), table.port_counts.shape[1] - port_counts.shape[1]),
                                                       np.int32)])
    fits = np.ones(len(rows), np.bool_)
    failed: dict[int, list[str]] = {}
    columns = []
    for plugin, mode in zip(profile.filters, modes):
        p = _inner(plugin)
        if mode == STATIC:
            found = p.filter(pod, table, state)
            masks = [(x.message, x.nodes[rows]) for x in found or ()]
        else:
            columns.append(p)
            found = p.filter_remaining(pod, table, state, Remaining(rows, req, port_counts))
            masks = [(x.message, x.nodes) for x in found or ()]
        rejected = np.zeros(len(rows), np.bool_)
        for message, mask in masks:
            mask = mask & fits
            for i in np.flatnonzero(mask):
                failed.setdefault(int(rows[i]), []).append(message)
            rejected |= mask
        fits &= ~rejected
    victim = np.zeros(k, np.bool_)
    for step in v.steps:
        step = step[fits[v.group[step]]]
        if not len(step):
            continue
        g = v.group[step]
        req[g] += vreq[step]
        has_ports = placed.ports[v.idx[step]]
        if has_ports.any():
            _shift_ports(table, placed, v, step[has_ports], port_counts, +1)
        remaining = Remaining(rows[g], req[g], port_counts[g])
        ok = np.ones(len(step), np.bool_)
        for p in columns:
            for x in p.filter_remaining(pod, table, state, remaining) or ():
                ok &= ~x.nodes
        bad = ~ok
        if bad.any():
            req[g[bad]] -= vreq[step[bad]]
            if (has_ports & bad).any():
                _shift_ports(table, placed, v, step[has_ports & bad], port_counts, -1)
            victim[step[bad]] = True
    return _Outcome(fits, victim, failed)


def _shift_ports(table: NodeTable, placed: PlacedPods, v: _Victims, which: npt.NDArray[np.intp],
                 port_counts: npt.NDArray[np.int32], sign: int) -> None:
    for j in which:
        for hp in placed.infos[int(v.idx[j])].host_ports:
            port_counts[v.group[j], table.port_column(hp)] += sign


def _table_dry_run(profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState, v: _Victims,
                   placed: PlacedPods) -> _Outcome:
    """The dry run on the table itself: the victims of every node in ``v`` are removed,
    the filters run, and they are given back rank by rank; the table is restored."""
    infos = [placed.infos[int(i)] for i in v.idx]
    nodes = [table.names[int(r)] for r in v.node]
    rows = v.group_nodes
    n = table.n
    out_of_table = np.ones(len(infos), np.bool_)
    fits = np.zeros(len(rows), np.bool_)
    failed: dict[int, list[str]] = {}
    victim = np.zeros(len(infos), np.bool_)
    try:
        for p in infos:
            table.remove_pod(p.key)
        feasible = np.zeros(n, np.bool_)
        feasible[rows] = True
        reasons = profile.filter_with_nominated(pod, table, state, feasible, [])
        fits = feasible[rows].copy()
        failed = _messages(reasons, rows[~fits]) if not fits.all() else {}
        for step in v.steps:
            step = step[fits[v.group[step]]]
            if not len(step):
                continue
            for j in step:
                table.add_pod(infos[j], nodes[j])
                out_of_table[j] = False
            feasible = np.zeros(n, np.bool_)
            feasible[rows[v.group[step]]] = True
            profile.filter_with_nominated(pod, table, state, feasible, [])
            for j in step[~feasible[v.node[step]]]:
                table.remove_pod(infos[j].key)
                out_of_table[j] = True
                victim[j] = True
    finally:
        for j in np.flatnonzero(out_of_table):
            table.add_pod(infos[j], nodes[j])
    return _Outcome(fits, victim, failed, infos)


@dataclass(slots=True)
class DryRun:
    """What ``find_candidates`` found."""

    candidates: Candidates
    failed: dict[int, list[str]]
    """Row -> why preemption does not help there (nodes dry-run and rejected)."""
    potential: int
    """Nodes where preemption might help (rejected, but not unresolvably)."""
    visited: int
    """Nodes dry-run before the search stopped."""


def find_candidates(profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState,
                    reasons: Sequence[Reason], *, offset: Callable[[int], int], num_candidates: Callable[[int], int],
                    now: float, every_node: bool = False) -> DryRun:
    """Upstream's findCandidates + DryRunPreemption: the nodes whose filter verdict was
    resolvable, visited from ``offset(len)`` on, until ``num_candidates(len)`` candidates
    are found of which at least one violates no budget (or all nodes, ``every_node``)."""
    n = table.n
    unresolvable = np.zeros(n, np.bool_)
    rejected = np.zeros(n, np.bool_)
    for r in reasons:
        rejected |= r.nodes
        if r.unresolvable:
            unresolvable |= r.nodes
    potential_rows = np.flatnonzero(rejected & ~unresolvable)
    names = table.names
    none = np.zeros(0, np.int64)
    empty = Candidates(np.zeros(0, np.intp), none, none, none, none, np.zeros(0, np.float64), [], names)
    if not len(potential_rows):
        return DryRun(empty, {}, 0, 0)
    start = 0 if every_node else offset(len(potential_rows))
    order = np.roll(potential_rows, -start)
    wanted = len(order) if every_node else num_candidates(len(order))
    modes = [dry_run_mode(p, pod, table, state) for p in profile.filters]
    mode = max(modes, default=STATIC)
    placed = PlacedPods.of(table)
    budgets_ext = table.extensions.get(Budgets.KEY)
    budgets = budgets_ext if isinstance(budgets_ext, Budgets) else None
    if mode <= COLUMNS:
        chunks = [order]
    else:
        size = max(1, wanted) if mode == NODE_LOCAL else 1
        chunks = [order[i:i + size] for i in range(0, len(order), size)]
    found: list[tuple[int, Candidates]] = []  # (visit position, candidates of a chunk)
    failed: dict[int, list[str]] = {}
    visited = 0
    good = bad = 0
    rank_of = np.empty(n, np.intp)
    rank_of[order] = np.arange(len(order))
    for chunk in chunks:
        on = np.zeros(n, np.bool_)
        on[chunk] = True
        v = _potential_victims(placed, table, pod, on, budgets, now)
        for row in chunk[~np.isin(chunk, v.group_nodes)]:
            failed[int(row)] = [NO_VICTIMS]
        if len(v.group_nodes):
            outcome = (_columns_dry_run(profile, pod, table, state, v, placed, modes) if mode <= COLUMNS
                       else _table_dry_run(profile, pod, table, state, v, placed))
            failed.update(outcome.failed)
            got = _candidates(v, outcome, placed, names, failed)
            found.append((0, got))
            good += int(np.count_nonzero(got.pdb_violations == 0))
            bad += int(np.count_nonzero(got.pdb_violations > 0))
        visited += len(chunk)
        if not every_node and good > 0 and good + bad >= wanted:
            break
    every = _concat(found, empty)
    # In visiting order, stop where upstream's search would have stopped.
    visit = every.take(np.argsort(rank_of[every.rows], kind="stable"))
    if not every_node:
        ok = visit.pdb_violations == 0
        n_good = np.cumsum(ok)
        n_all = np.arange(1, len(visit) + 1)
        done = np.flatnonzero((n_good > 0) & (n_all >= wanted))
        if len(done):
            cut = int(done[0]) + 1
            visit = visit.take(np.arange(cut))
            visited = int(rank_of[visit.rows[-1]]) + 1
            failed = {r: m for r, m in failed.items() if rank_of[r] < visited}
    ok = visit.pdb_violations == 0
    ordered = visit.take(np.concatenate((np.flatnonzero(ok), np.flatnonzero(~ok))))
    return DryRun(ordered, failed, len(potential_rows), visited)


def _candidates(v: _Victims, outcome: _Outcome, placed: PlacedPods, names: Sequence[str],
                failed: dict[int, list[str]]) -> Candidates:
    chosen = outcome.victim & outcome.fits[v.group]
    per_group = np.bincount(v.group[chosen], minlength=len(v.groups))
    keep = outcome.fits & (per_group > 0)
    for g in np.flatnonzero(outcome.fits & (per_group == 0)):
        row = int(v.group_nodes[g])
        failed[row] = [f"expected at least one victim pod on node {names[row]!r}"]
    cg = np.flatnonzero(keep)
    idx = v.idx[chosen]
    prio = v.priority[chosen]
    # Victims keep importance order within their node: each candidate's run starts with its
    # most important (highest-priority) victim.
    g_of = v.group[chosen]
    first = (np.flatnonzero(np.concatenate(([True], g_of[1:] != g_of[:-1]))) if len(g_of)
             else np.zeros(0, np.intp))
    cnt = np.diff(np.append(first, len(idx))).astype(np.int64)
    if len(first):
        viol = np.add.reduceat(v.violating[chosen].astype(np.int64), first)
        psum = np.add.reduceat(prio + _PRIORITY_SHIFT, first)
        highest = prio[first]
        top = prio == np.repeat(highest, cnt)
        earliest = np.minimum.reduceat(np.where(top, v.start[chosen], np.inf), first)
    else:
        viol = psum = highest = np.zeros(0, np.int64)
        earliest = np.zeros(0, np.float64)
    bounds = np.append(first, len(idx))
    if outcome.infos is None:
        infos, at = placed.infos, idx
    else:
        infos, at = outcome.infos, np.flatnonzero(chosen)
    members = [tuple(infos[int(i)] for i in at[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return Candidates(v.group_nodes[cg], viol, highest, psum, cnt, earliest, members, names)


def _concat(parts: list[tuple[int, Candidates]], empty: Candidates) -> Candidates:
    if not parts:
        return empty
    if len(parts) == 1:
        return parts[0][1]
    cs = [c for _, c in parts]
    return Candidates(np.concatenate([c.rows for c in cs]), np.concatenate([c.pdb_violations for c in cs]),
                      np.concatenate([c.highest for c in cs]), np.concatenate([c.priority_sum for c in cs]),
                      np.concatenate([c.victims for c in cs]), np.concatenate([c.earliest for c in cs]),
                      [m for c in cs for m in c.members], cs[0].names)
