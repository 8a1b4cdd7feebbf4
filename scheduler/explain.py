"""``vecsched explain``: one placement decision, shown in full, without a cluster.

Given a snapshot of nodes and pods and one pending Pod, run the profile that
would schedule it and report, for every node, whether it is feasible (and
why not), each score plugin's normalised score, and the weighted total.
When no node fits and the profile preempts (DefaultPreemption), it reports the
plan too: the node the pod would be nominated to, the pods evicted for it, and
every node where preemption would let it fit, each with its fewest victims.
When the pod belongs to a PodGroup and the profile has Coscheduling, it also
reports whether the whole group fits at once and where each pending member
would go; a pod whose group does not fit, or whose PodGroup is missing, gets no
node, as the live scheduler binds none of it.
With ``--node-metrics``, the load plugins read the nodes' measured load from a
WatcherMetrics file, as the live scheduler reads it from Prometheus; the
decision is the one the scheduler would make when the sample was taken (it is
fresh, whatever its age now), and the snapshot's pods count as placed since it
only where their ``PodScheduled`` condition says so.
The JSON shape is a contract (docs/contracts.md); the table is for people.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from scheduler.config import ConfigError, SchedulerConfig, load_config
from scheduler.snapshot import SnapshotError, load_pod, load_snapshot
from scoring.framework import NO_WAITING_PODS, PERMIT_REJECT, Decision, Profile, fit_error_message
from scoring.objects import PodInfo
from scoring.plugins.coscheduling import NAME as COSCHEDULING
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION, Preemption
from scoring.plugins.gang import GroupPlan, pending_members, place_group
from scoring.load import LoadMetricsError, read_watcher_metrics
from scoring.plugins.node_load import LoadMetrics
from scoring.plugins.podgroups import PodGroups, group_of
from scoring.table import NodeTable

__all__ = ["configure", "run", "explain", "explain_group", "permit_rejection", "decision_json", "preemption_json",
           "gang_json", "render_table", "pick_profile"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", required=True,
                        help="a List of Nodes and Pods, and optionally PodDisruptionBudgets, PriorityClasses and "
                             "PodGroups (kubectl get nodes,pods,pdb,priorityclasses,podgroups -A -o json)")
    parser.add_argument("--pod", required=True, help="the Pod manifest to place")
    parser.add_argument("--config", help="a KubeSchedulerConfiguration file (default: vecsched's default profile)")
    parser.add_argument("--profile", help="the profile (schedulerName) to use instead of the pod's")
    parser.add_argument("--output", "-o", choices=("json", "table"), default="table")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random tie-break (default 0)")
    parser.add_argument("--node-metrics", metavar="FILE",
                        help="the nodes' measured load, as load-watcher's WatcherMetrics JSON, for the load plugins "
                             "(TargetLoadPacking, LoadVariationRiskBalancing, LoadAware)")


def pick_profile(config: SchedulerConfig, pod: PodInfo, override: str | None) -> str:
    """--profile, else the profile named by the pod's schedulerName, else the only profile."""
    names = [p.scheduler_name for p in config.profiles]
    if override:
        if override not in names:
            raise ConfigError("--profile", f"no profile {override!r} (have: {', '.join(names)})")
        return override
    if pod.scheduler_name in names:
        return pod.scheduler_name
    if len(names) == 1:
        return names[0]
    raise ConfigError("--profile", f"pod {pod.key} asks for schedulerName {pod.scheduler_name!r}, which no profile has "
                      f"(have: {', '.join(names)}); choose one with --profile")


def explain(*, table: NodeTable, pod: PodInfo, profile: Profile) -> Decision:
    """The profile's decision for ``pod``; when nothing fits, preemption looks at every
    node (not upstream's sample), so that the plan lists every candidate."""
    return profile.schedule(pod, table, all_candidates=True)


def _has_coscheduling(profile: Profile) -> bool:
    return (any(p.name == COSCHEDULING for p in profile.prefilters)
            or any(p.name == COSCHEDULING for p in profile.permits))


