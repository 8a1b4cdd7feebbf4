"""CpuAwareFGD in a `vecsched run` profile: a CPU-only pod goes to the GPU-poor node, where FGD's
tie would send it to the GPU node by name."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.config import API_VERSION, parse_config
from tests.live.support import pod, pods_of, running, wait_for

TYPICAL = [{"milliCPU": 4000, "gpuMilli": 1000, "gpuCount": 1, "weight": 1}]


def _config(plugin: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "vecsched", "vecsched.io/tieBreak": "NodeName",
                          "plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]},
                                      "score": {"disabled": [{"name": "*"}],
                                                "enabled": [{"name": plugin, "weight": 1}]}},
                          "pluginConfig": [{"name": plugin, "args": {"typicalPods": TYPICAL}}]}]}


@pytest.mark.parametrize(("plugin", "node"), [
    # node-0000: 1 GPU, 8 cores; node-0001: no GPU, 8 cores. The pod takes 4 cores.
    # FGD: the typical pod (1 GPU, 4 cores) still fits node-0000 after it, so both nodes score
    # 50 and the NodeName tie-break takes node-0000.
    pytest.param("FGD", "node-0000", id="fgd-tie-by-name"),
    # CpuAwareFGD: nothing is stranded either way (4 cores left feed the GPU at 4,000 milli-CPU
    # per GPU), so the cost is -50 on both plus 1e-6 x idle milli-GPU: node-0000 -50 + 0.001
    # (score 99), node-0001 -50 (score 100): the GPU-poor node.
    pytest.param("CpuAwareFGD", "node-0001", id="cpu-aware-fgd-gpu-poor-node"),
])
async def test_cpu_only_pod(plugin: str, node: str) -> None:
    shapes = [NodeShape(count=1, cpu="8", gpus=1), NodeShape(count=1, cpu="8")]
    async with serve_apiserver(nodes=shapes) as srv:
        async with running(srv, config=parse_config(_config(plugin))):
            srv.create("pods", pod("cpu-only", cpu="4"))
            await wait_for(lambda: bool(pods_of(srv)["cpu-only"]["spec"].get("nodeName")), what="bound")
            assert pods_of(srv)["cpu-only"]["spec"]["nodeName"] == node
