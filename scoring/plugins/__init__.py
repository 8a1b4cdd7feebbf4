"""The plugin registry: every plugin vecsched knows, by name.

Each plugin lives in its own module, which exposes ``NAME`` (the one constant
used by the registry, the config and the plugin) and ``new(args, path)``, the
factory that validates its args and builds it. Upstream's plugins keep their
kube-scheduler names; vecsched's own plugins are added by name in the same
configuration file.
"""

from __future__ import annotations

from types import ModuleType

from scoring.framework import Registry
from scoring.plugins import balanced_allocation, node_name, node_resources_fit, node_unschedulable
from scoring.plugins import image_locality, node_affinity, node_ports, taint_toleration
from scoring.plugins import best_fit, dot_product, first_fit, random_score, worst_fit
from scoring.plugins import inter_pod_affinity, pod_topology_spread
from scoring.plugins import cpu_aware_fgd, fgd, gpu_best_fit, gpu_clustering, gpu_dot_product, gpu_packing, gpu_share
from scoring.plugins import coscheduling, default_preemption
from scoring.plugins import load_aware, load_variation_risk_balancing, target_load_packing
from scoring.plugins import node_volume_limits, volume_binding, volume_restrictions, volume_zone

__all__ = ["REGISTRY", "VOLUME_PLUGINS", "build_registry"]

_MODULES: tuple[ModuleType, ...] = (
    node_unschedulable,
    node_name,
    taint_toleration,
    node_affinity,
    node_ports,
    image_locality,
    node_resources_fit,
    volume_restrictions,
    node_volume_limits,
    volume_binding,
    volume_zone,
    balanced_allocation,
    dot_product,
    best_fit,
    worst_fit,
    first_fit,
    random_score,
    pod_topology_spread,
    inter_pod_affinity,
    gpu_share,
    fgd,
    cpu_aware_fgd,
    gpu_packing,
    gpu_clustering,
    gpu_best_fit,
    gpu_dot_product,
    default_preemption,
    coscheduling,
    target_load_packing,
    load_variation_risk_balancing,
    load_aware,
)


VOLUME_PLUGINS: frozenset[str] = frozenset(
    m.NAME for m in (volume_restrictions, node_volume_limits, volume_binding, volume_zone))
"""The plugins that read storage objects: a profile with one of them makes the live
scheduler and the extender watch PersistentVolumes, claims and the CSI objects."""


def build_registry() -> Registry:
    registry = Registry()
    for module in _MODULES:
        registry.register(module.NAME, module.new)
    return registry


REGISTRY = build_registry()
