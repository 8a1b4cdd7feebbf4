"""The straightforward scheduler a user would write in an afternoon: the yardstick for vecsched's drain rate.

``python -m benchmarks.e2e --backlog`` compares vecsched with this. It uses
kubernetes_asyncio with its model objects, lists nodes and pods, then places
every pending pod whose ``schedulerName`` is its own, the backlog first and
then each new one from a watch: a Python loop over the nodes per pod (fits
CPU, memory and the pod count; least-allocated score, the first node of the
best score wins) and a synchronous bind (each Binding awaited before the next
pod). No Events, no retries (a pod that fits nowhere is left pending, with a
line on stderr), no accounting for pods deleted after the list.

    python -m benchmarks.baseline_scheduler --kubeconfig F [--scheduler-name baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client, config, watch

from scoring.safe_input import one_line, quote

__all__ = ["BASELINE_NAME", "quantity", "run", "main"]

BASELINE_NAME = "baseline"
_SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30,
           "Ti": 2.0**40}


def quantity(text: str) -> float:
    """A Kubernetes quantity as a float in base units (``"100m"`` -> 0.1, ``"1Gi"`` -> 1073741824.0)."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    if m is None or m.group(2) not in _SUFFIX:
        raise ValueError(f"quantity: cannot read {quote(text)}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def _requests(pod: Any) -> tuple[float, float]:
    reqs = [c.resources.requests or {} for c in pod.spec.containers if c.resources]
    return sum(quantity(r.get("cpu", "0")) for r in reqs), sum(quantity(r.get("memory", "0")) for r in reqs)


async def run(*, kubeconfig: str, scheduler_name: str = BASELINE_NAME, on_ready: Callable[[int], None] | None = None) -> None:
    """Schedule until cancelled; ``on_ready(pending)`` is called once nodes and pods are listed."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    async with client.ApiClient(configuration=cfg) as api:
        v1 = client.CoreV1Api(api)
        free: dict[str, list[float]] = {}  # node -> [cpu, memory, pods] still free
        alloc: dict[str, tuple[float, float]] = {}
        for n in (await v1.list_node()).items:
            a = n.status.allocatable
            alloc[n.metadata.name] = (quantity(a["cpu"]), quantity(a["memory"]))
            free[n.metadata.name] = [*alloc[n.metadata.name], float(quantity(a["pods"]))]
        listed = await v1.list_pod_for_all_namespaces()
        pending = []
        for p in listed.items:
            if p.spec.node_name and p.status.phase not in ("Succeeded", "Failed") and p.spec.node_name in free:
                cpu, mem = _requests(p)
                f = free[p.spec.node_name]
                f[0], f[1], f[2] = f[0] - cpu, f[1] - mem, f[2] - 1
            elif not p.spec.node_name and p.spec.scheduler_name == scheduler_name:
                pending.append(p)
        if on_ready is not None:
            on_ready(len(pending))

        async def place(pod: Any) -> None:
            try:
                cpu, mem = _requests(pod)
            except ValueError as e:
                print(f"{pod.metadata.namespace}/{pod.metadata.name}: {e}", file=sys.stderr)
                return
            best, best_score = None, -1.0
            for name, f in free.items():
                if f[0] >= cpu and f[1] >= mem and f[2] >= 1:
                    ac, am = alloc[name]
                    score = ((f[0] - cpu) / ac + (f[1] - mem) / am) * 50  # least allocated, 0..100
                    if score > best_score:
                        best, best_score = name, score
            if best is None:
                print(f"{pod.metadata.namespace}/{pod.metadata.name}: no node fits", file=sys.stderr)
                return
            body = client.V1Binding(metadata=client.V1ObjectMeta(name=pod.metadata.name),
                                    target=client.V1ObjectReference(api_version="v1", kind="Node", name=best))
            # The library cannot deserialise a Binding call's answer (a Status): take it raw.
            resp: Any = await v1.create_namespaced_pod_binding(pod.metadata.name, pod.metadata.namespace, body,
                                                          _preload_content=False)
            resp.release()
            f = free[best]
            f[0], f[1], f[2] = f[0] - cpu, f[1] - mem, f[2] - 1

        for p in pending:
            await place(p)
        rv = listed.metadata.resource_version
        selector = f"spec.schedulerName={scheduler_name},spec.nodeName="
        while True:
            async for ev in watch.Watch().stream(v1.list_pod_for_all_namespaces, field_selector=selector,
                                                 resource_version=rv, timeout_seconds=300):
                rv = ev["object"].metadata.resource_version
                if ev["type"] == "ADDED":
                    await place(ev["object"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.baseline_scheduler", description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--scheduler-name", default=BASELINE_NAME)
    a = ap.parse_args(argv)
    ready = lambda n: print(f"ready: {n} pending pods", flush=True)  # noqa: E731
    try:
        asyncio.run(run(kubeconfig=a.kubeconfig, scheduler_name=a.scheduler_name, on_ready=ready))
    except KeyboardInterrupt:
        pass
    except (config.ConfigException, yaml.YAMLError) as e:  # the kubeconfig: bad input (300: one line)
        print(f"--kubeconfig {a.kubeconfig[:200]}: {one_line(str(e), 300)}", file=sys.stderr)
        return 2
    except (OSError, aiohttp.ClientError, client.ApiException) as e:  # the cluster
        print(f"baseline scheduler: {type(e).__name__}: {one_line(str(e), 300)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
