"""deploy/monitoring's rules, checked by Prometheus' own promtool: every rule file loads
(``promtool check rules``), the unit tests under rules/tests/ pass (``promtool test rules``),
each alert has a case where it fires and one where it stays silent, each recording rule an
expected value -- and the unit tests catch an alert that never fires or always does, or a
recording rule that computes something else. prometheusrule.yaml carries the same groups
as the plain files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY
from tests.prometheus_support import promtool

MONITORING = DEPLOY / "monitoring"
RULES = MONITORING / "rules"
RULE_FILES = sorted(RULES.glob("*.yaml"))
UNIT_TESTS = sorted((RULES / "tests").glob("*.yaml"))


def groups(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["groups"])


def rules(kind: str) -> list[dict[str, Any]]:
    """Every rule of the plain files that is an ``alert`` or a ``record``."""
    return [r for f in RULE_FILES for g in groups(f) for r in g["rules"] if kind in r]


def test_the_plain_files_are_there() -> None:
    assert [f.name for f in RULE_FILES] == ["alerts.yaml", "recording-rules.yaml"]
    assert {r["record"] for r in rules("record")} == {"instance:node_cpu:ratio", "instance:node_memory_utilisation:ratio"}
    assert {"VecschedLoadMetricsStale", "VecschedLoadMetricsRefreshFailing"} <= {r["alert"] for r in rules("alert")}


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in RULE_FILES])
def test_promtool_check_rules(path: Path) -> None:
    code, out = promtool("check", "rules", str(path))
    assert code == 0, out
    n = sum(len(g["rules"]) for g in groups(path))
    assert f"SUCCESS: {n} rules found" in out, out


def test_promtool_check_rules_on_the_prometheusrule(tmp_path: Path) -> None:
    """The PrometheusRule's spec is a rule file too (the operator hands it to Prometheus as such)."""
    spec = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())["spec"]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    code, out = promtool("check", "rules", str(tmp_path / "spec.yaml"))
    assert code == 0, out


def test_prometheusrule_carries_the_plain_files_groups() -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["spec"]["groups"] == groups(RULES / "recording-rules.yaml") + groups(RULES / "alerts.yaml")


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in UNIT_TESTS])
def test_promtool_unit_tests_pass(path: Path) -> None:
    code, out = promtool("test", "rules", path.name, cwd=path.parent)
    assert code == 0, out
    assert "SUCCESS" in out, out


def _alert_cases() -> dict[str, tuple[int, int]]:
    """Per alert name: (cases expecting it to fire, cases expecting it silent)."""
    cases: dict[str, tuple[int, int]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                fire, silent = cases.get(case["alertname"], (0, 0))
                cases[case["alertname"]] = (fire + 1, silent) if case.get("exp_alerts") else (fire, silent + 1)
    return cases


def test_every_alert_fires_in_one_case_and_stays_silent_in_another() -> None:
    cases = _alert_cases()
    for alert in rules("alert"):
        fire, silent = cases.get(alert["alert"], (0, 0))
        assert fire >= 1 and silent >= 1, f"{alert['alert']}: {fire} firing and {silent} silent cases"


def test_every_recording_rule_has_an_expected_value() -> None:
    tested = {case["expr"] for path in UNIT_TESTS for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("promql_expr_test", [])}
    assert {r["record"] for r in rules("record")} <= tested


def _mutated(tmp_path: Path, name: str, expr: str) -> int:
    """Exit code of every unit test run against a copy of the rule files where the rule
    ``name`` (an alert or a record) has ``expr``."""
    rules_dir = tmp_path / "rules"
    (rules_dir / "tests").mkdir(parents=True)
    for f in RULE_FILES:
        doc = yaml.safe_load(f.read_text())
        for g in doc["groups"]:
            for r in g["rules"]:
                if name in (r.get("alert"), r.get("record")):
                    r["expr"] = expr
        (rules_dir / f.name).write_text(yaml.safe_dump(doc))
    for t in UNIT_TESTS:
        (rules_dir / "tests" / t.name).write_text(t.read_text())
    code, _ = promtool("test", "rules", *(t.name for t in UNIT_TESTS), cwd=rules_dir / "tests")
    return code


MUTATIONS = [(a["alert"], how, expr) for a in rules("alert")
             for how, expr in (("never fires", "vector(1) unless vector(1)"), ("always fires", "vector(1)"))] + \
            [(r["record"], "records twice the value", f"2 * ({r['expr']})") for r in rules("record")]


@pytest.mark.parametrize(("name", "how", "expr"), [pytest.param(*m, id=f"{m[0]} {m[1]}") for m in MUTATIONS])
def test_the_unit_tests_catch_a_wrong_rule(tmp_path: Path, name: str, how: str, expr: str) -> None:
    assert _mutated(tmp_path, name, expr) != 0, f"the unit tests pass although {name} {how}"


def test_the_unmutated_copy_passes(tmp_path: Path) -> None:
    """The mutation check's copy itself passes (a rule name matching nothing changes nothing)."""
    assert _mutated(tmp_path, "NoSuchRule", "vector(1)") == 0
