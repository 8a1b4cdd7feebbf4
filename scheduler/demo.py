"""``vecsched demo``: the whole scheduler on one machine, with no cluster.

It starts the embedded control plane (API server, controllers, simulated
nodes of mixed shapes), runs the live scheduler against it over HTTP as its
own process -- exactly ``vecsched run --kubeconfig ...``, so that the
scheduler has a core of its own as it would in a cluster; the PodGroup CRD
is applied first, since the scheduler watches PodGroups only if their CRD is
served when it starts. It applies a workload of Deployments, a StatefulSet,
a DaemonSet and Jobs (about 2,500 pods, some with priorities, node selectors
and tolerations, a few that cannot fit; the StatefulSet's pods each with a
volume of a ``WaitForFirstConsumer`` StorageClass, provisioned in the zone of
the node vecsched picks), two of the Jobs training gangs with
their PodGroups that cannot both have the GPUs they need, shows a progress
bar while the controllers create pods and vecsched places them, and prints
what happened: each workload's state, each gang's PodGroup (its phase,
members bound, GPUs held, and why the gang left out was not placed), pods
per node shape, utilisation per resource, pods left pending and why,
decisions per second, and scheduling latency from pod creation to binding as
the API server saw it. Then an urgent Deployment of the highest priority
arrives in the full cluster: vecsched nominates its pods, preempts batch pods
(the DisruptionTarget condition, a graceful delete, a Preempted Event) and
binds them once the victims are gone, and the Job controller replaces the
batch pods it lost; the summary ends with what preemption did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import aiohttp
import numpy as np

from scheduler.apiserver import serve_apiserver
from scheduler.config import load_config
from scheduler.demo_prometheus import DemoPrometheus, find_prometheus, start_prometheus
from scheduler.demo_workload import (
    DEMO_NAMESPACE,
    DEMO_SHAPES,
    DEMO_STORAGE_CLASS,
    GANGS,
    URGENT,
    WORKLOADS,
    expected_pods,
    manifests,
    podgroup_crd,
    priority_classes,
    storage_class,
    urgent_manifest,
)
from scheduler.logs import setup_logging
from scheduler.readiness import wait_ready
from scoring.objects import pod_from_json
from scoring.plugins.podgroups import POD_GROUP_LABEL
from scoring.quantity import milli_value, value

__all__ = ["configure", "run"]

_GPU = "nvidia.com/gpu"
_ZONE = "topology.kubernetes.io/zone"
_REASON_WIDTH = 200
"""Characters of a gang's FailedScheduling reason the summary shows (the whole one is in its Event)."""
_GANG_GRACE = 5.0
"""Seconds a quiet demo waits longer for a gang neither bound whole nor reported: one placed in part, as
by a --config whose profile disables Coscheduling, would otherwise hold it up until --timeout."""

# Where each kind is created (the paths kubectl would POST to).
_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "PriorityClass": "/apis/scheduling.k8s.io/v1/priorityclasses",
    "PodGroup": f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{DEMO_NAMESPACE}/podgroups",
    "StorageClass": "/apis/storage.k8s.io/v1/storageclasses",
    "Deployment": f"/apis/apps/v1/namespaces/{DEMO_NAMESPACE}/deployments",
    "StatefulSet": f"/apis/apps/v1/namespaces/{DEMO_NAMESPACE}/statefulsets",
    "DaemonSet": f"/apis/apps/v1/namespaces/{DEMO_NAMESPACE}/daemonsets",
    "Job": f"/apis/batch/v1/namespaces/{DEMO_NAMESPACE}/jobs",
}


