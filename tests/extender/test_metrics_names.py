"""/metrics exports the extender's series with their documented names and labels; /healthz works."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from scheduler.extender import ExtenderServer
from tests.extender.wire import kube_node, kube_pod, node_list, post


async def test_metric_names_and_labels(extender: ExtenderServer, http: aiohttp.ClientSession) -> None:
    args = {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"))}
    await post(http, f"{extender.url}/filter", args)
    await post(http, f"{extender.url}/filter", args)
    await post(http, f"{extender.url}/prioritize", b"[")
    async with http.get(f"{extender.url}/healthz") as r:
        assert (r.status, await r.text()) == (200, "ok")
    async with http.get(f"{extender.url}/metrics") as r:
        text = await r.text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("vecsched_extender_requests_total", (("code", "200"), ("verb", "filter")))] == 2
    assert samples[("vecsched_extender_requests_total", (("code", "400"), ("verb", "prioritize")))] == 1
    assert samples[("vecsched_extender_request_duration_seconds_count", (("verb", "filter"),))] == 2
    assert ("vecsched_extender_request_duration_seconds_bucket", (("le", "0.0005"), ("verb", "filter"))) in samples
    assert ("vecsched_extender_cache_size", (("type", "nodes"),)) in samples
