"""Value validation of custom objects, as kube-apiserver's OpenAPI validator does it.

kube-apiserver checks a custom object against its CRD's ``openAPIV3Schema``
with kube-openapi's validator and turns each failure into an apimachinery
field error. Users read those errors (``spec.minMember: Invalid value: 0:
spec.minMember in body should be greater than or equal to 1``) and tooling
matches them, so this module follows that validator step by step: the same
checks in the same order, its type rules (an integral float passes as an
integer), its quirks (a bound truncated to an integer for integer values,
anyOf reporting the alternative that matched most) and its messages.

Schemas are compiled once into ``crd_node.Node`` trees; the walks
run on ``crd_go.run`` so that no input depth reaches Python's recursion limit.
``x-kubernetes-validations`` (CEL) rules are not evaluated here.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from .crd_formats import format_ok
from .crd_go import (Walk, float_f, float_v, go_json, go_quote, invalid, is_json_integer, kind_of, not_supported,
                     required, run, too_long, too_many, typed_key)
from .crd_node import STRING_FORMATS, Node, compile_pattern, compile_schema

__all__ = ["Node", "compile_schema", "validate", "compile_pattern"]

# error kinds of kube-openapi's errors.Validation (0: a plain or composite error)
_PLAIN, _REQUIRED, _ENUM, _TOO_LONG, _MAX_ITEMS, _TOO_MANY_PROPS, _TYPE, _OTHER = range(8)


# ---- results ----------------------------------------------------------------------------------

@dataclass(slots=True)
class _Err:
    kind: int
    name: str
    value: Any
    message: str
    valid: Any = None
    values: list[Any] | None = None


@dataclass(slots=True)
class _Res:
    errors: list[_Err] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    count: int = 0

    def add(self, e: _Err | None) -> None:
        if e is not None and e.message not in self.seen:
            self.seen.add(e.message)
            self.errors.append(e)

    def merge(self, other: _Res) -> None:
        for e in other.errors:
            self.add(e)
        self.count += other.count

    @property
    def valid(self) -> bool:
        return not self.errors


def _msg(name: str, text: str) -> str:
    return f"{name} in body {text}"


def _type_error(path: str, expected: str, value: Any) -> _Err:
    text = f"must be of type {expected}: {go_quote(value)}" if isinstance(value, str) else f"must be of type {expected}"
    return _Err(_TYPE, path, value, _msg(path, text))


def _check_type(n: Node, data: Any, path: str) -> _Res:
    if data is None:
        if n.types and "null" not in n.types and not n.nullable:
            return _Res([_type_error(path, ",".join(n.types), "null")])
        return _Res(count=1)
    k = kind_of(data)
    sch, fmt = {"bool": ("boolean", ""), "str": ("string", ""), "int": ("integer", "int64"),
                "float": ("number", "double"), "list": ("array", ""), "map": ("object", "")}.get(k, ("", ""))
    float_int = sch == "number" and is_json_integer(float(data)) and "integer" in n.types
    int_float = sch == "integer" and "number" in n.types
    if k not in ("str", "list") and n.format and not (sch in n.types or fmt == n.format or float_int or int_float):
        return _Res([_type_error(path, n.format, fmt)])
    if not ("number" in n.types or "integer" in n.types) and n.format and k in ("str", "list"):
        return _Res(count=1)
    if not (sch in n.types or float_int or int_float):
        return _Res([_type_error(path, ",".join(n.types), sch)])
    return _Res(count=1)


def _check_string(n: Node, s: str, path: str) -> _Err | None:
    if n.max_length is not None and len(s) > n.max_length:
        return _Err(_TOO_LONG, path, s, _msg(path, f"should be at most {n.max_length} chars long"), valid=n.max_length)
    if n.min_length is not None and len(s) < n.min_length:
        return _Err(_OTHER, path, s, _msg(path, f"should be at least {n.min_length} chars long"))
    if n.pattern:
        if n.regex is None:
            return _Err(_OTHER, path, s, _msg(path, f"should match '{n.pattern}, but pattern is invalid: {n.regex_error}'"))
        if not n.regex.search(s):
            return _Err(_OTHER, path, s, _msg(path, f"should match '{n.pattern}'"))
    return None


def _check_format(n: Node, s: str, path: str) -> _Err | None:
    return None if format_ok(n.format, s) else _type_error(path, n.format, s)


def _in_range(v: Any, type_name: str, fmt: str, prefix: str, path: str) -> _Err | None:
    rep = str(v) if kind_of(v) == "int" else float_f(float(v))
    ok = True
    if type_name == "integer":
        bits = 32 if fmt == "int32" else 64
        ok = bool(re.fullmatch(r"[+-]?\d+", rep)) and -(1 << (bits - 1)) <= int(rep) < (1 << (bits - 1))
    elif fmt == "float":
        try:
            struct.pack("f", float(rep))
        except OverflowError:
            ok = False
    if ok:
        return None
    where = f"with format {fmt}" if fmt else "(default format)"
    return _Err(_PLAIN, path, None, f"{prefix} value must be of type {type_name} {where} in {path}")


def _bound(path: str, v: Any, bound: float, *, excl: bool, is_max: bool, native: bool) -> _Err | None:
    if native and kind_of(v) == "int":
        b: float | int = math.trunc(bound)
        x: float | int = v
    else:
        b, x = bound, float(v)
    bad = (x > b or (excl and x == b)) if is_max else (x < b or (excl and x == b))
    if not bad:
        return None
    word = ("less than" if excl else "less than or equal to") if is_max else \
        ("greater than" if excl else "greater than or equal to")
    shown = str(b) if isinstance(b, int) else float_v(b)
    return _Err(_OTHER, path, x, _msg(path, f"should be {word} {shown}"))


def _multiple(path: str, v: Any, factor: float, *, native: bool) -> _Err | None:
    if native and kind_of(v) == "int":
        f = math.trunc(factor)
        if f <= 0:
            return _Err(_OTHER, path, f, f"factor MultipleOf declared for {path} must be positive: {f}")
        return None if v % f == 0 else _Err(_OTHER, path, v, _msg(path, f"should be a multiple of {f}"))
    x = float(v)
    if factor <= 0:
        return _Err(_OTHER, path, factor, f"factor MultipleOf declared for {path} must be positive: {float_v(factor)}")
    mult = 1 / factor * x if factor < 1 else x / factor
    return None if is_json_integer(mult) else _Err(_OTHER, path, x, _msg(path, f"should be a multiple of {float_v(factor)}"))


def _check_number(n: Node, v: Any, path: str) -> _Res:
    res = _Res(count=1)
    type_name = fmt = ""
    if len(n.types) == 1 and n.types[0] in ("integer", "number"):
        type_name = n.types[0]
        if n.format in (("int32", "int64") if type_name == "integer" else ("float", "double")):
            fmt = n.format
    res.add(_in_range(v, type_name, fmt, "Checked", path))
    checks: list[tuple[float | None, str, Callable[[bool], _Err | None]]] = [
        (n.multiple_of, "MultipleOf", lambda nat: _multiple(path, v, n.multiple_of or 0.0, native=nat)),
        (n.minimum, "Minimum boundary", lambda nat: _bound(path, v, n.minimum or 0.0, excl=n.exclusive_minimum,
                                                          is_max=False, native=nat)),
        (n.maximum, "Maximum boundary", lambda nat: _bound(path, v, n.maximum or 0.0, excl=n.exclusive_maximum,
                                                          is_max=True, native=nat)),
    ]
    for bound, prefix, check in checks:
        if bound is not None:
            err = _in_range(bound, type_name, fmt, prefix, path)
            res.add(err)
            res.add(check(err is None))
    return res


def _enum_match(data: Any, ev: Any) -> bool:
    kd, ke = kind_of(data), kind_of(ev)
    if kd == "null" or ke == "null":
        return False
    if kd == ke:
        return bool(data == ev) if kd not in ("map", "list") else typed_key(data) == typed_key(ev)
    if kd == "int" and ke == "float":
        return bool(float(data) == ev)
    if kd == "float" and ke == "int":
        return bool(math.trunc(data) == ev)
    if kd == "int" and ke == "str":  # Go converts an integer to the string of that rune
        return bool((chr(data) if 0 <= data <= 0x10FFFF and not 0xD800 <= data <= 0xDFFF else "\ufffd") == ev)
    return False


def _check_enum(n: Node, data: Any, path: str) -> _Err | None:
    if not n.enum or any(_enum_match(data, ev) for ev in n.enum):
        return None
    return _Err(_ENUM, path, data, _msg(path, "should be one of " + go_json(n.enum)), values=n.enum)


def _head(n: Node, data: Any, path: str, props: _Res | None) -> _Res:
    """The validators that run before the array ones: type, combinators, string, format, number.

    ``props`` is the combinators' result (a node without them still counts one match)."""
    res = _Res()
    k = kind_of(data)
    if n.types or n.format:
        res.merge(_check_type(n, data, path))
        res.count += 1
    res.merge(props if props is not None else _Res(count=1))
    res.count += 1
    if k == "str":
        res.add(_check_string(n, data, path))
        res.count += 1
        if n.format and n.format.replace("-", "") in STRING_FORMATS:
            res.add(_check_format(n, data, path))
            res.count += 1
    if k in ("int", "float"):
        res.merge(_check_number(n, data, path))
        res.count += 1
    return res


