"""Paths and helpers for the deploy/ and Dockerfile checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")
HADOLINT = str(BIN / "hadolint")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` (the kubectl from the test extra), parsed."""
    r = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


NOT_KUBERNETES = {"examples/sim-cluster.yaml", "examples/sim-workload.yaml", "examples/sim-gang-cluster.yaml"}
"""Inputs of `vecsched sim` (cluster and workload descriptions), not API objects."""
RULE_FILES = DEPLOY / "monitoring" / "rules"
"""Plain Prometheus rule files and their promtool unit tests, not API objects."""
COMPONENT_CONFIG = {"Kustomization", "KubeSchedulerConfiguration"}
CERT_MANAGER_GROUP = "cert-manager.io"
"""cert-manager's Issuer and Certificate (deploy/webhook/certificate.yaml): not in the Kubernetes
schemas, checked by structure in test_webhook_manifests.py."""


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object in every YAML file under deploy/ (the items of a List too),
    except kustomizations, KubeSchedulerConfiguration files (component configs), cert-manager's
    objects (all three checked elsewhere) and the simulator's inputs."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        rel = str(path.relative_to(DEPLOY))
        if rel in NOT_KUBERNETES or path.is_relative_to(RULE_FILES):
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is None or doc.get("kind") in COMPONENT_CONFIG \
                    or str(doc.get("apiVersion", "")).startswith(f"{CERT_MANAGER_GROUP}/"):
                continue
            where = f"deploy/{rel}#{i}"
            if doc.get("kind") == "List":
                out.extend((f"{where}.items[{j}]", item) for j, item in enumerate(doc["items"]))
            else:
                out.append((where, doc))
    return out
