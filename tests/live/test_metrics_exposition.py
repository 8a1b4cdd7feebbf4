"""Metrics carry kube-scheduler's names, labels and buckets, served on /metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from scheduler.metrics import Metrics, MetricsServer, exponential_buckets


def buckets(text: str, name: str) -> list[float]:
    les = re.findall(rf'^{name}_bucket{{(?:[^}}]*,)?le="([^"]+)"', text, re.M)
    seen: list[float] = []
    for le in les:
        if le != "+Inf" and float(le) not in seen:
            seen.append(float(le))
    return seen


@pytest.fixture
async def served() -> AsyncIterator[tuple[Metrics, str]]:
    m = Metrics()
    ready = {"v": False}
    srv = MetricsServer(metrics=m, ready=lambda: ready["v"], host="127.0.0.1", port=0)
    await srv.start()
    m.schedule_attempts.labels("scheduled", "vecsched").inc()
    m.attempt_duration.labels("scheduled", "vecsched").observe(0.003)
    m.algorithm_duration.observe(0.001)
    m.sli_duration.labels("1").observe(0.02)
    m.pod_attempts.observe(1)
    m.incoming("active", "PodAdd")
    m.extension_point_duration.labels("Filter", "Success", "vecsched").observe(0.0002)
    m.plugin_duration.labels("NodeResourcesFit", "Filter", "Success").observe(0.00002)
    m.snapshot.pending = lambda: {"active": 3, "gated": 1}
    m.snapshot.cache_sizes = lambda: {"nodes": 5, "pods": 7, "assumed_pods": 2}
    m.snapshot.unschedulable = lambda: [("NodeResourcesFit", "vecsched"), ("NodeResourcesFit", "vecsched")]
    async with aiohttp.ClientSession() as s:
        async with s.get(srv.url + "/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
        async with s.get(srv.url + "/healthz") as r:
            assert r.status == 200
        async with s.get(srv.url + "/readyz") as r:
            assert r.status == 503
        ready["v"] = True
        async with s.get(srv.url + "/readyz") as r:
            assert r.status == 200
    await srv.stop()
    yield m, text


async def test_names_and_labels(served: tuple[Metrics, str]) -> None:
    _, text = served
    for line in [
        'scheduler_schedule_attempts_total{profile="vecsched",result="scheduled"} 1.0',
        'scheduler_pod_scheduling_sli_duration_seconds_count{attempts="1"} 1.0',
        'scheduler_queue_incoming_pods_total{event="PodAdd",queue="active"} 1.0',
        'scheduler_pending_pods{queue="active"} 3.0',
        'scheduler_pending_pods{queue="backoff"} 0.0',
        'scheduler_pending_pods{queue="unschedulable"} 0.0',
        'scheduler_pending_pods{queue="gated"} 1.0',
        'scheduler_scheduler_cache_size{type="nodes"} 5.0',
        'scheduler_scheduler_cache_size{type="assumed_pods"} 2.0',
        'scheduler_unschedulable_pods{plugin="NodeResourcesFit",profile="vecsched"} 2.0',
        'scheduler_preemption_attempts_total 0.0',
    ]:
        assert line in text, line
    assert re.search(r'scheduler_scheduling_attempt_duration_seconds_count\{profile="vecsched",result="scheduled"\} 1.0', text)
    assert re.search(r'scheduler_framework_extension_point_duration_seconds_count\{extension_point="Filter",'
                     r'profile="vecsched",status="Success"\} 1.0', text)
    assert re.search(r'scheduler_plugin_execution_duration_seconds_count\{extension_point="Filter",'
                     r'plugin="NodeResourcesFit",status="Success"\} 1.0', text)
    assert "scheduler_preemption_victims_bucket" in text
    # vecsched's own metrics are prefixed
    own = {m.group(1) for m in re.finditer(r"^# TYPE (\S+)", text, re.M)} - {
        n for n in re.findall(r"^# TYPE (scheduler_\S+)", text, re.M)}
    assert own and all(n.startswith("vecsched_") for n in own), own


@pytest.mark.parametrize(("name", "expected"), [
    ("scheduler_scheduling_attempt_duration_seconds", exponential_buckets(0.001, 2, 15)),
    ("scheduler_scheduling_algorithm_duration_seconds", exponential_buckets(0.001, 2, 15)),
    ("scheduler_pod_scheduling_sli_duration_seconds", exponential_buckets(0.01, 2, 20)),
    ("scheduler_pod_scheduling_attempts", [1, 2, 4, 8, 16]),
    ("scheduler_framework_extension_point_duration_seconds", exponential_buckets(0.0001, 2, 12)),
])
async def test_buckets(served: tuple[Metrics, str], name: str, expected: list[float]) -> None:
    _, text = served
    assert buckets(text, name) == pytest.approx(expected)


# scheduler_pod_scheduling_attempts' bounds are 1, 2, 4, 8, 16, +Inf: an amount counts in the first
# bucket whose bound it is at most (cumulative counts are exported), as prometheus_client's loop has it.
@pytest.mark.parametrize(("amounts", "cumulative", "total"), [
    ([1], [1, 1, 1, 1, 1, 1], 1.0),              # on a bound: that bucket
    ([0.5, -3], [2, 2, 2, 2, 2, 2], -2.5),       # below the first bound (negative too): the first
    ([1.0000001], [0, 1, 1, 1, 1, 1], 1.0000001),  # just above a bound: the next
    ([16, 17], [0, 0, 0, 0, 1, 2], 33.0),        # the last finite bound, then +Inf
    ([float("inf")], [0, 0, 0, 0, 0, 1], float("inf")),
    ([3, 4, 5, 8], [0, 0, 2, 4, 4, 4], 20.0),
    ([float("nan")], [0, 0, 0, 0, 0, 0], None),  # no bucket; the sum becomes NaN
])
def test_histogram_buckets_as_prometheus_client_counts_them(amounts: list[float], cumulative: list[int],
                                                           total: float | None) -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client import Histogram as Upstream

    ours = Metrics().pod_attempts
    theirs = Upstream("h", "h", buckets=[1, 2, 4, 8, 16], registry=CollectorRegistry())
    for a in amounts:
        ours.observe(a)
        theirs.observe(a)

    def counts(h: object) -> tuple[list[float], float]:
        samples = [s for m in h.collect() for s in m.samples]  # type: ignore[attr-defined]
        return ([s.value for s in samples if s.name.endswith("_bucket")],
                next(s.value for s in samples if s.name.endswith("_sum")))

    (ours_b, ours_sum), (theirs_b, theirs_sum) = counts(ours), counts(theirs)
    assert ours_b == theirs_b == cumulative
    if total is None:
        assert ours_sum != ours_sum and theirs_sum != theirs_sum
    else:
        assert ours_sum == theirs_sum == total


WRITES = [
    # (kind, writes as (method, argument), the samples' values, as prometheus_client gives them)
    # 1 + 2.5 + 0 = 3.5
    pytest.param("counter", [("inc", 1), ("inc", 2.5), ("inc", 0)], {"x_total": 3.5}, id="counter"),
    # set 7, then +2, then -4: 5
    pytest.param("gauge", [("set", 7), ("inc", 2), ("dec", 4)], {"x": 5.0}, id="gauge"),
    # 0.5 and 1 in le=1 (1 is at most 1), 3 in le=4; count 3, sum 4.5
    pytest.param("histogram", [("observe", 0.5), ("observe", 1), ("observe", 3)],
                 {"x_bucket": [2.0, 2.0, 3.0, 3.0], "x_count": 3.0, "x_sum": 4.5}, id="histogram"),
]


@pytest.mark.parametrize(("kind", "writes", "expected"), WRITES)
def test_values_without_a_lock_count_as_prometheus_client_counts(kind: str, writes: list[tuple[str, float]],
                                                                 expected: dict[str, object]) -> None:
    import prometheus_client
    from prometheus_client import CollectorRegistry

    from scheduler import metrics

    made = []
    for module in (metrics, prometheus_client):
        cls = {"counter": module.Counter, "gauge": module.Gauge, "histogram": module.Histogram}[kind]
        kw = {"buckets": [1, 2, 4]} if kind == "histogram" else {}
        m = cls("x", "x", ["l"], registry=CollectorRegistry(), **kw).labels("a")
        for method, amount in writes:
            getattr(m, method)(amount)
        got: dict[str, object] = {}
        for family in m.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                if sample.name.endswith("_bucket"):
                    got.setdefault(sample.name, []).append(sample.value)  # type: ignore[union-attr]
                else:
                    got[sample.name] = sample.value
        made.append(got)
    ours, theirs = made
    assert ours == theirs == expected


def test_histogram_of_a_labelled_metric_needs_its_labels() -> None:
    with pytest.raises(ValueError, match="missing label values"):
        Metrics().attempt_duration.observe(0.1)  # (the parent: only its children are observed)


def test_each_instance_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.schedule_attempts.labels("scheduled", "p").inc()
    assert b"scheduler_schedule_attempts_total{" not in b.exposition()


async def test_tls_when_a_certificate_is_given(tmp_path: Path) -> None:
    import subprocess
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    srv = MetricsServer(metrics=Metrics(), ready=lambda: True, host="127.0.0.1", port=0,
                        tls_cert_file=str(cert), tls_key_file=str(key))
    await srv.start()
    try:
        assert srv.url.startswith("https://")
        async with aiohttp.ClientSession() as s:
            async with s.get(srv.url + "/healthz", ssl=False) as r:
                assert r.status == 200
    finally:
        await srv.stop()


def test_tls_needs_both_files() -> None:
    with pytest.raises(ValueError, match="together"):
        MetricsServer(metrics=Metrics(), ready=lambda: True, tls_cert_file="x")
