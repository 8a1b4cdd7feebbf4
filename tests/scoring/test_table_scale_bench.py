"""The decision benchmark's per-size run, small: the table it builds, the reference beside it.

``python -m benchmarks.decision`` builds a NodeTable of ``size`` nodes with ``per_node``
bound pods each and times the default profile against the per-node reference. The
reference models the volume plugins only for pods without volumes (for those upstream's
four pass every node and VolumeBinding skips its score); a pod with volumes is refused by
name, never passed silently.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.decision import bench_size
from benchmarks.reference import build_reference, cluster_from
from benchmarks.reference.volumes import NotModelled
from scheduler.config import default_config
from scoring.objects import node_from_json, pod_from_json


@pytest.mark.parametrize(("reference_pods", "reference_measured"), [(3, True), (0, False)],
                         ids=["with reference", "without reference"])
def test_a_size_builds_its_pods_and_decides(reference_pods: int, reference_measured: bool) -> None:
    r = bench_size(size=40, pending=10, per_node=3, reference_pods=reference_pods, seed=1)
    # 40 nodes x 3 bound pods each = 120; the 10 small pending pods all fit (8+ cores a node)
    assert (r["existing_pods"], r["placed"]) == (120, 10)
    assert (r["reference_us_per_decision"] is not None) is reference_measured
    assert r["rss_mib"] > 0


def _node(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}


def _pod(volumes: list[dict[str, Any]] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize(("volumes", "error"), [
    # no volumes: the four volume plugins pass both nodes, so NodeResourcesFit and the scores
    # decide as without them
    (None, None),
    ([], None),
    # any volume: not modelled, said with the pod's name
    ([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
     "pod ns/p: spec.volumes: the reference VolumeRestrictions models only pods without volumes"),
], ids=["no volumes field", "empty volumes", "a claim"])
def test_the_reference_runs_the_default_profile(volumes: list[dict[str, Any]] | None, error: str | None) -> None:
    cfg = default_config().profiles[0]
    ref = build_reference(filters=cfg.filters, scores=cfg.scores, plugin_args=cfg.plugin_args, seed=1)
    cluster = cluster_from([node_from_json(_node("a")), node_from_json(_node("b"))], [])
    pod = pod_from_json(_pod(volumes))
    if error is None:
        assert ref.schedule(pod, cluster).node in ("a", "b")
    else:
        with pytest.raises(NotModelled) as err:
            ref.schedule(pod, cluster)
        assert str(err.value) == error
