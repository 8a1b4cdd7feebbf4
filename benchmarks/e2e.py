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

``--backlog`` measures draining a queue instead (default 2,000 nodes, 4,000 pods):
for each scheduler, a fresh API server with the same nodes holds the pending pods
(identical, 100m CPU and 128Mi) before the scheduler starts; the scheduler lists
them and binds them all. In the same command it runs, in turn, the straightforward
baseline (``benchmarks.baseline_scheduler``, a Python loop over nodes per pod and a
synchronous bind), vecsched as configured by default (batching on) and vecsched
with a profile that sets ``vecsched.io/batching: false`` (not run, with the reason
printed, when this vecsched does not know that field), and it times one decision
without I/O by the unbatched profile on the same nodes (``benchmarks.decision``'s
loop). Per scheduler: pods/s from the first bind to the last; the scheduler
process's CPU per bound pod from readiness (/readyz for vecsched, its "ready" line
for the baseline) to the last bind, from /proc; its CPU at readiness
(``startup_cpu_s``: interpreter start, imports, the list of nodes and of the whole
backlog) and the per-pod figure counted from process start beside it. Readiness is
the headline because start-up is a fixed cost that does not grow with the backlog,
which makes the figure comparable with one decision's time; the list of the backlog
(decoding each pod once) happens before readiness and is left out of it, but not of
``from start``. ``apiserver_cpu_ms_per_pod`` is this process's CPU from the first
bind to the last per pod bound: the embedded API server (binds, Events, the
simulated kubelets' status writes, node leases), since nothing else runs here
then; ``apiserver_busy_pct`` is the same CPU over wall time (near 100: the API
server limits the drain) and ``apiserver_ceiling_pods_per_s`` the drain rate at
which it would take a whole core (1000 / its ms per pod). Then the ratios, with their targets: vecsched / baseline
drain rate, vecsched's CPU per pod / one decision's time, batched / unbatched
drain rate.

    python -m benchmarks.e2e --backlog [--nodes 2000] [--pods 4000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import aiohttp

from benchmarks.decision import decide_all
from scheduler.apiserver import NodeShape, build_node, serve_apiserver
from scheduler.config import API_VERSION, load_config
from scheduler.readiness import wait_ready
from scoring.objects import node_from_json, pod_from_json
from scoring.safe_input import quote
from scoring.table import NodeTable

_CLK_TCK = 100  # os.sysconf("SC_CLK_TCK") on Linux


OPEN_METRICS: Final = ("--authorization-always-allow-paths", "/healthz,/readyz,/livez,/metrics")
"""Served as in a cluster (HTTPS, self-signed, not verified here), but /metrics without a token."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stats(pid: int) -> tuple[float, int]:
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


def _pod(i: int, scheduler: str = "vecsched") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"e2e-{i:06d}", "namespace": "default"},
            "spec": {"schedulerName": scheduler, "containers": [{
                "name": "app", "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


async def run_once(*, nodes: int, pods: int) -> dict[str, Any]:
    async with serve_apiserver(nodes=_shape(nodes), kubelet_delay=0.05, history=max(50_000, 4 * pods)) as srv:
        node_field = srv.store.type("pods").field_index("spec.nodeName")
        bound_at: dict[str, float] = {}

        def track(key: Any, old: Any, new: Any) -> None:
            if new is not None and new.fields[node_field] and new.name not in bound_at:
                bound_at[new.name] = time.perf_counter()

        srv.store.add_listener("pods", track)
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", str(srv.kubeconfig_path),
            "--bind-address", "127.0.0.1", "--port", str(port), *OPEN_METRICS, "--no-leader-elect", "--log-level", "error",
            stdin=asyncio.subprocess.DEVNULL)
        metrics = f"https://127.0.0.1:{port}"
        try:
            await wait_ready(url=metrics, proc=proc)
            cpu0, _ = proc_stats(proc.pid)
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
            cpu1, hwm = proc_stats(proc.pid)
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


# ---- --backlog: a queue of pending pods drained by vecsched and by the baseline -------------------

BASELINE: Final = "baseline"
"""The baseline scheduler's schedulerName (``benchmarks.baseline_scheduler``)."""

UNBATCHED_CONFIG: Final = f"""apiVersion: {API_VERSION}
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: vecsched
  vecsched.io/batching: false
"""
"""The default profile with opportunistic batching turned off."""

DECISION_PODS: Final = 400
"""Decisions timed without I/O: a few hundred take a fraction of a second at 2,000 nodes, long
enough that the timer's resolution and one stray collection do not matter."""

DRAIN_TIMEOUT: Final = 900.0
"""Seconds a scheduler gets to bind the backlog: the baseline needs minutes for 4,000 pods on a slow VM."""


def _shape(nodes: int) -> NodeShape:
    return NodeShape(count=nodes, cpu="32", memory="128Gi", pods=110, zones=("zone-a", "zone-b", "zone-c"))


def drain_rate(*, bound: int, first: float, last: float) -> float:
    """Pods per second from the first bind to the last: ``bound - 1`` binds happen after the first
    one starts the clock; 0.0 when fewer than two pods were bound or no time passed."""
    if bound < 2 or last <= first:
        return 0.0
    return (bound - 1) / (last - first)


def per_pod_ms(*, seconds: float, pods: int) -> float:
    """CPU (or wall) seconds spread over ``pods``, in milliseconds each; 0.0 for no pods."""
    return 1000.0 * seconds / pods if pods > 0 else 0.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 0.01, or None when either figure is missing or the
    denominator is not positive (a run that was not made, or bound nothing)."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


def backlog_ratios(*, baseline_pods_per_s: float | None, batched_pods_per_s: float | None,
                   unbatched_pods_per_s: float | None, batched_cpu_ms_per_pod: float | None,
                   unbatched_cpu_ms_per_pod: float | None, decision_ms: float | None) -> dict[str, float | None]:
    """The three ratios the backlog benchmark reports (targets in ``TARGETS``)."""
    return {
        "drain_vs_baseline": ratio(batched_pods_per_s, baseline_pods_per_s),
        "cpu_per_pod_vs_decision": ratio(batched_cpu_ms_per_pod, decision_ms),
        "unbatched_cpu_per_pod_vs_decision": ratio(unbatched_cpu_ms_per_pod, decision_ms),
        "batched_vs_unbatched_drain": ratio(batched_pods_per_s, unbatched_pods_per_s),
    }


TARGETS: Final = {"drain_vs_baseline": ">= 5", "cpu_per_pod_vs_decision": "<= 1.5", "batched_vs_unbatched_drain": ">= 2"}


def unbatched_config_problem(path: Path) -> str | None:
    """Why this vecsched cannot run ``UNBATCHED_CONFIG`` (its config error), or None when it can."""
    try:
        load_config(path)
    except ValueError as e:
        return str(e)
    return None


def decision_ms(*, nodes: int, pods: int, config: Path | None) -> float:
    """Milliseconds per decision (filter, score, select, assume) without I/O, for the backlog's pod
    on the backlog's cluster, by the profile of ``config`` (the default profile when None)."""
    shape = _shape(nodes)
    table = NodeTable(capacity=nodes)
    for i in range(nodes):
        # named, numbered and zoned as ApiServer.add_node registers node i of the shape
        table.set_node(node_from_json(build_node(name=f"node-{i:04d}", shape=shape, index=i + 1, zone_index=i)))
    profile = load_config(config).profiles[0].build(seed=1)
    todo = [pod_from_json(_pod(i)) for i in range(pods)]
    placed, seconds = decide_all(profile, table, todo)
    if placed != pods:
        raise RuntimeError(f"decision benchmark: only {placed}/{pods} pods fit")
    return per_pod_ms(seconds=seconds, pods=pods)


async def _start(*, scheduler: str, kubeconfig: str, config: Path | None,
                 spawned: Callable[[int], None]) -> asyncio.subprocess.Process:
    """Start a scheduler process (``spawned(pid)`` as soon as it exists) and return once it has
    listed the cluster (/readyz for vecsched, its "ready" line for the baseline)."""
    if scheduler == BASELINE:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.baseline_scheduler", "--kubeconfig", kubeconfig,
            "--scheduler-name", BASELINE, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
        spawned(proc.pid)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"the baseline scheduler exited with code {await proc.wait()} before it was ready")
        return proc
    port = free_port()
    extra = ["--config", str(config)] if config else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
        "--port", str(port), *OPEN_METRICS, "--no-leader-elect", "--log-level", "error", *extra,
        stdin=asyncio.subprocess.DEVNULL)
    spawned(proc.pid)
    try:
        await wait_ready(url=f"https://127.0.0.1:{port}", proc=proc, timeout=120)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc


async def drain(*, scheduler: str, nodes: int, pods: int, config: Path | None = None) -> dict[str, Any]:
    """One scheduler drains ``pods`` pending pods, created before it starts, on a fresh API server."""
    name = BASELINE if scheduler == BASELINE else "vecsched"
    async with serve_apiserver(nodes=_shape(nodes), kubelet_delay=0.05, history=max(50_000, 4 * pods)) as srv:
        for i in range(pods):
            srv.create("pods", _pod(i, name), namespace="default")
        node_field = srv.store.type("pods").field_index("spec.nodeName")
        bound: set[str] = set()
        # (wall clock, this process's CPU, the scheduler's CPU) at the first and at the last bind
        marks: list[tuple[float, float, float]] = []
        done = asyncio.Event()
        pids: list[int] = []

        def track(key: Any, old: Any, new: Any) -> None:
            if new is not None and new.fields[node_field] and new.name not in bound:
                bound.add(new.name)
                if len(bound) in (1, pods):
                    marks.append((time.perf_counter(), time.process_time(), proc_stats(pids[0])[0]))
                if len(bound) == pods:
                    done.set()

        srv.store.add_listener("pods", track)
        assert srv.kubeconfig_path is not None
        # The nodes, the backlog and the server live through the whole drain: frozen, so that a full
        # collection over them (tens of ms each) lands in no run's API server figures by chance.
        gc.collect()
        gc.freeze()
        try:
            proc = await _start(scheduler=scheduler, kubeconfig=str(srv.kubeconfig_path), config=config,
                                spawned=pids.append)
            try:
                ready_cpu, _ = proc_stats(proc.pid)
                try:
                    await asyncio.wait_for(done.wait(), DRAIN_TIMEOUT)
                except asyncio.TimeoutError:
                    raise RuntimeError(f"{scheduler}: only {len(bound)}/{pods} pods bound after "
                                       f"{DRAIN_TIMEOUT:g} s") from None
                _, hwm = proc_stats(proc.pid)
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    await proc.wait()
        finally:
            gc.unfreeze()
    (t0, own0, sched0), (t1, own1, end_cpu) = marks[0], marks[-1]
    # The scheduler may bind its first pods before /readyz is polled: "ready" is whichever came first.
    ready_cpu = min(ready_cpu, sched0)
    api_ms = per_pod_ms(seconds=own1 - own0, pods=pods - 1)
    return {
        "scheduler": scheduler, "nodes": nodes, "pods": pods,
        "pods_per_s": round(drain_rate(bound=pods, first=t0, last=t1), 1),
        "drain_s": round(t1 - t0, 2),
        "startup_cpu_s": round(ready_cpu, 2),
        "scheduler_cpu_s": round(end_cpu, 2),
        "scheduler_cpu_ms_per_pod": round(per_pod_ms(seconds=end_cpu - ready_cpu, pods=pods), 3),
        "scheduler_cpu_ms_per_pod_from_start": round(per_pod_ms(seconds=end_cpu, pods=pods), 3),
        "scheduler_peak_rss_mib": round(hwm / 2**20, 1),
        "apiserver_cpu_ms_per_pod": round(api_ms, 3),
        # the drain rate at which the API server would need a whole core (its CPU is one core at most)
        "apiserver_ceiling_pods_per_s": round(1000 / api_ms) if api_ms > 0 else None,
        "apiserver_busy_pct": round(100 * (own1 - own0) / (t1 - t0), 1) if t1 > t0 else None,
    }


