"""The field checks of a CustomResourceDefinition's metadata, spec and status.

kube-apiserver converts a v1 CRD to its internal form before validating it,
and that shapes the messages authors see: versions whose schemas (or
subresources, or printer columns) are all identical are reported under the
internal top-level field (``spec.validation.openAPIV3Schema...``,
``spec.subresources.scale...``, ``spec.additionalPrinterColumns[0]...``),
differing ones under ``spec.versions[i]``. ``definition_errors`` reproduces
that conversion and then apiextensions' ``ValidateCustomResourceDefinition``
(and its update variant) in upstream's order, returning ``(field, message)``
causes. ``shape_error`` catches bodies that would not even decode.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlparse

from .crd_go import FieldPath, GoStruct, forbidden, invalid, not_supported, required, typed_key
from .crd_openapi import schema_errors

__all__ = ["definition_errors", "shape_error", "dns1035", "dns1123_subdomain", "protected_group",
           "APPROVAL_ANNOTATION", "approval_state"]

Cause = tuple[str, str]

APPROVAL_ANNOTATION: Final = "api-approved.kubernetes.io"
_COLUMN_TYPES: Final = "boolean,date,integer,number,string"
_COLUMN_FORMATS: Final = "byte,date,date-time,double,float,int32,int64,password"
_DNS1035_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_MSG: Final = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                       "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                       "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_SUBDOMAIN_MSG: Final = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                         "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                         "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def dns1035(value: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(value) > 63 else []
    return errs + ([] if _DNS1035_RE.match(value) else [_DNS1035_MSG])


def dns1123_subdomain(value: str) -> list[str]:
    errs = ["must be no more than 253 characters"] if len(value) > 253 else []
    return errs + ([] if _SUBDOMAIN_RE.match(value) else [_SUBDOMAIN_MSG])


def protected_group(group: str) -> bool:
    """Groups under k8s.io and kubernetes.io need an API review (``IsProtectedCommunityGroup``)."""
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def approval_state(annotations: dict[str, Any]) -> tuple[str, str]:
    """``GetAPIApprovalState``: (Missing|Bypassed|Approved|Invalid, reason)."""
    value = str(annotations.get(APPROVAL_ANNOTATION) or "")
    if not value:
        return "Missing", (f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", see '
                           "https://github.com/kubernetes/enhancements/pull/1111")
    if value.startswith("unapproved"):
        return "Bypassed", f'not approved: "{value}"'
    url = urlparse(value)
    if url.scheme and url.netloc and " " not in value:
        return "Approved", f"approved in {value}"
    return "Invalid", (f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}" with either a URL or a '
                       'reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111')


# ---- decoding ----------------------------------------------------------------------------------------

_JSON_NAMES: Final = {"str": "string", "bool": "bool", "list": "array", "dict": "object", "int": "number",
                      "float": "number", "NoneType": "null"}
_SCALARS: Final[dict[str, tuple[type | tuple[type, ...], str]]] = {
    **{k: (str, "string") for k in ("id", "$schema", "$ref", "description", "type", "format", "title", "pattern",
                                    "x-kubernetes-list-type", "x-kubernetes-map-type")},
    **{k: (bool, "bool") for k in ("nullable", "exclusiveMaximum", "exclusiveMinimum", "uniqueItems",
                                   "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                                   "x-kubernetes-int-or-string")},
    **{k: ((int, float), "float64") for k in ("maximum", "minimum", "multipleOf")},
    **{k: (int, "int64") for k in ("maxLength", "minLength", "maxItems", "minItems", "maxProperties",
                                   "minProperties")},
    **{k: (list, "[]string") for k in ("required", "x-kubernetes-list-map-keys")},
    "enum": (list, "[]v1.JSON"), "x-kubernetes-validations": (list, "v1.ValidationRules"),
    "externalDocs": (dict, "v1.ExternalDocumentation"), "dependencies": (dict, "v1.JSONSchemaDependencies"),
}


def _mismatch(value: Any, want: type | tuple[type, ...]) -> bool:
    if value is None:
        return False
    if want is bool or isinstance(value, bool):
        return not isinstance(value, bool) or want not in (bool,) and not (isinstance(want, tuple) and bool in want)
    if want is int and isinstance(value, float):
        return not value.is_integer()
    return not isinstance(value, want)


def _decode_error(value: Any, where: str, go_type: str) -> str:
    name = _JSON_NAMES.get(type(value).__name__, "value")
    if name == "number" and go_type in ("int64", "int32"):
        name = f"number {value}"
    return f"json: cannot unmarshal {name} into Go struct field {where} of type {go_type}"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _schema_shape(schema: Any, where: str) -> str | None:
    stack: list[tuple[Any, FieldPath]] = [(schema, FieldPath(where))]
    while stack:
        s, w = stack.pop()
        if not isinstance(s, dict):
            return _decode_error(s, f"JSONSchemaProps.{w}", "v1.JSONSchemaProps")
        for key, (want, go_type) in _SCALARS.items():
            if key in s and _mismatch(s[key], want):
                return _decode_error(s[key], f"JSONSchemaProps.{w}.{key}", go_type)
            if go_type == "[]string" and isinstance(s.get(key), list):
                bad = next((x for x in s[key] if not isinstance(x, str)), None)
                if bad is not None:
                    return _decode_error(bad, f"JSONSchemaProps.{w}.{key}", "string")
        for key in ("properties", "patternProperties", "definitions"):
            if key in s and s[key] is not None:
                if not isinstance(s[key], dict):
                    return _decode_error(s[key], f"JSONSchemaProps.{w}.{key}", "map[string]v1.JSONSchemaProps")
                stack.extend((v, w.child(f".{key}.{k}")) for k, v in s[key].items())
        for key in ("allOf", "anyOf", "oneOf"):
            if key in s and s[key] is not None:
                if not isinstance(s[key], list):
                    return _decode_error(s[key], f"JSONSchemaProps.{w}.{key}", "[]v1.JSONSchemaProps")
                stack.extend((v, w.child(f".{key}")) for v in s[key])
        for key in ("not", "items", "additionalProperties", "additionalItems"):
            v = s.get(key)
            if isinstance(v, dict):
                stack.append((v, w.child(f".{key}")))
            elif key == "items" and isinstance(v, list):
                stack.extend((x, w.child(f".{key}")) for x in v)
            elif v is not None and not (key in ("additionalProperties", "additionalItems") and isinstance(v, bool)):
                return _decode_error(v, f"JSONSchemaProps.{w}.{key}", "v1.JSONSchemaProps")
    return None


def shape_error(obj: dict[str, Any]) -> str | None:
    """Why the body would fail to decode into a v1 CustomResourceDefinition, in Go's words, or None."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None if spec is None else _decode_error(spec, "CustomResourceDefinition.spec", "v1.CustomResourceDefinitionSpec")
    checks: list[tuple[Any, type, str, str]] = [
        (spec.get("group"), str, "CustomResourceDefinitionSpec.spec.group", "string"),
        (spec.get("scope"), str, "CustomResourceDefinitionSpec.spec.scope", "v1.ResourceScope"),
        (spec.get("names"), dict, "CustomResourceDefinitionSpec.spec.names", "v1.CustomResourceDefinitionNames"),
        (spec.get("versions"), list, "CustomResourceDefinitionSpec.spec.versions", "[]v1.CustomResourceDefinitionVersion"),
        (spec.get("conversion"), dict, "CustomResourceDefinitionSpec.spec.conversion", "v1.CustomResourceConversion"),
        (spec.get("preserveUnknownFields"), bool, "CustomResourceDefinitionSpec.spec.preserveUnknownFields", "bool"),
    ]
    names = _d(spec.get("names"))
    for key in ("plural", "singular", "kind", "listKind"):
        checks.append((names.get(key), str, f"CustomResourceDefinitionNames.spec.names.{key}", "string"))
    for key in ("shortNames", "categories"):
        checks.append((names.get(key), list, f"CustomResourceDefinitionNames.spec.names.{key}", "[]string"))
        checks += [(x, str, f"CustomResourceDefinitionNames.spec.names.{key}", "string") for x in _l(names.get(key))]
    versions = _l(spec.get("versions"))
    for v in versions:
        if not isinstance(v, dict):
            return _decode_error(v, "CustomResourceDefinitionSpec.spec.versions", "v1.CustomResourceDefinitionVersion")
        w = "CustomResourceDefinitionVersion.spec.versions"
        checks += [(v.get("name"), str, f"{w}.name", "string"), (v.get("served"), bool, f"{w}.served", "bool"),
                   (v.get("storage"), bool, f"{w}.storage", "bool"), (v.get("deprecated"), bool, f"{w}.deprecated", "bool"),
                   (v.get("deprecationWarning"), str, f"{w}.deprecationWarning", "string"),
                   (v.get("schema"), dict, f"{w}.schema", "v1.CustomResourceValidation"),
                   (v.get("subresources"), dict, f"{w}.subresources", "v1.CustomResourceSubresources"),
                   (v.get("additionalPrinterColumns"), list, f"{w}.additionalPrinterColumns",
                    "[]v1.CustomResourceColumnDefinition")]
        sub = _d(v.get("subresources"))
        scale = _d(sub.get("scale"))
        checks += [(sub.get("status"), dict, "CustomResourceSubresources.spec.versions.subresources.status",
                    "v1.CustomResourceSubresourceStatus"),
                   (sub.get("scale"), dict, "CustomResourceSubresources.spec.versions.subresources.scale",
                    "v1.CustomResourceSubresourceScale")]
        checks += [(scale.get(k), str, f"CustomResourceSubresourceScale.spec.versions.subresources.scale.{k}", "string")
                   for k in ("specReplicasPath", "statusReplicasPath", "labelSelectorPath")]
        for col in _l(v.get("additionalPrinterColumns")):
            if not isinstance(col, dict):
                return _decode_error(col, f"{w}.additionalPrinterColumns", "v1.CustomResourceColumnDefinition")
            cw = "CustomResourceColumnDefinition.spec.versions.additionalPrinterColumns"
            checks += [(col.get(k), str, f"{cw}.{k}", "string") for k in ("name", "type", "format", "description",
                                                                            "jsonPath")]
            checks.append((col.get("priority"), int, f"{cw}.priority", "int32"))
    for value, want, where, go_type in checks:
        if _mismatch(value, want):
            return _decode_error(value, where, go_type)
    for v in versions:
        schema = _d(v.get("schema")).get("openAPIV3Schema")
        if schema is not None:
            err = _schema_shape(schema, "spec.versions.schema.openAPIV3Schema")
            if err:
                return err
    return None


