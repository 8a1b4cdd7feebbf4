"""What the server does to an object between the request body and the store.

kube-apiserver decodes, defaults, validates and runs admission before it
writes: it fills ``uid``/``creationTimestamp``/``generateName`` names, puts
the request's namespace on the object, resets a new Pod's status to Pending,
keeps ``status`` out of main-resource updates (and ``spec`` out of ``/status``
updates), and rejects objects in namespaces that do not exist. Clients rely
on those effects, so they are reproduced here, apart from the store.
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import Any, Final

from . import errors
from .resources import ResourceType

__all__ = [
    "decode_object",
    "prepare_create",
    "prepare_update",
    "now_rfc3339",
    "new_uid",
    "default_pod",
    "bind",
]

_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Resources whose names must be RFC 1123 labels rather than subdomains.
_LABEL_NAMED: Final = frozenset({"namespaces", "services"})
# kube's generateName alphabet: no vowels (no accidental words), no confusable 0/1/3.
_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_rng = random.Random()


# A version 4 UUID's fixed bits, as ``uuid.UUID(version=4)`` sets them: the version nibble (0100) and
# the RFC 4122 variant (10) over 128 random bits.
_UUID_MASK: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_V4: Final = (0x4000 << 64) | (0x8000 << 48)
# UIDs drawn per os.urandom call: a system call per created object costs more than the rest of the
# UID on small VMs; 256 x 16 bytes is one 4 KiB read.
_UID_BATCH: Final = 256
_uid_pool: list[int] = []
os.register_at_fork(after_in_child=_uid_pool.clear)  # a forked child must not hand out its parent's UIDs


def new_uid() -> str:
    """A random UUID from ``os.urandom``, as ``str(uuid.uuid4())`` writes it (one for every created
    object: without a ``UUID`` object and a system call each)."""
    if not _uid_pool:
        raw = os.urandom(16 * _UID_BATCH)
        _uid_pool.extend(int.from_bytes(raw[i:i + 16], "big") for i in range(0, len(raw), 16))
    h = f"{_uid_pool.pop() & _UUID_MASK | _UUID_V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_stamp: list[Any] = [None, ""]  # (whole second, its text): objects created in the same second share it


def now_rfc3339() -> str:
    """Now, to the second, as Kubernetes writes ``creationTimestamp`` (``2006-01-02T15:04:05Z``)."""
    second = int(time.time())
    if second != _stamp[0]:
        _stamp[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))]
    text: str = _stamp[1]
    return text


def decode_object(rt: ResourceType, body: Any, *, expect_kind: str = "") -> dict[str, Any]:
    """Check that a decoded body is an object of the endpoint's kind."""
    want = expect_kind or rt.kind
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request is not a {want} object: expected a JSON object")
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    want_version = "v1" if want == "Binding" else rt.api_version
    if kind is not None and kind != want:
        raise errors.bad_request(
            f'{kind} in version "{api_version or want_version}" cannot be handled as a {want}: '
            f"the kind does not match the endpoint"
        )
    if api_version is not None and kind is not None and api_version != want_version and not (
        want == "Event" and api_version in ("v1", "events.k8s.io/v1")
    ):
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({want_version})"
        )
    meta = body.setdefault("metadata", {})
    for key in ("metadata", "spec", "status", "data", "target", "involvedObject", "regarding"):
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            raise errors.bad_request(
                f'{want} in version "{want_version}" cannot be handled as a {want}: json: cannot unmarshal '
                f"{_json_type(value)} into Go struct field {want}.{key} of type object")
    for key in ("name", "namespace", "generateName", "uid", "resourceVersion"):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            raise errors.bad_request(
                f'{want} in version "{want_version}" cannot be handled as a {want}: json: cannot unmarshal '
                f"{_json_type(value)} into Go struct field ObjectMeta.metadata.{key} of type string")
    for f in ("labels", "annotations"):
        v = meta.get(f)
        if v is not None and (not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values())):
            raise errors.invalid(kind=want, group=rt.group, name=str(meta.get("name", "")),
                                 causes=[(f"metadata.{f}", "Invalid value: must be a map of strings")])
    body["kind"] = want
    body["apiVersion"] = want_version
    return body


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "bool", int: "number", float: "number"}.get(type(value), "value")


def _validate_name(rt: ResourceType, name: str) -> None:
    pattern, what = (_LABEL, "RFC 1123 label") if rt.plural in _LABEL_NAMED else (_SUBDOMAIN, "RFC 1123 subdomain")
    limit = 63 if rt.plural in _LABEL_NAMED else 253
    if len(name) > limit or not pattern.match(name):
        if what == "RFC 1123 label":
            why = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                   "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                   "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
        else:
            why = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                   "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        raise errors.invalid(kind=rt.kind, group=rt.group, name=name,
                             causes=[("metadata.name", f'Invalid value: "{name}": {why}')])


