"""A lean HTTP/1.1 client for the writes the scheduler sends for every pod.

Scheduling one pod costs two or three small writes: the binding, its
"Scheduled" Event and, now and then, a status patch. ``aiohttp``'s request path
(a request and a response object, a URL parse, header multidicts, a payload
writer, a task per body read) costs more CPU per request than the decision the
request carries. Here a request is one ``bytes`` written to a kept-alive
connection and its answer is parsed from the socket's bytes as they arrive.

Connections are pipelined (RFC 9112 section 9.3: answers come in request order).
A request goes to the open connection with the fewest requests in flight; a new
connection is opened while every open one is busy and the pool holds fewer than
``max_connections``, so that a server that serves each connection in turn (as
kube-apiserver's Go server does) still serves ``max_connections`` requests at
once. Requests written in one pass of the event loop leave in one ``send``.

Failures end as ``TransportError`` (``scheduler.kube.errors``), as ``aiohttp``'s
do in ``KubeClient``:

- a connection that fails (refused, reset, closed early, a TLS error, an answer
  that is not HTTP/1.x) fails every request in flight on it: whether the server
  acted on them is unknown, and the callers' own rules decide (the binder
  schedules the pod again, an Event is retried);
- a request that outlives its timeout (looked for every ``DEADLINE_CHECK``
  seconds) closes its connection (the answers behind it could no longer be
  matched to their requests), failing those too;
- an answer with ``Connection: close`` ends its connection after it: the server
  read no request behind it (RFC 9112 section 9.6), so those are sent again on
  another connection.

Only what the API server sends is understood: ``Content-Length`` and ``chunked``
bodies, bodies that end with the connection, no body for 1xx/204/304, no
content encodings (none is asked for). Answers are at most ``MAX_ANSWER_BYTES``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from scheduler.kube.errors import TransportError

__all__ = ["Answer", "Http1Pool", "MAX_ANSWER_BYTES", "header_block"]

MAX_HEAD_BYTES: Final = 64 * 1024
"""An answer's status line and headers: Go's http server sends at most 1 MiB of request
headers; answers from kube-apiserver carry a handful (a few hundred bytes)."""
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
"""A write's answer is one object (a Pod, an Event, a Status): objects are at most 1.5 MiB in
etcd. A larger body means the stream is not what was asked for."""
IDLE_SECONDS: Final = 15.0
"""A connection idle this long is closed rather than reused (``aiohttp``'s keep-alive default):
a server closes idle connections on its own clock (kube-apiserver after 90 s), and a request
written as the server closes is lost without an answer."""
DEADLINE_CHECK: Final = 0.1
"""Seconds between two looks for requests past their deadline: a request fails at most this
late (against timeouts of seconds: 30 s by default)."""
_CHUNKED: Final = -1
_UNTIL_CLOSE: Final = -2
_NO_BODY_STATUS: Final = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: its status, reason phrase, headers (case-insensitive) and body."""

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes


def header_block(headers: Mapping[str, str]) -> bytes:
    """``Name: value\\r\\n`` lines for every header (their order kept). A value or name that would
    break the request's framing (a CR or LF, as a token file with a stray newline could give)
    or a character HTTP/1.1 cannot carry is a ``ValueError`` naming the header."""
    lines = []
    for name, value in headers.items():
        if any(c in name for c in "\r\n:") or not name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} holds a line break or a colon in its name")
        try:
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        except UnicodeEncodeError:
            raise ValueError(f"header {name!r} holds a character outside Latin-1") from None
    return b"".join(lines)


@dataclass(slots=True, eq=False)
class _Pending:
    message: bytes
    future: asyncio.Future[Answer]
    what: str
    """``METHOD path``, for the error lines."""
    timeout: float
    deadline: float = 0.0
    """``loop.time()`` after which the request has timed out (set when it is written)."""
    sent_again: bool = False


