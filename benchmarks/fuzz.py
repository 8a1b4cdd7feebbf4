"""Hostile inputs through every reader of outside documents, counted.

vecsched reads documents it does not control: snapshot and pod files, configuration
files and ConfigMaps, node-metrics files, admission reviews, extender request bodies
and the objects a watch delivers. Each reader promises one clear line (a ``ValueError``
subclass; exit 2 from ``vecsched explain``) for anything it cannot use -- never a
traceback, never a hang, never a megabyte of input echoed back. This harness holds the
readers to that promise: it takes real, valid objects (the examples in deploy/ and
docs/), mutates them the way a careless or hostile writer would -- a value of the wrong
type at any path, integers of 2^63 and beyond, long strings, deep nesting, YAML integer
keys and aliases, binary garbage, truncation, NaN -- and feeds them, in process, to:

- ``explain``: ``vecsched explain --snapshot --pod [--config] [--node-metrics]`` (its
  ``main``, files in a temporary directory), the whole decision included;
- ``snapshot``: ``scheduler.snapshot.load_snapshot`` and ``load_pod`` alone (faster, so
  more of them);
- ``config``: ``scheduler.config.load_config``;
- ``webhook``: ``scheduler.webhook.review.read_review`` and, for ConfigMaps,
  ``scheduler.webhook.configs.validate_config_map``;
- ``extender``: the extender's body readers (``scheduler.extender.protocol``) behind
  ``loads_json``, as its server calls them;
- ``watch``: each object as the live cache reads a watch event (``pod_from_json``,
  ``node_from_json``, the table extensions' ``apply``);
- ``metrics``: ``scoring.load.read_watcher_metrics``;
- ``sim``: ``vecsched sim``'s cluster and workload readers (``benchmarks.sim.loaders``).

Each input gets a time limit; the report counts inputs, clear errors, results,
tracebacks (the first few shown), hangs and the longest error line::

    python -m benchmarks.fuzz [--inputs N] [--seed S] [--json]

It exits 1 when any input ended in a traceback or a hang, or an error line was longer
than ``MAX_LINE`` characters or not one line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from benchmarks.fuzz_inputs import METRICS_SAMPLE, ROOT, Seeds, dump, load_seeds, mutate

__all__ = ["MAX_LINE", "TIME_LIMIT", "TARGETS", "Report", "Seeds", "load_seeds", "run", "main"]

MAX_LINE: Final = 300
"""Longest error line accepted: a terminal's two lines, a log line read whole."""
TIME_LIMIT: Final = 5.0
"""Seconds one input may take before it counts as a hang: the slowest valid input here (an
explain of the largest example) takes about a tenth of a second on a slow machine."""
SHOWN: Final = 5
"""Tracebacks printed in full; the rest are counted by where they were raised."""
class Hang(BaseException):
    """Raised by the timer in an input that ran past ``TIME_LIMIT`` (a BaseException, so that a
    reader's ``except Exception`` cannot swallow it)."""


# ---- targets -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One input's fate: ``result``, ``error`` (with its text) or ``traceback`` (with it)."""

    kind: str
    text: str = ""


Target = Callable[[random.Random, Seeds, Path], Outcome]


def _error(e: BaseException) -> Outcome:
    return Outcome("error", str(e))


def _pick(rng: random.Random, seeds: Seeds, *kinds: str) -> dict[str, Any]:
    choices = [o for k in kinds for o in seeds.of(k)]
    return copy.deepcopy(rng.choice(choices))


def _write(tmp: Path, name: str, doc: Any, rng: random.Random, hostile: bool) -> str:
    as_yaml = rng.random() < .5
    path = Path(f"{name}.{'yaml' if as_yaml else 'json'}")
    path.write_bytes(dump(mutate(doc, rng) if hostile else doc, rng, as_yaml=as_yaml, spoil=hostile))
    return path.name  # relative: the run works in the temporary directory, as a user in theirs


