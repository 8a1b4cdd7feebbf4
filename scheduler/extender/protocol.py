"""The extender protocol's JSON shapes (``k8s.io/kube-scheduler/extender/v1``), read and written.

kube-scheduler marshals the extender types with Go's ``encoding/json`` and
no struct tags, so the keys on the wire are the Go field names: ``Pod``,
``Nodes``, ``NodeNames``, ``FailedNodes``, ``FailedAndUnresolvableNodes``,
``Error``, ``Host``, ``Score``, ``PodName``, ``PodNamespace``, ``PodUID``,
``Node``, ``NodeNameToVictims``, ``NodeNameToMetaVictims``, ``Pods``,
``NumPDBViolations``, ``UID``. Go decodes keys case-insensitively, and so
does this module (``nodeNames`` and ``nodenames`` are read as ``NodeNames``);
answers are always written with the Go names. The embedded ``Pod`` and
``Node`` objects are ordinary Kubernetes JSON.

Reading is strict in the way the rest of vecsched is: a malformed request is
a ``BadRequest`` whose message names the field, from the top of the request
(``Pod.spec.containers[0].resources.requests.cpu: invalid quantity 'lots'``,
``NodeNames[3]: expected a string``), answered with HTTP 400.

Scores: vecsched's plugins score 0..100 (``MAX_NODE_SCORE``) and a profile's
total is their weighted sum; an extender answers 0..10
(``MAX_EXTENDER_PRIORITY``), which kube-scheduler multiplies by the
extender's ``weight`` and by 100/10. ``extender_scores`` maps a total ``T``
to::

    score = (T + 5*W) // (10*W)    # = round-half-up((T / W) / 10)

where ``W`` is the sum of the weights of the profile's score plugins that
scored this pod (a plugin that skips -- upstream's PreScore Skip, e.g.
NodeAffinity for a pod with no preferred terms -- takes no part, as in
kube-scheduler). That is the weighted mean of the plugin scores (0..100)
rounded half up to 0..10: a mean of 94.9 gives 9, 95 gives 10, 4.9 gives 0,
5 gives 1. When no plugin scores (``W == 0``) every node scores 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

import numpy as np

from scoring.framework import MAX_NODE_SCORE
from scoring.objects import NodeInfo, ObjectError, PodInfo, node_from_json, pod_from_json
from scoring.table import IntArray
from scoring.safe_input import INT64_MAX, MESSAGE_CHARS, QUOTE_CHARS, one_line, quote

__all__ = [
    "MAX_EXTENDER_PRIORITY",
    "BadRequest",
    "ExtenderArgs",
    "BindingArgs",
    "PreemptionArgs",
    "Victims",
    "read_extender_args",
    "read_binding_args",
    "read_preemption_args",
    "filter_result",
    "error_filter_result",
    "host_priority_list",
    "preemption_result",
    "extender_scores",
]

MAX_EXTENDER_PRIORITY: Final = 10
"""Upstream's extenderv1.MaxExtenderPriority: prioritize answers lie in 0..10."""
_MIN_EXTENDER_PRIORITY: Final = 0


class BadRequest(ValueError):
    """A request body that is not a valid extender message; the text names the field, on one
    line of at most ``MESSAGE_CHARS`` characters."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, MESSAGE_CHARS))


@dataclass(frozen=True, slots=True)
class ExtenderArgs:
    """A filter or prioritize request: the pod, and either full nodes or node names."""

    pod: PodInfo
    names: list[str]
    """The candidate nodes' names, in the request's order (from NodeNames or Nodes.items)."""
    nodes: list[NodeInfo] | None
    """The parsed Nodes.items when the request carried full nodes (nodeCacheCapable: false)."""
    raw_nodes: list[Any] | None
    """Nodes.items as sent, echoed back for the nodes that pass the filter."""


@dataclass(frozen=True, slots=True)
class BindingArgs:
    pod_name: str
    pod_namespace: str
    pod_uid: str
    node: str


@dataclass(frozen=True, slots=True)
class Victims:
    """One node's victims as sent: pods by UID (and in full, when kube-scheduler sent them)."""

    uids: list[str]
    pods: list[PodInfo] = field(default_factory=list)
    """Full victim pods (NodeNameToVictims); empty for NodeNameToMetaVictims."""
    num_pdb_violations: int = 0


@dataclass(frozen=True, slots=True)
class PreemptionArgs:
    pod: PodInfo
    victims: dict[str, Victims]


# ---- reading --------------------------------------------------------------------------------


def _get(m: Mapping[str, Any], key: str) -> Any:
    """``m[key]`` matched as Go's encoding/json does: exact name first, then case-insensitively."""
    if key in m:
        return m[key]
    folded = key.casefold()
    for k, v in m.items():
        if isinstance(k, str) and k.casefold() == folded:
            return v
    return None


