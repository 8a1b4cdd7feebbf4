"""Simulated nodes: node shapes, Node objects, and kubelets that start bound pods.

With no real kubelet, a bound Pod would stay Pending forever and nothing
downstream (the demo, readiness checks, tests of the live scheduler) could
observe placement finishing. Each simulated kubelet therefore moves a Pod
bound to its Ready node to ``Running`` after a configurable delay, with the
conditions, IPs and container statuses a real kubelet reports.

The demo binds thousands of pods, so all kubelets share one timer: bound pods
wait in a FIFO (the delay is constant, so due times are ordered) and one
``loop.call_later`` callback starts every pod that is due.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.quantity import QuantityError, parse_quantity

from .objects import now_rfc3339
from .resources import BY_PATH
from .store import Entry, Store

__all__ = ["NodeShape", "build_node", "node_names", "KubeletSim", "set_ready"]

NODES: Final = BY_PATH[("", "v1", "nodes")]
PODS: Final = BY_PATH[("", "v1", "pods")]
_NODE_NAME: Final = PODS.field_index("spec.nodeName")
_PHASE: Final = PODS.field_index("status.phase")
_NOT_READY_TAINTS: Final = (
    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
)


def _check_quantity(text: object, *, what: str) -> None:
    """Refuse a node capacity that no client would accept (``--node-memory 128GB``)."""
    try:
        amount = parse_quantity(text)
    except QuantityError as e:
        raise ValueError(f"{what}: {e}") from None
    if amount < 0:
        raise ValueError(f"{what}: quantity {text!r} must not be negative")


@dataclass(frozen=True)
class NodeShape:
    """``count`` identical nodes; a cluster is a list of shapes (heterogeneous clusters)."""

    count: int = 1
    cpu: str = "32"
    """CPU capacity as a quantity (cores, or millicores with ``m``)."""
    memory: str = "128Gi"
    """Memory capacity as a quantity."""
    pods: int = 110
    """Maximum pods per node (kubelet's ``--max-pods``; upstream default 110)."""
    gpus: int = 0
    """Count of ``gpu_resource`` in capacity; 0 leaves it out."""
    gpu_resource: str = "nvidia.com/gpu"
    ephemeral_storage: str = "100Gi"
    instance_type: str = ""
    """``node.kubernetes.io/instance-type`` label, when set."""
    zones: Sequence[str] = ()
    """``topology.kubernetes.io/zone`` labels, assigned round-robin over this shape's nodes."""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, str]] = ()
    """Node taints, e.g. ``{"key": "gpu", "value": "true", "effect": "NoSchedule"}``."""
    extended: Mapping[str, str] = field(default_factory=dict)
    """Other capacity entries, e.g. ``{"example.com/fpga": "2"}``."""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"NodeShape.count must be >= 0, got {self.count}")
        if self.pods < 0 or self.gpus < 0:
            raise ValueError("NodeShape.pods and NodeShape.gpus must be >= 0")
        _check_quantity(self.cpu, what="node cpu")
        _check_quantity(self.memory, what="node memory")
        _check_quantity(self.ephemeral_storage, what="node ephemeral-storage")
        for k, v in self.extended.items():
            _check_quantity(v, what=f"node resource {k}")
        for t in self.taints:
            if not t.get("key") or t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                raise ValueError(f"invalid taint {dict(t)!r}: needs a key and effect NoSchedule, PreferNoSchedule or NoExecute")


def node_names(count: int, *, start: int = 0) -> list[str]:
    return [f"node-{i:04d}" for i in range(start, start + count)]


def _host_ip(index: int) -> str:
    return f"172.{16 + (index >> 16) % 16}.{(index >> 8) & 255}.{index & 255}"


def build_node(*, name: str, shape: NodeShape, index: int, zone_index: int = 0) -> dict[str, Any]:
    """A Ready Node as a kubelet registers it."""
    capacity = {
        "cpu": shape.cpu,
        "memory": shape.memory,
        "pods": str(shape.pods),
        "ephemeral-storage": shape.ephemeral_storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    if shape.gpus:
        capacity[shape.gpu_resource] = str(shape.gpus)
    capacity.update(shape.extended)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "type": "vecsched-simulated",
    }
    if shape.instance_type:
        labels["node.kubernetes.io/instance-type"] = shape.instance_type
    if shape.zones:
        labels["topology.kubernetes.io/zone"] = shape.zones[zone_index % len(shape.zones)]
    labels.update(shape.labels)
    now = now_rfc3339()

    def cond(t: str, s: str, reason: str, msg: str) -> dict[str, str]:
        return {"type": t, "status": s, "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": reason, "message": msg}

    spec: dict[str, Any] = {"podCIDR": f"10.{64 + (index >> 8) % 64}.{index & 255}.0/24"}
    if shape.taints:
        spec["taints"] = [dict(t) for t in shape.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status (simulated by vecsched)"),
            ],
            "addresses": [{"type": "InternalIP", "address": _host_ip(index)}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.md5(name.encode()).hexdigest(),
                "systemUUID": hashlib.md5(name.encode()).hexdigest(),
                "bootID": hashlib.md5(name.encode()).hexdigest(),
                "kernelVersion": "6.1.0-vecsched",
                "osImage": "vecsched simulated node",
                "containerRuntimeVersion": "containerd://1.7.0",
                "kubeletVersion": "v1.30.0-vecsched",
                "kubeProxyVersion": "v1.30.0-vecsched",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def set_ready(node: dict[str, Any], *, ready: bool) -> dict[str, Any]:
    """Flip the node's Ready condition and the not-ready taints the node controller manages."""
    now = now_rfc3339()
    for c in node.setdefault("status", {}).setdefault("conditions", []):
        if c.get("type") == "Ready":
            want = "True" if ready else "False"
            if c.get("status") != want:
                c["status"] = want
                c["lastTransitionTime"] = now
            c["lastHeartbeatTime"] = now
            c["reason"] = "KubeletReady" if ready else "KubeletNotReady"
            c["message"] = "kubelet is posting ready status (simulated by vecsched)" if ready else "node made NotReady by the test harness"
            break
    else:
        node["status"]["conditions"].append({"type": "Ready", "status": "True" if ready else "False",
                                             "lastHeartbeatTime": now, "lastTransitionTime": now})
    spec = node.setdefault("spec", {})
    taints = [t for t in spec.get("taints") or [] if t.get("key") != "node.kubernetes.io/not-ready"]
    if not ready:
        taints.extend({**t, "timeAdded": now} for t in _NOT_READY_TAINTS)
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)
    return node


