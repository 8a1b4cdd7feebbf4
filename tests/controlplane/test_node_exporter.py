"""The simulated nodes' utilisation for Prometheus: node-exporter series and the recording rules' outputs.

Every document is read over real HTTP from the embedded API server. A fake
clock drives the usage counters, so each number is worked out exactly: a
node's CPUs are busy (mode ``user``) for the share of its CPU capacity its
pods use, idle for the rest; memory available is capacity less the pods'
working set. The last test has a real Prometheus scrape the endpoints and
evaluate kube-prometheus' CPU rule over them.
"""

from __future__ import annotations

import argparse
import io
import math
import re
from contextlib import redirect_stderr
from typing import Any

import aiohttp
import pytest

from scheduler import cli
from scheduler.apiserver import ApiServer, NodeShape, command
from scheduler.apiserver.resourcemetrics import METRICS_CONTENT_TYPE
from tests.live.support import FakeClock
from tests.prometheus_support import Target, prometheus

from .support import control_plane, wait_for

T0 = 1_700_000_000.0
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _pod(name: str, node: str, *, cpu: str = "", memory: str = "", usage_cpu: str = "",
         usage_memory: str = "") -> dict[str, Any]:
    """A pod bound to ``node`` with one container requesting ``cpu`` / ``memory``, and usage annotations."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    annotations = {f"vecsched.io/simulated-usage-{k}": v for k, v in (("cpu", usage_cpu), ("memory", usage_memory))
                   if v}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                                                        "resources": {"requests": requests}}]}}


async def _running(srv: ApiServer, *pods: dict[str, Any]) -> None:
    for p in pods:
        srv.create("pods", p, namespace="default")
    names = {p["metadata"]["name"] for p in pods}
    await wait_for(lambda: {p["metadata"]["name"] for p in srv.list("pods", namespace="default")
                            if p["status"]["phase"] == "Running"} >= names, what=f"{sorted(names)} running")


async def _get(srv: ApiServer, path: str, **headers: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession(base_url=srv.url) as http, http.get(path, headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def _scrape(srv: ApiServer, path: str) -> Series:
    """The samples of a metrics document: (name, sorted label pairs) -> value."""
    status, content_type, text = await _get(srv, path)
    assert (status, content_type) == (200, METRICS_CONTENT_TYPE), text
    out: Series = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[(m[1], tuple(sorted(_LABEL.findall(m[2]))))] = float(m[3])
    return out


def _cpu(series: Series, node: str) -> dict[tuple[str, str], float]:
    """A node's ``node_cpu_seconds_total`` as (cpu, mode) -> seconds."""
    out = {}
    for (name, labels), v in series.items():
        d = dict(labels)
        if name == "node_cpu_seconds_total" and d["instance"] == node:
            out[(d["cpu"], d["mode"])] = v
    return out


def _value(series: Series, name: str, node: str) -> float:
    return series[(name, (("instance", node),))]


async def test_node_exporter_document() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=[NodeShape(count=1, cpu="2", memory="4Gi")], kubelet_clock=clock,
                             simulated_usage_ratio=0.5) as srv:
        await _running(srv, _pod("web", "node-0000", cpu="1", memory="1Gi"))
        # requests x 0.5: 500m of 2 cores = .25 busy; for 8 s each CPU is 2 s user, 6 s idle
        # memory: 1Gi x .5 = 512Mi in use; available 4Gi - 512Mi = 3758096384 bytes of 4294967296
        clock.advance(8)
        status, content_type, text = await _get(srv, "/metrics/node-exporter")
        assert (status, content_type) == (200, METRICS_CONTENT_TYPE)
        assert text == """\
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="idle"} 6
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="iowait"} 0
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="irq"} 0
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="nice"} 0
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="softirq"} 0
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="steal"} 0
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="system"} 0
node_cpu_seconds_total{cpu="0",instance="node-0000",mode="user"} 2
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="idle"} 6
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="iowait"} 0
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="irq"} 0
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="nice"} 0
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="softirq"} 0
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="steal"} 0
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="system"} 0
node_cpu_seconds_total{cpu="1",instance="node-0000",mode="user"} 2
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes{instance="node-0000"} 3.758096384e+09
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes{instance="node-0000"} 4.294967296e+09
"""
        status, _, text = await _get(srv, "/metrics/node-utilisation")
        assert status == 200 and text == """\
# HELP instance:node_cpu:ratio Share of the node's CPU capacity in use, 0..1 (the recording rule \
instance:node_cpu:ratio, computed directly).
# TYPE instance:node_cpu:ratio gauge
instance:node_cpu:ratio{instance="node-0000"} 0.25
# HELP instance:node_memory_utilisation:ratio Share of the node's memory in use, 1 - MemAvailable / MemTotal \
(the recording rule instance:node_memory_utilisation:ratio, computed directly).
# TYPE instance:node_memory_utilisation:ratio gauge
instance:node_memory_utilisation:ratio{instance="node-0000"} 0.125
"""


