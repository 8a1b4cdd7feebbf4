"""``kubectl vecsched top``: per node, what the scheduler counts as taken, and what is really used.

``kubectl top node`` shows what a node's pods *use* (from metrics-server). A scheduler places
pods by what they *request*: a node at 20% CPU use can be full for it. This command shows one
row per node, laid out as ``kubectl top node`` lays out its rows (``printers.GetNewTabWriter``;
CPU in millicores, memory in whole Mi, percentages truncated as ``metricsutil.
printAllResourceUsages`` truncates them):

* ``CPU(req/alloc)``, ``CPU-REQ(%)``, ``MEMORY(req/alloc)``, ``MEMORY-REQ(%)``: the sum of the
  requests of the pods bound to the node that have not terminated, against its allocatable --
  the pods read with ``scoring.objects.pod_from_json``, so init containers, sidecars, overhead
  and pod-level resources count exactly as kube-scheduler's ``NodeResourcesFit`` counts them
  (``resourcehelper.PodRequests``), and listed with the field selector ``kubectl describe node``
  uses (``spec.nodeName``, ``status.phase!=Succeeded,status.phase!=Failed``);
* ``PODS``: those pods against the node's allocatable ``pods``;
* ``CPU-USED(%)``, ``MEMORY-USED(%)``: the measured utilisation, when vecsched's configuration
  names a load source -- the load plugins' ``metricProvider`` (Prometheus) or ``watcherAddress``
  (load-watcher), fetched once with ``scheduler.loadmetrics`` exactly as ``vecsched run`` fetches
  it, and read per node as the plugins read it (``node_load.resource_data``: the window's
  average). The configuration is ``--config FILE`` (a KubeSchedulerConfiguration, or the
  ConfigMap that holds one), else the cluster's ConfigMap (``--config-map``, by default
  vecsched/vecsched-config as deploy/config.yaml ships it); ``--node-metrics FILE`` reads a
  WatcherMetrics file instead. With no configuration, or one without a load plugin, the two
  columns are left out, without an error. A source that does not answer leaves them
  ``<unknown>`` with one ``warning:`` line on stderr, and the command still succeeds, as
  ``kubectl top`` prints ``<unknown>`` for nodes it has no metrics of.

Nodes are listed in pages (``--chunk-size``, as ``kubectl get``), or fetched by name; ``-l``
selects them by label. ``--sort-by`` follows ``kubectl top node``: ``cpu`` and ``memory``
sort by the amount (here: requested) from largest, ``name`` (the default) by name; vecsched
adds ``cpu-used`` and ``memory-used`` (measured, nodes without a measure last). ``-o json``
prints the same numbers, percentages with two decimals::

    {"nodes": [{"name": "node-0000",
                "cpu": {"requestedMilli": 3500, "allocatableMilli": 16000, "requestedPercent": 21.88,
                        "measuredPercent": 35.0},
                "memory": {"requestedBytes": 6442450944, "allocatableBytes": 68719476736,
                           "requestedPercent": 9.38, "measuredPercent": null},
                "pods": {"count": 12, "allocatable": 110}}],
     "loadMetrics": {"source": "prometheus", "where": "http://prometheus:9090", "window": "15m",
                     "timestamp": 1700000000, "error": null}}

``loadMetrics`` is null when no load source is configured; after a failed fetch its ``window``
and ``timestamp`` are null and ``error`` holds the cause. ``measuredPercent`` is null where
there is no measure. Percentages are rounded to two decimals (requested ones are 0 when the
node has no allocatable of the resource, as kubectl shows them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from scheduler.config import CONFIG_MAP, ConfigError, SchedulerConfig, config_map_ref, load_config
from scheduler.kube.client import CHUNK_SIZE, ClientSettings, KubeClient, connect
from scheduler.kube.errors import KubeError, NotFoundError
from scheduler.kubectl_plugin import Parser, UsageError, columns
from scheduler.live_cluster import fetch_config_map
from scheduler.loadmetrics import FetchError, Fetcher, FileFetcher, load_fetcher
from scoring.load import CPU as CPU_METRIC, MEMORY as MEMORY_METRIC, WatcherMetrics
from scoring.objects import CPU, MEMORY, PODS, NodeInfo, PodInfo, node_from_json, pod_from_json
from scoring.plugins.node_load import resource_data

__all__ = [
    "SORT_KEYS",
    "UNKNOWN",
    "Measure",
    "NodeRow",
    "LoadSample",
    "node_rows",
    "sort_rows",
    "render_table",
    "render_json",
    "parser",
    "run",
]

UNKNOWN: Final = "<unknown>"
"""What ``kubectl top`` prints for a node without metrics."""
SORT_KEYS: Final = ("name", "cpu", "memory", "cpu-used", "memory-used")
_NOT_TERMINATED: Final = "status.phase!=Succeeded,status.phase!=Failed"
"""kubectl describe node's field selector for the pods that occupy a node."""
_MI: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Measure:
    """Measured utilisation of one node, percent of its capacity; None where the sample has none."""

    cpu: float | None
    memory: float | None


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node's line: requested (cpu in milli, memory in bytes) against allocatable, and measured."""

    name: str
    cpu_requested: int
    cpu_allocatable: int
    memory_requested: int
    memory_allocatable: int
    pods: int
    pods_allocatable: int
    measured: Measure | None
    """None when no load source is configured (no columns); a ``Measure`` of Nones when it has none."""


