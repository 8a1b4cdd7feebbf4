"""GPU fragmentation measured against a target workload (Weng et al., ATC '23), vectorised.

Pure arithmetic shared by the ``FGD`` plugin, the strategy lab's
fragmentation report and the tests.

Definitions (paper section 4; public simulator ``pkg/utils/frag.go``,
``NodeGpuShareFragAmount``). A node n has per-GPU free milli-GPU ``f_g``,
``S = sum_g f_g`` in total, and ``c`` free milli-CPU. A *typical pod* m asks
for ``k_m`` GPUs with ``u_m`` milli-GPU free on each (u = 0: no GPU), ``c_m``
milli-CPU, optionally certain GPU models. Its fragmentation of n is::

    F_n(m) = sum_{g: f_g < u_m} f_g     if m fits n: u_m > 0, the model is allowed,
                                        c >= c_m and #{g: f_g >= u_m} >= k_m
    F_n(m) = S                          otherwise (incl. pods asking for no GPU)

i.e. idle GPU capacity that m cannot use. The *target workload* M is a
popularity distribution over typical pods; the expected fragmentation is
``F_n(M) = sum_m p_m F_n(m)`` and the cluster's is ``sum_n F_n(M)``.

The paper's full text was not available to me (only its abstract and the
artifact), so the definitions are those of the simulator's code that produced
its results; choices the code makes that a reader of the prose might not
expect:
- CPU is the only non-GPU dimension checked (memory is ignored), CPU as
  allocatable minus fit requests on the node and the pod's *non-zero* request;
- pods asking for no GPU count all idle GPUs of every node as fragmented
  (the code's XL/XR quadrants are summed with the others);
- typical pods are the most popular (cpu, gpu-milli, gpu-count, models) shapes
  of the workload, taken in decreasing popularity until they cover 95% of its
  pods, then renormalised (``GetTypicalPods`` with the artifact's
  ``podPopularityThreshold: 95``, ``isInvolvedCpuPods: true``).

Here ``p_m`` is kept as an integer count ``w_m`` (``p_m = w_m / W``), so every
fragmentation below is an exact integer ``W * F`` in float64 and an unchanged
node gives a difference of exactly 0.

Vectorisation: a node's F only needs, per distinct ``u`` among the typical
pods, ``below_u = sum_g f_g [f_g < u]`` and ``cnt_u = #{g: f_g >= u}``; with
typical pods grouped by (u, k) into J groups and per-node group weights
``w_nj = sum_{m in j} w_m [model ok][c >= c_m]``::

    W F_n = S W + sum_j [cnt_u(j) >= k_j] w_nj (below_u(j) - S)

Placing a share of ``u_p`` on GPU g changes only ``f_g``, so the after-state of
every (node, GPU) candidate is a table lookup on ``f_g``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, integer, known_fields, mapping, sequence, string
from scoring.plugins.gpu_state import MILLI

__all__ = [
    "TypicalPod",
    "TargetWorkload",
    "parse_typical_pods",
    "typical_pods_of",
    "gpu_profile",
    "group_weights",
    "weighted_fragmentation",
    "node_fragmentation",
    "share_fragmentation",
    "frag_score",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
POPULARITY_THRESHOLD: Final = 95
"""Percent of the workload's pods the typical pods must cover (the artifact's setting)."""


@dataclass(frozen=True, slots=True, order=True)
class TypicalPod:
    """One pod shape of the target workload, with its popularity as a count."""

    milli_cpu: int
    gpu_milli: int
    """Milli-GPU on each GPU (0: no GPU)."""
    gpu_count: int
    models: tuple[str, ...] = ()
    """Allowed GPU models (sorted); empty for any."""
    weight: int = 1

    def as_args(self) -> dict[str, Any]:
        out: dict[str, Any] = {"milliCPU": self.milli_cpu, "gpuMilli": self.gpu_milli,
                               "gpuCount": self.gpu_count, "weight": self.weight}
        if self.models:
            out["gpuModels"] = list(self.models)
        return out


def parse_typical_pods(v: Any, path: str) -> tuple[TypicalPod, ...]:
    """FGD's ``typicalPods`` arg: ``[{milliCPU, gpuMilli, gpuCount, gpuModels, weight}]``."""
    out = []
    for i, item in enumerate(sequence(v, path)):
        ipath = f"{path}[{i}]"
        m = mapping(item, ipath)
        known_fields(m, ("milliCPU", "gpuMilli", "gpuCount", "gpuModels", "weight"), ipath)
        cpu = integer(m.get("milliCPU", 0), f"{ipath}.milliCPU", lo=0)
        milli = integer(m.get("gpuMilli", 0), f"{ipath}.gpuMilli", lo=0, hi=MILLI)
        count = integer(m.get("gpuCount", 1 if milli else 0), f"{ipath}.gpuCount", lo=0, hi=1 << 16)
        if (milli == 0) != (count == 0):
            raise ArgsError(f"{ipath}.gpuCount", f"gpuMilli {milli} and gpuCount {count}: both or neither must be 0")
        if 0 < milli < MILLI and count > 1:
            raise ArgsError(f"{ipath}.gpuCount", f"a share of a GPU (gpuMilli {milli}) is for one GPU, got {count}")
        models = tuple(sorted(string(x, f"{ipath}.gpuModels[{j}]")
                              for j, x in enumerate(sequence(m.get("gpuModels"), f"{ipath}.gpuModels"))))
        weight = integer(m.get("weight", 1), f"{ipath}.weight", lo=1)
        out.append(TypicalPod(cpu, milli, count, models, weight))
    return tuple(out)


