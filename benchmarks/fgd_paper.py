"""Reproduce Weng et al. (ATC '23) per pod list and set vecsched's figures beside the published ones.

The FGD paper's authors publish, with their simulator, the results of every
experiment behind the paper (``experiments/analysis/expected_results``: six
policies, 17 of the trace's 24 pod lists, 10 seeds each). This command runs
the same policies through the strategy lab's own sweep (``run_sweep``, as
``vecsched sim`` does: the openb default shuffle per seed, clones until the
arrived GPU request is 130% of capacity) for every pod list, and prints per
list and policy GPU allocation and GPU fragmentation at 100% and 130% of
arrived GPU request, mean ± std over seeds, vecsched against published, with
the difference, then the largest gap and the mean absolute gap::

    python -m benchmarks.fgd_paper [--traces DIR] [--seeds N] [--lists default,cpu250,...]
        [--policies FGD,BestFit,...] [--out DIR] [--jobs N] [--ray [ADDRESS]] [--json] [--quiet]

``--traces`` holds what ``make openb`` writes: the node list, the pod lists
``openb_pod_list_<name>.csv`` and ``expected_results/``. Each list's runs go
to ``OUT/<list>/`` (``runs.jsonl``, so that a rerun resumes, with the lab's
``summary.json`` and ``runs.csv``); a PNG of allocation at 130% per list and
policy, vecsched beside published, goes to ``OUT``.

The same quantity on both sides (the authors' ``merge_*_discrete.py``):

- alloc: allocated milli-GPU / 1,000 / the cluster's GPUs, in percent
  (``analysis_allo_discrete.csv``); the lab's ``alloc_curve.gpu``.
- frag: the fragmented milli-GPU of FGD's measure against the list's typical
  pods, in percent of the cluster's GPU milli (``analysis_frag_discrete.csv``,
  ``100 x frag_milli / 1000 / total_gpus``); the lab's ``frag_curve.gpu``. The
  paper's fragmentation *ratio* (``analysis_frag_ratio_discrete.csv``, percent
  of idle GPU) is another quantity and is not compared.
- at k%: the lab reads its curves when the arrived GPU request first reaches
  k% of capacity; the authors average their samples whose arrived request
  rounds to k% -- the same point up to half a percent of arrived request.
- seeds: the authors' 42..51 and vecsched's 0..N-1 draw different shuffles and
  clones, so runs are not paired: means and stds over seeds are compared.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from benchmarks.paper_results import (EXPECTED_DIR, INFLATE, LEVELS, MEASURES, PAPER_POLICIES, POD_LIST_PREFIX,
                                      POLICIES, PUBLISHED_FILES, Cells, PaperInputError, Published, Stat,
                                      published_cells, read_published, stat)
from benchmarks.sim_command import _positive_int  # the same check as `vecsched sim`
from scoring.safe_input import InputError, quote

if TYPE_CHECKING:  # the lab (numpy arrays of plugins, SciPy) is imported only when the command runs
    from benchmarks.sim.sweep import SweepOptions
    from scheduler.config import ProfileConfig

__all__ = ["DEFAULT_TRACES", "Cell", "Gap", "ListResult", "build_parser", "combine", "find_lists", "format_report",
           "gaps", "largest_gap", "main", "mean_abs_gap", "ours_from_records", "plot_alloc", "report_json"]

DEFAULT_TRACES: Final = Path("benchmarks/traces/openb")
NODE_LIST: Final = "openb_node_list_gpu_node.csv"
PLOT_FILE: Final = "fgd-paper-alloc130.png"


# ---- the vecsched side ----------------------------------------------------------------------


def ours_from_records(records: Sequence[Mapping[str, Any]], *, policies: Sequence[str], resource: str = "gpu",
                      levels: Sequence[int] = LEVELS) -> Cells:
    """Stats per policy, measure and level of the sweep's records: each run's ``alloc_curve``
    and ``frag_curve`` of ``resource`` at the level, over the runs whose arrived request reached it."""
    curve_key = {"alloc": "alloc_curve", "frag": "frag_curve"}
    out: Cells = {}
    for pol in policies:
        runs = [r for r in records if r["strategy"] == pol]
        out[pol] = {}
        for m in MEASURES:
            curves = [(r.get(curve_key[m]) or {}).get(resource, {}) for r in runs]
            out[pol][m] = {k: stat([c[str(k)] for c in curves if str(k) in c]) for k in levels}
    return out


# ---- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One figure: vecsched's and the published stat, and their difference (vecsched - published)."""

    ours: Stat | None
    published: Stat | None

    @property
    def diff(self) -> float | None:
        if self.ours is None or self.published is None:
            return None
        return self.ours.mean - self.published.mean

    def to_json(self) -> dict[str, Any]:
        d = self.diff
        return {"vecsched": self.ours.to_json() if self.ours else None,
                "published": self.published.to_json() if self.published else None,
                "diff": None if d is None else round(d, 4)}


