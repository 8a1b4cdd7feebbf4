"""CustomResourceDefinitions: kube-apiserver's defaults and 422 causes, the status its controllers
write, and the ResourceTypes served for each version (scheduler-plugins' PodGroup included)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.apiserver import crd
from scheduler.apiserver.crd_schema import StructuralSchema
from scheduler.apiserver.errors import ApiError
from scheduler.apiserver.resources import ScalePaths

PODGROUP_YAML = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml"
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
V = "spec.validation.openAPIV3Schema"  # where upstream reports a schema shared by every version
SPEC = f"{V}.properties[spec]"


def podgroup_crd() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(PODGROUP_YAML.read_text()) if d]
    assert len(docs) == 1
    doc: dict[str, Any] = docs[0]
    return doc


def widget() -> dict[str, Any]:
    """A small valid CRD: widgets.example.com, one version, spec.size >= 1."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}}}],
        },
    }


def _version(name: str, *, storage: bool, served: bool = True, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    v: dict[str, Any] = copy.deepcopy(widget()["spec"]["versions"][0])
    v.update(name=name, storage=storage, served=served)
    if schema is not None:
        v["schema"] = {"openAPIV3Schema": schema}
    return v


def _spec_props(crd_obj: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = crd_obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    return props


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        obj[last] = value
    return apply


def _both(*fns: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(obj: dict[str, Any]) -> None:
        for f in fns:
            f(obj)
    return apply


def _versions_text(*versions: tuple[str, bool]) -> str:
    """Go's json.Marshal of internal versions whose schema, subresources and columns moved to the spec."""
    return "[" + ",".join(
        f'{{"Name":"{n}","Served":true,"Storage":{"true" if s else "false"},"Deprecated":false,'
        '"DeprecationWarning":null,"Schema":null,"Subresources":null,"AdditionalPrinterColumns":null,'
        '"SelectableFields":null}' for n, s in versions) + "]"


INVALID = [
    # the name must be plural.group
    ("name", _set("metadata.name", "gadgets.example.com"),
     [("metadata.name", 'Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group')]),
    # a group is a DNS subdomain with at least one dot (the name follows it, so only the group is wrong)
    ("group", _both(_set("spec.group", "example"), _set("metadata.name", "widgets.example")),
     [("spec.group", 'Invalid value: "example": should be a domain with at least one dot')]),
    ("scope", _set("spec.scope", "Global"),
     [("spec.scope", 'Unsupported value: "Global": supported values: "Cluster", "Namespaced"')]),
    ("scope missing", _set("spec.scope", ""), [("spec.scope", "Required value")]),
    # kind "Big Widget": singular defaults to "big widget" and listKind to "Big WidgetList", all three invalid
    ("kind", _set("spec.names.kind", "Big Widget"),
     [("spec.names.singular", f'Invalid value: "big widget": {DNS1035}'),
      ("spec.names.kind", f'Invalid value: "Big Widget": may have mixed case, but should otherwise match: {DNS1035}'),
      ("spec.names.listKind",
       f'Invalid value: "Big WidgetList": may have mixed case, but should otherwise match: {DNS1035}')]),
    ("short name", _set("spec.names.shortNames", ["wd", "W"]),
     [("spec.names.shortNames[1]", f'Invalid value: "W": {DNS1035}')]),
    ("listKind = kind", _set("spec.names.listKind", "Widget"),
     [("spec.names.listKind", 'Invalid value: "Widget": kind and listKind may not be the same')]),
    # identical schemas move to the internal spec.validation, so the versions print with Schema null;
    # only the first storage version (v1) is recorded as stored, so v2 is missing from storedVersions
    ("two storage versions", _set("spec.versions", [_version("v1", storage=True), _version("v2", storage=True)]),
     [("spec.versions", f"Invalid value: {_versions_text(('v1', True), ('v2', True))}: "
                        "must have exactly one version marked as storage version"),
      ("status.storedVersions", 'Invalid value: ["v1"]: must have the storage version v2')]),
    # no storage version: nothing to record in status.storedVersions either (a nil list prints as null)
    ("no storage version", _set("spec.versions.0.storage", False),
     [("spec.versions", f"Invalid value: {_versions_text(('v1', False))}: "
                        "must have exactly one version marked as storage version"),
      ("status.storedVersions", "Invalid value: null: must have at least one stored version")]),
    ("duplicate version", _set("spec.versions", [_version("v1", storage=True), _version("v1", storage=False)]),
     [("spec.versions", f"Invalid value: {_versions_text(('v1', True), ('v1', False))}: "
                        "must contain unique version names")]),
    # versions[0] is also the internal spec.version, checked again
    ("version name", _set("spec.versions.0.name", "V1"),
     [("spec.versions[0].name", f'Invalid value: "V1": {DNS1035}'),
      ("spec.version", f'Invalid value: "V1": {DNS1035}')]),
    ("no schema", _set("spec.versions.0.schema", {}), [("spec.versions[0].schema.openAPIV3Schema", "Required value")]),
    ("untyped field", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.type", None),
     [(f"{SPEC}.type", "Required value: must not be empty for specified object fields")]),
    # two versions with different schemas are reported per version
    ("untyped field in v2", _set("spec.versions", [
        _version("v1", storage=True),
        _version("v2", storage=False, schema={"type": "object", "properties": {"spec": {"properties": {}}}})]),
     [("spec.versions[1].schema.openAPIV3Schema.properties[spec].type",
       "Required value: must not be empty for specified object fields")]),
    ("untyped item", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.tags",
                          {"type": "array", "items": {}}),
     [(f"{SPEC}.properties[tags].items.type", "Required value: must not be empty for specified array items")]),
    ("array without items", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.tags",
                                 {"type": "array"}),
     [(f"{SPEC}.properties[tags].items", "Required value: must be specified")]),
    ("additionalProperties with properties",
     _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.additionalProperties", {"type": "string"}),
     [(f"{SPEC}.additionalProperties", "Forbidden: additionalProperties and properties are mutual exclusive")]),
    ("root metadata", _set("spec.versions.0.schema.openAPIV3Schema.properties.metadata",
                           {"type": "object", "properties": {"labels": {"type": "object"}}}),
     [(f"{V}.properties[metadata]", "Forbidden: must not specify anything other than name and generateName, but "
                                    "metadata is implicitly specified")]),
    # a type inside anyOf is not structural; the field itself has none (errors sorted by text, as upstream)
    ("type in anyOf", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.value",
                           {"anyOf": [{"type": "string", "description": "x"}]}),
     [(f"{SPEC}.properties[value].anyOf[0].description", "Forbidden: must be empty to be structural"),
      (f"{SPEC}.properties[value].anyOf[0].type", "Forbidden: must be empty to be structural"),
      (f"{SPEC}.properties[value].type", "Required value: must not be empty for specified object fields")]),
    ("uniqueItems", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.tags",
                         {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
     [(f"{SPEC}.properties[tags].uniqueItems",
       "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic")]),
    ("$ref", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.size.$ref", "#/x"),
     [(f"{SPEC}.properties[size].$ref", "Forbidden: $ref is not supported")]),
    ("type name", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.size.type", "int"),
     [(f"{SPEC}.properties[size].type", 'Unsupported value: "int": supported values: "array", "boolean", '
                                        '"integer", "number", "object", "string"')]),
    # the default is validated by a validator rooted at the default: the name is empty, hence " in body"
    ("invalid default", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.size.default", 0),
     [(f"{SPEC}.properties[size].default", "Invalid value: 0:  in body should be greater than or equal to 1")]),
    ("unpruned default", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.default",
                              {"size": 2, "color": "red"}),
     [(f"{SPEC}.default", 'Invalid value: {"color":"red","size":2}: must not have unknown fields')]),
    ("list map keys", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.ports", {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}}),
     [(f"{SPEC}.properties[ports].items.properties[name].default", "Required value: this property is in "
       "x-kubernetes-list-map-keys, so it must have a default or be a required property")]),
    ("bad pattern", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.name",
                         {"type": "string", "pattern": "^(?=a)"}),
     [(f"{SPEC}.properties[name].pattern", 'Invalid value: "^(?=a)": must be a valid regular expression, but '
       "isn't: error parsing regexp: invalid or unsupported Perl syntax: `(?=`")]),
    ("scale paths", _set("spec.versions.0.subresources", {"scale": {
        "specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.replicas",
        "labelSelectorPath": ".metadata.labels"}}),
     [("spec.subresources.scale.specReplicasPath",
       'Invalid value: "spec.replicas": must be a simple json path starting with .'),
      ("spec.subresources.scale.statusReplicasPath", 'Invalid value: ".spec.replicas": should be a json path under .status'),
      ("spec.subresources.scale.labelSelectorPath",
       'Invalid value: ".metadata.labels": should be a json path under either .spec or .status')]),
    ("scale path missing", _set("spec.versions.0.subresources", {"scale": {"specReplicasPath": ".spec.replicas"}}),
     [("spec.subresources.scale.statusReplicasPath", "Required value")]),
    # with a status subresource the root may only be an object
    ("status root type", _both(
        _set("spec.versions.0.subresources", {"status": {}}),
        _set("spec.versions.0.schema.openAPIV3Schema", {"type": "array", "items": {"type": "string"}})),
     [(f"{V}.type", 'Invalid value: "array": only "object" is allowed as the type at the root of the schema if the '
                    "status subresource is enabled"),
      (f"{V}.type", 'Invalid value: "array": must be object at the root')]),
    ("columns", _set("spec.versions.0.additionalPrinterColumns", [
        {"name": "Size", "type": "int", "jsonPath": ".spec.size"}, {"name": "", "type": "string", "jsonPath": ""}]),
     [("spec.additionalPrinterColumns[0].type", 'Invalid value: "int": must be one of boolean,date,integer,number,string'),
      ("spec.additionalPrinterColumns[1].name", "Required value"),
      ("spec.additionalPrinterColumns[1].JSONPath", "Required value")]),
    ("column format", _set("spec.versions.0.additionalPrinterColumns", [
        {"name": "Size", "type": "integer", "format": "uint8", "jsonPath": "spec.size"}]),
     [("spec.additionalPrinterColumns[0].format",
       'Invalid value: "uint8": must be one of byte,date,date-time,double,float,int32,int64,password'),
      ("spec.additionalPrinterColumns[0].JSONPath", 'Invalid value: "spec.size": must be a simple json path starting with .')]),
    ("conversion strategy", _set("spec.conversion", {"strategy": "Magic"}),
     [("spec.conversion.strategy", 'Unsupported value: "Magic": supported values: "None", "Webhook"')]),
    ("webhook conversion", _set("spec.conversion", {"strategy": "Webhook"}),
     [("spec.conversion.webhookClientConfig", "Required value: required when strategy is set to Webhook"),
      ("spec.conversion.conversionReviewVersions", "Required value")]),
    ("protected group", _both(_set("spec.group", "widgets.k8s.io"), _set("metadata.name", "widgets.widgets.k8s.io")),
     [("metadata.annotations[api-approved.kubernetes.io]", 'Required value: protected groups must have approval '
       'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111')]),
    ("preserveUnknownFields", _set("spec.preserveUnknownFields", True),
     [("spec.preserveUnknownFields", "Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-"
       "fields to true in spec.versions[*].schema instead")]),
]