def typical_pods_of(shapes: Iterable[tuple[int, int, int, tuple[str, ...]]],
                    threshold: int = POPULARITY_THRESHOLD) -> tuple[TypicalPod, ...]:
    """The simulator's ``GetTypicalPods``: count each (milli_cpu, gpu_milli, gpu_count,
    models) shape, sort by count (ties: larger shape first, as its reversed Less),
    keep the most popular until they cover ``threshold`` percent of all pods."""
    counts: dict[tuple[int, int, int, tuple[str, ...]], int] = {}
    for s in shapes:
        counts[s] = counts.get(s, 0) + 1
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0][0], kv[0][1], kv[0][2], ",".join(kv[0][3])),
                    reverse=True)
    expected = threshold * total / 100.0
    out: list[TypicalPod] = []
    cum = 0
    for (cpu, milli, count, models), n in ranked:
        if cum >= expected:
            break
        out.append(TypicalPod(cpu, milli, count, models, n))
        cum += n
    return tuple(out)


class TargetWorkload:
    """Typical pods as arrays, grouped for the vectorised fragmentation formula."""

    def __init__(self, pods: Sequence[TypicalPod]) -> None:
        self.pods = tuple(pods)
        self.cpu = np.array([p.milli_cpu for p in pods], np.int64)
        self.weight = np.array([p.weight for p in pods], np.float64)
        self.total = float(self.weight.sum())
        """W: the sum of the typical pods' weights."""
        gpu = [(p.gpu_milli, p.gpu_count) for p in pods if p.gpu_milli > 0]
        self.u_values = np.array(sorted({u for u, _ in gpu}), np.int32)
        """The distinct per-GPU requests u, ascending (U of them)."""
        groups = sorted(set(gpu))
        self.group_u = np.array([int(np.searchsorted(self.u_values, u)) for u, _ in groups], np.intp)
        self.group_k = np.array([k for _, k in groups], np.int32)
        self.members = np.zeros((len(pods), len(groups)), np.float64)
        """(M x J): weight of typical pod m in group j (0 when not a member)."""
        gid = {g: j for j, g in enumerate(groups)}
        for m, p in enumerate(pods):
            if p.gpu_milli > 0:
                self.members[m, gid[(p.gpu_milli, p.gpu_count)]] = p.weight
        self._access: tuple[int, npt.NDArray[np.bool_]] | None = None
        self._positions = np.searchsorted(self.u_values[self.group_u], np.arange(MILLI + 1), side="right")

    def positions(self) -> npt.NDArray[np.intp]:
        """For f in 0..1000: how many groups have u <= f (groups are sorted by u)."""
        return self._positions

    def access(self, models: Sequence[str]) -> npt.NDArray[np.bool_]:
        """((len(models) + 1) x M): may typical pod m use a node of model t? The last row
        serves nodes without a model (model code -1)."""
        if self._access is None or self._access[0] != len(models):
            acc = np.ones((len(models) + 1, len(self.pods)), np.bool_)
            for m, p in enumerate(self.pods):
                if p.models:
                    acc[:, m] = [name in p.models for name in models] + [False]
            self._access = (len(models), acc)
        return self._access[1]

    @classmethod
    def from_args(cls, args: Mapping[str, Any], path: str) -> TargetWorkload:
        return cls(parse_typical_pods(args.get("typicalPods"), f"{path}.typicalPods" if path else "typicalPods"))


def gpu_profile(free: npt.NDArray[np.int32], u_values: npt.NDArray[np.int32]) -> tuple[IntArray, IntArray]:
    """(below, cnt), each (... x U): ``below_u = sum_g f_g [f_g < u]``, ``cnt_u = #{g: f_g >= u}``
    for per-GPU free milli ``free`` (... x G)."""
    f = free[..., :, None]
    lt = f < u_values
    below = np.where(lt, f, 0).sum(axis=-2, dtype=np.int64)
    cnt = (~lt).sum(axis=-2, dtype=np.int64)
    return below, cnt


def group_weights(cpu_left: IntArray, model: npt.NDArray[np.int32], access: npt.NDArray[np.bool_],
                  wl: TargetWorkload) -> FloatArray:
    """(... x J): ``w_nj = sum_{m in j} w_m [model ok][cpu_left >= c_m]``."""
    ok = access[model] & (cpu_left[..., None] >= wl.cpu)
    return np.asarray(ok.astype(np.float64) @ wl.members, np.float64)


