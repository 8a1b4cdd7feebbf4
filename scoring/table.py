"""NodeTable: every node of the cluster as a struct of numpy arrays.

A decision looks at all nodes at once, so the cluster is kept column-wise:
allocatable and requested resource matrices (nodes x resources), the
non-zero requests used for scoring, pod counts, the unschedulable flag,
interned label values, a node x taint matrix, image sizes and host ports.
Live rows are ``[0, n)``; removing a node moves the last row into its place,
so every array stays dense and plugins slice ``[:n]`` without a mask.

The table changes incrementally: adding or removing a pod touches one row,
adding a node writes one row, and a resource never seen before (a new
extended resource on a node or in a pod) adds one column. Pods bound to a node
the table does not know yet (a watch delivering the pod before its node) are
held aside and applied when the node arrives.

Every change is all-or-nothing. ``set_node`` and ``add_pod`` first check the whole
new description (``check_node``, ``check_pod``: every amount an int64, every name a
string, no more taints than a row can number) and raise ``ObjectError`` naming the
field before anything is written; past that check nothing they write can fail. A
listener that fails on a pod anyway (a fault, not bad input) has what it and the
listeners before it saw of the change taken back, and the pod's earlier placement
restored, before the error propagates. (Listeners follow a node's row as written;
they read only what ``check_node`` has checked.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, HostPort, NodeInfo, ObjectError, PodInfo, Taint
from scoring.safe_input import quote

__all__ = [
    "NodeTable", "TableListener", "LabelIndex", "normalized_image_name", "parse_go_int64", "read_only", "IntArray",
    "BoolArray", "check_node", "check_pod",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_BASE_RESOURCES: Final = (CPU, MEMORY, EPHEMERAL_STORAGE, PODS)
_NODE_DERIVED_LIMIT: Final = 1024
"""Entries ``node_derived`` keeps per node generation before starting afresh: far more
than the distinct toleration sets, image lists and preferred terms of a cluster's
workloads, few enough that the arrays (a few per node each) stay small."""
_SHARED_VECTORS: Final = 4096
"""Distinct charge vectors the table keeps for sharing (see ``_charge_vector``): far more than a
cluster's workload shapes, few enough to be nothing next to the pods that share them."""
_T = TypeVar("_T")
_WILDCARD_IP: Final = "0.0.0.0"


_A = TypeVar("_A", bound=np.ndarray)


def read_only(a: _A) -> _A:
    """``a``, made read-only: for arrays cached and handed to several callers."""
    a.flags.writeable = False
    return a