@pytest.mark.parametrize(("mutate", "causes"), [pytest.param(m, c, id=i) for i, m, c in INVALID])
def test_invalid_definitions(mutate: Callable[[dict[str, Any]], None], causes: list[tuple[str, str]]) -> None:
    obj = widget()
    mutate(obj)
    with pytest.raises(ApiError) as info:
        crd.validate_definition(obj, old=None)
    err = info.value
    assert (err.code, err.reason, err.details and err.details["kind"]) == (422, "Invalid", "CustomResourceDefinition")
    assert err.details and err.details["group"] == "apiextensions.k8s.io"
    assert [(c["field"], c["message"]) for c in err.details["causes"]] == causes


VALID = [
    ("widget", lambda o: None),
    # name and generateName are the only restrictions root metadata may carry
    ("metadata name", _set("spec.versions.0.schema.openAPIV3Schema.properties.metadata",
                           {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}})),
    # the int-or-string anyOf pattern is structural
    ("int-or-string", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.port", {
        "x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]})),
    # CEL rules are accepted (and not evaluated)
    ("CEL", _set("spec.versions.0.schema.openAPIV3Schema.x-kubernetes-validations", [{"rule": "self.spec.size > 0"}])),
    ("valid default", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.size.default", 3)),
    ("no versions served", _set("spec.versions.0.served", False)),
    ("embedded resource", _set("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.template", {
        "type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True})),
    ("approved protected group", _both(
        _set("spec.group", "widgets.k8s.io"), _set("metadata.name", "widgets.widgets.k8s.io"),
        _set("metadata.annotations", {"api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/1"}))),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=i) for i, m in VALID])
def test_valid_definitions(mutate: Callable[[dict[str, Any]], None]) -> None:
    obj = widget()
    mutate(obj)
    crd.validate_definition(obj, old=None)


def test_defaults_on_create() -> None:
    obj = widget()
    obj["status"] = {"storedVersions": ["v0"], "conditions": [{"type": "Established", "status": "True"}]}
    crd.validate_definition(obj, old=None)
    # kube-apiserver's defaults, a fresh status recording the storage version, generation 1
    assert obj["spec"]["names"] == {"plural": "widgets", "kind": "Widget", "singular": "widget", "listKind": "WidgetList"}
    assert obj["spec"]["conversion"] == {"strategy": "None"}
    assert obj["status"] == {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}
    assert obj["metadata"]["generation"] == 1


def _stored(obj: dict[str, Any]) -> dict[str, Any]:
    crd.validate_definition(obj, old=None)
    obj["status"] = crd.established_status(obj)
    return obj


UPDATES = [
    # the group (part of the name) never changes
    ("group", _set("spec.group", "example.org"), [("spec.group", 'Invalid value: "example.org": field is immutable')]),
    ("plural", _set("spec.names.plural", "gadgets"),
     [("spec.names.plural", 'Invalid value: "gadgets": field is immutable')]),
    # scope and kind are fixed once the CRD is Established
    ("scope", _set("spec.scope", "Cluster"), [("spec.scope", 'Invalid value: "Cluster": field is immutable')]),
    ("kind", _both(_set("spec.names.kind", "Gadget"), _set("spec.names.listKind", "GadgetList")),
     [("spec.names.kind", 'Invalid value: "Gadget": field is immutable')]),
    # v1 was stored: it must stay in spec.versions (status.storedVersions becomes [v1, v2])
    ("drop stored version", _set("spec.versions", [_version("v2", storage=True)]),
     [("status.storedVersions[0]", 'Invalid value: "v1": missing from spec.versions; v1 was previously a storage '
       "version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1 "
       "and removes v1 from status.storedVersions")]),
]


@pytest.mark.parametrize(("mutate", "causes"), [pytest.param(m, c, id=i) for i, m, c in UPDATES])
def test_invalid_updates(mutate: Callable[[dict[str, Any]], None], causes: list[tuple[str, str]]) -> None:
    old = _stored(widget())
    new = copy.deepcopy(old)
    mutate(new)
    with pytest.raises(ApiError) as info:
        crd.validate_definition(new, old=old)
    assert info.value.details is not None
    assert [(c["field"], c["message"]) for c in info.value.details["causes"]] == causes


def test_update_keeps_status_and_counts_generations() -> None:
    old = _stored(widget())
    new = copy.deepcopy(old)
    new["spec"]["versions"] = [_version("v1", storage=False), _version("v2", storage=True)]
    new["status"] = {}
    crd.validate_definition(new, old=old)
    # the status is the stored one plus the new storage version; a spec change bumps generation 1 -> 2
    assert new["status"]["storedVersions"] == ["v1", "v2"]
    assert new["status"]["acceptedNames"] == old["status"]["acceptedNames"]
    assert new["metadata"]["generation"] == 2
    again = copy.deepcopy(new)
    crd.validate_definition(again, old=new)
    assert again["metadata"]["generation"] == 2  # same spec: same generation


def test_undecodable_body_is_400() -> None:
    obj = widget()
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]["type"] = 5
    with pytest.raises(ApiError) as info:
        crd.validate_definition(obj, old=None)
    assert info.value.code == 400
    assert info.value.message == (
        'CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: json: cannot '
        "unmarshal number into Go struct field JSONSchemaProps.spec.versions.schema.openAPIV3Schema.properties.spec."
        "properties.size.type of type string")


def test_hostile_schema_depth() -> None:
    """A 20,000-deep schema is judged (here: valid) without recursion errors."""
    obj = widget()
    node: dict[str, Any] = {"type": "object"}
    deep = node
    for _ in range(20_000):
        child: dict[str, Any] = {"type": "object"}
        node["properties"] = {"x": child}
        node = child
    _spec_props(obj)["deep"] = deep
    crd.validate_definition(obj, old=None)
    node.pop("type")
    with pytest.raises(ApiError) as info:
        crd.validate_definition(widget() | {"spec": obj["spec"]}, old=None)
    assert info.value.details is not None
    (cause,) = info.value.details["causes"]
    assert cause["field"].endswith("properties[x].type") and cause["field"].count("properties[x]") == 20_000


# ---- status: names accepted, established ------------------------------------------------------------

def test_established_status() -> None:
    obj = widget()
    obj["spec"]["names"]["shortNames"] = ["wd"]
    crd.validate_definition(obj, old=None)
    status = crd.established_status(obj)
    conds = {c["type"]: c for c in status["conditions"]}
    assert [c["type"] for c in status["conditions"]] == ["NamesAccepted", "Established"]
    assert (conds["NamesAccepted"]["status"], conds["NamesAccepted"]["reason"], conds["NamesAccepted"]["message"]) == \
        ("True", "NoConflicts", "no conflicts found")
    assert (conds["Established"]["status"], conds["Established"]["reason"], conds["Established"]["message"]) == \
        ("True", "InitialNamesAccepted", "the initial names have been accepted")
    assert all(c["lastTransitionTime"].endswith("Z") for c in status["conditions"])
    assert status["acceptedNames"] == {"plural": "widgets", "singular": "widget", "shortNames": ["wd"],
                                       "kind": "Widget", "listKind": "WidgetList"}
    assert status["storedVersions"] == ["v1"]


def _other(group: str, **names: Any) -> dict[str, Any]:
    accepted = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList", **names}
    return {"spec": {"group": group}, "status": {"acceptedNames": accepted}}


CONFLICTS = [
    # (other CRD's accepted names, expected message, expected reason)
    (_other("example.com", shortNames=["wd"]), '"wd" is already in use', "ShortNamesConflict"),
    (_other("example.com", plural="widgets"), '"widgets" is already in use', "PluralConflict"),
    (_other("example.com", kind="Widget"), '"Widget" is already in use', "KindConflict"),
    # the last clash wins: the kind is checked after the plural
    (_other("example.com", plural="widgets", listKind="WidgetList"), '"WidgetList" is already in use',
     "ListKindConflict"),
    (_other("example.org", plural="widgets", shortNames=["wd"]), None, None),  # another group: no conflict
]


@pytest.mark.parametrize(("other", "message", "reason"), CONFLICTS)
def test_names_conflict(other: dict[str, Any], message: str | None, reason: str | None) -> None:
    obj = widget()
    obj["spec"]["names"]["shortNames"] = ["wd"]
    crd.validate_definition(obj, old=None)
    assert crd.names_conflict(obj, existing=[other]) == message
    status = crd.established_status(obj, existing=[other])
    conds = {c["type"]: c for c in status["conditions"]}
    if reason is None:
        assert conds["Established"]["status"] == "True"
        return
    assert (conds["NamesAccepted"]["status"], conds["NamesAccepted"]["reason"], conds["NamesAccepted"]["message"]) == \
        ("False", reason, message)
    assert (conds["Established"]["status"], conds["Established"]["reason"], conds["Established"]["message"]) == \
        ("False", "NotAccepted", "not all names are accepted")


def test_protected_group_gets_the_approval_condition() -> None:
    obj = widget()
    obj["spec"]["group"], obj["metadata"]["name"] = "widgets.k8s.io", "widgets.widgets.k8s.io"
    obj["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, experimental"}
    crd.validate_definition(obj, old=None)
    conds = {c["type"]: c for c in crd.established_status(obj)["conditions"]}
    approval = conds["KubernetesAPIApprovalPolicyConformant"]
    assert (approval["status"], approval["reason"], approval["message"]) == \
        ("False", "UnapprovedAnnotation", 'not approved: "unapproved, experimental"')


# ---- served resource types ------------------------------------------------------------------------------

def test_resource_types_of_a_two_version_crd() -> None:
    obj = widget()
    obj["spec"]["scope"] = "Cluster"
    obj["spec"]["names"].update(shortNames=["wd"], categories=["all", "toys"])
    v1 = _version("v1", storage=True)
    v1["subresources"] = {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                  "statusReplicasPath": ".status.replicas",
                                                  "labelSelectorPath": ".status.selector"}}
    v1["additionalPrinterColumns"] = [{"name": "Size", "type": "integer", "jsonPath": ".spec.size", "priority": 1}]
    beta = _version("v1beta1", storage=False)
    alpha = _version("v1alpha1", storage=False, served=False)
    obj["spec"]["versions"] = [v1, beta, alpha]
    rts = crd.resource_types(_stored(obj))
    # v1alpha1 is not served; v1 and v1beta1 share names and differ in subresources and columns
    assert [(r.group, r.version, r.plural, r.kind, r.key) for r in rts] == [
        ("example.com", "v1", "widgets", "Widget", "widgets.example.com"),
        ("example.com", "v1beta1", "widgets", "Widget", "widgets.example.com")]
    one, beta_rt = rts
    assert (one.namespaced, one.short_names, one.categories, one.singular) == (False, ("wd",), ("all", "toys"), "widget")
    assert (one.subresources, one.status_split, one.generation, one.custom) == (("status", "scale"), True, True, True)
    assert one.scale == ScalePaths(spec_replicas=".spec.replicas", status_replicas=".status.replicas",
                                   label_selector=".status.selector")
    assert one.columns == ({"name": "Size", "type": "integer", "format": "", "description": "", "priority": 1,
                            "jsonPath": ".spec.size"},)
    assert isinstance(one.schema, StructuralSchema) and one.schema.version == "v1"
    assert (beta_rt.subresources, beta_rt.status_split, beta_rt.scale, beta_rt.columns) == ((), False, None, ())
    assert beta_rt.generation and beta_rt.custom


