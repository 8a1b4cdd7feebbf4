"""Fault injection: the misbehaviour of a real control plane, on demand.

The live scheduler must survive an API server that drops watch streams, sheds
load with 429 and ``Retry-After``, fails with 500s, answers slowly, and
compacts its history so that a watch resume gets 410 Expired. Tests and
benchmarks turn these knobs on a running server; every field can be changed
at any time and takes effect on the next request.

``vecsched apiserver --faults SPEC`` turns them on from the command line
(``parse_spec``), so that a soak test can run the server as a separate
process: the periodic faults -- every open watch stream ended, the watch
history compacted -- are driven by ``run_schedule``, and every fault injected
is counted by kind (``Faults.counts``), served at ``/metrics/faults`` and
printed when the server stops.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from scoring.safe_input import quote

__all__ = ["Faults", "Decision", "FAULT_KINDS", "SPEC_KEYS", "parse_spec", "parse_duration", "run_schedule"]

FAULT_KINDS: Final = ("errors", "throttle", "latency", "watch-drop", "compact")
"""The kinds of injected fault, as ``Faults.counts`` and ``/metrics/faults`` name them (the spec's keys)."""

SPEC_KEYS: Final = ("errors", "throttle", "retry-after", "latency", "watch-drop", "compact", "seed")
"""The keys ``--faults`` accepts, in the order ``--help`` lists them."""

SPEC_HELP: Final = (
    "comma-separated KEY=VALUE faults: errors=F and throttle=F answer that fraction (0..1) of resource "
    "requests 500 InternalError / 429 TooManyRequests; retry-after=N is the 429's Retry-After seconds "
    "(default 1); latency=D delays every resource request; watch-drop=D ends every open watch stream "
    "every D; compact=D compacts the watch history every D (a resume from an older resourceVersion "
    "gets 410 Expired); seed=N makes the dice reproducible. D is a duration such as 10ms, 30s or 2m "
    "(a bare number is seconds; 0 is off), e.g. errors=0.02,throttle=0.02,latency=10ms,watch-drop=30s,"
    "compact=60s,seed=7"
)

_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m)?")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
_MAX_PERIOD_SECONDS: Final = 24 * 3600.0
"""A day: longer delays or periods are surely a typo (``latency=10m`` for ``10ms``) and rejected."""
_MAX_RETRY_AFTER: Final = 3600
"""An hour of Retry-After: a client told to wait longer would look hung, not throttled."""


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
    watch_drop_seconds: float = 0.0
    """When > 0, ``run_schedule`` ends every open watch stream this often (seconds)."""
    compact_seconds: float = 0.0
    """When > 0, ``run_schedule`` compacts the watch history this often (seconds)."""
    injected: dict[int, int] = field(default_factory=dict)
    """Count of injected failures by HTTP code (read by tests)."""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))
    """Faults injected by kind (``FAULT_KINDS``): requests failed or delayed, watch streams ended,
    compactions."""
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
        if (self.latency_seconds < 0 or self.watch_close_seconds < 0 or self.retry_after_seconds < 0
                or self.watch_drop_seconds < 0 or self.compact_seconds < 0):
            raise ValueError("Faults latency, watch_close, watch_drop, compact and retry_after must be >= 0")

    def reset(self) -> None:
        """Turn every fault off (the counters are kept)."""
        self.error_rate = self.throttle_rate = 0.0
        self.latency_seconds = self.watch_close_seconds = 0.0
        self.watch_drop_seconds = self.compact_seconds = 0.0

    def decide(self, *, watch: bool) -> Decision:
        """Roll the dice for one resource request."""
        d = Decision(delay=self.latency_seconds)
        if d.delay:
            self.counts["latency"] += 1
        if watch and not self.include_watches:
            return d
        if self.error_rate or self.throttle_rate:
            x = self._rng.random()
            if x < self.error_rate:
                d.code = 500
                self.counts["errors"] += 1
            elif x < self.error_rate + self.throttle_rate:
                d.code = 429
                self.counts["throttle"] += 1
            if d.code:
                self.injected[d.code] = self.injected.get(d.code, 0) + 1
        return d

    def summary(self) -> str:
        """``errors=12 throttle=9 latency=3000 watch-drop=40 compact=5``: what was injected so far."""
        return " ".join(f"{kind}={self.counts.get(kind, 0)}" for kind in FAULT_KINDS)

    def metrics_text(self) -> str:
        """The counters in the Prometheus text format (served at ``/metrics/faults``)."""
        lines = ["# HELP vecsched_apiserver_injected_faults_total Faults injected by the API server, by kind.",
                 "# TYPE vecsched_apiserver_injected_faults_total counter"]
        lines += [f'vecsched_apiserver_injected_faults_total{{kind="{kind}"}} {self.counts.get(kind, 0)}'
                  for kind in FAULT_KINDS]
        return "\n".join(lines) + "\n"


