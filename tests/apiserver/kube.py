"""Helpers shared by the apiserver tests: real clients and small manifests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

KUBECTL = str(Path(sys.executable).with_name("kubectl"))


async def kube_client(kubeconfig: str | os.PathLike[str]) -> client.ApiClient:
    """A ``kubernetes_asyncio`` client configured from a kubeconfig file, as vecsched builds it."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return client.ApiClient(configuration=cfg)


def pod_manifest(name: str, *, labels: dict[str, str] | None = None, scheduler: str = "vecsched",
                 node: str = "", cpu: str = "100m") -> dict:
    spec: dict = {
        "schedulerName": scheduler,
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": cpu}}}],
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


async def kubectl(kubeconfig: str | os.PathLike[str], *args: str, stdin: str | None = None,
                  timeout: float = 20.0) -> tuple[int, str, str]:
    """Run the real kubectl binary against the server; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECACHEDIR": str(Path(kubeconfig).parent / "cache"), "HOME": str(Path(kubeconfig).parent)},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def read_watch(resp: Any, *, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Read ``count`` events (or until the stream ends) from a raw aiohttp watch response."""
    events: list[dict[str, Any]] = []

    async def go() -> None:
        while len(events) < count:
            line = await resp.content.readline()
            if not line:
                return
            events.append(json.loads(line))

    await asyncio.wait_for(go(), timeout)
    return events
