"""What every new object is stamped with: a random UID and its creation second.

UIDs are version 4 UUIDs drawn from ``os.urandom`` in batches, never repeated (also across a
fork); the timestamp text is built once per second and shared by the objects created in it.
"""

from __future__ import annotations

import calendar
import os
import time
import uuid

import pytest

from scheduler.apiserver import objects
from scheduler.apiserver.objects import new_uid, now_rfc3339


@pytest.mark.parametrize("count", [
    pytest.param(1, id="one"),
    pytest.param(256, id="one-batch"),  # objects._UID_BATCH uids per os.urandom call
    pytest.param(257, id="batch-boundary"),  # the 257th comes from a second call
    pytest.param(600, id="three-batches"),  # 256 + 256 + 88
])
def test_uids_are_distinct_version_4_uuids(count: int) -> None:
    uids = [new_uid() for _ in range(count)]
    assert len(set(uids)) == count
    for u in uids:
        parsed = uuid.UUID(u)
        # as str(uuid.uuid4()) writes it: lowercase 8-4-4-4-12, version 4, RFC 4122 variant
        assert (str(parsed), parsed.version, parsed.variant) == (u, 4, uuid.RFC_4122)


def test_forked_child_draws_its_own_uids() -> None:
    new_uid()  # the pool now holds the parent's next ones
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first uid, then out without running the parent's cleanup
        os.write(write, new_uid().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    # Without the pool being emptied at fork, the child's first uid would be the parent's next one.
    assert child != new_uid()


@pytest.mark.parametrize(("clock", "expected"), [
    # each reading follows the one before it: the cached text is reused within a second, replaced after
    pytest.param([0.2, 0.9], ["1970-01-01T00:00:00Z"] * 2, id="same-second"),
    pytest.param([0.9, 1.0], ["1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z"], id="next-second"),
    # 86399 s = 23:59:59 of day one, then the clock is stepped back
    pytest.param([86399.5, 5.0], ["1970-01-01T23:59:59Z", "1970-01-01T00:00:05Z"], id="clock-stepped-back"),
])
def test_creation_timestamp_follows_the_clock(monkeypatch: pytest.MonkeyPatch, clock: list[float],
                                              expected: list[str]) -> None:
    readings = iter(clock)
    monkeypatch.setattr(objects.time, "time", lambda: next(readings))
    assert [now_rfc3339() for _ in clock] == expected


def test_creation_timestamp_is_now() -> None:
    before = int(time.time())
    stamp = calendar.timegm(time.strptime(now_rfc3339(), "%Y-%m-%dT%H:%M:%SZ"))
    assert before <= stamp <= time.time()
