"""Helpers for the webhook's tests: certificates made here, AdmissionReview bodies as
kube-apiserver builds them, posting a review over HTTPS and applying the returned patch."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scheduler.apiserver import ApiServer
from scheduler.apiserver.patch import json_patch
from scheduler.kube.client import ClientSettings
from scheduler.kube.informer import Backoff
from scheduler.webhook import PodRouting, WebhookServer, WebhookSettings, serve_webhook

# ---- certificates ----------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Pki:
    """A CA and the webhook's serving certificate (SAN 127.0.0.1) signed by it."""

    dir: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    ca_file: Path
    cert_file: Path
    key_file: Path
    serial: int

    def issue(self, *, cert_file: Path | None = None, key_file: Path | None = None) -> int:
        """Write a fresh serving certificate and key (to the serving files by default); its serial."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name("vecsched-webhook")).issuer_name(self.ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        (cert_file or self.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (key_file or self.key_file).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        if cert_file is None:
            self.serial = cert.serial_number
        return int(cert.serial_number)

    def client_context(self) -> ssl.SSLContext:
        """What kube-apiserver does with a webhook's caBundle: trust this CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_pki(d: Path) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(_name("vecsched-webhook-ca")).issuer_name(_name("vecsched-webhook-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_file = d / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki = Pki(d, ca_key, ca, ca_file, d / "tls.crt", d / "tls.key", 0)
    pki.issue()
    return pki


# ---- the server ------------------------------------------------------------------------------

PROFILES = frozenset({"vecsched", "vecsched-gpu"})
ROUTING = PodRouting(profiles=PROFILES, default_profile="vecsched")


def settings(pki: Pki, srv: ApiServer, **kw: Any) -> WebhookSettings:
    base: dict[str, Any] = dict(tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file),
                                bind_address="127.0.0.1", port=0,
                                client=ClientSettings(kubeconfig=str(srv.kubeconfig_path)),
                                informer_backoff=Backoff(initial=0.02, cap=0.2, jitter=0.5))
    base.update(kw)
    return WebhookSettings(**base)


@asynccontextmanager
async def webhook(pki: Pki, srv: ApiServer, *, routing: PodRouting = ROUTING, **kw: Any) -> AsyncIterator[WebhookServer]:
    """A webhook on a free loopback port, its informers synced with ``srv``."""
    async with serve_webhook(routing=routing, settings=settings(pki, srv, **kw)) as wh:
        assert wh.namespaces is not None and wh.nodes is not None
        await wh.namespaces.synced.wait()
        await wh.nodes.synced.wait()
        yield wh


def label_namespace(srv: ApiServer, name: str, labels: dict[str, str]) -> None:
    """Replace a namespace's labels (a watch event, as ``kubectl label`` makes)."""
    def relabel(ns: dict[str, Any]) -> dict[str, Any]:
        ns["metadata"]["labels"] = dict(labels)
        return ns
    srv.store.update(srv.resource("namespaces"), "", name, relabel)


# ---- reviews ---------------------------------------------------------------------------------

_GVR = {"Pod": ("", "v1", "pods"), "PodGroup": ("scheduling.x-k8s.io", "v1alpha1", "podgroups"),
        "ConfigMap": ("", "v1", "configmaps")}


def review(obj: dict[str, Any] | None, *, kind: str = "Pod", operation: str = "CREATE", namespace: str = "default",
           name: str | None = None, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """An AdmissionReview request as kube-apiserver sends it (admission.k8s.io/v1)."""
    group, version, resource = _GVR[kind]
    req: dict[str, Any] = {
        "uid": str(uuid.uuid4()), "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name if name is not None else ((obj or {}).get("metadata") or {}).get("name", ""),
        "namespace": namespace, "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def pod(name: str = "p", *, namespace: str = "default", scheduler: str | None = "default-scheduler",
        labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
        owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Pod as the API server has it at mutating admission (defaulted: schedulerName default-scheduler)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    if owners is not None:
        meta["ownerReferences"] = owners
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    if scheduler is not None:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def job_owner(name: str, *, controller: bool = True, kind: str = "Job", api_version: str = "batch/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": str(uuid.uuid4()),
            "controller": controller, "blockOwnerDeletion": True}


async def post(http: aiohttp.ClientSession, url: str, body: Any, *, ctx: ssl.SSLContext) -> tuple[int, Any]:
    """POST ``body`` (JSON, or raw bytes); the status and the decoded answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}, ssl=ctx) as r:
        return r.status, await r.json(content_type=None)


def response_of(status: int, answer: Any, sent: dict[str, Any]) -> dict[str, Any]:
    """The review's response, checked for the envelope kube-apiserver requires."""
    assert status == 200, answer
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    resp: dict[str, Any] = answer["response"]
    assert resp["uid"] == sent["request"]["uid"]
    return resp


def patched(obj: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
    """``obj`` after the response's patch, applied by the control plane's RFC 6902 implementation."""
    if "patch" not in resp:
        return obj
    assert resp["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(resp["patch"]))
    result: dict[str, Any] = json_patch(obj, ops)
    return result
