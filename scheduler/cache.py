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

Confirming is the common case of every pod vecsched places, so it is kept cheap: a watch
event that differs from the assumed pod only where a binding changes it (``spec.nodeName``
now the assumed node, ``metadata.resourceVersion``, ``managedFields``, ``generation``, the
status, while the phase is not final and what preemption reads of the status is as it was)
gives the bound pod as the assumed one with its node, phase and compact raw
(``confirmation``), without the whole pod being read again; and when the table's charge of
the pod and every listener's state would come out as they are, ``update_pod`` swaps the
bound pod in for the assumed one rather than taking it off its node and putting it back,
so that the row is not logged as changed (``scoring.row_log``: its arrays did not change)
and the batcher and ShapeCache recompute nothing for it. Anything else -- another node,
changed labels, annotations or spec, a deletion, a final phase, another uid, a malformed
field, a listener that keeps more of the pod -- takes the ordinary path: read whole, then
taken off and charged again.

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
import operator
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

import orjson

from scheduler.kube.informer import (CSI_DRIVERS, CSI_STORAGE_CAPACITIES, NAMESPACES, NODES, PODGROUPS, PODS,
                                     POD_DISRUPTION_BUDGETS, STORAGE, WORKLOADS, Backoff, Delta, Informer)
from scheduler.kube.client import KubeClient
from scoring.nominations import Nominations, status_nominated_node
from scoring.objects import NodeInfo, ObjectError, PodInfo, compact_raw, node_from_json, pod_from_json, with_state
from scoring.plugins.first_fit import NodeSequence
from scoring.plugins.node_volume_limits import AttachedVolumes
from scoring.plugins.pod_counters import PodCounters
from scoring.plugins.victims import disruption_target
from scoring.plugins.volume_restrictions import VolumeUsage
from scoring.plugins.workloads import Namespaces, Workloads
from scoring.plugins.budgets import Budgets
from scoring.plugins.podgroups import PodGroups, group_of
from scoring.row_log import RowLog
from scoring.safe_input import MAX_DEPTH, InputError, check_tree, clip, is_mapping
from scoring.table import NodeTable, check_node, check_pod
from scoring.tie_break import NameRanks
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

_BINDING_METADATA: Final = frozenset({"resourceVersion", "managedFields", "generation"})
"""What the API server changes in a pod's metadata when it binds it, none of which the scheduler
reads (``compact_raw`` keeps the new resourceVersion and generation, and drops managedFields)."""

_FINAL_PHASES: Final = ("Succeeded", "Failed")
_NODE_NAME: Final = frozenset({"nodeName"})
_SECTIONS: Final = frozenset({"metadata", "spec", "status"})

_SAME_AFTER_CONFIRMATION: Final[frozenset[type]] = frozenset(
    {RowLog, NameRanks, NodeSequence, PodCounters, PodGroups, VolumeUsage, AttachedVolumes})
"""Table listeners whose state, once a placed pod is replaced by one with the same namespace,
labels, annotations, spec and preemption facts (but its start time), is what taking the pod off its
node and charging it again would leave: RowLog logs rows (the row's arrays come out the same),
NameRanks and NodeSequence keep nothing of pods, PodCounters counts namespaces, labels, affinity
terms and deletions, PodGroups the group label, VolumeUsage and AttachedVolumes the spec's
volumes. A listener with a ``pod_replaced`` method is told by ``NodeTable.replace_pod`` (PlacedPods,
preemption's victims: the PodInfo it hands out and the start time it ranks by). Any other keeps
more: NodeLoad the time of the PodScheduled condition, GpuTable the GPUs it would pick again on a
new charge. With one of those (or a listener not named here) on the table, ``update_pod`` takes
the pod off and charges it again."""


def _swappable(table: NodeTable) -> bool:
    """Whether every listener on ``table`` ends as a new charge would leave it when a placed pod
    is replaced in place (``_SAME_AFTER_CONFIRMATION``)."""
    return all(type(listener) in _SAME_AFTER_CONFIRMATION or hasattr(listener, "pod_replaced")
               for listener in table.listeners)


_BINDING_FREE: Final = operator.attrgetter(
    *(f.name for f in fields(PodInfo) if f.name not in ("node_name", "phase", "raw")))
