"""The benchmarks (and the demo) wait for ``vecsched run`` with ``scheduler.readiness.wait_ready``:
it returns once /readyz answers 200, and fails fast, naming why, when the child exits or never gets ready."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from scheduler.readiness import wait_ready
from tests.http_support import serve


@pytest.fixture
async def probe() -> AsyncIterator[tuple[str, list[int]]]:
    """A /readyz on loopback answering the statuses listed (the last one from then on)."""
    statuses = [503]

    async def readyz(request: web.Request) -> web.Response:
        return web.Response(status=statuses.pop(0) if len(statuses) > 1 else statuses[0])

    async with serve(("GET", "/readyz", readyz)) as url:
        yield url, statuses


async def _child(code: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code)


_ALIVE = "import time; time.sleep(30)"


@pytest.mark.parametrize(("answers", "child", "error"), [
    # two 503s, then 200: returns (no error)
    pytest.param([503, 503, 200], _ALIVE, None, id="ready-after-503s"),
    # the child has exited with 3 while /readyz says 503: fails at once with its exit code
    pytest.param([503], "import sys; sys.exit(3)", "vecsched run exited with code 3 before it was ready",
                 id="child-exits"),
    # 503 for ever, child alive: the 0.5 s timeout
    pytest.param([503], _ALIVE, "vecsched run did not become ready within 0.5 s", id="timeout"),
])
async def test_wait_ready(probe: tuple[str, list[int]], answers: list[int], child: str, error: str | None) -> None:
    url, statuses = probe
    statuses[:] = answers
    proc = await _child(child)
    try:
        if error is None:
            await wait_ready(url=url, proc=proc, timeout=10, interval=0.01)
            assert statuses == [200]  # both 503s were seen first
        else:
            if child != _ALIVE:
                await proc.wait()
            with pytest.raises(RuntimeError, match=error):
                await wait_ready(url=url, proc=proc, timeout=0.5, interval=0.01)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
