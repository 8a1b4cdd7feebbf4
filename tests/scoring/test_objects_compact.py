"""A bound pod's record keeps what is read of it, shared with its workload's other pods.

A scheduler holding 300,000 running pods keeps one ``PodInfo`` per pod; what the kubelet
writes into a running pod's status (container statuses, IPs, most conditions) is read by
nothing, and the pods of one workload carry the same containers, tolerations and labels.
These tests pin what ``compact_raw`` keeps, that every reader of a placed pod's JSON reads
the same from the compact form as from the whole object, and that equal parts are shared.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.cache import preemption_facts
from scoring.nominations import status_nominated_node
from scoring.objects import ObjectError, compact_raw, pod_from_json
from scoring.plugins.node_load import scheduled_time
from scoring.plugins.victims import disruption_target, pod_start_time
from scoring.volume_objects import pod_volumes

_T = "2026-01-02T03:04:05Z"


def _running(name: str = "web-1", *, image: str = "app:1", node: str = "n1") -> dict[str, Any]:
    """A running pod as an API server and a kubelet leave it."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "resourceVersion": "7",
                     "labels": {"app": "web"}, "deletionTimestamp": _T,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u",
                                          "controller": True}],
                     "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}}]},
        "spec": {"nodeName": node, "schedulerName": "vecsched",
                 "containers": [{"name": "c", "image": image, "resources": {"requests": {"cpu": "100m"}}}],
                 "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                 "priority": 5},
        "status": {"phase": "Running", "startTime": _T, "nominatedNodeName": "n2", "qosClass": "Burstable",
                   "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "hostIP": "172.16.0.1",
                   "conditions": [{"type": "Ready", "status": "True"},
                                  {"type": "PodScheduled", "status": "True", "lastTransitionTime": _T},
                                  {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}],
                   "containerStatuses": [{"name": "c", "ready": True, "state": {"running": {"startedAt": _T}}}]},
    }


@pytest.mark.parametrize(("section", "kept"), [
    # status: phase, startTime, nominatedNodeName and the two conditions read (PodScheduled,
    # DisruptionTarget); Ready, qosClass, IPs and containerStatuses go
    ("status", {"phase": "Running", "startTime": _T, "nominatedNodeName": "n2",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _T},
                               {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]}),
    # metadata: everything but managedFields
    ("metadata", {k: v for k, v in _running()["metadata"].items() if k != "managedFields"}),
    # spec: all of it
    ("spec", _running()["spec"]),
], ids=["status", "metadata", "spec"])
def test_compact_keeps_what_is_read(section: str, kept: dict[str, Any]) -> None:
    assert compact_raw(_running())[section] == kept


_READERS: dict[str, Callable[[Any], object]] = {
    "preemption facts": lambda p: preemption_facts(p.raw),
    "start time": pod_start_time,
    "disruption target": lambda p: disruption_target(p.raw),
    "scheduled time": scheduled_time,
    "nomination": lambda p: status_nominated_node(p.raw),
    "volumes": lambda p: pod_volumes(p).claims,
    "spec": lambda p: p.raw["spec"],
    "labels": lambda p: (p.labels, p.raw["metadata"]["labels"]),
    "owners": lambda p: p.raw["metadata"]["ownerReferences"],
    "tolerations": lambda p: p.tolerations,
}


@pytest.mark.parametrize("reader", sorted(_READERS), ids=sorted(_READERS))
def test_readers_see_the_same_in_the_compact_form(reader: str) -> None:
    full = _running()
    whole = pod_from_json(copy.deepcopy(full))
    # the record of a bound pod holds the compact form (no containerStatuses) ...
    assert "containerStatuses" not in whole.raw["status"]
    # ... and each reader reads from it what it reads from the whole object (the whole object
    # read as a pending pod would be, then given the same node: pending pods are not compacted)
    pending = copy.deepcopy(full)
    pending_info = pod_from_json({**pending, "spec": {**pending["spec"], "nodeName": ""}})
    assert pending_info.raw["status"] == full["status"]
    from_whole = _READERS[reader](pending_info)
    from_compact = _READERS[reader](whole)
    if reader == "spec":  # (the one field that differs: the pending copy has no node)
        assert {**from_compact, "nodeName": ""} == from_whole  # type: ignore[dict-item]
    else:
        assert from_compact == from_whole


