"""Queueing hints: which cluster events may make a parked pod schedulable again.

A pod that fits nowhere is parked in the queue's unschedulable pool with the names of
the plugins that rejected it. Retrying it on every cluster change wastes scheduling
cycles: a kubelet heartbeat, a label nobody selects on, a pod deleted on a node the
pod cannot use anyway. kube-scheduler's answer (KEP-4247, queueing hints) is ported
here: each plugin registers the *kinds* of cluster event that could undo its rejection
(its ``EventsToRegister``), and for most kinds a *hint* function that looks at the one
object the event changed and answers QUEUE or SKIP for one pod (the plugins'
``isSchedulableAfter...`` functions). The queue retries a parked pod when one of the
plugins that rejected it answers QUEUE (upstream's ``isPodWorthRequeuing``).

The rules, upstream's unless said otherwise:

- a pod that no plugin rejected (an error, a pod that fits on no node at all because
  there are none) is worth retrying on any event;
- a rejecting plugin that registered the event's kind without a hint says QUEUE;
  one that did not register the kind says SKIP; a hint that fails says QUEUE;
- a plugin not in ``REGISTRY`` -- one with no events of its own upstream either
  (ImageLocality and the other scores, which reject nobody), vecsched's load plugins,
  a plugin added later -- registers what moved every parked pod before hints existed:
  a node added, any change of a node that a plugin reads (allocatable, labels, taints,
  ``spec.unschedulable``), and an assigned pod's deletion, without hints (upstream
  registers every event for a plugin without EventsToRegister);
- vecsched's GPU plugins register node events and assigned pods' deletions and
  scale-downs (a GPU freed); Coscheduling (whose whole-group fit needs room) node
  events, assigned pods' deletions, PodGroup changes and the addition of a pod of the
  same group; the volume plugins their storage events (as their upstream
  ``EventsToRegister``), node events and assigned pods' deletions, without hints.

Where vecsched's hint is narrower than upstream's it says so; every such case only
skips an event that cannot change the plugin's verdict. Hints take no plugin
arguments (a profile's ``addedAffinity``, PodTopologySpread's default constraints):
where the verdict depends on them the hint says QUEUE.

A hint looks at one pod and one or two objects: no numpy, no walk over nodes or pods.
Event labels are upstream's (1.30's ``scheduler_queue_incoming_pods_total{event}``):
``NodeAdd``, ``NodeAllocatableChange``, ``NodeLabelChange``, ``NodeTaintChange``,
``NodeSpecUnschedulableChange``, ``NodeDelete``, ``AssignedPodAdd``,
``PodLabelChange``, ``PodRequestScaledDown``, ``AssignedPodDelete``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, HostPort, NodeInfo, PodInfo
from scoring.plugins.node_affinity import OBJECT_NAME_FIELD, PodAffinity, Term, parse_pod
from scoring.plugins.pod_selectors import AffinityTerm, parse_pod_terms_cached
from scoring.plugins.pod_topology_spread import DO_NOT_SCHEDULE, Constraint, filter_constraints
from scoring.plugins.podgroups import group_of
from scoring.plugins.resource_names import is_scalar
from scoring.plugins.tolerations import tolerates
from scoring.table import NodeTable, parse_go_int64

__all__ = [
    "Hint", "QUEUE", "SKIP", "ClusterEvent", "Registration", "HintFn", "REGISTRY", "DEFAULT_REGISTRATION",
    "NODE", "ASSIGNED_POD", "POD_GROUP", "ADD", "DELETE", "UPDATE", "UPDATE_NODE_ALLOCATABLE",
    "UPDATE_NODE_LABEL", "UPDATE_NODE_TAINT", "UPDATE_POD_LABEL", "UPDATE_POD_SCALE_DOWN", "STORAGE_EVENTS",
    "node_events", "node_deleted", "assigned_pod_events", "assigned_pod_deleted", "assigned_pod_left", "storage_event",
    "registrations", "worth_requeuing", "interest",
    # the plugins' hints
    "fit_after_node_change", "fit_after_pod_event", "taint_after_node_change", "node_affinity_after_node_change",
    "unschedulable_after_node_change", "node_name_after_node_add", "ports_after_pod_deleted",
    "affinity_after_pod_change", "affinity_after_node_change", "spread_after_pod_change", "spread_after_node_change",
    "coscheduling_after_pod_add",
]


class Hint(enum.Enum):
    """A plugin's answer for one (pod, event): retry the pod, or leave it parked."""

    QUEUE = "Queue"
    SKIP = "QueueSkip"


