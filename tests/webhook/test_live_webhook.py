"""The webhook registered with the embedded control plane, which calls it as kube-apiserver does
(clientConfig.url, caBundle verification, selectors, failurePolicy): a labelled namespace's
Deployment gets vecsched pods that `vecsched run` binds; an unlabelled one keeps default-scheduler;
a pod naming another scheduler is untouched; with the webhook stopped, Ignore lets pods through;
an invalid PodGroup and an invalid configuration are refused through kubectl and HTTP with field
errors, and the webhook's warnings reach kubectl."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers import DeploymentController, ReplicaSetController
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane, deployment, pods_of, running, wait_for
from tests.webhook.support import Pki, webhook

SN = "vecsched.io/scheduler-name"
CRD = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
NOT_SYSTEM = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}


def _hook(name: str, url: str, pki: Pki, *, failure: str, rules: list[dict[str, Any]], **selectors: Any) -> dict[str, Any]:
    return {"name": name, "clientConfig": {"url": url, "caBundle": base64.b64encode(pki.ca_file.read_bytes()).decode()},
            "rules": rules, "failurePolicy": failure, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5, **selectors}


def register(srv: ApiServer, url: str, pki: Pki) -> None:
    """deploy/webhook/webhooks.yaml's configurations, with clientConfig.url for the service reference."""
    pods = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]
    srv.create("mutatingwebhookconfigurations", {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "vecsched-webhook"}, "webhooks": [
            _hook("pods.vecsched.io", f"{url}/mutate-pods", pki, failure="Ignore", rules=pods,
                  namespaceSelector={"matchExpressions": [{"key": SN, "operator": "Exists"}, NOT_SYSTEM]}),
            _hook("labelled-pods.vecsched.io", f"{url}/mutate-pods", pki, failure="Ignore", rules=pods,
                  namespaceSelector={"matchExpressions": [{"key": SN, "operator": "DoesNotExist"}, NOT_SYSTEM]},
                  objectSelector={"matchExpressions": [{"key": SN, "operator": "Exists"}]})]})
    srv.create("validatingwebhookconfigurations", {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "vecsched-webhook"}, "webhooks": [
            _hook("podgroups.vecsched.io", f"{url}/validate-podgroups", pki, failure="Fail",
                  rules=[{"operations": ["CREATE", "UPDATE"], "apiGroups": ["scheduling.x-k8s.io"],
                          "apiVersions": ["v1alpha1"], "resources": ["podgroups"]}]),
            _hook("configs.vecsched.io", f"{url}/validate-config", pki, failure="Fail",
                  rules=[{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                          "resources": ["configmaps"]}],
                  objectSelector={"matchExpressions": [{"key": "vecsched.io/config", "operator": "Exists"}]})]})


async def _post(http: aiohttp.ClientSession, srv: ApiServer, path: str, obj: dict[str, Any]) -> tuple[int, Any, str]:
    async with http.post(f"{srv.url}{path}", json=obj) as r:
        return r.status, await r.json(), r.headers.get("Warning", "")


def _manifest(obj: dict[str, Any]) -> str:
    return str(yaml.safe_dump(obj))


