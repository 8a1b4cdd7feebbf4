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
  across a topology domain) gets upstream's node-by-node dry run on the real table --
  on the nodes holding pods such a filter counts (its ``pods_matter``); on the others,
  taking pods away changes none of its counts, so it keeps its verdict there and those
  nodes go one of the cheaper ways above, together.

Every way leaves the table as it found it and gives upstream's answer; tests
compare them with each other, with upstream's cases and with a per-node reference
(``benchmarks/reference/preemption.py``). Candidates are visited from a random
offset and the search stops where upstream's does for ``numCandidates`` (or visits
every node for ``explain``); as in upstream's candidate lists, at most
``numCandidates`` violating and as many non-violating candidates are kept -- none
when it is 0. Victims of one node with equal priority and start time are taken in
pod key order, where upstream leaves them to Go's unstable sort.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.framework import CycleState, DryRunFilter, Profile, Reason, Remaining
from scoring.nominations import Nominations
from scoring.plugins.budgets import Budgets
from scoring.objects import PodInfo
from scoring.table import BoolArray, IntArray, NodeTable
from scoring.plugins.victims import PRIORITY_SHIFT, Candidates, PlacedPods

__all__ = ["NO_VICTIMS", "NOT_HELPFUL", "STATIC", "COLUMNS", "NODE_LOCAL", "GLOBAL", "DryRun", "find_candidates",
           "dry_run_mode"]

NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"

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


def _break_ties(placed: PlacedPods, idx: npt.NDArray[np.intp], node: npt.NDArray[np.intp], prio: IntArray,
                start: npt.NDArray[np.float64]) -> npt.NDArray[np.intp] | None:
    """The order that puts victims of one node with equal priority and start time (sorted
    next to each other) in pod key order, or None when there are no such ties. Upstream
    leaves their order to Go's unstable sort; a fixed one makes decisions reproducible.
    Only the tied pods' keys are read."""
    if len(idx) < 2:
        return None
    tie = (node[1:] == node[:-1]) & (prio[1:] == prio[:-1]) & (start[1:] == start[:-1])
    if not tie.any():
        return None
    tied = np.zeros(len(idx), np.bool_)
    tied[1:] |= tie
    tied[:-1] |= tie
    pos = np.flatnonzero(tied)
    infos = placed.infos
    keys = np.array([infos[i].key for i in idx[pos].tolist()], dtype=object)
    rank = np.argsort(np.argsort(keys, kind="stable"), kind="stable")
    # Reorder each run of tied victims by key, leaving everything else where it is.
    run_start = np.ones(len(pos), np.bool_)
    run_start[1:] = ~tie[pos[1:] - 1]
    order = np.arange(len(idx))
    order[pos] = pos[np.lexsort((rank, np.cumsum(run_start)))]
    return order


def _potential_victims(placed: PlacedPods, table: NodeTable, pod: PodInfo, on: BoolArray, budgets: Budgets | None,
                       now: float) -> _Victims:
    m = placed.count
    node_all = placed.node[:m]
    idx = np.flatnonzero((placed.priority[:m] < pod.priority) & on[node_all])
    node, prio = node_all[idx], placed.priority[idx]
    start = placed.start[idx]
    start = np.where(np.isnan(start), now, start)
    # By node, then priority descending, then start: a stable sort on start, then one on
    # an integer key of node and priority (np.lexsort is several times slower here).
    by_start = np.argsort(start, kind="stable")
    key = (node[by_start].astype(np.int64) << 33) + (PRIORITY_SHIFT - 1 - prio[by_start])
    order = by_start[np.argsort(key, kind="stable")]
    idx, node, prio, start = idx[order], node[order], prio[order], start[order]
    tied = _break_ties(placed, idx, node, prio, start)
    if tied is not None:
        idx, node, prio, start = idx[tied], node[tied], prio[tied], start[tied]
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
    rep = np.argsort((node.astype(np.int64) << 1) + ~violating, kind="stable")
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


