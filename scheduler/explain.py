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
With ``--what-if``, the same run answers the follow-up question -- which single change
would make the pod fit -- with the profile's own filters (``scheduler.what_if``); the JSON
gains ``"whatIf"`` and the table its lines.
The JSON's ``"batching"`` says whether the live scheduler could decide the pod with
opportunistic batching (``scoring.batching``) and, if not, why: the same decision either
way, but a pod that is never signable costs the full computation every time.

Two modes, one decision. ``--snapshot F --pod F`` reads files, with no cluster.
``vecsched explain POD`` reads the cluster through its API instead
(``scheduler.live_cluster``: the pod, then paginated lists of only what the pod's profile
reads) and builds the same snapshot in memory, so both modes print the same answer for the
same objects; ``kubectl vecsched explain`` (``scheduler.kubectl_explain``) is the live mode
as a kubectl plugin. The live mode, and with it aiohttp and the Kubernetes client, is
imported only when asked for.
The JSON shape is a contract (docs/contracts.md); the table is for people.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any, Final

from scheduler.cli import UsageError
from scheduler.config import BATCHING_FIELD, CONFIG_MAP, ConfigError, SchedulerConfig, load_config
from scheduler.snapshot import Snapshot, SnapshotError, load_pod, load_snapshot
from scoring.batching import sign_pod
from scoring.framework import NO_WAITING_PODS, PERMIT_REJECT, Decision, Profile, fit_error_message
from scoring.objects import OBJECT_CHARS, PodInfo
from scoring.plugins.coscheduling import NAME as COSCHEDULING
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION, Preemption
from scoring.plugins.gang import GroupPlan, pending_members, place_group
from scoring.load import LoadMetricsError, WatcherMetrics, read_watcher_metrics
from scoring.plugins.node_load import LoadMetrics
from scoring.plugins.podgroups import PodGroups, group_of
from scoring.safe_input import one_line, quote
from scoring.table import NodeTable

__all__ = ["configure", "add_decision_arguments", "add_live_arguments", "run", "explain", "explain_group",
           "permit_rejection", "decision_json", "preemption_json", "gang_json", "batching_json", "render_table", "render",
           "align_columns", "pick_profile",
           "build_profiles", "prepare", "decide", "error_line", "CHUNK_SIZE", "MAX_ERROR_LINE"]

MAX_ERROR_LINE: Final = 1000
"""Longest error line printed, a safety net: the messages themselves stay within 300
characters but for a long file path, which is the user's own and is printed whole."""
CHUNK_SIZE: Final = 500
"""Items per list request in the live mode: kubectl's ``--chunk-size`` default, as
``scheduler.kube.client.CHUNK_SIZE`` -- repeated here so that the snapshot form does not
import the Kubernetes client."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="POD",
                        help="live mode: the pod to explain, NAME (in -n, else the kubeconfig context's namespace) "
                             "or NAMESPACE/NAME, read with everything its profile needs from the cluster")
    parser.add_argument("--snapshot", metavar="FILE",
                        help="snapshot mode: a List of Nodes and Pods, and optionally PodDisruptionBudgets, "
                             "PriorityClasses and PodGroups (kubectl get nodes,pods,pdb,priorityclasses,podgroups "
                             "-A -o json)")
    parser.add_argument("--pod", metavar="FILE", help="snapshot mode: the Pod manifest to place")
    add_live_arguments(parser)
    add_decision_arguments(parser)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say which cluster, which namespace and which configuration (live mode)."""
    parser.add_argument("-n", "--namespace", help="the pod's namespace (default: the kubeconfig context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")
    parser.add_argument("--config-map", metavar="NS/NAME",
                        help=f"the ConfigMap holding vecsched's configuration, read when --config is not given "
                             f"(default: {CONFIG_MAP}; absent: vecsched's default profile)")
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, metavar="N",
                        help=f"objects per list request, 0 for one request (default: {CHUNK_SIZE})")


