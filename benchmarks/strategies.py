"""Built-in placement strategies: named profiles the strategy lab can run without a config file.

A strategy is just a scheduling profile, so ``vecsched sim --strategies
BestFit,default`` and a ``KubeSchedulerConfiguration`` profile with
``schedulerName: BestFit`` mean the same thing. Each built-in is written here
once, as the ``profiles[]`` entry a user would write, and is read through
``scheduler.config.parse_config`` so it is validated exactly like a user's
file. Every built-in except ``default`` keeps kube-scheduler's default filters
and replaces all default score plugins by one plugin with weight 1.

``STRATEGIES`` is a plain dict: add an entry below, or call
``register_strategy("FGD", score_only("FGD", args={...}))`` from a module that
is imported before strategies are resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from scheduler.config import API_VERSION, ConfigError, ProfileConfig, SchedulerConfig, parse_config
from scoring.framework import Registry
from scoring.objects import PodInfo
from scoring.plugins import REGISTRY

__all__ = [
    "STRATEGIES",
    "WORKLOAD_STRATEGIES",
    "UnknownStrategyError",
    "score_only",
    "register_strategy",
    "builtin_profile",
    "builtin_profiles",
    "resolve_strategies",
]

_CPU_MEMORY: Final = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]


class UnknownStrategyError(ValueError):
    """A strategy name that is neither a profile of ``--config`` nor a built-in."""


def score_only(plugin: str, *, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A profile body: the default filters, ``plugin`` as the only score plugin (weight 1)."""
    body: dict[str, Any] = {
        "plugins": {"score": {"disabled": [{"name": "*"}], "enabled": [{"name": plugin, "weight": 1}]}},
    }
    if args is not None:
        body["pluginConfig"] = [{"name": plugin, "args": dict(args)}]
    return body


STRATEGIES: dict[str, dict[str, Any]] = {
    # kube-scheduler's default profile, unchanged.
    "default": {},
    "MostAllocated": score_only("NodeResourcesFit", args={
        "scoringStrategy": {"type": "MostAllocated", "resources": _CPU_MEMORY}}),
    # A bin-packing shape: the fuller a node would be, the higher its score.
    "RequestedToCapacityRatio": score_only("NodeResourcesFit", args={
        "scoringStrategy": {"type": "RequestedToCapacityRatio", "resources": _CPU_MEMORY,
                            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0},
                                                                   {"utilization": 100, "score": 10}]}}}),
    "DotProduct": score_only("DotProduct", args={"resources": _CPU_MEMORY}),
    "BestFit": score_only("BestFit", args={"resources": _CPU_MEMORY}),
    "WorstFit": score_only("WorstFit", args={"resources": _CPU_MEMORY}),
    "FirstFit": score_only("FirstFit"),
    "Random": score_only("Random"),
}
"""Built-in strategy name -> ``profiles[]`` entry (without ``schedulerName``)."""


WORKLOAD_STRATEGIES: list[Callable[[Sequence[PodInfo]], Mapping[str, Mapping[str, Any]]]] = []
"""Providers of workload-specific built-ins: given a workload's pods, profile bodies
that replace the built-ins of the same names for that workload (the GPU policies,
whose FGD needs the workload's typical pods; see ``benchmarks.gpu_strategies``)."""


def register_strategy(name: str, profile: Mapping[str, Any]) -> None:
    """Add a built-in strategy; refuses a name that is already taken."""
    if name in STRATEGIES:
        raise ValueError(f"strategy {name!r} is registered twice")
    STRATEGIES[name] = dict(profile)


def builtin_profile(name: str, *, registry: Registry = REGISTRY,
                    body: Mapping[str, Any] | None = None) -> ProfileConfig:
    """The validated profile of built-in strategy ``name`` (its schedulerName is ``name``),
    from ``body`` when given (a workload-specific definition)."""
    body = STRATEGIES.get(name) if body is None else body
    if body is None:
        raise UnknownStrategyError(f"unknown strategy {name!r} (built-in: {', '.join(STRATEGIES)})")
    doc = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
           "profiles": [{"schedulerName": name, **body}]}
    return parse_config(doc, source=f"<built-in strategy {name}>", registry=registry).profiles[0]


def builtin_profiles(*, registry: Registry = REGISTRY) -> dict[str, ProfileConfig]:
    """Every built-in strategy's validated profile, by name."""
    return {name: builtin_profile(name, registry=registry) for name in STRATEGIES}


def resolve_strategies(names: Iterable[str], *, config: SchedulerConfig | None = None,
                       registry: Registry = REGISTRY,
                       workload: Sequence[PodInfo] | None = None) -> dict[str, ProfileConfig]:
    """Each name as a profile of ``config`` (preferred) or a built-in strategy; with
    ``workload``, the ``WORKLOAD_STRATEGIES`` definitions for it replace built-ins.

    Raises UnknownStrategyError naming the strategy and what is available.
    """
    out: dict[str, ProfileConfig] = {}
    specific: dict[str, Mapping[str, Any]] = {}
    if workload is not None:
        for provider in WORKLOAD_STRATEGIES:
            specific.update(provider(workload))
    for name in names:
        if name in out:
            raise UnknownStrategyError(f"strategy {name!r} is listed twice")
        if config is not None and any(p.scheduler_name == name for p in config.profiles):
            out[name] = config.profile(name)
        elif name in STRATEGIES or name in specific:
            try:
                out[name] = builtin_profile(name, registry=registry, body=specific.get(name))
            except ConfigError as e:
                raise UnknownStrategyError(f"strategy {name!r} cannot be built: {e}") from None
        else:
            have = [p.scheduler_name for p in config.profiles] if config is not None else []
            raise UnknownStrategyError(
                f"unknown strategy {name!r} (profiles in --config: {', '.join(have) or 'none'}; "
                f"built-in: {', '.join(STRATEGIES)})")
    return out


# The GPU-sharing policies of Weng et al. (ATC '23): see benchmarks.gpu_strategies.
from benchmarks.gpu_strategies import GPU_ONLY_STRATEGIES, gpu_strategies_for  # noqa: E402

STRATEGIES.update(GPU_ONLY_STRATEGIES)
WORKLOAD_STRATEGIES.append(gpu_strategies_for)
