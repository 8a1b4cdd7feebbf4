"""Clusters and workloads from files, for the strategy lab.

A cluster is either a YAML list of node *shapes* with counts::

    - {count: 100, cpu: 32, memory: 128Gi, pods: 110, labels: {pool: general}}
    - {count: 4, name: gpu, cpu: 64, memory: 512Gi, resources: {nvidia.com/gpu: 8},
       taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}

(``nodes: [...]`` around the list is accepted too), or a Kubernetes ``List``
of Nodes as ``kubectl get nodes -o yaml`` writes it. A workload is Pod
manifests (a ``List`` or multi-document YAML, timed by the
``vecsched.io/arrival-seconds`` and ``vecsched.io/duration-seconds``
annotations; without them pods arrive in file order at t=0 and never leave;
PriorityClasses among them give the pods' ``priorityClassName`` its value, see
``priorities``), a CSV ``name,cpu,memory,arrival,departure[,priority][,<resource>...]``
(an empty departure: never leaves; ``priority`` is the pod's priority, 0 when
empty; a ``gpu`` column means ``nvidia.com/gpu``; ``pod_group`` and
``pod_group_min_member`` put the pod in a gang), or a synthetic spec (see
``synthetic``; its classes may carry a priority). Manifests name gangs by the
``vecsched.io/pod-group`` annotations or by scheduler-plugins' label and
``PodGroup`` objects in the same file; ``gangs`` describes every form.

The Alibaba GPU trace has no priorities: its ``qos`` column (LS, BE, Burstable,
Guaranteed) is the class the node's agent isolates a pod by, not a scheduling
priority, and the trace records no preemption, so its pods all get priority 0
(and ``--preemption`` never evicts any of them).

Other sources plug in by prefix: ``openb:PATH`` reads the Alibaba GPU trace
through ``benchmarks.openb`` (``load_openb_nodes`` / ``load_openb_pods``),
imported only when used. ``CLUSTER_LOADERS`` / ``WORKLOAD_LOADERS`` map a
prefix to a loader; add entries to support more.

A run of ``openb:`` nodes names them as the FGD authors' simulator does for a
run (``cluster_for_seed``): a random ``NNNN-`` prefix per seed, which is what
its smallest-name tie-break then sees.

A workload's order is part of the workload: pods are replayed by arrival time
and, among pods that arrive at the same time, in file order, for every seed.
Only the prefixes in ``UNORDERED_LOADERS`` (``openb:``, whose pods all arrive
at once in no meaningful order) are shuffled per seed by default, as the FGD
paper's protocol does; ``vecsched sim --shuffle`` / ``--no-shuffle`` decide
for any workload (``shuffled_by_default`` gives the default).

Every error is a ``SimInputError`` naming the file, the line or object and
the field.
"""

from __future__ import annotations

import csv
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from benchmarks.sim.gangs import GROUP_COLUMN, MIN_MEMBER_COLUMN, PODGROUP_KIND, GroupSizes
from benchmarks.sim.model import SimInputError, SimPod, as_sim_pod, pod_timing, seconds
from benchmarks.sim.priorities import KIND as PRIORITY_CLASS
from benchmarks.sim.priorities import PriorityClasses, priority_value
from benchmarks.sim.synthetic import SyntheticSpec, generate, is_synthetic, parse_synthetic
from scheduler.snapshot import MAX_SNAPSHOT_BYTES, SnapshotError, read_documents, read_objects
from scoring.objects import CPU, MEMORY, NodeInfo, ObjectError, node_from_json, pod_from_json
from scoring.plugins.podgroups import POD_GROUP_LABEL
from scoring.quantity import QuantityError, milli_value, value
from scoring.safe_input import QUOTE_CHARS, InputError, clip, quote, read_text

