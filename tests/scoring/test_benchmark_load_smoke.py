"""``python -m benchmarks.decision --case load-aware`` runs end to end at a tiny size and prints
its JSON shape; the load profiles place every pod the default profile places (the cluster has
room for all), and bad options get a one-line error."""

from __future__ import annotations

import json

import pytest

from benchmarks import decision


def test_load_aware_case_json(capsys: pytest.CaptureFixture[str]) -> None:
    decision.main(["--case", "load-aware", "--sizes", "40,60", "--pods", "30", "--seed", "2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert (doc["benchmark"], doc["seed"], [r["nodes"] for r in doc["results"]]) == ("load-aware", 2, [40, 60])
    for r in doc["results"]:
        # 10 pods a node already bound; 30 pending, decided by the five profiles in turn.
        assert (r["existing_pods"], r["pending_pods"]) == (10 * r["nodes"], 30)
        assert [x["profile"] for x in r["results"]] == [
            "default", "TargetLoadPacking", "LoadVariationRiskBalancing", "LoadAware", "all three"]
        default = r["results"][0]
        assert default["plugins"] == [] and default["ratio_vs_default"] == 1.0
        # LoadAware filters nodes above 65% measured CPU (about 1/3 of a 5-95% draw), never all 40:
        # every pod still fits somewhere in each profile.
        assert {x["placed"] for x in r["results"]} == {default["placed"]}
        for x in r["results"][1:]:
            assert x["ratio_vs_default"] == pytest.approx(x["us_per_decision"] / default["us_per_decision"], abs=0.01)


@pytest.mark.parametrize(("argv", "error"), [
    (["--sizes", "0"], "argument --sizes: expected comma-separated positive integers, got '0'"),
    (["--pods", "none"], "argument --pods: expected a positive integer, got 'none'"),
])
def test_bad_options_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], error: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        decision.main(["--case", "load-aware", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"python -m benchmarks.decision --case load-aware: error: {error}"
