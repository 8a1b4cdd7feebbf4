"""The garbage collector: background, foreground and orphan cascades, dangling and invalid owner references.

Owners and dependents are made by hand with ownerReferences (no workload
controller runs), deleted with the real ``kubectl delete --cascade=...``; the
simulated kubelets stop bound pods within ``kubelet_max_grace_seconds``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.gc import GarbageCollector
from scheduler.apiserver.store import Entry
from tests.apiserver.kube import kubectl, pod_manifest

from .support import control_plane, wait_for

GRACE = 0.2  # seconds the kubelets take to stop a deleted pod


def _ref(owner: dict[str, Any], *, block: bool = True, controller: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": controller, "blockOwnerDeletion": block}


def _replicaset(srv: ApiServer, name: str, **owner: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [_ref(owner["of"])]
    return srv.create("replicasets.apps", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}})


def _pods(srv: ApiServer, owner: dict[str, Any], count: int, *, node: str = "node-0000") -> list[str]:
    names = []
    for i in range(count):
        pod = pod_manifest(f"{owner['metadata']['name']}-{i}", node=node, labels={"app": owner["metadata"]["name"]})
        pod["metadata"]["ownerReferences"] = [_ref(owner)]
        names.append(srv.create("pods", pod, namespace="default")["metadata"]["name"])
    return names


def _names(srv: ApiServer, resource: str, namespace: str = "default") -> set[str]:
    return {o["metadata"]["name"] for o in srv.list(resource, namespace=namespace)}


def _record_deletions(srv: ApiServer) -> list[str]:
    """Names of objects as they leave the store, in order (a store listener: the server's own view)."""
    gone: list[str] = []

    def on_write(key: str, old: Entry | None, new: Entry | None) -> None:
        if new is None and old is not None and key != "events":
            gone.append(f"{key}/{old.name}")
    srv.store.add_any_listener(on_write)
    return gone


# --cascade -> (ReplicaSet gone before any pod?, pods left at the end, running and without ownerReferences)
CASCADES = [
    # background: the owner goes at once, the collector then deletes the pods (the kubelet stops them)
    ("background", True, set()),
    # foreground: the owner waits, with the foregroundDeletion finalizer, until its 3 pods are gone
    ("foreground", False, set()),
    # orphan: the pods stay, without the reference to their owner
    ("orphan", True, {"web-0", "web-1", "web-2"}),
]


@pytest.mark.parametrize(("cascade", "owner_first", "left"), CASCADES)
async def test_kubectl_cascades(cascade: str, owner_first: bool, left: set[str]) -> None:
    async with control_plane(GarbageCollector, kubelet_max_grace_seconds=GRACE) as srv:
        rs = _replicaset(srv, "web")
        _pods(srv, rs, 3)
        await wait_for(lambda: all(p["status"]["phase"] == "Running" for p in srv.list("pods", namespace="default")),
                       what="pods running")
        gone = _record_deletions(srv)
        code, out, err = await kubectl(srv.kubeconfig_path, "delete", "replicaset", "web",  # type: ignore[arg-type]
                                       f"--cascade={cascade}")
        assert code == 0, err
        assert "replicaset.apps \"web\" deleted" in out
        await wait_for(lambda: _names(srv, "pods") == left, what=f"pods {sorted(left)} left")
        assert "web" not in _names(srv, "replicasets.apps")
        order = [g for g in gone if g.startswith(("pods/", "replicasets.apps/"))]
        assert (order[0] == "replicasets.apps/web") == owner_first, order
        if cascade == "foreground":
            assert order[-1] == "replicasets.apps/web"  # 3 pods, then their owner
        for pod in srv.list("pods", namespace="default"):
            assert "ownerReferences" not in pod["metadata"] and pod["status"]["phase"] == "Running"


async def test_foreground_owner_waits_for_terminating_pods() -> None:
    # The kubelets take 1 s to stop the pods: meanwhile the owner is there, marked, holding its finalizer.
    async with control_plane(GarbageCollector, kubelet_max_grace_seconds=1.0) as srv:
        rs = _replicaset(srv, "web")
        _pods(srv, rs, 2)
        await wait_for(lambda: all(p["status"]["phase"] == "Running" for p in srv.list("pods", namespace="default")),
                       what="pods running")
        code, _, err = await kubectl(srv.kubeconfig_path, "delete", "replicaset", "web",  # type: ignore[arg-type]
                                     "--cascade=foreground", "--wait=false")
        assert code == 0, err
        await wait_for(lambda: all(p["metadata"].get("deletionTimestamp") for p in srv.list("pods", namespace="default")),
                       what="pods terminating")
        owner = srv.get("replicasets.apps", "web", namespace="default")
        assert owner["metadata"]["finalizers"] == ["foregroundDeletion"] and owner["metadata"]["deletionTimestamp"]
        await wait_for(lambda: "web" not in _names(srv, "replicasets.apps"), what="owner gone after its pods")
        assert _names(srv, "pods") == set()


async def test_chain_goes_leaves_first() -> None:
    async with control_plane(GarbageCollector, kubelet_max_grace_seconds=GRACE) as srv:
        top = _replicaset(srv, "top")
        mid = _replicaset(srv, "mid", of=top)
        leaf = srv.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "leaf", "namespace": "default", "ownerReferences": [_ref(mid)]}})
        assert leaf["metadata"]["ownerReferences"][0]["uid"] == mid["metadata"]["uid"]
        gone = _record_deletions(srv)
        code, _, err = await kubectl(srv.kubeconfig_path, "delete", "rs", "top",  # type: ignore[arg-type]
                                     "--cascade=foreground")
        assert code == 0, err
        await wait_for(lambda: len(gone) == 3, what="the chain deleted")
        # top waits for mid (its blocking dependent, deleted in Foreground since it has one of its own),
        # mid waits for leaf: leaf, then mid, then top.
        assert gone == ["configmaps/leaf", "replicasets.apps/mid", "replicasets.apps/top"]


