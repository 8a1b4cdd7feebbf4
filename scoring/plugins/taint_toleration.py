"""TaintToleration: a pod may not land on a node with a NoSchedule or NoExecute
taint it does not tolerate, and prefers nodes with fewer PreferNoSchedule taints
it does not tolerate (upstream's tainttoleration plugin).

The filter names the node's *first* untolerated taint in the node's own order,
``node(s) had untolerated taint {key: value}``, as upstream's
FindMatchingUntoleratedTaint does. The score counts intolerable PreferNoSchedule
taints, judged only by tolerations whose effect is PreferNoSchedule or empty, and
is normalised reversed (fewest such taints -> 100). Upstream's PreScore never
skips, so every node gets a score even when no node is tainted.

The table interns every distinct taint once and keeps, per node, the position of
each taint in the node's list; a pod's tolerations are matched against the
distinct taints (a loop over taints and tolerations, not over nodes). The masks
and counts over nodes depend only on which taints are untolerated, so they are
kept per such set until a node changes (``NodeTable.node_derived``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.batching import NODES, Signed
from scoring.framework import CycleState, FilterPlugin, NodeOnlyFilter, Reason, ScorePlugin, default_normalize_score
from scoring.objects import PodInfo, Taint
from scoring.plugins.tolerations import tolerates
from scoring.table import BoolArray, IntArray, NodeTable, read_only

__all__ = ["NAME", "TaintToleration", "reason_message", "untolerated", "first_untolerated", "intolerable_counts",
           "filter_reasons", "new"]

NAME: Final = "TaintToleration"
NO_SCHEDULE: Final = "NoSchedule"
NO_EXECUTE: Final = "NoExecute"
PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"


def reason_message(taint: Taint) -> str:
    """Upstream's Filter reason for a node whose first untolerated taint is ``taint``."""
    return f"node(s) had untolerated taint {taint.describe()}"


def untolerated(taints: Sequence[Taint], tolerations: Sequence[Mapping[str, Any]], effects: Sequence[str]) -> list[int]:
    """Ids of the known ``taints`` with one of ``effects`` that no toleration tolerates."""
    return [i for i, t in enumerate(taints)
            if t.effect in effects and not any(tolerates(tol, t) for tol in tolerations)]


def first_untolerated(taint_pos: npt.NDArray[np.int16], ids: Sequence[int]) -> tuple[BoolArray, npt.NDArray[np.intp]]:
    """For each node row of ``taint_pos`` (position+1 of each taint, 0 if absent):
    whether it holds any taint in ``ids``, and which of ``ids`` (an index into
    ``ids``) comes first in the node's own taint order."""
    pos = taint_pos[:, list(ids)].astype(np.int32)
    present = pos > 0
    first: npt.NDArray[np.intp] = np.argmin(np.where(present, pos, np.iinfo(np.int32).max), axis=1)
    return cast(BoolArray, present.any(axis=1)), first


def intolerable_counts(taint_pos: npt.NDArray[np.int16], ids: Sequence[int]) -> IntArray:
    """How many of the taints ``ids`` each node row holds (raw score, 0..len(ids))."""
    if not ids:
        return np.zeros(len(taint_pos), np.int64)
    counts: IntArray = (taint_pos[:, list(ids)] > 0).sum(axis=1).astype(np.int64)
    return counts


def filter_reasons(table: NodeTable, ids: Sequence[int]) -> list[Reason]:
    """One unresolvable Reason per message: the nodes whose first taint among ``ids``
    (in the node's own order) is described by that message."""
    tainted, first = first_untolerated(table.taint_pos[: table.n], ids)
    if not tainted.any():
        return []
    masks: dict[str, BoolArray] = {}
    for j in np.unique(first[tainted]):
        msg = reason_message(table.taints[ids[int(j)]])
        mask = tainted & (first == j)
        masks[msg] = masks[msg] | mask if msg in masks else mask
    # read-only: shared by every pod with the same untolerated taints
    return [Reason(msg, read_only(mask), unresolvable=True) for msg, mask in masks.items()]


class TaintToleration(NodeOnlyFilter):
    name: Final = NAME

    # Which taints a pod does not tolerate depends on its tolerations; which nodes
    # carry them depends on the nodes alone. Both the filter's reasons and the raw
    # scores are therefore kept per set of untolerated taints until a node changes
    # (table.node_derived), and most pods share a few such sets.

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        """Batching: the verdict and the raw score depend on the nodes' taints and the pod's tolerations."""
        return Signed(NODES, repr(pod.tolerations))

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        ids = untolerated(table.taints, pod.tolerations, (NO_SCHEDULE, NO_EXECUTE))
        if not ids:
            return None
        hard = tuple(ids)
        return table.node_derived((NAME, "filter", hard), lambda: filter_reasons(table, hard)) or None

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        prefer = [t for t in pod.tolerations if (t.get("effect") or "") in ("", PREFER_NO_SCHEDULE)]
        ids = tuple(untolerated(table.taints, prefer, (PREFER_NO_SCHEDULE,)))
        if not ids:
            return np.zeros(len(nodes), np.int64)
        counts = table.node_derived(
            (NAME, "score", ids), lambda: read_only(intolerable_counts(table.taint_pos[: table.n], ids)))
        return counts[nodes]

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray:
        return default_normalize_score(scores, reverse=True)


def new(args: Mapping[str, Any], path: str) -> TaintToleration:
    known_fields(mapping(args, path), (), path)
    return TaintToleration()


_: type[FilterPlugin] = TaintToleration
_s: type[ScorePlugin] = TaintToleration
