"""Random: every feasible node gets a uniformly random score (vecsched's own).

The baseline every packing heuristic must beat (Random-fit in Weng et al.,
"Beware of Fragmentation", USENIX ATC 2023): scores are drawn uniformly from
0..100 by a generator seeded with ``args.seed`` (default 0) and the run seed
given to ``reseed`` -- the strategy lab reseeds it for each of its seeds, so
a run is repeatable and seeds differ. Alone in a profile it places each pod
on a feasible node chosen uniformly at random (the framework's seeded
tie-break settles equal draws).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.args import integer, known_fields, mapping
from scoring.framework import MAX_NODE_SCORE, CycleState, ScorePlugin
from scoring.objects import PodInfo
from scoring.table import IntArray, NodeTable

__all__ = ["NAME", "RandomScore", "random_scores", "new"]

NAME: Final = "Random"


def random_scores(rng: np.random.Generator, count: int) -> IntArray:
    """``count`` scores drawn independently and uniformly from 0..MAX_NODE_SCORE."""
    return rng.integers(0, MAX_NODE_SCORE + 1, size=count, dtype=np.int64)


class RandomScore:
    name: Final = NAME

    def __init__(self, *, seed: int) -> None:
        self.seed = seed
        self.reseed(0)

    def reseed(self, run_seed: int) -> None:
        """Restart the draws from (args seed, run seed)."""
        self._rng = np.random.default_rng([self.seed, run_seed])

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray:
        return random_scores(self._rng, len(nodes))


def new(args: Mapping[str, Any], path: str) -> RandomScore:
    m = mapping(args, path)
    known_fields(m, ("seed",), path)
    return RandomScore(seed=integer(m.get("seed", 0), f"{path}.seed" if path else "seed", lo=0))


_: type[ScorePlugin] = RandomScore
