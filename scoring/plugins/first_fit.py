"""FirstFit: place the pod on the feasible node that was added to the cluster first
(vecsched's own).

"First" is the order in which nodes were added to the NodeTable -- stable,
unlike the table's row order, which changes when a node is removed (the last
row moves into the hole). A node seen again after removal keeps its first
sequence number. The sequence numbers are derived per-node state kept in
``table.extensions["FirstFit"]`` and follow node writes and row moves as a
table listener; nodes already in the table when it is first built are
numbered in row order. ``score = floor(100 * (s_max - s) / (s_max - s_min))``
over the feasible nodes (see ``packing.first_fit_scores``). No args.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.framework import CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.plugins.packing import first_fit_scores
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "FirstFit", "NodeSequence", "node_sequence", "new"]

NAME: Final = "FirstFit"


class NodeSequence:
    """Insertion sequence number of every row, kept current as a table listener."""

    def __init__(self, table: NodeTable) -> None:
        self.by_name: dict[str, int] = {}
        self.seq: IntArray = np.zeros(max(table.capacity, 1), np.int64)
        for row in range(table.n):
            self.node_set(table, row)

    def _fit(self, table: NodeTable) -> None:
        if len(self.seq) < table.capacity:
            grown = np.zeros(table.capacity, np.int64)
            grown[: len(self.seq)] = self.seq
            self.seq = grown

    def node_set(self, table: NodeTable, node: int) -> None:
        self._fit(table)
        name = table.names[node]
        s = self.by_name.get(name)
        if s is None:
            s = self.by_name[name] = len(self.by_name)
        self.seq[node] = s

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        self.seq[dst] = self.seq[src]

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        pass

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        pass


def node_sequence(table: NodeTable) -> NodeSequence:
    """The table's NodeSequence, built and subscribed on first use."""
    ext = table.extensions.get(NAME)
    if not isinstance(ext, NodeSequence):
        ext = NodeSequence(table)
        table.extensions[NAME] = ext
        table.listeners.append(ext)
    return ext


class FirstFit:
    name: Final = NAME

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        return first_fit_scores(node_sequence(table).seq[nodes])


def new(args: Mapping[str, Any], path: str) -> FirstFit:
    known_fields(mapping(args, path), (), path)
    return FirstFit()


_: type[ScorePlugin] = FirstFit
