"""What an untrusted caller can do to the extender, and what it answers instead: one test per
defect of a security review, over real HTTP (and raw sockets) on loopback.

- who may listen where: plain HTTP only on loopback, anything else TLS with client CAs;
- ``/bind`` only with ``--enable-bind``;
- bodies nested 50,000 deep, numbers of 5,000 digits, Content-Encoding lies: 4xx naming it;
- trickled headers and bodies, silent connections: cut after ``--read-timeout``;
- too many requests in flight: 429 with Retry-After;
- the budget counts from the request's first byte, so time spent arriving counts.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from scheduler.config import default_config
from scheduler.extender import ExtenderServer, ExtenderSettings, serve_extender
from tests.extender.wire import kube_node, kube_pod, node_list, post

ARGS = {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"))}
BODY = json.dumps(ARGS).encode()
READ_TIMEOUT = 0.5
"""Short, so that the slow-client tests take about a second each."""


@pytest.fixture
async def ext() -> AsyncIterator[ExtenderServer]:
    """Defaults, except a short read timeout, a short budget and a small in-flight limit."""
    async with serve_extender(config=default_config(), settings=ExtenderSettings(
            port=0, read_timeout_seconds=READ_TIMEOUT, request_budget_seconds=0.3, max_inflight=2)) as srv:
        yield srv


# ---- who may listen where --------------------------------------------------------------------


@pytest.mark.parametrize(("address", "tls", "ca", "missing"), [
    pytest.param("127.0.0.1", False, False, None, id="loopback-plain-ok"),
    pytest.param("::1", False, False, None, id="ipv6-loopback-plain-ok"),
    pytest.param("localhost", False, False, None, id="localhost-plain-ok"),
    pytest.param("0.0.0.0", False, False, "--tls-cert-file, --tls-private-key-file, --client-ca-file",
                 id="wildcard-plain-refused"),
    pytest.param("::", False, False, "--tls-cert-file, --tls-private-key-file, --client-ca-file",
                 id="ipv6-wildcard-plain-refused"),
    pytest.param("10.1.2.3", True, False, "--client-ca-file", id="tls-without-client-ca-refused"),
    pytest.param("10.1.2.3", True, True, None, id="tls-and-client-ca-ok"),
])
def test_plain_http_only_on_loopback(address: str, tls: bool, ca: bool, missing: str | None) -> None:
    kw: dict[str, Any] = {"bind_address": address}
    if tls:
        kw.update(tls_cert_file="s.crt", tls_key_file="s.key")
    if ca:
        kw["client_ca_file"] = "ca.crt"
    if missing is None:
        ExtenderSettings(**kw)
        return
    with pytest.raises(ValueError) as e:
        ExtenderSettings(**kw)
    assert f"is not a loopback address, where callers must prove who they are: add {missing} " in str(e.value)
    assert "\n" not in str(e.value)


def test_defaults_are_loopback_without_bind() -> None:
    s = ExtenderSettings()
    assert (s.bind_address, s.enable_bind) == ("127.0.0.1", False)


def test_cli_refuses_a_public_address_in_the_clear() -> None:
    r = subprocess.run([sys.executable, "-m", "scheduler.cli", "extender", "--bind-address", "0.0.0.0",
                        "--standalone"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(
        "vecsched extender: --bind-address '0.0.0.0' is not a loopback address")
    assert "add --tls-cert-file, --tls-private-key-file, --client-ca-file" in r.stderr


@pytest.mark.parametrize(("address", "shown"), [
    pytest.param("127.0.0.1", "127.0.0.1", id="ipv4"),
    pytest.param("::1", "[::1]", id="ipv6-bracketed"),
])
async def test_the_log_names_the_address_bound(address: str, shown: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vecsched.extender")
    async with serve_extender(config=default_config(), settings=ExtenderSettings(bind_address=address, port=0)) as srv:
        port = srv.url.rsplit(":", 1)[1]
        assert srv.address == f"{shown}:{port}"
        assert f"serving on http://{shown}:{port} " in caplog.text
        async with aiohttp.ClientSession() as http:
            status, _ = await post(http, f"{srv.url}/filter", ARGS)
            assert status == 200


async def test_bind_is_a_404_unless_enabled(ext: ExtenderServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/bind", "/vecsched/bind"):
            status, result = await post(http, f"{ext.url}{path}", {"PodName": "p", "PodNamespace": "default",
                                                                   "PodUID": "u", "Node": "a"})
            assert status == 404
            assert result["Error"].startswith("vecsched extender: bind is not served; start the extender with "
                                              "--enable-bind")


# ---- bodies ----------------------------------------------------------------------------------


def _deep(levels: int) -> bytes:
    return b'{"Pod":' + b'{"a":' * levels + b"1" + b"}" * levels + b', "NodeNames": ["a"]}'


def _pod_with_cpu(cpu: Any) -> bytes:
    return json.dumps({"Pod": kube_pod("p", cpu="1"), "Nodes": node_list(kube_node("a"))}).replace(
        '"cpu": "1"', f'"cpu": {cpu}', 1).encode()


_PLAIN = {"Content-Type": "application/json"}
_GZIP = {**_PLAIN, "Content-Encoding": "gzip"}


@pytest.mark.parametrize(("body", "headers", "status", "error"), [
    # 50,000 levels: past MAX_DEPTH (100), refused by the decoder's own recursion guard
    pytest.param(_deep(50_000), _PLAIN, 400, "request body: nested deeper than 100 levels", id="nested-50k"),
    # a 5,000-digit JSON integer: more digits than Python converts (4,300)
    pytest.param(_pod_with_cpu("9" * 5000), _PLAIN, 400, "request body: a number too long to read",
                 id="5000-digit-number"),
    # a 5,000-digit quantity string: a 400 naming the field, never aiohttp's 500
    pytest.param(_pod_with_cpu('"' + "9" * 5000 + '"'), _PLAIN, 400,
                 "Pod.spec.containers[0].resources.requests.cpu: invalid quantity '99999", id="5000-digit-quantity"),
    # 2^63 does not fit int64
    pytest.param(_pod_with_cpu(str(2**63)), _PLAIN, 400, "is out of int64 range", id="int64-overflow"),
    pytest.param(BODY, _GZIP, 400, "Content-Encoding is gzip, but the body is not gzip data", id="plain-labelled-gzip"),
    pytest.param(gzip.compress(BODY)[:-12], _GZIP, 400, "the gzip data ends early", id="truncated-gzip"),
    pytest.param(BODY, {**_PLAIN, "Content-Encoding": "br"}, 415, "Content-Encoding 'br' is not accepted",
                 id="brotli-refused"),
    # 9 MiB of zeros compress to ~9 KiB: the limit (8 MiB) applies to what it inflates to
    pytest.param(gzip.compress(b" " * (9 << 20)), _GZIP, 413, "limit of 8388608 bytes once gunzipped",
                 id="gzip-bomb"),
])
async def test_bad_bodies_are_4xx_naming_the_problem(ext: ExtenderServer, body: bytes, headers: dict[str, str],
                                                     status: int, error: str) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        async with http.post(f"{ext.url}/filter", data=body, headers=headers) as r:
            assert r.status == status
            assert r.content_type == "application/json"
            got = (await r.json())["Error"]
    assert error in got
    assert "\n" not in got and len(got) < 400  # one line, the bad value quoted by a short prefix at most


async def test_real_gzip_is_accepted(ext: ExtenderServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{ext.url}/filter", data=gzip.compress(BODY), headers=_GZIP) as r:
            assert r.status == 200
            assert (await r.json())["Error"] == ""


@pytest.mark.parametrize(("method", "path", "status"), [
    pytest.param("POST", "/nope", 404, id="unknown-route"),
    pytest.param("GET", "/filter", 405, id="wrong-method"),
    pytest.param("POST", "/no-such-profile/filter", 404, id="unknown-profile"),
])
async def test_routing_errors_are_json_lines(ext: ExtenderServer, method: str, path: str, status: int) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{ext.url}{path}", data=BODY) as r:
            assert r.status == status
            assert r.content_type == "application/json"
            assert "\n" not in (await r.json())["Error"]


# ---- slow clients, many clients, the budget ------------------------------------------------------


def _head(length: int, extra: str = "") -> bytes:
    return (f"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {length}\r\n\r\n").encode()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing the connection, which it must do within ``seconds``."""
    return await asyncio.wait_for(reader.read(), seconds)


