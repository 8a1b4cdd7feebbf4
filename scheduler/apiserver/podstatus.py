"""A pod's status as the simulated kubelet reports it, and the annotations that steer a simulated run.

Clients judge a pod by its status: controllers count Ready replicas, Jobs
count Succeeded and Failed pods, ``kubectl get pods`` prints RESTARTS and the
container's reason. So the simulated kubelets write statuses the way the real
one builds them (``pkg/kubelet/kubelet_pods.go`` ``generateAPIPodStatus`` and
``getPhase``, ``pkg/kubelet/status/generate.go`` for the conditions): running
containers, terminated ones with ``exitCode``/``reason``/``finishedAt``,
restarts with ``lastState``, and the Ready / ContainersReady /
PodReadyToStartContainers conditions that follow them.

These are pure functions over the pod dict, so the kubelet module only
decides *when* something happens. The annotations below let a user say how a
container behaves, since no process runs:

* ``vecsched.io/simulated-duration-seconds: "N"`` -- every container of the
  pod exits N seconds after it started (fractional allowed);
* ``vecsched.io/simulated-exit-code: "C"`` -- with exit code C (default 0).

Simplified: all containers of a pod start, exit and restart together with
the same exit code; init containers are not run (a pod is Initialized at
once); image pulls and probes are not simulated.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DURATION_ANNOTATION",
    "EXIT_CODE_ANNOTATION",
    "Simulation",
    "read_simulation",
    "rfc3339",
    "start_pod",
    "restart_containers",
    "terminate_pod",
    "terminal_phase",
]

DURATION_ANNOTATION: Final = "vecsched.io/simulated-duration-seconds"
EXIT_CODE_ANNOTATION: Final = "vecsched.io/simulated-exit-code"
_MAX_EXIT_CODE: Final = 255  # a process's exit status is one byte


@dataclass(frozen=True)
class Simulation:
    """How a pod's containers behave, read from its annotations."""

    duration: float | None
    """Seconds each container runs before it exits; None runs until the pod is deleted."""
    exit_code: int = 0
    problems: tuple[str, ...] = ()
    """Why an annotation was ignored (reported as a Warning Event on the pod)."""


def read_simulation(pod: Mapping[str, Any]) -> Simulation:
    """The pod's simulated run; a malformed annotation is ignored and explained in ``problems``."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    problems = []
    duration: float | None = None
    raw = ann.get(DURATION_ANNOTATION)
    if raw is not None:
        try:
            value = float(str(raw).strip())
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            duration = value
        else:
            problems.append(f"annotation {DURATION_ANNOTATION}={str(raw)!r} ignored: "
                            "expected a number of seconds >= 0, such as \"30\" or \"0.5\"")
    code = 0
    raw = ann.get(EXIT_CODE_ANNOTATION)
    if raw is not None:
        text = str(raw).strip()
        if text.isdigit() and int(text) <= _MAX_EXIT_CODE:
            code = int(text)
        else:
            problems.append(f"annotation {EXIT_CODE_ANNOTATION}={str(raw)!r} ignored: "
                            f"expected an integer exit code 0..{_MAX_EXIT_CODE}; the containers exit with 0")
    return Simulation(duration=duration, exit_code=code, problems=tuple(problems))


def rfc3339(t: float) -> str:
    """A ``metav1.Time`` (seconds precision, UTC) of epoch seconds ``t``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def terminal_phase(exit_code: int) -> str:
    """``getPhase`` for a pod whose containers all stopped and will not restart."""
    return "Succeeded" if exit_code == 0 else "Failed"


@functools.lru_cache(maxsize=1024)  # a cluster runs a few images in many pods
def _image_id(image: str) -> str:
    """The digest the runtime reports for an image (here: of its name)."""
    return f"sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _container_id(uid: str, name: str, instance: int) -> str:
    return "containerd://" + hashlib.sha256(f"{uid}/{name}/{instance}".encode()).hexdigest()


def _reason(exit_code: int) -> str:
    # What the container runtime reports for a container that exited (CRI "Completed" / "Error").
    return "Completed" if exit_code == 0 else "Error"


