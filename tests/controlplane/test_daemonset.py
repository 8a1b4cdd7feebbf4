"""The DaemonSet controller, through the API server: which nodes get a pod, nodes coming and going,
rolling updates within their bounds, status and Events.

DaemonSets are created and changed with the real kubectl; their pods name
``schedulerName: vecsched``, so the real vecsched scheduler binds each one to
the node its ``matchFields`` node affinity pins it to, and the simulated
kubelets start them. Pods have ``terminationGracePeriodSeconds: 0`` so that a
deleted pod disappears at once: until the simulated kubelet finishes graceful
terminations, a pod deleted with a grace period stays terminating.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from scheduler.apiserver import ApiServer, NodeShape
from scheduler.apiserver.controllers.daemonset import DaemonSetController
from scheduler.apiserver.store import Entry
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane, running, wait_for

DS = "daemonsets.apps"
NOT_READY = "node.kubernetes.io/not-ready"


def daemonset(name: str, *, image: str = "registry.k8s.io/pause:3.9", update: dict[str, Any] | None = None,
              **template_spec: Any) -> dict[str, Any]:
    """A DaemonSet whose pods (``app: <name>``) vecsched places."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"schedulerName": "vecsched", "terminationGracePeriodSeconds": 0,
                              "containers": [{"name": "app", "image": image,
                                              "resources": {"requests": {"cpu": "100m"}}}], **template_spec}}}
    if update is not None:
        spec["updateStrategy"] = update
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


async def kube(srv: ApiServer, *args: str, stdin: str | None = None) -> str:
    code, out, err = await kubectl(srv.kubeconfig_path, *args, stdin=stdin, timeout=40)  # type: ignore[arg-type]
    assert code == 0, f"kubectl {' '.join(args)}: {err}"
    return out


async def apply(srv: ApiServer, *objs: dict[str, Any]) -> None:
    await kube(srv, "apply", "-f", "-", stdin="\n---\n".join(json.dumps(o) for o in objs))


def status(srv: ApiServer, name: str) -> dict[str, Any]:
    return srv.get(DS, name, namespace="default").get("status") or {}


def ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def pods_of(srv: ApiServer, name: str) -> list[dict[str, Any]]:
    return [p for p in srv.list("pods", namespace="default") if p["metadata"]["labels"].get("app") == name]


def pinned(pod: dict[str, Any]) -> str:
    """The node the pod's required node affinity names (the controller's pin)."""
    [term] = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    [field] = term["matchFields"]
    assert list(term) == ["matchFields"] and (field["key"], field["operator"]) == ("metadata.name", "In")
    [node] = field["values"]
    return str(node)


def nodes_with_ready_pod(srv: ApiServer, name: str) -> set[str]:
    return {p["spec"]["nodeName"] for p in pods_of(srv, name) if ready(p)}


async def settle(srv: ApiServer) -> None:
    """Wait until the controller has nothing queued and stopped reconciling."""
    c = srv.controllers.get(DaemonSetController.name)
    while True:
        before = c.reconciles
        await asyncio.sleep(0.1)
        if srv.controllers.idle() and c.reconciles == before:
            return


