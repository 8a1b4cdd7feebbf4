"""The verbs of the API (create, update, patch, delete, bind, scale) on top of the store.

HTTP handlers, the controllers and the in-process library API all go through
here, so an object written by a controller or a test helper goes through the
same defaulting, admission and conflict checks as one POSTed by a client.
Each method is one read-check-write on the store, with no ``await`` in
between, so concurrent requests serialise like etcd transactions.

A create or update is prepared (decoded, defaulted, admitted and validated
by the built-in admission) and then committed; ``admitted`` calls the
admission webhooks between the two.

Deletion follows kube-apiserver: a Pod on a node is deleted *gracefully*
(``deletionTimestamp`` and ``deletionGracePeriodSeconds`` are set and the
kubelet removes it when its containers have stopped); an object with
finalizers stays, marked for deletion, until the last finalizer is removed;
``propagationPolicy`` adds the garbage collector's ``orphan`` or
``foregroundDeletion`` finalizer. Everything else disappears at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from . import admission, errors, fieldvalidation, objects
from .customresources import CRDS, CustomResources
from .limits import safe_yaml_load
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import ResourceType, builtin
from .selectors import FieldSelector, LabelSelector, parse_label_selector
from .store import Entry, Store, dumps
from .webhooks import WebhookAdmission

__all__ = ["Operations", "PendingWrite", "WriteOptions", "PATCH_TYPES", "PROPAGATION_POLICIES", "PROTECTED_NAMESPACES"]

NAMESPACES: Final = builtin("namespaces")
PODS: Final = builtin("pods")

PATCH_TYPES: Final = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
PROPAGATION_POLICIES: Final = ("Orphan", "Background", "Foreground")
_GC_FINALIZERS: Final = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}
_DEFAULT_MAX_BYTES: Final = 3 * 1024 * 1024  # kube-apiserver's request body limit
PROTECTED_NAMESPACES: Final = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


@dataclass
class WriteOptions:
    """Per-request options of a write, and what it reports back."""

    dry_run: bool = False
    """``dryRun=All``: run admission and validation, store nothing."""
    field_validation: str = "Ignore"
    """``fieldValidation``: Strict, Warn or Ignore (requests over HTTP default to Warn)."""
    duplicates: list[str] = field(default_factory=list)
    """The request body's repeated JSON keys (errors under Strict, warnings under Warn)."""
    warnings: list[str] = field(default_factory=list)
    """Filled with the warnings the write produced (sent as ``Warning`` headers)."""


