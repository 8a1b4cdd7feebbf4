"""Volume-aware scheduling end to end: the embedded control plane's own controllers and a live vecsched.

``tests/live/test_live_volumes.py`` plays the PV controller by hand, to hold every step
back. Here nothing is played: ``serve_apiserver`` runs its default controllers -- the
StatefulSet controller creating each replica's claim from its volumeClaimTemplate, the
PV controller binding claims and the simulated CSI provisioner ``csi.vecsched.io``
creating a volume in the zone of the node the scheduler selected
(``scheduler/apiserver/controllers/volumes.py``), each simulated node with its CSINode
and attach limit -- and a live vecsched schedules with the default profile, whose volume
plugins (VolumeBinding, VolumeZone, NodeVolumeLimits, VolumeRestrictions) decide.

What must hold, as on a cluster with kube-scheduler and kube-controller-manager:
- a Parallel StatefulSet over a WaitForFirstConsumer class: every claim bound to a volume
  provisioned in the zone of its pod's node, every pod bound, and a zone
  topologySpreadConstraint spreading them evenly;
- an attach limit (CSINode ``allocatable.count``) is never exceeded, whether the claims
  are provisioned or bind static volumes; the pod beyond it waits with upstream's
  message, and takes the attachment a deleted pod gives back;
- a pod whose claim cannot be satisfied waits with upstream's FailedScheduling message
  and PodScheduled condition while other pods are scheduled, and is placed -- where its
  volume can be reached -- once the cluster changes so that it can be.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import pytest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.runtime import Scheduler
from scoring.volumes import SELECTED_NODE
from tests.live.support import condition, events_for, pod, running, wait_for

NS: Final = "default"
DRIVER: Final = "csi.vecsched.io"
"""The simulated CSI driver (the embedded API server's default ``--csi-driver``)."""
NO_PROVISIONER: Final = "kubernetes.io/no-provisioner"
ZONE: Final = "topology.kubernetes.io/zone"
HOSTNAME: Final = "kubernetes.io/hostname"
ZONES: Final = ("zone-a", "zone-b", "zone-c")
ZONAL: Final = "zonal"
"""WaitForFirstConsumer, provisioned by the CSI driver: the scheduler picks the node, the volume follows."""
LOCAL: Final = "local"
"""WaitForFirstConsumer without a provisioner: only static volumes, chosen by the scheduler."""
STATIC: Final = "static"
"""Immediate without a provisioner: the PV controller binds claims to static volumes before any pod."""
WAIT: Final = 15.0
"""Bound on every wait: each settles in well under a second; the margin is for a loaded machine."""
# Upstream's reasons, spelled out (volumebinding ErrReasonBindConflict / ErrReasonNodeConflict,
# volumezone ErrReasonConflict, nodevolumelimits ErrReasonMaxVolumeCountExceeded) ...
BIND_CONFLICT: Final = "node(s) didn't find available persistent volumes to bind"
NODE_CONFLICT: Final = "node(s) had volume node affinity conflict"
ZONE_CONFLICT: Final = "node(s) had no available volume zone"
MAX_VOLUME_COUNT: Final = "node(s) exceed max volume count"
# ... and DefaultPreemption's, for nodes it cannot help and nodes with nothing to evict.
NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_VICTIMS: Final = "No preemption victims found for incoming pod"


# ---- objects -----------------------------------------------------------------------------------------------------


def storage_class(name: str, *, mode: str = "WaitForFirstConsumer", provisioner: str = DRIVER) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": provisioner, "volumeBindingMode": mode}


def claim(name: str, cls: str, *, size: str = "1Gi", volume: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                            "resources": {"requests": {"storage": size}}}
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS},
            "spec": spec}


def static_pv(name: str, cls: str, *, size: str = "1Gi", labels: Mapping[str, str] | None = None,
              requires: tuple[str, str] | None = None) -> dict[str, Any]:
    """A static CSI volume of ``DRIVER``; ``requires`` = (label, value) its node affinity demands."""
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                            "persistentVolumeReclaimPolicy": "Retain",
                            "csi": {"driver": DRIVER, "volumeHandle": f"static-{name}"}}
    if requires is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": requires[0], "operator": "In", "values": [requires[1]]}]}]}}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, **({"labels": dict(labels)} if labels else {})}, "spec": spec}


