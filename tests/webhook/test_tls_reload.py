"""The serving certificate follows its files: after they change, a new connection is served the
new certificate (its serial, read from the handshake) while a kept-alive connection goes on;
files that do not load leave the previous certificate in use until they are fixed."""

from __future__ import annotations

import asyncio

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization

from scheduler.apiserver import ApiServer
from scheduler.webhook import WebhookServer
from tests.live.support import wait_async
from tests.webhook.support import Pki, pod, post, response_of, review, webhook


async def served_serial(wh: WebhookServer, pki: Pki) -> int:
    """The serial of the certificate a new TLS connection is given (verified against the CA)."""
    port = int(wh.url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=pki.client_context(),
                                              server_hostname="127.0.0.1")
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return int(x509.load_der_x509_certificate(der).serial_number)
    finally:
        writer.close()


async def test_new_connections_get_the_new_certificate(apiserver: ApiServer, pki: Pki) -> None:
    ctx = pki.client_context()
    async with webhook(pki, apiserver, tls_reload_seconds=0.05) as wh:
        first = pki.serial
        assert await served_serial(wh, pki) == first
        # one kept-alive connection, opened before the change
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
            sent = review(pod())
            response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)

            second = pki.issue()
            assert second != first

            async def renewed() -> bool:
                return await served_serial(wh, pki) == second

            await wait_async(renewed, timeout=5, what="the renewed certificate")
            assert wh.certificate.reloads == 1
            sent = review(pod())  # the old connection still works
            response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)

        # Half-written files: a new certificate with the old key does not load; the last good one stays.
        stray = pki.issue(cert_file=pki.dir / "other.crt", key_file=pki.dir / "other.key")
        pki.cert_file.write_bytes((pki.dir / "other.crt").read_bytes())
        await asyncio.sleep(0.3)  # six checks
        assert wh.certificate.reloads == 1
        assert await served_serial(wh, pki) == second
        # ... until the key arrives too
        pki.key_file.write_bytes((pki.dir / "other.key").read_bytes())

        async def fixed() -> bool:
            return await served_serial(wh, pki) == stray

        await wait_async(fixed, timeout=5, what="the completed certificate")
        assert wh.certificate.reloads == 2


async def test_a_key_that_does_not_match_is_refused_at_start(pki: Pki, apiserver: ApiServer) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    wrong = pki.dir / "wrong.key"
    wrong.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    try:
        async with webhook(pki, apiserver, tls_key_file=str(wrong)):
            raise AssertionError("served with a key that does not match the certificate")
    except ValueError as e:
        assert str(e) == (f"--tls-cert-file {pki.cert_file} with --tls-private-key-file {wrong}: cannot load: "
                          "KEY_VALUES_MISMATCH")
