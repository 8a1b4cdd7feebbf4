"""FGD for pods that ask for no GPU, pinned to the FGD authors' simulator, and the CPU-heavy variant.

The simulator (hkust-adsl/kubernetes-scheduler-simulator) scores a pod in
``pkg/simulator/plugin/fgd_score.go`` (``Score``, ``calculateGpuShareFragExtendScore``):
a pod whose containers request nothing scores 100; any other pod without a GPU
share takes the ``nodeRes.Sub(podRes)`` branch, which lowers only the node's
``MilliCpuLeft`` by the pod's non-zero CPU (``GetPodResource`` sums
``GetNonzeroRequests``: 100m for a container without a CPU request) and leaves
the GPUs alone; the score is ``int64(sigmoid((F - F') / 1000) * 100)`` with
``F = NodeGpuShareFragAmountScore`` (``pkg/utils/frag.go``): for each typical
pod m, the node's idle GPU milli S if m does not fit (``GetNodePodFrag``: Q1/Q2/Q4,
and XL/XR for typical pods without a GPU, which count whatever the CPU), else
the idle milli on GPUs with less free than m's share (Q3), weighted by m's
popularity. Open-Gpu-Share's Filter passes every pod without a GPU request.

Target workload below (weights are counts, W = 4):
    m1  4 CPU, 0.5 GPU        x2
    m2  8 CPU, 1 whole GPU    x1
    m3  2 CPU, no GPU         x1  (XL or XR: always all of S)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpu_helpers import gpu_node, gpu_pod, table_of

from benchmarks.cpu_heavy import cpu_heavy_rows, main as cpu_heavy_main, write_cpu_heavy
from benchmarks.gpu_strategies import gpu_body
from scheduler.config import API_VERSION, parse_config
from scoring.objects import PodInfo, pod_from_json
from scoring.plugins.fgd import FGD
from scoring.plugins.gpu_frag import TargetWorkload, TypicalPod
from scoring.table import NodeTable

WL = TargetWorkload([TypicalPod(4000, 500, 1, (), 2), TypicalPod(8000, 1000, 1, (), 1),
                     TypicalPod(2000, 0, 0, (), 1)])


def bare_pod(name: str, requests: dict[str, str] | None) -> PodInfo:
    """A pod without GPU annotations; ``requests`` None: a container without any request."""
    resources: dict[str, Any] = {"requests": requests} if requests is not None else {}
    return pod_from_json({"metadata": {"name": name, "namespace": "t"},
                          "spec": {"containers": [{"name": "c", "resources": resources}]}})


def cluster() -> NodeTable:
    """Four nodes, in this table order:
    n-gpu2: 2 GPUs [1000, 1000] free, 16 of 16 CPUs free. S = 2000. m1 fits and loses nothing
            below 500; m2 fits and loses nothing; m3 sees S. W F = 2000 (F = 500 milli).
    n-gpu1: 1 GPU [1000], 4 of 8 CPUs free (a 4-CPU pod placed). S = 1000. m1 fits (4 >= 4),
            m2 lacks CPU (Q4: S), m3 S. W F = 1000 + 1000 = 2000.
    n-cpu:  no GPU, 16 CPUs. S = 0: F = 0 whatever happens.
    n-full: 1 GPU, all of it taken (a whole-GPU pod of 1 CPU placed), 15 of 16 CPUs free. S = 0.
    """
    nodes = [gpu_node("n-gpu2", 2, cpu="16"), gpu_node("n-gpu1", 1, cpu="8"), gpu_node("n-cpu", 0, cpu="16"),
             gpu_node("n-full", 1, cpu="16")]
    placed = [(bare_pod("four", {"cpu": "4"}), "n-gpu1"), (gpu_pod("whole", milli=1000, count=1, cpu="1"), "n-full")]
    return table_of(nodes, placed)


@pytest.mark.parametrize("pod, expected", [
    # 4 CPUs: n-gpu2 keeps 12 >= 8: every typical pod fits as before -> F' = F -> sigmoid(0) -> 50.
    # n-gpu1: 0 left, m1 now lacks CPU -> W F' = 2*1000 + 1000 + 1000 = 4000, F - F' = -2000/4
    # = -500 milli -> sigmoid(-.5) = .3775 -> 37. n-cpu, n-full: S = 0 -> 50.
    (bare_pod("cpu4", {"cpu": "4"}), [50, 37, 50, 50]),
    # 10 CPUs: n-gpu2 keeps 6: m1 fits, m2 lacks CPU -> W F' = 2000 + 2000 = 4000 -> -500 milli
    # -> 37. n-gpu1 has 4 CPUs (the filter rejects it; Sub fails and leaves the node as it is:
    # F' = F -> 50). n-cpu, n-full 50.
    (bare_pod("cpu10", {"cpu": "10"}), [37, 50, 50, 50]),
    # 14 CPUs: n-gpu2 keeps 2: m1 and m2 lack CPU -> W F' = 4 * 2000 = 8000 -> -6000/4 = -1500
    # milli -> sigmoid(-1.5) = .1824 -> 18.
    (bare_pod("cpu14", {"cpu": "14"}), [18, 50, 50, 50]),
    # 16 CPUs: 0 left on n-gpu2, the same fits as with 14 (m3 turns from XL to XR: still S) -> 18.
    (bare_pod("cpu16", {"cpu": "16"}), [18, 50, 50, 50]),
    # Memory only: the non-zero CPU of 100m is taken. n-gpu2 keeps 15.9: unchanged -> 50.
    # n-gpu1 keeps 3.9 < 4: m1 lacks CPU -> as "cpu4" there -> 37.
    (bare_pod("mem-only", {"memory": "1Gi"}), [50, 37, 50, 50]),
    # No request at all: the code's "len(podReq) == 0" -> MaxNodeScore everywhere.
    (bare_pod("no-requests", None), [100, 100, 100, 100]),
], ids=["harmless-cpu", "starves-whole-gpu-pods", "starves-all", "takes-all-cpu", "nonzero-cpu", "no-requests"])
def test_cpu_only_pod_scores(pod: PodInfo, expected: list[int]) -> None:
    table = cluster()
    got = FGD(WL).score(pod, table, np.arange(table.n, dtype=np.intp), {})
    assert got.tolist() == expected


def fgd_profile() -> Any:
    """The lab's FGD strategy (FGD alone, GpuShare, ties to the smallest node name) for WL."""
    body = gpu_body("FGD", typical=[t.as_args() for t in WL.pods])
    cfg = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
                        "profiles": [{"schedulerName": "fgd", **body}]})
    return cfg.profiles[0].build(seed=0)


