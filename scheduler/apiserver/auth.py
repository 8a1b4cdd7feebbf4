"""Bearer-token authentication and RBAC authorization, with a decision log.

vecsched ships an RBAC manifest; proving it sufficient and minimal needs a
server that evaluates ``ClusterRole``/``Role`` and their bindings like
kube-apiserver's RBAC authorizer and records every decision. Tokens map to
users (``system:serviceaccount:<ns>:<name>`` gets the service-account groups);
a user in ``system:masters`` bypasses RBAC, as on a real cluster.

Delegated authentication and authorization (``reviews.py``: TokenReview and
SubjectAccessReview) ask this module the same questions for another server,
so ``explain`` also says which binding allowed a request, as kube-apiserver's
RBAC authorizer words its reason, and kube-apiserver's bootstrap ClusterRole
``system:auth-delegator`` (create both reviews) is always defined.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import csv
import io

import yaml

from . import errors

__all__ = ["User", "Attributes", "Decision", "Authorizer", "AUTH_DELEGATOR", "parse_token_spec", "read_token_file",
           "load_rbac", "read_rbac_file"]

MASTERS: Final = "system:masters"
_RBAC_KINDS: Final = frozenset({"ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"})
# Non-resource URLs every authenticated user may read (the default
# system:discovery, system:public-info-viewer and system:basic-user roles).
_PUBLIC_PATHS: Final = ("/api", "/apis", "/version", "/healthz", "/readyz", "/livez", "/openapi")
# kube-apiserver's bootstrap ClusterRole for servers that delegate authentication and authorization
# to it (kube-scheduler, metrics-server, ...): present on every cluster, so bound to, never shipped.
AUTH_DELEGATOR: Final = "system:auth-delegator"
_BOOTSTRAP_ROLES: Final = {AUTH_DELEGATOR: (
    ("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews"))}
# Recent decisions kept in full: enough for a test to read a scheduler's first minutes of calls;
# older ones survive only in the per-shape summary.
_LOG_LIMIT: Final = 20_000


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    """The token file's uid column (what a TokenReview reports as ``user.uid``)."""

    @staticmethod
    def of(name: str, groups: Iterable[str] = (), *, uid: str = "") -> "User":
        """A user with the groups kube-apiserver adds (service-account and authenticated groups)."""
        gs = list(groups)
        parts = name.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            gs += ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"]
        gs.append("system:authenticated")
        return User(name=name, groups=tuple(dict.fromkeys(gs)), uid=uid)


@dataclass(frozen=True)
class Attributes:
    """What a request does, as the RBAC authorizer sees it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # set for non-resource requests


@dataclass(frozen=True)
class Decision:
    """One authorization decision, as recorded in ``Authorizer.log``."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    allowed: bool


@dataclass
class _Rule:
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: frozenset[str]

    def allows(self, a: Attributes) -> bool:
        if not ("*" in self.verbs or a.verb in self.verbs):
            return False
        if a.path:
            return any(u == a.path or u == "*" or (u.endswith("*") and a.path.startswith(u[:-1])) for u in self.urls)
        if not ("*" in self.groups or a.group in self.groups):
            return False
        res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        if not ("*" in self.resources or res in self.resources
                or (a.subresource and f"*/{a.subresource}" in self.resources)):
            return False
        return not self.names or a.name in self.names


