"""Each GPU placement policy's choice on a small hand-made cluster."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_helpers import gpu_node, gpu_pod, gpu_profile, table_of

from scoring.plugins.gpu_frag import TypicalPod

INDEX = "vecsched.io/gpu-index"


def test_gpu_packing_prefers_the_tightest_shared_gpu() -> None:
    nodes = [gpu_node("idle", 2), gpu_node("used", 2), gpu_node("loose", 2)]
    table = table_of(nodes, [(gpu_pod("u", milli=700, index="0"), "used"), (gpu_pod("l", milli=400, index="0"), "loose")])
    d = gpu_profile("GpuPacking").schedule(gpu_pod("p", milli=250), table)
    # idle: every GPU free -> max(33 - 2, 2) = 31; used: GPU0 has 300 free -> 100 - (300*100/1000)/10 = 97;
    # loose: tightest GPU has 600 -> 100 - 6 = 94.
    assert dict(zip((table.names[r] for r in d.scored), d.scores["GpuPacking"].tolist())) == \
        {"idle": 31, "used": 97, "loose": 94}
    assert (d.node, d.annotations) == ("used", {INDEX: "0"})


def test_gpu_packing_whole_gpu_prefers_used_nodes() -> None:
    nodes = [gpu_node("idle", 2), gpu_node("used", 2)]
    table = table_of(nodes, [(gpu_pod("u", milli=700, index="0"), "used")])
    d = gpu_profile("GpuPacking").schedule(gpu_pod("p", count=1), table)
    # idle: 31; used: must take the fully free GPU1 -> case 2: max(50 - 1, 33) = 49.
    assert d.scores["GpuPacking"].tolist() == [31, 49]
    assert (d.node, d.annotations) == ("used", {INDEX: "1"})


def test_gpu_clustering_keeps_tags_together() -> None:
    nodes = [gpu_node("shares", 2), gpu_node("mixed", 4), gpu_node("whole", 2), gpu_node("idle", 2)]
    placed = [(gpu_pod("s", milli=500, index="0"), "shares"), (gpu_pod("ms", milli=500, index="0"), "mixed"),
              (gpu_pod("mw", count=1, index="1"), "mixed"), (gpu_pod("w", count=1, index="0"), "whole")]
    d = gpu_profile("GpuClustering").schedule(gpu_pod("p", milli=300), table_of(nodes, placed))
    # b = 25 * (8000 - free) / 8000: shares free 1500 -> 20, only share pods -> 75 + 20 = 95;
    # mixed free 2500 -> 17, share among others -> 50 + 17 = 67; whole free 1000 -> 21, other tags only -> 21;
    # idle free 2000 -> 18, no GPU pod -> 25 + 18 = 43.
    assert d.scores["GpuClustering"].tolist() == [95, 67, 21, 43]
    assert d.node == "shares"


def test_gpu_best_fit_prefers_least_leftover() -> None:
    nodes = [gpu_node("a", 2), gpu_node("b", 2), gpu_node("c", 1)]
    table = table_of(nodes, [(gpu_pod("x", milli=1000, index="0", cpu="24"), "b")])
    d = gpu_profile("GpuBestFit").schedule(gpu_pod("p", milli=500, cpu="4"), table)
    # L = .5 (cpu_free - 4000) / 128000 + .5 (gpu_free - 500) / 8000:
    # a: .109375 + .09375 = .203125 -> int(79.6875) = 79; b: .015625 + .03125 -> 95; c: .109375 + .03125 -> 85.
    # Normalised: a 0, b 100, c (85 - 79) * 100 / 16 = 37.
    assert d.scores["GpuBestFit"].tolist() == [0, 100, 37]
    assert (d.node, d.annotations) == ("b", {INDEX: "1"})


def test_gpu_dot_product_prefers_smallest_product() -> None:
    nodes = [gpu_node("a", 2, cpu="64"), gpu_node("b", 2, cpu="32"), gpu_node("c", 1, cpu="16")]
    d = gpu_profile("GpuDotProduct").schedule(gpu_pod("p", count=1, cpu="16"), table_of(nodes))
    # pod (16000/128000, 1000/8000) = (.125, .125); a (.5, .25): dot .09375 -> 100 (1 - .046875) = 95;
    # b (.25, .25): .0625 -> 96; c (.125, .125): .03125 -> 98.
    assert d.scores["GpuDotProduct"].tolist() == [95, 96, 98]
    assert d.node == "c"


def test_fgd_prefers_the_placement_that_reduces_fragmentation() -> None:
    wl = [TypicalPod(4000, 500, 1, (), 2), TypicalPod(4000, 1000, 2, (), 1),
          TypicalPod(16000, 500, 1, (), 1), TypicalPod(1000, 0, 0, (), 1)]
    args = {"typicalPods": [t.as_args() for t in wl]}
    nodes = [gpu_node("idle", 4, cpu="32"), gpu_node("mixed", 4, cpu="32")]
    placed = [(gpu_pod("u2", milli=400, index="2", cpu="12"), "mixed"),
              (gpu_pod("u3", milli=800, index="3", cpu="12"), "mixed")]
    d = gpu_profile("FGD", args=args).schedule(gpu_pod("p", milli=500, cpu="1"), table_of(nodes, placed))
    # idle: GPU0 1000 -> 500 leaves m1, m2, m3 fitting; W F 4000 -> W F' 500 (m2 loses the 500) + 3500 = 4000:
    # unchanged -> 50. mixed: GPU2 600 -> 100 gains 260 milli -> 56 (see test_gpu_frag).
    assert d.scores["FGD"].tolist() == [50, 56]
    assert (d.node, d.annotations) == ("mixed", {INDEX: "2"})


def test_random_gpu_selection_is_seeded_and_fits() -> None:
    # Four GPUs with 300, 900, 1000, 200 free: a 0.25 GPU fits on GPUs 0, 1, 2.
    node = gpu_node("n", 4)
    placed = [(gpu_pod("a", milli=700, index="0"), "n"), (gpu_pod("b", milli=100, index="1"), "n"),
              (gpu_pod("c", milli=800, index="3"), "n")]
    picks = set()
    for seed in range(12):
        prof = gpu_profile(None, selection="Random")
        for p in prof.filters:
            if hasattr(p, "reseed"):
                p.reseed(seed)
        d = prof.schedule(gpu_pod("p", milli=250), table_of([node], placed))
        picks.add(d.annotations[INDEX])
    assert picks <= {"0", "1", "2"} and len(picks) > 1
    # The default BestFit selection takes the tightest GPU that fits: GPU0 (300 free).
    d = gpu_profile(None).schedule(gpu_pod("p", milli=250), table_of([node], placed))
    assert d.annotations == {INDEX: "0"}


@pytest.mark.parametrize("plugin", ["GpuPacking", "GpuClustering"])
def test_cpu_pods_score_zero(plugin: str) -> None:
    d = gpu_profile(plugin).schedule(gpu_pod("cpu"), table_of([gpu_node("a", 2), gpu_node("b", 0)]))
    assert d.scores[plugin].tolist() == [0, 0] and not d.annotations
    assert np.all(d.feasible)
