"""GPU indices chosen at Reserve are recorded on the pod and charged by the table extension."""

from __future__ import annotations

from dataclasses import replace

from gpu_helpers import gpu_node, gpu_pod, gpu_profile, table_of

from scoring.objects import with_annotations
from scoring.plugins.gpu_frag import TypicalPod
from scoring.plugins.gpu_state import gpu_table

INDEX = "vecsched.io/gpu-index"


def free(table: object, node: str) -> list[int]:
    ext = gpu_table(table)  # type: ignore[arg-type]
    row = table.index[node]  # type: ignore[attr-defined]
    return ext.free[row, : int(ext.count[row])].tolist()


def gpu_column(table: object, node: str) -> tuple[int, int]:
    row, col = table.index[node], table.resource_index["gpu"]  # type: ignore[attr-defined]
    return int(table.allocatable[row, col]), int(table.requested[row, col])  # type: ignore[attr-defined]


def test_fgd_choice_is_annotated_and_charged() -> None:
    wl = [TypicalPod(4000, 500, 1, (), 2), TypicalPod(4000, 1000, 2, (), 1)]
    table = table_of([gpu_node("n", 4)], [(gpu_pod("u2", milli=400, index="2"), "n")])
    d = gpu_profile("FGD", args={"typicalPods": [t.as_args() for t in wl]}).schedule(
        gpu_pod("p", milli=500), table)
    # GPU2 (600 free) is the only placement that keeps two full GPUs for the 2-GPU typical pod.
    assert d.annotations == {INDEX: "2"}
    assumed = d.assumed_pod()
    assert assumed.annotations[INDEX] == "2" and assumed.raw["metadata"]["annotations"][INDEX] == "2"
    table.add_pod(assumed, d.node)  # type: ignore[arg-type]
    assert free(table, "n") == [1000, 1000, 100, 1000]
    assert gpu_column(table, "n") == (4000, 900)
    table.remove_pod(assumed.key)
    assert free(table, "n") == [1000, 1000, 600, 1000]
    assert gpu_column(table, "n") == (4000, 400)


def test_whole_gpus_go_to_the_lowest_free_indices() -> None:
    table = table_of([gpu_node("n", 4)], [(gpu_pod("u1", milli=100, index="1"), "n")])
    d = gpu_profile("GpuPacking").schedule(gpu_pod("p", count=2), table)
    assert d.annotations == {INDEX: "0,2"}
    table.add_pod(d.assumed_pod(), "n")
    assert free(table, "n") == [0, 900, 0, 1000]


def test_pods_without_index_are_charged_like_the_simulator() -> None:
    table = table_of([gpu_node("n", 3)], [(gpu_pod("a", milli=700, index="0"), "n")])
    # Bound by someone else, no index: the tightest GPU that fits (GPU0, 300 free) takes a 0.2 share.
    table.add_pod(gpu_pod("b", milli=200), "n")
    assert free(table, "n") == [100, 1000, 1000]
    # An index that does not fit the node (GPU 7 of 3) is ignored the same way: tightest fit GPU0.
    table.add_pod(gpu_pod("c", milli=100, index="7"), "n")
    assert free(table, "n") == [0, 1000, 1000]
    # Whole GPUs without index: the lowest fully free ones.
    table.add_pod(gpu_pod("d", count=1), "n")
    assert free(table, "n") == [0, 0, 1000]
    assert gpu_table(table).indices_of("t/d") == (1,)


def test_extension_built_late_and_follows_node_moves() -> None:
    nodes = [gpu_node("a", 2), gpu_node("b", 2), gpu_node("c", 4)]
    table = table_of(nodes, [(gpu_pod("pa", milli=300, index="1"), "a"), (gpu_pod("pc", milli=600, index="3"), "c")])
    assert "gpu" not in table.extensions
    assert free(table, "c") == [1000, 1000, 1000, 400]  # built from the pods already there
    table.remove_node("b")  # c moves into b's row
    assert table.index["c"] == 1 and free(table, "c") == [1000, 1000, 1000, 400]
    table.remove_pod("t/pc")
    assert free(table, "c") == [1000, 1000, 1000, 1000] and free(table, "a") == [1000, 700]


def test_node_update_recharges_its_pods() -> None:
    table = table_of([gpu_node("n", 2)], [(gpu_pod("p", milli=500, index="1"), "n")])
    assert free(table, "n") == [1000, 500]
    table.set_node(gpu_node("n", 2, model="T4"))  # a status update: same GPUs, charges kept
    assert free(table, "n") == [1000, 500] and gpu_table(table).model_name(0) == "T4"
    table.set_node(gpu_node("n", 4))  # the node now reports 4 GPUs; its pod keeps GPU1
    assert free(table, "n") == [1000, 500, 1000, 1000]
    assert gpu_column(table, "n") == (4000, 500)


def test_requests_that_carry_gpu_are_not_charged_twice() -> None:
    # The strategy lab's pods carry their milli-GPU in requests["gpu"]; the table charges the
    # column itself and the extension only tracks the devices.
    pod = gpu_pod("lab", milli=250, index="0")
    pod = replace(pod, requests={**pod.requests, "gpu": 250})
    table = table_of([gpu_node("n", 1)], [(pod, "n")])
    assert free(table, "n") == [750] and gpu_column(table, "n") == (1000, 250)
    table.remove_pod(pod.key)
    assert free(table, "n") == [1000] and gpu_column(table, "n") == (1000, 0)


def test_reserve_follows_gpu_selection_when_no_score_plugin_chose() -> None:
    node = gpu_node("n", 3)
    placed = [(gpu_pod("a", milli=500, index="0"), "n"), (gpu_pod("b", milli=200, index="1"), "n")]
    best = gpu_profile(None).schedule(gpu_pod("p", milli=400), table_of([node], placed))
    worst = gpu_profile(None, selection="WorstFit").schedule(gpu_pod("p", milli=400), table_of([node], placed))
    # free 500, 800, 1000: BestFit -> GPU0 (500), WorstFit -> GPU2 (1000).
    assert best.annotations == {INDEX: "0"} and worst.annotations == {INDEX: "2"}
    assert with_annotations(best.pod, best.annotations).annotations[INDEX] == "0"
