"""Pod and Node objects (plain JSON dicts) turned into the numbers plugins use.

The live scheduler, the extender, ``explain`` and the strategy lab all receive
Kubernetes objects as JSON. This module reads each object once, validates the
fields the scheduler depends on and names the field when one is wrong, and
returns small frozen records: a Pod's resource requests computed as upstream's
``resourcehelper.PodRequests`` does, and a Node's allocatable, labels, taints
and images.

A bound pod's record keeps of its JSON only what is read once it is placed, and shares
the parts the pods of one workload have in common (``compact_raw``): a scheduler of a
large cluster keeps one record per pod, hundreds of thousands of them.

Units: CPU in millicores, every other resource in whole units (bytes for
memory, ephemeral-storage and hugepages; counts for extended resources and
``pods``).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, TypeVar

from scoring.quantity import QuantityError, milli_value, value
from scoring.safe_input import (INT64_MAX, KEY_CHARS, PATH_CHARS, PROBLEM_CHARS, InputError, check_tree, is_mapping,
                                 one_line, quote)

__all__ = [
    "CPU",
    "MEMORY",
    "EPHEMERAL_STORAGE",
    "PODS",
    "DEFAULT_MILLI_CPU_REQUEST",
    "DEFAULT_MEMORY_REQUEST",
    "ObjectError",
    "HostPort",
    "Taint",
    "PodInfo",
    "NodeInfo",
    "pod_from_json",
    "node_from_json",
    "parse_resource_list",
    "with_annotations",
    "compact_raw",
    "with_state",
    "checked",
    "object_ref",
    "OBJECT_CHARS",
    "INT32_MIN",
    "INT32_MAX",
]

CPU: Final = "cpu"
MEMORY: Final = "memory"
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
PODS: Final = "pods"

# Upstream's non-zero defaults (pkg/scheduler/util.DefaultMilliCPURequest and
# DefaultMemoryRequest), charged for *scoring* to a container that sets no
# request, so that request-less pods still spread.
DEFAULT_MILLI_CPU_REQUEST: Final = 100
DEFAULT_MEMORY_REQUEST: Final = 200 * 1024 * 1024

JSON = Mapping[str, Any]
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
OBJECT_CHARS: Final = 60
"""Characters of ``kind ns/name`` in an error: a longer name (a DNS subdomain may have 253) is
cut to its start and end, which is what tells two objects apart in practice."""


class _Empty(dict):  # type: ignore[type-arg]
    """The empty mapping every record without labels, annotations, a nodeSelector (...) shares:
    a dict, so that it serialises and compares as one, that refuses to be changed."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("the shared empty mapping of scoring.objects cannot be changed")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]


_EMPTY: Final[Mapping[str, Any]] = _Empty()

_KEPT_CONDITIONS: Final = frozenset({"PodScheduled", "DisruptionTarget"})
"""The conditions of a placed pod anything reads: PodScheduled's transition time (when it was
bound, for the load plugins) and DisruptionTarget (a victim already being preempted)."""
_KEPT_STATUS: Final = ("phase", "startTime", "nominatedNodeName")
"""The rest of a placed pod's status anything reads: its phase, its start time (victims are
ranked by it) and its nomination."""


