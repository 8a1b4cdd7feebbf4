"""How kube-apiserver renders values in its error messages, for the CRD modules.

A custom resource's 422 carries messages such as ``spec.x: Invalid value:
1.5: spec.x in body should be greater than or equal to 2`` or ``Unsupported
value: "Bogus": supported values: "Pending", "Running"``. Their exact text
comes from Go: ``fmt``'s ``%v`` and ``%q``, ``encoding/json`` and
apimachinery's ``field.Error``. Clients and people compare these strings, so
the CRD modules render through the helpers here instead of Python's ``repr``.

The same module holds the two tools every CRD walk needs to survive hostile
input (a 100,000-deep object, a schema nested as deep): ``run``, a trampoline
that drives generator-based walks without Python recursion, and iterative
JSON encoders, copies and comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from decimal import Decimal
from typing import Any, Final, TypeVar

__all__ = [
    "FieldPath",
    "GoStruct",
    "Walk",
    "run",
    "kind_of",
    "is_json_integer",
    "go_json",
    "typed_key",
    "go_v",
    "go_quote",
    "float_v",
    "float_f",
    "value_text",
    "invalid",
    "required",
    "forbidden",
    "not_supported",
    "too_many",
    "too_long",
    "duplicate",
    "copy_json",
]

T = TypeVar("T")
Walk = Generator["Walk[Any]", Any, T]
"""A walk step: it yields sub-walks and receives their results; ``run`` drives it."""

class FieldPath:
    """A field path grown by appending and rendered only when a message needs it, so that walking
    a 100,000-deep value costs linear time rather than copying ever longer strings."""

    __slots__ = ("_parent", "_text")

    def __init__(self, text: str, parent: FieldPath | None = None) -> None:
        self._text = text
        self._parent = parent

    def child(self, suffix: str) -> FieldPath:
        """The path with ``suffix`` (``.name``, ``[key]``, ``[0]``) appended."""
        return FieldPath(suffix, self)

    def __str__(self) -> str:
        parts: list[str] = []
        node: FieldPath | None = self
        while node is not None:
            parts.append(node._text)
            node = node._parent
        return "".join(reversed(parts))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class GoStruct(dict[str, Any]):
    """A Go struct as ``json.Marshal`` prints it: fields in declaration order, not sorted like a map."""


_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_MAX_JSON_FLOAT: Final = float((1 << 53) - 1)


def run(walk: Walk[T]) -> T:
    """Drive a generator walk to its result with an explicit stack instead of recursion."""
    stack: list[Walk[Any]] = [walk]
    send: Any = None
    while True:
        try:
            child = stack[-1].send(send)
        except StopIteration as stop:
            stack.pop()
            if not stack:
                return stop.value  # type: ignore[no-any-return]
            send = stop.value
            continue
        stack.append(child)
        send = None


def kind_of(v: Any) -> str:
    """The Go type a JSON value decodes to: null, bool, int (int64), float (float64), str, list, map."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if _INT64_MIN <= v <= _INT64_MAX else "float"  # k8s json: too big for int64 is a float64
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    return "other"


def is_json_integer(f: float) -> bool:
    """go-openapi's ``IsFloat64AJSONInteger``: an integral float64 within ±(2^53-1)."""
    if math.isnan(f) or math.isinf(f) or f < -_MAX_JSON_FLOAT or f > _MAX_JSON_FLOAT:
        return False
    if f == math.trunc(f):
        return True
    g = float(math.trunc(f))
    diff = abs(f - g)
    if f == 0 or g == 0:
        return diff < 1e-15 * 5e-324
    return diff / min(abs(f) + abs(g), 1.7976931348623157e308) < 1e-15


# ---- numbers ------------------------------------------------------------------------------

def _digits(f: float) -> tuple[str, str, int]:
    """Sign, shortest round-trip digits and decimal point position: f = sign 0.digits × 10^dp."""
    sign, digits, exp = Decimal(repr(abs(f))).as_tuple()
    text = "".join(str(d) for d in digits).lstrip("0")
    if not text:
        return ("-" if math.copysign(1.0, f) < 0 else ""), "0", 1
    stripped = text.rstrip("0")
    dp = len(text) + int(exp)
    return ("-" if f < 0 else ""), stripped, dp


def _fixed(sign: str, d: str, dp: int) -> str:
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{d}"
    if dp >= len(d):
        return f"{sign}{d}{'0' * (dp - len(d))}"
    return f"{sign}{d[:dp]}.{d[dp:]}"


def _exp(sign: str, d: str, dp: int, *, json: bool) -> str:
    e = dp - 1
    mant = d[0] + ("." + d[1:] if len(d) > 1 else "")
    width = 1 if json and e < 0 else 2  # encoding/json trims e-07 to e-7
    return f"{sign}{mant}e{'-' if e < 0 else '+'}{abs(e):0{width}d}"


