"""The worked example plugin of docs/architecture.md, loaded from deploy/examples/plugins/.

``node_label.py`` is kube-scheduler's NodeLabel plugin written as a vecsched plugin. It is
not in vecsched's registry, so every test here does what the page tells a plugin author to
do: register ``NAME``/``new`` in a ``Registry``, read a KubeSchedulerConfiguration that
enables it with that registry, build the profile and decide on a NodeTable. The score and
filter tables are upstream's node_label_test.go cases (TestNodeLabelScore,
TestNodeLabelFilter: one node labelled ``foo`` and ``bar``); then the plugin among the
default plugins, its args errors, and ``run_scheduler.py`` placing pods live on the embedded
API server over HTTP.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pytest
import yaml

from scheduler.apiserver import NodeShape, serve_apiserver
from scheduler.config import API_VERSION, ConfigError, parse_config
from scoring.framework import Profile, Registry
from scoring.objects import node_from_json, pod_from_json
from scoring.plugins import build_registry
from scoring.table import NodeTable

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLE: Final = ROOT / "deploy" / "examples" / "plugins"
PYTHON: Final = sys.executable


def _load(path: Path) -> ModuleType:
    """The module at ``path``, imported under its file name (as a user's program imports it)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


node_label = _load(EXAMPLE / "node_label.py")


def registry() -> Registry:
    r = build_registry()
    r.register(node_label.NAME, node_label.new)
    return r


def profile(*, args: dict[str, Any] | None = None, alone: bool = True, weight: int = 1) -> Profile:
    """The one profile of a KubeSchedulerConfiguration enabling NodeLabel with ``args`` --
    alone (``multiPoint`` disabled ``"*"``) or beside the default plugins."""
    multi: dict[str, Any] = {"enabled": [{"name": "NodeLabel", "weight": weight}]}
    if alone:
        multi["disabled"] = [{"name": "*"}]
    p: dict[str, Any] = {"schedulerName": "labelled", "plugins": {"multiPoint": multi}}
    if args is not None:
        p["pluginConfig"] = [{"name": "NodeLabel", "args": args}]
    doc = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [p]}
    reg = registry()
    return parse_config(doc, registry=reg).build(registry=reg)["labelled"]


