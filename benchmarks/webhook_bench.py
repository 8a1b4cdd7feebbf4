"""How fast ``vecsched webhook`` admits pods when many are created at once.

kube-apiserver calls the pod webhook inside every pod creation, and a
Deployment scaled up, a Job of many completions or a rollout creates pods in
bursts, each call waiting for the webhook. This benchmark starts the real
command (``python -m scheduler.cli webhook``, the shipped configuration's
profiles, certificates made here) against the embedded API server, whose
namespace is labelled for vecsched with pods grouped by their Job, and keeps
``--concurrency`` (200) ``/mutate-pods`` reviews in flight over HTTPS with
keep-alive connections -- as kube-apiserver's pooled clients do -- until
``--requests`` have been answered. Every answer is checked (allowed, with a
patch). Reported: requests/s over the whole run and latency percentiles
(p50, p90, p99, max), with the 1 s budget the webhook answers within, and the
server's own mean time per review (from its latency histogram). With 200 in
flight, latency is mostly queueing (Little's law: 200 / throughput); the
slowest answers are the first wave's, whose 200 reviews arrive at the same
instant, so the last of them waits for the 199 before it.

The webhook runs in its own process, so the client's work does not share its
event loop (the machine's cores are shared).

    python -m benchmarks.webhook_bench [--concurrency 200] [--requests 4000] [--json]

Needs the ``cryptography`` package (the ``test`` extra) to make certificates.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import socket
import ssl
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scheduler.apiserver import ApiServer, NodeShape, serve_apiserver

_DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "config.yaml"
_NAMESPACE = "team-a"
_BUDGET_MS = 1000.0
_HISTOGRAM = "vecsched_admission_request_duration_seconds"


def _certificates(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        sys.exit("webhook_bench: the cryptography package is needed to make certificates (pip install 'vecsched[test]')")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("bench-ca")).issuer_name(name("bench-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("vecsched-webhook")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    paths = d / "ca.crt", d / "tls.crt", d / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def _pod(i: int) -> dict[str, Any]:
    """A pod as a controller creates it and the API server has defaulted it (about 2 KiB of JSON);
    every other one belongs to a Job (so it also gets the pod-group label)."""
    owner = ({"apiVersion": "batch/v1", "kind": "Job", "name": f"train-{i % 50}", "uid": str(uuid.uuid4()),
              "controller": True, "blockOwnerDeletion": True} if i % 2 else
             {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8", "uid": str(uuid.uuid4()),
              "controller": True, "blockOwnerDeletion": True})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d9f8-", "namespace": _NAMESPACE,
                     "labels": {"app": "web", "pod-template-hash": "7d9f8"}, "ownerReferences": [owner]},
        "spec": {
            "containers": [{"name": "app", "image": "registry.example.com/web:1.4.2",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "env": [{"name": f"SETTING_{k}", "value": f"value-{k}"} for k in range(8)],
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                          "limits": {"memory": "512Mi"}},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                            "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]}}


def _review(i: int) -> bytes:
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": _NAMESPACE,
        "operation": "CREATE", "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": _pod(i), "oldObject": None, "dryRun": False}}).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(url: str, ctx: ssl.SSLContext, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if proc.returncode is not None:
                raise RuntimeError("the webhook exited before it was ready")
            try:
                async with http.get(f"{url}/readyz", ssl=ctx) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the webhook did not become ready within 30 s")


async def _handling(url: str, ctx: ssl.SSLContext) -> tuple[float, float]:
    """The webhook's own (sum of seconds, count) of /mutate-pods answers, from its /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", ssl=ctx) as r:
        text = await r.text()
    found = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.labels.get("webhook") == "mutate-pods" and s.name.startswith(_HISTOGRAM):
                found[s.name[len(_HISTOGRAM):]] = s.value
    return found.get("_sum", 0.0), found.get("_count", 0.0)


