"""KubeSchedulerConfiguration profiles, read as kube-scheduler reads them.

A kube-scheduler user brings their ``kubescheduler.config.k8s.io/v1`` file
and gets the same profiles: the default plugins merged with the profile's
``plugins`` sets exactly as upstream's ``mergePlugins`` and
``expandMultiPointPlugins`` do, weights, ``pluginConfig`` args and
``percentageOfNodesToScore``. vecsched's own plugins are enabled by name in
the same file, and a profile may carry one field of vecsched's own next to
``schedulerName``: ``vecsched.io/tieBreak`` (``Random``, the default and
kube-scheduler's choice, ``NodeName`` or ``NodeOrder``; see
``scoring.tie_break``) and ``vecsched.io/batching`` (``true``, the default, or
``false``: whether the live cycle decides signable pods with ``scoring.batching``,
as kube-scheduler 1.35's OpportunisticBatching), which kube-scheduler's strict
decoding would refuse as unknown fields -- a file read by both must leave them out.

Reading is strict: an unknown field, an unknown plugin, a weight <= 0, a
duplicate profile, or args of the wrong type raise ``ConfigError`` naming the
path in the file (``profiles[0].pluginConfig[1].args.scoringStrategy.type``).
Fields that vecsched accepts but does not use, and upstream plugins it does not
implement (wherever a profile lists them; the warning says what vecsched does
instead), produce warnings. A file holding a ConfigMap -- the shipped
deploy/config.yaml -- is read for the configuration under its data key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from scoring.args import ArgsError, boolean, integer, known_fields, known_names, mapping, sequence, string
from scoring.framework import (RANDOM, TIE_BREAKS, FilterPlugin, PermitPlugin, Plugin, PostFilterPlugin,
                               PreFilterPlugin, Profile, QueueSortPlugin, Registry, ReservePlugin, ScorePlugin)
from scoring.plugins import REGISTRY
from scoring.safe_input import (MAX_OBJECT_BYTES, InputError, check_tree, clip, loads_json, loads_yaml_all,
                                 one_line, quote, read_text)

__all__ = [
    "API_VERSION",
    "DEFAULT_SCHEDULER_NAME",
    "TIE_BREAK_FIELD",
    "BATCHING_FIELD",
    "ConfigError",
    "LeaderElection",
    "ProfileConfig",
    "SchedulerConfig",
    "load_config",
    "config_from_configmap",
    "CONFIG_MAP",
    "config_map_ref",
    "parse_config",
    "default_config",
]

API_VERSION: Final = "kubescheduler.config.k8s.io/v1"
DEFAULT_SCHEDULER_NAME: Final = "vecsched"
CONFIG_MAP: Final = "vecsched/vecsched-config"
"""The ConfigMap deploy/config.yaml ships (namespace/name), holding the configuration under
``config.yaml``: where the tools that read a cluster look for vecsched's configuration."""
INT32_MAX: Final = 2**31 - 1
TIE_BREAK_FIELD: Final = "vecsched.io/tieBreak"
"""The profile field (vecsched's own, next to ``schedulerName``) choosing among equal totals."""
BATCHING_FIELD: Final = "vecsched.io/batching"
"""The profile field (vecsched's own, next to ``schedulerName``) turning opportunistic batching off."""

# Upstream's default multiPoint set (pkg/scheduler/apis/config/v1/default_plugins.go),
# in upstream's order, with score weights. Plugins vecsched does not implement
# are dropped when the profile is built, with no warning: they are defaults,
# not the user's choice.
DEFAULT_MULTIPOINT: Final[tuple[tuple[str, int], ...]] = (
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
)

# vecsched's additions to the default set: gang scheduling for pods that name a PodGroup
# (a pod without the label is not affected). Its QueueSort is not enabled by default:
# the queue keeps upstream's PrioritySort unless a profile chooses otherwise.
VECSCHED_DEFAULT_MULTIPOINT: Final[tuple[tuple[str, int], ...]] = (("Coscheduling", 0),)
_PRIORITY_SORT: Final = "PrioritySort"

