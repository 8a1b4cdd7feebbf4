"""CRD schemas compiled once into trees that the pruning, defaulting and validation walks share.

A CRD version's ``openAPIV3Schema`` arrives as nested JSON; every custom object
of that version is pruned, defaulted and validated against it. Compiling it
once into ``Node`` objects (numbers parsed, the regex built, the formats kube-
apiserver keeps worked out) keeps those walks simple and fast. Compilation is
iterative, so a hostile schema's depth cannot reach Python's recursion limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from .crd_go import kind_of

__all__ = ["Node", "compile_schema", "compile_pattern", "STRING_FORMATS"]


@dataclass(eq=False, slots=True)
class Node:
    """One compiled schema node (a structural node or a nested value validation)."""

    type: str = ""
    types: tuple[str, ...] = ()
    format: str = ""
    """The format the validator applies (unsupported formats stripped, as upstream)."""
    nullable: bool = False
    has_default: bool = False
    default: Any = None
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None
    additional_allows: bool | None = None
    items: Node | None = None
    preserve: bool = False
    embedded: bool = False
    int_or_string: bool = False
    list_type: str = ""
    map_keys: tuple[str, ...] = ()
    enum: list[Any] | None = None
    maximum: float | None = None
    exclusive_maximum: bool = False
    minimum: float | None = None
    exclusive_minimum: bool = False
    multiple_of: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: str = ""
    regex: re.Pattern[str] | None = None
    regex_error: str = ""
    max_items: int | None = None
    min_items: int | None = None
    unique_items: bool = False
    max_properties: int | None = None
    min_properties: int | None = None
    required: tuple[str, ...] = ()
    all_of: tuple[Node, ...] = ()
    any_of: tuple[Node, ...] = ()
    one_of: tuple[Node, ...] = ()
    not_: Node | None = None

    @property
    def combined(self) -> bool:
        return bool(self.all_of or self.any_of or self.one_of or self.not_ is not None)


# Formats kube-apiserver keeps for strings (go-openapi names, dashes removed); others are stripped.
STRING_FORMATS: Final = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4", "uuid5",
    "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password", "date", "duration",
    "datetime"})


def _num(v: Any) -> float | None:
    return float(v) if kind_of(v) in ("int", "float") else None


def _int(v: Any) -> int | None:
    return v if kind_of(v) == "int" else None


_GO_UNSUPPORTED: Final = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]")
_UNICODE_CLASSES: Final = {"L": r"[^\W\d_]", "N": r"\d", "Nd": r"\d"}


def compile_pattern(pattern: str) -> tuple[re.Pattern[str] | None, str]:
    """A Go (RE2) pattern as a Python regex, or the reason it is not one."""
    bad = _GO_UNSUPPORTED.search(pattern)
    if bad:
        return None, f"error parsing regexp: invalid or unsupported Perl syntax: `{bad.group(0)}`"
    out, i, in_class = [], 0, False
    multiline = "(?m" in pattern or "(?sm" in pattern
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            m = re.match(r"\\p(\{(\w+)\}|(\w))", pattern[i:])
            if m and (m.group(2) or m.group(3)) in _UNICODE_CLASSES:
                cls = _UNICODE_CLASSES[m.group(2) or m.group(3)]
                out.append(cls[1:-1] if in_class and cls.startswith("[") else cls)
                i += len(m.group(0))
                continue
            out.append(r"\Z" if nxt == "z" else ch + nxt)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        elif ch == "$" and not in_class and not multiline:
            ch = r"\Z"  # Go's $ is the end of the text, Python's also matches before a final newline
        out.append(ch)
        i += 1
    try:
        return re.compile("".join(out)), ""
    except re.error as e:
        return None, f"error parsing regexp: {e}"


def _fill(n: Node, r: dict[str, Any]) -> None:
    t = r.get("type")
    n.type = t if isinstance(t, str) else ""
    n.int_or_string = r.get("x-kubernetes-int-or-string") is True
    n.types = ("integer", "string") if n.int_or_string else ((n.type,) if n.type else ())
    raw_fmt = r.get("format")
    fmt = raw_fmt if isinstance(raw_fmt, str) else ""
    kind = n.types[0] if len(n.types) == 1 else ""
    if kind in ("", "string"):
        n.format = fmt if fmt.replace("-", "") in STRING_FORMATS else ""
    elif kind == "integer":
        n.format = fmt if fmt in ("int32", "int64") else ""
    elif kind == "number":
        n.format = fmt if fmt in ("float", "double") else ""
    n.nullable = r.get("nullable") is True
    if r.get("default") is not None:
        n.has_default, n.default = True, r["default"]
    n.preserve = r.get("x-kubernetes-preserve-unknown-fields") is True
    n.embedded = r.get("x-kubernetes-embedded-resource") is True
    lt = r.get("x-kubernetes-list-type")
    n.list_type = lt if isinstance(lt, str) else ""
    keys = r.get("x-kubernetes-list-map-keys")
    n.map_keys = tuple(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else ()
    n.enum = r["enum"] if isinstance(r.get("enum"), list) else None
    n.maximum, n.minimum, n.multiple_of = _num(r.get("maximum")), _num(r.get("minimum")), _num(r.get("multipleOf"))
    n.exclusive_maximum = r.get("exclusiveMaximum") is True
    n.exclusive_minimum = r.get("exclusiveMinimum") is True
    n.max_length, n.min_length = _int(r.get("maxLength")), _int(r.get("minLength"))
    n.max_items, n.min_items = _int(r.get("maxItems")), _int(r.get("minItems"))
    n.max_properties, n.min_properties = _int(r.get("maxProperties")), _int(r.get("minProperties"))
    n.unique_items = r.get("uniqueItems") is True
    req = r.get("required")
    n.required = tuple(x for x in req if isinstance(x, str)) if isinstance(req, list) else ()
    if isinstance(r.get("pattern"), str) and r["pattern"]:
        n.pattern = r["pattern"]
        n.regex, n.regex_error = compile_pattern(n.pattern)
    add = r.get("additionalProperties")
    if isinstance(add, bool):
        n.additional_allows = add
    elif isinstance(add, dict):
        n.additional_allows = True


def compile_schema(raw: Any) -> Node:
    """Compile a JSONSchemaProps document (without recursion, whatever its depth)."""
    root = Node()
    stack: list[tuple[Any, Node]] = [(raw, root)]
    while stack:
        r, n = stack.pop()
        if not isinstance(r, dict):
            continue
        _fill(n, r)
        props = r.get("properties")
        if isinstance(props, dict):
            for k, v in props.items():
                n.properties[k] = child = Node()
                stack.append((v, child))
        for key, attr in (("additionalProperties", "additional"), ("items", "items"), ("not", "not_")):
            if isinstance(r.get(key), dict):
                child = Node()
                setattr(n, attr, child)
                stack.append((r[key], child))
        for key, attr in (("allOf", "all_of"), ("anyOf", "any_of"), ("oneOf", "one_of")):
            subs = r.get(key)
            if isinstance(subs, list):
                nodes = tuple(Node() for _ in subs)
                setattr(n, attr, nodes)
                stack.extend(zip(subs, nodes))
    return root
