"""The cluster's storage objects as the scheduler reads them: PersistentVolumes,
PersistentVolumeClaims, StorageClasses, CSINodes, CSIDrivers, CSIStorageCapacities,
and a pod's volumes.

Each object is read once from its JSON into a small frozen record, its fields
validated: an unreadable one raises ObjectError naming the object and the field.
``scoring.volumes`` keeps them (``Volumes``) and re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from scoring.objects import ObjectError, PodInfo, checked
# The Pod and Node readers' field checks, with the same messages.
from scoring.objects import _list as _seq, _mapping as _obj, _str_map
from scoring.quantity import QuantityError, value
from scoring.safe_input import quote

if TYPE_CHECKING:
    from scoring.plugins.node_affinity import Term

# The matchers below come from scoring.plugins modules, imported where used: the plugin
# registry (scoring.plugins) imports the volume plugins, which import this module.

__all__ = [
    "SELECTED_NODE", "BIND_COMPLETED", "BOUND_BY_CONTROLLER", "NO_PROVISIONER", "IMMEDIATE",
    "WAIT_FOR_FIRST_CONSUMER", "DEFAULT_CLASS_ANNOTATION", "BETA_DEFAULT_CLASS_ANNOTATION", "BETA_STORAGE_CLASS",
    "FILESYSTEM", "BLOCK", "VOLUME_AVAILABLE", "CLAIM_LOST", "STORAGE", "KINDS", "VOLUME_BINDING_PLAN",
    "ClaimRef", "PersistentVolume", "PersistentVolumeClaim", "StorageClass", "CSINodeDriver", "CSINode",
    "CSIDriver", "CSIStorageCapacity", "PodVolumes",
    "pv_from_json", "pvc_from_json", "storage_class_from_json", "csinode_from_json", "csidriver_from_json",
    "capacity_from_json", "pod_volumes",
]

SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER: Final = "pv.kubernetes.io/bound-by-controller"
NO_PROVISIONER: Final = "kubernetes.io/no-provisioner"
IMMEDIATE: Final = "Immediate"
WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"
DEFAULT_CLASS_ANNOTATION: Final = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION: Final = "storageclass.beta.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS: Final = "volume.beta.kubernetes.io/storage-class"
"""The beta annotation that, when present, names a PV's or claim's class before its spec
does (upstream's GetPersistentVolumeClass / GetPersistentVolumeClaimClass)."""
FILESYSTEM: Final = "Filesystem"
BLOCK: Final = "Block"
VOLUME_AVAILABLE: Final = "Available"
CLAIM_LOST: Final = "Lost"
STORAGE: Final = "storage"
KINDS: Final = ("PersistentVolume", "PersistentVolumeClaim", "StorageClass", "CSINode", "CSIDriver",
                "CSIStorageCapacity")
VOLUME_BINDING_PLAN: Final = "VolumeBinding/plan"
"""CycleState key under which VolumeBinding's Reserve leaves its ``VolumeBindingPlan``."""

_VOLUME_MODES: Final = (FILESYSTEM, BLOCK)
_BINDING_MODES: Final = (IMMEDIATE, WAIT_FOR_FIRST_CONSUMER)
JSON = Mapping[str, Any]


# ---- the records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """A PV's ``spec.claimRef``: the claim it is bound (or pre-bound) to."""

    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PersistentVolume:
    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    storage_class: str
    """The beta class annotation when present, else ``spec.storageClassName`` ("" when none)."""
    capacity: int
    """``spec.capacity.storage`` in bytes (0 when absent)."""
    access_modes: tuple[str, ...]
    volume_mode: str
    claim_ref: ClaimRef | None
    node_affinity: Mapping[str, Any] | None
    """``spec.nodeAffinity.required`` (a NodeSelector), or None when the PV has none."""
    phase: str
    csi_driver: str
    volume_handle: str
    deleting: bool
    raw: JSON = field(repr=False, compare=False)
    terms: tuple[Term, ...] | None = field(default=None, repr=False, compare=False)
    """``node_affinity`` parsed (None: no constraint; (): matches no node), with
    ``matchFields`` made to see an empty node name, as upstream's CheckNodeAffinity."""
    local: bool = False
    """``spec.local`` is set (a local volume: its hostname terms name its nodes)."""
    attributes_class: str = ""
    """``spec.volumeAttributesClassName`` ("" when none)."""
    spec_class: str = ""
    """``spec.storageClassName`` alone, without the beta annotation ("" when none)."""

    def is_bound_to(self, claim: PersistentVolumeClaim) -> bool:
        """Upstream's IsVolumeBoundToClaim: the claimRef names the claim (and its uid, when set)."""
        ref = self.claim_ref
        if ref is None or ref.name != claim.name or ref.namespace != claim.namespace:
            return False
        return not ref.uid or ref.uid == claim.uid


@dataclass(frozen=True, slots=True)
class PersistentVolumeClaim:
    namespace: str
    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    storage_class: str | None
    """The beta class annotation when present, else ``spec.storageClassName``; None when
    neither is set."""
    volume_name: str
    access_modes: tuple[str, ...]
    request: int
    """``spec.resources.requests.storage`` in bytes (0 when absent)."""
    selector: Mapping[str, Any] | None
    volume_mode: str
    phase: str
    deleting: bool
    raw: JSON = field(repr=False, compare=False)
    owners: tuple[str, ...] = field(default=(), repr=False, compare=False)
    """uids of the controller ownerReferences (a generic ephemeral volume's claim names its pod)."""
    has_request: bool = False
    """Whether ``spec.resources.requests.storage`` is set at all."""
    attributes_class: str = ""
    """``spec.volumeAttributesClassName`` ("" when none)."""
    spec_class: str | None = None
    """``spec.storageClassName`` alone, without the beta annotation (None when absent)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def class_name(self) -> str:
        """Upstream's GetPersistentVolumeClaimClass: the class, "" when none."""
        return self.storage_class or ""


@dataclass(frozen=True, slots=True)
class StorageClass:
    name: str
    provisioner: str
    binding_mode: str
    allowed_topologies: tuple[Mapping[str, Any], ...]
    is_default: bool
    raw: JSON = field(repr=False, compare=False)
    created: float = field(default=0.0, repr=False, compare=False)
    """``metadata.creationTimestamp`` as epoch seconds (0 when absent)."""


@dataclass(frozen=True, slots=True)
class CSINodeDriver:
    name: str
    node_id: str
    topology_keys: tuple[str, ...]
    allocatable_count: int | None


@dataclass(frozen=True, slots=True)
class CSINode:
    name: str
    drivers: Mapping[str, CSINodeDriver]
    raw: JSON = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class CSIDriver:
    name: str
    attach_required: bool = True
    storage_capacity: bool = False
    raw: JSON = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class CSIStorageCapacity:
    namespace: str
    name: str
    storage_class: str
    node_topology: Mapping[str, Any] | None
    """A LabelSelector over node labels; None: no node has access."""
    capacity: int | None
    maximum_volume_size: int | None
    raw: JSON = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


# ---- reading JSON --------------------------------------------------------------------------


def _ref(kind: str, obj: Any, *, namespaced: bool) -> tuple[str, JSON, str, str]:
    """(object reference for errors, metadata, namespace, name); ObjectError without a name."""
    if not isinstance(obj, Mapping):
        raise ObjectError(kind, "", f"expected a {kind} object, got {type(obj).__name__}")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise ObjectError(kind, "metadata", "expected an object")
    name = meta.get("name")
    shown = name if isinstance(name, str) else quote(name)
    ns = _str(f"{kind} {shown}", "metadata.namespace", meta.get("namespace")) or "default" if namespaced else ""
    ref = f"{kind} {ns}/{shown}" if namespaced else f"{kind} {shown}"
    if not isinstance(name, str) or not name:
        raise ObjectError(ref, "metadata.name", "required")
    checked(ref, obj)
    return ref, meta, ns, name


def _str(ref: str, path: str, v: Any) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ObjectError(ref, path, f"expected a string, got {quote(v)}"[:200])
    return v


def _strs(ref: str, path: str, v: Any) -> tuple[str, ...]:
    return tuple(_str(ref, f"{path}[{i}]", x) for i, x in enumerate(_seq(ref, path, v)))


def _bytes(ref: str, path: str, v: Any) -> int:
    try:
        amount = value(v)
    except QuantityError as e:
        raise ObjectError(ref, path, str(e)) from None
    if amount < 0:
        raise ObjectError(ref, path, f"must not be negative, got {quote(v)}")
    return amount


def _bool(ref: str, path: str, v: Any, default: bool) -> bool:
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ObjectError(ref, path, f"expected true or false, got {quote(v)}")
    return v


def _choice(ref: str, path: str, v: Any, choices: Sequence[str], default: str) -> str:
    if v is None or v == "":
        return default
    if v not in choices:
        raise ObjectError(ref, path, f"must be one of {', '.join(choices)}, got {quote(v)}"[:200])
    return str(v)


def _selector(ref: str, path: str, v: Any) -> Mapping[str, Any] | None:
    """A LabelSelector, checked as upstream's LabelSelectorAsSelector would."""
    from scoring.plugins.pod_selectors import SelectorError, parse_selector

    if v is None:
        return None
    try:
        parse_selector(v, path)
    except SelectorError as e:
        raise ObjectError(ref, e.field, _brief(e.problem)) from None
    return _obj(ref, path, v)


def _brief(problem: str) -> str:
    """Upstream's validation text without its examples and regular expression (`` (e.g. 'MyName',
    ... regex used for validation is '...')``) when it is long: after a volume object's path,
    the rule alone keeps the error on one short line."""
    return problem.split(" (e.g. ")[0] if len(problem) > 120 else problem


def _name_blind(terms: tuple[Term, ...]) -> tuple[Term, ...]:
    from scoring.plugins.node_affinity import FieldRequirement, Term

    # A matchFields key other than metadata.name reads as the empty string in the
    # matcher: what CheckNodeAffinity's name-less node gives for metadata.name too.
    return tuple(Term(t.expressions, tuple(FieldRequirement("", f.operator, f.value) for f in t.fields))
                 for t in terms)


def pv_from_json(obj: Any) -> PersistentVolume:
    """A PersistentVolume; ObjectError names the field the scheduler cannot read."""
    from scoring.plugins.node_affinity import NodeSelectorReader

    ref, meta, _, name = _ref("PersistentVolume", obj, namespaced=False)
    spec = _obj(ref, "spec", obj.get("spec"))
    status = _obj(ref, "status", obj.get("status"))
    annotations = _str_map(ref, "metadata.annotations", meta.get("annotations"))
    capacity = _obj(ref, "spec.capacity", spec.get("capacity"))
    size = _bytes(ref, "spec.capacity.storage", capacity[STORAGE]) if capacity.get(STORAGE) is not None else 0
    claim_ref = None
    raw_ref = spec.get("claimRef")
    if raw_ref is not None:
        m = _obj(ref, "spec.claimRef", raw_ref)
        claim_ref = ClaimRef(_str(ref, "spec.claimRef.namespace", m.get("namespace")),
                             _str(ref, "spec.claimRef.name", m.get("name")),
                             _str(ref, "spec.claimRef.uid", m.get("uid")))
    affinity = _obj(ref, "spec.nodeAffinity", spec.get("nodeAffinity"))
    required = affinity.get("required")
    terms = None
    if required is not None:
        _obj(ref, "spec.nodeAffinity.required", required)
        reader = NodeSelectorReader(strict=False)
        parsed = reader.selector(required, "spec.nodeAffinity.required")
        if reader.errors:
            path, problem = reader.errors[0]
            more = f" (and {len(reader.errors) - 1} more)" if len(reader.errors) > 1 else ""
            raise ObjectError(ref, path, _brief(problem) + more)
        terms = _name_blind(parsed)
    csi = _obj(ref, "spec.csi", spec.get("csi"))
    class_name = annotations[BETA_STORAGE_CLASS] if BETA_STORAGE_CLASS in annotations else \
        _str(ref, "spec.storageClassName", spec.get("storageClassName"))
    return PersistentVolume(
        name=name,
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        labels=_str_map(ref, "metadata.labels", meta.get("labels")),
        annotations=annotations,
        storage_class=class_name,
        capacity=size,
        access_modes=_strs(ref, "spec.accessModes", spec.get("accessModes")),
        volume_mode=_choice(ref, "spec.volumeMode", spec.get("volumeMode"), _VOLUME_MODES, FILESYSTEM),
        claim_ref=claim_ref,
        node_affinity=None if required is None else required,
        phase=_str(ref, "status.phase", status.get("phase")),
        csi_driver=_str(ref, "spec.csi.driver", csi.get("driver")),
        volume_handle=_str(ref, "spec.csi.volumeHandle", csi.get("volumeHandle")),
        deleting=meta.get("deletionTimestamp") is not None,
        raw=obj,
        terms=terms,
        local=spec.get("local") is not None,
        attributes_class=_str(ref, "spec.volumeAttributesClassName", spec.get("volumeAttributesClassName")),
        spec_class=_str(ref, "spec.storageClassName", spec.get("storageClassName")),
    )


def pvc_from_json(obj: Any) -> PersistentVolumeClaim:
    """A PersistentVolumeClaim; ObjectError names the field the scheduler cannot read."""
    ref, meta, ns, name = _ref("PersistentVolumeClaim", obj, namespaced=True)
    spec = _obj(ref, "spec", obj.get("spec"))
    status = _obj(ref, "status", obj.get("status"))
    annotations = _str_map(ref, "metadata.annotations", meta.get("annotations"))
    resources = _obj(ref, "spec.resources", spec.get("resources"))
    requests = _obj(ref, "spec.resources.requests", resources.get("requests"))
    has_request = requests.get(STORAGE) is not None
    request = _bytes(ref, "spec.resources.requests.storage", requests[STORAGE]) if has_request else 0
    if BETA_STORAGE_CLASS in annotations:
        class_name: str | None = annotations[BETA_STORAGE_CLASS]
    else:
        raw_class = spec.get("storageClassName")
        class_name = None if raw_class is None else _str(ref, "spec.storageClassName", raw_class)
    owners = []
    for i, o in enumerate(_seq(ref, "metadata.ownerReferences", meta.get("ownerReferences"))):
        o = _obj(ref, f"metadata.ownerReferences[{i}]", o)
        if o.get("controller") is True:
            owners.append(_str(ref, f"metadata.ownerReferences[{i}].uid", o.get("uid")))
    return PersistentVolumeClaim(
        namespace=ns,
        name=name,
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        labels=_str_map(ref, "metadata.labels", meta.get("labels")),
        annotations=annotations,
        storage_class=class_name,
        volume_name=_str(ref, "spec.volumeName", spec.get("volumeName")),
        access_modes=_strs(ref, "spec.accessModes", spec.get("accessModes")),
        request=request,
        selector=_selector(ref, "spec.selector", spec.get("selector")),
        volume_mode=_choice(ref, "spec.volumeMode", spec.get("volumeMode"), _VOLUME_MODES, FILESYSTEM),
        phase=_str(ref, "status.phase", status.get("phase")),
        deleting=meta.get("deletionTimestamp") is not None,
        raw=obj,
        owners=tuple(owners),
        has_request=has_request,
        attributes_class=_str(ref, "spec.volumeAttributesClassName", spec.get("volumeAttributesClassName")),
        spec_class=None if spec.get("storageClassName") is None else _str(ref, "spec.storageClassName",
                                                                           spec.get("storageClassName")),
    )


def storage_class_from_json(obj: Any) -> StorageClass:
    """A StorageClass (``storage.k8s.io/v1``)."""
    from scoring.plugins.podgroups import parse_time

    ref, meta, _, name = _ref("StorageClass", obj, namespaced=False)
    annotations = _str_map(ref, "metadata.annotations", meta.get("annotations"))
    topologies = []
    for i, t in enumerate(_seq(ref, "allowedTopologies", obj.get("allowedTopologies"))):
        path = f"allowedTopologies[{i}]"
        t = _obj(ref, path, t)
        for j, e in enumerate(_seq(ref, f"{path}.matchLabelExpressions", t.get("matchLabelExpressions"))):
            e = _obj(ref, f"{path}.matchLabelExpressions[{j}]", e)
            _str(ref, f"{path}.matchLabelExpressions[{j}].key", e.get("key"))
            _strs(ref, f"{path}.matchLabelExpressions[{j}].values", e.get("values"))
        topologies.append(t)
    return StorageClass(
        name=name,
        provisioner=_str(ref, "provisioner", obj.get("provisioner")),
        binding_mode=_choice(ref, "volumeBindingMode", obj.get("volumeBindingMode"), _BINDING_MODES, IMMEDIATE),
        allowed_topologies=tuple(topologies),
        is_default=annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"
        or annotations.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true",
        raw=obj,
        created=parse_time(meta.get("creationTimestamp")) or 0.0,
    )


def csinode_from_json(obj: Any) -> CSINode:
    """A CSINode: the CSI drivers a node runs, with their topology keys and attach limits."""
    ref, _, _, name = _ref("CSINode", obj, namespaced=False)
    spec = _obj(ref, "spec", obj.get("spec"))
    drivers: dict[str, CSINodeDriver] = {}
    for i, d in enumerate(_seq(ref, "spec.drivers", spec.get("drivers"))):
        path = f"spec.drivers[{i}]"
        d = _obj(ref, path, d)
        driver = _str(ref, f"{path}.name", d.get("name"))
        if not driver:
            raise ObjectError(ref, f"{path}.name", "required")
        count = _obj(ref, f"{path}.allocatable", d.get("allocatable")).get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
            raise ObjectError(ref, f"{path}.allocatable.count", f"expected a non-negative integer, got {quote(count)}")
        drivers[driver] = CSINodeDriver(driver, _str(ref, f"{path}.nodeID", d.get("nodeID")),
                                        _strs(ref, f"{path}.topologyKeys", d.get("topologyKeys")), count)
    return CSINode(name, drivers, obj)


def csidriver_from_json(obj: Any) -> CSIDriver:
    """A CSIDriver: whether its volumes are attached, and whether it publishes capacity."""
    ref, _, _, name = _ref("CSIDriver", obj, namespaced=False)
    spec = _obj(ref, "spec", obj.get("spec"))
    return CSIDriver(name, _bool(ref, "spec.attachRequired", spec.get("attachRequired"), True),
                     _bool(ref, "spec.storageCapacity", spec.get("storageCapacity"), False), obj)


def capacity_from_json(obj: Any) -> CSIStorageCapacity:
    """A CSIStorageCapacity: storage a class can still provision for the nodes it selects."""
    ref, _, ns, name = _ref("CSIStorageCapacity", obj, namespaced=True)
    class_name = _str(ref, "storageClassName", obj.get("storageClassName"))
    if not class_name:
        raise ObjectError(ref, "storageClassName", "required")
    cap = obj.get("capacity")
    most = obj.get("maximumVolumeSize")
    return CSIStorageCapacity(
        namespace=ns, name=name, storage_class=class_name,
        node_topology=_selector(ref, "nodeTopology", obj.get("nodeTopology")),
        capacity=None if cap is None else _bytes(ref, "capacity", cap),
        maximum_volume_size=None if most is None else _bytes(ref, "maximumVolumeSize", most),
        raw=obj,
    )


# ---- a pod's volumes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodVolumes:
    """A pod's volumes as the volume plugins read them."""

    claims: tuple[str, ...]
    """Claim names in the pod's namespace, in ``spec.volumes`` order: a
    ``persistentVolumeClaim``'s claimName, and for a generic ephemeral volume
    ``<pod name>-<volume name>`` (upstream's ephemeral.VolumeClaimName)."""
    ephemeral: frozenset[str]
    """Which of ``claims`` come from ephemeral volumes (the claim must be owned by the pod)."""
    inline_csi: tuple[tuple[str, str], ...]
    """(driver, ``<pod uid>-<volume name>``) per ``spec.volumes[].csi`` (CSI ephemeral volume)."""
    raw_volumes: tuple[Mapping[str, Any], ...]


_NO_VOLUMES: Final = PodVolumes((), frozenset(), (), ())


def pod_volumes(pod: PodInfo) -> PodVolumes:
    """The pod's claims and inline CSI volumes; ObjectError on a malformed ``spec.volumes``."""
    spec = pod.raw.get("spec") if isinstance(pod.raw, Mapping) else None
    raw = spec.get("volumes") if isinstance(spec, Mapping) else None
    if not raw:
        return _NO_VOLUMES
    ref = f"pod {pod.namespace}/{pod.name}"
    claims: list[str] = []
    ephemeral: set[str] = set()
    inline: list[tuple[str, str]] = []
    volumes = []
    for i, v in enumerate(_seq(ref, "spec.volumes", raw)):
        path = f"spec.volumes[{i}]"
        v = _obj(ref, path, v)
        volumes.append(v)
        name = _str(ref, f"{path}.name", v.get("name"))
        if v.get("persistentVolumeClaim") is not None:
            pvc = _obj(ref, f"{path}.persistentVolumeClaim", v["persistentVolumeClaim"])
            claim = _str(ref, f"{path}.persistentVolumeClaim.claimName", pvc.get("claimName"))
            if not claim:
                raise ObjectError(ref, f"{path}.persistentVolumeClaim.claimName", "required")
            claims.append(claim)
        elif v.get("ephemeral") is not None:
            _obj(ref, f"{path}.ephemeral", v["ephemeral"])
            if not name:
                raise ObjectError(ref, f"{path}.name", "required")
            claim = f"{pod.name}-{name}"
            claims.append(claim)
            ephemeral.add(claim)
        elif v.get("csi") is not None:
            csi = _obj(ref, f"{path}.csi", v["csi"])
            inline.append((_str(ref, f"{path}.csi.driver", csi.get("driver")), f"{pod.uid}-{name}"))
    return PodVolumes(tuple(claims), frozenset(ephemeral), tuple(inline), tuple(volumes))
