"""One pod's scheduling context read from a live cluster: ``vecsched explain POD`` and ``kubectl vecsched explain``.

The snapshot mode of ``vecsched explain`` reads what ``kubectl get ... -A -o json``
wrote; this module reads the same objects from the API server and builds the same
snapshot in memory (``scheduler.snapshot.snapshot_from_objects``), so the decision --
``scheduler.explain.decide`` -- and its JSON are those of the snapshot mode for the same
objects. In order:

1. **Input first**: the pod reference (``NAME`` in ``-n``, else in the kubeconfig
   context's namespace, as kubectl; or ``NAMESPACE/NAME``), ``--config`` and
   ``--node-metrics`` files are read before any request, so a typo costs no round trip.
2. **The pod**, one GET.
3. **The configuration**: ``--config FILE`` (a KubeSchedulerConfiguration or a ConfigMap
   file), else the ConfigMap ``--config-map NS/NAME`` (default ``vecsched/vecsched-config``,
   as deploy/config.yaml ships it) read from the cluster; a 404 means vecsched's default
   profile, and one warning says so. Then the pod's profile: ``--profile``, else the one
   named by its ``schedulerName``, else the only one.
4. **Lists, paginated** (``limit``/``continue``, kubectl's 500 a page; an expired
   ``continue`` token falls back to one full list, as client-go's pager does), all at once,
   of only what that profile reads -- as ``vecsched run``'s informers would:
   Nodes and Pods (all namespaces) always; Namespaces, Services, ReplicaSets,
   StatefulSets and ReplicationControllers with PodTopologySpread or InterPodAffinity;
   PodDisruptionBudgets and PriorityClasses with DefaultPreemption; PodGroups with
   Coscheduling (a 404, the CRD not installed, means none); the storage kinds with a
   volume plugin (``scoring.plugins.VOLUME_PLUGINS``). With a load plugin and no
   ``--node-metrics``, one sample from the profile's own source (``scheduler.loadmetrics``,
   as ``vecsched run`` fetches it); a source that does not answer is a warning, and the
   plugins decide without a sample, as the live scheduler's first cycles would.

The lists are separate requests, so they are not one consistent cut of the cluster (a
pod bound between the pod list and the node list shows up as bound); for a pending pod
that is what the scheduler's own informers see too.

Errors: ``InputError`` is the user's input (flags, files): exit 2. Everything the
cluster answered or holds -- ``scheduler.kube.errors.KubeError`` (not found, 403,
unreachable) and ``ClusterError`` (its ConfigMap or an object cannot be read) -- is exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scheduler.config import (ConfigError, SchedulerConfig, config_from_configmap, config_map_ref, default_config,
                              load_config)
from scheduler.explain import CHUNK_SIZE, build_profiles, decide, prepare
from scheduler.kube.client import ClientSettings, KubeClient, connect, default_namespace
from scheduler.kube.errors import ClientError, KubeError, NotFoundError
from scheduler.kube.informer import NAMESPACES, NODES, POD_DISRUPTION_BUDGETS, PODGROUPS, PODS, STORAGE, WORKLOADS
from scheduler.loadmetrics import FetchError, Fetcher, load_fetcher
from scheduler.snapshot import SnapshotError, pod_from_object, snapshot_from_objects
from scoring.framework import Profile
from scoring.load import LoadMetricsError, WatcherMetrics, read_watcher_metrics
from scoring.plugins import VOLUME_PLUGINS
from scoring.plugins.coscheduling import NAME as COSCHEDULING
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION
from scoring.plugins.inter_pod_affinity import NAME as INTER_POD_AFFINITY
from scoring.plugins.pod_topology_spread import NAME as POD_TOPOLOGY_SPREAD
from scoring.priorities import PriorityClasses

__all__ = [
    "InputError",
    "ClusterError",
    "LiveOptions",
    "Explained",
    "Needs",
    "live_options",
    "parse_pod_ref",
    "fetch_config_map",
    "read_config",
    "explain_live",
]

PRIORITY_CLASSES: Final = "/apis/scheduling.k8s.io/v1/priorityclasses"


class InputError(Exception):
    """A flag or an input file is wrong: one line, exit 2 (``vecsched explain``) or a usage
    error (``kubectl vecsched explain``)."""


class ClusterError(ValueError):
    """What the cluster holds cannot be used (its vecsched ConfigMap, an object): exit 1."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """What to explain and how to reach it: the live mode's flags."""

    pod: str
    """``NAME`` or ``NAMESPACE/NAME``."""
    namespace: str | None = None
    """``-n``; None: the kubeconfig context's namespace."""
    kubeconfig: str | None = None
    context: str | None = None
    config: str | None = None
    """``--config FILE``; None: the ConfigMap ``config_map``."""
    config_map: str | None = None
    """``--config-map NS/NAME``; None: ``scheduler.config.CONFIG_MAP``."""
    profile: str | None = None
    seed: int = 0
    node_metrics: str | None = None
    """``--node-metrics FILE``: the load plugins' sample instead of their own source."""
    what_if: bool = False
    chunk_size: int = CHUNK_SIZE
    """Items per list request (0: one request)."""


