"""A small HTTP server on loopback for the tests that need one besides the API server.

Several tests stand in for an outside service -- a load-watcher, a Prometheus target, a
scheduler's ``/readyz``, a watch stream, a server that records what kubectl sends --
with a few aiohttp handlers. ``serve`` starts them on a free loopback port and yields
the base URL; the server stops when the block ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

__all__ = ["Handler", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(*routes: tuple[str, str, Handler], access_log: bool = True) -> AsyncIterator[str]:
    """Serve ``(method, path, handler)`` routes (method ``"*"``: any) on 127.0.0.1 and a
    free port; yields ``http://127.0.0.1:PORT``."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app) if access_log else web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