class _Tracker:
    """Watches the API server's pod and Event writes in-process: creation and binding times, and
    what preemption did (nominations, DisruptionTarget conditions, deletions, Preempted Events)."""

    def __init__(self, *, node_field: int) -> None:
        self._node_field = node_field
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.nodes: dict[str, str] = {}
        self.app: dict[str, str] = {}
        """Pod -> its ``app`` label (the workload that made it)."""
        self.nominated: set[str] = set()
        """Pods whose ``status.nominatedNodeName`` was set before they were bound."""
        self.disrupted: set[str] = set()
        """Pods given the ``DisruptionTarget`` condition (preemption victims)."""
        self.gone: set[str] = set()
        self.preempted_events = 0
        self.group_failed: set[str] = set()
        """PodGroups (by name) given a FailedScheduling Event."""

    def __call__(self, key: Any, old: Any, new: Any) -> None:
        if new is None:
            if old is not None:
                self.gone.add(f"{old.namespace}/{old.name}")
            return
        name = f"{new.namespace}/{new.name}"
        now = time.perf_counter()
        if old is None:
            self.created.setdefault(name, now)
            self.app[name] = new.labels.get("app", "")
        if b'"DisruptionTarget"' in new.raw and name not in self.disrupted:
            conditions = (json.loads(new.raw).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in conditions):
                self.disrupted.add(name)
        node = new.fields[self._node_field]
        if not node and b'"nominatedNodeName"' in new.raw and name not in self.nominated:
            if (json.loads(new.raw).get("status") or {}).get("nominatedNodeName"):
                self.nominated.add(name)
        if node and name not in self.bound:
            self.bound[name] = now
            self.nodes[name] = node

    def on_event(self, key: Any, old: Any, new: Any) -> None:
        """A listener for core/v1 Events: counts the Preempted ones as they are created, and notes the
        PodGroups that get a FailedScheduling one."""
        if old is None and new is not None and b'"Preempted"' in new.raw:
            if json.loads(new.raw).get("reason") == "Preempted":
                self.preempted_events += 1
        if new is not None and b'"PodGroup"' in new.raw and b'"FailedScheduling"' in new.raw:
            event = json.loads(new.raw)
            involved = event.get("involvedObject") or {}
            if event.get("reason") == "FailedScheduling" and involved.get("kind") == "PodGroup":
                self.group_failed.add(str(involved.get("name")))

    def members_bound(self, group: str) -> int:
        """Pods of the gang ``group`` (its Job's ``app`` label) bound and not deleted."""
        return sum(1 for k in self.bound if self.app.get(k) == group and k not in self.gone)

    def of(self, app: str, keys: Any) -> list[str]:
        return [k for k in keys if self.app.get(k) == app]


def _bar(done: int, total: int, *, width: int = 40) -> str:
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} pods bound"


async def _apply(url: str, objs: list[dict[str, Any]]) -> None:
    """POST every object, as ``kubectl create -f`` would."""
    async with aiohttp.ClientSession() as http:
        for obj in objs:
            async with http.post(url + _PATHS[obj["kind"]], json=obj) as r:
                if r.status >= 300:
                    raise RuntimeError(f"creating {obj['kind']} {obj['metadata']['name']}: HTTP {r.status}: "
                                       f"{await r.text()}")


def _finished(srv: Any, job: str) -> bool:
    status = srv.get("jobs", job, namespace=DEMO_NAMESPACE).get("status") or {}
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _workload_state(srv: Any, kind: str, name: str) -> str:
    """One line of a workload's progress, from its status as the controllers wrote it."""
    resource = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
                "Job": "jobs"}[kind]
    obj = srv.get(resource, name, namespace=DEMO_NAMESPACE)
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        return f"{st.get('numberReady', 0)}/{st.get('desiredNumberScheduled', 0)} ready (one per node)"
    if kind == "Job":
        done = [c["type"] for c in st.get("conditions") or [] if c.get("status") == "True"
                and c.get("type") in ("Complete", "Failed")]
        state = done[0] if done else "Running"
        failed = f", {st['failed']} failed" if st.get("failed") else ""
        return (f"{state}, {st.get('succeeded', 0)}/{spec.get('completions', 0)} succeeded{failed}, "
                f"{st.get('active', 0)} active")
    return f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)} ready"


def _gangs_decided(srv: Any, tracker: _Tracker) -> bool:
    """Every gang is either bound whole with its PodGroup Running (the scheduler's operator has written
    it), or has no member bound and its PodGroup has had a FailedScheduling Event."""
    for w in GANGS:
        bound = tracker.members_bound(w.name)
        if bound == 0 and w.name in tracker.group_failed:
            continue
        if bound < (w.parallelism or w.replicas):
            return False
        status = srv.get("podgroups", w.name, namespace=DEMO_NAMESPACE).get("status") or {}
        if status.get("phase") != "Running":
            return False
    return True


