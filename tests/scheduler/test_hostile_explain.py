"""`vecsched explain` on hostile files: one clear line and exit 2, never a traceback.

One table per class of defect a review found: nesting too deep for a recursive parser,
a `metadata` or `spec` that is not a mapping, integers of 2^63 and more, a port's
`protocol` that is not a string, a YAML integer key, and a value so long that echoing
it would flood the terminal. Every case runs the command's `main` on files in a
temporary directory and asserts exit 2, one line of at most 300 characters, naming the
file, the object and the field.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.cli import main

MAX_LINE = 300

NODE: dict[str, Any] = {"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": "n1", "labels": {"disktype": "ssd"}},
                        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                   "images": [{"names": ["web:1"], "sizeBytes": 1000}]}}
POD: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
                       "spec": {"containers": [{"name": "c", "image": "web:1",
                                                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
                                "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                                    {"weight": 10, "preference": {"matchExpressions": [
                                        {"key": "disktype", "operator": "In", "values": ["ssd"]}]}}]}}}}
CONFIG = ("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
          "profiles:\n- schedulerName: default-scheduler\n  plugins:\n    score:\n      enabled:\n"
          "      - {name: NodeAffinity, weight: WEIGHT}\n")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files named as a user names them, in the current directory (pytest's own paths are long)."""
    monkeypatch.chdir(tmp_path)


def _explain(tmp_path: Path, capsys: pytest.CaptureFixture[str], *, snapshot: str | None = None,
             pod: str | None = None, config: str | None = None, suffix: str = "json") -> tuple[int, str]:
    """Exit code and stderr of `vecsched explain` on the given file texts (the defaults where None)."""
    (tmp_path / f"s.{suffix}").write_text(snapshot if snapshot is not None
                                          else json.dumps({"kind": "List", "items": [NODE]}))
    (tmp_path / f"p.{suffix}").write_text(pod if pod is not None else json.dumps(POD))
    argv = ["explain", "--snapshot", f"s.{suffix}", "--pod", f"p.{suffix}", "-o", "json"]
    if config is not None:
        (tmp_path / "c.yaml").write_text(config)
        argv += ["--config", "c.yaml"]
    code = main(argv)
    return code, capsys.readouterr().err


def _assert_one_line(code: int, err: str, *parts: str) -> None:
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert len(err) - 1 <= MAX_LINE, err
    for part in parts:
        assert part in err, err


def _with(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``value`` at ``path``."""
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _list(*items: dict[str, Any]) -> str:
    return json.dumps({"kind": "List", "items": [NODE, *items]})


DEEP = 100_000
"""Far past Python's recursion limit (1,000): what made the parsers and walkers overflow."""


@pytest.mark.parametrize(("files", "suffix", "parts"), [
    pytest.param({"snapshot": "[" * DEEP + "]" * DEEP}, "json", ("s.json: nested deeper than 100 levels",),
                 id="json-snapshot-list"),
    pytest.param({"snapshot": '{"a": ' * DEEP + "1" + "}" * DEEP}, "json", ("s.json: nested deeper than 100 levels",),
                 id="json-snapshot-object"),
    pytest.param({"snapshot": "a: " + "[" * DEEP + "]" * DEEP + "\n"}, "yaml", ("s.yaml: nested deeper than 100 levels",),
                 id="yaml-snapshot"),
    pytest.param({"pod": "[" * DEEP + "]" * DEEP}, "json", ("p.json: nested deeper than 100 levels",), id="json-pod"),
    pytest.param({"config": "a: " + "[" * DEEP + "]" * DEEP + "\n"}, "json", ("c.yaml: nested deeper than 100 levels",),
                 id="yaml-config"),
    # 101 levels: one past the limit, still far below the recursion limit (the limit itself, not
    # the parser, refuses it).
    pytest.param({"pod": json.dumps(_with(POD, ("metadata", "labels"), json.loads('{"a": ' * 99 + "1" + "}" * 99)))},
                 "json", ("p.json: metadata.labels.a.a", "nested deeper than 100 levels"), id="pod-101-levels"),
])
def test_deep_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], suffix: str,
                      parts: tuple[str, ...]) -> None:
    code, err = _explain(tmp_path, capsys, suffix=suffix, **files)
    _assert_one_line(code, err, *parts)


WITH_SPEC = ["Namespace", "Service", "ReplicaSet", "StatefulSet", "ReplicationController", "PodDisruptionBudget",
             "PodGroup", "PersistentVolume", "PersistentVolumeClaim", "CSINode"]
WITHOUT_SPEC = ["PriorityClass", "StorageClass"]  # their fields are top-level