# Upstream plugins whose work vecsched's runtime does itself (queue order,
# scheduling gates, binding): accepted in a config, nothing to build.
_RUNTIME_PLUGINS: Final = frozenset({"PrioritySort", "SchedulingGates", "DefaultBinder"})
# Upstream plugins vecsched does not implement: accepted with a warning so
# that an upstream profile loads, but they take no part in decisions.
_UNIMPLEMENTED: Final = frozenset({
    "EBSLimits", "GCEPDLimits", "AzureDiskLimits", "CinderLimits", "NodeDeclaredFeatures",
    "DynamicResources",
})
_INSTEAD: Final[Mapping[str, str]] = {
    **{n: "NodeVolumeLimits counts these volumes through their CSI drivers, as upstream does since it removed it"
       for n in ("EBSLimits", "GCEPDLimits", "AzureDiskLimits", "CinderLimits")},
    "NodeDeclaredFeatures": "node feature declarations are not checked",
    "DynamicResources": "ResourceClaims are not allocated: a pod's claims do not limit where it goes",
}
"""For the warning about each unimplemented plugin: what vecsched does instead."""
_CONFIGMAP_KEY: Final = "config.yaml"
"""The data key of the shipped ConfigMap (deploy/config.yaml) holding the configuration."""
_CONFIG_SUFFIXES: Final = (".yaml", ".yml", ".json")

_EXTENSION_POINTS: Final = (
    "preEnqueue", "queueSort", "preFilter", "filter", "postFilter", "preScore", "score",
    "reserve", "permit", "preBind", "bind", "postBind", "multiPoint",
)
_TOP_FIELDS: Final = (
    "apiVersion", "kind", "parallelism", "leaderElection", "clientConnection", "healthzBindAddress",
    "metricsBindAddress", "enableProfiling", "enableContentionProfiling", "percentageOfNodesToScore",
    "podInitialBackoffSeconds", "podMaxBackoffSeconds", "profiles", "extenders", "delayCacheUntilActive",
)
_UNUSED_FIELDS: Final = ("parallelism", "clientConnection", "healthzBindAddress", "metricsBindAddress",
                         "enableProfiling", "enableContentionProfiling", "extenders", "delayCacheUntilActive")


class ConfigError(ArgsError):
    """An invalid configuration file, naming the file and the path of the field."""


@dataclass(frozen=True, slots=True)
class LeaderElection:
    """``leaderElection``: upstream's defaults (15 s lease, 10 s renew deadline, 2 s retry)."""

    leader_elect: bool = True
    lease_duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    resource_name: str = "vecsched"
    resource_namespace: str = "kube-system"


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """One profile after merging with the defaults: plugin names per extension point."""

    scheduler_name: str
    prefilters: tuple[str, ...]
    filters: tuple[str, ...]
    scores: tuple[tuple[str, int], ...]
    postfilters: tuple[str, ...]
    plugin_args: Mapping[str, Mapping[str, Any]]
    args_paths: Mapping[str, str]
    percentage_of_nodes_to_score: int | None
    permits: tuple[str, ...] = ()
    reserves: tuple[str, ...] = ()
    queue_sort: str = _PRIORITY_SORT
    """The profile's QueueSort plugin (PrioritySort: the queue's own order)."""
    tie_break: str = RANDOM
    """``vecsched.io/tieBreak``: how the profile chooses among nodes of equal best total."""
    batching: bool = True
    """``vecsched.io/batching``: whether the live cycle batches signable pods (default true;
    the decisions are the same either way, only their cost differs)."""

    def build(self, *, registry: Registry = REGISTRY, seed: int = 0) -> Profile:
        """Instantiate the plugins (one instance per name) and assemble the Profile."""
        instances: dict[str, Plugin] = {}

        def get(name: str) -> Plugin:
            if name not in instances:
                try:
                    instances[name] = registry[name](self.plugin_args.get(name, {}), self.args_paths.get(name, f"pluginConfig[{name}].args"))
                except ArgsError as e:
                    raise ConfigError(e.path, e.problem) from None
            return instances[name]

        prefilters = [p for p in map(get, self.prefilters) if isinstance(p, PreFilterPlugin)]
        filters = [p for p in map(get, self.filters) if isinstance(p, FilterPlugin)]
        scorers = [(p, w) for p, w in ((get(n), w) for n, w in self.scores) if isinstance(p, ScorePlugin)]
        postfilters = [p for p in map(get, self.postfilters) if isinstance(p, PostFilterPlugin)]
        permits = [p for p in map(get, self.permits) if isinstance(p, PermitPlugin)]
        for name in self.reserves:
            get(name)
        sort = get(self.queue_sort) if self.queue_sort in registry else None
        # Reserve follows the filters: a plugin that filters on node-local devices also claims them.
        reservers = [p for p in instances.values() if isinstance(p, ReservePlugin)]
        return Profile(name=self.scheduler_name, prefilters=prefilters, filters=filters, scorers=scorers,
                       reservers=reservers, postfilters=postfilters, permits=permits,
                       queue_sort=sort if isinstance(sort, QueueSortPlugin) else None,
                       percentage_of_nodes_to_score=self.percentage_of_nodes_to_score, seed=seed,
                       tie_break=self.tie_break, batching=self.batching)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    profiles: tuple[ProfileConfig, ...]
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    warnings: tuple[str, ...] = ()
    source: str = "<defaults>"

    def profile(self, name: str) -> ProfileConfig:
        for p in self.profiles:
            if p.scheduler_name == name:
                return p
        raise ConfigError("profiles", f"no profile with schedulerName {quote(name)} (have: {', '.join(p.scheduler_name for p in self.profiles)})")

    def build(self, *, registry: Registry = REGISTRY, seed: int = 0) -> dict[str, Profile]:
        return {p.scheduler_name: p.build(registry=registry, seed=seed) for p in self.profiles}


