"""Small builders for the strategy-lab tests: nodes, pods and SimPods from plain numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.sim.model import SimPod
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.table import NodeTable

GI = 1024**3


def node(name: str, cpu: str, memory: str, *, pods: int = 110, labels: Mapping[str, str] | None = None,
         taints: Sequence[Mapping[str, str]] = (), extra: Mapping[str, str] | None = None) -> NodeInfo:
    return node_from_json({"metadata": {"name": name, "labels": dict(labels or {})},
                           "spec": {"taints": list(taints)},
                           "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}}})


def pod(name: str, cpu: str, memory: str, *, tolerations: Sequence[Mapping[str, str]] = (),
        extra: Mapping[str, str] | None = None) -> PodInfo:
    return pod_from_json({"metadata": {"name": name, "namespace": "t"},
                          "spec": {"tolerations": list(tolerations), "containers": [
                              {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory, **(extra or {})}}}]}})


def sim(name: str, cpu: str, memory: str, *, at: float = 0.0, runs: float | None = None) -> SimPod:
    return SimPod(pod(name, cpu, memory), at, runs)


def table(nodes: Sequence[NodeInfo], placed: Sequence[tuple[PodInfo, str]] = ()) -> NodeTable:
    t = NodeTable()
    for n in nodes:
        t.set_node(n)
    for p, where in placed:
        t.add_pod(p, where)
    return t


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


