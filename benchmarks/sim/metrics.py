"""What a replay of the strategy lab measures, and the arithmetic of it.

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
- ``decision_us``: mean wall time of ``Profile.schedule`` per decision (a group's
  ``place_group`` counts as one decision per member it tried).
- ``groups`` (only when the workload has groups): ``{"total", "placed", "failed"}``,
  groups that had ``minMember`` members on nodes at some moment (placed) and the
  others, at the end of the replay.
- ``gpus_held_by_partial_groups`` (only when the workload has groups): whole GPUs
  (the ``gpu`` resource / 1,000) requested by the pods on nodes, at the moment of
  ``alloc_ratio``, whose group never had ``minMember`` members on nodes: capacity
  held by gangs that cannot run. Placing groups together keeps it at 0 (a group's
  members are placed only once the group reaches ``minMember``); placing members
  one by one does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmarks.sim.model import SimPod
from scoring.objects import PODS, NodeInfo, PodInfo
from scoring.plugins.gpu_state import GPU_MILLI_RESOURCE as GPU
from scoring.plugins.gpu_state import MILLI, NVIDIA_GPU, request_of
from scoring.table import NodeTable

__all__ = [
    "TYPICAL_COVERAGE",
    "MAX_TYPICAL_SHAPES",
    "RunMetrics",
    "cluster_resources",
    "demand",
    "typical_shapes",
    "stranded_capacity",
    "snapshot",
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
    groups: dict[str, int] | None = None
    """``{"total", "placed", "failed"}`` pod groups; None when the workload has none."""
    gpus_held_by_partial_groups: float | None = None
    """Whole GPUs held by members of groups that never reached minMember; None without groups."""

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
        if self.groups is not None:
            out["groups"] = self.groups
            out["gpus_held_by_partial_groups"] = self.gpus_held_by_partial_groups
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


def snapshot(m: RunMetrics, table: NodeTable, res: list[str], cols: list[int], cap: npt.NDArray[np.float64],
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
