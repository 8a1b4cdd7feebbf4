"""Every PromQL expression of the Grafana dashboard returns series from a real Prometheus.

Prometheus scrapes a live scheduler (in this process, against the embedded control plane,
with TargetLoadPacking reading its node metrics from that same Prometheus), a standalone
extender, and the control plane's simulated node-exporter, with vecsched's recording rules
and alerts loaded. The scenario, run twice, makes every series the panels read exist and
move: pods bound, one that fits nowhere (retried, so its repeated FailedScheduling event is
suppressed), one malformed, a preemption, a binding that fails once, extender requests. The
first round creates the labelled series, the second (after a scrape) gives their rates and
quantiles numbers. Each expression, its Grafana variables substituted, must then return at
least one series, and one with a number (not NaN); every rule must evaluate without error.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.objects import prepare_create
from scheduler.config import SchedulerConfig, default_config, parse_config
from scheduler.extender import ExtenderSettings, serve_extender
from scheduler.runtime import Scheduler
from tests.controlplane.support import control_plane
from tests.deploy.support import DEPLOY
from tests.extender.wire import kube_node, kube_pod, node_list, post
from tests.live.support import pod, running, wait_for
from tests.prometheus_support import Prometheus, Target, free_port, prometheus

DASHBOARD = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
RULES = DEPLOY / "monitoring" / "rules"
RATE_INTERVAL = "5m"
"""What ``$__rate_interval`` (and ``$__interval``, ``$__range``) become: Grafana picks at least
four scrape intervals; 5 minutes holds this whole test, so every rate sees every event."""


def variables() -> dict[str, str]:
    """The dashboard's own variables at their current values (``job`` -> ``vecsched-metrics``)."""
    return {v["name"]: v["current"]["value"] for v in DASHBOARD["templating"]["list"] if v["current"]}


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's variables replaced: ``$__rate_interval`` and its kin by
    RATE_INTERVAL, ``$name`` and ``${name}`` by ``values``; an unknown variable is an error."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name.startswith("__"):
            return RATE_INTERVAL
        assert name in values, f"unknown dashboard variable ${name} in {expr!r}"
        return values[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for panel in DASHBOARD["panels"]:
        for t in panel.get("targets", []):
            yield f"{panel['title']} {t['refId']}", t["expr"]


@pytest.mark.parametrize(("expr", "expected"), [
    ('sum(rate(x{job=~"$job"}[$__rate_interval]))', 'sum(rate(x{job=~"vecsched-metrics"}[5m]))'),
    ('max(y{job=~"${extender_job}"}) offset $__interval', 'max(y{job=~"vecsched-extender"}) offset 5m'),
    ("instance:node_cpu:ratio", "instance:node_cpu:ratio"),
])
def test_substitute(expr: str, expected: str) -> None:
    assert substitute(expr, variables()) == expected


def _config(prometheus_url: str) -> SchedulerConfig:
    """The default profile plus TargetLoadPacking reading ``prometheus_url``."""
    profile = default_config().profiles[0].scheduler_name
    return parse_config({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": profile,
                      "plugins": {"multiPoint": {"enabled": [{"name": "TargetLoadPacking"}]}},
                      "pluginConfig": [{"name": "TargetLoadPacking", "args": {
                          "metricProvider": {"type": "Prometheus", "address": prometheus_url}}}]}]},
        source="dashboard-test")


def _past_admission(srv: ApiServer, obj: dict[str, Any]) -> None:
    """Store a pod the API's validation would refuse (the scheduler reports it as malformed)."""
    rt = srv.resource("pods")
    srv.store.create(rt, prepare_create(rt, obj, namespace="default"))


def _total(metric: Any) -> float:
    """The sum of a prometheus_client counter's ``_total`` samples over its labels."""
    return float(sum(x.value for fam in metric.collect() for x in fam.samples if x.name.endswith("_total")))


def _finite(series: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in series)


