"""Cluster snapshots from files: what ``explain`` and the strategy lab read.

A snapshot is a Kubernetes ``List`` of Nodes and Pods, JSON or YAML, exactly
as ``kubectl get nodes,pods -A -o json`` writes it (multi-document YAML and
``NodeList``/``PodList`` documents are accepted too). Pods with
``spec.nodeName`` occupy that node unless they are Succeeded or Failed.
Namespaces (their labels serve pod-affinity ``namespaceSelector``s) and
Services, ReplicaSets, StatefulSets and ReplicationControllers (their
selectors give PodTopologySpread its default constraints) may be included
too, as ``kubectl get nodes,pods,namespaces,services,rs,sts -A -o json``
writes them.

What preemption reads may be included as well (``kubectl get
nodes,pods,pdb,priorityclasses -A -o json``): PodDisruptionBudgets, and
PriorityClasses, from which a Pod gets its priority as the API server's
Priority admission would give it (``scoring.priorities``). A pending Pod with
``status.nominatedNodeName`` is a nominated pod: it holds room on that node
for the pods it outranks.

Gang scheduling reads scheduler-plugins' PodGroups (``scheduling.x-k8s.io/v1alpha1``,
``kubectl get nodes,pods,podgroups -A -o json``): they go into the table's
``PodGroups`` extension, and every pod of the snapshot -- pending, placed or
finished -- is one of its group's pods, as the API server's pod list would have it
for Coscheduling.

The volume plugins read the cluster's storage objects (``kubectl get
nodes,pods,pv,pvc,storageclasses,csinodes,csidrivers,csistoragecapacities -A -o json``):
PersistentVolumes, PersistentVolumeClaims, StorageClasses, CSINodes, CSIDrivers and
CSIStorageCapacities go into the table's ``Volumes`` extension, as the live scheduler's
informers put them there. Every error names the file, the object and the field.

Files are read through ``scoring.safe_input``: at most ``MAX_SNAPSHOT_BYTES``, nested at most
100 levels, and every object checked for string keys, int64 integers and finite numbers
before its reader looks at a field, so that anything wrong is one line naming the file, the
object and the field.

``snapshot_from_objects`` builds the same snapshot from objects already in memory -- as
``vecsched explain POD`` lists them from the API server (``scheduler.live_cluster``) -- with
the same checks, each error naming where the object came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from scoring.nominations import Nominations, status_nominated_node
from scoring.objects import (OBJECT_CHARS, NodeInfo, ObjectError, PodInfo, checked, node_from_json, object_ref,
                             pod_from_json)
from scoring.plugins.workloads import Namespaces, Workloads
from scoring.plugins.budgets import Budgets, budget_from_json
from scoring.plugins.podgroups import PodGroups, podgroup_from_json
from scoring.priorities import PriorityClasses, priority_class_from_json
from scoring.safe_input import InputError, clip, loads_json, loads_yaml_all, one_line, quote, read_text
from scoring.table import NodeTable
from scoring.volumes import (KINDS as STORAGE_KINDS, Volumes, capacity_from_json, csidriver_from_json,
                             csinode_from_json, pv_from_json, pvc_from_json, storage_class_from_json)

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "SnapshotError",
    "Snapshot",
    "read_documents",
    "read_objects",
    "load_snapshot",
    "snapshot_from_objects",
    "load_pod",
    "pod_from_object",
]


_CONTEXT_KINDS: Final = ("Namespace", "Service", "ReplicaSet", "StatefulSet", "ReplicationController")
_KINDS: Final = ("Node", "Pod", *_CONTEXT_KINDS, "PodDisruptionBudget", "PriorityClass", "PodGroup", *STORAGE_KINDS)
_PODGROUP_API: Final = "scheduling.x-k8s.io/v1alpha1"
MAX_SNAPSHOT_BYTES: Final = 1 << 30
"""Largest snapshot file read: 1 GiB. ``kubectl get nodes,pods -A -o json`` of a 5,000-node
cluster at its 150,000-pod limit is about 1.5 KiB per pod and 5 KiB per node, some 250 MiB;
four times that leaves room for the other kinds a snapshot may hold while still refusing a
file that would exhaust memory before a single object was checked. Each object inside it is
still held to the API server's limits (nesting, int64, string keys)."""


