"""The ReplicaSet and ReplicationController controllers: keep ``spec.replicas`` pods running.

A ReplicaSet is the unit a Deployment scales, so everything a rollout promises
(surge and unavailability bounds, which pods go first when scaling down, the
``readyReplicas``/``availableReplicas`` that ``kubectl rollout status`` and the
Deployment controller read) rests on this loop behaving as
kube-controller-manager's ``pkg/controller/replicaset`` does:

- claim pods: the active pods it controls that still match its selector, plus
  active orphans in its namespace that match (adopted with a controller
  ownerReference); owned pods that stopped matching are released;
- create the missing pods from the template in slow-start batches (1, 2, 4, ...)
  of at most ``burstReplicas`` (500) per sync, stopping at the first batch with
  a failure, which becomes a ``FailedCreate`` Event and a ``ReplicaFailure``
  condition; or delete the excess in upstream's preference order
  (``pods.pods_to_delete``);
- write ``status`` from the pods it saw *before* acting (as upstream) -- except
  after deleting pods, when it counts without them (below) -- with
  ``terminatingReplicas`` (the DeploymentReplicaSetTerminatingReplicas feature,
  on by default since 1.35) and ``observedGeneration``; requeue when a ready pod
  will become available after ``minReadySeconds``.

A sync follows every write to any of the set's pods, so it must not cost a
pass over them: ``pods.PodIndex`` counts each set's pods per label set as they
are written, and a sync sums those counts. Pods are walked only to pick the
ones to delete, to release pods relabelled away, or, with ``minReadySeconds``,
to tell which ready pods are available yet.

Simplified: the store is always current, so there are no expectations (a sync
always acts on what is stored), and the status written after deleting pods
already leaves them out, where upstream's is one sync late (its next sync, on the
deletions' watch events, corrects it; a Deployment reading the set in between
would see the deleted pods as available); creates and deletes of a batch run one after
another rather than in parallel, yielding to the event loop every 50 and
between batches; "related pods" for the colocation rank are the pods
*controlled by* ReplicaSets of the same owner, not all pods their selectors
match; a burst stops early if its ReplicaSet is deleted meanwhile.

ReplicationControllers (core/v1) run the same loop (``ReplicationManager``):
their selector is a plain label map, defaulting to the template's labels.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from .. import errors
from ..objects import now_rfc3339
from ..resources import builtin
from ..store import Entry
from .base import Controller, ControllerContext, Key, Mapper
from .pods import LabelMatcher, PodInfo, pod_from_template, pods_to_delete, selector_matcher

__all__ = ["ReplicaSetController", "ReplicationManager", "BURST_REPLICAS"]

log = logging.getLogger("vecsched.apiserver.controllers")

BURST_REPLICAS: Final = 500
"""Upstream's BurstReplicas: at most this many pods are created or deleted per sync."""
_SLOW_START_INITIAL_BATCH: Final = 1  # upstream's SlowStartInitialBatchSize
# A timer set for a pod's availability fires this much after the exact instant, since
# IsPodAvailable needs readySince + minReadySeconds to be strictly before now.
_AVAILABILITY_SLACK: Final = 0.05
_TERMINATING_NAMESPACE: Final = "because it is being terminated"  # the NamespaceTerminating refusal
# Upstream creates (or deletes) a batch concurrently; here they run in turn, yielding every so many
# so that a batch of 256 does not hold the event loop (~0.6 ms a create with its Event: ~30 ms).
_YIELD_EVERY: Final = 50

PODS: Final = builtin("pods")


