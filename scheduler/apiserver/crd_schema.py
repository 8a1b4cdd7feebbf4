"""What a custom object goes through before it is stored: pruning, defaults, validation.

kube-apiserver decodes a custom object against its CRD version's structural
schema in a fixed order, and clients depend on every step: unknown fields are
dropped (and reported as ``unknown field "spec.foo"`` warnings, or a 400 under
``fieldValidation=Strict``), nulls in non-nullable fields vanish, ``default``
values are filled in (including inside objects that were just defaulted),
and only then is the object validated, every failure collected into one 422.
``StructuralSchema`` is that pipeline for one served version; it is the
``ObjectSchema`` a custom ``ResourceType`` carries.

Not implemented: CEL rules (``x-kubernetes-validations`` are accepted and
ignored), validation ratcheting on update (upstream forgives unchanged invalid
fields), and ObjectMeta validation of embedded resources beyond their
``apiVersion``/``kind``. All walks are iterative, so hostile nesting cannot
reach Python's recursion limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from . import errors
from .crd_go import FieldPath, copy_json, duplicate, go_json, go_v, invalid, kind_of, required
from .crd_validate import Node, compile_schema, validate
from .fieldvalidation import strict_error
from .resources import ObjectSchema, ScalePaths

__all__ = ["StructuralSchema", "prune", "apply_defaults", "OBJECT_META_FIELDS"]

_META: Final = frozenset({"apiVersion", "kind", "metadata"})
OBJECT_META_FIELDS: Final = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields"})
"""The JSON fields of ``metav1.ObjectMeta``; anything else under ``metadata`` is unknown."""
_DNS1035: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_INT32_MAX: Final = 2**31 - 1


def _join(path: FieldPath | None, key: str) -> FieldPath:
    """``path.key`` (just ``key`` at the root), as upstream's unknown-field and field paths read."""
    return FieldPath(key) if path is None else path.child(f".{key}")


def _sub(path: FieldPath | None, part: object) -> FieldPath:
    """``path[part]``: an index, or a map key where upstream uses ``field.Path.Key``."""
    return FieldPath(f"[{part}]") if path is None else path.child(f"[{part}]")


def prune(obj: Any, node: Node | None, *, root: bool) -> list[str]:
    """Drop the fields ``node`` does not specify; return their paths, sorted (``pruning.Prune``).

    ``root`` treats ``obj`` as a resource, whose ``apiVersion``/``kind``/``metadata`` are kept."""
    unknown: list[str] = []
    stack: list[tuple[Any, Node | None, FieldPath | None, bool, bool]] = [(obj, node, None, root, False)]
    while stack:
        x, s, path, is_root, skipping = stack.pop()
        if s is not None and s.preserve and not skipping:
            skipping = True
        embedded = is_root or (s is not None and s.embedded)
        if isinstance(x, dict):
            if s is None:
                if not skipping:
                    unknown.extend(str(_join(path, k)) for k in x)
                    x.clear()
                continue
            for k in list(x):
                if embedded and k in _META:
                    continue
                if k in s.properties:
                    if isinstance(x[k], (dict, list)):
                        stack.append((x[k], s.properties[k], _join(path, k), False, False))
                elif s.additional_allows is not None:
                    if isinstance(x[k], (dict, list)):
                        stack.append((x[k], s.additional, _join(path, k), False, False))
                elif not skipping:
                    if k not in _META or path is not None:
                        unknown.append(str(_join(path, k)))
                    del x[k]
        elif isinstance(x, list):
            if skipping and s is None:
                continue
            items = s.items if s is not None else None
            stack.extend((v, items, _sub(path, i), False, skipping) for i, v in enumerate(x) if isinstance(v, (dict, list)))
    return sorted(unknown)


def _prune_nulls(obj: Any, node: Node | None) -> None:
    """``PruneNonNullableNullsWithoutDefaults``: a null where the schema allows no null and has no default goes."""
    stack: list[tuple[Any, Node | None]] = [(obj, node)]
    while stack:
        x, s = stack.pop()
        if isinstance(x, dict):
            for k in list(x):
                sub = None if s is None else s.properties.get(k, s.additional)
                if x[k] is None and sub is not None and not sub.nullable and not sub.has_default:
                    del x[k]
                elif isinstance(x[k], (dict, list)):
                    stack.append((x[k], sub))
        elif isinstance(x, list):
            items = s.items if s is not None else None
            stack.extend((v, items) for v in x if isinstance(v, (dict, list)))


