"""The Deployment controller: roll a pod template out through one ReplicaSet per template.

``kubectl apply``, ``scale``, ``set image``, ``rollout status`` and ``rollout
undo`` against vecsched's API server only behave as on a cluster if the
Deployment controller does what kube-controller-manager's
``pkg/controller/deployment`` does, and the scheduler under test meets the
same stream of pods a real rollout produces. So this module follows upstream:

- ReplicaSets are claimed by selector (orphans adopted, mismatches released);
  the one whose template equals the Deployment's (ignoring ``pod-template-hash``)
  is the new one, created as ``<deployment>-<hash>`` with the hash label on its
  labels, selector and template, revision ``max(old revisions) + 1`` and the
  ``desired-replicas``/``max-replicas`` annotations;
- the order of a sync is upstream's: paused -> ``sync`` (scale and status);
  a scaling event (``desired-replicas`` differs) -> proportional scaling of all
  active ReplicaSets; otherwise the strategy: RollingUpdate (scale the new set
  up within ``maxSurge``, old ones down within ``maxUnavailable``, unhealthy old
  replicas first) or Recreate (old sets to 0, wait until their pods are gone,
  then the new set to full size); complete rollouts prune old sets with 0
  replicas beyond ``revisionHistoryLimit``;
- status as upstream (``terminatingReplicas`` summed from the ReplicaSets, as
  with DeploymentReplicaSetTerminatingReplicas on), conditions ``Available``
  (MinimumReplicasAvailable/-Unavailable) and ``Progressing`` (NewReplicaSetCreated,
  FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
  ProgressDeadlineExceeded, DeploymentPaused/-Resumed, ReplicaSetCreateError),
  ``ReplicaFailure`` copied from the ReplicaSets, and Events ``ScalingReplicaSet``
  ("Scaled up replica set web-5d8f7c9b4 from 0 to 3", the wording since 1.31).

The rules themselves (hash, fenceposts, proportions, annotations, conditions,
status) are pure functions in ``deploymentutil``; this module reads the store
and makes the writes they call for.

A sync follows every status write of the Deployment's ReplicaSets (thousands
while a large Deployment's pods start), so it re-derives nothing unchanged:
``_Derived`` keeps each ReplicaSet decoded per resourceVersion and each pod
template's canonical form per content.

Simplified or left out, each on purpose (and the template hash and equality,
described in ``deploymentutil``):

- a rollout step waits until every ReplicaSet's controller has observed its
  latest spec (``observedGeneration``): both controllers share one event loop,
  and acting on a ReplicaSet status that predates its last scale could break
  the surge and unavailability bounds (upstream relies on informer timing);
- the deprecated ``rollbackTo`` annotation (extensions/v1beta1) is not served;
  ``kubectl rollout undo`` patches the template itself and works;
- objects are refreshed after each write of the sync, where upstream keeps
  stale copies and retries the conflicts that causes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from .. import errors
from ..resources import builtin
from ..store import Entry
from .base import Controller, ControllerContext, Key, Mapper, controller_of, owner_ref
from .deploymentutil import (
    DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, PAUSED_REASON, PROGRESSING, RESUMED_REASON, REVISION,
    TIMED_OUT_REASON, active_sets, annotations_of, calculate_status, canonical_template,
    compute_hash, creation_key, deployment_complete, get_condition, has_progress_deadline, int_annotation,
    is_rolling, max_surge, max_unavailable, new_condition, new_replica_set, new_rs_new_replicas, proportional_sizes,
    replicas_of, requeue_after, resolve_fenceposts, revision_of, rollout_status, set_condition,
    set_new_rs_annotations, set_replicas_annotations, sets_to_prune, spec_of, status_count,
)
from .pods import LabelMatcher, controlled_pods, pod_phase, selector_matcher

# compute_hash, resolve_fenceposts, HASH_LABEL and REVISION: imported from here since before deploymentutil.
__all__ = ["DeploymentController", "compute_hash", "resolve_fenceposts", "HASH_LABEL", "REVISION"]

log = logging.getLogger("vecsched.apiserver.controllers")

DEPLOYMENTS: Final = builtin("deployments.apps")
REPLICA_SETS: Final = builtin("replicasets.apps")
PODS: Final = builtin("pods")

_TERMINAL: Final = frozenset({"Succeeded", "Failed"})


@dataclass
class _Derived:
    """What the syncs of one Deployment derive from stored objects, kept while those objects are unchanged."""

    sets: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    """Claimed ReplicaSet uid -> (resourceVersion, the object decoded at it); rebuilt by every claim.

    The objects are shared by the syncs that find their version unchanged, so nothing mutates them: a
    sync edits copies, and ``_update_set``, which refreshes a set in place, evicts it first.
    """
    templates: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """uid (the Deployment's or a claimed set's) -> (a copy of its template, ``canonical_template`` of it).

    By content, not resourceVersion: the status writes behind nearly every sync give the Deployment and
    its sets new versions, not new templates. A check is one dict comparison, no JSON; pruned at every claim.
    """


def _canonical_of(templates: dict[str, tuple[Any, Any]], obj: Mapping[str, Any]) -> Any:
    """``canonical_template`` of ``obj``'s template, computed again only when that template changed."""
    template = spec_of(obj).get("template") or {}
    uid = obj["metadata"].get("uid", "")
    seen = templates.get(uid)
    if seen is None or seen[0] != template:
        seen = templates[uid] = (json.loads(json.dumps(template)), canonical_template(template))
    return seen[1]


