"""Errors of the embedded API server, rendered as Kubernetes ``Status`` bodies.

Real clients (``kubernetes_asyncio``, ``kubectl``) read a failed call's reason
and message from a ``metav1.Status`` body, and retry logic branches on the
``reason`` and ``code``. Every failure the server answers is therefore built
here, in one place, with kube-apiserver's wording, so that a message seen in
a test is the message an operator would see from a real cluster.

Exception tree::

    ApiError                 any failure answered as a Status body
     (reason, code and message chosen by the constructors below)
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "ApiError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "not_acceptable",
    "not_found",
    "stale_update",
    "status_body",
    "success_status",
    "too_large",
    "too_large_resource_version",
    "too_many_requests",
    "unauthorized",
    "unsupported_media_type",
    "warning_value",
]


class ApiError(Exception):
    """A request failure answered with a ``Status`` body and an HTTP code."""

    def __init__(
        self,
        *,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object the real server would send for this failure."""
        return status_body(code=self.code, reason=self.reason, message=self.message, details=self.details)

    def body(self) -> bytes:
        return json.dumps(self.status(), separators=(",", ":")).encode()


def status_body(
    *, code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if not reason:  # some failures (a 500 from a registry) carry no reason, as upstream leaves it out
        del body["reason"]
    if details is not None:
        body["details"] = details
    return body


def success_status(*, code: int = 200, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"status": "Success"}`` as the binding subresource and some deletes answer."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details is not None:
        body["details"] = details
    return body


def _details(*, name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        d["group"] = group
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(*, resource: str, group: str = "", name: str) -> ApiError:
    return ApiError(
        code=404,
        reason="NotFound",
        message=f'{_qualified(resource, group)} "{name}" not found',
        details=_details(name=name, group=group, kind=resource),
    )


def already_exists(*, resource: str, group: str = "", name: str) -> ApiError:
    return ApiError(
        code=409,
        reason="AlreadyExists",
        message=f'{_qualified(resource, group)} "{name}" already exists',
        details=_details(name=name, group=group, kind=resource),
    )


def conflict(*, resource: str, group: str = "", name: str, cause: str) -> ApiError:
    return ApiError(
        code=409,
        reason="Conflict",
        message=f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {cause}',
        details=_details(name=name, group=group, kind=resource),
    )


def stale_update(*, resource: str, group: str = "", name: str) -> ApiError:
    """The optimistic-concurrency failure of a PUT or PATCH with an old resourceVersion."""
    return conflict(
        resource=resource,
        group=group,
        name=name,
        cause="the object has been modified; please apply your changes to the latest version and try again",
    )


def invalid(*, kind: str, group: str = "", name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are (field, message) pairs, as field validation reports them."""
    text = ", ".join(f"{field}: {msg}" for field, msg in causes)
    return ApiError(
        code=422,
        reason="Invalid",
        message=f'{kind} "{name}" is invalid: {text}',
        details={
            **_details(name=name, group=group, kind=kind),
            "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": field} for field, msg in causes],
        },
    )


def bad_request(message: str) -> ApiError:
    return ApiError(code=400, reason="BadRequest", message=message)


def expired(message: str) -> ApiError:
    """410 Gone: a watch or continue token older than the retained history."""
    return ApiError(code=410, reason="Expired", message=message)


def forbidden(message: str, *, resource: str = "", group: str = "", name: str = "") -> ApiError:
    details = _details(name=name, group=group, kind=resource) if resource else None
    return ApiError(code=403, reason="Forbidden", message=message, details=details)


def unauthorized() -> ApiError:
    return ApiError(code=401, reason="Unauthorized", message="Unauthorized")


def method_not_allowed() -> ApiError:
    return ApiError(code=405, reason="MethodNotAllowed", message="the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str, *, accepted: tuple[str, ...] = ("application/json", "application/yaml")) -> ApiError:
    """415: a request body in a format the server does not read; ``accepted`` lists what it does."""
    return ApiError(code=415, reason="UnsupportedMediaType",
                    message=f"the body of the request was in an unknown format - accepted media types include: "
                            f'{", ".join(accepted)}; got "{content_type[:100]}"')


def not_acceptable(accepted: tuple[str, ...]) -> ApiError:
    """406: no media type of the request's ``Accept`` header is one the server answers in."""
    return ApiError(code=406, reason="NotAcceptable",
                    message=f"only the following media types are accepted: {', '.join(accepted)}")


def too_large_resource_version(requested: int, current: int) -> ApiError:
    """504 of a watch or list from a resourceVersion the server has not reached (as the watch cache answers)."""
    return ApiError(code=504, reason="Timeout",
                    message=f"Too large resource version: {requested}, current: {current}",
                    details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                             "retryAfterSeconds": 1},
                    headers={"Retry-After": "1"})


def too_large(limit: int) -> ApiError:
    return ApiError(code=413, reason="RequestEntityTooLarge", message=f"Request entity too large: limit is {limit}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        code=429,
        reason="TooManyRequests",
        message="Too many requests, please try again later.",
        details={"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def internal_error(cause: str) -> ApiError:
    return ApiError(
        code=500,
        reason="InternalError",
        message=f"Internal error occurred: {cause}",
        details={"causes": [{"message": cause}]},
    )


def warning_value(text: str) -> str:
    """One warning as a ``Warning`` header value: RFC 7234 warn-code 299, as kube-apiserver sends warnings."""
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"')[:512] + '"'
