"""A per-node reference for DefaultPreemption's decision.

Written the way upstream's Go reads (pkg/scheduler/framework/preemption and
plugins/defaultpreemption): ``PodEligibleToPreemptOthers``; the potential nodes
(status Unschedulable, not UnschedulableAndUnresolvable); ``DryRunPreemption``
visiting them one at a time from ``offset`` and stopping as upstream's
``candidateList``s fill; ``SelectVictimsOnNode`` for each -- remove every pod of
lower priority, check the pod fits, give pods back (the PDB-violating ones first,
each group from the most important down) while it still fits --;
``filterPodsWithPDBViolation``; and ``pickOneNodeForPreemption``.

"Fits" is the profile's own Filter plugins with the nominated pods
(``Profile.filter_with_nominated``), run on the real table from which the node's
victims have been removed for the moment -- the filters that look across a
topology domain then see the rest of the cluster as it is -- and every pod is
given back before the function returns. Nothing of ``scoring.plugins.preemption``'s
vectorised dry run is used; only the table, the profile and the ``Budgets``
extension (the cluster's PodDisruptionBudgets) are read.

Where upstream leaves an order unspecified (victims of equal priority and start
time, sorted with Go's unstable ``sort.Slice``) both this reference and vecsched
order by pod key, so that the two can be compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import numpy as np

from scoring.framework import CycleState, Profile, Reason
from scoring.nominations import nominated_node
from scoring.objects import PodInfo
from scoring.plugins.budgets import Budget, Budgets
from scoring.table import NodeTable

__all__ = ["preempt_per_node"]

_MAX_INT32 = 2**31 - 1


def _start_time(pod: PodInfo, now: float) -> float:
    """util.GetPodStartTime: ``status.startTime``, or now when the pod has none."""
    status = pod.raw.get("status")
    raw = status.get("startTime") if isinstance(status, Mapping) else None
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw).timestamp()
        except ValueError:
            pass
    return now


def _importance(pod: PodInfo, now: float) -> tuple[int, float, str]:
    """util.MoreImportantPod as a sort key (most important first): higher priority,
    then earlier start; ties by pod key."""
    return (-pod.priority, _start_time(pod, now), pod.key)


def _terminating_by_preemption(p: PodInfo) -> bool:
    meta = p.raw.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("deletionTimestamp") is None:
        return False
    status = p.raw.get("status")
    for c in (status.get("conditions") or []) if isinstance(status, Mapping) else []:
        if isinstance(c, Mapping) and c.get("type") == "DisruptionTarget":
            return bool(c.get("status") == "True" and c.get("reason") == "PreemptionByScheduler")
    return False


def _eligible(pod: PodInfo, table: NodeTable, unresolvable: set[str]) -> bool:
    """PodEligibleToPreemptOthers."""
    spec = pod.raw.get("spec")
    if isinstance(spec, Mapping) and spec.get("preemptionPolicy") == "Never":
        return False
    nominated = nominated_node(pod, table)
    if nominated:
        if nominated in unresolvable or nominated not in table.index:
            return True  # a node the filters call unresolvable (or absent): preempt again
        for p in table.node_pods(nominated):
            if p.priority < pod.priority and _terminating_by_preemption(p):
                return False
    return True


def _pdb_matches(pdb: Budget, pod: PodInfo) -> bool:
    if not pod.labels or pdb.namespace != pod.namespace:
        return False
    if pdb.selector is None:  # nil, empty or invalid: matches nothing
        return False
    return pdb.selector.matches(pod.labels)


def _filter_pods_with_pdb_violation(pods: Sequence[PodInfo], pdbs: Sequence[Budget]
                                    ) -> tuple[list[PodInfo], list[PodInfo]]:
    """filterPodsWithPDBViolation: (violating, non-violating), each in the given order."""
    allowed = [pdb.allowed for pdb in pdbs]
    violating: list[PodInfo] = []
    non_violating: list[PodInfo] = []
    for pod in pods:
        violated = False
        for i, pdb in enumerate(pdbs):
            if not _pdb_matches(pdb, pod):
                continue
            if pod.name in pdb.disrupted:
                continue  # already processed by the API server
            allowed[i] -= 1
            if allowed[i] < 0:
                violated = True
        (violating if violated else non_violating).append(pod)
    return violating, non_violating


class _Fits:
    """RunFilterPluginsWithNominatedPods for one node of the table as it is now."""

    def __init__(self, profile: Profile, pod: PodInfo, table: NodeTable, state: CycleState) -> None:
        self.profile, self.pod, self.table, self.state = profile, pod, table, state

    def __call__(self, row: int) -> tuple[bool, list[str]]:
        feasible = np.zeros(self.table.n, np.bool_)
        feasible[row] = True
        reasons: list[Reason] = self.profile.filter_with_nominated(self.pod, self.table, self.state, feasible, [])
        return bool(feasible[row]), [r.message for r in reasons if r.nodes[row]]


def _select_victims_on_node(fits: _Fits, pod: PodInfo, table: NodeTable, row: int, pdbs: Sequence[Budget],
                            now: float) -> tuple[list[PodInfo], int, list[str]]:
    """SelectVictimsOnNode: (victims most important first, PDB violations, failure reasons)."""
    node = table.names[row]
    potential = [p for p in table.node_pods(node) if p.priority < pod.priority]
    if not potential:
        return [], 0, ["No preemption victims found for incoming pod"]
    out_of_table: dict[str, PodInfo] = {}

    def remove(p: PodInfo) -> None:
        table.remove_pod(p.key)
        out_of_table[p.key] = p

    def add(p: PodInfo) -> None:
        table.add_pod(p, node)
        del out_of_table[p.key]

    try:
        for p in potential:
            remove(p)
        ok, why = fits(row)
        if not ok:
            return [], 0, why
        potential.sort(key=lambda p: _importance(p, now))
        violating, non_violating = _filter_pods_with_pdb_violation(potential, pdbs)
        victims: list[PodInfo] = []

        def reprieve(p: PodInfo) -> bool:
            add(p)
            still, _ = fits(row)
            if not still:
                remove(p)
                victims.append(p)
            return still

        violations = 0
        for p in violating:
            if not reprieve(p):
                violations += 1
        for p in non_violating:
            reprieve(p)
        if violating and non_violating:
            victims.sort(key=lambda p: _importance(p, now))
        return victims, violations, []
    finally:
        for p in list(out_of_table.values()):
            add(p)


def _earliest_start_of_highest(victims: Sequence[PodInfo], now: float) -> float:
    """util.GetEarliestPodStartTime."""
    earliest = _start_time(victims[0], now)
    highest = victims[0].priority
    for p in victims:
        if p.priority == highest:
            earliest = min(earliest, _start_time(p, now))
        elif p.priority > highest:
            highest, earliest = p.priority, _start_time(p, now)
    return earliest


def _pick_one_node(candidates: Sequence[tuple[str, list[PodInfo], int]], now: float) -> str | None:
    """pickOneNodeForPreemption: each score in turn keeps the nodes with the highest
    value; the first remaining node wins."""
    if not candidates:
        return None
    by_name = {name: (victims, violations) for name, victims, violations in candidates}
    scores: list[Callable[[str], float]] = [
        lambda n: -by_name[n][1],
        lambda n: -by_name[n][0][0].priority,
        lambda n: -sum(p.priority + _MAX_INT32 + 1 for p in by_name[n][0]),
        lambda n: -len(by_name[n][0]),
        lambda n: _earliest_start_of_highest(by_name[n][0], now),
    ]
    alive = [name for name, _, _ in candidates]
    for f in scores:
        best = max(f(n) for n in alive)
        alive = [n for n in alive if f(n) == best]
        if len(alive) == 1:
            return alive[0]
    return alive[0]


def preempt_per_node(profile: Profile, pod: PodInfo, table: NodeTable, *, offset: int = 0,
                     num_candidates: int | None = None, now: float
                     ) -> tuple[str | None, dict[str, tuple[list[str], int]]]:
    """Upstream's Preempt for ``pod``, node by node: the chosen node (None when there
    is none, the pod fits somewhere already, or it may not preempt) and every
    candidate found, ``{node: (victim keys most important first, PDB violations)}``.
    The dry run starts at the ``offset``-th potential node and stops when upstream's
    would for ``num_candidates`` (None: visit every potential node). Pods without a
    start time count as started at ``now`` (seconds since the epoch)."""
    state: CycleState = {}
    feasible, reasons = profile.run_filters(pod, table, state)
    if feasible.any():
        return None, {}
    statuses: dict[int, bool] = {}  # row -> unresolvable
    for r in reasons:
        for row in map(int, np.flatnonzero(r.nodes)):
            statuses[row] = statuses.get(row, False) or r.unresolvable
    unresolvable = {table.names[row] for row, unres in statuses.items() if unres}
    if not _eligible(pod, table, unresolvable):
        return None, {}
    potential = [row for row in range(table.n) if statuses.get(row) is False]
    if not potential:
        return None, {}
    budgets = table.extensions.get(Budgets.KEY)
    pdbs = list(budgets.items.values()) if isinstance(budgets, Budgets) else []
    wanted = len(potential) if num_candidates is None else num_candidates
    fits = _Fits(profile, pod, table, state)
    non_violating: list[tuple[str, list[PodInfo], int]] = []
    violating: list[tuple[str, list[PodInfo], int]] = []
    for i in range(len(potential)):
        row = potential[(offset + i) % len(potential)]
        victims, violations, _ = _select_victims_on_node(fits, pod, table, row, pdbs, now)
        if not victims:
            continue  # the node's status is recorded upstream; it is not a candidate
        chosen = non_violating if violations == 0 else violating
        if len(chosen) < wanted:  # candidateList.add drops what does not fit its size
            chosen.append((table.names[row], victims, violations))
        if non_violating and len(non_violating) + len(violating) >= wanted:
            break
    candidates = non_violating + violating
    best = _pick_one_node(candidates, now)
    return best, {name: ([p.key for p in victims], violations) for name, victims, violations in candidates}
