"""Strict reading of plugin args from a KubeSchedulerConfiguration.

Plugins receive their ``pluginConfig[].args`` as plain JSON. These helpers
read them field by field and raise ``ArgsError`` with the full path of the
offending field (``profiles[0].pluginConfig[1].args.scoringStrategy.type``),
so a user knows exactly what to change. Unknown fields are errors, as in
upstream's strict decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ArgsError", "mapping", "known_fields", "integer", "string", "sequence", "boolean"]


class ArgsError(ValueError):
    """An invalid field in a configuration file, named by its path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
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
            raise ArgsError(f"{path}.{k}" if path else k, f"unknown field (known: {', '.join(sorted(allowed))})")


def integer(v: Any, path: str, *, lo: int | None = None, hi: int | None = None) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ArgsError(path, f"expected an integer, got {v!r}")
    if lo is not None and v < lo:
        raise ArgsError(path, f"must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ArgsError(path, f"must be <= {hi}, got {v}")
    return v


def string(v: Any, path: str, *, choices: Sequence[str] | None = None) -> str:
    if not isinstance(v, str):
        raise ArgsError(path, f"expected a string, got {v!r}")
    if choices is not None and v not in choices:
        raise ArgsError(path, f"must be one of {', '.join(choices)}, got {v!r}")
    return v


def boolean(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise ArgsError(path, f"expected true or false, got {v!r}")
    return v


def sequence(v: Any, path: str) -> Sequence[Any]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ArgsError(path, f"expected a list, got {type(v).__name__}")
    return v
