"""The live cycle batches replicas of one pod (``vecsched.io/batching``, on by default):
upstream's ``scheduler_batch_attempts_total`` counts the attempts, the "scheduled pod" log
line (debug) says whether each decision was batched, and ``vecsched.io/batching: false`` turns it off.
Against the embedded API server on loopback, with the real client."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.config import API_VERSION, BATCHING_FIELD, parse_config
from tests.live.support import assert_no_overcommit, bound_count, pod, running, wait_for

REPLICAS = 8


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=[NodeShape(count=4, cpu="4", memory="8Gi")], kubelet_delay=0.05,
                               bookmark_interval=0.5) as srv:
        yield srv


def _attempts(text: str, result: str) -> float:
    m = re.search(r'^scheduler_batch_attempts_total\{profile="vecsched",result="' + result + r'"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.parametrize("batching,expect_batched", [(None, True), (True, True), (False, False)],
                         ids=["default-on", "on", "off"])
async def test_replicas_are_batched_unless_the_profile_turns_it_off(
        apiserver: ApiServer, caplog: pytest.LogCaptureFixture, batching: bool | None, expect_batched: bool) -> None:
    profile: dict[str, object] = {"schedulerName": "vecsched"}
    if batching is not None:
        profile[BATCHING_FIELD] = batching
    config = parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [profile]})
    caplog.set_level(logging.DEBUG, logger="vecsched.cycle")  # per-pod lines are debug
    async with running(apiserver, config=config) as s:
        for i in range(REPLICAS):
            apiserver.create("pods", pod(f"web-{i}", cpu="500m", memory="256Mi"))
        await wait_for(lambda: bound_count(apiserver) == REPLICAS, what=f"{REPLICAS} pods bound")
        await wait_for(lambda: s.cycle is not None and s.cycle.bound == REPLICAS, what="bindings counted")
        async with aiohttp.ClientSession() as http:
            async with http.get(s.server.url + "/metrics") as r:  # type: ignore[union-attr]
                text = await r.text()
    fields = [r.fields for r in caplog.records if r.getMessage() == "scheduled pod"]  # type: ignore[attr-defined]
    assert len(fields) == REPLICAS
    batched = sum(1 for f in fields if f["batched"])
    used, missed = _attempts(text, "hint_used"), _attempts(text, "no_hint")
    if expect_batched:
        # Every replica is signable under the default profile: one attempt each. The first is
        # a no_hint (nothing kept yet); the watch may bring bindings between cycles, which
        # only adds logged rows, so the others are hint_used -- at least one of them.
        assert used + missed == REPLICAS
        assert missed >= 1 and used >= 1
        assert batched == used
    else:
        assert (used, missed, batched) == (0, 0, 0)
        assert "scheduler_batch_attempts_total{" not in text
    assert_no_overcommit(apiserver)