def _quiet(srv: Any, tracker: _Tracker, last_change: float) -> bool:
    """Nothing changed for a second and the gangs are decided, or for ``_GANG_GRACE`` more if they are not."""
    still = time.perf_counter() - last_change
    return still > 1.0 + _GANG_GRACE or (still > 1.0 and _gangs_decided(srv, tracker))


def _shorten(text: str, *, width: int = _REASON_WIDTH) -> str:
    """``text``, or as much of it as fits in ``width`` ending at a clause (else a word), and " ..."."""
    if len(text) <= width:
        return text
    end = max(text.rfind(sep, 0, width - 4) for sep in (". ", "; ", ", "))
    if end > 0:
        return text[:end + 1] + " ..."
    end = text.rfind(" ", 0, width - 4)
    return text[:end if end > 0 else width - 4] + " ..."


def _gangs(srv: Any) -> list[str]:
    """The summary's gang block: each gang's PodGroup as the scheduler keeps it (phase), its members
    bound and the GPUs they hold, and for a gang with none bound the reason of the PodGroup's latest
    FailedScheduling Event."""
    pods = srv.list("pods", namespace=DEMO_NAMESPACE)
    failed: dict[str, dict[str, Any]] = {}
    for e in srv.list("events", namespace=DEMO_NAMESPACE):
        involved = e.get("involvedObject") or {}
        name = str(involved.get("name"))
        if e.get("reason") == "FailedScheduling" and involved.get("kind") == "PodGroup":
            if name not in failed or int(e["metadata"]["resourceVersion"]) > int(
                    failed[name]["metadata"]["resourceVersion"]):
                failed[name] = e  # the latest write: a repeated Event is updated in place
    lines = ["", "Gangs (PodGroups: minMember pods placed all at once, or none):"]
    partial = 0
    for w in GANGS:
        pg = srv.get("podgroups", w.name, namespace=DEMO_NAMESPACE)
        need = int((pg.get("spec") or {}).get("minMember") or 0)
        phase = (pg.get("status") or {}).get("phase") or "(no status)"
        bound = [p for p in pods if (p["metadata"].get("labels") or {}).get(POD_GROUP_LABEL) == w.name
                 and p["spec"].get("nodeName") and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        gpus = sum(int(pod_from_json(p).requests.get(_GPU, 0)) for p in bound)
        if 0 < len(bound) < need:
            partial += gpus
        line = f"  PodGroup {w.name:<8} {phase:<11} {len(bound):>2}/{need} members bound, {gpus:>2} GPUs held"
        if not bound and w.name in failed:
            line += f", FailedScheduling:\n    {_shorten(failed[w.name].get('message') or '')}"
        lines.append(line)
    lines.append(f"  GPUs held by gangs placed in part: {partial}")
    return lines


def _pv_zones(pv: dict[str, Any]) -> list[str]:
    """The zones a PersistentVolume's required node affinity allows (its ``topology.kubernetes.io/zone`` terms)."""
    terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    return sorted({v for t in terms for e in t.get("matchExpressions") or []
                   if e.get("key") == _ZONE and e.get("operator") == "In" for v in e.get("values") or []})


def _volumes(srv: Any) -> list[str]:
    """The summary's Volumes block: each StatefulSet with volumes, its claims bound, where their volumes
    were provisioned, and whether each bound pod runs in its volume's zone."""
    zone_of = {n["metadata"]["name"]: n["metadata"]["labels"].get(_ZONE, "") for n in srv.list("nodes")}
    pvs = {pv["metadata"]["name"]: pv for pv in srv.list("persistentvolumes")}
    claims = {c["metadata"]["name"]: c for c in srv.list("persistentvolumeclaims", namespace=DEMO_NAMESPACE)}
    pods = {p["metadata"]["name"]: p for p in srv.list("pods", namespace=DEMO_NAMESPACE)}
    lines = ["", f"Volumes (StorageClass {DEMO_STORAGE_CLASS}: WaitForFirstConsumer, provisioned in the zone of "
                 f"the node vecsched picks):"]
    for w in WORKLOADS:
        if not w.volume:
            continue
        mine = {name: c for name, c in claims.items() if name.startswith(f"data-{w.name}-")}
        bound = [c for c in mine.values() if (c.get("status") or {}).get("phase") == "Bound"]
        zones = Counter(z for c in bound for z in _pv_zones(pvs.get(c["spec"].get("volumeName", ""), {})))
        placed = same = 0
        for name, c in mine.items():
            pod = pods.get(name[len("data-"):])
            node = (pod or {}).get("spec", {}).get("nodeName")
            if not node:
                continue
            placed += 1
            pv = pvs.get(c["spec"].get("volumeName", ""), {})
            same += zone_of.get(node, "") in _pv_zones(pv)
        where = ", ".join(f"{z} {n}" for z, n in sorted(zones.items())) or "none"
        lines.append(f"  StatefulSet {w.name}: {len(bound)}/{len(mine)} claims bound, volumes provisioned in "
                     f"{where}; {same}/{placed} pods placed in their volume's zone")
    return lines


def _preemption(srv: Any, tracker: _Tracker, *, applied: float, want: int) -> list[str]:
    """The summary's Preemption block: the urgent pods, their victims (from the Preempted Events
    the API server holds) and the victims' replacements."""
    pods = {f"{DEMO_NAMESPACE}/{p['metadata']['name']}": p for p in srv.list("pods", namespace=DEMO_NAMESPACE)}
    shape_of = {n["metadata"]["name"]: n["metadata"]["labels"].get("node.kubernetes.io/instance-type", "?")
                for n in srv.list("nodes")}
    urgent = tracker.of(URGENT.name, pods)
    bound = [k for k in urgent if pods[k]["spec"].get("nodeName")]
    nominated = [k for k in bound if k in tracker.nominated]
    lines = ["", f"Preemption: Deployment {URGENT.name}, {want} pod{'s' if want > 1 else ''} of {URGENT.cpu} cpu "
                 f"at priority class {URGENT.priority_class}, applied once the rest was placed:"]
    took = max((tracker.bound[k] for k in bound), default=applied) - applied
    shapes = Counter(shape_of.get(pods[k]["spec"]["nodeName"], "?") for k in bound)
    on = ", ".join(f"{n} on {shape}" for shape, n in sorted(shapes.items()))
    lines.append(f"  {len(bound)}/{want} bound ({on or 'none'}), {len(nominated)} of them nominated to their node "
                 f"first; the last bound {took:.2f} s after the Deployment was applied")
    events = [e for e in srv.list("events", namespace=DEMO_NAMESPACE) if e.get("reason") == "Preempted"]
    if not events:
        lines.append("  no pod preempted: there was room for them")
        return lines
    victims = Counter(tracker.app.get(f"{DEMO_NAMESPACE}/{e['involvedObject']['name']}", "?") for e in events)
    owners = ", ".join(f"{n} {app}" for app, n in victims.most_common())
    lines.append(f"  {len(events)} pods preempted ({owners}; Preempted Events), "
                 f"{len(tracker.disrupted)} given the DisruptionTarget condition before their graceful delete")
    kinds = {w.name: w.kind for w in WORKLOADS}
    for app in victims:
        new = [k for k, t in tracker.created.items() if t >= applied and tracker.app.get(k) == app]
        placed = sum(1 for k in new if k in pods and pods[k]["spec"].get("nodeName"))
        waiting = sum(1 for k in new if k in pods and not pods[k]["spec"].get("nodeName"))
        lines.append(f"  {kinds.get(app, 'the owner of')} {app} made {len(new)} pods in their place: "
                     f"{placed} bound elsewhere, {waiting} pending")
    return lines


def _summary(srv: Any, tracker: _Tracker, started: float, metrics_url: str, *, placed: dict[str, float],
             applied: float, want: int) -> str:
    """What the demo did. ``placed``: binding times of the pods bound before the urgent Deployment came,
    for the throughput and latency lines; ``applied``: when it came; ``want``: its replicas."""
    lines = ["", f"Workloads in namespace {DEMO_NAMESPACE} (pods made by the controllers, placed by vecsched):"]
    for w in (*WORKLOADS, URGENT):
        lines.append(f"  {w.kind:<12} {w.name:<15} {_workload_state(srv, w.kind, w.name)}")
    lines += _gangs(srv)
    lines += _volumes(srv)

    nodes = {n["metadata"]["name"]: n for n in srv.list("nodes")}
    shape_of = {name: n["metadata"]["labels"].get("node.kubernetes.io/instance-type", "?") for name, n in nodes.items()}
    pods = srv.list("pods", namespace=DEMO_NAMESPACE)
    running = [p for p in pods if p["spec"].get("nodeName") and p["status"].get("phase") not in ("Succeeded", "Failed")]
    lines += ["", "Pods on nodes, per node shape:"]
    per_shape = Counter(shape_of.get(p["spec"]["nodeName"], "?") for p in running)
    node_count = Counter(shape_of.values())
    for shape, count in sorted(node_count.items()):
        lines.append(f"  {shape:<12} {count:>3} nodes  {per_shape.get(shape, 0):>5} pods")

    lines += ["", "Utilisation (requested / allocatable):"]
    alloc: Counter[str] = Counter()
    for n in nodes.values():
        for r, q in (n["status"].get("allocatable") or {}).items():
            if r in ("cpu", "memory", "nvidia.com/gpu"):
                alloc[r] += milli_value(q) if r == "cpu" else value(q)
    used: Counter[str] = Counter()
    for p in running:
        for r, amount in pod_from_json(p).requests.items():
            used[r] += amount
    for r in ("cpu", "memory", "nvidia.com/gpu"):
        if alloc[r]:
            lines.append(f"  {r:<15} {100 * used[r] / alloc[r]:5.1f}%")

    pending = [p for p in pods if not p["spec"].get("nodeName")]
    lines += ["", f"Pods left pending: {len(pending)}"]
    reasons: Counter[str] = Counter()
    for p in pending:
        cond: dict[str, Any] = next((c for c in (p.get("status") or {}).get("conditions") or []
                                     if c.get("type") == "PodScheduled"), {})
        reasons[cond.get("message") or "(not attempted yet)"] += 1
    for msg, count in reasons.most_common():
        lines.append(f"  {count:>4} x {msg}")

    lines += _preemption(srv, tracker, applied=applied, want=want)

    lat = np.array([placed[k] - tracker.created[k] for k in placed if k in tracker.created])
    if len(placed):
        span = max(placed.values()) - started
        lines += ["", f"Bound {len(placed)} pods in {span:.2f} s from the first workload created: "
                      f"{len(placed) / span:.0f} pods/s",
                  f"Latency from pod creation to binding: p50 {1000 * np.percentile(lat, 50):.1f} ms, "
                  f"p99 {1000 * np.percentile(lat, 99):.1f} ms"]
    lines += ["", f"Scheduler metrics were served at {metrics_url}/metrics (use --keep-running to look)"]
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the replica counts (default 1.0)")
    parser.add_argument("--config", help="a KubeSchedulerConfiguration for the scheduler")
    parser.add_argument("--port", type=int, default=0, help="API server port (default: a free one)")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="scheduler metrics port: 0 (the default) plain HTTP on a free loopback port; above 0 "
                             "HTTPS there (self-signed, /metrics served without credentials)")
    parser.add_argument("--keep-running", action="store_true", help="keep everything up afterwards for kubectl")
    parser.add_argument("--prometheus", action="store_true",
                        help="also run the installed Prometheus, scraping the scheduler and the simulated nodes")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="give up waiting for either phase after this many seconds")
    parser.add_argument("--seed", type=int, default=0)


