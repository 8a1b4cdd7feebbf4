"""Limits that keep one hostile request from exhausting the embedded API server.

The 3 MiB body cap (``http.MAX_BODY_BYTES``) bounds the bytes a client sends,
not the work or memory they cost once decoded. Three cheap documents defeat it:

* JSON nested 100,000 levels deep: Python's ``json`` module and every recursive
  helper after it (``copy.deepcopy``, the patch functions, ``json.dumps``) raise
  ``RecursionError``, which would surface as a 500 or worse;
* YAML with nested aliases ("billion laughs"): a few KB whose value, once every
  alias is expanded, is gigabytes of JSON;
* a JSON patch whose ``copy`` operations double a value twenty times.

This module answers each with the 4xx ``ApiError`` kube-apiserver would give,
before the expensive part happens: depth is checked without recursion, YAML
alias expansion is sized from the parser's events without building it, and
``json_size`` gives ``patch.json_patch`` its running size estimate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor

from . import errors
from .errors import ApiError

__all__ = ["JSON_HOOKS", "MAX_DEPTH", "check_depth", "json_size", "loads_json", "nonfinite_seen", "note_nonfinite",
           "safe_yaml_load", "too_deep"]

# Nesting (objects and arrays) accepted in a request. kube-apiserver's JSON
# decoder stops at 10,000 levels ("exceeded max depth"), but Python's helpers
# recurse: copy.deepcopy uses two frames per level and fails near 500 levels
# under the default recursion limit of 1,000 frames, before counting the frames
# of the HTTP stack. 200 leaves that headroom and is still far above real
# objects: a Deployment's deepest path (spec.template.spec.affinity...
# matchExpressions[0].values[0]) is 13 levels, a CRD schema a few dozen.
MAX_DEPTH: Final = 200

_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"


# sigs.k8s.io/yaml (go-yaml v2) keeps an unquoted ``2024-01-01T00:00:00Z`` a
# string when decoding into untyped JSON; PyYAML's SafeLoader would build a
# ``datetime`` that ``json.dumps`` cannot serialise (a 500 on the next write).
_RESOLVERS: Final = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"


class _NonFinite:
    """Whether a NaN or an infinity may be in a stored object (see ``nonfinite_seen``)."""

    seen = False


def note_nonfinite() -> None:
    """Record that a decoded value held a NaN or an infinity (they are kept, as ``json`` reads them)."""
    _NonFinite.seen = True


def nonfinite_seen() -> bool:
    """Whether any value this process decoded for the server (a body, a webhook's answer, a state
    file) held a NaN or an infinity: only then can ``store.dumps`` meet one, which ``orjson`` would
    write as ``null`` where ``json`` writes ``NaN``. Read where a fast path depends on it."""
    return _NonFinite.seen


def _json_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf and nan - nan are nan: not finite ("1e400")
        note_nonfinite()
    return value


def _json_constant(name: str) -> float:
    note_nonfinite()  # NaN, Infinity, -Infinity
    return float(name)


JSON_HOOKS: Final[dict[str, Any]] = {"parse_float": _json_float, "parse_constant": _json_constant}
"""``json.loads`` keyword arguments that read numbers as it does and call ``note_nonfinite`` for a
NaN or an infinity. ``parse_float`` runs only for numbers with a fraction or an exponent, which
Kubernetes objects rarely hold."""


def _yaml_float(constructor: SafeConstructor, node: Any) -> float:
    value: float = SafeConstructor.construct_yaml_float(constructor, node)
    if value - value != 0.0:  # .nan, .inf
        note_nonfinite()
    return value


_CONSTRUCTORS: Final = {**yaml.SafeLoader.yaml_constructors, _TIMESTAMP_TAG: SafeConstructor.construct_yaml_str,
                        _FLOAT_TAG: _yaml_float}
# libyaml's parser when PyYAML was built with it: PyYAML's own scanner looks ahead
# quadratically on deep flow collections (29 s for 100,000 brackets), libyaml's
# takes milliseconds. Its composer recurses in C, so it only ever sees documents
# whose depth _check_events has measured.
_PARSER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _loader(text: bytes | str) -> Any:
    """A safe loader over ``text`` that reads timestamps as strings, as Kubernetes does."""
    loader = _PARSER(text)
    loader.yaml_implicit_resolvers = _RESOLVERS
    loader.yaml_constructors = _CONSTRUCTORS
    return loader


def too_deep(*, limit: int = MAX_DEPTH) -> ApiError:
    """The answer to a value nested more than ``limit`` levels deep."""
    # 400, not 422: like kube-apiserver, whose decoder fails with "exceeded max
    # depth" before any validation runs (a decode failure is a BadRequest).
    return errors.bad_request(f"json parse error: exceeded max depth (limit is {limit} nested objects and arrays)")


def check_depth(value: Any, *, limit: int = MAX_DEPTH) -> None:
    """Raise the 400 ``ApiError`` if ``value`` nests objects/arrays more than ``limit`` deep.

    ``{}`` and ``[]`` are one level, scalars none. Iterative (an explicit
    stack), so any depth is measured without touching the recursion limit; a
    cyclic value (impossible from JSON) also stops, at the limit.
    """
    if not isinstance(value, (dict, list)):
        return
    if limit < 1:
        raise too_deep(limit=limit)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    raise too_deep(limit=limit)
                stack.append((child, depth + 1))


def loads_json(
    body: bytes | str,
    *,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` that never lets ``RecursionError`` out and refuses over-deep values.

    Too deep for the C decoder (about 1,000 levels) or deeper than
    ``max_depth``: the 400 ``ApiError`` of ``check_depth``. Malformed JSON still
    raises ``ValueError``, for the caller to word (empty body, parse error...).
    """
    try:
        value = json.loads(body, object_pairs_hook=object_pairs_hook, **JSON_HOOKS)
    except RecursionError:
        raise too_deep(limit=max_depth) from None
    check_depth(value, limit=max_depth)
    return value


