"""Simulated nodes as objects: node shapes and the Node a kubelet registers.

A cluster on one machine still needs Nodes that look like real ones to every
client: the scheduler reads capacity, labels and taints, ``kubectl get
nodes`` reads conditions and ``nodeInfo``. A ``NodeShape`` describes a group
of identical machines; ``build_node`` renders one of them as the Node its
kubelet would register, and ``set_ready`` flips its Ready condition with the
not-ready taints the node lifecycle controller would add. What runs *on* the
nodes (pods, leases, usage) lives in ``kubelet``.

Every simulated node also runs the node plugin of one simulated CSI driver
(``NodeShape.csi_driver``, ``csi.vecsched.io`` unless told otherwise). As the
kubelet's CSI plugin registration does, the Node carries the
``csi.volume.kubernetes.io/nodeid`` annotation (driver -> node ID), and
``build_csinode`` renders the CSINode the kubelet keeps beside the Node
(``pkg/volume/csi/nodeinfomanager``): same name, an ownerReference to the
Node, one driver entry with the node's ID, ``topologyKeys`` of the zone label
when the node has one, and ``allocatable.count`` -- the volumes the driver can
attach to the node, what NodeVolumeLimits reads -- when the shape sets
``attach_limit`` (carried on the Node in the
``vecsched.io/simulated-attach-limit`` annotation, as the driver's
``NodeGetInfo`` would report it). ``build_csidriver`` is the CSIDriver object
the driver's installation creates.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.quantity import QuantityError, parse_quantity

from .objects import now_rfc3339

__all__ = [
    "NodeShape",
    "build_node",
    "build_csinode",
    "build_csidriver",
    "csi_drivers",
    "node_names",
    "set_ready",
    "is_ready",
    "internal_ip",
    "DEFAULT_CSI_DRIVER",
    "CSI_NODE_ID_ANNOTATION",
    "ATTACH_LIMIT_ANNOTATION",
    "ZONE_LABEL",
]

DEFAULT_CSI_DRIVER: Final = "csi.vecsched.io"
"""The simulated CSI driver every node registers unless its shape names another."""
CSI_NODE_ID_ANNOTATION: Final = "csi.volume.kubernetes.io/nodeid"
"""The kubelet's record on the Node of each registered CSI driver's node ID (a JSON object)."""
ATTACH_LIMIT_ANNOTATION: Final = "vecsched.io/simulated-attach-limit"
"""How many volumes the node's CSI driver can attach (what its ``NodeGetInfo`` would report)."""
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
# A CSI driver name: what CSIDriver object names accept (a DNS subdomain of at most 63 characters).
_DRIVER_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

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
    csi_driver: str = DEFAULT_CSI_DRIVER
    """The CSI driver whose node plugin runs on these nodes ("" for none: a CSINode without drivers)."""
    attach_limit: int | None = None
    """Volumes the CSI driver can attach per node (CSINode ``allocatable.count``); None reports no limit."""

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
        if self.csi_driver and (len(self.csi_driver) > 63 or not _DRIVER_NAME.match(self.csi_driver)):
            raise ValueError(f"invalid CSI driver name {self.csi_driver!r}: at most 63 lowercase alphanumerics, "
                             f"'-' and '.', starting and ending with an alphanumeric (e.g. 'csi.example.com')")
        if self.attach_limit is not None and (isinstance(self.attach_limit, bool) or self.attach_limit < 0):
            raise ValueError(f"NodeShape.attach_limit must be a count >= 0 (or None for no limit), "
                             f"got {self.attach_limit!r}")
        if self.attach_limit is not None and not self.csi_driver:
            raise ValueError("NodeShape.attach_limit needs a csi_driver whose attachments it limits")


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
    annotations = {"node.alpha.kubernetes.io/ttl": "0"}
    if shape.csi_driver:
        annotations[CSI_NODE_ID_ANNOTATION] = json.dumps({shape.csi_driver: name}, separators=(",", ":"))
        if shape.attach_limit is not None:
            annotations[ATTACH_LIMIT_ANNOTATION] = str(shape.attach_limit)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
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


def csi_drivers(node: Mapping[str, Any]) -> dict[str, str]:
    """The CSI drivers registered on a Node: driver -> node ID, from its ``csi.volume.kubernetes.io/nodeid``
    annotation ({} when it has none or it is not a JSON object of strings)."""
    text = ((node.get("metadata") or {}).get("annotations") or {}).get(CSI_NODE_ID_ANNOTATION)
    try:
        ids = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    if not isinstance(ids, dict):
        return {}
    return {k: v for k, v in ids.items() if isinstance(k, str) and isinstance(v, str) and k}


def _attach_limit(node: Mapping[str, Any]) -> int | None:
    text = ((node.get("metadata") or {}).get("annotations") or {}).get(ATTACH_LIMIT_ANNOTATION)
    if not isinstance(text, str) or not text.isdigit():
        return None
    return int(text)


def build_csinode(node: Mapping[str, Any]) -> dict[str, Any]:
    """The CSINode the node's kubelet keeps for a stored Node (``nodeinfomanager``'s ``CreateCSINode``
    plus one driver registration per entry of the node-ID annotation)."""
    meta = node["metadata"]
    labels = meta.get("labels") or {}
    limit = _attach_limit(node)
    drivers = []
    for driver, node_id in sorted(csi_drivers(node).items()):
        entry: dict[str, Any] = {"name": driver, "nodeID": node_id,
                                 "topologyKeys": [ZONE_LABEL] if labels.get(ZONE_LABEL) else []}
        if limit is not None:
            entry["allocatable"] = {"count": limit}
        drivers.append(entry)
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": meta["name"], "ownerReferences": [
            {"apiVersion": "v1", "kind": "Node", "name": meta["name"], "uid": meta.get("uid", "")}]},
        "spec": {"drivers": drivers},
    }


def build_csidriver(name: str) -> dict[str, Any]:
    """The CSIDriver object of a simulated driver: volumes are attached (so NodeVolumeLimits counts
    them), no pod info on mount, no storage capacity tracking; the API's defaults for the rest."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": name},
        "spec": {"attachRequired": True, "podInfoOnMount": False, "storageCapacity": False,
                 "requiresRepublish": False, "seLinuxMount": False, "fsGroupPolicy": "ReadWriteOnceWithFSType",
                 "volumeLifecycleModes": ["Persistent"]},
    }
