"""NodeVolumeLimits: cases ported from upstream's nodevolumelimits/csi_test.go (TestCSILimits),
then vecsched's additions (CSIDriver attachRequired, inline CSI volumes), many nodes at
once, the counts kept as pods come and go and as claims are bound, and preemption.

The fixture is upstream's: for each driver of a case, PVs and claims ``csi-<driver>-<j>``
(j < 4) -- CSI PVs, except that the ``kubernetes.io/aws-ebs`` ones are in-tree EBS PVs
and the ``kubernetes.io/hostpath`` ones hostPath PVs -- plus ``csi-4`` (unbound, class
``csi-sc``), ``csi-5`` (unbound, no class) and ``csi-6`` (class ``csi-sc``, bound to a PV
that does not exist); ``csi-sc`` is provisioned by the case's first driver; the node's
CSINode lists the case's drivers with ``allocatable.count`` = ``maxVols``
(``csinode``), without a count (``csinode-with-no-limit``), or is absent ("").

Not ported: the two VolumeAttachment cases ("should count VolumeAttachments towards
volume limit when no pods exist", "... does not exceed limit") -- vecsched does not read
VolumeAttachments -- and the queueing-hint tests (the live scheduler's requeueing is
not a plugin's here). Upstream's ``ephemeralEnabled: false`` case runs as the others:
the feature gate is gone and generic ephemeral volumes always count. A missing claim is
reported with the informer lister's text (``persistentvolumeclaim "abc-xyz" not found``;
upstream's fake lister says ``persistentvolumeclaims``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scoring.framework import CycleState, Profile
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins import default_preemption, node_volume_limits
from scoring.plugins.node_volume_limits import ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED, AttachedVolumes, ebs_volume_id
from scoring.plugins.preemption import NODE_LOCAL, STATIC, dry_run_mode
from scoring.table import NodeTable
from scoring.volumes import Volumes

EBS = "ebs.csi.aws.com"
GCE = "pd.csi.storage.gke.io"
EBS_IN_TREE = "kubernetes.io/aws-ebs"
HOSTPATH_IN_TREE = "kubernetes.io/hostpath"
NODE = "node-for-max-pd-test-1"
NS = "test"
SC = "csi-sc"
EXCEEDED = (ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED, False)  # Unschedulable: preemption may free a slot


# ---- builders, shaped like upstream's st.MakePod() and fake listers ---------------------------------


def _pvc_vol(claim: str) -> dict[str, Any]:
    return {"name": f"v-{claim}".replace("/", "-"), "persistentVolumeClaim": {"claimName": claim}}


def _eph_vol(name: str) -> dict[str, Any]:
    return {"name": name, "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}


def _ebs_inline(volume_id: str) -> dict[str, Any]:
    return {"name": "ebs", "awsElasticBlockStore": {"volumeID": volume_id}}


CONFIG_AND_SECRET = [{"name": "cm", "configMap": {"name": "cm"}}, {"name": "s", "secret": {"secretName": "s"}}]


def _pod(name: str, *volumes: dict[str, Any], uid: str = "", node: str = "", priority: int = 0) -> PodInfo:
    spec: dict[str, Any] = {"containers": [{"name": "c"}], "priority": priority}
    if volumes:
        spec["volumes"] = list(volumes)
    if node:
        spec["nodeName"] = node
    return pod_from_json({"metadata": {"name": name, "namespace": NS, "uid": uid or f"uid-{name}"}, "spec": spec})


def _pvc_pod(name: str, *claims: str) -> PodInfo:
    return _pod(name, *(_pvc_vol(c) for c in claims))


RUNNING = _pvc_pod("running", f"csi-{EBS}-3")
PENDING_VOLUME = _pvc_pod("pending-volume", "csi-4")
UNBOUND_PVC_2 = _pvc_pod("unbound-pvc-2", "csi-4")  # another pod, the same unbound claim
MISSING_PV = _pvc_pod("missing-pv", "csi-6")
NO_SC_PVC = _pvc_pod("no-sc-pvc", "csi-5")
GCE_TWO_VOL = _pvc_pod("gce-two-vol", f"csi-{GCE}-1", f"csi-{GCE}-2")
IN_TREE_ONE_VOL = _pvc_pod("in-tree-one-vol", f"csi-{EBS_IN_TREE}-0")
IN_TREE_TWO_VOL = _pvc_pod("in-tree-two-vol", f"csi-{EBS_IN_TREE}-1", f"csi-{EBS_IN_TREE}-2")
CSI_EBS_ONE_VOL = _pvc_pod("csi-ebs-one-vol", f"csi-{EBS}-0")
CSI_EBS_TWO_VOL = _pvc_pod("csi-ebs-two-vol", f"csi-{EBS}-1", f"csi-{EBS}-2")
IN_TREE_NON_MIGRATABLE_ONE_VOL = _pvc_pod("in-tree-non-migratable", f"csi-{HOSTPATH_IN_TREE}-0")
EPHEMERAL_VOLUME = _pod("abc", _eph_vol("xyz"), uid="12345")
EPHEMERAL_TWO_VOLUME = _pod("abc", _eph_vol("x"), _eph_vol("y"), uid="12345II")
IN_TREE_INLINE_VOL = _pod("in-tree-inline", _ebs_inline("aws-inline1"))
IN_TREE_INLINE_SAME_CSI_ID = _pod("in-tree-inline-same-id", _ebs_inline(f"csi-{EBS}-1"))
ONLY_CONFIGMAP_AND_SECRET = _pod("only-cm-secret", *CONFIG_AND_SECRET)
PVC_WITH_CONFIGMAP_AND_SECRET = _pod("pvc-cm-secret", *CONFIG_AND_SECRET, _pvc_vol(f"csi-{EBS}-0"))
EPHEMERAL_WITH_CONFIGMAP_AND_SECRET = _pod("abc", *CONFIG_AND_SECRET, _eph_vol("xyz"), uid="12345")
INLINE_MIGRATABLE_WITH_CONFIGMAP_AND_SECRET = _pod("inline-cm-secret", *CONFIG_AND_SECRET, _ebs_inline("aws-inline1"))


def _claim(name: str, *, volume: str = "", sc: str | None = None, owner_uid: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if volume:
        spec["volumeName"] = volume
    if sc is not None:
        spec["storageClassName"] = sc
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}"}
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "abc", "uid": owner_uid,
                                    "controller": True}]
    return {"kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


EPHEMERAL_CLAIM = _claim("abc-xyz", sc=SC, owner_uid="12345")
CONFLICTING_CLAIM = _claim("abc-xyz", sc=SC)  # not owned by the pod
EPHEMERAL_CLAIM_X = _claim("abc-x", sc=SC, owner_uid="12345II")
EPHEMERAL_CLAIM_Y = _claim("abc-y", sc=SC, owner_uid="12345II")


def _pv(name: str, driver: str) -> dict[str, Any]:
    if driver == EBS_IN_TREE:
        source: dict[str, Any] = {"awsElasticBlockStore": {"volumeID": name}}
    elif driver == HOSTPATH_IN_TREE:
        source = {"hostPath": {"path": "/tmp"}}
    else:
        source = {"csi": {"driver": driver, "volumeHandle": name}}
    return {"kind": "PersistentVolume", "metadata": {"name": name}, "spec": {"capacity": {"storage": "1Gi"}, **source}}


def _cluster(drivers: Sequence[str], limit_source: str, max_vols: int, existing: Sequence[PodInfo] = (),
             extra: Sequence[dict[str, Any]] = ()) -> NodeTable:
    """Upstream's getNodeWithPodAndVolumeLimits with its fake listers."""
    t = NodeTable()
    t.set_node(node_from_json({"metadata": {"name": NODE}}))
    vols = Volumes.of(t)
    for d in drivers:
        for j in range(4):
            vols.apply("PersistentVolume", _pv(f"csi-{d}-{j}", d))
            vols.apply("PersistentVolumeClaim", _claim(f"csi-{d}-{j}", volume=f"csi-{d}-{j}"))
    vols.apply("PersistentVolumeClaim", _claim("csi-4", sc=SC))
    vols.apply("PersistentVolumeClaim", _claim("csi-5"))
    vols.apply("PersistentVolumeClaim", _claim("csi-6", sc=SC, volume="missing-in-action"))
    vols.apply("StorageClass", {"kind": "StorageClass", "metadata": {"name": SC}, "provisioner": drivers[0]})
    for c in extra:
        vols.apply("PersistentVolumeClaim", c)
    if limit_source in ("csinode", "csinode-with-no-limit"):
        count = {"allocatable": {"count": max_vols}} if limit_source == "csinode" else {}
        entries = [{"name": d, "nodeID": NODE, **count} for d in drivers]
        vols.apply("CSINode", {"kind": "CSINode", "metadata": {"name": NODE}, "spec": {"drivers": entries}})
    for p in existing:
        t.add_pod(p, NODE)
    return t


