"""Pods waiting at Permit: assumed on their node, holding its capacity, not yet bound.

A Permit plugin may answer Wait (Coscheduling does, until a group's quorum is
assigned). The pod then stays assumed in the cache and its binding task awaits it
here until every plugin that asked it to wait allows it, one of them rejects it,
or that plugin's timeout passes -- upstream's waitingPodsMap, with an asyncio
future and one timer per plugin instead of a channel and ``time.AfterFunc``.

Allowing or rejecting only resolves the future: the binding task does the rest
(bind, or Unreserve + forget + report) on its next turn of the event loop. When
the scheduler stops, every waiting pod is rejected, so that nothing waits for a
binding that will never be sent and no group is bound in part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from scoring.framework import WaitingPod
from scoring.objects import PodInfo
from scoring.plugins.coscheduling import go_duration

__all__ = ["Waiting", "WaitingPodsMap", "PermitOutcome", "STOPPING"]

STOPPING: Final = "rejected because the scheduler is stopping"


@dataclass(frozen=True, slots=True)
class PermitOutcome:
    """How a wait ended: allowed, or rejected by ``plugin`` with ``message``."""

    allowed: bool
    plugin: str = ""
    message: str = ""


class Waiting:
    """One waiting pod (upstream's waitingPod)."""

    def __init__(self, *, pod: PodInfo, node: str, waits: Mapping[str, float], owner: WaitingPodsMap) -> None:
        self._pod = pod
        self._node = node
        self._owner = owner
        loop = asyncio.get_running_loop()
        self.started = time.perf_counter()
        self.future: asyncio.Future[PermitOutcome] = loop.create_future()
        self._timers = {plugin: loop.call_later(seconds, self.reject, plugin,
                                                f"rejected due to timeout after waiting {go_duration(seconds)} "
                                                f"at plugin {plugin}")
                        for plugin, seconds in waits.items()}

    @property
    def pod(self) -> PodInfo:
        return self._pod

    @property
    def node(self) -> str:
        return self._node

    @property
    def pending_plugins(self) -> list[str]:
        return list(self._timers)

    def allow(self, plugin: str) -> None:
        """``plugin`` allows the pod; it is bound once no plugin still holds it."""
        timer = self._timers.pop(plugin, None)
        if timer is not None:
            timer.cancel()
        if not self._timers:
            self._finish(PermitOutcome(True))

    def reject(self, plugin: str, message: str) -> None:
        """The pod will not be bound: its binding task unreserves it and reports ``message``."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._finish(PermitOutcome(False, plugin, message))

    def _finish(self, outcome: PermitOutcome) -> None:
        if not self.future.done():
            self.future.set_result(outcome)
        self._owner.remove(self._pod.key)

    async def wait(self) -> PermitOutcome:
        return await self.future


class WaitingPodsMap:
    """The waiting pods of every profile, by pod key (upstream's waitingPodsMap)."""

    def __init__(self) -> None:
        self._pods: dict[str, Waiting] = {}

    def add(self, *, pod: PodInfo, node: str, waits: Mapping[str, float]) -> Waiting:
        w = Waiting(pod=pod, node=node, waits=waits, owner=self)
        self._pods[pod.key] = w
        return w

    def remove(self, key: str) -> None:
        self._pods.pop(key, None)

    def get(self, key: str) -> WaitingPod | None:
        return self._pods.get(key)

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(list(self._pods.values()))

    def __len__(self) -> int:
        return len(self._pods)

    def reject_all(self, plugin: str, message: str) -> None:
        for w in list(self._pods.values()):
            w.reject(plugin, message)
