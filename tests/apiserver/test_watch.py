"""Watch streams: from a resourceVersion, from current state, bookmarks, timeouts."""

from __future__ import annotations

import asyncio

import aiohttp

from scheduler.apiserver import ApiServer

from .kube import pod_manifest, read_watch

PODS = "/api/v1/namespaces/default/pods"


async def test_watch_from_resource_version_sends_later_events_only(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.create("pods", pod_manifest("before"), namespace="default")
    async with http.get(PODS) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    apiserver.create("pods", pod_manifest("after"), namespace="default")
    async with http.get(PODS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "5"}) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers.get("Transfer-Encoding") == "chunked"
        [added] = await read_watch(r, count=1)
        assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "after")
        await asyncio.sleep(0)
        pod = apiserver.get("pods", "after", namespace="default")
        pod["metadata"]["labels"] = {"x": "y"}
        apiserver.ops.update(apiserver.resource("pods"), pod, namespace="default", name="after")
        apiserver.ops.delete(apiserver.resource("pods"), namespace="default", name="after")
        modified, deleted = await read_watch(r, count=2)
    assert modified["type"] == "MODIFIED" and modified["object"]["metadata"]["labels"] == {"x": "y"}
    assert deleted["type"] == "DELETED"
    assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(modified["object"]["metadata"]["resourceVersion"])


async def test_watch_without_resource_version_replays_current_state(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    for name in ("a", "b"):
        apiserver.create("pods", pod_manifest(name), namespace="default")
    for rv in ("0", ""):
        async with http.get(PODS, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "5"}) as r:
            events = await read_watch(r, count=2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


async def test_bookmarks_and_timeout(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    # bookmark_interval is 0.2 s in the fixture; the stream ends after timeoutSeconds with a final bookmark.
    rv = apiserver.store.resource_version
    async with http.get(PODS, params={"watch": "1", "resourceVersion": str(rv), "allowWatchBookmarks": "true",
                                      "timeoutSeconds": "1"}) as r:
        events = await read_watch(r, count=100, timeout=5)
    assert len(events) >= 3 and all(e["type"] == "BOOKMARK" for e in events)
    assert events[0]["object"] == {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}}


async def test_no_bookmarks_unless_asked(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    async with http.get(PODS, params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "1"}) as r:
        assert await read_watch(r, count=100, timeout=5) == []


async def test_send_initial_events_ends_with_marked_bookmark(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.create("pods", pod_manifest("a"), namespace="default")
    params = {"watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "5"}
    async with http.get(PODS, params=params) as r:
        added, bookmark = await read_watch(r, count=2)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_namespace_scoped_and_legacy_watch_paths(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    apiserver.create("namespaces", {"metadata": {"name": "other"}})
    apiserver.create("pods", pod_manifest("mine"), namespace="default")
    apiserver.create("pods", pod_manifest("theirs"), namespace="other")
    async with http.get("/api/v1/watch/namespaces/default/pods", params={"timeoutSeconds": "1"}) as r:
        events = await read_watch(r, count=10)
    assert [e["object"]["metadata"]["name"] for e in events] == ["mine"]
    async with http.get("/api/v1/pods", params={"watch": "1", "timeoutSeconds": "1"}) as r:
        events = await read_watch(r, count=10)
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["mine", "theirs"]


async def test_many_watchers_see_the_same_events(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    rv = str(apiserver.store.resource_version)
    responses = [await http.get(PODS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "5"}) for _ in range(5)]
    for i in range(20):
        apiserver.create("pods", pod_manifest(f"p{i}"), namespace="default")
    try:
        streams = await asyncio.gather(*(read_watch(r, count=20) for r in responses))
    finally:
        for r in responses:
            r.close()
    names = [[e["object"]["metadata"]["name"] for e in s] for s in streams]
    assert all(n == [f"p{i}" for i in range(20)] for n in names)


async def test_watch_of_a_departed_client_is_released(apiserver: ApiServer) -> None:
    async with aiohttp.ClientSession(base_url=apiserver.url) as http:
        r = await http.get(PODS, params={"watch": "1", "timeoutSeconds": "60"})
        await asyncio.sleep(0.1)
        assert apiserver.store.watcher_count() == 1
        r.close()
    for _ in range(40):
        await asyncio.sleep(0.1)
        if apiserver.store.watcher_count() == 0:
            break
    assert apiserver.store.watcher_count() == 0
