"""The real-Prometheus fixture itself: it scrapes a metrics endpoint served by the test (with
and without honor_labels), evaluates a rule file, answers instant queries, reports a refused
query, and stops on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.prometheus_support import PROMETHEUS, Target, config, prometheus, require
from tests.http_support import serve

# Two series in the text exposition format; the first carries its own instance and job labels.
EXPOSITION = """\
# TYPE fixture_widgets gauge
fixture_widgets{instance="node-a",job="own-job",colour="red"} 3
# TYPE fixture_requests_total counter
fixture_requests_total 7
"""


@asynccontextmanager
async def metrics_endpoint(path: str = "/custom/metrics") -> AsyncIterator[str]:
    """A tiny aiohttp server on loopback serving EXPOSITION at ``path``; yields the full URL."""
    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=EXPOSITION, content_type="text/plain")

    async with serve(("GET", path, handler)) as url:
        yield f"{url}{path}"


@pytest.mark.parametrize(("honor", "instance", "job"), [
    # honor_labels keeps the exposed instance/job; otherwise Prometheus renames them exported_*
    # and sets its own: job = the Target's, instance = host:port.
    (True, "node-a", "own-job"),
    (False, None, "fixture"),
])
async def test_scrapes_a_served_endpoint(honor: bool, instance: str | None, job: str) -> None:
    async with metrics_endpoint() as url, prometheus(targets=[Target("fixture", url, honor_labels=honor)]) as prom:
        [series] = await prom.wait_for('fixture_widgets{colour="red"}', what="the widget gauge")
        assert float(series["value"][1]) == 3
        host_port = url.split("/")[2]
        assert series["metric"]["instance"] == (instance or host_port)
        assert series["metric"]["job"] == job
        if not honor:
            assert series["metric"]["exported_instance"] == "node-a"
        [total] = await prom.wait_for("fixture_requests_total")
        assert float(total["value"][1]) == 7


async def test_evaluates_rule_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("groups:\n- name: fixture\n  rules:\n"
                     "  - record: fixture:widgets:doubled\n    expr: 2 * fixture_widgets\n")
    async with metrics_endpoint() as url, prometheus(targets=[Target("fixture", url)], rule_files=[rules]) as prom:
        [series] = await prom.wait_for("fixture:widgets:doubled", what="the recording rule")
        assert float(series["value"][1]) == 6  # 2 x 3


async def test_scalar_and_refused_queries_and_stop() -> None:
    async with metrics_endpoint() as url, prometheus(targets=[Target("fixture", url)]) as prom:
        assert await prom.query("vector(1) > 2") == []
        [scalar] = await prom.query("scalar(vector(4)) * 2")
        assert scalar["metric"] == {} and float(scalar["value"][1]) == 8
        with pytest.raises(AssertionError, match="refused 'rate[(]fixture_widgets[)]'"):
            await prom.query("rate(fixture_widgets)")  # a range function without a range
        await prom.stop()
        await prom.stop()  # idempotent
        with pytest.raises(aiohttp.ClientError):
            await prom.query("up")


def test_config_from_targets() -> None:
    conf = config(targets=[Target("node-exporter", "http://127.0.0.1:8443/metrics/node-exporter?a=1&a=2",
                                  honor_labels=True), Target("vecsched", "https://10.0.0.1:10259/metrics")],
                  rule_files=[Path("/r.yaml")], scrape_interval="2s", evaluation_interval="3s")
    assert conf["global"] == {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "3s"}
    assert conf["rule_files"] == ["/r.yaml"]
    assert conf["scrape_configs"] == [
        {"job_name": "node-exporter", "scheme": "http", "metrics_path": "/metrics/node-exporter",
         "honor_labels": True, "static_configs": [{"targets": ["127.0.0.1:8443"]}], "params": {"a": ["1", "2"]}},
        {"job_name": "vecsched", "scheme": "https", "metrics_path": "/metrics", "honor_labels": False,
         "static_configs": [{"targets": ["10.0.0.1:10259"]}]}]


@pytest.mark.parametrize(("targets", "error"), [
    ([Target("a", "http://h:1/m"), Target("a", "http://h:2/m")], r"unique, repeated: \['a'\]"),
    ([Target("a", "h:1/metrics")], r"Target 'a': url 'h:1/metrics' is not an http\(s\) URL"),
])
def test_config_refuses_bad_targets(targets: list[Target], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        config(targets=targets, rule_files=[], scrape_interval="1s", evaluation_interval="1s")


def test_a_missing_binary_names_make_test(tmp_path: Path) -> None:
    assert require(PROMETHEUS) == PROMETHEUS
    with pytest.raises(pytest.fail.Exception, match="run `make test`"):
        require(str(tmp_path / "prometheus"))
