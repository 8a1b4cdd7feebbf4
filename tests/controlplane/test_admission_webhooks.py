"""The control plane calls admission webhooks as kube-apiserver does, over real HTTPS on loopback.

A tiny aiohttp HTTPS server (certificates from a test CA) plays the webhooks;
every write goes to the embedded API server over HTTP (raw aiohttp, kubectl,
or the in-process controllers). Covered: which requests each rule and
selector selects, mutation before validation (a patch is seen by the later
webhooks and re-validated), reinvocation, refusals with the webhook's
message and code, warnings reaching the client, failurePolicy on a down,
slow or untrusted webhook, dry run and sideEffects, the configurations'
own defaults and validation, and a Deployment's pods rewritten in an
opted-in namespace and bound by vecsched (and every controller's pods
admitted by the webhooks).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import inspect
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scheduler.apiserver import ApiServer, serve_apiserver
from scheduler.apiserver.controllers import Controller
from scheduler.apiserver.controllers.daemonset import DaemonSetController
from scheduler.apiserver.controllers.deployment import DeploymentController
from scheduler.apiserver.controllers.job import JobController
from scheduler.apiserver.controllers.replicaset import ReplicaSetController
from scheduler.apiserver.controllers.statefulset import StatefulSetController
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane, deployment, pods_of, running, wait_for

ARV = "admissionregistration.k8s.io/v1"
MUTATING = f"/apis/{ARV}/mutatingwebhookconfigurations"
VALIDATING = f"/apis/{ARV}/validatingwebhookconfigurations"
POD_CREATE = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
PAUSE = "registry.k8s.io/pause:3.9"
Answer = Callable[[dict[str, Any]], "dict[str, Any] | web.Response | Awaitable[dict[str, Any]]"]


# ---- certificates and the webhook server ----------------------------------------------------------


@dataclass
class Pki:
    ca: str
    """base64 of the CA's PEM (a caBundle)."""
    rogue_ca: str
    """base64 of another CA's PEM, which did not sign the server's certificate."""
    cert: Path
    key: Path


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _sign(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]), key.public_key(), None, key, ca=True), key


def _sign(subject: x509.Name, public: Any, issuer: x509.Certificate | None, issuer_key: ec.EllipticCurvePrivateKey,
          *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject if issuer else subject)
         .public_key(public).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("webhook-pki")
    ca, ca_key = _ca("vecsched-test-ca")
    rogue, _ = _ca("someone-else")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook")]), key.public_key(), ca, ca_key,
                 ca=False)
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return Pki(ca=_b64(ca), rogue_ca=_b64(rogue), cert=d / "tls.crt", key=d / "tls.key")


@dataclass
class Webhooks:
    """An HTTPS admission webhook: each path answers with its function of the AdmissionReview request."""

    url: str
    ca: str
    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def requests(self, path: str) -> list[dict[str, Any]]:
        return [r for p, r in self.seen if p == path]

    def hook(self, name: str, path: str, answer: Answer, *, rules: list[dict[str, Any]] | None = None,
             **fields: Any) -> dict[str, Any]:
        """A webhook entry calling ``path``, answered by ``answer``."""
        self.answers[path] = answer
        return {"name": name, "clientConfig": {"url": self.url + path, "caBundle": self.ca},
                "rules": rules or [POD_CREATE], "sideEffects": "None", "admissionReviewVersions": ["v1"], **fields}


