"""The garbage collector: dependents follow their owners, by ownerReferences.

Deleting a ReplicaSet must take its pods along (or leave them, or take them
first) exactly as on a real cluster, because clients and other controllers
rely on it: ``kubectl delete --cascade=...``, a Deployment's rollout that
deletes old ReplicaSets, a Job's pods, node Leases owned by their Node. This
controller reproduces kube-controller-manager's garbage collector
(``pkg/controller/garbagecollector``):

* **background** -- an object all of whose owners are gone is deleted (with
  the propagation its own ``orphan``/``foregroundDeletion`` finalizer asks
  for, else Background); one with *some* owners gone loses the references to
  them (and to owners waiting for their dependents to go, so those are not
  blocked). "Gone" means no object with the reference's uid exists as that
  kind and name in the dependent's namespace (or cluster-wide for a
  cluster-scoped kind); upstream verifies with a live GET, here the
  ``ClusterView.by_uid`` index is the live state.
* **foreground** -- an owner marked for deletion with the
  ``foregroundDeletion`` finalizer has its dependents deleted -- in
  Foreground themselves when they have dependents of their own, so a chain
  goes leaves first -- and loses the finalizer (and so goes) once no
  dependent with ``blockOwnerDeletion: true`` is left. A dependent that is a
  terminating pod holds it until the kubelet removes the pod.
* **orphan** -- an owner marked for deletion with the ``orphan`` finalizer
  has the references to it removed from all its dependents, then loses the
  finalizer.

Its queue holds object identities of any kind, not one primary kind. A key
is ``(store key + "/" + namespace, name)`` -- ``("replicasets.apps/default",
"web")``, ``("nodes/", "node-0001")`` -- except Namespaces, whose key is
``("", name)``: the controller manager feeds the primary kind's keys in that
shape, and the primary kind is ``namespaces`` (cheap to resync, and owners
too). Writes to every other kind arrive through the store's any-listener,
which only queues what needs a look -- an object whose owner uid is unknown
or in the wrong namespace, dependents of a deleted owner, an owner starting
a foreground or orphan deletion, an owner waiting on a dependent that just
went -- so 50,000 pods cost one dictionary lookup per write.

Events: only upstream's ``OwnerRefInvalidNamespace`` Warning, on a dependent
whose owner reference points into another namespace. Simplified: a
reference whose uid exists under another kind or name is judged when the
dependent is next examined, not on the owner's write; a reference to a kind
the server does not serve keeps the dependent (upstream retries until
discovery knows the kind); Events objects are ignored, as upstream ignores
them; there is no ``absentOwnerCache`` since the index answers at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any, ClassVar, Final

from ..store import Entry
from .base import Controller, ControllerContext, Key, ObjectRef

__all__ = ["GarbageCollector", "gc_key"]

log = logging.getLogger("vecsched.apiserver.controllers")

_ORPHAN: Final = "orphan"
_FOREGROUND: Final = "foregroundDeletion"
_NAMESPACES: Final = "namespaces"
_IGNORED: Final = frozenset({"events", "events.events.k8s.io"})  # upstream's DefaultIgnoredResources
_DELETING_MARK: Final = b'"deletionTimestamp"'
_BLOCKING_MARK: Final = b'"blockOwnerDeletion":true'


def gc_key(store_key: str, namespace: str, name: str) -> Key:
    """The garbage collector's queue key of an object."""
    return ("", name) if store_key == _NAMESPACES else (f"{store_key}/{namespace}", name)


def _split(key: Key) -> tuple[str, str, str]:
    if "/" not in key[0]:
        return _NAMESPACES, "", key[1]
    store_key, _, namespace = key[0].partition("/")
    return store_key, namespace, key[1]


