"""Secure serving, as kube-scheduler's: HTTPS with a self-signed certificate kept off the disk,
/metrics only for callers the API server authenticates (TokenReview) and authorizes
(SubjectAccessReview) through the shipped RBAC, brief caching of both answers, and plain HTTP
only on loopback.

The scheduler runs as its ServiceAccount with deploy/rbac.yaml (system:auth-delegator) and
Prometheus as kube-prometheus' ServiceAccount with deploy/monitoring/rbac.yaml, against the
embedded API server with tokens and RBAC, over real HTTPS on loopback.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scheduler import cli
from scheduler.apiserver import ApiServer, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
from scheduler.delegated import DelegatingAuth
from scheduler.kube.client import ClientSettings, connect
from scheduler.metrics import Metrics, MetricsServer
from scheduler.runtime import RuntimeSettings, Scheduler
from scheduler.serving import AlwaysAllowPaths, self_signed, load_context
from tests.live.support import FakeClock, fast_config, settings_for

DEPLOY: Final = Path(__file__).resolve().parents[2] / "deploy"
SCHEDULER: Final = "system:serviceaccount:vecsched:vecsched"
PROMETHEUS: Final = "system:serviceaccount:monitoring:prometheus-k8s"
TOKENS: Final = {"sched-token": SCHEDULER, "prom-token": PROMETHEUS, "bob-token": "bob"}


@asynccontextmanager
async def cluster() -> AsyncIterator[ApiServer]:
    rbac = read_rbac_file(DEPLOY / "rbac.yaml") + read_rbac_file(DEPLOY / "monitoring" / "rbac.yaml")
    async with serve_apiserver(nodes=1, tokens=TOKENS, rbac=rbac, controllers=[]) as srv:
        yield srv


@asynccontextmanager
async def secure_scheduler(srv: ApiServer, tmp_path: Path, **kw: Any) -> AsyncIterator[Scheduler]:
    """The scheduler as its ServiceAccount, HTTPS (self-signed) on a free loopback port."""
    kubeconfig = srv.kubeconfig_for(token="sched-token", path=tmp_path / "sched.kubeconfig")
    settings = settings_for(srv, client=ClientSettings(kubeconfig=str(kubeconfig)), bind_address="127.0.0.1",
                            port=0, secure=True, **kw)
    s = Scheduler(config=fast_config(), settings=settings)
    await s.start()
    try:
        await s.wait_ready(timeout=10)
        yield s
    finally:
        await s.stop()


async def get(url: str, *, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers, ssl=False) as r:
        return r.status, await r.text()


# (path, token, status, what the body holds): the probes are always allowed; /metrics needs a token
# the API server knows, of a user RBAC lets get /metrics (deploy/monitoring/rbac.yaml's Prometheus).
ACCESS_CASES = [
    ("healthz-no-token", "/healthz", None, 200, "ok"),
    ("readyz-no-token", "/readyz", None, 200, "ok"),
    ("livez-no-token", "/livez", None, 200, "ok"),
    ("metrics-no-token", "/metrics", None, 401, '"message":"Unauthorized"'),
    ("metrics-unknown-token", "/metrics", "forged-token", 401, '"reason":"Unauthorized"'),
    ("metrics-prometheus", "/metrics", "prom-token", 200, "scheduler_pending_pods"),
    ("metrics-bob-denied", "/metrics", "bob-token", 403,
     '"message":"forbidden: User \\"bob\\" cannot get path \\"/metrics\\""'),
    ("unknown-path-bob", "/debug/pprof", "bob-token", 403, 'cannot get path \\"/debug/pprof\\"'),
]


@pytest.mark.parametrize(("path", "token", "status", "body"), [c[1:] for c in ACCESS_CASES],
                         ids=[c[0] for c in ACCESS_CASES])
async def test_who_may_read_what(tmp_path: Path, path: str, token: str | None, status: int, body: str) -> None:
    async with cluster() as srv, secure_scheduler(srv, tmp_path) as s:
        assert s.metrics_url.startswith("https://127.0.0.1:")
        got, text = await get(f"{s.metrics_url}{path}", token=token)
        assert (got, body in text) == (status, True), text
        assert "\n" not in text.strip() or status == 200  # a refusal is one line


@contextmanager
def temp_dir_watched(path: Path) -> Iterator[Path]:
    """Make ``path`` the temporary directory of this process while the block runs."""
    before = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = before


async def test_self_signed_certificate_names_the_host_and_stays_off_disk(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    async with cluster() as srv:
        with temp_dir_watched(scratch):
            async with secure_scheduler(srv, tmp_path) as s:
                assert s.certificate is not None
                port = int(s.metrics_url.rsplit(":", 1)[1])
                # The certificate served is the one made in memory, and verifies as itself for localhost.
                trust = ssl.create_default_context(cadata=s.certificate.cert_pem.decode())
                _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trust, server_hostname="localhost")
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                writer.close()
                await writer.wait_closed()
        assert list(scratch.iterdir()) == []  # nothing written where temporary files go
    cert = x509.load_der_x509_certificate(der)
    assert der == x509.load_pem_x509_certificate(s.certificate.cert_pem).public_bytes(Encoding.DER)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # host name and localhost as DNS names; 127.0.0.1 (also the bind address, listed once) as IP
    assert sans.get_values_for_type(x509.DNSName) == [socket.gethostname(), "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    # valid one year (365 days) from a minute before it was made
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=365, minutes=1)
    # no PEM of it anywhere under this test's directory either
    for f in tmp_path.rglob("*"):
        assert not (f.is_file() and b"PRIVATE KEY" in f.read_bytes()), f


# (bind address, IP SANs, DNS SANs beyond host name and localhost): an unspecified address names no host.
SAN_CASES = [
    ("all-ipv4", "0.0.0.0", ["127.0.0.1"], []),
    ("all-ipv6", "::", ["127.0.0.1"], []),
    ("pod-ip", "10.244.1.7", ["127.0.0.1", "10.244.1.7"], []),
    ("ipv6-loopback", "::1", ["127.0.0.1", "::1"], []),
    ("a-name", "sched.example.org", ["127.0.0.1"], ["sched.example.org"]),
]


@pytest.mark.parametrize(("bind", "ips", "dns"), [c[1:] for c in SAN_CASES], ids=[c[0] for c in SAN_CASES])
def test_self_signed_alternative_names(bind: str, ips: list[str], dns: list[str]) -> None:
    cert = self_signed(bind_address=bind, host_name="node-1")
    assert list(cert.ip_addresses) == ips
    assert list(cert.dns_names) == ["node-1", "localhost", *dns]
    parsed = x509.load_pem_x509_certificate(cert.cert_pem)
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ips


# Caching, upstream's TTLs (10 s each): (seconds since the first request, token, new TokenReviews,
# new SubjectAccessReviews, status). Steps run in order on one clock.
CACHE_STEPS = [
    ("first", 0.0, "prom-token", 1, 1, 200),
    ("again-at-5s", 5.0, "prom-token", 0, 0, 200),
    ("denied-first", 5.0, "bob-token", 1, 1, 403),
    ("denied-cached", 9.0, "bob-token", 0, 0, 403),
    ("allowed-expired-at-10.5s", 10.5, "prom-token", 1, 1, 200),
    ("denied-expired-at-15.5s", 15.5, "bob-token", 1, 1, 403),
    ("unknown-token", 15.5, "forged", 1, 0, 401),
    ("unknown-cached-too", 20.0, "forged", 0, 0, 401),
]


@asynccontextmanager
async def guarded_server(srv: ApiServer, tmp_path: Path, *, clock: FakeClock,
                         paths: str = "/healthz,/readyz,/livez") -> AsyncIterator[tuple[MetricsServer, DelegatingAuth]]:
    """/metrics over HTTPS guarded as ``vecsched run`` guards it, with a clock the test moves."""
    kubeconfig = srv.kubeconfig_for(token="sched-token", path=tmp_path / "sched.kubeconfig")
    client = await connect(ClientSettings(kubeconfig=str(kubeconfig)))
    auth = DelegatingAuth(client=client, always_allow=AlwaysAllowPaths.from_text(paths), clock=clock)
    server = MetricsServer(metrics=Metrics(), ready=lambda: True, host="127.0.0.1", port=0,
                           ssl_context=load_context(self_signed(bind_address="127.0.0.1")), guard=auth)
    await server.start()
    try:
        yield server, auth
    finally:
        await server.stop()
        await client.close()


async def test_answers_are_cached_as_upstream(tmp_path: Path, clock: FakeClock) -> None:
    start = clock.now
    async with cluster() as srv, guarded_server(srv, tmp_path, clock=clock) as (server, auth):
        for step, at, token, token_reviews, access_reviews, status in CACHE_STEPS:
            clock.now = start + at
            before, requests = dict(auth.reviews), srv.http.requests
            got, _ = await get(f"{server.url}/metrics", token=token)
            made = (auth.reviews["TokenReview"] - before.get("TokenReview", 0),
                    auth.reviews["SubjectAccessReview"] - before.get("SubjectAccessReview", 0))
            assert (got, made) == (status, (token_reviews, access_reviews)), step
            # what the API server saw: exactly those reviews, nothing else
            assert srv.http.requests - requests == token_reviews + access_reviews, step


async def test_always_allowed_prefix(tmp_path: Path, clock: FakeClock) -> None:
    # "/metr*" (upstream's trailing-* prefix) opens /metrics too; /debug still needs a token.
    async with cluster() as srv, guarded_server(srv, tmp_path, clock=clock, paths="/healthz,/metr*") as (server, auth):
        assert (await get(f"{server.url}/metrics"))[0] == 200
        assert (await get(f"{server.url}/debug"))[0] == 401
        assert (await get(f"{server.url}/readyz"))[0] == 401  # not in this list
        assert sum(auth.reviews.values()) == 0


async def test_api_server_unreachable(tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    async with cluster() as srv, guarded_server(srv, tmp_path, clock=clock) as (server, _):
        assert (await get(f"{server.url}/metrics", token="prom-token"))[0] == 200
        clock.advance(5.0)
        await srv.stop()
        with caplog.at_level(logging.WARNING, logger="vecsched.serving"):
            assert (await get(f"{server.url}/healthz"))[0] == 200  # probes keep working
            # 5 s: both of Prometheus' answers are still cached (10 s); bob's token was never reviewed
            assert (await get(f"{server.url}/metrics", token="prom-token"))[0] == 200
            assert (await get(f"{server.url}/metrics", token="bob-token"))[0] == 401
            clock.advance(6.0)  # 11 s: Prometheus' answers expired, and cannot be asked again
            assert (await get(f"{server.url}/metrics", token="prom-token"))[0] == 401
        # one log line: the second failure, 6 s later, falls within the 30 s between two lines
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1 and messages[0].startswith("Unable to authenticate the request: TokenReview: ")


async def test_authorization_failure_is_500(tmp_path: Path, clock: FakeClock) -> None:
    async with cluster() as srv:
        kubeconfig = srv.kubeconfig_for(token="sched-token", path=tmp_path / "sched.kubeconfig")
        client = await connect(ClientSettings(kubeconfig=str(kubeconfig)))
        try:
            # Reviews of the user that were cached: only the SubjectAccessReview is asked after 10 s,
            # of an API server that is gone -> upstream's 500 with the path and the error, one line.
            auth = DelegatingAuth(client=client, always_allow=AlwaysAllowPaths.parse([]), clock=clock,
                                  authn_ttl=60.0)
            who = await auth.authenticate("prom-token")
            assert who is not None and who.name == PROMETHEUS
            server = MetricsServer(metrics=Metrics(), ready=lambda: True, host="127.0.0.1", port=0,
                                   ssl_context=load_context(self_signed(bind_address="127.0.0.1")), guard=auth)
            await server.start()
            try:
                await srv.stop()
                status, text = await get(f"{server.url}/metrics", token="prom-token")
            finally:
                await server.stop()
        finally:
            await client.close()
    assert status == 500
    assert text.startswith('{"kind":"Status"') and '"message":"Internal Server Error: \\"/metrics\\": ' in text


# ---- the command line and the addresses logged --------------------------------------------------

# (args, the one line on stderr): --port 0 turns HTTPS off; plain HTTP needs a loopback address given.
CLI_CASES = [
    ("port-0-alone", ["--port", "0"],
     "vecsched run: --port 0 turns HTTPS off: add --bind-address 127.0.0.1 (or ::1, localhost) to serve plain HTTP "
     "on a free loopback port, or give a --port above 0 for HTTPS"),
    ("port-0-all-interfaces", ["--port", "0", "--bind-address", "0.0.0.0"],
     "vecsched run: --bind-address '0.0.0.0': --port 0 serves plain HTTP on a loopback address only (127.0.0.1, ::1 "
     "or localhost); give a --port above 0 for HTTPS"),
    ("port-0-pod-ip", ["--port", "0", "--bind-address", "10.0.0.5"],
     "vecsched run: --bind-address '10.0.0.5': --port 0 serves plain HTTP on a loopback address only (127.0.0.1, "
     "::1 or localhost); give a --port above 0 for HTTPS"),
    ("port-0-with-cert", ["--port", "0", "--bind-address", "127.0.0.1", "--tls-cert-file", "c.pem",
                          "--tls-private-key-file", "k.pem"],
     "vecsched run: --tls-cert-file: --port 0 serves plain HTTP; give a --port above 0 to serve HTTPS"),
    ("cert-without-key", ["--tls-cert-file", "c.pem"],
     "vecsched run: --tls-cert-file and --tls-private-key-file must be given together"),
    ("star-inside", ["--authorization-always-allow-paths", "/healthz,/a*b"],
     "vecsched run: --authorization-always-allow-paths: only a trailing * is allowed, got '/a*b'"),
    ("port-too-big", ["--port", "65536"], "vecsched run: --port: must be between 0 and 65535, got 65536"),
]


@pytest.mark.parametrize(("args", "line"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_serving_flags_refused_with_one_line(args: list[str], line: str, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # refused before any file or cluster is read
    assert cli.main(["run", "--config", str(tmp_path / "absent.yaml"), *args]) == 2
    assert capsys.readouterr().err == line + "\n"


# (bind address, HTTPS?, URL logged and reported, as bound): 0.0.0.0 is every interface, not 127.0.0.1.
ADDRESS_CASES = [
    ("ipv4-loopback-http", "127.0.0.1", False, "http://127.0.0.1:"),
    ("ipv6-loopback-http", "::1", False, "http://[::1]:"),
    ("all-interfaces-https", "0.0.0.0", True, "https://0.0.0.0:"),
]


@pytest.mark.parametrize(("bind", "https", "prefix"), [c[1:] for c in ADDRESS_CASES], ids=[c[0] for c in ADDRESS_CASES])
async def test_logs_name_the_address_bound(bind: str, https: bool, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    ctx = load_context(self_signed(bind_address=bind)) if https else None
    server = MetricsServer(metrics=Metrics(), ready=lambda: True, host=bind, port=0, ssl_context=ctx)
    with caplog.at_level(logging.INFO, logger="vecsched.metrics"):
        await server.start()
    try:
        port = int(server.url.rsplit(":", 1)[1])
        assert server.url == f"{prefix}{port}"
        assert [r.getMessage() for r in caplog.records] == [
            f"serving /metrics /healthz /readyz /livez on {prefix}{port}"]
        assert (await get(f"{server.url.replace('0.0.0.0', '127.0.0.1')}/healthz"))[0] == 200
    finally:
        await server.stop()


def test_plain_http_only_on_loopback() -> None:
    # In-process users: port 0 means plain HTTP, which only a loopback address may serve.
    with pytest.raises(ValueError, match=r"^--bind-address '0.0.0.0': plain HTTP \(port 0\) is served on a loopback"):
        RuntimeSettings(bind_address="0.0.0.0", port=0)
    assert not RuntimeSettings(port=0).serves_https and RuntimeSettings().serves_https
    assert RuntimeSettings(bind_address="0.0.0.0", port=0, secure=True).serves_https
