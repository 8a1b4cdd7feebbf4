"""The fragmentation measure and FGD's score on small nodes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_helpers import gpu_node, gpu_pod, table_of

from scoring.plugins.fgd import FGD
from scoring.plugins.gpu_frag import TargetWorkload, TypicalPod, frag_score, node_fragmentation, typical_pods_of
from scoring.plugins.gpu_state import CHOICE_KEY

# Typical pods (weights are counts, W = 5):
#   m1 4 CPU, 0.5 GPU   x2      m2 4 CPU, 2 whole GPUs x1
#   m3 16 CPU, 0.5 GPU  x1      m4 1 CPU, no GPU       x1
WL = TargetWorkload([TypicalPod(4000, 500, 1, (), 2), TypicalPod(4000, 1000, 2, (), 1),
                     TypicalPod(16000, 500, 1, (), 1), TypicalPod(1000, 0, 0, (), 1)])


def frag(free: list[int], cpu_left: int, model: int = -1, models: tuple[str, ...] = (),
         wl: TargetWorkload = WL) -> float:
    return float(node_fragmentation(np.array([free], np.int32), np.array([cpu_left]), np.array([model], np.int32),
                                    models, wl)[0])


@pytest.mark.parametrize("free, cpu_left, expected", [
    # S = 2800. m1 fits (3 GPUs >= 500): only the 200 GPU is lost to it -> 200.
    # m2 fits (two full GPUs): 600 + 200 lost -> 800. m3 lacks CPU (16 > 8): all 2800.
    # m4 asks for no GPU: all 2800.  (2*200 + 800 + 2800 + 2800) / 5 = 1360.
    ([1000, 1000, 600, 200], 8000, 1360.0),
    # S = 2200. m1 fits (1000, 600 >= 500) and loses the 400 and 200 GPUs: 600. m2 needs two
    # full GPUs, has one: 2200; m3 (CPU) 2200; m4 2200. (2*600 + 3*2200) / 5 = 1560.
    ([1000, 400, 600, 200], 8000, 1560.0),
    # CPU left 2: m1, m2, m3 all lack CPU -> every typical pod sees all 2800.
    ([1000, 1000, 600, 200], 2000, 2800.0),
    # No GPU left: nothing to fragment.
    ([0, 0], 8000, 0.0),
    # An empty 1-GPU node: m1 fits, loses 0; m2 cannot (one GPU) 1000; m3 CPU 1000; m4 1000.
    # (0 + 1000 + 1000 + 1000) / 5 = 600.
    ([1000], 8000, 600.0),
], ids=["mixed-node", "one-full-gpu", "cpu-exhausted", "no-idle-gpu", "single-gpu"])
def test_node_fragmentation(free: list[int], cpu_left: int, expected: float) -> None:
    assert frag(free, cpu_left) == pytest.approx(expected)


def test_model_restricted_typical_pod_counts_everything_on_other_models() -> None:
    # m is allowed on T4 only; on a V100 node (model code 1) it is "no access": all 1000 idle.
    wl = TargetWorkload([TypicalPod(1000, 500, 1, ("T4",), 1)])
    assert frag([1000], 8000, model=0, models=("T4", "V100"), wl=wl) == 0.0
    assert frag([1000], 8000, model=1, models=("T4", "V100"), wl=wl) == 1000.0
    assert frag([1000], 8000, model=-1, models=("T4", "V100"), wl=wl) == 1000.0


def test_frag_score() -> None:
    # sigmoid(0) * 100 = 50; one GPU more fragmentation: sigmoid(-1) = .2689 -> 26; one less: 73.
    assert frag_score(np.array([0.0, -1000.0 * 5, 1000.0 * 5]), 5.0).tolist() == [50, 26, 73]


# The mixed node (n0: 4 GPUs [1000, 1000, 600, 200] free, 8 of 32 CPUs left) for FGD.
def _mixed_table() -> object:
    node = gpu_node("n0", 4, cpu="32")
    placed = [(gpu_pod("u2", milli=400, index="2", cpu="12"), "n0"), (gpu_pod("u3", milli=800, index="3", cpu="12"), "n0")]
    return table_of([node], placed)


@pytest.mark.parametrize("pod, score, gpu", [
    # 0.5 GPU, 1 CPU -> CPU left 7. On GPU2 (600 -> 100): S' 2300, m1 fits losing 100+200, m2 fits
    # losing 300, m3/m4 2300: W F' = 600 + 300 + 4600 = 5500; W F = 6800; gain 1300/5 = 260 milli
    # -> sigmoid(.26) = .5646 -> 56. On GPU0 (1000 -> 500): m2 loses its second full GPU: W F' =
    # 2*200 + 2300*3 = 7300 -> -100 milli -> sigmoid(-.1) -> 47. GPU2 wins.
    (gpu_pod("share", milli=500, cpu="1"), 56, 2),
    # One whole GPU takes GPU0: S' 1800, m1 loses 200, m2 cannot fit any more: W F' = 400 + 1800*3
    # = 5800 -> gain 1000/5 = 200 -> sigmoid(.2) = .5498 -> 54.
    (gpu_pod("whole", milli=1000, cpu="1"), 54, -1),
    # 4 CPUs, no GPU: CPU left 4 still fits m1 and m2 -> unchanged -> 50.
    (gpu_pod("cpu4", cpu="4"), 50, -1),
    # 5 CPUs: CPU left 3 < 4, m1 and m2 now lack CPU: W F' = 5 * 2800 = 14000 -> -1440 milli
    # -> sigmoid(-1.44) = .1916 -> 19.
    (gpu_pod("cpu5", cpu="5"), 19, -1),
], ids=["share-picks-tight-gpu", "whole-gpu", "cpu-pod-harmless", "cpu-pod-starves-gpus"])
def test_fgd_score_and_gpu(pod: object, score: int, gpu: int) -> None:
    table = _mixed_table()
    state: dict[str, object] = {}
    got = FGD(WL).score(pod, table, np.array([0]), state)  # type: ignore[arg-type]
    assert got.tolist() == [score]
    choice = state.get(CHOICE_KEY)
    assert (choice.for_row(0) if choice is not None else -1) == gpu  # type: ignore[attr-defined]


def test_typical_pods_cover_95_percent() -> None:
    # 10 pods: shape A x6, B x3, C x1. 95% of 10 = 9.5 -> A (6), B (9), C (10) are all needed;
    # with 80%: A, B (9 >= 8).
    shapes = [(1000, 500, 1, ())] * 6 + [(2000, 1000, 1, ())] * 3 + [(1000, 0, 0, ())]
    assert [t.weight for t in typical_pods_of(shapes)] == [6, 3, 1]
    assert [(t.milli_cpu, t.weight) for t in typical_pods_of(shapes, threshold=80)] == [(1000, 6), (2000, 3)]
