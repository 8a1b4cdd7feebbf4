"""``vecsched sim``: the strategy lab's command.

Replays a workload through one or more strategies (profiles of ``--config``
or built-in strategies, see ``benchmarks.strategies``) over several seeds,
and answers "which places more, wastes less, and how far from optimal is
it": a table on the terminal, and ``summary.json``, ``runs.csv``,
``runs.jsonl`` and three PNGs in ``--out``. ``--json`` prints the summary on
stdout instead of the table (the table then goes to stderr). With
``--preemption`` a pod that fits nowhere may evict pods of lower priority, as
the strategy's DefaultPreemption plans it, and the reports gain
``preemptions`` and ``evicted`` per strategy (see ``benchmarks.sim.replay``).
A workload with pod groups (``benchmarks.sim.gangs``) is placed group by
group, and the reports gain ``groups`` and ``gpus_held_by_partial_groups``;
a strategy listed as ``<name>:no-gang`` is ``<name>`` placing the members one
by one, for comparison.

The workload's order is part of the workload: every seed replays pods by
arrival time and, among equal arrivals, in file order; seeds change only what
is drawn (tie-breaks, ``Random``, synthetic workloads, ``--inflate`` clones).
``--shuffle`` shuffles pods that arrive at the same time, per seed; it is on by
default only for ``openb:`` pod lists, whose pods all arrive at once in no
meaningful order and which the FGD paper's protocol shuffles per seed
(``--no-shuffle`` turns it off there). With ``--inflate X`` the table shows the
primary resource's allocation at 100% and at X of arrived demand, and the JSON
gains them as ``alloc_at`` (and ``frag_at`` on GPU clusters).

Ctrl-C stops the sweep at once and says, in one line on stderr, how many runs
the runs file keeps and the command that resumes (exit code 130).

``--ray [ADDRESS]`` runs the same runs as Ray tasks, on a local Ray runtime or
on a Ray cluster (``benchmarks.sim.ray_runner``); Ray is an optional extra,
imported only then. Its absence is one line and exit code 2; a runtime or
cluster that fails, one line and exit code 1.

Inputs are validated before any run starts, so bad input costs one line and
exit code 2, not a traceback from a worker. The machinery (SciPy, matplotlib,
the replay) is imported only when ``sim`` runs: ``vecsched`` imports every
subcommand's ``configure`` at startup, and ``explain`` should not pay for it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.sim.model import SimInputError
from scoring.load import LOAD_PLUGINS, WatcherMetrics, read_watcher_metrics
from scoring.objects import NodeInfo

if TYPE_CHECKING:
    from benchmarks.sim.model import SimPod
    from benchmarks.sim.sweep import SweepOptions

# Built-in strategy names for --help, without importing the plugin registry.
_BUILTINS = ("default, MostAllocated, RequestedToCapacityRatio, DotProduct, BestFit, WorstFit, FirstFit, Random; "
             "for GPU workloads FGD, CpuAwareFGD, GpuPacking, GpuClustering")

__all__ = ["configure", "run"]


def _positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return n


def _positive_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}")
    return x


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, metavar="C",
                        help="node shapes YAML, a Kubernetes List of Nodes, or openb:PATH")
    parser.add_argument("--workload", required=True, metavar="W",
                        help="Pod manifests, a CSV (name,cpu,memory,arrival,departure[,...]), a synthetic spec, "
                             "or openb:PATH")
    parser.add_argument("--strategies", required=True, metavar="A,B,...",
                        help=f"profile schedulerNames from --config or built-ins ({_BUILTINS}, ...); "
                             "NAME:no-gang is NAME placing pod groups' members one by one")
    parser.add_argument("--config", metavar="F", help="a KubeSchedulerConfiguration whose profiles are strategies")
    parser.add_argument("--seeds", type=_positive_int, default=1, metavar="N",
                        help="run seeds 0..N-1 (tie-breaks, Random, synthetic draws, --inflate clones, --shuffle); "
                             "default 1")
    parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None,
                        help="shuffle pods that arrive at the same time, by each seed (default: only for openb: pod "
                             "lists, as the FGD paper's protocol; other workloads keep their file order)")
    parser.add_argument("--inflate", type=_positive_float, metavar="X",
                        help="clone random pods until arrived demand of the primary resource is X x capacity")
    parser.add_argument("--primary", metavar="RES",
                        help="the resource --inflate counts (default: a GPU resource if the cluster has one, else cpu)")
    parser.add_argument("--out", default="out/sim", metavar="DIR", help="output directory (default out/sim)")
    parser.add_argument("--json", action="store_true", help="print the JSON summary on stdout")
    parser.add_argument("--bound", action="store_true",
                        help="compute the MILP optimum for a small static workload and each strategy's ratio to it")
    parser.add_argument("--bound-objective", default="pods", metavar="OBJ",
                        help="what the bound maximises: pods (default) or a resource name (allocated amount)")
    parser.add_argument("--bound-time-limit", type=_positive_float, default=60.0, metavar="S",
                        help="seconds HiGHS may spend per bound (default 60); then its dual bound is used")
    parser.add_argument("--retry", action="store_true", help="retry failed pods after departures instead of failing them")
    parser.add_argument("--preemption", action="store_true",
                        help="a pod that fits nowhere evicts pods of lower priority as the strategy's DefaultPreemption "
                             "plans it (spec.priority, a priorityClassName resolved against the PriorityClasses in "
                             "the workload file, or a CSV priority column), then takes the nominated node; evicted "
                             "pods are not re-queued (a replay has no controller to recreate them); reports "
                             "preemptions and evicted pods")
    parser.add_argument("--node-metrics", metavar="FILE",
                        help="the nodes' measured load when the replay starts, as load-watcher's WatcherMetrics JSON "
                             "(for the load plugins: TargetLoadPacking, LoadVariationRiskBalancing, LoadAware)")
    parser.add_argument("--jobs", type=_positive_int, default=2, metavar="N", help="worker processes (default 2)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="run the runs as Ray tasks: on a local Ray runtime of --jobs CPUs, or on the Ray cluster "
                             "at ADDRESS (ray://HEAD:10001, HOST:PORT or auto), to which the inputs and vecsched's "
                             "code are shipped (its CPUs, not --jobs, decide how many run at once); needs "
                             "pip install 'vecsched[ray]'")
    parser.add_argument("--no-resume", action="store_true", help="rerun everything even if --out holds finished runs")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _bounds(args: argparse.Namespace, opts: SweepOptions, strategies: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The MILP bound per seed (computed once per distinct workload), with the first strategy's filters."""
    from benchmarks.sim.bound import milp_bound
    from benchmarks.sim.replay import cluster_resources
    from benchmarks.sim.sweep import seed_pods

    first = next(iter(strategies.values()))
    profile = first.build(seed=0)
    out: dict[int, dict[str, Any]] = {}
    cache: dict[Any, dict[str, Any]] = {}
    for seed in range(args.seeds):
        nodes, pods = seed_pods(opts, seed)
        resources = list(cluster_resources(nodes))
        fingerprint = tuple(sorted((tuple(sorted(p.pod.requests.items())), repr(p.pod.node_selector),
                                    repr(p.pod.tolerations), repr(p.pod.affinity), p.duration is None) for p in pods))
        if fingerprint not in cache:
            cache[fingerprint] = milp_bound(nodes=nodes, pods=pods, profile=profile, resources=resources,
                                            objective=args.bound_objective,
                                            time_limit=args.bound_time_limit).to_json()
        out[seed] = cache[fingerprint]
    return out