# Three nodes, usage ratio .5 for what no annotation sets. Per node after 10 s:
# (name, CPUs shown, user s per CPU, idle s per CPU, MemTotal, MemAvailable, cpu ratio, memory ratio)
NODES = [
    # 4 cores, 8Gi. a: no annotations, 2 cores/2Gi requested x .5 -> 1 core, 1Gi.
    # b: cpu annotated 500m (its 1-core request ignored), memory 1Gi requested x .5 -> 512Mi.
    # 1.5 of 4 cores = .375 -> 3.75 s user, 6.25 s idle per CPU; 1.5Gi used: 8Gi - 1.5Gi = 6.5Gi = 6979321856
    # available; 1 - 6.5/8 = .1875
    ("node-0000", 4, 3.75, 6.25, 8 * 2**30, 6979321856, 0.375, 0.1875),
    # 2500m, 4Gi: two CPUs (whole cores). c: annotated 5 cores and 6Gi, above capacity: CPUs busy all the
    # time (10 s user, 0 idle), 0 available (not 4Gi - 6Gi), ratios 1 and 1
    ("node-0001", 2, 10.0, 0.0, 4 * 2**30, 0, 1.0, 1.0),
    # 12 cores, 1Gi, no pods: 10 s idle on each of 12 CPUs, all memory available
    ("node-0002", 12, 0.0, 10.0, 2**30, 2**30, 0.0, 0.0),
]


async def test_usage_per_node_from_annotations_and_ratio() -> None:
    clock = FakeClock(start=T0)
    shapes = [NodeShape(count=1, cpu="4", memory="8Gi"), NodeShape(count=1, cpu="2500m", memory="4Gi"),
              NodeShape(count=1, cpu="12", memory="1Gi")]
    async with control_plane(nodes=shapes, kubelet_clock=clock, simulated_usage_ratio=0.5) as srv:
        await _running(srv, _pod("a", "node-0000", cpu="2", memory="2Gi"),
                       _pod("b", "node-0000", cpu="1", memory="1Gi", usage_cpu="500m"),
                       _pod("c", "node-0001", cpu="1", usage_cpu="5", usage_memory="6Gi"))
        clock.advance(10)
        exporter = await _scrape(srv, "/metrics/node-exporter")
        ratios = await _scrape(srv, "/metrics/node-utilisation")
        for node, cpus, user, idle, total, available, cpu_ratio, mem_ratio in NODES:
            modes = {"idle": idle, "user": user, "iowait": 0, "irq": 0, "nice": 0, "softirq": 0, "steal": 0,
                     "system": 0}
            assert _cpu(exporter, node) == {(str(i), m): v for i in range(cpus) for m, v in modes.items()}, node
            assert (_value(exporter, "node_memory_MemTotal_bytes", node),
                    _value(exporter, "node_memory_MemAvailable_bytes", node)) == (total, available), node
            assert (_value(ratios, "instance:node_cpu:ratio", node),
                    _value(ratios, "instance:node_memory_utilisation:ratio", node)) == (cpu_ratio, mem_ratio), node
            # the rules' arithmetic over the raw series gives the same (CPU: over these 10 s)
            assert sum(exporter[k] for k in exporter if k[0] == "node_cpu_seconds_total"
                       and dict(k[1])["instance"] == node and dict(k[1])["mode"] == "user") / 10 / cpus == cpu_ratio
            assert 1 - available / total == mem_ratio
        _, _, text = await _get(srv, "/metrics/node-exporter")
        cpus_in_order = [re.match(r'node_cpu_seconds_total\{cpu="(\d+)",instance="node-0002",mode="idle"\}', x)
                         for x in text.splitlines()]
        # series sorted by label value as strings, as the Go client sorts them: "10" before "2"
        assert [m[1] for m in cpus_in_order if m] == ["0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"]


