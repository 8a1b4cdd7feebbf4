"""What a sweep tells a person: a terminal table, a CSV, a JSON summary and plots.

``summarise`` turns the per-(strategy, seed) records into the summary whose
shape scripts depend on (``{"strategies": {name: {"placed": {"mean", "std"},
"failed": ..., "alloc_ratio": {res: {"mean", "std"}}, "alloc_curve": {res:
{"<k>": mean ratio}}}}}``, plus extra keys -- ``"preemptions"`` and ``"evicted"``,
``{"mean", "std"}``, when the runs preempted; ``"groups": {"total", "placed",
"failed"}`` (each ``{"mean", "std"}``) and ``"gpus_held_by_partial_groups"``
(``{"mean", "std"}``) when the workload has pod groups; ``"alloc_at"`` and, on a GPU
cluster whose primary resource is ``gpu``, ``"frag_at"``, ``{res: {"<k>": {"mean", "std"}}}``,
the curves at 100% and at the ``--inflate`` level of arrived demand of the primary
resource, when the sweep inflates); ``write_outputs`` writes it with
the CSV of every run and three PNGs sized for a slide: allocation against
arrived demand per strategy, failed pods, and stranded capacity. Plots use
matplotlib's Agg backend (no display needed). Standard deviations are
population std over seeds (0 for one seed).

With ``--inflate X`` the table shows the primary resource's allocation (and
fragmentation) at 100% and at X of arrived demand -- the reading of Weng et
al. (ATC '23) -- in place of its end-state column, which the JSON keeps as
``alloc_ratio``: inflating stops at X, so the end state is the state at X
unless the workload alone asks for more. The other resources keep their
end-state columns (their own arrived demand is not what was inflated).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["SUMMARY_FILE", "RUNS_CSV", "CURVE_CSV", "PLOTS", "format_table", "inflate_levels", "summarise",
           "write_outputs"]

SUMMARY_FILE: Final = "summary.json"
RUNS_CSV: Final = "runs.csv"
CURVE_CSV: Final = "alloc_curve.csv"
PLOTS: Final = ("alloc_curve.png", "failed.png", "stranded.png")


def _stat(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "std": 0.0}
    a = np.asarray(values, np.float64)
    return {"mean": round(float(a.mean()), 4), "std": round(float(a.std()), 4)}


def _curve_mean(curves: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean ratio per whole percent, over the seeds whose arrived demand reached it."""
    keys = sorted({int(k) for c in curves for k in c})
    return {str(k): round(float(np.mean([c[str(k)] for c in curves if str(k) in c])), 4) for k in keys}


def inflate_levels(inflate: float | None) -> tuple[int, ...]:
    """The whole percents of arrived demand the report reads the curves at: 100 and
    ``inflate`` x 100 (rounded down, so that every inflated run reaches it), when inflating.

    >>> inflate_levels(1.3), inflate_levels(1.0), inflate_levels(None)
    ((100, 130), (100,), ())
    """
    if inflate is None:
        return ()
    # 1.15 * 100 is 114.99999999999999 in binary floating point: the epsilon makes it 115.
    level = math.floor(inflate * 100 + 1e-9)
    return tuple(sorted({100, level} if level >= 1 else {100}))


def _curve_at(curves: Sequence[Mapping[str, float]], levels: Sequence[int]) -> dict[str, dict[str, float]]:
    """Mean and std over seeds of the curves at each level some seed's arrived demand reached."""
    return {str(k): _stat([c[str(k)] for c in curves if str(k) in c]) for k in levels
            if any(str(k) in c for c in curves)}


