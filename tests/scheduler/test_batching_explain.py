"""`vecsched explain` says whether the live scheduler could batch the pod (``"batching"``:
signable, and the reason when not), next to the unchanged keys of the JSON contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main

_ANTI = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
_NODE = {"kind": "Node", "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
         "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"schedulerName": "vecsched", **spec,
                     "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}


def _placed(name: str, **spec: Any) -> dict[str, Any]:
    p = _pod(name, nodeName="n1", **spec)
    p["status"] = {"phase": "Running"}
    return p


@pytest.mark.parametrize("items,pod,profile_fields,want,selected", [
    ([_NODE], _pod("web"), {}, {"signable": True, "reason": ""}, "n1"),
    ([_NODE], _pod("web", affinity=_ANTI), {},
     {"signable": False, "reason": "InterPodAffinity: pods with pod affinity or anti-affinity are not signable"}, "n1"),
    # A placed pod's required anti-affinity could reject the pod: nothing is batched. (It does:
    # db, labelled app=web itself, keeps app=web pods off its host n1, the only node.)
    ([_NODE, _placed("db", affinity=_ANTI)], _pod("web"), {},
     {"signable": False, "reason": "InterPodAffinity: placed pods have pod affinity or anti-affinity terms"}, None),
    ([_NODE], _pod("web"), {"vecsched.io/batching": False},
     {"signable": False, "reason": "the profile sets vecsched.io/batching: false"}, "n1"),
], ids=["signable", "own-anti-affinity", "placed-anti-affinity", "profile-off"])
def test_explain_reports_batching(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]],
                                  pod: dict[str, Any], profile_fields: dict[str, Any], want: dict[str, Any],
                                  selected: str | None) -> None:
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(yaml.safe_dump(pod))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"apiVersion": "kubescheduler.config.k8s.io/v1",
                                      "kind": "KubeSchedulerConfiguration",
                                      "profiles": [{"schedulerName": "vecsched", **profile_fields}]}))
    code = main(["explain", "--snapshot", str(snapshot), "--pod", str(pod_file), "--config", str(config),
                 "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["batching"] == want
    # The contract's other keys are all there, unchanged by batching.
    assert {"pod", "profile", "selected", "message", "nodes", "preemption", "gang"} <= set(doc)
    assert (doc["pod"], doc["selected"]) == ("shop/web", selected)


def test_a_bad_batching_field_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"apiVersion": "kubescheduler.config.k8s.io/v1",
                                      "kind": "KubeSchedulerConfiguration",
                                      "profiles": [{"schedulerName": "vecsched", "vecsched.io/batching": "yes"}]}))
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [_NODE]}))
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(yaml.safe_dump(_pod("web")))
    code = main(["explain", "--snapshot", str(snapshot), "--pod", str(pod_file), "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"vecsched explain: {config}: profiles[0].vecsched.io/batching: expected true or false, got 'yes'"]
