"""A fixed-seed slice of the hostile-input harness (``benchmarks.fuzz``): every reader of
outside documents answers each input with a result or one clear line -- no traceback (any
exception but a ``ValueError`` subclass), no hang, no error line over 300 characters."""

from __future__ import annotations

import pytest

from benchmarks.fuzz import MAX_LINE, TARGETS, Report, load_seeds, run

ROUNDS = 200
INPUTS = ROUNDS * sum(weight for _, weight in TARGETS.values())
"""Inputs in the slice: 200 rounds of the 13-input plan (explain, snapshot and config 2 each,
watch 3, webhook, extender, metrics and sim 1) = 2,600, about 15 s on a slow machine."""
SEED = 20261204


@pytest.fixture(scope="module")
def report() -> Report:
    return run(inputs=INPUTS, seed=SEED)


def test_no_traceback_no_hang_no_long_line(report: Report) -> None:
    shown = "\n\n".join(report.shown)
    assert (report.tracebacks, report.hangs, report.long_lines) == (0, 0, 0), shown
    assert report.longest <= MAX_LINE
    assert report.inputs == INPUTS == report.errors + report.results


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_reader_is_reached_and_answers_both_ways(report: Report, target: str) -> None:
    """Each target gets its share (200 rounds times its weight) and sees both outcomes: some
    mutations leave a readable document (a result), most do not (a clear error), so the slice
    exercises the readers rather than a parser in front of them."""
    counts = report.by_target[target]
    assert counts["inputs"] == ROUNDS * TARGETS[target][1]
    assert counts["results"] > 0 and counts["errors"] > 0, counts


def test_the_seeds_are_real_objects_of_every_kind_read() -> None:
    seeds = load_seeds()
    for kind in ("Pod", "Node", "Namespace", "Service", "PodDisruptionBudget", "PodGroup", "PriorityClass",
                 "PersistentVolume", "PersistentVolumeClaim", "StorageClass", "CSINode", "CSIStorageCapacity",
                 "ConfigMap", "KubeSchedulerConfiguration"):
        assert seeds.of(kind), kind
    assert seeds.snapshots and seeds.configs
