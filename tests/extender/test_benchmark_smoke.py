"""benchmarks/extender.py runs end to end (tiny sizes, 20 concurrent clients for 1 s) and prints its JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys


def test_benchmark_json() -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks.extender", "--requests", "20", "--names", "100",
                        "--pods", "200", "--full-nodes", "20", "--clients", "20", "--load-seconds", "1", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["benchmark"] == "extender" and doc["p99_target_ms"] == 50.0
    assert [(x["mode"], x["nodes"]) for x in doc["results"]] == [("names", 100), ("nodes", 20)]
    for x in doc["results"]:
        for verb in ("filter", "prioritize"):
            m = x[verb]
            assert m["requests"] == 18 and 0 < m["p50_ms"] <= m["p99_ms"] <= m["max_ms"]
    load = doc["concurrent"]
    assert (load["clients"], load["nodes"], load["budget_ms"]) == (20, 100, 2000.0)
    # every request got some answer, and each is counted once
    assert load["requests"] == load["answered"] + load["budget_error"] + load["refused_429"] + load["other"] > 0
    assert load["other"] == 0 and 0 < load["p50_ms"] <= load["p99_ms"] <= load["max_ms"]
