"""`vecsched webhook` as a user starts it: serving against an API server until SIGTERM (not ready
during the shutdown delay, then exit 0); bad flags, files and configurations -> one line, exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from tests.webhook.support import Pki, patched, pod, post, response_of, review

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "extender" / "vecsched-config.yaml"
BAD_CONFIG = ("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
              "profiles:\n- schedulerName: a\n  plugins:\n    score:\n      enabled:\n      - name: Foo\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(home)
    return env


def _vecsched(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", "webhook", *args], capture_output=True, text=True,
                          timeout=60, env=_env(home))


def test_one_line_errors(pki: Pki, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CONFIG)
    tls = ["--tls-cert-file", str(pki.cert_file), "--tls-private-key-file", str(pki.key_file)]
    kubeconfig = tmp_path / "kubeconfig"  # never read: every case fails before connecting
    cases = [
        (["--tls-cert-file", "/nope/tls.crt", "--tls-private-key-file", str(pki.key_file)],
         "vecsched webhook: --tls-cert-file /nope/tls.crt: cannot read: No such file or directory"),
        (["--tls-cert-file", str(pki.cert_file), "--tls-private-key-file", "/nope/tls.key"],
         "vecsched webhook: --tls-private-key-file /nope/tls.key: cannot read: No such file or directory"),
        (["--tls-cert-file", str(pki.cert_file), "--tls-private-key-file", str(pki.cert_file)],
         f"vecsched webhook: --tls-cert-file {pki.cert_file} with --tls-private-key-file {pki.cert_file}: "
         "cannot load: "),
        ([*tls, "--config", str(bad)],
         f"vecsched webhook: {bad}: profiles[0].plugins.score.enabled[0].name: unknown plugin 'Foo' (known: "),
        ([*tls, "--config", str(tmp_path / "missing.yaml")],
         f"vecsched webhook: {tmp_path / 'missing.yaml'}: cannot read: No such file or directory"),
        ([*tls, "--config", str(CONFIG), "--default-profile", "gpu"],
         f"vecsched webhook: --default-profile 'gpu': no such profile in {CONFIG} (have: binpack, spread)"),
        ([*tls, "--kubeconfig", str(kubeconfig)],
         f"vecsched webhook: kubeconfig {kubeconfig} does not exist; pass --kubeconfig, set KUBECONFIG, or run in a "
         "cluster"),
        ([*tls, "--request-budget", "0"], "vecsched webhook: --request-budget must be > 0 seconds, got 0.0"),
    ]
    for args, expected in cases:
        r = _vecsched(*args, home=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        line = r.stderr.strip()
        assert "\n" not in line and line.startswith(expected), (args, line)
    r = _vecsched(home=tmp_path)  # argparse's own usage error names the required flags
    assert r.returncode == 2
    assert "the following arguments are required: --tls-cert-file, --tls-private-key-file" in r.stderr


@pytest.mark.parametrize("config", [None, CONFIG], ids=["no-config", "deploy-extender-config"])
async def test_serves_until_sigterm(apiserver: ApiServer, pki: Pki, tmp_path: Path, config: Path | None) -> None:
    """Without --config the one profile is vecsched; deploy/extender's configuration has binpack and
    spread (spread made the default here). SIGTERM: /readyz 503 during the 1 s delay while reviews are still answered."""
    apiserver.create("namespaces", {"metadata": {"name": "team-a", "labels": {"vecsched.io/scheduler-name": ""}}})
    port, metrics = _free_port(), _free_port()
    args = ["--port", str(port), "--bind-address", "127.0.0.1", "--tls-cert-file", str(pki.cert_file),
            "--tls-private-key-file", str(pki.key_file), "--kubeconfig", str(apiserver.kubeconfig_path),
            "--metrics-port", str(metrics), "--shutdown-delay-seconds", "1"]
    if config is not None:
        args += ["--config", str(config), "--default-profile", "spread"]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "scheduler.cli", "webhook", *args,
                                                env=_env(tmp_path), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    url, ctx = f"https://127.0.0.1:{port}", pki.client_context()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{metrics}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            obj = pod(namespace="team-a")
            sent = review(obj, namespace="team-a")
            resp = response_of(*await post(http, f"{url}/mutate-pods", sent, ctx=ctx), sent)
            # an empty label means the default profile
            assert patched(obj, resp)["spec"]["schedulerName"] == ("vecsched" if config is None else "spread")
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with http.get(f"{url}/readyz", ssl=ctx) as r:
                assert r.status == 503
            sent = review(obj, namespace="team-a")
            assert response_of(*await post(http, f"{url}/mutate-pods", sent, ctx=ctx), sent)["allowed"] is True
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, out.decode()
        assert b"vecsched webhook serving on https://127.0.0.1" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
