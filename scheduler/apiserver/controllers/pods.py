"""Pods as the workload controllers see them: who owns them, what state they are in, which go first.

Every controller that keeps a number of pods (ReplicaSets and
ReplicationControllers here; Jobs, StatefulSets and DaemonSets later) asks the
same questions of the pods around it, with kube-controller-manager's answers:
is a pod *active* (neither terminating nor finished), *ready*, *available*
(ready for ``minReadySeconds``); which pods does an owner control, and which
orphans could it adopt; how is a pod built from a template; and when there
are too many, which pods are deleted first (``controller.ActivePodsWithRanks``).

Reading a pod means parsing its JSON, and a 10,000-replica ReplicaSet is
synced after every write to any of its pods, so ``PodIndex`` parses each pod
write once, as the store's listener, and keeps per owner the parsed pods and
counts per label set (upstream's informers keep an owner index the same way);
a sync then costs a few additions, not a pass over 10,000 pods.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ..resources import builtin
from ..store import Entry, Store
from .base import ClusterView, owner_ref

__all__ = [
    "PodInfo",
    "PodGroup",
    "PodIndex",
    "LabelMatcher",
    "controlled_pods",
    "pod_phase",
    "POD_DELETION_COST",
    "parse_time",
    "selector_matcher",
    "pod_from_template",
    "pods_to_delete",
]

PODS: Final = builtin("pods")
_PHASE: Final = PODS.field_index("status.phase")
_TERMINAL: Final = frozenset({"Succeeded", "Failed"})

POD_DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"
"""Annotation that ranks pods for deletion: lower cost goes first (an int32; anything else counts as 0)."""

# Upstream's podPhaseToOrdinal: Pending < Unknown < Running; any other phase maps to Go's zero value.
_PHASE_ORDINAL: Final = {"Pending": 0, "Unknown": 1, "Running": 2}
_INT32: Final = re.compile(r"[+-]?[0-9]+")
_GENERATE_NAME_MAX: Final = 253  # a DNS subdomain, as ValidatePodName checks the generateName prefix

LabelMatcher = Callable[[Mapping[str, str]], bool]
"""A compiled label selector: labels -> whether they match."""


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, or None when absent or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What controllers read of one stored version of a pod."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    node: str
    phase: str
    deleting: bool
    """``metadata.deletionTimestamp`` is set."""
    ready: bool
    ready_since: float | None
    """``lastTransitionTime`` of the True Ready condition (epoch seconds)."""
    created: float
    restarts: int
    """The highest ``restartCount`` of the pod's containers."""
    deletion_cost: int

    @property
    def active(self) -> bool:
        """``controller.IsPodActive``: not finished and not being deleted."""
        return self.phase not in _TERMINAL and not self.deleting

    @property
    def terminating(self) -> bool:
        """Being deleted but not finished (what ``status.terminatingReplicas`` counts)."""
        return self.deleting and self.phase not in _TERMINAL

    def available(self, *, min_ready_seconds: int, now: float) -> bool:
        """``podutil.IsPodAvailable``: ready, and for longer than ``min_ready_seconds``."""
        if not self.ready:
            return False
        if min_ready_seconds <= 0:
            return True
        return self.ready_since is not None and self.ready_since + min_ready_seconds < now

    def available_in(self, *, min_ready_seconds: int, now: float) -> float | None:
        """Seconds until a ready pod becomes available, None when that will not happen by waiting."""
        if not self.ready or self.ready_since is None or min_ready_seconds <= 0:
            return None
        left = self.ready_since + min_ready_seconds - now
        return left if left >= 0 else None


def _summarize(obj: Mapping[str, Any]) -> PodInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ready, ready_since = False, None
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            ready = c.get("status") == "True"
            ready_since = parse_time(c.get("lastTransitionTime")) if ready else None
            break
    restarts = max((int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or []
                    if isinstance(s, dict)), default=0)
    cost = 0
    raw_cost = (meta.get("annotations") or {}).get(POD_DELETION_COST)
    if isinstance(raw_cost, str) and _INT32.fullmatch(raw_cost) and -2**31 <= int(raw_cost) < 2**31:
        cost = int(raw_cost)
    return PodInfo(namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", ""),
                   labels=dict(meta.get("labels") or {}), node=spec.get("nodeName") or "",
                   phase=status.get("phase") or "", deleting=bool(meta.get("deletionTimestamp")), ready=ready,
                   ready_since=ready_since, created=parse_time(meta.get("creationTimestamp")) or 0.0,
                   restarts=restarts, deletion_cost=cost)


@dataclass
class PodGroup:
    """Counts of an owner's pods that carry one identical set of labels."""

    labels: Mapping[str, str]
    pods: int = 0
    active: int = 0
    ready: int = 0
    """Active and ready."""
    terminating: int = 0