async def _settle(srv: Any, tracker: _Tracker, *, applied: float, want: int, timeout: float) -> None:
    """Wait until the urgent pods are bound, their victims are gone with their Preempted Events
    written, the Jobs have replaced what they lost, the gangs are decided, and nothing was bound for
    a second."""
    deadline = applied + timeout
    last_change, last_count = time.perf_counter(), -1
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
        count = len(tracker.bound) + len(tracker.created)
        if count != last_count:
            last_change, last_count = time.perf_counter(), count
        jobs = [srv.get("jobs", w.name, namespace=DEMO_NAMESPACE) for w in WORKLOADS if w.kind == "Job"]
        replaced = all((j.get("status") or {}).get("active", 0) >= (j.get("spec") or {}).get("parallelism", 0)
                       or _finished(srv, j["metadata"]["name"]) for j in jobs)
        if (len(tracker.of(URGENT.name, tracker.bound)) >= want and tracker.disrupted <= tracker.gone
                and tracker.preempted_events >= len(tracker.disrupted) and replaced and srv.controllers.idle()
                and _quiet(srv, tracker, last_change)):
            return


_ALWAYS_ALLOW: Final = "/healthz,/readyz,/livez,/metrics"
"""With HTTPS (``--metrics-port`` above 0), the demo's scrapes carry no token: /metrics is always allowed."""


