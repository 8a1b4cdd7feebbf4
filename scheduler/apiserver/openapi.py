"""A minimal OpenAPI v3 description, enough for kubectl's feature probes.

``kubectl create``/``apply`` validate by default; before sending they read
``/openapi/v3`` and the group-version document to see whether the PATCH
operation of the kind accepts ``fieldValidation`` (server-side validation).
Without that document kubectl refuses to send anything. We publish only the
paths and parameters those probes read, not full schemas: ``kubectl apply``
then computes strategic merge patches from its compiled-in types, as it does
for any server whose schemas it cannot use.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

__all__ = ["openapi_v3_index", "openapi_v3_group"]

_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _op(rt: ResourceType, action: str) -> dict[str, Any]:
    return {
        "operationId": f"{action}{rt.kind}",
        "parameters": [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for n in _QUERY],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }


def openapi_v3_group(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The group-version document: one path per resource with its write operations."""
    items = [r for r in registry if r.group == group and r.version == version]
    if not items:
        return None
    paths: dict[str, Any] = {}
    for rt in items:
        base = f"/{_gv_path(group, version)}" + ("/namespaces/{namespace}" if rt.namespaced else "")
        paths[f"{base}/{rt.plural}"] = {"post": _op(rt, "post"), "get": _op(rt, "list")}
        paths[f"{base}/{rt.plural}/{{name}}"] = {"get": _op(rt, "get"), "put": _op(rt, "put"),
                                                 "patch": _op(rt, "patch"), "delete": _op(rt, "delete")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.30.0-vecsched"}, "paths": paths,
            "components": {"schemas": {}}}


def openapi_v3_index(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document lives."""
    paths: dict[str, Any] = {}
    for gv in dict.fromkeys((r.group, r.version) for r in registry):
        doc = openapi_v3_group(registry, *gv)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        path = _gv_path(*gv)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