QUEUE: Final = Hint.QUEUE
SKIP: Final = Hint.SKIP

# Resources (upstream's fwk.Node, assignedPod) and action types (fwk.ActionType).
NODE: Final = "Node"
ASSIGNED_POD: Final = "AssignedPod"
POD_GROUP: Final = "PodGroup"
ADD: Final = "Add"
DELETE: Final = "Delete"
UPDATE: Final = "Update"
"""Any update of an object with no finer action type (storage objects, PodGroups)."""
UPDATE_NODE_ALLOCATABLE: Final = "UpdateNodeAllocatable"
UPDATE_NODE_LABEL: Final = "UpdateNodeLabel"
UPDATE_NODE_TAINT: Final = "UpdateNodeTaint"
"""Taints changed, or ``spec.unschedulable`` was cleared (upstream files both here)."""
UPDATE_POD_LABEL: Final = "UpdatePodLabel"
UPDATE_POD_SCALE_DOWN: Final = "UpdatePodScaleDown"

_NODE_CHANGES: Final = frozenset({(NODE, a) for a in (ADD, UPDATE_NODE_ALLOCATABLE, UPDATE_NODE_LABEL,
                                                     UPDATE_NODE_TAINT)})
_DO_NOT_SCHEDULE_EFFECTS: Final = ("NoSchedule", "NoExecute")


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """One change of the cluster, with the objects before and after it.

    Node events carry ``old_node``/``new_node`` (``old_node`` None for an addition,
    ``new_node`` None for a deletion); assigned-pod events ``old_pod``/``new_pod`` and
    ``node``, the pod's node as the cache knows it (None when unknown)."""

    resource: str
    action: str
    label: str
    """The ``event`` label of ``scheduler_queue_incoming_pods_total``."""
    old_node: NodeInfo | None = None
    new_node: NodeInfo | None = None
    old_pod: PodInfo | None = None
    new_pod: PodInfo | None = None
    node: NodeInfo | None = None
    node_was_full: bool | None = None
    """For an assigned pod's deletion: whether its node held as many pods as it allows
    before (None: unknown). Decides whether the freed pod slot alone can help."""

    @property
    def kind(self) -> tuple[str, str]:
        return self.resource, self.action


HintFn = Callable[[PodInfo, ClusterEvent], Hint]


@dataclass(frozen=True, slots=True)
class Registration:
    """Event kinds a plugin registers, with the hint that judges them (None: always QUEUE)."""

    kinds: frozenset[tuple[str, str]]
    hint: HintFn | None = None


# ---- building events (upstream's NodeSchedulingPropertiesChange, PodSchedulingPropertiesChange) --


def node_events(*, old: NodeInfo | None, new: NodeInfo) -> list[ClusterEvent]:
    """The events of a node's addition (``old`` None) or update, one per kind of change a
    plugin reads, in upstream's order. A change of nothing a filter reads (a heartbeat, a
    condition's timestamp, the images) gives none."""
    if old is None:
        return [ClusterEvent(NODE, ADD, "NodeAdd", new_node=new)]
    out = []
    if old.unschedulable and not new.unschedulable:
        out.append(ClusterEvent(NODE, UPDATE_NODE_TAINT, "NodeSpecUnschedulableChange", old_node=old, new_node=new))
    for changed, action, label in (
            (old.allocatable != new.allocatable, UPDATE_NODE_ALLOCATABLE, "NodeAllocatableChange"),
            (old.labels != new.labels, UPDATE_NODE_LABEL, "NodeLabelChange"),
            (old.taints != new.taints, UPDATE_NODE_TAINT, "NodeTaintChange")):
        if changed:
            out.append(ClusterEvent(NODE, action, label, old_node=old, new_node=new))
    return out


def node_deleted(*, old: NodeInfo) -> ClusterEvent:
    return ClusterEvent(NODE, DELETE, "NodeDelete", old_node=old)


def _scaled_down(old: PodInfo, new: PodInfo) -> bool:
    """upstream's extractPodScaleDown: some request was removed or lowered."""
    return any(new.requests.get(r, 0) < v for r, v in old.requests.items() if v > 0)


