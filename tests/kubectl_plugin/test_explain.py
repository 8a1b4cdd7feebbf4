"""``kubectl vecsched explain`` run by the real kubectl, which finds the plugin on PATH.

It is ``vecsched explain``'s live mode under kubectl's conventions, so the main check is that
both print the same thing for the same cluster; then kubectl's way of finding the cluster and
the namespace, and its one-line errors (exit 2 for usage and input files, 1 for the cluster).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from scheduler.apiserver import ApiServer, serve_apiserver, write_kubeconfig
from scheduler.apiserver.nodes import NodeShape
from tests.explain_support import run_explain as vecsched_explain
from tests.kubectl_plugin.support import down_kubeconfig, kubectl_vecsched

NO_CONFIGMAP = ("warning: no ConfigMap vecsched/vecsched-config in the cluster: explaining with vecsched's default "
                "profile (give --config FILE or --config-map NS/NAME)\n")


def pod(name: str, cpu: str, node: str = "") -> dict[str, object]:
    spec: dict[str, object] = {"schedulerName": "vecsched", "containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": cpu}}}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    # Three nodes of 4 CPUs; node-0000 has 1 taken. web (1 CPU) fits; big (6 CPUs) fits nowhere.
    async with serve_apiserver(nodes=NodeShape(count=3, cpu="4", memory="8Gi"), kubelet_delay=0.0, controllers=[],
                               tokens={"nobody": "nobody"}, rbac=[]) as srv:
        srv.create("namespaces", {"metadata": {"name": "team-a"}})
        srv.create("pods", pod("small", "1", "node-0000"), namespace="default")
        srv.create("pods", pod("web", "1"), namespace="default")
        srv.create("pods", pod("big", "6"), namespace="default")
        srv.create("pods", pod("api", "2"), namespace="team-a")
        yield srv


SAME = [
    pytest.param(["web"], id="table"),
    pytest.param(["default/web", "-o", "json"], id="json"),
    pytest.param(["big", "--what-if"], id="what-if-table"),
    pytest.param(["big", "-o", "json", "--what-if"], id="what-if-json"),
]


@pytest.mark.parametrize("args", SAME)
async def test_the_same_answer_as_vecsched_explain(apiserver: ApiServer, tmp_path: Path, args: list[str]) -> None:
    kc = ["--kubeconfig", str(apiserver.kubeconfig_path)]
    code, out, err = await kubectl_vecsched("explain", *kc, *args, home=tmp_path)
    assert (code, err) == (0, NO_CONFIGMAP), err
    assert (code, out, err) == await vecsched_explain(*kc, *args)
    if "json" in args:
        doc = json.loads(out)
        # big: 6 CPUs fit nowhere. web: node-0001 and node-0002 are empty and tie; seed 0's draw picks node-0002.
        assert doc["selected"] == (None if "big" in args else "node-0002")
        assert ("whatIf" in doc) == ("--what-if" in args)


async def test_the_namespace_and_the_cluster_come_from_the_kubeconfig(apiserver: ApiServer, tmp_path: Path) -> None:
    # $KUBECONFIG, whose context's namespace is team-a: "api" is team-a/api.
    kc = write_kubeconfig(path=tmp_path / "team-a", server=apiserver.url, token=apiserver.admin_token,
                          namespace="team-a")
    code, out, err = await kubectl_vecsched("explain", "api", "-o", "json", home=tmp_path,
                                            env={"KUBECONFIG": str(kc)})
    assert (code, err) == (0, NO_CONFIGMAP)
    assert json.loads(out)["pod"] == "team-a/api"


def forbidden(tmp_path: Path, srv: ApiServer) -> list[str]:
    return ["--kubeconfig", str(srv.kubeconfig_for(token="nobody", path=tmp_path / "nobody")), "web"]


def unreachable(tmp_path: Path, _: ApiServer) -> list[str]:
    return ["--kubeconfig", str(down_kubeconfig(tmp_path)), "web"]


def bad_config(tmp_path: Path, srv: ApiServer) -> list[str]:
    (tmp_path / "c.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n")
    return ["--kubeconfig", str(srv.kubeconfig_path), "web", "--config", str(tmp_path / "c.yaml")]


def kc(*more: str) -> Callable[[Path, ApiServer], list[str]]:
    return lambda t, s: ["--kubeconfig", str(s.kubeconfig_path), *more]


# (arguments after "explain", exit code, what the one line on stderr says)
ERRORS = [
    pytest.param(kc("nope"), 1, 'error: cannot get pod default/nope: 404 NotFound: pods "nope" not found',
                 id="not-found"),
    pytest.param(forbidden, 1, 'error: cannot get pod default/web: 403 Forbidden: pods "web" is forbidden',
                 id="forbidden"),
    pytest.param(unreachable, 1, "error: cannot get pod default/web: GET /api/v1/namespaces/default/pods/web: "
                 "ClientConnectorError", id="unreachable"),
    pytest.param(kc(), 2, "error: the following arguments are required: POD (see 'kubectl vecsched explain --help')",
                 id="no-pod"),
    pytest.param(kc("web", "-o", "yaml"), 2, "error: argument --output/-o: invalid choice: 'yaml'", id="bad-output"),
    pytest.param(bad_config, 2, "error: {t}/c.yaml: a ConfigMap (x) holding no one configuration (it has no data); "
                 "extract it with: kubectl get configmap x -o jsonpath='{.data.KEY}' > config.yaml", id="bad-config"),
    pytest.param(kc("web", "--config", "c.yaml", "--config-map", "a/b"), 2,
                 "error: --config and --config-map are alternatives: give one", id="config-and-config-map"),
]


@pytest.mark.parametrize(("make_args", "exit_code", "says"), ERRORS)
async def test_errors_are_one_line(apiserver: ApiServer, tmp_path: Path,
                                   make_args: Callable[[Path, ApiServer], list[str]], exit_code: int,
                                   says: str) -> None:
    code, out, err = await kubectl_vecsched("explain", *make_args(tmp_path, apiserver), home=tmp_path)
    assert (code, out) == (exit_code, ""), err
    assert err.count("\n") == 1 and err.startswith(says.replace("{t}", str(tmp_path))), err