# ---- validation -------------------------------------------------------------------------------------------

def _names(names: dict[str, Any], path: str) -> list[Cause]:
    out: list[Cause] = []
    for key in ("plural", "singular"):
        value = str(names.get(key) or "")
        if value and dns1035(value):
            out.append((f"{path}.{key}", invalid(value, ",".join(dns1035(value)))))
    for key in ("kind", "listKind"):
        value = str(names.get(key) or "")
        if value and dns1035(value.lower()):
            out.append((f"{path}.{key}", invalid(value, "may have mixed case, but should otherwise match: "
                                                 + ",".join(dns1035(value.lower())))))
    for i, short in enumerate(names.get("shortNames") or []):
        if dns1035(short):
            out.append((f"{path}.shortNames[{i}]", invalid(short, ",".join(dns1035(short)))))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append((f"{path}.listKind", invalid(names["listKind"], "kind and listKind may not be the same")))
    for i, cat in enumerate(names.get("categories") or []):
        if dns1035(cat):
            out.append((f"{path}.categories[{i}]", invalid(cat, ",".join(dns1035(cat)))))
    return out


def _simple_path(value: str, path: str) -> list[Cause]:
    if not value:
        return [(path, invalid(value, "must not be empty"))]
    if not value.startswith("."):
        return [(path, invalid(value, "must be a simple json path starting with ."))]
    return []


