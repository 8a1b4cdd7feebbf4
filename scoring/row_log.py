"""The rows of a ``NodeTable`` whose pods changed, in order: one log that the incremental
caches share.

Two caches keep arrays over every node and bring them up to date row by row: the
score and fit arrays of a pod shape (``scoring.plugins.resource_scoring.ShapeCache``)
and the kept state of opportunistic batching (``scoring.batching``). What a row holds
changes in two ways: a node written or removed, which bumps ``node_generation`` (the
caches then recompute in full), and a pod added to or removed from a row, which only
this log records. A reader remembers ``(epoch, len(rows))`` and later recomputes
``rows[position:]``. The log starts afresh past its bound (``epoch`` changes), and
a reader from an older epoch recomputes in full.
"""

from __future__ import annotations

from typing import Final

from scoring.objects import PodInfo
from scoring.table import NodeTable

__all__ = ["RowLog", "LOG_BOUND"]

LOG_BOUND: Final = 4096
"""Rows the log holds (at least; ``n`` when larger) before it starts afresh: past that, a
full recomputation costs about what replaying the log would (a semi-arbitrary bound)."""


class RowLog:
    """The rows whose pods changed, in order (a table listener; one per table, ``of``)."""

    KEY: Final = "row-log"

    def __init__(self, table: NodeTable) -> None:
        self._table = table
        self.rows: list[int] = []
        self.epoch = 0

    @classmethod
    def of(cls, table: NodeTable) -> RowLog:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, RowLog):
            ext = RowLog(table)
            table.extensions[cls.KEY] = ext
            table.listeners.append(ext)
        return ext

    def _changed(self, row: int) -> None:
        if len(self.rows) >= max(LOG_BOUND, self._table.n):
            self.rows.clear()
            self.epoch += 1
        self.rows.append(row)

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self._changed(node)

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self._changed(node)

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        pass  # a removal bumps node_generation: every reader recomputes in full

    def node_set(self, table: NodeTable, node: int) -> None:
        pass  # likewise: a node write bumps node_generation
