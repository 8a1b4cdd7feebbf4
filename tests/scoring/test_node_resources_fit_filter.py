"""NodeResourcesFit's Filter is upstream's fitsRequest: the cases of fit_test.go's
TestEnoughRequests, TestNotEnoughRequests, TestStorageRequests and
TestRestartableInitContainers (sidecars enabled, as in every supported release),
each checked against the vectorised plugin and the per-node reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.reference import RefNode
from benchmarks.reference.resources import fits_request
from scoring.framework import Profile
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins import node_resources_fit
from scoring.table import NodeTable
from tests.explain_support import explain_reasons

A = "example.com/aaa"
B = "example.com/bbb"
K8S_A = "kubernetes.io/something"
K8S_B = "subdomain.kubernetes.io/something"
HUGE = "hugepages-2Mi"
DRA = "extended.resource.dra.io/something"


def _res(cpu: int = 0, mem: int = 0, eph: int = 0) -> dict[str, Any]:
    """A container as fit_test.go's newResourcePod writes one: every base resource
    set explicitly (milli-cpu, bytes)."""
    req = {"cpu": f"{cpu}m", "memory": str(mem), "pods": "0", "ephemeral-storage": str(eph)}
    return {"name": "c", "resources": {"requests": req}}


def _pod(*containers: dict[str, Any], inits: tuple[dict[str, Any], ...] = (), overhead: dict[str, str] | None = None,
         pod_level: dict[str, str] | None = None, name: str = "p") -> PodInfo:
    spec: dict[str, Any] = {"containers": list(containers), "initContainers": list(inits)}
    if overhead:
        spec["overhead"] = overhead
    if pod_level:
        spec["resources"] = {"requests": pod_level}
    return pod_from_json({"metadata": {"name": name, "namespace": "ns"}, "spec": spec})


def _scalar(cpu: int = 0, mem: int = 0, **named: int) -> dict[str, Any]:
    """_res with scalar resources given by their real names."""
    c = _res(cpu, mem)
    c["resources"]["requests"].update({k: str(v) for k, v in named.items()})
    return c


def _node(name: str = "n", *, cpu: int, mem: int, pods: int, a: int = 0, eph: int = 0, huge: int = 0) -> NodeInfo:
    """fit_test.go's makeAllocatableResources(milliCPU, memory, pods, extendedA, storage, hugePageA)."""
    alloc = {"cpu": f"{cpu}m", "memory": str(mem), "pods": str(pods), A: str(a), "ephemeral-storage": str(eph), HUGE: str(huge)}
    return node_from_json({"metadata": {"name": name}, "status": {"allocatable": alloc}})


def _enough_node() -> NodeInfo:
    return _node(cpu=10, mem=20, pods=32, a=5, eph=20, huge=5)


def _reasons_of(plugin: node_resources_fit.NodeResourcesFit, pod: PodInfo, table: NodeTable, row: int) -> list[tuple[str, bool]]:
    return [(r.message, r.unresolvable) for r in plugin.filter(pod, table, {}) or () if r.nodes[row]]


def _check(args: dict[str, Any], node: NodeInfo, existing: list[PodInfo], pod: PodInfo,
           want: tuple[str, ...], unresolvable: bool) -> None:
    plugin = node_resources_fit.new(args, "")
    table = NodeTable()
    table.set_node(node)
    for p in existing:
        table.add_pod(p, node.name)
    expected = [(m, unresolvable) for m in want]
    assert _reasons_of(plugin, pod, table, 0) == expected
    # The per-node reference agrees, reasons and status code alike.
    ref = fits_request(pod, RefNode(node, list(existing)), plugin.args.ignored_resources,
                       plugin.args.ignored_resource_groups)
    assert [(r.reason, any(x.unresolvable for x in ref)) for r in ref] == expected
    shown = explain_reasons(nodes=[node], existing=[(p, node.name) for p in existing], pod=pod,
                            plugin=node_resources_fit.NAME, args=args)
    assert shown[node.name] == list(want), "vecsched explain != plugin"


def _existing(*containers: dict[str, Any]) -> list[PodInfo]:
    """framework.NewNodeInfo(newResourcePod(...)): one pod holding these containers."""
    return [_pod(*containers, name="existing")]


CPU, MEM, EPH = "Insufficient cpu", "Insufficient memory", "Insufficient ephemeral-storage"