def parse_duration(text: str, *, key: str) -> float:
    """``10ms``, ``1.5s``, ``2m`` or a bare number of seconds -> seconds (0 to a day)."""
    m = _DURATION.fullmatch(text.strip())
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)] if m else math.nan
    if not 0 <= seconds <= _MAX_PERIOD_SECONDS:  # also NaN: not a duration
        raise ValueError(f"--faults: {key}: expected a duration such as 10ms, 30s or 2m (at most a day), "
                         f"got {quote(text)}")
    return seconds


def _fraction(text: str, *, key: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not 0 <= v <= 1:  # also NaN
        raise ValueError(f"--faults: {key}: expected a fraction from 0 to 1, got {quote(text)}")
    return v


def _integer(text: str, *, key: str, limit: int) -> int:
    if not re.fullmatch(r"\d{1,19}", text.strip()) or int(text) > limit:
        raise ValueError(f"--faults: {key}: expected an integer from 0 to {limit}, got {quote(text)}")
    return int(text)


def parse_spec(spec: str) -> Faults:
    """``errors=0.02,throttle=0.02,latency=10ms,watch-drop=30s,compact=60s,seed=7`` -> Faults.

    Raises ValueError with one line naming the key and what is wrong with it (see ``SPEC_HELP``)."""
    parts = [p for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"--faults: expected KEY=VALUE pairs such as errors=0.02,watch-drop=30s, got {quote(spec)}")
    seen: set[str] = set()
    f = Faults()
    for part in parts:
        key, sep, value = (s.strip() for s in part.partition("="))
        if key not in SPEC_KEYS:
            raise ValueError(f"--faults: unknown key {quote(key)} (known: {', '.join(SPEC_KEYS)})")
        if not sep or not value:
            raise ValueError(f"--faults: {key}: expected {key}=VALUE, got {quote(part.strip())}")
        if key in seen:
            raise ValueError(f"--faults: {key}: given twice")
        seen.add(key)
        if key == "errors":
            f.error_rate = _fraction(value, key=key)
        elif key == "throttle":
            f.throttle_rate = _fraction(value, key=key)
        elif key == "retry-after":
            f.retry_after_seconds = _integer(value, key=key, limit=_MAX_RETRY_AFTER)
        elif key == "latency":
            f.latency_seconds = parse_duration(value, key=key)
        elif key == "watch-drop":
            f.watch_drop_seconds = parse_duration(value, key=key)
        elif key == "compact":
            f.compact_seconds = parse_duration(value, key=key)
        else:  # seed: any 64-bit value
            f.seed = _integer(value, key=key, limit=2**64 - 1)
    if f.error_rate + f.throttle_rate > 1:
        raise ValueError(f"--faults: errors + throttle: together at most 1, got {f.error_rate:g} + {f.throttle_rate:g}")
    if f.seed is not None:
        f._rng.seed(f.seed)
    return f


async def run_schedule(faults: Faults, *, close_watches: Callable[[], int], compact: Callable[[], int],
                       tick: float = 0.1) -> None:
    """Inject the periodic faults until cancelled: every ``faults.watch_drop_seconds`` end every open
    watch stream (``close_watches`` returns how many), every ``faults.compact_seconds`` compact the
    history. The periods are read at every ``tick`` (seconds), so they can be changed while it runs."""
    loop = asyncio.get_running_loop()
    last_drop = last_compact = loop.time()
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        if faults.watch_drop_seconds <= 0:
            last_drop = now
        elif now - last_drop >= faults.watch_drop_seconds:
            last_drop = now
            faults.counts["watch-drop"] += close_watches()
        if faults.compact_seconds <= 0:
            last_compact = now
        elif now - last_compact >= faults.compact_seconds:
            last_compact = now
            compact()
            faults.counts["compact"] += 1
