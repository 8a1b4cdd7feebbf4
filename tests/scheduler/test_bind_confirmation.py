"""The watch's confirmation of vecsched's own binding, and a placed pod's status update, in place.

Every pod vecsched binds comes back from the watch bound, and for most of them nothing but
the binding changed. Such an event gives the bound pod as the assumed one with its node
(``SchedulerCache.confirmation``, not read again), swapped in for the assumed pod in the
table (``update_pod``, not taken off its node and charged again). These tests hold that path
to the one every event took before -- read whole, taken off and charged again -- on events
the embedded API server makes over HTTP: the pod, the table's arrays and indexes, the queue's
events and state, the metrics all come out the same, and only a plain confirmation takes the
short path. The kubelet's status update of a placed pod (``status_update``: phase, start time,
conditions) is held to the same: built from the placed pod and swapped in place.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.exposition import generate_latest

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.cache import SchedulerCache
from scheduler.kube.informer import Delta
from scheduler.queue import SchedulingQueue
from scheduler.runtime import Scheduler
from scoring.objects import PodInfo
from scoring.plugins.victims import PlacedPods
from scoring.queueing_hints import ClusterEvent
from scoring.row_log import RowLog
from scoring.table import NodeTable
from tests.live.support import fast_config, pod, running, settings_for, wait_for

KEY = "default/p"
ASSUMED, OTHER = "node-0000", "node-0001"

Change = Callable[[aiohttp.ClientSession, ApiServer], Awaitable[None]]


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    """Two 4-CPU nodes; the simulated kubelets wait an hour, so that no status update but the
    ones a case makes lands between the binding and the event under test; no controllers."""
    async with serve_apiserver(nodes=[NodeShape(count=2, cpu="4", memory="8Gi")], kubelet_delay=3600.0,
                               bookmark_interval=0.5, controllers=[]) as srv:
        yield srv


@pytest.fixture
async def http(apiserver: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=apiserver.url) as s:
        yield s


def _manifest() -> dict[str, Any]:
    """100m CPU, 64Mi, a label, an annotation and a host port (so that the table's port columns
    are compared too)."""
    p = pod("p")
    p["metadata"].update(labels={"app": "web"}, annotations={"team": "a"})
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    return p


async def _ok(resp: aiohttp.ClientResponse) -> Any:
    async with resp:
        assert resp.status < 300, f"{resp.method} {resp.url}: {resp.status} {await resp.text()}"
        return await resp.json()


async def _get(http: aiohttp.ClientSession, path: str) -> Any:
    return await _ok(await http.get(path))


async def _bind(http: aiohttp.ClientSession, node: str = ASSUMED) -> None:
    await _ok(await http.post("/api/v1/namespaces/default/pods/p/binding", json={
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": node}}))


async def _patch(http: aiohttp.ClientSession, body: dict[str, Any], sub: str = "") -> None:
    await _ok(await http.patch(f"/api/v1/namespaces/default/pods/p{sub}", json=body,
                               headers={"Content-Type": "application/merge-patch+json"}))


def _in_store(srv: ApiServer, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """A version the API's validation would refuse, written past it (as tests/live/test_live_malformed
    does): a server that validates less, or an older object."""
    srv.store.update(srv.resource("pods"), "default", "p", mutate)


# ---- the variants of the event that follows our binding --------------------------------------

async def _binding_only(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http)  # nodeName, resourceVersion and the PodScheduled condition change


async def _status_running(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http)
    await _patch(http, {"status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}}, "/status")


async def _relabelled(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _patch(http, {"metadata": {"labels": {"app": "db"}}})
    await _bind(http)


async def _annotated(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _patch(http, {"metadata": {"annotations": {"team": "b"}}})
    await _bind(http)


async def _toleration_added(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    current = await _get(http, "/api/v1/namespaces/default/pods/p")
    tolerations = [*current["spec"]["tolerations"], {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    await _patch(http, {"spec": {"tolerations": tolerations}})
    await _bind(http)


async def _other_node(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http, OTHER)  # someone else placed it first


async def _being_deleted(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http)
    # Running, so that the simulated kubelet waits out the 30 s grace period before it deletes the
    # pod (one that never started is removed at once).
    await _patch(http, {"status": {"phase": "Running"}}, "/status")
    await _ok(await http.delete("/api/v1/namespaces/default/pods/p", json={"gracePeriodSeconds": 30}))


async def _succeeded(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http)
    await _patch(http, {"status": {"phase": "Succeeded"}}, "/status")


async def _new_uid(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _ok(await http.delete("/api/v1/namespaces/default/pods/p"))  # (pending: gone at once)
    await _ok(await http.post("/api/v1/namespaces/default/pods", json=_manifest()))
    await _bind(http)


async def _phase_not_a_string(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http)
    _in_store(srv, lambda p: {**p, "status": {**p["status"], "phase": 7}})


async def _managed_fields_beyond_int64(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _bind(http)  # nothing reads managedFields, but the whole object must be JSON vecsched takes
    _in_store(srv, lambda p: {**p, "metadata": {**p["metadata"], "managedFields": [{"manager": "x", "n": 2**70}]}})


async def _host_port_as_float(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    # 8080.0 == 8080 in Python, but the reader refuses a port that is not an integer.
    _in_store(srv, lambda p: {**p, "spec": {**p["spec"], "containers": [
        {**p["spec"]["containers"][0], "ports": [{"containerPort": 80, "hostPort": 8080.0}]}]}})
    await _bind(http)


# (change, taken from the assumed pod and in place, rows the event logs as changed, left assumed).
# ASSUMED is row 0, OTHER row 1. The old path logs a row for each time it takes the pod off a node
# and each time it charges it: 2 for a confirmation (off row 0, on row 0).
CASES = [
    pytest.param(_binding_only, True, 0, False, id="binding-only"),
    pytest.param(_status_running, True, 0, False, id="status-changed"),
    pytest.param(_relabelled, False, 2, False, id="labels-changed"),  # off row 0, on row 0
    pytest.param(_annotated, False, 2, False, id="annotations-changed"),
    pytest.param(_toleration_added, False, 2, False, id="toleration-added"),
    pytest.param(_other_node, False, 2, False, id="another-node"),  # off row 0, on row 1
    pytest.param(_being_deleted, False, 2, False, id="deletion-timestamp"),  # charged until it is gone
    pytest.param(_succeeded, False, 1, False, id="succeeded"),  # off row 0: it no longer occupies the node
    pytest.param(_new_uid, False, 2, False, id="different-uid"),
    # malformed: read whole and refused, the field named; the node keeps charging the assumed pod
    pytest.param(_phase_not_a_string, False, 0, True, id="malformed-phase"),
    pytest.param(_managed_fields_beyond_int64, False, 0, True, id="malformed-managed-fields"),
    pytest.param(_host_port_as_float, False, 0, True, id="malformed-host-port"),
]


# ---- two schedulers fed the same events ------------------------------------------------------

class _Recording(SchedulingQueue):
    """The scheduling queue, keeping every cluster event it is given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[ClusterEvent] = []

    def on_event(self, event: ClusterEvent) -> int:
        self.events.append(event)
        return super().on_event(event)