# ---- plugin sets ---------------------------------------------------------------------------


@dataclass(slots=True)
class _PluginSet:
    enabled: list[tuple[str, int | None]]
    disabled: set[str]


def _plugin_set(v: Any, path: str, known: set[str]) -> _PluginSet:
    m = mapping(v, path)
    known_fields(m, ("enabled", "disabled"), path)
    out = _PluginSet([], set())
    for key in ("enabled", "disabled"):
        for i, item in enumerate(sequence(m.get(key), f"{path}.{key}")):
            ipath = f"{path}.{key}[{i}]"
            item = mapping(item, ipath)
            known_fields(item, ("name", "weight"), ipath)
            name = string(item.get("name"), f"{ipath}.name")
            if name != "*" and name not in known:
                raise ConfigError(f"{ipath}.name", f"unknown plugin {quote(name)} (known: {known_names(known, name)})")
            weight = item.get("weight")
            if weight is not None:
                # Plugin.Weight is an int32 upstream: a larger one does not decode.
                weight = integer(weight, f"{ipath}.weight", hi=INT32_MAX)
                if weight <= 0:
                    raise ConfigError(f"{ipath}.weight", f"must be > 0, got {weight}")
            if key == "enabled":
                if name == "*":
                    raise ConfigError(f"{ipath}.name", '"*" is only allowed in disabled lists')
                out.enabled.append((name, weight))
            else:
                out.disabled.add(name)
    return out


def _merge_multipoint(custom: _PluginSet) -> list[tuple[str, int | None]]:
    """Upstream's mergePluginSet for multiPoint: defaults minus disabled, a default
    re-listed by the user is replaced in place, the user's others appended."""
    disabled = custom.disabled
    by_name = {name: (i, (name, w)) for i, (name, w) in enumerate(custom.enabled)}
    replaced: set[int] = set()
    merged: list[tuple[str, int | None]] = []
    for name, weight in DEFAULT_MULTIPOINT:
        if "*" in disabled or name in disabled:
            continue
        if name in by_name:
            i, plugin = by_name[name]
            merged.append(plugin)
            replaced.add(i)
        else:
            merged.append((name, weight or None))
    merged.extend(p for i, p in enumerate(custom.enabled) if i not in replaced)
    listed = {name for name, _ in merged}
    merged.extend((name, weight or None) for name, weight in VECSCHED_DEFAULT_MULTIPOINT
                  if name not in listed and "*" not in disabled and name not in disabled)
    return merged


