"""What the volume plugins (VolumeRestrictions, NodeVolumeLimits, VolumeBinding, VolumeZone)
add to a decision, against the default profile without them, in the same run.

A random cluster (``benchmarks.clusters``: four node sizes, three zones, 10 bound
pods a node, a third of them holding a CSI volume) gets a CSINode per node (a
CSI driver with an attach limit of 16 volumes, 8 on every fifth node), two
StorageClasses -- ``zonal`` (WaitForFirstConsumer, provisioned by the CSI driver
in zones a and b only) and ``local`` (WaitForFirstConsumer, no provisioner: static
PVs, each pinned by node affinity to one node, one for every fourth node) -- and
pending pods of four kinds, decided (and assumed, Reserve included) by both
profiles in turn, each on its own copy of the cluster:

- ``no volumes``: the pods most clusters schedule; the volume plugins skip them;
- ``bound claim``: a claim bound to a PV of one zone (VolumeBinding checks the PV's
  node affinity, VolumeZone its zone label, NodeVolumeLimits the attach count);
- ``provisioned``: an unbound claim of ``zonal``, to be provisioned where the pod goes;
- ``local PV``: an unbound claim of ``local``, matched against the static PVs on
  every node (upstream's FindMatchingVolume per node).

Each kind's time with the volume plugins is printed against the same pods' time
without them, since the ratio is what holds from machine to machine. The indexes the
plugins build once per cluster (the volumes attached on each node, built from every
placed pod on first use, as in a live scheduler's first cycle) are built before the
clock starts: the figures are the steady state's::

    python -m benchmarks.decision --case volumes [--sizes 1000,5000] [--pods 500] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from benchmarks.clusters import random_nodes, random_pods, table_of
from benchmarks.decision import decide_all
from benchmarks.gang_bench import _sizes
from benchmarks.sim_command import _positive_int  # the same check as `vecsched sim`
from scheduler.config import API_VERSION, parse_config
from scoring.objects import pod_from_json
from scoring.table import NodeTable
from scoring.volumes import Volumes

__all__ = ["VOLUME_PLUGINS", "KINDS", "storage_objects", "bench_volumes", "main"]

_PROG: Final = "python -m benchmarks.decision --case volumes"
VOLUME_PLUGINS: Final = ("VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone")
KINDS: Final = ("no volumes", "bound claim", "provisioned", "local PV")
DRIVER: Final = "csi.vecsched.io"
_NS: Final = "default"
_GI: Final = 1 << 30


def _config(*, volumes: bool) -> Any:
    disabled = [] if volumes else [{"name": p} for p in VOLUME_PLUGINS]
    return parse_config({
        "apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
        "profiles": [{"schedulerName": "vecsched", "plugins": {"multiPoint": {"disabled": disabled}}}],
    }, source="benchmark")


def _pv(name: str, *, cls: str, node_term: Mapping[str, Any], labels: Mapping[str, str] | None = None,
        claim: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
        "persistentVolumeReclaimPolicy": "Delete", "csi": {"driver": DRIVER, "volumeHandle": name},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [node_term]}}}
    if claim:
        spec["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": _NS, "name": claim, "uid": f"uid-{claim}"}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", "labels": dict(labels or {})},
            "spec": spec, "status": {"phase": "Bound" if claim else "Available"}}


def _pvc(name: str, *, cls: str, volume: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                            "resources": {"requests": {"storage": "10Gi"}}}
    meta: dict[str, Any] = {"name": name, "namespace": _NS, "uid": f"uid-{name}", "resourceVersion": "1"}
    if volume:
        spec["volumeName"] = volume
        meta["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec,
            "status": {"phase": "Bound" if volume else "Pending"}}


def _zone_term(zone: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}


def storage_objects(nodes: Sequence[Mapping[str, Any]], *, bound: int, pending: int,
                    rng: np.random.Generator) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The storage objects of the cluster, and the claim names each pending kind uses:
    ``bound`` claims bound to zonal PVs held by placed pods, plus ``pending`` claims per kind."""
    zones = sorted({n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes})
    objs: list[dict[str, Any]] = [
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": DRIVER},
         "spec": {"attachRequired": True}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "zonal"},
         "provisioner": DRIVER, "volumeBindingMode": "WaitForFirstConsumer",
         "allowedTopologies": [{"matchLabelExpressions": [
             {"key": "topology.kubernetes.io/zone", "values": zones[:2]}]}]},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local"},
         "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"},
    ]
    for i, n in enumerate(nodes):
        name = n["metadata"]["name"]
        objs.append({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": name},
                     "spec": {"drivers": [{"name": DRIVER, "nodeID": name,
                                           "topologyKeys": ["topology.kubernetes.io/zone"],
                                           "allocatable": {"count": 8 if i % 5 == 0 else 16}}]}})
        if i % 4 == 0:
            host = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [name]}]}
            objs.append(_pv(f"local-{name}", cls="local", node_term=host))
    claims: dict[str, list[str]] = {k: [] for k in KINDS}
    for i in range(bound + pending):
        zone = zones[int(rng.integers(len(zones)))]
        claim = f"data-{i}"
        objs.append(_pv(f"pv-{i}", cls="zonal", node_term=_zone_term(zone),
                        labels={"topology.kubernetes.io/zone": zone}, claim=claim))
        objs.append(_pvc(claim, cls="zonal", volume=f"pv-{i}"))
        if i >= bound:
            claims["bound claim"].append(claim)
    for kind, cls in (("provisioned", "zonal"), ("local PV", "local")):
        for i in range(pending):
            claim = f"{cls}-claim-{i}"
            objs.append(_pvc(claim, cls=cls))
            claims[kind].append(claim)
    return objs, claims


