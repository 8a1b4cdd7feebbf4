"""``kubectl vecsched pending`` run by the real kubectl, which finds the plugin on PATH.

The pods are written as the scheduler leaves them -- created, then a ``pods/status`` patch with
PodScheduled=False and the attempt's message -- so no scheduler runs here.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.apiserver import ApiServer, serve_apiserver
from scheduler.kube.client import STRATEGIC_MERGE_PATCH, ClientSettings, connect
from tests.kubectl_plugin.support import cells, down_kubeconfig, kubectl_vecsched


CPU = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
GPU = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
BIND = "binding rejected: pods \"err-1\" is forbidden: node node-0001 is cordoned"

# (namespace, name, schedulerName, PodScheduled=False (reason, message) or None, nodeName, gates, nominated)
PODS: list[tuple[str, str, str, tuple[str, str] | None, str, list[str], str]] = [
    ("default", "web-1", "vecsched", ("Unschedulable", CPU), "", [], ""),
    ("default", "web-2", "vecsched", ("Unschedulable", CPU), "", [], "node-0001"),
    ("default", "train-1", "vecsched", ("Unschedulable", GPU), "", [], ""),
    ("default", "gated-1", "vecsched", None, "", ["example.com/quota"], ""),
    ("default", "fresh-1", "vecsched", None, "", [], ""),
    ("default", "other-1", "default-scheduler", ("Unschedulable", CPU), "", [], ""),  # another scheduler's
    ("default", "bound-1", "vecsched", None, "node-0000", [], ""),                       # bound: running
    ("team-a", "web-1", "vecsched", ("Unschedulable", CPU), "", [], ""),
    ("team-a", "err-1", "vecsched", ("SchedulerError", BIND), "", [], ""),
    ("team-b", "pack-1", "vecsched-packed", None, "", [], ""),                          # a second profile
]


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    # rbac=[]: the admin kubeconfig may do anything, the token "nobody" nothing (403).
    async with serve_apiserver(nodes=3, kubelet_delay=0.0, controllers=[], tokens={"nobody": "nobody"},
                               rbac=[]) as srv:
        for ns in ("team-a", "team-b"):
            srv.create("namespaces", {"metadata": {"name": ns}})
        client = await connect(ClientSettings(kubeconfig=str(srv.kubeconfig_path)))
        async with client:
            for ns, name, scheduler, condition, node, gates, nominated in PODS:
                spec: dict[str, Any] = {"schedulerName": scheduler,
                                        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}
                if node:
                    spec["nodeName"] = node
                if gates:
                    spec["schedulingGates"] = [{"name": g} for g in gates]
                srv.create("pods", {"metadata": {"name": name}, "spec": spec}, namespace=ns)
                status: dict[str, Any] = {}
                if condition:
                    status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": condition[0],
                                             "message": condition[1], "lastProbeTime": None}]
                if nominated:
                    status["nominatedNodeName"] = nominated
                if status:
                    await client.patch(f"/api/v1/namespaces/{ns}/pods/{name}/status", body={"status": status},
                                       content_type=STRATEGIC_MERGE_PATCH)
        yield srv



def without_age(rows: list[list[str]], column: int) -> list[list[str]]:
    """The rows with the AGE column checked (pods made just now) and dropped."""
    for r in rows[1:]:
        assert re.fullmatch(r"\d+s", r[column]), r
    return [r[:column] + r[column + 1:] for r in rows]


# (args, COUNT/REASON rows, pod rows without AGE); the kubeconfig's context namespace is "default".
TABLE_CASES = [
    pytest.param([], [["COUNT", "REASON"], ["2", CPU], ["1", GPU], ["1", "(not attempted yet)"], ["1", "SchedulingGated"]],
                 # groups by size, then by reason; other-1 (default-scheduler) and bound-1 (bound) left out
                 [["NAME", "NOMINATED-NODE", "REASON"],
                  ["web-1", "<none>", CPU], ["web-2", "node-0001", CPU], ["train-1", "<none>", GPU],
                  ["fresh-1", "<none>", "(not attempted yet)"], ["gated-1", "<none>", "SchedulingGated"]],
                 id="context-namespace"),
    # equal counts: verdicts alphabetically, then (not attempted yet), then SchedulingGated
    pytest.param(["-n", "team-a"], [["COUNT", "REASON"], ["1", CPU], ["1", BIND]],
                 [["NAME", "NOMINATED-NODE", "REASON"], ["web-1", "<none>", CPU], ["err-1", "<none>", BIND]],
                 id="namespace"),
    pytest.param(["-A", "--chunk-size", "1"],  # one pod per page: every page is read
                 [["COUNT", "REASON"], ["3", CPU], ["1", GPU], ["1", BIND], ["1", "(not attempted yet)"],
                  ["1", "SchedulingGated"]],
                 [["NAMESPACE", "NAME", "NOMINATED-NODE", "REASON"],
                  ["default", "web-1", "<none>", CPU], ["default", "web-2", "node-0001", CPU],
                  ["team-a", "web-1", "<none>", CPU], ["default", "train-1", "<none>", GPU],
                  ["team-a", "err-1", "<none>", BIND], ["default", "fresh-1", "<none>", "(not attempted yet)"],
                  ["default", "gated-1", "<none>", "SchedulingGated"]],
                 id="all-namespaces-paged"),
    pytest.param(["-A", "--scheduler-name", "vecsched-packed", "--scheduler-name", "default-scheduler"],
                 [["COUNT", "REASON"], ["1", CPU], ["1", "(not attempted yet)"]],
                 [["NAMESPACE", "NAME", "NOMINATED-NODE", "REASON"],
                  ["default", "other-1", "<none>", CPU], ["team-b", "pack-1", "<none>", "(not attempted yet)"]],
                 id="scheduler-names"),
]


@pytest.mark.parametrize(("args", "summary", "pods"), TABLE_CASES)
async def test_pending_table(apiserver: ApiServer, tmp_path: Path, args: list[str], summary: list[list[str]],
                             pods: list[list[str]]) -> None:
    code, out, err = await kubectl_vecsched("pending", "--kubeconfig", str(apiserver.kubeconfig_path), *args,
                                            home=tmp_path)
    assert (code, err) == (0, ""), (out, err)
    head, _, body = out.partition("\n\n")
    assert [cells(line) for line in head.splitlines()] == summary
    lines = body.splitlines()
    rows = [cells(line) for line in lines]
    age = rows[0].index("AGE")
    assert without_age(rows, age) == pods
    # Column-aligned like kubectl: every column starts where its header starts.
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for line, row in zip(lines[1:], rows[1:]):
        assert [line.index(cell, start) for cell, start in zip(row, starts)] == starts, line


async def test_pending_json(apiserver: ApiServer, tmp_path: Path) -> None:
    code, out, err = await kubectl_vecsched("pending", "-n", "default", "-o", "json", home=tmp_path,
                                            env={"KUBECONFIG": str(apiserver.kubeconfig_path)})  # found via $KUBECONFIG
    assert (code, err) == (0, ""), (out, err)
    doc = json.loads(out)
    assert set(doc) == {"pending", "byReason"}
    assert doc["byReason"] == {CPU: 2, GPU: 1, "(not attempted yet)": 1, "SchedulingGated": 1}
    assert list(doc["byReason"]) == [CPU, GPU, "(not attempted yet)", "SchedulingGated"]
    for p in doc["pending"]:
        assert set(p) == {"namespace", "name", "reason", "message", "nominatedNode", "age_seconds"}
        assert isinstance(p["age_seconds"], int) and 0 <= p["age_seconds"] < 60
    assert [(p["namespace"], p["name"], p["reason"], p["message"], p["nominatedNode"]) for p in doc["pending"]] == [
        ("default", "web-1", CPU, CPU, None),
        ("default", "web-2", CPU, CPU, "node-0001"),
        ("default", "train-1", GPU, GPU, None),
        ("default", "fresh-1", "(not attempted yet)", "", None),
        ("default", "gated-1", "SchedulingGated", "waiting for scheduling gates: example.com/quota", None),
    ]


async def test_nothing_pending(apiserver: ApiServer, tmp_path: Path) -> None:
    kc = str(apiserver.kubeconfig_path)
    code, out, err = await kubectl_vecsched("pending", "--kubeconfig", kc, "-n", "kube-system", home=tmp_path)
    assert (code, out, err) == (0, "", "No pending pods of vecsched in namespace kube-system.\n")
    code, out, err = await kubectl_vecsched("pending", "--kubeconfig", kc, "-n", "kube-system", "-o", "json",
                                            home=tmp_path)
    assert (code, json.loads(out), err) == (0, {"pending": [], "byReason": {}}, "")


def unreachable_kubeconfig(tmp_path: Path, _: ApiServer) -> list[str]:
    return ["pending", "--kubeconfig", str(down_kubeconfig(tmp_path))]


def forbidden(tmp_path: Path, apiserver: ApiServer) -> list[str]:
    return ["pending", "--kubeconfig", str(apiserver.kubeconfig_for(token="nobody", path=tmp_path / "nobody"))]


# (args, exit code, what the one line on stderr says)
ERROR_CASES = [
    pytest.param(lambda t, s: ["pending", "--kubeconfig", str(t / "missing")], 1, "does not exist", id="no-kubeconfig"),
    pytest.param(lambda t, s: ["pending", "--kubeconfig", str(s.kubeconfig_path), "--context", "nope"], 1,
                 "nope", id="unknown-context"),
    pytest.param(unreachable_kubeconfig, 1, "cannot list pods", id="unreachable"),
    pytest.param(forbidden, 1, "403 Forbidden", id="forbidden"),
    pytest.param(lambda t, s: ["frobnicate"], 2, "unknown command 'frobnicate'", id="unknown-command"),
    pytest.param(lambda t, s: ["pending", "-n", "a", "-A"], 2, "not allowed with argument", id="usage"),
    pytest.param(lambda t, s: ["pending", "-o", "yaml"], 2, "invalid choice", id="bad-output"),
]


@pytest.mark.parametrize(("make_args", "exit_code", "says"), ERROR_CASES)
async def test_errors_are_one_line(apiserver: ApiServer, tmp_path: Path, make_args: Any, exit_code: int,
                                   says: str) -> None:
    code, out, err = await kubectl_vecsched(*make_args(tmp_path, apiserver), home=tmp_path)
    assert code == exit_code and out == "", (code, out, err)
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1 and says in err, err