def _explain(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scheduler.cli import main as cli

    spoil = rng.choice(("snapshot", "pod", "pod", "config", "metrics"))
    items = copy.deepcopy(rng.choice(seeds.snapshots))
    if spoil == "snapshot":
        # One object of the snapshot spoiled, or the List itself.
        if items and rng.random() < .8:
            i = rng.randrange(len(items))
            items[i] = mutate(items[i], rng)
            snapshot = _write(tmp, "s", {"apiVersion": "v1", "kind": "List", "items": items}, rng, False)
        else:
            snapshot = _write(tmp, "s", {"apiVersion": "v1", "kind": "List", "items": items}, rng, True)
    else:
        snapshot = _write(tmp, "s", {"apiVersion": "v1", "kind": "List", "items": items}, rng, False)
    argv = ["explain", "--snapshot", snapshot, "-o", "json",
            "--pod", _write(tmp, "p", _pick(rng, seeds, "Pod"), rng, spoil == "pod")]
    if spoil == "config" or rng.random() < .2:
        argv += ["--config", _write(tmp, "c", rng.choice(seeds.configs), rng, spoil == "config")]
    if spoil == "metrics" or rng.random() < .1:
        argv += ["--node-metrics", _write(tmp, "m", METRICS_SAMPLE, rng, spoil == "metrics")]
    if rng.random() < .2:
        argv.append("--what-if")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    lines = [line for line in err.getvalue().splitlines() if not line.startswith("warning: ")]
    if code == 0:
        return Outcome("result")
    if code == 2:
        return Outcome("error", "\n".join(lines))
    return Outcome("traceback", f"exit {code}: {err.getvalue()}")


def _snapshot(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scheduler.snapshot import load_pod, load_snapshot

    items = copy.deepcopy(rng.choice(seeds.snapshots))
    if items and rng.random() < .8:
        i = rng.randrange(len(items))
        items[i] = mutate(items[i], rng)
        path = _write(tmp, "s", {"apiVersion": "v1", "kind": "List", "items": items}, rng, False)
    else:
        path = _write(tmp, "s", {"apiVersion": "v1", "kind": "List", "items": items}, rng, True)
    try:
        snap = load_snapshot(path)
        load_pod(_write(tmp, "p", _pick(rng, seeds, "Pod"), rng, True), priority_classes=snap.priority_classes)
    except ValueError as e:
        return _error(e)
    return Outcome("result")


def _config(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scheduler.config import config_from_configmap, load_config

    try:
        if rng.random() < .8:
            load_config(_write(tmp, "c", rng.choice(seeds.configs), rng, True))
        else:
            cm = _pick(rng, seeds, "ConfigMap")
            config_from_configmap(mutate(cm, rng), "configmap")
    except ValueError as e:
        return _error(e)
    return Outcome("result")


def _review(obj: Any, kind: str) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": kind},
                        "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
                        "name": "x", "namespace": "default", "object": obj}}


def _webhook(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scheduler.webhook.configs import validate_config_map
    from scheduler.webhook.review import read_review

    kind = rng.choice(("Pod", "ConfigMap", "PodGroup"))
    review = _review(_pick(rng, seeds, kind) if seeds.of(kind) else {}, kind)
    try:
        req = read_review(dump(mutate(review, rng), rng, as_yaml=False))
        if req.kind == "ConfigMap" and isinstance(req.object, dict):
            validate_config_map(req.object)
    except ValueError as e:
        return _error(e)
    return Outcome("result")


def _extender(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scheduler.extender.protocol import read_binding_args, read_extender_args, read_preemption_args
    from scoring.safe_input import loads_json

    pod = _pick(rng, seeds, "Pod")
    nodes = [copy.deepcopy(n) for n in seeds.of("Node")[:4]]
    which = rng.randrange(5)
    body: dict[str, Any]
    if which == 0:
        body = {"Pod": pod, "Nodes": {"items": nodes}}
    elif which == 1:
        body = {"Pod": pod, "NodeNames": [n["metadata"]["name"] for n in nodes]}
    elif which == 2:
        body = {"Pod": pod, "NodeNameToMetaVictims": {"general-a": {"Pods": [{"UID": "u1"}], "NumPDBViolations": 1}}}
    elif which == 3:
        body = {"Pod": pod, "NodeNameToVictims": {"general-a": {"Pods": [pod], "NumPDBViolations": 0}}}
    else:
        body = {"PodName": "p", "PodNamespace": "default", "PodUID": "u", "Node": "general-a"}
    try:
        doc = loads_json(dump(mutate(body, rng), rng, as_yaml=False))
        if which < 2:
            read_extender_args(doc)
        elif which < 4:
            read_preemption_args(doc)
        else:
            read_binding_args(doc)
    except ValueError as e:
        return _error(e)
    return Outcome("result")


_WATCHED: Final = ("Pod", "Node", "Namespace", "Service", "ReplicaSet", "StatefulSet", "ReplicationController",
                   "PodDisruptionBudget", "PodGroup", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim",
                   "StorageClass", "CSINode", "CSIDriver", "CSIStorageCapacity")


def _watch(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scoring.nominations import status_nominated_node
    from scoring.objects import node_from_json, pod_from_json
    from scoring.plugins.budgets import Budgets, budget_from_json
    from scoring.plugins.podgroups import PodGroups, podgroup_from_json
    from scoring.plugins.workloads import Namespaces, Workloads
    from scoring.priorities import priority_class_from_json
    from scoring.table import NodeTable
    from scoring.volumes import KINDS as STORAGE, Volumes

    kinds = [k for k in _WATCHED if seeds.of(k)]
    kind = rng.choice(kinds)
    raw = mutate(_pick(rng, seeds, kind), rng)
    if rng.random() < .3:  # through JSON, as a watch event arrives
        try:
            from scoring.safe_input import loads_json
            raw = loads_json(dump(raw, rng, as_yaml=False))
        except ValueError as e:
            return _error(e)
    table = NodeTable(capacity=4)
    try:
        if kind == "Pod":
            pod_from_json(raw)
            status_nominated_node(raw)
        elif kind == "Node":
            node_from_json(raw)
        elif kind == "Namespace":
            Namespaces.of(table).apply(raw)
        elif kind == "PodDisruptionBudget":
            budget_from_json(raw)
            Budgets.of(table).apply(raw)
        elif kind == "PodGroup":
            podgroup_from_json(raw)
            PodGroups.of(table).apply(raw)
        elif kind == "PriorityClass":
            priority_class_from_json(raw)
        elif kind in STORAGE:
            Volumes.of(table).apply(kind, raw)
        else:
            Workloads.of(table).apply(raw)
    except ValueError as e:
        return _error(e)
    return Outcome("result")


def _metrics(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from scoring.load import read_watcher_metrics

    path = Path("m.json")
    path.write_bytes(dump(mutate(METRICS_SAMPLE, rng), rng, as_yaml=False))
    try:
        read_watcher_metrics(str(path))
    except ValueError as e:
        return _error(e)
    return Outcome("result")


_SIM_CLUSTER: Final = ROOT / "deploy" / "examples" / "sim-cluster.yaml"
_SIM_WORKLOADS: Final = (ROOT / "deploy" / "examples" / "sim-workload.yaml",
                         ROOT / "deploy" / "examples" / "sim-gang-workload.csv")


def _rows(doc: Any) -> list[Any]:
    return doc if isinstance(doc, list) else [doc]


def _sim(rng: random.Random, seeds: Seeds, tmp: Path) -> Outcome:
    from benchmarks.sim.loaders import load_cluster, open_workload

    if rng.random() < .4:
        cluster = yaml.safe_load(_SIM_CLUSTER.read_text())
        path = Path(f"sc.{'yaml' if rng.random() < .5 else 'json'}")
        path.write_bytes(dump(mutate(cluster, rng), rng, as_yaml=path.suffix == ".yaml"))
        read: Callable[[], Any] = lambda: load_cluster(str(path))
    elif rng.random() < .8:
        workload = yaml.safe_load(_SIM_WORKLOADS[0].read_text())
        path = Path(f"sw.{'yaml' if rng.random() < .5 else 'json'}")
        path.write_bytes(dump(mutate(workload, rng), rng, as_yaml=path.suffix == ".yaml"))
        read = lambda: open_workload(str(path)).synthetic
    else:
        rows = [line.split(",") for line in _SIM_WORKLOADS[1].read_text().splitlines()[:12]]
        path = Path("sw.csv")
        path.write_bytes(dump(mutate(rows, rng), rng, as_yaml=False).replace(b"], [", b"\n").strip(b"[]")
                         if rng.random() < .5 else
                         "\n".join(",".join(map(str, r)) if isinstance(r, list) else str(r)
                                   for r in _rows(mutate(rows, rng))).encode("utf-8", "replace"))
        read = lambda: open_workload(str(path)).pods(seed=0)
    try:
        read()
    except ValueError as e:
        return _error(e)
    return Outcome("result")


TARGETS: Final[dict[str, tuple[Target, int]]] = {
    "explain": (_explain, 2),
    "snapshot": (_snapshot, 2),
    "config": (_config, 2),
    "webhook": (_webhook, 1),
    "extender": (_extender, 1),
    "watch": (_watch, 3),
    "metrics": (_metrics, 1),
    "sim": (_sim, 1),
}
"""Each target and its share of the inputs (the explain runs are the slowest)."""


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Report:
    """What the inputs came to."""

    inputs: int = 0
    errors: int = 0
    results: int = 0
    tracebacks: int = 0
    hangs: int = 0
    long_lines: int = 0
    """Errors longer than MAX_LINE characters or of more than one line."""
    longest: int = 0
    longest_text: str = ""
    seconds: float = 0.0
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)
    """The first SHOWN tracebacks and overlong lines, in full."""
    sites: dict[str, int] = field(default_factory=dict)
    """Tracebacks counted by the line that raised them."""

    @property
    def clean(self) -> bool:
        return not (self.tracebacks or self.hangs or self.long_lines)

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "errors": self.errors, "results": self.results,
                "tracebacks": self.tracebacks, "hangs": self.hangs, "long_lines": self.long_lines,
                "longest_line": self.longest, "seconds": round(self.seconds, 1), "by_target": self.by_target,
                "traceback_sites": self.sites, "shown": self.shown}


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def run(*, inputs: int, seed: int, time_limit: float = TIME_LIMIT, targets: tuple[str, ...] = tuple(TARGETS),
        progress: Callable[[Report], None] | None = None) -> Report:
    """Feed ``inputs`` hostile inputs, chosen from ``seed``, to ``targets``; the counts."""
    seeds = load_seeds()
    plan = [name for name in targets for _ in range(TARGETS[name][1])]
    report = Report(by_target={name: {"inputs": 0, "errors": 0, "results": 0, "tracebacks": 0, "hangs": 0}
                               for name in targets})
    previous = signal.signal(signal.SIGALRM, _alarm)
    limit = sys.getrecursionlimit()
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="vecsched-fuzz-") as d, contextlib.chdir(d):
            tmp = Path(d)
            for i in range(inputs):
                name = plan[i % len(plan)]
                rng = random.Random(f"{seed}:{i}")
                signal.setitimer(signal.ITIMER_REAL, time_limit)
                try:
                    outcome = TARGETS[name][0](rng, seeds, tmp)
                except Hang:
                    outcome = Outcome("hang")
                except Exception:  # the very thing counted: anything but a clear error
                    outcome = Outcome("traceback", traceback.format_exc())
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    sys.setrecursionlimit(limit)
                _count(report, name, outcome)
                if progress is not None and (i + 1) % 5000 == 0:
                    progress(report)
    finally:
        signal.signal(signal.SIGALRM, previous)
    report.seconds = time.monotonic() - start
    return report


def _count(report: Report, name: str, outcome: Outcome) -> None:
    report.inputs += 1
    counts = report.by_target[name]
    counts["inputs"] += 1
    if outcome.kind == "result":
        report.results += 1
        counts["results"] += 1
    elif outcome.kind == "error":
        report.errors += 1
        counts["errors"] += 1
        length = len(outcome.text)
        if length > report.longest:
            report.longest, report.longest_text = length, outcome.text[:MAX_LINE + 200]
        if length > MAX_LINE or "\n" in outcome.text or not outcome.text:
            report.long_lines += 1
            if len(report.shown) < SHOWN:
                report.shown.append(f"[{name}] error line of {length} characters: {outcome.text[:600]}")
    elif outcome.kind == "hang":
        report.hangs += 1
        counts["hangs"] += 1
    else:
        report.tracebacks += 1
        counts["tracebacks"] += 1
        lines = [line.strip() for line in outcome.text.splitlines() if line.strip().startswith("File ")]
        site = f"{lines[-1] if lines else '?'} {outcome.text.strip().splitlines()[-1][:120]}"
        report.sites[site] = report.sites.get(site, 0) + 1
        if len(report.shown) < SHOWN:
            report.shown.append(f"[{name}] {outcome.text[-3000:]}")


def _print(report: Report) -> None:
    print(f"inputs tried     {report.inputs:>9,}")
    print(f"clear errors     {report.errors:>9,}")
    print(f"results          {report.results:>9,}")
    print(f"tracebacks       {report.tracebacks:>9,}")
    print(f"hangs            {report.hangs:>9,}  (limit {TIME_LIMIT:g} s each)")
    print(f"lines > {MAX_LINE} or multi-line {report.long_lines:>5,}")
    print(f"longest error    {report.longest:>9,} characters")
    print(f"time             {report.seconds:>9.1f} s")
    print()
    print(f"{'TARGET':<10}{'INPUTS':>9}{'ERRORS':>9}{'RESULTS':>9}{'TRACEBACKS':>12}{'HANGS':>7}")
    for name, c in report.by_target.items():
        print(f"{name:<10}{c['inputs']:>9,}{c['errors']:>9,}{c['results']:>9,}{c['tracebacks']:>12,}{c['hangs']:>7,}")
    if report.longest_text:
        print(f"\nlongest error line: {report.longest_text[:MAX_LINE + 60]}")
    for site, n in sorted(report.sites.items(), key=lambda kv: -kv[1])[:20]:
        print(f"{n:>7,}  {site}")
    for text in report.shown:
        print(f"\n{text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, metavar="N", help="inputs to try (default 100,000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the mutations (default 0)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {', '.join(TARGETS)}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    targets = tuple(t for t in args.targets.split(",") if t)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or args.inputs < 0:
        print(f"python -m benchmarks.fuzz: {'unknown target ' + unknown[0] if unknown else '--inputs must be >= 0'}",
              file=sys.stderr)
        return 2
    progress = None if args.json else (lambda r: print(f"... {r.inputs:,} inputs, {r.tracebacks:,} tracebacks",
                                                       file=sys.stderr, flush=True))
    report = run(inputs=args.inputs, seed=args.seed, targets=targets, progress=progress)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print(report)
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
