"""Measured node load, kept beside the node table for the load-aware plugins.

``TargetLoadPacking``, ``LoadVariationRiskBalancing`` and ``LoadAware`` score nodes
by what they use, read from one sample of node metrics (load-watcher's
``WatcherMetrics``, see ``scoring.load``) that ``vecsched run`` refreshes in the
background and ``explain``/``sim`` read from a file. ``LoadMetrics`` is that sample
as a table extension: per-row arrays aligned to the table's nodes (realigned when
nodes come, go or move), so a decision reads them with a slice and never walks the
nodes or the sample in Python.

Metrics lag behind placements: a pod bound a moment ago does not show in the
sample yet. Like scheduler-plugins' ``PodAssignEventHandler``, ``LoadMetrics``
records when each pod was placed and counts a pod as *recent* -- its predicted
usage added on top of the measured one -- when that time (whole seconds) is after
the sample's window end, or less than ``METRICS_AGENT_REPORTING_INTERVAL_SECONDS``
before it. The sums per node are kept as pods come and go, one array per way of
predicting a pod's usage (``recent_usage``), and pruned when a newer sample makes
entries irrelevant.

Two choices differ from upstream on purpose:

- A pod's time is its ``PodScheduled`` condition's ``lastTransitionTime`` when the
  condition is ``True``, not the moment the pod reached the scheduler: after a
  restart the informer re-adds every pod, and upstream then counts them all as
  just bound for a minute (every node looks busier by all of its pods' predicted
  usage). A pod without that condition (assumed by vecsched, or from a file) gets
  ``clock()``. A pod taken off a node and put back on the same node keeps its time:
  an update, the preemption dry run giving victims back, a nominated pod counted
  for a moment, a binding that failed and was retried on the same node. Pods
  already on the table when the extension is created (a snapshot's, for
  ``explain``) and without that condition are taken as measured by any sample.
- Upstream's cleanup drops entries one to six minutes after they were added,
  whatever the metrics' age. vecsched keeps counting a pod as long as it counts
  under the window rule: during a metrics outage the sample in use stays old, and
  every pod bound since it was taken keeps being counted, so a stale sample does
  not make recently filled nodes look empty.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from scoring.load import AVERAGE, CPU as CPU_METRIC, LATEST, MEMORY as MEMORY_METRIC, STD, Metric, WatcherMetrics
from scoring.objects import CPU, MEMORY, PodInfo
from scoring.plugins.podgroups import parse_time
from scoring.quantity import QuantityError, milli_value, value
from scoring.table import BoolArray, NodeTable

__all__ = [
    "METRICS_AGENT_REPORTING_INTERVAL_SECONDS",
    "FloatArray",
    "Predictor",
    "ContainerAmounts",
    "LoadMetrics",
    "resource_data",
    "packing_cpu",
    "go_round",
    "go_round_int",
    "container_amounts",
    "overhead_amounts",
    "scheduled_time",
    "PodMemo",
]

METRICS_AGENT_REPORTING_INTERVAL_SECONDS: Final = 60
"""Upstream's metricsAgentReportingIntervalSeconds: how long before the window end a
bound pod may still be missing from the metrics."""
_REMOVED_SLACK: Final = 1024
"""Removed pods remembered beyond as many as are placed (a preemption dry run takes off at most
every placed pod; deleted pods are forgotten oldest first past this)."""
_COMPACT_SLACK: Final = 64
"""Stale heap entries tolerated beyond twice the live ones before the heap is rebuilt
(an empirical guess: rebuilding is O(recent pods), rarely worth it for fewer)."""

FloatArray = npt.NDArray[np.float64]
_V = TypeVar("_V")
Predictor = Callable[[PodInfo], float]
"""A pod's predicted usage of one resource (milli-CPU or bytes), from its spec alone."""


# ---- reading a node's metrics ------------------------------------------------------------------