@pytest.mark.parametrize(("kind", "field", "value", "expect"), [
    *(pytest.param(kind, "metadata", ["x"], "metadata: expected a", id=f"{kind}-metadata-list")
      for kind in WITH_SPEC + WITHOUT_SPEC),
    *(pytest.param(kind, "metadata", "x", "metadata: expected a", id=f"{kind}-metadata-string")
      for kind in WITH_SPEC + WITHOUT_SPEC),
    *(pytest.param(kind, "spec", 7, "spec: expected a", id=f"{kind}-spec-number") for kind in WITH_SPEC),
    *(pytest.param(kind, "spec", [], "spec: expected a", id=f"{kind}-spec-list") for kind in WITH_SPEC),
])
def test_metadata_or_spec_not_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, field: str,
                                        value: Any, expect: str) -> None:
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": "x", "namespace": "shop"}}
    if kind in WITH_SPEC:
        obj["spec"] = {}
    if kind == "PriorityClass":
        obj["value"] = 1000
    obj[field] = value
    code, err = _explain(tmp_path, capsys, snapshot=_list(obj))
    # "items[1]": the node is items[0]; the object is named by kind (and name, when metadata has one).
    _assert_one_line(code, err, "s.json: items[1]: ", expect)
    assert kind.lower() in err.lower(), err


TOO_BIG = 2**63  # int64's largest is 2^63 - 1


@pytest.mark.parametrize(("files", "parts"), [
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "affinity", "nodeAffinity",
                                                "preferredDuringSchedulingIgnoredDuringExecution", 0, "weight"), TOO_BIG))},
                 ("pod shop/web: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
                  "9223372036854775808 is out of int64 range"), id="preferred-affinity-weight"),
    pytest.param({"config": CONFIG.replace("WEIGHT", str(TOO_BIG))},
                 ("c.yaml: profiles[0].plugins.score.enabled[0].weight", "9223372036854775808 is out of int64 range"),
                 id="config-score-weight"),
    pytest.param({"config": CONFIG.replace("WEIGHT", str(2**31))},
                 # Plugin.Weight is an int32 upstream: 2^31 = 2147483648 does not decode.
                 ("c.yaml: profiles[0].plugins.score.enabled[0].weight", "must be <= 2147483647"),
                 id="config-score-weight-int32"),
    pytest.param({"snapshot": json.dumps({"kind": "List", "items": [
        _with(NODE, ("status", "images", 0, "sizeBytes"), TOO_BIG)]})},
                 ("s.json: items[0]: node n1: status.images[0].sizeBytes", "out of int64 range"), id="image-size-bytes"),
    pytest.param({"snapshot": json.dumps({"kind": "List", "items": [
        _with(NODE, ("status", "images", 0, "sizeBytes"), -(2**63) - 1)]})},
                 ("node n1: status.images[0].sizeBytes", "out of int64 range"), id="image-size-bytes-negative"),
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "priority"), 2**31))},
                 # Pod.spec.priority is an int32: 2^31 is one past its largest.
                 ("pod shop/web: spec.priority", "2147483648 is out of the int32 range"), id="pod-priority"),
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "containers", 0, "resources", "requests", "cpu"), 10**40))},
                 ("pod shop/web: spec.containers[0].resources.requests.cpu", "out of int64 range"), id="quantity-number"),
])
def test_integers_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str],
                               parts: tuple[str, ...]) -> None:
    code, err = _explain(tmp_path, capsys, **files)
    _assert_one_line(code, err, *parts)


def _port(**fields: Any) -> str:
    return json.dumps(_with(POD, ("spec", "containers", 0, "ports"), [{"containerPort": 80, "hostPort": 8080, **fields}]))


@pytest.mark.parametrize(("pod", "parts"), [
    pytest.param(_port(protocol=["TCP"]), ("spec.containers[0].ports[0].protocol", "expected a string, got ['TCP']"),
                 id="protocol-list"),
    pytest.param(_port(protocol={"a": 1}), ("spec.containers[0].ports[0].protocol", "expected a string"),
                 id="protocol-map"),
    pytest.param(_port(protocol=6), ("spec.containers[0].ports[0].protocol", "expected a string, got 6"),
                 id="protocol-number"),
    pytest.param(_port(hostIP=["0.0.0.0"]), ("spec.containers[0].ports[0].hostIP", "expected a string"), id="host-ip-list"),
    pytest.param(_port(hostPort="80"), ("spec.containers[0].ports[0].hostPort", "expected a port number"),
                 id="host-port-string"),
    pytest.param(json.dumps(_with(POD, ("spec", "containers", 0, "image"), {"name": "web"})),
                 ("spec.containers[0].image", "expected a string"), id="image-map"),
    pytest.param(json.dumps(_with(POD, ("spec", "schedulerName"), ["vecsched"])),
                 ("spec.schedulerName", "expected a string"), id="scheduler-name-list"),
])
def test_fields_of_the_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str], pod: str,
                                  parts: tuple[str, ...]) -> None:
    code, err = _explain(tmp_path, capsys, pod=pod)
    _assert_one_line(code, err, "p.json: pod shop/web: ", *parts)


