"""NodeResourcesFit's Score: the cases of least_allocated_test.go,
most_allocated_test.go, requested_to_capacity_ratio_test.go (with
TestBrokenLinearFunction and the bin-packing tables), fit_test.go's TestFitScore
and resource_allocation_test.go's request and allocatable calculations. Every
case is also checked against the per-node reference.

Upstream's tests build nodes with ``st.MakeNode().Capacity({"cpu": "4000"})``:
4000 *cores*, not millicores; only ratios matter. Their ``st.MakePod()`` has no
containers, so it requests nothing, not even the non-zero defaults.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from benchmarks.reference import RefCluster, RefNode
from benchmarks.reference.resources import fit as ref_fit
from scoring.objects import DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import node_resources_fit
from scoring.plugins.resource_scoring import allocation_matrices, broken_linear, pod_request_list
from scoring.table import NodeTable
from tests.explain_support import explain_scores

EXT = "abc.com/xyz"
FOO = "intel.com/foo"
BAR = "intel.com/bar"
MI = 2**20
_names = itertools.count()


def _pod(*requests: dict[str, str], node: str = "", sidecars: tuple[dict[str, str], ...] = (),
         bare_containers: int = 0) -> PodInfo:
    """st.MakePod(): .Req(r) adds a container requesting r, .SidecarReq(r) a restartable
    init container, .Container(name) a container without requests."""
    containers = [{"name": f"c{i}", "resources": {"requests": r}} for i, r in enumerate(requests)]
    containers += [{"name": f"bare{i}"} for i in range(bare_containers)]
    inits = [{"name": f"s{i}", "restartPolicy": "Always", "resources": {"requests": r}} for i, r in enumerate(sidecars)]
    return pod_from_json({"metadata": {"name": f"pod{next(_names)}", "namespace": "ns"},
                          "spec": {"nodeName": node, "containers": containers, "initContainers": inits}})


def _cap_node(name: str, **capacity: str) -> NodeInfo:
    """st.MakeNode().Name(name).Capacity(...): the given resources plus 32 pods."""
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": {"pods": "32", **capacity}}})


def _ext_node(name: str, capacity: dict[str, str]) -> NodeInfo:
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": capacity}})


def _make_node(name: str, milli_cpu: int, memory: int, extended: dict[str, int] | None = None) -> NodeInfo:
    """test_util.go's makeNode(name, milliCPU, memory, extendedResource)."""
    alloc = {"cpu": f"{milli_cpu}m", "memory": str(memory), "pods": "100"}
    alloc.update({k: str(v) for k, v in (extended or {}).items()})
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": alloc}})


def _scores(args: dict[str, Any], nodes: list[NodeInfo], existing: list[PodInfo], pod: PodInfo) -> list[int]:
    plugin = node_resources_fit.new(args, "")
    table = NodeTable()
    for n in nodes:
        table.set_node(n)
    for p in existing:
        table.add_pod(p, p.node_name)
    rows = np.array([table.index[n.name] for n in nodes], np.intp)
    got = [int(s) for s in plugin.score(pod, table, rows, {})]
    cluster = RefCluster([RefNode(n, [p for p in existing if p.node_name == n.name]) for n in nodes])
    ref = ref_fit(args)
    assert ref.score is not None
    assert got == [ref.score(pod, rn, cluster) for rn in cluster.nodes], "vectorised != reference"
    shown = explain_scores(nodes=nodes, existing=[(p, p.node_name) for p in existing], pod=pod,
                           plugin=node_resources_fit.NAME, args=args)
    assert [shown[n.name] for n in nodes] == got, "vecsched explain != plugin"
    return got


def _strategy(type_: str, resources: list[dict[str, Any]] | None = None, shape: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"type": type_}
    if resources is not None:
        s["resources"] = resources
    if shape is not None:
        s["requestedToCapacityRatio"] = {"shape": [{"utilization": u, "score": sc} for u, sc in shape]}
    return {"scoringStrategy": s}


DEFAULT = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
EXTENDED_SET = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}, {"name": EXT, "weight": 1}]
R12 = ({"cpu": "1000", "memory": "2000"}, {"cpu": "2000", "memory": "3000"})  # 3000 cpu, 5000 memory


