"""On a GPU cluster the lab reports FGD's fragmentation measure next to allocation: at the
end of the replay and as a curve sampled where the GPU allocation curve is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.gpu_strategies import fragmentation_measure
from benchmarks.openb import load_openb_nodes, load_openb_pods
from benchmarks.sim.model import SimPod
from benchmarks.sim.replay import replay
from benchmarks.strategies import resolve_strategies
from scheduler.cli import main
from scoring.table import NodeTable

NODES = "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,131072,2,V100\nn1,32000,131072,2,V100\n"
# Four pods: two half GPUs, one whole GPU, one 0.3 GPU (gpu 4000 milli of capacity, 2300 requested).
PODS = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
        "p0,4000,8192,1,500\np1,4000,8192,1,500\np2,8000,16384,1,1000\np3,2000,4096,1,300\n")


def test_replay_measures_fragmentation_of_its_final_state(tmp_path: Path) -> None:
    (tmp_path / "n.csv").write_text(NODES)
    (tmp_path / "p.csv").write_text(PODS)
    nodes, pods = load_openb_nodes(tmp_path / "n.csv"), load_openb_pods(tmp_path / "p.csv")
    measure = fragmentation_measure(pods)
    assert measure is not None
    config = resolve_strategies(["FGD"], workload=pods)["FGD"]
    events: list[tuple[float, str, str, str | None]] = []
    m = replay(nodes=nodes, pods=[SimPod(p) for p in pods], profile=config.build(seed=0), events=events,
               fragmentation=measure)
    assert m.placed == 4
    # Rebuild the final state from the placements alone and measure it independently.
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    assert m.frag_curve["gpu"].keys() == m.alloc_curve["gpu"].keys()  # sampled at the same points
    assert m.frag_curve["gpu"][0] == pytest.approx(measure(table) * 100 / 4000)  # the empty cluster
    by_key = {p.key: p for p in pods}
    for _, what, key, node in events:
        assert what == "place" and node is not None
        table.add_pod(by_key[key], node)
    assert m.fragmentation["gpu"] == pytest.approx(measure(table) * 100 / 4000)


def test_sim_json_reports_fragmentation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "n.csv").write_text(NODES)
    (tmp_path / "p.csv").write_text(PODS)
    code = main(["sim", "--cluster", f"openb:{tmp_path / 'n.csv'}", "--workload", f"openb:{tmp_path / 'p.csv'}",
                 "--strategies", "FGD,Random", "--seeds", "2", "--jobs", "1", "--json", "--no-plots",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for s in summary["strategies"].values():
        frag = s["fragmentation"]["gpu"]
        assert 0.0 <= frag["mean"] <= 100.0
        assert s["frag_curve"]["gpu"].keys() == s["alloc_curve"]["gpu"].keys()


def test_kubernetes_node_lists_report_gpu_in_milli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two nodes with 2 GPUs each (4,000 milli-GPU); pods ask with vecsched's annotations
    # (0.5 + 0.5 GPU) and with nvidia.com/gpu (one whole GPU): 2,000 of 4,000 = 50 %.
    node = {"kind": "Node", "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110",
                                                       "nvidia.com/gpu": "2"}}}
    (tmp_path / "c.yaml").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {**node, "metadata": {"name": f"g{i}"}} for i in range(2)]}))
    share = {"vecsched.io/gpu-milli": "500"}
    pods = [
        {"kind": "Pod", "metadata": {"name": "half-a", "annotations": share},
         "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}},
        {"kind": "Pod", "metadata": {"name": "half-b", "annotations": share},
         "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}},
        {"kind": "Pod", "metadata": {"name": "whole"},
         "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"},
                                                            "limits": {"nvidia.com/gpu": "1"}}}]}},
    ]
    (tmp_path / "w.yaml").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    code = main(["sim", "--cluster", str(tmp_path / "c.yaml"), "--workload", str(tmp_path / "w.yaml"),
                 "--strategies", "GpuPacking", "--jobs", "1", "--json", "--no-plots", "--out", str(tmp_path / "o")])
    assert code == 0
    s = json.loads(capsys.readouterr().out)["strategies"]["GpuPacking"]
    assert s["placed"]["mean"] == 3
    assert s["alloc_ratio"]["gpu"]["mean"] == 50.0
    # arrived GPU request 500, 1000, 2000 of 4000: 12 %, 25 %, 50 %, each fully allocated
    assert s["alloc_curve"]["gpu"]["12"] == 12.5 and s["alloc_curve"]["gpu"]["50"] == 50.0
    assert "gpu" in s["fragmentation"]
