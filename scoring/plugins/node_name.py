"""NodeName: a pod that names its node in ``spec.nodeName`` fits only there
(upstream's nodename plugin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from scoring.args import known_fields, mapping
from scoring.batching import NODES, Signed
from scoring.framework import CycleState, FilterPlugin, NodeOnlyFilter, Reason
from scoring.objects import PodInfo
from scoring.table import NodeTable

NAME: Final = "NodeName"
REASON: Final = "node(s) didn't match the requested node name"


class NodeName(NodeOnlyFilter):
    name: Final = NAME

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        """Batching: which node is named depends on the pod's nodeName and the nodes alone."""
        return Signed(NODES, pod.node_name)

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        if not pod.node_name:
            return None
        mask = np.ones(table.n, np.bool_)
        row = table.index.get(pod.node_name)
        if row is not None:
            mask[row] = False
        return [Reason(REASON, mask, unresolvable=True)]


def new(args: Mapping[str, Any], path: str) -> NodeName:
    known_fields(mapping(args, path), (), path)
    return NodeName()


_: type[FilterPlugin] = NodeName
