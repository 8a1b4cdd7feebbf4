"""Pods nominated to a node by preemption, as the filters must see them.

A pod that preempted others waits, pending, for its victims to leave; its
``status.nominatedNodeName`` names the node it is waiting for. Until it is bound,
every other pod of equal or lower priority must see that node as if the nominated
pod were already there, or it would take the room the victims freed (upstream's
PodNominator and ``addGENominatedPods``). The live scheduler's cache keeps this
table extension in step with the API; ``explain`` fills it from the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scoring.objects import PodInfo
from scoring.table import NodeTable

__all__ = ["Nominations", "status_nominated_node", "nominated_node"]


def status_nominated_node(raw: Mapping[str, Any] | None) -> str:
    """A Pod's ``status.nominatedNodeName`` ("" when it has none)."""
    status = raw.get("status") if raw else None
    node = status.get("nominatedNodeName") if isinstance(status, Mapping) else None
    return node if isinstance(node, str) else ""


@dataclass
class Nominations:
    """Pending pods by key, each with the node it is nominated to."""

    KEY: ClassVar[str] = "framework/nominations"
    pods: dict[str, tuple[PodInfo, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, table: NodeTable) -> Nominations:
        ext = table.extensions.get(cls.KEY)
        if not isinstance(ext, Nominations):
            ext = table.extensions[cls.KEY] = Nominations()
        return ext

    def set(self, pod: PodInfo, node: str) -> None:
        """Nominate ``pod`` to ``node``; an empty node clears the nomination."""
        if node:
            self.pods[pod.key] = (pod, node)
        else:
            self.pods.pop(pod.key, None)

    def clear(self, key: str) -> None:
        self.pods.pop(key, None)

    def node_of(self, key: str) -> str | None:
        got = self.pods.get(key)
        return got[1] if got else None

    def on(self, node: str) -> Iterator[PodInfo]:
        """The pods nominated to ``node``."""
        return (p for p, n in self.pods.values() if n == node)

    def add_to(self, table: NodeTable, pod: PodInfo) -> list[tuple[str, int]]:
        """Charge to their nodes, in ``table``, the nominated pods that ``pod`` must make
        room for: those of equal or higher priority, other than ``pod`` itself, not yet
        placed, on a node the table knows. Returns (key, row) of each; the caller
        removes them again with ``table.remove_pod``."""
        added: list[tuple[str, int]] = []
        for other, node in self.pods.values():
            if other.priority < pod.priority or other.key == pod.key or other.key in table.pods:
                continue
            row = table.index.get(node)
            if row is None:
                continue
            table.add_pod(other, node)
            added.append((other.key, row))
        return added



def nominated_node(pod: PodInfo, table: NodeTable) -> str:
    """The node ``pod`` is nominated to: the scheduler's own record (in ``table``), else
    the pod's status."""
    ext = table.extensions.get(Nominations.KEY)
    if isinstance(ext, Nominations):
        node = ext.node_of(pod.key)
        if node:
            return node
    return status_nominated_node(pod.raw)
