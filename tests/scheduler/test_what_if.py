"""`vecsched explain --what-if` (scheduler/what_if.py): which single change lets a pending
pod fit -- a smaller request, a toleration, new nodes of an existing shape, or preemption's
victims -- each answer worked out below from the nodes' numbers, then checked the other
way round: the change, applied to the user's objects, makes the pod's decision pick a
node, and the analysis leaves the node table exactly as it found it.

Every case runs the default profile (kube-scheduler's plugins) unless it says otherwise;
the snapshot is read by scheduler.snapshot as `vecsched explain --snapshot` reads it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from scheduler.config import API_VERSION, default_config, parse_config
from scheduler.explain import explain, explain_group, pick_profile
from scheduler.snapshot import load_pod, load_snapshot
from scheduler.what_if import MAX_NEW_NODES, quantity, render_what_if, siblings, what_if
from scoring.framework import Decision, Profile
from scoring.objects import CPU, PodInfo
from scoring.plugins.podgroups import PodGroups
from scoring.quantity import milli_value, value
from scoring.table import NodeTable

GROUP_LABEL = "scheduling.x-k8s.io/pod-group"


# ---- the user's objects -------------------------------------------------------------------------


def _node(name: str, cpu: str = "4", memory: str = "8Gi", *, zone: str = "", taints: tuple[str, ...] = (),
          extra: dict[str, str] | None = None, labels: dict[str, str] | None = None,
          **spec: Any) -> dict[str, Any]:
    """A Node; each taint written ``key=value:Effect`` (or ``key:Effect``)."""
    labels = {"kubernetes.io/hostname": name, **({"topology.kubernetes.io/zone": zone} if zone else {}),
              **(labels or {})}
    spec_taints = []
    for t in taints:
        kv, effect = t.rsplit(":", 1)
        key, _, val = kv.partition("=")
        spec_taints.append({"key": key, "effect": effect, **({"value": val} if val else {})})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {**spec, **({"taints": spec_taints} if spec_taints else {})},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110", **(extra or {})}}}


def _pod(name: str, cpu: str = "1", memory: str = "1Gi", *, node: str = "", owner: str = "",
         labels: dict[str, str] | None = None, priority: int | None = None, extra: dict[str, str] | None = None,
         **spec: Any) -> dict[str, Any]:
    """A Pod of one container; ``owner`` names the ReplicaSet controlling it."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    body: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {**requests, **(extra or {})}}}],
                            **spec}
    if node:
        body["nodeName"] = node
    if priority is not None:
        body["priority"] = priority
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": f"uid-{owner}", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body,
            "status": {"phase": "Running" if node else "Pending"}}


def _group(name: str, min_member: int) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "shop"}, "spec": {"minMember": min_member}}


def _config(**plugins: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "vecsched", "plugins": plugins}]}


# ---- explain, as `vecsched explain --snapshot` runs it ------------------------------------------


@dataclass
class _Explained:
    table: NodeTable
    pod: PodInfo
    profile: Profile
    pending: list[PodInfo]
    decision: Decision