def weighted_fragmentation(total: IntArray | FloatArray, below: IntArray, cnt: IntArray,
                           weights: FloatArray, wl: TargetWorkload) -> FloatArray:
    """``W F = S W + sum_j [cnt_u(j) >= k_j] w_j (below_u(j) - S)`` over leading dims.

    ``total`` is S (...), ``below``/``cnt`` (... x U), ``weights`` (... x J), broadcastable.
    The result is W times the expected fragmentation in milli-GPU (exact integers).
    """
    s = np.asarray(total, np.float64)
    fit = cnt[..., wl.group_u] >= wl.group_k
    gain = np.where(fit, weights, 0.0) * (below[..., wl.group_u] - s[..., None])
    return np.asarray(s * wl.total + gain.sum(axis=-1), np.float64)


def node_fragmentation(free: npt.NDArray[np.int32], cpu_left: IntArray, model: npt.NDArray[np.int32],
                       models: Sequence[str], wl: TargetWorkload) -> FloatArray:
    """Expected fragmentation ``F_n(M)`` in milli-GPU of each node (rows of ``free``)."""
    if wl.total == 0:
        return np.zeros(len(free), np.float64)
    below, cnt = gpu_profile(free, wl.u_values)
    w = group_weights(cpu_left, model, wl.access(models), wl)
    return weighted_fragmentation(free.sum(axis=-1, dtype=np.int64), below, cnt, w, wl) / wl.total


def share_fragmentation(idle: IntArray, below: IntArray, cnt: IntArray, weights: FloatArray,
                        rows: npt.NDArray[np.intp], free: IntArray, u_pod: int, wl: TargetWorkload,
                        scratch: FloatArray | None = None) -> FloatArray:
    """W F' of candidate placements of a share of ``u_pod``: candidate c puts it on a GPU
    of node ``rows[c]`` that has ``free[c] >= u_pod`` milli free.

    Inputs per node: ``idle`` S (R), ``below``/``cnt`` (R x U) of the current state and
    ``weights`` (R x J) for the CPU left *after* the placement. Result (C).

    Only that GPU changes, from f to f' = f - u_pod, so with groups sorted by u:
    groups with u <= f' keep below and cnt; groups with f' < u <= f lose the GPU
    from cnt and gain f' in below; groups with u > f see below drop by u_pod. Each
    range is a difference of per-node prefix sums over the groups, so the work is
    O(R x J + C) instead of O(C x J)::

        W F' = S' W + [B]_L - S' [A]_L + [Bm]_M + (f' - S') [Am]_M + [B]_H - (u_pod + S') [A]_H

    with a_j = [cnt_j >= k_j] w_j, b_j = a_j below_j, am/bm the same with cnt_j - 1,
    and S' = S - u_pod. ``scratch``: a reusable float64 buffer of at least
    (J + 1) x 4 x R elements (allocating that much per call costs more than the sums).
    """
    r, jj = len(idle), len(wl.group_u)
    cnt_g = cnt.T[wl.group_u]                                # (J x R): groups first, so that
    below_g = below.T[wl.group_u].astype(np.float64)         # the prefix sums run over rows
    w = np.ascontiguousarray(weights.T)
    size = (jj + 1) * 4 * r
    if scratch is None or scratch.size < size:
        scratch = np.empty(size, np.float64)
    prefix = scratch[:size].reshape(jj + 1, 4, r)            # a, a*below, am, am*below per group
    prefix[0] = 0.0
    a, am = prefix[1:, 0], prefix[1:, 2]
    np.multiply(cnt_g >= wl.group_k[:, None], w, out=a)
    np.multiply(cnt_g > wl.group_k[:, None], w, out=am)
    np.multiply(a, below_g, out=prefix[1:, 1])
    np.multiply(am, below_g, out=prefix[1:, 3])
    for j in range(jj):  # running sums over the J groups (numpy's cumsum is slow on short axes)
        np.add(prefix[j + 1], prefix[j], out=prefix[j + 1])
    flat = prefix.reshape(-1)
    f = np.asarray(free, np.intp)
    fa = f - u_pod
    pos = wl.positions()
    at_lo = pos[fa] * (4 * r) + rows
    at_mid = pos[f] * (4 * r) + rows
    at_end = jj * (4 * r) + rows
    lo = [flat.take(at_lo + k * r) for k in range(4)]
    mid = [flat.take(at_mid + k * r) for k in range(4)]
    end = [flat.take(at_end + k * r) for k in range(2)]
    s1 = (idle[rows] - u_pod).astype(np.float64)
    term_l = lo[1] - s1 * lo[0]
    term_m = (mid[3] - lo[3]) + (fa - s1) * (mid[2] - lo[2])
    term_h = (end[1] - mid[1]) - (u_pod + s1) * (end[0] - mid[0])
    return np.asarray(s1 * wl.total + term_l + term_m + term_h, np.float64)


def frag_score(delta: FloatArray, total: float) -> IntArray:
    """The simulator's FGD score: ``int64(sigmoid((F_before - F_after) / 1000) * 100)``
    with F in milli-GPU (``delta`` is W times that difference). 50 = no change; a
    placement that adds one GPU of expected fragmentation scores 26."""
    x = delta / total / MILLI if total else np.zeros_like(delta)
    return np.trunc(100.0 * (1.0 / (1.0 + np.exp(-x)))).astype(np.int64)
