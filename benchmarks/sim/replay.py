"""The event-driven replay of one workload through one profile, and what it measures.

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

Metrics (all ratios are percentages of the cluster's capacity of a resource,
i.e. the sum of its allocatable over all nodes; resources are those with
capacity, except the ``pods`` slot count):

- ``placed`` / ``failed``: pods that got a node / that never did (an evicted
  pod got one, and counts as placed).
- ``preemptions`` / ``evicted`` (only with ``preemption``): pods placed by
  evicting others / the pods evicted.
- ``alloc_ratio[r]``: allocated (requested by placed pods) amount of r, taken
  right after the last arrival is handled -- the end state of a static
  workload, and the state the last pod saw in a dynamic one.
- ``alloc_curve[r][k]``: the allocation ratio of r at the moment the arrived
  demand of r first reaches k percent of capacity, for each whole k
  (arrived demand = requests of all pods that have arrived so far, placed or
  not). Values past 100% appear when the workload asks for more than fits.
- ``stranded[r]``: free capacity that no *typical* pod can use, at the same
  moment as ``alloc_ratio``. The typical shapes are the workload's most
  frequent request vectors (over the tracked resources), taken in order of
  frequency until they cover ``TYPICAL_COVERAGE`` of its pods, at most
  ``MAX_TYPICAL_SHAPES``. A node is *stranded* when none of those shapes fits
  into its free vector (free amounts of every tracked resource and at least
  one free pod slot); ``stranded[r]`` is the sum of free r over stranded
  nodes. Selectors and taints are ignored: this is about resource shapes.
- ``empty_nodes``: nodes with no pod at that moment.
- ``decision_us``: mean wall time of ``Profile.schedule`` per decision.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmarks.sim.model import SimPod
from scoring.framework import CycleState, Decision, NodeSubset, Profile
from scoring.objects import PODS, NodeInfo, PodInfo
from scoring.plugins.default_preemption import Preemption
from scoring.plugins.gpu_state import GPU_MILLI_RESOURCE as GPU
from scoring.plugins.gpu_state import MILLI, NVIDIA_GPU, gpu_table, request_of
from scoring.table import NodeTable

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

TYPICAL_COVERAGE: Final = 0.9
"""Typical shapes cover this share of the workload's pods (rare outliers are not 'typical')."""
MAX_TYPICAL_SHAPES: Final = 16
"""At most this many typical shapes: enough for realistic request mixes, cheap to test per node."""


@dataclass(slots=True)
class RunMetrics:
    """What one replay measured (see the module docstring for definitions)."""

    pods: int = 0
    placed: int = 0
    failed: int = 0
    retried_placed: int = 0
    capacity: dict[str, int] = field(default_factory=dict)
    alloc_ratio: dict[str, float] = field(default_factory=dict)
    alloc_curve: dict[str, dict[int, float]] = field(default_factory=dict)
    stranded: dict[str, float] = field(default_factory=dict)
    empty_nodes: int = 0
    fragmentation: dict[str, float] = field(default_factory=dict)
    """GPU fragmentation (FGD's measure against the workload's typical pods) after the last
    arrival, in percent of GPU capacity; empty unless the cluster has GPUs."""
    frag_curve: dict[str, dict[int, float]] = field(default_factory=dict)
    """The same, sampled like ``alloc_curve`` at each whole percent of arrived GPU request."""
    nodes: int = 0
    decisions: int = 0
    decision_us: float = 0.0
    seconds: float = 0.0
    preemptions: int | None = None
    """Pods placed by evicting others; None when the replay did not preempt."""
    evicted: int | None = None
    """Pods evicted for them; None when the replay did not preempt."""

    def to_json(self) -> dict[str, Any]:
        out = {
            "pods": self.pods, "placed": self.placed, "failed": self.failed, "retried_placed": self.retried_placed,
            "capacity": self.capacity, "alloc_ratio": self.alloc_ratio,
            "alloc_curve": {r: {str(k): v for k, v in c.items()} for r, c in self.alloc_curve.items()},
            "stranded": self.stranded, "empty_nodes": self.empty_nodes, "nodes": self.nodes,
            "fragmentation": self.fragmentation,
            "frag_curve": {r: {str(k): v for k, v in c.items()} for r, c in self.frag_curve.items()},
            "decisions": self.decisions, "decision_us": self.decision_us, "seconds": self.seconds,
        }
        if self.preemptions is not None:
            out["preemptions"] = self.preemptions
            out["evicted"] = self.evicted
        return out


def demand(pod: PodInfo, resource: str) -> int:
    """What ``pod`` asks of ``resource``: its request, and for the lab's ``gpu`` resource
    (milli-GPU) also a share given by vecsched's GPU annotations or whole ``nvidia.com/gpu``."""
    amount = pod.requests.get(resource)
    if amount is None:
        return request_of(pod).total if resource == GPU else 0
    return amount


def cluster_resources(nodes: Iterable[NodeInfo]) -> dict[str, int]:
    """Total capacity per resource the cluster has (> 0), without ``pods``; cpu, memory first.
    Nodes with ``nvidia.com/gpu`` also count toward ``gpu``, 1,000 milli-GPU each."""
    total: Counter[str] = Counter()
    for n in nodes:
        total.update(n.allocatable)
        if GPU not in n.allocatable and n.allocatable.get(NVIDIA_GPU):
            total[GPU] += n.allocatable[NVIDIA_GPU] * MILLI
    order = ["cpu", "memory"] + sorted(r for r in total if r not in ("cpu", "memory"))
    return {r: int(total[r]) for r in order if total.get(r, 0) > 0 and r != PODS}


