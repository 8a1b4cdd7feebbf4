"""Simulated nodes as objects: node shapes and the Node a kubelet registers.

A cluster on one machine still needs Nodes that look like real ones to every
client: the scheduler reads capacity, labels and taints, ``kubectl get
nodes`` reads conditions and ``nodeInfo``. A ``NodeShape`` describes a group
of identical machines; ``build_node`` renders one of them as the Node its
kubelet would register, and ``set_ready`` flips its Ready condition with the
not-ready taints the node lifecycle controller would add. What runs *on* the
nodes (pods, leases, usage) lives in ``kubelet``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.quantity import QuantityError, parse_quantity

from .objects import now_rfc3339

__all__ = ["NodeShape", "build_node", "node_names", "set_ready", "is_ready", "internal_ip"]

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


def is_ready(node: Mapping[str, Any]) -> bool:
    """Whether the Node's Ready condition is True."""
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def internal_ip(node: Mapping[str, Any]) -> str:
    """The Node's InternalIP address ("" when it has none)."""
    for a in (node.get("status") or {}).get("addresses") or []:
        if isinstance(a, dict) and a.get("type") == "InternalIP":
            return str(a.get("address", ""))
    return ""