class _ReadWhole(SchedulerCache):
    """The path every watch event took before: never built from the assumed pod."""

    def confirmation(self, key: str, raw: Any) -> PodInfo | None:
        return None

    def status_update(self, key: str, raw: Any) -> PodInfo | None:
        return None


class _Witness:
    """A table listener the cache does not know: with it on the table, ``update_pod`` takes a
    confirmed pod off its node and charges it again, as it always did."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self.seen.append(("added", pod.key, node))

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self.seen.append(("removed", pod.key, node))

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        pass

    def node_set(self, table: NodeTable, node: int) -> None:
        pass


def _scheduler(srv: ApiServer, *, old_path: bool) -> tuple[Scheduler, _Recording]:
    s = Scheduler(config=fast_config(), settings=settings_for(srv))  # (never started: fed by hand)
    if old_path:
        s.cache = _ReadWhole(assumed_ttl=s.settings.assumed_ttl)
        s.cache.on_invalid = lambda kind: s.metrics.malformed_objects.labels(kind).inc()
        s.cache.table.listeners.append(_Witness())
    queue = _Recording(initial_backoff=s.config.pod_initial_backoff_seconds,
                       max_backoff=s.config.pod_max_backoff_seconds, on_incoming=s.metrics.incoming)
    queue.sort_key = s.queue.sort_key
    s.queue = queue
    RowLog.of(s.cache.table)  # (as the batcher and ShapeCache subscribe it)
    return s, queue


def _metrics(s: Scheduler) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample but the creation times (``_created``), which differ from one instance to another."""
    text = generate_latest(s.metrics.registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if not sample.name.endswith("_created") and not math.isnan(sample.value)}


