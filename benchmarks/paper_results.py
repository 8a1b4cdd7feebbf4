"""The FGD paper's published results, as its authors ship them with their simulator.

hkust-adsl/kubernetes-scheduler-simulator's ``experiments/analysis/expected_results`` holds,
per experiment (pod list ``workload``, policy ``sc_policy``, inflation ``tune``, ``seed``), a
value at every whole percent 0..130 of arrived GPU request: ``analysis_allo_discrete.csv``
(allocated GPU, % of the cluster's GPUs, with a ``total_gpus`` column) and
``analysis_frag_discrete.csv`` (GPU fragmented against the list's typical pods, % of the
cluster's GPUs). This module reads them, checking every field (a bad one is named by file, line
and column), and gives their mean and std over seeds; ``benchmarks.fgd_paper`` sets vecsched's
runs beside them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from scoring.safe_input import InputError, quote, read_text

__all__ = ["EXPECTED_DIR", "INFLATE", "LEVELS", "MAX_PUBLISHED_BYTES", "MEASURES", "PAPER_POLICIES", "POLICIES",
           "POD_LIST_PREFIX", "PUBLISHED_FILES", "Cells", "PaperInputError", "Published", "Stat", "published_cells",
           "read_published", "stat"]

POD_LIST_PREFIX: Final = "openb_pod_list_"
EXPECTED_DIR: Final = "expected_results"
PUBLISHED_FILES: Final = {"alloc": "analysis_allo_discrete.csv", "frag": "analysis_frag_discrete.csv"}
PAPER_POLICIES: Final = {"01-Random": "Random", "02-DotProd": "DotProduct", "03-GpuClustering": "GpuClustering",
                         "04-GpuPacking": "GpuPacking", "05-BestFit": "BestFit", "06-FGD": "FGD"}
"""The authors' ``sc_policy`` labels and the lab's built-in strategy of each (the paper's order)."""
POLICIES: Final = tuple(PAPER_POLICIES.values())
INFLATE: Final = 1.3
"""The paper's ``tune``: clones until the arrived GPU request is 130% of capacity."""
LEVELS: Final = (100, 130)
"""Arrived GPU request (% of capacity) at which the figures are read: all of it, and the inflated end."""
MEASURES: Final = ("alloc", "frag")
MAX_PUBLISHED_BYTES: Final = 64 * 1024 * 1024
"""The authors' files are under 1 MB each; 64 MiB leaves room for more lists and seeds and still
refuses a file that is not one of them before reading it."""

class PaperInputError(ValueError):
    """Input this command cannot use; the message is one line naming the file, line and column."""


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean and population std over ``n`` seeds (the lab's convention: std 0 for one seed)."""

    mean: float
    std: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean": round(self.mean, 4), "std": round(self.std, 4), "n": self.n}


def stat(values: Sequence[float]) -> Stat | None:
    """``Stat`` of ``values``; None for no values."""
    if not values:
        return None
    a = np.asarray(values, np.float64)
    return Stat(mean=float(a.mean()), std=float(a.std()), n=len(values))


@dataclass(slots=True)
class Published:
    """One measure's published values: (list, policy) -> level -> one value per seed, in file order."""

    values: dict[tuple[str, str], dict[int, list[float]]] = field(default_factory=dict)
    seeds: dict[str, set[int]] = field(default_factory=dict)
    """Per list, the seeds of its rows."""
    gpus: dict[str, set[int]] = field(default_factory=dict)
    """Per list, the ``total_gpus`` its rows name (only ``analysis_allo_discrete.csv`` has the column)."""


def _number(path: str, line: int, column: str, raw: str, *, integer: bool = False) -> float:
    try:
        v = float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise PaperInputError(f"{path}:{line}: column {column}: expected {kind}, got {quote(raw)}") from None
    if not math.isfinite(v) or (integer and not v.is_integer()):
        kind = "an integer" if integer else "a finite number"
        raise PaperInputError(f"{path}:{line}: column {column}: expected {kind}, got {quote(raw)}")
    return v


def read_published(path: Path, *, levels: Sequence[int] = LEVELS, tune: float = INFLATE) -> Published:
    """The values at ``levels`` of one of the authors' ``analysis_*_discrete.csv`` files (columns
    ``workload,sc_policy,tune,seed,[total_gpus,]0..130``), rows of inflation ``tune`` only.

    ``workload`` ``openb_pod_list_<name>`` is list ``<name>``; ``sc_policy`` one of
    ``PAPER_POLICIES``. An empty value (the authors' merge had no sample near that level)
    leaves that seed out of that level. Raises ``PaperInputError`` naming file, line and column.
    """
    p = str(path)
    try:
        text = read_text(path, max_bytes=MAX_PUBLISHED_BYTES)
    except OSError as e:
        raise PaperInputError(f"{p}: {e.strerror or e}") from None
    except InputError as e:
        raise PaperInputError(f"{p}: {e}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise PaperInputError(f"{p}:1: empty file, expected a header workload,sc_policy,tune,seed,0..130") from None
    except csv.Error as e:
        raise PaperInputError(f"{p}:1: {e}") from None
    required = ["workload", "sc_policy", "tune", "seed", *(str(k) for k in levels)]
    missing = [c for c in required if c not in header]
    if missing:
        raise PaperInputError(f"{p}:1: column {missing[0]}: missing (header starts {quote(','.join(header[:6]))})")
    col = {c: header.index(c) for c in required}
    gpus_col = header.index("total_gpus") if "total_gpus" in header else None
    out = Published()
    first: dict[tuple[str, str, int], int] = {}
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise PaperInputError(f"{p}:{line}: expected {len(header)} fields, got {len(values)}")
            row = [v.strip() for v in values]
            workload, policy = row[col["workload"]], row[col["sc_policy"]]
            if not workload:
                raise PaperInputError(f"{p}:{line}: column workload: required")
            if policy not in PAPER_POLICIES:
                raise PaperInputError(f"{p}:{line}: column sc_policy: unknown policy {quote(policy)} "
                                      f"(expected one of {', '.join(PAPER_POLICIES)})")
            if not math.isclose(_number(p, line, "tune", row[col["tune"]]), tune):
                continue  # another experiment's inflation
            seed = int(_number(p, line, "seed", row[col["seed"]], integer=True))
            name = workload.removeprefix(POD_LIST_PREFIX)
            strategy = PAPER_POLICIES[policy]
            if (name, strategy, seed) in first:
                raise PaperInputError(f"{p}:{line}: column seed: a second row for {workload} {policy} seed {seed} "
                                      f"(the first is line {first[name, strategy, seed]})")
            first[name, strategy, seed] = line
            per_level = out.values.setdefault((name, strategy), {k: [] for k in levels})
            for k in levels:
                raw = row[col[str(k)]]
                if raw in ("", "nan", "NaN"):
                    continue
                v = _number(p, line, str(k), raw)
                if not 0.0 <= v <= 100.0:
                    raise PaperInputError(f"{p}:{line}: column {k}: expected a percentage 0..100, got {quote(raw)}")
                per_level[k].append(v)
            out.seeds.setdefault(name, set()).add(seed)
            if gpus_col is not None:
                g = _number(p, line, "total_gpus", row[gpus_col], integer=True)
                if g < 1:
                    raise PaperInputError(f"{p}:{line}: column total_gpus: expected a positive integer, "
                                          f"got {quote(row[gpus_col])}")
                out.gpus.setdefault(name, set()).add(int(g))
    except csv.Error as e:
        raise PaperInputError(f"{p}:{reader.line_num}: {e}") from None
    return out


Cells = dict[str, dict[str, dict[int, Stat | None]]]
"""policy -> measure -> level -> Stat (None: no seed has a value there)."""


def published_cells(published: Mapping[str, Published], *, name: str, policies: Sequence[str],
                    levels: Sequence[int] = LEVELS) -> Cells | None:
    """List ``name``'s published stats per policy, measure and level; None when no file has the list."""
    if not any(pub.seeds.get(name) for pub in published.values()):
        return None
    return {pol: {m: {k: stat(published[m].values.get((name, pol), {}).get(k, [])) if m in published else None
                      for k in levels} for m in MEASURES} for pol in policies}