class ObjectError(ValueError):
    """A Pod or Node whose field the scheduler cannot read.

    ``obj`` is ``kind ns/name``, ``field`` a JSON path such as
    ``spec.containers[0].resources.requests.cpu``.
    """

    def __init__(self, obj: str, field_path: str, problem: str) -> None:
        super().__init__(f"{one_line(obj, OBJECT_CHARS)}: {one_line(field_path, PATH_CHARS)}: "
                         f"{one_line(problem, PROBLEM_CHARS)}")
        self.obj = obj
        self.field = field_path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host port a container asks for: upstream's (ip, protocol, port) triple."""

    ip: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def describe(self) -> str:
        """Upstream's rendering in FailedScheduling messages: ``{key: value}``."""
        return f"{{{self.key}: {self.value}}}"


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What the scheduler needs of one Pod, read and validated once."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    scheduler_name: str
    node_name: str
    phase: str
    priority: int
    requests: Mapping[str, int]
    """Fit requests per resource (cpu in milli, others in units); missing requests count as zero."""
    nonzero_cpu: int
    """Milli-CPU for scoring, with 100m charged to containers that set no CPU request."""
    nonzero_memory: int
    """Memory bytes for scoring, with 200Mi charged to containers that set no memory request."""
    node_selector: Mapping[str, str]
    affinity: JSON
    tolerations: Sequence[JSON]
    host_ports: tuple[HostPort, ...]
    images: tuple[str, ...]
    scheduling_gates: tuple[str, ...]
    raw: JSON = field(repr=False, compare=False)
    node_nonzero: tuple[int, int] | None = None
    """(milli-CPU, memory) that upstream's NodeInfo charges for scoring once the pod is on
    a node, where it differs from (nonzero_cpu, nonzero_memory): with pod-level requests
    set, a container gets no default for a resource the pod already requests
    (calculateResource / getNonMissingContainerRequests). None: the same."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def nonzero_on_node(self) -> tuple[int, int]:
        """(milli-CPU, memory) this pod adds to its node's non-zero requests."""
        return self.node_nonzero or (self.nonzero_cpu, self.nonzero_memory)

    @property
    def terminated(self) -> bool:
        """Succeeded or Failed pods no longer occupy their node."""
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the scheduler needs of one Node, read and validated once."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, int]
    unschedulable: bool
    taints: tuple[Taint, ...]
    images: tuple[tuple[tuple[str, ...], int], ...]
    """(names, sizeBytes) per image in ``status.images``."""
    raw: JSON = field(repr=False, compare=False)


def _ref(kind: str, obj: JSON) -> str:
    """``kind ns/name`` for errors, whatever the object holds: a name or namespace that is not
    a string is quoted (cut), never rendered whole."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    ns = meta.get("namespace")
    name = name if isinstance(name, str) else quote(name)
    ns = ns if isinstance(ns, str) or not ns else quote(ns)
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def object_ref(kind: str, obj: Any) -> str:
    """``kind ns/name`` of any object, as errors name it, whatever its metadata holds."""
    return _ref(kind, obj)


def checked(obj: str, doc: Any) -> None:
    """``scoring.safe_input.check_tree`` for an object about to be read, as an ``ObjectError``
    naming it: nesting, string keys, int64 integers and finite numbers, whatever path the
    object came by (a file, a request body, a watch event)."""
    try:
        check_tree(doc)
    except InputError as e:
        raise ObjectError(obj, e.path or "(object)", e.problem) from None


def _string(obj: str, path: str, v: Any, default: str = "") -> str:
    """A string field; ``default`` when unset (null or empty)."""
    if v is None or v == "":
        return default
    if not isinstance(v, str):
        raise ObjectError(obj, path, f"expected a string, got {_type(v)}")
    return v


def _type(v: Any) -> str:
    """A JSON value as an error names it: itself when it is short, its type and size otherwise."""
    return quote(v)


def _mapping(obj: str, path: str, v: Any) -> JSON:
    if type(v) is dict:  # (the common case, without the ABC check's cost)
        return v
    if v is None:
        return _EMPTY
    if not isinstance(v, Mapping):
        raise ObjectError(obj, path, f"expected an object, got {type(v).__name__}")
    return v


def _list(obj: str, path: str, v: Any) -> Sequence[Any]:
    if type(v) is list:
        return v
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ObjectError(obj, path, f"expected a list, got {type(v).__name__}")
    return v


def _str_map(obj: str, path: str, v: Any) -> Mapping[str, str]:
    """A map of strings (labels, annotations, a nodeSelector): the object's own mapping, not a
    copy (a record never changes it), or the shared empty one."""
    m = _mapping(obj, path, v)
    for k, val in m.items():
        if not isinstance(val, str):
            raise ObjectError(obj, f"{path}.{_key(k)}", f"expected a string, got {type(val).__name__}")
    return m if m else _EMPTY


def _key(k: Any) -> str:
    """A mapping key as one element of an error's path: cut when long."""
    return k if isinstance(k, str) and len(k) <= KEY_CHARS else quote(k)


def _boolean(obj: str, path: str, v: Any) -> bool:
    """A boolean field; false when unset."""
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ObjectError(obj, path, f"expected true or false, got {_type(v)}")
    return v


def _toleration(obj: str, path: str, v: Any) -> JSON:
    """A toleration, its fields type-checked as the API's decoder would (strings, and an
    integer ``tolerationSeconds``); matching reads them later."""
    t = _mapping(obj, path, v)
    for name in ("key", "operator", "value", "effect"):
        _string(obj, f"{path}.{name}", t.get(name))
    seconds = t.get("tolerationSeconds")
    if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool)):
        raise ObjectError(obj, f"{path}.tolerationSeconds", f"expected an integer, got {_type(seconds)}")
    return t


