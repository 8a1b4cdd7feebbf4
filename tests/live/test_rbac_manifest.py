"""deploy/rbac.yaml holds exactly what the scheduler uses.

The scheduler runs with the shipped configuration (deploy/config.yaml) as its
ServiceAccount against the embedded API server with RBAC enforced and every
authorization decision logged, through a scenario that exercises everything
it does in a cluster: list and watch the cluster (PodDisruptionBudgets and the
storage objects included), win the leader Lease, bind pods, record a GPU pod's
chosen GPU indices, report an unschedulable pod (Event and PodScheduled
condition), preempt (nominate a pod, mark and delete its victims, Preempted
Events), keep a PodGroup's status and report a gang that cannot fit on it (the
PodGroup operator runs in the scheduler), bind a pod's volumes first (pre-bind a
PersistentVolume to its claim, select the node of a claim to provision), and give
the Lease back on shutdown. The embedded control plane runs no controller: the
test itself completes the volume bindings, as the PV controller would.

Sufficient: no request of the scheduler was denied. Minimal: every
(group, resource, verb) the manifest grants was used -- so removing any rule
makes a request of this scenario fail.
"""

from pathlib import Path
from typing import Any

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
import yaml

from scheduler.config import SchedulerConfig, parse_config
from scheduler.kube.client import ClientSettings
from scheduler.leader import LeaseSettings
from scoring.volumes import SELECTED_NODE
from tests.live.support import bound_count, events_for, pod, running, wait_for
from tests.live.test_live_volumes import DRIVER, LOCAL, ZONAL, add_pv, claim, pod_with, pv_controller, storage_class

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RBAC = DEPLOY / "rbac.yaml"
CRD = DEPLOY / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
SERVICE_ACCOUNT = "system:serviceaccount:vecsched:vecsched"


def _shipped_config() -> SchedulerConfig:
    configmap = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    return parse_config(yaml.safe_load(configmap["data"]["config.yaml"]), source="deploy/config.yaml")


def _granted() -> set[tuple[str, str, str]]:
    """(group, resource[/subresource], verb) the manifest grants to the ServiceAccount."""
    out = set()
    for doc in read_rbac_file(RBAC):
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                for g in rule.get("apiGroups", []):
                    for r in rule.get("resources", []):
                        for v in rule.get("verbs", []):
                            out.add((g, r, v))
    return out


