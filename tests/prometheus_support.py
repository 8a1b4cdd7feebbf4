"""A real Prometheus server for the tests, on loopback.

vecsched both exports Prometheus metrics and reads load metrics from Prometheus, so the
tests check both directions against Debian's ``prometheus`` (the server and ``promtool``)
rather than against a fake: ``prometheus(targets=...)`` writes a config that scrapes the
given metrics URLs (and evaluates the given rule files), starts the server with a
throw-away TSDB on a free loopback port, waits until it is ready and yields a handle for
instant queries. ``make test`` installs the package; a missing binary fails the test with
a message saying so, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from scheduler.demo_prometheus import terminate

__all__ = ["PROMETHEUS", "PROMTOOL", "Target", "Prometheus", "prometheus", "config", "require", "promtool",
           "free_port"]

PROMETHEUS: Final = shutil.which("prometheus") or "/usr/bin/prometheus"
"""The Prometheus server binary (PATH first, then Debian's location)."""
PROMTOOL: Final = shutil.which("promtool") or "/usr/bin/promtool"
"""promtool, from the same package."""

_READY_TIMEOUT: Final = 30.0
"""Seconds to wait for /-/ready: Prometheus replays an empty WAL in well under a second, but
the test machines are slow and shared."""
_POLL: Final = 0.25
"""Seconds between polls of /-/ready and of ``wait_for``'s query: a quarter of the default 1 s
scrape interval, so a wait ends soon after the scrape that satisfies it."""
_LOG_TAIL: Final = 30
"""Lines of Prometheus' own log shown when it fails to start or a wait times out."""


def require(binary: str) -> str:
    """``binary`` if it is an executable file; otherwise fail the test saying how to install it."""
    if not Path(binary).is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"{Path(binary).name} is not installed: run `make test` (it installs Debian's prometheus "
                    f"package as root), or `sudo apt-get install --no-install-recommends prometheus`",
                    pytrace=False)
    return binary


