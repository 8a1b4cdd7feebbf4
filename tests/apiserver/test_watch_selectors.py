"""A watch with selectors sees objects enter (ADDED) and leave (DELETED) its view."""

from __future__ import annotations

import aiohttp

from scheduler.apiserver import ApiServer

from .kube import pod_manifest, read_watch


async def test_label_selector_transitions(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    pods = apiserver.resource("pods")
    apiserver.create("pods", pod_manifest("web", labels={"app": "web"}), namespace="default")
    rv = str(apiserver.store.resource_version)

    def relabel(value: str) -> None:
        pod = apiserver.get("pods", "web", namespace="default")
        pod["metadata"]["labels"] = {"app": value}
        apiserver.ops.update(pods, pod, namespace="default", name="web")

    async with http.get("/api/v1/namespaces/default/pods",
                        params={"watch": "1", "resourceVersion": rv, "labelSelector": "app=web", "timeoutSeconds": "5"}) as r:
        relabel("db")     # leaves the selector -> DELETED with the previous content
        relabel("cache")  # stays outside -> nothing
        relabel("web")    # enters -> ADDED
        gone, back = await read_watch(r, count=2)
    assert gone["type"] == "DELETED" and gone["object"]["metadata"]["labels"] == {"app": "web"}
    assert int(gone["object"]["metadata"]["resourceVersion"]) == int(rv) + 1  # at the event's resourceVersion
    assert back["type"] == "ADDED" and back["object"]["metadata"]["labels"] == {"app": "web"}


async def test_field_selector_unscheduled_pods_leave_on_binding(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    # The scheduler's informer: pods of ours without a node. Binding removes the pod from its view.
    apiserver.create("pods", pod_manifest("web"), namespace="default")
    params = {"watch": "1", "fieldSelector": "spec.schedulerName=vecsched,spec.nodeName=", "timeoutSeconds": "5"}
    async with http.get("/api/v1/pods", params=params) as r:
        [added] = await read_watch(r, count=1)
        apiserver.ops.bind({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
                            "target": {"kind": "Node", "name": "node-0000"}}, namespace="default", name="web")
        [deleted] = await read_watch(r, count=1)
    assert added["type"] == "ADDED" and deleted["type"] == "DELETED"
    assert "nodeName" not in deleted["object"]["spec"]
