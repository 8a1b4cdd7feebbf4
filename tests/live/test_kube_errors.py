"""Failures of API calls leave scheduler.kube only as vecsched's own errors, caused by the library's."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException, OpenApiException

from scheduler.apiserver import ApiServer
from scheduler.kube import errors
from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.informer import watch_resource, _watch_once
from tests.live.support import pod


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[KubeClient]:
    c = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
    yield c
    await c.close()


def assert_ours(e: BaseException, cls: type[errors.KubeError]) -> None:
    assert isinstance(e, cls), repr(e)
    assert not isinstance(e, (OpenApiException, aiohttp.ClientError)), "a library exception leaked"
    assert isinstance(e.__cause__, (OpenApiException, aiohttp.ClientError, OSError, TimeoutError)), repr(e.__cause__)


async def test_not_found(client: KubeClient) -> None:
    with pytest.raises(errors.KubeError) as ei:
        await client.request("GET", "/api/v1/namespaces/default/pods/nope")
    assert_ours(ei.value, errors.NotFoundError)
    assert isinstance(ei.value, errors.ClientError) and ei.value.code == 404
    assert isinstance(ei.value.__cause__, ApiException) and ei.value.__cause__.status == 404


async def test_conflict_on_second_binding(apiserver: ApiServer, client: KubeClient) -> None:
    p = apiserver.create("pods", pod("a"))
    await client.bind(namespace="default", name="a", uid=p["metadata"]["uid"], node="node-0000")
    with pytest.raises(errors.KubeError) as ei:
        await client.bind(namespace="default", name="a", uid=p["metadata"]["uid"], node="node-0001")
    assert_ours(ei.value, errors.ConflictError)
    assert isinstance(ei.value, errors.ConflictError) and "already assigned" in ei.value.message


async def test_uid_precondition(apiserver: ApiServer, client: KubeClient) -> None:
    apiserver.create("pods", pod("a"))
    with pytest.raises(errors.ConflictError):
        await client.bind(namespace="default", name="a", uid="some-older-pod", node="node-0000")


async def test_throttled_and_server_errors(apiserver: ApiServer, client: KubeClient) -> None:
    apiserver.faults.throttle_rate = 1.0
    apiserver.faults.retry_after_seconds = 3
    with pytest.raises(errors.KubeError) as ei:
        await client.request("GET", "/api/v1/nodes")
    assert_ours(ei.value, errors.TooManyRequests)
    assert isinstance(ei.value, errors.TooManyRequests) and ei.value.retry_after == 3 and errors.retryable(ei.value)
    apiserver.faults.throttle_rate, apiserver.faults.error_rate = 0.0, 1.0
    with pytest.raises(errors.KubeError) as ei:
        await client.bind(namespace="default", name="x", uid="u", node="n")
    assert_ours(ei.value, errors.ServerError)
    assert errors.retryable(ei.value)


async def test_connection_refused_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    from kubernetes_asyncio import client as k8s
    cfg = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    c = KubeClient(api=k8s.ApiClient(configuration=cfg), settings=ClientSettings(timeout_seconds=2))
    try:
        with pytest.raises(errors.KubeError) as ei:
            await c.request("GET", "/api/v1/nodes")
        assert_ours(ei.value, errors.TransportError)
        with pytest.raises(errors.TransportError):
            await c.bind(namespace="default", name="a", uid="u", node="n")
    finally:
        await c.close()


async def test_expired_watch_is_gone(apiserver: ApiServer, client: KubeClient) -> None:
    apiserver.create("pods", pod("a"))
    apiserver.compact()
    with pytest.raises(errors.GoneError):
        async for _ in _watch_once(client, path="/api/v1/pods", rv=["1"]):
            pass


async def test_watch_resource_never_raises_library_errors(apiserver: ApiServer, client: KubeClient) -> None:
    apiserver.faults.error_rate = 1.0  # lists and watches fail...
    from scheduler.kube.informer import Backoff
    gen = watch_resource(client, path="/api/v1/nodes", backoff=Backoff(initial=0.01, cap=0.02))
    import asyncio
    asyncio.get_running_loop().call_later(0.2, apiserver.faults.reset)  # ...for a while
    first = await asyncio.wait_for(gen.__anext__(), 5)
    assert first.type == "ADDED"
    await gen.aclose()
