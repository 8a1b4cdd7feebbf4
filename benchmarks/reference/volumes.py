"""Per-node references for the volume plugins, for pods that have no volumes.

The default profile runs VolumeRestrictions, NodeVolumeLimits, VolumeBinding and
VolumeZone. For a pod without ``spec.volumes`` upstream's four pass every node and
VolumeBinding's PreScore skips it (``podHasPVCs`` false: no claim to bind, no disk to
conflict, nothing to attach, no zone to match), so their reference for such a pod is
"every node passes, no score". What they do for a pod *with* volumes (claims, PVs,
CSI attach limits, zones) is not written here: the reference refuses such a pod with
``NotModelled`` naming it rather than passing it silently, so a benchmark or a test that
hands it one learns that at once (``benchmarks.volume_bench`` times those plugins against
the profile without them instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from benchmarks.reference import REFERENCE, RefCluster, RefNode, RefPlugin
from scoring.objects import PodInfo

__all__ = ["NotModelled", "VOLUME_PLUGINS", "has_volumes"]

VOLUME_PLUGINS: Final = ("VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone")


class NotModelled(ValueError):
    """The reference was given a pod whose volumes it does not model."""


def has_volumes(pod: PodInfo) -> bool:
    """Whether ``pod`` lists any ``spec.volumes`` (the only pods the volume plugins look at)."""
    spec = pod.raw.get("spec") if isinstance(pod.raw, Mapping) else None
    return bool(spec.get("volumes")) if isinstance(spec, Mapping) else False


def _no_volumes(name: str, pod: PodInfo) -> None:
    if has_volumes(pod):
        raise NotModelled(f"pod {pod.namespace}/{pod.name}: spec.volumes: the reference {name} models "
                          "only pods without volumes")


def _plugin(name: str, *, scores: bool) -> RefPlugin:
    def prefilter(pod: PodInfo, cluster: RefCluster) -> None:
        _no_volumes(name, pod)  # then upstream's PreFilter Skip: every node passes

    def passes(pod: PodInfo, node: RefNode, cluster: RefCluster) -> list[str]:
        return []

    def zero(pod: PodInfo, node: RefNode, cluster: RefCluster) -> int:
        return 0

    def skip(pod: PodInfo, cluster: RefCluster) -> bool:
        _no_volumes(name, pod)
        return True  # PreScore Skip: no claims

    return RefPlugin(name, filter=passes, prefilter=prefilter, score=zero if scores else None,
                     skip=skip if scores else None)


def _factory(name: str, scores: bool) -> Any:
    return lambda args: _plugin(name, scores=scores)


for _name in VOLUME_PLUGINS:
    REFERENCE[_name] = _factory(_name, _name == "VolumeBinding")
