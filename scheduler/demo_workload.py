"""The demo's cluster and workload: node shapes, PriorityClasses and the workload objects.

``vecsched demo`` shows what a platform team would try first: their usual
workload objects -- Deployments, a StatefulSet, a DaemonSet, Jobs -- with
priorities, node selectors, tolerations and topology spreading, applied to
a cluster of mixed node shapes, a few of them impossible to place -- and two
training Jobs that are gangs (PodGroups): together they ask for more GPUs
than the cluster has, so vecsched binds one whole and leaves the other
holding nothing, where placing their pods one by one could leave both half
placed and stuck. The controllers of the embedded control plane turn the
objects into pods and vecsched places the pods. Once they are placed, an
urgent Deployment of the highest priority arrives in the full cluster and
vecsched preempts batch pods to make room for it. The StatefulSet keeps its
data on volumes of a ``WaitForFirstConsumer`` StorageClass provisioned in
zones: each claim is provisioned, in the zone of the node vecsched picks for
its pod, only once vecsched has picked it. This module only
describes that workload; ``demo`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from scheduler.apiserver import NodeShape
from scoring.plugins.podgroups import POD_GROUP_LABEL

__all__ = ["DEMO_SHAPES", "DEMO_NAMESPACE", "DEMO_STORAGE_CLASS", "Workload", "WORKLOADS", "GANGS", "URGENT",
           "priority_classes", "storage_class", "manifests", "expected_pods", "PODGROUP_CRD", "podgroup_crd", "urgent_manifest", "urgent_pods"]

DEMO_NAMESPACE: Final = "demo"
# scheduler-plugins' PodGroup CRD as deploy/ installs it.
PODGROUP_CRD: Final = Path(__file__).resolve().parents[1] / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
DEMO_STORAGE_CLASS: Final = "zonal-ssd"
DEMO_CSI_DRIVER: Final = "csi.vecsched.io"
"""The embedded control plane's simulated CSI driver (``vecsched apiserver --csi-driver``'s default)."""
DEMO_ZONES: Final = ("zone-a", "zone-b", "zone-c")
GPU_TAINT: Final = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
DEMO_SHAPES: Final = (
    NodeShape(count=40, cpu="16", memory="64Gi", instance_type="general-16", zones=DEMO_ZONES),
    NodeShape(count=16, cpu="16", memory="256Gi", instance_type="highmem-16", zones=DEMO_ZONES,
              labels={"workload-class": "memory"}),
    NodeShape(count=8, cpu="64", memory="256Gi", instance_type="large-64", zones=DEMO_ZONES),
    NodeShape(count=4, cpu="32", memory="128Gi", gpus=4, instance_type="gpu-32", zones=("zone-a",),
              taints=(GPU_TAINT,)),
)

# Priorities as a cluster would define them; the Priority admission plugin gives pods their values.
_CLASSES: Final = (
    ("demo-urgent", 10000, "incident response: may preempt anything else"),
    ("demo-training", 1000, "GPU training: may preempt serving and batch"),
    ("demo-serving", 100, "user-facing services"),
    ("demo-batch", -10, "batch work that yields to everything else"),
)


@dataclass(frozen=True)
class Workload:
    """One workload object of the demo and what its pods ask for."""

    kind: str  # Deployment, StatefulSet, DaemonSet or Job
    name: str
    replicas: int
    cpu: str
    memory: str
    priority_class: str = ""
    gpu: int = 0
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerate_gpu: bool = False
    spread: bool = False
    run_seconds: float = 0.0
    """For Jobs: how long each pod runs (the simulated kubelet finishes it); 0 runs past the demo."""
    parallelism: int = 0
    """For Jobs: pods at a time (0: all completions at once)."""
    backoff_limit: int = 0
    """For Jobs: failed pods tolerated before the Job fails (``spec.backoffLimit``)."""
    grace_seconds: int | None = None
    """The pods' ``terminationGracePeriodSeconds`` (None: Kubernetes' default, 30 s)."""
    volume: str = ""
    """For StatefulSets: the size of the volume each pod keeps (a ``volumeClaimTemplate`` named ``data``
    of ``DEMO_STORAGE_CLASS``); "" for none."""
    gang: bool = False
    """For Jobs: a PodGroup of the Job's name with ``minMember`` = its pods at a time, which its pods join
    (the ``scheduling.x-k8s.io/pod-group`` label): they are placed all at once or not at all."""

    def pods(self, *, nodes: int) -> int:
        """Pods this workload creates in the demo (a DaemonSet: one per node)."""
        return nodes if self.kind == "DaemonSet" else self.replicas


# About 2,500 pods asking for about 85% of the cluster's CPU: a busy cluster where nearly all fit.
WORKLOADS: Final = (
    Workload("Deployment", "web", 1200, "250m", "512Mi", spread=True),
    Workload("Deployment", "api", 600, "500m", "1Gi", priority_class="demo-serving", spread=True),
    Workload("StatefulSet", "cache", 150, "1", "8Gi", node_selector=(("workload-class", "memory"),), volume="20Gi"),
    # Preemptible: a preempted pod counts as a failed one (the embedded Job controller does not interpret a
    # podFailurePolicy that would ignore DisruptionTarget), and URGENT preempts at most 4 x 8 = 32 of them.
    Workload("Job", "batch", 500, "1", "2Gi", priority_class="demo-batch", backoff_limit=50, grace_seconds=1),
    Workload("Job", "nightly-report", 10, "100m", "128Mi", priority_class="demo-batch", run_seconds=1.0,
             parallelism=5),
    # Two gangs of one-GPU workers that together want 8 + 12 = 20 of the 16 GPUs (4 gpu-32 nodes of 4; a
    # node holds 4 workers: 24 of 32 cores, 96Gi of 128Gi). Whichever is placed first is bound whole; the
    # other then finds 8 or 4 GPUs free, fewer than the 12 or 8 it needs, and holds none. Placed one by
    # one, the 20 workers would take all 16 GPUs in the order they came: a Job left short holds its GPUs
    # idle, and when both are (say 6 of 8 and 10 of 12) neither can start -- a deadlock.
    Workload("Job", "train-a", 8, "6", "24Gi", priority_class="demo-training", gpu=1, tolerate_gpu=True, gang=True),
    Workload("Job", "train-b", 12, "6", "24Gi", priority_class="demo-training", gpu=1, tolerate_gpu=True, gang=True),
    Workload("DaemonSet", "node-agent", 0, "50m", "64Mi", tolerate_gpu=True),
    Workload("Deployment", "too-big", 3, "100", "1Gi"),  # no node has 100 cores: Insufficient cpu
    Workload("Deployment", "lost", 2, "100m", "64Mi", node_selector=(("topology.kubernetes.io/zone", "zone-x"),)),
)

GANGS: Final = tuple(w for w in WORKLOADS if w.gang)

# Applied once WORKLOADS are placed. At full scale the pods that can be placed ask for 1,301.4 of the 1,536
# cores (84.7%) when train-a runs, 1,325.4 (86.3%) when train-b does; the GPU nodes are tainted, and the
# 64 nodes without the taint have 1,408 cores, of which 1,253.2 are asked for, and vecsched spreads
# that: the 56 16-core nodes keep about a core free each (0.2 to 1.2), and each large-64 node, holding four
# times the pods of a 16-core node at the same fill, reaches its limit of 110 pods with 9 to 27 cores free.
# So an 8-core pod fits nowhere -- Insufficient cpu on the 16-core nodes, Too many pods on the large ones,
# the untolerated taint on the GPU nodes -- unless pods of lower priority leave. Evicting one batch pod
# (1 core, priority -10, the lowest) on a large node frees the pod slot it needs; on a 16-core node it would
# take 7 or 8 batch pods (each holds 6 to 9), so DefaultPreemption, which picks the fewest victims,
# preempts one batch pod per urgent pod: 4 in all. Scaled down, the cluster has room and the urgent pods
# are bound without preemption; no size could force one then: at --scale 0.1 (at most 200.4 cores asked
# for, 13%) a large node keeps about 58 cores free, more than the 50 all batch pods hold together.
URGENT: Final = Workload("Deployment", "urgent", 4, "8", "16Gi", priority_class="demo-urgent")


def podgroup_crd() -> dict[str, Any]:
    """The PodGroup CustomResourceDefinition, read from deploy/crds/."""
    docs = yaml.safe_load_all(PODGROUP_CRD.read_text())
    crd = next((d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"), None)
    if crd is None:
        raise ValueError(f"{PODGROUP_CRD}: no CustomResourceDefinition in it")
    return crd


def storage_class() -> dict[str, Any]:
    """The StatefulSet's StorageClass: volumes of the control plane's simulated CSI driver, provisioned
    only once the scheduler has picked a node for the claim's first pod, in that node's zone."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": DEMO_STORAGE_CLASS},
            "provisioner": DEMO_CSI_DRIVER, "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete", "allowedTopologies": [{"matchLabelExpressions": [
                {"key": "topology.kubernetes.io/zone", "values": list(DEMO_ZONES)}]}]}