def apply_defaults(obj: Any, node: Node | None) -> None:
    """Fill ``default`` values as kube-apiserver does, including inside values just defaulted."""
    stack: list[tuple[Any, Node | None]] = [(obj, node)]
    while stack:
        x, s = stack.pop()
        if s is None:
            continue
        if isinstance(x, dict):
            for k, prop in s.properties.items():
                if prop.has_default and (k not in x or (x[k] is None and not prop.nullable)):
                    x[k] = copy_json(prop.default)
            for k in x:
                if k in s.properties:
                    if isinstance(x[k], (dict, list)):
                        stack.append((x[k], s.properties[k]))
                elif s.additional_allows is not None and s.additional is not None:
                    add = s.additional
                    if x[k] is None and not add.nullable and add.has_default:
                        x[k] = copy_json(add.default)
                    if isinstance(x[k], (dict, list)):
                        stack.append((x[k], add))
        elif isinstance(x, list) and s.items is not None:
            items = s.items
            for i in range(len(x)):
                if x[i] is None and not items.nullable and items.has_default:
                    x[i] = copy_json(items.default)
                if isinstance(x[i], (dict, list)):
                    stack.append((x[i], items))


def _drop_unknown_meta(meta: Any, prefix: str) -> list[str]:
    if not isinstance(meta, dict):
        return []
    unknown = [f"{prefix}.{k}" for k in meta if k not in OBJECT_META_FIELDS]
    for path in unknown:
        del meta[path[len(prefix) + 1:]]
    return unknown


def _coerce_embedded(obj: Any, node: Node) -> list[str]:
    """``objectmeta.Coerce``: embedded resources keep only ObjectMeta fields in their metadata."""
    unknown: list[str] = []
    stack: list[tuple[Any, Node | None, FieldPath | None]] = [(obj, node, None)]
    while stack:
        x, s, path = stack.pop()
        if s is None:
            continue
        if isinstance(x, dict):
            if s.embedded and path is not None:
                for k in ("apiVersion", "kind"):
                    if k in x and not isinstance(x[k], str):
                        raise errors.bad_request(f"{_join(path, k)}: {invalid(x[k], 'must be a string')}")
                unknown.extend(_drop_unknown_meta(x.get("metadata"), str(_join(path, "metadata"))))
            for k, v in x.items():
                if not isinstance(v, (dict, list)):
                    continue
                if k in s.properties:
                    stack.append((v, s.properties[k], _join(path, k)))
                elif s.additional_allows is not None:
                    stack.append((v, s.additional, _sub(path, k)))
        elif isinstance(x, list):
            stack.extend((v, s.items, _sub(path, i)) for i, v in enumerate(x) if isinstance(v, (dict, list)))
    return sorted(unknown)


