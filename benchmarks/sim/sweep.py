"""Strategies x seeds, run in worker processes and streamed to disk as they finish.

Each (strategy, seed) run is independent: a worker loads the cluster and the
workload (once per process), prepares the seed's pods (``--inflate`` clones,
and with ``shuffle`` a seeded shuffle of pods that arrive at the same time),
builds the strategy's profile with the seed as its tie-break seed (without its
DefaultPreemption PostFilter unless the sweep preempts), and replays.

The workload's order is part of the workload: without ``shuffle`` every seed
replays the pods by arrival time and, among equal arrivals, in file order;
seeds change only what is drawn (tie-breaks, ``Random``, synthetic workloads,
``--inflate`` clones). ``shuffle`` defaults to the workload's own default
(``loaders.shuffled_by_default``: on for ``openb:`` pod lists, the FGD
paper's protocol, off for everything else).

Results are appended to ``runs.jsonl`` in the output directory as soon as
each run completes, so an interrupted sweep keeps what it finished, and a
rerun with the same directory and the same inputs skips the runs already
there (each line carries a key over the inputs, the options, whether the run
was shuffled, the profile and the seed). An interrupt (Ctrl-C) stops the
workers at once, drops the runs in flight and raises ``SweepInterrupted``
saying how many runs the file keeps. A strategy named ``<name>:no-gang`` runs
``<name>``'s profile with pod groups off (members one by one, see
``benchmarks.sim.gangs``). Everything a run draws comes from its seed, so the
same seed gives the same result in any process, in any order (decision times
aside). With ``ray`` the runs are Ray tasks instead (``benchmarks.sim.ray_runner``,
imported only then): the same records, streamed to the same file.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from benchmarks.gpu_strategies import fragmentation_measure
from benchmarks.sim.gangs import strategy_gang
from benchmarks.sim.loaders import (WorkloadSource, cluster_for_seed, load_cluster, open_workload, seeded_cluster,
                                    shuffled_by_default)
from benchmarks.sim.model import SimInputError, SimPod
from benchmarks.sim.replay import cluster_resources, replay, reseed_plugins
from benchmarks.sim.replay import demand as pod_demand
from scheduler.config import ProfileConfig
from scoring.objects import NodeInfo
from scoring.load import WatcherMetrics, read_watcher_metrics
from scoring.plugins.default_preemption import NAME as PREEMPTION
from scoring.safe_input import quote

__all__ = ["RUNS_FILE", "LoadedInputs", "SweepInterrupted", "SweepOptions", "adopt_inputs", "loaded_inputs",
           "prepare_pods", "primary_resource", "run_one", "run_sweep", "shuffles", "without_preemption"]

RUNS_FILE: Final = "runs.jsonl"


@dataclass(frozen=True, slots=True)
class SweepOptions:
    """What every run of a sweep shares."""

    cluster: str
    """Cluster spec: a file or ``<prefix>:<path>``."""
    workload: str
    """Workload spec: a file or ``<prefix>:<path>``."""
    inflate: float | None = None
    """Clone random pods until arrived demand of the primary resource reaches this x capacity."""
    primary: str | None = None
    """The resource ``inflate`` counts; None: a GPU resource when the cluster has one, else cpu."""
    retry: bool = False
    """Retry pods that fit nowhere after departures, instead of failing them at once."""
    preemption: bool = False
    """Carry out DefaultPreemption's plans (evict lower-priority pods) for pods that fit nowhere."""
    node_metrics: str | None = None
    """A WatcherMetrics JSON file: the nodes' measured load when the replay starts, for the load plugins."""
    shuffle: bool | None = None
    """Shuffle pods that arrive at the same time, by each run's seed (0 included); None: the
    workload's default (``loaders.shuffled_by_default``: only ``openb:`` pod lists)."""


