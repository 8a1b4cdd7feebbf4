"""Discovery and health documents that clients read before anything else."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer


async def test_version_via_client(api: client.ApiClient) -> None:
    info = await client.VersionApi(api).get_code()
    assert info.major == "1" and info.git_version.startswith("v1.")


@pytest.mark.parametrize(("path", "kind"), [
    ("/api", "APIVersions"),
    ("/apis", "APIGroupList"),
    ("/api/v1", "APIResourceList"),
    ("/apis/coordination.k8s.io", "APIGroup"),
    ("/apis/coordination.k8s.io/v1", "APIResourceList"),
    ("/apis/events.k8s.io/v1", "APIResourceList"),
])
async def test_discovery_documents(http: aiohttp.ClientSession, path: str, kind: str) -> None:
    async with http.get(path) as r:
        assert r.status == 200 and (await r.json())["kind"] == kind


async def test_core_resources_and_subresources(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v1") as r:
        res = {x["name"]: x for x in (await r.json())["resources"]}
    assert {"pods", "pods/status", "pods/binding", "nodes", "nodes/status", "namespaces", "events", "configmaps",
            "services"} <= set(res)
    assert res["pods"]["namespaced"] and not res["nodes"]["namespaced"]
    assert "watch" in res["pods"]["verbs"] and res["pods/binding"]["verbs"] == ["create"]
    assert res["pods"]["shortNames"] == ["po"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
async def test_health(http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(path) as r:
        assert (r.status, await r.text()) == (200, "ok")


async def test_openapi_v3_probe_documents(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    async with http.get("/openapi/v3") as r:
        paths = (await r.json())["paths"]
    async with http.get(paths["api/v1"]["serverRelativeURL"]) as r:
        doc = await r.json()
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    async with http.get("/openapi/v2") as r:
        assert r.status == 404  # kubectl falls back to its compiled-in types
