"""A repeated Event is counted on the Event already recorded, as client-go's core/v1 correlator does.

The same pod, reason, message and type seen again within the aggregator's window becomes a
PATCH of that Event's ``count`` and ``lastTimestamp``; a different message, or the same one
after the window, is a new Event. Checked against the embedded API server over HTTP, with a
fake clock for the window and an ``EventLimiter`` that lets every report through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.events import EventAggregator, EventLimiter, EventRecorder, PodRef, _Involved
from scoring.objects import pod_from_json
from tests.live.support import FakeClock, wait_for

WINDOW = 360.0  # the aggregator's default: client-go's 6-minute series window


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[KubeClient]:
    c = await connect(ClientSettings(kubeconfig=str(apiserver.kubeconfig_path)))
    yield c
    await c.close()


def _events(srv: ApiServer, name: str) -> list[dict[str, Any]]:
    return [e for e in srv.list("events", namespace="default")
            if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"]


def _counts(srv: ApiServer, name: str) -> list[tuple[str, int]]:
    return sorted((e["message"], e["count"]) for e in _events(srv, name))


# Each step: seconds the clock moves first, the message reported, then the pod's FailedScheduling
# Events as (message, count), sorted.
CASES = [
    pytest.param([(0, "A", [("A", 1)]),
                  (10, "A", [("A", 2)]),            # 10 s <= 360 s after the last: counted, 1 -> 2
                  (350, "A", [("A", 3)])],          # 350 s after the last (360 after the first): 2 -> 3
                 id="repeats-within-the-window-count-1-2-3"),
    pytest.param([(0, "A", [("A", 1)]),
                  (WINDOW + 1, "A", [("A", 1), ("A", 1)])],  # 361 s > 360 s: a new Event
                 id="after-the-window-a-new-event"),
    pytest.param([(0, "A", [("A", 1)]),
                  (1, "B", [("A", 1), ("B", 1)]),   # another message: another Event
                  (1, "A", [("A", 2), ("B", 1)])],  # A again, 2 s after A: counted on A
                 id="a-different-message-is-a-new-event"),
]


@pytest.mark.parametrize("steps", CASES)
async def test_repeats_are_counted_on_one_event(apiserver: ApiServer, client: KubeClient, clock: FakeClock,
                                                steps: list[tuple[float, str, list[tuple[str, int]]]]) -> None:
    recorder = EventRecorder(client=client, instance="t", limiter=EventLimiter(min_interval=0, repeat_interval=0),
                             aggregator=EventAggregator(window=WINDOW, clock=clock))
    ref = PodRef.of(pod_from_json(apiserver.create("pods", _pod("p"), namespace="default")))
    names: dict[str, str] = {}
    for advance, message, want in steps:
        clock.advance(advance)
        assert recorder.failed(ref, message)
        await wait_for(lambda: _counts(apiserver, "p") == want, what=f"{want}")
        for e in _events(apiserver, "p"):
            if e["count"] > 1:  # a repeat keeps the Event's name and first timestamp
                assert e["metadata"]["name"] == names[e["message"]]
            names.setdefault(e["message"], e["metadata"]["name"])
    await recorder.drain(timeout=2)
    assert recorder.pending == 0


async def test_a_repeat_of_a_deleted_event_creates_it_again_with_the_count(
        apiserver: ApiServer, client: KubeClient, clock: FakeClock) -> None:
    # client-go's recordToSink: the PATCH answers 404 (the Event expired), so the Event is
    # created again under its name, with the count it would have had (1 + 1 = 2).
    recorder = EventRecorder(client=client, instance="t", limiter=EventLimiter(min_interval=0, repeat_interval=0),
                             aggregator=EventAggregator(window=WINDOW, clock=clock))
    ref = PodRef.of(pod_from_json(apiserver.create("pods", _pod("p"), namespace="default")))
    recorder.failed(ref, "A")
    await wait_for(lambda: _counts(apiserver, "p") == [("A", 1)], what="A created")
    [first] = _events(apiserver, "p")
    await client.request("DELETE", f"/api/v1/namespaces/default/events/{first['metadata']['name']}")
    clock.advance(5)
    recorder.failed(ref, "A")
    await wait_for(lambda: _counts(apiserver, "p") == [("A", 2)], what="A created again with count 2")
    [again] = _events(apiserver, "p")
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["firstTimestamp"] == first["firstTimestamp"]
    await recorder.drain(timeout=2)


@pytest.mark.parametrize(("window", "entries", "advance", "want"), [
    # window 360 s, 10 s later: the same key is a repeat of the recorded Event
    pytest.param(360.0, 4096, 10.0, True, id="within-window"),
    # 360 + 1 s later: forgotten
    pytest.param(360.0, 4096, 361.0, False, id="past-window"),
    # one entry remembered, a second key recorded after it: the first is evicted (LRU)
    pytest.param(360.0, 1, 0.0, False, id="evicted-by-a-newer-key"),
])
def test_aggregator_window_and_size(clock: FakeClock, window: float, entries: int, advance: float,
                                    want: bool) -> None:
    agg = EventAggregator(window=window, max_entries=entries, clock=clock)
    a = _key("A")
    agg.recorded(a, name="p.1", count=1, first_timestamp="t0")
    if entries == 1:
        agg.recorded(_key("B"), name="p.2", count=1, first_timestamp="t0")
    clock.advance(advance)
    assert (agg.observe(a) is not None) is want
    assert len(agg) <= entries


def _key(message: str) -> Any:
    return (_Involved("v1", "Pod", "default", "p", "uid-1"), None, "Warning", "FailedScheduling", message)


def _pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"schedulerName": "vecsched", "containers": [{"name": "c", "image": "x"}]}}