@pytest.mark.parametrize(("other", "shared"), [
    # the same workload on another node: containers, tolerations, volumes and labels are one object
    (_running("web-2", node="n9"), {"containers": True, "tolerations": True, "volumes": True, "labels": True}),
    # another image: its containers are its own, the rest still shared
    (_running("web-3", image="app:2"), {"containers": False, "tolerations": True, "volumes": True, "labels": True}),
], ids=["same workload", "other image"])
def test_equal_parts_are_shared(other: dict[str, Any], shared: dict[str, bool]) -> None:
    a, b = pod_from_json(_running("web-1")), pod_from_json(other)
    got = {part: a.raw["spec"][part] is b.raw["spec"][part] for part in ("containers", "tolerations", "volumes")}
    got["labels"] = a.labels is b.labels and a.raw["metadata"]["labels"] is b.labels
    assert got == shared


def test_a_pending_pod_keeps_its_whole_object() -> None:
    raw = {**_running(), "spec": {**_running()["spec"], "nodeName": ""}}
    assert pod_from_json(raw).raw is raw


@pytest.mark.parametrize(("field", "value", "message"), [
    # a label value that is not a string: not shared, and refused by the reader as before
    ("labels", {"app": ["web"]}, "pod shop/web-1: metadata.labels.app: expected a string, got list"),
    # a spec part of the wrong type is left for the reader, which refuses it
    ("tolerations", {"key": "k"}, "pod shop/web-1: spec.tolerations: expected a list, got dict"),
], ids=["list label", "tolerations object"])
def test_malformed_bound_pods_are_refused_as_before(field: str, value: object, message: str) -> None:
    raw = _running()
    (raw["metadata"] if field == "labels" else raw["spec"])[field] = value
    with pytest.raises(ObjectError) as err:
        pod_from_json(raw)
    assert str(err.value) == message


def test_the_shared_empty_mapping_refuses_changes() -> None:
    pod = pod_from_json({"metadata": {"name": "p"}, "spec": {"containers": []}})
    # a pod without annotations or nodeSelector gets the one shared empty mapping: changing it
    # would change every such record, so it refuses
    assert pod.annotations is pod.node_selector and pod.annotations == {}
    with pytest.raises(TypeError):
        pod.annotations["x"] = "y"  # type: ignore[index]


def test_a_status_update_keeps_the_compact_spec_it_is_given() -> None:
    placed = pod_from_json(_running())
    update = _running()
    update["status"] = {**update["status"], "phase": "Running", "podIP": "10.0.0.9"}
    kept = compact_raw(update, spec=placed.raw["spec"])
    # the spec is the placed pod's object; the rest is made from the update as without it
    assert kept["spec"] is placed.raw["spec"]
    assert {k: v for k, v in kept.items() if k != "spec"} == {k: v for k, v in compact_raw(update).items() if k != "spec"}


@pytest.mark.parametrize("changes", [
    {"node_name": "n2", "phase": "Running", "raw": {"spec": {"nodeName": "n2"}}},
    {"node_name": "", "phase": "Pending", "raw": {}},
], ids=["bound", "pending"])
def test_with_state_is_replace(changes: dict[str, Any]) -> None:
    from dataclasses import fields, replace

    from scoring.objects import with_state

    pod = pod_from_json(_running())
    got, want = with_state(pod, **changes), replace(pod, **changes)
    # every field equal to replace's, the unchanged ones the very same objects, and the original untouched
    assert got == want and got is not pod
    assert all(getattr(got, f.name) is getattr(pod, f.name) for f in fields(pod) if f.name not in changes)
    assert (pod.node_name, pod.phase) == ("n1", "Running") and pod.raw is not changes["raw"]
    with pytest.raises(AttributeError):
        got.phase = "Failed"  # type: ignore[misc]  # (frozen as any PodInfo)