async def test_counters_grow_with_usage_over_time() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=[NodeShape(count=1, cpu="4", memory="8Gi")], kubelet_clock=clock,
                             simulated_usage_ratio=0.5) as srv:
        await _running(srv, _pod("a", "node-0000", cpu="2"), _pod("b", "node-0000", cpu="1", usage_cpu="500m"))
        clock.advance(4)  # 1 core (2 x .5) + 500m = 1.5 of 4: .375 -> 1.5 s user, 2.5 s idle per CPU
        first = _cpu(await _scrape(srv, "/metrics/node-exporter"), "node-0000")
        assert (first[("0", "user")], first[("0", "idle")]) == (1.5, 2.5)
        # kubectl annotate pod b --overwrite ...usage-cpu=2500m: 1 + 2.5 = 3.5 of 4 = .875 from now on
        srv.store.update(srv.resource("pods"), "default", "b", lambda p: {
            **p, "metadata": {**p["metadata"], "annotations": {"vecsched.io/simulated-usage-cpu": "2500m"}}})
        clock.advance(2)  # + 2 x .875 = 1.75 user, + 2 x .125 = .25 idle
        second = _cpu(await _scrape(srv, "/metrics/node-exporter"), "node-0000")
        assert {k: second[k] - first[k] for k in second if k[1] in ("user", "idle")} == {
            (str(c), m): v for c in range(4) for m, v in (("user", 1.75), ("idle", 0.25))}
        assert (await _scrape(srv, "/metrics/node-utilisation"))[
            ("instance:node_cpu:ratio", (("instance", "node-0000"),))] == 0.875
        # b deleted: its usage stops, the counters keep what it used: 1 core of 4 for 4 s -> + 1 user, + 3 idle
        srv.ops.delete(srv.resource("pods"), namespace="default", name="b", grace=0)
        clock.advance(4)
        third = _cpu(await _scrape(srv, "/metrics/node-exporter"), "node-0000")
        assert (third[("3", "user")], third[("3", "idle")]) == (1.5 + 1.75 + 1, 2.5 + 0.25 + 3)


async def test_counters_follow_a_resized_node() -> None:
    clock = FakeClock(start=T0)
    async with control_plane(nodes=[NodeShape(count=1, cpu="2", memory="2Gi")], kubelet_clock=clock) as srv:
        await _running(srv, _pod("a", "node-0000", cpu="1", memory="1Gi"))
        clock.advance(10)  # 1 of 2 cores: 5 s user, 5 s idle per CPU
        srv.store.update(srv.resource("nodes"), "", "node-0000", lambda n: {
            **n, "status": {**n["status"], "capacity": {**n["status"]["capacity"], "cpu": "4", "memory": "4Gi"}}})
        clock.advance(10)  # 1 of 4 cores: + 2.5 user, + 7.5 idle on each of 4 CPUs (the new ones too)
        series = await _scrape(srv, "/metrics/node-exporter")
        cpu = _cpu(series, "node-0000")
        assert {k: v for k, v in cpu.items() if k[1] in ("user", "idle")} == {
            (str(c), m): v for c in range(4) for m, v in (("user", 7.5), ("idle", 12.5))}
        # 4Gi - 1Gi used
        assert _value(series, "node_memory_MemAvailable_bytes", "node-0000") == 3 * 2**30


# (simulated usage ratio, requests cpu / memory) -> the pod's cores and bytes in use
RATIOS = [
    (1.0, "1500m", "1Gi", 1.5, 2**30),  # the default: usage = requests, as before
    (0.0, "1500m", "1Gi", 0.0, 0),  # pods idle unless annotated
    (0.3, "1", "1000", 0.3, 300),  # 1000 x 3/10 exactly: not 301 from 1000 x 0.30000000000000004 rounded up
    (2.5, "400m", "100Mi", 1.0, 262144000),  # 100Mi = 104857600 x 2.5
]


@pytest.mark.parametrize(("ratio", "cpu", "memory", "cores", "used"), RATIOS)
async def test_usage_ratio_of_requests(ratio: float, cpu: str, memory: str, cores: float, used: int) -> None:
    async with control_plane(nodes=1, simulated_usage_ratio=ratio) as srv:
        await _running(srv, _pod("p", "node-0000", cpu=cpu, memory=memory))
        usage = srv.node_usage()["node-0000"]
        assert (usage.cpu_cores, usage.memory_bytes) == (cores, used)


async def test_served_without_authentication() -> None:
    rbac: list[dict[str, Any]] = []  # RBAC on, and alice may do nothing
    async with control_plane(nodes=1, tokens={"alice-token": "alice"}, rbac=rbac) as srv:
        for path in ("/metrics/node-exporter", "/metrics/node-utilisation"):
            anonymous = await _get(srv, path)
            assert anonymous[:2] == (200, METRICS_CONTENT_TYPE) and 'instance="node-0000"' in anonymous[2], path
            alice = await _get(srv, path, Authorization="Bearer alice-token")
            assert alice[0] == 200, path
            async with aiohttp.ClientSession(base_url=srv.url) as http, http.post(path) as r:
                assert r.status == 405, path
        # the kubelet's resource metrics still need a user
        assert (await _get(srv, "/metrics/nodes"))[0] == 401


