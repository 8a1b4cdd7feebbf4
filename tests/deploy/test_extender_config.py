"""deploy/extender/ hangs together: kube-scheduler's extenders stanza points at the extender's
Service over HTTPS, at routes and a profile the extender serves, with a timeout above its
budget and without bindVerb; the extender's own config loads; and the Deployment's own
arguments, run with docs/extender.md's openssl certificates in place of the mounted Secret,
answer a call built from the stanza's tlsConfig -- and refuse one without kube-scheduler's
client certificate."""

from __future__ import annotations

import argparse
import ssl
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from scheduler.config import load_config, parse_config
from scheduler.extender import configure, serve_extender, settings_from
from scheduler.extender.server import VERBS
from tests.deploy.support import DEPLOY
from tests.extender.wire import kube_node, kube_pod, node_list

EXT = DEPLOY / "extender"
STANZA = yaml.safe_load((EXT / "kube-scheduler-config.yaml").read_text())["extenders"]
DEPLOYMENT = next(d for d in yaml.safe_load_all((EXT / "deployment.yaml").read_text()) if d["kind"] == "Deployment")
POD_SPEC = DEPLOYMENT["spec"]["template"]["spec"]
CONTAINER = POD_SPEC["containers"][0]
SERVICE = yaml.safe_load((EXT / "service.yaml").read_text())
DOC = (DEPLOY.parent / "docs" / "extender.md").read_text()


def _arg(name: str) -> str:
    return str(next(a.split("=", 1)[1] for a in CONTAINER["args"] if a.startswith(f"--{name}=")))


def test_stanza_points_at_the_service_over_tls() -> None:
    assert len(STANZA) == 1
    ext = STANZA[0]
    url = urlsplit(ext["urlPrefix"])
    meta = SERVICE["metadata"]
    assert url.scheme == "https" and ext["enableHTTPS"] is True
    assert url.hostname == ext["tlsConfig"]["serverName"] == f"{meta['name']}.{meta['namespace']}.svc"
    assert url.port == SERVICE["spec"]["ports"][0]["port"] == int(_arg("port"))
    assert set(ext["tlsConfig"]) == {"serverName", "caFile", "certFile", "keyFile"}
    profiles = {p.scheduler_name for p in load_config(EXT / "vecsched-config.yaml").profiles}
    assert url.path.strip("/") in profiles
    assert "bindVerb" not in ext  # the extender does not serve /bind without --enable-bind
    for key in ("filterVerb", "prioritizeVerb", "preemptVerb"):
        assert ext[key] in VERBS
    assert 1 <= ext["weight"]
    assert ext["nodeCacheCapable"] is True and ext["ignorable"] is True
    assert float(ext["httpTimeout"].rstrip("s")) > float(_arg("request-budget"))
    assert set(ext) <= {"urlPrefix", "filterVerb", "prioritizeVerb", "preemptVerb", "weight",
                        "enableHTTPS", "tlsConfig", "httpTimeout", "nodeCacheCapable", "managedResources",
                        "ignorable"}


def test_deployment_serves_tls_with_client_certificates_from_its_secret() -> None:
    assert {a.split("=", 1)[0] for a in CONTAINER["args"]} >= {"--tls-cert-file", "--tls-private-key-file",
                                                               "--client-ca-file"}
    assert "--enable-bind" not in CONTAINER["args"]
    mount = next(m for m in CONTAINER["volumeMounts"] if m["name"] == "tls")
    secret = next(v for v in POD_SPEC["volumes"] if v["name"] == "tls")["secret"]["secretName"]
    assert secret == "vecsched-extender-tls"
    for flag, key in (("tls-cert-file", "tls.crt"), ("tls-private-key-file", "tls.key"), ("client-ca-file", "ca.crt")):
        assert _arg(flag) == f"{mount['mountPath']}/{key}"
    for probe in ("livenessProbe", "readinessProbe"):
        assert CONTAINER[probe]["httpGet"]["scheme"] == "HTTPS"
    # the cert-manager Certificate writes that Secret, for the names kube-scheduler uses
    certs = {d["metadata"]["name"]: d for d in yaml.safe_load_all((EXT / "certificate.yaml").read_text())
             if d["kind"] == "Certificate"}
    server = certs["vecsched-extender"]["spec"]
    assert server["secretName"] == secret and STANZA[0]["tlsConfig"]["serverName"] in server["dnsNames"]
    assert "client auth" in certs["vecsched-extender-client"]["spec"]["usages"]
    assert (certs["vecsched-extender"]["spec"]["issuerRef"] == certs["vecsched-extender-client"]["spec"]["issuerRef"])


