"""Cycles run in turns: one pass of the event loop schedules the ready pods, up to the turn's
number of cycles or its time, then lets the watch and the bindings in."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from scheduler.apiserver import ApiServer
from scheduler.queue import QueuedPod
from tests.live.support import assert_no_overcommit, bound_count, pod, running, wait_for

CASES = [
    # (turn seconds, turn pods, pending pods, cycles in each pass of the event loop)
    # All 40 pods are in activeQ before the first cycle (the list is read before scheduling
    # starts), and a minute never runs out: passes of 16, 16 and the 8 left.
    pytest.param(60.0, 16, 40, [16, 16, 8], id="cut by the number of pods"),
    # No time at all: the turn ends after its first cycle, one pod per pass.
    pytest.param(0.0, 16, 6, [1] * 6, id="cut by the time"),
    # One cycle per turn: kube-scheduler's loop, one pod per pass.
    pytest.param(60.0, 1, 5, [1] * 5, id="one pod per turn"),
    # 3 pods, 16 allowed: the turn ends when activeQ is empty.
    pytest.param(60.0, 16, 3, [3], id="cut by an empty queue"),
]


@pytest.mark.parametrize(("seconds", "pods", "pending", "passes"), CASES)
async def test_a_turn_schedules_ready_pods_until_its_pods_or_time_run_out(
        apiserver: ApiServer, seconds: float, pods: int, pending: int, passes: list[int]) -> None:
    for i in range(pending):
        apiserver.create("pods", pod(f"p{i:02d}"))
    ticks = 0
    seen: list[int] = []  # the pass of the event loop each cycle ran in

    async def ticker() -> None:  # counts passes: it runs once in each
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    try:
        async with running(apiserver, ready=False) as s:
            assert s.cycle is not None  # made by start(); its first cycle waits for the informers
            s.cycle.turn_seconds, s.cycle.turn_pods = seconds, pods
            one = s.cycle.schedule_one

            def schedule_one(qp: QueuedPod) -> None:
                seen.append(ticks)
                one(qp)

            s.cycle.schedule_one = schedule_one  # type: ignore[method-assign]
            await wait_for(lambda: bound_count(apiserver) == pending, what=f"{pending} pods bound")
    finally:
        t.cancel()
    assert [len(list(g)) for _, g in itertools.groupby(seen)] == passes
    assert_no_overcommit(apiserver)

