"""The resource types the embedded API server serves, and their discovery documents.

A client maps a kind to a URL by reading discovery (``/api``, ``/api/v1``,
``/apis``, ``/apis/<group>/<version>``), so the table of resources here is the
single source for routing, RBAC resource names, field-selector support and
the discovery bodies that ``kubectl`` and ``kubernetes_asyncio`` read.

The built-in kinds are fixed (``BUILTIN``); a ``Registry`` holds them plus the
custom resources that CustomResourceDefinitions add while the server runs, so
routing and discovery are answered from one mutable table.

Two more groups are only discovered, never stored: ``authentication.k8s.io/v1``
``tokenreviews`` and ``authorization.k8s.io/v1`` ``subjectaccessreviews``
(``CREATE_ONLY``), create-only questions answered by ``reviews.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = [
    "ResourceType",
    "ScalePaths",
    "ObjectSchema",
    "Registry",
    "BUILTIN",
    "builtin",
    "api_versions",
    "VERSION_INFO",
    "CREATE_ONLY",
    "create_only",
    "CreateOnly",
]

_ALL_VERBS: Final = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# Field labels every resource supports, then the extra ones of each kind, as
# kube-apiserver's `GetAttrs`/field-label conversion functions define them.
_COMMON_FIELDS: Final = ("metadata.name", "metadata.namespace")
_EVENT_FIELDS: Final = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)


class ObjectSchema(Protocol):
    """What the server checks of an object of one kind before it is stored.

    Built-in kinds get their known fields from the published API types;
    custom resources get their CRD's structural schema. ``admit`` may prune
    unknown fields and fill defaults in place.
    """

    def admit(self, obj: dict[str, Any], *, field_validation: str, duplicates: Sequence[str] = (),
              verb: str = "create", subresource: str = "") -> list[str]:
        """Check ``obj`` (pruning and defaulting it in place); return warnings.

        ``field_validation`` is the request's ``fieldValidation``: ``Strict``
        (unknown fields, and ``duplicates`` -- the request body's repeated
        keys -- are an error), ``Warn`` (they are warnings) or ``Ignore``.
        ``verb`` (create, update, patch) picks upstream's wording of the error; a
        ``subresource`` of ``status`` checks only what a ``/status`` write may change.
        Invalid values raise the 422 ``ApiError`` kube-apiserver would send.
        """
        ...


@dataclass(frozen=True)
class ScalePaths:
    """Where the ``scale`` subresource reads and writes (a CRD's ``subresources.scale``)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str = ""
    """JSON path of a label selector *string*; empty for the built-in kinds, whose
    selector is the ``spec.selector`` LabelSelector rendered as a string."""


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the URL space and how it behaves."""

    plural: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    """Field-selector labels beyond ``metadata.name``/``metadata.namespace``."""
    categories: tuple[str, ...] = ()
    create_on_update: bool = False
    """Whether a PUT of a missing object creates it (leases, events)."""
    status_split: bool = False
    """Whether the main resource ignores ``status`` and ``/status`` changes only it."""
    singular: str = ""
    field_paths: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)
    scale: ScalePaths | None = None
    """The ``scale`` subresource, when the kind has one."""
    gc_policy: str = "Background"
    """Propagation of a DELETE that names none (``Orphan`` for batch/v1 Jobs, as upstream)."""
    generation: bool = False
    """Whether ``metadata.generation`` counts changes to everything but metadata and status."""
    schema: ObjectSchema | None = field(default=None, compare=False, hash=False)
    """Field checks and defaults applied at create and update; None checks nothing."""
    columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    """A custom resource's ``additionalPrinterColumns`` (``name``, ``type``, ``jsonPath``...)."""
    custom: bool = False
    """Served for a CustomResourceDefinition (JSON only, no protobuf)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Stable name used by the store and in state files: ``pods``, ``leases.coordination.k8s.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def selectable(self) -> tuple[str, ...]:
        return _COMMON_FIELDS + self.fields

    def field_index(self, label: str) -> int:
        """Position of a field label in an ``Entry.fields`` tuple."""
        return list(self.field_paths).index(label)


def _paths(names: tuple[str, ...], aliases: dict[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    out = {n: tuple(n.split(".")) for n in _COMMON_FIELDS + names}
    for label, path in (aliases or {}).items():
        out[label] = tuple(path.split("."))
    return out


def make_type(**kw: Any) -> ResourceType:
    """A ``ResourceType`` with its field-selector paths derived from ``fields`` (and ``aliases``)."""
    fields = kw.get("fields", ())
    aliases = kw.pop("aliases", None)
    return ResourceType(field_paths=_paths(fields, aliases), **kw)


_rt = make_type
_SCALE: Final = ScalePaths()


_POD_FIELDS: Final = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
_WORKLOAD: Final = dict(namespaced=True, categories=("all",), status_split=True, generation=True)

BUILTIN: Final[tuple[ResourceType, ...]] = (
    # core/v1
    _rt(plural="namespaces", kind="Namespace", group="", version="v1", namespaced=False,
        short_names=("ns",), subresources=("status",), fields=("status.phase",), status_split=True,
        singular="namespace"),
    _rt(plural="nodes", kind="Node", group="", version="v1", namespaced=False, short_names=("no",),
        subresources=("status",), fields=("spec.unschedulable",), status_split=True, singular="node"),
    _rt(plural="pods", kind="Pod", group="", version="v1", namespaced=True, short_names=("po",),
        subresources=("status", "binding", "eviction"), fields=_POD_FIELDS, categories=("all",), status_split=True,
        singular="pod"),
    _rt(plural="events", kind="Event", group="", version="v1", namespaced=True, short_names=("ev",),
        fields=_EVENT_FIELDS, create_on_update=True, singular="event",
        aliases={"source": "source.component"}),
    _rt(plural="configmaps", kind="ConfigMap", group="", version="v1", namespaced=True, short_names=("cm",),
        singular="configmap"),
    _rt(plural="secrets", kind="Secret", group="", version="v1", namespaced=True, fields=("type",),
        singular="secret"),
    _rt(plural="serviceaccounts", kind="ServiceAccount", group="", version="v1", namespaced=True,
        short_names=("sa",), singular="serviceaccount"),
    _rt(plural="services", kind="Service", group="", version="v1", namespaced=True, short_names=("svc",),
        subresources=("status",), categories=("all",), status_split=True, singular="service"),
    _rt(plural="endpoints", kind="Endpoints", group="", version="v1", namespaced=True, short_names=("ep",),
        singular="endpoints"),
    _rt(plural="resourcequotas", kind="ResourceQuota", group="", version="v1", namespaced=True,
        short_names=("quota",), subresources=("status",), status_split=True, singular="resourcequota"),
    _rt(plural="limitranges", kind="LimitRange", group="", version="v1", namespaced=True, short_names=("limits",),
        singular="limitrange"),
    _rt(plural="persistentvolumes", kind="PersistentVolume", group="", version="v1", namespaced=False,
        short_names=("pv",), subresources=("status",), status_split=True, singular="persistentvolume"),
    _rt(plural="persistentvolumeclaims", kind="PersistentVolumeClaim", group="", version="v1", namespaced=True,
        short_names=("pvc",), subresources=("status",), status_split=True, singular="persistentvolumeclaim"),
    # Owners whose selectors feed PodTopologySpread's system default constraints.
    _rt(plural="replicationcontrollers", kind="ReplicationController", group="", version="v1",
        short_names=("rc",), subresources=("status", "scale"), scale=_SCALE, singular="replicationcontroller",
        **_WORKLOAD),
    # events.k8s.io, coordination.k8s.io
    _rt(plural="events", kind="Event", group="events.k8s.io", version="v1", namespaced=True,
        short_names=("ev",), fields=_EVENT_FIELDS + ("regarding.kind", "regarding.namespace", "regarding.name",
        "regarding.uid", "deprecatedSource"), create_on_update=True, singular="event",
        aliases={
            "involvedObject.kind": "regarding.kind", "involvedObject.namespace": "regarding.namespace",
            "involvedObject.name": "regarding.name", "involvedObject.uid": "regarding.uid",
            "involvedObject.apiVersion": "regarding.apiVersion",
            "involvedObject.resourceVersion": "regarding.resourceVersion",
            "involvedObject.fieldPath": "regarding.fieldPath", "source": "deprecatedSource.component",
            "deprecatedSource": "deprecatedSource.component",
        }),
    _rt(plural="leases", kind="Lease", group="coordination.k8s.io", version="v1", namespaced=True,
        create_on_update=True, singular="lease"),
    # apps/v1
    _rt(plural="deployments", kind="Deployment", group="apps", version="v1", short_names=("deploy",),
        subresources=("status", "scale"), scale=_SCALE, singular="deployment", **_WORKLOAD),
    _rt(plural="replicasets", kind="ReplicaSet", group="apps", version="v1", short_names=("rs",),
        subresources=("status", "scale"), scale=_SCALE, singular="replicaset", **_WORKLOAD),
    _rt(plural="statefulsets", kind="StatefulSet", group="apps", version="v1", short_names=("sts",),
        subresources=("status", "scale"), scale=_SCALE, singular="statefulset", **_WORKLOAD),
    _rt(plural="daemonsets", kind="DaemonSet", group="apps", version="v1", short_names=("ds",),
        subresources=("status",), singular="daemonset", **_WORKLOAD),
    _rt(plural="controllerrevisions", kind="ControllerRevision", group="apps", version="v1", namespaced=True,
        singular="controllerrevision"),
    # batch/v1: a Job deleted without a propagation policy orphans its pods, as upstream keeps it
    _rt(plural="jobs", kind="Job", group="batch", version="v1", subresources=("status",), singular="job",
        fields=("status.successful",), gc_policy="Orphan", **_WORKLOAD),
    _rt(plural="cronjobs", kind="CronJob", group="batch", version="v1", short_names=("cj",),
        subresources=("status",), singular="cronjob", **_WORKLOAD),
    # policy/v1, scheduling.k8s.io/v1
    _rt(plural="poddisruptionbudgets", kind="PodDisruptionBudget", group="policy", version="v1", namespaced=True,
        short_names=("pdb",), subresources=("status",), status_split=True, generation=True,
        singular="poddisruptionbudget"),
    _rt(plural="priorityclasses", kind="PriorityClass", group="scheduling.k8s.io", version="v1",
        namespaced=False, short_names=("pc",), singular="priorityclass"),
    # storage.k8s.io/v1: plain objects here; their scheduling semantics belong to the volume plugins
    _rt(plural="storageclasses", kind="StorageClass", group="storage.k8s.io", version="v1", namespaced=False,
        short_names=("sc",), singular="storageclass"),
    _rt(plural="csinodes", kind="CSINode", group="storage.k8s.io", version="v1", namespaced=False,
        singular="csinode"),
    _rt(plural="csidrivers", kind="CSIDriver", group="storage.k8s.io", version="v1", namespaced=False,
        singular="csidriver"),
    _rt(plural="csistoragecapacities", kind="CSIStorageCapacity", group="storage.k8s.io", version="v1",
        namespaced=True, singular="csistoragecapacity"),
    # admissionregistration.k8s.io/v1: the admission webhooks writes are sent to (webhooks.py)
    _rt(plural="mutatingwebhookconfigurations", kind="MutatingWebhookConfiguration",
        group="admissionregistration.k8s.io", version="v1", namespaced=False, categories=("api-extensions",),
        generation=True, singular="mutatingwebhookconfiguration"),
    _rt(plural="validatingwebhookconfigurations", kind="ValidatingWebhookConfiguration",
        group="admissionregistration.k8s.io", version="v1", namespaced=False, categories=("api-extensions",),
        generation=True, singular="validatingwebhookconfiguration"),
    # apiextensions.k8s.io/v1
    _rt(plural="customresourcedefinitions", kind="CustomResourceDefinition", group="apiextensions.k8s.io",
        version="v1", namespaced=False, short_names=("crd", "crds"), subresources=("status",),
        categories=("api-extensions",), status_split=True, singular="customresourcedefinition"),
)

_BUILTIN_BY_KEY: Final = {r.key: r for r in BUILTIN}


@dataclass(frozen=True)
class CreateOnly:
    """A resource that is only ever created and answered, never stored: a review."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str


CREATE_ONLY: Final = (
    CreateOnly("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", "tokenreview"),
    CreateOnly("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", "subjectaccessreview"),
)
"""The reviews other servers delegate authentication and authorization with (``reviews.py``)."""


def create_only(group: str, version: str, plural: str) -> CreateOnly | None:
    """The review served at ``/apis/<group>/<version>/<plural>``, if that is one."""
    return next((c for c in CREATE_ONLY if (c.group, c.version, c.plural) == (group, version, plural)), None)


def builtin(key: str) -> ResourceType:
    """A built-in type by store key: ``pods``, ``deployments.apps``, ``leases.coordination.k8s.io``."""
    return _BUILTIN_BY_KEY[key]


class Registry:
    """The served resource types: the built-in ones and those added by CRDs."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self.generation = 0
        """Bumped on every change, so that discovery and OpenAPI documents can be cached per value."""
        for rt in types:
            self.add(rt)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_path.values()))

    def add(self, rt: ResourceType) -> None:
        """Serve ``rt`` (replacing a type at the same group, version and plural)."""
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.api_version, rt.kind)] = rt
        self.generation += 1

    def remove(self, rt: ResourceType) -> None:
        self._by_path.pop((rt.group, rt.version, rt.plural), None)
        if self._by_kind.get((rt.api_version, rt.kind)) is rt:
            del self._by_kind[(rt.api_version, rt.kind)]
        self.generation += 1

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def find(self, name: str) -> ResourceType:
        """A type by plural (``pods``), store key (``leases.coordination.k8s.io``) or short name."""
        for rt in self:
            if name in (rt.key, rt.plural) or name in rt.short_names:
                return rt
        raise KeyError(f"unknown resource {name!r}; served: {', '.join(r.key for r in self)}")

    def group_versions(self) -> dict[str, list[str]]:
        """Named groups (not the core group) and their versions, in the order first served."""
        out: dict[str, list[str]] = {}
        for r in [*self, *CREATE_ONLY]:
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    def serves(self, group: str, version: str) -> bool:
        return any(r.group == group and r.version == version for r in self)

    # ---- discovery documents ---------------------------------------------------------------

    def api_group_list(self) -> dict[str, Any]:
        """``GET /apis``: the named groups and their preferred versions."""
        groups = []
        for name, versions in self.group_versions().items():
            gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            groups.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if versions is None:
            return None
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def resource_list(self, *, group: str, version: str) -> dict[str, Any] | None:
        """``GET /api/v1`` or ``/apis/<g>/<v>``: the resources and subresources with their verbs."""
        items = [r for r in self if r.group == group and r.version == version]
        reviews = [c for c in CREATE_ONLY if c.group == group and c.version == version]
        if not items and not reviews:
            return None
        out: list[dict[str, Any]] = [{"name": c.plural, "singularName": c.singular, "namespaced": False,
                                      "kind": c.kind, "verbs": ["create"]} for c in reviews]
        for r in items:
            entry: dict[str, Any] = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": _ALL_VERBS,
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            out.append(entry)
            for sub in r.subresources:
                out.append(_subresource_entry(r, sub))
        if group == "" and version == "v1":
            out.append({"name": "bindings", "singularName": "binding", "namespaced": True, "kind": "Binding",
                        "verbs": ["create"]})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def _subresource_entry(r: ResourceType, sub: str) -> dict[str, Any]:
    base: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced}
    if sub == "binding":
        return {**base, "kind": "Binding", "verbs": ["create"]}
    if sub == "eviction":
        return {**base, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}
    if sub == "scale":
        return {**base, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
    return {**base, "kind": r.kind, "verbs": ["get", "patch", "update"]}


VERSION_INFO: Final = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-vecsched",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(*, server_address: str) -> dict[str, Any]:
    """``GET /api``: the legacy core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }
