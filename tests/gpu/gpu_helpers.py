"""Builders of GPU nodes, pods and tables for the GPU tests."""

from __future__ import annotations

from typing import Any

from scheduler.config import API_VERSION, parse_config
from scoring.framework import Profile
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.table import NodeTable


def gpu_node(name: str, gpus: int, *, cpu: str = "32", memory: str = "128Gi", model: str | None = None) -> NodeInfo:
    labels = {"kubernetes.io/hostname": name}
    if model:
        labels["vecsched.io/gpu-model"] = model
    alloc: dict[str, Any] = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
    return node_from_json({"metadata": {"name": name, "labels": labels}, "status": {"allocatable": alloc}})


def gpu_pod(name: str, *, milli: int | None = None, count: int | None = None, cpu: str = "1", memory: str = "1Gi",
            models: str | None = None, index: str | None = None, whole: int | None = None) -> PodInfo:
    ann: dict[str, str] = {}
    if milli is not None:
        ann["vecsched.io/gpu-milli"] = str(milli)
    if count is not None:
        ann["vecsched.io/gpu-count"] = str(count)
    if models is not None:
        ann["vecsched.io/gpu-models"] = models
    if index is not None:
        ann["vecsched.io/gpu-index"] = index
    req: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if whole is not None:
        req["nvidia.com/gpu"] = str(whole)
    return pod_from_json({"metadata": {"name": name, "namespace": "t", "annotations": ann},
                          "spec": {"containers": [{"name": "c", "resources": {"requests": req}}]}})


def table_of(nodes: list[NodeInfo], placed: list[tuple[PodInfo, str]] = ()) -> NodeTable:  # type: ignore[assignment]
    table = NodeTable(capacity=4)
    for n in nodes:
        table.set_node(n)
    for pod, node in placed:
        table.add_pod(pod, node)
    return table


def gpu_profile(score: str | None, *, args: dict[str, Any] | None = None, selection: str = "BestFit",
                seed: int = 0) -> Profile:
    """Default filters + GpuShare, and ``score`` as the only score plugin."""
    body: dict[str, Any] = {
        "schedulerName": "gpu",
        "plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]},
                    "score": {"disabled": [{"name": "*"}],
                              "enabled": [{"name": score, "weight": 1}] if score else []}},
        "pluginConfig": [{"name": "GpuShare", "args": {"gpuSelection": selection}}],
    }
    if args is not None and score:
        body["pluginConfig"].append({"name": score, "args": args})
    cfg = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [body]})
    return cfg.profiles[0].build(seed=seed)
