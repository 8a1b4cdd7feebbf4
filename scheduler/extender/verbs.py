"""The extender's decisions: filter and prioritize over a NodeTable (preempt: ``scheduler.extender.preempt``).

Each verb runs the profile's plugins over the *whole* table once -- plugins
that count pods across the cluster (PodTopologySpread, InterPodAffinity) need
every node, as upstream's do -- and then reads off the rows of the nodes
kube-scheduler asked about. Names the table does not hold are reported, never
guessed. These functions are synchronous and do no I/O; the server calls
them between awaits, so the informers cannot change the table under them.

``percentageOfNodesToScore`` does not apply here: kube-scheduler has already
chosen which nodes to ask about, and every one of them is answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from scheduler.extender.protocol import extender_scores
from scoring.framework import SKIPPED_SCORES, CycleState, Profile
from scoring.objects import PodInfo
from scoring.table import NodeTable

__all__ = ["NOT_IN_CACHE", "BudgetExceeded", "Deadline", "rows_of", "filter_nodes", "prioritize_nodes"]

NOT_IN_CACHE: Final = "node(s) not yet known to the vecsched extender's cache"
"""The reason for a requested node the cache has not seen: resolvable, since the watch will bring it."""
_NO_REASON: Final = "node(s) didn't pass the vecsched extender's filters"


class BudgetExceeded(TimeoutError):
    """A request ran past its time budget; answered with an error instead of late."""


class Deadline:
    """A request's time budget. Synchronous work cannot be interrupted, so it checks in
    between phases (when the body is read, after filtering, after scoring, per preemption
    candidate).

    ``start`` is when the request arrived (its first byte, on ``clock``), not when its
    handler began: under load a request waits for the event loop before it is handled, and
    kube-scheduler's ``httpTimeout`` runs from when it sent the request, queue included."""

    def __init__(self, budget: float, *, clock: Callable[[], float] = time.monotonic,
                 start: float | None = None) -> None:
        self.budget = budget
        self.clock = clock
        self.start = clock() if start is None else start
        self.end = self.start + budget

    def remaining(self) -> float:
        return max(0.0, self.end - self.clock())

    def check(self, phase: str) -> None:
        if self.clock() > self.end:
            raise BudgetExceeded(f"vecsched extender: request exceeded its {self.budget:g}s budget during {phase}")


def rows_of(table: NodeTable, names: Sequence[str]) -> npt.NDArray[np.intp]:
    """The table row of each name, -1 where the table does not hold it."""
    index = table.index
    return np.fromiter((index.get(n, -1) for n in names), np.intp, count=len(names))


def filter_nodes(*, profile: Profile, pod: PodInfo, table: NodeTable, names: Sequence[str],
                 deadline: Deadline) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(passing names in request order, FailedNodes, FailedAndUnresolvableNodes).

    A node's message is its reasons joined with ", " (upstream's Status.Message); it
    is unresolvable when any of them is (UnschedulableAndUnresolvable).
    """
    rows = rows_of(table, names)
    feasible, reasons = profile.run_filters(pod, table, {})
    deadline.check("filter")
    n = table.n
    asked = np.zeros(n, np.bool_)
    asked[rows[rows >= 0]] = True
    messages: dict[int, list[str]] = {}
    unresolvable = np.zeros(n, np.bool_)
    for r in reasons:
        mask = r.nodes[:n] & asked
        if r.unresolvable:
            unresolvable |= mask
        for row in np.flatnonzero(mask).tolist():
            messages.setdefault(row, []).append(r.message)
    passed: list[str] = []
    failed: dict[str, str] = {}
    hopeless: dict[str, str] = {}
    for name, row in zip(names, rows.tolist()):
        if row < 0:
            failed[name] = NOT_IN_CACHE
        elif feasible[row]:
            passed.append(name)
        else:
            msg = ", ".join(dict.fromkeys(messages.get(row) or [_NO_REASON]))
            (hopeless if unresolvable[row] else failed)[name] = msg
    return passed, failed, hopeless


def prioritize_nodes(*, profile: Profile, pod: PodInfo, table: NodeTable, names: Sequence[str],
                     deadline: Deadline) -> list[int]:
    """An extender priority 0..10 per name (see ``extender_scores``).

    The filters run first (score plugins read what they leave in the cycle state);
    nodes they reject, and names the table does not hold, score 0. ``W`` is the sum
    of the weights of the score plugins that scored this pod: a plugin that skips
    (upstream's PreScore Skip, e.g. NodeAffinity for a pod without preferred terms)
    takes no part, as in kube-scheduler, instead of dragging every node towards 0.
    """
    rows = rows_of(table, names)
    state: CycleState = {}
    feasible, _ = profile.run_filters(pod, table, state)
    ok = rows >= 0
    ok[ok] = feasible[rows[ok]]
    to_score = np.unique(rows[ok])
    out = np.zeros(len(names), np.int64)
    if len(to_score) == 0:
        return out.tolist()
    deadline.check("filter")
    totals, weight_sum = _weighted_totals(profile, pod, table, to_score, state)
    deadline.check("score")
    out[ok] = extender_scores(totals, weight_sum)[np.searchsorted(to_score, rows[ok])]
    return out.tolist()


def _weighted_totals(profile: Profile, pod: PodInfo, table: NodeTable, rows: npt.NDArray[np.intp],
                     state: CycleState) -> tuple[npt.NDArray[np.int64], int]:
    """(weighted totals over ``rows``, sum of the weights of the plugins that scored the pod)."""
    scores = profile.run_scores(pod, table, rows, state)
    skipped = state.get(SKIPPED_SCORES, set())
    weight_sum = sum(w for plugin, w in profile.scorers if plugin.name not in skipped)
    return profile.weighted_total(scores, len(rows)), weight_sum
