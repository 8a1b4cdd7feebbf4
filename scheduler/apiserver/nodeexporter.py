"""The simulated nodes' utilisation as node-exporter reports it, for a Prometheus to scrape.

Load-aware scheduling (Trimaran's plugins fed by load-watcher, vecsched's
``LoadAware``) reads two recording rules from Prometheus:
``instance:node_cpu:ratio`` and ``instance:node_memory_utilisation:ratio``,
which kube-prometheus and node-mixin compute from node-exporter's series. So
that a real Prometheus can serve them for the embedded control plane, the
API server publishes, without authentication (like ``/healthz``):

* ``/metrics/node-exporter``: node-exporter's raw series for every simulated
  node -- ``node_cpu_seconds_total{cpu, mode}`` (one CPU per whole core of
  the node's CPU capacity, at least one; each CPU is busy, in mode ``user``,
  for the share of the capacity its pods use (``usage.cpu_utilisation``) and
  ``idle`` for the rest; the other modes stay 0), ``node_memory_MemTotal_bytes``
  (the memory capacity) and ``node_memory_MemAvailable_bytes`` (capacity minus
  the pods' working set, not below 0). With the recording rules loaded,
  ``instance:node_cpu:ratio`` is then the node's CPU usage over its capacity
  (averaged over the rule's 5m rate window) and
  ``instance:node_memory_utilisation:ratio`` its working set over its memory;
* ``/metrics/node-utilisation``: those two rules' outputs computed directly
  (CPU as of now rather than over 5m), for a Prometheus without the rules.
  Scrape one endpoint or the other, never both with the rules loaded: the
  rules' outputs would be duplicated.

Both are one document for the whole cluster, each series labelled with
``instance="<node name>"``, so the scrape config needs ``honor_labels: true``
(otherwise Prometheus renames the label to ``exported_instance`` and sets
``instance`` to the API server's address), and its ``job_name`` must be
``node-exporter`` for kube-prometheus' rules, which select
``job="node-exporter"``::

    scrape_configs:
      - job_name: node-exporter
        honor_labels: true
        metrics_path: /metrics/node-exporter
        static_configs: [{targets: ["127.0.0.1:8080"]}]

Families are printed in name order and series in label-value order, as
Prometheus' Go client gathers them (so ``cpu="10"`` sorts before
``cpu="2"``), with node-exporter's HELP texts, without sample timestamps.
Scale: eight lines per CPU per node -- 5,000 nodes of 32 cores make 1.3
million series; scrape such a cluster rarely, or give Prometheus
``/metrics/node-utilisation`` (two series per node) instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from .resourcemetrics import escape_label_value, go_float
from .usage import NodeUsage, cpu_utilisation

__all__ = ["CPU_MODES", "cpu_count", "memory_available", "render_node_exporter", "render_node_utilisation"]

CPU_MODES: Final = ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
"""The modes node-exporter reports for each CPU on Linux, in label-value order."""

_CPU_SECONDS: Final = "node_cpu_seconds_total"
_MEM_AVAILABLE: Final = "node_memory_MemAvailable_bytes"
_MEM_TOTAL: Final = "node_memory_MemTotal_bytes"
_CPU_RATIO: Final = "instance:node_cpu:ratio"
_MEM_RATIO: Final = "instance:node_memory_utilisation:ratio"

# (name, TYPE, HELP) in name order, as the Go registry gathers them; the HELP texts are node-exporter's
# (collector/cpu_linux.go, collector/meminfo.go).
_EXPORTER_FAMILIES: Final = (
    (_CPU_SECONDS, "counter", "Seconds the CPUs spent in each mode."),
    (_MEM_AVAILABLE, "gauge", "Memory information field MemAvailable_bytes."),
    (_MEM_TOTAL, "gauge", "Memory information field MemTotal_bytes."),
)
_RATIO_FAMILIES: Final = (
    (_CPU_RATIO, "gauge",
     "Share of the node's CPU capacity in use, 0..1 (the recording rule instance:node_cpu:ratio, computed directly)."),
    (_MEM_RATIO, "gauge",
     "Share of the node's memory in use, 1 - MemAvailable / MemTotal "
     "(the recording rule instance:node_memory_utilisation:ratio, computed directly)."),
)

Sample = tuple[tuple[str, ...], str]
"""(label values in label-name order: the sort key, the sample line)."""


def cpu_count(capacity: float) -> int:
    """The CPUs node-exporter shows for a node of ``capacity`` cores: the whole cores, at least one."""
    return max(1, math.floor(capacity))


def memory_available(u: NodeUsage) -> int:
    """``MemAvailable``: the memory capacity less the pods' working set, not below 0 (bytes)."""
    return max(u.memory_capacity - u.memory_bytes, 0)


def _document(families: Iterable[tuple[str, str, str]], samples: dict[str, list[Sample]]) -> str:
    lines = []
    for name, kind, help_text in families:
        family = samples[name]
        if not family:
            continue  # a family without samples is not printed
        family.sort(key=lambda s: s[0])
        lines.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}")
        lines.extend(line for _, line in family)
    return "\n".join(lines) + "\n" if lines else ""


def render_node_exporter(usages: Iterable[NodeUsage]) -> str:
    """Every node's node-exporter CPU and memory series in one document, labelled ``instance=<node>``."""
    cpu: list[Sample] = []
    available: list[Sample] = []
    total: list[Sample] = []
    for u in usages:
        inst = escape_label_value(u.node)
        # Each CPU spends the same seconds in each mode; only idle and user ever grow.
        values = {mode: "0" for mode in CPU_MODES}
        values["idle"], values["user"] = go_float(u.idle_seconds), go_float(u.busy_seconds)
        for i in range(cpu_count(u.cpu_capacity)):
            c = str(i)
            for mode in CPU_MODES:
                cpu.append(((c, u.node, mode),
                            f'{_CPU_SECONDS}{{cpu="{c}",instance="{inst}",mode="{mode}"}} {values[mode]}'))
        available.append(((u.node,), f'{_MEM_AVAILABLE}{{instance="{inst}"}} {go_float(float(memory_available(u)))}'))
        total.append(((u.node,), f'{_MEM_TOTAL}{{instance="{inst}"}} {go_float(float(u.memory_capacity))}'))
    return _document(_EXPORTER_FAMILIES, {_CPU_SECONDS: cpu, _MEM_AVAILABLE: available, _MEM_TOTAL: total})


def render_node_utilisation(usages: Iterable[NodeUsage]) -> str:
    """Every node's ``instance:node_cpu:ratio`` and ``instance:node_memory_utilisation:ratio``, now.

    CPU: ``usage.cpu_utilisation`` of the cores in use. Memory: ``1 - MemAvailable / MemTotal``, as the
    rule computes it from the node-exporter series (NaN for a node without memory, as the rule gives).
    """
    cpu: list[Sample] = []
    mem: list[Sample] = []
    for u in usages:
        inst = escape_label_value(u.node)
        mem_ratio = 1 - memory_available(u) / u.memory_capacity if u.memory_capacity > 0 else math.nan
        cpu.append(((u.node,), f'{_CPU_RATIO}{{instance="{inst}"}} '
                               f'{go_float(cpu_utilisation(u.cpu_cores, u.cpu_capacity))}'))
        mem.append(((u.node,), f'{_MEM_RATIO}{{instance="{inst}"}} {go_float(mem_ratio)}'))
    return _document(_RATIO_FAMILIES, {_CPU_RATIO: cpu, _MEM_RATIO: mem})
