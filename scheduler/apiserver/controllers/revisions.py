"""ControllerRevision history: how StatefulSets and DaemonSets remember their pod templates.

A rollout needs to know which pods were built from which template, and
``kubectl rollout history``/``undo`` need the old templates back. Both
workload controllers therefore snapshot every distinct pod template of their
owner as a ControllerRevision named ``<owner>-<hash>``, number the snapshots
in order (a template that comes back is renumbered rather than copied), label
the pods they create with ``controller-revision-hash``, and delete the oldest
snapshots that no pod uses beyond ``spec.revisionHistoryLimit``. This module
is that machinery, after kube-controller-manager's ``pkg/controller/history``,
with each controller's way of choosing its revisions: a StatefulSet names
revisions by a hash of their data and labels its pods with the revision's
name, keeping a *current* and an *update* revision during a rollout
(``getStatefulSetRevisions``, ``truncateHistory``); a DaemonSet names them by
a hash of the template and labels its pods with that hash
(``constructHistory``, ``cleanupHistory``).

A revision's ``data`` is the patch that restores the template
(``{"spec": {"template": {..., "$patch": "replace"}}}``), encoded as upstream
encodes it: compact JSON with sorted keys. Names have upstream's shape: a
32-bit FNV hash printed in decimal and spelled with the "safe" alphabet that
cannot form words. Simplified: the hash covers vecsched's JSON encoding of
the template (upstream hashes Go's encoding; a DaemonSet's even hashes a Go
pretty-print of the template), so a revision name is stable within vecsched
but not equal to the name a real cluster would give the same template; and
orphaned revisions are adopted only when their name comes up again, not by
listing the namespace with the owner's selector; a DaemonSet's duplicate
current revisions are deleted without relabelling pods; a DaemonSet's hash
collision is resolved in the same pass (upstream bumps ``collisionCount`` and
retries the sync).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .. import errors
from .base import Client, ClusterView, owner_ref

__all__ = [
    "REVISION_LABEL",
    "HISTORY_HASH_LABEL",
    "History",
    "safe_encode",
    "encode",
    "template_data",
    "template_of",
    "history_hash",
    "template_hash",
    "revision_name",
    "sort_revisions",
    "next_revision",
    "equal_revision",
]

REVISION_LABEL: Final = "controller-revision-hash"
"""On pods (and DaemonSet revisions): which revision a pod was built from."""
HISTORY_HASH_LABEL: Final = "controller.kubernetes.io/hash"
"""On StatefulSet revisions: the hash of their data."""
REVISIONS: Final = "controllerrevisions.apps"

# k8s.io/apimachinery's rand.SafeEncodeString alphabet: no vowels, no 0/1/3 (no accidental words).
_SAFE: Final = "bcdfghjklmnpqrstvwxz2456789"
# 32-bit FNV-1/FNV-1a parameters (Go's hash/fnv New32 and New32a).
_FNV_OFFSET: Final = 2166136261
_FNV_PRIME: Final = 16777619
_MASK32: Final = 0xFFFFFFFF
# A revision name is at most a 253-byte subdomain: upstream keeps 223 bytes of the owner's name
# for the prefix, room for "-" and any hash.
_MAX_PREFIX: Final = 223


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each character replaced by one of the safe alphabet."""
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in text)


def _fnv1_32(data: bytes) -> int:
    h = _FNV_OFFSET
    for b in data:
        h = ((h * _FNV_PRIME) & _MASK32) ^ b
    return h


def _fnv1a_32(data: bytes) -> int:
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK32
    return h


