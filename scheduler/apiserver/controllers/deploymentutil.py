"""The arithmetic of a Deployment rollout, as pure functions (upstream's ``pkg/controller/deployment/util``).

``DeploymentController`` (``deployment.py``) reads the store and writes
ReplicaSets, statuses and Events; everything it *decides* -- which template a
ReplicaSet was made from and what it is named, how far ``maxSurge`` and
``maxUnavailable`` let a rollout go, how a scaling event is shared between
ReplicaSets, which annotations a new ReplicaSet carries, what the
Deployment's status and conditions are -- is computed here, from plain
objects as on the wire, with no store, client or clock of its own (the one
function that needs the time takes it as an argument). So each rule can be
read next to its upstream counterpart and checked without an API server.

Names follow upstream's (``MaxSurge`` -> ``max_surge``, ``GetProportion`` ->
``proportion``, ``DeploymentComplete`` -> ``deployment_complete``). Two
simplifications live here, each on purpose:

- the template hash: upstream FNV-32a-hashes a ``%#v`` dump of the Go struct,
  which Python cannot reproduce byte for byte; ``compute_hash`` hashes canonical
  JSON instead (then the collision count and ``rand.SafeEncodeString``, as
  upstream), so names look like upstream's but differ from a real cluster's;
- template equality (``canonical_template``) drops null, ``{}`` and ``[]``
  values, approximating Go's semantic equality (nil equals empty); quantities
  are compared as written.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..objects import now_rfc3339
from .pods import parse_time

__all__ = [
    "HASH_LABEL", "REVISION", "DESIRED_REPLICAS", "MAX_REPLICAS", "MAX_INT32", "PROGRESSING", "AVAILABLE",
    "REPLICA_FAILURE", "TIMED_OUT_REASON", "NEW_RS_AVAILABLE_REASON", "PAUSED_REASON", "RESUMED_REASON", "spec_of",
    "status_count", "replicas_of", "annotations_of", "int_annotation", "revision_of", "canonical_template",
    "compute_hash", "resolve_fenceposts", "is_rolling", "max_surge", "max_unavailable", "creation_key",
    "sorted_by_size", "compare_revisions", "sets_to_prune", "active_sets", "proportion", "proportional_sizes",
    "new_rs_new_replicas", "set_replicas_annotations", "set_new_rs_annotations", "new_replica_set", "get_condition",
    "new_condition", "set_condition", "remove_condition", "has_progress_deadline", "deployment_complete",
    "deployment_progressing", "deployment_timed_out", "calculate_status", "rollout_status", "requeue_after",
]

HASH_LABEL: Final = "pod-template-hash"
REVISION: Final = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS: Final = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS: Final = "deployment.kubernetes.io/max-replicas"
_HISTORY: Final = "deployment.kubernetes.io/revision-history"
# Annotations a Deployment does not copy to its ReplicaSets (upstream's annotationsToSkip).
_SKIP: Final = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION, _HISTORY, DESIRED_REPLICAS,
                          MAX_REPLICAS, "deprecated.deployment.rollback.to"})
_MAX_HISTORY_CHARS: Final = 2000  # upstream's maxRevHistoryLengthInChars (~100 revisions)
MAX_INT32: Final = 2**31 - 1
"""progressDeadlineSeconds / revisionHistoryLimit meaning "never" / "keep all"."""
_SAFE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString: no vowels, no 0/1/3
_FNV_OFFSET: Final = 0x811C9DC5  # FNV-32a's offset basis and prime, as Go's hash/fnv
_FNV_PRIME: Final = 0x01000193
PROGRESSING: Final = "Progressing"
AVAILABLE: Final = "Available"
REPLICA_FAILURE: Final = "ReplicaFailure"
TIMED_OUT_REASON: Final = "ProgressDeadlineExceeded"
NEW_RS_AVAILABLE_REASON: Final = "NewReplicaSetAvailable"
PAUSED_REASON: Final = "DeploymentPaused"
RESUMED_REASON: Final = "DeploymentResumed"


# ---- reading objects ---------------------------------------------------------------------------


def spec_of(o: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` of a Deployment or ReplicaSet ({} when absent)."""
    spec: dict[str, Any] = o.get("spec") or {}
    return spec


def status_count(o: Mapping[str, Any] | None, field: str) -> int:
    """A count in ``status`` (0 when absent, or when there is no object)."""
    return int(((o or {}).get("status") or {}).get(field) or 0)


def replicas_of(o: Mapping[str, Any]) -> int:
    """``spec.replicas`` (defaulted to 1 as the API does)."""
    return int(spec_of(o).get("replicas", 1))