def _ins(resource: str) -> str:
    return f"Insufficient {resource}"


# Node: 10m cpu, 20 memory, 32 pods, 5 example.com/aaa, 20 ephemeral-storage, 5 hugepages-2Mi.
# unresolvable: some request exceeds the node's whole allocatable (upstream's UnschedulableAndUnresolvable).
ENOUGH_REQUESTS = [
    # no requests: only the pod count is checked, 1 + 1 <= 32
    pytest.param(_pod(), _existing(_res(10, 20)), {}, (), False, id="no resources requested always fits"),
    # cpu 1 > 10 - 10 = 0, memory 1 > 20 - 20 = 0; 1 <= 10 and 1 <= 20 -> resolvable
    pytest.param(_pod(_res(1, 1)), _existing(_res(10, 20)), {}, (CPU, MEM), False, id="too many resources fails"),
    # cpu max(1, 3) = 3 > 10 - 8 = 2; memory max(1, 1) = 1 <= 20 - 19
    pytest.param(_pod(_res(1, 1), inits=(_res(3, 1),)), _existing(_res(8, 19)), {}, (CPU,), False,
                 id="too many resources fails due to init container cpu"),
    # cpu max(1, 3, 2) = 3 > 2
    pytest.param(_pod(_res(1, 1), inits=(_res(3, 1), _res(2, 1))), _existing(_res(8, 19)), {}, (CPU,), False,
                 id="too many resources fails due to highest init container cpu"),
    # memory max(1, 3) = 3 > 20 - 19 = 1; cpu 1 <= 10 - 9
    pytest.param(_pod(_res(1, 1), inits=(_res(1, 3),)), _existing(_res(9, 19)), {}, (MEM,), False,
                 id="too many resources fails due to init container memory"),
    # memory max(1, 3, 2) = 3 > 1
    pytest.param(_pod(_res(1, 1), inits=(_res(1, 3), _res(1, 2))), _existing(_res(9, 19)), {}, (MEM,), False,
                 id="too many resources fails due to highest init container memory"),
    # max(1, 1) = 1 <= 1 for both
    pytest.param(_pod(_res(1, 1), inits=(_res(1, 1),)), _existing(_res(9, 19)), {}, (), False,
                 id="init container fits because it's the max, not sum, of containers and init containers"),
    pytest.param(_pod(_res(1, 1), inits=(_res(1, 1), _res(1, 1))), _existing(_res(9, 19)), {}, (), False,
                 id="multiple init containers fit because it's the max, not sum, of containers and init containers"),
    # 1 <= 5 and 1 <= 15
    pytest.param(_pod(_res(1, 1)), _existing(_res(5, 5)), {}, (), False, id="both resources fit"),
    # cpu 2 > 10 - 9 = 1
    pytest.param(_pod(_res(2, 1)), _existing(_res(9, 5)), {}, (CPU,), False, id="one resource memory fits"),
    # memory 2 > 20 - 19 = 1
    pytest.param(_pod(_res(1, 2)), _existing(_res(5, 19)), {}, (MEM,), False, id="one resource cpu fits"),
    # cpu 5 <= 10 - 5, memory 1 <= 1
    pytest.param(_pod(_res(5, 1)), _existing(_res(5, 19)), {}, (), False, id="equal edge case"),
    # cpu max(4, 5) = 5 <= 5
    pytest.param(_pod(_res(4, 1), inits=(_res(5, 1),)), _existing(_res(5, 19)), {}, (), False,
                 id="equal edge case for init container"),
    # aaa 1 <= 5 - 0
    pytest.param(_pod(_scalar(**{A: 1})), _existing(_res()), {}, (), False, id="extended resource fits"),
    pytest.param(_pod(_res(), inits=(_scalar(**{A: 1}),)), _existing(_res()), {}, (), False,
                 id="extended resource fits for init container"),
    # aaa 10 > 5 - 0, and 10 > 5 allocatable -> unresolvable
    pytest.param(_pod(_scalar(1, 1, **{A: 10})), _existing(_scalar(**{A: 0})), {}, (_ins(A),), True,
                 id="extended resource capacity enforced"),
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{A: 10}),)), _existing(_scalar(**{A: 0})), {}, (_ins(A),), True,
                 id="extended resource capacity enforced for init container"),
    # aaa 1 > 5 - 5 = 0; 1 <= 5 -> resolvable
    pytest.param(_pod(_scalar(1, 1, **{A: 1})), _existing(_scalar(**{A: 5})), {}, (_ins(A),), False,
                 id="extended resource allocatable enforced"),
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{A: 1}),)), _existing(_scalar(**{A: 5})), {}, (_ins(A),), False,
                 id="extended resource allocatable enforced for init container"),
    # aaa 3 + 3 = 6 > 5 - 2 = 3; 6 > 5 -> unresolvable
    pytest.param(_pod(_scalar(1, 1, **{A: 3}), _scalar(1, 1, **{A: 3})), _existing(_scalar(**{A: 2})), {},
                 (_ins(A),), True, id="extended resource allocatable enforced for multiple containers"),
    # aaa max(3, 3) = 3 <= 3
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{A: 3}), _scalar(1, 1, **{A: 3}))), _existing(_scalar(**{A: 2})),
                 {}, (), False, id="extended resource allocatable admits multiple init containers"),
    # aaa max(6, 3) = 6 > 3; 6 > 5 -> unresolvable
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{A: 6}), _scalar(1, 1, **{A: 3}))), _existing(_scalar(**{A: 2})),
                 {}, (_ins(A),), True, id="extended resource allocatable enforced for multiple init containers"),
    # bbb: the node has none -> 1 > 0 - 0, and 1 > 0 -> unresolvable
    pytest.param(_pod(_scalar(1, 1, **{B: 1})), _existing(_res()), {}, (_ins(B),), True,
                 id="extended resource allocatable enforced for unknown resource"),
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{B: 1}),)), _existing(_res()), {}, (_ins(B),), True,
                 id="extended resource allocatable enforced for unknown resource for init container"),
    # kubernetes.io/ names are scalar resources too: 10 > 0
    pytest.param(_pod(_scalar(1, 1, **{K8S_A: 10})), _existing(_res()), {}, (_ins(K8S_A),), True,
                 id="kubernetes.io resource capacity enforced"),
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{K8S_B: 10}),)), _existing(_res()), {}, (_ins(K8S_B),), True,
                 id="kubernetes.io resource capacity enforced for init container"),
    # hugepages 10 > 5 - 0; 10 > 5
    pytest.param(_pod(_scalar(1, 1, **{HUGE: 10})), _existing(_scalar(**{HUGE: 0})), {}, (_ins(HUGE),), True,
                 id="hugepages resource capacity enforced"),
    pytest.param(_pod(_res(), inits=(_scalar(1, 1, **{HUGE: 10}),)), _existing(_scalar(**{HUGE: 0})), {},
                 (_ins(HUGE),), True, id="hugepages resource capacity enforced for init container"),
    # hugepages 3 + 3 = 6 > 5 - 2; 6 > 5
    pytest.param(_pod(_scalar(1, 1, **{HUGE: 3}), _scalar(1, 1, **{HUGE: 3})), _existing(_scalar(**{HUGE: 2})), {},
                 (_ins(HUGE),), True, id="hugepages resource allocatable enforced for multiple containers"),
    # bbb is ignored; cpu 1 <= 10, memory 1 <= 20
    pytest.param(_pod(_scalar(1, 1, **{B: 1})), _existing(_res()), {"ignoredResources": [B]}, (), False,
                 id="skip checking ignored extended resource"),
    # cpu 1 + 3 = 4 <= 10 - 5; memory 1 + 13 = 14 <= 20 - 5
    pytest.param(_pod(_res(1, 1), overhead={"cpu": "3m", "memory": "13"}), _existing(_res(5, 5)), {}, (), False,
                 id="resources + pod overhead fits"),
    # memory 1 + 15 = 16 > 15; 16 <= 20 -> resolvable
    pytest.param(_pod(_res(1, 1), overhead={"cpu": "1m", "memory": "15"}), _existing(_res(5, 5)), {}, (MEM,), False,
                 id="requests + overhead does not fit for memory"),
    # example.com group ignored; kubernetes.io/something is not extended, so never ignored: 1 > 0
    pytest.param(_pod(_scalar(1, 1, **{B: 1, K8S_A: 1})), _existing(_res()), {"ignoredResourceGroups": ["example.com"]},
                 (_ins(K8S_A),), True, id="skip checking ignored extended resource via resource groups"),
    # a zero request is not checked, although the node is over-committed (6 > 5)
    pytest.param(_pod(_scalar(1, 1, **{A: 0})), _existing(_scalar(**{A: 6})), {}, (), False,
                 id="skip checking extended resource request with quantity zero via resource groups"),
    # cpu and memory requests are 0, so the over-committed cpu (20 > 10) is not checked; aaa 1 <= 5 - 1
    pytest.param(_pod(_scalar(**{A: 1})), _existing(_scalar(20, 30, **{A: 1})), {}, (), False,
                 id="skip checking resource request with quantity zero"),
    # pod-level requests replace the containers' sum: cpu 1 <= 5, memory 2 <= 15
    pytest.param(_pod(_res(1, 1), pod_level={"cpu": "1m", "memory": "2"}), _existing(_res(5, 5)), {}, (), False,
                 id="both pod-level and container-level resources fit"),
    # pod-level cpu 7 > 10 - 5
    pytest.param(_pod(_res(1, 1), pod_level={"cpu": "7m", "memory": "2"}), _existing(_res(5, 5)), {}, (CPU,), False,
                 id="pod-level cpu resource not fit"),
    # pod-level memory 2 > 20 - 19
    pytest.param(_pod(_res(1, 1), pod_level={"cpu": "3m", "memory": "2"}), _existing(_res(5, 19)), {}, (MEM,), False,
                 id="pod-level memory resource not fit"),
    # empty node: cpu 3 <= 10, memory 2 <= 20, hugepages 5 <= 5
    pytest.param(_pod(pod_level={"cpu": "3m", "memory": "2", HUGE: "5"}), [], {}, (), False,
                 id="pod-level hugepages resource fit"),
    # pod-level hugepages 5 replaces the container's 3: 5 <= 5
    pytest.param(_pod(_scalar(1, 1, **{HUGE: 3}), pod_level={"cpu": "3m", "memory": "2", HUGE: "5"}), [], {}, (), False,
                 id="both pod-level and container-level hugepages resource fit"),
    # hugepages 10 > 5
    pytest.param(_pod(pod_level={"cpu": "3m", "memory": "2", HUGE: "10"}), [], {}, (_ins(HUGE),), True,
                 id="pod-level hugepages resource not fit"),
    # pod-level cpu 3 <= 10 - 5; memory 2 > 20 - 19
    pytest.param(_pod(_res(1, 1), inits=(_res(1, 1),), pod_level={"cpu": "3m", "memory": "2"}), _existing(_res(5, 19)),
                 {}, (MEM,), False, id="one pod-level cpu resource fits and all init and non-init containers resources fit"),
    # DRAExtendedResource off (its default): an extended resource the node lacks, 1 > 0
    pytest.param(_pod(_scalar(1, 1, **{DRA: 1})), _existing(_res()), {}, (_ins(DRA),), True,
                 id="extended resource backed by DRA not enabled"),
]