class DeploymentController(Controller):
    """``pkg/controller/deployment``: Deployments rolled out through ReplicaSets."""

    name: ClassVar[str] = "deployment-controller"
    primary: ClassVar[str] = DEPLOYMENTS.key

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self._derived: dict[Key, _Derived] = {}  # per Deployment; dropped when it is gone

    # ---- which keys a write concerns --------------------------------------------------------

    def watches(self) -> Mapping[str, Mapper]:
        return {REPLICA_SETS.key: self._rs_keys, PODS.key: self._pod_keys}

    def _rs_keys(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """A set's owner; for an orphan set created or relabelled, every Deployment that selects it."""
        keys = {(e.namespace, e.controller[1]) for e in (old, new)
                if e is not None and e.controller is not None and e.controller[0] == "Deployment"}
        if new is not None and new.controller is None and (
                old is None or old.controller is not None or old.labels != new.labels):
            for d in self.store.entries(DEPLOYMENTS, new.namespace):
                try:
                    if selector_matcher(spec_of(d.obj()).get("selector"))(new.labels):
                        keys.add((d.namespace, d.name))
                except ValueError:
                    continue
        return keys

    def _pod_keys(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """A pod gone: its Deployment may be a Recreate waiting for the last old pod."""
        if new is not None or old is None or old.controller is None or old.controller[0] != "ReplicaSet":
            return ()
        rs = self.store.find(REPLICA_SETS, old.namespace, old.controller[1])
        if rs is None or rs.controller is None or rs.controller[0] != "Deployment":
            return ()
        return ((rs.namespace, rs.controller[1]),)

    # ---- the sync ----------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        entry = self.store.find(DEPLOYMENTS, *key)
        if entry is None:
            self._derived.pop(key, None)
            return None
        d = entry.obj()
        selector = spec_of(d).get("selector")
        if isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
            self.event(d, type="Warning", reason="SelectingAll",
                       message="This deployment is selecting all pods. A non-empty selector is required.")
            if status_count(d, "observedGeneration") < int(d["metadata"].get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = d["metadata"]["generation"]
                self._write_status(d)
            return None
        try:
            matcher = selector_matcher(selector)
        except ValueError as e:
            log.warning("deployment %s/%s: invalid selector: %s", *key, e)
            return None
        rs_list = self._claim(d, matcher)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = self._all_sets(d, rs_list, create=False)
            self._sync_status(old_rss, new_rs, d)
            return None
        self._check_paused(d)
        if spec_of(d).get("paused") or self._scaling_event(d, rs_list):
            self._sync(d, rs_list)
            return None
        if any(status_count(r, "observedGeneration") < int(r["metadata"].get("generation") or 0) for r in rs_list):
            return None  # a set's controller has not acted on its last change yet: its status is stale
        kind = (spec_of(d).get("strategy") or {}).get("type")
        if kind == "Recreate":
            return self._rollout_recreate(d, rs_list, matcher)
        if kind == "RollingUpdate":
            return self._rollout_rolling(d, rs_list)
        raise ValueError(f"unexpected deployment strategy type: {kind}")

    def _write_status(self, d: dict[str, Any]) -> None:
        """UpdateStatus, keeping ``d`` current for the writes that follow in this sync."""
        d["metadata"]["resourceVersion"] = self.client.update_status(DEPLOYMENTS.key, d)["metadata"]["resourceVersion"]

    def _derived_of(self, d: Mapping[str, Any]) -> _Derived:
        """What this Deployment's syncs have derived so far (kept under its key)."""
        meta = d["metadata"]
        return self._derived.setdefault((meta.get("namespace", ""), meta["name"]), _Derived())

    def _update_set(self, d: Mapping[str, Any], rs: dict[str, Any], body: dict[str, Any]) -> None:
        """Write a ReplicaSet and refresh ``rs`` in place, so every list holding it sees the new version."""
        updated = self.client.update(REPLICA_SETS.key, body)
        self._derived_of(d).sets.pop(rs["metadata"]["uid"], None)  # ``rs`` is no longer what was decoded
        rs.clear()
        rs.update(updated)

    def _claim(self, d: dict[str, Any], matcher: LabelMatcher) -> list[dict[str, Any]]:
        """``getReplicaSetsForDeployment``: owned sets that match, adopted orphans; mismatches released.

        An owned set is decoded only when its resourceVersion differs from the one last decoded.
        """
        meta = d["metadata"]
        uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
        derived = self._derived_of(d)
        decoded, derived.sets = derived.sets, {}
        claimed = []
        for e in self.store.entries(REPLICA_SETS, meta.get("namespace", "")):
            if e.controller is not None and e.controller[2] != uid:
                continue
            owned, matches = e.controller is not None, matcher(e.labels)
            if owned and matches:
                seen = decoded.get(e.uid)
                if seen is None or seen[0] != e.rv:
                    seen = (e.rv, e.obj())
                derived.sets[e.uid] = seen
                claimed.append(seen[1])
            elif not deleting and (owned or matches):
                rs = e.obj()
                if not owned and rs["metadata"].get("deletionTimestamp"):
                    continue
                refs = [r for r in rs["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                rs["metadata"]["ownerReferences"] = refs + ([] if owned else [owner_ref(d)])
                if not rs["metadata"]["ownerReferences"]:
                    del rs["metadata"]["ownerReferences"]
                try:
                    updated = self.client.update(REPLICA_SETS.key, rs)
                except errors.ApiError as err:
                    if err.code == 404:
                        continue
                    raise
                if not owned:
                    claimed.append(updated)
        keep = {uid, *(r["metadata"]["uid"] for r in claimed)}
        derived.templates = {k: v for k, v in derived.templates.items() if k in keep}
        return claimed

    def _all_sets(self, d: dict[str, Any], rs_list: list[dict[str, Any]],
                  *, create: bool) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``getAllReplicaSetsAndSyncRevision``: the new set (made when ``create``) and all old ones."""
        found = self._find_new(d, rs_list)
        old = [r for r in rs_list if found is None or r["metadata"]["uid"] != found["metadata"]["uid"]]
        return self._new_set(d, found, old, create=create), old

    def _find_new(self, d: Mapping[str, Any], rs_list: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The oldest set whose template equals the Deployment's, ignoring the hash label."""
        templates = self._derived_of(d).templates
        want = _canonical_of(templates, d)
        return next((r for r in sorted(rs_list, key=creation_key) if _canonical_of(templates, r) == want), None)

    def _new_set(self, d: dict[str, Any], found: dict[str, Any] | None, old: list[dict[str, Any]],
                 *, create: bool) -> dict[str, Any] | None:
        """``getNewReplicaSet``: sync the new set's revision and annotations, or create it."""
        revision = str(max((r for r in map(revision_of, old) if r is not None), default=0) + 1)
        status = d.setdefault("status", {})
        if found is not None:
            # Only the annotations can change here, so they are worked out on a copy of them alone;
            # the whole set is copied only when it has to be written.
            ann = dict(annotations_of(found))
            changed = set_new_rs_annotations(d, {"metadata": {"annotations": ann}}, revision, exists=True)
            if changed or spec_of(found).get("minReadySeconds", 0) != spec_of(d).get("minReadySeconds", 0):
                body = json.loads(json.dumps(found))
                body["metadata"]["annotations"] = ann
                body["spec"]["minReadySeconds"] = spec_of(d).get("minReadySeconds", 0)
                self._update_set(d, found, body)
                return found
            needs = self._set_revision(d, annotations_of(found).get(REVISION, ""))
            if has_progress_deadline(d) and get_condition(status, PROGRESSING) is None:
                set_condition(status, new_condition(PROGRESSING, "True", "FoundNewReplicaSet",
                                                    f'Found new replica set "{found["metadata"]["name"]}"'))
                needs = True
            if needs:
                self._write_status(d)
            return found
        if not create:
            return None
        meta = d["metadata"]
        rs = new_replica_set(d=d, owner=owner_ref(d), old=old, revision=revision)
        name, want, template = rs["metadata"]["name"], replicas_of(rs), rs["spec"]["template"]
        existed = False
        try:
            created = self.client.create(REPLICA_SETS.key, rs)
        except errors.ApiError as e:
            if e.reason == "AlreadyExists":
                other = self.client.get(REPLICA_SETS.key, meta.get("namespace", ""), name)
                ref = controller_of(other) if other is not None else None
                if other is not None and ref is not None and ref.get("uid") == meta["uid"] and \
                        canonical_template(spec_of(other).get("template") or {}) == canonical_template(template):
                    created, existed = other, True
                else:  # a different template hashed to the same name: salt the hash and retry
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    self._write_status(d)
                    raise
            elif e.code == 403 and "because it is being terminated" in e.message:
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e.message}'
                if has_progress_deadline(d):
                    set_condition(status, new_condition(PROGRESSING, "False", "ReplicaSetCreateError", msg))
                    try:
                        self._write_status(d)
                    except errors.ApiError:
                        pass  # the create failure is the one to report
                self.event(d, type="Warning", reason="ReplicaSetCreateError", message=msg)
                raise
        if not existed and want > 0:
            self.event(d, reason="ScalingReplicaSet", message=f"Scaled up replica set {name} from 0 to {want}")
        needs = self._set_revision(d, revision)
        if not existed and has_progress_deadline(d):
            set_condition(status, new_condition(PROGRESSING, "True", "NewReplicaSetCreated",
                                                f'Created new replica set "{name}"'))
            needs = True
        if needs:
            self._write_status(d)
        return created

    @staticmethod
    def _set_revision(d: dict[str, Any], revision: str) -> bool:
        ann = d["metadata"].setdefault("annotations", {})
        if ann.get(REVISION) == revision:
            return False
        ann[REVISION] = revision
        return True

    def _scale_set(self, rs: dict[str, Any], size: int, d: Mapping[str, Any], *, annotations: bool = True) -> bool:
        """``scaleReplicaSet``: new size and replica annotations; an Event when the size changed.

        ``annotations=False`` is ``scaleReplicaSetAndRecordEvent``: nothing happens unless the size differs.
        """
        desired, most = replicas_of(d), replicas_of(d) + max_surge(d)
        resize = replicas_of(rs) != size
        ann = annotations_of(rs)
        if not resize and (not annotations or (ann.get(DESIRED_REPLICAS) == str(desired)
                                               and ann.get(MAX_REPLICAS) == str(most))):
            return False
        before = replicas_of(rs)
        body = json.loads(json.dumps(rs))
        body["spec"]["replicas"] = size
        set_replicas_annotations(body, desired, most)
        self._update_set(d, rs, body)
        if resize:
            verb = "up" if before < size else "down"
            self.event(d, reason="ScalingReplicaSet",
                       message=f"Scaled {verb} replica set {rs['metadata']['name']} from {before} to {size}")
        return resize

    # ---- scaling events and paused Deployments (upstream's sync.go) ---------------------------

    def _scaling_event(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> bool:
        """``isScalingEvent``: an active set was sized for another ``spec.replicas``."""
        new_rs, old = self._all_sets(d, rs_list, create=False)
        return any((n := int_annotation(r, DESIRED_REPLICAS)) is not None and n != replicas_of(d)
                   for r in active_sets(old + [new_rs]))

    def _sync(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> None:
        new_rs, old = self._all_sets(d, rs_list, create=False)
        self._scale(d, new_rs, old)
        if spec_of(d).get("paused"):
            self._cleanup(old, d)
        self._sync_status(old, new_rs, d)

    def _scale(self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        """Scale the only active set, or all of them in proportion to their size (``scale``)."""
        everything = active_sets(sorted(old, key=creation_key, reverse=True) + [new_rs])
        if len(everything) <= 1:
            only = everything[0] if everything else new_rs or (max(old, key=creation_key) if old else None)
            if only is not None:
                self._scale_set(only, replicas_of(d), d, annotations=False)
            return
        if new_rs is not None and replicas_of(new_rs) == replicas_of(d) and \
                int_annotation(new_rs, DESIRED_REPLICAS) == replicas_of(d) and \
                status_count(new_rs, "availableReplicas") == replicas_of(d):  # IsSaturated
            for rs in active_sets(old):
                self._scale_set(rs, 0, d, annotations=False)
            return
        if not is_rolling(d):
            return
        for rs, size in proportional_sizes(d=d, active=everything):
            self._scale_set(rs, size, d)

    def _cleanup(self, old: list[dict[str, Any]], d: Mapping[str, Any]) -> None:
        """``cleanupDeployment``: delete the oldest empty sets beyond ``revisionHistoryLimit``."""
        for rs in sets_to_prune(d=d, old=old):
            meta = rs["metadata"]
            self.client.delete(REPLICA_SETS.key, meta.get("namespace", ""), meta["name"], uid=meta["uid"])

    def _check_paused(self, d: dict[str, Any]) -> None:
        """``checkPausedConditions``: Progressing Unknown while paused, so a resume does not time out."""
        if not has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = get_condition(status, PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT_REASON:
            return
        paused, marked = bool(spec_of(d).get("paused")), cond is not None and cond.get("reason") == PAUSED_REASON
        if paused and not marked:
            set_condition(status, new_condition(PROGRESSING, "Unknown", PAUSED_REASON, "Deployment is paused"))
        elif not paused and marked:
            set_condition(status, new_condition(PROGRESSING, "Unknown", RESUMED_REASON, "Deployment is resumed"))
        else:
            return
        self._write_status(d)

    def _sync_status(self, old: list[dict[str, Any]], new_rs: dict[str, Any] | None, d: dict[str, Any]) -> None:
        """``syncDeploymentStatus``: write the calculated status when it differs."""
        status = calculate_status(old + ([new_rs] if new_rs else []), new_rs, d)
        if status != d.get("status"):
            d["status"] = status
            self._write_status(d)

    # ---- rollouts (upstream's rolling.go, recreate.go and progress.go) ------------------------

    def _rollout_rolling(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> float | None:
        new_rs, old = self._all_sets(d, rs_list, create=True)
        assert new_rs is not None
        every = old + [new_rs]
        if not self._reconcile_new(every, new_rs, d) and not self._reconcile_old(every, active_sets(old), new_rs, d):
            if deployment_complete(d, d.get("status") or {}):
                self._cleanup(old, d)
        return self._sync_rollout_status(every, new_rs, d)

    def _reconcile_new(self, every: list[dict[str, Any]], new_rs: dict[str, Any], d: dict[str, Any]) -> bool:
        if replicas_of(new_rs) == replicas_of(d):
            return False
        if replicas_of(new_rs) > replicas_of(d):
            return self._scale_set(new_rs, replicas_of(d), d)
        return self._scale_set(new_rs, new_rs_new_replicas(d, every, new_rs), d)

    def _reconcile_old(self, every: list[dict[str, Any]], old: list[dict[str, Any]], new_rs: dict[str, Any],
                       d: dict[str, Any]) -> bool:
        """Scale old sets down as far as ``maxUnavailable`` allows, unhealthy replicas first.

        maxScaledDown = all replicas - (replicas - maxUnavailable) - unavailable new replicas, so that
        broken new pods never let old available ones go.
        """
        if sum(replicas_of(r) for r in old) == 0:
            return False
        min_available = replicas_of(d) - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - status_count(new_rs, "availableReplicas")
        most = sum(replicas_of(r) for r in every) - min_available - new_unavailable
        if most <= 0:
            return False
        cleaned = 0
        for rs in sorted(old, key=creation_key):  # cleanupUnhealthyReplicas
            if cleaned >= most:
                break
            unhealthy = replicas_of(rs) - status_count(rs, "availableReplicas")
            if replicas_of(rs) == 0 or unhealthy <= 0:
                continue
            n = min(most - cleaned, unhealthy)
            self._scale_set(rs, replicas_of(rs) - n, d)
            cleaned += n
        scaled = 0  # scaleDownOldReplicaSetsForRollingUpdate
        available = sum(status_count(r, "availableReplicas") for r in old + [new_rs])
        if available > min_available:
            for rs in sorted(old, key=creation_key):
                if scaled >= available - min_available:
                    break
                n = min(replicas_of(rs), available - min_available - scaled)
                if n > 0:
                    self._scale_set(rs, replicas_of(rs) - n, d)
                    scaled += n
        return cleaned + scaled > 0

    def _rollout_recreate(self, d: dict[str, Any], rs_list: list[dict[str, Any]],
                          matcher: LabelMatcher) -> float | None:
        new_rs, old = self._all_sets(d, rs_list, create=False)
        every = old + ([new_rs] if new_rs else [])
        scaled = False
        for rs in active_sets(old):
            scaled = self._scale_set(rs, 0, d, annotations=False) or scaled
        if scaled or self._old_pods_running(new_rs, old, matcher):
            return self._sync_rollout_status(every, new_rs, d)
        if new_rs is None:
            new_rs, old = self._all_sets(d, rs_list, create=True)
            assert new_rs is not None
            every = old + [new_rs]
        self._scale_set(new_rs, replicas_of(d), d, annotations=False)
        if deployment_complete(d, d.get("status") or {}):
            self._cleanup(old, d)
        return self._sync_rollout_status(every, new_rs, d)

    def _old_pods_running(self, new_rs: dict[str, Any] | None, old: list[dict[str, Any]],
                          matcher: LabelMatcher) -> bool:
        """``oldPodsRunning``: an old set reports pods, or one of its pods has not finished (even terminating)."""
        if sum(status_count(r, "replicas") for r in old) > 0:
            return True
        new_uid = new_rs["metadata"]["uid"] if new_rs else None
        for rs in old:
            uid = rs["metadata"]["uid"]
            if uid == new_uid:
                continue
            for e in controlled_pods(store=self.store, view=self.view, uid=uid,
                                     namespace=rs["metadata"].get("namespace", "")):
                if matcher(e.labels) and pod_phase(e) not in _TERMINAL:
                    return True
        return False

    def _sync_rollout_status(self, every: list[dict[str, Any]], new_rs: dict[str, Any] | None,
                             d: dict[str, Any]) -> float | None:
        """``syncRolloutStatus``: write the rollout's status; seconds until a deadline check when unchanged."""
        now = time.time()
        status = rollout_status(all_sets=every, new_rs=new_rs, d=d, now=now)
        if status == d.get("status"):
            return requeue_after(d=d, status=status, now=now)
        d["status"] = status
        self._write_status(d)
        return None
