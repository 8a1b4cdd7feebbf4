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

from scheduler.durations import human_duration

from . import crd
from .resources import ResourceType

__all__ = ["wants_table", "table", "human_duration"]

Col = tuple[str, str, str, int]  # name, type, format, priority
Row = Callable[[dict[str, Any]], list[Any]]

_NAME: Final[Col] = ("Name", "string", "name", 0)
_AGE: Final[Col] = ("Age", "string", "", 0)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _age(obj: dict[str, Any]) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    return _since(ts)


def _since(ts: Any) -> str:
    t = _epoch(ts) if ts else None
    return "<unknown>" if t is None else human_duration(time.time() - t)


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


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else 0


def _containers_images(template_spec: dict[str, Any]) -> list[str]:
    cs = [c for c in template_spec.get("containers") or [] if isinstance(c, dict)]
    return [",".join(str(c.get("name", "")) for c in cs), ",".join(str(c.get("image", "")) for c in cs)]


def _template_spec(o: dict[str, Any]) -> dict[str, Any]:
    spec = o.get("spec") or {}
    jt = spec.get("jobTemplate") or {}
    tmpl = (jt.get("spec") or {}).get("template") if jt else spec.get("template")
    return ((tmpl or {}).get("spec") or {}) if isinstance(tmpl, dict) else {}


def _selector(o: dict[str, Any]) -> str:
    sel = (o.get("spec") or {}).get("selector") or {}
    if not isinstance(sel, dict):
        return "<none>"
    if "matchLabels" not in sel and "matchExpressions" not in sel:  # a ReplicationController's map
        return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for req in sel.get("matchExpressions") or []:
        parts.append(f"{req.get('key')} {str(req.get('operator', '')).lower()} ({','.join(req.get('values') or [])})")
    return ",".join(parts) or "<none>"


def _has(o: dict[str, Any], cond: str) -> bool:
    return any(c.get("type") == cond and c.get("status") == "True"
               for c in (o.get("status") or {}).get("conditions") or [] if isinstance(c, dict))