# ---- scheduler-plugins' PodGroup ------------------------------------------------------------------------------

def test_podgroup_crd_is_accepted_and_served() -> None:
    obj = _stored(podgroup_crd())
    (rt,) = crd.resource_types(obj)
    assert (rt.key, rt.kind, rt.version, rt.namespaced) == ("podgroups.scheduling.x-k8s.io", "PodGroup", "v1alpha1", True)
    assert (rt.short_names, rt.singular, rt.subresources, rt.status_split) == (("pg", "pgs"), "podgroup", ("status",), True)
    assert [c["name"] for c in rt.columns] == ["Phase", "MinMember", "Running", "Succeeded", "Failed", "Age"]
    assert obj["status"]["acceptedNames"]["listKind"] == "PodGroupList"


def _admit(obj: dict[str, Any], *, field_validation: str = "Strict", subresource: str = "") -> list[str]:
    (rt,) = crd.resource_types(_stored(podgroup_crd()))
    assert isinstance(rt.schema, StructuralSchema)
    return rt.schema.admit(obj, field_validation=field_validation, subresource=subresource)


def test_podgroups_as_scheduler_plugins_writes_them() -> None:
    # the coscheduling README's PodGroup
    readme = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": "nginx"},
              "spec": {"scheduleTimeoutSeconds": 10, "minMember": 3}}
    assert _admit(readme) == []
    # Go's client marshals a fresh PodGroup with null creationTimestamp and scheduleStartTime (a struct, not
    # omitted); the null status field is dropped since the schema does not allow it
    from_go = {"kind": "PodGroup", "apiVersion": "scheduling.x-k8s.io/v1alpha1",
               "metadata": {"name": "nginx", "namespace": "default", "creationTimestamp": None},
               "spec": {"minMember": 3, "minResources": {"cpu": "3", "memory": "1Gi", "nvidia.com/gpu": 2}},
               "status": {"scheduleStartTime": None}}
    assert _admit(from_go) == []
    assert from_go["status"] == {}
    # the PodGroup controller's status update
    status = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": "nginx"},
              "spec": {"minMember": 3},
              "status": {"phase": "Scheduling", "occupiedBy": "default/nginx", "running": 1, "succeeded": 1,
                         "failed": 0, "scheduleStartTime": "2024-05-01T10:00:00Z"}}
    assert _admit(status, subresource="status") == []


