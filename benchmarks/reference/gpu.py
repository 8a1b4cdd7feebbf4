"""Per-node references of the GPU plugins, written the way the simulator's Go reads.

One node at a time: its per-GPU free list is rebuilt from its pods (each pod
charged to its ``vecsched.io/gpu-index`` GPUs, else by the simulator's default
allocation, in pod order), then the Go functions are transcribed line by line
(``GetNodePodFrag``, ``NodeGpuShareFragAmount``, ``calculateGpuShareFragExtendScore``,
``getPackingScore``, the GpuClustering bands, ``getBestFitScore``,
``calculateDotProductScore``). The property tests compare them with the
vectorised plugins on random clusters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin
from scoring.objects import CPU, PodInfo
from scoring.plugins.gpu_frag import TypicalPod, parse_typical_pods
from scoring.plugins.gpu_share import INSUFFICIENT_GPU, MODEL_MISMATCH
from scoring.plugins.gpu_state import (
    GPU_INDEX_ANNOTATION,
    GPU_MILLI_RESOURCE,
    GPU_MODEL_LABEL,
    GPU_MODEL_LABEL_FALLBACK,
    MILLI,
    NVIDIA_GPU,
    GpuRequest,
    parse_index,
    request_of,
)

__all__ = ["NodeRes", "node_res", "node_frag", "fgd_score", "packing_score", "clustering_score",
           "best_fit_raw", "dot_product_score"]


@dataclass
class NodeRes:
    """The simulator's NodeResource: CPU left and per-GPU milli left, model, affinity tags."""

    cpu_left: int
    gpu_left: list[int]
    model: str
    tags: dict[str, int]


def _default_choice(left: list[int], req: GpuRequest) -> list[int] | None:
    if req.count == 1:
        best = -1
        for i, v in enumerate(left):
            if v >= req.milli and (best == -1 or v < left[best]):
                best = i
        return None if best == -1 else [best]
    out = [i for i, v in enumerate(left) if v >= req.milli][: req.count]
    return out if len(out) == req.count else None


def _tag(req: GpuRequest) -> str:
    return "share-gpu" if req.shared else f"{req.count}-gpu"


def node_res(node: RefNode) -> NodeRes:
    info = node.info
    gpus = int(info.allocatable.get(NVIDIA_GPU, 0)) or int(info.allocatable.get(GPU_MILLI_RESOURCE, 0)) // MILLI
    left = [MILLI] * gpus
    cpu = info.allocatable.get(CPU, 0)
    tags: dict[str, int] = {}
    for pod in node.pods:
        cpu -= pod.requests.get(CPU, 0)
        req = request_of(pod)
        if req.count == 0:
            continue
        idx = parse_index(pod.annotations.get(GPU_INDEX_ANNOTATION), req.count, gpus)
        if idx is None:
            got = _default_choice(left, req)
            idx = tuple(got) if got is not None else tuple(sorted(range(gpus), key=lambda i: -left[i])[: req.count])
        for i in idx:
            left[i] -= min(req.milli, max(left[i], 0))
        tags[_tag(req)] = tags.get(_tag(req), 0) + 1
    model = info.labels.get(GPU_MODEL_LABEL) or info.labels.get(GPU_MODEL_LABEL_FALLBACK) or ""
    return NodeRes(cpu, left, model, tags)


def _accessible(model: str, pod: TypicalPod | GpuRequest) -> bool:
    models = pod.models if isinstance(pod, TypicalPod) else (tuple(pod.models) if pod.models else ())
    if not models:
        return True
    return model != "" and model in models


def _frag_type(res: NodeRes, t: TypicalPod) -> str:
    """GetNodePodFrag."""
    if t.gpu_milli == 0:
        return "XL" if res.cpu_left >= t.milli_cpu else "XR"
    if not _accessible(res.model, t):
        return "NA"
    need = t.gpu_count
    fits_gpu = False
    for v in res.gpu_left:
        if v >= t.gpu_milli:
            need -= 1
            if need <= 0:
                fits_gpu = True
                break
    if fits_gpu:
        return "Q3" if res.cpu_left >= t.milli_cpu else "Q4"
    return "Q2" if res.cpu_left >= t.milli_cpu else "Q1"


def node_frag(res: NodeRes, typical: Sequence[TypicalPod]) -> float:
    """NodeGpuShareFragAmountScore with integer weights: W x (sum over all but Q3)."""
    total = sum(res.gpu_left)
    frag = 0
    for t in typical:
        kind = _frag_type(res, t)
        if kind == "Q3":
            frag += t.weight * sum(v for v in res.gpu_left if v < t.gpu_milli)
        else:
            frag += t.weight * total
    return float(frag)


def _sigmoid_score(before: float, after: float, w: float) -> int:
    x = (before - after) / w / MILLI
    return int(100.0 * (1.0 / (1.0 + math.exp(-x))))


def _sub(res: NodeRes, req: GpuRequest, cpu: int) -> NodeRes:
    """NodeResource.Sub: ascending by left (stable), take each GPU that fits; a node short of
    CPU or of GPUs stays as it is."""
    if res.cpu_left < cpu or len(res.gpu_left) < req.count:
        return res
    left = list(res.gpu_left)
    need = req.count
    for i in sorted(range(len(left)), key=lambda i: left[i]):
        if need <= 0:
            break
        if req.milli <= left[i]:
            left[i] -= req.milli
            need -= 1
    return NodeRes(res.cpu_left - cpu, left, res.model, res.tags)


