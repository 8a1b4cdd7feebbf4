"""Secure serving for ``vecsched run``, as kube-scheduler's: TLS, its certificate, and who may skip auth.

kube-scheduler serves ``/metrics`` and its probes on a secure port: HTTPS with
the operator's certificate (``--tls-cert-file``/``--tls-private-key-file``) or,
without one, a self-signed certificate made at start, and every path but the
always-allowed ones (``--authorization-always-allow-paths``, default
``/healthz,/readyz,/livez``) needs credentials that the API server vouches for
(``scheduler.delegated``). vecsched does the same. Plain HTTP remains for
tests and demos, and only on a loopback address, where no one else can listen
in.

The self-signed key never touches a disk: Python's ``ssl`` loads certificates
only from files, so the PEM text is handed to it through an anonymous
in-memory file (``memfd_create``); where that does not exist, through a
private temporary file that is removed before the server accepts a connection.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_ALWAYS_ALLOW_PATHS", "LOOPBACK_NAMES", "SELF_SIGNED_DAYS", "AlwaysAllowPaths", "SelfSigned",
           "format_url", "is_loopback", "self_signed", "server_context", "load_context"]

DEFAULT_ALWAYS_ALLOW_PATHS: Final = ("/healthz", "/readyz", "/livez")
"""kube-scheduler's ``--authorization-always-allow-paths`` default: kubelets probe without credentials."""
LOOPBACK_NAMES: Final = frozenset({"localhost"})
"""Host names that are loopback by definition (besides 127.0.0.0/8 and ::1)."""
SELF_SIGNED_DAYS: Final = 365
"""Validity of the self-signed certificate: one year, as client-go's GenerateSelfSignedCertKey."""


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP or ``localhost``) can only be reached from this machine."""
    if address.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def format_url(*, scheme: str, host: str, port: int) -> str:
    """``scheme://host:port`` with an IPv6 address bracketed."""
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class AlwaysAllowPaths:
    """Paths served without credentials, with upstream's matching (k8s.io/apiserver's path authorizer):
    a leading ``/`` is optional, a trailing ``*`` matches every path with that prefix, and a ``*``
    anywhere else is refused."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, paths: Iterable[str]) -> AlwaysAllowPaths:
        """From a list of paths (``--authorization-always-allow-paths``); ValueError names a bad one."""
        exact: set[str] = set()
        prefixes: list[str] = []
        for raw in paths:
            p = raw.strip().removeprefix("/")
            if "*" in p[:-1]:
                raise ValueError(f"--authorization-always-allow-paths: only a trailing * is allowed, got {raw.strip()!r}")
            if p.endswith("*"):
                prefixes.append(p[:-1])
            else:
                exact.add(p)
        return cls(exact=frozenset(exact), prefixes=tuple(prefixes))

    @classmethod
    def from_text(cls, text: str) -> AlwaysAllowPaths:
        """From the flag's comma-separated text; empty items are skipped (an empty text allows nothing)."""
        return cls.parse(p for p in text.split(",") if p.strip())

    def allows(self, path: str) -> bool:
        p = path.removeprefix("/")
        return p in self.exact or any(p.startswith(prefix) for prefix in self.prefixes)


@dataclass(frozen=True, slots=True)
class SelfSigned:
    """A certificate and its private key, PEM-encoded, kept in memory only."""

    cert_pem: bytes
    key_pem: bytes
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def self_signed(*, bind_address: str, host_name: str | None = None, days: int = SELF_SIGNED_DAYS,
                now: datetime.datetime | None = None) -> SelfSigned:
    """A self-signed serving certificate for the host name, ``localhost``, 127.0.0.1 and the bind
    address (an unspecified address, 0.0.0.0 or ::, names no host and is left out), valid ``days``.

    The key is ECDSA P-256: as strong as the RSA-2048 key upstream makes and generated in
    milliseconds instead of the hundreds an RSA key takes on a small VM.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    host = host_name if host_name is not None else socket.gethostname()
    dns: list[str] = []
    ips: list[str] = []
    for name in (host, "localhost", "127.0.0.1", bind_address):
        name = name.strip("[]")
        if not name:
            continue
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name not in dns:
                dns.append(name)
            continue
        if not ip.is_unspecified and str(ip) not in ips:
            ips.append(str(ip))
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0)
    # Upstream's subject: "<host>@<unix time>", so that two certificates of one host differ.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{int(start.timestamp())}")])
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            # A minute of slack for clients whose clock is a little behind ours.
            .not_valid_before(start - datetime.timedelta(minutes=1))
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return SelfSigned(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        dns_names=tuple(dns), ip_addresses=tuple(ips))


@contextlib.contextmanager
def _pem_path(data: bytes) -> Iterator[str]:
    """A path ``ssl`` can read ``data`` from, valid inside the block and gone after it."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("vecsched-serving", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
            return
        finally:
            os.close(fd)
    # No anonymous memory files here: a 0600 temporary file, removed as soon as ssl has read it.
    fd, path = tempfile.mkstemp(prefix="vecsched-serving-", suffix=".pem")
    try:
        os.write(fd, data)
        os.close(fd)
        fd = -1
        yield path
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # kube-scheduler's default minimum
    return ctx


def load_context(cert: SelfSigned) -> ssl.SSLContext:
    """A server TLS context holding ``cert``, loaded without writing the key to a disk."""
    ctx = _context()
    with _pem_path(cert.key_pem + cert.cert_pem) as path:
        ctx.load_cert_chain(path)
    return ctx


def server_context(*, cert_file: str | None, key_file: str | None, bind_address: str,
                   host_name: str | None = None) -> tuple[ssl.SSLContext, SelfSigned | None]:
    """The serving TLS context: the given certificate and key, or a self-signed pair made now
    (returned too, so that a caller can show or pin it). A certificate without its key, or a
    file that cannot be read, is a ValueError naming the flag."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
    if cert_file and key_file:
        ctx = _context()
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"--tls-cert-file {cert_file} / --tls-private-key-file {key_file}: cannot load: "
                             f"{getattr(e, 'strerror', None) or e}") from None
        return ctx, None
    cert = self_signed(bind_address=bind_address, host_name=host_name)
    return load_context(cert), cert