def assigned_pod_events(*, old: PodInfo | None, new: PodInfo, node: NodeInfo | None) -> list[ClusterEvent]:
    """The events of a pod's arrival on a node (``old`` None: bound, by us or anyone) or of
    an update of an assigned pod: its labels changed, its requests scaled down."""
    if old is None:
        return [ClusterEvent(ASSIGNED_POD, ADD, "AssignedPodAdd", new_pod=new, node=node)]
    out = []
    if old.labels != new.labels:
        out.append(ClusterEvent(ASSIGNED_POD, UPDATE_POD_LABEL, "PodLabelChange", old_pod=old, new_pod=new, node=node))
    if _scaled_down(old, new):
        out.append(ClusterEvent(ASSIGNED_POD, UPDATE_POD_SCALE_DOWN, "PodRequestScaledDown", old_pod=old, new_pod=new,
                                node=node))
    return out


def assigned_pod_deleted(*, pod: PodInfo, node: NodeInfo | None, node_was_full: bool | None) -> ClusterEvent:
    """An assigned pod left its node (deleted, finished, or its binding undone)."""
    return ClusterEvent(ASSIGNED_POD, DELETE, "AssignedPodDelete", old_pod=pod, node=node, node_was_full=node_was_full)


def assigned_pod_left(*, table: NodeTable, pod: PodInfo, node: str) -> ClusterEvent:
    """``assigned_pod_deleted`` for a pod the table still charges to ``node`` (call it before
    the pod leaves the table): the node as the table knows it, whether it was full, and the
    pod as placed there (an assumed pod's own object does not name its node yet)."""
    row = table.index.get(node)
    info = table.infos[row] if row is not None else None
    full = None
    if row is not None:
        col = table.resource_index[PODS]
        full = bool(table.requested[row, col] >= table.allocatable[row, col])
    placed = pod if pod.node_name == node else replace(pod, node_name=node)
    return assigned_pod_deleted(pod=placed, node=info, node_was_full=full)


def storage_event(*, kind: str, action: str) -> ClusterEvent:
    """A storage object (``PersistentVolume``, ...) added (``Add``) or updated (``Update``)."""
    return ClusterEvent(kind, action, f"{kind}{action}")


# ---- small readers shared by the hints ----------------------------------------------------


def _fits_empty(pod: PodInfo, node: NodeInfo) -> bool:
    """upstream's isFit: the pod fits the node with no pod on it (allocatable only; no
    ignored resources)."""
    alloc = node.allocatable
    if alloc.get(PODS, 0) < 1:
        return False
    for r, v in pod.requests.items():
        if v > 0 and (r in (CPU, MEMORY, EPHEMERAL_STORAGE) or is_scalar(r)) and v > alloc.get(r, 0):
            return False
    return True


def _requested_grew(pod: PodInfo, old: NodeInfo, new: NodeInfo) -> bool:
    """upstream's haveAnyRequestedResourcesIncreased."""
    if new.allocatable.get(PODS, 0) > old.allocatable.get(PODS, 0):
        return True
    return any(v > 0 and (r in (CPU, MEMORY, EPHEMERAL_STORAGE) or is_scalar(r))
               and new.allocatable.get(r, 0) > old.allocatable.get(r, 0) for r, v in pod.requests.items())


def _untolerated(node: NodeInfo, pod: PodInfo) -> bool:
    """A NoSchedule or NoExecute taint of the node that the pod does not tolerate
    (upstream's FindMatchingUntoleratedTaint with DoNotScheduleTaintsFilterFunc)."""
    return any(t.effect in _DO_NOT_SCHEDULE_EFFECTS and not any(tolerates(tol, t) for tol in pod.tolerations)
               for t in node.taints)


def _requirement_matches(key: str, operator: str, values: Sequence[str], number: int,
                         labels: Mapping[str, str]) -> bool:
    """labels.Requirement.Matches for one node's labels."""
    has = key in labels
    if operator == "In":
        return has and labels[key] in values
    if operator == "NotIn":
        return not has or labels[key] not in values
    if operator == "Exists":
        return has
    if operator == "DoesNotExist":
        return not has
    parsed = parse_go_int64(labels[key]) if has else None
    if parsed is None:
        return False
    return parsed > number if operator == "Gt" else parsed < number