@dataclass(slots=True)
class _Head:
    status: int
    reason: str
    headers: CIMultiDict[str]
    length: int
    """Body bytes still expected; ``_CHUNKED`` or ``_UNTIL_CLOSE``."""
    close: bool
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0
    """Body bytes read so far (chunked)."""
    chunk_left: int = 0
    """Bytes (with the CRLF after the data) of the current chunk still to read; 0: a size line is next."""
    trailers: bool = False


class _BadAnswer(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One kept-alive connection: requests in flight, in order, and the answer being read."""

    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.inflight: deque[_Pending] = deque()
        self.outbox: list[bytes] = []
        self.closed = False
        """No new request may be written (closing, closed, or the server said ``Connection: close``)."""
        self._buf = bytearray()
        self._head: _Head | None = None
        self._flush_soon = False
        self.idle_since = pool.loop.time()

    # -- writing ---------------------------------------------------------------------------------------

    def send(self, p: _Pending) -> None:
        self.inflight.append(p)
        p.deadline = self.pool.loop.time() + p.timeout
        self.pool.watch_deadlines()
        self.outbox.append(p.message)
        if self.transport is not None and not self._flush_soon:
            self._flush_soon = True
            self.pool.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if self.outbox and self.transport is not None and not self.transport.is_closing():
            data = self.outbox[0] if len(self.outbox) == 1 else b"".join(self.outbox)
            self.outbox.clear()
            self.transport.write(data)

    # -- the protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.closed:  # its requests already failed (timed out, or the pool closed) while connecting
            transport.abort()
            return
        self.transport = transport
        if self.outbox:
            self._flush()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            self._read_answers()
        except _BadAnswer as e:
            self._fail(f"the answer is not HTTP/1.1: {e}")

    def eof_received(self) -> bool:
        return False  # close: a body that ends with the connection is complete (``connection_lost``)

    def connection_lost(self, exc: Exception | None) -> None:
        head = self._head
        if exc is None and head is not None and head.length == _UNTIL_CLOSE and self.inflight:
            self._head = None
            self._answered(head, bytes(self._buf))
            self._buf.clear()
        why = f"{type(exc).__name__}: {exc}" if exc is not None else "the server closed the connection"
        self._fail(why)

    # -- reading ---------------------------------------------------------------------------------------

    def _read_answers(self) -> None:
        buf = self._buf
        pos = 0
        try:
            while True:
                head = self._head
                if head is None:
                    end = buf.find(b"\r\n\r\n", pos)
                    if end < 0:
                        if len(buf) - pos > MAX_HEAD_BYTES:
                            raise _BadAnswer(f"no end of headers within {MAX_HEAD_BYTES} bytes")
                        return
                    head = _parse_head(bytes(buf[pos:end]))
                    pos = end + 4
                    if head is None:  # an interim (1xx) answer: the real one follows
                        continue
                    if not self.inflight:
                        raise _BadAnswer(f"an answer ({head.status}) to no request")
                    self._head = head
                if head.length >= 0:
                    if len(buf) - pos < head.length:
                        return
                    body = bytes(buf[pos:pos + head.length])
                    pos += head.length
                elif head.length == _CHUNKED:
                    pos, done = _read_chunks(head, buf, pos)
                    if not done:
                        return
                    body = b"".join(head.chunks)
                else:  # until the connection closes
                    if len(buf) > MAX_ANSWER_BYTES:
                        raise _BadAnswer(f"a body over {MAX_ANSWER_BYTES} bytes")
                    return
                self._head = None
                self._answered(head, body)
                if head.close:
                    self._close_after_answer()
                    return
        finally:
            if pos:
                del buf[:pos]

    def _answered(self, head: _Head, body: bytes) -> None:
        p = self.inflight.popleft()
        if not self.inflight:
            self.idle_since = self.pool.loop.time()
        if not p.future.done():
            p.future.set_result(Answer(head.status, head.reason, CIMultiDictProxy(head.headers), body))

    # -- ending ----------------------------------------------------------------------------------------

    def _close_after_answer(self) -> None:
        """The server closes after the last answer: what was written behind it was not read."""
        self.closed = True
        self.pool.forget(self)
        behind = list(self.inflight)
        self.inflight.clear()
        self.outbox.clear()
        self._buf.clear()
        if self.transport is not None:
            self.transport.close()
        for p in behind:
            if p.future.done():
                continue
            if self.pool.closed:
                p.future.set_exception(TransportError(f"{p.what}: the client is closed"))
            elif p.sent_again:
                p.future.set_exception(TransportError(f"{p.what}: the server closed the connection twice before answering"))
            else:
                p.sent_again = True
                self.pool.dispatch(p)

    def close_idle(self) -> None:
        """Close a connection with nothing in flight."""
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()

    def timed_out(self, now: float) -> None:
        """Fail the connection if a request in flight on it is past its deadline."""
        for p in self.inflight:
            if now > p.deadline:
                self._fail(f"no answer within {p.timeout:g} s", timed_out=p)
                return

    def _fail(self, why: str, *, timed_out: _Pending | None = None) -> None:
        """Fail every request in flight here and drop the connection."""
        self.closed = True
        self.pool.forget(self)
        pending = list(self.inflight)
        self.inflight.clear()
        self.outbox.clear()
        self._head = None
        self._buf.clear()
        if self.transport is not None:
            self.transport.abort()
        for p in pending:
            if not p.future.done():
                reason = why if timed_out is None or p is timed_out else f"another request on its connection: {why}"
                p.future.set_exception(TransportError(f"{p.what}: {reason}"))


def _parse_head(head: bytes) -> _Head | None:
    """The status line and headers; None for an interim (1xx) answer."""
    lines = head.split(b"\r\n")
    status_line = lines[0]
    version, _, rest = status_line.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _BadAnswer(f"status line {status_line[:40]!r}")
    code_text, _, reason = rest.partition(b" ")
    if len(code_text) != 3 or not code_text.isdigit():
        raise _BadAnswer(f"status line {status_line[:40]!r}")
    status = int(code_text)
    if 100 <= status < 200 and status != 101:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise _BadAnswer(f"header line {line[:40]!r}")
        headers.add(name.decode("latin-1"), value.strip().decode("latin-1"))
    connection = headers.get("Connection", "").lower()
    close = "close" in connection or (version == b"HTTP/1.0" and "keep-alive" not in connection)
    if status in _NO_BODY_STATUS:
        length = 0
    elif "chunked" in headers.get("Transfer-Encoding", "").lower():
        length = _CHUNKED
    elif "Content-Length" in headers:
        text = headers["Content-Length"]
        if not text.isdigit() or int(text) > MAX_ANSWER_BYTES:
            raise _BadAnswer(f"Content-Length {text[:40]!r}")
        length = int(text)
    else:
        length, close = _UNTIL_CLOSE, True
    return _Head(status, reason.decode("latin-1"), headers, length, close)


def _read_chunks(head: _Head, buf: bytearray, pos: int) -> tuple[int, bool]:
    """Read chunks from ``pos``; the new position and whether the body (and its trailers) ended."""
    while True:
        if head.trailers:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return pos, False
            line_empty = end == pos
            pos = end + 2
            if line_empty:
                return pos, True
            continue
        if head.chunk_left == 0:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > 1024:
                    raise _BadAnswer("a chunk size line over 1024 bytes")
                return pos, False
            size_text = bytes(buf[pos:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadAnswer(f"chunk size {size_text[:20]!r}") from None
            head.received += size
            if head.received > MAX_ANSWER_BYTES:
                raise _BadAnswer(f"a body over {MAX_ANSWER_BYTES} bytes")
            pos = end + 2
            if size == 0:
                head.trailers = True
                continue
            head.chunk_left = size + 2
        take = min(head.chunk_left, len(buf) - pos)
        if take <= 0:
            return pos, False
        before = head.chunk_left
        data = bytes(buf[pos:pos + take])
        pos += take
        head.chunk_left -= take
        if head.chunk_left < 2:  # (part of) the CRLF after the data was read with it
            if before >= 2 and head.chunk_left == 0 and data[-2:] != b"\r\n":
                raise _BadAnswer("a chunk not followed by CRLF")
            data = data[:max(0, len(data) - (2 - head.chunk_left))]
        if data:
            head.chunks.append(data)


class Http1Pool:
    """Kept-alive, pipelined HTTP/1.1 connections to one server (``http://`` or ``https://``)."""

    def __init__(self, *, url: str, ssl_context: ssl.SSLContext | None, server_hostname: str | None = None,
                 max_connections: int, idle_seconds: float = IDLE_SECONDS) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"API server URL {url!r}: expected http:// or https:// and a host")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        """A path the server is served under (``https://proxy/k8s/clusters/c-1``): requests' paths follow it."""
        self.host_header = f"Host: {parts.netloc.rpartition('@')[2]}\r\n".encode("latin-1")
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.server_hostname = server_hostname if self.ssl is not None else None
        self.max_connections = max_connections
        self.idle_seconds = idle_seconds
        self._conns: list[_Connection] = []
        self._opening: set[asyncio.Task[None]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweep: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connections(self) -> int:
        """Connections open or opening."""
        return len(self._conns)

    async def request(self, method: str, path: str, *, headers: bytes, body: bytes | None,
                      timeout: float) -> Answer:
        """Send one request (``headers``: ``header_block`` lines; ``path`` with its query) and wait
        for its answer. Raises ``TransportError`` when no answer came."""
        if self._closed:
            raise TransportError(f"{method} {path}: the client is closed")
        length = f"Content-Length: {len(body)}\r\n\r\n" if body is not None else "\r\n"
        message = b"".join((f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1"), self.host_header,
                            headers, length.encode("latin-1"), body or b""))
        p = _Pending(message, self.loop.create_future(), f"{method} {path}", timeout)
        self.dispatch(p)
        return await p.future

    def dispatch(self, p: _Pending) -> None:
        """Put a request on the least busy open connection, or on a new one while all are busy."""
        best: _Connection | None = None
        for c in self._conns:
            if best is None or len(c.inflight) < len(best.inflight):
                if not c.inflight and self.loop.time() - c.idle_since > self.idle_seconds:
                    c.close_idle()
                    return self.dispatch(p)
                best = c
                if not c.inflight:
                    break
        if best is None or (best.inflight and len(self._conns) < self.max_connections):
            best = self._open()
        best.send(p)

    def _open(self) -> _Connection:
        conn = _Connection(self)
        self._conns.append(conn)
        task = self.loop.create_task(self._connect(conn))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)
        return conn

    async def _connect(self, conn: _Connection) -> None:
        factory: Callable[[], _Connection] = lambda: conn
        try:
            await self.loop.create_connection(factory, self.host, self.port, ssl=self.ssl,
                                              server_hostname=self.server_hostname)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            conn._fail(f"cannot connect to {self.host}:{self.port}: {type(e).__name__}: {e}")
        except asyncio.CancelledError:
            conn._fail("the client is closed")
            raise

    def watch_deadlines(self) -> None:
        """Look for requests past their deadline every ``DEADLINE_CHECK`` seconds while any is in
        flight: one timer for the pool rather than one per request (whose arming and cancelling
        cost as much as the rest of a request's bookkeeping)."""
        if self._sweep is None:
            self._sweep = self.loop.call_later(DEADLINE_CHECK, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._sweep = None
        now = self.loop.time()
        for conn in list(self._conns):
            conn.timed_out(now)
        if any(conn.inflight for conn in self._conns):
            self.watch_deadlines()

    def forget(self, conn: _Connection) -> None:
        try:
            self._conns.remove(conn)
        except ValueError:
            pass

    async def close(self) -> None:
        """Close every connection; requests in flight fail with ``TransportError``."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for task in list(self._opening):
            task.cancel()
        for conn in list(self._conns):
            conn._fail("the client is closed")
        if self._opening:
            await asyncio.gather(*self._opening, return_exceptions=True)