@dataclass
class PendingWrite:
    """A create or update that passed the built-in admission and is not stored yet (``Operations.commit``)."""

    rt: ResourceType
    obj: dict[str, Any]
    opts: WriteOptions
    readmit: Callable[[dict[str, Any]], dict[str, Any]]
    """Decodes, defaults and validates the object again after a webhook changed it."""
    verb: str
    """create, update or patch (which options the webhooks are told of)."""
    namespace: str
    name: str
    """The name the request gave (empty for a create by ``generateName``)."""
    subresource: str = ""
    current: Entry | None = None
    """The stored version an update replaces; None for a create."""
    old: dict[str, Any] | None = None


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Operations:
    """Write verbs with kube-apiserver's semantics, over one ``Store``."""

    def __init__(self, *, store: Store) -> None:
        self.store = store
        self.crds = CustomResources(store=store)
        self.webhooks = WebhookAdmission(store=store)

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

    def _check_schema(self, rt: ResourceType, obj: dict[str, Any], opts: WriteOptions, *, verb: str,
                      subresource: str = "") -> None:
        """Unknown and duplicate fields (pruned, reported per ``fieldValidation``), a CRD's schema."""
        schema = rt.schema
        if schema is None and not rt.custom:
            schema = fieldvalidation.schema_for(api_version=rt.api_version, kind=rt.kind)
        if schema is not None:
            opts.warnings.extend(schema.admit(obj, field_validation=opts.field_validation,
                                              duplicates=opts.duplicates, verb=verb, subresource=subresource))

    # ---- create / update / patch ----------------------------------------------------------

    def create(self, rt: ResourceType, body: Any, *, namespace: str, opts: WriteOptions | None = None) -> Entry:
        return self.commit(self.prepare_create(rt, body, namespace=namespace, opts=opts or WriteOptions()))

    def prepare_create(self, rt: ResourceType, body: Any, *, namespace: str, opts: WriteOptions) -> PendingWrite:
        """A create up to its storage: decoded, defaulted, through the built-in admission and validation."""
        obj = objects.decode_object(rt, body)
        self._check_schema(rt, obj, opts, verb="create")
        if rt.namespaced and not namespace:
            namespace = obj["metadata"].get("namespace") or ""
        name = obj["metadata"].get("name") or ""

        def admit(obj: dict[str, Any]) -> dict[str, Any]:
            obj = objects.prepare_create(rt, obj, namespace=namespace)
            self._require_namespace(rt, obj["metadata"].get("namespace", ""))
            admission.admit_create(self.store, rt, obj)
            if rt is CRDS:
                self.crds.validate(obj, old=None)
            if rt.generation:
                obj["metadata"]["generation"] = 1
            return obj

        obj = admit(obj)
        identity = {k: obj["metadata"][k] for k in ("uid", "creationTimestamp")}

        def readmit(obj: dict[str, Any]) -> dict[str, Any]:
            obj = objects.decode_object(rt, obj)
            self._check_schema(rt, obj, WriteOptions(), verb="create")  # a webhook's unknown fields go silently
            obj = admit(obj)
            obj["metadata"].update(identity)  # the object keeps the identity it was first admitted with
            return obj

        return PendingWrite(rt=rt, obj=obj, opts=opts, readmit=readmit, verb="create", namespace=namespace, name=name)

    def commit(self, p: PendingWrite, *, recheck: bool = False) -> Entry:
        """Store a prepared write (nothing under dry run); ``recheck``: a create's namespace may have gone since."""
        rt, obj = p.rt, p.obj
        if recheck and p.current is None:
            self._require_namespace(rt, obj["metadata"].get("namespace", ""))
        if p.current is not None:
            assert p.old is not None
            return self._store_write(rt, obj, old=p.old, current=p.current, subresource=p.subresource, opts=p.opts)
        if p.opts.dry_run:
            meta = obj["metadata"]
            if self.store.find(rt, meta.get("namespace", ""), meta["name"]) is not None:
                raise errors.already_exists(resource=rt.plural, group=rt.group, name=meta["name"])
            return Entry(raw=dumps(obj), obj=obj, rv=self.store.resource_version, rt=rt)
        entry = self.store.create(rt, obj)
        return self.crds.establish(entry) if rt is CRDS else entry

    def update(self, rt: ResourceType, body: Any, *, namespace: str, name: str, subresource: str = "",
               opts: WriteOptions | None = None) -> Entry:
        return self.commit(self.prepare_update(rt, body, namespace=namespace, name=name, subresource=subresource,
                                               opts=opts or WriteOptions()))

    def prepare_update(self, rt: ResourceType, body: Any, *, namespace: str, name: str, subresource: str,
                       opts: WriteOptions) -> PendingWrite:
        """A PUT up to its storage (a create for kinds a PUT may create)."""
        obj = objects.decode_object(rt, body)
        if (obj["metadata"].get("name") or "") != name:
            raise errors.bad_request(
                f"the name of the object ({obj['metadata'].get('name') or ''}) does not match the name on the URL ({name})")
        current = self.store.find(rt, namespace, name)
        if current is None:
            if rt.create_on_update and not subresource:
                return self.prepare_create(rt, obj, namespace=namespace, opts=opts)
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        expect = str(obj["metadata"].get("resourceVersion") or "")
        return self._prepare_change(rt, obj, current=current, expect_rv=expect, namespace=namespace, name=name,
                                    subresource=subresource, opts=opts, verb="update")

    def _prepare_change(self, rt: ResourceType, obj: dict[str, Any], *, current: Entry, expect_rv: str,
                        namespace: str, name: str, subresource: str, opts: WriteOptions, verb: str) -> PendingWrite:
        """An update (PUT, or a patch already applied) of ``current``, through the built-in admission."""
        old = current.obj()

        def admit(obj: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
            obj = objects.prepare_update(rt, obj, old=old, namespace=namespace, name=name, subresource=subresource)
            self._check_schema(rt, obj, opts, verb=verb, subresource=subresource)
            self._admit_write(rt, obj, old=old, current=current, expect_rv=expect_rv, subresource=subresource)
            return obj

        return PendingWrite(rt=rt, obj=admit(obj, opts), opts=opts, verb=verb, namespace=namespace, name=name,
                            subresource=subresource, current=current, old=old,
                            readmit=lambda obj: admit(objects.decode_object(rt, obj), WriteOptions()))

    def _write(self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any], current: Entry, expect_rv: str,
               subresource: str, opts: WriteOptions) -> Entry:
        self._admit_write(rt, obj, old=old, current=current, expect_rv=expect_rv, subresource=subresource)
        return self._store_write(rt, obj, old=old, current=current, subresource=subresource, opts=opts)

    def _admit_write(self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any], current: Entry,
                     expect_rv: str, subresource: str) -> None:
        """The checks and defaults of an update: resourceVersion, server-owned metadata, built-in admission."""
        if expect_rv and expect_rv != str(current.rv):
            raise errors.stale_update(resource=rt.plural, group=rt.group, name=current.name)
        meta, old_meta = obj["metadata"], old["metadata"]
        meta["resourceVersion"] = str(current.rv)
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        admission.admit_update(self.store, rt, obj, old=old, subresource=subresource)
        if rt is CRDS and subresource != "status":
            self.crds.validate(obj, old=old)
        if rt.generation:
            meta["generation"] = _next_generation(rt, obj, old)

    def _store_write(self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any], current: Entry,
                     subresource: str, opts: WriteOptions) -> Entry:
        meta = obj["metadata"]
        if obj == old:
            return current  # a no-op write does not take a new resourceVersion
        if opts.dry_run:
            return Entry(raw=dumps(obj), obj=obj, rv=current.rv, rt=rt)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not meta.get("deletionGracePeriodSeconds"):
            # The last finalizer went: the object goes (kube-apiserver deletes it in the same update).
            final = self.store.replace(rt, obj)
            self._remove(rt, current.namespace, current.name)
            return final
        entry = self.store.replace(rt, obj)
        return self.crds.establish(entry) if rt is CRDS and subresource != "status" else entry

    def _remove(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """Take an object out of the store (a CRD takes its objects and its endpoints with it)."""
        if rt is CRDS:
            current = self.store.find(rt, namespace, name)
            if current is not None:
                self.crds.remove(current.obj())
        return self.store.delete(rt, namespace, name)

    def patch(
        self,
        rt: ResourceType,
        *,
        content_type: str,
        body: bytes,
        namespace: str,
        name: str,
        subresource: str = "",
        opts: WriteOptions | None = None,
        max_bytes: int | None = None,
    ) -> Entry:
        return self.commit(self.prepare_patch(rt, content_type=content_type, body=body, namespace=namespace,
                                                name=name, subresource=subresource, opts=opts or WriteOptions(),
                                                max_bytes=max_bytes))

    def prepare_patch(self, rt: ResourceType, *, content_type: str, body: bytes, namespace: str, name: str,
                      subresource: str, opts: WriteOptions, max_bytes: int | None) -> PendingWrite:
        """A PATCH applied to the stored object, up to its storage (a create for an apply of a missing object)."""
        doc = _decode_patch(content_type, body, opts=opts, max_bytes=max_bytes)
        current = self.store.find(rt, namespace, name)
        if current is None:
            if content_type == "application/apply-patch+yaml" and not subresource:
                obj = objects.decode_object(rt, doc)
                if (obj["metadata"].get("name") or name) != name:
                    raise errors.bad_request(
                        f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})")
                obj["metadata"]["name"] = name
                return self.prepare_create(rt, obj, namespace=namespace, opts=opts)
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        old = current.obj()
        if content_type == "application/json-patch+json":
            patched = json_patch(old, doc, max_bytes=max_bytes)
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
        return self._prepare_change(rt, obj, current=current, expect_rv=expect, namespace=namespace, name=name,
                                    subresource=subresource, opts=opts, verb="patch")

    # ---- delete ------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, *, namespace: str, name: str, uid: str = "", rv: str = "",
               grace: int | None = None, propagation: str | None = None,
               opts: WriteOptions | None = None) -> dict[str, Any]:
        """Delete an object, or start its graceful or finalized deletion; returns its state afterwards."""
        opts = opts or WriteOptions()
        if propagation is not None and propagation not in PROPAGATION_POLICIES:
            raise errors.invalid(kind="DeleteOptions", name="", causes=[(
                "propagationPolicy", f'Unsupported value: "{propagation}": supported values: '
                                     '"Foreground", "Background", "Orphan", "nil"')])
        if rt is NAMESPACES:
            return self._delete_namespace(name=name, uid=uid, rv=rv, opts=opts)
        current = self.store.get(rt, namespace, name)
        _check_preconditions(rt, current, uid=uid, rv=rv)
        obj = current.obj()
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = propagation or rt.gc_policy
        for pol, fin in _GC_FINALIZERS.items():
            if pol == policy:
                if fin not in finalizers:
                    finalizers.append(fin)
            elif fin in finalizers and propagation is not None:
                finalizers.remove(fin)
        seconds = self._grace(rt, obj, grace)
        now = time.time()
        if meta.get("deletionTimestamp"):
            # Deleting again: the grace period may only get shorter, the finalizers follow the new policy.
            left = int(meta.get("deletionGracePeriodSeconds") or 0)
            if seconds < left:
                meta["deletionGracePeriodSeconds"] = seconds
                meta["deletionTimestamp"] = _rfc3339(now + seconds)
            meta["finalizers"] = finalizers
            if not finalizers:
                meta.pop("finalizers")
            if opts.dry_run:
                return obj
            if not finalizers and not meta["deletionGracePeriodSeconds"]:
                return self._remove(rt, namespace, name)
            return self.store.replace(rt, obj).obj() if obj != current.obj() else obj
        if seconds > 0 or finalizers:
            meta["deletionTimestamp"] = _rfc3339(now + seconds)
            meta["deletionGracePeriodSeconds"] = seconds
            if finalizers:
                meta["finalizers"] = finalizers
            if rt.generation:
                meta["generation"] = int(meta.get("generation") or 0) + 1
            if opts.dry_run:
                return obj
            return self.store.replace(rt, obj).obj()
        if opts.dry_run:
            return obj
        return self._remove(rt, namespace, name)

    @staticmethod
    def _grace(rt: ResourceType, obj: dict[str, Any], grace: int | None) -> int:
        """Seconds of graceful termination: Pods running on a node get them; nothing else does."""
        if rt is not PODS:
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0  # nothing runs: kube-apiserver deletes an unscheduled or finished pod at once
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
            grace = 30 if grace is None else int(grace)
        return 1 if grace < 0 else grace  # upstream turns a negative grace period into 1 s

    def _delete_namespace(self, *, name: str, uid: str, rv: str, opts: WriteOptions) -> dict[str, Any]:
        if name in PROTECTED_NAMESPACES:
            raise errors.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                   resource="namespaces", name=name)
        current = self.store.get(NAMESPACES, "", name)
        _check_preconditions(NAMESPACES, current, uid=uid, rv=rv)
        if opts.dry_run:
            return current.obj()
        for other in self.store.registry:
            if other.namespaced:
                for e in list(self.store.entries(other, name)):
                    self.store.delete(other, name, e.name)
        return self.store.delete(NAMESPACES, "", name)

    def delete_collection(
        self, rt: ResourceType, *, namespace: str, labels: LabelSelector, fields: FieldSelector,
        grace: int | None = None, propagation: str | None = None, opts: WriteOptions | None = None,
    ) -> list[dict[str, Any]]:
        found = self.store.list(rt, namespace=namespace, labels=labels, fields=fields)
        out = []
        for e in found.items:
            if rt is NAMESPACES and e.name in PROTECTED_NAMESPACES:
                continue
            out.append(self.delete(rt, namespace=e.namespace, name=e.name, grace=grace, propagation=propagation,
                                   opts=opts))
        return out

    # ---- subresources --------------------------------------------------------------------------

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

    def get_scale(self, rt: ResourceType, *, namespace: str, name: str) -> dict[str, Any]:
        """The ``autoscaling/v1`` Scale of a scalable object."""
        if rt.scale is None:
            raise errors.not_found(resource=f"{rt.plural}/scale", group=rt.group, name=name)
        entry = self.store.get(rt, namespace, name)
        return _scale_of(rt, entry.obj())

    def update_scale(self, rt: ResourceType, *, namespace: str, name: str, body: Any,
                     opts: WriteOptions | None = None) -> dict[str, Any]:
        """Set the replicas of a scalable object from a Scale (PUT, or a patch already applied to one)."""
        if rt.scale is None:
            raise errors.not_found(resource=f"{rt.plural}/scale", group=rt.group, name=name)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request is not a Scale object: expected a JSON object")
        spec = body.get("spec") or {}
        replicas = spec.get("replicas", 0) if isinstance(spec, dict) else None
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(kind="Scale", group="autoscaling", name=name,
                                 causes=[("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")])
        current = self.store.get(rt, namespace, name)
        expect = str((body.get("metadata") or {}).get("resourceVersion") or "")
        obj = current.obj()
        _set_path(obj, rt.scale.spec_replicas, replicas)
        entry = self._write(rt, obj, old=current.obj(), current=current, expect_rv=expect, subresource="scale",
                            opts=opts or WriteOptions())
        return _scale_of(rt, entry.obj())

    def patch_scale(self, rt: ResourceType, *, content_type: str, body: bytes, namespace: str, name: str,
                    opts: WriteOptions | None = None, max_bytes: int | None = None) -> dict[str, Any]:
        opts = opts or WriteOptions()
        patched = self.patched_scale(rt, content_type=content_type, body=body, namespace=namespace, name=name,
                                     opts=opts, max_bytes=max_bytes)
        return self.update_scale(rt, namespace=namespace, name=name, body=patched, opts=opts)

    def patched_scale(self, rt: ResourceType, *, content_type: str, body: bytes, namespace: str, name: str,
                      opts: WriteOptions, max_bytes: int | None) -> Any:
        """The current Scale with a PATCH applied (for ``update_scale``)."""
        scale = self.get_scale(rt, namespace=namespace, name=name)
        doc = _decode_patch(content_type, body, opts=opts, max_bytes=max_bytes)
        if content_type == "application/json-patch+json":
            return json_patch(scale, doc, max_bytes=max_bytes)
        return merge_patch(scale, doc) if isinstance(doc, dict) else None


