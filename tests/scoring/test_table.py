"""NodeTable stays equal to a table rebuilt from scratch, whatever sequence of
node and pod changes reaches it; new resources add a column."""

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.objects import node_from_json, pod_from_json
from scoring.table import NodeTable


def _node(name: str, cpu: int = 4, gpu: int = 0, zone: str = "a", taint: bool = False, image: str = "") -> Any:
    alloc = {"cpu": str(cpu), "memory": "8Gi", "pods": "10"}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    return node_from_json({
        "metadata": {"name": name, "labels": {"zone": zone}},
        "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}] if taint else []},
        "status": {"allocatable": alloc, "images": [{"names": [image], "sizeBytes": 10}] if image else []},
    })


def _pod(name: str, cpu: int = 100, gpu: int = 0, port: int = 0) -> Any:
    req = {"cpu": f"{cpu}m"}
    if gpu:
        req["nvidia.com/gpu"] = str(gpu)
    c: dict[str, Any] = {"name": "c", "resources": {"requests": req}}
    if port:
        c["ports"] = [{"containerPort": port, "hostPort": port}]
    return pod_from_json({"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": [c]}})


def _view(t: NodeTable) -> dict[str, Any]:
    """Everything a plugin can see, keyed by node name (row order is not part of the contract)."""
    out = {}
    for name, row in t.index.items():
        out[name] = (
            {r: int(t.allocatable[row, c]) for r, c in t.resource_index.items() if t.allocatable[row, c]},
            {r: int(t.requested[row, c]) for r, c in t.resource_index.items() if t.requested[row, c]},
            tuple(int(x) for x in t.nonzero[row]),
            bool(t.unschedulable[row]),
            {k: t.labels.values[k][c] for k, col in t.labels.codes.items() if (c := col[row]) >= 0},
            {t.taints[i] for i in np.flatnonzero(t.taint_pos[row])},
            {t.image_names[i] for i in np.flatnonzero(t.image_sizes[row])},
            sorted(p.key for p in t.node_pods(name)),
        )
    return out


def test_pods_update_rows_incrementally() -> None:
    t = NodeTable(capacity=1)
    t.set_node(_node("n1"))
    t.set_node(_node("n2"))
    t.add_pod(_pod("a", cpu=300), "n1")
    t.add_pod(_pod("b", cpu=200), "n1")
    row = t.index["n1"]
    # cpu 300 + 200 = 500 milli; pod count 2; non-zero memory 2 x 200Mi (no memory requests)
    assert t.requested[row, t.resource_index["cpu"]] == 500
    assert t.requested[row, t.resource_index["pods"]] == 2
    assert t.nonzero[row, 1] == 2 * 200 * 2**20
    t.remove_pod("ns/a")
    assert t.requested[row, t.resource_index["cpu"]] == 200


def test_new_extended_resource_adds_a_column() -> None:
    t = NodeTable()
    t.set_node(_node("cpu-only"))
    assert "nvidia.com/gpu" not in t.resource_index
    t.set_node(_node("gpu", gpu=8))
    col = t.resource_index["nvidia.com/gpu"]
    # the old node has 0 of it, the new node 8
    assert t.allocatable[t.index["cpu-only"], col] == 0
    assert t.allocatable[t.index["gpu"], col] == 8


def test_pod_before_its_node_is_applied_when_the_node_arrives() -> None:
    t = NodeTable()
    t.add_pod(_pod("early", cpu=700), "late-node")
    assert t.node_of("ns/early") is None
    t.set_node(_node("late-node"))
    assert t.node_of("ns/early") == "late-node"
    assert t.requested[t.index["late-node"], t.resource_index["cpu"]] == 700


def test_removed_node_keeps_its_pods_aside() -> None:
    t = NodeTable()
    t.set_node(_node("n1"))
    t.add_pod(_pod("p", cpu=100), "n1")
    assert [p.key for p in t.remove_node("n1")] == ["ns/p"]
    t.set_node(_node("n1"))
    assert t.node_of("ns/p") == "n1"


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("node"), st.integers(0, 6), st.integers(1, 8), st.integers(0, 2), st.sampled_from("abc"),
                  st.booleans(), st.sampled_from(["", "img:1", "img:2"])),
        st.tuples(st.just("rmnode"), st.integers(0, 6)),
        st.tuples(st.just("pod"), st.integers(0, 12), st.integers(0, 6), st.integers(0, 900), st.integers(0, 1),
                  st.sampled_from([0, 0, 80, 443])),
        st.tuples(st.just("rmpod"), st.integers(0, 12)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_incremental_equals_rebuilt(ops: list[tuple[Any, ...]]) -> None:
    t = NodeTable(capacity=1)
    nodes: dict[str, Any] = {}
    pods: dict[str, tuple[Any, str]] = {}
    for op in ops:
        if op[0] == "node":
            _, i, cpu, gpu, zone, taint, image = op
            nodes[f"n{i}"] = _node(f"n{i}", cpu, gpu, zone, taint, image)
            t.set_node(nodes[f"n{i}"])
        elif op[0] == "rmnode":
            nodes.pop(f"n{op[1]}", None)
            t.remove_node(f"n{op[1]}")
        elif op[0] == "pod":
            _, i, n, cpu, gpu, port = op
            pods[f"ns/p{i}"] = (_pod(f"p{i}", cpu, gpu, port), f"n{n}")
            t.add_pod(*pods[f"ns/p{i}"])
        else:
            pods.pop(f"ns/p{op[1]}", None)
            t.remove_pod(f"ns/p{op[1]}")
    fresh = NodeTable()
    for n in nodes.values():
        fresh.set_node(n)
    for pod, node in pods.values():
        fresh.add_pod(pod, node)
    assert _view(t) == _view(fresh)
    # image counts match the nodes that hold each image
    for name, col in ((n, t.image_column(n)) for n in t.image_names):
        assert t.image_nodes[col] == sum(1 for node in nodes.values() if any(name in names for names, _ in node.images))