def _subresources(sub: Any, path: str) -> list[Cause]:
    scale = sub.get("scale") if isinstance(sub, dict) else None
    if not isinstance(scale, dict):
        return []
    out: list[Cause] = []
    for key, prefix, why in (("specReplicasPath", ".spec.", "should be a json path under .spec"),
                             ("statusReplicasPath", ".status.", "should be a json path under .status")):
        value, where = str(scale.get(key) or ""), f"{path}.scale.{key}"
        if not value:
            out.append((where, required()))
        else:
            errs = _simple_path(value, where)
            out += errs or ([] if value.startswith(prefix) else [(where, invalid(value, why))])
    selector, where = str(scale.get("labelSelectorPath") or ""), f"{path}.scale.labelSelectorPath"
    if selector:
        errs = _simple_path(selector, where)
        out += errs or ([] if selector.startswith((".spec.", ".status.")) else
                        [(where, invalid(selector, "should be a json path under either .spec or .status"))])
    return out


def _column(col: dict[str, Any], path: str) -> list[Cause]:
    out: list[Cause] = []
    if not col.get("name"):
        out.append((f"{path}.name", required()))
    t = str(col.get("type") or "")
    if not t:
        out.append((f"{path}.type", required(f"must be one of {_COLUMN_TYPES}")))
    elif t not in _COLUMN_TYPES.split(","):
        out.append((f"{path}.type", invalid(t, f"must be one of {_COLUMN_TYPES}")))
    fmt = str(col.get("format") or "")
    if fmt and fmt not in _COLUMN_FORMATS.split(","):
        out.append((f"{path}.format", invalid(fmt, f"must be one of {_COLUMN_FORMATS}")))
    jp = str(col.get("jsonPath") or "")
    out += [(f"{path}.JSONPath", required())] if not jp else _simple_path(jp, f"{path}.JSONPath")
    return out