def _state(s: Scheduler, queue: _Recording) -> dict[str, Any]:
    t = s.cache.table
    n = t.n
    placed = t.pods.get(KEY)
    return {
        "pod": None if placed is None else (placed.pod, placed.pod.raw, placed.node, placed.vector.tolist()),
        "names": t.names[:n], "index": dict(t.index), "resources": list(t.resources),
        "requested": t.requested[:n].tolist(), "nonzero": t.nonzero[:n].tolist(),
        "ports": t.port_counts[:n].tolist(), "pods": {k: p.node for k, p in t.pods.items()},
        "node_pods": {name: sorted(p.key for p in t.node_pods(name)) for name in t.names[:n]},
        "assumed": s.cache.is_assumed(KEY), "invalid": dict(s.cache.invalid_pods), "sizes": s.cache.sizes(),
        "queued": KEY in queue, "queue": queue.counts(), "events": list(queue.events), "metrics": _metrics(s),
    }


Pair = tuple[Scheduler, _Recording]


async def _feed(srv: ApiServer, http: aiohttp.ClientSession, change: Change
                ) -> tuple[Pair, Pair, dict[str, Any], list[tuple[RowLog, int]]]:
    """Two schedulers, the new path and the old, fed the same events: the nodes, the pending pod,
    which each assumes on ASSUMED (as a scheduling cycle would), then the event ``change`` leads to.
    Returns them, that event, and each one's row log with its length before the event."""
    nodes = (await _get(http, "/api/v1/nodes"))["items"]
    pending = await _ok(await http.post("/api/v1/namespaces/default/pods", json=_manifest()))
    await change(http, srv)
    event = await _get(http, "/api/v1/namespaces/default/pods/p")  # what the watch delivers last
    new, old = _scheduler(srv, old_path=False), _scheduler(srv, old_path=True)
    logs = []
    for s, queue in (new, old):
        for node in nodes:
            s._on_node(Delta("ADDED", node))
        s._on_pod(Delta("ADDED", pending))
        qp = queue.pop_nowait()  # the scheduling cycle: pop, place on ASSUMED, bind
        assert qp is not None and qp.pod.key == KEY
        s.cache.assume(qp.pod, ASSUMED)
        s.cache.finish_binding(KEY)
        queue.events.clear()
        log = RowLog.of(s.cache.table)
        logs.append((log, len(log.rows)))
    return new, old, event, logs


