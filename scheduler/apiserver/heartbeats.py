"""Node heartbeats: each simulated kubelet's Lease and the Ready condition's ``lastHeartbeatTime``.

A real kubelet proves it is alive twice over (``pkg/kubelet/nodelease`` and
``pkg/kubelet/kubelet_node_status.go``): it renews a ``coordination.k8s.io/v1``
Lease named after its node in ``kube-node-lease`` every 10 s (a quarter of the
40 s lease duration), and it reposts the Node's status at least every
``nodeStatusReportFrequency`` (5 minutes), refreshing every condition's
``lastHeartbeatTime``. The node lifecycle controller reads both to decide
when a node stopped answering, and ``kubectl get leases -n kube-node-lease``
shows them. The simulated kubelets do the same for every Ready node, on two
shared ``Rota`` timers that spread the renewals over the period -- 5,000
nodes means 500 lease writes a second, not 5,000 every ten seconds.

A node made NotReady (``ApiServer.set_node_ready(name, False)``) plays a
kubelet that stopped: neither renews until it is Ready again, when the lease
is renewed at once. Every Node write wakes the scheduler, so the status
period stays at upstream's five minutes unless a test shortens it.

Simplified: the lease is written straight to the store (no admission, as a
kubelet's PUT of its own lease meets none that matters), renewal failures are
not retried with backoff but wait for the next turn, and the node's other
status fields (capacity, images) are never re-reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from . import errors
from .operations import Operations
from .podstatus import rfc3339
from .resources import builtin
from .store import Store
from .timers import Rota

__all__ = ["NodeHeartbeats", "LEASE_NAMESPACE", "LEASE_DURATION_SECONDS", "micro_time"]

log = logging.getLogger("vecsched.apiserver.kubelet")

LEASES: Final = builtin("leases.coordination.k8s.io")
NODES: Final = builtin("nodes")
LEASE_NAMESPACE: Final = "kube-node-lease"
LEASE_DURATION_SECONDS: Final = 40
"""The kubelet's ``nodeLeaseDurationSeconds`` default."""


def micro_time(t: float) -> str:
    """A ``metav1.MicroTime`` (microseconds, UTC) of epoch seconds ``t``, as leases carry."""
    whole = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1e6):06d}Z"


class NodeHeartbeats:
    """Lease renewals and status heartbeats for every Ready simulated node.

    ``lease_seconds`` / ``status_seconds`` of None switch the respective
    heartbeat off. ``clock`` gives the epoch seconds written as
    ``renewTime`` and ``lastHeartbeatTime``.
    """

    def __init__(self, *, store: Store, ops: Operations, lease_seconds: float | None,
                 status_seconds: float | None, clock: Callable[[], float]) -> None:
        for what, value in (("node_lease_seconds", lease_seconds), ("node_status_seconds", status_seconds)):
            if value is not None and value <= 0:
                raise ValueError(f"{what} must be > 0 seconds (or None to switch it off), got {value}")
        self.store = store
        self.ops = ops
        self.clock = clock
        self.leases = Rota(interval=lease_seconds, renew=self._renew_lease) if lease_seconds else None
        self.status = Rota(interval=status_seconds, renew=self._report_status) if status_seconds else None
        self._ready: dict[str, bool] = {}
        self.renewals = 0
        """Lease writes so far (creations included)."""

    # ---- what the kubelet module tells us -------------------------------------------------------

    def node_seen(self, name: str, *, ready: bool, registering: bool = False) -> None:
        """A Node exists (or was written); only Ready nodes send heartbeats.

        ``registering`` is for nodes present when the kubelets start, outside
        any store listener: their missing leases are created right away, so
        clients find them as soon as the server listens (leases restored from
        a state file wait for their turn). Nodes seen later take their first
        turn from the shared timer (a listener must not write).
        """
        was = self._ready.get(name)
        self._ready[name] = ready
        if self.leases is not None:
            if name not in self.leases:
                if registering and self.store.find(LEASES, LEASE_NAMESPACE, name) is None:
                    self._renew_lease(name)
                self.leases.add(name, now=not registering)
            elif ready and was is False:
                self.leases.add(name, now=True)  # back from NotReady: renew without waiting for its turn
        if self.status is not None and name not in self.status:
            self.status.add(name)

    def node_gone(self, name: str) -> None:
        self._ready.pop(name, None)
        for rota in (self.leases, self.status):
            if rota is not None:
                rota.remove(name)

    def start(self) -> None:
        for rota in (self.leases, self.status):
            if rota is not None:
                rota.start()

    def stop(self) -> None:
        for rota in (self.leases, self.status):
            if rota is not None:
                rota.stop()

    # ---- the renewals ----------------------------------------------------------------------------

    def _renew_lease(self, name: str) -> None:
        if not self._ready.get(name):
            return  # a stopped kubelet renews nothing; its lease runs out
        node = self.store.find(NODES, "", name)
        if node is None:
            return
        now = micro_time(self.clock())
        if self.store.find(LEASES, LEASE_NAMESPACE, name) is None:
            lease = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": LEASE_NAMESPACE, "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node.uid}]},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": now},
            }
            try:
                self.ops.create(LEASES, lease, namespace=LEASE_NAMESPACE)
            except errors.ApiError as e:  # e.g. its namespace was removed from a restored state
                log.warning("node %s: cannot create its lease: %s", name, e.message)
                return
        else:
            self.store.update(LEASES, LEASE_NAMESPACE, name, lambda lease: _renewed(lease, name, node.uid, now))
        self.renewals += 1

    def _report_status(self, name: str) -> None:
        if not self._ready.get(name) or self.store.find(NODES, "", name) is None:
            return
        now = rfc3339(self.clock())

        def beat(node: dict[str, Any]) -> dict[str, Any] | None:
            conds = (node.get("status") or {}).get("conditions") or []
            if all(c.get("lastHeartbeatTime") == now for c in conds):
                return None  # reported within this second already: nothing to write
            for c in conds:
                c["lastHeartbeatTime"] = now
            return node

        self.store.update(NODES, "", name, beat)


def _renewed(lease: dict[str, Any], name: str, node_uid: str, now: str) -> dict[str, Any]:
    meta = lease["metadata"]
    if not meta.get("ownerReferences"):  # the kubelet restores its owner reference if someone dropped it
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}]
    spec = lease.setdefault("spec", {})
    spec["holderIdentity"] = name
    spec["leaseDurationSeconds"] = LEASE_DURATION_SECONDS
    spec["renewTime"] = now
    return lease
