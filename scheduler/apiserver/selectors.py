"""Label and field selectors, parsed once per request and matched per object.

List and watch filter with ``labelSelector`` and ``fieldSelector`` exactly as
kube-apiserver does, because informers (and ``kubectl describe``'s event
lookup) depend on it. Parsing happens once; matching is a few dict lookups
so that watch fan-out over thousands of events stays cheap.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import ApiError, bad_request

__all__ = ["LabelSelector", "FieldSelector", "parse_label_selector", "parse_field_selector", "field_values",
           "label_selector_matches"]

_KEY: Final = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TOKEN: Final = re.compile(r"\s*(\(|\)|,|==|=|!=|!|>|<|[^\s(),=!<>]+)")


@dataclass(frozen=True)
class _Req:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        v = labels.get(self.key)
        if op in ("=", "in"):
            return v is not None and v in self.values
        if op in ("!=", "notin"):
            return v is None or v not in self.values
        if v is None:
            return False
        try:
            n = int(v)
        except ValueError:
            return False
        return n > int(self.values[0]) if op == "gt" else n < int(self.values[0])


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of label requirements; empty matches everything."""

    reqs: tuple[_Req, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.reqs)

    @property
    def empty(self) -> bool:
        return not self.reqs


def _err(text: str, why: str) -> ApiError:
    return bad_request(f"unable to parse requested label selector {text!r}: {why}")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the ``labelSelector`` syntax: ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3``."""
    text = text or ""
    toks = [m.group(1) for m in _TOKEN.finditer(text)]
    if "".join(toks) != re.sub(r"\s+", "", text):
        raise _err(text, "invalid character")
    reqs: list[_Req] = []
    i = 0

    def need_key(tok: str) -> str:
        if not _KEY.match(tok) or len(tok.split("/")[-1]) > 63:
            raise _err(text, f"invalid label key {tok!r}")
        return tok

    def need_value(tok: str) -> str:
        if len(tok) > 63 or not _VALUE.match(tok):
            raise _err(text, f"invalid label value {tok!r}")
        return tok

    while i < len(toks):
        t = toks[i]
        if t == "!":
            if i + 1 >= len(toks):
                raise _err(text, "found '', expected: identifier after '!'")
            reqs.append(_Req(need_key(toks[i + 1]), "!", ()))
            i += 2
        elif t in ("(", ")", ",", "=", "==", "!="):
            raise _err(text, f"found '{t}', expected: !, identifier, or 'end of string'")
        else:
            key = need_key(t)
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is None or nxt == ",":
                reqs.append(_Req(key, "exists", ()))
                i += 1
            elif nxt in ("=", "==", "!="):
                if i + 2 >= len(toks) or toks[i + 2] in (",", "(", ")"):
                    value = ""
                    i += 2
                else:
                    value = need_value(toks[i + 2])
                    i += 3
                reqs.append(_Req(key, "!=" if nxt == "!=" else "=", (value,)))
            elif nxt in ("in", "notin"):
                if i + 2 >= len(toks) or toks[i + 2] != "(":
                    raise _err(text, f"found '{toks[i + 2] if i + 2 < len(toks) else ''}', expected: '('")
                j = i + 3
                values: list[str] = []
                while True:
                    if j >= len(toks):
                        raise _err(text, "found '', expected: ')'")
                    if toks[j] == ")":
                        break
                    if toks[j] == ",":
                        j += 1
                        continue
                    values.append(need_value(toks[j]))
                    j += 1
                if not values:
                    raise _err(text, "for 'in', 'notin' operators, values set can't be empty")
                reqs.append(_Req(key, nxt, tuple(values)))
                i = j + 1
            elif nxt in (">", "<"):
                num = toks[i + 2] if i + 2 < len(toks) else ""
                if not re.fullmatch(r"-?\d+", num):
                    raise _err(text, f"for 'Gt', 'Lt' operators, the value must be an integer, got {num!r}")
                reqs.append(_Req(key, "gt" if nxt == ">" else "lt", (num,)))
                i += 3
            else:
                raise _err(text, f"found '{nxt}', expected: '=', '!=', '==', 'in', notin'")
        if i < len(toks):
            if toks[i] != ",":
                raise _err(text, f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
            if i >= len(toks):
                raise _err(text, "found '', expected: identifier")
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms over supported field labels."""

    terms: tuple[tuple[str, int, bool, str], ...]  # (label, index into the field tuple, equal, value)

    def matches(self, values: tuple[str, ...]) -> bool:
        for _, index, equal, value in self.terms:
            if (values[index] == value) != equal:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.terms

    def labels(self) -> tuple[str, ...]:
        return tuple(t[0] for t in self.terms)


