"""NodeLabel: a worked example of a vecsched plugin -- kube-scheduler's NodeLabel plugin,
which upstream removed (kubernetes/kubernetes#105906), ported as the modules of
``scoring/plugins/`` are written.

As upstream's ``pkg/scheduler/framework/plugins/nodelabel/node_label.go``:

- Filter: a node must carry every label in ``presentLabels`` and none in
  ``absentLabels`` (keys only; values are not looked at), else it is rejected with
  ``node(s) didn't have the requested labels`` -- unresolvable: evicting pods cannot
  change a node's labels.
- Score: each label of ``presentLabelsPreference`` the node carries, and each of
  ``absentLabelsPreference`` it lacks, adds MAX_NODE_SCORE; the sum is divided by the
  number of labels listed (integer division), so a node that satisfies 3 of 4
  preferences scores 75. With no preference listed every node scores 0. No
  NormalizeScore.
- Args (``NodeLabelArgs``): the four lists of label keys; a key listed both as present
  and as absent (in the filter's pair or the score's) is an error, as upstream's
  ValidateNodeLabelArgs.

The verdicts depend on the nodes alone, so both are computed over every node at once
from the table's label columns (``table.labels.column(key)``: the interned value of
``key`` per node, -1 where the node lacks it) and kept until a node changes
(``NodeTable.node_derived``). It is not in vecsched's registry: register it to use it
(docs/architecture.md, "Adding a plugin").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import ArgsError, known_fields, mapping, sequence, string
from scoring.framework import MAX_NODE_SCORE, CycleState, FilterPlugin, NodeOnlyFilter, Reason, ScorePlugin
from scoring.objects import PodInfo
from scoring.table import BoolArray, IntArray, NodeTable, read_only

__all__ = ["NAME", "REASON", "NodeLabel", "label_mask", "preference_scores", "new"]

NAME: Final = "NodeLabel"
REASON: Final = "node(s) didn't have the requested labels"
"""Upstream's ErrReasonPresenceViolated."""


def label_mask(table: NodeTable, present: Sequence[str], absent: Sequence[str]) -> BoolArray:
    """Nodes ``[:n]`` that carry every key of ``present`` and none of ``absent``."""
    ok = np.ones(table.n, np.bool_)
    for key in present:
        ok &= table.labels.column(key) >= 0
    for key in absent:
        ok &= table.labels.column(key) < 0
    return ok


def preference_scores(table: NodeTable, present: Sequence[str], absent: Sequence[str]) -> IntArray:
    """``MAX_NODE_SCORE * satisfied // (len(present) + len(absent))`` for every node ``[:n]``
    (0..MAX_NODE_SCORE; all 0 when nothing is listed)."""
    listed = len(present) + len(absent)
    if listed == 0:
        return np.zeros(table.n, np.int64)
    satisfied = np.zeros(table.n, np.int64)
    for key in present:
        satisfied += table.labels.column(key) >= 0
    for key in absent:
        satisfied += table.labels.column(key) < 0
    return MAX_NODE_SCORE * satisfied // listed


class NodeLabel(NodeOnlyFilter):
    name: Final = NAME

    def __init__(self, *, present: Sequence[str] = (), absent: Sequence[str] = (),
                 present_preference: Sequence[str] = (), absent_preference: Sequence[str] = ()) -> None:
        self.present = tuple(present)
        self.absent = tuple(absent)
        self.present_preference = tuple(present_preference)
        self.absent_preference = tuple(absent_preference)

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        if not self.present and not self.absent:
            return None
        rejected = table.node_derived(
            (NAME, "filter", self.present, self.absent),
            lambda: read_only(~label_mask(table, self.present, self.absent)))
        return [Reason(REASON, rejected, unresolvable=True)] if rejected.any() else None

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        scores = table.node_derived(
            (NAME, "score", self.present_preference, self.absent_preference),
            lambda: read_only(preference_scores(table, self.present_preference, self.absent_preference)))
        return scores[nodes]


def _keys(m: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    field = f"{path}.{key}" if path else key
    return tuple(string(v, f"{field}[{i}]") for i, v in enumerate(sequence(m.get(key), field)))


def _no_conflict(present: Sequence[str], absent: Sequence[str], absent_field: str, present_field: str,
                 path: str) -> None:
    for i, key in enumerate(absent):
        if key in present:
            field = f"{path}.{absent_field}[{i}]" if path else f"{absent_field}[{i}]"
            raise ArgsError(field, f"label {key!r} is also in {present_field}: a node cannot both have and lack it")


def new(args: Mapping[str, Any], path: str) -> NodeLabel:
    m = mapping(args, path)
    known_fields(m, ("presentLabels", "absentLabels", "presentLabelsPreference", "absentLabelsPreference"), path)
    present, absent = _keys(m, "presentLabels", path), _keys(m, "absentLabels", path)
    present_pref, absent_pref = _keys(m, "presentLabelsPreference", path), _keys(m, "absentLabelsPreference", path)
    _no_conflict(present, absent, "absentLabels", "presentLabels", path)
    _no_conflict(present_pref, absent_pref, "absentLabelsPreference", "presentLabelsPreference", path)
    return NodeLabel(present=present, absent=absent, present_preference=present_pref, absent_preference=absent_pref)


_: type[FilterPlugin] = NodeLabel
_s: type[ScorePlugin] = NodeLabel
