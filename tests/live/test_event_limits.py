"""FailedScheduling reports are rate limited per pod and deduplicated by message."""

from __future__ import annotations

from scheduler.kube.events import EventLimiter
from tests.live.support import FakeClock


def test_first_report_always_goes_out(clock: FakeClock) -> None:
    lim = EventLimiter(clock=clock)
    assert lim.allow("ns/a", "0/3 nodes are available") is None
    assert lim.allow("ns/b", "0/3 nodes are available") is None  # per pod


def test_same_message_is_repeated_only_after_repeat_interval(clock: FakeClock) -> None:
    lim = EventLimiter(min_interval=5, repeat_interval=60, clock=clock)
    assert lim.allow("ns/a", "m") is None
    clock.advance(30)
    assert lim.allow("ns/a", "m") == "duplicate"
    clock.advance(31)
    assert lim.allow("ns/a", "m") is None


def test_new_message_waits_for_min_interval(clock: FakeClock) -> None:
    lim = EventLimiter(min_interval=5, repeat_interval=60, clock=clock)
    assert lim.allow("ns/a", "m1") is None
    clock.advance(1)
    assert lim.allow("ns/a", "m2") == "rate_limited"
    clock.advance(5)
    assert lim.allow("ns/a", "m2") is None


def test_forget_resets_a_pod(clock: FakeClock) -> None:
    lim = EventLimiter(clock=clock)
    assert lim.allow("ns/a", "m") is None
    lim.forget("ns/a")
    assert lim.allow("ns/a", "m") is None and len(lim) == 1