def explain_group(*, table: NodeTable, pod: PodInfo, profile: Profile,
                  candidates: Sequence[PodInfo]) -> tuple[GroupPlan, list[PodInfo]] | None:
    """Coscheduling's question for ``pod``'s PodGroup: do its pending members fit at once?
    ``pod`` is tried first, then the group's other pods among ``candidates`` (the pending
    ones), by key; every node is looked at. The plan and the members tried, or None when
    the pod names no group, the table has no such PodGroup, or the profile has no
    Coscheduling. The table is left as it was."""
    key = group_of(pod)
    group = PodGroups.of(table).group(key) if key else None
    if group is None or not _has_coscheduling(profile):
        return None
    members = pending_members(pod, candidates)
    return place_group(profile, group, members, table, all_candidates=True), members


def permit_rejection(d: Decision, table: NodeTable, profile: Profile) -> str:
    """The live scheduler's FailedScheduling message when a Permit plugin rejects the pod
    on its chosen node (Coscheduling: its PodGroup does not exist); "" when none does or
    nothing was chosen. As upstream, the rejection reads as a fit error on that one node:
    ``0/1 nodes are available: 1 PodGroup not found.`` The pod is assumed on the node
    while Permit runs, and taken off again."""
    if d.node is None or not profile.permits:
        return ""
    table.add_pod(d.assumed_pod(), d.node)
    try:
        result, _ = profile.run_permit(d.pod, table, d.node, d.state, NO_WAITING_PODS)
    finally:
        table.remove_pod(d.pod.key)
    return fit_error_message(1, {result.message: 1}) if result.status == PERMIT_REJECT else ""


def gang_json(plan: GroupPlan, members: Sequence[PodInfo]) -> dict[str, Any]:
    """The contract's ``"gang"``: the group, its quorum, whether the pending members fit
    at once, and each member's node in the plan (null when it did not fit or was not
    tried because the group could no longer reach its quorum)."""
    nodes = plan.nodes()
    return {"group": plan.group.key, "minMember": plan.group.min_member, "assigned": plan.assigned,
            "need": plan.need, "fits": plan.fits, "members": {m.key: nodes.get(m.key) for m in members},
            "message": plan.message}


def preemption_json(d: Decision) -> dict[str, Any] | None:
    """The contract's ``"preemption"``: DefaultPreemption's plan, or None when it did not
    run (a node fits, or the profile does not preempt)."""
    mine = d.post_filters.get(DEFAULT_PREEMPTION)
    detail = mine.detail if mine is not None else None
    return detail.to_json() if isinstance(detail, Preemption) else None


def decision_json(d: Decision, table: NodeTable, *, gang: tuple[GroupPlan, Sequence[PodInfo]] | None = None,
                  rejected: str = "") -> dict[str, Any]:
    """The contract's JSON: pod, profile, selected, message, per-node detail, the
    preemption plan and the group plan. ``nodes`` is always the pod's own decision; the
    pod gets no node when a Permit plugin ``rejected`` it (that message) or when its
    group does not fit as a whole (the plan's message), since the live scheduler then
    binds nothing of it."""
    nodes: dict[str, Any] = {}
    pos = {int(r): i for i, r in enumerate(d.scored)}
    for row, name in enumerate(table.names):
        if row in pos:
            i = pos[row]
            nodes[name] = {"feasible": True, "reasons": [],
                           "scores": {p: int(s[i]) for p, s in d.scores.items()}, "total": int(d.totals[i])}
        else:
            nodes[name] = {"feasible": bool(d.feasible[row]), "reasons": d.reasons_of(row), "scores": {}, "total": None}
    selected, message = d.node, d.message
    if selected is not None and rejected:
        selected, message = None, rejected
    elif selected is not None and gang is not None and not gang[0].fits:
        selected, message = None, gang[0].message
    return {"pod": d.pod.key, "profile": d.profile, "selected": selected, "message": message, "nodes": nodes,
            "preemption": preemption_json(d), "gang": None if gang is None else gang_json(*gang)}


