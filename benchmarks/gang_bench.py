"""How long placing a whole PodGroup takes: vecsched's group placement against
scheduler-plugins' member-by-member Coscheduling, in the same run.

The cluster is ``--nodes`` GPU nodes of 8 ``nvidia.com/gpu``, 64 or 96 CPU (512Gi or
768Gi), tainted for GPU work as managed GPU pools are, in four zones. About half of
the GPUs are in use by running training pods of 1, 2, 4 or 8 GPUs (6 CPU and 48Gi a
GPU), and every node runs two small system pods. A group of ``size`` members (each 1
GPU, 6 CPU, 48Gi) has a PodGroup with ``minMember: size``; every member is known to
the PodGroups extension, as the informers would have it. The profile is vecsched's
default, Coscheduling included, rebuilt with the same seed for every method and
repetition, so that both methods draw the same ties.

For each size, two cases:

- **fits**: the cluster has GPUs to spare. vecsched checks the whole group with
  ``place_group``, then assumes every planned member and runs Permit for each (the
  quorum is there, so none waits). One by one, as kube-scheduler with scheduler-plugins
  does: each member is scheduled, assumed and sent to Permit, where it waits until the
  last one arrives and allows them all. Both must place the same members on the same
  nodes (``same_nodes``).
- **does_not_fit**: other jobs hold every free GPU but room for half the group.
  vecsched's check stops at the first member that fits nowhere and reserves nothing.
  One by one, the members before it are scheduled, assumed and held at Permit; the one
  that fits nowhere runs the PostFilter plugins (DefaultPreemption finds no victim,
  Coscheduling rejects the waiting members), and every held member is unreserved and
  forgotten. ``held_members_one_by_one`` / ``held_gpus_one_by_one`` say how much
  capacity the partial group held meanwhile -- what gang users complain about --
  and ``one_by_one_failure_us`` how long the failing member's cycle and the release took.

Each repetition meets the same cluster: placements are undone between them (untimed).
Figures are medians over ``--repeat`` repetitions, after one untimed warm-up, the two
methods taking turns to go first; ``ratio`` is one-by-one's time over vecsched's. When
the group fits, both do the same work per member and vecsched then assumes each member
once more, so expect a ratio a little under 1 there: its gain is the group that does
not fit, decided sooner and without holding any capacity.

    python -m benchmarks.decision --case gang [--nodes 5000] [--sizes 8,64,512] [--repeat 10] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmarks.clusters import table_of
from benchmarks.sim_command import _positive_int  # the same check as `vecsched sim`
from scheduler.config import default_config
from scoring.framework import PERMIT_REJECT, PERMIT_WAIT, CycleState, Decision, Profile, WaitingPod
from scoring.objects import PodInfo, pod_from_json
from scoring.plugins.gang import place_group
from scoring.plugins.podgroups import POD_GROUP_LABEL, PodGroup, PodGroups
from scoring.table import NodeTable

__all__ = ["GPU", "NODE_GPUS", "MEMBER_GPUS", "cluster", "group", "bench_gang", "main"]

GPU: Final = "nvidia.com/gpu"
NODE_GPUS: Final = 8
MEMBER_GPUS: Final = 1
_CPU_PER_GPU: Final = 6
_GI_PER_GPU: Final = 48
"""Training pods and members ask 6 CPU and 48Gi per GPU: 8 GPUs' worth (48 CPU, 384Gi)
fits beside the system pods on the smallest node, so every free GPU is room for a member."""
_NODE_SHAPES: Final = ((64, "512Gi"), (96, "768Gi"))
_PRODUCTS: Final = ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB")
_ZONES: Final = ("zone-a", "zone-b", "zone-c", "zone-d")
_SYSTEM_PODS: Final = (("node-exporter", "100m", "128Mi"), ("nvidia-device-plugin", "50m", "64Mi"))
_TAINT: Final = {"key": GPU, "value": "present", "effect": "NoSchedule"}
_TOLERATION: Final = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
_NAMESPACE: Final = "bench"
_IMAGE: Final = "registry.example/trainer:v1"
_PROG: Final = "python -m benchmarks.decision --case gang"


def _pod(name: str, *, cpu: str, memory: str, gpus: int = 0, node: str | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": cpu, "memory": memory}
    resources: dict[str, Any] = {"requests": requests}
    if gpus:
        requests[GPU] = str(gpus)
        resources["limits"] = {GPU: str(gpus)}  # an extended resource's limit must equal its request
    meta: dict[str, Any] = {"name": name, "namespace": _NAMESPACE, "uid": f"uid-{name}"}
    if labels:
        meta["labels"] = labels
    spec: dict[str, Any] = {"schedulerName": "vecsched", "priority": 0, "tolerations": [_TOLERATION],
                            "containers": [{"name": "main", "image": _IMAGE, "resources": resources}]}
    status: dict[str, Any] = {"phase": "Pending"}
    if node is not None:
        spec["nodeName"] = node
        status = {"phase": "Running"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _gpu_pod(name: str, gpus: int, *, node: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return _pod(name, cpu=str(_CPU_PER_GPU * gpus), memory=f"{_GI_PER_GPU * gpus}Gi", gpus=gpus, node=node,
                labels=labels)


def cluster(*, nodes: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, running pods) as Kubernetes JSON, drawn from ``seed``.

    Each node has 0..8 of its GPUs in use (uniformly: half of them on average), split
    into training pods of 1, 2, 4 or 8 GPUs, plus its two system pods."""
    rng = np.random.default_rng(seed)
    raw_nodes: list[dict[str, Any]] = []
    running: list[dict[str, Any]] = []
    for i in range(nodes):
        name = f"gpu-{i:05d}"
        cpu, memory = _NODE_SHAPES[int(rng.integers(len(_NODE_SHAPES)))]
        raw_nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": _ZONES[i % len(_ZONES)],
                "nvidia.com/gpu.product": _PRODUCTS[int(rng.integers(len(_PRODUCTS)))],
                "nvidia.com/gpu.count": str(NODE_GPUS)}},
            "spec": {"taints": [_TAINT]},
            "status": {"allocatable": {"cpu": str(cpu), "memory": memory, "pods": "110",
                                       "ephemeral-storage": "1Ti", GPU: str(NODE_GPUS)}},
        })
        for pod, pod_cpu, pod_memory in _SYSTEM_PODS:
            running.append(_pod(f"{pod}-{name}", cpu=pod_cpu, memory=pod_memory, node=name))
        left = int(rng.integers(NODE_GPUS + 1))
        while left:
            gpus = int(rng.choice([g for g in (1, 2, 4, 8) if g <= left]))
            running.append(_gpu_pod(f"train-{len(running):06d}", gpus, node=name,
                                    labels={"app": f"job-{int(rng.integers(500))}"}))
            left -= gpus
    return raw_nodes, running


