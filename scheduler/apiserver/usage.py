"""What the simulated nodes' pods use, and the kubelet's resource metrics that report it.

A scheduler that balances load, a descheduler, an autoscaler or a Prometheus
dashboard needs *usage*, not only requests. Real kubelets measure it from
cgroups and serve it at ``/metrics/resource`` (``pkg/kubelet/metrics/
collectors/resource_metrics.go``), which metrics-server and Prometheus
scrape. The simulated kubelets derive it instead:

* a running pod uses the CPU (cores) and memory (bytes) its annotations
  ``vecsched.io/simulated-usage-cpu`` / ``vecsched.io/simulated-usage-memory``
  say (quantities, e.g. ``"1500m"``, ``"2Gi"``), else what its containers
  request times a usage ratio (``vecsched apiserver --simulated-usage-ratio``,
  1 by default); a pod-level annotation is shared among the containers in
  proportion to their requests (evenly when none request anything);
* CPU is integrated over time into the cumulative core-seconds counters
  (node, pod, container); memory is the current working set;
* a node reports the sum over its running pods (its own system daemons use
  nothing here); its counter keeps what finished pods consumed;
* against the node's CPU capacity, the time each of its CPUs was busy and
  idle is integrated too (a node cannot be busier than all its CPUs), which
  ``nodeexporter`` serves as node-exporter's ``node_cpu_seconds_total``.

A restarted container starts a new counter (a new cgroup), as on a real
node; the pod's counter continues. ``resourcemetrics`` serves these numbers
in the kubelet's Prometheus format.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any, Final, NamedTuple

from scoring.quantity import QuantityError, parse_quantity

__all__ = [
    "CPU_ANNOTATION",
    "MEMORY_ANNOTATION",
    "ContainerUsage",
    "PodUsage",
    "NodeUsage",
    "UsageTracker",
    "pod_demand",
    "cpu_utilisation",
    "node_capacity",
    "MAX_USAGE_RATIO",
]

CPU_ANNOTATION: Final = "vecsched.io/simulated-usage-cpu"
MEMORY_ANNOTATION: Final = "vecsched.io/simulated-usage-memory"

MAX_USAGE_RATIO: Final = 10.0
"""The largest usage ratio of requests accepted: enough to simulate pods far above their requests
(an overcommitted node), while a typo such as ``50`` for ``0.5`` is refused."""

Demand = list[tuple[str, float, int]]
"""Per container: (name, CPU cores, memory bytes)."""


class ContainerUsage(NamedTuple):
    name: str
    cpu_cores: float
    memory_bytes: int
    cpu_seconds: float
    """Core-seconds used since this container instance started."""
    start_time: float
    """Epoch seconds the container instance started."""


class PodUsage(NamedTuple):
    namespace: str
    name: str
    cpu_cores: float
    memory_bytes: int
    cpu_seconds: float
    """Core-seconds used since the pod started (across container restarts)."""
    containers: tuple[ContainerUsage, ...]


class NodeUsage(NamedTuple):
    """One node's utilisation at ``timestamp`` (epoch seconds)."""

    node: str
    cpu_cores: float
    memory_bytes: int
    cpu_seconds: float
    """Core-seconds used by every pod that ran on the node since it registered."""
    timestamp: float
    pods: tuple[PodUsage, ...]
    cpu_capacity: float = 0.0
    """The node's CPU capacity in cores (``status.capacity.cpu``)."""
    memory_capacity: int = 0
    """The node's memory capacity in bytes (``status.capacity.memory``)."""
    busy_seconds: float = 0.0
    """Seconds each of the node's CPUs was busy since it registered: the integral of ``cpu_utilisation``."""
    idle_seconds: float = 0.0
    """Seconds each of the node's CPUs was idle since it registered (``busy + idle`` = time registered)."""


def cpu_utilisation(cores: float, capacity: float) -> float:
    """The share of a node's CPU capacity in use, 0..1: ``cores / capacity``, at most 1.

    A node with no CPU capacity is fully busy as soon as anything runs on it.
    """
    if cores <= 0:
        return 0.0
    if capacity <= 0:
        return 1.0
    return min(cores / capacity, 1.0)


def _share(total: Fraction, weights: list[Fraction]) -> list[Fraction]:
    """``total`` split in proportion to ``weights`` (evenly when they are all zero), exactly."""
    s = sum(weights, Fraction(0))
    if s <= 0:
        return [total / len(weights)] * len(weights)
    return [total * w / s for w in weights]


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Fraction:
    """``parse_quantity``, remembered: 50,000 pods share a handful of request strings."""
    return parse_quantity(text)


def _quantity(ann: Mapping[str, Any], key: str, problems: list[str]) -> Fraction | None:
    raw = ann.get(key)
    if raw is None:
        return None
    try:
        q = _parse(str(raw))
    except QuantityError as e:
        problems.append(f"annotation {key}={raw!r} ignored ({e.problem}); using the containers' requests")
        return None
    if q < 0:
        problems.append(f"annotation {key}={raw!r} ignored (negative); using the containers' requests")
        return None
    return q


