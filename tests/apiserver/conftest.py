"""Fixtures: an embedded API server on loopback and real clients pointed at it.

Other test directories reuse ``serve_apiserver`` directly; these fixtures are
the common shapes for the apiserver's own tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer, serve_apiserver

from .kube import kube_client


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    """Three 32-CPU nodes, pods start instantly, bookmarks every 0.2 s, and no controllers: these
    tests check the API itself (``tests/controlplane`` runs it with its controllers)."""
    async with serve_apiserver(nodes=3, kubelet_delay=0.0, bookmark_interval=0.2, controllers=[]) as srv:
        yield srv


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[client.ApiClient]:
    c = await kube_client(apiserver.kubeconfig_path)  # type: ignore[arg-type]
    async with c:
        yield c


@pytest.fixture
async def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
async def http(apiserver: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A raw HTTP session with the server's URL as base."""
    async with aiohttp.ClientSession(base_url=apiserver.url) as s:
        yield s
