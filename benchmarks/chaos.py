"""Chaos soak: the live scheduler under a misbehaving control plane, with invariants checked throughout.

``python -m benchmarks.chaos [--minutes N] [--seed S] [--json]`` starts
``vecsched apiserver`` with faults on (500s, 429s, latency, dropped watch
streams, compactions) and its state in a temporary directory, installs the
PodGroup CRD, and starts two ``vecsched run`` replicas with leader election.
Then, for N minutes, it churns a workload (``chaos_workload``), SIGKILLs the
leader now and then (restarting it) and restarts the API server from its
state file (SIGTERM, which saves; then again on the same port), while it
lists pods, nodes, events and PodGroups about once a second and checks every
snapshot against the invariants of ``chaos_invariants``.

It prints the faults injected by kind, the leader kills, the API server
restarts, the pods scheduled, the gangs placed, the preemptions and every
violation with its evidence, and exits 1 when there was any violation (2 for
bad flags, 1 with one line when the soak itself cannot run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from benchmarks.chaos_cluster import (LEASE_NAME, LEASE_NAMESPACE, Api, ApiServerProcess, ChaosError,
                                      SchedulerReplica, scheduler_config)
from benchmarks.chaos_invariants import Invariants, Violation
from benchmarks.chaos_workload import NAMESPACE, NODE_CPU, NODE_MEMORY, NODE_PODS, NODES, Churn, podgroup_crd

__all__ = ["main", "run_soak", "SoakResult", "FAULTS", "LEASE_SECONDS", "disruption_times"]

FAULTS: Final = "errors=0.02,throttle=0.02,latency=10ms,watch-drop=30s,compact=60s"
"""2% each of 500s and 429s (a struggling but working control plane), 10 ms on every request, every watch
stream ended every 30 s (about what a load balancer's idle timeout does), history compacted every minute
(etcd's default compaction interval is five; faster, so that short runs see 410s)."""
LEASE_SECONDS: Final = 4.0
"""The replicas' lease: a killed leader is replaced within about 4 s (upstream's 15 s would make each
kill a long pause in a short soak)."""
SNAPSHOT_SECONDS: Final = 1.0
"""How often the cluster is listed and checked: the workload's shortest-lived states (a nominated
preemptor, a terminating victim) last a few seconds."""
STEP_SECONDS: Final = 1.0
"""How often the workload changes (one action a step)."""
_FIRST_DISRUPTION: Final = 15.0
"""Seconds before the first leader kill: long enough for the first leader to be elected and busy."""


@dataclass
class SoakResult:
    minutes: float
    seed: int
    faults: dict[str, int]
    leader_kills: int = 0
    apiserver_restarts: int = 0
    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    workload: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"minutes": self.minutes, "seed": self.seed, "faults": self.faults, "leader_kills": self.leader_kills,
                "apiserver_restarts": self.apiserver_restarts, **self.counts, "workload": self.workload,
                "violations": [{"kind": v.kind, "at": round(v.at, 1), "evidence": v.evidence} for v in self.violations]}

    def text(self) -> str:
        lines = [f"chaos soak: {self.minutes:g} min, seed {self.seed}",
                 "faults injected: " + ", ".join(f"{k} {n}" for k, n in self.faults.items()),
                 f"leader kills: {self.leader_kills}, API server restarts: {self.apiserver_restarts}",
                 ", ".join(f"{k.replace('_', ' ')}: {n}" for k, n in self.counts.items()),
                 "workload actions: " + ", ".join(f"{k} {n}" for k, n in sorted(self.workload.items())),
                 f"violations: {len(self.violations)}"]
        lines += ["  " + v.line() for v in self.violations]
        return "\n".join(lines)


def disruption_times(*, seconds: float, rng: random.Random) -> list[tuple[float, str]]:
    """When to kill the leader and when to restart the API server, alternating, the first kill at 15 s
    and each next one 25-65 s later (at most 35% of the run apart, so a one-minute run gets one of each),
    none in the last 5 s."""
    out: list[tuple[float, str]] = []
    t, kind = _FIRST_DISRUPTION, "leader-kill"
    while t < seconds - 5:
        out.append((t, kind))
        kind = "apiserver-restart" if kind == "leader-kill" else "leader-kill"
        t += min(rng.uniform(25, 65), seconds * 0.35)
    return out


class _Soak:
    def __init__(self, *, workdir: Path, minutes: float, seed: int, faults: str) -> None:
        self.workdir = workdir
        self.seconds = minutes * 60
        self.rng = random.Random(seed)
        self.result = SoakResult(minutes=minutes, seed=seed, faults={})
        self.server = ApiServerProcess(workdir=workdir, args=[
            "--nodes", str(NODES), "--node-cpu", NODE_CPU, "--node-memory", NODE_MEMORY, "--node-pods", str(NODE_PODS),
            # Deleted pods stop within 2 s (victims leave quickly); a Job replaces a failed pod at once.
            "--kubelet-delay", "0.05", "--kubelet-max-grace", "2", "--faults", f"{faults},seed={seed}"])
        self.config = workdir / "scheduler.yaml"
        self.replicas: list[SchedulerReplica] = []
        self.invariants = Invariants()
        self.started = 0.0
        self.serial = 0
        self.retries = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self) -> SoakResult:
        self.config.write_text(scheduler_config(lease_seconds=LEASE_SECONDS))
        await self.server.start()
        try:
            async with Api(url=self.server.url) as api:
                status, body = await api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                              body=podgroup_crd())
                if status not in (201, 409):
                    raise ChaosError(f"installing the PodGroup CRD: HTTP {status}: {str(body)[:200]}")
                churn = Churn(api=api, rng=self.rng)
                await churn.setup()
                for _ in range(2):
                    await self._new_replica()
                self.started = time.monotonic()
                tasks = [asyncio.create_task(self._check(api), name="invariants"),
                         asyncio.create_task(self._watch_pods(api), name="pod watch"),
                         asyncio.create_task(self._churn(churn), name="workload")]
                clock = asyncio.create_task(self._disrupt(api), name="disruptions")
                try:
                    # The clock ends the run; a helper that fails (the API server stayed away) ends it early.
                    await asyncio.wait([clock, *tasks], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for t in (clock, *tasks):
                        t.cancel()
                    outcomes = await asyncio.gather(clock, *tasks, return_exceptions=True)
                for outcome in outcomes:
                    if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                await self._snapshot(api)
                self.invariants.finish(now=self.now())
                self.result.workload = dict(churn.actions)
                self.retries = api.retries
        finally:
            for r in self.replicas:
                await r.stop()
            await self.server.stop()
        inv = self.invariants
        self.result.faults = {k: self.server.faults[k] for k in ("errors", "throttle", "latency", "watch-drop", "compact")}
        self.result.violations = list(inv.violations)
        verdicts = Counter(g.verdict or ("never placed" if g.first_bound is None else "unsettled")
                           for g in inv.gangs.values())
        self.result.counts = {"pods_scheduled": inv.scheduled, "gangs": len(inv.gangs),
                              "gangs_placed": verdicts["placed"], "gangs_partial": verdicts["violation"],
                              "gangs_never_placed": verdicts["never placed"],
                              "gangs_deleted_before_settled": verdicts["unchecked"] + verdicts["unsettled"],
                              "preemptions": inv.preemptions,
                              "preemptors_deleted_before_placed": inv.preemptors_deleted_unplaced,
                              "snapshots": inv.snapshots,
                              "soak_request_retries": self.retries}
        return self.result

    async def _new_replica(self) -> None:
        self.serial += 1
        r = SchedulerReplica(workdir=self.workdir, name=f"scheduler-{self.serial}", config=self.config,
                             kubeconfig=self.server.kubeconfig)
        await r.start()
        self.replicas.append(r)

    async def _disrupt(self, api: Api) -> None:
        """The run's clock: leader kills and API server restarts at ``disruption_times``, then the end."""
        for at, kind in disruption_times(seconds=self.seconds, rng=self.rng):
            await asyncio.sleep(max(0.0, at - self.now()))
            if kind == "leader-kill":
                await self._kill_leader(api)
            else:
                await self._restart_apiserver()
        await asyncio.sleep(max(0.0, self.seconds - self.now()))

    async def _kill_leader(self, api: Api) -> None:
        """SIGKILL the replica holding the Lease and start a fresh one in its place (retried for 20 s while
        no live replica holds it, e.g. just after a failover)."""
        give_up = self.now() + 20
        while self.now() < give_up:
            status, lease = await api.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}"
                                                  f"/leases/{LEASE_NAME}")
            holder = (lease.get("spec") or {}).get("holderIdentity", "") if status == 200 else ""
            leader = next((r for r in self.replicas if r.alive and holder and r.identity() == holder), None)
            if leader is not None:
                await leader.kill()
                self.replicas.remove(leader)
                self.result.leader_kills += 1
                await asyncio.sleep(1.0)
                await self._new_replica()
                return
            await asyncio.sleep(1.0)

    async def _restart_apiserver(self) -> None:
        await self.server.stop()
        await self.server.start()
        self.result.apiserver_restarts += 1
        self.invariants.reset_pending()  # the scheduler relists: time without a server is not its delay

    async def _churn(self, churn: Churn) -> None:
        while True:
            await churn.step(self.now())
            await asyncio.sleep(STEP_SECONDS)

    async def _check(self, api: Api) -> None:
        """Check a snapshot about every second; a progress line, and each new violation, on stderr."""
        reported, next_progress = 0, 60.0
        while True:
            await self._snapshot(api)
            inv = self.invariants
            for v in inv.violations[reported:]:
                print(f"violation {v.line()}", file=sys.stderr, flush=True)
            reported = len(inv.violations)
            if self.now() >= next_progress:
                next_progress += 60
                print(f"[{self.now():6.0f}s] pods scheduled {inv.scheduled}, preemptions {inv.preemptions}, "
                      f"leader kills {self.result.leader_kills}, API server restarts {self.result.apiserver_restarts}, "
                      f"violations {reported}", file=sys.stderr, flush=True)
            await asyncio.sleep(SNAPSHOT_SECONDS)

    async def _watch_pods(self, api: Api) -> None:
        """Feed every pod version to the invariants: list, then watch from the list's resourceVersion,
        resuming from the last one seen when a stream ends and listing again after a 410 Expired."""
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        rv = ""
        while True:
            if not rv:
                pods, rv = await api.list_rv(path)
                for pod in pods:
                    self.invariants.record(now=self.now(), pod=pod)
            async for ev in api.watch(path, params={"resourceVersion": rv, "allowWatchBookmarks": "true",
                                                    "timeoutSeconds": "300"}):
                obj = ev.get("object") or {}
                if ev.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        rv = ""
                    break
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    self.invariants.record(now=self.now(), pod=obj, deleted=ev.get("type") == "DELETED")
            await asyncio.sleep(0.2)

    async def _snapshot(self, api: Api) -> None:
        generation = self.server.generation
        pods = await api.items(f"/api/v1/namespaces/{NAMESPACE}/pods")
        nodes = await api.items("/api/v1/nodes")
        events = await api.items(f"/api/v1/namespaces/{NAMESPACE}/events",
                                 params={"fieldSelector": "reason=Preempted"})
        if self.invariants.snapshots % 5 == 0:  # the long list of Scheduled events every fifth look
            events += await api.items(f"/api/v1/namespaces/{NAMESPACE}/events",
                                      params={"fieldSelector": "reason=Scheduled"})
        groups = await api.items(f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{NAMESPACE}/podgroups")
        if generation != self.server.generation:
            self.invariants.reset_pending()
        self.invariants.observe(now=self.now(), pods=pods, nodes=nodes, events=events, podgroups=groups)


def run_soak(*, minutes: float, seed: int, faults: str = FAULTS, workdir: Path | None = None) -> SoakResult:
    """Run the soak for ``minutes`` (in ``workdir``, else a temporary directory removed afterwards)."""
    if workdir is not None:
        return asyncio.run(_Soak(workdir=workdir, minutes=minutes, seed=seed, faults=faults).run())
    with tempfile.TemporaryDirectory(prefix="vecsched-chaos-") as tmp:
        return asyncio.run(_Soak(workdir=Path(tmp), minutes=minutes, seed=seed, faults=faults).run())


def _minutes(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.25 <= v <= 24 * 60:  # a quarter of a minute leaves room for one disruption; a day is plenty
        raise argparse.ArgumentTypeError(f"expected a number of minutes from 0.25 to 1440, got {text[:32]!r}")
    return v


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=_minutes, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the workload, the disruptions and the faults")
    parser.add_argument("--faults", default=FAULTS, help=f"the API server's --faults (default {FAULTS})")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the processes' logs and the state file here (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        from scheduler.apiserver.faults import parse_spec

        parse_spec(f"{args.faults},seed={args.seed}")
    except ValueError as e:
        print(f"python -m benchmarks.chaos: {e}", file=sys.stderr)
        return 2
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run_soak(minutes=args.minutes, seed=args.seed, faults=args.faults, workdir=args.workdir)
    except (ChaosError, OSError) as e:
        print(f"python -m benchmarks.chaos: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_json(), indent=2) if args.json else result.text())
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
