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
from scoring.plugins import node_name, node_unschedulable

__all__ = ["REGISTRY", "build_registry"]

_MODULES: tuple[ModuleType, ...] = (
    node_unschedulable,
    node_name,
)


def build_registry() -> Registry:
    registry = Registry()
    for module in _MODULES:
        registry.register(module.NAME, module.new)
    return registry


REGISTRY = build_registry()