def _node_metrics_notes(wm: WatcherMetrics, nodes: Sequence[NodeInfo], strategies: dict[str, Any]) -> None:
    """Say on stderr when --node-metrics cannot change a strategy, or leaves nodes without a measured load."""
    for name, cfg in strategies.items():
        if not set(LOAD_PLUGINS) & {*cfg.filters, *(s for s, _ in cfg.scores)}:
            print(f"vecsched sim: note: strategy {name} has no load plugin ({', '.join(LOAD_PLUGINS)}); "
                  "--node-metrics does not change it", file=sys.stderr)
    missing = [n.name for n in nodes if n.name not in wm.nodes]
    if missing:
        print(f"vecsched sim: note: {len(missing)} of {len(nodes)} nodes have no metrics in --node-metrics "
              f"(first: {missing[0]}); the load plugins treat them as unmeasured", file=sys.stderr)


def _preemption_notes(strategies: dict[str, Any], workload: Sequence[SimPod]) -> None:
    """Say on stderr when --preemption cannot change anything, rather than report zeros
    silently (``workload``: seed 0's pods, a synthetic spec's first draw)."""
    from scoring.plugins.default_preemption import NAME

    for name, cfg in strategies.items():
        if NAME not in cfg.postfilters:
            print(f"vecsched sim: note: strategy {name} has no {NAME} PostFilter; it never preempts", file=sys.stderr)
    priorities = {p.pod.priority for p in workload}
    if len(priorities) == 1:
        print(f"vecsched sim: note: every pod of the workload has priority {priorities.pop()}; "
              "nothing can be preempted", file=sys.stderr)