def parse_field_selector(text: str, *, supported: tuple[str, ...]) -> FieldSelector:
    """Parse ``fieldSelector``; an unsupported field label is a 400 like the real server's.

    ``supported`` is the resource's field labels in the order ``field_values`` returns them.
    """
    terms: list[tuple[str, int, bool, str]] = []
    for part in _split_unescaped(text or ""):
        part = part.strip()
        if not part:
            continue
        for op, equal in (("!=", False), ("==", True), ("=", True)):
            idx = part.find(op)
            if idx > 0:
                label, value = part[:idx].strip(), _unescape(part[idx + len(op):].strip())
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if label not in supported:
            raise bad_request(f"field label not supported: {label}")
        terms.append((label, supported.index(label), equal, value))
    return FieldSelector(tuple(terms))


def _split_unescaped(text: str) -> list[str]:
    parts, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append("\\" + ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


_Plan = tuple[tuple[str, tuple[tuple[int, tuple[str, ...]], ...]], ...]
_PLANS: dict[int, tuple[Mapping[str, tuple[str, ...]], _Plan]] = {}
# Plans kept at most: one per served type's field paths (a few dozen, plus custom resources).
_MAX_PLANS: Final = 256


def _plan(paths: Mapping[str, tuple[str, ...]]) -> _Plan:
    """``paths`` grouped by their first key, each with its position in the answer: (head, ((i, rest), ...)).

    Remembered by identity: a type's field paths are fixed when the type is made, and every
    stored version of its objects asks again. The mapping itself is kept with its plan, so its
    id cannot be taken by another one while the plan is remembered.
    """
    known = _PLANS.get(id(paths))
    if known is not None and known[0] is paths:
        return known[1]
    groups: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for i, path in enumerate(paths.values()):
        groups.setdefault(path[0], []).append((i, path[1:]))
    plan = tuple((head, tuple(rest)) for head, rest in groups.items())
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(paths)] = (paths, plan)
    return plan


def field_values(obj: Mapping[str, Any], paths: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The string value of every selectable field of ``obj``, in ``paths`` order.

    Absent fields are ``""``, booleans lowercase; values are interned, since a
    few values (phases, scheduler and node names) repeat over many objects.
    Every stored version computes them: the paths sharing a first key read it once,
    and an absent one (a new pod's ``status``) leaves all of theirs ``""`` at once.
    """
    out = [""] * len(paths)
    for head, rests in _plan(paths):
        top = obj.get(head)
        if top is None:
            continue
        for i, rest in rests:
            cur = top
            for p in rest:
                try:
                    cur = cur.get(p)
                except AttributeError:  # a list or a scalar where an object was expected: absent
                    cur = None
                if cur is None:
                    break
            if cur is None or cur == "":
                continue
            if cur is True or cur is False:
                out[i] = "true" if cur else "false"
            else:
                out[i] = sys.intern(cur if isinstance(cur, str) else str(cur))
    return tuple(out)


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a metav1.LabelSelector object (``matchLabels``, ``matchExpressions``
    with In, NotIn, Exists, DoesNotExist), already validated; the empty selector matches everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