PODGROUP_INVALID = [
    ({"spec": {"minMember": 0}},
     [("spec.minMember", "Invalid value: 0: spec.minMember in body should be greater than or equal to 1")]),
    ({"spec": {"minMember": "three"}},
     [("spec.minMember", 'Invalid value: "string": spec.minMember in body must be of type integer: "string"')]),
    # minResources values are quantities: an int or a string matching the quantity pattern
    ({"spec": {"minResources": {"cpu": "lots"}}},
     [("spec.minResources.cpu", "Invalid value: \"lots\": spec.minResources.cpu in body should match '^(\\+|-)?(([0-9]+"
       "(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$'")]),
    ({"status": {"scheduleStartTime": "yesterday"}},
     [("status.scheduleStartTime",
       'Invalid value: "yesterday": status.scheduleStartTime in body must be of type date-time: "yesterday"')]),
]


@pytest.mark.parametrize(("body", "causes"), PODGROUP_INVALID)
def test_invalid_podgroups(body: dict[str, Any], causes: list[tuple[str, str]]) -> None:
    obj = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": "pg"}, **body}
    with pytest.raises(ApiError) as info:
        _admit(obj)
    assert info.value.details is not None
    assert (info.value.code, info.value.details["kind"], info.value.details["group"]) == \
        (422, "PodGroup", "scheduling.x-k8s.io")
    assert [(c["field"], c["message"]) for c in info.value.details["causes"]] == causes


def test_podgroup_phase_enum() -> None:
    """Upstream's CRD leaves phase a free string; restricted to the Go constants it reports the value."""
    obj = podgroup_crd()
    phase = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]
    phase["enum"] = ["Pending", "Scheduling", "Running", "Finished", "Failed", "Unknown"]
    (rt,) = crd.resource_types(_stored(obj))
    assert rt.schema is not None
    body = {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": "pg"},
            "status": {"phase": "Bogus"}}
    with pytest.raises(ApiError) as info:
        rt.schema.admit(body, field_validation="Strict")
    assert info.value.details is not None
    assert [(c["field"], c["message"]) for c in info.value.details["causes"]] == [
        ("status.phase", 'Unsupported value: "Bogus": supported values: "Pending", "Scheduling", "Running", '
                         '"Finished", "Failed", "Unknown"')]