async def test_rbac_manifest_is_sufficient_and_minimal(tmp_path: Path) -> None:
    async with serve_apiserver(nodes=[NodeShape(count=2, cpu="2", memory="4Gi"), NodeShape(count=1, cpu="2", gpus=2)],
                               rbac=read_rbac_file(RBAC), controllers=[],
                               tokens={"sched-token": SERVICE_ACCOUNT}) as srv:
        srv.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vecsched"}})
        srv.create("customresourcedefinitions", next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
        kubeconfig = srv.kubeconfig_for(token="sched-token", path=tmp_path / "sa.kubeconfig")
        lease = LeaseSettings(namespace="vecsched", name="vecsched", identity="replica-a",
                              lease_duration=2.0, renew_deadline=1.5, retry_period=0.2)
        async with running(srv, config=_shipped_config(), client=_client(kubeconfig), leader_elect=True,
                           lease=lease) as sched:
            assert sched.ready()
            for i in range(3):
                srv.create("pods", pod(f"fits-{i}", cpu="500m", terminationGracePeriodSeconds=1), namespace="default")
            srv.create("pods", pod("too-big", cpu="64"), namespace="default")
            shared = pod("gpu-half", cpu="100m", scheduler="vecsched-gpu", terminationGracePeriodSeconds=1)
            shared["metadata"]["annotations"] = {"vecsched.io/gpu-milli": "500"}
            srv.create("pods", shared, namespace="default")
            await wait_for(lambda: bound_count(srv) == 4, what="four pods bound")
            annotations = srv.get("pods", "gpu-half", namespace="default")["metadata"]["annotations"]
            assert annotations["vecsched.io/gpu-index"] in ("0", "1")
            await wait_for(lambda: bool(events_for(srv, "too-big", reason="FailedScheduling")),
                           what="FailedScheduling event")
            await wait_for(lambda: any(c.get("type") == "PodScheduled" for c in
                                       srv.get("pods", "too-big", namespace="default")["status"].get("conditions", [])),
                           what="PodScheduled condition")
            await wait_for(lambda: len(events_for(srv, "fits-0", reason="Scheduled")) == 1, what="Scheduled event")
            # Preemption: a pod of higher priority that needs all of fits-0's node (2 CPU of 2)
            # evicts every pod there, fits-0 among them, and is bound there when they are gone.
            target = srv.get("pods", "fits-0", namespace="default")["spec"]["nodeName"]
            srv.create("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                           "metadata": {"name": "urgent"}, "value": 1000})
            srv.create("pods", pod("urgent", cpu="2", memory="64Mi", priorityClassName="urgent",
                                   nodeSelector={"kubernetes.io/hostname": target}), namespace="default")
            await wait_for(lambda: bool(events_for(srv, "fits-0", reason="Preempted")), what="Preempted event")
            await wait_for(lambda: srv.get("pods", "urgent", namespace="default")["spec"].get("nodeName") == target,
                           timeout=15, what="the preemptor bound")
            # Gang scheduling: a PodGroup whose two members cannot fit at once. The scheduler's
            # PodGroup operator writes the group's status, and the cycle reports the failure on it.
            srv.create("podgroups", {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                                     "metadata": {"name": "gang"}, "spec": {"minMember": 2}}, namespace="default")
            for i in range(2):
                member = pod(f"gang-{i}", cpu="64")
                member["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": "gang"}
                srv.create("pods", member, namespace="default")
            await wait_for(lambda: (srv.get("podgroups", "gang", namespace="default").get("status") or {})
                           .get("phase") == "Scheduling", what="the PodGroup's status")
            await wait_for(lambda: any(e["involvedObject"]["kind"] == "PodGroup" for e in
                                       events_for(srv, "gang", reason="FailedScheduling")),
                           what="FailedScheduling on the PodGroup")
            # Volumes: a pod with a claim that a static volume can take (the scheduler pre-binds
            # the PV: get, update) and a claim to provision where the pod goes (the scheduler sets
            # its selected node: get, update); the test completes both, as the PV controller would.
            srv.create("storageclasses", storage_class(LOCAL))
            srv.create("storageclasses", storage_class(ZONAL, provisioner=DRIVER))
            add_pv(srv, _local_anywhere("static"))
            srv.create("persistentvolumeclaims", claim("data", size="1Gi", cls=LOCAL), namespace="default")
            srv.create("persistentvolumeclaims", claim("scratch", size="1Gi", cls=ZONAL), namespace="default")
            srv.create("pods", pod_with("stateful", "data", "scratch"), namespace="default")
            await wait_for(lambda: bool(srv.get("persistentvolumes", "static")["spec"].get("claimRef")) and (
                SELECTED_NODE in (srv.get("persistentvolumeclaims", "scratch", namespace="default")["metadata"]
                                  .get("annotations") or {})), what="the scheduler's volume updates")
            async with pv_controller(srv) as ctl:
                await ctl.bind("static", "data")
                await ctl.provision("scratch")
            await wait_for(lambda: bool(srv.get("pods", "stateful", namespace="default")["spec"].get("nodeName")),
                           timeout=15, what="the pod with volumes bound")
        # Stopping released the lease (an update).
        decisions = [d for d in srv.auth_log if d.user == SERVICE_ACCOUNT]

    denied = sorted({(d.group, d.resource + (f"/{d.subresource}" if d.subresource else ""), d.verb)
                     for d in decisions if not d.allowed})
    assert denied == [], f"the manifest lacks: {denied}"
    used = {(d.group, d.resource + (f"/{d.subresource}" if d.subresource else ""), d.verb) for d in decisions}
    unused = sorted(_granted() - used)
    assert unused == [], f"the manifest grants what the scheduler never uses: {unused}"


def _client(kubeconfig: Path) -> ClientSettings:
    return ClientSettings(kubeconfig=str(kubeconfig))


def _local_anywhere(name: str) -> dict[str, Any]:
    """A static 1Gi volume of the LOCAL class that every node can reach (no node affinity)."""
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": LOCAL,
                     "persistentVolumeReclaimPolicy": "Retain", "csi": {"driver": DRIVER, "volumeHandle": name}}}
