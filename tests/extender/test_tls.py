"""HTTPS with the extender's certificate, and client-certificate checks with --client-ca-file:
verbs need a certificate signed by that CA; probes and /metrics do not."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scheduler.config import default_config
from scheduler.extender import ExtenderServer, ExtenderSettings, serve_extender
from tests.extender.wire import kube_node, kube_pod, node_list

ARGS = {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"))}


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(cn: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
           *, ca: bool = False, san: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        import ipaddress
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return path.with_suffix(".crt"), path.with_suffix(".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("vecsched-test-ca", ca_key, _name("vecsched-test-ca"), ca_key, ca=True)
    ca_crt, _ = _write(d / "ca", ca, ca_key)
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("server", "client", "rogue")}
    server = _write(d / "server", _issue("vecsched-extender", keys["server"], ca.subject, ca_key, san=True),
                    keys["server"])
    client = _write(d / "client", _issue("kube-scheduler", keys["client"], ca.subject, ca_key), keys["client"])
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _write(d / "rogue", _issue("kube-scheduler", keys["rogue"], _name("someone-else"), rogue_ca_key),
                   keys["rogue"])
    return Pki(ca_crt, *server, *client, *rogue)


@pytest.fixture
async def ext(pki: Pki) -> AsyncIterator[ExtenderServer]:
    async with serve_extender(config=default_config(), settings=ExtenderSettings(
            bind_address="127.0.0.1", port=0, tls_cert_file=str(pki.server_cert),
            tls_key_file=str(pki.server_key), client_ca_file=str(pki.ca))) as srv:
        yield srv


def _context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def test_verbs_need_a_client_certificate_from_the_ca(ext: ExtenderServer, pki: Pki) -> None:
    assert ext.url.startswith("https://")
    async with aiohttp.ClientSession() as http:
        good = _context(pki, pki.client_cert, pki.client_key)
        async with http.post(f"{ext.url}/filter", json=ARGS, ssl=good) as r:
            assert r.status == 200
            assert (await r.json())["Error"] == ""
        anonymous = _context(pki)
        async with http.post(f"{ext.url}/filter", json=ARGS, ssl=anonymous) as r:
            assert r.status == 401
            assert "client certificate" in (await r.json())["Error"]
        async with http.get(f"{ext.url}/healthz", ssl=anonymous) as r:
            assert r.status == 200
        async with http.get(f"{ext.url}/metrics", ssl=anonymous) as r:
            assert r.status == 200
        with pytest.raises(aiohttp.ClientError):  # a certificate from another CA fails the handshake
            async with http.post(f"{ext.url}/filter", json=ARGS,
                                 ssl=_context(pki, pki.rogue_cert, pki.rogue_key)) as r:
                await r.read()


def test_client_ca_without_tls_is_refused(pki: Pki) -> None:
    with pytest.raises(ValueError, match="--client-ca-file needs TLS"):
        ExtenderSettings(client_ca_file=str(pki.ca))
