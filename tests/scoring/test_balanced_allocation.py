"""NodeResourcesBalancedAllocation: the cases of balanced_allocation_test.go
(TestNodeResourcesBalancedAllocation, without the DRA-backed ones), each also
checked against the per-node reference. Nodes are test_util.go's
makeNode(name, milliCPU, memory, extended)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from benchmarks.reference import RefCluster, RefNode
from benchmarks.reference.resources import balanced_allocation as ref_balanced
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import balanced_allocation
from scoring.plugins.resource_scoring import balanced_allocation as balanced_scores
from scoring.table import NodeTable
from tests.explain_support import explain_scores

GPU = "nvidia.com/gpu"
_names = itertools.count()


def _pod(*containers: dict[str, str], node: str = "") -> PodInfo:
    spec = {"nodeName": node, "containers": [{"name": f"c{i}", "resources": {"requests": r}} for i, r in enumerate(containers)]}
    return pod_from_json({"metadata": {"name": f"pod{next(_names)}", "namespace": "ns"}, "spec": spec})


# The test's pod specs: cpuOnly 1000m + 2000m cpu, memory "0" set explicitly;
# cpuAndMemory 3000m cpu, 5000 memory; cpuAndMemoryAndGPU adds 3 GPUs.
def cpu_only(node: str = "") -> PodInfo:
    return _pod({"cpu": "1000m", "memory": "0"}, {"cpu": "2000m", "memory": "0"}, node=node)


def cpu_and_memory(node: str = "") -> PodInfo:
    return _pod({"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000"}, node=node)


def cpu_and_memory_and_gpu(node: str = "") -> PodInfo:
    return _pod({"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000", GPU: "3"}, node=node)


def _make_node(name: str, milli_cpu: int, memory: int, extended: dict[str, int] | None = None) -> NodeInfo:
    alloc = {"cpu": f"{milli_cpu}m", "memory": str(memory), "pods": "100"}
    alloc.update({k: str(v) for k, v in (extended or {}).items()})
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": alloc}})


def _scores(args: dict[str, Any], nodes: list[NodeInfo], existing: list[PodInfo], pod: PodInfo) -> list[int] | None:
    plugin = balanced_allocation.new(args, "")
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    for p in existing:
        table.add_pod(p, p.node_name)
    rows = np.array([table.index[n.name] for n in nodes], np.intp)
    out = plugin.score(pod, table, rows, {})
    got = None if out is None else [int(s) for s in out]
    cluster = RefCluster([RefNode(n, [p for p in existing if p.node_name == n.name]) for n in nodes])
    ref = ref_balanced(args)
    assert ref.skip is not None and ref.score is not None
    want = None if ref.skip(pod, cluster) else [ref.score(pod, rn, cluster) for rn in cluster.nodes]
    assert got == want, "vectorised != reference"
    shown = explain_scores(nodes=nodes, existing=[(p, p.node_name) for p in existing], pod=pod,
                           plugin=balanced_allocation.NAME, args=args)
    assert [shown[n.name] for n in nodes] == (got if got is not None else [0] * len(nodes)), "vecsched explain != plugin"
    return got


CPU_MEMORY_GPU = {"resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}, {"name": GPU, "weight": 1}]}
SCALAR = {GPU: 8}

BALANCED = [
    # a best-effort pod requests none of cpu, memory: PreScore Skip
    pytest.param({}, [_make_node("node1", 4000, 10000), _make_node("node2", 4000, 10000)], [], _pod(), None,
                 id="nothing scheduled, nothing requested, skip in PreScore"),
    # node1 cpu 3000/4000 = .75, memory 5000/10000 = .5 -> std (.75-.5)/2 = .125 -> (1-.125)*100 = 87
    # node2 cpu 3000/6000 = .5, memory .5 -> std 0 -> 100
    pytest.param({}, [_make_node("node1", 4000, 10000), _make_node("node2", 6000, 10000)], [], cpu_and_memory(), [87, 100],
                 id="nothing scheduled, resources requested, differently sized nodes"),
    # node1 cpu 6000/10000 = .6, memory 5000/20000 = .25 -> std .175 -> 82
    # node2 cpu .6, memory 10000/20000 = .5 -> std .05 -> 95
    pytest.param({}, [_make_node("node1", 10000, 20000), _make_node("node2", 10000, 20000)],
                 [cpu_only("node1"), cpu_and_memory("node2")], cpu_and_memory(), [82, 95],
                 id="resources requested, pods scheduled with resources"),
    # node1 82 as above; node2 cpu .6, memory 10000/50000 = .2 -> std .2 -> 80
    pytest.param({}, [_make_node("node1", 10000, 20000), _make_node("node2", 10000, 50000)],
                 [cpu_only("node1"), cpu_and_memory("node2")], cpu_and_memory(), [82, 80],
                 id="resources requested, pods scheduled with resources, differently sized nodes"),
    # node1 cpu 6000/6000 = 1, memory 0 -> std .5 -> 50; node2 cpu 1, memory 5000/10000 = .5 -> std .25 -> 75
    pytest.param({}, [_make_node("node1", 6000, 10000), _make_node("node2", 6000, 10000)],
                 [cpu_only("node1"), cpu_and_memory("node2")], cpu_only(), [50, 75],
                 id="requested resources at node capacity"),
    # the pod requests memory 0 and 1 GPU (cpu 0 still counts: it is not a scalar resource)
    # node1 cpu 3000/3500 = .857, memory 5000/40000 = .125, gpu (3+1)/8 = .5 -> mean .494, std .2989 -> 70
    # node2 cpu .857, memory .125, gpu 1/8 = .125 -> mean .369, std .345 -> 65
    pytest.param(CPU_MEMORY_GPU, [_make_node("node1", 3500, 40000, SCALAR), _make_node("node2", 3500, 40000, SCALAR)],
                 [cpu_and_memory("node2"), cpu_and_memory_and_gpu("node1")], _pod({"memory": "0", GPU: "1"}), [70, 65],
                 id="include scalar resource on a node for balanced resource allocation"),
    # the pod requests no GPU, so the GPU is skipped: cpu 3000/3500 = .857, memory .125 -> std .366 -> 63 for both
    pytest.param(CPU_MEMORY_GPU, [_make_node("node1", 3500, 40000, SCALAR), _make_node("node2", 3500, 40000)],
                 [], cpu_and_memory(), [63, 63], id="node without the scalar resource should skip the scalar resource"),
]


@pytest.mark.parametrize(("args", "nodes", "existing", "pod", "want"), BALANCED)
def test_balanced_allocation(args: dict[str, Any], nodes: list[NodeInfo], existing: list[PodInfo], pod: PodInfo,
                             want: list[int] | None) -> None:
    assert _scores(args, nodes, existing, pod) == want


def test_balanced_uses_plain_requests() -> None:
    """vecsched: unlike NodeResourcesFit's scoring, no non-zero defaults. An existing pod
    without requests adds nothing: cpu 1000/4000 = .25, memory 1Gi/4Gi = .25 -> 100."""
    nodes = [_make_node("n", 4000, 4 * 2**30)]
    existing = [_pod({}, node="n"), _pod({}, node="n")]
    assert _scores({}, nodes, existing, _pod({"cpu": "1", "memory": "1Gi"})) == [100]


@pytest.mark.parametrize(
    ("alloc", "req", "want"),
    [
        # one fraction: std 0 -> 100
        pytest.param([[10, 0, 0]], [[5, 0, 0]], [100], id="one resource"),
        # none: std 0 -> 100
        pytest.param([[0, 0]], [[0, 0]], [100], id="no resource"),
        # fractions capped at 1: (1 - |1 - 0|/2) * 100 = 50
        pytest.param([[10, 10]], [[30, 0]], [50], id="capped at one"),
        # skipped middle column: the first and second *present* fractions, .5 and .25 -> 87
        pytest.param([[4, 0, 4]], [[2, 0, 1]], [87], id="two of three present"),
    ],
)
def test_balanced_formula(alloc: list[list[int]], req: list[list[int]], want: list[int]) -> None:
    """vecsched: the vectorised formula on hand-made matrices."""
    got = balanced_scores(np.array(alloc, np.int64), np.array(req, np.int64))
    assert got.tolist() == want
