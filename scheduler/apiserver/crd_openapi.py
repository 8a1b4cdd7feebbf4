"""The checks kube-apiserver runs on a CRD's ``openAPIV3Schema`` before accepting it.

A CustomResourceDefinition is only served if its schema is *structural*
(every node typed, value validations kept apart from structure, root metadata
left implicit), uses only the supported JSON-Schema subset, declares list and
map semantics consistently and carries defaults that are valid and pruned.
Authors learn what to fix from the 422's causes (``spec.validation.
openAPIV3Schema.properties[spec].type: Required value: must not be empty for
specified object fields``), so the checks, their order and their wording
follow apiextensions-apiserver's ``validation.go`` and ``schema/validation.go``.

CEL rules (``x-kubernetes-validations``) get only their shape checked; their
expressions are neither compiled nor costed.
"""

from __future__ import annotations

from typing import Any, Final

from .crd_go import FieldPath, Walk, copy_json, forbidden, invalid, not_supported, required, run, typed_key
from .crd_schema import prune
from .crd_validate import compile_pattern, compile_schema, validate

__all__ = ["schema_errors"]

Cause = tuple[str, str]

_TYPES: Final = ["array", "boolean", "integer", "number", "object", "string"]
_META: Final = ("metadata", "kind", "apiVersion")
# JSONSchemaProps' fields in Go struct order (json name, Go name), for the status-subresource root check.
_FIELDS: Final = [
    ("id", "ID"), ("$schema", "Schema"), ("$ref", "Ref"), ("description", "Description"), ("type", "Type"),
    ("nullable", "Nullable"), ("format", "Format"), ("title", "Title"), ("default", "Default"),
    ("maximum", "Maximum"), ("exclusiveMaximum", "ExclusiveMaximum"), ("minimum", "Minimum"),
    ("exclusiveMinimum", "ExclusiveMinimum"), ("maxLength", "MaxLength"), ("minLength", "MinLength"),
    ("pattern", "Pattern"), ("maxItems", "MaxItems"), ("minItems", "MinItems"), ("uniqueItems", "UniqueItems"),
    ("multipleOf", "MultipleOf"), ("enum", "Enum"), ("maxProperties", "MaxProperties"),
    ("minProperties", "MinProperties"), ("required", "Required"), ("items", "Items"), ("allOf", "AllOf"),
    ("oneOf", "OneOf"), ("anyOf", "AnyOf"), ("not", "Not"), ("properties", "Properties"),
    ("additionalProperties", "AdditionalProperties"), ("patternProperties", "PatternProperties"),
    ("dependencies", "Dependencies"), ("additionalItems", "AdditionalItems"), ("definitions", "Definitions"),
    ("externalDocs", "ExternalDocs"), ("example", "Example"),
    ("x-kubernetes-preserve-unknown-fields", "XPreserveUnknownFields"),
    ("x-kubernetes-embedded-resource", "XEmbeddedResource"), ("x-kubernetes-int-or-string", "XIntOrString"),
    ("x-kubernetes-list-map-keys", "XListMapKeys"), ("x-kubernetes-list-type", "XListType"),
    ("x-kubernetes-map-type", "XMapType"), ("x-kubernetes-validations", "XValidations")]
_ROOT_ALLOWED: Final = ["Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum",
                        "ExclusiveMinimum", "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems",
                        "UniqueItems", "MultipleOf", "Required", "Items", "Properties", "ExternalDocs", "Example",
                        "XPreserveUnknownFields", "XValidations"]
_INT_OR_STRING_ANY_OF: Final = [{"type": "integer"}, {"type": "string"}]
_REASONS: Final = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]
_NESTED_FORBIDDEN: Final = [  # what a value validation (inside allOf/anyOf/oneOf/not) may not carry
    ("type", "must be empty to be structural"), ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"), ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"), ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural")]