# Nodes node-0000.. in this order: (labels, taints).
NODES: list[tuple[dict[str, str], list[dict[str, str]]]] = [
    ({}, []),                                                                         # 0 plain
    ({"disk": "ssd"}, []),                                                            # 1 labelled
    ({"accel": "gpu"}, [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]),    # 2 dedicated to gpu work
    ({}, [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),               # 3 evicts the intolerant
    ({}, [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]),           # 4 a preference only
    ({}, [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},        # 5 cordoned, under pressure:
          {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]),    #   daemon pods tolerate both
    ({}, [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),  # 6 hostNetwork pods only
]

# DaemonSet -> (template additions, the nodes that must get exactly one pod)
ELIGIBLE: dict[str, tuple[dict[str, Any], set[int]]] = {
    # No selector or tolerations: the untolerated NoSchedule (2, 6) and NoExecute (3) taints keep it away.
    "plain": ({}, {0, 1, 4, 5}),
    "ssd": ({"nodeSelector": {"disk": "ssd"}}, {1}),
    # Tolerates gpu and requires the label: only 2.
    "gpu": ({"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
             "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                 {"matchExpressions": [{"key": "accel", "operator": "In", "values": ["gpu"]}]}]}}}}, {2}),
    # hostNetwork adds the network-unavailable toleration: plain's nodes and 6.
    "host": ({"hostNetwork": True}, {0, 1, 4, 5, 6}),
    # Tolerates every taint: all seven.
    "everywhere": ({"tolerations": [{"operator": "Exists"}]}, set(range(7))),
}


async def test_one_pod_per_eligible_node_each_bound_to_its_node_by_vecsched() -> None:
    shapes = [NodeShape(count=1, cpu="4", memory="8Gi", labels=labels, taints=taints) for labels, taints in NODES]
    async with control_plane(DaemonSetController, nodes=shapes) as srv, running(srv):
        await apply(srv, *(daemonset(name, **extra) for name, (extra, _) in ELIGIBLE.items()))
        for name, (_, nodes) in ELIGIBLE.items():
            want = {f"node-{i:04d}" for i in nodes}
            await wait_for(lambda: nodes_with_ready_pod(srv, name) == want, timeout=20, what=f"{name} ready")
        await settle(srv)
        scheduled = {e["involvedObject"]["name"]: e["message"] for e in srv.list("events", namespace="default")
                     if e["reason"] == "Scheduled" and e["source"]["component"] == "vecsched"}
        for name, (_, nodes) in ELIGIBLE.items():
            want = {f"node-{i:04d}" for i in nodes}
            pods = pods_of(srv, name)
            assert sorted(pinned(p) for p in pods) == sorted(want), name  # exactly one per eligible node
            for p in pods:
                assert p["spec"]["nodeName"] == pinned(p)
                assert p["spec"]["schedulerName"] == "vecsched"
                assert p["metadata"]["labels"]["controller-revision-hash"]
                assert {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"} in p["spec"]["tolerations"]
            await wait_for(lambda: all(p["metadata"]["name"] in scheduled for p in pods_of(srv, name)),
                           what="vecsched's Scheduled events")
            assert all(scheduled[p["metadata"]["name"]] == f"Successfully assigned default/{p['metadata']['name']} "
                                                           f"to {pinned(p)}" for p in pods)
            n = len(want)
            assert status(srv, name) == {"currentNumberScheduled": n, "numberMisscheduled": 0,
                                         "desiredNumberScheduled": n, "numberReady": n, "observedGeneration": 1,
                                         "updatedNumberScheduled": n, "numberAvailable": n}, name
        created = [e["message"] for e in srv.list("events", namespace="default")
                   if e["involvedObject"]["name"] == "ssd" and e["reason"] == "SuccessfulCreate"]
        assert created == [f"Created pod: {pods_of(srv, 'ssd')[0]['metadata']['name']}"]


async def test_nodes_joining_leaving_and_relabelled_gain_and_lose_their_daemon_pods() -> None:
    async with control_plane(DaemonSetController, nodes=2) as srv, running(srv):
        await apply(srv, daemonset("agent"), daemonset("ssd", nodeSelector={"disk": "ssd"}))
        await wait_for(lambda: nodes_with_ready_pod(srv, "agent") == {"node-0000", "node-0001"}, timeout=20,
                       what="agent on both nodes")
        srv.add_node(name="node-extra", shape=NodeShape(cpu="4", memory="8Gi"))
        await wait_for(lambda: nodes_with_ready_pod(srv, "agent") == {"node-0000", "node-0001", "node-extra"},
                       timeout=20, what="agent on the new node")
        srv.delete_node("node-extra")
        await wait_for(lambda: {pinned(p) for p in pods_of(srv, "agent")} == {"node-0000", "node-0001"},
                       what="agent's pod on the deleted node gone")
        await wait_for(lambda: status(srv, "agent")["desiredNumberScheduled"] == 2, what="2 nodes desired")
        await kube(srv, "label", "node", "node-0001", "disk=ssd")
        await wait_for(lambda: nodes_with_ready_pod(srv, "ssd") == {"node-0001"}, timeout=20, what="ssd placed")
        await kube(srv, "label", "node", "node-0001", "disk-")
        await wait_for(lambda: not pods_of(srv, "ssd"), what="misscheduled pod deleted")
        await settle(srv)
        assert status(srv, "ssd") == {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                      "desiredNumberScheduled": 0, "numberReady": 0, "observedGeneration": 1}


@pytest.mark.parametrize("max_unavailable, max_surge, worst", [
    # 4 nodes. Without surge an old pod goes before its replacement comes: 1 node at a time (2 with
    # maxUnavailable 2) has no ready daemon pod.
    (1, 0, 1),
    (2, 0, 2),
    # maxSurge 1 (maxUnavailable must then be 0): the new pod is ready before the old one goes.
    (0, 1, 0),
])
async def test_rolling_update_never_has_more_than_max_unavailable_nodes_without_a_ready_pod(
        max_unavailable: int, max_surge: int, worst: int) -> None:
    update = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": max_surge}}
    async with control_plane(DaemonSetController, nodes=4) as srv, running(srv):
        await apply(srv, daemonset("agent", update=update))
        await kube(srv, "rollout", "status", "daemonset/agent", "--timeout=30s")
        nodes = {n["metadata"]["name"] for n in srv.list("nodes")}
        seen = {"without": 0, "per_node": 0}

        def on_pod(key: str, old: Entry | None, new: Entry | None) -> None:
            pods = pods_of(srv, "agent")
            seen["without"] = max(seen["without"], len(nodes - nodes_with_ready_pod(srv, "agent")))
            per_node = [sum(1 for p in pods if pinned(p) == n) for n in nodes]
            seen["per_node"] = max(seen["per_node"], *per_node)

        srv.store.add_listener("pods", on_pod)
        await kube(srv, "set", "image", "daemonset/agent", "app=registry.k8s.io/pause:3.10")
        out = await kube(srv, "rollout", "status", "daemonset/agent", "--timeout=30s")
        assert 'daemon set "agent" successfully rolled out' in out
        assert seen["without"] == worst
        assert seen["per_node"] == 1 + (max_surge > 0)  # surge: old and new side by side, never more
        pods = pods_of(srv, "agent")
        assert len(pods) == 4 and {p["spec"]["containers"][0]["image"] for p in pods} == {"registry.k8s.io/pause:3.10"}
        revisions = sorted((r["revision"], r["metadata"]["labels"]["controller-revision-hash"])
                           for r in srv.list("controllerrevisions.apps", namespace="default"))
        assert [n for n, _ in revisions] == [1, 2]
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {revisions[1][1]}
        assert status(srv, "agent")["updatedNumberScheduled"] == 4


async def test_on_delete_and_failed_pods() -> None:
    # No scheduler: pods stay Pending (and unbound pods are deleted at once).
    async with control_plane(DaemonSetController, nodes=2) as srv:
        await apply(srv, daemonset("agent", update={"type": "OnDelete"}))
        await wait_for(lambda: len(pods_of(srv, "agent")) == 2, what="2 pods")
        first_hash = pods_of(srv, "agent")[0]["metadata"]["labels"]["controller-revision-hash"]
        await kube(srv, "set", "image", "daemonset/agent", "app=registry.k8s.io/pause:3.10")
        await wait_for(lambda: status(srv, "agent").get("observedGeneration") == 2, what="generation 2 observed")
        await settle(srv)
        # OnDelete: the template changed, no pod was replaced.
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods_of(srv, "agent")} == {first_hash}
        assert "updatedNumberScheduled" not in status(srv, "agent")  # 0, left out as upstream does
        victim = pods_of(srv, "agent")[0]
        await kube(srv, "delete", "pod", victim["metadata"]["name"])
        await wait_for(lambda: sum(p["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.10"
                                   for p in pods_of(srv, "agent")) == 1, what="the deleted pod replaced")
        # A failed pod is deleted (with a warning) and replaced.
        other = next(p for p in pods_of(srv, "agent") if p["metadata"]["labels"]["controller-revision-hash"]
                     == first_hash)
        other["status"]["phase"] = "Failed"
        srv.ops.update(srv.resource("pods"), other, namespace="default", name=other["metadata"]["name"],
                       subresource="status")
        await wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in pods_of(srv, "agent")}
                       == {"registry.k8s.io/pause:3.10"} and len(pods_of(srv, "agent")) == 2,
                       what="the failed pod replaced")
        warnings = [e["message"] for e in srv.list("events", namespace="default") if e["reason"] == "FailedDaemonPod"]
        assert warnings == [f"Found failed daemon pod default/{other['metadata']['name']} on node "
                            f"{pinned(other)}, will try to kill it"]


async def test_kubectl_rollout_history_and_undo_read_and_restore_the_revisions() -> None:
    async with control_plane(DaemonSetController, nodes=1) as srv:
        await apply(srv, daemonset("agent"))
        await wait_for(lambda: status(srv, "agent").get("currentNumberScheduled") == 1, what="1 pod")

        def revisions() -> list[tuple[int, str]]:
            return sorted((r["revision"], r["metadata"]["labels"]["controller-revision-hash"])
                          for r in srv.list("controllerrevisions.apps", namespace="default"))

        [(_, first)] = revisions()
        assert srv.get("controllerrevisions.apps", f"agent-{first}", namespace="default")["revision"] == 1
        await kube(srv, "set", "image", "daemonset/agent", "app=registry.k8s.io/pause:3.10")
        await wait_for(lambda: len(revisions()) == 2, what="revision 2")
        out = await kube(srv, "rollout", "history", "daemonset/agent")
        assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["1", "2"]
        await kube(srv, "rollout", "undo", "daemonset/agent")
        # The first template is back: its revision is renumbered after the newest (1 -> 3), not copied.
        await wait_for(lambda: revisions()[-1] == (3, first), what="the first revision renumbered")
        await wait_for(lambda: {p["metadata"]["labels"]["controller-revision-hash"] for p in pods_of(srv, "agent")}
                       == {first}, what="the pod rolled back")
