"""docs/troubleshooting.md quotes only what vecsched really prints or writes.

Every quoted message on the page sits in a ```text block right after a
``<!-- message: ID -->`` comment. Here each ID is produced by running the code as a user
would meet it -- ``vecsched run`` as a command (its exit-2 lines and start-up warnings), the
live scheduler against the embedded API server over HTTP (the PodScheduled=False message
``kubectl describe pod`` shows, the log lines, ``/readyz``), ``kubectl vecsched pending``
through the real kubectl, and the load plugins reading a real Prometheus -- and compared
with the page's quote. ``...`` in a quote stands for text that varies (a retry delay, a
host, a long list) and matches anything. The page and the code cannot drift apart: a
changed message fails here with both texts shown, and a quote without a producer (or a
producer without a quote) fails too.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.apiserver.auth import read_rbac_file
from scheduler.config import parse_config
from scheduler.kube.client import ClientSettings
from scheduler.leader import LeaseSettings
from scheduler.runtime import RuntimeSettings, Scheduler
from tests.apiserver.kube import kubectl
from tests.live.support import condition, pod, running, wait_for
from tests.prometheus_support import prometheus

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = ROOT / "docs" / "troubleshooting.md"
BIN: Final = Path(sys.executable).parent
CRD: Final = ROOT / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
RBAC: Final = ROOT / "deploy" / "rbac.yaml"
GROUP_LABEL: Final = "scheduling.x-k8s.io/pod-group"

_QUOTE = re.compile(r"<!-- message: ([a-z0-9-]+) -->\n```text\n(.*?)\n```", re.S)
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def quotes() -> dict[str, str]:
    """The page's quoted messages by ID."""
    found: dict[str, str] = {}
    for qid, text in _QUOTE.findall(DOC.read_text()):
        assert qid not in found, f"message {qid} is quoted twice on the page"
        found[qid] = text
    return found


def matches(quote: str, message: str) -> bool:
    """Whether ``message`` is the quote, ``...`` in it standing for any text."""
    return re.fullmatch(".*?".join(re.escape(part) for part in quote.split("...")), message, re.S) is not None


def check(produced: Mapping[str, Iterable[str]], *, every: bool = False) -> None:
    """Each ID's quote is one of the messages produced for it (a log line among the others)
    -- or, with ``every``, each of them (what every pod of a kind was told)."""
    page = quotes()
    wrong = []
    for qid, messages in produced.items():
        messages = list(messages)
        hits = [qid in page and matches(page[qid], m) for m in messages]
        if not messages or not (all(hits) if every else any(hits)):
            shown = "\n    ".join(messages) or "(nothing)"
            wrong.append(f"{qid}:\n  page:     {page.get(qid, '(not quoted)')}\n  produced: {shown}")
    assert not wrong, "docs/troubleshooting.md does not match vecsched:\n" + "\n".join(wrong)


# ---- vecsched run, as a command ----------------------------------------------------------------

KUBE_SCHEDULER_V1BETA3: Final = {"apiVersion": "kubescheduler.config.k8s.io/v1beta3",
                                 "kind": "KubeSchedulerConfiguration"}
OLD_PLUGIN_NAME: Final = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                          "profiles": [{"schedulerName": "vecsched", "plugins": {"score": {"enabled": [
                              {"name": "NodeResourcesLeastAllocated"}]}}}]}
UNIMPLEMENTED: Final = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                        "clientConnection": {"qps": 50},
                        "profiles": [{"schedulerName": "vecsched", "plugins": {"multiPoint": {"enabled": [
                            {"name": "DynamicResources"}]}}}]}
LOAD_WITHOUT_SOURCE: Final = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                              "profiles": [{"schedulerName": "vecsched", "plugins": {"multiPoint": {"enabled": [
                                  {"name": "TargetLoadPacking"}]}}}]}
CONFIGMAP: Final = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "scheduler-config"},
                    "data": {"config": yaml.safe_dump(LOAD_WITHOUT_SOURCE)}}


def _fit_args(args: dict[Any, Any]) -> dict[str, Any]:
    return {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "vecsched", "pluginConfig": [{"name": "NodeResourcesFit", "args": args}]}]}


