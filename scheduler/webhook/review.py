"""``AdmissionReview`` (``admission.k8s.io/v1``) as kube-apiserver sends and reads it.

kube-apiserver POSTs an ``AdmissionReview`` whose ``request`` describes one
operation and reads back the same kind with a ``response``: ``uid`` copied from
the request, ``allowed``, and optionally a ``patch`` (base64 of an RFC 6902
JSON patch, ``patchType: JSONPatch``), a ``status`` (a ``metav1.Status``: why a
request was denied) and ``warnings`` for the client. The field names and
shapes are upstream's ``k8s.io/api/admission/v1`` types.

A body that is not such a review -- not JSON, nested absurdly deep, another
``apiVersion`` or ``kind``, no ``request`` or ``uid``, a field of the wrong
type -- is not a denial but a broken call: ``read_review`` raises
``BadReview`` with one line naming the field, and the server answers 400.

Denials that concern fields use kube-apiserver's field errors
(``k8s.io/apimachinery/pkg/util/validation/field``): ``spec.minMember:
Invalid value: 0: must be greater than or equal to 1``, gathered into a 422
``Invalid`` status with one ``details.causes`` entry per error, as
``apierrors.NewInvalid`` builds it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scoring.safe_input import InputError, clip, loads_json

__all__ = ["API_VERSION", "KIND", "MAX_DEPTH", "BadReview", "AdmissionRequest", "FieldError", "read_review",
           "review_response", "invalid", "required", "not_supported", "invalid_status", "forbidden_status",
           "pointer", "go_value"]

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"
OPERATIONS: Final = ("CREATE", "UPDATE", "DELETE", "CONNECT")
MAX_DEPTH: Final = 200
"""Nesting (objects and arrays) accepted in a review. Real objects are shallow (a Pod's deepest
path, through affinity's matchExpressions, is 13 levels; the review adds 2), while Python's
recursive helpers fail near 1,000; 200 is far above the one and far below the other."""
MAX_WARNING_CHARS: Final = 256
"""Upstream truncates longer warnings (AdmissionResponse.warnings: 'over 256 characters ... may be truncated')."""


class BadReview(ValueError):
    """A request body that is not an ``admission.k8s.io/v1`` AdmissionReview request (answered with 400)."""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """What the webhooks read of ``AdmissionReview.request``."""

    uid: str
    operation: str
    """CREATE, UPDATE, DELETE or CONNECT."""
    group: str
    """``kind.group`` ("" for the core group)."""
    kind: str
    """``kind.kind``: Pod, PodGroup, ConfigMap..."""
    resource: str
    """``resource.resource``: pods, podgroups, configmaps..."""
    sub_resource: str
    name: str
    namespace: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    dry_run: bool


def _type_name(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(v), type(v).__name__)


def _string(m: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str:
    v = m.get(key)
    if v is None or (v == "" and not required):
        if required:
            raise BadReview(f"{path}.{key}: required")
        return ""
    if not isinstance(v, str):
        raise BadReview(f"{path}.{key}: expected a string, got {_type_name(v)}")
    if required and not v:
        raise BadReview(f"{path}.{key}: required")
    return v


def _object(m: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    v = m.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise BadReview(f"{path}.{key}: expected an object, got {_type_name(v)}")
    return v


def read_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview body; ``BadReview`` (one line, naming the field) otherwise."""
    if not body:
        raise BadReview("empty request body: expected an admission.k8s.io/v1 AdmissionReview")
    try:
        # The server bounds the body's size; here, nesting, keys and numbers.
        doc = loads_json(body, max_bytes=None, max_depth=MAX_DEPTH)
    except InputError as e:
        if e.problem.startswith("nested deeper"):
            raise BadReview(f"request body nests deeper than {MAX_DEPTH} levels") from None
        if not e.path:  # a number Python will not convert, a constant JSON does not have
            raise BadReview(f"request body is not valid JSON: {e.problem}") from None
        raise BadReview(f"request body: {e}") from None
    except ValueError as e:  # json.JSONDecodeError and UnicodeDecodeError
        raise BadReview(f"request body is not valid JSON: {clip(str(e))}") from None
    if not isinstance(doc, dict):
        raise BadReview(f"expected an AdmissionReview object, got {_type_name(doc)}")
    if doc.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion: expected {API_VERSION!r}, got {str(doc.get('apiVersion'))[:64]!r}")
    if doc.get("kind") != KIND:
        raise BadReview(f"kind: expected {KIND!r}, got {str(doc.get('kind'))[:64]!r}")
    req = doc.get("request")
    if req is None:
        raise BadReview("request: required")
    if not isinstance(req, dict):
        raise BadReview(f"request: expected an object, got {_type_name(req)}")
    uid = _string(req, "uid", "request", required=True)
    operation = _string(req, "operation", "request", required=True)
    if operation not in OPERATIONS:
        raise BadReview(f"request.operation: expected one of {', '.join(OPERATIONS)}, got {operation[:64]!r}")
    kind = _object(req, "kind", "request")
    if kind is None:
        raise BadReview("request.kind: required")
    resource = _object(req, "resource", "request") or {}
    dry_run = req.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise BadReview(f"request.dryRun: expected a boolean, got {_type_name(dry_run)}")
    return AdmissionRequest(
        uid=uid, operation=operation,
        group=_string(kind, "group", "request.kind"), kind=_string(kind, "kind", "request.kind", required=True),
        resource=_string(resource, "resource", "request.resource"),
        sub_resource=_string(req, "subResource", "request"),
        name=_string(req, "name", "request"), namespace=_string(req, "namespace", "request"),
        object=_object(req, "object", "request"), old_object=_object(req, "oldObject", "request"),
        dry_run=bool(dry_run))


def review_response(uid: str, *, allowed: bool, patch: Sequence[Mapping[str, Any]] = (),
                    status: Mapping[str, Any] | None = None, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The AdmissionReview to answer with; ``patch`` (JSON patch operations) only when allowed."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if allowed and patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(list(patch), separators=(",", ":")).encode()).decode()
    if status is not None and not allowed:
        response["status"] = dict(status)
    if warnings:
        response["warnings"] = [w if len(w) <= MAX_WARNING_CHARS else w[:MAX_WARNING_CHARS - 3] + "..."
                                for w in warnings]
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def pointer(*parts: str) -> str:
    """An RFC 6901 JSON pointer: ``~`` is written ``~0`` and ``/`` is written ``~1`` in each part."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


# ---- field errors --------------------------------------------------------------------------------


def go_value(v: Any) -> str:
    """A bad value as ``field.Error.ErrorBody`` prints it: numbers and booleans plainly, strings
    quoted, null as ``null``, anything else as compact JSON (upstream falls back to Go syntax)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v[:256], ensure_ascii=False)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=str)[:256]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field error: ``str()`` is upstream's ``field.Error.Error()``, ``body`` its ``ErrorBody()``."""

    type: str
    """The cause reason: FieldValueInvalid, FieldValueRequired, FieldValueNotSupported..."""
    field: str
    body: str

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"