@dataclass(frozen=True, slots=True)
class Explained:
    """The answer: the contract's JSON, and the warnings to print (``warning: ...``) beside it."""

    doc: dict[str, Any]
    warnings: tuple[str, ...]


def live_options(args: argparse.Namespace) -> LiveOptions:
    """The options from ``vecsched explain``'s or ``kubectl vecsched explain``'s parsed flags."""
    return LiveOptions(pod=args.target, namespace=args.namespace, kubeconfig=args.kubeconfig, context=args.context,
                       config=args.config, config_map=args.config_map, profile=args.profile, seed=args.seed,
                       node_metrics=args.node_metrics, what_if=args.what_if, chunk_size=args.chunk_size)


def parse_pod_ref(ref: str, namespace: str | None) -> tuple[str | None, str]:
    """(namespace or None for the context's, name) of ``NAME`` or ``NAMESPACE/NAME``; a
    namespace in both the reference and ``-n`` must agree."""
    parts = ref.split("/")
    if len(parts) > 2 or not all(parts):
        raise InputError(f"POD: expected NAME or NAMESPACE/NAME, got {ref!r}")
    if len(parts) == 1:
        return namespace, parts[0]
    if namespace is not None and namespace != parts[0]:
        raise InputError(f"POD {ref} is in namespace {parts[0]}, but --namespace says {namespace}")
    return parts[0], parts[1]


# ---- what a profile reads ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Needs:
    """The object kinds a profile reads besides Nodes and Pods."""

    workloads: bool
    """Namespaces (InterPodAffinity's namespaceSelector) and the owners whose selectors give
    PodTopologySpread its default constraints."""
    preemption: bool
    """PodDisruptionBudgets and PriorityClasses (DefaultPreemption)."""
    podgroups: bool
    """scheduler-plugins' PodGroups (Coscheduling)."""
    storage: bool
    """PVs, PVCs, StorageClasses and the CSI objects (the volume plugins)."""

    @classmethod
    def of(cls, profile: Profile) -> Needs:
        names = set(profile.plugin_names)
        return cls(workloads=bool(names & {POD_TOPOLOGY_SPREAD, INTER_POD_AFFINITY}),
                   preemption=any(p.name == DEFAULT_PREEMPTION for p in profile.postfilters),
                   podgroups=COSCHEDULING in names, storage=bool(names & VOLUME_PLUGINS))

    def collections(self) -> list[tuple[str, str]]:
        """(API path, kind) of every collection to list, Nodes and Pods first."""
        out = [(NODES, "Node"), (PODS, "Pod")]
        if self.workloads:
            out += [(NAMESPACES, "Namespace"), *WORKLOADS]
        if self.preemption:
            out += [(POD_DISRUPTION_BUDGETS, "PodDisruptionBudget"), (PRIORITY_CLASSES, "PriorityClass")]
        if self.podgroups:
            out.append((PODGROUPS, "PodGroup"))
        if self.storage:
            out += list(STORAGE)
        return out