def pod_with(name: str, *claims: str) -> dict[str, Any]:
    p = pod(name)
    p["spec"]["volumes"] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    return p


def statefulset(name: str, *, replicas: int, spread: bool) -> dict[str, Any]:
    """A Parallel StatefulSet, one ``ZONAL`` claim ``data-<name>-<i>`` per replica; ``spread``
    adds a zone topologySpreadConstraint (maxSkew 1, DoNotSchedule) over its pods."""
    spec: dict[str, Any] = {"schedulerName": "vecsched", "containers": [
        {"name": "db", "image": "postgres:16", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
    if spread:
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                                              "labelSelector": {"matchLabels": {"app": name}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "storageClassName": ZONAL,
                         "resources": {"requests": {"storage": "2Gi"}}}}]}}


# ---- reading the cluster back --------------------------------------------------------------------------------------


def pods(srv: ApiServer) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in srv.list("pods", namespace=NS)}


def node_of(srv: ApiServer, name: str) -> str:
    return str(srv.get("pods", name, namespace=NS)["spec"].get("nodeName") or "")


def zone_of(srv: ApiServer, node: str) -> str:
    return str(srv.get("nodes", node)["metadata"]["labels"].get(ZONE, ""))


def claim_of(srv: ApiServer, name: str) -> dict[str, Any]:
    return srv.get("persistentvolumeclaims", name, namespace=NS)


def volume_of(srv: ApiServer, claim_name: str) -> dict[str, Any] | None:
    """The PV a claim is bound to (None while unbound)."""
    name = claim_of(srv, claim_name)["spec"].get("volumeName")
    return srv.get("persistentvolumes", name) if name else None


def required_zones(pv: Mapping[str, Any]) -> list[str]:
    """The zones a provisioned PV's node affinity allows (one term, ``zone In [...]``)."""
    [term] = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    [expr] = term["matchExpressions"]
    assert (expr["key"], expr["operator"]) == (ZONE, "In"), expr
    return list(expr["values"])


def attached(srv: ApiServer) -> dict[str, set[tuple[str, str]]]:
    """Per node, the CSI volumes (driver, handle) of the pods bound there: what NodeVolumeLimits counts."""
    out: dict[str, set[tuple[str, str]]] = {}
    for p in pods(srv).values():
        node = p["spec"].get("nodeName")
        if not node:
            continue
        for v in p["spec"].get("volumes") or []:
            pv = volume_of(srv, v["persistentVolumeClaim"]["claimName"])
            assert pv is not None, f"{p['metadata']['name']} bound before its claim"
            out.setdefault(node, set()).add((pv["spec"]["csi"]["driver"], pv["spec"]["csi"]["volumeHandle"]))
    return out


def failed_scheduling(srv: ApiServer, name: str) -> list[str]:
    return [e["message"] for e in events_for(srv, name, reason="FailedScheduling", namespace=NS)]


async def reported(srv: ApiServer, name: str) -> tuple[str, tuple[str, str, str]]:
    """The first FailedScheduling Event's message and the PodScheduled condition (status, reason,
    message) of a pending pod, once both are written (the Event and the status are two writes)."""
    def both() -> bool:
        return bool(failed_scheduling(srv, name)) and condition(srv.get("pods", name, namespace=NS)) is not None
    await wait_for(both, timeout=WAIT, what=f"FailedScheduling and PodScheduled of {name}")
    cond = condition(srv.get("pods", name, namespace=NS))
    assert cond is not None
    return failed_scheduling(srv, name)[0], (cond["status"], cond["reason"], cond["message"])


def fit_error(nodes: int, reason: str, *, preemption: str = NOT_HELPFUL, prefilter: bool = False) -> str:
    """Upstream's FitError text with DefaultPreemption's verdict: ``reason`` on every node, or,
    from a PreFilter, the message alone; the dry run gives ``preemption`` for every node."""
    found = reason if prefilter else f"{nodes} {reason}"
    return f"0/{nodes} nodes are available: {found}. preemption: 0/{nodes} nodes are available: {nodes} {preemption}."