_ZERO: Final = Fraction(0)


def _request(c: Mapping[str, Any], resource: str) -> Fraction:
    req = ((c.get("resources") or {}).get("requests") or {}).get(resource)
    if req is None:
        return _ZERO
    return _requested(str(req))


@functools.lru_cache(maxsize=4096)
def _requested(text: str) -> Fraction:
    """A container's request for one resource, at least 0 (remembered, as ``_parse``: every pod
    that starts asks it again)."""
    try:
        return max(_parse(text), _ZERO)
    except QuantityError:
        return _ZERO  # admission refuses such pods; a restored one counts as requesting nothing


@functools.lru_cache(maxsize=64)
def _ratio(ratio: float) -> Fraction:
    """The usage ratio as the decimal it was written as (``0.3`` is 3/10, so 100 bytes x 0.3 is 30, not 31)."""
    if not 0 <= ratio <= MAX_USAGE_RATIO:  # also NaN
        raise ValueError(f"usage ratio must be a number in [0, {MAX_USAGE_RATIO:g}], got {ratio}")
    return Fraction(repr(float(ratio)))


def _times(quantities: list[Fraction], ratio: Fraction) -> list[Fraction]:
    """``quantities`` times ``ratio`` (the default ratio 1 spares 50,000 pods the Fraction products)."""
    return quantities if ratio == 1 else [q * ratio for q in quantities]


def node_capacity(node: Mapping[str, Any]) -> tuple[float, int]:
    """A Node's ``status.capacity``: (CPU cores, memory bytes); a missing or malformed entry counts as 0."""
    cap = (node.get("status") or {}).get("capacity") or {}
    out: list[Fraction] = []
    for resource in ("cpu", "memory"):
        try:
            out.append(max(_parse(str(cap.get(resource, "0"))), Fraction(0)))
        except QuantityError:
            out.append(Fraction(0))
    return float(out[0]), math.floor(out[1])


def pod_demand(pod: Mapping[str, Any], *, ratio: float = 1.0) -> tuple[Demand, list[str]]:
    """Per container (name, CPU cores, memory bytes) the running pod uses, and why an annotation was ignored.

    A resource without a usage annotation uses the containers' requests times ``ratio``.
    """
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    if not containers:
        return [], []
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    problems: list[str] = []
    cpu_req = [_request(c, "cpu") for c in containers]
    mem_req = [_request(c, "memory") for c in containers]
    cpu_total = _quantity(ann, CPU_ANNOTATION, problems)
    mem_total = _quantity(ann, MEMORY_ANNOTATION, problems)
    r = _ratio(ratio)
    # An annotation is shared in proportion to the requests themselves (also at ratio 0).
    cpu = _times(cpu_req, r) if cpu_total is None else _share(cpu_total, cpu_req)
    mem = _times(mem_req, r) if mem_total is None else _share(mem_total, mem_req)
    return [(str(c.get("name", "")), float(cpu[i]), math.ceil(mem[i])) for i, c in enumerate(containers)], problems


class _Container:
    __slots__ = ("name", "cpu", "mem", "acc", "start")

    def __init__(self, name: str, cpu: float, mem: int, start: float) -> None:
        self.name, self.cpu, self.mem, self.acc, self.start = name, cpu, mem, 0.0, start


class _Pod:
    __slots__ = ("node", "containers", "acc", "since")

    def __init__(self, node: str, containers: list[_Container], now: float) -> None:
        self.node, self.containers, self.acc, self.since = node, containers, 0.0, now

    @property
    def cpu(self) -> float:
        return sum(c.cpu for c in self.containers)

    @property
    def mem(self) -> int:
        return sum(c.mem for c in self.containers)

    def settle(self, now: float) -> None:
        dt = now - self.since
        for c in self.containers:
            c.acc += c.cpu * dt
        self.acc += self.cpu * dt
        self.since = now


class _Node:
    __slots__ = ("cpu", "mem", "acc", "since", "pods", "cpu_cap", "mem_cap", "busy", "idle")

    def __init__(self, now: float, cpu_cap: float, mem_cap: int) -> None:
        self.cpu, self.mem, self.acc, self.since = 0.0, 0, 0.0, now
        self.cpu_cap, self.mem_cap, self.busy, self.idle = cpu_cap, mem_cap, 0.0, 0.0
        self.pods: dict[tuple[str, str], _Pod] = {}

    def settle(self, now: float) -> None:
        dt = now - self.since
        u = cpu_utilisation(self.cpu, self.cpu_cap)
        self.acc += self.cpu * dt
        # Two integrals rather than idle = elapsed - busy: each only grows, as a counter must,
        # also when float rounding would make the difference shrink by a hair.
        self.busy += u * dt
        self.idle += (1.0 - u) * dt
        self.since = now