@dataclass(slots=True)
class ListResult:
    """What one pod list gave: its sizes, its seeds on both sides and its cells."""

    name: str
    pods: int
    nodes: int
    gpus: int
    seeds: int
    cells: dict[str, dict[str, dict[int, Cell]]]
    """policy -> measure -> level -> Cell."""
    published_seeds: list[int] = field(default_factory=list)
    published_gpus: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"pods": self.pods, "nodes": self.nodes, "gpus": self.gpus, "seeds": self.seeds,
                "published": bool(self.published_seeds), "published_seeds": self.published_seeds,
                "published_gpus": self.published_gpus,
                "policies": {pol: {m: {str(k): c.to_json() for k, c in by_level.items()}
                                   for m, by_level in by_measure.items()}
                             for pol, by_measure in self.cells.items()}}


def combine(ours: Cells, *, published: Cells | None) -> dict[str, dict[str, dict[int, Cell]]]:
    """Cells from the two sides' stats (published None: vecsched's figures only)."""
    return {pol: {m: {k: Cell(ours=s, published=None if published is None else published[pol][m][k])
                      for k, s in by_level.items()} for m, by_level in by_measure.items()}
            for pol, by_measure in ours.items()}


@dataclass(frozen=True, slots=True)
class Gap:
    """One compared figure: where it is, both means and their difference."""

    list: str
    policy: str
    measure: str
    level: int
    ours: float
    published: float
    diff: float

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list, "policy": self.policy, "measure": self.measure, "level": self.level,
                "vecsched": round(self.ours, 4), "published": round(self.published, 4), "diff": round(self.diff, 4)}


def gaps(results: Sequence[ListResult]) -> list[Gap]:
    """Every figure with both sides, in list, policy, measure, level order."""
    out = []
    for r in results:
        for pol, by_measure in r.cells.items():
            for m, by_level in by_measure.items():
                for k, c in by_level.items():
                    if c.ours is not None and c.published is not None:
                        o, pub = c.ours.mean, c.published.mean
                        out.append(Gap(r.name, pol, m, k, o, pub, o - pub))
    return out


def largest_gap(found: Sequence[Gap]) -> Gap | None:
    """The gap of largest absolute difference (the first such one on a tie); None for none."""
    best: Gap | None = None
    for g in found:
        if best is None or abs(g.diff) > abs(best.diff):
            best = g
    return best


def mean_abs_gap(found: Sequence[Gap]) -> float | None:
    """Mean of the absolute differences; None when nothing was compared."""
    return float(np.mean([abs(g.diff) for g in found])) if found else None


# ---- output ------------------------------------------------------------------------------------

_LABEL: Final = {"alloc": "alloc GPU %", "frag": "frag GPU %"}
NOTES: Final = (
    "alloc: allocated GPU, % of the cluster's GPUs (analysis_allo_discrete.csv); frag: GPU fragmented against "
    "the list's typical pods, % of the cluster's GPUs (analysis_frag_discrete.csv); the paper's fragmentation "
    "ratio (% of idle GPU) is not compared",
    "@k%: vecsched when the arrived GPU request first reaches k% of capacity; the authors' mean of their "
    "samples whose arrived request rounds to k%",
    "mean ± std over seeds; vecsched's seeds 0..N-1 and the authors' seeds draw different orders and clones, "
    "so seeds are not paired; diff = vecsched - published",
)


def _pm(s: Stat | None) -> str:
    return "-" if s is None else f"{s.mean:.2f} ± {s.std:.2f}"