@pytest.mark.parametrize(("pod", "existing", "args", "want", "unresolvable"), ENOUGH_REQUESTS)
def test_enough_requests(pod: PodInfo, existing: list[PodInfo], args: dict[str, Any],
                         want: tuple[str, ...], unresolvable: bool) -> None:
    _check(args, _enough_node(), existing, pod, want, unresolvable)


# Node: 10m cpu, 20 memory, 1 pod; it already holds one pod, so 1 + 1 > 1 whatever fits.
NOT_ENOUGH_REQUESTS = [
    pytest.param(_pod(), _existing(_res(10, 20)),
                 id="even without specified resources, predicate fails when there's no space for additional pod"),
    pytest.param(_pod(_res(1, 1)), _existing(_res(5, 5)),
                 id="even if both resources fit, predicate fails when there's no space for additional pod"),
    pytest.param(_pod(_res(5, 1)), _existing(_res(5, 19)),
                 id="even for equal edge case, predicate fails when there's no space for additional pod"),
    pytest.param(_pod(_res(5, 1), inits=(_res(5, 1),)), _existing(_res(5, 19)),
                 id="even for equal edge case, predicate fails when there's no space for additional pod due to init container"),
]


@pytest.mark.parametrize(("pod", "existing"), NOT_ENOUGH_REQUESTS)
def test_not_enough_requests(pod: PodInfo, existing: list[PodInfo]) -> None:
    _check({}, _node(cpu=10, mem=20, pods=1), existing, pod, ("Too many pods",), False)


