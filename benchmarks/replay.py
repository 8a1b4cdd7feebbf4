"""How fast the strategy lab replays: pods per second through a whole replay.

A 5,000-node cluster (benchmarks.clusters.random_nodes: four sizes, taints,
images) and a 100,000-pod synthetic workload (Poisson arrivals, exponential
run times, three request classes) are replayed with the default profile;
the figure is pods / wall-clock seconds of ``benchmarks.sim.replay.replay``
(every decision, assume, departure and metric included). ``--plugins``
also times each plugin's filter and score calls, to show where time goes.

    python -m benchmarks.replay [--nodes 5000] [--pods 100000] [--strategy default] [--plugins] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.clusters import random_nodes
from benchmarks.sim.replay import replay, reseed_plugins
from benchmarks.sim.synthetic import generate, parse_synthetic
from benchmarks.strategies import builtin_profile
from scoring.framework import Profile
from scoring.objects import node_from_json

# Sized so that a 5,000-node cluster runs at roughly 50-70% cpu: the
# interesting regime, where nodes are partly full and every filter has work.
_SPEC = {
    "kind": "SyntheticWorkload", "seed": 1, "pods": 100_000,
    "arrivals": {"rate": 100}, "durations": {"distribution": "exponential", "mean": 600},
    "classes": [
        {"name": "web", "share": 0.6, "cpu": ["100m", "250m", "500m", "1"], "memory": ["128Mi", "256Mi", "512Mi", "1Gi"]},
        {"name": "cache", "share": 0.3, "cpu": ["500m", "1"], "memory": {"uniform": ["2Gi", "8Gi"]}},
        {"name": "batch", "share": 0.1, "cpu": ["2", "4", "8"], "memory": ["8Gi", "16Gi"],
         "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}]},
    ],
}


def _timed(times: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            times[key] += time.perf_counter() - t0
    return wrapper


def instrument(profile: Profile) -> dict[str, float]:
    """Wrap every plugin's extension-point methods with timers; returns the running totals."""
    times: dict[str, float] = defaultdict(float)
    plugins: dict[int, Any] = {id(p): p for p in (*profile.prefilters, *profile.filters, *(p for p, _ in profile.scorers))}
    for p in plugins.values():
        for method in ("prefilter", "filter", "score", "normalize"):
            fn = getattr(p, method, None)
            if fn is not None:
                setattr(p, method, _timed(times, f"{p.name}.{method}", fn))
    return times


def bench(*, nodes: int, pods: int, strategy: str, seed: int, plugins: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    cluster = [node_from_json(n) for n in random_nodes(rng, nodes)]
    t0 = time.perf_counter()
    workload = generate(parse_synthetic({**_SPEC, "pods": pods}, source="<replay benchmark>"), seed=seed)
    gen_s = time.perf_counter() - t0
    profile = builtin_profile(strategy).build(seed=seed)
    reseed_plugins(profile, seed)
    times = instrument(profile) if plugins else {}
    cpu0 = time.process_time()
    m = replay(nodes=cluster, pods=workload, profile=profile)
    cpu_s = time.process_time() - cpu0
    out: dict[str, Any] = {
        "nodes": nodes, "pods": pods, "strategy": strategy, "placed": m.placed, "failed": m.failed,
        "replay_s": round(m.seconds, 2), "pods_per_s": round(pods / m.seconds, 1),
        # CPU time of this process: the figure to trust when other work shares the machine.
        "replay_cpu_s": round(cpu_s, 2), "pods_per_cpu_s": round(pods / max(cpu_s, 1e-9), 1),
        "us_per_decision": round(m.decision_us, 1),
        # Everything but Profile.schedule: assume, departures, metrics, the event loop itself.
        "replay_overhead_us_per_pod": round((m.seconds - m.decision_us * m.decisions / 1e6) / max(1, pods) * 1e6, 1),
        "generate_s": round(gen_s, 2),
        "alloc_ratio": {k: round(v, 1) for k, v in m.alloc_ratio.items()},
    }
    if plugins:
        out["plugin_us_per_decision"] = {k: round(v / max(1, m.decisions) * 1e6, 1)
                                         for k, v in sorted(times.items(), key=lambda kv: -kv[1])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=100_000)
    ap.add_argument("--strategy", default="default")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plugins", action="store_true", help="time each plugin's filter/score calls")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = bench(nodes=a.nodes, pods=a.pods, strategy=a.strategy, seed=a.seed, plugins=a.plugins)
    if a.json:
        print(json.dumps({"benchmark": "replay", **r}, indent=2))
        return
    print(f"{r['nodes']} nodes, {r['pods']} pods, strategy {r['strategy']}: {r['pods_per_s']} pods/s "
          f"({r['pods_per_cpu_s']} per CPU-second) "
          f"({r['us_per_decision']} us/decision + {r['replay_overhead_us_per_pod']} us replay overhead per pod, "
          f"replay {r['replay_s']} s, placed {r['placed']}, failed {r['failed']}, "
          f"alloc {r['alloc_ratio']})")
    for k, v in r.get("plugin_us_per_decision", {}).items():
        print(f"  {k:<45} {v:>8} us/decision")


if __name__ == "__main__":
    main()
