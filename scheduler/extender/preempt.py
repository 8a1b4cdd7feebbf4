"""The extender's ``preempt`` verb: kube-scheduler's preemption, held to vecsched's constraints.

When no node fits a pod, kube-scheduler's DefaultPreemption dry-runs its own
filters and proposes, per candidate node, the lower-priority pods to evict
(``NodeNameToVictims``, or ``NodeNameToMetaVictims`` by UID when the extender
is ``nodeCacheCapable``). Before it picks one, it asks every extender with a
``preemptVerb`` (``ProcessPreemption``), and keeps only the nodes and victims
the extender returns: the answer *replaces* its map. It then resolves each
returned UID among the pods it knows on that node (``convertPodUIDToPod``:
an unknown UID fails the whole preemption) and rejects a node with no victims
(``expected at least one victim pod on node``; an ``ignorable`` extender's
such node is only dropped).

What vecsched answers, node by node, each judged on its own with only its own
victims removed from the extender's view of the cluster (the informer-fed cache,
or without API access the nodes of earlier ``Nodes`` requests and the victims
sent in full):

1. **The proposed victims suffice**: the pod passes the profile's filters with
   them gone. The node is returned with exactly the proposed victims, in the
   order sent, and ``NumPDBViolations`` as sent.
2. **They do not**, for a reason preemption can fix (a vecsched-only constraint
   kube-scheduler cannot see -- GpuShare's per-GPU shares are annotations,
   invisible to NodeResourcesFit -- or pods kube-scheduler's cache has not
   caught up with): vecsched's own DefaultPreemption dry run runs on that node
   alone, *starting from* the proposed victims -- they stay evicted -- over the
   node's remaining pods of lower priority: remove them all, check the pod
   fits, give them back PDB-violating first, most important first, keeping each
   whose return still lets the pod fit. The node is returned with the proposed
   victims plus the ones that dry run could not give back, merged most
   important first (kube-scheduler reads the first victim as the highest
   priority one), and ``NumPDBViolations`` = the proposed count + how many added
   victims a PodDisruptionBudget no longer allows once the proposed victims
   have spent their share of it.
3. **Nothing helps**: the filters reject the node unresolvably (taints,
   affinity, too few GPUs at all), no pod of lower priority is left to add, or
   the pod does not fit even with all of them gone -- the node is dropped.

Why a superset, never a different set: kube-scheduler proposed its victims
for *its* filters, some of which vecsched's profile may not run (volume
limits, other extenders' resources), and it will not check again before it
evicts. A set of vecsched's own that left one of them running could satisfy
vecsched and fail kube-scheduler, so the pod would be nominated to a node it
still cannot take, and preempt again. Upstream's contract allows the extender
to return more victims than proposed, so vecsched adds what its own
constraints need and removes nothing.

Also dropped: nodes the extender does not know (it cannot judge them), and
nodes where the pod fits with no victim at all (upstream's dry run never makes
such a node a candidate, and kube-scheduler refuses one). A proposed victim the
extender does not know on that node (kube-scheduler's cache is ahead) is kept
in the answer: kube-scheduler knows it. A victim vecsched adds is a pod of its
cache on that node, so kube-scheduler, watching the same API server, knows it
too (a pod that just left makes kube-scheduler fail that preemption attempt
and retry it).

Step 2 needs the profile's ``DefaultPreemption`` (the default profile has it),
and a pod it finds eligible to preempt (not ``preemptionPolicy: Never``, not
waiting for a victim of its own to terminate: kube-scheduler checks the same
before it asks); otherwise a node gets steps 1 and 3 only. With API
access the extender watches PodDisruptionBudgets (``ClusterView``); without
it, added victims count no violations. Pods kube-scheduler has nominated to a
node are pending, so the extender's view does not hold them; kube-scheduler's
own dry run, which proposed the victims, counted them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from scheduler.extender.protocol import Victims
from scheduler.extender.verbs import Deadline
from scoring.framework import ALL_CANDIDATES, CycleState, Profile, Reason
from scoring.objects import PodInfo
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION
from scoring.plugins.default_preemption import NOW, DefaultPreemption, Preemption
from scoring.plugins.budgets import Budgets
from scoring.plugins.victims import pod_start_time
from scoring.table import NodeTable

__all__ = ["preempt_nodes", "judge_node"]


def preempt_nodes(*, profile: Profile, pod: PodInfo, table: NodeTable, victims: Mapping[str, Victims],
                  deadline: Deadline, now: float | None = None) -> dict[str, Victims]:
    """The answer to an ExtenderPreemptionArgs: each node's victims as vecsched accepts them
    (see the module docstring), nodes that nothing helps left out. ``now`` (seconds since
    the epoch) stands in for a missing pod start time, as upstream's dry run uses the clock."""
    at = time.time() if now is None else now
    plugin = _default_preemption(profile)
    out: dict[str, Victims] = {}
    for node, proposed in victims.items():
        got = judge_node(profile=profile, plugin=plugin, pod=pod, table=table, node=node, proposed=proposed, now=at)
        if got is not None:
            out[node] = got
        deadline.check(f"preemption check of node {node}")
    return out


