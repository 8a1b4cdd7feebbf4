"""Helpers for the control plane's tests: a server with chosen controllers, and waiting.

The controllers run in the API server's process; pods are placed by the real
``vecsched`` scheduler (``tests.live.support.running``) when a test needs
them bound, and the simulated kubelets start them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.apiserver.controllers import Controller
from tests.live.support import running, wait_async, wait_for

__all__ = ["control_plane", "running", "wait_for", "wait_async", "deployment", "pods_of"]


@asynccontextmanager
async def control_plane(*controllers: type[Controller], nodes: int | Sequence[NodeShape] = 4,
                        **kw: Any) -> AsyncIterator[ApiServer]:
    """An API server on loopback running only ``controllers`` (4 nodes of 4 CPU / 8Gi by default)."""
    shapes = [NodeShape(count=nodes, cpu="4", memory="8Gi")] if isinstance(nodes, int) else list(nodes)
    kw.setdefault("kubelet_delay", 0.02)
    kw.setdefault("bookmark_interval", 0.5)
    async with serve_apiserver(nodes=shapes, controllers=list(controllers), **kw) as srv:
        yield srv


def deployment(name: str, *, replicas: int = 3, image: str = "registry.k8s.io/pause:3.9", cpu: str = "100m",
               scheduler: str = "vecsched", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A Deployment whose pods (label ``app: <name>``) vecsched places."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"schedulerName": scheduler, "containers": [
                                      {"name": "app", "image": image, "resources": {"requests": {"cpu": cpu}}}]}},
                     **spec}}


def pods_of(srv: ApiServer, *, namespace: str = "default", **labels: str) -> list[dict[str, Any]]:
    """Pods in ``namespace`` whose labels include ``labels``, by name."""
    pods = [p for p in srv.list("pods", namespace=namespace)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]
    return sorted(pods, key=lambda p: p["metadata"]["name"])
