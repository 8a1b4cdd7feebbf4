"""/mutate-pods over HTTPS, with namespaces' labels from the embedded API server: every routing
rule and its exceptions, the pod-group label from a Job owner, unknown profiles refused or warned
about. Each answer's JSONPatch is applied with the control plane's RFC 6902 implementation and the
resulting pod is what the table checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

from scheduler.apiserver import ApiServer
from scheduler.apiserver.patch import json_patch
from scheduler.webhook import PodRouting
from scheduler.webhook.review import pointer
from tests.live.support import wait_for
from tests.webhook.support import Pki, job_owner, label_namespace, patched, pod, post, response_of, review, webhook

SN = "vecsched.io/scheduler-name"
FROM_OWNER = "vecsched.io/pod-group-from-owner"
GROUP = "scheduling.x-k8s.io/pod-group"

NAMESPACES: dict[str, dict[str, str]] = {
    "team-a": {SN: "vecsched"},
    "team-gpu": {SN: "vecsched-gpu"},
    "team-empty": {SN: ""},  # an empty value means the default profile
    "team-typo": {SN: "vecshed"},
    "team-jobs": {SN: "vecsched", FROM_OWNER: "true"},
    "jobs-only": {FROM_OWNER: "true"},
    "jobs-false": {SN: "vecsched", FROM_OWNER: "false"},
    "plain": {},
}


@dataclass
class Case:
    id: str
    namespace: str
    pod: dict[str, Any]
    scheduler: str | None  # spec.schedulerName after the patch (None: absent)
    group: str | None = None  # the pod-group label after the patch
    result: str = "patched"  # patched | allowed
    warning: str = ""  # a substring of one warning
    operation: str = "CREATE"
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("namespace label, default-scheduler -> replaced", "team-a", pod(), "vecsched"),
    Case("namespace label, no schedulerName -> added", "team-a", pod(scheduler=None), "vecsched"),
    Case("namespace label, empty schedulerName -> replaced", "team-a", pod(scheduler=""), "vecsched"),
    Case("namespace names the gpu profile", "team-gpu", pod(), "vecsched-gpu"),
    Case("empty label value -> the default profile", "team-empty", pod(), "vecsched"),
    Case("no label anywhere -> untouched", "plain", pod(), "default-scheduler", result="allowed"),
    Case("the pod's own label, namespace unlabelled", "plain", pod(labels={SN: "vecsched-gpu"}), "vecsched-gpu"),
    Case("the pod's label wins over the namespace's", "team-a", pod(labels={SN: "vecsched-gpu"}), "vecsched-gpu"),
    Case("another scheduler is kept", "team-a", pod(scheduler="volcano"), "volcano", result="allowed"),
    Case("another vecsched profile is kept", "team-a", pod(scheduler="vecsched-gpu"), "vecsched-gpu",
         result="allowed"),
    Case("kube-system is never touched (even labelled)", "kube-system", pod(namespace="kube-system"),
         "default-scheduler", result="allowed"),
    Case("mirror pod (annotation)", "team-a", pod(annotations={"kubernetes.io/config.mirror": "abc"}),
         "default-scheduler", result="allowed"),
    Case("static pod owned by its Node", "team-a",
         pod(owners=[{"apiVersion": "v1", "kind": "Node", "name": "node-0000", "uid": "u", "controller": True}]),
         "default-scheduler", result="allowed"),
    Case("UPDATE is never mutated", "team-a", pod(), "default-scheduler", result="allowed", operation="UPDATE"),
    Case("Job pod in a pod-group namespace gets the Job's group", "team-jobs",
         pod(labels={"app": "x"}, owners=[job_owner("train")]), "vecsched", group="train"),
    Case("... with no labels map at all", "team-jobs", pod(owners=[job_owner("train-2")]), "vecsched",
         group="train-2"),
    Case("... an existing pod-group label is kept", "team-jobs",
         pod(labels={GROUP: "mine"}, owners=[job_owner("train")]), "vecsched", group="mine"),
    Case("... an owner that is not the controller is no group", "team-jobs",
         pod(owners=[job_owner("train", controller=False)]), "vecsched"),
    Case("... a ReplicaSet owner is no group", "team-jobs",
         pod(owners=[job_owner("rs", kind="ReplicaSet", api_version="apps/v1")]), "vecsched"),
    Case("... pod-group-from-owner other than \"true\" is off", "jobs-false", pod(owners=[job_owner("train")]),
         "vecsched"),
    Case("pod-group only namespace: a pod naming vecsched joins", "jobs-only",
         pod(scheduler="vecsched", owners=[job_owner("train")]), "vecsched", group="train"),
    Case("pod-group only namespace: a default-scheduler pod is not vecsched's", "jobs-only",
         pod(owners=[job_owner("train")]), "default-scheduler", result="allowed"),
    Case("Job name that is no label value -> warning, no label", "team-jobs",
         pod(owners=[job_owner("j" * 64)]), "vecsched", warning="is not a valid label value"),
]


async def test_routing_rules(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    for name, labels in NAMESPACES.items():
        apiserver.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": name, "labels": labels}})
    label_namespace(apiserver, "kube-system", {SN: "vecsched"})
    ctx = pki.client_context()
    async with webhook(pki, apiserver) as wh:
        for case in CASES:
            obj = dict(case.pod, metadata=dict(case.pod["metadata"], namespace=case.namespace))
            sent = review(obj, namespace=case.namespace, operation=case.operation)
            resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
            assert resp["allowed"] is True, case.id
            after = patched(obj, resp)
            assert after["spec"].get("schedulerName") == case.scheduler, case.id
            assert (after["metadata"].get("labels") or {}).get(GROUP) == case.group, case.id
            assert ("patch" in resp) == (case.result == "patched"), case.id
            if case.warning:
                assert any(case.warning in w for w in resp.get("warnings", [])), (case.id, resp)
            else:
                assert "warnings" not in resp, (case.id, resp)
            # the rest of the pod is as it was
            assert {k: v for k, v in after["spec"].items() if k != "schedulerName"} == \
                   {k: v for k, v in obj["spec"].items() if k != "schedulerName"}, case.id
        assert wh.namespaces is not None and wh.namespaces.lookups == 0  # all answered from the informer


async def test_unknown_profile_refused_or_warned(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    apiserver.create("namespaces", {"metadata": {"name": "team-typo", "labels": {SN: "vecshed"}}})
    ctx = pki.client_context()
    async with webhook(pki, apiserver) as wh:
        sent = review(pod(namespace="team-typo"), namespace="team-typo")
        resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
        assert resp["allowed"] is False
        assert resp["status"]["code"] == 403 and resp["status"]["reason"] == "Forbidden"
        assert resp["status"]["message"] == ("vecsched has no profile 'vecshed' (vecsched.io/scheduler-name of "
                                             "namespace 'team-typo'; known: vecsched, vecsched-gpu)")
        # the pod's own label: the same refusal, with the field that names it
        sent = review(pod(labels={SN: "vecsched-cpu"}, namespace="plain"), namespace="plain")
        resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
        assert resp["allowed"] is False
        assert resp["status"]["details"]["causes"] == [{
            "reason": "FieldValueNotSupported", "field": "metadata.labels[vecsched.io/scheduler-name]",
            "message": 'Unsupported value: "vecsched-cpu": supported values: "vecsched", "vecsched-gpu"'}]
        # a pod naming its own scheduler is not ours to refuse
        sent = review(pod(scheduler="volcano", namespace="team-typo"), namespace="team-typo")
        resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
        assert resp == {"uid": sent["request"]["uid"], "allowed": True}
    warn = PodRouting(profiles=frozenset({"vecsched"}), default_profile="vecsched", unknown_profile="warn")
    async with webhook(pki, apiserver, routing=warn) as wh:
        obj = pod(namespace="team-typo")
        sent = review(obj, namespace="team-typo")
        resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
        assert resp["allowed"] is True and "patch" not in resp
        assert resp["warnings"] == ["vecsched has no profile 'vecshed' (vecsched.io/scheduler-name of namespace "
                                    "'team-typo'; known: vecsched): spec.schedulerName left 'default-scheduler'"]


async def test_namespace_labels_follow_the_api(apiserver: ApiServer, pki: Pki, http: aiohttp.ClientSession) -> None:
    """Labelling a namespace after start routes its next pod; removing the label stops it; a namespace
    the informer has not seen is looked up once."""
    apiserver.create("namespaces", {"metadata": {"name": "late"}})
    ctx = pki.client_context()
    async with webhook(pki, apiserver) as wh:
        namespaces = wh.namespaces
        assert namespaces is not None

        async def scheduler_of(namespace: str) -> str:
            obj = pod(namespace=namespace)
            sent = review(obj, namespace=namespace)
            resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
            return str(patched(obj, resp)["spec"]["schedulerName"])

        assert await scheduler_of("late") == "default-scheduler"
        label_namespace(apiserver, "late", {SN: "vecsched-gpu"})
        await wait_for(lambda: (namespaces.cached("late") or {}).get(SN) == "vecsched-gpu", what="the label")
        assert await scheduler_of("late") == "vecsched-gpu"
        label_namespace(apiserver, "late", {})
        await wait_for(lambda: namespaces.cached("late") == {}, what="the label's removal")
        assert await scheduler_of("late") == "default-scheduler"
        # A namespace not (yet) in the informer: one GET answers it.
        await namespaces.stop()
        apiserver.create("namespaces", {"metadata": {"name": "brand-new", "labels": {SN: "vecsched"}}})
        assert await scheduler_of("brand-new") == "vecsched"
        assert namespaces.lookups == 1
        # One that does not exist: untouched, with a warning saying why.
        obj = pod(namespace="nowhere", labels={SN: "vecsched"})
        sent = review(obj, namespace="nowhere")
        resp = response_of(*await post(http, f"{wh.url}/mutate-pods", sent, ctx=ctx), sent)
        assert patched(obj, resp)["spec"]["schedulerName"] == "vecsched"  # the pod's own label still counts
        assert resp["warnings"] == ["vecsched webhook: namespace 'nowhere' is not known yet; only the pod's own "
                                    "vecsched.io/scheduler-name label was considered"]


def test_patch_paths_escape_tilde_and_slash() -> None:
    """RFC 6901: '~' is written '~0' and '/' is written '~1', '~' first (so 'a~1' stays 'a~1' literally)."""
    cases = [
        (("spec", "schedulerName"), "/spec/schedulerName"),
        (("metadata", "labels", "scheduling.x-k8s.io/pod-group"), "/metadata/labels/scheduling.x-k8s.io~1pod-group"),
        (("metadata", "labels", "a~1/b"), "/metadata/labels/a~01~1b"),
    ]
    for parts, expected in cases:
        assert pointer(*parts) == expected
        # and the control plane's applier reads it back to the same key
        doc = json_patch({"spec": {}, "metadata": {"labels": {}}}, [{"op": "add", "path": expected, "value": "v"}])
        target = doc
        for p in parts[:-1]:
            target = target[p]
        assert target[parts[-1]] == "v"
