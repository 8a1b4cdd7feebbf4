"""/validate-podgroups: PodGroups that can never run are refused with kube-apiserver's field errors;
minResources is compared with every node's allocatable summed (Coscheduling's CheckClusterResource
spreads a gang over nodes), kept current by the Nodes informer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.kube.client import ClientSettings
from tests.live.support import wait_for
from tests.webhook.support import Pki, post, response_of, review, webhook

# 2 nodes of 4 CPU / 8Gi and 2 of 8 CPU / 16Gi with 4 GPUs each:
# cpu 2*4 + 2*8 = 24, memory 2*8Gi + 2*16Gi = 48Gi, nvidia.com/gpu 2*4 = 8, pods 4*110 = 440.
SHAPES = [NodeShape(count=2, cpu="4", memory="8Gi"), NodeShape(count=2, cpu="8", memory="16Gi", gpus=4)]


def podgroup(spec: Any, name: str = "pg") -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


REGEX = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
NEVER = "so the group can never be scheduled"

CASES: list[tuple[str, Any, list[str]]] = [
    ("a plain gang", {"minMember": 3}, []),
    ("minMember 0", {"minMember": 0}, ["spec.minMember: Invalid value: 0: must be greater than or equal to 1"]),
    ("minMember negative", {"minMember": -2},
     ["spec.minMember: Invalid value: -2: must be greater than or equal to 1"]),
    ("minMember unset (reads as 0)", {}, ["spec.minMember: Required value: must be greater than or equal to 1"]),
    ("no spec at all", None, ["spec.minMember: Required value: must be greater than or equal to 1"]),
    ("minMember a string", {"minMember": "3"}, ['spec.minMember: Invalid value: "3": must be an integer']),
    ("minMember past int32", {"minMember": 2**31},
     ["spec.minMember: Invalid value: 2147483648: must be less than or equal to 2147483647"]),
    ("timeout 0", {"minMember": 2, "scheduleTimeoutSeconds": 0},
     ["spec.scheduleTimeoutSeconds: Invalid value: 0: must be greater than 0"]),
    ("timeout negative", {"minMember": 2, "scheduleTimeoutSeconds": -5},
     ["spec.scheduleTimeoutSeconds: Invalid value: -5: must be greater than 0"]),
    ("timeout 60", {"minMember": 2, "scheduleTimeoutSeconds": 60}, []),
    # exactly the totals fit: 24 <= 24 cpu, 48Gi <= 48Gi, 8 <= 8 GPUs -- more than any one node holds
    ("minResources = the whole cluster", {"minMember": 2, "minResources": {
        "cpu": "24", "memory": "48Gi", "nvidia.com/gpu": 8, "pods": "440"}}, []),
    # 24001m > 24000m
    ("cpu one milli past the cluster", {"minMember": 2, "minResources": {"cpu": "24001m"}},
     [f'spec.minResources[cpu]: Invalid value: "24001m": exceeds the 24 allocatable on all 4 nodes together, {NEVER}']),
    # 48Gi + 1 byte
    ("memory past the cluster", {"minMember": 2, "minResources": {"memory": str(48 * 2**30 + 1)}},
     [f'spec.minResources[memory]: Invalid value: "51539607553": exceeds the 48Gi allocatable on all 4 nodes '
      f'together, {NEVER}']),
    ("9 GPUs of 8", {"minMember": 2, "minResources": {"nvidia.com/gpu": 9}},
     [f"spec.minResources[nvidia.com/gpu]: Invalid value: 9: exceeds the 8 allocatable on all 4 nodes together, "
      f"{NEVER}"]),
    ("a resource no node offers", {"minMember": 1, "minResources": {"example.com/fpga": "1"}},
     [f'spec.minResources[example.com/fpga]: Invalid value: "1": no node offers example.com/fpga, {NEVER}']),
    ("zero of a resource no node offers is fine", {"minMember": 1, "minResources": {"example.com/fpga": "0"}}, []),
    ("unparsable quantity", {"minMember": 1, "minResources": {"cpu": "lots"}},
     [f'spec.minResources[cpu]: Invalid value: "lots": {REGEX}']),
    ("negative quantity", {"minMember": 1, "minResources": {"memory": "-1Gi"}},
     ['spec.minResources[memory]: Invalid value: "-1Gi": must be greater than or equal to 0']),
    ("minResources not a map", {"minMember": 1, "minResources": ["cpu"]},
     ['spec.minResources: Invalid value: ["cpu"]: must be a map of resource names to quantities']),
    ("spec not an object", "big", ['spec: Invalid value: "big": must be an object']),
    ("every error at once", {"minMember": 0, "scheduleTimeoutSeconds": 0, "minResources": {"cpu": "x"}},
     ["spec.minMember: Invalid value: 0: must be greater than or equal to 1",
      f'spec.minResources[cpu]: Invalid value: "x": {REGEX}',
      "spec.scheduleTimeoutSeconds: Invalid value: 0: must be greater than 0"]),
]


async def test_podgroup_field_errors(pki: Pki, http: aiohttp.ClientSession) -> None:
    ctx = pki.client_context()
    async with serve_apiserver(nodes=SHAPES) as srv, webhook(pki, srv) as wh:
        for case_id, spec, expected in CASES:
            obj = podgroup(spec)
            if spec is None:
                del obj["spec"]
            for operation in ("CREATE", "UPDATE"):
                sent = review(obj, kind="PodGroup", operation=operation, old=podgroup({"minMember": 1})
                              if operation == "UPDATE" else None)
                resp = response_of(*await post(http, f"{wh.url}/validate-podgroups", sent, ctx=ctx), sent)
                assert resp["allowed"] is (not expected), case_id
                assert "patch" not in resp and "warnings" not in resp, case_id
                if not expected:
                    continue
                status = resp["status"]
                assert status["code"] == 422 and status["reason"] == "Invalid", case_id
                agg = expected[0] if len(expected) == 1 else "[" + ", ".join(expected) + "]"
                assert status["message"] == f'PodGroup.scheduling.x-k8s.io "pg" is invalid: {agg}', case_id
                details = status["details"]
                assert (details["group"], details["kind"], details["name"]) == ("scheduling.x-k8s.io", "PodGroup", "pg")
                assert [f"{c['field']}: {c['message']}" for c in details["causes"]] == expected, case_id
                assert {c["reason"] for c in details["causes"]} <= {"FieldValueInvalid", "FieldValueRequired"}
        # DELETE and the status subresource are not checked
        for sent in (review(None, kind="PodGroup", operation="DELETE", name="pg", old=podgroup({"minMember": 0})),
                     dict(review(podgroup({"minMember": 0}), kind="PodGroup", operation="UPDATE"))):
            if sent["request"]["operation"] == "UPDATE":
                sent["request"]["subResource"] = "status"
            resp = response_of(*await post(http, f"{wh.url}/validate-podgroups", sent, ctx=ctx), sent)
            assert resp == {"uid": sent["request"]["uid"], "allowed": True}


async def test_capacity_follows_the_nodes(pki: Pki, http: aiohttp.ClientSession) -> None:
    """A gang needing 12 GPUs is refused on 8 and admitted once a third 4-GPU node joins (12);
    with no node at all the capacity rule is skipped, with a warning."""
    ctx = pki.client_context()
    obj = podgroup({"minMember": 3, "minResources": {"nvidia.com/gpu": "12"}})
    async with serve_apiserver(nodes=SHAPES) as srv, webhook(pki, srv) as wh:
        async def allowed() -> dict[str, Any]:
            sent = review(obj, kind="PodGroup")
            return response_of(*await post(http, f"{wh.url}/validate-podgroups", sent, ctx=ctx), sent)

        assert (await allowed())["allowed"] is False
        srv.add_node(name="gpu-extra", shape=NodeShape(cpu="8", memory="16Gi", gpus=4))
        assert wh.nodes is not None
        await wait_for(lambda: wh.nodes.capacity().totals.get("nvidia.com/gpu") == 12,  # type: ignore[union-attr]
                       what="the new node's GPUs")
        assert (await allowed())["allowed"] is True
        srv.delete_node("gpu-extra")
        await wait_for(lambda: wh.nodes.capacity().totals.get("nvidia.com/gpu") == 8,  # type: ignore[union-attr]
                       what="the node's removal")
        assert (await allowed())["allowed"] is False
    async with serve_apiserver(nodes=0) as srv, webhook(pki, srv) as wh:
        resp = await allowed()
        assert resp["allowed"] is True
        assert resp["warnings"] == ["vecsched webhook: spec.minResources not checked against the cluster: no Nodes "
                                    "are known to the webhook"]


async def test_namespaces_only_role(pki: Pki, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """Under a role that may read namespaces only, the webhook serves: pods are routed, and the
    PodGroup capacity rule is skipped with a warning (the Nodes list answered 403)."""
    rbac = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "wh"},
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "wh"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "wh"},
         "subjects": [{"kind": "ServiceAccount", "name": "wh", "namespace": "vecsched"}]}]
    ctx = pki.client_context()
    async with serve_apiserver(nodes=SHAPES, rbac=rbac, tokens={"t": "system:serviceaccount:vecsched:wh"}) as srv:
        kubeconfig = srv.kubeconfig_for(token="t", path=tmp_path / "wh.kubeconfig")
        async with webhook(pki, srv, client=ClientSettings(kubeconfig=str(kubeconfig))) as wh:
            sent = review(podgroup({"minMember": 1, "minResources": {"nvidia.com/gpu": 99}}), kind="PodGroup")
            resp = response_of(*await post(http, f"{wh.url}/validate-podgroups", sent, ctx=ctx), sent)
            assert resp["allowed"] is True and "not checked against the cluster" in resp["warnings"][0]
        denied = {(d.resource, d.verb) for d in srv.authorizer.log if not d.allowed}
        assert denied == {("nodes", "list")}, denied