class _Scheduler:
    """The ``vecsched run`` child, the base URL of its metrics, and the task relaying its log."""

    def __init__(self, *, proc: asyncio.subprocess.Process, url: str, relay: asyncio.Task[None]) -> None:
        self.proc = proc
        self.url = url
        self.relay = relay

    @property
    def pid(self) -> int:
        return self.proc.pid


async def _relay(stream: asyncio.StreamReader, started: asyncio.Future[str]) -> None:
    """Read the child's JSON log: its start-up line names the address it serves metrics on
    (``started``); warnings and errors are shown, as its text log at level warning would."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            print(text, file=sys.stderr)
            continue
        if entry.get("msg") == "vecsched started" and not started.done():
            started.set_result(str(entry.get("metrics") or ""))
        if entry.get("level") in ("warning", "error", "critical"):
            print(f"vecsched run: {entry.get('level')}: {entry.get('msg')}", file=sys.stderr)
    if not started.done():
        started.set_exception(RuntimeError("the scheduler exited before it started serving metrics"))


async def _start_scheduler(*, kubeconfig: str, port: int, config: str | None) -> _Scheduler:
    """``vecsched run`` as a child process; returns once it answers /readyz.

    Port 0: plain HTTP on a free port of 127.0.0.1, which its start-up log names -- the demo's
    Prometheus and the printed ``curl`` scrape it as it is, and loopback exposes nothing. A port
    above 0: HTTPS there, as in a cluster, with /metrics always allowed and the self-signed
    certificate not verified (the demo trusts the child it started).
    """
    cmd = [sys.executable, "-m", "scheduler.cli", "run", "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
           "--port", str(port), "--no-leader-elect", "--log-level", "info", "--log-format", "json"]
    if port:
        cmd += ["--authorization-always-allow-paths", _ALWAYS_ALLOW]
    if config:
        cmd += ["--config", config]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    relay = asyncio.create_task(_relay(proc.stderr, started), name="vecsched run log")
    sched = _Scheduler(proc=proc, url="", relay=relay)
    try:
        sched.url = await asyncio.wait_for(asyncio.shield(started), 30)
        await wait_ready(url=sched.url, proc=proc, timeout=30, interval=0.1, what="the scheduler")
        return sched
    except BaseException:
        await _stop_scheduler(sched)
        raise


async def _stop_scheduler(sched: _Scheduler) -> None:
    proc = sched.proc
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    try:
        await asyncio.wait_for(sched.relay, 5)  # its last lines, up to the end of its log
    except (asyncio.TimeoutError, RuntimeError):
        sched.relay.cancel()


def _kubectl() -> str:
    """The kubectl the project installs beside vecsched (``.venv/bin/kubectl``), else the one on PATH."""
    here = Path(sys.executable).with_name("kubectl")
    return str(here) if here.exists() else "kubectl"


async def _demo(args: argparse.Namespace) -> int:
    load_config(args.config)  # fail here, with the config's own message, not in the child
    if not 0 <= args.metrics_port <= 65535:
        raise ValueError(f"--metrics-port: must be between 0 and 65535, got {args.metrics_port}")
    if args.prometheus and args.metrics_port:
        raise ValueError("--prometheus scrapes the scheduler over plain HTTP on loopback: leave --metrics-port out "
                         "(or 0) with it")
    objs = manifests(scale=args.scale)
    node_total = sum(s.count for s in DEMO_SHAPES)
    total = expected_pods(scale=args.scale, nodes=node_total)
    out = sys.stdout
    # Deleted pods stop within a second (a real kubelet honours the full grace period), and the Job
    # controller replaces a preempted pod at once (upstream waits 10 s, doubling with each failure).
    async with serve_apiserver(nodes=list(DEMO_SHAPES), port=args.port, kubelet_delay=0.05,
                               kubelet_max_grace_seconds=1.0,
                               controller_settings={"job.pod_failure_backoff_seconds": 0.0}) as srv:
        tracker = _Tracker(node_field=srv.store.type("pods").field_index("spec.nodeName"))
        srv.store.add_listener("pods", tracker)
        srv.store.add_listener("events", tracker.on_event)
        shapes = ", ".join(f"{s.count} x {s.instance_type}" for s in DEMO_SHAPES)
        # Before the scheduler starts: it watches PodGroups only if their CRD is served by then.
        await _apply(srv.url, [podgroup_crd()])
        print(f"API server {srv.url} with {node_total} simulated nodes ({shapes}) and its controllers; "
              f"PodGroup CRD applied", file=out)
        sched = await _start_scheduler(kubeconfig=str(srv.kubeconfig_path), port=args.metrics_port, config=args.config)
        metrics_url = sched.url
        prom: DemoPrometheus | None = None
        try:
            if args.prometheus:
                guest = await start_prometheus(binary=find_prometheus(), scheduler=metrics_url, apiserver=srv.url)
                prom = guest if isinstance(guest, DemoPrometheus) else None
                print(guest if prom is None else prom.started_line(), file=out)
            kinds = Counter(o["kind"] for o in objs)
            listed = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items())
            print(f"vecsched (pid {sched.pid}) scheduling; applying {listed} ({total} pods)", file=out)
            started = time.perf_counter()
            await _apply(srv.url, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}},
                                   *priority_classes(), storage_class(), *objs])
            deadline = started + args.timeout
            last_change, last_count, last_shown = time.perf_counter(), -1, -1
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
                done = len(tracker.bound)
                if out.isatty():
                    print(f"\r{_bar(done, total)}", end="", file=out, flush=True)
                elif done * 10 // total != last_shown:  # a log, not a terminal: a line per 10%
                    last_shown = done * 10 // total
                    print(_bar(done, total), file=out, flush=True)
                if done != last_count:
                    last_change, last_count = time.perf_counter(), done
                # Finished: the controllers have nothing queued, nothing was bound for a second,
                # the Jobs meant to finish during the demo have finished, and each gang is either
                # running or was reported as not placed (one placed in part: waited for _GANG_GRACE).
                if (srv.controllers.idle()
                        and all(_finished(srv, w.name) for w in WORKLOADS if w.kind == "Job" and w.run_seconds)
                        and _quiet(srv, tracker, last_change)):
                    break
            if out.isatty():
                print(file=out)
            else:
                print(_bar(len(tracker.bound), total), file=out)
            placed = dict(tracker.bound)
            urgent = urgent_manifest(scale=args.scale)
            want = int(urgent["spec"]["replicas"])
            print(f"Then Deployment {URGENT.name} ({want} pod{'s' if want > 1 else ''} of {URGENT.cpu} cpu, "
                  f"priority class {URGENT.priority_class}), once the rest is placed", file=out)
            applied = time.perf_counter()
            await _apply(srv.url, [urgent])
            await _settle(srv, tracker, applied=applied, want=want, timeout=args.timeout)
            print(_summary(srv, tracker, started, metrics_url, placed=placed, applied=applied, want=want), file=out)
            if prom is not None:
                print(f"\n{prom.queries(keep_running=args.keep_running)}", file=out)
            if args.keep_running:
                k = f"{_kubectl()} --kubeconfig {srv.kubeconfig_path} -n {DEMO_NAMESPACE}"
                print(f"\nStill running. Try:\n"
                      f"  {k} get deployments,statefulsets,daemonsets,jobs\n"
                      f"  {k} get pods -o wide\n"
                      f"  {k} scale deployment/web --replicas=1300 && {k} rollout status deployment/web\n"
                      f"  {k} set image deployment/api api=registry.example/api:1.1 && {k} rollout status deployment/api\n"
                      f"  {k} describe pods -l app=too-big\n"
                      f"  {k} get pvc && {_kubectl()} --kubeconfig {srv.kubeconfig_path} get pv,csinodes\n"
                      f"  {k} get podgroups\n"
                      f"  {k} describe podgroups\n"
                      f"  {k} get events --field-selector reason=Preempted\n"
                      f"  curl -sk {metrics_url}/metrics | grep -E 'scheduler_(schedule|preemption)_attempts_total'\n"
                      "Press Ctrl-C to stop.", file=out)
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await stop.wait()
        finally:
            if prom is not None:
                await prom.stop()
            await _stop_scheduler(sched)
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging(level=logging.WARNING, fmt="text")
    return asyncio.run(_demo(args))
