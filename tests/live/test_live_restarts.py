"""The scheduler and the API server can die and come back without losing or
double-binding a pod.

- The scheduler, a `vecsched run` process, is SIGKILLed mid-run and restarted:
  every pod ends bound exactly once (its node never changes once set) and no
  node holds more than its allocatable.
- The API server, a `vecsched apiserver --state F` process, is stopped
  mid-run and restarted from its state file: the scheduler's watches
  reconnect and it finishes the workload.
"""

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from scheduler.apiserver import NodeShape, serve_apiserver
from tests.live.support import assert_no_overcommit, bound_count, pod, wait_for

PODS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "scheduler.cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                                                stdin=asyncio.subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _scheduler_args(kubeconfig: Path) -> list[str]:
    return ["run", "--kubeconfig", str(kubeconfig), "--bind-address", "127.0.0.1", "--port", "0", "--no-leader-elect",
            "--log-level", "error"]


async def test_scheduler_killed_and_restarted_binds_every_pod_once() -> None:
    async with serve_apiserver(nodes=NodeShape(count=10, cpu="8", memory="32Gi", pods=40), kubelet_delay=0.0) as srv:
        node_of: dict[str, list[str]] = {}
        first: asyncio.subprocess.Process | None = None
        bound: list[str] = []

        def track(key: Any, old: Any, new: Any) -> None:
            if new is None:
                return
            node = new.fields[node_field]
            seq = node_of.setdefault(new.name, [])
            if node and (not seq or seq[-1] != node):
                seq.append(node)
                bound.append(new.name)
                # Killed from inside the API server as the 100th binding is stored: a drain of 300 pods
                # takes well under the polling interval, so waiting for a count from outside could miss it.
                if first is not None and first.returncode is None and len(bound) == PODS // 3:
                    first.send_signal(signal.SIGKILL)

        node_field = srv.store.type("pods").field_index("spec.nodeName")
        srv.store.add_listener("pods", track)
        for i in range(PODS):
            # 300 x 250m = 75 cores of 80: all fit, the last nodes nearly full
            srv.create("pods", pod(f"p-{i:03d}", cpu="250m", memory="256Mi"), namespace="default")
        async with _process(*_scheduler_args(srv.kubeconfig_path)) as first:
            await asyncio.wait_for(first.wait(), 60)
            assert first.returncode == -signal.SIGKILL
        killed_at = bound_count(srv)
        assert killed_at < PODS, "the scheduler finished before it could be killed; the test proves nothing"
        async with _process(*_scheduler_args(srv.kubeconfig_path)):
            await wait_for(lambda: bound_count(srv) == PODS, timeout=60, what="every pod bound after the restart")
        assert all(len(seq) == 1 for seq in node_of.values()), {k: v for k, v in node_of.items() if len(v) != 1}
        assert len(node_of) == PODS
        assert_no_overcommit(srv)


async def _get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            return json.loads(await r.text())


async def test_api_server_restarted_from_state(tmp_path: Path) -> None:
    port = _free_port()
    state, kubeconfig = tmp_path / "state.json", tmp_path / "kubeconfig"
    api_args = ["apiserver", "--port", str(port), "--nodes", "5", "--node-cpu", "4", "--node-memory", "16Gi",
                "--state", str(state), "--kubeconfig-out", str(kubeconfig), "--kubelet-delay", "0"]
    base = f"http://127.0.0.1:{port}"

    async def bound() -> int:
        pods = await _get_json(f"{base}/api/v1/namespaces/default/pods")
        return sum(1 for p in pods["items"] if p["spec"].get("nodeName"))

    async def started(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"serving" in line, line

    async with _process(*api_args) as api:
        await started(api)
        async with _process(*_scheduler_args(kubeconfig)) as sched:
            async with aiohttp.ClientSession() as http:
                for i in range(40):  # 40 x 200m = 8 of 20 cores
                    async with http.post(f"{base}/api/v1/namespaces/default/pods",
                                         json=pod(f"a-{i:02d}", cpu="200m")) as r:
                        assert r.status == 201
            for _ in range(300):
                if await bound() == 40:
                    break
                await asyncio.sleep(0.05)
            assert await bound() == 40
            api.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(api.wait(), 30) == 0
            assert state.exists()
            # The scheduler lives on while the API server is down, then reconnects.
            await asyncio.sleep(0.5)
            assert sched.returncode is None
            async with _process(*api_args) as api2:
                await started(api2)
                async with aiohttp.ClientSession() as http:
                    for i in range(40):
                        async with http.post(f"{base}/api/v1/namespaces/default/pods",
                                             json=pod(f"b-{i:02d}", cpu="200m")) as r:
                            assert r.status == 201
                for _ in range(600):
                    if await bound() == 80:
                        break
                    await asyncio.sleep(0.05)
                pods = (await _get_json(f"{base}/api/v1/namespaces/default/pods"))["items"]
                assert sum(1 for p in pods if p["spec"].get("nodeName")) == 80
                # 80 x 200m = 16 cores over 5 x 4: whatever the order, no node above 4 cores
                per_node: dict[str, int] = {}
                for p in pods:
                    per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 200
                assert max(per_node.values()) <= 4000