__all__ = [
    "MAX_SHAPE_COUNT",
    "CLUSTER_LOADERS",
    "WORKLOAD_LOADERS",
    "GPU_COLUMN_ALIASES",
    "PRIORITY_COLUMN",
    "UNORDERED_LOADERS",
    "SEEDED_CLUSTERS",
    "WorkloadSource",
    "cluster_for_seed",
    "load_cluster",
    "seeded_cluster",
    "open_workload",
    "shuffled_by_default",
]

_SHAPE_FIELDS: Final = ("count", "name", "cpu", "memory", "pods", "ephemeral-storage", "resources", "labels",
                        "taints", "unschedulable")
_DEFAULT_MAX_PODS: Final = 110  # kubelet's default --max-pods
GPU_COLUMN_ALIASES: Final = {"gpu": "nvidia.com/gpu"}
"""CSV column -> resource name, for the columns that are not already resource names."""
PRIORITY_COLUMN: Final = "priority"
"""CSV column holding a pod's priority (an integer; empty: 0), not a resource."""


def _openb(function: str) -> Callable[[str], Any]:
    def load(path: str) -> Any:
        try:
            module = importlib.import_module("benchmarks.openb")
        except ModuleNotFoundError as e:
            if e.name not in ("benchmarks.openb",):
                raise
            raise SimInputError(f"openb:{path}: the openb trace loader (benchmarks/openb.py) is not installed") from None
        return getattr(module, function)(path)
    return load


CLUSTER_LOADERS: dict[str, Callable[[str], Sequence[NodeInfo]]] = {"openb": _openb("load_openb_nodes")}
"""Prefix (before ``:``) -> loader of a cluster's nodes."""
WORKLOAD_LOADERS: dict[str, Callable[[str], Sequence[Any]]] = {"openb": _openb("load_openb_pods")}
"""Prefix (before ``:``) -> loader of a workload's pods (SimPods, PodInfos or (pod, arrival, duration))."""


def _openb_names(nodes: Sequence[NodeInfo], seed: int) -> list[NodeInfo]:
    module = importlib.import_module("benchmarks.openb")
    names: Callable[[Sequence[NodeInfo], int], list[NodeInfo]] = module.simulator_node_names
    return names(nodes, seed)


SEEDED_CLUSTERS: dict[str, Callable[[Sequence[NodeInfo], int], list[NodeInfo]]] = {"openb": _openb_names}
"""Cluster prefixes whose runs see the nodes as the source's own protocol prepares them for a
seed: ``openb:`` nodes get the FGD authors' simulator's per-seed name prefixes
(``benchmarks.openb.simulator_node_names``)."""


def seeded_cluster(spec: str) -> bool:
    """True when runs of the cluster ``spec`` names see it prepared per seed (``SEEDED_CLUSTERS``)."""
    return _prefixed(spec, SEEDED_CLUSTERS) is not None


def cluster_for_seed(spec: str, nodes: Sequence[NodeInfo], seed: int) -> list[NodeInfo]:
    """The nodes a run of ``seed`` replays on: ``nodes`` (``load_cluster(spec)``), prepared for
    the seed where ``SEEDED_CLUSTERS`` says so, else as they are."""
    hit = _prefixed(spec, SEEDED_CLUSTERS)
    return SEEDED_CLUSTERS[hit[0]](nodes, seed) if hit else list(nodes)


UNORDERED_LOADERS: set[str] = {"openb"}
"""Workload prefixes whose pods arrive together in no meaningful order: each seed shuffles them
unless the sweep says ``--no-shuffle``."""


def _prefixed(spec: str, loaders: Mapping[str, Any]) -> tuple[str, str] | None:
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in loaders:
        return prefix, rest
    return None


def shuffled_by_default(spec: str) -> bool:
    """True when the workload ``spec`` names is shuffled per seed unless told otherwise: a
    registered prefix in ``UNORDERED_LOADERS`` (``openb:``). Manifests, CSVs and synthetic
    specs keep their order."""
    pre = _prefixed(spec, WORKLOAD_LOADERS)
    return pre is not None and pre[0] in UNORDERED_LOADERS


