"""`vecsched extender` as a user starts it: flags, serving, SIGTERM -> exit 0; bad flags -> exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.extender.wire import kube_node, kube_pod, node_list, post

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "extender" / "vecsched-config.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serves_until_sigterm() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "extender", "--config", str(CONFIG), "--port", str(port),
        "--bind-address", "127.0.0.1", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{url}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            status, result = await post(http, f"{url}/filter",
                                        {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"))})
            assert status == 200 and result["Error"] == ""
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, out.decode()
        assert b"standalone" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_bad_flags_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "scheduler.cli", "extender", "--tls-cert-file", "x.crt", "--standalone"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == ("vecsched extender: --tls-cert-file and --tls-private-key-file must be given together")
