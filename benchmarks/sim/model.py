"""Records shared by the strategy lab's loaders, replay and reports.

A workload is a list of ``SimPod``: a parsed Pod plus when it arrives and
how long it runs. Loaders of every format (manifests, CSV, synthetic specs,
the Alibaba GPU trace) produce this one shape, so the replay never cares
where a workload came from. ``SimInputError`` is the one error type for bad
cluster or workload input; its message names the file, the line or object,
and the field, and the CLI prints it as one line (exit 2).

A pod of a gang also carries its group: the pod has scheduler-plugins' label
``scheduling.x-k8s.io/pod-group: <name>`` and its SimPod the group's PodGroup
object (``pod_group``), whichever way the workload named the group (see
``benchmarks.sim.gangs``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from scoring.objects import PodInfo
from scoring.safe_input import quote

__all__ = ["ARRIVAL_ANNOTATION", "DURATION_ANNOTATION", "SimInputError", "SimPod", "as_sim_pod", "pod_timing", "seconds"]

ARRIVAL_ANNOTATION: Final = "vecsched.io/arrival-seconds"
"""Pod annotation: when the pod arrives, in seconds from the start of the replay (default 0)."""
DURATION_ANNOTATION: Final = "vecsched.io/duration-seconds"
"""Pod annotation: how long the pod runs once placed, in seconds (default: it never leaves)."""


class SimInputError(ValueError):
    """A cluster or workload input the lab cannot use; the message names file, line/object and field."""


@dataclass(frozen=True, slots=True)
class SimPod:
    """One pod of a workload."""

    pod: PodInfo
    arrival: float = 0.0
    """Seconds from the start of the replay at which the pod is submitted."""
    duration: float | None = None
    """Seconds it runs once placed; None: it never leaves."""
    pod_group: Mapping[str, Any] | None = None
    """The ``scheduling.x-k8s.io/v1alpha1`` PodGroup the pod belongs to (the pod's label names
    it); None: a pod on its own. Every member of a group holds the same object."""


def seconds(v: Any, where: str, *, allow_none: bool = False) -> float | None:
    """A non-negative finite number of seconds (number or numeric string); ``where`` names it in errors."""
    if v is None or v == "":
        if allow_none:
            return None
        raise SimInputError(f"{where}: required")
    try:
        if isinstance(v, bool):
            raise ValueError
        out = float(v)
    except (TypeError, ValueError):
        raise SimInputError(f"{where}: expected a number of seconds, got {quote(v)}") from None
    if not math.isfinite(out):
        raise SimInputError(f"{where}: expected a finite number of seconds, got {quote(v)}")
    if out < 0:
        raise SimInputError(f"{where}: must not be negative, got {quote(v)}")
    return out


def as_sim_pod(item: Any, where: str) -> SimPod:
    """Adapt what a plug-in loader returns: a SimPod, a PodInfo (timing from its
    annotations), an object with ``pod``/``arrival``/``duration`` attributes, or a
    ``(pod, arrival, duration)`` tuple."""
    if isinstance(item, SimPod):
        return item
    if isinstance(item, PodInfo):
        return pod_timing(item, where)
    if isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], PodInfo):
        return SimPod(item[0], seconds(item[1], f"{where}: arrival") or 0.0,
                      seconds(item[2], f"{where}: duration", allow_none=True))
    pod = getattr(item, "pod", None)
    if isinstance(pod, PodInfo):
        return SimPod(pod, seconds(getattr(item, "arrival", 0.0), f"{where}: arrival") or 0.0,
                      seconds(getattr(item, "duration", None), f"{where}: duration", allow_none=True))
    raise SimInputError(f"{where}: expected a pod, got {type(item).__name__}")


def pod_timing(pod: PodInfo, where: str) -> SimPod:
    """A SimPod timed by the pod's ``vecsched.io/*-seconds`` annotations."""
    ann: Mapping[str, str] = pod.annotations
    arrival = seconds(ann.get(ARRIVAL_ANNOTATION), f"{where}: metadata.annotations.{ARRIVAL_ANNOTATION}", allow_none=True)
    duration = seconds(ann.get(DURATION_ANNOTATION), f"{where}: metadata.annotations.{DURATION_ANNOTATION}", allow_none=True)
    return SimPod(pod, arrival or 0.0, duration)