def fgd_score(res: NodeRes, pod: PodInfo, typical: Sequence[TypicalPod]) -> tuple[int, int]:
    """(score, chosen GPU or -1) of calculateGpuShareFragExtendScore."""
    w = float(sum(t.weight for t in typical))
    req = request_of(pod)
    if not pod.requests and req.count == 0:
        return 100, -1
    if w == 0:
        return 50, -1
    before = node_frag(res, typical)
    if req.shared:
        score, gpu = 0, -1
        for i, v in enumerate(res.gpu_left):
            if v >= req.milli:
                new = NodeRes(res.cpu_left - pod.nonzero_cpu, list(res.gpu_left), res.model, res.tags)
                new.gpu_left[i] -= req.milli
                s = _sigmoid_score(before, node_frag(new, typical), w)
                if gpu == -1 or s > score:
                    score, gpu = s, i
        return score, gpu
    return _sigmoid_score(before, node_frag(_sub(res, req, pod.nonzero_cpu), typical), w), -1


def packing_score(res: NodeRes, req: GpuRequest) -> int:
    if req.count == 0:
        return 0
    fully = sum(1 for v in res.gpu_left if v == MILLI)
    if fully == len(res.gpu_left):
        return max(100 // 3 - fully, fully)
    need, fully_used, used = req.count, 0, []
    for i in sorted(range(len(res.gpu_left)), key=lambda i: res.gpu_left[i]):
        if need == 0:
            break
        if req.milli <= res.gpu_left[i]:
            need -= 1
            used.append(i)
            if res.gpu_left[i] == MILLI:
                fully_used += 1
    if fully_used > 0:
        return max(100 // 2 - fully_used, 100 // 3)
    ratio = sum(res.gpu_left[i] * 100 // MILLI for i in used)
    return max(100 - ratio // 10, 100 // 2)


def clustering_score(res: NodeRes, req: GpuRequest) -> int:
    if req.count == 0:
        return 0
    left = sum(res.gpu_left)
    base = int(25 * (8000 - left) / 8000)  # Go's truncating division
    tag = _tag(req)
    if res.tags.get(tag, 0) > 0:
        band = 75 if len(res.tags) == 1 else 50
    else:
        band = 25 if len(res.tags) == 0 else 0
    return min(max(base + band, 0), 100)


def best_fit_raw(res: NodeRes, pod: PodInfo) -> int:
    req = request_of(pod)
    free = [float(res.cpu_left), float(sum(res.gpu_left))]
    want = [float(pod.nonzero_cpu), float(req.total)]
    spec, weights = [128000.0, 8000.0], [0.5, 0.5]
    score = 0.0
    for i in range(2):
        if free[i] < want[i]:
            return 0
        score += (free[i] - want[i]) / spec[i] * weights[i]
    return int((1.0 - score) * 100)


def dot_product_score(res: NodeRes, pod: PodInfo) -> int:
    req = request_of(pod)
    if res.cpu_left < pod.nonzero_cpu:
        return 0
    node = [res.cpu_left / 128000.0, sum(res.gpu_left) / 8000.0]
    want = [pod.nonzero_cpu / 128000.0, req.total / 8000.0]
    dot = 0.0
    for a, b in zip(node, want):
        dot += a * b
    return int(100.0 * (1 - dot / 2))


def _gpu_share_filter(pod: PodInfo, node: RefNode, _: RefCluster) -> list[str]:
    req = request_of(pod)
    if req.count == 0:
        return []
    res = node_res(node)
    if not _accessible(res.model, req):
        return [MODEL_MISMATCH]
    if sum(1 for v in res.gpu_left if v >= req.milli) < req.count:
        return [INSUFFICIENT_GPU]
    return []


def _min_max(scores: list[int]) -> list[int]:
    lo, hi = min(scores), max(scores)
    return [0 if hi == lo else (s - lo) * 100 // (hi - lo) for s in scores]


def _fgd(args: Mapping[str, Any]) -> RefPlugin:
    typical = parse_typical_pods(args.get("typicalPods"), "typicalPods")
    return RefPlugin("FGD", score=lambda pod, node, _: fgd_score(node_res(node), pod, typical)[0])


REFERENCE["GpuShare"] = lambda args: RefPlugin("GpuShare", filter=_gpu_share_filter)
REFERENCE["FGD"] = _fgd
REFERENCE["GpuPacking"] = lambda args: RefPlugin(
    "GpuPacking", score=lambda pod, node, _: packing_score(node_res(node), request_of(pod)))
REFERENCE["GpuClustering"] = lambda args: RefPlugin(
    "GpuClustering", score=lambda pod, node, _: clustering_score(node_res(node), request_of(pod)))
REFERENCE["GpuBestFit"] = lambda args: RefPlugin(
    "GpuBestFit", score=lambda pod, node, _: best_fit_raw(node_res(node), pod), normalize=_min_max)
REFERENCE["GpuDotProduct"] = lambda args: RefPlugin(
    "GpuDotProduct", score=lambda pod, node, _: dot_product_score(node_res(node), pod))