class SnapshotError(ValueError):
    """An unreadable or invalid snapshot or manifest file; the message names file, object and field."""


# ---- files -------------------------------------------------------------------------------------


def read_documents(path: str | Path, *, max_bytes: int = MAX_SNAPSHOT_BYTES, values: bool = True) -> list[Any]:
    """All documents of a JSON or (multi-document) YAML file, each within ``scoring.safe_input``'s
    limits: nesting and, with ``values``, int64 integers, string keys and finite numbers (without,
    the caller checks each object it reads, so that an error can name the object)."""
    p = Path(path)
    try:
        text = read_text(p, max_bytes=max_bytes)
    except OSError as e:
        raise SnapshotError(f"{p}: cannot read: {e.strerror or type(e).__name__}") from None
    except InputError as e:
        raise SnapshotError(f"{p}: {e}") from None
    kind = "JSON" if p.suffix == ".json" else "YAML"
    try:
        if p.suffix == ".json":
            return [loads_json(text, max_bytes=None, values=values)]
        return loads_yaml_all(text, max_bytes=None, values=values)
    except InputError as e:
        raise SnapshotError(f"{p}: {e}") from None
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise SnapshotError(f"{p}: not valid {kind}: {clip(str(e))}") from None


def _flatten(doc: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(doc, Mapping):
        raise SnapshotError(f"{where}: expected a Kubernetes object or List, got {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List"):
        items = doc.get("items")
        if not isinstance(items, list):
            raise SnapshotError(f"{where}: items: expected a list")
        item_kind = kind[: -len("List")] or None
        for i, item in enumerate(items):
            if isinstance(item, Mapping) and "kind" not in item and item_kind:
                item = {**item, "kind": item_kind}
            yield from _flatten(item, f"{where}: items[{i}]")
        return
    yield where, doc


def read_objects(path: str | Path, *, values: bool = True) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, object) for every object in the file, Lists flattened; ``values`` as for
    ``read_documents``."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for d, doc in enumerate(read_documents(path, values=values)):
        out.extend(_flatten(doc, f"{path}" if d == 0 else f"{path}: document {d}"))
    return out


