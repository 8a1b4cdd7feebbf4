"""The PodGroup operator against the embedded control plane, over real HTTP.

The CRD vecsched ships is applied with the real kubectl; the operator is fed
by its own informers on pods and PodGroups, as the scheduler's runtime feeds
it; vecsched places the pods, the Job controller makes them and the simulated
kubelets run them to their end. Every status write the API server stores is
recorded, so the tests see each phase, not only the last.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.job import JobController
from scheduler.kube.client import ClientSettings, connect
from scheduler.kube.events import EventLimiter, EventRecorder
from scheduler.kube.informer import PODS, Backoff, Informer
from scheduler.metrics import Metrics
from scheduler.podgroup_operator import API_VERSION, PHASES, PODGROUPS, PodGroupOperator
from tests.apiserver.kube import kubectl
from tests.controlplane.support import control_plane
from tests.live.support import FakeClock, pod, running, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CRD = DEPLOY / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
EXAMPLE = DEPLOY / "examples" / "training-job.yaml"
FAST_JOBS = {"job.sync_batch_seconds": 0.05, "job.pod_failure_backoff_seconds": 0.0}
QUICK = Backoff(initial=0.02, cap=0.2, jitter=0.5)


async def _kubectl(srv: ApiServer, *args: str, stdin: str | None = None) -> str:
    assert srv.kubeconfig_path is not None
    code, out, err = await kubectl(srv.kubeconfig_path, *args, stdin=stdin)
    assert code == 0, err
    return out


def _pg(name: str, min_member: Any = 1, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "PodGroup", "metadata": {"name": name, "namespace": namespace},
            "spec": {"minMember": min_member, **spec}}


def _member(name: str, group: str, **kw: Any) -> dict[str, Any]:
    p = pod(name, **kw)
    p["metadata"]["labels"] = {"scheduling.x-k8s.io/pod-group": group}
    return p


def _status(srv: ApiServer, name: str, namespace: str = "default") -> dict[str, Any]:
    return srv.get("podgroups", name, namespace=namespace).get("status") or {}


def _group_events(srv: ApiServer, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in srv.list("events", namespace="default") if e["involvedObject"].get("kind") == "PodGroup"
            and e["involvedObject"]["name"] == name and e["reason"] == reason]


def _record_statuses(srv: ApiServer) -> dict[str, list[dict[str, Any]]]:
    """Every status the API server stores for each PodGroup, in order (the creation's included)."""
    seen: dict[str, list[dict[str, Any]]] = {}

    def on_write(key: Any, old: Any, new: Any) -> None:
        if new is not None:
            obj = new.obj()
            seen.setdefault(obj["metadata"]["name"], []).append(obj.get("status") or {})
    srv.store.add_listener(srv.resource("podgroups").key, on_write)
    return seen


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@asynccontextmanager
async def _operator(srv: ApiServer, *, limiter: EventLimiter | None = None,
                    is_leader: Callable[[], bool] = lambda: True) -> AsyncIterator[tuple[PodGroupOperator, Metrics]]:
    """An operator with its own client, informers on pods and PodGroups, and its loop running."""
    client = await connect(ClientSettings(kubeconfig=str(srv.kubeconfig_path)))
    metrics = Metrics()
    recorder = EventRecorder(client=client, instance="podgroup-test")
    op = PodGroupOperator(client=client, recorder=recorder, metrics=metrics, limiter=limiter, backoff=QUICK)
    informers = [Informer(client=client, path=PODS, handler=op.on_pod, backoff=QUICK),
                 Informer(client=client, path=PODGROUPS, handler=op.on_podgroup, backoff=QUICK, optional=True)]
    for inf in informers:
        inf.start()
    stop = asyncio.Event()
    task = asyncio.create_task(op.run(stop=stop, is_leader=is_leader), name="podgroup operator")
    try:
        yield op, metrics
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)  # run() returns on stop, and never died before
        for inf in informers:
            await inf.stop()
        await recorder.drain(timeout=2.0)
        await client.close()


