"""PATCH bodies: JSON merge patch, strategic merge patch and JSON patch.

Clients change objects without a full read-modify-write: the scheduler merges
a ``PodScheduled`` condition into ``status.conditions`` (strategic merge, keyed
by ``type``), ``kubectl apply`` sends a three-way strategic patch with
``$setElementOrder`` directives, and ``kubectl patch --type json`` sends RFC
6902 operations. This module applies all three to plain JSON values.

The strategic merge keys are those of the upstream Go structs
(``patchMergeKey`` tags) for the fields our resources carry; a list without a
known key is replaced whole, as upstream does for atomic lists.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from .errors import ApiError, bad_request

__all__ = ["merge_patch", "strategic_merge_patch", "json_patch", "PatchError"]

# list field name -> merge key, from the upstream API types' patchMergeKey tags.
_MERGE_KEYS: Final[dict[str, str]] = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "taints": "key",
    "addresses": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "readinessGates": "conditionType",
    "podIPs": "ip",
    "hostIPs": "ip",
}
# Lists of scalars merged as sets (patchStrategy:"merge" without a key).
_SET_LISTS: Final = frozenset({"finalizers"})


class PatchError(ApiError):
    """A patch that cannot be applied (malformed, or a failed JSON-patch ``test``)."""


def _fail(message: str, *, code: int = 400) -> ApiError:
    if code == 422:
        return ApiError(code=422, reason="Invalid", message=message)
    return bad_request(message)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch for the fields of our resources.

    Lists named in ``_MERGE_KEYS`` merge element-wise by key; ``$patch``,
    ``$retainKeys``, ``$deleteFromPrimitiveList/<f>`` and
    ``$setElementOrder/<f>`` directives are honoured or consumed.
    """
    if not isinstance(patch, dict):
        raise _fail("invalid strategic merge patch: the patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    result = dict(target)
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            if isinstance(v, list):
                orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            cur = result.get(field)
            if isinstance(cur, list) and isinstance(v, list):
                result[field] = [x for x in cur if x not in v]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            old = result.get(k)
            result[k] = _smp_map(old if isinstance(old, dict) else {}, v)
        elif isinstance(v, list):
            result[k] = _smp_list(k, result.get(k), v)
        else:
            result[k] = v
    if isinstance(retain, list):
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(field, result[field], order)
    return result


def _smp_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    key = _MERGE_KEYS.get(field)
    cur = current if isinstance(current, list) else []
    if field in _SET_LISTS:
        out = list(cur)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    if key is None or not all(isinstance(x, dict) for x in patch):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return copy.deepcopy(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if "$patch" not in x]
    out = [x for x in cur]
    index = {x.get(key): i for i, x in enumerate(out) if isinstance(x, dict)}
    deleted: set[Any] = set()
    for item in patch:
        k = item.get(key)
        if item.get("$patch") == "delete":
            deleted.add(k)
            continue
        if k in index and isinstance(out[index[k]], dict):
            out[index[k]] = _smp_map(out[index[k]], item)
        else:
            index[k] = len(out)
            out.append(_smp_map({}, item))
    return [x for x in out if not (isinstance(x, dict) and x.get(key) in deleted)]


def _reorder(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = _MERGE_KEYS.get(field)
    if key is None:
        by_repr = {repr(v): i for i, v in enumerate(order)}
        return sorted(items, key=lambda x: by_repr.get(repr(x), len(by_repr)))
    rank: dict[Any, int] = {o.get(key) if isinstance(o, dict) else o: i for i, o in enumerate(order)}
    return sorted(items, key=lambda x: rank.get(x.get(key) if isinstance(x, dict) else None, len(rank)))


# ---- RFC 6902 JSON patch -------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _fail(f"invalid JSON pointer {path!r}: must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise _fail(f"the server rejected our request due to an error in our request: doc is missing path: \"{path}\"", code=422)
    return cur


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _pointer(path), path)


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _fail(f"add operation does not apply: index out of range: {path}", code=422)
    else:
        raise _fail(f"add operation does not apply: doc is missing path: \"{path}\"", code=422)
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise _fail("cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise _fail(f"remove operation does not apply: doc is missing path: \"{path}\"", code=422)


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: apply ``add``/``remove``/``replace``/``move``/``copy``/``test`` in order."""
    if not isinstance(ops, list):
        raise _fail("json patch must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _fail(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _fail(f"missing value for {kind} operation at {path!r}")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            doc, value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise _fail(f"the server rejected our request due to an error in our request: testing value {path} failed", code=422)
        else:
            raise _fail(f"Unexpected kind: {kind}")
    return doc