_INT64: Final = 1 << 63
_INT32: Final = 1 << 31


@functools.lru_cache(maxsize=1024)
def _bound_fits(bound: float, type_name: str, fmt: str) -> bool:
    """Whether upstream's range check accepts a schema bound (a pure function of the schema)."""
    return _in_range(bound, type_name, fmt, "", "") is None


def _bounds_ok(n: Node, v: int) -> bool:
    """The bounds of a node hold for the int ``v``, checked natively as upstream does when the bounds
    themselves pass its range check and are integral; False also means "let the full check report it"."""
    type_name = fmt = ""
    if len(n.types) == 1 and n.types[0] in ("integer", "number"):
        type_name = n.types[0]
        fmt = n.format
    for bound in (n.minimum, n.maximum, n.multiple_of):
        if bound is not None and (not bound.is_integer() or not _bound_fits(bound, type_name, fmt)):
            return False
    if n.minimum is not None and (v < n.minimum or (n.exclusive_minimum and v == n.minimum)):
        return False
    if n.maximum is not None and (v > n.maximum or (n.exclusive_maximum and v == n.maximum)):
        return False
    return n.multiple_of is None or (n.multiple_of >= 1 and v % int(n.multiple_of) == 0)


def _quick(n: Node, v: Any) -> int:
    """The match count of a scalar that passes every validator of a node without combinators, or -1
    when some check may fail (the full, message-building path then runs). Keeps big arrays cheap."""
    t = type(v)
    sch = "string" if t is str else "integer" if t is int else "boolean" if t is bool else "number" if t is float else ""
    if not sch or (t is int and not -_INT64 <= v < _INT64):
        return -1
    count = 4  # the combinators' validator, and the final match
    if n.types or n.format:
        if not (sch in n.types or (sch == "integer" and "number" in n.types)
                or (t is str and n.format and "number" not in n.types and "integer" not in n.types)):
            return -1
        count += 2
    if t is str:
        if (n.max_length is not None and len(v) > n.max_length) or (n.min_length is not None and len(v) < n.min_length):
            return -1
        if n.pattern and (n.regex is None or not n.regex.search(v)):
            return -1
        count += 1
        if n.format and n.format.replace("-", "") in STRING_FORMATS:
            if not format_ok(n.format, v):
                return -1
            count += 1
    elif t is int:
        if n.types == ("integer",) and n.format == "int32" and not -_INT32 <= v < _INT32:
            return -1
        if (n.minimum is not None or n.maximum is not None or n.multiple_of is not None) and not _bounds_ok(n, v):
            return -1
        count += 2
    elif t is float:
        return -1
    if n.enum and not any(_enum_match(v, ev) for ev in n.enum):
        return -1
    return count


