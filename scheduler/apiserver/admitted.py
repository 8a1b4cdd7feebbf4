"""The write verbs as clients of the API meet them: built-in admission, admission webhooks, storage.

Requests over HTTP, and the pods the workload controllers create, go through
here; the server's other in-process writers call ``Operations`` directly.
While no webhook configuration exists, each verb is the synchronous one and
costs nothing more. Otherwise ``Operations`` prepares the write (decoded,
defaulted, admitted and validated by the built-in admission), the webhooks
see it (``webhooks.WebhookAdmission``), and it is committed. The object may
change while the webhooks are called: an update is then prepared again from
the latest version and sent to the webhooks again, as kube-apiserver's
``GuaranteedUpdate`` retries (a request that named a resourceVersion gets
its 409), and a create checks again that its namespace still exists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

from . import errors
from .auth import User
from .operations import PROPAGATION_POLICIES, PROTECTED_NAMESPACES, Operations, PendingWrite, WriteOptions
from .resources import ResourceType, builtin
from .selectors import FieldSelector, LabelSelector
from .store import Entry
from .webhooks import Attributes

__all__ = ["AdmittedOperations"]

NAMESPACES: Final = builtin("namespaces")
_OPTIONS: Final = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}
# Times an update is prepared again when its object changed while its webhooks were called
# (etcd's GuaranteedUpdate loops until it wins; a bound keeps a hot object from holding a request forever).
_ATTEMPTS: Final = 5


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _options(kind: str, *, dry_run: bool, **fields: Any) -> dict[str, Any]:
    """The request's options as webhooks receive them (``CreateOptions``, ``DeleteOptions``...)."""
    out: dict[str, Any] = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    out.update((k, v) for k, v in fields.items() if v is not None and v != "" and v != {})
    if dry_run:
        out["dryRun"] = ["All"]
    return out