def _term_matches(term: Term, node: NodeInfo) -> bool:
    for r in term.expressions:
        if not _requirement_matches(r.key, r.operator, r.values, r.number, node.labels):
            return False
    for f in term.fields:
        value = node.name if f.key == OBJECT_NAME_FIELD else ""
        if (value == f.value) != (f.operator == "In"):
            return False
    return True


def _node_affinity_matches(affinity: PodAffinity, node: NodeInfo) -> bool:
    """upstream's RequiredNodeAffinity.Match: nodeSelector and any required term."""
    if any(node.labels.get(k) != v for k, v in affinity.node_selector.items()):
        return False
    return affinity.required is None or any(_term_matches(t, node) for t in affinity.required)


def _ports_conflict(a: HostPort, b: HostPort) -> bool:
    """Two host ports collide: same protocol and port, and the same IP or a wildcard one."""
    return (a.protocol == b.protocol and a.port == b.port
            and (a.ip == b.ip or a.ip == "0.0.0.0" or b.ip == "0.0.0.0"))


def _affinity_term_matches(term: AffinityTerm, pod: PodInfo) -> bool:
    """AffinityTerm.Matches without the namespaces' labels, which a hint does not see: a
    namespace that only a label selector could choose counts as chosen (upstream passes no
    labels and so never matches there, which would leave such a pod parked)."""
    if pod.namespace in term.namespaces or not term.namespace_selector.nothing:
        return term.selector.matches(pod.labels)
    return False


def _matches_all(terms: Sequence[AffinityTerm], pod: PodInfo) -> bool:
    """upstream's podMatchesAllAffinityTerms (false without terms)."""
    return bool(terms) and all(_affinity_term_matches(t, pod) for t in terms)


def _matches_any(terms: Sequence[AffinityTerm], pod: PodInfo) -> bool:
    """upstream's podMatchesAnyAffinityTerm."""
    return any(_affinity_term_matches(t, pod) for t in terms)


class _Unknown(Exception):
    """The hint cannot judge (an unreadable field, constraints from plugin arguments): QUEUE."""


def _spread_constraints(pod: PodInfo) -> tuple[Constraint, ...]:
    """The pod's own DoNotSchedule constraints (upstream's getConstraints). A pod without
    constraints gets the profile's default ones, which a hint cannot see: _Unknown."""
    raw = (pod.raw.get("spec") or {}).get("topologySpreadConstraints")
    if not raw:
        raise _Unknown
    try:
        return filter_constraints(raw, pod.labels, DO_NOT_SCHEDULE, "spec.topologySpreadConstraints")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise _Unknown from e


# ---- the plugins' hints -------------------------------------------------------------------


def fit_after_node_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """NodeResourcesFit's isSchedulableAfterNodeChange: the node (as if empty) fits the pod,
    and it is new or a resource the pod requests (or the pod count) grew. As upstream's, it
    checks every resource requested, those a profile's ``ignoredResources`` leaves out too."""
    new, old = event.new_node, event.old_node
    if new is None or not _fits_empty(pod, new):
        return SKIP
    return QUEUE if old is None or _requested_grew(pod, old, new) else SKIP


def fit_after_pod_event(pod: PodInfo, event: ClusterEvent) -> Hint:
    """NodeResourcesFit's isSchedulableAfterPodEvent. A deleted assigned pod: upstream
    queues always; vecsched skips when the node could not take the pod even empty, or when
    the deleted pod freed none of the resources the pod requests and its node was not full
    (so the freed pod slot is no help). A scaled-down pod: some resource the pod requests
    went down."""
    old, new = event.old_pod, event.new_pod
    if old is None:
        return SKIP
    if new is None:
        if not old.node_name:
            return SKIP  # (the cache only reports assigned pods; kept for the table's sake)
        if event.node is not None and not _fits_empty(pod, event.node):
            return SKIP
        if event.node_was_full is None or event.node_was_full:
            return QUEUE
        return QUEUE if any(v > 0 and old.requests.get(r, 0) > 0 for r, v in pod.requests.items()) else SKIP
    if new.uid == pod.uid:
        return QUEUE
    if not new.node_name:
        return SKIP
    return QUEUE if any(v > 0 and old.requests.get(r, 0) > new.requests.get(r, 0)
                        for r, v in pod.requests.items()) else SKIP


