"""CpuAwareFGD as a strategy-lab built-in: selectable by name and deterministic per seed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.openb import load_openb_pods
from benchmarks.sim.sweep import SweepOptions, run_one
from benchmarks.sim_command import configure, run
from benchmarks.strategies import resolve_strategies

# 12 nodes: 2-, 4- and 8-GPU nodes of 32 or 64 cores; 60 pods: quarter-GPU, whole-GPU,
# two-GPU and CPU-only, 2-8 cores each (the GPU strategies' end-to-end trace).
NODES = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
    f"n-{i},{32000 if i % 2 else 64000},262144,{(2, 4, 8)[i % 3]},{('T4', 'V100', 'G2')[i % 3]}\n" for i in range(12))
PODS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + "".join(
    f"p-{i},{(2000, 4000, 8000)[i % 3]},4096,{(1, 1, 2, 0)[i % 4]},{(250, 1000, 1000, 0)[i % 4]}\n" for i in range(60))
_TIMING = ("decision_us", "seconds")


def _trace(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "nodes.csv").write_text(NODES)
    (tmp_path / "pods.csv").write_text(PODS)
    return tmp_path / "nodes.csv", tmp_path / "pods.csv"


def test_sim_selects_it_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes, pods = _trace(tmp_path)
    got = resolve_strategies(["CpuAwareFGD"], workload=load_openb_pods(pods))["CpuAwareFGD"]
    # Defined like FGD: GpuShare filters, the one score plugin with the workload's typical pods,
    # ties to the smallest node name.
    assert (got.scores, got.tie_break, got.filters[-1]) == ((("CpuAwareFGD", 1),), "NodeName", "GpuShare")
    assert got.plugin_args["CpuAwareFGD"]["typicalPods"]
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([
        "--cluster", f"openb:{nodes}", "--workload", f"openb:{pods}", "--strategies", "CpuAwareFGD",
        "--seeds", "1", "--inflate", "1.3", "--json", "--no-plots", "--jobs", "1", "--out", str(tmp_path / "out")])
    assert run(args) == 0
    s = json.loads(capsys.readouterr().out)["strategies"]["CpuAwareFGD"]
    # 60 pods inflated to 130% of the 56 GPUs' demand all arrive; some place, some fail.
    assert s["placed"]["mean"] > 0 and s["failed"]["mean"] > 0
    assert 0 < s["alloc_ratio"]["gpu"]["mean"] <= 100


@pytest.mark.parametrize("seed", [pytest.param(0, id="seed-0"), pytest.param(1, id="seed-1")])
def test_same_seed_same_run(tmp_path: Path, seed: int) -> None:
    nodes, pods = _trace(tmp_path)
    config = resolve_strategies(["CpuAwareFGD"], workload=load_openb_pods(pods))["CpuAwareFGD"]
    opts = SweepOptions(cluster=f"openb:{nodes}", workload=f"openb:{pods}", inflate=1.3)

    def once() -> dict[str, Any]:
        record = run_one(opts, "CpuAwareFGD", config, seed)
        return {k: v for k, v in record.items() if k not in _TIMING}

    first, second = once(), once()
    assert first == second
    assert first["placed"] + first["failed"] == first["pods"]
