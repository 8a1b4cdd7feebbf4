"""GPU sharing: how pods ask for (parts of) GPUs, and each node's per-GPU free capacity.

AI clusters share GPUs between pods, so a GPU is not one indivisible
extended resource: a node has G GPUs, each of 1000 milli-GPU, and a pod asks
either for a share of one GPU or for k whole GPUs. This module is the one
place that knows how that is written on Kubernetes objects, and it keeps the
per-GPU free capacity of every node as a dense array next to the NodeTable so
that the GPU plugins (``GpuShare``, ``FGD``, ``GpuPacking``, ...) stay
vectorised.

The annotation scheme (the simulator of Weng et al. uses the same shape under
``alibabacloud.com/gpu-milli`` / ``gpu-count`` / ``gpu-index``; Alibaba's
gpushare scheduler asks for ``aliyun.com/gpu-mem`` as an extended resource)::

    Pod metadata.annotations
      vecsched.io/gpu-milli:  "500"          share of ONE GPU, 1..1000 (1000 = a whole GPU)
      vecsched.io/gpu-count:  "2"            number of GPUs (default 1); > 1 only with gpu-milli 1000
      vecsched.io/gpu-models: "V100M16,V100M32"   optional: allowed GPU models (comma-separated)
      vecsched.io/gpu-index:  "0,3"          written by vecsched at reserve time: the chosen GPUs
    Pod spec (alternative, whole GPUs only)
      resources.requests["nvidia.com/gpu"]: k   same as gpu-milli 1000, gpu-count k
    Node
      status.allocatable["nvidia.com/gpu"]: G    the node's GPUs (indices 0..G-1)
      metadata.labels["vecsched.io/gpu-model"]   its GPU model (else ``nvidia.com/gpu.product``)

A sharing pod must *not* request ``nvidia.com/gpu``: NodeResourcesFit would
count it as a whole GPU. Shares are therefore annotations, which
NodeResourcesFit does not see, and ``GpuShare`` is the filter that checks
them on specific GPUs. Whole-GPU pods may use either form; when both are
given they must agree.

``GpuTable`` (``table.extensions["gpu"]``, a TableListener) holds, per node
row, the free milli-GPU of each GPU (``free``, nodes x max GPUs, int32), the
GPU count, an interned model code, counts of the pods' GPU "affinity" tags
(share / k-GPU, for GpuClustering) and a per-row version stamp that consumers
use to refresh their own caches. A pod that arrives with
``vecsched.io/gpu-index`` is charged to those GPUs; one without (bound by
another scheduler, or a malformed index) is charged deterministically, as the
simulator's default allocation does (``GpuNodeInfo.AllocateGpuId``: the
tightest-fitting GPU for a share, the lowest-indexed free GPUs otherwise).

The table also gets a resource column ``gpu`` in milli-GPU (allocatable =
G x 1000, requested = milli-GPU charged; like ``cpu`` in millicores), so
reports and generic resource plugins see aggregate GPU use. Pods that carry
``gpu`` in ``PodInfo.requests`` themselves (the strategy lab's openb pods do,
so that generic BestFit/DotProduct plugins and the lab's allocation report see
their GPU demand) are charged to that column by the table; the extension then
leaves the column alone. A node without ``nvidia.com/gpu`` but with a ``gpu``
allocatable (the lab's openb nodes) has ``gpu / 1000`` GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.objects import PodInfo
from scoring.table import NodeTable
from scoring.safe_input import quote

__all__ = [
    "MILLI",
    "GPU_MILLI_ANNOTATION",
    "GPU_COUNT_ANNOTATION",
    "GPU_MODELS_ANNOTATION",
    "GPU_INDEX_ANNOTATION",
    "NVIDIA_GPU",
    "GPU_MODEL_LABEL",
    "GPU_MODEL_LABEL_FALLBACK",
    "GPU_MILLI_RESOURCE",
    "EXTENSION_KEY",
    "STATE_KEY",
    "GpuRequest",
    "GpuRequestError",
    "NO_GPU",
    "parse_gpu_request",
    "request_of",
    "format_index",
    "parse_index",
    "default_gpu_choice",
    "GpuChoice",
    "CHOICE_KEY",
    "GpuTable",
    "gpu_table",
]

MILLI: Final = 1000
"""Milli-GPU in one GPU."""
GPU_MILLI_ANNOTATION: Final = "vecsched.io/gpu-milli"
GPU_COUNT_ANNOTATION: Final = "vecsched.io/gpu-count"
GPU_MODELS_ANNOTATION: Final = "vecsched.io/gpu-models"
GPU_INDEX_ANNOTATION: Final = "vecsched.io/gpu-index"
NVIDIA_GPU: Final = "nvidia.com/gpu"
GPU_MODEL_LABEL: Final = "vecsched.io/gpu-model"
GPU_MODEL_LABEL_FALLBACK: Final = "nvidia.com/gpu.product"  # set by NVIDIA GPU feature discovery
GPU_MILLI_RESOURCE: Final = "gpu"
"""Table column with aggregate milli-GPU (allocatable G x 1000), named like ``cpu`` (also milli).
Unprefixed, so NodeResourcesFit (which checks only cpu, memory, storage and scalar
resources) never counts it: GpuShare is the filter for GPUs."""
EXTENSION_KEY: Final = "gpu"
STATE_KEY: Final = "vecsched.io/gpu-request"
"""CycleState key under which GpuShare's PreFilter leaves the parsed request."""

