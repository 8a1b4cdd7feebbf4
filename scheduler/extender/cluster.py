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

What requests leave behind. Without a cache, the nodes of ``Nodes`` requests
are kept for the next request (reading a node's quantities is most of the cost
of a 500-node request) and for ``preempt``, which names nodes only; with or
without one, the pods of filter and prioritize requests are kept for ``bind``,
which names its pod only. Requests are unauthenticated input (on loopback, or
from whoever holds a client certificate), so what they leave is keyed by its
*content* -- the SHA-256 of the object's JSON as sent -- never by name and
resourceVersion: a request that sends a node ``a`` at resourceVersion 10 with
a made-up capacity is stored under its own digest, and a later request that
sends the real ``a`` at resourceVersion 10 gets the real one read afresh
(``RequestCache``). It is bounded by bytes (``--cache-bytes``, counted as the
objects' JSON) and by age (``--cache-ttl``), oldest first.

A pod the extender bound is *assumed* in the cache at once, as the live
scheduler does, so that the next request sees its capacity taken before the
watch confirms the binding.

With API access the extender also watches PodDisruptionBudgets (optional: a
server or RBAC role without them still serves), for the ``preempt`` verb:
which victims it adds is upstream's dry run, which gives back budget-violating
pods first, and their violations are counted in ``NumPDBViolations``.

Volumes. When a profile runs a volume plugin (VolumeBinding, VolumeZone,
NodeVolumeLimits, VolumeRestrictions -- the default profile runs all four),
the cache with API access also watches the storage objects they read, as
``vecsched run`` does: PersistentVolumes, PersistentVolumeClaims,
StorageClasses and CSINodes, which must be listed before the extender
answers (a claim not listed yet would reject its pod as "not found"), and
CSIDrivers and CSIStorageCapacities where the server serves them. It only
reads them: kube-scheduler's own VolumeBinding binds a pod's volumes (its
PreBind, before it calls an extender's ``bind``), so the extender's ``bind``
leaves the volume plugins' Reserve out and never pre-binds or assumes a
volume or a claim.

Without API access there are no storage objects to read: kube-scheduler
tells an extender nothing of claims or volumes. The volume plugins are then
left out of the profiles the extender serves -- they pass every node -- and
a line saying so is logged at start. kube-scheduler runs its own volume
plugins before it calls an extender, so this only gives up a second opinion;
running them against an empty cluster instead would reject every pod with a
claim ("persistentvolumeclaim ... not found") and every node a bound volume
names.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Final

from scheduler.cache import SchedulerCache, preemption_facts, start_informers
from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.informer import STORAGE, Backoff, Delta, Informer
from scoring.framework import Profile
from scoring.objects import NodeInfo, ObjectError, PodInfo, pod_from_json, with_annotations
from scoring.plugins import VOLUME_PLUGINS
from scoring.table import NodeTable

__all__ = ["ClusterView", "RequestCache", "content_digest", "DEFAULT_CACHE_BYTES", "DEFAULT_CACHE_TTL"]

log = logging.getLogger("vecsched.extender")

DEFAULT_CACHE_BYTES: Final = 64 * 1024 * 1024
"""What requests leave behind, in bytes of JSON: 64 MiB holds a 5,000-node NodeList (about
1.5 KiB a node, 7.5 MiB) eight times over, or tens of thousands of pods. Parsed, an object
takes 7 to 9 times its JSON (tracemalloc, 500 nodes of benchmarks.clusters), so at most about
512 MiB: with 32 request bodies of 8 MiB in flight, within the Deployment's 2 GiB limit."""
DEFAULT_CACHE_TTL: Final = 120.0
"""Seconds a request's object is kept. kube-scheduler binds and preempts within a scheduling
cycle of filtering (each call at most its 5 s httpTimeout), and a Nodes request re-sends
every node, so two minutes only drops what no request will ask for again."""


def content_digest(raw: Any) -> str:
    """The SHA-256 of ``raw``'s JSON (keys in the order sent, no whitespace): equal for the
    same object sent twice, different as soon as one byte of its content differs."""
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _json_size(raw: Any) -> int:
    return len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())


@dataclass(slots=True)
class _Entry:
    obj: NodeInfo | PodInfo
    key: str
    """The node's name or the pod's UID: what a later request refers to it by."""
    size: int
    born: float


class RequestCache:
    """Nodes and pods read from requests, by content digest; bounded by bytes and by age.

    ``get(digest)`` is an object with exactly that content, or None. ``node(name)`` and
    ``pod(uid)`` are the latest object of that name or UID a request sent (for the verbs
    that name nodes or pods without sending them: preempt, bind). Entries leave oldest first,
    once older than ``max_age`` seconds or to keep the total under ``max_bytes``."""

    def __init__(self, *, max_bytes: int = DEFAULT_CACHE_BYTES, max_age: float = DEFAULT_CACHE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.bytes = 0
        """The JSON size of everything held."""
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._latest: dict[tuple[str, str], str] = {}
        """(kind, name or UID) -> digest of the latest such object stored."""

    def __len__(self) -> int:
        return len(self._entries)

    def counts(self) -> dict[str, int]:
        """Objects held, by kind ("nodes", "pods")."""
        nodes = sum(1 for e in self._entries.values() if isinstance(e.obj, NodeInfo))
        return {"nodes": nodes, "pods": len(self._entries) - nodes}

    def get(self, digest: str) -> NodeInfo | PodInfo | None:
        self._expire()
        e = self._entries.get(digest)
        return e.obj if e is not None else None

    def node(self, name: str) -> NodeInfo | None:
        self._expire()
        e = self._entries.get(self._latest.get(("nodes", name), ""))
        return e.obj if e is not None and isinstance(e.obj, NodeInfo) else None

    def pod(self, uid: str) -> PodInfo | None:
        self._expire()
        e = self._entries.get(self._latest.get(("pods", uid), ""))
        return e.obj if e is not None and isinstance(e.obj, PodInfo) else None

    def put(self, obj: NodeInfo | PodInfo, *, digest: str | None = None) -> None:
        """Keep ``obj`` (its digest computed from ``obj.raw`` unless given) as the latest of its
        name (a node) or UID (a pod). An object larger than the whole cache is not kept."""
        kind, key = ("nodes", obj.name) if isinstance(obj, NodeInfo) else ("pods", obj.uid)
        digest = digest or content_digest(obj.raw)
        old = self._entries.pop(digest, None)
        if old is not None:
            self.bytes -= old.size
        size = old.size if old is not None else _json_size(obj.raw)
        if size > self.max_bytes:
            self._forget(digest, kind, key)
            return
        self._entries[digest] = _Entry(obj, key, size, self.clock())
        self._latest[(kind, key)] = digest
        self.bytes += size
        self._expire()

    def _forget(self, digest: str, kind: str, key: str) -> None:
        if self._latest.get((kind, key)) == digest:
            del self._latest[(kind, key)]

    def _expire(self) -> None:
        oldest = self.clock() - self.max_age
        while self._entries:
            digest, e = next(iter(self._entries.items()))
            if e.born >= oldest and self.bytes <= self.max_bytes:
                return
            self._entries.popitem(last=False)
            self.bytes -= e.size
            self._forget(digest, "nodes" if isinstance(e.obj, NodeInfo) else "pods", e.key)


def _name(raw: Mapping[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("name") or "")


def _leave_out(profile: Profile, names: Set[str]) -> None:
    """Take the plugins named ``names`` out of every extension point of ``profile``, in place:
    from then on they pass every node and score nothing, as if the profile disabled them."""
    profile.prefilters = [p for p in profile.prefilters if p.name not in names]
    profile.filters = [p for p in profile.filters if p.name not in names]
    profile.scorers = [(p, w) for p, w in profile.scorers if p.name not in names]
    profile.reservers = [p for p in profile.reservers if p.name not in names]
    profile.unreservers = [p for p in profile.unreservers if p.name not in names]
    profile.postfilters = [p for p in profile.postfilters if p.name not in names]
    profile.permits = [p for p in profile.permits if p.name not in names]


class ClusterView:
    """The cache (with API access) or nothing; plus recently seen pods and nodes."""

    def __init__(self, *, client_settings: ClientSettings | None, backoff: Backoff = Backoff(),
                 client: KubeClient | None = None, cache: SchedulerCache | None = None,
                 profiles: Mapping[str, Profile] | None = None, seen: RequestCache | None = None) -> None:
        """``profiles``: the profiles the extender serves. With API access they decide whether
        the storage objects are watched (None: as for the default profile, which runs every
        volume plugin); without it, their volume plugins are taken out of them here."""
        self.client_settings = client_settings
        self.backoff = backoff
        self._external = cache is not None
        """A cache kept current by someone else (a live scheduler in the same process, a
        benchmark): no informers are run here and it counts as synced."""
        self.cache: SchedulerCache | None = cache if cache is not None else (
            SchedulerCache() if (client_settings or client) else None)
        self._client = client
        self._own_client = client is None
        self.volume_plugins: frozenset[str] = VOLUME_PLUGINS if profiles is None else frozenset(
            n for p in profiles.values() for n in p.plugin_names if n in VOLUME_PLUGINS)
        """The volume plugins the served profiles run; with API access, the storage objects
        are watched when there is one."""
        self.left_out: frozenset[str] = frozenset()
        """The volume plugins taken out of the profiles for want of storage objects (no API access)."""
        if self.cache is None and profiles is not None and self.volume_plugins:
            self.left_out = self.volume_plugins
            for profile in profiles.values():
                _leave_out(profile, self.left_out)
        self._informers: list[Informer] = []
        self._must_sync: list[Informer] = []
        """The informers whose first list every answer waits for: Nodes, Pods and the storage kinds."""
        self._housekeeping: asyncio.Task[None] | None = None
        self.seen = seen if seen is not None else RequestCache()
        """Nodes and pods from requests, by content (see the module docstring)."""
        self._unreadable: set[str] = set()

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> KubeClient | None:
        return self._client

    async def start(self) -> None:
        if self.left_out:
            log.info("no API access, so no PersistentVolumes or claims to read: the volume plugins (%s) pass every "
                     "node; kube-scheduler runs its own before it calls the extender",
                     ", ".join(sorted(self.left_out)))
        if self.cache is None:
            return
        if self._client is None and self.client_settings is not None:
            self._client = await connect(self.client_settings)
        if self._external:
            return
        assert self._client is not None
        watch_storage = bool(self.volume_plugins)
        self._informers = start_informers(client=self._client, cache=self.cache, on_node=self._on_node,
                                          on_pod=self._on_pod, backoff=self.backoff, on_budget=self.cache.on_budget,
                                          on_storage=self.cache.on_storage if watch_storage else None)
        storage_paths = {path for path, _ in STORAGE} if watch_storage else set()
        self._must_sync = self._informers[:2] + [i for i in self._informers if i.path in storage_paths]
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
        self._must_sync.clear()
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def synced(self) -> bool:
        """True without a cache; with one, once nodes, pods and (when a volume plugin reads
        them) the storage objects have been listed."""
        return self.cache is None or self._external or (
            bool(self._must_sync) and all(i.synced.is_set() for i in self._must_sync))

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._must_sync))

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
        """Keep a filter or prioritize request's pod, for the ``bind`` that may follow."""
        if pod.uid:
            self.seen.put(pod)

    def remember_nodes(self, nodes: Sequence[NodeInfo], digests: Sequence[str | None] = ()) -> None:
        """Keep a Nodes request's nodes (``digests``: their content digests when already known)."""
        for i, n in enumerate(nodes):
            self.seen.put(n, digest=digests[i] if i < len(digests) else None)

    def node_seen(self, name: str) -> NodeInfo | None:
        """The node of that name as the latest Nodes request sent it (no cache: for preempt)."""
        return self.seen.node(name)

    def _known(self, *, uid: str, namespace: str, name: str) -> PodInfo | None:
        pod = self.seen.pod(uid) if uid else None
        return pod if pod is not None and pod.key == f"{namespace}/{name}" else None

    def reserve(self, profile: Profile, *, uid: str, namespace: str, name: str, node: str) -> dict[str, str]:
        """What the profile's reserve plugins record for binding a pod seen in an earlier
        request to ``node`` (e.g. GpuShare's GPU indices), as `vecsched run` patches them
        onto the pod before binding; empty without a cache or when the pod is unknown.
        The volume plugins' Reserve is left out: kube-scheduler's VolumeBinding has bound
        the pod's volumes already, and nothing here would bind or give back what it assumed."""
        pod = self._known(uid=uid, namespace=namespace, name=name)
        row = self.cache.table.index.get(node) if self.cache is not None else None
        if pod is None or row is None or self.cache is None:
            return {}
        out: dict[str, str] = {}
        for plugin in profile.reservers:
            if plugin.name not in VOLUME_PLUGINS:
                out.update(plugin.reserve(pod, self.cache.table, row, {}) or {})
        return out

    def assume_bound(self, *, uid: str, namespace: str, name: str, node: str,
                     annotations: Mapping[str, str] | None = None) -> None:
        """After a successful bind: charge the pod (with what reserve recorded) to its node now."""
        pod = self._known(uid=uid, namespace=namespace, name=name)
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