def shuffles(opts: SweepOptions) -> bool:
    """Whether the runs of ``opts`` shuffle pods that arrive at the same time."""
    return shuffled_by_default(opts.workload) if opts.shuffle is None else opts.shuffle


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by an interrupt: ``kept`` of its ``total`` runs are in ``runs_file``
    (None when the sweep wrote no file), and a rerun with the same options resumes from them."""

    def __init__(self, *, kept: int, total: int, runs_file: Path | None) -> None:
        super().__init__(f"{kept} of {total} runs kept")
        self.kept, self.total, self.runs_file = kept, total, runs_file


def primary_resource(capacity: dict[str, int], requested: str | None = None) -> str:
    """``requested`` if given (and present), else the first resource with 'gpu' in its name, else cpu."""
    if requested:
        if requested not in capacity:
            raise SimInputError(f"--primary: the cluster has no {quote(requested)} (has: {', '.join(capacity)})")
        return requested
    return next((r for r in capacity if "gpu" in r.lower()), "cpu")


def prepare_pods(pods: Sequence[SimPod], *, seed: int, inflate: float | None, primary: str,
                 capacity: dict[str, int], shuffle: bool = False) -> list[SimPod]:
    """The seed's arrival sequence.

    ``inflate`` first appends clones (``<name>-clone-<i>``, same arrival, duration
    and pod group: a member's clone is one more member of its group) of pods
    drawn uniformly at random with the seed until the arrived demand of
    ``primary`` reaches ``inflate`` x capacity. The pods are then ordered by
    arrival; pods that arrive at the same time keep their order (the file's,
    clones after it), or with ``shuffle`` are shuffled by the seed, every
    seed 0 included (its draws come after the clones' on the seed's generator).
    """
    out = list(pods)
    rng = np.random.default_rng([seed, 0x5EED])
    if inflate is not None and out:
        target = inflate * capacity.get(primary, 0)
        demand = np.array([pod_demand(p.pod, primary) for p in out], np.float64)
        total = float(demand.sum())
        if total < target:
            if not demand.any():
                raise SimInputError(f"--inflate: no pod of the workload requests {primary}, it cannot be inflated")
            clones: list[SimPod] = []
            while total < target:
                # Draw in batches; keep draws up to the one that reaches the target.
                picks = rng.integers(len(pods), size=max(16, int((target - total) / max(demand.mean(), 1e-9)) + 1))
                cum = total + np.cumsum(demand[picks])
                stop = int(np.searchsorted(cum, target)) + 1 if cum[-1] >= target else len(picks)
                for j in picks[:stop].tolist():
                    p = pods[j]
                    clone = replace(p.pod, name=f"{p.pod.name}-clone-{len(clones)}", uid=f"{p.pod.uid}-clone-{len(clones)}")
                    clones.append(replace(p, pod=clone))
                total = float(cum[stop - 1])
            out += clones
    if shuffle and out:
        arrivals = np.array([p.arrival for p in out])
        order = np.lexsort((rng.random(len(out)), arrivals))
    else:
        order = np.argsort(np.array([p.arrival for p in out]), kind="stable")
    return [out[i] for i in order.tolist()]


# ---- one run, in whichever process -------------------------------------------------------

_CACHE: dict[tuple[str, str], Any] = {}


def _cluster(spec: str) -> list[NodeInfo]:
    key = ("cluster", spec)
    if key not in _CACHE:
        _CACHE[key] = load_cluster(spec)
    nodes: list[NodeInfo] = _CACHE[key]
    return nodes


def _workload(spec: str) -> WorkloadSource:
    key = ("workload", spec)
    if key not in _CACHE:
        _CACHE[key] = open_workload(spec)
    source: WorkloadSource = _CACHE[key]
    return source


def _node_metrics(path: str) -> WatcherMetrics:
    key = ("node_metrics", path)
    if key not in _CACHE:
        _CACHE[key] = read_watcher_metrics(path, what=f"--node-metrics {path}")
    metrics: WatcherMetrics = _CACHE[key]
    return metrics


@dataclass(frozen=True, slots=True)
class LoadedInputs:
    """A sweep's inputs as loaded objects, for runs in a process that cannot read the files
    (a Ray worker on another machine): pickled once, adopted by every run there."""

    cluster: list[NodeInfo]
    """``load_cluster(opts.cluster)``."""
    workload: WorkloadSource
    """``open_workload(opts.workload)``."""
    node_metrics: WatcherMetrics | None
    """``--node-metrics``'s file, read; None without it."""


def loaded_inputs(opts: SweepOptions) -> LoadedInputs:
    """``opts``'s inputs, loaded (once per process)."""
    return LoadedInputs(cluster=_cluster(opts.cluster), workload=_workload(opts.workload),
                        node_metrics=_node_metrics(opts.node_metrics) if opts.node_metrics else None)


def adopt_inputs(opts: SweepOptions, inputs: LoadedInputs) -> None:
    """Make this process's runs of ``opts`` use ``inputs`` rather than read the files."""
    _CACHE[("cluster", opts.cluster)] = inputs.cluster
    _CACHE[("workload", opts.workload)] = inputs.workload
    if opts.node_metrics:
        _CACHE[("node_metrics", opts.node_metrics)] = inputs.node_metrics


def seed_pods(opts: SweepOptions, seed: int) -> tuple[list[NodeInfo], list[SimPod]]:
    """The cluster (as ``loaders.cluster_for_seed`` prepares it for the seed) and the prepared
    pods of run seed ``seed``."""
    nodes = cluster_for_seed(opts.cluster, _cluster(opts.cluster), seed)
    capacity = cluster_resources(nodes)
    source = _workload(opts.workload)
    pods = source.pods(seed=seed)
    primary = primary_resource(capacity, opts.primary)
    return nodes, prepare_pods(pods, seed=seed, inflate=opts.inflate, primary=primary, capacity=capacity,
                               shuffle=shuffles(opts))


def without_preemption(config: ProfileConfig) -> ProfileConfig:
    """``config`` without the DefaultPreemption PostFilter, whose dry run a replay without
    preemption would pay for every pod that fits nowhere and then ignore."""
    if PREEMPTION not in config.postfilters:
        return config
    return replace(config, postfilters=tuple(n for n in config.postfilters if n != PREEMPTION))


def run_one(opts: SweepOptions, strategy: str, config: ProfileConfig, seed: int) -> dict[str, Any]:
    """Replay one (strategy, seed); returns a JSON-ready record."""
    nodes, pods = seed_pods(opts, seed)
    profile = (config if opts.preemption else without_preemption(config)).build(seed=seed)
    reseed_plugins(profile, seed)
    # GPU clusters also get the paper's fragmentation measure against the workload's typical pods.
    measure = fragmentation_measure([p.pod for p in pods]) if "gpu" in cluster_resources(nodes) else None
    load = _node_metrics(opts.node_metrics) if opts.node_metrics else None
    metrics = replay(nodes=nodes, pods=pods, profile=profile, retry=opts.retry, fragmentation=measure,
                     preemption=opts.preemption, gang=strategy_gang(strategy)[1], node_metrics=load)
    return {"strategy": strategy, "seed": seed, **metrics.to_json()}


def _run_task(args: tuple[SweepOptions, str, ProfileConfig, int]) -> dict[str, Any]:
    return run_one(*args)


def _worker_init() -> None:
    """Workers leave interrupts to the sweep: a Ctrl-C on a terminal reaches the whole process
    group, and a worker that took it would print its own traceback; the sweep stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers now, dropping the runs they are doing (each is all or nothing).
    ``terminate_workers`` is Python 3.14's; before it the pool's processes are ended one by one."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


# ---- the sweep -------------------------------------------------------------------------------


def _digest(path_spec: str) -> str:
    path = Path(path_spec.partition(":")[2] if ":" in path_spec and not Path(path_spec).exists() else path_spec)
    h = hashlib.sha256(path_spec.encode())
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        pass
    return h.hexdigest()[:16]


def run_key(opts: SweepOptions, strategy: str, config: ProfileConfig, seed: int) -> str:
    """Identifies a run by its inputs' content, the options, the profile and the seed."""
    options = asdict(opts)
    del options["shuffle"]
    shuffled = shuffles(opts)
    if shuffled != (seed > 0 or shuffled_by_default(opts.workload)):
        # Runs files written before --shuffle existed hold runs shuffled for seeds above 0, and for
        # every seed of an openb: list. A run ordered otherwise names its order, so such a file is
        # reused exactly where the order is the same; the keys of the two orders always differ.
        options["shuffle"] = shuffled
    if not opts.preemption:
        del options["preemption"]  # the keys of runs without it stay those they always were
    if seeded_cluster(opts.cluster):
        # openb: nodes are named per seed as the FGD simulator names them; runs files written
        # before that hold runs on the trace's own names, which are never reused for these.
        options["node_names"] = "per-seed"
    inputs = [_digest(opts.cluster), _digest(opts.workload)]
    if opts.node_metrics is None:
        del options["node_metrics"]  # likewise
    else:
        inputs.append(_digest(opts.node_metrics))
    doc = json.dumps([*inputs, options, strategy, repr(config), seed], sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:20]


class _Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, one line per run in a log."""

    WIDTH: Final = 30

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        filled = self.WIDTH * self.done // self.total
        bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} {label[:40]}"
        if self.tty:
            sys.stderr.write(f"\r{bar:<{self.WIDTH + 60}}" + ("\n" if self.done == self.total else ""))
        else:
            sys.stderr.write(bar + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        """End a bar left part-drawn on a terminal (by an interrupt) with its line."""
        if self.enabled and self.tty and 0 < self.done < self.total:
            sys.stderr.write("\n")
            sys.stderr.flush()


def run_sweep(*, opts: SweepOptions, strategies: dict[str, ProfileConfig], seeds: int, jobs: int = 2,
              out_dir: Path | None = None, progress: bool = True, resume: bool = True,
              on_result: Callable[[dict[str, Any]], None] | None = None,
              ray: str | None = None) -> list[dict[str, Any]]:
    """Run every (strategy, seed); returns the records ordered by strategy then seed.

    With ``out_dir``, each record is appended to ``out_dir/runs.jsonl`` as it
    completes, and (with ``resume``) records already there with a matching key
    are reused instead of rerun. An interrupt raises ``SweepInterrupted``.
    ``ray`` runs them as Ray tasks: ``""`` on a local Ray runtime of ``jobs``
    CPUs, else on the cluster at that address (``benchmarks.sim.ray_runner``);
    Ray is started only when some run is left to do.
    """
    tasks = [(name, cfg, s) for name, cfg in strategies.items() for s in range(seeds)]
    keys = {(name, s): run_key(opts, name, cfg, s) for name, cfg, s in tasks}
    done: dict[tuple[str, int], dict[str, Any]] = {}
    runs_file = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        runs_file = out_dir / RUNS_FILE
        if resume and runs_file.exists():
            text = runs_file.read_text()
            done.update(_records(text, keys))
            if text and not text.endswith("\n"):
                with runs_file.open("a") as f:
                    f.write("\n")  # end a cut line, so that it does not swallow the next run's
        elif runs_file.exists():
            runs_file.unlink()
    todo = [(n, c, s) for n, c, s in tasks if (n, s) not in done]
    bar = _Progress(len(tasks), progress)
    for k in done:
        bar.step(f"{k[0]} seed {k[1]} (kept)")

    def record(rec: dict[str, Any]) -> None:
        rec["key"] = keys[(rec["strategy"], rec["seed"])]
        done[(rec["strategy"], rec["seed"])] = rec
        if runs_file is not None:
            with runs_file.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        if on_result is not None:
            on_result(rec)
        bar.step(f"{rec['strategy']} seed {rec['seed']}")

    try:
        if ray is not None and todo:
            from benchmarks.sim.ray_runner import run_on_ray

            run_on_ray(opts=opts, todo=todo, jobs=jobs, address=ray, record=record)
        elif jobs <= 1 or len(todo) <= 1:
            for name, cfg, s in todo:
                record(run_one(opts, name, cfg, s))
        else:
            _run_pool(opts, todo, jobs, record)
    except KeyboardInterrupt:
        bar.close()
        kept = len(_records(runs_file.read_text(), keys)) if runs_file is not None and runs_file.exists() else 0
        raise SweepInterrupted(kept=kept, total=len(tasks), runs_file=runs_file) from None
    return [done[(n, s)] for n, _, s in tasks]


def _records(text: str, keys: dict[tuple[str, int], str]) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs of a runs file's ``text`` whose key is one of ``keys``, by (strategy, seed)."""
    wanted = {v: k for k, v in keys.items()}
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption
        key = rec.get("key") if isinstance(rec, dict) else None
        k = wanted.get(key) if isinstance(key, str) else None
        if k is not None:
            out[k] = rec
    return out


def _run_pool(opts: SweepOptions, todo: Sequence[tuple[str, ProfileConfig, int]], jobs: int,
              record: Callable[[dict[str, Any]], None]) -> None:
    """Run ``todo`` in ``jobs`` worker processes, recording each result as it arrives."""
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
    try:
        pending: set[Future[dict[str, Any]]] = {pool.submit(_run_task, (opts, n, c, s)) for n, c, s in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                record(fut.result())
    except KeyboardInterrupt:
        _stop_workers(pool)
        raise
    finally:
        # On an error or an interrupt, drop the queued runs; finished ones are on disk already.
        pool.shutdown(wait=True, cancel_futures=True)
