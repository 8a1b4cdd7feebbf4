"""vecsched's own errors at the Kubernetes API boundary.

The runtime decides what to do after a failed call -- drop the pod, back off
and retry, relist -- from the *kind* of failure, not from the library that
made the call. Every failure of ``scheduler.kube`` is therefore one of the
classes below, raised ``from`` the library's exception (``aiohttp`` or
``kubernetes_asyncio``) so that the cause stays visible in a traceback while
callers never import the library to catch it.

Exception tree::

    KubeError                        any failure talking to the API
     +-- TransportError              no HTTP answer: refused, reset, timed out
     +-- StatusError                 an HTTP answer with a failure Status body
          +-- ClientError            4xx: the request was wrong or not allowed
          |    +-- NotFoundError     404: the object (or the resource) does not exist
          |    +-- ConflictError     409: already exists, already bound, stale resourceVersion
          |    +-- GoneError         410: the resourceVersion is too old (compacted); relist
          |    +-- TooManyRequests   429: throttled; ``retry_after`` seconds to wait
          +-- ServerError            5xx: the server failed; retry with backoff

``retryable(e)`` says whether trying again later may succeed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "KubeError",
    "TransportError",
    "StatusError",
    "ClientError",
    "NotFoundError",
    "ConflictError",
    "GoneError",
    "TooManyRequests",
    "ServerError",
    "status_error",
    "retryable",
]


class KubeError(Exception):
    """Base of every failure of an API call made by vecsched."""


class TransportError(KubeError):
    """The server did not answer: connection refused or reset, or the call timed out."""


class StatusError(KubeError):
    """The server answered with a failure ``Status``: ``code``, ``reason`` and ``message``."""

    def __init__(self, *, code: int, reason: str, message: str, status: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status: Mapping[str, Any] = status or {}


class ClientError(StatusError):
    """4xx: the request was invalid, unauthorised or refused; retrying it unchanged will not help."""


class NotFoundError(ClientError):
    """404: the object or the resource does not exist."""


class ConflictError(ClientError):
    """409: the object exists, was changed meanwhile, or (for a binding) is already assigned."""


class GoneError(ClientError):
    """410: the requested resourceVersion has been compacted away; list again."""


class TooManyRequests(ClientError):
    """429: the server sheds load; wait ``retry_after`` seconds (0 when it did not say)."""

    def __init__(self, *, retry_after: float = 0.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.retry_after = retry_after


class ServerError(StatusError):
    """5xx: the server failed; the same request may succeed later."""


_BY_CODE: dict[int, type[ClientError]] = {404: NotFoundError, 409: ConflictError, 410: GoneError}


def _retry_after(headers: Mapping[str, str], status: Mapping[str, Any]) -> float:
    details = status.get("details")
    if isinstance(details, Mapping) and isinstance(details.get("retryAfterSeconds"), (int, float)):
        return float(details["retryAfterSeconds"])
    try:
        return max(0.0, float(headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def status_error(*, code: int, body: bytes, headers: Mapping[str, str] | None = None) -> StatusError:
    """The error for an HTTP failure ``code`` with a (possibly non-JSON) ``body``."""
    status: Mapping[str, Any] = {}
    try:
        decoded = json.loads(body) if body else {}
        if isinstance(decoded, Mapping):
            status = decoded
    except ValueError:
        pass
    # A watch stream reports failures as a Status object whose code we trust over the HTTP one.
    code = int(status.get("code") or code)
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or body[:200].decode("utf-8", "replace") or "no message")
    if code == 429:
        return TooManyRequests(code=code, reason=reason or "TooManyRequests", message=message, status=status,
                               retry_after=_retry_after(headers or {}, status))
    if 400 <= code < 500:
        return _BY_CODE.get(code, ClientError)(code=code, reason=reason, message=message, status=status)
    return ServerError(code=code, reason=reason, message=message, status=status)


def retryable(e: BaseException) -> bool:
    """Whether the same call may succeed later (timeouts, 5xx, 429)."""
    return isinstance(e, (TransportError, ServerError, TooManyRequests))
