"""Every manifest under deploy/ validates against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict: unknown fields are errors). The Prometheus Operator's
CRDs (ServiceMonitor, PrometheusRule) are not in those schemas; their structure is
checked by hand below: apiVersion, kind, metadata, and the fields the operator requires."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.support import DEPLOY, kustomize, manifests

VERSION = kubernetes_validate.latest_version()
CRDS = {"ServiceMonitor", "PrometheusRule", "PodGroup"}
PODGROUP_CRD = next(d for d in yaml.safe_load_all((DEPLOY / "crds" / "scheduling.x-k8s.io_podgroups.yaml").read_text())
                    if d)
ALL = manifests() + [(f"kustomize {d.name}#{i}", o) for d in (DEPLOY, DEPLOY / "extender")
                     for i, o in enumerate(kustomize(d))]


@pytest.mark.parametrize(("where", "obj"), [pytest.param(w, o, id=w) for w, o in ALL if o["kind"] not in CRDS])
def test_validates_against_kubernetes_schemas(where: str, obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, VERSION, strict=True)


def test_the_validator_catches_mistakes() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"replicas": "two", "selector": {}, "template": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSION, strict=True)


def _check_crd(obj: dict[str, Any]) -> None:
    if obj["kind"] == "PodGroup":  # against the CRD vecsched ships, unknown spec fields refused
        version = PODGROUP_CRD["spec"]["versions"][0]
        assert obj["apiVersion"] == f"{PODGROUP_CRD['spec']['group']}/{version['name']}"
        schema = version["schema"]["openAPIV3Schema"]
        jsonschema.validate(obj, schema)
        assert set(obj["spec"]) <= set(schema["properties"]["spec"]["properties"])
        return
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    assert obj["metadata"]["name"] and obj["metadata"]["namespace"]
    spec = obj["spec"]
    if obj["kind"] == "ServiceMonitor":
        assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
        assert spec["selector"]["matchLabels"]
        for ep in spec["endpoints"]:
            assert set(ep) <= {"port", "path", "interval", "scheme", "scrapeTimeout", "tlsConfig", "bearerTokenFile"}
            assert isinstance(ep["port"], str) and ep["path"].startswith("/")
    else:
        assert set(spec) == {"groups"}
        for g in spec["groups"]:
            assert g["name"] and g["rules"]
            for r in g["rules"]:
                assert set(r) <= {"alert", "record", "expr", "for", "labels", "annotations"}
                assert ("alert" in r) != ("record" in r) and isinstance(r["expr"], str)
                if "alert" in r:
                    assert r["labels"]["severity"] in ("critical", "warning", "info")
                    assert r["annotations"]["summary"]


@pytest.mark.parametrize(("where", "obj"), [pytest.param(w, o, id=w) for w, o in ALL if o["kind"] in CRDS])
def test_prometheus_operator_objects_by_hand(where: str, obj: dict[str, Any]) -> None:
    _check_crd(obj)


def test_service_monitors_point_at_named_service_ports() -> None:
    services = [o for _, o in ALL if o["kind"] == "Service"]
    for _, sm in ((w, o) for w, o in ALL if o["kind"] == "ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        matching = [s for s in services if sel.items() <= s["metadata"].get("labels", {}).items()]
        assert matching, f"ServiceMonitor {sm['metadata']['name']} selects no Service"
        ports = {p["name"] for s in matching for p in s["spec"]["ports"]}
        assert {ep["port"] for ep in sm["spec"]["endpoints"]} <= ports
