"""Custom objects against their CRD's structural schema: pruning, defaults, fieldValidation
directives and the exact 422 causes kube-apiserver sends; hostile input stays linear and recursion-free."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scheduler.apiserver.crd_schema import StructuralSchema
from scheduler.apiserver.errors import ApiError
from scheduler.apiserver.resources import ScalePaths

TYPE_META = {"apiVersion": "example.com/v1", "kind": "Widget"}


def spec_schema(**props: Any) -> dict[str, Any]:
    """A root schema whose ``spec`` has ``props``."""
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}


def admit(schema: dict[str, Any], body: dict[str, Any], directive: str = "Warn", *, scale: ScalePaths | None = None,
          subresource: str = "") -> tuple[dict[str, Any], list[str]]:
    """Admit ``body`` (a Widget named w); return it without TypeMeta and metadata, and the warnings."""
    s = StructuralSchema(schema, kind="Widget", group="example.com", version="v1", scale=scale)
    obj = {**TYPE_META, "metadata": {"name": "w"}, **body}
    warnings = s.admit(obj, field_validation=directive, subresource=subresource)
    assert obj.pop("apiVersion") == "example.com/v1" and obj.pop("kind") == "Widget"
    obj.pop("metadata")
    return obj, warnings


def causes(schema: dict[str, Any], body: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as info:
        admit(schema, body, **kw)
    err = info.value
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.details is not None and (err.details["kind"], err.details["group"], err.details["name"]) == \
        ("Widget", "example.com", "w")
    return [(c["field"], c["message"]) for c in err.details["causes"]]


SIZE = {"type": "integer"}
PRESERVE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STRATEGY = {"type": "object", "default": {}, "properties": {"type": {"type": "string", "default": "Rolling"}}}
PORTS = {"type": "array", "items": {"type": "object", "properties": {
    "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}}

ADMITTED = [
    # (schema, body, directive, stored body, warnings)
    # unknown fields are pruned and reported (sorted paths) under Warn, silently under Ignore
    (spec_schema(size=SIZE), {"spec": {"size": 1, "color": "red"}, "extra": 1}, "Warn",
     {"spec": {"size": 1}}, ['unknown field "extra"', 'unknown field "spec.color"']),
    (spec_schema(size=SIZE), {"spec": {"size": 1, "color": "red"}, "extra": 1}, "Ignore", {"spec": {"size": 1}}, []),
    # unknown metadata fields come first; apiVersion/kind/metadata are never pruned at the root
    (spec_schema(), {"metadata": {"name": "w", "colour": "red"}, "spec": {"x": 1}}, "Warn",
     {"spec": {}}, ['unknown field "metadata.colour"', 'unknown field "spec.x"']),
    # x-kubernetes-preserve-unknown-fields keeps what the schema does not name...
    (spec_schema(cfg=PRESERVE), {"spec": {"cfg": {"a": {"b": [1, {"c": 2}]}}}}, "Strict",
     {"spec": {"cfg": {"a": {"b": [1, {"c": 2}]}}}}, []),
    # ...but still prunes below the fields it does name
    (spec_schema(cfg={**PRESERVE, "properties": {"known": {"type": "object", "properties": {"x": SIZE}}}}),
     {"spec": {"cfg": {"other": 1, "known": {"x": 1, "y": 2}}}}, "Warn",
     {"spec": {"cfg": {"other": 1, "known": {"x": 1}}}}, ['unknown field "spec.cfg.known.y"']),
    # defaults: missing fields get them, and a defaulted object gets its own fields' defaults
    (spec_schema(replicas={"type": "integer", "default": 1}, strategy=STRATEGY), {"spec": {}}, "Strict",
     {"spec": {"replicas": 1, "strategy": {"type": "Rolling"}}}, []),
    (spec_schema(replicas={"type": "integer", "default": 1}, strategy=STRATEGY),
     {"spec": {"replicas": 3, "strategy": {}}}, "Strict", {"spec": {"replicas": 3, "strategy": {"type": "Rolling"}}}, []),
    # defaults inside array items and map values
    (spec_schema(ports=PORTS), {"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}}, "Strict",
     {"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}, []),
    (spec_schema(labels={"type": "object", "additionalProperties": {"type": "string", "default": "x"}}),
     {"spec": {"labels": {"a": None, "b": "y"}}}, "Strict", {"spec": {"labels": {"a": "x", "b": "y"}}}, []),
    # null: dropped where not nullable, kept where nullable, replaced where there is a default
    (spec_schema(size=SIZE), {"spec": {"size": None}}, "Strict", {"spec": {}}, []),
    (spec_schema(size={"type": "integer", "nullable": True}), {"spec": {"size": None}}, "Strict",
     {"spec": {"size": None}}, []),
    (spec_schema(size={"type": "integer", "default": 3}), {"spec": {"size": None}}, "Strict", {"spec": {"size": 3}}, []),
    # int-or-string takes both; number takes an integer; integer takes an integral float (as upstream)
    (spec_schema(port={"x-kubernetes-int-or-string": True}), {"spec": {"port": 80}}, "Strict", {"spec": {"port": 80}}, []),
    (spec_schema(port={"x-kubernetes-int-or-string": True}), {"spec": {"port": "http"}}, "Strict",
     {"spec": {"port": "http"}}, []),
    (spec_schema(ratio={"type": "number"}), {"spec": {"ratio": 1}}, "Strict", {"spec": {"ratio": 1}}, []),
    (spec_schema(size=SIZE), {"spec": {"size": 2.0}}, "Strict", {"spec": {"size": 2.0}}, []),
    # an embedded resource keeps apiVersion/kind/metadata, whose unknown fields are dropped
    (spec_schema(template={**PRESERVE, "x-kubernetes-embedded-resource": True}),
     {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1}, "x": 1}}},
     "Warn", {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "x": 1}}},
     ['unknown field "spec.template.metadata.bogus"']),
    # formats that hold
    (spec_schema(at={"type": "string", "format": "date-time"}, day={"type": "string", "format": "date"},
                 data={"type": "string", "format": "byte"}, count={"type": "integer", "format": "int64"}),
     {"spec": {"at": "2024-05-01T10:00:00.5+02:00", "day": "2024-02-29", "data": "aGk=", "count": 2**40}}, "Strict",
     {"spec": {"at": "2024-05-01T10:00:00.5+02:00", "day": "2024-02-29", "data": "aGk=", "count": 2**40}}, []),
    # CEL rules are not evaluated
    ({**spec_schema(size=SIZE), "x-kubernetes-validations": [{"rule": "self.spec.size > 100"}]},
     {"spec": {"size": 1}}, "Strict", {"spec": {"size": 1}}, []),
]


@pytest.mark.parametrize(("schema", "body", "directive", "stored", "warnings"), ADMITTED)
def test_admitted(schema: dict[str, Any], body: dict[str, Any], directive: str, stored: dict[str, Any],
                  warnings: list[str]) -> None:
    assert admit(schema, body, directive) == (stored, warnings)


def test_strict_unknown_fields_are_400() -> None:
    with pytest.raises(ApiError) as info:
        admit(spec_schema(size=SIZE), {"spec": {"size": 1, "b": 1, "a": {"x": 1}}}, "Strict")
    # the object's unknown fields (not the fields inside them), sorted, in kube-apiserver's decode error
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.a", '
        'unknown field "spec.b"'))


def test_duplicates_and_patches() -> None:
    # the parser's duplicate keys come first, then the unknown fields; a strict patch is upstream's 422
    s = StructuralSchema(spec_schema(size=SIZE), kind="Widget", group="example.com", version="v1")
    obj = {**TYPE_META, "metadata": {"name": "w"}, "spec": {"size": 1, "color": "red"}}
    assert s.admit(obj, field_validation="Warn", duplicates=['duplicate field "spec.size"']) == [
        'duplicate field "spec.size"', 'unknown field "spec.color"']
    obj = {**TYPE_META, "metadata": {"name": "w"}, "spec": {"size": 1, "color": "red"}}
    with pytest.raises(ApiError) as info:
        s.admit(obj, field_validation="Strict", verb="patch")
    assert info.value.code == 422
    assert info.value.message.endswith('strict decoding error: unknown field "spec.color"')
    assert '\\"color\\":\\"red\\"' in info.value.message  # the patched object, before pruning


SCALE = ScalePaths(spec_replicas=".spec.replicas", status_replicas=".status.replicas", label_selector=".status.selector")
TAGS_SET = {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
PORT_ITEM = {"type": "object", "properties": {"name": {"type": "string"}, "protocol": {"type": "string"},
                                              "port": SIZE}, "required": ["name"]}

REJECTED = [
    # (schema, body, causes): kube-openapi's messages carry the path and "in body"
    (spec_schema(name={"type": "string"}), {"spec": {"name": 5}},
     [("spec.name", 'Invalid value: "integer": spec.name in body must be of type string: "integer"')]),
    # a fractional integer fails the type, and the int64 range check (reported without a field, as upstream)
    (spec_schema(size=SIZE), {"spec": {"size": 1.5}},
     [("spec.size", 'Invalid value: "number": spec.size in body must be of type integer: "number"'),
      ("<nil>", 'Invalid value: "": Checked value must be of type integer (default format) in spec.size')]),
    (spec_schema(count={"type": "integer", "format": "int32"}), {"spec": {"count": 2**31}},
     [("<nil>", 'Invalid value: "": Checked value must be of type integer with format int32 in spec.count')]),
    (spec_schema(flag={"type": "boolean"}), {"spec": {"flag": "true"}},
     [("spec.flag", 'Invalid value: "string": spec.flag in body must be of type boolean: "string"')]),
    (spec_schema(cfg={"type": "object"}), {"spec": {"cfg": []}},
     [("spec.cfg", 'Invalid value: "array": spec.cfg in body must be of type object: "array"')]),
    # nulls inside arrays are not dropped: they fail the item type
    (spec_schema(tags={"type": "array", "items": {"type": "string"}}), {"spec": {"tags": ["a", None]}},
     [("spec.tags[1]", 'Invalid value: "null": spec.tags[1] in body must be of type string: "null"')]),
    ({**spec_schema(), "required": ["spec"]}, {}, [("spec", "Required value")]),
    ({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {"size": SIZE}}}},
     {"spec": {}}, [("spec.size", "Required value")]),
    (spec_schema(color={"type": "string", "enum": ["red", "green"]}), {"spec": {"color": "blue"}},
     [("spec.color", 'Unsupported value: "blue": supported values: "red", "green"')]),
    (spec_schema(level={"type": "integer", "enum": [1, 2]}), {"spec": {"level": 3}},
     [("spec.level", 'Unsupported value: 3: supported values: "1", "2"')]),
    # upstream's enum check never matches null, even on a nullable field
    (spec_schema(mode={"type": "string", "nullable": True, "enum": ["a"]}), {"spec": {"mode": None}},
     [("spec.mode", 'Unsupported value: null: supported values: "a"')]),
    (spec_schema(size={"type": "integer", "minimum": 1, "maximum": 10, "exclusiveMaximum": True}),
     {"spec": {"size": 10}}, [("spec.size", "Invalid value: 10: spec.size in body should be less than 10")]),
    (spec_schema(size={"type": "integer", "minimum": 1, "exclusiveMinimum": True}), {"spec": {"size": 1}},
     [("spec.size", "Invalid value: 1: spec.size in body should be greater than 1")]),
    (spec_schema(ratio={"type": "number", "minimum": 0.5}), {"spec": {"ratio": 0.25}},
     [("spec.ratio", "Invalid value: 0.25: spec.ratio in body should be greater than or equal to 0.5")]),
    (spec_schema(size={"type": "integer", "multipleOf": 5}), {"spec": {"size": 7}},
     [("spec.size", "Invalid value: 7: spec.size in body should be a multiple of 5")]),
    # 0.7 / 0.5 = 1.4 is not an integer
    (spec_schema(ratio={"type": "number", "multipleOf": 0.5}), {"spec": {"ratio": 0.7}},
     [("spec.ratio", "Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5")]),
    (spec_schema(name={"type": "string", "minLength": 3}), {"spec": {"name": "ab"}},
     [("spec.name", 'Invalid value: "ab": spec.name in body should be at least 3 chars long')]),
    (spec_schema(name={"type": "string", "maxLength": 5}), {"spec": {"name": "abcdef"}},
     [("spec.name", "Too long: may not be more than 5 bytes")]),
    (spec_schema(name={"type": "string", "pattern": "^[a-z]+$"}), {"spec": {"name": "Abc"}},
     [("spec.name", "Invalid value: \"Abc\": spec.name in body should match '^[a-z]+$'")]),
    # Go's $ is the end of the text: a trailing newline does not match
    (spec_schema(name={"type": "string", "pattern": "^[a-z]+$"}), {"spec": {"name": "abc\n"}},
     [("spec.name", "Invalid value: \"abc\\n\": spec.name in body should match '^[a-z]+$'")]),
    (spec_schema(day={"type": "string", "format": "date"}), {"spec": {"day": "2024-02-30"}},
     [("spec.day", 'Invalid value: "2024-02-30": spec.day in body must be of type date: "2024-02-30"')]),
    (spec_schema(at={"type": "string", "format": "date-time"}), {"spec": {"at": "2024-01-01 10:00:00"}},
     [("spec.at", 'Invalid value: "2024-01-01 10:00:00": spec.at in body must be of type date-time: '
                  '"2024-01-01 10:00:00"')]),
    (spec_schema(data={"type": "string", "format": "byte"}), {"spec": {"data": "not base64!"}},
     [("spec.data", 'Invalid value: "not base64!": spec.data in body must be of type byte: "not base64!"')]),
    (spec_schema(tags={"type": "array", "items": {"type": "string"}, "minItems": 1}), {"spec": {"tags": []}},
     [("spec.tags", "Invalid value: 0: spec.tags in body should have at least 1 items")]),
    (spec_schema(tags={"type": "array", "items": {"type": "string"}, "maxItems": 2}), {"spec": {"tags": ["a", "b", "c"]}},
     [("spec.tags", "Too many: 3: must have at most 2 items")]),
    (spec_schema(tags={"type": "array", "items": SIZE, "uniqueItems": True}), {"spec": {"tags": [1, 1]}},
     [("spec.tags", "Invalid value: \"\": spec.tags in body shouldn't contain duplicates")]),
    (spec_schema(labels={"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}),
     {"spec": {"labels": {}}}, [("spec.labels", "Invalid value: 0: spec.labels in body should have at least 1 properties")]),
    (spec_schema(labels={"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1}),
     {"spec": {"labels": {"a": "1", "b": "2"}}}, [("spec.labels", "Too many: 2: must have at most 1 item")]),
    (spec_schema(labels={"type": "object", "additionalProperties": {"type": "string"}}), {"spec": {"labels": {"a": 1}}},
     [("spec.labels.a", 'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"')]),
    # additionalProperties: false keeps the key (it is not unknown) and forbids it
    (spec_schema(opts={"type": "object", "additionalProperties": False}), {"spec": {"opts": {"a": 1}}},
     [("spec.opts", 'Invalid value: "a": spec.opts.a in body is a forbidden property')]),
    # list-type set: the second occurrence of a value is the duplicate, once
    (spec_schema(tags=TAGS_SET), {"spec": {"tags": ["a", "b", "a", "a"]}}, [("spec.tags[2]", 'Duplicate value: "a"')]),
    (spec_schema(ports={"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": PORT_ITEM}),
     {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}},
     [("spec.ports[1]", 'Duplicate value: {"name":"http"}')]),
    (spec_schema(ports={"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name", "protocol"], "items": PORT_ITEM}),
     {"spec": {"ports": [{"name": "dns", "protocol": "UDP"}, {"name": "dns", "protocol": "TCP"},
                         {"protocol": "UDP", "name": "dns"}]}},
     [("spec.ports[2]", 'Duplicate value: {"name":"dns","protocol":"UDP"}')]),
    # anyOf: no alternative matched; the best failure is reported after the composite error
    (spec_schema(value={"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}), {"spec": {"value": "c"}},
     [("<nil>", 'Invalid value: "": "spec.value" must validate at least one schema (anyOf)'),
      ("spec.value", "Invalid value: \"c\": spec.value in body should match '^a'")]),
    (spec_schema(value={"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]}), {"spec": {"value": 5}},
     [("<nil>", 'Invalid value: "": "spec.value" must validate one and only one schema (oneOf). Found 2 valid '
                'alternatives')]),
    (spec_schema(value={"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 10}]}), {"spec": {"value": 20}},
     [("spec.value", "Invalid value: 20: spec.value in body should be less than or equal to 10"),
      ("<nil>", 'Invalid value: "": "spec.value" must validate all the schemas (allOf)')]),
    (spec_schema(value={"type": "string", "not": {"enum": ["forbidden"]}}), {"spec": {"value": "forbidden"}},
     [("<nil>", 'Invalid value: "": "spec.value" must not validate the schema (not)')]),
    # int-or-string rejects a bool three ways: its own type, the anyOf, the best anyOf failure
    (spec_schema(port={"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}),
     {"spec": {"port": True}},
     [("spec.port", 'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'),
      ("<nil>", 'Invalid value: "": "spec.port" must validate at least one schema (anyOf)'),
      ("spec.port", 'Invalid value: "boolean": spec.port in body must be of type integer: "boolean"')]),
    (spec_schema(template={**PRESERVE, "x-kubernetes-embedded-resource": True}),
     {"spec": {"template": {"apiVersion": "v1"}}}, [("spec.template.kind", "Required value")]),
    # every cause at once, in the object's field order
    (spec_schema(size=SIZE, color={"type": "string", "enum": ["red"]}), {"spec": {"size": "x", "color": "blue"}},
     [("spec.size", 'Invalid value: "string": spec.size in body must be of type integer: "string"'),
      ("spec.color", 'Unsupported value: "blue": supported values: "red"')]),
]


@pytest.mark.parametrize(("schema", "body", "expected"), REJECTED)
def test_rejected(schema: dict[str, Any], body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes(schema, body) == expected


def test_scale_subresource_paths() -> None:
    # with a scale subresource, replicas must be int64s in [0, MaxInt32] and the selector a string; fields are the
    # JSON paths themselves (leading dot) and a wrong type reports 0
    body = {"spec": {"replicas": "two"}, "status": {"replicas": -1, "selector": 5}}
    assert causes(PRESERVE, body, scale=SCALE) == [
        (".spec.replicas", "Invalid value: 0: .spec.replicas accessor error: two is of the type string, expected int64"),
        (".status.replicas", "Invalid value: -1: should be a non-negative integer"),
        (".status.selector", 'Invalid value: "": .status.selector accessor error: 5 is of the type int64, expected string')]
    assert admit(PRESERVE, {"spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=x"}}, scale=SCALE)[1] == []


def test_status_subresource_validates_status_alone() -> None:
    # a /status write validates status against its own schema: the message names "num", the field "status.num"
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": SIZE}},
                                               "status": {"type": "object", "properties": {"num": {**SIZE, "maximum": 10}}}}}
    assert causes(schema, {"spec": {"size": "bad"}, "status": {"num": 15}}, subresource="status") == [
        ("status.num", "Invalid value: 15: num in body should be less than or equal to 10")]
    assert causes(schema, {"spec": {"size": 1}, "status": {"num": 15}}) == [
        ("status.num", "Invalid value: 15: status.num in body should be less than or equal to 10")]


def test_apply_defaults_alone() -> None:
    s = StructuralSchema(spec_schema(strategy=STRATEGY), kind="Widget", group="example.com", version="v1")
    obj: dict[str, Any] = {"spec": {}}
    s.apply_defaults(obj)
    assert obj == {"spec": {"strategy": {"type": "Rolling"}}}


# ---- hostile input ------------------------------------------------------------------------------------

def _deep_dict(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


def _deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


def test_deep_object_under_preserved_fields() -> None:
    deep = _deep_dict(100_000)
    stored, warnings = admit(spec_schema(cfg=PRESERVE), {"spec": {"cfg": deep}}, "Strict")
    assert warnings == [] and stored["spec"]["cfg"] is deep


def test_deep_unknown_lists_are_pruned_iteratively() -> None:
    # additionalProperties: false keeps the key, and pruning walks its 100,000-deep value with no schema
    schema = spec_schema(opts={"type": "object", "additionalProperties": False})
    assert causes(schema, {"spec": {"opts": {"a": _deep_list(100_000)}}}) == [
        ("spec.opts", 'Invalid value: "a": spec.opts.a in body is a forbidden property')]


def test_deep_value_in_an_enum_error() -> None:
    # the bad value is printed as JSON in the message, encoded without recursion
    schema = spec_schema(cfg={**PRESERVE, "enum": [{"a": 1}]})
    ((field, message),) = causes(schema, {"spec": {"cfg": _deep_dict(100_000)}})
    assert field == "spec.cfg"
    assert message.startswith('Unsupported value: {"a":{"a":') and message.endswith('}}: supported values: "{\\"a\\":1}"')


def test_deep_schema_and_object() -> None:
    depth = 5_000
    schema: dict[str, Any] = {"type": "object"}
    node = schema
    for _ in range(depth):
        child: dict[str, Any] = {"type": "object"}
        node["properties"] = {"a": child}
        node = child
    node["properties"] = {"leaf": {"type": "integer", "minimum": 1}}
    obj = _deep_dict(depth)
    leaf = obj
    while leaf:
        leaf = leaf["a"]
    leaf["leaf"] = 0
    leaf["extra"] = 1
    s = StructuralSchema(schema, kind="Widget", group="example.com", version="v1")
    with pytest.raises(ApiError) as info:
        s.admit(obj, field_validation="Ignore")
    assert info.value.details is not None
    ((cause),) = info.value.details["causes"]
    assert cause["field"] == "a." * depth + "leaf"
    assert "extra" not in leaf  # pruned at the bottom


def test_huge_arrays_stay_fast() -> None:
    n = 200_000
    schema = spec_schema(tags=TAGS_SET, counts={"type": "array", "items": {"type": "integer", "minimum": 0}})
    start = time.monotonic()
    stored, _ = admit(schema, {"spec": {"tags": [f"t{i}" for i in range(n)], "counts": list(range(n))}}, "Strict")
    assert len(stored["spec"]["tags"]) == n
    bad = causes(schema, {"spec": {"tags": [f"t{i % 1000}" for i in range(n)], "counts": [-1] * 3}})
    # the 3 minimum errors (schema validation comes first), then one duplicate per value: 1,000 values each
    # seen 200 times are reported at their second occurrence only
    assert len(bad) == 3 + 1_000
    assert bad[0] == ("spec.counts[0]", "Invalid value: -1: spec.counts[0] in body should be greater than or equal to 0")
    assert bad[3] == ("spec.tags[1000]", 'Duplicate value: "t0"')
    assert time.monotonic() - start < 30