@pytest.mark.parametrize("change, short, rows, left_assumed", CASES)
async def test_confirmation_ends_as_the_read_whole_path(apiserver: ApiServer, http: aiohttp.ClientSession,
                                                        change: Change, short: bool, rows: int,
                                                        left_assumed: bool) -> None:
    new, old, event, logs = await _feed(apiserver, http, change)
    for s, _ in (new, old):
        s._on_pod(Delta("MODIFIED", event))

    assert _state(*new) == _state(*old)
    assert (new[0].cache.confirmed_from_assumed, new[0].cache.confirmed_in_place) == (short, short)
    assert (old[0].cache.confirmed_from_assumed, old[0].cache.confirmed_in_place) == (0, 0)
    assert [len(log.rows) - before for log, before in logs] == [rows, 2 if short else rows]
    assert new[0].cache.is_assumed(KEY) is left_assumed
    assert bool(new[0].cache.invalid_pods) is left_assumed  # (the field named, as the old path names it)
    if short:
        placed = new[0].cache.table.pods[KEY]
        assert placed.pod.node_name == ASSUMED and placed.pod.raw["spec"]["nodeName"] == ASSUMED
        # ASSUMED's row: cpu 100m, memory 64Mi = 67108864, ephemeral-storage 0, 1 pod -- charged once
        assert new[0].cache.table.requested[0, :4].tolist() == [100, 67108864, 0, 1]
        assert [e.label for e in new[1].events] == ["AssignedPodAdd"]


async def test_preemptions_placed_pods_are_told_of_the_swap(apiserver: ApiServer, http: aiohttp.ClientSession) -> None:
    """Preemption's PlacedPods hands out the PodInfo it was given as a victim: the swap tells it
    (``pod_replaced``), so that it hands out the bound pod, as the old path's new charge would."""
    new, old, event, logs = await _feed(apiserver, http, _binding_only)
    for s, _ in (new, old):
        PlacedPods.of(s.cache.table)
        s._on_pod(Delta("MODIFIED", event))

    assert _state(*new) == _state(*old)
    assert (new[0].cache.confirmed_from_assumed, new[0].cache.confirmed_in_place) == (1, 1)
    assert [len(log.rows) - before for log, before in logs] == [0, 2]  # the old path: off row 0, on row 0
    placed, victims = new[0].cache.table.pods[KEY], PlacedPods.of(new[0].cache.table)
    assert victims.infos == [placed.pod] and victims.infos[0] is placed.pod  # the bound pod, not the assumed


# ---- a placed pod's status changing (the kubelet starting it) ---------------------------------

START = "2026-12-05T00:00:00Z"
START_EPOCH = 1796428800.0  # 2026-12-05 00:00:00 UTC: 20,792 days after 1970-01-01, x 86,400 s