def _deprecation(version: dict[str, Any], path: str) -> list[Cause]:
    warning = version.get("deprecationWarning")
    if warning is None:
        return []
    if not version.get("deprecated"):
        return [(path, invalid(warning, "can only be set for deprecated versions"))]
    errs = ["must be <= 256 characters long"] if len(warning) > 256 else []
    errs += ["must not be an empty string"] if not warning else []
    for i, ch in enumerate(warning):
        if not ch.isprintable() and ch != " ":  # Go ranges over bytes: the index is a byte offset
            at = len(warning[:i].encode())
            errs.append(f"must only contain printable UTF-8 characters; non-printable character found at index {at}")
            break
    return [(path, invalid(warning, e)) for e in errs]


def _lifted(versions: list[dict[str, Any]], key: str) -> bool:
    """Whether v1→internal conversion moves ``key`` to the spec: every version has the same value."""
    def norm(v: Any) -> Any:
        return None if v in ([], {}) and key != "subresources" and key != "schema" else v
    return bool(versions) and len({typed_key(norm(v.get(key))) for v in versions}) == 1


def _versions_value(versions: list[dict[str, Any]], lifted: dict[str, bool]) -> list[GoStruct]:
    """The internal versions as Go's ``json.Marshal`` prints them in ``Invalid value`` (no JSON tags;
    a schema left per version is shown as its v1 JSON, where Go would print the internal struct)."""
    return [GoStruct({"Name": v.get("name") or "", "Served": bool(v.get("served")), "Storage": bool(v.get("storage")),
             "Deprecated": bool(v.get("deprecated")), "DeprecationWarning": v.get("deprecationWarning"),
             "Schema": None if lifted["schema"] else v.get("schema"),
             "Subresources": None if lifted["subresources"] else v.get("subresources"),
             "AdditionalPrinterColumns": None if lifted["additionalPrinterColumns"] else v.get("additionalPrinterColumns"),
             "SelectableFields": None if lifted["selectableFields"] else v.get("selectableFields")}) for v in versions]