# ---- snapshots ---------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """A snapshot read into a NodeTable: its nodes, the pods that occupy them, the
    PodDisruptionBudgets, nominated pods, PodGroups (with every pod as a member) and
    storage objects as table extensions, and the PriorityClasses that resolve the
    priority of a pod to be placed in it. ``pods`` is every pod of the file, pending and
    finished ones too."""

    table: NodeTable
    nodes: list[NodeInfo]
    pods: list[PodInfo]
    priority_classes: PriorityClasses


def _pod_ref(obj: Mapping[str, Any]) -> str:
    return _ref("Pod", obj)


def _ref(kind: str, obj: Mapping[str, Any]) -> str:
    """``kind ns/name`` as errors name an object (``pod shop/web``, ``PersistentVolume pv-1``)."""
    return object_ref(kind.lower() if kind in ("Pod", "Node") else kind, obj)


def _priority_classes(objs: list[tuple[str, Mapping[str, Any]]]) -> PriorityClasses:
    classes = PriorityClasses()
    for where, obj in objs:
        try:
            classes.add(priority_class_from_json(obj))
        except ObjectError as e:
            raise SnapshotError(f"{where}: {e}") from None
    return classes


def _budgets(table: NodeTable, objs: list[tuple[str, Mapping[str, Any]]]) -> None:
    """The PodDisruptionBudgets, into the table extension preemption reads."""
    for where, obj in objs:
        try:
            b = budget_from_json(obj)
        except ObjectError as e:
            raise SnapshotError(f"{where}: {e}") from None
        budgets = Budgets.of(table)
        if (b.namespace, b.name) in budgets.items:
            raise SnapshotError(f"{where}: PodDisruptionBudget {_short(f'{b.namespace}/{b.name}')}: metadata.name: "
                                "duplicate PodDisruptionBudget")
        budgets.apply(obj)


def _podgroups(table: NodeTable, objs: list[tuple[str, Mapping[str, Any]]]) -> None:
    """The PodGroups, into the table extension Coscheduling reads. Another API's PodGroup
    (Volcano's has the same kind) is refused rather than read as scheduler-plugins' one."""
    groups = PodGroups.of(table)
    for where, obj in objs:
        try:
            pg = podgroup_from_json(obj)
        except ObjectError as e:
            raise SnapshotError(f"{where}: {e}") from None
        api = obj.get("apiVersion")
        if api is not None and api != _PODGROUP_API:
            raise SnapshotError(f"{where}: PodGroup {_short(pg.key)}: apiVersion: expected {_PODGROUP_API}, got {quote(api)}")
        if not pg.name:
            raise SnapshotError(f"{where}: PodGroup {_short(pg.key)}: metadata.name: required")
        if groups.group(pg.key) is not None:
            raise SnapshotError(f"{where}: PodGroup {_short(pg.key)}: metadata.name: duplicate PodGroup")
        groups.apply(obj)


def _storage_key(kind: str, obj: Mapping[str, Any], volumes: Volumes) -> tuple[str, bool]:
    """The object's name (``ns/name`` when namespaced), checked field by field as ``Volumes``
    reads it, and whether the snapshot held one of that kind and name already."""
    if kind == "PersistentVolume":
        pv = pv_from_json(obj)
        return pv.name, volumes.pv(pv.name) is not None
    if kind == "PersistentVolumeClaim":
        claim = pvc_from_json(obj)
        return claim.key, volumes.claim(claim.namespace, claim.name) is not None
    if kind == "StorageClass":
        sc = storage_class_from_json(obj)
        return sc.name, volumes.storage_class(sc.name) is not None
    if kind == "CSINode":
        node = csinode_from_json(obj)
        return node.name, volumes.csinode(node.name) is not None
    if kind == "CSIDriver":
        driver = csidriver_from_json(obj)
        return driver.name, volumes.driver(driver.name) is not None
    cap = capacity_from_json(obj)
    return f"{cap.namespace}/{cap.name}", any((c.namespace, c.name) == (cap.namespace, cap.name)
                                              for c in volumes.capacities())


def _storage(table: NodeTable, by_kind: Mapping[str, list[tuple[str, Mapping[str, Any]]]]) -> None:
    """The storage objects, into the table extension the volume plugins read."""
    volumes = Volumes.of(table)
    for kind in STORAGE_KINDS:
        for where, obj in by_kind[kind]:
            try:
                key, duplicate = _storage_key(kind, obj, volumes)
                if duplicate:
                    raise SnapshotError(f"{where}: {kind} {_short(key)}: metadata.name: duplicate {kind}")
                volumes.apply(kind, obj)
            except ObjectError as e:
                raise SnapshotError(f"{where}: {e}") from None


_KIND_CHARS: Final = 16
"""Longest kind quoted after the list of every kind a snapshot holds (the list alone is 220
characters): longer ones, and values that are not strings, get a shorter sentence, so that the
line stays within 300 characters."""


def _short(name: str) -> str:
    """An object's name as an error shows it: cut to its start and end when long."""
    return one_line(name, OBJECT_CHARS)


def _unknown_kind(kind: Any) -> str:
    if isinstance(kind, str) and len(repr(kind)) <= _KIND_CHARS + 2:
        return f"expected {', '.join(_KINDS)}, got {kind!r}"
    return f"expected one of the {len(_KINDS)} kinds a snapshot holds (Node, Pod, ...), got {quote(kind)}"


def load_snapshot(path: str | Path) -> Snapshot:
    """The snapshot in ``path``, every object checked."""
    return snapshot_from_objects(read_objects(path, values=False), source=str(path))


def snapshot_from_objects(objects: Iterable[tuple[str, Mapping[str, Any]]], *, source: str) -> Snapshot:
    """A snapshot of objects already in memory -- (where, object) pairs, each object with its
    ``kind`` -- checked as a file's are; ``where`` starts each error about the object, ``source``
    each error about the whole (a duplicate node)."""
    by_kind: dict[str, list[tuple[str, Mapping[str, Any]]]] = {k: [] for k in _KINDS}
    for where, obj in objects:
        kind = obj.get("kind")
        if not isinstance(kind, str) or kind not in by_kind:
            raise SnapshotError(f"{where}: kind: {_unknown_kind(kind)}")
        try:
            checked(_ref(kind, obj), obj)  # keys, integers and numbers, naming the object
        except ObjectError as e:
            raise SnapshotError(f"{where}: {e}") from None
        by_kind[kind].append((where, obj))
    # PriorityClasses first: kubectl lists them after the pods whose priority they give.
    classes = _priority_classes(by_kind["PriorityClass"])
    nodes: list[NodeInfo] = []
    pods: list[PodInfo] = []
    nominated: list[tuple[PodInfo, str]] = []
    for where, obj in by_kind["Node"]:
        try:
            nodes.append(node_from_json(obj))
        except ObjectError as e:
            raise SnapshotError(f"{where}: {e}") from None
    for where, obj in by_kind["Pod"]:
        pod = pod_from_object(where, obj, priority_classes=classes)
        pods.append(pod)
        node = status_nominated_node(obj)
        if node and not pod.node_name and not pod.terminated:
            nominated.append((pod, node))
    table = NodeTable(capacity=max(64, len(nodes)))
    for kind in _CONTEXT_KINDS:
        for where, obj in by_kind[kind]:
            try:
                if kind == "Namespace":
                    Namespaces.of(table).apply(obj)
                else:
                    Workloads.of(table).apply(obj)
            except ObjectError as e:
                raise SnapshotError(f"{where}: {e}") from None
    _budgets(table, by_kind["PodDisruptionBudget"])
    _podgroups(table, by_kind["PodGroup"])
    _storage(table, by_kind)
    seen: set[str] = set()
    for n in nodes:
        if n.name in seen:
            raise SnapshotError(f"{source}: node {_short(n.name)}: metadata.name: duplicate node")
        seen.add(n.name)
        table.set_node(n)
    groups = PodGroups.of(table)
    for pod in pods:
        groups.observe(pod)  # a group's pods as the API lists them: any phase, placed or not
        if pod.node_name and not pod.terminated:
            table.add_pod(pod, pod.node_name)
    for pod, node in nominated:
        Nominations.of(table).set(pod, node)
    return Snapshot(table, nodes, pods, classes)


def pod_from_object(where: str, obj: Mapping[str, Any], *, priority_classes: PriorityClasses) -> PodInfo:
    """A Pod object read as the scheduler reads it, its priority resolved as admission does it
    among ``priority_classes``; errors start with ``where``."""
    try:
        return pod_from_json(priority_classes.resolve(obj, _pod_ref(obj)))
    except ObjectError as e:
        raise SnapshotError(f"{where}: {e}") from None


def load_pod(path: str | Path, *, priority_classes: PriorityClasses | None = None) -> PodInfo:
    """The single Pod manifest in ``path``, its priority resolved as admission does it among
    ``priority_classes`` (the built-in ones when None)."""
    objs = read_objects(path, values=False)
    if len(objs) != 1:
        raise SnapshotError(f"{path}: expected exactly one Pod, found {len(objs)} objects")
    where, obj = objs[0]
    if obj.get("kind", "Pod") != "Pod":
        raise SnapshotError(f"{where}: kind: expected Pod, got {quote(obj.get('kind'))}")
    classes = priority_classes if priority_classes is not None else PriorityClasses()
    return pod_from_object(where, obj, priority_classes=classes)
