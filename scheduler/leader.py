"""Leader election over a ``coordination.k8s.io/v1`` Lease, as client-go does it.

Several replicas of vecsched may run for availability, but two schedulers
binding from two views of the cluster would over-commit nodes. Exactly one
replica -- the holder of the Lease -- schedules. The rules are upstream's
(``leaderElection`` in the config; 15 s lease, 10 s renew deadline, 2 s retry):

- a candidate takes the Lease when it is free or its holder has not renewed
  it for ``leaseDurationSeconds`` *as observed by the candidate's own clock*
  (clocks of different machines are never compared);
- the leader renews every ``retry_period``; if it cannot renew within
  ``renew_deadline`` it stops scheduling at once -- before anyone else may
  take over, since ``renew_deadline < lease_duration``;
- on shutdown the leader releases the Lease (empty holder), so a successor
  need not wait for it to expire.

Writes use the Lease's resourceVersion, so two candidates racing for it
cannot both win.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from scheduler.kube.client import KubeClient
from scheduler.kube.errors import ConflictError, KubeError, NotFoundError

__all__ = ["LeaseSettings", "LeaderElector"]

log = logging.getLogger("vecsched.leader")


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    namespace: str = "kube-system"
    """Namespace of the Lease (``leaderElection.resourceNamespace``)."""
    name: str = "vecsched"
    """Name of the Lease (``leaderElection.resourceName``); replicas that share it compete."""
    identity: str = "vecsched"
    """This replica's name in ``holderIdentity``; must be unique among replicas."""
    lease_duration: float = 15.0
    """Seconds a lease is valid after its last renewal (upstream default)."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps trying to renew before it gives up leading (upstream default)."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew (upstream default)."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs 0 < retryPeriod < renewDeadline < leaseDuration, got "
                             f"{self.retry_period}, {self.renew_deadline}, {self.lease_duration}")


def _micro_time() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for the Lease and keeps ``leading`` set exactly while this replica may schedule."""

    def __init__(self, *, client: KubeClient, settings: LeaseSettings,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self.leading = asyncio.Event()
        self._on_change = on_change
        self._renewed_at = -math.inf
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = -math.inf
        self._path = (f"/apis/coordination.k8s.io/v1/namespaces/{settings.namespace}/leases/{settings.name}")

    def is_leader(self) -> bool:
        """True only while the last successful renewal is younger than the renew deadline."""
        if not self.leading.is_set():
            return False
        if self.clock() - self._renewed_at >= self.settings.renew_deadline:
            self._set_leading(False)
            return False
        return True

    def _set_leading(self, value: bool) -> None:
        if value == self.leading.is_set():
            return
        if value:
            self.leading.set()
            log.info("became leader (lease %s/%s, identity %s)", self.settings.namespace, self.settings.name,
                     self.settings.identity)
        else:
            self.leading.clear()
            log.warning("stopped leading (lease %s/%s)", self.settings.namespace, self.settings.name)
        if self._on_change is not None:
            self._on_change(value)

    def _spec(self, *, acquire_time: str | None, transitions: int) -> dict[str, Any]:
        now = _micro_time()
        return {"holderIdentity": self.settings.identity,
                "leaseDurationSeconds": max(1, math.ceil(self.settings.lease_duration)),
                "acquireTime": acquire_time or now, "renewTime": now, "leaseTransitions": transitions}

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's tryAcquireOrRenew). True when this replica holds the lease now."""
        me = self.settings.identity
        try:
            lease = await self.client.request("GET", self._path)
        except NotFoundError:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
                    "spec": self._spec(acquire_time=None, transitions=0)}
            try:
                await self.client.request("POST", self._path.rsplit("/", 1)[0], body=body)
            except KubeError as e:
                log.warning("could not create lease %s/%s: %s", self.settings.namespace, self.settings.name, e)
                return False
            self._renewed_at = self.clock()
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        seen = (holder, str(spec.get("renewTime") or ""))
        now = self.clock()
        if seen != self._observed:
            self._observed, self._observed_at = seen, now
        duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_duration)
        if holder and holder != me and now < self._observed_at + duration:
            return False  # held by another replica whose lease has not expired in our eyes
        transitions = int(spec.get("leaseTransitions") or 0)
        ours = holder == me
        lease["spec"] = self._spec(acquire_time=spec.get("acquireTime") if ours else None,
                                   transitions=transitions if ours else transitions + 1)
        attempt_started = self.clock()
        try:
            await self.client.request("PUT", self._path, body=lease)
        except (ConflictError, KubeError) as e:
            log.debug("lease update failed: %s", e)
            return False
        self._renewed_at = attempt_started
        return True

    async def run(self, *, stop: asyncio.Event) -> None:
        """Campaign and renew until ``stop``; then release the lease if held."""
        rng = random.Random()
        try:
            while not stop.is_set():
                try:
                    ok = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=self.settings.renew_deadline)
                except (asyncio.TimeoutError, KubeError) as e:
                    log.info("leader election attempt failed: %s", e)
                    ok = False
                if ok:
                    self._set_leading(True)
                else:
                    self.is_leader()  # drops leadership once the renew deadline has passed
                # client-go jitters the candidate's retries (factor 1.2) but not the leader's renewals.
                wait = self.settings.retry_period * (1.0 if self.leading.is_set() else 1.0 + 0.2 * rng.random())
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the lease up (empty holder, 1 s duration) if this replica holds it."""
        was_leading = self.leading.is_set()
        self._set_leading(False)
        if not was_leading:
            return
        try:
            lease = await self.client.request("GET", self._path)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.settings.identity:
                return
            spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _micro_time()})
            lease["spec"] = spec
            await asyncio.wait_for(self.client.request("PUT", self._path, body=lease), timeout=5.0)
            log.info("released lease %s/%s", self.settings.namespace, self.settings.name)
        except (KubeError, asyncio.TimeoutError) as e:
            log.info("could not release lease: %s", e)
