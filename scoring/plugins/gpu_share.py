"""GpuShare: a pod fits only where specific GPUs can hold its share, and Reserve
records which GPUs it gets (vecsched's counterpart of the simulator's
``Open-Gpu-Share`` filter/reserve plugin, ``pkg/simulator/plugin/open_gpu_share.go``).

PreFilter reads the pod's GPU request (``gpu_state``: ``vecsched.io/gpu-milli``,
``gpu-count``, ``gpu-models`` or whole ``nvidia.com/gpu``); a malformed one
rejects the pod everywhere with ``invalid GPU request: <field>: <problem>``.

Filter, for a pod asking for k GPUs with u milli-GPU each (pods asking for no
GPU pass everywhere, also on GPU nodes, as in the simulator):

- ``node(s) didn't match GPU model`` (unresolvable) when the pod lists models
  and the node's ``vecsched.io/gpu-model`` label is not one of them (a node
  without a model matches no list);
- ``Insufficient GPU`` when fewer than k of the node's GPUs have u milli free
  (a 0.5-GPU pod needs one GPU with >= 500 free, a 2-GPU pod two fully free
  GPUs); unresolvable when the node has fewer than k GPUs at all, in the way
  NodeResourcesFit marks a request above allocatable.

Reserve chooses the GPUs and returns ``{"vecsched.io/gpu-index": "0,3"}``:
a choice left in CycleState by a score plugin (FGD's least-fragmenting GPU)
wins; otherwise ``gpuSelection`` decides for a share -- ``BestFit`` (default;
the simulator's default ``best``: the GPU with the least free milli that fits,
lowest index on ties), ``WorstFit`` (the most free) or ``Random`` (uniform
over the GPUs that fit, from a generator seeded by ``seed`` and the lab's run seed) -- and whole GPUs
always take the lowest-indexed fully free ones (``AllocateExclusiveGpuId``).

Args: ``gpuSelection: BestFit|WorstFit|Random``, ``seed: 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from scoring.args import integer, known_fields, mapping, string
from scoring.framework import CycleState, FilterPlugin, PreFilterPlugin, Reason, ReservePlugin
from scoring.objects import PodInfo
from scoring.plugins.gpu_state import (
    CHOICE_KEY,
    GPU_INDEX_ANNOTATION,
    STATE_KEY,
    GpuChoice,
    GpuRequestError,
    default_gpu_choice,
    format_index,
    gpu_table,
    parse_gpu_request,
    request_of,
)
from scoring.table import NodeTable

__all__ = ["NAME", "INSUFFICIENT_GPU", "MODEL_MISMATCH", "INVALID_REQUEST", "SELECTIONS", "GpuShare", "new"]

NAME: Final = "GpuShare"
INSUFFICIENT_GPU: Final = "Insufficient GPU"
MODEL_MISMATCH: Final = "node(s) didn't match GPU model"
INVALID_REQUEST: Final = "invalid GPU request"
SELECTIONS: Final = ("BestFit", "WorstFit", "Random")


class GpuShare:
    name: Final = NAME

    def __init__(self, *, selection: str = "BestFit", seed: int = 0) -> None:
        self.selection = selection
        self.seed = seed
        self.reseed(0)

    def reseed(self, run_seed: int) -> None:
        """Restart the Random GPU selection from (args seed, run seed); the strategy lab
        calls it with each run's seed."""
        self._rng = np.random.default_rng([self.seed, run_seed])

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | None:
        try:
            state[STATE_KEY] = parse_gpu_request(pod)
        except GpuRequestError as e:
            return f"{INVALID_REQUEST}: {e}"
        return None

    node_local: Final = True
    """For the preemption dry run: the verdict on a node depends on that node's pods only."""

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        return request_of(pod, state).count > 0

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        req = request_of(pod, state)
        if req.count == 0:
            return None
        ext = gpu_table(table)
        n = table.n
        reasons = []
        mismatch = np.zeros(n, np.bool_)
        if req.models is not None:
            codes = [c for c in (ext.model_code(m) for m in req.models) if c >= 0]
            mismatch = ~np.isin(ext.model[:n], codes)
            if mismatch.any():
                reasons.append(Reason(MODEL_MISMATCH, mismatch, unresolvable=True))
        short = ((ext.free[:n] >= req.milli).sum(axis=1) < req.count) & ~mismatch
        if short.any():
            never = ext.count[:n] < req.count
            if (short & ~never).any():
                reasons.append(Reason(INSUFFICIENT_GPU, short & ~never))
            if (short & never).any():
                reasons.append(Reason(INSUFFICIENT_GPU, short & never, unresolvable=True))
        return reasons

    def choose(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> tuple[int, ...] | None:
        """The GPU indices the pod gets on ``row`` (None when it needs none or none fit)."""
        req = request_of(pod, state)
        if req.count == 0:
            return None
        ext = gpu_table(table)
        free = ext.free[row, : int(ext.count[row])]
        if req.shared:
            choice = state.get(CHOICE_KEY)
            if isinstance(choice, GpuChoice):
                g = choice.for_row(row)
                if 0 <= g < len(free) and free[g] >= req.milli:
                    return (g,)
            ok = np.flatnonzero(free >= req.milli)
            if len(ok) and self.selection == "WorstFit":
                return (int(ok[np.argmax(free[ok])]),)
            if len(ok) and self.selection == "Random":
                return (int(ok[self._rng.integers(len(ok))]),)
        return default_gpu_choice(free, req)

    def reserve(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> Mapping[str, str] | None:
        idx = self.choose(pod, table, row, state)
        if not idx:
            return None
        return {GPU_INDEX_ANNOTATION: format_index(idx)}


def new(args: Mapping[str, Any], path: str) -> GpuShare:
    m = mapping(args, path)
    known_fields(m, ("gpuSelection", "seed"), path)
    sel = string(m.get("gpuSelection", "BestFit"), f"{path}.gpuSelection", choices=SELECTIONS)
    seed = integer(m.get("seed", 0), f"{path}.seed", lo=0)
    return GpuShare(selection=sel, seed=seed)


_: type[FilterPlugin] = GpuShare
_p: type[PreFilterPlugin] = GpuShare
_r: type[ReservePlugin] = GpuShare
