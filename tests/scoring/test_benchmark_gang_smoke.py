"""``python -m benchmarks.decision --case gang`` runs end to end on a tiny GPU cluster,
prints its JSON shape, and its figures agree with each other: both methods place the
same members on the same nodes, a fitting group is placed whole, a tight cluster holds
room for half the group, and only the one-by-one method holds members at Permit; bad
options get a one-line error. Its speed is never asserted here."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from benchmarks import decision, gang_bench
from scoring.objects import pod_from_json

KEYS = {"benchmark", "nodes", "running_pods", "gpus", "free_gpus", "repeat", "seed", "results"}
RESULT_KEYS = {"size", "case", "free_gpus", "placed", "vecsched_us_per_group", "vecsched_us_per_member",
               "one_by_one_us_per_group", "one_by_one_us_per_member", "ratio", "same_nodes",
               "held_members_vecsched", "held_members_one_by_one", "held_gpus_one_by_one", "permit_allowed_one_by_one",
               "released_by",
               "one_by_one_failure_us"}
NODES, SEED, SIZES = 40, 3, (1, 4, 16)


def _free_gpus() -> int:
    """The cluster's free GPUs, counted from its JSON: 8 a node minus what its running pods ask."""
    raw_nodes, running = gang_bench.cluster(nodes=NODES, seed=SEED)
    used = sum(pod_from_json(p).requests.get(gang_bench.GPU, 0) for p in running)
    return gang_bench.NODE_GPUS * len(raw_nodes) - used


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """One run shared by the tests below (capsys is per test)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        decision.main(["--case", "gang", "--nodes", str(NODES), "--sizes", ",".join(map(str, SIZES)),
                       "--repeat", "2", "--seed", str(SEED), "--json"])
    parsed: dict[str, Any] = json.loads(out.getvalue())
    return parsed


def test_top_level_shape(doc: dict[str, Any]) -> None:
    assert set(doc) == KEYS
    # 40 nodes x 8 GPUs = 320
    assert (doc["benchmark"], doc["nodes"], doc["gpus"], doc["repeat"], doc["seed"]) == ("gang", 40, 320, 2, 3)
    assert doc["free_gpus"] == _free_gpus()
    # 0..8 GPUs in use a node, so at least 16 of them free for the largest group
    assert 16 <= doc["free_gpus"] <= 320
    # two system pods a node, plus the training pods
    assert doc["running_pods"] >= 2 * NODES
    assert [(r["size"], r["case"]) for r in doc["results"]] == [
        (s, case) for s in SIZES for case in ("fits", "does_not_fit")]
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS, r["size"]


@pytest.mark.parametrize("size", SIZES)
def test_fits_places_the_whole_group_on_the_same_nodes(size: int, doc: dict[str, Any]) -> None:
    r = next(x for x in doc["results"] if x["size"] == size and x["case"] == "fits")
    assert r["free_gpus"] == doc["free_gpus"]
    assert r["placed"] == size
    assert r["same_nodes"] is True
    # vecsched assumes every member before Permit: the quorum is there and none waits.
    # One by one, every member but the last waits at Permit until the last allows them all.
    assert r["held_members_vecsched"] == 0
    assert (r["held_members_one_by_one"], r["held_gpus_one_by_one"]) == (size - 1, size - 1)
    # ... and the last one's Permit allows each of the size - 1 waiting ones once
    assert r["permit_allowed_one_by_one"] == size - 1
    assert r["released_by"] is None and r["one_by_one_failure_us"] is None


@pytest.mark.parametrize(("size", "room", "released_by"), [
    (1, 0, None),            # room for 1 // 2 = 0: the only member fits nowhere, nothing is held
    (4, 2, "PostFilter"),    # 2 of 4 unassigned = 50% > podGroupRejectPercentage 10%: rejected at once
    (16, 8, "PostFilter"),   # 8 of 16 = 50% > 10%
])
def test_does_not_fit_holds_half_the_group_one_by_one_only(size: int, room: int, released_by: str | None,
                                                           doc: dict[str, Any]) -> None:
    r = next(x for x in doc["results"] if x["size"] == size and x["case"] == "does_not_fit")
    # other jobs' pods take every free GPU but room for half the group, one GPU a member
    assert r["free_gpus"] == room
    assert r["placed"] == room
    assert r["same_nodes"] is True
    assert r["held_members_vecsched"] == 0
    assert (r["held_members_one_by_one"], r["held_gpus_one_by_one"]) == (room, room)
    assert r["permit_allowed_one_by_one"] == 0  # rejected, never allowed
    assert r["released_by"] == released_by
    assert 0 < r["one_by_one_failure_us"] <= r["one_by_one_us_per_group"]


@pytest.mark.parametrize("case", ["fits", "does_not_fit"])
@pytest.mark.parametrize("size", SIZES)
def test_figures_agree_with_each_other(size: int, case: str, doc: dict[str, Any]) -> None:
    r = next(x for x in doc["results"] if x["size"] == size and x["case"] == case)
    for method in ("vecsched", "one_by_one"):
        per_group, per_member = r[f"{method}_us_per_group"], r[f"{method}_us_per_member"]
        assert per_group > 0
        # per member = per group / size, each rounded to 0.1 us
        assert per_member == pytest.approx(per_group / size, abs=0.1)
    # ratio = one by one / vecsched, rounded to 0.01 (from unrounded times: allow for the 0.05 us roundings)
    assert r["ratio"] == pytest.approx(r["one_by_one_us_per_group"] / r["vecsched_us_per_group"], rel=1e-3, abs=0.01)


def test_text_names_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    decision.main(["--case", "gang", "--nodes", "20", "--sizes", "4", "--repeat", "1"])
    out = capsys.readouterr().out
    for words in ("gang: 20 nodes of 8 GPUs", "vecsched us", "one-by-one us", "ratio", "same nodes",
                  "    4 fits ", "    4 does_not_fit ", "3 pods/3 GPU", "2 pods/2 GPU", "released by PostFilter",
                  "median of 1 runs"):
        assert words in out, out


@pytest.mark.parametrize(("args", "error"), [
    (["--sizes", "0"], "argument --sizes: expected comma-separated positive integers, got '0'"),
    (["--sizes", "8,x"], "argument --sizes: expected comma-separated positive integers, got '8,x'"),
    (["--repeat", "0"], "argument --repeat: expected a positive integer, got '0'"),
    (["--nodes", "many"], "argument --nodes: expected a positive integer, got 'many'"),
    # 2 nodes x 8 GPUs = 16 at most: 17 one-GPU members never fit
    (["--nodes", "2", "--sizes", "17"], "--sizes: a group of 17 members needs 17 GPUs; the 2 nodes have "),
])
def test_bad_options_get_a_one_line_error(args: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        decision.main(["--case", "gang", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert error in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m benchmarks.decision --case gang: error: ")
