"""Cluster snapshots from files: what ``explain`` and the strategy lab read.

A snapshot is a Kubernetes ``List`` of Nodes and Pods, JSON or YAML, exactly
as ``kubectl get nodes,pods -A -o json`` writes it (multi-document YAML and
``NodeList``/``PodList`` documents are accepted too). Pods with
``spec.nodeName`` occupy that node unless they are Succeeded or Failed.
Namespaces (their labels serve pod-affinity ``namespaceSelector``s) and
Services, ReplicaSets, StatefulSets and ReplicationControllers (their
selectors give PodTopologySpread its default constraints) may be included
too, as ``kubectl get nodes,pods,namespaces,services,rs,sts -A -o json``
writes them. Every error names the file, the object and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from scoring.objects import NodeInfo, ObjectError, PodInfo, node_from_json, pod_from_json
from scoring.plugins.workloads import Namespaces, Workloads
from scoring.table import NodeTable

__all__ = ["SnapshotError", "read_documents", "read_objects", "load_snapshot", "load_pod"]


_CONTEXT_KINDS: Final = ("Namespace", "Service", "ReplicaSet", "StatefulSet", "ReplicationController")


class SnapshotError(ValueError):
    """An unreadable or invalid snapshot or manifest file; the message names file, object and field."""


def read_documents(path: str | Path) -> list[Any]:
    """All documents of a JSON or (multi-document) YAML file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SnapshotError(f"{p}: cannot read: {e.strerror}") from None
    try:
        if p.suffix == ".json":
            return [json.loads(text)]
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        kind = "JSON" if p.suffix == ".json" else "YAML"
        raise SnapshotError(f"{p}: not valid {kind}: {str(e).splitlines()[0]}") from None


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


def read_objects(path: str | Path) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, object) for every object in the file, Lists flattened."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for d, doc in enumerate(read_documents(path)):
        out.extend(_flatten(doc, f"{path}" if d == 0 else f"{path}: document {d}"))
    return out


def load_snapshot(path: str | Path, *, exclude: str | None = None) -> tuple[NodeTable, list[NodeInfo], list[PodInfo]]:
    """A NodeTable holding the snapshot's nodes and the pods that occupy them.

    ``exclude`` is a pod key (``ns/name``) left out: the pod being explained.
    """
    nodes: list[NodeInfo] = []
    pods: list[PodInfo] = []
    context: list[Mapping[str, Any]] = []
    for where, obj in read_objects(path):
        kind = obj.get("kind")
        try:
            if kind == "Node":
                nodes.append(node_from_json(obj))
            elif kind == "Pod":
                pods.append(pod_from_json(obj))
            elif kind in _CONTEXT_KINDS:
                context.append(obj)
            else:
                raise SnapshotError(f"{where}: kind: expected {', '.join(('Node', 'Pod', *_CONTEXT_KINDS))}, "
                                    f"got {kind!r}")
        except ObjectError as e:
            raise SnapshotError(f"{where}: {e}") from None
    table = NodeTable(capacity=max(64, len(nodes)))
    for obj in context:
        if obj.get("kind") == "Namespace":
            Namespaces.of(table).apply(obj)
        else:
            Workloads.of(table).apply(obj)
    seen: set[str] = set()
    for n in nodes:
        if n.name in seen:
            raise SnapshotError(f"{path}: node {n.name}: metadata.name: duplicate node")
        seen.add(n.name)
        table.set_node(n)
    for pod in pods:
        if pod.node_name and not pod.terminated and pod.key != exclude:
            table.add_pod(pod, pod.node_name)
    return table, nodes, pods


def load_pod(path: str | Path) -> PodInfo:
    """The single Pod manifest in ``path``."""
    objs = read_objects(path)
    if len(objs) != 1:
        raise SnapshotError(f"{path}: expected exactly one Pod, found {len(objs)} objects")
    where, obj = objs[0]
    if obj.get("kind", "Pod") != "Pod":
        raise SnapshotError(f"{where}: kind: expected Pod, got {obj.get('kind')!r}")
    try:
        return pod_from_json(obj)
    except ObjectError as e:
        raise SnapshotError(f"{where}: {e}") from None
