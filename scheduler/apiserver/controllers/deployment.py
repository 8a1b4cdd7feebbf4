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

Simplified or left out, each on purpose:

- the template hash: upstream FNV-32a-hashes a ``%#v`` dump of the Go struct,
  which Python cannot reproduce byte for byte; ``compute_hash`` hashes canonical
  JSON instead (then the collision count and ``rand.SafeEncodeString``, as
  upstream), so names look like upstream's but differ from a real cluster's;
- template equality drops null, ``{}`` and ``[]`` values, approximating Go's
  semantic equality (nil equals empty); quantities are compared as written;
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

import functools
import json
import logging
import struct
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from .. import errors
from ..objects import now_rfc3339
from ..resources import builtin
from ..store import Entry
from .base import Controller, Key, Mapper, owner_ref
from .pods import LabelMatcher, controlled_pods, parse_time, pod_phase, selector_matcher

__all__ = ["DeploymentController", "compute_hash", "resolve_fenceposts", "HASH_LABEL", "REVISION"]

log = logging.getLogger("vecsched.apiserver.controllers")

DEPLOYMENTS: Final = builtin("deployments.apps")
REPLICA_SETS: Final = builtin("replicasets.apps")
PODS: Final = builtin("pods")

HASH_LABEL: Final = "pod-template-hash"
REVISION: Final = "deployment.kubernetes.io/revision"
_HISTORY: Final = "deployment.kubernetes.io/revision-history"
_DESIRED: Final = "deployment.kubernetes.io/desired-replicas"
_MAX: Final = "deployment.kubernetes.io/max-replicas"
# Annotations a Deployment does not copy to its ReplicaSets (upstream's annotationsToSkip).
_SKIP: Final = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, _HISTORY, _DESIRED, _MAX,
                          "deprecated.deployment.rollback.to"})
_MAX_HISTORY_CHARS: Final = 2000  # upstream's maxRevHistoryLengthInChars (~100 revisions)
_MAX_INT32: Final = 2**31 - 1  # progressDeadlineSeconds / revisionHistoryLimit meaning "never" / "keep all"
_SAFE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString: no vowels, no 0/1/3
_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193
_PROGRESSING, _AVAILABLE, _FAILURE = "Progressing", "Available", "ReplicaFailure"
_TIMED_OUT: Final = "ProgressDeadlineExceeded"
_NEW_RS_AVAILABLE: Final = "NewReplicaSetAvailable"
_PAUSED, _RESUMED = "DeploymentPaused", "DeploymentResumed"
_TERMINAL: Final = frozenset({"Succeeded", "Failed"})


# ---- pure helpers (upstream's deployment/util) -------------------------------------------------


def _spec(o: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = o.get("spec") or {}
    return spec


def _stat(o: Mapping[str, Any] | None, field: str) -> int:
    return int(((o or {}).get("status") or {}).get(field) or 0)


def _replicas(o: Mapping[str, Any]) -> int:
    return int(_spec(o).get("replicas", 1))


def _annotations(o: Mapping[str, Any]) -> dict[str, str]:
    ann: dict[str, str] = o["metadata"].get("annotations") or {}
    return ann


def _canonical(value: Any) -> Any:
    """JSON without null, {} and [] (Go's semantic equality treats nil and empty alike)."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _without_hash(template: Mapping[str, Any]) -> Any:
    t = json.loads(json.dumps(template))
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return _canonical(t)


def _fnv32a(data: bytes, h: int = _FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def compute_hash(template: Mapping[str, Any], collision_count: int | None) -> str:
    """``controller.ComputeHash`` over canonical JSON: FNV-32a (+ the collision count), SafeEncodeString."""
    h = _fnv32a(json.dumps(_canonical(template), sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:  # eight bytes: the count as little-endian uint32, then four zero bytes
        h = _fnv32a(struct.pack("<II", collision_count & 0xFFFFFFFF, 0), h)
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(h))


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent`` (a missing value is 0)."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")
    try:
        percent = int(value[:-1])
    except ValueError:
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
    return -(-percent * total // 100) if round_up else percent * total // 100


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable down; if both are 0, unavailable is 1."""
    surge = _scaled(max_surge, desired, round_up=True)
    unavailable = _scaled(max_unavailable, desired, round_up=False)
    return (surge, 1) if surge == 0 and unavailable == 0 else (surge, unavailable)


def _rolling(d: Mapping[str, Any]) -> bool:
    return bool((_spec(d).get("strategy") or {}).get("type") == "RollingUpdate")


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    ru = (_spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), _replicas(d))