def _amount(resource: str, q: Any) -> int:
    return milli_value(q) if resource == CPU else value(q)


def parse_resource_list(obj: str, path: str, v: Any) -> dict[str, int]:
    """A ResourceList (``{"cpu": "500m", "memory": "1Gi"}``) as int64 amounts."""
    out: dict[str, int] = {}
    for name, q in _mapping(obj, path, v).items():
        try:
            amount = _amount(name, q)
        except QuantityError as e:
            raise ObjectError(obj, f"{path}.{_key(name)}", str(e)) from None
        if amount < 0:
            raise ObjectError(obj, f"{path}.{_key(name)}", f"must not be negative, got {quote(q)}")
        out[name] = amount
    return out


def _container_requests(obj: str, path: str, c: Any) -> dict[str, int]:
    c = _mapping(obj, path, c)
    resources = _mapping(obj, f"{path}.resources", c.get("resources"))
    requests = parse_resource_list(obj, f"{path}.resources.requests", resources.get("requests"))
    # The API server defaults a missing request to the limit; objects that did
    # not pass through one (files, the strategy lab) get the same treatment.
    limits = parse_resource_list(obj, f"{path}.resources.limits", resources.get("limits"))
    for name, amount in limits.items():
        requests.setdefault(name, amount)
    return requests


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _with_defaults(req: Mapping[str, int], resources: Sequence[str] = (CPU, MEMORY)) -> dict[str, int]:
    """Upstream's NonMissingContainerRequests: unset (not zero) cpu/memory get defaults."""
    out = dict(req)
    if CPU in resources:
        out.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST)
    if MEMORY in resources:
        out.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST)
    return out


def _pod_requests(
    containers: list[dict[str, int]],
    inits: list[tuple[dict[str, int], bool]],
    overhead: Mapping[str, int],
) -> dict[str, int]:
    """max(sum(app containers + sidecars), each init container on top of earlier sidecars) + overhead."""
    reqs: dict[str, int] = {}
    for c in containers:
        _add(reqs, c)
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c, restartable in inits:
        if restartable:
            _add(reqs, c)
            _add(sidecars, c)
            _max(init_max, sidecars)
        else:
            tmp = dict(c)
            _add(tmp, sidecars)
            _max(init_max, tmp)
    _max(reqs, init_max)
    _add(reqs, overhead)
    return reqs


def _host_ports(obj: str, containers: Sequence[Any], path: str, offset: int = 0) -> list[HostPort]:
    out = []
    for i, c in enumerate(containers, start=offset):
        for j, p in enumerate(_list(obj, f"{path}[{i}].ports", _mapping(obj, f"{path}[{i}]", c).get("ports"))):
            p = _mapping(obj, f"{path}[{i}].ports[{j}]", p)
            hp = p.get("hostPort", 0)
            if not isinstance(hp, int) or isinstance(hp, bool) or not 0 <= hp <= 65535:
                raise ObjectError(obj, f"{path}[{i}].ports[{j}].hostPort", f"expected a port number, got {quote(hp)}")
            at = f"{path}[{i}].ports[{j}]"
            ip = _string(obj, f"{at}.hostIP", p.get("hostIP"), "0.0.0.0")
            protocol = _string(obj, f"{at}.protocol", p.get("protocol"), "TCP")
            if hp > 0:
                out.append(HostPort(ip=ip, protocol=protocol, port=hp))
    return out


def _pod_host_ports(obj: str, containers: Sequence[Any], inits: Sequence[Any]) -> list[HostPort]:
    """Upstream's ``schedutil.GetHostPorts``: host ports of restartable init containers
    (sidecars, ``restartPolicy: Always``), which run for the pod's whole life, then of
    the app containers. Other init containers have finished before the app starts."""
    out = []
    for i, c in enumerate(inits):
        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always":
            out.extend(_host_ports(obj, [c], "spec.initContainers", offset=i))
    out.extend(_host_ports(obj, containers, "spec.containers"))
    return out


_T = TypeVar("_T")
_SHARED_REQUESTS_LIMIT: Final = 4096
"""Distinct request maps ``_shared_requests`` keeps: far more than a cluster's workload shapes,
few enough to be nothing next to the pods that share them."""
_shared: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}