async def test_namespaces_routed_through_real_admission(pki: Pki) -> None:
    async with control_plane(DeploymentController, ReplicaSetController) as srv, \
            aiohttp.ClientSession() as http:
        assert srv.kubeconfig_path is not None
        srv.create("customresourcedefinitions", next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
        srv.create("namespaces", {"metadata": {"name": "team-a", "labels": {SN: "vecsched"}}})
        srv.create("namespaces", {"metadata": {"name": "team-b"}})
        wh_cm = webhook(pki, srv)
        wh = await wh_cm.__aenter__()
        try:
            register(srv, wh.url, pki)
            # Deployments without a schedulerName (defaulted to default-scheduler) in both namespaces
            for ns in ("team-a", "team-b"):
                dep = deployment("web", namespace=ns, replicas=3)
                del dep["spec"]["template"]["spec"]["schedulerName"]
                code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=_manifest(dep))
                assert code == 0, err
            async with running(srv):
                await wait_for(lambda: len(pods_of(srv, namespace="team-a")) == 3
                               and all(p["spec"].get("nodeName") for p in pods_of(srv, namespace="team-a")),
                               timeout=20, what="team-a's pods bound by vecsched")
            assert {p["spec"]["schedulerName"] for p in pods_of(srv, namespace="team-a")} == {"vecsched"}
            await wait_for(lambda: len(pods_of(srv, namespace="team-b")) == 3, what="team-b's pods")
            team_b = pods_of(srv, namespace="team-b")
            assert {p["spec"]["schedulerName"] for p in team_b} == {"default-scheduler"}
            assert not any(p["spec"].get("nodeName") for p in team_b)  # vecsched did not take them

            # a pod naming another scheduler in the labelled namespace is untouched
            other = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "batch", "namespace": "team-a"},
                     "spec": {"schedulerName": "volcano", "containers": [{"name": "c", "image": "busybox:1.36"}]}}
            code, body, _ = await _post(http, srv, "/api/v1/namespaces/team-a/pods", other)
            assert code == 201 and body["spec"]["schedulerName"] == "volcano"
            # the pod's own label in an unlabelled namespace
            labelled = dict(other, metadata={"name": "mine", "namespace": "team-b", "labels": {SN: "vecsched"}},
                            spec={"containers": [{"name": "c", "image": "busybox:1.36"}]})
            code, body, _ = await _post(http, srv, "/api/v1/namespaces/team-b/pods", labelled)
            assert code == 201 and body["spec"]["schedulerName"] == "vecsched"

            # PodGroups that can never run, refused with field errors (kubectl and HTTP). The CRD's schema
            # refuses minMember 0 itself, before any webhook; what it lets through the webhook refuses:
            # no minMember, 64 CPUs of the 4 * 4 = 16 the nodes have, a timeout of 0.
            pg = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                  "metadata": {"name": "gang", "namespace": "team-a"},
                  "spec": {"minResources": {"cpu": "64"}, "scheduleTimeoutSeconds": 0}}
            code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=_manifest(pg))
            assert code != 0
            errors = ["spec.minMember: Required value: must be greater than or equal to 1",
                      'spec.minResources[cpu]: Invalid value: "64": exceeds the 16 allocatable on all 4 nodes '
                      'together, so the group can never be scheduled',
                      "spec.scheduleTimeoutSeconds: Invalid value: 0: must be greater than 0"]
            # kubectl prints a 422's causes one per line
            assert err == 'The PodGroup "gang" is invalid: \n' + "".join(f"* {e}\n" for e in errors), err
            code, body, _ = await _post(http, srv, "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/team-a/podgroups", pg)
            assert code == 422 and body["reason"] == "Invalid", body
            assert [f"{c['field']}: {c['message']}" for c in body["details"]["causes"]] == errors
            # kube-apiserver's wrapping of a webhook's denial, ending in the webhook's own message
            assert body["message"].endswith('admission webhook "podgroups.vecsched.io" denied the request: '
                                            'PodGroup.scheduling.x-k8s.io "gang" is invalid: [' + ", ".join(errors) + "]")
            pg["spec"] = {"minMember": 2}
            code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=_manifest(pg))
            assert code == 0, err

            # configurations vecsched would refuse, refused; its warnings shown by kubectl
            head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
            cm = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "vecsched-config", "namespace": "team-a", "labels": {"vecsched.io/config": ""}},
                  "data": {"config.yaml": head + "profiles:\n- schedulerName: a\n- schedulerName: a\n"}}
            code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=_manifest(cm))
            assert code != 0
            assert ("data[config.yaml]: profiles[1].schedulerName: duplicate profile 'a'") in err, err
            code, body, _ = await _post(http, srv, "/api/v1/namespaces/team-a/configmaps", cm)
            assert code == 422 and body["details"]["causes"][0]["field"] == "data[config.yaml]", body
            cm["data"] = {"config.yaml": head + "parallelism: 16\n"}
            code, out, err = await kubectl(srv.kubeconfig_path, "apply", "-f", "-", stdin=_manifest(cm))
            assert code == 0, err
            assert "Warning: data[config.yaml]: parallelism: accepted but not used by vecsched" in err, err
        finally:
            await wh_cm.__aexit__(None, None, None)

        # The webhook is down: failurePolicy Ignore creates the pod, unrouted.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "while-down", "namespace": "team-a"},
               "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
        code, body, _ = await _post(http, srv, "/api/v1/namespaces/team-a/pods", pod)
        assert code == 201, body
        assert body["spec"]["schedulerName"] == "default-scheduler"
        # ... while validations (Fail) refuse rather than let unchecked objects in
        pg = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
              "metadata": {"name": "later", "namespace": "team-a"}, "spec": {"minMember": 1}}
        code, body, _ = await _post(http, srv, "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/team-a/podgroups", pg)
        assert code == 500 and 'failed calling webhook "podgroups.vecsched.io"' in body["message"], body
