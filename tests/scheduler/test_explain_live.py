"""``vecsched explain POD``: the live mode, against the embedded API server over HTTP.

The live answer must be the snapshot mode's for the same objects, so the main test dumps
the cluster with the real kubectl (``kubectl get ... -A -o json``, as docs/explain.md tells
users to) and compares both JSONs. The others check what is read (only what the profile
needs, in pages), where the configuration comes from, the load sample, and the errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from scheduler.apiserver import ApiServer, serve_apiserver
from scheduler.apiserver.nodes import DEFAULT_CSI_DRIVER, NodeShape
from scheduler.config import API_VERSION
from scheduler.kube.client import ClientSettings, connect
from tests.explain_support import run_explain as explain
from tests.http_support import serve

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
CRD = ROOT / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
SHAPE = NodeShape(count=3, cpu="4", memory="8Gi", zones=("zone-a", "zone-b", "zone-c"))
DUMPED = ("nodes,pods,namespaces,services,rs,sts,rc,pdb,priorityclasses,pv,pvc,storageclasses,csinodes,csidrivers,"
          "csistoragecapacities")
CONTRACT_KEYS = {"pod", "profile", "selected", "message", "nodes", "preemption", "gang", "batching"}


def pod(name: str, cpu: str = "1", *, node: str = "", labels: dict[str, str] | None = None, cls: str = "",
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schedulerName": "vecsched",
                            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                                            "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}], **spec}
    if node:
        body["nodeName"] = node
    if cls:
        body["priorityClassName"] = cls
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": body}


def config_file(path: Path, profile: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration",
                                    "profiles": [profile]}))
    return str(path)


ONLY_FIT = {"schedulerName": "vecsched", "plugins": {"multiPoint": {"disabled": [{"name": "*"}],
                                                                    "enabled": [{"name": "NodeResourcesFit"}]}}}
"""A profile of NodeResourcesFit alone: it reads Nodes and Pods, nothing else."""


async def kubectl(srv: ApiServer, home: Path, *args: str) -> str:
    """The real kubectl's stdout (it must succeed)."""
    env = {**{k: v for k, v in os.environ.items() if k != "KUBECONFIG"}, "HOME": str(home)}
    r = await asyncio.to_thread(subprocess.run, [KUBECTL, "--kubeconfig", str(srv.kubeconfig_path), *args],
                                env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---- the same answer as the snapshot mode -------------------------------------------------------


def spread(srv: ApiServer) -> tuple[str, list[str]]:
    # A Service selects app=web: its pods spread by zone and hostname (PodTopologySpread's defaults).
    srv.create("services", {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                                                                  "ports": [{"port": 80}]}}, namespace="default")
    for i, node in ((1, "node-0000"), (2, "node-0001")):
        srv.create("pods", pod(f"web-{i}", node=node, labels={"app": "web"}), namespace="default")
    for i in range(3, 9):  # more pods than a page of 2: every page is read
        srv.create("pods", pod(f"web-{i}", labels={"app": "web"}), namespace="default")
    return "web-3", ["--chunk-size", "2"]


def preemption(srv: ApiServer) -> tuple[str, list[str]]:
    # docs/explain.md's example on two nodes: node-0000 holds db-0 (3 CPUs, under a budget that allows
    # no disruption) and report-1 (1); node-0001 report-2 and report-3 (2 each). checkout needs 3 CPUs.
    for name, value in (("batch", 100), ("database", 500), ("critical", 1000)):
        srv.create("priorityclasses", {"metadata": {"name": name}, "value": value})
    srv.create("poddisruptionbudgets", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                        "metadata": {"name": "db"},
                                        "spec": {"selector": {"matchLabels": {"app": "db"}}, "minAvailable": 1}},
               namespace="default")
    srv.create("pods", pod("db-0", "3", node="node-0000", labels={"app": "db"}, cls="database"), namespace="default")
    srv.create("pods", pod("report-1", "1", node="node-0000", cls="batch"), namespace="default")
    srv.create("pods", pod("report-2", "2", node="node-0001", cls="batch"), namespace="default")
    srv.create("pods", pod("report-3", "2", node="node-0001", cls="batch"), namespace="default")
    srv.create("pods", pod("checkout", "3", cls="critical", nodeSelector={"kubernetes.io/hostname": "node-0000"}),
               namespace="default")
    return "default/checkout", []


