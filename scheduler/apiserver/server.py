"""The embedded API server as a library: start, stop, inspect and steer it.

Tests, the demo and benchmarks need a Kubernetes API server on loopback that
they can also reach into: read objects directly, add or break nodes, compact
history, inject faults. ``serve_apiserver`` starts one on an ephemeral port,
writes a kubeconfig for real clients, and stops it cleanly (saving state when
asked); the ``ApiServer`` it yields is the handle for all of the above.
"""

from __future__ import annotations

import builtins

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from .admission import system_priority_classes
from .auth import Authorizer, Decision, User
from .controllers import DEFAULT_CONTROLLERS, Controller, ControllerManager
from .customresources import CRDS
from .faults import Faults
from .http import MAX_BODY_BYTES, HttpApi
from .limits import JSON_HOOKS
from .errors import not_found
from .kubelet import KubeletSim, NodeShape, build_node, set_ready
from .operations import Operations
from .resources import ResourceType, builtin
from .store import Store
from .nodeexporter import render_node_exporter, render_node_utilisation
from .resourcemetrics import render_cluster_metrics, render_node_metrics
from .usage import MAX_USAGE_RATIO, NodeUsage

__all__ = ["ApiServer", "serve_apiserver", "write_kubeconfig", "DEFAULT_NAMESPACES"]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NODES = builtin("nodes")
_NAMESPACES = builtin("namespaces")
_PRIORITY_CLASSES = builtin("priorityclasses.scheduling.k8s.io")


def write_kubeconfig(*, path: str | Path, server: str, token: str | None, namespace: str = "default") -> Path:
    """A kubeconfig with one context ``vecsched`` pointing at ``server``."""
    user: dict[str, Any] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "vecsched", "cluster": {"server": server}}],
        "users": [{"name": "vecsched-user", "user": user}],
        "contexts": [{"name": "vecsched", "context": {"cluster": "vecsched", "user": "vecsched-user", "namespace": namespace}}],
        "current-context": "vecsched",
        "preferences": {},
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # It may hold a bearer token: readable by its owner only, as kubectl writes kubeconfigs.
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(yaml.safe_dump(doc, sort_keys=False))
    return p


def _normalise_shapes(nodes: int | NodeShape | Sequence[NodeShape]) -> list[NodeShape]:
    if isinstance(nodes, bool):
        raise ValueError("nodes must be a count or NodeShape list, not a bool")
    if isinstance(nodes, int):
        if nodes < 0:
            raise ValueError(f"nodes must be >= 0, got {nodes}")
        return [NodeShape(count=nodes)] if nodes else []
    if isinstance(nodes, NodeShape):
        return [nodes]
    return list(nodes)


