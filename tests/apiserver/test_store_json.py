"""Stored objects are written and read back as the ``json`` module would, though ``orjson`` does the work.

Every write and watch event is encoded once by ``store.dumps`` and every read-modify-write
decodes with ``store.loads``; the fast library must not change a value where it differs
from ``json``: integers beyond 64 bits, keys that are not strings, NaN and infinities.
"""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.store import dumps, loads

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("value", [
    pytest.param({"a": 1, "b": [True, False, None, "x"], "c": {}}, id="plain"),
    pytest.param({"k": "ü\u2028\x00\x1f\"\\/\U0001f600"}, id="escapes-and-non-ascii"),
    pytest.param({"big": 2**70, "neg": -(2**63) - 1}, id="beyond-64-bits"),  # orjson refuses: json writes them
    pytest.param({1: "x", 2.5: "y"}, id="non-string-keys"),  # json writes "1" and "2.5"; orjson refuses
    pytest.param({"max": 2**64 - 1, "min": -(2**63)}, id="64-bit-edges"),  # orjson's own range
])
def test_dumps_writes_what_json_writes(value: Any) -> None:
    assert dumps(value) == _JSON.encode(value).encode()


@pytest.mark.parametrize(("value", "same_number"), [
    # 1.5e-07 (json) or 1.5e-7 (orjson): spelled either way, read back as the same float
    pytest.param({"f": 1.5e-7}, 1.5e-7, id="small-exponent"),
    pytest.param({"f": 0.1}, 0.1, id="fraction"),
    pytest.param({"f": 1e300}, 1e300, id="large"),
])
def test_dumps_floats_read_back_equal(value: dict[str, float], same_number: float) -> None:
    assert json.loads(dumps(value))["f"] == same_number


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param(b'{"a":[1,"b",null,true]}', {"a": [1, "b", None, True]}, id="plain"),
    # 20 digits: beyond 64 bits, where orjson would give a float; json keeps the integer
    pytest.param(b'{"a":123456789012345678901}', {"a": 123456789012345678901}, id="long-integer"),
    pytest.param(b'{"a":-9223372036854775809}', {"a": -9223372036854775809}, id="below-int64"),
])
def test_loads_reads_what_json_reads(raw: bytes, expected: dict[str, Any]) -> None:
    got = loads(raw)
    assert got == expected and type(got["a"]) is type(expected["a"])  # an int stays an int


def test_loads_reads_nan_as_json_does() -> None:
    # orjson refuses NaN and Infinity: json reads them
    got = loads(b'{"a":NaN,"b":-Infinity}')
    assert math.isnan(got["a"]) and got["b"] == -math.inf


@pytest.mark.parametrize(("literal", "stored"), [
    pytest.param(b"NaN", b'"activeDeadlineSeconds":NaN', id="nan"),
    pytest.param(b"1e400", b'"activeDeadlineSeconds":Infinity', id="overflow-to-infinity"),
])
async def test_nonfinite_number_is_served_as_before(apiserver: ApiServer, http: aiohttp.ClientSession,
                                                    literal: bytes, stored: bytes) -> None:
    """A NaN or an infinity in a body (which kube-apiserver would refuse) is kept and served as
    ``json`` writes it, beside a ``null`` (which orjson would also write for the NaN)."""
    body = (b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"activeDeadlineSeconds":' + literal
            + b',"nodeSelector":null,"containers":[{"name":"a","image":"b"}]}}')
    async with http.post("/api/v1/namespaces/default/pods", data=body,
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 201
    async with http.get("/api/v1/namespaces/default/pods/p") as r:
        assert stored in await r.read()
