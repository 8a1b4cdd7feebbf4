"""Admission webhook configurations: their defaults, their validation, and the requests they select.

A ``MutatingWebhookConfiguration`` or ``ValidatingWebhookConfiguration``
(``admissionregistration.k8s.io/v1``) tells the server which writes to send
to which HTTPS endpoint. A configuration is defaulted and validated when it
is written, with kube-apiserver's defaults (``failurePolicy: Fail``,
``matchPolicy: Equivalent``, ``timeoutSeconds: 10``, ``reinvocationPolicy:
Never``, rule ``scope: "*"``, empty selectors) and field errors, so that a
manifest accepted here is accepted by a real cluster. Two things a real
cluster accepts are refused, each with a message naming the field:
``clientConfig.service`` (the embedded server has no service network to
reach a Service through; ``clientConfig.url`` works) and ``matchConditions``
(CEL expressions are not evaluated here).

``Hook`` is one webhook of a stored configuration; ``Hook.selects`` is
upstream's ``ShouldCallHook``: the rules (operations, API groups and
versions, resources and subresources with ``*`` and ``x/*``, scope), the
namespace selector against the labels of the request's namespace (of the
Namespace itself when a Namespace is written; cluster-scoped objects are
never exempted by it) and the object selector against the new or the old
object's labels. ``matchPolicy`` changes nothing here: every resource is
served at exactly one group and version, so no request has an equivalent
under another name.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from . import errors
from .auth import User
from .resources import ResourceType, builtin
from .selectors import label_selector_matches

__all__ = ["MUTATING", "VALIDATING", "Attributes", "Hook", "Rule", "admit_configuration", "parse_hooks"]

MUTATING: Final = builtin("mutatingwebhookconfigurations.admissionregistration.k8s.io")
VALIDATING: Final = builtin("validatingwebhookconfigurations.admissionregistration.k8s.io")
NAMESPACES: Final = builtin("namespaces")

_OPERATIONS: Final = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")  # sorted, as upstream lists them
_SCOPES: Final = ("*", "Cluster", "Namespaced")
_FAILURE_POLICIES: Final = ("Fail", "Ignore")
_MATCH_POLICIES: Final = ("Equivalent", "Exact")
_NO_SIDE_EFFECTS: Final = ("None", "NoneOnDryRun")
_REINVOCATION: Final = ("IfNeeded", "Never")
_REVIEW_VERSIONS: Final = ("v1", "v1beta1")
_SELECTOR_OPS: Final = ("In", "NotIn", "Exists", "DoesNotExist")
_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY: Final = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_URL_FORM: Final = "; desired format: https://host[/path]"

Causes = list[tuple[str, str]]
Selector = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class Attributes:
    """One request as admission sees it (upstream's ``admission.Attributes``)."""

    operation: str
    """CREATE, UPDATE or DELETE."""
    resource: ResourceType
    subresource: str
    namespace: str
    """The request's namespace; for a write of a Namespace, its own name (as upstream sets it)."""
    name: str
    kind: tuple[str, str, str] = ("", "", "")
    """(group, version, kind) of the object sent; empty for the resource's own kind."""
    dry_run: bool = False
    options: dict[str, Any] | None = None
    """The request's CreateOptions, UpdateOptions, PatchOptions or DeleteOptions."""
    user: User | None = None
    """Who asked; None for a server without authentication."""

    @property
    def gvk(self) -> tuple[str, str, str]:
        rt = self.resource
        return self.kind if self.kind[2] else (rt.group, rt.version, rt.kind)


@dataclass(frozen=True)
class Rule:
    """One ``rules[]`` entry: operations x groups x versions x resources, within a scope."""

    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: tuple[tuple[str, str], ...]
    """(resource, subresource) pairs; ``*`` matches any, ``""`` the main resource only."""
    scope: str

    def matches(self, a: Attributes) -> bool:
        """``rules.Matcher.Matches``: scope, operation, group, version, then resource/subresource."""
        rt = a.resource
        if self.scope != "*":
            # A Namespace is cluster-scoped although its requests carry its name as their namespace.
            cluster = rt is NAMESPACES or not a.namespace
            if cluster != (self.scope == "Cluster"):
                return False
        return (("*" in self.operations or a.operation in self.operations)
                and ("*" in self.groups or rt.group in self.groups)
                and ("*" in self.versions or rt.version in self.versions)
                and any(r in ("*", rt.plural) and s in ("*", a.subresource) for r, s in self.resources))


@dataclass(frozen=True)
class Hook:
    """One webhook of a stored configuration, ready to match requests."""

    configuration: str
    name: str
    mutating: bool
    rules: tuple[Rule, ...]
    namespace_selector: Selector | None
    """None: the empty selector (everything)."""
    object_selector: Selector | None
    failure_policy: str
    side_effects: str
    timeout: float
    """Seconds (``timeoutSeconds``) the whole call may take."""
    url: str
    ca_bundle: bytes
    """PEM certificates that verify the webhook's server; empty: the system's trust roots."""
    review_version: str
    """The AdmissionReview version sent: the first of ``admissionReviewVersions`` the server speaks."""
    reinvoke: bool
    """``reinvocationPolicy: IfNeeded``."""

    def selects(self, a: Attributes, *, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None,
                namespace_labels: Callable[[], Mapping[str, str]]) -> bool:
        """Whether the request goes to this webhook (``namespace_labels`` is read only when needed)."""
        if not any(r.matches(a) for r in self.rules):
            return False
        if self.namespace_selector is not None and (a.namespace or a.resource is NAMESPACES):
            if not self.namespace_selector(namespace_labels()):
                return False
        if self.object_selector is not None:
            return any(o is not None and self.object_selector(_labels(o)) for o in (obj, old))
        return True


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


# ---- defaults and validation ---------------------------------------------------------------------


def admit_configuration(rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None) -> None:
    """Default ``obj`` in place (upstream's ``SetDefaults_*``), then raise 422 naming every invalid field.

    On update, rules that tightened over time bind only configurations that
    already met them (upstream's ratcheting): side effects other than None and
    NoneOnDryRun, unknown AdmissionReview versions and repeated webhook names
    stay allowed when the stored object had them.
    """
    mutating = rt is MUTATING
    hooks = obj.get("webhooks")
    causes: Causes = []
    if hooks is not None and not isinstance(hooks, list):
        causes.append(("webhooks", "Invalid value: must be a list of webhooks"))
        hooks = []
    old_hooks = [h for h in (old or {}).get("webhooks") or [] if isinstance(h, dict)] if old is not None else None
    strict_effects = old_hooks is None or all(h.get("sideEffects") in _NO_SIDE_EFFECTS for h in old_hooks)
    strict_versions = old_hooks is None or all(
        not h.get("admissionReviewVersions") or set(h["admissionReviewVersions"]) & set(_REVIEW_VERSIONS)
        for h in old_hooks)
    strict_names = old_hooks is None or len({h.get("name") for h in old_hooks}) == len(old_hooks)
    names: set[str] = set()
    for i, hook in enumerate(hooks or []):
        path = f"webhooks[{i}]"
        if not isinstance(hook, dict):
            causes.append((path, "Invalid value: must be an object"))
            continue
        _default(hook, mutating=mutating)
        _validate_hook(hook, path, causes, mutating=mutating, strict_effects=strict_effects,
                       strict_versions=strict_versions)
        name = hook.get("name")
        if strict_names and isinstance(name, str) and name:
            if name in names:
                causes.append((f"{path}.name", f"Duplicate value: {_go(name)}"))
            names.add(name)
    if causes:
        raise errors.invalid(kind=rt.kind, group=rt.group, name=obj["metadata"].get("name", ""), causes=causes)


def _default(hook: dict[str, Any], *, mutating: bool) -> None:
    """Absent or null fields get upstream's defaults (a null is Go's nil pointer)."""
    defaults: dict[str, Any] = {"failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {},
                                "objectSelector": {}, "timeoutSeconds": 10}
    if mutating:
        defaults["reinvocationPolicy"] = "Never"
    for key, value in defaults.items():
        if hook.get(key) is None:
            hook[key] = value
    for rule in hook.get("rules") or []:
        if isinstance(rule, dict) and rule.get("scope") is None:
            rule["scope"] = "*"


def _validate_hook(hook: dict[str, Any], path: str, causes: Causes, *, mutating: bool, strict_effects: bool,
                   strict_versions: bool) -> None:
    _fully_qualified(hook.get("name"), f"{path}.name", causes)
    rules = hook.get("rules")
    if rules is not None and not isinstance(rules, list):
        causes.append((f"{path}.rules", "Invalid value: must be a list of rules"))
    for j, rule in enumerate(rules if isinstance(rules, list) else []):
        _validate_rule(rule, f"{path}.rules[{j}]", causes)
    _one_of(hook, "failurePolicy", _FAILURE_POLICIES, path, causes)
    _one_of(hook, "matchPolicy", _MATCH_POLICIES, path, causes)
    effects = _NO_SIDE_EFFECTS if strict_effects else ("None", "NoneOnDryRun", "Some", "Unknown")
    if hook.get("sideEffects") is None:
        causes.append((f"{path}.sideEffects", f"Required value: must specify one of {', '.join(effects)}"))
    else:
        _one_of(hook, "sideEffects", effects, path, causes)
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 30:
        causes.append((f"{path}.timeoutSeconds",
                       f"Invalid value: {_go(timeout)}: the timeout value must be between 1 and 30 seconds"))
    for sel in ("namespaceSelector", "objectSelector"):
        _validate_selector(hook.get(sel), f"{path}.{sel}", causes)
    if mutating:
        _one_of(hook, "reinvocationPolicy", _REINVOCATION, path, causes)
    _validate_client_config(hook.get("clientConfig"), f"{path}.clientConfig", causes)
    if hook.get("matchConditions"):
        causes.append((f"{path}.matchConditions", "Forbidden: CEL match conditions are not evaluated by the "
                                                   "vecsched control plane; select requests with rules and selectors"))
    _validate_review_versions(hook.get("admissionReviewVersions"), f"{path}.admissionReviewVersions", causes,
                              strict=strict_versions)


def _go(value: Any) -> str:
    """A value as Go's ``%#v`` prints it in a field error: ``"x"``, ``31``, ``[]string{"a", "b"}``."""
    if isinstance(value, list):
        return "[]string{" + ", ".join(json.dumps(str(v)) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def _one_of(hook: dict[str, Any], field: str, allowed: tuple[str, ...], path: str, causes: Causes) -> None:
    value = hook.get(field)
    if value not in allowed:
        supported = ", ".join(json.dumps(v) for v in sorted(allowed))
        causes.append((f"{path}.{field}", f"Unsupported value: {_go(value)}: supported values: {supported}"))


def _fully_qualified(name: Any, path: str, causes: Causes) -> None:
    """``IsFullyQualifiedName``: a DNS subdomain of at least three labels."""
    if not name:
        causes.append((path, "Required value"))
    elif not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.match(name):
        causes.append((path, f"Invalid value: {_go(name)}: a lowercase RFC 1123 subdomain must consist of lower case "
                             "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                             "character (e.g. 'example.com', regex used for validation is "
                             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))
    elif len(name.split(".")) < 3:
        causes.append((path, f"Invalid value: {_go(name)}: should be a domain with at least three segments "
                             "separated by dots"))


def _strings(value: Any, path: str, causes: Causes) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        causes.append((path, "Invalid value: must be a list of strings"))
        return None
    return value


def _validate_rule(rule: Any, path: str, causes: Causes) -> None:
    """``validateRuleWithOperations``."""
    if not isinstance(rule, dict):
        causes.append((path, "Invalid value: must be an object"))
        return
    ops = _strings(rule.get("operations"), f"{path}.operations", causes)
    if ops is not None:
        if not ops:
            causes.append((f"{path}.operations", "Required value"))
        if len(ops) > 1 and "*" in ops:
            causes.append((f"{path}.operations", f"Invalid value: {_go(ops)}: if '*' is present, must not specify "
                                                 "other operations"))
        for k, op in enumerate(ops):
            if op not in _OPERATIONS:
                supported = ", ".join(json.dumps(o) for o in _OPERATIONS)
                causes.append((f"{path}.operations[{k}]", f"Unsupported value: {_go(op)}: supported values: {supported}"))
    for field, what in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        items = _strings(rule.get(field), f"{path}.{field}", causes)
        if items is None:
            continue
        if not items:
            causes.append((f"{path}.{field}", "Required value"))
        if len(items) > 1 and "*" in items:
            causes.append((f"{path}.{field}", f"Invalid value: {_go(items)}: if '*' is present, must not specify "
                                              f"other {what}"))
        if field == "apiVersions":
            causes.extend((f"{path}.apiVersions[{k}]", "Required value") for k, v in enumerate(items) if not v)
    resources = _strings(rule.get("resources"), f"{path}.resources", causes)
    if resources is not None:
        _validate_resources(resources, f"{path}.resources", causes)
    if rule.get("scope") not in _SCOPES:
        supported = ", ".join(json.dumps(s) for s in _SCOPES)
        causes.append((f"{path}.scope", f"Unsupported value: {_go(rule.get('scope'))}: supported values: {supported}"))


def _validate_resources(resources: list[str], path: str, causes: Causes) -> None:
    """``validateResources``: ``x``, ``x/y``, ``x/*``, ``*/y``, ``*``, ``*/*`` without overlaps."""
    if not resources:
        causes.append((path, "Required value"))
    wild_sub: set[str] = set()
    wild_res: set[str] = set()
    single = plain = False
    for k, res_sub in enumerate(resources):
        if not res_sub:
            causes.append((f"{path}[{k}]", "Required value"))
            continue
        single = single or res_sub == "*"
        res, slash, sub = res_sub.partition("/")
        if not slash:
            plain = res_sub != "*"
            continue
        if res in wild_sub:
            causes.append((f"{path}[{k}]", f"Invalid value: {_go(res_sub)}: if '{res}/*' is present, must not "
                                           f"specify {res_sub}"))
        if sub in wild_res:
            causes.append((f"{path}[{k}]", f"Invalid value: {_go(res_sub)}: if '*/{sub}' is present, must not "
                                           f"specify {res_sub}"))
        if sub == "*":
            wild_sub.add(res)
        if res == "*":
            wild_res.add(sub)
    if len(resources) > 1 and "*/*" in resources:
        causes.append((path, f"Invalid value: {_go(resources)}: if '*/*' is present, must not specify other resources"))
    if single and plain:
        causes.append((path, f"Invalid value: {_go(resources)}: if '*' is present, must not specify other resources "
                             "without subresources"))


def _validate_selector(sel: Any, path: str, causes: Causes) -> None:
    """``ValidateLabelSelector``: label keys and values, and each operator's values."""
    if not isinstance(sel, dict):
        causes.append((path, "Invalid value: must be a label selector object"))
        return
    labels = sel.get("matchLabels") or {}
    if not isinstance(labels, dict):
        causes.append((f"{path}.matchLabels", "Invalid value: must be a map of strings"))
        labels = {}
    for key, value in labels.items():
        _label_key(key, f"{path}.matchLabels", causes)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append((f"{path}.matchLabels", f"Invalid value: {_go(value)}: a valid label must be an empty string "
                                                  "or consist of alphanumeric characters, '-', '_' or '.', and must "
                                                  "start and end with an alphanumeric character"))
    exprs = sel.get("matchExpressions") or []
    if not isinstance(exprs, list):
        causes.append((f"{path}.matchExpressions", "Invalid value: must be a list of requirements"))
        exprs = []
    for k, req in enumerate(exprs):
        at = f"{path}.matchExpressions[{k}]"
        if not isinstance(req, dict):
            causes.append((at, "Invalid value: must be an object"))
            continue
        op, values = req.get("operator"), req.get("values") or []
        if op in ("In", "NotIn") and not values:
            causes.append((f"{at}.values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append((f"{at}.values",
                           "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        elif op not in _SELECTOR_OPS:
            causes.append((f"{at}.operator", f"Invalid value: {_go(op)}: not a valid selector operator"))
        _label_key(req.get("key"), f"{at}.key", causes)
        if not isinstance(values, list) or not all(isinstance(v, str) and _LABEL_VALUE.match(v) for v in values):
            causes.append((f"{at}.values", "Invalid value: must be a list of valid label values"))


def _label_key(key: Any, path: str, causes: Causes) -> None:
    if not isinstance(key, str) or not _LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        causes.append((path, f"Invalid value: {_go(key)}: name part must consist of alphanumeric characters, '-', "
                             "'_' or '.', and must start and end with an alphanumeric character"))


def _validate_client_config(cc: Any, path: str, causes: Causes) -> None:
    if not isinstance(cc, dict) or (cc.get("url") is None) == (cc.get("service") is None):
        causes.append((path, "Required value: exactly one of url or service is required"))
        return
    if cc.get("service") is not None:
        causes.append((f"{path}.service", "Forbidden: the vecsched control plane has no service network to reach a "
                                          "Service through; set clientConfig.url to the webhook's https address"))
    else:
        _validate_url(cc["url"], f"{path}.url", causes)
    bundle = cc.get("caBundle")
    if bundle is not None and _ca_bundle(bundle) is None:
        causes.append((f"{path}.caBundle", "Invalid value: must be base64-encoded PEM certificates"))


def _validate_url(url: Any, path: str, causes: Causes) -> None:
    """``ValidateWebhookURL`` with https forced."""
    if not isinstance(url, str):
        causes.append((path, f"Required value: url must be a valid URL: not a string{_URL_FORM}"))
        return
    try:
        u = urlsplit(url)
        u.port  # noqa: B018 -- parses the port: a malformed one raises here
    except ValueError as e:
        causes.append((path, f"Required value: url must be a valid URL: {e}{_URL_FORM}"))
        return
    if u.scheme != "https":
        causes.append((path, f"Invalid value: {_go(u.scheme)}: 'https' is the only allowed URL scheme{_URL_FORM}"))
    if not u.hostname:
        causes.append((path, f"Invalid value: {_go(u.hostname or '')}: host must be specified{_URL_FORM}"))
    if u.username is not None:
        causes.append((path, f"Invalid value: {_go(u.netloc.rpartition('@')[0])}: user information is not "
                             "permitted in the URL"))
    if u.fragment:
        causes.append((path, f"Invalid value: {_go(u.fragment)}: fragments are not permitted in the URL"))
    if u.query:
        causes.append((path, f"Invalid value: {_go(u.query)}: query parameters are not permitted in the URL"))


def _ca_bundle(value: Any) -> bytes | None:
    """The PEM bytes of a ``caBundle`` (base64 in JSON), or None when it is not base64."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _validate_review_versions(versions: Any, path: str, causes: Causes, *, strict: bool) -> None:
    if not versions:
        causes.append((path, f"Required value: must specify one of {', '.join(_REVIEW_VERSIONS)}"))
        return
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        causes.append((path, "Invalid value: must be a list of strings"))
        return
    seen: set[str] = set()
    for k, v in enumerate(versions):
        if v in seen:
            causes.append((f"{path}[{k}]", f"Invalid value: {_go(v)}: duplicate version"))
            continue
        seen.add(v)
        if len(v) > 63 or not _DNS1035.match(v):
            causes.append((f"{path}[{k}]", f"Invalid value: {_go(v)}: a DNS-1035 label must consist of lower case "
                                           "alphanumeric characters or '-', start with an alphabetic character, and "
                                           "end with an alphanumeric character"))
    if strict and not seen & set(_REVIEW_VERSIONS):
        causes.append((path, f"Invalid value: {_go(versions)}: must include at least one of "
                             f"{', '.join(_REVIEW_VERSIONS)}"))


# ---- parsing stored configurations ---------------------------------------------------------------


def parse_hooks(rt: ResourceType, obj: Mapping[str, Any]) -> list[Hook]:
    """The webhooks of a stored (defaulted and validated) configuration, in their order."""
    out = []
    for hook in obj.get("webhooks") or []:
        cc = hook.get("clientConfig") or {}
        versions = [v for v in hook.get("admissionReviewVersions") or [] if v in _REVIEW_VERSIONS]
        out.append(Hook(
            configuration=obj["metadata"]["name"], name=hook["name"], mutating=rt is MUTATING,
            rules=tuple(_rule(r) for r in hook.get("rules") or []),
            namespace_selector=_selector(hook.get("namespaceSelector")),
            object_selector=_selector(hook.get("objectSelector")),
            failure_policy=hook.get("failurePolicy") or "Fail", side_effects=hook.get("sideEffects") or "",
            timeout=float(hook.get("timeoutSeconds") or 10), url=cc.get("url") or "",
            ca_bundle=_ca_bundle(cc.get("caBundle")) or b"",
            review_version=versions[0] if versions else "v1",
            reinvoke=hook.get("reinvocationPolicy") == "IfNeeded"))
    return out


def _rule(rule: Mapping[str, Any]) -> Rule:
    resources = tuple((res, sub) for res, _, sub in (r.partition("/") for r in rule.get("resources") or []))
    return Rule(operations=frozenset(rule.get("operations") or ()), groups=frozenset(rule.get("apiGroups") or ()),
                versions=frozenset(rule.get("apiVersions") or ()), resources=resources,
                scope=rule.get("scope") or "*")


def _selector(sel: Any) -> Selector | None:
    """``LabelSelectorAsSelector`` of a validated selector; None for the empty one."""
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return None
    return lambda labels: label_selector_matches(sel, labels)