class ApiServer:
    """A running (or ready to run) embedded API server and its simulated nodes."""

    def __init__(
        self,
        *,
        nodes: int | NodeShape | Sequence[NodeShape] = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        kubelet_delay: float = 0.05,
        kubelet_max_grace_seconds: float | None = None,
        node_lease_seconds: float | None = 10.0,
        node_status_seconds: float | None = 300.0,
        kubelet_clock: Callable[[], float] = time.time,
        simulated_usage_ratio: float = 1.0,
        history: int = 50_000,
        bookmark_interval: float = 5.0,
        watch_coalesce: float = 0.005,
        tokens: Mapping[str, User | str] | None = None,
        rbac: Iterable[Mapping[str, Any]] | None = None,
        admin_token: str | None = None,
        kubeconfig_path: str | Path | None = None,
        state_path: str | Path | None = None,
        faults: Faults | None = None,
        max_body: int = MAX_BODY_BYTES,
        controllers: Sequence[type[Controller]] | None = None,
        controller_settings: Mapping[str, Any] | None = None,
        resync_seconds: float = 30.0,
    ) -> None:
        if watch_coalesce < 0:
            raise ValueError(f"watch_coalesce must be >= 0 seconds, got {watch_coalesce}")
        if bookmark_interval <= 0:
            raise ValueError(f"bookmark_interval must be > 0 seconds, got {bookmark_interval}")
        if not 0 <= simulated_usage_ratio <= MAX_USAGE_RATIO:  # also NaN
            raise ValueError(f"simulated_usage_ratio must be a number in [0, {MAX_USAGE_RATIO:g}], "
                             f"got {simulated_usage_ratio}")
        self.host = host
        self.port = port
        self.store = Store(history=history)
        self.ops = Operations(store=self.store)
        self.faults = faults or Faults()
        auth_tokens: dict[str, User | str] = dict(tokens or {})
        self.admin_token: str | None = None
        if auth_tokens or rbac is not None or admin_token:
            self.admin_token = admin_token or secrets.token_hex(16)
            auth_tokens[self.admin_token] = User.of("vecsched-admin", ["system:masters"])
        self.authorizer = Authorizer(tokens=auth_tokens, rbac=rbac)
        self.http = HttpApi(store=self.store, ops=self.ops, authorizer=self.authorizer, faults=self.faults,
                            bookmark_interval=bookmark_interval, watch_coalesce=watch_coalesce,
                            max_body=max_body)
        self.state_path = Path(state_path) if state_path else None
        if self.state_path and self.state_path.exists():
            self.load_state(self.state_path)
        for ns in DEFAULT_NAMESPACES:
            if self.store.find(_NAMESPACES, "", ns) is None:
                self.ops.create(_NAMESPACES, {"metadata": {"name": ns}}, namespace="")
        for pc in system_priority_classes():
            if self.store.find(_PRIORITY_CLASSES, "", pc["metadata"]["name"]) is None:
                self.ops.create(_PRIORITY_CLASSES, pc, namespace="")
        self._next_node = 0
        self._node_index = self.store.count(_NODES)
        for shape in _normalise_shapes(nodes):
            # node-0000.. in shape order; ones restored from a state file are kept as they are
            for i in range(shape.count):
                name = f"node-{self._next_node:04d}"
                if self.store.find(_NODES, "", name) is None:
                    self.add_node(name=name, shape=shape, zone_index=i)
                self._next_node += 1
        # The simulated kubelets: pods start ``kubelet_delay`` s after binding; a deleted pod's containers
        # stop after its grace period, capped at ``kubelet_max_grace_seconds`` (None: the full period);
        # leases renew every ``node_lease_seconds`` and node status every ``node_status_seconds`` (None: off);
        # ``kubelet_clock`` gives the epoch seconds of their timestamps and usage counters; a pod without
        # usage annotations uses its requests times ``simulated_usage_ratio``.
        self.kubelet = KubeletSim(store=self.store, ops=self.ops, delay=kubelet_delay,
                                  max_grace=kubelet_max_grace_seconds, lease_seconds=node_lease_seconds,
                                  status_seconds=node_status_seconds, clock=kubelet_clock,
                                  usage_ratio=simulated_usage_ratio)
        self.http.node_metrics = self.node_resource_metrics
        self.http.cluster_metrics = self.nodes_resource_metrics
        self.http.anonymous_metrics["/metrics/node-exporter"] = self.node_exporter_metrics
        self.http.anonymous_metrics["/metrics/node-utilisation"] = self.node_utilisation_metrics
        self.controllers = ControllerManager(
            store=self.store, ops=self.ops, resync=resync_seconds, settings=dict(controller_settings or {}),
            controllers=DEFAULT_CONTROLLERS if controllers is None else controllers)
        self._kubeconfig_arg = Path(kubeconfig_path) if kubeconfig_path else None
        self._tmpdir: str | None = None
        self.kubeconfig_path: Path | None = None
        self.url = ""
        self._runner: web.ServerRunner | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, then write the kubeconfig; ``url`` and ``kubeconfig_path`` are set after this."""
        if self._runner is not None:
            raise RuntimeError("ApiServer.start() called twice; call stop() first")
        runner = web.ServerRunner(self.http.server(), handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        self._runner = runner
        addr = runner.addresses[0]
        self.port = int(addr[1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"
        self.http.address = f"{host}:{self.port}"
        if self._kubeconfig_arg is None:
            self._tmpdir = tempfile.mkdtemp(prefix="vecsched-apiserver-")
            path = Path(self._tmpdir) / "kubeconfig"
        else:
            path = self._kubeconfig_arg
        self.kubeconfig_path = write_kubeconfig(path=path, server=self.url, token=self.admin_token)
        self.kubelet.start()
        self.controllers.start()

    async def stop(self) -> None:
        """End watches, stop listening, save state (when configured), remove a temporary kubeconfig."""
        await self.controllers.stop()
        self.kubelet.stop()
        self.store.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.ops.webhooks.close()
        if self.state_path is not None:
            self.save_state(self.state_path)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ---- nodes ---------------------------------------------------------------------------

    def add_nodes(self, shape: NodeShape) -> list[str]:
        """Register ``shape.count`` Ready nodes named ``node-NNNN`` after the existing ones."""
        names = []
        for i in range(shape.count):
            while self.store.find(_NODES, "", f"node-{self._next_node:04d}") is not None:
                self._next_node += 1
            name = f"node-{self._next_node:04d}"
            self.add_node(name=name, shape=shape, zone_index=i)
            names.append(name)
        return names

    def add_node(self, *, name: str | None = None, shape: NodeShape | None = None, zone_index: int = 0) -> dict[str, Any]:
        """Register one Ready node (``shape.count`` is ignored); returns the stored Node."""
        shape = shape or NodeShape()
        if name is None:
            while self.store.find(_NODES, "", f"node-{self._next_node:04d}") is not None:
                self._next_node += 1
            name = f"node-{self._next_node:04d}"
        self._node_index += 1  # distinct host IPs, also for explicitly named nodes
        node = build_node(name=name, shape=shape, index=self._node_index, zone_index=zone_index)
        entry = self.ops.create(_NODES, node, namespace="")
        return entry.obj()

    def set_node_ready(self, name: str, ready: bool) -> dict[str, Any]:
        """Make a node Ready or NotReady (with the node controller's not-ready taints)."""
        return self.store.update(_NODES, "", name, lambda n: set_ready(n, ready=ready)).obj()

    def delete_node(self, name: str) -> dict[str, Any]:
        """Remove a node, as when a machine leaves the cluster; its pods stay bound to it."""
        return self.ops.delete(_NODES, namespace="", name=name)

    def node_usage(self) -> dict[str, NodeUsage]:
        """Every simulated node's CPU and memory use by its running pods, as of now."""
        return self.kubelet.usage.snapshot()

    def node_resource_metrics(self, name: str) -> str:
        """The node kubelet's ``/metrics/resource`` document (404 ApiError for an unknown node)."""
        usage = self.kubelet.usage.snapshot([name]).get(name)
        if usage is None or self.store.find(_NODES, "", name) is None:
            raise not_found(resource="nodes", name=name)
        return render_node_metrics(usage)

    def nodes_resource_metrics(self) -> str:
        """Every node's resource metrics in one document (each series with a ``node`` label)."""
        return render_cluster_metrics(self.kubelet.usage.snapshot().values())

    def node_exporter_metrics(self) -> str:
        """Every node's node-exporter CPU and memory series (``/metrics/node-exporter``; see ``nodeexporter``)."""
        return render_node_exporter(self.kubelet.usage.snapshot().values())

    def node_utilisation_metrics(self) -> str:
        """Every node's CPU and memory utilisation ratios (``/metrics/node-utilisation``; see ``nodeexporter``)."""
        return render_node_utilisation(self.kubelet.usage.snapshot().values())

    # ---- objects -------------------------------------------------------------------------

    def resource(self, name: str) -> ResourceType:
        """A resource by plural (``pods``), qualified name (``leases.coordination.k8s.io``) or short name."""
        return self.store.registry.find(name)

    def get(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """A copy of a stored object (raises the 404 ApiError when missing)."""
        return self.store.get(self.resource(resource), namespace, name).obj()

    def list(self, resource: str, *, namespace: str = "") -> list[dict[str, Any]]:
        return [e.obj() for e in self.store.entries(self.resource(resource), namespace)]

    def create(self, resource: str, obj: Mapping[str, Any], *, namespace: str = "") -> dict[str, Any]:
        """Create through the same admission as a POST."""
        body = json.loads(json.dumps(obj), **JSON_HOOKS)  # a NaN or an infinity is noted, as from a body
        return self.ops.create(self.resource(resource), body, namespace=namespace or body.get("metadata", {}).get("namespace", "")).obj()

    def compact(self) -> int:
        """Expire all history: watches from any earlier resourceVersion get 410."""
        return self.store.compact()

    def close_watches(self) -> int:
        return self.store.close_watches()

    @property
    def auth_log(self) -> builtins.list[Decision]:
        """The most recent authorization decisions (``authorizer.summary`` has every distinct one)."""
        return builtins.list(self.authorizer.log)

    def kubeconfig_for(self, *, token: str, path: str | Path) -> Path:
        """Write a kubeconfig that authenticates with ``token`` (e.g. a service account's)."""
        if not self.url:
            raise RuntimeError("call start() before writing a kubeconfig")
        return write_kubeconfig(path=path, server=self.url, token=token)

    # ---- persistence ---------------------------------------------------------------------

    def save_state(self, path: str | Path) -> None:
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.store.snapshot(), separators=(",", ":")))
        os.replace(tmp, p)

    def load_state(self, path: str | Path) -> None:
        p = Path(path)
        try:
            state = json.loads(p.read_text())
        except OSError as e:
            raise ValueError(f"cannot read state file {p}: {e.strerror}") from e
        except ValueError as e:
            raise ValueError(f"state file {p} is not JSON: {e}") from e
        # Custom objects need their CRDs' types: serve the saved CRDs first.
        objects = state.get("objects") if isinstance(state, dict) else None
        crds = objects.get(CRDS.key) if isinstance(objects, dict) else None
        if isinstance(crds, list):
            self.ops.crds.restore(c for c in crds if isinstance(c, dict))
        self.store.restore(state)


@asynccontextmanager
async def serve_apiserver(**kwargs: Any) -> AsyncIterator[ApiServer]:
    """Run an ``ApiServer`` (same keyword arguments) for the duration of the block."""
    srv = ApiServer(**kwargs)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()

