"""How fast the extender answers kube-scheduler, over real HTTP on loopback.

kube-scheduler calls its extenders once per pod and verb, inside the
scheduling cycle, one pod at a time; the extender's latency adds to every
pod's. This benchmark sends filter and prioritize requests the way
kube-scheduler does (one in flight) and reports requests/s and latency
percentiles for two shapes:

- ``names``: ``nodeCacheCapable: true``, 5,000 node names per request; the
  extender answers from a cache holding 5,000 random nodes and 20,000 pods
  (built directly, as its informers would; the target is p99 < 50 ms);
- ``nodes``: ``nodeCacheCapable: false``, 500 full Nodes per request; the
  extender runs standalone and builds a table from each request.

The server runs in a child process so that the client's work does not share
its CPU time.

A third figure is the extender under load it was not built for: ``--clients``
(200) concurrent clients each sending NodeNames filter requests back to back,
as a misbehaving caller (or many schedulers) would. The extender answers each
within its budget (2 s, counted from the request's first byte) or with an
error, or refuses it (429) beyond ``--max-inflight``; the figure is the p99 of
the time to *an* answer against the budget, and how the answers split.

    python -m benchmarks.extender [--requests 200] [--names 5000] [--full-nodes 500] [--clients 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import numpy as np

from benchmarks.clusters import random_nodes, random_pods
from scheduler.cache import SchedulerCache
from scheduler.config import default_config
from scheduler.extender import ExtenderSettings, serve_extender
from scoring.objects import node_from_json, pod_from_json
from scoring.table import NodeTable

_P99_TARGET_MS = 50.0
_BUDGET_S = 2.0
"""The extender's default --request-budget, which the concurrent figure is measured against."""


def _cache(*, nodes: int, pods: int, seed: int) -> SchedulerCache:
    rng = np.random.default_rng(seed)
    raw = random_nodes(rng, nodes)
    table = NodeTable(capacity=max(64, nodes))
    for n in raw:
        table.set_node(node_from_json(n))
    for p in random_pods(rng, pods, prefix="running", node_names=[n["metadata"]["name"] for n in raw]):
        info = pod_from_json(p)
        table.add_pod(info, info.node_name)
    return SchedulerCache(table=table)


def _serve(conn: Connection, cached: bool, nodes: int, pods: int, seed: int, budget: float = 10.0) -> None:
    """Child process: an extender (with a prebuilt cache, or standalone) until told to stop."""

    async def main() -> None:
        cache = _cache(nodes=nodes, pods=pods, seed=seed) if cached else None
        settings = ExtenderSettings(bind_address="127.0.0.1", port=0, max_body_bytes=64 * 1024 * 1024,
                                    request_budget_seconds=budget)
        async with serve_extender(config=default_config(), settings=settings, cache=cache) as srv:
            gc.freeze()  # as `vecsched extender` does once its cache is synced
            conn.send(srv.url)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, conn.recv)

    asyncio.run(main())


async def _measure(url: str, bodies: list[bytes], *, warmup: int) -> dict[str, Any]:
    latencies = []
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as http:
        for i, body in enumerate(bodies):
            start = time.perf_counter()
            async with http.post(url, data=body) as resp:
                data = await resp.read()
                if resp.status != 200 or b'"Error":"v' in data:
                    raise RuntimeError(f"{url}: {resp.status} {data[:300]!r}")
            if i >= warmup:
                latencies.append(time.perf_counter() - start)
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "requests_per_s": round(len(ms) / (ms.sum() / 1000), 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
            "body_kib": round(sum(map(len, bodies)) / len(bodies) / 1024, 1)}