def _nominated_load(table: NodeTable, pod: PodInfo, rows: npt.NDArray[np.intp]
                    ) -> list[tuple[int, IntArray, list[int]]]:
    """The nominated pods the pod must make room for on ``rows`` (upstream's
    addGENominatedPods: equal or higher priority, not the pod itself, not yet placed),
    as (position in ``rows``, request vector, ``port_counts`` columns). Read before the
    dry run's arrays are sized: a nominated pod may bring a resource or port column the
    table has not seen yet. Resource and port filters are monotone, so charging these
    in the first pass is all upstream's two passes amount to for them."""
    nominations = table.extensions.get(Nominations.KEY)
    if not isinstance(nominations, Nominations) or not nominations.pods:
        return []
    where = {int(r): i for i, r in enumerate(rows)}
    out: list[tuple[int, IntArray, list[int]]] = []
    for other, node in nominations.pods.values():
        if other.priority < pod.priority or other.key == pod.key or other.key in table.pods:
            continue
        i = where.get(table.index.get(node, -1))
        if i is None:
            continue
        vec = table.vector(other.requests)
        vec[table.resource_index["pods"]] = 1
        out.append((i, vec, [table.port_column(hp) for hp in other.host_ports]))
    return out


def _columns_dry_run(profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState, v: _Victims,
                     placed: PlacedPods, modes: Sequence[int]) -> _Outcome:
    """The dry run for filters that are STATIC or COLUMNS: array arithmetic over all nodes."""
    rows = v.group_nodes
    k = len(v.idx)
    nominated = _nominated_load(table, pod, rows)
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
    for at, vec, cols in nominated:
        req[at, : len(vec)] += vec
        for col in cols:
            port_counts[at, col] += 1
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
    empty = Candidates(np.zeros(0, np.intp), none, none, none, none, np.zeros(0, np.float64), none, [], names)
    if not len(potential_rows):
        return DryRun(empty, {}, 0, 0)
    start = 0 if every_node else offset(len(potential_rows))
    order = np.roll(potential_rows, -start)
    wanted = len(order) if every_node else num_candidates(len(order))
    modes = _modes(profile, pod, table, state)
    mode = max(modes, default=STATIC)
    placed = PlacedPods.of(table)
    budgets_ext = table.extensions.get(Budgets.KEY)
    budgets = budgets_ext if isinstance(budgets_ext, Budgets) else None
    found: list[tuple[int, Candidates]] = []  # (visit position, candidates of a chunk)
    failed: dict[int, list[str]] = {}
    rank_of = np.empty(n, np.intp)
    rank_of[order] = np.arange(len(order))

    def run(chunk: npt.NDArray[np.intp], chunk_modes: Sequence[int]) -> Candidates | None:
        on = np.zeros(n, np.bool_)
        on[chunk] = True
        v = _potential_victims(placed, table, pod, on, budgets, now)
        for row in chunk[~np.isin(chunk, v.group_nodes)]:
            failed[int(row)] = [NO_VICTIMS]
        if not len(v.group_nodes):
            return None
        outcome = (_columns_dry_run(profile, pod, table, state, v, placed, chunk_modes)
                   if max(chunk_modes, default=STATIC) <= COLUMNS else _table_dry_run(profile, pod, table, state, v, placed))
        failed.update(outcome.failed)
        got = _candidates(v, outcome, placed, names, failed)
        found.append((0, got))
        return got

    matter = _matter(profile, pod, table, state, modes) if mode == GLOBAL else None
    if matter is not None:
        # Where no pod counts for the filters that look across nodes, taking pods away
        # changes none of their verdicts (exactly as in upstream's per-node dry run): those
        # nodes go the cheaper way, together, up front; the others one by one, in visiting
        # order, until the search may stop.
        bulk = order[~matter[order]]
        good_at = np.zeros(len(order) + 1, np.int64)
        bad_at = np.zeros(len(order) + 1, np.int64)
        got = run(bulk, [STATIC if m == GLOBAL else m for m in modes]) if len(bulk) else None
        if got is not None:
            at = rank_of[got.rows] + 1
            good_at[at[got.pdb_violations == 0]] = 1
            bad_at[at[got.pdb_violations > 0]] = 1
        good_before, bad_before = np.cumsum(good_at), np.cumsum(bad_at)  # candidates at positions < i
        good = bad = 0
        for i in np.flatnonzero(matter[order]).tolist():
            if not every_node and _full(min(int(good_before[i]) + good, wanted),
                                        min(int(bad_before[i]) + bad, wanted), wanted):
                break
            got = run(order[i:i + 1], modes)
            if got is not None:
                good += int(np.count_nonzero(got.pdb_violations == 0))
                bad += int(np.count_nonzero(got.pdb_violations > 0))
    else:
        # Nodes are dry-run ``wanted`` at a time (one at a time where filters look across
        # nodes) until the search may stop, as upstream's search stops at numCandidates.
        size = 1 if mode == GLOBAL else max(1, wanted)
        good = bad = 0
        for i in range(0, len(order), size):
            got = run(order[i:i + size], modes)
            if got is not None:
                good += int(np.count_nonzero(got.pdb_violations == 0))
                bad += int(np.count_nonzero(got.pdb_violations > 0))
            if not every_node and _full(min(good, wanted), min(bad, wanted), wanted):
                break
    visited = len(order)
    every = _concat(found, empty)
    # In visiting order, stop where upstream's search would have stopped: after the
    # candidate that fills its lists. Each list holds at most ``wanted`` candidates
    # (upstream's candidateList drops the rest), so with ``wanted`` 0 none is kept.
    visit = every.take(np.argsort(rank_of[every.rows], kind="stable"))
    ok = visit.pdb_violations == 0
    if not every_node:
        done = np.flatnonzero(_full(np.minimum(np.cumsum(ok), wanted), np.minimum(np.cumsum(~ok), wanted), wanted))
        if len(done):
            cut = int(done[0]) + 1
            visit, ok = visit.take(np.arange(cut)), ok[:cut]
            visited = int(rank_of[visit.rows[-1]]) + 1
            failed = {r: m for r, m in failed.items() if rank_of[r] < visited}
    ordered = visit.take(np.concatenate((np.flatnonzero(ok)[:wanted], np.flatnonzero(~ok)[:wanted])))
    return DryRun(ordered, failed, len(potential_rows), visited)