def gang(srv: ApiServer) -> tuple[str, list[str]]:
    # ml/train needs its 3 members at once; each takes 2 of a node's 4 CPUs.
    srv.create("customresourcedefinitions", next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
    srv.create("namespaces", {"metadata": {"name": "ml"}})
    srv.create("podgroups", {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                             "metadata": {"name": "train"}, "spec": {"minMember": 3}}, namespace="ml")
    for i in range(3):
        srv.create("pods", pod(f"train-{i}", "2", labels={"scheduling.x-k8s.io/pod-group": "train"}), namespace="ml")
    return "ml/train-0", []


def volumes(srv: ApiServer) -> tuple[str, list[str]]:
    # The claim's class provisions in zone-b only, when a pod needs it: node-0001 is the one node.
    srv.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": {"name": "zonal"}, "provisioner": DEFAULT_CSI_DRIVER,
                                  "volumeBindingMode": "WaitForFirstConsumer",
                                  "allowedTopologies": [{"matchLabelExpressions": [
                                      {"key": "topology.kubernetes.io/zone", "values": ["zone-b"]}]}]})
    srv.create("persistentvolumeclaims", {"metadata": {"name": "data"}, "spec": {
        "storageClassName": "zonal", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        namespace="default")
    srv.create("pods", pod("db", volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]),
               namespace="default")
    return "db", []


def what_if(srv: ApiServer) -> tuple[str, list[str]]:
    # 6 CPUs on nodes of 4: nothing fits. node-0000 has 3 free (a 1-CPU pod), the others 4.
    srv.create("pods", pod("small", "1", node="node-0000"), namespace="default")
    srv.create("pods", pod("big", "6"), namespace="default")
    return "big", ["--what-if"]


def check_spread(doc: dict[str, Any]) -> None:
    # web-1 and web-2 hold zone-a and zone-b: zone-c's node spreads best.
    assert doc["selected"] == "node-0002"


def check_preemption(doc: dict[str, Any]) -> None:
    # node-0000 only (the selector), full: evicting db-0 breaks the budget but is the only way
    # (report-1's CPU is not enough), so the plan takes db-0 and gives report-1 back.
    assert doc["selected"] is None
    assert (doc["preemption"]["node"], doc["preemption"]["victims"]) == ("node-0000", ["default/db-0"])
    assert doc["preemption"]["candidates"]["node-0000"]["pdb_violations"] == 1


def check_gang(doc: dict[str, Any]) -> None:
    # 2 + 2 CPUs fill a node: the three members take two nodes, and the group fits.
    assert doc["gang"]["fits"] is True and doc["gang"]["need"] == 3
    assert sorted(doc["gang"]["members"]) == ["ml/train-0", "ml/train-1", "ml/train-2"]
    assert all(doc["gang"]["members"].values())


def check_volumes(doc: dict[str, Any]) -> None:
    assert doc["selected"] == "node-0001"
    assert [n for n, v in doc["nodes"].items() if v["feasible"]] == ["node-0001"]


def check_what_if(doc: dict[str, Any]) -> None:
    # Lowering CPU alone: 4 CPUs fit node-0001 and node-0002 (node-0000 has 3 free).
    assert doc["selected"] is None and doc["whatIf"]["fits"] is False
    assert set(doc["whatIf"]) == {"fits", "node", "requests", "taints", "nodes", "nodeShapesOmitted", "preemption"}
    cpu = next(r for r in doc["whatIf"]["requests"] if r["resource"] == "cpu")
    assert (cpu["maxFitting"], cpu["nodes"]) == ("4", ["node-0001", "node-0002"])


SCENARIOS = [
    pytest.param(spread, check_spread, id="spread-paged"),
    pytest.param(preemption, check_preemption, id="preemption"),
    pytest.param(gang, check_gang, id="gang"),
    pytest.param(volumes, check_volumes, id="volumes"),
    pytest.param(what_if, check_what_if, id="what-if"),
]


@pytest.fixture
async def cluster() -> AsyncIterator[ApiServer]:
    async with serve_apiserver(nodes=SHAPE, kubelet_delay=0.0, controllers=[]) as srv:
        yield srv


@pytest.mark.parametrize(("build", "check"), SCENARIOS)
async def test_live_equals_the_snapshot_of_the_same_cluster(cluster: ApiServer, tmp_path: Path,
                                                            build: Callable[[ApiServer], tuple[str, list[str]]],
                                                            check: Callable[[dict[str, Any]], None]) -> None:
    target, more = build(cluster)
    kc = str(cluster.kubeconfig_path)
    code, out, err = await explain("--kubeconfig", kc, target, "-o", "json", *more)
    assert code == 0, err
    live = json.loads(out)
    check(live)
    assert ("whatIf" in live) == ("--what-if" in more)  # the contract's keys, plus whatIf only when asked
    assert set(live) - {"whatIf"} == CONTRACT_KEYS
    kinds = DUMPED + (",podgroups" if target.startswith("ml/") else "")
    (tmp_path / "snapshot.json").write_text(await kubectl(cluster, tmp_path, "get", kinds, "-A", "-o", "json"))
    ns, _, name = target.rpartition("/")
    (tmp_path / "pod.json").write_text(await kubectl(cluster, tmp_path, "get", "pod", "-n", ns or "default", name,
                                                     "-o", "json"))
    snap_more = [a for a in more if a == "--what-if"]
    code, out, err = await explain("--snapshot", str(tmp_path / "snapshot.json"), "--pod", str(tmp_path / "pod.json"),
                                   "-o", "json", *snap_more)
    assert code == 0, err
    assert live == json.loads(out)
    # The table too, byte for byte (with --what-if, its lines after a blank line).
    _, live_table, _ = await explain("--kubeconfig", kc, target, *more)
    _, snap_table, _ = await explain("--snapshot", str(tmp_path / "snapshot.json"), "--pod",
                                     str(tmp_path / "pod.json"), *snap_more)
    assert live_table == snap_table


# ---- only what the profile reads ---------------------------------------------------------------

STORAGE = {"persistentvolumes", "persistentvolumeclaims", "storageclasses", "csinodes", "csidrivers",
           "csistoragecapacities"}
WORKLOADS = {"namespaces", "services", "replicasets", "statefulsets", "replicationcontrollers"}


def multipoint(*names: str) -> dict[str, Any]:
    return {"schedulerName": "vecsched", "plugins": {"multiPoint": {"disabled": [{"name": "*"}],
                                                                    "enabled": [{"name": n} for n in names]}}}


# (profile or None for the default, the collections listed besides nodes and pods)
NEEDS = [
    pytest.param(ONLY_FIT, set(), id="fit-only"),
    pytest.param(multipoint("NodeResourcesFit", "PodTopologySpread"), WORKLOADS, id="spread"),
    pytest.param(multipoint("NodeResourcesFit", "InterPodAffinity"), WORKLOADS, id="affinity"),
    pytest.param(multipoint("NodeResourcesFit", "DefaultPreemption"), {"poddisruptionbudgets", "priorityclasses"},
                 id="preemption"),
    pytest.param(multipoint("NodeResourcesFit", "Coscheduling"), {"podgroups"}, id="coscheduling"),
    pytest.param(multipoint("NodeResourcesFit", "VolumeBinding"), STORAGE, id="volumes"),
    pytest.param(None, WORKLOADS | STORAGE | {"poddisruptionbudgets", "priorityclasses", "podgroups"},
                 id="default-profile"),
]


def docs_role() -> dict[str, Any]:
    """The ClusterRole docs/explain.md gives for explaining with the default profile."""
    doc = (ROOT / "docs" / "explain.md").read_text()
    block = next(b.split("```", 1)[0] for b in doc.split("```yaml\n")[1:] if "name: vecsched-explain" in b)
    role: dict[str, Any] = yaml.safe_load(block)
    return role


def binding(role: str, user: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
            "roleRef": {"kind": "ClusterRole", "name": role}, "subjects": [{"kind": "User", "name": user}]}


@pytest.fixture
async def rbac_cluster() -> AsyncIterator[ApiServer]:
    # RBAC on: every request's authorization is logged; "viewer" may read pods, nodes and ConfigMaps only,
    # "explainer" has docs/explain.md's role. The PodGroup CRD is installed, so that listing PodGroups is
    # a request like the others.
    viewer = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "viewer"},
              "rules": [{"apiGroups": [""], "resources": ["pods", "nodes", "configmaps"], "verbs": ["get", "list"]}]}
    rbac = [viewer, binding("viewer", "viewer"), docs_role(), binding("vecsched-explain", "explainer")]
    async with serve_apiserver(nodes=SHAPE, kubelet_delay=0.0, controllers=[], rbac=rbac,
                               tokens={"nobody": "nobody", "viewer": "viewer", "explainer": "explainer"}) as srv:
        srv.create("customresourcedefinitions", next(d for d in yaml.safe_load_all(CRD.read_text()) if d))
        for i in range(12):
            srv.create("pods", pod(f"p-{i}", "100m", node=f"node-000{i % 3}"), namespace="default")
        srv.create("pods", pod("web"), namespace="default")
        yield srv


