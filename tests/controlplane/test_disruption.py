"""The disruption controller computes each PodDisruptionBudget's status as kube-controller-manager does.

The table ports the arithmetic cases of upstream's ``disruption_test.go``
(TestUnavailable, TestIntegerMaxUnavailable(WithScaling), TestNakedPod,
TestReplicaSet, TestReplicationController, TestStatefulSetController,
TestNoSelector, ...) to objects stored in the embedded API server: pods that
should be Ready are bound to a simulated node (its kubelet starts them), the
others stay Pending, and owners are created without their controllers so
that ``spec.replicas`` alone decides the scale.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.disruption import DisruptionController
from tests.apiserver.kube import kubectl

from .support import control_plane, wait_for

NS = "default"
LINGER: dict[str, Any] = {"kubelet_max_grace_seconds": None}  # deleted pods stay terminating for their 30 s grace


def _owner(srv: ApiServer, kind: str, name: str, replicas: int, *, owner: dict[str, Any] | None = None,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A workload object (its controller does not run, so it creates no pods)."""
    resource, api_version = {"ReplicaSet": ("replicasets", "apps/v1"), "Deployment": ("deployments", "apps/v1"),
                             "StatefulSet": ("statefulsets", "apps/v1"), "Job": ("jobs", "batch/v1"),
                             "ReplicationController": ("replicationcontrollers", "v1")}[kind]
    labels = labels or {"app": name}
    template = {"metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never" if kind == "Job" else "Always",
                         "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}
    spec: dict[str, Any] = {"template": template}
    if kind == "Job":
        spec["selector"] = {"matchLabels": labels}
        spec["manualSelector"] = True
    else:
        spec["replicas"] = replicas
        spec["selector"] = labels if kind == "ReplicationController" else {"matchLabels": labels}
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if owner is not None:
        meta["ownerReferences"] = [_ref(owner)]
    return srv.create(resource, {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec})


def _ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True}


