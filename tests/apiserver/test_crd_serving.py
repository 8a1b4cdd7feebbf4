"""A CustomResourceDefinition, end to end: applied, served, validated, watched, printed, deleted.

Uses the PodGroup CRD vecsched ships (``deploy/crds/``), through the real
kubectl and kubernetes_asyncio's custom-objects client, as a platform team
would install scheduler-plugins' CRD on a cluster.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from scheduler.apiserver import ApiServer, serve_apiserver

from .kube import kube_client, kubectl

CRD = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
PGS = "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/default/podgroups"


def _pg(name: str, min_member: Any, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": name},
            "spec": {"minMember": min_member, **spec}}


@pytest.fixture
def kc(apiserver: ApiServer) -> Path:
    assert apiserver.kubeconfig_path is not None
    return apiserver.kubeconfig_path


async def test_apply_crd_then_objects_with_kubectl(kc: Path, apiserver: ApiServer, tmp_path: Path) -> None:
    code, out, err = await kubectl(kc, "apply", "-f", str(CRD))
    assert (code, out.strip()) == (0, "customresourcedefinition.apiextensions.k8s.io/podgroups.scheduling.x-k8s.io "
                                      "created"), err
    crd = apiserver.get("customresourcedefinitions", "podgroups.scheduling.x-k8s.io")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    manifest = tmp_path / "pg.yaml"
    manifest.write_text(json.dumps(_pg("train", 4, scheduleTimeoutSeconds=60)))
    code, out, err = await kubectl(kc, "apply", "-f", str(manifest))
    assert (code, out.strip()) == (0, "podgroup.scheduling.x-k8s.io/train created"), err
    # the short name and the printer columns: Phase MinMember Running Succeeded Failed Age
    code, out, err = await kubectl(kc, "get", "pg")
    assert code == 0, err
    header, row = (line.split() for line in out.splitlines())
    assert header == ["NAME", "PHASE", "MINMEMBER", "RUNNING", "SUCCEEDED", "FAILED", "AGE"]
    assert row[:2] == ["train", "4"]  # no phase yet: kubectl leaves the cell empty
    # the status subresource: a main-resource write keeps status, a /status write keeps spec
    code, out, err = await kubectl(kc, "patch", "pg", "train", "--subresource=status", "--type=merge",
                                   "-p", '{"status": {"phase": "Scheduling", "running": 1}}')
    assert code == 0, err
    code, out, err = await kubectl(kc, "get", "podgroups.scheduling.x-k8s.io", "train", "-o", "json")
    got = json.loads(out)
    assert got["status"] == {"phase": "Scheduling", "running": 1} and got["spec"]["minMember"] == 4
    assert got["metadata"]["generation"] == 1  # status writes do not count as generations
    # validation against the schema, with kube-apiserver's message
    manifest.write_text(json.dumps(_pg("bad", "four")))
    code, out, err = await kubectl(kc, "apply", "-f", str(manifest))
    assert code == 1 and 'spec.minMember: Invalid value: "string": spec.minMember in body must be of type ' \
                          'integer: "string"' in err, err
    # an unknown field is refused under kubectl's default fieldValidation=Strict
    manifest.write_text(json.dumps(_pg("typo", 2, minMembers=3)))
    code, out, err = await kubectl(kc, "apply", "-f", str(manifest))
    assert code == 1 and 'unknown field "spec.minMembers"' in err, err


async def test_custom_objects_client_watch_and_selectors(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    assert apiserver.kubeconfig_path is not None
    code, _, err = await kubectl(apiserver.kubeconfig_path, "apply", "-f", str(CRD))
    assert code == 0, err
    async with await kube_client(apiserver.kubeconfig_path) as api:
        custom = client.CustomObjectsApi(api)
        rv = (await custom.list_namespaced_custom_object("scheduling.x-k8s.io", "v1alpha1", "default",
                                                         "podgroups"))["metadata"]["resourceVersion"]
        async with http.get(PGS, params={"watch": "1", "resourceVersion": rv, "labelSelector": "team=ml",
                                         "timeoutSeconds": "5"}) as r:
            await custom.create_namespaced_custom_object(
                "scheduling.x-k8s.io", "v1alpha1", "default", "podgroups",
                {**_pg("a", 2), "metadata": {"name": "a", "labels": {"team": "ml"}}})
            await custom.create_namespaced_custom_object("scheduling.x-k8s.io", "v1alpha1", "default", "podgroups",
                                                         _pg("b", 3))
            await custom.patch_namespaced_custom_object("scheduling.x-k8s.io", "v1alpha1", "default", "podgroups",
                                                        "a", {"spec": {"minMember": 5}},
                                                        _content_type="application/merge-patch+json")
            first = json.loads(await asyncio.wait_for(r.content.readline(), 5))
            second = json.loads(await asyncio.wait_for(r.content.readline(), 5))
        # only the labelled object is seen: created, then its minMember patched
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")
        assert (second["type"], second["object"]["spec"]["minMember"]) == ("MODIFIED", 5)
        assert second["object"]["metadata"]["generation"] == 2
        listed = await custom.list_namespaced_custom_object("scheduling.x-k8s.io", "v1alpha1", "default",
                                                            "podgroups", label_selector="team=ml")
        assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]


async def test_deleting_the_crd_deletes_its_objects_and_endpoints(kc: Path, apiserver: ApiServer,
                                                                  http: aiohttp.ClientSession) -> None:
    code, _, err = await kubectl(kc, "apply", "-f", str(CRD))
    assert code == 0, err
    async with http.post(PGS, json=_pg("x", 1)) as r:
        assert r.status == 201
    code, _, err = await kubectl(kc, "delete", "crd", "podgroups.scheduling.x-k8s.io")
    assert code == 0, err
    async with http.get(PGS) as r:
        assert r.status == 404
    async with http.get("/apis") as r:
        assert "scheduling.x-k8s.io" not in {g["name"] for g in (await r.json())["groups"]}
    # installing it again serves an empty resource
    code, _, err = await kubectl(kc, "apply", "-f", str(CRD))
    assert code == 0, err
    async with http.get(PGS) as r:
        assert (await r.json())["items"] == []


async def test_invalid_definition_is_refused(http: aiohttp.ClientSession) -> None:
    bad = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    async with http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=bad) as r:
        body = await r.json()
    # the name must be <plural>.<group>
    assert r.status == 422 and "must be spec.names.plural+\".\"+spec.group" in body["message"], body


async def test_custom_objects_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    async with serve_apiserver(nodes=0, state_path=state) as srv:
        assert srv.kubeconfig_path is not None
        code, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", str(CRD))
        assert code == 0, err
        srv.create("podgroups", _pg("kept", 2), namespace="default")
    async with serve_apiserver(nodes=0, state_path=state) as srv:
        assert srv.get("podgroups", "kept", namespace="default")["spec"]["minMember"] == 2