# 2**63: one past int64's largest, which Go's decoder refuses too
HUGE_WEIGHT: Final = _fit_args({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 2**63}]}})
INT_KEY: Final = _fit_args({1: "x"})  # YAML's `1: x`: a key JSON cannot have

# (case, IDs the run must print, `vecsched run` arguments, files written first, extra environment).
# Without a reachable kubeconfig each run stops after reading its configuration: exit 2.
CLI_CASES: Final[list[tuple[str, tuple[str, ...], list[str], dict[str, Any], dict[str, str]]]] = [
    ("no kubeconfig", ("kubeconfig-missing",), [], {}, {"HOME": "/home/ops"}),
    ("v1beta3", ("config-old-api",), ["--config", "kube-scheduler.yaml"],
     {"kube-scheduler.yaml": KUBE_SCHEDULER_V1BETA3}, {}),
    ("old plugin name", ("config-unknown-plugin",), ["--config", "kube-scheduler.yaml"],
     {"kube-scheduler.yaml": OLD_PLUGIN_NAME}, {}),
    ("ConfigMap key", ("config-configmap-key",), ["--config", "scheduler-config.yaml"],
     {"scheduler-config.yaml": CONFIGMAP}, {}),
    ("integer past int64", ("config-int64",), ["--config", "kube-scheduler.yaml"],
     {"kube-scheduler.yaml": HUGE_WEIGHT}, {}),
    ("integer key", ("config-key-not-string",), ["--config", "kube-scheduler.yaml"],
     {"kube-scheduler.yaml": INT_KEY}, {}),
    ("warnings", ("config-unimplemented", "config-unused-field"), ["--config", "kube-scheduler.yaml"],
     {"kube-scheduler.yaml": UNIMPLEMENTED}, {}),
    ("load plugin without a source", ("load-no-source",), ["--config", "kube-scheduler.yaml"],
     {"kube-scheduler.yaml": LOAD_WITHOUT_SOURCE}, {}),
]


def vecsched_run(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> tuple[int, list[str]]:
    """``vecsched run ARGS`` in ``cwd``: its exit code and its stderr lines, log prefixes
    (time, level, logger) removed."""
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    r = subprocess.run([str(BIN / "vecsched"), "run", "--no-leader-elect", *args], cwd=cwd,
                       env={**base, "HOME": str(cwd), **env}, capture_output=True, text=True, timeout=60)
    return r.returncode, [_LOG_PREFIX.sub("", line) for line in r.stderr.splitlines()]


@pytest.mark.parametrize(("ids", "args", "files", "env"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_vecsched_run_refuses_with_one_line(ids: tuple[str, ...], args: list[str], files: dict[str, Any],
                                            env: dict[str, str], tmp_path: Path) -> None:
    for name, doc in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(doc))
    code, lines = vecsched_run(["--bind-address", "127.0.0.1", "--port", "0", *args], cwd=tmp_path, env=env)
    assert code == 2, lines
    assert lines[-1].startswith("vecsched run: "), lines  # the error is the last line; no traceback
    check({qid: lines for qid in ids})


def test_metrics_port_taken(tmp_path: Path) -> None:
    # The Deployment's port, 10259, held by something else (this test, unless another
    # process holds it already -- the message is the same).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", 10259))
            s.listen()
        except OSError as e:
            assert e.errno == errno.EADDRINUSE
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {}}], "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
        code, lines = vecsched_run(["--kubeconfig", str(kubeconfig)], cwd=tmp_path, env={})
    assert code == 2, lines
    check({"metrics-port-taken": lines})


# ---- the live scheduler: what `kubectl describe pod` shows --------------------------------------


def _with(p: dict[str, Any], *, labels: Mapping[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    if labels:
        p["metadata"]["labels"] = dict(labels)
    p["spec"].update(spec)
    return p


def _podgroup(name: str, min_member: int) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"minMember": min_member}}