POD_YAML = """apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: LABELS}
spec:
  containers:
  - name: c
    resources:
      requests: REQUESTS
"""


@pytest.mark.parametrize(("labels", "requests", "parts"), [
    pytest.param("{app: web}", "{1: 2}", ("spec.containers[0].resources.requests", "key 1 is not a string"),
                 id="integer-key-in-requests"),
    pytest.param("{app: web}", "{cpu: 1, 2.5: x}", ("spec.containers[0].resources.requests", "key 2.5 is not a string"),
                 id="float-key-in-requests"),
    pytest.param("{7: web}", "{cpu: 1}", ("metadata.labels", "key 7 is not a string"), id="integer-key-in-labels"),
    pytest.param("{yes: web}", "{cpu: 1}", ("metadata.labels", "key True is not a string"), id="boolean-key-in-labels"),
])
def test_yaml_keys_that_are_not_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str], labels: str,
                                        requests: str, parts: tuple[str, ...]) -> None:
    pod = POD_YAML.replace("LABELS", labels).replace("REQUESTS", requests)
    code, err = _explain(tmp_path, capsys, pod=pod, suffix="yaml",
                         snapshot=json.dumps({"kind": "List", "items": [NODE]}))
    _assert_one_line(code, err, "p.yaml: pod shop/web: ", *parts)


TEN_MB = 10_000_000


@pytest.mark.parametrize(("files", "parts"), [
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "containers", 0, "resources", "requests", "cpu"),
                                          "1" * TEN_MB))},
                 ("pod shop/web: spec.containers[0].resources.requests.cpu", "(10,000,000 characters)"),
                 id="quantity-10MB"),
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "containers", 0, "resources", "requests", "cpu"),
                                          "x" * TEN_MB))},
                 ("pod shop/web: spec.containers[0].resources.requests.cpu", "(10,000,000 characters)"),
                 id="garbage-quantity-10MB"),
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "containers", 0, "ports"),
                                          [{"hostPort": 80, "protocol": ["x" * TEN_MB]}]))},
                 ("spec.containers[0].ports[0].protocol", "expected a string"), id="list-of-a-10MB-string"),
    pytest.param({"snapshot": json.dumps({"kind": "List", "items": [NODE, {"kind": "x" * TEN_MB}]})},
                 ("s.json: items[1]: kind:", "(10,000,000 characters)"), id="kind-10MB"),
    pytest.param({"pod": json.dumps(_with(_with(POD, ("metadata", "name"), "w" * TEN_MB),
                                          ("spec", "schedulerName"), 1))},
                 ("p.json: pod shop/www", "spec.schedulerName: expected a string, got 1"), id="name-10MB"),
    pytest.param({"pod": "{" + '"' + "k" * TEN_MB + '": 1}'}, ("p.json",), id="key-10MB"),
    pytest.param({"pod": json.dumps(_with(POD, ("spec", "priority"), 1)).replace('"priority": 1',
                                                                                  '"priority": ' + "9" * 5000)},
                 ("p.json", "a number too long to read"), id="integer-of-5000-digits"),
])
def test_long_values_are_quoted_by_a_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            files: dict[str, str], parts: tuple[str, ...]) -> None:
    code, err = _explain(tmp_path, capsys, **files)
    _assert_one_line(code, err, *parts)


def test_an_int64_weight_outside_upstreams_range_is_the_plugins_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """2^62 fits int64, so the pod is read; NodeAffinity refuses the term as upstream's PreScore
    does (range 0-100), and the pod fits nowhere, with that reason -- an answer, not a crash."""
    pod = _with(POD, ("spec", "affinity", "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution", 0,
                      "weight"), 2**62)
    (tmp_path / "s.json").write_text(json.dumps({"kind": "List", "items": [NODE]}))
    (tmp_path / "p.json").write_text(json.dumps(pod))
    assert main(["explain", "--snapshot", "s.json", "--pod", "p.json", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # 2^62 = 4611686018427387904
    assert out["nodes"]["n1"]["reasons"] == [
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
        "Invalid value: 4611686018427387904: must be in the range 0-100"]
