"""Cluster objects that pod-level constraints read besides nodes and pods.

Two upstream behaviours depend on objects the NodeTable does not hold:

- InterPodAffinity's ``namespaceSelector`` picks namespaces by their labels, so
  the labels of every Namespace are kept in ``table.extensions["namespaces"]``
  (a ``Namespaces``).
- PodTopologySpread's default constraints (``defaultingType: System`` or a
  ``defaultConstraints`` list) spread a pod that sets no constraints of its own
  among the pods selected by its Services and its owning ReplicaSet,
  StatefulSet or ReplicationController (upstream's ``helper.DefaultSelector``),
  so their selectors are kept in ``table.extensions["workloads"]`` (a
  ``Workloads``).

The interface for whoever owns the cluster state (the scheduler cache, a
snapshot loader, a test): get the object with ``Namespaces.of(table)`` /
``Workloads.of(table)`` (created empty on first use) and feed it Kubernetes
objects as JSON with ``apply(obj)`` on add/update and ``delete(obj)`` on
delete; ``apply`` accepts ``kind`` Namespace for the first and Service,
ReplicaSet, StatefulSet and ReplicationController for the second (others are
ignored, so an informer can pass everything through). Plugins only read.
With nothing fed, no namespace has labels and no pod has a default selector,
which makes default spreading a no-op, as in a cluster without Services.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.objects import ObjectError, PodInfo, _mapping, _ref, _str_map as _labels, _string, checked
from scoring.plugins.pod_selectors import EVERYTHING, Requirement, Selector, SelectorError, parse_selector
from scoring.table import NodeTable

__all__ = ["NAMESPACES_KEY", "WORKLOADS_KEY", "Namespaces", "Workloads"]

NAMESPACES_KEY: Final = "namespaces"
WORKLOADS_KEY: Final = "workloads"

_RS_KINDS: Final = {("apps", "ReplicaSet"), ("apps", "StatefulSet")}
_RC_KIND: Final = ("", "ReplicationController")


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name), read leniently: for deletes, which must never fail."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    ns, name = meta.get("namespace"), meta.get("name")
    return ns if isinstance(ns, str) and ns else "default", name if isinstance(name, str) else ""


def _read(kind: str, obj: Any) -> tuple[str, str, Mapping[str, Any], Mapping[str, Any]]:
    """(namespace, name, metadata, spec) of an object to apply, each field type-checked:
    ``ObjectError`` naming the object and the field otherwise."""
    ref = _ref(kind.lower(), obj)
    if not isinstance(obj, Mapping):
        raise ObjectError(kind.lower(), "(object)", "expected an object")
    checked(ref, obj)
    meta = _mapping(ref, "metadata", obj.get("metadata"))
    spec = _mapping(ref, "spec", obj.get("spec"))
    return (_string(ref, "metadata.namespace", meta.get("namespace"), "default"),
            _string(ref, "metadata.name", meta.get("name")), meta, spec)


@dataclass
class Namespaces:
    """Labels of every Namespace, by name; ``generation`` bumps on each change."""

    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    generation: int = 0

    @classmethod
    def of(cls, table: NodeTable) -> Namespaces:
        ext = table.extensions.get(NAMESPACES_KEY)
        if not isinstance(ext, Namespaces):
            ext = table.extensions[NAMESPACES_KEY] = Namespaces()
        return ext

    def set(self, name: str, labels: Mapping[str, str]) -> None:
        self.labels[name] = dict(labels)
        self.generation += 1

    def apply(self, obj: Mapping[str, Any]) -> None:
        """Record a Namespace's labels (``ObjectError`` for a field of the wrong type)."""
        if isinstance(obj, Mapping) and obj.get("kind") == "Namespace":
            _, name, meta, _ = _read("Namespace", obj)
            self.set(name, _labels(_ref("namespace", obj), "metadata.labels", meta.get("labels")))

    def delete(self, obj: Mapping[str, Any] | str) -> None:
        name = obj if isinstance(obj, str) else _meta(obj)[1]
        if self.labels.pop(name, None) is not None:
            self.generation += 1

    def get(self, name: str) -> dict[str, str] | None:
        """upstream's GetNamespaceLabelsSnapshot: None for an unknown namespace."""
        return self.labels.get(name)


