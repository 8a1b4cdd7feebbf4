"""What the two keepers of a PodDisruptionBudget must agree on.

A budget's promise is kept in two places: the disruption controller
(``controllers/disruption.py``) counts the healthy pods and writes
``status.disruptionsAllowed``, and the Eviction API (``eviction.py``) spends
one disruption per approved eviction and records the pod in
``status.disruptedPods``. For ``kubectl drain`` or a scheduler that evicts to
see one consistent budget, both sides must read a budget the same way, so
what they share is defined once, here (upstream keeps the same pieces in
``pkg/apis/policy``, ``pkg/util/pod`` and ``pkg/controller/disruption/pdbhelper``):

* which pods a budget selects: ``compile_selector``, with upstream's refusals
  of a selector that cannot be evaluated (``SelectorError``);
* which pods count as healthy: ``is_pod_ready``;
* how ``minAvailable`` / ``maxUnavailable`` scale: ``scaled_value``;
* how the ``DisruptionAllowed`` condition follows ``disruptionsAllowed``:
  ``set_condition``, ``update_disruption_allowed_condition`` and
  ``conditions_up_to_date``;
* how long an eviction's ``disruptedPods`` entry is honoured while the pod's
  deletion is on its way: ``DELETION_TIMEOUT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .controllers.pods import LabelMatcher, selector_matcher
from .objects import now_rfc3339

__all__ = [
    "DELETION_TIMEOUT",
    "SelectorError",
    "compile_selector",
    "is_pod_ready",
    "scaled_value",
    "set_condition",
    "update_disruption_allowed_condition",
    "conditions_up_to_date",
]

DELETION_TIMEOUT: Final = 120.0
"""Upstream's ``DeletionTimeout``: seconds an eviction's ``disruptedPods`` entry waits for the pod's deletion."""


class SelectorError(ValueError):
    """A label selector or an int-or-percent that cannot be evaluated (upstream's wording in ``str``)."""


def compile_selector(selector: Any) -> LabelMatcher:
    """``metav1.LabelSelectorAsSelector`` (None matches nothing, ``{}`` everything), with its refusals.

    Raises ``SelectorError`` with upstream's message for a requirement it cannot convert.
    """
    if selector is not None and not isinstance(selector, dict):
        raise SelectorError(f"invalid label selector: {selector!r}")
    for expr in (selector or {}).get("matchExpressions") or []:
        if not isinstance(expr, dict):
            raise SelectorError(f"invalid label selector requirement: {expr!r}")
        op, values = expr.get("operator"), list(expr.get("values") or [])
        if op in ("In", "NotIn") and not values:
            raise SelectorError("values: Invalid value: []string{}: for 'in', 'notin' operators, "
                                "values set can't be empty")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError("values: Invalid value: []string{" + ", ".join(f'"{v}"' for v in values)
                                + "}: values set must be empty for exists and does not exist")
    try:
        return selector_matcher(selector)
    except ValueError as e:
        raise SelectorError(str(e)) from None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """``podutil.IsPodReady``: the pod's ``Ready`` condition is ``True``."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def scaled_value(value: Any, *, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int as is, ``"N%"`` of ``total``.

    ``"34%"`` of 3 is 1.02, so 2 rounding up and 1 rounding down.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SelectorError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise SelectorError("invalid value for IntOrString: invalid type: string is not a percentage")
    try:
        pct = int(value[:-1])
    except ValueError:
        raise SelectorError(f'invalid value for IntOrString: invalid value "{value}": '
                            f'strconv.Atoi: parsing "{value[:-1]}": invalid syntax') from None
    return -((-pct * total) // 100) if round_up else (pct * total) // 100  # exact integer ceil / floor


def set_condition(conditions: list[dict[str, Any]], *, type: str, status: str, reason: str, message: str,
                  observed_generation: int) -> bool:
    """``meta.SetStatusCondition``: add or update a ``metav1.Condition``; the transition time moves with status."""
    for c in conditions:
        if c.get("type") == type:
            changed = False
            if c.get("status") != status:
                c["status"] = status
                c["lastTransitionTime"] = now_rfc3339()
                changed = True
            for k, v in (("reason", reason), ("message", message), ("observedGeneration", observed_generation)):
                if c.get(k) != v:
                    c[k] = v
                    changed = True
            return changed
    conditions.append({"type": type, "status": status, "observedGeneration": observed_generation,
                       "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message})
    return True


def update_disruption_allowed_condition(status: dict[str, Any]) -> None:
    """``pdbhelper.UpdateDisruptionAllowedCondition``: the condition follows ``disruptionsAllowed``."""
    conditions = status.setdefault("conditions", [])
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    set_condition(conditions, type="DisruptionAllowed", status="True" if allowed else "False",
                  reason="SufficientPods" if allowed else "InsufficientPods", message="",
                  observed_generation=int(status.get("observedGeneration") or 0))


def conditions_up_to_date(pdb: Mapping[str, Any]) -> bool:
    """``pdbhelper.ConditionsAreUpToDate``: the status was computed for this generation and its
    ``DisruptionAllowed`` condition says what ``disruptionsAllowed`` says."""
    status = pdb.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    if cond is None or int(status.get("observedGeneration") or 0) != int(pdb["metadata"].get("generation") or 0):
        return False
    if int(status.get("disruptionsAllowed") or 0) > 0:
        return bool(cond.get("status") == "True" and cond.get("reason") == "SufficientPods")
    return bool(cond.get("status") == "False" and cond.get("reason") == "InsufficientPods")
