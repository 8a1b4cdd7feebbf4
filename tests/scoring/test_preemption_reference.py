"""DefaultPreemption against the per-node reference (benchmarks/reference/preemption.py)
on random small clusters.

Each case: 2-6 nodes (cpu, memory, a pod limit, some tainted or unschedulable),
placed pods of random priorities and start times (some without), some with host
ports or required anti-affinity, PodDisruptionBudgets with random
``disruptionsAllowed`` and ``disruptedPods``, sometimes pods nominated to nodes, and a
preemptor that fits nowhere, sometimes with a host port, a toleration, required
(anti-)affinity or a hard topology spread constraint -- the last ones make the dry run
take the table path (GLOBAL) rather than the array one (COLUMNS).

For every case the plugin's answer through ``Profile.schedule`` -- the chosen node,
every candidate's victims in order and its PDB violations -- must equal the reference's,
over every node (``all_candidates``) and from a random offset with random
minCandidateNodes args; it must stay the same when the dry run is forced down the
node-local and the global table paths; and the table must be as it was.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from benchmarks.reference.preemption import preempt_per_node
from scheduler.config import default_config
from scoring.plugins import preemption
from scoring.framework import Profile
from scoring.nominations import Nominations
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.plugins.default_preemption import DefaultPreemption, DefaultPreemptionArgs, Preemption
from scoring.plugins.budgets import Budgets
from scoring.plugins.victims import PlacedPods
from scoring.table import NodeTable

SEEDS = range(200)
START = 1_700_000_000  # start times fall in the 6 seconds after this
APPS = ("a", "b", "c")
KEYS = ("kubernetes.io/hostname", "zone")

Answer = tuple[str | None, dict[str, tuple[list[str], int]]]


def _ts(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + seconds))


def _anti_affinity(rng: random.Random) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": rng.choice(APPS)}}, "topologyKey": rng.choice(KEYS)}]}}


def _cluster(rng: random.Random) -> NodeTable:
    t = NodeTable()
    names = [f"n{i}" for i in range(rng.randint(2, 6))]
    for i, name in enumerate(names):
        spec: dict[str, Any] = {}
        if rng.random() < 0.15:
            spec["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
        if rng.random() < 0.05:
            spec["unschedulable"] = True
        t.set_node(node_from_json({"kind": "Node", "metadata": {"name": name, "labels": {KEYS[0]: name, "zone": f"z{i % 2}"}},
                                   "spec": spec, "status": {"allocatable": {
                                       "cpu": f"{rng.choice([2000, 3000])}m", "memory": str(rng.choice([1000, 2000, 4000])),
                                       "pods": str(rng.randint(3, 7))}}}))
    k = 0
    for name in names:
        for _ in range(rng.randint(1, 6)):
            k += 1
            container: dict[str, Any] = {"name": "c", "resources": {"requests": {
                "cpu": f"{rng.choice([100, 200, 300, 500, 800])}m", "memory": str(rng.choice([100, 200, 500, 800]))}}}
            if rng.random() < 0.2:
                container["ports"] = [{"containerPort": 80, "hostPort": rng.choice([8080, 9090])}]
            spec = {"nodeName": name, "priority": rng.choice([-10, 0, 0, 10, 100, 1000]), "containers": [container]}
            if rng.random() < 0.05:
                spec["affinity"] = _anti_affinity(rng)
            status: dict[str, Any] = {"phase": "Running"}
            if rng.random() < 0.8:
                status["startTime"] = _ts(rng.randint(0, 5))
            labels = {"app": rng.choice(APPS)} if rng.random() < 0.8 else {}
            t.add_pod(pod_from_json({"kind": "Pod", "metadata": {"name": f"p{k}", "namespace": "default", "labels": labels},
                                     "spec": spec, "status": status}), name)
    if rng.random() < 0.5:
        budgets = Budgets.of(t)
        for j in range(rng.randint(1, 2)):
            disrupted = {f"p{rng.randint(1, k)}": _ts(0)} if rng.random() < 0.3 else {}
            budgets.apply({"metadata": {"name": f"pdb{j}", "namespace": "default"},
                           "spec": {"selector": {"matchLabels": {"app": rng.choice(APPS)}}},
                           "status": {"disruptionsAllowed": rng.randint(0, 2), "disruptedPods": disrupted}})
    if rng.random() < 0.3:
        nominations = Nominations.of(t)
        for j in range(rng.randint(1, 2)):
            container = {"name": "c", "resources": {"requests": {"cpu": f"{rng.choice([100, 500])}m", "memory": "100"}}}
            if rng.random() < 0.3:
                container["ports"] = [{"containerPort": 80, "hostPort": rng.choice([8080, 9090, 7070])}]
            nominations.set(pod_from_json({"kind": "Pod", "metadata": {"name": f"nom{j}", "namespace": "default",
                                                                        "labels": {"app": rng.choice(APPS)}},
                                           "spec": {"priority": rng.choice([0, 100, 1000, 5000]), "containers": [container]},
                                           "status": {"phase": "Pending"}}), rng.choice(names))
    return t


def _preemptor(rng: random.Random) -> PodInfo:
    container: dict[str, Any] = {"name": "c", "resources": {"requests": {
        "cpu": f"{rng.choice([1000, 1500, 2000])}m", "memory": str(rng.choice([100, 500, 1500]))}}}
    if rng.random() < 0.25:
        container["ports"] = [{"containerPort": 80, "hostPort": rng.choice([8080, 9090])}]
    spec: dict[str, Any] = {"priority": rng.choice([0, 100, 1000, 1000, 5000]), "containers": [container]}
    if rng.random() < 0.2:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    r = rng.random()
    if r < 0.2:
        spec["affinity"] = _anti_affinity(rng)
    elif r < 0.35:
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": rng.choice(KEYS), "whenUnsatisfiable": "DoNotSchedule",
                                              "labelSelector": {"matchLabels": {"app": "a"}}}]
    elif r < 0.42:
        spec["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": rng.choice(APPS)}}, "topologyKey": "zone"}]}}
    return pod_from_json({"kind": "Pod", "metadata": {"name": "preemptor", "namespace": "default",
                                                      "labels": {"app": rng.choice(APPS)}},
                          "spec": spec, "status": {"phase": "Pending"}})


def _case(seed: int, prof: Profile) -> tuple[NodeTable, PodInfo]:
    """A cluster and a preemptor that fits on none of its nodes (drawn again until so)."""
    rng = random.Random(seed)
    table = _cluster(rng)
    for _ in range(20):
        pod = _preemptor(rng)
        if not prof.run_filters(pod, table, {})[0].any():
            break
    return table, pod


def _answer(prof: Profile, pod: PodInfo, table: NodeTable, *, all_candidates: bool) -> Answer:
    d = prof.schedule(pod, table, all_candidates=all_candidates)
    assert d.node is None and d.post_filter is not None
    plan = d.post_filter.detail
    assert isinstance(plan, Preemption)
    return plan.node, {c.node: ([p.key for p in c.victims], c.pdb_violations) for c in plan.candidate_list()}


def _state(table: NodeTable) -> tuple[Any, ...]:
    """What a dry run must leave as it was: requests, pods and their nodes, used ports
    (columns for ports first seen during the decision are zero and do not count)."""
    ports = table.port_counts[: table.n]
    used = ports[:, np.flatnonzero(ports.any(axis=0))] if ports.size else ports
    return (table.requested[: table.n].tolist(), sorted((k, p.node) for k, p in table.pods.items()), used.tolist())


def _potential(prof: Profile, pod: PodInfo, table: NodeTable) -> int:
    _, reasons = prof.run_filters(pod, table, {})
    rejected = np.zeros(table.n, np.bool_)
    unresolvable = np.zeros(table.n, np.bool_)
    for r in reasons:
        rejected |= r.nodes
        if r.unresolvable:
            unresolvable |= r.nodes
    return int(np.count_nonzero(rejected & ~unresolvable))


def _forced(floor: int) -> Callable[..., int]:
    real = preemption.dry_run_mode

    def mode(*args: Any) -> int:
        return max(real(*args), floor)
    return mode


@pytest.mark.parametrize("seed", SEEDS)
def test_plugin_matches_the_per_node_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    prof = default_config().profiles[0].build()
    plugin = prof.postfilters[0]
    assert isinstance(plugin, DefaultPreemption)
    table, pod = _case(seed, prof)
    if prof.run_filters(pod, table, {})[0].any():
        assert prof.schedule(pod, table).post_filter is None  # fits: preemption does not run
        return
    before = _state(table)

    # Every node, as `vecsched explain` asks.
    got = _answer(prof, pod, table, all_candidates=True)
    assert got == preempt_per_node(prof, pod, table, now=time.time())

    # Upstream's search from an offset, for numCandidates.
    rng = random.Random(~seed)
    pct, absolute = rng.choice([(0, 1), (10, 0), (10, 1), (40, 1), (40, 2), (100, 3), (10, 100)])
    plugin.args = DefaultPreemptionArgs(pct, absolute)
    start = rng.randrange(8)
    setattr(plugin, "offset", lambda n: start % n)  # upstream's tests fix getOffsetRand
    sampled = _answer(prof, pod, table, all_candidates=False)
    potential = _potential(prof, pod, table)
    assert sampled == preempt_per_node(prof, pod, table, offset=start % max(potential, 1),
                                       num_candidates=plugin.args.num_candidates(potential), now=time.time())

    # The same answers down the table paths.
    for floor in (preemption.NODE_LOCAL, preemption.GLOBAL):
        monkeypatch.setattr(preemption, "dry_run_mode", _forced(floor))
        assert _answer(prof, pod, table, all_candidates=True) == got, f"dry run mode >= {floor}"
        assert _answer(prof, pod, table, all_candidates=False) == sampled, f"dry run mode >= {floor}"
        monkeypatch.undo()

    assert _state(table) == before
    placed = PlacedPods.of(table)
    assert sorted(placed.infos[i].key for i in range(placed.count)) == sorted(table.pods)



def test_random_cases_reach_every_path() -> None:
    """The cases above must exercise what they are meant to: both dry-run paths, cases
    with and without candidates, PDB violations and nominated pods."""
    counts: dict[str, int] = {}

    def count(key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    for seed in SEEDS:
        prof = default_config().profiles[0].build()
        table, pod = _case(seed, prof)
        if prof.run_filters(pod, table, {})[0].any():
            count("fits")
            continue
        count(f"mode {max(preemption.dry_run_mode(p, pod, table, {}) for p in prof.filters)}")
        _, found = _answer(prof, pod, table, all_candidates=True)
        count("candidates" if found else "no candidate")
        if any(v for _, v in found.values()):
            count("pdb violations")
        if Nominations.KEY in table.extensions:
            count("nominated")
    assert counts.get("fits", 0) <= 20, counts
    assert counts.get("candidates", 0) >= 80, counts
    assert counts.get("no candidate", 0) >= 20, counts
    assert counts.get(f"mode {preemption.COLUMNS}", 0) >= 40, counts
    assert counts.get(f"mode {preemption.GLOBAL}", 0) >= 40, counts
    assert counts.get("pdb violations", 0) >= 10, counts
    assert counts.get("nominated", 0) >= 30, counts