"""The PodInfo fields a binding leaves as they were (every field but the node, phase and raw)."""


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
    confirmation: PodInfo | None = None
    """The bound pod ``SchedulerCache.confirmation`` built from this one, if it did: the same in
    every field, spec and metadata but for the node, the phase and the changes of a binding."""


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
        self.confirmed_from_assumed = 0
        """Watch events that confirmed an assumed pod's binding and were not read whole
        (``confirmation``)."""
        self.status_updates = 0
        """Watch events of placed pods that changed only their status and were not read whole
        (``status_update``), each then swapped in place."""
        self._status_only: tuple[PodInfo, PodInfo] | None = None
        """The pod ``status_update`` built last and the placed pod it was built from, for
        ``update_pod``, which the same event calls next."""
        self.confirmed_in_place = 0
        """Confirmed bindings whose pod ``update_pod`` swapped in for the assumed one, leaving
        the table's charge and its listeners as they were."""

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

    def confirmation(self, key: str, raw: Mapping[str, Any]) -> PodInfo | None:
        """The pod ``read_pod(raw)`` gives, built from the assumed one without reading ``raw``
        whole, when this watch event only confirms our binding of ``key``: the same uid, name,
        labels, annotations and the rest of the metadata but for what a binding changes
        (``_BINDING_METADATA``), the same spec with ``nodeName`` now the assumed node, a phase
        that is not final, the same preemption facts, and what did change well-formed
        (``check_tree``). None otherwise: the event is read whole (``read_pod``), which also
        names whatever is malformed in it. Changes nothing but the assumption's note of the pod
        it built, which spares ``update_pod`` comparing the two again."""
        a = self._assumed.get(key)
        if a is None:
            return None
        old_spec = a.pod.raw.get("spec")
        if a.pod.node_name or not isinstance(old_spec, Mapping) or old_spec.get("nodeName"):
            return None
        phase = _status_change(raw, a.pod.raw, node=a.node, start_may_change=False)
        if phase is None:
            return None
        self.confirmed_from_assumed += 1
        a.confirmation = with_state(a.pod, node_name=sys.intern(a.node), phase=phase, raw=compact_raw(raw))
        return a.confirmation

    def status_update(self, key: str, raw: Mapping[str, Any]) -> PodInfo | None:
        """The pod ``read_pod(raw)`` gives, built from the placed one without reading ``raw``
        whole, when this watch event of a placed pod (neither assumed nor malformed before)
        changes only its status -- the kubelet starting it: phase, start time, conditions, IPs --
        and what any write changes in metadata (``_BINDING_METADATA``): the same spec, labels,
        annotations and the rest of the metadata, a phase that is not final, the same deletion
        and DisruptionTarget condition, what did change well-formed. ``update_pod`` then swaps it
        in place, telling the listeners that keep the pod (``NodeTable.replace_pod``). None
        otherwise, or when a listener on the table would not end as a new charge leaves it."""
        placed = self.table.pods.get(key)
        if placed is None or key in self._assumed or key in self.invalid_pods or not _swappable(self.table):
            return None
        old = placed.pod.raw
        phase = _status_change(raw, old, node=placed.node, start_may_change=True)
        if phase is None:
            return None
        self.status_updates += 1
        # The same spec but for nodeName (``_status_change``); with the same node in both, the same
        # spec: the placed pod's compact one is kept.
        old_spec = old["spec"]
        spec = old_spec if old_spec.get("nodeName") == placed.node else None
        pod = with_state(placed.pod, node_name=placed.pod.node_name, phase=phase, raw=compact_raw(raw, spec=spec))
        self._status_only = (pod, placed.pod)
        return pod

    def update_pod(self, pod: PodInfo) -> bool:
        """Apply an observed pod. Returns True when capacity was freed (it finished).

        A pod the table cannot take (``check_pod``) changes nothing: its node keeps charging what an earlier version charged (one never read is left
        out), ``invalid_pods`` says why, and a warning line names the pod and the field.

        The confirmation of an assumed pod's binding that leaves everything the table and its
        listeners hold of the pod as it was is swapped in for the assumed pod in place
        (``_confirms``): its row is not logged as changed, since its arrays are the same."""
        if pod.terminated:
            return self.delete_pod(pod.key)
        if not pod.node_name:
            return False  # pending: charges nothing, unless assumed (then kept as assumed)
        assumed = self._assumed.get(pod.key)
        placed = self.table.pods.get(pod.key)
        status_only, self._status_only = self._status_only, None
        in_place = placed is not None and (
            (assumed is not None and self._confirms(assumed, placed.pod, placed.node, pod))
            or (status_only is not None and status_only[0] is pod and status_only[1] is placed.pod))
        if not in_place:
            try:
                check_pod(pod)  # (its JSON passed check_tree when pod_from_json read it)
            except ObjectError as e:
                self.invalid_pod(pod.key, e)
                return False
        # (Otherwise every field check_pod reads is the assumed pod's, which add_pod checked.)
        self.invalid_pods.pop(pod.key, None)
        self.warnings.read_fine(f"Pod {pod.key}")
        self.drop_nomination(pod.key)
        self._assumed.pop(pod.key, None)
        if in_place and placed is not None:
            self.table.replace_pod(pod)  # the same charge: the row's sums, ports, pod set and listeners stay
            if assumed is not None:
                self.confirmed_in_place += 1
            return False
        if assumed is not None and assumed.node != pod.node_name:
            log.info("pod %s assumed on %s was bound to %s by someone else", pod.key, assumed.node, pod.node_name)
        if (assumed is None and placed is not None and placed.node == pod.node_name
                and placed.pod.requests == pod.requests and placed.pod.labels == pod.labels
                and placed.pod.host_ports == pod.host_ports
                and preemption_facts(placed.pod.raw) == preemption_facts(pod.raw)):
            return False  # a status update of a running pod: nothing the table holds has changed
        self.table.add_pod(pod, pod.node_name)
        return False

    def _confirms(self, assumed: _Assumed, placed: PodInfo, node: str, pod: PodInfo) -> bool:
        """Whether ``pod``, observed bound, can take the assumed pod's place in the table as it
        is: the table still charges the assumed pod to the node ``pod`` is bound to; ``pod``
        differs from it only in its node, phase and raw; of the raw, only what a binding or a
        status write changes (``_status_change``);
        and every listener on the table is one whose state that leaves as a new charge would
        (``_SAME_AFTER_CONFIRMATION``). Then the row's sums, host ports and pods are the same
        either way."""
        if placed is not assumed.pod or node != assumed.node or pod.node_name != node:
            return False
        if not _swappable(self.table):
            return False
        if pod is assumed.confirmation:
            return True  # (built from the assumed pod after the same comparisons)
        if _BINDING_FREE(pod) != _BINDING_FREE(placed):
            return False
        # (Read whole, not built from the assumed pod: the same comparisons as ``confirmation``.)
        return _status_change(pod.raw, placed.raw, node=node, start_may_change=False) is not None

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


