"""Run `vecsched explain` on objects built by a test, as a user would run it.

The ported upstream cases call this next to the plugin itself, so that every
expected score and reason is also what `vecsched explain -o json` prints for
the same nodes, pods and plugin args."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main
from scheduler.config import API_VERSION
from scoring.objects import NodeInfo, PodInfo

__all__ = ["explain", "explain_scores", "explain_reasons", "run_explain"]


def _raw(obj: NodeInfo | PodInfo | Mapping[str, Any], kind: str) -> dict[str, Any]:
    raw = dict(obj.raw) if isinstance(obj, (NodeInfo, PodInfo)) else dict(obj)
    raw.setdefault("apiVersion", "v1")
    raw["kind"] = kind
    return raw


def _placed(pod: PodInfo | Mapping[str, Any], node: str) -> dict[str, Any]:
    raw = _raw(pod, "Pod")
    raw["spec"] = {**(raw.get("spec") or {}), "nodeName": node}
    return raw


def explain(*, nodes: Sequence[NodeInfo | Mapping[str, Any]], pod: PodInfo | Mapping[str, Any],
            existing: Sequence[tuple[PodInfo | Mapping[str, Any], str]] = (), plugin: str,
            args: Mapping[str, Any] | None = None, point: str = "score",
            filters: Mapping[str, Mapping[str, Any]] | None = None,
            objects: Sequence[Mapping[str, Any]] = (),
            node_metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of `vecsched explain` with a profile of ``plugin`` alone at ``point``
    (``score``: every node feasible and scored; ``filter``: its PreFilter and Filter).
    ``existing`` holds (pod, node name) pairs: the pods that occupy the nodes;
    ``filters`` more filter plugins with their args (to make some nodes infeasible);
    ``objects`` more snapshot objects (Namespaces, Services);
    ``node_metrics`` a WatcherMetrics document, passed as ``--node-metrics``."""
    extra = dict(filters or {})
    enabled: dict[str, Any] = {point: {"enabled": [{"name": plugin}]}}
    if point == "filter":
        enabled["preFilter"] = {"enabled": [{"name": plugin}]}
    elif extra:
        enabled["filter"] = enabled["preFilter"] = {"enabled": [{"name": name} for name in extra]}
    profile: dict[str, Any] = {"schedulerName": "explained",
                               "plugins": {"multiPoint": {"disabled": [{"name": "*"}]}, **enabled}}
    configs = ([{"name": plugin, "args": dict(args)}] if args else []) + \
        [{"name": name, "args": dict(a)} for name, a in extra.items() if a]
    if configs:
        profile["pluginConfig"] = configs
    config = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [profile]}
    snapshot = {"apiVersion": "v1", "kind": "List",
                "items": [_raw(n, "Node") for n in nodes] + [_placed(p, node) for p, node in existing]
                + [dict(o) for o in objects]}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "snapshot.json").write_text(json.dumps(snapshot))
        (d / "pod.json").write_text(json.dumps(_raw(pod, "Pod")))
        (d / "config.json").write_text(json.dumps(config))
        more = []
        if node_metrics is not None:
            (d / "metrics.json").write_text(json.dumps(node_metrics))
            more = ["--node-metrics", str(d / "metrics.json")]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["explain", "--snapshot", str(d / "snapshot.json"), "--pod", str(d / "pod.json"),
                         "--config", str(d / "config.json"), "--output", "json", *more])
    assert code == 0, err.getvalue()
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def explain_scores(**kw: Any) -> dict[str, int]:
    """Node name -> the plugin's normalised score, as explain reports it (feasible nodes only)."""
    plugin = kw["plugin"]
    doc = explain(point="score", **kw)
    return {name: n["scores"][plugin] for name, n in doc["nodes"].items() if n["feasible"]}


def explain_reasons(**kw: Any) -> dict[str, list[str]]:
    """Node name -> reasons (empty when feasible), as explain reports them."""
    doc = explain(point="filter", **kw)
    return {name: n["reasons"] for name, n in doc["nodes"].items()}


def write_yaml(path: Path, doc: Any) -> str:
    """Write ``doc`` as YAML to ``path``; the path as a string, for a command line."""
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def explain_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str], items: list[dict[str, Any]],
                     pod: dict[str, Any], *args: str) -> tuple[int, str, str]:
    """``vecsched explain --snapshot`` on ``items`` written as one JSON List (as ``kubectl get ... -A -o json``
    writes it) for ``pod``: the exit code, stdout and stderr."""
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    code = main(["explain", "--snapshot", str(snap), "--pod", write_yaml(tmp_path / "p.yaml", pod), *args])
    out, err = capsys.readouterr()
    return code, out, err


async def run_explain(*args: str) -> tuple[int, str, str]:
    """``vecsched explain ARGS`` as the command runs it -- (exit code, stdout, stderr) -- in a
    thread of this process, so that an API server serving in this event loop answers it."""
    def call() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["explain", *args])
        return code, out.getvalue(), err.getvalue()
    return await asyncio.to_thread(call)
