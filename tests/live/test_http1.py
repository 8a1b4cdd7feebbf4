"""The pipelined HTTP/1.1 connections that carry the scheduler's writes (``scheduler.kube.http1``).

Each case talks to a real server on loopback: a scripted TCP server where the framing of an
answer is the point (its bytes sent in pieces, so that the parser sees them cut anywhere), the
embedded API server where the API's own answers are, and an aiohttp server over TLS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s

from scheduler.apiserver import serve_apiserver
from scheduler.kube import wire
from scheduler.kube.client import ClientSettings, KubeClient
from scheduler.kube.errors import TooManyRequests, TransportError
from scheduler.kube.http1 import Http1Pool, header_block
from scheduler.serving import load_context, self_signed

Reply = Callable[[int, bytes], Awaitable[list[bytes] | None]]
"""What the scripted server sends for the n-th request (0-based) on a connection: its pieces,
written one by one with a pause between them; None: close the connection without answering;
a last piece ``CLOSE``: close once the others are written."""
CLOSE = b"<close>"


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def scripted(reply: Reply) -> AsyncIterator[tuple[str, list[list[bytes]]]]:
    """A TCP server answering as ``reply`` says; yields its URL and the requests each connection read."""
    seen: list[list[bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine: list[bytes] = []
        seen.append(mine)
        try:
            while (request := await _read_request(reader)) is not None:
                mine.append(request)
                pieces = await reply(len(mine) - 1, request)
                if pieces is None:
                    break
                if pieces and pieces[-1] is CLOSE:
                    for piece in pieces[:-1]:
                        writer.write(piece)
                        await writer.drain()
                        await asyncio.sleep(0.005)
                    break
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.005)  # each piece in its own read on the client's side
        except asyncio.CancelledError:
            # The test is over while a reply still waits: end quietly (Python 3.11's start_server
            # logs a handler task that ends cancelled as an error).
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    finally:
        server.close()
        await server.wait_closed()


def _fixed(*pieces: bytes) -> Reply:
    async def reply(n: int, request: bytes) -> list[bytes]:
        return list(pieces)
    return reply


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(("pieces", "status", "body"), [
    # Content-Length 7: the 7 bytes after the blank line.
    ([OK_HEAD + b"Content-Length: 7\r\n\r\n{\"a\":1}"], 200, b'{"a":1}'),
    # the same cut inside the status line, the headers and the body
    ([b"HTTP/1.", b"1 200 OK\r\nConte", b"nt-Length: 7\r\n\r", b"\n{\"a\"", b":1}"], 200, b'{"a":1}'),
    # chunked: 3 bytes "{\"a" + 4 bytes "\":1}", a chunk extension, then the last chunk
    ([OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n"], 200, b'{"a":1}'),
    # chunked, cut inside a size line, inside data, between data and its CRLF, inside the CRLF
    ([OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"3\r", b"\n{\"", b"a", b"\r", b"\n4\r\n\":1}\r\n0\r\n", b"\r\n"],
     200, b'{"a":1}'),
    # chunked with a trailer field after the last chunk
    ([OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: t\r\n\r\n"], 200, b"{}"),
    # an interim 100 Continue before the answer is skipped
    ([b"HTTP/1.1 100 Continue\r\n\r\n", OK_HEAD + b"Content-Length: 2\r\n\r\n{}"], 200, b"{}"),
    # 204: no body even without a length
    ([b"HTTP/1.1 204 No Content\r\n\r\n"], 204, b""),
    # neither length nor chunked: the body ends with the connection
    ([OK_HEAD + b"\r\n{\"until\":", b"\"close\"}", CLOSE], 200, b'{"until":"close"}'),
    # HTTP/1.0 with a length
    ([b"HTTP/1.0 201 Created\r\nContent-Length: 2\r\n\r\n{}"], 201, b"{}"),
], ids=["length", "length-cut-everywhere", "chunked", "chunked-cut-everywhere", "chunked-trailer",
        "interim-100", "no-content", "until-close", "http-1.0"])
async def test_answers_are_read_whatever_their_framing(pieces: list[bytes], status: int, body: bytes) -> None:
    async with scripted(_fixed(*pieces)) as (url, seen):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=1)
        try:
            answer = await pool.request("POST", "/x?y=1", headers=b"Accept: application/json\r\n", body=b"{}",
                                        timeout=5)
        finally:
            await pool.close()
    assert (answer.status, answer.body) == (status, body)
    assert seen[0][0].startswith(b"POST /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert seen[0][0].endswith(b"Accept: application/json\r\nContent-Length: 2\r\n\r\n{}")


async def test_answers_come_back_to_their_own_requests_when_pipelined() -> None:
    """20 requests at once on one connection: each gets the answer that echoes its own body."""
    async def echo(n: int, request: bytes) -> list[bytes]:
        body = request.split(b"\r\n\r\n", 1)[1]
        # odd answers chunked, even ones with a length, so that both framings interleave
        if n % 2:
            return [OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"]
        return [OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body]

    async with scripted(echo) as (url, seen):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=1)
        try:
            answers = await asyncio.gather(*(
                pool.request("POST", "/", headers=b"", body=b'{"n":%d}' % i, timeout=5) for i in range(20)))
        finally:
            await pool.close()
    assert [a.body for a in answers] == [b'{"n":%d}' % i for i in range(20)]
    assert [len(c) for c in seen] == [20]  # one connection carried all 20


@pytest.mark.parametrize(("max_connections", "requests", "connections"), [
    (1, 6, 1),  # one allowed: all six pipelined on it
    (4, 6, 4),  # a new connection while all are busy, up to four; two requests pipelined behind
    (8, 3, 3),  # never more connections than requests waiting
])
async def test_connections_open_while_all_are_busy(max_connections: int, requests: int, connections: int) -> None:
    release = asyncio.Event()

    async def slow(n: int, request: bytes) -> list[bytes]:
        await release.wait()
        return [OK_HEAD + b"Content-Length: 2\r\n\r\n{}"]

    async with scripted(slow) as (url, seen):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=max_connections)
        try:
            calls = asyncio.gather(*(pool.request("POST", "/", headers=b"", body=b"{}", timeout=5)
                                     for _ in range(requests)))
            await asyncio.sleep(0.2)
            opened = pool.connections
            release.set()
            answers = await calls
        finally:
            await pool.close()
    assert opened == connections
    assert [a.status for a in answers] == [200] * requests
    assert sum(len(c) for c in seen) == requests


@pytest.mark.parametrize(("idle_seconds", "connections"), [
    (5.0, 1),  # idle 0.3 s < 5 s: the second request reuses the connection
    (0.1, 2),  # idle 0.3 s > 0.1 s: closed, the second request opens another
])
async def test_a_connection_idle_too_long_is_not_reused(idle_seconds: float, connections: int) -> None:
    async with scripted(_fixed(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")) as (url, seen):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=4, idle_seconds=idle_seconds)
        try:
            for _ in range(2):
                assert (await pool.request("POST", "/", headers=b"", body=b"{}", timeout=5)).status == 200
                await asyncio.sleep(0.3)
        finally:
            await pool.close()
    assert len(seen) == connections


async def test_requests_behind_a_connection_close_answer_are_sent_again() -> None:
    """The server answers the first request with ``Connection: close`` and reads nothing after it:
    the two pipelined behind it go out again on a second connection and are answered there."""
    async def close_first(n: int, request: bytes) -> list[bytes]:
        if n == 0 and b'"first"' in request:
            return [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"]
        return [OK_HEAD + b"Content-Length: 2\r\n\r\n{}"]

    async def once(n: int, request: bytes) -> list[bytes]:
        pieces = await close_first(n, request)
        return [*pieces, CLOSE] if b"Connection: close" in pieces[0] else pieces

    async with scripted(once) as (url, seen):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=1)
        try:
            answers = await asyncio.gather(*(pool.request("POST", "/", headers=b"", body=body, timeout=5)
                                             for body in (b'"first"', b'"second"', b'"third"')))
        finally:
            await pool.close()
    assert [a.status for a in answers] == [200, 200, 200]
    # connection 1 read the first and closed; connection 2 carried the other two
    assert [[r.rsplit(b"\r\n", 1)[1] for r in c] for c in seen] == [[b'"first"'], [b'"second"', b'"third"']]


async def test_a_request_sent_again_is_not_sent_a_third_time() -> None:
    """Every connection answers one request and closes: the first of three pipelined requests is
    answered on connection 1, the second (sent again) on connection 2, and the third, behind the
    second's ``Connection: close`` as well, fails rather than going round again."""
    async def one_each(n: int, request: bytes) -> list[bytes]:
        return [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", CLOSE]

    async with scripted(one_each) as (url, seen):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=1)
        try:
            answers = await asyncio.gather(*(pool.request("POST", f"/{i}", headers=b"", body=b"{}", timeout=5)
                                             for i in range(3)), return_exceptions=True)
        finally:
            await pool.close()
    assert [a.status if not isinstance(a, BaseException) else str(a) for a in answers] == [
        200, 200, "POST /2: the server closed the connection twice before answering"]
    assert [[r.split(b" ", 2)[1] for r in c] for c in seen] == [[b"/0"], [b"/1"]]


