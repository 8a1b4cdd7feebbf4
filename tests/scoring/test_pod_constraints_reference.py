"""PodTopologySpread and InterPodAffinity against the per-node reference
(benchmarks/reference/pod_constraints.py) on random clusters: zones and hostnames
(some nodes missing a key, some tainted), pods in two namespaces with random labels
and random (anti-)affinity terms, random spread constraints, and random churn
(pods and a node removed after the counters exist) so that the incremental
counters are exercised. Feasibility, reasons and every normalised score must agree."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.reference import REFERENCE, ReferenceProfile, RefCluster, RefNode
from scoring.framework import Profile
from scoring.objects import PodInfo, node_from_json
from scoring.plugins import inter_pod_affinity as ipa
from scoring.plugins import pod_topology_spread as pts
from scoring.plugins.workloads import Namespaces, Workloads
from tests.scoring.pod_constraint_helpers import HOSTNAME, UNSCHEDULABLE_TAINT, node, pod, table_of

ZONE = "topology.kubernetes.io/zone"
KEYS = (ZONE, HOSTNAME, "rack")
NAMESPACES = {"ns1": {"team": "a"}, "ns2": {"team": "b"}}


def _selector(r: random.Random) -> Any:
    roll = r.random()
    if roll < 0.08:
        return None
    if roll < 0.15:
        return {}
    exprs = []
    for _ in range(r.randint(1, 2)):
        key = r.choice(["app", "tier"])
        op = r.choice(["In", "NotIn", "Exists", "DoesNotExist"])
        e: dict[str, Any] = {"key": key, "operator": op}
        if op in ("In", "NotIn"):
            e["values"] = r.sample(["a", "b", "c", "x", "y"], r.randint(1, 2))
        exprs.append(e)
    if r.random() < 0.5:
        return {"matchLabels": {"app": r.choice("abc")}, "matchExpressions": exprs}
    return {"matchExpressions": exprs}


def _term(r: random.Random) -> dict[str, Any]:
    t: dict[str, Any] = {"topologyKey": r.choice(KEYS), "labelSelector": _selector(r) or {"matchLabels": {"app": "a"}}}
    roll = r.random()
    if roll < 0.2:
        t["namespaces"] = r.sample(["ns1", "ns2"], r.randint(1, 2))
    elif roll < 0.35:
        t["namespaceSelector"] = r.choice([{}, {"matchLabels": {"team": r.choice("ab")}}])
    if r.random() < 0.15:
        t["matchLabelKeys"] = ["tier"]
    return t


def _affinity(r: random.Random, *, p: float) -> dict[str, Any] | None:
    if r.random() > p:
        return None
    out: dict[str, Any] = {}
    for kind in ("podAffinity", "podAntiAffinity"):
        section: dict[str, Any] = {}
        if r.random() < 0.5:
            section["requiredDuringSchedulingIgnoredDuringExecution"] = [_term(r) for _ in range(r.randint(1, 2))]
        if r.random() < 0.5:
            section["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {"weight": r.randint(1, 100), "podAffinityTerm": _term(r)} for _ in range(r.randint(1, 2))]
        if section:
            out[kind] = section
    return out or None


def _labels(r: random.Random) -> dict[str, str]:
    out = {}
    if r.random() < 0.9:
        out["app"] = r.choice("abc")
    if r.random() < 0.6:
        out["tier"] = r.choice("xy")
    return out


def _constraints(r: random.Random) -> list[dict[str, Any]]:
    out = []
    keys = r.sample(KEYS, r.randint(0, 2))
    for key in keys:
        c: dict[str, Any] = {"maxSkew": r.randint(1, 3), "topologyKey": key,
                             "whenUnsatisfiable": r.choice(["DoNotSchedule", "ScheduleAnyway"])}
        sel = _selector(r)
        if sel is not None:
            c["labelSelector"] = sel
        if r.random() < 0.25:
            c["minDomains"] = r.randint(1, 4)
        if r.random() < 0.3:
            c["nodeAffinityPolicy"] = r.choice(["Honor", "Ignore"])
        if r.random() < 0.3:
            c["nodeTaintsPolicy"] = r.choice(["Honor", "Ignore"])
        if r.random() < 0.2:
            c["matchLabelKeys"] = ["tier"]
        out.append(c)
    return out


def _cluster(seed: int, *, pod_affinity: float) -> tuple[Any, PodInfo, list[Any]]:
    r = random.Random(seed)
    nodes = []
    for i in range(r.randint(1, 12)):
        labels = {}
        if r.random() < 0.9:
            labels[HOSTNAME] = f"n{i}"
        if r.random() < 0.85:
            labels[ZONE] = f"z{r.randint(0, 2)}"
        if r.random() < 0.5:
            labels["rack"] = f"r{r.randint(0, 1)}"
        taints = [UNSCHEDULABLE_TAINT] if r.random() < 0.15 else []
        nodes.append(node(f"n{i}", labels, taints))
    existing = []
    for j in range(r.randint(0, 30)):
        existing.append(pod(f"e{j}", _labels(r), ns=r.choice(["ns1", "ns2"]), node_name=f"n{r.randrange(len(nodes))}",
                            affinity=_affinity(r, p=pod_affinity), terminating=r.random() < 0.05))
    node_selector = {ZONE: "z0"} if r.random() < 0.15 else None
    incoming = pod("incoming", _labels(r), ns=r.choice(["ns1", "ns2"]), spread=_constraints(r),
                   affinity=_affinity(r, p=0.6), node_selector=node_selector)
    return nodes, incoming, existing


def _compare(seed: int, args_pts: dict[str, Any], args_ipa: dict[str, Any], *, pod_affinity: float) -> None:
    nodes, incoming, existing = _cluster(seed, pod_affinity=pod_affinity)
    r = random.Random(seed + 1)
    table = table_of(nodes, existing)
    for ns, labels in NAMESPACES.items():
        Namespaces.of(table).set(ns, labels)
    Workloads.of(table).apply({"kind": "Service", "metadata": {"name": "s", "namespace": "ns1"}, "spec": {"selector": {"app": "a"}}})
    p_pts, p_ipa = pts.new(args_pts, "a"), ipa.new(args_ipa, "a")
    profile = Profile(name="t", prefilters=[p_pts, p_ipa], filters=[p_pts, p_ipa], scorers=[(p_pts, 2), (p_ipa, 2)])
    profile.schedule(incoming, table)  # creates the counters; the churn below must keep them right
    for placed in list(table.pods.values()):
        if r.random() < 0.2:
            table.remove_pod(placed.pod.key)
    if table.n > 1 and r.random() < 0.3:
        table.remove_node(table.names[r.randrange(table.n)])
    decision = profile.schedule(incoming, table)

    cluster = RefCluster([RefNode(node_from_json(info.raw)) for info in table.infos])
    for placed in table.pods.values():
        cluster.add_pod(placed.pod, placed.node)
    cluster.namespaces = NAMESPACES  # type: ignore[attr-defined]
    cluster.workloads = Workloads.of(table)  # type: ignore[attr-defined]
    ref_pts, ref_ipa = REFERENCE[pts.NAME](args_pts), REFERENCE[ipa.NAME](args_ipa)
    ref = ReferenceProfile(filters=[ref_pts, ref_ipa], scorers=[(ref_pts, 2), (ref_ipa, 2)]).schedule(incoming, cluster)

    for row, name in enumerate(table.names):
        assert decision.reasons_of(row) == ref.reasons.get(name, []), (name, seed)
    assert decision.message == ref.message
    scored = {table.names[int(row)]: i for i, row in enumerate(decision.scored)}
    assert set(scored) == set(ref.totals)
    for plugin in (pts.NAME, ipa.NAME):
        got = {n: int(decision.scores[plugin][i]) for n, i in scored.items()}
        assert got == ref.scores.get(plugin, got), (plugin, seed)
    assert {n: int(decision.totals[i]) for n, i in scored.items()} == ref.totals


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31))
def test_default_args_match_reference(seed: int) -> None:
    _compare(seed, {}, {}, pod_affinity=0.3)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(0, 100), st.booleans())
def test_other_args_match_reference(seed: int, hard_weight: int, ignore: bool) -> None:
    _compare(seed, {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 2, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"},
        {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway"}]},
        {"hardPodAffinityWeight": hard_weight, "ignorePreferredTermsOfExistingPods": ignore}, pod_affinity=0.6)

