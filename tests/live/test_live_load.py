"""Load-aware scheduling live: a real Prometheus scrapes the embedded control plane's node
utilisation, vecsched reads it as load-watcher does, and pods go where the load is low.

Two nodes are *hot* -- a pod requesting 100m and 64Mi but using 3 cores (``vecsched.io/
simulated-usage-cpu``) -- and two are *cold* -- a pod requesting 100m and 6Gi but using 200m
and 256Mi. By requests the hot nodes look emptier, so the default profile sends a new pod
there; by measured load they are busier, so the load-aware plugins send it to a cold node.
(The occupants differ in the memory they request, not the CPU: they were bound a moment
ago, so TargetLoadPacking adds their predicted CPU to the measured one, as upstream does for
pods the metrics may not show yet.) When Prometheus goes
away, the sample in use ages and the failed refreshes are counted; TargetLoadPacking goes on
with the last sample, LoadAware refuses nodes whose metrics are older than its expiration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.config import parse_config
from scoring.plugins.node_load import LoadMetrics
from tests.live.support import events_for, pod, pods_of, running, wait_async, wait_for
from tests.live.test_run_command import OPEN_METRICS, free_port
from tests.prometheus_support import Prometheus, Target, prometheus

HOT: Final = ("node-0000", "node-0001")
COLD: Final = ("node-0002", "node-0003")
USAGE: Final = "vecsched.io/simulated-usage-"
INTERVAL: Final = "0.5"
ALERTS: Final = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "rules" / "alerts.yaml"
"""Seconds between refreshes: short, so that a test sees several within a second or two."""


def placed(name: str, node: str, *, memory: str, usage_cpu: str, usage_memory: str) -> dict[str, Any]:
    p = pod(name, cpu="100m", memory=memory, nodeName=node)
    p["metadata"]["annotations"] = {f"{USAGE}cpu": usage_cpu, f"{USAGE}memory": usage_memory}
    return p


@asynccontextmanager
async def loaded_cluster() -> AsyncIterator[tuple[ApiServer, Prometheus]]:
    """4 nodes of 4 CPU / 8Gi: node-0000 and node-0001 at 3000m/4000m = 75% CPU used (64Mi
    requested), node-0002 and node-0003 at 200m/4000m = 5% (6Gi requested); a Prometheus
    scraping their utilisation every second, with a sample of every node in."""
    async with serve_apiserver(nodes=[NodeShape(count=4, cpu="4", memory="8Gi")], kubelet_delay=0.05,
                               bookmark_interval=0.5) as srv:
        for node in HOT:
            srv.create("pods", placed(f"hot-{node}", node, memory="64Mi", usage_cpu="3", usage_memory="64Mi"))
        for node in COLD:
            srv.create("pods", placed(f"cold-{node}", node, memory="6Gi", usage_cpu="200m", usage_memory="256Mi"))
        async with prometheus(targets=[Target("node-exporter", f"{srv.url}/metrics/node-utilisation",
                                              honor_labels=True)]) as prom:
            await prom.wait_for('count(instance:node_cpu:ratio > 0.7) == 2 and count(instance:node_cpu:ratio) == 4',
                                what="the hot nodes' CPU scraped")
            yield srv, prom


def profile(name: str, plugin: str, args: dict[str, Any]) -> dict[str, Any]:
    """A profile scoring by ``plugin`` instead of by requests (Trimaran's example configuration)."""
    return {"schedulerName": name,
            "plugins": {"multiPoint": {"enabled": [{"name": plugin}]},
                        "score": {"disabled": [{"name": "NodeResourcesFit"},
                                               {"name": "NodeResourcesBalancedAllocation"}]}},
            "pluginConfig": [{"name": plugin, "args": args}]}


def configuration(*profiles: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "vecsched"}, *profiles]}


def node_of(srv: ApiServer, name: str) -> str:
    return str(pods_of(srv)[name]["spec"].get("nodeName") or "")