class UsageTracker:
    """Per node and pod: current CPU and memory, and CPU integrated into counters.

    The kubelet tells it when containers start, restart and stop (and when a
    pod's usage annotations change); it does no I/O. ``clock`` gives epoch
    seconds (the sample timestamps), so tests can drive it by hand.
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._nodes: dict[str, _Node] = {}
        self._pods: dict[tuple[str, str], _Pod] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._pods

    def add_node(self, name: str, *, cpu_capacity: float = 0.0, memory_capacity: int = 0) -> None:
        """A node registered now, with its capacity (CPU cores, memory bytes); a known node is left as it is."""
        if name not in self._nodes:
            self._nodes[name] = _Node(self.clock(), cpu_capacity, memory_capacity)

    def set_capacity(self, name: str, *, cpu_capacity: float, memory_capacity: int) -> None:
        """The node's capacity changed now (its status was updated)."""
        n = self._nodes.get(name)
        if n is None or (n.cpu_cap, n.mem_cap) == (cpu_capacity, memory_capacity):
            return
        n.settle(self.clock())
        n.cpu_cap, n.mem_cap = cpu_capacity, memory_capacity

    def remove_node(self, name: str) -> None:
        node = self._nodes.pop(name, None)
        if node is not None:
            for key in node.pods:
                self._pods.pop(key, None)

    def start(self, key: tuple[str, str], *, node: str, demand: Demand) -> None:
        """The pod's containers started now, using ``demand`` (replaces what was tracked for it)."""
        self.stop(key)
        n = self._nodes.get(node)
        if n is None:
            return  # bound to a node that is not (or no longer) registered: no kubelet measures it
        now = self.clock()
        pod = _Pod(node, [_Container(name, cpu, mem, now) for name, cpu, mem in demand], now)
        n.settle(now)
        n.cpu += pod.cpu
        n.mem += pod.mem
        n.pods[key] = pod
        self._pods[key] = pod

    def restart(self, key: tuple[str, str]) -> None:
        """The pod's containers restarted now: new container counters, the pod's continues."""
        pod = self._pods.get(key)
        if pod is None:
            return
        now = self.clock()
        pod.settle(now)
        for c in pod.containers:
            c.acc, c.start = 0.0, now

    def update(self, key: tuple[str, str], *, demand: Demand) -> None:
        """The running pod's usage changed now (its annotations were edited)."""
        pod = self._pods.get(key)
        if pod is None:
            return
        now = self.clock()
        n = self._nodes[pod.node]
        n.settle(now)
        pod.settle(now)
        n.cpu -= pod.cpu
        n.mem -= pod.mem
        by_name = {c.name: c for c in pod.containers}
        for name, cpu, mem in demand:
            c = by_name.get(name)
            if c is not None:
                c.cpu, c.mem = cpu, mem
        n.cpu += pod.cpu
        n.mem += pod.mem

    def stop(self, key: tuple[str, str]) -> None:
        """The pod's containers stopped now (terminated or deleted)."""
        pod = self._pods.pop(key, None)
        if pod is None:
            return
        n = self._nodes.get(pod.node)
        if n is None:
            return
        n.settle(self.clock())
        n.cpu -= pod.cpu
        n.mem -= pod.mem
        if not n.pods.pop(key, None) or not n.pods:
            n.cpu, n.mem = 0.0, 0  # no drift from float sums once the node is empty

    def snapshot(self, nodes: Iterable[str] | None = None) -> dict[str, NodeUsage]:
        """Usage of ``nodes`` (every tracked node by default) as of now."""
        now = self.clock()
        out = {}
        for name in self._nodes if nodes is None else nodes:
            n = self._nodes.get(name)
            if n is None:
                continue
            pods = []
            for (ns, pod_name), p in sorted(n.pods.items()):
                dt = now - p.since
                containers = tuple(ContainerUsage(name=c.name, cpu_cores=c.cpu, memory_bytes=c.mem,
                                                  cpu_seconds=c.acc + c.cpu * dt, start_time=c.start)
                                   for c in p.containers)
                pods.append(PodUsage(namespace=ns, name=pod_name, cpu_cores=p.cpu, memory_bytes=p.mem,
                                     cpu_seconds=p.acc + p.cpu * dt, containers=containers))
            dt = now - n.since
            u = cpu_utilisation(n.cpu, n.cpu_cap)
            out[name] = NodeUsage(node=name, cpu_cores=n.cpu, memory_bytes=n.mem,
                                  cpu_seconds=n.acc + n.cpu * dt, timestamp=now, pods=tuple(pods),
                                  cpu_capacity=n.cpu_cap, memory_capacity=n.mem_cap,
                                  busy_seconds=n.busy + u * dt, idle_seconds=n.idle + (1.0 - u) * dt)
        return out
