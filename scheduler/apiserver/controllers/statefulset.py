"""The StatefulSet controller: pods with stable names and storage, started and replaced in order.

A StatefulSet's users (databases, quorum systems, the demo's ordered
workloads) rely on what kube-controller-manager's controller guarantees:
pods named ``<set>-0 .. <set>-(n-1)`` with hostname ``<pod>`` and subdomain
``serviceName``, one PersistentVolumeClaim ``<template>-<set>-<ordinal>`` per
``volumeClaimTemplate`` that outlives its pod, and with ``OrderedReady``
management a strict order: ordinal *i* is created only when 0..i-1 are
Running and Ready, scale-down removes the highest ordinal first and waits for
it to be gone, and a failed pod is deleted and created again. ``Parallel``
lifts the ordering. ``RollingUpdate`` replaces the highest-ordinal pod whose
revision is not the update revision, one at a time, never below
``partition``; ``OnDelete`` replaces pods only when users delete them. The
status fields ``kubectl rollout status statefulset/<name>`` reads are written
as upstream writes them, with its Events (``SuccessfulCreate`` "create Pod
web-0 in StatefulSet web successful", ``SuccessfulDelete``).

This follows ``pkg/controller/statefulset`` (``updateStatefulSet``,
``processReplica``, ``processCondemned``, ``newVersionedStatefulSetPod``,
``completeRollingUpdate``, ``truncateHistory``). Pods are read through the
shared ``PodIndex`` (each stored version parsed once), so a sync costs a few
lookups per replica. Simplified or left out: updates replace one pod at a
time (the ``MaxUnavailableStatefulSet`` feature and
``rollingUpdate.maxUnavailable`` are ignored); orphans are adopted only under
the names the set would give them; a pod's volumes are not rewritten after
creation (the API refuses such updates anyway) and stale claims are not
detected; claim ownership for ``persistentVolumeClaimRetentionPolicy`` is
matched by owner uid only; the ``Available`` condition is not written.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from .. import errors
from .base import Controller, ControllerContext, Key, Mapper, owner_ref
from .pods import PodInfo, selector_matcher
from .revisions import REVISION_LABEL, History, template_of

__all__ = ["StatefulSetController", "POD_NAME_LABEL", "POD_INDEX_LABEL", "claim_name", "ordinal_of"]

STATEFULSETS: Final = "statefulsets.apps"
PODS: Final = "pods"
CLAIMS: Final = "persistentvolumeclaims"
POD_NAME_LABEL: Final = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL: Final = "apps.kubernetes.io/pod-index"
# Parallel creations and deletions go out in slow-start batches of 1, 2, 4, ... pods, at most this
# many at once (upstream's MaxBatchSize, "a realistic value for maximum in-flight requests").
_MAX_BATCH: Final = 500
# Writes here are synchronous, so the event loop is also yielded every this many pods inside a
# batch: a 500-pod batch in one go would keep the API server from answering for half a second.
_YIELD_EVERY: Final = 64
_ORDINAL: Final = re.compile(r"^(.*)-([0-9]+)$")
_INT32_MAX: Final = 2**31 - 1
_NOT_CREATED: Final = object()  # the first unhealthy replica when it does not exist yet


def ordinal_of(name: str) -> tuple[str, int]:
    """(parent set name, ordinal) of a pod name, or ("", -1) when it has none (``getParentNameAndOrdinal``)."""
    m = _ORDINAL.match(name)
    if m is None:
        return "", -1
    n = int(m.group(2))
    return (m.group(1), n) if n <= _INT32_MAX else (m.group(1), -1)


def claim_name(*, template: str, set_name: str, ordinal: int) -> str:
    """The PersistentVolumeClaim of a set's pod for one claim template: ``<template>-<set>-<ordinal>``."""
    return f"{template}-{set_name}-{ordinal}"


def _running_ready(p: PodInfo) -> bool:
    return p.phase == "Running" and p.ready


def _revision(p: PodInfo) -> str:
    return p.labels.get(REVISION_LABEL, "")


def _pod_ref(name: str, uid: str) -> dict[str, Any]:
    return owner_ref({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "uid": uid}})


