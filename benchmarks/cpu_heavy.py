"""A CPU-heavy variant of an openb pod list: its CPU-only pods cloned to ``factor`` x their count.

Weng et al. ("Beware of Fragmentation", ATC '23, Fig. 14) vary the share of
pods that ask for no GPU; CPU-only pods matter to FGD because they use the
CPU that GPU pods need, and a GPU whose node has too little CPU left for the
typical pods counts as fragmented. This module builds such a variant from any
openb pod list (``name,cpu_milli,memory_mib,num_gpu,gpu_milli[,...]``): the
list as it is, then clones of its CPU-only pods (``num_gpu`` 0) appended
until they number ``factor x N`` (rounded half up) for N CPU-only pods. Clone k copies
the (k mod N)-th CPU-only pod of the file and is named
``<name>-cpu-clone-<k>``, so the result is deterministic (no seed): with
factor 2.5 every CPU-only pod appears at least twice and the first half of
them three times. GPU pods and every column are kept; the lab's per-seed
shuffle of ``openb:`` lists mixes the clones in.

Usage (then ``vecsched sim --workload openb:OUT ...``)::

    python -m benchmarks.cpu_heavy SRC.csv OUT.csv [--factor 2.5]

Bad input (a missing column, a non-integer ``num_gpu``, a factor below 1, a
list without CPU-only pods): one line naming the file, the line and the field,
exit 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["DEFAULT_FACTOR", "CpuHeavyError", "cpu_heavy_rows", "write_cpu_heavy", "main"]

DEFAULT_FACTOR: Final = 2.5
"""The issue's variant: CPU-only pods at 2.5 x their count in the default list."""
_REQUIRED: Final = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")


class CpuHeavyError(ValueError):
    """Bad input, as one line: ``<file>:<line>: <field>: <problem>``."""


def cpu_heavy_rows(rows: Sequence[dict[str, str]], *, factor: float = DEFAULT_FACTOR,
                   where: str = "<rows>") -> list[dict[str, str]]:
    """``rows`` followed by clones of its CPU-only rows, ``factor x N`` of those in all (half up).

    Line numbers in errors count the header as line 1 (the first row is line 2)."""
    if not factor >= 1.0:
        raise CpuHeavyError(f"--factor: expected a number >= 1, got {factor}")
    cpu_only: list[dict[str, str]] = []
    for i, row in enumerate(rows):
        raw = (row.get("num_gpu") or "").strip()
        try:
            gpus = int(raw)
        except ValueError:
            raise CpuHeavyError(f"{where}:{i + 2}: num_gpu: expected an integer, got {raw!r}") from None
        if gpus == 0:
            cpu_only.append(row)
    if not cpu_only:
        raise CpuHeavyError(f"{where}: num_gpu: no CPU-only pod (num_gpu 0) to clone")
    extra = int(factor * len(cpu_only) + 0.5) - len(cpu_only)  # rounded half up
    out = [dict(r) for r in rows]
    for k in range(extra):
        clone = dict(cpu_only[k % len(cpu_only)])
        clone["name"] = f"{clone['name']}-cpu-clone-{k}"
        out.append(clone)
    return out


def write_cpu_heavy(src: str | Path, dst: str | Path, *, factor: float = DEFAULT_FACTOR) -> tuple[int, int]:
    """Write the variant of the pod list ``src`` to ``dst``; returns (pods, CPU-only pods) written."""
    where = str(src)
    try:
        text = Path(src).read_text(encoding="utf-8")
    except OSError as e:
        raise CpuHeavyError(f"{where}: {e.strerror or e}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or ())
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise CpuHeavyError(f"{where}:1: {missing[0]}: required column missing (have: {', '.join(header) or 'none'})")
    rows = cpu_heavy_rows(list(reader), factor=factor, where=where)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    try:
        Path(dst).write_text(buf.getvalue(), encoding="utf-8")
    except OSError as e:
        raise CpuHeavyError(f"{dst}: {e.strerror or e}") from None
    return len(rows), sum(1 for r in rows if int(r["num_gpu"]) == 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_heavy",
                                     description="Write an openb pod list with its CPU-only pods cloned to FACTOR x their count.")
    parser.add_argument("src", help="an openb pod list (CSV)")
    parser.add_argument("dst", help="where to write the variant (CSV)")
    parser.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                        help=f"CPU-only pods in the result per CPU-only pod of SRC (default {DEFAULT_FACTOR})")
    args = parser.parse_args(argv)
    try:
        pods, cpu = write_cpu_heavy(args.src, args.dst, factor=args.factor)
    except CpuHeavyError as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: {pods} pods, {cpu} of them CPU-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
