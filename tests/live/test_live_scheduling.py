"""Pods with our schedulerName are bound through the real API, reported, and counted."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape
from scheduler.config import API_VERSION, parse_config
from scheduler.kube.client import ClientSettings, connect
from tests.live.support import (assert_no_overcommit, bound_count, condition, events_for, pod, pods_of, running,
                                 wait_for)


async def test_pods_are_bound_with_events_and_condition(apiserver: ApiServer) -> None:
    async with running(apiserver, plugin_metrics_sample=1.0) as s:
        for i in range(20):
            apiserver.create("pods", pod(f"p{i}"))
        apiserver.create("pods", pod("other", scheduler="default-scheduler"))
        await wait_for(lambda: bound_count(apiserver) == 20, what="20 pods bound")
        await wait_for(lambda: len([e for e in apiserver.list("events", namespace="default")
                                    if e["reason"] == "Scheduled"]) == 20, what="20 Scheduled events")
        # Seen through the API with a real client, as kubectl describe would.
        client = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
        try:
            p = await client.request("GET", "/api/v1/namespaces/default/pods/p3")
            evs = await client.request("GET", "/api/v1/namespaces/default/events",
                                       query=[("fieldSelector", "involvedObject.name=p3")])
        finally:
            await client.close()
        node = p["spec"]["nodeName"]
        cond = condition(p)
        assert cond is not None and cond["status"] == "True"
        [ev] = evs["items"]
        assert ev["reason"] == "Scheduled" and ev["type"] == "Normal"
        assert ev["message"] == f"Successfully assigned default/p3 to {node}"
        assert ev["source"]["component"] == "vecsched" and ev["reportingComponent"] == "vecsched"
        assert ev["involvedObject"]["uid"] == p["metadata"]["uid"]
        # The pod of another scheduler is left alone.
        assert not pods_of(apiserver)["other"]["spec"].get("nodeName")
        await wait_for(lambda: s.cycle is not None and s.cycle.bound == 20, what="bindings counted")
        async with aiohttp.ClientSession() as http:
            async with http.get(s.server.url + "/metrics") as r:  # type: ignore[union-attr]
                text = await r.text()
        assert 'scheduler_schedule_attempts_total{profile="vecsched",result="scheduled"} 20.0' in text
        assert 'scheduler_pod_scheduling_attempts_count 20.0' in text
        assert ('scheduler_plugin_execution_duration_seconds_count{extension_point="Filter",plugin="NodeResourcesFit",'
                'status="Success"} 20.0') in text
        assert ('scheduler_framework_extension_point_duration_seconds_count{extension_point="Filter",'
                'profile="vecsched",status="Success"} 20.0') in text
    assert_no_overcommit(apiserver)


async def test_several_profiles_each_schedule_their_own(apiserver: ApiServer) -> None:
    config = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [
        {"schedulerName": "vecsched"},
        {"schedulerName": "vecsched-spread", "plugins": {"score": {"disabled": [{"name": "ImageLocality"}]}}},
    ]})
    async with running(apiserver, config=config):
        apiserver.create("pods", pod("a", scheduler="vecsched"))
        apiserver.create("pods", pod("b", scheduler="vecsched-spread"))
        apiserver.create("pods", pod("c", scheduler="someone-else"))
        await wait_for(lambda: bound_count(apiserver) == 2, what="two pods bound")
        pods = pods_of(apiserver)
        assert pods["a"]["spec"]["nodeName"] and pods["b"]["spec"]["nodeName"]
        assert not pods["c"]["spec"].get("nodeName")


async def test_unschedulable_pod_is_reported_then_placed_when_a_node_arrives(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        apiserver.create("pods", pod("big", cpu="16"))
        await wait_for(lambda: bool(events_for(apiserver, "big", reason="FailedScheduling")), what="FailedScheduling")
        [ev] = events_for(apiserver, "big", reason="FailedScheduling")
        assert ev["type"] == "Warning"
        # 16 CPUs is more than any node's allocatable: no eviction can help (unresolvable).
        assert ev["message"] == ("0/4 nodes are available: 4 Insufficient cpu. "
                                 "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.")
        await wait_for(lambda: condition(pods_of(apiserver)["big"]) is not None, what="PodScheduled condition")
        cond = condition(pods_of(apiserver)["big"])
        assert cond is not None
        assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", ev["message"])
        await wait_for(lambda: s.queue.where("default/big") == "unschedulable", what="pod parked")
        text = s.metrics.exposition().decode()
        assert 'scheduler_unschedulable_pods{plugin="NodeResourcesFit",profile="vecsched"} 1.0' in text
        assert 'scheduler_pending_pods{queue="unschedulable"} 1.0' in text
        assert 'scheduler_schedule_attempts_total{profile="vecsched",result="unschedulable"}' in text
        started = time.monotonic()
        apiserver.add_node(name="huge", shape=NodeShape(cpu="32"))
        await wait_for(lambda: pods_of(apiserver)["big"]["spec"].get("nodeName") == "huge", what="placed on new node")
        assert time.monotonic() - started < 2.0  # moved by the NodeAdd event, not the 5-minute flush
        # Retries did not flood the API with reports.
        assert len(events_for(apiserver, "big", reason="FailedScheduling")) == 1
        await wait_for(lambda: len(events_for(apiserver, "big", reason="Scheduled")) == 1, what="Scheduled event")


async def test_gated_pod_waits_for_its_gates(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        apiserver.create("pods", pod("gated", schedulingGates=[{"name": "example.com/wait"}]))
        await wait_for(lambda: s.queue.counts()["gated"] == 1, what="gated")
        assert not pods_of(apiserver)["gated"]["spec"].get("nodeName")
        apiserver.store.update(apiserver.resource("pods"), "default", "gated",
                               lambda p: {**p, "spec": {k: v for k, v in p["spec"].items() if k != "schedulingGates"}})
        await wait_for(lambda: bound_count(apiserver) == 1, what="bound once ungated")


async def test_finished_pods_free_capacity(apiserver: ApiServer) -> None:
    async with running(apiserver) as s:
        for i in range(4):
            apiserver.create("pods", pod(f"fill{i}", cpu="3500m"))
        await wait_for(lambda: bound_count(apiserver) == 4, what="nodes filled")
        apiserver.create("pods", pod("late", cpu="3"))
        await wait_for(lambda: s.queue.where("default/late") == "unschedulable", what="late parked")
        apiserver.store.update(apiserver.resource("pods"), "default", "fill0",
                               lambda p: {**p, "status": {**p["status"], "phase": "Succeeded"}})
        await wait_for(lambda: bool(pods_of(apiserver)["late"]["spec"].get("nodeName")), what="late placed")
        assert pods_of(apiserver)["late"]["spec"]["nodeName"] == pods_of(apiserver)["fill0"]["spec"]["nodeName"]


async def test_kubectl_describe_shows_the_events(apiserver: ApiServer) -> None:
    kubectl = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    async with running(apiserver):
        apiserver.create("pods", pod("fits"))
        apiserver.create("pods", pod("too-big", cpu="64"))
        await wait_for(lambda: bound_count(apiserver) == 1, what="bound")
        await wait_for(lambda: bool(events_for(apiserver, "too-big", reason="FailedScheduling")), what="reported")
        await wait_for(lambda: bool(events_for(apiserver, "fits", reason="Scheduled")), what="reported")
        out = {}
        for name in ("fits", "too-big"):
            proc = await asyncio.create_subprocess_exec(kubectl, "--kubeconfig", str(apiserver.kubeconfig_path),
                                                        "describe", "pod", name, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
            out[name] = (await proc.communicate())[0].decode()
    node = pods_of(apiserver)["fits"]["spec"]["nodeName"]
    assert re.search(rf"Normal\s+Scheduled\s+\S+\s+vecsched\s+Successfully assigned default/fits to {node}", out["fits"])
    assert re.search(r"Warning\s+FailedScheduling\s+\S+\s+vecsched\s+0/4 nodes are available: 4 Insufficient cpu\.",
                     out["too-big"])
    assert re.search(r"PodScheduled\s+False", out["too-big"])


async def test_a_summary_at_info_and_each_decision_with_node_detail_at_debug(apiserver: ApiServer,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    import logging
    async with running(apiserver):
        with caplog.at_level(logging.DEBUG, logger="vecsched.cycle"):
            apiserver.create("pods", pod("logged", nodeSelector={"kubernetes.io/hostname": "node-0002"}))
            await wait_for(lambda: bound_count(apiserver) == 1, what="bound")
            await wait_for(lambda: any(r.msg == "scheduled pod" for r in caplog.records), what="decision logged")
    [line] = [r for r in caplog.records if r.msg == "scheduled pod"]
    fields = line.fields  # type: ignore[attr-defined]
    assert fields["pod"] == "default/logged" and fields["node"] == "node-0002" and line.levelname == "DEBUG"
    assert {"score", "duration_ms", "algorithm_ms", "feasible"} <= set(fields)
    # The first decision is summarised at once at info level, with its fields.
    [summary] = [r for r in caplog.records if r.msg == "scheduling summary"]
    assert summary.levelname == "INFO" and summary.fields["scheduled"] == 1  # type: ignore[attr-defined]
    assert summary.fields["pod"] == "default/logged" and summary.fields["last"] == "scheduled pod"  # type: ignore[attr-defined]
    detail = [r.getMessage() for r in caplog.records if r.levelname == "DEBUG"]
    assert any("node node-0002 for default/logged: total" in m for m in detail)
    assert any("node node-0000 for default/logged: infeasible: node(s) didn't match Pod's node affinity/selector" in m
               for m in detail)
