"""Injected faults: 500s, 429 with Retry-After, latency, watch streams closed early."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, Faults

from .kube import read_watch


async def test_all_requests_fail_with_500(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.faults.error_rate = 1.0
    async with http.get("/api/v1/pods") as r:
        body = await r.json()
    assert r.status == 500 and body["reason"] == "InternalError" and "injected fault" in body["message"]
    async with http.get("/version") as r:
        assert r.status == 200  # discovery and health are not fault targets
    apiserver.faults.reset()
    async with http.get("/api/v1/pods") as r:
        assert r.status == 200


async def test_throttling_sends_retry_after(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.faults.throttle_rate = 1.0
    apiserver.faults.retry_after_seconds = 3
    async with http.get("/api/v1/nodes") as r:
        body = await r.json()
    assert r.status == 429 and r.headers["Retry-After"] == "3"
    assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 3}


async def test_fraction_is_roughly_respected(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.faults.error_rate = 0.3
    codes = []
    for _ in range(200):
        async with http.get("/api/v1/namespaces") as r:
            codes.append(r.status)
    assert 30 <= codes.count(500) <= 90 and set(codes) == {200, 500}
    assert apiserver.faults.injected[500] == codes.count(500)


async def test_latency(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.faults.latency_seconds = 0.2
    start = time.monotonic()
    async with http.get("/api/v1/nodes") as r:
        assert r.status == 200
    assert time.monotonic() - start >= 0.2


async def test_watch_streams_are_closed(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.faults.watch_close_seconds = 0.3
    start = time.monotonic()
    async with http.get("/api/v1/pods", params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "60"}) as r:
        await read_watch(r, count=1000, timeout=5)
    assert time.monotonic() - start < 3


async def test_close_all_watches_now(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v1/pods", params={"watch": "1", "timeoutSeconds": "60"}) as r:
        await asyncio.sleep(0.1)
        assert apiserver.close_watches() == 1
        await read_watch(r, count=1000, timeout=5)


@pytest.mark.parametrize("kwargs", [{"error_rate": 1.5}, {"error_rate": 0.6, "throttle_rate": 0.6}, {"latency_seconds": -1}])
def test_invalid_knobs(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Faults(**kwargs)
