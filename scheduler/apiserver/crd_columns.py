"""Server-side printing of custom resources: the CRD's printer columns as a Table.

``kubectl get podgroups`` shows ``NAME PHASE MINMEMBER RUNNING ... AGE``
because kube-apiserver turns each version's ``additionalPrinterColumns`` into
Table ``columnDefinitions`` (``Name`` first, an ``Age`` column only when the
CRD declares no columns at all) and evaluates each column's JSONPath against
the object. The cells follow upstream's typing: ``integer`` truncates floats,
``date`` becomes an age such as ``3m20s``, a ``string`` column prints any
value as text, and a missing value is ``null`` (kubectl shows ``<none>``).

The JSONPath evaluator covers what printer columns use: ``.a.b``,
``['a.b']``, ``[0]``/``[-1]``, ``[*]``/``.*``, ``[1:3]``, filters such as
``[?(@.type=="Ready")]``, and the ``{...}``-wrapped form.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Any, Final

from .crd_go import float_v, go_json, kind_of
from .resources import ResourceType
from .tables import human_duration

__all__ = ["table_columns", "table_cells", "parse_jsonpath", "evaluate_jsonpath", "JsonPathError"]

_NAME_DOC: Final = ("Name must be unique within a namespace. Is required when creating resources, although some "
                    "resources may allow a client to request the generation of an appropriate name automatically. "
                    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
                    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_CREATED_DOC: Final = ("CreationTimestamp is a timestamp representing the server time when this object was created. It "
                       "is not guaranteed to be set in happens-before order across separate operations. Clients may "
                       "not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
                       "system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/"
                       "sig-architecture/api-conventions.md#metadata")
_AGE: Final = {"name": "Age", "type": "date", "format": "", "description": _CREATED_DOC, "priority": 0,
               "jsonPath": ".metadata.creationTimestamp"}
_TERMINATORS: Final = frozenset(" \t\r\n.,[]$@{}")
_RFC3339: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_FILTER: Final = re.compile(r"^\?\(\s*@((?:\.[^\s=!<>]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


class JsonPathError(ValueError):
    """A JSONPath the printer cannot parse or evaluate (the cell is then empty)."""


Step = tuple[str, Any]


def parse_jsonpath(text: str) -> list[Step]:
    """Parse a printer-column JSONPath into steps: ``field``, ``all``, ``slice`` and ``filter``."""
    s = text.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1].strip()
    if s.startswith("$"):
        s = s[1:]
    steps: list[Step] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == ".":
            if s[i + 1:i + 2] == ".":
                raise JsonPathError("recursive descent is not supported")
            j, name = i + 1, []
            while j < len(s) and s[j] not in _TERMINATORS:
                if s[j] == "\\" and j + 1 < len(s):
                    j += 1
                name.append(s[j])
                j += 1
            field = "".join(name)
            if field:
                steps.append(("all", None) if field == "*" else ("field", field))
            i = j
        elif ch == "[":
            end = s.find("]", i)
            if end < 0:
                raise JsonPathError("unterminated array")
            if s[i + 1:i + 3] == "?(":
                end = s.find(")]", i) + 1
                if end <= 0:
                    raise JsonPathError("unterminated filter")
            steps.append(_bracket(s[i + 1:end]))
            i = end + 1
        else:
            raise JsonPathError(f"unrecognized character in action: {ch!r}")
    return steps


def _bracket(inner: str) -> Step:
    text = inner.strip()
    if text in ("*", ":"):
        return ("all", None)
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return ("field", text[1:-1])
    if text.startswith("?("):
        m = _FILTER.match(text)
        if not m:
            raise JsonPathError(f"unsupported filter {text}")
        path = [("field", f) for f in m[1].split(".")[1:]]
        return ("filter", (path, m[2], _literal(m[3]) if m[2] else None))
    m = re.fullmatch(r"(-?\d+)?(?::(-?\d+)?)?", text)
    if not m or text == "":
        raise JsonPathError(f"invalid array index {text}")
    start = int(m[1]) if m[1] else 0
    if ":" not in text:
        return ("slice", (start, start + 1, True))
    return ("slice", (start, int(m[2]) if m[2] else None, False))


def _literal(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError:
            raise JsonPathError(f"unrecognized literal {t}") from None


def _compare(a: Any, op: str, b: Any) -> bool:
    ka, kb = kind_of(a), kind_of(b)
    numbers = ka in ("int", "float") and kb in ("int", "float")
    if op in ("==", "!="):
        same = bool(a == b) and (numbers or ka == kb)
        return same if op == "==" else not same
    if not numbers:
        return False
    return bool({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])


def evaluate_jsonpath(steps: list[Step], obj: Any) -> list[Any]:
    """Every value the path selects (missing keys select nothing, as with ``AllowMissingKeys``)."""
    current = [obj]
    for kind, arg in steps:
        out: list[Any] = []
        for v in current:
            if v is None:
                continue
            if kind == "field":
                if not isinstance(v, dict):
                    raise JsonPathError(f"{arg} is not found")
                if arg in v:
                    out.append(v[arg])
            elif kind == "all":
                out.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else [])
            elif kind == "slice":
                if not isinstance(v, list):
                    raise JsonPathError("not array or slice")
                start, stop, single = arg
                start = start + len(v) if start < 0 else start
                if single:
                    if not 0 <= start < len(v):
                        raise JsonPathError(f"array index out of bounds: index {start}, length {len(v)}")
                    out.append(v[start])
                else:
                    out.extend(v[start:stop])
            else:
                path, op, lit = arg
                for item in v if isinstance(v, list) else []:
                    found = evaluate_jsonpath(path, item) if isinstance(item, dict) else []
                    if (op is None and found) or (op is not None and found and _compare(found[0], op, lit)):
                        out.append(item)
        current = out
    return current


def table_columns(rt: ResourceType) -> list[dict[str, Any]]:
    """The Table ``columnDefinitions`` of a custom resource: Name, then its printer columns (or Age)."""
    out: list[dict[str, Any]] = [{"name": "Name", "type": "string", "format": "name", "description": _NAME_DOC,
                                  "priority": 0}]
    for col in _columns(rt):
        path = str(col.get("jsonPath") or "")
        out.append({"name": col.get("name") or "", "type": col.get("type") or "", "format": col.get("format") or "",
                    "description": col.get("description") or
                    f"Custom resource definition column (in JSONPath format): {path}",
                    "priority": int(col.get("priority") or 0)})
    return out


def _columns(rt: ResourceType) -> list[dict[str, Any]]:
    """The columns upstream's convertor keeps: all of them, up to the first unparseable path."""
    cols = list(rt.columns) or [_AGE]
    kept = []
    for col in cols:
        try:
            parse_jsonpath(str(col.get("jsonPath") or ""))
        except JsonPathError:
            break
        kept.append(col)
    return kept