def _seeds(seeds: Sequence[int]) -> str:
    if not seeds:
        return "none"
    return f"{len(seeds)} ({seeds[0]}-{seeds[-1]})" if len(seeds) > 1 else f"1 ({seeds[0]})"


def _table(r: ListResult) -> str:
    levels = sorted({k for by_m in r.cells.values() for by_k in by_m.values() for k in by_k})
    header = ["policy", "measure"]
    for k in levels:
        header += [f"vecsched @{k}%", f"published @{k}%", f"diff @{k}%"]
    rows = [header]
    for pol, by_measure in r.cells.items():
        for i, (m, by_level) in enumerate(by_measure.items()):
            row = [pol if i == 0 else "", _LABEL[m]]
            for k in levels:
                c = by_level[k]
                d = c.diff
                row += [_pm(c.ours), _pm(c.published), "-" if d is None else f"{d:+.2f}"]
            rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    published = (f"published seeds {_seeds(r.published_seeds)}" if r.published_seeds
                 else "no published results for this list")
    title = (f"{r.name}: {r.pods:,} pods on {r.nodes:,} nodes ({r.gpus:,} GPUs), arrived GPU request inflated to "
             f"{INFLATE:.0%}; vecsched seeds {r.seeds}, {published}")
    notes = []
    if r.published_gpus and r.published_gpus != [r.gpus]:
        notes.append(f"note: the authors' cluster had {', '.join(map(str, r.published_gpus))} GPUs, this one {r.gpus}")
    return "\n".join([title, *lines, *notes])


def _gap_line(found: Sequence[Gap]) -> str:
    g = largest_gap(found)
    if g is None:
        return "no published results for these lists and policies: nothing compared"
    return (f"largest gap: {g.list} {g.policy} {g.measure} @{g.level}%: vecsched {g.ours:.2f}, published "
            f"{g.published:.2f}, diff {g.diff:+.2f}; mean absolute gap {mean_abs_gap(found):.2f} over "
            f"{len(found)} figures")


def format_report(results: Sequence[ListResult]) -> str:
    """One table per list, the notes on what is compared, and the largest-gap line last."""
    parts = [_table(r) for r in results]
    return "\n\n".join(parts) + "\n\n" + "\n".join(f"note: {n}" for n in NOTES) + "\n" + _gap_line(gaps(results))


def report_json(results: Sequence[ListResult], *, plot: Path | None) -> dict[str, Any]:
    """The report as JSON: the same figures, the gap summary and the notes."""
    found = gaps(results)
    g, mean = largest_gap(found), mean_abs_gap(found)
    return {"inflate": INFLATE, "levels": list(LEVELS), "notes": list(NOTES),
            "lists": {r.name: r.to_json() for r in results},
            "largest_gap": g.to_json() if g else None,
            "mean_abs_gap": None if mean is None else round(mean, 4), "compared": len(found),
            "plot": None if plot is None else str(plot)}


def plot_alloc(results: Sequence[ListResult], *, path: Path, level: int = LEVELS[-1]) -> Path:
    """Per list a panel of bars: allocation at ``level`` per policy, vecsched beside published."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(results))
    rows = math.ceil(len(results) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        pols = list(r.cells)
        x = np.arange(len(pols))
        cells = [r.cells[p]["alloc"][level] for p in pols]
        ours = [(c.ours.mean, c.ours.std) if c.ours else (0.0, 0.0) for c in cells]
        pub = [(c.published.mean, c.published.std) if c.published else (0.0, 0.0) for c in cells]
        ax.bar(x - 0.2, [m for m, _ in ours], 0.4, yerr=[s for _, s in ours], capsize=3, label="vecsched")
        if any(c.published for c in cells):
            ax.bar(x + 0.2, [m for m, _ in pub], 0.4, yerr=[s for _, s in pub], capsize=3, label="published")
        shown = [m for m, _ in ours + pub if m > 0]
        # Allocations differ by a few points near the top: start the axis 5 points below the lowest bar.
        ax.set_ylim(max(0.0, min(shown, default=0.0) - 5.0), 100.0)
        ax.set_xticks(x, pols)
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        ax.set_ylabel(f"allocated GPU (%) at {level}% arrived")
        ax.set_title(r.name)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")  # the lowest bars (Random) are on the left
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---- running --------------------------------------------------------------------------------------


def find_lists(traces: Path) -> list[str]:
    """The pod lists in ``traces`` (``openb_pod_list_<name>.csv``), by name."""
    return sorted(f.name[len(POD_LIST_PREFIX):-len(".csv")] for f in traces.glob(f"{POD_LIST_PREFIX}*.csv"))


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One list's sweep, checked and ready: its options, its strategies and its sizes."""

    name: str
    opts: SweepOptions
    strategies: dict[str, ProfileConfig]
    pods: int
    nodes: int
    gpus: int
    primary: str


