"""ImageLocality: cases ported from upstream's image_locality_test.go
(TestImageLocalityPriority, TestNormalizedImageName), plus node-side names and
the container count."""

from typing import Any

import numpy as np
import pytest

from scoring.objects import node_from_json, pod_from_json
from scoring.plugins import image_locality
from scoring.plugins.image_locality import MB, calculate_priority
from scoring.table import NodeTable, normalized_image_name
from tests.explain_support import explain_scores

FAKE_DIGEST = "sha256:4813494d137e1631bba301d5acab6e7bb7aa74ce1185d456565ef51d737677b2"  # sha256("root")


def _pod(*images: str, init: tuple[str, ...] = ()) -> Any:
    return pod_from_json({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
        "initContainers": [{"name": f"i{i}", "image": im} for i, im in enumerate(init)]}})


def _node(name: str, images: list[tuple[list[str], int]]) -> Any:
    return node_from_json({"metadata": {"name": name},
                           "status": {"images": [{"names": names, "sizeBytes": size} for names, size in images]}})


NODE_40_300_2000 = [(["gcr.io/40:latest", "gcr.io/40:v1", "gcr.io/40:v1"], 40 * MB),
                    (["gcr.io/300:latest", "gcr.io/300:v1"], 300 * MB), (["gcr.io/2000:latest"], 2000 * MB)]
NODE_250_10 = [(["gcr.io/250:latest"], 250 * MB), (["gcr.io/10:latest", "gcr.io/10:v1"], 10 * MB)]
NODE_600_40_900 = [(["gcr.io/600:latest"], 600 * MB), (["gcr.io/40:latest"], 40 * MB), (["gcr.io/900:latest"], 900 * MB)]
NODE_300_600_900 = [(["gcr.io/300:latest"], 300 * MB), (["gcr.io/600:latest"], 600 * MB), (["gcr.io/900:latest"], 900 * MB)]
NODE_4000_30 = [(["gcr.io/4000:latest"], 4000 * MB), (["gcr.io/30:latest"], 30 * MB)]
NODE_20_30_40 = [(["gcr.io/20:latest"], 20 * MB), (["gcr.io/30:latest"], 30 * MB), (["gcr.io/40:latest"], 40 * MB)]
NO_IMAGES: list[tuple[list[str], int]] = []

CASES = [
    # node1: 40M * 1/2 = 20M < 23M -> 0; node2: 100 * (250M * 1/2 - 23M) / (1000M * 2 - 23M) = 5
    ("two images spread on two nodes, prefer the larger image one", _pod("gcr.io/40", "gcr.io/250"),
     [NODE_40_300_2000, NODE_250_10], [0, 5]),
    # node1: 100 * ((40M + 300M) * 1/2 - 23M) / (1000M * 2 - 23M) = 7; node2 nothing
    ("two images on one node, prefer this node", _pod("gcr.io/40", "gcr.io/300"),
     [NODE_40_300_2000, NODE_250_10], [7, 0]),
    # node1: 4000M * 1/2 >= 1000M * 2 -> max -> 100; node2: 10M * 1/2 < 23M -> 0
    ("if exceed limit, use limit", _pod("gcr.io/10", "gcr.io/4000"), [NODE_4000_30, NODE_250_10], [100, 0]),
    # node1: 100 * (4000M * 1/3 - 23M) / (1000M * 2 - 23M) = 66; node2: 10M/3 < 23M -> 0; node3 nothing
    ("if exceed limit, use limit (with node which has no images present)", _pod("gcr.io/10", "gcr.io/4000"),
     [NODE_4000_30, NODE_250_10, NO_IMAGES], [66, 0, 0]),
    # node1: 100 * (600M * 2/3 + 900M * 2/3 - 23M) / (1000M * 3 - 23M) = 32
    # node2: 100 * (300M * 1/3 + 600M * 2/3 + 900M * 2/3 - 23M) / (1000M * 3 - 23M) = 36
    ("pod with multiple large images, node2 is preferred", _pod("gcr.io/300", "gcr.io/600", "gcr.io/900"),
     [NODE_600_40_900, NODE_300_600_900, NO_IMAGES], [32, 36, 0]),
    # node1: 100 * (30M + 40M * 1/2 - 23M) / (1000M * 2 - 23M) = 1; node2: 100 * (30M - 23M) / (...) = 0
    ("pod with multiple small images", _pod("gcr.io/30", "gcr.io/40"), [NODE_20_30_40, NODE_4000_30], [1, 0]),
    # 2 containers: node1 100 * (300M * 1/2 - 23M) / (1000M * 2 - 23M) = 6; node2 30M * 1/2 < 23M -> 0
    ("include InitContainers: two images spread on two nodes, prefer the larger image one",
     _pod("gcr.io/30", init=("gcr.io/300",)), [NODE_40_300_2000, NODE_20_30_40], [6, 0]),
]


