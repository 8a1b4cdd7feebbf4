"""CustomResourceDefinitions: what the embedded API server does when one is written.

Installing scheduler-plugins' PodGroup CRD (or any other) must behave as on a
real cluster: kube-apiserver validates and defaults the definition, its
naming and establishing controllers accept the names and mark it
``Established`` within moments, and from then on the group/version serves
the new kind with the CRD's schema, subresources and printer columns.
This module is that behaviour as pure functions over JSON objects; the HTTP
and store layers call them:

- ``validate_definition`` on create/update of a CRD (defaults, 422 causes);
- ``established_status`` / ``names_conflict`` for the status the controllers write;
- ``resource_types`` for the ``ResourceType`` of each served version, whose
  ``schema`` (a ``crd_schema.StructuralSchema``) admits custom objects;
- ``table_columns`` / ``table_cells`` for ``kubectl get`` tables.

CEL (``x-kubernetes-validations``) is accepted and not evaluated, and no
conversion between versions is done (upstream's ``None`` strategy).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from . import errors
from .crd_columns import table_cells, table_columns
from .crd_go import copy_json, go_quote, typed_key
from .crd_schema import StructuralSchema
from .crd_spec import approval_state, definition_errors, protected_group, shape_error
from .objects import now_rfc3339
from .resources import ResourceType, ScalePaths, make_type

__all__ = [
    "validate_definition",
    "resource_types",
    "established_status",
    "names_conflict",
    "table_columns",
    "table_cells",
    "StructuralSchema",
]

_KIND: Final = "CustomResourceDefinition"
_GROUP: Final = "apiextensions.k8s.io"
_NAME_KEYS: Final = ("plural", "singular", "shortNames", "kind", "listKind", "categories")


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _default_spec(spec: dict[str, Any]) -> None:
    """``SetDefaults_CustomResourceDefinitionSpec``: singular, listKind, conversion, webhook service port."""
    if not isinstance(spec.get("names"), dict):
        spec["names"] = {}
    names = spec["names"]
    if not names.get("singular"):
        names["singular"] = str(names.get("kind") or "").lower()
    if not names.get("listKind") and names.get("kind"):
        names["listKind"] = names["kind"] + "List"
    if not isinstance(spec.get("conversion"), dict):
        spec["conversion"] = {"strategy": "None"}
    service = _dict(_dict(spec["conversion"].get("webhook")).get("clientConfig")).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443


def _storage_version(spec: dict[str, Any]) -> str | None:
    for v in spec.get("versions") or []:
        if v.get("storage") is True:
            return str(v.get("name") or "")
    return None


def _prepare(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The strategy's PrepareForCreate/PrepareForUpdate: status reset or kept, storage version recorded,
    ``metadata.generation`` 1 on create and bumped when the spec changes."""
    spec = obj["spec"]
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    meta = obj["metadata"]
    if old is None:
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}
        meta["generation"] = 1
    else:
        obj["status"] = copy_json(old.get("status") or {})
        old_gen = int(_dict(old.get("metadata")).get("generation") or 1)
        changed = typed_key(spec) != typed_key(old.get("spec") or {})
        meta["generation"] = old_gen + 1 if changed else old_gen
    if not isinstance(obj["status"].get("storedVersions"), list):
        obj["status"]["storedVersions"] = []
    stored = obj["status"]["storedVersions"]
    storage = _storage_version(spec)
    if storage is not None and storage not in stored:
        stored.append(storage)


def validate_definition(obj: dict[str, Any], *, old: dict[str, Any] | None) -> None:
    """Default ``obj`` (a v1 CRD) and validate it as kube-apiserver does on create (``old`` None) or update.

    Fills ``names.singular``/``listKind``, ``conversion``, ``status.storedVersions`` and
    ``metadata.generation``; raises a 400 for a body that would not decode and one 422
    ``CustomResourceDefinition`` error with every cause otherwise."""
    problem = shape_error(obj)
    if problem:
        raise errors.bad_request(f'{_KIND} in version "v1" cannot be handled as a {_KIND}: {problem}')
    if not isinstance(obj.get("spec"), dict):
        obj["spec"] = {}
    _default_spec(obj["spec"])
    _prepare(obj, old)
    causes = definition_errors(obj, old)
    if causes:
        name = str(_dict(obj.get("metadata")).get("name") or "")
        raise errors.invalid(kind=_KIND, group=_GROUP, name=name, causes=causes)


