"""End to end: pods through the embedded API server and the live scheduler over HTTP.

For each cluster size, start the embedded API server (in this process) with
N simulated nodes, start ``vecsched run`` as its own process against it, wait
until it is ready, create the pending pods (64 requests in flight), and wait
until every pod is bound. Prints pods/s from the first create to the last
bind, p50/p99 of ``scheduler_pod_scheduling_sli_duration_seconds`` (from the
scheduler's /metrics, interpolated within buckets as PromQL's
histogram_quantile does), and the scheduler process's CPU seconds and peak
resident memory.

    python -m benchmarks.e2e [--nodes 1000,5000] [--pods 10000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Final

import aiohttp

from scheduler.apiserver import NodeShape, serve_apiserver

_CLK_TCK = 100  # os.sysconf("SC_CLK_TCK") on Linux


OPEN_METRICS: Final = ("--authorization-always-allow-paths", "/healthz,/readyz,/livez,/metrics")
"""Served as in a cluster (HTTPS, self-signed, not verified here), but /metrics without a token."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_stats(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and peak resident bytes of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    hwm = next(int(line.split()[1]) * 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    return cpu, hwm


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile over cumulative (upper bound, count) buckets."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_bound, prev_count = bound, count
    return prev_bound


def _sli_buckets(text: str) -> list[tuple[float, float]]:
    """Sum over label sets of scheduler_pod_scheduling_sli_duration_seconds_bucket."""
    acc: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("scheduler_pod_scheduling_sli_duration_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = math.inf if le == "+Inf" else float(le)
            acc[bound] = acc.get(bound, 0.0) + float(value)
    return list(acc.items())


def _pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"e2e-{i:06d}", "namespace": "default"},
            "spec": {"schedulerName": "vecsched", "containers": [{
                "name": "app", "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


async def _wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            if proc.returncode is not None:
                raise RuntimeError(f"vecsched run exited with {proc.returncode}")
            try:
                async with http.get(f"{url}/readyz", ssl=False) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("vecsched run did not become ready")


async def run_once(*, nodes: int, pods: int) -> dict[str, Any]:
    shape = NodeShape(count=nodes, cpu="32", memory="128Gi", pods=110, zones=("zone-a", "zone-b", "zone-c"))
    async with serve_apiserver(nodes=shape, kubelet_delay=0.05, history=max(50_000, 4 * pods)) as srv:
        node_field = srv.store.type("pods").field_index("spec.nodeName")
        bound_at: dict[str, float] = {}

        def track(key: Any, old: Any, new: Any) -> None:
            if new is not None and new.fields[node_field] and new.name not in bound_at:
                bound_at[new.name] = time.perf_counter()

        srv.store.add_listener("pods", track)
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", str(srv.kubeconfig_path),
            "--bind-address", "127.0.0.1", "--port", str(port), *OPEN_METRICS, "--no-leader-elect", "--log-level", "error",
            stdin=asyncio.subprocess.DEVNULL)
        metrics = f"https://127.0.0.1:{port}"
        try:
            await _wait_ready(metrics, proc)
            cpu0, _ = _proc_stats(proc.pid)
            sem = asyncio.Semaphore(64)
            start = time.perf_counter()
            async with aiohttp.ClientSession() as http:
                async def create(i: int) -> None:
                    async with sem:
                        async with http.post(f"{srv.url}/api/v1/namespaces/default/pods", json=_pod(i)) as r:
                            if r.status != 201:
                                raise RuntimeError(f"create: HTTP {r.status}")
                await asyncio.gather(*(create(i) for i in range(pods)))
                created = time.perf_counter()
                while len(bound_at) < pods:
                    if time.perf_counter() - created > 300:
                        raise RuntimeError(f"only {len(bound_at)}/{pods} pods bound after 300 s")
                    await asyncio.sleep(0.05)
                async with http.get(f"{metrics}/metrics", ssl=False) as r:
                    text = await r.text()
            cpu1, hwm = _proc_stats(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        last = max(bound_at.values())
        buckets = _sli_buckets(text)
        return {
            "nodes": nodes, "pods": pods,
            "pods_per_s": round(pods / (last - start), 1),
            "create_s": round(created - start, 2),
            "sli_p50_ms": round(1000 * histogram_quantile(0.5, buckets), 2),
            "sli_p99_ms": round(1000 * histogram_quantile(0.99, buckets), 2),
            "scheduler_cpu_s": round(cpu1 - cpu0, 2),
            "scheduler_peak_rss_mib": round(hwm / 2**20, 1),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1000,5000")
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = [asyncio.run(run_once(nodes=int(n), pods=a.pods)) for n in a.nodes.split(",")]
    if a.json:
        print(json.dumps({"benchmark": "e2e", "results": results}, indent=2))
        return
    print(f"{'nodes':>6} {'pods':>6} {'pods/s':>8} {'SLI p50 ms':>11} {'SLI p99 ms':>11} {'sched CPU s':>12} {'sched RSS MiB':>14}")
    for r in results:
        print(f"{r['nodes']:>6} {r['pods']:>6} {r['pods_per_s']:>8} {r['sli_p50_ms']:>11} {r['sli_p99_ms']:>11} "
              f"{r['scheduler_cpu_s']:>12} {r['scheduler_peak_rss_mib']:>14}")


if __name__ == "__main__":
    main()
