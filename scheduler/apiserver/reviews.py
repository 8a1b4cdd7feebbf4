"""TokenReview and SubjectAccessReview: the embedded API server vouches for users to other servers.

``vecsched run`` serves ``/metrics`` as kube-scheduler does, only to callers
the API server authenticates (``authentication.k8s.io/v1`` TokenReview) and
authorizes (``authorization.k8s.io/v1`` SubjectAccessReview). For tests and
the demo to exercise that path end to end, the embedded server answers both
reviews from what it already has: its tokens (``--token``, ``--token-file``,
the admin token it writes to its kubeconfig) and its RBAC (``Authorizer``).

Neither review is stored: a ``create`` is answered with the request's object
and its ``status`` filled in (201), as kube-apiserver does. Creating one is
itself authorized (``create tokenreviews`` / ``subjectaccessreviews``, which
the ``system:auth-delegator`` ClusterRole grants).

A server in open mode (no tokens and no RBAC: every request is served) has no
users to vouch for. A TokenReview there answers ``authenticated: false`` with
an error saying so -- trusting any token would let every caller through a
server that delegates to this one -- and a SubjectAccessReview answers
allowed, as kube-apiserver's ``AlwaysAllow`` authorization mode does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from . import errors
from .auth import Attributes, Authorizer, User
from .resources import CREATE_ONLY

__all__ = ["OPEN_MODE_ERROR", "review", "openapi_v3_reviews", "openapi_v3_review_group"]

TOKEN_REVIEW: Final = ("authentication.k8s.io", "v1", "tokenreviews", "TokenReview")
SUBJECT_ACCESS_REVIEW: Final = ("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview")
"""(group, version, plural, kind) of the two reviews (``resources.CREATE_ONLY`` serves them)."""
OPEN_MODE_ERROR: Final = ("this API server authenticates no tokens (it runs without --token or --token-file, "
                          "serving every request)")
_MAX_FIELD: Final = 253
"""Longest user, group, path or name quoted back in an error (a DNS subdomain's length)."""


def review(*, authorizer: Authorizer, plural: str, body: Any) -> dict[str, Any]:
    """The answer to a ``create`` of ``plural`` (tokenreviews, subjectaccessreviews) with ``body``.

    Raises the ``ApiError`` kube-apiserver would send for a malformed review (400 or 422).
    """
    kind = TOKEN_REVIEW[3] if plural == TOKEN_REVIEW[2] else SUBJECT_ACCESS_REVIEW[3]
    group = TOKEN_REVIEW[0] if plural == TOKEN_REVIEW[2] else SUBJECT_ACCESS_REVIEW[0]
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of a {kind} must be a JSON object")
    want = f"{group}/v1"
    if body.get("apiVersion") not in (None, want) or body.get("kind") not in (None, kind):
        raise errors.bad_request(f"the body must be a {want} {kind}, got {str(body.get('apiVersion'))[:64]} "
                                 f"{str(body.get('kind'))[:64]}")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise _invalid(kind, [("spec", "Required value")])
    if kind == "TokenReview":
        status = _token_status(authorizer, spec)
    else:
        status = _access_status(authorizer, spec)
    given = body.get("metadata")
    meta: dict[str, Any] = given if isinstance(given, dict) else {}
    return {"kind": kind, "apiVersion": want, "metadata": {**meta, "creationTimestamp": None}, "spec": spec,
            "status": status}


def _invalid(kind: str, causes: list[tuple[str, str]]) -> errors.ApiError:
    """422 Invalid, worded as kube-apiserver words it for a review: the kind qualified by its group."""
    group = TOKEN_REVIEW[0] if kind == TOKEN_REVIEW[3] else SUBJECT_ACCESS_REVIEW[0]
    e = errors.invalid(kind=kind, group=group, name="", causes=causes)
    e.message = e.message.replace(f'{kind} ""', f'{kind}.{group} ""', 1)
    return e


def _token_status(authorizer: Authorizer, spec: Mapping[str, Any]) -> dict[str, Any]:
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        # kube-apiserver's TokenReview REST storage refuses an empty token so.
        raise errors.bad_request("token is required for TokenReview in authentication")
    audiences = spec.get("audiences")
    if audiences is not None and (not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences)):
        raise _invalid("TokenReview", [("spec.audiences", "Invalid value: must be a list of strings")])
    if not authorizer.tokens:
        return {"authenticated": False, "user": {}, "error": OPEN_MODE_ERROR}
    user = authorizer.tokens.get(token)
    if user is None:
        return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
    out: dict[str, Any] = {"authenticated": True,
                           "user": {"username": user.name, "groups": list(user.groups)}}
    if user.uid:
        out["user"]["uid"] = user.uid
    if audiences:
        out["audiences"] = list(audiences)  # its tokens are valid for any audience
    return out


