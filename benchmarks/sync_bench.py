"""How long `vecsched run` takes to start and sync a large cluster, and what it holds in memory.

A scheduler that restarts (an upgrade, a leader taking over) schedules nothing until it
has listed every Node and Pod and charged each bound pod to its node. This benchmark
fills the embedded API server (in this process) with ``--nodes`` simulated nodes and
``--pods`` bound, running pods spread evenly over them, starts ``vecsched run`` as its
own process against it, and measures the time from the process's start to its first
``/readyz`` 200 (every informer synced), the scheduler's peak resident memory (VmHWM,
from /proc) and its CPU seconds, and checks from its ``/metrics`` that every pod was
charged (``scheduler_scheduler_cache_size{type="pods"}``). Before the scheduler starts, a
plain client pages through every pod reading only the bytes: the API server's own share of
a sync, which the scheduler cannot beat (``api_list_pods_s``).

The pods are the API server's own: one pod is created through admission, bound and run
by a simulated kubelet, and the rest are copies of it (a name, a uid, a node and a pod IP
of their own each) written straight into the store -- the objects the scheduler lists
are what 300,000 POSTs, bindings and kubelet status updates would have left, without
the hours those take.

    python -m benchmarks.sync_bench [--nodes 20000] [--pods 300000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

import aiohttp

from benchmarks.e2e import OPEN_METRICS, free_port, proc_stats
from scheduler.apiserver import ApiServer, NodeShape
from scheduler.readiness import wait_ready

__all__ = ["fill_pods", "list_seconds", "run_once", "main"]

NAMESPACE: Final = "bench"
_TEMPLATE_WAIT_S: Final = 30.0
"""Seconds to wait for the simulated kubelet to run the template pod (it starts pods
``kubelet_delay`` seconds after binding: far less, even on a loaded machine)."""
_READY_TIMEOUT_S: Final = 600.0
"""Seconds `vecsched run` gets to sync before the benchmark gives up (ten times the goal)."""


def _pod(name: str, node: str) -> dict[str, Any]:
    """A bound pod with requests, a limit, a port and labels, as a workload's pods have them (no
    owner reference: the garbage collector would delete a pod whose owner does not exist)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench", "pod-template-hash": "5d8f9"}},
        "spec": {"schedulerName": "vecsched", "nodeName": node, "containers": [{
            "name": "app", "image": "registry.example/app:1",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]},
    }


async def fill_pods(srv: ApiServer, *, count: int, nodes: Sequence[str]) -> float:
    """``count`` running pods spread round-robin over ``nodes``: the first through admission and
    a simulated kubelet, the rest copies of it written into the store. Returns the seconds taken."""
    start = time.perf_counter()
    srv.create("namespaces", {"metadata": {"name": NAMESPACE}})
    first = "bench-000000"
    srv.create("pods", _pod(first, nodes[0]), namespace=NAMESPACE)
    deadline = time.monotonic() + _TEMPLATE_WAIT_S
    while srv.get("pods", first, namespace=NAMESPACE).get("status", {}).get("phase") != "Running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the simulated kubelet did not run pod {NAMESPACE}/{first} in {_TEMPLATE_WAIT_S:g} s")
        await asyncio.sleep(0.05)
    rt = srv.resource("pods")
    template = srv.store.get(rt, NAMESPACE, first)
    for i in range(1, count):
        obj = template.obj()
        meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
        name = f"bench-{i:06d}"
        meta["name"] = name
        meta["uid"] = f"{meta['uid'][:-12]}{i:012d}"  # the template's uid, its last group replaced
        meta.pop("resourceVersion", None)
        spec["nodeName"] = nodes[i % len(nodes)]
        status["podIP"] = f"10.{128 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"
        status["podIPs"] = [{"ip": status["podIP"]}]
        srv.store.create(rt, obj)
        if i % 20_000 == 0:
            await asyncio.sleep(0)  # let the server's other tasks (the kubelets' timers) run now and then
    return time.perf_counter() - start


async def list_seconds(url: str, *, page: int = 500) -> float:
    """Seconds a client takes to page through every pod (``page`` a request, client-go's
    reflector size) reading the bytes only: the API server's share of a sync, its floor."""
    start = time.perf_counter()
    cont = ""
    async with aiohttp.ClientSession() as http:
        while True:
            query = {"limit": str(page), **({"continue": cont} if cont else {})}
            async with http.get(f"{url}/api/v1/pods", params=query) as r:
                body = await r.read()
            # the continue token sits in the list's metadata, before the items
            head = body[:512].decode(errors="replace")
            cont = head.split('"continue":"', 1)[1].split('"', 1)[0] if '"continue":"' in head else ""
            if not cont:
                return time.perf_counter() - start


