"""Timing every plugin call of a live profile, without touching the scoring core.

``scheduler_plugin_execution_duration_seconds`` and
``scheduler_framework_extension_point_duration_seconds`` need the time of each
plugin at each extension point; ``scheduler_unschedulable_pods`` needs which
plugins rejected a pod. ``instrument`` wraps a built ``Profile``'s plugins in
thin proxies that keep their names and protocols, time each call with
``perf_counter`` (tens of nanoseconds) and record rejections into a per-cycle
``Trace``. As upstream (pluginMetricsSamplePercent), per-plugin durations are
observed for a sample of 10% of cycles; extension-point totals for all. The scoring core stays free of metrics and of the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.framework import (CycleState, FilterPlugin, NodeSubset, PostFilterPlugin, PostFilterResult, PreFilterPlugin,
                               Profile, Reason, ReservePlugin, ScoreExtensions, ScorePlugin)
from scoring.objects import PodInfo
from scoring.table import IntArray, NodeTable
from scheduler.metrics import Metrics

__all__ = ["Trace", "instrument"]


@dataclass(slots=True)
class Trace:
    """What one scheduling cycle's plugins did: time per extension point, and who rejected."""

    seconds: dict[str, float] = field(default_factory=dict)
    rejected_by: set[str] = field(default_factory=set)
    failed: bool = False
    sampled: bool = True
    """Whether this cycle's per-plugin durations are observed (upstream samples 10% of cycles)."""
    post_filter: str = ""
    """The PostFilter extension point's status when it ran (Success, Unschedulable, Error)."""

    def reset(self, *, sampled: bool = True) -> None:
        self.seconds.clear()
        self.rejected_by.clear()
        self.failed = False
        self.sampled = sampled
        self.post_filter = ""


class _Timed:
    def __init__(self, inner: Any, metrics: Metrics, trace: Trace) -> None:
        self.inner = inner
        self.name: str = inner.name
        self._metrics = metrics
        self._trace = trace
        self._children: dict[tuple[str, str], Any] = {}

    def _record(self, point: str, started: float, status: str, *, rejects: bool = True) -> None:
        took = perf_counter() - started
        if self._trace.sampled:
            child = self._children.get((point, status))
            if child is None:  # labels() costs a lock and a dict walk: look each series up once
                child = self._children[(point, status)] = self._metrics.plugin_duration.labels(self.name, point, status)
            child.observe(took)
        self._trace.seconds[point] = self._trace.seconds.get(point, 0.0) + took
        if status == "Error":
            self._trace.failed = True
        elif status == "Unschedulable" and rejects:
            self._trace.rejected_by.add(self.name)

    def __getattr__(self, attr: str) -> Any:  # anything else a caller reads from the plugin
        return getattr(self.inner, attr)


class _PreFilter(_Timed):
    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None:
        t = perf_counter()
        try:
            out: str | NodeSubset | None = self.inner.prefilter(pod, table, state)
        except Exception:
            self._record("PreFilter", t, "Error")
            raise
        # A message rejects the pod; a NodeSubset only narrows the nodes (NodeAffinity, VolumeBinding).
        self._record("PreFilter", t, "Unschedulable" if isinstance(out, str) else "Success")
        return out


class _Filter(_Timed):
    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        t = perf_counter()
        try:
            out: Sequence[Reason] | None = self.inner.filter(pod, table, state)
        except Exception:
            self._record("Filter", t, "Error")
            raise
        self._record("Filter", t, "Unschedulable" if out and any(r.nodes.any() for r in out) else "Success")
        return out


class _Score(_Timed):
    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        t = perf_counter()
        try:
            out: IntArray | None = self.inner.score(pod, table, nodes, state)
        except Exception:
            self._record("Score", t, "Error")
            raise
        self._record("Score", t, "Success")
        return out


class _ScoreNormalize(_Score):
    def normalize(self, scores: IntArray, state: CycleState) -> IntArray:
        t = perf_counter()
        try:
            out: IntArray = self.inner.normalize(scores, state)
        except Exception:
            self._record("NormalizeScore", t, "Error")
            raise
        self._record("NormalizeScore", t, "Success")
        return out


class _Reserve(_Timed):
    def reserve(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> Mapping[str, str] | None:
        t = perf_counter()
        try:
            out: Mapping[str, str] | None = self.inner.reserve(pod, table, row, state)
        except Exception:
            self._record("Reserve", t, "Error")
            raise
        self._record("Reserve", t, "Success")
        return out


class _PostFilter(_Timed):
    def postfilter(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                   profile: Profile) -> PostFilterResult:
        t = perf_counter()
        try:
            out: PostFilterResult = self.inner.postfilter(pod, table, state, reasons, profile)
        except Exception:
            self._trace.post_filter = "Error"
            self._record("PostFilter", t, "Error")
            raise
        status = "Success" if out.success else "Unschedulable"
        if self._trace.post_filter != "Success":
            self._trace.post_filter = status
        # A PostFilter plugin that cannot help did not reject the pod: it is not one of its unschedulable plugins.
        self._record("PostFilter", t, status, rejects=False)
        return out


def instrument(profile: Profile, *, metrics: Metrics) -> Trace:
    """Wrap ``profile``'s plugins in place with timing proxies; returns the Trace they write to."""
    trace = Trace()
    profile.prefilters = [_PreFilter(p, metrics, trace) for p in profile.prefilters]
    profile.filters = [_Filter(p, metrics, trace) for p in profile.filters]
    profile.scorers = [((_ScoreNormalize if isinstance(p, ScoreExtensions) else _Score)(p, metrics, trace), w)
                       for p, w in profile.scorers]
    profile.reservers = [_Reserve(p, metrics, trace) for p in profile.reservers]
    profile.postfilters = [_PostFilter(p, metrics, trace) for p in profile.postfilters]
    return trace


_: tuple[type[PreFilterPlugin], type[FilterPlugin], type[ScorePlugin], type[ReservePlugin],
         type[PostFilterPlugin]] = (_PreFilter, _Filter, _Score, _Reserve, _PostFilter)
