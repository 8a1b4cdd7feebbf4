"""CpuAwareFGD's scores, GPU choice and args on tiny hand-made GPU tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gpu_helpers import gpu_node, gpu_pod, table_of
from scoring.args import ArgsError
from scoring.objects import NodeInfo, PodInfo
from scoring.plugins.cpu_aware_fgd import new
from scoring.plugins.fgd import new as new_fgd
from scoring.plugins.gpu_state import CHOICE_KEY, GpuChoice

WHOLE_4C = [{"milliCPU": 4000, "gpuMilli": 1000, "gpuCount": 1, "weight": 1}]
"""One typical pod: a whole GPU and 4 cores, so milliCpuPerGpu = 4000 x 1000 / 1000 = 4000."""
HALF_1C = [{"milliCPU": 1000, "gpuMilli": 500, "gpuCount": 1, "weight": 1}]
"""One typical pod: half a GPU and 1 core: milliCpuPerGpu = 1000 x 1000 / 500 = 2000."""

# Costs are in score points: -FGD + 25 x (stranded GPUs after - before) + 1e-6 x tie-break
# milli-GPU; score 100 at the lowest cost, else 100 - ceil(cost - lowest), at most 99.
# FGD's own scores (for comparison): sigmoid(-dF in GPUs) x 100, truncated.
CASES: list[Any] = [
    pytest.param(
        WHOLE_4C, gpu_pod("cpu-only", cpu="4"),
        [gpu_node("a", 1, cpu="8"), gpu_node("b", 1, cpu="6"), gpu_node("c", 0, cpu="8")], [],
        # a: 8 -> 4 cores still feed its GPU: FGD 50, stranded 0 -> 0, idle 1000: cost -50 + .001
        # b: 6 -> 2 cores: the typical pod no longer fits (F 0 -> 1000 milli, FGD 26);
        #    stranded 0 -> 1000 - 2000/4000 x 1000 = 500 milli: cost -26 + 12.5 + .001 = -13.499
        # c: no GPU: FGD 50, nothing stranded or idle: cost -50 (lowest)
        # -> a 100 - ceil(.001) = 99, b 100 - ceil(36.501) = 63, c 100
        [99, 63, 100], [50, 26, 50], None, id="cpu-only-pod-goes-to-gpu-poor-node"),
    pytest.param(
        WHOLE_4C, gpu_pod("cpu-only", cpu="4"),
        [gpu_node("d", 2, cpu="10"), gpu_node("e", 2, cpu="20")], [],
        # Each typical pod alone still fits both nodes after 4 cores go: FGD 50 and 50 (the
        # name tie-break would take d). Stranded: d 10 -> 6 cores feed 1.5 of its 2 idle GPUs,
        # 0 -> 500 milli: cost -50 + 12.5 + .002 = -37.498; e 16 cores feed 4 GPUs: -50 + .002
        # -> d 100 - ceil(12.5) = 87, e 100
        [87, 100], [50, 50], None, id="cpu-only-pod-spares-node-whose-cpu-feeds-its-gpus"),
    pytest.param(
        WHOLE_4C, gpu_pod("one-gpu", cpu="8", whole=1),
        [gpu_node("h", 4, cpu="16"), gpu_node("i", 2, cpu="32")], [],
        # h: 16 -> 8 cores, 4 -> 3 idle GPUs, of which 8000/4000 = 2 fed: stranded 0 -> 1000;
        #    FGD 50 (the typical pod still fits): cost -50 + 25 + .003 = -24.997
        # i: 32 -> 24 cores feed all 1 idle GPU: cost -50 + .001
        # -> h 100 - ceil(25.002) = 74, i 100 (FGD: 50 and 50, the name tie-break takes h)
        [74, 100], [50, 50], None, id="whole-gpu-pod-avoids-stranding"),
    pytest.param(
        WHOLE_4C, gpu_pod("one-gpu", cpu="1", whole=1),
        [gpu_node("j", 4, cpu="32"), gpu_node("k", 2, cpu="32")], [],
        # Nothing fragmented or stranded either way: FGD 50 and 50; the tie-break packs:
        # idle after j 3000 milli (cost -50 + .003), k 1000 (-50 + .001) -> j 99, k 100
        [99, 100], [50, 50], None, id="whole-gpu-pod-tie-goes-to-fewer-idle-gpus"),
    pytest.param(
        HALF_1C, gpu_pod("share", milli=200, cpu="1"),
        [gpu_node("f", 2), gpu_node("g", 1)],
        [(gpu_pod("used-f", milli=100, count=1, index="1"), "f"),
         (gpu_pod("used-g", milli=400, count=1, index="0"), "g")],
        # f: GPU0 free 1000, GPU1 900. Either leaves >= 500 free (800 or 700): F stays 0, FGD 50
        #    on both; FGD keeps the first, GPU0; the tie-break takes the smaller remainder, GPU1
        #    (700): cost -50 + .0007. 32 cores feed 16 GPUs: nothing stranded.
        # g: 600 -> 400 free < 500: F 0 -> 400 milli, FGD trunc(100 sigmoid(-.4)) = 40: cost
        #    -40 + .0004 -> g 100 - ceil(9.9997) = 90, f 100
        [100, 90], [50, 40], 1, id="share-fills-the-fuller-gpu-on-ties"),
]


@pytest.mark.parametrize(("typical", "pod", "nodes", "placed", "want", "want_fgd", "want_gpu_on_first"), CASES)
def test_scores(typical: list[dict[str, Any]], pod: PodInfo, nodes: list[NodeInfo],
                placed: list[tuple[PodInfo, str]], want: list[int], want_fgd: list[int],
                want_gpu_on_first: int | None) -> None:
    table = table_of(nodes, placed)
    rows = np.arange(table.n)
    state: dict[str, object] = {}
    got = new({"typicalPods": typical}, "args").score(pod, table, rows, state)
    assert got.tolist() == want
    fgd_state: dict[str, object] = {}
    assert new_fgd({"typicalPods": typical}, "args").score(pod, table, rows, fgd_state).tolist() == want_fgd
    if want_gpu_on_first is not None:
        choice, fgd_choice = state[CHOICE_KEY], fgd_state[CHOICE_KEY]
        assert isinstance(choice, GpuChoice) and isinstance(fgd_choice, GpuChoice)
        assert choice.for_row(0) == want_gpu_on_first
        assert fgd_choice.for_row(0) == 0


# The first case's nodes a (1 GPU, 8 cores), b (1 GPU, 6), c (no GPU) and a 4-core CPU-only pod.
@pytest.mark.parametrize(("args", "want"), [
    # Weight 0: FGD plus the tie-break: a -50 + .001, b -26 + .001, c -50
    # -> a 100 - ceil(.001) = 99, b 100 - ceil(24.001) = 75, c 100
    pytest.param({"typicalPods": WHOLE_4C, "strandingWeight": 0}, [99, 75, 100], id="weight-0-is-fgd-plus-ties"),
    # 16000 milli-CPU per GPU: a's 8 -> 4 cores feed .5 -> .25 GPU, stranded 500 -> 750 milli,
    # +6.25: -50 + 6.25 + .001; b's 6 -> 2 cores: 625 -> 875, +6.25: -26 + 6.25 + .001; c -50
    # -> a 100 - ceil(6.251) = 93, b 100 - ceil(30.251) = 69, c 100
    pytest.param({"typicalPods": WHOLE_4C, "milliCpuPerGpu": 16000}, [93, 69, 100], id="cpu-per-gpu-given"),
    # No target workload: 50 everywhere, as FGD.
    pytest.param({}, [50, 50, 50], id="no-typical-pods-every-node-50"),
])
def test_args_change_the_scores(args: dict[str, Any], want: list[int]) -> None:
    table = table_of([gpu_node("a", 1, cpu="8"), gpu_node("b", 1, cpu="6"), gpu_node("c", 0, cpu="8")])
    got = new(args, "args").score(gpu_pod("cpu-only", cpu="4"), table, np.arange(table.n), {})
    assert got.tolist() == want


@pytest.mark.parametrize(("args", "message"), [
    pytest.param({"strandingWeight": -1}, "p.args.strandingWeight: must be >= 0, got -1", id="negative-weight"),
    pytest.param({"strandingWeight": "x"}, "p.args.strandingWeight: expected an integer, got 'x'", id="weight-type"),
    pytest.param({"milliCpuPerGpu": 0}, "p.args.milliCpuPerGpu: must be >= 1, got 0", id="cpu-per-gpu-0"),
    pytest.param({"typicalPods": [{"gpuMilli": 2000}]}, "p.args.typicalPods[0].gpuMilli: must be <= 1000, got 2000",
                 id="typical-pod"),
    pytest.param({"bogus": 1}, "p.args.bogus: unknown field (known: milliCpuPerGpu, strandingWeight, typicalPods)",
                 id="unknown-field"),
    pytest.param([1], "p.args: expected an object, got list", id="not-an-object"),
])
def test_bad_args_name_the_field(args: Any, message: str) -> None:
    with pytest.raises(ArgsError) as e:
        new(args, "p.args")
    assert str(e.value) == message