def _verdict(pod: PodInfo, table: NodeTable, state: CycleState | None = None) -> dict[str, tuple[str, bool]]:
    reasons = node_volume_limits.new({}, "args").filter(pod, table, {} if state is None else state) or []
    return {table.names[i]: (r.message, r.unresolvable) for r in reasons for i in np.flatnonzero(r.nodes)}


CSI_LIMITS = [
    # (upstream test, new pod, existing pods, extra claims, drivers, limit source, maxVols, want on the node)
    # ebs-3, ebs-1, ebs-2 attached + ebs-0 new = 4 <= 4
    ("fits when node volume limit >= new pods CSI volume",
     CSI_EBS_ONE_VOL, [RUNNING, CSI_EBS_TWO_VOL], [], [EBS], "csinode", 4, None),
    # 3 + 1 = 4 > 2
    ("doesn't when node volume limit <= pods CSI volume",
     CSI_EBS_ONE_VOL, [RUNNING, CSI_EBS_TWO_VOL], [], [EBS], "csinode", 2, EXCEEDED),
    # the driver reports no count: no limit
    ("should when driver does not support volume limits",
     CSI_EBS_ONE_VOL, [RUNNING, CSI_EBS_TWO_VOL], [], [EBS], "csinode-with-no-limit", 2, None),
    # csi-4 (unbound, counted through csi-sc's provisioner) + ebs-1 + ebs-2 = 3, + 1 > 2
    ("count pending PVCs towards volume limit <= pods CSI volume",
     CSI_EBS_ONE_VOL, [PENDING_VOLUME, CSI_EBS_TWO_VOL], [], [EBS], "csinode", 2, EXCEEDED),
    # two pods of the same unbound csi-4 count once: 3 + 1 = 4 <= 4
    ("count multiple pending pvcs towards volume limit >= pods CSI volume",
     CSI_EBS_ONE_VOL, [PENDING_VOLUME, UNBOUND_PVC_2, CSI_EBS_TWO_VOL], [], [EBS], "csinode", 4, None),
    # csi-6's PV does not exist: counted through its class, 3 + 1 > 2
    ("should count PVCs with invalid PV name but valid SC",
     CSI_EBS_ONE_VOL, [MISSING_PV, CSI_EBS_TWO_VOL], [], [EBS], "csinode", 2, EXCEEDED),
    # csi-5 has no class: not counted, ebs-3 + 1 = 2 <= 2
    ("don't count pvcs with missing SC towards volume limit",
     CSI_EBS_ONE_VOL, [RUNNING, NO_SC_PVC], [], [EBS], "csinode", 2, None),
    # ebs: 2 + 1 > 2 (the two GCE volumes are another driver's)
    ("count pvcs with the same type towards volume limit",
     CSI_EBS_ONE_VOL, [GCE_TWO_VOL, CSI_EBS_TWO_VOL], [], [EBS, GCE], "csinode", 2, EXCEEDED),
    # gce: 0 + 2 <= 2 (the three EBS volumes do not count against GCE)
    ("don't count pvcs with different type towards volume limit",
     GCE_TWO_VOL, [CSI_EBS_TWO_VOL, RUNNING], [], [EBS, GCE], "csinode", 2, None),
    # in-tree EBS PVs count as ebs.csi.aws.com on a node with a CSINode: 2 + 1 > 2
    ("should count in-tree volumes if migration is enabled",
     IN_TREE_ONE_VOL, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode", 2, EXCEEDED),
    # no CSINode: nothing is migrated, and there are no limits
    ("nil csi node", IN_TREE_INLINE_VOL, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "", 0, None),
    # csi-4's class is provisioned by kubernetes.io/aws-ebs: counted as ebs.csi.aws.com, 2 + 1 > 2
    ("should count unbound in-tree volumes if migration is enabled",
     PENDING_VOLUME, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode", 2, EXCEEDED),
    ("should not limit pod if volume used does not report limits",
     IN_TREE_ONE_VOL, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode-with-no-limit", 2, None),
    # a hostPath PV is not migratable: nothing new to count
    ("should not count non-migratable in-tree volumes",
     IN_TREE_NON_MIGRATABLE_ONE_VOL, [CSI_EBS_TWO_VOL], [], [HOSTPATH_IN_TREE, EBS], "csinode", 2, None),
    # an inline EBS volume counts too: 2 + 1 > 2
    ("should count in-tree inline volumes if migration is enabled",
     IN_TREE_INLINE_VOL, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode", 2, EXCEEDED),
    # in-tree and CSI volumes of the same driver add up: 2 + 1 > 2
    ("should count in-tree and csi volumes if migration is enabled (when scheduling in-tree volumes)",
     IN_TREE_ONE_VOL, [CSI_EBS_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode", 2, EXCEEDED),
    # ebs-1, ebs-2, in-tree ebs-0 = 3, + the inline one > 3
    ("should count in-tree, inline and csi volumes if migration is enabled (when scheduling in-tree volumes)",
     IN_TREE_INLINE_VOL, [CSI_EBS_TWO_VOL, IN_TREE_ONE_VOL], [], [EBS_IN_TREE, EBS], "csinode", 3, EXCEEDED),
    # the inline volume's id is the CSI PV's handle csi-ebs.csi.aws.com-1: already attached, nothing new
    ("should not count in-tree, inline and csi volumes if migration is enabled (when scheduling in-tree volumes)",
     IN_TREE_INLINE_SAME_CSI_ID, [CSI_EBS_TWO_VOL, IN_TREE_ONE_VOL], [], [EBS_IN_TREE, EBS], "csinode", 3, None),
    ("should count in-tree and csi volumes if migration is enabled (when scheduling csi volumes)",
     CSI_EBS_ONE_VOL, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode", 2, EXCEEDED),
    ("ephemeral volume missing", EPHEMERAL_VOLUME, [], [], [EBS], "csinode-with-no-limit", 0,
     ('looking up PVC test/abc-xyz: persistentvolumeclaim "abc-xyz" not found', True)),
    ("ephemeral volume not owned", EPHEMERAL_VOLUME, [], [CONFLICTING_CLAIM], [EBS], "csinode-with-no-limit", 0,
     ("PVC test/abc-xyz was not created for pod test/abc (pod is not owner)", True)),
    ("ephemeral volume unbound", EPHEMERAL_VOLUME, [], [EPHEMERAL_CLAIM], [EBS], "csinode-with-no-limit", 0, None),
    # ebs-3, ebs-1, ebs-2 + the ephemeral claim (through csi-sc) = 4 > 2
    ("ephemeral doesn't when node volume limit <= pods CSI volume",
     EPHEMERAL_VOLUME, [RUNNING, CSI_EBS_TWO_VOL], [EPHEMERAL_CLAIM], [EBS], "csinode", 2, EXCEEDED),
    # ebs-3 + abc-x + abc-y = 3, + 1 > 2
    ("ephemeral doesn't when node volume limit <= pods ephemeral CSI volume",
     CSI_EBS_ONE_VOL, [RUNNING, EPHEMERAL_TWO_VOLUME], [EPHEMERAL_CLAIM_X, EPHEMERAL_CLAIM_Y], [EBS], "csinode", 2,
     EXCEEDED),
    # ebs-3 + abc-xyz + ebs-1 + ebs-2 = 4, + 1 > 3
    ("persistent doesn't when node volume limit <= pods ephemeral CSI volume + persistent volume, ephemeral disabled",
     CSI_EBS_ONE_VOL, [RUNNING, EPHEMERAL_VOLUME, CSI_EBS_TWO_VOL], [EPHEMERAL_CLAIM], [EBS], "csinode", 3, EXCEEDED),
    ("persistent doesn't when node volume limit <= pods ephemeral CSI volume + persistent volume",
     CSI_EBS_ONE_VOL, [RUNNING, EPHEMERAL_VOLUME, CSI_EBS_TWO_VOL], [EPHEMERAL_CLAIM], [EBS], "csinode", 3, EXCEEDED),
    # 4 + 1 = 5 <= 5
    ("persistent okay when node volume limit > pods ephemeral CSI volume + persistent volume",
     CSI_EBS_ONE_VOL, [RUNNING, EPHEMERAL_VOLUME, CSI_EBS_TWO_VOL], [EPHEMERAL_CLAIM], [EBS], "csinode", 5, None),
    ("skip Filter when the pod only uses secrets and configmaps",
     ONLY_CONFIGMAP_AND_SECRET, [], [], [EBS], "csinode", 2, None),
    ("don't skip Filter when the pod has pvcs", PVC_WITH_CONFIGMAP_AND_SECRET, [], [], [EBS], "csinode", 2, None),
    ("don't skip Filter when the pod has ephemeral volumes",
     EPHEMERAL_WITH_CONFIGMAP_AND_SECRET, [], [], [EBS], "csinode-with-no-limit", 0,
     ('looking up PVC test/abc-xyz: persistentvolumeclaim "abc-xyz" not found', True)),
    # the inline EBS volume: 2 + 1 > 2
    ("don't skip Filter when the pod has inline migratable volumes",
     INLINE_MIGRATABLE_WITH_CONFIGMAP_AND_SECRET, [IN_TREE_TWO_VOL], [], [EBS_IN_TREE, EBS], "csinode", 2, EXCEEDED),
]


@pytest.mark.parametrize("name,pod,existing,extra,drivers,source,max_vols,want", CSI_LIMITS,
                         ids=[f"TestCSILimits/{c[0]}" for c in CSI_LIMITS])
def test_csi_limits(name: str, pod: PodInfo, existing: list[PodInfo], extra: list[dict[str, Any]], drivers: list[str],
                    source: str, max_vols: int, want: tuple[str, bool] | None) -> None:
    table = _cluster(drivers, source, max_vols, existing, extra)
    assert _verdict(pod, table) == ({NODE: want} if want else {})


def test_skipped_pods_depend_on_no_pod() -> None:
    # upstream's PreFilter Skip: no claim, no ephemeral or migratable volume -> the verdict
    # never depends on the node's pods, and the preemption dry run keeps it
    table = _cluster([EBS], "csinode", 2)
    plugin = node_volume_limits.new({}, "args")
    assert dry_run_mode(plugin, ONLY_CONFIGMAP_AND_SECRET, table, {}) == STATIC
    assert dry_run_mode(plugin, CSI_EBS_ONE_VOL, table, {}) == NODE_LOCAL


# ---- beyond upstream: CSIDriver attachRequired, inline CSI volumes -----------------------------------


def _csidriver(name: str, attach: bool) -> dict[str, Any]:
    return {"kind": "CSIDriver", "metadata": {"name": name}, "spec": {"attachRequired": attach}}


@pytest.mark.parametrize("attach,want", [(True, EXCEEDED), (False, None)], ids=["attach required", "no attach"])
def test_drivers_that_attach_nothing_count_nothing(attach: bool, want: tuple[str, bool] | None) -> None:
    # attached ebs-3, ebs-1, ebs-2 + ebs-0 = 4 > 2, unless the CSIDriver attaches nothing
    table = _cluster([EBS], "csinode", 2, [RUNNING, CSI_EBS_TWO_VOL])
    Volumes.of(table).apply("CSIDriver", _csidriver(EBS, attach))
    assert _verdict(CSI_EBS_ONE_VOL, table) == ({NODE: want} if want else {})


def test_inline_csi_volumes_count_per_pod() -> None:
    # each pod's inline CSI volume is its own (handle "<pod uid>-<volume>"): 2 placed + 1 > 2
    def inline(name: str) -> PodInfo:
        return _pod(name, {"name": "scratch", "csi": {"driver": EBS}})
    table = _cluster([EBS], "csinode", 2, [inline("i1")])
    assert _verdict(inline("i2"), table) == {}  # 1 + 1 <= 2
    table.add_pod(inline("i2"), NODE)
    assert _verdict(inline("i3"), table) == {NODE: EXCEEDED}


EBS_IDS = [
    ("bare id", "vol-0123", "vol-0123"),
    ("other bare ids are kept", "csi-kubernetes.io/aws-ebs-0", "csi-kubernetes.io/aws-ebs-0"),
    ("url with zone", "aws://us-east-1a/vol-0123", "vol-0123"),
    ("url without zone", "aws:///vol-0123", "vol-0123"),
    ("url of another shape", "aws://us-east-1a/disk-1", None),
]


@pytest.mark.parametrize("name,kid,want", EBS_IDS, ids=[c[0] for c in EBS_IDS])
def test_ebs_volume_id(name: str, kid: str, want: str | None) -> None:
    assert ebs_volume_id(kid) == want


def test_an_untranslatable_inline_volume_rejects_the_pod_where_migration_is_on() -> None:
    # translating happens only on a node with a CSINode (isCSIMigrationOn), so only there
    t = NodeTable()
    for name in ("with-csinode", "without"):
        t.set_node(node_from_json({"metadata": {"name": name}}))
    Volumes.of(t).apply("CSINode", {"kind": "CSINode", "metadata": {"name": "with-csinode"},
                                    "spec": {"drivers": [{"name": EBS, "nodeID": "n", "allocatable": {"count": 5}}]}})
    bad = _pod("bad", {"name": "d", "awsElasticBlockStore": {"volumeID": "aws://zone/disk-1"}})
    got = _verdict(bad, t)
    assert list(got) == ["with-csinode"]
    assert got["with-csinode"][0].startswith("converting volume(d) from inline to csi: ")
    assert got["with-csinode"][1] is True


# ---- many nodes at once, and counts that follow the cluster -------------------------------------------


def _nodes(limits: dict[str, int | None]) -> NodeTable:
    """Nodes with a CSINode for EBS with the given count (None: no count; absent key: no CSINode)."""
    t = NodeTable()
    vols = Volumes.of(t)
    for name, count in limits.items():
        t.set_node(node_from_json({"metadata": {"name": name}}))
        driver: dict[str, Any] = {"name": EBS, "nodeID": name}
        if count is not None:
            driver["allocatable"] = {"count": count}
        vols.apply("CSINode", {"kind": "CSINode", "metadata": {"name": name}, "spec": {"drivers": [driver]}})
    for j in range(8):
        vols.apply("PersistentVolume", _pv(f"pv-{j}", EBS))
        vols.apply("PersistentVolumeClaim", _claim(f"c-{j}", volume=f"pv-{j}"))
    return t


def test_many_nodes_at_once() -> None:
    t = _nodes({"n0": 1, "n1": 1, "n2": 2, "n3": None, "n4": 0})
    t.set_node(node_from_json({"metadata": {"name": "bare"}}))  # no CSINode at all
    t.add_pod(_pvc_pod("a", "c-0"), "n0")  # n0: 1 attached
    t.add_pod(_pvc_pod("b", "c-1"), "n1")  # n1: 1 attached
    t.add_pod(_pvc_pod("c", "c-1", "c-2"), "n2")  # n2: c-1, c-2 = 2 attached
    # the new pod uses c-0 and c-3:
    # n0: c-0 already there, c-3 new: 1 + 1 > 1; n1: both new, 1 + 2 > 1; n2: 2 + 2 > 2;
    # n3: no count; n4: 0 + 2 > 0; bare: no CSINode, no limit
    pod = _pvc_pod("new", "c-0", "c-3")
    assert _verdict(pod, t) == {"n0": EXCEEDED, "n1": EXCEEDED, "n2": EXCEEDED, "n4": EXCEEDED}
    # with c-0 alone: n0 has it already (nothing new, not checked); n1: 1 + 1 > 1; n2: 2 + 1 > 2
    assert _verdict(_pvc_pod("new", "c-0"), t) == {"n1": EXCEEDED, "n2": EXCEEDED, "n4": EXCEEDED}


def test_counts_follow_pods_and_node_removal() -> None:
    t = _nodes({"n0": 2, "n1": 2, "n2": 2})
    t.add_pod(_pvc_pod("a", "c-0", "c-1"), "n0")
    t.add_pod(_pvc_pod("b", "c-2", "c-3"), "n2")
    pod = _pvc_pod("new", "c-4")
    assert _verdict(pod, t) == {"n0": EXCEEDED, "n2": EXCEEDED}
    t.remove_pod("test/a")
    assert _verdict(pod, t) == {"n2": EXCEEDED}
    # removing n0 moves n2 into its row: n2's count moves along
    t.remove_node("n0")
    assert t.names == ["n2", "n1"]
    assert _verdict(pod, t) == {"n2": EXCEEDED}
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [2, 0]


def test_the_table_growing_keeps_the_counts() -> None:
    # 64 rows at first; the extension is made before the nodes that make the table grow
    t = _nodes({"n0": 1})
    t.add_pod(_pvc_pod("a", "c-0"), "n0")
    assert _verdict(_pvc_pod("new", "c-1"), t) == {"n0": EXCEEDED}
    vols = Volumes.of(t)
    for i in range(1, 100):
        t.set_node(node_from_json({"metadata": {"name": f"n{i}"}}))
        vols.apply("CSINode", {"kind": "CSINode", "metadata": {"name": f"n{i}"},
                               "spec": {"drivers": [{"name": EBS, "allocatable": {"count": 1}}]}})
    t.add_pod(_pvc_pod("b", "c-2"), "n99")
    # n0 and n99 hold one volume each, limit 1: both exceed; the 98 others take the pod
    assert _verdict(_pvc_pod("new", "c-1"), t) == {"n0": EXCEEDED, "n99": EXCEEDED}
    assert t.capacity > 64


def test_a_claim_bound_later_is_counted_by_its_pv() -> None:
    t = _nodes({"n0": 1})
    vols = Volumes.of(t)
    vols.apply("StorageClass", {"kind": "StorageClass", "metadata": {"name": SC}, "provisioner": EBS})
    vols.apply("PersistentVolumeClaim", _claim("late", sc=SC))
    t.add_pod(_pvc_pod("a", "late"), "n0")  # counted as a placeholder of the class's provisioner
    assert _verdict(_pvc_pod("new", "c-0"), t) == {"n0": EXCEEDED}
    assert _verdict(_pvc_pod("shares", "late"), t) == {}  # the same claim: nothing new
    # the claim is bound to pv-0 afterwards: the placed pod now holds pv-0 itself,
    # so a pod of claim c-0 (also pv-0) adds nothing, and a pod of c-1 exceeds
    vols.apply("PersistentVolumeClaim", _claim("late", sc=SC, volume="pv-0"))
    assert _verdict(_pvc_pod("new", "c-0"), t) == {}
    assert _verdict(_pvc_pod("new", "c-1"), t) == {"n0": EXCEEDED}
    # a CSINode without a count lifts the limit
    vols.apply("CSINode", {"kind": "CSINode", "metadata": {"name": "n0"}, "spec": {"drivers": [{"name": EBS}]}})
    assert _verdict(_pvc_pod("new", "c-1"), t) == {}


@pytest.mark.parametrize("padding", [0, 5000], ids=["through-the-change-log", "past-the-change-log"])
def test_counts_and_limits_follow_storage_changes(padding: int) -> None:
    """The counts follow the storage objects a placed pod's count was read from, and the
    limits the CSINodes -- whether the changes are read from Volumes' log of the latest
    changes or, when more happened than it keeps (``padding`` unrelated changes in
    between), by looking at every object."""
    t = _nodes({"n0": 1, "n1": 2})
    vols = Volumes.of(t)
    vols.apply("StorageClass", {"kind": "StorageClass", "metadata": {"name": SC}, "provisioner": EBS})
    vols.apply("PersistentVolumeClaim", _claim("late", sc=SC))
    t.add_pod(_pvc_pod("a", "late"), "n0")  # n0: the placeholder test/late
    t.add_pod(_pvc_pod("b", "c-1"), "n1")  # n1: pv-1
    # c-0 (pv-0) is new on both: n0 1 + 1 > 1; n1 1 + 1 <= 2
    assert _verdict(_pvc_pod("new", "c-0"), t) == {"n0": EXCEEDED}
    before = vols.generation
    vols.apply("PersistentVolumeClaim", _claim("late", sc=SC, volume="pv-0"))  # a's claim is bound to pv-0
    for i in range(padding):
        vols.apply("CSIDriver", {"kind": "CSIDriver", "metadata": {"name": f"other-{i}"}})
    vols.apply("CSINode", {"kind": "CSINode", "metadata": {"name": "n1"},
                           "spec": {"drivers": [{"name": EBS, "allocatable": {"count": 1}}]}})
    assert (vols.changes_since(before) is None) is (padding > 4096)
    # n0 holds pv-0 now: nothing new there; n1's limit is 1: 1 + 1 > 1
    assert _verdict(_pvc_pod("new", "c-0"), t) == {"n1": EXCEEDED}
    counted = AttachedVolumes.of(t)
    fresh = AttachedVolumes(t)  # counted from scratch
    assert counted.attached(EBS).tolist() == fresh.attached(EBS).tolist() == [1, 1]
    assert counted.holding((EBS, "pv-0", False)).tolist() == [True, False]
    assert counted.node_limits()[1][EBS].tolist() == fresh.node_limits()[1][EBS].tolist() == [1, 1]


def test_an_existing_pods_missing_claim_is_not_counted() -> None:
    t = _nodes({"n0": 1})
    t.add_pod(_pvc_pod("a", "gone"), "n0")
    assert _verdict(_pvc_pod("new", "c-0"), t) == {}
    # the claim appears, bound: the pod's volume counts from then on
    Volumes.of(t).apply("PersistentVolumeClaim", _claim("gone", volume="pv-5"))
    assert _verdict(_pvc_pod("new", "c-0"), t) == {"n0": EXCEEDED}


def test_in_tree_volumes_count_once_the_node_has_a_csinode() -> None:
    t = NodeTable()
    t.set_node(node_from_json({"metadata": {"name": "n0"}}))
    vols = Volumes.of(t)
    vols.apply("PersistentVolume", _pv("tree-0", EBS_IN_TREE))
    vols.apply("PersistentVolumeClaim", _claim("tree-0", volume="tree-0"))
    vols.apply("PersistentVolume", _pv("pv-1", EBS))
    vols.apply("PersistentVolumeClaim", _claim("c-1", volume="pv-1"))
    t.add_pod(_pvc_pod("a", "tree-0"), "n0")
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [0]  # no CSINode: not migrated
    vols.apply("CSINode", {"kind": "CSINode", "metadata": {"name": "n0"},
                           "spec": {"drivers": [{"name": EBS, "allocatable": {"count": 1}}]}})
    assert _verdict(_pvc_pod("new", "c-1"), t) == {"n0": EXCEEDED}  # 1 (tree-0 as EBS) + 1 > 1
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [1]


def test_a_replaced_volumes_extension_is_followed() -> None:
    # the counts were read from one Volumes; a snapshot reload puts another in its place
    t = _nodes({"n0": 1})
    t.add_pod(_pvc_pod("a", "c-0"), "n0")
    assert _verdict(_pvc_pod("new", "c-1"), t) == {"n0": EXCEEDED}
    fresh = t.extensions[Volumes.KEY] = Volumes()
    fresh.apply("CSINode", {"kind": "CSINode", "metadata": {"name": "n0"},
                            "spec": {"drivers": [{"name": EBS, "allocatable": {"count": 1}}]}})
    # c-0 and c-1 are unknown to the new Volumes: the new pod's claim is missing, and the
    # placed pod's claim counts nothing any more
    assert _verdict(_pvc_pod("new", "c-1"), t) == {
        "n0": ('looking up PVC test/c-1: persistentvolumeclaim "c-1" not found', True)}
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [0]  # read again from the new Volumes
    fresh.apply("StorageClass", {"kind": "StorageClass", "metadata": {"name": SC}, "provisioner": EBS})
    fresh.apply("PersistentVolumeClaim", _claim("c-1", sc=SC))
    assert _verdict(_pvc_pod("new", "c-1"), t) == {}  # 0 + 1 <= 1
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [0]


def test_pods_without_volumes_are_not_tracked() -> None:
    t = _nodes({"n0": 1})
    t.add_pod(_pod("plain"), "n0")
    t.add_pod(_pod("cm", *CONFIG_AND_SECRET), "n0")
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [0]
    assert node_volume_limits.new({}, "args").filter(_pod("plain2"), t, {}) is None


# ---- preemption: the victim's volume frees the slot ---------------------------------------------------


def test_preemption_frees_a_volume_slot() -> None:
    t = _nodes({"n0": 1, "n1": 1})
    t.add_pod(_pod("low", _pvc_vol("c-0"), priority=0), "n0")
    t.add_pod(_pod("high", _pvc_vol("c-1"), priority=2000), "n1")
    plugin = node_volume_limits.new({}, "args")
    prof = Profile(name="p", filters=[plugin], scorers=[],
                   postfilters=[default_preemption.new({}, "args")])
    decision = prof.schedule(_pod("urgent", _pvc_vol("c-2"), priority=1000), t)
    assert decision.node is None
    assert decision.message.startswith("0/2 nodes are available: 2 node(s) exceed max volume count.")
    post = decision.post_filter
    assert post is not None and post.success and post.nominated_node == "n0"
    assert [p.key for p in post.detail.victims] == ["test/low"]
    # the dry run gave the table back as it was
    assert AttachedVolumes.of(t).attached(EBS).tolist() == [1, 1]


def test_args() -> None:
    with pytest.raises(ValueError, match="args.x: unknown field"):
        node_volume_limits.new({"x": 1}, "args")
