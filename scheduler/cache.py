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
the table too.

Every update is read and checked whole before it touches the table (``read_node``,
``read_pod``: the reader, which holds the whole object to ``scoring.safe_input.check_tree``
first, then the table's own ``check_node``/``check_pod``), so a malformed object changes
nothing, never half of it. What happens next is what an operator would expect of a watch that delivered
something unreadable: a Node keeps its last readable state (a malformed new Node is
not added), an assigned Pod keeps charging its node what it charged before (one never
read is left out), and the object is named, with its field, in one warning line --
at most one per object a minute, and none again for the same problem until it is read
fine. Nothing raises out of an informer handler.

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
from scoring.objects import NodeInfo, ObjectError, PodInfo, node_from_json, pod_from_json
from scoring.plugins.victims import disruption_target
from scoring.plugins.workloads import Namespaces, Workloads
from scoring.plugins.budgets import Budgets
from scoring.plugins.podgroups import PodGroups, group_of
from scoring.safe_input import InputError, check_tree, clip
from scoring.table import NodeTable, check_node, check_pod
from scoring.volumes import Volumes

__all__ = ["SchedulerCache", "ASSUMED_POD_TTL_SECONDS", "INVALID_LOG_INTERVAL", "preemption_facts", "read_node",
           "read_pod", "start_informers"]

log = logging.getLogger("vecsched.cache")

ASSUMED_POD_TTL_SECONDS: Final = 30.0
"""Upstream's durationToExpireAssumedPod: how long after its binding finished an assumed
pod may stay unconfirmed by the watch before the cache gives its capacity back."""


INVALID_LOG_INTERVAL: Final = 60.0
"""Seconds between two warning lines about one malformed object (semi-arbitrary: an object
that flaps between readable and not, or between two problems, costs a line a minute)."""


def _name_of(raw: object) -> tuple[str, str]:
    """(namespace, name) of a raw object, "" where unreadable: for naming a bad one."""
    meta = raw.get("metadata") if isinstance(raw, Mapping) else None
    if not isinstance(meta, Mapping):
        return "", ""
    ns, name = meta.get("namespace"), meta.get("name")
    return (ns if isinstance(ns, str) else ""), (name if isinstance(name, str) else "")


def _checked_tree(kind: str, raw: object) -> None:
    """``check_tree`` with its ``InputError`` as an ``ObjectError`` naming the object."""
    try:
        check_tree(raw)
    except InputError as e:
        ns, name = _name_of(raw)
        raise ObjectError(f"{kind} {ns}/{name}" if ns else f"{kind} {name or '<unnamed>'}", e.path,
                          e.problem) from None


def read_node(raw: Mapping[str, Any]) -> NodeInfo:
    """A Node from its JSON, checked whole for the table (``ObjectError`` naming the field)."""
    info = node_from_json(raw)  # (holds the whole object to check_tree first)
    check_node(info)
    return info


def read_pod(raw: Mapping[str, Any]) -> PodInfo:
    """A Pod from its JSON, checked whole for the table (``ObjectError`` naming the field):
    ``pod_from_json`` holds the whole object to ``check_tree`` before it reads a field, so the
    tree is walked once here, not again."""
    pod = pod_from_json(raw)
    check_pod(pod)
    return pod


@dataclass(slots=True)
class _Warned:
    at: float
    problem: str
    still_bad: bool = True


class _WarnLimiter:
    """Decides which malformed objects get a warning line: a new problem, unless the object
    had one less than ``interval`` seconds ago; the same problem again only after the object
    was read fine in between."""

    def __init__(self, *, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, _Warned] = {}

    def allow(self, key: str, problem: str) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and ((last.still_bad and last.problem == problem) or now - last.at < self.interval):
            last.still_bad = True
            return False
        self._last[key] = _Warned(now, problem)
        return True

    def read_fine(self, key: str) -> None:
        last = self._last.get(key)
        if last is not None:
            last.still_bad = False

    def forget(self, key: str) -> None:
        self._last.pop(key, None)


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
        """Nodes whose latest version could not be read: name -> the error (the table keeps the
        last readable version, if there was one)."""
        self.skipped_budgets: dict[str, str] = {}
        """PodDisruptionBudgets left out because they could not be read: ns/name -> the error."""
        self.skipped_podgroups: dict[str, str] = {}
        """PodGroups left out because they could not be read: ns/name -> the error."""
        self.skipped_storage: dict[str, str] = {}
        """Storage objects left out because they could not be read: "<Kind> <name or ns/name>" -> the error."""
        self.skipped_other: dict[str, str] = {}
        """Namespaces and workloads (Services, ReplicaSets, ...) left out because they could not
        be read: "<Kind> <name or ns/name>" -> the error."""
        self.on_invalid: Callable[[str], None] | None = None
        """Called with the kind, lower-case, for each malformed Namespace or workload the cache's
        own handlers leave out (for ``vecsched_malformed_objects_total{kind}``)."""
        self._status_nominated: dict[str, str] = {}
        """Pending pods' ``status.nominatedNodeName`` as last seen by the watch."""
        self.warnings = _WarnLimiter(interval=INVALID_LOG_INTERVAL, clock=clock)
        """Which malformed objects get a warning line (see ``INVALID_LOG_INTERVAL``)."""
        self.invalid_pods: dict[str, str] = {}
        """Assigned pods whose latest version could not be read: ns/name -> the error (the table
        keeps what an earlier version charged, if any)."""

    def warn_invalid(self, key: str, error: ObjectError, consequence: str) -> None:
        """One warning line about a malformed object (rate-limited per ``key``)."""
        if self.warnings.allow(key, str(error)):
            log.warning("%s: %s", consequence, error)

    # ---- nodes -----------------------------------------------------------------------------

    def set_node(self, raw: Mapping[str, Any]) -> NodeInfo | None:
        """Add or update a node from its JSON. Returns the node when the table changed; None when
        nothing the scheduler reads changed, or when it is malformed: then the table keeps the
        node's last readable state (or, never read, goes without it), ``skipped_nodes`` says why,
        and a warning line names the node and the field."""
        try:
            info = read_node(raw)
        except ObjectError as e:
            name = _name_of(raw)[1]
            self.skipped_nodes[name] = str(e)
            kept = "keeping its last readable state" if name in self.table else "not adding it"
            self.warn_invalid(f"Node {name}", e, f"ignoring a malformed node update, {kept}")
            return None
        self.skipped_nodes.pop(info.name, None)
        self.warnings.read_fine(f"Node {info.name}")
        row = self.table.index.get(info.name)
        if row is not None and self.table.infos[row] == info:
            return None  # a heartbeat: nothing the scheduler reads has changed
        self.table.set_node(info)
        return info

    def remove_node(self, name: str) -> None:
        """The node is gone; its pods are held aside in case it returns."""
        self.skipped_nodes.pop(name, None)
        self.warnings.forget(f"Node {name}")
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
        """Informer handler for Namespaces; a malformed one is logged and left out, as a
        malformed budget is."""
        key = _apply_or_skip(delta, "Namespace", self.skipped_other, self.set_namespace,
                             lambda _ns, name: self.delete_namespace(name), self.warnings, cluster_scoped=True)
        self._count_invalid("Namespace", key, delta)

    # ---- workloads (their selectors are PodTopologySpread's default constraints) -------------

    def set_workload(self, kind: str, raw: Mapping[str, Any]) -> None:
        Workloads.of(self.table).apply({**raw, "kind": kind})

    def delete_workload(self, kind: str, raw: Mapping[str, Any]) -> None:
        Workloads.of(self.table).delete({**raw, "kind": kind})

    def workload_handler(self, kind: str) -> Callable[[Delta], None]:
        """Informer handler for one workload kind (Service, ReplicaSet, ...)."""
        def handle(delta: Delta) -> None:
            key = _apply_or_skip(delta, kind, self.skipped_other, lambda raw: self.set_workload(kind, raw),
                                 lambda ns, name: self.delete_workload(kind, {"metadata": {"namespace": ns,
                                                                                           "name": name}}),
                                 self.warnings)
            self._count_invalid(kind, key, delta)
        return handle

    def _count_invalid(self, kind: str, key: str, delta: Delta) -> None:
        if delta.type in ("ADDED", "MODIFIED") and f"{kind} {key}" in self.skipped_other and self.on_invalid:
            self.on_invalid(kind.lower())

    # ---- PodDisruptionBudgets (preemption prefers victims whose budgets allow it) -------------

    @property
    def budgets(self) -> Budgets:
        return Budgets.of(self.table)

    def on_budget(self, delta: Delta) -> None:
        """Informer handler for PodDisruptionBudgets; a malformed one is logged once and left out."""
        _apply_or_skip(delta, "PodDisruptionBudget", self.skipped_budgets, self.budgets.apply, self.budgets.delete,
                       self.warnings)

    # ---- PodGroups (gang scheduling reads the groups and every pod's membership) --------------

    @property
    def podgroups(self) -> PodGroups:
        return PodGroups.of(self.table)

    def on_podgroup(self, delta: Delta) -> str:
        """Informer handler for PodGroups; returns the group's key ("" for SYNCED). A malformed
        one is logged once and left out, as a malformed budget is."""
        return _apply_or_skip(delta, "PodGroup", self.skipped_podgroups, self.podgroups.apply, self.podgroups.delete,
                              self.warnings)

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
            self.warnings.forget(label)
            self.volumes.delete(kind, ref)
            return key
        try:
            _checked_tree(kind, raw)
            self.volumes.apply(kind, raw)  # (reads the whole object before it writes)
        except ObjectError as e:
            self.skipped_storage[label] = str(e)
            self.warn_invalid(label, e, f"skipping malformed {kind}")
            self.volumes.delete(kind, ref)
            return key
        self.skipped_storage.pop(label, None)
        self.warnings.read_fine(label)
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
        """Apply an observed pod. Returns True when capacity was freed (it finished).

        A pod the table cannot take (``check_pod``) changes nothing: its node keeps charging what an earlier version charged (one never read is left
        out), ``invalid_pods`` says why, and a warning line names the pod and the field."""
        if pod.terminated:
            return self.delete_pod(pod.key)
        if not pod.node_name:
            return False  # pending: charges nothing, unless assumed (then kept as assumed)
        try:
            check_pod(pod)  # (its JSON passed check_tree when pod_from_json read it)
        except ObjectError as e:
            self.invalid_pod(pod.key, e)
            return False
        self.invalid_pods.pop(pod.key, None)
        self.warnings.read_fine(f"Pod {pod.key}")
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

    def invalid_pod(self, key: str, error: ObjectError) -> None:
        """An assigned pod whose latest version cannot be read: keep what the table charges
        for it, record why, and say so in one (rate-limited) warning line."""
        self.invalid_pods[key] = str(error)
        kept = (f"its node {self.table.node_of(key)} keeps charging its last readable version"
                if key in self.table.pods else "it is not charged to its node")
        self.warn_invalid(f"Pod {key}", error, f"ignoring a malformed pod update, {kept}")

    def delete_pod(self, key: str) -> bool:
        """The pod was deleted or finished. Returns True when it had been charged to a node."""
        self.invalid_pods.pop(key, None)
        self.warnings.forget(f"Pod {key}")
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
                   delete: Callable[[str, str], None], warnings: _WarnLimiter, *, cluster_scoped: bool = False) -> str:
    """One informer change of an object a table extension reads. ``apply`` reads the whole
    object before it writes (raising ObjectError or ValueError, with nothing changed, when
    it cannot); the object is first held to ``check_tree``. A malformed one gets a warning
    line (rate-limited), is listed in ``skipped`` and left out -- what an earlier, readable
    version said no longer holds. Returns its ``ns/name`` (``name`` when ``cluster_scoped``;
    "" for SYNCED)."""
    if delta.type == "SYNCED":
        return ""
    raw = delta.obj
    ns, name = _name_of(raw)
    ns = "" if cluster_scoped else ns or "default"
    key = f"{ns}/{name}" if ns else name
    label = f"{kind} {key}"
    skip_key = key if kind in ("PodDisruptionBudget", "PodGroup") else label
    if delta.type == "DELETED":
        skipped.pop(skip_key, None)
        warnings.forget(label)
        delete(ns, name)
        return key
    try:
        _checked_tree(kind, raw)
        apply(raw)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as e:
        # ObjectError, the readers' other ValueErrors, and what a reader that is not yet total
        # over any JSON value raises on a field of the wrong type: bad input, said in one line.
        error = str(e) if isinstance(e, ObjectError) else f"{label}: {type(e).__name__}: {clip(str(e))}"
        skipped[skip_key] = error
        if warnings.allow(label, error):
            log.warning("skipping malformed %s: %s", kind, error)
        delete(ns, name)
        return key
    skipped.pop(skip_key, None)
    warnings.read_fine(label)
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