def table(*labels: dict[str, str], cpu: str = "4") -> NodeTable:
    t = NodeTable()
    for i, node_labels in enumerate(labels):
        t.set_node(node_from_json({"metadata": {"name": f"machine{i + 1}", "labels": node_labels},
                                   "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}))
    return t


POD: Final = pod_from_json({"metadata": {"name": "p", "namespace": "default"},
                            "spec": {"containers": [{"name": "c", "image": "pause"}]}})
FOO_BAR: Final = {"foo": "", "bar": ""}
"""Upstream's node: ``machine1`` labelled foo and bar (empty values)."""


SCORE_CASES = [
    # each listed label adds 100 when satisfied; the sum is divided by how many are listed
    pytest.param({"presentLabelsPreference": ["foo"]}, 100, id="one present label match"),           # 100/1
    pytest.param({"presentLabelsPreference": ["somelabel"]}, 0, id="one present label mismatch"),    # 0/1
    pytest.param({"presentLabelsPreference": ["foo", "bar"]}, 100, id="two present labels match"),   # 200/2
    pytest.param({"presentLabelsPreference": ["somelabel1", "somelabel2"]}, 0,
                 id="two present labels mismatch"),                                                   # 0/2
    pytest.param({"presentLabelsPreference": ["foo", "somelabel"]}, 50,
                 id="two present labels only one matches"),                                           # 100/2
    pytest.param({"absentLabelsPreference": ["foo"]}, 0, id="one absent label match"),               # 0/1
    pytest.param({"absentLabelsPreference": ["somelabel"]}, 100, id="one absent label mismatch"),    # 100/1
    pytest.param({"absentLabelsPreference": ["foo", "bar"]}, 0, id="two absent labels match"),       # 0/2
    pytest.param({"absentLabelsPreference": ["somelabel1", "somelabel2"]}, 100,
                 id="two absent labels mismatch"),                                                    # 200/2
    pytest.param({"absentLabelsPreference": ["foo", "somelabel"]}, 50,
                 id="two absent labels only one matches"),                                            # 100/2
    pytest.param({"presentLabelsPreference": ["foo", "bar"], "absentLabelsPreference": ["somelabel1", "somelabel2"]},
                 100, id="two present labels match, two absent labels mismatch"),                     # 400/4
    pytest.param({"presentLabelsPreference": ["somelabel1", "somelabel2"], "absentLabelsPreference": ["foo", "bar"]},
                 0, id="two present labels both mismatch, two absent labels both match"),             # 0/4
    pytest.param({"presentLabelsPreference": ["foo", "somelabel"], "absentLabelsPreference": ["somelabel1", "somelabel2"]},
                 75, id="two present labels one matches, two absent labels mismatch"),                # 300/4
    pytest.param({}, 0, id="no label preference"),                                                    # nothing listed
]


@pytest.mark.parametrize(("args", "want"), SCORE_CASES)
def test_score_as_upstream(args: dict[str, Any], want: int) -> None:
    decision = profile(args=args).schedule(POD, table(FOO_BAR))
    assert decision.node == "machine1"
    assert decision.scores["NodeLabel"].tolist() == [want]
    assert decision.totals.tolist() == [want]  # weight 1, the only score plugin


FILTER_CASES = [
    # upstream's TestNodeLabelFilter on the node labelled foo and bar: True = Success
    pytest.param({"presentLabels": ["baz"]}, False, id="present label does not match"),
    pytest.param({"absentLabels": ["baz"]}, True, id="absent label does not match"),
    pytest.param({"presentLabels": ["foo", "baz"]}, False, id="one of two present labels matches"),
    pytest.param({"absentLabels": ["foo", "baz"]}, False, id="one of two absent labels matches"),
    pytest.param({"presentLabels": ["foo", "bar"]}, True, id="all present labels match"),
    pytest.param({"absentLabels": ["foo", "bar"]}, False, id="all absent labels match"),
    pytest.param({"presentLabels": ["foo"], "absentLabels": ["bar"]}, False, id="both present and absent label matches"),
    pytest.param({"presentLabels": ["foz"], "absentLabels": ["baz"]}, False,
                 id="neither present nor absent label matches"),
    pytest.param({"presentLabels": ["foo"], "absentLabels": ["baz"]}, True,
                 id="present label matches and absent label doesn't match"),
    pytest.param({"presentLabels": ["foz"], "absentLabels": ["bar"]}, False,
                 id="present label doesn't match and absent label matches"),
    pytest.param({}, True, id="no label"),
]


@pytest.mark.parametrize(("args", "fits"), FILTER_CASES)
def test_filter_as_upstream(args: dict[str, Any], fits: bool) -> None:
    decision = profile(args=args).schedule(POD, table(FOO_BAR))
    if fits:
        assert decision.node == "machine1" and decision.reasons == []
        return
    # UnschedulableAndUnresolvable, with upstream's reason; the default profile's
    # DefaultPreemption is not in this profile, so the message has no preemption part.
    assert decision.node is None
    assert [(r.message, r.unresolvable, r.nodes.tolist()) for r in decision.reasons] == [
        ("node(s) didn't have the requested labels", True, [True])]
    assert decision.message == "0/1 nodes are available: 1 node(s) didn't have the requested labels."


def test_scores_every_node_at_once() -> None:
    # present [ssd, fast], absent [retiring]: 3 listed, each satisfied one adds 100, then // 3
    t = table({"ssd": "1", "fast": "y"},                   # 3 satisfied -> 300 // 3 = 100
              {"ssd": "1"},                                 # ssd, not retiring -> 200 // 3 = 66
              {"ssd": "1", "fast": "y", "retiring": "x"},   # ssd, fast -> 200 // 3 = 66
              {"retiring": "soon"},                         # none -> 0
              {})                                           # not retiring -> 100 // 3 = 33
    p = profile(args={"presentLabelsPreference": ["ssd", "fast"], "absentLabelsPreference": ["retiring"]})
    decision = p.schedule(POD, t)
    assert dict(zip((decision.node_names[r] for r in decision.scored), decision.scores["NodeLabel"].tolist())) == {
        "machine1": 100, "machine2": 66, "machine3": 66, "machine4": 0, "machine5": 33}
    assert decision.node == "machine1"


def test_weighted_among_the_default_plugins() -> None:
    # The shipped config.yaml's profile: NodeLabel weight 20 beside kube-scheduler's defaults.
    # machine2 is labelled but already half full (2 of its 4 CPUs requested), machine1 empty:
    # NodeLabel adds 20 x 100 = 2000 on machine2 and 0 on machine1, more than the default
    # plugins can make up (their weights sum to 13, at most 1300 apart), so machine2 wins.
    shipped = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    reg = registry()
    p = parse_config(shipped, registry=reg).build(registry=reg)["vecsched-fast-disk"]
    assert [(s.name, w) for s, w in p.scorers if s.name == "NodeLabel"] == [("NodeLabel", 20)]
    t = table({}, {"example.com/fast-disk": "true"})
    busy = pod_from_json({"metadata": {"name": "busy", "namespace": "default"}, "spec": {
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}})
    t.add_pod(busy, "machine2")
    pod = pod_from_json({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "schedulerName": "vecsched-fast-disk",
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}})
    decision = p.schedule(pod, t)
    scores = {decision.node_names[r]: int(s) for r, s in zip(decision.scored, decision.scores["NodeLabel"])}
    totals = {decision.node_names[r]: int(s) for r, s in zip(decision.scored, decision.totals)}
    assert scores == {"machine1": 0, "machine2": 100}
    assert decision.node == "machine2"
    assert 2000 - 1300 <= totals["machine2"] - totals["machine1"] <= 2000 + 1300


ARGS_ERRORS = [
    # a key both wanted and unwanted: upstream's ValidateNodeLabelArgs refuses it too
    pytest.param({"presentLabelsPreference": ["foo", "bar"], "absentLabelsPreference": ["baz", "bar"]},
                 "<config>: profiles[0].pluginConfig[0].args.absentLabelsPreference[1]: label 'bar' is also in "
                 "presentLabelsPreference: a node cannot both have and lack it", id="preference conflict"),
    pytest.param({"presentLabels": ["foo"], "absentLabels": ["foo"]},
                 "<config>: profiles[0].pluginConfig[0].args.absentLabels[0]: label 'foo' is also in presentLabels: "
                 "a node cannot both have and lack it", id="filter conflict"),
    pytest.param({"presentLabelsPreference": "foo"},
                 "<config>: profiles[0].pluginConfig[0].args.presentLabelsPreference: expected a list, got str",
                 id="not a list"),
    pytest.param({"presentLabels": [1]},
                 "<config>: profiles[0].pluginConfig[0].args.presentLabels[0]: expected a string, got 1",
                 id="not a string"),
    pytest.param({"labels": ["foo"]},
                 "<config>: profiles[0].pluginConfig[0].args.labels: unknown field (known: absentLabels, "
                 "absentLabelsPreference, presentLabels, presentLabelsPreference)", id="unknown field"),
]


@pytest.mark.parametrize(("args", "message"), ARGS_ERRORS)
def test_args_errors_name_the_field(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        profile(args=args)
    assert str(e.value) == message


def test_unknown_to_vecsched_until_registered() -> None:
    # vecsched's own registry has no NodeLabel: the strict reader refuses the name.
    doc = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
           "profiles": [{"plugins": {"multiPoint": {"enabled": [{"name": "NodeLabel"}]}}}]}
    with pytest.raises(ConfigError, match=r"^<config>: profiles\[0\]\.plugins\.multiPoint\.enabled\[0\]\.name: "
                                          r"unknown plugin 'NodeLabel' \(known: "):
        parse_config(doc)
    assert "NodeLabel" in parse_config(doc, registry=registry()).profiles[0].filters


async def _run(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON, str(EXAMPLE / "run_scheduler.py"), *args, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_run_scheduler_places_pods_on_the_labelled_node() -> None:
    # 4 empty nodes of 4 CPUs, the second (node-0001) labelled. Three pods of 1 CPU for the shipped
    # profile: each goes to node-0001 (2000 ahead before the others count; with up to
    # 3 of its 4 CPUs taken the default plugins still differ by less than 1300).
    # By chance alone: 1 in 4^3 = 64.
    shapes = [NodeShape(count=1, cpu="4", memory="8Gi"),
              NodeShape(count=1, cpu="4", memory="8Gi", labels={"example.com/fast-disk": "true"}),
              NodeShape(count=2, cpu="4", memory="8Gi")]
    async with serve_apiserver(nodes=shapes, kubelet_delay=0.02, bookmark_interval=0.5) as srv:
        labelled = [n["metadata"]["name"] for n in srv.list("nodes")
                    if "example.com/fast-disk" in n["metadata"].get("labels", {})]
        assert labelled == ["node-0001"]
        env = {**os.environ, "KUBECONFIG": str(srv.kubeconfig_path)}
        proc = await _run("--config", "deploy/examples/plugins/config.yaml", "--bind-address", "127.0.0.1", "--port", "0",
                          env=env)
        try:
            manifest = yaml.safe_load((EXAMPLE / "pod.yaml").read_text())
            for i in range(3):
                manifest["metadata"]["name"] = f"fast-{i}"
                manifest["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1"
                srv.create("pods", manifest, namespace="default")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while any(not srv.get("pods", f"fast-{i}", namespace="default")["spec"].get("nodeName") for i in range(3)):
                assert proc.returncode is None, (await proc.communicate())[1].decode()
                assert loop.time() < deadline, "pods not bound within 20 s"
                await asyncio.sleep(0.05)
            assert [srv.get("pods", f"fast-{i}", namespace="default")["spec"]["nodeName"] for i in range(3)] == \
                ["node-0001"] * 3
        finally:
            proc.terminate()
            _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()  # SIGTERM: a graceful stop


async def test_run_scheduler_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    bad["profiles"][0]["pluginConfig"][0]["args"]["absentLabelsPreference"] = ["example.com/fast-disk"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = await _run("--config", str(path), "--bind-address", "127.0.0.1", "--port", "0",
                      env={**os.environ, "KUBECONFIG": str(tmp_path / "none")})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode() == (f"run_scheduler.py: {path}: profiles[0].pluginConfig[0].args.absentLabelsPreference[0]: "
                            "label 'example.com/fast-disk' is also in presentLabelsPreference: a node cannot both "
                            "have and lack it\n")
    assert out == b""
