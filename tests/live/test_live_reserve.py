"""Reserve annotations (GPU indices) are patched onto the pod before it is bound."""

from __future__ import annotations

from typing import Any

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.config import API_VERSION, parse_config
from tests.live.support import events_for, pod, pods_of, running, wait_for

GPU_CONFIG = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
              "profiles": [{"schedulerName": "vecsched", "plugins": {"multiPoint": {"enabled": [{"name": "GpuShare"}]}}}]}


def gpu_pod(name: str, **kw: Any) -> dict[str, Any]:
    p = pod(name, **kw)
    p["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
    return p


async def test_gpu_indices_are_annotated_then_bound() -> None:
    async with serve_apiserver(nodes=[NodeShape(count=1, cpu="8", gpus=2)], kubelet_delay=0.05) as srv:
        seen: list[tuple[str, bool, bool]] = []  # (pod, annotated, bound) for every stored write

        def watch(_key: str, _old: Any, new: Any) -> None:
            if new is not None:
                obj = new.obj()
                seen.append((obj["metadata"]["name"], "vecsched.io/gpu-index" in (obj["metadata"].get("annotations") or {}),
                             bool(obj["spec"].get("nodeName"))))

        srv.store.add_listener(srv.resource("pods").key, watch)
        async with running(srv, config=parse_config(GPU_CONFIG)) as s:
            srv.create("pods", gpu_pod("g0"))
            srv.create("pods", gpu_pod("g1"))
            await wait_for(lambda: all(p["spec"].get("nodeName") for p in pods_of(srv).values()), what="both bound")
            pods = pods_of(srv)
            indices = {pods[n]["metadata"]["annotations"]["vecsched.io/gpu-index"] for n in ("g0", "g1")}
            assert indices == {"0", "1"}  # one whole GPU each, never the same one
            # The annotation was stored before the binding: no write shows a bound pod without it.
            assert not [w for w in seen if w[2] and not w[1]]
            srv.create("pods", gpu_pod("g2"))
            await wait_for(lambda: bool(events_for(srv, "g2", reason="FailedScheduling")), what="no GPU left")
            assert "Insufficient" in events_for(srv, "g2", reason="FailedScheduling")[0]["message"]
            assert s.cycle is not None and s.cycle.bound == 2
