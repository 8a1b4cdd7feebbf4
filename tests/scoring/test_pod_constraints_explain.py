"""Representative ported PodTopologySpread / InterPodAffinity cases run end to end
through ``vecsched explain -o json`` (snapshot, pod and config files on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main
from tests.scoring.pod_constraint_helpers import FOO, HOSTNAME, node, pod_json, sc

CONFIG = {
    "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
    "profiles": [{"schedulerName": "vecsched", "plugins": {"multiPoint": {
        "disabled": [{"name": "*"}],
        "enabled": [{"name": "PodTopologySpread", "weight": 2}, {"name": "InterPodAffinity", "weight": 2}]}}}],
}


def _explain(tmp_path: Path, capsys: pytest.CaptureFixture[str], nodes: list[Any], pods: list[Any],
             incoming: dict[str, Any]) -> dict[str, Any]:
    (tmp_path / "snap.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [*nodes, *pods]}))
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(incoming))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    code = main(["explain", "--snapshot", str(tmp_path / "snap.yaml"), "--pod", str(tmp_path / "pod.yaml"),
                 "--config", str(tmp_path / "config.yaml"), "-o", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _zn(name: str, zone: str) -> dict[str, Any]:
    return node(name, {"zone": zone, "node": name})


def test_spread_2103_only_node_x_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "pods spread across nodes as 2/1/0/3, only node-x fits": a 2+1 = 3, b 2, y 4 > maxSkew 1.
    nodes = [_zn("node-a", "zone1"), _zn("node-b", "zone1"), _zn("node-x", "zone2"), _zn("node-y", "zone2")]
    pods = [pod_json(f"p-{n[-1]}{i}", {"foo": ""}, node_name=n) for n, c in
            (("node-a", 2), ("node-b", 1), ("node-y", 3)) for i in range(c)]
    doc = _explain(tmp_path, capsys, nodes, pods, pod_json("p", {"foo": ""}, spread=[sc(1, "node", "DoNotSchedule", FOO)]))
    assert doc["selected"] == "node-x"
    skew = ["node(s) didn't match pod topology spread constraints"]
    assert {n: v["reasons"] for n, v in doc["nodes"].items()} == {"node-a": skew, "node-b": skew, "node-x": [], "node-y": skew}
    # ScheduleAnyway constraints: none, and no workloads: both scores skip (0).
    assert doc["nodes"]["node-x"]["scores"] == {"PodTopologySpread": 0, "InterPodAffinity": 0}


def test_spread_score_four_candidates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "one constraint on node, all 4 nodes are candidates": 20/60/100/0, x2 weight.
    nodes = [node(n, {HOSTNAME: n}) for n in ("node-a", "node-b", "node-c", "node-d")]
    pods = [pod_json(f"p-{n[-1]}{i}", {"foo": ""}, node_name=n) for n, c in
            (("node-a", 2), ("node-b", 1), ("node-d", 3)) for i in range(c)]
    doc = _explain(tmp_path, capsys, nodes, pods, pod_json("p", {"foo": ""}, spread=[sc(1, HOSTNAME, "ScheduleAnyway", FOO)]))
    assert doc["selected"] == "node-c"
    assert {n: v["scores"]["PodTopologySpread"] for n, v in doc["nodes"].items()} == \
        {"node-a": 20, "node-b": 60, "node-c": 100, "node-d": 0}
    assert doc["nodes"]["node-b"]["total"] == 120


def test_existing_anti_affinity_symmetry_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "satisfies the PodAffinity and PodAntiAffinity but doesn't satisfy PodAntiAffinity symmetry with the existing pod"
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": {
        "matchExpressions": [{"key": "service", "operator": "In", "values": ["securityscan", "value2"]}]}}]}}
    existing = pod_json("e", {"service": "securityscan"}, node_name="machine1", affinity=anti)
    incoming = pod_json("p", {"service": "securityscan"}, affinity={
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "region", "labelSelector": {
            "matchExpressions": [{"key": "service", "operator": "In", "values": ["securityscan", "value2"]}]}}]}})
    doc = _explain(tmp_path, capsys, [node("machine1", {"region": "r1", "zone": "z11"})], [existing], incoming)
    assert doc["selected"] is None
    assert doc["message"] == "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."


def test_preferred_affinity_region_with_more_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # "Affinity: nodes in one region has more matching pods comparing to other region ...":
    # China 3 x 6 = 18, India 2 x 6 = 12 -> 100 / 0.
    stay = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 6, "podAffinityTerm": {
        "topologyKey": "region", "labelSelector": {"matchExpressions": [{"key": "security", "operator": "In", "values": ["S2"]}]}}}]}}
    regions = {"node1": "China", "node2": "India", "node3": "China", "node4": "China", "node5": "India"}
    nodes = [node(n, {"region": r}) for n, r in regions.items()]
    pods = [pod_json(f"e{i}", {"security": "S2"}, node_name=n) for i, n in enumerate(["node1", "node1", "node2", "node3", "node4", "node5"])]
    doc = _explain(tmp_path, capsys, nodes, pods, pod_json("p", {"security": "S1"}, affinity=stay))
    assert {n: v["scores"]["InterPodAffinity"] for n, v in doc["nodes"].items()} == \
        {"node1": 100, "node2": 0, "node3": 100, "node4": 100, "node5": 0}


def test_invalid_selector_is_reported_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = [sc(1, "zone", "DoNotSchedule", {"matchExpressions": [{"key": "foo", "operator": "Near"}]})]
    doc = _explain(tmp_path, capsys, [_zn("node-a", "zone1")], [], pod_json("p", {"foo": ""}, spread=bad))
    assert doc["selected"] is None
    assert doc["message"] == (
        "0/1 nodes are available: get constraints from pod: obtaining pod's hard topology spread constraints: "
        'spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].operator: "Near" is not a valid label selector operator.')