def summarise(records: Sequence[Mapping[str, Any]], *, strategies: Sequence[str],
              bounds: Mapping[int, Mapping[str, Any]] | None = None, primary: str | None = None,
              levels: Sequence[int] = ()) -> dict[str, Any]:
    """The JSON summary: per strategy, mean and std over seeds.

    ``bounds`` maps a seed to its MILP bound (``BoundResult.to_json()``);
    then each strategy gets ``bound_ratio`` = mean over seeds of its
    objective / that seed's bound. ``levels`` (``inflate_levels``) with the
    ``primary`` resource add ``alloc_at`` (and ``frag_at`` when the runs measure
    the primary resource's fragmentation): its curves at those levels.
    """
    out: dict[str, Any] = {}
    for name in strategies:
        runs = [r for r in records if r["strategy"] == name]
        resources = list(runs[0]["capacity"]) if runs else []
        entry: dict[str, Any] = {
            "placed": _stat([r["placed"] for r in runs]),
            "failed": _stat([r["failed"] for r in runs]),
            "alloc_ratio": {res: _stat([r["alloc_ratio"][res] for r in runs]) for res in resources},
            "alloc_curve": {res: _curve_mean([r["alloc_curve"][res] for r in runs]) for res in resources},
            "stranded": {res: _stat([r["stranded"][res] for r in runs]) for res in resources},
            "empty_nodes": _stat([r["empty_nodes"] for r in runs]),
            "fragmentation": {res: _stat([r["fragmentation"][res] for r in runs if res in r.get("fragmentation", {})])
                              for res in (runs[0].get("fragmentation") or {} if runs else {})},
            "frag_curve": {res: _curve_mean([r["frag_curve"][res] for r in runs])
                           for res in (runs[0].get("frag_curve") or {} if runs else {})},
            "decision_us": _stat([r["decision_us"] for r in runs]),
            "seeds": len(runs),
        }
        if levels and primary is not None and runs and primary in runs[0]["alloc_curve"]:
            entry["alloc_at"] = {primary: _curve_at([r["alloc_curve"][primary] for r in runs], levels)}
            if primary in (runs[0].get("frag_curve") or {}):
                entry["frag_at"] = {primary: _curve_at([r["frag_curve"][primary] for r in runs], levels)}
        if bounds:
            ratios = []
            for r in runs:
                b = bounds.get(r["seed"])
                if not b or not b.get("value"):
                    continue
                obj = b["objective"]
                # Pods still on a node at the end (an evicted pod was placed, and is gone).
                got = r["placed"] - r.get("evicted", 0) if obj == "pods" else r["alloc_ratio"][obj] * r["capacity"][obj] / 100
                ratios.append(got / b["value"])
            entry["bound_ratio"] = _stat(ratios) if ratios else None
        if any("preemptions" in r for r in runs):
            entry["preemptions"] = _stat([r.get("preemptions", 0) for r in runs])
            entry["evicted"] = _stat([r.get("evicted", 0) for r in runs])
        if any("groups" in r for r in runs):
            entry["groups"] = {k: _stat([r["groups"][k] for r in runs if "groups" in r])
                               for k in ("total", "placed", "failed")}
            entry["gpus_held_by_partial_groups"] = _stat([r["gpus_held_by_partial_groups"] for r in runs
                                                          if "groups" in r])
        out[name] = entry
    summary: dict[str, Any] = {"strategies": out}
    if bounds:
        summary["bounds"] = {str(s): b for s, b in sorted(bounds.items())}
    return summary


def format_table(summary: Mapping[str, Any]) -> str:
    """A fixed-width table, one row per strategy, ``mean ± std`` over seeds."""
    strategies = summary["strategies"]
    resources: list[str] = []
    for s in strategies.values():
        resources += [r for r in s["alloc_ratio"] if r not in resources]
    with_bound = any(s.get("bound_ratio") for s in strategies.values())

    def pm(stat: Mapping[str, float] | None, digits: int = 1) -> str:
        if not stat:
            return "-"
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"

    fragmented: list[str] = []
    for s in strategies.values():
        fragmented += [r for r in s.get("fragmentation", {}) if r not in fragmented]
    # With --inflate: a resource's curve at each level replaces its end-state column.
    alloc_at, frag_at = _levels(strategies, "alloc_at"), _levels(strategies, "frag_at")

    def at(s: Mapping[str, Any], key: str, res: str, levels: Mapping[str, list[str]]) -> list[str]:
        return [pm(s.get(key, {}).get(res, {}).get(k)) for k in levels[res]]

    preempting = ["preemptions", "evicted"] if any("preemptions" in s for s in strategies.values()) else []
    grouped = any("groups" in s for s in strategies.values())
    gang_cols = ["groups placed", "groups failed", "partial-group GPUs"] if grouped else []
    header = ["strategy", "placed", "failed"] + preempting + gang_cols
    header += [c for r in resources for c in ([f"alloc {r} @{k}%" for k in alloc_at[r]] if r in alloc_at
                                              else [f"alloc {r} %"])]
    header += [f"stranded {r} %" for r in resources]
    header += [c for r in fragmented for c in ([f"frag {r} @{k}%" for k in frag_at[r]] if r in frag_at
                                               else [f"frag {r} %"])]
    header += ["empty nodes", "us/decision"] + (["vs bound"] if with_bound else [])
    rows = [header]
    for name, s in strategies.items():
        row = [name, pm(s["placed"]), pm(s["failed"])] + [pm(s.get(k)) for k in preempting]
        if grouped:
            g = s.get("groups") or {}
            row += [pm(g.get("placed")), pm(g.get("failed")), pm(s.get("gpus_held_by_partial_groups"))]
        for r in resources:
            row += at(s, "alloc_at", r, alloc_at) if r in alloc_at else [pm(s["alloc_ratio"].get(r))]
        row += [pm(s["stranded"].get(r)) for r in resources]
        for r in fragmented:
            row += at(s, "frag_at", r, frag_at) if r in frag_at else [pm(s.get("fragmentation", {}).get(r))]
        row += [pm(s["empty_nodes"]), pm(s["decision_us"], 0)]
        if with_bound:
            row.append(pm(s.get("bound_ratio"), 3))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _levels(strategies: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, list[str]]:
    """Resource -> the levels (``"100"``, ``"130"``) of ``key`` (``alloc_at``/``frag_at``) any strategy has,
    in increasing order."""
    out: dict[str, set[str]] = {}
    for s in strategies.values():
        for res, by_level in (s.get(key) or {}).items():
            out.setdefault(res, set()).update(by_level)
    return {res: sorted(ks, key=int) for res, ks in out.items() if ks}


