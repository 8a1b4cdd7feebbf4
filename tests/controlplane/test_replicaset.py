"""The ReplicaSet and ReplicationController controllers, driven by kubectl and the in-process API.

A ReplicaSet keeps ``spec.replicas`` active pods: it creates them from its
template with an ownerReference, in slow-start batches capped at 500 per sync;
adopts matching orphans and releases pods relabelled away; deletes the excess
in upstream's preference order; reports counts and a ReplicaFailure condition
when admission refuses its pods, and recovers once the cause is gone.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.replicaset import ReplicaSetController, ReplicationManager
from scheduler.apiserver.store import Entry
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane, pods_of, wait_for

PAUSE = "registry.k8s.io/pause:3.9"


def replica_set(name: str, *, replicas: int, labels: dict[str, str] | None = None, node: str = "",
                **spec: Any) -> dict[str, Any]:
    """A ReplicaSet selecting ``labels`` (``app: <name>``); ``node`` pins its pods, bypassing the scheduler."""
    labels = labels or {"app": name}
    pod: dict[str, Any] = {"schedulerName": "vecsched", "containers": [{"name": "app", "image": PAUSE}]}
    if node:
        pod["nodeName"] = node
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}, **spec}}


def status(srv: ApiServer, name: str, resource: str = "replicasets") -> dict[str, Any]:
    return dict(srv.get(resource, name, namespace="default").get("status") or {})


def events(srv: ApiServer, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about ``name``."""
    return [(e["type"], e["reason"], e["message"]) for e in srv.list("events", namespace="default")
            if e["involvedObject"]["name"] == name]


def active(p: dict[str, Any]) -> bool:
    return not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") not in ("Succeeded", "Failed")