def _decode_patch(content_type: str, body: bytes, *, opts: WriteOptions, max_bytes: int | None) -> Any:
    """A PATCH body, with its repeated keys noted in ``opts`` (upstream prefixes a JSON patch's)."""
    if content_type not in PATCH_TYPES:
        raise errors.unsupported_media_type(content_type, accepted=PATCH_TYPES)
    try:
        if content_type == "application/apply-patch+yaml":
            return safe_yaml_load(body, max_bytes=max_bytes or _DEFAULT_MAX_BYTES)
        doc, dups = fieldvalidation.loads_checked(body)
    except (ValueError, yaml.YAMLError) as e:
        raise errors.bad_request(f"error decoding patch: {str(e)[:200]}") from None
    prefix = "json patch " if content_type == "application/json-patch+json" else ""
    opts.duplicates.extend(prefix + d for d in dups)
    return doc


def _check_preconditions(rt: ResourceType, current: Entry, *, uid: str, rv: str) -> None:
    if uid and uid != current.uid:
        raise errors.conflict(
            resource=rt.plural, group=rt.group, name=current.name,
            cause=f"Precondition failed: UID in precondition: {uid}, UID in object meta: {current.uid}")
    if rv and rv != str(current.rv):
        raise errors.conflict(
            resource=rt.plural, group=rt.group, name=current.name,
            cause=f"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {current.rv}")


