"""Every change to a large NodeTable costs what it costs on a small one.

A scheduler holding 20,000 nodes and 300,000 pods applies each watch event as it comes:
one pod bound, deleted, held for a node not seen yet. If any of that walked all pods or
all nodes in Python -- an index rebuilt, a list copied, the held pods searched -- an
event would cost 300,000 steps instead of a few dozen. These tests count the Python lines
and calls one change executes (``sys.settrace``: time-independent, unlike wall time) on a
small and on a big table, each carrying the default profile's plugin extensions and
listeners, and require the same count, give or take a few for a bounded memo being
emptied at a different moment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest

from scheduler.cache import SchedulerCache
from scheduler.config import default_config
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.table import NodeTable

_SMALL = (4, 8)
"""(nodes, bound pods per node) of the small table."""
_BIG = (400, 30)
"""(nodes, bound pods per node) of the big one: 12,000 pods, 100 times the small one's nodes
(big enough that a walk over pods or nodes would add thousands of calls, small enough to
build in about a second)."""
_SLACK = 12
"""Steps one change may take beyond the small table's count: a bounded memo (charge vectors,
resource shapes) emptied and refilled at a different moment costs a handful of lines once;
any walk over pods or nodes costs at least one line per pod or node."""
_HELD_PER = 4
"""One absent node with a pod held for it per this many nodes in the table (1 for the small
table, 100 for the big one): finding a held pod must not walk them."""


def _node(i: int) -> dict[str, Any]:
    name = f"n{i:05d}"
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                   "topology.kubernetes.io/zone": f"z{i % 3}"}},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"}}}


def _pod(name: str, node: str = "", *, app: str = "web", spread: bool = False) -> PodInfo:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "app:1",
                                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    if node:
        spec["nodeName"] = node
    if spread:
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                              "whenUnsatisfiable": "DoNotSchedule",
                                              "labelSelector": {"matchLabels": {"app": app}}}]
    return pod_from_json({"metadata": {"name": name, "namespace": "ns", "labels": {"app": app}},
                          "spec": spec, "status": {"phase": "Running" if node else "Pending"}})


@dataclass
class _Cluster:
    cache: SchedulerCache
    table: NodeTable
    nodes: int


def _cluster(nodes: int, per_node: int) -> _Cluster:
    """A cache over ``nodes`` nodes with ``per_node`` bound pods each, pods held for
    one absent node per ``_HELD_PER`` nodes, and the default profile's extensions built (one decision
    of a pod with a topology spread constraint, so that the spread counters follow pods)."""
    cache = SchedulerCache()
    for i in range(nodes):
        cache.set_node(_node(i))
    for i in range(nodes):
        for j in range(per_node):
            cache.update_pod(_pod(f"p{i}-{j}", f"n{i:05d}", app=f"app{j % 5}"))
    for i in range(max(1, nodes // _HELD_PER)):
        cache.update_pod(_pod(f"held{i}", f"gone{i}"))
    default_config().profiles[0].build(seed=1).schedule(_pod("probe", spread=True), cache.table)
    return _Cluster(cache, cache.table, nodes)


_clusters: dict[tuple[int, int], _Cluster] = {}


def _get(shape: tuple[int, int]) -> _Cluster:
    if shape not in _clusters:
        _clusters[shape] = _cluster(*shape)
    return _clusters[shape]


def _steps(fn: Callable[[], object]) -> int:
    """Python lines executed and functions called while ``fn`` runs (a loop in Python counts
    once per pass; work inside one numpy call counts once, whatever the array's size)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += 1
        return trace

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _bind_new(c: _Cluster) -> None:
    c.cache.update_pod(_pod("new", "n00001", app="app1"))


def _delete(c: _Cluster) -> None:
    c.cache.delete_pod("ns/new")


def _move(c: _Cluster) -> None:
    c.table.add_pod(_pod("new", "n00002", app="app1"), "n00002")


def _hold(c: _Cluster) -> None:
    c.cache.update_pod(_pod("waiting", "gone-late"))


def _release(c: _Cluster) -> None:
    c.cache.delete_pod("ns/waiting")


def _status_update(c: _Cluster) -> None:
    c.cache.update_pod(_pod("p1-1", "n00001", app="app1"))


def _assume_forget(c: _Cluster) -> None:
    c.cache.assume(_pod("assumed", app="app2"), "n00003")
    c.cache.forget("ns/assumed")


# Each step runs on both tables in this order, each on the state the one before left.
_STEPS: list[tuple[str, Callable[[_Cluster], None]]] = [
    ("bind a new pod", _bind_new),
    ("move it to another node", _move),
    ("delete it", _delete),
    ("hold a pod for a node not seen yet", _hold),
    ("delete the held pod", _release),
    ("status update of a charged pod", _status_update),
    ("assume, then forget", _assume_forget),
]


@pytest.mark.parametrize("step", range(len(_STEPS)), ids=[name for name, _ in _STEPS])
def test_a_change_costs_the_same_on_a_big_table(step: int) -> None:
    # Warm both tables up with the steps before this one, so each starts where it would.
    small, big = _get(_SMALL), _get(_BIG)
    name, fn = _STEPS[step]
    for c in (small, big):
        for _, before in _STEPS[:step]:
            before(c)
    on_small = _steps(lambda: fn(small))
    on_big = _steps(lambda: fn(big))
    # the big table has 100x the nodes (400 vs 4), 375x the pods (12,000 vs 32) and 100x the
    # nodes with held pods (100 vs 1): a walk over any of them would add >= 99 steps; one change
    # must stay within _SLACK (12) of the small table's count
    assert on_big <= on_small + _SLACK, f"{name}: {on_big} steps on the big table, {on_small} on the small one"
    for c in (small, big):
        for _, after in _STEPS[step + 1:]:
            after(c)  # (leave both where the full sequence leaves them, for the next case)


@dataclass
class _Counting:
    """A listener that records every row it is told about."""

    rows: list[tuple[str, int]]

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self.rows.append(("added", node))

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self.rows.append(("removed", node))

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        self.rows.append(("moved", dst))

    def node_set(self, table: NodeTable, node: int) -> None:
        self.rows.append(("set", node))


def _table(nodes: int, pods: int) -> NodeTable:
    t = NodeTable()
    for i in range(nodes):
        t.set_node(node_from_json(_node(i)))
    for i in range(pods):
        p = _pod(f"p{i}", f"n{i % nodes:05d}")
        t.add_pod(p, p.node_name)
    return t


@pytest.mark.parametrize(("change", "told"), [
    # one new pod: the listener hears of its node's row once
    (lambda t: t.add_pod(_pod("x", "n00007"), "n00007"), [("added", 7)]),
    # a known pod moved: removed from its row, added to the new one (p3 is on n00003: 3 % 100)
    (lambda t: t.add_pod(_pod("p3", "n00009"), "n00009"), [("removed", 3), ("added", 9)]),
    # a pod deleted: its row only
    (lambda t: t.remove_pod("ns/p4"), [("removed", 4)]),
    # a pod for a node the table lacks: held, no row told
    (lambda t: t.add_pod(_pod("y", "nowhere"), "nowhere"), []),
    # the removal of n00005 moves row 99 into row 5; first its 10 pods (1000 / 100)
    # are removed first, then the move is told once
    (lambda t: t.remove_node("n00005"), [("removed", 5)] * 10 + [("moved", 5)]),
], ids=["add", "move", "remove", "hold", "remove-node"])
def test_listeners_hear_only_the_rows_a_change_touches(change: Callable[[NodeTable], object],
                                                       told: list[tuple[str, int]]) -> None:
    t = _table(100, 1000)
    listener = _Counting([])
    t.listeners.append(listener)
    change(t)
    assert listener.rows == told