def encode(data: Any) -> bytes:
    """A revision's data as stored and compared: compact JSON with sorted keys (Go's map encoding)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def template_data(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The patch that restores ``owner``'s pod template (upstream's ``getPatch``)."""
    template = dict((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of(revision: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template a revision restores (``ApplyRevision``, for the one field it carries)."""
    data = revision.get("data") or {}
    template = dict(((data.get("spec") or {}) if isinstance(data, dict) else {}).get("template") or {})
    template.pop("$patch", None)
    return json.loads(json.dumps(template))  # type: ignore[no-any-return]  # a deep copy


def history_hash(raw: bytes, *, probe: int | None) -> str:
    """``history.HashControllerRevision``: FNV-1 of the data, then the decimal ``probe``, safe-encoded."""
    data = raw if probe is None else raw + str(probe).encode()
    return safe_encode(str(_fnv1_32(data)))


def template_hash(template: Any, *, collision_count: int | None) -> str:
    """``controller.ComputeHash`` (a DaemonSet's revision hash): FNV-1a of the template, then the
    collision count as 8 little-endian bytes, safe-encoded."""
    data = encode(template)
    if collision_count is not None:
        data += (collision_count & _MASK32).to_bytes(4, "little") + bytes(4)
    return safe_encode(str(_fnv1a_32(data)))


def revision_name(prefix: str, *, hash_: str) -> str:
    """``<prefix>-<hash>``, the prefix cut to 223 bytes so the name stays a valid subdomain."""
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def _revision(rev: Mapping[str, Any]) -> int:
    return int(rev.get("revision") or 0)


def sort_revisions(revisions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """By revision number, then creation time, then name (``SortControllerRevisions``)."""
    return sorted(revisions, key=lambda r: (_revision(r), r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"]["name"]))


def next_revision(revisions: list[dict[str, Any]]) -> int:
    """One more than the highest revision number of sorted ``revisions``; 1 for none."""
    return _revision(revisions[-1]) + 1 if revisions else 1


def equal_revision(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two revisions restore the same state (``EqualRevision``: their data are equal)."""
    return encode(a.get("data")) == encode(b.get("data"))


class History:
    """The ControllerRevisions an owner controls, read from the cluster view and written through the client."""

    def __init__(self, *, client: Client, view: ClusterView) -> None:
        self.client = client
        self.view = view
        self._type = client.type(REVISIONS)

    def owned(self, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Revisions whose controller is ``owner``, sorted (``ListControllerRevisions`` without adoption)."""
        uid = owner["metadata"]["uid"]
        out = []
        for ref in self.view.owned(uid, REVISIONS):
            e = self.client.store.find(self._type, ref.namespace, ref.name)
            if e is not None and e.controller is not None and e.controller[2] == uid:
                out.append(e.obj())
        return sort_revisions(out)

    def new(self, owner: Mapping[str, Any], *, data: Any, number: int, labels: Mapping[str, str],
            annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        """An unnamed revision of ``owner`` (``NewControllerRevision``; ``create`` names it)."""
        meta: dict[str, Any] = {"namespace": owner["metadata"].get("namespace", ""), "labels": dict(labels),
                                "ownerReferences": [owner_ref(owner)]}
        if annotations:
            meta["annotations"] = dict(annotations)
        return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, "data": data,
                "revision": number}

    def create(self, owner: Mapping[str, Any], revision: dict[str, Any], *, hash_of: Callable[[int], str],
               hash_label: str, collision_count: int) -> tuple[dict[str, Any], int]:
        """Store ``revision`` as ``<owner>-<hash_of(collision_count)>``; returns it and the collision count.

        As ``CreateControllerRevision``: when the name is taken by a revision with
        the same data, that one is the answer (adopted if it had no controller);
        when it is taken by different data, the collision count goes up and the
        next name is tried.
        """
        meta = revision["metadata"]
        while True:
            hash_ = hash_of(collision_count)
            meta["name"] = revision_name(owner["metadata"]["name"], hash_=hash_)
            meta["labels"][hash_label] = hash_
            try:
                return self._write(json.loads(json.dumps(revision)), create=True), collision_count
            except errors.ApiError as e:
                if e.reason != "AlreadyExists":
                    raise
            existing = self.client.get(REVISIONS, meta["namespace"], meta["name"])
            if existing is None:
                continue  # deleted in between: try the same name again
            if equal_revision(existing, revision):
                return self._adopt(owner, existing), collision_count
            collision_count += 1

    def _adopt(self, owner: Mapping[str, Any], revision: dict[str, Any]) -> dict[str, Any]:
        refs = revision["metadata"].get("ownerReferences") or []
        if any(r.get("controller") for r in refs):
            if any(r.get("controller") and r.get("uid") == owner["metadata"]["uid"] for r in refs):
                return revision
            raise errors.conflict(resource="controllerrevisions", group="apps", name=revision["metadata"]["name"],
                                  cause="the revision is controlled by another object")
        revision["metadata"]["ownerReferences"] = [*refs, owner_ref(owner)]
        return self._write(revision, create=False)

    def renumber(self, revision: dict[str, Any], *, number: int) -> dict[str, Any]:
        """Give an existing revision a new number (a rollback to an earlier template)."""
        if _revision(revision) == number:
            return revision
        revision["revision"] = number
        return self._write(revision, create=False)

    def _write(self, revision: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Store a new or changed revision through the API's checks (an update is optimistic)."""
        if create:
            return self.client.create(REVISIONS, revision)
        return self.client.update(REVISIONS, revision)

    def delete(self, revisions: Iterable[Mapping[str, Any]]) -> int:
        """Delete revisions (already gone ones are skipped); returns how many went."""
        n = 0
        for r in revisions:
            meta = r["metadata"]
            n += self.client.delete(REVISIONS, meta["namespace"], meta["name"], uid=meta.get("uid", ""))
        return n

    # ---- the StatefulSet's way (getStatefulSetRevisions, truncateHistory) ----------------------------

    def statefulset_revisions(self, sts: Mapping[str, Any], revisions: list[dict[str, Any]]
                              ) -> tuple[dict[str, Any], dict[str, Any], int]:
        """(current revision, update revision, collision count) of a StatefulSet: the update revision
        is the newest one if its template is the set's, an older equal one renumbered (a rollback),
        or a new one; the current revision is ``status.currentRevision``, or the update one."""
        status = sts.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        data = template_data(sts)
        raw = encode(data)
        number = next_revision(revisions)
        equal = [r for r in revisions if encode(r.get("data")) == raw]
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = self.renumber(equal[-1], number=number)
        else:
            labels = ((sts["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
            new = self.new(sts, data=data, number=number, labels=labels, annotations=sts["metadata"].get("annotations"))
            update, collisions = self.create(sts, new, hash_of=lambda c: history_hash(raw, probe=c),
                                             hash_label=HISTORY_HASH_LABEL, collision_count=collisions)
        current = next((r for r in revisions if r["metadata"]["name"] == status.get("currentRevision")), update)
        return current, update, collisions

    def truncate(self, owner: Mapping[str, Any], revisions: list[dict[str, Any]], *, live: set[str]) -> None:
        """Delete the oldest revisions not in ``live`` (names) beyond ``revisionHistoryLimit``."""
        old = [r for r in revisions if r["metadata"]["name"] not in live]
        limit = int(owner["spec"].get("revisionHistoryLimit", 10))
        if 0 <= limit < len(old):
            self.delete(old[:len(old) - limit])

    # ---- the DaemonSet's way (constructHistory, snapshot, cleanupHistory) ----------------------------

    def daemonset_revisions(self, ds: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], int | None]:
        """(current revision, old revisions, collision count) of a DaemonSet: the revision of its
        template (created as ``<set>-<template hash>`` when missing), numbered after every old one;
        duplicates of it are deleted, the newest kept."""
        raw = encode(template_data(ds))
        current, old = list[dict[str, Any]](), list[dict[str, Any]]()
        for r in self.owned(ds):
            (current if encode(r.get("data")) == raw else old).append(r)
        number = max((_revision(r) for r in old), default=0) + 1
        given = (ds.get("status") or {}).get("collisionCount")
        base = None if given is None else int(given)
        if current:
            self.delete(current[:-1])
            cur = current[-1]
            return (self.renumber(cur, number=number) if _revision(cur) < number else cur), old, base
        template = ds["spec"].get("template") or {}
        new = self.new(ds, data=template_data(ds), number=number,
                       labels=(template.get("metadata") or {}).get("labels") or {},
                       annotations=ds["metadata"].get("annotations"))
        # The hash covers the collision count only once there is one (upstream's nil pointer).
        cur, count = self.create(ds, new, hash_label=REVISION_LABEL, collision_count=int(base or 0), hash_of=lambda c: (
            template_hash(template, collision_count=None if base is None and c == 0 else c)))
        return cur, old, (base if count == int(base or 0) else count)

    def cleanup(self, owner: Mapping[str, Any], old: list[dict[str, Any]], *, live_hashes: set[str]) -> None:
        """Delete the oldest of ``old`` beyond ``revisionHistoryLimit``, sparing those pods still use."""
        excess = len(old) - int(owner["spec"].get("revisionHistoryLimit", 10))
        if excess > 0:
            self.delete([r for r in old if r["metadata"]["labels"].get(REVISION_LABEL) not in live_hashes][:excess])
