"""Args of NodeResourcesFit and NodeResourcesBalancedAllocation, read as
kube-scheduler reads ``kubescheduler.config.k8s.io/v1``.

Each reader applies upstream's v1 defaults first (no ``scoringStrategy``:
LeastAllocated over cpu and memory; no ``resources``: cpu and memory; a weight
of 0 or none: 1) and then upstream's validation
(``ValidateNodeResourcesFitArgs`` / ``ValidateNodeResourcesBalancedAllocationArgs``),
raising ``ArgsError`` for the first error upstream would report, at the full
path of the field (``<args path>.scoringStrategy.resources[1].weight``).
Unknown fields are errors, as with upstream's strict decoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from scoring.args import ArgsError, integer, known_fields, mapping, sequence, string
from scoring.objects import CPU, MEMORY
from scoring.plugins.resource_names import qualified_name_errors
from scoring.safe_input import QUOTE_CHARS, quote

__all__ = [
    "LEAST_ALLOCATED",
    "MOST_ALLOCATED",
    "REQUESTED_TO_CAPACITY_RATIO",
    "MAX_CUSTOM_PRIORITY_SCORE",
    "ResourceSpec",
    "ScoringStrategy",
    "FitArgs",
    "parse_fit_args",
    "parse_balanced_allocation_args",
    "parse_shape",
    "validate_shape",
]

LEAST_ALLOCATED: Final = "LeastAllocated"
MOST_ALLOCATED: Final = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO: Final = "RequestedToCapacityRatio"
_STRATEGY_TYPES: Final = (LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO)
MAX_CUSTOM_PRIORITY_SCORE: Final = 10
"""Upstream's config.MaxCustomPriorityScore: shape scores are 0..10."""
_MAX_WEIGHT: Final = 100
_MAX_UTILIZATION: Final = 100


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    name: str
    weight: int


_DEFAULT_RESOURCES: Final = (ResourceSpec(CPU, 1), ResourceSpec(MEMORY, 1))


@dataclass(frozen=True, slots=True)
class ScoringStrategy:
    type: str
    resources: tuple[ResourceSpec, ...]
    shape: tuple[tuple[int, int], ...] = ()
    """RequestedToCapacityRatio's (utilization 0..100, score 0..10) points, as configured."""


@dataclass(frozen=True, slots=True)
class FitArgs:
    ignored_resources: frozenset[str]
    ignored_resource_groups: frozenset[str]
    strategy: ScoringStrategy


def _cut(text: str) -> str:
    """A value as Go's field errors print it inside quotes, cut after ``QUOTE_CHARS`` characters."""
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}... ({len(text):,} characters)"


