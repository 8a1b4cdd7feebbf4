"""`kubectl kustomize` builds deploy/ and deploy/extender/ into the objects a user applies."""

from __future__ import annotations

import json
from typing import Any

from tests.deploy.support import DEPLOY, kustomize


def _index(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_scheduler_kustomization() -> None:
    objs = _index(kustomize(DEPLOY))
    assert set(objs) == {
        ("Namespace", "vecsched"), ("ServiceAccount", "vecsched"), ("ClusterRole", "vecsched"),
        ("ClusterRoleBinding", "vecsched"), ("Role", "vecsched-leader-election"),
        ("RoleBinding", "vecsched-leader-election"), ("ConfigMap", "vecsched-config"),
        ("ConfigMap", "vecsched-grafana-dashboard"), ("Deployment", "vecsched"), ("PodDisruptionBudget", "vecsched"),
        ("Service", "vecsched-metrics"), ("ServiceMonitor", "vecsched"), ("PrometheusRule", "vecsched"),
        ("CustomResourceDefinition", "podgroups.scheduling.x-k8s.io"),
    }
    dashboard = objs[("ConfigMap", "vecsched-grafana-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["vecsched.json"])["uid"] == "vecsched"
    pod = objs[("Deployment", "vecsched")]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vecsched"
    assert pod["volumes"][0]["configMap"]["name"] == "vecsched-config"


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
