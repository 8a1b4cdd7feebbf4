"""A request that runs past its time budget is answered with an error, not late and not never;
a plugin that raises is an error answer too, and the server goes on serving."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from scheduler.apiserver import write_kubeconfig
from scheduler.config import default_config
from scheduler.extender import ExtenderServer, ExtenderSettings
from scheduler.kube.client import ClientSettings
from scheduler.kube.informer import Backoff
from scoring.framework import CycleState, FilterPlugin, Profile, Reason, ScorePlugin
from scoring.objects import PodInfo
from scoring.table import IntArray, NodeTable
from tests.extender.wire import kube_node, kube_pod, node_list, post

BUDGET = 0.2


class Slow:
    """Filters nothing out, slowly (a stand-in for a pathological plugin)."""

    name = "Slow"

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        time.sleep(BUDGET * 1.5)
        return None


class Broken:
    name = "Broken"

    def score(self, pod: PodInfo, table: NodeTable, nodes: np.ndarray, state: CycleState) -> IntArray | None:
        raise ZeroDivisionError("integer division by zero")


_: type[FilterPlugin] = Slow
__: type[ScorePlugin] = Broken


@pytest.fixture
async def ext() -> AsyncIterator[ExtenderServer]:
    srv = ExtenderServer(config=default_config(), settings=ExtenderSettings(
        bind_address="127.0.0.1", port=0, request_budget_seconds=BUDGET))
    srv.profiles["slow"] = Profile(name="slow", filters=[Slow()], scorers=[])
    srv.profiles["broken"] = Profile(name="broken", filters=[], scorers=[(Broken(), 1)])
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


ARGS = {"Pod": kube_pod("p"), "Nodes": node_list(kube_node("a"))}


async def test_over_budget_filter_is_an_error_result(ext: ExtenderServer) -> None:
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        status, result = await post(http, f"{ext.url}/slow/filter", ARGS)
        assert time.monotonic() - started < 1.0
        assert status == 200
        assert result["Error"] == f"vecsched extender: request exceeded its {BUDGET:g}s budget during filter"
        assert result["NodeNames"] is None and result["Nodes"] is None
        status, result = await post(http, f"{ext.url}/slow/prioritize", ARGS)
        assert status == 503 and "budget" in result["Error"]


async def test_plugin_faults_are_error_answers(ext: ExtenderServer) -> None:
    async with aiohttp.ClientSession() as http:
        status, result = await post(http, f"{ext.url}/broken/prioritize", ARGS)
        assert status == 500
        assert result["Error"] == "vecsched extender: prioritize failed: ZeroDivisionError: integer division by zero"
        status, result = await post(http, f"{ext.url}/filter", ARGS)
        assert status == 200 and result["Error"] == ""


async def test_unsynced_cache_is_an_error_within_the_budget(tmp_path: Path) -> None:
    # An API server that is not there: the informers retry and never sync.
    kubeconfig = write_kubeconfig(path=tmp_path / "kubeconfig", server="http://127.0.0.1:9", token=None)
    srv = ExtenderServer(config=default_config(), settings=ExtenderSettings(
        bind_address="127.0.0.1", port=0, request_budget_seconds=BUDGET,
        client=ClientSettings(kubeconfig=str(kubeconfig)), informer_backoff=Backoff(initial=0.05, cap=0.1)))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            status, result = await post(http, f"{srv.url}/filter", {"Pod": kube_pod("p"), "NodeNames": ["a"]})
            assert status == 200
            assert result["Error"] == "vecsched extender: the node cache is not synced with the API yet"
            async with http.get(f"{srv.url}/readyz") as r:
                assert r.status == 503
    finally:
        await srv.stop()