def _expand(point: str, multipoint: list[tuple[str, int | None]], specific: _PluginSet, implements: set[str],
            path: str) -> list[tuple[str, int | None]]:
    """Upstream's expandMultiPointPlugins for one extension point.

    Order: plugins the specific point overrides (in its order), then multiPoint
    plugins, then the specific point's other plugins.
    """
    if "*" in specific.disabled:
        return [p for p in specific.enabled]
    specific_names = [n for n, _ in specific.enabled]
    overrides: list[str] = []
    from_multipoint: list[tuple[str, int | None]] = []
    for name, weight in multipoint:
        if name not in implements or name in specific.disabled:
            continue
        if name in specific_names:
            overrides.append(name)
            continue
        if any(n == name for n, _ in from_multipoint):
            raise ConfigError(f"{path}.multiPoint", f"plugin {quote(name)} already registered as {point}")
        from_multipoint.append((name, weight))
    seen = set(specific_names)
    if len(seen) != len(specific_names):
        dup = next(n for n in specific_names if specific_names.count(n) > 1)
        raise ConfigError(f"{path}.{point}.enabled", f"plugin {quote(dup)} enabled twice")
    weights = dict(specific.enabled)
    ordered = [(n, weights[n]) for n in overrides] + from_multipoint
    ordered += [(n, w) for n, w in specific.enabled if n not in overrides]
    return ordered


def _points_of(name: str, registry: Registry) -> set[str]:
    """The extension points a registered plugin implements (checked on a default instance)."""
    if name not in registry:
        return set()
    plugin = registry[name]({}, "")
    points = set()
    if isinstance(plugin, PreFilterPlugin):
        points.add("preFilter")
    if isinstance(plugin, FilterPlugin):
        points.add("filter")
    if isinstance(plugin, ScorePlugin):
        points.add("score")
    if isinstance(plugin, PostFilterPlugin):
        points.add("postFilter")
    if isinstance(plugin, PermitPlugin):
        points.add("permit")
    if isinstance(plugin, ReservePlugin):
        points.add("reserve")
    if isinstance(plugin, QueueSortPlugin):
        points.add("queueSort")
    return points


def _percentage(v: Any, path: str) -> int | None:
    return None if v is None else integer(v, path, lo=0, hi=100)


