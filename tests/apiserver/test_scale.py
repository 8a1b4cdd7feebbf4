"""The ``scale`` subresource (autoscaling/v1 Scale), as ``kubectl scale`` and autoscalers use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from scheduler.apiserver import ApiServer

from .kube import kubectl

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def _deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "web", "tier": "front"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                     "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


async def test_get_put_patch_scale(http: aiohttp.ClientSession, apiserver: ApiServer) -> None:
    async with http.post(DEPLOYMENTS, json=_deployment(2)) as r:
        assert r.status == 201
    async with http.get(f"{DEPLOYMENTS}/web/scale") as r:
        scale = await r.json()
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    # status.selector is the label selector as a string, keys sorted
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 0, "selector": "app=web,tier=front"}
    scale["spec"]["replicas"] = 5
    async with http.put(f"{DEPLOYMENTS}/web/scale", json=scale) as r:
        assert r.status == 200 and (await r.json())["spec"]["replicas"] == 5
    assert apiserver.get("deployments", "web", namespace="default")["spec"]["replicas"] == 5
    assert apiserver.get("deployments", "web", namespace="default")["metadata"]["generation"] == 2
    async with http.patch(f"{DEPLOYMENTS}/web/scale", data=json.dumps({"spec": {"replicas": 1}}),
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200 and (await r.json())["spec"]["replicas"] == 1
    # a stale resourceVersion conflicts, as for the object itself
    async with http.put(f"{DEPLOYMENTS}/web/scale", json=scale) as r:
        assert r.status == 409
    async with http.patch(f"{DEPLOYMENTS}/web/scale", data=json.dumps({"spec": {"replicas": -1}}),
                          headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 422 and "spec.replicas" in (await r.json())["message"]


async def test_kubectl_scale(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    async with http.post(DEPLOYMENTS, json=_deployment(1)) as r:
        assert r.status == 201
    kc: Path = apiserver.kubeconfig_path  # type: ignore[assignment]
    code, out, err = await kubectl(kc, "scale", "deployment/web", "--replicas=4")
    assert (code, out.strip()) == (0, "deployment.apps/web scaled"), err
    assert apiserver.get("deployments", "web", namespace="default")["spec"]["replicas"] == 4
    # a kind without the subresource
    code, _, err = await kubectl(kc, "scale", "configmap/x", "--replicas=2")
    assert code == 1
