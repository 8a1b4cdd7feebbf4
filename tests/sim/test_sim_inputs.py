"""Cluster and workload inputs: every format read as documented, and bad input
rejected with the file, the line or object, and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_helpers import GI, write

from benchmarks.sim.loaders import load_cluster, open_workload
from benchmarks.sim.model import SimInputError
from benchmarks.sim.sweep import prepare_pods, primary_resource
from benchmarks.sim.synthetic import generate, parse_synthetic

SHAPES = """\
# two shapes
- {count: 2, cpu: 4, memory: 8Gi}
- count: 1
  name: gpu
  cpu: "8"
  memory: 32Gi
  pods: 20
  resources: {nvidia.com/gpu: 4}
  labels: {pool: gpu}
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
"""


def test_cluster_shapes(tmp_path: Path) -> None:
    nodes = load_cluster(write(tmp_path / "c.yaml", SHAPES))
    assert [n.name for n in nodes] == ["node-00000", "node-00001", "gpu-00002"]
    assert nodes[0].allocatable == {"cpu": 4000, "memory": 8 * GI, "pods": 110}
    assert nodes[2].allocatable == {"cpu": 8000, "memory": 32 * GI, "pods": 20, "nvidia.com/gpu": 4}
    assert nodes[2].labels["pool"] == "gpu" and nodes[2].taints[0].key == "dedicated"


def test_cluster_node_list(tmp_path: Path) -> None:
    text = """\
apiVersion: v1
kind: List
items:
- kind: Node
  metadata: {name: a}
  status: {allocatable: {cpu: "2", memory: 4Gi, pods: "10"}}
"""
    nodes = load_cluster(write(tmp_path / "nodes.yaml", text))
    assert [(n.name, n.allocatable["cpu"]) for n in nodes] == [("a", 2000)]


def test_manifest_workload_timing(tmp_path: Path) -> None:
    text = """\
kind: Pod
metadata: {name: late, annotations: {vecsched.io/arrival-seconds: "30", vecsched.io/duration-seconds: "5"}}
spec: {containers: [{name: c, resources: {requests: {cpu: 100m, memory: 1Gi}}}]}
---
kind: Pod
metadata: {name: first}
spec: {containers: [{name: c, resources: {requests: {cpu: 1, memory: 1Gi}}}]}
---
kind: Pod
metadata: {name: second}
spec: {containers: [{name: c, resources: {requests: {cpu: 1, memory: 1Gi}}}]}
"""
    pods = open_workload(write(tmp_path / "w.yaml", text)).pods(seed=0)
    # no annotations: t=0 in file order, never leave; the annotated pod comes at 30 s for 5 s
    assert [(p.pod.name, p.arrival, p.duration) for p in pods] == [("first", 0, None), ("second", 0, None), ("late", 30, 5)]


def test_csv_workload(tmp_path: Path) -> None:
    text = "name,cpu,memory,arrival,departure,gpu\na,500m,1Gi,0,10,1\nb,2,2Gi,5,,\n"
    pods = open_workload(write(tmp_path / "w.csv", text)).pods(seed=0)
    assert [(p.pod.name, dict(p.pod.requests), p.arrival, p.duration) for p in pods] == [
        ("a", {"cpu": 500, "memory": GI, "nvidia.com/gpu": 1}, 0, 10),
        ("b", {"cpu": 2000, "memory": 2 * GI}, 5, None),
    ]


SYNTH = """\
kind: SyntheticWorkload
seed: 3
pods: 400
arrivals: {rate: 10}
durations: {distribution: exponential, mean: 60}
classes:
- {name: small, share: 0.75, cpu: [100m, 200m], memory: 256Mi}
- {name: big, share: 0.25, cpu: {uniform: [1, 2]}, memory: {choice: [1Gi, 2Gi], weights: [1, 0]},
   durations: {distribution: none}, priority: 5}
