"""A Pod's requests are upstream's resourcehelper.PodRequests, with and without the
non-zero scoring defaults (100m CPU, 200Mi memory for containers that set none)."""

from typing import Any

import pytest

from scoring.objects import ObjectError, pod_from_json

MI = 2**20
GI = 2**30


def _c(**requests: str) -> dict[str, Any]:
    return {"name": "c", "resources": {"requests": requests}} if requests else {"name": "c"}


def _pod(containers: list[dict[str, Any]], inits: list[dict[str, Any]] = (), **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": containers, "initContainers": list(inits), **spec}}


@pytest.mark.parametrize(
    ("pod", "requests", "nonzero_cpu", "nonzero_mem"),
    [
        pytest.param(_pod([_c(cpu="1", memory="1Gi"), _c(cpu="500m")]),
                     {"cpu": 1500, "memory": GI}, 1500, GI + 200 * MI, id="sum-of-containers"),
        # no requests at all: fit counts zero, scoring charges the defaults once per container
        pytest.param(_pod([_c(), _c()]), {}, 200, 400 * MI, id="no-requests"),
        # an explicit zero is not "missing": no default is charged for it
        pytest.param(_pod([_c(cpu="0", memory="0")]), {"cpu": 0, "memory": 0}, 0, 0, id="explicit-zero"),
        # init container bigger than the sum: max(1000, 3000) = 3000 cpu; memory max(1Gi, 0)
        pytest.param(_pod([_c(cpu="1", memory="1Gi")], [_c(cpu="3")]),
                     {"cpu": 3000, "memory": GI}, 3000, GI, id="init-dominates"),
        # sidecar (restartable init) adds to the sum: 1000 + 500 = 1500; the later plain init
        # container runs beside the sidecar: 2000 + 500 = 2500 -> max(1500, 2500) = 2500
        pytest.param(_pod([_c(cpu="1")], [{**_c(cpu="500m"), "restartPolicy": "Always"}, _c(cpu="2")]),
                     {"cpu": 2500}, 2500, 200 * MI + 200 * MI, id="sidecar-then-init"),
        # overhead is added after the max: 1000 + 250 = 1250
        pytest.param(_pod([_c(cpu="1")], overhead={"cpu": "250m", "memory": "10Mi"}),
                     {"cpu": 1250, "memory": 10 * MI}, 1250, 210 * MI, id="overhead"),
        # extended resources and hugepages are integer counts / bytes
        pytest.param(_pod([_c(**{"nvidia.com/gpu": "2", "hugepages-2Mi": "4Mi"})]),
                     {"nvidia.com/gpu": 2, "hugepages-2Mi": 4 * MI}, 100, 200 * MI, id="extended"),
        # limits without requests default the request, as the API server does
        pytest.param(_pod([{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]),
                     {"cpu": 2000, "memory": GI}, 2000, GI, id="limits-default-requests"),
    ],
)
def test_pod_requests(pod: dict[str, Any], requests: dict[str, int], nonzero_cpu: int, nonzero_mem: int) -> None:
    info = pod_from_json(pod)
    assert dict(info.requests) == requests
    assert (info.nonzero_cpu, info.nonzero_memory) == (nonzero_cpu, nonzero_mem)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"containers": [_c(cpu="lots")]}, "spec.containers[0].resources.requests.cpu"),
        ({"containers": [_c(), _c(memory="1.2.3Gi")]}, "spec.containers[1].resources.requests.memory"),
        ({"containers": [_c(cpu="-1")]}, "spec.containers[0].resources.requests.cpu"),
        ({"containers": "web"}, "spec.containers"),
        ({"containers": [], "priority": "high"}, "spec.priority"),
        ({"containers": [{"name": "c", "ports": [{"hostPort": 70000}]}]}, "spec.containers[0].ports[0].hostPort"),
        ({"containers": [], "overhead": {"cpu": "x"}}, "spec.overhead.cpu"),
    ],
)
def test_invalid_pods_name_object_and_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ObjectError) as err:
        pod_from_json({"metadata": {"name": "web-1", "namespace": "shop"}, "spec": spec})
    assert err.value.obj == "pod shop/web-1"
    assert err.value.field == field
    assert str(err.value).startswith(f"pod shop/web-1: {field}: ")
