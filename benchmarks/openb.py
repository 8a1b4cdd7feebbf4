"""Alibaba's GPU cluster trace (``cluster-trace-gpu-v2023``, "openb") as vecsched objects.

The trace behind Weng et al., "Beware of Fragmentation" (ATC '23) has a node
list (``sn,cpu_milli,memory_mib,gpu,model``) and pod lists
(``name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
creation_time,deletion_time,scheduled_time``; some lists have only the first
five columns). The strategy lab maps ``openb:PATH`` to these loaders.

Nodes become Nodes with ``cpu``, ``memory``, ``pods: 110`` and
``gpu: G x 1000`` (milli-GPU, the GpuTable's column) allocatable and the GPU
model as label ``vecsched.io/gpu-model``. They do not list
``nvidia.com/gpu``: no trace pod requests it (shares cannot), so the lab's
report would show a meaningless 0% column for it. Each run of the lab names
the nodes as the authors' simulator does for a run: a per-seed random
``NNNN-`` prefix (``simulator_node_names``), which decides ties under the
``NodeName`` tie-break. Pods become Pending Pods
with cpu/memory requests and the GPU request as annotations
(``vecsched.io/gpu-milli``, ``gpu-count``, ``gpu-models`` from ``gpu_spec``,
``V100M16|V100M32`` -> ``V100M16,V100M32``; see ``scoring.plugins.gpu_state``);
the trace's own phase, QoS and times are kept as ``openb.vecsched.io/*``
annotations (they describe the production run, not the pod to schedule). Each
GPU pod's total milli-GPU is also put in ``PodInfo.requests`` under ``gpu``
so that generic resource plugins and the lab's allocation report (key
``gpu``, and ``--inflate``'s primary resource) see GPU demand.

Bad input raises ``OpenbError`` naming the file, the line and the field.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from scoring.objects import NodeInfo, ObjectError, PodInfo, node_from_json, pod_from_json
from scoring.plugins.gpu_frag import POPULARITY_THRESHOLD, typical_pods_of
from scoring.plugins.gpu_state import (
    GPU_COUNT_ANNOTATION,
    GPU_MILLI_ANNOTATION,
    GPU_MILLI_RESOURCE,
    GPU_MODEL_LABEL,
    GPU_MODELS_ANNOTATION,
    MILLI,
    NVIDIA_GPU,
    request_of,
)

__all__ = [
    "OpenbError",
    "NAMESPACE",
    "load_openb_nodes",
    "load_openb_pods",
    "simulator_node_names",
    "typical_pods",
    "gpu_capacity",
    "gpu_demand",
]

NAMESPACE: Final = "openb"
_NODE_COLUMNS: Final = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
_POD_COLUMNS: Final = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
_POD_EXTRA: Final = ("qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time")
_NO_VALUE: Final = ("", "nan", "NaN", "None")
_MAX_PODS: Final = "110"  # kube-scheduler's default pod limit; trace pods ask >= 1 CPU, so it never binds


class OpenbError(ValueError):
    """A trace file the loader cannot read: ``path:line: field: problem``."""

    def __init__(self, path: str, line: int, field: str, problem: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = path, line, field, problem


def _rows(path: str | Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    p = str(path)
    try:
        f = open(p, newline="", encoding="utf-8")
    except OSError as e:
        raise OpenbError(p, 0, "", e.strerror or str(e)) from None
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise OpenbError(p, 1, "", f"empty file, expected a header with {','.join(required)}") from None
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise OpenbError(p, 1, missing[0], f"missing column (header: {','.join(header)})")
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise OpenbError(p, line, "", f"expected {len(header)} fields, got {len(values)}")
            yield line, {h: v.strip() for h, v in zip(header, values)}


def _int(path: str, line: int, row: dict[str, str], field: str, lo: int = 0, hi: int | None = None) -> int:
    raw = row[field]
    try:
        v = int(raw)
    except ValueError:
        try:
            f = float(raw)
        except ValueError:
            raise OpenbError(path, line, field, f"expected an integer, got {raw!r}") from None
        if not f.is_integer():
            raise OpenbError(path, line, field, f"expected an integer, got {raw!r}") from None
        v = int(f)
    if v < lo or (hi is not None and v > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise OpenbError(path, line, field, f"must be {bound}, got {v}")
    return v


def load_openb_nodes(path: str | Path) -> list[NodeInfo]:
    """The trace's node list (``sn,cpu_milli,memory_mib,gpu,model``) as NodeInfos."""
    p = str(path)
    out: list[NodeInfo] = []
    seen: set[str] = set()
    for line, row in _rows(p, _NODE_COLUMNS):
        name = row["sn"]
        if not name:
            raise OpenbError(p, line, "sn", "required")
        if name in seen:
            raise OpenbError(p, line, "sn", f"duplicate node {name!r}")
        seen.add(name)
        cpu = _int(p, line, row, "cpu_milli", lo=1)
        mem = _int(p, line, row, "memory_mib", lo=1)
        gpus = _int(p, line, row, "gpu", lo=0)
        model = row["model"] if row["model"] not in _NO_VALUE else ""
        labels = {"kubernetes.io/hostname": name}
        allocatable = {"cpu": f"{cpu}m", "memory": f"{mem}Mi", "pods": _MAX_PODS}
        if gpus:
            allocatable[GPU_MILLI_RESOURCE] = str(gpus * MILLI)
            if model:
                labels[GPU_MODEL_LABEL] = model
        doc = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
               "status": {"allocatable": allocatable, "capacity": allocatable}}
        try:
            out.append(node_from_json(doc))
        except ObjectError as e:
            raise OpenbError(p, line, "sn", str(e)) from None
    return out