def resource_data(metrics: Sequence[Metric], resource_type: str) -> tuple[float, float, bool]:
    """Upstream's ``trimaran.GetResourceData``: (average, standard deviation, valid) in percent.

    The last ``AVG`` metric of the type wins; before any ``AVG``, a metric without an
    operator or with ``Latest`` stands in for it (load-watcher's older form); ``STD``
    gives the deviation (0 when absent). Valid when the node has any metric of the type.
    """
    avg = std = 0.0
    avg_found = valid = False
    for m in metrics:
        if m.type != resource_type:
            continue
        if m.operator == AVERAGE:
            avg, avg_found = m.value, True
        elif m.operator == STD:
            std = m.value
        elif m.operator in ("", LATEST) and not avg_found:
            avg = m.value
        valid = True
    return avg, std, valid


def packing_cpu(metrics: Sequence[Metric]) -> float | None:
    """TargetLoadPacking's reading of a node's CPU: the last CPU metric whose operator is
    ``AVG`` or ``Latest`` (upstream's Score loop), None when there is none."""
    found = None
    for m in metrics:
        if m.type == CPU_METRIC and m.operator in (AVERAGE, LATEST):
            found = m.value
    return found


# ---- Go's arithmetic -------------------------------------------------------------------------------


def go_round(x: FloatArray) -> FloatArray:
    """Go's ``math.Round`` over an array: half away from zero (numpy's ``round`` is half
    to even). ``x - trunc(x)`` is exact, so 0.49999999999999994 stays 0."""
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.copysign(1.0, x), 0.0)


def go_round_int(x: float) -> int:
    """Go's ``int64(math.Round(x))`` for one finite number."""
    t = math.trunc(x)
    return t + (int(math.copysign(1, x)) if abs(x - t) >= 0.5 else 0)


# ---- what a pod asks for, container by container -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerAmounts:
    """One container's cpu (milli) and memory (bytes) requests and limits, as written:
    a resource is a key only when the container sets it."""

    requests: Mapping[str, int]
    limits: Mapping[str, int]
    restartable: bool = False
    """An init container with ``restartPolicy: Always`` (a sidecar)."""