def _profile(raw: Any, path: str, registry: Registry, global_pct: int | None, warnings: list[str],
             *, only: bool) -> ProfileConfig:
    m = mapping(raw, path)
    known_fields(m, ("schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig", TIE_BREAK_FIELD,
                          BATCHING_FIELD), path)
    if "schedulerName" not in m and not only:
        # As upstream: the name is defaulted only when there is a single profile.
        raise ConfigError(f"{path}.schedulerName", "required when there is more than one profile")
    name = string(m.get("schedulerName", DEFAULT_SCHEDULER_NAME), f"{path}.schedulerName")
    if not name:
        raise ConfigError(f"{path}.schedulerName", "must not be empty")
    pct = _percentage(m.get("percentageOfNodesToScore"), f"{path}.percentageOfNodesToScore")
    raw_tie_break = m.get(TIE_BREAK_FIELD)  # null, as absent, is kube-scheduler's own choice
    tie_break = RANDOM if raw_tie_break is None else string(raw_tie_break, f"{path}.{TIE_BREAK_FIELD}",
                                                             choices=TIE_BREAKS)
    raw_batching = m.get(BATCHING_FIELD)  # null, as absent: on, as kube-scheduler 1.35's feature gate
    batching = True if raw_batching is None else boolean(raw_batching, f"{path}.{BATCHING_FIELD}")
    known = set(registry) | _RUNTIME_PLUGINS | _UNIMPLEMENTED
    plugins = mapping(m.get("plugins"), f"{path}.plugins")
    known_fields(plugins, _EXTENSION_POINTS, f"{path}.plugins")
    sets = {p: _plugin_set(plugins.get(p), f"{path}.plugins.{p}", known) for p in _EXTENSION_POINTS}
    multipoint = _merge_multipoint(sets["multiPoint"])
    for point in ("preFilter", "filter", "postFilter", "score", "permit", "reserve"):
        for n, _ in sets[point].enabled:
            if n not in registry and n not in _UNIMPLEMENTED:  # those are warned about below, wherever listed
                raise ConfigError(f"{path}.plugins.{point}", f"plugin {quote(n)} is not a {point} plugin in vecsched")
    for n, _ in sets["queueSort"].enabled:
        if n != _PRIORITY_SORT and "queueSort" not in _points_of(n, registry):
            raise ConfigError(f"{path}.plugins.queueSort", f"plugin {quote(n)} is not a queueSort plugin in vecsched")
    implements = {n: _points_of(n, registry) for n, _ in multipoint}
    implements[_PRIORITY_SORT] = {"queueSort"}
    points = {}
    for point in ("preFilter", "filter", "postFilter", "score", "permit", "reserve"):
        names = {n for n, pts in implements.items() if point in pts}
        points[point] = _expand(point, multipoint, sets[point], names, f"{path}.plugins")
    # vecsched's own default additions never take the queue: only PrioritySort and the
    # plugins the profile lists itself may sort it.
    own = {n for n, _ in sets["multiPoint"].enabled}
    sorting = {n for n, pts in implements.items() if "queueSort" in pts and (n == _PRIORITY_SORT or n in own)}
    points["queueSort"] = _expand("queueSort", multipoint, sets["queueSort"], sorting, f"{path}.plugins")
    if not points["queueSort"]:
        # The queue always has an order: with every plugin disabled it is PrioritySort's.
        points["queueSort"] = [(_PRIORITY_SORT, None)]
    if len(points["queueSort"]) > 1:
        raise ConfigError(f"{path}.plugins.queueSort", "only one queue sort plugin can be enabled, got "
                          + ", ".join(n for n, _ in points["queueSort"]))
    mentioned = {n for s in sets.values() for n, _ in s.enabled} | {n for n, _ in multipoint}
    for n in sorted(mentioned & (_UNIMPLEMENTED - set(registry))):
        if any(n == e for s in sets.values() for e, _ in s.enabled):
            warnings.append(f"{path}.plugins: {n} is not implemented by vecsched and is ignored ({_INSTEAD[n]})")

    args: dict[str, Mapping[str, Any]] = {}
    args_paths: dict[str, str] = {}
    for i, pc in enumerate(sequence(m.get("pluginConfig"), f"{path}.pluginConfig")):
        ppath = f"{path}.pluginConfig[{i}]"
        pc = mapping(pc, ppath)
        known_fields(pc, ("name", "args"), ppath)
        pname = string(pc.get("name"), f"{ppath}.name")
        if pname not in known:
            raise ConfigError(f"{ppath}.name", f"unknown plugin {quote(pname)} (known: {known_names(known, pname)})")
        if pname in args:
            raise ConfigError(f"{ppath}.name", f"repeated config for plugin {quote(pname)}")
        a = dict(mapping(pc.get("args"), f"{ppath}.args"))
        kind = a.pop("kind", None)
        a.pop("apiVersion", None)
        if kind is not None and kind != f"{pname}Args":
            raise ConfigError(f"{ppath}.args.kind", f"expected {pname}Args, got {quote(kind)}")
        if pname not in registry:
            warnings.append(f"{ppath}: args for {pname}, which vecsched does not implement, are ignored")
            continue
        args[pname], args_paths[pname] = a, f"{ppath}.args"

    def weight(w: int | None) -> int:
        return 1 if w is None else w

    return ProfileConfig(
        scheduler_name=name,
        prefilters=tuple(n for n, _ in points["preFilter"] if n in registry),
        filters=tuple(n for n, _ in points["filter"] if n in registry),
        scores=tuple((n, weight(w)) for n, w in points["score"] if n in registry),
        postfilters=tuple(n for n, _ in points["postFilter"] if n in registry),
        plugin_args=args,
        args_paths=args_paths,
        percentage_of_nodes_to_score=pct if pct is not None else global_pct,
        permits=tuple(n for n, _ in points["permit"] if n in registry),
        reserves=tuple(n for n, _ in points["reserve"] if n in registry),
        queue_sort=points["queueSort"][0][0],
        tie_break=tie_break,
        batching=batching,
    )


