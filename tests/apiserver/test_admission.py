"""Admission as kube-apiserver runs it: Priority, pod validation, pod update rules, workload defaults.

Each case goes through the real HTTP API (kubernetes_asyncio), so the status
code and message are what a client sees.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.admission import HIGHEST_USER_PRIORITY

from .kube import pod_manifest

PODS = "/api/v1/namespaces/default/pods"
PCS = "/apis/scheduling.k8s.io/v1/priorityclasses"


def _pc(name: str, value: int, **kw: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **kw}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    p = pod_manifest(name)
    p["spec"].update(spec)
    return p


async def _post(http: aiohttp.ClientSession, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(path, data=json.dumps(body), headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


# (classes present, pod spec fields) -> (HTTP code, spec.priority or message fragment, spec.preemptionPolicy)
PRIORITY_CASES = [
    # no class, no default: upstream's DefaultPriorityWhenNoDefaultClassExists, 0
    ([], {}, 201, 0, "PreemptLowerPriority"),
    # the named class gives the value and its policy
    ([_pc("batch", 100, preemptionPolicy="Never")], {"priorityClassName": "batch"}, 201, 100, "Never"),
    # the globalDefault class applies to a pod that names none
    ([_pc("normal", 500, globalDefault=True)], {}, 201, 500, "PreemptLowerPriority"),
    # the built-in classes exist on every cluster: system-node-critical = 2 * 10^9 + 1000
    ([], {"priorityClassName": "system-node-critical"}, 201, 2_000_001_000, "PreemptLowerPriority"),
    ([], {"priorityClassName": "system-cluster-critical"}, 201, 2_000_000_000, "PreemptLowerPriority"),
    # a class that does not exist is Forbidden, naming it
    ([], {"priorityClassName": "ghost"}, 403, "no PriorityClass with name ghost was found", None),
    # a priority that disagrees with the class is Forbidden (computed 0: no class, no default)
    ([], {"priority": 7}, 403, "the integer value of priority (7) must not be provided in pod spec; priority "
                               "admission controller computed 0 from the given PriorityClass name", None),
    # agreeing is fine
    ([_pc("batch", 100)], {"priorityClassName": "batch", "priority": 100}, 201, 100, "PreemptLowerPriority"),
    # a policy that disagrees with the class's is Forbidden
    ([_pc("batch", 100, preemptionPolicy="Never")], {"priorityClassName": "batch",
                                                     "preemptionPolicy": "PreemptLowerPriority"},
     403, "the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided", None),
]


@pytest.mark.parametrize(("classes", "spec", "code", "want", "policy"), PRIORITY_CASES)
async def test_priority_admission(http: aiohttp.ClientSession, classes: list[dict[str, Any]], spec: dict[str, Any],
                                  code: int, want: Any, policy: str | None) -> None:
    for pc in classes:
        assert (await _post(http, PCS, pc))[0] == 201
    status, body = await _post(http, PODS, _pod("p", **spec))
    assert status == code, body
    if code == 201:
        assert (body["spec"]["priority"], body["spec"]["preemptionPolicy"]) == (want, policy)
    else:
        assert body["reason"] == "Forbidden" and want in body["message"]


# PriorityClass validation: (class, code, message fragment)
PC_CASES = [
    (_pc("max", HIGHEST_USER_PRIORITY), 201, ""),
    # one above upstream's HighestUserDefinablePriority (10^9)
    (_pc("too-high", HIGHEST_USER_PRIORITY + 1), 422,
     "maximum allowed value of a user defined priority is 1000000000"),
    (_pc("system-mine", 10), 422, "priority class names with 'system-' prefix are reserved for system use only"),
    (_pc("odd", 1, preemptionPolicy="Sometimes"), 422, 'Unsupported value: "Sometimes"'),
]


@pytest.mark.parametrize(("pc", "code", "fragment"), PC_CASES)
async def test_priority_class_validation(http: aiohttp.ClientSession, pc: dict[str, Any], code: int,
                                         fragment: str) -> None:
    status, body = await _post(http, PCS, pc)
    assert status == code, body
    assert fragment in body.get("message", "")


async def test_only_one_global_default_and_value_immutable(http: aiohttp.ClientSession) -> None:
    assert (await _post(http, PCS, _pc("a", 1, globalDefault=True)))[0] == 201
    status, body = await _post(http, PCS, _pc("b", 2, globalDefault=True))
    assert (status, body["reason"]) == (403, "Forbidden")
    assert "PriorityClass a is already marked as default. Only one default can exist" in body["message"]
    async with http.patch(f"{PCS}/a", data=json.dumps({"value": 5}),
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 422 and "value: Invalid value: field is immutable" in (await r.json())["message"]


# Pod quantities: (requests, limits, code, message fragment)
QUANTITY_CASES = [
    ({"cpu": "500m"}, {"cpu": "1"}, 201, ""),
    ({"cpu": "lots"}, {}, 422, 'spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must match'),
    ({"memory": "-1Gi"}, {}, 422, 'requests[memory]: Invalid value: "-1Gi": must be greater than or equal to 0'),
    # 2 > 1: a request above the limit
    ({"cpu": "2"}, {"cpu": "1"}, 422, 'requests: Invalid value: "2": must be less than or equal to cpu limit of 1'),
]


@pytest.mark.parametrize(("requests", "limits", "code", "fragment"), QUANTITY_CASES)
async def test_pod_quantities(http: aiohttp.ClientSession, requests: dict[str, str], limits: dict[str, str],
                              code: int, fragment: str) -> None:
    p = _pod("q")
    p["spec"]["containers"][0]["resources"] = {"requests": requests, "limits": limits}
    status, body = await _post(http, PODS, p)
    assert status == code, body
    assert fragment in body.get("message", "")


async def test_error_quotes_a_short_prefix_of_a_huge_quantity(http: aiohttp.ClientSession) -> None:
    p = _pod("q")
    p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "9" * 100_000 + "x"}}
    status, body = await _post(http, PODS, p)
    assert status == 422 and len(body["message"]) < 1000


# Updates of a bound pod: (merge patch, code) -- a pod never moves or changes shape behind the scheduler's back
UPDATE_CASES = [
    ({"spec": {"nodeName": "node-0002"}}, 422),  # moving a bound pod
    ({"spec": {"nodeName": None}}, 422),  # unbinding it
    ({"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                               "resources": {"requests": {"cpu": "2"}}}]}}, 422),  # resizing it
    ({"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                               "resources": {"requests": {"cpu": "100m"}}}]}}, 200),  # a new image is allowed
    ({"spec": {"activeDeadlineSeconds": 60}}, 200),
    ({"metadata": {"labels": {"x": "y"}}}, 200),
]


@pytest.mark.parametrize(("patch", "code"), UPDATE_CASES)
async def test_bound_pod_updates(http: aiohttp.ClientSession, apiserver: ApiServer, patch: dict[str, Any],
                                 code: int) -> None:
    status, _ = await _post(http, PODS, pod_manifest("b", node="node-0001"))
    assert status == 201
    async with http.patch(f"{PODS}/b", data=json.dumps(patch),
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        body = await r.json()
        assert r.status == code, body
        if code == 422:
            assert "pod updates may not change fields other than" in body["message"]
    assert apiserver.get("pods", "b", namespace="default")["spec"]["nodeName"] == "node-0001"


def _deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"selector": {"matchLabels": {"app": "w"}}, "template": {
        "metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": base}


async def test_workload_defaults(http: aiohttp.ClientSession) -> None:
    status, body = await _post(http, "/apis/apps/v1/namespaces/default/deployments", _deployment())
    assert status == 201, body
    spec = body["spec"]
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (1, 10, 600)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["template"]["spec"]["schedulerName"] == "default-scheduler"
    assert body["metadata"]["generation"] == 1
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
    status, body = await _post(http, "/apis/batch/v1/namespaces/default/jobs", job)
    assert status == 201, body
    spec, uid = body["spec"], body["metadata"]["uid"]
    # neither completions nor parallelism given: both default to 1
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "j"


# Workload validation: (spec changes, message fragment)
WORKLOAD_CASES = [
    ({"selector": {"matchLabels": {"app": "other"}}}, "`selector` does not match template `labels`"),
    ({"selector": None}, "spec.selector: Required value"),
    ({"replicas": -1}, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
]


@pytest.mark.parametrize(("spec", "fragment"), WORKLOAD_CASES)
async def test_workload_validation(http: aiohttp.ClientSession, spec: dict[str, Any], fragment: str) -> None:
    d = _deployment(**spec)
    d["spec"] = {k: v for k, v in d["spec"].items() if v is not None}
    status, body = await _post(http, "/apis/apps/v1/namespaces/default/deployments", d)
    assert status == 422 and fragment in body["message"], body


async def test_selector_is_immutable_and_generation_counts_spec_changes(http: aiohttp.ClientSession) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    assert (await _post(http, path, _deployment()))[0] == 201
    merge = {"Content-Type": "application/merge-patch+json"}
    async with http.patch(f"{path}/w", data=json.dumps({"spec": {"replicas": 3}}), headers=merge) as r:
        assert (await r.json())["metadata"]["generation"] == 2  # a spec change
    async with http.patch(f"{path}/w", data=json.dumps({"metadata": {"labels": {"a": "b"}}}), headers=merge) as r:
        assert (await r.json())["metadata"]["generation"] == 2  # metadata only: unchanged
    async with http.patch(f"{path}/w/status", data=json.dumps({"status": {"replicas": 3}}), headers=merge) as r:
        assert (await r.json())["metadata"]["generation"] == 2  # status only: unchanged
    patch = {"spec": {"selector": {"matchLabels": {"app": "w", "v": "2"}},
                      "template": {"metadata": {"labels": {"app": "w", "v": "2"}}}}}
    async with http.patch(f"{path}/w", data=json.dumps(patch), headers=merge) as r:
        assert r.status == 422 and "spec.selector" in (await r.json())["message"]
