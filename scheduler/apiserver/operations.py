"""The verbs of the API (create, update, patch, delete, bind) on top of the store.

HTTP handlers and the in-process library API both go through here, so an
object written by a test helper goes through the same defaulting, admission
and conflict checks as one POSTed by a client. Each method is one
read-check-write on the store, with no ``await`` in between, so concurrent
requests serialise like etcd transactions.
"""

from __future__ import annotations

import json
from typing import Any, Final

import yaml

from . import errors, objects
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import BY_PATH, ResourceType
from .selectors import FieldSelector, LabelSelector
from .store import Entry, Store

__all__ = ["Operations", "PATCH_TYPES"]

NAMESPACES: Final = BY_PATH[("", "v1", "namespaces")]
PODS: Final = BY_PATH[("", "v1", "pods")]

PATCH_TYPES: Final = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_PROTECTED_NAMESPACES: Final = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class Operations:
    """Write verbs with kube-apiserver's semantics, over one ``Store``."""

    def __init__(self, *, store: Store) -> None:
        self.store = store

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced:
            if not namespace:
                raise errors.bad_request("an empty namespace may not be set during creation")
            ns = self.store.find(NAMESPACES, "", namespace)
            if ns is None:
                raise errors.not_found(resource="namespaces", name=namespace)
            if b'"deletionTimestamp"' in ns.raw:
                raise errors.forbidden(
                    f'{rt.plural} "{namespace}" is forbidden: unable to create new content in namespace '
                    f"{namespace} because it is being terminated",
                    resource=rt.plural, group=rt.group)

    def create(self, rt: ResourceType, body: Any, *, namespace: str) -> Entry:
        obj = objects.decode_object(rt, body)
        if rt.namespaced and not namespace:
            namespace = obj["metadata"].get("namespace") or ""
        obj = objects.prepare_create(rt, obj, namespace=namespace)
        self._require_namespace(rt, obj["metadata"].get("namespace", ""))
        return self.store.create(rt, obj)

    def update(self, rt: ResourceType, body: Any, *, namespace: str, name: str, subresource: str = "") -> Entry:
        obj = objects.decode_object(rt, body)
        if (obj["metadata"].get("name") or "") != name:
            raise errors.bad_request(
                f"the name of the object ({obj['metadata'].get('name') or ''}) does not match the name on the URL ({name})")
        current = self.store.find(rt, namespace, name)
        if current is None:
            if rt.create_on_update and not subresource:
                obj = objects.prepare_create(rt, obj, namespace=namespace)
                self._require_namespace(rt, namespace)
                return self.store.create(rt, obj)
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        expect = str(obj["metadata"].get("resourceVersion") or "")
        old = current.obj()
        obj = objects.prepare_update(rt, obj, old=old, namespace=namespace, name=name, subresource=subresource)
        return self._write(rt, obj, old=old, current=current, expect_rv=expect)

    def _write(self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any], current: Entry, expect_rv: str) -> Entry:
        if expect_rv and expect_rv != str(current.rv):
            raise errors.stale_update(resource=rt.plural, group=rt.group, name=current.name)
        obj["metadata"]["resourceVersion"] = str(current.rv)
        if obj == old:
            return current  # a no-op write does not take a new resourceVersion
        return self.store.replace(rt, obj)

    def patch(
        self,
        rt: ResourceType,
        *,
        content_type: str,
        body: bytes,
        namespace: str,
        name: str,
        subresource: str = "",
    ) -> Entry:
        if content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type)
        try:
            doc = yaml.safe_load(body) if content_type == "application/apply-patch+yaml" else json.loads(body)
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"error decoding patch: {e}") from e
        current = self.store.find(rt, namespace, name)
        if current is None:
            if content_type == "application/apply-patch+yaml" and not subresource:
                obj = objects.decode_object(rt, doc)
                if (obj["metadata"].get("name") or name) != name:
                    raise errors.bad_request(
                        f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})")
                obj["metadata"]["name"] = name
                return self.create(rt, obj, namespace=namespace)
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        old = current.obj()
        if content_type == "application/json-patch+json":
            patched = json_patch(old, doc)
            expect = str(((patched.get("metadata") or {}) if isinstance(patched, dict) else {}).get("resourceVersion") or "")
            if expect == str(current.rv):
                expect = ""
        else:
            if not isinstance(doc, dict):
                raise errors.bad_request("error decoding patch: the patch must be a JSON object")
            expect = str((doc.get("metadata") or {}).get("resourceVersion") or "") if isinstance(doc.get("metadata"), dict) else ""
            if content_type == "application/merge-patch+json":
                patched = merge_patch(old, doc)
            else:
                patched = strategic_merge_patch(old, doc)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch produced something that is not an object")
        patched_meta = patched.get("metadata")
        if isinstance(patched_meta, dict) and patched_meta.get("name", name) != name:
            raise errors.invalid(kind=rt.kind, group=rt.group, name=name,
                                 causes=[("metadata.name", "Invalid value: field is immutable")])
        obj = objects.decode_object(rt, patched)
        obj["metadata"]["name"] = name
        obj = objects.prepare_update(rt, obj, old=current.obj(), namespace=namespace, name=name, subresource=subresource)
        return self._write(rt, obj, old=old, current=current, expect_rv=expect)

    def delete(self, rt: ResourceType, *, namespace: str, name: str, uid: str = "", rv: str = "") -> dict[str, Any]:
        if rt is NAMESPACES:
            if name in _PROTECTED_NAMESPACES:
                raise errors.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                       resource="namespaces", name=name)
            self.store.get(rt, "", name)
            for other in BY_PATH.values():
                if other.namespaced:
                    for e in list(self.store.entries(other, name)):
                        self.store.delete(other, name, e.name)
        return self.store.delete(rt, namespace, name, uid=uid, rv=rv)

    def delete_collection(
        self, rt: ResourceType, *, namespace: str, labels: LabelSelector, fields: FieldSelector
    ) -> list[dict[str, Any]]:
        found = self.store.list(rt, namespace=namespace, labels=labels, fields=fields)
        out = []
        for e in found.items:
            if rt is NAMESPACES and e.name in _PROTECTED_NAMESPACES:
                continue
            out.append(self.delete(rt, namespace=e.namespace, name=e.name))
        return out

    def bind(self, body: Any, *, namespace: str, name: str | None) -> None:
        """``pods/binding`` (``name`` from the URL) or the legacy ``bindings`` collection (``name=None``)."""
        binding = objects.decode_object(PODS, body, expect_kind="Binding")
        meta = binding["metadata"]
        pod_name = meta.get("name") or ""
        if name is not None and pod_name and pod_name != name:
            raise errors.bad_request("name in URL does not match name in Binding object")
        pod_name = pod_name or (name or "")
        if not pod_name:
            raise errors.invalid(kind="Binding", name="", causes=[("metadata.name", "Required value: name or generateName is required")])
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        target = binding.get("target")
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise errors.invalid(kind="Binding", name=pod_name, causes=[("target.name", "Required value")])
        if isinstance(target, dict) and target.get("kind", "Node") not in ("Node", ""):
            raise errors.invalid(kind="Binding", name=pod_name,
                                 causes=[("target.kind", f'Invalid value: "{target.get("kind")}": must be empty or \'Node\'')])
        uid = meta.get("uid") or ""
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else None
        self.store.update(PODS, namespace, pod_name,
                          lambda pod: objects.bind(pod, node=node, uid=uid, annotations=annotations))
