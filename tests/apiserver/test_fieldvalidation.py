"""Unknown and duplicate fields under fieldValidation=Strict/Warn/Ignore, with kube-apiserver's wording."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from scheduler.apiserver import resources
from scheduler.apiserver.errors import ApiError
from scheduler.apiserver.fieldvalidation import (
    IGNORE,
    STRICT,
    WARN,
    _NOT_CANONICAL,
    BuiltinSchema,
    _loads_canonical,
    loads_checked,
    parse_field_validation,
    schema_for,
)

from .kube import pod_manifest

_CONTAINER = {"name": "app", "image": "nginx:1.27"}


def _deployment(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, **spec, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}},
    }


def _crd(size_schema: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": size_schema}}},
              "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]},
    }


def _node(status: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0"}, "status": status}


_READY = {"type": "Ready", "status": "True"}

# (id, object as sent, the problems in document order, the object as stored once they are dropped)
CASES: list[tuple[str, dict[str, Any], list[str], dict[str, Any]]] = [
    # a typo at spec level and one deep in the pod template's first container; both dropped
    ("deployment-typos",
     _deployment({**_CONTAINER, "imagePullPolice": "Always"}, foo=1),
     ['unknown field "spec.foo"', 'unknown field "spec.template.spec.containers[0].imagePullPolice"'],
     _deployment(_CONTAINER)),
    # an unknown top-level field is reported once, whatever it holds
    ("pod-top-level",
     {**pod_manifest("p"), "extra": {"nested": {"deep": 1}}},
     ['unknown field "extra"'],
     pod_manifest("p")),
    ("priorityclass",
     {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
      "value": 1000, "globalDefault": False, "descriptoin": "typo"},
     ['unknown field "descriptoin"'],
     {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
      "value": 1000, "globalDefault": False}),
    # a CRD: properties is a map of JSONSchemaProps, so its keys are free and their values checked;
    # "default" is JSON (anything), x-kubernetes-* fields are known
    ("crd-schema-typo",
     _crd({"type": "integer", "minimun": 1, "default": {"any": ["thing"]}}),
     ['unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.minimun"'],
     _crd({"type": "integer", "default": {"any": ["thing"]}})),
    # labels and annotations are maps: any key is a value, not a field
    ("labels-any-key",
     pod_manifest("p", labels={"app.kubernetes.io/name": "web", "weird key": "ok", "spec": "x"}),
     [],
     pod_manifest("p", labels={"app.kubernetes.io/name": "web", "weird key": "ok", "spec": "x"})),
    # status is checked too; problems come in document order (bogus precedes conditions)
    ("node-status",
     _node({"bogus": 1, "capacity": {"cpu": "4", "example.com/gpu": "1"},
            "conditions": [_READY, {"type": "DiskPressure", "status": "False", "typo": 1}]}),
     ['unknown field "status.bogus"', 'unknown field "status.conditions[1].typo"'],
     _node({"capacity": {"cpu": "4", "example.com/gpu": "1"},
            "conditions": [_READY, {"type": "DiskPressure", "status": "False"}]})),
    # IntOrString and RawExtension fields take anything
    ("opaque-values",
     {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "rev"}, "revision": 1,
      "data": {"spec": {"template": {"anything": True}}}},
     [],
     {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "rev"}, "revision": 1,
      "data": {"spec": {"template": {"anything": True}}}}),
    ("int-or-string",
     _deployment(_CONTAINER, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}),
     [],
     _deployment(_CONTAINER, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}})),
]


def _schema(obj: dict[str, Any]) -> BuiltinSchema:
    schema = schema_for(api_version=obj["apiVersion"], kind=obj["kind"])
    assert schema is not None
    return schema


@pytest.mark.parametrize("directive", [STRICT, WARN, IGNORE])
@pytest.mark.parametrize(("sent", "problems", "stored"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_admit_table(directive: str, sent: dict[str, Any], problems: list[str], stored: dict[str, Any]) -> None:
    obj = copy.deepcopy(sent)
    schema = _schema(obj)
    if directive == STRICT and problems:
        # Strict: 400 '<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error: <problems>'
        with pytest.raises(ApiError) as e:
            schema.admit(obj, field_validation=directive)
        version = sent["apiVersion"].rpartition("/")[2]
        kind = sent["kind"]
        assert (e.value.code, e.value.reason) == (400, "BadRequest")
        assert e.value.message == (f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                   f'strict decoding error: {", ".join(problems)}')
        assert obj == sent  # a refused object is left as it came
        return
    # Warn: the problems come back as warnings; Ignore: none. Both drop the unknown fields.
    assert schema.admit(obj, field_validation=directive) == (problems if directive == WARN else [])
    assert obj == stored


def test_the_message_of_the_brief() -> None:
    obj = _deployment({**_CONTAINER, "imagePullPolice": "Always"}, foo=1)
    with pytest.raises(ApiError) as e:
        _schema(obj).admit(obj, field_validation=STRICT)
    assert e.value.message.endswith(
        'strict decoding error: unknown field "spec.foo", unknown field "spec.template.spec.containers[0].imagePullPolice"')


def test_strict_patch_is_422_naming_the_patched_object() -> None:
    # upstream: NewInvalid(GroupKind{}, "", [field.Invalid("patch", <patched JSON>, <strict decoding error>)])
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "dta": {"k": "v"}}
    with pytest.raises(ApiError) as e:
        _schema(obj).admit(obj, field_validation=STRICT, verb="patch")
    patched = r'"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},\"dta\":{\"k\":\"v\"}}"'
    body = f'Invalid value: {patched}: strict decoding error: unknown field "dta"'
    assert (e.value.code, e.value.reason, e.value.message) == (422, "Invalid", f' "" is invalid: patch: {body}')
    assert e.value.details == {"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]}


def test_duplicates_are_reported_before_unknown_fields() -> None:
    body = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"1","a":"2"}},"bogus":1,' \
           b'"spec":{"containers":[{"name":"c","image":"i","image":"j"}]}}'
    obj, dups = loads_checked(body)
    # last value wins; paths of the duplicate keys in document order
    assert dups == ['duplicate field "metadata.labels.a"', 'duplicate field "spec.containers[0].image"']
    assert obj["metadata"]["labels"] == {"a": "2"} and obj["spec"]["containers"][0]["image"] == "j"
    schema = _schema(obj)
    expected = [*dups, 'unknown field "bogus"']
    assert schema.admit(copy.deepcopy(obj), field_validation=WARN, duplicates=dups) == expected
    assert schema.admit(copy.deepcopy(obj), field_validation=IGNORE, duplicates=dups) == []
    with pytest.raises(ApiError) as e:
        schema.admit(obj, field_validation=STRICT, duplicates=dups)
    assert e.value.message == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                               + ", ".join(expected))


@pytest.mark.parametrize(("body", "value", "dups"), [
    (b'{"a":1,"b":2}', {"a": 1, "b": 2}, []),
    # the last value is kept; one message per duplicated key however often it repeats
    (b'{"a":1,"a":2,"a":3}', {"a": 3}, ['duplicate field "a"']),
    (b'{"spec":{"replicas":1,"replicas":2}}', {"spec": {"replicas": 2}}, ['duplicate field "spec.replicas"']),
    # a JSON patch is an array: its paths start with the index
    (b'[{"op":"add","op":"remove","path":"/a"}]', [{"op": "remove", "path": "/a"}], ['duplicate field "[0].op"']),
    # document order: "x" (first seen before "y") is reported first
    (b'{"x":{"k":1,"k":2},"y":[{},{"k":1,"k":1}]}', {"x": {"k": 2}, "y": [{}, {"k": 1}]},
     ['duplicate field "x.k"', 'duplicate field "y[1].k"']),
    (b'"scalar"', "scalar", []),
])
def test_loads_checked(body: bytes, value: Any, dups: list[str]) -> None:
    assert loads_checked(body) == (value, dups)


def test_loads_checked_refuses_deep_bodies() -> None:
    with pytest.raises(ApiError) as e:
        loads_checked(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert (e.value.code, e.value.reason) == (400, "BadRequest")
    assert "exceeded max depth" in e.value.message


@pytest.mark.parametrize(("body", "canonical"), [
    # compact, as vecsched's clients (orjson) write a Binding or an Event: decoded by orjson alone
    pytest.param(b'{"kind":"Binding","metadata":{"name":"p"},"target":{"name":"node-1"}}', True, id="compact"),
    pytest.param(b'{"f":0.5,"n":-3,"t":true,"z":null,"s":"\xc3\xbc"}', True, id="scalars-and-utf8"),
    # json's rules decide the rest; the value is the same either way
    pytest.param(b'{"a": 1}', False, id="spaces"),
    pytest.param(b'{"s":"\\u00fc"}', False, id="escaped-non-ascii"),  # orjson writes the raw UTF-8
    pytest.param(b'{"a":1,"a":2}', False, id="duplicate"),  # read back without the first "a"
    pytest.param(b'{"f":1E5}', False, id="float-spelling"),  # written back as 100000.0
    pytest.param(b'{"n":123456789012345678901}', False, id="beyond-64-bits"),  # orjson: a float; json: the int
    pytest.param(b'{"n":NaN}', False, id="nan"),  # orjson refuses it
    pytest.param(b'{"s":"\\ud800"}', False, id="lone-surrogate"),
])
def test_loads_checked_fast_path_gives_what_json_gives(body: bytes, canonical: bool) -> None:
    expected = json.loads(body, object_pairs_hook=dict)
    value, _ = loads_checked(body)
    # repr: NaN != NaN, and an int must stay an int (1 == 1.0)
    assert repr(value) == repr(expected)
    assert (_loads_canonical(body) is not _NOT_CANONICAL) is canonical


@pytest.mark.parametrize(("depth", "refused"), [
    # canonical bodies too: nesting 200 (limits.MAX_DEPTH) is accepted, 201 refused
    pytest.param(200, False, id="at-limit"),
    pytest.param(201, True, id="over-limit"),
])
def test_loads_checked_fast_path_measures_depth(depth: int, refused: bool) -> None:
    body = b"[" * depth + b"]" * depth  # written back by orjson as it is: the fast path decodes it
    if refused:
        with pytest.raises(ApiError) as e:
            loads_checked(body)
        assert (e.value.code, "exceeded max depth" in e.value.message) == (400, True)
    else:
        assert _loads_canonical(body) is not _NOT_CANONICAL
        value, dups = loads_checked(body)
        assert dups == [] and value == json.loads(body)


_UNSUPPORTED = 'Unsupported value: "{}": supported values: "", "Ignore", "Strict", "Warn"'


@pytest.mark.parametrize(("value", "verb", "expected"), [
    (None, "create", WARN),  # absent: kube-apiserver's default
    ("", "create", WARN),
    ("Strict", "create", STRICT),
    ("Warn", "update", WARN),
    ("Ignore", "patch", IGNORE),
    # exact spelling only; 422 naming the verb's options kind
    ("strict", "create", f'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: {_UNSUPPORTED.format("strict")}'),
    ("true", "update", f'UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: {_UNSUPPORTED.format("true")}'),
    ("x", "patch", f'PatchOptions.meta.k8s.io "" is invalid: fieldValidation: {_UNSUPPORTED.format("x")}'),
])
def test_parse_field_validation(value: str | None, verb: str, expected: str) -> None:
    if expected in (STRICT, WARN, IGNORE):
        assert parse_field_validation(value, verb=verb) == expected
        return
    with pytest.raises(ApiError) as e:
        parse_field_validation(value, verb=verb)
    assert (e.value.code, e.value.reason, e.value.message) == (422, "Invalid", expected)
    assert e.value.details is not None and e.value.details["causes"][0]["field"] == "fieldValidation"


@pytest.mark.parametrize("rt", resources.BUILTIN, ids=[r.key for r in resources.BUILTIN])
def test_every_served_builtin_kind_has_a_schema(rt: resources.ResourceType) -> None:
    schema = schema_for(api_version=rt.api_version, kind=rt.kind)
    assert schema is not None, f"{rt.api_version} {rt.kind} would go unchecked"
    # the model is the kind's own: a minimal object of it has no unknown field
    obj = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": "x", "labels": {"a": "b"}}}
    assert schema.admit(obj, field_validation=STRICT) == []


@pytest.mark.parametrize(("api_version", "kind", "model"), [
    ("apps/v1", "Deployment", "V1Deployment"),
    ("policy/v1", "PodDisruptionBudget", "V1PodDisruptionBudget"),
    ("scheduling.k8s.io/v1", "PriorityClass", "V1PriorityClass"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "V1CustomResourceDefinition"),
    ("events.k8s.io/v1", "Event", "EventsV1Event"),  # two groups share the kind: the group prefix decides
    ("v1", "Event", "CoreV1Event"),
    ("storage.k8s.io/v1", "CSINode", "V1CSINode"),
    ("v1", "Binding", "V1Binding"),  # not a served resource, but a body the server decodes
])
def test_models_of_kinds(api_version: str, kind: str, model: str) -> None:
    schema = schema_for(api_version=api_version, kind=kind)
    assert schema is not None and schema.model == model


def test_custom_resources_and_unknown_kinds_have_no_builtin_schema() -> None:
    assert schema_for(api_version="example.com/v1", kind="Widget") is None
    assert schema_for(api_version="v1", kind="ObjectMeta") is None  # a model, but not a kind
    unknown = BuiltinSchema(api_version="example.com/v1", kind="Widget")  # declaring one is cheap...
    with pytest.raises(ValueError):
        unknown.admit({"apiVersion": "example.com/v1", "kind": "Widget"}, field_validation=WARN)  # ...using it is not


def test_a_realistic_deployment_has_no_problems() -> None:
    container = {
        "name": "app", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent", "args": ["--port=8080"],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [{"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "b", "optional": True}}}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
        "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app", "readOnly": True}],
    }
    obj = _deployment(container, strategy={"rollingUpdate": {"maxSurge": 1}},
                      revisionHistoryLimit=3, progressDeadlineSeconds=600)
    pod_spec = obj["spec"]["template"]["spec"]
    pod_spec["volumes"] = [{"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a"}]}}]
    pod_spec["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchExpressions": [
                                                {"key": "app", "operator": "In", "values": ["web"]}]}}}]}}
    pod_spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                              "labelSelector": {"matchLabels": {"app": "web"}}}]
    pod_spec["tolerations"] = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    obj["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True",
                                                    "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply",
                                         "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    assert _schema(obj).admit(copy.deepcopy(obj), field_validation=STRICT) == []


def test_at_most_100_problems_are_reported_and_all_are_dropped() -> None:
    # sigs.k8s.io/json stops recording after 100 strict errors; the rest are still pruned
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, **{f"x{i:03}": i for i in range(150)}}
    warnings = _schema(obj).admit(obj, field_validation=WARN)
    assert warnings == [f'unknown field "x{i:03}"' for i in range(100)]
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
