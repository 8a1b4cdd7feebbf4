"""Fault injection: the misbehaviour of a real control plane, on demand.

The live scheduler must survive an API server that drops watch streams, sheds
load with 429 and ``Retry-After``, fails with 500s, answers slowly, and
compacts its history so that a watch resume gets 410 Expired. Tests and
benchmarks turn these knobs on a running server; every field can be changed
at any time and takes effect on the next request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Faults", "Decision"]


@dataclass
class Decision:
    """What the fault layer does to one request: an error code, a delay, or nothing."""

    code: int = 0
    delay: float = 0.0


@dataclass
class Faults:
    """Runtime knobs; the defaults inject nothing."""

    error_rate: float = 0.0
    """Fraction (0..1) of resource requests answered ``500 InternalError``."""
    throttle_rate: float = 0.0
    """Fraction (0..1) of resource requests answered ``429 TooManyRequests``."""
    retry_after_seconds: int = 1
    """The ``Retry-After`` header (and ``details.retryAfterSeconds``) sent with a 429."""
    latency_seconds: float = 0.0
    """Delay added before every resource request is handled."""
    watch_close_seconds: float = 0.0
    """When > 0, every watch stream is ended this many seconds after it opened (clients must re-watch)."""
    include_watches: bool = True
    """Whether 500/429 injection also hits watch requests (a real server's overload does)."""
    seed: int | None = None
    """Seed of the fault dice, for reproducible runs; None draws from the OS."""
    injected: dict[int, int] = field(default_factory=dict)
    """Count of injected failures by HTTP code (read by tests)."""
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.validate()
        if self.seed is not None:
            self._rng.seed(self.seed)

    def validate(self) -> None:
        for name in ("error_rate", "throttle_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {v}")
        if self.error_rate + self.throttle_rate > 1.0:
            raise ValueError("Faults.error_rate + Faults.throttle_rate must not exceed 1")
        if self.latency_seconds < 0 or self.watch_close_seconds < 0 or self.retry_after_seconds < 0:
            raise ValueError("Faults latency, watch_close and retry_after must be >= 0")

    def reset(self) -> None:
        """Turn every fault off (the counters are kept)."""
        self.error_rate = self.throttle_rate = 0.0
        self.latency_seconds = self.watch_close_seconds = 0.0

    def decide(self, *, watch: bool) -> Decision:
        """Roll the dice for one resource request."""
        d = Decision(delay=self.latency_seconds)
        if watch and not self.include_watches:
            return d
        if self.error_rate or self.throttle_rate:
            x = self._rng.random()
            if x < self.error_rate:
                d.code = 500
            elif x < self.error_rate + self.throttle_rate:
                d.code = 429
            if d.code:
                self.injected[d.code] = self.injected.get(d.code, 0) + 1
        return d
