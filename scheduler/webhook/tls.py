"""The webhook's serving certificate, reloaded when its files change.

cert-manager renews the webhook's certificate well before it expires and the
kubelet rewrites the mounted Secret's files; a webhook that read them only at
start would serve an expired certificate some months later, and every
admission would fail. So the files' identity (inode, size, mtime -- the
kubelet swaps a symlink, which changes the inode) is checked on a timer, and
when it changes a fresh ``SSLContext`` is built from them. The listening
socket keeps one context whose SNI callback, which OpenSSL runs on every
ClientHello with or without a server name, hands each new connection the
current one: connections open at the moment of the swap keep the certificate
they started with, new ones get the new certificate, nothing restarts.

Files caught half-written (a certificate that does not match its key) are
not an outage: the error is logged, the previous certificate stays in use,
and the next change of the files is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from typing import Any

from scheduler.tasks import cancel

__all__ = ["ReloadingCertificate", "TLSFileError"]

log = logging.getLogger("vecsched.webhook")

_Signature = tuple[tuple[int, int, int, int], ...]


class TLSFileError(ValueError):
    """The certificate or key file cannot be read or loaded (one line, naming the flag and file)."""


def _signature(*paths: str) -> _Signature:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _load(cert_file: str, key_file: str) -> ssl.SSLContext:
    for flag, path in (("--tls-cert-file", cert_file), ("--tls-private-key-file", key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise TLSFileError(f"{flag} {path}: cannot read: {e.strerror}") from None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as e:
        reason = getattr(e, "reason", None) or str(e)
        raise TLSFileError(f"--tls-cert-file {cert_file} with --tls-private-key-file {key_file}: "
                           f"cannot load: {reason}") from None
    return ctx


class ReloadingCertificate:
    """An ``SSLContext`` for a server (``context``) that follows the certificate files."""

    def __init__(self, *, cert_file: str, key_file: str, interval: float = 1.0) -> None:
        """Loads the files now (``TLSFileError`` if they cannot be); ``interval``: seconds between checks."""
        if interval <= 0:
            raise ValueError(f"the certificate check interval must be > 0 seconds, got {interval}")
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval = interval
        self.context = _load(cert_file, key_file)
        self._current = self.context
        self._seen = _signature(cert_file, key_file)
        self.context.sni_callback = self._pick
        self.reloads = 0
        """Certificates loaded since start (tests and logs read it)."""
        self._task: asyncio.Task[None] | None = None

    def _pick(self, conn: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        current = self._current
        if current is not ctx:
            conn.context = current

    def check(self) -> bool:
        """Reload if the files changed since last seen; True when a new certificate is in use."""
        try:
            sig = _signature(self.cert_file, self.key_file)
        except OSError as e:
            log.warning("cannot stat the webhook's certificate files (%s); still serving the previous one", e)
            return False
        if sig == self._seen:
            return False
        self._seen = sig  # also on failure: the next *change* is tried, not the same files every tick
        try:
            fresh = _load(self.cert_file, self.key_file)
        except TLSFileError as e:
            log.warning("certificate files changed but cannot be loaded (%s); still serving the previous one", e)
            return False
        self._current = fresh
        self.reloads += 1
        log.info("serving the new certificate from %s", self.cert_file)
        return True

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("ReloadingCertificate.start() called twice")
        self._task = asyncio.create_task(self._watch(), name="webhook certificate reload")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()
