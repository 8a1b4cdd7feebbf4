"""scoring.priorities: PriorityClasses read from JSON and pods resolved as the Priority admission plugin does."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.objects import ObjectError
from scoring.priorities import (
    SYSTEM_CLASSES,
    PriorityClass,
    PriorityClasses,
    priority_class_from_json,
)


def _class(name: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **extra}


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c"}], **spec}}


# The classes of every resolution case below, besides the built-in ones.
_CLASSES = [PriorityClass("batch", 10), PriorityClass("urgent", 1000, preemption_policy="Never"),
            PriorityClass("fallback", 7, global_default=True)]

# pod spec -> (spec.priority, spec.priorityClassName, spec.preemptionPolicy) after resolution
RESOLVE_CASES = [
    # the named class gives its value and its (defaulted) policy
    pytest.param({"priorityClassName": "batch"}, (10, "batch", "PreemptLowerPriority"), id="class"),
    pytest.param({"priorityClassName": "urgent"}, (1000, "urgent", "Never"), id="class-policy"),
    # no class named: the globalDefault class, whose name admission writes into the pod
    pytest.param({}, (7, "fallback", "PreemptLowerPriority"), id="global-default"),
    # built-in classes: system-cluster-critical = SystemCriticalPriority = 2 * 10^9,
    # system-node-critical = 2 * 10^9 + 1000
    pytest.param({"priorityClassName": "system-cluster-critical"},
                 (2_000_000_000, "system-cluster-critical", "PreemptLowerPriority"), id="system-cluster-critical"),
    pytest.param({"priorityClassName": "system-node-critical"},
                 (2_000_001_000, "system-node-critical", "PreemptLowerPriority"), id="system-node-critical"),
    # spec.priority equal to the class's value, and a policy equal to the class's: accepted
    pytest.param({"priorityClassName": "urgent", "priority": 1000, "preemptionPolicy": "Never"},
                 (1000, "urgent", "Never"), id="both-agree"),
    # spec.priority without a class name: kept (a hand-written snapshot, a CSV trace), the
    # default class's 7 not applied
    pytest.param({"priority": 42}, (42, None, None), id="priority-given-directly"),
    # spec.priority with a class the input does not list: kept (an exported pod, the classes left out)
    pytest.param({"priorityClassName": "elsewhere", "priority": 3}, (3, "elsewhere", None), id="unlisted-class"),
]


@pytest.mark.parametrize(("spec", "want"), RESOLVE_CASES)
def test_resolve(spec: dict[str, Any], want: tuple[int, str | None, str | None]) -> None:
    out = PriorityClasses(_CLASSES).resolve(_pod(**spec), "pod ns/p")["spec"]
    assert (out.get("priority"), out.get("priorityClassName"), out.get("preemptionPolicy")) == want


def test_no_default_class_gives_zero_and_leaves_the_policy() -> None:
    # upstream's DefaultPriorityWhenNoDefaultClassExists: 0; no class, so no policy from one
    out = PriorityClasses().resolve(_pod(), "pod ns/p")["spec"]
    assert out["priority"] == 0 and "priorityClassName" not in out and "preemptionPolicy" not in out


@pytest.mark.parametrize(("defaults", "want"), [
    # two globalDefault classes: admission's getDefaultPriorityClass takes the lowest value, 200 < 300
    pytest.param([("a-default", 300), ("b-default", 200)], ("b-default", 200), id="lowest-value"),
    # equal values: the first name in sort order, "a" < "b"
    pytest.param([("b-default", 5), ("a-default", 5)], ("a-default", 5), id="tie-by-name"),
    # a negative value is still lower: -5 < 0
    pytest.param([("zero", 0), ("negative", -5)], ("negative", -5), id="negative"),
])
def test_several_global_defaults(defaults: list[tuple[str, int]], want: tuple[str, int]) -> None:
    classes = PriorityClasses([PriorityClass(n, v, global_default=True) for n, v in defaults])
    out = classes.resolve(_pod(), "pod ns/p")["spec"]
    assert (out["priorityClassName"], out["priority"]) == want


# pod spec -> the one-line error (ObjectError: object, field, problem)
REFUSED_CASES = [
    pytest.param({"priorityClassName": "gold"},
                 "pod ns/p: spec.priorityClassName: no PriorityClass with name gold was found", id="unknown-class"),
    # 11 != batch's 10: admission refuses it
    pytest.param({"priorityClassName": "batch", "priority": 11},
                 "pod ns/p: spec.priority: the integer value of priority (11) must not be provided in pod spec; "
                 "priority admission controller computed 10 from the given PriorityClass name", id="priority-disagrees"),
    pytest.param({"priorityClassName": "urgent", "preemptionPolicy": "PreemptLowerPriority"},
                 "pod ns/p: spec.preemptionPolicy: the string value of PreemptionPolicy (PreemptLowerPriority) must not "
                 "be provided in pod spec; priority admission controller computed Never from the given PriorityClass "
                 "name", id="policy-disagrees"),
    # numeric strings are refused, as kube-apiserver's decoder refuses a string for an int32
    pytest.param({"priority": "42"}, "pod ns/p: spec.priority: expected an integer, got '42'", id="priority-string"),
    pytest.param({"priority": True}, "pod ns/p: spec.priority: expected an integer, got True", id="priority-bool"),
    # 2^31 = 2147483648 is one past int32's maximum
    pytest.param({"priority": 2**31}, "pod ns/p: spec.priority: 2147483648 is out of the int32 range",
                 id="priority-range"),
    pytest.param({"priorityClassName": 7}, "pod ns/p: spec.priorityClassName: expected a string, got 7",
                 id="class-name-not-a-string"),
    pytest.param({"preemptionPolicy": "Sometimes"}, "pod ns/p: spec.preemptionPolicy: expected one of "
                 "PreemptLowerPriority, Never, got 'Sometimes'", id="bad-policy"),
]


@pytest.mark.parametrize(("spec", "message"), REFUSED_CASES)
def test_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ObjectError) as e:
        PriorityClasses(_CLASSES).resolve(_pod(**spec), "pod ns/p")
    assert str(e.value) == message


def test_resolve_copies_and_keeps_other_fields() -> None:
    pod = _pod(priorityClassName="batch", nodeName="n1")
    out = PriorityClasses(_CLASSES).resolve(pod, "pod ns/p")
    assert "priority" not in pod["spec"] and out["spec"]["nodeName"] == "n1" and out["metadata"] == pod["metadata"]


# ---- PriorityClass objects ---------------------------------------------------------------------------

CLASS_CASES = [
    pytest.param(_class("batch", 10), PriorityClass("batch", 10), id="defaults"),
    pytest.param(_class("urgent", -3, globalDefault=True, preemptionPolicy="Never", description="d"),
                 PriorityClass("urgent", -3, True, "Never"), id="every-field"),
    # int32 bounds are accepted: -2^31 and 2^31 - 1
    pytest.param(_class("min", -(2**31)), PriorityClass("min", -(2**31)), id="int32-min"),
    pytest.param(_class("max", 2**31 - 1), PriorityClass("max", 2**31 - 1), id="int32-max"),
]


@pytest.mark.parametrize(("obj", "want"), CLASS_CASES)
def test_priority_class_from_json(obj: dict[str, Any], want: PriorityClass) -> None:
    assert priority_class_from_json(obj) == want


BAD_CLASS_CASES = [
    pytest.param({**_class("x", 1), "metadata": {}}, "PriorityClass <unnamed>: metadata.name: required", id="no-name"),
    pytest.param({**_class("x", 1), "metadata": "x"}, "PriorityClass: metadata: expected a mapping", id="metadata"),
    pytest.param({**_class("x", 1), "value": None}, "PriorityClass x: value: required", id="no-value"),
    pytest.param(_class("x", "100"), "PriorityClass x: value: expected an integer, got '100'", id="value-string"),
    pytest.param(_class("x", 1.5), "PriorityClass x: value: expected an integer, got 1.5", id="value-float"),
    pytest.param(_class("x", -(2**31) - 1), "PriorityClass x: value: -2147483649 is out of the int32 range",
                 id="value-range"),
    pytest.param(_class("x", 1, globalDefault="yes"),
                 "PriorityClass x: globalDefault: expected true or false, got 'yes'", id="globalDefault"),
    pytest.param(_class("x", 1, preemptionPolicy="Sometimes"),
                 "PriorityClass x: preemptionPolicy: expected one of PreemptLowerPriority, Never, got 'Sometimes'",
                 id="policy"),
    pytest.param(_class("x", 1, spec={}), "PriorityClass x: spec: unknown field of a PriorityClass", id="unknown"),
]


@pytest.mark.parametrize(("obj", "message"), BAD_CLASS_CASES)
def test_bad_priority_class(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ObjectError) as e:
        priority_class_from_json(obj)
    assert str(e.value) == message


def test_system_classes_and_duplicates() -> None:
    # upstream's values: SystemCriticalPriority 2 * 10^9 and 2 * 10^9 + 1000, both PreemptLowerPriority
    assert {(c.name, c.value, c.preemption_policy) for c in SYSTEM_CLASSES} == {
        ("system-cluster-critical", 2_000_000_000, "PreemptLowerPriority"),
        ("system-node-critical", 2_000_001_000, "PreemptLowerPriority")}
    # a file's own copy of a built-in class replaces it (kubectl get priorityclasses lists them)
    classes = PriorityClasses([PriorityClass("system-node-critical", 2_000_001_000, preemption_policy="Never")])
    assert classes.items["system-node-critical"].preemption_policy == "Never"
    with pytest.raises(ObjectError) as e:
        classes.add(PriorityClass("system-node-critical", 1))
    assert str(e.value) == "PriorityClass system-node-critical: metadata.name: duplicate PriorityClass"