def _matter(profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState,
            modes: Sequence[int]) -> BoolArray | None:
    """The nodes whose pods count for a filter that looks across nodes (``pods_matter`` of
    each GLOBAL one); None when a filter cannot say, or nominated pods the preemptor must
    make room for would have to be counted too (then every node is dry-run on its own)."""
    noms = table.extensions.get(Nominations.KEY)
    if isinstance(noms, Nominations) and any(o.priority >= pod.priority and o.key != pod.key
                                             for o, _ in noms.pods.values()):
        return None
    out = np.zeros(table.n, np.bool_)
    for plugin, m in zip(profile.filters, modes):
        if m != GLOBAL:
            continue
        matter = getattr(_inner(plugin), "pods_matter", None)
        if matter is None:
            return None
        out |= matter(pod, table, state)
    return out


def _full(good: Any, bad: Any, wanted: int) -> Any:
    """DryRunPreemption's stop rule over the (capped) sizes of its two candidate lists:
    a candidate that violates no budget, and ``wanted`` in all."""
    return (good > 0) & (good + bad >= wanted)


def _modes(profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState) -> list[int]:
    """``dry_run_mode`` of each filter, asked with the nominated pods the pod must make
    room for charged to their nodes (as the dry run's filters see them): a filter such
    as inter-pod affinity can depend on the pods only through a nominated one."""
    nominated = Nominations.of(table).add_to(table, pod) if Nominations.KEY in table.extensions else []
    try:
        return [dry_run_mode(p, pod, table, state) for p in profile.filters]
    finally:
        for key, _ in nominated:
            table.remove_pod(key)


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
        psum = np.add.reduceat(prio + PRIORITY_SHIFT, first)
        highest = prio[first]
        top = prio == np.repeat(highest, cnt)
        earliest = np.minimum.reduceat(np.where(top, v.start[chosen], np.inf), first)
    else:
        viol = psum = highest = np.zeros(0, np.int64)
        earliest = np.zeros(0, np.float64)
    if outcome.infos is None:
        infos, at = placed.infos, idx
    else:
        infos, at = outcome.infos, np.flatnonzero(chosen)
    pods = list(itemgetter(*at.tolist())(infos)) if len(at) > 1 else [infos[i] for i in at.tolist()]
    return Candidates(v.group_nodes[cg], viol, highest, psum, cnt, earliest, first.astype(np.int64), pods, names)


def _concat(parts: list[tuple[int, Candidates]], empty: Candidates) -> Candidates:
    if not parts:
        return empty
    if len(parts) == 1:
        return parts[0][1]
    cs = [c for _, c in parts]
    shift = np.cumsum([0] + [len(c.pods) for c in cs[:-1]])
    return Candidates(np.concatenate([c.rows for c in cs]), np.concatenate([c.pdb_violations for c in cs]),
                      np.concatenate([c.highest for c in cs]), np.concatenate([c.priority_sum for c in cs]),
                      np.concatenate([c.victims for c in cs]), np.concatenate([c.earliest for c in cs]),
                      np.concatenate([c.first + s for c, s in zip(cs, shift)]), [p for c in cs for p in c.pods],
                      cs[0].names)
