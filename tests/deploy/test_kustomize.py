"""`kubectl kustomize` builds deploy/ and deploy/extender/ into the objects a user applies."""

from __future__ import annotations

import json
from typing import Any

from tests.deploy.support import DEPLOY, kustomize


def _index(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


_OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
"""Kinds that exist only where the Prometheus Operator's CRDs are installed."""


def test_scheduler_kustomization() -> None:
    # Only built-in kinds and the PodGroup CRD it brings: `kubectl apply -k deploy/` works on a bare cluster.
    objs = _index(kustomize(DEPLOY))
    assert set(objs) == {
        ("Namespace", "vecsched"), ("ServiceAccount", "vecsched"), ("ClusterRole", "vecsched"),
        ("ClusterRoleBinding", "vecsched"), ("ClusterRoleBinding", "vecsched-auth-delegator"),
        ("Role", "vecsched-leader-election"),
        ("RoleBinding", "vecsched-leader-election"), ("ConfigMap", "vecsched-config"),
        ("Deployment", "vecsched"), ("PodDisruptionBudget", "vecsched"),
        ("Service", "vecsched-metrics"), ("CustomResourceDefinition", "podgroups.scheduling.x-k8s.io"),
    }
    assert not {kind for kind, _ in objs} & _OPERATOR_KINDS
    pod = objs[("Deployment", "vecsched")]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vecsched"
    assert pod["volumes"][0]["configMap"]["name"] == "vecsched-config"
    # Secure serving, as kube-scheduler: HTTPS probes on 10259, and the reviews /metrics needs
    # (TokenReview, SubjectAccessReview) allowed by the cluster's system:auth-delegator.
    container = pod["containers"][0]
    assert "--port=10259" in container["args"]
    assert [container[p]["httpGet"]["scheme"] for p in ("livenessProbe", "readinessProbe")] == ["HTTPS", "HTTPS"]
    delegator = objs[("ClusterRoleBinding", "vecsched-auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    assert delegator["subjects"] == [{"kind": "ServiceAccount", "name": "vecsched", "namespace": "vecsched"}]


def test_monitoring_kustomization() -> None:
    # The layer for clusters with the Prometheus Operator, in the scheduler's namespace.
    objs = _index(kustomize(DEPLOY / "monitoring"))
    assert set(objs) == {("ServiceMonitor", "vecsched"), ("PrometheusRule", "vecsched"),
                         ("ConfigMap", "vecsched-grafana-dashboard"), ("ClusterRole", "vecsched-metrics-reader"),
                         ("ClusterRoleBinding", "vecsched-metrics-reader")}
    assert {o["metadata"]["namespace"] for o in objs.values() if not o["kind"].startswith("Cluster")} == {"vecsched"}
    # The secure port: HTTPS with a self-signed certificate, Prometheus' token, which may get /metrics.
    [endpoint] = objs[("ServiceMonitor", "vecsched")]["spec"]["endpoints"]
    assert (endpoint["scheme"], endpoint["tlsConfig"], endpoint["bearerTokenFile"]) == (
        "https", {"insecureSkipVerify": True}, "/var/run/secrets/kubernetes.io/serviceaccount/token")
    assert objs[("ClusterRole", "vecsched-metrics-reader")]["rules"] == [{"nonResourceURLs": ["/metrics"],
                                                                          "verbs": ["get"]}]
    binding = objs[("ClusterRoleBinding", "vecsched-metrics-reader")]
    assert binding["roleRef"]["name"] == "vecsched-metrics-reader" and binding["subjects"][0]["kind"] == "ServiceAccount"
    dashboard = objs[("ConfigMap", "vecsched-grafana-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["vecsched.json"])["uid"] == "vecsched"
    # It scrapes the Service deploy/ creates: the same selector labels.
    service = _index(kustomize(DEPLOY))[("Service", "vecsched-metrics")]
    selector = objs[("ServiceMonitor", "vecsched")]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()


def test_extender_kustomization() -> None:
    objs = kustomize(DEPLOY / "extender")
    kinds = {(o["kind"], o["metadata"].get("namespace", "")) for o in objs}
    assert {("Deployment", "vecsched"), ("Service", "vecsched"), ("PodDisruptionBudget", "vecsched"),
            ("ServiceAccount", "vecsched"), ("ClusterRole", ""), ("ClusterRoleBinding", ""),
            ("ServiceMonitor", "vecsched")} <= kinds
    assert ("ConfigMap", "kube-system") in kinds  # kube-scheduler's config, for a kube-scheduler Deployment
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
    assert volume.startswith("vecsched-extender-config-")  # kustomize's hashed name, referenced
    assert volume in {o["metadata"]["name"] for o in objs if o["kind"] == "ConfigMap"}
