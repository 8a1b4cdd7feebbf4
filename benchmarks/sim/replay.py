"""The event-driven replay of one workload through one profile.

Events are pod arrivals and departures in time order; at equal times every
departure comes before any arrival, and arrivals keep their workload order
(FIFO). An arriving pod is decided by ``Profile.schedule`` -- the very code
the live scheduler runs -- on a NodeTable, and assumed with
``NodeTable.add_pod``; a departure is ``NodeTable.remove_pod``. A pod that
fits nowhere on arrival fails; with ``retry`` it waits (FIFO) and is tried
again after every batch of departures, and it fails only if it is still
waiting at the end.

With ``preemption``, a pod that fits nowhere may take the place of pods of lower
priority, as the live scheduler does: when the profile's PostFilter plugins
(DefaultPreemption) return a plan, its victims are removed from the table at
once (their departures are cancelled), and the pod is decided again on the
nominated node alone, as the live scheduler first tries a pod's nominated node
once the victims are gone. Victims are not queued again: a replay has no
controller to recreate them. Every placed pod gets ``status.startTime`` at the
replay's clock (seconds from 1970-01-01), which is what preemption reads to
order victims and candidates. Should the nominated node refuse the pod after all
(it does not when the dry run and the filters agree), the pod is handled as
any pod that fits nowhere, and its victims stay evicted.

Pod groups (gangs; ``benchmarks.sim.gangs`` has the workload forms) are placed as
vecsched places them live: all the members a group needs at once, or none. Members
arrive at their own times; while fewer than ``minMember`` have arrived the group is
not tried (upstream's Coscheduling PreFilter turns its pods away until ``minMember``
pods exist). The arrival that completes ``minMember`` tries the group: ``place_group``
with the strategy's own profile, on a table whose ``PodGroups`` extension holds the
group's PodGroup and every member that arrived (its clock is the replay's). If the plan
fits, every member it placed is placed at that moment, in the plan's order; a member
that did not fit beyond the quorum fails (with ``retry``, it waits as a single pod).
If the plan does not fit, no member is placed: without ``retry`` the group fails, its
members and every later one with it; with ``retry`` it waits as a group in the same
FIFO as single pods, and is tried again after departures and whenever another member
arrives. Members arriving after the group was placed no longer need a quorum: each is
placed on its own, as a single pod. A member that never saw ``minMember`` members
arrive fails when the last pod of the workload has arrived. Departures of members are
any pod's. Group members never preempt and run no PostFilter plugins (vecsched does
not preempt for a gang); single pods keep the behaviour above. A strategy run with
groups off (``gang=False``: the ``<name>:no-gang`` strategies) places members one by
one as independent pods, each where it fits -- its PodGroups are not in the table, so
Coscheduling lets every member through, and members still never preempt -- which is
what ``gpus_held_by_partial_groups`` shows the cost of. A workload without groups
replays the same either way.

What a replay measures, and how, is ``benchmarks.sim.metrics``'s to say.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Final

import numpy as np
import numpy.typing as npt

from benchmarks.sim.gangs import FAILED, GATHERING, PLACED, WAITING, Gang, Gangs
from benchmarks.sim.metrics import (MAX_TYPICAL_SHAPES, TYPICAL_COVERAGE, RunMetrics, cluster_resources, demand,
                                    snapshot, stranded_capacity, typical_shapes)
from benchmarks.sim.model import SimPod
from scoring.framework import CycleState, Decision, NodeSubset, Profile
from scoring.objects import NodeInfo, PodInfo
from scoring.plugins.default_preemption import Preemption
from scoring.plugins.gang import place_group
from scoring.plugins.gpu_state import GPU_MILLI_RESOURCE as GPU
from scoring.plugins.gpu_state import MILLI, NVIDIA_GPU, gpu_table
from scoring.plugins.node_load import LoadMetrics
from scoring.plugins.podgroups import PodGroups
from scoring.load import WatcherMetrics
from scoring.table import NodeTable

# The metrics' names stay importable from here, where they were first defined.
__all__ = [
    "TYPICAL_COVERAGE",
    "MAX_TYPICAL_SHAPES",
    "RunMetrics",
    "cluster_resources",
    "demand",
    "typical_shapes",
    "stranded_capacity",
    "build_table",
    "Event",
    "replay",
    "reseed_plugins",
]


def build_table(nodes: Sequence[NodeInfo]) -> NodeTable:
    """A table of ``nodes``; with GPUs, its GPU state too, which keeps the ``gpu`` columns
    (milli-GPU) whichever plugins run."""
    table = NodeTable(capacity=max(64, len(nodes)))
    for n in nodes:
        table.set_node(n)
    if any(GPU in n.allocatable or n.allocatable.get(NVIDIA_GPU) for n in nodes):
        gpu_table(table)
    return table


def reseed_plugins(profile: Profile, seed: int) -> None:
    """Give every plugin that draws random numbers (``reseed(seed)``) the run seed."""
    for plugin in (*profile.prefilters, *profile.filters, *(p for p, _ in profile.scorers), *profile.postfilters):
        reseed = getattr(plugin, "reseed", None)
        if callable(reseed):
            reseed(seed)


Event = tuple[float, str, str, "str | None"]
"""(time, "place" | "fail" | "depart" | "evict", pod key, node or None), in the order things
happened; a pod placed by preemption has its victims' "evict" events just before its "place"."""