def _port(srv: ExtenderServer) -> int:
    return int(srv.url.rsplit(":", 1)[1])


@pytest.mark.parametrize(("sent", "trickle", "answer"), [
    # connects and says nothing
    pytest.param(b"", False, b"", id="silent"),
    # headers one byte at a time, a byte every 0.1 s inside a header value: would go on forever
    pytest.param(b"POST /filter HTTP/1.1\r\nHost: x\r\nX-Slow: ", True, b"", id="trickled-headers"),
    # headers complete, body promised but trickled: the handler answers 408 and closes
    pytest.param(_head(len(BODY)) + BODY[:10], True, b"HTTP/1.1 408", id="trickled-body"),
])
async def test_slow_clients_are_cut_after_the_read_timeout(ext: ExtenderServer, sent: bytes, trickle: bool,
                                                           answer: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(ext))
    started = time.monotonic()
    try:
        for i in range(len(sent)):
            writer.write(sent[i:i + 1])
        await writer.drain()

        async def dribble() -> None:  # a byte every 0.1 s: never enough to finish
            try:
                while trickle:
                    await asyncio.sleep(0.1)
                    writer.write(b"a")
                    await writer.drain()
            except (ConnectionError, RuntimeError):
                return

        task = asyncio.create_task(dribble())
        got = await _closed_within(reader, READ_TIMEOUT + 2.0)
        task.cancel()
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    assert READ_TIMEOUT * 0.8 <= elapsed < READ_TIMEOUT + 2.0
    assert got.startswith(answer)
    if answer:
        assert b"did not arrive within --read-timeout 0.5s" in got