# ---- names and status --------------------------------------------------------------------------------

def _requested(crd: dict[str, Any]) -> dict[str, Any]:
    names = dict(_dict(_dict(crd.get("spec")).get("names")))
    if not names.get("singular"):
        names["singular"] = str(names.get("kind") or "").lower()
    if not names.get("listKind") and names.get("kind"):
        names["listKind"] = names["kind"] + "List"
    return names


def _accept(crd: dict[str, Any], existing: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], str, str]:
    """The naming controller: accepted names, and the reason/message of the last conflict ("" when none)."""
    group = _dict(crd.get("spec")).get("group")
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in existing:
        if _dict(other.get("spec")).get("group") != group:
            continue
        an = _dict(_dict(other.get("status")).get("acceptedNames"))
        resources.update(str(an.get(k) or "") for k in ("plural", "singular"))
        resources.update(str(x) for x in an.get("shortNames") or [])
        kinds.update(str(an.get(k) or "") for k in ("kind", "listKind"))
    want = _requested(crd)
    have = _dict(_dict(crd.get("status")).get("acceptedNames"))
    new = dict(have)
    reason = message = ""

    def fresh(name: str, accepted: str, used: set[str]) -> str:
        return "" if name == accepted or name not in used else f"{go_quote(name)} is already in use"

    for key, used, why in (("plural", resources, "PluralConflict"), ("singular", resources, "SingularConflict")):
        err = fresh(str(want.get(key) or ""), str(have.get(key) or ""), used)
        if err:
            reason, message = why, err
        else:
            new[key] = want.get(key) or ""
    if list(want.get("shortNames") or []) != list(have.get("shortNames") or []):
        errs = [fresh(s, "", resources) for s in want.get("shortNames") or [] if s not in (have.get("shortNames") or [])]
        errs = list(dict.fromkeys(e for e in errs if e))
        if errs:
            reason = "ShortNamesConflict"
            message = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        else:
            new["shortNames"] = list(want.get("shortNames") or [])
    for key, why in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
        err = fresh(str(want.get(key) or ""), str(have.get(key) or ""), kinds)
        if err:
            reason, message = why, err
        else:
            new[key] = want.get(key) or ""
    new["categories"] = list(want.get("categories") or [])
    accepted = {k: new.get(k) or "" for k in _NAME_KEYS if new.get(k) or k in ("plural", "kind")}
    return accepted, reason, message


def names_conflict(crd: dict[str, Any], *, existing: Iterable[dict[str, Any]]) -> str | None:
    """Why upstream would set NamesAccepted=False (``"pg" is already in use``), or None.

    ``existing`` are the stored CRDs (any group; only the CRD's group counts); their
    ``status.acceptedNames`` are the names taken. When several names clash, the last
    check's message wins, as upstream overwrites the condition."""
    _, reason, message = _accept(crd, existing)
    return message if reason else None