# ---- clusters --------------------------------------------------------------------------


def _yaml_items_lines(path: Path) -> list[int]:
    """1-based line of each item of the file's top-level list (or of its ``nodes`` list)."""
    try:
        node = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if getattr(k, "value", None) == "nodes"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


MAX_SHAPE_COUNT: Final = 100_000
"""Nodes one shape may stand for: twenty times Kubernetes' tested limit of 5,000 nodes per
cluster; a larger count is a typo that would only exhaust memory."""


def _shape_nodes(shape: Any, where: str, first: int) -> list[NodeInfo]:
    if not isinstance(shape, Mapping):
        raise SimInputError(f"{where}: expected a node shape object, got {type(shape).__name__}")
    for k in shape:
        if k not in _SHAPE_FIELDS:
            key = k if isinstance(k, str) and len(k) <= QUOTE_CHARS else quote(k)
            raise SimInputError(f"{where}: {key}: unknown field (known: {', '.join(_SHAPE_FIELDS)})")
    count = shape.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise SimInputError(f"{where}: count: expected a non-negative integer, got {quote(count)}")
    if count > MAX_SHAPE_COUNT:
        raise SimInputError(f"{where}: count: at most {MAX_SHAPE_COUNT:,} nodes per shape, got {quote(count)}")
    prefix = shape.get("name", "node")
    if not isinstance(prefix, str) or not prefix:
        raise SimInputError(f"{where}: name: expected a non-empty string, got {quote(prefix)}")
    allocatable: dict[str, Any] = {}
    for res in (CPU, MEMORY):
        if shape.get(res) is None:
            raise SimInputError(f"{where}: {res}: required")
        allocatable[res] = shape[res]
    allocatable["pods"] = shape.get("pods", _DEFAULT_MAX_PODS)
    if "ephemeral-storage" in shape:
        allocatable["ephemeral-storage"] = shape["ephemeral-storage"]
    extra = shape.get("resources") or {}
    if not isinstance(extra, Mapping):
        raise SimInputError(f"{where}: resources: expected an object of resource: amount")
    allocatable.update(extra)
    for res, q in allocatable.items():
        try:
            milli_value(q) if res == CPU else value(q)
        except QuantityError as e:
            field = res if res in shape else f"resources.{res}"
            raise SimInputError(f"{where}: {field}: {e}") from None
    labels = shape.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise SimInputError(f"{where}: labels: expected an object of label: value")
    out = []
    for i in range(count):
        name = f"{prefix}-{first + i:05d}"
        obj = {"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
               "spec": {"taints": shape.get("taints") or [], "unschedulable": bool(shape.get("unschedulable", False))},
               "status": {"allocatable": allocatable}}
        try:
            out.append(node_from_json(obj))
        except ObjectError as e:
            field = e.field
            for prefix in ("status.allocatable.", "spec.", "metadata."):  # the shape's own field names
                field = field.replace(prefix, "")
            raise SimInputError(f"{where}: {field}: {e.problem}") from None
    return out


def _cluster_file(path: Path) -> list[NodeInfo]:
    try:
        docs = read_documents(path)
    except SnapshotError as e:
        raise SimInputError(str(e)) from None
    if not docs:
        raise SimInputError(f"{path}: no nodes (empty file)")
    if all(isinstance(d, Mapping) and "kind" in d for d in docs):
        nodes = []
        try:
            objects = read_objects(path)
        except SnapshotError as e:
            raise SimInputError(str(e)) from None
        for where, obj in objects:
            if obj.get("kind") != "Node":
                raise SimInputError(f"{where}: kind: expected Node, got {quote(obj.get('kind'))}")
            try:
                nodes.append(node_from_json(obj))
            except ObjectError as e:
                raise SimInputError(f"{where}: {e}") from None
    else:
        if len(docs) != 1:
            raise SimInputError(f"{path}: expected one YAML document with a list of node shapes")
        shapes = docs[0].get("nodes") if isinstance(docs[0], Mapping) else docs[0]
        if not isinstance(shapes, list):
            raise SimInputError(f"{path}: expected a list of node shapes (or a Kubernetes List of Nodes)")
        lines = _yaml_items_lines(path)
        nodes = []
        for i, shape in enumerate(shapes):
            where = f"{path}: line {lines[i]} (shape {i})" if i < len(lines) else f"{path}: shape {i}"
            nodes.extend(_shape_nodes(shape, where, len(nodes)))
    seen: set[str] = set()
    for n in nodes:
        if n.name in seen:
            raise SimInputError(f"{path}: node {n.name}: metadata.name: duplicate node")
        seen.add(n.name)
    return nodes


