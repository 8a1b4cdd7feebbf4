"""``vecsched sim --preemption``: pods that fit nowhere evict pods of lower priority as
DefaultPreemption plans it; priorities come from the workload (PriorityClasses,
spec.priority, a CSV column); the reports gain ``preemptions`` and ``evicted``, and
nothing changes without the flag."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import node, write

from benchmarks.sim.loaders import open_workload
from benchmarks.sim.model import SimInputError, SimPod
from benchmarks.sim.replay import Event, replay
from benchmarks.sim.sweep import SweepOptions, _digest, run_key, without_preemption
from benchmarks.strategies import builtin_profile
from scheduler.cli import main
from scoring.objects import NodeInfo, pod_from_json

ROOT = Path(__file__).resolve().parents[2]
LOW, HIGH = 1, 100

# Two nodes of 4 cpu. Eight 1-cpu pods of class low fill them at t=0 (FirstFit: four on
# each); three 3-cpu pods of class high arrive at t=10.
#   high-0: no node has 3 cpu free. On either node the dry run removes its four low pods
#           (4 free), gives one back (1 + 3 = 4 fits) and not a second (2 + 3 > 4): three
#           victims. Placed there: 3 high + 1 low = 4 cpu.
#   high-1: that node's only lower-priority pod frees 1 cpu (1 < 3): not a candidate; the
#           other node gives three victims as above.
#   high-2: both nodes hold 3 high + 1 low; without the low pod 1 cpu is free (< 3): fails.
# With --preemption: preemptions 2, evicted 3 + 3 = 6, placed 8 + 2 = 10 (an evicted pod
# was placed), failed 1. Without: the three high pods fail; placed 8, failed 3.
CLUSTER = "- {count: 2, cpu: 4, memory: 16Gi}\n"
_CLASSES = """\
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 1
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 100
"""
_POD = """\
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: w, annotations: {{vecsched.io/arrival-seconds: "{at}"}}}}
spec:
  priorityClassName: {cls}
  containers: [{{name: c, resources: {{requests: {{cpu: "{cpu}", memory: 1Gi}}}}}}]
"""
WORKLOAD = _CLASSES + "".join(_POD.format(name=f"low-{i}", at=0, cls="low", cpu=1) for i in range(8)) + \
    "".join(_POD.format(name=f"high-{i}", at=10, cls="high", cpu=3) for i in range(3))
NEW_KEYS = {"preemptions", "evicted"}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path / "cluster.yaml", CLUSTER), write(tmp_path / "workload.yaml", WORKLOAD)


def _sim(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sim", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- end to end ---------------------------------------------------------------------------------


def test_high_priority_pods_preempt_through_the_command(inputs: tuple[str, str], tmp_path: Path) -> None:
    cluster, workload = inputs

    def run(*extra: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "scheduler.cli", "sim", "--cluster", cluster,
                               "--workload", workload, "--strategies", "FirstFit,default", "--seeds", "2",
                               "--jobs", "1", "--no-plots", "--out", str(tmp_path / f"o{len(extra)}"), "--json",
                               *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        summary: dict[str, Any] = json.loads(proc.stdout)
        return summary

    with_flag, without = run("--preemption"), run()
    for name in ("FirstFit", "default"):
        on, off = with_flag["strategies"][name], without["strategies"][name]
        # The arithmetic is in the comment above CLUSTER; both seeds give the same counts.
        assert on["placed"] == {"mean": 10.0, "std": 0.0} and on["failed"] == {"mean": 1.0, "std": 0.0}
        assert on["preemptions"] == {"mean": 2.0, "std": 0.0} and on["evicted"] == {"mean": 6.0, "std": 0.0}
        assert off["placed"] == {"mean": 8.0, "std": 0.0} and off["failed"] == {"mean": 3.0, "std": 0.0}
        # The existing keys stay; the new ones come only with --preemption.
        assert set(on) - set(off) == NEW_KEYS and not NEW_KEYS & set(off)
        # Both end full: 3 high + 1 low, or 4 low, on each node: 8 of 8 cpu.
        assert on["alloc_ratio"]["cpu"]["mean"] == off["alloc_ratio"]["cpu"]["mean"] == 100.0
    assert with_flag["workload"]["preemption"] is True and "preemption" not in without["workload"]


def test_table_and_csv_columns(inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster, workload = inputs
    code, out, _ = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit",
                        "--jobs", "1", "--no-plots", "--out", str(tmp_path / "on"), "--preemption")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:5] == ["strategy", "placed", "failed", "preemptions", "evicted"]
    assert out.splitlines()[2].split()[:13] == ["FirstFit", "10.0", "±", "0.0", "1.0", "±", "0.0",
                                                "2.0", "±", "0.0", "6.0", "±", "0.0"]
    rows = (tmp_path / "on" / "runs.csv").read_text().splitlines()
    assert rows[0].endswith(",stranded_memory_pct,preemptions,evicted") and rows[1].endswith(",2,6")
    # Without the flag the table and the CSV are what they always were.
    code, out, _ = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit",
                        "--jobs", "1", "--no-plots", "--out", str(tmp_path / "off"))
    assert code == 0 and "preemptions" not in out and "evicted" not in out
    assert (tmp_path / "off" / "runs.csv").read_text().splitlines()[0].endswith(",stranded_memory_pct")
    assert "preemptions" not in (tmp_path / "off" / "runs.jsonl").read_text()


def test_profile_without_default_preemption_never_preempts(inputs: tuple[str, str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cluster, workload = inputs
    config = write(tmp_path / "config.yaml", """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: no-preemption
  plugins:
    postFilter:
      disabled: [{name: DefaultPreemption}]
