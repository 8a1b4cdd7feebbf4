"""Random clusters and pending pods for benchmarks, as Kubernetes JSON.

Shapes are loosely those of a real fleet: a few node sizes, three zones,
some tainted nodes, images on nodes, and pods whose requests range from a
sidecar-sized 50m to a few cores. Everything is drawn from one seeded
generator, so a run is repeatable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from scoring.objects import node_from_json, pod_from_json
from scoring.table import NodeTable

__all__ = ["random_nodes", "random_pods", "table_of"]

_SHAPES = ((8, 32), (16, 64), (32, 128), (64, 256))  # (cores, GiB)
_ZONES = ("zone-a", "zone-b", "zone-c")
_IMAGES = tuple(f"registry.example/app-{i}:v1" for i in range(40))


def random_nodes(rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
    nodes = []
    for i in range(count):
        cores, gib = _SHAPES[int(rng.integers(len(_SHAPES)))]
        name = f"node-{i:05d}"
        taints = [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}] if rng.random() < 0.1 else []
        if rng.random() < 0.05:
            taints.append({"key": "maintenance", "value": "soon", "effect": "PreferNoSchedule"})
        images = [{"names": [_IMAGES[int(j)]], "sizeBytes": int(rng.integers(50, 900)) * 1_000_000}
                  for j in rng.choice(len(_IMAGES), size=5, replace=False)]
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": _ZONES[i % 3],
                "node.kubernetes.io/instance-type": f"c{cores}",
            }},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": str(cores), "memory": f"{gib}Gi", "pods": "110",
                                        "ephemeral-storage": "100Gi"}, "images": images},
        })
    return nodes


def random_pods(rng: np.random.Generator, count: int, *, prefix: str = "pod", node_names: list[str] | None = None,
                constraints: bool = True) -> list[dict[str, Any]]:
    """Pods with random requests; bound round-robin-at-random to ``node_names`` when given."""
    pods = []
    for i in range(count):
        cpu = int(rng.choice([50, 100, 250, 500, 1000, 2000]))
        mem = int(rng.choice([64, 128, 256, 512, 1024, 2048]))
        spec: dict[str, Any] = {
            "schedulerName": "vecsched",
            "containers": [{"name": "app", "image": _IMAGES[int(rng.integers(len(_IMAGES)))],
                            "resources": {"requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}}}],
        }
        if constraints and rng.random() < 0.2:
            spec["nodeSelector"] = {"topology.kubernetes.io/zone": _ZONES[int(rng.integers(3))]}
        if constraints and rng.random() < 0.1:
            spec["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}]
        if constraints and rng.random() < 0.2:
            spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "preference": {"matchExpressions": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["c32", "c64"]}]}}]}}
        if node_names is not None:
            spec["nodeName"] = node_names[int(rng.integers(len(node_names)))]
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"{prefix}-{i:06d}", "namespace": "bench", "uid": f"{prefix}-uid-{i}"},
                     "spec": spec, "status": {"phase": "Running" if node_names else "Pending"}})
    return pods


def table_of(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], *, capacity: int = 64) -> NodeTable:
    """A node table holding ``nodes`` and the bound ``pods`` (their ``spec.nodeName``), all as JSON."""
    table = NodeTable(capacity=capacity)
    for n in nodes:
        table.set_node(node_from_json(n))
    for raw in pods:
        p = pod_from_json(raw)
        table.add_pod(p, p.node_name)
    return table
