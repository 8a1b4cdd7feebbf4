"""The Deployment controller, driven by real kubectl and the in-process API, with vecsched placing pods.

``kubectl apply`` of the example Deployment rolls out and ``kubectl rollout
status`` completes; ``scale``, ``set image`` and ``rollout undo`` work; a
RollingUpdate never has more than replicas + maxSurge pods nor fewer than
replicas - maxUnavailable available ones (checked at every pod write);
Recreate never runs two templates at once; replicas added mid-rollout are
shared in proportion; paused Deployments hold, old ReplicaSets are pruned to
``revisionHistoryLimit``; a stuck rollout reports ProgressDeadlineExceeded;
a hash collision bumps ``collisionCount``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.deployment import HASH_LABEL, REVISION, DeploymentController, compute_hash
from scheduler.apiserver.controllers.replicaset import ReplicaSetController
from scheduler.apiserver.store import Entry
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane, deployment, pods_of, running, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "deployment.yaml"
CONTROLLERS = (ReplicaSetController, DeploymentController)
PAUSE_310 = "registry.k8s.io/pause:3.10"


def status(srv: ApiServer, name: str) -> dict[str, Any]:
    return dict(srv.get("deployments", name, namespace="default").get("status") or {})


def condition(srv: ApiServer, name: str, kind: str) -> dict[str, Any]:
    return next((c for c in status(srv, name).get("conditions") or [] if c["type"] == kind), {})


def complete(srv: ApiServer, name: str) -> bool:
    """Every desired replica updated and available, no old ones, the latest spec observed (upstream's test)."""
    d = srv.get("deployments", name, namespace="default")
    st, n = d.get("status") or {}, d["spec"]["replicas"]
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("replicas", 0) == n
            and st.get("updatedReplicas", 0) == n and st.get("availableReplicas", 0) == n)


def sets(srv: ApiServer, app: str) -> list[dict[str, Any]]:
    """The ReplicaSets of Deployment ``app``, oldest revision first."""
    owned = [rs for rs in srv.list("replicasets", namespace="default")
             if any(r["name"] == app for r in rs["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))


def scaling_events(srv: ApiServer, name: str) -> list[str]:
    return [e["message"] for e in srv.list("events", namespace="default")
            if e["involvedObject"]["name"] == name and e["reason"] == "ScalingReplicaSet"]


def without_grace(d: dict[str, Any]) -> dict[str, Any]:
    # Deleted pods must go at once: the simulated kubelet does not finish graceful termination yet.
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 0
    return d


def set_image(srv: ApiServer, name: str, image: str, **spec: Any) -> None:
    """A strategic-merge patch of the first container's image (what ``kubectl set image`` sends)."""
    body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}], **spec}}}}
    srv.ops.patch(srv.resource("deployments"), content_type="application/strategic-merge-patch+json",
                  body=json.dumps(body).encode(), namespace="default", name=name)