def _explain(tmp: Path, items: list[dict[str, Any]], pod: dict[str, Any],
             config: dict[str, Any] | None = None) -> _Explained:
    """The snapshot read, the pod taken off any node, its group's plan tried and its own
    decision made, as scheduler/explain.py does."""
    (tmp / "s.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    (tmp / "p.json").write_text(json.dumps(pod))
    snapshot = load_snapshot(tmp / "s.json")
    info = load_pod(tmp / "p.json", priority_classes=snapshot.priority_classes)
    cfg = parse_config(config) if config is not None else default_config()
    name = pick_profile(cfg, info, None)
    profile = cfg.profile(name).build(seed=0)
    table = snapshot.table
    table.remove_pod(info.key)
    PodGroups.of(table).observe(info)
    pending = [p for p in snapshot.pods if not p.node_name and not p.terminated and not p.scheduling_gates
               and p.scheduler_name == info.scheduler_name and p.key != info.key]
    explain_group(table=table, pod=info, profile=cfg.profile(name).build(seed=0), candidates=[info, *pending])
    return _Explained(table, info, profile, pending, explain(table=table, pod=info, profile=profile))


def _analyse(tmp: Path, items: list[dict[str, Any]], pod: dict[str, Any],
             config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``"whatIf"`` JSON, checked to leave the table as it was and to be JSON."""
    e = _explain(tmp, items, pod, config)
    before = _fingerprint(e.table)
    doc = what_if(table=e.table, pod=e.pod, profile=e.profile, pending=e.pending, decision=e.decision)
    assert _fingerprint(e.table) == before
    assert json.loads(json.dumps(doc)) == doc
    return doc


def _fingerprint(table: NodeTable) -> Any:
    """Everything a later decision reads of the table: nodes, their resources, labels and
    taints, the pods on them, and the PodGroups' memory of recent failures."""
    n = table.n
    groups = table.extensions.get(PodGroups.KEY)
    memory = None
    if isinstance(groups, PodGroups):
        memory = (dict(groups.backoff_until), dict(groups.permitted_until), dict(groups.last_failure),
                  {k: set(v) for k, v in groups.placed.items()})
    return (n, list(table.names), dict(table.index), table.allocatable[:n].tolist(), table.requested[:n].tolist(),
            table.nonzero[:n].tolist(), table.unschedulable[:n].tolist(), table.taint_pos[:n].tolist(),
            table.port_counts[:n].tolist(), {k: col[:n].tolist() for k, col in table.labels.codes.items()},
            {k: (p.node, p.vector.tolist()) for k, p in table.pods.items()}, memory)


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The answers in brief: resource -> (max fitting, nodes); taint -> nodes; per shape
    (like, existing, fits, pods, placed, nodes needed, capped); preemption (node, victims,
    message)."""
    return {
        "requests": {r["resource"]: (r["maxFitting"], r["nodes"]) for r in doc["requests"]},
        "taints": {f"{t['key']}={t['value']}:{t['effect']}": t["nodes"] for t in doc["taints"]},
        "nodes": [(s["like"], s["existing"], s["fits"], s["pods"], s["placed"], s["nodesNeeded"], s["capped"])
                  for s in doc["nodes"]],
        "preemption": (doc["preemption"]["node"], doc["preemption"]["victims"], doc["preemption"]["message"]),
    }


BACKOFF = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
           "profiles": [{"schedulerName": "vecsched", "pluginConfig": [
               {"name": "Coscheduling", "args": {"podGroupBackoffSeconds": 60}}]}]}
SPREAD = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"app": "web"}}}]
ANTI = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}
NOT_HELPFUL_1 = "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
NO_VICTIMS_2 = "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."

# (items, the pod, config or None, the answers in brief)
CASES = [
    pytest.param(
        [_node("a"), _node("b"), _pod("x", "3", node="a"), _pod("y", "2500m", node="b")],
        _pod("web", "2"), None,
        {"requests": {"cpu": ("1500m", ["b"]), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 2, True, 1, 1, 1, False)], "preemption": (None, [], NO_VICTIMS_2)},
        # cpu free: a 4000 - 3000 = 1000, b 4000 - 2500 = 1500; below the 2000 asked: 1500 fits
        # b (and 1000 both, but 1500 is larger). memory: 7Gi free on each, nothing below 1Gi to try.
        # a and b differ only in kubernetes.io/hostname: one shape, like a (first by name), 2 of
        # them; an empty one takes the pod: 1 node. Every pod has priority 0: no victims.
        id="lower-cpu"),
    pytest.param(
        [_node("a"), _pod("x", "1", "4608Mi", node="a")],
        _pod("web", "1", "4Gi"), None,
        {"requests": {"cpu": (None, []), "memory": ("3584Mi", ["a"])}, "taints": {},
         "nodes": [("a", 1, True, 1, 1, 1, False)],
         "preemption": (None, [], "preemption: 0/1 nodes are available: 1 No preemption victims found for "
                                  "incoming pod.")},
        # memory free 8192Mi - 4608Mi = 3584Mi (3.5Gi, printed with the largest exact binary
        # suffix) < 4Gi; cpu 3000 free, not short: nothing below 1000 to try
        id="lower-memory"),
    pytest.param(
        [_node("gpu-a", taints=("dedicated=gpu:NoSchedule",)),
         _node("spot-a", taints=("spot=true:NoExecute",)),
         _node("pref-a", taints=("lowprio:PreferNoSchedule",)),
         _node("plain-a", cpu="1", memory="2Gi"),
         _pod("s", "4", node="spot-a", tolerations=[{"key": "spot", "operator": "Exists"}]),
         _pod("p", "4", node="pref-a")],
        _pod("web", "2"), None,
        {"requests": {"cpu": ("1", ["plain-a"]), "memory": (None, [])},
         "taints": {"dedicated=gpu:NoSchedule": ["gpu-a"]},
         "nodes": [("gpu-a", 1, False, 1, 0, None, False), ("plain-a", 1, False, 1, 0, None, False),
                   ("pref-a", 1, True, 1, 1, 1, False), ("spot-a", 1, False, 1, 0, None, False)],
         "preemption": (None, [], "preemption: 0/4 nodes are available: 1 No preemption victims found for "
                                  "incoming pod, 3 Preemption is not helpful for scheduling.")},
        # cpu free: gpu-a 4000 (not short), spot-a 0, pref-a 0, plain-a 1000 -> 1000 fits plain-a.
        # Tolerating dedicated=gpu frees the empty gpu-a; tolerating spot=true leaves spot-a full;
        # a PreferNoSchedule taint never filtered. Every shape once, by name: new gpu-a and
        # spot-a nodes keep their taints, a new plain-a has 1 cpu < 2, a new pref-a takes it.
        # Preemption: untolerated taints and a request above the node's allocatable (plain-a,
        # 2 > 1 cpu) are unresolvable (not helpful); pref-a holds only a pod of equal priority
        # (no victims).
        id="taints"),
    pytest.param(
        [_node("big-1", "16", zone="z1", taints=("dedicated=batch:NoSchedule",)),
         _node("small-1", zone="z1"), _node("small-2", zone="z2"),
         _pod("x1", "3", node="small-1"), _pod("x2", "3", node="small-2"),
         *(_pod(f"web-{i}", "2", owner="web") for i in range(1, 5)),
         _pod("web-odd", "1", owner="web"), _pod("api-0", "2", owner="api")],
        _pod("web-0", "2", owner="web"), None,
        {"requests": {"cpu": ("1", ["small-1", "small-2"]), "memory": (None, [])},
         "taints": {"dedicated=batch:NoSchedule": ["big-1"]},
         "nodes": [("big-1", 1, False, 5, 0, None, False), ("small-1", 1, True, 5, 5, 3, False),
                   ("small-2", 1, True, 5, 5, 3, False)],
         "preemption": (None, [], "preemption: 0/3 nodes are available: 1 Preemption is not helpful for "
                                  "scheduling, 2 No preemption victims found for incoming pod.")},
        # siblings: web-1..web-4 (same ReplicaSet, same requests); web-odd asks for 1 cpu and
        # api-0 has another owner. Five pods of 2 cpu: an empty small node (4 cpu) takes two,
        # the small nodes have 1 free each -> ceil(5 / 2) = 3 new nodes, in zone z1 or z2.
        # A new big-1 keeps its taint. Lowering cpu to 1000 fits the small nodes' 1 free cpu.
        id="siblings"),
    pytest.param(
        [_node("n1", "8"), _node("n2", "8"),
         _pod("w1", node="n1", labels={"app": "web"}), _pod("w2", node="n2", labels={"app": "web"}),
         *(_pod(f"web-{i}", owner="web", labels={"app": "web"}, affinity=ANTI) for i in (1, 2))],
        _pod("web-0", owner="web", labels={"app": "web"}, affinity=ANTI), None,
        {"requests": {"cpu": (None, []), "memory": (None, [])}, "taints": {},
         "nodes": [("n1", 2, True, 3, 3, 3, False)],
         "preemption": (None, [], "preemption: 0/2 nodes are available: 2 No preemption victims found for "
                                  "incoming pod.")},
        # required anti-affinity on kubernetes.io/hostname: one app=web pod per node, whatever
        # the room (7 cpu free on each); n1 and n2 hold one already. The pod and its two
        # siblings need a new node each: 3. No request is short: lowering one never helps.
        id="anti-affinity-one-per-node"),
    pytest.param(
        [_node("a", "2", zone="z1"), _node("b", "2", zone="z2"),
         _pod("web-a", "2", node="a", labels={"app": "web"}), _pod("web-b", "2", node="b", labels={"app": "web"}),
         *(_pod(f"web-{i}", "2", owner="web", labels={"app": "web"}, topologySpreadConstraints=SPREAD)
           for i in (1, 2))],
        _pod("web-0", "2", owner="web", labels={"app": "web"}, topologySpreadConstraints=SPREAD), None,
        {"requests": {"cpu": (None, []), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 1, True, 3, 1, 1, False), ("b", 1, True, 3, 1, 1, False)],
         "preemption": (None, [], NO_VICTIMS_2)},
        # zones z1 and z2 hold one app=web pod each, both nodes full. A new z1 node takes web-0
        # (z1 2, z2 1: skew 1 <= maxSkew 1); web-1 on a second new z1 node would make z1 3:
        # skew 2 > 1 -> it fits no new node of that shape: 1 of 3 placed with 1 node, not capped.
        # The same in z2. cpu free is 0 everywhere: nothing from 1 to 1999 to try.
        id="spread-stops-short"),
    pytest.param(
        [_node("a", unschedulable=True, taints=("node.kubernetes.io/unschedulable:NoSchedule",),
               labels={"example.com/node-id": "a", "pool": "web"})],
        _pod("web", "1"), None,
        {"requests": {"cpu": (None, []), "memory": (None, [])},
         "taints": {"node.kubernetes.io/unschedulable=:NoSchedule": ["a"]},
         "nodes": [("a", 1, True, 1, 1, 1, False)], "preemption": (None, [], NOT_HELPFUL_1)},
        # a cordoned node, with the taint the node controller gives it. Room is not short (4
        # cpu free). Tolerating that taint is what NodeUnschedulable and TaintToleration
        # accept (a DaemonSet's way). A new node of a's shape is schedulable and carries no
        # condition taint, only the label pool=web; example.com/node-id, whose value is the
        # node's name, is its own. A cordoned node is unresolvable: preemption cannot help.
        id="cordoned"),
    pytest.param(
        [_node("g1", extra={"nvidia.com/gpu": "4"}), _pod("t", extra={"nvidia.com/gpu": "3"}, node="g1")],
        _pod("train", extra={"nvidia.com/gpu": "2"}), None,
        {"requests": {"cpu": (None, []), "memory": (None, []), "nvidia.com/gpu": ("1", ["g1"])}, "taints": {},
         "nodes": [("g1", 1, True, 1, 1, 1, False)],
         "preemption": (None, [], "preemption: 0/1 nodes are available: 1 No preemption victims found for "
                                  "incoming pod.")},
        # 4 - 3 = 1 GPU free < 2: one GPU fits g1
        id="extended-resource"),
    pytest.param(
        [_node("a"), _node("b", taints=("dedicated=gpu:NoSchedule",))],
        _pod("dongle", extra={"example.com/dongle": "1"}), None,
        {"requests": {"cpu": (None, []), "example.com/dongle": (None, []), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 1, False, 1, 0, None, False), ("b", 1, False, 1, 0, None, False)],
         "preemption": (None, [], "preemption: 0/2 nodes are available: 2 Preemption is not helpful for "
                                  "scheduling.")},
        # no node has example.com/dongle: 0 free everywhere, no amount from 1 up to try, no
        # shape to copy that has it, and tolerating b's taint leaves b without a dongle. A
        # request above a node's allocatable is unresolvable, as an untolerated taint is:
        # preemption cannot help on either node
        id="nothing-helps"),
    pytest.param(
        [_node("a"), _pod("low", "3", node="a", priority=0)],
        _pod("urgent", "2", priority=1000), None,
        {"requests": {"cpu": ("1", ["a"]), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 1, True, 1, 1, 1, False)], "preemption": ("a", ["shop/low"], "")},
        # 1 cpu free on a; evicting low (priority 0 < 1000) frees 4: DefaultPreemption nominates a
        id="preemption-victims"),
    pytest.param(
        [_node("a"), _pod("low", "3", node="a", priority=0)],
        _pod("urgent", "2", priority=1000), _config(multiPoint={"disabled": [{"name": "DefaultPreemption"}]}),
        {"requests": {"cpu": ("1", ["a"]), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 1, True, 1, 1, 1, False)],
         "preemption": (None, [], "profile vecsched does not preempt (DefaultPreemption is not enabled)")},
        # the same cluster, with a profile that has no DefaultPreemption
        id="profile-without-preemption"),
    pytest.param(
        [_group("train", 2), _node("a"), _pod("x", "3", node="a"),
         _pod("train-1", "2", owner="train", labels={GROUP_LABEL: "train"})],
        _pod("train-0", "2", owner="train", labels={GROUP_LABEL: "train"}), None,
        {"requests": {"cpu": ("1", ["a"]), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 1, True, 2, 2, 1, False)],
         "preemption": (None, [], "preemption: 0/1 nodes are available: 1 No preemption victims found for "
                                  "incoming pod.")},
        # a gang of two 2-cpu pods; 1 cpu free on a. The pod's decision rejects the group in
        # Coscheduling's PostFilter (which may back it off); the changes are judged without
        # that backoff: 1 cpu fits a, and one new 4-cpu node takes both members
        id="gang-member"),
    pytest.param(
        [_group("train", 2), _node("a"), _pod("x", "3", node="a"),
         _pod("train-1", "2", owner="train", labels={GROUP_LABEL: "train"})],
        _pod("train-0", "2", owner="train", labels={GROUP_LABEL: "train"}), BACKOFF,
        {"requests": {"cpu": ("1", ["a"]), "memory": (None, [])}, "taints": {},
         "nodes": [("a", 1, True, 2, 2, 1, False)],
         "preemption": (None, [], "preemption: 0/1 nodes are available: 1 No preemption victims found for "
                                  "incoming pod.")},
        # the same, with podGroupBackoffSeconds: the rejection backs the group off for 60 s,
        # which would make PreFilter refuse every change ("failed recently"); the answers
        # are those above
        id="gang-member-backed-off"),
]


def _case(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The items and the pod of the case with id ``name``."""
    case = next(c for c in CASES if c.id == name)
    return cast(list[dict[str, Any]], case.values[0]), cast(dict[str, Any], case.values[1])


@pytest.mark.parametrize(("items", "pod", "config", "expected"), CASES)
def test_each_answer(tmp_path: Path, items: list[dict[str, Any]], pod: dict[str, Any], config: dict[str, Any] | None,
                     expected: dict[str, Any]) -> None:
    doc = _analyse(tmp_path, items, pod, config)
    assert (doc["fits"], doc["node"], doc["nodeShapesOmitted"]) == (False, None, 0)
    assert _summary(doc) == expected
    assert doc["preemption"]["enabled"] is ("does not preempt" not in doc["preemption"]["message"])


def test_a_group_backoff_is_set_aside_and_restored(tmp_path: Path) -> None:
    items, pod = _case("gang-member-backed-off")
    e = _explain(tmp_path, items, pod, BACKOFF)
    groups = PodGroups.of(e.table)
    # the pod's decision rejected the group in PostFilter and backed it off
    assert groups.backed_off("shop/train")
    doc = what_if(table=e.table, pod=e.pod, profile=e.profile, pending=e.pending, decision=e.decision)
    assert doc["requests"][0]["maxFitting"] == "1" and doc["nodes"][0]["fits"]
    assert groups.backed_off("shop/train")  # as the decision left it


def test_a_pod_that_fits_gets_no_other_answer(tmp_path: Path) -> None:
    doc = _analyse(tmp_path, [_node("a"), _pod("x", "3", node="a")], _pod("web", "1"))
    # 4 - 3 = 1 cpu free: the pod fits a as it is
    assert doc == {"fits": True, "node": "a", "requests": None, "taints": None, "nodes": None,
                   "nodeShapesOmitted": None, "preemption": None}
    assert render_what_if(doc) == ["WHAT IF  the pod fits as it is (on a): nothing to change"]


def test_the_count_of_new_nodes_is_capped(tmp_path: Path) -> None:
    # one pod per 1-cpu node; the pod and 1,001 siblings make 1,002 pods: MAX_NEW_NODES (1,000)
    # new nodes place 1,000 of them and the count stops there, capped
    siblings = [_pod(f"web-{i:04}", owner="web") for i in range(1, 1002)]
    doc = _analyse(tmp_path, [_node("tiny", "1"), _pod("x", node="tiny"), *siblings], _pod("web-0000", owner="web"))
    assert _summary(doc)["nodes"] == [("tiny", 1, True, 1002, MAX_NEW_NODES, MAX_NEW_NODES, True)]
    assert "1000+ (capped)" in render_what_if(doc)[-3]


def test_the_table(tmp_path: Path) -> None:
    lines = render_what_if(_analyse(tmp_path, *_case("taints")))
    assert lines == [
        "WHAT IF  each change below alone would let the pod fit",
        "",
        "REQUEST  NOW  AT MOST  FITS ON",
        "cpu      2    1        plain-a",
        "memory   1Gi  -        (lowering it alone does not help)",
        "",
        "TOLERATE                  FITS ON",
        "dedicated=gpu:NoSchedule  gpu-a",
        "",
        "NEW NODE LIKE  EXISTING  FITS  NODES NEEDED  PODS PLACED  ALLOCATABLE                TAINTS"
        "                    LABELS",
        "gpu-a          1         no    -             0/1          cpu=4,memory=8Gi,pods=110  dedicated=gpu:NoSchedule  -",
        "plain-a        1         no    -             0/1          cpu=1,memory=2Gi,pods=110  -                         -",
        "pref-a         1         yes   1             1/1          cpu=4,memory=8Gi,pods=110  lowprio:PreferNoSchedule  -",
        "spot-a         1         no    -             0/1          cpu=4,memory=8Gi,pods=110  spot=true:NoExecute       -",
        "",
        "PREEMPT  preemption: 0/4 nodes are available: 1 No preemption victims found for incoming pod, "
        "3 Preemption is not helpful for scheduling.",
    ]


def test_the_table_shows_what_tells_shapes_apart() -> None:
    # Two shapes sharing kubernetes.io/os=linux and hugepages-2Mi=0: the table drops both (the
    # JSON keeps them) and keeps the zone, which differs, and the GPU count, which is not zero.
    def shape(like: str, zone: str, gpus: str) -> dict[str, Any]:
        return {"like": like, "existing": 2, "fits": False, "nodesNeeded": None, "capped": False, "placed": 0,
                "pods": 1, "allocatable": {"cpu": "8", "hugepages-2Mi": "0", "nvidia.com/gpu": gpus},
                "labels": {"kubernetes.io/os": "linux", "topology.kubernetes.io/zone": zone}, "taints": []}
    doc = {"fits": False, "node": None, "requests": [], "taints": [], "nodeShapesOmitted": 0,
           "nodes": [shape("a-1", "a", "0"), shape("b-1", "b", "4")],
           "preemption": {"enabled": False, "node": None, "victims": [], "message": "no preemption"}}
    assert render_what_if(doc)[6:9] == [
        "NEW NODE LIKE  EXISTING  FITS  NODES NEEDED  PODS PLACED  ALLOCATABLE             TAINTS  LABELS",
        "a-1            2         no    -             0/1          cpu=8                   -       "
        "topology.kubernetes.io/zone=a",
        "b-1            2         no    -             0/1          cpu=8,nvidia.com/gpu=4  -       "
        "topology.kubernetes.io/zone=b",
    ]


def test_the_table_names_the_preemption_plan(tmp_path: Path) -> None:
    lines = render_what_if(_analyse(tmp_path, *_case("preemption-victims")))
    assert lines[-1] == "PREEMPT  nominate a, evicting shop/low"


def test_the_json_of_shapes_and_taints(tmp_path: Path) -> None:
    doc = _analyse(tmp_path, *_case("siblings"))
    assert doc["taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule",
                              "toleration": {"key": "dedicated", "operator": "Equal", "value": "batch",
                                             "effect": "NoSchedule"},
                              "nodes": ["big-1"]}]
    # the zone label is the shape's; kubernetes.io/hostname is each node's own
    assert doc["nodes"][1] == {"like": "small-1", "existing": 1,
                               "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                               "labels": {"topology.kubernetes.io/zone": "z1"}, "taints": [], "fits": True,
                               "pods": 5, "placed": 5, "nodesNeeded": 3, "capped": False}
    # a cordoned node's shape: no condition taint, and no label whose value is the node's name
    cordoned = _analyse(tmp_path, *_case("cordoned"))["nodes"][0]
    assert (cordoned["labels"], cordoned["taints"]) == ({"pool": "web"}, [])


@pytest.mark.parametrize(
    ("resource", "amount", "shown"),
    [
        pytest.param(CPU, 3500, "3500m", id="millicores"),
        pytest.param(CPU, 4000, "4", id="whole-cores"),
        pytest.param("memory", 6 * 2**30, "6Gi", id="gibibytes"),
        pytest.param("memory", 3584 * 2**20, "3584Mi", id="largest-exact-binary-suffix"),
        pytest.param("memory", 1_500_000_000, "1500M", id="decimal-when-no-binary-suffix-divides"),
        pytest.param("ephemeral-storage", 1234567, "1234567", id="plain-bytes"),
        pytest.param("hugepages-2Mi", 2**21, "2Mi", id="hugepages-are-bytes"),
        pytest.param("nvidia.com/gpu", 3, "3", id="extended-resource-count"),
    ],
)
def test_quantities(resource: str, amount: int, shown: str) -> None:
    assert quantity(resource, amount) == shown
    # and the quantity reads back as the same amount
    assert (milli_value(shown) if resource == CPU else value(shown)) == amount


# ---- the property: each suggested change, applied, lets the pod be placed ----------------------------


def _selected(tmp: Path, items: list[dict[str, Any]], pod: dict[str, Any], config: dict[str, Any] | None) -> str | None:
    return _explain(tmp, items, pod, config).decision.node


def _with_request(pod: dict[str, Any], resource: str, amount: str) -> dict[str, Any]:
    out = copy.deepcopy(pod)
    out["spec"]["containers"][0]["resources"]["requests"][resource] = amount
    return out


def _one_more(resource: str, shown: str) -> str:
    """The next amount up: 1m of CPU, one unit of anything else."""
    amount = milli_value(shown) if resource == CPU else value(shown)
    return quantity(resource, amount + 1)


def _placed_in_turn(tmp: Path, items: list[dict[str, Any]], pod: dict[str, Any], config: dict[str, Any] | None) -> int:
    """How many of the pod and its siblings the profile places one after another, each
    assumed on its node before the next is decided, until one fits nowhere."""
    e = _explain(tmp, items, pod, config)
    if e.decision.node is None:
        return 0
    e.table.add_pod(e.decision.assumed_pod(), e.decision.node)
    placed = 1
    for p in siblings(e.pod, e.pending):
        d = e.profile.schedule(p, e.table, post_filter=False)
        if d.node is None:
            break
        e.table.add_pod(d.assumed_pod(), d.node)
        placed += 1
    return placed


def _new_nodes(shape: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` Nodes made from what the answer says of a shape: its allocatable, labels and
    taints, each with a name (and hostname label) of its own."""
    return [{"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": f"new-{shape['like']}-{k}",
                          "labels": {**shape["labels"], "kubernetes.io/hostname": f"new-{shape['like']}-{k}"}},
             "spec": {"taints": [{k: v for k, v in t.items() if v} for t in shape["taints"]]},
             "status": {"allocatable": shape["allocatable"]}} for k in range(count)]


@pytest.mark.parametrize(("items", "pod", "config", "expected"), CASES)
def test_every_suggested_change_places_the_pod(tmp_path: Path, items: list[dict[str, Any]], pod: dict[str, Any],
                                               config: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    doc = _analyse(tmp_path, items, pod, config)
    assert _selected(tmp_path, items, pod, config) is None  # as it is, the pod fits nowhere
    for r in doc["requests"]:
        if r["maxFitting"] is None:
            continue
        # the largest amount that fits: it places the pod on one of the nodes named, one more does not
        assert _selected(tmp_path, items, _with_request(pod, r["resource"], r["maxFitting"]), config) in r["nodes"]
        assert _selected(tmp_path, items, _with_request(pod, r["resource"], _one_more(r["resource"], r["maxFitting"])),
                         config) is None
    for t in doc["taints"]:
        tolerant = copy.deepcopy(pod)
        tolerant["spec"].setdefault("tolerations", []).append(t["toleration"])
        assert _selected(tmp_path, items, tolerant, config) in t["nodes"]
    for s in doc["nodes"]:
        # as many new nodes as the count says (one, where the pod fits none)
        added = _new_nodes(s, s["nodesNeeded"] or 1)
        chosen = _selected(tmp_path, items + added, pod, config)
        if not s["fits"]:
            assert chosen is None
            continue
        assert chosen in {n["metadata"]["name"] for n in added}
        # those nodes place as many of the pod and its siblings as the count says; one fewer, fewer
        assert _placed_in_turn(tmp_path, items + added, pod, config) == s["placed"]
        assert _placed_in_turn(tmp_path, items + added[:-1], pod, config) < s["placed"]
    victims = set(doc["preemption"]["victims"])
    if doc["preemption"]["node"] is not None:
        keep = [i for i in items if f"{i['metadata'].get('namespace')}/{i['metadata']['name']}" not in victims]
        assert _selected(tmp_path, keep, pod, config) == doc["preemption"]["node"]
