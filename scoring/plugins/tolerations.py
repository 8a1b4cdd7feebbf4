"""Toleration matching, shared by TaintToleration and NodeUnschedulable.

Upstream's ``v1.Toleration.ToleratesTaint``: an empty effect matches every
effect; an empty key with ``Exists`` matches every taint; the operator
defaults to ``Equal``, which compares values; ``Exists`` ignores the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scoring.objects import Taint

__all__ = ["tolerates"]


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if key and key != taint.key:
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == taint.value
    return False
