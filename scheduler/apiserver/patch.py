"""PATCH bodies: JSON merge patch, strategic merge patch and JSON patch.

Clients change objects without a full read-modify-write: the scheduler merges
a ``PodScheduled`` condition into ``status.conditions`` (strategic merge, keyed
by ``type``), ``kubectl apply`` sends a three-way strategic patch with
``$setElementOrder`` directives, and ``kubectl patch --type json`` sends RFC
6902 operations. This module applies all three to plain JSON values.

Only a JSON patch can make a document much larger than the request that
carries it (each ``copy`` may double it), so ``json_patch`` keeps a running
size estimate and refuses, as kube-apiserver does, before the growth is built;
merge patches produce at most the target plus the patch.

The strategic merge keys are those of the upstream Go structs
(``patchMergeKey`` tags) for the fields our resources carry; a list without a
known key is replaced whole, as upstream does for atomic lists.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from .errors import ApiError, bad_request, too_large
from .limits import check_depth, json_size, too_deep

__all__ = ["merge_patch", "strategic_merge_patch", "json_patch", "PatchError", "MAX_JSON_PATCH_OPERATIONS"]

# kube-apiserver's maxJSONPatchOperations (handlers/patch.go): more is a 413.
MAX_JSON_PATCH_OPERATIONS: Final = 10_000

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
    "webhooks": "name",  # Mutating/ValidatingWebhookConfiguration
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
    try:
        return _smp_map(target if isinstance(target, dict) else {}, patch)
    except TypeError as e:  # an object or array where a key is expected ($retainKeys, a merge key): unhashable
        raise _fail(f"invalid strategic merge patch: {e}") from None


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


class _SizeBudget:
    """The running size estimate of a JSON patch's document, against the caller's limit.

    ``copied`` is kube-apiserver's accumulated copy size (evanphx/json-patch's
    ``AccumulatedCopySizeLimit``, set to ``JSONPatchMaxCopyBytes``): it never
    shrinks, so copy/remove loops cannot make the server copy unboundedly.
    ``size`` follows the document (removals give bytes back), so the result
    can never exceed the limit however the operations are arranged.
    """

    def __init__(self, *, limit: int, size: int) -> None:
        self.limit = limit
        self.size = size
        self.copied = 0

    def copy(self, nbytes: int) -> None:
        """Count a copied value's JSON length (the caller then ``grow``s the document)."""
        self.copied += nbytes
        if self.copied > self.limit:
            # 422 with the upstream message: kube-apiserver answers a patch.Apply failure
            # with StatusUnprocessableEntity.
            raise _fail(
                "the server rejected our request due to an error in our request: Unable to complete the copy, "
                f"the accumulated size increase of copy is {self.copied}, exceeding the limit {self.limit}",
                code=422,
            )

    def grow(self, nbytes: int) -> None:
        self.size += nbytes
        if self.size > self.limit:
            # 413, the status of every size limit of the server (request body, operation count):
            # the patched object is the entity this request asks the server to store.
            raise too_large(self.limit)

    def shrink(self, nbytes: int) -> None:
        self.size -= nbytes


def _member_size(path: str, value: Any, *, size: int | None = None) -> int:
    """Bytes a value adds to its parent: itself, plus ``"key":`` and a comma in an object or array."""
    key = path.rsplit("/", 1)[-1]
    return (json_size(value) if size is None else size) + len(key) + 4


def json_patch(target: Any, ops: Any, *, max_bytes: int | None = None) -> Any:
    """RFC 6902: apply ``add``/``remove``/``replace``/``move``/``copy``/``test`` in order.

    More than ``MAX_JSON_PATCH_OPERATIONS`` operations is a 413, and a result
    nested deeper than ``limits.MAX_DEPTH`` a 400, as for request bodies. With
    ``max_bytes``, each value is sized before it is copied or inserted: copies
    totalling more than ``max_bytes`` are a 422, a document that would grow
    past it a 413 (``_SizeBudget``); None applies no size limit.
    """
    if not isinstance(ops, list):
        raise _fail("json patch must be a JSON array of operations")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(code=413, reason="RequestEntityTooLarge",
                       message=f"Request entity too large: The allowed maximum operations in a JSON patch is "
                               f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    try:
        doc = copy.deepcopy(target)
        budget = None if max_bytes is None else _SizeBudget(limit=max_bytes, size=json_size(doc))
        for op in ops:
            doc = _apply(doc, op, budget)
    except RecursionError:
        # copying a value into itself deepens the document by one level per operation
        raise too_deep() from None
    check_depth(doc)
    return doc


def _apply(doc: Any, op: Any, budget: _SizeBudget | None) -> Any:
    if not isinstance(op, dict) or "op" not in op or "path" not in op:
        raise _fail(f"invalid JSON patch operation: {op!r}")
    kind, path = op["op"], op["path"]
    if kind in ("add", "replace", "test") and "value" not in op:
        raise _fail(f"missing value for {kind} operation at {path!r}")
    if kind == "add":
        if budget is not None:
            budget.grow(_member_size(path, op["value"]))
        doc = _add(doc, path, copy.deepcopy(op["value"]))
    elif kind == "remove":
        doc, removed = _remove(doc, path)
        if budget is not None:
            budget.shrink(_member_size(path, removed))
    elif kind == "replace":
        doc, old = _remove(doc, path) if _pointer(path) else (doc, doc)
        if budget is not None:
            budget.shrink(_member_size(path, old))
            budget.grow(_member_size(path, op["value"]))
        doc = _add(doc, path, copy.deepcopy(op["value"]))
    elif kind == "move":
        doc, value = _remove(doc, op.get("from", ""))
        doc = _add(doc, path, value)
    elif kind == "copy":
        value = _get(doc, op.get("from", ""))
        if budget is not None:
            size = json_size(value)
            budget.copy(size)
            budget.grow(_member_size(path, value, size=size))
        doc = _add(doc, path, copy.deepcopy(value))
    elif kind == "test":
        if _get(doc, path) != op["value"]:
            raise _fail(f"the server rejected our request due to an error in our request: testing value {path} failed", code=422)
    else:
        raise _fail(f"Unexpected kind: {kind}")
    return doc