def _amounts(v: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    if isinstance(v, Mapping):
        for name in (CPU, MEMORY):
            q = v.get(name)
            if q is not None:
                # pod_from_json has validated every quantity of the pod's containers.
                out[name] = milli_value(q) if name == CPU else value(q)
    return out


def _spec(pod: PodInfo) -> Mapping[str, Any]:
    spec = pod.raw.get("spec") if isinstance(pod.raw, Mapping) else None
    return spec if isinstance(spec, Mapping) else {}


def container_amounts(pod: PodInfo, field: str = "containers") -> list[ContainerAmounts]:
    """cpu and memory of each of ``spec.<field>`` (``containers`` or ``initContainers``)."""
    out = []
    for c in _spec(pod).get(field) or ():
        if not isinstance(c, Mapping):
            continue
        res = c.get("resources")
        res = res if isinstance(res, Mapping) else {}
        out.append(ContainerAmounts(_amounts(res.get("requests")), _amounts(res.get("limits")),
                                    c.get("restartPolicy") == "Always"))
    return out


def overhead_amounts(pod: PodInfo) -> dict[str, int]:
    """``spec.overhead``'s cpu (milli) and memory (bytes)."""
    return _amounts(_spec(pod).get("overhead"))


def scheduled_time(pod: PodInfo) -> float | None:
    """When the pod was bound: its ``PodScheduled`` condition's ``lastTransitionTime`` when
    the condition is ``True`` (Unix seconds), else None."""
    status = pod.raw.get("status") if isinstance(pod.raw, Mapping) else None
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for c in conditions if isinstance(conditions, list) else ():
        if isinstance(c, Mapping) and c.get("type") == "PodScheduled" and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


class PodMemo(Generic[_V]):
    """``fn(pod)`` remembered for the last ``size`` pods, by identity.

    A pod's predicted usage is read from its containers on every decision it takes
    part in (as the pod being placed, and as a recent pod when it is assumed); a
    PodInfo never changes, so the value computed for one object holds for it. The
    memo keeps the pods it answers for, so an identity is never reused while cached.
    """

    def __init__(self, fn: Callable[[PodInfo], _V], *, size: int = 1024) -> None:
        self.fn = fn
        self.size = size
        self._values: dict[int, tuple[PodInfo, _V]] = {}

    def __call__(self, pod: PodInfo) -> _V:
        got = self._values.get(id(pod))
        if got is not None and got[0] is pod:
            return got[1]
        value = self.fn(pod)
        if len(self._values) >= self.size:
            del self._values[next(iter(self._values))]
        self._values[id(pod)] = (pod, value)
        return value


# ---- the extension ---------------------------------------------------------------------------------


def _counts(when: float, horizon: float) -> bool:
    """Upstream's window rule: a pod placed at ``when`` is not in a sample whose window ends
    at ``end`` when its whole seconds are after ``end - 60`` (``horizon``)."""
    return when != -math.inf and math.floor(when) > horizon


class LoadMetrics:
    """The table's node-metrics sample and recently placed pods (a table extension and
    listener). Arrays hold at least ``table.n`` rows; read ``[:n]`` or ``[rows]``.

    Set the sample with ``set_sample`` and the clock by assigning ``clock``; both may
    change at any time between decisions.
    """

    KEY: ClassVar[str] = "load-metrics"

    def __init__(self, table: NodeTable, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock: Callable[[], float] = clock
        """Unix seconds: the time given to pods placed without a PodScheduled condition,
        and ``age()``'s now. ``time.time`` unless a caller (sim, tests) sets its own."""
        self.sample: WatcherMetrics | None = None
        """The sample in use; None until the first ``set_sample``."""
        self.version = 0
        """Bumped whenever the per-row metrics or capacities change (a new sample, a node added,
        changed or moved), so that a plugin may keep what it derives from them alone."""
        size = max(table.capacity, 1)
        self.has_metrics: BoolArray = np.zeros(size, np.bool_)
        """The node is in the sample's NodeMetricsMap."""
        self.cpu: FloatArray = np.full(size, np.nan)
        """CPU utilisation in percent (``resource_data``'s average: AVG, else Latest);
        NaN where the node has no CPU metric."""
        self.cpu_std: FloatArray = np.full(size, np.nan)
        """CPU standard deviation in percent (0 without a STD metric); NaN where no CPU metric."""
        self.memory: FloatArray = np.full(size, np.nan)
        """Memory utilisation in percent, as ``cpu``."""
        self.memory_std: FloatArray = np.full(size, np.nan)
        self.cpu_packing: FloatArray = np.full(size, np.nan)
        """TargetLoadPacking's CPU reading (``packing_cpu``); NaN where it finds none."""
        self.cpu_capacity: FloatArray = np.zeros(size)
        """Milli-CPU of ``status.capacity`` -- what the percentages are of. Where the node
        does not report (a readable) capacity, its allocatable stands in."""
        self.memory_capacity: FloatArray = np.zeros(size)
        """Memory bytes of ``status.capacity``, as ``cpu_capacity``."""
        self._times: dict[str, float] = {}
        """Every placed pod's time (Unix seconds; -inf: placed before the extension existed)."""
        self._counted: dict[str, float] = {}
        """The recent pods: key -> time, those with floor(time) > ``_horizon``."""
        self._heap: list[tuple[float, str]] = []
        """(time, key) of recent pods, oldest first; entries of pods since removed are stale."""
        self._horizon: float = math.inf
        """Window end minus the reporting interval; +inf without a sample (nothing counts)."""
        self._predictors: dict[Hashable, tuple[Predictor, FloatArray]] = {}
        self._removed: dict[str, tuple[str, str, float]] = {}
        """Pods taken off a node: key -> (node, uid, time), so that the same pod put back on
        the same node keeps its time; insertion-ordered, the oldest forgotten first."""
        for row in range(table.n):
            self._set_row(row)
        for placed in table.pods.values():
            # Placed before anyone watched (a snapshot's pods): without a binding time they
            # are taken as measured by any sample.
            bound = scheduled_time(placed.pod)
            self._times[placed.pod.key] = -math.inf if bound is None else bound

    @classmethod
    def of(cls, table: NodeTable) -> LoadMetrics:
        """The table's LoadMetrics, created and registered as a listener on first use."""
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, LoadMetrics):
            ext = LoadMetrics(table)
            table.extensions[cls.KEY] = ext
            table.listeners.append(ext)
        return ext

    # ---- the sample ---------------------------------------------------------------------------

    def set_sample(self, wm: WatcherMetrics) -> None:
        """Use ``wm`` from now on (nothing of the previous sample is kept).

        Walks the nodes once to realign the arrays; the recent pods are pruned to the
        new window (or recounted, when its end is earlier than the previous one's).
        """
        self.sample = wm
        self.version += 1
        for row in range(self.table.n):
            self._set_metrics(row)
        horizon = float(wm.window.end - METRICS_AGENT_REPORTING_INTERVAL_SECONDS)
        if horizon < self._horizon:
            self._recount(horizon)
        else:
            self._prune(horizon)

    def age(self) -> float | None:
        """Seconds since the sample in use was taken (``clock() - timestamp``); None without one."""
        return None if self.sample is None else self.clock() - self.sample.timestamp

    # ---- recent pods --------------------------------------------------------------------------------

    def recent_usage(self, key: Hashable, predict: Predictor) -> FloatArray:
        """Per row: the sum of ``predict(pod)`` over the node's recent pods (those the
        sample may not show yet). ``key`` names the predictor (a plugin and its args):
        the first call sums the recent pods once, later ones return the sums kept since.
        The array is the extension's own: read it, never write it, and ask again after the
        table changes (growing the table replaces it)."""
        got = self._predictors.get(key)
        if got is None:
            sums = np.zeros(len(self.cpu))
            for k in self._counted:
                placed = self.table.pods[k]
                sums[self.table.index[placed.node]] += predict(placed.pod)
            got = self._predictors[key] = (predict, sums)
        return got[1]

    def placed_at(self, key: str) -> float | None:
        """The time recorded for the placed pod ``key`` (Unix seconds; -inf when it was on the
        table before the extension and has no binding time), None if not placed."""
        return self._times.get(key)

    def is_recent(self, key: str) -> bool:
        """Whether the placed pod ``key`` is counted on top of the sample."""
        return key in self._counted

    def _count(self, key: str, when: float, pod: PodInfo, row: int) -> None:
        self._counted[key] = when
        heapq.heappush(self._heap, (when, key))
        for predict, sums in self._predictors.values():
            sums[row] += predict(pod)
        if len(self._heap) > 2 * len(self._counted) + _COMPACT_SLACK:
            self._heap = [(t, k) for k, t in self._counted.items()]
            heapq.heapify(self._heap)

    def _uncount(self, pod: PodInfo, row: int) -> None:
        for predict, sums in self._predictors.values():
            sums[row] -= predict(pod)

    def _prune(self, horizon: float) -> None:
        self._horizon = horizon
        heap = self._heap
        while heap and not _counts(heap[0][0], horizon):
            when, key = heapq.heappop(heap)
            if self._counted.get(key) == when:
                del self._counted[key]
                placed = self.table.pods[key]
                self._uncount(placed.pod, self.table.index[placed.node])

    def _recount(self, horizon: float) -> None:
        self._horizon = horizon
        self._counted.clear()
        self._heap = []
        for _, sums in self._predictors.values():
            sums[:] = 0.0
        for key, when in self._times.items():
            if _counts(when, horizon):
                placed = self.table.pods[key]
                self._count(key, when, placed.pod, self.table.index[placed.node])

    def _placed_time(self, pod: PodInfo, node: str) -> float:
        bound = scheduled_time(pod)
        if bound is not None:
            return bound
        removed = self._removed.pop(pod.key, None)
        if removed is not None and removed[:2] == (node, pod.uid):
            return removed[2]  # put back where it was: an update, a preemption dry run
        return self.clock()

    # ---- rows -------------------------------------------------------------------------------------------

    def _arrays(self) -> list[np.ndarray]:
        return [self.has_metrics, self.cpu, self.cpu_std, self.memory, self.memory_std, self.cpu_packing,
                self.cpu_capacity, self.memory_capacity, *(sums for _, sums in self._predictors.values())]

    def _grow(self, size: int) -> None:
        def grow(a: np.ndarray, fill: Any) -> Any:
            out = np.full(size, fill, a.dtype)
            out[: len(a)] = a
            return out
        self.has_metrics = grow(self.has_metrics, False)
        self.cpu, self.cpu_std = grow(self.cpu, np.nan), grow(self.cpu_std, np.nan)
        self.memory, self.memory_std = grow(self.memory, np.nan), grow(self.memory_std, np.nan)
        self.cpu_packing = grow(self.cpu_packing, np.nan)
        self.cpu_capacity, self.memory_capacity = grow(self.cpu_capacity, 0.0), grow(self.memory_capacity, 0.0)
        for key, (predict, sums) in list(self._predictors.items()):
            self._predictors[key] = (predict, grow(sums, 0.0))

    def _set_row(self, row: int) -> None:
        self.version += 1
        if row >= len(self.cpu):
            self._grow(max(self.table.capacity, row + 1))
        info = self.table.infos[row]
        status = info.raw.get("status") if isinstance(info.raw, Mapping) else None
        capacity = status.get("capacity") if isinstance(status, Mapping) else None
        for resource, out in ((CPU, self.cpu_capacity), (MEMORY, self.memory_capacity)):
            amount = None
            q = capacity.get(resource) if isinstance(capacity, Mapping) else None
            if q is not None:
                try:
                    amount = milli_value(q) if resource == CPU else value(q)
                except QuantityError:
                    amount = None  # (node_from_json reads allocatable only; fall back to it)
            if amount is None:
                amount = int(self.table.allocatable[row, self.table.resource_index[resource]])
            out[row] = float(amount)
        self._set_metrics(row)

    def _set_metrics(self, row: int) -> None:
        metrics = None if self.sample is None else self.sample.nodes.get(self.table.names[row])
        self.has_metrics[row] = metrics is not None
        metrics = metrics or ()
        cpu, cpu_std, cpu_ok = resource_data(metrics, CPU_METRIC)
        mem, mem_std, mem_ok = resource_data(metrics, MEMORY_METRIC)
        self.cpu[row], self.cpu_std[row] = (cpu, cpu_std) if cpu_ok else (np.nan, np.nan)
        self.memory[row], self.memory_std[row] = (mem, mem_std) if mem_ok else (np.nan, np.nan)
        packing = packing_cpu(metrics)
        self.cpu_packing[row] = np.nan if packing is None else packing

    # ---- TableListener ---------------------------------------------------------------------------------

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        when = self._placed_time(pod, table.names[node])
        self._times[pod.key] = when
        if _counts(when, self._horizon):
            self._count(pod.key, when, pod, node)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        when = self._times.pop(pod.key, None)
        if when is not None:
            self._removed[pod.key] = (table.names[node], pod.uid, when)
            if len(self._removed) > len(self._times) + _REMOVED_SLACK:
                del self._removed[next(iter(self._removed))]
        if self._counted.pop(pod.key, None) is not None:
            self._uncount(pod, node)

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        self.version += 1
        for a in self._arrays():
            a[dst] = a[src]

    def node_set(self, table: NodeTable, node: int) -> None:
        self._set_row(node)
        if next(table.node_pods(table.names[node]), None) is None:
            for _, sums in self._predictors.values():
                sums[node] = 0.0  # a new node on a recycled row