# The cluster: node-0000 and node-0001 (4 CPUs, 3500m of each taken by a running pod) and
# node-0002, tainted dedicated=gpu:NoSchedule. Every pod below is pending when the scheduler
# starts, and none can be bound, so each one's message is that of its first attempt.
# (pod, the ID of its PodScheduled=False message)
LIVE_PODS = [
    # 1 CPU: 500m free on the two untainted nodes; priority 0 like the pods there, so no victim
    (pod("web", cpu="1"), "insufficient-cpu"),
    # 8 CPUs: more than any node has, which no eviction can change
    (pod("huge", cpu="8"), "preemption-not-helpful"),
    (pod("batch", cpu="1", preemptionPolicy="Never"), "preemption-never"),
    (pod("ssd", nodeSelector={"disktype": "ssd"}), "node-selector"),
    (pod("db", volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]), "claim-not-found"),
    # fits (100m), but its PodGroup does not exist: Coscheduling rejects it at Permit
    (_with(pod("worker"), labels={GROUP_LABEL: "training"}), "podgroup-not-found"),
    # PodGroup "train" wants 3 members; only one pod carries its label
    (_with(pod("train-0"), labels={GROUP_LABEL: "train"}), "gang-siblings"),
    # PodGroup "sweep" wants 3 members of 400m: one fits in each node's 500m, so 2 of 3
    (_with(pod("sweep-0", cpu="400m"), labels={GROUP_LABEL: "sweep"}), "gang-cannot-fit"),
    (_with(pod("sweep-1", cpu="400m"), labels={GROUP_LABEL: "sweep"}), "gang-cannot-fit"),
    (_with(pod("sweep-2", cpu="400m"), labels={GROUP_LABEL: "sweep"}), "gang-cannot-fit"),
    # the profile with LoadAware, whose node metrics (a file here) were taken an hour ago
    (pod("report", scheduler="vecsched-load"), "load-metrics-stale"),
]


def _config() -> Any:
    """The default profile, and one with LoadAware (its metrics from --node-metrics)."""
    return parse_config({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                         "profiles": [{"schedulerName": "vecsched"},
                                      {"schedulerName": "vecsched-load",
                                       "plugins": {"multiPoint": {"enabled": [{"name": "LoadAware"}]}}}]})


def _node_metrics(path: Path, nodes: Iterable[str]) -> Path:
    """A WatcherMetrics file for ``nodes``, taken an hour ago (LoadAware's limit: 180 s)."""
    end = int(time.time()) - 3600
    metrics = {n: {"metrics": [{"name": "instance:node_cpu:ratio", "type": "CPU", "operator": "AVG",
                                "rollup": "15m", "value": 20.0}]} for n in nodes}
    path.write_text(json.dumps({"timestamp": end, "window": {"duration": "15m", "start": end - 900, "end": end},
                                    "source": "Prometheus", "data": {"NodeMetricsMap": metrics}}))
    return path


async def test_pending_pods_messages(tmp_path: Path) -> None:
    shapes = [NodeShape(count=2, cpu="4", memory="8Gi"),
              NodeShape(count=1, cpu="4", memory="8Gi", taints=[{"key": "dedicated", "value": "gpu",
                                                                  "effect": "NoSchedule"}])]
    async with serve_apiserver(nodes=shapes, kubelet_delay=0.02, bookmark_interval=0.5, controllers=[]) as srv:
        assert srv.kubeconfig_path is not None
        rc, _, err = await kubectl(srv.kubeconfig_path, "apply", "-f", str(CRD))
        assert rc == 0, err
        for i in range(2):  # running pods, placed before the scheduler starts
            srv.create("pods", pod(f"running-{i}", cpu="3500m", nodeName=f"node-000{i}"), namespace="default")
        for name, members in (("train", 3), ("sweep", 3)):
            srv.create("podgroups", _podgroup(name, members), namespace="default")
        for p, _ in LIVE_PODS:
            srv.create("pods", copy.deepcopy(p), namespace="default")
        metrics = _node_metrics(tmp_path / "metrics.json", (f"node-000{i}" for i in range(3)))
        async with running(srv, config=_config(), node_metrics_file=str(metrics), event_min_interval=0.0):
            def reported() -> bool:
                return all(condition(srv.get("pods", p["metadata"]["name"], namespace="default")) is not None
                           for p, _ in LIVE_PODS)
            await wait_for(reported, timeout=20, what="a PodScheduled condition on every pod")
            await asyncio.sleep(0.5)  # a second attempt, if any, reports the same
            produced: dict[str, list[str]] = {}
            for p, qid in LIVE_PODS:
                got = condition(srv.get("pods", p["metadata"]["name"], namespace="default"))
                assert got is not None and got["status"] == "False", (p["metadata"]["name"], got)
                produced.setdefault(qid, []).append(got["message"])
            assert all(not srv.get("pods", p["metadata"]["name"], namespace="default")["spec"].get("nodeName")
                       for p, _ in LIVE_PODS)
    check(produced, every=True)  # every member of the sweep group has the group's message