@dataclass(frozen=True, slots=True)
class LoadSample:
    """What the load source gave: ``sample`` when the fetch succeeded, else ``error`` (one line)."""

    source: str
    """``prometheus``, ``load-watcher`` or ``file`` (the label of vecsched_load_metrics_refresh_errors_total)."""
    where: str
    sample: WatcherMetrics | None
    error: str | None

    def measure(self, node: str) -> Measure:
        metrics = self.sample.nodes.get(node) if self.sample is not None else None
        if metrics is None:
            return Measure(cpu=None, memory=None)
        cpu, _, cpu_ok = resource_data(metrics, CPU_METRIC)
        memory, _, memory_ok = resource_data(metrics, MEMORY_METRIC)
        return Measure(cpu=cpu if cpu_ok else None, memory=memory if memory_ok else None)

    def to_json(self) -> dict[str, Any]:
        wm = self.sample
        return {"source": self.source, "where": self.where, "window": wm.window.duration if wm else None,
                "timestamp": wm.timestamp if wm else None, "error": self.error}


def node_rows(nodes: Iterable[NodeInfo], pods: Iterable[PodInfo], load: LoadSample | None) -> list[NodeRow]:
    """One row per node, in the order given: the requests of its pods that have not terminated
    (pods bound elsewhere, unbound or terminated are left out), and its measure when ``load``."""
    nodes = list(nodes)
    sums = {n.name: [0, 0, 0] for n in nodes}  # milli-CPU, memory bytes, pods
    for p in pods:
        acc = sums.get(p.node_name)
        if acc is None or p.terminated:
            continue
        acc[0] += p.requests.get(CPU, 0)
        acc[1] += p.requests.get(MEMORY, 0)
        acc[2] += 1
    return [NodeRow(name=n.name, cpu_requested=sums[n.name][0], cpu_allocatable=n.allocatable.get(CPU, 0),
                    memory_requested=sums[n.name][1], memory_allocatable=n.allocatable.get(MEMORY, 0),
                    pods=sums[n.name][2], pods_allocatable=n.allocatable.get(PODS, 0),
                    measured=load.measure(n.name) if load is not None else None)
            for n in nodes]


def sort_rows(rows: Iterable[NodeRow], by: str) -> list[NodeRow]:
    """kubectl top node's order: by name, or largest first (ties by name); measured keys put
    nodes without a measure last."""
    rows = sorted(rows, key=lambda r: r.name)
    if by == "cpu":
        return sorted(rows, key=lambda r: -r.cpu_requested)
    if by == "memory":
        return sorted(rows, key=lambda r: -r.memory_requested)
    if by in ("cpu-used", "memory-used"):
        def used(r: NodeRow) -> tuple[bool, float]:
            v = None if r.measured is None else r.measured.cpu if by == "cpu-used" else r.measured.memory
            return (v is None, -(v or 0.0))
        return sorted(rows, key=used)
    return rows


def _percent(part: int, whole: int) -> float:
    return part * 100 / whole if whole > 0 else 0.0


def _cell_percent(p: float | None) -> str:
    """kubectl's ``%d%%`` of ``int64(fraction)``: truncated."""
    return UNKNOWN if p is None else f"{int(p)}%"