def _leaf(n: Node, data: Any, path: str, props: _Res | None) -> _Res:
    """Every validator of one node for a scalar or null value."""
    if props is None and data is not None:
        quick = _quick(n, data)
        if quick >= 0:
            return _Res(count=quick)
    if data is None:  # upstream runs only the type and enum checks on null
        res = _check_type(n, None, path)
        res.add(_check_enum(n, None, path))
        return res
    res = _head(n, data, path, props)
    res.add(_check_enum(n, data, path))
    res.count += 2
    return res


def _combined(n: Node, data: Any, path: str) -> Walk[_Res]:
    main = _Res()
    if n.any_of:
        best: _Res | None = None
        first_ok: _Res | None = None
        for sub in n.any_of:
            r: _Res = yield _walk(sub, data, path)
            if r.valid:
                best, first_ok = None, r
                break
            if best is None or r.count > best.count:
                best = r
        if first_ok is None:
            main.add(_Err(_PLAIN, path, None, f"{go_quote(path)} must validate at least one schema (anyOf)"))
        if best is not None:
            main.merge(best)
        elif first_ok is not None:
            main.merge(first_ok)
    if n.one_of:
        best, first_ok, passed = None, None, 0
        for sub in n.one_of:
            r = yield _walk(sub, data, path)
            if r.valid:
                passed += 1
                best = None
                first_ok = first_ok or r
            elif passed == 0 and (best is None or r.count > best.count):
                best = r
        if passed != 1:
            why = "Found none valid" if passed == 0 else f"Found {passed} valid alternatives"
            main.add(_Err(_PLAIN, path, None, f"{go_quote(path)} must validate one and only one schema (oneOf). {why}"))
            if best is not None:
                main.merge(best)
        elif first_ok is not None:
            main.merge(first_ok)
    if n.all_of:
        passed = 0
        for sub in n.all_of:
            r = yield _walk(sub, data, path)
            passed += r.valid
            main.merge(r)
        if passed != len(n.all_of):
            why = ". None validated" if passed == 0 else ""
            main.add(_Err(_PLAIN, path, None, f"{go_quote(path)} must validate all the schemas (allOf){why}"))
    if n.not_ is not None:
        r = yield _walk(n.not_, data, path)
        if r.valid:
            main.add(_Err(_PLAIN, path, None, f"{go_quote(path)} must not validate the schema (not)"))
    main.count += 1
    return main


