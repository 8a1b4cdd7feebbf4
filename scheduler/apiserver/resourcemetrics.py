"""The kubelet's resource metrics (``/metrics/resource``) for the simulated nodes, in Prometheus text format.

metrics-server, ``kubectl top`` pipelines and Prometheus dashboards read a
node's CPU and memory from its kubelet's ``/metrics/resource`` endpoint
(``pkg/kubelet/metrics/collectors/resource_metrics.go``). These renderers
print the simulated usage (``usage``) the same way: upstream's metric names,
HELP texts with their stability level, labels (``container``, ``namespace``,
``pod``), sample timestamps in milliseconds on the usage samples, families
and series in the order the Go client gathers them, and sample values
formatted as Go formats them. ``render_node_metrics`` is one node's
document; ``render_cluster_metrics`` puts every node's series in one
document, each with a ``node`` label, so that one Prometheus target covers
the whole simulated cluster.

Left out: the swap series (no swap is simulated) and Windows-only ones.
Scale: 5,000 nodes with 50,000 pods make a cluster document of some 30 MB;
scrape it no more often than needed, or scrape nodes one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .usage import NodeUsage

__all__ = ["METRICS_CONTENT_TYPE", "render_node_metrics", "render_cluster_metrics", "go_float", "escape_label_value"]

METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format, as the kubelet serves it."""

_CONTAINER_CPU: Final = "container_cpu_usage_seconds_total"
_CONTAINER_MEM: Final = "container_memory_working_set_bytes"
_CONTAINER_START: Final = "container_start_time_seconds"
_NODE_CPU: Final = "node_cpu_usage_seconds_total"
_NODE_MEM: Final = "node_memory_working_set_bytes"
_POD_CPU: Final = "pod_cpu_usage_seconds_total"
_POD_MEM: Final = "pod_memory_working_set_bytes"
_SCRAPE_ERROR: Final = "resource_scrape_error"
_OLD_SCRAPE_ERROR: Final = "scrape_error"

# In name order, as the Go registry gathers them: (name, type, HELP as component-base prints it,
# with the stability level and, for scrape_error, its deprecation).
_FAMILIES: Final = (
    (_CONTAINER_CPU, "counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds"),
    (_CONTAINER_MEM, "gauge", "[STABLE] Current working set of the container in bytes"),
    (_CONTAINER_START, "gauge", "[STABLE] Start time of the container since unix epoch in seconds"),
    (_NODE_CPU, "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds"),
    (_NODE_MEM, "gauge", "[STABLE] Current working set of the node in bytes"),
    (_POD_CPU, "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds"),
    (_POD_MEM, "gauge", "[STABLE] Current working set of the pod in bytes"),
    (_SCRAPE_ERROR, "gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise"),
    (_OLD_SCRAPE_ERROR, "gauge",
     "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise"),
)
_GO_EXPONENT_FROM: Final = 6  # strconv 'g' with shortest precision switches to e-notation at 1e+06


def go_float(v: float) -> str:
    """A sample value as Prometheus' Go client prints it: ``strconv.FormatFloat(v, 'g', -1, 64)``.

    The shortest digits that round-trip (Python's ``repr`` finds the same
    ones), in e-notation when the decimal exponent is below -4 or at least
    6: ``7.5``, ``1000``, ``1e+06``, ``1.6243962483020916e+09``.
    """
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    r = repr(v)
    if "e" in r:  # Python and Go agree on e-notation below 1e-4; above 1e16 only the trailing ".0" differs
        return r
    sign = "-" if r[0] == "-" else ""
    whole, _, frac = r.lstrip("-").partition(".")
    if frac == "0":
        frac = ""
    if len(whole) - 1 < _GO_EXPONENT_FROM or whole == "0":
        return sign + whole + ("." + frac if frac else "")
    digits = (whole + frac).rstrip("0")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e+{len(whole) - 1:02d}"


def escape_label_value(value: str) -> str:
    """A label value as the text format writes it between quotes: backslash, newline and quote escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


Sample = tuple[tuple[str, ...], str]
"""(label values in label-name order: the sort key, the sample line)."""


def _samples(usages: Iterable[NodeUsage], *, node_label: bool) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {name: [] for name, _, _ in _FAMILIES}
    node_cpu, node_mem = out[_NODE_CPU], out[_NODE_MEM]
    pod_cpu, pod_mem = out[_POD_CPU], out[_POD_MEM]
    c_cpu, c_mem, c_start = out[_CONTAINER_CPU], out[_CONTAINER_MEM], out[_CONTAINER_START]
    for u in usages:
        ts = f" {int(u.timestamp * 1000)}"
        node = (u.node,) if node_label else ()
        nl = f'node="{escape_label_value(u.node)}"' if node_label else ""
        braces = "{" + nl + "}" if nl else ""
        node_cpu.append((node, f"{_NODE_CPU}{braces} {go_float(u.cpu_seconds)}{ts}"))
        node_mem.append((node, f"{_NODE_MEM}{braces} {go_float(float(u.memory_bytes))}{ts}"))
        for e in (_SCRAPE_ERROR, _OLD_SCRAPE_ERROR):
            out[e].append((node, f"{e}{braces} 0"))
        mid = f",{nl}," if nl else ","
        for p in u.pods:
            pod_key = (p.namespace, *node, p.name)
            pl = f'namespace="{escape_label_value(p.namespace)}"{mid}pod="{escape_label_value(p.name)}"'
            pod_cpu.append((pod_key, f"{_POD_CPU}{{{pl}}} {go_float(p.cpu_seconds)}{ts}"))
            pod_mem.append((pod_key, f"{_POD_MEM}{{{pl}}} {go_float(float(p.memory_bytes))}{ts}"))
            for c in p.containers:
                key = (c.name, *pod_key)
                cl = f'container="{escape_label_value(c.name)}",{pl}'
                c_cpu.append((key, f"{_CONTAINER_CPU}{{{cl}}} {go_float(c.cpu_seconds)}{ts}"))
                c_mem.append((key, f"{_CONTAINER_MEM}{{{cl}}} {go_float(float(c.memory_bytes))}{ts}"))
                if c.start_time > 0:
                    c_start.append((key, f"{_CONTAINER_START}{{{cl}}} {go_float(c.start_time)}"))
    if not node_label:  # one kubelet: one scrape status, also with no usage to report
        for e in (_SCRAPE_ERROR, _OLD_SCRAPE_ERROR):
            out[e] = [((), f"{e} 0")]
    return out


def _render(usages: Iterable[NodeUsage], *, node_label: bool) -> str:
    samples = _samples(usages, node_label=node_label)
    lines = []
    for name, kind, help_text in _FAMILIES:
        family = samples[name]
        if not family:
            continue  # a family without samples is not printed
        family.sort(key=lambda s: s[0])  # series in label-value order, as the Go client sorts them
        lines.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}")
        lines.extend(line for _, line in family)
    return "\n".join(lines) + "\n"


def render_node_metrics(usage: NodeUsage) -> str:
    """One node's ``/metrics/resource`` document, as its kubelet serves it."""
    return _render([usage], node_label=False)


def render_cluster_metrics(usages: Iterable[NodeUsage]) -> str:
    """Every node's resource metrics in one document, each series labelled with its ``node``."""
    return _render(usages, node_label=True)
