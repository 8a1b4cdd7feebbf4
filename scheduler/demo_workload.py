"""The demo's cluster and workload: node shapes, PriorityClasses and the workload objects.

``vecsched demo`` shows what a platform team would try first: their usual
workload objects -- Deployments, a StatefulSet, a DaemonSet, Jobs -- with
priorities, node selectors, tolerations and topology spreading, applied to
a cluster of mixed node shapes, a few of them impossible to place. The
controllers of the embedded control plane turn them into pods and vecsched
places the pods. Once they are placed, an urgent Deployment of the highest
priority arrives in the full cluster and vecsched preempts batch pods to make
room for it. This module only describes that workload; ``demo`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from scheduler.apiserver import NodeShape

__all__ = ["DEMO_SHAPES", "DEMO_NAMESPACE", "Workload", "WORKLOADS", "URGENT", "priority_classes", "manifests",
           "expected_pods", "urgent_manifest", "urgent_pods"]

DEMO_NAMESPACE: Final = "demo"
GPU_TAINT: Final = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
DEMO_SHAPES: Final = (
    NodeShape(count=40, cpu="16", memory="64Gi", instance_type="general-16", zones=("zone-a", "zone-b", "zone-c")),
    NodeShape(count=16, cpu="16", memory="256Gi", instance_type="highmem-16", zones=("zone-a", "zone-b"),
              labels={"workload-class": "memory"}),
    NodeShape(count=8, cpu="64", memory="256Gi", instance_type="large-64", zones=("zone-a", "zone-b", "zone-c")),
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

    def pods(self, *, nodes: int) -> int:
        """Pods this workload creates in the demo (a DaemonSet: one per node)."""
        return nodes if self.kind == "DaemonSet" else self.replicas


# About 2,500 pods asking for about 85% of the cluster's CPU: a busy cluster where nearly all fit.
WORKLOADS: Final = (
    Workload("Deployment", "web", 1200, "250m", "512Mi", spread=True),
    Workload("Deployment", "api", 600, "500m", "1Gi", priority_class="demo-serving", spread=True),
    Workload("StatefulSet", "cache", 150, "1", "8Gi", node_selector=(("workload-class", "memory"),)),
    # Preemptible: a preempted pod counts as a failed one (the embedded Job controller does not interpret a
    # podFailurePolicy that would ignore DisruptionTarget), and URGENT preempts at most 4 x 8 = 32 of them.
    Workload("Job", "batch", 500, "1", "2Gi", priority_class="demo-batch", backoff_limit=50, grace_seconds=1),
    Workload("Job", "nightly-report", 10, "100m", "128Mi", priority_class="demo-batch", run_seconds=1.0,
             parallelism=5),
    Workload("Deployment", "trainer", 16, "6", "24Gi", priority_class="demo-training", gpu=1, tolerate_gpu=True),
    Workload("DaemonSet", "node-agent", 0, "50m", "64Mi", tolerate_gpu=True),
    Workload("Deployment", "too-big", 3, "100", "1Gi"),  # no node has 100 cores: Insufficient cpu
    Workload("Deployment", "lost", 2, "100m", "64Mi", node_selector=(("topology.kubernetes.io/zone", "zone-x"),)),
)

# Applied once WORKLOADS are placed. At full scale those ask for 1,349.4 of the 1,536 cores (87.9%); the
# 64 nodes without the GPU taint have 1,408 cores, of which 1,253.2 are asked for, and vecsched spreads
# that: the 56 16-core nodes keep about a core free each (0.2 to 1.2), and each large-64 node, holding four
# times the pods of a 16-core node at the same fill, reaches its limit of 110 pods with 9 to 27 cores free.
# So an 8-core pod fits nowhere -- Insufficient cpu on the 16-core nodes, Too many pods on the large ones,
# the untolerated taint on the GPU nodes -- unless pods of lower priority leave. Evicting one batch pod
# (1 core, priority -10, the lowest) on a large node frees the pod slot it needs; on a 16-core node it would
# take 7 or 8 batch pods (each holds 6 to 9), so DefaultPreemption, which picks the fewest victims,
# preempts one batch pod per urgent pod: 4 in all. Scaled down, the cluster has room and the urgent pods
# are bound without preemption; no size could force one then: at --scale 0.1 (224.4 cores asked for, 15%)
# a large node keeps about 58 cores free, more than the 50 all batch pods hold together.
URGENT: Final = Workload("Deployment", "urgent", 4, "8", "16Gi", priority_class="demo-urgent")


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
    if w.kind == "Job":
        spec["restartPolicy"] = "Never"
        # The simulated kubelet finishes the pod after this long (an hour: past the demo's end).
        annotations["vecsched.io/simulated-duration-seconds"] = str(w.run_seconds or 3600)
    meta: dict[str, Any] = {"labels": {"app": w.name}}
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
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
                "spec": {"replicas": w.replicas, "serviceName": w.name, "podManagementPolicy": "Parallel",
                         "selector": selector, "template": template}}
    if w.kind == "DaemonSet":
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
                "spec": {"selector": selector, "template": template}}
    if w.kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": {"completions": w.replicas, "parallelism": w.parallelism or w.replicas,
                         "backoffLimit": w.backoff_limit,
                         "template": template}}
    raise ValueError(f"unknown demo workload kind {w.kind!r}")


def _scaled(w: Workload, scale: float) -> Workload:
    if w.replicas <= 20 or scale == 1.0:
        return w
    return Workload(**{**w.__dict__, "replicas": max(1, round(w.replicas * scale))})


def manifests(*, scale: float = 1.0) -> list[dict[str, Any]]:
    """The workload objects, replica counts over 20 multiplied by ``scale``."""
    return [_manifest(_scaled(w, scale)) for w in WORKLOADS]


def expected_pods(*, scale: float = 1.0, nodes: int) -> int:
    """How many pods the workload objects create (each Job completion is one pod)."""
    return sum(_scaled(w, scale).pods(nodes=nodes) for w in WORKLOADS)


def urgent_manifest(*, scale: float = 1.0) -> dict[str, Any]:
    """The urgent Deployment, its replicas multiplied by ``scale`` (at least one)."""
    return _manifest(Workload(**{**URGENT.__dict__, "replicas": urgent_pods(scale=scale)}))


def urgent_pods(*, scale: float = 1.0) -> int:
    return max(1, round(URGENT.replicas * scale))