@pytest.mark.parametrize(("profile", "listed"), NEEDS)
async def test_lists_only_what_the_profile_reads(rbac_cluster: ApiServer, tmp_path: Path,
                                                 profile: dict[str, Any] | None, listed: set[str]) -> None:
    config = ["--config", config_file(tmp_path / "c.yaml", profile)] if profile else []
    rbac_cluster.authorizer.log.clear()
    code, out, err = await explain("--kubeconfig", str(rbac_cluster.kubeconfig_path), "web", *config,
                                   "--chunk-size", "5", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["selected"] is not None
    requests = [(d.verb, d.resource) for d in rbac_cluster.auth_log]
    assert {r for v, r in requests if v == "list"} == {"nodes", "pods"} | listed
    # 13 pods in pages of 5: 3 list requests; 3 nodes: 1. The pod itself: one get.
    assert requests.count(("list", "pods")) == 3 and requests.count(("list", "nodes")) == 1
    assert requests.count(("get", "pods")) == 1
    # With --config, the cluster's ConfigMap is not read; without, it is (and absent: the defaults).
    assert requests.count(("get", "configmaps")) == (0 if profile else 1)


# (profile, token, exit code, what stderr says): a user who may read pods, nodes and ConfigMaps can
# explain with a profile that reads nothing else, and gets the first 403 otherwise.
PERMISSIONS = [
    pytest.param(ONLY_FIT, "viewer", 0, "", id="enough"),
    pytest.param(None, "viewer", 1, 'cannot list', id="default-profile-needs-more"),
    pytest.param(None, "explainer", 0, "", id="the-documented-role"),
    pytest.param(ONLY_FIT, "nobody", 1, 'cannot get pod default/web: 403 Forbidden: pods "web" is forbidden: '
                 'User "nobody" cannot get resource "pods" in API group "" in the namespace "default"', id="nothing"),
]


@pytest.mark.parametrize(("profile", "token", "exit_code", "says"), PERMISSIONS)
async def test_permissions(rbac_cluster: ApiServer, tmp_path: Path, profile: dict[str, Any] | None, token: str,
                           exit_code: int, says: str) -> None:
    config = ["--config", config_file(tmp_path / "c.yaml", profile)] if profile else []
    kc = str(rbac_cluster.kubeconfig_for(token=token, path=tmp_path / "kc"))
    code, out, err = await explain("--kubeconfig", kc, "web", *config)
    assert code == exit_code, err
    if exit_code:
        assert out == "" and err.startswith(f"vecsched explain: {says}") and err.count("\n") == 1, err
        assert "403 Forbidden" in err
    else:
        assert out.startswith("pod default/web  profile vecsched  selected node-")
        assert err == ("" if profile else "warning: no ConfigMap vecsched/vecsched-config in the cluster: explaining "
                       "with vecsched's default profile (give --config FILE or --config-map NS/NAME)\n")


async def test_an_expired_continue_token_restarts_with_one_full_list(rbac_cluster: ApiServer) -> None:
    # 13 pods in pages of 5. Every request waits 0.3 s after it is authorized (and logged); once the
    # second page's request is logged, the history is compacted, so that its continue token is too
    # old when it is served: 410 Expired. The pager then lists once more, without a limit.
    rbac_cluster.faults.latency_seconds = 0.3
    rbac_cluster.authorizer.log.clear()
    client = await connect(ClientSettings(kubeconfig=str(rbac_cluster.kubeconfig_path)))
    async with client:
        task = asyncio.create_task(client.list_items("/api/v1/pods", chunk_size=5))
        while sum(d.verb == "list" for d in rbac_cluster.auth_log) < 2:
            await asyncio.sleep(0.01)
        rbac_cluster.compact()
        items = await task
    assert sorted(i["metadata"]["name"] for i in items) == sorted(["web", *(f"p-{i}" for i in range(12))])
    assert sum(d.verb == "list" for d in rbac_cluster.auth_log) == 3  # page 1, page 2 (410), the full list


# ---- the configuration ---------------------------------------------------------------------------


def packing_configmap(name: str = "vecsched-config", namespace: str = "vecsched") -> dict[str, Any]:
    """deploy/config.yaml's shape, with a profile that packs: NodeResourcesFit MostAllocated alone."""
    profile = {"schedulerName": "vecsched", "plugins": {"multiPoint": {"disabled": [{"name": "*"}],
                                                                       "enabled": [{"name": "NodeResourcesFit"}]}},
               "pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "MostAllocated"}}}]}
    config = {"apiVersion": API_VERSION, "kind": "KubeSchedulerConfiguration", "profiles": [profile]}
    return {"metadata": {"name": name, "namespace": namespace}, "data": {"config.yaml": yaml.safe_dump(config)}}


def occupied(srv: ApiServer) -> None:
    # node-0000 has 2 of 4 CPUs taken: MostAllocated picks it, LeastAllocated (the default) does not.
    srv.create("pods", pod("busy", "2", node="node-0000"), namespace="default")
    srv.create("pods", pod("web"), namespace="default")


# (ConfigMaps to create, extra flags, selected node, stderr)
CONFIGS = [
    pytest.param([packing_configmap()], [], "node-0000", "", id="cluster-configmap"),
    pytest.param([packing_configmap("mine", "ops")], ["--config-map", "ops/mine"], "node-0000", "", id="config-map-flag"),
    pytest.param([packing_configmap()], ["--config", str(ROOT / "deploy" / "config.yaml")], "node-0002", "",
                 id="config-file-wins"),  # the shipped default profile spreads: a free node
    pytest.param([], [], "node-0002",
                 "warning: no ConfigMap vecsched/vecsched-config in the cluster: explaining with vecsched's default "
                 "profile (give --config FILE or --config-map NS/NAME)\n", id="no-configmap"),
]


@pytest.mark.parametrize(("configmaps", "flags", "selected", "stderr"), CONFIGS)
async def test_configuration(cluster: ApiServer, configmaps: list[dict[str, Any]], flags: list[str], selected: str,
                             stderr: str) -> None:
    occupied(cluster)
    for ns in ("vecsched", "ops"):
        cluster.create("namespaces", {"metadata": {"name": ns}})
    for cm in configmaps:
        cluster.create("configmaps", cm)
    code, out, err = await explain("--kubeconfig", str(cluster.kubeconfig_path), "web", "-o", "json", *flags)
    assert (code, err) == (0, stderr)
    # node-0001 and node-0002 tie under the default profile; seed 0's draw picks node-0002.
    assert json.loads(out)["selected"] == selected


async def test_podgroup_crd_not_installed_means_no_group(cluster: ApiServer) -> None:
    # The pod names a PodGroup, but PodGroups are not served (404): none. Coscheduling's Permit then
    # rejects the pod on its node, as the live scheduler reports it.
    cluster.create("pods", pod("train-0", labels={"scheduling.x-k8s.io/pod-group": "train"}), namespace="default")
    code, out, err = await explain("--kubeconfig", str(cluster.kubeconfig_path), "train-0", "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["selected"], doc["message"], doc["gang"]) == (None, "0/1 nodes are available: 1 PodGroup not found.",
                                                             None)


# ---- the load sample -------------------------------------------------------------------------------


def load_profile(args: dict[str, Any]) -> dict[str, Any]:
    return {"schedulerName": "vecsched", "plugins": {"multiPoint": {"enabled": [{"name": "TargetLoadPacking"}]}},
            "pluginConfig": [{"name": "TargetLoadPacking", "args": args}]}


SAMPLE = {"timestamp": 1, "window": {"end": 1}, "data": {"NodeMetricsMap": {
    "node-0000": {"metrics": [{"type": "CPU", "operator": "AVG", "value": 20}]}}}}
"""node-0000 measures 20% CPU."""


@pytest.fixture
async def watcher() -> AsyncIterator[str]:
    """A load-watcher service serving ``SAMPLE``."""

    async def handle(_: web.Request) -> web.Response:
        return web.json_response(SAMPLE)

    async with serve(("GET", "/watcher", handle)) as url:
        yield url


def from_watcher(tmp_path: Path, watcher: str) -> tuple[dict[str, Any], list[str]]:
    return {"watcherAddress": watcher}, []


def from_file(tmp_path: Path, watcher: str) -> tuple[dict[str, Any], list[str]]:
    # --node-metrics replaces the profile's own source, which would not answer.
    (tmp_path / "m.json").write_text(json.dumps(SAMPLE))
    return {"metricProvider": {"address": "http://127.0.0.1:1"}}, ["--node-metrics", str(tmp_path / "m.json")]


@pytest.mark.parametrize("source", [pytest.param(from_watcher, id="load-watcher"),
                                    pytest.param(from_file, id="node-metrics-file")])
async def test_the_load_sample(cluster: ApiServer, tmp_path: Path, watcher: str,
                               source: Callable[[Path, str], tuple[dict[str, Any], list[str]]]) -> None:
    cluster.create("pods", pod("web"), namespace="default")
    args, flags = source(tmp_path, watcher)
    config = config_file(tmp_path / "c.yaml", load_profile(args))
    code, out, err = await explain("--kubeconfig", str(cluster.kubeconfig_path), "web", "--config", config,
                                   "-o", "json", *flags)
    assert (code, err) == (0, "")
    # node-0000 measures 20% of 4 cores; the pod requests 1 core without a limit: 1000m x 1.5 = 37.5%.
    # 57.5% > 40: round(40 x (100 - 57.5) / 60) = round(28.33) = 28 (as tests/scheduler/test_explain_load.py).
    assert json.loads(out)["nodes"]["node-0000"]["scores"]["TargetLoadPacking"] == 28


async def test_an_unreachable_load_source_is_a_warning(cluster: ApiServer, tmp_path: Path) -> None:
    cluster.create("pods", pod("web"), namespace="default")
    config = config_file(tmp_path / "c.yaml", load_profile({"metricProvider": {"address": "http://127.0.0.1:1"}}))
    code, out, err = await explain("--kubeconfig", str(cluster.kubeconfig_path), "web", "--config", config, "-o", "json")
    assert code == 0 and json.loads(out)["selected"] is not None
    assert err.startswith("warning: cannot read node metrics from prometheus http://127.0.0.1:1: ") and \
        err.endswith("; the load plugins decide without a sample\n") and err.count("\n") == 1, err


# (the pod, the warning after the ConfigMap's): the answer is where the pod would go, and says why
# that is hypothetical.
HYPOTHETICAL = [
    pytest.param(pod("p", node="node-0002"), "pod default/p is bound to node-0002 already: explaining where it "
                 "would go now", id="bound"),
    pytest.param(pod("p", schedulingGates=[{"name": "example.com/quota"}]), "pod default/p waits for scheduling "
                 "gates (example.com/quota): no scheduler tries it until they are removed", id="gated"),
    pytest.param(pod("p", schedulerName="default-scheduler"), "pod default/p asks for schedulerName "
                 "default-scheduler, which no vecsched profile has: explaining with profile vecsched",
                 id="another-scheduler"),
]


@pytest.mark.parametrize(("manifest", "warning"), HYPOTHETICAL)
async def test_a_hypothetical_answer_says_so(cluster: ApiServer, manifest: dict[str, Any], warning: str) -> None:
    cluster.create("pods", manifest, namespace="default")
    code, out, err = await explain("--kubeconfig", str(cluster.kubeconfig_path), "p", "-o", "json")
    assert code == 0 and json.loads(out)["pod"] == "default/p"
    assert err.splitlines()[1:] == [f"warning: {warning}"], err


# ---- errors: one line, 2 for input, 1 for the cluster ----------------------------------------------


def unreachable(tmp_path: Path, _: ApiServer) -> list[str]:
    path = tmp_path / "down"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                    "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
    return ["--kubeconfig", str(path), "web", "--config", str(ROOT / "deploy" / "config.yaml")]


def bad_configmap(tmp_path: Path, srv: ApiServer) -> list[str]:
    srv.create("namespaces", {"metadata": {"name": "vecsched"}})
    srv.create("configmaps", {"metadata": {"name": "vecsched-config"}, "data": {"config.yaml": "profiles: 3\n"}},
               namespace="vecsched")
    return ["--kubeconfig", str(srv.kubeconfig_path), "web"]


def bad_config_file(tmp_path: Path, srv: ApiServer) -> list[str]:
    (tmp_path / "c.yaml").write_text(f"apiVersion: {API_VERSION}\nkind: KubeSchedulerConfiguration\nprofiles: 3\n")
    return ["--kubeconfig", str(srv.kubeconfig_path), "web", "--config", str(tmp_path / "c.yaml")]


def kc(*more: str) -> Callable[[Path, ApiServer], list[str]]:
    return lambda t, s: ["--kubeconfig", str(s.kubeconfig_path), *more]


# (arguments, exit code, the whole stderr line after "vecsched explain: ")
ERRORS = [
    pytest.param(kc("nope"), 1, 'cannot get pod default/nope: 404 NotFound: pods "nope" not found', id="not-found"),
    pytest.param(kc("-n", "other", "web"), 1, 'cannot get pod other/web: 404 NotFound: pods "web" not found',
                 id="not-found-in-namespace"),
    pytest.param(unreachable, 1, "cannot get pod default/web: GET /api/v1/namespaces/default/pods/web: "
                 "ClientConnectorError: Cannot connect to host 127.0.0.1:1", id="unreachable"),
    pytest.param(lambda t, s: ["--kubeconfig", str(t / "missing"), "web"], 1,
                 f"kubeconfig {'{t}'}/missing does not exist", id="no-kubeconfig"),
    pytest.param(bad_configmap, 1, "ConfigMap vecsched/vecsched-config: data[config.yaml]: apiVersion: expected "
                 f"{API_VERSION}, got None", id="bad-configmap"),
    pytest.param(bad_config_file, 2, "{t}/c.yaml: profiles: expected a list, got int", id="bad-config-file"),
    pytest.param(kc("web", "--profile", "gpu"), 2, "--profile: no profile 'gpu' (have: vecsched)", id="no-profile"),
    pytest.param(kc("a/b/c"), 2, "POD: expected NAME or NAMESPACE/NAME, got 'a/b/c'", id="bad-pod-ref"),
    pytest.param(kc("-n", "x", "default/web"), 2, "POD default/web is in namespace default, but --namespace says x",
                 id="two-namespaces"),
    pytest.param(kc("web", "--config-map", "just-a-name"), 2,
                 "--config-map: expected NAMESPACE/NAME, got 'just-a-name'", id="bad-config-map"),
    pytest.param(kc("web", "--config-map", "a/b", "--config", "c.yaml"), 2,
                 "--config and --config-map are alternatives: give one", id="config-and-config-map"),
    pytest.param(kc("web", "--node-metrics", "/nonexistent.json"), 2,
                 "--node-metrics /nonexistent.json: cannot read: No such file or directory", id="bad-node-metrics"),
    pytest.param(lambda t, s: [], 2, "give the pod to explain: POD (NAME or NAMESPACE/NAME, read from the cluster), "
                 "or --snapshot FILE --pod FILE", id="no-pod"),
    pytest.param(lambda t, s: ["web", "--snapshot", "s.json", "--pod", "p.yaml"], 2,
                 "give either POD (web, read from the cluster) or --snapshot and --pod, not both", id="both-modes"),
    pytest.param(lambda t, s: ["--snapshot", "s.json"], 2,
                 "--snapshot and --pod go together: give both, or POD alone to read the cluster", id="half-snapshot"),
    pytest.param(lambda t, s: ["--snapshot", "s.json", "--pod", "p.yaml", "--kubeconfig", "k"], 2,
                 "--kubeconfig is for reading the cluster (POD), not a --snapshot", id="live-flag-on-snapshot"),
]


@pytest.mark.parametrize(("make_args", "exit_code", "says"), ERRORS)
async def test_errors_are_one_line(cluster: ApiServer, tmp_path: Path, make_args: Callable[[Path, ApiServer], list[str]],
                                   exit_code: int, says: str) -> None:
    cluster.create("pods", pod("web"), namespace="default")
    code, out, err = await explain(*make_args(tmp_path, cluster))
    assert (code, out) == (exit_code, ""), err
    assert err.count("\n") == 1 and err.startswith(f"vecsched explain: {says.replace('{t}', str(tmp_path))}"), err
