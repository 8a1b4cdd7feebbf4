"""A malformed update reaching the live scheduler changes nothing in its cache: a Node keeps
its last readable state, an assigned Pod keeps charging its node what it charged before, and
each is named, with its field, in one warning line -- while scheduling goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.objects import prepare_create
from tests.live.support import bound_count, pod, pods_of, running, wait_for

_BIG = 2**70  # beyond int64: no Kubernetes API server stores it; the raw store does

NodeEdit = Callable[[dict[str, Any]], dict[str, Any]]


def _label(n: dict[str, Any]) -> dict[str, Any]:
    n["metadata"]["labels"]["zone"] = 7
    return n


def _taint(n: dict[str, Any]) -> dict[str, Any]:
    n["spec"] = {**n.get("spec", {}), "taints": [{"key": "k", "effect": "Sometimes"}]}
    return n


def _int(n: dict[str, Any]) -> dict[str, Any]:
    n["status"]["allocatable"] = {**n["status"]["allocatable"], "example.com/new": "1"}
    n["status"]["images"] = [{"names": ["big:1"], "sizeBytes": _BIG}]
    return n


_NODE_CASES: dict[str, tuple[NodeEdit, str]] = {
    "label-not-a-string": (_label, "metadata.labels.zone"),
    "unknown-taint-effect": (_taint, "spec.taints[0].effect"),
    "image-size-beyond-int64": (_int, "status.images[0].sizeBytes"),
}


@pytest.mark.parametrize("case", list(_NODE_CASES), ids=list(_NODE_CASES))
async def test_a_malformed_node_update_keeps_the_last_good_state(apiserver: ApiServer, case: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    edit, field = _NODE_CASES[case]
    caplog.set_level(logging.WARNING, logger="vecsched.cache")
    async with running(apiserver) as s:
        table = s.cache.table
        row = table.index["node-0000"]
        info, alloc, gen = table.infos[row], table.allocatable[row].copy(), table.node_generation
        nodes = apiserver.resource("nodes")
        apiserver.store.update(nodes, "", "node-0000", edit)
        await wait_for(lambda: "node-0000" in s.cache.skipped_nodes, what="the update refused")
        # A second malformed version with the same problem: counted, not logged again.
        apiserver.store.update(nodes, "", "node-0000", lambda n: {
            **n, "metadata": {**n["metadata"], "annotations": {"try": "2"}}})
        await wait_for(lambda: s.metrics.malformed_objects.labels("node")._value.get() == 2, what="both counted")
        assert field in s.cache.skipped_nodes["node-0000"]
        row = table.index["node-0000"]
        assert table.infos[row] is info and (table.allocatable[row] == alloc).all()
        assert table.node_generation == gen and "example.com/new" not in table.resource_index
        lines = [r.getMessage() for r in caplog.records if "malformed node" in r.getMessage()]
        assert lines == [f"ignoring a malformed node update, keeping its last readable state: node node-0000: "
                         f"{field}: {s.cache.skipped_nodes['node-0000'].split(': ', 2)[2]}"]
        # Still a node the scheduler places pods on, as it last read it.
        apiserver.create("pods", pod("pinned", nodeSelector={"kubernetes.io/hostname": "node-0000"}))
        await wait_for(lambda: bound_count(apiserver) == 1, what="the pinned pod bound")
        assert pods_of(apiserver)["pinned"]["spec"]["nodeName"] == "node-0000"


def _priority(p: dict[str, Any]) -> dict[str, Any]:
    p["spec"]["priority"] = _BIG  # pod_from_json reads it as an integer; check_tree refuses it
    return p


def _unreadable_cpu(p: dict[str, Any]) -> dict[str, Any]:
    p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"  # the reader refuses it
    return p


@pytest.mark.parametrize("edit", [_priority, _unreadable_cpu], ids=["priority-beyond-int64", "unreadable-cpu"])
async def test_a_malformed_assigned_pod_keeps_its_charge(apiserver: ApiServer, edit: NodeEdit) -> None:
    async with running(apiserver) as s:
        apiserver.create("pods", pod("run", cpu="1500m"))
        await wait_for(lambda: s.cache.node_of("default/run") is not None and not s.cache.is_assumed("default/run"),
                       what="run bound and confirmed")
        table = s.cache.table
        node = s.cache.node_of("default/run")
        assert node is not None
        row, cpu = table.index[node], table.resource_index["cpu"]
        assert table.requested[row, cpu] == 1500  # 1500m of a 4-CPU node
        pods = apiserver.resource("pods")
        apiserver.store.update(pods, "default", "run", edit)
        await wait_for(lambda: s.metrics.malformed_objects.labels("pod")._value.get() == 1
                       or "default/run" in s.cache.invalid_pods, what="the update refused")
        # Its node still counts 1500m for it, and a 3000m pod cannot join it (4000 - 1500 < 3000).
        assert s.cache.node_of("default/run") == node and table.requested[row, cpu] == 1500
        apiserver.create("pods", pod("big", cpu="3000m", nodeSelector={"kubernetes.io/hostname": node}))
        apiserver.create("pods", pod("other", cpu="3000m"))
        await wait_for(lambda: bool(pods_of(apiserver)["other"]["spec"].get("nodeName")), what="other bound")
        assert not pods_of(apiserver)["big"]["spec"].get("nodeName")
        assert table.requested[row, cpu] == 1500


async def test_a_malformed_pod_never_read_is_left_out(apiserver: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="vecsched")
    async with running(apiserver) as s:
        rt = apiserver.resource("pods")
        # (Admission would reset spec.priority; a field it leaves alone carries the bad integer.)
        bad = pod("ghost", cpu="2", nodeName="node-0001", scheduler="default-scheduler",
                  terminationGracePeriodSeconds=_BIG)
        apiserver.store.create(rt, prepare_create(rt, bad, namespace="default"))
        await wait_for(lambda: s.metrics.malformed_objects.labels("pod")._value.get() >= 1, what="ghost refused")
        table = s.cache.table
        assert s.cache.node_of("default/ghost") is None
        assert table.requested[table.index["node-0001"], table.resource_index["cpu"]] == 0
        [line] = [r.getMessage() for r in caplog.records if "ghost" in r.getMessage()]
        assert "pod default/ghost: spec.terminationGracePeriodSeconds: " in line and "not" in line


_OTHER_CASES: dict[str, tuple[str, str, dict[str, Any], str]] = {
    # resource, namespace, object, what skipped_other says
    "service-selector-beyond-int64": ("services", "default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
        "spec": {"selector": {"app": _BIG}, "ports": [{"port": 80}]}}, "Service default/svc"),
    "namespace-integer-beyond-int64": ("namespaces", "", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"team": "a"}},
        "spec": {"finalizers": [_BIG]}}, "Namespace team"),
}


@pytest.mark.parametrize("case", list(_OTHER_CASES), ids=list(_OTHER_CASES))
async def test_a_malformed_namespace_or_workload_is_left_out_in_one_line(
        apiserver: ApiServer, case: str, caplog: pytest.LogCaptureFixture) -> None:
    resource, ns, obj, label = _OTHER_CASES[case]
    caplog.set_level(logging.WARNING, logger="vecsched")
    async with running(apiserver) as s:
        rt = apiserver.resource(resource)
        apiserver.store.create(rt, prepare_create(rt, obj, namespace=ns))
        await wait_for(lambda: label in s.cache.skipped_other, what=f"{label} left out")
        assert s.cache.namespaces.get("team") is None
        lines = [r for r in caplog.records if label in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None  # one line, no traceback
        assert not [r for r in caplog.records if "handler failed" in r.getMessage()]
        apiserver.create("pods", pod("after"))
        await wait_for(lambda: bound_count(apiserver) == 1, what="scheduling goes on")
