"""``vecsched apiserver`` as a process: serves, writes a kubeconfig, exits 0 on SIGTERM saving state."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

VECSCHED = [sys.executable, "-m", "scheduler.cli", "apiserver"]


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(*VECSCHED, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    return proc, line


async def test_serve_then_sigterm(tmp_path: Path) -> None:
    kubeconfig, state = tmp_path / "kc.yaml", tmp_path / "state.json"
    proc, line = await _start("--port", "0", "--nodes", "4", "--node-cpu", "8", "--node-zones", "a,b",
                              "--shape", "count=1,cpu=64,gpus=2", "--kubeconfig-out", str(kubeconfig),
                              "--state", str(state))
    m = re.match(r"vecsched apiserver serving (http://127\.0\.0\.1:\d+) \(kubeconfig: (.+)\)$", line.strip())
    assert m, line
    url = m.group(1)
    assert Path(m.group(2)) == kubeconfig
    assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == url
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/version") as r:
            assert (await r.json())["major"] == "1"
        async with s.get(url + "/api/v1/nodes") as r:
            nodes = (await r.json())["items"]
    assert len(nodes) == 5 and nodes[0]["status"]["capacity"]["cpu"] == "8"
    assert nodes[4]["status"]["capacity"]["nvidia.com/gpu"] == "2"
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    saved = json.loads(state.read_text())
    assert len(saved["objects"]["nodes"]) == 5


@pytest.mark.parametrize(("args", "message"), [
    (["--node-memory", "12GB"], "invalid quantity '12GB'"),
    (["--shape", "count=2,colour=red"], "invalid --shape"),
    (["--token", "just-a-token"], "invalid --token"),
    (["--rbac", "/nonexistent/rbac.yaml"], "cannot read RBAC file"),
])
async def test_bad_flags_exit_2(args: list[str], message: str) -> None:
    proc = await asyncio.create_subprocess_exec(*VECSCHED, "--port", "0", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and message in err.decode()