def annotations_of(o: Mapping[str, Any]) -> dict[str, str]:
    """``metadata.annotations`` ({} when absent)."""
    ann: dict[str, str] = o["metadata"].get("annotations") or {}
    return ann


def revision_of(o: Mapping[str, Any]) -> int | None:
    """The revision annotation (0 when absent, None when not a number)."""
    text = annotations_of(o).get(REVISION)
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        return None


def int_annotation(o: Mapping[str, Any], key: str) -> int | None:
    """An annotation as an integer (None when absent or not a number)."""
    try:
        return int(annotations_of(o)[key])
    except (KeyError, ValueError):
        return None


# ---- templates and their hash ------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """JSON without null, {} and [] (Go's semantic equality treats nil and empty alike)."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def canonical_template(template: Mapping[str, Any]) -> Any:
    """A pod template as compared for equality (``EqualIgnoreHash``): a fresh copy without the hash label."""
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


# ---- maxSurge and maxUnavailable ---------------------------------------------------------------


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


def is_rolling(d: Mapping[str, Any]) -> bool:
    """Whether the strategy is RollingUpdate (the only one with surge and unavailability bounds)."""
    return bool((spec_of(d).get("strategy") or {}).get("type") == "RollingUpdate")


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    ru = (spec_of(d).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas_of(d))


def max_surge(d: Mapping[str, Any]) -> int:
    """``MaxSurge``: replicas allowed above ``spec.replicas`` (0 unless RollingUpdate)."""
    return _fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    """``MaxUnavailable``: replicas allowed to be unavailable, at most ``spec.replicas`` (0 unless RollingUpdate)."""
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    return min(_fenceposts(d)[1], replicas_of(d))


# ---- ordering and proportional scaling ---------------------------------------------------------


def creation_key(o: Mapping[str, Any]) -> tuple[float, str]:
    """ReplicaSetsByCreationTimestamp: oldest first, then by name."""
    return parse_time(o["metadata"].get("creationTimestamp")) or 0.0, o["metadata"]["name"]


def sorted_by_size(rss: Iterable[dict[str, Any]], *, newer_first: bool) -> list[dict[str, Any]]:
    """ReplicaSetsBySizeNewer / -Older: largest first, ties by age."""
    return sorted(sorted(rss, key=creation_key, reverse=newer_first), key=lambda r: -replicas_of(r))


def compare_revisions(a: dict[str, Any], b: dict[str, Any]) -> int:
    """ReplicaSetsByRevision, as a ``cmp`` function: lower revision first, unreadable ones by age."""
    ra, rb = revision_of(a), revision_of(b)
    if ra is None or rb is None or ra == rb:
        return -1 if creation_key(a) < creation_key(b) else (1 if creation_key(a) > creation_key(b) else 0)
    return -1 if ra < rb else 1


