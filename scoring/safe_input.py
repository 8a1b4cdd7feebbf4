"""Every document vecsched reads from outside passes here first.

Snapshots, pod manifests, configurations, extender and webhook bodies and watch
objects come from people and programs vecsched does not control. Before a reader
looks at a field, the document must be one a Kubernetes API server would accept
as JSON: of bounded size, nested at most ``MAX_DEPTH`` levels, with string keys,
integers within int64 and finite numbers. A document that is not gets one
``InputError`` naming the path of the offending value and quoting at most a
short prefix of it -- never a ``RecursionError``, never a megabyte echoed back.

Limits are checked before the expensive step: a file's size before it is read,
a YAML stream's nesting and aliases from the parser's events before any node is
built, a JSON text's nesting by the decoder's own recursion guard. Then one
iterative walk (no recursion, so no depth can overflow it) checks keys and
numbers.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeGuard

import yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_OBJECT_BYTES",
    "MAX_ALIASES",
    "INT64_MIN",
    "INT64_MAX",
    "InputError",
    "quote",
    "clip",
    "one_line",
    "QUOTE_CHARS",
    "PATH_CHARS",
    "PROBLEM_CHARS",
    "KEY_CHARS",
    "MESSAGE_CHARS",
    "check_tree",
    "is_mapping",
    "check_int64",
    "loads_json",
    "loads_yaml_all",
    "read_text",
]

MAX_DEPTH: Final = 100
"""Deepest nesting of mappings and lists accepted. A Pod with every affinity set is
about 12 levels deep, a List of them 14."""
MAX_OBJECT_BYTES: Final = 3 * 1024 * 1024
"""Largest single object or request body: kube-apiserver's default request body limit (3 MiB)."""
MAX_ALIASES: Final = 100
"""YAML aliases accepted per stream: enough for anchors in a configuration, too few for an
alias bomb (nested aliases that expand to billions of nodes)."""
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_EXPANDED: Final = 1_000_000
"""Values a YAML stream with aliases may expand to: each alias is a whole copy for any reader
that walks the document or writes it out as JSON."""
QUOTE_CHARS: Final = 40
"""Characters of a bad value quoted in an error; the rest is counted, not echoed."""
PATH_CHARS: Final = 200
"""Characters of a JSON path shown in an error; a longer one (a hostile key) keeps its start and
end. The longest real paths -- a pod's preferred anti-affinity term's label selector values,
a config's addedAffinity match fields -- are about 140."""
KEY_CHARS: Final = 100
"""Characters of one mapping key shown in a path: field names reach 47
(``preferredDuringSchedulingIgnoredDuringExecution``), resource and label names a little more."""
PROBLEM_CHARS: Final = 300
"""Characters of the problem part of an error (after object and path), a safety net: the
sentences vecsched writes are shorter, and the input they carry is quoted (``QUOTE_CHARS``)."""

MESSAGE_CHARS: Final = 280
"""Characters of a whole error line that is built as one string (an HTTP 400's text): what is
left of 300 once a command's or a server's prefix is added."""

_REPR: Final = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, QUOTE_CHARS, QUOTE_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 8

