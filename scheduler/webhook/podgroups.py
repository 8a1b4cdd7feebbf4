"""``/validate-podgroups``: refuse PodGroups that can never be scheduled.

A gang that can never run waits silently: its pods stay pending, and the
PodGroup operator reports ``Pending`` forever. Three mistakes are certain at
admission time and are refused with kube-apiserver's field errors:

- ``spec.minMember`` missing or below 1 (a gang of nobody; the CRD's schema
  says ``minimum: 1`` but does not require the field, and unset reads as 0);
- ``spec.scheduleTimeoutSeconds`` of 0 or less: every member's Permit wait
  would time out at once;
- ``spec.minResources`` that the whole cluster could not hold with every node
  empty. Coscheduling's ``CheckClusterResource`` (scheduler-plugins
  ``pkg/coscheduling/core``) admits a group when the free resources summed
  over *all* nodes cover ``minResources`` -- the members spread over nodes --
  so the bound that can never be met is the sum of every node's allocatable,
  not the largest node's. A resource no node offers at all is the plain case.
  Quantities that do not parse are field errors too.

Nodes come from the webhook's Nodes informer; without one (RBAC without
nodes list/watch, no nodes yet) the capacity rule is skipped with a warning
rather than refusing every gang. Integer and quantity checks follow the CRD's
types (int32; quantities as ``resource.ParseQuantity`` reads them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from scheduler.webhook.review import FieldError, invalid, required
from scoring.quantity import QuantityError, format_bytes, format_milli, milli_value, value

__all__ = ["GROUP", "KIND", "ClusterCapacity", "validate_podgroup"]

GROUP: Final = "scheduling.x-k8s.io"
KIND: Final = "PodGroup"
_INT32_MAX: Final = 2**31 - 1
# resource.ParseQuantity's ErrFormatWrong, the text kube-apiserver gives for a malformed quantity.
_QUANTITY_FORMAT: Final = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


@dataclass(frozen=True, slots=True)
class ClusterCapacity:
    """Every node's allocatable summed per resource (milli-CPU, bytes, counts), and how many nodes."""

    totals: Mapping[str, int]
    nodes: int


def _int32(spec: Mapping[str, Any], key: str, errors: list[FieldError]) -> int | None:
    v = spec.get(key)
    if v is None:
        return None
    path = f"spec.{key}"
    if not isinstance(v, int) or isinstance(v, bool):
        errors.append(invalid(path, v, "must be an integer"))
        return None
    if v > _INT32_MAX:
        errors.append(invalid(path, v, f"must be less than or equal to {_INT32_MAX}"))
        return None
    return v


def _show(resource: str, amount: int) -> str:
    if resource == "cpu":
        return format_milli(amount)
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return format_bytes(amount)
    return str(amount)


def _min_resources(spec: Mapping[str, Any], capacity: ClusterCapacity | None, errors: list[FieldError],
                   warnings: list[str]) -> None:
    raw = spec.get("minResources")
    if raw is None:
        return
    if not isinstance(raw, dict):
        errors.append(invalid("spec.minResources", raw, "must be a map of resource names to quantities"))
        return
    amounts: dict[str, int] = {}
    for name, q in raw.items():
        path = f"spec.minResources[{name}]"
        try:
            amount = milli_value(q) if name == "cpu" else value(q)
        except QuantityError:
            errors.append(invalid(path, q, _QUANTITY_FORMAT))
            continue
        if amount < 0:
            errors.append(invalid(path, q, "must be greater than or equal to 0"))
            continue
        amounts[name] = amount
    if not amounts:
        return
    if capacity is None or capacity.nodes == 0:
        warnings.append("vecsched webhook: spec.minResources not checked against the cluster: no Nodes are known "
                        "to the webhook")
        return
    for name, amount in amounts.items():
        total = capacity.totals.get(name, 0)
        if amount <= total:
            continue
        path = f"spec.minResources[{name}]"
        if total == 0:
            errors.append(invalid(path, raw[name], f"no node offers {name}, so the group can never be scheduled"))
        else:
            errors.append(invalid(path, raw[name], f"exceeds the {_show(name, total)} allocatable on all "
                                                   f"{capacity.nodes} nodes together, so the group can never "
                                                   f"be scheduled"))


def validate_podgroup(obj: Mapping[str, Any], *, capacity: ClusterCapacity | None) -> tuple[list[FieldError], list[str]]:
    """The field errors that make ``obj`` a PodGroup that can never run, and warnings."""
    errors: list[FieldError] = []
    warnings: list[str] = []
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return [invalid("spec", spec, "must be an object")], warnings
    min_member = _int32(spec, "minMember", errors)
    if "minMember" not in spec or spec.get("minMember") is None:
        errors.append(required("spec.minMember", "must be greater than or equal to 1"))
    elif min_member is not None and min_member < 1:
        errors.append(invalid("spec.minMember", min_member, "must be greater than or equal to 1"))
    _min_resources(spec, capacity, errors, warnings)
    timeout = _int32(spec, "scheduleTimeoutSeconds", errors)
    if timeout is not None and timeout < 1:
        errors.append(invalid("spec.scheduleTimeoutSeconds", timeout, "must be greater than 0"))
    return errors, warnings
