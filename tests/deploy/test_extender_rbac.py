"""deploy/extender/rbac.yaml holds exactly what the extender uses by default, and with
rbac-bind.yaml exactly what it uses with --enable-bind: it runs as its ServiceAccount against
the embedded API server with RBAC enforced, syncs its cache, filters a pod with a
PersistentVolumeClaim and asks to bind it. Sufficient: nothing was denied. Minimal: every
(group, resource, verb) granted was used -- so the default grants no pods/binding. Storage is only read (the default profile's volume plugins list and
watch it): kube-scheduler's own VolumeBinding binds volumes, so the extender writes none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
from scheduler.config import default_config
from scheduler.extender import ExtenderSettings, serve_extender
from scheduler.kube.client import ClientSettings
from scheduler.kube.informer import Backoff
from tests.deploy.support import DEPLOY
from tests.extender.wire import post

RBAC = DEPLOY / "extender" / "rbac.yaml"
RBAC_BIND = DEPLOY / "extender" / "rbac-bind.yaml"
SERVICE_ACCOUNT = "system:serviceaccount:vecsched:vecsched-extender"


def _rbac(files: tuple[Path, ...]) -> list[dict[str, Any]]:
    return [doc for f in files for doc in read_rbac_file(f)]


def _granted(files: tuple[Path, ...]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for doc in _rbac(files) if doc["kind"] in ("ClusterRole", "Role")
            for rule in doc["rules"] for g in rule.get("apiGroups", []) for r in rule.get("resources", [])
            for v in rule.get("verbs", [])}


def _key(d: object) -> tuple[str, str, str]:
    return (d.group, d.resource + (f"/{d.subresource}" if d.subresource else ""), d.verb)  # type: ignore[attr-defined]


def test_the_default_rbac_cannot_bind() -> None:
    assert ("", "pods/binding", "create") not in _granted((RBAC,))
    assert ("", "pods/binding", "create") in _granted((RBAC, RBAC_BIND))


@pytest.mark.parametrize(("files", "enable_bind"), [
    pytest.param((RBAC,), False, id="default"),
    pytest.param((RBAC, RBAC_BIND), True, id="with-bind"),
])
async def test_extender_rbac_is_sufficient_and_minimal(tmp_path: Path, files: tuple[Path, ...],
                                                       enable_bind: bool) -> None:
    async with serve_apiserver(nodes=NodeShape(count=2, cpu="2", memory="4Gi", zones=("zone-a", "zone-b")),
                               rbac=_rbac(files), tokens={"ext-token": SERVICE_ACCOUNT},
                               kubelet_delay=0.0) as srv:
        # A claim of a WaitForFirstConsumer class the simulated CSI driver provisions: unbound
        # until a scheduler picks a node, which either node may be.
        srv.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                      "metadata": {"name": "zonal"}, "provisioner": "csi.vecsched.io",
                                      "volumeBindingMode": "WaitForFirstConsumer"})
        srv.create("persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                              "metadata": {"name": "data"}, "spec": {
                                                  "accessModes": ["ReadWriteOnce"], "storageClassName": "zonal",
                                                  "resources": {"requests": {"storage": "1Gi"}}}},
                   namespace="default")
        srv.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "1"}}}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}},
                   namespace="default")
        kubeconfig = srv.kubeconfig_for(token="ext-token", path=tmp_path / "sa.kubeconfig")
        settings = ExtenderSettings(bind_address="127.0.0.1", port=0, client=ClientSettings(kubeconfig=str(kubeconfig)),
                                    informer_backoff=Backoff(initial=0.02, cap=0.2), enable_bind=enable_bind)
        async with serve_extender(config=default_config(), settings=settings) as ext, \
                aiohttp.ClientSession() as http:
            # bounded: a role missing a storage grant would keep the cache from syncing
            await asyncio.wait_for(ext.view.wait_synced(), 10)
            web = srv.get("pods", "web", namespace="default")
            status, result = await post(http, f"{ext.url}/filter",
                                        {"Pod": web, "NodeNames": ["node-0000", "node-0001"]})
            assert status == 200 and result["NodeNames"] == ["node-0000", "node-0001"]
            status, result = await post(http, f"{ext.url}/bind", {"PodName": "web", "PodNamespace": "default",
                                                                   "PodUID": web["metadata"]["uid"], "Node": "node-0000"})
            if enable_bind:
                assert (status, result) == (200, {"Error": ""})
            else:  # not served: nothing is asked of the API server
                assert status == 404 and "--enable-bind" in result["Error"]

            # Each informer's watch follows its list: give the last of them up to 5 s (what is
            # still unused then is reported below).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while not _granted(files) <= {_key(d) for d in srv.auth_log if d.user == SERVICE_ACCOUNT} \
                    and loop.time() < deadline:
                await asyncio.sleep(0.02)
        decisions = [d for d in srv.auth_log if d.user == SERVICE_ACCOUNT]

    denied = sorted({_key(d) for d in decisions if not d.allowed})
    assert denied == [], f"the manifest lacks: {denied}"
    unused = sorted(_granted(files) - {_key(d) for d in decisions})
    assert unused == [], f"the manifest grants what the extender never uses: {unused}"
    # The claim and the volumes were only read: kube-scheduler's VolumeBinding writes them.
    storage = {"persistentvolumes", "persistentvolumeclaims", "storageclasses", "csinodes", "csidrivers",
               "csistoragecapacities"}
    assert {(r, v) for _, r, v in map(_key, decisions) if r in storage} == {(r, v) for r in storage
                                                                          for v in ("list", "watch")}
