"""DefaultPreemption: when no node fits a pod, find pods of lower priority whose
eviction lets it fit, as kube-scheduler's PostFilter plugin of that name does.

The plugin decides; the live scheduler acts (``scheduler/preemptor.py`` nominates
the pod and evicts the victims). Its steps, upstream's:

1. eligibility (``PodEligibleToPreemptOthers``): ``preemptionPolicy: Never`` never
   preempts; a pod nominated to a node where a lower-priority pod is still
   terminating because of a preemption waits, unless that node is now unresolvable;
2. candidates: the dry run of ``scoring.plugins.preemption`` over the nodes whose filter
   verdict was resolvable, from a random offset, until ``numCandidates`` --
   ``max(nodes x minCandidateNodesPercentage / 100, minCandidateNodesAbsolute)``,
   at most the nodes -- are found;
3. the best candidate by upstream's chain (``scoring.plugins.pick_one``).

The message on failure is upstream's: ``preemption: `` and a FitError over the
nodes (``No preemption victims found for incoming pod`` where no pod has lower
priority, a filter's reasons where the pod does not fit even so, ``Preemption is
not helpful for scheduling`` for the nodes it could not help).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scoring.args import ArgsError, integer, known_fields, mapping
from scoring.framework import (ALL_CANDIDATES, CycleState, PostFilterPlugin, PostFilterResult, Profile, Reason,
                               fit_error_message)
from scoring.nominations import nominated_node
from scoring.objects import PodInfo
from scoring.plugins.preemption import NOT_HELPFUL, find_candidates
from scoring.plugins.victims import Candidate, Candidates, pick_one, terminating_by_preemption
from scoring.table import NodeTable

__all__ = ["NAME", "NOW", "DefaultPreemptionArgs", "DefaultPreemption", "Preemption", "parse_args", "new"]

NAME: Final = "DefaultPreemption"
NOW: Final = "preemption/now"
"""CycleState key: the time (seconds since the epoch) a pod without a start time is
taken to have started (upstream: now). Defaults to the clock."""
NEVER: Final = "not eligible due to preemptionPolicy=Never."
TERMINATING: Final = "not eligible due to a terminating pod on the nominated node."


@dataclass(frozen=True, slots=True)
class DefaultPreemptionArgs:
    min_candidate_nodes_percentage: int = 10
    min_candidate_nodes_absolute: int = 100

    def num_candidates(self, nodes: int) -> int:
        """Upstream's calculateNumCandidates."""
        n = nodes * self.min_candidate_nodes_percentage // 100
        return min(max(n, self.min_candidate_nodes_absolute), nodes)


def parse_args(args: Mapping[str, Any], path: str) -> DefaultPreemptionArgs:
    """``DefaultPreemptionArgs``, validated as upstream's ValidateDefaultPreemptionArgs."""
    m = mapping(args, path)
    known_fields(m, ("minCandidateNodesPercentage", "minCandidateNodesAbsolute"), path)
    pct_path = f"{path}.minCandidateNodesPercentage" if path else "minCandidateNodesPercentage"
    abs_path = f"{path}.minCandidateNodesAbsolute" if path else "minCandidateNodesAbsolute"
    pct = integer(m.get("minCandidateNodesPercentage", 10), pct_path)
    absolute = integer(m.get("minCandidateNodesAbsolute", 100), abs_path)
    if not 0 <= pct <= 100:
        raise ArgsError(pct_path, f"not in valid range [0, 100], got {pct}")
    if absolute < 0:
        raise ArgsError(abs_path, f"not in valid range [0, inf), got {absolute}")
    if pct == 0 and absolute == 0:
        raise ArgsError(pct_path, "cannot be zero at the same time as minCandidateNodesAbsolute")
    return DefaultPreemptionArgs(pct, absolute)


@dataclass(frozen=True, slots=True)
class Preemption:
    """The plan: where the pod is nominated, whom to evict, every candidate found, and
    the message (``preemption: ...``; empty when a node was found)."""

    node: str | None
    victims: tuple[PodInfo, ...]
    candidates: Candidates | None
    message: str
    eligible: bool = True

    def candidate_list(self) -> list[Candidate]:
        return list(self.candidates) if self.candidates is not None else []

    def to_json(self) -> dict[str, Any]:
        """The ``"preemption"`` object of ``vecsched explain --output json``."""
        return {
            "node": self.node,
            "victims": [p.key for p in self.victims],
            "candidates": {c.node: {"victims": [p.key for p in c.victims], "pdb_violations": c.pdb_violations}
                           for c in self.candidate_list()},
            "message": self.message,
        }


def _preemption_policy(pod: PodInfo) -> Any:
    spec = pod.raw.get("spec")
    return spec.get("preemptionPolicy") if isinstance(spec, Mapping) else None


class DefaultPreemption:
    name: Final = NAME

    def __init__(self, args: DefaultPreemptionArgs) -> None:
        self.args = args
        self._rng = random.Random(0)

    def reseed(self, run_seed: int) -> None:
        """Restart the offset draws (upstream: rand.Int31n) from ``run_seed``."""
        self._rng = random.Random(run_seed)

    def offset(self, nodes: int) -> int:
        """Where in the potential nodes the search starts (upstream's GetOffsetAndNumCandidates)."""
        return self._rng.randrange(nodes)

    def eligible(self, pod: PodInfo, table: NodeTable, reasons: Sequence[Reason]) -> tuple[bool, str]:
        """Upstream's PodEligibleToPreemptOthers."""
        if _preemption_policy(pod) == "Never":
            return False, NEVER
        node = nominated_node(pod, table)
        row = table.index.get(node) if node else None
        if row is None:
            return True, ""
        if any(r.unresolvable and r.nodes[row] for r in reasons):
            return True, ""  # the nominated node cannot take the pod any more: preempt again
        for other in table.node_pods(node):
            if other.priority < pod.priority and terminating_by_preemption(other):
                return False, TERMINATING
        return True, ""

    def postfilter(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                   profile: Profile) -> PostFilterResult:
        ok, why = self.eligible(pod, table, reasons)
        if not ok:
            msg = f"preemption: {why}"
            return PostFilterResult(NAME, False, msg, None, Preemption(None, (), None, msg, eligible=False))
        now = float(state.get(NOW) or time.time())
        dry = find_candidates(profile, pod, table, state, reasons, offset=self.offset,
                                         num_candidates=self.args.num_candidates, now=now,
                                         every_node=bool(state.get(ALL_CANDIDATES)))
        if not len(dry.candidates):
            counts: dict[str, int] = {}
            for messages in dry.failed.values():
                for m in messages:
                    counts[m] = counts.get(m, 0) + 1
            absent = table.n - len(dry.failed)
            if absent:
                counts[NOT_HELPFUL] = counts.get(NOT_HELPFUL, 0) + absent
            msg = f"preemption: {fit_error_message(table.n, counts)}"
            # Upstream clears the pod's nomination when preemption cannot help.
            return PostFilterResult(NAME, False, msg, "", Preemption(None, (), dry.candidates, msg))
        best = pick_one(dry.candidates)
        assert best is not None
        chosen = dry.candidates.candidate(best)
        return PostFilterResult(NAME, True, "", chosen.node,
                                Preemption(chosen.node, chosen.victims, dry.candidates, ""))


def new(args: Mapping[str, Any], path: str) -> DefaultPreemption:
    return DefaultPreemption(parse_args(args, path))


_: type[PostFilterPlugin] = DefaultPreemption