def _is_ready(node: dict[str, Any]) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


class KubeletSim:
    """Every node's kubelet: starts pods bound to Ready nodes after ``delay`` seconds."""

    def __init__(self, *, store: Store, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"kubelet delay must be >= 0 seconds, got {delay}")
        self.store = store
        self.delay = delay
        self._ready: dict[str, bool] = {}
        self._host_ip: dict[str, str] = {}
        self._waiting: dict[str, set[tuple[str, str]]] = {}  # node -> pods bound while it was not Ready
        self._due: deque[tuple[float, str, str]] = deque()
        self._queued: set[tuple[str, str]] = set()
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._ips = 0
        self.started = 0
        for e in store.entries(NODES):
            self._learn(e.name, e.obj())
        store.add_listener(NODES.key, self._on_node)
        store.add_listener(PODS.key, self._on_pod)
        for e in store.entries(PODS):
            self._on_pod(PODS.key, None, e)

    def _on_node(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if new is None:
            self._ready.pop(old.name, None)  # type: ignore[union-attr]
            self._host_ip.pop(old.name, None)  # type: ignore[union-attr]
            return
        if self._learn(new.name, new.obj()):
            for pod in self._waiting.pop(new.name, set()):
                self._enqueue(pod)

    def _learn(self, name: str, node: dict[str, Any]) -> bool:
        ready = self._ready[name] = _is_ready(node)
        for a in (node.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                self._host_ip[name] = a.get("address", "")
        return ready

    def _on_pod(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if new is None:
            return
        node = new.fields[_NODE_NAME]
        if not node or new.fields[_PHASE] != "Pending":
            return
        pod = (new.namespace, new.name)
        if pod in self._queued:
            return
        if self._ready.get(node):
            self._enqueue(pod)
        else:
            self._waiting.setdefault(node, set()).add(pod)

    def _enqueue(self, pod: tuple[str, str]) -> None:
        self._queued.add(pod)
        self._due.append((time.monotonic() + self.delay, pod[0], pod[1]))
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None or not self._due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet (construction); start() arms it
        wait = self._due[0][0] - time.monotonic()
        self._timer = loop.call_soon(self._flush) if wait <= 0 else loop.call_later(wait, self._flush)

    def start(self) -> None:
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self) -> None:
        self._timer = None
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            _, ns, name = self._due.popleft()
            self._queued.discard((ns, name))
            entry = self.store.find(PODS, ns, name)
            if entry is None or entry.fields[_PHASE] != "Pending" or not entry.fields[_NODE_NAME]:
                continue
            node = entry.fields[_NODE_NAME]
            if not self._ready.get(node):
                self._waiting.setdefault(node, set()).add((ns, name))
                continue
            self.store.update(PODS, ns, name, lambda pod: self._run(pod, node))
            self.started += 1
        self._arm()

    def _run(self, pod: dict[str, Any], node: str) -> dict[str, Any]:
        now = now_rfc3339()
        self._ips += 1
        n = self._ips
        pod_ip = f"10.{244 + (n >> 16) % 4}.{(n >> 8) & 255}.{n & 255}"
        host_ip = self._host_ip.get(node, "")
        status = pod.setdefault("status", {})
        sched = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                 for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")]
        conds.append(sched or {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now})
        status.update({
            "phase": "Running",
            "conditions": conds,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}] if host_ip else [],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": now,
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "image": c.get("image", ""),
                    "imageID": f"sha256:{hashlib.sha256(str(c.get('image', '')).encode()).hexdigest()}",
                    "containerID": "containerd://" + hashlib.sha256(f"{pod_ip}/{c.get('name')}".encode()).hexdigest(),
                    "state": {"running": {"startedAt": now}},
                    "lastState": {},
                }
                for c in (pod.get("spec") or {}).get("containers") or []
            ],
        })
        return pod