def max_surge(d: Mapping[str, Any]) -> int:
    return _fenceposts(d)[0] if _rolling(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    if not _rolling(d) or _replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], _replicas(d))


def _created(o: Mapping[str, Any]) -> tuple[float, str]:
    """ReplicaSetsByCreationTimestamp: oldest first, then by name."""
    return parse_time(o["metadata"].get("creationTimestamp")) or 0.0, o["metadata"]["name"]


def _by_size(rss: Iterable[dict[str, Any]], *, newer_first: bool) -> list[dict[str, Any]]:
    """ReplicaSetsBySizeNewer / -Older: largest first, ties by age."""
    return sorted(sorted(rss, key=_created, reverse=newer_first), key=lambda r: -_replicas(r))


def _revision(o: Mapping[str, Any]) -> int | None:
    """The revision annotation (0 when absent, None when not a number)."""
    text = _annotations(o).get(REVISION)
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        return None


def _by_revision(a: dict[str, Any], b: dict[str, Any]) -> int:
    ra, rb = _revision(a), _revision(b)
    if ra is None or rb is None or ra == rb:
        return -1 if _created(a) < _created(b) else (1 if _created(a) > _created(b) else 0)
    return -1 if ra < rb else 1


def _active(rss: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [r for r in rss if r is not None and _replicas(r) > 0]


def _int_annotation(o: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(_annotations(o)[key])
    except (KeyError, ValueError):
        return None


def _round(x: float) -> int:
    """Go's math.Round: halves away from zero."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def _proportion(rs: dict[str, Any], d: Mapping[str, Any], to_add: int, added: int) -> int:
    """``GetProportion``: this set's share of a scaling event, from its ``max-replicas`` annotation."""
    if _replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if _replicas(d) == 0:
        fraction = -_replicas(rs)
    else:
        annotated = _int_annotation(rs, _MAX)
        annotated = _stat(d, "replicas") if annotated is None else annotated
        fraction = _round(_replicas(rs) * (_replicas(d) + max_surge(d)) / annotated) - _replicas(rs) if annotated else 0
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _new_rs_new_replicas(d: Mapping[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
    """``NewRSNewReplicas``: how far the new set may grow now."""
    kind = (_spec(d).get("strategy") or {}).get("type")
    if kind == "Recreate":
        return _replicas(d)
    if kind != "RollingUpdate":
        raise ValueError(f"deployment type {kind} isn't supported")
    surge = _scaled(((_spec(d).get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge"), _replicas(d),
                    round_up=True)
    current = sum(_replicas(r) for r in all_rss)
    most = _replicas(d) + surge
    if current >= most:
        return _replicas(new_rs)
    return _replicas(new_rs) + min(most - current, _replicas(d) - _replicas(new_rs))


def _condition(status: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def _new_condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    now = now_rfc3339()
    return {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason,
            "message": message}


def _set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: same status and reason is no change; same status keeps the transition time."""
    cur = _condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    _remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def _remove_condition(status: dict[str, Any], kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def _has_deadline(d: Mapping[str, Any]) -> bool:
    return _spec(d).get("progressDeadlineSeconds") not in (None, _MAX_INT32)


def _complete(d: Mapping[str, Any], st: Mapping[str, Any]) -> bool:
    """``DeploymentComplete``: every desired replica updated and available, no old ones left."""
    n = _replicas(d)
    return (int(st.get("updatedReplicas") or 0) == n and int(st.get("replicas") or 0) == n
            and int(st.get("availableReplicas") or 0) == n
            and int(st.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def _progressing(d: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """``DeploymentProgressing``: more updated, ready or available replicas, or fewer old ones."""
    old = d.get("status") or {}

    def g(s: Mapping[str, Any], f: str) -> int:
        return int(s.get(f) or 0)

    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def _timed_out(d: Mapping[str, Any], new: Mapping[str, Any], now: float) -> bool:
    """``DeploymentTimedOut``: no progress reported for ``progressDeadlineSeconds``."""
    cond = _condition(new, _PROGRESSING)
    if not _has_deadline(d) or cond is None or cond.get("reason") == _NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == _TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime")) or 0.0
    return since + int(_spec(d)["progressDeadlineSeconds"]) < now


def _set_replicas_annotations(rs: dict[str, Any], desired: int, most: int) -> bool:
    ann = rs["metadata"].setdefault("annotations", {})
    changed = bool(ann.get(_DESIRED) != str(desired) or ann.get(_MAX) != str(most))
    ann[_DESIRED], ann[_MAX] = str(desired), str(most)
    return changed


def _set_new_rs_annotations(d: Mapping[str, Any], rs: dict[str, Any], revision: str, *, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations, bump the revision, keep history."""
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in _annotations(d).items():
        if k not in _SKIP and ann.get(k) != v:
            ann[k], changed = v, True
    old = ann.get(REVISION)
    try:
        old_n = int(old) if old else 0
    except ValueError:
        return False  # upstream leaves a set with an unreadable revision alone
    if old_n < int(revision):
        ann[REVISION], changed = revision, True
        if old is not None:  # a set taking a newer revision is being rolled back to: remember its old one
            history = ann.get(_HISTORY, "")
            revisions = history.split(",") if history else []
            total, start = len(history) + len(old) + 1, 0
            while total > _MAX_HISTORY_CHARS and start < len(revisions):
                total, start = total - len(revisions[start]) - 1, start + 1
            if total <= _MAX_HISTORY_CHARS:
                ann[_HISTORY] = ",".join(revisions[start:] + [old])
    if not exists and _set_replicas_annotations(rs, _replicas(d), _replicas(d) + max_surge(d)):
        changed = True
    return changed


def _calculate_status(all_rss: list[dict[str, Any]], new_rs: dict[str, Any] | None,
                      d: Mapping[str, Any]) -> dict[str, Any]:
    """``calculateStatus``: counts summed over the sets, and the Available condition."""
    available = sum(_stat(r, "availableReplicas") for r in all_rss)
    terminating: int | None = 0
    for r in all_rss:
        t = (r.get("status") or {}).get("terminatingReplicas")
        terminating = None if t is None or terminating is None else terminating + int(t)
    old = d.get("status") or {}
    counts = {"observedGeneration": int(d["metadata"].get("generation") or 0),
              "replicas": sum(_stat(r, "replicas") for r in all_rss), "updatedReplicas": _stat(new_rs, "replicas"),
              "readyReplicas": sum(_stat(r, "readyReplicas") for r in all_rss), "availableReplicas": available,
              "unavailableReplicas": max(sum(_replicas(r) for r in all_rss) - available, 0)}
    status: dict[str, Any] = {k: v for k, v in counts.items() if v}  # Go's omitempty leaves zeros out
    if terminating is not None:
        status["terminatingReplicas"] = terminating
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= _replicas(d) - max_unavailable(d):
        _set_condition(status, _new_condition(_AVAILABLE, "True", "MinimumReplicasAvailable",
                                              "Deployment has minimum availability."))
    else:
        _set_condition(status, _new_condition(_AVAILABLE, "False", "MinimumReplicasUnavailable",
                                              "Deployment does not have minimum availability."))
    return status


class DeploymentController(Controller):
    """``pkg/controller/deployment``: Deployments rolled out through ReplicaSets."""

    name: ClassVar[str] = "deployment-controller"
    primary: ClassVar[str] = DEPLOYMENTS.key

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
                    if selector_matcher(_spec(d.obj()).get("selector"))(new.labels):
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
            return None
        d = entry.obj()
        selector = _spec(d).get("selector")
        if isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
            self.event(d, type="Warning", reason="SelectingAll",
                       message="This deployment is selecting all pods. A non-empty selector is required.")
            if _stat(d, "observedGeneration") < int(d["metadata"].get("generation") or 0):
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
        if _spec(d).get("paused") or self._scaling_event(d, rs_list):
            self._sync(d, rs_list)
            return None
        if any(_stat(r, "observedGeneration") < int(r["metadata"].get("generation") or 0) for r in rs_list):
            return None  # a set's controller has not acted on its last change yet: its status is stale
        kind = (_spec(d).get("strategy") or {}).get("type")
        if kind == "Recreate":
            return self._rollout_recreate(d, rs_list, matcher)
        if kind == "RollingUpdate":
            return self._rollout_rolling(d, rs_list)
        raise ValueError(f"unexpected deployment strategy type: {kind}")

    def _write_status(self, d: dict[str, Any]) -> None:
        """UpdateStatus, keeping ``d`` current for the writes that follow in this sync."""
        d["metadata"]["resourceVersion"] = self.client.update_status(DEPLOYMENTS.key, d)["metadata"]["resourceVersion"]

    def _update_set(self, rs: dict[str, Any], body: dict[str, Any]) -> None:
        """Write a ReplicaSet and refresh ``rs`` in place, so every list holding it sees the new version."""
        updated = self.client.update(REPLICA_SETS.key, body)
        rs.clear()
        rs.update(updated)

    def _claim(self, d: dict[str, Any], matcher: LabelMatcher) -> list[dict[str, Any]]:
        """``getReplicaSetsForDeployment``: owned sets that match, adopted orphans; mismatches released."""
        meta = d["metadata"]
        uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
        claimed = []
        for e in self.store.entries(REPLICA_SETS, meta.get("namespace", "")):
            if e.controller is not None and e.controller[2] != uid:
                continue
            owned, matches = e.controller is not None, matcher(e.labels)
            if owned and matches:
                claimed.append(e.obj())
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
        return claimed

    def _all_sets(self, d: dict[str, Any], rs_list: list[dict[str, Any]],
                  *, create: bool) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``getAllReplicaSetsAndSyncRevision``: the new set (made when ``create``) and all old ones."""
        found = self._find_new(d, rs_list)
        old = [r for r in rs_list if found is None or r["metadata"]["uid"] != found["metadata"]["uid"]]
        return self._new_set(d, found, old, create=create), old

    @staticmethod
    def _find_new(d: Mapping[str, Any], rs_list: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The oldest set whose template equals the Deployment's, ignoring the hash label."""
        want = _without_hash(_spec(d).get("template") or {})
        return next((r for r in sorted(rs_list, key=_created)
                     if _without_hash(_spec(r).get("template") or {}) == want), None)

    def _new_set(self, d: dict[str, Any], found: dict[str, Any] | None, old: list[dict[str, Any]],
                 *, create: bool) -> dict[str, Any] | None:
        """``getNewReplicaSet``: sync the new set's revision and annotations, or create it."""
        revision = str(max((r for r in map(_revision, old) if r is not None), default=0) + 1)
        status = d.setdefault("status", {})
        if found is not None:
            body = json.loads(json.dumps(found))
            changed = _set_new_rs_annotations(d, body, revision, exists=True)
            if changed or _spec(body).get("minReadySeconds", 0) != _spec(d).get("minReadySeconds", 0):
                body["spec"]["minReadySeconds"] = _spec(d).get("minReadySeconds", 0)
                self._update_set(found, body)
                return found
            needs = self._set_revision(d, _annotations(found).get(REVISION, ""))
            if _has_deadline(d) and _condition(status, _PROGRESSING) is None:
                _set_condition(status, _new_condition(_PROGRESSING, "True", "FoundNewReplicaSet",
                                                      f'Found new replica set "{found["metadata"]["name"]}"'))
                needs = True
            if needs:
                self._write_status(d)
            return found
        if not create:
            return None
        meta = d["metadata"]
        template = json.loads(json.dumps(_spec(d).get("template") or {}))
        h = compute_hash(template, status.get("collisionCount"))
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: h}
        template.setdefault("metadata", {})["labels"] = labels
        selector = json.loads(json.dumps(_spec(d).get("selector") or {}))
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        name = f"{meta['name']}-{h}"
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta.get("namespace", ""), "labels": dict(labels),
                         "ownerReferences": [owner_ref(d)]},
            "spec": {"replicas": 0, "selector": selector, "template": template}}
        if _spec(d).get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = _spec(d)["minReadySeconds"]
        want = _new_rs_new_replicas(d, old + [rs], rs)
        rs["spec"]["replicas"] = want
        _set_new_rs_annotations(d, rs, revision, exists=False)
        existed = False
        try:
            created = self.client.create(REPLICA_SETS.key, rs)
        except errors.ApiError as e:
            if e.reason == "AlreadyExists":
                other = self.client.get(REPLICA_SETS.key, meta.get("namespace", ""), name)
                ref = next((r for r in (other or {}).get("metadata", {}).get("ownerReferences") or []
                            if r.get("controller")), None)
                if other is not None and ref is not None and ref.get("uid") == meta["uid"] and \
                        _without_hash(_spec(other).get("template") or {}) == _without_hash(template):
                    created, existed = other, True
                else:  # a different template hashed to the same name: salt the hash and retry
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    self._write_status(d)
                    raise
            elif e.code == 403 and "because it is being terminated" in e.message:
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e.message}'
                if _has_deadline(d):
                    _set_condition(status, _new_condition(_PROGRESSING, "False", "ReplicaSetCreateError", msg))
                    try:
                        self._write_status(d)
                    except errors.ApiError:
                        pass  # the create failure is the one to report
                self.event(d, type="Warning", reason="ReplicaSetCreateError", message=msg)
                raise
        if not existed and want > 0:
            self.event(d, reason="ScalingReplicaSet", message=f"Scaled up replica set {name} from 0 to {want}")
        needs = self._set_revision(d, revision)
        if not existed and _has_deadline(d):
            _set_condition(status, _new_condition(_PROGRESSING, "True", "NewReplicaSetCreated",
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
        desired, most = _replicas(d), _replicas(d) + max_surge(d)
        resize = _replicas(rs) != size
        ann = _annotations(rs)
        if not resize and (not annotations or (ann.get(_DESIRED) == str(desired) and ann.get(_MAX) == str(most))):
            return False
        before = _replicas(rs)
        body = json.loads(json.dumps(rs))
        body["spec"]["replicas"] = size
        _set_replicas_annotations(body, desired, most)
        self._update_set(rs, body)
        if resize:
            verb = "up" if before < size else "down"
            self.event(d, reason="ScalingReplicaSet",
                       message=f"Scaled {verb} replica set {rs['metadata']['name']} from {before} to {size}")
        return resize

    # ---- scaling events and paused Deployments (upstream's sync.go) ---------------------------

    def _scaling_event(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> bool:
        """``isScalingEvent``: an active set was sized for another ``spec.replicas``."""
        new_rs, old = self._all_sets(d, rs_list, create=False)
        return any((n := _int_annotation(r, _DESIRED)) is not None and n != _replicas(d)
                   for r in _active(old + [new_rs]))

    def _sync(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> None:
        new_rs, old = self._all_sets(d, rs_list, create=False)
        self._scale(d, new_rs, old)
        if _spec(d).get("paused"):
            self._cleanup(old, d)
        self._sync_status(old, new_rs, d)

    def _scale(self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        """Scale the only active set, or all of them in proportion to their size (``scale``)."""
        everything = _active(sorted(old, key=_created, reverse=True) + [new_rs])
        if len(everything) <= 1:
            only = everything[0] if everything else new_rs or (max(old, key=_created) if old else None)
            if only is not None:
                self._scale_set(only, _replicas(d), d, annotations=False)
            return
        if new_rs is not None and _replicas(new_rs) == _replicas(d) and _int_annotation(new_rs, _DESIRED) == \
                _replicas(d) and _stat(new_rs, "availableReplicas") == _replicas(d):  # IsSaturated
            for rs in _active(old):
                self._scale_set(rs, 0, d, annotations=False)
            return
        if not _rolling(d):
            return
        allowed = _replicas(d) + max_surge(d) if _replicas(d) > 0 else 0
        to_add = allowed - sum(_replicas(r) for r in everything)
        ordered = _by_size(everything, newer_first=to_add > 0) if to_add else everything
        sizes, added = [], 0
        for rs in ordered:
            share = _proportion(rs, d, to_add, added)
            sizes.append(_replicas(rs) + share)
            added += share
        if to_add:
            sizes[0] = max(sizes[0] + to_add - added, 0)  # leftovers go to the largest set
        for rs, size in zip(ordered, sizes):
            self._scale_set(rs, size, d)

    def _cleanup(self, old: list[dict[str, Any]], d: Mapping[str, Any]) -> None:
        """``cleanupDeployment``: delete the oldest empty sets beyond ``revisionHistoryLimit``."""
        limit = _spec(d).get("revisionHistoryLimit")
        if limit is None or limit == _MAX_INT32:
            return
        alive = sorted((r for r in old if not r["metadata"].get("deletionTimestamp")),
                       key=functools.cmp_to_key(_by_revision))
        for rs in alive[:max(len(alive) - int(limit), 0)]:
            meta = rs["metadata"]
            unobserved = int(meta.get("generation") or 0) > _stat(rs, "observedGeneration")
            if _stat(rs, "replicas") or _replicas(rs) or unobserved:
                continue
            self.client.delete(REPLICA_SETS.key, meta.get("namespace", ""), meta["name"], uid=meta["uid"])

    def _check_paused(self, d: dict[str, Any]) -> None:
        """``checkPausedConditions``: Progressing Unknown while paused, so a resume does not time out."""
        if not _has_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = _condition(status, _PROGRESSING)
        if cond is not None and cond.get("reason") == _TIMED_OUT:
            return
        paused, marked = bool(_spec(d).get("paused")), cond is not None and cond.get("reason") == _PAUSED
        if paused and not marked:
            _set_condition(status, _new_condition(_PROGRESSING, "Unknown", _PAUSED, "Deployment is paused"))
        elif not paused and marked:
            _set_condition(status, _new_condition(_PROGRESSING, "Unknown", _RESUMED, "Deployment is resumed"))
        else:
            return
        self._write_status(d)

    def _sync_status(self, old: list[dict[str, Any]], new_rs: dict[str, Any] | None, d: dict[str, Any]) -> None:
        """``syncDeploymentStatus``: write the calculated status when it differs."""
        status = _calculate_status(old + ([new_rs] if new_rs else []), new_rs, d)
        if status != d.get("status"):
            d["status"] = status
            self._write_status(d)

    # ---- rollouts (upstream's rolling.go, recreate.go and progress.go) ------------------------

    def _rollout_rolling(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> float | None:
        new_rs, old = self._all_sets(d, rs_list, create=True)
        assert new_rs is not None
        every = old + [new_rs]
        if not self._reconcile_new(every, new_rs, d) and not self._reconcile_old(every, _active(old), new_rs, d):
            if _complete(d, d.get("status") or {}):
                self._cleanup(old, d)
        return self._sync_rollout_status(every, new_rs, d)

    def _reconcile_new(self, every: list[dict[str, Any]], new_rs: dict[str, Any], d: dict[str, Any]) -> bool:
        if _replicas(new_rs) == _replicas(d):
            return False
        if _replicas(new_rs) > _replicas(d):
            return self._scale_set(new_rs, _replicas(d), d)
        return self._scale_set(new_rs, _new_rs_new_replicas(d, every, new_rs), d)

    def _reconcile_old(self, every: list[dict[str, Any]], old: list[dict[str, Any]], new_rs: dict[str, Any],
                       d: dict[str, Any]) -> bool:
        """Scale old sets down as far as ``maxUnavailable`` allows, unhealthy replicas first.

        maxScaledDown = all replicas - (replicas - maxUnavailable) - unavailable new replicas, so that
        broken new pods never let old available ones go.
        """
        if sum(_replicas(r) for r in old) == 0:
            return False
        min_available = _replicas(d) - max_unavailable(d)
        new_unavailable = _replicas(new_rs) - _stat(new_rs, "availableReplicas")
        most = sum(_replicas(r) for r in every) - min_available - new_unavailable
        if most <= 0:
            return False
        cleaned = 0
        for rs in sorted(old, key=_created):  # cleanupUnhealthyReplicas
            if cleaned >= most:
                break
            unhealthy = _replicas(rs) - _stat(rs, "availableReplicas")
            if _replicas(rs) == 0 or unhealthy <= 0:
                continue
            n = min(most - cleaned, unhealthy)
            self._scale_set(rs, _replicas(rs) - n, d)
            cleaned += n
        scaled = 0  # scaleDownOldReplicaSetsForRollingUpdate
        available = sum(_stat(r, "availableReplicas") for r in old + [new_rs])
        if available > min_available:
            for rs in sorted(old, key=_created):
                if scaled >= available - min_available:
                    break
                n = min(_replicas(rs), available - min_available - scaled)
                if n > 0:
                    self._scale_set(rs, _replicas(rs) - n, d)
                    scaled += n
        return cleaned + scaled > 0

    def _rollout_recreate(self, d: dict[str, Any], rs_list: list[dict[str, Any]],
                          matcher: LabelMatcher) -> float | None:
        new_rs, old = self._all_sets(d, rs_list, create=False)
        every = old + ([new_rs] if new_rs else [])
        scaled = False
        for rs in _active(old):
            scaled = self._scale_set(rs, 0, d, annotations=False) or scaled
        if scaled or self._old_pods_running(new_rs, old, matcher):
            return self._sync_rollout_status(every, new_rs, d)
        if new_rs is None:
            new_rs, old = self._all_sets(d, rs_list, create=True)
            assert new_rs is not None
            every = old + [new_rs]
        self._scale_set(new_rs, _replicas(d), d, annotations=False)
        if _complete(d, d.get("status") or {}):
            self._cleanup(old, d)
        return self._sync_rollout_status(every, new_rs, d)

    def _old_pods_running(self, new_rs: dict[str, Any] | None, old: list[dict[str, Any]],
                          matcher: LabelMatcher) -> bool:
        """``oldPodsRunning``: an old set reports pods, or one of its pods has not finished (even terminating)."""
        if sum(_stat(r, "replicas") for r in old) > 0:
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
        """``syncRolloutStatus``: status, the Progressing condition; seconds until a deadline check."""
        status = _calculate_status(every, new_rs, d)
        now = time.time()
        if not _has_deadline(d):
            _remove_condition(status, _PROGRESSING)
        current = _condition(d.get("status") or {}, _PROGRESSING)
        done = status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None and \
            current.get("reason") == _NEW_RS_AVAILABLE
        rs_name = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{d["metadata"]["name"]}"'
        if _has_deadline(d) and not done:
            if _complete(d, status):
                _set_condition(status, _new_condition(_PROGRESSING, "True", _NEW_RS_AVAILABLE,
                                                      f"{rs_name} has successfully progressed."))
            elif _progressing(d, status):
                cond = _new_condition(_PROGRESSING, "True", "ReplicaSetUpdated", f"{rs_name} is progressing.")
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    _remove_condition(status, _PROGRESSING)
                _set_condition(status, cond)
            elif _timed_out(d, status, now):
                _set_condition(status, _new_condition(_PROGRESSING, "False", _TIMED_OUT,
                                                      f"{rs_name} has timed out progressing."))
        failures = [c for r in ([new_rs] if new_rs else []) for c in (r.get("status") or {}).get("conditions") or []
                    if c.get("type") == _FAILURE]
        failures = failures or [c for r in every for c in (r.get("status") or {}).get("conditions") or []
                                if c.get("type") == _FAILURE]
        if failures:
            f = failures[0]
            _set_condition(status, {"type": _FAILURE, "status": f.get("status"), "reason": f.get("reason"),
                                    "message": f.get("message"), "lastUpdateTime": f.get("lastTransitionTime"),
                                    "lastTransitionTime": f.get("lastTransitionTime")})
        else:
            _remove_condition(status, _FAILURE)
        if status == d.get("status"):
            return self._requeue_stuck(d, status, now)
        d["status"] = status
        self._write_status(d)
        return None

    @staticmethod
    def _requeue_stuck(d: Mapping[str, Any], status: Mapping[str, Any], now: float) -> float | None:
        """``requeueStuckDeployment``: when to look again for a rollout that may miss its deadline."""
        cond = _condition(d.get("status") or {}, _PROGRESSING)
        if not _has_deadline(d) or cond is None or _complete(d, status) or cond.get("reason") == _TIMED_OUT:
            return None
        after = (parse_time(cond.get("lastUpdateTime")) or now) + int(_spec(d)["progressDeadlineSeconds"]) - now
        # Upstream adds a second against clock skew; under a second it retries with backoff instead,
        # which a short fixed delay replaces here (the condition's time has whole seconds only).
        return after + 1.0 if after >= 1.0 else max(after, 0.0) + 0.1
