"""The GPU policies as strategy-lab built-ins, end to end on a tiny openb trace."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks.gpu_strategies import GPU_STRATEGY_NAMES, gpu_strategies_for
from benchmarks.openb import load_openb_pods
from benchmarks.sim_command import configure, run
from benchmarks.strategies import resolve_strategies
from scoring.objects import pod_from_json

NODES = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
    f"n-{i},{32000 if i % 2 else 64000},262144,{(2, 4, 8)[i % 3]},{('T4', 'V100', 'G2')[i % 3]}\n" for i in range(12))
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + "".join(
    f"p-{i},{(2000, 4000, 8000)[i % 3]},4096,{(1, 1, 2, 0)[i % 4]},{(250, 1000, 1000, 0)[i % 4]}\n" for i in range(60))


def test_gpu_workload_gets_the_gpu_variants(tmp_path: Path) -> None:
    (tmp_path / "pods.csv").write_text(PODS)
    pods = load_openb_pods(tmp_path / "pods.csv")
    got = resolve_strategies(GPU_STRATEGY_NAMES, workload=pods)
    # One policy plugin each; equal totals go to the smallest node name (the authors' simulator),
    # except for Random, whose choice stays uniform.
    assert {n: (p.scores, p.tie_break) for n, p in got.items()} == {
        "FGD": ((("FGD", 1),), "NodeName"), "BestFit": ((("GpuBestFit", 1),), "NodeName"),
        "DotProduct": ((("GpuDotProduct", 1),), "NodeName"), "GpuPacking": ((("GpuPacking", 1),), "NodeName"),
        "GpuClustering": ((("GpuClustering", 1),), "NodeName"), "Random": ((("Random", 1),), "Random")}
    assert all(p.filters[-1] == "GpuShare" for p in got.values())
    assert got["FGD"].plugin_args["FGD"]["typicalPods"]
    assert got["Random"].plugin_args["GpuShare"] == {"gpuSelection": "Random"}
    # A CPU-only workload keeps the generic built-ins.
    cpu_only = [pod_from_json({"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c"}]}})]
    assert gpu_strategies_for(cpu_only) == {}
    assert resolve_strategies(["BestFit"], workload=cpu_only)["BestFit"].scores == (("BestFit", 1),)


@pytest.mark.parametrize("jobs", [1])
def test_sim_reports_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: int) -> None:
    (tmp_path / "nodes.csv").write_text(NODES)
    (tmp_path / "pods.csv").write_text(PODS)
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([
        "--cluster", f"openb:{tmp_path / 'nodes.csv'}", "--workload", f"openb:{tmp_path / 'pods.csv'}",
        "--strategies", "FGD,GpuPacking", "--seeds", "2", "--inflate", "1.3", "--json", "--no-plots",
        "--jobs", str(jobs), "--out", str(tmp_path / "out")])
    assert run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("FGD", "GpuPacking"):
        s = summary["strategies"][name]
        assert 0 < s["alloc_ratio"]["gpu"]["mean"] <= 100
        curve = s["alloc_curve"]["gpu"]
        assert {str(k) for k in range(0, 131)} <= set(curve) | {"0"} and "130" in curve
