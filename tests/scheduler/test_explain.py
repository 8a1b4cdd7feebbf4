"""`vecsched explain` as a user runs it: the JSON contract, the table view, and
one-line errors with exit code 2 on bad input."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def _explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _write(path: Path, doc: Any) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _node(name: str, cpu: str = "4", **spec: Any) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": name}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}


def _pod(name: str = "web", cpu: str = "1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}], **spec}}


def test_json_contract_on_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _explain(capsys, "--snapshot", str(EXAMPLES / "snapshot.yaml"),
                            "--pod", str(EXAMPLES / "pod.yaml"), "--output", "json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"pod", "profile", "selected", "message", "nodes", "preemption", "gang", "batching"}
    assert (doc["pod"], doc["profile"], doc["message"]) == ("shop/web-7f9c", "vecsched", "")
    assert doc["preemption"] is None  # a node fits: preemption does not run
    assert doc["gang"] is None  # the pod names no PodGroup
    assert set(doc["nodes"]) == {"general-a", "general-b", "general-c", "gpu-a", "cordoned-a"}
    cordoned = doc["nodes"]["cordoned-a"]
    assert cordoned == {"feasible": False, "reasons": ["node(s) were unschedulable"], "scores": {}, "total": None}
    selected = doc["nodes"][doc["selected"]]
    assert selected["feasible"] and selected["total"] == max(
        n["total"] for n in doc["nodes"].values() if n["total"] is not None)


def test_nothing_fits_exits_zero_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = _write(tmp_path / "s.yaml", {"kind": "List", "items": [_node("a", unschedulable=True), _node("b", unschedulable=True)]})
    pod = _write(tmp_path / "p.yaml", _pod())
    code, out, _ = _explain(capsys, "--snapshot", snap, "--pod", pod, "-o", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["selected"] is None
    # Unschedulable nodes are unresolvable: preemption cannot help on either.
    assert doc["message"] == ("0/2 nodes are available: 2 node(s) were unschedulable. "
                              "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


def test_table_view_sorts_best_first_and_marks_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _explain(capsys, "--snapshot", str(EXAMPLES / "snapshot.yaml"), "--pod", str(EXAMPLES / "pod.yaml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("pod shop/web-7f9c  profile vecsched  selected ")
    header = lines[2].split()
    assert header[:2] == ["NODE", "FEASIBLE"] and "TOTAL" in header
    rows = lines[3:]
    assert rows[0].startswith("*")  # the selected node is first and marked
    feasible = [r.split()[1] for r in rows if r.strip()]
    assert feasible == sorted(feasible, key=lambda f: f != "yes")  # infeasible nodes last


@pytest.mark.parametrize(
    ("snapshot", "pod", "expected"),
    [
        pytest.param({"kind": "List", "items": [_node("a", cpu="four")]}, _pod(),
                     "s.yaml: items[0]: node a: status.allocatable.cpu: invalid quantity 'four'", id="bad-node-quantity"),
        pytest.param({"kind": "List", "items": [_node("a")]}, _pod(cpu="lots"),
                     "p.yaml: pod shop/web: spec.containers[0].resources.requests.cpu: invalid quantity 'lots'",
                     id="bad-pod-quantity"),
        pytest.param({"kind": "List", "items": [{"kind": "Deployment", "metadata": {"name": "x"}}]}, _pod(),
                     "s.yaml: items[0]: kind: expected Node, Pod, Namespace, Service, ReplicaSet, StatefulSet, "
                     "ReplicationController, PodDisruptionBudget, PriorityClass, PodGroup, PersistentVolume, "
                     "PersistentVolumeClaim, StorageClass, CSINode, "
                     "CSIDriver, CSIStorageCapacity, got 'Deployment'", id="wrong-kind"),
        pytest.param({"kind": "List", "items": [_node("a"), _node("a")]}, _pod(),
                     "s.yaml: node a: metadata.name: duplicate node", id="duplicate-node"),
        pytest.param({"kind": "List", "items": "nope"}, _pod(), "s.yaml: items: expected a list", id="items-not-list"),
        pytest.param({"kind": "List", "items": [_node("a")]}, {"kind": "Pod", "metadata": {}, "spec": {}},
                     "p.yaml: pod <unnamed>: metadata.name: required", id="pod-without-name"),
    ],
)
def test_invalid_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              snapshot: Any, pod: Any, expected: str) -> None:
    snap = _write(tmp_path / "s.yaml", snapshot)
    pod_file = _write(tmp_path / "p.yaml", pod)
    code, out, err = _explain(capsys, "--snapshot", snap, "--pod", pod_file)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert expected in err
    assert "Traceback" not in err


def test_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path / "c.yaml", {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                                       "profiles": [{"plugins": {"score": {"enabled": [{"name": "Nope"}]}}}]})
    code, _, err = _explain(capsys, "--snapshot", str(EXAMPLES / "snapshot.yaml"), "--pod", str(EXAMPLES / "pod.yaml"),
                            "--config", cfg)
    assert code == 2
    assert "c.yaml: profiles[0].plugins.score.enabled[0].name: unknown plugin 'Nope'" in err


def test_pod_for_an_unknown_profile_needs_profile_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path / "c.yaml", {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                                       "profiles": [{"schedulerName": "a"}, {"schedulerName": "b"}]})
    pod = _write(tmp_path / "p.yaml", _pod(schedulerName="c"))
    code, _, err = _explain(capsys, "--snapshot", str(EXAMPLES / "snapshot.yaml"), "--pod", pod, "--config", cfg)
    assert code == 2 and "choose one with --profile" in err
    code, out, _ = _explain(capsys, "--snapshot", str(EXAMPLES / "snapshot.yaml"), "--pod", pod, "--config", cfg,
                            "--profile", "b", "-o", "json")
    assert code == 0 and json.loads(out)["profile"] == "b"


def test_kubectl_style_json_snapshot_and_finished_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # kubectl get nodes,pods -A -o json: a List whose items carry kind; a Succeeded pod frees its node
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        _node("a", cpu="2"),
        {**_pod("done", cpu="2", nodeName="a"), "status": {"phase": "Succeeded"}},
        {**_pod("running", cpu="1500m", nodeName="a"), "status": {"phase": "Running"}},
    ]}))
    pod = _write(tmp_path / "p.yaml", _pod(cpu="1"))
    code, out, _ = _explain(capsys, "--snapshot", str(snap), "--pod", pod, "-o", "json")
    doc = json.loads(out)
    # 2000 allocatable - 1500 running = 500 free < 1000 requested; the finished pod does not count
    if "NodeResourcesFit" in doc["nodes"]["a"].get("scores", {}) or not doc["nodes"]["a"]["feasible"]:
        assert doc["nodes"]["a"]["reasons"] == ["Insufficient cpu"]
    assert code == 0


def test_the_installed_command_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", "explain", "--snapshot", str(EXAMPLES / "snapshot.yaml"),
                           "--pod", str(EXAMPLES / "pod.yaml"), "-o", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pod"] == "shop/web-7f9c"


def _labelled(name: str, labels: dict[str, str], ns: str = "shop", node: str = "") -> dict[str, Any]:
    p = _pod(name, cpu="100m", **({"nodeName": node} if node else {}))
    p["metadata"].update(namespace=ns, labels=labels)
    return p


def test_services_in_the_snapshot_give_default_topology_spreading(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    nodes = [{**_node(n), "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}} for n in ("a", "b")]
    running = [_labelled(f"web-{i}", {"app": "web"}, node="a") for i in range(4)]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"app": "web"}}}
    pod = _write(tmp_path / "p.yaml", _labelled("web-new", {"app": "web"}))
    scores = {}
    for with_service in (False, True):
        items = nodes + running + ([service] if with_service else [])
        snap = _write(tmp_path / "s.yaml", {"kind": "List", "items": items})
        code, out, _ = _explain(capsys, "--snapshot", snap, "--pod", pod, "-o", "json")
        assert code == 0
        scores[with_service] = {n: v["scores"]["PodTopologySpread"] for n, v in json.loads(out)["nodes"].items()}
    # no owner selects the pod: no default constraint, the plugin skips (0 everywhere)
    assert scores[False] == {"a": 0, "b": 0}
    # the Service's selector gives the system default constraints: b (0 matching pods) beats a (4)
    assert scores[True]["b"] == 100 and scores[True]["a"] < 100


def test_namespaces_in_the_snapshot_serve_namespace_selectors(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    nodes = [{**_node(n), "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}} for n in ("a", "b")]
    db = _labelled("db-0", {"app": "db"}, ns="data", node="b")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data", "labels": {"env": "prod"}}}
    incoming = _labelled("api", {"app": "api"})
    incoming["spec"]["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"}},
        "namespaceSelector": {"matchLabels": {"env": "prod"}}}]}}
    pod = _write(tmp_path / "p.yaml", incoming)
    selected = {}
    for with_namespace in (False, True):
        items = nodes + [db] + ([namespace] if with_namespace else [])
        snap = _write(tmp_path / "s.yaml", {"kind": "List", "items": items})
        code, out, _ = _explain(capsys, "--snapshot", snap, "--pod", pod, "-o", "json")
        assert code == 0
        selected[with_namespace] = json.loads(out)["selected"]
    # without the Namespace object its labels are unknown, so no pod matches the term
    assert selected == {False: None, True: "b"}
