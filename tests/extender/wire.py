"""Request bodies as kube-scheduler sends them, and small helpers for the extender's tests.

kube-scheduler marshals ``extenderv1`` structs with Go's encoding/json: Go field
names as keys, nil pointers and maps as ``null``, and the full ``v1.Pod`` /
``v1.Node`` as the API server returned them (defaults filled in, status
included). The shapes below follow that: e.g. a nodeCacheCapable filter is
``{"Pod": {...}, "Nodes": null, "NodeNames": ["a", "b"]}``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp


def kube_pod(name: str, *, cpu: str = "500m", memory: str = "256Mi", namespace: str = "default",
             uid: str | None = None, node: str = "", **spec: Any) -> dict[str, Any]:
    """A pending Pod as the API server stores it after admission and defaulting."""
    body: dict[str, Any] = {
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid or f"uid-{name}", "resourceVersion": "1207",
            "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {"app": name.split("-")[0]},
        },
        "spec": {
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {
                "expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420}}],
            "containers": [{
                "name": "app", "image": "registry.k8s.io/pause:3.9",
                "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300},
            ],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    if node:
        body["spec"]["nodeName"] = node
        body["status"]["phase"] = "Running"
    body["spec"].update(spec)
    return body


def kube_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
              taints: list[dict[str, str]] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Ready Node as a kubelet registers it."""
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "95551679124",
             "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    node: dict[str, Any] = {
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "901",
                     "creationTimestamp": "2024-05-01T09:00:00Z",
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", **(labels or {})},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "capacity": dict(alloc), "allocatable": alloc,
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                            "lastTransitionTime": "2024-05-01T09:00:00Z", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.30.0", "containerRuntimeVersion": "containerd://1.7.15",
                         "operatingSystem": "linux", "architecture": "amd64"},
            "images": [{"names": ["registry.k8s.io/pause:3.9"], "sizeBytes": 321520}],
        },
    }
    if taints:
        node["spec"]["taints"] = taints
    return node


def node_list(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A v1.NodeList as encoding/json writes it (TypeMeta empty: kube-scheduler builds it in memory)."""
    return {"metadata": {}, "items": list(nodes)}


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    """POST a JSON body (or raw bytes); the status and the decoded JSON answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json(content_type=None)