async def scrape(url: str) -> dict[str, float]:
    """The scheduler's /metrics samples whose name starts with vecsched_load_metrics_."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", ssl=False) as r:
        text = await r.text()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("vecsched_load_metrics_")}


AGE: Final = "vecsched_load_metrics_age_seconds"
ERRORS: Final = 'vecsched_load_metrics_refresh_errors_total{source="prometheus"}'


async def test_vecsched_run_places_pods_by_the_load_prometheus_measured(tmp_path: Path) -> None:
    async with loaded_cluster() as (srv, prom):
        path = tmp_path / "scheduler.yaml"
        # TargetLoadPacking, target 40%; a pod of 100m is predicted at 150m (x1.5), the new one and
        # the node's recent occupant alike:
        # hot:  75% + 300/4000 = 82.5% > 40 -> 40 * (100 - 82.5) / 60 = 11.67 -> 12
        # cold:  5% + 300/4000 = 12.5% < 40 -> 60 * 12.5 / 40 + 40 = 58.75 -> 59
        path.write_text(yaml.safe_dump(configuration(profile("packing", "TargetLoadPacking", {
            "targetUtilization": 40, "metricProvider": {"type": "Prometheus", "address": prom.url}}))))
        port = free_port()
        url = f"https://127.0.0.1:{port}"  # self-signed, not verified by scrape(); /metrics always allowed
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", str(srv.kubeconfig_path),
            "--config", str(path), "--bind-address", "127.0.0.1", "--port", str(port), *OPEN_METRICS, "--no-leader-elect",
            "--load-metrics-interval", INTERVAL, "--log-format", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async def has_sample() -> bool:
                try:
                    return not math.isnan((await scrape(url)).get(AGE, math.nan))
                except aiohttp.ClientError:
                    return False  # not serving yet
            await wait_async(has_sample, timeout=30, what="the subprocess' first sample")
            for i in range(4):
                srv.create("pods", pod(f"load-{i}", scheduler="packing"))
            srv.create("pods", pod("by-requests", scheduler="vecsched"))
            names = [f"load-{i}" for i in range(4)] + ["by-requests"]
            await wait_for(lambda: all(node_of(srv, n) for n in names), timeout=15, what="all bound")
            # Each pod placed counts 150m more on its node: the 4th new pod on one cold node sees
            # 5% + (150 occupant + 3 * 150 placed + 150 its own) / 4000 = 23.75% (+ up to 3 * 100m
            # = 7.5% once Prometheus measures the placed ones) < 40, still far below the hot nodes.
            assert {node_of(srv, f"load-{i}") for i in range(4)} <= set(COLD)
            # By requests (the default profile) a hot node looks emptier: 64Mi against 6Gi requested.
            assert node_of(srv, "by-requests") in HOT
            metrics = await scrape(url)
            assert metrics[ERRORS] == 0.0 and 0 <= metrics[AGE] < 5
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert f"reading node metrics from prometheus {prom.url} every 0.5s" in [line["msg"] for line in lines]
    assert not [line for line in lines if line["level"] in ("warning", "error")]


def alert_expr(name: str, **thresholds: str) -> str:
    """The expression of the shipped alert ``name`` (deploy/monitoring/rules/alerts.yaml), with
    literal thresholds replaced as given (``{"> 180": "> 3"}`` as ``gt_180="> 3"``)."""
    doc = yaml.safe_load(ALERTS.read_text())
    [expr] = [r["expr"] for g in doc["groups"] for r in g["rules"] if r.get("alert") == name]
    for old, new in thresholds.items():
        literal = "> " + old.removeprefix("gt_")
        assert literal in expr, (name, literal)
        expr = expr.replace(literal, new)
    return str(expr)


async def test_stale_metrics_age_and_count_errors_and_load_aware_filters_the_stale_nodes(
        caplog: pytest.LogCaptureFixture) -> None:
    async with loaded_cluster() as (srv, prom):
        source = {"metricProvider": {"type": "Prometheus", "address": prom.url}}
        cfg = parse_config(configuration(
            profile("packing", "TargetLoadPacking", source),
            profile("load-aware", "LoadAware", {**source, "metricsExpirationSeconds": 3})))
        with caplog.at_level(logging.INFO, logger="vecsched"):
            async with running(srv, config=cfg, load_metrics_interval=float(INTERVAL)) as s:
                assert s.load_refresher is not None
                load = LoadMetrics.of(s.cache.table)
                await wait_for(lambda: load.sample is not None, what="the first sample")
                # LoadAware: the hot nodes' 75% CPU is above its 65% threshold; TargetLoadPacking: as above.
                srv.create("pods", pod("aware-1", scheduler="load-aware"))
                srv.create("pods", pod("packing-1", scheduler="packing"))
                await wait_for(lambda: bool(node_of(srv, "aware-1") and node_of(srv, "packing-1")), what="bound")
                assert node_of(srv, "aware-1") in COLD and node_of(srv, "packing-1") in COLD
                fresh = await scrape(s.metrics_url)
                assert fresh[ERRORS] == 0.0 and fresh[AGE] < 3

                # A second Prometheus watches the scheduler, as a cluster's monitoring does, while the one
                # the load plugins read from goes away.
                async with prometheus(targets=[Target("vecsched-metrics", s.metrics_url)]) as monitoring:
                    await monitoring.wait_for('vecsched_load_metrics_age_seconds{job="vecsched-metrics"}',
                                              what="the scheduler scraped")
                    # Fresh: neither alert's expression selects anything (the stale one at the test's 3 s).
                    stale_alert = alert_expr("VecschedLoadMetricsStale", gt_180="> 3")
                    failing_alert = alert_expr("VecschedLoadMetricsRefreshFailing")
                    assert await monitoring.query(stale_alert) == []
                    assert await monitoring.query(failing_alert) == []
                    await prom.stop()
                    # The shipped expressions (the stale one's 180 s lowered to the test's 3 s) fire as the age
                    # grows and refreshes fail: 1 series each, for the one scheduler and its one source.
                    stale_series = await monitoring.wait_for(stale_alert, timeout=15, what="the stale alert firing")
                    failing_series = await monitoring.wait_for(failing_alert, timeout=15,
                                                               what="the refresh-failing alert firing")
                    assert len(stale_series) == 1 and float(stale_series[0]["value"][1]) > 3
                    assert [x["metric"] for x in failing_series] == [{"source": "prometheus"}]

                taken = load.sample
                assert taken is not None

                async def stale() -> bool:
                    m = await scrape(s.metrics_url)
                    return m[AGE] > 3 and m[ERRORS] >= 2
                await wait_async(stale, timeout=10, what="the sample older than 3s and refreshes failing")
                assert load.sample is taken  # the last good sample stays in use
                srv.create("pods", pod("aware-2", scheduler="load-aware"))
                srv.create("pods", pod("packing-2", scheduler="packing"))
                await wait_for(lambda: bool(node_of(srv, "packing-2")), what="packing-2 bound on the last sample")
                assert node_of(srv, "packing-2") in COLD
                await wait_for(lambda: bool(events_for(srv, "aware-2", reason="FailedScheduling")),
                               what="aware-2's FailedScheduling")
                assert not node_of(srv, "aware-2")
                message = events_for(srv, "aware-2", reason="FailedScheduling")[0]["message"]
                assert message.startswith("0/4 nodes are available: 4 node(s) had node metrics older than 3s."), message
    failures = [r for r in caplog.records if r.getMessage().startswith("cannot refresh node metrics")]
    assert failures and all(r.exc_info is None and "\n" not in r.getMessage() for r in failures)
    assert failures[0].getMessage().startswith(f"cannot refresh node metrics from prometheus {prom.url}: Cannot "
                                               f"connect to host")
    assert "keeping the sample taken" in failures[0].getMessage()
