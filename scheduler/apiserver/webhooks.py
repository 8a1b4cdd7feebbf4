"""Admission webhooks: writes are sent to the configured HTTPS endpoints before they are stored.

Operators route namespaces to a second scheduler, and operators of batch
systems validate their objects, with admission webhooks; testing such a
webhook needs a server that calls it exactly as kube-apiserver does. For a
write of any resource or subresource (create, update, patch, delete, and
the create of a Binding, Eviction or Scale), after the built-in admission
and defaulting of ``operations``:

1. mutating webhooks run one after the other, configurations in name order
   and webhooks in their order, each on the object as the previous ones left
   it (a webhook whose selectors match only after an earlier patch is
   called). A JSONPatch response is applied; an object that changed is then
   decoded, defaulted and validated again (``readmit``: the in-tree
   plugins' turn when upstream reinvokes its chain). A webhook with
   ``reinvocationPolicy: IfNeeded`` is called once more, after that, when a
   later webhook or the built-in admission changed the object after it ran;
2. validating webhooks are called in parallel with the final object; the
   first refusal in webhook order is the answer.

Requests are ``admission.k8s.io/v1`` AdmissionReviews (``v1beta1`` for a
webhook that lists it first) with upstream's fields; responses are checked
as upstream checks them (uid, kind, patch and patchType). A refusal is the
webhook's status as upstream's ``ToStatusErr`` makes it (``pods "p" is
forbidden: admission webhook "x" denied the request: ...``, code 403 unless the
webhook gave another error code); ``warnings`` reach the
client as ``Warning: 299`` headers, also on a refusal. A call that fails
(refused connection, TLS verification against ``caBundle``, timeout after
``timeoutSeconds``, a malformed response) follows ``failurePolicy``: Ignore
admits as if the webhook were absent, Fail answers 500 ``failed calling
webhook "x": failed to call webhook: ...``. A dry-run request is refused with
400 by a webhook whose ``sideEffects`` are not None or NoneOnDryRun. Writes
of the webhook configurations themselves never go through webhooks.

Writes over HTTP go through webhooks, and so do the pods the workload
controllers create (ReplicaSet, Job, StatefulSet, DaemonSet), as user
``system:kube-controller-manager``. The other in-process writes -- status
updates of controllers and simulated kubelets, the garbage collector's,
Events, and the synchronous library API (``ApiServer.create``) -- are
admitted by the built-in admission only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import logging
import os
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from . import errors
from .auth import User
from .errors import ApiError
from .limits import loads_json
from .patch import json_patch
from .store import Store, dumps
from .webhookconfig import MUTATING, NAMESPACES, VALIDATING, Attributes, Hook, parse_hooks

__all__ = ["WebhookAdmission", "Attributes"]

log = logging.getLogger("vecsched.apiserver")

# A response larger than this is a failed call: a patch for the largest object the server stores
# (3 MiB), base64-encoded, with room to spare.
_MAX_RESPONSE: Final = 8 * 1024 * 1024
_MAX_OBJECT: Final = 3 * 1024 * 1024  # a patched object may not grow past the request body limit
_NO_SIDE_EFFECTS: Final = ("None", "NoneOnDryRun")
_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json, */*"}
_UNKNOWN_AUTHORITY: Final = ("unable to get local issuer certificate", "self-signed certificate",
                             "self signed certificate", "self-signed certificate in certificate chain",
                             "self signed certificate in certificate chain")
# Who a request came from on a server without authentication (kube-apiserver's insecure port user).
_UNSECURED: Final = {"username": "system:unsecured", "groups": ["system:masters", "system:authenticated"]}


class _CallError(Exception):
    """A webhook that could not be called or answered nonsense (``failurePolicy`` decides)."""


@dataclass(frozen=True)
class _Response:
    allowed: bool
    status: dict[str, Any] | None
    patch: str
    patch_type: str
    warnings: list[str]


class WebhookAdmission:
    """Calls the stored webhook configurations' webhooks for the writes they select."""

    def __init__(self, *, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[tuple[tuple[str, int], ...], list[Hook]]] = {}
        self._contexts: dict[bytes, ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None

    def configured(self) -> bool:
        """Whether any webhook configuration exists (when none does, writes skip this module)."""
        return bool(self.store.count(MUTATING) or self.store.count(VALIDATING))

    async def admit(self, a: Attributes, *, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                    readmit: Callable[[dict[str, Any]], dict[str, Any]], warnings: list[str]) -> dict[str, Any] | None:
        """Mutating webhooks, ``readmit`` of a changed object, then validating webhooks; the final object.

        Raises the refusal (``ApiError``), with the warnings gathered so far as its ``Warning`` header.
        """
        if a.resource is MUTATING or a.resource is VALIDATING or not self.configured():
            return obj
        try:
            obj = await self._mutate(a, obj, old, readmit, warnings)
            await self._validate(a, obj, old, warnings)
        except ApiError as e:
            if warnings:
                e.headers["Warning"] = ", ".join(errors.warning_value(w) for w in warnings)
            raise
        return obj

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- which webhooks ------------------------------------------------------------------------

    def _hooks(self, kind: Any) -> list[Hook]:
        """The webhooks of every configuration of ``kind``, configurations in name order (cached per version)."""
        entries = sorted(self.store.entries(kind), key=lambda e: e.name)
        key = tuple((e.name, e.rv) for e in entries)
        cached = self._cache.get(kind.key)
        if cached is not None and cached[0] == key:
            return cached[1]
        hooks: list[Hook] = []
        for e in entries:
            try:
                hooks.extend(parse_hooks(kind, e.obj()))
            except (KeyError, TypeError, ValueError, AttributeError) as ex:  # only a hand-edited state file gets here
                log.error("%s %s is malformed and is not called: %s", kind.kind, e.name, ex)
        self._cache[kind.key] = (key, hooks)
        return hooks

    def _selects(self, h: Hook, a: Attributes, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> bool:
        def namespace_labels() -> Mapping[str, str]:
            if a.resource is NAMESPACES and not a.subresource and a.operation in ("CREATE", "UPDATE") and obj:
                labels = (obj.get("metadata") or {}).get("labels")
                return labels if isinstance(labels, dict) else {}
            ns = self.store.find(NAMESPACES, "", a.namespace)
            if ns is None:
                raise errors.not_found(resource="namespaces", name=a.namespace)
            return ns.labels

        return h.selects(a, obj=obj, old=old, namespace_labels=namespace_labels)

    # ---- mutating and validating -----------------------------------------------------------------

    async def _mutate(self, a: Attributes, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                      readmit: Callable[[dict[str, Any]], dict[str, Any]], warnings: list[str]) -> dict[str, Any] | None:
        hooks = self._hooks(MUTATING)
        invoked: set[tuple[str, str]] = set()  # IfNeeded webhooks called since the last change
        again: set[tuple[str, str]] = set()  # ... and those a later change requires calling again
        changed = False
        for h in hooks:
            if not self._selects(h, a, obj, old):
                continue
            patched = await self._call_mutating(h, a, obj, old, warnings)
            if patched is not None and patched != obj:
                obj, changed = patched, True
                again |= invoked
                invoked = set()
            if h.reinvoke:
                invoked.add((h.configuration, h.name))
        if not changed or obj is None:
            return obj
        before = _spec_of(obj)
        obj = readmit(obj)
        if _spec_of(obj) != before:  # the built-in admission changed it after the webhooks: theirs to see
            again |= invoked
        if not again:
            return obj
        changed = False
        for h in hooks:  # one reinvocation round, of the IfNeeded webhooks a later change concerned
            if (h.configuration, h.name) in again and self._selects(h, a, obj, old):
                patched = await self._call_mutating(h, a, obj, old, warnings)
                if patched is not None and patched != obj:
                    obj, changed = patched, True
        return readmit(obj) if changed else obj

    async def _call_mutating(self, h: Hook, a: Attributes, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                             warnings: list[str]) -> dict[str, Any] | None:
        """The patched object, or None when the webhook patched nothing (or failed open)."""
        try:
            resp = await self._call(h, a, obj, old)
            warnings.extend(resp.warnings)
            if not resp.allowed:
                raise _denied(h, a, resp.status)
            if not resp.patch:
                return None
            try:
                ops = loads_json(base64.b64decode(resp.patch, validate=True))
            except (binascii.Error, ValueError, ApiError) as e:
                raise _CallError(f"received undecodable patch in webhook response: {_text(e)}") from None
            if not isinstance(ops, list):
                raise _CallError("received undecodable patch in webhook response: a JSON patch is a JSON array")
            if resp.patch_type != "JSONPatch":
                raise _CallError(f'unsupported patch type "{resp.patch_type}"')
        except _CallError as e:
            return self._failed(h, e)
        if not ops:
            return None
        if obj is None:
            raise errors.internal_error(f'admission webhook "{h.name}" attempted to modify the object, which is not '
                                        "supported for this operation")
        try:
            patched = json_patch(obj, ops, max_bytes=_MAX_OBJECT)
        except ApiError as e:  # upstream answers a patch that does not apply with a 500, whatever the policy
            raise errors.internal_error(e.message) from None
        if not isinstance(patched, dict):
            raise errors.internal_error(f'admission webhook "{h.name}" patched the object into something that is not '
                                        "an object")
        return patched

    async def _validate(self, a: Attributes, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                        warnings: list[str]) -> None:
        hooks = [h for h in self._hooks(VALIDATING) if self._selects(h, a, obj, old)]
        if not hooks:
            return
        refusals = await asyncio.gather(*(self._call_validating(h, a, obj, old, warnings) for h in hooks))
        for refusal in refusals:
            if refusal is not None:
                raise refusal

    async def _call_validating(self, h: Hook, a: Attributes, obj: dict[str, Any] | None, old: dict[str, Any] | None,
                               warnings: list[str]) -> ApiError | None:
        try:
            resp = await self._call(h, a, obj, old)
        except _CallError as e:
            try:
                self._failed(h, e)
            except ApiError as refusal:
                return refusal
            return None
        except ApiError as e:
            return e
        warnings.extend(resp.warnings)
        return None if resp.allowed else _denied(h, a, resp.status)

    @staticmethod
    def _failed(h: Hook, e: _CallError) -> None:
        """``failurePolicy``: Ignore logs and admits; Fail answers 500."""
        if h.failure_policy == "Ignore":
            log.warning("failed calling webhook %s, failing open: %s", h.name, e)
            return None
        raise errors.internal_error(f'failed calling webhook "{h.name}": {e}')

    # ---- one call --------------------------------------------------------------------------------

    async def _call(self, h: Hook, a: Attributes, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> _Response:
        if a.dry_run and h.side_effects not in _NO_SIDE_EFFECTS:
            if not h.side_effects:
                raise _CallError("Webhook SideEffects is nil")
            raise errors.bad_request(f'admission webhook "{h.name}" does not support dry run')
        uid = str(uuid.uuid4())
        # upstream tells the webhook its deadline, in whole seconds rounded up
        url = f"{h.url}?timeout={int(-(-h.timeout // 1))}s"
        data = await self._post(h, url, _review(h, a, uid, obj, old))
        return _verify(h, uid, data)

    async def _post(self, h: Hook, url: str, body: bytes) -> bytes:
        tls = self._tls(h)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        where = f'Post "{url}"'
        try:
            async with self._session.post(url, data=body, headers=_HEADERS, ssl=tls, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=h.timeout)) as resp:
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > _MAX_RESPONSE:
                        raise _CallError(f"failed to call webhook: {where}: the response is larger than "
                                         f"{_MAX_RESPONSE} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
                status = resp.status
        except TimeoutError:
            raise _CallError(f"failed to call webhook: {where}: context deadline exceeded") from None
        except aiohttp.ClientConnectorCertificateError as e:
            cause = e.certificate_error
            why = getattr(cause, "verify_message", "") or str(cause)
            if why in _UNKNOWN_AUTHORITY:
                why = "certificate signed by unknown authority"
            raise _CallError(f"failed to call webhook: {where}: tls: failed to verify certificate: x509: {why}") from None
        except aiohttp.ClientConnectorError as e:
            errno = e.os_error.errno
            why = os.strerror(errno).lower() if errno else str(e.os_error)
            raise _CallError(f"failed to call webhook: {where}: dial tcp {e.host}:{e.port}: connect: {why}") from None
        except aiohttp.ClientError as e:
            raise _CallError(f"failed to call webhook: {where}: {_text(e)}") from None
        if not 200 <= status < 300:
            raise _CallError(f"failed to call webhook: {_http_error(status, data)}")
        return data

    def _tls(self, h: Hook) -> ssl.SSLContext:
        """A client context trusting ``caBundle`` only (the system's roots when it is empty), cached per bundle."""
        ctx = self._contexts.get(h.ca_bundle)
        if ctx is None:
            try:
                ctx = (ssl.create_default_context(cadata=h.ca_bundle.decode("ascii")) if h.ca_bundle
                       else ssl.create_default_context())
            except (ssl.SSLError, ValueError):
                raise _CallError("could not get REST client: unable to load root certificates: unable to parse "
                                 "bytes as PEM block") from None
            if len(self._contexts) >= 64:  # bundles of deleted configurations: start over rather than grow
                self._contexts.clear()
            self._contexts[h.ca_bundle] = ctx
        return ctx


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of what admission may change: all but ``status`` (which only the server's own preparation resets)."""
    return copy.deepcopy({k: v for k, v in obj.items() if k != "status"})


def _user_info(user: User | None) -> dict[str, Any]:
    if user is None:
        return dict(_UNSECURED)
    return {"username": user.name, "groups": list(user.groups)}


def _review(h: Hook, a: Attributes, uid: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> bytes:
    """The AdmissionReview request, with the fields ``CreateV1AdmissionReview`` fills."""
    group, version, kind = a.gvk
    rt = a.resource
    req: dict[str, Any] = {"uid": uid, "kind": {"group": group, "version": version, "kind": kind},
                           "resource": {"group": rt.group, "version": rt.version, "resource": rt.plural}}
    if a.subresource:
        req["subResource"] = a.subresource
    req["requestKind"], req["requestResource"] = req["kind"], req["resource"]
    if a.subresource:
        req["requestSubResource"] = a.subresource
    if a.name:
        req["name"] = a.name
    if a.namespace:
        req["namespace"] = a.namespace
    req.update(operation=a.operation, userInfo=_user_info(a.user), object=obj, oldObject=old, dryRun=a.dry_run,
               options=a.options)
    return dumps({"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{h.review_version}", "request": req})


def _verify(h: Hook, uid: str, data: bytes) -> _Response:
    """``VerifyAdmissionResponse``: the response's uid, kind and patch fields, as upstream checks them."""
    try:
        review = loads_json(data)
    except (ValueError, ApiError) as e:
        raise _CallError(f"failed to call webhook: couldn't get version/kind; json parse error: {_text(e)}") from None
    resp = review.get("response") if isinstance(review, dict) else None
    if not isinstance(resp, dict):
        raise _CallError("received invalid webhook response: webhook response was absent")
    assert isinstance(review, dict)
    v1 = h.review_version == "v1"
    if v1 and resp.get("uid") != uid:
        raise _CallError(f'received invalid webhook response: expected response.uid="{uid}", '
                         f'got "{str(resp.get("uid") or "")[:64]}"')
    api, kind = str(review.get("apiVersion") or ""), str(review.get("kind") or "")
    if v1 and (api, kind) != ("admission.k8s.io/v1", "AdmissionReview"):
        group_version = api if "/" in api else "/" + api
        raise _CallError("received invalid webhook response: expected webhook response of admission.k8s.io/v1, "
                         f"Kind=AdmissionReview, got {group_version[:64]}, Kind={kind[:64]}")
    allowed = resp.get("allowed", False)
    patch, patch_type = resp.get("patch") or "", resp.get("patchType")
    warnings = resp.get("warnings") or []
    if (not isinstance(allowed, bool) or not isinstance(patch, str) or not isinstance(patch_type, (str, type(None)))
            or not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings)):
        raise _CallError("failed to call webhook: the AdmissionReview response has fields of the wrong type "
                         "(allowed: bool, patch and patchType: strings, warnings: list of strings)")
    if h.mutating:
        if v1 and patch and patch_type is None:
            raise _CallError("received invalid webhook response: webhook returned response.patch but not "
                             "response.patchType")
        if v1 and not patch and patch_type is not None:
            raise _CallError("received invalid webhook response: webhook returned response.patchType but not "
                             "response.patch")
        if v1 and patch_type == "":
            raise _CallError('received invalid webhook response: webhook returned invalid response.patchType of ""')
        if not v1:
            patch_type = "JSONPatch" if patch else None  # v1beta1 never checked it: the only patch type there is
    elif patch:
        raise _CallError("received invalid webhook response: validating webhook may not return response.patch")
    elif patch_type is not None:
        raise _CallError("received invalid webhook response: validating webhook may not return response.patchType")
    status = resp.get("status")
    return _Response(allowed=allowed, status=status if isinstance(status, dict) else None, patch=patch,
                     patch_type=patch_type or "", warnings=warnings)


def _denied(h: Hook, a: Attributes, status: dict[str, Any] | None) -> ApiError:
    """Upstream's ``ToStatusErr``: the webhook's status (code 403 Forbidden unless it gave another
    error code), its message prefixed with what was refused and who refused it --
    ``pods "web-1" is forbidden: admission webhook "x" denied the request: ...``."""
    st = status or {}
    code = st.get("code")
    if isinstance(code, bool) or not isinstance(code, int) or code == 0:
        code = 403
    elif not 400 <= code <= 599:
        code = 400  # a refusal is never a success, and its code must be one HTTP can carry
    message, reason = str(st.get("message") or ""), str(st.get("reason") or "")
    by = f'admission webhook "{h.name}" denied the request'
    text = f"{by}: {message}" if message else f"{by}: {reason}" if reason else f"{by} without explanation"
    rt = a.resource
    name = a.name or "Unknown"
    details = st.get("details")
    if not isinstance(details, dict):
        details = ({"causes": [{"message": text}]} if code == 500 else
                   {"group": rt.group, "kind": rt.plural, "name": name})
    prefix = "Internal error occurred" if code == 500 else \
        f'{rt.plural}{"." + rt.group if rt.group else ""} "{name}" is forbidden'
    if not reason:
        reason = "InternalError" if code == 500 else "Forbidden"
    return ApiError(code=code, reason=reason, message=f"{prefix}: {text}", details=details)


def _http_error(status: int, data: bytes) -> str:
    """What client-go says of a webhook's non-2xx answer: a Status body's message, else the body."""
    try:
        body = loads_json(data)
    except (ValueError, ApiError):
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
        return str(body["message"])[:1024]
    if not data.strip():
        return f"the server responded with the status code {status} but did not return more information"
    text = data.decode("utf-8", "replace").strip()[:256]
    return f'an error on the server ("{text}") has prevented the request from succeeding'


def _text(e: BaseException) -> str:
    return (e.message if isinstance(e, ApiError) else str(e))[:256]