def _set_condition(status: dict[str, Any], ctype: str, value: str, now: str, reason: str = "") -> None:
    """Set one pod condition; ``lastTransitionTime`` moves only when its status changes."""
    conds: list[dict[str, Any]] = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") != value:
                c["status"] = value
                c["lastTransitionTime"] = now
            if reason:
                c["reason"] = reason
            else:
                c.pop("reason", None)
            c.pop("message", None)
            return
    cond: dict[str, Any] = {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    conds.append(cond)


def start_pod(pod: dict[str, Any], *, now: float, pod_ip: str, host_ip: str) -> dict[str, Any]:
    """Pending -> Running: sandbox up, every container started and Ready."""
    ts = rfc3339(now)
    uid = str(pod["metadata"].get("uid", ""))
    status = pod.setdefault("status", {})
    order = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    for ctype in order:
        _set_condition(status, ctype, "True", ts)
    # The kubelet's order (the scheduler's PodScheduled last), other writers' conditions after.
    status["conditions"].sort(key=lambda c: order.index(c["type"]) if c.get("type") in order else len(order))
    status.update({
        "phase": "Running",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}] if host_ip else [],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": ts,
        "containerStatuses": [
            {
                "name": c.get("name", ""),
                "ready": True,
                "started": True,
                "restartCount": 0,
                "image": c.get("image", ""),
                "imageID": _image_id(str(c.get("image", ""))),
                "containerID": _container_id(uid, str(c.get("name", "")), 0),
                "state": {"running": {"startedAt": ts}},
                "lastState": {},
            }
            for c in (pod.get("spec") or {}).get("containers") or []
        ],
    })
    return pod


def _terminated(cs: Mapping[str, Any], *, exit_code: int, ts: str) -> dict[str, Any]:
    running = (cs.get("state") or {}).get("running") or {}
    return {"exitCode": exit_code, "reason": _reason(exit_code), "startedAt": running.get("startedAt", ts),
            "finishedAt": ts, "containerID": cs.get("containerID", "")}


def restart_containers(pod: dict[str, Any], *, exit_code: int, now: float) -> dict[str, Any]:
    """Every container exited with ``exit_code`` and was started again: RESTARTS + 1, the exit in ``lastState``.

    The pod stays Running and Ready. Simplified: the real kubelet waits out
    CrashLoopBackOff (10 s doubling to 5 min) before all but the first
    restart, reporting ``waiting: CrashLoopBackOff`` meanwhile; here the
    container restarts at once.
    """
    ts = rfc3339(now)
    uid = str(pod["metadata"].get("uid", ""))
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        count = int(cs.get("restartCount") or 0) + 1
        cs["lastState"] = {"terminated": _terminated(cs, exit_code=exit_code, ts=ts)}
        cs["restartCount"] = count
        cs["containerID"] = _container_id(uid, str(cs.get("name", "")), count)
        cs["state"] = {"running": {"startedAt": ts}}
        cs["ready"] = True
        cs["started"] = True
    return pod


def terminate_pod(pod: dict[str, Any], *, exit_code: int, now: float) -> dict[str, Any]:
    """Every container stopped with ``exit_code`` for good: the pod reaches its terminal phase.

    As the kubelet does since Kubernetes 1.27 (also for a pod being deleted):
    Succeeded when every container exited 0, else Failed; Ready and
    ContainersReady turn False with reason PodCompleted / PodFailed, and
    PodReadyToStartContainers False once the sandbox is torn down.
    """
    ts = rfc3339(now)
    status = pod.setdefault("status", {})
    for cs in status.get("containerStatuses") or []:
        if "terminated" not in (cs.get("state") or {}):
            cs["state"] = {"terminated": _terminated(cs, exit_code=exit_code, ts=ts)}
        cs["ready"] = False
        cs["started"] = False
    phase = terminal_phase(exit_code)
    why = "PodCompleted" if phase == "Succeeded" else "PodFailed"
    status["phase"] = phase
    _set_condition(status, "PodReadyToStartContainers", "False", ts)
    _set_condition(status, "Initialized", "True", ts, "PodCompleted" if phase == "Succeeded" else "")
    _set_condition(status, "Ready", "False", ts, why)
    _set_condition(status, "ContainersReady", "False", ts, why)
    return pod
