"""The preempt verb as kube-scheduler calls it (ProcessPreemption), over real HTTP.

kube-scheduler proposes victims per node from its own filters; the extender
answers ExtenderPreemptionResult: the nodes vecsched's constraints accept, each
with the proposed victims when they suffice, with the victims vecsched's own
DefaultPreemption dry run adds when they do not, and without the nodes where
nothing helps. The GPU case is the one kube-scheduler cannot see: GpuShare's
shares are pod annotations, so NodeResourcesFit counts only CPU and memory.

Cluster of the cache tests (three nodes of 4 CPU and one GPU of 1000 milli-GPU)::

    node-0000  a-cpu 3 CPU (priority 10)
    node-0001  b-cpu 3 CPU (priority 5), b-gpu 100m + 600 milli-GPU (priority 10)
    node-0002  c-cpu 3 CPU (priority 10), c-gpu 100m + 600 milli-GPU (priority 1000)

and the preemptor `hungry`: 2 CPU + 600 milli-GPU, priority 1000. kube-scheduler's
own dry run (CPU only) proposes one victim per node: a-cpu (3 + 2 > 4; 0 + 2 <= 4),
b-cpu (3 + .1 + 2 > 4; both removed, b-gpu given back first as the more important:
.1 + 2 <= 4, then b-cpu: 3.1 + 2 > 4 -> victim), c-cpu (c-gpu is not of lower priority).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.config import API_VERSION, parse_config
from scheduler.extender import ExtenderServer
from scoring.plugins.budgets import Budgets
from tests.extender.cached import cached_extender
from tests.extender.wire import kube_node, kube_pod, node_list, post
from tests.live.support import wait_for

CONFIG = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
    {"schedulerName": "gpu", "plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]}}},
    {"schedulerName": "plain"}]})
"""``gpu``: kube-scheduler's default plugins (DefaultPreemption included) and GpuShare; ``plain``: the defaults."""
CLASSES = {"lower": 5, "low": 10, "high": 1000}


def _create_pod(srv: ApiServer, name: str, *, cpu: str, priority_class: str, node: str = "",
                gpu_milli: int | None = None) -> dict[str, Any]:
    """Created through admission (which resolves spec.priority); returned as kube-scheduler has it."""
    p = kube_pod(name, cpu=cpu, node=node, priorityClassName=priority_class)
    for k in ("uid", "resourceVersion", "creationTimestamp"):
        p["metadata"].pop(k)
    del p["spec"]["priority"]
    p["status"] = {}
    if gpu_milli is not None:
        p["metadata"]["annotations"] = {"vecsched.io/gpu-milli": str(gpu_milli)}
    srv.create("pods", p, namespace="default")
    return srv.get("pods", name, namespace="default")


@pytest.fixture
async def cluster() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=[NodeShape(count=3, cpu="4", memory="8Gi", gpus=1)], kubelet_delay=0.0,
                               bookmark_interval=0.5) as srv:
        for name, value in CLASSES.items():
            srv.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                           "metadata": {"name": name}, "value": value})
        _create_pod(srv, "a-cpu", cpu="3", priority_class="low", node="node-0000")
        _create_pod(srv, "b-cpu", cpu="3", priority_class="lower", node="node-0001")
        _create_pod(srv, "b-gpu", cpu="100m", priority_class="low", node="node-0001", gpu_milli=600)
        _create_pod(srv, "c-cpu", cpu="3", priority_class="low", node="node-0002")
        _create_pod(srv, "c-gpu", cpu="100m", priority_class="high", node="node-0002", gpu_milli=600)
        _create_pod(srv, "hungry", cpu="2", priority_class="high", gpu_milli=600)
        yield srv


def _uid(srv: ApiServer, name: str) -> str:
    return str(srv.get("pods", name, namespace="default")["metadata"]["uid"])


def _meta(srv: ApiServer, *names: str, pdb: int = 0) -> dict[str, Any]:
    """A MetaVictims as encoding/json writes it."""
    return {"Pods": [{"UID": _uid(srv, n)} for n in names], "NumPDBViolations": pdb}


async def _preempt(ext: ExtenderServer, body: dict[str, Any], route: str = "gpu/preempt") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        return await post(http, f"{ext.url}/{route}", body)