# ---- reading ---------------------------------------------------------------------------------


def _resource(path: str) -> str:
    return path.rsplit("/", 1)[-1]


async def _list_kind(client: KubeClient, path: str, kind: str, *, chunk_size: int) -> list[dict[str, Any]]:
    """The collection's items, each with its ``kind`` (list items carry none); PodGroups
    that are not served (no CRD) are none."""
    try:
        items = await client.list_items(path, chunk_size=chunk_size)
    except NotFoundError:
        if kind == "PodGroup":
            return []
        raise KubeError(f"cannot list {_resource(path)}: the API server does not serve {path}") from None
    except KubeError as e:
        raise KubeError(f"cannot list {_resource(path)}: {e}") from e
    return [item if "kind" in item else {**item, "kind": kind} for item in items]


async def fetch_config_map(client: KubeClient, namespace: str, name: str) -> SchedulerConfig | None:
    """The configuration the cluster's ConfigMap ``namespace/name`` holds; None when there is
    no such ConfigMap. ``KubeError`` when it cannot be read, ``ConfigError`` (naming the
    ConfigMap and its data key) when what it holds is not a valid configuration."""
    try:
        cm = await client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    except NotFoundError:
        return None
    return config_from_configmap(cm if isinstance(cm, Mapping) else {}, f"ConfigMap {namespace}/{name}")


async def read_config(client: KubeClient, namespace: str, name: str) -> tuple[SchedulerConfig, list[str]]:
    """The configuration in the cluster's ConfigMap ``namespace/name``, and the warnings to
    print: vecsched's default profile, with a warning, when there is no such ConfigMap."""
    try:
        config = await fetch_config_map(client, namespace, name)
    except ClientError as e:  # not allowed, most likely: the configuration can be given as a file instead
        raise KubeError(f"cannot read ConfigMap {namespace}/{name}: {e} (or give --config FILE)") from e
    except KubeError as e:
        raise KubeError(f"cannot read ConfigMap {namespace}/{name}: {e}") from e
    except ConfigError as e:
        raise ClusterError(str(e)) from None
    if config is None:
        return default_config(), [f"no ConfigMap {namespace}/{name} in the cluster: explaining with vecsched's "
                                  f"default profile (give --config FILE or --config-map NS/NAME)"]
    return config, list(config.warnings)


