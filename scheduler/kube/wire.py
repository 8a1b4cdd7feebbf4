"""JSON on the wire to and from the API server, fast where it can be and exact where it must be.

The live scheduler decodes every watch line and answer and encodes every request body,
several per pod, so it uses ``orjson`` (several times faster than the ``json`` module
both ways). ``orjson`` differs from ``json`` where hostile input lives, and there the
``json`` module decides, so that what the rest of vecsched checks (``check_tree``: int64
integers, finite numbers) sees what ``json`` would have given it:

- an integer beyond ``orjson``'s 64-bit range silently becomes a float (``2**64`` reads
  as ``1.8446744073709552e+19``), which would pass as an ordinary number; a text with a
  run of 19 or more digits (the shortest integer ``orjson`` cannot hold exactly is
  ``-9223372036854775809``, 19 digits) is therefore decoded by ``json``, which keeps the
  exact integer for ``check_int64`` to refuse;
- ``NaN``, ``Infinity`` and lone surrogates are refused by ``orjson`` and decoded by
  ``json`` (``check_tree`` refuses the numbers: the object is skipped, not the stream).

Errors are ``json``'s: ``ValueError`` for syntax, ``RecursionError`` for nesting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = ["loads", "dumps"]

_DIGITS: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
"""A translation table: digits to ``0``, every other byte to ``x``; a run of ``_LONG_RUN`` in
the translated text is a run of that many digits in the original (a byte scan, no regex)."""
_LONG_RUN: Final = b"0" * 19


def loads(data: bytes) -> Any:
    """The JSON document in ``data``, decoded as ``json.loads`` would decode it."""
    if _LONG_RUN in data.translate(_DIGITS):  # may hold an integer orjson would turn into a float
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # what json accepts and orjson does not, or json's own error


def dumps(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON; a mapping that is not a dict is written as one, and what
    ``orjson`` refuses (an integer beyond 64 bits, a key that is not a string) is written by ``json``."""
    try:
        return orjson.dumps(obj, default=_plain)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj, separators=(",", ":"), default=_plain).encode()


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