class _NominatedNode:
    """A PreFilter that limits a pod to the node it was nominated to (when ``node`` is
    set): upstream's evaluateNominatedNode, which tries that node alone first."""

    name: Final = "NominatedNode"

    def __init__(self) -> None:
        self.node: str | None = None

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> NodeSubset | None:
        return NodeSubset(frozenset((self.node,))) if self.node else None


def _plan(d: Decision) -> Preemption | None:
    """The preemption plan of a decision that placed nothing, if a PostFilter made one."""
    post = d.post_filter
    if post is None or not post.success or not isinstance(post.detail, Preemption) or not post.detail.node:
        return None
    return post.detail


def _started(pod: PodInfo, now: float) -> PodInfo:
    """``pod`` with ``status.startTime`` at replay time ``now`` (seconds from the epoch)."""
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    status = pod.raw.get("status")
    return replace(pod, raw={**pod.raw, "status": {**(status if isinstance(status, Mapping) else {}), "startTime": stamp}})


def replay(*, nodes: Sequence[NodeInfo], pods: Sequence[SimPod], profile: Profile, retry: bool = False,
           events: list[Event] | None = None,
           fragmentation: Callable[[NodeTable], float] | None = None,
           preemption: bool = False, gang: bool = True, node_metrics: WatcherMetrics | None = None) -> RunMetrics:
    """Replay ``pods`` on a fresh cluster of ``nodes``, in arrival order (ties keep their order).

    ``events``, when given, receives every placement, failure, eviction and departure in order.
    ``fragmentation``, when given and the cluster has a ``gpu`` resource, measures the
    table's GPU fragmentation (milli-GPU) wherever the ``gpu`` allocation curve is sampled.
    ``preemption`` carries out the plans of the profile's PostFilter plugins (see the
    module docstring); without it they are ignored, so a profile for a replay without
    preemption is best built without them (they cost a dry run per failed pod).
    ``gang`` places pod groups together (False: their members one by one).
    ``node_metrics`` is the nodes' measured load when the replay starts, for the load plugins
    (``TargetLoadPacking``, ``LoadVariationRiskBalancing``, ``LoadAware``): it is never
    refreshed, and every pod the replay places counts as placed since it was taken, so a node's
    load is the sample's plus the estimates of the pods placed on it and still there. Its clock
    stands at the sample's time: it never grows stale.
    """
    start = time.perf_counter()
    pods = sorted(pods, key=lambda p: p.arrival)  # stable: FIFO among equal arrival times
    table = build_table(nodes)
    if node_metrics is not None:
        load = LoadMetrics.of(table)
        load.clock = lambda: float(node_metrics.timestamp)
        load.set_sample(node_metrics)
    capacity = cluster_resources(nodes)
    res = list(capacity)
    cols = [table.resource_column(r) for r in res]
    cap = np.array([capacity[r] for r in res], np.float64)
    cap_int = np.array([capacity[r] for r in res], np.int64)  # > 0: cluster_resources keeps only those
    m = RunMetrics(pods=len(pods), capacity=capacity, nodes=len(nodes))
    m.alloc_curve = {r: ({0: 0.0} if pods else {}) for r in res}  # nothing arrived, nothing allocated
    gpu = res.index(GPU) if fragmentation is not None and GPU in res else None
    if gpu is not None and fragmentation is not None:
        m.frag_curve = {GPU: {0: fragmentation(table) * 100.0 / cap[gpu]} if pods else {}}
    allocated = np.zeros(len(res), np.int64)
    arrived = np.zeros(len(res), np.int64)
    reached = np.zeros(len(res), np.int64)  # highest whole percent of arrived demand sampled so far
    departures: list[tuple[float, int, str, npt.NDArray[np.int64]]] = []
    # Pods (arrival index, pod, demand) and, with groups, whole groups waiting to be retried, FIFO.
    waiting: deque[tuple[int, SimPod, npt.NDArray[np.int64]] | Gang] = deque()
    decide_s = 0.0
    seq = 0
    # With preemption: every pod on a node (its departure's seq, or 0 if it never leaves,
    # and its demand), and the departures cancelled by evictions.
    running: dict[str, tuple[int, npt.NDArray[np.int64]]] = {}
    cancelled: set[int] = set()
    preempted = evicted = 0
    # The same plugins, limited to the nominated node when ``pin.node`` is set.
    pin = _NominatedNode()
    pinned = Profile(name=profile.name, prefilters=[*profile.prefilters, pin], filters=profile.filters,
                     scorers=profile.scorers, reservers=profile.reservers,
                     percentage_of_nodes_to_score=profile.percentage_of_nodes_to_score) if preemption else profile
    # Pod groups: their PodGroups in the table's extension (with the groups on), on the replay's clock.
    gangs = Gangs(pods) if any(p.pod_group is not None for p in pods) else None
    groups = PodGroups.of(table) if gangs is not None else None
    clock = [0.0]
    if gangs is not None and groups is not None and gang:
        groups.clock = lambda: clock[0]
        for g in gangs.by_key.values():
            groups.apply(g.obj)

    def vec(pod: PodInfo) -> npt.NDArray[np.int64]:
        return np.array([demand(pod, r) for r in res], np.int64)

    def decide(p: Profile, pod: PodInfo, post_filter: bool = True) -> Decision:
        nonlocal decide_s
        t0 = time.perf_counter()
        d = p.schedule(pod, table, post_filter=post_filter)
        decide_s += time.perf_counter() - t0
        m.decisions += 1
        return d

    def preempt(now: float, sp: SimPod, plan: Preemption) -> Decision:
        """Evict the plan's victims, then decide again on the nominated node."""
        nonlocal allocated, evicted
        for victim in plan.victims:
            node = table.node_of(victim.key)
            gone_seq, gone = running.pop(victim.key)
            if gone_seq:
                cancelled.add(gone_seq)
            table.remove_pod(victim.key)
            allocated = allocated - gone
            evicted += 1
            if events is not None:
                events.append((now, "evict", victim.key, node))
        pin.node = plan.node
        try:
            return decide(pinned, sp.pod)
        finally:
            pin.node = None

    def place(now: float, sp: SimPod, v: npt.NDArray[np.int64], d: Decision) -> None:
        nonlocal seq, allocated
        assert d.node is not None
        if events is not None:
            events.append((now, "place", sp.pod.key, d.node))
        assumed = d.assumed_pod() if hasattr(d, "assumed_pod") else sp.pod
        if preemption:
            assumed = _started(assumed, now)
        table.add_pod(assumed, d.node)
        allocated = allocated + v
        if sp.duration is not None:
            seq += 1
            heapq.heappush(departures, (now + sp.duration, seq, sp.pod.key, v))
        if preemption:
            running[sp.pod.key] = (seq if sp.duration is not None else 0, v)

    def attempt(now: float, sp: SimPod, v: npt.NDArray[np.int64]) -> bool:
        nonlocal preempted
        member = gangs.of(sp) if gangs is not None else None
        if member is None:
            d = decide(profile, sp.pod)
            if d.node is None and preemption and (plan := _plan(d)) is not None:
                d = preempt(now, sp, plan)
                if d.node is not None:
                    preempted += 1
        else:  # a group's member on its own: no PostFilter, so no preemption
            clock[0] = now
            d = decide(profile, sp.pod, post_filter=False)
        if d.node is None:
            if events is not None:
                events.append((now, "fail", sp.pod.key, None))
            return False
        place(now, sp, v, d)
        if member is not None and gangs is not None:
            gangs.note_placed(table, member)
        return True

    def attempt_group(now: float, g: Gang, *, retried: bool) -> bool:
        """Try the group's waiting members together; place them all if the plan fits."""
        nonlocal decide_s
        assert gangs is not None
        clock[0] = now
        t0 = time.perf_counter()
        plan = place_group(profile, g.group, [sp.pod for _, sp, _ in g.pending], table)
        decide_s += time.perf_counter() - t0
        m.decisions += len(plan.decisions)
        if not plan.fits:
            if events is not None:
                events.extend((now, "fail", sp.pod.key, None) for _, sp, _ in g.pending)
            return False
        decided = {d.pod.key: d for d in plan.decisions}
        left = []
        for entry in g.pending:  # in the plan's order, so each member sees the ones before it
            _, sp, v = entry
            d = decided.get(sp.pod.key)
            if d is None or d.node is None:
                left.append(entry)
                continue
            place(now, sp, v, d)
            m.placed += 1
            m.retried_placed += int(retried)
        gangs.note_placed(table, g)
        g.pending, g.state = [], PLACED
        # Members beyond the quorum that fit nowhere now: on their own from here.
        for entry in left:
            if events is not None:
                events.append((now, "fail", entry[1].pod.key, None))
            if retry:
                waiting.append(entry)
            else:
                m.failed += 1
        return True

    def member_arrives(now: float, i: int, sp: SimPod, v: npt.NDArray[np.int64], g: Gang) -> None:
        assert groups is not None
        groups.observe(sp.pod)  # it exists in the API now: Coscheduling's PreFilter counts it
        g.arrived += 1
        if g.state == PLACED:
            single_arrives(now, i, sp, v)
        elif g.state == FAILED:
            if events is not None:
                events.append((now, "fail", sp.pod.key, None))
            m.failed += 1
        else:
            g.pending.append((i, sp, v))
            if g.arrived >= g.group.min_member and not attempt_group(now, g, retried=g.state == WAITING):
                if retry:
                    if g.state == GATHERING:
                        waiting.append(g)
                    g.state = WAITING
                else:
                    m.failed += len(g.pending)
                    g.pending, g.state = [], FAILED

    def single_arrives(now: float, i: int, sp: SimPod, v: npt.NDArray[np.int64]) -> None:
        if attempt(now, sp, v):
            m.placed += 1
        elif retry:
            waiting.append((i, sp, v))
        else:
            m.failed += 1

    def depart_until(t: float, inclusive: bool) -> None:
        nonlocal allocated
        while departures and (departures[0][0] < t or (inclusive and departures[0][0] == t)):
            now = departures[0][0]
            freed = False
            while departures and departures[0][0] == now:  # one batch: everything leaving at `now`
                _, s, key, v = heapq.heappop(departures)
                if s in cancelled:  # evicted before it could leave
                    cancelled.discard(s)
                    continue
                if events is not None:
                    events.append((now, "depart", key, table.node_of(key)))
                table.remove_pod(key)
                running.pop(key, None)
                allocated = allocated - v
                freed = True
            if retry and waiting and freed:
                for _ in range(len(waiting)):
                    entry = waiting.popleft()
                    if isinstance(entry, Gang):
                        # A group placed meanwhile (when a member arrived) leaves the queue.
                        if entry.state == WAITING and not attempt_group(now, entry, retried=True):
                            waiting.append(entry)
                        continue
                    i, sp, v = entry
                    if attempt(now, sp, v):
                        m.placed += 1
                        m.retried_placed += 1
                    else:
                        waiting.append((i, sp, v))

    for i, sp in enumerate(pods):
        # Departures first: everything that leaves at or before this arrival.
        depart_until(sp.arrival, inclusive=True)
        v = vec(sp.pod)
        arrived += v
        member = gangs.of(sp) if gangs is not None and gang else None
        if member is None:
            single_arrives(sp.arrival, i, sp, v)
        else:
            member_arrives(sp.arrival, i, sp, v, member)
        # Sample the allocation curve at every whole percent the arrived demand crossed.
        pct = arrived * 100 // cap_int
        for j in np.flatnonzero(pct > reached):
            ratio = float(allocated[j] * 100.0 / cap[j])
            curve = m.alloc_curve[res[j]]
            for k in range(int(reached[j]) + 1, int(pct[j]) + 1):
                curve[k] = ratio
            if j == gpu and fragmentation is not None:
                frag = fragmentation(table) * 100.0 / cap[j]
                for k in range(int(reached[j]) + 1, int(pct[j]) + 1):
                    m.frag_curve[GPU][k] = frag
            reached[j] = pct[j]
    if gangs is not None:
        # Groups still short of minMember members: none will arrive any more.
        for g in gangs.by_key.values():
            if g.state == GATHERING and g.pending:
                if events is not None:
                    events.extend((pods[-1].arrival, "fail", sp.pod.key, None) for _, sp, _ in g.pending)
                m.failed += len(g.pending)
                g.pending, g.state = [], FAILED
        held = sum(demand(p, GPU) for p in gangs.partial_members(table))
        m.gpus_held_by_partial_groups = held / MILLI
    snapshot(m, table, res, cols, cap, allocated, pods)
    if gpu is not None and fragmentation is not None:
        m.fragmentation = {GPU: fragmentation(table) * 100.0 / cap[gpu]}
    if retry:
        depart_until(float("inf"), inclusive=True)
        m.failed += sum(len(e.pending) if isinstance(e, Gang) else 1 for e in waiting
                        if not isinstance(e, Gang) or e.state == WAITING)
    if gangs is not None:
        m.groups = gangs.counts()
    if preemption:
        m.preemptions, m.evicted = preempted, evicted
    m.decision_us = decide_s / m.decisions * 1e6 if m.decisions else 0.0
    m.seconds = time.perf_counter() - start
    return m