class _ManageError(Exception):
    """Why creating or deleting pods failed; its text becomes the ReplicaFailure message."""

    def __init__(self, message: str, *, reason: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.cause = cause
        """The API error behind it, re-raised so that the sync is retried with backoff."""


class ReplicaSetController(Controller):
    """``pkg/controller/replicaset``: one ReplicaSet's pods, created, adopted, released and deleted."""

    name: ClassVar[str] = "replicaset-controller"
    primary: ClassVar[str] = "replicasets.apps"
    kind: ClassVar[str] = "ReplicaSet"
    tracks_terminating: ClassVar[bool] = True
    """Whether the kind's status has ``terminatingReplicas`` (ReplicationControllers do not)."""

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self.rt = self.store.type(self.primary)
        self.pods = ctx.pods
        self._matchers: dict[tuple[str, str], tuple[int, LabelMatcher]] = {}

    # ---- which keys a write concerns --------------------------------------------------------

    def watches(self) -> Mapping[str, Mapper]:
        return {PODS.key: self._pod_keys}

    def _pod_keys(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """The owner of a pod, or, for an orphan created or relabelled, every set that selects it."""
        keys = set()
        for e in (old, new):
            if e is not None and e.controller is not None and e.controller[0] == self.kind:
                keys.add((e.namespace, e.controller[1]))
        if new is not None and new.controller is None and (
                old is None or old.controller is not None or old.labels != new.labels):
            for owner in self.store.entries(self.rt, new.namespace):
                matcher = self._matcher(owner)
                if matcher is not None and matcher(new.labels):
                    keys.add((owner.namespace, owner.name))
        return keys

    def selector(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The kind's selector as a LabelSelector (ReplicationControllers override this)."""
        selector: Mapping[str, Any] | None = (obj.get("spec") or {}).get("selector")
        return selector

    def _matcher(self, entry: Entry) -> LabelMatcher | None:
        """The entry's compiled selector, cached per resourceVersion; None when it is not valid."""
        k = (entry.namespace, entry.name)
        hit = self._matchers.get(k)
        if hit is not None and hit[0] == entry.rv:
            return hit[1]
        try:
            matcher = selector_matcher(self.selector(entry.obj()))
        except ValueError as e:
            log.warning("%s %s/%s: invalid selector: %s", self.kind, entry.namespace, entry.name, e)
            return None
        self._matchers[k] = (entry.rv, matcher)
        return matcher

    # ---- the sync --------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        ns, name = key
        entry = self.store.find(self.rt, ns, name)
        if entry is None:
            self._matchers.pop(key, None)
            return None
        matcher = self._matcher(entry)
        if matcher is None:
            return None
        rs = entry.obj()
        deleting = bool(rs["metadata"].get("deletionTimestamp"))
        if not deleting:
            self._claim(rs, matcher)
        # Status is computed from the pods as found, before this sync acts on them (as upstream).
        counts = self._counts(rs, matcher)
        now = time.time()
        available, wait = self._availability(rs, matcher, ready=counts[1], now=now)
        failure = None if deleting else await self._manage(rs, matcher, active=counts[0])
        if counts[0] > int((rs.get("spec") or {}).get("replicas", 1)) and not deleting:
            # Pods were deleted: count without them. Upstream's status still counts them until
            # the next sync, which its watch brings at once; here the store is current, and a
            # Deployment reading the stale count meanwhile would scale old sets down past
            # maxUnavailable (the deleted pods still counted as available).
            counts = self._counts(rs, matcher)
            available, wait = self._availability(rs, matcher, ready=counts[1], now=now)
        self._write_status(key, uid=entry.uid, status=self._status(rs, counts, available, failure, now=now))
        if failure is not None:
            raise failure.cause or failure  # retried with backoff, as upstream returns manageReplicasErr
        return wait

    def _claim(self, rs: dict[str, Any], matcher: LabelMatcher) -> None:
        """Release active pods that stopped matching; adopt active orphans that match.

        Both are writes whose listener moves the pod in (or out of) the index at once.
        """
        meta = rs["metadata"]
        ns, uid = meta.get("namespace", ""), meta["uid"]
        stray = {frozenset(g.labels.items()) for g in self.pods.groups(ns, uid) if g.active and not matcher(g.labels)}
        if stray:
            for p in list(self.pods.owned(ns, uid).values()):
                if p.active and frozenset(p.labels.items()) in stray:
                    self._set_owner(p, rs, adopt=False)
        for e in self.pods.orphans(ns):
            info = self.pods.info(e)
            if info.active and matcher(e.labels):
                self._set_owner(info, rs, adopt=True)

    def _counts(self, rs: dict[str, Any], matcher: LabelMatcher) -> tuple[int, int, int, int]:
        """(active, ready, fully labeled, terminating) claimed pods, summed over label sets."""
        meta, spec = rs["metadata"], rs.get("spec") or {}
        wanted = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).items()
        active = ready = fully = terminating = 0
        for g in self.pods.groups(meta.get("namespace", ""), meta["uid"]):
            if matcher(g.labels):
                active, ready, terminating = active + g.active, ready + g.ready, terminating + g.terminating
                if wanted <= g.labels.items():
                    fully += g.active
        return active, ready, fully, terminating

    def _availability(self, rs: dict[str, Any], matcher: LabelMatcher, *, ready: int,
                      now: float) -> tuple[int, float | None]:
        """Available pods, and seconds until the next ready one becomes available (``minReadySeconds``)."""
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready <= 0:
            return ready, None
        meta = rs["metadata"]
        available, waits = 0, []
        for p in self.pods.owned(meta.get("namespace", ""), meta["uid"]).values():
            if p.active and p.ready and matcher(p.labels):
                if p.available(min_ready_seconds=min_ready, now=now):
                    available += 1
                elif (w := p.available_in(min_ready_seconds=min_ready, now=now)) is not None:
                    waits.append(w)
        return available, (min(waits) + _AVAILABILITY_SLACK if waits else None)

    def _set_owner(self, pod: PodInfo, rs: dict[str, Any], *, adopt: bool) -> bool:
        """Adopt (add the controller ownerReference) or release (remove it); False when the pod is gone."""
        current = self.store.find(PODS, pod.namespace, pod.name)
        if current is None or current.uid != pod.uid:
            return False
        obj = current.obj()
        meta = obj["metadata"]
        uid = rs["metadata"]["uid"]
        refs = [r for r in meta.get("ownerReferences") or [] if not (isinstance(r, dict) and r.get("uid") == uid)]
        if adopt:
            refs.append({"apiVersion": rs["apiVersion"], "kind": rs["kind"], "name": rs["metadata"]["name"],
                         "uid": uid, "controller": True, "blockOwnerDeletion": True})
        if refs:
            meta["ownerReferences"] = refs
        else:
            meta.pop("ownerReferences", None)
        try:
            self.client.update(PODS.key, obj)
        except errors.ApiError as e:
            if e.code == 404:
                return False
            raise
        return True

    async def _manage(self, rs: dict[str, Any], matcher: LabelMatcher, *, active: int) -> _ManageError | None:
        """``manageReplicas``: create the missing pods or delete the excess, at most a burst of them."""
        diff = active - int((rs.get("spec") or {}).get("replicas", 1))
        if diff < 0:
            return await self._create(rs, min(-diff, BURST_REPLICAS))
        if diff > 0:
            return await self._delete(rs, matcher, min(diff, BURST_REPLICAS))
        return None

    async def _create(self, rs: dict[str, Any], count: int) -> _ManageError | None:
        """Create ``count`` pods in slow-start batches; the first batch with a failure ends the sync."""
        try:
            body = json.dumps(pod_from_template((rs.get("spec") or {}).get("template") or {}, owner=rs))
        except ValueError as e:
            return _ManageError(str(e), reason="FailedCreate")
        batch = min(count, _SLOW_START_INITIAL_BATCH)
        remaining = count
        meta = rs["metadata"]
        while batch > 0:
            current = self.store.find(self.rt, meta.get("namespace", ""), meta["name"])
            if current is None or current.uid != meta["uid"]:
                return None  # deleted while a burst was under way: its pods would only be orphans
            failure: _ManageError | None = None
            for i in range(batch):
                if i and i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                try:
                    pod = await self.client.create_admitted(PODS.key, json.loads(body))
                except errors.ApiError as e:
                    if e.code == 403 and _TERMINATING_NAMESPACE in e.message:
                        continue  # every create will fail until the namespace is gone: nothing to report
                    self.event(rs, type="Warning", reason="FailedCreate", message=f"Error creating: {e.message}")
                    failure = failure or _ManageError(e.message, reason="FailedCreate", cause=e)
                else:
                    self.event(rs, reason="SuccessfulCreate", message=f"Created pod: {pod['metadata']['name']}")
            if failure is not None:
                return failure
            remaining -= batch
            batch = min(2 * batch, remaining)
            await asyncio.sleep(0)  # let the API server answer between batches
        return None

    async def _delete(self, rs: dict[str, Any], matcher: LabelMatcher, count: int) -> _ManageError | None:
        """Delete the ``count`` pods upstream would pick first (graceful for pods on a node)."""
        meta = rs["metadata"]
        ns = meta.get("namespace", "")
        # Pods that tie on every rule go by name.
        candidates = sorted((p for p in self.pods.owned(ns, meta["uid"]).values() if p.active and matcher(p.labels)),
                            key=lambda p: p.name)
        victims = pods_to_delete(candidates, count, related=self._related_pods(rs), now=time.time())
        failure: _ManageError | None = None
        for i, p in enumerate(victims):
            if i and i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the uid precondition keeps a pod replaced meanwhile safe
            try:
                deleted = self.client.delete(PODS.key, p.namespace, p.name, uid=p.uid)
            except errors.ApiError as e:
                self.event(rs, type="Warning", reason="FailedDelete", message=f"Error deleting: {e.message}")
                failure = failure or _ManageError(f"unable to delete pods: {e.message}", reason="FailedDelete",
                                                  cause=e)
                continue
            if deleted:
                self.event(rs, reason="SuccessfulDelete", message=f"Deleted pod: {p.name}")
        return failure

    def _related_pods(self, rs: dict[str, Any]) -> list[PodInfo]:
        """Pods of every set that shares this one's controller (none when it has no controller)."""
        meta = rs["metadata"]
        ns = meta.get("namespace", "")
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if owner is None:
            return []
        out: list[PodInfo] = []
        for ref in self.view.owned(str(owner.get("uid", "")), self.rt.key):
            sibling = self.store.find(self.rt, ref.namespace, ref.name)
            if sibling is not None and sibling.controller is not None and sibling.controller[2] == owner.get("uid"):
                out.extend(self.pods.owned(ns, sibling.uid).values())
        return out

    # ---- status ----------------------------------------------------------------------------

    def _status(self, rs: dict[str, Any], counts: tuple[int, int, int, int], available: int,
                failure: _ManageError | None, *, now: float) -> dict[str, Any]:
        """``calculateStatus``: counts of the claimed pods, and the ReplicaFailure condition."""
        active, ready, fully, terminating = counts
        old = rs.get("status") or {}
        conditions = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
        has_failure = any(c.get("type") == "ReplicaFailure" for c in conditions)
        if failure is not None and not has_failure:
            conditions.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_rfc3339(),
                               "reason": failure.reason, "message": str(failure)})
        elif failure is None and has_failure:
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        status: dict[str, Any] = {"replicas": active}
        # Zero counts are left out, as Go's omitempty leaves them out of the JSON.
        for field, value in (("fullyLabeledReplicas", fully), ("readyReplicas", ready),
                             ("availableReplicas", available),
                             ("observedGeneration", int(rs["metadata"].get("generation") or 0))):
            if value:
                status[field] = value
        if self.tracks_terminating:
            status["terminatingReplicas"] = terminating
        if conditions:
            status["conditions"] = conditions
        return status

    def _write_status(self, key: Key, *, uid: str, status: dict[str, Any]) -> None:
        """``updateReplicaSetStatus``: write when anything differs, on the current version of the object."""
        current = self.store.find(self.rt, *key)
        if current is None or current.uid != uid:
            return
        obj = current.obj()
        if obj.get("status") == status:
            return
        obj["status"] = status
        self.client.update_status(self.primary, obj)


class ReplicationManager(ReplicaSetController):
    """core/v1 ReplicationControllers: the ReplicaSet loop with a map selector (``pkg/controller/replication``)."""

    name: ClassVar[str] = "replication-controller"
    primary: ClassVar[str] = "replicationcontrollers"
    kind: ClassVar[str] = "ReplicationController"
    tracks_terminating: ClassVar[bool] = False

    def selector(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The map selector as matchLabels; empty means the template's labels (v1 defaulting)."""
        spec = obj.get("spec") or {}
        labels = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        return {"matchLabels": dict(labels)}
