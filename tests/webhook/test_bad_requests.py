"""Hostile and broken AdmissionReview bodies get a 400 with one line naming the problem (never a
traceback or a dropped connection); bodies over the limit a 413; a request that cannot be answered
within the budget a 504, in time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from scheduler.apiserver import ApiServer
from scheduler.webhook import WebhookServer
from tests.webhook.support import Pki, pod, post, response_of, review, webhook


def errors(wh: WebhookServer, webhook: str) -> float:
    return wh.metrics.registry.get_sample_value("vecsched_admission_requests_total",
                                                {"webhook": webhook, "result": "error"}) or 0.0


def _with(path: list[str], value: Any, base: dict[str, Any] | None = None) -> bytes:
    """A valid pod review with the field at ``path`` set to ``value`` (removed when value is ...)."""
    doc = base or review(pod())
    target = doc
    for p in path[:-1]:
        target = target[p]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


_DEEP_C = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # beyond the C decoder's own recursion limit
_DEEP_200 = json.dumps(dict(review(pod()), extra=json.loads("[" * 250 + "]" * 250))).encode()

CASES: list[tuple[str, str, bytes, str]] = [
    ("mutate-pods", "empty", b"", "empty request body: expected an admission.k8s.io/v1 AdmissionReview"),
    ("mutate-pods", "not JSON", b"hello", "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ("mutate-pods", "not UTF-8", b'{"a": "\xff\xfe"}', "request body is not valid JSON: "),
    ("mutate-pods", "a 5,000-digit number", b'{"n": ' + b"9" * 5000 + b"}", "request body is not valid JSON: "),
    ("mutate-pods", "an array", b"[1, 2]", "expected an AdmissionReview object, got array"),
    ("mutate-pods", "v1beta1", _with(["apiVersion"], "admission.k8s.io/v1beta1"),
     "apiVersion: expected 'admission.k8s.io/v1', got 'admission.k8s.io/v1beta1'"),
    ("mutate-pods", "another kind", _with(["kind"], "Pod"), "kind: expected 'AdmissionReview', got 'Pod'"),
    ("mutate-pods", "no request", _with(["request"], ...), "request: required"),
    ("mutate-pods", "request a string", _with(["request"], "x"), "request: expected an object, got string"),
    ("mutate-pods", "no uid", _with(["request", "uid"], ...), "request.uid: required"),
    ("mutate-pods", "empty uid", _with(["request", "uid"], ""), "request.uid: required"),
    ("mutate-pods", "numeric uid", _with(["request", "uid"], 5), "request.uid: expected a string, got number"),
    ("mutate-pods", "unknown operation", _with(["request", "operation"], "PATCH"),
     "request.operation: expected one of CREATE, UPDATE, DELETE, CONNECT, got 'PATCH'"),
    ("mutate-pods", "no kind", _with(["request", "kind"], ...), "request.kind: required"),
    ("mutate-pods", "namespace a number", _with(["request", "namespace"], 3),
     "request.namespace: expected a string, got number"),
    ("mutate-pods", "object an array", _with(["request", "object"], []),
     "request.object: expected an object, got array"),
    ("mutate-pods", "dryRun a string", _with(["request", "dryRun"], "yes"),
     "request.dryRun: expected a boolean, got string"),
    ("mutate-pods", "CREATE without the pod", _with(["request", "object"], None),
     "request.object: required for CREATE"),
    ("mutate-pods", "labels not strings", _with(["request", "object", "metadata", "labels"], {"a": 1}),
     "request.object.metadata.labels: expected a map of strings"),
    ("mutate-pods", "schedulerName a number", _with(["request", "object", "spec", "schedulerName"], 5),
     "request.object.spec.schedulerName: expected a string"),
    ("mutate-pods", "ownerReferences a string", _with(["request", "object", "metadata", "ownerReferences"], "me"),
     "request.object.metadata.ownerReferences: expected a list of objects"),
    ("mutate-pods", "nested 100,000 deep", _DEEP_C, "request body nests deeper than 200 levels"),
    ("mutate-pods", "nested 250 deep", _DEEP_200, "request body nests deeper than 200 levels"),
    ("validate-podgroups", "CREATE without the object",
     _with(["request", "object"], None, review(None, kind="PodGroup", name="pg")),
     "request.object: required for CREATE"),
    ("validate-config", "not JSON", b"{", "request body is not valid JSON: "),
    ("validate-config", "v1beta1", _with(["apiVersion"], "admission.k8s.io/v1beta1",
                                         review({"metadata": {"name": "c"}}, kind="ConfigMap")),
     "apiVersion: expected 'admission.k8s.io/v1', got 'admission.k8s.io/v1beta1'"),
]


async def test_malformed_reviews_get_400(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    ctx = pki.client_context()
    async with webhook(pki, apiserver) as wh:
        for path, case_id, body, message in CASES:
            status, answer = await post(http, f"{wh.url}/{path}", body, ctx=ctx)
            assert status == 400, (case_id, answer)
            assert answer["kind"] == "Status" and answer["reason"] == "BadRequest" and answer["code"] == 400
            text = answer["message"]
            assert text.startswith(f"vecsched webhook /{path}: {message}"), (case_id, text)
            assert "\n" not in text and "Traceback" not in text and len(text) < 300, case_id
        # still serving, and every one counted as an error of its webhook
        sent = review(pod())
        assert response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)["allowed"] is True
        for w in ("mutate-pods", "validate-podgroups", "validate-config"):
            assert errors(wh, w) == sum(1 for c in CASES if c[0] == w), w  # 23, 1 and 2


async def test_body_size_limit(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    """The default limit is 3 MiB = 3,145,728 bytes: a review of exactly that size is answered, one
    byte more is 413 (Content-Length, refused unread), as is a chunked body that grows past it."""
    ctx = pki.client_context()
    limit = 3 * 1024 * 1024
    base = review(pod(annotations={"big": ""}))
    overhead = len(json.dumps(base).encode())
    async with webhook(pki, apiserver) as wh:
        assert wh.settings.max_body_bytes == limit
        exact = review(pod(annotations={"big": "x" * (limit - overhead)}))
        body = json.dumps(exact).encode()
        assert len(body) == limit
        response_of(*await post(http, f"{wh.url}/mutate-pods", body, ctx=ctx), exact)
        status, answer = await post(http, f"{wh.url}/mutate-pods", body + b" ", ctx=ctx)
        assert (status, answer["reason"]) == (413, "RequestEntityTooLarge")
        assert answer["message"] == f"request body is larger than the webhook's limit of {limit} bytes"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):  # 5 x 1 MiB, no Content-Length
                yield b" " * (1024 * 1024)

        try:
            async with http.post(f"{wh.url}/mutate-pods", data=chunks(), ssl=ctx) as r:
                assert r.status == 413
        except aiohttp.ClientError:
            pass  # the server may close the connection while the client is still sending: also a refusal
        assert errors(wh, "mutate-pods") >= 1
        sent = review(pod())
        assert response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)["allowed"] is True


async def test_a_stalled_body_is_answered_504_within_the_budget(apiserver: ApiServer, pki: Pki) -> None:
    """A caller announcing 1,000 bytes and sending 10 gets 504 after the 0.3 s budget, not never."""
    async with webhook(pki, apiserver, request_budget_seconds=0.3) as wh:
        port = int(wh.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=pki.client_context(),
                                                       server_hostname="127.0.0.1")
        started = time.perf_counter()
        writer.write(b"POST /mutate-pods HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"apiVersi")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        elapsed = time.perf_counter() - started
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 504"), status_line
        assert 0.3 <= elapsed < 1.0, elapsed
        assert errors(wh, "mutate-pods") == 1
