"""``vecsched sim`` end to end: the --json summary shape, the files it writes,
one-line errors with exit 2, resumable and reproducible sweeps."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from sim_helpers import write

from benchmarks.sim.sweep import RUNS_FILE, SweepOptions, run_sweep
from benchmarks.strategies import resolve_strategies
from scheduler.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "- {count: 2, cpu: 10, memory: 64Gi}\n"
# 5, 3, 7, 5 cpu at t=0: FirstFit places 3 (see test_sim_bound), the optimum is 4.
WORKLOAD = "name,cpu,memory,arrival,departure\np5a,5,1Gi,0,\np3,3,1Gi,0,\np7,7,1Gi,0,\np5b,5,1Gi,0,\n"
TIMING = ("decision_us", "seconds", "key")


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path / "cluster.yaml", CLUSTER), write(tmp_path / "workload.csv", WORKLOAD)


def _sim(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sim", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_summary_shape(inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster, workload = inputs
    # Every seed replays the file order (pods that arrive together are shuffled only with --shuffle).
    code, out, _ = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit,WorstFit",
                        "--jobs", "1", "--out", str(tmp_path / "out"), "--json", "--bound")
    assert code == 0
    summary = json.loads(out)
    assert list(summary["strategies"]) == ["FirstFit", "WorstFit"]
    ff = summary["strategies"]["FirstFit"]
    assert ff["placed"] == {"mean": 3.0, "std": 0.0} and ff["failed"] == {"mean": 1.0, "std": 0.0}
    # FirstFit holds 5+3 on a, 7 on b: cpu 15 of 20 = 75 %; memory 3Gi of 128Gi = 2.34375 %
    assert ff["alloc_ratio"] == {"cpu": {"mean": 75.0, "std": 0.0}, "memory": {"mean": 2.3438, "std": 0.0}}
    # cpu arrived 25 %, 40 %, 75 %, 100 %; allocated 25, 40, 75, 75
    curve = ff["alloc_curve"]["cpu"]
    assert list(curve) == [str(k) for k in range(0, 101)]  # key 0: nothing arrived, 0 % allocated
    assert (curve["0"], curve["25"], curve["26"], curve["40"], curve["75"], curve["100"]) == (0.0, 25.0, 40.0, 40.0, 75.0, 75.0)
    assert ff["bound_ratio"] == {"mean": 0.75, "std": 0.0}
    assert summary["bounds"]["0"]["value"] == 4
    # WorstFit (5 -> a, 3 -> b, 7 -> nowhere... a has 5, b has 7 -> 7 -> b, 5 -> a) places all 4
    assert summary["strategies"]["WorstFit"]["placed"]["mean"] == 4.0


def test_outputs_written(inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster, workload = inputs
    out = tmp_path / "out"
    code, stdout, _ = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "default,BestFit",
                           "--jobs", "2", "--seeds", "2", "--out", str(out))
    assert code == 0 and "BestFit" in stdout and "±" in stdout
    assert json.loads((out / "summary.json").read_text())["strategies"]["BestFit"]["seeds"] == 2
    rows = (out / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("strategy,seed,pods,placed,failed") and len(rows) == 1 + 4
    assert len((out / RUNS_FILE).read_text().splitlines()) == 4
    assert (out / "alloc_curve.csv").read_text().startswith("strategy,resource,arrived_pct,alloc_pct\n")
    for name in ("alloc_curve.png", "failed.png", "stranded.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 500 and height >= 300


def test_subprocess(inputs: tuple[str, str], tmp_path: Path) -> None:
    cluster, workload = inputs
    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", "sim", "--cluster", cluster, "--workload", workload,
                           "--strategies", "MostAllocated,Random", "--out", str(tmp_path / "o"), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["strategies"]) == {"MostAllocated", "Random"}


@pytest.mark.parametrize(("cluster_text", "workload_text", "strategies", "message"), [
    pytest.param(CLUSTER, WORKLOAD, "FirstFit,Tetris", "unknown strategy 'Tetris'", id="unknown-strategy"),
    pytest.param("- {count: 2, cpu: 10}\n", WORKLOAD, "FirstFit", "cluster.yaml: line 1 (shape 0): memory: required",
                 id="cluster-missing-field"),
    pytest.param(CLUSTER, "name,cpu,memory,arrival,departure\na,1,1Gi,5,2\n", "FirstFit",
                 "workload.csv: line 2: departure: must not be before arrival", id="negative-duration"),
    pytest.param(CLUSTER, "name,cpu,memory,arrival,departure\na,1,1Gx,0,\n", "FirstFit",
                 "workload.csv: line 2: memory: invalid quantity '1Gx'", id="bad-quantity"),
])
def test_bad_input_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster_text: str,
                                   workload_text: str, strategies: str, message: str) -> None:
    cluster = write(tmp_path / "cluster.yaml", cluster_text)
    workload = write(tmp_path / "workload.csv", workload_text)
    code, out, err = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", strategies,
                          "--out", str(tmp_path / "o"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("vecsched sim: ") and message in err


def test_empty_workload_gives_empty_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = write(tmp_path / "cluster.yaml", CLUSTER)
    workload = write(tmp_path / "empty.yaml", "")
    code, out, _ = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "default,FirstFit",
                        "--out", str(tmp_path / "o"), "--json", "--bound")
    assert code == 0
    s = json.loads(out)["strategies"]["default"]
    assert s["placed"] == {"mean": 0.0, "std": 0.0} and s["alloc_curve"] == {"cpu": {}, "memory": {}}
    assert (tmp_path / "o" / "alloc_curve.png").exists()


def test_config_profile_as_strategy(inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster, workload = inputs
    config = write(tmp_path / "config.yaml", """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: gpu-aware-bestfit
  plugins:
    score:
      disabled: [{name: "*"}]
      enabled: [{name: BestFit, weight: 2}]
  pluginConfig:
  - name: BestFit
    args: {resources: [{name: cpu, weight: 1}, {name: nvidia.com/gpu, weight: 3}]}