def invalid(field: str, value: Any, detail: str) -> FieldError:
    """``field.Invalid``: ``<field>: Invalid value: <value>: <detail>``."""
    return FieldError("FieldValueInvalid", field, f"Invalid value: {go_value(value)}: {detail}")


def required(field: str, detail: str = "") -> FieldError:
    """``field.Required``: ``<field>: Required value[: <detail>]``."""
    return FieldError("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def not_supported(field: str, value: Any, supported: Sequence[str]) -> FieldError:
    """``field.NotSupported``: ``<field>: Unsupported value: "x": supported values: "a", "b"``."""
    detail = ": supported values: " + ", ".join(json.dumps(s) for s in supported) if supported else ""
    return FieldError("FieldValueNotSupported", field, f"Unsupported value: {go_value(value)}{detail}")


def _aggregate(errors: Sequence[FieldError]) -> str:
    """``ErrorList.ToAggregate().Error()``: duplicates dropped, one error bare, several in brackets."""
    messages = list(dict.fromkeys(str(e) for e in errors))
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


def invalid_status(*, kind: str, group: str, name: str, errors: Sequence[FieldError]) -> dict[str, Any]:
    """``apierrors.NewInvalid``'s status: 422, reason Invalid, a cause per error."""
    qualified = f"{kind}.{group}" if group else kind
    return {"status": "Failure", "code": 422, "reason": "Invalid",
            "message": f"{qualified} {json.dumps(name)} is invalid: {_aggregate(errors)}",
            "details": {"name": name, "group": group, "kind": kind,
                        "causes": [{"reason": e.type, "message": e.body, "field": e.field} for e in errors]}}


def forbidden_status(message: str, *, causes: Sequence[FieldError] = ()) -> dict[str, Any]:
    """A 403 Forbidden status (a denial that is about policy, not the object's own fields)."""
    status: dict[str, Any] = {"status": "Failure", "code": 403, "reason": "Forbidden", "message": message}
    if causes:
        status["details"] = {"causes": [{"reason": e.type, "message": e.body, "field": e.field} for e in causes]}
    return status
