"""``vecsched demo``: the whole scheduler on one machine, with no cluster.

It starts the embedded API server with simulated nodes of mixed shapes,
runs the live scheduler against it over HTTP as its own process -- exactly
``vecsched run --kubeconfig ...``, so that the scheduler has a core of its
own as it would in a cluster -- creates a workload of a few thousand pods (several Deployments'
worth of replicas, some with node selectors, tolerations and priorities, a
few that cannot fit), shows a progress bar while they are placed, and prints
what happened: pods per node shape, utilisation per resource, pods left
pending and why, decisions per second, and scheduling latency from pod
creation to binding as the API server saw it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.config import load_config
from scheduler.logs import setup_logging
from scoring.objects import pod_from_json
from scoring.quantity import milli_value, value

__all__ = ["configure", "run", "DEMO_SHAPES", "demo_workload"]

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
DEMO_SHAPES = (
    NodeShape(count=40, cpu="16", memory="64Gi", instance_type="general-16", zones=("zone-a", "zone-b", "zone-c")),
    NodeShape(count=16, cpu="16", memory="256Gi", instance_type="highmem-16", zones=("zone-a", "zone-b"),
              labels={"workload-class": "memory"}),
    NodeShape(count=8, cpu="64", memory="256Gi", instance_type="large-64", zones=("zone-a", "zone-b", "zone-c")),
    NodeShape(count=4, cpu="32", memory="128Gi", gpus=4, instance_type="gpu-32", zones=("zone-a",),
              taints=(GPU_TAINT,)),
)


@dataclass(frozen=True)
class _Workload:
    name: str
    replicas: int
    cpu: str
    memory: str
    priority: int = 0
    gpu: int = 0
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerate_gpu: bool = False
    spread: bool = False


# ~2,500 pods asking for about 85% of the cluster's CPU: a busy cluster where nearly all fit.
_WORKLOADS = (
    _Workload("web", 1200, "250m", "512Mi", spread=True),
    _Workload("api", 600, "500m", "1Gi", priority=100, spread=True),
    _Workload("cache", 150, "1", "8Gi", node_selector=(("workload-class", "memory"),)),
    _Workload("batch", 500, "1", "2Gi", priority=-10),
    _Workload("trainer", 16, "6", "24Gi", priority=1000, gpu=1, tolerate_gpu=True),
    _Workload("too-big", 3, "100", "1Gi"),  # no node has 100 cores: Insufficient cpu
    _Workload("lost", 2, "100m", "64Mi", node_selector=(("topology.kubernetes.io/zone", "zone-x"),)),
)


def demo_workload(*, scale: float = 1.0, seed: int = 0) -> list[dict[str, Any]]:
    """The demo's pods, interleaved in a seeded random order as if several teams deployed at once."""
    pods = []
    for w in _WORKLOADS:
        replicas = max(1, round(w.replicas * scale)) if w.replicas > 20 else w.replicas
        for i in range(replicas):
            requests: dict[str, str] = {"cpu": w.cpu, "memory": w.memory}
            limits: dict[str, str] = {}
            if w.gpu:
                requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(w.gpu)
            spec: dict[str, Any] = {
                "schedulerName": "vecsched",
                "priority": w.priority,
                "containers": [{"name": w.name, "image": f"registry.example/{w.name}:1.0",
                                "resources": {"requests": requests, **({"limits": limits} if limits else {})}}],
            }
            if w.node_selector:
                spec["nodeSelector"] = dict(w.node_selector)
            if w.tolerate_gpu:
                spec["tolerations"] = [{"key": GPU_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}]
            if w.spread:
                spec["topologySpreadConstraints"] = [{
                    "maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app": w.name}}}]
            pods.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": f"{w.name}-{i:05d}", "namespace": "demo", "labels": {"app": w.name}},
                         "spec": spec})
    random.Random(seed).shuffle(pods)
    return pods


class _Tracker:
    """Watches the API server's pod writes in-process: creation and binding times."""

    def __init__(self, *, node_field: int) -> None:
        self._node_field = node_field
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.nodes: dict[str, str] = {}

    def __call__(self, key: Any, old: Any, new: Any) -> None:
        if new is None:
            return
        name = f"{new.namespace}/{new.name}"
        now = time.perf_counter()
        if old is None:
            self.created.setdefault(name, now)
        node = new.fields[self._node_field]
        if node and name not in self.bound:
            self.bound[name] = now
            self.nodes[name] = node


def _bar(done: int, total: int, *, width: int = 40) -> str:
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} pods bound"


async def _create_all(url: str, pods: list[dict[str, Any]], *, concurrency: int = 32) -> None:
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:
        async def one(p: dict[str, Any]) -> None:
            async with sem:
                async with http.post(f"{url}/api/v1/namespaces/demo/pods", json=p) as r:
                    if r.status >= 300:
                        raise RuntimeError(f"creating {p['metadata']['name']}: HTTP {r.status}: {await r.text()}")
        await asyncio.gather(*(one(p) for p in pods))


