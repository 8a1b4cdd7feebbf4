"""Server-side printing: ``meta.k8s.io/v1`` Table responses for ``kubectl get``.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
the columns the server chooses, so the familiar ``READY STATUS RESTARTS AGE``
view of pods (and ``STATUS ROLES AGE VERSION`` of nodes) is rendered here,
following kube-apiserver's printers for the kinds we serve.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from .resources import ResourceType

__all__ = ["wants_table", "table", "human_duration"]

Col = tuple[str, str, str, int]  # name, type, format, priority
Row = Callable[[dict[str, Any]], list[Any]]

_NAME: Final[Col] = ("Name", "string", "name", 0)
_AGE: Final[Col] = ("Age", "string", "", 0)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def human_duration(seconds: float) -> str:
    """kubectl's ``HumanDuration``: 45s, 3m20s, 10m, 5h3m, 3d4h, 400d, 2y3d."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d % 365 else f"{d // 365}y"


def _age(obj: dict[str, Any]) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    return _since(ts)


def _since(ts: Any) -> str:
    if not ts:
        return "<unknown>"
    try:
        t = calendar.timegm(time.strptime(str(ts)[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "<unknown>"
    return human_duration(time.time() - t)


def _pod_row(pod: dict[str, Any]) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    gates = spec.get("readinessGates") or []
    return [pod["metadata"]["name"], f"{ready}/{total}", reason, restarts, _age(pod),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", f"{len(gates)}/{len(gates)}" if gates else "<none>"]


def _node_row(node: dict[str, Any]) -> list[Any]:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    state = "Unknown"
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            state = "Ready" if c.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [node["metadata"]["name"], state, ",".join(roles) or "<none>", _age(node), info.get("kubeletVersion", ""),
            addrs.get("InternalIP") or "<none>", addrs.get("ExternalIP") or "<none>", info.get("osImage", ""),
            info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _event_row(ev: dict[str, Any]) -> list[Any]:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    last = ev.get("lastTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp")
    return [_since(last), ev.get("type", ""), ev.get("reason", ""),
            f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}", ev.get("message") or ev.get("note") or ""]


_PRINTERS: Final[dict[str, tuple[list[Col], Row]]] = {
    "pods": ([_NAME, ("Ready", "string", "", 0), ("Status", "string", "", 0), ("Restarts", "string", "", 0), _AGE,
              ("IP", "string", "", 1), ("Node", "string", "", 1), ("Nominated Node", "string", "", 1),
              ("Readiness Gates", "string", "", 1)], _pod_row),
    "nodes": ([_NAME, ("Status", "string", "", 0), ("Roles", "string", "", 0), _AGE, ("Version", "string", "", 0),
               ("Internal-IP", "string", "", 1), ("External-IP", "string", "", 1), ("OS-Image", "string", "", 1),
               ("Kernel-Version", "string", "", 1), ("Container-Runtime", "string", "", 1)], _node_row),
    "namespaces": ([_NAME, ("Status", "string", "", 0), _AGE],
                   lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), _age(o)]),
    "events": ([("Last Seen", "string", "", 0), ("Type", "string", "", 0), ("Reason", "string", "", 0),
                ("Object", "string", "", 0), ("Message", "string", "", 0)], _event_row),
    "configmaps": ([_NAME, ("Data", "integer", "", 0), _AGE],
                   lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o)]),
    "leases": ([_NAME, ("Holder", "string", "", 0), _AGE],
               lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("holderIdentity", ""), _age(o)]),
}
_DEFAULT: Final[tuple[list[Col], Row]] = ([_NAME, _AGE], lambda o: [o["metadata"]["name"], _age(o)])


def table(
    rt: ResourceType, objs: Iterable[dict[str, Any]], *, rv: str = "", include_object: str = "Metadata",
    continue_token: str = "", with_columns: bool = True,
) -> dict[str, Any]:
    cols, row = _PRINTERS.get(rt.plural, _DEFAULT)
    rows = []
    for o in objs:
        r: dict[str, Any] = {"cells": row(o)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        rows.append(r)
    meta: dict[str, Any] = {"resourceVersion": rv}
    if continue_token:
        meta["continue"] = continue_token
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    out["columnDefinitions"] = [
        {"name": n, "type": t, "format": f, "description": n, "priority": p} for n, t, f, p in cols
    ] if with_columns else []
    return out