async def _cache_sizes(url: str) -> dict[str, float]:
    """``scheduler_scheduler_cache_size`` by type, from the scheduler's /metrics."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics", ssl=False) as r:
            text = await r.text()
    out = {}
    for line in text.splitlines():
        if line.startswith("scheduler_scheduler_cache_size{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('type="', 1)[1].split('"', 1)[0]] = float(value)
    return out


async def run_once(*, nodes: int, pods: int, print_pid: bool = False) -> dict[str, Any]:
    """Fill an API server, start `vecsched run` against it, time it to /readyz (see the module)."""
    shape = NodeShape(count=nodes, cpu="32", memory="128Gi", pods=110, zones=("zone-a", "zone-b", "zone-c"))
    t0 = time.perf_counter()
    # No lease renewals and node status heartbeats: the scheduler watches neither leases nor
    # (for placement) heartbeats, and 20,000 nodes' writes would only load the shared CPU.
    srv = ApiServer(nodes=shape, kubelet_delay=0.05, node_lease_seconds=None, node_status_seconds=None,
                    history=50_000)
    nodes_s = time.perf_counter() - t0
    await srv.start()
    try:
        names = [f"node-{i:04d}" for i in range(nodes)]
        pods_s = await fill_pods(srv, count=pods, nodes=names) if pods else 0.0
        list_s = await list_seconds(srv.url)
        port = free_port()
        assert srv.kubeconfig_path is not None
        cmd = [sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", str(srv.kubeconfig_path),
               "--bind-address", "127.0.0.1", "--port", str(port), *OPEN_METRICS, "--no-leader-elect",
               "--log-level", "error"]
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL)
        url = f"https://127.0.0.1:{port}"
        try:
            if print_pid:
                print(f"scheduler pid {proc.pid}", file=sys.stderr, flush=True)
            await wait_ready(url=url, proc=proc, timeout=_READY_TIMEOUT_S)
            ready_s = time.perf_counter() - started
            cpu, hwm = proc_stats(proc.pid)
            sizes = await _cache_sizes(url)
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    finally:
        await srv.stop()
    return {
        "nodes": nodes, "pods": pods, "cluster_nodes_s": round(nodes_s, 1), "cluster_pods_s": round(pods_s, 1),
        "api_list_pods_s": round(list_s, 1), "start_to_ready_s": round(ready_s, 1), "scheduler_cpu_s": round(cpu, 1),
        "scheduler_peak_rss_mib": round(hwm / 2**20, 1),
        "charged_nodes": int(sizes.get("nodes", -1)), "charged_pods": int(sizes.get("pods", -1)),
    }


def _count(text: str) -> int:
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:20]!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {v}")
    return v


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sync_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=_count, default=20_000, help="simulated nodes (default 20000)")
    ap.add_argument("--pods", type=_count, default=300_000, help="bound, running pods (default 300000)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--print-pid", action="store_true", help="print the scheduler's pid to stderr (for py-spy)")
    a = ap.parse_args(argv)
    if a.pods and not a.nodes:
        ap.error("--pods: bound pods need at least one node (--nodes)")
    r = asyncio.run(run_once(nodes=a.nodes, pods=a.pods, print_pid=a.print_pid))
    if a.json:
        print(json.dumps({"benchmark": "sync", "results": [r]}, indent=2))
        return
    print(f"{'nodes':>6} {'pods':>7} {'fill s':>7} {'API list s':>11} {'start->ready s':>15} {'sched CPU s':>12} "
          f"{'sched RSS MiB':>14} {'charged pods':>13}")
    print(f"{r['nodes']:>6} {r['pods']:>7} {r['cluster_nodes_s'] + r['cluster_pods_s']:>7.1f} {r['api_list_pods_s']:>11} "
          f"{r['start_to_ready_s']:>15} {r['scheduler_cpu_s']:>12} {r['scheduler_peak_rss_mib']:>14} "
          f"{r['charged_pods']:>13}")
    if r["charged_pods"] != r["pods"]:
        print(f"sync_bench: the scheduler charged {r['charged_pods']} pods, expected {r['pods']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
