"""The client's own request path: the library's authentication, plain aiohttp, orjson bodies.

``KubeClient`` sends requests itself on the library's session, so what the library used to do
per request must still happen: the Authorization header from its ``Configuration`` (a rotated
in-cluster token is picked up through the library's refresh hook), the User-Agent, bodies
encoded as JSON, answers decoded exactly as the ``json`` module would (``scheduler.kube.wire``).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

from scheduler.apiserver import ApiServer, serve_apiserver
from scheduler.apiserver.auth import User
from scheduler.kube import errors, wire
from scheduler.kube.client import ClientSettings, KubeClient
from tests.live.support import pod
from tests.http_support import serve

TOKENS = {"token-a": User.of("alice", ["system:masters"]), "token-b": User.of("bob", ["system:masters"])}


@pytest.fixture
async def authserver() -> AsyncIterator[ApiServer]:
    # RBAC on (no rules: the tokens' system:masters group may do anything) so that decisions name the user.
    # RBAC on (no rules: system:masters may do anything), so that the server logs who asked.
    async with serve_apiserver(nodes=1, kubelet_delay=0.0, controllers=[], tokens=TOKENS, rbac=[]) as srv:
        yield srv


def _in_cluster(srv: ApiServer, tmp_path: Path, token: str) -> tuple[KubeClient, InClusterConfigLoader, Path]:
    """A client configured as in a pod: the library's in-cluster loader, its token file and refresh hook
    (pointed at the embedded server's plain-HTTP URL, which the loader's https host would not reach)."""
    token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    token_file.write_text(token)
    ca_file.write_text("unused: plain HTTP")  # the loader insists on a non-empty file
    loader = InClusterConfigLoader(token_filename=str(token_file), cert_filename=str(ca_file),
                                   environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"})
    cfg = k8s.Configuration()
    loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
    cfg.host, cfg.ssl_ca_cert = srv.url, None
    return KubeClient(api=k8s.ApiClient(configuration=cfg), settings=ClientSettings()), loader, token_file


def _users(srv: ApiServer) -> list[str]:
    return [d.user for d in srv.auth_log]


async def test_an_in_cluster_token_rotated_on_disk_is_used_once_the_library_refreshes_it(
        authserver: ApiServer, tmp_path: Path) -> None:
    c, loader, token_file = _in_cluster(authserver, tmp_path, "token-a")
    try:
        await c.request("GET", "/api/v1/nodes")
        assert _users(authserver)[-1] == "alice"
        token_file.write_text("token-b")  # the kubelet rotates the projected token ...
        await c.request("GET", "/api/v1/nodes")
        assert _users(authserver)[-1] == "alice"  # ... read again only when the loader's period is over
        loader.token_expires_at = datetime.datetime.now() - datetime.timedelta(seconds=1)
        await c.request("GET", "/api/v1/nodes")
        assert _users(authserver)[-1] == "bob"
        token_file.write_text("no-such-token")
        loader.token_expires_at = datetime.datetime.now() - datetime.timedelta(seconds=1)
        with pytest.raises(errors.ClientError) as ei:  # a token the server does not know: 401, ours
            await c.request("GET", "/api/v1/nodes")
        assert ei.value.code == 401
    finally:
        await c.close()


@pytest.mark.parametrize(("token", "code"), [
    pytest.param("token-a", 0, id="known-token"),
    pytest.param("token-z", 401, id="unknown-token-401"),
])
async def test_a_kubeconfig_token_is_sent(authserver: ApiServer, tmp_path: Path, token: str, code: int) -> None:
    from scheduler.kube.client import connect
    c = await connect(ClientSettings(kubeconfig=str(authserver.kubeconfig_for(token=token, path=tmp_path / "kc"))))
    try:
        if code:
            with pytest.raises(errors.ClientError) as ei:
                await c.request("GET", "/api/v1/nodes")
            assert ei.value.code == code
        else:
            assert (await c.request("GET", "/api/v1/nodes"))["kind"] == "NodeList"
            assert _users(authserver)[-1] == "alice"
    finally:
        await c.close()


async def test_bind_and_patch_bodies_reach_the_server(authserver: ApiServer, tmp_path: Path) -> None:
    c, _, _ = _in_cluster(authserver, tmp_path, "token-a")
    try:
        p = authserver.create("pods", pod("a"), namespace="default")
        # A body that is not a dict (orjson refuses a MappingProxyType) is still written as JSON.
        await c.patch("/api/v1/namespaces/default/pods/a",
                      body=MappingProxyType({"metadata": {"annotations": {"k": "v"}}}))
        await c.bind(namespace="default", name="a", uid=p["metadata"]["uid"], node="node-0000")
        got = authserver.get("pods", "a", namespace="default")
        assert got["spec"]["nodeName"] == "node-0000" and got["metadata"]["annotations"]["k"] == "v"
    finally:
        await c.close()


# Decoding: what json.loads gives, fast or not. 2**63 = 9223372036854775808 (19 digits) is beyond
# int64 and must stay an exact int for check_int64 to refuse; 2**64 = 18446744073709551616 (20
# digits) is what orjson would silently turn into the float 1.8446744073709552e19.
@pytest.mark.parametrize("text", [
    pytest.param(b'{"a": 1, "b": [true, null, 1.5, "x"]}', id="plain"),
    pytest.param(b'{"n": 9223372036854775807}', id="int64-max"),
    pytest.param(b'{"n": 9223372036854775808}', id="2^63"),
    pytest.param(b'{"n": 18446744073709551616}', id="2^64"),
    pytest.param(b'{"n": -9223372036854775809}', id="below-int64-min"),
    pytest.param(b'{"s": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"a": 1, "a": 2}', id="duplicate-key-last-wins"),
    pytest.param(b'{"uid": "1234567890123456789012"}', id="long-digit-run-in-a-string"),
])
def test_wire_loads_is_json_loads(text: bytes) -> None:
    got, want = wire.loads(text), json.loads(text)
    assert got == want and _types(got) == _types(want)


@pytest.mark.parametrize("text", [
    pytest.param(b'{"x": NaN}', id="nan"),
    pytest.param(b'[Infinity]', id="infinity"),
])
def test_wire_loads_keeps_json_non_finite_numbers_for_the_checks_to_refuse(text: bytes) -> None:
    got = wire.loads(text)
    value = got["x"] if isinstance(got, dict) else got[0]
    assert isinstance(value, float) and not math.isfinite(value)


@pytest.mark.parametrize("text", [
    pytest.param(b'{"a": ', id="truncated"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="too-deep"),
])
def test_wire_loads_fails_as_json_does(text: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        wire.loads(text)


@pytest.mark.parametrize(("obj", "want"), [
    pytest.param({"a": [1, "x", None]}, b'{"a":[1,"x",null]}', id="dict"),
    pytest.param(MappingProxyType({"a": 1}), b'{"a":1}', id="mapping-proxy-via-json"),
    pytest.param({"n": 2**64}, b'{"n":18446744073709551616}', id="beyond-64-bits-via-json"),
])
def test_wire_dumps(obj: Any, want: bytes) -> None:
    assert wire.dumps(obj) == want


def _types(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _types(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_types(v) for v in doc]
    return type(doc).__name__


@pytest.mark.parametrize(("qps", "burst", "calls", "at_least", "below"), [
    # 5 calls, a burst of 5: no waiting (one more token would take 1/10 s = 0.1 s)
    pytest.param(10.0, 5, 5, 0.0, 0.09, id="within-burst"),
    # 7 calls, a burst of 2: 5 more tokens at 50/s take 5/50 = 0.1 s
    pytest.param(50.0, 2, 7, 0.099, 2.0, id="beyond-burst-waits"),
])
async def test_rate_limiter_token_bucket(qps: float, burst: int, calls: int, at_least: float, below: float) -> None:
    import asyncio
    from scheduler.kube.client import RateLimiter
    limiter = RateLimiter(qps=qps, burst=burst)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(calls):
        await limiter.acquire()
    assert at_least <= loop.time() - started < below


async def test_rate_limiter_serves_waiting_callers_in_order() -> None:
    import asyncio
    from scheduler.kube.client import RateLimiter
    limiter = RateLimiter(qps=100.0, burst=1)  # one token at once, then one every 10 ms
    order: list[int] = []

    async def call(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    await asyncio.gather(*(call(i) for i in range(5)))
    assert order == [0, 1, 2, 3, 4]


# Watch lines are split from the chunks as they arrive; a line may span chunks, blank lines are
# keep-alives, the last line may lack its newline. Served chunk by chunk over loopback HTTP.
@pytest.mark.parametrize(("chunks", "want"), [
    pytest.param([b'{"a":', b'1}\n{"b":', b'2}\n'], [{"a": 1}, {"b": 2}], id="line-across-chunks"),
    pytest.param([b"\n", b'{"a":1}\n\r\n', b'  \n{"b":2}\n'], [{"a": 1}, {"b": 2}], id="blank-lines-skipped"),
    pytest.param([b'{"a":1}\n{"b":2}'], [{"a": 1}, {"b": 2}], id="last-line-without-newline"),
    pytest.param([b"{}\n"], [{}], id="empty-object-kept-for-the-watch-to-refuse"),
    pytest.param([b'{"n": 18446744073709551616}\n'], [{"n": 2**64}], id="2^64-stays-an-exact-int"),
    pytest.param([b'{"a":\n'], "not JSON", id="not-json"),
    # 4 MiB + 1 bytes without a newline, in 64 KiB chunks: over _MAX_LINE
    pytest.param([b"{" + b"x" * 65535] * 64 + [b"x"], "longer than 4,194,304 bytes", id="line-too-long"),
])
async def test_watch_lines(chunks: list[bytes], want: list[Any] | str) -> None:
    import asyncio
    from aiohttp import web
    from scheduler.kube.informer import _json_lines

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk)
            await asyncio.sleep(0.001)  # separate chunks, as a watch sends them
        await resp.write_eof()
        return resp

    async with serve(("GET", "/watch", handler)) as url:
        c = KubeClient(api=k8s.ApiClient(configuration=k8s.Configuration(host=url)), settings=ClientSettings())
        try:
            async with c.stream("/watch", query=[], read_timeout=5.0) as resp:
                if isinstance(want, str):
                    with pytest.raises(errors.TransportError, match=want):
                        [doc async for doc in _json_lines(resp)]
                else:
                    got = [doc async for doc in _json_lines(resp)]
                    assert got == want and _types(got) == _types(want)
        finally:
            await c.close()