def promtool(*args: str, cwd: Path | None = None, timeout: float = 120.0) -> tuple[int, str]:
    """Run ``promtool ARGS`` (in ``cwd``); its exit code and its stdout then stderr (for assertion messages)."""
    r = subprocess.run([require(PROMTOOL), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return r.returncode, r.stdout + r.stderr


@dataclass(frozen=True)
class Target:
    """One scrape target: ``url`` is the full metrics URL (scheme, host:port and path; a query
    string becomes the scrape's params). ``honor_labels`` keeps the target's own ``instance``
    and ``job`` labels, as the simulated node-exporter endpoint needs."""

    job: str
    url: str
    honor_labels: bool = False


def _scrape_config(t: Target) -> dict[str, Any]:
    u = urlsplit(t.url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"Target {t.job!r}: url {t.url!r} is not an http(s) URL with a host")
    sc: dict[str, Any] = {"job_name": t.job, "scheme": u.scheme, "metrics_path": u.path or "/metrics",
                          "honor_labels": t.honor_labels, "static_configs": [{"targets": [u.netloc]}]}
    if u.query:
        params: dict[str, list[str]] = {}
        for pair in u.query.split("&"):
            k, _, v = pair.partition("=")
            params.setdefault(k, []).append(v)
        sc["params"] = params
    return sc


def config(*, targets: Sequence[Target], rule_files: Sequence[Path], scrape_interval: str,
           evaluation_interval: str) -> dict[str, Any]:
    """The prometheus.yml for ``targets`` and ``rule_files``. The scrape timeout equals the
    interval (Prometheus' default of 10s is refused when the interval is shorter)."""
    jobs = [t.job for t in targets]
    dupes = sorted({j for j in jobs if jobs.count(j) > 1})
    if dupes:
        raise ValueError(f"Target job names must be unique, repeated: {dupes}")
    return {"global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": evaluation_interval},
            "rule_files": [str(Path(p).resolve()) for p in rule_files],
            "scrape_configs": [_scrape_config(t) for t in targets]}


def free_port() -> int:
    """A loopback TCP port free right now (for a server whose URL must be known before it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A running Prometheus server: ``url`` is its base URL (``http://127.0.0.1:PORT``)."""

    def __init__(self, *, url: str, proc: asyncio.subprocess.Process, log: Path,
                 session: aiohttp.ClientSession) -> None:
        self.url = url
        self._proc = proc
        self._log = log
        self._session = session

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        """The last ``lines`` lines of the server's own log (its stderr)."""
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of the instant query ``expr`` now: a list of ``{"metric": {...}, "value": [t, "v"]}``
        (a scalar or string result is one such entry with no labels). A query Prometheus refuses
        fails the test with its error."""
        async with self._session.get(f"{self.url}/api/v1/query", params={"query": expr}) as r:
            body = await r.json(content_type=None)
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus refused {expr!r}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] in ("vector", "matrix"):
            return list(data["result"])
        return [{"metric": {}, "value": data["result"]}]

    async def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error (for failure messages)."""
        async with self._session.get(f"{self.url}/api/v1/targets") as r:
            body = await r.json(content_type=None)
        return list(body["data"]["activeTargets"])

    async def rules(self) -> list[dict[str, Any]]:
        """The loaded rules with their health and last evaluation error, across groups."""
        async with self._session.get(f"{self.url}/api/v1/rules") as r:
            body = await r.json(content_type=None)
        return [rule for g in body["data"]["groups"] for rule in g["rules"]]

    async def wait_for(self, expr: str, *, timeout: float = 30, what: str = "") -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns at least one series, and return them; on timeout fail
        with the scrape targets' health and the server's log."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = await self.query(expr)
            if result:
                return result
            if loop.time() > deadline:
                health = [(t["labels"].get("job"), t["scrapeUrl"], t["health"], t["lastError"])
                          for t in await self.targets()]
                raise AssertionError(f"timed out after {timeout}s waiting for {what or expr!r}: {expr!r} returned "
                                     f"no series\ntargets: {health}\nprometheus log:\n{self.log_tail()}")
            await asyncio.sleep(_POLL)

    async def stop(self) -> None:
        """Terminate the server now (a later scrape or query sees it gone). Idempotent."""
        await terminate(self._proc)


async def _ready(session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process,
                 timeout: float) -> bool:
    """Whether ``url``/-/ready answered 200 within ``timeout`` (False at once if the process exited)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and proc.returncode is None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with session.get(f"{url}/-/ready", timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status == 200:
                    return True
        await asyncio.sleep(_POLL)
    return False


@asynccontextmanager
async def prometheus(*, targets: Sequence[Target], rule_files: Sequence[Path] = (), scrape_interval: str = "1s",
                     evaluation_interval: str = "1s") -> AsyncIterator[Prometheus]:
    """Run Prometheus on a free loopback port scraping ``targets`` and evaluating ``rule_files``
    until the block ends. Fails (with the tail of Prometheus' log) if it is not ready in 30 s."""
    binary = require(PROMETHEUS)
    with tempfile.TemporaryDirectory(prefix="vecsched-prometheus-") as tmp:
        conf = Path(tmp) / "prometheus.yml"
        conf.write_text(yaml.safe_dump(config(targets=targets, rule_files=rule_files, scrape_interval=scrape_interval,
                                              evaluation_interval=evaluation_interval), sort_keys=False))
        log = Path(tmp) / "prometheus.log"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            # The free port can be taken between probing and binding; a second port usually is not.
            for attempt in range(3):
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                with log.open("ab") as err:
                    proc = await asyncio.create_subprocess_exec(
                        binary, f"--config.file={conf}", f"--storage.tsdb.path={Path(tmp) / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}", stdin=asyncio.subprocess.DEVNULL,
                        stdout=err, stderr=err)
                server = Prometheus(url=url, proc=proc, log=log, session=session)
                if await _ready(session, url, proc, _READY_TIMEOUT):
                    break
                await server.stop()
                if "address already in use" not in server.log_tail() or attempt == 2:
                    raise AssertionError(f"Prometheus ({binary}) was not ready on {url} within {_READY_TIMEOUT}s "
                                         f"(exit code {proc.returncode}); its log:\n{server.log_tail()}")
            try:
                yield server
            finally:
                await server.stop()