async def test_time_spent_arriving_counts_against_the_budget(ext: ExtenderServer) -> None:
    """First byte at t=0, the rest at t=0.4 s: within the read timeout (0.5 s) but past the
    0.3 s budget, so the answer is the budget's error, not a late success."""
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(ext))
    try:
        request = _head(len(BODY), "Connection: close\r\n") + BODY
        writer.write(request[:1])
        await writer.drain()
        await asyncio.sleep(0.4)
        writer.write(request[1:])
        await writer.drain()
        got = await _closed_within(reader, 5.0)
    finally:
        writer.close()
    assert got.startswith(b"HTTP/1.1 200")
    result = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert result["Error"] == ("vecsched extender: request exceeded its 0.3s budget during queueing and reading "
                               "the request")


async def test_beyond_max_inflight_is_429(ext: ExtenderServer) -> None:
    """Two requests held in flight by their unfinished bodies (max_inflight=2); a third is refused."""
    held = []
    try:
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", _port(ext))
            writer.write(_head(len(BODY)) + BODY[:10])
            await writer.drain()
            held.append(writer)
        await asyncio.sleep(0.1)  # both handlers are now waiting for their bodies
        assert ext.inflight == 2
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{ext.url}/filter", data=BODY, headers=_PLAIN) as r:
                assert r.status == 429
                assert r.headers["Retry-After"] == "1"
                assert "too many requests in flight (--max-inflight 2)" in (await r.json())["Error"]
            async with http.get(f"{ext.url}/healthz") as r:  # probes are not counted
                assert r.status == 200
    finally:
        for w in held:
            w.close()
