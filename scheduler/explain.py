"""``vecsched explain``: one placement decision, shown in full, without a cluster.

Given a snapshot of nodes and pods and one pending Pod, run the profile that
would schedule it and report, for every node, whether it is feasible (and
why not), each score plugin's normalised score, and the weighted total.
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
from scoring.table import NodeTable

__all__ = ["configure", "run", "explain", "decision_json", "render_table", "pick_profile"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", required=True, help="a List of Nodes and Pods (kubectl get nodes,pods -A -o json)")
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
    return profile.schedule(pod, table)


def decision_json(d: Decision, table: NodeTable) -> dict[str, Any]:
    """The contract's JSON: pod, profile, selected, message, and per-node detail."""
    nodes: dict[str, Any] = {}
    pos = {int(r): i for i, r in enumerate(d.scored)}
    for row, name in enumerate(table.names):
        if row in pos:
            i = pos[row]
            nodes[name] = {"feasible": True, "reasons": [],
                           "scores": {p: int(s[i]) for p, s in d.scores.items()}, "total": int(d.totals[i])}
        else:
            nodes[name] = {"feasible": bool(d.feasible[row]), "reasons": d.reasons_of(row), "scores": {}, "total": None}
    return {"pod": d.pod.key, "profile": d.profile, "selected": d.node, "message": d.message, "nodes": nodes}


def render_table(doc: dict[str, Any]) -> str:
    """One row per node, best first: feasibility, reason, each plugin's score, total."""
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
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [f"pod {doc['pod']}  profile {doc['profile']}  selected {doc['selected'] or '(none)'}", ""]
    for r in [header, *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if doc["message"]:
        lines += ["", doc["message"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        pod = load_pod(args.pod)
        table, _, _ = load_snapshot(args.snapshot, exclude=pod.key)
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
