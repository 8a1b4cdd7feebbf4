"""Simulated kubelets: what happens to a pod once it is bound to a simulated node.

With no real kubelet a bound Pod would stay Pending forever, a deleted one
Terminating forever, and nothing downstream -- the demo, ReplicaSets and
Jobs counting their pods, readiness checks, tests of the live scheduler --
could observe a workload run, finish or go away. One ``KubeletSim`` plays
the kubelet of every simulated node, following ``pkg/kubelet``:

* **start**: a pod bound to a Ready node runs ``delay`` seconds after it was
  bound, with the conditions, IPs and container statuses a kubelet reports
  (``podstatus``);
* **simulated runs**: a pod annotated ``vecsched.io/simulated-duration-seconds``
  exits after that long with ``vecsched.io/simulated-exit-code``;
  ``restartPolicy`` decides between the terminal phase (Succeeded / Failed)
  and a restart (``restartCount`` + 1, the pod stays Running);
* **graceful termination**: a pod marked for deletion has its containers
  stopped -- exit code 137 when they are killed at the end of the grace
  period, 0 when they stop within it -- is reported in its terminal phase,
  then deleted with grace period 0 and a UID precondition, as the kubelet's
  status manager does. ``max_grace`` caps the wait (the demo and tests do
  not want to sit through 30 s); a container cut short by the cap is taken
  to have stopped cleanly on SIGTERM;
* **NotReady nodes** (``ApiServer.set_node_ready(name, False)``) play a
  kubelet that stopped: their pods are neither started, nor reported
  finished, nor removed when deleted (they stay Terminating, as on a real
  cluster) until the node is Ready again, when the kubelet catches up;
* **heartbeats** (``heartbeats``): node Leases and the Ready condition's
  ``lastHeartbeatTime``;
* **utilisation** (``usage``): the CPU and memory running pods use, served
  as the kubelet's resource metrics;
* **CSI registration**: once a Node registers, its CSINode (``build_csinode``:
  the node's simulated CSI driver, its topology keys and attach limit) is
  created, and the driver's CSIDriver object when the cluster has none yet,
  as the kubelet's plugin registration and the driver's installation do. A
  CSINode left from an earlier Node of the same name is taken over.

Everything is driven by store listeners (which only take note: a listener
must not write) and one shared ``Timeline`` (which does the writes), so
5,000 nodes and 50,000 pods cost no per-node or per-pod timer. Simplified:
no CrashLoopBackOff between restarts, no probes, no init containers, no
``Killing``/``Started`` Events (only a Warning for a malformed annotation),
no eviction under node pressure, and pods on a deleted node stay as they are.

``NodeShape``, ``build_node``, ``node_names`` and ``set_ready`` (the Node
objects themselves) live in ``nodes`` and are re-exported here.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from . import errors
from .controllers.base import Client, Recorder
from .heartbeats import NodeHeartbeats
from .nodes import NodeShape, build_csidriver, build_csinode, build_node, internal_ip, is_ready, node_names, set_ready
from .operations import Operations
from .podstatus import Simulation, read_simulation, restart_containers, start_pod, terminate_pod
from .resources import builtin
from .store import Entry, Store
from .timers import Timeline
from .usage import MAX_USAGE_RATIO, UsageTracker, node_capacity, pod_demand

__all__ = ["NodeShape", "build_node", "node_names", "KubeletSim", "set_ready"]

log = logging.getLogger("vecsched.apiserver.kubelet")

NODES: Final = builtin("nodes")
PODS: Final = builtin("pods")
CSINODES: Final = builtin("csinodes.storage.k8s.io")
CSIDRIVERS: Final = builtin("csidrivers.storage.k8s.io")
_NODE_NAME: Final = PODS.field_index("spec.nodeName")
_PHASE: Final = PODS.field_index("status.phase")
_RESTART_POLICY: Final = PODS.field_index("spec.restartPolicy")
_USAGE_MARK: Final = b"vecsched.io/simulated-usage-"
_DELETING_MARK: Final = b'"deletionTimestamp"'
# A container that exits at once under restartPolicy Always would restart in a
# tight loop (the real kubelet's CrashLoopBackOff is not simulated): each run
# lasts at least this long, so such a pod writes ten statuses a second at most.
_MIN_RUN: Final = 0.1
_KILLED: Final = 137  # 128 + SIGKILL, what the runtime reports for a container killed at the deadline

Key = tuple[str, str]


@functools.lru_cache(maxsize=4096)  # by stored version: a listener, then an action, ask about the same one
def _deleting(entry: Entry) -> bool:
    """Whether the pod is marked for deletion (the substring test spares parsing every write)."""
    return _DELETING_MARK in entry.raw and bool(entry.obj()["metadata"].get("deletionTimestamp"))


@dataclass(frozen=True)
class _Run:
    """A simulated container run: which pod instance, which run, when it ends, how."""

    uid: str
    gen: int
    due: float
    exit_code: int


class KubeletSim:
    """The kubelets of every simulated node, in the API server's process."""

    def __init__(self, *, store: Store, delay: float, ops: Operations | None = None, max_grace: float | None = None,
                 lease_seconds: float | None = 10.0, status_seconds: float | None = 300.0,
                 clock: Callable[[], float] = time.time, usage_ratio: float = 1.0) -> None:
        if delay < 0:
            raise ValueError(f"kubelet delay must be >= 0 seconds, got {delay}")
        if max_grace is not None and max_grace < 0:
            raise ValueError(f"kubelet max grace must be >= 0 seconds (or None for the full grace period), got {max_grace}")
        if not 0 <= usage_ratio <= MAX_USAGE_RATIO:  # also NaN
            raise ValueError(f"kubelet usage ratio must be a number in [0, {MAX_USAGE_RATIO:g}], got {usage_ratio}")
        self.store = store
        self.delay = delay
        self.max_grace = max_grace
        self.clock = clock
        self.usage_ratio = usage_ratio
        """What a pod without usage annotations uses, as a multiple of its requests (``usage.pod_demand``)."""
        self.ops = ops or Operations(store=store)
        self.timeline = Timeline()
        self.usage = UsageTracker(clock=clock)
        self.heartbeats = NodeHeartbeats(store=store, ops=self.ops, lease_seconds=lease_seconds,
                                         status_seconds=status_seconds, clock=clock)
        self._recorder = Recorder(client=Client(store=store, ops=self.ops))
        self._ready: dict[str, bool] = {}
        self._host_ip: dict[str, str] = {}
        self._parked: dict[str, set[Key]] = {}  # node -> pods waiting for it to be Ready
        self._starting: set[Key] = set()
        self._terminating: dict[Key, float] = {}  # pod -> monotonic time its containers are stopped
        self._runs: dict[Key, _Run] = {}
        self._gen = itertools.count(1)
        self._ips = 0
        self._own_write = False
        self.started = 0
        self.restarted = 0
        self.completed = 0
        """Pods that reached Succeeded or Failed at the end of a simulated run."""
        self.removed = 0
        """Pods the kubelets deleted after stopping them (graceful termination)."""
        for e in store.entries(NODES):
            ready = self._learn(e.name, e.obj())
            self.heartbeats.node_seen(e.name, ready=ready, registering=True)
            self._register_csi(e.name)  # not a listener: nodes registered before the kubelets are done at once
        store.add_listener(NODES.key, self._on_node)
        store.add_listener(PODS.key, self._on_pod)
        for e in store.entries(PODS):
            self._on_pod(PODS.key, None, e)

    def start(self) -> None:
        self.timeline.start()
        self.heartbeats.start()

    def stop(self) -> None:
        """Do nothing more until ``start()`` (what it is told meanwhile is kept for then)."""
        self.timeline.stop()
        self.heartbeats.stop()

    # ---- listeners: take note, never write -------------------------------------------------------

    def _on_node(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if new is None:
            assert old is not None
            self._ready.pop(old.name, None)
            self._host_ip.pop(old.name, None)
            self.usage.remove_node(old.name)
            self.heartbeats.node_gone(old.name)
            return
        ready = self._learn(new.name, new.obj())
        self.heartbeats.node_seen(new.name, ready=ready)
        if old is None or old.uid != new.uid:
            self.timeline.after(0, functools.partial(self._register_csi, new.name))
        if ready:
            for pod in self._parked.pop(new.name, set()):
                self.timeline.after(0, functools.partial(self._examine, pod))

    def _learn(self, name: str, node: dict[str, Any]) -> bool:
        """Note a Node's readiness, address and capacity (registering it with ``usage`` when new)."""
        ready = self._ready[name] = is_ready(node)
        self._host_ip[name] = internal_ip(node)
        cpu, memory = node_capacity(node)
        self.usage.add_node(name, cpu_capacity=cpu, memory_capacity=memory)  # a known node: left as it is
        self.usage.set_capacity(name, cpu_capacity=cpu, memory_capacity=memory)  # a resized one: from now on
        return ready

    def _on_pod(self, key: str, old: Entry | None, new: Entry | None) -> None:
        if new is None:
            assert old is not None
            self._forget((old.namespace, old.name))
            return
        if self._own_write:
            return  # the kubelet's own status write: the code that made it handles what follows
        node = new.fields[_NODE_NAME]
        if not node:
            return
        k = (new.namespace, new.name)
        if _deleting(new):
            self._look_again(k, node)
            return
        phase = new.fields[_PHASE]
        if phase == "Pending":
            if k not in self._starting:
                if self._ready.get(node):
                    self._enqueue_start(k)
                else:
                    self._parked.setdefault(node, set()).add(k)
        elif phase == "Running":
            if old is None or old.fields[_PHASE] != "Running":
                self._adopt(k, node, new.obj())  # restored from a state file, or set Running by someone else
            elif k in self.usage and (_USAGE_MARK in new.raw or _USAGE_MARK in old.raw):
                pod = new.obj()
                demand, problems = pod_demand(pod, ratio=self.usage_ratio)
                self.usage.update(k, demand=demand)
                self._warn(pod, problems)
        else:  # Succeeded or Failed, written by someone else: nothing runs any more
            self.usage.stop(k)
            self._runs.pop(k, None)

    def _forget(self, k: Key) -> None:
        self._starting.discard(k)
        self._terminating.pop(k, None)
        self._runs.pop(k, None)
        self.usage.stop(k)

    def _look_again(self, k: Key, node: str) -> None:
        if self._ready.get(node):
            self.timeline.after(0, lambda: self._examine(k))
        else:
            self._parked.setdefault(node, set()).add(k)

    def _adopt(self, k: Key, node: str, pod: dict[str, Any]) -> None:
        demand, problems = pod_demand(pod, ratio=self.usage_ratio)
        self.usage.start(k, node=node, demand=demand)
        sim = read_simulation(pod)
        self._warn(pod, [*problems, *sim.problems])
        if sim.duration is not None and k not in self._runs:
            self._schedule_exit(k, str(pod["metadata"].get("uid", "")), sim)

    def _warn(self, pod: dict[str, Any], problems: list[str]) -> None:
        for message in problems:
            # Recorded from the timeline: a listener must not write to the store.
            self.timeline.after(0, functools.partial(
                self._recorder.event, pod, component="kubelet", type="Warning", reason="InvalidSimulationAnnotation",
                message=message))

    # ---- actions, run from the timeline ----------------------------------------------------------

    def _register_csi(self, name: str) -> None:
        """The node's CSINode (and its drivers' CSIDriver objects), as the kubelet registers them."""
        entry = self.store.find(NODES, "", name)
        if entry is None:
            return
        want = build_csinode(entry.obj())
        try:
            have = self.store.find(CSINODES, "", name)
            if have is None:
                self.ops.create(CSINODES, want, namespace="")
            elif entry.uid not in have.owners:  # left from an earlier Node of this name: the new kubelet's now
                current = have.obj()
                current["metadata"]["ownerReferences"] = want["metadata"]["ownerReferences"]
                current["spec"] = want["spec"]
                self.ops.update(CSINODES, current, namespace="", name=name)
            for driver in want["spec"]["drivers"]:
                if self.store.find(CSIDRIVERS, "", driver["name"]) is None:
                    self.ops.create(CSIDRIVERS, build_csidriver(driver["name"]), namespace="")
        except errors.ApiError as e:
            if e.code != 409:  # created meanwhile by someone else: theirs stands
                log.warning("kubelet: registering CSI drivers of node %s failed: %s", name, e.message)

    def _write(self, k: Key, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """The kubelet's status write (straight to the store, as the status manager's PATCH); the pod as written."""
        written: list[dict[str, Any]] = []

        def keep(pod: dict[str, Any]) -> dict[str, Any]:
            written.append(mutate(pod))  # the stored dict itself: no second parse of what was just encoded
            return written[0]

        self._own_write = True
        try:
            self.store.update(PODS, k[0], k[1], keep)
        finally:
            self._own_write = False
        return written[0]

    def _examine(self, k: Key) -> None:
        """Decide what a pod needs next, now that its node is (or may be) Ready."""
        entry = self.store.find(PODS, k[0], k[1])
        if entry is None or not entry.fields[_NODE_NAME]:
            return
        node = entry.fields[_NODE_NAME]
        if not self._ready.get(node):
            self._parked.setdefault(node, set()).add(k)
        elif _deleting(entry):
            self._begin_termination(k, entry)
        elif entry.fields[_PHASE] == "Pending":
            if k not in self._starting:
                self._enqueue_start(k)
        elif entry.fields[_PHASE] == "Running":
            run = self._runs.get(k)
            if run is not None and run.due <= time.monotonic():
                self._exit(k, run.gen)  # its run ended while the node was NotReady

    def _enqueue_start(self, k: Key) -> None:
        self._starting.add(k)
        self.timeline.after(self.delay, lambda: self._start(k))

    def _start(self, k: Key) -> None:
        self._starting.discard(k)
        entry = self.store.find(PODS, k[0], k[1])
        if entry is None or entry.fields[_PHASE] != "Pending" or not entry.fields[_NODE_NAME]:
            return
        node = entry.fields[_NODE_NAME]
        if not self._ready.get(node):
            self._parked.setdefault(node, set()).add(k)
            return
        if _deleting(entry):
            self._begin_termination(k, entry)
            return
        self._ips += 1
        n = self._ips
        pod_ip = f"10.{244 + (n >> 16) % 4}.{(n >> 8) & 255}.{n & 255}"
        pod = self._write(k, lambda p: start_pod(p, now=self.clock(), pod_ip=pod_ip,
                                                 host_ip=self._host_ip.get(node, "")))
        self.started += 1
        self._adopt(k, node, pod)

    def _schedule_exit(self, k: Key, uid: str, sim: Simulation) -> None:
        assert sim.duration is not None
        run = _Run(uid=uid, gen=next(self._gen), due=time.monotonic() + max(sim.duration, _MIN_RUN),
                   exit_code=sim.exit_code)
        self._runs[k] = run
        self.timeline.at(run.due, lambda: self._exit(k, run.gen))

    def _exit(self, k: Key, gen: int) -> None:
        """A simulated run ended: restart the containers or finish the pod, per its restartPolicy."""
        run = self._runs.get(k)
        if run is None or run.gen != gen:
            return  # replaced by a restart, a termination or the pod's deletion
        entry = self.store.find(PODS, k[0], k[1])
        if entry is None or entry.uid != run.uid or entry.fields[_PHASE] != "Running":
            del self._runs[k]
            return
        if _deleting(entry):
            return  # the graceful termination decides how it ends
        node = entry.fields[_NODE_NAME]
        if not self._ready.get(node):
            self._parked.setdefault(node, set()).add(k)  # reported once the node is Ready again
            return
        code = run.exit_code
        policy = entry.fields[_RESTART_POLICY] or "Always"
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            pod = self._write(k, lambda p: restart_containers(p, exit_code=code, now=self.clock()))
            self.restarted += 1
            self.usage.restart(k)
            sim = read_simulation(pod)  # the next run follows the annotations as they are now
            if sim.duration is None:
                del self._runs[k]
            else:
                self._schedule_exit(k, run.uid, sim)
            return
        self._write(k, lambda p: terminate_pod(p, exit_code=code, now=self.clock()))
        del self._runs[k]
        self.usage.stop(k)
        self.completed += 1

    def _begin_termination(self, k: Key, entry: Entry) -> None:
        """The pod is marked for deletion: stop its containers within the grace period (``max_grace`` at most)."""
        self._starting.discard(k)
        self._runs.pop(k, None)  # a graceful termination overrides the simulated run
        pod = entry.obj()
        if (pod.get("status") or {}).get("phase") != "Running":
            if k not in self._terminating:  # never started, or already finished: nothing to stop
                self._terminating[k] = time.monotonic()
                self._remove(k, entry.uid)
            return
        grace = max(int(pod["metadata"].get("deletionGracePeriodSeconds") or 0), 0)
        wait = float(grace) if self.max_grace is None else min(float(grace), self.max_grace)
        due = time.monotonic() + wait
        scheduled = self._terminating.get(k)
        if scheduled is not None and scheduled <= due:
            return  # already being stopped, as soon or sooner (a second DELETE may only shorten it)
        self._terminating[k] = due
        killed = wait >= grace
        uid = entry.uid
        self.timeline.at(due, lambda: self._kill(k, uid, due, killed))

    def _kill(self, k: Key, uid: str, token: float, killed: bool) -> None:
        if self._terminating.get(k) != token:
            return  # rescheduled sooner, or the pod went away
        entry = self.store.find(PODS, k[0], k[1])
        if entry is None or entry.uid != uid:
            self._terminating.pop(k, None)
            return
        node = entry.fields[_NODE_NAME]
        if not self._ready.get(node):
            del self._terminating[k]  # the node stopped meanwhile: the pod stays Terminating until it is back
            self._parked.setdefault(node, set()).add(k)
            return
        code = _KILLED if killed else 0
        if entry.fields[_PHASE] == "Running":
            self._write(k, lambda p: terminate_pod(p, exit_code=code, now=self.clock()))
        self.usage.stop(k)
        self._remove(k, uid)

    def _remove(self, k: Key, uid: str) -> None:
        """Delete the stopped pod: grace period 0 and a UID precondition, as the kubelet's status manager."""
        try:
            self.ops.delete(PODS, namespace=k[0], name=k[1], uid=uid, grace=0)
        except errors.ApiError as e:
            if e.code not in (404, 409):  # gone already, or replaced by a new pod of the same name
                log.warning("kubelet: deleting pod %s/%s failed: %s", k[0], k[1], e.message)
            return
        self.removed += 1
