"""``python -m benchmarks.decision --case volumes`` runs end to end at a tiny size and prints its
JSON shape; the volume plugins change nothing for pods without volumes, and place pods with
claims only where their volumes can be; bad options get a one-line error."""

from __future__ import annotations

import json

import pytest

from benchmarks import decision


def test_volumes_case_json(capsys: pytest.CaptureFixture[str]) -> None:
    decision.main(["--case", "volumes", "--sizes", "30,45", "--pods", "20", "--seed", "3", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert (doc["benchmark"], doc["seed"], [r["nodes"] for r in doc["results"]]) == ("volumes", 3, [30, 45])
    assert doc["plugins"] == ["VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone"]
    for r in doc["results"]:
        # 10 pods a node already bound; 20 pending of each of the four kinds.
        assert (r["existing_pods"], r["pending_pods"]) == (10 * r["nodes"], 20)
        rows = {x["pods"]: x for x in r["results"]}
        assert list(rows) == ["no volumes", "bound claim", "provisioned", "local PV"]
        # Without volumes the plugins skip: the same pods are placed.
        assert rows["no volumes"]["placed_with"] == rows["no volumes"]["placed_without"]
        for x in rows.values():
            # A volume only takes nodes away: never more placed with the plugins than without.
            assert x["placed_with"] <= x["placed_without"]
            assert x["ratio"] == pytest.approx(x["us_per_decision_with"] / x["us_per_decision_without"], abs=0.01)
        # Provisioning is allowed in two of the three zones, so a pod held to zone-c by its nodeSelector
        # cannot get its volume: with the plugins, at most as many as without, and at least one placed.
        assert 0 < rows["provisioned"]["placed_with"]


@pytest.mark.parametrize(("argv", "error"), [
    (["--sizes", "0"], "argument --sizes: expected comma-separated positive integers, got '0'"),
    (["--pods", "none"], "argument --pods: expected a positive integer, got 'none'"),
])
def test_bad_options_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], error: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        decision.main(["--case", "volumes", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"python -m benchmarks.decision --case volumes: error: {error}"