def _deployment_row(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [o["metadata"]["name"], f"{_int(st.get('readyReplicas'))}/{_int(spec.get('replicas'))}",
            _int(st.get("updatedReplicas")), _int(st.get("availableReplicas")), _age(o),
            *_containers_images(_template_spec(o)), _selector(o)]


def _replicaset_row(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [o["metadata"]["name"], _int(spec.get("replicas")), _int(st.get("replicas")),
            _int(st.get("readyReplicas")), _age(o), *_containers_images(_template_spec(o)), _selector(o)]


def _daemonset_row(o: dict[str, Any]) -> list[Any]:
    st = o.get("status") or {}
    sel = _template_spec(o).get("nodeSelector") or {}
    return [o["metadata"]["name"], _int(st.get("desiredNumberScheduled")), _int(st.get("currentNumberScheduled")),
            _int(st.get("numberReady")), _int(st.get("updatedNumberScheduled")), _int(st.get("numberAvailable")),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>", _age(o),
            *_containers_images(_template_spec(o)), _selector(o)]


def _job_row(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    if _has(o, "Complete"):
        status = "Complete"
    elif _has(o, "Failed"):
        status = "Failed"
    elif (o.get("metadata") or {}).get("deletionTimestamp"):
        status = "Terminating"
    elif _has(o, "Suspended"):
        status = "Suspended"
    elif _has(o, "FailureTarget"):
        status = "FailureTarget"
    elif _has(o, "SuccessCriteriaMet"):
        status = "SuccessCriteriaMet"
    else:
        status = "Running"
    succeeded = _int(st.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    if st.get("startTime"):
        start = _epoch(st["startTime"])
        end = _epoch(st["completionTime"]) if st.get("completionTime") else time.time()
        if start is not None and end is not None:
            duration = human_duration(end - start)
    return [o["metadata"]["name"], status, completions, duration, _age(o), *_containers_images(_template_spec(o)),
            _selector(o)]


def _epoch(ts: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp (second precision); None when it is not one."""
    try:
        return float(calendar.timegm(time.strptime(str(ts)[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def _pdb_row(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [o["metadata"]["name"], str(spec["minAvailable"]) if "minAvailable" in spec else "N/A",
            str(spec["maxUnavailable"]) if "maxUnavailable" in spec else "N/A",
            _int(st.get("disruptionsAllowed")), _age(o)]


def _ports(o: dict[str, Any]) -> str:
    out = []
    for p in (o.get("spec") or {}).get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


_W: Final[list[Col]] = [("Containers", "string", "", 1), ("Images", "string", "", 1), ("Selector", "string", "", 1)]

_PRINTERS: Final[dict[str, tuple[list[Col], Row]]] = {
    "deployments.apps": ([_NAME, ("Ready", "string", "", 0), ("Up-to-date", "integer", "", 0),
                          ("Available", "integer", "", 0), _AGE, *_W], _deployment_row),
    "replicasets.apps": ([_NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
                          ("Ready", "integer", "", 0), _AGE, *_W], _replicaset_row),
    "replicationcontrollers": ([_NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
                                ("Ready", "integer", "", 0), _AGE, *_W], _replicaset_row),
    "statefulsets.apps": ([_NAME, ("Ready", "string", "", 0), _AGE, *_W[:2]],
                          lambda o: [o["metadata"]["name"], f"{_int((o.get('status') or {}).get('readyReplicas'))}/"
                                     f"{_int((o.get('spec') or {}).get('replicas'))}", _age(o),
                                     *_containers_images(_template_spec(o))]),
    "daemonsets.apps": ([_NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0), ("Ready", "integer", "", 0),
                         ("Up-to-date", "integer", "", 0), ("Available", "integer", "", 0),
                         ("Node Selector", "string", "", 0), _AGE, *_W], _daemonset_row),
    "controllerrevisions.apps": ([_NAME, ("Controller", "string", "", 0), ("Revision", "integer", "", 0), _AGE],
                                 lambda o: [o["metadata"]["name"], _owner(o), _int(o.get("revision")), _age(o)]),
    "jobs.batch": ([_NAME, ("Status", "string", "", 0), ("Completions", "string", "", 0),
                    ("Duration", "string", "", 0), _AGE, *_W], _job_row),
    "cronjobs.batch": ([_NAME, ("Schedule", "string", "", 0), ("Timezone", "string", "", 0), ("Suspend", "boolean", "", 0),
                        ("Active", "integer", "", 0), ("Last Schedule", "string", "", 0), _AGE],
                       lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("schedule", ""),
                                  (o.get("spec") or {}).get("timeZone") or "<none>",
                                  bool((o.get("spec") or {}).get("suspend")),
                                  len((o.get("status") or {}).get("active") or []),
                                  _since((o.get("status") or {}).get("lastScheduleTime")), _age(o)]),
    "poddisruptionbudgets.policy": ([_NAME, ("Min Available", "string", "", 0), ("Max Unavailable", "string", "", 0),
                                     ("Allowed Disruptions", "integer", "", 0), _AGE], _pdb_row),
    "priorityclasses.scheduling.k8s.io": (
        [_NAME, ("Value", "integer", "", 0), ("Global-Default", "boolean", "", 0), _AGE,
         ("PreemptionPolicy", "string", "", 0)],
        lambda o: [o["metadata"]["name"], _int(o.get("value")), bool(o.get("globalDefault")), _age(o),
                   o.get("preemptionPolicy") or "PreemptLowerPriority"]),
    "storageclasses.storage.k8s.io": (
        [_NAME, ("Provisioner", "string", "", 0), ("ReclaimPolicy", "string", "", 0),
         ("VolumeBindingMode", "string", "", 0), ("AllowVolumeExpansion", "string", "", 0), _AGE],
        lambda o: [o["metadata"]["name"] + (" (default)" if (o["metadata"].get("annotations") or {}).get(
                   "storageclass.kubernetes.io/is-default-class") == "true" else ""),
                   o.get("provisioner", ""), o.get("reclaimPolicy") or "Delete",
                   o.get("volumeBindingMode") or "Immediate", str(bool(o.get("allowVolumeExpansion"))).lower(), _age(o)]),
    "persistentvolumes": (
        [_NAME, ("Capacity", "string", "", 0), ("Access Modes", "string", "", 0), ("Reclaim Policy", "string", "", 0),
         ("Status", "string", "", 0), ("Claim", "string", "", 0), ("StorageClass", "string", "", 0),
         ("VolumeAttributesClass", "string", "", 0), ("Reason", "string", "", 0), _AGE,
         ("VolumeMode", "string", "", 1)], lambda o: _pv_row(o)),
    "persistentvolumeclaims": (
        [_NAME, ("Status", "string", "", 0), ("Volume", "string", "", 0), ("Capacity", "string", "", 0),
         ("Access Modes", "string", "", 0), ("StorageClass", "string", "", 0), ("VolumeAttributesClass", "string", "", 0),
         _AGE, ("VolumeMode", "string", "", 1)], lambda o: _pvc_row(o)),
    "csinodes.storage.k8s.io": ([_NAME, ("Drivers", "integer", "", 0), _AGE],
                                lambda o: [o["metadata"]["name"], len((o.get("spec") or {}).get("drivers") or []),
                                           _age(o)]),
    "csidrivers.storage.k8s.io": (
        [_NAME, ("AttachRequired", "boolean", "", 0), ("PodInfoOnMount", "boolean", "", 0),
         ("StorageCapacity", "boolean", "", 0), ("TokenRequests", "string", "", 0),
         ("RequiresRepublish", "boolean", "", 0), ("Modes", "string", "", 0), _AGE], lambda o: _csidriver_row(o)),
    "csistoragecapacities.storage.k8s.io": (
        [_NAME, ("StorageClassName", "string", "", 0), ("Capacity", "string", "", 0)],
        lambda o: [o["metadata"]["name"], o.get("storageClassName", ""),
                   o["capacity"] if o.get("capacity") is not None else "<unset>"]),
    "customresourcedefinitions.apiextensions.k8s.io": (
        [_NAME, ("Created At", "date", "", 0)],
        lambda o: [o["metadata"]["name"], (o.get("metadata") or {}).get("creationTimestamp", "")]),
    "services": ([_NAME, ("Type", "string", "", 0), ("Cluster-IP", "string", "", 0), ("External-IP", "string", "", 0),
                  ("Port(s)", "string", "", 0), _AGE],
                 lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("type", "ClusterIP"),
                            (o.get("spec") or {}).get("clusterIP") or "<none>", "<none>", _ports(o), _age(o)]),
    "secrets": ([_NAME, ("Type", "string", "", 0), ("Data", "string", "", 0), _AGE],
                lambda o: [o["metadata"]["name"], o.get("type") or "Opaque",
                           len(o.get("data") or {}) + len(o.get("stringData") or {}), _age(o)]),
    "serviceaccounts": ([_NAME, ("Secrets", "string", "", 0), _AGE],
                        lambda o: [o["metadata"]["name"], len(o.get("secrets") or []), _age(o)]),
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
    "mutatingwebhookconfigurations": ([_NAME, ("Webhooks", "integer", "", 0), _AGE], lambda o: [
        o["metadata"]["name"], len(o.get("webhooks") or []), _age(o)]),
    "validatingwebhookconfigurations": ([_NAME, ("Webhooks", "integer", "", 0), _AGE], lambda o: [
        o["metadata"]["name"], len(o.get("webhooks") or []), _age(o)]),
}
_DEFAULT: Final[tuple[list[Col], Row]] = ([_NAME, _AGE], lambda o: [o["metadata"]["name"], _age(o)])


def _owner(o: dict[str, Any]) -> str:
    for ref in (o.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{str(ref.get('kind', '')).lower()}.{str(ref.get('apiVersion', '')).split('/')[0]}/{ref.get('name')}"
    return "<none>"


def _modes(modes: Any) -> str:
    """``GetAccessModesAsString``: the short names, in upstream's fixed order, each once."""
    given = set(modes or [])
    return ",".join(short for mode, short in (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                                              ("ReadWriteOncePod", "RWOP")) if mode in given)


def _claim(o: dict[str, Any]) -> str:
    ref = (o.get("spec") or {}).get("claimRef") or {}
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""


def _phase(o: dict[str, Any]) -> str:
    """``status.phase``, or Terminating once the object is marked for deletion."""
    if (o.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    return str((o.get("status") or {}).get("phase") or "")


def _storage_class(o: dict[str, Any]) -> str:
    """``GetPersistentVolume(Claim)Class``: the beta annotation, then ``spec.storageClassName``."""
    beta = ((o.get("metadata") or {}).get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class")
    return str(beta if beta is not None else (o.get("spec") or {}).get("storageClassName") or "")


def _pv_row(o: dict[str, Any]) -> list[Any]:
    """``printPersistentVolume`` (an unset reclaim policy reads as Retain, the API's default for it)."""
    spec = o.get("spec") or {}
    return [o["metadata"]["name"], str((spec.get("capacity") or {}).get("storage", "0")),
            _modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy") or "Retain", _phase(o), _claim(o),
            _storage_class(o), spec.get("volumeAttributesClassName") or "<unset>",
            (o.get("status") or {}).get("reason") or "", _age(o), spec.get("volumeMode") or "<unset>"]


def _pvc_row(o: dict[str, Any]) -> list[Any]:
    """``printPersistentVolumeClaim``: capacity and access modes are the bound volume's, from the status."""
    spec, status = o.get("spec") or {}, o.get("status") or {}
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = _modes(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage", "0"))
    return [o["metadata"]["name"], _phase(o), spec.get("volumeName") or "", capacity, modes, _storage_class(o),
            spec.get("volumeAttributesClassName") or "<unset>", _age(o), spec.get("volumeMode") or "<unset>"]


def _csidriver_row(o: dict[str, Any]) -> list[Any]:
    """``printCSIDriver``: unset booleans read as the API's defaults."""
    spec = o.get("spec") or {}
    tokens = spec.get("tokenRequests")
    return [o["metadata"]["name"], bool(spec.get("attachRequired", True)), bool(spec.get("podInfoOnMount")),
            bool(spec.get("storageCapacity")),
            "<unset>" if tokens is None else ",".join(str(t.get("audience", "")) for t in tokens),
            bool(spec.get("requiresRepublish")), ",".join(spec.get("volumeLifecycleModes") or []) or "<none>", _age(o)]


def table(
    rt: ResourceType, objs: Iterable[dict[str, Any]], *, rv: str = "", include_object: str = "Metadata",
    continue_token: str = "", with_columns: bool = True,
) -> dict[str, Any]:
    if rt.custom:
        columns = crd.table_columns(rt)
        cells: Row = lambda o: crd.table_cells(rt, o)  # noqa: E731
    else:
        cols, cells = _PRINTERS.get(rt.key) or _PRINTERS.get(rt.plural) or _DEFAULT
        columns = [{"name": n, "type": t, "format": f, "description": n, "priority": p} for n, t, f, p in cols]
    rows = []
    for o in objs:
        r: dict[str, Any] = {"cells": cells(o)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        rows.append(r)
    meta: dict[str, Any] = {"resourceVersion": rv}
    if continue_token:
        meta["continue"] = continue_token
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    out["columnDefinitions"] = columns if with_columns else []
    return out