def _summary(srv: Any, tracker: _Tracker, pods: list[dict[str, Any]], started: float, metrics_url: str) -> str:
    nodes = {n["metadata"]["name"]: n for n in srv.list("nodes")}
    shape_of = {name: n["metadata"]["labels"].get("node.kubernetes.io/instance-type", "?") for name, n in nodes.items()}
    lines = ["", "Pods bound per node shape:"]
    per_shape = Counter(shape_of[n] for n in tracker.nodes.values())
    node_count = Counter(shape_of.values())
    for shape, count in sorted(node_count.items()):
        lines.append(f"  {shape:<12} {count:>3} nodes  {per_shape.get(shape, 0):>5} pods")

    lines += ["", "Utilisation (requested / allocatable):"]
    alloc: Counter[str] = Counter()
    for n in nodes.values():
        for r, q in (n["status"].get("allocatable") or {}).items():
            if r in ("cpu", "memory", "nvidia.com/gpu"):
                alloc[r] += milli_value(q) if r == "cpu" else value(q)
    used: Counter[str] = Counter()
    by_name = {f"demo/{p['metadata']['name']}": p for p in pods}
    for name in tracker.nodes:
        for r, amount in pod_from_json(by_name[name]).requests.items():
            used[r] += amount
    for r in ("cpu", "memory", "nvidia.com/gpu"):
        if alloc[r]:
            lines.append(f"  {r:<15} {100 * used[r] / alloc[r]:5.1f}%")

    pending = [p for p in srv.list("pods", namespace="demo") if not p["spec"].get("nodeName")]
    lines += ["", f"Pods left pending: {len(pending)}"]
    reasons: Counter[str] = Counter()
    for p in pending:
        cond: dict[str, Any] = next((c for c in (p.get("status") or {}).get("conditions") or []
                                     if c.get("type") == "PodScheduled"), {})
        reasons[cond.get("message") or "(not attempted yet)"] += 1
    for msg, count in reasons.most_common():
        lines.append(f"  {count:>4} x {msg}")

    lat = np.array([tracker.bound[k] - tracker.created[k] for k in tracker.bound if k in tracker.created])
    if len(tracker.bound):
        span = max(tracker.bound.values()) - started
        lines += ["", f"Bound {len(tracker.bound)} pods in {span:.2f} s from the first create: "
                      f"{len(tracker.bound) / span:.0f} pods/s",
                  f"Latency from creation to binding: p50 {1000 * np.percentile(lat, 50):.1f} ms, "
                  f"p99 {1000 * np.percentile(lat, 99):.1f} ms"]
    lines += ["", f"Scheduler metrics were served at {metrics_url}/metrics (use --keep-running to look)"]
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the replica counts (default 1.0)")
    parser.add_argument("--config", help="a KubeSchedulerConfiguration for the scheduler")
    parser.add_argument("--port", type=int, default=0, help="API server port (default: a free one)")
    parser.add_argument("--metrics-port", type=int, default=0, help="scheduler metrics port (default: a free one)")
    parser.add_argument("--keep-running", action="store_true", help="keep everything up afterwards for kubectl")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up waiting after this many seconds")
    parser.add_argument("--seed", type=int, default=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_scheduler(*, kubeconfig: str, port: int, config: str | None) -> asyncio.subprocess.Process:
    """``vecsched run`` as a child process; returns once it answers /readyz."""
    cmd = [sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
           "--port", str(port), "--no-leader-elect", "--log-level", "warning"]
    if config:
        cmd += ["--config", config]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.returncode is not None:
                raise RuntimeError(f"the scheduler exited with code {proc.returncode} before it was ready")
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("the scheduler did not become ready within 30 s")


async def _stop_scheduler(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def _demo(args: argparse.Namespace) -> int:
    load_config(args.config)  # fail here, with the config's own message, not in the child
    pods = demo_workload(scale=args.scale, seed=args.seed)
    out = sys.stdout
    async with serve_apiserver(nodes=list(DEMO_SHAPES), port=args.port, kubelet_delay=0.05) as srv:
        srv.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        tracker = _Tracker(node_field=srv.store.type("pods").field_index("spec.nodeName"))
        srv.store.add_listener("pods", tracker)
        shapes = ", ".join(f"{s.count} x {s.instance_type}" for s in DEMO_SHAPES)
        print(f"API server {srv.url} with {sum(s.count for s in DEMO_SHAPES)} simulated nodes ({shapes})", file=out)
        metrics_port = args.metrics_port or _free_port()
        sched = await _start_scheduler(kubeconfig=str(srv.kubeconfig_path), port=metrics_port, config=args.config)
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        try:
            print(f"vecsched (pid {sched.pid}) scheduling; creating {len(pods)} pods", file=out)
            started = time.perf_counter()
            creating = asyncio.create_task(_create_all(srv.url, pods), name="demo workload")
            deadline = started + args.timeout
            last_change, last_count, last_shown = time.perf_counter(), -1, -1
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
                done = len(tracker.bound)
                if out.isatty():
                    print(f"\r{_bar(done, len(pods))}", end="", file=out, flush=True)
                elif done * 10 // len(pods) != last_shown:  # a log, not a terminal: a line per 10%
                    last_shown = done * 10 // len(pods)
                    print(_bar(done, len(pods)), file=out, flush=True)
                if done != last_count:
                    last_change, last_count = time.perf_counter(), done
                # Finished: everything is created, and nothing was bound for a second.
                if creating.done() and time.perf_counter() - last_change > 1.0:
                    break
            if out.isatty():
                print(file=out)
            else:
                print(_bar(len(tracker.bound), len(pods)), file=out)
            await creating
            print(_summary(srv, tracker, pods, started, metrics_url), file=out)
            if args.keep_running:
                print(f"\nStill running. Try:\n  kubectl --kubeconfig {srv.kubeconfig_path} get pods -n demo -o wide\n"
                      f"  kubectl --kubeconfig {srv.kubeconfig_path} describe pod -n demo too-big-00000\n"
                      f"  curl -s {metrics_url}/metrics | grep scheduler_schedule_attempts_total\n"
                      "Press Ctrl-C to stop.", file=out)
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await stop.wait()
        finally:
            await _stop_scheduler(sched)
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging(level=logging.WARNING, fmt="text")
    return asyncio.run(_demo(args))
