"""``vecsched explain --node-metrics``: a score from the file's sample, and the file's errors.

The upstream Trimaran cases run through explain beside the plugins (tests/scoring/
test_target_load_packing.py, test_load_variation_risk_balancing.py, test_load_aware.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.config import API_VERSION
from tests.explain_support import explain_snapshot

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}
CONFIG = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
    {"schedulerName": "default-scheduler",
     "plugins": {"multiPoint": {"enabled": [{"name": "TargetLoadPacking"}]}},
     "pluginConfig": [{"name": "TargetLoadPacking", "args": {"metricProvider": {"address": "http://prom:9090"}}}]}]}


def _explain(tmp_path: Path, capsys: pytest.CaptureFixture[str], metrics: str, *more: str) -> tuple[int, str, str]:
    path = tmp_path / "m.json"
    path.write_text(metrics)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    return explain_snapshot(tmp_path, capsys, [NODE], POD, "--config", str(config), "--node-metrics", str(path), *more)


def test_scores_with_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # n1 measures 20% of 4 cores; the pod requests 1 core without a limit: 1000m x 1.5 = 1500m = 37.5%.
    # 57.5% > 40: round(40 x (100 - 57.5) / 60) = round(28.33) = 28.
    sample = {"timestamp": 1, "window": {"end": 1},
              "data": {"NodeMetricsMap": {"n1": {"metrics": [{"type": "CPU", "operator": "AVG", "value": 20}]}}}}
    code, out, err = _explain(tmp_path, capsys, json.dumps(sample), "-o", "json")
    assert code == 0, err
    assert json.loads(out)["nodes"]["n1"]["scores"]["TargetLoadPacking"] == 28


@pytest.mark.parametrize(("metrics", "problem"), [
    ("[1, 2", "not valid JSON: Expecting ',' delimiter: line 1 column 6 (char 5)"),
    (json.dumps({"timestamp": "soon"}), "timestamp: expected a number, got 'soon'"),
    (json.dumps({"window": {"end": 1.5}}), "window.end: expected whole Unix seconds, got 1.5"),
    (json.dumps({"data": {"NodeMetricsMap": {"n1": {"metrics": {}}}}}),
     "data.NodeMetricsMap.n1.metrics: expected a list, got dict"),
])
def test_a_bad_file_is_one_line_naming_it_and_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        metrics: str, problem: Any) -> None:
    code, out, err = _explain(tmp_path, capsys, metrics)
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"vecsched explain: --node-metrics {tmp_path / 'm.json'}: {problem}"]
