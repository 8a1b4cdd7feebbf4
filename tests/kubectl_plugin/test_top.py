"""``kubectl vecsched top`` run by the real kubectl against the embedded API server.

One cluster serves every case (the cases only read it): three nodes, pods whose requests
exercise upstream's PodRequests (an init container, a sidecar, overhead, pod-level resources),
pods that do not count (finished, failed, unbound), and ConfigMaps holding vecsched's
configuration. The measured columns come from a load-watcher service on loopback, a
WatcherMetrics file, and -- with a cluster of its own whose simulated nodes report what their
pods use -- a real Prometheus, read as ``vecsched run`` reads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver
from scheduler.loadmetrics import MEMORY_RULE
from scoring.load import Metric, WatcherMetrics, Window, watcher_metrics_to_json
from tests.kubectl_plugin.support import cells, down_kubeconfig, kubectl_vecsched
from tests.live.support import wait_for
from tests.prometheus_support import Target, prometheus
from tests.http_support import serve

module_loop = pytest.mark.asyncio(loop_scope="module")
"""The cases share the module's cluster and load-watcher (started once)."""

ROOT: Final = Path(__file__).resolve().parents[2]
HEAD: Final = ["NAME", "CPU(req/alloc)", "CPU-REQ(%)", "MEMORY(req/alloc)", "MEMORY-REQ(%)", "PODS"]
MEASURED: Final = ["CPU-USED(%)", "MEMORY-USED(%)"]
RUN: Final = "vecsched.io/simulated-duration-seconds"
EXIT: Final = "vecsched.io/simulated-exit-code"


def container(name: str, cpu: str = "", memory: str = "", **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"name": name, "image": "registry.k8s.io/pause:3.9", "resources": {"requests": requests}, **extra}


def bound(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    return {"metadata": {"name": name, "annotations": annotations},
            "spec": {"nodeName": node, "containers": containers, **spec}}


# (namespace, pod) -- what each one adds to its node is worked out beside it.
PODS: list[tuple[str, dict[str, Any]]] = [
    # node-0000: 1500m, 1Gi
    ("default", bound("web-1", "node-0000", [container("app", "1500m", "1Gi")])),
    # node-0000: max(app 500m, init 2) = 2000m + overhead 250m = 2250m; max(512Mi, 256Mi) + 128Mi = 640Mi
    ("default", bound("init-1", "node-0000", [container("app", "500m", "512Mi")],
                      initContainers=[container("setup", "2", "256Mi")],
                      overhead={"cpu": "250m", "memory": "128Mi"})),
    # node-0001: sidecar 200m + app 1 = 1200m; 64Mi + 3Gi = 3136Mi
    ("default", bound("sidecar-1", "node-0001", [container("app", "1", "3Gi")],
                      initContainers=[container("proxy", "200m", "64Mi", restartPolicy="Always")])),
    # node-0001: runs 0 s and succeeds -> not counted
    ("default", bound("done-1", "node-0001", [container("app", "3", "1Gi")], restartPolicy="Never",
                      annotations={RUN: "0"})),
    # node-0002: runs 0 s and fails -> not counted
    ("default", bound("failed-1", "node-0002", [container("app", "8", "1Gi")], restartPolicy="Never",
                      annotations={RUN: "0", EXIT: "1"})),
    # not bound -> not counted
    ("default", {"metadata": {"name": "pending-1"}, "spec": {"schedulerName": "vecsched",
                                                              "containers": [container("app", "4", "4Gi")]}}),
    # node-0002: pod-level resources replace the containers' sum: 6000m, 40Gi = 40960Mi
    ("team-a", bound("batch-1", "node-0002", [container("app", "1", "1Gi")],
                     resources={"requests": {"cpu": "6", "memory": "40Gi"}})),
    # node-0002: no requests: 0, 0, but one pod
    ("team-a", bound("idle-1", "node-0002", [container("app")])),
]

# The rows without measured columns, in name order:
# node-0000: 1500m + 2250m = 3750m of 4000m = 93.75% -> 93%; 1024Mi + 640Mi = 1664Mi of 8192Mi = 20.3% -> 20%; 2 pods
# node-0001: 1200m of 4000m = 30%; 3136Mi of 8192Mi = 38.3% -> 38%; 1 pod (done-1 finished)
# node-0002: 6000m of 16000m = 37.5% -> 37%; 40960Mi of 65536Mi = 62.5% -> 62%; 2 pods of 20 (failed-1 failed)
ROW0: Final = ["node-0000", "3750m/4000m", "93%", "1664Mi/8192Mi", "20%", "2/110"]
ROW1: Final = ["node-0001", "1200m/4000m", "30%", "3136Mi/8192Mi", "38%", "1/110"]
ROW2: Final = ["node-0002", "6000m/16000m", "37%", "40960Mi/65536Mi", "62%", "2/20"]

LOAD_CONFIG: Final = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}


