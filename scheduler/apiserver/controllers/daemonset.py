"""The DaemonSet controller: one pod on every node its template can run on, as nodes come and go.

Node agents (log shippers, monitoring, CNI) and the demo's per-node workloads
need kube-controller-manager's behaviour: a node is eligible when the
template's ``nodeSelector`` and required node affinity match it and its
NoSchedule/NoExecute taints are tolerated -- by the template's tolerations
plus the ones upstream adds to every daemon pod -- and then it gets exactly
one pod, pinned to it by required node affinity on ``metadata.name`` but
placed by the scheduler the template names (so ``schedulerName: vecsched``
means vecsched binds it). Nodes joining, leaving or changing labels or taints
create and delete daemon pods; failed pods are replaced. ``RollingUpdate``
replaces out-of-date pods within ``maxUnavailable`` (or, with ``maxSurge``,
starts the new pod beside the old one first); ``OnDelete`` leaves that to
users. Status and Events are upstream's, so ``kubectl rollout status
daemonset/<name>`` works.

This follows ``pkg/controller/daemon`` (``podsShouldBeOnNode``,
``manage``/``syncNodes``, ``rollingUpdate``, ``constructHistory``/
``cleanupHistory``, ``updateDaemonSetStatus``); which nodes a set's pod
belongs on (``NodeShouldRunDaemonPod``, ``daemon/util``) is answered by
``daemonnodes.py``, and its revisions are ``revisions.History``'s.
Reconciling is O(nodes + the set's pods): node labels and taints are kept by
a listener and pods are read through the shared ``PodIndex``, so nothing is
decoded twice and nothing scans all pods. Simplified or left out: a pod bound
to a node that was deleted is deleted at once, as upstream's pod garbage
collector would after its quarantine; orphaned pods are not adopted and owned
pods are not released when labels change; a failed pod's replacement is paced
by the per-node backoff only (no extra rate-limited retry of the whole set).
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from scoring.objects import Taint

from .. import errors
from ..store import Entry
from .base import Controller, ControllerContext, Key, Mapper, owner_ref
from .daemonnodes import daemon_tolerations, pin_to_node, should_run, target_node
from .pods import PodInfo
from .revisions import REVISION_LABEL, History

__all__ = ["DaemonSetController"]

DAEMONSETS: Final = "daemonsets.apps"
NODES: Final = "nodes"
PODS: Final = "pods"
# Upstream's BurstReplicas: at most this many creations (and deletions) per sync; the pods'
# own events bring the set back for the rest.
_BURST: Final = 250
# Writes here are synchronous, so the event loop is also yielded every this many pods inside a
# slow-start batch, which keeps the API server answering while a 5,000-node set fills up.
_YIELD_EVERY: Final = 64
# Failed daemon pods on a node are replaced with a per-node backoff of 1 s doubling to 15 min
# (upstream's failedPodsBackoff), so a kubelet that keeps rejecting a pod is not hot-looped.
_FAILED_BACKOFF: Final = 1.0
_FAILED_BACKOFF_MAX: Final = 15 * 60.0


def _scaled(value: Any, total: int) -> int:
    """``GetScaledValueFromIntOrPercent`` rounding up: an int, or a percentage of ``total``."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


# ---- daemon pods -------------------------------------------------------------------------------------


def _hash(p: PodInfo) -> str:
    return p.labels.get(REVISION_LABEL, "")


def _order(p: PodInfo) -> tuple[bool, float, str]:
    """``podByCreationTimestampAndPhase``: bound pods first, then the oldest, then by name."""
    return not p.node, p.created, p.name


def _new_and_old(pods: Iterable[PodInfo], hash_: str) -> tuple[PodInfo | None, PodInfo | None] | None:
    """The node's one up-to-date and one out-of-date pod, ignoring deleted ones; None when it has
    more of either (``findUpdatedPodsOnNode``)."""
    live = [p for p in pods if not p.deleting]
    new, old = [p for p in live if _hash(p) == hash_], [p for p in live if _hash(p) != hash_]
    return None if len(new) > 1 or len(old) > 1 else (new[0] if new else None, old[0] if old else None)