@pytest.mark.parametrize("pod, feasible, node", [
    # Every node with CPU room is feasible: GpuShare passes pods without a GPU request, like
    # Open-Gpu-Share's Filter. Scores as above: n-gpu2 50, n-gpu1 37, n-cpu 50, n-full 50; the
    # three 50s tie and the smallest name wins: n-cpu < n-full < n-gpu2.
    (bare_pod("cpu4", {"cpu": "4"}), ["n-gpu2", "n-gpu1", "n-cpu", "n-full"], "n-cpu"),
    # 10 CPUs: n-gpu1 (4 free) is filtered out; n-gpu2 37, n-cpu 50, n-full 50 -> n-cpu.
    (bare_pod("cpu10", {"cpu": "10"}), ["n-gpu2", "n-cpu", "n-full"], "n-cpu"),
    # 16 CPUs fit only n-gpu2 and n-cpu (n-full has 15 free): 18 against 50 -> n-cpu.
    (bare_pod("cpu16", {"cpu": "16"}), ["n-gpu2", "n-cpu"], "n-cpu"),
], ids=["tie-to-smallest-name", "avoids-starving", "only-two-fit"])
def test_cpu_only_pod_placement(pod: PodInfo, feasible: list[str], node: str) -> None:
    table = cluster()
    decision = fgd_profile().schedule(pod, table)
    assert [table.names[i] for i in np.flatnonzero(decision.feasible)] == feasible
    assert decision.node == node