# `vecsched apiserver --simulated-usage-ratio VALUE`: what the ratio is, or the one-line error
FLAG_VALUES = [
    ("0", 0.0), ("0.5", 0.5), ("10", 10.0),
    ("10.5", None), ("-0.1", None), ("half", None), ("nan", None), ("inf", None),
]


@pytest.mark.parametrize(("value", "ratio"), FLAG_VALUES)
def test_usage_ratio_flag(value: str, ratio: float | None) -> None:
    if ratio is not None:
        parser = argparse.ArgumentParser()
        command.configure(parser)
        args = parser.parse_args(["--port", "0", "--nodes", "1", "--simulated-usage-ratio", value])
        assert command._server(args).kubelet.usage_ratio == ratio
        return
    err = io.StringIO()
    with redirect_stderr(err):
        code = cli.main(["apiserver", "--port", "0", "--simulated-usage-ratio", value])
    assert (code, err.getvalue()) == (
        2, f"vecsched apiserver: --simulated-usage-ratio must be a number in [0, 10], got {value!r}\n")


@pytest.mark.parametrize("ratio", [-1.0, 10.01, math.nan])
def test_usage_ratio_keyword_is_checked(ratio: float) -> None:
    with pytest.raises(ValueError, match=r"^simulated_usage_ratio must be a number in \[0, 10\], got "):
        ApiServer(nodes=1, simulated_usage_ratio=ratio)


# kube-prometheus' instance:node_cpu:ratio rule, with a 10 s rate window instead of 5m so that the test need not
# wait five minutes for the window to fill (Prometheus' rate() divides by the whole window)
CPU_RULE = ('sum without (cpu, mode) (rate(node_cpu_seconds_total{job="node-exporter",mode!="idle",mode!="iowait",'
            'mode!="steal"}[10s])) / ignoring(cpu) group_left count without (cpu, mode) '
            '(node_cpu_seconds_total{job="node-exporter",mode="idle"})')
MEMORY_RULE = ('1 - (node_memory_MemAvailable_bytes{job="node-exporter"} / '
               'node_memory_MemTotal_bytes{job="node-exporter"})')


async def test_prometheus_rules_over_the_series_match_the_direct_ratios() -> None:
    # node-0000: 1 of 2 cores and 1Gi of 4Gi requested (ratio 1): 50% CPU, 25% memory; node-0001 idle
    shapes = [NodeShape(count=1, cpu="2", memory="4Gi"), NodeShape(count=1, cpu="4", memory="8Gi")]
    async with control_plane(nodes=shapes) as srv:
        await _running(srv, _pod("half", "node-0000", cpu="1", memory="1Gi"))
        targets = [Target(job="node-exporter", url=f"{srv.url}/metrics/node-exporter", honor_labels=True),
                   Target(job="node-utilisation", url=f"{srv.url}/metrics/node-utilisation", honor_labels=True)]
        async with prometheus(targets=targets) as prom:
            # 1 s scrapes: 13 samples in 15 s means more than 10 s of history, the rate window is full
            await prom.wait_for('count_over_time(node_cpu_seconds_total{job="node-exporter",cpu="0",mode="idle",'
                                'instance="node-0000"}[15s]) > 12', timeout=60, what="12 s of node-exporter samples")
            direct = {r["metric"]["instance"]: float(r["value"][1])
                      for r in await prom.query('instance:node_cpu:ratio{job="node-utilisation"}')}
            cpu = {r["metric"]["instance"]: float(r["value"][1]) for r in await prom.query(CPU_RULE)}
            memory = {r["metric"]["instance"]: float(r["value"][1]) for r in await prom.query(MEMORY_RULE)}
            direct_memory = {r["metric"]["instance"]: float(r["value"][1]) for r in await prom.query(
                'instance:node_memory_utilisation:ratio{job="node-utilisation"}')}
        assert direct == {"node-0000": 0.5, "node-0001": 0.0}
        # the counters are read a few ms after Prometheus stamps the scrape: within 2% over 10 s
        assert cpu.keys() == direct.keys() and all(abs(cpu[n] - direct[n]) < 0.02 for n in cpu), cpu
        assert memory == direct_memory == {"node-0000": 0.25, "node-0001": 0.0}


async def test_no_nodes_no_series() -> None:
    async with control_plane(nodes=[]) as srv:
        assert await _get(srv, "/metrics/node-exporter") == (200, METRICS_CONTENT_TYPE, "")
        assert await _get(srv, "/metrics/node-utilisation") == (200, METRICS_CONTENT_TYPE, "")