def _strings(spec: Mapping[str, Any], key: str) -> list[str]:
    v = spec.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _invalid("SubjectAccessReview", [(f"spec.{key}", "Invalid value: must be a list of strings")])
    return v


def _field(attrs: Mapping[str, Any], key: str, where: str) -> str:
    v = attrs.get(key, "")
    if not isinstance(v, str):
        raise _invalid("SubjectAccessReview", [(f"{where}.{key}", "Invalid value: must be a string")])
    return v[:_MAX_FIELD * 4]


def _access_status(authorizer: Authorizer, spec: Mapping[str, Any]) -> dict[str, Any]:
    name = spec.get("user") or ""
    if not isinstance(name, str):
        raise _invalid("SubjectAccessReview", [("spec.user", "Invalid value: must be a string")])
    groups = _strings(spec, "groups")
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    # kube-apiserver's ValidateSubjectAccessReviewSpec, in its order and words.
    if (resource is None) == (non_resource is None):
        raise _invalid("SubjectAccessReview", [
            ("spec.resourceAttributes", "Invalid value: \"null\": exactly one of nonResourceAttributes or "
                                        "resourceAttributes must be specified")])
    if not name and not groups:
        raise _invalid("SubjectAccessReview", [
            ("spec.user", 'Invalid value: "": at least one of user or group must be specified')])
    where = "spec.resourceAttributes" if resource is not None else "spec.nonResourceAttributes"
    attrs = resource if resource is not None else non_resource
    if not isinstance(attrs, Mapping):
        raise _invalid("SubjectAccessReview", [(where, "Invalid value: must be an object")])
    if resource is not None:
        a = Attributes(verb=_field(attrs, "verb", where), group=_field(attrs, "group", where),
                       resource=_field(attrs, "resource", where), subresource=_field(attrs, "subresource", where),
                       namespace=_field(attrs, "namespace", where), name=_field(attrs, "name", where))
    else:
        path = _field(attrs, "path", where)
        a = Attributes(verb=_field(attrs, "verb", where), path=path or "/")
    if not authorizer.rbac_enabled:
        return {"allowed": True, "reason": "this API server authorizes every request (no RBAC loaded)"}
    # The review names the user's groups itself (a TokenReview's answer already holds
    # system:authenticated and the service-account groups): none is added here.
    user = User(name=name, groups=tuple(groups), uid=str(spec.get("uid") or ""))
    allowed, reason = authorizer.explain(user, a)
    return {"allowed": allowed, "reason": reason} if reason else {"allowed": allowed}


def openapi_v3_review_group(group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of a review's group-version: its ``post`` operation with the query
    parameters kubectl's validation probe looks for (``openapi.py`` does the same for stored kinds)."""
    items = [c for c in CREATE_ONLY if (c.group, c.version) == (group, version)]
    if not items:
        return None
    paths: dict[str, Any] = {}
    for c in items:
        def op(action: str, c: Any = c) -> dict[str, Any]:
            return {"operationId": f"{action}{c.kind}",
                    "parameters": [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                                   for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")],
                    "responses": {"201": {"description": "Created"}},
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": {"group": c.group, "version": c.version, "kind": c.kind}}
        paths[f"/apis/{group}/{version}/{c.plural}"] = {"post": op("post")}
        # kubectl's validation probe reads only a kind's PATCH operation; without one it falls back
        # to the OpenAPI v2 document, which this server does not publish, and refuses to create.
        # A PATCH of a review is still refused (405): nothing is stored to patch.
        paths[f"/apis/{group}/{version}/{c.plural}/{{name}}"] = {"patch": op("patch")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.30.0-vecsched"}, "paths": paths,
            "components": {"schemas": {}}}


def openapi_v3_reviews() -> dict[str, Any]:
    """The review groups' entries of the ``/openapi/v3`` index."""
    out: dict[str, Any] = {}
    for gv in dict.fromkeys((c.group, c.version) for c in CREATE_ONLY):
        doc = openapi_v3_review_group(*gv)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        path = f"apis/{gv[0]}/{gv[1]}"
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return out