def _resolve(names: Sequence[str], *, config: Any, workload: Sequence[SimPod] | None = None) -> dict[str, Any]:
    """Each strategy name's profile; ``<name>:no-gang`` gets ``<name>``'s."""
    from benchmarks.sim.gangs import strategy_gang
    from benchmarks.strategies import UnknownStrategyError, resolve_strategies

    for i, name in enumerate(names):
        if name in names[:i]:
            raise UnknownStrategyError(f"strategy {name!r} is listed twice")
    bases = list(dict.fromkeys(strategy_gang(n)[0] for n in names))
    profiles = resolve_strategies(bases, config=config,
                                  workload=None if workload is None else [p.pod for p in workload])
    return {name: profiles[strategy_gang(name)[0]] for name in names}


def resume_command(args: argparse.Namespace) -> str:
    """The command line that reruns ``args``'s sweep and resumes from its runs file: every flag
    given a value other than its default, ``--out`` always, ``--no-resume`` never."""
    parser = argparse.ArgumentParser(add_help=False)
    configure(parser)
    words = ["vecsched", "sim"]
    for action in parser._actions:
        if not action.option_strings or action.dest == "no_resume":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default and action.dest != "out":
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(action.option_strings[0 if value else 1])
        elif action.nargs == 0 or (action.nargs == "?" and value == action.const):  # a flag without its value
            words.append(action.option_strings[0])
        else:
            words += [action.option_strings[0], str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from benchmarks.sim.ray_runner import RayClusterError
    from benchmarks.sim.sweep import SweepInterrupted

    try:
        return _run(args)
    except RayClusterError as e:
        print(f"vecsched sim: {e}", file=sys.stderr)
        return 1
    except SweepInterrupted as e:
        where = f"{e.runs_file}" if e.runs_file is not None else "no runs file"
        print(f"vecsched sim: interrupted: {e.kept} of {e.total} runs are kept in {where}; resume with: "
              f"{resume_command(args)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("vecsched sim: interrupted before any run started", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from benchmarks.sim.gangs import NO_GANG_SUFFIX
    from benchmarks.sim.loaders import load_cluster
    from benchmarks.sim.replay import cluster_resources
    from benchmarks.sim.report import inflate_levels
    from benchmarks.sim.sweep import RUNS_FILE, SweepInterrupted, SweepOptions, primary_resource, run_sweep, \
        seed_pods, shuffles
    from scheduler.config import load_config

    if args.ray is not None:
        from benchmarks.sim.ray_runner import require_ray

        require_ray(address=args.ray)  # before the inputs are read: a missing package costs one line
    config = load_config(args.config) if args.config else None
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not names:
        raise SimInputError("--strategies: name at least one strategy")
    strategies = _resolve(names, config=config)
    opts = SweepOptions(cluster=args.cluster, workload=args.workload, inflate=args.inflate,
                        primary=args.primary, retry=args.retry, preemption=args.preemption,
                        node_metrics=args.node_metrics, shuffle=args.shuffle)
    # Validate every input here, in this process, before any worker starts.
    nodes = load_cluster(args.cluster)
    primary = primary_resource(cluster_resources(nodes), args.primary)
    _, workload = seed_pods(replace(opts, inflate=None), 0)
    if args.node_metrics:
        _node_metrics_notes(read_watcher_metrics(args.node_metrics, what=f"--node-metrics {args.node_metrics}"),
                            nodes, strategies)
    # Workload-specific built-ins (GPU policies with FGD's target workload) replace generic ones.
    strategies = _resolve(names, config=config, workload=workload)
    if not any(p.pod_group is not None for p in workload):
        for name in names:
            if name.endswith(NO_GANG_SUFFIX):
                print(f"vecsched sim: note: the workload has no pod groups; {name} replays as "
                      f"{name[: -len(NO_GANG_SUFFIX)]}", file=sys.stderr)
    if args.preemption:
        _preemption_notes(strategies, workload)
    out_dir = Path(args.out)
    records = run_sweep(opts=opts, strategies=strategies, seeds=args.seeds, jobs=args.jobs, out_dir=out_dir,
                        progress=not args.quiet, resume=not args.no_resume, ray=args.ray)
    try:
        return _report(args, opts=opts, strategies=strategies, records=records, nodes=nodes, primary=primary,
                       levels=inflate_levels(args.inflate), shuffled=shuffles(opts))
    except KeyboardInterrupt:
        # Every run is in the runs file; only the reports were left, and a rerun writes them.
        raise SweepInterrupted(kept=len(records), total=len(records), runs_file=out_dir / RUNS_FILE) from None


def _report(args: argparse.Namespace, *, opts: SweepOptions, strategies: dict[str, Any],
            records: list[dict[str, Any]], nodes: Sequence[NodeInfo], primary: str, levels: Sequence[int],
            shuffled: bool) -> int:
    """The bound (with --bound), the summary, the files and the table, once every run is done."""
    from benchmarks.sim.replay import cluster_resources
    from benchmarks.sim.report import format_table, summarise, write_outputs

    out_dir = Path(args.out)
    bounds = _bounds(args, opts, strategies) if args.bound else None
    if bounds and len({json.dumps(c.filters) for c in strategies.values()}) > 1:
        print("vecsched sim: note: strategies filter differently; the bound uses the first one's filters",
              file=sys.stderr)
    summary = summarise(records, strategies=list(strategies), bounds=bounds, primary=primary, levels=levels)
    summary["cluster"] = {"source": args.cluster, "nodes": len(nodes), "capacity": cluster_resources(nodes)}
    if args.node_metrics:
        summary["cluster"]["node_metrics"] = args.node_metrics
    summary["workload"] = {"source": args.workload, "pods": records[0]["pods"] if records else 0,
                           "inflate": args.inflate, "retry": args.retry, "seeds": args.seeds, "shuffle": shuffled}
    if args.preemption:
        summary["workload"]["preemption"] = True
    written = write_outputs(out_dir, records=records, summary=summary, plots=not args.no_plots)
    table = format_table(summary)
    if args.json:
        print(json.dumps(summary))
        print(table, file=sys.stderr)
    else:
        print(table)
        if bounds:
            for seed, b in bounds.items():
                print(f"bound (seed {seed}): {b['objective']} <= {b['value']} [{b['status']}]")
        print(f"wrote {', '.join(str(p) for p in written)} and {out_dir / 'runs.jsonl'}")
    return 0
