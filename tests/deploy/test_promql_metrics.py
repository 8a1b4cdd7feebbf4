"""Every PromQL expression in the Grafana dashboard and the PrometheusRule names only series
that vecsched exports: the scheduler's registry (scheduler.metrics) and the extender's. A
counter exports ``<name>_total``, a histogram ``_bucket``, ``_sum`` and ``_count``. The
node recording rules vecsched ships read node-exporter's series, and the alerts may read
what those rules record."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import yaml

from scheduler.extender import ExtenderMetrics
from scheduler.metrics import Metrics
from tests.deploy.support import DEPLOY

_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
# PromQL words that look like identifiers but are not series names.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
             "unless", "inf", "nan"}


# node-exporter's series the recording rules read: the embedded control plane publishes the
# first three; the others are node-mixin's fallback for kernels without MemAvailable.
NODE_EXPORTER = {"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes",
                 "node_memory_Buffers_bytes", "node_memory_Cached_bytes", "node_memory_MemFree_bytes",
                 "node_memory_Slab_bytes"}


def exported() -> set[str]:
    names: set[str] = set()
    scheduler = Metrics()
    scheduler.snapshot.load_metrics_age = lambda: None  # exported while a load plugin's refresher runs
    for registry in (scheduler.registry, ExtenderMetrics().registry):
        for family in registry.collect():
            names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return names


def series_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names inside ``{...}`` or ``by (...)``, strings, durations or template variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)               # strings (label values, legends)
    e = re.sub(r"\{[^}]*\}", "", e)                            # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                           # range selectors [5m]
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e, flags=re.IGNORECASE)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                          # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS or re.fullmatch(r"\d", word[:1]):
            continue
        names.add(word)
    return names


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    dash = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            yield f"dashboard: {panel['title']} {t['refId']}", t["expr"]


def _rules() -> Iterator[dict[str, str]]:
    rule = yaml.safe_load((DEPLOY / "monitoring" / "prometheusrule.yaml").read_text())
    for g in rule["spec"]["groups"]:
        yield from g["rules"]


def _rule_exprs() -> Iterator[tuple[str, str]]:
    for r in _rules():
        yield f"rule: {r.get('alert') or r.get('record')}", r["expr"]


EXPRS = list(_dashboard_exprs()) + list(_rule_exprs())
RECORDED = {r["record"] for r in _rules() if "record" in r}


@pytest.mark.parametrize(("where", "expr"), [pytest.param(w, e, id=w) for w, e in EXPRS])
def test_expression_uses_only_exported_series(where: str, expr: str) -> None:
    names = series_names(expr)
    known = exported() | NODE_EXPORTER | RECORDED
    assert names, f"{where}: no series found in {expr!r}"
    assert names <= known, f"{where}: not exported: {sorted(names - known)}"


def test_the_parser_finds_series_and_skips_the_rest() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, verb) (rate(vecsched_extender_request_duration_seconds_bucket'
            '{job=~"$job", verb!="bind"}[$__rate_interval]))) / clamp_min(sum(up offset 5m), 1e-9) > 0.05')
    assert series_names(expr) == {"vecsched_extender_request_duration_seconds_bucket", "up"}
    # kube-prometheus writes the keywords in capitals
    upper = ("sum(rate(a_total[5m])) WITHOUT (cpu, mode) / ON(instance) GROUP_LEFT() "
             "count(sum(b) BY (instance, cpu)) BY (instance)")
    assert series_names(upper) == {"a_total", "b"}


def test_dashboard_covers_the_brief() -> None:
    """Attempts by result, pending pods by queue, attempt and SLI latency, per-plugin time,
    preemption attempts and victims, cache size, extender requests: each appears in some panel."""
    used = set().union(*(series_names(e) for w, e in EXPRS if w.startswith("dashboard")))
    assert {"scheduler_schedule_attempts_total", "scheduler_pending_pods",
            "scheduler_scheduling_attempt_duration_seconds_bucket", "scheduler_pod_scheduling_sli_duration_seconds_bucket",
            "scheduler_plugin_execution_duration_seconds_sum", "scheduler_scheduler_cache_size",
            "vecsched_extender_requests_total", "vecsched_leader", "scheduler_preemption_attempts_total",
            "scheduler_preemption_victims_bucket"} <= used


def test_no_leader_alert_uses_an_exported_gauge() -> None:
    assert "vecsched_leader" in exported()
