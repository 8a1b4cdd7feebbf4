"""Background tasks a component waits for when it stops (bindings, evictions, Events)."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from typing import Any

__all__ = ["drain", "cancel"]


async def drain(tasks: Set[asyncio.Task[Any]], *, timeout: float) -> int:
    """Wait (at most ``timeout`` seconds) for ``tasks``; cancel those still running and give
    them a second to unwind. Returns how many were cut short."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(set(tasks), timeout=timeout)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
    return len(pending)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (a component's loop) and wait until it has finished; nothing for None."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
