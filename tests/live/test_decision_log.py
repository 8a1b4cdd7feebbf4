"""Decision lines: every pod's line at debug level, one summary per interval at info level.

``DecisionLog`` keeps a busy scheduler's log to about a line a second at info level while
``--log-level debug`` still shows every decision with its fields.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from scheduler.logs import SUMMARY, DecisionLog
from tests.live.support import FakeClock


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _logger(name: str, level: int) -> tuple[logging.Logger, _Lines]:
    logger = logging.getLogger(f"vecsched.test.{name}")
    logger.handlers.clear()
    lines = _Lines()
    logger.addHandler(lines)
    logger.setLevel(level)
    logger.propagate = False
    return logger, lines


def _fields(i: int) -> Any:
    return lambda: {"pod": f"default/p{i}", "node": "node-0000"}


# Decisions at t = 0, 0.2, 0.5 (a failure) and 1.0 s, interval 1 s. The first is summarised at
# once (nothing written for 1 s before it); 0.2 and 0.5 are counted; at 1.0 s the interval since
# the last line (t = 0) is over, so the line covers p1, p2, p3: scheduled 2, failed 1, last p3.
STEPS = [(0.0, "scheduled"), (0.2, "scheduled"), (0.5, "failed"), (1.0, "scheduled")]
SUMMARIES = [{"scheduled": 1, "failed": 0, "last": "scheduled pod", "pod": "default/p0"},
             {"scheduled": 2, "failed": 1, "last": "scheduled pod", "pod": "default/p3"}]


@pytest.mark.parametrize(("level", "debug_lines", "summaries"), [
    pytest.param(logging.INFO, 0, SUMMARIES, id="info-summaries-only"),
    pytest.param(logging.DEBUG, 4, SUMMARIES, id="debug-every-decision-and-summaries"),
    pytest.param(logging.WARNING, 0, [], id="warning-nothing"),
])
def test_summary_once_per_interval(level: int, debug_lines: int, summaries: list[dict[str, Any]]) -> None:
    logger, lines = _logger(f"sync{level}", level)
    clock = FakeClock(start=0.0)
    decisions = DecisionLog(logger=logger, interval=1.0, clock=clock)
    for i, (at, outcome) in enumerate(STEPS):
        clock.now = at
        decisions.record("scheduled pod" if outcome == "scheduled" else "pod not scheduled", _fields(i),
                         outcome=outcome)
    debug = [r for r in lines.records if r.levelno == logging.DEBUG]
    assert len(debug) == debug_lines
    if debug:
        assert debug[2].getMessage() == "pod not scheduled" and debug[2].fields["pod"] == "default/p2"  # type: ignore[attr-defined]
    got = [r.fields for r in lines.records if r.getMessage() == SUMMARY]  # type: ignore[attr-defined]
    assert [{k: f[k] for k in ("scheduled", "failed", "last", "pod")} for f in got] == summaries
    assert all(r.levelno == logging.INFO for r in lines.records if r.getMessage() == SUMMARY)


async def test_decisions_counted_in_an_interval_are_written_when_it_ends() -> None:
    # interval 0.05 s: p0 is written at once, p1 (right after) is counted and written by the timer
    # when the interval ends, with no further decision to trigger it.
    logger, lines = _logger("timer", logging.INFO)
    decisions = DecisionLog(logger=logger, interval=0.05, clock=time.monotonic)
    decisions.record("scheduled pod", _fields(0), outcome="scheduled")
    decisions.record("scheduled pod", _fields(1), outcome="scheduled")
    assert [r.fields["pod"] for r in lines.records] == ["default/p0"]  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    assert [(r.fields["scheduled"], r.fields["pod"]) for r in lines.records] == \
        [(1, "default/p0"), (1, "default/p1")]  # type: ignore[attr-defined]