"""


def test_synthetic_workload(tmp_path: Path) -> None:
    source = open_workload(write(tmp_path / "s.yaml", SYNTH))
    pods = source.pods(seed=0)
    assert len(pods) == 400 and source.regenerated_per_seed
    assert pods == source.pods(seed=0)                      # same seed, same pods
    assert pods != source.pods(seed=1)                      # another seed draws again
    arrivals = [p.arrival for p in pods]
    assert arrivals == sorted(arrivals) and 20 < arrivals[-1] < 80  # Poisson, 10/s: ~40 s for 400 pods
    small = [p for p in pods if p.pod.name.startswith("small")]
    big = [p for p in pods if p.pod.name.startswith("big")]
    assert 0.65 < len(small) / 400 < 0.85
    assert {p.pod.requests["cpu"] for p in small} <= {100, 200} and {p.pod.requests["memory"] for p in small} == {256 * 2**20}
    assert all(1000 <= p.pod.requests["cpu"] <= 2000 and p.pod.requests["memory"] == GI for p in big)
    assert all(p.duration is None and p.pod.priority == 5 for p in big)   # the class overrides durations
    assert all(p.duration is not None and p.duration >= 0 for p in small)


@pytest.mark.parametrize(("name", "text", "message"), [
    pytest.param("c.yaml", "- {count: 2, cpu: 4}\n", "c.yaml: line 1 (shape 0): memory: required", id="shape-missing-field"),
    pytest.param("c.yaml", "- {count: 1, cpu: 4, memory: 8Gi}\n- {count: 1, cpu: 4x, memory: 8Gi}\n",
                 "c.yaml: line 2 (shape 1): cpu: invalid quantity '4x'", id="shape-bad-quantity"),
    pytest.param("c.yaml", "- {count: 1, cpus: 4, memory: 8Gi}\n", "c.yaml: line 1 (shape 0): cpus: unknown field",
                 id="shape-unknown-field"),
    pytest.param("c.yaml", "- {count: -1, cpu: 4, memory: 8Gi}\n", "c.yaml: line 1 (shape 0): count:", id="shape-negative-count"),
    pytest.param("c.yaml", "- {cpu: 4, memory: 8Gi, taints: [{key: k, effect: Never}]}\n",
                 "c.yaml: line 1 (shape 0): taints[0].effect: must be one of", id="shape-bad-taint"),
    pytest.param("n.yaml", "kind: List\nitems:\n- kind: Node\n  metadata: {name: a}\n  status: {allocatable: {cpu: lots}}\n",
                 "n.yaml: items[0]: node a: status.allocatable.cpu: invalid quantity 'lots'", id="node-list-bad-quantity"),
])
def test_bad_cluster(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(SimInputError) as e:
        load_cluster(write(tmp_path / name, text))
    assert message in str(e.value)


@pytest.mark.parametrize(("name", "text", "message"), [
    pytest.param("w.csv", "name,cpu,memory,arrival,departure\na,1,1Gi,10,4\n",
                 "w.csv: line 2: departure: must not be before arrival", id="csv-negative-duration"),
    pytest.param("w.csv", "name,cpu,memory,arrival,departure\na,1,1Gi,0,\nb,1,12Q,0,\n",
                 "w.csv: line 3: memory: invalid quantity '12Q'", id="csv-bad-quantity"),
    pytest.param("w.csv", "name,cpu,arrival,departure\na,1,0,\n", "w.csv: line 1: missing column 'memory'",
                 id="csv-missing-column"),
    pytest.param("w.csv", "name,cpu,memory,arrival,departure\na,1,1Gi,-3,\n", "w.csv: line 2: arrival: must not be negative",
                 id="csv-negative-arrival"),
    pytest.param("w.yaml", "kind: Pod\nmetadata: {name: p, annotations: {vecsched.io/duration-seconds: '-5'}}\nspec: {}\n",
                 "w.yaml: pod default/p: metadata.annotations.vecsched.io/duration-seconds: must not be negative",
                 id="manifest-negative-duration"),
    pytest.param("w.yaml", "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, resources: {requests: {cpu: x}}}]}\n",
                 "w.yaml: pod p: spec.containers[0].resources.requests.cpu: invalid quantity 'x'",
                 id="manifest-bad-quantity"),
    pytest.param("w.yaml", "kind: Node\nmetadata: {name: n}\n", "w.yaml: kind: expected Pod, got 'Node'", id="manifest-wrong-kind"),
    pytest.param("s.yaml", "kind: SyntheticWorkload\npods: 3\nclasses: [{share: 1, memory: 1Gi}]\n",
                 "s.yaml: classes[0].cpu: required", id="synthetic-missing-field"),
    pytest.param("s.yaml", "kind: SyntheticWorkload\npods: 3\ndurations: {distribution: exponential, mean: -2}\n"
                           "classes: [{share: 1, cpu: 1, memory: 1Gi}]\n",
                 "s.yaml: durations.mean: must be positive", id="synthetic-negative-duration"),
    pytest.param("s.yaml", "kind: SyntheticWorkload\npods: 3\nclasses: [{share: 1, cpu: [1, 2x], memory: 1Gi}]\n",
                 "s.yaml: classes[0].cpu.choice[1]: invalid quantity '2x'", id="synthetic-bad-quantity"),
    pytest.param("s.yaml", "kind: SyntheticWorkload\nclasses: [{share: 1, cpu: 1, memory: 1Gi}]\n",
                 "s.yaml: pods: required", id="synthetic-missing-pods"),
])
def test_bad_workload(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(SimInputError) as e:
        open_workload(write(tmp_path / name, text))
    assert message in str(e.value)


def test_openb_prefix_reads_through_the_trace_loader() -> None:
    # a missing trace file is a one-line ValueError naming the path, not a traceback
    with pytest.raises(ValueError, match="/nonexistent/x.csv: No such file or directory"):
        load_cluster("openb:/nonexistent/x.csv")


def test_empty_workload_files(tmp_path: Path) -> None:
    assert open_workload(write(tmp_path / "e.yaml", "")).pods(seed=0) == []
    assert open_workload(write(tmp_path / "l.yaml", "kind: List\nitems: []\n")).pods(seed=0) == []
    assert open_workload(write(tmp_path / "e.csv", "name,cpu,memory,arrival,departure\n")).pods(seed=0) == []


@pytest.mark.parametrize(("capacity", "requested", "expected"), [
    pytest.param({"cpu": 1, "memory": 1}, None, "cpu", id="no-gpu-cpu"),
    pytest.param({"cpu": 1, "memory": 1, "nvidia.com/gpu": 8}, None, "nvidia.com/gpu", id="gpu-cluster"),
    pytest.param({"cpu": 1, "memory": 1, "nvidia.com/gpu": 8}, "memory", "memory", id="chosen"),
])
def test_primary_resource(capacity: dict, requested: str | None, expected: str) -> None:
    assert primary_resource(capacity, requested) == expected


def test_inflate_clones_until_target(tmp_path: Path) -> None:
    # capacity 10 cpu; two 1-cpu pods; inflate 1.5 -> clones until 15 cpu have arrived: 13 clones.
    spec = parse_synthetic({"kind": "SyntheticWorkload", "pods": 2, "classes": [{"share": 1, "cpu": 1, "memory": "1Gi"}]},
                           source="s")
    pods = generate(spec)
    out = prepare_pods(pods, seed=4, inflate=1.5, primary="cpu", capacity={"cpu": 10_000})
    assert len(out) == 15 and sum(p.pod.requests["cpu"] for p in out) == 15_000
    assert len({p.pod.key for p in out}) == 15                      # clones get their own names
    assert out == prepare_pods(pods, seed=4, inflate=1.5, primary="cpu", capacity={"cpu": 10_000})
    with pytest.raises(SimInputError, match="no pod of the workload requests nvidia.com/gpu"):
        prepare_pods(pods, seed=0, inflate=1.3, primary="nvidia.com/gpu", capacity={"nvidia.com/gpu": 8})


def test_shuffle_reorders_only_equal_arrivals() -> None:
    spec = parse_synthetic({"kind": "SyntheticWorkload", "pods": 50, "classes": [{"share": 1, "cpu": 1, "memory": "1Gi"}]},
                           source="s")
    pods = generate(spec)                                            # all at t=0
    assert prepare_pods(pods, seed=0, inflate=None, primary="cpu", capacity={}) == pods   # file order
    assert prepare_pods(pods, seed=1, inflate=None, primary="cpu", capacity={}) == pods   # for every seed
    shuffled = prepare_pods(pods, seed=1, inflate=None, primary="cpu", capacity={}, shuffle=True)
    assert shuffled != pods and sorted(p.pod.name for p in shuffled) == sorted(p.pod.name for p in pods)
