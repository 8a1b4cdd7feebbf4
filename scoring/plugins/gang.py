"""The whole-group fit check: do a PodGroup's pending members fit *at the same time*?

Placing a gang's members one at a time and learning at the last one that the group does
not fit is what makes coscheduling hurt: the members already placed hold their capacity
while they wait at Permit, and other pods starve behind them. vecsched asks first.
``place_group`` places the pending members one after another on the live node table with
the profile's own PreFilter, Filter and Score plugins -- each member sees the ones before
it, exactly as it would if they were assumed -- and then takes every one of them off
again. The table is left as it was; the plan says where each member goes.

The scheduler reserves the members only when the plan holds at least ``need`` of them
(``minMember`` minus the members already bound or assumed): a group that cannot fit
reserves nothing, and one that fits is reserved and bound in one go. The same plan
answers ``vecsched explain`` for a member and places groups in ``vecsched sim``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scoring.framework import Decision, Profile
from scoring.objects import PodInfo
from scoring.plugins.podgroups import PodGroup, PodGroups, group_of
from scoring.table import NodeTable

__all__ = ["GroupPlan", "place_group", "group_need", "pending_members"]


@dataclass(slots=True)
class GroupPlan:
    """Where a group's pending members would go, tried together."""

    group: PodGroup
    assigned: int
    """Members already on a node (bound or assumed) before the plan."""
    need: int
    """Members the plan must place for the group to reach ``minMember`` (at least 1)."""
    decisions: list[Decision] = field(default_factory=list)
    """One per member tried, in order; a member that did not fit has ``node`` None."""

    @property
    def placed(self) -> list[Decision]:
        return [d for d in self.decisions if d.node is not None]

    @property
    def fits(self) -> bool:
        return len(self.placed) >= self.need

    @property
    def failed(self) -> Decision | None:
        """The first member that did not fit (None when every member tried fits)."""
        return next((d for d in self.decisions if d.node is None), None)

    @property
    def message(self) -> str:
        """Why the group cannot be placed ("" when it can)."""
        if self.fits:
            return ""
        failed = self.failed
        why = f" {failed.pod.name}: {failed.message}" if failed is not None else ""
        return (f"pod group {self.group.key}: {len(self.placed)} of the {self.need} members it needs "
                f"fit at once (minMember {self.group.min_member}, {self.assigned} already placed);{why}")

    def nodes(self) -> dict[str, str | None]:
        """Member key -> its node in the plan (None when it did not fit)."""
        return {d.pod.key: d.node for d in self.decisions}


def group_need(group: PodGroup, table: NodeTable) -> tuple[int, int]:
    """(members already assigned, members still needed now -- at least 1)."""
    assigned = PodGroups.of(table).assigned(group.key)
    return assigned, max(1, group.min_member - assigned)


def pending_members(pod: PodInfo, candidates: Sequence[PodInfo]) -> list[PodInfo]:
    """``pod`` first, then the other pods of its group among ``candidates``, by name."""
    key = group_of(pod)
    others = sorted((p for p in candidates if p.key != pod.key and group_of(p) == key), key=lambda p: p.key)
    return [pod, *others]


def _keep_only_the_choice(d: Decision, table: NodeTable) -> None:
    """Drop a planned member's per-node scores (a few hundred KB at 5,000 nodes, megabytes
    over a large group), keeping its chosen row and best total: all the live scheduler
    reads of it. ``explain`` asks for every candidate and keeps them."""
    row = table.index[str(d.node)]
    best = d.best_total
    d.scores = {}
    d.scored = np.array([row], np.intp)
    d.totals = np.array([best if best is not None else 0], np.int64)


def place_group(profile: Profile, group: PodGroup, members: Sequence[PodInfo], table: NodeTable, *,
                all_candidates: bool = False) -> GroupPlan:
    """Place ``members`` (pending pods of ``group``, in order) one after another on ``table``
    with ``profile``, then take them off again. PostFilter plugins do not run: a member
    that fits nowhere is only reported. Stops once the members left cannot make up the
    number needed."""
    assigned, need = group_need(group, table)
    plan = GroupPlan(group, assigned, need)
    trial: list[str] = []
    try:
        for i, pod in enumerate(members):
            d = profile.schedule(pod, table, post_filter=False, all_candidates=all_candidates)
            plan.decisions.append(d)
            if d.node is not None:
                table.add_pod(d.assumed_pod(), d.node)
                trial.append(pod.key)
                if not all_candidates:
                    _keep_only_the_choice(d, table)
            elif len(trial) + len(members) - i - 1 < need:
                break
    finally:
        for key in reversed(trial):
            table.remove_pod(key)
    return plan