def add_decision_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags both modes share: configuration, profile, output, seed, node metrics, what-if."""
    parser.add_argument("--config", metavar="FILE", help="a KubeSchedulerConfiguration file, or a ConfigMap file holding one "
                                         "(default: snapshot mode vecsched's default profile, live mode --config-map)")
    parser.add_argument("--profile", help="the profile (schedulerName) to use instead of the pod's")
    parser.add_argument("--output", "-o", choices=("json", "table"), default="table")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the random tie-break (default 0)")
    parser.add_argument("--node-metrics", metavar="FILE",
                        help="the nodes' measured load, as load-watcher's WatcherMetrics JSON, for the load plugins "
                             "(TargetLoadPacking, LoadVariationRiskBalancing, LoadAware); live mode: instead of "
                             "the profile's own source")
    parser.add_argument("--what-if", action="store_true",
                        help="also say which single change would make the pod fit (requests, a toleration, new "
                             "nodes, preemption's victims)")


def pick_profile(config: SchedulerConfig, pod: PodInfo, override: str | None) -> str:
    """--profile, else the profile named by the pod's schedulerName, else the only profile."""
    names = [p.scheduler_name for p in config.profiles]
    if override:
        if override not in names:
            raise ConfigError("--profile", f"no profile {quote(override)} (have: {', '.join(names)})")
        return override
    if pod.scheduler_name in names:
        return pod.scheduler_name
    if len(names) == 1:
        return names[0]
    raise ConfigError("--profile", f"pod {one_line(pod.key, OBJECT_CHARS)} asks for schedulerName "
                      f"{quote(pod.scheduler_name)}, which no profile has (have: {', '.join(names)}); "
                      "choose one with --profile")


def build_profiles(config: SchedulerConfig, pod: PodInfo, *, override: str | None,
                   seed: int) -> tuple[Profile, Profile]:
    """The pod's profile (``pick_profile``), built with ``seed``, and the one its PodGroup is
    tried with: a profile of its own, built with the same seed, so that the pod's first
    tie-break draw there is the one its own decision makes (the same one when the pod
    names no group)."""
    name = pick_profile(config, pod, override)
    profile = config.profile(name).build(seed=seed)
    return profile, config.profile(name).build(seed=seed) if group_of(pod) else profile


def prepare(table: NodeTable, pod: PodInfo, *, sample: WatcherMetrics | None, at_sample_time: bool) -> None:
    """Set the table up for deciding ``pod``: it does not occupy a node already, the load
    plugins read ``sample`` (deciding as when it was taken when ``at_sample_time``: it is
    fresh, whatever its age now), and it is one of its group's pods (once, if the table
    has it too)."""
    table.remove_pod(pod.key)
    if sample is not None:
        load = LoadMetrics.of(table)
        if at_sample_time:
            load.clock = lambda: float(sample.timestamp)
        load.set_sample(sample)
    PodGroups.of(table).observe(pod)


def decide(*, snapshot: Snapshot, pod: PodInfo, profile: Profile, group_profile: Profile,
           what_if: bool = False) -> dict[str, Any]:
    """The contract's JSON for ``pod`` on a prepared snapshot: its group's plan, its own
    decision, a Permit rejection; with ``what_if``, also ``"whatIf"`` (``scheduler.what_if``).
    The table is left as it was."""
    table = snapshot.table
    # The pending pods the scheduler would place with this one: not gated, and of its schedulerName.
    pending = [p for p in snapshot.pods if not p.node_name and not p.terminated and not p.scheduling_gates
               and p.scheduler_name == pod.scheduler_name]
    # The group first: the pod's own decision may run Coscheduling's PostFilter, which
    # remembers the group's failure (and may back it off) in the table.
    gang = explain_group(table=table, pod=pod, profile=group_profile, candidates=pending)
    batching = batching_json(profile, pod, table)
    d = explain(table=table, pod=pod, profile=profile)
    doc = decision_json(d, table, gang=gang, rejected=permit_rejection(d, table, profile))
    doc["batching"] = batching
    if what_if:
        from scheduler.what_if import what_if as analyse
        doc["whatIf"] = analyse(table=table, pod=pod, profile=profile,
                                pending=[p for p in pending if p.key != pod.key], decision=d)
    return doc


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


def batching_json(profile: Profile, pod: PodInfo, table: NodeTable) -> dict[str, Any]:
    """The contract's ``"batching"``: whether the live scheduler could decide ``pod`` with
    opportunistic batching (``scoring.batching``; the decision is the same either way), and
    why not -- the plugin or the pod's field that refuses, or the profile's switch."""
    if not profile.batching:
        return {"signable": False, "reason": f"the profile sets {BATCHING_FIELD}: false"}
    signed = sign_pod(profile, pod, table)
    return {"signable": not isinstance(signed, str), "reason": signed if isinstance(signed, str) else ""}


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
    then the message, the preemption plan when preemption ran, the group plan when the
    pod's PodGroup was tried, and the what-if answers when asked for."""
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
    lines += align_columns([header, *body])
    if doc["message"]:
        lines += ["", doc["message"]]
    if doc.get("preemption") is not None:
        lines += ["", *_render_preemption(doc["preemption"])]
    if doc.get("gang") is not None:
        lines += ["", *_render_gang(doc["gang"])]
    if doc.get("whatIf") is not None:
        from scheduler.what_if import render_what_if
        lines += ["", *render_what_if(doc["whatIf"])]
    return "\n".join(lines)