""")
    code, out, err = _sim(capsys, "--cluster", cluster, "--workload", workload, "--config", config,
                          "--strategies", "no-preemption", "--jobs", "1", "--no-plots",
                          "--out", str(tmp_path / "o"), "--json", "--preemption")
    assert code == 0
    assert "note: strategy no-preemption has no DefaultPreemption PostFilter; it never preempts" in err
    s = json.loads(out)["strategies"]["no-preemption"]
    # All three high pods fail, as without --preemption.
    assert s["failed"]["mean"] == 3.0 and s["preemptions"]["mean"] == 0.0 and s["evicted"]["mean"] == 0.0


def test_equal_priorities_get_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = write(tmp_path / "cluster.yaml", CLUSTER)
    workload = write(tmp_path / "w.csv", "name,cpu,memory,arrival,departure\na,4,1Gi,0,\nb,4,1Gi,0,\nc,4,1Gi,0,\n")
    code, out, err = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit",
                          "--jobs", "1", "--no-plots", "--out", str(tmp_path / "o"), "--json", "--preemption")
    assert code == 0 and "note: every pod of the workload has priority 0; nothing can be preempted" in err
    # 3 pods of 4 cpu on 2 nodes of 4: one fails, and nobody has lower priority than it.
    s = json.loads(out)["strategies"]["FirstFit"]
    assert s["failed"]["mean"] == 1.0 and s["evicted"]["mean"] == 0.0


# ---- the replay -----------------------------------------------------------------------------------


def _pod(name: str, cpu: int, priority: int, *, at: float = 0.0, runs: float | None = None,
         policy: str | None = None) -> SimPod:
    spec: dict[str, Any] = {"priority": priority,
                            "containers": [{"name": "c", "resources": {"requests": {"cpu": str(cpu), "memory": "1Gi"}}}]}
    if policy is not None:
        spec["preemptionPolicy"] = policy
    return SimPod(pod_from_json({"metadata": {"name": name, "namespace": "t"}, "spec": spec}), at, runs)


def _cpu(*names: str, cpu: int = 4) -> list[NodeInfo]:
    return [node(n, str(cpu), "16Gi") for n in names]


@pytest.mark.parametrize(("nodes", "pods", "expected", "counts"), [
    # One node of 3 cpu holding z0, y1, x2 (1 cpu each, started at 0, 1, 2). h (2 cpu) at 10:
    # the dry run removes all three (3 free) and gives them back most important first --
    # equal priority, so earliest start: z0 (1 + 2 = 3 fits) stays; y1 and x2 (2 + 2 > 3) go.
    # (Names run against start order: a tie broken by name would keep x2.)
    pytest.param(_cpu("n", cpu=3), [_pod("z0", 1, LOW, at=0), _pod("y1", 1, LOW, at=1), _pod("x2", 1, LOW, at=2),
                                    _pod("h", 2, HIGH, at=10)],
                 [(0, "place", "t/z0", "n"), (1, "place", "t/y1", "n"), (2, "place", "t/x2", "n"),
                  (10, "evict", "t/y1", "n"), (10, "evict", "t/x2", "n"), (10, "place", "t/h", "n")],
                 (1, 2), id="victims-latest-started-first"),
    # Two nodes of 2 cpu, x on n1 (started 0), y on n2 (started 1). h (2 cpu) needs one
    # victim on either; every other measure ties, so the node whose highest-priority victim
    # started latest is picked: n2.
    pytest.param(_cpu("n1", "n2", cpu=2), [_pod("x", 2, LOW, at=0), _pod("y", 2, LOW, at=1), _pod("h", 2, HIGH, at=5)],
                 [(0, "place", "t/x", "n1"), (1, "place", "t/y", "n2"), (5, "evict", "t/y", "n2"),
                  (5, "place", "t/h", "n2")],
                 (1, 1), id="node-whose-victims-started-last"),
    # One node of 2 cpu with p5 (priority 5) and p1 (priority 1). h (1 cpu, priority 100):
    # both are removed and p5, the more important, is given back first (1 + 1 = 2 fits); p1
    # goes.
    pytest.param(_cpu("n", cpu=2), [_pod("p5", 1, 5), _pod("p1", 1, 1), _pod("h", 1, HIGH, at=1)],
                 [(0, "place", "t/p5", "n"), (0, "place", "t/p1", "n"), (1, "evict", "t/p1", "n"),
                  (1, "place", "t/h", "n")],
                 (1, 1), id="lowest-priority-goes"),
    # Equal priority never preempts.
    pytest.param(_cpu("n", cpu=1), [_pod("a", 1, HIGH), _pod("b", 1, HIGH, at=1)],
                 [(0, "place", "t/a", "n"), (1, "fail", "t/b", None)], (0, 0), id="equal-priority"),
    # preemptionPolicy: Never waits instead of evicting.
    pytest.param(_cpu("n", cpu=1), [_pod("a", 1, LOW), _pod("h", 1, HIGH, at=1, policy="Never")],
                 [(0, "place", "t/a", "n"), (1, "fail", "t/h", None)], (0, 0), id="policy-never"),
    # a would leave at 10 but is evicted at 2: its departure never happens; h leaves at
    # 2 + 20, and late (arriving at 30) takes its place.
    pytest.param(_cpu("n", cpu=1), [_pod("a", 1, LOW, runs=10), _pod("h", 1, HIGH, at=2, runs=20),
                                    _pod("late", 1, LOW, at=30)],
                 [(0, "place", "t/a", "n"), (2, "evict", "t/a", "n"), (2, "place", "t/h", "n"),
                  (22, "depart", "t/h", "n"), (30, "place", "t/late", "n")],
                 (1, 1), id="victim-departure-cancelled"),
])
def test_replay_preemption(nodes: list[NodeInfo], pods: list[SimPod], expected: list[Event],
                           counts: tuple[int, int]) -> None:
    events: list[Event] = []
    m = replay(nodes=nodes, pods=pods, profile=builtin_profile("FirstFit").build(seed=0), preemption=True,
               events=events)
    assert events == expected
    assert (m.preemptions, m.evicted) == counts
    assert m.placed + m.failed == len(pods) and m.to_json()["evicted"] == counts[1]
    # Without preemption nothing is evicted, every high pod that found no room fails,
    # and the metrics have no new keys.
    events = []
    m = replay(nodes=nodes, pods=pods, profile=without_preemption(builtin_profile("FirstFit")).build(seed=0),
               events=events)
    assert all(what != "evict" for _, what, _, _ in events)
    assert m.failed == sum(1 for _, what, _, _ in expected if what == "fail") + counts[0]
    assert m.preemptions is None and not NEW_KEYS & set(m.to_json())


def test_without_preemption_costs_nothing_and_keeps_run_keys(tmp_path: Path) -> None:
    default = builtin_profile("default")
    assert default.postfilters == ("DefaultPreemption", "Coscheduling")
    assert without_preemption(default).postfilters == ("Coscheduling",)
    # No dry run for failed pods (Coscheduling's PostFilter only looks at the pod's group).
    assert [p.name for p in without_preemption(default).build(seed=0).postfilters] == ["Coscheduling"]
    # A sweep without --preemption (or --node-metrics, and seed 0 of a manifest: replayed in file
    # order before --shuffle existed too) keys its runs exactly as before the options existed, so an
    # output directory written then still resumes.
    opts = SweepOptions(cluster=write(tmp_path / "c.yaml", CLUSTER), workload=write(tmp_path / "w.yaml", WORKLOAD))
    before = {k: v for k, v in asdict(opts).items() if k not in ("preemption", "node_metrics", "shuffle")}
    doc = json.dumps([_digest(opts.cluster), _digest(opts.workload), before, "default", repr(default), 0],
                     sort_keys=True, default=str)
    assert run_key(opts, "default", default, 0) == hashlib.sha256(doc.encode()).hexdigest()[:20]
    preempting = SweepOptions(cluster=opts.cluster, workload=opts.workload, preemption=True)
    assert run_key(preempting, "default", default, 0) != run_key(opts, "default", default, 0)


# ---- priorities in workloads ---------------------------------------------------------------------


def _manifest(spec: str, name: str = "p") -> str:
    return f"---\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{{spec}containers: [{{name: c}}]}}\n"


_CLASS_FILE = """\
kind: PriorityClass
metadata: {name: batch}
value: 10
---
kind: PriorityClass
metadata: {name: urgent}
value: 1000
preemptionPolicy: Never
---
kind: PriorityClass
metadata: {name: fallback}
value: 7
globalDefault: true
"""


@pytest.mark.parametrize(("spec", "priority", "policy"), [
    pytest.param("priorityClassName: batch, ", 10, "PreemptLowerPriority", id="class-value"),
    pytest.param("priorityClassName: urgent, ", 1000, "Never", id="class-policy"),
    pytest.param("", 7, "PreemptLowerPriority", id="global-default"),
    pytest.param("priority: 42, ", 42, None, id="spec-priority-kept"),
    pytest.param("priorityClassName: batch, priority: 10, ", 10, "PreemptLowerPriority", id="both-agree"),
    # A class the file does not define, on a pod that carries its value (kubectl get -o yaml).
    pytest.param("priorityClassName: elsewhere, priority: 3, ", 3, None, id="exported-pod"),
    pytest.param("priorityClassName: system-cluster-critical, ", 2_000_000_000, "PreemptLowerPriority",
                 id="system-class"),
])
def test_priority_classes_resolve(tmp_path: Path, spec: str, priority: int, policy: str | None) -> None:
    [sp] = open_workload(write(tmp_path / "w.yaml", _CLASS_FILE + _manifest(spec))).pods(seed=0)
    assert sp.pod.priority == priority
    assert sp.pod.raw["spec"].get("preemptionPolicy") == policy


def test_lowest_global_default_wins(tmp_path: Path) -> None:
    # Two globalDefault classes (a cluster can hold them after racing creates): admission takes
    # the lowest value, 1 < 7 (fallback), and writes its name into the pod.
    second = "---\nkind: PriorityClass\nmetadata: {name: x}\nvalue: 1\nglobalDefault: true\n"
    [sp] = open_workload(write(tmp_path / "w.yaml", _CLASS_FILE + second + _manifest(""))).pods(seed=0)
    assert sp.pod.priority == 1 and sp.pod.raw["spec"]["priorityClassName"] == "x"


def test_csv_priority_column(tmp_path: Path) -> None:
    pods = open_workload(write(tmp_path / "w.csv", "name,cpu,memory,arrival,departure,priority,gpu\n"
                                                   "a,1,1Gi,0,,5,1\nb,1,1Gi,0,,,\n")).pods(seed=0)
    assert [p.pod.priority for p in pods] == [5, 0]                   # empty: 0
    assert "priority" not in pods[0].pod.requests and pods[0].pod.requests["nvidia.com/gpu"] == 1


@pytest.mark.parametrize(("name", "text", "message"), [
    pytest.param("w.yaml", _manifest("priorityClassName: nope, "),
                 "w.yaml: pod default/p: spec.priorityClassName: no PriorityClass with name nope was found",
                 id="unknown-class"),
    pytest.param("w.yaml", _CLASS_FILE + _manifest("priorityClassName: batch, priority: 11, "),
                 # admission's refusal, 11 != batch's 10
                 "w.yaml: document 3: pod default/p: spec.priority: the integer value of priority (11) must not be "
                 "provided in pod spec; priority admission controller computed 10 from the given PriorityClass name",
                 id="priority-disagrees"),
    pytest.param("w.yaml", _CLASS_FILE + _manifest("priorityClassName: urgent, preemptionPolicy: PreemptLowerPriority, "),
                 "pod default/p: spec.preemptionPolicy: the string value of PreemptionPolicy (PreemptLowerPriority) "
                 "must not be provided in pod spec; priority admission controller computed Never from the given "
                 "PriorityClass name",
                 id="policy-disagrees"),
    pytest.param("w.yaml", _CLASS_FILE + "---\nkind: PriorityClass\nmetadata: {name: batch}\nvalue: 1\n",
                 "w.yaml: document 3: PriorityClass batch: metadata.name: duplicate PriorityClass (also at ",
                 id="duplicate-class"),
    pytest.param("w.yaml", "kind: PriorityClass\nmetadata: {name: x}\nvalue: 1\nlabels: {}\n",
                 "w.yaml: PriorityClass x: labels: unknown field of a PriorityClass", id="unknown-class-field"),
    pytest.param("w.yaml", "kind: PriorityClass\nmetadata: {name: x}\nvalue: '1'\n",
                 # a numeric string is refused, as the API server's decoder refuses it for an int32
                 "w.yaml: PriorityClass x: value: expected an integer, got '1'", id="class-value-string"),
    pytest.param("w.yaml", "kind: PriorityClass\nmetadata: {name: x}\nvalue: 2147483648\n",
                 "w.yaml: PriorityClass x: value: 2147483648 is out of the int32 range", id="class-value-range"),
    pytest.param("w.yaml", "kind: PriorityClass\nmetadata: {name: x}\n", "PriorityClass x: value: required",
                 id="class-without-value"),
    pytest.param("w.yaml", "kind: PriorityClass\nmetadata: {name: x}\nvalue: high\n",
                 "PriorityClass x: value: expected an integer, got 'high'", id="class-value-not-integer"),
    pytest.param("w.yaml", "kind: PriorityClass\nmetadata: {name: x}\nvalue: 1\npreemptionPolicy: Sometimes\n",
                 "PriorityClass x: preemptionPolicy: expected one of PreemptLowerPriority, Never, got 'Sometimes'",
                 id="bad-policy"),
    pytest.param("w.csv", "name,cpu,memory,arrival,departure,priority\na,1,1Gi,0,,high\n",
                 "w.csv: line 2: priority: expected an integer, got 'high'", id="csv-priority-not-integer"),
    pytest.param("w.csv", "name,cpu,memory,arrival,departure,priority\na,1,1Gi,0,,4294967296\n",
                 "w.csv: line 2: priority: must be a 32-bit integer, got 4294967296", id="csv-priority-too-big"),
])
def test_bad_priorities(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(SimInputError) as e:
        open_workload(write(tmp_path / name, text))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_priority_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = write(tmp_path / "cluster.yaml", CLUSTER)
    workload = write(tmp_path / "w.yaml", _manifest("priorityClassName: nope, "))
    code, out, err = _sim(capsys, "--cluster", cluster, "--workload", workload, "--strategies", "FirstFit",
                          "--out", str(tmp_path / "o"), "--preemption")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "spec.priorityClassName: no PriorityClass with name nope was found" in err
