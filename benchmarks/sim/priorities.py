"""Pod priorities for a replayed workload, as the Priority admission plugin gives them.

A live pod's ``spec.priority`` is filled in by kube-apiserver from its
``priorityClassName``; a workload file is read without an API server, so the
strategy lab resolves classes itself with ``scoring.priorities`` (its module
docstring gives the rules: a class's value and ``preemptionPolicy``, the
``globalDefault`` class or 0 for a pod naming none, admission's refusals). The
classes are those of the workload file plus the ones every cluster has
(``system-node-critical``, ``system-cluster-critical``). This module adds the
file locations to the errors, and reads the CSV ``priority`` column.

Priorities decide anything only with ``vecsched sim --preemption``; without it
they are read and checked, and every pod is placed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from benchmarks.sim.model import SimInputError
from scoring import priorities
from scoring.objects import ObjectError, PodInfo
from scoring.safe_input import quote

__all__ = ["KIND", "PriorityClasses", "priority_value"]

KIND: Final = "PriorityClass"


def priority_value(text: str, where: str) -> int:
    """A priority written as text (a CSV cell): an int32; ``where`` names it in errors."""
    try:
        value = int(text.strip())
    except ValueError:
        raise SimInputError(f"{where}: expected an integer, got {quote(text)}") from None
    low, high = priorities.INT32_RANGE
    if not low <= value <= high:
        raise SimInputError(f"{where}: must be a 32-bit integer, got {value}")
    return value


class PriorityClasses:
    """The PriorityClasses of a workload file, and the resolution of its pods' priorities."""

    def __init__(self) -> None:
        self.classes = priorities.PriorityClasses()
        self._where: dict[str, str] = {}

    def add(self, obj: Mapping[str, Any], where: str) -> priorities.PriorityClass:
        """Validate and keep one PriorityClass object found at ``where`` (file and document)."""
        try:
            pc = priorities.priority_class_from_json(obj)
        except ObjectError as e:
            raise SimInputError(f"{where}: {e}") from None
        if pc.name in self._where:
            raise SimInputError(f"{where}: PriorityClass {pc.name}: metadata.name: duplicate PriorityClass "
                                f"(also at {self._where[pc.name]})")
        self.classes.add(pc)
        self._where[pc.name] = where
        return pc

    def resolve(self, pod: PodInfo, where: str) -> PodInfo:
        """``pod`` (found at ``where``) with its priority, class name and policy as admission gives them."""
        try:
            raw = self.classes.resolve(pod.raw, f"pod {pod.key}")
        except ObjectError as e:
            raise SimInputError(f"{where}: {e}") from None
        if raw is pod.raw:
            return pod
        return replace(pod, priority=raw["spec"]["priority"], raw=raw)