def float_v(f: float) -> str:
    """``fmt``'s ``%v`` of a float64 (``%g`` shortest): 1, 0.5, 1e+06, 1.5e-05."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, d, dp = _digits(f)
    return _exp(sign, d, dp, json=False) if dp - 1 < -4 or dp - 1 >= 6 else _fixed(sign, d, dp)


def float_f(f: float) -> str:
    """``strconv.FormatFloat(f, 'f', -1, 64)``: never an exponent."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, d, dp = _digits(f)
    return _fixed(sign, d, dp)


def _json_float(f: float) -> str:
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, d, dp = _digits(f)
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        return _exp(sign, d, dp, json=True)
    return _fixed(sign, d, dp)


# ---- strings ------------------------------------------------------------------------------

_QUOTE_ESC: Final = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                     "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    """``strconv.Quote``: Go's ``%q`` of a string."""
    out = ['"']
    for ch in s:
        if ch in _QUOTE_ESC:
            out.append(_QUOTE_ESC[ch])
        elif ch == " " or (ch.isprintable() and ch != "\u00ad"):
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif o < 0x20 or ch in "<>&" or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ---- compound values, iteratively ------------------------------------------------------------

def _encode(value: Any, style: str) -> str:
    """One iterative encoder for the three renderings: ``json`` (encoding/json, sorted keys),
    ``typed`` (like json but ints and floats differ, for Go ``reflect.DeepEqual``) and
    ``v`` (fmt's ``%v``: ``map[a:1 b:[x y]]``)."""
    out: list[str] = []
    stack: list[Any] = [("val", value)]
    while stack:
        tag, item = stack.pop()
        if tag == "lit":
            out.append(item)
            continue
        k = kind_of(item)
        if k == "map":
            keys = list(item) if isinstance(item, GoStruct) else sorted(item)
            parts: list[Any] = []
            for i, key in enumerate(keys):
                sep = ("," if style != "v" else " ") if i else ""
                name = _json_string(str(key)) + ":" if style != "v" else f"{key}:"
                parts.append(("lit", sep + name))
                parts.append(("val", item[key]))
            stack.append(("lit", "}" if style != "v" else "]"))
            stack.extend(reversed(parts))
            out.append("{" if style != "v" else "map[")
        elif k == "list":
            stack.append(("lit", "]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append(("val", item[i]))
                if i:
                    stack.append(("lit", "," if style != "v" else " "))
            out.append("[")
        elif k == "null":
            out.append("null" if style != "v" else "<nil>")
        elif k == "bool":
            out.append("true" if item else "false")
        elif k == "int":
            out.append(str(item))
        elif k == "float":
            f = float(item)
            if style == "v":
                out.append(float_v(f))
            elif style == "typed":
                out.append(repr(f))
            else:
                out.append(_json_float(f))
        elif k == "str":
            out.append(item if style == "v" else _json_string(item))
        else:
            out.append(_json_string(str(item)))
    return "".join(out)


def go_json(value: Any) -> str:
    """``json.Marshal``: compact, map keys sorted, ``<>&`` escaped, Go's float format."""
    return _encode(value, "json")


def typed_key(value: Any) -> str:
    """A string equal for two JSON values exactly when Go's ``reflect.DeepEqual`` says so."""
    return _encode(value, "typed")


def go_v(value: Any) -> str:
    """``fmt``'s ``%v`` of a decoded JSON value."""
    return _encode(value, "v")


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value without recursion (``runtime.DeepCopyJSONValue``)."""
    if not isinstance(value, (dict, list)):
        return value
    root: Any = {} if isinstance(value, dict) else [None] * len(value)
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for key, v in items:
            if isinstance(v, dict):
                dst[key] = {}
                stack.append((v, dst[key]))
            elif isinstance(v, list):
                dst[key] = [None] * len(v)
                stack.append((v, dst[key]))
            else:
                dst[key] = v
    return root


# ---- apimachinery field.Error bodies ------------------------------------------------------------

def value_text(v: Any) -> str:
    """How ``field.Error`` prints a bad value: numbers and bools plain, strings quoted, the rest as JSON."""
    k = kind_of(v)
    if k == "bool":
        return "true" if v else "false"
    if k == "int":
        return str(v)
    if k == "float":
        return float_v(float(v))
    if k == "str":
        return go_quote(v)
    return go_json(v)


def _with(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def invalid(value: Any, detail: str) -> str:
    return _with(f"Invalid value: {value_text(value)}", detail)


def required(detail: str = "") -> str:
    return _with("Required value", detail)


def forbidden(detail: str) -> str:
    return _with("Forbidden", detail)


def not_supported(value: Any, valid: list[str]) -> str:
    detail = "supported values: " + ", ".join(go_quote(x) for x in valid) if valid else ""
    return _with(f"Unsupported value: {value_text(value)}", detail)


def too_many(actual: int, limit: int) -> str:
    detail = f"must have at most {limit} {'item' if limit == 1 else 'items'}" if limit >= 0 else "has too many items"
    return _with(f"Too many: {actual}" if actual >= 0 else "Too many", detail)


def too_long(limit: int) -> str:
    detail = f"may not be more than {limit} {'byte' if limit == 1 else 'bytes'}" if limit >= 0 else "value is too long"
    return _with("Too long", detail)


def duplicate(value: Any) -> str:
    return f"Duplicate value: {value_text(value)}"