def _leader_election(v: Any, path: str) -> LeaderElection:
    m = mapping(v, path)
    known_fields(m, ("leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceLock",
                     "resourceName", "resourceNamespace"), path)
    d = LeaderElection()

    def seconds(key: str, default: float) -> float:
        if key not in m:
            return default
        return _duration(m[key], f"{path}.{key}")

    if "resourceLock" in m and string(m["resourceLock"], f"{path}.resourceLock") != "leases":
        raise ConfigError(f"{path}.resourceLock", "only 'leases' is supported")
    return LeaderElection(
        leader_elect=boolean(m.get("leaderElect", d.leader_elect), f"{path}.leaderElect"),
        lease_duration_seconds=seconds("leaseDuration", d.lease_duration_seconds),
        renew_deadline_seconds=seconds("renewDeadline", d.renew_deadline_seconds),
        retry_period_seconds=seconds("retryPeriod", d.retry_period_seconds),
        resource_name=string(m.get("resourceName", d.resource_name), f"{path}.resourceName"),
        resource_namespace=string(m.get("resourceNamespace", d.resource_namespace), f"{path}.resourceNamespace"),
    )


_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(v: Any, path: str) -> float:
    """A Go duration string as metav1.Duration writes it (``15s``, ``1m30s``, ``500ms``)."""
    if not isinstance(v, str) or not re.fullmatch(r"(\d+(\.\d+)?(ms|s|m|h))+", v):
        raise ConfigError(path, f"expected a duration such as 15s or 1m30s, got {quote(v)}")
    total = sum(float(num) * _UNITS[unit] for num, _, unit in re.findall(r"(\d+(\.\d+)?)(ms|s|m|h)", v))
    if total <= 0:
        raise ConfigError(path, f"must be positive, got {quote(v)}")
    return total


def parse_config(doc: Any, *, source: str = "<config>", registry: Registry = REGISTRY) -> SchedulerConfig:
    """Validate a decoded KubeSchedulerConfiguration document."""
    try:
        try:
            check_tree(doc)  # documents decoded elsewhere (the webhook's) included
        except InputError as e:
            raise ConfigError(e.path, e.problem) from None
        m = mapping(doc, "")
        known_fields(m, _TOP_FIELDS, "")
        if m.get("apiVersion") != API_VERSION:
            raise ConfigError("apiVersion", f"expected {API_VERSION}, got {quote(m.get('apiVersion'))}")
        if m.get("kind") != "KubeSchedulerConfiguration":
            raise ConfigError("kind", f"expected KubeSchedulerConfiguration, got {quote(m.get('kind'))}")
        warnings = [f"{k}: accepted but not used by vecsched" for k in _UNUSED_FIELDS if k in m]
        pct = _percentage(m.get("percentageOfNodesToScore"), "percentageOfNodesToScore")
        initial = integer(m.get("podInitialBackoffSeconds", 1), "podInitialBackoffSeconds", lo=1)
        maximum = integer(m.get("podMaxBackoffSeconds", 10), "podMaxBackoffSeconds", lo=1)
        if maximum < initial:
            raise ConfigError("podMaxBackoffSeconds", f"must be >= podInitialBackoffSeconds ({initial}), got {maximum}")
        raw_profiles = sequence(m.get("profiles"), "profiles") or [{}]
        profiles = [_profile(p, f"profiles[{i}]", registry, pct, warnings, only=len(raw_profiles) == 1)
                    for i, p in enumerate(raw_profiles)]
        seen: set[str] = set()
        for i, p in enumerate(profiles):
            if p.scheduler_name in seen:
                raise ConfigError(f"profiles[{i}].schedulerName", f"duplicate profile {quote(p.scheduler_name)}")
            seen.add(p.scheduler_name)
            if p.queue_sort != profiles[0].queue_sort:
                # One queue serves every profile (upstream's rule and message).
                raise ConfigError(f"profiles[{i}].plugins.queueSort", f'different queue sort plugins for profile '
                                  f'"{p.scheduler_name}": "{p.queue_sort}", first: "{profiles[0].queue_sort}"')

        # Build once so that plugin args are validated now, not at the first pod.
        cfg = SchedulerConfig(
            profiles=tuple(profiles),
            pod_initial_backoff_seconds=float(initial),
            pod_max_backoff_seconds=float(maximum),
            leader_election=_leader_election(m.get("leaderElection"), "leaderElection"),
            warnings=tuple(warnings),
            source=source,
        )
        built = list(cfg.build(registry=registry).values())
        for i, b in enumerate(built):
            if getattr(b.queue_sort, "args", None) != getattr(built[0].queue_sort, "args", None):
                # Upstream's rule too: one queue, so one way of ordering it.
                raise ConfigError(f"profiles[{i}].pluginConfig",
                                  f'different queue sort plugin args for profile "{b.name}"')
        return cfg
    except ArgsError as e:
        raise ConfigError(f"{source}: {e.path}" if e.path else source, e.problem) from None