def render(doc: dict[str, Any], output: str) -> str:
    """``-o json`` (indented) or the table, without a final newline."""
    return json.dumps(doc, indent=2) if output == "json" else render_table(doc)


def align_columns(rows: list[list[str]]) -> list[str]:
    """Rows as columns two spaces apart, each as wide as its widest cell (the explain tables)."""
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
    lines = align_columns(summary)
    if candidates:
        rows = [["CANDIDATE", "PDB VIOLATIONS", "VICTIMS"]]
        for name in sorted(candidates, key=lambda n: (n != plan["node"], n)):
            c = candidates[name]
            rows.append([f"{'*' if name == plan['node'] else ' '}{name}", str(c["pdb_violations"]),
                         ", ".join(c["victims"])])
        lines += ["", *align_columns(rows)]
    return lines


def _render_gang(gang: dict[str, Any]) -> list[str]:
    """The group plan: the group, its quorum, whether it fits, then member -> node."""
    summary = [["GANG", gang["group"]],
               ["MIN MEMBER", f"{gang['minMember']} ({gang['assigned']} assigned, {gang['need']} more needed)"],
               ["FITS", "yes" if gang["fits"] else "no"]]
    if gang["message"]:
        summary.append(["MESSAGE", gang["message"]])
    rows = [["MEMBER", "NODE"], *([k, v or "(none)"] for k, v in gang["members"].items())]
    return [*align_columns(summary), "", *align_columns(rows)]


def _mode(args: argparse.Namespace) -> str:
    """``snapshot`` or ``live``: exactly one, with only its own flags (``UsageError`` otherwise)."""
    if args.snapshot or args.pod:
        if args.target:
            raise UsageError(f"give either POD ({args.target}, read from the cluster) or --snapshot and --pod, "
                             "not both")
        if not (args.snapshot and args.pod):
            raise UsageError("--snapshot and --pod go together: give both, or POD alone to read the cluster")
        live = [flag for flag, value in (("--namespace", args.namespace), ("--kubeconfig", args.kubeconfig),
                                         ("--context", args.context), ("--config-map", args.config_map))
                if value is not None]
        if live:
            raise UsageError(f"{live[0]} is for reading the cluster (POD), not a --snapshot")
        return "snapshot"
    if not args.target:
        raise UsageError("give the pod to explain: POD (NAME or NAMESPACE/NAME, read from the cluster), "
                         "or --snapshot FILE --pod FILE")
    return "live"


def run(args: argparse.Namespace) -> int:
    if _mode(args) == "live":
        return _run_live(args)
    try:
        config = load_config(args.config)
        snapshot = load_snapshot(args.snapshot)
        pod = load_pod(args.pod, priority_classes=snapshot.priority_classes)
        sample = (read_watcher_metrics(args.node_metrics, what=f"--node-metrics {args.node_metrics}")
                  if args.node_metrics else None)
        prepare(snapshot.table, pod, sample=sample, at_sample_time=True)
        profile, group_profile = build_profiles(config, pod, override=args.profile, seed=args.seed)
        # The plugins read the pod's and the snapshot's fields as they decide (a selector,
        # a spread constraint); what they refuse is bad input too.
        doc = decide(snapshot=snapshot, pod=pod, profile=profile, group_profile=group_profile, what_if=args.what_if)
    except (ConfigError, SnapshotError, LoadMetricsError, ValueError) as e:
        print(error_line(e), file=sys.stderr)
        return 2
    for w in config.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(render(doc, args.output))
    return 0


def error_line(e: BaseException) -> str:
    """The one line ``vecsched explain`` prints for bad input. The readers quote at most a
    short prefix of any value; past ``MAX_ERROR_LINE`` characters, a safety net cuts the
    middle, keeping the start (file, object, field) and the end (the problem)."""
    return one_line(f"vecsched explain: {e}", MAX_ERROR_LINE)


def _run_live(args: argparse.Namespace) -> int:
    """The live mode: exit 2 for bad input (flags, files), 1 when the cluster cannot be read or
    what it holds cannot be used; every error one line."""
    from scheduler.kube.errors import KubeError
    from scheduler.live_cluster import InputError, explain_live, live_options

    try:
        result = asyncio.run(explain_live(live_options(args)))
    except InputError as e:
        print(f"vecsched explain: {e}", file=sys.stderr)
        return 2
    except (KubeError, ValueError, OSError) as e:
        print(f"vecsched explain: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(render(result.doc, args.output))
    return 0