def _child(n: Node, value: Any, path: str) -> Walk[_Res] | _Res:
    """A scalar under a node without combinators is checked at once; anything else becomes a sub-walk."""
    if value is None or (not isinstance(value, (dict, list)) and not n.combined):
        return _leaf(n, value, path, None)
    return _walk(n, value, path)


def _walk(n: Node, data: Any, path: str) -> Walk[_Res]:
    props: _Res | None = None
    if n.combined:
        props = yield _combined(n, data, path)
    if not isinstance(data, (dict, list)):
        return _leaf(n, data, path, props)
    res = _head(n, data, path, props)
    if isinstance(data, list):
        sub = _Res(count=1)
        items = n.items
        if items is not None:
            plain = not items.combined
            for i, v in enumerate(data):
                if plain and v is not None and not isinstance(v, (dict, list)):
                    quick = _quick(items, v)
                    if quick >= 0:
                        sub.count += quick
                        continue
                c = _child(items, v, f"{path}[{i}]")
                sub.merge(c if isinstance(c, _Res) else (yield c))
        size = len(data)
        if n.min_items is not None and size < n.min_items:
            sub.add(_Err(_OTHER, path, size, _msg(path, f"should have at least {n.min_items} items")))
        if n.max_items is not None and size > n.max_items:
            sub.add(_Err(_MAX_ITEMS, path, size, _msg(path, f"should have at most {n.max_items} items"),
                         valid=n.max_items))
        if n.unique_items and len({typed_key(v) if isinstance(v, (dict, list)) else (kind_of(v), v)
                                   for v in data}) != size:
            sub.add(_Err(_OTHER, path, None, _msg(path, "shouldn't contain duplicates")))
        res.merge(sub)
        res.count += 1
        res.add(_check_enum(n, data, path))
        res.count += 2
        return res
    res.add(_check_enum(n, data, path))
    res.count += 1
    sub = _Res()
    size = len(data)
    if n.min_properties is not None and size < n.min_properties:
        sub.add(_Err(_OTHER, path, size, _msg(path, f"should have at least {n.min_properties} properties")))
    if n.max_properties is not None and size > n.max_properties:
        sub.add(_Err(_TOO_MANY_PROPS, path, size, _msg(path, f"should have at most {n.max_properties} properties"),
                     valid=n.max_properties))
    for key, value in data.items():
        if key in n.properties:
            c = _child(n.properties[key], value, path + "." + key if path else key)
            sub.merge(c if isinstance(c, _Res) else (yield c))
        elif n.additional_allows is False:
            sub.add(_Err(_OTHER, path, key, f"{path}.{key} in body is a forbidden property"))
        elif n.additional is not None:
            c = _child(n.additional, value, f"{path}.{key}")
            sub.merge(c if isinstance(c, _Res) else (yield c))
    for key in n.required:
        if key not in data:
            sub.add(_Err(_REQUIRED, f"{path}.{key}", None, _msg(f"{path}.{key}", "is required")))
    res.merge(sub)
    res.count += 2
    return res


def _field_error(e: _Err, prefix: str | None) -> tuple[str, str]:
    base = "<nil>" if prefix is None else prefix
    if e.kind == _PLAIN:
        return base, invalid("", e.message)
    name = e.name[1:] if e.name.startswith(".") else e.name
    where = (f"{prefix}.{name}" if prefix else name) if e.name and e.name != "." else base
    if e.kind == _REQUIRED:
        return where, required()
    if e.kind == _ENUM:
        return where, not_supported(e.value, [v if isinstance(v, str) else go_json(v) for v in e.values or []])
    if e.kind == _TOO_LONG:
        return where, too_long(int(e.valid))
    if e.kind in (_MAX_ITEMS, _TOO_MANY_PROPS):
        return where, too_many(int(e.value), int(e.valid))
    return where, invalid("" if e.value is None else e.value, e.message)


def validate(n: Node, value: Any, *, prefix: str | None = None) -> list[tuple[str, str]]:
    """``(field, message)`` pairs for ``value`` against ``n``, as ``ValidateCustomResource`` reports them.

    ``prefix`` is the field path the validator runs under (``None`` for a whole object:
    upstream then names errors without a field ``<nil>``)."""
    c = _child(n, value, "")
    res = c if isinstance(c, _Res) else run(c)
    return [_field_error(e, prefix) for e in res.errors]
