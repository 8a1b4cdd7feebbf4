"""What it costs to ask "why is this pod pending?" of a live cluster, against dumping a snapshot.

Before ``vecsched explain POD`` an operator dumped the cluster with ``kubectl get ... -A -o json``
and explained the pod from the file. This benchmark times both routes, as a user runs them
(each command a child process, against ``vecsched apiserver``'s in-process API server over HTTP),
on a cluster of ``--nodes`` nodes in three zones and ``--pods`` bound pods owned by 50
ReplicaSets, with the PodGroup CRD installed, and checks that both print the same JSON:

- ``live``: ``vecsched explain web -o json``;
- ``snapshot``: ``kubectl get <every kind explain reads> -A -o json`` + ``kubectl get pod web``
  + ``vecsched explain --snapshot ... --pod ...``, and the dump's size;
- ``what_if``: ``vecsched explain big --what-if`` for a pod no node can take.

    python -m benchmarks.explain_live [--nodes 100] [--pods 2500] [--runs 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from scheduler.apiserver import serve_apiserver
from scheduler.apiserver.nodes import NodeShape

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CRD = ROOT / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
KINDS = ("nodes,pods,namespaces,services,rs,sts,rc,pdb,priorityclasses,podgroups,pv,pvc,storageclasses,csinodes,"
         "csidrivers,csistoragecapacities")
OWNERS = 50


def _pod(name: str, app: str, cpu: str, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"schedulerName": "vecsched", "containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": {"app": app}}, "spec": spec}


async def _timed(*cmd: str, env: dict[str, str], out: Path | None = None) -> float:
    started = time.perf_counter()
    with open(out or os.devnull, "w") as f:
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=f, stderr=asyncio.subprocess.PIPE, env=env)
        _, err = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {err.decode().strip()}")
    return time.perf_counter() - started


async def measure(*, nodes: int, pods: int, runs: int) -> dict[str, Any]:
    shape = NodeShape(count=nodes, cpu="32", memory="128Gi", zones=("a", "b", "c"))
    async with serve_apiserver(nodes=shape, kubelet_delay=0.0, controllers=[]) as srv:
        srv.create("customresourcedefinitions", next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
        for a in range(OWNERS):
            srv.create("replicasets", {"metadata": {"name": f"app-{a}"}, "spec": {
                "replicas": pods // OWNERS, "selector": {"matchLabels": {"app": f"app-{a}"}},
                "template": {"metadata": {"labels": {"app": f"app-{a}"}},
                             "spec": {"containers": [{"name": "c", "image": "x"}]}}}}, namespace="default")
        for i in range(pods):
            srv.create("pods", _pod(f"app-{i % OWNERS}-{i}", f"app-{i % OWNERS}", "500m", f"node-{i % nodes:04d}"),
                       namespace="default")
        srv.create("pods", _pod("web", "app-0", "1"), namespace="default")
        srv.create("pods", _pod("big", "none", "40"), namespace="default")
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            env = {**os.environ, "KUBECONFIG": str(srv.kubeconfig_path), "HOME": tmp,
                   "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
            vecsched, kubectl = str(BIN / "vecsched"), str(BIN / "kubectl")
            await _timed(vecsched, "explain", "web", "-o", "json", env=env)  # warm the file caches
            live, route = [], []
            for _ in range(runs):
                live.append(await _timed(vecsched, "explain", "web", "-o", "json", env=env, out=d / "live.json"))
                dump = await _timed(kubectl, "get", KINDS, "-A", "-o", "json", env=env, out=d / "snapshot.json")
                dump += await _timed(kubectl, "get", "pod", "web", "-o", "json", env=env, out=d / "pod.json")
                dump += await _timed(vecsched, "explain", "--snapshot", str(d / "snapshot.json"), "--pod",
                                     str(d / "pod.json"), "-o", "json", env=env, out=d / "from-snapshot.json")
                route.append(dump)
            what_if = await _timed(vecsched, "explain", "big", "--what-if", "-o", "json", env=env)
            same = (d / "live.json").read_text() == (d / "from-snapshot.json").read_text()
            size = (d / "snapshot.json").stat().st_size
    return {"nodes": nodes, "pods": pods, "live_seconds": min(live), "snapshot_route_seconds": min(route),
            "snapshot_bytes": size, "what_if_seconds": what_if, "same_json": same}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--pods", type=int, default=2500)
    p.add_argument("--runs", type=int, default=2, help="runs of each route; the fastest is reported")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = asyncio.run(measure(nodes=args.nodes, pods=args.pods, runs=args.runs))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['nodes']} nodes, {r['pods']} pods")
    print(f"  vecsched explain POD          {r['live_seconds']:.2f} s")
    print(f"  kubectl get + explain file    {r['snapshot_route_seconds']:.2f} s "
          f"({r['snapshot_bytes'] / 1e6:.1f} MB dumped)  "
          f"{r['snapshot_route_seconds'] / r['live_seconds']:.1f}x the live explain")
    print(f"  explain --what-if (no fit)    {r['what_if_seconds']:.2f} s")
    print(f"  same JSON both ways           {'yes' if r['same_json'] else 'NO'}")
    return 0 if r["same_json"] else 1


if __name__ == "__main__":
    sys.exit(main())
