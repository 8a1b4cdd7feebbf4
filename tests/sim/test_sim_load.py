"""``vecsched sim --node-metrics``: the load plugins replay against a measured starting load, and
every pod the replay places counts on top of it, as pods bound since the sample do live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sim_helpers import node, sim, write

from benchmarks.sim.replay import Event, replay
from benchmarks.sim.sweep import SweepOptions, run_key
from benchmarks.strategies import builtin_profile
from scheduler.cli import main
from scheduler.config import API_VERSION, parse_config
from scoring.load import watcher_metrics_from_json

# Two 8-core nodes; "hot" measures 60% CPU over the last 15 minutes, "cold" 10%.
NODES = [node("cold", "8", "32Gi"), node("hot", "8", "32Gi")]
SAMPLE = {"timestamp": 1000, "window": {"duration": "15m", "start": 100, "end": 1000}, "source": "Prometheus",
          "data": {"NodeMetricsMap": {
              "cold": {"metrics": [{"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "AVG",
                                    "rollup": "15m", "value": 10}]},
              "hot": {"metrics": [{"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "AVG",
                                   "rollup": "15m", "value": 60}]}}}}
CONFIG = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
    {"schedulerName": "tlp",
     "plugins": {"multiPoint": {"disabled": [{"name": "*"}]},
                 "preFilter": {"enabled": [{"name": "NodeResourcesFit"}]},
                 "filter": {"enabled": [{"name": "NodeResourcesFit"}]},
                 "score": {"enabled": [{"name": "TargetLoadPacking"}]}},
     "pluginConfig": [{"name": "TargetLoadPacking",
                       "args": {"metricProvider": {"type": "Prometheus", "address": "http://prometheus:9090"}}}]}]}


def _places(**kw: Any) -> list[str | None]:
    events: list[Event] = []
    profile = parse_config(CONFIG).profiles[0].build(seed=0)
    replay(nodes=NODES, pods=[sim(f"p{i}", "1", "1Gi", at=i) for i in range(4)], profile=profile, events=events,
           **kw)
    return [where for _, what, _, where in events if what == "place"]


def test_target_load_packing_fills_the_cold_node_to_its_target_then_uses_the_hot_one() -> None:
    # Each pod requests 1 core with no limit: predicted 1000m x 1.5 = 1500m, 18.75% of 8 cores.
    # Pod 0: cold 10 + 18.75 = 28.75% <= 40 -> round(60 x 28.75/40 + 40) = 83; hot 60 + 18.75 = 78.75%
    #        -> round(40 x (100 - 78.75)/60) = round(14.17) = 14: cold.
    # Pod 1: cold counts pod 0 (placed since the sample): 47.5% -> round(40 x 52.5/60) = 35 > 14: cold.
    # Pod 2: cold 66.25% -> round(40 x 33.75/60) = round(22.5) = 23 (half away from zero) > 14: cold.
    # Pod 3: cold 85% -> round(40 x 15/60) = 10 < 14: hot.
    assert _places(node_metrics=watcher_metrics_from_json(SAMPLE, what="sample")) == ["cold", "cold", "cold", "hot"]


def test_without_node_metrics_every_node_scores_the_minimum() -> None:
    # No sample: TargetLoadPacking scores every node 0 (upstream's MinNodeScore), so only the seeded
    # tie-break chooses; every pod still fits somewhere.
    assert all(where in ("cold", "hot") for where in _places())


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    return {
        "cluster": write(tmp_path / "cluster.yaml", yaml.safe_dump(
            [{"count": 1, "name": "cold", "cpu": 8, "memory": "32Gi"},
             {"count": 1, "name": "hot", "cpu": 8, "memory": "32Gi"}])),
        "workload": write(tmp_path / "w.csv", "name,cpu,memory,arrival,departure\n" + "".join(
            f"p{i},1,1Gi,{i},\n" for i in range(4))),
        "config": write(tmp_path / "config.yaml", yaml.safe_dump(CONFIG)),
        "out": str(tmp_path / "out"),
    }


def _sim(inputs: dict[str, str], metrics: str, capsys: pytest.CaptureFixture[str], *strategies: str) -> tuple[int, str, str]:
    code = main(["sim", "--cluster", inputs["cluster"], "--workload", inputs["workload"], "--config",
                 inputs["config"], "--strategies", ",".join(strategies), "--node-metrics", metrics, "--json",
                 "--quiet", "--no-plots", "--jobs", "1", "--out", inputs["out"]])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_reads_the_file_and_says_what_it_cannot_change(
        inputs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The cluster file names its nodes cold-00000 and hot-00000 (name and index): neither is in the sample.
    metrics = write(tmp_path / "m.json", json.dumps(SAMPLE))
    code, out, err = _sim(inputs, metrics, capsys, "tlp", "default")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cluster"]["node_metrics"] == metrics
    assert "vecsched sim: note: strategy default has no load plugin" in err
    assert "vecsched sim: note: 2 of 2 nodes have no metrics in --node-metrics (first: cold-00000)" in err


@pytest.mark.parametrize(("content", "problem"), [
    ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
          "(char 1)"),
    (json.dumps({"data": {"NodeMetricsMap": {"n": {"metrics": [{"value": "high"}]}}}}),
     "data.NodeMetricsMap.n.metrics[0].value: expected a number, got 'high'"),
])
def test_a_bad_file_is_one_line_naming_it(inputs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          content: str, problem: str) -> None:
    metrics = write(tmp_path / "m.json", content)
    code, out, err = _sim(inputs, metrics, capsys, "tlp")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"vecsched sim: --node-metrics {metrics}: {problem}"]


def test_the_run_key_follows_the_file_content(inputs: dict[str, str], tmp_path: Path) -> None:
    # A resumed sweep must not reuse runs replayed from another sample: the key digests the file's content.
    metrics = write(tmp_path / "m.json", json.dumps(SAMPLE))
    opts = SweepOptions(cluster=inputs["cluster"], workload=inputs["workload"], node_metrics=metrics)
    plain = SweepOptions(cluster=inputs["cluster"], workload=inputs["workload"])
    default = builtin_profile("default")
    first = run_key(opts, "default", default, 0)
    assert first != run_key(plain, "default", default, 0)
    write(tmp_path / "m.json", json.dumps({**SAMPLE, "timestamp": 2000}))
    assert run_key(opts, "default", default, 0) != first