def priority_classes() -> list[dict[str, Any]]:
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
             "value": value, "description": text} for name, value, text in _CLASSES]


def _pod_template(w: Workload) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": w.cpu, "memory": w.memory}
    limits: dict[str, str] = {}
    if w.gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(w.gpu)
    spec: dict[str, Any] = {
        "schedulerName": "vecsched",
        "containers": [{"name": w.name, "image": f"registry.example/{w.name}:1.0",
                        "resources": {"requests": requests, **({"limits": limits} if limits else {})}}],
    }
    if w.priority_class:
        spec["priorityClassName"] = w.priority_class
    if w.grace_seconds is not None:
        spec["terminationGracePeriodSeconds"] = w.grace_seconds
    if w.node_selector:
        spec["nodeSelector"] = dict(w.node_selector)
    if w.tolerate_gpu:
        spec["tolerations"] = [{"key": GPU_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}]
    if w.spread:
        spec["topologySpreadConstraints"] = [{
            "maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": w.name}}}]
    annotations: dict[str, str] = {}
    labels = {"app": w.name}
    if w.kind == "Job":
        spec["restartPolicy"] = "Never"
        # The simulated kubelet finishes the pod after this long (an hour: past the demo's end).
        annotations["vecsched.io/simulated-duration-seconds"] = str(w.run_seconds or 3600)
        if w.gang:
            labels[POD_GROUP_LABEL] = w.name
    meta: dict[str, Any] = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def _manifest(w: Workload) -> dict[str, Any]:
    meta = {"name": w.name, "namespace": DEMO_NAMESPACE, "labels": {"app": w.name}}
    template = _pod_template(w)
    selector = {"matchLabels": {"app": w.name}}
    if w.kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                "spec": {"replicas": w.replicas, "selector": selector, "template": template}}
    if w.kind == "StatefulSet":
        spec: dict[str, Any] = {"replicas": w.replicas, "serviceName": w.name, "podManagementPolicy": "Parallel",
                                "selector": selector, "template": template}
        if w.volume:
            spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": DEMO_STORAGE_CLASS,
                "resources": {"requests": {"storage": w.volume}}}}]
            template["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec}
    if w.kind == "DaemonSet":
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
                "spec": {"selector": selector, "template": template}}
    if w.kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": {"completions": w.replicas, "parallelism": w.parallelism or w.replicas,
                         "backoffLimit": w.backoff_limit,
                         "template": template}}
    raise ValueError(f"unknown demo workload kind {w.kind!r}")