def _next_generation(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> int:
    """``metadata.generation``: +1 when anything but metadata (and status, where split) changed."""
    ignored = {"metadata", "status"} if rt.status_split else {"metadata"}
    gen = int(old["metadata"].get("generation") or 1)
    a = {k: v for k, v in obj.items() if k not in ignored}
    b = {k: v for k, v in old.items() if k not in ignored}
    return gen + 1 if a != b else gen


def _get_path(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def _selector_string(selector: Any) -> str:
    """A LabelSelector as ``metav1.FormatLabelSelector`` prints it (what ``Scale.status.selector`` holds)."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for req in selector.get("matchExpressions") or []:
        op, key, values = req.get("operator"), req.get("key"), sorted(req.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    text = ",".join(parts)
    parse_label_selector(text)  # the string must be one clients can send back
    return text


def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    assert rt.scale is not None
    meta = obj["metadata"]
    if rt.scale.label_selector:
        selector = _get_path(obj, rt.scale.label_selector) or ""
    elif rt.kind == "ReplicationController":
        selector = ",".join(f"{k}={v}" for k, v in sorted(((obj.get("spec") or {}).get("selector") or {}).items()))
    else:
        selector = _selector_string((obj.get("spec") or {}).get("selector"))
    status: dict[str, Any] = {"replicas": int(_get_path(obj, rt.scale.status_replicas) or 0)}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
        "spec": {"replicas": int(_get_path(obj, rt.scale.spec_replicas) or 0)},
        "status": status,
    }
