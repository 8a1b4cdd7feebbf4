"""What the extender knows of the cluster: an informer-fed cache, or only what each request says.

kube-scheduler tells an extender which nodes are candidates, but never which
pods run on them. Without that, resource fit and every pod-counting plugin
would see empty nodes. So when the extender has API access (``--kubeconfig``,
``$KUBECONFIG`` or in-cluster), it keeps its own copy of Nodes, Pods and
Namespaces with the same informers and ``SchedulerCache`` as ``vecsched run``
and answers *both* request modes from it:

- ``NodeNames`` (``nodeCacheCapable: true``): the names select rows of the
  cached table; a name the cache has not seen yet fails that node with a
  resolvable reason (kube-scheduler retries the pod).
- ``Nodes`` (a full NodeList): the same, by the items' names; the cache's
  copy of each node is the one used.

Without API access only ``Nodes`` requests can be answered: a table is built
from the request's nodes alone, so existing pods are unknown and every node
is scored as empty (requested = 0). That is documented behaviour, useful for
policies that do not depend on load (taints, affinity, node labels).

A pod the extender bound is *assumed* in the cache at once, as the live
scheduler does, so that the next request sees its capacity taken before the
watch confirms the binding.

With API access the extender also watches PodDisruptionBudgets (optional: a
server or RBAC role without them still serves), for the ``preempt`` verb:
which victims it adds is upstream's dry run, which gives back budget-violating
pods first, and their violations are counted in ``NumPDBViolations``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from scheduler.cache import SchedulerCache, preemption_facts, start_informers
from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.informer import Backoff, Delta, Informer
from scoring.framework import Profile
from scoring.objects import NodeInfo, ObjectError, PodInfo, pod_from_json, with_annotations
from scoring.table import NodeTable

__all__ = ["ClusterView"]

log = logging.getLogger("vecsched.extender")

_REMEMBERED_PODS: Final = 4096
"""Pods from recent filter/prioritize requests, by UID, so that a bind can assume the pod in
the cache; kube-scheduler binds within seconds of filtering, so a few thousand is plenty."""
_REMEMBERED_NODES: Final = 100_000
"""Nodes from recent Nodes-mode requests (no cache), for preempt requests, which carry none."""


def _name(raw: Mapping[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("name") or "")


class ClusterView:
    """The cache (with API access) or nothing; plus recently seen pods and nodes."""

    def __init__(self, *, client_settings: ClientSettings | None, backoff: Backoff = Backoff(),
                 client: KubeClient | None = None, cache: SchedulerCache | None = None) -> None:
        self.client_settings = client_settings
        self.backoff = backoff
        self._external = cache is not None
        """A cache kept current by someone else (a live scheduler in the same process, a
        benchmark): no informers are run here and it counts as synced."""
        self.cache: SchedulerCache | None = cache if cache is not None else (
            SchedulerCache() if (client_settings or client) else None)
        self._client = client
        self._own_client = client is None
        self._informers: list[Informer] = []
        self._housekeeping: asyncio.Task[None] | None = None
        self._pods: OrderedDict[str, PodInfo] = OrderedDict()
        self.nodes_seen: dict[str, NodeInfo] = {}
        self._unreadable: set[str] = set()

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> KubeClient | None:
        return self._client

    async def start(self) -> None:
        if self.cache is None:
            return
        if self._client is None and self.client_settings is not None:
            self._client = await connect(self.client_settings)
        if self._external:
            return
        assert self._client is not None
        self._informers = start_informers(client=self._client, cache=self.cache, on_node=self._on_node,
                                          on_pod=self._on_pod, backoff=self.backoff, on_budget=self.cache.on_budget)
        self._housekeeping = asyncio.create_task(self._expire_assumed(), name="extender cache housekeeping")

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            try:
                await self._housekeeping
            except asyncio.CancelledError:
                pass
            self._housekeeping = None
        for inf in self._informers:
            await inf.stop()
        self._informers.clear()
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def synced(self) -> bool:
        """True without a cache; with one, once nodes and pods have been listed."""
        return self.cache is None or self._external or (
            bool(self._informers) and all(i.synced.is_set() for i in self._informers[:2]))

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers[:2]))

    async def _expire_assumed(self) -> None:
        assert self.cache is not None
        while True:
            self.cache.cleanup_expired()
            await asyncio.sleep(1.0)

    # ---- informer handlers -----------------------------------------------------------------

    def _on_node(self, delta: Delta) -> None:
        assert self.cache is not None
        if delta.type == "DELETED":
            self.cache.remove_node(_name(delta.obj))
        elif delta.type != "SYNCED":
            self.cache.set_node(delta.obj)

    def _on_pod(self, delta: Delta) -> None:
        assert self.cache is not None
        if delta.type == "SYNCED":
            return
        meta = delta.obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if delta.type == "DELETED":
            self._unreadable.discard(key)
            self.cache.delete_pod(key)
            return
        spec = delta.obj.get("spec")
        if not isinstance(spec, Mapping) or not spec.get("nodeName"):
            return  # pending: it charges nothing until it is bound (or assumed by our bind)
        placed = self.cache.table.pods.get(key)
        if (placed is not None and not self.cache.is_assumed(key) and placed.pod.raw.get("spec") == spec
                and (placed.pod.raw.get("metadata") or {}).get("labels") == meta.get("labels")
                and (delta.obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and preemption_facts(placed.pod.raw) == preemption_facts(delta.obj)):
            return  # a kubelet status update of a pod charged as it is (and ranked as it is, as a victim)
        try:
            pod = pod_from_json(delta.obj)
        except ObjectError as e:
            if key not in self._unreadable:
                self._unreadable.add(key)
                log.warning("cannot read pod (its usage is not counted): %s", e)
            return
        self.cache.update_pod(pod)

    # ---- what requests add -----------------------------------------------------------------

    def remember_pod(self, pod: PodInfo) -> None:
        if not pod.uid:
            return
        self._pods[pod.uid] = pod
        self._pods.move_to_end(pod.uid)
        while len(self._pods) > _REMEMBERED_PODS:
            self._pods.popitem(last=False)

    def remember_nodes(self, nodes: list[NodeInfo]) -> None:
        if len(self.nodes_seen) + len(nodes) > _REMEMBERED_NODES:
            self.nodes_seen.clear()
        for n in nodes:
            self.nodes_seen[n.name] = n

    def _known(self, *, uid: str, namespace: str, name: str) -> PodInfo | None:
        pod = self._pods.get(uid) if uid else None
        return pod if pod is not None and pod.key == f"{namespace}/{name}" else None

    def reserve(self, profile: Profile, *, uid: str, namespace: str, name: str, node: str) -> dict[str, str]:
        """What the profile's reserve plugins record for binding a pod seen in an earlier
        request to ``node`` (e.g. GpuShare's GPU indices), as `vecsched run` patches them
        onto the pod before binding; empty without a cache or when the pod is unknown."""
        pod = self._known(uid=uid, namespace=namespace, name=name)
        row = self.cache.table.index.get(node) if self.cache is not None else None
        if pod is None or row is None or self.cache is None:
            return {}
        out: dict[str, str] = {}
        for plugin in profile.reservers:
            out.update(plugin.reserve(pod, self.cache.table, row, {}) or {})
        return out

    def assume_bound(self, *, uid: str, namespace: str, name: str, node: str,
                     annotations: Mapping[str, str] | None = None) -> None:
        """After a successful bind: charge the pod (with what reserve recorded) to its node now."""
        pod = self._known(uid=uid, namespace=namespace, name=name)
        self._pods.pop(uid, None)
        if self.cache is None or pod is None:
            return
        if self.cache.node_of(pod.key) is not None or node not in self.cache.table:
            return  # the watch was faster, or the node is unknown: nothing to assume
        self.cache.assume(with_annotations(pod, annotations) if annotations else pod, node)
        self.cache.finish_binding(pod.key)

    # ---- tables for a request --------------------------------------------------------------

    @staticmethod
    def table_of(nodes: Sequence[NodeInfo], pods: Sequence[tuple[PodInfo, str]] = ()) -> NodeTable:
        """A table holding exactly ``nodes`` (and ``pods`` placed on them): a request without a cache."""
        table = NodeTable(capacity=max(64, len(nodes)))
        for n in nodes:
            table.set_node(n)
        for pod, node in pods:
            table.add_pod(pod, node)
        return table
