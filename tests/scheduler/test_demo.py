"""``vecsched demo`` runs as a user runs it: its workload objects become pods, placed and summarised.

At a twentieth of its size: web 60, api 30, cache 8 (a StatefulSet), batch 25
(a Job), nightly-report 10 (a Job that finishes), trainer 16, node-agent 68
(a DaemonSet, one per node), too-big 3 and lost 2 (which cannot be placed):
222 pods, of which 5 stay pending.
"""

from __future__ import annotations

import re
import subprocess
import sys

from scheduler.demo_workload import DEMO_SHAPES, expected_pods


def test_demo_at_small_scale() -> None:
    # 60 + 30 + 8 + 25 + 10 + 16 + 68 + 3 + 2 = 222 (replica counts above 20 scaled by 0.05, rounded)
    assert expected_pods(scale=0.05, nodes=sum(s.count for s in DEMO_SHAPES)) == 222
    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", "demo", "--scale", "0.05", "--timeout", "120"],
                          capture_output=True, text=True, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Traceback" not in proc.stderr
    for line in ("Deployment   web             60/60 ready", "StatefulSet  cache           8/8 ready",
                 "Job          nightly-report  Complete, 10/10 succeeded", "DaemonSet    node-agent      68/68 ready",
                 "Deployment   too-big         0/3 ready"):
        assert line in out, out
    # every pod but the 5 unplaceable ones is bound: 222 - 5 = 217
    assert re.search(r"Bound 217 pods in [\d.]+ s", out), out
    assert "Pods left pending: 5" in out and "64 Insufficient cpu." in out