class AdmittedOperations:
    """``Operations``' verbs with the admission webhooks between preparing and storing."""

    def __init__(self, *, ops: Operations) -> None:
        self.ops = ops
        self.webhooks = ops.webhooks

    async def create(self, rt: ResourceType, body: Any, *, namespace: str, opts: WriteOptions | None = None,
                     user: User | None = None) -> Entry:
        opts = opts or WriteOptions()
        p = self.ops.prepare_create(rt, body, namespace=namespace, opts=opts)
        if not self.webhooks.configured():
            return self.ops.commit(p)
        await self._admit(p, user)
        return self.ops.commit(p, recheck=True)

    async def update(self, rt: ResourceType, body: Any, *, namespace: str, name: str, subresource: str = "",
                     opts: WriteOptions | None = None, user: User | None = None) -> Entry:
        opts = opts or WriteOptions()
        if not self.webhooks.configured():
            return self.ops.update(rt, body, namespace=namespace, name=name, subresource=subresource, opts=opts)
        return await self._retrying(lambda: self.ops.prepare_update(
            rt, copy.deepcopy(body), namespace=namespace, name=name, subresource=subresource, opts=opts), opts, user)

    async def patch(self, rt: ResourceType, *, content_type: str, body: bytes, namespace: str, name: str,
                    subresource: str = "", opts: WriteOptions | None = None, max_bytes: int | None = None,
                    user: User | None = None) -> Entry:
        opts = opts or WriteOptions()
        if not self.webhooks.configured():
            return self.ops.patch(rt, content_type=content_type, body=body, namespace=namespace, name=name,
                                  subresource=subresource, opts=opts, max_bytes=max_bytes)
        return await self._retrying(lambda: self.ops.prepare_patch(
            rt, content_type=content_type, body=body, namespace=namespace, name=name, subresource=subresource,
            opts=opts, max_bytes=max_bytes), opts, user)

    async def _retrying(self, prepare: Callable[[], PendingWrite], opts: WriteOptions, user: User | None) -> Entry:
        """Prepare, admit, commit; from the start when the stored object changed meanwhile."""
        warned, repeated = len(opts.warnings), len(opts.duplicates)
        for _ in range(_ATTEMPTS):
            del opts.warnings[warned:], opts.duplicates[repeated:]  # each attempt reports its own
            p = prepare()
            await self._admit(p, user)
            if p.current is None:
                return self.ops.commit(p, recheck=True)
            if self.ops.store.find(p.rt, p.current.namespace, p.current.name) is p.current:
                return self.ops.commit(p)
        raise errors.stale_update(resource=p.rt.plural, group=p.rt.group, name=p.name)

    async def _admit(self, p: PendingWrite, user: User | None) -> None:
        rt, meta = p.rt, p.obj["metadata"]
        if rt.namespaced:
            namespace = meta.get("namespace", "")
        else:  # a Namespace's requests carry its name as their namespace once the URL names it
            namespace = p.name if rt is NAMESPACES and p.current is not None else ""
        a = Attributes(operation="CREATE" if p.current is None else "UPDATE", resource=rt, subresource=p.subresource,
                       namespace=namespace, name=p.name, dry_run=p.opts.dry_run,
                       options=_options(_OPTIONS[p.verb], dry_run=p.opts.dry_run), user=user)
        obj = await self.webhooks.admit(a, obj=p.obj, old=p.old, readmit=p.readmit, warnings=p.opts.warnings)
        if obj is not None:
            p.obj = obj

    async def delete(self, rt: ResourceType, *, namespace: str, name: str, uid: str = "", rv: str = "",
                     grace: int | None = None, propagation: str | None = None, opts: WriteOptions | None = None,
                     user: User | None = None) -> dict[str, Any]:
        opts = opts or WriteOptions()
        # (an unknown propagation policy is the 422 of ``Operations.delete``, before any webhook hears of it)
        if self.webhooks.configured() and (propagation is None or propagation in PROPAGATION_POLICIES):
            current = self.ops.store.get(rt, namespace, name)
            preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", rv)) if v}
            options = _options("DeleteOptions", dry_run=opts.dry_run, gracePeriodSeconds=grace,
                               propagationPolicy=propagation, preconditions=preconditions)
            a = Attributes(operation="DELETE", resource=rt, subresource="",
                           namespace=name if rt is NAMESPACES else namespace, name=name, dry_run=opts.dry_run,
                           options=options, user=user)
            await self.webhooks.admit(a, obj=None, old=current.obj(), readmit=_same, warnings=opts.warnings)
        return self.ops.delete(rt, namespace=namespace, name=name, uid=uid, rv=rv, grace=grace,
                               propagation=propagation, opts=opts)

    async def delete_collection(self, rt: ResourceType, *, namespace: str, labels: LabelSelector,
                                fields: FieldSelector, grace: int | None = None, propagation: str | None = None,
                                opts: WriteOptions | None = None, user: User | None = None) -> list[dict[str, Any]]:
        """Each item's deletion goes through the webhooks; one already gone meanwhile is skipped, as upstream."""
        if not self.webhooks.configured():
            return self.ops.delete_collection(rt, namespace=namespace, labels=labels, fields=fields, grace=grace,
                                              propagation=propagation, opts=opts)
        out = []
        for e in self.ops.store.list(rt, namespace=namespace, labels=labels, fields=fields).items:
            if rt is NAMESPACES and e.name in PROTECTED_NAMESPACES:
                continue
            try:
                out.append(await self.delete(rt, namespace=e.namespace, name=e.name, grace=grace,
                                             propagation=propagation, opts=opts, user=user))
            except errors.ApiError as err:
                if err.code != 404:
                    raise
        return out

    async def update_scale(self, rt: ResourceType, *, namespace: str, name: str, body: Any,
                           opts: WriteOptions | None = None, user: User | None = None) -> dict[str, Any]:
        opts = opts or WriteOptions()
        body = await self._admit_scale(rt, body, namespace=namespace, name=name, opts=opts, user=user, verb="update")
        return self.ops.update_scale(rt, namespace=namespace, name=name, body=body, opts=opts)

    async def patch_scale(self, rt: ResourceType, *, content_type: str, body: bytes, namespace: str, name: str,
                          opts: WriteOptions | None = None, max_bytes: int | None = None,
                          user: User | None = None) -> dict[str, Any]:
        opts = opts or WriteOptions()
        scale = self.ops.patched_scale(rt, content_type=content_type, body=body, namespace=namespace, name=name,
                                       opts=opts, max_bytes=max_bytes)
        scale = await self._admit_scale(rt, scale, namespace=namespace, name=name, opts=opts, user=user, verb="patch")
        return self.ops.update_scale(rt, namespace=namespace, name=name, body=scale, opts=opts)

    async def _admit_scale(self, rt: ResourceType, scale: Any, *, namespace: str, name: str, opts: WriteOptions,
                           user: User | None, verb: str) -> Any:
        """The new ``autoscaling/v1`` Scale through the webhooks (an UPDATE of ``<resource>/scale``)."""
        if not self.webhooks.configured() or not isinstance(scale, dict) or rt.scale is None:
            return scale
        old = self.ops.get_scale(rt, namespace=namespace, name=name)
        a = Attributes(operation="UPDATE", resource=rt, subresource="scale", namespace=namespace, name=name,
                       kind=("autoscaling", "v1", "Scale"), dry_run=opts.dry_run,
                       options=_options(_OPTIONS[verb], dry_run=opts.dry_run), user=user)
        return await self.webhooks.admit(a, obj=scale, old=old, readmit=_same, warnings=opts.warnings)

    async def admit_create(self, rt: ResourceType, body: Any, *, kind: tuple[str, str, str], namespace: str,
                           name: str, subresource: str, opts: WriteOptions, user: User | None = None) -> Any:
        """The body of a create on a subresource that is another kind (a Binding, an Eviction), after the webhooks."""
        if not self.webhooks.configured() or not isinstance(body, dict):
            return body
        meta = body.get("metadata")
        name = name or str((meta.get("name") if isinstance(meta, dict) else "") or "")
        a = Attributes(operation="CREATE", resource=rt, subresource=subresource, namespace=namespace, name=name,
                       kind=kind, dry_run=opts.dry_run, options=_options("CreateOptions", dry_run=opts.dry_run),
                       user=user)
        return await self.webhooks.admit(a, obj=body, old=None, readmit=_same, warnings=opts.warnings)
