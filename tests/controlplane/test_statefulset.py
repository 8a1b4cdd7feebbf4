"""The StatefulSet controller, through the API server: order, identity, storage, updates, status.

StatefulSets are created and changed with the real kubectl (and the
in-process API where a test plays the kubelet); pods are bound by the real
vecsched scheduler where a test needs them Running, and the simulated
kubelets start them. Pods that must disappear the moment they are deleted
(scale-down and update tests) have ``terminationGracePeriodSeconds: 0``:
until the simulated kubelet finishes graceful terminations, a pod deleted with
a grace period stays terminating.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.statefulset import StatefulSetController
from scheduler.apiserver.store import Entry
from tests.apiserver.kube import kube_client, kubectl
from tests.controlplane.support import control_plane, running, wait_for

STS = "statefulsets.apps"


def statefulset(name: str = "web", *, replicas: int = 3, grace: int = 0, image: str = "registry.k8s.io/pause:3.9",
                **spec: Any) -> dict[str, Any]:
    """A StatefulSet whose pods (``app: <name>``) vecsched places."""
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"schedulerName": "vecsched", "terminationGracePeriodSeconds": grace,
                                           "containers": [{"name": "app", "image": image,
                                                           "resources": {"requests": {"cpu": "100m"}}}]}},
                     **spec}}


async def kube(srv: ApiServer, *args: str, stdin: str | None = None) -> str:
    code, out, err = await kubectl(srv.kubeconfig_path, *args, stdin=stdin, timeout=40)  # type: ignore[arg-type]
    assert code == 0, f"kubectl {' '.join(args)}: {err}"
    return out


async def apply(srv: ApiServer, obj: dict[str, Any]) -> None:
    await kube(srv, "apply", "-f", "-", stdin=json.dumps(obj))


def status(srv: ApiServer, name: str = "web") -> dict[str, Any]:
    return srv.get(STS, name, namespace="default").get("status") or {}


def pods(srv: ApiServer) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in srv.list("pods", namespace="default")}


def running_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conds)


def messages(srv: ApiServer, reason: str) -> list[str]:
    return [e["message"] for e in sorted(srv.list("events", namespace="default"), key=lambda e: e["metadata"]["name"])
            if e["involvedObject"]["kind"] == "StatefulSet" and e["reason"] == reason]


async def settle(srv: ApiServer) -> None:
    """Wait until the controller has nothing queued and stopped reconciling (a correct controller
    passes whether or not this waits long enough; a wrong one is caught when it does)."""
    c = srv.controllers.get(StatefulSetController.name)
    while True:
        before = c.reconciles
        await asyncio.sleep(0.1)
        if srv.controllers.idle() and c.reconciles == before:
            return


async def test_ordered_ready_creates_each_ordinal_after_its_predecessors_are_ready() -> None:
    async with control_plane(StatefulSetController) as srv, running(srv):
        created: list[tuple[str, bool]] = []  # (pod, were all lower ordinals Running and Ready then)

        def on_pod(key: str, old: Entry | None, new: Entry | None) -> None:
            if old is None and new is not None:
                ordinal = int(new.name.rsplit("-", 1)[1])
                now = pods(srv)
                created.append((new.name, all(running_ready(now[f"web-{i}"]) for i in range(ordinal))))

        srv.store.add_listener("pods", on_pod)
        await apply(srv, statefulset())
        out = await kube(srv, "rollout", "status", "statefulset/web", "--timeout=30s")
        # web-1 can only be created once web-0 is Running and Ready, and web-2 once web-0 and web-1
        # are: vecsched binds each pod and the kubelet starts it *after* its creation, so whatever the
        # timing, the order is 0, 1, 2, and no pod ever comes before a predecessor is ready.
        assert created == [("web-0", True), ("web-1", True), ("web-2", True)]
        assert "partitioned roll out complete: 3 new pods have been updated..." in out
        st = status(srv)
        revision = st["updateRevision"]
        assert st == {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                      "currentReplicas": 3, "updatedReplicas": 3, "currentRevision": revision,
                      "updateRevision": revision, "collisionCount": 0}
        for i, (name, pod) in enumerate(sorted(pods(srv).items())):
            assert pod["metadata"]["labels"] == {
                "app": "web", "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(i),
                "controller-revision-hash": revision}
            assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (name, "web")
            assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
            assert pod["spec"]["nodeName"]  # bound by vecsched
        [rev] = srv.list("controllerrevisions.apps", namespace="default")
        assert (rev["metadata"]["name"], rev["revision"]) == (revision, 1)
        assert messages(srv, "SuccessfulCreate") == [f"create Pod web-{i} in StatefulSet web successful"
                                                      for i in range(3)]


@pytest.mark.parametrize("policy, expected", [
    # No scheduler runs, so web-0 stays Pending: OrderedReady waits for it before web-1...
    ("OrderedReady", ["web-0"]),
    # ...while Parallel creates every ordinal at once, ready or not.
    ("Parallel", ["web-0", "web-1", "web-2"]),
])
async def test_pod_management_policy(policy: str, expected: list[str]) -> None:
    async with control_plane(StatefulSetController) as srv:
        await apply(srv, statefulset(podManagementPolicy=policy))
        await wait_for(lambda: status(srv).get("replicas") == len(expected), what=f"{len(expected)} pods created")
        await settle(srv)
        assert sorted(pods(srv)) == expected
        assert all(p["status"]["phase"] == "Pending" for p in pods(srv).values())


async def test_scale_down_removes_the_highest_ordinal_first_and_waits_until_it_is_gone() -> None:
    # A 30 s grace period: deleted pods stay terminating until the test (playing the kubelet)
    # force-deletes them, so "waits until it is gone" is observable.
    async with control_plane(StatefulSetController) as srv, running(srv):
        deleting: list[str] = []

        def on_pod(key: str, old: Entry | None, new: Entry | None) -> None:
            if old is not None and new is not None and b"deletionTimestamp" in new.raw \
                    and b"deletionTimestamp" not in old.raw:
                deleting.append(new.name)

        srv.store.add_listener("pods", on_pod)
        await apply(srv, statefulset(grace=30))
        await wait_for(lambda: status(srv).get("readyReplicas") == 3, timeout=20, what="3 ready")
        await kube(srv, "scale", "statefulset/web", "--replicas=1")
        await wait_for(lambda: deleting == ["web-2"], what="web-2 terminating")
        await settle(srv)
        assert deleting == ["web-2"]  # web-1 waits while web-2 is still terminating
        await kube(srv, "delete", "pod", "web-2", "--grace-period=0", "--force")
        await wait_for(lambda: deleting == ["web-2", "web-1"], what="web-1 terminating")
        await kube(srv, "delete", "pod", "web-1", "--grace-period=0", "--force")
        await wait_for(lambda: status(srv).get("replicas") == 1, what="1 replica")
        await settle(srv)
        assert deleting == ["web-2", "web-1"] and sorted(pods(srv)) == ["web-0"]
        assert messages(srv, "SuccessfulDelete") == ["delete Pod web-2 in StatefulSet web successful",
                                                     "delete Pod web-1 in StatefulSet web successful"]


async def test_volume_claim_templates_create_claims_that_outlive_their_pods() -> None:
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    sts = statefulset(replicas=2, podManagementPolicy="Parallel", volumeClaimTemplates=[
        {"metadata": {"name": "data"}, "spec": claim},
        {"metadata": {"name": "logs", "labels": {"tier": "logs"}}, "spec": claim}])
    async with control_plane(StatefulSetController) as srv:
        await apply(srv, sts)
        await wait_for(lambda: status(srv).get("replicas") == 2, what="2 pods")
        claims = {c["metadata"]["name"]: c for c in srv.list("persistentvolumeclaims", namespace="default")}
        # <template>-<set>-<ordinal>: 2 templates x 2 ordinals
        assert sorted(claims) == ["data-web-0", "data-web-1", "logs-web-0", "logs-web-1"]
        assert claims["logs-web-1"]["metadata"]["labels"] == {"tier": "logs", "app": "web"}  # + the selector's
        assert claims["data-web-0"]["spec"]["resources"] == claim["resources"]
        assert not claims["data-web-0"]["metadata"].get("ownerReferences")  # Retain: nobody owns them
        volumes = pods(srv)["web-1"]["spec"]["volumes"]
        assert [(v["name"], v["persistentVolumeClaim"]["claimName"]) for v in volumes] == [
            ("data", "data-web-1"), ("logs", "logs-web-1")]
        assert "create Claim data-web-0 Pod web-0 in StatefulSet web success" in messages(srv, "SuccessfulCreate")
        uids = {n: c["metadata"]["uid"] for n, c in claims.items()}
        await kube(srv, "scale", "statefulset/web", "--replicas=0")
        await wait_for(lambda: not pods(srv), what="no pods")
        await kube(srv, "scale", "statefulset/web", "--replicas=2")
        await wait_for(lambda: len(pods(srv)) == 2, what="pods back")
        # The same claims, never recreated.
        assert {c["metadata"]["name"]: c["metadata"]["uid"]
                for c in srv.list("persistentvolumeclaims", namespace="default")} == uids


async def test_claim_retention_policy_sets_claim_owners() -> None:
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    sts = statefulset(replicas=2, podManagementPolicy="Parallel",
                      persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"},
                      volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": claim}])

    def owners(name: str) -> list[str]:
        c = srv.get("persistentvolumeclaims", name, namespace="default")
        return [f"{r['kind']}/{r['name']}" for r in c["metadata"].get("ownerReferences") or []]

    async with control_plane(StatefulSetController) as srv:
        await apply(srv, sts)
        await wait_for(lambda: status(srv).get("replicas") == 2, what="2 pods")
        await settle(srv)
        # whenDeleted=Delete: the set owns the claims of its pods (the garbage collector deletes them with it)
        assert owners("data-web-0") == owners("data-web-1") == ["StatefulSet/web"]
        await kube(srv, "scale", "statefulset/web", "--replicas=1")
        await wait_for(lambda: sorted(pods(srv)) == ["web-0"], what="web-1 gone")
        # whenScaled=Delete: the scaled-down pod owns its claim before it is deleted
        assert owners("data-web-1") == ["Pod/web-1"] and owners("data-web-0") == ["StatefulSet/web"]


async def test_rolling_update_with_partition_updates_only_ordinals_at_or_above_it() -> None:
    async with control_plane(StatefulSetController) as srv, running(srv):
        deleted: list[str] = []
        srv.store.add_listener("pods", lambda k, old, new: deleted.append(old.name) if new is None and old else None)
        await apply(srv, statefulset())
        await kube(srv, "rollout", "status", "statefulset/web", "--timeout=30s")
        old_revision = status(srv)["currentRevision"]
        await kube(srv, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps({"spec": {
            "updateStrategy": {"rollingUpdate": {"partition": 2}},
            "template": {"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}}}))
        out = await kube(srv, "rollout", "status", "statefulset/web", "--timeout=30s")
        # replicas 3 - partition 2 = 1 pod updated: only web-2, the only ordinal >= 2
        assert "partitioned roll out complete: 1 new pods have been updated..." in out
        st = status(srv)
        new_revision = st["updateRevision"]
        assert new_revision != old_revision and st["currentRevision"] == old_revision
        assert (st["currentReplicas"], st["updatedReplicas"], st["readyReplicas"]) == (2, 1, 3)
        images = {n: (p["spec"]["containers"][0]["image"], p["metadata"]["labels"]["controller-revision-hash"])
                  for n, p in pods(srv).items()}
        assert images == {"web-0": ("registry.k8s.io/pause:3.9", old_revision),
                          "web-1": ("registry.k8s.io/pause:3.9", old_revision),
                          "web-2": ("registry.k8s.io/pause:3.10", new_revision)}
        assert deleted == ["web-2"]
        await kube(srv, "patch", "statefulset/web", "-p",
                   '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
        await wait_for(lambda: status(srv).get("currentRevision") == new_revision, timeout=20, what="complete")
        # From the highest ordinal down, one at a time; then the update is complete.
        assert deleted == ["web-2", "web-1", "web-0"]
        assert status(srv)["currentReplicas"] == status(srv)["updatedReplicas"] == 3
        revisions = sorted((r["revision"], r["metadata"]["name"])
                           for r in srv.list("controllerrevisions.apps", namespace="default"))
        assert revisions == [(1, old_revision), (2, new_revision)]


async def test_on_delete_replaces_a_pod_only_when_it_is_deleted() -> None:
    async with control_plane(StatefulSetController) as srv:
        await apply(srv, statefulset(replicas=2, podManagementPolicy="Parallel", updateStrategy={"type": "OnDelete"}))
        await wait_for(lambda: status(srv).get("replicas") == 2, what="2 pods")
        await kube(srv, "set", "image", "statefulset/web", "app=registry.k8s.io/pause:3.10")
        await wait_for(lambda: status(srv).get("updateRevision") != status(srv).get("currentRevision"),
                       what="a new update revision")
        await settle(srv)
        assert {p["spec"]["containers"][0]["image"] for p in pods(srv).values()} == {"registry.k8s.io/pause:3.9"}
        await kube(srv, "delete", "pod", "web-0")
        await wait_for(lambda: pods(srv).get("web-0", {}).get("spec", {}).get("containers", [{}])[0].get("image")
                       == "registry.k8s.io/pause:3.10", what="web-0 recreated from the new template")
        assert pods(srv)["web-1"]["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.9"


async def test_a_failed_pod_is_deleted_and_created_again() -> None:
    async with control_plane(StatefulSetController) as srv, running(srv):
        await apply(srv, statefulset(replicas=2))
        await wait_for(lambda: status(srv).get("readyReplicas") == 2, timeout=20, what="2 ready")
        first = pods(srv)["web-1"]["metadata"]["uid"]
        async with await kube_client(srv.kubeconfig_path) as api:  # type: ignore[arg-type]
            await client.CoreV1Api(api).patch_namespaced_pod_status(
                "web-1", "default", {"status": {"phase": "Failed"}})
        await wait_for(lambda: (p := pods(srv).get("web-1")) is not None and p["metadata"]["uid"] != first
                       and running_ready(p), timeout=20, what="a new web-1 running")
        assert "delete Pod web-1 in StatefulSet web successful" in messages(srv, "SuccessfulDelete")
        await wait_for(lambda: status(srv).get("readyReplicas") == 2, what="2 ready again")


async def test_kubectl_rollout_history_and_undo_read_and_restore_the_revisions() -> None:
    async with control_plane(StatefulSetController) as srv:
        await apply(srv, statefulset(replicas=1, podManagementPolicy="Parallel"))
        await wait_for(lambda: status(srv).get("replicas") == 1, what="1 pod")
        first = status(srv)["updateRevision"]
        await kube(srv, "set", "image", "statefulset/web", "app=registry.k8s.io/pause:3.10")
        await wait_for(lambda: status(srv).get("updateRevision") not in (None, first), what="revision 2")
        out = await kube(srv, "rollout", "history", "statefulset/web")
        assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["1", "2"]
        await kube(srv, "rollout", "undo", "statefulset/web")
        # The first template is back: its revision is renumbered after the newest (1 -> 3), not copied.
        await wait_for(lambda: status(srv).get("updateRevision") == first, what="back to the first revision")
        assert srv.get(STS, "web", namespace="default")["spec"]["template"]["spec"]["containers"][0]["image"] \
            == "registry.k8s.io/pause:3.9"
        assert sorted((r["revision"], r["metadata"]["name"] == first)
                      for r in srv.list("controllerrevisions.apps", namespace="default")) == [(2, False), (3, True)]