STORAGE_REQUESTS = [
    # no ephemeral-storage requested; cpu 1 <= 8, memory 1 <= 10
    pytest.param(_pod(_res(1, 1)), _existing(_res(2, 10)), (), False, id="empty storage requested, and pod fits"),
    # ephemeral-storage 25 > 20 - 0; 25 > 20 -> unresolvable
    pytest.param(_pod(_res(eph=25)), _existing(_res(2, 2)), (EPH,), True,
                 id="storage ephemeral local storage request exceeds allocatable"),
    # 5 <= 20 - 10
    pytest.param(_pod(_res(eph=5)), _existing(_res(2, 2, 10)), (), False, id="ephemeral local storage is sufficient"),
    # 10 <= 20
    pytest.param(_pod(_res(eph=10)), _existing(_res(2, 2)), (), False, id="pod fits"),
]


@pytest.mark.parametrize(("pod", "existing", "want", "unresolvable"), STORAGE_REQUESTS)
def test_storage_requests(pod: PodInfo, existing: list[PodInfo], want: tuple[str, ...], unresolvable: bool) -> None:
    _check({}, _enough_node(), existing, pod, want, unresolvable)


def _sidecar_pod(request: str | None = None, sidecar: str | None = None) -> PodInfo:
    regular: dict[str, Any] = {"name": "regular"}
    if request:
        regular["resources"] = {"requests": {"cpu": request}}
    init: dict[str, Any] = {"name": "restartable-init", "restartPolicy": "Always"}
    if sidecar:
        init["resources"] = {"requests": {"cpu": sidecar}}
    return _pod(regular, inits=(init,))