def _conversion(conv: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    strategy = str(conv.get("strategy") or "")
    path = "spec.conversion"
    if not strategy:
        out.append((f"{path}.strategy", required()))
    elif strategy not in ("None", "Webhook"):
        out.append((f"{path}.strategy", not_supported(strategy, ["None", "Webhook"])))
    webhook = _d(conv.get("webhook"))
    client, reviews = webhook.get("clientConfig"), webhook.get("conversionReviewVersions")
    if strategy == "Webhook":
        if not isinstance(client, dict):
            out.append((f"{path}.webhookClientConfig", required("required when strategy is set to Webhook")))
        elif ("url" in client) == ("service" in client):
            out.append((f"{path}.webhookClientConfig", required("exactly one of url or service is required")))
        if not reviews:
            out.append((f"{path}.conversionReviewVersions", required()))
        else:
            seen: set[str] = set()
            for i, v in enumerate(reviews):
                if v in seen:
                    out.append((f"{path}.conversionReviewVersions[{i}]", invalid(v, "duplicate version")))
                    continue
                seen.add(v)
                out += [(f"{path}.conversionReviewVersions[{i}]", invalid(v, e)) for e in dns1035(str(v))]
            if not seen & {"v1", "v1beta1"}:
                out.append((f"{path}.conversionReviewVersions", invalid(reviews, "must include at least one of v1, v1beta1")))
    else:
        if client is not None:
            out.append((f"{path}.webhookClientConfig", forbidden("should not be set when strategy is not set to Webhook")))
        if reviews:
            out.append((f"{path}.conversionReviewVersions",
                        forbidden("should not be set when strategy is not set to Webhook")))
    return out


def _metadata(obj: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    meta = obj.get("metadata") or {}
    names = spec.get("names") or {}
    wanted = f"{names.get('plural') or ''}.{spec.get('group') or ''}"
    out: list[Cause] = []

    def name_errors(value: str, prefix: bool) -> list[str]:
        masked = value[:-2] + "a" if prefix and len(value) > 1 and value.endswith("-") else value
        return dns1123_subdomain(masked) + ([] if value == wanted else ['must be spec.names.plural+"."+spec.group'])

    generate = str(meta.get("generateName") or "")
    if generate:
        out += [("metadata.generateName", invalid(generate, m)) for m in name_errors(generate, True)]
    name = str(meta.get("name") or "")
    if not name:
        out.append(("metadata.name", required("name or generateName is required")))
    else:
        out += [("metadata.name", invalid(name, m)) for m in name_errors(name, False)]
    if meta.get("namespace"):
        out.append(("metadata.namespace", forbidden("not allowed on this type")))
    return out


def _spec(spec: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    group = str(spec.get("group") or "")
    if not group:
        out.append(("spec.group", required()))
    elif dns1123_subdomain(group):
        out.append(("spec.group", invalid(group, ",".join(dns1123_subdomain(group)))))
    elif "." not in group:
        out.append(("spec.group", invalid(group, "should be a domain with at least one dot")))
    scope = str(spec.get("scope") or "")
    if not scope:
        out.append(("spec.scope", required()))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(("spec.scope", not_supported(scope, ["Cluster", "Namespaced"])))
    versions: list[dict[str, Any]] = spec.get("versions") or []
    lifted = {k: _lifted(versions, k) for k in ("schema", "subresources", "additionalPrinterColumns", "selectableFields")}
    top: dict[str, Any] = {k: versions[0].get(k) if lifted[k] else None for k in lifted} if versions else \
        dict.fromkeys(lifted)
    if not isinstance((top["schema"] or {}).get("openAPIV3Schema"), dict):
        for i, v in enumerate(versions):
            if lifted["schema"] or not isinstance((v.get("schema") or {}).get("openAPIV3Schema"), dict):
                out.append((f"spec.versions[{i}].schema.openAPIV3Schema", required()))
    status_anywhere = any(isinstance((v.get("subresources") or {}).get("status"), dict) for v in versions)
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        vname = str(v.get("name") or "")
        if dns1035(vname):
            out.append((f"{path}.name", invalid(vname, ",".join(dns1035(vname)))))
        out += _deprecation(v, f"{path}.deprecationWarning")
        subs = top["subresources"] if lifted["subresources"] else v.get("subresources")
        status = isinstance((subs or {}).get("status"), dict)
        if not lifted["schema"]:
            out += schema_errors(v.get("schema"), f"{path}.schema", status_enabled=status)
        if not lifted["subresources"]:
            out += _subresources(v.get("subresources"), f"{path}.subresources")
        if not lifted["additionalPrinterColumns"]:
            for j, col in enumerate(v.get("additionalPrinterColumns") or []):
                out += _column(col, f"{path}.additionalPrinterColumns[{j}]")
    shown = _versions_value(versions, lifted)
    if len({str(v.get("name") or "") for v in versions}) != len(versions):
        out.append(("spec.versions", invalid(shown, "must contain unique version names")))
    if sum(1 for v in versions if v.get("storage") is True) != 1:
        out.append(("spec.versions", invalid(shown, "must have exactly one version marked as storage version")))
    first = str(versions[0].get("name") or "") if versions else ""
    if first and dns1035(first):
        out.append(("spec.version", invalid(first, ",".join(dns1035(first)))))
    names = spec.get("names") or {}
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            out.append((f"spec.names.{key}", required()))
    out += _names(names, "spec.names")
    out += schema_errors(top["schema"], "spec.validation", status_enabled=status_anywhere)
    out += _subresources(top["subresources"], "spec.subresources")
    for j, col in enumerate(top["additionalPrinterColumns"] or []):
        out += _column(col, f"spec.additionalPrinterColumns[{j}]")
    return out + _conversion(spec.get("conversion") or {})


def _stored_versions(stored: list[str], versions: list[dict[str, Any]]) -> list[Cause]:
    path = "status.storedVersions"
    if not stored:
        return [(path, invalid(None, "must have at least one stored version"))]
    out: list[Cause] = []
    names = [v.get("name") for v in versions]
    for v in versions:
        if v.get("storage") and v.get("name") not in stored:
            out.append((path, invalid(stored, f"must have the storage version {v.get('name')}")))
    for i, s in enumerate(stored):
        if s not in names and s not in stored[:i]:
            last = len(stored) - 1 - stored[::-1].index(s)  # upstream keys a map by version: the last index wins
            out.append((f"{path}[{last}]", invalid(s, (
                f"missing from spec.versions; {s} was previously a storage version, and must remain in spec.versions "
                f"until a storage migration ensures no data remains persisted in {s} and removes {s} from "
                "status.storedVersions"))))
    return out


def definition_errors(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Every cause kube-apiserver reports for a defaulted CRD (``old``: the stored one, on update)."""
    spec: dict[str, Any] = obj["spec"]
    out = _metadata(obj, spec) if old is None else []
    out += _spec(spec)
    if old is not None:
        old_spec = old.get("spec") or {}
        conds = (old.get("status") or {}).get("conditions") or []
        established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)
        immutable = [("scope", "spec.scope"), ("names.kind", "spec.names.kind")] if established else []
        immutable += [("group", "spec.group"), ("names.plural", "spec.names.plural")]
        for key, path in immutable:
            new_v: Any = spec
            old_v: Any = old_spec
            for part in key.split("."):
                new_v, old_v = _d(new_v).get(part), _d(old_v).get(part)
            if (new_v or "") != (old_v or ""):
                out.append((path, invalid(new_v or "", "field is immutable")))
    status = obj.get("status") or {}
    out += _names(status.get("acceptedNames") or {}, "status.acceptedNames")
    out += _stored_versions(list(status.get("storedVersions") or []), spec.get("versions") or [])
    group = str(spec.get("group") or "")
    if protected_group(group):
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        state, reason = approval_state(annotations)
        old_state = approval_state((old.get("metadata") or {}).get("annotations") or {})[0] if old else None
        where = f"metadata.annotations[{APPROVAL_ANNOTATION}]"
        if state != old_state and state == "Missing":
            out.append((where, required(reason)))
        elif state != old_state and state == "Invalid":
            out.append((where, invalid(annotations.get(APPROVAL_ANNOTATION), reason)))
    old_preserve = old is not None and (old.get("spec") or {}).get("preserveUnknownFields") is True
    if spec.get("preserveUnknownFields") is True and not old_preserve:
        out.append(("spec.preserveUnknownFields", invalid(True, "cannot set to true, set x-kubernetes-preserve-unknown-"
                                                                "fields to true in spec.versions[*].schema instead")))
    return out
