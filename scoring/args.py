"""Strict reading of plugin args from a KubeSchedulerConfiguration.

Plugins receive their ``pluginConfig[].args`` as plain JSON. These helpers
read them field by field and raise ``ArgsError`` with the full path of the
offending field (``profiles[0].pluginConfig[1].args.scoringStrategy.type``),
so a user knows exactly what to change. Unknown fields are errors, as in
upstream's strict decoding.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from scoring.safe_input import INT64_MAX, INT64_MIN, PATH_CHARS, PROBLEM_CHARS, QUOTE_CHARS, one_line, quote

__all__ = ["ArgsError", "known_names", "KNOWN_CHARS", "mapping", "known_fields", "integer", "string", "sequence", "boolean"]


KNOWN_CHARS: Final = 150
"""Longest list of known names an error spells out whole (a profile's fields, a plugin's args);
longer lists (every plugin, a configuration's top-level fields) give the closest names."""


class ArgsError(ValueError):
    """An invalid field in a configuration file, named by its path."""

    def __init__(self, path: str, problem: str) -> None:
        short_path, short_problem = one_line(path, PATH_CHARS), one_line(problem, PROBLEM_CHARS)
        super().__init__(f"{short_path}: {short_problem}" if path else short_problem)
        self.path = path
        self.problem = problem


def mapping(v: Any, path: str) -> Mapping[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ArgsError(path, f"expected an object, got {type(v).__name__}")
    return v


def known_fields(m: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    allowed = set(allowed)
    for k in m:
        if k not in allowed:
            raise ArgsError(f"{path}.{_key(k)}" if path else _key(k), f"unknown field (known: {known_names(allowed, k)})")


def known_names(names: Iterable[str], given: Any) -> str:
    """The names a field or plugin may have, for an error about ``given``: all of them, sorted,
    when they fit in ``KNOWN_CHARS``; otherwise the ones closest to ``given`` and how many there are."""
    ordered = sorted(names)
    text = ", ".join(ordered)
    if len(text) <= KNOWN_CHARS:
        return text
    close = difflib.get_close_matches(given, ordered, n=3) if isinstance(given, str) and len(given) <= 100 else []
    return f"{', '.join(close or ordered[:3])}, ... {len(ordered)} in all"


def _key(k: Any) -> str:
    """A mapping key as a path element: cut when long, quoted when not a string."""
    if not isinstance(k, str):
        return f"[{quote(k)}]"
    return k if len(k) <= QUOTE_CHARS else f"{k[:QUOTE_CHARS]}..."  # an unknown key: a typo, or junk


def integer(v: Any, path: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """An integer within [lo, hi]; within int64 (Go's ``int64``, what upstream decodes into)
    whatever the bounds say."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise ArgsError(path, f"expected an integer, got {quote(v)}")
    if not INT64_MIN <= v <= INT64_MAX:
        raise ArgsError(path, f"{quote(v)} is out of int64 range")
    if lo is not None and v < lo:
        raise ArgsError(path, f"must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ArgsError(path, f"must be <= {hi}, got {v}")
    return v


def string(v: Any, path: str, *, choices: Sequence[str] | None = None) -> str:
    if not isinstance(v, str):
        raise ArgsError(path, f"expected a string, got {quote(v)}")
    if choices is not None and v not in choices:
        raise ArgsError(path, f"must be one of {', '.join(choices)}, got {quote(v)}")
    return v


def boolean(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise ArgsError(path, f"expected true or false, got {quote(v)}")
    return v


def sequence(v: Any, path: str) -> Sequence[Any]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ArgsError(path, f"expected a list, got {type(v).__name__}")
    return v
