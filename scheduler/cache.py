"""The scheduler's view of the cluster: the NodeTable, every pod on it, and assumptions.

Binding goes through the API and takes a round trip; the watch confirming it
takes another. Waiting for both before the next decision would cap vecsched
at a few dozen pods per second, and not waiting would let the next pod be
placed on capacity already promised. So, as kube-scheduler does, a pod is
*assumed* on its node the moment it is chosen (charged to the table at once),
*confirmed* when the watch shows it bound, *forgotten* when binding fails, and
*expired* if binding finished but no confirmation came within 30 seconds
(upstream's durationToExpireAssumedPod) -- a lost watch event must not strand
capacity forever.

Pods bound by any scheduler, deleted, or finished (Succeeded/Failed) update
the table too. A malformed Node is skipped with a log line; it never crashes
the runtime.

Preemption reads two more things the cache keeps in the table: the cluster's
PodDisruptionBudgets (``scoring.plugins.budgets.Budgets``, from their informer) and
the pending pods nominated to a node (``scoring.nominations.Nominations``): set
by the scheduling cycle the moment it nominates a pod and by the watch from
``status.nominatedNodeName``, dropped when the pod is assumed, bound or deleted,
or its nomination is cleared in the API -- upstream's nominator. A malformed
budget is skipped with one log line, as a malformed Node is.

The volume plugins read the cluster's storage objects -- PersistentVolumes and their
claims, StorageClasses, CSINodes, CSIDrivers and CSIStorageCapacities -- from the
table's ``scoring.volumes.Volumes`` extension, which their informers keep current
(``on_storage``). It also holds the PVs and claims the VolumeBinding plugin assumes at
Reserve (upstream's AssumeCache), until the watch brings the API's newer version or the
assumption is reverted. A malformed storage object is skipped with one log line and
what an earlier version of it said is dropped, as for a malformed PodGroup.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from scheduler.kube.informer import (CSI_DRIVERS, CSI_STORAGE_CAPACITIES, NAMESPACES, NODES, PODGROUPS, PODS,
                                     POD_DISRUPTION_BUDGETS, STORAGE, WORKLOADS, Backoff, Delta, Informer)
from scheduler.kube.client import KubeClient
from scoring.nominations import Nominations, status_nominated_node
from scoring.objects import NodeInfo, ObjectError, PodInfo, node_from_json
from scoring.plugins.victims import disruption_target
from scoring.plugins.workloads import Namespaces, Workloads
from scoring.plugins.budgets import Budgets
from scoring.plugins.podgroups import PodGroups, group_of
from scoring.table import NodeTable
from scoring.volumes import Volumes

__all__ = ["SchedulerCache", "ASSUMED_POD_TTL_SECONDS", "preemption_facts", "start_informers"]

log = logging.getLogger("vecsched.cache")

ASSUMED_POD_TTL_SECONDS: Final = 30.0
"""Upstream's durationToExpireAssumedPod: how long after its binding finished an assumed
pod may stay unconfirmed by the watch before the cache gives its capacity back."""


@dataclass(slots=True)
class _Assumed:
    pod: PodInfo
    node: str
    deadline: float | None = None
    """None while binding is in flight; then when the assumption expires unless confirmed."""


class SchedulerCache:
    """NodeTable + pods + assumed pods. Single-threaded: call from the event loop only."""

    def __init__(self, *, table: NodeTable | None = None, assumed_ttl: float = ASSUMED_POD_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table if table is not None else NodeTable()
        self.assumed_ttl = assumed_ttl
        self.clock = clock
        self._assumed: dict[str, _Assumed] = {}
        self.skipped_nodes: dict[str, str] = {}
        """Nodes left out because they could not be read: name -> the error."""
        self.skipped_budgets: dict[str, str] = {}
        """PodDisruptionBudgets left out because they could not be read: ns/name -> the error."""
        self.skipped_podgroups: dict[str, str] = {}
        """PodGroups left out because they could not be read: ns/name -> the error."""
        self.skipped_storage: dict[str, str] = {}
        """Storage objects left out because they could not be read: "<Kind> <name or ns/name>" -> the error."""
        self._status_nominated: dict[str, str] = {}
        """Pending pods' ``status.nominatedNodeName`` as last seen by the watch."""

    # ---- nodes -----------------------------------------------------------------------------

    def set_node(self, raw: Mapping[str, Any]) -> NodeInfo | None:
        """Add or update a node from its JSON. Returns the node when the table changed; None when
        nothing the scheduler reads changed, or when it is malformed (then dropped and logged)."""
        try:
            info = node_from_json(raw)
        except ObjectError as e:
            name = str(((raw.get("metadata") or {}) if isinstance(raw, Mapping) else {}).get("name") or "")
            if self.skipped_nodes.get(name) != str(e):
                log.warning("skipping malformed node: %s", e)
            self.skipped_nodes[name] = str(e)
            if name in self.table:
                self.table.remove_node(name)
            return None
        self.skipped_nodes.pop(info.name, None)
        row = self.table.index.get(info.name)
        if row is not None and self.table.infos[row] == info:
            return None  # a heartbeat: nothing the scheduler reads has changed
        self.table.set_node(info)
        return info

    def remove_node(self, name: str) -> None:
        """The node is gone; its pods are held aside in case it returns."""
        self.skipped_nodes.pop(name, None)
        self.table.remove_node(name)

    # ---- namespaces (their labels serve namespaceSelectors of pod affinity terms) ------------

    @property
    def namespaces(self) -> Namespaces:
        return Namespaces.of(self.table)

    def set_namespace(self, raw: Mapping[str, Any]) -> None:
        self.namespaces.apply({**raw, "kind": "Namespace"})

    def delete_namespace(self, name: str) -> None:
        self.namespaces.delete(name)

    def on_namespace(self, delta: Delta) -> None:
        """Informer handler for Namespaces."""
        if delta.type == "DELETED":
            self.delete_namespace(str((delta.obj.get("metadata") or {}).get("name")))
        elif delta.type != "SYNCED":
            self.set_namespace(delta.obj)

    # ---- workloads (their selectors are PodTopologySpread's default constraints) -------------

    def set_workload(self, kind: str, raw: Mapping[str, Any]) -> None:
        Workloads.of(self.table).apply({**raw, "kind": kind})

    def delete_workload(self, kind: str, raw: Mapping[str, Any]) -> None:
        Workloads.of(self.table).delete({**raw, "kind": kind})

    def workload_handler(self, kind: str) -> Callable[[Delta], None]:
        """Informer handler for one workload kind (Service, ReplicaSet, ...)."""
        def handle(delta: Delta) -> None:
            if delta.type == "DELETED":
                self.delete_workload(kind, delta.obj)
            elif delta.type != "SYNCED":
                self.set_workload(kind, delta.obj)
        return handle

    # ---- PodDisruptionBudgets (preemption prefers victims whose budgets allow it) -------------

    @property
    def budgets(self) -> Budgets:
        return Budgets.of(self.table)

    def on_budget(self, delta: Delta) -> None:
        """Informer handler for PodDisruptionBudgets; a malformed one is logged once and left out."""
        _apply_or_skip(delta, "PodDisruptionBudget", self.skipped_budgets, self.budgets.apply, self.budgets.delete)

    # ---- PodGroups (gang scheduling reads the groups and every pod's membership) --------------

    @property
    def podgroups(self) -> PodGroups:
        return PodGroups.of(self.table)

    def on_podgroup(self, delta: Delta) -> str:
        """Informer handler for PodGroups; returns the group's key ("" for SYNCED). A malformed
        one is logged once and left out, as a malformed budget is."""
        return _apply_or_skip(delta, "PodGroup", self.skipped_podgroups, self.podgroups.apply, self.podgroups.delete)

    def observe_member(self, pod: PodInfo) -> str:
        """Any pod as the watch shows it: its PodGroup membership (upstream counts every pod
        carrying the label, whatever its phase or scheduler). Returns its group's key or ""."""
        key = group_of(pod)
        groups = self.table.extensions.get(PodGroups.KEY)
        if key or (isinstance(groups, PodGroups) and pod.key in groups.member_of):
            self.podgroups.observe(pod)
        return key

    def forget_member(self, key: str) -> str:
        """The pod was deleted; returns the group it left ("" when none)."""
        groups = self.table.extensions.get(PodGroups.KEY)
        if not isinstance(groups, PodGroups):
            return ""
        group = groups.member_of.get(key, "")
        groups.forget(key)
        return group

    # ---- storage (the volume plugins read PVs, claims, StorageClasses and CSI objects) ---------

    @property
    def volumes(self) -> Volumes:
        return Volumes.of(self.table)

    def on_storage(self, kind: str, delta: Delta) -> str:
        """Informer handler for one storage kind (one of ``scoring.volumes.KINDS``): the object
        goes into the table's ``Volumes``. A malformed one is logged once (per distinct error),
        listed in ``skipped_storage`` and left out -- what an earlier, readable version said no
        longer holds. Returns its key, ``name`` or ``ns/name`` ("" for SYNCED)."""
        if delta.type == "SYNCED":
            return ""
        raw = delta.obj
        m = raw.get("metadata") if isinstance(raw, Mapping) else None
        meta: Mapping[str, Any] = m if isinstance(m, Mapping) else {}
        name, ns = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        key = f"{ns}/{name}" if ns else name
        label = f"{kind} {key}"
        # Deleting by name and namespace alone: a malformed object's other fields are not read.
        ref = {"metadata": {"name": name, **({"namespace": ns} if ns else {})}}
        if delta.type == "DELETED":
            self.skipped_storage.pop(label, None)
            self.volumes.delete(kind, ref)
            return key
        try:
            self.volumes.apply(kind, raw)
        except ObjectError as e:
            if self.skipped_storage.get(label) != str(e):
                log.warning("skipping malformed %s: %s", kind, e)
            self.skipped_storage[label] = str(e)
            self.volumes.delete(kind, ref)
            return key
        self.skipped_storage.pop(label, None)
        return key

    # ---- nominations (pending pods waiting for the room their preemption makes) --------------

    @property
    def nominations(self) -> Nominations:
        return Nominations.of(self.table)

    def nominate(self, pod: PodInfo, node: str) -> None:
        """The scheduling cycle nominated ``pod`` to ``node`` ("" clears): the next cycles see it
        at once, before the API has the status."""
        self.nominations.set(pod, node)

    def observe_pending(self, pod: PodInfo) -> None:
        """A pending pod of ours as the watch shows it: follow its ``status.nominatedNodeName``.
        As upstream's UpdateNominatedPod, an update with no nomination in the status before or
        after keeps the one the cycle made in memory (its status patch may still be on the way)."""
        if pod.key in self._assumed:
            return  # placed already, the binding under way: it waits for no room
        node = status_nominated_node(pod.raw)
        had = self._status_nominated.get(pod.key, "")
        if node:
            self._status_nominated[pod.key] = node
            self.nominations.set(pod, node)
            return
        self._status_nominated.pop(pod.key, None)
        kept = self.nominations.node_of(pod.key)
        if had or not kept:
            self.nominations.clear(pod.key)  # cleared in the API
        else:
            self.nominations.set(pod, kept)  # the newer pod, the same node

    def drop_nomination(self, key: str) -> None:
        """The pod was assumed, bound or deleted: it no longer waits for room."""
        noms = self.table.extensions.get(Nominations.KEY)
        if isinstance(noms, Nominations):  # (a cache that never nominated keeps the table without them)
            noms.clear(key)
        self._status_nominated.pop(key, None)

    # ---- pods observed by the watch --------------------------------------------------------

    def update_pod(self, pod: PodInfo) -> bool:
        """Apply an observed pod. Returns True when capacity was freed (it finished)."""
        if pod.terminated:
            return self.delete_pod(pod.key)
        if not pod.node_name:
            return False  # pending: charges nothing, unless assumed (then kept as assumed)
        self.drop_nomination(pod.key)
        assumed = self._assumed.pop(pod.key, None)
        if assumed is not None and assumed.node != pod.node_name:
            log.info("pod %s assumed on %s was bound to %s by someone else", pod.key, assumed.node, pod.node_name)
        placed = self.table.pods.get(pod.key)
        if (assumed is None and placed is not None and placed.node == pod.node_name
                and placed.pod.requests == pod.requests and placed.pod.labels == pod.labels
                and placed.pod.host_ports == pod.host_ports
                and preemption_facts(placed.pod.raw) == preemption_facts(pod.raw)):
            return False  # a status update of a running pod: nothing the table holds has changed
        self.table.add_pod(pod, pod.node_name)
        return False

    def delete_pod(self, key: str) -> bool:
        """The pod was deleted or finished. Returns True when it had been charged to a node."""
        self.drop_nomination(key)
        self._assumed.pop(key, None)
        return self.table.remove_pod(key) is not None

    # ---- assumptions -----------------------------------------------------------------------

    def assume(self, pod: PodInfo, node: str) -> None:
        """Charge ``pod`` to ``node`` now, before the binding is sent."""
        if pod.key in self._assumed:
            raise RuntimeError(f"pod {pod.key} is already assumed on {self._assumed[pod.key].node}")
        if node not in self.table:
            raise RuntimeError(f"cannot assume pod {pod.key} on unknown node {node}")
        self.table.add_pod(pod, node)
        self._assumed[pod.key] = _Assumed(pod, node)
        self.drop_nomination(pod.key)  # upstream: an assumed pod is no longer nominated

    def finish_binding(self, key: str) -> None:
        """The binding call succeeded: start the clock for the watch to confirm it."""
        a = self._assumed.get(key)
        if a is not None:
            a.deadline = self.clock() + self.assumed_ttl

    def forget(self, key: str) -> None:
        """Binding failed: give the capacity back (unless the watch confirmed a binding meanwhile)."""
        if self._assumed.pop(key, None) is not None:
            self.table.remove_pod(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def cleanup_expired(self) -> list[str]:
        """Forget assumptions whose confirmation never came; returns their keys."""
        now = self.clock()
        expired = [k for k, a in self._assumed.items() if a.deadline is not None and a.deadline <= now]
        for k in expired:
            log.warning("assumed pod %s on %s expired: the watch never confirmed its binding", k, self._assumed[k].node)
            self.forget(k)
        return expired

    # ---- inspection ------------------------------------------------------------------------

    def sizes(self) -> dict[str, int]:
        """For ``scheduler_scheduler_cache_size{type}``."""
        return {"nodes": self.table.n, "pods": len(self.table.pods), "assumed_pods": len(self._assumed)}

    def node_of(self, key: str) -> str | None:
        return self.table.node_of(key)


def _apply_or_skip(delta: Delta, kind: str, skipped: dict[str, str], apply: Callable[[Mapping[str, Any]], object],
                   delete: Callable[[str, str], None]) -> str:
    """One informer change of a namespaced object a table extension reads (``apply`` raising
    ObjectError when it cannot): a malformed one is logged once, listed in ``skipped`` and
    left out -- what an earlier, readable version said no longer holds. Returns its
    ``ns/name`` ("" for SYNCED)."""
    if delta.type == "SYNCED":
        return ""
    raw = delta.obj
    m = raw.get("metadata") if isinstance(raw, Mapping) else None
    meta: Mapping[str, Any] = m if isinstance(m, Mapping) else {}
    ns, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    key = f"{ns}/{name}"
    if delta.type == "DELETED":
        skipped.pop(key, None)
        delete(ns, name)
        return key
    try:
        apply(raw)
    except ObjectError as e:
        if skipped.get(key) != str(e):
            log.warning("skipping malformed %s: %s", kind, e)
        skipped[key] = str(e)
        delete(ns, name)
        return key
    skipped.pop(key, None)
    return key


def preemption_facts(raw: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """What preemption reads of a placed pod besides its requests: ``deletionTimestamp`` and
    the DisruptionTarget condition (a victim already terminating) and ``status.startTime``
    (victims are ranked by it). A change of any of them must reach the table."""
    meta, status = raw.get("metadata"), raw.get("status")
    deleting = meta.get("deletionTimestamp") if isinstance(meta, Mapping) else None
    c = disruption_target(raw)
    target = (c.get("status"), c.get("reason")) if c is not None else None
    return deleting, target, status.get("startTime") if isinstance(status, Mapping) else None


def start_informers(*, client: KubeClient, cache: SchedulerCache, on_node: Callable[[Delta], None],
                    on_pod: Callable[[Delta], None], backoff: Backoff,
                    on_budget: Callable[[Delta], None] | None = None,
                    on_podgroup: Callable[[Delta], None] | None = None,
                    on_storage: Callable[[str, Delta], object] | None = None) -> list[Informer]:
    """List-and-watch everything that placement depends on, as `vecsched run` and the
    extender both need it: Nodes and Pods (first in the list: the two that must sync
    before scheduling), Namespaces (labels for namespaceSelectors) and the workload
    owners whose selectors give PodTopologySpread its default constraints (optional:
    a server or an RBAC role without them still serves). Given ``on_budget`` (`vecsched run`,
    which preempts, and the extender, whose ``preempt`` verb counts budget violations),
    PodDisruptionBudgets too -- optional as well (``SchedulerCache.on_budget`` is the
    handler's core). Given ``on_podgroup`` (`vecsched run`), scheduler-plugins' PodGroups,
    optional: without their CRD installed (before vecsched starts) there is no gang scheduling.
    Given ``on_storage`` (`vecsched run` with a volume plugin in a profile), the storage
    objects the volume plugins read, each delta with its kind (``SchedulerCache.on_storage``
    is the handler's core): PersistentVolumes, claims, StorageClasses and CSINodes must sync
    before scheduling, as upstream's informers must; CSIDrivers and CSIStorageCapacities
    (read for attach limits and capacity tracking, where a driver publishes them) are optional."""
    informers = [Informer(client=client, path=path, handler=handler, backoff=backoff)
                 for path, handler in ((NODES, on_node), (PODS, on_pod), (NAMESPACES, cache.on_namespace))]
    informers += [Informer(client=client, path=path, handler=cache.workload_handler(kind), backoff=backoff,
                           optional=True) for path, kind in WORKLOADS]
    if on_budget is not None:
        informers.append(Informer(client=client, path=POD_DISRUPTION_BUDGETS, handler=on_budget,
                                  backoff=backoff, optional=True))
    if on_podgroup is not None:
        informers.append(Informer(client=client, path=PODGROUPS, handler=on_podgroup, backoff=backoff, optional=True))
    if on_storage is not None:
        informers += [Informer(client=client, path=path, handler=_with_kind(on_storage, kind), backoff=backoff,
                               optional=path in (CSI_DRIVERS, CSI_STORAGE_CAPACITIES)) for path, kind in STORAGE]
    for inf in informers:
        inf.start()
    return informers


def _with_kind(handler: Callable[[str, Delta], object], kind: str) -> Callable[[Delta], None]:
    def handle(delta: Delta) -> None:
        handler(kind, delta)
    return handle
