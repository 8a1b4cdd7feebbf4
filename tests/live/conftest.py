"""Fixtures for the live scheduler's tests: a fake clock, and the embedded API server on
loopback (4 nodes of 4 CPU / 8Gi, fast kubelets, bookmarks every 0.5 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from tests.live.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=[NodeShape(count=4, cpu="4", memory="8Gi")], kubelet_delay=0.05,
                               bookmark_interval=0.5) as srv:
        yield srv
