"""benchmarks/webhook_bench.py runs end to end at a small size and prints its figures as JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def test_benchmark_json() -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks.webhook_bench", "--concurrency", "5", "--requests", "20",
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["benchmark"], doc["webhook"], doc["concurrency"], doc["requests"]) == ("webhook", "mutate-pods", 5, 20)
    assert 0 < doc["p50_ms"] <= doc["p90_ms"] <= doc["p99_ms"] <= doc["max_ms"]
    assert doc["requests_per_s"] > 0 and doc["server_mean_ms"] > 0 and doc["server_errors"] == []