def table_cells(rt: ResourceType, obj: dict[str, Any]) -> list[Any]:
    """One Table row's ``cells`` for ``obj``: its name, then each column's value typed as upstream types it."""
    cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for col in _columns(rt):
        try:
            found = evaluate_jsonpath(parse_jsonpath(str(col.get("jsonPath") or "")), obj)
        except JsonPathError:
            found = []
        cells.append(_cell(str(col.get("type") or ""), found[0]) if found else None)
    return cells


def _cell(col_type: str, value: Any) -> Any:
    k = kind_of(value)
    if col_type == "string":
        if k == "null":
            return "<no value>"
        if k in ("map", "list"):
            return go_json(value)
        if k == "bool":
            return "true" if value else "false"
        return float_v(float(value)) if k == "float" else str(value)
    if k == "null":
        return None
    if col_type == "integer":
        return int(value) if k in ("int", "float") else None
    if col_type == "number":
        return float(value) if k in ("int", "float") else None
    if col_type == "boolean":
        return value if k == "bool" else None
    if col_type == "date" and k == "str":
        return _age(value)
    return None


def _age(text: str) -> str:
    """``ConvertToHumanReadableDateType``: ``<unknown>`` for no time, ``<invalid>`` for unparseable or future."""
    if text in ("", "null"):
        return "<unknown>"
    m = _RFC3339.match(text)
    if not m:
        return "<invalid>"
    try:
        stamp = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "<invalid>"
    if m[8] != "Z":
        sign = 1 if m[8][0] == "+" else -1
        stamp -= sign * (int(m[8][1:3]) * 3600 + int(m[8][4:6]) * 60)
    seconds = time.time() - stamp - float(m[7] or 0)
    if seconds < -1:
        return "<invalid>"
    if seconds >= 8 * 365 * 86400:
        return f"{int(seconds // (365 * 86400))}y"
    return human_duration(seconds)
