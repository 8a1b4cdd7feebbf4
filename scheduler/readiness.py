"""Wait for a ``vecsched run`` child process to answer ``/readyz``.

The demo and the end-to-end benchmarks both start the scheduler as a child
process and must not send it work before its caches have synced; this is the
one loop that waits for that, failing fast when the child exits first.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

__all__ = ["wait_ready"]


async def wait_ready(*, url: str, proc: asyncio.subprocess.Process, timeout: float = 60.0,
                     interval: float = 0.05, what: str = "vecsched run") -> None:
    """Return once ``GET {url}/readyz`` answers 200; raise ``RuntimeError`` when ``proc`` exits
    first or ``timeout`` seconds pass. The certificate is not verified: the caller started the
    child on loopback and trusts it (its HTTPS certificate is self-signed). ``interval`` is the
    poll period in seconds: 50 ms adds at most that much to a start-up of a second or more."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
            try:
                async with http.get(f"{url}/readyz", ssl=False) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass  # not listening yet
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{what} did not become ready within {timeout:g} s")
            await asyncio.sleep(interval)