def taint_after_node_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """TaintToleration's isSchedulableAfterNodeChange: the node had an untolerated taint
    (a new node counts as having had one) and now has none."""
    new, old = event.new_node, event.old_node
    if new is None:
        return SKIP
    was = True if old is None else _untolerated(old, pod)
    return QUEUE if was and not _untolerated(new, pod) else SKIP


def node_affinity_after_node_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """NodeAffinity's isSchedulableAfterNodeChange: the node matches the pod's required
    affinity now and did not before (or is new)."""
    new, old = event.new_node, event.old_node
    if new is None:
        return SKIP
    affinity = parse_pod(pod)
    if affinity.error is not None:
        raise _Unknown
    if not _node_affinity_matches(affinity, new):
        return SKIP
    return QUEUE if old is None or not _node_affinity_matches(affinity, old) else SKIP


def unschedulable_after_node_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """NodeUnschedulable's isSchedulableAfterNodeChange: the node became schedulable (or is new and schedulable)."""
    new, old = event.new_node, event.old_node
    if new is None:
        return SKIP
    was_schedulable = old is not None and not old.unschedulable
    return QUEUE if not was_schedulable and not new.unschedulable else SKIP


def node_name_after_node_add(pod: PodInfo, event: ClusterEvent) -> Hint:
    """NodeName's isSchedulableAfterNodeAdd: the new node is the one the pod names."""
    new = event.new_node
    return QUEUE if new is not None and (not pod.node_name or pod.node_name == new.name) else SKIP


def ports_after_pod_deleted(pod: PodInfo, event: ClusterEvent) -> Hint:
    """NodePorts' isSchedulableAfterPodDeleted: the deleted assigned pod held a host port
    that collides with one the pod wants."""
    old = event.old_pod
    if old is None or event.new_pod is not None or not old.node_name or not old.host_ports:
        return SKIP
    return QUEUE if any(_ports_conflict(a, b) for a in pod.host_ports for b in old.host_ports) else SKIP


def affinity_after_pod_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """InterPodAffinity's isSchedulableAfterPodChange: an assigned pod added (or relabelled)
    that now matches all the pod's affinity terms; one deleted (or relabelled) that matched
    one of its anti-affinity terms. vecsched also queues on the deletion of a pod whose own
    required anti-affinity matched the pod (the rejection by an existing pod's rule)."""
    old, new = event.old_pod, event.new_pod
    if (new is not None and not new.node_name) or (old is not None and not old.node_name):
        return SKIP
    terms = parse_pod_terms_cached(pod)
    if terms.error is not None:
        raise _Unknown
    affinity, anti = terms.required_affinity, terms.required_anti_affinity
    if old is not None and new is not None:
        if not _matches_all(affinity, old) and _matches_all(affinity, new):
            return QUEUE
        return QUEUE if _matches_any(anti, old) and not _matches_any(anti, new) else SKIP
    if new is not None:
        return QUEUE if _matches_all(affinity, new) else SKIP
    if old is None:
        return SKIP
    if _matches_any(anti, old):
        return QUEUE
    theirs = parse_pod_terms_cached(old)
    return QUEUE if theirs.error is None and _matches_any(theirs.required_anti_affinity, pod) else SKIP


def affinity_after_node_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """InterPodAffinity's isSchedulableAfterNodeChange: a node (new, or relabelled) gained
    or changed an affinity term's topology key; any new node, or one that lost or changed an
    anti-affinity term's topology key."""
    new, old = event.new_node, event.old_node
    if new is None:
        return SKIP
    terms = parse_pod_terms_cached(pod)
    if terms.error is not None:
        raise _Unknown
    for t in terms.required_affinity:
        key = t.topology_key
        if old is None:
            if key in new.labels:
                return QUEUE
            continue
        if key in new.labels and (key not in old.labels or old.labels[key] != new.labels[key]):
            return QUEUE
    for t in terms.required_anti_affinity:
        key = t.topology_key
        if old is None:
            return QUEUE
        if key in old.labels and (key not in new.labels or old.labels[key] != new.labels[key]):
            return QUEUE
    return SKIP