""")
    code, out, _ = _sim(capsys, "--cluster", cluster, "--workload", workload, "--config", config,
                        "--strategies", "gpu-aware-bestfit,default", "--out", str(tmp_path / "o"), "--json")
    assert code == 0 and list(json.loads(out)["strategies"]) == ["gpu-aware-bestfit", "default"]


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_reproducible_and_resumable(tmp_path: Path) -> None:
    cluster = str(ROOT / "deploy/examples/sim-cluster.yaml")
    workload = write(tmp_path / "w.yaml", (ROOT / "deploy/examples/sim-workload.yaml").read_text()
                     .replace("pods: 3000", "pods: 300"))
    opts = SweepOptions(cluster=cluster, workload=workload)
    strategies = resolve_strategies(["Random", "DotProduct"])
    serial = run_sweep(opts=opts, strategies=strategies, seeds=2, jobs=1, progress=False)
    parallel = run_sweep(opts=opts, strategies=strategies, seeds=2, jobs=2, out_dir=tmp_path / "o", progress=False)
    # Same seed, same result: in one process or in workers, in whatever order they finish.
    assert _strip(serial) == _strip(parallel)
    assert _strip(serial)[0] != _strip(serial)[1]                         # seeds differ
    # A rerun with the same directory keeps the finished runs and reruns nothing.
    rerun: list[dict] = []
    again = run_sweep(opts=opts, strategies=strategies, seeds=2, jobs=2, out_dir=tmp_path / "o", progress=False,
                      on_result=rerun.append)
    assert rerun == [] and _strip(again) == _strip(parallel)
    # An interrupted sweep: only the first line survived; the rerun does the other three.
    lines = (tmp_path / "o" / RUNS_FILE).read_text().splitlines()
    (tmp_path / "o" / RUNS_FILE).write_text(lines[0] + "\n" + lines[1][:10])
    run_sweep(opts=opts, strategies=strategies, seeds=2, jobs=1, out_dir=tmp_path / "o", progress=False,
              on_result=rerun.append)
    assert len(rerun) == 3