# Node: 2m cpu, 0 memory, 1 pod, nothing else; no pods on it.
RESTARTABLE_INIT_CONTAINERS = [
    pytest.param(_pod({"name": "regular"}), (), False,
                 id="allow pod without restartable init containers if sidecar containers is enabled"),
    pytest.param(_sidecar_pod(), (), False,
                 id="allow pod with restartable init containers if sidecar containers is enabled"),
    # the sidecar runs beside the app: 1 + 1 = 2 <= 2
    pytest.param(_sidecar_pod("1m", "1m"), (), False,
                 id="allow pod if the total requested resources do not exceed the node's allocatable resources"),
    # 1 + 2 = 3 > 2, and 3 > 2 allocatable -> unresolvable
    pytest.param(_sidecar_pod("1m", "2m"), (CPU,), True,
                 id="not allow pod if the total requested resources do exceed the node's allocatable resources"),
]


@pytest.mark.parametrize(("pod", "want", "unresolvable"), RESTARTABLE_INIT_CONTAINERS)
def test_restartable_init_containers(pod: PodInfo, want: tuple[str, ...], unresolvable: bool) -> None:
    _check({}, _node(cpu=2, mem=0, pods=1), [], pod, want, unresolvable)


def test_reasons_split_by_node_status() -> None:
    """vecsched: one Reason per message and status. Upstream marks *all* of a node's
    reasons unresolvable once one of its requests exceeds the whole allocatable."""
    table = NodeTable()
    table.set_node(_node("full", cpu=10, mem=20, pods=1))    # 1 pod already: too many pods; cpu 5 > 10 - 8
    table.set_node(_node("small", cpu=4, mem=20, pods=1))    # 1 pod already; cpu 5 > 4 allocatable
    table.set_node(_node("fits", cpu=10, mem=20, pods=32))
    table.add_pod(_pod(_res(8, 0), name="a"), "full")
    table.add_pod(_pod(_res(0, 0), name="b"), "small")
    plugin = node_resources_fit.new({}, "")
    reasons = plugin.filter(_pod(_res(5, 1)), table, {}) or []
    got = [(r.message, r.unresolvable, [table.names[i] for i in np.flatnonzero(r.nodes)]) for r in reasons]
    assert got == [
        ("Too many pods", False, ["full"]),
        ("Too many pods", True, ["small"]),
        (CPU, False, ["full"]),
        (CPU, True, ["small"]),
    ]
    # The FailedScheduling message counts nodes per message, whatever the status.
    profile = Profile(name="p", filters=[plugin], scorers=[(plugin, 1)])
    table.remove_node("fits")
    decision = profile.schedule(_pod(_res(5, 1)), table)
    assert decision.node is None
    assert decision.message == "0/2 nodes are available: 2 Insufficient cpu, 2 Too many pods."