async def test_creates_owned_pods_reports_status_and_scales_down() -> None:
    async with control_plane(ReplicaSetController) as srv:
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-",
                                     stdin=json.dumps(replica_set("web", replicas=3, node="node-0000")))
        assert code == 0, err
        await wait_for(lambda: status(srv, "web").get("availableReplicas") == 3, what="3 available pods")
        rs = srv.get("replicasets", "web", namespace="default")
        # 3 pods, all carrying the template's labels, started Running and Ready by the kubelet.
        assert rs["status"] == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                                "availableReplicas": 3, "observedGeneration": 1, "terminatingReplicas": 0}
        pods = pods_of(srv, app="web")
        names = {p["metadata"]["name"] for p in pods}
        for p in pods:
            assert p["metadata"]["generateName"] == "web-" and p["metadata"]["name"].startswith("web-")
            assert p["metadata"]["ownerReferences"] == [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
        assert sorted(events(srv, "web")) == sorted(("Normal", "SuccessfulCreate", f"Created pod: {n}") for n in names)

        code, _, err = await kubectl(srv.kubeconfig_path, "scale", "replicaset", "web", "--replicas=1")
        assert code == 0, err
        # 3 -> 1: two pods go; bound pods are deleted gracefully, so they may linger as terminating,
        # which terminatingReplicas counts (until the kubelet removes them).
        def scaled() -> bool:
            st = status(srv, "web")
            left = [p for p in pods_of(srv, app="web") if p["metadata"].get("deletionTimestamp")]
            return st.get("replicas") == 1 and st.get("observedGeneration") == 2 and \
                st.get("terminatingReplicas") == len(left)
        await wait_for(scaled, what="one replica left")
        deleted = [m for t, r, m in events(srv, "web") if r == "SuccessfulDelete"]
        assert len(deleted) == 2 and {m.removeprefix("Deleted pod: ") for m in deleted} < names
        assert sum(active(p) for p in pods_of(srv, app="web")) == 1


async def test_the_status_written_with_a_scale_down_leaves_the_deleted_pods_out() -> None:
    # A Deployment rolls on from the first status whose observedGeneration is current; if that
    # status still counted the pods just deleted as available, it would scale old sets further
    # down than maxUnavailable allows.
    async with control_plane(ReplicaSetController) as srv:
        srv.create("replicasets", replica_set("web", replicas=4, node="node-0000"), namespace="default")
        await wait_for(lambda: status(srv, "web").get("availableReplicas") == 4, what="4 available pods")
        seen: list[dict[str, Any]] = []

        def on_write(key: str, old: Entry | None, new: Entry | None) -> None:
            if new is not None and new.obj()["metadata"]["name"] == "web":
                seen.append(dict(new.obj().get("status") or {}))

        srv.store.add_listener("replicasets.apps", on_write)
        code, _, err = await kubectl(srv.kubeconfig_path, "scale", "replicaset", "web", "--replicas=1")
        assert code == 0, err
        await wait_for(lambda: status(srv, "web").get("observedGeneration") == 2, what="the scale-down observed")
        first = next(st for st in seen if st.get("observedGeneration") == 2)
        # 4 -> 1: three pods deleted (gracefully: they may still be terminating), one left available.
        assert (first["replicas"], first["readyReplicas"], first["availableReplicas"]) == (1, 1, 1)


async def test_creates_at_most_a_burst_of_500_pods_per_sync() -> None:
    async with control_plane(ReplicaSetController) as srv:
        seen: list[tuple[int, int]] = []

        def on_write(key: str, old: Entry | None, new: Entry | None) -> None:
            st = (new.obj().get("status") or {}) if new is not None else {}
            if "observedGeneration" in st:  # written by the controller
                pods = sum(1 for _ in srv.store.entries(srv.resource("pods"), "default"))
                seen.append((int(st.get("replicas", 0)), pods))

        srv.store.add_listener("replicasets.apps", on_write)
        srv.create("replicasets", replica_set("wide", replicas=600))  # no scheduler: pods stay Pending
        await wait_for(lambda: status(srv, "wide").get("replicas") == 600, timeout=30, what="600 pods")
        # Status counts the pods a sync found before it acted: the first sync found 0 and created
        # upstream's burst of 500 (batches 1+2+4+...+128+245), the next found 500 and created the other 100.
        assert seen[0] == (0, 500)
        assert (500, 600) in seen
        assert all(pods - counted <= 500 for counted, pods in seen)
        assert sum(r == "SuccessfulCreate" for _, r, _ in events(srv, "wide")) == 600


async def test_adopts_a_matching_orphan_and_releases_a_relabelled_pod() -> None:
    async with control_plane(ReplicaSetController) as srv:
        srv.create("pods", {"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": "stray", "namespace": "default", "labels": {"app": "web"}},
                            "spec": {"schedulerName": "vecsched", "containers": [{"name": "app", "image": PAUSE}]}})
        rs = srv.create("replicasets", replica_set("web", replicas=2))
        uid = rs["metadata"]["uid"]

        def controller(name: str) -> str | None:
            refs = srv.get("pods", name, namespace="default")["metadata"].get("ownerReferences") or []
            return next((r["uid"] for r in refs if r.get("controller")), None)

        # The orphan counts towards 2 replicas, so only one pod is created.
        await wait_for(lambda: status(srv, "web").get("replicas") == 2, what="2 replicas")
        assert controller("stray") == uid
        created = [m.removeprefix("Created pod: ") for _, r, m in events(srv, "web") if r == "SuccessfulCreate"]
        assert len(created) == 1 and controller(created[0]) == uid

        code, _, err = await kubectl(srv.kubeconfig_path, "label", "pod", created[0], "app=other", "--overwrite")
        assert code == 0, err
        # No longer selected: released (ownerReference removed) and replaced by a new pod.
        await wait_for(lambda: controller(created[0]) is None and
                       sum(r == "SuccessfulCreate" for _, r, _ in events(srv, "web")) == 2, what="release")
        await wait_for(lambda: status(srv, "web").get("replicas") == 2, what="a replacement")
        assert {p["metadata"]["name"] for p in pods_of(srv, app="web")} >= {"stray"}
        assert "ownerReferences" not in srv.get("pods", created[0], namespace="default")["metadata"]


def _ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


