"""Fixtures: a standalone extender (no API access) and a client session for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from scheduler.config import default_config
from scheduler.extender import ExtenderServer, ExtenderSettings, serve_extender


@pytest.fixture
async def extender() -> AsyncIterator[ExtenderServer]:
    """The default profile, standalone, on a free loopback port, with /bind served (the
    default leaves it out: tests/extender/test_hardening.py)."""
    async with serve_extender(config=default_config(),
                              settings=ExtenderSettings(bind_address="127.0.0.1", port=0, enable_bind=True)) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
