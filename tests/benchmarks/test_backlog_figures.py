"""The backlog benchmark's arithmetic: drain rate, per-pod CPU, and the ratios it reports.

``python -m benchmarks.e2e --backlog`` states targets as ratios of these figures
(vecsched / baseline drain rate, scheduler CPU per pod / one decision, batched /
unbatched drain rate); a wrong interval count or a swapped ratio would misreport
them, so each is checked here on worked numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.e2e import UNBATCHED_CONFIG, backlog_ratios, drain_rate, per_pod_ms, ratio, unbatched_config_problem


@pytest.mark.parametrize(("bound", "first", "last", "expected"), [
    # 5 binds from t=1.0 to t=3.0: the first starts the clock, 4 follow in 2 s -> 2.0 pods/s
    pytest.param(5, 1.0, 3.0, 2.0, id="four-intervals"),
    # 4,000 binds over 8 s -> 3,999 / 8 = 499.875 pods/s
    pytest.param(4000, 10.0, 18.0, 499.875, id="backlog"),
    # one bind: no interval to measure -> 0.0
    pytest.param(1, 5.0, 5.0, 0.0, id="one-pod"),
    # all at the same instant (coarse clock): no time passed -> 0.0, not a division by zero
    pytest.param(3, 2.0, 2.0, 0.0, id="no-time"),
])
def test_drain_rate(bound: int, first: float, last: float, expected: float) -> None:
    assert drain_rate(bound=bound, first=first, last=last) == pytest.approx(expected)


@pytest.mark.parametrize(("seconds", "pods", "expected"), [
    pytest.param(2.0, 4000, 0.5, id="backlog"),  # 2 CPU s / 4,000 pods = 0.5 ms each
    pytest.param(0.3, 3, 100.0, id="few"),  # 0.3 s / 3 = 100 ms
    pytest.param(1.0, 0, 0.0, id="no-pods"),  # nothing bound: 0, not a division by zero
])
def test_per_pod_ms(seconds: float, pods: int, expected: float) -> None:
    assert per_pod_ms(seconds=seconds, pods=pods) == pytest.approx(expected)


@pytest.mark.parametrize(("num", "den", "expected"), [
    pytest.param(1500.0, 300.0, 5.0, id="five-times"),  # 1500 / 300
    pytest.param(0.45, 0.3, 1.5, id="rounded"),  # 0.45 / 0.3 = 1.5 (1.4999... rounded to 0.01)
    pytest.param(2.0, 3.0, 0.67, id="two-decimals"),  # 0.666... -> 0.67
    pytest.param(None, 3.0, None, id="run-not-made"),
    pytest.param(3.0, 0.0, None, id="zero-denominator"),
])
def test_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert ratio(num, den) == expected


@pytest.mark.parametrize(("unbatched_rate", "unbatched_cpu", "expected"), [
    # baseline 250 pods/s, batched 1500, unbatched 600; batched CPU 0.6 ms/pod, unbatched 0.9,
    # one decision 0.4 ms -> 1500/250 = 6.0, 0.6/0.4 = 1.5, 0.9/0.4 = 2.25, 1500/600 = 2.5
    pytest.param(600.0, 0.9, {"drain_vs_baseline": 6.0, "cpu_per_pod_vs_decision": 1.5,
                              "unbatched_cpu_per_pod_vs_decision": 2.25, "batched_vs_unbatched_drain": 2.5},
                 id="all-runs"),
    # the unbatched run could not be made: its two ratios are None, the others stand
    pytest.param(None, None, {"drain_vs_baseline": 6.0, "cpu_per_pod_vs_decision": 1.5,
                              "unbatched_cpu_per_pod_vs_decision": None, "batched_vs_unbatched_drain": None},
                 id="no-unbatched"),
])
def test_backlog_ratios(unbatched_rate: float | None, unbatched_cpu: float | None,
                        expected: dict[str, float | None]) -> None:
    assert backlog_ratios(baseline_pods_per_s=250.0, batched_pods_per_s=1500.0, unbatched_pods_per_s=unbatched_rate,
                          batched_cpu_ms_per_pod=0.6, unbatched_cpu_ms_per_pod=unbatched_cpu,
                          decision_ms=0.4) == expected


def test_unbatched_config_is_a_valid_document_but_for_the_batching_field(tmp_path: Path) -> None:
    """The file differs from a valid one only by ``vecsched.io/batching``: it loads, or the one
    problem named is that field (before vecsched knows it)."""
    path = tmp_path / "unbatched.yaml"
    path.write_text(UNBATCHED_CONFIG)
    problem = unbatched_config_problem(path)
    assert problem is None or "vecsched.io/batching: unknown field" in problem
    path.write_text(UNBATCHED_CONFIG.replace("  vecsched.io/batching: false\n", ""))
    assert unbatched_config_problem(path) is None
