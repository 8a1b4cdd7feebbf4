"""Deletion as kube-apiserver does it: grace periods, finalizers, propagation, preconditions, dry-run.

The garbage collector and the kubelet act on what these requests leave
behind (``tests/controlplane``); here only the API's own part is checked,
through real HTTP, on a server that runs no controllers (the ``apiserver`` fixture).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer

from .kube import pod_manifest

PODS = "/api/v1/namespaces/default/pods"
CMS = "/api/v1/namespaces/default/configmaps"


async def _create(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(path, json=body) as r:
        assert r.status == 201, await r.text()
        result: dict[str, Any] = await r.json()
        return result


async def _delete(http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None,
                  **params: str) -> tuple[int, dict[str, Any]]:
    async with http.delete(path, data=json.dumps(body) if body is not None else None, params=params) as r:
        return r.status, await r.json()


def _cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"a": "1"}}


# (pod: bound node, phase), DeleteOptions -> (HTTP code, still stored, deletionGracePeriodSeconds)
GRACE_CASES = [
    # a bound, running pod: its terminationGracePeriodSeconds (30 by default), 202 while it terminates
    (("node-0000", None), None, (202, True, 30)),
    (("node-0000", None), {"gracePeriodSeconds": 5}, (202, True, 5)),
    # gracePeriodSeconds=0 deletes at once (a force delete)
    (("node-0000", None), {"gracePeriodSeconds": 0}, (200, False, None)),
    # nothing runs on an unbound pod: gone at once whatever the grace period
    (("", None), {"gracePeriodSeconds": 30}, (200, False, None)),
    # a negative grace period becomes 1 s, as upstream
    (("node-0000", None), {"gracePeriodSeconds": -5}, (202, True, 1)),
]


@pytest.mark.parametrize(("pod", "options", "want"), GRACE_CASES)
async def test_pod_grace_periods(http: aiohttp.ClientSession, apiserver: ApiServer, pod: tuple[str, Any],
                                 options: dict[str, Any] | None, want: tuple[int, bool, int | None]) -> None:
    apiserver.kubelet.stop()  # keep the pod where the test put it
    await _create(http, PODS, pod_manifest("p", node=pod[0]))
    code, body = await _delete(http, f"{PODS}/p", options)
    stored = apiserver.store.find(apiserver.resource("pods"), "default", "p")
    assert (code, stored is not None) == want[:2], body
    if stored is not None:
        meta = stored.obj()["metadata"]
        assert meta["deletionGracePeriodSeconds"] == want[2] and meta["deletionTimestamp"]


async def test_second_delete_only_shortens_the_grace_period(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    apiserver.kubelet.stop()
    await _create(http, PODS, pod_manifest("p", node="node-0000"))
    await _delete(http, f"{PODS}/p", {"gracePeriodSeconds": 20})
    _, body = await _delete(http, f"{PODS}/p", {"gracePeriodSeconds": 60})
    assert body["metadata"]["deletionGracePeriodSeconds"] == 20  # longer: ignored
    _, body = await _delete(http, f"{PODS}/p", {"gracePeriodSeconds": 3})
    assert body["metadata"]["deletionGracePeriodSeconds"] == 3
    code, _ = await _delete(http, f"{PODS}/p", {"gracePeriodSeconds": 0})
    assert code == 200 and apiserver.store.find(apiserver.resource("pods"), "default", "p") is None


async def test_finalizers_hold_an_object_until_removed(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    await _create(http, CMS, _cm("held", finalizers=["example.com/keep", "example.com/also"]))
    code, body = await _delete(http, f"{CMS}/held")
    assert code == 202 and body["metadata"]["deletionTimestamp"]
    merge = {"Content-Type": "application/merge-patch+json"}
    # a new finalizer may not be added once deletion started
    async with http.patch(f"{CMS}/held", data=json.dumps({"metadata": {"finalizers": ["example.com/keep",
                          "example.com/also", "example.com/new"]}}), headers=merge) as r:
        assert r.status == 422 and "no new finalizers can be added if the object is being deleted" in await r.text()
    async with http.patch(f"{CMS}/held", data=json.dumps({"metadata": {"finalizers": ["example.com/also"]}}),
                          headers=merge) as r:
        assert r.status == 200
    assert apiserver.store.find(apiserver.resource("configmaps"), "default", "held") is not None
    async with http.patch(f"{CMS}/held", data=json.dumps({"metadata": {"finalizers": None}}), headers=merge) as r:
        assert r.status == 200
    assert apiserver.store.find(apiserver.resource("configmaps"), "default", "held") is None


# propagationPolicy (body or query) -> the garbage collector's finalizer left on the object
PROPAGATION_CASES = [
    ({"propagationPolicy": "Foreground"}, {}, ["foregroundDeletion"]),
    ({"propagationPolicy": "Orphan"}, {}, ["orphan"]),
    ({}, {"propagationPolicy": "Orphan"}, ["orphan"]),
    ({"orphanDependents": True}, {}, ["orphan"]),  # the deprecated form
    ({"propagationPolicy": "Background"}, {}, None),  # gone at once; the collector follows
]


@pytest.mark.parametrize(("body", "query", "finalizers"), PROPAGATION_CASES)
async def test_propagation_policies(http: aiohttp.ClientSession, apiserver: ApiServer, body: dict[str, Any],
                                    query: dict[str, str], finalizers: list[str] | None) -> None:
    await _create(http, CMS, _cm("owner"))
    code, _ = await _delete(http, f"{CMS}/owner", body, **query)
    stored = apiserver.store.find(apiserver.resource("configmaps"), "default", "owner")
    if finalizers is None:
        assert code == 200 and stored is None
    else:
        assert code == 202 and stored is not None and stored.obj()["metadata"]["finalizers"] == finalizers


async def test_jobs_orphan_their_pods_unless_told(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
    await _create(http, "/apis/batch/v1/namespaces/default/jobs", job)
    code, body = await _delete(http, "/apis/batch/v1/namespaces/default/jobs/j")
    # batch/v1's default garbage-collection policy is to orphan (kubectl sends Background explicitly)
    assert code == 202 and body["metadata"]["finalizers"] == ["orphan"]


async def test_preconditions_and_bad_options(http: aiohttp.ClientSession) -> None:
    cm = await _create(http, CMS, _cm("c"))
    code, body = await _delete(http, f"{CMS}/c", {"preconditions": {"uid": "not-it"}})
    assert code == 409 and "Precondition failed: UID in precondition: not-it" in body["message"]
    code, body = await _delete(http, f"{CMS}/c", {"preconditions": {"resourceVersion": "1"}})
    assert code == 409 and "Precondition failed: ResourceVersion in precondition: 1" in body["message"]
    code, body = await _delete(http, f"{CMS}/c", {"propagationPolicy": "Sideways"})
    assert code == 422 and 'Unsupported value: "Sideways"' in body["message"]
    code, body = await _delete(http, f"{CMS}/c", {"propagationPolicy": "Orphan", "orphanDependents": True})
    assert code == 422 and "cannot be both set" in body["message"]
    code, _ = await _delete(http, f"{CMS}/c", {"preconditions": {"uid": cm["metadata"]["uid"]}})
    assert code == 200


async def test_dry_run_changes_nothing(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    rv = apiserver.store.resource_version
    async with http.post(CMS, json=_cm("dry"), params={"dryRun": "All"}) as r:
        body = await r.json()
        assert r.status == 201 and body["metadata"]["name"] == "dry" and body["metadata"]["uid"]
    assert apiserver.store.find(apiserver.resource("configmaps"), "default", "dry") is None
    await _create(http, CMS, _cm("real"))
    rv = apiserver.store.resource_version
    code, _ = await _delete(http, f"{CMS}/real", dryRun="All")
    assert code == 200 and apiserver.store.find(apiserver.resource("configmaps"), "default", "real") is not None
    async with http.patch(f"{CMS}/real", data=json.dumps({"data": {"a": "2"}}), params={"dryRun": "All"},
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200 and (await r.json())["data"] == {"a": "2"}
    assert apiserver.get("configmaps", "real", namespace="default")["data"] == {"a": "1"}
    assert apiserver.store.resource_version == rv  # nothing was written
    async with http.post(CMS, json=_cm("x"), params={"dryRun": "Some"}) as r:
        assert r.status == 400 and 'Unsupported value: "Some"' in (await r.json())["message"]
    # dry-run still runs admission: a pod naming a missing PriorityClass is refused
    async with http.post(PODS, json={**pod_manifest("p"), "spec": {**pod_manifest("p")["spec"],
                                                                  "priorityClassName": "ghost"}},
                         params={"dryRun": "All"}) as r:
        assert r.status == 403
