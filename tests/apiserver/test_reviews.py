"""TokenReview and SubjectAccessReview on the embedded API server: tokens and RBAC answer them,
creating one is itself authorized, bad bodies are 400/422, open mode says what it can, and the real
kubectl creates both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, load_rbac, serve_apiserver
from scheduler.apiserver.reviews import OPEN_MODE_ERROR

from .kube import kubectl

SA = "system:serviceaccount:vecsched:vecsched"
RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader}
rules:
- nonResourceURLs: [/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-reader}
subjects:
- {kind: User, name: prometheus}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: vecsched-auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects:
- {kind: ServiceAccount, name: vecsched, namespace: vecsched}
"""
TOKENS = {"sa-token": SA, "prom-token": "prometheus", "bob-token": "bob"}
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@pytest.fixture
async def secured() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=1, tokens=TOKENS, rbac=load_rbac(RBAC), controllers=[]) as srv:
        yield srv


async def _post(srv: ApiServer, path: str, body: Any, *, token: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{srv.url}{path}", data=json.dumps(body) if not isinstance(body, bytes) else body,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/json"}) as r:
            return r.status, await r.json()


def _token_review(token: str) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def _access_review(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


# (token reviewed, what status says): users come from the server's tokens with the groups
# kube-apiserver adds (service accounts get theirs; everyone gets system:authenticated).
TOKEN_CASES = [
    ("service-account", "sa-token", {"authenticated": True, "user": {
        "username": SA, "groups": ["system:serviceaccounts", "system:serviceaccounts:vecsched",
                                   "system:authenticated"]}}),
    ("plain-user", "prom-token", {"authenticated": True,
                                  "user": {"username": "prometheus", "groups": ["system:authenticated"]}}),
    ("unknown-token", "nobody-knows", {"authenticated": False, "user": {}, "error": "invalid bearer token"}),
]


@pytest.mark.parametrize(("token", "status"), [c[1:] for c in TOKEN_CASES], ids=[c[0] for c in TOKEN_CASES])
async def test_token_review(secured: ApiServer, token: str, status: dict[str, Any]) -> None:
    code, body = await _post(secured, TOKEN_REVIEWS, _token_review(token), token="sa-token")
    assert code == 201
    assert (body["kind"], body["apiVersion"], body["spec"]["token"]) == ("TokenReview", "authentication.k8s.io/v1",
                                                                        token)
    assert body["status"] == status


# (user, groups, attributes, allowed, reason): prometheus may get /metrics and list pods through the
# ClusterRoleBinding "prometheus"; bob has no binding; a system:masters member is allowed anything.
ACCESS_CASES = [
    ("metrics-allowed", "prometheus", ["system:authenticated"],
     {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}, True,
     'RBAC: allowed by ClusterRoleBinding "prometheus" of ClusterRole "metrics-reader" to User "prometheus"'),
    ("metrics-post-denied", "prometheus", ["system:authenticated"],
     {"nonResourceAttributes": {"path": "/metrics", "verb": "post"}}, False, None),
    ("metrics-denied", "bob", ["system:authenticated"],
     {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}, False, None),
    ("healthz-public", "bob", ["system:authenticated"],
     {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}, True,
     "RBAC: allowed by the default discovery and health roles"),
    ("resource-allowed", "prometheus", [], {"resourceAttributes": {"verb": "list", "resource": "pods",
                                                                    "namespace": "default"}}, True,
     'RBAC: allowed by ClusterRoleBinding "prometheus" of ClusterRole "metrics-reader" to User "prometheus"'),
    ("resource-denied", "prometheus", [], {"resourceAttributes": {"verb": "delete", "resource": "pods",
                                                                   "namespace": "default"}}, False, None),
    ("masters", "alice", ["system:masters"], {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}, True,
     'allowed by group "system:masters"'),
]


@pytest.mark.parametrize(("user", "groups", "attributes", "allowed", "reason"), [c[1:] for c in ACCESS_CASES],
                         ids=[c[0] for c in ACCESS_CASES])
async def test_subject_access_review(secured: ApiServer, user: str, groups: list[str], attributes: dict[str, Any],
                                     allowed: bool, reason: str | None) -> None:
    code, body = await _post(secured, ACCESS_REVIEWS, _access_review(user=user, groups=groups, **attributes),
                             token="sa-token")
    assert code == 201
    assert body["status"] == ({"allowed": allowed, "reason": reason} if reason else {"allowed": allowed})


# Creating a review is itself authorized: the scheduler's account through system:auth-delegator
# (kube-apiserver's bootstrap role, which this server defines too); bob has no such binding.
async def test_creating_a_review_needs_auth_delegator(secured: ApiServer) -> None:
    code, body = await _post(secured, TOKEN_REVIEWS, _token_review("prom-token"), token="bob-token")
    assert code == 403
    assert body["message"] == ('tokenreviews.authentication.k8s.io is forbidden: User "bob" cannot create resource '
                               '"tokenreviews" in API group "authentication.k8s.io" at the cluster scope')
    code, _ = await _post(secured, ACCESS_REVIEWS, _access_review(user="x", nonResourceAttributes={"path": "/"}),
                          token="bob-token")
    assert code == 403
    code, _ = await _post(secured, TOKEN_REVIEWS, _token_review("prom-token"), token="not-a-token")
    assert code == 401


# (path, body, code, message): kube-apiserver's answers to malformed reviews.
BAD_CASES = [
    ("empty-token", TOKEN_REVIEWS, _token_review(""), 400, "token is required for TokenReview in authentication"),
    ("not-an-object", TOKEN_REVIEWS, [1], 400, "the body of a TokenReview must be a JSON object"),
    ("wrong-kind", TOKEN_REVIEWS, {"apiVersion": "v1", "kind": "Pod", "spec": {}}, 400,
     "the body must be a authentication.k8s.io/v1 TokenReview, got v1 Pod"),
    ("no-spec", ACCESS_REVIEWS, {"kind": "SubjectAccessReview"}, 422,
     'SubjectAccessReview.authorization.k8s.io "" is invalid: spec: Required value'),
    ("no-attributes", ACCESS_REVIEWS, _access_review(user="bob"), 422,
     'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": '
     "exactly one of nonResourceAttributes or resourceAttributes must be specified"),
    ("no-user", ACCESS_REVIEWS, _access_review(nonResourceAttributes={"path": "/metrics", "verb": "get"}), 422,
     'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user '
     "or group must be specified"),
    ("groups-not-strings", ACCESS_REVIEWS, _access_review(user="bob", groups=[1],
                                                          nonResourceAttributes={"path": "/"}), 422,
     'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.groups: Invalid value: must be a list of strings'),
    ("not-json", ACCESS_REVIEWS, b"{", 400, None),
]


@pytest.mark.parametrize(("path", "body", "code", "message"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
async def test_malformed_review_is_refused(secured: ApiServer, path: str, body: Any, code: int,
                                           message: str | None) -> None:
    got, answer = await _post(secured, path, body, token="sa-token")
    assert got == code
    assert answer["kind"] == "Status" and "\n" not in answer["message"]
    if message is not None:
        assert answer["message"] == message


async def test_a_review_is_never_stored_or_listed(secured: ApiServer) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secured.admin_token}"}) as http:
        async with http.get(f"{secured.url}{TOKEN_REVIEWS}") as r:
            assert r.status == 405  # create only, as kube-apiserver serves it
        async with http.get(f"{secured.url}/apis/authentication.k8s.io/v1") as r:
            assert [x["name"] for x in (await r.json())["resources"]] == ["tokenreviews"]
        async with http.get(f"{secured.url}/apis") as r:
            names = [g["name"] for g in (await r.json())["groups"]]
        assert {"authentication.k8s.io", "authorization.k8s.io"} <= set(names)


# Open mode (no tokens, no RBAC; the kubeconfig holds no token) vouches for nobody and allows
# everything -- read with the real kubectl, which also reads discovery and OpenAPI to create them.
async def test_open_mode_with_kubectl(tmp_path: Path) -> None:
    async with serve_apiserver(nodes=1, controllers=[]) as srv:
        assert srv.kubeconfig_path is not None
        (tmp_path / "tokenreview.yaml").write_text(
            "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: any-token\n")
        (tmp_path / "sar.yaml").write_text(
            "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: bob\n"
            "  nonResourceAttributes: {path: /metrics, verb: get}\n")
        code, out, err = await kubectl(srv.kubeconfig_path, "create", "-f", str(tmp_path / "tokenreview.yaml"),
                                       "-o", "json")
        assert code == 0, err
        assert json.loads(out)["status"] == {"authenticated": False, "user": {}, "error": OPEN_MODE_ERROR}
        code, out, err = await kubectl(srv.kubeconfig_path, "create", "-f", str(tmp_path / "sar.yaml"), "-o", "yaml")
        assert code == 0, err
        assert "allowed: true" in out and "kind: SubjectAccessReview" in out