async def _no_answer(n: int, request: bytes) -> list[bytes] | None:
    return None


async def _garbage(n: int, request: bytes) -> list[bytes]:
    return [b"SSH-2.0-OpenSSH_9.2\r\n\r\n"]


async def _silent(n: int, request: bytes) -> list[bytes]:
    await asyncio.sleep(10)
    return []


async def _huge_length(n: int, request: bytes) -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"]


async def _bad_chunk(n: int, request: bytes) -> list[bytes]:
    return [OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"]


@pytest.mark.parametrize(("reply", "timeout", "message"), [
    (_no_answer, 5, "POST /p: the server closed the connection"),
    (_garbage, 5, "POST /p: the answer is not HTTP/1.1: status line b'SSH-2.0-OpenSSH_9.2'"),
    (_silent, 0.3, "POST /p: no answer within 0.3 s"),
    (_huge_length, 5, "POST /p: the answer is not HTTP/1.1: Content-Length '99999999999'"),
    (_bad_chunk, 5, "POST /p: the answer is not HTTP/1.1: chunk size b'zz'"),
], ids=["closed", "not-http", "timeout", "too-long", "bad-chunk-size"])
async def test_a_failed_connection_fails_its_requests_with_one_line(reply: Reply, timeout: float, message: str) -> None:
    async with scripted(reply) as (url, _):
        pool = Http1Pool(url=url, ssl_context=None, max_connections=1)
        try:
            with pytest.raises(TransportError) as e:
                await pool.request("POST", "/p", headers=b"", body=b"{}", timeout=timeout)
            assert pool.connections == 0  # dropped: the next request opens a new one
        finally:
            await pool.close()
    assert str(e.value) == message


async def test_a_refused_connection_is_a_transport_error() -> None:
    async with scripted(_no_answer) as (url, _):
        pass  # the port is free again once the server stopped
    pool = Http1Pool(url=url, ssl_context=None, max_connections=1)
    try:
        with pytest.raises(TransportError, match=r"^POST /p: cannot connect to 127\.0\.0\.1:\d+: ConnectionRefusedError"):
            await pool.request("POST", "/p", headers=b"", body=None, timeout=5)
    finally:
        await pool.close()


@pytest.mark.parametrize(("headers", "problem"), [
    ({"authorization": "Bearer abc\r\nX-Evil: 1"}, "header 'authorization' holds a line break"),
    ({"authorization": "Bearer abc\n"}, "header 'authorization' holds a line break"),
    ({"Bad:Name": "v"}, "header 'Bad:Name' holds a line break or a colon in its name"),
    ({"authorization": "Bearer \u20ac"}, "header 'authorization' holds a character outside Latin-1"),
])
def test_a_header_that_would_break_the_framing_is_refused(headers: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        header_block(headers)


def test_header_block_keeps_the_order() -> None:
    assert header_block({"A": "1", "b": "two"}) == b"A: 1\r\nb: two\r\n"


async def test_writes_to_the_api_server_pipelined_get_their_own_answers() -> None:
    """100 Events created at once through ``KubeClient`` (writes go through the pool): every
    answer is the Event its request created, and the server holds all 100."""
    async with serve_apiserver(nodes=1, kubelet_delay=0.0, controllers=[]) as srv:
        client = KubeClient(api=k8s.ApiClient(configuration=k8s.Configuration(host=srv.url)),
                            settings=ClientSettings())
        try:
            def event(i: int) -> dict[str, object]:
                return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"e{i}", "namespace": "default"},
                        "involvedObject": {"kind": "Pod", "name": f"p{i}", "namespace": "default"},
                        "reason": "Scheduled", "message": f"m{i}", "type": "Normal"}
            answers = await asyncio.gather(*(client.request("POST", "/api/v1/namespaces/default/events", body=event(i))
                                             for i in range(100)))
            listed = await client.list_items("/api/v1/namespaces/default/events")
        finally:
            await client.close()
    assert [a["metadata"]["name"] for a in answers] == [f"e{i}" for i in range(100)]
    assert sorted(e["metadata"]["name"] for e in listed) == sorted(f"e{i}" for i in range(100))


