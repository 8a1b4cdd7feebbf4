"""Serving CustomResourceDefinitions: from a stored CRD to a resource clients can use.

kube-apiserver's apiextensions server does three things when a CRD is
written: it validates and defaults the definition, its naming and
establishing controllers accept the names and mark it ``Established``, and
from then on discovery lists the new resource and its endpoints serve it
with the CRD's schema. Deleting the CRD deletes every object of it. The
rules are pure functions in ``crd``; this is the glue that applies them to
the store and the registry, synchronously, so that a client which applies a
CRD and then an object of it (``kubectl apply -f crd.yaml -f pg.yaml``)
finds the resource at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

from . import crd
from .resources import ResourceType, builtin
from .store import Entry, Store

__all__ = ["CustomResources", "CRDS"]

log = logging.getLogger("vecsched.apiserver")

CRDS: Final = builtin("customresourcedefinitions.apiextensions.k8s.io")


class CustomResources:
    """Keeps the registry's custom types in step with the stored CRDs."""

    def __init__(self, *, store: Store) -> None:
        self.store = store
        self._served: dict[str, list[ResourceType]] = {}  # CRD name -> the types registered for it

    def validate(self, obj: dict[str, Any], *, old: dict[str, Any] | None) -> None:
        """Defaults and 422 causes of a definition about to be stored (create, or update of the spec)."""
        crd.validate_definition(obj, old=old)

    def _others(self, name: str) -> list[dict[str, Any]]:
        return [e.obj() for e in self.store.entries(CRDS) if e.name != name]

    def establish(self, entry: Entry) -> Entry:
        """Write the status the naming and establishing controllers would, and serve the CRD's types."""
        obj = entry.obj()
        status = crd.established_status(obj, existing=self._others(entry.name))
        if obj.get("status") != status:
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = str(entry.rv)
            entry = self.store.replace(CRDS, obj)
            obj = entry.obj()
        self._serve(obj)
        return entry

    def _serve(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        for rt in self._served.pop(name, []):
            self.store.registry.remove(rt)
        established = any(c.get("type") == "Established" and c.get("status") == "True"
                          for c in (obj.get("status") or {}).get("conditions") or [])
        if not established:
            return
        types = crd.resource_types(obj)
        for rt in types:
            self.store.registry.add(rt)
        self._served[name] = types

    def remove(self, obj: dict[str, Any]) -> None:
        """The CRD is being deleted: stop serving it, delete its objects, and let waiting CRDs take its names."""
        name = obj["metadata"]["name"]
        types = self._served.pop(name, [])
        for rt in types:
            self.store.registry.remove(rt)
        for key in dict.fromkeys(rt.key for rt in types):
            rt = next(t for t in types if t.key == key)
            dropped = self.store.drop_resource(rt)
            if dropped:
                log.info("deleted %d objects of %s with its CustomResourceDefinition", len(dropped), key)
        for other in self.store.entries(CRDS):
            if other.name != name and name not in self._served:
                if not _accepted(other.obj()):
                    self.establish(other)

    def restore(self, crds: Iterable[dict[str, Any]]) -> None:
        """Serve the CRDs of a saved state before its objects are loaded (they need their types)."""
        for obj in crds:
            self._serve(obj)


def _accepted(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "NamesAccepted" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])