def render_table(rows: Sequence[NodeRow], *, headers: bool = True) -> str:
    """The rows aligned as kubectl aligns them; the measured columns only when any row has a measure
    (``NodeRow.measured`` not None)."""
    measured = any(r.measured is not None for r in rows)
    head = ["NAME", "CPU(req/alloc)", "CPU-REQ(%)", "MEMORY(req/alloc)", "MEMORY-REQ(%)", "PODS"]
    head += ["CPU-USED(%)", "MEMORY-USED(%)"] if measured else []
    lines = [head] if headers else []
    for r in rows:
        line = [r.name, f"{r.cpu_requested}m/{r.cpu_allocatable}m",
                _cell_percent(_percent(r.cpu_requested, r.cpu_allocatable)),
                f"{r.memory_requested // _MI}Mi/{r.memory_allocatable // _MI}Mi",
                _cell_percent(_percent(r.memory_requested, r.memory_allocatable)), f"{r.pods}/{r.pods_allocatable}"]
        if measured:
            m = r.measured or Measure(cpu=None, memory=None)
            line += [_cell_percent(m.cpu), _cell_percent(m.memory)]
        lines.append(line)
    return "\n".join(columns(lines)) + "\n" if lines else ""


def _round(p: float | None) -> float | None:
    return None if p is None else round(p, 2)


def render_json(rows: Sequence[NodeRow], load: LoadSample | None) -> str:
    def node(r: NodeRow) -> dict[str, Any]:
        m = r.measured or Measure(cpu=None, memory=None)
        return {"name": r.name,
                "cpu": {"requestedMilli": r.cpu_requested, "allocatableMilli": r.cpu_allocatable,
                        "requestedPercent": _round(_percent(r.cpu_requested, r.cpu_allocatable)),
                        "measuredPercent": _round(m.cpu)},
                "memory": {"requestedBytes": r.memory_requested, "allocatableBytes": r.memory_allocatable,
                           "requestedPercent": _round(_percent(r.memory_requested, r.memory_allocatable)),
                           "measuredPercent": _round(m.memory)},
                "pods": {"count": r.pods, "allocatable": r.pods_allocatable}}
    doc = {"nodes": [node(r) for r in rows], "loadMetrics": load.to_json() if load is not None else None}
    return json.dumps(doc, indent=2) + "\n"


# ---- reading the cluster ---------------------------------------------------------------------------


async def _list(client: KubeClient, path: str, *, query: Sequence[tuple[str, str]], chunk_size: int,
                what: str) -> list[dict[str, Any]]:
    try:
        return await client.list_items(path, query=query, chunk_size=chunk_size)
    except KubeError as e:
        raise KubeError(f"cannot list {what}: {e}") from e


async def _nodes(client: KubeClient, args: argparse.Namespace) -> list[NodeInfo]:
    if args.node:
        found = []
        for name in dict.fromkeys(args.node):  # once each, in the order given
            try:
                found.append(await client.request("GET", f"/api/v1/nodes/{name}"))
            except NotFoundError as e:
                raise KubeError(f'nodes "{name}" not found') from e
            except KubeError as e:
                raise KubeError(f'cannot get node "{name}": {e}') from e
    else:
        found = await _list(client, "/api/v1/nodes", query=[("labelSelector", args.selector)] if args.selector else [],
                            chunk_size=args.chunk_size, what="nodes")
    return [node_from_json(n) for n in found]


async def _pods(client: KubeClient, nodes: Sequence[str], *, every: bool, chunk_size: int) -> list[PodInfo]:
    """The pods that have not terminated on ``nodes``: one list of every bound pod when ``every``,
    else one list per node (as ``kubectl describe node`` lists them)."""
    selectors = [f"spec.nodeName!=,{_NOT_TERMINATED}"] if every else \
        [f"spec.nodeName={n},{_NOT_TERMINATED}" for n in nodes]
    items = []
    for s in selectors:
        items += await _list(client, "/api/v1/pods", query=[("fieldSelector", s)], chunk_size=chunk_size, what="pods")
    return [pod_from_json(p) for p in items]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _file_config(args: argparse.Namespace) -> SchedulerConfig | None:
    """--config, read before any request; a bad file is a usage error (exit 2)."""
    if not args.config:
        return None
    try:
        return load_config(args.config)
    except ConfigError as e:
        raise UsageError(str(e)) from None


async def _cluster_config(client: KubeClient, ref: str) -> SchedulerConfig | None:
    """The configuration in the cluster's ConfigMap ``ref``; None when it does not exist (or cannot
    be read: then a warning says so)."""
    ns, name = config_map_ref(ref)
    try:
        return await fetch_config_map(client, ns, name)
    except KubeError as e:
        _warn(f"cannot read ConfigMap {ns}/{name} for the load source: {e}; give --config FILE")
        return None