def _bench(*, cached: bool, nodes: int, pods: int, requests: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 1)
    pending = random_pods(rng, requests, prefix="pending")
    for i, p in enumerate(pending):
        p["metadata"]["uid"] = f"uid-pending-{i}"
    if cached:
        names = [f"node-{i:05d}" for i in range(nodes)]
        bodies = [json.dumps({"Pod": p, "Nodes": None, "NodeNames": names}).encode() for p in pending]
    else:
        items = random_nodes(np.random.default_rng(seed), nodes)
        for i, n in enumerate(items):  # as the API server returns them; the extender reuses what it read
            n["metadata"]["resourceVersion"] = str(1000 + i)
        node_list = {"metadata": {}, "items": items}
        bodies = [json.dumps({"Pod": p, "Nodes": node_list, "NodeNames": None}).encode() for p in pending]
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_serve, args=(child, cached, nodes, pods, seed), daemon=True)
    proc.start()
    try:
        if not parent.poll(300):
            raise RuntimeError("the extender did not start")
        url = parent.recv()
        warmup = min(10, requests // 10)
        out: dict[str, Any] = {"mode": "names" if cached else "nodes", "nodes": nodes,
                               "cached_pods": pods if cached else 0}
        for verb in ("filter", "prioritize"):
            out[verb] = asyncio.run(_measure(f"{url}/{verb}", bodies, warmup=warmup))
        return out
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


async def _flood(url: str, bodies: list[bytes], *, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` connections, each sending ``bodies`` round-robin back to back for ``seconds``."""
    latencies: list[float] = []
    outcomes = {"answered": 0, "budget_error": 0, "refused_429": 0, "other": 0}
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json"},
                                     timeout=aiohttp.ClientTimeout(total=30)) as http:
        async def client(k: int) -> None:
            i = k
            while time.perf_counter() < stop:
                start = time.perf_counter()
                async with http.post(url, data=bodies[i % len(bodies)]) as resp:
                    data = await resp.read()
                latencies.append(time.perf_counter() - start)
                if resp.status == 429:
                    outcomes["refused_429"] += 1
                elif resp.status == 200 and b'"Error":""' in data:
                    outcomes["answered"] += 1
                elif b"budget" in data:
                    outcomes["budget_error"] += 1
                else:
                    outcomes["other"] += 1
                i += clients

        await asyncio.gather(*(client(k) for k in range(clients)))
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1),
            "budget_ms": _BUDGET_S * 1000, "p99_within_budget": bool(np.percentile(ms, 99) <= _BUDGET_S * 1000),
            **outcomes}


def _concurrent(*, nodes: int, pods: int, clients: int, seconds: float, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 2)
    pending = random_pods(rng, 50, prefix="pending")
    names = [f"node-{i:05d}" for i in range(nodes)]
    bodies = [json.dumps({"Pod": p, "Nodes": None, "NodeNames": names}).encode() for p in pending]
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_serve, args=(child, True, nodes, pods, seed, _BUDGET_S),
                                          daemon=True)
    proc.start()
    try:
        if not parent.poll(300):
            raise RuntimeError("the extender did not start")
        url = parent.recv()
        return {"mode": "names", "nodes": nodes, "cached_pods": pods, "verb": "filter",
                **asyncio.run(_flood(f"{url}/filter", bodies, clients=clients, seconds=seconds))}
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per verb and shape (default 200)")
    ap.add_argument("--names", type=int, default=5000, help="nodes in NodeNames requests (default 5000)")
    ap.add_argument("--pods", type=int, default=20000, help="pods in the cache for NodeNames requests (default 20000)")
    ap.add_argument("--full-nodes", type=int, default=500, help="full Nodes per request (default 500)")
    ap.add_argument("--clients", type=int, default=200,
                    help="concurrent clients for the load figure (default 200; 0 leaves it out)")
    ap.add_argument("--load-seconds", type=float, default=10.0, help="how long the clients send (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = [
        _bench(cached=True, nodes=a.names, pods=a.pods, requests=a.requests, seed=a.seed),
        _bench(cached=False, nodes=a.full_nodes, pods=0, requests=a.requests, seed=a.seed),
    ]
    names_p99 = max(results[0]["filter"]["p99_ms"], results[0]["prioritize"]["p99_ms"])
    load = (_concurrent(nodes=a.names, pods=a.pods, clients=a.clients, seconds=a.load_seconds, seed=a.seed)
            if a.clients > 0 else None)
    doc = {"benchmark": "extender", "profile": "default", "p99_target_ms": _P99_TARGET_MS,
           "names_p99_within_target": names_p99 < _P99_TARGET_MS, "results": results, "concurrent": load}
    if a.json:
        print(json.dumps(doc, indent=2))
        return
    print(f"{'mode':<6} {'nodes':>6} {'verb':<11} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'body KiB':>9}")
    for r in results:
        for verb in ("filter", "prioritize"):
            m = r[verb]
            print(f"{r['mode']:<6} {r['nodes']:>6} {verb:<11} {m['requests_per_s']:>7} {m['p50_ms']:>7} "
                  f"{m['p90_ms']:>7} {m['p99_ms']:>7} {m['max_ms']:>7} {m['body_kib']:>9}")
    print(f"NodeNames p99 {names_p99} ms: {'within' if doc['names_p99_within_target'] else 'OVER'} "
          f"the {_P99_TARGET_MS:g} ms target")
    if load is not None:
        print(f"{load['clients']} concurrent clients, filter of {load['nodes']} NodeNames: {load['requests']} requests, "
              f"p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms ({'within' if load['p99_within_budget'] else 'OVER'} "
              f"the {load['budget_ms']:g} ms budget), max {load['max_ms']} ms; answered {load['answered']}, "
              f"budget errors {load['budget_error']}, 429 {load['refused_429']}, other {load['other']}")


if __name__ == "__main__":
    main()
