"""Simulated kubelets: graceful termination, simulated runs and restarts, NotReady nodes, bad annotations.

Pods are bound by hand (``spec.nodeName``); what the kubelet reports is read
back through a real watch over HTTP, kubectl, or the server's in-process API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from scheduler.apiserver import ApiServer, command
from tests.apiserver.kube import kubectl, pod_manifest

from .support import control_plane, wait_for

DURATION = "vecsched.io/simulated-duration-seconds"
EXIT_CODE = "vecsched.io/simulated-exit-code"


def _pod(name: str, *, node: str = "node-0000", grace: int | None = None, policy: str | None = None,
         run: dict[str, str] | None = None) -> dict[str, Any]:
    """A pod bound to ``node``; ``run`` gives the simulation annotations by short name (duration, exit)."""
    pod = pod_manifest(name, node=node)
    if grace is not None:
        pod["spec"]["terminationGracePeriodSeconds"] = grace
    if policy is not None:
        pod["spec"]["restartPolicy"] = policy
    if run:
        pod["metadata"]["annotations"] = {DURATION if k == "duration" else EXIT_CODE: v for k, v in run.items()}
    return pod


def _get(srv: ApiServer, name: str) -> dict[str, Any] | None:
    return next((p for p in srv.list("pods", namespace="default") if p["metadata"]["name"] == name), None)


def _phase(srv: ApiServer, name: str) -> str:
    pod = _get(srv, name)
    return pod["status"]["phase"] if pod else "<gone>"


def _conditions(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in pod["status"]["conditions"]}


@asynccontextmanager
async def _watch(srv: ApiServer, name: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Watch one pod over HTTP; the list fills with (type, object) events while the block runs."""
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(base_url=srv.url) as http, http.get(
            "/api/v1/namespaces/default/pods",
            params={"watch": "true", "fieldSelector": f"metadata.name={name}"}) as resp:
        async def pump() -> None:
            async for line in resp.content:
                events.append(json.loads(line))
        task = asyncio.create_task(pump())
        try:
            yield events
        finally:
            task.cancel()


# (terminationGracePeriodSeconds, kubelet max grace) -> what the kubelet reports before deleting the pod:
# (exit code, container reason, pod phase, Ready condition reason)
TERMINATIONS = [
    # the full 1 s grace period passes: the container is killed (137 = 128 + SIGKILL)
    ((1, None), (137, "Error", "Failed", "PodFailed")),
    # the cap (0.2 s) comes before the 30 s grace period: it stopped on SIGTERM, cleanly
    ((30, 0.2), (0, "Completed", "Succeeded", "PodCompleted")),
    # a cap longer than the grace period changes nothing: killed after the 1 s
    ((1, 5.0), (137, "Error", "Failed", "PodFailed")),
]


@pytest.mark.parametrize(("grace", "want"), TERMINATIONS)
async def test_graceful_termination(grace: tuple[int, float | None], want: tuple[int, str, str, str]) -> None:
    async with control_plane(nodes=1, kubelet_max_grace_seconds=grace[1]) as srv:
        srv.create("pods", _pod("p", grace=grace[0]), namespace="default")
        await wait_for(lambda: _phase(srv, "p") == "Running", what="p running")
        uid = _get(srv, "p")["metadata"]["uid"]  # type: ignore[index]
        async with _watch(srv, "p") as events:
            code, _, err = await kubectl(srv.kubeconfig_path, "delete", "pod", "p",  # type: ignore[arg-type]
                                         "--wait=false")
            assert code == 0, err
            await wait_for(lambda: any(e["type"] == "DELETED" for e in events), what="p deleted")
        types = [e["type"] for e in events]
        assert types[0] == "ADDED" and types[-1] == "DELETED" and types.count("DELETED") == 1
        # the last state before the deletion is the kubelet's terminal status report
        last = events[-2]["object"]
        assert last["metadata"]["uid"] == uid and last["metadata"]["deletionTimestamp"]
        cs = last["status"]["containerStatuses"][0]
        terminated = cs["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"], last["status"]["phase"]) == want[:3]
        assert terminated["finishedAt"] and terminated["containerID"] == cs["containerID"] and not cs["ready"]
        conds = _conditions(last)
        assert conds["Ready"] == ("False", want[3]) and conds["ContainersReady"] == ("False", want[3])
        assert conds["PodReadyToStartContainers"][0] == "False" and conds["PodScheduled"][0] == "True"


