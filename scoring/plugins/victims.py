"""The pods preemption may evict, and the nodes where evicting them helps.

``PlacedPods`` keeps every pod placed in the table as rows of arrays, so that the
preemption dry run (``scoring.plugins.preemption``) finds all the pods of lower priority on
all candidate nodes with array operations; ``Candidates`` holds what the dry run
found, and ``pick_one`` is upstream's choice among them (pickOneNodeForPreemption).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from scoring.plugins.budgets import Budgets
from scoring.objects import PodInfo
from scoring.safe_input import is_mapping
from scoring.table import BoolArray, IntArray, NodeTable

__all__ = ["DISRUPTION_TARGET", "PREEMPTION_BY_SCHEDULER", "PRIORITY_SHIFT", "PlacedPods", "Candidate", "Candidates",
           "pick_one", "pod_start_time", "disruption_target", "terminating_by_preemption"]

DISRUPTION_TARGET: Final = "DisruptionTarget"
PREEMPTION_BY_SCHEDULER: Final = "PreemptionByScheduler"
PRIORITY_SHIFT: Final = 2**31
"""Upstream adds MaxInt32+1 to each victim priority before summing, so that all are >= 0."""


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


def disruption_target(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A Pod's ``DisruptionTarget`` condition (the one preemption writes on its victims), or None."""
    status = raw.get("status")
    conditions = status.get("conditions") if is_mapping(status) else None
    for c in conditions if isinstance(conditions, list) else ():
        if is_mapping(c) and c.get("type") == DISRUPTION_TARGET:
            return c
    return None


def terminating_by_preemption(pod: PodInfo) -> bool:
    """Upstream's podTerminatingByPreemption: being deleted, with the DisruptionTarget
    condition True for reason PreemptionByScheduler."""
    meta = pod.raw.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("deletionTimestamp"):
        return False
    c = disruption_target(pod.raw)
    return c is not None and c.get("status") == "True" and c.get("reason") == PREEMPTION_BY_SCHEDULER


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

    def pod_replaced(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        """``NodeTable.replace_pod``: the same charge on the same node, with a new status (the
        kubelet's start time, say) or the bound pod in place of the assumed one."""
        i = self.pos.get(pod.key)
        if i is not None:
            self.infos[i] = pod
            self.start[i] = pod_start_time(pod)

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
    first: IntArray
    """Where each candidate's victims start in ``pods``."""
    pods: list[PodInfo]
    """The victims of all candidates, each candidate's run most important first."""
    names: Sequence[str]

    def __len__(self) -> int:
        return len(self.rows)

    def candidate(self, i: int) -> Candidate:
        a = int(self.first[i])
        return Candidate(self.names[int(self.rows[i])], tuple(self.pods[a:a + int(self.victims[i])]),
                         int(self.pdb_violations[i]))

    def __iter__(self) -> Iterator[Candidate]:
        return (self.candidate(i) for i in range(len(self)))

    def take(self, idx: npt.NDArray[np.intp]) -> Candidates:
        return Candidates(self.rows[idx], self.pdb_violations[idx], self.highest[idx], self.priority_sum[idx],
                          self.victims[idx], self.earliest[idx], self.first[idx], self.pods, self.names)


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