def load_config_doc(args: dict[str, Any]) -> dict[str, Any]:
    """vecsched's default profile and one scoring by TargetLoadPacking, whose args name the load source."""
    return {**LOAD_CONFIG, "profiles": [{"schedulerName": "vecsched"}, {
        "schedulerName": "vecsched-load", "plugins": {"multiPoint": {"enabled": [{"name": "TargetLoadPacking"}]}},
        "pluginConfig": [{"name": "TargetLoadPacking", "args": args}]}]}


def config_map(namespace: str, name: str, doc: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"config.yaml": doc if isinstance(doc, str) else yaml.safe_dump(doc)}}


# The load-watcher's sample: node-0000 CPU AVG 12.5 (and STD 3), memory AVG 50; node-0001 only a
# CPU value of operator Latest (load-watcher's older form, read as the average); node-0002 absent.
SAMPLE: Final = WatcherMetrics(timestamp=1_700_000_000, window=Window(duration="15m", start=1_699_999_100,
                                                                     end=1_700_000_000), source="Prometheus",
                               nodes={"node-0000": (Metric("cpu", "CPU", "AVG", "15m", 12.5),
                                                    Metric("cpu", "CPU", "STD", "15m", 3.0),
                                                    Metric("mem", "Memory", "AVG", "15m", 50.0)),
                                      "node-0001": (Metric("cpu", "CPU", "Latest", "", 99.9),)})
# 12.5 -> 12%, 50 -> 50%; 99.9 -> 99% and no memory; node-0002: nothing
SAMPLED: Final = [ROW0 + ["12%", "50%"], ROW1 + ["99%", "<unknown>"], ROW2 + ["<unknown>", "<unknown>"]]
UNKNOWN: Final = [r + ["<unknown>", "<unknown>"] for r in (ROW0, ROW1, ROW2)]