class _Warnings(logging.Handler):
    """scheduler.loadmetrics' warnings (a missing recording rule, a missing node label) as ``warning:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        _warn(record.getMessage())


@contextmanager
def _fetcher_warnings() -> Iterator[None]:
    logger = logging.getLogger("vecsched.loadmetrics")
    handler = _Warnings(level=logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


async def _fetcher(client: KubeClient, args: argparse.Namespace, config: SchedulerConfig | None) -> Fetcher | None:
    if args.node_metrics:
        return FileFetcher(args.node_metrics)
    if config is None and not args.config:
        config = await _cluster_config(client, args.config_map)
    if config is None:
        return None
    try:
        return load_fetcher(config.build(), config=config, timeout=args.metrics_timeout)
    except ConfigError as e:
        if args.config:
            raise UsageError(str(e)) from None
        raise


async def _load(client: KubeClient, args: argparse.Namespace, config: SchedulerConfig | None) -> LoadSample | None:
    """One sample from the configured load source; None when there is none."""
    fetcher = await _fetcher(client, args, config)
    if fetcher is None:
        return None
    try:
        with _fetcher_warnings():
            sample = await fetcher.fetch()
    except FetchError as e:
        if args.node_metrics:
            raise UsageError(f"--node-metrics {e}") from None  # a bad input file: exit 2
        _warn(f"cannot read node metrics from {fetcher.source} {e.where}: {e.problem}; "
              f"CPU-USED(%) and MEMORY-USED(%) are {UNKNOWN}")
        return LoadSample(source=fetcher.source, where=fetcher.where, sample=None, error=e.problem)
    finally:
        await fetcher.close()
    return LoadSample(source=fetcher.source, where=fetcher.where, sample=sample, error=None)


# ---- the command -------------------------------------------------------------------------------


def _seconds(v: str) -> float:
    try:
        s = float(v)
    except ValueError:
        s = float("nan")
    if not 0 < s < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {v!r}")
    return s


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="kubectl vecsched top",
               description="Per node: CPU, memory and pods requested against allocatable, and the utilisation "
                           "measured by vecsched's load source when one is configured.")
    p.add_argument("node", nargs="*", metavar="NODE", help="nodes to show (default: every node)")
    p.add_argument("-l", "--selector", help="label selector of the nodes to show (e.g. -l key1=value1,key2!=value2)")
    p.add_argument("-o", "--output", choices=["json"], help="print JSON instead of a table")
    p.add_argument("--sort-by", choices=SORT_KEYS, default="name",
                   help="cpu, memory: requested, largest first; cpu-used, memory-used: measured (default: name)")
    p.add_argument("--no-headers", action="store_true", help="print the table without its header line")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: its current-context)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE",
                        help="vecsched's KubeSchedulerConfiguration (or the ConfigMap holding it), for its load source")
    source.add_argument("--config-map", metavar="NAMESPACE/NAME", default=CONFIG_MAP,
                        help=f"the cluster's ConfigMap holding vecsched's configuration (default: {CONFIG_MAP})")
    source.add_argument("--node-metrics", metavar="FILE",
                        help="read the measured utilisation from this load-watcher WatcherMetrics JSON file instead")
    p.add_argument("--metrics-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                   help="seconds one request to the load source may take (default: 10)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE,
                   help=f"items per list request, 0 for one request (default: {CHUNK_SIZE})")
    return p


async def run(args: argparse.Namespace) -> int:
    """Print the rows; 0 also when the load source did not answer (its columns say ``<unknown>``)."""
    if args.node and args.selector:
        raise UsageError("only one of NODE or --selector can be provided")
    if args.chunk_size < 0:
        raise UsageError(f"--chunk-size must be >= 0, got {args.chunk_size}")
    if args.config_map:
        try:
            config_map_ref(args.config_map)  # a usage error before any request
        except ConfigError as e:
            raise UsageError(str(e)) from None
    config = _file_config(args)
    settings = ClientSettings(kubeconfig=args.kubeconfig, context=args.context)
    async with await connect(settings) as client:
        nodes = await _nodes(client, args)
        # The pods and the load sample at once; when one fails, the other is cancelled (and closes).
        tasks = (asyncio.create_task(_pods(client, [n.name for n in nodes], every=not args.node,
                                           chunk_size=args.chunk_size)),
                 asyncio.create_task(_load(client, args, config)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        pods, load = tasks[0].result(), tasks[1].result()
    rows = sort_rows(node_rows(nodes, pods, load), args.sort_by)
    if args.output == "json":
        sys.stdout.write(render_json(rows, load))
    elif not rows:
        print("No resources found", file=sys.stderr)
    else:
        sys.stdout.write(render_table(rows, headers=not args.no_headers))
    return 0