def _scores(pod: Any, nodes: list[list[tuple[list[str], int]]]) -> list[int]:
    t = NodeTable()
    for i, images in enumerate(nodes):
        t.set_node(_node(f"node{i + 1}", images))
    rows = np.array([t.index[f"node{i + 1}"] for i in range(len(nodes))], np.intp)
    got = image_locality.new({}, "args").score(pod, t, rows, {}).tolist()
    shown = explain_scores(nodes=t.infos, pod=pod, plugin=image_locality.NAME)
    assert [shown[f"node{i + 1}"] for i in range(len(nodes))] == got, "vecsched explain != plugin"
    return got


@pytest.mark.parametrize(("pod", "nodes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_image_locality_priority(pod: Any, nodes: list[list[tuple[list[str], int]]], expected: list[int]) -> None:
    assert _scores(pod, nodes) == expected


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        pytest.param("root", "root:latest", id="add :latest postfix 1"),
        pytest.param("gcr.io:5000/root", "gcr.io:5000/root:latest", id="add :latest postfix 2"),
        pytest.param("root:tag", "root:tag", id="keep it as is 1"),
        pytest.param("root@" + FAKE_DIGEST, "root@" + FAKE_DIGEST, id="keep it as is 2"),
        # upstream only looks at the last ':' and '/': an '@' without ':' still gets :latest
        pytest.param("repo/root@nodigest", "repo/root@nodigest:latest", id="vecsched: @ alone is no digest"),
    ],
)
def test_normalized_image_name(name: str, normalized: str) -> None:
    assert normalized_image_name(name) == normalized


def test_node_reported_names_are_not_normalised() -> None:
    # the pod's "gcr.io/big" becomes "gcr.io/big:latest"; node1 reports the bare name, which upstream
    # never rewrites, so only node2 matches: 100 * (2000M * 1/2 - 23M) / (1000M - 23M) = 100
    nodes = [[(["gcr.io/big"], 2000 * MB)], [(["gcr.io/big:latest"], 2000 * MB)]]
    assert _scores(_pod("gcr.io/big"), nodes) == [0, 100]


def test_every_container_counts_in_the_maximum_even_without_an_image() -> None:
    # 2 containers (one without image): 100 * (1500M - 23M) / (2000M - 23M) = 74
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "gcr.io/1500:v1"}, {"name": "b"}]}})
    assert _scores(pod, [[(["gcr.io/1500:v1"], 1500 * MB)]]) == [74]


def test_calculate_priority_bounds() -> None:
    sums = np.array([0, 23 * MB, 23 * MB + 1, 1000 * MB, 5000 * MB], np.int64)
    # 1 container: 0, 0, 100 * 1 // 977M = 0, 100, clamp -> 100
    assert calculate_priority(sums, 1).tolist() == [0, 0, 0, 100, 100]
    # no containers: everything clamps to the minimum -> 0
    assert calculate_priority(sums, 0).tolist() == [0, 0, 0, 0, 0]