def _pod(srv: ApiServer, name: str, *, ready: bool, labels: dict[str, str] | None = None,
         owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod bound to node-0000 (the kubelet makes it Running and Ready) or left Pending."""
    meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels or {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [_ref(owner)]
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    if ready:
        spec["nodeName"] = "node-0000"
    return srv.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def _pdb(srv: ApiServer, name: str = "web", **spec: Any) -> dict[str, Any]:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    return srv.create("poddisruptionbudgets", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                               "metadata": {"name": name, "namespace": NS}, "spec": spec})


def _status(srv: ApiServer, name: str = "web") -> dict[str, Any]:
    return srv.get("poddisruptionbudgets", name, namespace=NS).get("status") or {}


def _numbers(srv: ApiServer, name: str = "web") -> tuple[int, int, int, int]:
    """(disruptionsAllowed, currentHealthy, desiredHealthy, expectedPods), upstream's VerifyPdbStatus order."""
    s = _status(srv, name)
    return (s.get("disruptionsAllowed", -1), s.get("currentHealthy", -1), s.get("desiredHealthy", -1),
            s.get("expectedPods", -1))


def _ready_count(srv: ApiServer) -> int:
    return sum(1 for p in srv.list("pods", namespace=NS)
               if any(c.get("type") == "Ready" and c.get("status") == "True"
                      for c in (p.get("status") or {}).get("conditions") or []))


def _naked(ready: int, unready: int = 0) -> Any:
    def build(srv: ApiServer) -> None:
        for i in range(ready + unready):
            _pod(srv, f"web-{i}", ready=i < ready)
    return build


def _owned(kind: str, replicas: int, ready: int, unready: int = 0, *, rogue: int = 0) -> Any:
    def build(srv: ApiServer) -> None:
        owner = _owner(srv, kind, "web", replicas)
        for i in range(ready + unready):
            _pod(srv, f"web-{i}", ready=i < ready, owner=owner)
        for i in range(rogue):
            _pod(srv, f"rogue-{i}", ready=True)
    return build


def _deployment(replicas: int, rs_replicas: int, ready: int) -> Any:
    def build(srv: ApiServer) -> None:
        d = _owner(srv, "Deployment", "web", replicas)
        rs = _owner(srv, "ReplicaSet", "web-5d8f", rs_replicas, owner=d, labels={"app": "web", "hash": "5d8f"})
        for i in range(ready):
            _pod(srv, f"web-{i}", ready=True, owner=rs)
    return build


def _mixed_labels(srv: ApiServer) -> None:
    _pod(srv, "a", ready=True, labels={"app": "a"})
    _pod(srv, "b", ready=True, labels={"tier": "b"})


CASES = [
    # name, PDB spec, pods, (allowed, currentHealthy, desiredHealthy, expectedPods), ready pods
    ("minAvailable int, 4 ready naked pods", {"minAvailable": 3}, _naked(4),
     (1, 4, 3, 4), 4),  # expected = 4 pods; desired = 3; allowed = 4 - 3
    ("minAvailable int, one pod not ready", {"minAvailable": 3}, _naked(3, 1),
     (0, 3, 3, 4), 3),  # the Pending pod counts in expected, not in healthy: 3 - 3 = 0
    ("maxUnavailable int, naked pod", {"maxUnavailable": 1}, _naked(1),
     (0, 1, 0, 0), 1),  # no controller -> expected 0 -> desired max(0 - 1, 0) = 0; expected 0 allows nothing
    ("maxUnavailable int, ReplicaSet of 7", {"maxUnavailable": 2}, _owned("ReplicaSet", 7, 1),
     (0, 1, 5, 7), 1),  # expected = replicas 7; desired 7 - 2 = 5; healthy 1 < 5
    ("minAvailable percent, naked pod", {"minAvailable": "28%"}, _naked(1),
     (0, 1, 0, 0), 1),  # unmanaged pod: expected 0, desired ceil(28% of 0) = 0, allowed 0
    ("minAvailable 20% of ReplicaSet 10", {"minAvailable": "20%"}, _owned("ReplicaSet", 10, 1),
     (0, 1, 2, 10), 1),  # ceil(0.2 * 10) = 2 desired, 1 healthy
    ("minAvailable 34% of ReplicationController 3", {"minAvailable": "34%"},
     _owned("ReplicationController", 3, 3), (1, 3, 2, 3), 3),  # ceil(1.02) = 2; 3 - 2 = 1
    ("minAvailable 34% of StatefulSet 3", {"minAvailable": "34%"}, _owned("StatefulSet", 3, 3),
     (1, 3, 2, 3), 3),  # same arithmetic through a StatefulSet
    ("RC 3 and a rogue unmanaged pod", {"minAvailable": "34%"}, _owned("ReplicationController", 3, 3, rogue=1),
     (2, 4, 2, 3), 4),  # the rogue pod is healthy but adds no scale: 4 healthy - 2 desired
    ("maxUnavailable 25% of Deployment 4 via its ReplicaSet", {"maxUnavailable": "25%"}, _deployment(4, 2, 4),
     (1, 4, 3, 4), 4),  # the Deployment's 4 replicas, not the ReplicaSet's 2: ceil(1.0) = 1 -> desired 3
    ("maxUnavailable 50% of ReplicaSet 3", {"maxUnavailable": "50%"}, _owned("ReplicaSet", 3, 3),
     (2, 3, 1, 3), 3),  # ceil(1.5) = 2 unavailable -> desired 1; 3 - 1 = 2
    ("minAvailable 50% of ReplicaSet 3, one not ready", {"minAvailable": "50%"}, _owned("ReplicaSet", 3, 2, 1),
     (0, 2, 2, 3), 2),  # ceil(1.5) = 2 desired, 2 healthy
    ("empty selector selects every pod of the namespace", {"minAvailable": 1, "selector": {}}, _mixed_labels,
     (1, 2, 1, 2), 2),  # policy/v1: {} matches all; 2 pods, 2 healthy, 1 desired
    ("no minAvailable or maxUnavailable", {}, _naked(2),
     (0, 2, 0, 0), 2),  # nothing to compute: expected and desired 0, so nothing is allowed
]


@pytest.mark.parametrize("spec,build,want,ready", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_budget_status_numbers(spec: dict[str, Any], build: Any, want: tuple[int, int, int, int],
                                     ready: int) -> None:
    async with control_plane(DisruptionController) as srv:
        build(srv)
        await wait_for(lambda: _ready_count(srv) == ready, what=f"{ready} Ready pods")
        pdb = _pdb(srv, **spec)
        await wait_for(lambda: _numbers(srv) == want, what=f"PDB status {want}, last {_numbers(srv)}")
        status = _status(srv)
        assert status["observedGeneration"] == pdb["metadata"]["generation"] == 1
        [cond] = status["conditions"]
        allowed = want[0] > 0
        assert (cond["type"], cond["status"], cond["reason"]) == (
            "DisruptionAllowed", "True" if allowed else "False", "SufficientPods" if allowed else "InsufficientPods")


async def test_readiness_and_label_changes_resync_the_budget() -> None:
    async with control_plane(DisruptionController) as srv:
        _naked(3)(srv)
        await wait_for(lambda: _ready_count(srv) == 3, what="3 Ready pods")
        _pdb(srv, minAvailable=2)
        await wait_for(lambda: _numbers(srv) == (1, 3, 2, 3), what="3 healthy, 1 allowed")  # 3 - 2 = 1
        pod = srv.get("pods", "web-0", namespace=NS)
        for c in pod["status"]["conditions"]:
            if c["type"] == "Ready":
                c["status"] = "False"
        srv.ops.update(srv.resource("pods"), pod, namespace=NS, name="web-0", subresource="status")
        await wait_for(lambda: _numbers(srv) == (0, 2, 2, 3), what="2 healthy, 0 allowed")  # 2 - 2 = 0
        assert _status(srv)["conditions"][0]["reason"] == "InsufficientPods"
        assert srv.kubeconfig_path is not None
        code, out, err = await kubectl(srv.kubeconfig_path, "get", "pdb", "web", "-o",
                                       "jsonpath={.status.disruptionsAllowed}/{.status.currentHealthy}")
        assert (code, out) == (0, "0/2"), err
        pod = srv.get("pods", "web-1", namespace=NS)
        pod["metadata"]["labels"] = {"app": "other"}
        srv.ops.update(srv.resource("pods"), pod, namespace=NS, name="web-1")
        await wait_for(lambda: _numbers(srv) == (0, 1, 2, 2), what="web-1 gone from the budget")  # 1 - 2 < 0


async def test_terminating_pods_are_not_healthy() -> None:
    async with control_plane(DisruptionController, **LINGER) as srv:
        _naked(2)(srv)
        await wait_for(lambda: _ready_count(srv) == 2, what="2 Ready pods")
        _pdb(srv, minAvailable=1)
        await wait_for(lambda: _numbers(srv) == (1, 2, 1, 2), what="2 healthy")
        srv.ops.delete(srv.resource("pods"), namespace=NS, name="web-0")  # graceful: it stays, terminating
        await wait_for(lambda: _numbers(srv) == (0, 1, 1, 2), what="the terminating pod not counted")  # 1 - 1


async def test_disrupted_pods_expire_after_the_deletion_timeout() -> None:
    # With a 3 s timeout: an entry 10 minutes old is dropped at once (NotDeleted), a fresh one keeps its pod
    # out of currentHealthy until it expires, and a timer re-syncs the budget then.
    async with control_plane(DisruptionController,
                             controller_settings={"disruption.deletion_timeout_seconds": 3.0}) as srv:
        _naked(3)(srv)
        await wait_for(lambda: _ready_count(srv) == 3, what="3 Ready pods")
        _pdb(srv, minAvailable=1)
        await wait_for(lambda: _numbers(srv) == (2, 3, 1, 3), what="3 healthy")
        pdb = srv.get("poddisruptionbudgets", "web", namespace=NS)
        old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
        fresh = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pdb["status"]["disruptedPods"] = {"web-0": old, "web-1": fresh, "gone": fresh}
        srv.ops.update(srv.resource("poddisruptionbudgets"), pdb, namespace=NS, name="web", subresource="status")
        # web-0 expired and "gone" names no pod: both dropped; web-1 is not healthy while listed: 2 - 1 = 1.
        await wait_for(lambda: _numbers(srv) == (1, 2, 1, 3), what="web-1 listed as disrupted")
        assert _status(srv)["disruptedPods"] == {"web-1": fresh}
        [ev] = [e for e in srv.list("events", namespace=NS) if e["reason"] == "NotDeleted"]
        assert ev["involvedObject"]["name"] == "web-0" and ev["type"] == "Warning"
        assert ev["message"] == "Pod was expected by PDB default/default to be deleted but it wasn't"
        await wait_for(lambda: _numbers(srv) == (2, 3, 1, 3), timeout=10, what="web-1's entry expired")
        assert "disruptedPods" not in _status(srv)


CAN_NOT_SYNC = [
    # name, selector / spec, pods, message of the SyncFailed condition, Event reason
    ("an unknown selector operator", {"minAvailable": 1, "selector": {"matchExpressions": [
        {"key": "app", "operator": "Foo", "values": ["web"]}]}}, _naked(1),
     '"Foo" is not a valid label selector operator', "NoPods"),
    ("a percentage over a Job's pods", {"minAvailable": "50%"}, _owned("Job", 0, 1),
     "jobs.batch does not implement the scale subresource", "CalculateExpectedPodCountFailed"),
    ("a percentage that is not one", {"maxUnavailable": "3"}, _owned("ReplicaSet", 3, 1),
     "invalid value for IntOrString: invalid type: string is not a percentage", "CalculateExpectedPodCountFailed"),
]


@pytest.mark.parametrize("spec,build,message,reason", [c[1:] for c in CAN_NOT_SYNC], ids=[c[0] for c in CAN_NOT_SYNC])
async def test_budgets_that_cannot_be_computed_fail_safe(spec: dict[str, Any], build: Any, message: str,
                                                        reason: str) -> None:
    async with control_plane(DisruptionController) as srv:
        build(srv)
        _pdb(srv, **spec)

        def failed() -> bool:
            conds = _status(srv).get("conditions") or []
            return bool(conds) and conds[0]["reason"] == "SyncFailed"

        await wait_for(failed, what="the SyncFailed condition")
        status = _status(srv)
        assert status["disruptionsAllowed"] == 0
        [cond] = status["conditions"]
        assert (cond["type"], cond["status"], cond["message"]) == ("DisruptionAllowed", "False", message)
        events = [e for e in srv.list("events", namespace=NS) if e["reason"] == reason]
        assert events and events[0]["type"] == "Warning" and events[0]["source"]["component"] == "controllermanager"
        assert message in events[0]["message"]


async def test_unmanaged_pods_and_empty_budgets_are_reported_once() -> None:
    async with control_plane(DisruptionController) as srv:
        _pdb(srv, maxUnavailable="10%")
        await wait_for(lambda: _numbers(srv) == (0, 0, 0, 0), what="an empty budget")
        _naked(2)(srv)
        await wait_for(lambda: _numbers(srv) == (0, 2, 0, 0), what="2 unmanaged healthy pods")
        events = {(e["reason"], e["message"]) for e in srv.list("events", namespace=NS)}
        assert ("NoPods", "No matching pods found") in events
        [unmanaged] = [e for e in srv.list("events", namespace=NS) if e["reason"] == "UnmanagedPods"]
        assert unmanaged["message"].startswith(
            "Pods selected by this PodDisruptionBudget (selector: &LabelSelector{MatchLabels:map[string]string"
            "{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}) were found to be unmanaged.")
        assert unmanaged["count"] == 1


async def test_writes_to_pods_outside_every_budget_do_not_wake_the_controller() -> None:
    async with control_plane(DisruptionController) as srv:
        _naked(1)(srv)
        _pdb(srv, minAvailable=1)
        await wait_for(lambda: _numbers(srv) == (0, 1, 1, 1), what="the budget synced")
        c = srv.controllers.get("disruption-controller")
        await wait_for(srv.controllers.idle, what="an idle controller")
        before = c.reconciles
        for i in range(20):  # pods with other labels: no budget selects them
            _pod(srv, f"batch-{i}", ready=True, labels={"app": "batch"})
        await wait_for(lambda: _ready_count(srv) == 21, what="the other pods running")
        assert c.reconciles == before