class PodIndex:
    """The pods of owners of some kinds, parsed and counted as they are written; each namespace's orphans.

    For every (namespace, controller uid) it keeps the ``PodInfo`` of each pod
    and ``PodGroup`` counts per distinct label set, updated by a store listener
    (one parse per pod write), so a sync of a 10,000-pod owner sums a group or
    two instead of reading 10,000 pods; pods are walked only to pick which to
    delete, release, or wait for. Orphans (no controller) are kept by name.
    """

    def __init__(self, *, store: Store, kinds: Iterable[str]) -> None:
        self.store = store
        self.kinds = frozenset(kinds)
        self._owned: dict[tuple[str, str], dict[str, PodInfo]] = {}
        self._groups: dict[tuple[str, str], dict[frozenset[tuple[str, str]], PodGroup]] = {}
        self._infos: dict[tuple[str, str], tuple[int, PodInfo]] = {}
        self._orphans: dict[str, set[str]] = {}
        for e in store.entries(PODS):
            self._on_write(PODS.key, None, e)
        store.add_listener(PODS.key, self._on_write)

    def _on_write(self, key: str, old: Entry | None, new: Entry | None) -> None:
        cur = new or old
        assert cur is not None
        if new is None or new.controller is not None:
            names = self._orphans.get(cur.namespace)
            if names is not None:
                names.discard(cur.name)
                if not names:
                    del self._orphans[cur.namespace]
        else:
            self._orphans.setdefault(new.namespace, set()).add(new.name)
        if new is None:
            self._infos.pop((cur.namespace, cur.name), None)
        if old is not None and old.controller is not None and old.controller[0] in self.kinds:
            self._count((old.namespace, old.controller[2]), old.name, None)
        if new is not None and new.controller is not None and new.controller[0] in self.kinds:
            self._count((new.namespace, new.controller[2]), new.name, _summarize(new.obj()))

    def _count(self, owner: tuple[str, str], name: str, info: PodInfo | None) -> None:
        """Replace what ``owner`` knows of pod ``name`` (None: it no longer controls it)."""
        pods = self._owned.setdefault(owner, {})
        groups = self._groups.setdefault(owner, {})
        for p, sign in ((pods.pop(name, None), -1), (info, 1)):
            if p is None:
                continue
            k = frozenset(p.labels.items())
            g = groups.get(k)
            if g is None:
                g = groups[k] = PodGroup(labels=p.labels)
            g.pods += sign
            g.active += sign * p.active
            g.ready += sign * (p.active and p.ready)
            g.terminating += sign * p.terminating
            if not g.pods:
                del groups[k]
        if info is not None:
            pods[name] = info
        if not pods:
            del self._owned[owner]
            del self._groups[owner]

    def owned(self, namespace: str, uid: str) -> Mapping[str, PodInfo]:
        """The pods the owner ``uid`` controls in ``namespace``, by name (a live view: copy before awaiting)."""
        return self._owned.get((namespace, uid), {})

    def groups(self, namespace: str, uid: str) -> list[PodGroup]:
        """The owner's pods counted per label set."""
        return list(self._groups.get((namespace, uid), {}).values())

    def info(self, entry: Entry) -> PodInfo:
        """The summary of this stored version of a pod (parsed once per resourceVersion)."""
        k = (entry.namespace, entry.name)
        hit = self._infos.get(k)
        if hit is not None and hit[0] == entry.rv:
            return hit[1]
        info = _summarize(entry.obj())
        self._infos[k] = (entry.rv, info)
        return info

    def orphans(self, namespace: str) -> list[Entry]:
        """Pods in ``namespace`` without a controller ownerReference, by name."""
        out = []
        for name in sorted(self._orphans.get(namespace, ())):
            e = self.store.find(PODS, namespace, name)
            if e is not None and e.controller is None:
                out.append(e)
        return out


def controlled_pods(*, store: Store, view: ClusterView, uid: str, namespace: str) -> list[Entry]:
    """Pods in ``namespace`` whose controller ownerReference has ``uid`` (from the owner index), unordered."""
    out = []
    for ref in view.owned(uid, PODS.key):
        if ref.namespace != namespace:
            continue
        e = store.find(PODS, ref.namespace, ref.name)
        if e is not None and e.controller is not None and e.controller[2] == uid:
            out.append(e)
    return out


def pod_phase(entry: Entry) -> str:
    """A pod's ``status.phase`` without parsing it (the store indexes it for field selectors)."""
    return entry.fields[_PHASE]


def selector_matcher(selector: Mapping[str, Any] | None) -> LabelMatcher:
    """``metav1.LabelSelectorAsSelector``: None selects nothing, ``{}`` everything.

    Raises ValueError for an operator it does not know, as upstream's conversion fails.
    """
    if selector is None:
        return lambda labels: False
    equal = dict(selector.get("matchLabels") or {})
    checks = [_requirement(req) for req in selector.get("matchExpressions") or []]

    def matches(labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in equal.items()) and all(c(labels) for c in checks)

    return matches