def test_cpu_pod_breaks_ties_by_name_among_gpu_nodes() -> None:
    # Two empty 2-GPU nodes named out of table order: a harmless CPU pod scores 50 on both
    # (as on n-gpu2 above) and goes to the smaller name, "g-a", not to the first row.
    table = table_of([gpu_node("g-b", 2, cpu="16"), gpu_node("g-a", 2, cpu="16")])
    decision = fgd_profile().schedule(bare_pod("cpu4", {"cpu": "4"}), table)
    assert decision.scores["FGD"].tolist() == [50, 50]
    assert decision.node == "g-a"


# ---- the CPU-heavy variant ---------------------------------------------------------------------

def rows(*spec: tuple[str, int]) -> list[dict[str, str]]:
    return [{"name": n, "cpu_milli": "4000", "memory_mib": "1024", "num_gpu": str(g), "gpu_milli": "1000" if g else "0"}
            for n, g in spec]


@pytest.mark.parametrize("spec, factor, names", [
    # 2 CPU-only pods (c0, c1) x 2.5 = 5: 3 clones, taken in turn c0, c1, c0.
    ([("g0", 1), ("c0", 0), ("g1", 2), ("c1", 0)], 2.5,
     ["g0", "c0", "g1", "c1", "c0-cpu-clone-0", "c1-cpu-clone-1", "c0-cpu-clone-2"]),
    # 1 x 2.5 = 2.5, rounded half up -> 3: 2 clones of c0.
    ([("c0", 0), ("g0", 1)], 2.5, ["c0", "g0", "c0-cpu-clone-0", "c0-cpu-clone-1"]),
    # factor 1: the list as it is.
    ([("c0", 0), ("g0", 1)], 1.0, ["c0", "g0"]),
    # 3 x 2 = 6: each once more.
    ([("c0", 0), ("c1", 0), ("c2", 0)], 2.0, ["c0", "c1", "c2", "c0-cpu-clone-0", "c1-cpu-clone-1", "c2-cpu-clone-2"]),
], ids=["two-cpu-pods", "half-up", "factor-one", "factor-two"])
def test_cpu_heavy_rows(spec: list[tuple[str, int]], factor: float, names: list[str]) -> None:
    out = cpu_heavy_rows(rows(*spec), factor=factor)
    assert [r["name"] for r in out] == names
    # Clones keep every other column of their original.
    assert all(r["num_gpu"] == "0" and r["cpu_milli"] == "4000" for r in out if "-cpu-clone-" in r["name"])


def test_cpu_heavy_of_the_default_list_shape(tmp_path: Path) -> None:
    # A list shaped like the default one (8 pods, 1 of 8 CPU-only as 1,088 of 8,152) with the
    # trace's extra columns: 2.5 x 1 -> 3 CPU-only pods, 10 in all, columns kept in order.
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    body = "".join(f"p-{i},8000,4096,{0 if i == 3 else 1},{0 if i == 3 else 500},,LS,Running,{i},{i + 9},{i}\n"
                   for i in range(8))
    (tmp_path / "in.csv").write_text(header + body)
    assert write_cpu_heavy(tmp_path / "in.csv", tmp_path / "out.csv") == (10, 3)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] + "\n" == header and lines[1:9] == body.splitlines()
    assert lines[9:] == ["p-3-cpu-clone-0,8000,4096,0,0,,LS,Running,3,12,3", "p-3-cpu-clone-1,8000,4096,0,0,,LS,Running,3,12,3"]


@pytest.mark.parametrize("text, args, message", [
    ("name,cpu_milli,memory_mib,num_gpu\np,1,1,0\n", [], "IN:1: gpu_milli: required column missing"),
    ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,x,0\n", [], "IN:2: num_gpu: expected an integer, got 'x'"),
    ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,500\n", [], "IN: num_gpu: no CPU-only pod (num_gpu 0) to clone"),
    ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,0,0\n", ["--factor", "0.5"], "--factor: expected a number >= 1, got 0.5"),
], ids=["missing-column", "bad-num-gpu", "no-cpu-pods", "factor-below-one"])
def test_cpu_heavy_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, args: list[str],
                             message: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(text)
    assert cpu_heavy_main([str(src), str(tmp_path / "out.csv"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m benchmarks.cpu_heavy: ")
    assert message.replace("IN", str(src)) in err
    assert not (tmp_path / "out.csv").exists()