def json_size(value: Any) -> int:
    """Length of ``value`` as compact JSON (characters; the running estimate of patch sizes)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str))
    except RecursionError:
        raise too_deep() from None


def safe_yaml_load(text: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load`` for request bodies, refusing alias bombs and deep nesting first.

    A first pass over the parser's events (libyaml's, when PyYAML has it)
    sizes the value as JSON with every alias expanded, counting each anchor
    once, and measures its nesting; only then is the document built.

    * expanded size over ``max_bytes``, or an alias inside its own anchor (an
      infinite value): 413 ``RequestEntityTooLarge`` naming the limit.
      kube-apiserver's go-yaml refuses such documents by an alias-to-node ratio
      ("document contains excessive aliasing", a 400); a size is what vecsched
      can state exactly, and it is the body's own limit;
    * nesting over ``max_depth`` (aliases included): 400, as ``check_depth``;
    * malformed YAML: 400 ``error converting YAML to JSON: ...``.

    Timestamps load as strings, as Kubernetes' YAML decoder leaves them.
    """
    try:
        _check_events(text, max_bytes=max_bytes, max_depth=max_depth)
        loader = _loader(text)
        try:
            value = loader.get_single_data()
        finally:
            loader.dispose()
    except RecursionError:
        raise too_deep(limit=max_depth) from None
    except yaml.YAMLError as e:
        if getattr(e, "problem", None) == "exceeded maximum nesting depth":  # libyaml's own cap (1,000 levels)
            raise too_deep(limit=max_depth) from None
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
    except ValueError as e:  # e.g. an integer beyond Python's 4,300-digit conversion limit
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
    check_depth(value, limit=max_depth)  # an alias may nest its anchor's value deeper
    return value


class _Open:
    """A collection whose end event has not come yet: its anchor and running JSON size."""

    __slots__ = ("anchor", "size", "items")

    def __init__(self, *, anchor: str | None) -> None:
        self.anchor = anchor
        self.size = 0
        self.items = 0


def _check_events(text: bytes | str, *, max_bytes: int, max_depth: int) -> None:
    """Raise 413/400 if ``text``'s value, aliases expanded, is larger than ``max_bytes`` or too deep.

    One pass, no recursion, nothing expanded: an anchor's size is recorded
    when its node ends and added again at each alias; an alias to an anchor
    still open is a cycle. A running size past the limit stops at once.
    """
    anchors: dict[str, int | None] = {}  # None: the anchored collection is still open
    stack: list[_Open] = []
    for event in yaml.parse(text, Loader=_PARSER):
        anchor: str | None = None
        if isinstance(event, yaml.ScalarEvent):
            size = len(event.value) + 2  # a quoted string at most (numbers, booleans and null are shorter)
            anchor = event.anchor
        elif isinstance(event, yaml.AliasEvent):
            known = anchors.get(event.anchor, 0)  # an undefined alias is the loader's error to word
            if known is None:
                raise errors.too_large(max_bytes)  # the alias is inside its own anchor: infinitely large
            size = known
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= max_depth:
                raise too_deep(limit=max_depth)
            stack.append(_Open(anchor=event.anchor))
            if event.anchor is not None:
                anchors[event.anchor] = None
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            # "[a,b]": brackets and a separator between items; '{"k":v,"j":w}' has as many
            # (a colon in each pair, a comma between pairs) over its keys and values
            size = 2 + max(done.items - 1, 0) + done.size
            anchor = done.anchor
        else:
            if isinstance(event, yaml.DocumentStartEvent):
                anchors.clear()  # anchors are scoped to their document
            continue
        if anchor is not None:
            anchors[anchor] = size
        if stack:
            stack[-1].size += size
            stack[-1].items += 1
            size = stack[-1].size
        if size > max_bytes:
            raise errors.too_large(max_bytes)
