"""ImageLocality: prefer nodes that already hold the pod's container images, so
the pod starts without pulling them (upstream's imagelocality plugin).

Per node, each container's image (init containers included) that the node holds
adds its size scaled by how widely the image has spread, ``int64(size *
nodesHavingImage / allNodes)``, which keeps a popular image from heating a few
nodes. The sum is clamped to ``[23MB, 1000MB x containers]`` and mapped linearly
onto 0..100 (upstream's sumImageScores, scaledImageScore and calculatePriority).
A pod's image name gets ``:latest`` when it has no tag or digest; node-reported
names are compared as they are. There is no NormalizeScore and no PreScore skip.

One difference is documented rather than copied: upstream's cache remembers an
image's size as first reported by any node, and its snapshots as reported by
each node; vecsched uses each node's own report (what upstream's unit tests see).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.batching import NODES, Signed
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.table import IntArray, NodeTable, read_only

__all__ = ["NAME", "MB", "MIN_THRESHOLD", "MAX_CONTAINER_THRESHOLD", "ImageLocality",
           "scaled_image_score", "calculate_priority", "num_containers", "image_scores", "new"]

NAME: Final = "ImageLocality"
MB: Final = 1024 * 1024
# Upstream's bounds of the image score range: "a reasonable size range for container
# images compressed and stored in registries; 90%ile of images on dockerhub".
MIN_THRESHOLD: Final = 23 * MB
MAX_CONTAINER_THRESHOLD: Final = 1000 * MB


def scaled_image_score(sizes: IntArray, num_nodes: int, total_nodes: int) -> IntArray:
    """``int64(float64(size) * spread)`` with ``spread = float64(numNodes) / float64(totalNodes)``,
    in float64 and truncated toward zero exactly as Go does (bytes)."""
    spread = float(num_nodes) / float(total_nodes)
    return (sizes.astype(np.float64) * spread).astype(np.int64)


def calculate_priority(sum_scores: IntArray, containers: int) -> IntArray:
    """``100 * (clamp(sum) - min) / (max - min)`` with ``max = 1000MB * containers`` (0..100).

    The clamp is upstream's if/else-if (low bound first), which also covers a pod
    with no containers (max below min: every sum clamps to min and scores 0).
    """
    max_threshold = MAX_CONTAINER_THRESHOLD * containers
    clamped = np.where(sum_scores < MIN_THRESHOLD, MIN_THRESHOLD,
                       np.where(sum_scores > max_threshold, max_threshold, sum_scores))
    numerator = MAX_NODE_SCORE * (clamped - MIN_THRESHOLD)  # >= 0
    denominator = max_threshold - MIN_THRESHOLD
    if denominator <= 0:
        return np.zeros_like(sum_scores)  # numerator is 0: Go's 0 / negative is 0
    return numerator // denominator


def num_containers(pod: PodInfo) -> int:
    """``len(spec.initContainers) + len(spec.containers)``, images set or not."""
    spec = pod.raw.get("spec") or {}
    return len(spec.get("initContainers") or ()) + len(spec.get("containers") or ())


class ImageLocality:
    name: Final = NAME

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        """Batching: the score depends on the nodes' images and the pod's images and container count."""
        return Signed(NODES, (pod.images, num_containers(pod)))

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        # init containers and app containers alike; images no node holds add nothing
        cols = tuple(c for c in map(table.image_column, pod.images) if c >= 0)
        if not cols:
            return np.zeros(len(nodes), np.int64)  # every sum is 0, below MIN_THRESHOLD: priority 0
        # The score depends on the nodes alone (which images they hold, how widely each
        # has spread), not on the pods placed: kept per image list until a node changes.
        containers = num_containers(pod)
        scores = table.node_derived((NAME, cols, containers), lambda: image_scores(table, cols, containers))
        return scores[nodes]


def image_scores(table: NodeTable, cols: tuple[int, ...], containers: int) -> IntArray:
    """The priority of every node ``[:n]`` for a pod with ``containers`` containers whose
    images are the image columns ``cols`` (repeats count again, as upstream's loop does);
    read-only."""
    n = table.n
    total = np.zeros(n, np.int64)
    for col in cols:
        total += scaled_image_score(table.image_sizes[:n, col], int(table.image_nodes[col]), n)
    return read_only(calculate_priority(total, containers))


def new(args: Mapping[str, Any], path: str) -> ImageLocality:
    known_fields(mapping(args, path), (), path)
    return ImageLocality()


_: type[ScorePlugin] = ImageLocality
