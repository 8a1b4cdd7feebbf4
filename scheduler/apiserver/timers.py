"""Shared timers for the simulated kubelets: one loop timer for thousands of due actions.

A benchmark cluster has 5,000 simulated nodes and 50,000 pods. If every
kubelet kept its own timers -- one per pod start, per simulated container
exit, per graceful kill, one per node for its lease and its status report --
the event loop would hold tens of thousands of handles and wake up for each.
Instead the kubelets share two kinds of timer, each backed by a single
``loop.call_later`` handle at a time:

* ``Timeline``: one-shot actions at arbitrary due times (a heap); every
  action due when the timer fires runs in that one callback.
* ``Rota``: members renewed periodically (node leases, node status), spread
  evenly over the period so that renewals trickle instead of arriving in a
  burst, and handled in small batches.

Both use ``time.monotonic()`` (the clock asyncio's default loop runs on), can
be filled before an event loop exists (the API server registers its nodes in
its constructor), and only arm their timer between ``start()`` and
``stop()``: a stopped kubelet keeps what it was told but does nothing.
"""

from __future__ import annotations

import abc
import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Final

__all__ = ["Timeline", "Rota"]

log = logging.getLogger("vecsched.apiserver.kubelet")

# Actions due within a millisecond of the first one run in the same callback: a
# loop that binds 2,000 pods in a burst then starts them in a handful of wake-ups.
_SLACK: Final = 0.001
# At most this many actions per callback (50,000 pods bound in a burst start in
# 50 slices of a few tenths of a second each, not in one ten-second stall).
_BATCH: Final = 1000
# (sqrt(5) - 1) / 2: successive multiples modulo 1 fill [0, 1) evenly whatever
# their count, so members added one by one get evenly spread phases.
_GOLDEN: Final = 0.6180339887498949


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None  # constructed before the loop runs; start() arms the timer


class _LoopTimer(abc.ABC):
    """One ``call_later`` handle at a time, re-armed by the subclass's ``_arm``; started and stopped as a whole."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._running = False

    def start(self) -> None:
        self._running = True
        self._arm()

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @abc.abstractmethod
    def _arm(self) -> None:
        """Schedule the next firing (with ``_schedule``) if there is one and none is pending."""

    @abc.abstractmethod
    def _fire(self) -> None:
        """The timer's work; it must set ``_timer`` to None and call ``_arm`` again."""

    def _schedule(self, at: float) -> None:
        """Fire at monotonic time ``at`` (no-op without a running event loop: ``start`` arms it)."""
        loop = _loop()
        if loop is None:
            return
        self._timer_at = at
        self._timer = loop.call_later(max(at - time.monotonic(), 0.0), self._fire)


class Timeline(_LoopTimer):
    """One-shot actions at monotonic due times, run by a single shared loop timer.

    Actions must check that what they act on is still current (the pod may
    be gone or replaced by the time they run); an exception is logged and
    does not stop the others.
    """

    def __init__(self) -> None:
        super().__init__()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def after(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` in ``delay`` seconds (at once, in a callback, when ``delay <= 0``)."""
        self.at(time.monotonic() + max(delay, 0.0), action)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at monotonic time ``when``."""
        heapq.heappush(self._heap, (when, next(self._seq), action))
        if self._timer is not None and when + _SLACK < self._timer_at:
            self._timer.cancel()
            self._timer = None
        self._arm()

    def _arm(self) -> None:
        if not self._running or self._timer is not None or not self._heap:
            return
        self._schedule(self._heap[0][0] + _SLACK)

    def _fire(self) -> None:
        self._timer = None
        now = time.monotonic()
        due: list[Callable[[], None]] = []
        while self._heap and self._heap[0][0] <= now and len(due) < _BATCH:
            due.append(heapq.heappop(self._heap)[2])
        # Actions queued by these actions wait for the next callback, and so do
        # due actions beyond the batch: the API server answers requests in between.
        for action in due:
            try:
                action()
            except Exception:  # a bug in one pod's handling must not stall every node's kubelet
                log.exception("simulated kubelet action failed")
        self._arm()


class Rota(_LoopTimer):
    """Members renewed every ``interval`` seconds, spread evenly over the interval, by one timer.

    ``renew(name)`` is called for each member when its turn comes; members
    added with ``now=True`` take their first turn at once (a kubelet creates
    its lease as it starts), the others at an evenly spread phase. The timer
    fires at most every ``batch`` seconds and renews everyone due by then, so
    a turn may come up to ``batch`` seconds late.
    """

    def __init__(self, *, interval: float, renew: Callable[[str], None], batch: float | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"a renewal interval must be > 0 seconds, got {interval}")
        self.interval = interval
        # A twentieth of the interval, at most half a second: 5,000 leases renewed every
        # 10 s are written 250 at a time, and no renewal is late by more than 5 %.
        self.batch = min(interval / 20, 0.5) if batch is None else batch
        super().__init__()
        self._renew = renew
        # (due, token, name, delay of the turn after this one when not a whole interval)
        self._heap: list[tuple[float, int, str, float | None]] = []
        self._token: dict[str, int] = {}
        self._seq = itertools.count()
        self._added = 0

    def __contains__(self, name: object) -> bool:
        return name in self._token

    def __len__(self) -> int:
        return len(self._token)

    def add(self, name: str, *, now: bool = False) -> None:
        """Take ``name`` on (again): its next turn at once with ``now``, else at its spread phase.

        Either way the turns after it come at the member's spread phase, so
        members taken on together do not stay in step.
        """
        self._added += 1
        phase = self.interval * ((self._added * _GOLDEN) % 1.0)
        self._push(name, time.monotonic() if now else time.monotonic() + phase, then=phase if now else None)

    def remove(self, name: str) -> None:
        self._token.pop(name, None)  # its heap entry is skipped when it comes up

    def _push(self, name: str, due: float, *, then: float | None = None, arm: bool = True) -> None:
        seq = next(self._seq)
        self._token[name] = seq
        heapq.heappush(self._heap, (due, seq, name, then))
        if not arm:
            return
        if self._timer is not None and due + self.batch < self._timer_at:
            self._timer.cancel()
            self._timer = None
        self._arm()

    def _arm(self) -> None:
        if not self._running or self._timer is not None:
            return
        while self._heap and self._token.get(self._heap[0][2]) != self._heap[0][1]:
            heapq.heappop(self._heap)  # removed or re-added members
        if not self._heap:
            return
        self._schedule(max(self._heap[0][0], time.monotonic()) + self.batch)

    def _fire(self) -> None:
        self._timer = None
        now = time.monotonic()
        due = []
        while self._heap and self._heap[0][0] <= now:
            when, seq, name, then = heapq.heappop(self._heap)
            if self._token.get(name) == seq:
                due.append((when, name, then))
        for when, name, then in due:
            if then is not None:
                # After a turn taken at once, on to the member's spread phase (a whole
                # interval later when that phase is too close to count as a new turn).
                nxt = now + (then if then >= self.batch else then + self.interval)
            else:
                # Keep each member's phase, also when the loop was blocked for more than a
                # period: the next turn due after now, one renewal for all the missed ones.
                nxt = when + self.interval * (math.floor((now - when) / self.interval) + 1)
            self._push(name, nxt, arm=False)
            try:
                self._renew(name)
            except Exception:  # one node's failure must not stop the others' renewals
                log.exception("periodic renewal for %s failed", name)
        self._arm()
