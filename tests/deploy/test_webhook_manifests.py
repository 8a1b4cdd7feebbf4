"""deploy/webhook/ installs `vecsched webhook` as the cluster's admission webhook.

The objects validate against the Kubernetes schemas (cert-manager's Issuer and Certificate by
structure, their CRDs not being in that set), `kubectl kustomize` builds them, and they agree
with one another: the webhook configurations send exactly the opted-in objects, with the
agreed failure policies, to the Service's port, which reaches the Deployment's HTTPS port; the
certificate names that Service and lands in the Secret the Deployment mounts.

docs/webhook.md's installation without cert-manager runs as written: its kustomization builds,
and its openssl commands make the certificate with which the Deployment's own arguments, run as
its ServiceAccount under RBAC enforcement, serve every webhook -- proving the ClusterRole both
sufficient and minimal.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import os
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
from scheduler.cli import _COMMANDS
from scheduler.webhook import serve_webhook
from scheduler.webhook.command import routing_from, settings_from
from tests.deploy.support import CERT_MANAGER_GROUP, DEPLOY, kustomize, manifests
from tests.webhook.support import make_pki

WEBHOOK = DEPLOY / "webhook"
VERSION = kubernetes_validate.latest_version()
BUILT = kustomize(WEBHOOK)
OBJ = {(o["kind"], o["metadata"]["name"]): o for o in BUILT}
NAMESPACE = "vecsched"
DEPLOYMENT = OBJ[("Deployment", "vecsched-webhook")]
POD = DEPLOYMENT["spec"]["template"]
CONTAINER = POD["spec"]["containers"][0]
SERVICE = OBJ[("Service", "vecsched-webhook")]
MUTATING = OBJ[("MutatingWebhookConfiguration", "vecsched-webhook")]
VALIDATING = OBJ[("ValidatingWebhookConfiguration", "vecsched-webhook")]
SERVING_CERT = OBJ[("Certificate", "vecsched-webhook")]


def test_kustomization_builds_the_webhook_and_nothing_of_the_scheduler() -> None:
    assert set(OBJ) == {
        ("ServiceAccount", "vecsched-webhook"), ("ClusterRole", "vecsched-webhook"),
        ("ClusterRoleBinding", "vecsched-webhook"), ("Deployment", "vecsched-webhook"),
        ("PodDisruptionBudget", "vecsched-webhook"), ("Service", "vecsched-webhook"),
        ("Issuer", "vecsched-webhook-selfsigned"), ("Certificate", "vecsched-webhook-ca"),
        ("Issuer", "vecsched-webhook-ca"), ("Certificate", "vecsched-webhook"),
        ("MutatingWebhookConfiguration", "vecsched-webhook"), ("ValidatingWebhookConfiguration", "vecsched-webhook"),
    }
    assert len(BUILT) == len(OBJ)  # no two objects of a kind share a name
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                      "ValidatingWebhookConfiguration"}
    for o in BUILT:
        assert o["metadata"].get("namespace") == (None if o["kind"] in cluster_scoped else NAMESPACE), o["kind"]
        assert o["metadata"]["labels"] == {"app.kubernetes.io/name": "vecsched", "app.kubernetes.io/component": "webhook"}


def test_it_runs_beside_the_scheduler_of_deploy() -> None:
    """The namespace and the configuration are deploy/'s (applied first): the webhook knows the
    same profiles as the scheduler it routes pods to."""
    scheduler = {(o["kind"], o["metadata"]["name"]): o for o in kustomize(DEPLOY)}
    assert ("Namespace", NAMESPACE) in scheduler
    config = scheduler[("ConfigMap", POD["spec"]["volumes"][0]["configMap"]["name"])]
    assert config["metadata"]["namespace"] == NAMESPACE
    mount = next(m for m in CONTAINER["volumeMounts"] if m["name"] == "config")["mountPath"]
    assert f"{mount}/config.yaml" in CONTAINER["args"] and "config.yaml" in config["data"]
    # the restricted Pod Security level that namespace enforces (test_deployment_is_restricted)
    assert scheduler[("Namespace", NAMESPACE)]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("obj", [pytest.param(o, id=f"{o['kind']}/{o['metadata']['name']}") for o in BUILT
                                 if not o["apiVersion"].startswith(f"{CERT_MANAGER_GROUP}/")])
def test_validates_against_kubernetes_schemas(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, VERSION, strict=True)


def test_the_files_are_what_kustomize_builds() -> None:
    """deploy/webhook/*.yaml hold the same objects (the schema test of every file under deploy/
    sees them too, cert-manager's excepted)."""
    files = {(o["kind"], o["metadata"]["name"]) for w, o in manifests() if w.startswith("deploy/webhook/")}
    assert files == {k for k, o in OBJ.items() if not o["apiVersion"].startswith(f"{CERT_MANAGER_GROUP}/")}


@pytest.mark.parametrize("mistake", [
    # reinvocationPolicy exists only on mutating webhooks
    ("ValidatingWebhookConfiguration", lambda o: o["webhooks"][0].update(reinvocationPolicy="Never")),
    # the field is webhooks[].objectSelector, not object
    ("MutatingWebhookConfiguration", lambda o: o["webhooks"][1].update(object=o["webhooks"][1].pop("objectSelector"))),
    ("MutatingWebhookConfiguration", lambda o: o["webhooks"][0].update(timeoutSeconds="5")),
], ids=["reinvocation-on-validating", "misnamed-selector", "timeout-as-string"])
def test_the_validator_catches_webhook_mistakes(mistake: tuple[str, Any]) -> None:
    kind, spoil = mistake
    obj = yaml.safe_load(yaml.safe_dump(OBJ[(kind, "vecsched-webhook")]))
    spoil(obj)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, VERSION, strict=True)


# cert-manager.io/v1, from its CRDs (deploy/crds/cert-manager.io_{issuers,certificates}.yaml of
# cert-manager): the spec fields they define, the required ones, and the enums used here.
_ISSUER_TYPES = {"acme", "ca", "selfSigned", "vault", "venafi"}
_CERTIFICATE_FIELDS = {
    "additionalOutputFormats", "commonName", "dnsNames", "duration", "emailAddresses", "encodeUsagesInRequest",
    "ipAddresses", "isCA", "issuerRef", "keystores", "literalSubject", "nameConstraints", "otherNames",
    "privateKey", "renewBefore", "renewBeforePercentage", "revisionHistoryLimit", "secretName", "secretTemplate",
    "signatureAlgorithm", "subject", "uris", "usages"}
_PRIVATE_KEY = {"algorithm": {"RSA", "ECDSA", "Ed25519"}, "encoding": {"PKCS1", "PKCS8"},
                "rotationPolicy": {"Never", "Always"}}
_USAGES = {"signing", "digital signature", "content commitment", "key encipherment", "key agreement",
           "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth",
           "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel",
           "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"}


def _go_duration_hours(text: str) -> int:
    assert text.endswith("h") and text[:-1].isdigit(), f"{text!r}: write durations in whole hours"
    return int(text[:-1])


def _check_cert_manager(obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == "cert-manager.io/v1"
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
    assert obj["metadata"]["name"] and obj["metadata"]["namespace"]
    spec = obj["spec"]
    if obj["kind"] == "Issuer":
        (kind,) = spec  # exactly one issuer type
        assert kind in _ISSUER_TYPES
        if kind == "ca":
            assert set(spec["ca"]) == {"secretName"}
        else:
            assert kind == "selfSigned" and spec["selfSigned"] == {}
        return
    assert obj["kind"] == "Certificate"
    assert set(spec) <= _CERTIFICATE_FIELDS and {"issuerRef", "secretName"} <= set(spec)
    assert set(spec["issuerRef"]) <= {"name", "kind", "group"} and spec["issuerRef"]["name"]
    assert spec["issuerRef"].get("kind", "Issuer") in ("Issuer", "ClusterIssuer")
    for field, allowed in _PRIVATE_KEY.items():
        assert spec.get("privateKey", {}).get(field, next(iter(allowed))) in allowed
    assert set(spec.get("privateKey", {})) <= {*_PRIVATE_KEY, "size"}
    assert set(spec.get("usages", [])) <= _USAGES
    if "duration" in spec:
        # cert-manager's minimum is 1 h, renewBefore's 5 min and below the duration
        assert _go_duration_hours(spec["duration"]) >= 1
        assert _go_duration_hours(spec.get("renewBefore", "1h")) < _go_duration_hours(spec["duration"])


@pytest.mark.parametrize("obj", [pytest.param(o, id=f"{o['kind']}/{o['metadata']['name']}") for o in BUILT
                                 if o["apiVersion"].startswith(f"{CERT_MANAGER_GROUP}/")])
def test_cert_manager_objects_by_structure(obj: dict[str, Any]) -> None:
    _check_cert_manager(obj)


def test_the_certificate_chain_serves_the_service_and_is_injected() -> None:
    """self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate, whose Secret the
    Deployment mounts and whose CA both webhook configurations receive."""
    issuer = OBJ[("Issuer", SERVING_CERT["spec"]["issuerRef"]["name"])]
    ca_cert = next(o for o in BUILT if o["kind"] == "Certificate" and o["spec"]["secretName"]
                   == issuer["spec"]["ca"]["secretName"])
    assert ca_cert["spec"]["isCA"] is True and not SERVING_CERT["spec"].get("isCA")
    assert OBJ[("Issuer", ca_cert["spec"]["issuerRef"]["name"])]["spec"] == {"selfSigned": {}}
    assert "server auth" in SERVING_CERT["spec"]["usages"]
    # the CA outlives many serving certificates: 43800 h (5 years) against 2160 h (90 days)
    assert _go_duration_hours(ca_cert["spec"]["duration"]) == 43800
    assert _go_duration_hours(SERVING_CERT["spec"]["duration"]) == 2160
    svc = f"{SERVICE['metadata']['name']}.{SERVICE['metadata']['namespace']}"
    assert SERVING_CERT["spec"]["dnsNames"] == [f"{svc}.svc", f"{svc}.svc.cluster.local"]
    assert SERVING_CERT["spec"]["dnsNames"] == ["vecsched-webhook.vecsched.svc",
                                                "vecsched-webhook.vecsched.svc.cluster.local"]
    tls = next(v for v in POD["spec"]["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == SERVING_CERT["spec"]["secretName"] == "vecsched-webhook-tls"
    for config in (MUTATING, VALIDATING):
        assert config["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "vecsched/vecsched-webhook"}
        assert all("caBundle" not in w["clientConfig"] for w in config["webhooks"])  # injected, not shipped


_COMMON = {"sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5}
_NOT_KUBE_SYSTEM = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}


_SETTINGS = [
    (MUTATING, "pods.vecsched.io", "/mutate-pods", ("", "v1", "pods"), ["CREATE"], "Ignore"),
    (MUTATING, "labelled-pods.vecsched.io", "/mutate-pods", ("", "v1", "pods"), ["CREATE"], "Ignore"),
    (VALIDATING, "podgroups.vecsched.io", "/validate-podgroups", ("scheduling.x-k8s.io", "v1alpha1", "podgroups"),
     ["CREATE", "UPDATE"], "Fail"),
    (VALIDATING, "configs.vecsched.io", "/validate-config", ("", "v1", "configmaps"), ["CREATE", "UPDATE"], "Fail"),
]


@pytest.mark.parametrize(("config", "name", "path", "resources", "operations", "failure_policy"),
                         [pytest.param(*case, id=case[1]) for case in _SETTINGS])
def test_webhook_settings(config: dict[str, Any], name: str, path: str, resources: tuple[str, str, str],
                          operations: list[str], failure_policy: str) -> None:
    webhook = next(w for w in config["webhooks"] if w["name"] == name)
    assert {k: webhook[k] for k in _COMMON} == _COMMON
    assert webhook["failurePolicy"] == failure_policy
    # Never on the mutating ones (the only kind that has the field), absent on validating ones
    assert webhook.get("reinvocationPolicy") == ("Never" if config is MUTATING else None)
    group, version, resource = resources
    assert webhook["rules"] == [{"operations": operations, "apiGroups": [group], "apiVersions": [version],
                                 "resources": [resource], "scope": "Namespaced"}]
    assert webhook["clientConfig"] == {"service": {"name": "vecsched-webhook", "namespace": NAMESPACE, "path": path,
                                                   "port": 443}}
    assert _NOT_KUBE_SYSTEM in webhook["namespaceSelector"]["matchExpressions"]


def test_every_webhook_reaches_the_deployments_https_port() -> None:
    """clientConfig.service -> the Service's port 443 -> targetPort https -> containerPort 9443."""
    hooks = MUTATING["webhooks"] + VALIDATING["webhooks"]
    assert len(hooks) == 4 and len({w["name"] for w in hooks}) == 4
    for w in hooks:
        ref = w["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"]) == (SERVICE["metadata"]["name"], SERVICE["metadata"]["namespace"])
        (port,) = (p for p in SERVICE["spec"]["ports"] if p["port"] == ref["port"])
        (container_port,) = (p for p in CONTAINER["ports"] if p["name"] == port["targetPort"])
        assert container_port["containerPort"] == 9443 and container_port["name"] == "https"
    assert SERVICE["spec"]["selector"].items() <= POD["metadata"]["labels"].items()


def test_deployment_runs_two_spread_replicas_with_a_budget() -> None:
    assert DEPLOYMENT["spec"]["replicas"] == 2
    labels = POD["metadata"]["labels"]
    assert DEPLOYMENT["spec"]["selector"]["matchLabels"] == labels
    (term,) = POD["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"] == {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}
    pdb = OBJ[("PodDisruptionBudget", "vecsched-webhook")]
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": labels}}
    # 2 replicas, minAvailable 1: a drain can evict one at a time, never both
    assert DEPLOYMENT["spec"]["replicas"] - pdb["spec"]["minAvailable"] == 1


def test_deployment_serves_https_with_its_certificate_and_config() -> None:
    assert CONTAINER["args"] == ["webhook", "--tls-cert-file", "/tls/tls.crt", "--tls-private-key-file", "/tls/tls.key",
                                 "--config", "/config/config.yaml"]
    assert CONTAINER["ports"] == [{"name": "https", "containerPort": 9443, "protocol": "TCP"}]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert CONTAINER[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}
    mounts = {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in CONTAINER["volumeMounts"]}
    assert mounts == {"config": ("/config", True), "tls": ("/tls", True), "tmp": ("/tmp", False)}
    volumes = {v["name"]: v for v in POD["spec"]["volumes"]}
    assert volumes["config"]["configMap"] == {"name": "vecsched-config"}
    assert volumes["tls"]["secret"] == {"secretName": "vecsched-webhook-tls"}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}


def test_deployment_is_restricted() -> None:
    """Pod Security's restricted level (the namespace enforces it), and a read-only root."""
    pod_ctx, ctx = POD["spec"]["securityContext"], CONTAINER["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] == 65532  # the image's USER
    assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert POD["spec"]["serviceAccountName"] == "vecsched-webhook"
    resources = CONTAINER["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"} and set(resources["limits"]) == {"memory"}


def test_cluster_role_grants_reading_namespaces_and_nodes_only() -> None:
    """What the server reads (proven sufficient and minimal by the run under RBAC below)."""
    role = OBJ[("ClusterRole", "vecsched-webhook")]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
                             {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}]
    binding = OBJ[("ClusterRoleBinding", "vecsched-webhook")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "vecsched-webhook"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": POD["spec"]["serviceAccountName"],
                                    "namespace": NAMESPACE}]


def _webhook_parser() -> argparse.ArgumentParser:
    """`vecsched`'s parser with the webhook subcommand, built as scheduler.cli.main builds it."""
    parser = argparse.ArgumentParser(prog="vecsched")
    sub = parser.add_subparsers(dest="command", required=True)
    importlib.import_module(_COMMANDS["webhook"][0]).configure(sub.add_parser("webhook"))
    return parser


def test_deployment_args_parse_as_the_webhook_command() -> None:
    args = _webhook_parser().parse_args(CONTAINER["args"])
    assert args.command == "webhook"
    assert (args.tls_cert_file, args.tls_private_key_file, args.config) == \
        ("/tls/tls.crt", "/tls/tls.key", "/config/config.yaml")
    # the defaults the manifests rely on: the containerPort, every interface, in-cluster API access,
    # /metrics on the HTTPS port (what the troubleshooting guide scrapes)
    assert (args.port, args.bind_address, args.kubeconfig, args.metrics_port) == (9443, "0.0.0.0", None, 0)
    assert args.unknown_profile == "refuse"
    # a replica told to stop drops out of the Service for 5 s before it stops answering
    assert args.shutdown_delay_seconds == 5.0


# docs/webhook.md's installation without cert-manager, run as written.
DOC = (DEPLOY.parent / "docs" / "webhook.md").read_text()


def _block(lang: str, containing: str) -> str:
    (block,) = (b.split("\n", 1)[1] for b in DOC.split("```")[1::2] if b.startswith(lang + "\n") and containing in b)
    return block


def test_documented_kustomization_drops_cert_manager(tmp_path: Path) -> None:
    overlay = yaml.safe_load(_block("yaml", "$patch: delete"))
    assert overlay["resources"] == ["../deploy/webhook"]  # beside vecsched's deploy/
    overlay["resources"] = [os.path.relpath(WEBHOOK, tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    built = {(o["kind"], o["metadata"]["name"]): o for o in kustomize(tmp_path)}
    # the 12 objects less the 2 Issuers and 2 Certificates; the rest unchanged but for the annotation
    assert set(built) == {k for k, o in OBJ.items() if not o["apiVersion"].startswith(f"{CERT_MANAGER_GROUP}/")}
    for key, obj in built.items():
        if key[0].endswith("WebhookConfiguration"):
            assert obj["metadata"].get("annotations", {}) == {}
            assert obj["webhooks"] == OBJ[key]["webhooks"]
            # the documented caBundle patch writes /webhooks/0 and /webhooks/1 of each
            assert len(obj["webhooks"]) == 2
        else:
            assert obj == OBJ[key]


@pytest.fixture
def documented_pki(tmp_path: Path) -> Path:
    """docs/webhook.md's openssl commands, run as written: ca.crt, tls.crt and tls.key."""
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", _block("sh", "openssl req")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return tmp_path


# ---- the Deployment's command, run as its ServiceAccount under RBAC ----------------------------

SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:vecsched-webhook"
SERVICE_NAME = "vecsched-webhook.vecsched.svc"
PROFILE = {"vecsched.io/scheduler-name": "vecsched-binpack"}  # a profile of deploy/config.yaml


def _mounted(tmp_path: Path, pki: Path) -> list[str]:
    """The container's args, with /config and /tls made here from what the pod mounts: the
    ConfigMap of deploy/config.yaml and the certificate of docs/webhook.md."""
    config_map = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    (tmp_path / "config").mkdir()
    for key, text in config_map["data"].items():
        (tmp_path / "config" / key).write_text(text)
    return [a.replace("/config/", f"{tmp_path}/config/").replace("/tls/", f"{pki}/") for a in CONTAINER["args"]]


def _review(obj: dict[str, Any], resource: tuple[str, str, str], *, namespace: str) -> dict[str, Any]:
    group, version, plural = resource
    gvk, gvr = {"group": group, "version": version, "kind": obj["kind"]}, \
        {"group": group, "version": version, "resource": plural}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": obj["metadata"]["name"], "namespace": namespace, "operation": "CREATE",
        "userInfo": {"username": "admin"}, "object": obj, "dryRun": False}}


async def test_the_deployment_runs_under_its_rbac_with_the_documented_certificate(
        tmp_path: Path, documented_pki: Path) -> None:
    """The container's args (config and certificate in place of the mounts) run as the
    ServiceAccount against the embedded API server with RBAC enforced: its probes answer over
    HTTPS; a client trusting only ca.crt (kube-apiserver with the caBundle) reaches it as the
    Service's name, not as another; each webhook does its job, the pod webhook looking up a
    namespace its informer has not seen; /metrics counts it all. Sufficient: nothing it asked
    was denied. Minimal: every (group, resource, verb) granted was used."""
    args = _webhook_parser().parse_args(_mounted(tmp_path, documented_pki))
    rbac = read_rbac_file(WEBHOOK / "rbac.yaml")
    async with serve_apiserver(nodes=NodeShape(count=2, cpu="4", memory="8Gi"), rbac=rbac,
                               tokens={"webhook-token": SERVICE_ACCOUNT}, kubelet_delay=0.0) as srv:
        srv.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "team-a", "labels": PROFILE}})
        args.kubeconfig = str(srv.kubeconfig_for(token="webhook-token", path=tmp_path / "sa.kubeconfig"))
        args.bind_address, args.port = "127.0.0.1", 0  # in the pod: 0.0.0.0:9443
        async with serve_webhook(routing=routing_from(args), settings=settings_from(args)) as wh:
            assert wh.namespaces is not None and wh.nodes is not None
            await asyncio.wait_for(wh.namespaces.synced.wait(), 10)
            await asyncio.wait_for(wh.nodes.synced.wait(), 10)
            trust = ssl.create_default_context(cafile=str(documented_pki / "ca.crt"))
            async with aiohttp.ClientSession() as http:
                async def call(method: str, path: str, body: Any = None, *, name: str = SERVICE_NAME) -> Any:
                    async with http.request(method, wh.url + path, json=body, ssl=trust,
                                            server_hostname=name) as r:
                        assert r.status == 200, await r.text()
                        return await (r.json() if body is not None else r.text())

                for probe in ("readinessProbe", "livenessProbe"):
                    assert await call("GET", CONTAINER[probe]["httpGet"]["path"]) == "ok"
                assert await call("GET", "/healthz", name=f"{SERVICE_NAME}.cluster.local") == "ok"
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await call("GET", "/healthz", name="vecsched-webhook.other.svc")

                path = {w["name"]: w["clientConfig"]["service"]["path"]
                        for w in MUTATING["webhooks"] + VALIDATING["webhooks"]}
                pod: dict[str, Any] = {
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team-a"},
                    "spec": {"schedulerName": "default-scheduler", "containers": [{"name": "c", "image": "i"}]}}
                resp = (await call("POST", path["pods.vecsched.io"], _review(pod, ("", "v1", "pods"),
                                                                             namespace="team-a")))["response"]
                assert resp["allowed"] and json.loads(base64.b64decode(resp["patch"])) == [
                    {"op": "replace", "path": "/spec/schedulerName", "value": "vecsched-binpack"}]
                # a namespace the informer has not seen (here: one that does not exist) is looked up
                pod["metadata"]["namespace"] = "unseen"
                resp = (await call("POST", path["pods.vecsched.io"], _review(pod, ("", "v1", "pods"),
                                                                             namespace="unseen")))["response"]
                assert resp["allowed"] and "patch" not in resp and wh.namespaces.lookups == 1
                # 2 nodes x 4 CPU = 8 CPU allocatable in all: a gang needing 9 can never run
                group = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                         "metadata": {"name": "train", "namespace": "team-a"},
                         "spec": {"minMember": 2, "minResources": {"cpu": "9"}}}
                resp = (await call("POST", path["podgroups.vecsched.io"], _review(
                    group, ("scheduling.x-k8s.io", "v1alpha1", "podgroups"), namespace="team-a")))["response"]
                assert not resp["allowed"] and resp["status"]["details"]["causes"][0]["field"] == \
                    "spec.minResources[cpu]"
                # the scheduler's own ConfigMap, labelled as docs/webhook.md says: a valid configuration
                config_map = yaml.safe_load((DEPLOY / "config.yaml").read_text())
                config_map["metadata"]["labels"]["vecsched.io/config"] = ""
                resp = (await call("POST", path["configs.vecsched.io"], _review(
                    config_map, ("", "v1", "configmaps"), namespace=NAMESPACE)))["response"]
                assert resp["allowed"]

                counts = {(s.labels["webhook"], s.labels["result"]): s.value
                          for f in text_string_to_metric_families(await call("GET", "/metrics"))
                          for s in f.samples if s.name == "vecsched_admission_requests_total" and s.value}
                assert counts == {("mutate-pods", "patched"): 1, ("mutate-pods", "allowed"): 1,
                                  ("validate-podgroups", "denied"): 1, ("validate-config", "allowed"): 1}
        decisions = [d for d in srv.auth_log if d.user == SERVICE_ACCOUNT]

    used = {(d.group, d.resource + (f"/{d.subresource}" if d.subresource else ""), d.verb) for d in decisions}
    denied = sorted({(d.group, d.resource, d.verb) for d in decisions if not d.allowed})
    assert denied == [], f"the manifest lacks: {denied}"
    granted = {(g, r, v) for doc in rbac if doc["kind"] == "ClusterRole" for rule in doc["rules"]
               for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert sorted(granted - used) == [], "the manifest grants what the webhook never uses"


# ---- the shipped configurations, called by the embedded control plane ---------------------------

CRD = DEPLOY / "crds" / "scheduling.x-k8s.io_podgroups.yaml"


def _pointed_at(config: dict[str, Any], url: str, ca: bytes) -> dict[str, Any]:
    """`config` as shipped, but for clientConfig: the embedded server reaches a URL, not a Service,
    and takes the CA that cert-manager would inject."""
    out: dict[str, Any] = json.loads(json.dumps(config))
    for w in out["webhooks"]:
        w["clientConfig"] = {"url": url + w["clientConfig"]["service"]["path"],
                             "caBundle": base64.b64encode(ca).decode()}
    return out


# (namespace, the pod's labels, its spec.schedulerName or None) -> schedulerName once created
_PODS = [
    ("team-a", {}, None, "vecsched-binpack"),                            # the namespace opted in
    ("team-b", {}, None, "default-scheduler"),                           # nobody did: never sent
    ("team-b", {"vecsched.io/scheduler-name": "vecsched-gpu"}, None, "vecsched-gpu"),  # the pod did
    ("team-a", {"vecsched.io/scheduler-name": "vecsched-gpu"}, None, "vecsched-gpu"),  # both: the pod's wins
    ("team-a", {}, "other-scheduler", "other-scheduler"),                # another scheduler's pod
    ("kube-system", {}, None, "default-scheduler"),                      # labelled, but never sent
]


async def test_shipped_configurations_through_real_admission(tmp_path: Path) -> None:
    """webhooks.yaml registered with the embedded control plane (which selects and calls webhooks
    as kube-apiserver does) and the Deployment's command behind it: each pod above is sent at most
    once and ends up with the expected scheduler; PodGroups and labelled ConfigMaps are validated,
    unlabelled ConfigMaps are not; with the webhook stopped, pods are still created (Ignore) and
    PodGroups are refused (Fail)."""
    pki = make_pki(tmp_path)  # its serving certificate names 127.0.0.1
    args = _webhook_parser().parse_args(_mounted(tmp_path, pki.dir))
    async with serve_apiserver(nodes=NodeShape(count=2, cpu="4", memory="8Gi")) as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        srv.create("customresourcedefinitions", next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
        srv.create("namespaces", {"metadata": {"name": "team-a", "labels": PROFILE}})
        srv.create("namespaces", {"metadata": {"name": "team-b"}})
        srv.store.update(srv.resource("namespaces"), "", "kube-system",
                         lambda ns: {**ns, "metadata": {**ns["metadata"], "labels": {
                             **ns["metadata"].get("labels", {}), **PROFILE}}})
        args.kubeconfig, args.bind_address, args.port = str(srv.kubeconfig_path), "127.0.0.1", 0

        async def create(path: str, obj: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(path, json=obj) as r:
                return r.status, await r.json()

        async with serve_webhook(routing=routing_from(args), settings=settings_from(args)) as wh:
            assert wh.namespaces is not None
            await asyncio.wait_for(wh.namespaces.synced.wait(), 10)
            for kind, config in (("mutatingwebhookconfigurations", MUTATING),
                                 ("validatingwebhookconfigurations", VALIDATING)):
                status, answer = await create(f"/apis/admissionregistration.k8s.io/v1/{kind}",
                                              _pointed_at(config, wh.url, pki.ca_file.read_bytes()))
                assert status == 201, answer

            for i, (ns, labels, scheduler, expected) in enumerate(_PODS):
                spec: dict[str, Any] = {"containers": [{"name": "c", "image": "pause"}]}
                if scheduler:
                    spec["schedulerName"] = scheduler
                status, created = await create(f"/api/v1/namespaces/{ns}/pods", {
                    "metadata": {"name": f"p{i}", "labels": labels}, "spec": spec})
                assert status == 201 and created["spec"]["schedulerName"] == expected, (i, created)

            def count(webhook: str, result: str) -> float:
                value = wh.metrics.registry.get_sample_value("vecsched_admission_requests_total",
                                                             {"webhook": webhook, "result": result})
                return value or 0.0

            # sent once each: p0, p2, p3 (patched) and p4 (allowed unchanged); p1 and p5 never sent
            assert (count("mutate-pods", "patched"), count("mutate-pods", "allowed")) == (3, 1)
            assert (count("mutate-pods", "denied"), count("mutate-pods", "error")) == (0, 0)

            # 2 nodes x 4 CPU = 8 in all: a gang that needs 9 CPU can never run
            group: dict[str, Any] = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                                     "metadata": {"name": "train"},
                                     "spec": {"minMember": 2, "minResources": {"cpu": "9"}}}
            podgroups = "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/team-a/podgroups"
            status, answer = await create(podgroups, group)
            assert status == 422 and 'admission webhook "podgroups.vecsched.io" denied the request' in \
                answer["message"] and "spec.minResources[cpu]" in answer["message"], answer
            broken: dict[str, Any] = {
                "metadata": {"name": "sched", "labels": {"vecsched.io/config": ""}},
                "data": {"config.yaml": "apiVersion: kubescheduler.config.k8s.io/v1\n"
                                        "kind: KubeSchedulerConfiguration\nprofiles: [{schedulerName: 7}]\n"}}
            status, answer = await create("/api/v1/namespaces/team-a/configmaps", broken)
            assert status == 422 and 'admission webhook "configs.vecsched.io" denied the request' in \
                answer["message"] and \
                "data[config.yaml]: profiles[0].schedulerName: expected a string, got 7" in answer["message"], answer
            del broken["metadata"]["labels"]  # not a vecsched configuration: not sent
            status, answer = await create("/api/v1/namespaces/team-a/configmaps", broken)
            assert status == 201, answer
            assert count("validate-config", "denied") == 1 and count("validate-podgroups", "denied") == 1

        # the webhook is gone: pods are created unchanged, PodGroups are refused
        status, created = await create("/api/v1/namespaces/team-a/pods", {
            "metadata": {"name": "while-down"}, "spec": {"containers": [{"name": "c", "image": "pause"}]}})
        assert status == 201 and created["spec"]["schedulerName"] == "default-scheduler"
        group["spec"]["minResources"] = {"cpu": "1"}
        status, answer = await create(podgroups, group)
        assert status == 500 and 'failed calling webhook "podgroups.vecsched.io"' in answer["message"], answer