def spread_after_pod_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """PodTopologySpread's isSchedulableAfterPodChange: an assigned pod of the same
    namespace added or deleted that a constraint's selector matches, or relabelled so that
    a selector's verdict on it changed."""
    old, new = event.old_pod, event.new_pod
    for other in (old, new):
        if other is not None and not (other.uid == pod.uid or (other.node_name and other.namespace == pod.namespace)):
            return SKIP
    constraints = _spread_constraints(pod)
    if old is not None and new is not None:
        if old.labels == new.labels:
            return SKIP
        return QUEUE if any(c.selector.matches(old.labels) != c.selector.matches(new.labels)
                            for c in constraints) else SKIP
    other = new if new is not None else old
    if other is None:
        return SKIP
    return QUEUE if any(c.selector.matches(other.labels) for c in constraints) else SKIP


def spread_after_node_change(pod: PodInfo, event: ClusterEvent) -> Hint:
    """PodTopologySpread's isSchedulableAfterNodeChange: a node with every topology key
    added or deleted; one updated into or out of having them, or, having them, whose
    topology values or taints changed."""
    new, old = event.new_node, event.old_node
    constraints = _spread_constraints(pod)

    def matching(node: NodeInfo | None) -> bool:
        return node is not None and all(c.topology_key in node.labels for c in constraints)

    if old is not None and new is not None:
        if matching(old) != matching(new):
            return QUEUE
        changed = any(old.labels.get(c.topology_key) != new.labels.get(c.topology_key) for c in constraints)
        return QUEUE if matching(new) and (changed or old.taints != new.taints) else SKIP
    return QUEUE if matching(new if new is not None else old) else SKIP


def coscheduling_after_pod_add(pod: PodInfo, event: ClusterEvent) -> Hint:
    """vecsched's Coscheduling: a pod of the same PodGroup arrived on a node (its quorum
    may be complete now)."""
    new = event.new_pod
    group = group_of(pod)
    return QUEUE if new is not None and group and group_of(new) == group else SKIP


# ---- the registry ---------------------------------------------------------------------------


def _kinds(resource: str, *actions: str) -> frozenset[tuple[str, str]]:
    return frozenset((resource, a) for a in actions)


def _reg(kinds: Iterable[tuple[str, str]], hint: HintFn | None = None) -> Registration:
    return Registration(frozenset(kinds), hint)


STORAGE_EVENTS: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    ("PersistentVolume", ADD): frozenset({"VolumeBinding", "VolumeZone"}),
    ("PersistentVolume", UPDATE): frozenset({"VolumeBinding", "VolumeZone"}),
    ("PersistentVolumeClaim", ADD): frozenset({"VolumeBinding", "VolumeZone", "NodeVolumeLimits",
                                               "VolumeRestrictions"}),
    ("PersistentVolumeClaim", UPDATE): frozenset({"VolumeBinding", "VolumeZone"}),
    ("StorageClass", ADD): frozenset({"VolumeBinding", "VolumeZone"}),
    ("StorageClass", UPDATE): frozenset({"VolumeBinding"}),
    ("CSINode", ADD): frozenset({"VolumeBinding", "NodeVolumeLimits"}),
    ("CSINode", UPDATE): frozenset({"VolumeBinding"}),
    ("CSIDriver", UPDATE): frozenset({"VolumeBinding"}),
    ("CSIStorageCapacity", ADD): frozenset({"VolumeBinding"}),
    ("CSIStorageCapacity", UPDATE): frozenset({"VolumeBinding"}),
}
"""Storage events -> the volume plugins registering them, as their EventsToRegister say
(volumebinding, volumezone, nodevolumelimits/csi.go, volumerestrictions). Deletions
help no pod."""

_ASSIGNED_POD_DELETE: Final = _kinds(ASSIGNED_POD, DELETE)

DEFAULT_REGISTRATION: Final = (_reg(_NODE_CHANGES | _ASSIGNED_POD_DELETE),)
"""What a plugin unknown to this module registers: the events that moved every parked pod
before hints (a node added or changed, an assigned pod deleted), without hints."""


def _volume(name: str) -> tuple[Registration, ...]:
    storage = frozenset(kind for kind, plugins in STORAGE_EVENTS.items() if name in plugins)
    return (_reg(storage | _NODE_CHANGES | _ASSIGNED_POD_DELETE),)


_GPU: Final = (_reg(_NODE_CHANGES | _kinds(ASSIGNED_POD, DELETE, UPDATE_POD_SCALE_DOWN)),)

