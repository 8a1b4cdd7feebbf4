"""PodDisruptionBudgets as preemption reads them.

DefaultPreemption gives back the victims a budget protects before the others and
prefers the node whose eviction breaks the fewest budgets (upstream's
filterPodsWithPDBViolation): it needs each budget's selector, namespace,
``status.disruptionsAllowed`` and ``status.disruptedPods``. The live scheduler's
cache and the extender keep them from a watch, ``explain`` from its snapshot, as
the ``Budgets`` table extension.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scoring.objects import INT32_MAX, INT32_MIN, ObjectError, PodInfo, _string, checked, object_ref
from scoring.plugins.pod_selectors import Selector, SelectorError, parse_selector
from scoring.table import NodeTable
from scoring.safe_input import quote

__all__ = ["Budget", "Budgets", "budget_from_json"]


@dataclass(frozen=True, slots=True)
class Budget:
    """What preemption reads of a PodDisruptionBudget."""

    namespace: str
    name: str
    selector: Selector | None
    """None when the selector is missing, empty or invalid: it then matches no pod."""
    allowed: int
    """``status.disruptionsAllowed``."""
    disrupted: frozenset[str]
    """Names in ``status.disruptedPods``: already counted by the API server."""

    def selects(self, pod: PodInfo) -> bool:
        """Whether the budget covers ``pod`` (disrupted pods included)."""
        return (self.selector is not None and pod.namespace == self.namespace and bool(pod.labels)
                and self.selector.matches(pod.labels))


def budget_from_json(obj: Mapping[str, Any]) -> Budget:
    """A ``policy/v1`` PodDisruptionBudget; ObjectError names a field preemption cannot read."""
    if not isinstance(obj, Mapping):
        raise ObjectError("PodDisruptionBudget", "(object)", f"expected an object, got {quote(obj)}")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise ObjectError("PodDisruptionBudget", "metadata", "expected a mapping")
    ref = object_ref("PodDisruptionBudget", obj)
    checked(ref, obj)
    ns = _string(ref, "metadata.namespace", meta.get("namespace"), "default")
    name = _string(ref, "metadata.name", meta.get("name"))
    ref = f"PodDisruptionBudget {ns}/{name}"
    spec = {} if obj.get("spec") is None else obj["spec"]
    if not isinstance(spec, Mapping):
        raise ObjectError(ref, "spec", "expected a mapping")
    status = {} if obj.get("status") is None else obj["status"]
    if not isinstance(status, Mapping):
        raise ObjectError(ref, "status", "expected a mapping")
    selector: Selector | None = None
    if spec.get("selector") is not None:
        try:
            selector = parse_selector(spec.get("selector"), "spec.selector")
        except SelectorError:
            selector = None  # upstream: an invalid selector matches nothing
        if selector is not None and selector.empty:
            selector = None  # ... and so does an empty one, for a PDB
    allowed = status.get("disruptionsAllowed", 0) or 0
    if not isinstance(allowed, int) or isinstance(allowed, bool):
        raise ObjectError(ref, "status.disruptionsAllowed", f"expected an integer, got {quote(allowed)}")
    if not INT32_MIN <= allowed <= INT32_MAX:  # an int32 in policy/v1
        raise ObjectError(ref, "status.disruptionsAllowed", f"{quote(allowed)} is out of int32 range")
    disrupted = status.get("disruptedPods") or {}
    if not isinstance(disrupted, Mapping):
        raise ObjectError(ref, "status.disruptedPods", "expected a mapping of pod names to times")
    return Budget(ns, name, selector, allowed, frozenset(str(k) for k in disrupted))


@dataclass
class Budgets:
    """The cluster's PodDisruptionBudgets, kept as a table extension by the cache (live)
    or the snapshot (``explain``). ``selector_generation`` changes only when which pods a
    budget selects may change, not when its status does."""

    KEY: ClassVar[str] = "preemption/budgets"
    items: dict[tuple[str, str], Budget] = field(default_factory=dict)
    selector_generation: int = 0

    @classmethod
    def of(cls, table: NodeTable) -> Budgets:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, Budgets):
            ext = table.extensions[cls.KEY] = Budgets()
        return ext

    def apply(self, obj: Mapping[str, Any]) -> Budget:
        b = budget_from_json(obj)
        key = (b.namespace, b.name)
        old = self.items.get(key)
        if old is None or old.selector != b.selector:
            self.selector_generation += 1
            if old is not None:
                del self.items[key]  # keep ``order`` stable for the others
        self.items[key] = b
        return b

    def delete(self, namespace: str, name: str) -> None:
        if self.items.pop((namespace, name), None) is not None:
            self.selector_generation += 1

    @property
    def order(self) -> list[Budget]:
        return list(self.items.values())