@asynccontextmanager
async def control_plane(*shapes: NodeShape, objects: tuple[tuple[str, dict[str, Any]], ...] = ()
                        ) -> AsyncIterator[tuple[ApiServer, Scheduler]]:
    """The API server with its default controllers, ``objects`` created (claims in ``NS``), and
    a live vecsched with the default profile, ready. Immediate claims are bound first."""
    async with serve_apiserver(nodes=list(shapes), kubelet_delay=0.02, bookmark_interval=0.5) as srv:
        for resource, obj in objects:
            srv.create(resource, obj, namespace=NS if resource == "persistentvolumeclaims" else "")
        immediate = [o["metadata"]["name"] for r, o in objects
                     if r == "persistentvolumeclaims" and o["spec"]["storageClassName"] == STATIC]
        await wait_for(lambda: all(claim_of(srv, c).get("status", {}).get("phase") == "Bound" for c in immediate),
                       timeout=WAIT, what=f"Immediate claims {immediate} bound by the PV controller")
        async with running(srv) as s:
            yield srv, s


# ---- (a) a StatefulSet over a WaitForFirstConsumer class ---------------------------------------------------------


@pytest.mark.parametrize("spread,per_zone", [
    # 9 replicas, maxSkew 1 over 3 zones, DoNotSchedule: at every step the most and least
    # loaded zones differ by at most 1, so the 9 end as 3 + 3 + 3 -- although zone-a has 4 of
    # the 6 nodes, where spreading over nodes alone (least allocated) puts most of them.
    pytest.param(True, {"zone-a": 3, "zone-b": 3, "zone-c": 3}, id="zone-spread-maxSkew-1"),
    # Without a constraint the system default spreading (ScheduleAnyway) only scores: where
    # the replicas go is the scorers' choice; every volume still follows its pod's zone.
    pytest.param(False, None, id="no-spread-constraint"),
])
async def test_statefulset_claims_are_provisioned_in_their_pods_zones(spread: bool,
                                                                      per_zone: dict[str, int] | None) -> None:
    replicas = 9
    # node-0000..0003 in zone-a, node-0004 in zone-b, node-0005 in zone-c
    shapes = [NodeShape(count=4, cpu="4", memory="8Gi", zones=("zone-a",)),
              NodeShape(count=1, cpu="4", memory="8Gi", zones=("zone-b",)),
              NodeShape(count=1, cpu="4", memory="8Gi", zones=("zone-c",))]
    async with control_plane(*shapes, objects=(("storageclasses", storage_class(ZONAL)),)) as (srv, _):
        srv.create("statefulsets", statefulset("db", replicas=replicas, spread=spread), namespace=NS)
        names = [f"db-{i}" for i in range(replicas)]
        await wait_for(lambda: all(node_of(srv, n) for n in names if n in pods(srv)) and len(pods(srv)) == replicas,
                       timeout=WAIT, what="all 9 replicas bound")
        zones: Counter[str] = Counter()
        for i, name in enumerate(names):
            node = node_of(srv, name)
            c = claim_of(srv, f"data-db-{i}")
            pv = volume_of(srv, f"data-db-{i}")
            # The pod is bound only once its claim is (VolumeBinding's PreBind waits for the PV controller).
            assert c["status"]["phase"] == "Bound" and pv is not None, f"data-db-{i} not bound"
            # The scheduler chose the node (selected-node); the provisioner made the volume for it:
            # 2Gi of the driver, its node affinity the zone of that node, and nothing wider.
            assert c["metadata"]["annotations"][SELECTED_NODE] == node
            assert pv["spec"]["csi"]["driver"] == DRIVER and pv["spec"]["capacity"] == {"storage": "2Gi"}
            assert required_zones(pv) == [zone_of(srv, node)], (name, node, pv["spec"]["nodeAffinity"])
            assert pv["spec"]["claimRef"]["uid"] == c["metadata"]["uid"] and pv["status"]["phase"] == "Bound"
            zones[zone_of(srv, node)] += 1
        assert sum(zones.values()) == replicas
        if per_zone is not None:
            assert dict(zones) == per_zone


# ---- (b) attach limits ---------------------------------------------------------------------------------------------


