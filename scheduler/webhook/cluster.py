"""What the webhooks know of the cluster: namespaces' labels, and the nodes' total allocatable.

The pod webhook answers within a second and is called for every pod created,
so it must not ask the API about the pod's namespace each time: a Namespaces
informer keeps every namespace's labels (the server is ready once it has
listed them). A namespace created an instant before its first pod may not
have reached the informer yet; that miss alone is looked up with one GET,
within the request's budget.

The PodGroup webhook compares ``minResources`` with every node's allocatable
summed, kept by a Nodes informer as running totals. It is optional: where the
webhook's role may not list nodes (the API answers 403) or nodes are not
served, the totals stay empty and the capacity rule is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from scheduler.kube.client import KubeClient
from scheduler.kube.errors import KubeError, NotFoundError
from scheduler.kube.informer import NAMESPACES, NODES, Backoff, Delta, Informer
from scheduler.webhook.podgroups import ClusterCapacity
from scoring.objects import ObjectError, parse_resource_list

__all__ = ["NamespaceLabels", "NodeCapacity"]

log = logging.getLogger("vecsched.webhook")


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): v for k, v in labels.items() if isinstance(v, str)}


class _Watched:
    """What the webhook keeps from one informer: started and stopped with the server, ``synced``
    once its first list arrived."""

    _informer: Informer

    @property
    def synced(self) -> asyncio.Event:
        return self._informer.synced

    def start(self) -> None:
        self._informer.start()

    async def stop(self) -> None:
        await self._informer.stop()


class NamespaceLabels(_Watched):
    """Every namespace's labels, from an informer; ``synced`` once the first list arrived."""

    def __init__(self, *, client: KubeClient, backoff: Backoff = Backoff()) -> None:
        self.client = client
        self._labels: dict[str, dict[str, str]] = {}
        self._informer = Informer(client=client, path=NAMESPACES, handler=self._on_namespace, backoff=backoff)
        self.lookups = 0
        """Namespaces looked up with a GET because the informer did not have them (tests read it)."""

    def _on_namespace(self, delta: Delta) -> None:
        name = _name(delta.obj)
        if delta.type == "DELETED":
            self._labels.pop(name, None)
        elif delta.type in ("ADDED", "MODIFIED") and name:
            self._labels[name] = _labels(delta.obj)

    def cached(self, name: str) -> Mapping[str, str] | None:
        """The labels as last seen by the informer; None for a namespace it has not seen."""
        return self._labels.get(name)

    async def get(self, name: str) -> Mapping[str, str] | None:
        """The namespace's labels: from the informer, else one GET; None if it does not exist or the
        API cannot say (the caller's deadline bounds the wait)."""
        labels = self._labels.get(name)
        if labels is not None or not name:
            return labels
        self.lookups += 1
        try:
            obj = await self.client.request("GET", f"{NAMESPACES}/{name}")
        except NotFoundError:
            return None
        except KubeError as e:
            log.warning("looking up namespace %s failed: %s", name, e)
            return None
        return _labels(obj) if isinstance(obj, Mapping) else None


class NodeCapacity(_Watched):
    """Every node's allocatable, summed per resource, kept current by an optional Nodes informer."""

    def __init__(self, *, client: KubeClient, backoff: Backoff = Backoff()) -> None:
        self._nodes: dict[str, dict[str, int]] = {}
        self._totals: dict[str, int] = {}
        self._unreadable: set[str] = set()
        self._informer = Informer(client=client, path=NODES, handler=self._on_node, backoff=backoff, optional=True)

    def _add(self, amounts: Mapping[str, int], sign: int) -> None:
        for resource, amount in amounts.items():
            total = self._totals.get(resource, 0) + sign * amount
            if total:
                self._totals[resource] = total
            else:
                self._totals.pop(resource, None)

    def _on_node(self, delta: Delta) -> None:
        name = _name(delta.obj)
        if delta.type not in ("ADDED", "MODIFIED", "DELETED") or not name:
            return
        old = self._nodes.pop(name, None)
        if old is not None:
            self._add(old, -1)
        if delta.type == "DELETED":
            return
        status = delta.obj.get("status")
        status = status if isinstance(status, Mapping) else {}
        source = "allocatable" if status.get("allocatable") is not None else "capacity"
        try:
            amounts = parse_resource_list(f"node {name}", f"status.{source}", status.get(source))
        except ObjectError as e:
            if name not in self._unreadable:  # once per node, not on every status update
                self._unreadable.add(name)
                log.warning("not counting a node's allocatable: %s", e)
            return
        self._unreadable.discard(name)
        self._nodes[name] = amounts
        self._add(amounts, +1)

    def capacity(self) -> ClusterCapacity | None:
        """The totals; None until the informer has listed nodes (or found it may not)."""
        if not self._informer.synced.is_set():
            return None
        return ClusterCapacity(totals=dict(self._totals), nodes=len(self._nodes))
