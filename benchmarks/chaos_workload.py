"""The chaos soak's workload: the churn a busy cluster sees, sized to need preemption.

Everything runs in one namespace with ``schedulerName: vecsched`` on a
cluster of ``NODES`` nodes of ``NODE_CPU`` CPU (16 cores): Deployments
scaled up and down, batch Jobs of low priority created and completing,
gangs (a PodGroup with ``minMember`` and its member pods) created and
deleted, and urgent pods of the highest priority that only fit once batch
pods are preempted. On average the workload asks for about the whole
cluster's 16 cores: Deployments 0-10 (5 on average), Jobs about 6, gangs
about 2.5 (3 x 0.5 cores for 15 s, one step in 9), urgent pods about 1.8
(2 cores for 8 s, one step in 9), so most pods fit most of the time and
preemption happens often.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Final

from benchmarks.chaos_cluster import Api, ChaosError
from scoring.plugins.podgroups import POD_GROUP_LABEL

__all__ = ["NAMESPACE", "NODES", "NODE_CPU", "NODE_MEMORY", "NODE_PODS", "PRIORITY_CLASSES", "Churn", "podgroup_crd"]

NAMESPACE: Final = "chaos"
NODES: Final = 4
NODE_CPU: Final = "4"
NODE_MEMORY: Final = "16Gi"
NODE_PODS: Final = 32
"""Pods per node: more than the CPU admits (at most 4 / 0.5 = 8 of the smallest pods), so CPU binds."""
PRIORITY_CLASSES: Final = (("chaos-low", -10), ("chaos-gang", 100), ("chaos-urgent", 1000))
_DEPLOYMENTS: Final = (("web", "500m", 12), ("api", "1", 4))
"""(name, CPU request, maximum replicas): up to 6 + 4 = 10 of the 16 cores, priority 0."""
_GANG_SIZE: Final = 3
_GANG_LIFETIME: Final = 40.0
"""Seconds from a gang's creation to its deletion: past the invariant's 30 s settle time after binding."""

_POD_BASE: Final = "/api/v1/namespaces/" + NAMESPACE + "/pods"
_PATHS: Final = {
    "Namespace": "/api/v1/namespaces",
    "PriorityClass": "/apis/scheduling.k8s.io/v1/priorityclasses",
    "CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "Deployment": f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
    "Job": f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs",
    "PodGroup": f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{NAMESPACE}/podgroups",
    "Pod": _POD_BASE,
}


def podgroup_crd() -> dict[str, Any]:
    """The PodGroup CRD as deploy/crds/ installs it."""
    from scheduler.demo_workload import podgroup_crd as read

    return read()


def _pod_spec(*, name: str, cpu: str, priority_class: str = "", run_seconds: float = 0.0) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedulerName": "vecsched",
        # One second of grace: a preempted pod leaves quickly, as the soak's kubelets cap it at 2 s anyway.
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": name, "image": f"registry.example/{name}:1.0",
                        "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}],
    }
    if priority_class:
        spec["priorityClassName"] = priority_class
    if run_seconds:
        spec["restartPolicy"] = "Never"
    return spec


def _annotations(run_seconds: float) -> dict[str, str]:
    return {"vecsched.io/simulated-duration-seconds": f"{run_seconds:.1f}"} if run_seconds else {}


@dataclass
class Churn:
    """Creates, scales and deletes the workload objects; ``step`` makes one random change."""

    api: Api
    rng: random.Random
    serial: int = 0
    gangs: dict[str, float] = field(default_factory=dict)
    """Gang name -> when it was created (it is deleted ``_GANG_LIFETIME`` s later)."""
    actions: dict[str, int] = field(default_factory=dict)

    async def setup(self) -> None:
        """The namespace, the PriorityClasses and the Deployments (at 2 replicas each)."""
        await self._create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        for name, value in PRIORITY_CLASSES:
            await self._create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                "metadata": {"name": name}, "value": value})
        for name, cpu, _ in _DEPLOYMENTS:
            await self._create({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
                    "metadata": {"labels": {"app": name}}, "spec": _pod_spec(name=name, cpu=cpu)}}})

    async def step(self, now: float) -> None:
        """One change, by weight: scale (3), a batch Job (4), a gang (1), an urgent pod (1); then clean up."""
        action = self.rng.choices(("scale", "job", "gang", "urgent"), weights=(3, 4, 1, 1))[0]
        self.actions[action] = self.actions.get(action, 0) + 1
        await getattr(self, f"_{action}")(now)
        await self._clean(now)

    def _name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial:05d}"

    async def _create(self, obj: dict[str, Any]) -> None:
        status, body = await self.api.call("POST", _PATHS[obj["kind"]], body=obj)
        if status not in (200, 201, 409):  # 409: it survived a restart, or a retried POST had landed
            raise ChaosError(f"creating {obj['kind']} {obj['metadata']['name']}: HTTP {status}: {str(body)[:200]}")

    async def _delete(self, path: str, *, propagation: str = "") -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation} if propagation else None
        await self.api.call("DELETE", path, body=body)

    async def _scale(self, now: float) -> None:
        name, _, most = self.rng.choice(_DEPLOYMENTS)
        replicas = self.rng.randint(0, most)
        await self.api.call("PATCH", f"{_PATHS['Deployment']}/{name}", body={"spec": {"replicas": replicas}},
                            content_type="application/merge-patch+json")

    async def _job(self, now: float) -> None:
        # 2-5 pods of half a core for 4-12 s: 3.5 pods x 0.5 cores x 8 s = 14 core-seconds a Job; at 4 Jobs in
        # 9 one-second steps, about 6 cores busy on average.
        n, run = self.rng.randint(2, 5), round(self.rng.uniform(4, 12), 1)
        name = self._name("batch")
        await self._create({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"completions": n, "parallelism": n, "backoffLimit": 20, "template": {
                "metadata": {"labels": {"app": "batch"}, "annotations": _annotations(run)},
                "spec": _pod_spec(name="batch", cpu="500m", priority_class="chaos-low", run_seconds=run)}}})

    async def _gang(self, now: float) -> None:
        name = self._name("gang")
        await self._create({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                            "metadata": {"name": name, "namespace": NAMESPACE},
                            "spec": {"minMember": _GANG_SIZE}})
        for i in range(_GANG_SIZE):
            await self._create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": f"{name}-{i}", "namespace": NAMESPACE, "annotations": _annotations(15.0),
                "labels": {"app": "gang", POD_GROUP_LABEL: name}},
                "spec": _pod_spec(name="gang", cpu="500m", priority_class="chaos-gang", run_seconds=15.0)})
        self.gangs[name] = now

    async def _urgent(self, now: float) -> None:
        name = self._name("urgent")
        await self._create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": NAMESPACE, "labels": {"app": "urgent"}, "annotations": _annotations(8.0)},
            "spec": _pod_spec(name="urgent", cpu="2", priority_class="chaos-urgent", run_seconds=8.0)})

    async def _clean(self, now: float) -> None:
        """Delete finished Jobs and bare pods, and gangs past their lifetime, so the namespace stays small."""
        for name, born in list(self.gangs.items()):
            if now - born >= _GANG_LIFETIME:
                for i in range(_GANG_SIZE):
                    await self._delete(f"{_POD_BASE}/{name}-{i}")
                await self._delete(f"{_PATHS['PodGroup']}/{name}")
                del self.gangs[name]
        if self.serial % 5:  # the listing part every fifth new object
            return
        for job in await self.api.items(_PATHS["Job"]):
            conds = (job.get("status") or {}).get("conditions") or []
            if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conds):
                await self._delete(f"{_PATHS['Job']}/{job['metadata']['name']}", propagation="Background")
        for pod in await self.api.items(_POD_BASE, params={"labelSelector": "app=urgent"}):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                await self._delete(f"{_POD_BASE}/{pod['metadata']['name']}")