def judge_node(*, profile: Profile, plugin: DefaultPreemption | None, pod: PodInfo, table: NodeTable, node: str,
               proposed: Victims, now: float) -> Victims | None:
    """One node: the proposed victims, or a superset of them, or None (dropped). The table
    is left as it was found."""
    row = table.index.get(node)
    if row is None:
        return None
    wanted = set(proposed.uids)
    removed = [p for p in list(table.node_pods(node)) if p.uid and p.uid in wanted]
    sent = {p.uid: p for p in proposed.pods}
    for p in removed:
        table.remove_pod(p.key)
        sent[p.uid] = p
    try:
        state: CycleState = {NOW: now, ALL_CANDIDATES: True}
        feasible, reasons = profile.run_filters(pod, table, state)
        if feasible[row]:
            return proposed if proposed.uids else None
        if plugin is None or any(r.unresolvable and r.nodes[row] for r in reasons):
            return None
        with _budgets_spent_by(table, list(sent.values())):
            result = plugin.postfilter(pod, table, state, _only(reasons, row), profile)
        plan = result.detail
        if not result.success or not isinstance(plan, Preemption) or plan.node != node:
            return None
        chosen = next(c for c in plan.candidate_list() if c.node == node)
        return Victims(uids=_merged(proposed.uids, sent, chosen.victims, now),
                       num_pdb_violations=proposed.num_pdb_violations + chosen.pdb_violations)
    finally:
        for p in removed:
            table.add_pod(p, node)


def _default_preemption(profile: Profile) -> DefaultPreemption | None:
    for p in profile.postfilters:
        inner = getattr(p, "inner", p)  # the live scheduler wraps plugins to time them
        if p.name == DEFAULT_PREEMPTION and isinstance(inner, DefaultPreemption):
            return inner
    return None


def _only(reasons: Sequence[Reason], row: int) -> list[Reason]:
    """The filters' reasons for ``row`` alone: the dry run then visits that node only."""
    out = []
    for r in reasons:
        if r.nodes[row]:
            mask = np.zeros_like(r.nodes)
            mask[row] = True
            out.append(Reason(r.message, mask, r.unresolvable))
    return out


@contextmanager
def _budgets_spent_by(table: NodeTable, evicted: Sequence[PodInfo]) -> Iterator[None]:
    """The table's PodDisruptionBudgets as they stand once ``evicted`` are gone: each budget's
    ``disruptionsAllowed`` less the evicted pods it selects (a pod already in its
    ``disruptedPods`` was counted by the API server), as upstream's filterPodsWithPDBViolation
    decrements it. Restored afterwards."""
    budgets = table.extensions.get(Budgets.KEY)
    if not isinstance(budgets, Budgets) or not budgets.items or not evicted:
        yield
        return
    spent = Budgets(items={k: replace(b, allowed=b.allowed - sum(1 for p in evicted
                                                                 if b.selects(p) and p.name not in b.disrupted))
                           for k, b in budgets.items.items()},
                    selector_generation=budgets.selector_generation)  # same selectors: cached matches stay valid
    table.extensions[Budgets.KEY] = spent
    try:
        yield
    finally:
        table.extensions[Budgets.KEY] = budgets


def _importance(pod: PodInfo, now: float) -> tuple[int, float]:
    """Sorts the most important first: higher priority, then earlier start (none: now)."""
    start = pod_start_time(pod)
    return -pod.priority, now if math.isnan(start) else start


def _merged(proposed: Sequence[str], known: Mapping[str, PodInfo], added: Sequence[PodInfo], now: float) -> list[str]:
    """UIDs of the proposed victims (in their order) and the added ones (most important first),
    merged so that the list stays most important first. An added victim goes before the first
    proposed one it outranks; a proposed victim vecsched does not know is never outranked."""
    out: list[str] = []
    queue = list(added)
    for uid in proposed:
        mine = known.get(uid)
        while queue and mine is not None and _importance(queue[0], now) < _importance(mine, now):
            out.append(queue.pop(0).uid)
        out.append(uid)
    out.extend(p.uid for p in queue)
    return out
