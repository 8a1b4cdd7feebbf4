"""The Job controller runs batch/v1 Jobs as kube-controller-manager does, seen through the API.

Pods are finished the way a kubelet reports it: a write of the pod's status
(``Succeeded`` or ``Failed``, Ready False, terminated containers) through the
``/status`` subresource. Pods that should run are bound in their template
(``nodeName``) so the simulated kubelet starts them; the last test lets the
real vecsched scheduler place them and the kubelet finish them on its own.
The controller's pod batching and failure backoff are shortened by settings,
except in the test of the backoff itself.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import pytest

from scheduler.apiserver import ApiServer
from scheduler.apiserver.controllers.job import JobController

from tests.apiserver.kube import kubectl

from .support import control_plane, running, wait_for

NS = "default"
LINGER: dict[str, Any] = {"kubelet_max_grace_seconds": None}  # deleted pods stay terminating for their 30 s grace
INDEX = "batch.kubernetes.io/job-completion-index"
FAST = {"job.sync_batch_seconds": 0.05, "job.pod_failure_backoff_seconds": 0.0}


def _job(name: str, *, node: str | None = "node-0000", restart: str = "Never", grace: int | None = None,
         annotations: dict[str, str] | None = None, scheduler: str | None = None, **spec: Any) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"restartPolicy": restart,
                                "containers": [{"name": "work", "image": "busybox:1.36",
                                                "resources": {"requests": {"cpu": "100m"}}}]}
    if node:
        pod_spec["nodeName"] = node
    if grace is not None:
        pod_spec["terminationGracePeriodSeconds"] = grace
    if scheduler:
        pod_spec["schedulerName"] = scheduler
    template: dict[str, Any] = {"metadata": {"labels": {"team": "batch"}}, "spec": pod_spec}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"template": template, **spec}}


async def _kubectl(srv: ApiServer, *args: str, stdin: str | None = None) -> str:
    """Run the real kubectl against the server; its stdout (a failure fails the test)."""
    assert srv.kubeconfig_path is not None
    code, out, err = await kubectl(srv.kubeconfig_path, *args, stdin=stdin)
    assert code == 0, err
    return out


def _get(srv: ApiServer, name: str) -> dict[str, Any]:
    return srv.get("jobs", name, namespace=NS)


def _status(srv: ApiServer, name: str) -> dict[str, Any]:
    return _get(srv, name).get("status") or {}


def _pods(srv: ApiServer, job: str) -> list[dict[str, Any]]:
    return sorted((p for p in srv.list("pods", namespace=NS)
                   if any(r.get("kind") == "Job" and r.get("name") == job
                          for r in p["metadata"].get("ownerReferences") or [])),
                  key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])


def _active(srv: ApiServer, job: str) -> list[dict[str, Any]]:
    return [p for p in _pods(srv, job) if p["status"].get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")]


def _running(srv: ApiServer, job: str, n: int) -> bool:
    return len([p for p in _active(srv, job) if p["status"].get("phase") == "Running"]) == n


def _finish(srv: ApiServer, pod: dict[str, Any], *, phase: str = "Succeeded") -> None:
    """Report the pod finished, as its kubelet would."""
    pod = srv.get("pods", pod["metadata"]["name"], namespace=NS)
    status = pod["status"]
    now = datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%SZ")
    status["phase"] = phase
    status["conditions"] = [dict(c, status="False") if c["type"] in ("Ready", "ContainersReady") else c
                            for c in status.get("conditions") or []]
    status["containerStatuses"] = [{"name": "work", "ready": False, "restartCount": 0, "image": "busybox:1.36",
                                    "imageID": "", "state": {"terminated": {
                                        "exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": now,
                                        "reason": "Completed" if phase == "Succeeded" else "Error"}}}]
    srv.ops.update(srv.resource("pods"), pod, namespace=NS, name=pod["metadata"]["name"], subresource="status")


def _conditions(srv: ApiServer, name: str) -> list[tuple[str, str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
            for c in _status(srv, name).get("conditions") or []]


def _has(srv: ApiServer, name: str, type_: str, status: str = "True") -> bool:
    return any(c[0] == type_ and c[1] == status for c in _conditions(srv, name))


def _events(srv: ApiServer, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [e for e in srv.list("events", namespace=NS)
            if e["involvedObject"]["kind"] == "Job" and e["involvedObject"]["name"] == name
            and (reason is None or e["reason"] == reason)]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")

ROUNDS = [
    # name, spec, active pods in each round (all of them then succeed), succeeded at the end
    ("completions 5, parallelism 2", {"completions": 5, "parallelism": 2}, [2, 2, 1], 5),  # min(5-0,2), min(3,2), 1
    ("completions 2, parallelism 5", {"completions": 2, "parallelism": 5}, [2], 2),  # never more than missing
    ("parallelism 3 without completions", {"parallelism": 3}, [3], 3),  # any success ends it once all stop
    ("the defaults: 1 of 1", {}, [1], 1),  # completions = parallelism = 1
]


@pytest.mark.parametrize("spec,rounds,succeeded", [r[1:] for r in ROUNDS], ids=[r[0] for r in ROUNDS])
async def test_pods_run_in_rounds_until_completions(spec: dict[str, Any], rounds: list[int], succeeded: int) -> None:
    async with control_plane(JobController, controller_settings=FAST) as srv:
        await _kubectl(srv, "create", "-f", "-", stdin=json.dumps(_job("pi", **spec)))
        for n in rounds:
            await wait_for(lambda: _running(srv, "pi", n) and _status(srv, "pi").get("ready") == n,
                           what=f"{n} running pods, last {_status(srv, 'pi')}")
            assert _status(srv, "pi").get("active") == n
            for pod in _active(srv, "pi"):
                _finish(srv, pod)
        await wait_for(lambda: _has(srv, "pi", "Complete"), what="Complete")
        job = json.loads(await _kubectl(srv, "get", "job", "pi", "-o", "json"))
        status = job["status"]
        assert status["succeeded"] == succeeded and "active" not in status and "failed" not in status
        assert (status["ready"], status["terminating"], status["uncountedTerminatedPods"]) == (0, 0, {})
        assert [c[:3] for c in _conditions(srv, "pi")] == [("SuccessCriteriaMet", "True", COMPLETED[0]),
                                                          ("Complete", "True", COMPLETED[0])]
        assert _conditions(srv, "pi")[1][3] == COMPLETED[1]
        assert _ts(status["completionTime"]) >= _ts(status["startTime"])
        pods = _pods(srv, "pi")
        assert len(pods) == sum(rounds)
        for p in pods:
            meta = p["metadata"]
            assert meta["generateName"] == "pi-" and meta["name"].startswith("pi-")
            assert meta["labels"]["team"] == "batch" and meta["labels"]["batch.kubernetes.io/job-name"] == "pi"
            assert meta["labels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]
            [ref] = meta["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Job", "pi", job["metadata"]["uid"],
                                                                                 True)
        created = sorted(e["message"] for e in _events(srv, "pi", "SuccessfulCreate"))
        assert created == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
        assert [(e["message"], e["source"]["component"]) for e in _events(srv, "pi", "Completed")] == [
            ("Job completed", "job-controller")]


FAILING = [
    # name, job spec, how pods fail, pods created, status.failed
    ("Never: a second failure exceeds backoffLimit 1", dict(backoffLimit=1), "phase", 2, 2),  # 2 > 1
    ("OnFailure: 2 restarts reach backoffLimit 2", dict(backoffLimit=2, restart="OnFailure", grace=0),
     "restarts", 1, 1),  # restarts 2 >= 2; the running pod is deleted and counted as failed
]


@pytest.mark.parametrize("spec,how,created,failed", [f[1:] for f in FAILING], ids=[f[0] for f in FAILING])
async def test_backoff_limit_fails_the_job(spec: dict[str, Any], how: str, created: int, failed: int) -> None:
    async with control_plane(JobController, controller_settings=FAST) as srv:
        srv.create("jobs", _job("flaky", **spec))
        if how == "phase":
            for _ in range(created):
                await wait_for(lambda: _running(srv, "flaky", 1), what="a running pod")
                _finish(srv, _active(srv, "flaky")[0], phase="Failed")
        else:
            await wait_for(lambda: _running(srv, "flaky", 1), what="a running pod")
            pod = _active(srv, "flaky")[0]
            pod["status"]["containerStatuses"][0]["restartCount"] = 2
            srv.ops.update(srv.resource("pods"), pod, namespace=NS, name=pod["metadata"]["name"], subresource="status")
        await wait_for(lambda: _has(srv, "flaky", "Failed"), what="Failed")
        message = "Job has reached the specified backoff limit"
        assert _conditions(srv, "flaky") == [("FailureTarget", "True", "BackoffLimitExceeded", message),
                                             ("Failed", "True", "BackoffLimitExceeded", message)]
        status = _status(srv, "flaky")
        assert status["failed"] == failed and "active" not in status and "completionTime" not in status
        assert len(_events(srv, "flaky", "SuccessfulCreate")) == created and not _active(srv, "flaky")
        [ev] = _events(srv, "flaky", "BackoffLimitExceeded")
        assert (ev["type"], ev["message"]) == ("Warning", message)


async def test_active_deadline_fails_the_job_on_a_timer() -> None:
    # Two pods run; nothing is written after that, so only the 2 s deadline timer can end the Job. Its running
    # pods are deleted (grace 0: at once) and counted as failed: 2. (On a loaded machine the deadline may come
    # before both pods are seen running; they are active either way, so the outcome is the same.)
    async with control_plane(JobController, controller_settings=FAST) as srv:
        srv.create("jobs", _job("slow", parallelism=2, completions=4, activeDeadlineSeconds=2, grace=0))
        await wait_for(lambda: _running(srv, "slow", 2) or _has(srv, "slow", "Failed"), what="2 running pods")
        await wait_for(lambda: _has(srv, "slow", "Failed"), timeout=15, what="Failed")
        message = "Job was active longer than specified deadline"
        assert _conditions(srv, "slow") == [("FailureTarget", "True", "DeadlineExceeded", message),
                                            ("Failed", "True", "DeadlineExceeded", message)]
        assert _status(srv, "slow")["failed"] == 2 and _pods(srv, "slow") == []
        assert [e["message"] for e in _events(srv, "slow", "DeadlineExceeded")] == [message]


async def test_suspend_deletes_active_pods_and_resume_starts_again() -> None:
    async with control_plane(JobController, controller_settings=FAST, **LINGER) as srv:
        srv.create("jobs", _job("batch", parallelism=2, completions=4))
        await wait_for(lambda: _running(srv, "batch", 2) and _status(srv, "batch").get("ready") == 2,
                       what="2 ready pods")
        started = _status(srv, "batch")["startTime"]
        await _kubectl(srv, "patch", "job", "batch", "--type=merge", "-p", '{"spec":{"suspend":true}}')
        await wait_for(lambda: _has(srv, "batch", "Suspended"), what="Suspended")
        status = _status(srv, "batch")
        # The pods were deleted gracefully (30 s): terminating, not failed, since the controller removed them.
        assert ("active" not in status, status["terminating"], status["ready"], "failed" not in status) == (
            True, 2, 0, True)
        assert _conditions(srv, "batch") == [("Suspended", "True", "JobSuspended", "Job suspended")]
        assert all(p["metadata"].get("deletionTimestamp") for p in _pods(srv, "batch"))
        assert [e["message"] for e in _events(srv, "batch", "Suspended")] == ["Job suspended"]
        await asyncio.sleep(1.1)  # so that the new startTime (second precision) shows the restart
        await _kubectl(srv, "patch", "job", "batch", "--type=merge", "-p", '{"spec":{"suspend":false}}')
        await wait_for(lambda: _has(srv, "batch", "Suspended", "False") and _running(srv, "batch", 2),
                       what="resumed with 2 new running pods")
        assert _conditions(srv, "batch") == [("Suspended", "False", "JobResumed", "Job resumed")]
        assert [e["message"] for e in _events(srv, "batch", "Resumed")] == ["Job resumed"]
        assert _ts(_status(srv, "batch")["startTime"]) > _ts(started)
        assert len(_pods(srv, "batch")) == 4  # 2 terminating + 2 new
        await wait_for(lambda: _status(srv, "batch").get("active") == 2, what="2 active")


async def test_a_pod_deleted_by_someone_else_counts_as_failed_and_is_replaced() -> None:
    async with control_plane(JobController, controller_settings=FAST, **LINGER) as srv:
        srv.create("jobs", _job("one"))
        await wait_for(lambda: _running(srv, "one", 1), what="a running pod")
        [first] = _active(srv, "one")
        srv.ops.delete(srv.resource("pods"), namespace=NS, name=first["metadata"]["name"])  # graceful: stays
        # podReplacementPolicy TerminatingOrFailed: the terminating pod is a failure, replaced at once.
        await wait_for(lambda: _running(srv, "one", 1) and _status(srv, "one").get("failed") == 1,
                       what="a replacement")
        assert _status(srv, "one")["terminating"] == 1
        assert not _has(srv, "one", "Failed")  # 1 failure is within the default backoffLimit 6


async def test_pod_failure_backoff_delays_the_replacement() -> None:
    # A first failure waits 60 s (the configured base) before a replacement: nothing is created meanwhile.
    async with control_plane(JobController, controller_settings={**FAST, "job.pod_failure_backoff_seconds": 60}) as srv:
        srv.create("jobs", _job("careful"))
        await wait_for(lambda: _running(srv, "careful", 1), what="a running pod")
        _finish(srv, _active(srv, "careful")[0], phase="Failed")
        await wait_for(lambda: _status(srv, "careful").get("failed") == 1, what="the failure counted")
        await asyncio.sleep(0.5)
        assert len(_pods(srv, "careful")) == 1 and "active" not in _status(srv, "careful")


async def test_indexed_completion_fills_missing_indexes() -> None:
    async with control_plane(JobController, controller_settings=FAST) as srv:
        job = srv.create("jobs", _job("idx", completions=3, parallelism=2, completionMode="Indexed"))

        def by_index() -> dict[str, dict[str, Any]]:
            return {p["metadata"]["annotations"][INDEX]: p
                    for p in _active(srv, "idx")}

        await wait_for(lambda: set(by_index()) == {"0", "1"} and _running(srv, "idx", 2), what="indexes 0 and 1")
        for i, p in by_index().items():
            meta, spec = p["metadata"], p["spec"]
            assert meta["generateName"] == f"idx-{i}-" and meta["labels"][INDEX] == i
            assert spec["hostname"] == f"idx-{i}"
            assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.labels['{INDEX}']"}}} in spec["containers"][0]["env"]
        _finish(srv, by_index()["1"])
        await wait_for(lambda: set(by_index()) == {"0", "2"}, what="index 2 replacing the finished 1")
        assert _status(srv, "idx")["completedIndexes"] == "1"
        _finish(srv, by_index()["0"])
        await wait_for(lambda: _status(srv, "idx").get("completedIndexes") == "0,1", what="0,1")  # two: a pair
        _finish(srv, by_index()["2"])
        await wait_for(lambda: _has(srv, "idx", "Complete"), what="Complete")
        status = _status(srv, "idx")
        assert (status["completedIndexes"], status["succeeded"]) == ("0-2", 3)  # three in a row: a range
        assert job["spec"]["completionMode"] == "Indexed"


async def test_ttl_after_finished_deletes_the_job() -> None:
    async with control_plane(JobController, controller_settings=FAST) as srv:
        srv.create("jobs", _job("brief", ttlSecondsAfterFinished=0))
        await wait_for(lambda: _running(srv, "brief", 1), what="a running pod")
        _finish(srv, _active(srv, "brief")[0])

        def deleted() -> bool:
            jobs = [j for j in srv.list("jobs", namespace=NS) if j["metadata"]["name"] == "brief"]
            return not jobs or bool(jobs[0]["metadata"].get("deletionTimestamp"))

        await wait_for(deleted, what="the Job deleted")
        jobs = srv.list("jobs", namespace=NS)
        if jobs:  # no garbage collector runs here: the foreground deletion waits on its finalizer
            assert jobs[0]["metadata"]["finalizers"] == ["foregroundDeletion"]


async def test_the_kubelet_runs_annotated_pods_to_their_end() -> None:
    # Needs the simulated kubelet's completion of pods annotated vecsched.io/simulated-duration-seconds
    # (exit code from vecsched.io/simulated-exit-code): the scheduler places the pods, nothing else writes them.
    async with control_plane(JobController, controller_settings=FAST) as srv:
        srv.create("jobs", _job("ok", node=None, scheduler="vecsched", completions=2, parallelism=2,
                                annotations={"vecsched.io/simulated-duration-seconds": "1"}))
        srv.create("jobs", _job("bad", node=None, scheduler="vecsched", backoffLimit=0,
                                annotations={"vecsched.io/simulated-duration-seconds": "1",
                                             "vecsched.io/simulated-exit-code": "3"}))
        async with running(srv):
            await wait_for(lambda: _has(srv, "ok", "Complete") and _has(srv, "bad", "Failed"), timeout=30,
                           what="ok Complete and bad Failed")
        assert _status(srv, "ok")["succeeded"] == 2
        assert _status(srv, "bad")["failed"] == 1  # 1 > backoffLimit 0
        assert _conditions(srv, "bad")[-1][2] == "BackoffLimitExceeded"


async def test_lowering_parallelism_deletes_the_least_ready_pods_uncounted() -> None:
    # 3 running pods, one of them not Ready; parallelism 3 -> 1 deletes 2: the unready pod first (upstream's
    # ActivePods order), then the newer of the ready ones. Pods the controller removes are not failures.
    async with control_plane(JobController, controller_settings=FAST, **LINGER) as srv:
        srv.create("jobs", _job("wide", parallelism=3, completions=9))
        await wait_for(lambda: _running(srv, "wide", 3), what="3 running pods")
        oldest, middle, newest = _active(srv, "wide")
        pod = srv.get("pods", oldest["metadata"]["name"], namespace=NS)
        pod["status"]["conditions"] = [dict(c, status="False") if c["type"] == "Ready" else c
                                       for c in pod["status"]["conditions"]]
        srv.ops.update(srv.resource("pods"), pod, namespace=NS, name=pod["metadata"]["name"], subresource="status")
        await wait_for(lambda: _status(srv, "wide").get("ready") == 2, what="2 ready")
        await _kubectl(srv, "patch", "job", "wide", "--type=merge", "-p", '{"spec":{"parallelism":1}}')
        await wait_for(lambda: len(_active(srv, "wide")) == 1 and _status(srv, "wide").get("active") == 1,
                       what="1 active pod")
        kept = _active(srv, "wide")[0]["metadata"]["name"]
        deleted = sorted(e["message"] for e in _events(srv, "wide", "SuccessfulDelete"))
        names = [p["metadata"]["name"] for p in (oldest, middle, newest)]
        assert deleted == sorted(f"Deleted pod: {n}" for n in names if n != kept)
        assert kept != oldest["metadata"]["name"]  # the unready pod went first
        status = _status(srv, "wide")
        assert "failed" not in status and status["terminating"] == 2
