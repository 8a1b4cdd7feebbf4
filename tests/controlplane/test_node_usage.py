"""Node utilisation: usage from requests or annotations, CPU integrated over time, the kubelet's resource metrics.

A fake clock drives the usage counters and sample timestamps, so every
number below is worked out exactly; pods run on the embedded server's
simulated kubelets and the documents are rendered in-process (the HTTP routes
serve these same functions).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.errors import ApiError
from scheduler.apiserver.resourcemetrics import go_float
from scheduler.apiserver.usage import UsageTracker, pod_demand
from tests.apiserver.kube import pod_manifest
from tests.live.support import FakeClock

from .support import control_plane, wait_for

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z; sample timestamps are in ms: 1700000000000 + 1000 * seconds


def _pod(name: str, node: str, *containers: tuple[str, str, str], **annotations: str) -> dict[str, Any]:
    pod = pod_manifest(name, node=node)
    pod["spec"]["containers"] = [
        {"name": c, "image": "registry.k8s.io/pause:3.9",
         "resources": {"requests": {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}}}
        for c, cpu, mem in containers]
    if annotations:
        pod["metadata"]["annotations"] = {f"vecsched.io/simulated-usage-{k}": v for k, v in annotations.items()}
    return pod


async def _running(srv: ApiServer, *pods: dict[str, Any]) -> None:
    for p in pods:
        srv.create("pods", p, namespace="default")
    names = {p["metadata"]["name"] for p in pods}
    await wait_for(lambda: {p["metadata"]["name"] for p in srv.list("pods", namespace="default")
                            if p["status"]["phase"] == "Running"} >= names, what=f"{sorted(names)} running")


async def test_two_pods_for_ten_seconds() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=2, kubelet_clock=clock) as srv:
        await _running(srv, _pod("a", "node-0000", ("app", "250m", "64Mi")),
                       _pod("b", "node-0000", ("app", "500m", "128Mi")))
        clock.advance(10)
        usage = srv.node_usage()
        # 250m + 500m for 10 s: 0.75 cores -> 7.5 core-seconds; 64Mi + 128Mi = 201326592 bytes
        n = usage["node-0000"]
        assert (n.cpu_cores, n.cpu_seconds, n.memory_bytes, n.timestamp) == (0.75, 7.5, 201326592, T0 + 10)
        assert [(p.name, p.cpu_seconds) for p in n.pods] == [("a", 2.5), ("b", 5.0)]
        idle = usage["node-0001"]
        assert (idle.cpu_cores, idle.cpu_seconds, idle.memory_bytes, idle.pods) == (0.0, 0.0, 0, ())
        assert srv.node_resource_metrics("node-0000") == """\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="a"} 2.5 1700000010000
container_cpu_usage_seconds_total{container="app",namespace="default",pod="b"} 5 1700000010000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="a"} 6.7108864e+07 1700000010000
container_memory_working_set_bytes{container="app",namespace="default",pod="b"} 1.34217728e+08 1700000010000
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="a"} 1.7e+09
container_start_time_seconds{container="app",namespace="default",pod="b"} 1.7e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 7.5 1700000010000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2.01326592e+08 1700000010000
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="a"} 2.5 1700000010000
pod_cpu_usage_seconds_total{namespace="default",pod="b"} 5 1700000010000
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="default",pod="a"} 6.7108864e+07 1700000010000
pod_memory_working_set_bytes{namespace="default",pod="b"} 1.34217728e+08 1700000010000
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, \
0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""


async def test_one_document_for_every_node() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=2, kubelet_clock=clock) as srv:
        await _running(srv, _pod("a", "node-0001", ("app", "2", "")))
        clock.advance(3)  # 2 cores for 3 s: 6 core-seconds on node-0001, nothing on node-0000
        lines = srv.nodes_resource_metrics().splitlines()
        assert 'node_cpu_usage_seconds_total{node="node-0000"} 0 1700000003000' in lines
        assert 'node_cpu_usage_seconds_total{node="node-0001"} 6 1700000003000' in lines
        assert 'pod_cpu_usage_seconds_total{namespace="default",node="node-0001",pod="a"} 6 1700000003000' in lines
        assert ('container_cpu_usage_seconds_total{container="app",namespace="default",node="node-0001",pod="a"} '
                '6 1700000003000') in lines
        assert [x for x in lines if x.startswith("scrape_error")] == [
            'scrape_error{node="node-0000"} 0', 'scrape_error{node="node-0001"} 0']
        assert sum(x.startswith("# HELP node_cpu_usage_seconds_total") for x in lines) == 1  # one family, 2 series
        with pytest.raises(ApiError) as e:
            srv.node_resource_metrics("node-9999")
        assert e.value.code == 404


async def test_annotations_override_requests_and_can_change() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=1, kubelet_clock=clock) as srv:
        # 1500m shared by cpu requests 100m:300m -> 375m and 1125m; 1Gi with no memory requests -> 512Mi each
        await _running(srv, _pod("w", "node-0000", ("main", "100m", ""), ("side", "300m", ""),
                                 cpu="1500m", memory="1Gi"))
        clock.advance(4)
        pod = srv.node_usage()["node-0000"].pods[0]
        assert [(c.name, c.cpu_cores, c.memory_bytes, c.cpu_seconds) for c in pod.containers] == [
            ("main", 0.375, 536870912, 1.5), ("side", 1.125, 536870912, 4.5)]
        # kubectl annotate --overwrite ...usage-cpu=3: from now on 3 cores (4 s x 1.5 + 2 s x 3 = 12)
        srv.store.update(srv.resource("pods"), "default", "w", lambda p: {
            **p, "metadata": {**p["metadata"], "annotations": {**p["metadata"]["annotations"],
                                                                "vecsched.io/simulated-usage-cpu": "3"}}})
        clock.advance(2)
        node = srv.node_usage()["node-0000"]
        assert (node.cpu_cores, node.cpu_seconds, node.pods[0].cpu_seconds) == (3.0, 12.0, 12.0)


