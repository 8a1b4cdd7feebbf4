"""GpuShare's fit rules: specific GPUs must hold the share, on an allowed model."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_helpers import gpu_node, gpu_pod, gpu_profile, table_of

from scoring.plugins.gpu_share import INSUFFICIENT_GPU, MODEL_MISMATCH, GpuShare
from scoring.plugins.gpu_state import GpuRequest, GpuRequestError, parse_gpu_request

# n-a: GPU0 has 300 free (a 700 share on it), GPU1 is free; n-b: two GPUs with 400 free each;
# n-one: one free T4; n-cpu: no GPU; n-v100: four free V100.
NODES = [gpu_node("n-a", 2), gpu_node("n-b", 2), gpu_node("n-one", 1, model="T4"), gpu_node("n-cpu", 0),
         gpu_node("n-v100", 4, model="V100")]
PLACED = [(gpu_pod("a0", milli=700, index="0"), "n-a"), (gpu_pod("b0", milli=600, index="0"), "n-b"),
          (gpu_pod("b1", milli=600, index="1"), "n-b")]


def _verdict(pod: object) -> dict[str, list[tuple[str, bool]]]:
    table = table_of(NODES, PLACED)
    plugin, state = GpuShare(), {}
    assert plugin.prefilter(pod, table, state) is None  # type: ignore[arg-type]
    out: dict[str, list[tuple[str, bool]]] = {n.name: [] for n in NODES}
    for r in plugin.filter(pod, table, state) or []:  # type: ignore[arg-type]
        for row in np.flatnonzero(r.nodes):
            out[table.names[row]].append((r.message, r.unresolvable))
    return out


INS, INS_NEVER, MODEL = (INSUFFICIENT_GPU, False), (INSUFFICIENT_GPU, True), (MODEL_MISMATCH, True)


@pytest.mark.parametrize("pod, expected", [
    # 0.5 GPU: n-a's GPU1 (1000) fits; n-b's GPUs have 400 < 500; n-cpu has no GPU at all.
    (gpu_pod("half", milli=500), {"n-a": [], "n-b": [INS], "n-one": [], "n-cpu": [INS_NEVER], "n-v100": []}),
    # 0.3 GPU: 300 free on n-a's GPU0 is enough, 400 on n-b too.
    (gpu_pod("third", milli=300), {"n-a": [], "n-b": [], "n-one": [], "n-cpu": [INS_NEVER], "n-v100": []}),
    # 2 whole GPUs: n-a has one fully free GPU, n-b none, n-one has only 1 GPU (never fits).
    (gpu_pod("two", milli=1000, count=2), {"n-a": [INS], "n-b": [INS], "n-one": [INS_NEVER], "n-cpu": [INS_NEVER],
                                           "n-v100": []}),
    # The same request as nvidia.com/gpu: 2.
    (gpu_pod("two-res", whole=2), {"n-a": [INS], "n-b": [INS], "n-one": [INS_NEVER], "n-cpu": [INS_NEVER],
                                   "n-v100": []}),
    # Model T4 only: nodes without a model and the V100 node are rejected as unresolvable.
    (gpu_pod("t4", milli=200, models="T4"), {"n-a": [MODEL], "n-b": [MODEL], "n-one": [], "n-cpu": [MODEL],
                                             "n-v100": [MODEL]}),
    # No GPU: passes everywhere, GPU nodes included.
    (gpu_pod("cpu"), {"n-a": [], "n-b": [], "n-one": [], "n-cpu": [], "n-v100": []}),
], ids=["half-gpu", "third-gpu", "two-whole", "two-whole-nvidia-resource", "model-t4", "no-gpu"])
def test_fit_rules(pod: object, expected: dict[str, list[tuple[str, bool]]]) -> None:
    assert _verdict(pod) == expected


@pytest.mark.parametrize("pod, field", [
    (gpu_pod("bad", milli=0), "vecsched.io/gpu-milli"),
    (gpu_pod("bad2", milli=1500), "vecsched.io/gpu-milli"),
    (gpu_pod("bad3", milli=500, count=2), "vecsched.io/gpu-count"),
    (gpu_pod("bad4", milli=500, whole=1), "nvidia.com/gpu"),
    (gpu_pod("bad5", milli=500, models="T4,,V100"), "vecsched.io/gpu-models"),
], ids=["zero-milli", "milli-above-1000", "share-on-two-gpus", "conflicts-nvidia-gpu", "empty-model"])
def test_bad_requests_name_the_field(pod: object, field: str) -> None:
    with pytest.raises(GpuRequestError) as e:
        parse_gpu_request(pod)  # type: ignore[arg-type]
    assert field in str(e.value)
    msg = GpuShare().prefilter(pod, table_of(NODES), {})  # type: ignore[arg-type]
    assert msg is not None and msg.startswith("invalid GPU request: pod t/") and field in msg


def test_requests_parse() -> None:
    assert parse_gpu_request(gpu_pod("p", milli=250)) == GpuRequest(250, 1)
    assert parse_gpu_request(gpu_pod("p", count=4)) == GpuRequest(1000, 4)
    assert parse_gpu_request(gpu_pod("p", whole=2, milli=1000, count=2)) == GpuRequest(1000, 2)
    assert parse_gpu_request(gpu_pod("p", milli=300, models="T4, V100")) == GpuRequest(300, 1, frozenset({"T4", "V100"}))
    assert parse_gpu_request(gpu_pod("p")).count == 0


def test_failed_scheduling_message() -> None:
    # A 2-GPU T4 pod: four nodes have no T4 (unresolvable), n-one has a T4 but only one GPU.
    d = gpu_profile("GpuPacking").schedule(gpu_pod("big", count=2, models="T4"), table_of(NODES, PLACED))
    assert d.node is None
    # Both reasons are unresolvable (n-one has one GPU in all), so preemption cannot help.
    assert d.message == ("0/5 nodes are available: 1 Insufficient GPU, 4 node(s) didn't match GPU model. "
                         "preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling.")