def simulator_node_names(nodes: Sequence[NodeInfo], seed: int) -> list[NodeInfo]:
    """``nodes`` named as the FGD authors' simulator names them in run ``seed``.

    Before a run, the simulator (``syncClusterResourceList`` in
    ``pkg/simulator/simulator.go`` of hkust-adsl/kubernetes-scheduler-simulator)
    sorts the nodes by name and prefixes the i-th with ``%04d-`` of
    ``rand.Perm(n)[i]``, drawn from the run's seed. Its scheduler breaks ties by
    the smallest name, so among equally scored nodes the one with the smallest
    drawn number wins: a random node order, fixed for the run, a different one
    per seed. The original names are the suffix (``0917-openb-node-0000``); the
    labels, and the nodes' order in the list, are unchanged. The permutation is
    drawn from ``seed`` with numpy, not Go's generator, so a seed here is not the
    simulator's seed of the same number. Prefixes are at least 4 digits, and as
    many as the largest number needs, so that names sort by the drawn number.
    """
    ordered = sorted(range(len(nodes)), key=lambda i: nodes[i].name)
    drawn = np.random.default_rng([seed, 0x5EED, 1]).permutation(len(nodes))
    width = max(4, len(str(max(len(nodes) - 1, 0))))
    number = {i: int(drawn[k]) for k, i in enumerate(ordered)}
    out = []
    for i, node in enumerate(nodes):
        doc = copy.deepcopy(dict(node.raw))
        doc["metadata"] = {**doc.get("metadata", {}), "name": f"{number[i]:0{width}d}-{node.name}"}
        out.append(node_from_json(doc))
    return out


def _pod_doc(p: str, line: int, row: dict[str, str]) -> tuple[dict[str, Any], int]:
    name = row["name"]
    if not name:
        raise OpenbError(p, line, "name", "required")
    cpu = _int(p, line, row, "cpu_milli", lo=0)
    mem = _int(p, line, row, "memory_mib", lo=0)
    count = _int(p, line, row, "num_gpu", lo=0)
    milli = _int(p, line, row, "gpu_milli", lo=0, hi=MILLI)
    if count == 0 and milli:
        raise OpenbError(p, line, "gpu_milli", f"{milli} milli-GPU on a pod with num_gpu 0")
    if count and not milli:
        raise OpenbError(p, line, "gpu_milli", f"0 milli-GPU on a pod with num_gpu {count}")
    if count > 1 and milli < MILLI:
        raise OpenbError(p, line, "gpu_milli", f"a share of a GPU ({milli}) is for one GPU, num_gpu is {count}")
    annotations: dict[str, str] = {}
    if count:
        annotations[GPU_MILLI_ANNOTATION] = str(milli)
        annotations[GPU_COUNT_ANNOTATION] = str(count)
        spec = row.get("gpu_spec", "")
        if spec not in _NO_VALUE:
            models = [m.strip() for m in spec.split("|")]
            if not all(models):
                raise OpenbError(p, line, "gpu_spec", f"expected GPU models separated by '|', got {spec!r}")
            annotations[GPU_MODELS_ANNOTATION] = ",".join(models)
    for extra in _POD_EXTRA:
        if row.get(extra, "") not in _NO_VALUE:
            annotations[f"openb.vecsched.io/{extra.replace('_', '-')}"] = row[extra]
    requests = {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}
    doc = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"{NAMESPACE}-{name}",
                        "annotations": annotations},
           "spec": {"schedulerName": "vecsched",
                    "containers": [{"name": "main", "resources": {"requests": requests}}]},
           "status": {"phase": "Pending"}}
    return doc, count * milli


def load_openb_pods(path: str | Path) -> list[PodInfo]:
    """A pod list of the trace (all columns, or only the first five) as pending PodInfos."""
    p = str(path)
    out: list[PodInfo] = []
    seen: set[str] = set()
    for line, row in _rows(p, _POD_COLUMNS):
        doc, total = _pod_doc(p, line, row)
        name = doc["metadata"]["name"]
        if name in seen:
            raise OpenbError(p, line, "name", f"duplicate pod {name!r}")
        seen.add(name)
        try:
            pod = pod_from_json(doc)
        except ObjectError as e:
            raise OpenbError(p, line, "name", str(e)) from None
        if total:
            pod = replace(pod, requests={**pod.requests, GPU_MILLI_RESOURCE: total})
        out.append(pod)
    return out


def typical_pods(pods: Iterable[PodInfo], threshold: int = POPULARITY_THRESHOLD) -> list[dict[str, Any]]:
    """FGD's ``typicalPods`` arg for a workload: its most popular pod shapes covering
    ``threshold`` percent of the pods (the simulator's ``GetTypicalPods``)."""
    shapes = []
    for pod in pods:
        req = request_of(pod)
        models = tuple(sorted(req.models)) if req.models else ()
        shapes.append((pod.nonzero_cpu, req.milli if req.count else 0, req.count, models))
    return [t.as_args() for t in typical_pods_of(shapes, threshold)]


def gpu_capacity(nodes: Iterable[NodeInfo]) -> int:
    """Milli-GPU of all nodes (``nvidia.com/gpu`` x 1000, else their ``gpu`` allocatable)."""
    return sum(int(n.allocatable.get(NVIDIA_GPU, 0)) * MILLI or int(n.allocatable.get(GPU_MILLI_RESOURCE, 0))
               for n in nodes)


def gpu_demand(pod: PodInfo) -> int:
    """Milli-GPU a pod asks for (share x count)."""
    return request_of(pod).total
