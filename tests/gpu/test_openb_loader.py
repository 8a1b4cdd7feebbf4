"""The Alibaba GPU trace loaders: good lines become objects, bad lines name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.openb import OpenbError, gpu_capacity, load_openb_nodes, load_openb_pods, typical_pods
from scoring.plugins.gpu_state import GpuRequest, parse_gpu_request

NODES = """sn,cpu_milli,memory_mib,gpu,model
openb-node-0000,64000,262144,2,P100
openb-node-0001,96000,786432,8,G2
openb-node-0002,32000,131072,0,
"""
PODS_FULL = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
openb-pod-0000,12000,16384,1,1000,,LS,Running,0,12537496,0
openb-pod-0001,6000,12288,1,460,V100M16|V100M32,LS,Failed,427061,12902960,427061
openb-pod-0002,88000,327680,8,1000,,Burstable,Succeeded,9437497,10769854,9437497
openb-pod-0003,4000,8192,0,0,,BE,Pending,5,,
"""
PODS_FIVE = """name,cpu_milli,memory_mib,num_gpu,gpu_milli
p-0,8000,30517,1,470
p-1,16000,62500,2,1000
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_nodes(tmp_path: Path) -> None:
    nodes = load_openb_nodes(write(tmp_path, "nodes.csv", NODES))
    assert [n.name for n in nodes] == ["openb-node-0000", "openb-node-0001", "openb-node-0002"]
    assert nodes[0].allocatable == {"cpu": 64000, "memory": 262144 * 2**20, "pods": 110, "gpu": 2000}
    assert nodes[0].labels["vecsched.io/gpu-model"] == "P100"
    assert "vecsched.io/gpu-model" not in nodes[2].labels and "gpu" not in nodes[2].allocatable
    assert gpu_capacity(nodes) == 10_000


def test_pods_all_columns(tmp_path: Path) -> None:
    pods = load_openb_pods(write(tmp_path, "pods.csv", PODS_FULL))
    assert [parse_gpu_request(p) for p in pods] == [
        GpuRequest(1000, 1), GpuRequest(460, 1, frozenset({"V100M16", "V100M32"})), GpuRequest(1000, 8),
        GpuRequest(0, 0)]
    assert pods[1].annotations["vecsched.io/gpu-models"] == "V100M16,V100M32"
    # The trace's phase is kept aside; the pod itself is pending (a "Failed" pod would not count).
    assert pods[1].phase == "Pending" and pods[1].annotations["openb.vecsched.io/pod-phase"] == "Failed"
    assert pods[2].requests == {"cpu": 88000, "memory": 327680 * 2**20, "gpu": 8000}
    assert "gpu" not in pods[3].requests and pods[3].key == "openb/openb-pod-0003"


def test_pods_first_five_columns(tmp_path: Path) -> None:
    pods = load_openb_pods(write(tmp_path, "pods.csv", PODS_FIVE))
    assert [(parse_gpu_request(p).milli, parse_gpu_request(p).count) for p in pods] == [(470, 1), (1000, 2)]
    assert typical_pods(pods, threshold=100) == [
        {"milliCPU": 16000, "gpuMilli": 1000, "gpuCount": 2, "weight": 1},
        {"milliCPU": 8000, "gpuMilli": 470, "gpuCount": 1, "weight": 1}]


@pytest.mark.parametrize("text, where", [
    ("sn,cpu_milli,memory_mib,gpu\nn,1,1,1\n", ":1: model: missing column"),
    (NODES + "openb-node-0003,abc,1,1,T4\n", ":5: cpu_milli: expected an integer, got 'abc'"),
    (NODES + "openb-node-0003,1000,1,-2,T4\n", ":5: gpu: must be >= 0, got -2"),
    (NODES + "openb-node-0000,1000,1,1,T4\n", ":5: sn: duplicate node 'openb-node-0000'"),
    (NODES + "openb-node-0003,1000,1\n", ":5: expected 5 fields, got 3"),
    ("", ":1: empty file"),
], ids=["missing-column", "bad-integer", "negative-gpus", "duplicate", "short-line", "empty"])
def test_bad_node_lines(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, "nodes.csv", text)
    with pytest.raises(OpenbError) as e:
        load_openb_nodes(path)
    assert str(e.value).startswith(path) and where in str(e.value)


@pytest.mark.parametrize("line, where", [
    ("p-2,8000,100,1,1500", ":4: gpu_milli: must be 0..1000, got 1500"),
    ("p-2,8000,100,2,500", ":4: gpu_milli: a share of a GPU (500) is for one GPU, num_gpu is 2"),
    ("p-2,8000,100,0,300", ":4: gpu_milli: 300 milli-GPU on a pod with num_gpu 0"),
    ("p-2,8000,100,1,0", ":4: gpu_milli: 0 milli-GPU on a pod with num_gpu 1"),
    ("p-2,8k,100,1,100", ":4: cpu_milli: expected an integer, got '8k'"),
    ("p-0,8000,100,1,100", ":4: name: duplicate pod 'p-0'"),
    (",8000,100,1,100", ":4: name: required"),
], ids=["milli-above-1000", "shared-multi-gpu", "milli-without-gpu", "gpu-without-milli", "bad-cpu", "duplicate",
        "no-name"])
def test_bad_pod_lines(tmp_path: Path, line: str, where: str) -> None:
    path = write(tmp_path, "pods.csv", PODS_FIVE + line + "\n")
    with pytest.raises(OpenbError) as e:
        load_openb_pods(path)
    assert str(e.value).startswith(path) and where in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OpenbError, match="nope.csv"):
        load_openb_pods(str(tmp_path / "nope.csv"))
