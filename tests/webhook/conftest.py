"""Fixtures: certificates made for the test, the embedded API server the webhook's informers
watch (4 nodes of 4 CPU / 8Gi), and an HTTP client session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from tests.webhook.support import Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=[NodeShape(count=4, cpu="4", memory="8Gi")], bookmark_interval=0.5) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
