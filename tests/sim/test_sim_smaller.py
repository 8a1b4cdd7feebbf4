"""The smaller behaviours of ``vecsched`` and ``vecsched sim``: ``--version``; Ctrl-C during a
sweep (a real SIGINT) saying how many runs were kept and how to resume; the summary table's
allocation at 100% and at the ``--inflate`` level."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from sim_helpers import BIN, ROOT, interrupt_after_first_run, small_workload, write

from benchmarks.sim.report import inflate_levels
from benchmarks.sim.sweep import RUNS_FILE
from benchmarks.sim_command import configure, resume_command
from scheduler.cli import main, version

PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# ---- vecsched --version ----------------------------------------------------------------------


def test_version_of_the_installed_command() -> None:
    proc = subprocess.run([str(BIN / "vecsched"), "--version"], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"vecsched {PYPROJECT_VERSION}\n", "")
    # The installed distribution is this checkout's: its metadata and pyproject agree.
    assert importlib.metadata.version("vecsched") == PYPROJECT_VERSION


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"vecsched {PYPROJECT_VERSION}\n"


@pytest.mark.parametrize(("distribution", "pyproject", "expected"), [
    pytest.param("vecsched", None, PYPROJECT_VERSION, id="installed"),
    # Not installed: the checkout's pyproject.toml says.
    pytest.param("vecsched-not-installed", '[project]\nname = "x"\nversion = "9.8.7"\n', "9.8.7", id="pyproject"),
    pytest.param("vecsched-not-installed", '[project]\nname = "x"\n', "unknown", id="pyproject-without-version"),
    pytest.param("vecsched-not-installed", "[project\n", "unknown", id="pyproject-not-toml"),
    pytest.param("vecsched-not-installed", "", "unknown", id="no-pyproject"),
])
def test_version_lookup(tmp_path: Path, distribution: str, pyproject: str | None, expected: str) -> None:
    path = tmp_path / "pyproject.toml"
    if pyproject:
        path.write_text(pyproject)
    assert version(distribution=distribution, pyproject=path) == expected


# ---- Ctrl-C during vecsched sim ---------------------------------------------------------------

SEEDS = 6


@pytest.mark.parametrize(("jobs", "to_group"), [
    pytest.param(1, False, id="one-process"),
    # A terminal's Ctrl-C reaches the whole process group, workers included.
    pytest.param(2, True, id="workers-ctrl-c-to-the-group"),
])
def test_interrupt_keeps_finished_runs_and_says_how_to_resume(tmp_path: Path, jobs: int, to_group: bool) -> None:
    workload = small_workload(tmp_path)
    out = tmp_path / "out"
    runs = out / RUNS_FILE
    argv = ["sim", "--cluster", "deploy/examples/sim-cluster.yaml", "--workload", workload, "--strategies", "default",
            "--seeds", str(SEEDS), "--jobs", str(jobs), "--out", str(out), "--no-plots", "--quiet", "--no-resume"]
    pid, code, stdout, stderr = interrupt_after_first_run(argv, runs, to_group=to_group)
    assert code == 130 and stdout == ""
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    kept = len(runs.read_text().splitlines())
    assert 1 <= kept < SEEDS
    # The command to resume is the one given, without --no-resume (it would drop the kept runs).
    command = ("vecsched sim --cluster deploy/examples/sim-cluster.yaml "
               f"--workload {workload} --strategies default --seeds {SEEDS} --out {out}"
               + (" --jobs 1" if jobs == 1 else "") + " --no-plots --quiet")
    assert stderr == f"vecsched sim: interrupted: {kept} of {SEEDS} runs are kept in {runs}; resume with: {command}\n"
    # No worker outlives the command.
    assert subprocess.run(["pgrep", "-g", str(pid)], capture_output=True).stdout == b""
    # Resuming runs only the rest: the kept lines stay, one line per seed in all.
    before = runs.read_text()
    words = shlex.split(command)
    done = subprocess.run([str(BIN / words[0]), *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = runs.read_text()
    assert after.startswith(before) and len(after.splitlines()) == SEEDS
    assert sorted(json.loads(line)["seed"] for line in after.splitlines()) == list(range(SEEDS))


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(("argv", "expected"), [
    pytest.param(("--cluster", "c.yaml", "--workload", "w.csv", "--strategies", "A"),
                 "vecsched sim --cluster c.yaml --workload w.csv --strategies A --out out/sim", id="defaults"),
    # Flags in the order --help lists them; a path with a space quoted as a shell would need it;
    # --no-resume left out; --no-shuffle kept (it is not the default None).
    pytest.param(("--no-resume", "--strategies", "A,B", "--cluster", "my c.yaml", "--workload", "openb:w.csv",
                  "--no-shuffle", "--seeds", "10", "--inflate", "1.3", "--json", "--out", "/tmp/o"),
                 "vecsched sim --cluster 'my c.yaml' --workload openb:w.csv --strategies A,B --seeds 10 "
                 "--no-shuffle --inflate 1.3 --out /tmp/o --json", id="flags"),
    pytest.param(("--cluster", "c", "--workload", "w", "--strategies", "A", "--shuffle", "--bound",
                  "--bound-time-limit", "5", "--jobs", "4"),
                 "vecsched sim --cluster c --workload w --strategies A --shuffle --out out/sim --bound "
                 "--bound-time-limit 5.0 --jobs 4", id="numbers"),
])
def test_resume_command(argv: tuple[str, ...], expected: str) -> None:
    assert resume_command(_args(*argv)) == expected


# ---- the table at 100% and at the --inflate level ---------------------------------------------

CLUSTER = "- {count: 2, cpu: 10, memory: 64Gi}\n"
# FirstFit on two nodes of 10 cpu (capacity 20), all at t=0, in file order:
#   8 -> a                     arrived  8 ( 40%)  allocated  8 ( 40%)
#   8 -> b                     arrived 16 ( 80%)  allocated 16 ( 80%)
#   5 -> nowhere (2, 2 free)   arrived 21 (105%)  allocated 16 ( 80%)  <- 100% reached here: 80
#   2 -> a                     arrived 23 (115%)  allocated 18 ( 90%)  <- 115%: 90
#   2 -> b                     arrived 25 (125%)  allocated 20 (100%)
#   3 -> nowhere               arrived 28 (140%)  allocated 20 (100%)  <- 130%: 100
# Arrived demand (28) is above 1.3 x 20 = 26 already, so --inflate 1.3 clones nothing.
WORKLOAD = "name,cpu,memory,arrival,departure\n" + "".join(
    f"p{i},{c},1Gi,0,\n" for i, c in enumerate((8, 8, 5, 2, 2, 3)))


@pytest.mark.parametrize(("inflate", "columns", "cells", "alloc_at"), [
    pytest.param((), ["alloc cpu %", "alloc memory %"], ["100.0 ± 0.0", "3.1 ± 0.0"], None, id="no-inflate"),
    pytest.param(("--inflate", "1.3"), ["alloc cpu @100%", "alloc cpu @130%", "alloc memory %"],
                 ["80.0 ± 0.0", "100.0 ± 0.0", "3.1 ± 0.0"],
                 {"cpu": {"100": {"mean": 80.0, "std": 0.0}, "130": {"mean": 100.0, "std": 0.0}}}, id="inflate-1.3"),
    # 1.15 x 100 is 114.99999999999999 in floating point: the level is 115, not 114.
    pytest.param(("--inflate", "1.15"), ["alloc cpu @100%", "alloc cpu @115%"], ["80.0 ± 0.0", "90.0 ± 0.0"],
                 {"cpu": {"100": {"mean": 80.0, "std": 0.0}, "115": {"mean": 90.0, "std": 0.0}}}, id="inflate-1.15"),
])
def test_table_shows_allocation_at_100_and_at_the_inflate_level(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 inflate: tuple[str, ...], columns: list[str],
                                                                 cells: list[str], alloc_at: dict | None) -> None:
    code = main(["sim", "--cluster", write(tmp_path / "c.yaml", CLUSTER), "--workload",
                 write(tmp_path / "w.csv", WORKLOAD), "--strategies", "FirstFit", "--jobs", "1", "--no-plots",
                 "--quiet", "--json", "--out", str(tmp_path / "out"), *inflate])
    assert code == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)["strategies"]["FirstFit"]
    header, _, row = err.splitlines()[:3]
    names = [c for c in header.split("  ") if c.strip()]
    values = dict(zip([c.strip() for c in names], [c.strip() for c in row.split("  ") if c.strip()]))
    assert [values[c] for c in columns] == cells                  # memory: 4 x 1Gi placed of 128Gi = 3.125 %
    assert summary.get("alloc_at") == alloc_at
    # The JSON keeps everything it had: the end state and the curves.
    assert summary["alloc_ratio"]["cpu"] == {"mean": 100.0, "std": 0.0}
    assert (summary["alloc_curve"]["cpu"]["100"], summary["alloc_curve"]["cpu"]["130"]) == (80.0, 100.0)
    assert ("alloc cpu %" in values) is (not inflate)


OPENB_NODES = "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,131072,2,V100\nn1,32000,131072,2,V100\n"
OPENB_PODS = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
              "p0,4000,8192,1,500\np1,4000,8192,1,500\np2,8000,16384,1,1000\np3,2000,4096,1,300\n")


def test_gpu_table_shows_allocation_and_fragmentation_at_both_levels(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "--cluster", f"openb:{write(tmp_path / 'n.csv', OPENB_NODES)}",
                 "--workload", f"openb:{write(tmp_path / 'p.csv', OPENB_PODS)}", "--strategies", "FGD",
                 "--seeds", "3", "--inflate", "1.3", "--jobs", "1", "--no-plots", "--quiet", "--out",
                 str(tmp_path / "out")])
    assert code == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    cells = dict(zip([c.strip() for c in header.split("  ") if c.strip()],
                     [c.strip() for c in row.split("  ") if c.strip()]))
    runs = [json.loads(line) for line in (tmp_path / "out" / RUNS_FILE).read_text().splitlines()]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["strategies"]["FGD"]
    for key, curve, column in (("alloc_at", "alloc_curve", "alloc gpu"), ("frag_at", "frag_curve", "frag gpu")):
        for level in ("100", "130"):
            # mean and population std over the 3 seeds of each run's curve at the level
            values = [r[curve]["gpu"][level] for r in runs]
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
            stat = summary[key]["gpu"][level]
            assert stat == {"mean": round(mean, 4), "std": round(std, 4)}
            assert cells[f"{column} @{level}%"] == f"{stat['mean']:.1f} ± {stat['std']:.1f}"
    assert "alloc gpu %" not in cells and "frag gpu %" not in cells and "alloc cpu %" in cells


@pytest.mark.parametrize(("inflate", "levels"), [
    pytest.param(None, (), id="none"),
    pytest.param(1.3, (100, 130), id="1.3"),
    pytest.param(1.15, (100, 115), id="1.15-floating-point"),
    pytest.param(1.0, (100,), id="1.0"),
    pytest.param(0.5, (50, 100), id="below-capacity"),
    pytest.param(0.004, (100,), id="under-one-percent"),
])
def test_inflate_levels(inflate: float | None, levels: tuple[int, ...]) -> None:
    assert inflate_levels(inflate) == levels