CHOICE_KEY: Final = "vecsched.io/gpu-choice"
"""CycleState key: a GpuChoice left by a score plugin (FGD) for GpuShare's Reserve."""

_MAX_TAG: Final = 8  # affinity tags: column 0 = share, k = k-GPU; grows for larger k


class GpuRequestError(ValueError):
    """A pod whose GPU annotations cannot be read; names the field."""

    def __init__(self, pod: str, field: str, problem: str) -> None:
        super().__init__(f"pod {pod}: {field}: {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """``count`` GPUs with ``milli`` milli-GPU free on each (count 0: no GPU)."""

    milli: int
    count: int
    models: frozenset[str] | None = None
    """Allowed GPU models, or None for any model."""

    @property
    def total(self) -> int:
        return self.milli * self.count

    @property
    def shared(self) -> bool:
        return self.count == 1 and self.milli < MILLI

    @property
    def tag(self) -> int:
        """The simulator's GPU affinity tag as a column: 0 = share-gpu, k = k-gpu, -1 = none."""
        if self.count == 0:
            return -1
        return 0 if self.shared else self.count

    def allows(self, model: str) -> bool:
        """The simulator's IsNodeAccessibleToPodByType: any model when none is asked for;
        otherwise the node's model must be listed (a node without a model matches nothing)."""
        return self.models is None or model in self.models


NO_GPU: Final = GpuRequest(0, 0)


@dataclass(frozen=True, slots=True)
class GpuChoice:
    """The GPU a score plugin chose for a shared-GPU pod on each scored row (-1: none);
    ``rows`` ascending, as the framework passes them."""

    rows: npt.NDArray[np.intp]
    gpu: npt.NDArray[np.int64]

    def for_row(self, row: int) -> int:
        i = int(np.searchsorted(self.rows, row))
        if i < len(self.rows) and self.rows[i] == row:
            return int(self.gpu[i])
        return -1


def _int_annotation(pod: PodInfo, key: str, lo: int, hi: int) -> int | None:
    raw = pod.annotations.get(key)
    if raw is None:
        return None
    field = f"metadata.annotations[{key}]"
    s = raw.strip()
    if not (s.isascii() and s.isdigit()):  # "²" is a digit to str.isdigit, not to int()
        raise GpuRequestError(pod.key, field, f"expected an integer, got {quote(raw)}")
    if len(s) > 19:  # past int64, and past any bound here, without converting a huge number
        raise GpuRequestError(pod.key, field, f"must be in {lo}..{hi}, got {quote(s)}")
    v = int(s)
    if not lo <= v <= hi:
        raise GpuRequestError(pod.key, field, f"must be in {lo}..{hi}, got {v}")
    return v


def parse_gpu_request(pod: PodInfo) -> GpuRequest:
    """Read a pod's GPU request (see the module docstring). Raises GpuRequestError."""
    milli = _int_annotation(pod, GPU_MILLI_ANNOTATION, 1, MILLI)
    count = _int_annotation(pod, GPU_COUNT_ANNOTATION, 0, 1 << 16)
    whole = pod.requests.get(NVIDIA_GPU, 0)
    models: frozenset[str] | None = None
    raw_models = pod.annotations.get(GPU_MODELS_ANNOTATION)
    if raw_models is not None:
        names = [m.strip() for m in raw_models.split(",")]
        if not all(names):
            raise GpuRequestError(pod.key, f"metadata.annotations[{GPU_MODELS_ANNOTATION}]",
                                  f"expected comma-separated model names, got {quote(raw_models)}")
        models = frozenset(names)
    if milli is None and count is None:
        return GpuRequest(MILLI, whole, models) if whole > 0 else NO_GPU
    if milli is None:
        milli = MILLI
    if count is None:
        count = 1
    if count == 0:
        return NO_GPU
    if milli < MILLI and count > 1:
        raise GpuRequestError(pod.key, f"metadata.annotations[{GPU_COUNT_ANNOTATION}]",
                              f"a share of a GPU (gpu-milli {milli}) is for one GPU, got gpu-count {count}")
    if whole and (milli != MILLI or count != whole):
        raise GpuRequestError(pod.key, f"spec.containers[*].resources.requests[{NVIDIA_GPU}]",
                              f"{whole} whole GPU(s) conflicts with annotations gpu-milli {milli}, gpu-count {count}")
    return GpuRequest(milli, count, models)


def request_of(pod: PodInfo, state: Mapping[str, object] | None = None) -> GpuRequest:
    """The pod's request, from GpuShare's PreFilter when it ran, else parsed here
    (a malformed request counts as no GPU; GpuShare reports it)."""
    if state is not None:
        got = state.get(STATE_KEY)
        if isinstance(got, GpuRequest):
            return got
    try:
        return parse_gpu_request(pod)
    except GpuRequestError:
        return NO_GPU


def format_index(indices: Iterable[int]) -> str:
    return ",".join(str(i) for i in indices)


def parse_index(raw: str | None, count: int, gpus: int) -> tuple[int, ...] | None:
    """``"0,3"`` -> (0, 3) when it names ``count`` GPUs below ``gpus`` (distinct for
    whole GPUs); None when absent or unusable."""
    if not raw:
        return None
    try:
        idx = tuple(int(p) for p in raw.replace("-", ",").split(","))
    except ValueError:
        return None
    if len(idx) != count or any(not 0 <= i < gpus for i in idx) or len(set(idx)) != len(idx):
        return None
    return idx


def default_gpu_choice(free: npt.NDArray[np.int32], req: GpuRequest) -> tuple[int, ...] | None:
    """The simulator's default device choice on one node (``GpuNodeInfo.AllocateGpuId``,
    also its ``best`` GPU selection): for a share the GPU with the least free milli that
    still fits (lowest index on ties); for whole GPUs the lowest-indexed fully free ones.
    None when the node cannot hold the request."""
    if req.count == 0:
        return ()
    if req.count == 1:
        ok = np.flatnonzero(free >= req.milli)
        if len(ok) == 0:
            return None
        return (int(ok[np.argmin(free[ok])]),)
    ok = np.flatnonzero(free >= req.milli)
    if len(ok) < req.count:
        return None
    return tuple(int(i) for i in ok[: req.count])


@dataclass(slots=True)
class _Charge:
    row: int
    indices: tuple[int, ...]
    amounts: tuple[int, ...]
    tag: int
    column: int
    """Milli-GPU this extension added to the table's ``gpu`` column (0 when the pod's requests carry it)."""


class GpuTable:
    """Per-GPU free capacity of every node, kept in step with a NodeTable (rows ``[0, n)``)."""

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        cap = table.capacity
        self.gmax = 1
        self.free: npt.NDArray[np.int32] = np.zeros((cap, self.gmax), np.int32)
        """Free milli-GPU per node and GPU index; 0 for indices >= the node's GPU count."""
        self.count: npt.NDArray[np.int32] = np.zeros(cap, np.int32)
        self.model: npt.NDArray[np.int32] = np.full(cap, -1, np.int32)
        """Index into ``models`` of each node's GPU model, -1 when it has none."""
        self.models: list[str] = []
        self._model_ids: dict[str, int] = {}
        self.tags: npt.NDArray[np.int32] = np.zeros((cap, _MAX_TAG + 1), np.int32)
        """Pods per GPU affinity tag on each node: column 0 share-gpu, column k k-gpu."""
        self.version: npt.NDArray[np.int64] = np.zeros(cap, np.int64)
        """Stamp of each row's last change (any pod, the node itself); caches compare it."""
        self._stamp = 0
        self._charges: dict[str, _Charge] = {}
        self._row_name: dict[int, str] = {}
        self.caches: dict[object, object] = {}
        """Derived per-row caches of consumers (FGD), keyed by their owner."""
        table.resource_column(GPU_MILLI_RESOURCE)
        for row in range(table.n):
            self._set_row(row)
        for placed in list(table.pods.values()):
            at = table.index.get(placed.node)
            if at is not None:
                self._charge(placed.pod, at)

    # ---- queries -----------------------------------------------------------------

    def model_code(self, name: str) -> int:
        return self._model_ids.get(name, -1)

    def model_name(self, row: int) -> str:
        code = int(self.model[row])
        return self.models[code] if code >= 0 else ""

    def indices_of(self, key: str) -> tuple[int, ...] | None:
        """The GPUs charged to a placed pod (None if the pod holds none)."""
        c = self._charges.get(key)
        return c.indices if c is not None else None

    # ---- TableListener -------------------------------------------------------------

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self._charge(pod, node)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        c = self._charges.pop(pod.key, None)
        if c is not None:
            for i, amount in zip(c.indices, c.amounts):
                self.free[c.row, i] += amount
            if c.tag >= 0:
                self.tags[c.row, c.tag] -= 1
            if c.column:
                self._table.requested[c.row, self._col()] -= c.column
        self._touch(node)

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        for arr in (self.free, self.count, self.model, self.tags):
            arr[dst] = arr[src]
        for c in self._charges.values():
            if c.row == src:
                c.row = dst
        name = self._row_name.pop(src, None)
        if name is not None:
            self._row_name[dst] = name
        self._touch(dst)

    def node_set(self, table: NodeTable, node: int) -> None:
        self._grow(table.capacity)
        name = table.names[node]
        if self._row_name.get(node) == name and self._gpus_of(node) == int(self.count[node]):
            self._set_model(node)  # the same node, same GPUs (a status update): keep the charges
            self._touch(node)
            return
        # A new node, or its GPU count changed: reset the row and charge its pods again.
        keys = [k for k, c in self._charges.items() if c.row == node]
        for key in keys:
            placed = table.pods.get(key)
            if placed is not None:
                self.pod_removed(table, placed.pod, node)
        self._set_row(node)
        for key in keys:
            placed = table.pods.get(key)
            if placed is not None:
                self._charge(placed.pod, node)

    # ---- internals -------------------------------------------------------------------

    def _col(self) -> int:
        return self._table.resource_column(GPU_MILLI_RESOURCE)

    def _touch(self, row: int) -> None:
        self._stamp += 1
        self.version[row] = self._stamp

    def _grow(self, capacity: int) -> None:
        if capacity <= len(self.count):
            return
        def grow(a: np.ndarray, fill: int) -> np.ndarray:
            out = np.full((capacity, *a.shape[1:]), fill, a.dtype)
            out[: len(a)] = a
            return out
        self.free = grow(self.free, 0)
        self.count = grow(self.count, 0)
        self.model = grow(self.model, -1)
        self.tags = grow(self.tags, 0)
        self.version = grow(self.version, 0)

    def _gpus_of(self, row: int) -> int:
        alloc = self._table.infos[row].allocatable
        return int(alloc.get(NVIDIA_GPU, 0)) or int(alloc.get(GPU_MILLI_RESOURCE, 0)) // MILLI

    def _set_model(self, row: int) -> None:
        labels = self._table.infos[row].labels
        name = labels.get(GPU_MODEL_LABEL) or labels.get(GPU_MODEL_LABEL_FALLBACK) or ""
        code = -1
        if name:
            code = self._model_ids.get(name, -1)
            if code < 0:
                code = self._model_ids[name] = len(self.models)
                self.models.append(name)
        self.model[row] = code
        self._table.allocatable[row, self._col()] = int(self.count[row]) * MILLI

    def _set_row(self, row: int) -> None:
        self._grow(self._table.capacity)
        gpus = self._gpus_of(row)
        if gpus > self.gmax:
            pad = np.zeros((self.free.shape[0], gpus - self.gmax), np.int32)
            self.free = np.hstack([self.free, pad])
            self.gmax = gpus
        self.count[row] = gpus
        self.free[row] = 0
        self.free[row, :gpus] = MILLI
        self.tags[row] = 0
        self._row_name[row] = self._table.names[row]
        self._set_model(row)
        self._touch(row)

    def _charge(self, pod: PodInfo, row: int) -> None:
        req = request_of(pod)
        self._touch(row)
        if req.count == 0:
            return
        gpus = int(self.count[row])
        free = self.free[row, :gpus]
        idx = parse_index(pod.annotations.get(GPU_INDEX_ANNOTATION), req.count, gpus)
        if idx is None:
            idx = default_gpu_choice(free, req)
        if idx is None:  # over-committed by someone else: charge what is left, most free first
            order = np.argsort(-free, kind="stable")
            idx = tuple(int(i) for i in order[: req.count])
        amounts = []
        for i in idx:
            take = min(req.milli, max(int(free[i]), 0))
            free[i] -= take
            amounts.append(take)
        tag = req.tag
        if tag >= self.tags.shape[1]:
            self.tags = np.hstack([self.tags, np.zeros((self.tags.shape[0], tag + 1 - self.tags.shape[1]), np.int32)])
        if tag >= 0:
            self.tags[row, tag] += 1
        column = 0
        if GPU_MILLI_RESOURCE not in pod.requests:
            column = req.total
            self._table.requested[row, self._col()] += column
        self._charges[pod.key] = _Charge(row, idx, tuple(amounts), tag, column)


def gpu_table(table: NodeTable) -> GpuTable:
    """The table's GpuTable, built from its current nodes and pods on first use."""
    ext = table.extensions.get(EXTENSION_KEY)
    if ext is None:
        ext = GpuTable(table)
        table.extensions[EXTENSION_KEY] = ext
        table.listeners.append(ext)
    assert isinstance(ext, GpuTable)
    return ext
