"""Server-side field validation (the ``fieldValidation`` parameter) for the built-in kinds.

``kubectl`` sends ``fieldValidation=Strict`` by default since 1.25, so a typo
such as ``imagePullPolice`` must fail against vecsched's server exactly as it
fails against a real cluster, or a manifest tested here breaks in production.
Other clients send nothing, which kube-apiserver treats as ``Warn``: the
write succeeds and each problem comes back as a ``Warning`` header. In every
mode the unknown fields are dropped before the object is stored, as Go's JSON
decoder drops them.

A built-in kind's known fields are those of its ``kubernetes_asyncio`` model
(``openapi_types`` and ``attribute_map``), generated from the same OpenAPI
document as kube-apiserver's Go types. Paths and wording follow
sigs.k8s.io/json, the strict decoder kube-apiserver uses:
``unknown field "spec.template.spec.containers[0].imagePullPolice"`` and
``duplicate field "metadata.labels.app"``.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from . import errors
from .errors import ApiError
from .limits import MAX_DEPTH, check_depth, loads_json

if TYPE_CHECKING:  # only for the protocol check below: resources may come to import this module
    from .resources import ObjectSchema

__all__ = [
    "IGNORE",
    "STRICT",
    "WARN",
    "BuiltinSchema",
    "loads_checked",
    "parse_field_validation",
    "schema_for",
    "strict_error",
]

STRICT: Final = "Strict"
WARN: Final = "Warn"
IGNORE: Final = "Ignore"
_DIRECTIVES: Final = (IGNORE, STRICT, WARN)  # sorted, as upstream lists them in its error
_OPTIONS_KIND: Final = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}

# sigs.k8s.io/json keeps at most 100 strict errors per decode (saveStrictError).
_MAX_PROBLEMS: Final = 100

_MODELS: Final = "kubernetes_asyncio.client.models"
# Model type strings that are not models: JSON scalars, and 'object' for
# IntOrString, RawExtension and JSON, whose content is anything.
_NOT_MODELS: Final = frozenset({"str", "int", "bool", "float", "object", "datetime", "date"})

# A field's type, reduced to what the walk needs: ("model", class name),
# ("list", item type), ("map", value type), or _LEAF for anything whose keys
# are not checked (scalars, opaque values, lists and maps of those).
_Type = tuple[str, Any]
_LEAF: Final[_Type] = ("leaf", None)
_DUPLICATE: Final = object()  # stack marker of loads_checked: report this path as a duplicate


def parse_field_validation(value: str | None, *, verb: str = "create") -> str:
    """The request's directive (``Strict``, ``Warn`` or ``Ignore``) from its query value.

    Absent or empty means ``Warn``, as kube-apiserver's ``fieldValidation()``
    defaults it. Anything else, including other casings, is the 422 that
    ``ValidateCreateOptions`` (``UpdateOptions``/``PatchOptions`` for those
    ``verb``s) answers.
    """
    if value is None or value == "":
        return WARN
    if value in _DIRECTIVES:
        return value
    options = _OPTIONS_KIND.get(verb, "CreateOptions")
    supported = ", ".join(json.dumps(v) for v in ("", *_DIRECTIVES))
    body = f"Unsupported value: {json.dumps(value, ensure_ascii=False)}: supported values: {supported}"
    raise ApiError(
        code=422,
        reason="Invalid",
        message=f'{options}.meta.k8s.io "" is invalid: fieldValidation: {body}',
        details={
            "group": "meta.k8s.io",
            "kind": options,
            "causes": [{"reason": "FieldValueNotSupported", "message": body, "field": "fieldValidation"}],
        },
    )


def strict_error(problems: Sequence[str], *, obj: Any, kind: str, api_version: str, verb: str = "create") -> ApiError:
    """The failure of a ``Strict`` request whose body had ``problems``.

    Create and update fail to decode: 400 ``<Kind> in version "<v>" cannot be
    handled as a <Kind>: strict decoding error: ...``. A patch fails after it
    is applied: 422 naming the patched object, as upstream's patch handler
    builds it (``field.Invalid(field.NewPath("patch"), patchedJS, ...)``).
    """
    text = "strict decoding error: " + ", ".join(problems)
    if verb == "patch":
        patched = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
        body = f"Invalid value: {json.dumps(patched, ensure_ascii=False)}: {text}"
        # An empty GroupKind and name, hence the message's leading ' "" is invalid'.
        return ApiError(code=422, reason="Invalid", message=f' "" is invalid: patch: {body}',
                        details={"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]})
    version = api_version.rpartition("/")[2]
    return errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {text}')


def loads_checked(body: bytes | str) -> tuple[Any, list[str]]:
    """Parse JSON and name its duplicate keys: ``duplicate field "spec.replicas"``.

    The value keeps the last of duplicate keys, as Go's decoder does. The
    messages are in document order of each key's first occurrence, with the
    paths of sigs.k8s.io/json (``a.b``, ``a[0].b``; ``[0].op`` in a JSON patch).
    Unlike upstream, duplicates inside values the target type does not
    decode key by key (unknown fields, ``RawExtension``) are named too.
    Too deep: the 400 of ``limits.check_depth``; malformed: ``ValueError``.
    """
    if isinstance(body, bytes):
        value = _loads_canonical(body)
        if value is not _NOT_CANONICAL:
            return value, []
    duplicated: dict[int, tuple[dict[str, Any], list[str]]] = {}

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            dups: list[str] = []
            for key, _ in pairs:
                if key in seen and key not in dups:
                    dups.append(key)
                seen.add(key)
            duplicated[id(obj)] = (obj, dups)  # the object is kept alive, so its id stays unique
        return obj

    value = loads_json(body, object_pairs_hook=pairs_hook)
    if not duplicated:
        return value, []
    messages: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        current, path = stack.pop()
        pending: list[tuple[Any, str]] = []
        if current is _DUPLICATE:
            messages.append(f'duplicate field "{path}"')
        elif isinstance(current, dict):
            found = duplicated.get(id(current))
            dups = found[1] if found is not None and found[0] is current else []
            for key, child in current.items():
                where = _key_path(path, key)
                if key in dups:
                    pending.append((_DUPLICATE, where))  # reported in turn, before the value's own
                if isinstance(child, (dict, list)):
                    pending.append((child, where))
        elif isinstance(current, list):
            pending = [(child, f"{path}[{i}]") for i, child in enumerate(current) if isinstance(child, (dict, list))]
        stack.extend(reversed(pending))
    return value, messages


_NOT_CANONICAL: Final = object()  # _loads_canonical's answer when the slow, exact decoder must decide


def _loads_canonical(body: bytes) -> Any:
    """The value of a body written as ``orjson`` writes it (compact, as vecsched's own clients send), fast.

    ``orjson`` decodes it, and writing the value back must give ``body`` byte for byte: an encoder
    never writes a key twice, so no key of ``body`` was duplicated, and every number and string
    was spelled as ``json`` reads it to the same value (``orjson`` turns a 20-digit integer into a
    float and refuses NaN, infinities and lone surrogates: never written back the same). Any other
    body -- spaces, escapes, duplicates, malformed -- is ``_NOT_CANONICAL``, for ``json`` to decode.
    Nesting is measured only when the brackets in the text (an upper bound) could exceed the limit.
    """
    try:
        value = orjson.loads(body)
        if orjson.dumps(value) != body:
            return _NOT_CANONICAL
    except (orjson.JSONDecodeError, TypeError):  # orjson.JSONEncodeError is a TypeError
        return _NOT_CANONICAL
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH:
        check_depth(value, limit=MAX_DEPTH)
    return value


class BuiltinSchema:
    """The known fields of one built-in kind, checked and pruned at create, update and patch.

    Implements ``resources.ObjectSchema``. Only objects whose model is known
    have their keys checked; ``labels`` and other maps take any key, and
    ``object`` fields (IntOrString, RawExtension, JSON) take anything. Wrong
    value types are left to the rest of the server.
    """

    def __init__(self, *, api_version: str, kind: str) -> None:
        self.api_version = api_version
        self.kind = kind

    @functools.cached_property
    def model(self) -> str:
        """The model class name, found on first use (so a schema is cheap to declare at import time)."""
        model = _model_for(self.api_version, self.kind)
        if model is None:
            raise ValueError(f"no kubernetes_asyncio model for {self.api_version} {self.kind}")
        return model

    def admit(
        self,
        obj: dict[str, Any],
        *,
        field_validation: str,
        duplicates: Sequence[str] = (),
        verb: str = "create",
        subresource: str = "",
    ) -> list[str]:
        """Drop ``obj``'s unknown fields in place; return the warnings of ``field_validation``.

        ``duplicates`` are the request body's (``loads_checked``), reported
        first; ``subresource`` changes nothing for built-in kinds (a ``/status``
        write is pruned like any other). ``Strict`` with any problem raises ``strict_error`` (nothing is
        pruned then), ``Warn`` returns the problems, ``Ignore`` returns none.
        """
        if field_validation not in _DIRECTIVES:
            raise ValueError(f"field_validation must be one of {_DIRECTIVES}, got {field_validation!r}")
        unknown, prune = _unknown_fields(obj, self.model)
        problems = list(dict.fromkeys([*duplicates, *unknown]))[:_MAX_PROBLEMS]
        if problems and field_validation == STRICT:
            raise strict_error(problems, obj=obj, kind=self.kind, api_version=self.api_version, verb=verb)
        for parent, key in prune:
            del parent[key]
        return problems if field_validation == WARN else []


_: type[ObjectSchema] = BuiltinSchema


def schema_for(*, api_version: str, kind: str) -> BuiltinSchema | None:
    """The schema of a built-in kind, or None when ``kubernetes_asyncio`` has no model for it."""
    return _cached_schema(api_version, kind)


@functools.cache
def _cached_schema(api_version: str, kind: str) -> BuiltinSchema | None:
    if _model_for(api_version, kind) is None:
        return None
    return BuiltinSchema(api_version=api_version, kind=kind)


def _unknown_fields(obj: dict[str, Any], model: str) -> tuple[list[str], list[tuple[dict[str, Any], str]]]:
    """Messages for ``obj``'s unknown fields in document order, and the (parent, key) pairs to drop.

    Depth-first with an explicit stack; an unknown field is pushed as a
    ``None`` type so that it is reported in turn with its siblings' subtrees.
    """
    problems: list[str] = []
    prune: list[tuple[dict[str, Any], str]] = []
    stack: list[tuple[Any, _Type | None, str]] = [(obj, ("model", model), "")]
    while stack:
        value, typ, path = stack.pop()
        if typ is None:
            problems.append(f'unknown field "{path}"')
            continue
        shape, arg = typ
        pending: list[tuple[Any, _Type | None, str]] = []
        if shape == "model" and isinstance(value, dict):
            fields = _fields(arg)
            for key, child in value.items():
                sub = fields.get(key)
                if sub is None:
                    pending.append((None, None, _key_path(path, key)))
                    prune.append((value, key))
                elif sub is not _LEAF and isinstance(child, (dict, list)):
                    pending.append((child, sub, _key_path(path, key)))
        elif shape == "list" and isinstance(value, list):
            pending = [(child, arg, f"{path}[{i}]") for i, child in enumerate(value) if isinstance(child, (dict, list))]
        elif shape == "map" and isinstance(value, dict):
            pending = [(child, arg, _key_path(path, k)) for k, child in value.items() if isinstance(child, (dict, list))]
        stack.extend(reversed(pending))
    return problems, prune


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@functools.cache
def _models() -> Any:
    # Imported on first use: loading ~700 model classes takes most of a second.
    return importlib.import_module(_MODELS)


def _model_for(api_version: str, kind: str) -> str | None:
    """The model class of a top-level kind: ``apps/v1 Deployment`` -> ``V1Deployment``.

    kubernetes_asyncio prefixes the group's first label when two groups share
    a kind name (``CoreV1Event``, ``EventsV1Event``), so that name is tried first.
    """
    group, _, version = api_version.rpartition("/")
    ver = version[:1].upper() + version[1:]
    prefix = (group.split(".")[0] if group else "core").capitalize()
    for name in (f"{prefix}{ver}{kind}", f"{ver}{kind}"):
        cls = getattr(_models(), name, None)
        if cls is not None and "kind" in getattr(cls, "attribute_map", {}).values():
            return name
    return None


@functools.cache
def _fields(model: str) -> dict[str, _Type]:
    """A model's JSON field names and their types."""
    cls = getattr(_models(), model)
    return {cls.attribute_map[attr]: _parse_type(t) for attr, t in cls.openapi_types.items()}


@functools.cache
def _parse_type(text: str) -> _Type:
    """``'list[V1Container]'`` -> ``("list", ("model", "V1Container"))``; ``'dict(str, str)'`` -> _LEAF."""
    if text.startswith("list[") and text.endswith("]"):
        item = _parse_type(text[5:-1])
        return _LEAF if item is _LEAF else ("list", item)
    if text.startswith("dict(") and text.endswith(")"):
        value = _parse_type(text[5:-1].split(",", 1)[1].strip())
        return _LEAF if value is _LEAF else ("map", value)
    if text in _NOT_MODELS or not hasattr(getattr(_models(), text, None), "openapi_types"):
        return _LEAF
    return ("model", text)