# Scaling n pods down to n-1 deletes the pod upstream's ActivePodsWithRanks puts first. Every
# state is written by the test on NotReady nodes (so no kubelet changes it); the pods exist before
# their ReplicaSet, which adopts them all. Its owner is a Deployment, so that colocation ranks count.
# The expected pod is never the one the last tie-breaks would pick (first by name, or newest: pods
# are created in reverse name order), so each row passes only through its own rule.
DELETION_ORDER = [
    # (rule, {pod: (node, phase, ready, ready_seconds_ago, restarts, deletion_cost)}, deleted first)
    ("unassigned before assigned", {"a": ("node-0000", "Pending", False, 0, 0, 0),
                                    "b": ("", "Pending", False, 0, 0, 0)}, {"b"}),
    ("Pending before Running", {"a": ("node-0001", "Running", True, 60, 0, 0),
                                "b": ("node-0000", "Pending", False, 0, 0, 0)}, {"b"}),
    ("Unknown before Running", {"a": ("node-0000", "Running", False, 0, 0, 0),
                                "b": ("node-0001", "Unknown", False, 0, 0, 0)}, {"b"}),
    ("not ready before ready", {"a": ("node-0000", "Running", True, 60, 0, 0),
                                "b": ("node-0001", "Running", False, 0, 0, 0)}, {"b"}),
    ("lower pod-deletion-cost first", {"a": ("node-0000", "Running", True, 60, 0, 5),
                                       "b": ("node-0001", "Running", True, 60, 0, -5)}, {"b"}),
    # b and c share node-0000 (rank 2), a is alone (rank 1): one of the doubled-up pair goes.
    ("doubled up before alone", {"a": ("node-0001", "Running", True, 60, 0, 0),
                                 "b": ("node-0000", "Running", True, 60, 0, 0),
                                 "c": ("node-0000", "Running", True, 60, 0, 0)}, {"b", "c"}),
    # Ready 10 s (log2(1e10 ns) = 33) against an hour (log2(3.6e12 ns) = 41): the newer goes.
    ("ready for less time first", {"a": ("node-0000", "Running", True, 3600, 0, 0),
                                   "b": ("node-0001", "Running", True, 10, 0, 0)}, {"b"}),
    ("more restarts first", {"a": ("node-0000", "Running", True, 60, 0, 0),
                             "b": ("node-0001", "Running", True, 60, 3, 0)}, {"b"}),
]


@pytest.mark.parametrize(("rule", "pods", "first"), DELETION_ORDER, ids=[r[0] for r in DELETION_ORDER])
async def test_scaling_down_deletes_in_upstreams_order(rule: str, pods: dict[str, tuple[Any, ...]],
                                                       first: set[str]) -> None:
    async with control_plane(ReplicaSetController) as srv:
        for node in ("node-0000", "node-0001"):
            srv.set_node_ready(node, False)
        ready_at = _ago(60)  # a fixed instant shared by the rows that must tie on readiness time
        pods_rt = srv.resource("pods")
        for name, (node, phase, ready, ago, restarts, cost) in sorted(pods.items(), reverse=True):
            meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": "ranked"}}
            if cost:
                meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
            spec: dict[str, Any] = {"schedulerName": "vecsched", "containers": [{"name": "app", "image": PAUSE}]}
            if node:
                spec["nodeName"] = node
            pod = srv.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
            pod["status"] = {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": ready_at if ago == 60 else _ago(ago)}],
                "containerStatuses": [{"name": "app", "ready": ready, "restartCount": restarts, "image": PAUSE,
                                       "imageID": "", "state": {}}]}
            srv.ops.update(pods_rt, pod, namespace="default", name=name, subresource="status")
        owner = srv.create("deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ranked", "namespace": "default"},
            "spec": {"replicas": len(pods), "selector": {"matchLabels": {"app": "ranked"}},
                     "template": {"metadata": {"labels": {"app": "ranked"}},
                                  "spec": {"containers": [{"name": "app", "image": PAUSE}]}}}})
        rs = replica_set("ranked", replicas=len(pods), labels={"app": "ranked"})
        rs["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "ranked",
                                              "uid": owner["metadata"]["uid"], "controller": True}]
        srv.create("replicasets", rs)
        await wait_for(lambda: status(srv, "ranked").get("replicas") == len(pods), what="all pods adopted")
        assert not events(srv, "ranked")  # adopted, none created

        code, _, err = await kubectl(srv.kubeconfig_path, "scale", "rs", "ranked", f"--replicas={len(pods) - 1}")
        assert code == 0, err
        await wait_for(lambda: any(r == "SuccessfulDelete" for _, r, _ in events(srv, "ranked")), what="a deletion")
        deleted = {m.removeprefix("Deleted pod: ") for _, r, m in events(srv, "ranked") if r == "SuccessfulDelete"}
        assert len(deleted) == 1 and deleted <= first, rule