def _requirement(req: Mapping[str, Any]) -> LabelMatcher:
    """One matchExpressions entry as a predicate."""
    key, op, values = str(req.get("key")), req.get("operator"), frozenset(req.get("values") or ())
    if op == "In":
        return lambda labels: key in labels and labels[key] in values
    if op == "NotIn":
        return lambda labels: key not in labels or labels[key] not in values
    if op == "Exists":
        return lambda labels: key in labels
    if op == "DoesNotExist":
        return lambda labels: key not in labels
    raise ValueError(f'"{op}" is not a valid label selector operator')


def pod_from_template(template: Mapping[str, Any], *, owner: Mapping[str, Any]) -> dict[str, Any]:
    """``controller.GetPodFromTemplate``: a Pod named ``<owner>-xxxxx`` with the template's metadata.

    Labels, annotations and finalizers come from the template; the owner gets a
    controller ownerReference with ``blockOwnerDeletion``. Raises ValueError when
    the template has no labels (upstream refuses to create such pods).
    """
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    if not labels:
        raise ValueError("unable to create pods, no labels")
    owner_name = owner["metadata"]["name"]
    prefix = f"{owner_name}-" if len(owner_name) < _GENERATE_NAME_MAX else owner_name
    meta: dict[str, Any] = {"generateName": prefix, "namespace": owner["metadata"].get("namespace", ""),
                            "labels": labels, "ownerReferences": [owner_ref(owner)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    spec: dict[str, Any] = json.loads(json.dumps(template.get("spec") or {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _log_rank(t: float, now: float) -> int:
    """floor(log2(now - t in nanoseconds)), -1 for a time not in the past (upstream's logarithmicRankDiff)."""
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _compare_times(a: float | None, b: float | None, *, now: float, uid_a: str, uid_b: str) -> int:
    """Rules 6 and 8: a zero time first, then the more recent one, compared on a log2 scale (ties by uid)."""
    if not a or not b:
        return -1 if not a else 1  # afterOrZero: the zero time sorts first
    rank = _log_rank(a, now) - _log_rank(b, now)
    if rank == 0:
        return -1 if uid_a < uid_b else 1
    return -1 if rank < 0 else 1


def _compare(a: PodInfo, b: PodInfo, ranks: Mapping[str, int], now: float) -> int:
    """``ActivePodsWithRanks.Less`` as a three-way comparison: negative when ``a`` is deleted first."""
    if a.node != b.node and (not a.node or not b.node):
        return -1 if not a.node else 1  # 1. unassigned before assigned
    pa, pb = _PHASE_ORDINAL.get(a.phase, 0), _PHASE_ORDINAL.get(b.phase, 0)
    if pa != pb:
        return pa - pb  # 2. Pending < Unknown < Running
    if a.ready != b.ready:
        return -1 if not a.ready else 1  # 3. not ready before ready
    if a.deletion_cost != b.deletion_cost:
        return -1 if a.deletion_cost < b.deletion_cost else 1  # 4. lower pod-deletion-cost first
    ra, rb = ranks.get(a.node, 0), ranks.get(b.node, 0)
    if ra != rb:
        return -1 if ra > rb else 1  # 5. doubled up on a node before alone
    if a.ready and b.ready and a.ready_since != b.ready_since:
        return _compare_times(a.ready_since, b.ready_since, now=now, uid_a=a.uid, uid_b=b.uid)  # 6. ready shorter
    if a.restarts != b.restarts:
        return -1 if a.restarts > b.restarts else 1  # 7. more restarts first
    if a.created != b.created:
        return _compare_times(a.created, b.created, now=now, uid_a=a.uid, uid_b=b.uid)  # 8. newer first
    return 0


def pods_to_delete(candidates: Sequence[PodInfo], count: int, *, related: Iterable[PodInfo],
                   now: float) -> list[PodInfo]:
    """The ``count`` pods upstream's ReplicaSet controller deletes first, in that order.

    ``related`` are the active and inactive pods of every ReplicaSet sharing the
    owner's controller (upstream's getIndirectlyRelatedPods); a pod's rank is how
    many active related pods share its node. With the LogarithmicScaleDown and
    PodDeletionCost features on (their defaults), ready and creation times
    compare on a log2 scale with ties broken by uid.
    """
    if count >= len(candidates):
        return list(candidates)
    ranks = Counter(p.node for p in related if p.active)

    def compare(a: PodInfo, b: PodInfo) -> int:
        return _compare(a, b, ranks, now)

    return heapq.nsmallest(count, candidates, key=functools.cmp_to_key(compare))