async def test_second_delete_shortens_the_wait() -> None:
    async with control_plane(nodes=1) as srv:  # no cap: the pod's own 30 s grace period counts
        srv.create("pods", _pod("p"), namespace="default")
        await wait_for(lambda: _phase(srv, "p") == "Running", what="p running")
        pods = srv.resource("pods")
        srv.ops.delete(pods, namespace="default", name="p")
        await asyncio.sleep(0.3)
        assert _get(srv, "p") is not None  # 30 s to go
        srv.ops.delete(pods, namespace="default", name="p", grace=1)  # kubectl delete --grace-period=1
        await wait_for(lambda: _get(srv, "p") is None, what="p removed after 1 s")
        assert srv.kubelet.removed == 1


async def test_not_ready_node_keeps_deleted_pods_terminating() -> None:
    async with control_plane(nodes=2, kubelet_max_grace_seconds=0.1) as srv:
        for name, node in (("stuck", "node-0000"), ("free", "node-0001")):
            srv.create("pods", _pod(name, node=node), namespace="default")
        await wait_for(lambda: {_phase(srv, "stuck"), _phase(srv, "free")} == {"Running"}, what="pods running")
        srv.set_node_ready("node-0000", False)
        for name in ("stuck", "free"):
            code, _, err = await kubectl(srv.kubeconfig_path, "delete", "pod", name,  # type: ignore[arg-type]
                                         "--wait=false")
            assert code == 0, err
        await wait_for(lambda: _get(srv, "free") is None, what="free removed by its Ready node's kubelet")
        await asyncio.sleep(0.3)  # three times the 0.1 s cap: a live kubelet would have removed it by now
        code, out, _ = await kubectl(srv.kubeconfig_path, "get", "pod", "stuck", "--no-headers")  # type: ignore[arg-type]
        assert code == 0 and out.split()[2] == "Terminating"
        assert _phase(srv, "stuck") == "Running"
        srv.set_node_ready("node-0000", True)  # the kubelet is back and catches up
        await wait_for(lambda: _get(srv, "stuck") is None, what="stuck removed")


# (restartPolicy, exit code) -> (phase, restarts at least, container state, its exit code and reason, Ready)
RUNS = [
    ("Never", "0", ("Succeeded", 0, "terminated", (0, "Completed"), ("False", "PodCompleted"))),
    ("Never", "3", ("Failed", 0, "terminated", (3, "Error"), ("False", "PodFailed"))),
    ("OnFailure", "0", ("Succeeded", 0, "terminated", (0, "Completed"), ("False", "PodCompleted"))),
    # non-zero under OnFailure, and anything under Always: restarted, runs again for 0.15 s, again...
    ("OnFailure", "2", ("Running", 2, "running", (2, "Error"), ("True", ""))),
    ("Always", "0", ("Running", 2, "running", (0, "Completed"), ("True", ""))),
    ("Always", "1", ("Running", 2, "running", (1, "Error"), ("True", ""))),
]


