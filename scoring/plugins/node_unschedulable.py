"""NodeUnschedulable: nodes cordoned with ``spec.unschedulable`` take no new pods,
unless the pod tolerates the ``node.kubernetes.io/unschedulable:NoSchedule`` taint
(upstream's nodeunschedulable plugin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from scoring.args import known_fields, mapping
from scoring.batching import NODES, Signed
from scoring.framework import CycleState, FilterPlugin, NodeOnlyFilter, Reason
from scoring.objects import PodInfo, Taint
from scoring.plugins.tolerations import tolerates
from scoring.table import NodeTable

NAME: Final = "NodeUnschedulable"
REASON: Final = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT: Final = Taint(key="node.kubernetes.io/unschedulable", value="", effect="NoSchedule")


class NodeUnschedulable(NodeOnlyFilter):
    name: Final = NAME

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        """Batching: the cordoned nodes are the nodes' own; the pod adds whether it tolerates them."""
        return Signed(NODES, any(tolerates(t, UNSCHEDULABLE_TAINT) for t in pod.tolerations))

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        mask = table.unschedulable[: table.n]
        if not mask.any() or any(tolerates(t, UNSCHEDULABLE_TAINT) for t in pod.tolerations):
            return None
        return [Reason(REASON, mask.copy(), unresolvable=True)]


def new(args: Mapping[str, Any], path: str) -> NodeUnschedulable:
    known_fields(mapping(args, path), (), path)
    return NodeUnschedulable()


_: type[FilterPlugin] = NodeUnschedulable
