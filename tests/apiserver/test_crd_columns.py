"""Server-side printing of custom resources: scheduler-plugins' PodGroup columns and cells as
``kubectl get podgroups`` receives them, and the JSONPath subset printer columns use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from scheduler.apiserver import crd
from scheduler.apiserver.crd_columns import JsonPathError, evaluate_jsonpath, parse_jsonpath
from scheduler.apiserver.resources import ResourceType, make_type

from .test_crd_definition import _stored, podgroup_crd

NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some resources may "
            "allow a client to request the generation of an appropriate name automatically. Name is primarily intended "
            "for creation idempotence and configuration definition. Cannot be updated. More info: "
            "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")


def _ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


@pytest.fixture(scope="module")
def podgroups() -> ResourceType:
    (rt,) = crd.resource_types(_stored(podgroup_crd()))
    return rt


def test_podgroup_columns(podgroups: ResourceType) -> None:
    # Name first, then the CRD's columns as declared (its own Age among them; no extra Age is added)
    assert crd.table_columns(podgroups) == [
        {"name": "Name", "type": "string", "format": "name", "description": NAME_DOC, "priority": 0},
        {"name": "Phase", "type": "string", "format": "", "description": "Current phase of PodGroup.", "priority": 0},
        {"name": "MinMember", "type": "integer", "format": "",
         "description": "MinMember defines the minimal number of members/tasks to run the pod group.", "priority": 0},
        {"name": "Running", "type": "integer", "format": "", "description": "The number of actively running pods.",
         "priority": 0},
        {"name": "Succeeded", "type": "integer", "format": "",
         "description": "The number of pods which reached phase Succeeded.", "priority": 0},
        {"name": "Failed", "type": "integer", "format": "", "description": "The number of pods which reached phase Failed.",
         "priority": 0},
        {"name": "Age", "type": "date", "format": "", "description": "Age is the time PodGroup was created.",
         "priority": 0},
    ]


def _pg(status: dict[str, Any] | None = None, created: str | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "nginx", "namespace": "default",
                         "creationTimestamp": created if created is not None else _ago(600)},
            "spec": spec, **({"status": status} if status is not None else {})}


# Built when the test runs (a lambda each), not at collection: the ages count from now.
CELLS: list[tuple[Callable[[], dict[str, Any]], list[Any]]] = [
    # (object, cells) — Name, Phase, MinMember, Running, Succeeded, Failed, Age; created 600 s ago is "10m"
    (lambda: _pg({"phase": "Running", "running": 3, "succeeded": 1}, minMember=3), ["nginx", "Running", 3, 3, 1, None, "10m"]),
    # a fresh PodGroup has no status: those cells are null (kubectl prints <none>)
    (lambda: _pg(minMember=2), ["nginx", None, 2, None, None, None, "10m"]),
    # integer columns truncate floats; a string column prints any value as text
    (lambda: _pg({"phase": 5, "failed": 2.9}, minMember=3.0), ["nginx", "5", 3, None, None, 2, "10m"]),
    (lambda: _pg({"phase": {"a": [1, "<b>"]}}), ["nginx", '{"a":[1,"\\u003cb\\u003e"]}', None, None, None, None, "10m"]),
    # a JSON null in a string column prints as Go's text/template does; elsewhere it is null
    (lambda: _pg({"phase": None, "running": None}), ["nginx", "<no value>", None, None, None, None, "10m"]),
    # a non-number in an integer column is null
    (lambda: _pg({"running": "3"}), ["nginx", None, None, None, None, None, "10m"]),
    # ages: 5 hours, more than 8 years, no time, an unparseable time, a time in the future
    (lambda: _pg(created=_ago(5 * 3600)), ["nginx", None, None, None, None, None, "5h"]),
    (lambda: _pg(created=_ago(9 * 365 * 86400 + 3600)), ["nginx", None, None, None, None, None, "9y"]),
    (lambda: _pg(created=""), ["nginx", None, None, None, None, None, "<unknown>"]),
    (lambda: _pg(created="yesterday"), ["nginx", None, None, None, None, None, "<invalid>"]),
    (lambda: _pg(created=_ago(-3600)), ["nginx", None, None, None, None, None, "<invalid>"]),
]


@pytest.mark.parametrize(("obj", "cells"), CELLS)
def test_podgroup_cells(podgroups: ResourceType, obj: Callable[[], dict[str, Any]], cells: list[Any]) -> None:
    assert crd.table_cells(podgroups, obj()) == cells


def _custom(columns: tuple[dict[str, Any], ...]) -> ResourceType:
    return make_type(plural="widgets", kind="Widget", group="example.com", version="v1", namespaced=True,
                     custom=True, columns=columns)


def test_no_columns_means_name_and_age() -> None:
    rt = _custom(())
    assert [(c["name"], c["type"], c["format"]) for c in crd.table_columns(rt)] == [("Name", "string", "name"),
                                                                                ("Age", "date", "")]
    assert crd.table_columns(rt)[1]["description"].startswith("CreationTimestamp is a timestamp representing")
    assert crd.table_cells(rt, {"metadata": {"name": "w", "creationTimestamp": _ago(600)}}) == ["w", "10m"]


def test_column_defaults_and_types() -> None:
    rt = _custom((
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status', "priority": 1},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
        {"name": "Broken", "type": "string", "jsonPath": ".spec..deep"},  # unparseable: it and later columns go
        {"name": "Later", "type": "string", "jsonPath": ".spec.x"},
    ))
    assert [(c["name"], c["description"], c["priority"]) for c in crd.table_columns(rt)][1:] == [
        ("Ready", 'Custom resource definition column (in JSONPath format): .status.conditions[?(@.type=="Ready")].status', 1),
        ("Ratio", "Custom resource definition column (in JSONPath format): .spec.ratio", 0),
        ("On", "Custom resource definition column (in JSONPath format): .spec.on", 0)]
    obj = {"metadata": {"name": "w"}, "spec": {"ratio": 2, "on": "yes"},
           "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    # number columns turn integers into floats; a non-bool in a boolean column is null
    assert crd.table_cells(rt, obj) == ["w", "True", 2.0, None]


DOC = {"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
       "spec": {"minMember": 3, "list": [10, 20, 30], "empty": None},
       "status": {"conditions": [{"type": "A", "status": "True", "n": 1}, {"type": "B", "status": "False", "n": 2}]}}

JSONPATHS = [
    (".spec.minMember", [3]),
    ("{.spec.minMember}", [3]),          # the form kubectl's -o jsonpath and printer columns are parsed in
    ("{.status.conditions[0].type}", ["A"]),
    (".status.conditions[-1].type", ["B"]),
    (".status.conditions[*].type", ["A", "B"]),
    (".spec.list[1:]", [20, 30]),
    (".status.conditions[?(@.type==\"B\")].status", ["False"]),
    (".status.conditions[?(@.n > 1)].type", ["B"]),
    (".status.conditions[?(@.missing)].type", []),
    (".metadata.labels['app.kubernetes.io/name']", ["web"]),
    (".spec.missing", []),               # missing keys select nothing
    (".spec.empty", [None]),             # a null is selected (and printed as such)
    (".spec.empty.deeper", []),
]


@pytest.mark.parametrize(("path", "found"), JSONPATHS)
def test_jsonpath(path: str, found: list[Any]) -> None:
    assert evaluate_jsonpath(parse_jsonpath(path), DOC) == found


@pytest.mark.parametrize("path", [".spec..x", ".spec.list[1", ".spec.list[a]", "spec"])
def test_jsonpath_parse_errors(path: str) -> None:
    with pytest.raises(JsonPathError):
        parse_jsonpath(path)


@pytest.mark.parametrize("path", [".spec.list[7]", ".spec.minMember.x", ".spec.minMember[0]"])
def test_jsonpath_evaluation_errors(path: str) -> None:
    # out-of-range indexes and fields of scalars are errors upstream too; a printer cell is then null
    with pytest.raises(JsonPathError):
        evaluate_jsonpath(parse_jsonpath(path), DOC)