_SAFE_PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (line breaks as spaces) and at most about ``limit`` characters:
    a longer text keeps its start and end around "...", as a deep JSON path is best read."""
    text = " ".join(text.split()) if "\n" in text or "\r" in text else text
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-(limit // 2):]}"


class InputError(ValueError):
    """A document outside the limits. ``path`` is the JSON path of the bad value ('' for the
    document itself); the message is one line and already contains it."""

    def __init__(self, path: str, problem: str) -> None:
        path = one_line(path, PATH_CHARS)
        problem = one_line(problem, PROBLEM_CHARS)
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters, saying how long it was when cut."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value) if value.bit_length() < 4 * limit else None
        if digits is not None and len(digits) <= limit:
            return digits
        return f"an integer of {value.bit_length():,} bits"
    if isinstance(value, (Mapping, list, tuple)):
        # reprlib bounds the levels, items and characters it renders: a short container reads
        # as written (['gold']), a long or deep one is counted instead.
        text = _REPR.repr(value)
        if len(text) <= limit and "..." not in text:
            return text
        if isinstance(value, Mapping):
            return f"a mapping of {len(value):,} keys"
        return f"a list of {len(value):,} items"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def clip(text: str, limit: int = 160) -> str:
    """The first line of ``text`` (a parser's message, say), cut to ``limit`` characters, so
    that an error about a huge line of input does not carry the line."""
    lines = text.splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line):,} characters)"


def _child(path: str, key: Any) -> str:
    """``path`` extended by a mapping key or a list index; a long key is cut (it is the
    input's, and may be a megabyte)."""
    if not isinstance(key, str):
        return f"{path}[{quote(key)}]"
    key = key if len(key) <= KEY_CHARS else f"{key[:KEY_CHARS]}..."
    return f"{path}.{key}" if path else key


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, quicker for the dicts that decoded JSON holds (the ABC's
    check costs several times a ``type`` test, and the watch's readers make it many times per pod)."""
    return type(value) is dict or isinstance(value, Mapping)


def check_int64(value: int, path: str) -> int:
    """``value`` when it fits Kubernetes' int64; an ``InputError`` naming ``path`` otherwise."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise InputError(path, f"{quote(value)} is out of int64 range")
    return value


def check_tree(doc: Any, *, max_depth: int = MAX_DEPTH, path: str = "", values: bool = True) -> None:
    """Raise ``InputError`` unless ``doc`` nests at most ``max_depth`` levels and (with ``values``)
    holds only string keys, int64 integers, finite floats, strings, booleans and nulls.
    Iterative; shared sub-trees (YAML aliases) are walked once. Without ``values`` only the
    nesting is checked: for a reader that checks each object it finds inside, so that the
    error names the object."""
    if _tree_ok(doc, max_depth, values):
        return
    # Something is wrong (or unusual: a tuple, a shared sub-tree): walk again, naming paths.
    seen: set[int] = set()
    stack: list[tuple[Any, str, int]] = [(doc, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, (Mapping, list, tuple)):
            if depth >= max_depth:
                raise InputError(where, f"nested deeper than {max_depth} levels")
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, Mapping):
                for k, v in node.items():
                    if values and not isinstance(k, str):
                        raise InputError(where, f"key {quote(k)} is not a string")
                    stack.append((v, _child(where, k), depth + 1))
            else:
                stack.extend((v, _child(where, i), depth + 1) for i, v in enumerate(node))
        elif not values or isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        elif isinstance(node, int):
            check_int64(node, where)
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise InputError(where, f"{node!r} is not a finite number")
        else:  # YAML's timestamps, binary and sets, which JSON cannot carry
            raise InputError(where, f"{quote(node)} is a {type(node).__name__}, not a JSON value")


_FAST_NODES: Final = 2_000_000
"""Values the quick walk visits before it leaves the document to the careful one, which walks a
sub-tree shared through YAML aliases once."""


def _tree_ok(doc: Any, max_depth: int, values: bool) -> bool:
    """True when ``doc`` is plain JSON within the limits, found without building a path for
    every value (most of ``check_tree``'s cost on the documents that pass); False when anything
    needs a closer look. It walks level by level (no depth kept per value) and checks a
    mapping's keys and values in one pass: the live scheduler runs it on every Pod it reads."""
    if type(doc) is not dict and type(doc) is not list:
        return False
    level: list[Any] = [doc]
    depth = visited = 0
    while level:
        if depth >= max_depth:
            return False
        deeper: list[Any] = []
        push = deeper.append
        for node in level:
            visited += len(node)
            if visited > _FAST_NODES:
                return False
            if type(node) is dict and values:
                for k, v in node.items():
                    if type(k) is not str:
                        return False
                    t = type(v)
                    if t is str or t is bool or v is None:
                        continue
                    if t is dict or t is list:
                        push(v)
                    elif t is int:
                        if not INT64_MIN <= v <= INT64_MAX:
                            return False
                    elif t is not float or not math.isfinite(v):
                        return False
                continue
            for v in (node.values() if type(node) is dict else node):
                t = type(v)
                if t is str or t is bool or v is None:
                    continue
                if t is dict or t is list:
                    push(v)
                elif t is int:
                    if values and not INT64_MIN <= v <= INT64_MAX:
                        return False
                elif t is float:
                    if values and not math.isfinite(v):
                        return False
                else:
                    return False
        level = deeper
        depth += 1
    return True


def _check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise InputError("", f"larger than {_size(max_bytes)} ({size:,} bytes)")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


def _reject_constant(name: str) -> Any:
    raise InputError("", f"{name} is not a number JSON allows")


def loads_json(data: str | bytes, *, max_bytes: int | None = MAX_OBJECT_BYTES,
               max_depth: int = MAX_DEPTH, values: bool = True) -> Any:
    """The JSON document in ``data``, checked (``check_tree``; only its nesting without
    ``values``); ``InputError`` for limits, ``json.JSONDecodeError`` or (bytes that are not
    UTF-8) ``UnicodeDecodeError`` for syntax -- all ``ValueError``s."""
    _check_size(len(data), max_bytes)
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise InputError("", f"nested deeper than {max_depth} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError):  # syntax: the caller words it
        raise
    except ValueError as e:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise InputError("", f"a number too long to read ({str(e).split(':')[0]})") from None
    check_tree(doc, max_depth=max_depth, values=values)
    return doc


def loads_yaml_all(text: str, *, max_bytes: int | None = MAX_OBJECT_BYTES, max_depth: int = MAX_DEPTH,
                   max_aliases: int = MAX_ALIASES, values: bool = True) -> list[Any]:
    """The documents of a (multi-document) YAML stream, nulls left out, each checked;
    ``InputError`` for limits, ``yaml.YAMLError`` for syntax. Nesting and aliases are counted
    from the parser's events before any document is built."""
    _check_size(len(text), max_bytes)
    try:
        aliases = _count_events(text, max_depth=max_depth, max_aliases=max_aliases)
    except yaml.MarkedYAMLError as e:
        if e.problem and "nesting depth" in e.problem:  # libyaml's own limit, met while scanning ahead
            raise InputError("", f"nested deeper than {max_depth} levels") from None
        raise
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except ValueError as e:  # an integer of more digits than Python converts
        if isinstance(e, yaml.YAMLError):
            raise
        raise InputError("", f"a number too long to read ({str(e).split(':')[0]})") from None
    for d in docs:
        if aliases:  # first: the walk below would follow every copy
            _check_expansion(d)
        check_tree(d, max_depth=max_depth, values=values)
    return docs


def _count_events(text: str, *, max_depth: int, max_aliases: int) -> int:
    """The aliases of a YAML stream, read from the parser's events (streamed, nothing built);
    ``InputError`` past ``max_depth`` levels or ``max_aliases`` aliases."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_SAFE_PARSER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                raise InputError("", f"nested deeper than {max_depth} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise InputError("", f"more than {max_aliases} YAML aliases")
    return aliases


def _check_expansion(doc: Any) -> None:
    """Raise unless ``doc``, with every shared sub-tree counted as often as it is referenced,
    holds at most ``MAX_EXPANDED`` values. Sizes are memoised per node, so this is linear in the
    document as parsed, not as expanded."""
    size: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (Mapping, list)) or id(node) in size:
            continue
        kids = list(node.values()) if isinstance(node, Mapping) else node
        if children_done:
            total = 1 + sum(size.get(id(k), 1) for k in kids)
            if total > MAX_EXPANDED:
                raise InputError("", f"YAML aliases expand to more than {MAX_EXPANDED:,} values")
            size[id(node)] = total
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids)


def read_text(path: str | Path, *, max_bytes: int | None) -> str:
    """The UTF-8 text of ``path``, refusing a file over ``max_bytes`` before reading it.
    ``OSError`` for files that cannot be read, ``InputError`` for size and encoding."""
    with open(path, "rb") as f:
        _check_size(os.fstat(f.fileno()).st_size, max_bytes)
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    _check_size(len(data), max_bytes)  # a pipe or a file that grew
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("", f"not UTF-8 text (byte {e.start:,})") from None
