"""A Deployment through the whole control plane: controllers, vecsched, simulated kubelets.

What a user sees when they apply a big Deployment to the demo cluster: the
Deployment controller creates a ReplicaSet, the ReplicaSet controller
creates the pods in slow-start batches, ``vecsched run`` (its own process)
binds them, the kubelets start them, and the rollout completes. This starts
``vecsched apiserver`` (its own process, controllers included) with N nodes,
``vecsched run`` against it, creates one Deployment of R replicas, and
reports the time until every pod is bound (from the scheduler's
``scheduler_schedule_attempts_total{result="scheduled"}``) and until the
Deployment is fully available, the API server's writes per second over that
time (its resourceVersion counts every write: pods, bindings, statuses,
Events, node leases), and each process's CPU seconds and peak memory.

    python -m benchmarks.controlplane [--nodes 5000] [--replicas 10000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from benchmarks.apiserver import start_apiserver, stop_process
from benchmarks.e2e import OPEN_METRICS, free_port, proc_stats
from scheduler.readiness import wait_ready

__all__ = ["main", "run_deployment", "Result"]


@dataclass
class Result:
    nodes: int
    replicas: int
    seconds_to_bound: float
    seconds_to_available: float
    pods_per_second: float
    writes: int
    writes_per_second: float
    server_cpu_seconds: float
    server_peak_rss_mib: float
    scheduler_cpu_seconds: float
    scheduler_peak_rss_mib: float


def _deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}},
                     "template": {"metadata": {"labels": {"app": "bench"}},
                                  "spec": {"schedulerName": "vecsched", "containers": [{
                                      "name": "app", "image": "registry.example/app:1",
                                      "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}}


async def _scheduled(http: aiohttp.ClientSession, metrics_url: str) -> int:
    async with http.get(metrics_url, ssl=False) as r:
        text = await r.text()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("scheduler_schedule_attempts_total{") and 'result="scheduled"' in line))


async def _resource_version(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/api/v1/namespaces", params={"limit": "1"}) as r:
        return int((await r.json())["metadata"]["resourceVersion"])


async def run_deployment(*, nodes: int, replicas: int, timeout: float = 1800.0) -> Result:
    server, url, kubeconfig = await start_apiserver(
        "--nodes", str(nodes), "--node-cpu", "32", "--node-memory", "128Gi", "--kubelet-delay", "0.05",
        "--kubelet-max-grace", "1", timeout=300)
    port = free_port()
    sched = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
        "--port", str(port), *OPEN_METRICS, "--no-leader-elect", "--log-level", "warning",
        stdin=asyncio.subprocess.DEVNULL)
    metrics_url = f"https://127.0.0.1:{port}/metrics"
    try:
        await wait_ready(url=f"https://127.0.0.1:{port}", proc=sched)
        async with aiohttp.ClientSession() as http:
            rv0 = await _resource_version(http, url)
            t0 = time.perf_counter()
            async with http.post(f"{url}/apis/apps/v1/namespaces/default/deployments", json=_deployment(replicas)) as r:
                if r.status != 201:
                    raise RuntimeError(f"creating the Deployment: HTTP {r.status}: {await r.text()}")
            bound_at = available_at = 0.0
            while time.perf_counter() - t0 < timeout:
                await asyncio.sleep(0.25)
                if not bound_at and await _scheduled(http, metrics_url) >= replicas:
                    bound_at = time.perf_counter() - t0
                async with http.get(f"{url}/apis/apps/v1/namespaces/default/deployments/bench") as r:
                    status = (await r.json()).get("status") or {}
                if status.get("availableReplicas", 0) >= replicas and status.get("updatedReplicas", 0) >= replicas:
                    available_at = time.perf_counter() - t0
                    break
            if not available_at:
                raise RuntimeError(f"the Deployment was not available after {timeout} s")
            bound_at = bound_at or available_at
            writes = await _resource_version(http, url) - rv0
        server_cpu, server_peak = proc_stats(server.pid)
        sched_cpu, sched_peak = proc_stats(sched.pid)
    finally:
        for proc in (sched, server):
            await stop_process(proc)
    return Result(
        nodes=nodes, replicas=replicas, seconds_to_bound=round(bound_at, 2), seconds_to_available=round(available_at, 2),
        pods_per_second=round(replicas / bound_at, 1), writes=writes, writes_per_second=round(writes / available_at, 1),
        server_cpu_seconds=round(server_cpu, 1), server_peak_rss_mib=round(server_peak / 2**20, 1),
        scheduler_cpu_seconds=round(sched_cpu, 1), scheduler_peak_rss_mib=round(sched_peak / 2**20, 1),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.controlplane", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--replicas", type=int, default=10_000)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.nodes < 1 or args.replicas < 1:
        p.error("--nodes and --replicas must be >= 1")
    res = asyncio.run(run_deployment(nodes=args.nodes, replicas=args.replicas))
    if args.json:
        print(json.dumps(asdict(res), indent=2))
    else:
        print(f"Deployment of {res.replicas} replicas on {res.nodes} nodes: all bound by vecsched after "
              f"{res.seconds_to_bound} s ({res.pods_per_second} pods/s), rollout complete after "
              f"{res.seconds_to_available} s")
        print(f"API server: {res.writes} writes, {res.writes_per_second} writes/s; CPU {res.server_cpu_seconds} s, "
              f"peak RSS {res.server_peak_rss_mib} MiB")
        print(f"vecsched run: CPU {res.scheduler_cpu_seconds} s, peak RSS {res.scheduler_peak_rss_mib} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