REGISTRY: Final[Mapping[str, tuple[Registration, ...]]] = {
    "NodeResourcesFit": (
        _reg(_kinds(NODE, ADD, UPDATE_NODE_ALLOCATABLE), fit_after_node_change),
        _reg(_kinds(ASSIGNED_POD, DELETE, UPDATE_POD_SCALE_DOWN), fit_after_pod_event)),
    "TaintToleration": (_reg(_kinds(NODE, ADD, UPDATE_NODE_TAINT), taint_after_node_change),),
    "NodeAffinity": (_reg(_kinds(NODE, ADD, UPDATE_NODE_LABEL), node_affinity_after_node_change),),
    "NodeUnschedulable": (_reg(_kinds(NODE, ADD, UPDATE_NODE_TAINT), unschedulable_after_node_change),),
    "NodeName": (_reg(_kinds(NODE, ADD), node_name_after_node_add),),
    "NodePorts": (
        _reg(_kinds(NODE, ADD)),
        _reg(_ASSIGNED_POD_DELETE, ports_after_pod_deleted)),
    "InterPodAffinity": (
        _reg(_kinds(ASSIGNED_POD, ADD, UPDATE_POD_LABEL, DELETE), affinity_after_pod_change),
        _reg(_kinds(NODE, ADD, UPDATE_NODE_LABEL), affinity_after_node_change)),
    "PodTopologySpread": (
        _reg(_kinds(ASSIGNED_POD, ADD, UPDATE_POD_LABEL, DELETE), spread_after_pod_change),
        _reg(_kinds(NODE, ADD, DELETE, UPDATE_NODE_LABEL, UPDATE_NODE_TAINT), spread_after_node_change)),
    "VolumeBinding": _volume("VolumeBinding"),
    "VolumeZone": _volume("VolumeZone"),
    "NodeVolumeLimits": _volume("NodeVolumeLimits"),
    "VolumeRestrictions": _volume("VolumeRestrictions"),
    "Coscheduling": (
        _reg(_NODE_CHANGES | _ASSIGNED_POD_DELETE | _kinds(POD_GROUP, ADD, UPDATE)),
        _reg(_kinds(ASSIGNED_POD, ADD), coscheduling_after_pod_add)),
    **{name: _GPU for name in ("GpuShare", "GpuPacking", "GpuBestFit", "GpuDotProduct", "GpuClustering", "FGD")},
}
"""Plugin name -> its registrations (upstream's EventsToRegister with queueing hints)."""


def registrations(plugin: str) -> tuple[Registration, ...]:
    """A plugin's registrations; ``DEFAULT_REGISTRATION`` for a plugin not in ``REGISTRY``."""
    return REGISTRY.get(plugin, DEFAULT_REGISTRATION)


def _build_interest() -> dict[tuple[str, str], frozenset[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for name, regs in REGISTRY.items():
        for reg in regs:
            for kind in reg.kinds:
                out.setdefault(kind, set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


_INTEREST: Final = _build_interest()
_DEFAULT_KINDS: Final = frozenset(k for reg in DEFAULT_REGISTRATION for k in reg.kinds)


def interest(event: ClusterEvent) -> tuple[frozenset[str], bool]:
    """(the known plugins that register the event's kind, whether unknown plugins do):
    which parked pods the queue needs to ask about at all."""
    return _INTEREST.get(event.kind, frozenset()), event.kind in _DEFAULT_KINDS


def _hint(fn: HintFn, pod: PodInfo, event: ClusterEvent) -> Hint:
    try:
        return fn(pod, event)
    except _Unknown:
        return QUEUE
    except Exception:  # upstream: a hint's error means Queue -- never lose a pod to a hint's fault
        return QUEUE


def worth_requeuing(*, pod: PodInfo, plugins: frozenset[str], event: ClusterEvent) -> bool:
    """upstream's isPodWorthRequeuing: no rejecting plugin, or one that registered the
    event's kind and whose hint (if any) says QUEUE."""
    if not plugins:
        return True
    kind = event.kind
    for name in plugins:
        for reg in registrations(name):
            if kind in reg.kinds and (reg.hint is None or _hint(reg.hint, pod, event) is QUEUE):
                return True
    return False


_: tuple[HintFn, ...] = (fit_after_node_change, fit_after_pod_event, taint_after_node_change,
                         node_affinity_after_node_change, unschedulable_after_node_change, node_name_after_node_add,
                         ports_after_pod_deleted, affinity_after_pod_change, affinity_after_node_change,
                         spread_after_pod_change, spread_after_node_change, coscheduling_after_pod_add)
