"""Replay order: a workload is replayed in its own order for every seed; ``--shuffle`` shuffles
pods that arrive together per seed (on by default only for ``openb:`` pod lists); whether a run
was shuffled is part of its key, so a runs file is never reused for the other order."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from sim_helpers import write

from benchmarks.sim.loaders import open_workload, shuffled_by_default
from benchmarks.sim.sweep import RUNS_FILE, SweepOptions, _digest, prepare_pods, run_key, shuffles
from benchmarks.strategies import builtin_profile
from scheduler.cli import main

CLUSTER = "- {count: 2, cpu: 10, memory: 64Gi}\n"
# 5, 3, 7, 5 cpu, all at t=0, on two nodes of 10 cpu. FirstFit in file order: 5 -> a, 3 -> a (8),
# 7 -> b, 5 -> nowhere (a 2 free, b 3 free): 3 placed. Some other orders place all 4 (7, 5, 5, 3:
# 7 -> a, 5 -> b, 5 -> b, 3 -> a), so a shuffle shows in the count.
SIZES = (("p5a", 5), ("p3", 3), ("p7", 7), ("p5b", 5))
MANIFEST = "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {n}, namespace: t}}\n"
                   f"spec: {{containers: [{{name: c, resources: {{requests: {{cpu: '{c}', memory: 1Gi}}}}}}]}}\n"
                   for n, c in SIZES)
CSV = "name,cpu,memory,arrival,departure\n" + "".join(f"{n},{c},1Gi,0,\n" for n, c in SIZES)
OPENB_NODES = "sn,cpu_milli,memory_mib,gpu,model\na,10000,65536,0,\nb,10000,65536,0,\n"
OPENB_PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + "".join(f"{n},{c}000,1024,0,0\n" for n, c in SIZES)
FILE_ORDER_PLACED = 3


def _inputs(tmp_path: Path, kind: str) -> tuple[str, str]:
    if kind == "openb":
        return (f"openb:{write(tmp_path / 'nodes.csv', OPENB_NODES)}",
                f"openb:{write(tmp_path / 'pods.csv', OPENB_PODS)}")
    workload = write(tmp_path / "w.yaml", MANIFEST) if kind == "manifest" else write(tmp_path / "w.csv", CSV)
    return write(tmp_path / "c.yaml", CLUSTER), workload


def _first_fit(sizes: list[int]) -> int:
    """Pods placed by first fit on two nodes of 10 cpu, in the order given."""
    free, placed = [10, 10], 0
    for c in sizes:
        for i, f in enumerate(free):
            if f >= c:
                free[i] -= c
                placed += 1
                break
    return placed


def _sim(tmp_path: Path, cluster: str, workload: str, *flags: str, seeds: int = 3) -> tuple[dict, dict[int, int]]:
    """The summary and placed pods per seed of a FirstFit sweep into tmp_path/out."""
    code = main(["sim", "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit",
                 "--seeds", str(seeds), "--jobs", "1", "--no-plots", "--quiet", "--json", "--out",
                 str(tmp_path / "out"), *flags])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    runs = [json.loads(line) for line in (tmp_path / "out" / RUNS_FILE).read_text().splitlines()]
    return summary, {r["seed"]: r["placed"] for r in runs}


@pytest.mark.parametrize(("kind", "flags", "shuffled"), [
    pytest.param("manifest", (), False, id="manifest"),          # file order for every seed
    pytest.param("csv", (), False, id="csv-with-arrivals"),
    pytest.param("manifest", ("--no-shuffle",), False, id="manifest-no-shuffle"),
    pytest.param("manifest", ("--shuffle",), True, id="manifest-shuffle"),
    pytest.param("csv", ("--shuffle",), True, id="csv-shuffle"),
    pytest.param("openb", (), True, id="openb"),                 # the FGD protocol: shuffled per seed
    pytest.param("openb", ("--no-shuffle",), False, id="openb-no-shuffle"),
])
def test_seeds_keep_the_file_order_unless_shuffled(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str,
                                                   flags: tuple[str, ...], shuffled: bool) -> None:
    cluster, workload = _inputs(tmp_path, kind)
    seeds = 8
    summary, placed = _sim(tmp_path, cluster, workload, *flags, seeds=seeds)
    capsys.readouterr()
    assert summary["workload"]["shuffle"] is shuffled
    if not shuffled:
        # Every seed places exactly the file-order count: 3.0 ± 0.0 (seeds 2, 4, 6 and 7 would place 4
        # if they shuffled, see below).
        assert placed == dict.fromkeys(range(seeds), FILE_ORDER_PLACED)
        assert summary["strategies"]["FirstFit"]["placed"] == {"mean": 3.0, "std": 0.0}
        return
    # Each seed replays its own seeded order: first fit by hand on that order gives the count.
    pods = open_workload(workload).pods(seed=0)
    orders = {s: prepare_pods(pods, seed=s, inflate=None, primary="cpu", capacity={}, shuffle=True)
              for s in range(seeds)}
    expected = {s: _first_fit([p.pod.requests["cpu"] // 1000 for p in o]) for s, o in orders.items()}
    assert placed == expected
    assert set(expected.values()) == {3, 4}                      # the order changes the outcome
    assert len({tuple(p.pod.name for p in o) for o in orders.values()}) > 1
    # Reproducible: the same seeds again (a fresh directory) give the same counts.
    again = tmp_path / "again"
    again.mkdir()
    assert _sim(again, cluster, workload, *flags, seeds=seeds)[1] == placed


def test_manifest_with_three_seeds_places_the_file_order_count(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # The shape of the reported bug: --seeds 3 on a manifest must not average shuffled orders
    # (seed 2's shuffle places 4, which made the mean 3.33).
    cluster, workload = _inputs(tmp_path, "manifest")
    summary, placed = _sim(tmp_path, cluster, workload, seeds=3)
    capsys.readouterr()
    assert placed == {0: 3, 1: 3, 2: 3}
    assert summary["strategies"]["FirstFit"]["placed"] == {"mean": 3.0, "std": 0.0}


@pytest.mark.parametrize(("spec", "default"), [
    pytest.param("openb:/x/pods.csv", True, id="openb"),
    pytest.param("/x/pods.csv", False, id="csv"),
    pytest.param("/x/w.yaml", False, id="manifest"),
    pytest.param("unknown:/x/w.yaml", False, id="unregistered-prefix"),
])
def test_shuffled_by_default(spec: str, default: bool) -> None:
    assert shuffled_by_default(spec) is default
    assert shuffles(SweepOptions(cluster="c", workload=spec)) is default
    assert shuffles(SweepOptions(cluster="c", workload=spec, shuffle=not default)) is not default


def _legacy_key(opts: SweepOptions, seed: int) -> str:
    """A run's key as written before --shuffle existed (then seeds above 0, and every seed of an
    openb: list, were shuffled)."""
    options = {k: v for k, v in asdict(opts).items() if k not in ("preemption", "node_metrics", "shuffle")}
    doc = json.dumps([_digest(opts.cluster), _digest(opts.workload), options, "default",
                      repr(builtin_profile("default")), seed], sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:20]


@pytest.mark.parametrize(("kind", "seed", "shuffle", "as_before"), [
    # Same order as before the flag: the old key, so old runs files resume.
    pytest.param("manifest", 0, None, True, id="manifest-seed-0"),
    pytest.param("manifest", 2, True, True, id="manifest-seed-2-shuffled"),
    # An openb: cluster's nodes are named per seed as the FGD simulator names them
    # (loaders.cluster_for_seed): never the runs of before, in either order.
    pytest.param("openb", 0, None, False, id="openb-seed-0-renamed-nodes"),
    pytest.param("openb", 3, True, False, id="openb-seed-3-shuffled-renamed-nodes"),
    # Another order than before: a key of its own, so old runs are not reused.
    pytest.param("manifest", 2, None, False, id="manifest-seed-2-file-order"),
    pytest.param("manifest", 0, True, False, id="manifest-seed-0-shuffled"),
    pytest.param("openb", 0, False, False, id="openb-seed-0-no-shuffle"),
])
def test_run_key_names_the_order(tmp_path: Path, kind: str, seed: int, shuffle: bool | None,
                                 as_before: bool) -> None:
    cluster, workload = _inputs(tmp_path, kind)
    opts = SweepOptions(cluster=cluster, workload=workload, shuffle=shuffle)
    default = builtin_profile("default")
    assert (run_key(opts, "default", default, seed) == _legacy_key(opts, seed)) is as_before
    other = SweepOptions(cluster=cluster, workload=workload, shuffle=not shuffles(opts))
    assert run_key(other, "default", default, seed) != run_key(opts, "default", default, seed)
    # None means the workload's default: the same key as saying it.
    explicit = SweepOptions(cluster=cluster, workload=workload, shuffle=shuffles(opts))
    assert run_key(explicit, "default", default, seed) == run_key(opts, "default", default, seed)


def test_resuming_with_another_order_reruns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster, workload = _inputs(tmp_path, "manifest")
    runs = tmp_path / "out" / RUNS_FILE

    def lines() -> int:
        return len(runs.read_text().splitlines())

    _sim(tmp_path, cluster, workload, seeds=2)
    assert lines() == 2                                           # seeds 0, 1 in file order
    _, placed = _sim(tmp_path, cluster, workload, "--shuffle", seeds=2)
    assert lines() == 4                                           # both rerun, shuffled
    pods = open_workload(workload).pods(seed=0)
    assert placed == {s: _first_fit([p.pod.requests["cpu"] // 1000 for p in
                                     prepare_pods(pods, seed=s, inflate=None, primary="cpu", capacity={},
                                                  shuffle=True)]) for s in (0, 1)}
    _sim(tmp_path, cluster, workload, seeds=2)
    _sim(tmp_path, cluster, workload, "--shuffle", seeds=2)
    assert lines() == 4                                           # both orders resume from the file
    capsys.readouterr()
