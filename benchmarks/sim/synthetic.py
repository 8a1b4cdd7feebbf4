"""A seeded synthetic workload generator, for when there is no trace at hand.

A spec (YAML) describes the workload statistically: how many pods, how they
arrive (a Poisson process), how long they run (exponential, or a heavy-tailed
lognormal that looks like real traces), and a mix of request classes with
their shares -- e.g. 60% small web pods, 30% memory-heavy, 10% large batch.
Each class draws its requests from a distribution and may carry a priority,
a node selector and tolerations. The same spec and seed always give the same
pods; the lab adds its run seed to the spec's seed, so every run seed draws a
different workload from the same distribution.

    kind: SyntheticWorkload
    seed: 1
    pods: 2000
    arrivals: {rate: 4}              # pods per second; omit for all at t=0
    durations: {distribution: exponential, mean: 600}   # or lognormal {median, sigma}, or none
    classes:
    - name: web
      share: 0.6
      cpu: [100m, 250m, 500m]        # a list: uniform choice; a scalar: fixed;
      memory: {choice: [128Mi, 256Mi], weights: [3, 1]}  # or {uniform: [lo, hi]}
      resources: {nvidia.com/gpu: 1} # optional other resources, same forms
      priority: 0
      nodeSelector: {pool: general}
      tolerations: [{key: dedicated, operator: Exists}]
      durations: {distribution: none}  # optional per-class override

Every error names the file and the field path (``classes[1].cpu.choice[2]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from benchmarks.sim.model import SimInputError, SimPod
from scoring.objects import CPU, MEMORY, ObjectError, pod_from_json
from scoring.quantity import QuantityError, milli_value, value
from scoring.safe_input import QUOTE_CHARS, quote

__all__ = ["KIND", "MAX_PODS", "SyntheticSpec", "is_synthetic", "parse_synthetic", "generate"]

KIND: Final = "SyntheticWorkload"
MAX_PODS: Final = 10_000_000
"""Pods a synthetic workload may draw: a thousand times the Alibaba GPU trace's 8,000, and about
what fits in a few GB; a larger count is a typo that would only exhaust memory."""
_TOP: Final = ("kind", "apiVersion", "seed", "pods", "arrivals", "durations", "classes")
_CLASS: Final = ("name", "share", "cpu", "memory", "resources", "priority", "nodeSelector", "tolerations", "durations")
_DISTRIBUTIONS: Final = ("none", "exponential", "lognormal")


@dataclass(frozen=True, slots=True)
class _Amount:
    """A request distribution: ``values`` with ``probs`` (a choice), or a uniform range [lo, hi]."""

    values: tuple[int, ...] = ()
    probs: tuple[float, ...] = ()
    uniform: tuple[int, int] | None = None

    def draw(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        if self.uniform is not None:
            return rng.integers(self.uniform[0], self.uniform[1] + 1, size=n, dtype=np.int64)
        idx = rng.choice(len(self.values), size=n, p=np.asarray(self.probs))
        return np.asarray(self.values, np.int64)[idx]


@dataclass(frozen=True, slots=True)
class _Durations:
    distribution: str = "none"
    mean: float = 0.0
    median: float = 0.0
    sigma: float = 0.0

    def draw(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64] | None:
        if self.distribution == "exponential":
            return rng.exponential(self.mean, size=n)
        if self.distribution == "lognormal":
            return np.asarray(rng.lognormal(np.log(self.median), self.sigma, size=n), np.float64)
        return None


@dataclass(frozen=True, slots=True)
class _Class:
    name: str
    share: float
    amounts: Mapping[str, _Amount]
    template: Mapping[str, Any]
    durations: _Durations | None


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    source: str
    seed: int
    pods: int
    rate: float | None
    """Poisson arrival rate in pods per second; None: every pod arrives at t=0."""
    durations: _Durations
    classes: tuple[_Class, ...]


def is_synthetic(doc: Any) -> bool:
    return isinstance(doc, Mapping) and (doc.get("kind") == KIND or ("classes" in doc and "kind" not in doc))


def _err(src: str, path: str, problem: str) -> SimInputError:
    return SimInputError(f"{src}: {path}: {problem}")


def _mapping(src: str, path: str, v: Any, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise _err(src, path, f"expected an object, got {type(v).__name__}")
    for k in v:
        if k not in allowed:
            key = k if isinstance(k, str) and len(k) <= QUOTE_CHARS else quote(k)
            raise _err(src, f"{path}.{key}" if path else key, f"unknown field (known: {', '.join(allowed)})")
    return v


def _number(src: str, path: str, v: Any, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise _err(src, path, f"expected a number, got {quote(v)}")
    if v < 0 or (positive and v == 0):
        raise _err(src, path, f"must be {'positive' if positive else 'non-negative'}, got {quote(v)}")
    return float(v)


def _quantity(src: str, path: str, resource: str, v: Any) -> int:
    try:
        amount = milli_value(v) if resource == CPU else value(v)
    except QuantityError as e:
        raise _err(src, path, str(e)) from None
    if amount < 0:
        raise _err(src, path, f"must not be negative, got {quote(v)}")
    return amount


def _amount(src: str, path: str, resource: str, v: Any) -> _Amount:
    if v is None:
        raise _err(src, path, "required")
    if isinstance(v, list):
        v = {"choice": v}
    if not isinstance(v, Mapping):
        return _Amount(values=(_quantity(src, path, resource, v),), probs=(1.0,))
    m = _mapping(src, path, v, ("choice", "weights", "uniform"))
    if "uniform" in m:
        u = m["uniform"]
        if not isinstance(u, list) or len(u) != 2:
            raise _err(src, f"{path}.uniform", "expected [low, high]")
        lo, hi = (_quantity(src, f"{path}.uniform[{i}]", resource, q) for i, q in enumerate(u))
        if hi < lo:
            raise _err(src, f"{path}.uniform", f"high must be >= low, got {quote(u)}")
        return _Amount(uniform=(lo, hi))
    choice = m.get("choice")
    if not isinstance(choice, list) or not choice:
        raise _err(src, f"{path}.choice", "expected a non-empty list of quantities")
    values = tuple(_quantity(src, f"{path}.choice[{i}]", resource, q) for i, q in enumerate(choice))
    weights = m.get("weights")
    if weights is None:
        probs = [1.0] * len(values)
    else:
        if not isinstance(weights, list) or len(weights) != len(values):
            raise _err(src, f"{path}.weights", f"expected {len(values)} numbers, one per choice")
        probs = [_number(src, f"{path}.weights[{i}]", w) for i, w in enumerate(weights)]
        if sum(probs) <= 0:
            raise _err(src, f"{path}.weights", "must not all be zero")
    total = sum(probs)
    return _Amount(values=values, probs=tuple(p / total for p in probs))


def _durations(src: str, path: str, v: Any) -> _Durations:
    m = _mapping(src, path, v, ("distribution", "mean", "median", "sigma"))
    dist = m.get("distribution", "none")
    if dist not in _DISTRIBUTIONS:
        raise _err(src, f"{path}.distribution", f"must be one of {', '.join(_DISTRIBUTIONS)}, got {quote(dist)}")
    if dist == "exponential":
        return _Durations(dist, mean=_number(src, f"{path}.mean", m.get("mean"), positive=True))
    if dist == "lognormal":
        return _Durations(dist, median=_number(src, f"{path}.median", m.get("median"), positive=True),
                          sigma=_number(src, f"{path}.sigma", m.get("sigma", 1.0)))
    return _Durations()


def _class(src: str, path: str, v: Any, index: int) -> _Class:
    m = _mapping(src, path, v, _CLASS)
    name = m.get("name", f"class{index}")
    if not isinstance(name, str) or not name:
        raise _err(src, f"{path}.name", f"expected a non-empty string, got {quote(name)}")
    share = _number(src, f"{path}.share", m.get("share"))
    amounts = {CPU: _amount(src, f"{path}.cpu", CPU, m.get("cpu")),
               MEMORY: _amount(src, f"{path}.memory", MEMORY, m.get("memory"))}
    extra = m.get("resources") or {}
    if not isinstance(extra, Mapping):
        raise _err(src, f"{path}.resources", "expected an object of resource: amount")
    for res, q in extra.items():
        amounts[str(res)] = _amount(src, f"{path}.resources.{res}", str(res), q)
    spec: dict[str, Any] = {"containers": [{"name": "app"}]}
    priority = m.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise _err(src, f"{path}.priority", f"expected an integer, got {quote(priority)}")
    spec["priority"] = priority
    if "nodeSelector" in m:
        spec["nodeSelector"] = m["nodeSelector"]
    if "tolerations" in m:
        spec["tolerations"] = m["tolerations"]
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "sim", "labels": {"class": name}},
                "spec": spec}
    try:  # validate selector and tolerations once, with the class named
        pod_from_json(template)
    except ObjectError as e:
        raise _err(src, path, e.field + ": " + e.problem) from None
    durations = _durations(src, f"{path}.durations", m["durations"]) if "durations" in m else None
    return _Class(name, share, amounts, template, durations)


def parse_synthetic(doc: Any, *, source: str) -> SyntheticSpec:
    """Validate a synthetic workload spec; errors name ``source`` and the field path."""
    m = _mapping(source, "", doc, _TOP)
    seed = m.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _err(source, "seed", f"expected a non-negative integer, got {quote(seed)}")
    pods = m.get("pods")
    if isinstance(pods, bool) or not isinstance(pods, int) or pods < 0:
        raise _err(source, "pods", f"expected a non-negative integer, got {quote(pods)}" if pods is not None else "required")
    if pods > MAX_PODS:
        raise _err(source, "pods", f"at most {MAX_PODS:,}, got {quote(pods)}")
    rate = None
    if m.get("arrivals") is not None:
        a = _mapping(source, "arrivals", m["arrivals"], ("rate",))
        rate = _number(source, "arrivals.rate", a.get("rate"), positive=True)
    durations = _durations(source, "durations", m.get("durations") or {})
    raw_classes = m.get("classes")
    if not isinstance(raw_classes, list) or not raw_classes:
        raise _err(source, "classes", "expected a non-empty list of request classes")
    classes = tuple(_class(source, f"classes[{i}]", c, i) for i, c in enumerate(raw_classes))
    if sum(c.share for c in classes) <= 0:
        raise _err(source, "classes", "the shares must not all be zero")
    names = [c.name for c in classes]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise _err(source, f"classes[{i}].name", f"duplicate class {quote(n)}")
    return SyntheticSpec(source, seed, pods, rate, durations, classes)


def generate(spec: SyntheticSpec, *, seed: int = 0) -> list[SimPod]:
    """The workload of ``spec`` for run seed ``seed`` (the generator seed is spec.seed + seed).

    Pods are named ``<class>-<index>`` and come in arrival order.
    """
    rng = np.random.default_rng([spec.seed + seed])
    n = spec.pods
    if n == 0:
        return []
    shares = np.array([c.share for c in spec.classes])
    cls = rng.choice(len(spec.classes), size=n, p=shares / shares.sum())
    arrivals = np.cumsum(rng.exponential(1.0 / spec.rate, size=n)) if spec.rate else np.zeros(n)
    base = spec.durations.draw(rng, n)
    out: list[SimPod | None] = [None] * n
    for ci, c in enumerate(spec.classes):
        idx = np.flatnonzero(cls == ci)
        if len(idx) == 0:
            continue
        draws = {res: a.draw(rng, len(idx)) for res, a in c.amounts.items()}
        durs = c.durations.draw(rng, len(idx)) if c.durations is not None else (base[idx] if base is not None else None)
        template = pod_from_json(c.template)
        for j, i in enumerate(idx.tolist()):
            requests = {res: int(d[j]) for res, d in draws.items() if d[j] > 0 or res in (CPU, MEMORY)}
            pod = replace(template, name=f"{c.name}-{i:06d}", uid=f"sim-{i}", requests=requests,
                          nonzero_cpu=requests[CPU], nonzero_memory=requests[MEMORY])
            out[i] = SimPod(pod, float(arrivals[i]), None if durs is None else float(durs[j]))
    return [p for p in out if p is not None]