async def test_meta_victims_kept_extended_or_dropped(cluster: ApiServer) -> None:
    async with cached_extender(cluster, config=CONFIG) as ext:
        cache = ext.view.cache
        assert cache is not None
        await wait_for(lambda: len(cache.table.pods) == 5, what="the five running pods in the extender's cache")
        hungry = cluster.get("pods", "hungry", namespace="default")
        assert hungry["spec"]["priority"] == 1000
        status, result = await _preempt(ext, {"Pod": hungry, "NodeNameToVictims": None, "NodeNameToMetaVictims": {
            "node-0000": _meta(cluster, "a-cpu"),
            "node-0001": _meta(cluster, "b-cpu"),
            "node-0002": _meta(cluster, "c-cpu"),
            "node-9999": {"Pods": [{"UID": "uid-elsewhere"}], "NumPDBViolations": 0},
        }})
        assert status == 200
        assert result == {"NodeNameToMetaVictims": {
            # a-cpu gone: cpu 0 + 2 <= 4, GPU 0 + 600 <= 1000 -> the proposal suffices, kept as sent.
            "node-0000": _meta(cluster, "a-cpu"),
            # b-cpu gone: cpu .1 + 2 <= 4, but GPU 600 + 600 = 1200 > 1000 -> vecsched's dry run over
            # what is left of lower priority (b-gpu, 10 < 1000): without it 0 + 600 <= 1000, given
            # back 1200 > 1000 -> b-gpu is a victim too. Most important first, as kube-scheduler
            # reads Pods[0] as the highest priority: b-gpu (10), then b-cpu (5).
            "node-0001": _meta(cluster, "b-gpu", "b-cpu"),
            # node-0002: c-cpu gone still leaves GPU 600 + 600 > 1000, and c-gpu (1000) is not of
            # lower priority than hungry (1000): nothing helps -> dropped.
            # node-9999: not in the extender's cache -> dropped.
        }}
        # The victims were only removed for the dry run.
        assert {k: cache.node_of(f"default/{k}") for k in ("a-cpu", "b-cpu", "b-gpu", "c-cpu", "c-gpu")} == {
            "a-cpu": "node-0000", "b-cpu": "node-0001", "b-gpu": "node-0001", "c-cpu": "node-0002",
            "c-gpu": "node-0002"}

        # The same proposals to the profile without GpuShare: they suffice everywhere
        # (cpu after each: 0 + 2, .1 + 2, .1 + 2 <= 4), so every node is kept as sent.
        proposal = {n: _meta(cluster, v) for n, v in (("node-0000", "a-cpu"), ("node-0001", "b-cpu"),
                                                      ("node-0002", "c-cpu"))}
        status, result = await _preempt(ext, {"Pod": hungry, "NodeNameToMetaVictims": proposal}, route="plain/preempt")
        assert (status, result) == (200, {"NodeNameToMetaVictims": proposal})


def _budget(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}}}


async def test_pdb_violations_are_carried_and_counted_for_added_victims(cluster: ApiServer) -> None:
    # a-budget: 1 healthy (a-cpu) - minAvailable 1 = 0 disruptions allowed.
    # b-budget: 2 healthy (b-cpu, b-gpu: label app=b) - 1 = 1 allowed.
    cluster.create("poddisruptionbudgets", _budget("a-budget", "a"), namespace="default")
    cluster.create("poddisruptionbudgets", _budget("b-budget", "b"), namespace="default")
    async with cached_extender(cluster, config=CONFIG) as ext:
        cache = ext.view.cache
        assert cache is not None

        def allowed() -> dict[str, int]:
            return {name: b.allowed for (_, name), b in Budgets.of(cache.table).items.items()}
        await wait_for(lambda: allowed() == {"a-budget": 0, "b-budget": 1} and len(cache.table.pods) == 5,
                       what="both budgets' status and the pods in the extender's cache")
        hungry = cluster.get("pods", "hungry", namespace="default")
        status, result = await _preempt(ext, {"Pod": hungry, "NodeNameToVictims": None, "NodeNameToMetaVictims": {
            "node-0000": _meta(cluster, "a-cpu", pdb=1),  # kube-scheduler: a-cpu takes a-budget to -1
            "node-0001": _meta(cluster, "b-cpu", pdb=0),  # b-cpu takes b-budget to 0: no violation
        }})
        assert status == 200
        assert result == {"NodeNameToMetaVictims": {
            # kept as proposed: NumPDBViolations carried, 1.
            "node-0000": _meta(cluster, "a-cpu", pdb=1),
            # b-gpu added (GPU 600 + 600 > 1000); b-budget after b-cpu: 1 - 1 = 0 allowed, b-gpu
            # takes it to -1 -> 0 proposed + 1 added = 1 violation.
            "node-0001": _meta(cluster, "b-gpu", "b-cpu", pdb=1),
        }}


# ---- NodeNameToVictims (nodeCacheCapable: false) against a standalone extender ------------------------


def _running(name: str, node: str, *, cpu: str, priority: int = 0) -> dict[str, Any]:
    p = kube_pod(name, cpu=cpu, node=node, priority=priority)
    p["status"]["startTime"] = "2024-05-01T10:00:05Z"
    return p