async def _extender_traffic(url: str) -> None:
    """Requests for the extender's panels: two filters, a prioritize, and a malformed one (400)."""
    args = {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"), kube_node("b"))}
    async with aiohttp.ClientSession() as http:
        for verb in ("filter", "filter", "prioritize"):
            assert (await post(http, f"{url}/{verb}", args))[0] == 200
        assert (await post(http, f"{url}/filter", b"{"))[0] == 400


def _node_of(srv: ApiServer, name: str) -> str:
    return next((p["spec"].get("nodeName") or "" for p in srv.list("pods", namespace="default")
                 if p["metadata"]["name"] == name), "")


async def _round(srv: ApiServer, s: Scheduler, extender_url: str, n: int) -> None:
    """One of everything the panels count. Round 1 makes the labelled series exist; round 2,
    after Prometheus has scraped them, makes their rates (and quantiles) numbers."""
    smalls = [f"small-{n}-{i}" for i in range(4)]
    for name in smalls:  # victims leave within their 1 s grace period
        srv.create("pods", pod(name, cpu="100m", terminationGracePeriodSeconds=1))
    await wait_for(lambda: all(_node_of(srv, name) for name in smalls), what=f"round {n}: the small pods bound")
    # Fits nowhere, and no preemption helps: unschedulable by NodeResourcesFit (retried on
    # every later pod event, its repeated FailedScheduling event is suppressed as a duplicate).
    srv.create("pods", pod(f"huge-{n}", cpu="64"))
    _past_admission(srv, pod(f"lots-{n}", cpu="lots"))
    # A whole node (4 CPU) with priority 1000: pods of priority 0 make room on a node
    # without an urgent pod -- a preemption with victims.
    preemptions = _total(s.metrics.preemption_attempts)
    srv.create("pods", pod(f"urgent-{n}", cpu="4", priorityClassName="urgent"))
    await wait_for(lambda: bool(_node_of(srv, f"urgent-{n}")), timeout=20, what=f"round {n}: urgent bound")
    assert _total(s.metrics.preemption_attempts) > preemptions
    # A binding that fails: every API request but watches answers 500 until one has.
    failures = _total(s.metrics.binding_failures)
    srv.faults.include_watches = False
    srv.faults.error_rate = 1.0
    srv.create("pods", pod(f"flaky-{n}", cpu="100m"))
    await wait_for(lambda: _total(s.metrics.binding_failures) > failures, what=f"round {n}: a failed binding")
    srv.faults.reset()
    await wait_for(lambda: bool(_node_of(srv, f"flaky-{n}")), what=f"round {n}: flaky bound on retry")
    await _extender_traffic(extender_url)


async def test_every_dashboard_expression_returns_series() -> None:
    # 4 nodes of 4 CPU.
    async with control_plane(nodes=4) as srv, \
            serve_extender(config=default_config(),
                           settings=ExtenderSettings(bind_address="127.0.0.1", port=0)) as extender:
        sched_port = free_port()
        targets = [Target("vecsched-metrics", f"http://127.0.0.1:{sched_port}/metrics"),
                   Target("vecsched-extender", f"{extender.url}/metrics"),
                   Target("node-exporter", f"{srv.url}/metrics/node-exporter", honor_labels=True)]
        rule_files = [RULES / "recording-rules.yaml", RULES / "alerts.yaml"]
        async with prometheus(targets=targets, rule_files=rule_files) as prom:
            srv.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                           "metadata": {"name": "urgent"}, "value": 1000})
            # Every plugin's time is observed (upstream samples 10% of cycles). Plain HTTP on a
            # loopback port chosen before Prometheus starts (secure=False), so it is scraped as is.
            async with running(srv, config=_config(prom.url), port=sched_port, bind_address="127.0.0.1", secure=False,
                               load_metrics_interval=1.0, plugin_metrics_sample=1.0) as s:
                await prom.wait_for('up{job="vecsched-metrics"} == 1', what="the scheduler scraped")
                await _round(srv, s, extender.url, 1)
                await _scraped_since(prom, time.time())
                await _round(srv, s, extender.url, 2)
                await _scraped_since(prom, time.time())

                values = variables()
                failed: list[str] = []
                for where, expr in dashboard_exprs():
                    query = substitute(expr, values)
                    try:
                        await prom.wait_for(query, timeout=30, what=where)
                        await _wait_finite(prom, query)
                    except AssertionError as e:
                        failed.append(f"{where}: {e}")
                assert not failed, "\n".join(failed)
                # The rules evaluate without errors over the real series.
                bad = [(r["name"], r.get("lastError")) for r in await prom.rules() if r["health"] != "ok"]
                assert not bad, bad


async def _scraped_since(prom: Prometheus, t: float) -> None:
    """Wait until Prometheus has scraped the scheduler and the extender after Unix time ``t``."""
    for job in ("vecsched-metrics", "vecsched-extender"):
        await prom.wait_for(f'timestamp(up{{job="{job}"}}) > {t}', what=f"{job} scraped after {t}")


async def _wait_finite(prom: Prometheus, query: str, timeout: float = 15) -> list[dict[str, Any]]:
    """Poll ``query`` until some series has a number (not NaN): a recording rule's rate needs
    two samples."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        series = await prom.query(query)
        if _finite(series):
            return series
        if loop.time() > deadline:
            raise AssertionError(f"no series with a number after {timeout}s: {query} -> "
                                 f"{[(x['metric'], x['value'][1]) for x in series][:5]}")
        await asyncio.sleep(0.5)