def load_cluster(spec: str) -> list[NodeInfo]:
    """The nodes of ``spec``: a file, or ``<prefix>:<path>`` for a registered loader."""
    pre = _prefixed(spec, CLUSTER_LOADERS)
    if pre is not None:
        return list(CLUSTER_LOADERS[pre[0]](pre[1]))
    return _cluster_file(Path(spec))


# ---- workloads -------------------------------------------------------------------------


def _csv_workload(path: Path) -> list[SimPod]:
    try:
        text = read_text(path, max_bytes=MAX_SNAPSHOT_BYTES)
    except OSError as e:
        raise SimInputError(f"{path}: cannot read: {e.strerror}") from None
    except InputError as e:
        raise SimInputError(f"{path}: {e}") from None
    try:
        return _csv_pods(path, text)
    except csv.Error as e:  # a field past the csv module's limit, a NUL byte
        raise SimInputError(f"{path}: not valid CSV: {clip(str(e))}") from None


def _csv_pods(path: Path, text: str) -> list[SimPod]:
    reader = csv.DictReader(text.splitlines())
    required = ("name", "cpu", "memory", "arrival", "departure")
    header = reader.fieldnames or []
    for col in required:
        if col not in header:
            raise SimInputError(f"{path}: line 1: missing column {quote(col)} (need {','.join(required)}[,<resource>...])")
    extra = [c for c in header if c not in required and c not in (PRIORITY_COLUMN, GROUP_COLUMN, MIN_MEMBER_COLUMN)]
    out: list[SimPod] = []
    seen: set[str] = set()
    groups = GroupSizes()
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        name = (row.get("name") or "").strip()
        if not name:
            raise SimInputError(f"{where}: name: required")
        if name in seen:
            raise SimInputError(f"{where}: name: duplicate pod {quote(name)}")
        seen.add(name)
        requests: dict[str, str] = {}
        for col in ("cpu", "memory", *extra):
            q = (row.get(col) or "").strip()
            if not q:
                if col in ("cpu", "memory"):
                    raise SimInputError(f"{where}: {col}: required")
                continue
            requests[GPU_COLUMN_ALIASES.get(col, col)] = q
        arrival = seconds(row.get("arrival"), f"{where}: arrival") or 0.0
        departure = seconds((row.get("departure") or "").strip(), f"{where}: departure", allow_none=True)
        if departure is not None and departure < arrival:
            raise SimInputError(f"{where}: departure: must not be before arrival ({departure} < {arrival}): "
                                "negative duration")
        spec: dict[str, Any] = {"containers": [{"name": "app", "resources": {"requests": requests}}]}
        priority = (row.get(PRIORITY_COLUMN) or "").strip()
        if priority:
            spec["priority"] = priority_value(priority, f"{where}: {PRIORITY_COLUMN}")
        meta: dict[str, Any] = {"name": name, "namespace": "sim"}
        group = (row.get(GROUP_COLUMN) or "").strip()
        size = (row.get(MIN_MEMBER_COLUMN) or "").strip()
        if group:
            meta["labels"] = {POD_GROUP_LABEL: group}
        elif size:
            raise SimInputError(f"{where}: {MIN_MEMBER_COLUMN}: the pod names no group ({GROUP_COLUMN} is empty)")
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        try:
            pod = pod_from_json(obj)
        except ObjectError as e:
            raise SimInputError(f"{where}: {e.field.rsplit('.', 1)[-1]}: {e.problem}") from None
        if group:
            groups.member(f"sim/{group}", size, f"{where} (pod {name})", MIN_MEMBER_COLUMN)
        out.append(SimPod(pod, arrival, None if departure is None else departure - arrival))
    return groups.attach(out)


