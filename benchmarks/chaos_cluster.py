"""The chaos soak's processes and its way of talking to the API server.

``benchmarks.chaos`` runs the control plane and the scheduler as the user
would -- ``vecsched apiserver`` and two ``vecsched run`` replicas, each a
separate process -- so that it can SIGKILL the leader and restart the API
server from its state file. This module starts and stops those processes,
finds the replica that holds the leader Lease, and gives the soak an HTTP
client that rides out the faults it injects itself (500, 429, a server that
is restarting) by retrying.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

from scheduler.apiserver.faults import FAULT_KINDS

__all__ = ["Api", "ApiServerProcess", "SchedulerReplica", "run_args", "scheduler_config", "LEASE_NAME",
           "LEASE_NAMESPACE", "ChaosError"]

LEASE_NAME: Final = "vecsched"
LEASE_NAMESPACE: Final = "kube-system"
_RETRY_SECONDS: Final = 60.0
"""How long a soak request keeps retrying: an API server restart (save, exit, load, listen) takes a few
seconds on the 2-core VM; a minute means the server is really gone."""
_FAULTS_LINE: Final = re.compile(r"vecsched apiserver injected faults: (.*)")


class ChaosError(RuntimeError):
    """The soak itself cannot go on (a process did not start, the API server stayed away)."""


def _vecsched() -> list[str]:
    return [sys.executable, "-m", "scheduler.cli"]


def run_args(*, kubeconfig: Path, config: Path) -> list[str]:
    """The ``vecsched run`` command line of one replica (all of its flags are here, in one place)."""
    return [*_vecsched(), "run", "--kubeconfig", str(kubeconfig), "--config", str(config), "--leader-elect",
            "--bind-address", "127.0.0.1", "--port", "0", "--log-format", "json"]


def scheduler_config(*, lease_seconds: float) -> str:
    """The replicas' KubeSchedulerConfiguration: upstream's lease timings scaled down to ``lease_seconds``
    (renew deadline 3/4 of it, retry period 1/8: upstream's 15 s / 10 s / 2 s keep about those ratios), so
    that a killed leader is replaced within seconds; the gang wait at Permit cut to 10 s (upstream's 60 s
    would hold room for a minute, longer than the soak's bound on idle pending pods)."""
    return (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "leaderElection:\n"
        "  leaderElect: true\n"
        f"  leaseDuration: {int(lease_seconds * 1000)}ms\n"
        f"  renewDeadline: {int(lease_seconds * 750)}ms\n"
        f"  retryPeriod: {int(lease_seconds * 125)}ms\n"
        f"  resourceName: {LEASE_NAME}\n"
        f"  resourceNamespace: {LEASE_NAMESPACE}\n"
        "profiles:\n"
        "- schedulerName: vecsched\n"
        "  pluginConfig:\n"
        "  - name: Coscheduling\n"
        "    args:\n"
        "      permitWaitingTimeSeconds: 10\n"
    )


class Api:
    """JSON over HTTP to the API server, retrying 429, 5xx and refused connections for up to a minute."""

    def __init__(self, *, url: str) -> None:
        self.url = url
        self._http: aiohttp.ClientSession | None = None
        self.retries = 0

    async def __aenter__(self) -> Api:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    async def call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                   content_type: str = "application/json", patience: float = _RETRY_SECONDS) -> tuple[int, Any]:
        """(status, decoded body); retried while the answer is 429/5xx or the server is unreachable."""
        if self._http is None:
            raise RuntimeError("use Api in 'async with' before calling it")
        loop = asyncio.get_running_loop()
        give_up = loop.time() + patience
        delay = 0.05
        while True:
            try:
                data = None if body is None else json.dumps(body)
                async with self._http.request(method, self.url + path, data=data, params=params,
                                              headers={"Content-Type": content_type}) as r:
                    text = await r.text()
                    if r.status not in (429, 500, 502, 503, 504):
                        return r.status, json.loads(text) if text else None
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, json.JSONDecodeError):
                pass
            self.retries += 1
            if loop.time() > give_up:
                raise ChaosError(f"{method} {path}: the API server did not answer for {patience:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def watch(self, path: str, *, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request (``?watch=1``) until the stream ends; nothing when it is refused
        or fails (the caller watches again)."""
        if self._http is None:
            raise RuntimeError("use Api in 'async with' before calling it")
        try:
            async with self._http.get(self.url + path, params={**params, "watch": "1"},
                                      timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as r:
                if r.status != 200:
                    return
                async for line in r.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, json.JSONDecodeError):
            return

    async def items(self, path: str, *, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        status, body = await self.call("GET", path, params=params)
        if status != 200:
            raise ChaosError(f"GET {path}: HTTP {status}: {str(body)[:200]}")
        return list(body.get("items") or [])

    async def list_rv(self, path: str) -> tuple[list[dict[str, Any]], str]:
        """The items of a list and its resourceVersion (where a watch continues from)."""
        status, body = await self.call("GET", path)
        if status != 200:
            raise ChaosError(f"GET {path}: HTTP {status}: {str(body)[:200]}")
        return list(body.get("items") or []), str((body.get("metadata") or {}).get("resourceVersion", ""))


@dataclass
class ApiServerProcess:
    """``vecsched apiserver`` with ``--faults`` and ``--state`` in ``workdir``; restartable on its port."""

    workdir: Path
    args: list[str]
    port: int = 0
    proc: asyncio.subprocess.Process | None = None
    generation: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    """Injected faults by kind, summed over the server's finished lives (their shutdown lines)."""

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.generation += 1
        err = open(self.workdir / f"apiserver-{self.generation}.log", "wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *_vecsched(), "apiserver", "--port", str(self.port), "--state", str(self.workdir / "state.json"),
                "--kubeconfig-out", str(self.kubeconfig), *self.args,
                stdout=asyncio.subprocess.PIPE, stderr=err, start_new_session=True)
        finally:
            err.close()
        assert self.proc.stdout is not None
        try:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()
        except asyncio.TimeoutError:
            line = ""
        m = re.search(r"serving http://[^:]+:(\d+)", line)
        if m is None:
            await self._reap(kill=True)
            raise ChaosError(f"vecsched apiserver did not start: {self._log_tail()}")
        self.port = int(m.group(1))

    async def stop(self) -> None:
        """SIGTERM (the server saves its state), wait, and add its injected faults to ``faults``."""
        await self._reap(kill=False)
        text = (self.workdir / f"apiserver-{self.generation}.log").read_text(errors="replace")
        for m in _FAULTS_LINE.finditer(text):
            for part in m.group(1).split():
                kind, _, n = part.partition("=")
                if kind in FAULT_KINDS and n.isdigit():
                    self.faults[kind] += int(n)

    async def _reap(self, *, kill: bool) -> None:
        p = self.proc
        if p is None or p.returncode is not None:
            return
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.wait_for(p.wait(), 60)
        except asyncio.TimeoutError:
            p.kill()
            await p.wait()

    def _log_tail(self) -> str:
        text = (self.workdir / f"apiserver-{self.generation}.log").read_text(errors="replace").strip()
        return text.splitlines()[-1] if text else "no output"


@dataclass
class SchedulerReplica:
    """One ``vecsched run`` replica; its log (JSON lines) names its leader-election identity."""

    workdir: Path
    name: str
    config: Path
    kubeconfig: Path
    proc: asyncio.subprocess.Process | None = None
    log: Path | None = None

    async def start(self) -> None:
        self.log = self.workdir / f"{self.name}.log"
        out = open(self.log, "wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *run_args(kubeconfig=self.kubeconfig, config=self.config),
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True, env={**os.environ})
        finally:
            out.close()

    def identity(self) -> str:
        """The Lease holder identity this replica logged when it started ("" before that)."""
        if self.log is None or not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            for raw in f:
                if b'"identity"' in raw:
                    try:
                        return str(json.loads(raw)["identity"])
                    except (ValueError, KeyError, TypeError):
                        continue
        return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM and wait (a graceful stop releases the lease); its exit code."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode
