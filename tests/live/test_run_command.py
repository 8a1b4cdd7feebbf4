"""``vecsched run`` as a subprocess: leads, schedules, serves /metrics over HTTPS, and on SIGTERM
releases its lease and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from typing import Final

import aiohttp

from scheduler.apiserver import ApiServer
from tests.live.support import bound_count, pod, wait_for


OPEN_METRICS: Final = ("--authorization-always-allow-paths", "/healthz,/readyz,/livez,/metrics")
"""``vecsched run`` flags for tests that scrape its HTTPS port without a token (as the demo may)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_subprocess(apiserver: ApiServer) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", str(apiserver.kubeconfig_path),
        "--bind-address", "127.0.0.1", "--port", str(port), *OPEN_METRICS, "--leader-elect", "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        apiserver.create("pods", pod("via-cli"))
        await wait_for(lambda: bound_count(apiserver) == 1, timeout=30, what="bound by the subprocess")
        # HTTPS with a self-signed certificate (not verified here), /metrics allowed without a token.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/readyz", ssl=False) as r:
                assert r.status == 200
            async with http.get(f"https://127.0.0.1:{port}/metrics", ssl=False) as r:
                assert 'result="scheduled"} 1.0' in await r.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    decision = next(line for line in lines if line["msg"] == "scheduling summary" and line["scheduled"])
    assert decision["pod"] == "default/via-cli" and decision["node"].startswith("node-")
    assert {"score", "duration_ms", "level", "ts"} <= set(decision)
    assert any(line["msg"] == "vecsched stopped" for line in lines)
    # The log names the address actually bound, with the scheme served.
    started = next(line for line in lines if line["msg"] == "vecsched started")
    assert started["metrics"] == f"https://127.0.0.1:{port}"
    lease = apiserver.get("leases", "vecsched", namespace="kube-system")["spec"]
    assert lease["holderIdentity"] == ""  # released on SIGTERM