async def test_refused_creates_give_replica_failure_until_the_cause_is_fixed() -> None:
    async with control_plane(ReplicaSetController) as srv:
        rs = replica_set("gold", replicas=2)
        rs["spec"]["template"]["spec"]["priorityClassName"] = "gold"  # admission refuses: no such class
        srv.create("replicasets", rs)

        def failure() -> dict[str, Any] | None:
            return next((c for c in status(srv, "gold").get("conditions") or [] if c["type"] == "ReplicaFailure"),
                        None)

        await wait_for(lambda: failure() is not None, what="ReplicaFailure")
        cond = failure()
        assert cond is not None and cond["status"] == "True" and cond["reason"] == "FailedCreate"
        assert "no PriorityClass with name gold was found" in cond["message"]
        warnings = [m for t, r, m in events(srv, "gold") if (t, r) == ("Warning", "FailedCreate")]
        assert warnings and all(m.startswith("Error creating: ") and "no PriorityClass with name gold" in m
                                for m in warnings)
        assert not pods_of(srv, app="gold") and status(srv, "gold")["replicas"] == 0

        # The controller kept running: once the class exists its retries succeed and the condition goes.
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "gold"},
            "value": 1000}))
        assert code == 0, err
        await wait_for(lambda: status(srv, "gold").get("replicas") == 2 and failure() is None, timeout=30,
                       what="recovery")


async def test_min_ready_seconds_delays_availability() -> None:
    async with control_plane(ReplicaSetController) as srv:
        seen: list[tuple[int, int]] = []

        def on_write(key: str, old: Entry | None, new: Entry | None) -> None:
            st = (new.obj().get("status") or {}) if new is not None else {}
            if "observedGeneration" in st:  # written by the controller
                seen.append((int(st.get("readyReplicas", 0)), int(st.get("availableReplicas", 0))))

        srv.store.add_listener("replicasets.apps", on_write)
        srv.create("replicasets", replica_set("slow", replicas=2, node="node-0000", minReadySeconds=3))
        await wait_for(lambda: status(srv, "slow").get("availableReplicas") == 2, timeout=15, what="available")
        # Ready pods count as available only after 3 s; a requeue timer (not a pod write) makes them so.
        assert (2, 0) in seen and seen[-1] == (2, 2)


async def test_replication_controllers_run_the_same_loop() -> None:
    async with control_plane(ReplicationManager) as srv:
        rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
              "spec": {"replicas": 2, "selector": {"app": "legacy"},
                       "template": {"metadata": {"labels": {"app": "legacy"}},
                                    "spec": {"nodeName": "node-0001",
                                             "containers": [{"name": "app", "image": PAUSE}]}}}}
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=json.dumps(rc))
        assert code == 0, err
        await wait_for(lambda: status(srv, "legacy", "replicationcontrollers").get("readyReplicas") == 2,
                       what="2 ready pods")
        uid = srv.get("replicationcontrollers", "legacy", namespace="default")["metadata"]["uid"]
        for p in pods_of(srv, app="legacy"):
            assert p["metadata"]["ownerReferences"][0] | {"uid": ""} == {
                "apiVersion": "v1", "kind": "ReplicationController", "name": "legacy", "uid": "",
                "controller": True, "blockOwnerDeletion": True}
            assert p["metadata"]["ownerReferences"][0]["uid"] == uid
        # core/v1 status has no terminatingReplicas; Events come from the replication-controller.
        assert "terminatingReplicas" not in status(srv, "legacy", "replicationcontrollers")
        sources = {e["source"]["component"] for e in srv.list("events", namespace="default")
                   if e["involvedObject"]["name"] == "legacy"}
        assert sources == {"replication-controller"}
        code, _, err = await kubectl(srv.kubeconfig_path, "scale", "rc", "legacy", "--replicas=3")
        assert code == 0, err
        await wait_for(lambda: status(srv, "legacy", "replicationcontrollers").get("readyReplicas") == 3,
                       what="3 ready pods")