def read_token_file(path: str | Path) -> dict[str, User]:
    """Tokens from a file in kube-apiserver's ``--token-auth-file`` format.

    One ``token,user,uid[,"group1,group2,..."]`` line per token; blank lines and
    ``#`` comments are skipped. Secrets stay off the command line (and out of ``ps``).
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"cannot read token file {p}: {e.strerror}") from e
    out: dict[str, User] = {}
    for n, line in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not line or not line[0].strip() or line[0].lstrip().startswith("#"):
            continue
        if len(line) < 3 or not line[1].strip():
            raise ValueError(f"{p}:{n}: expected token,user,uid[,\"group1,group2\"]")
        groups = [g.strip() for g in line[3].split(",") if g.strip()] if len(line) > 3 else []
        out[line[0].strip()] = User.of(line[1].strip(), groups, uid=line[2].strip())
    return out


def parse_token_spec(spec: str) -> tuple[str, User]:
    """``TOKEN=USER[,GROUP...]`` as given to ``--token``."""
    token, sep, rest = spec.partition("=")
    if not sep or not token or not rest:
        raise ValueError(f"invalid --token {spec!r}: expected TOKEN=USER or TOKEN=USER,GROUP,...")
    name, *groups = rest.split(",")
    return token, User.of(name, groups)


def _rules(doc: Mapping[str, Any], where: str) -> list[_Rule]:
    out = []
    for r in doc.get("rules") or []:
        if not isinstance(r, Mapping) or not r.get("verbs"):
            raise ValueError(f"{where}: every rule needs verbs")
        out.append(_Rule(
            verbs=frozenset(r.get("verbs") or ()),
            groups=frozenset(r.get("apiGroups") or ()),
            resources=frozenset(r.get("resources") or ()),
            names=frozenset(r.get("resourceNames") or ()),
            urls=frozenset(r.get("nonResourceURLs") or ()),
        ))
    return out


def load_rbac(text: str, *, source: str = "<rbac>") -> list[dict[str, Any]]:
    """The RBAC documents of a (multi-document) YAML text; other kinds are ignored."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: not valid YAML: {e}") from e
    out: list[dict[str, Any]] = []
    for d in docs:
        if not isinstance(d, dict):
            raise ValueError(f"{source}: every document must be a mapping")
        items = d.get("items") if d.get("kind") == "List" else [d]
        out.extend(x for x in items or [] if isinstance(x, dict) and x.get("kind") in _RBAC_KINDS)
    return out


