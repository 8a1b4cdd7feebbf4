"""The controllers' indexes (``ClusterView``: uid -> object, owner uid -> dependents) follow every write.

Writes that change neither the uid nor the owners (a bind, a status, a lease renewal) leave the
indexes as they are without rebuilding anything; these cases check that every other write still
moves them.
"""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.apiserver.controllers.base import ClusterView, ObjectRef
from scheduler.apiserver.resources import builtin
from scheduler.apiserver.store import Store

PODS = builtin("pods")
P = ObjectRef(PODS.key, "default", "p")


def _pod(uid: str, *owners: str, node: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "default", "uid": uid}
    if owners:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": o, "uid": o} for o in owners]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"nodeName": node}}


@pytest.mark.parametrize(("writes", "by_uid", "dependents"), [
    # (verb, pod) in order, after a create of _pod("u1", "rs-a")
    pytest.param([], {"u1": P}, {"rs-a": {P}}, id="created"),
    pytest.param([("replace", _pod("u1", "rs-a", node="n1"))], {"u1": P}, {"rs-a": {P}}, id="bound-same-owners"),
    pytest.param([("replace", _pod("u1", "rs-b"))], {"u1": P}, {"rs-b": {P}}, id="owner-changed"),
    pytest.param([("replace", _pod("u1"))], {"u1": P}, {}, id="orphaned"),
    pytest.param([("replace", _pod("u1", "rs-a", "rs-b")), ("replace", _pod("u1", "rs-a", "rs-b", node="n1"))],
                 {"u1": P}, {"rs-a": {P}, "rs-b": {P}}, id="second-owner-then-bound"),
    # deleted and created again under the same name: a new uid, the old one forgotten
    pytest.param([("delete", None), ("create", _pod("u2", "rs-a"))], {"u2": P}, {"rs-a": {P}}, id="recreated"),
    pytest.param([("delete", None)], {}, {}, id="deleted"),
])
def test_view_follows_writes(writes: list[tuple[str, dict[str, Any] | None]], by_uid: dict[str, ObjectRef],
                             dependents: dict[str, set[ObjectRef]]) -> None:
    store = Store()
    view = ClusterView(store=store)
    store.create(PODS, _pod("u1", "rs-a"))
    for verb, pod in writes:
        if verb == "delete":
            store.delete(PODS, "default", "p")
        elif verb == "create":
            assert pod is not None
            store.create(PODS, pod)
        else:
            assert pod is not None
            store.replace(PODS, pod)
    assert view.by_uid == by_uid
    assert {uid: refs for uid, refs in view.dependents.items() if refs} == dependents