def _condition(conds: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """``SetCRDCondition``: replace in place, moving lastTransitionTime only when the status changes."""
    for c in conds:
        if c.get("type") == new["type"]:
            if c.get("status") != new["status"] or not c.get("lastTransitionTime"):
                c["lastTransitionTime"] = new["lastTransitionTime"]
            c.update(status=new["status"], reason=new["reason"], message=new["message"])
            return
    conds.append(new)


def established_status(crd: dict[str, Any], *, existing: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The status the naming, establishing and API-approval controllers leave on ``crd``.

    With no conflict: ``acceptedNames`` = the spec's names, ``NamesAccepted`` True
    (``NoConflicts``) and ``Established`` True (``InitialNamesAccepted``). A conflict with
    ``existing`` CRDs keeps the clashing names out and sets NamesAccepted False with
    upstream's reason; a CRD that was established stays established."""
    status = copy_json(_dict(crd.get("status")))
    conds: list[dict[str, Any]] = status.setdefault("conditions", []) or []
    status["conditions"] = conds
    now = now_rfc3339()
    accepted, reason, message = _accept(crd, existing)
    if reason:
        names = {"type": "NamesAccepted", "status": "False", "reason": reason, "message": message}
    else:
        names = {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"}
    _condition(conds, {**names, "lastTransitionTime": now})
    was = next((c for c in conds if c.get("type") == "Established"), None)
    if was is None or was.get("status") != "True":
        if reason:
            est = {"status": "False", "reason": "NotAccepted", "message": "not all names are accepted"}
        else:
            est = {"status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        _condition(conds, {"type": "Established", **est, "lastTransitionTime": now})
    spec = _dict(crd.get("spec"))
    if protected_group(str(spec.get("group") or "")):
        state, why = approval_state(_dict(_dict(crd.get("metadata")).get("annotations")))
        ok = {"Approved": ("True", "ApprovedAnnotation"), "Missing": ("False", "MissingAnnotation"),
              "Bypassed": ("False", "UnapprovedAnnotation"), "Invalid": ("False", "InvalidAnnotation")}[state]
        _condition(conds, {"type": "KubernetesAPIApprovalPolicyConformant", "status": ok[0], "reason": ok[1],
                           "message": why, "lastTransitionTime": now})
    status["acceptedNames"] = accepted
    if not status.get("storedVersions"):
        storage = _storage_version(spec)
        status["storedVersions"] = [storage] if storage is not None else []
    return dict(status)


# ---- serving ---------------------------------------------------------------------------------------

def _served_names(crd: dict[str, Any]) -> dict[str, Any]:
    """The names the CRD is served under: the accepted ones once established (as upstream), else the spec's."""
    accepted = _dict(_dict(crd.get("status")).get("acceptedNames"))
    return accepted if accepted.get("plural") and accepted.get("kind") else _requested(crd)


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One custom ``ResourceType`` per served version of ``crd``, in the CRD's version order."""
    spec = _dict(crd.get("spec"))
    names = _served_names(crd)
    group = str(spec.get("group") or "")
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served"):
            continue
        subs = _dict(v.get("subresources"))
        has_status = isinstance(subs.get("status"), dict)
        scale_spec = subs.get("scale")
        scale = ScalePaths(spec_replicas=str(scale_spec.get("specReplicasPath") or ""),
                           status_replicas=str(scale_spec.get("statusReplicasPath") or ""),
                           label_selector=str(scale_spec.get("labelSelectorPath") or "")) \
            if isinstance(scale_spec, dict) else None
        columns = tuple({"name": c.get("name") or "", "type": c.get("type") or "", "format": c.get("format") or "",
                         "description": c.get("description") or "", "priority": int(c.get("priority") or 0),
                         "jsonPath": c.get("jsonPath") or ""} for c in v.get("additionalPrinterColumns") or [])
        kind = str(names.get("kind") or "")
        schema = StructuralSchema(_dict(v.get("schema")).get("openAPIV3Schema"), kind=kind, group=group,
                                  version=str(v.get("name") or ""), scale=scale)
        out.append(make_type(
            plural=str(names.get("plural") or ""), kind=kind, group=group, version=str(v.get("name") or ""),
            namespaced=spec.get("scope") == "Namespaced", short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()), singular=str(names.get("singular") or ""),
            subresources=(("status",) if has_status else ()) + (("scale",) if scale else ()),
            status_split=has_status, generation=True, scale=scale, custom=True, columns=columns, schema=schema,
            fields=tuple(str(f.get("jsonPath") or "").lstrip(".") for f in v.get("selectableFields") or []
                         if isinstance(f, dict))))
    return out