def _shared_requests(requests: dict[str, int]) -> Mapping[str, int]:
    """``requests``, or an equal map already made for another pod: the pods of one workload
    request the same, and one map serves them all (no record changes its requests)."""
    return _interned(_shared, tuple(requests.items()), requests if requests else _EMPTY, _SHARED_REQUESTS_LIMIT)


def _interned(kept: dict[Any, Any], key: Hashable, value: _T, limit: int) -> _T:
    """``value``, or the equal one ``kept`` under ``key`` already (kept from now on). ``kept``
    starts afresh at ``limit`` entries: records hold what they were given, so forgetting
    only ends the sharing for pods read later."""
    found: _T | None = kept.get(key)
    if found is None:
        if len(kept) >= limit:
            kept.clear()
        found = kept[key] = value
    return found


def pod_from_json(pod: JSON) -> PodInfo:
    """Read a Pod. Raises ObjectError naming the pod and the field on bad input."""
    obj = _ref("pod", pod)
    if not isinstance(pod, Mapping):
        raise ObjectError("pod", "(object)", f"expected a Pod object, got {_type(pod)}")
    checked(obj, pod)
    source = pod
    spec_in = pod.get("spec")
    if isinstance(spec_in, Mapping) and spec_in.get("nodeName"):
        # Bound: the record keeps the compact form (``compact_raw``), and reads its fields from
        # it, so that what it holds (tolerations, affinity, labels) is the shared parts.
        pod = compact_raw(pod)
    meta = _mapping(obj, "metadata", pod.get("metadata"))
    spec = _mapping(obj, "spec", pod.get("spec"))
    status = _mapping(obj, "status", source.get("status"))
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ObjectError(obj, "metadata.name", "required")

    containers = _list(obj, "spec.containers", spec.get("containers"))
    inits = _list(obj, "spec.initContainers", spec.get("initContainers"))
    app = [_container_requests(obj, f"spec.containers[{i}]", c) for i, c in enumerate(containers)]
    init = [
        (_container_requests(obj, f"spec.initContainers[{i}]", c), _mapping(obj, f"spec.initContainers[{i}]", c).get("restartPolicy") == "Always")
        for i, c in enumerate(inits)
    ]
    overhead = parse_resource_list(obj, "spec.overhead", spec.get("overhead"))
    requests = _pod_requests(app, init, overhead)
    nonzero = _pod_requests([_with_defaults(c) for c in app], [(_with_defaults(c), r) for c, r in init], overhead)
    # Pod-level resources (spec.resources) replace the container sum where set.
    pod_level = _mapping(obj, "spec.resources", spec.get("resources"))
    node_nonzero = None
    if pod_level:
        level = parse_resource_list(obj, "spec.resources.requests", pod_level.get("requests"))
        for k, v in level.items():
            requests[k] = v + overhead.get(k, 0)
            nonzero[k] = v + overhead.get(k, 0)
        # On a node, upstream defaults only what the pod requests nowhere at all.
        missing = [r for r in (CPU, MEMORY) if r not in requests]
        if level and len(missing) < 2:
            on_node = _pod_requests([_with_defaults(c, missing) for c in app],
                                    [(_with_defaults(c, missing), r) for c, r in init], overhead)
            on_node.update({k: v + overhead.get(k, 0) for k, v in level.items()})
            pair = (on_node.get(CPU, 0), on_node.get(MEMORY, 0))
            node_nonzero = pair if pair != (nonzero.get(CPU, 0), nonzero.get(MEMORY, 0)) else None

    priority = spec.get("priority", 0) or 0
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ObjectError(obj, "spec.priority", f"expected an integer, got {quote(priority)}")
    if not INT32_MIN <= priority <= INT32_MAX:  # Pod.spec.priority is an int32
        raise ObjectError(obj, "spec.priority", f"{quote(priority)} is out of int32 range")
    images = tuple(
        _string(obj, f"spec.{where}[{i}].image", c.get("image"))
        for where, cs in (("containers", containers), ("initContainers", inits))
        for i, c in enumerate(cs) if isinstance(c, Mapping) and c.get("image")
    )
    gates = tuple(
        _string(obj, f"spec.schedulingGates[{i}].name", _mapping(obj, f"spec.schedulingGates[{i}]", g).get("name"))
        for i, g in enumerate(_list(obj, "spec.schedulingGates", spec.get("schedulingGates")))
    )
    tolerations = [_toleration(obj, f"spec.tolerations[{i}]", t)
                   for i, t in enumerate(_list(obj, "spec.tolerations", spec.get("tolerations")))]
    # A name many pods share (their node's, their namespace) is kept once, not once per pod.
    node_name = sys.intern(_string(obj, "spec.nodeName", spec.get("nodeName")))
    return PodInfo(
        namespace=sys.intern(_string(obj, "metadata.namespace", meta.get("namespace"), "default")),
        name=name,
        uid=_string(obj, "metadata.uid", meta.get("uid")),
        labels=_str_map(obj, "metadata.labels", meta.get("labels")),
        annotations=_str_map(obj, "metadata.annotations", meta.get("annotations")),
        scheduler_name=_string(obj, "spec.schedulerName", spec.get("schedulerName"), "default-scheduler"),
        node_name=node_name,
        phase=_string(obj, "status.phase", status.get("phase"), "Pending"),
        priority=priority,
        requests=_shared_requests(requests),
        nonzero_cpu=nonzero.get(CPU, 0),
        nonzero_memory=nonzero.get(MEMORY, 0),
        node_selector=_str_map(obj, "spec.nodeSelector", spec.get("nodeSelector")),
        affinity=_mapping(obj, "spec.affinity", spec.get("affinity")),
        tolerations=tuple(tolerations),
        host_ports=tuple(_pod_host_ports(obj, containers, inits)),
        images=images,
        scheduling_gates=gates,
        # A bound pod keeps only what is read of it (``compact_raw``, above); a pending one,
        # whose status the scheduler writes conditions into, keeps the whole object.
        raw=pod,
        node_nonzero=node_nonzero,
    )