async def test_a_job_gang_goes_pending_scheduling_running_finished() -> None:
    pg, job = yaml.safe_load_all(EXAMPLE.read_text())
    # The simulated kubelet ends a pod annotated with a duration: each worker runs 2 s and succeeds.
    job["spec"]["template"]["metadata"]["annotations"] = {"vecsched.io/simulated-duration-seconds": "2"}
    async with control_plane(JobController, controller_settings=FAST_JOBS) as srv:
        await _kubectl(srv, "apply", "-f", str(CRD))
        writes = _record_statuses(srv)
        async with running(srv) as sched:
            op, metrics = sched.podgroup_operator, sched.metrics  # the operator `vecsched run` runs
            assert op is not None
            await _kubectl(srv, "apply", "-f", "-", stdin=yaml.safe_dump(pg))
            await wait_for(lambda: _status(srv, "training").get("phase") == "Pending", what="Pending")
            before = time.time()
            await _kubectl(srv, "apply", "-f", "-", stdin=yaml.safe_dump(job))
            await wait_for(lambda: _status(srv, "training").get("phase") == "Finished", timeout=40,
                           what=f"Finished, last {_status(srv, 'training')}")
            await wait_for(lambda: bool(_group_events(srv, "training", "Scheduled")), what="the Scheduled Event")
            await asyncio.sleep(0.5)  # a write or an Event more would show now
            phases = [s.get("phase") for s in writes["training"]]
            assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == \
                [None, "Pending", "Scheduling", "Running", "Finished"]
            # Every write changed the status: the first is the creation, each other is one of the operator's patches.
            assert all(a != b for a, b in zip(writes["training"], writes["training"][1:]))
            assert op.patches == len(writes["training"]) - 1
            scheduling = next(s for s in writes["training"] if s.get("phase") == "Scheduling")
            assert scheduling["occupiedBy"] == "default/training"  # the Job owns every pod
            start = datetime.fromisoformat(scheduling["scheduleStartTime"].replace("Z", "+00:00")).timestamp()
            assert int(before) <= start <= time.time()  # written in whole seconds
            assert next(s for s in writes["training"] if s.get("phase") == "Running")["running"] == 4
            final = _status(srv, "training")
            assert final == {"phase": "Finished", "succeeded": 4, "occupiedBy": "default/training",
                             "scheduleStartTime": scheduling["scheduleStartTime"]}
            [event] = _group_events(srv, "training", "Scheduled")  # once
            uid = srv.get("podgroups", "training", namespace="default")["metadata"]["uid"]
            assert event["involvedObject"] == {"apiVersion": API_VERSION, "kind": "PodGroup", "namespace": "default",
                                               "name": "training", "uid": uid}
            assert (event["type"], event["message"]) == ("Normal", "Scheduled 4 of 4 members (minMember 4)")
            # One schedule duration: from the group's creation to its 4th member seen bound, under the 40 s above.
            assert _sample(metrics, "vecsched_podgroup_schedule_duration_seconds_count") == 1
            assert 0 < _sample(metrics, "vecsched_podgroup_schedule_duration_seconds_sum") < 40
            assert {p: _sample(metrics, "vecsched_podgroups", phase=p) for p in PHASES} == \
                {"Pending": 0, "Scheduling": 0, "Running": 0, "Finished": 1, "Failed": 0, "Unknown": 0}


async def test_group_failed_reports_on_the_podgroup_rate_limited(apiserver: ApiServer, clock: FakeClock) -> None:
    await _kubectl(apiserver, "apply", "-f", str(CRD))
    limiter = EventLimiter(min_interval=5.0, repeat_interval=60.0, clock=clock)
    async with _operator(apiserver, limiter=limiter) as (op, metrics):
        apiserver.create("podgroups", _pg("gang", 3), namespace="default")
        await wait_for(lambda: _status(apiserver, "gang").get("phase") == "Pending", what="Pending")
        op.group_failed(namespace="default", name="gang", message="A")  # sent
        op.group_failed(namespace="default", name="gang", message="A")  # duplicate: same message within 60 s
        clock.advance(6)
        op.group_failed(namespace="default", name="gang", message="B")  # sent: 6 s >= 5 s since A
        op.group_failed(namespace="default", name="gang", message="C")  # rate limited: 0 s < 5 s since B
        clock.advance(6)
        op.group_failed(namespace="default", name="gang", message="B")  # duplicate: 6 s < 60 s since B
        clock.advance(60)
        op.group_failed(namespace="default", name="gang", message="B")  # sent: 66 s >= 60 s since B ...
        op.group_failed(namespace="default", name="nobody", message="A")  # no such PodGroup: nothing
        # ... as a repeat of the first B (same object, reason, message), counted on it: B's count 1 -> 2.
        await wait_for(lambda: sorted((e["message"], e["count"]) for e in _group_events(apiserver, "gang", "FailedScheduling"))
                       == [("A", 1), ("B", 2)], what="A once, B twice")
        await asyncio.sleep(0.3)
        events = sorted(_group_events(apiserver, "gang", "FailedScheduling"), key=lambda e: e["eventTime"])
        assert [(e["type"], e["message"], e["count"]) for e in events] == [("Warning", "A", 1), ("Warning", "B", 2)]
        uid = apiserver.get("podgroups", "gang", namespace="default")["metadata"]["uid"]
        assert {e["involvedObject"]["uid"] for e in events} == {uid}
        assert not _group_events(apiserver, "nobody", "FailedScheduling")
        assert _sample(metrics, "vecsched_events_suppressed_total", reason="duplicate") == 2
        assert _sample(metrics, "vecsched_events_suppressed_total", reason="rate_limited") == 1


