"""End-to-end speed of the embedded API server: writes/s, latency, watch lag, memory.

The demo and the live scheduler's benchmarks push tens of thousands of pods
through the embedded server, so its own speed must be known and kept. This
starts ``vecsched apiserver`` as a separate process (so the server's memory
and CPU are its own), then over real HTTP with aiohttp: creates nodes and
pods, binds every pod, and keeps several watchers on pods the whole time.

    python -m benchmarks.apiserver [--nodes 5000] [--pods 50000] [--watchers 5] [--json]

Figures: client writes per second (node + pod creates and bindings), p50/p99
request latency, watch delivery lag (from a create being acknowledged to the
ADDED event reaching each watcher), and the server's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import aiohttp

from scheduler.apiserver.kubelet import NodeShape, build_node

__all__ = ["main", "run_benchmark", "Result", "start_apiserver", "stop_process"]

# An ADDED pod event as the server writes it: fields in the order the benchmark sent them.
_ADDED = re.compile(rb'\{"type":"ADDED","object":\{"apiVersion":"v1","kind":"Pod","metadata":\{"name":"(p-\d+)"')


@dataclass
class Result:
    nodes: int
    pods: int
    watchers: int
    concurrency: int
    writes: int
    seconds: float
    writes_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    watch_lag_p50_ms: float
    watch_lag_p99_ms: float
    watch_events: int
    running_pods: int
    rss_mib: float
    peak_rss_mib: float
    server_cpu_seconds: float
    client_cpu_seconds: float


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def _pool(concurrency: int, count: int, job: Callable[[int], Awaitable[None]]) -> None:
    it = iter(range(count))

    async def worker() -> None:
        for i in it:
            await job(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def start_apiserver(*args: str, timeout: float = 30.0) -> tuple[asyncio.subprocess.Process, str, str]:
    """``vecsched apiserver --port 0 ARGS`` as its own process; returns it, its URL and its kubeconfig path."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "apiserver", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
    m = re.search(r"serving (\S+) \(kubeconfig: (\S+)\)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"apiserver did not start: {line!r}")
    return proc, m.group(1), m.group(2)


async def stop_process(proc: asyncio.subprocess.Process, *, timeout: float = 60.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def run_benchmark(*, nodes: int, pods: int, watchers: int, concurrency: int, server_args: tuple[str, ...] = ()) -> Result:
    proc, url, _ = await start_apiserver("--nodes", "0", "--kubelet-delay", "0.05", *server_args)
    acked: dict[bytes, float] = {}
    lags: list[float] = []
    latencies: list[float] = []
    counts = [0] * watchers
    try:
        conn = aiohttp.TCPConnector(limit=concurrency + watchers + 4)
        async with aiohttp.ClientSession(base_url=url, connector=conn) as http:
            async with http.get("/api/v1/pods") as r:
                start_rv = (await r.json())["metadata"]["resourceVersion"]

            async def watch(i: int) -> None:
                params = {"watch": "1", "resourceVersion": start_rv, "timeoutSeconds": "3600"}
                tail = b""
                async with http.get("/api/v1/pods", params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
                    # Whole chunks, not lines: the client must stay cheap so that it measures the server.
                    async for chunk in r.content.iter_any():
                        now = time.perf_counter()
                        data = tail + chunk
                        cut = data.rfind(b"\n") + 1
                        data, tail = data[:cut], data[cut:]
                        counts[i] += data.count(b"\n")
                        for mm in _ADDED.finditer(data):
                            sent = acked.get(mm.group(1))
                            if sent is not None:
                                lags.append(max(0.0, now - sent))

            watch_tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
            shape = NodeShape(cpu="32", memory="128Gi", pods=110)
            node_names = [f"node-{i:04d}" for i in range(nodes)]

            async def post(path: str, body: bytes, ok: int = 201) -> None:
                t0 = time.perf_counter()
                async with http.post(path, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status != ok:
                        raise RuntimeError(f"POST {path}: {r.status} {await r.text()}")
                latencies.append(time.perf_counter() - t0)

            async def create_node(i: int) -> None:
                body = build_node(name=node_names[i], shape=shape, index=i)
                await post("/api/v1/nodes", json.dumps(body).encode())

            async def create_pod(i: int) -> None:
                name = f"p-{i}"
                body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": f"a{i % 50}"}},
                        "spec": {"schedulerName": "vecsched", "containers": [
                            {"name": "app", "image": "registry.k8s.io/pause:3.9",
                             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}
                await post("/api/v1/namespaces/default/pods", json.dumps(body).encode())
                acked[name.encode()] = time.perf_counter()

            async def bind(i: int) -> None:
                name = f"p-{i}"
                body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                        "target": {"kind": "Node", "name": node_names[i % nodes]}}
                await post(f"/api/v1/namespaces/default/pods/{name}/binding", json.dumps(body).encode())

            await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            await _pool(concurrency, nodes, create_node)
            await _pool(concurrency, pods, create_pod)
            await _pool(concurrency, pods, bind)
            seconds = time.perf_counter() - t0
            # wait for the kubelets and the watchers to catch up: create + bind + running per pod
            expected = 3 * pods
            deadline = time.monotonic() + 120
            while min(counts, default=expected) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            running, params = 0, {"fieldSelector": "status.phase=Running", "limit": "10000"}
            while True:
                async with http.get("/api/v1/pods", params=params) as r:
                    body = await r.json()
                running += len(body["items"])
                if not body["metadata"].get("continue"):
                    break
                params["continue"] = body["metadata"]["continue"]
            rss, peak = _rss(proc.pid)
            server_cpu = _cpu(proc.pid)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            client_cpu = usage.ru_utime + usage.ru_stime
            for t in watch_tasks:
                t.cancel()
            await asyncio.gather(*watch_tasks, return_exceptions=True)
    finally:
        await stop_process(proc)
    writes = nodes + 2 * pods
    return Result(
        nodes=nodes, pods=pods, watchers=watchers, concurrency=concurrency, writes=writes, seconds=round(seconds, 2),
        writes_per_second=round(writes / seconds, 1),
        latency_p50_ms=round(_pct(latencies, 0.5) * 1000, 2), latency_p99_ms=round(_pct(latencies, 0.99) * 1000, 2),
        watch_lag_p50_ms=round(_pct(lags, 0.5) * 1000, 2), watch_lag_p99_ms=round(_pct(lags, 0.99) * 1000, 2),
        watch_events=sum(counts), running_pods=running, rss_mib=round(rss, 1), peak_rss_mib=round(peak, 1),
        server_cpu_seconds=round(server_cpu, 1), client_cpu_seconds=round(client_cpu, 1),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.apiserver", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--pods", type=int, default=50000)
    p.add_argument("--watchers", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=32, help="concurrent client requests (default 32)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--server-arg", action="append", default=[], help="extra flag for `vecsched apiserver` (repeatable)")
    args = p.parse_args(argv)
    if args.nodes < 1 or args.pods < 0 or args.watchers < 0 or args.concurrency < 1:
        p.error("--nodes and --concurrency must be >= 1, --pods and --watchers >= 0")
    res = asyncio.run(run_benchmark(nodes=args.nodes, pods=args.pods, watchers=args.watchers,
                                    concurrency=args.concurrency, server_args=tuple(args.server_arg)))
    if args.json:
        print(json.dumps(asdict(res), indent=2))
    else:
        print(f"{res.writes} writes ({res.nodes} nodes, {res.pods} pods created and bound) in {res.seconds} s: "
              f"{res.writes_per_second} writes/s")
        print(f"request latency p50 {res.latency_p50_ms} ms, p99 {res.latency_p99_ms} ms")
        print(f"watch lag ({res.watchers} watchers, {res.watch_events} events) p50 {res.watch_lag_p50_ms} ms, "
              f"p99 {res.watch_lag_p99_ms} ms")
        print(f"{res.running_pods} pods Running; server RSS {res.rss_mib} MiB (peak {res.peak_rss_mib} MiB)")
        print(f"CPU seconds: server {res.server_cpu_seconds}, client {res.client_cpu_seconds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
