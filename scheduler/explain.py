"""``vecsched explain``: one placement decision, shown in full, without a cluster.

Given a snapshot of nodes and pods and one pending Pod, run the profile that
would schedule it and report, for every node, whether it is feasible (and
why not), each score plugin's normalised score, and the weighted total.
When no node fits and the profile preempts (DefaultPreemption), it reports the
plan too: the node the pod would be nominated to, the pods evicted for it, and
every node where preemption would let it fit, each with its fewest victims.
The JSON shape is a contract (DESIGN.md); the table is for people.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scheduler.config import ConfigError, SchedulerConfig, load_config
from scheduler.snapshot import SnapshotError, load_pod, load_snapshot
from scoring.framework import Decision, Profile
from scoring.objects import PodInfo
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION, Preemption
from scoring.table import NodeTable

__all__ = ["configure", "run", "explain", "decision_json", "preemption_json", "render_table", "pick_profile"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", required=True,
                        help="a List of Nodes and Pods, and optionally PodDisruptionBudgets and PriorityClasses "
                             "(kubectl get nodes,pods,pdb,priorityclasses -A -o json)")
    parser.add_argument("--pod", required=True, help="the Pod manifest to place")
    parser.add_argument("--config", help="a KubeSchedulerConfiguration file (default: vecsched's default profile)")
    parser.add_argument("--profile", help="the profile (schedulerName) to use instead of the pod's")
    parser.add_argument("--output", "-o", choices=("json", "table"), default="table")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random tie-break (default 0)")


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


def preemption_json(d: Decision) -> dict[str, Any] | None:
    """The contract's ``"preemption"``: DefaultPreemption's plan, or None when it did not
    run (a node fits, or the profile does not preempt)."""
    mine = d.post_filters.get(DEFAULT_PREEMPTION)
    detail = mine.detail if mine is not None else None
    return detail.to_json() if isinstance(detail, Preemption) else None


def decision_json(d: Decision, table: NodeTable) -> dict[str, Any]:
    """The contract's JSON: pod, profile, selected, message, per-node detail, and the
    preemption plan."""
    nodes: dict[str, Any] = {}
    pos = {int(r): i for i, r in enumerate(d.scored)}
    for row, name in enumerate(table.names):
        if row in pos:
            i = pos[row]
            nodes[name] = {"feasible": True, "reasons": [],
                           "scores": {p: int(s[i]) for p, s in d.scores.items()}, "total": int(d.totals[i])}
        else:
            nodes[name] = {"feasible": bool(d.feasible[row]), "reasons": d.reasons_of(row), "scores": {}, "total": None}
    return {"pod": d.pod.key, "profile": d.profile, "selected": d.node, "message": d.message, "nodes": nodes,
            "preemption": preemption_json(d)}


def render_table(doc: dict[str, Any]) -> str:
    """One row per node, best first: feasibility, reason, each plugin's score, total;
    then the message, and the preemption plan when preemption ran."""
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


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        snapshot = load_snapshot(args.snapshot)
        pod = load_pod(args.pod, priority_classes=snapshot.priority_classes)
        table = snapshot.table
        table.remove_pod(pod.key)  # the pod being placed does not occupy a node already
        name = pick_profile(config, pod, args.profile)
        profile = config.profile(name).build(seed=args.seed)
    except (ConfigError, SnapshotError) as e:
        print(f"vecsched explain: {e}", file=sys.stderr)
        return 2
    for w in config.warnings:
        print(f"warning: {w}", file=sys.stderr)
    doc = decision_json(explain(table=table, pod=pod, profile=profile), table)
    print(json.dumps(doc, indent=2) if args.output == "json" else render_table(doc))
    return 0