def _at(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _strings(v: Any, path: str) -> list[str]:
    return [string(s, f"{path}[{i}]") for i, s in enumerate(sequence(v, path))]


def _resources(v: Any, path: str) -> list[ResourceSpec]:
    """Decode ``resources`` with upstream's defaults (empty -> cpu, memory; weight 0 -> 1)."""
    out = []
    for i, r in enumerate(sequence(v, path)):
        rpath = f"{path}[{i}]"
        r = mapping(r, rpath)
        known_fields(r, ("name", "weight"), rpath)
        name = string(r.get("name", ""), f"{rpath}.name")
        weight = integer(r.get("weight", 0), f"{rpath}.weight")
        out.append(ResourceSpec(name, weight or 1))
    return out or list(_DEFAULT_RESOURCES)


def parse_shape(v: Any, path: str) -> list[tuple[int, int]]:
    points = []
    for i, p in enumerate(sequence(v, path)):
        ppath = f"{path}[{i}]"
        p = mapping(p, ppath)
        known_fields(p, ("utilization", "score"), ppath)
        points.append((integer(p.get("utilization", 0), f"{ppath}.utilization"),
                       integer(p.get("score", 0), f"{ppath}.score")))
    return points


def validate_shape(shape: list[tuple[int, int]], path: str) -> None:
    """Upstream's validateFunctionShape, first error first."""
    if not shape:
        raise ArgsError(path, "Required value: at least one point must be specified")
    for i in range(1, len(shape)):
        if shape[i - 1][0] >= shape[i][0]:
            raise ArgsError(f"{path}[{i}].utilization",
                            f"Invalid value: {shape[i][0]}: values must be sorted in increasing order")
    for i, (utilization, score) in enumerate(shape):
        if not 0 <= utilization <= _MAX_UTILIZATION:
            raise ArgsError(f"{path}[{i}].utilization",
                            f"Invalid value: {utilization}: not in valid range [0, {_MAX_UTILIZATION}]")
        if not 0 <= score <= MAX_CUSTOM_PRIORITY_SCORE:
            raise ArgsError(f"{path}[{i}].score",
                            f"Invalid value: {score}: not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]")


def parse_fit_args(args: Mapping[str, Any], path: str) -> FitArgs:
    """NodeResourcesFitArgs: ``ignoredResources``, ``ignoredResourceGroups``, ``scoringStrategy``."""
    m = mapping(args, path)
    known_fields(m, ("ignoredResources", "ignoredResourceGroups", "scoringStrategy"), path)
    ignored = _strings(m.get("ignoredResources"), _at(path, "ignoredResources"))
    groups = _strings(m.get("ignoredResourceGroups"), _at(path, "ignoredResourceGroups"))
    spath = _at(path, "scoringStrategy")
    raw = m.get("scoringStrategy")
    ratio_given = False
    if raw is None:
        strategy = ScoringStrategy(LEAST_ALLOCATED, _DEFAULT_RESOURCES)
    else:
        s = mapping(raw, spath)
        known_fields(s, ("type", "resources", "requestedToCapacityRatio"), spath)
        stype = string(s.get("type", ""), f"{spath}.type")
        resources = _resources(s.get("resources"), f"{spath}.resources")
        rpath = f"{spath}.requestedToCapacityRatio"
        ratio = s.get("requestedToCapacityRatio")
        shape: list[tuple[int, int]] = []
        if ratio is not None:
            ratio_given = True
            r = mapping(ratio, rpath)
            known_fields(r, ("shape",), rpath)
            shape = parse_shape(r.get("shape"), f"{rpath}.shape")
        strategy = ScoringStrategy(stype, tuple(resources), tuple(shape))

    # Validation, in upstream's order.
    for i, res in enumerate(ignored):
        if errs := qualified_name_errors(res):
            raise ArgsError(f"{_at(path, 'ignoredResources')}[{i}]", f"Invalid value: {quote(res)}: {'; '.join(errs)}")
    for i, group in enumerate(groups):
        gpath = f"{_at(path, 'ignoredResourceGroups')}[{i}]"
        errs = (["resource group name can't contain '/'"] if "/" in group else []) + qualified_name_errors(group)
        if errs:
            raise ArgsError(gpath, f"Invalid value: {quote(group)}: {'; '.join(errs)}")
    if strategy.type not in _STRATEGY_TYPES:
        supported = ", ".join(f'"{t}"' for t in _STRATEGY_TYPES)
        raise ArgsError(f"{spath}.type", f'Unsupported value: "{_cut(strategy.type)}": supported values: {supported}')
    for i, spec in enumerate(strategy.resources):
        if not 0 < spec.weight <= _MAX_WEIGHT:
            raise ArgsError(f"{spath}.resources[{i}].weight",
                            f"Invalid value: {spec.weight}: resource weight of {spec.name} not in valid range (0, 100]")
    rpath = f"{spath}.requestedToCapacityRatio"
    if strategy.type == REQUESTED_TO_CAPACITY_RATIO:
        if not ratio_given:
            raise ArgsError(rpath, "Required value: must be specified when type is RequestedToCapacityRatio")
        validate_shape(list(strategy.shape), f"{rpath}.shape")
    elif ratio_given:
        raise ArgsError(rpath, "Forbidden: must be nil when type is not RequestedToCapacityRatio")
    return FitArgs(frozenset(ignored), frozenset(groups), strategy)


def parse_balanced_allocation_args(args: Mapping[str, Any], path: str) -> tuple[ResourceSpec, ...]:
    """NodeResourcesBalancedAllocationArgs: ``resources``; names unique, every weight 1
    (upstream's balanced allocation ignores weights but insists on 1)."""
    m = mapping(args, path)
    known_fields(m, ("resources",), path)
    rpath = _at(path, "resources")
    resources = _resources(m.get("resources"), rpath)
    seen: set[str] = set()
    for i, res in enumerate(resources):
        if res.name in seen:
            raise ArgsError(f"{rpath}[{i}].name", f"Duplicate value: {quote(res.name)}")
        seen.add(res.name)
        if res.weight != 1:
            raise ArgsError(f"{rpath}[{i}].weight", f"Invalid value: {res.weight}: must be 1")
    return tuple(resources)
