"""NodePorts: a pod asking for host ports fits only on nodes where none of them is
taken (upstream's nodeports plugin).

A wanted (ip, protocol, port) conflicts with a used one of the same protocol and
port when the IPs are equal or either is the wildcard 0.0.0.0 (upstream's
HostPortInfo.CheckConflict); the table keeps the used ports per node. The ports
counted are those of the app containers and of restartable init containers
(sidecars), on both sides, as upstream's ``schedutil.GetHostPorts``. As upstream,
a pod's own ports are not checked against each other (the API server rejects
duplicates), and a pod without host ports skips the plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import known_fields, mapping
from scoring.batching import ROWS, SKIP, Signed
from scoring.framework import CycleState, DryRunFilter, FilterPlugin, Reason, Remaining
from scoring.objects import HostPort, PodInfo
from scoring.table import BoolArray, NodeTable

__all__ = ["NAME", "ERR_REASON", "NodePorts", "conflicting_nodes", "new"]

NAME: Final = "NodePorts"
ERR_REASON: Final = "node(s) didn't have free ports for the requested pod ports"


def conflicting_nodes(table: NodeTable, wanted: Sequence[HostPort]) -> BoolArray:
    """Nodes ``[:n]`` where any of the ``wanted`` host ports is already used."""
    mask = np.zeros(table.n, np.bool_)
    for hp in wanted:
        mask |= table.port_conflicts(hp)
    return mask


class NodePorts:
    name: Final = NAME

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed:
        """Batching: a node's verdict depends on the ports its own pods use (its row)."""
        return Signed(ROWS, pod.host_ports) if pod.host_ports else Signed(SKIP)

    def filter_rows(self, pod: PodInfo, table: NodeTable, rows: npt.NDArray[np.intp], state: CycleState) -> BoolArray:
        """Whether each of ``rows`` has one of the pod's host ports in use."""
        mask = np.zeros(len(rows), np.bool_)
        for hp in pod.host_ports:
            cols = table.port_conflict_columns(hp)
            if cols:
                mask |= (table.port_counts[rows][:, cols] > 0).any(axis=1)
        return mask

    def reasons_of_rows(self, pod: PodInfo, table: NodeTable, data: BoolArray, state: CycleState) -> Sequence[Reason]:
        """``filter``'s reasons from ``filter_rows`` of every row."""
        return [Reason(ERR_REASON, data.copy())] if data.any() else []

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        if not pod.host_ports:
            return None  # upstream's PreFilter Skip
        mask = conflicting_nodes(table, pod.host_ports)
        # Unschedulable, not unresolvable: evicting the pod that holds the port frees it.
        return [Reason(ERR_REASON, mask)] if mask.any() else None

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        return bool(pod.host_ports)

    def filter_remaining(self, pod: PodInfo, table: NodeTable, state: CycleState,
                         remaining: Remaining) -> Sequence[Reason] | None:
        """The filter over ``remaining.rows`` as they would be with ``remaining.port_counts``."""
        mask = np.zeros(len(remaining.rows), np.bool_)
        for hp in pod.host_ports:
            cols = table.port_conflict_columns(hp)
            if cols:
                mask |= (remaining.port_counts[:, cols] > 0).any(axis=1)
        return [Reason(ERR_REASON, mask)] if mask.any() else None


def new(args: Mapping[str, Any], path: str) -> NodePorts:
    known_fields(mapping(args, path), (), path)
    return NodePorts()


_: tuple[type[FilterPlugin], type[DryRunFilter]] = (NodePorts, NodePorts)
