"""Delegated authentication and authorization of ``vecsched run``'s HTTPS endpoints, as kube-scheduler's.

``/metrics`` tells whoever reads it how the cluster's workloads are placed, so
kube-scheduler lets only callers the cluster vouches for read it: a bearer
token is sent to the API server in a ``TokenReview`` (who is this?), and the
answer in a ``SubjectAccessReview`` (may this user ``get`` this path?) -- the
cluster's RBAC decides (k8s.io/apiserver's DelegatingAuthenticator and
DelegatingAuthorizer). vecsched asks the same questions with its own API
client, which therefore needs ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` (the ``system:auth-delegator`` ClusterRole).

Answers are cached briefly, with upstream's defaults, so that a Prometheus
scraping every few seconds costs the API server two requests per ten seconds
at most; a failure to reach the API server is not cached. The answers on the
wire are upstream's:

- a path in ``--authorization-always-allow-paths`` is served without looking
  at credentials;
- no bearer token, a token the API server does not know, or a ``TokenReview``
  that fails: 401 Unauthorized (kube-scheduler would take a request without a
  token as ``system:anonymous`` and ask RBAC about it; vecsched does not serve
  anonymous users at all);
- a user RBAC does not allow: 403 Forbidden, ``forbidden: User "u" cannot get
  path "/metrics"`` and the reviewer's reason;
- a ``SubjectAccessReview`` that fails: 500, as upstream's authorization filter.

A user in ``system:masters`` is allowed without a review (upstream's
``AlwaysAllowGroups``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from scheduler.kube.client import KubeClient
from scheduler.kube.errors import KubeError
from scheduler.serving import AlwaysAllowPaths

__all__ = ["AUTHN_CACHE_TTL", "AUTHZ_ALLOW_TTL", "AUTHZ_DENY_TTL", "REVIEW_TIMEOUT", "Identity", "ReviewError",
           "DelegatingAuth"]

log = logging.getLogger("vecsched.serving")

AUTHN_CACHE_TTL: Final = 10.0
"""Seconds a TokenReview's answer (either way) is kept: DelegatingAuthenticationOptions.CacheTTL."""
AUTHZ_ALLOW_TTL: Final = 10.0
"""Seconds an allowing SubjectAccessReview is kept: DelegatingAuthorizationOptions.AllowCacheTTL."""
AUTHZ_DENY_TTL: Final = 10.0
"""Seconds a denying one is kept: DelegatingAuthorizationOptions.DenyCacheTTL."""
REVIEW_TIMEOUT: Final = 10.0
"""Seconds one review request may take: DelegatingAuthorizationOptions.ClientTimeout."""
ALWAYS_ALLOW_GROUPS: Final = frozenset({"system:masters"})
"""Groups allowed everything without a review (upstream's AlwaysAllowGroups default)."""
_CACHE_ENTRIES: Final = 8192
"""Answers kept per cache at most (the webhook authorizer's LRU size): many distinct tokens
cannot grow memory without bound; the oldest answer goes first."""
_LOG_EVERY: Final = 30.0
"""Seconds between two log lines about an API server that cannot be reached (a Prometheus
scraping every 15 s must not fill the log while the API server is down)."""
_TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
_ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a TokenReview said the caller is: what the SubjectAccessReview asks about."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @staticmethod
    def from_review(user: Mapping[str, Any]) -> Identity:
        """From a TokenReview's ``status.user``; a malformed one is a ReviewError."""
        name = user.get("username")
        groups = user.get("groups") or []
        extra = user.get("extra") or {}
        if not isinstance(name, str) or not name:
            raise ReviewError("the TokenReview authenticated the token but named no user")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ReviewError("the TokenReview's status.user.groups is not a list of strings")
        if not isinstance(extra, Mapping) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in extra.values()):
            raise ReviewError("the TokenReview's status.user.extra is not a map of string lists")
        return Identity(name=name, uid=str(user.get("uid") or ""), groups=tuple(groups),
                        extra=tuple(sorted((str(k), tuple(v)) for k, v in extra.items())))


class ReviewError(Exception):
    """A review could not be made or its answer not read (the API server is down, refused us...)."""