def _prepare(*, traces: Path, names: Sequence[str], policies: Sequence[str]) -> list[_Prepared]:
    """Load the cluster and every list and build their strategies, so that bad input stops the
    command before any run rather than after hours of sweeps."""
    from benchmarks.sim.loaders import load_cluster, open_workload
    from benchmarks.sim.replay import cluster_resources
    from benchmarks.sim.sweep import SweepOptions, primary_resource
    from benchmarks.strategies import resolve_strategies

    cluster = f"openb:{traces / NODE_LIST}"
    nodes = load_cluster(cluster)
    capacity = cluster_resources(nodes)
    primary = primary_resource(capacity)
    if "gpu" not in primary:
        raise PaperInputError(f"{traces / NODE_LIST}: no node has a GPU")
    out = []
    for name in names:
        opts = SweepOptions(cluster=cluster, workload=f"openb:{traces / f'{POD_LIST_PREFIX}{name}.csv'}",
                            inflate=INFLATE)
        # Read here, not through the sweep's per-process cache: only the counts and the strategies
        # (FGD's typical pods) are kept, so checking 24 lists does not hold 24 lists in memory.
        pods = open_workload(opts.workload).pods(seed=0)
        strategies = resolve_strategies(policies, workload=[p.pod for p in pods])
        out.append(_Prepared(name=name, opts=opts, strategies=strategies, pods=len(pods), nodes=len(nodes),
                             gpus=capacity[primary] // 1000, primary=primary))  # milli-GPU -> GPUs
    return out


def _run_list(prep: _Prepared, *, seeds: int, out: Path, jobs: int, progress: bool,
              published: Mapping[str, Published], ray: str | None = None) -> ListResult:
    """Sweep one list through the lab and set its figures beside the published ones."""
    from benchmarks.sim.report import summarise, write_outputs
    from benchmarks.sim.sweep import run_sweep

    name, policies = prep.name, list(prep.strategies)
    records = run_sweep(opts=prep.opts, strategies=prep.strategies, seeds=seeds, jobs=jobs, out_dir=out / name,
                        progress=progress, ray=ray)
    summary = summarise(records, strategies=policies, primary=prep.primary, levels=LEVELS)
    write_outputs(out / name, records=records, summary=summary, plots=False)
    ours = ours_from_records(records, policies=policies, resource=prep.primary)
    return ListResult(name=name, pods=prep.pods, nodes=prep.nodes, gpus=prep.gpus, seeds=seeds,
                      cells=combine(ours, published=published_cells(published, name=name, policies=policies)),
                      published_seeds=sorted(set().union(*(p.seeds.get(name, set()) for p in published.values()))),
                      published_gpus=sorted(set().union(*(p.gpus.get(name, set()) for p in published.values()))))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fgd_paper",
                                description="Run the FGD paper's six policies on each openb pod list and compare "
                                            "with the authors' published results.")
    p.add_argument("--traces", type=Path, default=DEFAULT_TRACES, metavar="DIR",
                   help=f"node list, pod lists and expected_results/ (default {DEFAULT_TRACES}, "
                        "what `make openb` writes)")
    p.add_argument("--seeds", type=_positive_int, default=10, metavar="N", help="seeds 0..N-1 per policy (default 10)")
    p.add_argument("--lists", metavar="A,B", help="pod lists by name, e.g. default,cpu250 (default: every one found)")
    p.add_argument("--policies", metavar="A,B", default=",".join(POLICIES),
                   help=f"lab strategies or the authors' labels (default {','.join(POLICIES)})")
    p.add_argument("--out", type=Path, default=Path("out/fgd-paper"), metavar="DIR",
                   help="runs per list and the plot (default out/fgd-paper)")
    p.add_argument("--jobs", type=_positive_int, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the sweeps as Ray tasks, as `vecsched sim --ray` (no ADDRESS: a local Ray runtime)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout (tables on stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _names(raw: str, what: str) -> list[str]:
    names = [s.strip() for s in raw.split(",") if s.strip()]
    if not names:
        raise PaperInputError(f"{what}: name at least one")
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise PaperInputError(f"{what}: {quote(dup)} is listed twice")
    return names


def _policies(raw: str) -> list[str]:
    from benchmarks.gpu_strategies import VECSCHED_GPU_STRATEGY_NAMES

    known = (*POLICIES, *VECSCHED_GPU_STRATEGY_NAMES)
    out = []
    for n in _names(raw, "--policies"):
        pol = PAPER_POLICIES.get(n, n)
        if pol not in known:
            raise PaperInputError(f"--policies: unknown policy {quote(n)} (expected {', '.join(known)} "
                                  f"or {', '.join(PAPER_POLICIES)})")
        if pol in out:
            raise PaperInputError(f"--policies: {quote(n)} names {pol} a second time")
        out.append(pol)
    return [p for p in known if p in out]  # the paper's order, then vecsched's own (no published figures)


def _inputs(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, Published]]:
    """Lists, policies and published results, all checked before any run starts."""
    traces: Path = args.traces
    if not (traces / NODE_LIST).is_file():
        what = f"no directory {traces}" if not traces.is_dir() else f"no {NODE_LIST} in {traces}"
        raise PaperInputError(f"{what}: run `make openb` first, or pass --traces DIR")
    found = find_lists(traces)
    if not found:
        raise PaperInputError(f"no {POD_LIST_PREFIX}*.csv in {traces}: run `make openb` first, or pass --traces DIR")
    lists = found if args.lists is None else _names(args.lists, "--lists")
    for n in lists:
        if n not in found:
            raise PaperInputError(f"--lists: no pod list {quote(n)} in {traces} (have: {', '.join(found)})")
    published = {m: read_published(traces / EXPECTED_DIR / f) for m, f in PUBLISHED_FILES.items()
                 if (traces / EXPECTED_DIR / f).is_file()}
    return lists, _policies(args.policies), published


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.openb import OpenbError
    from benchmarks.sim.model import SimInputError
    from benchmarks.sim.ray_runner import RayClusterError, RayUsageError
    from benchmarks.sim.sweep import SweepInterrupted
    from benchmarks.strategies import UnknownStrategyError

    args = build_parser().parse_args(argv)
    prog = "fgd_paper"
    try:
        if args.ray is not None:
            from benchmarks.sim.ray_runner import require_ray

            require_ray(address=args.ray)  # before anything is read: a missing package costs one line
        lists, policies, published = _inputs(args)
        prepared = _prepare(traces=args.traces, names=lists, policies=policies)
        if not published:
            print(f"{prog}: note: no published results in {args.traces / EXPECTED_DIR} "
                  f"({', '.join(PUBLISHED_FILES.values())}): vecsched's figures only", file=sys.stderr)
        for m, f in PUBLISHED_FILES.items():
            if published and m not in published:
                print(f"{prog}: note: no {args.traces / EXPECTED_DIR / f}: {m} is shown for vecsched only",
                      file=sys.stderr)
        results = []
        for prep in prepared:
            if not args.quiet:
                print(f"{prog}: {prep.name}: {len(policies)} policies x {args.seeds} seeds into "
                      f"{args.out / prep.name}", file=sys.stderr)
            results.append(_run_list(prep, seeds=args.seeds, out=args.out, jobs=args.jobs, progress=not args.quiet,
                                     published=published, ray=args.ray))
        plot = plot_alloc(results, path=args.out / PLOT_FILE)
    except (PaperInputError, SimInputError, OpenbError, UnknownStrategyError, InputError, RayUsageError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except RayClusterError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except SweepInterrupted as e:
        print(f"{prog}: interrupted: {e.kept} of {e.total} runs of this list are kept in {e.runs_file}; "
              "the same command resumes", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"{prog}: {e.filename or args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    text = format_report(results)
    if args.json:
        print(json.dumps(report_json(results, plot=plot)))
        print(text, file=sys.stderr)
    else:
        print(text)
        print(f"wrote {plot} and the runs under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