async def test_finished_and_deleted_pods_leave_the_node_counter() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=1, kubelet_clock=clock) as srv:
        await _running(srv, _pod("a", "node-0000", ("app", "1", "1Gi")), _pod("b", "node-0000", ("app", "2", "")))
        clock.advance(5)  # 3 cores x 5 s = 15
        srv.ops.delete(srv.resource("pods"), namespace="default", name="a", grace=0)  # force-deleted at T0+5
        clock.advance(5)  # + 2 cores x 5 s = 25; a's series are gone, its 5 core-seconds stay on the node
        node = srv.node_usage()["node-0000"]
        assert (node.cpu_cores, node.cpu_seconds, node.memory_bytes) == (2.0, 25.0, 0)
        assert [p.name for p in node.pods] == ["b"]


async def test_bad_usage_annotation_falls_back_to_requests() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=1, kubelet_clock=clock) as srv:
        await _running(srv, _pod("p", "node-0000", ("app", "200m", ""), cpu="lots"))
        await wait_for(lambda: any(e["reason"] == "InvalidSimulationAnnotation" and e["type"] == "Warning"
                                   for e in srv.list("events", namespace="default")), what="warning")
        clock.advance(10)
        assert srv.node_usage()["node-0000"].cpu_seconds == 2.0  # the 200m request for 10 s


def test_restart_starts_new_container_counters() -> None:
    clock = FakeClock(start=T0)
    usage = UsageTracker(clock=clock)
    usage.add_node("n")
    usage.start(("default", "p"), node="n", demand=[("app", 0.5, 100)])
    clock.advance(4)
    usage.restart(("default", "p"))  # 0.5 x 4 = 2 so far
    clock.advance(2)
    pod = usage.snapshot()["n"].pods[0]
    # the pod's counter goes on (2 + 1); the new container's counts from the restart (1), started then
    assert (pod.cpu_seconds, pod.containers[0].cpu_seconds, pod.containers[0].start_time) == (3.0, 1.0, T0 + 4)
    usage.stop(("default", "p"))
    clock.advance(10)
    assert usage.snapshot()["n"].cpu_seconds == 3.0


# value -> what Go's strconv.FormatFloat(v, 'g', -1, 64) prints (the Prometheus client's sample format)
GO_FLOATS = [
    (7.5, "7.5"), (10.0, "10"), (0.0, "0"), (123456.0, "123456"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
    (1624396248.3020916, "1.6243962483020916e+09"), (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5, "-2.5"),
    (-1234567.5, "-1.2345675e+06"), (268435456.0, "2.68435456e+08"), (1e21, "1e+21"), (0.5, "0.5"),
]


@pytest.mark.parametrize(("value", "text"), GO_FLOATS)
def test_sample_values_print_as_go_does(value: float, text: str) -> None:
    assert go_float(value) == text


async def test_metrics_served_over_http() -> None:
    """The node proxy path and the one-document endpoint answer Prometheus text, as a scrape reads it."""
    async with control_plane(nodes=2) as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            async with http.get("/api/v1/nodes/node-0001/proxy/metrics/resource") as r:
                text = await r.text()
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                assert "node_cpu_usage_seconds_total" in text
            async with http.get("/metrics/nodes") as r:
                text = await r.text()
                assert r.status == 200 and 'node="node-0000"' in text and 'node="node-0001"' in text
            async with http.get("/api/v1/nodes/ghost/proxy/metrics/resource") as r:
                assert r.status == 404


# (usage ratio, annotations, containers (name, cpu request, memory request)) -> per container (cores, bytes)
DEMANDS = [
    # ratio 1, no annotations: the requests, as before the ratio existed
    (1.0, {}, [("main", "250m", "64Mi"), ("side", "500m", "")], [(0.25, 67108864), (0.5, 0)]),
    # ratio .5: half of each request (64Mi / 2 = 33554432)
    (0.5, {}, [("main", "250m", "64Mi"), ("side", "500m", "")], [(0.125, 33554432), (0.25, 0)]),
    # ratio 0, cpu annotated 1500m: shared 100m:300m by the requests themselves (375m, 1125m); memory 1Gi x 0
    (0.0, {"cpu": "1500m"}, [("main", "100m", "1Gi"), ("side", "300m", "")], [(0.375, 0), (1.125, 0)]),
    # ratio 2, memory annotated 3Gi with no memory requests: 1.5Gi each; cpu 2 x 750m = 1.5 cores
    (2.0, {"memory": "3Gi"}, [("main", "750m", ""), ("side", "", "")], [(1.5, 1610612736), (0.0, 1610612736)]),
]


@pytest.mark.parametrize(("ratio", "annotations", "containers", "want"), DEMANDS)
def test_usage_ratio_applies_where_no_annotation_says(ratio: float, annotations: dict[str, str],
                                                      containers: list[tuple[str, str, str]],
                                                      want: list[tuple[float, int]]) -> None:
    demand, problems = pod_demand(_pod("p", "n", *containers, **annotations), ratio=ratio)
    assert ([(cpu, mem) for _, cpu, mem in demand], problems) == (want, [])