def _refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in obj["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]


# By stored version: an owner waiting on 5,000 pods is asked about once per pod, parsed once.
@functools.lru_cache(maxsize=4096)
def _finalizers(entry: Entry) -> tuple[bool, tuple[str, ...]]:
    """(marked for deletion, finalizers), parsing only objects that may be marked."""
    if _DELETING_MARK not in entry.raw:
        return False, ()
    meta = entry.obj()["metadata"]
    return bool(meta.get("deletionTimestamp")), tuple(meta.get("finalizers") or ())


class GarbageCollector(Controller):
    """Deletes dependents whose owners are gone; carries out foreground and orphan deletion."""

    name: ClassVar[str] = "garbage-collector-controller"
    primary: ClassVar[str] = _NAMESPACES

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self._deleting_dependents: set[str] = set()
        """uids of owners marked for deletion with the foregroundDeletion finalizer."""
        for rt in self.store.registry:
            if rt.key in _IGNORED:
                continue
            for e in self.store.entries(rt):
                self._on_write(rt.key, None, e)
        self.store.add_any_listener(self._on_write)

    # ---- which objects need a look -------------------------------------------------------------------

    def _add(self, ref: ObjectRef) -> None:
        self.queue.add(gc_key(ref.key, ref.namespace, ref.name))

    def _add_uid(self, uid: str) -> None:
        ref = self.view.by_uid.get(uid)
        if ref is not None:
            self._add(ref)

    def _on_write(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if key in _IGNORED:
            return
        if new is None:
            assert old is not None
            self._deleting_dependents.discard(old.uid)
            for ref in self.view.dependents.get(old.uid, ()):
                self._add(ref)  # their owner went: collect them, or drop the reference
            for uid in old.owners:
                if uid in self._deleting_dependents:
                    self._add_uid(uid)  # an owner waiting for its dependents may go now
            return
        deleting, finalizers = _finalizers(new)
        if deleting and _ORPHAN in finalizers:
            self.queue.add(gc_key(key, new.namespace, new.name))
        if deleting and _FOREGROUND in finalizers and new.uid not in self._deleting_dependents:
            self._deleting_dependents.add(new.uid)
            for ref in self.view.dependents.get(new.uid, ()):
                self._add(ref)
            self.queue.add(gc_key(key, new.namespace, new.name))
        elif _FOREGROUND not in finalizers:
            self._deleting_dependents.discard(new.uid)  # done waiting (other finalizers may still hold it)
        before = old.owners if old is not None else ()
        for uid in before:
            if uid in self._deleting_dependents:
                self._add_uid(uid)  # a reference to a waiting owner was dropped or unblocked
        for uid in new.owners:
            owner = self.view.by_uid.get(uid)
            if owner is None or (owner.namespace and owner.namespace != new.namespace) \
                    or uid in self._deleting_dependents:
                self.queue.add(gc_key(key, new.namespace, new.name))
                break

    # ---- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        store_key, namespace, name = _split(key)
        try:
            rt = self.client.type(store_key)
        except KeyError:
            return None  # its kind was removed (a CRD deleted) together with its objects
        entry = self.store.find(rt, namespace, name)
        if entry is None:
            return None
        obj = entry.obj()
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or []
            if _ORPHAN in finalizers:
                self._orphan_dependents(store_key, obj)
            elif _FOREGROUND in finalizers:
                self._process_deleting_dependents(store_key, obj)
            return None  # being deleted otherwise: its dependents are looked at once it is gone
        refs = _refs(obj)
        if refs:
            self._attempt_to_delete(store_key, entry, obj, refs)
        return None

    def _classify(self, entry: Entry, ref: dict[str, Any]) -> str | None:
        """solid / dangling / waiting (for its dependents' deletion); None when unresolvable."""
        owner_rt = self.store.registry.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if owner_rt is None:
            log.debug("%s/%s: owner kind %s/%s is not served; keeping it", entry.namespace, entry.name,
                      ref.get("apiVersion"), ref.get("kind"))
            return None
        uid = str(ref.get("uid", ""))
        found = self.view.by_uid.get(uid)
        if owner_rt.namespaced and found is not None and found.namespace != entry.namespace:
            self._report_invalid_namespace(entry, ref)
        if owner_rt.namespaced and not entry.namespace:
            return None  # a cluster-scoped object cannot have a namespaced owner: upstream never collects it
        want_ns = entry.namespace if owner_rt.namespaced else ""
        if found is None or found != ObjectRef(owner_rt.key, want_ns, str(ref.get("name", ""))):
            return "dangling"
        owner = self.store.find(owner_rt, want_ns, found.name)
        if owner is None:
            return "dangling"
        deleting, finalizers = _finalizers(owner)
        return "waiting" if deleting and _FOREGROUND in finalizers else "solid"

    def _report_invalid_namespace(self, entry: Entry, ref: dict[str, Any]) -> None:
        obj = entry.obj()
        identity = (f"[{ref.get('apiVersion', '')}/{ref.get('kind', '')}, namespace: {entry.namespace}, "
                    f"name: {ref.get('name', '')}, uid: {ref.get('uid', '')}]")
        self.event(obj, type="Warning", reason="OwnerRefInvalidNamespace",
                   message=f'ownerRef {identity} does not exist in namespace "{entry.namespace}"')

    def _attempt_to_delete(self, store_key: str, entry: Entry, obj: dict[str, Any],
                           refs: list[dict[str, Any]]) -> None:
        groups: dict[str, list[dict[str, Any]]] = {"solid": [], "dangling": [], "waiting": []}
        for ref in refs:
            kind = self._classify(entry, ref)
            if kind is None:
                return
            groups[kind].append(ref)
        solid, dangling, waiting = groups["solid"], groups["dangling"], groups["waiting"]
        meta = obj["metadata"]
        if solid:
            # Keep it; drop references to missing owners and to owners waiting on their dependents
            # (which would otherwise wait for this object forever).
            drop = {str(r.get("uid")) for r in dangling + waiting}
            if drop:
                meta["ownerReferences"] = [r for r in refs if str(r.get("uid")) not in drop]
                self.client.update(store_key, obj)
            return
        if waiting and self.view.dependents.get(entry.uid):
            if any(self._is_deleting_dependents(d) for d in self.view.dependents[entry.uid]):
                # An owner and a dependent both wait on each other's deletion: stop blocking the
                # owners (upstream's cycle breaker), then go in Foreground.
                for r in refs:
                    if r.get("blockOwnerDeletion"):
                        r["blockOwnerDeletion"] = False
                obj = self.client.update(store_key, obj)
            self.client.delete(store_key, entry.namespace, entry.name, uid=entry.uid, propagation="Foreground")
            return
        finalizers = meta.get("finalizers") or []
        policy = "Orphan" if _ORPHAN in finalizers else "Foreground" if _FOREGROUND in finalizers else "Background"
        self.client.delete(store_key, entry.namespace, entry.name, uid=entry.uid, propagation=policy)

    def _entry(self, ref: ObjectRef) -> Entry | None:
        try:
            return self.store.find(self.client.type(ref.key), ref.namespace, ref.name)
        except KeyError:
            return None

    def _is_deleting_dependents(self, ref: ObjectRef) -> bool:
        entry = self._entry(ref)
        return entry is not None and entry.uid in self._deleting_dependents

    def _blocking(self, uid: str) -> Iterable[Entry]:
        """Dependents of ``uid`` whose reference to it has ``blockOwnerDeletion: true``."""
        for ref in list(self.view.dependents.get(uid, ())):
            dep = self._entry(ref)
            if dep is None or _BLOCKING_MARK not in dep.raw:  # the common non-blocking case unparsed
                continue
            if any(str(r.get("uid")) == uid and r.get("blockOwnerDeletion") is True for r in _refs(dep.obj())):
                yield dep

    def _process_deleting_dependents(self, store_key: str, owner: dict[str, Any]) -> None:
        uid = owner["metadata"]["uid"]
        # Looking for the first blocking dependent only: the owner is examined again each time one
        # goes, and scanning them all every time would cost O(n^2) for an owner of n pods.
        for dep in self._blocking(uid):
            if dep.uid not in self._deleting_dependents:
                self._add(ObjectRef(self._ref_key(dep), dep.namespace, dep.name))
            return
        self._remove_finalizer(store_key, owner, _FOREGROUND)

    def _ref_key(self, entry: Entry) -> str:
        ref = self.view.by_uid.get(entry.uid)
        assert ref is not None
        return ref.key

    def _orphan_dependents(self, store_key: str, owner: dict[str, Any]) -> None:
        uid = owner["metadata"]["uid"]
        for ref in list(self.view.dependents.get(uid, ())):
            dep = self._entry(ref)
            if dep is None:
                continue
            obj = dep.obj()
            refs = _refs(obj)
            kept = [r for r in refs if str(r.get("uid")) != uid]
            if len(kept) != len(refs):
                if kept:
                    obj["metadata"]["ownerReferences"] = kept
                else:
                    del obj["metadata"]["ownerReferences"]  # an empty list is not kept, as on the wire
                self.client.update(ref.key, obj)
        self._remove_finalizer(store_key, owner, _ORPHAN)

    def _remove_finalizer(self, store_key: str, obj: dict[str, Any], finalizer: str) -> None:
        meta = obj["metadata"]
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != finalizer]
        self.client.update(store_key, obj)