async def _load(url: str, ctx: ssl.SSLContext, bodies: list[bytes], concurrency: int) -> tuple[list[float], float]:
    """Keep ``concurrency`` reviews in flight until every body is answered; (latencies s, wall s)."""
    latencies: list[float] = []
    queue = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json"}) as http:
        async def worker() -> None:
            for i in queue:
                start = time.perf_counter()
                async with http.post(f"{url}/mutate-pods", data=bodies[i]) as r:
                    answer = await r.read()
                latencies.append(time.perf_counter() - start)
                resp = json.loads(answer).get("response") if r.status == 200 else None
                if not resp or resp.get("allowed") is not True or "patch" not in resp:
                    raise RuntimeError(f"unexpected answer {r.status}: {answer[:300]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


async def _bench(*, concurrency: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vecsched-webhook-bench-") as tmp:
        d = Path(tmp)
        ca, cert, key = _certificates(d)
        config = d / "config.yaml"
        config.write_text(yaml.safe_load(_DEPLOY_CONFIG.read_text())["data"]["config.yaml"])
        async with serve_apiserver(nodes=[NodeShape(count=4)]) as srv:
            srv.create("namespaces", {"metadata": {"name": _NAMESPACE, "labels": {
                "vecsched.io/scheduler-name": "vecsched", "vecsched.io/pod-group-from-owner": "true"}}})
            return await _against(srv, d, ca=ca, cert=cert, key=key, config=config, concurrency=concurrency,
                                  requests=requests)


async def _against(srv: ApiServer, d: Path, *, ca: Path, cert: Path, key: Path, config: Path, concurrency: int,
                   requests: int) -> dict[str, Any]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scheduler.cli", "webhook", "--port", str(port), "--bind-address", "127.0.0.1",
        "--tls-cert-file", str(cert), "--tls-private-key-file", str(key), "--config", str(config),
        "--kubeconfig", str(srv.kubeconfig_path), "--shutdown-delay-seconds", "0", "--log-level", "warning",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    url = f"https://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        await _wait_ready(url, ctx, proc)
        # warm-up: opens the pool's connections (TLS handshakes) and warms the server's code paths
        await _load(url, ctx, [_review(i) for i in range(concurrency)], concurrency)
        bodies = [_review(i) for i in range(requests)]
        before = await _handling(url, ctx)
        latencies, wall = await _load(url, ctx, bodies, concurrency)
        after = await _handling(url, ctx)
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await proc.communicate()
    ms = np.array(latencies) * 1000
    return {"benchmark": "webhook", "webhook": "mutate-pods", "concurrency": concurrency, "requests": len(ms),
            "body_kib": round(sum(map(len, bodies)) / len(bodies) / 1024, 1),
            "requests_per_s": round(len(ms) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1),
            # the server's own time per review (its latency histogram), the rest being queueing
            "server_mean_ms": round((after[0] - before[0]) / max(1.0, after[1] - before[1]) * 1000, 2),
            "budget_ms": _BUDGET_MS, "within_budget": bool(ms.max() < _BUDGET_MS), "cpus": os.cpu_count(),
            "server_errors": err.decode().strip().splitlines()[-5:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=200, help="reviews in flight at once (default 200)")
    ap.add_argument("--requests", type=int, default=4000, help="reviews answered in the measured run (default 4000)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    if a.concurrency < 1 or a.requests < 1:
        ap.error("--concurrency and --requests must be >= 1")
    doc = asyncio.run(_bench(concurrency=a.concurrency, requests=a.requests))
    if a.json:
        print(json.dumps(doc, indent=2))
        return
    print(f"/mutate-pods over HTTPS, {doc['concurrency']} in flight, {doc['requests']} reviews of "
          f"{doc['body_kib']} KiB ({doc['cpus']} CPUs shared by client, server and API server)")
    print(f"{'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{doc['requests_per_s']:>8} {doc['p50_ms']:>8} {doc['p90_ms']:>8} {doc['p99_ms']:>8} {doc['max_ms']:>8}")
    print(f"the server's own time per review: {doc['server_mean_ms']} ms on average (the rest is queueing)")
    print(f"slowest answer {'within' if doc['within_budget'] else 'OVER'} the {_BUDGET_MS:g} ms budget")


if __name__ == "__main__":
    main()