def render_table(doc: dict[str, Any]) -> str:
    """One row per node, best first: feasibility, reason, each plugin's score, total;
    then the message, the preemption plan when preemption ran, and the group plan when
    the pod's PodGroup was tried."""
    plugins: list[str] = []
    for n in doc["nodes"].values():
        for p in n["scores"]:
            if p not in plugins:
                plugins.append(p)
    rows = sorted(doc["nodes"].items(), key=lambda kv: (kv[1]["total"] is None, -(kv[1]["total"] or 0),
                                                        kv[0] != doc["selected"], kv[0]))
    header = ["NODE", "FEASIBLE", *plugins, "TOTAL", "REASON"]
    body = []
    for name, n in rows:
        mark = "*" if name == doc["selected"] else " "
        body.append([f"{mark}{name}", "yes" if n["feasible"] else "no",
                     *(str(n["scores"].get(p, "")) for p in plugins),
                     "" if n["total"] is None else str(n["total"]), "; ".join(n["reasons"])])
    lines = [f"pod {doc['pod']}  profile {doc['profile']}  selected {doc['selected'] or '(none)'}", ""]
    lines += _columns([header, *body])
    if doc["message"]:
        lines += ["", doc["message"]]
    if doc.get("preemption") is not None:
        lines += ["", *_render_preemption(doc["preemption"])]
    if doc.get("gang") is not None:
        lines += ["", *_render_gang(doc["gang"])]
    return "\n".join(lines)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _render_preemption(plan: dict[str, Any]) -> list[str]:
    """The plan: the node and its victims, how many candidates, the message, then one
    row per candidate (the chosen one first and marked, the others by name)."""
    candidates = plan["candidates"]
    summary = [["PREEMPTION", f"nominate {plan['node']}" if plan["node"] else "no node"],
               ["VICTIMS", ", ".join(plan["victims"]) or "(none)"],
               ["CANDIDATES", str(len(candidates))]]
    if plan["message"]:
        summary.append(["MESSAGE", plan["message"]])
    lines = _columns(summary)
    if candidates:
        rows = [["CANDIDATE", "PDB VIOLATIONS", "VICTIMS"]]
        for name in sorted(candidates, key=lambda n: (n != plan["node"], n)):
            c = candidates[name]
            rows.append([f"{'*' if name == plan['node'] else ' '}{name}", str(c["pdb_violations"]),
                         ", ".join(c["victims"])])
        lines += ["", *_columns(rows)]
    return lines


def _render_gang(gang: dict[str, Any]) -> list[str]:
    """The group plan: the group, its quorum, whether it fits, then member -> node."""
    summary = [["GANG", gang["group"]],
               ["MIN MEMBER", f"{gang['minMember']} ({gang['assigned']} assigned, {gang['need']} more needed)"],
               ["FITS", "yes" if gang["fits"] else "no"]]
    if gang["message"]:
        summary.append(["MESSAGE", gang["message"]])
    rows = [["MEMBER", "NODE"], *([k, v or "(none)"] for k, v in gang["members"].items())]
    return [*_columns(summary), "", *_columns(rows)]


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        snapshot = load_snapshot(args.snapshot)
        pod = load_pod(args.pod, priority_classes=snapshot.priority_classes)
        table = snapshot.table
        table.remove_pod(pod.key)  # the pod being placed does not occupy a node already
        if args.node_metrics:
            sample = read_watcher_metrics(args.node_metrics, what=f"--node-metrics {args.node_metrics}")
            load = LoadMetrics.of(table)
            load.clock = lambda: float(sample.timestamp)  # decide as when the sample was taken: it is fresh
            load.set_sample(sample)
        PodGroups.of(table).observe(pod)  # ... but is one of its group's pods (once, if the snapshot has it too)
        name = pick_profile(config, pod, args.profile)
        profile = config.profile(name).build(seed=args.seed)
        # A group is tried with a profile of its own, built with the same seed, so that the
        # pod's first tie-break draw there is the one its own decision makes.
        group_profile = config.profile(name).build(seed=args.seed) if group_of(pod) else profile
    except (ConfigError, SnapshotError, LoadMetricsError) as e:
        print(f"vecsched explain: {e}", file=sys.stderr)
        return 2
    for w in config.warnings:
        print(f"warning: {w}", file=sys.stderr)
    # The group first: the pod's own decision may run Coscheduling's PostFilter, which
    # remembers the group's failure (and may back it off) in the table.
    # The pending pods the scheduler would place with this one: not gated, and of its schedulerName.
    pending = [p for p in snapshot.pods if not p.node_name and not p.terminated and not p.scheduling_gates
               and p.scheduler_name == pod.scheduler_name]
    gang = explain_group(table=table, pod=pod, profile=group_profile, candidates=pending)
    d = explain(table=table, pod=pod, profile=profile)
    doc = decision_json(d, table, gang=gang, rejected=permit_rejection(d, table, profile))
    print(json.dumps(doc, indent=2) if args.output == "json" else render_table(doc))
    return 0
