"""Bearer tokens and RBAC: 401 without a token, 403 with the real message, and a decision log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer, Authorizer, Decision, User, load_rbac, serve_apiserver
from scheduler.apiserver.auth import Attributes, read_token_file

from .kube import kube_client, pod_manifest

RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: vecsched}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/binding]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [vecsched]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: vecsched}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: vecsched}
subjects:
- {kind: ServiceAccount, name: vecsched, namespace: vecsched}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: events, namespace: default}
rules:
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: events, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: events}
subjects:
- {kind: Group, name: "system:serviceaccounts:vecsched"}
"""
SA = "system:serviceaccount:vecsched:vecsched"


@pytest.fixture
async def secured() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=1, tokens={"sa-token": SA, "nobody-token": "nobody"}, rbac=load_rbac(RBAC)) as srv:
        yield srv


async def _client(srv: ApiServer, token: str, tmp_path: Path) -> client.ApiClient:
    return await kube_client(srv.kubeconfig_for(token=token, path=tmp_path / f"{token}.kubeconfig"))


async def test_allowed_and_forbidden(secured: ApiServer, tmp_path: Path) -> None:
    secured.create("pods", pod_manifest("web-1"), namespace="default")
    async with await _client(secured, "sa-token", tmp_path) as api:
        core = client.CoreV1Api(api)
        assert [p.metadata.name for p in (await core.list_pod_for_all_namespaces()).items] == ["web-1"]
        resp = await core.create_namespaced_pod_binding(
            "web-1", "default", {"metadata": {"name": "web-1"}, "target": {"kind": "Node", "name": "node-0000"}},
            _preload_content=False)
        assert resp.status == 201
        await core.create_namespaced_event("default", {"metadata": {"name": "e1"}, "involvedObject": {"name": "web-1"}})
        with pytest.raises(client.exceptions.ApiException) as e:
            await core.list_node()
        assert e.value.status == 403
        assert json.loads(e.value.body)["message"] == (
            f'nodes is forbidden: User "{SA}" cannot list resource "nodes" in API group "" at the cluster scope')
        with pytest.raises(client.exceptions.ApiException) as e:
            await core.delete_namespaced_pod("web-1", "default")
        assert json.loads(e.value.body)["message"] == (
            f'pods "web-1" is forbidden: User "{SA}" cannot delete resource "pods" in API group "" '
            'in the namespace "default"')
        with pytest.raises(client.exceptions.ApiException) as e:
            await core.create_namespaced_event("kube-system", {"metadata": {"name": "e2"}, "involvedObject": {}})
        assert e.value.status == 403
        leases = client.CoordinationV1Api(api)
        with pytest.raises(client.exceptions.ApiException) as e:
            await leases.read_namespaced_lease("other", "kube-system")
        assert json.loads(e.value.body)["message"].startswith('leases.coordination.k8s.io "other" is forbidden')
    log = secured.auth_log
    assert Decision(user=SA, verb="create", group="", resource="pods", subresource="binding", namespace="default",
                    name="web-1", allowed=True) in log
    assert Decision(user=SA, verb="list", group="", resource="nodes", subresource="", namespace="", name="",
                    allowed=False) in log


async def test_user_without_bindings_is_forbidden_everything(secured: ApiServer, tmp_path: Path) -> None:
    async with await _client(secured, "nobody-token", tmp_path) as api:
        with pytest.raises(client.exceptions.ApiException) as e:
            await client.CoreV1Api(api).list_namespaced_pod("default")
    assert e.value.status == 403 and json.loads(e.value.body)["reason"] == "Forbidden"


async def test_missing_or_wrong_token_is_401(secured: ApiServer, tmp_path: Path) -> None:
    async with await _client(secured, "wrong", tmp_path) as api:
        with pytest.raises(client.exceptions.ApiException) as e:
            await client.CoreV1Api(api).list_namespaced_pod("default")
    assert e.value.status == 401 and json.loads(e.value.body)["reason"] == "Unauthorized"


async def test_admin_kubeconfig_bypasses_rbac(secured: ApiServer) -> None:
    async with await kube_client(secured.kubeconfig_path) as api:
        assert len((await client.CoreV1Api(api).list_node()).items) == 1


def test_token_file_in_kube_apiserver_format(tmp_path: Path) -> None:
    f = tmp_path / "tokens.csv"
    f.write_text('# token,user,uid,"groups"\n'
                 's3cret,system:serviceaccount:vecsched:vecsched,uid-1\n'
                 'adm1n,alice,uid-2,"system:masters,ops"\n\n')
    tokens = read_token_file(f)
    assert tokens["s3cret"].name == "system:serviceaccount:vecsched:vecsched"
    # service accounts get their groups, as kube-apiserver adds them
    assert "system:serviceaccounts:vecsched" in tokens["s3cret"].groups
    assert tokens["adm1n"].groups[:2] == ("system:masters", "ops")
    f.write_text("only-a-token\n")
    with pytest.raises(ValueError, match=r"tokens.csv:1: expected token,user,uid"):
        read_token_file(f)


async def test_kubeconfig_with_a_token_is_private(secured: ApiServer) -> None:
    assert secured.kubeconfig_path is not None
    assert secured.kubeconfig_path.stat().st_mode & 0o777 == 0o600


async def test_decision_log_is_bounded(tmp_path: Path) -> None:
    authz = Authorizer(rbac=load_rbac(RBAC), log_limit=100)
    user = User.of("system:serviceaccount:vecsched:vecsched")
    for i in range(10_000):
        authz.check(user, Attributes(verb="get", resource="pods", namespace="default", name=f"p{i}"))
    # 10,000 decisions: only the last 100 kept in full, one distinct shape in the summary
    assert len(authz.log) == 100 and authz.log[-1].name == "p9999"
    [(shape, count)] = authz.summary.items()
    assert (shape.verb, shape.resource, shape.name, shape.allowed, count) == ("get", "pods", "", True, 10_000)