async def test_not_attempted_pods(tmp_path: Path) -> None:
    # A pod whose schedulerName no scheduler runs ("vecshed", a typo): no attempt, no Event.
    async with serve_apiserver(nodes=2, kubelet_delay=0.0, controllers=[]) as srv:
        srv.create("pods", pod("typo", scheduler="vecshed"), namespace="default")
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "kubectl"), "vecsched", "pending", "--scheduler-name", "vecshed",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "KUBECONFIG": str(srv.kubeconfig_path), "HOME": str(tmp_path),
                 "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    rows = [re.split(r" {2,}", line.strip()) for line in out.decode().splitlines() if line.startswith("typo ")]
    assert len(rows) == 1, out.decode()
    check({"not-attempted": [rows[0][-1]]})


# ---- the live scheduler: its log and its probes ------------------------------------------------


@contextmanager
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The messages vecsched logs (INFO and up) inside the block."""
    caplog.set_level(logging.INFO, logger="vecsched")
    lines: list[str] = []
    try:
        yield lines
    finally:
        lines.extend(r.getMessage() for r in caplog.records if r.name.startswith("vecsched"))


async def test_standby_replica_and_gangs_without_the_crd(caplog: pytest.LogCaptureFixture) -> None:
    # Two replicas with leader election (upstream's timings), no PodGroup CRD installed.
    async with serve_apiserver(nodes=2, kubelet_delay=0.0, controllers=[]) as srv:
        def lease(identity: str) -> LeaseSettings:
            return LeaseSettings(namespace="kube-system", name="vecsched", identity=identity)
        with logged(caplog) as lines:
            async with running(srv, leader_elect=True, lease=lease("replica-a")):
                async with running(srv, leader_elect=True, lease=lease("replica-b"), ready=False) as standby:
                    await wait_for(lambda: standby.synced, what="the standby's caches synced")
                    async with aiohttp.ClientSession() as http:
                        async with http.get(f"{standby.metrics_url}/readyz") as r:
                            status = r.status
    assert status == 200  # a synced standby is Ready, as kube-scheduler's are
    check({"podgroups-not-served": lines})


async def test_api_server_unreachable(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    async with serve_apiserver(nodes=1, controllers=[]) as srv:
        assert srv.kubeconfig_path is not None
        kubeconfig = srv.kubeconfig_path.read_text()
    # the server is gone: its address answers nothing now
    (tmp_path / "kubeconfig").write_text(kubeconfig)
    settings = RuntimeSettings(client=ClientSettings(kubeconfig=str(tmp_path / "kubeconfig")), port=0,
                               leader_elect=False)
    with logged(caplog) as lines:
        async with Scheduler(settings=settings) as s:
            await asyncio.sleep(0.5)
            assert not s.ready()
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{s.metrics_url}/readyz") as r:
                    status, body = r.status, await r.text()
    assert status == 503
    check({"api-unreachable": lines, "replica-not-ready": [body]})


def _without_binding(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """deploy/rbac.yaml with the ClusterRole's pods/binding rule taken out."""
    docs = copy.deepcopy(docs)
    for d in docs:
        if d["kind"] == "ClusterRole":
            d["rules"] = [r for r in d["rules"] if r.get("resources") != ["pods/binding"]]
    return docs