def _manifest_workload(path: Path) -> list[SimPod]:
    try:
        objects = read_objects(path)
    except SnapshotError as e:
        raise SimInputError(str(e)) from None
    classes = PriorityClasses()
    groups = GroupSizes()
    for where, obj in objects:
        if obj.get("kind") == PRIORITY_CLASS:
            classes.add(obj, where)
        elif obj.get("kind") == PODGROUP_KIND:
            groups.podgroup(obj, where)
    out: list[SimPod] = []
    seen: set[str] = set()
    for where, obj in objects:
        kind = obj.get("kind", "Pod")
        if kind in (PRIORITY_CLASS, PODGROUP_KIND):
            continue
        if kind != "Pod":
            raise SimInputError(f"{where}: kind: expected Pod, got {quote(obj.get('kind'))} "
                                f"(a workload holds Pods, {PRIORITY_CLASS}es and {PODGROUP_KIND}s)")
        try:
            pod = pod_from_json(obj)
        except ObjectError as e:
            raise SimInputError(f"{where}: {e}") from None
        if pod.key in seen:
            raise SimInputError(f"{where}: pod {pod.key}: metadata.name: duplicate pod")
        seen.add(pod.key)
        labelled = groups.manifest_member(pod, obj, f"{where}: pod {pod.key}")
        if labelled is not None:
            pod = pod_from_json(labelled)  # read once already: only the label is new
        pod = classes.resolve(pod, where)
        out.append(pod_timing(pod, f"{where}: pod {pod.key}"))
    return groups.attach(out)


class WorkloadSource:
    """A workload that can be drawn for a run seed: fixed pods, or a synthetic spec."""

    def __init__(self, *, name: str, pods: Sequence[SimPod] | None = None,
                 synthetic: SyntheticSpec | None = None) -> None:
        self.name = name
        self._pods = list(pods) if pods is not None else None
        self.synthetic = synthetic

    @property
    def regenerated_per_seed(self) -> bool:
        """True when each run seed draws different pods (a synthetic spec)."""
        return self.synthetic is not None

    def pods(self, *, seed: int) -> list[SimPod]:
        """The pods for run seed ``seed``, in arrival order (ties in file order)."""
        if self.synthetic is not None:
            return generate(self.synthetic, seed=seed)
        assert self._pods is not None
        return sorted(self._pods, key=lambda p: p.arrival)


def open_workload(spec: str) -> WorkloadSource:
    """Read and validate ``spec``: a file, or ``<prefix>:<path>`` for a registered loader."""
    pre = _prefixed(spec, WORKLOAD_LOADERS)
    if pre is not None:
        items = WORKLOAD_LOADERS[pre[0]](pre[1])
        return WorkloadSource(name=spec, pods=[as_sim_pod(x, f"{spec}: item {i}") for i, x in enumerate(items)])
    path = Path(spec)
    if path.suffix.lower() == ".csv":
        return WorkloadSource(name=spec, pods=_csv_workload(path))
    try:
        docs = read_documents(path)
    except SnapshotError as e:
        raise SimInputError(str(e)) from None
    if len(docs) == 1 and is_synthetic(docs[0]):
        return WorkloadSource(name=spec, synthetic=parse_synthetic(docs[0], source=str(path)))
    return WorkloadSource(name=spec, pods=_manifest_workload(path))