def prepare_create(rt: ResourceType, obj: dict[str, Any], *, namespace: str) -> dict[str, Any]:
    """Fill server-owned metadata and defaults of a new object (after ``decode_object``)."""
    meta = obj["metadata"]
    name = meta.get("name") or ""
    if not name:
        gen = meta.get("generateName") or ""
        if not gen:
            raise errors.invalid(kind=rt.kind, group=rt.group, name="",
                                 causes=[("metadata.name", "Required value: name or generateName is required")])
        name = gen[:58] + "".join(_rng.choice(_ALPHABET) for _ in range(5))
        meta["name"] = name
    if not isinstance(name, str):
        raise errors.bad_request("metadata.name must be a string")
    _validate_name(rt, name)
    _place_namespace(rt, meta, namespace)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
        meta.pop(f, None)
    if rt.plural == "pods" and rt.group == "":
        default_pod(obj)
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
    elif rt.plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif rt.plural == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        obj.setdefault("status", {"loadBalancer": {}})
    elif rt.plural == "events" and rt.group == "events.k8s.io" and not meta.get("namespace"):
        raise errors.bad_request("the server could not find the requested resource")
    elif rt.plural in ("persistentvolumes", "persistentvolumeclaims") and rt.group == "":
        obj["status"] = {"phase": "Pending"}
    elif rt.status_split and (rt.custom or rt.group in ("apps", "batch", "policy")):
        obj["status"] = {}  # the status is the controllers' to write (PrepareForCreate clears it)
    return obj


def _place_namespace(rt: ResourceType, meta: dict[str, Any], namespace: str) -> None:
    if rt.namespaced:
        body_ns = meta.get("namespace") or ""
        if body_ns and namespace and body_ns != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace or body_ns
    else:
        meta.pop("namespace", None)


def prepare_update(
    rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any], namespace: str, name: str, subresource: str
) -> dict[str, Any]:
    """Merge a PUT body with what the server owns: identity, and status or spec per subresource."""
    meta = obj["metadata"]
    body_name = meta.get("name") or ""
    if body_name != name:
        raise errors.bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
    _place_namespace(rt, meta, namespace)
    old_meta = old["metadata"]
    if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
        raise errors.conflict(
            resource=rt.plural, group=rt.group, name=name,
            cause=f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta.get('uid')}",
        )
    for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName", "generation"):
        if f in old_meta:
            meta[f] = old_meta[f]
    meta.pop("managedFields", None)
    if rt.status_split:
        if subresource == "status":
            for k in list(obj):
                if k not in ("status", "metadata", "kind", "apiVersion"):
                    del obj[k]
            for k, v in old.items():
                if k not in ("status", "metadata", "kind", "apiVersion"):
                    obj[k] = v
        elif "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)
    if rt.plural == "pods" and rt.group == "":
        default_pod(obj)
    return obj


def default_pod(obj: dict[str, Any]) -> None:
    """The defaults kube-apiserver gives a Pod (the ones clients and schedulers read)."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise errors.bad_request("spec must be an object")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise errors.invalid(kind="Pod", name=obj["metadata"].get("name", ""),
                             causes=[("spec.containers", "Required value")])
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    tolerations = spec.setdefault("tolerations", [])
    present = {t.get("key") for t in tolerations if isinstance(t, dict)}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if key not in present:  # the DefaultTolerationSeconds admission plugin's additions
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    for group in ("containers", "initContainers"):
        for c in spec.get(group) or []:
            if not isinstance(c, dict) or not c.get("name"):
                raise errors.invalid(kind="Pod", name=obj["metadata"].get("name", ""),
                                     causes=[(f"spec.{group}[].name", "Required value")])
            c.setdefault("resources", {})
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            image = str(c.get("image", ""))
            c.setdefault("imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in image.split("/")[-1] else "IfNotPresent")


def _qos_class(obj: dict[str, Any]) -> str:
    containers = (obj["spec"].get("containers") or []) + (obj["spec"].get("initContainers") or [])
    requests_any, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def bind(pod: dict[str, Any], *, node: str, uid: str, annotations: dict[str, str] | None) -> dict[str, Any]:
    """Apply a Binding to a Pod, with the real server's refusals (409 when assigned or deleting)."""
    meta = pod["metadata"]
    name = meta["name"]
    if uid and uid != meta.get("uid"):
        raise errors.conflict(
            resource="pods", name=name,
            cause=(f"StorageError: invalid object, Code: 4, Key: /registry/pods/{meta.get('namespace')}/{name}, "
                   f"ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, "
                   f"UID in object meta: {meta.get('uid')}"),
        )
    if meta.get("deletionTimestamp"):
        raise errors.conflict(resource="pods/binding", name=name,
                              cause=f"pod {name} is being deleted, cannot be assigned to a host")
    spec = pod["spec"]
    if spec.get("nodeName"):
        raise errors.conflict(resource="pods/binding", name=name,
                              cause=f'pod {name} is already assigned to node "{spec["nodeName"]}"')
    spec["nodeName"] = node
    if annotations:
        meta.setdefault("annotations", {}).update(annotations)
    status = pod.setdefault("status", {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": now_rfc3339()})
    status["conditions"] = conds
    return pod