def compact_raw(pod: JSON, *, spec: Mapping[str, Any] | None = None) -> JSON:
    """What of a bound pod's JSON anything reads once it is charged to its node, held in
    as few bytes as the scheduler can: a scheduler of a large cluster keeps one per pod.
    ``spec``: the compact spec of an earlier version whose spec is the same JSON as this one's
    (a status update's), taken as it is rather than made again.

    Left out: ``metadata.managedFields`` and the status fields nothing reads (container
    statuses, IPs, QoS class, conditions other than PodScheduled and DisruptionTarget) --
    the kubelet's status makes up much of a running pod. Kept: the rest of ``metadata``
    (labels, owners, deletion), the whole ``spec`` (volumes, constraints, containers;
    compared whole to tell a status update from a change) and the status fields preemption
    and the load plugins read. The pods of one workload have the same containers,
    tolerations, affinity, volumes and labels: each such part (a list or an object under
    ``spec``, and the labels) is kept once, shared by every pod whose part is equal, and
    read-only as all of a record is. Any other shape (a field of the wrong type, which the
    reader then refuses) is left as it is."""
    out = dict(pod)
    meta = pod.get("metadata")
    if is_mapping(meta):
        labels = meta.get("labels")
        shared = _shared_labels(labels) if is_mapping(labels) else None
        if "managedFields" in meta or shared is not None:
            compact = {k: v for k, v in meta.items() if k != "managedFields"}
            if shared is not None:
                compact["labels"] = shared
            out["metadata"] = compact
    if spec is not None:
        out["spec"] = spec
    elif is_mapping(spec_in := pod.get("spec")):
        out["spec"] = {k: _shared_part(k, v) if isinstance(v, (dict, list)) and v else v for k, v in spec_in.items()}
    status = pod.get("status")
    if is_mapping(status):
        kept: dict[str, Any] = {k: status[k] for k in _KEPT_STATUS if k in status}
        conditions = status.get("conditions")
        if isinstance(conditions, list):
            useful = [c for c in conditions if is_mapping(c) and c.get("type") in _KEPT_CONDITIONS]
            if useful:
                kept["conditions"] = useful
        out["status"] = kept
    return out


_SHARED_PARTS_LIMIT: Final = 4096
"""Distinct parts (containers lists, label sets, ...) ``compact_raw`` keeps for sharing before
it starts afresh: far more than a cluster's distinct workloads, few enough that the keys
(the parts' text) stay a few MiB."""
_parts: dict[tuple[str, str], Any] = {}
_label_sets: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}


