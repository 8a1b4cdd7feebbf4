"""Kubernetes protobuf request bodies, read into the JSON objects they stand for.

kubectl 1.35 and later send the bodies of their typed writes (``kubectl create
namespace``, ``create deployment``, a drain's evictions...) as
``application/vnd.kubernetes.protobuf``, and client-go does not fall back to
JSON after a 415. The embedded API server therefore reads these bodies:
``decode`` turns one into the dict Go's ``encoding/json`` would have made of
the same object, ``apiVersion`` and ``kind`` included, and the server handles
it like a JSON body. Answers stay JSON (clients follow the response's type).

What the wire leaves implicit is reproduced: the protobuf encoder always sends
value fields, so zero values of ``omitempty`` fields are dropped; empty lists
and maps are absent; ``metav1.Time`` becomes RFC 3339 (an empty one is
omitted), ``Quantity`` its string, ``IntOrString`` an int or a string, bytes
base64. Nothing is dropped silently: a field the tables do not know is a 400
unless its value is zero, and a kind without a table is a 415 (JSON and YAML
are accepted for every kind). Hostile input is bounded: messages nest at most
``_MAX_DEPTH`` deep, and every length is checked against the bytes that remain
before it is used, so nothing larger than the body is ever allocated.

The message types it knows (field numbers, JSON names, which zero values are
kept) are data, in ``protobuf_schema.py``; this module is the decoder.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Final, NamedTuple

from .errors import ApiError, bad_request
from .limits import JSON_HOOKS
from .protobuf_schema import SUPPORTED_KINDS, TABLE

__all__ = ["MEDIA_TYPE", "SUPPORTED_KINDS", "decode"]

MEDIA_TYPE: Final = "application/vnd.kubernetes.protobuf"
_MAGIC: Final = b"k8s\x00"
_MAX_DEPTH: Final = 64
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _Field(NamedTuple):
    name: str
    """JSON name; empty for a Go-embedded struct whose fields belong to the parent object."""
    kind: str
    """``s i b y d r``, or a message type (a map's kind is its entry type, ``map<string, v>``)."""
    repeated: bool
    keep: bool
    """Whether a zero value is still part of the JSON (a pointer, or a value without omitempty)."""


_SPEC: Final = re.compile(r"(\d+)(\w*)(?::\{(\w*)\}|:(\w+))?(\*?)(!?)")
_ENTRY: Final = re.compile(r"(\w+)\(([^)]*)\)")
_WIRE: Final = {"i": 0, "b": 0, "d": 1}  # wire types of the scalar kinds; every other kind is length-delimited
_MISSING: Final = {"s": "", "y": "", "Quantity": "0"}  # a map value the encoder left out


def _schemas() -> dict[str, dict[int, _Field]]:
    """``protobuf_schema.TABLE`` by message type and field number, checked once at import."""
    text = "\n".join(line for line in TABLE.splitlines() if not line.startswith("#"))
    if _ENTRY.sub("", text).strip():
        raise ValueError(f"stray text in the table: {_ENTRY.sub('', text).split()[0]!r}")
    schemas: dict[str, dict[int, _Field]] = {}
    for message, spec in _ENTRY.findall(text):
        fields = schemas.setdefault(message, {})
        for token in spec.split():
            m = _SPEC.fullmatch(token)
            if m is None:
                raise ValueError(f"bad field spec {token!r} of {message}")
            num, name, value, kind, repeated, keep = m.groups()
            if value is not None:  # a map is a repeated entry message: key = 1, value = 2
                kind = f"map<string, {value or 's'}>"
                schemas[kind] = {1: _Field("key", "s", False, True), 2: _Field("value", value or "s", False, True)}
            fields[int(num)] = _Field(name, kind or "s", bool(repeated), bool(keep))
    named = [(m, f.kind) for m, fields in schemas.items() for f in fields.values()]
    for where, kind in named + sorted(SUPPORTED_KINDS) + [("any", "DeleteOptions")]:
        if kind[:1].isupper() and kind not in schemas:  # every message type named has a table
            raise ValueError(f"{where} names {kind}, which has no table")
    return schemas


_SCHEMAS: Final = _schemas()


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of a Kubernetes protobuf body (``k8s\\x00`` + ``runtime.Unknown``).

    Raises a 400 ``ApiError`` for a malformed body or a non-zero field the
    tables do not know, and a 415 for a kind that has no table.
    """
    if not body.startswith(_MAGIC):
        raise bad_request(f"the {MEDIA_TYPE} body does not start with the magic bytes 'k8s\\x00'")
    buf = memoryview(body)
    envelope = _message(buf, len(_MAGIC), len(buf), "Unknown", depth=0, path="")
    type_meta = envelope.get("typeMeta", {})
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if envelope.get("contentEncoding"):
        raise _unsupported(f"the {MEDIA_TYPE} body of {kind} has content encoding "
                           f"{envelope['contentEncoding']!r}, which is not supported")
    if kind != "DeleteOptions" and (api_version, kind) not in SUPPORTED_KINDS:
        listed = ", ".join(f"{k} ({gv})" for gv, k in sorted(SUPPORTED_KINDS))
        raise _unsupported(f"the vecsched API server cannot read {kind or 'an object without kind'} ({api_version}) "
                           f"from {MEDIA_TYPE}: application/json and application/yaml are accepted for every kind, "
                           f"{MEDIA_TYPE} only for {listed} and DeleteOptions")
    raw: memoryview = envelope.get("raw", buf[:0])
    return {"apiVersion": api_version, "kind": kind, **_message(raw, 0, len(raw), kind, depth=1, path="")}


def _unsupported(message: str) -> ApiError:
    return ApiError(code=415, reason="UnsupportedMediaType", message=message)


def _malformed(problem: str, *, message: str, path: str, num: int | None = None) -> ApiError:
    where = f"field {num} of {message}" if num is not None else message
    return bad_request(f"couldn't decode the {MEDIA_TYPE} body: {problem} in {where}" + (f" at {path}" if path else ""))


def _varint(buf: memoryview, pos: int, end: int, *, message: str, path: str, num: int | None) -> tuple[int, int]:
    value = shift = 0
    while shift < 70:
        if pos >= end:
            raise _malformed("truncated varint", message=message, path=path, num=num)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _malformed("varint longer than 10 bytes", message=message, path=path, num=num)


def _wire(buf: memoryview, start: int, end: int, *, message: str, path: str) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, a, b) per field: a is the value of a varint, [a, b) the bytes of the others."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end, message=message, path=path, num=None)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise _malformed("field number 0", message=message, path=path)
        if wire == 0:
            value, pos = _varint(buf, pos, end, message=message, path=path, num=num)
            yield num, 0, value, pos
            continue
        if wire == 2:
            size, pos = _varint(buf, pos, end, message=message, path=path, num=num)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise _malformed(f"unsupported wire type {wire}", message=message, path=path, num=num)
        if size > end - pos:
            raise _malformed(f"length {size} past the end of the message", message=message, path=path, num=num)
        yield num, wire, pos, pos + size
        pos += size


def _message(buf: memoryview, start: int, end: int, message: str, *, depth: int, path: str) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise _malformed(f"messages nested deeper than {_MAX_DEPTH}", message=message, path=path)
    schema = _SCHEMAS[message]
    out: dict[str, Any] = {}
    for num, wire, a, b in _wire(buf, start, end, message=message, path=path):
        f = schema.get(num)
        if f is None:
            if a == 0 if wire == 0 else a == b if wire == 2 else not any(buf[a:b]):
                continue  # a field newer than the table, sent with its zero value
            raise _malformed("unknown field with a non-zero value", message=message, path=path, num=num)
        at = f"{path}.{f.name}" if path and f.name else f.name or path
        if f.repeated and wire == 2 and _WIRE.get(f.kind) == 0:  # packed varints
            while a < b:
                value, a = _varint(buf, a, b, message=message, path=at, num=num)
                out.setdefault(f.name, []).append(_value(buf, 0, value, a, f.kind, message=message, num=num,
                                                         depth=depth, path=at))
            continue
        if f.repeated and not f.kind.startswith("map<"):
            at = f"{at}[{len(out.get(f.name, ()))}]"
        value = _value(buf, wire, a, b, f.kind, message=message, num=num, depth=depth, path=at)
        if f.kind.startswith("map<"):
            out.setdefault(f.name, {})[value.get("key", "")] = value.get("value", _MISSING.get(f.kind[12:-1]))
        elif f.repeated:
            out.setdefault(f.name, []).append(value)
        elif not f.name:
            out.update(value)
        elif value is None or (not f.keep and value in ("", 0)):
            out.pop(f.name, None)
        else:
            out[f.name] = value
    return out


def _value(buf: memoryview, wire: int, a: int, b: int, kind: str, *, message: str, num: int, depth: int,
           path: str) -> Any:
    expected = _WIRE.get(kind, 2)
    if wire != expected:
        raise _malformed(f"wire type {wire} where {expected} is expected", message=message, path=path, num=num)
    if kind == "i":
        return a - (1 << 64) if a >= 1 << 63 else a
    if kind == "b":
        return a != 0
    if kind == "d":
        return struct.unpack_from("<d", buf, a)[0]
    if kind == "s":
        return str(buf[a:b], "utf-8", "replace")
    if kind == "y":
        return base64.b64encode(buf[a:b]).decode()
    if kind == "r":
        return buf[a:b]
    sub = _message(buf, a, b, kind, depth=depth + 1, path=path)
    convert = _CONVERT.get(kind)
    return sub if convert is None else convert(sub, path)


def _time(m: dict[str, Any], path: str, *, micro: bool = False) -> str | None:
    """``metav1.Time`` as Go's JSON writes it (RFC 3339, UTC, seconds); ``MicroTime`` with microseconds."""
    if not m:
        return None  # the zero time: sent as an empty message, omitted (or null) in JSON
    seconds, nanos = divmod(m.get("seconds", 0) * 1_000_000_000 + m.get("nanos", 0), 1_000_000_000)
    try:
        t = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise bad_request(f"couldn't decode the {MEDIA_TYPE} body: time out of range at {path}") from None
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return f"{text}.{nanos // 1000:06d}Z" if micro else f"{text}Z"


def _raw_json(m: dict[str, Any], path: str) -> Any:
    """``FieldsV1`` and ``RawExtension``: JSON kept as bytes, which JSON shows as itself."""
    raw = m.get("raw", m.get("Raw"))
    if not raw:
        return None
    try:
        return json.loads(bytes(raw), **JSON_HOOKS)
    except ValueError as e:
        raise bad_request(f"couldn't decode the {MEDIA_TYPE} body: invalid embedded JSON at {path}: {e}") from None


_CONVERT: Final[dict[str, Callable[[dict[str, Any], str], Any]]] = {
    "Time": _time,
    "MicroTime": lambda m, path: _time(m, path, micro=True),
    "Quantity": lambda m, path: m.get("string", ""),
    "IntOrString": lambda m, path: m.get("strVal", "") if m.get("type") == 1 else m.get("intVal", 0),
    "FieldsV1": _raw_json,
    "RawExtension": _raw_json,
}
