"""Helpers for the live scheduler's tests: a fake clock, a scheduler tuned for short
tests, pod manifests, waiting, and the end-of-test invariants."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from scheduler.apiserver import ApiServer
from scheduler.config import SchedulerConfig, default_config
from scheduler.kube.client import ClientSettings
from scheduler.kube.informer import Backoff
from scheduler.runtime import RuntimeSettings, Scheduler
from scoring.quantity import milli_value, value


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fast_config(config: SchedulerConfig | None = None) -> SchedulerConfig:
    """The default profile with short pod backoff (0.05 s doubling to 0.2 s) so retries are quick."""
    return dataclasses.replace(config or default_config(), pod_initial_backoff_seconds=0.05,
                               pod_max_backoff_seconds=0.2)


def settings_for(srv: ApiServer, **kw: Any) -> RuntimeSettings:
    base: dict[str, Any] = dict(client=ClientSettings(kubeconfig=str(srv.kubeconfig_path)), port=0,
                                leader_elect=False, informer_backoff=Backoff(initial=0.02, cap=0.2, jitter=0.5),
                                drain_seconds=5.0)
    base.update(kw)
    return RuntimeSettings(**base)


@asynccontextmanager
async def running(srv: ApiServer, *, config: SchedulerConfig | None = None, ready: bool = True,
                  **kw: Any) -> AsyncIterator[Scheduler]:
    s = Scheduler(config=fast_config(config), settings=settings_for(srv, **kw))
    await s.start()
    try:
        if ready:
            await s.wait_ready(timeout=10)
        yield s
    finally:
        await s.stop()


def pod(name: str, *, cpu: str = "100m", memory: str = "64Mi", scheduler: str = "vecsched",
        namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"schedulerName": scheduler,
                     "containers": [{"name": "c", "image": "busybox:1.36",
                                     "resources": {"requests": {"cpu": cpu, "memory": memory}}}], **spec}}


async def wait_for(pred: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_async(pred: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def pods_of(srv: ApiServer, namespace: str = "default") -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in srv.list("pods", namespace=namespace)}


def bound_count(srv: ApiServer, namespace: str = "default") -> int:
    return sum(1 for p in srv.list("pods", namespace=namespace) if p["spec"].get("nodeName"))


def events_for(srv: ApiServer, name: str, *, reason: str | None = None, namespace: str = "default") -> list[dict[str, Any]]:
    return [e for e in srv.list("events", namespace=namespace)
            if e["involvedObject"]["name"] == name and (reason is None or e["reason"] == reason)]


def condition(p: dict[str, Any], type_: str = "PodScheduled") -> dict[str, Any] | None:
    return next((c for c in (p.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def assert_no_overcommit(srv: ApiServer) -> None:
    """No node holds more than its allocatable cpu, memory or pods (from the API server's store)."""
    nodes = {n["metadata"]["name"]: n["status"]["allocatable"] for n in srv.list("nodes")}
    used: dict[str, list[int]] = {}
    for p in srv.list("pods"):
        node = p["spec"].get("nodeName")
        if not node or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") or node not in nodes:
            continue
        u = used.setdefault(node, [0, 0, 0])
        for c in p["spec"]["containers"]:
            req = (c.get("resources") or {}).get("requests") or {}
            u[0] += milli_value(req.get("cpu", "0"))
            u[1] += value(req.get("memory", "0"))
        u[2] += 1
    for node, (cpu, mem, count) in used.items():
        alloc = nodes[node]
        assert cpu <= milli_value(alloc["cpu"]), f"{node}: cpu {cpu}m > {alloc['cpu']}"
        assert mem <= value(alloc["memory"]), f"{node}: memory {mem} > {alloc['memory']}"
        assert count <= int(alloc["pods"]), f"{node}: {count} pods > {alloc['pods']}"