async def run_backlog(*, nodes: int, pods: int) -> dict[str, Any]:
    """The baseline, vecsched batched (its default) and unbatched, and one decision without I/O."""
    with tempfile.TemporaryDirectory(prefix="vecsched-e2e-") as tmp:
        unbatched = Path(tmp) / "unbatched.yaml"
        unbatched.write_text(UNBATCHED_CONFIG)
        problem = unbatched_config_problem(unbatched)
        config = None if problem else unbatched
        dec_ms = round(decision_ms(nodes=nodes, pods=DECISION_PODS, config=config), 4)  # as printed
        base = await drain(scheduler=BASELINE, nodes=nodes, pods=pods)
        vec = await drain(scheduler="vecsched", nodes=nodes, pods=pods)
        un = None if problem else await drain(scheduler="vecsched-unbatched", nodes=nodes, pods=pods, config=unbatched)
    return {
        "nodes": nodes, "pods": pods,
        "scheduler_cpu_counted_from": "readiness",
        "runs": {"baseline": base, "vecsched": vec, "vecsched_unbatched": un},
        "unbatched_unavailable": problem,
        "decision": {"ms": dec_ms, "pods": DECISION_PODS,
                     "profile": "default, batching off" if config else "default (batching not configurable)"},
        "ratios": backlog_ratios(
            baseline_pods_per_s=base["pods_per_s"], batched_pods_per_s=vec["pods_per_s"],
            unbatched_pods_per_s=un["pods_per_s"] if un else None,
            batched_cpu_ms_per_pod=vec["scheduler_cpu_ms_per_pod"],
            unbatched_cpu_ms_per_pod=un["scheduler_cpu_ms_per_pod"] if un else None, decision_ms=dec_ms),
        "targets": dict(TARGETS),
    }


