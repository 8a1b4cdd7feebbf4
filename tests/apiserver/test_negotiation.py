"""Content negotiation and resourceVersions from the future, as kube-apiserver answers them.

kubectl >= 1.35 asks for protobuf first and JSON second; the server answers
JSON with the right Content-Type. A client that accepts nothing the server
writes gets 406 naming what it does write; a body in a format it does not
read gets 415 naming what it reads -- never a list that includes the refused
format.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from scheduler.apiserver import ApiServer

PODS = "/api/v1/namespaces/default/pods"

# Accept header -> (code, Content-Type of the answer)
ACCEPT_CASES = [
    ("", 200, "application/json"),
    ("application/json", 200, "application/json"),
    ("application/vnd.kubernetes.protobuf,application/json", 200, "application/json"),
    ("application/vnd.kubernetes.protobuf;q=0.9, */*;q=0.1", 200, "application/json"),
    ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", 200, "application/json"),
    ("application/vnd.kubernetes.protobuf", 406, "application/json"),
    ("text/html", 406, "application/json"),
]


@pytest.mark.parametrize(("accept", "code", "ctype"), ACCEPT_CASES)
async def test_accept(http: aiohttp.ClientSession, accept: str, code: int, ctype: str) -> None:
    async with http.get(PODS, headers={"Accept": accept} if accept else {}) as r:
        assert (r.status, r.content_type) == (code, ctype)
        if code == 406:
            body = await r.json()
            assert body["reason"] == "NotAcceptable"
            assert body["message"] == ("only the following media types are accepted: application/json, "
                                       "application/json;as=Table;v=v1;g=meta.k8s.io")


async def test_unreadable_body_names_what_is_read(http: aiohttp.ClientSession) -> None:
    async with http.post(PODS, data=b"<pod/>", headers={"Content-Type": "application/xml"}) as r:
        body = await r.json()
    assert r.status == 415 and body["reason"] == "UnsupportedMediaType"
    accepted = body["message"].split("accepted media types include: ")[1].split(";")[0]
    assert "application/json" in accepted and "application/xml" not in accepted


async def test_watch_from_a_future_resource_version(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    apiserver.http.future_rv_wait = 0.2  # kube-apiserver's watch cache waits 3 s
    future = apiserver.store.resource_version + 1000
    async with http.get(PODS, params={"watch": "1", "resourceVersion": str(future)}) as r:
        body = await r.json()
    assert r.status == 504 and body["reason"] == "Timeout"
    assert body["message"] == f"Too large resource version: {future}, current: {apiserver.store.resource_version}"
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


async def test_watch_from_a_version_reached_while_waiting(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    apiserver.http.future_rv_wait = 5.0
    nxt = apiserver.store.resource_version + 1

    async def later() -> None:
        apiserver.create("configmaps", {"metadata": {"name": "bump"}}, namespace="default")

    loop = asyncio.get_running_loop()
    loop.call_later(0.2, lambda: loop.create_task(later()))
    async with http.get(PODS, params={"watch": "1", "resourceVersion": str(nxt), "timeoutSeconds": "1"}) as r:
        assert r.status == 200
