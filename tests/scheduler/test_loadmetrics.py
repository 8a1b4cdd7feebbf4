"""Where the load plugins' node metrics come from: a real Prometheus read as load-watcher reads
it, a load-watcher service, a file; the refresher that keeps the last good sample; and the
configuration checks of ``vecsched run``.

Prometheus scrapes a small endpoint this module serves with the two recording rules' series
(``honor_labels``, so each series keeps the ``instance`` it names). Where Prometheus must
misbehave (a 15m query that times out, a TLS certificate nobody signed), a proxy on loopback
stands between it and the fetcher and answers as Prometheus does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from scheduler.cli import main
from scheduler.config import ConfigError, parse_config
from scheduler.loadmetrics import (CPU_RULE, MEMORY_RULE, RULES_FILE, FetchError, FileFetcher, LoadMetricsRefresher,
                                   PrometheusFetcher, WatcherFetcher, load_fetcher, vector_from_answer)
from scheduler.metrics import Metrics
from scheduler.runtime import RuntimeSettings, Scheduler
from scoring.load import MetricsSource, Metric, WatcherMetrics, Window, watcher_metrics_to_json
from scoring.plugins.node_load import LoadMetrics
from scoring.table import NodeTable
from tests.live.support import FakeClock
from tests.prometheus_support import Prometheus, Target, prometheus

module_loop = pytest.mark.asyncio(loop_scope="module")
"""For the tests that share the module's endpoint and Prometheus (started once: a few seconds each)."""

# Ratios chosen to be exact in binary, so that x100 and the averages are exact too.
NODES = """\
# TYPE instance:node_cpu:ratio gauge
instance:node_cpu:ratio{instance="node-a"} 0.25
instance:node_cpu:ratio{instance="node-b"} 0.75
# TYPE instance:node_memory_utilisation:ratio gauge
instance:node_memory_utilisation:ratio{instance="node-a"} 0.5
instance:node_memory_utilisation:ratio{instance="node-b"} 0.125
"""
# A node-exporter that names the node in a label of its own: its instance is the target's address.
OTHER = """\
# TYPE instance:node_cpu:ratio gauge
instance:node_cpu:ratio{node="node-c"} 0.375
# TYPE instance:node_memory_utilisation:ratio gauge
instance:node_memory_utilisation:ratio{node="node-c"} 0.0625
"""
MEMORY_ONLY = """\
# TYPE instance:node_memory_utilisation:ratio gauge
instance:node_memory_utilisation:ratio{instance="node-a"} 0.5
"""


@dataclass
class Endpoint:
    """An aiohttp server on loopback: ``texts`` maps a path to the exposition it serves."""

    url: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    watcher: tuple[int, str] = (404, "")
    """(status, body) of ``/watcher``."""


