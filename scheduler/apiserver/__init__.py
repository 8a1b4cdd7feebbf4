"""vecsched's embedded Kubernetes API server with simulated nodes.

No cluster exists on a developer's or CI's machine, so vecsched brings its
own: a small API server that speaks the real REST protocol closely enough for
``kubernetes_asyncio`` and ``kubectl`` (discovery, CRUD, patch, watch with
bookmarks and 410 expiry, pods/binding, RBAC, admission webhooks), plus simulated kubelets that
run bound pods. It is the ground under ``vecsched demo``, the live
scheduler's tests and the end-to-end benchmarks.

Typical use::

    async with serve_apiserver(nodes=[NodeShape(count=10, cpu="16")]) as srv:
        config = await load(srv.kubeconfig_path)   # any real client
        srv.set_node_ready("node-0003", False)
        srv.faults.throttle_rate = 0.1
"""

from __future__ import annotations

from .auth import Authorizer, Decision, User, load_rbac, read_rbac_file
from .errors import ApiError
from .faults import Faults
from .kubelet import NodeShape, build_node
from .server import DEFAULT_NAMESPACES, ApiServer, serve_apiserver, write_kubeconfig
from .store import Store

__all__ = [
    "ApiError",
    "ApiServer",
    "Authorizer",
    "DEFAULT_NAMESPACES",
    "Decision",
    "Faults",
    "NodeShape",
    "Store",
    "User",
    "build_node",
    "load_rbac",
    "read_rbac_file",
    "serve_apiserver",
    "write_kubeconfig",
]
