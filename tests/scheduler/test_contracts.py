"""docs/contracts.md says what scripts may rely on; these checks keep it true: the explain
JSON it shows has the keys `vecsched explain -o json` prints, and every metric it names is
exposed by the scheduler."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks.sim.report import summarise
from scheduler.cli import main
from scheduler.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "contracts.md").read_text()


def _json_block(after: str) -> dict[str, Any]:
    section = DOC[DOC.index(after):]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    doc: dict[str, Any] = json.loads(block)
    return doc


def test_the_explain_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    shown = _json_block("## `vecsched explain`")
    code = main(["explain", "--snapshot", str(ROOT / "deploy/examples/snapshot.yaml"),
                 "--pod", str(ROOT / "deploy/examples/pod.yaml"), "--output", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == set(shown)
    node = next(iter(shown["nodes"].values()))
    assert all(set(n) == set(node) for n in out["nodes"].values())


def test_the_sim_json_block_parses_and_names_the_strategy_fields() -> None:
    shown = _json_block("## `vecsched sim --json`")
    entry = next(iter(shown["strategies"].values()))
    # summarise over no runs still lists every field a strategy entry has
    assert set(entry) == set(summarise([], strategies=["s"])["strategies"]["s"])


def test_every_documented_metric_is_exposed() -> None:
    section = DOC[DOC.index("## Metrics"):]
    names = set(re.findall(r"`(scheduler_[a-z_]+)", section))
    exposed = Metrics().exposition().decode()
    # histograms and counters appear with their suffixes: match on the family name
    missing = {n for n in names if not re.search(rf"^# (?:HELP|TYPE) {n}(?:_total)? ", exposed, re.M)}
    assert names and not missing, missing
