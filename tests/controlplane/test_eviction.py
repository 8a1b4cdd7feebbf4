"""The Eviction API deletes a pod only as its PodDisruptionBudget allows, with kube-apiserver's answers.

The table calls ``evict`` in-process against a running server whose budget
statuses are written by hand (no disruption controller runs, so the numbers
in each row are exactly what the eviction reads). The last tests run the
disruption controller and prove the rule end to end: of three ready pods
under ``minAvailable: 2`` one may go, a second only once a replacement is
Ready.
"""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.apiserver import ApiError, ApiServer
from scheduler.apiserver.controllers.deployment import DeploymentController
from scheduler.apiserver.controllers.disruption import DisruptionController
from scheduler.apiserver.controllers.replicaset import ReplicaSetController
from scheduler.apiserver.eviction import evict

from .support import control_plane, deployment, pods_of, wait_for

NS = "default"
LINGER: dict[str, Any] = {"kubelet_max_grace_seconds": None}  # deleted pods stay terminating for their 30 s grace
TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."


def _pod(srv: ApiServer, name: str, *, running: bool = True, labels: dict[str, str] | None = None,
         owner: dict[str, Any] | None = None, start: bool = True) -> dict[str, Any]:
    """A pod; ``running`` binds it to node-0000 and, with ``start``, marks it Running and Ready at once
    (as its kubelet would a moment later), so that a table row reads a settled pod."""
    meta: dict[str, Any] = {"name": name, "namespace": NS, "labels": labels or {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    if running:
        spec["nodeName"] = "node-0000"
    pod = srv.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    if running and start:
        pod["status"].update(phase="Running", conditions=[
            {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2024-01-01T00:00:00Z"}])
        pod = srv.ops.update(srv.resource("pods"), pod, namespace=NS, name=name, subresource="status").obj()
    return pod


def _set_pod_status(srv: ApiServer, name: str, *, phase: str | None = None, ready: bool | None = None) -> None:
    pod = srv.get("pods", name, namespace=NS)
    if phase is not None:
        pod["status"]["phase"] = phase
    if ready is not None:
        for c in pod["status"].get("conditions") or []:
            if c["type"] == "Ready":
                c["status"] = "True" if ready else "False"
    srv.ops.update(srv.resource("pods"), pod, namespace=NS, name=name, subresource="status")


def _pdb(srv: ApiServer, name: str = "web", *, allowed: int, healthy: int, desired: int, lag: bool = False,
         selector: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A budget with the status a disruption controller would have written."""
    pdb = srv.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": NS},
        "spec": {"minAvailable": desired, "selector": selector or {"matchLabels": {"app": "web"}}, **spec}})
    if lag:  # a spec change the controller has not seen yet: generation 2, observedGeneration 1
        pdb["spec"]["minAvailable"] = desired + 1
        pdb = srv.ops.update(srv.resource("poddisruptionbudgets"), pdb, namespace=NS, name=name).obj()
    pdb["status"] = {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": healthy,
                     "desiredHealthy": desired, "expectedPods": healthy,
                     "conditions": [{"type": "DisruptionAllowed", "status": "True" if allowed else "False",
                                     "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
                                     "observedGeneration": 1, "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    return srv.ops.update(srv.resource("poddisruptionbudgets"), pdb, namespace=NS, name=name,
                          subresource="status").obj()


def _body(name: str, **delete_options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NS}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


def _evict(srv: ApiServer, name: str, body: Any = None, *, dry_run: bool = False) -> dict[str, Any]:
    return evict(store=srv.store, ops=srv.ops, namespace=NS, name=name, body=body or _body(name), dry_run=dry_run)


def _pod_state(srv: ApiServer, name: str) -> str:
    """gone, terminating or present."""
    found = [p for p in srv.list("pods", namespace=NS) if p["metadata"]["name"] == name]
    if not found:
        return "gone"
    return "terminating" if found[0]["metadata"].get("deletionTimestamp") else "present"


def _allowed(srv: ApiServer, name: str = "web") -> int:
    return int(srv.get("poddisruptionbudgets", name, namespace=NS)["status"]["disruptionsAllowed"])


def _running(srv: ApiServer, *names: str) -> bool:
    return all(srv.get("pods", n, namespace=NS)["status"].get("phase") == "Running" for n in names)


def _setup_plain(srv: ApiServer) -> None:
    _pod(srv, "p")
    _pdb(srv, allowed=1, healthy=3, desired=2)


def _setup_no_budget_left(srv: ApiServer) -> None:
    _pod(srv, "p")
    _pdb(srv, allowed=0, healthy=2, desired=2)


def _setup_pending(srv: ApiServer) -> None:
    _pod(srv, "p", running=False)
    _pdb(srv, allowed=0, healthy=2, desired=2)


def _setup_finished(srv: ApiServer) -> None:
    _pod(srv, "p")
    _set_pod_status(srv, "p", phase="Succeeded", ready=False)
    _pdb(srv, allowed=0, healthy=2, desired=2)


def _setup_terminating(srv: ApiServer) -> None:
    _pod(srv, "p")
    srv.ops.delete(srv.resource("pods"), namespace=NS, name="p")  # graceful: 30 s
    _pdb(srv, allowed=0, healthy=2, desired=2)


def _setup_two_budgets(srv: ApiServer) -> None:
    _pod(srv, "p")
    _pdb(srv, "a", allowed=1, healthy=3, desired=2)
    _pdb(srv, "b", allowed=1, healthy=3, desired=2, selector={})


def _setup_lagging(srv: ApiServer) -> None:
    _pod(srv, "p")
    _pdb(srv, allowed=1, healthy=3, desired=2, lag=True)


def _setup_unready_healthy_app(srv: ApiServer) -> None:
    _pod(srv, "p")
    _set_pod_status(srv, "p", ready=False)
    _pdb(srv, allowed=0, healthy=2, desired=2)  # the app has the 2 it needs without p


def _setup_unready_hurt_app(srv: ApiServer) -> None:
    _pod(srv, "p")
    _set_pod_status(srv, "p", ready=False)
    _pdb(srv, allowed=0, healthy=1, desired=2)


def _setup_unready_always_allow(srv: ApiServer) -> None:
    _pod(srv, "p")
    _set_pod_status(srv, "p", ready=False)
    _pdb(srv, allowed=0, healthy=1, desired=2, unhealthyPodEvictionPolicy="AlwaysAllow")


def _setup_unmatched(srv: ApiServer) -> None:
    _pod(srv, "p", labels={"app": "other"})
    _pdb(srv, allowed=0, healthy=2, desired=2)


def _setup_too_many_disrupted(srv: ApiServer) -> None:
    _pod(srv, "p")
    pdb = _pdb(srv, allowed=5, healthy=9, desired=2)
    pdb["status"]["disruptedPods"] = {f"x{i}": "2024-01-01T00:00:00Z" for i in range(2001)}
    srv.ops.update(srv.resource("poddisruptionbudgets"), pdb, namespace=NS, name="web", subresource="status")


RULES = [
    # name, setup, eviction body options, HTTP code, message or cause, pod afterwards, allowed afterwards
    ("budget allows one", _setup_plain, {}, 201, "", "terminating", 1 - 1),
    ("budget allows none", _setup_no_budget_left, {}, 429,
     "The disruption budget web needs 2 healthy pods and has 2 currently", "present", 0),
    ("pending pod: no budget check", _setup_pending, {}, 201, "", "gone", 0),  # unbound: deleted at once
    ("finished pod: no budget check", _setup_finished, {}, 201, "", "gone", 0),
    ("terminating pod: no budget check", _setup_terminating, {}, 201, "", "terminating", 0),
    ("two budgets", _setup_two_budgets, {}, 500,
     "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
     "present", 1),
    ("budget status lags its spec", _setup_lagging, {}, 429,
     "The disruption budget web is still being processed by the server.", "present", 1),
    ("unready pod, application healthy", _setup_unready_healthy_app, {}, 201, "", "terminating", 0),
    ("unready pod, application short", _setup_unready_hurt_app, {}, 429,
     "The disruption budget web needs 2 healthy pods and has 1 currently", "present", 0),
    ("unready pod, AlwaysAllow", _setup_unready_always_allow, {}, 201, "", "terminating", 0),
    ("no budget selects the pod", _setup_unmatched, {}, 201, "", "terminating", 0),
    ("grace period 0", _setup_plain, {"gracePeriodSeconds": 0}, 201, "", "gone", 1 - 1),
    ("uid precondition fails", _setup_plain, {"preconditions": {"uid": "not-it"}}, 409,
     'Operation cannot be fulfilled on Pod "p": the UID in the precondition (not-it) does not match the UID in '
     "record", "present", 0),  # as upstream, the budget is spent first; its entry expires after 2 minutes
    ("too many unconfirmed evictions", _setup_too_many_disrupted, {}, 403,
     'poddisruptionbudget.policy "web" is forbidden: DisruptedPods map too big - too many evictions not '
     "confirmed by PDB controller", "present", 5),
]


@pytest.mark.parametrize("setup,options,code,text,pod_after,allowed_after", [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
async def test_eviction_rules(setup: Any, options: dict[str, Any], code: int, text: str, pod_after: str,
                              allowed_after: int) -> None:
    async with control_plane(**LINGER) as srv:
        setup(srv)
        try:
            status = _evict(srv, "p", _body("p", **options))
        except ApiError as e:
            assert e.code == code, e.message
            body = e.status()
            causes = [c["message"] for c in (body.get("details") or {}).get("causes") or []]
            assert body["message"].startswith(text) or text in causes, body
            if code == 429:
                assert body["message"] == TOO_MANY and body["reason"] == "TooManyRequests"
                assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
        else:
            assert code == 201
            assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        assert _pod_state(srv, "p") == pod_after
        budgets = {p["metadata"]["name"] for p in srv.list("poddisruptionbudgets", namespace=NS)}
        assert _allowed(srv, "web" if "web" in budgets else "a") == allowed_after


async def test_an_approved_eviction_is_recorded_on_budget_and_pod() -> None:
    async with control_plane(**LINGER) as srv:
        _setup_plain(srv)
        _evict(srv, "p")
        status = srv.get("poddisruptionbudgets", "web", namespace=NS)["status"]
        assert status["disruptionsAllowed"] == 0  # 1 - 1
        assert list(status["disruptedPods"]) == ["p"]
        cond = status["conditions"][0]
        assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")  # it reached 0
        pod = srv.get("pods", "p", namespace=NS)
        assert pod["metadata"]["deletionGracePeriodSeconds"] == 30  # the pod's own grace period
        target = [c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert [(c["status"], c["reason"], c["message"]) for c in target] == [
            ("True", "EvictionByEvictionAPI", "Eviction API: evicting")]


async def test_refusals_of_the_request_itself() -> None:
    async with control_plane() as srv:
        _setup_plain(srv)
        cases = [
            ("missing", _body("missing"), 404, 'pods "missing" not found'),
            ("p", _body("q"), 400, "name in URL does not match name in Eviction object"),
            ("p", {**_body("p"), "kind": "Pod"}, 400, 'Pod in version "policy/v1" cannot be handled as a Eviction: '
                                                      "the kind does not match the endpoint"),
            ("p", _body("p", preconditions={"resourceVersion": "1"}), 409, None),
        ]
        for name, body, code, message in cases:
            with pytest.raises(ApiError) as info:
                _evict(srv, name, body)
            assert info.value.code == code
            if message is not None:
                assert info.value.message == message
        assert _pod_state(srv, "p") == "present"


async def test_dry_run_changes_nothing() -> None:
    async with control_plane() as srv:
        _setup_plain(srv)
        rv = srv.get("poddisruptionbudgets", "web", namespace=NS)["metadata"]["resourceVersion"]
        assert _evict(srv, "p", _body("p", dryRun=["All"]))["status"] == "Success"
        assert _evict(srv, "p", dry_run=True)["status"] == "Success"
        assert srv.get("poddisruptionbudgets", "web", namespace=NS)["metadata"]["resourceVersion"] == rv
        pod = srv.get("pods", "p", namespace=NS)
        assert "deletionTimestamp" not in pod["metadata"]
        assert not [c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget"]


async def test_the_budget_the_controller_computes_gates_evictions() -> None:
    # A Deployment-like set: a ReplicaSet of 3 (its controller does not run; the test plays it) and
    # minAvailable 2. 3 healthy - 2 desired = 1 allowed: the first eviction goes through; then 2 healthy -
    # 2 = 0 and the second is refused, until a replacement pod is Ready (3 - 2 = 1 again).
    async with control_plane(DisruptionController, **LINGER) as srv:
        rs = srv.create("replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                         {"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}}})
        for i in range(3):
            _pod(srv, f"web-{i}", owner=rs, start=False)  # the simulated kubelet starts them
        await wait_for(lambda: _running(srv, "web-0", "web-1", "web-2"), what="3 running pods")
        srv.create("poddisruptionbudgets", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                            "metadata": {"name": "web", "namespace": NS},
                                            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})

        def numbers() -> tuple[int, int, int]:
            s = srv.get("poddisruptionbudgets", "web", namespace=NS).get("status") or {}
            return s.get("disruptionsAllowed", -1), s.get("currentHealthy", -1), s.get("desiredHealthy", -1)

        await wait_for(lambda: numbers() == (1, 3, 2), what="1 disruption allowed")
        _evict(srv, "web-0")
        assert _pod_state(srv, "web-0") == "terminating"
        await wait_for(lambda: numbers() == (0, 2, 2), what="the controller seeing web-0 go")
        with pytest.raises(ApiError) as refused:
            _evict(srv, "web-1")
        assert refused.value.code == 429
        cause = "The disruption budget web needs 2 healthy pods and has 2 currently"  # 3 - 1 evicted = 2 = desired
        assert refused.value.details is not None
        assert refused.value.details["causes"] == [{"reason": "DisruptionBudget", "message": cause}]
        assert _pod_state(srv, "web-1") == "present"
        _pod(srv, "web-3", owner=rs, start=False)  # the replacement the ReplicaSet controller would create
        await wait_for(lambda: numbers() == (1, 3, 2), what="the replacement Ready")
        _evict(srv, "web-1")
        assert _pod_state(srv, "web-1") == "terminating"
        await wait_for(lambda: numbers() == (0, 2, 2), what="web-1 going")


async def test_a_real_deployment_is_protected_until_its_replacement_is_ready() -> None:
    # The same rule with the Deployment and ReplicaSet controllers running: 3 replicas bound to node-0000,
    # minAvailable 2. The node is made NotReady after they start, so the replacement the ReplicaSet creates
    # for an evicted pod cannot start (its kubelet is down) until the node is Ready again.
    async with control_plane(DeploymentController, ReplicaSetController, DisruptionController, **LINGER) as srv:
        manifest = deployment("web", replicas=3, scheduler="default-scheduler")
        manifest["spec"]["template"]["spec"]["nodeName"] = "node-0000"
        srv.create("deployments", manifest)
        srv.create("poddisruptionbudgets", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                            "metadata": {"name": "web", "namespace": NS},
                                            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})

        def ready_pods() -> list[str]:
            return sorted(p["metadata"]["name"] for p in pods_of(srv, app="web")
                          if not p["metadata"].get("deletionTimestamp") and p["spec"].get("nodeName")
                          and any(c["type"] == "Ready" and c["status"] == "True"
                                  for c in p["status"].get("conditions") or []))

        def allowed() -> int:
            return int((srv.get("poddisruptionbudgets", "web", namespace=NS).get("status") or {})
                       .get("disruptionsAllowed", -1))

        await wait_for(lambda: len(ready_pods()) == 3 and allowed() == 1, timeout=20, what="3 ready, 1 allowed")
        first, second, _ = ready_pods()
        srv.set_node_ready("node-0000", False)
        _evict(srv, first)  # 3 healthy - 2 desired = 1
        await wait_for(lambda: len(pods_of(srv, app="web")) == 4, what="the ReplicaSet's replacement")
        await wait_for(lambda: allowed() == 0, what="the budget spent")
        with pytest.raises(ApiError) as refused:
            _evict(srv, second)  # 2 healthy - 2 desired = 0
        assert refused.value.code == 429
        srv.set_node_ready("node-0000", True)
        await wait_for(lambda: len(ready_pods()) == 3 and allowed() == 1, timeout=20, what="the replacement Ready")
        _evict(srv, second)
        assert _pod_state(srv, second) == "terminating"
