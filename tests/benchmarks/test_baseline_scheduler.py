"""The baseline scheduler places every pending pod of its own on a node that fits, least allocated first.

It is the yardstick of ``python -m benchmarks.e2e --backlog``: a comparison with
it means something only if it schedules correctly. Each case runs it against the
embedded API server over HTTP: all pods but one are pending before it starts
(its list), the last one is created after it has listed (its watch).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from benchmarks.baseline_scheduler import BASELINE_NAME, quantity, run
from scheduler.apiserver import NodeShape, serve_apiserver

# Pods of 500m CPU and 1Gi. A node's score for one more pod is the mean of its free CPU and memory
# fractions after it, so with pods of one size the baseline always takes the node whose next pod
# brings it to the lowest fraction used: on a 4-CPU/8Gi node the k-th pod brings it to k/8, on a
# 2-CPU/4Gi node to k/4. N pods go to the N smallest of these values, and the counts are unique
# when the N-th smallest differs from the (N+1)-th (no tie decides them).
BIG = NodeShape(count=2, cpu="4", memory="8Gi")  # node-0000, node-0001
SMALL = NodeShape(count=3, cpu="2", memory="4Gi")  # node-0002 .. node-0004
SMALL_ONE_POD = NodeShape(count=4, cpu="2", memory="4Gi", pods=1)


@pytest.mark.parametrize(("shapes", "pods", "expected"), [
    # values: big 1/8, 1/8 (two nodes); the 3rd smallest is 2/8 -> both pods on the big nodes
    pytest.param([BIG, SMALL], 2, [1, 1, 0, 0, 0], id="first-pods-on-the-emptiest"),
    # sorted: 1/8 x2, 2/8 x5 (big 2/8 x2, small 1/4 x3), 3/8 x2 -> 9 pods; the 10th is 4/8
    # -> big nodes 3 pods each (3/8 used), small nodes 1 each (1/4 used)
    pytest.param([BIG, SMALL], 9, [3, 3, 1, 1, 1], id="spread-by-fraction"),
    # ... then 4/8 x5 (cumulative 14), 5/8 x2 (16); the 17th is 6/8
    # -> big 5 each (2.5 of 4 CPU), small 2 each (1 of 2 CPU): every node fits what it got
    pytest.param([BIG, SMALL], 16, [5, 5, 2, 2, 2], id="big-nodes-take-more"),
    # one big node (values 1/8, 2/8, ...) and four small nodes that take 1 pod each (1/4, then full):
    # 1/8, 2/8 x5, 3/8, 4/8 -> 8 pods: big 4, small 1 each; their second pod (2/4) never comes
    pytest.param([NodeShape(count=1, cpu="4", memory="8Gi"), SMALL_ONE_POD], 8, [4, 1, 1, 1, 1],
                 id="pod-count-limit"),
])
async def test_spreads_least_allocated(shapes: list[NodeShape], pods: int, expected: list[int]) -> None:
    def pod(i: int) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p-{i:02d}"},
                "spec": {"schedulerName": BASELINE_NAME, "containers": [{
                    "name": "app", "image": "registry.k8s.io/pause:3.9",
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}}

    async with serve_apiserver(nodes=shapes, kubelet_delay=0.0, controllers=[]) as srv:
        # a pod of another scheduler: the baseline must leave it alone
        other = pod(99)
        other["spec"]["schedulerName"] = "vecsched"  # type: ignore[index]
        srv.create("pods", other, namespace="default")
        for i in range(pods - 1):
            srv.create("pods", pod(i), namespace="default")
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run(kubeconfig=str(srv.kubeconfig_path), on_ready=ready.set_result))
        try:
            assert await asyncio.wait_for(ready, 20) == pods - 1
            srv.create("pods", pod(pods - 1), namespace="default")
            for _ in range(400):  # up to 20 s on a loaded machine
                placed = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in srv.list("pods", namespace="default")}
                if sum(1 for n in placed.values() if n) >= pods:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert placed.pop("p-99") is None
    counts = Counter(placed.values())
    assert [counts[f"node-{i:04d}"] for i in range(len(expected))] == expected


@pytest.mark.parametrize(("text", "value"), [
    pytest.param("100m", 0.1, id="millicores"),
    pytest.param("2", 2.0, id="cores"),
    pytest.param("128Mi", 134217728.0, id="mebibytes"),  # 128 * 2**20
    pytest.param("1G", 1e9, id="gigabytes"),
])
def test_quantity(text: str, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


def test_quantity_rejects_unknown_suffix() -> None:
    with pytest.raises(ValueError, match="cannot read '12Q'"):
        quantity("12Q")