@asynccontextmanager
async def serve_webhooks(pki: Pki) -> AsyncIterator[Webhooks]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    hooks = Webhooks(url="", ca=pki.ca)

    async def handle(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        hooks.seen.append((request.path, review["request"]))
        hooks.queries.append(request.query_string)
        answer = hooks.answers[request.path](review["request"])
        if inspect.isawaitable(answer):
            answer = await answer
        return answer if isinstance(answer, web.StreamResponse) else web.json_response(answer)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    hooks.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield hooks
    finally:
        await runner.cleanup()


def allow(request: dict[str, Any], **response: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": request["uid"], "allowed": True, **response}}


def patch(*ops: dict[str, Any], **response: Any) -> Answer:
    """An answer applying the JSON patch ``ops``."""
    encoded = base64.b64encode(json.dumps(list(ops)).encode()).decode()
    return lambda r: allow(r, patch=encoded, patchType="JSONPatch", **response)


def deny(status: dict[str, Any] | None = None, **response: Any) -> Answer:
    def answer(r: dict[str, Any]) -> dict[str, Any]:
        out = allow(r, allowed=False, **response)
        if status is not None:
            out["response"]["status"] = status
        return out
    return answer


def config(name: str, *hooks: dict[str, Any], kind: str = "MutatingWebhookConfiguration") -> dict[str, Any]:
    return {"apiVersion": ARV, "kind": kind, "metadata": {"name": name}, "webhooks": list(hooks)}


def validating(name: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    return config(name, *hooks, kind="ValidatingWebhookConfiguration")


def pod(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": PAUSE}], **spec}}


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    warnings: list[str]


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None, *,
               content_type: str = "application/json", **params: str) -> Reply:
    data = None if body is None else json.dumps(body)
    async with http.request(method, path, data=data, params=params, headers={"Content-Type": content_type}) as r:
        return Reply(r.status, await r.json(), r.headers.getall("Warning", []))


async def add(http: aiohttp.ClientSession, cfg: dict[str, Any]) -> None:
    path = MUTATING if cfg["kind"] == "MutatingWebhookConfiguration" else VALIDATING
    reply = await call(http, "POST", path, cfg)
    assert reply.status == 201, reply.body


@asynccontextmanager
async def cluster(pki: Pki, **kw: Any) -> AsyncIterator[tuple[ApiServer, Webhooks, aiohttp.ClientSession]]:
    """An API server without controllers, the webhook server, and a raw HTTP session on the API."""
    kw.setdefault("controllers", [])
    async with serve_apiserver(nodes=1, kubelet_delay=0.0, bookmark_interval=0.2, **kw) as srv, \
            serve_webhooks(pki) as hooks, aiohttp.ClientSession(base_url=srv.url) as http:
        yield srv, hooks, http


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- which requests a webhook selects ---------------------------------------------------------------

NS = "/api/v1/namespaces"
PODS = f"{NS}/default/pods"


async def _create_pod(http: aiohttp.ClientSession, labels: dict[str, str] | None = None, ns: str = "default") -> Reply:
    return await call(http, "POST", f"{NS}/{ns}/pods", pod("p", labels=labels))


async def _seed_pod(http: aiohttp.ClientSession, labels: dict[str, str] | None = None) -> None:
    """A pod created before any webhook exists (for the update, delete and subresource cases)."""
    assert (await _create_pod(http, labels)).status == 201


ACTIONS: dict[str, tuple[Callable[[aiohttp.ClientSession], Awaitable[Any]] | None,
                         Callable[[aiohttp.ClientSession], Awaitable[Reply]]]] = {
    # name: (setup before the webhook is configured, the request under test)
    "create pod": (None, lambda h: _create_pod(h)),
    "create labelled pod": (None, lambda h: _create_pod(h, {"route": "yes"})),
    "create pod in team-a": (lambda h: call(h, "POST", NS, {"metadata": {"name": "team-a", "labels": {"team": "a"}}}),
                             lambda h: _create_pod(h, ns="team-a")),
    "patch pod": (lambda h: _seed_pod(h), lambda h: call(h, "PATCH", f"{PODS}/p", {"metadata": {"labels": {"x": "1"}}},
                                                         content_type="application/merge-patch+json")),
    "unlabel pod": (lambda h: _seed_pod(h, {"route": "yes"}),
                    lambda h: call(h, "PATCH", f"{PODS}/p", {"metadata": {"labels": {"route": None}}},
                                   content_type="application/merge-patch+json")),
    "patch pod status": (lambda h: _seed_pod(h), lambda h: call(
        h, "PATCH", f"{PODS}/p/status", {"status": {"conditions": [{"type": "Tested", "status": "True"}]}},
        content_type="application/strategic-merge-patch+json")),
    "bind pod": (lambda h: _seed_pod(h), lambda h: call(h, "POST", f"{PODS}/p/binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"name": "node-0000"}})),
    "delete labelled pod": (lambda h: _seed_pod(h, {"route": "yes"}), lambda h: call(h, "DELETE", f"{PODS}/p")),
    "create configmap": (None, lambda h: call(h, "POST", f"{NS}/default/configmaps",
                                              {"metadata": {"name": "c"}, "data": {"a": "b"}})),
    "create namespace team-a": (None, lambda h: call(h, "POST", NS, {"metadata": {"name": "team-a",
                                                                                  "labels": {"team": "a"}}})),
    "create priorityclass": (None, lambda h: call(h, "POST", "/apis/scheduling.k8s.io/v1/priorityclasses",
                                                  {"metadata": {"name": "high"}, "value": 1000})),
    "scale deployment": (lambda h: call(h, "POST", "/apis/apps/v1/namespaces/default/deployments",
                                        deployment("web", replicas=1)),
                         lambda h: call(h, "PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                                        {"spec": {"replicas": 2}}, content_type="application/merge-patch+json")),
}


def _rule(resources: list[str], *, ops: tuple[str, ...] = ("*",), groups: tuple[str, ...] = ("*",),
          scope: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"operations": list(ops), "apiGroups": list(groups), "apiVersions": ["*"],
                            "resources": resources}
    if scope:
        rule["scope"] = scope
    return rule


TEAM_A = {"matchLabels": {"team": "a"}}
ROUTED = {"matchExpressions": [{"key": "route", "operator": "Exists"}]}


@pytest.mark.parametrize(("rules", "selectors", "action", "called"), [
    # resources: "pods" is the main resource only; "pods/status" the subresource only; "pods/*" both
    ([_rule(["pods"], ops=("CREATE",))], {}, "create pod", True),
    ([_rule(["pods"], ops=("CREATE",))], {}, "patch pod", False),  # a patch is an UPDATE
    ([_rule(["pods"], ops=("UPDATE",))], {}, "patch pod", True),
    ([_rule(["pods"])], {}, "patch pod status", False),
    ([_rule(["pods/status"])], {}, "patch pod status", True),
    ([_rule(["pods/status"])], {}, "create pod", False),
    ([_rule(["pods/*"])], {}, "patch pod status", True),
    ([_rule(["pods/*"])], {}, "create pod", True),  # "x/*" matches x's main resource too (sub "*" matches "")
    ([_rule(["pods/binding"])], {}, "bind pod", True),
    ([_rule(["deployments/scale"], groups=("apps",))], {}, "scale deployment", True),
    # "*" is every resource without subresources; "*/*" everything
    ([_rule(["*"])], {}, "create configmap", True),
    ([_rule(["*"])], {}, "patch pod status", False),
    ([_rule(["*/*"])], {}, "patch pod status", True),
    ([_rule(["pods"], groups=("apps",))], {}, "create pod", False),
    # scope: a Namespace is cluster-scoped
    ([_rule(["*"], scope="Cluster")], {}, "create namespace team-a", True),
    ([_rule(["*"], scope="Cluster")], {}, "create configmap", False),
    ([_rule(["*"], scope="Namespaced")], {}, "create namespace team-a", False),
    ([_rule(["*"], scope="Namespaced")], {}, "create configmap", True),
    # namespaceSelector: the request's namespace's labels; a Namespace's own; cluster-scoped objects always pass
    ([_rule(["pods"])], {"namespaceSelector": TEAM_A}, "create pod", False),
    ([_rule(["pods"])], {"namespaceSelector": TEAM_A}, "create pod in team-a", True),
    ([_rule(["namespaces"])], {"namespaceSelector": TEAM_A}, "create namespace team-a", True),
    ([_rule(["priorityclasses"])], {"namespaceSelector": TEAM_A}, "create priorityclass", True),
    # objectSelector: the new or the old object's labels
    ([_rule(["pods"])], {"objectSelector": ROUTED}, "create pod", False),
    ([_rule(["pods"])], {"objectSelector": ROUTED}, "create labelled pod", True),
    ([_rule(["pods"])], {"objectSelector": ROUTED}, "unlabel pod", True),  # the old object had the label
    ([_rule(["pods"], ops=("DELETE",))], {"objectSelector": ROUTED}, "delete labelled pod", True),
])
async def test_rules_and_selectors_pick_the_requests(pki: Pki, rules: list[dict[str, Any]],
                                                     selectors: dict[str, Any], action: str, called: bool) -> None:
    setup, request = ACTIONS[action]
    async with cluster(pki) as (srv, hooks, http):
        if setup is not None:
            await setup(http)
        await add(http, validating("watch", hooks.hook("watch.vecsched.io", "/watch", allow, rules=rules,
                                                       **selectors)))
        reply = await request(http)
        assert reply.status < 300, reply.body
        assert bool(hooks.requests("/watch")) is called


async def test_request_fields(pki: Pki) -> None:
    """CREATE by generateName, UPDATE by patch, DELETE, and a Binding: what each AdmissionRequest holds."""
    async with cluster(pki) as (srv, hooks, http):
        await add(http, validating("watch", hooks.hook("watch.vecsched.io", "/watch", allow, rules=[_rule(["*/*"])])))
        body = pod("")
        body["metadata"] = {"generateName": "web-"}
        created = await call(http, "POST", PODS, body, dryRun="All")
        assert created.status == 201
        created = await call(http, "POST", PODS, body)
        name = created.body["metadata"]["name"]
        await call(http, "PATCH", f"{PODS}/{name}", {"metadata": {"labels": {"x": "1"}}},
                   content_type="application/merge-patch+json")
        await call(http, "POST", f"{PODS}/{name}/binding", {"metadata": {"name": name}, "target": {"name": "node-0000"}})
        await call(http, "DELETE", f"{PODS}/{name}", {"gracePeriodSeconds": 0})
        dry, create, update, bind, delete = hooks.requests("/watch")
    pod_kind = {"group": "", "version": "v1", "kind": "Pod"}
    pods = {"group": "", "version": "v1", "resource": "pods"}
    # upstream names a create by generateName "" and tells the webhook its deadline (10 s by default)
    assert hooks.queries[0] == "timeout=10s"
    assert dry["dryRun"] is True and dry["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                                                         "dryRun": ["All"]}
    assert {k: create.get(k) for k in ("kind", "resource", "requestKind", "requestResource", "namespace",
                                       "operation", "oldObject", "dryRun", "name")} == {
        "kind": pod_kind, "resource": pods, "requestKind": pod_kind, "requestResource": pods, "namespace": "default",
        "operation": "CREATE", "oldObject": None, "dryRun": False, "name": None}
    assert create["object"]["metadata"]["generateName"] == "web-" and create["uid"] != dry["uid"]
    assert create["userInfo"] == {"username": "system:unsecured", "groups": ["system:masters", "system:authenticated"]}
    assert create["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert (update["operation"], update["name"], update["options"]["kind"]) == ("UPDATE", name, "PatchOptions")
    assert update["oldObject"]["metadata"].get("labels") in (None, {}) and update["object"]["metadata"]["labels"] == {
        "x": "1"}
    assert (bind["kind"], bind["subResource"], bind["requestSubResource"], bind["object"]["target"]) == (
        {"group": "", "version": "v1", "kind": "Binding"}, "binding", "binding", {"name": "node-0000"})
    assert (delete["operation"], delete["object"], delete["oldObject"]["metadata"]["name"]) == ("DELETE", None, name)
    assert delete["options"] == {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "gracePeriodSeconds": 0}


async def test_discovery_serves_the_configuration_kinds(pki: Pki) -> None:
    async with cluster(pki) as (srv, hooks, http):
        async with http.get(f"/apis/{ARV}") as r:
            resources = {x["name"]: x for x in (await r.json())["resources"]}
    assert set(resources) == {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}
    for name, kind in (("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
                       ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration")):
        assert {k: resources[name][k] for k in ("kind", "namespaced", "singularName", "categories")} == {
            "kind": kind, "namespaced": False, "singularName": name[:-1], "categories": ["api-extensions"]}
        assert "shortNames" not in resources[name]


async def test_an_update_racing_its_webhook_is_prepared_again(pki: Pki) -> None:
    """The object changed while the webhook was called: the update is redone on the latest version (a second
    call), as etcd's GuaranteedUpdate retries; an update that named the older resourceVersion gets the 409."""
    async with cluster(pki) as (srv, hooks, http):
        await _seed_pod(http)
        pods = srv.resource("pods")

        def meddle(request: dict[str, Any]) -> dict[str, Any]:
            if len(hooks.requests("/race")) == 1:  # someone else writes while the first call is under way
                srv.store.update(pods, "default", "p", lambda o: {
                    **o, "metadata": {**o["metadata"], "annotations": {"other": "writer"}}})
            return allow(request)

        await add(http, validating("race", hooks.hook("race.vecsched.io", "/race", meddle,
                                                      rules=[_rule(["pods"], ops=("UPDATE",))])))
        reply = await call(http, "PATCH", f"{PODS}/p", {"metadata": {"labels": {"mine": "1"}}},
                           content_type="application/merge-patch+json")
        assert reply.status == 200, reply.body
        first, second = hooks.requests("/race")
        assert "annotations" not in first["oldObject"]["metadata"]
        assert second["oldObject"]["metadata"]["annotations"] == {"other": "writer"}
        stored = srv.get("pods", "p", namespace="default")["metadata"]
        assert (stored["labels"], stored["annotations"]) == ({"mine": "1"}, {"other": "writer"})  # neither lost
        # a PUT of the version read before someone else's write: 409, after one webhook call
        hooks.seen.clear()
        body = srv.get("pods", "p", namespace="default")
        body["metadata"]["labels"] = {"mine": "2"}
        reply = await call(http, "PUT", f"{PODS}/p", body)
        assert reply.status == 409 and reply.body["reason"] == "Conflict"
        assert len(hooks.seen) == 1


# ---- order, patches, reinvocation ---------------------------------------------------------------------


async def test_mutations_run_in_name_order_before_validation(pki: Pki) -> None:
    async with cluster(pki) as (srv, hooks, http):
        # added in reverse: the order is the configurations' names, not their creation
        await add(http, config("b-second", hooks.hook("second.vecsched.io", "/second", patch(
            {"op": "add", "path": "/metadata/labels/second", "value": "b"},
            {"op": "replace", "path": "/spec/schedulerName", "value": "vecsched"}))))
        await add(http, config("a-first", hooks.hook("first.vecsched.io", "/first", patch(
            {"op": "add", "path": "/metadata/labels/first", "value": "a"},
            {"op": "add", "path": "/spec/unknownField", "value": 1}))))  # dropped, as Go's decoder drops it
        await add(http, validating("check", hooks.hook("check.vecsched.io", "/check", allow)))
        reply = await call(http, "POST", PODS, pod("p"))
        assert reply.status == 201, reply.body
        assert [p for p, _ in hooks.seen] == ["/first", "/second", "/check"]
        assert hooks.requests("/second")[0]["object"]["metadata"]["labels"] == {"first": "a"}
        validated = hooks.requests("/check")[0]["object"]
        assert validated["metadata"]["labels"] == {"first": "a", "second": "b"}
        assert validated["spec"]["schedulerName"] == "vecsched" and "unknownField" not in validated["spec"]
        stored = srv.get("pods", "p", namespace="default")
        assert stored["metadata"]["labels"] == {"first": "a", "second": "b"}
        assert stored["spec"]["schedulerName"] == "vecsched" and "unknownField" not in stored["spec"]


@pytest.mark.parametrize(("answer", "policy", "status", "message"), [
    # a patch that breaks the object is refused by validation after it
    (patch({"op": "add", "path": "/spec/containers/0/resources", "value": {"requests": {"cpu": "lots"}}}), "Fail",
     422, 'spec.containers[0].resources.requests[cpu]: Invalid value: "lots"'),
    # a patch that does not apply is a 500 whatever the policy (upstream's internal error)
    (patch({"op": "remove", "path": "/metadata/annotations/none"}), "Ignore", 500, "Internal error occurred: "),
    # a malformed response is a failed call: Ignore admits, Fail answers 500
    (lambda r: allow(r, patch="W10="), "Ignore", 201, ""),
    (lambda r: allow(r, patch="W10="), "Fail", 500, 'failed calling webhook "m.vecsched.io": received invalid '
     "webhook response: webhook returned response.patch but not response.patchType"),
    (lambda r: allow({"uid": "other"}), "Fail", 500, 'received invalid webhook response: expected response.uid="'),
    (lambda r: web.Response(text="not json", content_type="application/json"), "Fail", 500,
     "failed to call webhook: couldn't get version/kind; json parse error"),
    (lambda r: web.Response(status=503, text="overloaded"), "Fail", 500,
     'an error on the server ("overloaded") has prevented the request from succeeding'),
    (lambda r: allow(r, patch="W10=", patchType="MergePatch"), "Fail", 500, 'unsupported patch type "MergePatch"'),
])
async def test_patch_and_response_handling(pki: Pki, answer: Answer, policy: str, status: int, message: str) -> None:
    async with cluster(pki) as (srv, hooks, http):
        await add(http, config("m", hooks.hook("m.vecsched.io", "/m", answer, failurePolicy=policy)))
        reply = await call(http, "POST", PODS, pod("p"))
        assert reply.status == status, reply.body
        if status >= 400:
            assert message in reply.body["message"]
            assert srv.store.find(srv.resource("pods"), "default", "p") is None


LABEL_B = {"op": "add", "path": "/metadata/labels/b", "value": "1"}
# "a" changes the pod's resources: the server recomputes its status.qosClass, which is no change to reinvoke for
RESOURCES_A = {"op": "add", "path": "/spec/containers/0/resources", "value": {"limits": {"cpu": "1", "memory": "1Gi"}}}


@pytest.mark.parametrize(("policy", "a_patch", "b_patch", "calls"), [
    # IfNeeded: "a" ran before "b" changed the object, so it runs once more (2 calls); Never: once
    ("IfNeeded", None, LABEL_B, 2),
    ("Never", None, LABEL_B, 1),
    # nothing changed after "a": no second call, even for its own change
    ("IfNeeded", RESOURCES_A, None, 1),
    ("IfNeeded", None, None, 1),
])
async def test_reinvocation(pki: Pki, policy: str, a_patch: dict[str, Any] | None, b_patch: dict[str, Any] | None,
                            calls: int) -> None:
    async with cluster(pki) as (srv, hooks, http):
        await add(http, config("a", hooks.hook("a.vecsched.io", "/a", patch(a_patch) if a_patch else allow,
                                               reinvocationPolicy=policy)))
        await add(http, config("b", hooks.hook("b.vecsched.io", "/b", patch(b_patch) if b_patch else allow)))
        assert (await call(http, "POST", PODS, pod("p"))).status == 201
        assert len(hooks.requests("/a")) == calls
        if calls == 2:  # the second call sees what "b" did
            assert hooks.requests("/a")[1]["object"]["metadata"]["labels"] == {"b": "1"}
        stored = srv.get("pods", "p", namespace="default")
        if a_patch:
            assert stored["status"]["qosClass"] == "Guaranteed"  # limits alone: requests default to them
        first = hooks.requests("/a")[0]["object"]["metadata"]
        assert (stored["metadata"]["uid"], stored["metadata"]["creationTimestamp"]) == (
            first["uid"], first["creationTimestamp"])  # the identity the webhooks saw is the one stored


# ---- refusals and warnings ----------------------------------------------------------------------------


_DENIED = 'pods "p" is forbidden: admission webhook "deny.vecsched.io" denied the request'


# Upstream's ToStatusErr: code 0 -> 403; reason empty -> Forbidden (InternalError for 500); the message
# prefixed with `<resource>[.<group>] "<name>" is forbidden: ` (500: `Internal error occurred: `).
@pytest.mark.parametrize(("status", "code", "reason", "message"), [
    ({"message": "pods need a team label", "code": 403, "reason": "Forbidden"}, 403, "Forbidden",
     f"{_DENIED}: pods need a team label"),
    ({"message": "bad"}, 403, "Forbidden", f"{_DENIED}: bad"),  # no code: 403
    # a success code cannot carry a refusal over HTTP: 400 (upstream would answer 200 with a Failure status)
    ({"code": 200, "message": "odd"}, 400, "Forbidden", f"{_DENIED}: odd"),
    ({"reason": "Invalid", "code": 422}, 422, "Invalid", f"{_DENIED}: Invalid"),  # no message: the reason
    ({"code": 500, "message": "boom"}, 500, "InternalError",
     'Internal error occurred: admission webhook "deny.vecsched.io" denied the request: boom'),
    (None, 403, "Forbidden", f"{_DENIED} without explanation"),
])
@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
async def test_refusal_carries_the_webhooks_status(pki: Pki, kind: str, status: dict[str, Any] | None, code: int,
                                                   reason: str | None, message: str) -> None:
    async with cluster(pki) as (srv, hooks, http):
        await add(http, config("deny", hooks.hook("deny.vecsched.io", "/deny", deny(status)), kind=kind))
        reply = await call(http, "POST", PODS, pod("p"))
        assert (reply.status, reply.body.get("reason"), reply.body["message"]) == (code, reason, message)
        assert reply.body["status"] == "Failure" and reply.body["code"] == code
        assert srv.store.find(srv.resource("pods"), "default", "p") is None


async def test_warnings_reach_http_clients_and_kubectl(pki: Pki) -> None:
    async with cluster(pki) as (srv, hooks, http):
        await add(http, config("warn", hooks.hook("warn.vecsched.io", "/warn", patch(
            {"op": "add", "path": "/metadata/labels/routed", "value": "yes"}, warnings=["routed to vecsched"]))))
        await add(http, validating("v", hooks.hook("v.vecsched.io", "/v", lambda r: allow(
            r, warnings=['check "quota" soon']))))
        reply = await call(http, "POST", PODS, pod("p"))
        assert reply.status == 201
        assert reply.warnings == ['299 - "routed to vecsched"', '299 - "check \\"quota\\" soon"']
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=json.dumps(pod("q")))
        assert code == 0, err
        assert 'Warning: routed to vecsched' in err and 'Warning: check "quota" soon' in err
        # a refusal carries the warnings gathered before it
        hooks.answers["/v"] = deny({"message": "no"}, warnings=["second thoughts"])
        reply = await call(http, "POST", PODS, pod("r"))
        assert reply.status == 403  # no code in the refusal: Forbidden
        assert reply.warnings == ['299 - "routed to vecsched", 299 - "second thoughts"']
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=json.dumps(pod("s")))
        assert code == 1 and "Warning: second thoughts" in err
        assert 'admission webhook "v.vecsched.io" denied the request: no' in err


# ---- failed calls ----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["Ignore", "Fail"])
@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
async def test_a_down_webhook(pki: Pki, kind: str, policy: str) -> None:
    port = free_port()
    async with cluster(pki) as (srv, hooks, http):
        hook = hooks.hook("down.vecsched.io", "/down", allow, failurePolicy=policy)
        hook["clientConfig"]["url"] = f"https://127.0.0.1:{port}/down"
        await add(http, config("down", hook, kind=kind))
        reply = await call(http, "POST", PODS, pod("p"))
        if policy == "Ignore":
            assert reply.status == 201  # as if the webhook did not exist
            return
        assert (reply.status, reply.body["reason"]) == (500, "InternalError")
        assert reply.body["message"] == (
            f'Internal error occurred: failed calling webhook "down.vecsched.io": failed to call webhook: Post '
            f'"https://127.0.0.1:{port}/down?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused')


@pytest.mark.parametrize("policy", ["Ignore", "Fail"])
async def test_a_slow_webhook_times_out(pki: Pki, policy: str) -> None:
    release = asyncio.Event()

    async def slow(r: dict[str, Any]) -> dict[str, Any]:
        await asyncio.wait_for(release.wait(), 5)  # answers after 5 s, or when the test is done
        return allow(r)

    async with cluster(pki) as (srv, hooks, http):
        await add(http, config("slow", hooks.hook("slow.vecsched.io", "/slow", slow, failurePolicy=policy,
                                                  timeoutSeconds=1)))
        t0 = time.monotonic()
        reply = await call(http, "POST", PODS, pod("p"))
        elapsed = time.monotonic() - t0
        release.set()
        assert 0.9 < elapsed < 3.0  # timeoutSeconds: 1, not the webhook's 5 s
        assert hooks.queries == ["timeout=1s"]
        if policy == "Ignore":
            assert reply.status == 201
        else:
            assert reply.status == 500
            assert reply.body["message"].endswith('?timeout=1s": context deadline exceeded')


@pytest.mark.parametrize("policy", ["Ignore", "Fail"])
async def test_an_untrusted_certificate_is_a_failed_call(pki: Pki, policy: str) -> None:
    async with cluster(pki) as (srv, hooks, http):
        hook = hooks.hook("rogue.vecsched.io", "/rogue", allow, failurePolicy=policy)
        hook["clientConfig"]["caBundle"] = pki.rogue_ca  # the server's certificate was signed by another CA
        await add(http, validating("rogue", hook))
        reply = await call(http, "POST", PODS, pod("p"))
        assert hooks.seen == []  # the TLS handshake failed: nothing reached the webhook
        if policy == "Ignore":
            assert reply.status == 201
        else:
            assert reply.status == 500
            assert reply.body["message"].endswith(
                "tls: failed to verify certificate: x509: certificate signed by unknown authority")


# ---- dry run and side effects -----------------------------------------------------------------------


async def test_dry_run_reaches_webhooks_without_side_effects(pki: Pki) -> None:
    async with cluster(pki) as (srv, hooks, http):
        await add(http, config("m", hooks.hook("m.vecsched.io", "/m", patch(
            {"op": "add", "path": "/metadata/labels/m", "value": "1"}), sideEffects="NoneOnDryRun")))
        reply = await call(http, "POST", PODS, pod("p"), dryRun="All")
        assert reply.status == 201 and reply.body["metadata"]["labels"] == {"m": "1"}
        assert hooks.requests("/m")[0]["dryRun"] is True
        assert srv.store.find(srv.resource("pods"), "default", "p") is None


async def test_dry_run_is_refused_by_a_webhook_with_side_effects(pki: Pki, tmp_path: Path) -> None:
    """``sideEffects: Unknown`` cannot be created in v1; a configuration stored before (kept in a state file) has it."""
    state = tmp_path / "state.json"
    async with serve_webhooks(pki) as hooks:
        async with serve_apiserver(nodes=0, controllers=[], state_path=state) as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            cfg = config("effects", hooks.hook("effects.vecsched.io", "/effects", allow, failurePolicy="Ignore"))
            await add(http, cfg)
            cfg["webhooks"][0]["sideEffects"] = "Unknown"
            refused = await call(http, "POST", MUTATING, {**cfg, "metadata": {"name": "other"}})
            assert refused.status == 422
            assert 'webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", ' \
                   '"NoneOnDryRun"' in refused.body["message"]
        saved = json.loads(state.read_text())
        saved["objects"]["mutatingwebhookconfigurations.admissionregistration.k8s.io"][0]["webhooks"][0][
            "sideEffects"] = "Unknown"
        state.write_text(json.dumps(saved))
        async with serve_apiserver(nodes=0, controllers=[], state_path=state) as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            reply = await call(http, "POST", PODS, pod("p"), dryRun="All")
            # refused whatever the failurePolicy, and the webhook is not called
            assert (reply.status, reply.body["message"]) == (
                400, 'admission webhook "effects.vecsched.io" does not support dry run')
            assert hooks.seen == []
            assert (await call(http, "POST", PODS, pod("p"))).status == 201  # a real write calls it
            assert len(hooks.seen) == 1


# ---- the configurations themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "short.name"}, 'webhooks[0].name: Invalid value: "short.name": should be a domain with at least three '
                             "segments separated by dots"),
    ({"timeoutSeconds": 31}, "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and "
                             "30 seconds"),
    ({"clientConfig": {"url": "http://127.0.0.1:8443/x"}},
     'webhooks[0].clientConfig.url: Invalid value: "http": \'https\' is the only allowed URL scheme; desired format: '
     "https://host[/path]"),
    ({"clientConfig": {"service": {"name": "vecsched-webhook", "namespace": "vecsched-system"}}},
     "webhooks[0].clientConfig.service: Forbidden: the vecsched control plane has no service network"),
    ({"matchConditions": [{"name": "c", "expression": "true"}]}, "webhooks[0].matchConditions: Forbidden: CEL match "
                                                                 "conditions are not evaluated"),
    ({"sideEffects": None}, "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"),
    ({"failurePolicy": "Maybe"}, 'webhooks[0].failurePolicy: Unsupported value: "Maybe": supported values: "Fail", '
                                 '"Ignore"'),
    ({"rules": [_rule(["*", "pods"])]}, 'webhooks[0].rules[0].resources: Invalid value: []string{"*", "pods"}: if '
                                        "'*' is present, must not specify other resources without subresources"),
    ({"rules": [{**POD_CREATE, "operations": ["PATCH"]}]},
     'webhooks[0].rules[0].operations[0]: Unsupported value: "PATCH": supported values: "*", "CONNECT", "CREATE", '
     '"DELETE", "UPDATE"'),
    ({"admissionReviewVersions": ["v2"]}, 'webhooks[0].admissionReviewVersions: Invalid value: []string{"v2"}: must '
                                          "include at least one of v1, v1beta1"),
    ({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
     "webhooks[0].objectSelector.matchExpressions[0].values: Required value: must be specified when `operator` is "
     "'In' or 'NotIn'"),
])
async def test_invalid_configurations_are_refused_naming_the_field(pki: Pki, change: dict[str, Any],
                                                                   message: str) -> None:
    async with cluster(pki) as (srv, hooks, http):
        hook = {**hooks.hook("ok.vecsched.io", "/ok", allow), **change}
        hook = {k: v for k, v in hook.items() if v is not None}
        reply = await call(http, "POST", MUTATING, config("bad", hook))
        assert reply.status == 422, reply.body
        assert reply.body["message"].startswith('MutatingWebhookConfiguration "bad" is invalid: ')
        assert message in reply.body["message"]


async def test_kubectl_apply_of_a_webhook_configuration(pki: Pki, tmp_path: Path) -> None:
    async with cluster(pki) as (srv, hooks, http):
        cfg = config("vecsched-webhook", hooks.hook("pods.vecsched.io", "/mutate", patch(
            {"op": "add", "path": "/metadata/labels/admitted", "value": "yes"})))
        manifest = tmp_path / "webhook.json"
        manifest.write_text(json.dumps(cfg))
        code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", str(manifest))
        assert code == 0, err
        assert out.strip() == "mutatingwebhookconfiguration.admissionregistration.k8s.io/vecsched-webhook created"
        stored = srv.get("mutatingwebhookconfigurations", "vecsched-webhook")["webhooks"][0]
        # upstream's defaults
        assert {k: stored[k] for k in ("failurePolicy", "matchPolicy", "namespaceSelector", "objectSelector",
                                       "timeoutSeconds", "reinvocationPolicy")} == {
            "failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
            "timeoutSeconds": 10, "reinvocationPolicy": "Never"}
        assert stored["rules"][0]["scope"] == "*"
        code, out, err = await kubectl(srv.kubeconfig_path, "get", "mutatingwebhookconfigurations")
        assert code == 0 and out.split("\n")[0].split() == ["NAME", "WEBHOOKS", "AGE"]
        assert out.split("\n")[1].split()[:2] == ["vecsched-webhook", "1"]
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=json.dumps(pod("p")))
        assert code == 0, err
        assert srv.get("pods", "p", namespace="default")["metadata"]["labels"] == {"admitted": "yes"}
        # a second apply changes the configuration (an UPDATE, which no webhook sees) and bumps its generation
        cfg["webhooks"][0]["timeoutSeconds"] = 5
        manifest.write_text(json.dumps(cfg))
        code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", str(manifest))
        assert code == 0 and "configured" in out, err
        got = srv.get("mutatingwebhookconfigurations", "vecsched-webhook")
        assert (got["webhooks"][0]["timeoutSeconds"], got["metadata"]["generation"]) == (5, 2)
        assert len(hooks.seen) == 1  # only the pod create went to the webhook
        cfg["webhooks"][0]["clientConfig"] = {"service": {"name": "vecsched-webhook", "namespace": "vecsched-system"}}
        manifest.write_text(json.dumps(cfg))
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", str(manifest))
        assert code == 1 and "webhooks[0].clientConfig.service: Forbidden" in err


# ---- the controllers' pods ---------------------------------------------------------------------------


def route_to_vecsched(request: dict[str, Any]) -> dict[str, Any]:
    """A webhook in the way of ``vecsched webhook``: a pod left to the default scheduler goes to vecsched."""
    if request["object"]["spec"].get("schedulerName", "default-scheduler") != "default-scheduler":
        return allow(request)
    return patch({"op": "add", "path": "/spec/schedulerName", "value": "vecsched"},
                 warnings=["schedulerName set to vecsched"])(request)


async def test_deployment_pods_in_an_opted_in_namespace_are_rewritten_and_bound(pki: Pki) -> None:
    async with control_plane(ReplicaSetController, DeploymentController, nodes=2) as srv, \
            serve_webhooks(pki) as hooks, aiohttp.ClientSession(base_url=srv.url) as http:
        for ns, labels in (("team-a", {"vecsched.io/scheduler-name": "vecsched"}), ("plain", {})):
            assert (await call(http, "POST", NS, {"metadata": {"name": ns, "labels": labels}})).status == 201
        await add(http, config("vecsched-webhook", hooks.hook(
            "pods.vecsched.io", "/mutate-pods", route_to_vecsched, failurePolicy="Ignore",
            namespaceSelector={"matchExpressions": [{"key": "vecsched.io/scheduler-name", "operator": "Exists"}]})))
        async with running(srv):
            for ns in ("team-a", "plain"):
                d = deployment("web", replicas=2, namespace=ns)
                del d["spec"]["template"]["spec"]["schedulerName"]  # the chart does not name a scheduler
                reply = await call(http, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", d)
                assert reply.status == 201, reply.body
            await wait_for(lambda: len(pods_of(srv, namespace="plain")) == 2, what="the plain namespace's 2 pods")
            await wait_for(lambda: sum(bool(p["spec"].get("nodeName")) for p in pods_of(srv, namespace="team-a")) == 2,
                           what="team-a's 2 pods bound by vecsched")
        assert {p["spec"]["schedulerName"] for p in pods_of(srv, namespace="team-a")} == {"vecsched"}
        plain = pods_of(srv, namespace="plain")
        assert {p["spec"]["schedulerName"] for p in plain} == {"default-scheduler"}
        assert not any(p["spec"].get("nodeName") for p in plain)  # no default scheduler runs here
        seen = hooks.requests("/mutate-pods")
        assert len(seen) == 2 and {r["namespace"] for r in seen} == {"team-a"}
        assert {r["userInfo"]["username"] for r in seen} == {"system:kube-controller-manager"}


def _owned_pods(srv: ApiServer) -> list[dict[str, Any]]:
    return [p for p in srv.list("pods", namespace="default") if p["metadata"].get("ownerReferences")]


@pytest.mark.parametrize(("controller", "path", "workload"), [
    (ReplicaSetController, "/apis/apps/v1/namespaces/default/replicasets",
     {"kind": "ReplicaSet", "spec": {"replicas": 2}}),
    (JobController, "/apis/batch/v1/namespaces/default/jobs",
     {"kind": "Job", "apiVersion": "batch/v1", "spec": {"parallelism": 2, "completions": 2}}),
    (StatefulSetController, "/apis/apps/v1/namespaces/default/statefulsets",
     {"kind": "StatefulSet", "spec": {"replicas": 2, "serviceName": "w", "podManagementPolicy": "Parallel"}}),
    (DaemonSetController, "/apis/apps/v1/namespaces/default/daemonsets", {"kind": "DaemonSet", "spec": {}}),
])
async def test_every_controllers_pods_go_through_webhooks(pki: Pki, controller: type[Controller], path: str,
                                                          workload: dict[str, Any]) -> None:
    template = {"metadata": {"labels": {"app": "w"}},
                "spec": {"restartPolicy": "Never" if workload["kind"] == "Job" else "Always",
                         "containers": [{"name": "app", "image": PAUSE}]}}
    obj = {"apiVersion": "apps/v1", "metadata": {"name": "w"}, **workload}
    obj["spec"] = {**obj["spec"], "template": template}
    if workload["kind"] != "Job":
        obj["spec"]["selector"] = {"matchLabels": {"app": "w"}}
    async with control_plane(controller, nodes=2) as srv, serve_webhooks(pki) as hooks, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        await add(http, config("label", hooks.hook("label.vecsched.io", "/label", patch(
            {"op": "add", "path": "/metadata/labels/admitted", "value": "yes"}))))
        reply = await call(http, "POST", path, obj)
        assert reply.status == 201, reply.body
        # 2 replicas, 2 completions in parallel, 2 stateful ordinals at once, or 1 pod on each of the 2 nodes
        await wait_for(lambda: len(_owned_pods(srv)) == 2, what="the controller's 2 pods")
        assert [p["metadata"]["labels"].get("admitted") for p in _owned_pods(srv)] == ["yes", "yes"]
        assert {r["userInfo"]["username"] for r in hooks.requests("/label")} == {"system:kube-controller-manager"}
