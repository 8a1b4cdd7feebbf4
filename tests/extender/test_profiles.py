"""The profile answering a request: the URL prefix, else --profile, else the first profile."""

from __future__ import annotations

import aiohttp
import pytest

from scheduler.config import ConfigError, parse_config
from scheduler.extender import ExtenderServer, ExtenderSettings, serve_extender
from tests.extender.wire import kube_node, kube_pod, node_list, post

CONFIG = parse_config({
    "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
    "profiles": [
        {"schedulerName": "spread"},
        {"schedulerName": "binpack",
         "plugins": {"multiPoint": {"disabled": [{"name": "*"}],
                                    "enabled": [{"name": "NodeResourcesFit"}]}},
         "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {
             "type": "MostAllocated", "resources": [{"name": "cpu", "weight": 1}]}}}]},
    ],
})
# 1 CPU requested of 2 or of 10 (cpu only; memory is not scored by binpack).
ARGS = {"Pod": kube_pod("p", cpu="1"), "Nodes": node_list(kube_node("small", cpu="2"), kube_node("large", cpu="10"))}


async def _scores(http: aiohttp.ClientSession, url: str) -> dict[str, int]:
    status, result = await post(http, url, ARGS)
    assert status == 200, result
    return {h["Host"]: h["Score"] for h in result}


async def test_prefix_selects_the_profile(http: aiohttp.ClientSession) -> None:
    async with serve_extender(config=CONFIG, settings=ExtenderSettings(bind_address="127.0.0.1", port=0)) as ext:
        # binpack, W = 1: MostAllocated cpu 1000*100/2000 = 50 -> (50 + 5) // 10 = 5;
        #                 1000*100/10000 = 10 -> (10 + 5) // 10 = 1
        assert await _scores(http, f"{ext.url}/binpack/prioritize") == {"small": 5, "large": 1}
        # spread (the default plugins; W = 6 as in test_conversation_nodes): small: Taint 300 +
        # Fit (cpu 50, mem 96 -> 73) + Balanced (.5 vs .03125 -> 76) = 449 -> (449 + 30) // 60 = 7;
        # large: 300 + Fit (90, 96 -> 93) + Balanced (.1 vs .03125 -> 96) = 489 -> 8.
        spread = await _scores(http, f"{ext.url}/spread/prioritize")
        assert spread == {"small": 7, "large": 8}
        # It is also the un-prefixed default (the first profile).
        assert await _scores(http, f"{ext.url}/prioritize") == spread
        status, result = await post(http, f"{ext.url}/nosuch/filter", ARGS)
        assert status == 404
        assert result["Error"] == "no profile 'nosuch' in the vecsched extender (have: spread, binpack)"


async def test_profile_flag_sets_the_default(http: aiohttp.ClientSession) -> None:
    settings = ExtenderSettings(bind_address="127.0.0.1", port=0, profile="binpack")
    async with serve_extender(config=CONFIG, settings=settings) as ext:
        assert await _scores(http, f"{ext.url}/prioritize") == {"small": 5, "large": 1}


def test_unknown_profile_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no profile 'nope'"):
        ExtenderServer(config=CONFIG, settings=ExtenderSettings(profile="nope"))
