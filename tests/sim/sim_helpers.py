"""Small builders for the strategy-lab tests: nodes, pods and SimPods from plain numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.sim.model import SimPod
from scoring.objects import NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.table import NodeTable

GI = 1024**3


def node(name: str, cpu: str, memory: str, *, pods: int = 110, labels: Mapping[str, str] | None = None,
         taints: Sequence[Mapping[str, str]] = (), extra: Mapping[str, str] | None = None) -> NodeInfo:
    return node_from_json({"metadata": {"name": name, "labels": dict(labels or {})},
                           "spec": {"taints": list(taints)},
                           "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}}})


def pod(name: str, cpu: str, memory: str, *, tolerations: Sequence[Mapping[str, str]] = (),
        extra: Mapping[str, str] | None = None) -> PodInfo:
    return pod_from_json({"metadata": {"name": name, "namespace": "t"},
                          "spec": {"tolerations": list(tolerations), "containers": [
                              {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory, **(extra or {})}}}]}})


def sim(name: str, cpu: str, memory: str, *, at: float = 0.0, runs: float | None = None) -> SimPod:
    return SimPod(pod(name, cpu, memory), at, runs)


def table(nodes: Sequence[NodeInfo], placed: Sequence[tuple[PodInfo, str]] = ()) -> NodeTable:
    t = NodeTable()
    for n in nodes:
        t.set_node(n)
    for p, where in placed:
        t.add_pod(p, where)
    return t


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)




ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def small_workload(tmp_path: Path) -> str:
    """The example workload cut to 1,000 pods: a few tenths of a second per run on the example
    cluster, so a sweep of several seeds is still going when its first run is on disk."""
    return write(tmp_path / "w.yaml", (ROOT / "deploy/examples/sim-workload.yaml").read_text()
                 .replace("pods: 3000", "pods: 1000"))


def interrupt_after_first_run(argv: Sequence[str], runs: Path, *,
                              to_group: bool = True) -> tuple[int, int, str, str]:
    """Run ``vecsched *argv`` in a session of its own, send SIGINT once ``runs`` holds a whole line
    (to the whole process group, as a terminal's Ctrl-C, or to the command alone), and return its
    process id (its process group's too), exit code, stdout and stderr."""
    proc = subprocess.Popen([str(BIN / "vecsched"), *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (runs.exists() and runs.read_text().endswith("\n")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no run finished in 60 s"
            time.sleep(0.01)
        (os.killpg if to_group else os.kill)(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.pid, proc.returncode, stdout, stderr
