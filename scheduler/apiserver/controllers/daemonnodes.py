"""Which nodes a DaemonSet's pod belongs on, and how a daemon pod is tied to its node.

The DaemonSet controller (``daemonset.py``) asks, for every node and every
set, whether the set's pod should run there, and builds each pod for one
node; both answers are kube-controller-manager's, kept apart from the
controller's create/delete/rolling-update work because they are questions
about a pod spec and a node only (upstream's ``NodeShouldRunDaemonPod`` and
``pkg/controller/daemon/util``):

* ``daemon_tolerations``: the template's tolerations plus the ones every
  daemon pod gets, so that daemon pods keep running on nodes that are not
  ready, unreachable, under pressure or cordoned (and, for ``hostNetwork``
  pods, whose network is not ready yet);
* ``node_affinity_matches`` and ``should_run``: the template's
  ``nodeSelector``, required node affinity and tolerations against a node's
  name, labels and taints; an untolerated NoSchedule taint keeps a new pod
  off the node but lets a running one stay, an untolerated NoExecute taint
  does neither;
* ``pin_to_node`` and ``target_node``: a daemon pod is pinned to its node by a
  required node affinity on ``metadata.name`` (so that the scheduler the
  template names still binds it), and that affinity says which node an
  unbound pod is for.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from scoring.objects import Taint
from scoring.plugins.tolerations import tolerates

__all__ = ["daemon_tolerations", "node_affinity_matches", "should_run", "pin_to_node", "target_node"]

_NAME_FIELD: Final = "metadata.name"

_DAEMON_TOLERATIONS: Final = (
    # NoExecute without tolerationSeconds: daemon pods survive taint-based eviction of a sick node.
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    # TaintNodesByCondition: daemon pods run on nodes under pressure or cordoned.
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
_NETWORK_UNAVAILABLE: Final = ("node.kubernetes.io/network-unavailable", "NoSchedule")  # hostNetwork pods only


def daemon_tolerations(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The template's tolerations plus upstream's daemon tolerations (``AddOrUpdateDaemonPodTolerations``):
    one with the same key, operator, value and effect is replaced, others are appended."""
    out = [dict(t) for t in spec.get("tolerations") or []]
    wanted = list(_DAEMON_TOLERATIONS) + ([_NETWORK_UNAVAILABLE] if spec.get("hostNetwork") else [])
    for key, effect in wanted:
        tol = {"key": key, "operator": "Exists", "effect": effect}
        same = [i for i, t in enumerate(out) if t.get("key") == key and t.get("effect") == effect
                and t.get("operator", "Equal") == "Exists" and not t.get("value")]
        if same:
            out[same[0]] = tol
        else:
            out.append(tol)
    return out


def _requirement(req: Mapping[str, Any], value: str | None) -> bool:
    """One ``matchExpressions``/``matchFields`` entry against a label (None: absent) or field value."""
    op, values = str(req.get("operator")), [str(v) for v in req.get("values") or []]
    if op in ("In", "NotIn"):
        return (value is not None and value in values) == (op == "In")
    if op in ("Exists", "DoesNotExist"):
        return (value is not None) == (op == "Exists")
    try:  # Gt/Lt: the label and the single value compared as integers
        a, b = int(value or ""), int(values[0]) if len(values) == 1 else int("")
    except ValueError:
        return False
    return (a > b and op == "Gt") or (a < b and op == "Lt")


def node_affinity_matches(spec: Mapping[str, Any], *, name: str, labels: Mapping[str, str]) -> bool:
    """``nodeSelector`` and required node affinity of a pod spec against a node: terms are ORed, a
    term's ``matchExpressions`` (labels) and ``matchFields`` (``metadata.name``) ANDed, and a term
    with neither -- or no term at all -- matches nothing."""
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    for term in required.get("nodeSelectorTerms") or []:
        exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if (exprs or fields) and all(_requirement(r, labels.get(r.get("key", ""))) for r in exprs) and all(
                _requirement(f, name if f.get("key") == _NAME_FIELD else "") for f in fields):
            return True
    return False


def _untolerated(taints: Sequence[Taint], tolerations: Sequence[Mapping[str, Any]], effects: tuple[str, ...]) -> bool:
    return any(t.effect in effects and not any(tolerates(tol, t) for tol in tolerations) for t in taints)


def should_run(spec: Mapping[str, Any], *, tolerations: Sequence[Mapping[str, Any]], name: str,
               labels: Mapping[str, str], taints: Sequence[Taint]) -> tuple[bool, bool]:
    """(should run, should continue running) for a template on a node (``NodeShouldRunDaemonPod``):
    a pod that fits except for untolerated NoSchedule taints may keep running, an untolerated
    NoExecute taint evicts it."""
    if (spec.get("nodeName") or name) != name or not node_affinity_matches(spec, name=name, labels=labels):
        return False, False
    if _untolerated(taints, tolerations, ("NoSchedule", "NoExecute")):
        return False, not _untolerated(taints, tolerations, ("NoExecute",))
    return True, True


def pin_to_node(affinity: Mapping[str, Any] | None, *, node: str) -> dict[str, Any]:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required node selector becomes the single term
    ``matchFields: metadata.name In [node]`` (the node already matched the template's terms)."""
    out = copy.deepcopy(dict(affinity or {}))
    na = out.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": _NAME_FIELD, "operator": "In", "values": [node]}]}]}
    return out


def target_node(pod: Mapping[str, Any]) -> str:
    """The node a daemon pod is for: where it is bound, else its ``metadata.name`` node affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == _NAME_FIELD and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return ""