def _status_change(raw: Mapping[str, Any], old: Mapping[str, Any], *, node: str, start_may_change: bool) -> str | None:
    """The phase of ``raw`` when it is ``old`` bound to ``node`` with only its status and what a
    write changes in metadata (``_BINDING_METADATA``) changed: the same spec but ``nodeName``
    (which is ``node``), labels, annotations and other metadata, a phase that is not final, the
    same deletion, DisruptionTarget condition and (unless ``start_may_change``) start time, and
    its metadata and status well-formed (``check_tree``; the rest was checked when ``old`` was
    read). None otherwise."""
    meta, spec, status = raw.get("metadata"), raw.get("spec"), raw.get("status")
    old_meta, old_spec = old.get("metadata"), old.get("spec")
    if not (is_mapping(meta) and is_mapping(spec) and is_mapping(status) and is_mapping(old_meta) and is_mapping(old_spec)):
        return None
    if spec.get("nodeName") != node:
        return None
    phase = status.get("phase")
    if phase is None or phase == "":
        phase = "Pending"  # (as pod_from_json reads an unset phase)
    elif type(phase) is not str or phase in _FINAL_PHASES:
        return None
    facts, old_facts = preemption_facts(raw), preemption_facts(old)
    if (facts[:2] != old_facts[:2] or (not start_may_change and facts[2] != old_facts[2])
            or not _same_json(_without(spec, _NODE_NAME), _without(old_spec, _NODE_NAME))
            or not _same_json(_without(meta, _BINDING_METADATA), _without(old_meta, _BINDING_METADATA))
            or not _same_json(_without(raw, _SECTIONS), _without(old, _SECTIONS))):
        return None
    try:
        # Nested one level down here.
        check_tree(meta, max_depth=MAX_DEPTH - 1, path="metadata")
        check_tree(status, max_depth=MAX_DEPTH - 1, path="status")
    except InputError:
        return None
    return str(phase)


def _same_json(a: object, b: object) -> bool:
    """``a == b`` for decoded JSON, where the types of numbers count: ``1``, ``1.0`` and ``True``
    are equal in Python but a reader takes one and refuses another. Equal values written as the
    same JSON text are the same to every reader (a value orjson cannot write is taken as changed;
    ``==`` comes first, so that a NaN, which orjson writes as null, never passes for a null)."""
    if a != b:
        return False
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except TypeError:
        return False


def _without(obj: Mapping[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in skip}


def preemption_facts(raw: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """What preemption reads of a placed pod besides its requests: ``deletionTimestamp`` and
    the DisruptionTarget condition (a victim already terminating) and ``status.startTime``
    (victims are ranked by it). A change of any of them must reach the table."""
    meta, status = raw.get("metadata"), raw.get("status")
    deleting = meta.get("deletionTimestamp") if is_mapping(meta) else None
    c = disruption_target(raw)
    target = (c.get("status"), c.get("reason")) if c is not None else None
    return deleting, target, status.get("startTime") if is_mapping(status) else None


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