def _set(s: dict[str, Any], key: str) -> bool:
    """Whether a field is non-zero in Go terms (false, "", null and {} properties count as unset)."""
    v = s.get(key)
    if key in ("properties", "patternProperties", "definitions"):
        return isinstance(v, dict) and bool(v)
    return v is not None and v is not False and v != ""


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _subs(s: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    v = s.get(key)
    return [(i, x) for i, x in enumerate(v) if isinstance(x, dict)] if isinstance(v, list) else []


# ---- structural ------------------------------------------------------------------------------------

def _value_validation(v: dict[str, Any], path: FieldPath, *, skip_any_of: bool, skip_first_all_of_any_of: bool,
                      work: list[Any]) -> list[Cause]:
    if not skip_any_of:
        work.extend(("nested", x, path.child(f".anyOf[{i}]"), False, False) for i, x in _subs(v, "anyOf"))
    for i, x in _subs(v, "allOf"):
        skip = skip_first_all_of_any_of and i == 0
        work.append(("nested", x, path.child(f".allOf[{i}]"), skip, False))
    work.extend(("nested", x, path.child(f".oneOf[{i}]"), False, False) for i, x in _subs(v, "oneOf"))
    if isinstance(v.get("not"), dict):
        work.append(("nested", v["not"], path.child(".not"), False, False))
    if isinstance(v.get("pattern"), str) and v["pattern"]:
        regex, err = compile_pattern(v["pattern"])
        if regex is None:
            return [(f"{path}.pattern", invalid(v["pattern"], f"must be a valid regular expression, but isn't: {err}"))]
    return []


def _nested(v: dict[str, Any], path: FieldPath, skip_any_of: bool, work: list[Any]) -> list[Cause]:
    out = _value_validation(v, path, skip_any_of=skip_any_of, skip_first_all_of_any_of=False, work=work)
    if isinstance(v.get("items"), dict):
        work.append(("nested", v["items"], path.child(".items"), False, False))
    for k, x in _dict(v.get("properties")).items():
        if isinstance(x, dict):
            work.append(("nested", x, path.child(f".properties[{k}]"), False, False))
    for key, why in _NESTED_FORBIDDEN:
        if _set(v, key) and not (key == "x-kubernetes-list-map-keys" and v[key] == []):
            out.append((f"{path}.{key}", forbidden(why)))
    if "metadata" in _dict(v.get("properties")):
        out.append((f"{path}.properties[metadata]", forbidden("must not be specified in a nested context")))
    return out


_STRUCTURAL: Final = ("description", "title", "nullable", "x-kubernetes-preserve-unknown-fields",
                      "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys",
                      "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations", "format",
                      "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
                      "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
                      "minProperties", "required", "allOf", "oneOf", "anyOf", "not", "items",
                      "additionalProperties")
"""The fields of a structural schema besides type, default and properties."""


def _metadata(m: dict[str, Any], path: FieldPath, *, check: bool, root: bool) -> list[Cause]:
    out = []
    if check and m.get("type") != "object":
        out.append((f"{path}.type", invalid(m.get("type") or "", "must be object")))
    # At the root, metadata is implicit: only name and generateName may be restricted.
    if root and (set(_dict(m.get("properties"))) - {"name", "generateName"} or any(_set(m, k) for k in _STRUCTURAL)):
        out.append((str(path), forbidden("must not specify anything other than name and generateName, but metadata "
                                    "is implicitly specified")))
    return out


def _structural_node(s: dict[str, Any], lvl: str, path: FieldPath, work: list[Any]) -> list[Cause]:
    out: list[Cause] = []
    t = s.get("type") if isinstance(s.get("type"), str) else ""
    if t == "array" and not isinstance(s.get("items"), dict):
        out.append((f"{path}.items", required("must be specified")))
    if isinstance(s.get("items"), dict):
        work.append(("struct", s["items"], "item", path.child(".items")))
    props = _dict(s.get("properties"))
    for k, x in props.items():
        if isinstance(x, dict):
            work.append(("struct", x, "field", path.child(f".properties[{k}]")))
    add = s.get("additionalProperties")
    if add is not None:
        if lvl == "root":
            out.append((f"{path}.additionalProperties", forbidden("must not be used at the root")))
        if isinstance(add, dict):
            work.append(("struct", add, "field", path.child(".additionalProperties")))
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = s.get("x-kubernetes-embedded-resource") is True
    if int_or_string and preserve:
        out.append((f"{path}.x-kubernetes-preserve-unknown-fields",
                    invalid(True, "must be false if x-kubernetes-int-or-string is true")))
    if int_or_string and embedded:
        out.append((f"{path}.x-kubernetes-embedded-resource",
                    invalid(True, "must be false if x-kubernetes-int-or-string is true")))
    all_of = s.get("allOf")
    first_all_of = all_of[0] if isinstance(all_of, list) and all_of and isinstance(all_of[0], dict) else {}
    out += _value_validation(s, path, skip_any_of=s.get("anyOf") == _INT_OR_STRING_ANY_OF,
                             skip_first_all_of_any_of=first_all_of.get("anyOf") == _INT_OR_STRING_ANY_OF, work=work)
    if embedded and t != "object":
        why = "must be object if x-kubernetes-embedded-resource is true"
        out.append((f"{path}.type", required(why) if not t else invalid(t, why)))
    elif not t and not int_or_string and not preserve:
        why = {"root": "must not be empty at the root", "item": "must not be empty for specified array items",
               "field": "must not be empty for specified object fields"}[lvl]
        out.append((f"{path}.type", required(why)))
    if embedded and add is not None:
        out.append((f"{path}.additionalProperties", forbidden("must not be used if x-kubernetes-embedded-resource is set")))
    if lvl == "root" and t and t != "object":
        out.append((f"{path}.type", invalid(t, "must be object at the root")))
    check_meta = lvl == "root" or embedded
    for k in ("kind", "apiVersion"):
        if k in props and check_meta and _dict(props[k]).get("type") != "string":
            out.append((f"{path}.properties[{k}].type", invalid(_dict(props[k]).get("type") or "", "must be string")))
    if "metadata" in props:
        out += _metadata(_dict(props["metadata"]), path.child(".properties[metadata]"), check=check_meta,
                         root=lvl == "root")
    if embedded and not preserve and not props:
        out.append((f"{path}.properties", required("must not be empty if x-kubernetes-embedded-resource is true "
                                                   "without x-kubernetes-preserve-unknown-fields")))
    return out


def _completeness(root: dict[str, Any], path: FieldPath) -> list[Cause]:
    """Value validations under the root may only name fields the structure has (upstream checks the root only)."""
    out: list[Cause] = []
    work: list[tuple[dict[str, Any], dict[str, Any] | None, FieldPath, FieldPath]] = []

    def value(v: dict[str, Any], s: dict[str, Any] | None, s_path: FieldPath, v_path: FieldPath) -> None:
        for key in ("allOf", "anyOf", "oneOf"):
            work.extend((x, s, s_path, v_path.child(f".{key}[{i}]")) for i, x in _subs(v, key))
        if isinstance(v.get("not"), dict):
            work.append((v["not"], s, s_path, v_path.child(".not")))

    value(root, root, path, path)
    while work:
        v, s, s_path, v_path = work.pop()
        if s is None:
            out.append((str(s_path), required(f"because it is defined in {v_path}")))
            continue
        value(v, s, s_path, v_path)
        if isinstance(v.get("items"), dict):
            s_items = s.get("items") if isinstance(s.get("items"), dict) else None
            work.append((v["items"], s_items, s_path.child(".items"), v_path.child(".items")))
        s_props = _dict(s.get("properties"))
        for k, x in _dict(v.get("properties")).items():
            if isinstance(x, dict):
                work.append((x, _dict(s_props[k]) if k in s_props else None,
                             s_path.child(f".properties[{k}]"), v_path.child(f".properties[{k}]")))
    return out


def _structural(schema: dict[str, Any], path: FieldPath) -> list[Cause]:
    """``ValidateStructural``: its errors, sorted by their text as upstream sorts them."""
    out: list[Cause] = []
    work: list[Any] = [("struct", schema, "root", path)]
    while work:
        item = work.pop()
        if item[0] == "struct":
            out += _structural_node(item[1], item[2], item[3], work)
        else:
            out += _nested(item[1], item[2], item[3], work)
    out += _completeness(schema, path)
    return sorted(out, key=lambda c: f"{c[0]}: {c[1]}")


def _defaults(schema: dict[str, Any], path: FieldPath) -> list[Cause]:
    """``ValidateDefaults``: each default outside metadata is pruned already and valid for its schema."""
    out: list[Cause] = []
    work: list[tuple[dict[str, Any], FieldPath, bool, bool]] = [(schema, path, False, True)]
    while work:
        s, p, inside_meta, is_root = work.pop()
        embedded = is_root or s.get("x-kubernetes-embedded-resource") is True
        if embedded:
            inside_meta = False
        if s.get("default") is not None and not inside_meta:
            node = compile_schema(s)
            pruned = copy_json(s["default"])
            prune(pruned, node, root=embedded)
            if typed_key(pruned) != typed_key(s["default"]):
                out.append((f"{p}.default", invalid(s["default"], "must not have unknown fields")))
            out += validate(node, s["default"], prefix=f"{p}.default")
        children = []
        if isinstance(s.get("items"), dict):
            children.append((s["items"], p.child(".items"), inside_meta, False))
        for k, x in _dict(s.get("properties")).items():
            if isinstance(x, dict):
                children.append((x, p.child(f".properties[{k}]"), inside_meta or (embedded and k in _META), False))
        work.extend(reversed(children))
    return out


# ---- the OpenAPI subset ------------------------------------------------------------------------------

def _ssv(s: dict[str, Any], path: FieldPath, *, defaults_forbidden: str | None, inside_meta: bool) -> list[Cause]:
    out: list[Cause] = []
    t = s.get("type")
    if isinstance(t, str) and t and t not in _TYPES:
        out.append((f"{path}.type", not_supported(t, _TYPES)))
    if "default" in s and defaults_forbidden is not None:
        out.append((f"{path}.default", forbidden(f"must not be set {defaults_forbidden}".rstrip())))
    for key, what in (("id", "id"), ("additionalItems", "additionalItems"), ("patternProperties", "patternProperties"),
                      ("definitions", "definitions"), ("dependencies", "dependencies"), ("$ref", "$ref")):
        if _set(s, key):
            out.append((f"{path}.{key}", forbidden(f"{what} is not supported")))
    if t == "null":
        out.append((f"{path}.type", forbidden("type cannot be set to null, use nullable as an alternative")))
    if isinstance(s.get("items"), list) and s["items"]:
        out.append((f"{path}.items", forbidden("items must be a schema object and not an array")))
    if inside_meta and s.get("x-kubernetes-embedded-resource") is True:
        out.append((f"{path}.x-kubernetes-embedded-resource", forbidden("must not be used inside of resource meta")))
    return out


def _list_and_map(s: dict[str, Any], path: FieldPath) -> list[Cause]:
    out: list[Cause] = []
    t = s.get("type") or ""
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        out.append((f"{path}.x-kubernetes-preserve-unknown-fields", invalid(False, "must be true or undefined")))
    mt, lt = s.get("x-kubernetes-map-type"), s.get("x-kubernetes-list-type")
    if mt is not None and t != "object":
        why = "must be object if x-kubernetes-map-type is specified"
        out.append((f"{path}.type", required(why) if not t else invalid(t, why)))
    if mt is not None and mt not in ("atomic", "granular"):
        out.append((f"{path}.x-kubernetes-map-type", not_supported(mt, ["atomic", "granular"])))
    items = s.get("items")
    if lt is not None and t != "array":
        why = "must be array if x-kubernetes-list-type is specified"
        out.append((f"{path}.type", required(why) if not t else invalid(t, why)))
    elif lt == "set" and isinstance(items, dict):
        why = "must be atomic as item of a list with x-kubernetes-list-type=set"
        if items.get("type") == "array" and items.get("x-kubernetes-list-type") not in (None, "atomic"):
            out.append((f"{path}.items.x-kubernetes-list-type", invalid(items["x-kubernetes-list-type"], why)))
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            out.append((f"{path}.items.x-kubernetes-map-type", invalid(items.get("x-kubernetes-list-type"), why)))
    if lt is not None and lt not in ("atomic", "set", "map"):
        out.append((f"{path}.x-kubernetes-list-type", not_supported(lt, ["atomic", "set", "map"])))
    keys = s.get("x-kubernetes-list-map-keys") or []
    if keys:
        why = "must be map if x-kubernetes-list-map-keys is non-empty"
        if lt is None:
            out.append((f"{path}.x-kubernetes-list-type", required(why)))
        elif lt != "map":
            out.append((f"{path}.x-kubernetes-list-type", invalid(lt, why)))
    if lt == "map":
        if not keys:
            out.append((f"{path}.x-kubernetes-list-map-keys", required("must not be empty if x-kubernetes-list-type is map")))
        if items is None:
            out.append((f"{path}.items", required("must have a schema if x-kubernetes-list-type is map")))
        elif not isinstance(items, dict):
            out.append((f"{path}.items", invalid(items, "must only have a single schema if x-kubernetes-list-type is map")))
        elif items.get("type") != "object":
            out.append((f"{path}.items.type", invalid(items.get("type") or "",
                                                     "must be object if parent array's x-kubernetes-list-type is map")))
        else:
            props, seen = _dict(items.get("properties")), set()
            for k in keys:
                if k in props:
                    if _dict(props[k]).get("type") in ("array", "object"):
                        out.append((f"{path}.items.properties[{k}].type", invalid(
                            "object", "must be a scalar type if parent array's x-kubernetes-list-type is map")))
                else:
                    out.append((f"{path}.x-kubernetes-list-map-keys",
                                invalid(keys, "entries must all be names of item properties")))
                if k in seen:
                    out.append((f"{path}.x-kubernetes-list-map-keys", invalid(keys, "must not contain duplicate entries")))
                seen.add(k)
    if lt in ("set", "map") and isinstance(items, dict):
        if items.get("nullable") is True:
            out.append((f"{path}.items.nullable", forbidden(f"cannot be nullable when x-kubernetes-list-type is {lt}")))
        if lt == "map":
            props, req = _dict(items.get("properties")), items.get("required") or []
            for k in keys:
                if k not in props:
                    continue
                if k not in req and _dict(props[k]).get("default") is None:
                    out.append((f"{path}.items.properties[{k}].default", required(
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required "
                        "property")))
                if _dict(props[k]).get("nullable") is True:
                    out.append((f"{path}.items.properties[{k}].nullable", forbidden(
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable")))
    return out


def _rules(s: dict[str, Any], path: FieldPath) -> list[Cause]:
    """The shape of ``x-kubernetes-validations`` (the CEL itself is not compiled)."""
    out: list[Cause] = []
    for i, rule in enumerate(s.get("x-kubernetes-validations") or []):
        if not isinstance(rule, dict):
            continue
        p = f"{path}.x-kubernetes-validations[{i}]"
        text, msg = str(rule.get("rule") or ""), str(rule.get("message") or "")
        if not text.strip():
            out.append((f"{p}.rule", required("rule is not specified")))
        elif msg and not msg.strip():
            out.append((f"{p}.message", invalid(msg, "must be non-empty if specified")))
        elif "\n" in msg.strip() or "\r" in msg.strip():
            out.append((f"{p}.message", invalid(msg, "must not contain line breaks")))
        elif ("\n" in text.strip() or "\r" in text.strip()) and not msg.strip():
            out.append((f"{p}.message", required("message must be specified if rule contains line breaks")))
        expr = str(rule.get("messageExpression") or "")
        if expr and not expr.strip():
            out.append((f"{p}.messageExpression", required("messageExpression must be non-empty if specified")))
        if rule.get("reason") is not None and rule["reason"] not in _REASONS:
            out.append((f"{p}.reason", not_supported(rule["reason"], _REASONS)))
    return out


def _openapi(s: dict[str, Any], path: FieldPath, is_root: bool, defaults_forbidden: str | None,
             inside_meta: bool) -> Walk[list[Cause]]:
    """``ValidateCustomResourceDefinitionOpenAPISchema``, depth first in upstream's order."""
    out = _ssv(s, path, defaults_forbidden=defaults_forbidden, inside_meta=inside_meta)
    if s.get("uniqueItems") is True:
        out.append((f"{path}.uniqueItems",
                    forbidden("uniqueItems cannot be set to true since the runtime complexity becomes quadratic")))
    props = _dict(s.get("properties"))
    add = s.get("additionalProperties")
    if add is not None:
        if props and (add is False or isinstance(add, dict)):
            out.append((f"{path}.additionalProperties", forbidden("additionalProperties and properties are mutual exclusive")))
        if isinstance(add, dict):
            why = "inside additionalProperties applying to object metadata" if inside_meta else defaults_forbidden
            out += yield _openapi(add, path.child(".additionalProperties"), False, why, inside_meta)
    embedded = s.get("x-kubernetes-embedded-resource") is True
    for k, x in props.items():
        if not isinstance(x, dict):
            continue
        meta = (is_root or embedded) and k in _META
        why = f"in top-level {k}" if is_root and meta else defaults_forbidden
        out += yield _openapi(x, path.child(f".properties[{k}]"), False, why, inside_meta or meta)
    if isinstance(s.get("not"), dict):
        out += yield _openapi(s["not"], path.child(".not"), False, defaults_forbidden, inside_meta)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, x in _subs(s, key):
            out += yield _openapi(x, path.child(f".{key}[{i}]"), False, defaults_forbidden, inside_meta)
    for k, x in _dict(s.get("definitions")).items():
        if isinstance(x, dict):
            out += yield _openapi(x, path.child(f".definitions[{k}]"), False, defaults_forbidden, inside_meta)
    items = s.get("items")
    if isinstance(items, dict):
        out += yield _openapi(items, path.child(".items"), False, defaults_forbidden, inside_meta)
    elif isinstance(items, list):
        for i, x in enumerate(items):
            if isinstance(x, dict):
                out += yield _openapi(x, path.child(f".items[{i}]"), False, defaults_forbidden, inside_meta)
    for k, x in _dict(s.get("dependencies")).items():
        if isinstance(x, dict):
            out += yield _openapi(x, path.child(f".dependencies[{k}]"), False, defaults_forbidden, inside_meta)
    return out + _list_and_map(s, path) + _rules(s, path)


def _root_fields(schema: dict[str, Any], path: str) -> list[Cause]:
    """With a status subresource only some fields may sit at the root (status is cut out as a property)."""
    for key, name in _FIELDS:
        if key not in schema or schema[key] is None or schema[key] is False or schema[key] == "":
            continue
        if name == "Type":
            if schema[key] != "object":
                return [(f"{path}.openAPIV3Schema.type", invalid(schema[key], 'only "object" is allowed as the type '
                                                                 "at the root of the schema if the status subresource "
                                                                 "is enabled"))]
            continue
        if name not in _ROOT_ALLOWED:
            return [(f"{path}.openAPIV3Schema", invalid(schema, f"only [{' '.join(_ROOT_ALLOWED)}] fields are allowed "
                                                                "at the root of the schema if the status subresource "
                                                                "is enabled"))]
    return []


def schema_errors(validation: Any, path: str, *, status_enabled: bool) -> list[Cause]:
    """``validateCustomResourceDefinitionValidation`` for one ``{openAPIV3Schema: ...}`` at ``path``."""
    if not isinstance(validation, dict) or not isinstance(validation.get("openAPIV3Schema"), dict):
        return []
    schema: dict[str, Any] = validation["openAPIV3Schema"]
    root = FieldPath(f"{path}.openAPIV3Schema")
    out = _root_fields(schema, path) if status_enabled else []
    if schema.get("nullable") is True:
        out.append((f"{root}.nullable", forbidden("nullable cannot be true at the root")))
    structural = _structural(schema, root)
    out += structural or _defaults(schema, root)
    out += run(_openapi(schema, root, True, None, False))
    return out