async def test_rbac_denials(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    # deploy/rbac.yaml without pods/binding, for the ServiceAccount vecsched/vecsched; and
    # the same scheduler installed in the namespace "scheduling", which the binding does not name.
    tokens = {"sa": "system:serviceaccount:vecsched:vecsched", "moved": "system:serviceaccount:scheduling:vecsched"}
    async with serve_apiserver(nodes=2, rbac=_without_binding(read_rbac_file(RBAC)), controllers=[],
                               tokens=tokens) as srv:
        srv.create("pods", pod("web-0"), namespace="default")
        sa = ClientSettings(kubeconfig=str(srv.kubeconfig_for(token="sa", path=tmp_path / "sa")))
        async with running(srv, client=sa, event_min_interval=0.0):
            await wait_for(lambda: condition(srv.get("pods", "web-0", namespace="default")) is not None,
                           what="web-0's PodScheduled condition")
            got = condition(srv.get("pods", "web-0", namespace="default"))
        moved = ClientSettings(kubeconfig=str(srv.kubeconfig_for(token="moved", path=tmp_path / "moved")))
        with logged(caplog) as lines:
            async with running(srv, client=moved, ready=False):
                await asyncio.sleep(0.5)
    assert got is not None
    check({"binding-forbidden": [got["message"]], "list-forbidden": lines})


# ---- the load plugins' source -------------------------------------------------------------------


def _load_config(address: str) -> Any:
    return parse_config({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                         "profiles": [{"schedulerName": "vecsched",
                                       "plugins": {"multiPoint": {"enabled": [{"name": "TargetLoadPacking"}]}},
                                       "pluginConfig": [{"name": "TargetLoadPacking", "args": {
                                           "metricProvider": {"type": "Prometheus", "address": address}}}]}]})


async def test_load_metrics_source(caplog: pytest.LogCaptureFixture) -> None:
    # A real Prometheus that records neither series (no rules, nothing scraped), and then
    # none at all (it is stopped): what the scheduler logs in each case.
    async with serve_apiserver(nodes=1, controllers=[]) as srv:
        with logged(caplog) as missing:
            async with prometheus(targets=[]) as prom:
                url = prom.url
                async with running(srv, config=_load_config(url)) as s:
                    assert s.load_refresher is not None
                    await wait_for(lambda: s.load_refresher is not None and s.load_refresher.first_attempt.is_set(),
                                   what="the first fetch")
        caplog.clear()
        with logged(caplog) as down:
            async with running(srv, config=_load_config(url)) as s:
                assert s.load_refresher is not None
                await wait_for(lambda: s.load_refresher is not None and s.load_refresher.first_attempt.is_set(),
                               what="the first fetch")
    swap = {url: "http://prometheus-k8s.monitoring:9090"}  # the address of the page's configuration
    check({"prometheus-rule-missing": [_swap(m, swap) for m in missing],
           "prometheus-down": [_swap(m, swap) for m in down]})


def _swap(message: str, replace: Mapping[str, str]) -> str:
    for old, new in replace.items():
        message = message.replace(old, new)
    return message


# ---- the page itself ------------------------------------------------------------------------------

PRODUCED: Final = {
    *(qid for _, ids, _, _, _ in CLI_CASES for qid in ids),
    "metrics-port-taken", *(qid for _, qid in LIVE_PODS), "not-attempted", "replica-not-ready",
    "podgroups-not-served", "api-unreachable", "binding-forbidden", "list-forbidden",
    "prometheus-rule-missing", "prometheus-down",
}


def test_every_quote_has_a_producer() -> None:
    page = set(quotes())
    assert page == PRODUCED, (f"quoted but not produced here: {sorted(page - PRODUCED)}; "
                              f"produced here but not quoted: {sorted(PRODUCED - page)}")


def test_every_message_block_is_marked() -> None:
    # A ```text block on the page is a quoted message: it carries its ID (so it is checked).
    text = DOC.read_text()
    blocks = len(re.findall(r"^```text$", text, re.M))
    assert blocks == len(quotes()), "every ```text block follows a <!-- message: ID --> line"