def _podgroup(w: Workload) -> dict[str, Any]:
    """The PodGroup of a gang Job: all its pods at a time must be placed together."""
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": w.name, "namespace": DEMO_NAMESPACE, "labels": {"app": w.name}},
            "spec": {"minMember": w.parallelism or w.replicas}}


def _scaled(w: Workload, scale: float) -> Workload:
    # A gang is sized against the GPU nodes, which --scale does not change: it is never scaled.
    if w.replicas <= 20 or w.gang or scale == 1.0:
        return w
    return Workload(**{**w.__dict__, "replicas": max(1, round(w.replicas * scale))})


def manifests(*, scale: float = 1.0) -> list[dict[str, Any]]:
    """The workload objects, replica counts over 20 multiplied by ``scale``; a gang Job's PodGroup comes
    just before the Job, so that its pods find their group."""
    objs: list[dict[str, Any]] = []
    for w in WORKLOADS:
        scaled = _scaled(w, scale)
        if w.gang:
            objs.append(_podgroup(scaled))
        objs.append(_manifest(scaled))
    return objs


def expected_pods(*, scale: float = 1.0, nodes: int) -> int:
    """How many pods the workload objects create (each Job completion is one pod)."""
    return sum(_scaled(w, scale).pods(nodes=nodes) for w in WORKLOADS)


def urgent_manifest(*, scale: float = 1.0) -> dict[str, Any]:
    """The urgent Deployment, its replicas multiplied by ``scale`` (at least one)."""
    return _manifest(Workload(**{**URGENT.__dict__, "replicas": urgent_pods(scale=scale)}))


def urgent_pods(*, scale: float = 1.0) -> int:
    return max(1, round(URGENT.replicas * scale))