@dataclass(frozen=True)
class Cluster:
    srv: ApiServer
    watcher: str
    """The load-watcher service's base URL."""
    files: Path
    """Where the configuration and WatcherMetrics files of the cases are."""

    @property
    def kubeconfig(self) -> str:
        return str(self.srv.kubeconfig_path)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    files = tmp_path_factory.mktemp("top")

    async def watcher(_: web.Request) -> web.Response:
        return web.json_response(watcher_metrics_to_json(SAMPLE))

    rbac = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "node-reader"},
             "rules": [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "node-reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                               "kind": "ClusterRole", "name": "node-reader"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "reader"}]}]
    async with serve(("GET", "/watcher", watcher), access_log=False) as watcher_url:
        async with serve_apiserver(nodes=[NodeShape(count=2, cpu="4", memory="8Gi", labels={"pool": "small"}),
                                          NodeShape(count=1, cpu="16", memory="64Gi", pods=20, labels={"pool": "big"})],
                                   kubelet_delay=0.0, controllers=[], tokens={"nobody": "nobody", "reader": "reader"},
                                   rbac=rbac) as srv:
            for ns in ("team-a", "vecsched", "loaded", "broken"):
                srv.create("namespaces", {"metadata": {"name": ns}})
            for ns, p in PODS:
                srv.create("pods", p, namespace=ns)
            await wait_for(lambda: {p["metadata"]["name"]: p["status"]["phase"] for p in srv.list("pods")
                                    if p["metadata"]["name"] in ("done-1", "failed-1")}
                           == {"done-1": "Succeeded", "failed-1": "Failed"}, what="done-1 and failed-1 finished")
            # The shipped ConfigMap: no load plugin, so no measured columns.
            srv.create("configmaps", yaml.safe_load((ROOT / "deploy" / "config.yaml").read_text()), namespace="vecsched")
            srv.create("configmaps", config_map("loaded", "vecsched-config",
                                                load_config_doc({"watcherAddress": watcher_url})), namespace="loaded")
            srv.create("configmaps", config_map("broken", "vecsched-config",
                                                {**LOAD_CONFIG, "profiles": [{"schedulerName": "x", "bogus": 1}]}),
                       namespace="broken")
            (files / "watcher.yaml").write_text(yaml.safe_dump(config_map(
                "vecsched", "vecsched-config", load_config_doc({"watcherAddress": watcher_url}))))
            (files / "down.yaml").write_text(yaml.safe_dump(load_config_doc(
                {"metricProvider": {"type": "Prometheus", "address": "http://127.0.0.1:1"}})))
            (files / "no-args.yaml").write_text(yaml.safe_dump({**LOAD_CONFIG, "profiles": [{"plugins": {
                "multiPoint": {"enabled": [{"name": "LoadAware"}]}}}]}))
            (files / "bad.yaml").write_text(yaml.safe_dump({**LOAD_CONFIG, "profiles": [{"bogus": 1}]}))
            (files / "sample.json").write_text(json.dumps(watcher_metrics_to_json(SAMPLE)))
            (files / "garbage.json").write_text("{not json")
            yield Cluster(srv, watcher_url, files)


def table(out: str) -> list[list[str]]:
    return [cells(line) for line in out.splitlines()]


def aligned(out: str) -> None:
    """Column-aligned like kubectl: every cell starts where its header starts."""
    lines = out.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for line in lines[1:]:
        assert [m.start() for m in re.finditer(r"\S+", line)] == starts, line


def files(c: Cluster, name: str) -> str:
    return str(c.files / name)


# (args, rows expected, stderr expected); the measured columns only where a load source is configured.
TABLE_CASES = [
    # --config-map's default, vecsched/vecsched-config, is deploy/config.yaml: no load plugin, no measured columns.
    pytest.param(lambda c: [], [HEAD, ROW0, ROW1, ROW2], "", id="shipped-config-no-load-plugin"),
    # One node (or pod) per page: every page is read. Requested CPU, largest first: 6000m, 3750m, 1200m.
    pytest.param(lambda c: ["--sort-by", "cpu", "--chunk-size", "1"], [HEAD, ROW2, ROW0, ROW1], "", id="sort-cpu-paged"),
    # Requested memory, largest first: 40960Mi, 3136Mi, 1664Mi.
    pytest.param(lambda c: ["--sort-by", "memory"], [HEAD, ROW2, ROW1, ROW0], "", id="sort-memory"),
    pytest.param(lambda c: ["-l", "pool=small"], [HEAD, ROW0, ROW1], "", id="selector"),
    # Named nodes (each pod list by node), printed by name as kubectl top prints them.
    pytest.param(lambda c: ["node-0002", "node-0000", "node-0002"], [HEAD, ROW0, ROW2], "", id="names"),
    pytest.param(lambda c: ["--no-headers", "node-0001"], [ROW1], "", id="no-headers"),
    pytest.param(lambda c: ["--config-map", "nowhere/none"], [HEAD, ROW0, ROW1, ROW2], "", id="no-configmap"),
    # The cluster's ConfigMap names a load-watcher service.
    pytest.param(lambda c: ["--config-map", "loaded/vecsched-config"], [HEAD + MEASURED, *SAMPLED], "",
                 id="configmap-watcher"),
    # A ConfigMap file given with --config; by measured CPU: 99.9, 12.5, then node-0002 without a measure.
    pytest.param(lambda c: ["--config", files(c, "watcher.yaml"), "--sort-by", "cpu-used"],
                 [HEAD + MEASURED, SAMPLED[1], SAMPLED[0], SAMPLED[2]], "", id="config-file-sort-used"),
    # By measured memory: 50, then the two without one, by name.
    pytest.param(lambda c: ["--node-metrics", files(c, "sample.json"), "--sort-by", "memory-used"],
                 [HEAD + MEASURED, SAMPLED[0], SAMPLED[1], SAMPLED[2]], "", id="node-metrics-file"),
    pytest.param(lambda c: ["--config", files(c, "down.yaml")], [HEAD + MEASURED, *UNKNOWN],
                 "warning: cannot read node metrics from prometheus http://127.0.0.1:1: ", id="source-down"),
]


@module_loop
@pytest.mark.parametrize(("make_args", "rows", "warning"), TABLE_CASES)
async def test_top_table(cluster: Cluster, tmp_path: Path, make_args: Callable[[Cluster], list[str]],
                         rows: list[list[str]], warning: str) -> None:
    code, out, err = await kubectl_vecsched("top", "--kubeconfig", cluster.kubeconfig, *make_args(cluster),
                                            home=tmp_path)
    assert code == 0, (out, err)
    if warning:
        # One line naming the source and the cause; the command still succeeds.
        assert err.startswith(warning) and err.count("\n") == 1, err
        assert err.endswith("; CPU-USED(%) and MEMORY-USED(%) are <unknown>\n"), err
    else:
        assert err == "", err
    assert table(out) == rows
    aligned(out)


def node_json(row: list[str], cpu: tuple[int, int, float], memory: tuple[int, int, float], pods: tuple[int, int],
              measured: tuple[float | None, float | None]) -> dict[str, Any]:
    return {"name": row[0],
            "cpu": {"requestedMilli": cpu[0], "allocatableMilli": cpu[1], "requestedPercent": cpu[2],
                    "measuredPercent": measured[0]},
            "memory": {"requestedBytes": memory[0], "allocatableBytes": memory[1], "requestedPercent": memory[2],
                       "measuredPercent": measured[1]},
            "pods": {"count": pods[0], "allocatable": pods[1]}}


MI: Final = 1024 * 1024


@module_loop
async def test_top_json(cluster: Cluster, tmp_path: Path) -> None:
    code, out, err = await kubectl_vecsched("top", "--kubeconfig", cluster.kubeconfig, "-o", "json",
                                            "--config-map", "loaded/vecsched-config", home=tmp_path)
    assert (code, err) == (0, ""), (out, err)
    # The exact numbers behind ROW0..ROW2 and SAMPLED: 3750/4000 = 93.75%, 1664/8192 = 20.3125 -> 20.31, ...
    assert json.loads(out) == {
        "nodes": [node_json(ROW0, (3750, 4000, 93.75), (1664 * MI, 8192 * MI, 20.31), (2, 110), (12.5, 50.0)),
                  node_json(ROW1, (1200, 4000, 30.0), (3136 * MI, 8192 * MI, 38.28), (1, 110), (99.9, None)),
                  node_json(ROW2, (6000, 16000, 37.5), (40960 * MI, 65536 * MI, 62.5), (2, 20), (None, None))],
        "loadMetrics": {"source": "load-watcher", "where": f"{cluster.watcher}/watcher", "window": "15m",
                        "timestamp": 1_700_000_000, "error": None}}


@module_loop
async def test_top_json_without_and_with_a_failed_source(cluster: Cluster, tmp_path: Path) -> None:
    kc = cluster.kubeconfig
    code, out, err = await kubectl_vecsched("top", "--kubeconfig", kc, "-o", "json", "node-0001", home=tmp_path)
    assert (code, err) == (0, "")
    # No load plugin in the shipped configuration: no source, no measures.
    assert json.loads(out) == {"nodes": [node_json(ROW1, (1200, 4000, 30.0), (3136 * MI, 8192 * MI, 38.28), (1, 110),
                                                   (None, None))], "loadMetrics": None}
    code, out, err = await kubectl_vecsched("top", "--kubeconfig", kc, "-o", "json", "node-0001",
                                            "--config", files(cluster, "down.yaml"), home=tmp_path)
    assert code == 0 and err.startswith("warning: cannot read node metrics from prometheus http://127.0.0.1:1: ")
    doc = json.loads(out)
    assert doc["nodes"][0]["cpu"]["measuredPercent"] is None
    load = doc["loadMetrics"]
    assert (load["source"], load["where"], load["window"], load["timestamp"]) == (
        "prometheus", "http://127.0.0.1:1", None, None)
    assert load["error"] and load["error"] in err


@module_loop
async def test_configmap_not_readable_is_a_warning(cluster: Cluster, tmp_path: Path) -> None:
    # "reader" may list nodes and pods but not read ConfigMaps: the rows, and one line saying why
    # there are no measured columns.
    kc = cluster.srv.kubeconfig_for(token="reader", path=tmp_path / "reader")
    code, out, err = await kubectl_vecsched("top", "--kubeconfig", str(kc), home=tmp_path)
    assert code == 0 and table(out) == [HEAD, ROW0, ROW1, ROW2], (out, err)
    assert err.startswith("warning: cannot read ConfigMap vecsched/vecsched-config for the load source: 403")
    assert err.endswith("; give --config FILE\n") and err.count("\n") == 1, err


async def test_nothing_to_show(tmp_path: Path) -> None:
    async with serve_apiserver(nodes=0, kubelet_delay=0.0, controllers=[]) as srv:
        kc = str(srv.kubeconfig_path)
        assert await kubectl_vecsched("top", "--kubeconfig", kc, home=tmp_path) == (0, "", "No resources found\n")
        code, out, err = await kubectl_vecsched("top", "--kubeconfig", kc, "-o", "json", home=tmp_path)
        assert (code, json.loads(out), err) == (0, {"nodes": [], "loadMetrics": None}, "")


def unreachable(tmp_path: Path, _: Cluster) -> list[str]:
    return ["top", "--kubeconfig", str(down_kubeconfig(tmp_path))]


# (args, exit code, what the one line on stderr says)
ERROR_CASES = [
    pytest.param(lambda t, c: ["top", "--kubeconfig", c.kubeconfig, "nope"], 1, 'nodes "nope" not found',
                 id="unknown-node"),
    pytest.param(unreachable, 1, "cannot list nodes", id="unreachable"),
    pytest.param(lambda t, c: ["top", "--kubeconfig", str(c.srv.kubeconfig_for(token="nobody", path=t / "nobody"))],
                 1, "cannot list nodes: 403 Forbidden", id="forbidden"),
    # The cluster's ConfigMap holds an invalid configuration: a cluster problem, exit 1, naming the field.
    pytest.param(lambda t, c: ["top", "--kubeconfig", c.kubeconfig, "--config-map", "broken/vecsched-config"], 1,
                 "ConfigMap broken/vecsched-config: data[config.yaml]: profiles[0].bogus: unknown field",
                 id="broken-configmap"),
    # Bad input files and flags: exit 2, before any request.
    pytest.param(lambda t, c: ["top", "--kubeconfig", c.kubeconfig, "--config", files(c, "bad.yaml")], 2,
                 "bad.yaml: profiles[0].bogus: unknown field", id="bad-config-file"),
    pytest.param(lambda t, c: ["top", "--kubeconfig", c.kubeconfig, "--config", files(c, "no-args.yaml")], 2,
                 "LoadAware has no args", id="load-plugin-without-source"),
    pytest.param(lambda t, c: ["top", "--kubeconfig", c.kubeconfig, "--node-metrics", files(c, "garbage.json")], 2,
                 "--node-metrics", id="bad-node-metrics"),
    pytest.param(lambda t, c: ["top", "--kubeconfig", c.kubeconfig, "--node-metrics", files(c, "missing.json")], 2,
                 "cannot read", id="missing-node-metrics"),
    pytest.param(lambda t, c: ["top", "node-0000", "-l", "pool=small"], 2,
                 "only one of NODE or --selector can be provided", id="name-and-selector"),
    pytest.param(lambda t, c: ["top", "--config-map", "vecsched"], 2,
                 "--config-map: expected NAMESPACE/NAME, got 'vecsched'", id="bad-config-map"),
    pytest.param(lambda t, c: ["top", "--config", "a.yaml", "--config-map", "a/b"], 2, "not allowed with argument",
                 id="two-sources"),
    pytest.param(lambda t, c: ["top", "--sort-by", "pods"], 2, "invalid choice", id="bad-sort"),
    pytest.param(lambda t, c: ["top", "--chunk-size", "-1"], 2, "--chunk-size must be >= 0", id="bad-chunk-size"),
]


@module_loop
@pytest.mark.parametrize(("make_args", "exit_code", "says"), ERROR_CASES)
async def test_errors_are_one_line(cluster: Cluster, tmp_path: Path, make_args: Any, exit_code: int,
                                   says: str) -> None:
    code, out, err = await kubectl_vecsched(*make_args(tmp_path, cluster), home=tmp_path)
    assert code == exit_code and out == "", (code, out, err)
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1 and says in err, err


# ---- measured by a real Prometheus ----------------------------------------------------------------


async def test_measured_by_prometheus(tmp_path: Path) -> None:
    # Two nodes of 4 cores and 8Gi; each pod requests 1 core and 1Gi but uses (simulated):
    # hot on node-0000: 3 cores of 4 = 75%, 2Gi of 8Gi = 25%; cold on node-0001: 1 core = 25%, 6Gi = 75%.
    async with serve_apiserver(nodes=[NodeShape(count=2, cpu="4", memory="8Gi")], kubelet_delay=0.0,
                               controllers=[]) as srv:
        for name, node, cpu, memory in (("hot", "node-0000", "3", "2Gi"), ("cold", "node-0001", "1", "6Gi")):
            srv.create("pods", bound(name, node, [container("app", "1", "1Gi")],
                                     annotations={"vecsched.io/simulated-usage-cpu": cpu,
                                                  "vecsched.io/simulated-usage-memory": memory}), namespace="default")
        # Running before Prometheus' first scrape, so every sample of the window holds the same values.
        await wait_for(lambda: all(p["status"]["phase"] == "Running" for p in srv.list("pods")), what="pods running")
        async with prometheus(targets=[Target("node-exporter", f"{srv.url}/metrics/node-utilisation",
                                              honor_labels=True)]) as prom:
            await prom.wait_for(f"count({MEMORY_RULE}) == 2 and count(instance:node_cpu:ratio) == 2",
                                what="both nodes scraped")
            srv.create("namespaces", {"metadata": {"name": "vecsched"}})
            srv.create("configmaps", config_map("vecsched", "vecsched-config", load_config_doc(
                {"metricProvider": {"type": "Prometheus", "address": prom.url}})), namespace="vecsched")
            kc = str(srv.kubeconfig_path)
            code, out, err = await kubectl_vecsched("top", "--kubeconfig", kc, "--sort-by", "memory-used", home=tmp_path)
            assert (code, err) == (0, ""), (out, err)
            # Requested: 1000m of 4000m = 25%, 1024Mi of 8192Mi = 12.5% -> 12% on each; measured as above,
            # by measured memory: cold (75%) first.
            assert table(out) == [HEAD + MEASURED,
                                  ["node-0001", "1000m/4000m", "25%", "1024Mi/8192Mi", "12%", "1/110", "25%", "75%"],
                                  ["node-0000", "1000m/4000m", "25%", "1024Mi/8192Mi", "12%", "1/110", "75%", "25%"]]
            code, out, err = await kubectl_vecsched("top", "--kubeconfig", kc, "-o", "json", "node-0000", home=tmp_path)
            assert (code, err) == (0, ""), (out, err)
            doc = json.loads(out)
            # avg_over_time of a constant 0.75 is 0.75, x100 as load-watcher reads it.
            assert (doc["nodes"][0]["cpu"]["measuredPercent"], doc["nodes"][0]["memory"]["measuredPercent"]) == (75.0, 25.0)
            load = doc["loadMetrics"]
            assert (load["source"], load["where"], load["window"], load["error"]) == ("prometheus", prom.url, "15m", None)
            # A configuration naming the node by a label the series lack: the fetch succeeds, no node has a
            # measure, and the fetcher's own warnings (one per rule) say what to change.
            config = tmp_path / "node-label.yaml"
            config.write_text(yaml.safe_dump(load_config_doc(
                {"metricProvider": {"type": "Prometheus", "address": prom.url, "nodeLabel": "node"}})))
            code, out, err = await kubectl_vecsched("top", "--kubeconfig", kc, "--config", str(config), home=tmp_path)
            assert code == 0 and [r[-2:] for r in table(out)[1:]] == [["<unknown>", "<unknown>"]] * 2, (out, err)
            assert err.splitlines() == [
                f"warning: Prometheus at {prom.url} answers {rule} without the label 'node' that names the node: set "
                f"metricProvider.nodeLabel to the label that holds the node's name"
                for rule in ("instance:node_cpu:ratio", MEMORY_RULE)], err
