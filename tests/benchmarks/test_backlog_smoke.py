"""``python -m benchmarks.e2e --backlog`` end to end, small: every scheduler drains its backlog.

The full run takes a minute at 2,000 nodes; this one (5 nodes, 200 pods) proves the wiring --
three fresh API servers, the baseline and vecsched started as processes, the decision timed
in-process -- and that the printed ratios are the ratios of the printed figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_backlog_json() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.e2e", "--backlog", "--nodes", "5", "--pods", "200", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (r,) = json.loads(proc.stdout)["results"]
    runs = [run for run in r["runs"].values() if run is not None]
    # the baseline and vecsched always run; the unbatched profile when vecsched knows the field
    assert [run["scheduler"] for run in runs][:2] == ["baseline", "vecsched"]
    assert (r["runs"]["vecsched_unbatched"] is None) == (r["unbatched_unavailable"] is not None)
    for run in runs:
        # 200 pods bound, each scheduler used CPU after readiness (/proc counts it in 10 ms ticks:
        # at ~0.4 ms a pod, 20 pods could drain within one tick and read as none), the API
        # server served them
        assert run["pods"] == 200 and run["pods_per_s"] > 0 and run["drain_s"] > 0
        assert run["scheduler_cpu_ms_per_pod"] > 0 and run["apiserver_cpu_ms_per_pod"] > 0
        # counted from process start includes start-up: never less than from readiness
        assert run["scheduler_cpu_ms_per_pod_from_start"] >= run["scheduler_cpu_ms_per_pod"]
    base, vec = r["runs"]["baseline"], r["runs"]["vecsched"]
    assert r["ratios"]["drain_vs_baseline"] == round(vec["pods_per_s"] / base["pods_per_s"], 2)
    assert r["ratios"]["cpu_per_pod_vs_decision"] == round(vec["scheduler_cpu_ms_per_pod"] / r["decision"]["ms"], 2)
