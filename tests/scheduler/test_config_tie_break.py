"""The profile field ``vecsched.io/tieBreak``: read strictly (errors name the field), and
honoured wherever a profile decides -- ``vecsched explain``, ``vecsched sim`` and the live
scheduler against the embedded API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.apiserver.nodes import build_node
from scheduler.cli import main
from scheduler.config import API_VERSION, ConfigError, load_config, parse_config
from tests.live.support import pod, pods_of, running, wait_for

FIELD = "vecsched.io/tieBreak"
NO_SCORES: dict[str, Any] = {"score": {"disabled": [{"name": "*"}]}}
"""Every score plugin off: every feasible node ties, so the tie-break alone decides."""


def _cfg(*profiles: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": list(profiles)}


def _write(path: Path, doc: Any) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize(("profile", "expected"), [
    pytest.param({}, "Random", id="absent-is-Random"),
    pytest.param({FIELD: None}, "Random", id="null-is-absent"),
    pytest.param({FIELD: "Random"}, "Random", id="Random"),
    pytest.param({FIELD: "NodeName"}, "NodeName", id="NodeName"),
    pytest.param({FIELD: "NodeOrder"}, "NodeOrder", id="NodeOrder"),
])
def test_the_field_sets_the_profiles_tie_break(profile: dict[str, Any], expected: str) -> None:
    cfg = parse_config(_cfg({"schedulerName": "a", **profile}, {"schedulerName": "b"}))
    assert cfg.profiles[0].tie_break == expected
    assert cfg.profiles[1].tie_break == "Random"  # each profile its own; the default is kube-scheduler's
    built = cfg.build(seed=0)
    assert built["a"].tie_break == expected and built["b"].tie_break == "Random"


@pytest.mark.parametrize(("profiles", "path", "problem"), [
    pytest.param([{FIELD: "Smallest"}], f"profiles[0].{FIELD}",
                 "must be one of Random, NodeName, NodeOrder, got 'Smallest'", id="unknown-value"),
    # Case matters, as in upstream's enumerations (scoringStrategy.type and the like).
    pytest.param([{FIELD: "nodename"}], f"profiles[0].{FIELD}",
                 "must be one of Random, NodeName, NodeOrder, got 'nodename'", id="wrong-case"),
    pytest.param([{FIELD: ""}], f"profiles[0].{FIELD}",
                 "must be one of Random, NodeName, NodeOrder, got ''", id="empty"),
    pytest.param([{FIELD: 1}], f"profiles[0].{FIELD}", "expected a string, got 1", id="not-a-string"),
    pytest.param([{"schedulerName": "a"}, {"schedulerName": "b", FIELD: ["NodeName"]}], f"profiles[1].{FIELD}",
                 "expected a string, got ['NodeName']", id="second-profile"),
    # A misspelt field is an unknown field, as any other.
    pytest.param([{"vecsched.io/tiebreak": "NodeName"}], "profiles[0].vecsched.io/tiebreak",
                 f"unknown field (known: percentageOfNodesToScore, pluginConfig, plugins, schedulerName, vecsched.io/batching, {FIELD})",
                 id="misspelt-field"),
])
def test_bad_values_name_the_field(tmp_path: Path, profiles: list[dict[str, Any]], path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(*profiles), source="sched.yaml")
    assert (err.value.path, err.value.problem) == (f"sched.yaml: {path}", problem)
    # From a file: the same, after the file's name.
    f = _write(tmp_path / "c.yaml", _cfg(*profiles))
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert str(err.value) == f"{f}: {path}: {problem}"


# ---- explain ------------------------------------------------------------------------------

# Three identical empty nodes, in this order: every default score is equal on them.
SNAPSHOT = {"kind": "List", "items": [
    {"kind": "Node", "metadata": {"name": name},
     "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}
    for name in ("node-b", "node-a9", "node-a10")]}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
       "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}


@pytest.mark.parametrize(("tie_break", "expected"), [
    # byte order: "node-a10" < "node-a9" ('1' < '9', 7th byte) < "node-b" ('a' < 'b', 6th byte)
    ("NodeName", "node-a10"),
    ("NodeOrder", "node-b"),    # first in the snapshot
])
def test_explain_selects_by_the_tie_break(tmp_path: Path, capsys: pytest.CaptureFixture[str], tie_break: str,
                                          expected: str) -> None:
    cfg = _write(tmp_path / "c.yaml", _cfg({FIELD: tie_break}))  # the default plugins: a three-way tie
    code = main(["explain", "--snapshot", _write(tmp_path / "s.yaml", SNAPSHOT), "--pod", _write(tmp_path / "p.yaml", POD),
                 "--config", cfg, "--output", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["selected"] == expected


def test_explain_with_a_bad_value_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path / "c.yaml", _cfg({FIELD: "First"}))
    code = main(["explain", "--snapshot", _write(tmp_path / "s.yaml", SNAPSHOT), "--pod", _write(tmp_path / "p.yaml", POD),
                 "--config", cfg])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip() == f"vecsched explain: {cfg}: profiles[0].{FIELD}: must be one of Random, NodeName, NodeOrder, got 'First'"


# ---- sim --------------------------------------------------------------------------------------

# Nodes in this order: b-big (4 CPU), then a-small (1 CPU). A 1-CPU pod, then a 4-CPU pod.
# NodeName: 1 CPU -> a-small, 4 CPU -> b-big: 2 placed. NodeOrder: 1 CPU -> b-big (first
# row), then 4 CPU fits nowhere (3 left on b-big, 1 on a-small): 1 placed. Every seed alike.
SIM_CLUSTER = {"kind": "List", "items": [
    {"kind": "Node", "metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}
    for name, cpu in (("b-big", "4"), ("a-small", "1"))]}
SIM_WORKLOAD = "name,cpu,memory,arrival,departure\nsmall,1,1Gi,0,\nbig,4,1Gi,1,\n"


def test_sim_strategies_from_a_config_use_its_tie_breaks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path / "c.yaml", _cfg({"schedulerName": "by-name", FIELD: "NodeName", "plugins": NO_SCORES},
                                           {"schedulerName": "by-order", FIELD: "NodeOrder", "plugins": NO_SCORES}))
    (tmp_path / "w.csv").write_text(SIM_WORKLOAD)
    code = main(["sim", "--cluster", _write(tmp_path / "cluster.yaml", SIM_CLUSTER), "--workload", str(tmp_path / "w.csv"),
                 "--config", cfg, "--strategies", "by-name,by-order", "--seeds", "2", "--jobs", "1", "--json",
                 "--no-plots", "--quiet", "--out", str(tmp_path / "out")])
    out, _ = capsys.readouterr()
    assert code == 0
    got = json.loads(out)["strategies"]
    assert got["by-name"]["placed"] == {"mean": 2.0, "std": 0.0}
    assert got["by-order"]["placed"] == {"mean": 1.0, "std": 0.0}


# ---- the live scheduler ----------------------------------------------------------------------

async def test_live_scheduler_binds_by_node_name() -> None:
    # Nodes of 1 CPU created in the order node-b, node-a9, node-a10; pods of 1 CPU, one at a time.
    # NodeName: node-a10, then node-a9, then node-b (each node takes one pod).
    config = parse_config(_cfg({FIELD: "NodeName", "plugins": NO_SCORES}))
    async with serve_apiserver(nodes=0, kubelet_delay=0.05, bookmark_interval=0.5) as srv:
        for i, name in enumerate(("node-b", "node-a9", "node-a10")):
            srv.create("nodes", build_node(name=name, shape=NodeShape(cpu="1", memory="8Gi"), index=i))
        async with running(srv, config=config):
            got = []
            for i in range(3):
                srv.create("pods", pod(f"p{i}", cpu="1"))
                await wait_for(lambda: bool(pods_of(srv)[f"p{i}"]["spec"].get("nodeName")), what=f"p{i} bound")
                got.append(pods_of(srv)[f"p{i}"]["spec"]["nodeName"])
    assert got == ["node-a10", "node-a9", "node-b"]
