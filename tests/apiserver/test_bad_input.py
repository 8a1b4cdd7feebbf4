"""Bad requests get 4xx Status bodies naming the problem; the server keeps every acknowledged object."""

from __future__ import annotations

import json

import aiohttp
import pytest

from scheduler.apiserver import ApiServer

from .kube import pod_manifest

PODS = "/api/v1/namespaces/default/pods"
GOOD = pod_manifest("good")


def _with(**meta: object) -> bytes:
    body = json.loads(json.dumps(GOOD))
    body["metadata"] = meta
    return json.dumps(body).encode()


@pytest.mark.parametrize(("method", "path", "body", "ctype", "code", "reason", "text"), [
    ("POST", PODS, b'{"kind": "Pod", "metadata": ', "application/json", 400, "BadRequest", "json parse error"),
    ("POST", PODS, b"", "application/json", 400, "BadRequest", "empty"),
    ("POST", PODS, b"[1, 2]", "application/json", 400, "BadRequest", "not a Pod object"),
    ("POST", PODS, json.dumps({**GOOD, "kind": "Node"}).encode(), "application/json", 400, "BadRequest",
     'Node in version "v1" cannot be handled as a Pod'),
    ("POST", PODS, json.dumps({**GOOD, "apiVersion": "apps/v1"}).encode(), "application/json", 400, "BadRequest",
     "does not match the expected API version"),
    ("POST", PODS, _with(), "application/json", 422, "Invalid", "metadata.name: Required value"),
    ("POST", PODS, _with(name="Bad_Name"), "application/json", 422, "Invalid", "RFC 1123 subdomain"),
    ("POST", PODS, _with(name="x", namespace="other"), "application/json", 400, "BadRequest",
     "does not match the namespace"),
    ("POST", PODS, _with(name="x", labels={"a": 1}), "application/json", 422, "Invalid", "metadata.labels"),
    ("POST", PODS, json.dumps({"metadata": {"name": "x"}, "spec": {}}).encode(), "application/json", 422, "Invalid",
     "spec.containers: Required value"),
    # JSON sent as protobuf: read as protobuf (kubectl >= 1.35 sends it), and refused as such
    ("POST", PODS, json.dumps(GOOD).encode(), "application/vnd.kubernetes.protobuf", 400, "BadRequest",
     "does not start with the magic bytes"),
    ("POST", PODS, json.dumps(GOOD).encode(), "application/xml", 415, "UnsupportedMediaType",
     "unknown format"),
    ("PUT", PODS + "/other", json.dumps(GOOD).encode(), "application/json", 400, "BadRequest",
     "does not match the name on the URL"),
    ("GET", PODS + "?limit=ten", b"", "application/json", 400, "BadRequest", "limit"),
    ("GET", PODS + "?watch=1&resourceVersion=abc", b"", "application/json", 400, "BadRequest",
     "invalid resource version"),
    ("PUT", PODS, json.dumps(GOOD).encode(), "application/json", 405, "MethodNotAllowed", "does not allow"),
    ("POST", "/api/v1/nodes/node-0000/status", b"{}", "application/json", 405, "MethodNotAllowed", "does not allow"),
])
async def test_bad_requests(apiserver: ApiServer, http: aiohttp.ClientSession, method: str, path: str, body: bytes,
                            ctype: str, code: int, reason: str, text: str) -> None:
    apiserver.create("pods", pod_manifest("good"), namespace="default")
    async with http.request(method, path, data=body, headers={"Content-Type": ctype}) as r:
        status = await r.json()
    assert (r.status, status["kind"], status["status"], status["reason"]) == (code, "Status", "Failure", reason)
    assert text in status["message"], status["message"]
    assert apiserver.get("pods", "good", namespace="default")["metadata"]["name"] == "good"


async def test_oversized_body_is_413(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    big = pod_manifest("big")
    big["metadata"]["annotations"] = {"blob": "x" * (3 * 1024 * 1024)}
    async with http.post(PODS, json=big) as r:
        status = await r.json()
    assert r.status == 413 and status["reason"] == "RequestEntityTooLarge"
    assert status["message"] == "Request entity too large: limit is 3145728"
    async with http.get(PODS) as r:  # still serving
        assert r.status == 200


async def test_garbage_never_crashes_the_server(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    junk = [b"\x00\xff", b"null", b"123", b'"str"', b'{"metadata": []}', b'{"metadata": {"name": 5}}',
            b'{"metadata": {"name": "x"}, "spec": []}', b'{"metadata": {"name": "x"}, "spec": {"containers": [1]}}']
    for body in junk:
        for path in (PODS, "/api/v1/namespaces", "/apis/coordination.k8s.io/v1/namespaces/default/leases"):
            async with http.post(path, data=body, headers={"Content-Type": "application/json"}) as r:
                assert r.status < 500, (path, body, r.status, await r.text())
    async with http.get("/api/v1/namespaces/default/pods") as r:
        assert r.status == 200