class Census:
    """At every write to one of ``app``'s pods: active pods, available pods, templates not yet finished."""

    def __init__(self, srv: ApiServer, app: str) -> None:
        self.srv, self.app, self.on = srv, app, True
        self.samples: list[tuple[int, int, frozenset[str]]] = []
        srv.store.add_listener("pods", self._on_write)

    def _on_write(self, key: str, old: Entry | None, new: Entry | None) -> None:
        e = new or old
        if not self.on or e is None or e.labels.get("app") != self.app:
            return
        pods = [p for p in self.srv.list("pods", namespace="default")
                if (p["metadata"].get("labels") or {}).get("app") == self.app]
        unfinished = [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")]
        active = [p for p in unfinished if not p["metadata"].get("deletionTimestamp")]
        available = [p for p in active if any(c["type"] == "Ready" and c["status"] == "True"
                                              for c in p["status"].get("conditions") or [])]
        self.samples.append((len(active), len(available),
                             frozenset(p["metadata"]["labels"][HASH_LABEL] for p in unfinished)))


async def test_kubectl_apply_rollout_set_image_undo_and_scale() -> None:
    async with control_plane(*CONTROLLERS) as srv, running(srv):
        kc = srv.kubeconfig_path
        code, _, err = await kubectl(kc, "apply", "-f", str(EXAMPLE))
        assert code == 0, err
        code, out, err = await kubectl(kc, "rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
        assert code == 0 and 'deployment "web" successfully rolled out' in out, out + err

        [rs] = sets(srv, "web")
        h = rs["metadata"]["labels"][HASH_LABEL]
        assert rs["metadata"]["name"] == f"web-{h}"
        assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", HASH_LABEL: h}}
        assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
        # max-replicas = 3 + maxSurge, 25% of 3 rounded up = 4.
        assert rs["metadata"]["annotations"] == {REVISION: "1", "deployment.kubernetes.io/desired-replicas": "3",
                                                 "deployment.kubernetes.io/max-replicas": "4"}
        pods = pods_of(srv, app="web")
        assert len(pods) == 3 and all(p["status"]["phase"] == "Running" and p["spec"].get("nodeName") and
                                      p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
                                      for p in pods)
        d = srv.get("deployments", "web", namespace="default")
        assert d["metadata"]["annotations"][REVISION] == "1"
        assert {k: d["status"].get(k) for k in ("replicas", "updatedReplicas", "readyReplicas",
                                                 "availableReplicas")} == dict.fromkeys(
            ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), 3)
        assert (condition(srv, "web", "Available")["reason"], condition(srv, "web", "Progressing")["reason"]) == (
            "MinimumReplicasAvailable", "NewReplicaSetAvailable")
        assert scaling_events(srv, "web") == [f"Scaled up replica set web-{h} from 0 to 3"]

        census = Census(srv, "web")
        code, _, err = await kubectl(kc, "set", "image", "deployment/web", f"web={PAUSE_310}")
        assert code == 0, err
        code, out, err = await kubectl(kc, "rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
        assert code == 0, out + err
        census.on = False
        # 3 replicas, maxSurge 25% -> ceil(0.75) = 1, maxUnavailable 25% -> floor(0.75) = 0:
        # never more than 3 + 1 = 4 active pods, never fewer than 3 - 0 = 3 available ones.
        assert max(a for a, _, _ in census.samples) == 4
        assert min(v for _, v, _ in census.samples) >= 3
        old, new = sets(srv, "web")
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 3)
        assert new["spec"]["template"]["spec"]["containers"][0]["image"] == PAUSE_310

        code, _, err = await kubectl(kc, "rollout", "undo", "deployment/web")
        assert code == 0, err
        code, out, err = await kubectl(kc, "rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
        assert code == 0, out + err
        # The first set is the new one again, as revision 3 remembering it was revision 1.
        second, first = sets(srv, "web")
        assert first["metadata"]["name"] == f"web-{h}" and first["spec"]["replicas"] == 3
        assert (first["metadata"]["annotations"][REVISION],
                first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"]) == ("3", "1")
        assert srv.get("deployments", "web", namespace="default")["metadata"]["annotations"][REVISION] == "3"

        code, _, err = await kubectl(kc, "scale", "deployment", "web", "--replicas=5")
        assert code == 0, err
        await wait_for(lambda: complete(srv, "web") and status(srv, "web").get("availableReplicas") == 5,
                       timeout=30, what="5 available")
        code, _, err = await kubectl(kc, "scale", "deployment", "web", "--replicas=1")
        assert code == 0, err
        await wait_for(lambda: complete(srv, "web") and status(srv, "web").get("replicas") == 1, what="1 replica")
        assert scaling_events(srv, "web")[-2:] == [f"Scaled up replica set web-{h} from 3 to 5",
                                                   f"Scaled down replica set web-{h} from 5 to 1"]


ROLLING = [
    # (replicas, maxSurge, maxUnavailable, most active pods, fewest available pods)
    (3, "25%", "25%", 4, 3),  # surge rounds up: ceil(0.75) = 1; unavailable rounds down: floor(0.75) = 0
    (6, 2, "34%", 8, 4),  # floor(6 * 0.34 = 2.04) = 2 unavailable
    (4, 0, 1, 4, 3),  # no surge: a pod goes before its replacement comes
    (5, "0%", "10%", 5, 4),  # both resolve to 0 (floor(0.5)): upstream then allows 1 unavailable
    (10, "50%", "50%", 15, 5),  # 5 either way
]


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "most", "fewest"), ROLLING)
async def test_rolling_update_stays_within_surge_and_unavailability(replicas: int, surge: Any, unavailable: Any,
                                                                    most: int, fewest: int) -> None:
    async with control_plane(*CONTROLLERS) as srv, running(srv):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
        srv.create("deployments", without_grace(deployment("roll", replicas=replicas, strategy=strategy)))
        await wait_for(lambda: complete(srv, "roll"), timeout=30, what="first rollout")
        census = Census(srv, "roll")
        set_image(srv, "roll", PAUSE_310)
        await wait_for(lambda: complete(srv, "roll"), timeout=30, what="second rollout")
        census.on = False
        # The new set starts at the surge while every old pod still runs, so the top is reached.
        assert max(a for a, _, _ in census.samples) == most
        assert min(v for _, v, _ in census.samples) >= fewest
        assert [rs["spec"]["replicas"] for rs in sets(srv, "roll")] == [0, replicas]


async def test_recreate_never_runs_old_and_new_pods_together() -> None:
    async with control_plane(*CONTROLLERS) as srv, running(srv):
        # Default grace period: the old pods terminate gracefully, and Recreate must wait for them.
        srv.create("deployments", deployment("redo", replicas=3, strategy={"type": "Recreate"}))
        await wait_for(lambda: complete(srv, "redo"), timeout=30, what="first rollout")
        [old] = sets(srv, "redo")
        census = Census(srv, "redo")
        set_image(srv, "redo", PAUSE_310)
        await wait_for(lambda: sets(srv, "redo")[0]["spec"]["replicas"] == 0, what="old set scaled to 0")
        # Finish the termination the kubelet would (grace 0 removes the pods at once).
        code, _, err = await kubectl(srv.kubeconfig_path, "delete", "pods", "-l",
                                     f"{HASH_LABEL}={old['metadata']['labels'][HASH_LABEL]}",
                                     "--grace-period=0", "--force")
        assert code == 0, err
        await wait_for(lambda: complete(srv, "redo"), timeout=30, what="second rollout")
        census.on = False
        # Not one write saw pods of both templates unfinished (terminating ones included).
        assert all(len(templates) <= 1 for _, _, templates in census.samples)
        assert len({t for _, _, templates in census.samples for t in templates}) == 2
        new = sets(srv, "redo")[1]["metadata"]["name"]
        assert scaling_events(srv, "redo")[-2:] == [f"Scaled down replica set {old['metadata']['name']} from 3 to 0",
                                                    f"Scaled up replica set {new} from 0 to 3"]


async def test_replicas_added_mid_rollout_are_shared_in_proportion() -> None:
    async with control_plane(*CONTROLLERS) as srv, running(srv):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
        srv.create("deployments", without_grace(deployment("prop", replicas=10, strategy=strategy)))
        await wait_for(lambda: complete(srv, "prop"), timeout=30, what="first rollout")
        # A template whose pods admission refuses: the rollout stalls half way.
        set_image(srv, "prop", PAUSE_310, priorityClassName="missing")

        def sizes() -> list[int]:
            return [rs["spec"]["replicas"] for rs in sets(srv, "prop")]

        # New set at 13 - 10 = 3 (surge); old down by 10 available - 8 needed = 2 to 8; new up to 13 - 8 = 5;
        # then 13 - 8 - 5 unavailable new = 0 may go: stuck at [8, 5].
        await wait_for(lambda: sizes() == [8, 5], what="the stalled rollout")
        failure = condition(srv, "prop", "ReplicaFailure")  # copied from the new set
        assert failure["status"] == "True" and failure["reason"] == "FailedCreate"

        code, _, err = await kubectl(srv.kubeconfig_path, "scale", "deployment", "prop", "--replicas=20")
        assert code == 0, err
        # 20 + 3 surge - 13 = 10 more, by each set's share of its max-replicas annotation (13):
        # old round(8 * 23 / 13 = 14.15) = 14 (+6), new round(5 * 23 / 13 = 8.85) = 9 (+4).
        await wait_for(lambda: sizes() == [14, 9], what="proportional scaling")
        old, new = (rs["metadata"]["name"] for rs in sets(srv, "prop"))
        assert set(scaling_events(srv, "prop")[-2:]) == {f"Scaled up replica set {old} from 8 to 14",
                                                         f"Scaled up replica set {new} from 5 to 9"}
        for rs in sets(srv, "prop"):
            ann = rs["metadata"]["annotations"]
            assert (ann["deployment.kubernetes.io/desired-replicas"],
                    ann["deployment.kubernetes.io/max-replicas"]) == ("20", "23")


async def test_paused_deployments_hold_and_old_sets_are_pruned() -> None:
    async with control_plane(*CONTROLLERS) as srv, running(srv):
        kc = srv.kubeconfig_path
        srv.create("deployments", without_grace(deployment("hold", replicas=2, revisionHistoryLimit=1)))
        await wait_for(lambda: complete(srv, "hold"), timeout=30, what="first rollout")
        for args in (("rollout", "pause", "deployment/hold"), ("set", "image", "deployment/hold", f"app={PAUSE_310}")):
            code, _, err = await kubectl(kc, *args)
            assert code == 0, err
        generation = srv.get("deployments", "hold", namespace="default")["metadata"]["generation"]
        await wait_for(lambda: status(srv, "hold").get("observedGeneration") == generation, what="observed")
        # The new template is seen, but no set is made for it while paused.
        assert len(sets(srv, "hold")) == 1
        progressing = condition(srv, "hold", "Progressing")
        assert (progressing["status"], progressing["reason"], progressing["message"]) == (
            "Unknown", "DeploymentPaused", "Deployment is paused")

        code, _, err = await kubectl(kc, "rollout", "resume", "deployment/hold")
        assert code == 0, err
        code, out, err = await kubectl(kc, "rollout", "status", "deployment/hold", "--timeout=60s", timeout=70)
        assert code == 0, out + err
        code, _, err = await kubectl(kc, "set", "image", "deployment/hold", "app=registry.k8s.io/pause:3.8")
        assert code == 0, err
        code, out, err = await kubectl(kc, "rollout", "status", "deployment/hold", "--timeout=60s", timeout=70)
        assert code == 0, out + err
        # revisionHistoryLimit 1 keeps one old set: revision 1 is deleted once revision 3 is complete.
        await wait_for(lambda: [rs["metadata"]["annotations"][REVISION] for rs in sets(srv, "hold")] == ["2", "3"],
                       what="pruned history")


async def test_a_stuck_rollout_exceeds_its_progress_deadline() -> None:
    async with control_plane(*CONTROLLERS) as srv:
        d = deployment("stuck", replicas=2, progressDeadlineSeconds=1)
        d["spec"]["template"]["spec"]["priorityClassName"] = "missing"  # no pod can be created
        srv.create("deployments", d)
        # No progress for 1 s: a requeue timer, not a write, finds the deadline passed.
        await wait_for(lambda: condition(srv, "stuck", "Progressing").get("reason") == "ProgressDeadlineExceeded",
                       timeout=15, what="deadline")
        [rs] = sets(srv, "stuck")
        progressing = condition(srv, "stuck", "Progressing")
        assert (progressing["status"], progressing["message"]) == (
            "False", f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.')
        assert (condition(srv, "stuck", "Available")["reason"], condition(srv, "stuck", "ReplicaFailure")["reason"]) \
            == ("MinimumReplicasUnavailable", "FailedCreate")
        code, out, err = await kubectl(srv.kubeconfig_path, "rollout", "status", "deployment/stuck", "--timeout=30s",
                                       timeout=40)
        assert code == 1 and 'deployment "stuck" exceeded its progress deadline' in err, out + err


async def test_a_name_collision_bumps_collision_count() -> None:
    async with control_plane(*CONTROLLERS) as srv:
        stored = srv.create("deployments", deployment("twin", replicas=1, paused=True))  # paused: no set yet
        template = stored["spec"]["template"]
        taken = compute_hash(template, None)
        other = {"app": "other"}
        srv.create("replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": f"twin-{taken}", "namespace": "default"},
            "spec": {"replicas": 0, "selector": {"matchLabels": other},
                     "template": {"metadata": {"labels": other}, "spec": template["spec"]}}})
        code, _, err = await kubectl(srv.kubeconfig_path, "rollout", "resume", "deployment/twin")
        assert code == 0, err
        # twin-<hash> belongs to someone else: collisionCount 1 salts the hash into a free name.
        await wait_for(lambda: len(sets(srv, "twin")) == 1, what="the new set")
        salted = compute_hash(template, 1)
        assert salted != taken and status(srv, "twin").get("collisionCount") == 1
        assert sets(srv, "twin")[0]["metadata"]["name"] == f"twin-{salted}"