def _n(name: str, cpu: str, mem: str, **extra: str) -> NodeInfo:
    return _cap_node(name, cpu=cpu, memory=mem, **extra)


LEAST_ALLOCATED = [
    # no containers, nothing on the nodes: cpu (4000-0)*100/4000 = 100, memory 100 -> 100 for both
    pytest.param(DEFAULT, [_n("node1", "4000", "10000"), _n("node2", "4000", "10000")], [], _pod(), [100, 100],
                 id="nothing scheduled, nothing requested"),
    # node1 cpu (4000-3000)*100/4000 = 25, memory (10000-5000)*100/10000 = 50 -> (25+50)/2 = 37
    # node2 cpu (6000-3000)*100/6000 = 50, memory 50 -> 50
    pytest.param(DEFAULT, [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")], [], _pod(*R12), [37, 50],
                 id="nothing scheduled, resources requested, differently sized nodes"),
    # upstream's internal config with no resources is an error; the v1 config defaults them to
    # cpu and memory, so this is the case above: 37, 50
    pytest.param(None, [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")], [], _pod(*R12), [37, 50],
                 id="Resources not set, pods scheduled with error"),
    # pods without containers request nothing: 100 everywhere
    pytest.param(DEFAULT, [_n("node1", "4000", "10000"), _n("node2", "4000", "10000")],
                 [_pod(node="node1"), _pod(node="node1"), _pod(node="node2"), _pod(node="node2")], _pod(), [100, 100],
                 id="no resources requested, pods scheduled"),
    # node1 cpu (10000-6000)*100/10000 = 40, memory (20000-0)*100/20000 = 100 -> 70
    # node2 cpu 40, memory (20000-5000)*100/20000 = 75 -> (40+75)/2 = 57
    pytest.param(DEFAULT, [_n("node1", "10000", "20000"), _n("node2", "10000", "20000")],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "0"}, node="node1"),
                  _pod({"cpu": "3000", "memory": "0"}, node="node2"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(), [70, 57], id="no resources requested, pods scheduled with resources"),
    # node1 cpu (10000-6000)*100/10000 = 40, memory (20000-5000)*100/20000 = 75 -> 57
    # node2 cpu 40, memory (20000-10000)*100/20000 = 50 -> 45
    pytest.param(DEFAULT, [_n("node1", "10000", "20000"), _n("node2", "10000", "20000")],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(*R12), [57, 45], id="resources requested, pods scheduled with resources"),
    # node1 57 as above; node2 cpu 40, memory (50000-10000)*100/50000 = 80 -> 60
    pytest.param(DEFAULT, [_n("node1", "10000", "20000"), _n("node2", "10000", "50000")],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(*R12), [57, 60], id="resources requested, pods scheduled with resources, differently sized nodes"),
    # cpu 3000 + 3000 > 4000 -> 0; node1 memory 100 -> 50; node2 memory (10000-5000)*100/10000 = 50 -> 25
    pytest.param(DEFAULT, [_n("node1", "4000", "10000"), _n("node2", "4000", "10000")],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod({"cpu": "3000", "memory": "0"}), [50, 25], id="requested resources exceed node capacity"),
    # no allocatable at all: every resource skipped, weight sum 0 -> 0
    pytest.param(DEFAULT, [_ext_node("node1", {}), _ext_node("node2", {})],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(), [0, 0], id="zero node resources, pods scheduled with resources"),
    # node1 cpu 25, memory 50 -> (25*1 + 50*2)/(1+2) = 41; node2 cpu 50, memory 50 -> 50
    pytest.param([{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}],
                 [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")], [], _pod(*R12, node="node1"), [41, 50],
                 id="nothing scheduled, resources requested with different weight on CPU and memory, differently sized nodes"),
    # the pod does not request abc.com/xyz, so it is skipped: cpu (6000-3000)/6000 = 50, memory 50 -> 50, 50
    pytest.param(EXTENDED_SET, [_n("node1", "6000", "10000"), _n("node2", "6000", "10000", **{EXT: "4"})], [],
                 _pod(*R12, node="node1"), [50, 50], id="bypass extended resource if the pod does not request"),
    # cpu 50, memory 50; abc.com/xyz node1 (4-2)*100/4 = 50, node2 (10-2)*100/10 = 80
    # -> node1 (50+50+50)/3 = 50, node2 (50+50+80)/3 = 60
    pytest.param(EXTENDED_SET, [_n("node1", "6000", "10000", **{EXT: "4"}), _n("node2", "6000", "10000", **{EXT: "10"})],
                 [], _pod({"cpu": "3000", "memory": "5000", EXT: "2"}, node="node1"), [50, 60],
                 id="honor extended resource if the pod requests"),
    # the pod requests no abc.com/xyz: skipped on both nodes; cpu (6000-3000)/6000 = 50,
    # memory (10000-4000)/10000 = 60 -> (50+60)/2 = 55
    pytest.param([{"name": EXT, "weight": 2}, {"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
                 [_n("node1", "6000", "10000"), _n("node2", "6000", "10000", **{EXT: "4"})], [],
                 _pod({"cpu": "3000", "memory": "4000"}, node="node1"), [55, 55], id="if the node doesn't have a resource"),
]


@pytest.mark.parametrize(("resources", "nodes", "existing", "pod", "want"), LEAST_ALLOCATED)
def test_least_allocated(resources: list[dict[str, Any]] | None, nodes: list[NodeInfo], existing: list[PodInfo],
                         pod: PodInfo, want: list[int]) -> None:
    assert _scores(_strategy("LeastAllocated", resources), nodes, existing, pod) == want


MOST_ALLOCATED = [
    # nothing requested anywhere: 0 for both
    pytest.param(DEFAULT, [_n("node1", "4000", "10000"), _n("node2", "4000", "10000")], [], _pod(), [0, 0],
                 id="nothing scheduled, nothing requested"),
    # node1 cpu 3000*100/4000 = 75, memory 5000*100/10000 = 50 -> 62; node2 cpu 3000*100/6000 = 50, memory 50 -> 50
    pytest.param(DEFAULT, [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")], [], _pod(*R12), [62, 50],
                 id="nothing scheduled, resources requested, differently sized nodes"),
    # v1 defaults the missing resources to cpu and memory: as above, 62, 50
    pytest.param(None, [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")], [], _pod(*R12), [62, 50],
                 id="Resources not set, pods scheduled with error"),
    # node1 cpu 6000*100/10000 = 60, memory 0 -> 30; node2 cpu 60, memory 5000*100/20000 = 25 -> 42
    pytest.param(DEFAULT, [_n("node1", "10000", "20000"), _n("node2", "10000", "20000")],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "0"}, node="node1"),
                  _pod({"cpu": "3000", "memory": "0"}, node="node2"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(), [30, 42], id="no resources requested, pods scheduled with resources"),
    # node1 cpu 60, memory 5000*100/20000 = 25 -> 42; node2 cpu 60, memory 10000*100/20000 = 50 -> 55
    pytest.param(DEFAULT, [_n("node1", "10000", "20000"), _n("node2", "10000", "20000")],
                 [_pod({"cpu": "3000", "memory": "0"}, node="node1"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(*R12), [42, 55], id="resources requested, pods scheduled with resources"),
    # node1 cpu 5000*100/5000 = 100, memory 9000*100/10000 = 90 -> 95
    # node2 cpu 5000*100/10000 = 50, memory 9000*100/9000 = 100 -> 75
    pytest.param(DEFAULT, [_n("node1", "5000", "10000"), _n("node2", "10000", "9000")], [],
                 _pod({"cpu": "2000", "memory": "4000"}, {"cpu": "3000", "memory": "5000"}), [95, 75],
                 id="resources requested equal node capacity"),
    # upstream repeats the name above for the weighted case (memory 2, cpu 1):
    # node1 (75*1 + 50*2)/3 = 58; node2 (50*1 + 50*2)/3 = 50
    pytest.param([{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}],
                 [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")], [], _pod(*R12), [58, 50],
                 id="nothing scheduled, resources requested, differently sized nodes (weighted)"),
    # containers without requests count 100m / 200Mi: node1 cpu 300m > 250m -> 100, memory 600Mi*100/1000Mi = 60
    # -> 80; node2 cpu 100*100/250 = 40, memory 200*100/1000 = 20 -> 30
    pytest.param(DEFAULT, [_n("node1", "250m", "1000Mi"), _n("node2", "250m", "1000Mi")],
                 [_pod(node="node1", bare_containers=1), _pod(node="node1", bare_containers=1)],
                 _pod(bare_containers=1), [80, 30], id="no resources requested, pods scheduled, nonzero request for resource"),
    # abc.com/xyz not requested: skipped; cpu 3000*100/6000 = 50, memory 50 -> 50, 50
    pytest.param(EXTENDED_SET, [_n("node1", "6000", "10000"), _n("node2", "6000", "10000", **{EXT: "4"})], [],
                 _pod(*R12), [50, 50], id="bypass extended resource if the pod does not request"),
    # abc.com/xyz node1 2*100/4 = 50, node2 2*100/10 = 20 -> (50+50+50)/3 = 50, (50+50+20)/3 = 40
    pytest.param(EXTENDED_SET, [_n("node1", "6000", "10000", **{EXT: "4"}), _n("node2", "6000", "10000", **{EXT: "10"})],
                 [], _pod({"cpu": "3000", "memory": "5000", EXT: "2"}, node="node1"), [50, 40],
                 id="honor extended resource if the pod request"),
    # cpu 3000*100/6000 = 50, memory 4000*100/10000 = 40 -> 45 on both (abc.com/xyz not requested)
    pytest.param([{"name": EXT, "weight": 2}, {"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
                 [_n("node1", "6000", "10000"), _n("node2", "6000", "10000", **{EXT: "4"})], [],
                 _pod({"cpu": "3000", "memory": "4000"}, node="node1"), [45, 45], id="if the node doesn't have a resource"),
]


@pytest.mark.parametrize(("resources", "nodes", "existing", "pod", "want"), MOST_ALLOCATED)
def test_most_allocated(resources: list[dict[str, Any]] | None, nodes: list[NodeInfo], existing: list[PodInfo],
                        pod: PodInfo, want: list[int]) -> None:
    assert _scores(_strategy("MostAllocated", resources), nodes, existing, pod) == want


FALLING = [(0, 10), (100, 0)]   # x10: 100 at 0% falling to 0 at 100%
RISING = [(0, 0), (100, 10)]    # x10: 0 at 0% rising to 100 at 100%
BIN_PACKING = [(0, 0), (100, 1)]  # x10: 0 at 0% rising to 10 at 100%
FOO1 = [{"name": FOO, "weight": 1}]
FOO3_BAR5 = [{"name": FOO, "weight": 3}, {"name": BAR, "weight": 5}]
SINGLE = [_make_node("node1", 4000, 10000 * MI, {FOO: 8}), _make_node("node2", 4000, 10000 * MI, {FOO: 4})]
MULTI = [_make_node("node1", 4000, 10000 * MI, {FOO: 8, BAR: 4}), _make_node("node2", 4000, 10000 * MI, {FOO: 4, BAR: 8})]
RATIO = [
    # requested_to_capacity_ratio_test.go, TestRequestedToCapacityRatioScoringStrategy.
    # nothing requested: utilization 0 -> f(0) = 100 on cpu and memory -> 100
    pytest.param(DEFAULT, FALLING, [_n("node1", "4000", "10000"), _n("node2", "4000", "10000")],
                 [_pod(node="node1"), _pod(node="node1")], _pod(), [100, 100],
                 id="nothing scheduled, nothing requested (default - least requested nodes have priority)"),
    # node1 cpu 3000*100/4000 = 75 -> 100 + (0-100)*75/100 = 25, memory 50 -> 50: round((25+50)/2 = 37.5) = 38
    # node2 cpu 3000*100/6000 = 50 -> 50, memory 50 -> 50: 50
    pytest.param(DEFAULT, FALLING, [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")],
                 [_pod(node="node1"), _pod(node="node1")], _pod(*R12), [38, 50],
                 id="nothing scheduled, resources requested, differently sized nodes (default - least requested nodes have priority)"),
    # the same utilizations, from pods already on the nodes: 38, 50
    pytest.param(DEFAULT, FALLING, [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")],
                 [_pod({"cpu": "3000", "memory": "5000"}, node="node1"), _pod({"cpu": "3000", "memory": "5000"}, node="node2")],
                 _pod(), [38, 50],
                 id="no resources requested, pods scheduled with resources (default - least requested nodes have priority)"),
    # TestResourceBinPackingSingleExtended: intel.com/foo (weight 1), f(p) = 10 * p / 100.
    # foo not requested: skipped on both nodes, weight sum 0 -> 0
    pytest.param(FOO1, BIN_PACKING, SINGLE, [], _pod(), [0, 0], id="single: nothing scheduled, nothing requested"),
    # node1 2*100/8 = 25 -> 10*25/100 = 2; node2 2*100/4 = 50 -> 5
    pytest.param(FOO1, BIN_PACKING, SINGLE, [], _pod({FOO: "2"}), [2, 5],
                 id="single: resources requested, pods scheduled with less resources"),
    # node1 2; node2 (2+2)*100/4 = 100 -> 10
    pytest.param(FOO1, BIN_PACKING, SINGLE, [_pod({FOO: "2"}, node="node2")], _pod({FOO: "2"}), [2, 10],
                 id="single: resources requested, pods scheduled with resources, on node with existing pod running "),
    # node1 4*100/8 = 50 -> 5; node2 4*100/4 = 100 -> 10
    pytest.param(FOO1, BIN_PACKING, SINGLE, [], _pod({FOO: "4"}), [5, 10],
                 id="single: resources requested, pods scheduled with more resources"),
    # TestResourceBinPackingMultipleExtended: foo weight 3, bar weight 5.
    pytest.param(FOO3_BAR5, BIN_PACKING, MULTI, [], _pod(), [0, 0], id="multiple: nothing scheduled, nothing requested"),
    # node1 foo 2/8 -> 2, bar 2/4 -> 5: round((2*3 + 5*5)/8 = 3.875) = 4
    # node2 foo 2/4 -> 5, bar 2/8 -> 2: round((5*3 + 2*5)/8 = 3.125) = 3
    pytest.param(FOO3_BAR5, BIN_PACKING, MULTI, [], _pod({FOO: "2", BAR: "2"}), [4, 3],
                 id="multiple: resources requested, pods scheduled with less resources"),
    # node1 4; node2 foo (4+2)/4 > 1 -> f(100) = 10, bar (2+2)/8 -> 5: round((10*3 + 5*5)/8 = 6.875) = 7
    pytest.param(FOO3_BAR5, BIN_PACKING, MULTI, [_pod({FOO: "4", BAR: "2"}, node="node2")], _pod({FOO: "2", BAR: "2"}),
                 [4, 7], id="multiple: resources requested, pods scheduled with resources, on node with existing pod running "),
    # node1 foo 4/8 -> 5, bar 2/4 -> 5: 40/8 = 5; node2 foo 4/4 -> 10, bar 2/8 -> 2: (30 + 10)/8 = 5
    pytest.param(FOO3_BAR5, BIN_PACKING, MULTI, [], _pod({FOO: "4", BAR: "2"}), [5, 5],
                 id="multiple: resources requested, pods scheduled with more resources"),
]


@pytest.mark.parametrize(("resources", "shape", "nodes", "existing", "pod", "want"), RATIO)
def test_requested_to_capacity_ratio(resources: list[dict[str, Any]], shape: list[tuple[int, int]], nodes: list[NodeInfo],
                                     existing: list[PodInfo], pod: PodInfo, want: list[int]) -> None:
    assert _scores(_strategy("RequestedToCapacityRatio", resources, shape), nodes, existing, pod) == want


FIT_NODES = [_n("node1", "4000", "10000"), _n("node2", "6000", "10000")]
SAME_NODES = [_n("node1", "4000", "10000"), _n("node2", "4000", "10000")]


def _fit_existing() -> list[PodInfo]:
    return [_pod({"cpu": "2000", "memory": "4000"}, node="node1"), _pod({"cpu": "1000", "memory": "2000"}, node="node2")]


def _sidecar_existing() -> list[PodInfo]:
    return [_pod({"cpu": "1000", "memory": "2000"}, node="node1", sidecars=({"cpu": "1000", "memory": "2000"},)),
            _pod({"cpu": "1000", "memory": "2000"}, node="node2")]


FIT_SCORE = [
    # node1 cpu 5000 > 4000 -> f(100) = 0, not counted; memory 9000*100/10000 = 90 -> 10: 10/1 = 10
    # node2 cpu 4000*100/6000 = 66 -> 34, memory 70 -> 30: (34+30)/2 = 32
    pytest.param(_strategy("RequestedToCapacityRatio", DEFAULT, FALLING), FIT_NODES, _fit_existing(),
                 _pod({"cpu": "3000", "memory": "5000"}), [10, 32],
                 id="test case for ScoringStrategy RequestedToCapacityRatio case1"),
    # node1 cpu f(100) = 100, memory 90: 95; node2 66 and 70: 68
    pytest.param(_strategy("RequestedToCapacityRatio", DEFAULT, RISING), FIT_NODES, _fit_existing(),
                 _pod({"cpu": "3000", "memory": "5000"}), [95, 68],
                 id="test case for ScoringStrategy RequestedToCapacityRatio case2"),
    # node1 cpu 3000*100/4000 = 75, memory 6000*100/10000 = 60: 67; node2 2000*100/6000 = 33, 40: 36
    pytest.param(_strategy("MostAllocated", DEFAULT), FIT_NODES, _fit_existing(), _pod({"cpu": "1000", "memory": "2000"}),
                 [67, 36], id="test case for ScoringStrategy MostAllocated"),
    # node1 cpu 25, memory 40: 32; node2 cpu (6000-2000)*100/6000 = 66, memory 60: 63
    pytest.param(_strategy("LeastAllocated", DEFAULT), FIT_NODES, _fit_existing(), _pod({"cpu": "1000", "memory": "2000"}),
                 [32, 63], id="test case for ScoringStrategy LeastAllocated"),
    # the sidecar adds to node1's requests: cpu 1000+1000+1000 = 3000/4000 -> 75, memory 6000/10000 -> 60: 67
    # node2 cpu 2000/4000 -> 50, memory 4000/10000 -> 40: 45
    pytest.param(_strategy("MostAllocated", DEFAULT), SAME_NODES, _sidecar_existing(),
                 _pod({"cpu": "1000", "memory": "2000"}), [67, 45],
                 id="test case for ScoringStrategy MostAllocated with sidecar container"),
    # node1 cpu 25, memory 40: 32; node2 cpu 50, memory 60: 55
    pytest.param(_strategy("LeastAllocated", DEFAULT), SAME_NODES, _sidecar_existing(),
                 _pod({"cpu": "1000", "memory": "2000"}), [32, 55],
                 id="test case for ScoringStrategy LeastAllocated with sidecar container"),
]


@pytest.mark.parametrize(("args", "nodes", "existing", "pod", "want"), FIT_SCORE)
def test_fit_score(args: dict[str, Any], nodes: list[NodeInfo], existing: list[PodInfo], pod: PodInfo,
                   want: list[int]) -> None:
    assert _scores(args, nodes, existing, pod) == want


def test_default_args_score_least_allocated() -> None:
    """No args at all: LeastAllocated over cpu and memory (v1 defaults)."""
    assert _scores({}, FIT_NODES, _fit_existing(), _pod({"cpu": "1000", "memory": "2000"})) == [32, 63]


BROKEN_LINEAR = [
    # (points, [(p, expected)]) as in TestBrokenLinearFunction, including p outside 0..100
    pytest.param([(10, 1), (90, 9)],
                 [(-10, 1), (0, 1), (9, 1), (10, 1), (15, 1), (19, 1), (20, 2), (89, 8), (90, 9), (99, 9), (100, 9), (110, 9)],
                 id="case_0"),
    pytest.param([(0, 2), (40, 10), (100, 0)],
                 [(-10, 2), (0, 2), (20, 6), (30, 8), (40, 10), (70, 5), (100, 0), (110, 0)], id="case_1"),
    pytest.param([(0, 2), (40, 2), (100, 2)],
                 [(-10, 2), (0, 2), (20, 2), (30, 2), (40, 2), (70, 2), (100, 2), (110, 2)], id="case_2"),
]


@pytest.mark.parametrize(("points", "assertions"), BROKEN_LINEAR)
def test_broken_linear_function(points: list[tuple[int, int]], assertions: list[tuple[int, int]]) -> None:
    assert [broken_linear(points, p) for p, _ in assertions] == [e for _, e in assertions]


def test_broken_linear_truncates_toward_zero() -> None:
    """vecsched: a falling segment divides a negative product; Go truncates toward zero.
    x10 shape (0, 100) -> (30, 30): f(10) = 100 + (30-100)*(10-0)/30 = 100 + trunc(-23.3) = 77 (not 76)."""
    assert _scores(_strategy("RequestedToCapacityRatio", [{"name": "cpu", "weight": 1}], [(0, 10), (30, 3)]),
                   [_make_node("n", 1000, 0)], [], _pod({"cpu": "100m"})) == [77]


GI = 2**30
CALCULATE_REQUESTS = [
    # resource_allocation_test.go, TestResourceAllocationScorerCalculateRequests (non-zero requests)
    pytest.param({"overhead": {"cpu": "1", "memory": "1Mi"}}, 1000, MI, id="overhead only"),
    pytest.param({"containers": [{"name": "a"}]}, DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST,
                 id="1x requestless container"),
    # once per container without a request: 2 x 100m, 2 x 200Mi
    pytest.param({"containers": [{"name": "a"}, {"name": "b"}]}, 2 * DEFAULT_MILLI_CPU_REQUEST, 2 * DEFAULT_MEMORY_REQUEST,
                 id="2x requestless container"),
    pytest.param({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}, {"name": "b"}]},
                 1000 + DEFAULT_MILLI_CPU_REQUEST, MI + DEFAULT_MEMORY_REQUEST, id="request container + requestless container"),
    # 1000 + 100 + overhead 1000; 1Mi + 200Mi + 1Mi
    pytest.param({"overhead": {"cpu": "1", "memory": "1Mi"},
                  "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}, {"name": "b"}]},
                 2000 + DEFAULT_MILLI_CPU_REQUEST, 2 * MI + DEFAULT_MEMORY_REQUEST,
                 id="container + requestless container + overhead"),
    # cpu max(1000 + 100, 3000) + 1000 = 4000; the init container sets no memory: max(1Mi + 200Mi, 200Mi) + 1Mi
    pytest.param({"overhead": {"cpu": "1", "memory": "1Mi"},
                  "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}],
                  "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}, {"name": "b"}]},
                 4000, 2 * MI + DEFAULT_MEMORY_REQUEST, id="init container + container + requestless container + overhead"),
    # max(3m, init 100m, init 1m) = 100m; max(3, 200Mi, 1) = 200Mi
    pytest.param({"initContainers": [{"name": "i0"}, {"name": "i1", "resources": {"requests": {"cpu": "1m", "memory": "1"}}}],
                  "containers": [{"name": "a", "resources": {"requests": {"cpu": "3m", "memory": "3"}}}]},
                 DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST,
                 id="requestless init container + small init container + small container "),
    # max(3m + 100m, 100m, 1m) = 103m; max(3 + 200Mi, 200Mi, 1)
    pytest.param({"initContainers": [{"name": "i0"}, {"name": "i1", "resources": {"requests": {"cpu": "1m", "memory": "1"}}}],
                  "containers": [{"name": "a", "resources": {"requests": {"cpu": "3m", "memory": "3"}}}, {"name": "b"}]},
                 3 + DEFAULT_MILLI_CPU_REQUEST, 3 + DEFAULT_MEMORY_REQUEST,
                 id="requestless init container + small init container + small container + requestless container "),
]


@pytest.mark.parametrize(("spec", "cpu", "memory"), CALCULATE_REQUESTS)
def test_calculate_pod_resource_request(spec: dict[str, Any], cpu: int, memory: int) -> None:
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": spec})
    assert pod_request_list(pod, ["cpu", "memory"], use_requested=False) == [cpu, memory]


def test_calculate_resource_allocatable_request() -> None:
    """TestCalculateResourceAllocatableRequest, device-plugin-resource-feature-disabled:
    a device-plugin extended resource, 4 allocatable, the pod requests 1 -> (4, 0 + 1)."""
    name = "extended.resource.dra.io/something"
    table = NodeTable()
    table.set_node(_cap_node("resource-node", **{name: "4"}))
    alloc, req = allocation_matrices(table, np.array([0], np.intp), [name], [1], use_requested=False)
    assert (int(alloc[0, 0]), int(req[0, 0])) == (4, 1)


def test_utilization_is_exact_for_huge_amounts() -> None:
    """vecsched: RequestedToCapacityRatio computes requested*100/capacity exactly even
    where the int64 product overflows (upstream does it with 128-bit math):
    (2**62 * 100) // (2**62 + 2**60) = 80."""
    node = _ext_node("n", {"ephemeral-storage": str(2**62 + 2**60), "pods": "1"})
    pod = _pod({"ephemeral-storage": str(2**62)})
    args = _strategy("RequestedToCapacityRatio", [{"name": "ephemeral-storage", "weight": 1}], RISING)
    assert _scores(args, [node], [], pod) == [80]


def test_placed_pod_with_pod_level_requests_gets_no_default_for_a_requested_resource() -> None:
    """vecsched (upstream's NodeInfo calculateResource / getNonMissingContainerRequests):
    once a pod with pod-level requests is on a node, a container gets no 200Mi default
    for memory that the pod already requests elsewhere; the pod being scheduled does
    get it (calculatePodResourceRequest always applies both defaults).

    Placed pod: pod-level cpu 1; containers memory 1Gi and nothing -> node charges
    cpu 1000m, memory 1Gi. Incoming pod: 1 cpu, 1Gi. Node 4 cpu, 4Gi:
    cpu (4000-2000)*100/4000 = 50, memory (4Gi-2Gi)*100/4Gi = 50 -> 50
    (charging the placed pod 1Gi + 200Mi would give memory 45 -> 47)."""
    placed = pod_from_json({"metadata": {"name": "placed", "namespace": "ns"}, "spec": {
        "nodeName": "n", "resources": {"requests": {"cpu": "1"}},
        "containers": [{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}, {"name": "b"}]}})
    assert (placed.nonzero_cpu, placed.nonzero_memory) == (1000, GI + DEFAULT_MEMORY_REQUEST)  # as the incoming pod
    node = _ext_node("n", {"cpu": "4", "memory": "4Gi", "pods": "10"})
    assert _scores({}, [node], [placed], _pod({"cpu": "1", "memory": "1Gi"})) == [50]


@pytest.mark.parametrize(
    ("spec", "incoming", "on_node"),
    [
        # pod-level cpu; memory requested by one container only: no 200Mi for the other on the node
        pytest.param({"resources": {"requests": {"cpu": "1"}},
                      "containers": [{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}, {"name": "b"}]},
                     (1000, GI + DEFAULT_MEMORY_REQUEST), (1000, GI), id="pod-level cpu, memory in one container"),
        # nobody requests memory: the default per container, on the node too (2 x 200Mi)
        pytest.param({"resources": {"requests": {"cpu": "1"}}, "containers": [{"name": "a"}, {"name": "b"}]},
                     (1000, 2 * DEFAULT_MEMORY_REQUEST), (1000, 2 * DEFAULT_MEMORY_REQUEST), id="pod-level cpu, no memory"),
        # pod-level cpu and memory replace everything
        pytest.param({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}, "containers": [{"name": "a"}]},
                     (1000, GI), (1000, GI), id="pod-level cpu and memory"),
        # no pod-level requests: the defaults per container, wherever the pod is
        pytest.param({"containers": [{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}, {"name": "b"}]},
                     (2 * DEFAULT_MILLI_CPU_REQUEST, GI + DEFAULT_MEMORY_REQUEST),
                     (2 * DEFAULT_MILLI_CPU_REQUEST, GI + DEFAULT_MEMORY_REQUEST), id="no pod-level requests"),
    ],
)
def test_nonzero_requests_incoming_and_on_node(spec: dict[str, Any], incoming: tuple[int, int],
                                               on_node: tuple[int, int]) -> None:
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": spec})
    assert pod_request_list(pod, ["cpu", "memory"], use_requested=False) == list(incoming)
    assert pod.nonzero_on_node == on_node
