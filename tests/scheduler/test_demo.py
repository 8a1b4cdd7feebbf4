"""``vecsched demo`` runs as a user runs it: its workload objects become pods, placed and summarised,
two training gangs of which only one can have its GPUs, then an urgent Deployment of the highest
priority arrives and preempts batch pods where there is no room.

At a twentieth of its size: web 60, api 30, cache 8 (a StatefulSet), batch 25
(a Job), nightly-report 10 (a Job that finishes), the gangs train-a 8 and
train-b 12 (Jobs with PodGroups; never scaled), node-agent 68 (a DaemonSet,
one per node), too-big 3 and lost 2 (which cannot be placed): 226 pods, of
which 5 stay pending, and the 8 or 12 members of the gang left out. The
cluster is then 8 to 10% used, so the one urgent pod finds room and nothing is
preempted. No scale that small can show a preemption: a pod too big for every
node's free room would need most of a large-64 node (each keeps about 58 of
its 64 cores free at 0.1), more than all batch pods hold together (25 cores at
0.05, 50 at 0.1). At full size the cluster is full, and the urgent pods
preempt batch pods.

The gangs: 16 GPUs (4 gpu-32 nodes of 4), train-a wants 8 and train-b 12.
Whichever is placed first is bound whole; the other then finds 16 - 8 = 8 or
16 - 12 = 4 GPUs free, too few, and is left with none bound, its PodGroup
given a FailedScheduling Event. Which one comes first is up to the
controllers' and the scheduler's timing, so the tests accept either.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from scheduler.demo_workload import DEMO_SHAPES, GANGS, expected_pods, manifests, urgent_pods
from scoring.plugins.podgroups import POD_GROUP_LABEL

_NODES = sum(s.count for s in DEMO_SHAPES)
_GPUS = sum(s.count * s.gpus for s in DEMO_SHAPES)  # 4 gpu-32 nodes x 4 = 16
_UNPLACEABLE = 5  # too-big 3 + lost 2
_GANG_LINE = re.compile(r"PodGroup (\S+)\s+(\S+)\s+(\d+)/(\d+) members bound,\s+(\d+) GPUs held(?:, FailedScheduling:\n"
                        r"    (.*))?")


@pytest.mark.parametrize("scale", [0.05, 0.1, 0.5, 1.0, 2.0])
def test_the_gangs_are_the_same_at_every_scale_and_cannot_both_fit(scale: float) -> None:
    # train-a 8 + train-b 12 = 20 > 16 GPUs, and each alone fits: the GPU nodes are not scaled, nor are the gangs.
    assert [(w.name, w.replicas, w.gpu) for w in GANGS] == [("train-a", 8, 1), ("train-b", 12, 1)]
    assert _GPUS == 16 and all(w.replicas * w.gpu <= _GPUS for w in GANGS)
    assert sum(w.replicas * w.gpu for w in GANGS) > _GPUS
    objs = manifests(scale=scale)
    for w in GANGS:
        # The PodGroup comes just before its Job, minMember = parallelism = completions, the pods join it.
        at = next(i for i, o in enumerate(objs) if o["kind"] == "PodGroup" and o["metadata"]["name"] == w.name)
        job = objs[at + 1]
        assert (job["kind"], job["metadata"]["name"]) == ("Job", w.name)
        assert objs[at]["spec"]["minMember"] == job["spec"]["parallelism"] == job["spec"]["completions"] == w.replicas
        assert job["spec"]["template"]["metadata"]["labels"][POD_GROUP_LABEL] == w.name


CASES = [
    pytest.param(
        # 60 + 30 + 8 + 25 + 10 + 8 + 12 + 68 + 3 + 2 = 226 (replica counts above 20 scaled by 0.05, rounded);
        # every pod but the 5 unplaceable ones and the gang left out is bound before the urgent Deployment:
        # 226 - 5 - 12 = 209 (train-a placed) or 226 - 5 - 8 = 213 (train-b placed); no batch pod short.
        # urgent: max(1, round(4 x 0.05)) = 1 pod of 8 cores; cpu asked for: web 15 + api 15 + cache 8 +
        # batch 25 + one gang 48 or 72 + node-agent 3.4 + urgent 8 = 122.4 or 146.4 of 1,536 = 8.0 or 9.5%:
        # it fits at once.
        0.05, 226, 1, 0,
        ["Deployment   web             60/60 ready", "StatefulSet  cache           8/8 ready",
         "Job          batch           Running, 0/25 succeeded, 25 active",
         "Job          nightly-report  Complete, 10/10 succeeded", "DaemonSet    node-agent      68/68 ready",
         "Deployment   too-big         0/3 ready", "Deployment   urgent          1/1 ready",
         "64 Insufficient cpu.", "  1/1 bound (", "  no pod preempted: there was room"],
        0,
        id="scale-0.05",
    ),
    pytest.param(
        # 1,200 + 600 + 150 + 500 + 10 + 8 + 12 + 68 + 3 + 2 = 2,553 pods; bound before the urgent Deployment:
        # all but the 5 unplaceable ones and the gang left out (nightly-report runs 5 at a time, each of its 10
        # pods bound once): 2,553 - 5 - 12 = 2,536 or 2,553 - 5 - 8 = 2,540, less the few batch pods that may
        # find no core free in a cluster 85 to 86% asked for (none to 5 of them in our runs; 20 allowed).
        # urgent: 4 pods of 8 cores. The gangs are on the tainted GPU nodes only, so the 64 others are as
        # full as before: the 16-core nodes keep about a core free and each large-64 node holds its limit of
        # 110 pods (see URGENT in scheduler/demo_workload.py), so each urgent pod is nominated to a large
        # node and one batch pod (priority -10, 1 core) leaves it to free a pod slot: 4 batch pods
        # preempted, 4 Preempted Events, 4 failed pods for the Job (a preempted pod counts as failed),
        # which replaces them: 500 active again.
        1.0, 2553, 4, 20,
        ["Deployment   web             1200/1200 ready", "Deployment   urgent          4/4 ready",
         "Job          batch           Running, 0/500 succeeded, 4 failed, 500 active",
         "  4/4 bound (4 on large-64), 4 of them nominated to their node first",
         "  4 pods preempted (4 batch; Preempted Events), 4 given the DisruptionTarget condition",
         "  Job batch made 4 pods in their place: "],
        4,
        id="scale-1",
    ),
]


@pytest.mark.parametrize(("scale", "pods", "urgent", "short", "lines", "replaced"), CASES)
def test_demo(scale: float, pods: int, urgent: int, short: int, lines: list[str], replaced: int) -> None:
    assert expected_pods(scale=scale, nodes=_NODES) == pods
    assert urgent_pods(scale=scale) == urgent
    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", "demo", "--scale", str(scale), "--timeout", "120"],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "PodGroup CRD applied" in out, out
    for line in lines:
        assert line in out, out

    # The gangs: exactly one bound whole and Running, with one GPU per member; the other with no member
    # bound, no GPU, and its PodGroup's FailedScheduling reason: the GPUs the first one left free.
    gangs = {m[1]: m for m in _GANG_LINE.finditer(out)}
    assert sorted(gangs) == ["train-a", "train-b"], out
    whole = [g for g, m in gangs.items() if int(m[3]) == int(m[4])]
    assert len(whole) == 1, out
    placed, = whole
    left_out, = set(gangs) - {placed}
    size = {w.name: w.replicas for w in GANGS}
    m = gangs[placed]
    assert (m[2], int(m[3]), int(m[5]), m[6]) == ("Running", size[placed], size[placed], None), out
    m = gangs[left_out]
    assert (int(m[3]), int(m[4]), int(m[5])) == (0, size[left_out], 0), out
    # train-a placed: 16 - 8 = 8 of train-b's 12 fit; train-b placed: 16 - 12 = 4 of train-a's 8.
    free = _GPUS - size[placed]
    assert m[6] and m[6].startswith(f"pod group demo/{left_out}: {free} of the {size[left_out]} members it needs "
                                    f"fit at once (minMember {size[left_out]}, 0 already placed); "), out
    assert "GPUs held by gangs placed in part: 0" in out, out
    assert f"nvidia.com/gpu  {100 * size[placed] / _GPUS:5.1f}%" in out, out  # 50.0% or 75.0%
    # Every member left out is pending with the group's reason, beside the unplaceable pods (and at full
    # size a few batch pods with no core free).
    assert f"\n    {size[left_out]:>2} x pod group demo/{left_out}: " in out, out
    pending = re.search(r"Pods left pending: (\d+)", out)
    assert pending and 0 <= int(pending[1]) - _UNPLACEABLE - size[left_out] <= short + replaced, out

    expected = pods - _UNPLACEABLE - size[left_out]
    bound = re.search(r"Bound (\d+) pods in [\d.]+ s", out)
    assert bound and expected - short <= int(bound[1]) <= expected, out
    if replaced:
        # the replacements are either bound where a core is still free or pending: they add up to those lost
        m = re.search(r"made (\d+) pods in their place: (\d+) bound elsewhere, (\d+) pending", out)
        assert m and int(m[1]) == replaced and int(m[2]) + int(m[3]) == replaced, out
