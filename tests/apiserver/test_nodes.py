"""Node shapes build heterogeneous clusters; nodes can be added, broken and removed."""

from __future__ import annotations

import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver


async def test_heterogeneous_shapes() -> None:
    shapes = [
        NodeShape(count=2, cpu="16", memory="64Gi", zones=("z-a", "z-b"), instance_type="m.large"),
        NodeShape(count=1, cpu="64", memory="512Gi", gpus=8, labels={"pool": "gpu"},
                  taints=({"key": "gpu", "value": "true", "effect": "NoSchedule"},)),
    ]
    async with serve_apiserver(nodes=shapes) as srv:
        nodes = {n["metadata"]["name"]: n for n in srv.list("nodes")}
    assert sorted(nodes) == ["node-0000", "node-0001", "node-0002"]
    small, gpu = nodes["node-0001"], nodes["node-0002"]
    assert small["status"]["capacity"]["cpu"] == "16" and small["status"]["allocatable"]["memory"] == "64Gi"
    assert small["status"]["capacity"]["pods"] == "110"
    assert small["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z-b"
    assert nodes["node-0000"]["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z-a"
    assert small["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "m.large"
    assert small["metadata"]["labels"]["kubernetes.io/hostname"] == "node-0001"
    assert small["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "8" and gpu["metadata"]["labels"]["pool"] == "gpu"
    assert gpu["spec"]["taints"] == [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    assert [c["type"] for c in gpu["status"]["conditions"] if c["status"] == "True"] == ["Ready"]


async def test_add_and_delete_nodes(apiserver: ApiServer) -> None:
    node = apiserver.add_node(shape=NodeShape(cpu="8"))
    assert node["metadata"]["name"] == "node-0003"
    apiserver.add_node(name="edge-1")
    apiserver.delete_node("node-0000")
    assert sorted(n["metadata"]["name"] for n in apiserver.list("nodes")) == ["edge-1", "node-0001", "node-0002", "node-0003"]


@pytest.mark.parametrize("kwargs", [
    {"cpu": "lots"}, {"memory": "128GB"}, {"count": -1}, {"taints": ({"key": "x", "effect": "Sometimes"},)},
])
def test_bad_shapes_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        NodeShape(**kwargs)