def typical_shapes(pods: Sequence[PodInfo], resources: Sequence[str]) -> npt.NDArray[np.int64]:
    """The workload's typical request vectors over ``resources`` (rows), most frequent first."""
    if not pods:
        return np.zeros((0, len(resources)), np.int64)
    counts = Counter(tuple(demand(p, r) for r in resources) for p in pods)
    shapes: list[tuple[int, ...]] = []
    covered = 0
    for shape, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        shapes.append(shape)
        covered += c
        if covered >= TYPICAL_COVERAGE * len(pods) or len(shapes) == MAX_TYPICAL_SHAPES:
            break
    return np.array(shapes, np.int64).reshape(len(shapes), len(resources))


def stranded_capacity(free: npt.NDArray[np.int64], free_slots: npt.NDArray[np.int64],
                      shapes: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(stranded amount per resource, stranded mask per node).

    ``free`` is (nodes x resources), ``free_slots`` the free pod slots per
    node, ``shapes`` (k x resources). A node is stranded when no shape fits:
    ``not any_k(all_r(shape[k, r] <= free[n, r]) and free_slots[n] >= 1)``.
    With no shapes (an empty workload) nothing is stranded.
    """
    if len(shapes) == 0:
        mask = np.zeros(len(free), np.bool_)
    else:
        fits_shape = np.all(shapes[None, :, :] <= free[:, None, :], axis=2)
        fits = np.any(fits_shape, axis=1) & (free_slots >= 1)
        mask = ~fits
    return free[mask].sum(axis=0).astype(np.int64), mask


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
           preemption: bool = False) -> RunMetrics:
    """Replay ``pods`` on a fresh cluster of ``nodes``, in arrival order (ties keep their order).

    ``events``, when given, receives every placement, failure, eviction and departure in order.
    ``fragmentation``, when given and the cluster has a ``gpu`` resource, measures the
    table's GPU fragmentation (milli-GPU) wherever the ``gpu`` allocation curve is sampled.
    ``preemption`` carries out the plans of the profile's PostFilter plugins (see the
    module docstring); without it they are ignored, so a profile for a replay without
    preemption is best built without them (they cost a dry run per failed pod).
    """
    start = time.perf_counter()
    pods = sorted(pods, key=lambda p: p.arrival)  # stable: FIFO among equal arrival times
    table = build_table(nodes)
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
    waiting: deque[tuple[int, SimPod, npt.NDArray[np.int64]]] = deque()
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

    def vec(pod: PodInfo) -> npt.NDArray[np.int64]:
        return np.array([demand(pod, r) for r in res], np.int64)

    def decide(p: Profile, pod: PodInfo) -> Decision:
        nonlocal decide_s
        t0 = time.perf_counter()
        d = p.schedule(pod, table)
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

    def attempt(now: float, sp: SimPod, v: npt.NDArray[np.int64]) -> bool:
        nonlocal seq, allocated, preempted
        d = decide(profile, sp.pod)
        if d.node is None and preemption and (plan := _plan(d)) is not None:
            d = preempt(now, sp, plan)
            if d.node is not None:
                preempted += 1
        if d.node is None:
            if events is not None:
                events.append((now, "fail", sp.pod.key, None))
            return False
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
        return True

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
                    i, sp, v = waiting.popleft()
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
        if attempt(sp.arrival, sp, v):
            m.placed += 1
        elif retry:
            waiting.append((i, sp, v))
        else:
            m.failed += 1
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
    _snapshot(m, table, res, cols, cap, allocated, pods)
    if gpu is not None and fragmentation is not None:
        m.fragmentation = {GPU: fragmentation(table) * 100.0 / cap[gpu]}
    if retry:
        depart_until(float("inf"), inclusive=True)
        m.failed += len(waiting)
    if preemption:
        m.preemptions, m.evicted = preempted, evicted
    m.decision_us = decide_s / m.decisions * 1e6 if m.decisions else 0.0
    m.seconds = time.perf_counter() - start
    return m


def _snapshot(m: RunMetrics, table: NodeTable, res: list[str], cols: list[int], cap: npt.NDArray[np.float64],
              allocated: npt.NDArray[np.int64], pods: Sequence[SimPod]) -> None:
    """Allocation, stranded capacity and empty nodes after the last arrival."""
    n = table.n
    m.alloc_ratio = {r: float(allocated[j] * 100.0 / cap[j]) for j, r in enumerate(res)}
    pods_col = table.resource_index[PODS]
    used_slots = table.requested[:n, pods_col]
    m.empty_nodes = int((used_slots == 0).sum())
    free = table.allocatable[:n][:, cols] - table.requested[:n][:, cols]
    free_slots = table.allocatable[:n, pods_col] - used_slots
    shapes = typical_shapes([p.pod for p in pods], res)
    stranded, _ = stranded_capacity(free, free_slots, shapes)
    m.stranded = {r: float(stranded[j] * 100.0 / cap[j]) for j, r in enumerate(res)}