@pytest.mark.parametrize(("policy", "exit_code", "want"), RUNS)
async def test_simulated_runs(policy: str, exit_code: str, want: tuple[Any, ...]) -> None:
    phase, restarts, state, (code, reason), ready = want
    async with control_plane(nodes=1) as srv:
        srv.create("pods", _pod("job", policy=policy, run={"duration": "0.15", "exit": exit_code}), namespace="default")

        def done() -> bool:
            pod = _get(srv, "job")
            assert pod is not None
            statuses = pod["status"].get("containerStatuses") or [{}]
            return pod["status"]["phase"] == phase and statuses[0].get("restartCount", 0) >= restarts and (
                phase != "Running" or bool(statuses[0].get("lastState")))
        await wait_for(done, what=f"job {phase} with {restarts}+ restarts")
        pod = _get(srv, "job")
        assert pod is not None
        cs = pod["status"]["containerStatuses"][0]
        assert list(cs["state"]) == [state]
        ended = cs["state"]["terminated"] if state == "terminated" else cs["lastState"]["terminated"]
        assert (ended["exitCode"], ended["reason"]) == (code, reason) and ended["startedAt"] <= ended["finishedAt"]
        assert _conditions(pod)["Ready"] == ready and cs["ready"] is (ready[0] == "True")
        if state == "terminated":
            assert cs["restartCount"] == 0 and _conditions(pod)["PodReadyToStartContainers"][0] == "False"
            await asyncio.sleep(0.3)  # two more run lengths: a finished pod stays finished
            assert _phase(srv, "job") == phase
        else:
            assert cs["containerID"] != cs["lastState"]["terminated"]["containerID"]  # a new container each run


# annotations -> (what happens, the warning's start)
BAD_ANNOTATIONS = [
    ({"duration": "soon"}, "Running", f"annotation {DURATION}='soon' ignored"),
    ({"duration": "-1"}, "Running", f"annotation {DURATION}='-1' ignored"),
    # the duration holds, the exit code falls back to 0: Never + 0 -> Succeeded
    ({"duration": "0.1", "exit": "boom"}, "Succeeded", f"annotation {EXIT_CODE}='boom' ignored"),
    ({"duration": "0.1", "exit": "300"}, "Succeeded", f"annotation {EXIT_CODE}='300' ignored"),
]


@pytest.mark.parametrize(("annotations", "phase", "warning"), BAD_ANNOTATIONS)
async def test_bad_annotations_warn_and_are_ignored(annotations: dict[str, str], phase: str, warning: str) -> None:
    async with control_plane(nodes=1) as srv:
        srv.create("pods", _pod("p", policy="Never", run=annotations), namespace="default")

        def warned() -> list[dict[str, Any]]:
            return [e for e in srv.list("events", namespace="default")
                    if e["involvedObject"]["name"] == "p" and e["reason"] == "InvalidSimulationAnnotation"]
        await wait_for(lambda: bool(warned()) and _phase(srv, "p") == phase, what=f"warning and phase {phase}")
        event = warned()[0]
        assert event["type"] == "Warning" and event["message"].startswith(warning)
        assert event["source"]["component"] == "kubelet"
        if phase == "Running":
            await asyncio.sleep(0.3)
            assert _phase(srv, "p") == "Running"  # no simulated run: it runs until deleted


# `vecsched apiserver` flags -> (max grace, lease period, status period) of the simulated kubelets; None: off / uncapped
FLAGS = [
    ([], (None, 10.0, 300.0)),  # upstream's periods, the pods' own grace periods
    (["--kubelet-max-grace", "2"], (2.0, 10.0, 300.0)),
    (["--kubelet-max-grace", "0", "--node-lease-seconds", "0.5"], (0.0, 0.5, 300.0)),
    (["--node-lease-seconds", "0", "--node-status-seconds", "0"], (None, None, None)),
    (["--kubelet-max-grace", "-1"], ValueError),
    (["--node-status-seconds", "-5"], ValueError),
]


@pytest.mark.parametrize(("flags", "want"), FLAGS)
def test_apiserver_flags(flags: list[str], want: tuple[float | None, ...] | type[Exception]) -> None:
    parser = argparse.ArgumentParser()
    command.configure(parser)
    args = parser.parse_args(["--port", "0", "--nodes", "1", *flags])
    if not isinstance(want, tuple):
        with pytest.raises(want):
            command._server(args)
        return
    kubelet = command._server(args).kubelet
    hb = kubelet.heartbeats
    assert (kubelet.max_grace, hb.leases.interval if hb.leases else None,
            hb.status.interval if hb.status else None) == want