@dataclass
class Workloads:
    """Selectors of Services (by namespace) and of ReplicaSets, StatefulSets and
    ReplicationControllers (by namespace and name)."""

    services: dict[str, dict[str, Mapping[str, str] | None]] = field(default_factory=dict)
    """namespace -> service name -> spec.selector (None: no selector, matches no pod)."""
    controllers: dict[tuple[str, str, str], Selector | None] = field(default_factory=dict)
    """(kind, namespace, name) -> selector of a ReplicaSet/StatefulSet (None: invalid)."""
    replication_controllers: dict[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    generation: int = 0

    @classmethod
    def of(cls, table: NodeTable) -> Workloads:
        ext = table.extensions.get(WORKLOADS_KEY)
        if not isinstance(ext, Workloads):
            ext = table.extensions[WORKLOADS_KEY] = Workloads()
        return ext

    def apply(self, obj: Mapping[str, Any]) -> None:
        """Record a Service's, ReplicaSet's, StatefulSet's or ReplicationController's selector
        (``ObjectError`` for a field of the wrong type); other kinds are ignored."""
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        if kind not in ("Service", "ReplicaSet", "StatefulSet", "ReplicationController"):
            return
        ns, name, _, spec = _read(kind, obj)
        ref = _ref(kind.lower(), obj)
        if kind == "Service":
            sel = spec.get("selector")
            self.services.setdefault(ns, {})[name] = None if sel is None else _labels(ref, "spec.selector", sel)
        elif kind in ("ReplicaSet", "StatefulSet"):
            try:
                self.controllers[(kind, ns, name)] = parse_selector(spec.get("selector"), "spec.selector")
            except SelectorError:
                self.controllers[(kind, ns, name)] = None
        elif kind == "ReplicationController":
            self.replication_controllers[(ns, name)] = _labels(ref, "spec.selector", spec.get("selector"))
        self.generation += 1

    def delete(self, obj: Mapping[str, Any]) -> None:
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        ns, name = _meta(obj)
        if kind == "Service":
            self.services.get(ns, {}).pop(name, None)
        elif kind in ("ReplicaSet", "StatefulSet"):
            self.controllers.pop((kind, ns, name), None)
        elif kind == "ReplicationController":
            self.replication_controllers.pop((ns, name), None)
        self.generation += 1

    def default_selector(self, pod: PodInfo) -> Selector:
        """upstream's helper.DefaultSelector: the merged selectors of the Services that
        select the pod, then its controller's (RC: merged as a label set; RS/SS: its
        requirements added)."""
        label_set: dict[str, str] = {}
        for sel in self.services.get(pod.namespace, {}).values():
            # A nil selector matches nothing; an empty one matches every pod.
            if sel is not None and all(pod.labels.get(k) == v for k, v in sel.items()):
                label_set.update(sel)
        selector = _from_set(label_set)
        owner = _controller(pod)
        if owner is None:
            return selector
        group, kind, name = owner
        if (group, kind) == _RC_KIND:
            rc = self.replication_controllers.get((pod.namespace, name))
            if rc is not None:
                label_set.update(rc)
                selector = _from_set(label_set)
        elif (group, kind) in _RS_KINDS:
            other = self.controllers.get((kind, pod.namespace, name))
            if other is not None and not other.nothing:
                selector = selector.add(*other.requirements)
        return selector


def _from_set(labels: Mapping[str, str]) -> Selector:
    if not labels:
        return EVERYTHING
    return EVERYTHING.add(*(Requirement(k, "In", frozenset((v,))) for k, v in labels.items()))


def _controller(pod: PodInfo) -> tuple[str, str, str] | None:
    """metav1.GetControllerOf: (API group, kind, name) of the ownerReference with
    ``controller: true``; only version v1 of a group is recognised, as upstream's
    GroupVersionKind comparison does."""
    meta = pod.raw.get("metadata") if isinstance(pod.raw, Mapping) else None
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            api_version = str(ref.get("apiVersion") or "")
            group, _, version = api_version.rpartition("/")
            if version != "v1":
                return None
            return group, str(ref.get("kind") or ""), str(ref.get("name") or "")
    return None
