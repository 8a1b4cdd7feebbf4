"""A kube-scheduler conversation with nodeCacheCapable: false: full Pod and NodeList in, the
passing Nodes back; prioritize scores 0..10. The extender runs standalone (no API access), so
the nodes are judged as given, with nothing running on them."""

from __future__ import annotations

import aiohttp

from scheduler.extender import ExtenderServer
from tests.extender.wire import kube_node, kube_pod, node_list, post

NODES = node_list(
    kube_node("node-a", cpu="2500m"),
    kube_node("node-b", cpu="1"),
    kube_node("node-c", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    kube_node("node-d", cpu="64"),
)
ARGS = {"Pod": kube_pod("web-1", cpu="2", memory="1Gi"), "Nodes": NODES, "NodeNames": None}


async def test_filter_answers_with_the_passing_nodes_as_sent(extender: ExtenderServer,
                                                            http: aiohttp.ClientSession) -> None:
    status, result = await post(http, f"{extender.url}/filter", ARGS)
    assert status == 200
    assert result["NodeNames"] is None
    assert result["Error"] == ""
    # The passing nodes come back whole, exactly as kube-scheduler sent them.
    assert result["Nodes"]["items"] == [NODES["items"][0], NODES["items"][3]]
    assert result["FailedNodes"] == {}
    # 2 CPUs can never fit a 1-CPU node, and an untolerated NoSchedule taint is not
    # something preemption fixes: both UnschedulableAndUnresolvable, as upstream.
    assert result["FailedAndUnresolvableNodes"] == {
        "node-b": "Insufficient cpu",
        "node-c": "node(s) had untolerated taint {dedicated: gpu}",
    }


async def test_prioritize_scores_every_node_0_to_10(extender: ExtenderServer, http: aiohttp.ClientSession) -> None:
    status, result = await post(http, f"{extender.url}/prioritize", ARGS)
    assert status == 200
    # Default profile. Scoring this pod: TaintToleration (weight 3), NodeResourcesFit (1),
    # BalancedAllocation (1), ImageLocality (1); NodeAffinity, PodTopologySpread and
    # InterPodAffinity skip (no preferred terms, no constraints, no affinity): W = 6.
    # node-a: TaintToleration 100*3; Fit (cpu 500*100/2500 = 20, mem 87) -> 53;
    #   Balanced (cpu .8, mem .125 -> std .3375) -> 66; ImageLocality 0 (image < 23MB)
    #   T = 300 + 53 + 66 = 419 -> (419 + 30) // 60 = 7
    # node-d: 300 + Fit (96, 87 -> 91) + Balanced (.03125, .125 -> std .046875 -> 95) = 486
    #   -> (486 + 30) // 60 = 8
    # node-b, node-c fail the filters: 0.
    assert result == [{"Host": "node-a", "Score": 7}, {"Host": "node-b", "Score": 0},
                      {"Host": "node-c", "Score": 0}, {"Host": "node-d", "Score": 8}]


async def test_lowercase_and_camel_case_keys_are_read_as_go_does(extender: ExtenderServer,
                                                                  http: aiohttp.ClientSession) -> None:
    body = {"pod": ARGS["Pod"], "nodes": NODES, "nodeNames": None}
    status, result = await post(http, f"{extender.url}/filter", body)
    assert status == 200
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["node-a", "node-d"]


async def test_preempt_without_a_cache_uses_the_nodes_last_sent(extender: ExtenderServer,
                                                                http: aiohttp.ClientSession) -> None:
    await post(http, f"{extender.url}/filter", ARGS)  # the extender learns the nodes
    victim = kube_pod("old-1", cpu="2", node="node-a")
    body = {"Pod": ARGS["Pod"], "NodeNameToMetaVictims": None, "NodeNameToVictims": {
        "node-a": {"Pods": [victim], "NumPDBViolations": 1},
        "node-b": {"Pods": [], "NumPDBViolations": 0},      # 1 CPU: never fits 2
        "node-x": {"Pods": [], "NumPDBViolations": 0},      # never seen: dropped
    }}
    status, result = await post(http, f"{extender.url}/preempt", body)
    assert status == 200
    # Answers are always MetaVictims (pods by UID), as kube-scheduler converts them back.
    assert result == {"NodeNameToMetaVictims": {"node-a": {"Pods": [{"UID": "uid-old-1"}], "NumPDBViolations": 1}}}


async def test_bind_without_api_access_is_an_error_result(extender: ExtenderServer,
                                                          http: aiohttp.ClientSession) -> None:
    status, result = await post(http, f"{extender.url}/bind", {
        "PodName": "web-1", "PodNamespace": "default", "PodUID": "uid-web-1", "Node": "node-a"})
    assert status == 200
    assert "bind needs API access" in result["Error"]