def _print_backlog(r: dict[str, Any]) -> None:
    print(f"backlog: {r['nodes']} nodes, {r['pods']} pending pods created before each scheduler started "
          f"(each on its own API server); scheduler CPU counted from {r['scheduler_cpu_counted_from']}")
    print(f"{'scheduler':<20} {'pods/s':>8} {'drain s':>8} {'start-up CPU s':>15} {'CPU ms/pod':>11} "
          f"{'from start':>11} {'RSS MiB':>8} {'apiserver CPU ms/pod':>21} {'apiserver busy %':>17} "
          f"{'apiserver ceiling pods/s':>25}")
    for run in r["runs"].values():
        if run is None:
            continue
        print(f"{run['scheduler']:<20} {run['pods_per_s']:>8} {run['drain_s']:>8} {run['startup_cpu_s']:>15} "
              f"{run['scheduler_cpu_ms_per_pod']:>11} {run['scheduler_cpu_ms_per_pod_from_start']:>11} "
              f"{run['scheduler_peak_rss_mib']:>8} {run['apiserver_cpu_ms_per_pod']:>21} "
              f"{_opt(run['apiserver_busy_pct']):>17} {_opt(run['apiserver_ceiling_pods_per_s']):>25}")
    if r["unbatched_unavailable"]:
        print(f"vecsched-unbatched: not run: {r['unbatched_unavailable']}")
    d = r["decision"]
    print(f"one decision without I/O ({d['profile']}, {d['pods']} pods): {d['ms']} ms")
    rt = r["ratios"]
    print(f"vecsched / baseline drain rate: {_opt(rt['drain_vs_baseline'], 'x')} (target {TARGETS['drain_vs_baseline']})")
    print(f"scheduler CPU per pod / one decision: {_opt(rt['cpu_per_pod_vs_decision'], 'x')} "
          f"(target {TARGETS['cpu_per_pod_vs_decision']}; unbatched: {_opt(rt['unbatched_cpu_per_pod_vs_decision'], 'x')})")
    print(f"batched / unbatched drain rate: {_opt(rt['batched_vs_unbatched_drain'], 'x')} "
          f"(target {TARGETS['batched_vs_unbatched_drain']})")


def _opt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backlog", action="store_true",
                    help="create the pods before the scheduler starts; compare with the baseline and unbatched")
    ap.add_argument("--nodes", default=None, help="node counts (default 1000,5000; 2000 with --backlog)")
    ap.add_argument("--pods", type=int, default=None, help="pods (default 10000; 4000 with --backlog)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        sizes = [int(n) for n in (a.nodes or ("2000" if a.backlog else "1000,5000")).split(",")]
    except ValueError:
        ap.error(f"--nodes: expected comma-separated node counts, got {quote(a.nodes)}")
    pods = a.pods if a.pods is not None else (4000 if a.backlog else 10_000)
    if min(sizes) < 1 or pods < 2:
        ap.error("--nodes must be >= 1 and --pods >= 2")
    try:
        if a.backlog:
            backlog = [asyncio.run(run_backlog(nodes=n, pods=pods)) for n in sizes]
        else:
            results = [asyncio.run(run_once(nodes=n, pods=pods)) for n in sizes]
    except (RuntimeError, OSError) as e:  # a scheduler that died or never bound its pods
        print(f"benchmarks.e2e: {e}", file=sys.stderr)
        return 1
    if a.backlog:
        if a.json:
            print(json.dumps({"benchmark": "e2e-backlog", "results": backlog}, indent=2))
        else:
            for r in backlog:
                _print_backlog(r)
        return 0
    if a.json:
        print(json.dumps({"benchmark": "e2e", "results": results}, indent=2))
        return 0
    print(f"{'nodes':>6} {'pods':>6} {'pods/s':>8} {'SLI p50 ms':>11} {'SLI p99 ms':>11} {'sched CPU s':>12} {'sched RSS MiB':>14}")
    for r in results:
        print(f"{r['nodes']:>6} {r['pods']:>6} {r['pods_per_s']:>8} {r['sli_p50_ms']:>11} {r['sli_p99_ms']:>11} "
              f"{r['scheduler_cpu_s']:>12} {r['scheduler_peak_rss_mib']:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