class Authorizer:
    """Authenticates bearer tokens and authorizes requests with RBAC; logs every decision."""

    def __init__(self, *, tokens: Mapping[str, User | str] | None = None, rbac: Iterable[Mapping[str, Any]] | None = None,
                 log_limit: int = _LOG_LIMIT) -> None:
        self.tokens: dict[str, User] = {t: (u if isinstance(u, User) else User.of(u)) for t, u in (tokens or {}).items()}
        self.rbac_enabled = rbac is not None
        self.log: deque[Decision] = deque(maxlen=log_limit)
        """The most recent decisions (a long run must not grow memory without bound)."""
        self.summary: Counter[Decision] = Counter()
        """Every distinct decision ever made, object names left out, with its count: what a
        permission audit needs, bounded by the API's shape rather than by the traffic."""
        self._cluster_roles: dict[str, list[_Rule]] = {
            name: [_Rule(verbs=frozenset({"create"}), groups=frozenset({g}), resources=frozenset({r}),
                         names=frozenset(), urls=frozenset()) for g, r in rules]
            for name, rules in _BOOTSTRAP_ROLES.items()}
        self._roles: dict[tuple[str, str], list[_Rule]] = {}
        # (ns, roleKind, roleName, subjects, bindingKind, bindingName)
        self._bindings: list[tuple[str, str, str, list[Mapping[str, Any]], str, str]] = []
        for doc in rbac or ():
            self.add(doc)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) or self.rbac_enabled

    def add(self, doc: Mapping[str, Any]) -> None:
        """Load one ClusterRole, Role, ClusterRoleBinding or RoleBinding."""
        kind = doc.get("kind")
        meta = doc.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        where = f"{kind} {ns + '/' if ns else ''}{name}"
        self.rbac_enabled = True
        if kind == "ClusterRole":
            self._cluster_roles[name] = _rules(doc, where)
        elif kind == "Role":
            self._roles[(ns or "default", name)] = _rules(doc, where)
        elif kind in ("ClusterRoleBinding", "RoleBinding"):
            ref = doc.get("roleRef") or {}
            if ref.get("kind") not in ("ClusterRole", "Role") or not ref.get("name"):
                raise ValueError(f"{where}: roleRef needs kind ClusterRole or Role and a name")
            if kind == "ClusterRoleBinding" and ref.get("kind") != "ClusterRole":
                raise ValueError(f"{where}: a ClusterRoleBinding may only refer to a ClusterRole")
            self._bindings.append(("" if kind == "ClusterRoleBinding" else (ns or "default"), ref["kind"], ref["name"],
                                   list(doc.get("subjects") or []), str(kind), str(name)))
        else:
            raise ValueError(f"not an RBAC object: kind {kind!r}")

    def authenticate(self, header: str | None) -> User | None:
        """The user of an ``Authorization`` header; None means anonymous (401 when auth is on)."""
        if not header or not header.lower().startswith("bearer "):
            return None
        return self.tokens.get(header[7:].strip())

    def _subject_matches(self, s: Mapping[str, Any], user: User, binding_ns: str) -> bool:
        kind = s.get("kind")
        if kind == "User":
            return s.get("name") == user.name
        if kind == "Group":
            return s.get("name") in user.groups
        if kind == "ServiceAccount":
            ns = s.get("namespace") or binding_ns
            return user.name == f"system:serviceaccount:{ns}:{s.get('name')}"
        return False

    def allowed(self, user: User, a: Attributes) -> bool:
        return self.explain(user, a)[0]

    def explain(self, user: User, a: Attributes) -> tuple[bool, str]:
        """Whether RBAC allows ``a`` to ``user``, and why, in kube-apiserver's words (a denial has no
        reason: RBAC has no opinion, and nothing else allows)."""
        if MASTERS in user.groups:
            return True, f'allowed by group "{MASTERS}"'
        if a.path and a.verb == "get" and any(a.path == p or a.path.startswith(p + "/") for p in _PUBLIC_PATHS):
            return True, "RBAC: allowed by the default discovery and health roles"
        for ns, ref_kind, ref_name, subjects, kind, name in self._bindings:
            if ns and ns != a.namespace:
                continue
            subject = next((s for s in subjects if self._subject_matches(s, user, ns)), None)
            if subject is None:
                continue
            rules = self._cluster_roles.get(ref_name, []) if ref_kind == "ClusterRole" else self._roles.get((ns, ref_name), [])
            if any(r.allows(a) for r in rules):
                where = f'{kind} "{name}"' + (f' of {ref_kind} "{ref_name}"' if ref_kind else "")
                who = f'{subject.get("kind")} "{subject.get("name")}"'
                return True, f"RBAC: allowed by {where} to {who}" + (f' in namespace "{ns}"' if ns else "")
        return False, ""

    def check(self, user: User, a: Attributes) -> None:
        """Raise 403 Forbidden with kube-apiserver's message unless RBAC allows ``a``; log the decision."""
        if not self.rbac_enabled:
            return
        ok = self.allowed(user, a)
        if not a.path:
            d = Decision(user=user.name, verb=a.verb, group=a.group, resource=a.resource,
                         subresource=a.subresource, namespace=a.namespace, name=a.name, allowed=ok)
            self.log.append(d)
            self.summary[replace(d, name="")] += 1
        if ok:
            return
        if a.path:
            raise errors.forbidden(f'forbidden: User "{user.name}" cannot {a.verb} path "{a.path}"')
        res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        qualified = f"{a.resource}.{a.group}" if a.group else a.resource
        who = f'{qualified} "{a.name}"' if a.name else qualified
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        raise errors.forbidden(
            f'{who} is forbidden: User "{user.name}" cannot {a.verb} resource "{res}" in API group "{a.group}" {scope}',
            resource=a.resource, group=a.group, name=a.name,
        )


def read_rbac_file(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"cannot read RBAC file {p}: {e.strerror}") from e
    return load_rbac(text, source=str(p))

