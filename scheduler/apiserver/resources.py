"""The resource types the embedded API server serves, and their discovery documents.

A client maps a kind to a URL by reading discovery (``/api``, ``/api/v1``,
``/apis``, ``/apis/<group>/<version>``), so the table of resources here is the
single source for routing, RBAC resource names, field-selector support and
the discovery bodies that ``kubectl`` and ``kubernetes_asyncio`` read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ResourceType",
    "RESOURCES",
    "BY_PATH",
    "BY_KIND",
    "api_versions",
    "api_group_list",
    "resource_list",
    "VERSION_INFO",
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


def _rt(**kw: Any) -> ResourceType:
    fields = kw.get("fields", ())
    aliases = kw.pop("aliases", None)
    return ResourceType(field_paths=_paths(fields, aliases), **kw)


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

RESOURCES: Final[tuple[ResourceType, ...]] = (
    _rt(plural="namespaces", kind="Namespace", group="", version="v1", namespaced=False,
        short_names=("ns",), subresources=("status",), fields=("status.phase",), status_split=True,
        singular="namespace"),
    _rt(plural="nodes", kind="Node", group="", version="v1", namespaced=False, short_names=("no",),
        subresources=("status",), fields=("spec.unschedulable",), status_split=True, singular="node"),
    _rt(plural="pods", kind="Pod", group="", version="v1", namespaced=True, short_names=("po",),
        subresources=("status", "binding"), fields=_POD_FIELDS, categories=("all",), status_split=True,
        singular="pod"),
    _rt(plural="events", kind="Event", group="", version="v1", namespaced=True, short_names=("ev",),
        fields=_EVENT_FIELDS, create_on_update=True, singular="event",
        aliases={"source": "source.component"}),
    _rt(plural="configmaps", kind="ConfigMap", group="", version="v1", namespaced=True, short_names=("cm",),
        singular="configmap"),
    _rt(plural="services", kind="Service", group="", version="v1", namespaced=True, short_names=("svc",),
        subresources=("status",), categories=("all",), status_split=True, singular="service"),
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
    # Owners whose selectors feed PodTopologySpread's system default constraints.
    _rt(plural="replicationcontrollers", kind="ReplicationController", group="", version="v1", namespaced=True,
        short_names=("rc",), subresources=("status",), categories=("all",), status_split=True,
        singular="replicationcontroller"),
    _rt(plural="replicasets", kind="ReplicaSet", group="apps", version="v1", namespaced=True, short_names=("rs",),
        subresources=("status",), categories=("all",), status_split=True, singular="replicaset"),
    _rt(plural="statefulsets", kind="StatefulSet", group="apps", version="v1", namespaced=True,
        short_names=("sts",), subresources=("status",), categories=("all",), status_split=True,
        singular="statefulset"),
)

# (group, version, plural) -> type
BY_PATH: Final[dict[tuple[str, str, str], ResourceType]] = {(r.group, r.version, r.plural): r for r in RESOURCES}
# (apiVersion, kind) -> type
BY_KIND: Final[dict[tuple[str, str], ResourceType]] = {(r.api_version, r.kind): r for r in RESOURCES}

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


def _groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def api_group_list() -> dict[str, Any]:
    """``GET /apis``: the named groups and their preferred versions."""
    groups = []
    for name, versions in _groups().items():
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        groups.append({"name": name, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    versions = _groups().get(group)
    if versions is None:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def resource_list(*, group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``/apis/<g>/<v>``: the resources and subresources with their verbs."""
    items = [r for r in RESOURCES if r.group == group and r.version == version]
    if not items:
        return None
    out: list[dict[str, Any]] = []
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
            if sub == "binding":
                out.append({"name": f"{r.plural}/binding", "singularName": "", "namespaced": True,
                            "kind": "Binding", "verbs": ["create"]})
            else:
                out.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
    if group == "" and version == "v1":
        out.append({"name": "bindings", "singularName": "binding", "namespaced": True, "kind": "Binding",
                    "verbs": ["create"]})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}