async def test_attach_limit_holds_for_provisioned_and_static_volumes() -> None:
    # 2 nodes, attach limit 2 each (CSINode allocatable.count of csi.vecsched.io): room for 2 x 2 = 4 volumes.
    shape = NodeShape(count=2, cpu="4", memory="8Gi", zones=("zone-a", "zone-b"), attach_limit=2)
    objects: tuple[tuple[str, dict[str, Any]], ...] = (
        ("storageclasses", storage_class(ZONAL)),
        ("storageclasses", storage_class(STATIC, mode="Immediate", provisioner=NO_PROVISIONER)),
        # two static CSI volumes that reach every node, bound to s0 and s1 by the PV controller
        ("persistentvolumes", static_pv("pv-s0", STATIC)), ("persistentvolumes", static_pv("pv-s1", STATIC)),
        ("persistentvolumeclaims", claim("s0", STATIC)), ("persistentvolumeclaims", claim("s1", STATIC)),
        ("persistentvolumeclaims", claim("z0", ZONAL)), ("persistentvolumeclaims", claim("z1", ZONAL)),
        ("persistentvolumeclaims", claim("z2", ZONAL)),
    )
    async with control_plane(shape, objects=objects) as (srv, _):
        first = ("s0", "z0", "s1", "z1")
        for c in first:
            srv.create("pods", pod_with(f"p-{c}", c), namespace=NS)
        await wait_for(lambda: all(node_of(srv, f"p-{c}") for c in first), timeout=WAIT, what="4 pods bound")
        # 4 volumes over 2 nodes of limit 2: each node holds exactly 2.
        assert {n: len(v) for n, v in attached(srv).items()} == {"node-0000": 2, "node-0001": 2}

        # The fifth volume fits nowhere: NodeVolumeLimits rejects both nodes (Unschedulable, so
        # preemption is tried: no pod of lower priority to evict on either).
        srv.create("pods", pod_with("p-z2", "z2"), namespace=NS)
        want = fit_error(2, MAX_VOLUME_COUNT, preemption=NO_VICTIMS)
        assert want == ("0/2 nodes are available: 2 node(s) exceed max volume count. "
                        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")
        assert await reported(srv, "p-z2") == (want, ("False", "Unschedulable", want))
        # Its claim was never given a node, so nothing was provisioned for it.
        assert SELECTED_NODE not in (claim_of(srv, "z2")["metadata"].get("annotations") or {})
        assert volume_of(srv, "z2") is None
        assert {n: len(v) for n, v in attached(srv).items()} == {"node-0000": 2, "node-0001": 2}

        # p-z0 goes (at once, grace 0): its node is down to 1 of 2, and p-z2 takes the free
        # attachment there -- its volume provisioned in that node's zone.
        freed = node_of(srv, "p-z0")
        srv.ops.delete(srv.resource("pods"), namespace=NS, name="p-z0", grace=0)
        await wait_for(lambda: bool(node_of(srv, "p-z2")), timeout=WAIT, what="p-z2 bound after p-z0 went")
        assert node_of(srv, "p-z2") == freed
        pv = volume_of(srv, "z2")
        assert pv is not None and required_zones(pv) == [zone_of(srv, freed)]
        assert {n: len(v) for n, v in attached(srv).items()} == {"node-0000": 2, "node-0001": 2}


# ---- (c) claims that cannot be satisfied ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unsatisfiable:
    objects: tuple[tuple[str, dict[str, Any]], ...]
    claim: str
    message: str
    """The FailedScheduling Event and PodScheduled message, on the 3 nodes of zones a, b, c."""
    remedy: Callable[[ApiServer], object]
    """A change of the cluster after which the pod fits ..."""
    lands_on: str | None
    """... on this node (None: any)."""


def _add_zone_z_node(srv: ApiServer) -> None:
    srv.add_node(name="node-z", shape=NodeShape(cpu="4", memory="8Gi", zones=("zone-z",)))


UNSATISFIABLE: Final = [
    pytest.param(Unsatisfiable(
        objects=(("storageclasses", storage_class(LOCAL, provisioner=NO_PROVISIONER)),
                 ("persistentvolumeclaims", claim("data", LOCAL))),
        claim="data",
        # WaitForFirstConsumer, no PV of the class, no provisioner: every node fails VolumeBinding.
        message=fit_error(3, BIND_CONFLICT),
        # a local volume on node-0001 appears (the PV controller makes it Available): that node only
        remedy=lambda srv: srv.create("persistentvolumes", static_pv("pv-local", LOCAL,
                                                                     requires=(HOSTNAME, "node-0001"))),
        lands_on="node-0001"), id="wffc-no-provisioner-no-pv"),
    pytest.param(Unsatisfiable(
        objects=(("storageclasses", storage_class(STATIC, mode="Immediate", provisioner=NO_PROVISIONER)),
                 ("persistentvolumes", static_pv("pv-z", STATIC, requires=(ZONE, "zone-z"))),
                 ("persistentvolumeclaims", claim("data", STATIC, volume="pv-z"))),
        claim="data",
        # bound to a PV whose node affinity wants zone-z; the nodes are in a, b, c: VolumeBinding
        # rejects all 3 before VolumeZone is asked.
        message=fit_error(3, NODE_CONFLICT),
        remedy=_add_zone_z_node, lands_on="node-z"), id="bound-pv-node-affinity-zone-without-nodes"),
    pytest.param(Unsatisfiable(
        objects=(("storageclasses", storage_class(STATIC, mode="Immediate", provisioner=NO_PROVISIONER)),
                 ("persistentvolumes", static_pv("pv-z", STATIC, labels={ZONE: "zone-z"})),
                 ("persistentvolumeclaims", claim("data", STATIC, volume="pv-z"))),
        claim="data",
        # bound to a PV labelled zone-z and without node affinity: VolumeBinding passes, VolumeZone
        # rejects all 3 (upstream's volumezone, on the PV's zone label).
        message=fit_error(3, ZONE_CONFLICT),
        remedy=_add_zone_z_node, lands_on="node-z"), id="bound-pv-zone-label-without-nodes"),
    pytest.param(Unsatisfiable(
        objects=(("storageclasses", storage_class(ZONAL)),),
        claim="x",
        # no claim "x": VolumeBinding's PreFilter rejects the pod outright (the message alone,
        # no node count), and no preemption can create a claim.
        message=fit_error(3, 'persistentvolumeclaim "x" not found', prefilter=True),
        remedy=lambda srv: srv.create("persistentvolumeclaims", claim("x", ZONAL), namespace=NS),
        lands_on=None), id="missing-claim"),
]


@pytest.mark.parametrize("case", UNSATISFIABLE)
async def test_unsatisfiable_claim_leaves_the_pod_pending_with_upstreams_message(case: Unsatisfiable) -> None:
    shape = NodeShape(count=3, cpu="4", memory="8Gi", zones=ZONES)  # node-0000 zone-a, -0001 zone-b, -0002 zone-c
    async with control_plane(shape, objects=case.objects) as (srv, _):
        srv.create("pods", pod_with("stuck", case.claim), namespace=NS)
        assert await reported(srv, "stuck") == (case.message, ("False", "Unschedulable", case.message))
        assert node_of(srv, "stuck") == ""

        # The scheduler goes on with other pods meanwhile.
        srv.create("pods", pod("plain"), namespace=NS)
        await wait_for(lambda: bool(node_of(srv, "plain")), timeout=WAIT, what="plain bound while stuck waits")
        assert node_of(srv, "stuck") == ""

        # Once the cluster can satisfy the claim, the event moves the pod and it is placed
        # where its volume can be reached.
        case.remedy(srv)
        await wait_for(lambda: bool(node_of(srv, "stuck")), timeout=WAIT, what="stuck bound after the remedy")
        node = node_of(srv, "stuck")
        if case.lands_on is not None:
            assert node == case.lands_on
        pv = volume_of(srv, case.claim)
        assert pv is not None and claim_of(srv, case.claim)["status"]["phase"] == "Bound"
        if "nodeAffinity" in pv["spec"]:
            [term] = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
            [expr] = term["matchExpressions"]
            labels = srv.get("nodes", node)["metadata"]["labels"]
            assert labels[expr["key"]] in expr["values"], (node, expr)
