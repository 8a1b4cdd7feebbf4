"""limit and continue page through a list in a stable order."""

from __future__ import annotations

import aiohttp
import pytest

from scheduler.apiserver import ApiServer

from .kube import pod_manifest


@pytest.mark.parametrize("limit", [1, 3, 7, 25])
async def test_pages_cover_everything_once(apiserver: ApiServer, http: aiohttp.ClientSession, limit: int) -> None:
    for i in range(20):
        apiserver.create("pods", pod_manifest(f"p{i:02d}"), namespace="default")
    seen: list[str] = []
    params = {"limit": str(limit)}
    rvs = set()
    while True:
        async with http.get("/api/v1/namespaces/default/pods", params=params) as r:
            body = await r.json()
        seen += [i["metadata"]["name"] for i in body["items"]]
        rvs.add(body["metadata"]["resourceVersion"])
        token = body["metadata"].get("continue")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == 20 - len(seen)
        params = {"limit": str(limit), "continue": token}
    assert seen == [f"p{i:02d}" for i in range(20)]
    assert len(rvs) == 1  # every page reports the resourceVersion of the first


async def test_pagination_with_selector_and_namespace(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.create("namespaces", {"metadata": {"name": "a"}})
    for i in range(6):
        apiserver.create("pods", pod_manifest(f"p{i}", labels={"even": str(i % 2 == 0).lower()}), namespace="a")
        apiserver.create("pods", pod_manifest(f"p{i}", labels={"even": "true"}), namespace="default")
    names, params = [], {"limit": "2", "labelSelector": "even=true"}
    while True:
        async with http.get("/api/v1/namespaces/a/pods", params=params) as r:
            body = await r.json()
        names += [i["metadata"]["name"] for i in body["items"]]
        if not body["metadata"].get("continue"):
            break
        params["continue"] = body["metadata"]["continue"]
    assert names == ["p0", "p2", "p4"]


async def test_bad_continue_token(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v1/pods", params={"limit": "1", "continue": "!!!"}) as r:
        assert r.status == 400