def _shared_part(key: str, value: Any) -> Any:
    """``value`` (``spec.<key>``), or an equal one already kept for another pod. Equal text
    (``repr``) means an equal JSON value: the same types, keys in the same order, values."""
    return _interned(_parts, (key, repr(value)), value, _SHARED_PARTS_LIMIT)


def _shared_labels(labels: Mapping[str, Any]) -> Mapping[str, str] | None:
    """``labels``, or an equal label set already kept for another pod; None unless every
    value is a string (the reader refuses the pod then)."""
    if not labels or not all(type(v) is str for v in labels.values()):
        return None
    return _interned(_label_sets, tuple(labels.items()), labels, _SHARED_PARTS_LIMIT)


_STATE: Final = ("node_name", "phase", "raw")
_KEPT_SLOTS: Final = tuple((f.name, getattr(PodInfo, f.name).__set__) for f in fields(PodInfo) if f.name not in _STATE)
_SET_NODE, _SET_PHASE, _SET_RAW = (getattr(PodInfo, name).__set__ for name in _STATE)


def with_state(pod: PodInfo, *, node_name: str, phase: str, raw: JSON) -> PodInfo:
    """``replace(pod, node_name=node_name, phase=phase, raw=raw)`` at a third of its cost (the
    watch builds one for each binding it confirms and each status update of a placed pod):
    each field set through its slot, as the frozen class's own ``__init__`` sets them."""
    out = object.__new__(PodInfo)
    for name, put in _KEPT_SLOTS:
        put(out, getattr(pod, name))
    _SET_NODE(out, node_name)
    _SET_PHASE(out, phase)
    _SET_RAW(out, raw)
    return out


def with_annotations(pod: PodInfo, annotations: Mapping[str, str]) -> PodInfo:
    """A copy of ``pod`` with ``annotations`` merged into its metadata (and its raw JSON)."""
    merged = {**pod.annotations, **annotations}
    raw = dict(pod.raw)
    raw["metadata"] = {**(raw.get("metadata") or {}), "annotations": merged}
    return replace(pod, annotations=merged, raw=raw)


_TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def node_from_json(node: JSON) -> NodeInfo:
    """Read a Node. Raises ObjectError naming the node and the field on bad input."""
    obj = _ref("node", node)
    if not isinstance(node, Mapping):
        raise ObjectError("node", "(object)", f"expected a Node object, got {_type(node)}")
    checked(obj, node)
    meta = _mapping(obj, "metadata", node.get("metadata"))
    spec = _mapping(obj, "spec", node.get("spec"))
    status = _mapping(obj, "status", node.get("status"))
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ObjectError(obj, "metadata.name", "required")
    alloc_src = status.get("allocatable")
    path = "status.allocatable"
    if alloc_src is None:
        alloc_src, path = status.get("capacity"), "status.capacity"
    allocatable = parse_resource_list(obj, path, alloc_src)
    taints = []
    for i, t in enumerate(_list(obj, "spec.taints", spec.get("taints"))):
        t = _mapping(obj, f"spec.taints[{i}]", t)
        key, effect = t.get("key"), t.get("effect")
        if not isinstance(key, str) or not key:
            raise ObjectError(obj, f"spec.taints[{i}].key", "required")
        if effect not in _TAINT_EFFECTS:
            raise ObjectError(obj, f"spec.taints[{i}].effect", f"must be one of {', '.join(_TAINT_EFFECTS)}, got {quote(effect)}")
        taints.append(Taint(key=key, value=_string(obj, f"spec.taints[{i}].value", t.get("value")), effect=effect))
    images = []
    for i, im in enumerate(_list(obj, "status.images", status.get("images"))):
        im = _mapping(obj, f"status.images[{i}]", im)
        names = tuple(_string(obj, f"status.images[{i}].names[{j}]", n)
                      for j, n in enumerate(_list(obj, f"status.images[{i}].names", im.get("names"))))
        size = im.get("sizeBytes", 0) or 0
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= INT64_MAX:
            raise ObjectError(obj, f"status.images[{i}].sizeBytes", f"expected a non-negative integer, got {quote(size)}")
        images.append((names, size))
    return NodeInfo(
        name=name,
        labels=_str_map(obj, "metadata.labels", meta.get("labels")),
        allocatable=allocatable,
        unschedulable=_boolean(obj, "spec.unschedulable", spec.get("unschedulable")),
        taints=tuple(taints),
        images=tuple(images),
        raw=node,
    )