class StatefulSetController(Controller):
    """Keeps each StatefulSet's pods, claims, revisions and status in line with its spec."""

    name = "statefulset-controller"
    primary = STATEFULSETS

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self.history = History(client=self.client, view=self.view)
        self.pods = ctx.pods
        self._sets = self.client.type(STATEFULSETS)
        self._pod_type = self.client.type(PODS)
        self._claims = self.client.type(CLAIMS)

    def watches(self) -> Mapping[str, Mapper]:
        return {PODS: self.enqueue_owner("StatefulSet")}

    async def reconcile(self, key: Key) -> float | None:
        entry = self.store.find(self._sets, *key)
        if entry is None:
            return None  # its pods and revisions are the garbage collector's
        sts = entry.obj()
        pods = self._claim_pods(sts)
        revisions = self.history.owned(sts)
        current, update, collisions = self.history.statefulset_revisions(sts, revisions)
        failure: errors.ApiError | None = None
        try:
            status = await self._sync(sts, pods, current=current, update=update, collisions=collisions)
        except errors.ApiError as e:  # still record what was observed, then retry (upstream does the same)
            failure = e
            status = self._status(sts, pods, current=current, update=update, collisions=collisions)
        self._write_status(sts, status)
        self.history.truncate(sts, revisions, live={current["metadata"]["name"], update["metadata"]["name"],
                                                    *(_revision(p) for p in pods)})
        if failure is not None:
            raise failure
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        if min_ready and status.get("availableReplicas", 0) != self._replicas(sts):
            return float(min_ready)  # look again once the ready pods may have become available
        return None

    # ---- pods and revisions of the set -----------------------------------------------------------

    @staticmethod
    def _replicas(sts: Mapping[str, Any]) -> int:
        r = sts["spec"].get("replicas")
        return 1 if r is None else int(r)

    @staticmethod
    def _start(sts: Mapping[str, Any]) -> int:
        return int((sts["spec"].get("ordinals") or {}).get("start") or 0)

    def _claim_pods(self, sts: dict[str, Any]) -> list[PodInfo]:
        """The set's member pods (``ClaimPods``): owned ones, released when their labels stopped
        matching, and orphans adopted under the names the set would give them."""
        meta, matches = sts["metadata"], selector_matcher(sts["spec"].get("selector"))
        uid, name, ns = meta["uid"], meta["name"], meta["namespace"]
        deleting = bool(meta.get("deletionTimestamp"))
        pods: dict[str, PodInfo] = {}
        for ref in self.view.owned(uid, PODS):
            e = self.store.find(self._pod_type, ref.namespace, ref.name)
            if e is None or e.controller is None or e.controller[2] != uid or ordinal_of(e.name)[0] != name:
                continue
            if matches(e.labels):
                pods[e.name] = self.pods.info(e)
            elif not deleting:
                pod = e.obj()
                pod["metadata"]["ownerReferences"] = [r for r in pod["metadata"].get("ownerReferences") or []
                                                      if r.get("uid") != uid]
                self.client.update(PODS, pod)
        if not deleting:
            start = self._start(sts)
            for ordinal in range(start, start + self._replicas(sts)):
                pod_name = f"{name}-{ordinal}"
                e = self.store.find(self._pod_type, ns, pod_name)
                if e is None or pod_name in pods or e.controller is not None or not matches(e.labels) \
                        or b'"deletionTimestamp"' in e.raw:
                    continue
                pod = e.obj()
                pod["metadata"]["ownerReferences"] = [*(pod["metadata"].get("ownerReferences") or []), owner_ref(sts)]
                self.client.update(PODS, pod)
                adopted = self.store.find(self._pod_type, ns, pod_name)
                if adopted is not None:
                    pods[pod_name] = self.pods.info(adopted)
        return list(pods.values())

    # ---- the sync ------------------------------------------------------------------------------

    def _new_pod(self, sts: Mapping[str, Any], revision: Mapping[str, Any], ordinal: int) -> dict[str, Any]:
        """Pod ``<set>-<ordinal>`` from a revision's template (``newStatefulSetPod``)."""
        template = template_of(revision)
        tmeta = template.get("metadata") or {}
        meta, spec = sts["metadata"], sts["spec"]
        name = f"{meta['name']}-{ordinal}"
        labels = {**(tmeta.get("labels") or {}), POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
                  REVISION_LABEL: revision["metadata"]["name"]}
        pod_meta: dict[str, Any] = {"name": name, "namespace": meta["namespace"], "labels": labels,
                                    "ownerReferences": [owner_ref(sts)]}
        for f in ("annotations", "finalizers"):
            if tmeta.get(f):
                pod_meta[f] = copy.deepcopy(tmeta[f])
        pod_spec = template.get("spec") or {}
        pod_spec["hostname"] = name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []]
        if claims:
            pod_spec["volumes"] = [
                *({"name": c, "persistentVolumeClaim": {"claimName": claim_name(template=c, set_name=meta["name"],
                                                                              ordinal=ordinal)}} for c in claims),
                *(v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims)]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}

    def _versioned_pod(self, sts: Mapping[str, Any], current: Mapping[str, Any], update: Mapping[str, Any],
                       ordinal: int) -> dict[str, Any]:
        """``newVersionedStatefulSetPod``: below the partition (or the current replicas) at the current revision."""
        strategy = sts["spec"].get("updateStrategy") or {}
        rolling = strategy.get("rollingUpdate")
        start = self._start(sts)
        if (strategy.get("type") == "RollingUpdate" and rolling is None
                and ordinal < start + int((sts.get("status") or {}).get("currentReplicas") or 0)) \
                or (rolling is not None and ordinal < start + int(rolling.get("partition") or 0)):
            return self._new_pod(sts, current, ordinal)
        return self._new_pod(sts, update, ordinal)

    async def _sync(self, sts: dict[str, Any], pods: list[PodInfo], *, current: dict[str, Any],
                    update: dict[str, Any], collisions: int) -> dict[str, Any]:
        """``updateStatefulSet``: one step of creating, deleting and replacing pods; returns the new status."""
        n, start = self._replicas(sts), self._start(sts)
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        now = time.time()
        members: list[PodInfo | None] = [None] * n  # None: not created yet
        condemned: list[PodInfo] = []
        for pod in pods:
            ordinal = ordinal_of(pod.name)[1]
            if start <= ordinal < start + n:
                members[ordinal - start] = pod
            elif ordinal >= 0:
                condemned.append(pod)
        condemned.sort(key=lambda p: ordinal_of(p.name)[1], reverse=True)

        def available(p: PodInfo) -> bool:
            return p.available(min_ready_seconds=min_ready, now=now)

        def unavailable(p: PodInfo | None) -> bool:
            return p is None or not available(p) or p.deleting

        first_unhealthy: object = next((_NOT_CREATED if p is None else p for p in members if unavailable(p)),
                                       next((p for p in condemned[::-1] if unavailable(p)), None))

        def status() -> dict[str, Any]:
            return self._status(sts, pods, current=current, update=update, collisions=collisions)

        if sts["metadata"].get("deletionTimestamp"):
            return status()
        monotonic = bool(sts["spec"].get("podManagementPolicy") != "Parallel")

        async def replica(i: int) -> bool:
            pod = members[i]
            if pod is None:
                await self._create_pod(sts, self._versioned_pod(sts, current, update, start + i))
                return monotonic
            if pod.phase in ("Failed", "Succeeded"):
                if not pod.deleting:  # restart it, whatever its exit code: a new one comes next sync
                    self._delete_pod(sts, pod)
                return True
            if pod.phase == "Pending":
                self._create_claims(sts, pod.name, missing_only=True)
            if monotonic and (pod.deleting or not _running_ready(pod) or not available(pod)):
                return True  # every predecessor must be Running, Ready and available first
            self._sync_claim_owners(sts, pod.name, pod.uid, scaled_down=False)
            self._fix_identity(sts, pod)
            return False

        async def fix_claims(i: int) -> bool:
            self._sync_claim_owners(sts, condemned[i].name, condemned[i].uid, scaled_down=True)
            return False

        async def condemn(i: int) -> bool:
            pod = condemned[i]
            if pod.deleting:
                return monotonic  # wait until it is gone
            if monotonic and pod is not first_unhealthy and (not _running_ready(pod) or not available(pod)):
                return True
            self._delete_pod(sts, pod)
            return True

        for step, count in ((replica, n), (fix_claims, len(condemned)), (condemn, len(condemned))):
            if await self._for_all(count, step, monotonic=monotonic):
                return status()
        result = status()
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return result  # pods are replaced when users delete them
        update_name = update["metadata"]["name"]
        for target in range(n - 1, int((strategy.get("rollingUpdate") or {}).get("partition") or 0) - 1, -1):
            member = members[target]  # None: created by this sync, from the update revision
            if member is not None and _revision(member) != update_name and not member.deleting:
                self._delete_pod(sts, member)  # the highest out-of-date pod; the next sync recreates it
                result["currentReplicas"] = result.get("currentReplicas", 0) - 1
                return result
            if unavailable(member):
                return result  # wait for the replacement to become available
        return result

    @staticmethod
    async def _for_all(count: int, fn: Callable[[int], Awaitable[bool]], *, monotonic: bool) -> bool:
        """Run ``fn`` over 0..count-1: in order stopping at the first True (monotonic), or in
        slow-start batches with the event loop free between batches (Parallel)."""
        if monotonic:
            for i in range(count):
                if await fn(i):
                    return True
            return False
        i, batch = 0, 1
        while i < count:
            for j in range(i, min(i + batch, count)):
                await fn(j)
                if (j - i + 1) % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            i += batch
            batch = min(2 * batch, _MAX_BATCH)
            await asyncio.sleep(0)
        return False

    def _status(self, sts: Mapping[str, Any], pods: list[PodInfo], *, current: Mapping[str, Any],
                update: Mapping[str, Any], collisions: int) -> dict[str, Any]:
        """Counts over the pods seen at the start of the sync (``computeReplicaStatus``), revisions, generation."""
        min_ready, now = int(sts["spec"].get("minReadySeconds") or 0), time.time()
        cur, upd = current["metadata"]["name"], update["metadata"]["name"]
        live = [p for p in pods if not p.deleting]
        ready = [p for p in pods if _running_ready(p)]
        return {"observedGeneration": int(sts["metadata"].get("generation") or 0), "replicas": len(pods),
                "readyReplicas": len(ready),
                "availableReplicas": sum(1 for p in ready if p.available(min_ready_seconds=min_ready, now=now)),
                "currentReplicas": sum(1 for p in live if _revision(p) == cur),
                "updatedReplicas": sum(1 for p in live if _revision(p) == upd),
                "currentRevision": cur, "updateRevision": upd, "collisionCount": collisions}

    def _write_status(self, sts: dict[str, Any], status: dict[str, Any]) -> None:
        """``updateStatefulSetStatus``: complete a finished rolling update, write when anything changed."""
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type")
        n = self._replicas(sts)
        if strategy == "RollingUpdate" and status["updatedReplicas"] == n and status["readyReplicas"] == n \
                and status["replicas"] == n:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        old = sts.get("status") or {}
        # Fields Go leaves out when zero or empty (omitempty), so the object reads as upstream's.
        for f in ("observedGeneration", "readyReplicas", "currentReplicas", "updatedReplicas", "currentRevision",
                  "updateRevision"):
            if not status.get(f):
                status.pop(f, None)
        new = {**{k: v for k, v in old.items() if k == "conditions"}, **status}
        if new != old:
            sts["status"] = new
            self.client.update_status(STATEFULSETS, sts)

    # ---- writes, with upstream's Events ----------------------------------------------------------

    def _pod_event(self, sts: Mapping[str, Any], verb: str, pod: str, error: errors.ApiError | None) -> None:
        where = f"Pod {pod} in StatefulSet {sts['metadata']['name']}"
        if error is None:
            self.event(sts, reason=f"Successful{verb.title()}", message=f"{verb} {where} successful")
        else:
            self.event(sts, type="Warning", reason=f"Failed{verb.title()}",
                       message=f"{verb} {where} failed error: {error.message}")

    async def _create_pod(self, sts: dict[str, Any], pod: dict[str, Any]) -> None:
        """Claims first, then the pod (``CreateStatefulPod``); an existing pod of that name is an error."""
        name = pod["metadata"]["name"]
        try:
            self._create_claims(sts, name, missing_only=False)
            created = await self.client.create_admitted(PODS, pod)
        except errors.ApiError as e:
            if e.reason != "AlreadyExists":
                self._pod_event(sts, "create", name, e)
            raise
        self._pod_event(sts, "create", name, None)
        self._sync_claim_owners(sts, name, created["metadata"]["uid"], scaled_down=False)

    def _delete_pod(self, sts: Mapping[str, Any], pod: PodInfo) -> None:
        if self.client.delete(PODS, pod.namespace, pod.name, uid=pod.uid):
            self._pod_event(sts, "delete", pod.name, None)

    def _fix_identity(self, sts: Mapping[str, Any], pod: PodInfo) -> None:
        """Restore the pod-name and pod-index labels (``identityMatches``/``updateIdentity``)."""
        want = {POD_NAME_LABEL: pod.name, POD_INDEX_LABEL: str(ordinal_of(pod.name)[1])}
        e = self.store.find(self._pod_type, pod.namespace, pod.name)
        if e is None or all(pod.labels.get(k) == v for k, v in want.items()):
            return
        obj = e.obj()
        obj["metadata"].setdefault("labels", {}).update(want)
        try:
            self.client.update(PODS, obj)
        except errors.ApiError as err:
            self._pod_event(sts, "update", pod.name, err)
            raise
        self._pod_event(sts, "update", pod.name, None)

    def _claims_of(self, sts: Mapping[str, Any], pod: str) -> list[dict[str, Any]]:
        """The claims a member pod needs (``getPersistentVolumeClaims``)."""
        meta, ordinal = sts["metadata"], ordinal_of(pod)[1]
        selector_labels = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
        out = []
        for t in sts["spec"].get("volumeClaimTemplates") or []:
            claim = json.loads(json.dumps(t))
            claim.pop("status", None)
            cmeta = claim.setdefault("metadata", {})
            cmeta["name"] = claim_name(template=cmeta.get("name", ""), set_name=meta["name"], ordinal=ordinal)
            cmeta["namespace"] = meta["namespace"]
            cmeta["labels"] = {**(cmeta.get("labels") or {}), **selector_labels}
            out.append({**claim, "apiVersion": "v1", "kind": "PersistentVolumeClaim"})
        return out

    def _create_claims(self, sts: Mapping[str, Any], pod: str, *, missing_only: bool) -> None:
        """Create the pod's missing claims (``createPersistentVolumeClaims``); a claim being deleted is an error."""
        set_name = sts["metadata"]["name"]
        for claim in self._claims_of(sts, pod):
            cname = claim["metadata"]["name"]
            e = self.store.find(self._claims, claim["metadata"]["namespace"], cname)
            if e is not None:
                if not missing_only and b'"deletionTimestamp"' in e.raw:
                    raise errors.conflict(resource=CLAIMS, name=cname, cause=f"pvc {cname} is being deleted")
                continue
            try:
                self.client.create(CLAIMS, claim)
            except errors.ApiError as err:
                if err.reason != "AlreadyExists":
                    self.event(sts, type="Warning", reason="FailedCreate",
                               message=f"create Claim {cname} for Pod {pod} in StatefulSet {set_name} failed "
                                       f"error: {err.message}")
                    raise
                continue
            self.event(sts, reason="SuccessfulCreate",
                       message=f"create Claim {cname} Pod {pod} in StatefulSet {set_name} success")

    def _sync_claim_owners(self, sts: Mapping[str, Any], pod: str, pod_uid: str, *, scaled_down: bool) -> None:
        """Owner references on the pod's claims per ``persistentVolumeClaimRetentionPolicy``: the set owns
        them when they go with the set, a scaled-down pod owns them when they go with scale-down."""
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        when_scaled, when_deleted = policy.get("whenScaled") == "Delete", policy.get("whenDeleted") == "Delete"
        meta, ordinal = sts["metadata"], ordinal_of(pod)[1]
        set_uid = meta["uid"]
        want_set = when_deleted and not (when_scaled and scaled_down)
        want_pod = when_scaled and scaled_down
        for t in sts["spec"].get("volumeClaimTemplates") or []:
            cname = claim_name(template=(t.get("metadata") or {}).get("name", ""), set_name=meta["name"],
                               ordinal=ordinal)
            e = self.store.find(self._claims, meta["namespace"], cname)
            if e is None or ((set_uid in e.owners) == want_set and (pod_uid in e.owners) == want_pod):
                continue
            if e.controller is not None and e.controller[2] not in (set_uid, pod_uid):
                continue  # another controller manages this claim: leave it alone, as upstream
            obj = e.obj()
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") not in (set_uid, pod_uid)]
            if want_set:
                refs.append(owner_ref(sts))
            if want_pod:
                refs.append(_pod_ref(pod, pod_uid))
            obj["metadata"]["ownerReferences"] = refs
            self.client.update(CLAIMS, obj)


_: type[Controller] = StatefulSetController