class DaemonSetController(Controller):
    """Keeps one up-to-date daemon pod on every eligible node, and the DaemonSets' status."""

    name = "daemonset-controller"
    primary = DAEMONSETS

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self.history = History(client=self.client, view=self.view)
        self._sets = self.client.type(DAEMONSETS)
        self.pods = ctx.pods
        self._pod_type = self.client.type(PODS)
        self._pinned: dict[str, str] = {}  # pod uid -> the node its affinity names (immutable once created)
        self._nodes: dict[str, tuple[Mapping[str, str], tuple[Taint, ...]]] = {}  # name -> (labels, taints)
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (set uid, node) -> (delay, since)
        for e in self.store.entries(self.client.type(NODES)):
            self._nodes[e.name] = self._node_facts(e)

    # ---- what enqueues a set -------------------------------------------------------------------------

    def watches(self) -> Mapping[str, Mapper]:
        owner = self.enqueue_owner("DaemonSet")

        def on_pod(old: Entry | None, new: Entry | None) -> Iterable[Key]:
            if new is None and old is not None:
                self._pinned.pop(old.uid, None)
            return owner(old, new)

        return {PODS: on_pod, NODES: self._on_node, "controllerrevisions.apps": owner}

    @staticmethod
    def _node_facts(e: Entry) -> tuple[Mapping[str, str], tuple[Taint, ...]]:
        taints = ((e.obj().get("spec") or {}).get("taints") or []) if b'"taints"' in e.raw else []
        return dict(e.labels), tuple(Taint(key=str(t.get("key") or ""), value=str(t.get("value") or ""),
                                           effect=str(t.get("effect") or "")) for t in taints)

    def _on_node(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """Every set looks again when a node comes, goes, or changes labels or taints."""
        if new is None:
            if old is None or self._nodes.pop(old.name, None) is None:
                return ()
        else:
            facts = self._node_facts(new)
            if self._nodes.get(new.name) == facts:
                return ()
            self._nodes[new.name] = facts
        return [(e.namespace, e.name) for e in self.store.entries(self._sets)]

    # ---- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        entry = self.store.find(self._sets, *key)
        if entry is None:
            return None
        ds = entry.obj()
        if ds["metadata"].get("deletionTimestamp"):
            return None  # its revisions may already be gone: upstream leaves such a set alone
        cur, old, collisions = self.history.daemonset_revisions(ds)
        hash_ = cur["metadata"]["labels"][REVISION_LABEL]
        spec = (ds["spec"].get("template") or {}).get("spec") or {}
        tolerations = daemon_tolerations(spec)
        wanted = {name: should_run(spec, tolerations=tolerations, name=name, labels=labels, taints=taints)
                  for name, (labels, taints) in self._nodes.items()}
        delays = [await self._manage(ds, wanted, hash_)]
        await asyncio.sleep(0)  # each phase walks every node: let the API server answer in between
        if (ds["spec"].get("updateStrategy") or {}).get("type") == "RollingUpdate":
            await self._rolling_update(ds, wanted, hash_)
            await asyncio.sleep(0)
        self._cleanup_history(ds, old)
        ready, available = self._write_status(ds, wanted, hash_, collisions)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        if min_ready and ready != available:
            delays.append(float(min_ready))  # look again once ready pods may have become available
        pending = [d for d in delays if d is not None]
        return min(pending) if pending else None

    def _daemon_pods(self, ds: Mapping[str, Any], *, with_deleted_terminal: bool = False
                     ) -> dict[str, list[PodInfo]]:
        """The set's pods by target node (``getNodesToDaemonPods``), each version parsed once."""
        out: dict[str, list[PodInfo]] = {}
        uid = ds["metadata"]["uid"]
        for ref in self.view.owned(uid, PODS):
            e = self.store.find(self._pod_type, ref.namespace, ref.name)
            if e is None or e.controller is None or e.controller[2] != uid:
                continue
            p = self.pods.info(e)
            if not with_deleted_terminal and p.deleting and not p.terminating:
                continue  # finished and being deleted: nothing left to do with it
            node = p.node or self._pinned.get(e.uid)
            if node is None:
                node = self._pinned[e.uid] = target_node(e.obj())
            out.setdefault(node, []).append(p)
        return out

    async def _manage(self, ds: dict[str, Any], wanted: Mapping[str, tuple[bool, bool]], hash_: str) -> float | None:
        """Create missing daemon pods and delete excess, failed and misplaced ones (``manage``)."""
        by_node = self._daemon_pods(ds)
        surge = self._surge_unavailable(ds, 1)[0] > 0  # AllowsSurge
        create: list[str] = []
        delete: list[PodInfo] = []
        force: list[PodInfo] = []
        retry: float | None = None
        now = time.monotonic()
        for node, (run, keep) in wanted.items():
            pods = by_node.get(node)
            if run and not pods:
                create.append(node)
            elif keep:
                running = []
                for p in pods or ():
                    if p.deleting:
                        continue
                    if p.phase == "Failed":
                        wait = self._failed_backoff(ds, node, now)
                        if wait is not None:
                            retry = wait if retry is None else min(retry, wait)
                            continue
                        self.event(ds, type="Warning", reason="FailedDaemonPod",
                                   message=f"Found failed daemon pod {p.namespace}/{p.name} on node {node}, "
                                           "will try to kill it")
                        delete.append(p)
                    elif p.phase == "Succeeded":
                        delete.append(p)
                    else:
                        running.append(p)
                running.sort(key=_order)
                if not surge:
                    delete.extend(running[1:])  # one pod per node: the oldest stays
                elif not running:
                    if run:
                        create.append(node)
                elif len(running) > 1:
                    delete.extend(self._surge_excess(ds, running, hash_))
            elif pods:
                delete.extend(p for p in pods if not p.deleting)
        for node, pods in by_node.items():
            if node not in wanted:  # the node is gone: nothing will ever run or stop these pods
                force.extend(p for p in pods if not p.deleting or p.node)
        await self._sync_nodes(ds, create=create, delete=delete, force=force, hash_=hash_)
        return retry

    def _surge_excess(self, ds: Mapping[str, Any], running: list[PodInfo], hash_: str) -> list[PodInfo]:
        """With surge, a node keeps its oldest new pod and its oldest old pod until the new one is available."""
        min_ready, now = int(ds["spec"].get("minReadySeconds") or 0), time.time()
        new = next((p for p in running if _hash(p) == hash_), None)
        old = next((p for p in running if _hash(p) != hash_), None)
        excess = [p for p in running if p is not new and p is not old]
        if new is not None and old is not None and (
                not old.ready or new.available(min_ready_seconds=min_ready, now=now)):
            excess.append(old)
        return excess

    def _failed_backoff(self, ds: Mapping[str, Any], node: str, now: float) -> float | None:
        """Seconds to wait before deleting another failed pod on ``node``, or None (and the backoff grows)."""
        key = (ds["metadata"]["uid"], node)
        delay, since = self._backoff.get(key, (0.0, 0.0))
        if now - since < delay:
            return delay
        fresh = delay == 0.0 or now - since > 2 * _FAILED_BACKOFF_MAX
        self._backoff[key] = (_FAILED_BACKOFF if fresh else min(2 * delay, _FAILED_BACKOFF_MAX), now)
        return None

    @staticmethod
    def _surge_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) of a RollingUpdate out of ``desired`` (``SurgeCount``/``UnavailableCount``)."""
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type") != "RollingUpdate":
            return 0, 0
        ru = strategy.get("rollingUpdate") or {}
        return _scaled(ru.get("maxSurge"), desired), _scaled(ru.get("maxUnavailable"), desired)

    async def _sync_nodes(self, ds: dict[str, Any], *, create: list[str], delete: list[PodInfo], force: list[PodInfo],
                          hash_: str) -> None:
        """Create pods on nodes and delete pods (``syncNodes``), at most 250 of each per sync, creations in
        slow-start batches of 1, 2, 4, ... with the event loop free between batches."""
        template = copy.deepcopy(ds["spec"].get("template") or {})
        tmeta, spec = template.get("metadata") or {}, template.get("spec") or {}
        spec["tolerations"] = daemon_tolerations(spec)
        meta: dict[str, Any] = {"generateName": f"{ds['metadata']['name']}-", "namespace": ds["metadata"]["namespace"],
                                "labels": {**(tmeta.get("labels") or {}), REVISION_LABEL: hash_},
                                "ownerReferences": [owner_ref(ds)]}
        for f in ("annotations", "finalizers"):
            if tmeta.get(f):
                meta[f] = tmeta[f]
        nodes = create[:_BURST]
        i, batch = 0, 1
        while i < len(nodes):
            for k, node in enumerate(nodes[i:i + batch], 1):
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": copy.deepcopy(meta),
                       "spec": {**copy.deepcopy(spec), "affinity": pin_to_node(spec.get("affinity"), node=node)}}
                try:
                    created = await self.client.create_admitted(PODS, pod)
                except errors.ApiError as e:
                    self.event(ds, type="Warning", reason="FailedCreate", message=f"Error creating: {e.message}")
                    raise  # the rest of the slow start is skipped; the retry starts again at 1
                self.event(ds, reason="SuccessfulCreate", message=f"Created pod: {created['metadata']['name']}")
                if k % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            i += batch
            batch *= 2
            await asyncio.sleep(0)
        for k, (p, grace) in enumerate([*((p, None) for p in delete[:_BURST]), *((p, 0) for p in force[:_BURST])], 1):
            if self.client.delete(PODS, p.namespace, p.name, uid=p.uid, grace=grace):
                self.event(ds, reason="SuccessfulDelete", message=f"Deleted pod: {p.name}")
            if k % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _rolling_update(self, ds: dict[str, Any], wanted: Mapping[str, tuple[bool, bool]], hash_: str) -> None:
        """Replace out-of-date pods within maxUnavailable, or surge new ones within maxSurge (``rollingUpdate``)."""
        by_node = self._daemon_pods(ds)
        desired = 0
        for node, (run, _) in wanted.items():
            if run:
                desired += 1
                by_node.setdefault(node, [])
        max_surge, max_unavailable = self._surge_unavailable(ds, desired)
        if desired and not max_surge and not max_unavailable:
            max_unavailable = 1  # an impossible configuration: upstream accepts unavailability
        min_ready, now = int(ds["spec"].get("minReadySeconds") or 0), time.time()

        def up(p: PodInfo) -> bool:
            return p.available(min_ready_seconds=min_ready, now=now)

        delete: list[PodInfo] = []
        create: list[str] = []
        if not max_surge:
            unavailable, candidates = 0, list[PodInfo]()
            for pods in by_node.values():
                new, old = _new_and_old(pods, hash_) or (None, None)
                if new is not None:
                    unavailable += old is not None or not up(new)  # with an old pod: the manage loop's business
                elif old is None:
                    unavailable += 1  # no pod (or excess pods, left to the manage loop)
                elif not up(old):
                    delete.append(old)  # an unavailable old pod is replaced at once
                    unavailable += 1
                elif unavailable < max_unavailable:
                    candidates.append(old)
            delete.extend(candidates[:max(0, min(max_unavailable - unavailable, len(candidates)))])
        else:
            surged, available, surge_to, leaving = 0, 0, list[str](), list[PodInfo]()
            for node, pods in by_node.items():
                found = _new_and_old(pods, hash_)
                if found is None:
                    surged += 1
                    continue
                new, old = found
                counted = old if old is not None else new
                if counted is not None and up(counted):
                    available += 1
                if old is None:
                    continue
                if new is None:
                    if not wanted.get(node, (False, False))[0]:
                        (delete if not up(old) else leaving).append(old)
                    elif not up(old):
                        create.append(node)  # an unavailable old pod gets its replacement at once
                    elif surged < max_surge:
                        surge_to.append(node)
                elif not up(new):
                    surged += 1
                else:
                    delete.append(old)
            delete.extend(p for p in leaving[:max(0, available - desired)] if not p.deleting)
            create.extend(surge_to[:max(0, min(max_surge - surged, len(surge_to)))])
        if delete or create:
            await self._sync_nodes(ds, create=create, delete=delete, force=[], hash_=hash_)

    # ---- history and status ----------------------------------------------------------------------------

    def _cleanup_history(self, ds: Mapping[str, Any], old: list[dict[str, Any]]) -> None:
        """``cleanupHistory``: revisions used by any pod, even a finished one being deleted, stay."""
        if len(old) > int(ds["spec"].get("revisionHistoryLimit", 10)):
            pods = self._daemon_pods(ds, with_deleted_terminal=True).values()
            self.history.cleanup(ds, old, live_hashes={_hash(p) for on_node in pods for p in on_node})

    def _write_status(self, ds: dict[str, Any], wanted: Mapping[str, tuple[bool, bool]], hash_: str,
                      collisions: int | None) -> tuple[int, int]:
        """Count and store the status (``updateDaemonSetStatus``); returns (numberReady, numberAvailable)."""
        by_node = self._daemon_pods(ds)
        min_ready, now = int(ds["spec"].get("minReadySeconds") or 0), time.time()
        desired = current = misscheduled = ready = available = updated = 0
        for node, (run, _) in wanted.items():
            pods = by_node.get(node)
            if not run:
                misscheduled += bool(pods)
            elif pods:
                current += 1
                pod = min(pods, key=_order)
                if pod.ready:
                    ready += 1
                    available += pod.available(min_ready_seconds=min_ready, now=now)
                updated += _hash(pod) == hash_
            desired += run
        old = ds.get("status") or {}
        status: dict[str, Any] = {
            **{k: v for k, v in old.items() if k == "conditions"},
            "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired, "numberReady": ready,
            "observedGeneration": int(ds["metadata"].get("generation") or 0), "updatedNumberScheduled": updated,
            "numberAvailable": available, "numberUnavailable": desired - available}
        if collisions is not None:
            status["collisionCount"] = collisions
        # Fields Go leaves out when zero (omitempty), so the object reads as upstream's.
        for f in ("observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            if not status[f]:
                del status[f]
        if status != old:
            ds["status"] = status
            self.client.update_status(DAEMONSETS, ds)
        return ready, available


_: type[Controller] = DaemonSetController