async def test_full_victims_from_the_conversation(extender: ExtenderServer, http: aiohttp.ClientSession) -> None:
    """Without a cache the extender knows the nodes of earlier Nodes requests and the victims sent
    in full: it can keep or drop a node, not add victims it has never seen."""
    dedicated = [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]
    nodes = node_list(kube_node("node-a"), kube_node("node-b", cpu="1"), kube_node("node-t", taints=dedicated))
    pod = kube_pod("hungry", cpu="2", priority=1000)
    status, result = await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": nodes, "NodeNames": None})
    assert status == 200  # the extender has now seen node-a, node-b and node-t
    victims = {
        "node-a": {"Pods": [_running("va", "node-a", cpu="3")], "NumPDBViolations": 1},
        "node-b": {"Pods": [_running("vb", "node-b", cpu="500m")], "NumPDBViolations": 0},
        "node-t": {"Pods": [_running("vt", "node-t", cpu="3")], "NumPDBViolations": 0},
        "node-x": {"Pods": [_running("vx", "node-x", cpu="3")], "NumPDBViolations": 0},
    }
    status, result = await post(http, f"{extender.url}/preempt",
                                {"Pod": pod, "NodeNameToVictims": victims, "NodeNameToMetaVictims": None})
    assert status == 200
    assert result == {"NodeNameToMetaVictims": {
        # va gone: 0 + 2 <= 4 CPU -> kept, by UID, NumPDBViolations carried.
        "node-a": {"Pods": [{"UID": "uid-va"}], "NumPDBViolations": 1},
        # node-b: 2 CPU > its 1 CPU even empty; node-t: the untolerated taint stays -- both unresolvable,
        # dropped. node-x: never seen -> dropped.
    }}


async def test_a_node_that_fits_without_victims_is_no_candidate(extender: ExtenderServer,
                                                                http: aiohttp.ClientSession) -> None:
    """Upstream's dry run never offers a node with no victims and kube-scheduler refuses one
    ("expected at least one victim pod on node"): it is dropped, not echoed."""
    pod = kube_pod("small", cpu="1", priority=1000)
    await post(http, f"{extender.url}/filter", {"Pod": pod, "Nodes": node_list(kube_node("node-a"))})
    status, result = await post(http, f"{extender.url}/preempt", {
        "Pod": pod, "NodeNameToVictims": {"node-a": {"Pods": [], "NumPDBViolations": 0}}})
    assert (status, result) == (200, {"NodeNameToMetaVictims": {}})  # 1 <= 4 CPU with nothing removed


# ---- malformed requests -----------------------------------------------------------------------------

POD = kube_pod("p", priority=1000)


def _no_uid() -> dict[str, Any]:
    p = _running("v", "a", cpu="1")
    del p["metadata"]["uid"]
    return p


@pytest.mark.parametrize(("body", "error"), [
    pytest.param({"NodeNameToMetaVictims": {}}, "Pod: required", id="no-pod"),
    pytest.param({"Pod": kube_pod("p", cpu="x"), "NodeNameToMetaVictims": {}},
                 "Pod.spec.containers[0].resources.requests.cpu: invalid quantity 'x': "
                 "expected <number><suffix> such as 100m, 1.5, 2Gi or 1e3", id="bad-pod"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": None, "NodeNameToVictims": None},
                 "ExtenderPreemptionArgs: one of NodeNameToMetaVictims or NodeNameToVictims is required",
                 id="no-victims"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": []},
                 "NodeNameToMetaVictims: expected a JSON object, got array", id="meta-not-a-map"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": {"a": None}},
                 "NodeNameToMetaVictims[a]: expected a JSON object, got null", id="meta-null-victims"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": {"a": {"Pods": {"UID": "u"}}}},
                 "NodeNameToMetaVictims[a].Pods: expected an array, got object", id="meta-pods-not-array"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": {"a": {"Pods": ["u"]}}},
                 "NodeNameToMetaVictims[a].Pods[0]: expected a JSON object, got string", id="meta-pod-not-object"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": {"a": {"Pods": [{"UID": ""}]}}},
                 "NodeNameToMetaVictims[a].Pods[0].UID: expected a non-empty string, got an empty one", id="empty-uid"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": {"a": {"Pods": [], "NumPDBViolations": "one"}}},
                 "NodeNameToMetaVictims[a].NumPDBViolations: expected an integer, got string", id="pdb-string"),
    pytest.param({"Pod": POD, "NodeNameToMetaVictims": {"a": {"Pods": [], "NumPDBViolations": True}}},
                 "NodeNameToMetaVictims[a].NumPDBViolations: expected an integer, got boolean", id="pdb-boolean"),
    pytest.param({"Pod": POD, "NodeNameToVictims": {"a": {"Pods": [_running("v", "a", cpu="lots")]}}},
                 "NodeNameToVictims[a].Pods[0].spec.containers[0].resources.requests.cpu: invalid quantity 'lots': "
                 "expected <number><suffix> such as 100m, 1.5, 2Gi or 1e3",
                 id="full-bad-pod"),
    pytest.param({"Pod": POD, "NodeNameToVictims": {"a": {"Pods": [_no_uid()]}}},
                 "NodeNameToVictims[a].Pods[0].metadata.uid: required", id="full-pod-without-uid"),
])
async def test_malformed_preemption_args_are_400_naming_the_field(extender: ExtenderServer,
                                                                  http: aiohttp.ClientSession,
                                                                  body: dict[str, Any], error: str) -> None:
    status, result = await post(http, f"{extender.url}/preempt", body)
    assert (status, result) == (400, {"Error": error})