async def _kubelet_start(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _patch(http, {"status": {"phase": "Running", "startTime": START, "podIP": "10.0.0.5", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}}, "/status")


async def _start_and_relabel(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _kubelet_start(http, srv)
    await _patch(http, {"metadata": {"labels": {"app": "db"}}})


async def _disruption_target(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _patch(http, {"status": {"phase": "Running", "startTime": START, "conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]}}, "/status")


async def _deleting(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _kubelet_start(http, srv)
    await _ok(await http.delete("/api/v1/namespaces/default/pods/p", json={"gracePeriodSeconds": 30}))


async def _failed(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _patch(http, {"status": {"phase": "Failed", "startTime": START}}, "/status")


async def _status_phase_malformed(http: aiohttp.ClientSession, srv: ApiServer) -> None:
    await _kubelet_start(http, srv)
    _in_store(srv, lambda p: {**p, "status": {**p["status"], "phase": ["Running"]}})


# (change, built from the placed pod and swapped, rows the new and the old path log, left invalid).
# The old path logs 2 rows for a new charge (off row 0, on row 0) and 1 for a pod that finished.
STATUS_CASES = [
    pytest.param(_kubelet_start, True, (0, 2), False, id="kubelet-start"),
    pytest.param(_start_and_relabel, False, (2, 2), False, id="labels-changed"),
    pytest.param(_disruption_target, False, (2, 2), False, id="disruption-target"),
    pytest.param(_deleting, False, (2, 2), False, id="deletion-timestamp"),
    pytest.param(_failed, False, (1, 1), False, id="failed"),
    pytest.param(_status_phase_malformed, False, (0, 0), True, id="malformed-phase"),  # keeps its charge
]


@pytest.mark.parametrize("placed_pods", [False, True], ids=["", "with-placed-pods"])
@pytest.mark.parametrize("change, short, rows, invalid", STATUS_CASES)
async def test_a_status_update_ends_as_the_read_whole_path(apiserver: ApiServer, http: aiohttp.ClientSession,
                                                           change: Change, short: bool, rows: tuple[int, int],
                                                           invalid: bool, placed_pods: bool) -> None:
    new, old, bound, _ = await _feed(apiserver, http, _binding_only)
    for s, _ in (new, old):
        if placed_pods:
            PlacedPods.of(s.cache.table)
        s._on_pod(Delta("MODIFIED", bound))
    logs = [(RowLog.of(s.cache.table), len(RowLog.of(s.cache.table).rows)) for s, _ in (new, old)]
    await change(http, apiserver)
    event = await _get(http, "/api/v1/namespaces/default/pods/p")
    for s, _ in (new, old):
        s._on_pod(Delta("MODIFIED", event))

    assert _state(*new) == _state(*old)
    assert new[0].cache.status_updates == short
    assert tuple(len(log.rows) - before for log, before in logs) == rows
    assert bool(new[0].cache.invalid_pods) is invalid
    if placed_pods and KEY in new[0].cache.table.pods:
        placed, victims = new[0].cache.table.pods[KEY], PlacedPods.of(new[0].cache.table)
        assert victims.infos == [placed.pod] and victims.infos[0] is placed.pod
        # (NaN while the pod has no start time: upstream then ranks it as started now)
        assert np.array_equal(victims.start[:1], PlacedPods.of(old[0].cache.table).start[:1], equal_nan=True)
        if short:
            assert victims.start[0] == START_EPOCH


async def test_a_status_update_with_an_unknown_listener_is_read_whole(apiserver: ApiServer,
                                                                      http: aiohttp.ClientSession) -> None:
    """A listener the cache does not know might keep the pod's status: the pod is charged again."""
    new, old, bound, _ = await _feed(apiserver, http, _binding_only)
    for s, _ in (new, old):
        s._on_pod(Delta("MODIFIED", bound))
    new[0].cache.table.listeners.append(_Witness())
    log = RowLog.of(new[0].cache.table)
    before = len(log.rows)
    await _kubelet_start(http, apiserver)
    event = await _get(http, "/api/v1/namespaces/default/pods/p")
    for s, _ in (new, old):
        s._on_pod(Delta("MODIFIED", event))

    assert _state(*new) == _state(*old)
    assert (new[0].cache.status_updates, len(log.rows) - before) == (0, 2)


async def test_live_bindings_are_confirmed_in_place(apiserver: ApiServer) -> None:
    """A running scheduler over HTTP: each of its bindings comes back as a plain confirmation."""
    async with running(apiserver) as s:
        log = RowLog.of(s.cache.table)
        epoch, before = log.epoch, len(log.rows)
        for i in range(12):
            apiserver.create("pods", pod(f"w{i}"), namespace="default")
        await wait_for(lambda: s.cache.confirmed_in_place == 12, what="12 bindings confirmed")
        assert s.cache.confirmed_from_assumed == 12
        assert s.cache.sizes() == {"nodes": 2, "pods": 12, "assumed_pods": 0}
        placed: dict[str, int] = {}
        for p in apiserver.list("pods", namespace="default"):
            placed[p["spec"]["nodeName"]] = placed.get(p["spec"]["nodeName"], 0) + 1
        table = s.cache.table
        for node, count in placed.items():
            # 100m and 64Mi (67108864 bytes) per pod on the node the API bound it to, charged once
            assert table.requested[table.index[node], :2].tolist() == [100 * count, 67108864 * count]
        # A row logged per assumption and none per confirmation (the old path: 12 + 2 x 12 = 36).
        assert (log.epoch, len(log.rows) - before) == (epoch, 12)