def _embedded_errors(obj: Any, node: Node) -> list[tuple[str, str]]:
    """``objectmeta.Validate`` for embedded resources: apiVersion and kind are present and well formed."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, Node | None, FieldPath | None]] = [(obj, node, None)]
    while stack:
        x, s, path = stack.pop()
        if s is None:
            continue
        if isinstance(x, dict):
            if s.embedded and path is not None:
                out.extend(_typemeta_errors(x, str(path)))
            children: list[tuple[Any, Node | None, FieldPath | None]] = []
            for k, v in x.items():
                if not isinstance(v, (dict, list)):
                    continue
                if k in s.properties:
                    children.append((v, s.properties[k], _join(path, k)))
                elif s.additional_allows is not None:
                    children.append((v, s.additional, _sub(path, k)))
            stack.extend(reversed(children))
        elif isinstance(x, list):
            stack.extend(reversed([(v, s.items, _sub(path, i)) for i, v in enumerate(x) if isinstance(v, (dict, list))]))
    return out


def _typemeta_errors(x: dict[str, Any], path: str) -> list[tuple[str, str]]:
    out = [(f"{path}.{k}", required()) for k in ("apiVersion", "kind") if k not in x]
    for k, v in x.items():
        where = f"{path}.{k}"
        if k not in ("apiVersion", "kind"):
            continue
        if not isinstance(v, str):
            out.append((where, invalid(v, "must be a string")))
        elif not v:
            out.append((where, invalid(v, "must not be empty")))
        elif k == "apiVersion" and v.count("/") > 1:
            out.append((where, invalid(v, f"unexpected GroupVersion string: {v}")))
        elif k == "kind" and (len(v) > 63 or not _DNS1035.match(v.lower())):
            out.append((where, invalid(v, "may have mixed case, but should otherwise match: a DNS-1035 label must "
                                          "consist of lower case alphanumeric characters or '-', start with an "
                                          "alphabetic character, and end with an alphanumeric character (e.g. "
                                          "'my-name',  or 'abc-123', regex used for validation is "
                                          "'[a-z]([-a-z0-9]*[a-z0-9])?')")))
    return out


def _duplicates(values: list[Any]) -> list[int]:
    """Indexes of second occurrences, as ``validateListSet`` reports them (objects compared as JSON)."""
    seen: dict[Any, int] = {}
    out = []
    for i, v in enumerate(values):
        key: Any = ("j", go_json(v)) if isinstance(v, (dict, list)) else (kind_of(v), v)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            out.append(i)
    return out


def _list_errors(at: FieldPath | None, s: Node, x: list[Any]) -> list[tuple[str, str]]:
    path = "" if at is None else str(at)
    if s.list_type == "set":
        return [(f"{path}[{i}]", duplicate(x[i])) for i in _duplicates(x)]
    if s.list_type != "map":
        return []
    for i, v in enumerate(x):
        if v is not None and not isinstance(v, dict):
            return [(f"{path}[{i}]", invalid(v, "must be an object for an array of list-type map"))]
    if len(x) <= 1:
        return []
    if len(s.map_keys) == 1:
        k = s.map_keys[0]
        missing = object()
        keys = [missing if v is None or k not in v else v[k] for v in x]
        marked = [{"\x00missing": True} if key is missing else key for key in keys]
        return [(f"{path}[{i}]", duplicate({} if keys[i] is missing else {k: keys[i]})) for i in _duplicates(marked)]
    maps = [{k: v[k] for k in s.map_keys if k in v} if v is not None else {} for v in x]
    return [(f"{path}[{i}]", duplicate(maps[i])) for i in _duplicates(maps)]


def _list_type_errors(obj: Any, node: Node) -> list[tuple[str, str]]:
    """``listtype.ValidateListSetsAndMaps``: sets hold no duplicates, maps no duplicate keys."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, Node, FieldPath | None]] = [(obj, node, None)]
    while stack:
        x, s, path = stack.pop()
        children: list[tuple[Any, Node, FieldPath | None]] = []
        if isinstance(x, dict):  # upstream walks every additionalProperties value first, then the properties
            if s.additional is not None:
                children = [(v, s.additional, _sub(path, k)) for k, v in x.items() if isinstance(v, (dict, list))]
            children += [(v, s.properties[k], _join(path, k)) for k, v in x.items()
                         if k in s.properties and isinstance(v, (dict, list))]
        elif isinstance(x, list):
            if s.list_type in ("set", "map"):
                out.extend(_list_errors(path, s, x))
            if s.items is not None:
                children = [(v, s.items, _sub(path, i)) for i, v in enumerate(x) if isinstance(v, (dict, list))]
        stack.extend(reversed(children))
    return out


def _nested(obj: dict[str, Any], path: str) -> tuple[Any, bool, str]:
    """``unstructured.NestedFieldNoCopy`` along a ``.a.b`` path: value, found, accessor error."""
    fields = path.lstrip(".").split(".")
    val: Any = obj
    for i, f in enumerate(fields):
        if val is None:
            return None, False, ""
        if not isinstance(val, dict):
            return None, False, (f".{'.'.join(fields[:i + 1])} accessor error: {_go_v_type(val)}, "
                                 "expected map[string]interface{}")
        if f not in val:
            return None, False, ""
        val = val[f]
    return val, True, ""


_GO_TYPES: Final = {"bool": "bool", "int": "int64", "float": "float64", "str": "string", "list": "[]interface {}",
                    "map": "map[string]interface {}", "null": "<nil>"}


def _go_v_type(v: Any) -> str:
    return f"{go_v(v)} is of the type {_GO_TYPES.get(kind_of(v), 'unknown')}"


