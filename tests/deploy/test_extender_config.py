"""deploy/extender/ hangs together: kube-scheduler's extenders stanza points at the extender's
Service and at routes and a profile the extender serves, with a timeout above its budget;
the extender's own config loads; and a kube-scheduler-style call built from the stanza works."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
import yaml

from scheduler.config import load_config, parse_config
from scheduler.extender import ExtenderSettings, serve_extender
from scheduler.extender.server import VERBS
from tests.deploy.support import DEPLOY
from tests.extender.wire import kube_node, kube_pod, node_list, post

EXT = DEPLOY / "extender"
STANZA = yaml.safe_load((EXT / "kube-scheduler-config.yaml").read_text())["extenders"]
DEPLOYMENT = next(d for d in yaml.safe_load_all((EXT / "deployment.yaml").read_text()) if d["kind"] == "Deployment")
SERVICE = yaml.safe_load((EXT / "service.yaml").read_text())


def _arg(name: str) -> str:
    args = DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["args"]
    return str(next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")))


def test_stanza_points_at_the_service_routes_and_a_profile() -> None:
    assert len(STANZA) == 1
    ext = STANZA[0]
    url = urlsplit(ext["urlPrefix"])
    meta = SERVICE["metadata"]
    assert url.hostname == f"{meta['name']}.{meta['namespace']}.svc"
    assert url.port == SERVICE["spec"]["ports"][0]["port"] == int(_arg("port"))
    profiles = {p.scheduler_name for p in load_config(EXT / "vecsched-config.yaml").profiles}
    assert url.path.strip("/") in profiles
    for key in ("filterVerb", "prioritizeVerb", "preemptVerb", "bindVerb"):
        if key in ext:
            assert ext[key] in VERBS
    assert 1 <= ext["weight"]
    assert ext["nodeCacheCapable"] is True and ext["ignorable"] is True
    assert float(ext["httpTimeout"].rstrip("s")) > float(_arg("request-budget"))
    assert set(ext) <= {"urlPrefix", "filterVerb", "prioritizeVerb", "preemptVerb", "bindVerb", "weight",
                        "enableHTTPS", "tlsConfig", "httpTimeout", "nodeCacheCapable", "managedResources",
                        "ignorable"}


def test_extender_rbac_covers_its_informers() -> None:
    role = next(d for d in yaml.safe_load_all((EXT / "rbac.yaml").read_text()) if d["kind"] == "ClusterRole")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {(r, v) for r in ("nodes", "pods", "namespaces") for v in ("list", "watch")} <= granted
    assert ("pods/binding", "create") in granted
    assert DEPLOYMENT["spec"]["template"]["spec"]["serviceAccountName"] == "vecsched-extender"


def test_configs_load_without_warnings() -> None:
    assert load_config(EXT / "vecsched-config.yaml").warnings == ()
    cm = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    assert parse_config(yaml.safe_load(cm["data"]["config.yaml"])).warnings == ()


async def test_a_call_built_from_the_stanza_is_answered() -> None:
    ext = STANZA[0]
    path = urlsplit(ext["urlPrefix"]).path.rstrip("/")
    async with serve_extender(config=load_config(EXT / "vecsched-config.yaml"),
                              settings=ExtenderSettings(bind_address="127.0.0.1", port=0)) as srv, \
            aiohttp.ClientSession() as http:
        # As kube-scheduler's send(): strings.TrimRight(urlPrefix, "/") + "/" + verb.
        args = {"Pod": kube_pod("p", cpu="1"), "Nodes": node_list(kube_node("a", cpu="2"), kube_node("b", cpu="8"))}
        status, result = await post(http, f"{srv.url}{path}/{ext['filterVerb']}", args)
        assert status == 200 and result["Error"] == ""
        status, scores = await post(http, f"{srv.url}{path}/{ext['prioritizeVerb']}", args)
        assert status == 200
        # binpack: the fuller node wins.
        assert scores[0]["Score"] > scores[1]["Score"]
