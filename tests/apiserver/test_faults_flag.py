"""``vecsched apiserver --faults SPEC``: the spec parser, the periodic faults and their counters."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.faults import Faults, parse_spec, run_schedule

from .kube import pod_manifest, read_watch

VECSCHED = [sys.executable, "-m", "scheduler.cli", "apiserver"]


@pytest.mark.parametrize(("spec", "want"), [
    pytest.param("errors=0.02,throttle=0.02,latency=10ms,watch-drop=30s,compact=60s,seed=7",
                 # 10ms = 0.010 s; 30s and 60s are seconds already
                 dict(error_rate=0.02, throttle_rate=0.02, latency_seconds=0.01, watch_drop_seconds=30.0,
                      compact_seconds=60.0, seed=7), id="the-documented-example"),
    pytest.param("compact=2m", dict(compact_seconds=120.0), id="minutes"),  # 2 x 60 s
    pytest.param("watch-drop=1.5", dict(watch_drop_seconds=1.5), id="bare-number-is-seconds"),
    pytest.param("latency=.5s", dict(latency_seconds=0.5), id="leading-dot"),
    pytest.param("errors=1", dict(error_rate=1.0, throttle_rate=0.0), id="every-request-fails"),
    pytest.param("errors=0.4,throttle=0.6", dict(error_rate=0.4, throttle_rate=0.6), id="sum-exactly-one"),
    pytest.param("retry-after=5", dict(retry_after_seconds=5), id="retry-after"),
    pytest.param(" errors = 0.1 , ,compact=0", dict(error_rate=0.1, compact_seconds=0.0), id="spaces-empty-parts-off"),
])
def test_valid_specs(spec: str, want: dict[str, object]) -> None:
    f = parse_spec(spec)
    assert {k: getattr(f, k) for k in want} == want


@pytest.mark.parametrize(("spec", "message"), [
    pytest.param("", "--faults: expected KEY=VALUE pairs such as errors=0.02,watch-drop=30s, got ''", id="empty"),
    pytest.param("bogus=1", "--faults: unknown key 'bogus' (known: errors, throttle, retry-after, latency, "
                 "watch-drop, compact, seed)", id="unknown-key"),
    pytest.param("errors", "--faults: errors: expected errors=VALUE, got 'errors'", id="no-value"),
    pytest.param("errors=", "--faults: errors: expected errors=VALUE, got 'errors='", id="empty-value"),
    pytest.param("errors=1.5", "--faults: errors: expected a fraction from 0 to 1, got '1.5'", id="errors-above-one"),
    pytest.param("throttle=nan", "--faults: throttle: expected a fraction from 0 to 1, got 'nan'", id="throttle-nan"),
    pytest.param("throttle=-0.1", "--faults: throttle: expected a fraction from 0 to 1, got '-0.1'", id="negative"),
    pytest.param("errors=0.6,throttle=0.5", "--faults: errors + throttle: together at most 1, got 0.6 + 0.5",
                 id="sum-above-one"),  # 0.6 + 0.5 = 1.1 > 1
    pytest.param("latency=10h", "--faults: latency: expected a duration such as 10ms, 30s or 2m (at most a day), "
                 "got '10h'", id="unknown-unit"),
    pytest.param("watch-drop=-1s", "--faults: watch-drop: expected a duration such as 10ms, 30s or 2m (at most a "
                 "day), got '-1s'", id="negative-duration"),
    pytest.param("compact=1441m", "--faults: compact: expected a duration such as 10ms, 30s or 2m (at most a day), "
                 "got '1441m'", id="over-a-day"),  # 1441 x 60 = 86460 s > 86400 s
    pytest.param("seed=x", "--faults: seed: expected an integer from 0 to 18446744073709551615, got 'x'",
                 id="seed-not-integer"),
    pytest.param("retry-after=3601", "--faults: retry-after: expected an integer from 0 to 3600, got '3601'",
                 id="retry-after-over-an-hour"),
    pytest.param("errors=0.1,errors=0.2", "--faults: errors: given twice", id="duplicate"),
    pytest.param("latency=" + "9" * 100, "--faults: latency: expected a duration such as 10ms, 30s or 2m (at most "
                 "a day), got '" + "9" * 40 + "'... (100 characters)", id="long-value-quoted-short"),
])
def test_bad_specs_name_the_key(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_spec(spec)
    assert str(e.value) == message and "\n" not in message


async def test_bad_spec_exits_2_with_one_line() -> None:
    proc = await asyncio.create_subprocess_exec(*VECSCHED, "--port", "0", "--faults", "errors=2",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and out == b""
    assert err.decode() == "vecsched apiserver: --faults: errors: expected a fraction from 0 to 1, got '2'\n"


def test_the_seed_makes_the_dice_reproducible() -> None:
    def codes() -> list[int]:
        f = parse_spec("errors=0.3,throttle=0.3,seed=7")
        return [f.decide(watch=False).code for _ in range(50)]

    first = codes()
    assert first == codes() and {0, 429, 500} <= set(first)


def test_every_kind_is_counted() -> None:
    f = Faults(error_rate=0.5, throttle_rate=0.5, latency_seconds=0.001, seed=3)
    decisions = [f.decide(watch=False) for _ in range(40)]
    # Every request is delayed (40 latency faults) and each one fails one way or the other (0.5 + 0.5 = 1).
    assert f.counts["latency"] == 40
    assert f.counts["errors"] == sum(d.code == 500 for d in decisions) == f.injected[500]
    assert f.counts["throttle"] == sum(d.code == 429 for d in decisions) == f.injected[429]
    assert f.counts["errors"] + f.counts["throttle"] == 40
    assert f.summary() == (f"errors={f.counts['errors']} throttle={f.counts['throttle']} latency=40 "
                           "watch-drop=0 compact=0")


async def test_schedule_drops_watches_and_compacts(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    faults = apiserver.faults
    faults.watch_drop_seconds, faults.compact_seconds = 0.3, 0.5
    async with http.post("/api/v1/namespaces/default/pods", json=pod_manifest("a")) as r:
        assert r.status == 201
        old_rv = (await r.json())["metadata"]["resourceVersion"]
    async with http.post("/api/v1/namespaces/default/pods", json=pod_manifest("a2")) as r:
        assert r.status == 201  # a change after old_rv, which the compaction forgets
    task = asyncio.create_task(run_schedule(faults, close_watches=apiserver.close_watches,
                                            compact=apiserver.compact, tick=0.05))
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        # A watch asking for 60 s is ended by the first drop, 0.3 s in (the schedule ticks every 0.05 s).
        async with http.get("/api/v1/pods", params={"watch": "1", "timeoutSeconds": "60"}) as r:
            await read_watch(r, count=1000, timeout=5)
        assert loop.time() - started < 3
        await asyncio.sleep(0.6)  # past the first compaction at 0.5 s
        async with http.post("/api/v1/namespaces/default/pods", json=pod_manifest("b")) as r:
            assert r.status == 201
        # Resuming from before the compaction: 410 Expired, in-stream as kube-apiserver sends it.
        async with http.get("/api/v1/pods", params={"watch": "1", "resourceVersion": old_rv}) as r:
            events = await read_watch(r, count=1, timeout=5)
        assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert faults.counts["watch-drop"] >= 1 and faults.counts["compact"] >= 1


async def test_counts_served_and_printed_on_shutdown() -> None:
    proc = await asyncio.create_subprocess_exec(
        *VECSCHED, "--port", "0", "--nodes", "1", "--faults", "errors=1,compact=0.2s",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = re.search(r"http://\S+", line).group(0)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as s:
            for _ in range(3):  # errors=1: each of the three fails
                async with s.get(url + "/api/v1/nodes") as r:
                    assert r.status == 500
            await asyncio.sleep(0.5)  # two compactions at 0.2 s and 0.4 s (give or take a tick)
            async with s.get(url + "/metrics/faults") as r:
                text = await r.text()
        assert 'vecsched_apiserver_injected_faults_total{kind="errors"} 3\n' in text
        assert 'vecsched_apiserver_injected_faults_total{kind="latency"} 0\n' in text
        assert re.search(r'kind="compact"} [1-9]', text)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    m = re.search(r"^vecsched apiserver injected faults: errors=3 throttle=0 latency=0 watch-drop=0 compact=(\d+)$",
                  err.decode(), re.M)
    assert m and int(m.group(1)) >= 1, err.decode()