def _scale_errors(obj: dict[str, Any], scale: ScalePaths, *, spec: bool) -> list[tuple[str, str]]:
    """``ValidateScaleSpec`` (with ``spec``) and ``ValidateScaleStatus``: replicas are int64 in
    [0, MaxInt32], the selector a string."""
    out = []
    for path in (scale.spec_replicas, scale.status_replicas)[0 if spec else 1:]:
        val, found, err = _nested(obj, path)
        if found and kind_of(val) != "int":
            err = f"{path} accessor error: {_go_v_type(val)}, expected int64"
        n = val if found and not err else 0
        if err:
            out.append((path, invalid(n, err)))
        elif n < 0:
            out.append((path, invalid(n, "should be a non-negative integer")))
        elif n > _INT32_MAX:
            out.append((path, invalid(n, f"should be less than or equal to {_INT32_MAX}")))
    if scale.label_selector:
        val, found, err = _nested(obj, scale.label_selector)
        if found and not isinstance(val, str):
            err = f"{scale.label_selector} accessor error: {_go_v_type(val)}, expected string"
        if err:
            out.append((scale.label_selector, invalid("", err)))
    return out


class StructuralSchema:
    """One CRD version's ``openAPIV3Schema``, applied to the objects of that version.

    ``admit`` prunes, drops disallowed nulls, defaults and validates in place, in
    kube-apiserver's order; ``apply_defaults`` is the defaulting alone (upstream
    also defaults objects read back from storage)."""

    def __init__(self, schema: dict[str, Any] | None, *, kind: str, group: str, version: str,
                 scale: ScalePaths | None = None) -> None:
        self.raw = schema or {}
        self.node = compile_schema(self.raw)
        self.kind = kind
        self.group = group
        self.version = version
        self.scale = scale

    def apply_defaults(self, obj: dict[str, Any]) -> None:
        apply_defaults(obj, self.node)

    def admit(self, obj: dict[str, Any], *, field_validation: str, duplicates: Sequence[str] = (),
              verb: str = "create", subresource: str = "") -> list[str]:
        """Prune, default and validate ``obj`` in place; return the decoding warnings.

        The problems are the body's ``duplicates`` (``duplicate field "spec.a"``, from the
        HTTP layer's parser), then the unknown fields (``unknown field "spec.foo"``): under
        ``Strict`` they are the error ``fieldvalidation.strict_error`` builds for ``verb``
        (400 ``strict decoding error`` on create/update), under ``Ignore`` nothing, under
        anything else (``Warn``, the server default) the returned warnings. Invalid values
        raise one 422 with every cause. ``subresource="status"`` validates as a ``/status``
        write does: only ``status``, against its own schema, so messages name fields
        relative to it (``status.num: ... num in body should ...``)."""
        before = copy_json(obj) if verb == "patch" and field_validation == "Strict" else obj
        # the strict decoder keeps at most 100 of its own errors; pruning adds its paths after them
        decoded = list(dict.fromkeys([*duplicates, *(f'unknown field "{p}"' for p in
                                                     _drop_unknown_meta(obj.get("metadata"), "metadata"))]))[:100]
        unknown = prune(obj, self.node, root=True)
        _prune_nulls(obj, self.node)
        unknown += _coerce_embedded(obj, self.node)
        problems = decoded + [f'unknown field "{p}"' for p in unknown]
        if problems and field_validation == "Strict":
            raise strict_error(problems, obj=before, kind=self.kind, api_version=f"{self.group}/{self.version}",
                               verb=verb)
        apply_defaults(obj, self.node)
        if subresource == "status":
            status = self.node.properties.get("status")
            causes = validate(status, obj["status"], prefix="status") if status and "status" in obj else []
            if self.scale is not None:
                causes += _scale_errors(obj, self.scale, spec=False)
        else:
            causes = validate(self.node, obj)
            if self.scale is not None:
                causes += _scale_errors(obj, self.scale, spec=True)
            causes += _embedded_errors(obj, self.node)
        causes += _list_type_errors(obj, self.node)
        if causes:
            name = (obj.get("metadata") or {}).get("name") or ""
            raise errors.invalid(kind=self.kind, group=self.group, name=str(name), causes=causes)
        return [] if field_validation == "Ignore" else problems


_: type[ObjectSchema] = StructuralSchema