def normalized_image_name(name: str) -> str:
    """Upstream's ImageLocality ``normalizedImageName`` for a *pod's* image: ``:latest``
    is appended unless a ``:`` (tag or digest) follows the last ``/``. Node-reported
    names are used as they are, as upstream's cache does."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_GO_DECIMAL = re.compile(r"[+-]?[0-9]+")
_MAX_TAINTS: Final = int(np.iinfo(np.int16).max)
"""Taints one node may carry: ``taint_pos`` numbers them in int16 (an API object of at most
3 MiB holds a few tens of thousands of taints at the very most; real nodes carry a handful)."""
_MAX_PORT: Final = 65535


def _amounts(obj: str, path: str, amounts: object) -> None:
    if not isinstance(amounts, Mapping):
        raise ObjectError(obj, path, f"expected a mapping, got {type(amounts).__name__}")
    for res, amount in amounts.items():
        if not isinstance(res, str) or not res:
            raise ObjectError(obj, path, f"resource name {quote(res)} is not a non-empty string")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= _INT64_MAX:
            raise ObjectError(obj, f"{path}.{res}", f"expected a non-negative int64, got {quote(amount)}")


def _strings(obj: str, path: str, m: object) -> None:
    if not isinstance(m, Mapping):
        raise ObjectError(obj, path, f"expected a mapping, got {type(m).__name__}")
    for k, v in m.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ObjectError(obj, f"{path}.{k}" if isinstance(k, str) else path,
                              f"expected string keys and values, got {quote(k)}: {quote(v)}")


def check_node(node: NodeInfo) -> None:
    """Raise ``ObjectError`` (naming the node and the field) unless every value ``set_node``
    writes of ``node`` fits the table: so that it can write them without failing halfway."""
    name = node.name
    if not isinstance(name, str) or not name:
        raise ObjectError("node", "metadata.name", f"expected a non-empty string, got {quote(name)}")
    obj = f"node {name}"
    _amounts(obj, "status.allocatable", node.allocatable)
    _strings(obj, "metadata.labels", node.labels)
    if not isinstance(node.unschedulable, bool):
        raise ObjectError(obj, "spec.unschedulable", f"expected a boolean, got {quote(node.unschedulable)}")
    if len(node.taints) > _MAX_TAINTS:
        raise ObjectError(obj, "spec.taints", f"{len(node.taints):,} taints, at most {_MAX_TAINTS:,} are supported")
    for i, t in enumerate(node.taints):
        if not (isinstance(t, Taint) and isinstance(t.key, str) and isinstance(t.value, str)
                and isinstance(t.effect, str)):
            raise ObjectError(obj, f"spec.taints[{i}]", f"expected key, value and effect strings, got {quote(t)}")
    for i, image in enumerate(node.images):
        names, size = image
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _INT64_MAX:
            raise ObjectError(obj, f"status.images[{i}].sizeBytes", f"expected a non-negative int64, got {quote(size)}")
        for j, n in enumerate(names):
            if not isinstance(n, str):
                raise ObjectError(obj, f"status.images[{i}].names[{j}]", f"expected a string, got {quote(n)}")


def check_pod(pod: PodInfo) -> None:
    """Raise ``ObjectError`` (naming the pod and the field) unless every value ``add_pod``
    charges for ``pod`` fits the table: so that it can charge them without failing halfway."""
    obj = f"pod {pod.namespace}/{pod.name}"
    if not isinstance(pod.namespace, str) or not isinstance(pod.name, str) or not pod.name:
        raise ObjectError("pod", "metadata.name", f"expected a non-empty string, got {quote(pod.name)}")
    _amounts(obj, "spec.containers[*].resources.requests", pod.requests)
    for what, v in zip(("cpu", "memory"), pod.nonzero_on_node):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _INT64_MAX:
            raise ObjectError(obj, f"spec.containers[*].resources.requests.{what}",
                              f"expected a non-negative int64, got {quote(v)}")
    if not isinstance(pod.priority, int) or isinstance(pod.priority, bool) or not -(2**31) <= pod.priority < 2**31:
        raise ObjectError(obj, "spec.priority", f"expected an int32, got {quote(pod.priority)}")
    _strings(obj, "metadata.labels", pod.labels)
    for i, hp in enumerate(pod.host_ports):
        if not (isinstance(hp, HostPort) and isinstance(hp.ip, str) and isinstance(hp.protocol, str)
                and isinstance(hp.port, int) and not isinstance(hp.port, bool) and 0 < hp.port <= _MAX_PORT):
            raise ObjectError(obj, f"spec.containers[*].ports[{i}]", f"expected a host port 1..65535, got {quote(hp)}")


def parse_go_int64(value: str) -> int | None:
    """Go's ``strconv.ParseInt(value, 10, 64)``: an optional sign and ASCII digits only
    (no spaces, no ``_``), within int64; None where Go returns an error."""
    if _GO_DECIMAL.fullmatch(value) is None:
        return None
    v = int(value, 10)
    return v if _INT64_MIN <= v <= _INT64_MAX else None


class TableListener(Protocol):
    """Something that keeps derived per-node state in step with the table
    (pod-affinity and topology-spread counters, GPU slots). Called after the
    table itself has changed."""

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None: ...

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None: ...

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        """Row ``src`` was moved to ``dst`` (swap-remove); ``src`` is now free."""

    def node_set(self, table: NodeTable, node: int) -> None:
        """Row ``node`` was written (a new node or a changed one)."""


class LabelIndex:
    """Node labels as one int32 code array per key (-1: label absent).

    Values are interned per key, so ``In``/``NotIn`` are comparisons of small
    integers, and ``Gt``/``Lt`` look up a per-key table of parsed integers.
    """

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        self.codes: dict[str, npt.NDArray[np.int32]] = {}
        self.values: dict[str, list[str]] = {}
        self._ids: dict[str, dict[str, int]] = {}
        self._ints: dict[str, tuple[int, npt.NDArray[np.int64], BoolArray]] = {}
        self._absent: npt.NDArray[np.int32] = np.full(0, -1, np.int32)

    def code(self, key: str, value: str) -> int:
        """The id of ``value`` under ``key``, or -1 if no node has it."""
        return self._ids.get(key, {}).get(value, -1)

    def column(self, key: str) -> npt.NDArray[np.int32]:
        """Codes of ``key`` for live nodes ``[:n]``; all -1 when no node has the key."""
        col = self.codes.get(key)
        n = self._table.n
        if col is None:
            if len(self._absent) < n:
                self._absent = np.full(max(n, 2 * len(self._absent)), -1, np.int32)
            return self._absent[:n]
        return col[:n]

    def int_values(self, key: str) -> tuple[npt.NDArray[np.int64], BoolArray]:
        """For ``Gt``/``Lt``: each value id of ``key`` as an integer and whether it parsed."""
        vals = self.values.get(key, [])
        cached = self._ints.get(key)
        if cached is None or cached[0] != len(vals):
            ints = np.zeros(len(vals) + 1, np.int64)  # the extra slot serves code -1
            ok = np.zeros(len(vals) + 1, np.bool_)
            for i, v in enumerate(vals):
                parsed = parse_go_int64(v)
                if parsed is not None:
                    ints[i] = parsed
                    ok[i] = True
            cached = (len(vals), ints, ok)
            self._ints[key] = cached
        return cached[1], cached[2]

    def _set(self, row: int, labels: Mapping[str, str]) -> None:
        for col in self.codes.values():
            col[row] = -1
        for k, v in labels.items():
            known = self.codes.get(k)
            if known is None:
                known = np.full(self._table.capacity, -1, np.int32)
                self.codes[k] = known
                self.values[k] = []
                self._ids[k] = {}
            ids = self._ids[k]
            vid = ids.get(v)
            if vid is None:
                vid = ids[v] = len(self.values[k])
                self.values[k].append(v)
            known[row] = vid

    def _grow(self, capacity: int) -> None:
        for k, col in self.codes.items():
            grown = np.full(capacity, -1, np.int32)
            grown[: len(col)] = col
            self.codes[k] = grown

    def _move(self, src: int, dst: int) -> None:
        for col in self.codes.values():
            col[dst] = col[src]


@dataclass(slots=True)
class _Placed:
    pod: PodInfo
    node: str
    vector: IntArray


class NodeTable:
    """Struct-of-arrays over all nodes; rows ``[0, n)`` are live."""

    def __init__(self, *, capacity: int = 64) -> None:
        self.capacity = capacity
        self.n = 0
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.infos: list[NodeInfo] = []
        self.resources: list[str] = list(_BASE_RESOURCES)
        self.resource_index: dict[str, int] = {r: i for i, r in enumerate(self.resources)}
        r = len(self.resources)
        self.allocatable: IntArray = np.zeros((capacity, r), np.int64)
        """Allocatable per node and resource; column ``pods`` is the pod limit."""
        self.requested: IntArray = np.zeros((capacity, r), np.int64)
        """Sum of fit requests of pods on the node; column ``pods`` is the pod count."""
        self.nonzero: IntArray = np.zeros((capacity, 2), np.int64)
        """Sum of scoring requests (with 100m/200Mi defaults): columns cpu, memory."""
        self.unschedulable: BoolArray = np.zeros(capacity, np.bool_)
        self.labels = LabelIndex(self)
        self.taints: list[Taint] = []
        self._taint_ids: dict[Taint, int] = {}
        self.taint_pos: npt.NDArray[np.int16] = np.zeros((capacity, 0), np.int16)
        """Position+1 of each known taint in the node's taint list, 0 if absent."""
        self.image_names: list[str] = []
        self._image_ids: dict[str, int] = {}
        self.image_sizes: IntArray = np.zeros((capacity, 0), np.int64)
        """Size in bytes of each image name (as nodes report it) on each node, 0 if absent;
        an image reported with sizeBytes 0 is stored as 1 so that it still counts as present."""
        self.image_nodes: IntArray = np.zeros(0, np.int64)
        """How many nodes hold each image."""
        self._ports: dict[tuple[str, int], dict[str, int]] = {}
        self.port_counts: npt.NDArray[np.int32] = np.zeros((capacity, 0), np.int32)
        """Pods on the node using each known (protocol, ip, port)."""
        self.pods: dict[str, _Placed] = {}
        self._node_pods: list[set[str]] = []
        self._orphans: dict[str, dict[str, PodInfo]] = {}
        self._orphan_node: dict[str, str] = {}
        """Where each held pod waits (key -> node name): finding one is a lookup, not a walk
        over every node that has pods waiting."""
        self._vectors: dict[tuple[object, ...], IntArray] = {}
        """Charge vectors by request map and column count, shared (read-only) by the pods of a
        workload: see ``_charge_vector``."""
        self.listeners: list[TableListener] = []
        self.extensions: dict[str, object] = {}
        """Derived per-node state owned by plugins (GPU slots, topology counters), keyed by
        owner; an extension that must follow row moves and pod changes is also a listener."""
        self.generation = 0
        """Bumped on every change, so callers can tell a snapshot is stale."""
        self.node_generation = 0
        """Bumped when a node is added, changed or removed or a resource column is added,
        but not when pods come and go: arrays derived from the nodes alone (labels,
        taints, images) can be cached under it across decisions (see ``node_derived``)."""
        self._node_derived: dict[Hashable, object] = {}
        self._node_derived_generation = -1

    def node_derived(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """``build()``, memoised under ``key`` until the nodes change (``node_generation``).

        For what a plugin derives from the nodes alone -- which nodes carry a taint a
        pod does not tolerate, image scores, label matches -- and would otherwise
        recompute for every pod although only pods changed since. The value is shared
        by later callers: make arrays in it ``read_only``. Pod changes never
        invalidate it, so it must not depend on requested resources or placed pods.
        """
        cache = self._node_derived
        if self._node_derived_generation != self.node_generation or len(cache) >= _NODE_DERIVED_LIMIT:
            cache.clear()
            self._node_derived_generation = self.node_generation
        try:
            return cache[key]  # type: ignore[return-value]
        except KeyError:
            value = cache[key] = build()
            return value

    # ---- resources ---------------------------------------------------------------

    def resource_column(self, name: str) -> int:
        """The column of resource ``name``, added (zero everywhere) if new."""
        col = self.resource_index.get(name)
        if col is None:
            col = len(self.resources)
            self.resources.append(name)
            self.resource_index[name] = col
            pad = np.zeros((self.capacity, 1), np.int64)
            self.allocatable = np.hstack([self.allocatable, pad])
            self.requested = np.hstack([self.requested, pad])
            self.node_generation += 1
        return col

    def _charge_vector(self, requests: Mapping[str, int]) -> IntArray:
        """What a pod requesting ``requests`` adds to its node's ``requested`` row: the request
        vector with 1 in column ``pods``. Pods of one workload request the same, so the vector
        is made once per distinct request map (and column count) and shared, read-only."""
        key = (*requests.items(), len(self.resources))
        vec = self._vectors.get(key)
        if vec is None:
            vec = self.vector(requests)
            vec[self.resource_index[PODS]] = 1
            if len(self._vectors) >= _SHARED_VECTORS:
                self._vectors.clear()
            vec = self._vectors[(*requests.items(), len(self.resources))] = read_only(vec)
        return vec

    def vector(self, amounts: Mapping[str, int]) -> IntArray:
        """A resource vector over the table's columns (growing them for new names)."""
        cols = [self.resource_column(k) for k in amounts]
        vec = np.zeros(len(self.resources), np.int64)
        vec[cols] = list(amounts.values())
        return vec

    # ---- nodes ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def _grow(self) -> None:
        cap = self.capacity * 2
        def grow2(a: np.ndarray, fill: int = 0) -> np.ndarray:
            out = np.full((cap, *a.shape[1:]), fill, a.dtype)
            out[: self.capacity] = a
            return out
        self.allocatable = grow2(self.allocatable)
        self.requested = grow2(self.requested)
        self.nonzero = grow2(self.nonzero)
        self.unschedulable = grow2(self.unschedulable)
        self.taint_pos = grow2(self.taint_pos)
        self.image_sizes = grow2(self.image_sizes)
        self.port_counts = grow2(self.port_counts)
        self.labels._grow(cap)
        self.capacity = cap

    def set_node(self, node: NodeInfo) -> int:
        """Add a node or replace a known node's description (its pods stay). Returns its row.

        Raises ``ObjectError`` for a node ``check_node`` refuses, with the table unchanged."""
        check_node(node)
        # Past the check nothing below can fail: every value written is an int64, a bool or
        # a string, and every taint position fits int16.
        row = self.index.get(node.name)
        new = row is None
        # New columns (zero everywhere) first, so that the row is then written in one go.
        cols = [self.resource_column(res) for res in node.allocatable]  # may grow (and replace) the matrices
        alloc = np.zeros(len(self.resources), np.int64)
        alloc[cols] = list(node.allocatable.values())
        if row is None:
            if self.n == self.capacity:
                self._grow()
            row = self.n
            self.n += 1
            self.names.append(node.name)
            self.infos.append(node)
            self.index[node.name] = row
            self._node_pods.append(set())
            self.requested[row] = 0
            self.nonzero[row] = 0
            self.port_counts[row] = 0
        else:
            self.infos[row] = node
        self.allocatable[row] = alloc
        self.unschedulable[row] = node.unschedulable
        self.labels._set(row, node.labels)
        self._set_taints(row, node.taints)
        self._set_images(row, node, new)
        self.generation += 1
        self.node_generation += 1
        for listener in self.listeners:
            listener.node_set(self, row)
        if new:
            held = self._orphans.pop(node.name, {})
            for key in held:
                del self._orphan_node[key]
            for pod in held.values():
                self.add_pod(pod, node.name)  # (checked when it was held)
        return row

    def _set_taints(self, row: int, taints: Iterable[Taint]) -> None:
        self.taint_pos[row] = 0
        for pos, t in enumerate(taints, start=1):
            tid = self._taint_ids.get(t)
            if tid is None:
                tid = self._taint_ids[t] = len(self.taints)
                self.taints.append(t)
                self.taint_pos = np.hstack([self.taint_pos, np.zeros((self.capacity, 1), np.int16)])
            if self.taint_pos[row, tid] == 0:
                self.taint_pos[row, tid] = pos

    def _set_images(self, row: int, node: NodeInfo, new: bool) -> None:
        if not new:
            self.image_nodes -= self.image_sizes[row] > 0
        self.image_sizes[row] = 0
        for names, size in node.images:
            for name in names:
                iid = self._image_ids.get(name)
                if iid is None:
                    iid = self._image_ids[name] = len(self.image_names)
                    self.image_names.append(name)
                    self.image_sizes = np.hstack([self.image_sizes, np.zeros((self.capacity, 1), np.int64)])
                    self.image_nodes = np.append(self.image_nodes, 0)
                self.image_sizes[row, iid] = max(size, 1)
        self.image_nodes += self.image_sizes[row] > 0

    def image_column(self, name: str) -> int:
        """The column of a pod's image ``name`` once normalised (``normalized_image_name``),
        or -1 if no node reports that name."""
        return self._image_ids.get(normalized_image_name(name), -1)

    def remove_node(self, name: str) -> list[PodInfo]:
        """Remove a node. Its pods are kept aside and return if the node comes back."""
        row = self.index.get(name)
        if row is None:
            return []
        pods = [self.pods[k].pod for k in list(self._node_pods[row])]
        for pod in pods:
            self.remove_pod(pod.key)
        del self.index[name]
        if pods:
            held = self._orphans[name] = {p.key: p for p in pods}
            self._orphan_node.update(dict.fromkeys(held, name))
        self.image_nodes -= self.image_sizes[row] > 0
        last = self.n - 1
        if row != last:
            for arr in (self.allocatable, self.requested, self.nonzero, self.unschedulable,
                        self.taint_pos, self.image_sizes, self.port_counts):
                arr[row] = arr[last]
            self.labels._move(last, row)
            moved = self.names[last]
            self.names[row] = moved
            self.infos[row] = self.infos[last]
            self._node_pods[row] = self._node_pods[last]
            self.index[moved] = row
            for listener in self.listeners:
                listener.node_moved(self, last, row)
        self.names.pop()
        self.infos.pop()
        self._node_pods.pop()
        self.n -= 1
        self.generation += 1
        self.node_generation += 1
        return pods

    def node_pods(self, name: str) -> Iterator[PodInfo]:
        row = self.index.get(name)
        if row is None:
            return iter(())
        return (self.pods[k].pod for k in self._node_pods[row])

    # ---- pods ------------------------------------------------------------------------

    def add_pod(self, pod: PodInfo, node: str) -> None:
        """Charge ``pod`` to ``node`` (assume or observed binding). Replaces an earlier placement.

        Raises ``ObjectError`` for a pod ``check_pod`` refuses, with the table unchanged. Should
        a listener fail on the pod, its earlier placement is restored before the error propagates."""
        check_pod(pod)
        before = self._placement(pod.key)
        try:
            self.remove_pod(pod.key)  # placed before, or held for a node not seen yet
            self._charge(pod, node)
        except BaseException:
            self._discard(pod.key)
            if before is not None:
                self._charge(*before)
            raise

    def _placement(self, key: str) -> tuple[PodInfo, str] | None:
        """Where ``key`` is charged or held now (for ``add_pod`` to put it back)."""
        placed = self.pods.get(key)
        if placed is not None:
            return placed.pod, placed.node
        node = self._orphan_node.get(key)
        return (self._orphans[node][key], node) if node is not None else None

    def _discard(self, key: str) -> None:
        """``remove_pod`` for a rollback: whatever the listeners do, the table lets go of ``key``."""
        try:
            self.remove_pod(key)
        except Exception:  # a listener failing again: the table's own arrays are already restored
            pass

    def _charge(self, pod: PodInfo, node: str) -> None:
        """Write a checked pod's charge to ``node``'s row, then tell the listeners; a listener
        that fails has the change taken back from itself and those before it."""
        row = self.index.get(node)
        key = pod.key  # (made once: the pod map and the node's set share the string)
        if row is None:
            self._orphans.setdefault(node, {})[key] = pod
            self._orphan_node[key] = node
            return
        vec = self._charge_vector(pod.requests)
        cols = [self._port_column(hp) for hp in pod.host_ports]  # may grow (and replace) port_counts
        self.requested[row, : len(vec)] += vec
        self.nonzero[row] += pod.nonzero_on_node
        for col in cols:
            self.port_counts[row, col] += 1
        self.pods[key] = _Placed(pod, node, vec)
        self._node_pods[row].add(key)
        self.generation += 1
        told: list[TableListener] = []
        try:
            for listener in self.listeners:
                told.append(listener)  # (the failing one too: it may have half-counted the pod)
                listener.pod_added(self, pod, row)
        except BaseException:
            for listener in reversed(told):
                try:
                    listener.pod_removed(self, pod, row)
                except Exception:
                    pass
            self._uncharge(pod.key, row)
            raise

    def remove_pod(self, key: str) -> PodInfo | None:
        """Stop charging a pod (deleted, finished, or an assumption forgotten)."""
        placed = self.pods.get(key)
        if placed is None:
            node = self._orphan_node.pop(key, None)
            if node is not None:
                orphans = self._orphans[node]
                del orphans[key]
                if not orphans:
                    del self._orphans[node]
            return None
        row = self.index[placed.node]
        self._uncharge(key, row)
        for listener in self.listeners:
            listener.pod_removed(self, placed.pod, row)
        return placed.pod

    def _uncharge(self, key: str, row: int) -> None:
        """The table's own half of ``remove_pod``: the row's sums, ports and pod set."""
        placed = self.pods.pop(key)
        self.requested[row, : len(placed.vector)] -= placed.vector
        self.nonzero[row] -= placed.pod.nonzero_on_node
        for hp in placed.pod.host_ports:
            self.port_counts[row, self._port_column(hp)] -= 1
        self._node_pods[row].discard(key)
        self.generation += 1

    def replace_pod(self, pod: PodInfo) -> None:
        """Hold ``pod`` in place of the placed pod of its key, whose charge (requests, non-zero
        requests, host ports) it equals: the row's sums, ports and pod set stay and no row is
        logged. Listeners with a ``pod_replaced(table, pod, node)`` method are told (preemption's
        placed pods keep the PodInfo and its start time); the caller vouches that no other
        listener's state would change."""
        placed = self.pods[pod.key]
        placed.pod = pod
        self.generation += 1  # the table holds another PodInfo: a snapshot of it is stale
        node = self.index[placed.node]
        for listener in self.listeners:
            replaced = getattr(listener, "pod_replaced", None)
            if replaced is not None:
                replaced(self, pod, node)

    def node_of(self, key: str) -> str | None:
        placed = self.pods.get(key)
        return placed.node if placed else None

    # ---- host ports --------------------------------------------------------------------

    def _port_column(self, hp: HostPort) -> int:
        by_ip = self._ports.setdefault((hp.protocol, hp.port), {})
        col = by_ip.get(hp.ip)
        if col is None:
            col = by_ip[hp.ip] = self.port_counts.shape[1]
            self.port_counts = np.hstack([self.port_counts, np.zeros((self.capacity, 1), np.int32)])
        return col

    def port_column(self, hp: HostPort) -> int:
        """The ``port_counts`` column of ``hp`` (added, zero everywhere, if new)."""
        return self._port_column(hp)

    def port_conflict_columns(self, hp: HostPort) -> list[int]:
        """The ``port_counts`` columns whose use clashes with ``hp``: same protocol and port,
        and the same IP or either side the wildcard 0.0.0.0 (upstream's HostPortInfo.CheckConflict)."""
        by_ip = self._ports.get((hp.protocol, hp.port), {})
        return [c for ip, c in by_ip.items() if hp.ip == _WILDCARD_IP or ip == _WILDCARD_IP or ip == hp.ip]

    def port_conflicts(self, hp: HostPort) -> BoolArray:
        """Nodes where ``hp`` clashes with a used port (see ``port_conflict_columns``)."""
        cols = self.port_conflict_columns(hp)
        if not cols:
            return np.zeros(self.n, np.bool_)
        return cast(BoolArray, (self.port_counts[: self.n, cols] > 0).any(axis=1))