def _write_csv(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    resources: list[str] = []
    for r in records:
        resources += [x for x in r["capacity"] if x not in resources]
    cols = ["strategy", "seed", "pods", "placed", "failed", "retried_placed", "empty_nodes", "nodes",
            "decision_us", "seconds"]
    # Runs that preempted add their counts as the last columns.
    preempting = ["preemptions", "evicted"] if any("preemptions" in r for r in records) else []
    # Runs of a workload with pod groups add theirs after those.
    grouped = ["groups_total", "groups_placed", "groups_failed", "gpus_held_by_partial_groups"] \
        if any("groups" in r for r in records) else []
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + [f"alloc_{r}_pct" for r in resources] + [f"stranded_{r}_pct" for r in resources]
                   + preempting + grouped)
        for r in records:
            g = r.get("groups") or {}
            w.writerow([r[c] if not isinstance(r[c], float) else round(r[c], 4) for c in cols]
                       + [round(r["alloc_ratio"].get(x, 0.0), 4) for x in resources]
                       + [round(r["stranded"].get(x, 0.0), 4) for x in resources]
                       + [r.get(c, 0) for c in preempting]
                       + ([g.get("total", 0), g.get("placed", 0), g.get("failed", 0),
                           round(r.get("gpus_held_by_partial_groups") or 0.0, 4)] if grouped else []))


def _plots(out_dir: Path, summary: Mapping[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = summary["strategies"]
    names = list(strategies)
    resources: list[str] = []
    for s in strategies.values():
        resources += [r for r in s["alloc_curve"] if r not in resources]
    paths = []

    # Allocation ratio against arrived demand, one panel per resource.
    fig, axes = plt.subplots(1, max(1, len(resources)), figsize=(6 * max(1, len(resources)), 4.5), squeeze=False)
    for ax, res in zip(axes[0], resources or ["cpu"]):
        top = 100.0
        for name in names:
            curve = strategies[name]["alloc_curve"].get(res, {})
            if curve:
                xs = [int(k) for k in curve]
                ax.plot(xs, list(curve.values()), label=name, linewidth=1.8)
                top = max(top, float(max(xs)))
        ax.plot([0, 100], [0, 100], color="0.7", linestyle="--", linewidth=1, label="ideal")
        ax.set_xlim(0, top)
        ax.set_ylim(0, 105)
        ax.set_xlabel(f"arrived {res} demand (% of capacity)")
        ax.set_ylabel(f"allocated {res} (% of capacity)")
        ax.set_title(f"{res} allocation")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / PLOTS[0])
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    # Failed pods, mean ± std over seeds.
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 4.5))
    means = [strategies[n]["failed"]["mean"] for n in names]
    stds = [strategies[n]["failed"]["std"] for n in names]
    ax.bar(names, means, yerr=stds, capsize=4, color="tab:red", alpha=0.8)
    ax.set_ylabel("failed pods (mean ± std over seeds)")
    ax.set_title("pods that fit nowhere")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(out_dir / PLOTS[1])
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    # Stranded capacity per resource, grouped by strategy.
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(names) + 2), 4.5))
    width = 0.8 / max(1, len(resources))
    x = np.arange(len(names))
    for j, res in enumerate(resources):
        vals = [strategies[n]["stranded"].get(res, {"mean": 0.0})["mean"] for n in names]
        errs = [strategies[n]["stranded"].get(res, {"std": 0.0})["std"] for n in names]
        ax.bar(x + j * width - 0.4 + width / 2, vals, width, yerr=errs, capsize=3, label=res)
    ax.set_xticks(x, names)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.set_ylabel("stranded capacity (% of cluster capacity)")
    ax.set_title("free capacity no typical pod can use")
    if resources:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    paths.append(out_dir / PLOTS[2])
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_outputs(out_dir: Path, *, records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                  plots: bool = True) -> list[Path]:
    """Write summary.json, runs.csv, alloc_curve.csv and the PNGs into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / SUMMARY_FILE, out_dir / RUNS_CSV, out_dir / CURVE_CSV]
    written[0].write_text(json.dumps(summary, indent=2) + "\n")
    _write_csv(written[1], records)
    with written[2].open("w", newline="") as f:  # the mean curves, for people who plot their own
        w = csv.writer(f)
        w.writerow(["strategy", "resource", "arrived_pct", "alloc_pct"])
        for name, s in summary["strategies"].items():
            for res, curve in s["alloc_curve"].items():
                w.writerows([name, res, k, v] for k, v in curve.items())
    if plots:
        written += _plots(out_dir, summary)
    return written
