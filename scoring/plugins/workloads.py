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

from scoring.objects import PodInfo
from scoring.plugins.pod_selectors import EVERYTHING, Requirement, Selector, SelectorError, parse_selector
from scoring.table import NodeTable

__all__ = ["NAMESPACES_KEY", "WORKLOADS_KEY", "Namespaces", "Workloads"]

NAMESPACES_KEY: Final = "namespaces"
WORKLOADS_KEY: Final = "workloads"

_RS_KINDS: Final = {("apps", "ReplicaSet"), ("apps", "StatefulSet")}
_RC_KIND: Final = ("", "ReplicationController")


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def _str_map(v: Any) -> dict[str, str]:
    return {str(k): str(x) for k, x in v.items()} if isinstance(v, Mapping) else {}


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
        if obj.get("kind") == "Namespace":
            meta = obj.get("metadata") or {}
            self.set(str(meta.get("name") or ""), _str_map(meta.get("labels")))

    def delete(self, obj: Mapping[str, Any] | str) -> None:
        name = obj if isinstance(obj, str) else str((obj.get("metadata") or {}).get("name") or "")
        if self.labels.pop(name, None) is not None:
            self.generation += 1

    def get(self, name: str) -> dict[str, str] | None:
        """upstream's GetNamespaceLabelsSnapshot: None for an unknown namespace."""
        return self.labels.get(name)


@dataclass
class Workloads:
    """Selectors of Services (by namespace) and of ReplicaSets, StatefulSets and
    ReplicationControllers (by namespace and name)."""

    services: dict[str, dict[str, dict[str, str] | None]] = field(default_factory=dict)
    """namespace -> service name -> spec.selector (None: no selector, matches no pod)."""
    controllers: dict[tuple[str, str, str], Selector | None] = field(default_factory=dict)
    """(kind, namespace, name) -> selector of a ReplicaSet/StatefulSet (None: invalid)."""
    replication_controllers: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    generation: int = 0

    @classmethod
    def of(cls, table: NodeTable) -> Workloads:
        ext = table.extensions.get(WORKLOADS_KEY)
        if not isinstance(ext, Workloads):
            ext = table.extensions[WORKLOADS_KEY] = Workloads()
        return ext

    def apply(self, obj: Mapping[str, Any]) -> None:
        kind = obj.get("kind")
        ns, name = _meta(obj)
        spec = obj.get("spec") or {}
        if kind == "Service":
            sel = spec.get("selector")
            self.services.setdefault(ns, {})[name] = None if sel is None else _str_map(sel)
        elif kind in ("ReplicaSet", "StatefulSet"):
            try:
                self.controllers[(kind, ns, name)] = parse_selector(spec.get("selector"), "spec.selector")
            except SelectorError:
                self.controllers[(kind, ns, name)] = None
        elif kind == "ReplicationController":
            self.replication_controllers[(ns, name)] = _str_map(spec.get("selector"))
        else:
            return
        self.generation += 1

    def delete(self, obj: Mapping[str, Any]) -> None:
        kind = obj.get("kind")
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
