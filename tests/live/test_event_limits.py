"""FailedScheduling reports are rate limited per pod and deduplicated by message; a report held back
by the rate limit is sent when it allows."""

from __future__ import annotations

import asyncio
from typing import Any

from scheduler.apiserver import ApiServer
from scheduler.kube.client import ClientSettings, connect
from scheduler.kube.events import EventLimiter, EventRecorder, PodRef
from scoring.objects import pod_from_json
from tests.live.support import FakeClock, wait_for


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


def _pod(srv: ApiServer, name: str) -> dict[str, Any]:
    return srv.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                               "spec": {"schedulerName": "vecsched", "containers": [{"name": "c", "image": "x"}]}},
                      namespace="default")


def _reports(srv: ApiServer, name: str) -> tuple[list[str], str | None]:
    """The pod's FailedScheduling Event messages (oldest first) and its PodScheduled condition's message."""
    events = sorted((e for e in srv.list("events", namespace="default")
                     if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"),
                    key=lambda e: e["eventTime"])
    pod = srv.get("pods", name, namespace="default")
    cond = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"), None)
    return [e["message"] for e in events], cond["message"] if cond else None


async def test_a_report_held_back_by_the_rate_limit_goes_out_when_it_allows(apiserver: ApiServer) -> None:
    # A pod whose reason changes within min_interval (a gang member first short of siblings, then
    # refused with its whole group) must not keep showing the first reason until its next attempt:
    # the latest report held back is sent once the interval is over; the one in between never is.
    client = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
    try:
        recorder = EventRecorder(client=client, instance="t", limiter=EventLimiter(min_interval=0.5))
        ref = PodRef.of(pod_from_json(_pod(apiserver, "p")))
        assert recorder.failed(ref, "first")          # sent
        assert not recorder.failed(ref, "second")     # held back (0 s < 0.5 s)...
        assert not recorder.failed(ref, "third")      # ... and replaced by the latest
        await wait_for(lambda: _reports(apiserver, "p") == (["first", "third"], "third"), what="third sent")
        # A pod that left (bound or deleted) before the interval ends gets nothing more.
        other = PodRef.of(pod_from_json(_pod(apiserver, "q")))
        assert recorder.failed(other, "first")
        assert not recorder.failed(other, "second")
        recorder.forget(other.key)
        await asyncio.sleep(0.8)
        assert _reports(apiserver, "q") == (["first"], "first")
        await recorder.drain(timeout=1)
    finally:
        await client.close()