def _with_claim(pod: Mapping[str, Any], claim: str) -> dict[str, Any]:
    spec = {**pod["spec"], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    return {**pod, "metadata": {**pod["metadata"], "namespace": _NS}, "spec": spec}


def _load(table: NodeTable, objs: Sequence[Mapping[str, Any]]) -> None:
    volumes = Volumes.of(table)
    for obj in objs:
        volumes.apply(str(obj["kind"]), obj)


def bench_volumes(*, size: int, pending: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    raw_nodes = random_nodes(rng, size)
    names = [n["metadata"]["name"] for n in raw_nodes]
    raw_existing = random_pods(rng, 10 * size, prefix="run", node_names=names)
    holders = range(0, len(raw_existing), 3)  # a third of the placed pods hold a bound CSI volume
    objs, claims = storage_objects(raw_nodes, bound=len(holders), pending=pending, rng=rng)
    for j, i in enumerate(holders):
        raw_existing[i] = _with_claim(raw_existing[i], f"data-{j}")
    base = random_pods(rng, pending, prefix="new")
    todo = {kind: [pod_from_json({**(p if kind == "no volumes" else _with_claim(p, claims[kind][i])),
                                  "metadata": {**p["metadata"], "name": f"{p['metadata']['name']}-{k}",
                                               "namespace": _NS}})
                   for i, p in enumerate(base)]
            for k, kind in enumerate(KINDS)}
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        row: dict[str, Any] = {"pods": kind}
        for label, with_volumes in (("without", False), ("with", True)):
            table = table_of(raw_nodes, raw_existing, capacity=size)
            _load(table, objs)
            profile = _config(volumes=with_volumes).profiles[0].build(seed=seed)
            # The per-node indexes the plugins keep as pods and volumes come and go (attached volumes,
            # in-tree disks) are built on first use, once per table, as in a live scheduler's first
            # cycle: built here, before the clock starts, so the figure is the steady state's.
            profile.run_filters(todo[kind][0], table, {})
            placed, seconds = decide_all(profile, table, todo[kind])
            row[f"placed_{label}"] = placed
            row[f"us_per_decision_{label}"] = round(seconds / len(todo[kind]) * 1e6, 1)
        row["ratio"] = round(row["us_per_decision_with"] / row["us_per_decision_without"], 2)
        rows.append(row)
    return {"nodes": size, "existing_pods": len(raw_existing), "pending_pods": pending, "results": rows}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog=_PROG, description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=_sizes, default=[1000, 5000], help="node counts, comma-separated (default 1000,5000)")
    ap.add_argument("--pods", type=_positive_int, default=500, help="pending pods of each kind (default 500)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    results = [bench_volumes(size=s, pending=a.pods, seed=a.seed) for s in a.sizes]
    if a.json:
        print(json.dumps({"benchmark": "volumes", "seed": a.seed, "plugins": list(VOLUME_PLUGINS),
                          "results": results}, indent=2))
        return
    print(f"{'nodes':>6} {'pods':<12} {'placed w/o':>10} {'placed':>7} {'us w/o':>9} {'us with':>9} {'ratio':>7}")
    for r in results:
        for x in r["results"]:
            print(f"{r['nodes']:>6} {x['pods']:<12} {x['placed_without']:>10} {x['placed_with']:>7} "
                  f"{x['us_per_decision_without']:>9} {x['us_per_decision_with']:>9} {x['ratio']:>6}x")
    print("each kind of pod is decided and assumed by the default profile without and with the volume plugins, "
          "each on its own copy of the cluster; ratio: with over without, in this run")


if __name__ == "__main__":
    main()
