"""VolumeRestrictions: cases ported from upstream's volumerestrictions/volume_restrictions_test.go
(TestGCEDiskConflicts, TestAWSDiskConflicts, TestRBDDiskConflicts, TestISCSIDiskConflicts,
TestAccessModeConflicts), then the read-only rules, many nodes at once, a claim held on
another node, and preemption of the pod holding a disk or a ReadWriteOncePod claim.

Upstream's PreFilter ``Skip`` is a PreFilter that rejects nothing and a Filter that says
nothing; the disk cases run Filter on a node holding the listed pods, as upstream's
``framework.NewNodeInfo(pods...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from scoring.framework import CycleState, Profile
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins import default_preemption, volume_restrictions
from scoring.plugins.preemption import GLOBAL, STATIC, dry_run_mode
from scoring.plugins.volume_restrictions import (ERR_REASON_DISK_CONFLICT, ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT,
                                                 VolumeRestrictions)
from scoring.table import NodeTable
from scoring.volumes import Volumes

DISK = (ERR_REASON_DISK_CONFLICT, False)  # Unschedulable
RWOP = (ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT, False)  # Unschedulable


def _pod(name: str, *volumes: dict[str, Any], ns: str = "default", priority: int = 0) -> PodInfo:
    spec: dict[str, Any] = {"containers": [{"name": "c"}], "priority": priority}
    if volumes:
        spec["volumes"] = [{"name": f"v{i}", **v} for i, v in enumerate(volumes)]
    return pod_from_json({"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}, "spec": spec})


def _claim(name: str, *modes: str) -> dict[str, Any]:
    return {"kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"accessModes": list(modes)}}


def _table(nodes: Sequence[str], placed: Sequence[tuple[PodInfo, str]] = (),
           claims: Sequence[dict[str, Any]] = ()) -> NodeTable:
    t = NodeTable()
    for n in nodes:
        t.set_node(node_from_json({"metadata": {"name": n}}))
    for c in claims:
        Volumes.of(t).apply("PersistentVolumeClaim", c)
    for p, n in placed:
        t.add_pod(p, n)
    return t


def _run(pod: PodInfo, table: NodeTable) -> tuple[str | None, dict[str, tuple[str, bool]]]:
    """(PreFilter's rejection, {node: (Filter reason, unresolvable)}) with one CycleState."""
    plugin = volume_restrictions.new({}, "args")
    state: CycleState = {}
    pre = plugin.prefilter(pod, table, state)
    assert pre is None or isinstance(pre, str)
    if pre is not None:
        return pre, {}  # upstream: if PreFilter fails, Filter does not run
    reasons = plugin.filter(pod, table, state) or []
    return None, {table.names[i]: (r.message, r.unresolvable) for r in reasons for i in np.flatnonzero(r.nodes)}


GCE_FOO = {"gcePersistentDisk": {"pdName": "foo"}}
GCE_BAR = {"gcePersistentDisk": {"pdName": "bar"}}
AWS_FOO = {"awsElasticBlockStore": {"volumeID": "foo"}}
AWS_BAR = {"awsElasticBlockStore": {"volumeID": "bar"}}
RBD_1 = {"rbd": {"monitors": ["a", "b"], "pool": "foo", "image": "bar", "fsType": "ext4"}}
RBD_2 = {"rbd": {"monitors": ["c", "d"], "pool": "foo", "image": "bar", "fsType": "ext4"}}
ISCSI_1 = {"iscsi": {"targetPortal": "127.0.0.1:3260", "iqn": "iqn.2016-12.server:storage.target01", "fsType": "ext4",
                     "lun": 0}}
ISCSI_2 = {"iscsi": {"targetPortal": "127.0.0.1:3260", "iqn": "iqn.2017-12.server:storage.target01", "fsType": "ext4",
                     "lun": 0}}


def _disk_cases(test: str, state: dict[str, Any], state2: dict[str, Any]) -> list[Any]:
    """Each of upstream's four disk tests: (id, pod's volumes, the node's pods' volumes, conflict)."""
    return [
        pytest.param((), [], False, id=f"{test}/nothing"),
        pytest.param((), [state], False, id=f"{test}/one state"),
        pytest.param((state,), [state], True, id=f"{test}/same state"),
        pytest.param((state2,), [state], False, id=f"{test}/different state"),
    ]


DISK_CASES = (_disk_cases("TestGCEDiskConflicts", GCE_FOO, GCE_BAR)
              + _disk_cases("TestAWSDiskConflicts", AWS_FOO, AWS_BAR)
              + _disk_cases("TestRBDDiskConflicts", RBD_1, RBD_2)
              + _disk_cases("TestISCSIDiskConflicts", ISCSI_1, ISCSI_2)
              + [pytest.param(({},), [], False,  # an emptyDir-like volume has no restriction
                              id="TestGCEDiskConflicts/pod with a volume that doesn't have restrictions")])


@pytest.mark.parametrize("volumes,existing,conflict", DISK_CASES)
def test_disk_conflicts(volumes: tuple[dict[str, Any], ...], existing: list[dict[str, Any]], conflict: bool) -> None:
    table = _table(["node"], [(_pod(f"e{i}", v), "node") for i, v in enumerate(existing)])
    assert _run(_pod("pod", *volumes), table) == (None, {"node": DISK} if conflict else {})


READ_ONLY = [
    # (id, pod's volume, node's volume, conflict): read-only on both sides is shared,
    # except for EBS, which conflicts whatever the mode
    ("gce both read-only", {"gcePersistentDisk": {"pdName": "foo", "readOnly": True}},
     {"gcePersistentDisk": {"pdName": "foo", "readOnly": True}}, False),
    ("gce pod read-only", {"gcePersistentDisk": {"pdName": "foo", "readOnly": True}}, GCE_FOO, True),
    ("gce existing read-only", GCE_FOO, {"gcePersistentDisk": {"pdName": "foo", "readOnly": True}}, True),
    ("ebs both read-only", {"awsElasticBlockStore": {"volumeID": "foo", "readOnly": True}},
     {"awsElasticBlockStore": {"volumeID": "foo", "readOnly": True}}, True),
    ("iscsi both read-only", {"iscsi": {**ISCSI_1["iscsi"], "readOnly": True}},
     {"iscsi": {**ISCSI_1["iscsi"], "readOnly": True}}, False),
    ("iscsi one read-only", {"iscsi": {**ISCSI_1["iscsi"], "readOnly": True}}, ISCSI_1, True),
    ("rbd both read-only", {"rbd": {**RBD_1["rbd"], "readOnly": True}}, {"rbd": {**RBD_1["rbd"], "readOnly": True}},
     False),
    # one monitor in common is enough (haveOverlap)
    ("rbd monitors overlap", {"rbd": {**RBD_1["rbd"], "monitors": ["b", "z"]}}, RBD_1, True),
    ("rbd other pool", {"rbd": {**RBD_1["rbd"], "pool": "other"}}, RBD_1, False),
    ("rbd other image", {"rbd": {**RBD_1["rbd"], "image": "other"}}, RBD_1, False),
    # an absent pool is the API server's default, "rbd"
    ("rbd default pool", {"rbd": {"monitors": ["a"], "image": "i"}},
     {"rbd": {"monitors": ["a"], "pool": "rbd", "image": "i"}}, True),
    ("different kinds never conflict", {"gcePersistentDisk": {"pdName": "foo"}},
     {"awsElasticBlockStore": {"volumeID": "foo"}}, False),
]


@pytest.mark.parametrize("name,volume,existing,conflict", READ_ONLY, ids=[c[0] for c in READ_ONLY])
def test_read_only_rules(name: str, volume: dict[str, Any], existing: dict[str, Any], conflict: bool) -> None:
    table = _table(["node"], [(_pod("e", existing), "node")])
    assert _run(_pod("pod", volume), table) == (None, {"node": DISK} if conflict else {})


# ---- TestAccessModeConflicts ---------------------------------------------------------------------------


def _pvc_vol(claim: str) -> dict[str, Any]:
    return {"persistentVolumeClaim": {"claimName": claim}}


POD_WITH_ONE_PVC = _pod("pod-with-one-pvc", _pvc_vol("claim-with-rwop-1"))
POD_WITH_TWO_PVCS = _pod("pod-with-two-pvcs", _pvc_vol("claim-with-rwop-1"), _pvc_vol("claim-with-rwop-2"))
POD_WITH_ONE_CONFLICT = _pod("pod-with-one-conflict", _pvc_vol("claim-with-rwop-1"))
POD_WITH_TWO_CONFLICTS = _pod("pod-with-two-conflicts", _pvc_vol("claim-with-rwop-1"), _pvc_vol("claim-with-rwop-2"))
POD_WITH_RWX = _pod("pod-with-rwx", _pvc_vol("claim-with-rwx"))
RWOP_1 = _claim("claim-with-rwop-1", "ReadWriteOncePod")
RWOP_2 = _claim("claim-with-rwop-2", "ReadWriteOncePod")
RWX = _claim("claim-with-rwx", "ReadWriteMany")

ACCESS_MODES = [
    # (upstream case, pod, pods on node-1, claims, PreFilter's rejection, Filter's verdict on node-1)
    ("nothing", _pod("empty"), [], [], None, None),
    ("failed to get PVC", POD_WITH_ONE_PVC, [], [], 'persistentvolumeclaim "claim-with-rwop-1" not found', None),
    # the RWOP claim is used by nobody: Skip
    ("no access mode conflict", POD_WITH_ONE_PVC, [POD_WITH_RWX], [RWOP_1, RWX], None, None),
    ("access mode conflict, unschedulable", POD_WITH_ONE_CONFLICT, [POD_WITH_ONE_PVC, POD_WITH_RWX], [RWOP_1, RWX],
     None, RWOP),
    ("two conflicts, unschedulable", POD_WITH_TWO_CONFLICTS, [POD_WITH_TWO_PVCS, POD_WITH_RWX], [RWOP_1, RWOP_2, RWX],
     None, RWOP),
]


@pytest.mark.parametrize("name,pod,existing,claims,pre,want", ACCESS_MODES,
                         ids=[f"TestAccessModeConflicts/{c[0]}" for c in ACCESS_MODES])
def test_access_mode_conflicts(name: str, pod: PodInfo, existing: list[PodInfo], claims: list[dict[str, Any]],
                               pre: str | None, want: tuple[str, bool] | None) -> None:
    table = _table(["node-1"], [(p, "node-1") for p in existing], claims)
    assert _run(pod, table) == (pre, {"node-1": want} if want else {})


def test_a_missing_claim_is_filters_verdict_without_prefilter() -> None:
    # a profile that does not run PreFilter: Filter reports PreFilter's error, unresolvable, everywhere
    table = _table(["n1", "n2"])
    reasons = volume_restrictions.new({}, "args").filter(POD_WITH_ONE_PVC, table, {}) or []
    assert [(r.message, r.unresolvable, r.nodes.tolist()) for r in reasons] == [
        ('persistentvolumeclaim "claim-with-rwop-1" not found', True, [True, True])]


def test_many_nodes_at_once() -> None:
    # node a holds GCE foo read-write, node b the RWOP claim's user, node c nothing:
    # a pod with GCE foo and the RWOP claim: a -> disk conflict (first), b and c -> RWOP
    table = _table(["a", "b", "c"], [(_pod("disk-holder", GCE_FOO), "a"), (POD_WITH_ONE_PVC, "b")], [RWOP_1])
    pod = _pod("new", GCE_FOO, _pvc_vol("claim-with-rwop-1"))
    assert _run(pod, table) == (None, {"a": DISK, "b": RWOP, "c": RWOP})
    # the holder leaves: the claim is free everywhere
    table.remove_pod(POD_WITH_ONE_PVC.key)
    assert _run(pod, table) == (None, {"a": DISK})


def test_claims_of_another_namespace_are_other_claims() -> None:
    table = _table(["n"], [(_pod("other-ns", _pvc_vol("claim-with-rwop-1"), ns="elsewhere"), "n")], [RWOP_1])
    assert _run(POD_WITH_ONE_CONFLICT, table) == (None, {})


def test_dry_run_modes() -> None:
    plugin = volume_restrictions.new({}, "args")
    table = _table(["a", "b"], [(POD_WITH_ONE_PVC, "b")], [RWOP_1, RWX])
    # nothing to check: the verdict never depends on the pods
    assert dry_run_mode(plugin, _pod("plain"), table, {}) == STATIC
    assert dry_run_mode(plugin, _pod("rwx", _pvc_vol("claim-with-rwx")), table, {}) == STATIC
    # a claim held on node b: the verdict everywhere depends on b's pods
    state: CycleState = {}
    assert dry_run_mode(plugin, POD_WITH_ONE_CONFLICT, table, state) == GLOBAL
    assert isinstance(plugin, VolumeRestrictions)
    assert plugin.pods_matter(POD_WITH_ONE_CONFLICT, table, state).tolist() == [False, True]


def _preempt(pod: PodInfo, table: NodeTable) -> tuple[str | None, list[str]]:
    prof = Profile(name="p", prefilters=[volume_restrictions.new({}, "args")],
                   filters=[volume_restrictions.new({}, "args")], scorers=[],
                   postfilters=[default_preemption.new({}, "args")])
    decision = prof.schedule(pod, table)
    assert decision.node is None
    post = decision.post_filter
    assert post is not None
    return post.nominated_node, ([p.key for p in post.detail.victims] if post.success else [])


def test_preempting_the_holder_of_a_read_write_once_pod_claim() -> None:
    # the claim's user is on b (low priority): evicting it frees the claim, and only on b
    # does removing victims help (upstream's RemovePod on b's pods)
    holder = _pod("holder", _pvc_vol("claim-with-rwop-1"), priority=0)
    other = _pod("other", priority=0)
    table = _table(["a", "b"], [(other, "a"), (holder, "b")], [RWOP_1])
    urgent = _pod("urgent", _pvc_vol("claim-with-rwop-1"), priority=1000)
    assert _preempt(urgent, table) == ("b", ["default/holder"])
    # the table was given back
    assert table.node_of("default/holder") == "b" and table.node_of("default/other") == "a"


def test_preempting_the_holder_of_a_disk() -> None:
    holder = _pod("holder", AWS_FOO, priority=0)
    table = _table(["a", "b"], [(holder, "a"), (_pod("x", AWS_FOO, priority=5000), "b")])
    assert _preempt(_pod("urgent", AWS_FOO, priority=1000), table) == ("a", ["default/holder"])


def test_args() -> None:
    with pytest.raises(ValueError, match="args.x: unknown field"):
        volume_restrictions.new({"x": 1}, "args")
