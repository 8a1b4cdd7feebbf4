"""How a profile chooses among the nodes of equal best total: the ``vecsched.io/tieBreak`` values.

``Random`` (the default) is kube-scheduler's selectHost: one of the best nodes, uniformly at
random (``Profile.select`` draws from the profile's seeded generator). ``NodeName`` takes the
smallest node name, as the FGD authors' simulator does (its vendored kube-scheduler 1.20
selectHost, ``vendor/k8s.io/kubernetes/pkg/scheduler/core/generic_scheduler.go`` of
hkust-adsl/kubernetes-scheduler-simulator, "for reproducibility, choose the smallest
lexicographical order"). ``NodeOrder`` takes the node that comes first in the table.
``NameRanks`` keeps every row's name rank, so that ``NodeName`` is one ``argmin``.
``break_tie`` is the choice among the tied nodes once they are known, for a caller that keeps
them from one decision to the next (``scoring.batching``) as for one that finds them anew;
``move_tie_set`` keeps them when one node's total moves.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.objects import PodInfo
from scoring.table import IntArray, NodeTable

__all__ = ["RANDOM", "NODE_NAME", "NODE_ORDER", "TIE_BREAKS", "NameRanks", "break_tie", "move_tie_set"]

RANDOM: Final = "Random"
NODE_NAME: Final = "NodeName"
NODE_ORDER: Final = "NodeOrder"
TIE_BREAKS: Final = (RANDOM, NODE_NAME, NODE_ORDER)
"""The ways a profile chooses among the nodes of equal best total (``Profile.select``)."""
_NAME_RANKS: Final = "framework/NodeName"
"""``table.extensions`` key of the rank of every row's node name (``NameRanks``)."""


class NameRanks:
    """The rank of every row's node name among the table's names, for ``NodeName``: the
    tie-break is one ``argmin`` over the tied rows instead of comparing strings.

    Kept as a table listener. A row moved by a removal keeps its rank (ranks are only
    compared, and removing a name does not change the order of the others); a row
    whose name is new sorts everything again, lazily, at the next ``ranks()``; a
    changed node that keeps its name costs nothing. The last row's removal calls no
    listener: its stale entry is harmless until a node with another name takes the
    row, which ``node_set`` sees by the name."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.rank: IntArray = np.zeros(0, np.int64)
        self.stale = True

    def node_set(self, table: NodeTable, node: int) -> None:
        if self.stale or node >= len(self.names) or self.names[node] != table.names[node]:
            self.stale = True

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        if not self.stale:
            self.names[dst] = self.names[src]
            self.rank[dst] = self.rank[src]

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        pass

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        pass

    def ranks(self, table: NodeTable) -> IntArray:
        if self.stale or len(self.names) < table.n:
            names = table.names[: table.n]
            order = sorted(range(table.n), key=names.__getitem__)
            self.rank = np.empty(table.n, np.int64)
            self.rank[order] = np.arange(table.n, dtype=np.int64)
            self.names = list(names)
            self.stale = False
        return self.rank

    @staticmethod
    def of(table: NodeTable) -> NameRanks:
        ext = table.extensions.get(_NAME_RANKS)
        if not isinstance(ext, NameRanks):
            ext = NameRanks()
            table.extensions[_NAME_RANKS] = ext
            table.listeners.append(ext)
        return ext


def break_tie(*, ties: npt.NDArray[np.intp], rows: npt.NDArray[np.intp], table: NodeTable, tie_break: str,
              rng: np.random.Generator) -> int:
    """The index into ``rows`` of the chosen node among ``ties``: the indices (ascending) into
    ``rows`` (ascending table rows, as ``np.flatnonzero`` gives them) of the nodes of equal best
    total, at least one. A single node is chosen without a draw; otherwise ``tie_break``
    chooses, ``RANDOM`` with one draw from ``rng`` (``Profile.select``'s choice, draw for draw)."""
    if len(ties) == 1:
        return int(ties[0])
    if tie_break == NODE_NAME:
        return int(ties[np.argmin(NameRanks.of(table).ranks(table)[rows[ties]])])
    if tie_break == NODE_ORDER:
        return int(ties[0])  # rows ascend, and so do ties: the first tie is the earliest row
    return int(ties[rng.integers(len(ties))])


def move_tie_set(*, best: int, ties: npt.NDArray[np.intp], at: int, was: int, total: int
                 ) -> tuple[int, npt.NDArray[np.intp]] | None:
    """The best total and the tie set (the indices, ascending, whose total is ``best``) once
    the total at index ``at`` moved from ``was`` to ``total``; None when the last of the tie set
    left it -- the new best may be anywhere, and only a pass over every total finds it. A total
    that rises above the best starts a tie set of its own, one that reaches it joins, one that
    leaves it is taken out (in place: the caller's ``ties`` must be its own)."""
    if total > best:
        return total, np.array([at], np.intp)
    if total == best:
        if was == best:
            return best, ties
        k = int(ties.searchsorted(at))
        return best, np.concatenate((ties[:k], np.array([at], np.intp), ties[k:]))
    if was != best:
        return best, ties  # below the best before and after
    k = int(ties.searchsorted(at))
    ties[k:-1] = ties[k + 1:]
    return (best, ties[:-1]) if len(ties) > 1 else None
