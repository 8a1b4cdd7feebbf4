"""What real kubectl sends as protobuf decodes to the object kubectl itself prints as JSON.

Each case runs kubectl twice against a capture server on loopback: once with
``--dry-run=client -o json`` (the JSON of the very typed object), once for
real, when the server records the protobuf body of the write and answers it.
``decode`` of the recorded body must equal the printed JSON. The capture
server answers discovery with the embedded API server's own documents
(``Registry``), plus the few groups that registry does not list yet, and the
object a case reads first (the CronJob of ``create job --from``). Hand-made
bytes appear only in the error cases. (kubectl 1.37 sends its evictions,
scale updates and DeleteOptions as JSON, so those have no kubectl case.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from scheduler.apiserver import protobuf, write_kubeconfig
from scheduler.apiserver.errors import ApiError
from scheduler.apiserver.protobuf import MEDIA_TYPE, SUPPORTED_KINDS, decode
from scheduler.apiserver.resources import VERSION_INFO, Registry, ResourceType, api_versions

from .kube import kubectl
from tests.http_support import serve

_RBAC = "rbac.authorization.k8s.io"
# Served by kube-apiserver; listed here only while the embedded server's registry lacks them.
_EXTRA_TYPES = (
    ResourceType(plural="roles", kind="Role", group=_RBAC, version="v1", namespaced=True, singular="role"),
    ResourceType(plural="rolebindings", kind="RoleBinding", group=_RBAC, version="v1", namespaced=True,
                 singular="rolebinding"),
    ResourceType(plural="clusterroles", kind="ClusterRole", group=_RBAC, version="v1", namespaced=False,
                 singular="clusterrole"),
    ResourceType(plural="clusterrolebindings", kind="ClusterRoleBinding", group=_RBAC, version="v1",
                 namespaced=False, singular="clusterrolebinding"),
    ResourceType(plural="ingresses", kind="Ingress", group="networking.k8s.io", version="v1", namespaced=True,
                 short_names=("ing",), singular="ingress"),
)

# A CronJob whose template uses most of what a PodSpec holds; `kubectl create job --from=cronjob/rich`
# reads it and writes a Job with that template, the one typed kubectl write that carries a whole PodSpec.
RICH_POD_SPEC: dict[str, Any] = {
    "schedulerName": "vecsched", "priorityClassName": "high", "priority": 0, "restartPolicy": "Never",
    "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 60, "nodeSelector": {"disk": "ssd"},
    "serviceAccountName": "runner", "hostNetwork": False, "dnsPolicy": "ClusterFirst", "enableServiceLinks": False,
    "automountServiceAccountToken": False, "imagePullSecrets": [{"name": "reg"}],
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app": "batch"}}, "topologyKey": "kubernetes.io/hostname"}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
            "topologyKey": "zone", "namespaces": ["default"]}]}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                   "labelSelector": {"matchLabels": {"app": "batch"}}, "minDomains": 2}],
    "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000, "supplementalGroups": [1, 2, 3],
                        "seccompProfile": {"type": "RuntimeDefault"}, "sysctls": [{"name": "a.b", "value": "1"}]},
    "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"],
                        "restartPolicy": "Always"}],
    "containers": [{
        "name": "main", "image": "nginx", "args": ["--x"], "workingDir": "/w", "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                  {"containerPort": 53, "protocol": "UDP", "hostPort": 5353, "hostIP": "0.0.0.0"}],
        "env": [{"name": "A", "value": "1"}, {"name": "EMPTY"},
                {"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}}],
        "envFrom": [{"prefix": "CM_", "configMapRef": {"name": "cm"}}],
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi", "nvidia.com/gpu": "1"},
                      "limits": {"cpu": "1500m", "memory": "1Gi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "cfg", "mountPath": "/cfg", "readOnly": True}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                          "initialDelaySeconds": 5, "periodSeconds": 10},
        "readinessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
        "startupProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 0},
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "stdin": True, "tty": True}],
    "volumes": [
        {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420, "items": [{"key": "a", "path": "a.txt"}]}},
        {"name": "sec", "secret": {"secretName": "s", "optional": False}},
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "hp", "hostPath": {"path": "/tmp", "type": "Directory"}},
        {"name": "proj", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}}],
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a", "b"]}],
    "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "2"}]},
    "readinessGates": [{"conditionType": "example.com/ready"}], "schedulingGates": [{"name": "wait"}],
    "overhead": {"cpu": "10m"}, "os": {"name": "linux"},
}
# The job template's pod metadata is copied whole, so a full ObjectMeta (times, managedFields) travels too.
RICH_META: dict[str, Any] = {
    "name": "tpl", "generateName": "rich-", "namespace": "default", "uid": "6f1c1d2e-0000-4000-8000-000000000002",
    "resourceVersion": "42", "generation": 3, "creationTimestamp": "2024-01-02T03:04:05Z",
    "deletionTimestamp": "2099-12-31T23:59:59Z", "deletionGracePeriodSeconds": 0,
    "labels": {"app": "batch", "empty": ""}, "annotations": {"a": "1"}, "finalizers": ["example.com/keep"],
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1",
                         "controller": True, "blockOwnerDeletion": False}],
    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                       "time": "1970-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
}
RICH_CRONJOB: dict[str, Any] = {
    "apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": "rich", "namespace": "default", "uid": "6f1c1d2e-0000-4000-8000-000000000001",
                 "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "batch"}},
    "spec": {"schedule": "0 * * * *", "jobTemplate": {
        "metadata": {"labels": {"app": "batch", "tier": "jobs"}, "annotations": {"note": "from the template"}},
        "spec": {"parallelism": 0, "completions": 3, "backoffLimit": 2, "ttlSecondsAfterFinished": 100,
                 "completionMode": "Indexed", "suspend": False, "podFailurePolicy": {"rules": [
                     {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                     {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42, -1]}}]},
                 "template": {"metadata": RICH_META, "spec": RICH_POD_SPEC}}}},
}

CASES: list[tuple[str, list[str]]] = [
    ("namespace", ["create", "namespace", "pb-ns"]),
    ("configmap", ["create", "configmap", "pb-cm", "--from-literal=a=1", "--from-literal=empty="]),
    ("secret", ["create", "secret", "generic", "pb-secret", "--from-literal=user=admin", "--from-literal=pw=s3 cr=t"]),
    ("secret-docker", ["create", "secret", "docker-registry", "pb-reg", "--docker-server=r.example.com",
                       "--docker-username=u", "--docker-password=p"]),
    ("serviceaccount", ["create", "serviceaccount", "pb-sa"]),
    ("deployment", ["create", "deployment", "pb-deploy", "--image=registry.k8s.io/pause:3.9", "--replicas=0",
                    "--port=8080"]),
    ("deployment-two-images", ["create", "deployment", "pb-two", "--image=nginx", "--image=busybox", "--replicas=3"]),
    ("job", ["create", "job", "pb-job", "--image=busybox", "--", "echo", "hi"]),
    ("cronjob", ["create", "cronjob", "pb-cron", "--image=busybox", "--schedule=*/5 * * * *", "--restart=OnFailure",
                 "--", "date"]),
    ("job-from-cronjob", ["create", "job", "pb-manual", "--from=cronjob/rich"]),
    ("priorityclass", ["create", "priorityclass", "pb-pc", "--value=1000", "--global-default=true",
                       "--description=batch work", "--preemption-policy=Never"]),
    ("pdb-min-available", ["create", "poddisruptionbudget", "pb-pdb", "--selector=app=web", "--min-available=50%"]),
    ("pdb-max-unavailable", ["create", "poddisruptionbudget", "pb-pdb2", "--selector=app in (web,api)",
                             "--max-unavailable=1"]),
    ("quota", ["create", "quota", "pb-quota", "--hard=cpu=2,memory=1Gi,pods=10,requests.nvidia.com/gpu=0",
               "--scopes=NotTerminating"]),
    ("service-clusterip", ["create", "service", "clusterip", "pb-svc", "--tcp=80:8080", "--tcp=443:https"]),
    ("service-headless", ["create", "service", "clusterip", "pb-headless", "--clusterip=None"]),
    ("service-nodeport", ["create", "service", "nodeport", "pb-np", "--tcp=5678:8080", "--node-port=30080"]),
    ("service-externalname", ["create", "service", "externalname", "pb-ext", "--external-name=example.com"]),
    ("role", ["create", "role", "pb-role", "--verb=get,list,watch", "--resource=pods,deployments.apps",
              "--resource-name=a"]),
    ("rolebinding", ["create", "rolebinding", "pb-rb", "--role=pb-role", "--user=alice",
                     "--serviceaccount=default:pb-sa", "--group=devs"]),
    ("clusterrole", ["create", "clusterrole", "pb-cr", "--verb=get", "--resource=nodes",
                     "--non-resource-url=/healthz"]),
    ("clusterrole-aggregated", ["create", "clusterrole", "pb-agg", "--aggregation-rule=example.com/aggregate=true"]),
    ("clusterrolebinding", ["create", "clusterrolebinding", "pb-crb", "--clusterrole=pb-cr", "--user=bob"]),
    ("ingress", ["create", "ingress", "pb-ing", "--class=nginx", "--rule=foo.com/bar=svc1:8080",
                 "--rule=bar.com/*=svc2:http,tls=my-cert", "--default-backend=defsvc:80",
                 "--annotation=example.com/x=y"]),
]


@dataclass
class _Capture:
    """A loopback server that answers discovery and fixed reads, and records every write."""

    registry: Registry = field(default_factory=Registry)
    objects: dict[str, Any] = field(default_factory=dict)
    writes: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    """(method, path, content type, body) of each POST, PUT and PATCH."""
    reply: dict[str, Any] = field(default_factory=dict)
    """The object a write is answered with (kubectl prints its name)."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path.rstrip("/")
        if request.method in ("POST", "PUT", "PATCH"):
            self.writes.append((request.method, path, request.content_type, body))
            return web.json_response(self.reply, status=201 if request.method == "POST" else 200)
        doc = self.objects.get(path) or self._discovery(path)
        if doc is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                      "reason": "NotFound", "message": f"{path} not found"}, status=404)
        return web.json_response(doc)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        parts = path.strip("/").split("/")
        if path == "/version":
            return dict(VERSION_INFO)
        if path == "/api":
            return api_versions(server_address="127.0.0.1")
        if path == "/apis":
            return self.registry.api_group_list()
        if parts[0] == "api" and len(parts) == 2:
            return self.registry.resource_list(group="", version=parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            return self.registry.resource_list(group=parts[1], version=parts[2])
        return None


@pytest.fixture
async def capture(tmp_path: Path) -> AsyncIterator[tuple[_Capture, Path]]:
    cap = _Capture()
    for rt in _EXTRA_TYPES:
        if cap.registry.by_path(rt.group, rt.version, rt.plural) is None:
            cap.registry.add(rt)
    async with serve(("*", "/{tail:.*}", cap.handle)) as url:
        yield cap, write_kubeconfig(path=tmp_path / "kubeconfig", server=url, token=None)


def _normalise(value: Any) -> Any:
    """Drop JSON nulls: Go prints a nil slice, map or zero Time of a field without omitempty as null
    (``rules: null`` of an aggregated ClusterRole); protobuf has no nil, the field is just absent."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


async def _printed_and_sent(cap: _Capture, kubeconfig: Path, args: list[str]) -> tuple[dict[str, Any], bytes]:
    """kubectl's ``--dry-run=client -o json`` output, and the protobuf body the same command sends."""
    cut = args.index("--") if "--" in args else len(args)
    code, out, err = await kubectl(kubeconfig, *args[:cut], "--dry-run=client", "-o", "json", *args[cut:])
    assert code == 0, err
    assert cap.writes == [], "a client-side dry run wrote to the server"
    printed = json.loads(out)
    cap.reply = printed
    code, out, err = await kubectl(kubeconfig, *args)
    assert code == 0, err
    assert len(cap.writes) == 1, cap.writes
    method, _, content_type, body = cap.writes[0]
    assert (method, content_type) == ("POST", MEDIA_TYPE)
    return printed, body


@pytest.mark.parametrize("args", [c[1] for c in CASES], ids=[c[0] for c in CASES])
async def test_kubectl_create_bodies_decode_to_kubectl_json(capture: tuple[_Capture, Path], args: list[str]) -> None:
    cap, kubeconfig = capture
    cap.objects["/apis/batch/v1/namespaces/default/cronjobs/rich"] = RICH_CRONJOB
    printed, body = await _printed_and_sent(cap, kubeconfig, args)
    assert (printed["apiVersion"], printed["kind"]) in SUPPORTED_KINDS
    assert decode(body) == _normalise(printed)



# ---- malformed and unsupported bodies (the only hand-made bytes) -----------------------------------


def _key(num: int, wire: int) -> bytes:
    return _varint((num << 3) | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _len(num: int, payload: bytes) -> bytes:
    return _key(num, 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes, *, encoding: str = "") -> bytes:
    type_meta = _len(1, api_version.encode()) + _len(2, kind.encode())
    return b"k8s\x00" + _len(1, type_meta) + _len(2, raw) + _len(3, encoding.encode()) + _len(4, b"")


def _refused(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as info:
        decode(body)
    return info.value


@pytest.mark.parametrize(("body", "code", "words"), [
    (b'{"apiVersion":"v1","kind":"Namespace"}', 400, ["magic", "k8s\\x00"]),
    (b"k8s\x00" + _key(1, 2) + b"\x80", 400, ["truncated varint", "field 1 of Unknown"]),
    (b"k8s\x00" + _key(2, 2) + b"\x05ab", 400, ["length 5 past the end", "field 2 of Unknown"]),
    (b"k8s\x00" + _key(1, 0) + b"\xff" * 11, 400, ["varint longer than 10 bytes", "field 1 of Unknown"]),
    (b"k8s\x00" + _key(1, 3), 400, ["unsupported wire type 3", "field 1 of Unknown"]),
    (_envelope("v1", "Namespace", _len(1, _key(99, 0) + b"\x07")), 400,
     ["unknown field with a non-zero value", "field 99 of ObjectMeta", "at metadata"]),
    (_envelope("apps/v1", "Deployment", _len(2, _len(3, _len(2, _len(2, _key(42, 2) + b"\x01x"))))), 400,
     ["field 42 of Container", "at spec.template.spec.containers[0]"]),
    (_envelope("v1", "Namespace", _key(1, 0) + b"\x01"), 400,
     ["wire type 0 where 2 is expected", "field 1 of Namespace"]),
    (_envelope("v1", "Namespace", _len(1, _len(8, _key(1, 0) + _varint(1 << 62)))), 400,
     ["time out of range", "metadata.creationTimestamp"]),
    (_envelope("v1", "Node", b""), 415,
     ["Node (v1)", "application/json and application/yaml are accepted for every kind", "Namespace (v1)"]),
    (_envelope("example.com/v1", "Widget", b""), 415, ["Widget (example.com/v1)", MEDIA_TYPE]),
    (_envelope("v1", "Namespace", b"", encoding="gzip"), 415, ["content encoding 'gzip'"]),
], ids=["magic", "truncated-varint", "past-the-end", "long-varint", "group-wire-type", "unknown-field",
        "unknown-nested-field", "wrong-wire-type", "time-range", "unsupported-kind", "custom-kind", "encoding"])
def test_bad_bodies_are_refused_with_the_problem_named(body: bytes, code: int, words: list[str]) -> None:
    err = _refused(body)
    assert (err.code, err.reason) == (code, "BadRequest" if code == 400 else "UnsupportedMediaType")
    for word in words:
        assert word in err.message, err.message


def test_unknown_fields_with_zero_values_are_skipped() -> None:
    """A field newer than the tables, sent with its zero value (as Go sends every value field), is no data."""
    meta = _len(1, b"zero") + _key(90, 0) + b"\x00" + _len(91, b"") + _key(92, 1) + b"\x00" * 8
    assert decode(_envelope("v1", "Namespace", _len(1, meta))) == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "zero"}}


def test_nesting_deeper_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Deployment > DeploymentSpec > PodTemplateSpec > PodSpec > Container: five messages deep.
    body = _envelope("apps/v1", "Deployment", _len(2, _len(3, _len(2, _len(2, _len(1, b"c"))))))
    assert decode(body)["spec"] == {"template": {"spec": {"containers": [{"name": "c"}]}}}
    monkeypatch.setattr(protobuf, "_MAX_DEPTH", 4)
    err = _refused(body)
    assert err.code == 400 and "nested deeper than 4" in err.message and "Container" in err.message, err.message