def group(size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The PodGroup ``gang-<size>`` (minMember = size) and its members, pending, by name."""
    name = f"gang-{size}"
    pg = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
          "metadata": {"name": name, "namespace": _NAMESPACE, "uid": f"uid-{name}",
                       "creationTimestamp": "2026-01-01T00:00:00Z"},
          "spec": {"minMember": size}}
    members = [_gpu_pod(f"{name}-worker-{i:04d}", MEMBER_GPUS, labels={POD_GROUP_LABEL: name, "app": name})
               for i in range(size)]
    return pg, members


# ---- Permit's waiting pods, as the scheduler would hold them ------------------------------------


@dataclass(slots=True, eq=False)
class _Waiting:
    """A member assumed on its node and held at Permit."""

    pod: PodInfo
    node: str
    state: CycleState
    room: _WaitingRoom
    plugins: set[str]
    """Plugins that asked it to wait and have not allowed it yet."""
    rejected: str = ""

    def allow(self, plugin: str) -> None:
        self.room.allow_calls += 1
        self.plugins.discard(plugin)
        if not self.plugins and not self.rejected:
            self.room.settled.append(self)

    def reject(self, plugin: str, message: str) -> None:
        if not self.rejected:
            self.rejected = f"{plugin}: {message}"
            self.room.settled.append(self)


@dataclass(slots=True)
class _WaitingRoom:
    """The profile's WaitingPods: who waits, who was allowed or rejected since the last
    ``settle`` (a verdict takes effect when the scheduler next runs, never inside the
    plugin's call), and the most that waited at once."""

    pods: dict[str, _Waiting] = field(default_factory=dict)
    settled: list[_Waiting] = field(default_factory=list)
    allow_calls: int = 0
    peak: int = 0

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(list(self.pods.values()))

    def get(self, key: str) -> WaitingPod | None:
        return self.pods.get(key)

    def wait(self, d: Decision, node: str, plugins: Sequence[str]) -> None:
        self.pods[d.pod.key] = _Waiting(d.pod, node, d.state, self, set(plugins))
        self.peak = max(self.peak, len(self.pods))

    def settle(self, profile: Profile, table: NodeTable) -> int:
        """Let the allowed go on to binding; unreserve and forget the rejected. Returns how
        many were rejected."""
        rejected = 0
        for w in self.settled:  # an Unreserve below may reject more: they are appended, and handled here too
            if self.pods.pop(w.pod.key, None) is None:
                continue
            if w.rejected:
                profile.run_unreserve(w.pod, table, w.node, w.state, self)
                table.remove_pod(w.pod.key)
                rejected += 1
        self.settled.clear()
        return rejected


def _permit(profile: Profile, d: Decision, node: str, table: NodeTable, room: _WaitingRoom) -> None:
    verdict, waits = profile.run_permit(d.pod, table, node, d.state, room)
    if verdict.status == PERMIT_WAIT:
        room.wait(d, node, list(waits))
    elif verdict.status == PERMIT_REJECT:
        profile.run_unreserve(d.pod, table, node, d.state, room)
        table.remove_pod(d.pod.key)


# ---- the two methods --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    seconds: float
    nodes: dict[str, str]
    """Member key -> node, for the members placed before the group completed or failed."""
    held: int
    """The most members assumed and waiting at Permit at once."""
    released_by: str | None = None
    """What let the held members go when the group failed: "PostFilter" or "Permit timeout"."""
    failure: float | None = None
    """Seconds from the cycle of the member that fitted nowhere to the last held member forgotten."""
    allowed: int = 0
    """Allow calls Permit plugins made on waiting members."""
    left_waiting: int = 0
    """Members still waiting at Permit at the end: never allowed nor rejected (none, when all is well)."""


def _vecsched(profile: Profile, pg: PodGroup, members: Sequence[PodInfo], table: NodeTable,
              room: _WaitingRoom) -> _Run:
    """``place_group``; when the plan fits, assume every planned member, then Permit each."""
    start = time.perf_counter()
    plan = place_group(profile, pg, members, table)
    if plan.fits:
        placed = plan.placed
        for d in placed:
            table.add_pod(d.assumed_pod(), d.node or "")
        for d in placed:
            _permit(profile, d, d.node or "", table, room)
        room.settle(profile, table)
    took = time.perf_counter() - start
    return _Run(took, {d.pod.key: d.node for d in plan.decisions if d.node is not None}, room.peak,
                allowed=room.allow_calls, left_waiting=len(room.pods))


def _one_by_one(profile: Profile, members: Sequence[PodInfo], table: NodeTable, room: _WaitingRoom) -> _Run:
    """scheduler-plugins' way: schedule, assume and Permit each member in turn. When one fits
    nowhere, its PostFilter plugins have run; the members they rejected are unreserved and
    forgotten -- and those they left waiting (a gap of at most podGroupRejectPercentage) are
    held until their Permit timeout, which is taken as expired at once."""
    nodes: dict[str, str] = {}
    released_by: str | None = None
    failed_at: float | None = None
    start = time.perf_counter()
    for pod in members:
        cycle = time.perf_counter()
        d = profile.schedule(pod, table)
        if d.node is None:
            failed_at = cycle
            released_by = "PostFilter" if room.settle(profile, table) else None
            if room.pods:
                for w in list(room.pods.values()):
                    w.reject("Coscheduling", "rejected due to timeout after waiting at Permit")
                room.settle(profile, table)
                released_by = "Permit timeout"
            break
        table.add_pod(d.assumed_pod(), d.node)
        nodes[pod.key] = d.node
        _permit(profile, d, d.node, table, room)
        room.settle(profile, table)
    end = time.perf_counter()
    return _Run(end - start, nodes, room.peak, released_by, None if failed_at is None else end - failed_at,
                room.allow_calls, len(room.pods))


# ---- the benchmark ------------------------------------------------------------------------------------


def _free_gpus(table: NodeTable) -> npt.NDArray[np.int64]:
    col = table.resource_index[GPU]
    return table.allocatable[: table.n, col] - table.requested[: table.n, col]


def _fillers(table: NodeTable, *, room: int, size: int, seed: int) -> list[PodInfo]:
    """Pods of other jobs that take every free GPU but ``room`` of them (the nodes kept
    free drawn from ``seed``): a tight cluster in which ``room`` members fit."""
    free = _free_gpus(table)
    fillers: list[PodInfo] = []
    kept = 0
    for row in np.random.default_rng(seed).permutation(table.n):
        gpus = int(free[row])
        keep = min(gpus, room - kept)
        kept += keep
        if gpus > keep:
            node = table.names[int(row)]
            fillers.append(pod_from_json(_pod(f"other-{size}-{node}", cpu="0", memory="0", gpus=gpus - keep,
                                              node=node)))
    return fillers


def _undo(table: NodeTable, groups: PodGroups, pg: PodGroup, members: Sequence[PodInfo]) -> None:
    """Forget the members and Coscheduling's memory of the group: the next repetition meets
    the cluster this one met."""
    for pod in members:
        table.remove_pod(pod.key)
    for memory in (groups.last_failure, groups.backoff_until, groups.permitted_until):
        memory.pop(pg.key, None)


def _bench_case(*, case: str, pg: PodGroup, members: Sequence[PodInfo], table: NodeTable, repeat: int,
                seed: int) -> dict[str, Any]:
    """Time both methods ``repeat`` times (after an untimed warm-up) on ``table`` as it is."""
    size = len(members)
    groups = PodGroups.of(table)
    before = (len(table.pods), table.requested[: table.n].copy())
    free = int(_free_gpus(table).sum())
    methods: dict[str, Callable[[Profile, _WaitingRoom], _Run]] = {
        "vecsched": lambda profile, room: _vecsched(profile, pg, members, table, room),
        "one_by_one": lambda profile, room: _one_by_one(profile, members, table, room),
    }
    runs: dict[str, list[_Run]] = {name: [] for name in methods}
    for i in range(repeat + 1):
        # Alternate which method goes first: neither always meets the caches the other left.
        for name in (("vecsched", "one_by_one") if i % 2 else ("one_by_one", "vecsched")):
            method = methods[name]
            # The same seed for every method and repetition: the same tie-breaking draws.
            profile = default_config().build(seed=seed)["vecsched"]
            room = _WaitingRoom()
            profile.waiting = room
            gc.collect()  # the last repetition's garbage, so that a collection does not land in this one
            run = method(profile, room)
            if run.left_waiting:
                raise SystemExit(f"benchmarks.gang_bench: {name} left {run.left_waiting} members waiting at Permit "
                                 f"({case}, size {size})")
            if i:  # the first repetition warms up (shape caches, node-derived arrays), untimed
                runs[name].append(run)
            _undo(table, groups, pg, members)
            if len(table.pods) != before[0] or not np.array_equal(table.requested[: table.n], before[1]):
                raise SystemExit(f"benchmarks.gang_bench: {name} left the table changed ({case}, size {size})")

    vec_runs, one_runs = runs["vecsched"], runs["one_by_one"]
    placed = vec_runs[0].nodes
    if case == "fits" and len(placed) != size:
        raise SystemExit(f"benchmarks.gang_bench: the group of {size} did not fit "
                         f"({len(placed)} placed, {free} GPUs free)")
    if case == "does_not_fit" and len(placed) >= size:
        raise SystemExit(f"benchmarks.gang_bench: the group of {size} fitted the tight cluster")
    vec_us = statistics.median(r.seconds for r in vec_runs) * 1e6
    one_us = statistics.median(r.seconds for r in one_runs) * 1e6
    held = max(r.held for r in one_runs)
    failures = [r.failure for r in one_runs if r.failure is not None]
    return {
        "size": size, "case": case, "free_gpus": free, "placed": len(placed),
        "vecsched_us_per_group": round(vec_us, 1), "vecsched_us_per_member": round(vec_us / size, 1),
        "one_by_one_us_per_group": round(one_us, 1), "one_by_one_us_per_member": round(one_us / size, 1),
        "ratio": round(one_us / vec_us, 2),
        "same_nodes": all(r.nodes == placed for r in (*vec_runs, *one_runs)),
        "held_members_vecsched": max(r.held for r in vec_runs),
        "held_members_one_by_one": held, "held_gpus_one_by_one": held * MEMBER_GPUS,
        "permit_allowed_one_by_one": max(r.allowed for r in one_runs),
        "released_by": one_runs[0].released_by,
        "one_by_one_failure_us": round(statistics.median(failures) * 1e6, 1) if failures else None,
    }


def bench_gang(*, nodes: int, sizes: Sequence[int], repeat: int, seed: int) -> dict[str, Any]:
    """Build the cluster, then for each size: the fits case on it, and the does-not-fit case
    on it with other jobs' pods filling all but room for half the group (removed after)."""
    raw_nodes, raw_running = cluster(nodes=nodes, seed=seed)
    table = table_of(raw_nodes, raw_running, capacity=nodes)
    groups = PodGroups.of(table)
    free = int(_free_gpus(table).sum())
    if max(sizes) * MEMBER_GPUS > free:
        raise ValueError(f"--sizes: a group of {max(sizes)} members needs {max(sizes) * MEMBER_GPUS} GPUs; "
                         f"the {nodes} nodes have {free} free")
    # Collect the setup's garbage and move what is left out of the collector's way: otherwise
    # a full collection over the objects just built lands inside a timed run or not, by chance.
    gc.collect()
    gc.freeze()
    results: list[dict[str, Any]] = []
    try:
        for size in sizes:
            raw_pg, raw_members = group(size)
            pg = groups.apply(raw_pg)
            members = [pod_from_json(m) for m in raw_members]
            for m in members:
                groups.observe(m)
            results.append(_bench_case(case="fits", pg=pg, members=members, table=table, repeat=repeat, seed=seed))
            fillers = _fillers(table, room=size // 2, size=size, seed=seed)
            for f in fillers:
                table.add_pod(f, f.node_name)
            results.append(_bench_case(case="does_not_fit", pg=pg, members=members, table=table, repeat=repeat,
                                       seed=seed))
            for f in fillers:
                table.remove_pod(f.key)
    finally:
        gc.unfreeze()
    return {"benchmark": "gang", "nodes": nodes, "running_pods": len(raw_running), "gpus": nodes * NODE_GPUS,
            "free_gpus": free, "repeat": repeat, "seed": seed, "results": results}


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog=_PROG, description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nodes", type=_positive_int, default=5000,
                    help=f"GPU nodes of {NODE_GPUS} {GPU}, 64-96 CPU, about half the GPUs in use (default 5000)")
    ap.add_argument("--sizes", type=_sizes, default=[8, 64, 512],
                    help="group sizes (minMember; one GPU a member), comma-separated (default 8,64,512)")
    ap.add_argument("--repeat", type=_positive_int, default=10,
                    help="timed repetitions of each method and case, after one warm-up; medians reported (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        r = bench_gang(nodes=a.nodes, sizes=a.sizes, repeat=a.repeat, seed=a.seed)
    except ValueError as e:
        ap.error(str(e))
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"gang: {r['nodes']} nodes of {NODE_GPUS} GPUs, {r['running_pods']} pods running, {r['free_gpus']} of "
          f"{r['gpus']} GPUs free; members of 1 GPU / {_CPU_PER_GPU} CPU / {_GI_PER_GPU}Gi; "
          f"median of {r['repeat']} runs")
    print(f"{'size':>5} {'case':<13} {'placed':>6} {'vecsched us':>12} {'us/member':>10} {'one-by-one us':>14} "
          f"{'us/member':>10} {'ratio':>7} {'same nodes':>10} {'held (1-by-1)':>14}")
    for x in r["results"]:
        held = f"{x['held_members_one_by_one']} pods/{x['held_gpus_one_by_one']} GPU"
        print(f"{x['size']:>5} {x['case']:<13} {x['placed']:>6} {x['vecsched_us_per_group']:>12} "
              f"{x['vecsched_us_per_member']:>10} {x['one_by_one_us_per_group']:>14} "
              f"{x['one_by_one_us_per_member']:>10} {x['ratio']:>6}x {str(x['same_nodes']).lower():>10} {held:>14}")
    for x in r["results"]:
        if x["one_by_one_failure_us"] is not None:
            released = f"released by {x['released_by']}" if x["released_by"] else "none was held"
            print(f"one by one, size {x['size']} does_not_fit: {x['one_by_one_failure_us']} us of it from the member "
                  f"that fitted nowhere (PostFilter: DefaultPreemption, Coscheduling) to the last held member "
                  f"forgotten ({released})")
    print("ratio: one-by-one's time over vecsched's; does_not_fit: other jobs hold every free GPU but room for "
          "half the group; held: members assumed and waiting at Permit at once")


if __name__ == "__main__":
    main()