def _configmap(name: str, refs: list[dict[str, Any]], namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": refs}}


def _ghost(name: str) -> dict[str, Any]:
    """A reference to a ReplicaSet that never existed."""
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": str(uuid.uuid4())}


# owners of a ConfigMap ("real": an existing ReplicaSet, "ghost": a uid that never existed)
# -> (collected?, owners it keeps)
DANGLING = [
    (["ghost"], True, []),  # every owner missing: deleted
    (["ghost", "ghost"], True, []),
    (["real", "ghost"], False, ["real"]),  # one owner left: only the dangling reference goes
    (["real"], False, ["real"]),  # nothing to do
]


@pytest.mark.parametrize(("owners", "collected", "kept"), DANGLING)
async def test_dangling_owner_references(owners: list[str], collected: bool, kept: list[str]) -> None:
    async with control_plane(GarbageCollector, nodes=1) as srv:
        real = _replicaset(srv, "real")
        refs = [_ref(real, controller=False) if o == "real" else _ghost(f"ghost{i}") for i, o in enumerate(owners)]
        srv.create("configmaps", _configmap("dep", refs))

        def settled() -> bool:
            cm = next((c for c in srv.list("configmaps", namespace="default") if c["metadata"]["name"] == "dep"), None)
            if collected:
                return cm is None
            return cm is not None and [r["name"] for r in cm["metadata"]["ownerReferences"]] == kept
        await wait_for(settled, what=f"dep {'collected' if collected else 'keeping ' + str(kept)}")
        code, out, _ = await kubectl(srv.kubeconfig_path, "get", "cm", "dep", "-o", "name",  # type: ignore[arg-type]
                                     "--ignore-not-found")
        assert code == 0 and out.strip() == ("" if collected else "configmap/dep")


async def test_owner_in_another_namespace_is_absent_and_reported() -> None:
    async with control_plane(GarbageCollector, nodes=1) as srv:
        srv.create("namespaces", {"metadata": {"name": "other"}})
        owner = _replicaset(srv, "web")  # in default
        srv.create("configmaps", _configmap("stray", [_ref(owner)], namespace="other"))
        await wait_for(lambda: "stray" not in _names(srv, "configmaps", "other"), what="stray collected")
        assert "web" in _names(srv, "replicasets.apps")
        events = [e for e in srv.list("events", namespace="other") if e["reason"] == "OwnerRefInvalidNamespace"]
        assert events and events[0]["type"] == "Warning"
        assert events[0]["message"] == (
            f"ownerRef [apps/v1/ReplicaSet, namespace: other, name: web, uid: {owner['metadata']['uid']}] "
            'does not exist in namespace "other"')
        assert events[0]["source"]["component"] == "garbage-collector-controller"


async def test_orphaned_node_lease_follows_its_node() -> None:
    # Each node's Lease is owned by its Node: deleting the node lets the collector take the lease.
    async with control_plane(GarbageCollector, nodes=2) as srv:
        assert _names(srv, "leases", "kube-node-lease") == {"node-0000", "node-0001"}
        srv.delete_node("node-0001")
        await wait_for(lambda: _names(srv, "leases", "kube-node-lease") == {"node-0000"}, what="lease collected")
