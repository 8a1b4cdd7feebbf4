"""What requests leave behind is bounded by bytes and by age, and /metrics shows the bytes:
25 requests of big nodes no longer keep everything they sent."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.config import default_config
from scheduler.extender import ExtenderSettings, serve_extender
from scheduler.extender.cluster import RequestCache, _json_size
from scoring.objects import node_from_json
from tests.extender.wire import kube_node, kube_pod, node_list, post


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _node(name: str, pad: int = 0) -> dict[str, Any]:
    n = kube_node(name)
    n["metadata"]["annotations"]["pad"] = "x" * pad
    return n


SIZE = _json_size(_node("n0"))
"""One node's JSON (about 1.5 KiB); every node below has the same size (names of equal length)."""


@pytest.mark.parametrize(("max_nodes", "ttl", "puts", "advance", "kept"), [
    # room for 3 nodes, 5 stored: the 2 oldest leave
    pytest.param(3, 100.0, 5, 0.0, ["n2", "n3", "n4"], id="bytes-bound-drops-oldest"),
    # room for all 5, but 101 s later they are all older than the 100 s TTL
    pytest.param(10, 100.0, 5, 101.0, [], id="age-bound-drops-all"),
    # 99 s later: still within the TTL
    pytest.param(10, 100.0, 5, 99.0, ["n0", "n1", "n2", "n3", "n4"], id="within-age"),
])
def test_bounded_by_bytes_and_age(max_nodes: int, ttl: float, puts: int, advance: float, kept: list[str]) -> None:
    clock = Clock()
    cache = RequestCache(max_bytes=max_nodes * SIZE, max_age=ttl, clock=clock)
    for i in range(puts):
        cache.put(node_from_json(_node(f"n{i}")))
    clock.now += advance
    assert [n for n in (f"n{i}" for i in range(puts)) if cache.node(n) is not None] == kept
    assert cache.bytes == len(kept) * SIZE
    assert cache.bytes <= cache.max_bytes


def test_an_object_larger_than_the_cache_is_not_kept() -> None:
    cache = RequestCache(max_bytes=SIZE)
    cache.put(node_from_json(_node("n0", pad=10)))  # 10 bytes over the whole cache
    assert (len(cache), cache.bytes, cache.node("n0")) == (0, 0, None)


async def test_many_big_requests_stay_within_cache_bytes() -> None:
    # 25 requests of 4 nodes of ~64 KiB each (6.4 MiB in all) against a 1 MiB cache
    limit = 1 << 20
    settings = ExtenderSettings(port=0, cache_bytes=limit)
    async with serve_extender(config=default_config(), settings=settings) as srv, \
            aiohttp.ClientSession() as http:
        for r in range(25):
            body = {"Pod": kube_pod("p"), "Nodes": node_list(*(_node(f"r{r:02d}-{i}", pad=64 << 10)
                                                               for i in range(4)))}
            status, result = await post(http, f"{srv.url}/filter", body)
            assert status == 200 and result["Error"] == ""
            assert srv.view.seen.bytes <= limit
        async with http.get(f"{srv.url}/metrics") as resp:
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in text_string_to_metric_families(await resp.text()) for s in f.samples}
    held = srv.view.seen
    # each node is ~65.5 KiB, so 1 MiB holds 15 of the 100 sent (and one ~3 KiB pod)
    assert samples[("vecsched_extender_request_cache_bytes", ())] == held.bytes
    assert 14 <= samples[("vecsched_extender_request_cache_objects", (("type", "nodes"),))] <= 15
    assert samples[("vecsched_extender_request_cache_objects", (("type", "pods"),))] == 1  # the same pod each time