async def _get_pod(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = await client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    except KubeError as e:
        raise KubeError(f"cannot get pod {namespace}/{name}: {e}") from e
    return dict(obj)


def _fetcher(profile: Profile, config: SchedulerConfig, *, from_cluster: bool) -> Fetcher | None:
    """Where the profile's load plugins read their sample (None without a load plugin)."""
    try:
        return load_fetcher({profile.name: profile}, config=config)
    except ConfigError as e:
        raise (ClusterError(str(e)) if from_cluster else InputError(str(e))) from None


async def _fetch(fetcher: Fetcher, warnings: list[str]) -> WatcherMetrics | None:
    """One sample; None, and a warning, when the source does not answer."""
    try:
        return await fetcher.fetch()
    except FetchError as e:
        warnings.append(f"cannot read node metrics from {fetcher.source} {e.where}: {e.problem}; "
                        f"the load plugins decide without a sample")
        return None
    finally:
        await fetcher.close()


def _warn_about(obj: Mapping[str, Any], key: str, scheduler_names: Sequence[str], profile: str) -> list[str]:
    """What makes the pod's answer hypothetical: it is placed already, finished, gated, or not vecsched's."""
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    out = []
    if spec.get("nodeName"):
        out.append(f"pod {key} is bound to {spec['nodeName']} already: explaining where it would go now")
    if phase in ("Succeeded", "Failed"):
        out.append(f"pod {key} has finished ({phase}): explaining where it would go now")
    if spec.get("schedulingGates"):
        gates = ", ".join(str(g.get("name")) for g in spec["schedulingGates"] if isinstance(g, Mapping))
        out.append(f"pod {key} waits for scheduling gates ({gates}): no scheduler tries it until they are removed")
    wanted = spec.get("schedulerName") or "default-scheduler"
    if wanted not in scheduler_names:
        out.append(f"pod {key} asks for schedulerName {wanted}, which no vecsched profile has: explaining with "
                   f"profile {profile}")
    return out


async def explain_live(options: LiveOptions) -> Explained:
    """The answer ``vecsched explain --snapshot`` would give for the cluster's objects and pod."""
    if options.chunk_size < 0:
        raise InputError(f"--chunk-size must be >= 0, got {options.chunk_size}")
    if options.config and options.config_map:
        raise InputError("--config and --config-map are alternatives: give one")
    namespace, name = parse_pod_ref(options.pod, options.namespace)
    try:
        cm_namespace, cm_name = config_map_ref(options.config_map)
        local = load_config(options.config) if options.config else None
        sample = (read_watcher_metrics(options.node_metrics, what=f"--node-metrics {options.node_metrics}")
                  if options.node_metrics else None)
    except (ConfigError, LoadMetricsError) as e:
        raise InputError(str(e)) from None
    warnings: list[str] = []
    settings = ClientSettings(kubeconfig=options.kubeconfig, context=options.context)
    async with await connect(settings) as client:
        namespace = namespace or default_namespace(settings)
        key = f"{namespace}/{name}"
        obj = await _get_pod(client, namespace, name)
        if local is not None:
            config = local
            warnings += config.warnings
        else:
            config, more = await read_config(client, cm_namespace, cm_name)
            warnings += more
        try:
            pod = pod_from_object(f"pod {key}", obj, priority_classes=PriorityClasses())
            profile, group_profile = build_profiles(config, pod, override=options.profile, seed=options.seed)
        except SnapshotError as e:
            raise ClusterError(str(e)) from None
        except ConfigError as e:  # --profile, or a pod no profile serves among several
            raise InputError(str(e)) from None
        warnings += _warn_about(obj, key, [p.scheduler_name for p in config.profiles], profile.name)
        collections = Needs.of(profile).collections()
        fetcher = _fetcher(profile, config, from_cluster=local is None) if sample is None else None
        measuring = asyncio.create_task(_fetch(fetcher, warnings)) if fetcher is not None else None
        listing = [asyncio.create_task(_list_kind(client, path, kind, chunk_size=options.chunk_size))
                   for path, kind in collections]
        try:
            listed = await asyncio.gather(*listing)
        except BaseException:  # the first failure is the answer: stop the other requests
            rest = [*listing, *([measuring] if measuring is not None else [])]
            for t in rest:
                t.cancel()
            await asyncio.wait(rest)
            raise
        measured = await measuring if measuring is not None else None
    objects = [(path, item) for (path, _), items in zip(collections, listed) for item in items]
    try:
        snapshot = snapshot_from_objects(objects, source=client.host)
    except SnapshotError as e:
        raise ClusterError(str(e)) from None
    # The pod as the pod list has it (one cut with the rest), or as it was read when it is gone since.
    pod = next((p for p in snapshot.pods if p.key == pod.key), pod)
    prepare(snapshot.table, pod, sample=sample if sample is not None else measured, at_sample_time=sample is not None)
    doc = decide(snapshot=snapshot, pod=pod, profile=profile, group_profile=group_profile, what_if=options.what_if)
    return Explained(doc=doc, warnings=tuple(warnings))