def _object(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise BadRequest(f"{path}: expected a JSON object, got {_kind(v)}")
    return v


def _kind(v: Any) -> str:
    return "null" if v is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(v), "number" if isinstance(v, (int, float)) else type(v).__name__)


def _string(v: Any, path: str, *, required: bool = True) -> str:
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v):
        raise BadRequest(f"{path}: expected a non-empty string, got {_kind(v) if not isinstance(v, str) else 'an empty one'}")
    return v


def _pod(v: Any, path: str = "Pod") -> PodInfo:
    if v is None:
        raise BadRequest(f"{path}: required")
    _object(v, path)
    try:
        return pod_from_json(v)
    except ObjectError as e:
        _raise_object(path, e)


def _raise_object(path: str, e: ObjectError) -> NoReturn:
    where = f"{path}.{e.field}" if e.field else path
    raise BadRequest(f"{where}: {e.problem}") from None


def _resource_version(raw: Any) -> str:
    meta = raw.get("metadata") if isinstance(raw, Mapping) else None
    rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return rv if isinstance(rv, str) else ""


def read_extender_args(body: Any, *, known: Callable[[str], NodeInfo | None] = lambda name: None) -> ExtenderArgs:
    """An ExtenderArgs body: ``Pod`` and ``NodeNames`` (nodeCacheCapable) or ``Nodes`` (a v1.NodeList).

    ``known(name)`` offers a node already read: when its resourceVersion equals the one
    sent, it is the same object version and is not read again (reading quantities is
    most of the cost of a 500-node request).
    """
    m = _object(body, "ExtenderArgs")
    pod = _pod(_get(m, "Pod"))
    names_raw = _get(m, "NodeNames")
    nodes_raw = _get(m, "Nodes")
    if names_raw is not None:
        if not isinstance(names_raw, list):
            raise BadRequest(f"NodeNames: expected an array of node names, got {_kind(names_raw)}")
        for i, n in enumerate(names_raw):
            if not isinstance(n, str) or not n:
                raise BadRequest(f"NodeNames[{i}]: expected a node name, got {_kind(n)}")
        return ExtenderArgs(pod=pod, names=list(names_raw), nodes=None, raw_nodes=None)
    if nodes_raw is None:
        raise BadRequest("ExtenderArgs: one of NodeNames (nodeCacheCapable: true) or Nodes is required")
    items = _get(_object(nodes_raw, "Nodes"), "items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise BadRequest(f"Nodes.items: expected an array of Nodes, got {_kind(items)}")
    infos: list[NodeInfo] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        path = f"Nodes.items[{i}]"
        _object(raw, path)
        rv = _resource_version(raw)
        meta = raw.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        old = known(name) if rv and isinstance(name, str) and name else None
        if old is not None and _resource_version(old.raw) == rv:
            info = old
        else:
            try:
                info = node_from_json(raw)
            except ObjectError as e:
                _raise_object(path, e)
        if info.name in seen:
            raise BadRequest(f"{path}.metadata.name: duplicate node {quote(info.name)}")
        seen.add(info.name)
        infos.append(info)
    return ExtenderArgs(pod=pod, names=[n.name for n in infos], nodes=infos, raw_nodes=items)


def read_binding_args(body: Any) -> BindingArgs:
    """An ExtenderBindingArgs body: ``PodName``, ``PodNamespace``, ``PodUID``, ``Node``."""
    m = _object(body, "ExtenderBindingArgs")
    return BindingArgs(
        pod_name=_string(_get(m, "PodName"), "PodName"),
        pod_namespace=_string(_get(m, "PodNamespace"), "PodNamespace"),
        pod_uid=_string(_get(m, "PodUID"), "PodUID", required=False),
        node=_string(_get(m, "Node"), "Node"),
    )


def _node_key(node: Any) -> str:
    """A node name as it appears in an error's path: cut when longer than a node name can be."""
    return node if isinstance(node, str) and len(node) <= QUOTE_CHARS else quote(node)


def _pdb(v: Any, path: str) -> int:
    if v is None:
        return 0
    if not isinstance(v, int) or isinstance(v, bool):
        raise BadRequest(f"{path}: expected an integer, got {_kind(v)}")
    if not 0 <= v <= INT64_MAX:  # NumPDBViolations is an int64 count
        raise BadRequest(f"{path}: expected a non-negative int64, got {quote(v)}")
    return v


def read_preemption_args(body: Any) -> PreemptionArgs:
    """An ExtenderPreemptionArgs body: ``Pod`` and ``NodeNameToMetaVictims`` (pods by UID,
    nodeCacheCapable) or ``NodeNameToVictims`` (full pods)."""
    m = _object(body, "ExtenderPreemptionArgs")
    pod = _pod(_get(m, "Pod"))
    out: dict[str, Victims] = {}
    meta = _get(m, "NodeNameToMetaVictims")
    full = _get(m, "NodeNameToVictims")
    if meta is not None:
        for node, v in _object(meta, "NodeNameToMetaVictims").items():
            path = f"NodeNameToMetaVictims[{_node_key(node)}]"
            v = _object(v, path)
            pods = _get(v, "Pods") or []
            if not isinstance(pods, list):
                raise BadRequest(f"{path}.Pods: expected an array, got {_kind(pods)}")
            uids = [_string(_get(_object(p, f"{path}.Pods[{i}]"), "UID"), f"{path}.Pods[{i}].UID")
                    for i, p in enumerate(pods)]
            out[str(node)] = Victims(uids=uids, num_pdb_violations=_pdb(_get(v, "NumPDBViolations"),
                                                                          f"{path}.NumPDBViolations"))
    elif full is not None:
        for node, v in _object(full, "NodeNameToVictims").items():
            path = f"NodeNameToVictims[{_node_key(node)}]"
            v = _object(v, path)
            pods = _get(v, "Pods") or []
            if not isinstance(pods, list):
                raise BadRequest(f"{path}.Pods: expected an array, got {_kind(pods)}")
            infos = [_pod(p, f"{path}.Pods[{i}]") for i, p in enumerate(pods)]
            for i, info in enumerate(infos):
                if not info.uid:  # the answer names victims by UID (MetaVictims)
                    raise BadRequest(f"{path}.Pods[{i}].metadata.uid: required")
            out[str(node)] = Victims(uids=[p.uid for p in infos], pods=infos,
                                     num_pdb_violations=_pdb(_get(v, "NumPDBViolations"), f"{path}.NumPDBViolations"))
    else:
        raise BadRequest("ExtenderPreemptionArgs: one of NodeNameToMetaVictims or NodeNameToVictims is required")
    return PreemptionArgs(pod=pod, victims=out)


# ---- writing --------------------------------------------------------------------------------


def filter_result(*, args: ExtenderArgs, passed: Sequence[str], failed: Mapping[str, str],
                  unresolvable: Mapping[str, str]) -> dict[str, Any]:
    """An ExtenderFilterResult answering in the request's mode: ``NodeNames`` to a
    nodeCacheCapable request, ``Nodes`` (the passing nodes as sent) otherwise."""
    if args.raw_nodes is None:
        return {"Nodes": None, "NodeNames": list(passed), "FailedNodes": dict(failed),
                "FailedAndUnresolvableNodes": dict(unresolvable), "Error": ""}
    keep = set(passed)
    items = [raw for raw, name in zip(args.raw_nodes, args.names) if name in keep]
    return {"Nodes": {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items},
            "NodeNames": None, "FailedNodes": dict(failed),
            "FailedAndUnresolvableNodes": dict(unresolvable), "Error": ""}


def error_filter_result(message: str) -> dict[str, Any]:
    """An ExtenderFilterResult that only carries ``Error``: kube-scheduler fails the attempt
    (or skips this extender when it is ``ignorable``)."""
    return {"Nodes": None, "NodeNames": None, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": message}


def host_priority_list(names: Sequence[str], scores: Sequence[int]) -> list[dict[str, Any]]:
    return [{"Host": n, "Score": int(s)} for n, s in zip(names, scores)]


def preemption_result(victims: Mapping[str, Victims]) -> dict[str, Any]:
    """An ExtenderPreemptionResult: always ``NodeNameToMetaVictims`` (pods by UID), as upstream expects."""
    return {"NodeNameToMetaVictims": {
        node: {"Pods": [{"UID": uid} for uid in v.uids], "NumPDBViolations": v.num_pdb_violations}
        for node, v in victims.items()}}


def extender_scores(totals: IntArray, weight_sum: int) -> IntArray:
    """Profile totals (weighted sums of 0..100 scores) -> extender priorities 0..10.

    ``(T + 5*W) // (10*W)``: the weighted mean ``T/W`` (0..100) divided by 10 and
    rounded half up. All zeros when the profile has no score plugins (``W == 0``).
    """
    if weight_sum <= 0:
        return np.zeros(len(totals), np.int64)
    scale = MAX_NODE_SCORE // MAX_EXTENDER_PRIORITY  # 10
    out = (totals + (scale // 2) * weight_sum) // (scale * weight_sum)
    return np.clip(out, _MIN_EXTENDER_PRIORITY, MAX_EXTENDER_PRIORITY)