@asynccontextmanager
async def serve(app: web.Application, *, ssl_context: Any = None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint(texts={"/nodes": NODES, "/other": OTHER, "/memory-only": MEMORY_ONLY})

    async def metrics(request: web.Request) -> web.Response:
        text = ep.texts.get(request.path)
        if text is None:
            return web.Response(status=404)
        return web.Response(text=text, content_type="text/plain")

    async def watcher(_: web.Request) -> web.Response:
        status, body = ep.watcher
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/watcher", watcher)
    app.router.add_get("/{tail:.*}", metrics)
    async with serve(app) as url:
        ep.url = url
        yield ep


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prom(endpoint: Endpoint) -> AsyncIterator[Prometheus]:
    """A Prometheus scraping /nodes and /other every second, with both series in."""
    async with prometheus(targets=[Target("nodes", f"{endpoint.url}/nodes", honor_labels=True),
                                   Target("other", f"{endpoint.url}/other", honor_labels=True)]) as p:
        await p.wait_for(f'{MEMORY_RULE}{{node="node-c"}}', what="both targets scraped")
        await p.wait_for(f'{MEMORY_RULE}{{instance="node-b"}}', what="both targets scraped")
        yield p


def by_node(wm: WatcherMetrics) -> dict[str, list[tuple[str, str, str, float]]]:
    """Per node: (type, operator, rollup, value), in the sample's order."""
    return {n: [(m.type, m.operator, m.rollup, m.value) for m in ms] for n, ms in sorted(wm.nodes.items())}


def metrics_of(window: str, cpu: float | None, memory: float) -> list[tuple[str, str, str, float]]:
    """load-watcher's order per node: CPU AVG, memory AVG, CPU STD, memory STD (constant series: STD 0)."""
    avg = ([("CPU", "AVG", window, cpu)] if cpu is not None else []) + [("Memory", "AVG", window, memory)]
    std = ([("CPU", "STD", window, 0.0)] if cpu is not None else []) + [("Memory", "STD", window, 0.0)]
    return avg + std


# ---- Prometheus, as load-watcher reads it ------------------------------------------------------------


@module_loop
@pytest.mark.parametrize("node_label, expected", [
    # instance: node-a and node-b name themselves; /other's series get the target's address as instance.
    # node-a: cpu .25 -> 25%, memory .5 -> 50%; node-b: .75 -> 75%, .125 -> 12.5%; node-c: .375 -> 37.5%, .0625 -> 6.25%
    ("instance", {"node-a": metrics_of("15m", 25.0, 50.0), "node-b": metrics_of("15m", 75.0, 12.5),
                  "<other>": metrics_of("15m", 37.5, 6.25)}),
    # node: only /other's series carry it; the others are left out.
    ("node", {"node-c": metrics_of("15m", 37.5, 6.25)}),
])
async def test_prometheus_answers_become_watcher_metrics(prom: Prometheus, endpoint: Endpoint, node_label: str,
                                                         expected: dict[str, Any]) -> None:
    other = endpoint.url.removeprefix("http://")  # Prometheus' instance label of the /other target
    expected = {other if k == "<other>" else k: v for k, v in expected.items()}
    fetcher = PrometheusFetcher(MetricsSource(address=prom.url, node_label=node_label))
    try:
        before = int(time.time())
        wm = await fetcher.fetch()
        after = int(time.time())
    finally:
        await fetcher.close()
    assert by_node(wm) == dict(sorted(expected.items()))
    assert {m.name for ms in wm.nodes.values() for m in ms} == {CPU_RULE, MEMORY_RULE}
    # The sample is taken at query time, over load-watcher's 15-minute window ending then.
    assert wm.source == "Prometheus" and before <= wm.timestamp <= after
    assert wm.window == Window(duration="15m", start=wm.timestamp - 900, end=wm.timestamp)


@dataclass
class Proxy:
    """Forwards Prometheus' query API, answering as a Prometheus whose queries over ``failing``
    windows time out; records each query and its Authorization header."""

    target: str
    failing: set[str] = field(default_factory=set)
    queries: list[str] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query["query"]
        self.queries.append(query)
        self.authorization.append(request.headers.get("Authorization"))
        if any(f"[{w}]" in query for w in self.failing):
            # Prometheus' answer to a query that hit --query.timeout.
            return web.json_response({"status": "error", "errorType": "timeout",
                                      "error": "query timed out in query execution"}, status=503)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{self.target}/api/v1/query", params=request.query) as r:
                return web.Response(status=r.status, body=await r.read(), content_type="application/json")


@asynccontextmanager
async def proxy_to(prom: Prometheus, **kw: Any) -> AsyncIterator[tuple[Proxy, str]]:
    p = Proxy(target=prom.url)
    app = web.Application()
    app.router.add_get("/api/v1/query", p.handle)
    async with serve(app, **kw) as url:
        yield p, url


@module_loop
@pytest.mark.parametrize("failing, window", [
    (set(), "15m"),
    ({"15m"}, "10m"),          # load-watcher's GetLatestWatcherMetrics: 15m missing -> 10m
    ({"15m", "10m"}, "5m"),    # -> 5m
    ({"15m", "10m", "5m"}, None),  # nothing: the refresh fails, with Prometheus' cause
])
async def test_a_failing_window_falls_back_to_the_next(prom: Prometheus, failing: set[str], window: str | None,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    async with proxy_to(prom) as (proxy, url):
        proxy.failing = failing
        fetcher = PrometheusFetcher(MetricsSource(address=url, token="s3cret"))
        try:
            if window is None:
                with pytest.raises(FetchError) as e:
                    await fetcher.fetch()
                assert str(e.value) == "; ".join(
                    f"{url}: " * (w == "15m") + f"{w}: avg_over_time({CPU_RULE}[{w}]): timeout: query timed out in "
                    f"query execution" for w in ("15m", "10m", "5m"))
                assert len(proxy.queries) == 3  # each window stopped at its first query
                return
            with caplog.at_level(logging.INFO, logger="vecsched.loadmetrics"):
                wm = await fetcher.fetch()
                again = await fetcher.fetch()
        finally:
            await fetcher.close()
    assert again.window.duration == wm.window.duration == window
    # A change of window is said once, with the wider windows' causes.
    assert [r.getMessage() for r in caplog.records] == ([] if window == "15m" else [
        f"node metrics from Prometheus at {url} over {window} from now on" + "".join(
            f"; {w}: avg_over_time({CPU_RULE}[{w}]): timeout: query timed out in query execution"
            for w in sorted(failing, reverse=True))]) and wm.window.end - wm.window.start == {"15m": 900, "10m": 600, "5m": 300}[window]
    assert by_node(wm)["node-a"] == metrics_of(window, 25.0, 50.0)
    # Each failed window stops at its first query; the answering one issues load-watcher's four.
    assert proxy.queries[-4:] == [f"avg_over_time({CPU_RULE}[{window}])", f"avg_over_time({MEMORY_RULE}[{window}])",
                                  f"stddev_over_time({CPU_RULE}[{window}])", f"stddev_over_time({MEMORY_RULE}[{window}])"]
    assert len(proxy.queries) == 2 * (len(failing) + 4)
    assert set(proxy.authorization) == {"Bearer s3cret"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


@module_loop
@pytest.mark.parametrize("insecure, fails", [(True, False), (False, True)])
async def test_insecure_skip_verify_accepts_an_unsigned_certificate(prom: Prometheus, certificate: tuple[str, str],
                                                                    insecure: bool, fails: bool) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    async with proxy_to(prom, ssl_context=ctx) as (_, url):
        fetcher = PrometheusFetcher(MetricsSource(address=url, insecure_skip_verify=insecure))
        try:
            if fails:
                with pytest.raises(FetchError, match="certificate verify failed"):
                    await fetcher.fetch()
            else:
                assert by_node(await fetcher.fetch())["node-a"] == metrics_of("15m", 25.0, 50.0)
        finally:
            await fetcher.close()


@module_loop
async def test_a_missing_cpu_rule_is_reported_once_and_the_sample_carries_memory(
        endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    async with prometheus(targets=[Target("nodes", f"{endpoint.url}/memory-only", honor_labels=True)]) as p:
        await p.wait_for(MEMORY_RULE)
        fetcher = PrometheusFetcher(MetricsSource(address=p.url))
        try:
            with caplog.at_level(logging.INFO, logger="vecsched.loadmetrics"):
                first, second = await fetcher.fetch(), await fetcher.fetch()
                warned = [r for r in caplog.records if r.levelno == logging.WARNING]
                # The rule appears (its series are scraped now): said once, at info.
                endpoint.texts["/memory-only"] = NODES
                await p.wait_for(f'{CPU_RULE}{{instance="node-b"}}')
                third = await fetcher.fetch()
        finally:
            endpoint.texts["/memory-only"] = MEMORY_ONLY
            await fetcher.close()
    # node-a: memory .5 -> 50%, and no CPU metric at all (not a silent 0).
    assert by_node(first) == by_node(second) == {"node-a": metrics_of("15m", None, 50.0)}
    assert len(warned) == 1, [r.getMessage() for r in warned]
    msg = warned[0].getMessage()
    assert f"has no {CPU_RULE} series over the last 15m: install the recording rule {CPU_RULE} (from {RULES_FILE})" in msg
    assert "\n" not in msg and warned[0].exc_info is None
    assert by_node(third)["node-b"] == metrics_of("15m", 75.0, 12.5)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"Prometheus at {p.url} now answers {CPU_RULE}: nodes are scored with their CPU utilisation"]


A = "avg_over_time(instance:node_cpu:ratio[15m])"


@pytest.mark.parametrize("answer, expected", [
    ({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"instance": "n1"}, "value": [1700000000.5, "0.5"]},
        {"metric": {"instance": "n2"}, "value": [1700000000.5, "NaN"]},    # an empty rate: left out
        {"metric": {"instance": "n3"}, "value": [1700000000.5, "+Inf"]}]}},
     [({"instance": "n1"}, 0.5)]),
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, []),
    ({"status": "error", "errorType": "bad_data", "error": "parse error"}, f"{A}: bad_data: parse error"),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}},
     f"{A}: expected an instant vector, got scalar"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]}},
     f"{A}: data.result[0].value: not a number: 'x'"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
     f'{A}: data.result[0]: expected {{metric, value: [time, "number"]}}'),
    ([], f"{A}: expected a JSON object, got list"),
])
def test_reading_prometheus_answers(answer: Any, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(FetchError) as e:
            vector_from_answer(answer, query=A, where="http://p")
        assert str(e.value) == f"http://p: {expected}"
    else:
        assert vector_from_answer(answer, query=A, where="http://p") == expected


async def test_prometheus_down_is_a_fetch_error_not_a_library_error() -> None:
    async with serve(web.Application()) as url:
        pass  # the port is closed now
    fetcher = PrometheusFetcher(MetricsSource(address=url))
    try:
        with pytest.raises(FetchError) as e:
            await fetcher.fetch()
    finally:
        await fetcher.close()
    # One cause for every window: said once.
    assert str(e.value).startswith(f"{url}: Cannot connect to host") and "15m" not in str(e.value)


# ---- load-watcher service, file --------------------------------------------------------------------

SAMPLE = WatcherMetrics(
    timestamp=1700000000, window=Window("15m", 1699999100, 1700000000), source="Prometheus",
    nodes={"node-a": (Metric(CPU_RULE, "CPU", "AVG", "15m", 31.5), Metric(CPU_RULE, "CPU", "STD", "15m", 4.25)),
           "node-b": (Metric(MEMORY_RULE, "Memory", "AVG", "15m", 55.0),)})


@module_loop
@pytest.mark.parametrize("status, body, expected", [
    (200, json.dumps(watcher_metrics_to_json(SAMPLE)), SAMPLE),
    (500, "", "received status code 500 from watcher"),  # load-watcher's service client's words
    (200, '{"timestamp": "soon"}', "timestamp: expected a number, got 'soon'"),
    (200, "<html>", "not valid JSON: Expecting value: line 1 column 1 (char 0)"),
])
async def test_load_watcher_service(endpoint: Endpoint, status: int, body: str, expected: Any) -> None:
    endpoint.watcher = (status, body)
    fetcher = WatcherFetcher(endpoint.url + "/")
    try:
        if isinstance(expected, str):
            with pytest.raises(FetchError) as e:
                await fetcher.fetch()
            assert str(e.value) == f"{endpoint.url}/watcher: {expected}"
        else:
            assert await fetcher.fetch() == expected
    finally:
        await fetcher.close()


async def test_file_is_read_again_at_every_fetch(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    fetcher = FileFetcher(path)
    with pytest.raises(FetchError, match=r"metrics.json: cannot read: No such file or directory$"):
        await fetcher.fetch()
    path.write_text(json.dumps(watcher_metrics_to_json(SAMPLE)))
    assert await fetcher.fetch() == SAMPLE
    later = WatcherMetrics(timestamp=1700000030, window=Window("15m", 1699999130, 1700000030), source="file",
                           nodes={"node-c": (Metric(CPU_RULE, "CPU", "AVG", "15m", 5.0),)})
    path.write_text(json.dumps(watcher_metrics_to_json(later)))
    assert await fetcher.fetch() == later


# ---- the refresher ---------------------------------------------------------------------------------


def exposition_value(metrics: Metrics, line_start: str) -> float | None:
    for line in metrics.exposition().decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


async def test_refresh_keeps_the_last_sample_counts_and_logs_a_failure(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(watcher_metrics_to_json(SAMPLE)))
    table, metrics, clock = NodeTable(), Metrics(), FakeClock(start=1700000042.0)
    LoadMetrics.of(table).clock = clock
    refresher = LoadMetricsRefresher(fetcher=FileFetcher(path), table=table, metrics=metrics, interval=30)
    errors = 'vecsched_load_metrics_refresh_errors_total{source="file"}'
    age = "vecsched_load_metrics_age_seconds"
    # Before the first sample: no age (NaN), no errors.
    assert math.isnan(exposition_value(metrics, age) or 0.0) and exposition_value(metrics, errors) == 0.0

    assert await refresher.refresh() and refresher.first_attempt.is_set()
    assert LoadMetrics.of(table).sample == SAMPLE
    assert exposition_value(metrics, age) == 42.0  # 1700000042 - 1700000000

    path.write_text('{"timestamp": 1700000060, "window": []}')
    clock.advance(30)
    with caplog.at_level(logging.WARNING, logger="vecsched.loadmetrics"):
        assert not await refresher.refresh()
    assert LoadMetrics.of(table).sample == SAMPLE  # kept
    assert exposition_value(metrics, age) == 72.0  # 42 + 30: the kept sample ages
    assert exposition_value(metrics, errors) == 1.0
    (record,) = caplog.records
    assert record.getMessage() == (f"cannot refresh node metrics from file {path}: window: expected an object, got "
                                   f"list; keeping the sample taken 72s ago")
    assert record.exc_info is None


async def test_the_refresher_runs_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(watcher_metrics_to_json(SAMPLE)))
    table = NodeTable()
    refresher = LoadMetricsRefresher(fetcher=FileFetcher(path), table=table, interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(refresher.run(stop=stop))
    await asyncio.wait_for(refresher.first_attempt.wait(), 5)
    assert LoadMetrics.of(table).sample == SAMPLE
    later = WatcherMetrics(timestamp=1700000030, window=Window("15m", 1699999130, 1700000030), source="file")
    path.write_text(json.dumps(watcher_metrics_to_json(later)))
    await until(lambda: LoadMetrics.of(table).sample == later)
    stop.set()
    await asyncio.wait_for(task, 5)


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^--load-metrics-interval must be > 0 seconds, got 0$"):
        LoadMetricsRefresher(fetcher=FileFetcher("x"), table=NodeTable(), interval=0)


# ---- configuration ---------------------------------------------------------------------------------


def config(*profiles: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "profiles": list(profiles)}


def profile(name: str, *plugins: tuple[str, dict[str, Any] | None]) -> dict[str, Any]:
    return {"schedulerName": name,
            "plugins": {"multiPoint": {"enabled": [{"name": p} for p, _ in plugins]}},
            "pluginConfig": [{"name": p, "args": a} for p, a in plugins if a is not None]}


PROM = {"metricProvider": {"type": "Prometheus", "address": "http://prom:9090"}}


@pytest.mark.parametrize("doc, node_metrics, expected", [
    # No load plugin: nothing is fetched, even with --node-metrics.
    (config(profile("a")), None, None),
    (config(profile("a")), "m.json", None),
    # A Trimaran configuration: Prometheus, or load-watcher (which wins over metricProvider, as upstream).
    (config(profile("a", ("TargetLoadPacking", PROM))), None, ("prometheus", "http://prom:9090")),
    (config(profile("a", ("TargetLoadPacking", {**PROM, "watcherAddress": "http://lw:2020"}))), None,
     ("load-watcher", "http://lw:2020/watcher")),
    # Several plugins, several profiles, one source.
    (config(profile("a", ("TargetLoadPacking", PROM), ("LoadVariationRiskBalancing", PROM)),
            profile("b", ("LoadAware", PROM))), None, ("prometheus", "http://prom:9090")),
    # --node-metrics replaces the plugins' source (and needs none).
    (config(profile("a", ("LoadAware", None))), "m.json", ("file", "m.json")),
    # Errors name the field to set, or both fields that disagree.
    (config(profile("a", ("LoadAware", None))), None,
     "cfg.yaml: profiles[0].pluginConfig: LoadAware has no args: set its args.metricProvider.address (Prometheus' "
     "URL) or args.watcherAddress (a load-watcher service), or run with --node-metrics FILE"),
    (config(profile("a", ("LoadAware", {"metricProvider": {"type": "Prometheus"}}))), None,
     "cfg.yaml: profiles[0].pluginConfig[0].args.metricProvider.address: LoadAware needs Prometheus' URL here "
     "(or watcherAddress: a load-watcher service), or run with --node-metrics FILE"),
    (config(profile("a", ("TargetLoadPacking", PROM)),
            profile("b", ("LoadAware", {"metricProvider": {"address": "http://other:9090"}}))), None,
     "cfg.yaml: profiles[1].pluginConfig[0].args.metricProvider.address: LoadAware has http://other:9090, "
     "TargetLoadPacking (profiles[0].pluginConfig[0].args.metricProvider.address) has http://prom:9090: every load "
     "plugin must name the same source (vecsched fetches one sample for all)"),
    (config(profile("a", ("TargetLoadPacking", PROM), ("LoadAware", {"watcherAddress": "http://lw:2020"})))
     , None,
     "cfg.yaml: profiles[0].pluginConfig[1].args.watcherAddress: LoadAware has http://lw:2020, TargetLoadPacking "
     "(profiles[0].pluginConfig[0].args.metricProvider.address) has http://prom:9090: every load plugin must name "
     "the same source (vecsched fetches one sample for all)"),
    (config(profile("a", ("TargetLoadPacking", PROM),
                    ("LoadAware", {"metricProvider": {**PROM["metricProvider"], "token": "t"}})))
     , None,
     # (a token is never printed)
     "cfg.yaml: profiles[0].pluginConfig[1].args.metricProvider.token: LoadAware has <set>, TargetLoadPacking "
     "(profiles[0].pluginConfig[0].args.metricProvider.token) has <empty>: every load plugin must name the same "
     "source (vecsched fetches one sample for all)"),
])
def test_which_source_vecsched_run_reads(doc: dict[str, Any], node_metrics: str | None, expected: Any) -> None:
    cfg = parse_config(doc, source="cfg.yaml")
    if isinstance(expected, str):
        with pytest.raises(ConfigError) as e:
            load_fetcher(cfg.build(), config=cfg, node_metrics=node_metrics)
        assert str(e.value) == expected
        return
    fetcher = load_fetcher(cfg.build(), config=cfg, node_metrics=node_metrics)
    assert (fetcher.source, fetcher.where) == expected if fetcher is not None else expected is None


async def test_vecsched_run_says_which_field_to_set(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config(profile("vecsched", ("TargetLoadPacking", {"targetUtilization": 50})))))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "run", "--config", str(path), "--kubeconfig", str(tmp_path / "none"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert err.decode() == (f"vecsched run: {path}: profiles[0].pluginConfig[0].args.metricProvider.address: "
                            f"TargetLoadPacking needs Prometheus' URL here (or watcherAddress: a load-watcher "
                            f"service), or run with --node-metrics FILE\n")


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "soon"])
def test_vecsched_run_refuses_a_non_positive_interval(interval: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--load-metrics-interval", interval])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"vecsched run: error: argument --load-metrics-interval: expected a positive number of seconds, "
        f"got {interval!r}")


@pytest.mark.parametrize("doc, refresher", [
    (config(profile("vecsched")), False),  # no load plugin: nothing runs, no sample is exported
    (config(profile("vecsched", ("LoadAware", PROM))), True),
])
def test_a_scheduler_refreshes_only_for_load_plugins(doc: dict[str, Any], refresher: bool) -> None:
    s = Scheduler(config=parse_config(doc), settings=RuntimeSettings(load_metrics_interval=7.5))
    text = s.metrics.exposition().decode()
    if not refresher:
        samples = [line for line in text.splitlines() if not line.startswith("#")]
        assert s.load_refresher is None and not [line for line in samples if "vecsched_load_metrics" in line]
        return
    assert s.load_refresher is not None and s.load_refresher.interval == 7.5
    assert s.load_refresher.table is s.cache.table  # the table the cycles read
    assert (s.load_refresher.fetcher.source, s.load_refresher.fetcher.where) == ("prometheus", "http://prom:9090")
    assert "vecsched_load_metrics_age_seconds NaN" in text
    assert 'vecsched_load_metrics_refresh_errors_total{source="prometheus"} 0.0' in text