class _TtlCache:
    """Answers kept until they expire, at most ``_CACHE_ENTRIES`` of them."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> tuple[bool, Any]:
        hit = self._items.get(key)
        if hit is None:
            return False, None
        if hit[0] <= self._clock():
            del self._items[key]
            return False, None
        return True, hit[1]

    def put(self, key: str, value: Any, ttl: float) -> None:
        self._items.pop(key, None)
        if len(self._items) >= _CACHE_ENTRIES:
            del self._items[next(iter(self._items))]
        self._items[key] = (self._clock() + ttl, value)


class DelegatingAuth:
    """Authenticates and authorizes requests through the API server; ``middleware`` guards an aiohttp app."""

    def __init__(self, *, client: KubeClient, always_allow: AlwaysAllowPaths, authn_ttl: float = AUTHN_CACHE_TTL,
                 allow_ttl: float = AUTHZ_ALLOW_TTL, deny_ttl: float = AUTHZ_DENY_TTL,
                 timeout: float = REVIEW_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.always_allow = always_allow
        self.authn_ttl = authn_ttl
        self.allow_ttl = allow_ttl
        self.deny_ttl = deny_ttl
        self.timeout = timeout
        self._clock = clock
        self._tokens = _TtlCache(clock=clock)
        self._decisions = _TtlCache(clock=clock)
        self._last_log = -_LOG_EVERY
        self.reviews: Counter[str] = Counter()
        """Reviews sent, by kind (TokenReview, SubjectAccessReview): what the caches save shows here."""

    # ---- the two questions -------------------------------------------------------------------

    async def authenticate(self, token: str) -> Identity | None:
        """Who ``token`` belongs to (None: nobody the API server knows). ReviewError when it cannot say."""
        # The key is a digest: the cache does not keep the bearer tokens themselves.
        key = hashlib.sha256(token.encode()).hexdigest()
        hit, value = self._tokens.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        review = await self._review(_TOKEN_REVIEWS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        status = review.get("status") or {}
        if not isinstance(status, Mapping):
            raise ReviewError("the TokenReview's answer has no status")
        who = Identity.from_review(status.get("user") or {}) if status.get("authenticated") is True else None
        self._tokens.put(key, who, self.authn_ttl)
        return who

    async def authorize(self, who: Identity, *, path: str, verb: str) -> tuple[bool, str]:
        """Whether ``who`` may ``verb`` the non-resource ``path``, and the reviewer's reason."""
        if ALWAYS_ALLOW_GROUPS.intersection(who.groups):
            return True, ""
        spec: dict[str, Any] = {"nonResourceAttributes": {"path": path, "verb": verb}, "user": who.name,
                                "groups": list(who.groups)}
        if who.uid:
            spec["uid"] = who.uid
        if who.extra:
            spec["extra"] = {k: list(v) for k, v in who.extra}
        key = json.dumps(spec, sort_keys=True)
        hit, value = self._decisions.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        review = await self._review(_ACCESS_REVIEWS, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        status = review.get("status") or {}
        if not isinstance(status, Mapping):
            raise ReviewError("the SubjectAccessReview's answer has no status")
        allowed = status.get("allowed") is True
        reason = str(status.get("reason") or "")
        if not allowed and not reason and status.get("evaluationError"):
            reason = str(status.get("evaluationError"))
        self._decisions.put(key, (allowed, reason), self.allow_ttl if allowed else self.deny_ttl)
        return allowed, reason

    async def _review(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        kind = str(body["kind"])
        self.reviews[kind] += 1
        try:
            answer = await self.client.request("POST", path, body=body, timeout=self.timeout)
        except KubeError as e:
            raise ReviewError(f"{kind}: {e}") from e
        if not isinstance(answer, Mapping):
            raise ReviewError(f"{kind}: the answer is not an object")
        return answer

    # ---- the HTTP side -------------------------------------------------------------------------

    @property
    def middleware(self) -> Middleware:
        """An aiohttp middleware that answers 401/403/500 in place of the handler when it must."""
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            refusal = await self.check(request)
            return refusal if refusal is not None else await handler(request)
        return guard

    async def check(self, request: web.Request) -> web.Response | None:
        """None when ``request`` may be served; else the 401, 403 or 500 answer."""
        path = request.path
        if self.always_allow.allows(path):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _status(401, "Unauthorized", "Unauthorized")
        try:
            who = await self.authenticate(token)
        except ReviewError as e:
            self._warn("Unable to authenticate the request: %s", e)
            return _status(401, "Unauthorized", "Unauthorized")
        if who is None:
            return _status(401, "Unauthorized", "Unauthorized")
        verb = request.method.lower()  # a non-resource request's verb, as upstream's RequestInfo
        try:
            allowed, reason = await self.authorize(who, path=path, verb=verb)
        except ReviewError as e:
            self._warn("Unable to authorize the request: %s", e)
            return _status(500, "InternalError", f"Internal Server Error: {json.dumps(path)}: {e}")
        if allowed:
            return None
        message = f"forbidden: User {json.dumps(who.name)} cannot {verb} path {json.dumps(path)}"
        return _status(403, "Forbidden", f"{message}: {reason}" if reason else message)

    def _warn(self, fmt: str, e: Exception) -> None:
        now = self._clock()
        if now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            log.warning(fmt, e)


def _status(code: int, reason: str, message: str) -> web.Response:
    """A ``Status`` body on one line, as kube-apiserver's response writers send it."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": {}, "code": code}
    return web.Response(status=code, text=json.dumps(body, separators=(",", ":")), content_type="application/json")