async def test_a_429_with_retry_after_from_the_pool_names_the_wait() -> None:
    """The header is read whatever its case: ``retry-after: 7`` gives a 7 s wait."""
    reply = _fixed(b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nContent-Length: 2\r\n\r\n{}")
    async with scripted(reply) as (url, _):
        client = KubeClient(api=k8s.ApiClient(configuration=k8s.Configuration(host=url)), settings=ClientSettings())
        try:
            with pytest.raises(TooManyRequests) as e:
                await client.send("POST", "/api/v1/namespaces/default/events", body={})
        finally:
            await client.close()
    assert e.value.retry_after == 7.0


@pytest.mark.parametrize(("trusted", "outcome"), [
    (True, "answered"),
    (False, "CERTIFICATE_VERIFY_FAILED"),
], ids=["our-ca", "unknown-ca"])
async def test_writes_over_tls_check_the_server_certificate(tmp_path: Path, trusted: bool, outcome: str) -> None:
    cert = self_signed(bind_address="127.0.0.1")
    other = self_signed(bind_address="127.0.0.1")
    ca = tmp_path / "ca.crt"
    ca.write_bytes((cert if trusted else other).cert_pem)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"got": wire.loads(await request.read())})

    app = web.Application()
    app.router.add_post("/x", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=load_context(cert))
    await site.start()
    cfg = k8s.Configuration(host=f"https://127.0.0.1:{runner.addresses[0][1]}")
    cfg.ssl_ca_cert = str(ca)
    client = KubeClient(api=k8s.ApiClient(configuration=cfg), settings=ClientSettings())
    try:
        if trusted:
            assert await client.request("POST", "/x", body={"a": 1}) == {"got": {"a": 1}}
        else:
            with pytest.raises(TransportError, match=outcome):
                await client.request("POST", "/x", body={"a": 1})
    finally:
        await client.close()
        await runner.cleanup()
