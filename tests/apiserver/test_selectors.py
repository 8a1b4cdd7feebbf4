"""labelSelector and fieldSelector on list, with kube-apiserver's syntax and errors."""

from __future__ import annotations

import aiohttp
import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.selectors import field_values

from .kube import pod_manifest

PODS = {
    # name: (labels, scheduler, node)
    "a": ({"app": "web", "tier": "fe"}, "vecsched", "node-0000"),
    "b": ({"app": "web", "tier": "be"}, "vecsched", ""),
    "c": ({"app": "db"}, "default-scheduler", "node-0001"),
    "d": ({}, "vecsched", ""),
}


@pytest.fixture
async def populated(apiserver: ApiServer) -> ApiServer:
    for name, (labels, scheduler, node) in PODS.items():
        apiserver.create("pods", pod_manifest(name, labels=labels, scheduler=scheduler, node=node), namespace="default")
    apiserver.create("namespaces", {"metadata": {"name": "other"}})
    apiserver.create("pods", pod_manifest("e", labels={"app": "web"}), namespace="other")
    return apiserver


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", "abe"),
    ("app==web", "abe"),
    ("app!=web", "cd"),          # != also matches objects without the key
    ("app in (web,db)", "abce"),
    ("app notin (web)", "cd"),
    ("tier", "ab"),              # exists
    ("!tier", "cde"),
    ("app=web,tier=fe", "a"),
    ("app=web, !tier", "e"),
    ("", "abcde"),
])
async def test_label_selector(populated: ApiServer, http: aiohttp.ClientSession, selector: str, expected: str) -> None:
    async with http.get("/api/v1/pods", params={"labelSelector": selector}) as r:
        assert r.status == 200
        names = sorted(i["metadata"]["name"] for i in (await r.json())["items"])
    assert "".join(names) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("metadata.name=a", "a"),
    ("metadata.namespace=other", "e"),
    ("metadata.namespace!=other", "abcd"),
    ("spec.schedulerName=vecsched", "abde"),
    ("spec.schedulerName=vecsched,spec.nodeName=", "bde"),   # the informer's "unscheduled pods of ours"
    ("spec.nodeName!=", "ac"),
    ("spec.nodeName==node-0001", "c"),
    ("status.phase=Pending", "bde"),  # a and c were created bound and are already Running
])
async def test_field_selector(populated: ApiServer, http: aiohttp.ClientSession, selector: str, expected: str) -> None:
    async with http.get("/api/v1/pods", params={"fieldSelector": selector}) as r:
        assert r.status == 200, await r.text()
        names = sorted(i["metadata"]["name"] for i in (await r.json())["items"])
    assert "".join(names) == expected


@pytest.mark.parametrize(("params", "message"), [
    ({"fieldSelector": "spec.foo=bar"}, "field label not supported: spec.foo"),
    ({"fieldSelector": "status.hostIP=1.2.3.4"}, "field label not supported: status.hostIP"),
    ({"fieldSelector": "nonsense"}, "invalid selector"),
    ({"labelSelector": "app in (web"}, "unable to parse requested label selector"),
    ({"labelSelector": "app=we b"}, "unable to parse requested label selector"),
    ({"labelSelector": "Bad Key!=x"}, "unable to parse requested label selector"),
])
async def test_bad_selectors_are_400(populated: ApiServer, http: aiohttp.ClientSession, params: dict[str, str],
                                     message: str) -> None:
    async with http.get("/api/v1/namespaces/default/pods", params=params) as r:
        body = await r.json()
    assert r.status == 400 and body["reason"] == "BadRequest" and message in body["message"]


async def test_event_field_selectors_as_kubectl_describe_sends_them(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    for i, name in enumerate(["web-1", "web-2"]):
        apiserver.create("events", {"metadata": {"name": f"{name}.{i}"}, "reason": "Scheduled", "type": "Normal",
                                    "involvedObject": {"kind": "Pod", "name": name, "namespace": "default", "uid": f"u{i}"}},
                         namespace="default")
    sel = "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=u0"
    async with http.get("/api/v1/namespaces/default/events", params={"fieldSelector": sel}) as r:
        items = (await r.json())["items"]
    assert [e["metadata"]["name"] for e in items] == ["web-1.0"]


_PATHS = {"metadata.name": ("metadata", "name"), "spec.nodeName": ("spec", "nodeName"),
          "spec.hostNetwork": ("spec", "hostNetwork"), "status.phase": ("status", "phase"), "type": ("type",)}


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "hostNetwork": True},
                  "status": {"phase": "Running"}, "type": "Normal"},
                 ("p", "n1", "true", "Running", "Normal"), id="all-present"),
    # absent, null and "" are all ""; false is "false"; a missing "status" leaves its field ""
    pytest.param({"metadata": {"name": "p"}, "spec": {"nodeName": None, "hostNetwork": False}, "type": ""},
                 ("p", "", "false", "", ""), id="absent-null-empty"),
    # a non-object where an object is expected reads as absent; a number as its text
    pytest.param({"metadata": ["p"], "spec": "x", "status": {"phase": 3}, "type": 2.5},
                 ("", "", "", "3", "2.5"), id="wrong-shapes"),
])
def test_field_values(obj: dict, expected: tuple[str, ...]) -> None:
    assert field_values(obj, _PATHS) == expected


def test_field_values_follow_each_types_paths() -> None:
    # The grouping of paths is remembered per mapping: another mapping, even with the same
    # labels in another order, gets its own answer, in its own order.
    obj = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}}
    reordered = {"spec.nodeName": ("spec", "nodeName"), "metadata.name": ("metadata", "name")}
    for _ in range(2):
        assert field_values(obj, _PATHS) == ("p", "n1", "", "", "")
        assert field_values(obj, reordered) == ("n1", "p")
        assert field_values(obj, {"metadata.namespace": ("metadata", "namespace")}) == ("ns",)
