"""What the HTTP server does before a request reaches the API: ``Expect``, body and header limits.

The server is aiohttp's low-level one, with no ``web.Application`` around it, so these are the
application's duties it took over, checked over a real socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, serve_apiserver

from .kube import pod_manifest

PODS = "/api/v1/namespaces/default/pods"


async def _exchange(srv: ApiServer, *, expect: str, body: bytes) -> tuple[bytes, int]:
    """Send the headers, then whatever the server answers first; the body only after a 100."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(f"POST {PODS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nExpect: {expect}\r\nConnection: close\r\n\r\n".encode())
        first = await asyncio.wait_for(reader.readline(), 5)
        if first.startswith(b"HTTP/1.1 100"):
            await reader.readline()  # the blank line ending the interim answer
            writer.write(body)
            final = await asyncio.wait_for(reader.readline(), 5)
        else:
            first, final = b"", first
        return first.strip(), int(final.split()[1])
    finally:
        writer.close()


@pytest.mark.parametrize(("expect", "interim", "status"), [
    pytest.param("100-continue", b"HTTP/1.1 100 Continue", 201, id="continue"),
    pytest.param("100-Continue", b"HTTP/1.1 100 Continue", 201, id="any-case"),
    # an expectation the server cannot meet: 417 at once, the body never asked for
    pytest.param("something-else", b"", 417, id="unknown"),
])
async def test_expect_header(apiserver: ApiServer, expect: str, interim: bytes, status: int) -> None:
    body = json.dumps(pod_manifest("p")).encode()
    assert await _exchange(apiserver, expect=expect, body=body) == (interim, status)
    assert (apiserver.store.find(apiserver.store.type("pods"), "default", "p") is not None) == (status == 201)


@pytest.mark.parametrize(("size", "status"), [
    # chunked, so no Content-Length to refuse it by: the read itself stops at the limit
    pytest.param(1000, 400, id="small-not-a-pod"),  # read, then refused as "not a Pod object"
    pytest.param(3 * 1024 * 1024 + 1, 413, id="over-3-MiB"),  # MAX_BODY_BYTES + 1
])
async def test_chunked_body_limit(apiserver: ApiServer, http: aiohttp.ClientSession, size: int, status: int) -> None:
    body = b"[" + b" " * (size - 2) + b"]"  # an array: no Pod, whatever its size

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, size, 65536):
            yield body[start:start + 65536]

    async with http.post(PODS, data=chunks(), headers={"Content-Type": "application/json"}) as r:
        answer = await r.json()
    assert (r.status, answer["kind"]) == (status, "Status")
    if status == 413:
        assert answer["message"] == "Request entity too large: limit is 3145728"


@pytest.mark.parametrize(("length", "status"), [
    pytest.param(10_000, 200, id="10-KB"),  # over aiohttp's own 8190-byte default
    pytest.param(70_000, 400, id="70-KB"),  # over the server's 65536
])
async def test_header_line_limit(apiserver: ApiServer, length: int, status: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", apiserver.port)
    try:
        writer.write(f"GET {PODS} HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * length}\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    assert int(line.split()[1]) == status


def _pod_with(blob: int) -> bytes:
    pod = pod_manifest("p")
    pod["metadata"]["annotations"] = {"blob": "x" * blob}
    return json.dumps(pod).encode()


@pytest.mark.parametrize(("blob", "chunked", "status"), [
    # a body that came whole with its headers is taken at once; one still arriving is read in a loop
    pytest.param(100, False, 201, id="small"),
    pytest.param(100, True, 201, id="small-chunked"),
    pytest.param(1 << 20, False, 201, id="1-MiB"),
    pytest.param(1 << 20, True, 201, id="1-MiB-chunked"),
    # over the 2,000-byte limit of the server below (the pod around the blob is ~200 bytes more)
    pytest.param(1900, True, 413, id="chunked-over-limit"),
    pytest.param(1900, False, 413, id="over-limit"),
])
async def test_bodies_arrive_whole(blob: int, chunked: bool, status: int) -> None:
    body = _pod_with(blob)
    limit = 2000 if status == 413 else 3 * 1024 * 1024
    async with serve_apiserver(nodes=0, controllers=[], max_body=limit) as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(body), 65536):
                    yield body[start:start + 65536]

            async with http.post(PODS, data=chunks() if chunked else body,
                                 headers={"Content-Type": "application/json"}) as r:
                assert r.status == status, await r.text()
        if status == 201:
            assert srv.get("pods", "p", namespace="default")["metadata"]["annotations"]["blob"] == "x" * blob