def active_sets(rss: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """``FilterActiveReplicaSets``: the sets (None skipped) that want at least one replica."""
    return [r for r in rss if r is not None and replicas_of(r) > 0]


def sets_to_prune(*, d: Mapping[str, Any], old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``cleanupDeployment``'s choice: old sets beyond ``revisionHistoryLimit``, lowest revision first.

    Only sets that are not being deleted, want and report no replicas, and whose controller has observed
    their latest spec are chosen; none when the limit is unset or MaxInt32 (keep all).
    """
    limit = spec_of(d).get("revisionHistoryLimit")
    if limit is None or limit == MAX_INT32:
        return []
    alive = sorted((r for r in old if not r["metadata"].get("deletionTimestamp")),
                   key=functools.cmp_to_key(compare_revisions))
    return [rs for rs in alive[:max(len(alive) - int(limit), 0)]
            if not (status_count(rs, "replicas") or replicas_of(rs)
                    or int(rs["metadata"].get("generation") or 0) > status_count(rs, "observedGeneration"))]


def _round(x: float) -> int:
    """Go's math.Round: halves away from zero."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def proportion(rs: dict[str, Any], d: Mapping[str, Any], to_add: int, added: int) -> int:
    """``GetProportion``: this set's share of a scaling event, from its ``max-replicas`` annotation."""
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas_of(d) == 0:
        fraction = -replicas_of(rs)
    else:
        annotated = int_annotation(rs, MAX_REPLICAS)
        annotated = status_count(d, "replicas") if annotated is None else annotated
        fraction = (_round(replicas_of(rs) * (replicas_of(d) + max_surge(d)) / annotated) - replicas_of(rs)
                    if annotated else 0)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(*, d: Mapping[str, Any], active: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """``scale``'s arithmetic for several active sets: each set's new size, in the order to apply them.

    The sets may hold ``spec.replicas + maxSurge`` (0 when scaled to 0); the difference from what they hold
    now is shared by ``proportion``, largest sets first (newest first among equals when growing, oldest
    when shrinking), and what rounding leaves over goes to the first, never below 0.
    """
    allowed = replicas_of(d) + max_surge(d) if replicas_of(d) > 0 else 0
    to_add = allowed - sum(replicas_of(r) for r in active)
    ordered = sorted_by_size(active, newer_first=to_add > 0) if to_add else active
    sizes, added = [], 0
    for rs in ordered:
        share = proportion(rs, d, to_add, added)
        sizes.append(replicas_of(rs) + share)
        added += share
    if to_add:
        sizes[0] = max(sizes[0] + to_add - added, 0)  # leftovers go to the largest set
    return list(zip(ordered, sizes))


def new_rs_new_replicas(d: Mapping[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
    """``NewRSNewReplicas``: how far the new set may grow now."""
    kind = (spec_of(d).get("strategy") or {}).get("type")
    if kind == "Recreate":
        return replicas_of(d)
    if kind != "RollingUpdate":
        raise ValueError(f"deployment type {kind} isn't supported")
    surge = _scaled(((spec_of(d).get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge"), replicas_of(d),
                    round_up=True)
    current = sum(replicas_of(r) for r in all_rss)
    most = replicas_of(d) + surge
    if current >= most:
        return replicas_of(new_rs)
    return replicas_of(new_rs) + min(most - current, replicas_of(d) - replicas_of(new_rs))


# ---- the new ReplicaSet and its annotations ----------------------------------------------------


def set_replicas_annotations(rs: dict[str, Any], desired: int, most: int) -> bool:
    """``SetReplicasAnnotations``: ``desired-replicas`` and ``max-replicas``; whether they changed."""
    ann = rs["metadata"].setdefault("annotations", {})
    changed = bool(ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(most))
    ann[DESIRED_REPLICAS], ann[MAX_REPLICAS] = str(desired), str(most)
    return changed


def set_new_rs_annotations(d: Mapping[str, Any], rs: dict[str, Any], revision: str, *, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations, bump the revision, keep history."""
    ann = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in annotations_of(d).items():
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
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


def new_replica_set(*, d: Mapping[str, Any], owner: dict[str, Any], old: list[dict[str, Any]],
                    revision: str) -> dict[str, Any]:
    """The Deployment's new ReplicaSet as it is created (``getNewReplicaSet``).

    Named ``<deployment>-<hash>``, the hash (salted with ``status.collisionCount``) added as
    ``pod-template-hash`` to its labels, selector and template; sized by ``new_rs_new_replicas`` against
    the ``old`` sets; annotated with ``revision`` and the Deployment's annotations. ``owner`` is its
    controller ownerReference to ``d``.
    """
    meta = d["metadata"]
    template = json.loads(json.dumps(spec_of(d).get("template") or {}))
    h = compute_hash(template, (d.get("status") or {}).get("collisionCount"))
    labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: h}
    template.setdefault("metadata", {})["labels"] = labels
    selector = json.loads(json.dumps(spec_of(d).get("selector") or {}))
    selector.setdefault("matchLabels", {})[HASH_LABEL] = h
    rs: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta.get("namespace", ""), "labels": dict(labels),
                     "ownerReferences": [owner]},
        "spec": {"replicas": 0, "selector": selector, "template": template}}
    if spec_of(d).get("minReadySeconds"):
        rs["spec"]["minReadySeconds"] = spec_of(d)["minReadySeconds"]
    rs["spec"]["replicas"] = new_rs_new_replicas(d, old + [rs], rs)
    set_new_rs_annotations(d, rs, revision, exists=False)
    return rs


# ---- conditions and status ---------------------------------------------------------------------


def get_condition(status: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """``GetDeploymentCondition``: the condition of type ``kind``, if any."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def new_condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    """``NewDeploymentCondition``, updated and transitioned now."""
    now = now_rfc3339()
    return {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason,
            "message": message}


def set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: same status and reason is no change; same status keeps the transition time."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: dict[str, Any], kind: str) -> None:
    """``RemoveDeploymentCondition`` (an empty list is left out, as Go's omitempty)."""
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    """``HasProgressDeadline``: ``progressDeadlineSeconds`` is set and not MaxInt32."""
    return spec_of(d).get("progressDeadlineSeconds") not in (None, MAX_INT32)


def deployment_complete(d: Mapping[str, Any], st: Mapping[str, Any]) -> bool:
    """``DeploymentComplete``: every desired replica updated and available, no old ones left."""
    n = replicas_of(d)
    return (int(st.get("updatedReplicas") or 0) == n and int(st.get("replicas") or 0) == n
            and int(st.get("availableReplicas") or 0) == n
            and int(st.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def deployment_progressing(d: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """``DeploymentProgressing``: more updated, ready or available replicas, or fewer old ones."""
    old = d.get("status") or {}

    def g(s: Mapping[str, Any], f: str) -> int:
        return int(s.get(f) or 0)

    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: Mapping[str, Any], new: Mapping[str, Any], now: float) -> bool:
    """``DeploymentTimedOut``: no progress reported for ``progressDeadlineSeconds``."""
    cond = get_condition(new, PROGRESSING)
    if not has_progress_deadline(d) or cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime")) or 0.0
    return since + int(spec_of(d)["progressDeadlineSeconds"]) < now


def calculate_status(all_rss: list[dict[str, Any]], new_rs: dict[str, Any] | None,
                     d: Mapping[str, Any]) -> dict[str, Any]:
    """``calculateStatus``: counts summed over the sets, and the Available condition."""
    available = sum(status_count(r, "availableReplicas") for r in all_rss)
    terminating: int | None = 0
    for r in all_rss:
        t = (r.get("status") or {}).get("terminatingReplicas")
        terminating = None if t is None or terminating is None else terminating + int(t)
    old = d.get("status") or {}
    counts = {"observedGeneration": int(d["metadata"].get("generation") or 0),
              "replicas": sum(status_count(r, "replicas") for r in all_rss),
              "updatedReplicas": status_count(new_rs, "replicas"),
              "readyReplicas": sum(status_count(r, "readyReplicas") for r in all_rss), "availableReplicas": available,
              "unavailableReplicas": max(sum(replicas_of(r) for r in all_rss) - available, 0)}
    status: dict[str, Any] = {k: v for k, v in counts.items() if v}  # Go's omitempty leaves zeros out
    if terminating is not None:
        status["terminatingReplicas"] = terminating
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= replicas_of(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", "MinimumReplicasAvailable",
                                            "Deployment has minimum availability."))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                                            "Deployment does not have minimum availability."))
    return status


def rollout_status(*, all_sets: list[dict[str, Any]], new_rs: dict[str, Any] | None, d: Mapping[str, Any],
                   now: float) -> dict[str, Any]:
    """``syncRolloutStatus``'s calculation: ``calculate_status`` plus the Progressing and ReplicaFailure conditions.

    Progressing becomes NewReplicaSetAvailable once the rollout is complete, ReplicaSetUpdated (keeping its
    transition time) while replicas move, ProgressDeadlineExceeded when they have not for
    ``progressDeadlineSeconds`` before ``now``; it is dropped when there is no deadline. ReplicaFailure is
    the new set's, else any set's, else removed.
    """
    status = calculate_status(all_sets, new_rs, d)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status") or {}, PROGRESSING)
    done = status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None and \
        current.get("reason") == NEW_RS_AVAILABLE_REASON
    rs_name = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{d["metadata"]["name"]}"'
    if has_progress_deadline(d) and not done:
        if deployment_complete(d, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON,
                                                f"{rs_name} has successfully progressed."))
        elif deployment_progressing(d, status):
            cond = new_condition(PROGRESSING, "True", "ReplicaSetUpdated", f"{rs_name} is progressing.")
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON,
                                                f"{rs_name} has timed out progressing."))
    failures = [c for r in ([new_rs] if new_rs else []) for c in (r.get("status") or {}).get("conditions") or []
                if c.get("type") == REPLICA_FAILURE]
    failures = failures or [c for r in all_sets for c in (r.get("status") or {}).get("conditions") or []
                            if c.get("type") == REPLICA_FAILURE]
    if failures:
        f = failures[0]
        set_condition(status, {"type": REPLICA_FAILURE, "status": f.get("status"), "reason": f.get("reason"),
                               "message": f.get("message"), "lastUpdateTime": f.get("lastTransitionTime"),
                               "lastTransitionTime": f.get("lastTransitionTime")})
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def requeue_after(*, d: Mapping[str, Any], status: Mapping[str, Any], now: float) -> float | None:
    """``requeueStuckDeployment``: seconds until a rollout that may miss its deadline is looked at again."""
    cond = get_condition(d.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(d) or cond is None or deployment_complete(d, status) or \
            cond.get("reason") == TIMED_OUT_REASON:
        return None
    after = (parse_time(cond.get("lastUpdateTime")) or now) + int(spec_of(d)["progressDeadlineSeconds"]) - now
    # Upstream adds a second against clock skew; under a second it retries with backoff instead,
    # which a short fixed delay replaces here (the condition's time has whole seconds only).
    return after + 1.0 if after >= 1.0 else max(after, 0.0) + 0.1