def default_config(*, registry: Registry = REGISTRY) -> SchedulerConfig:
    """One profile, ``schedulerName: vecsched``, with kube-scheduler's default plugins and weights."""
    return parse_config({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration"}, source="<defaults>", registry=registry)


def load_config(path: str | Path | None, *, registry: Registry = REGISTRY) -> SchedulerConfig:
    """Read a YAML or JSON KubeSchedulerConfiguration file -- or a ConfigMap holding one, as
    deploy/config.yaml ships it; the defaults when ``path`` is None."""
    if path is None:
        return default_config(registry=registry)
    p = Path(path)
    try:
        text = read_text(p, max_bytes=MAX_OBJECT_BYTES)
    except OSError as e:
        raise ConfigError(str(p), f"cannot read: {e.strerror or type(e).__name__}") from None
    except InputError as e:
        raise ConfigError(str(p), str(e)) from None
    doc = _decode(text, json_format=p.suffix == ".json", source=str(p))
    if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap":
        return config_from_configmap(doc, str(p), registry=registry)
    return parse_config(doc, source=str(p), registry=registry)


def config_from_configmap(cm: Mapping[str, Any], source: str, *, registry: Registry = REGISTRY) -> SchedulerConfig:
    """The configuration a ConfigMap holds (a file, or one read from the cluster); errors name
    ``source: data[key]``."""
    where, doc = _from_configmap(cm, source)
    return parse_config(doc, source=where, registry=registry)


def config_map_ref(ref: str | None) -> tuple[str, str]:
    """(namespace, name) of ``--config-map NAMESPACE/NAME``; ``CONFIG_MAP``'s when None."""
    parts = (ref or CONFIG_MAP).split("/")
    if len(parts) != 2 or not all(parts):
        raise ConfigError("--config-map", f"expected NAMESPACE/NAME, got {quote(ref)}")
    return parts[0], parts[1]


def _from_configmap(cm: Mapping[str, Any], path: str) -> tuple[str, Any]:
    """The document a ConfigMap holds (as deploy/config.yaml ships it): under its ``config.yaml``
    key, else under its only key ending in .yaml, .yml or .json (decoded as a file of that name).
    Returns the source to name in errors (``file: data[key]``, as the webhook names the field)
    and the document."""
    meta = cm.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else ""
    name = one_line(name, 63) if isinstance(name, str) else ""  # cut to its start and end: the line stays short
    data = cm.get("data")
    keys = sorted(k for k in data if isinstance(k, str)) if isinstance(data, Mapping) else []
    configs = [k for k in keys if k.endswith(_CONFIG_SUFFIXES)]
    key = _CONFIGMAP_KEY if _CONFIGMAP_KEY in configs else configs[0] if len(configs) == 1 else None
    if key is None or not isinstance(data, Mapping) or not isinstance(data[key], str):
        found = f"its data keys are {', '.join(quote(k) for k in keys[:10])}" if keys else "it has no data"
        raise ConfigError(path, f"a ConfigMap{f' ({name})' if name else ''} holding no one configuration "
                                f"({found}); extract it with: kubectl get configmap {name or 'NAME'} "
                                f"-o jsonpath='{{.data.KEY}}' > config.yaml")
    source = f"{path}: data[{key}]"
    return source, _decode(data[key], json_format=key.endswith(".json"), source=source)


def _decode(text: str, *, json_format: bool, source: str) -> Any:
    """The one document of a configuration file (or ConfigMap key), within
    ``scoring.safe_input``'s limits; ``ConfigError`` naming ``source`` otherwise. YAML is
    checked by ``loads_yaml_all`` first (nesting and aliases before anything is built), then
    read as ``yaml.safe_load`` reads it, which refuses a stream of several documents."""
    try:
        if json_format:
            return loads_json(text)
        loads_yaml_all(text)
        return yaml.safe_load(text)
    except InputError as e:
        raise ConfigError(source, str(e)) from None
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(source, f"not valid {'JSON' if json_format else 'YAML'}: {clip(str(e))}") from None
