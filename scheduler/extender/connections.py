"""The extender's connections: who may listen where, slow clients, and gzip bodies.

kube-scheduler's extender client is Go's ``net/http``; everything else that
reaches the port may be hostile. A connection gets ``read_timeout`` seconds to
send a request's headers (a trickle is cut, as Go's ``ReadHeaderTimeout``
would), the first byte of each request is its arrival (the start of its
budget, so time queued behind other requests counts), and a gzip body is
inflated only up to the body limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web

from scheduler.replies import Reply
from scheduler.serving import is_loopback

__all__ = ["IDLE_SECONDS", "Connection", "bound_address", "gunzip", "is_loopback"]

log = logging.getLogger("vecsched.extender")

IDLE_SECONDS: Final = 30.0
"""An idle keep-alive connection is closed after this. Go's http.Transport (kube-scheduler's
client) keeps idle connections 90 s and retries a request that found its connection closed
before sending anything, so closing sooner costs a reconnect, while each idle connection
holds a file descriptor for whoever opened it."""


_HEADER_END: Final = b"\r\n\r\n"


class Connection(web.RequestHandler):
    """aiohttp's connection handler, with a deadline for a request's headers and the time
    its first byte arrived (the start of its budget).

    aiohttp waits for headers as long as a client trickles them; this closes the
    connection ``read_timeout`` seconds after it opened, or after the first byte of a
    request on a kept-alive one, unless the headers' blank line has been seen by then. The
    handler ends the wait (``headers_read``) and starts the next one (``request_done``)."""

    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, read_timeout: float,
                 queue: dict[Connection, float], **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._read_timeout = read_timeout
        self._queue = queue
        """The server's requests that have arrived and are not answered yet, in arrival order."""
        self._loop_ = loop
        self.arrival: float | None = None
        self.request_arrival = 0.0
        """When the request being handled sent its first byte (``time.monotonic()``)."""
        self.ahead = 0
        """Requests that had arrived and were unanswered when this one's first byte came."""
        self._in_request = False
        self._headers_seen = False
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is cut too

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._queue.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_request and not self._headers_seen:
            if self.arrival is None:
                self.arrival = time.monotonic()
                self.ahead = len(self._queue)
                self._queue[self] = self.arrival
                self._arm()
            window = self._tail + data
            if _HEADER_END in window:
                self._headers_seen = True
                self._disarm()
            self._tail = window[-(len(_HEADER_END) - 1):]
        super().data_received(data)

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self._loop_.call_later(self._read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if not self._in_request and not self._headers_seen and self.transport is not None:
            log.info("closing a connection from %s: no complete request headers within %gs",
                     self.transport.get_extra_info("peername"), self._read_timeout)
            self.transport.close()

    def headers_read(self) -> None:
        """A request reached its handler: stop the header deadline, note when its first byte came."""
        self._in_request = True
        self._disarm()
        self.request_arrival = self.arrival if self.arrival is not None else time.monotonic()

    def request_done(self) -> None:
        self._queue.pop(self, None)
        self._in_request = False
        self._headers_seen = False
        self._tail = b""
        self.arrival = None


def bound_address(sockets: Sequence[Any]) -> tuple[str, int]:
    host, port = sockets[0].getsockname()[:2]
    return (f"[{host}]" if ":" in host else host), int(port)


def gunzip(data: bytes, *, limit: int) -> bytes:
    """``data`` inflated, at most ``limit`` bytes of it (413 beyond); 400 when it is not gzip."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(data, limit + 1)
    except zlib.error as e:
        raise Reply(400, f"Content-Encoding is gzip, but the body is not gzip data ({e})") from None
    if len(out) > limit:
        raise Reply(413, f"request body is larger than the extender's limit of {limit} bytes once gunzipped")
    if not inflate.eof:
        raise Reply(400, "Content-Encoding is gzip, but the gzip data ends early")
    return out