def test_bind_rbac_is_separate() -> None:
    kustomization = yaml.safe_load((EXT / "kustomization.yaml").read_text())
    assert "rbac-bind.yaml" not in kustomization["resources"]
    assert "certificate.yaml" not in kustomization["resources"]  # applies without cert-manager


def test_configs_load_without_warnings() -> None:
    assert load_config(EXT / "vecsched-config.yaml").warnings == ()
    cm = yaml.safe_load((DEPLOY / "config.yaml").read_text())
    assert parse_config(yaml.safe_load(cm["data"]["config.yaml"])).warnings == ()


@pytest.fixture(scope="module")
def documented_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/extender.md's openssl commands, run as written."""
    (block,) = (b.split("\n", 1)[1] for b in DOC.split("```")[1::2] if b.startswith("sh\n") and "openssl req" in b)
    d = tmp_path_factory.mktemp("pki")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=d, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return d


async def test_a_call_built_from_the_stanza_is_answered(documented_pki: Path) -> None:
    ext = STANZA[0]
    tls = ext["tlsConfig"]
    # The container's args, the Secret's files (tls.crt, tls.key, ca.crt) in place of /tls, port 0.
    args = [a.replace("/tls/", f"{documented_pki}/") for a in CONTAINER["args"][1:]
            if not a.startswith(("--config=", "--port="))]
    parser = argparse.ArgumentParser()
    configure(parser)
    flags = parser.parse_args([*args, "--port=0", "--standalone"])
    path = urlsplit(ext["urlPrefix"]).path.rstrip("/")
    # kube-scheduler's side: its caFile checks the server for serverName; certFile/keyFile are
    # the client certificate (client.crt/client.key of the documented files).
    kube_scheduler = ssl.create_default_context(cafile=str(documented_pki / Path(tls["caFile"]).name))
    kube_scheduler.load_cert_chain(str(documented_pki / Path(tls["certFile"]).name),
                                   str(documented_pki / Path(tls["keyFile"]).name))
    anonymous = ssl.create_default_context(cafile=str(documented_pki / "ca.crt"))
    async with serve_extender(config=load_config(EXT / "vecsched-config.yaml"), settings=settings_from(flags)) as srv, \
            aiohttp.ClientSession() as http:
        assert srv.url.startswith("https://") and srv.address.startswith("0.0.0.0:")
        body = {"Pod": kube_pod("p", cpu="1"), "Nodes": node_list(kube_node("a", cpu="2"), kube_node("b", cpu="8"))}

        async def call(verb: str, ctx: ssl.SSLContext) -> tuple[int, Any]:
            # As kube-scheduler's send(): strings.TrimRight(urlPrefix, "/") + "/" + verb.
            async with http.post(f"{srv.url}{path}/{verb}", json=body, ssl=ctx,
                                 server_hostname=tls["serverName"]) as r:
                return r.status, await r.json()

        status, result = await call(ext["filterVerb"], kube_scheduler)
        assert status == 200 and result["Error"] == ""
        status, scores = await call(ext["prioritizeVerb"], kube_scheduler)
        assert status == 200
        assert scores[0]["Score"] > scores[1]["Score"]  # binpack: the fuller node wins
        status, result = await call(ext["filterVerb"], anonymous)
        assert status == 401 and "client certificate" in result["Error"]
        status, result = await call("bind", kube_scheduler)
        assert status == 404  # not enabled
        async with http.get(f"{srv.url}/readyz", ssl=anonymous, server_hostname=tls["serverName"]) as r:
            assert r.status == 200  # probes need no client certificate