def _loose_crd() -> dict[str, Any]:
    """The shipped CRD with ``spec`` unchecked, as an older or hand-made CRD may leave it: the only
    way a server lets a malformed PodGroup through."""
    crd = copy.deepcopy(next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    props["spec"] = {"x-kubernetes-preserve-unknown-fields": True}
    return crd


async def test_malformed_podgroups_are_logged_once_and_others_kept(apiserver: ApiServer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    await _kubectl(apiserver, "apply", "-f", "-", stdin=yaml.safe_dump(_loose_crd()))
    caplog.set_level(logging.WARNING, logger="vecsched.podgroups")
    async with running(apiserver) as sched:
        metrics = sched.metrics  # the operator `vecsched run` runs
        apiserver.create("podgroups", _pg("words", "four"), namespace="default")
        apiserver.create("podgroups", _pg("negative", -1), namespace="default")
        apiserver.create("podgroups", _pg("good", 2), namespace="default")
        for name in ("good-0", "good-1"):
            apiserver.create("pods", _member(name, "good"), namespace="default")
        await wait_for(lambda: _status(apiserver, "good").get("phase") == "Running", what="good Running")
        for i in range(3):  # changes of the bad ones are read again, and not logged again
            await _kubectl(apiserver, "label", "podgroup", "words", "negative", f"try=t{i}", "--overwrite")
        await asyncio.sleep(0.5)
        assert _status(apiserver, "words") == {} and _status(apiserver, "negative") == {}
        problems = sorted(r.getMessage() for r in caplog.records if r.name == "vecsched.podgroups")
        assert problems == [
            "cannot read PodGroup default/negative: spec.minMember: expected a non-negative int32, got '-1'",
            "cannot read PodGroup default/words: spec.minMember: expected a non-negative int32, got 'four'"]
        assert _sample(metrics, "vecsched_malformed_objects_total", kind="podgroup") == 2
        assert _sample(metrics, "vecsched_podgroups", phase="Running") == 1  # the bad ones have no phase


async def test_members_are_the_pods_of_the_groups_namespace(apiserver: ApiServer) -> None:
    # Upstream lists the label in every namespace; vecsched counts only the group's own.
    await _kubectl(apiserver, "apply", "-f", str(CRD))
    apiserver.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    async with _operator(apiserver) as (op, _):
        apiserver.create("podgroups", _pg("g", 2), namespace="default")
        apiserver.create("pods", _member("mine", "g", scheduler="nobody"), namespace="default")
        for name in ("theirs-0", "theirs-1"):
            apiserver.create("pods", _member(name, "g", scheduler="nobody", namespace="other"), namespace="other")
        await wait_for(lambda: _status(apiserver, "g").get("phase") == "Pending", what="Pending")
        await asyncio.sleep(0.5)
        assert _status(apiserver, "g") == {"phase": "Pending"}  # 1 pod < minMember 2 (3 with "other")
        apiserver.create("pods", _member("mine-too", "g", scheduler="nobody"), namespace="default")
        await wait_for(lambda: _status(apiserver, "g").get("phase") == "Scheduling", what="Scheduling")  # 2 >= 2


async def test_only_the_leader_writes_and_a_new_leader_catches_up(apiserver: ApiServer) -> None:
    await _kubectl(apiserver, "apply", "-f", str(CRD))
    leader = False
    async with _operator(apiserver, is_leader=lambda: leader) as (op, _):
        apiserver.create("podgroups", _pg("early", 1), namespace="default")
        await asyncio.sleep(1.0)  # two looks at leadership (every 0.5 s): nothing written
        assert _status(apiserver, "early") == {} and op.patches == 0
        leader = True
        await wait_for(lambda: _status(apiserver, "early").get("phase") == "Pending", what="early Pending")
        leader = False
        apiserver.create("podgroups", _pg("late", 1), namespace="default")
        await asyncio.sleep(1.0)
        assert _status(apiserver, "late") == {}
        leader = True
        await wait_for(lambda: _status(apiserver, "late").get("phase") == "Pending", what="late Pending")


async def test_a_failing_status_write_is_retried(apiserver: ApiServer) -> None:
    await _kubectl(apiserver, "apply", "-f", str(CRD))
    async with _operator(apiserver) as (op, _):
        apiserver.create("podgroups", _pg("first", 1), namespace="default")
        await wait_for(lambda: _status(apiserver, "first").get("phase") == "Pending", what="the operator at work")
        apiserver.faults.include_watches = False  # the watches stay up; every other request answers 500
        apiserver.faults.error_rate = 1.0
        apiserver.create("podgroups", _pg("g", 1), namespace="default")  # in-process: no HTTP, no fault
        await wait_for(lambda: apiserver.faults.injected.get(500, 0) >= 3, what="three failed writes")
        assert _status(apiserver, "g") == {}
        apiserver.faults.reset()
        await wait_for(lambda: _status(apiserver, "g").get("phase") == "Pending", what="Pending after the faults")
