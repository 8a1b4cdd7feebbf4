"""/metrics counts every admission by webhook and result, with its latency; /readyz follows the
namespace informer and the shutdown; /metrics moves to a plain-HTTP port when asked."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from scheduler.apiserver import ApiServer
from tests.webhook.support import Pki, pod, post, response_of, review, webhook

SN = "vecsched.io/scheduler-name"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


async def test_admissions_are_counted(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    apiserver.create("namespaces", {"metadata": {"name": "team-a", "labels": {SN: "vecsched"}}})
    apiserver.create("namespaces", {"metadata": {"name": "team-typo", "labels": {SN: "nope"}}})
    ctx = pki.client_context()
    async with webhook(pki, apiserver) as wh:
        calls = [
            ("mutate-pods", review(pod(namespace="team-a"), namespace="team-a")),  # patched
            ("mutate-pods", review(pod(namespace="team-a"), namespace="team-a")),  # patched
            ("mutate-pods", review(pod(), namespace="default")),  # allowed: no label
            ("mutate-pods", review(pod(namespace="team-typo"), namespace="team-typo")),  # denied
            ("mutate-pods", {"apiVersion": "v1"}),  # error (400)
            ("validate-podgroups", review({"metadata": {"name": "pg"}, "spec": {"minMember": 0}},
                                          kind="PodGroup")),  # denied
            ("validate-config", review({"metadata": {"name": "c"}}, kind="ConfigMap")),  # allowed: not labelled
        ]
        for path, body in calls:
            await post(http, f"{wh.url}/{path}", body, ctx=ctx)
        async with http.get(f"{wh.url}/metrics", ssl=ctx) as r:
            assert r.status == 200
            samples = _samples(await r.text())

        def count(webhook: str, result: str) -> float:
            return samples[("vecsched_admission_requests_total", (("result", result), ("webhook", webhook)))]

        assert {r: count("mutate-pods", r) for r in ("allowed", "patched", "denied", "error")} == \
               {"allowed": 1, "patched": 2, "denied": 1, "error": 1}
        assert {r: count("validate-podgroups", r) for r in ("allowed", "patched", "denied", "error")} == \
               {"allowed": 0, "patched": 0, "denied": 1, "error": 0}
        assert count("validate-config", "allowed") == 1
        hist = "vecsched_admission_request_duration_seconds"
        # 5 + 1 + 1 answers; every one well inside the 1.024 s bucket (the budget is 1 s)
        assert samples[(f"{hist}_count", (("webhook", "mutate-pods"),))] == 5
        assert samples[(f"{hist}_bucket", (("le", "1.024"), ("webhook", "mutate-pods")))] == 5
        assert samples[(f"{hist}_count", (("webhook", "validate-config"),))] == 1


async def test_probes_and_a_separate_metrics_port(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    ctx = pki.client_context()
    async with webhook(pki, apiserver, metrics_port=0, shutdown_delay_seconds=0.5) as wh:
        assert wh.url.startswith("https://") and wh.metrics_url.startswith("http://") and wh.metrics_url != wh.url
        async with http.get(f"{wh.metrics_url}/metrics") as r:
            assert r.status == 200 and "vecsched_admission_requests_total" in await r.text()
        async with http.get(f"{wh.url}/metrics", ssl=ctx) as r:
            assert r.status == 404
        for base, tls in ((wh.url, ctx), (wh.metrics_url, True)):
            for path in ("/healthz", "/livez", "/readyz"):
                async with http.get(f"{base}{path}", ssl=tls) as r:
                    assert (r.status, await r.text()) == (200, "ok"), (base, path)
        # SIGTERM's first step: not ready at once, yet still answering reviews during the delay
        draining = asyncio.create_task(wh.drain())
        await asyncio.sleep(0.1)
        async with http.get(f"{wh.url}/readyz", ssl=ctx) as r:
            assert (r.status, await r.text()) == (503, "not ready: shutting down")
        async with http.get(f"{wh.url}/healthz", ssl=ctx) as r:
            assert r.status == 200
        sent = review(pod())
        assert response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)["allowed"] is True
        assert not draining.done()
        await draining
