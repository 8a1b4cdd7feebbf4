"""PriorityClasses and pod priorities, as kube-apiserver's Priority admission plugin gives them.

On a cluster a Pod's ``spec.priority`` is never written by its author: the
Priority admission plugin (plugin/pkg/admission/priority/admission.go) fills
it in from ``spec.priorityClassName`` when the pod is created. Whatever reads
pods from files instead of an API server (``vecsched explain`` snapshots, the
workloads of ``vecsched sim``) has to do the same, and the embedded API server
creates the same built-in classes; this module is the one place that knows how.

Resolution of a pod's JSON (``PriorityClasses.resolve``), admission's rules:

- a pod naming a class gets its ``value`` and its ``preemptionPolicy``; a class
  that does not exist is an error on ``spec.priorityClassName`` ("no
  PriorityClass with name X was found");
- a pod naming none gets the ``globalDefault`` class (whose name is written into
  ``spec.priorityClassName``, as admission does), or priority 0 when there is
  none (upstream's DefaultPriorityWhenNoDefaultClassExists), its policy left as
  it is;
- a ``spec.priority`` that differs from what the class gives is refused, with
  admission's message ("the integer value of priority (50) must not be provided
  in pod spec; ..."): a pod that carries both keeps neither the file's number
  nor the class's in silence. The same holds for a ``spec.preemptionPolicy``
  that differs from the class's; an equal one is fine.

Where files and admission part, because a file holds pods that were admitted
already (``kubectl get pods -o json``) or are written by hand:

- a pod with ``spec.priority`` and no class name keeps its priority (admission
  would compare it with the default class's value, 0 without one; a snapshot or
  a CSV trace gives priorities directly);
- a pod with ``spec.priority`` whose class is not among the classes read keeps
  its priority: it was admitted where that class exists, and the file left the
  PriorityClasses out.

The cases in which earlier readers of this project disagreed are decided by
what admission does:

- several ``globalDefault`` classes (a cluster can hold them after racing
  creates): the one with the lowest value is the default, as admission's
  ``getDefaultPriorityClass`` picks it (equal values: the first name in sort
  order, where upstream takes whichever its lister lists first). Reading a
  second one is not an error;
- numbers: ``value`` and ``spec.priority`` are JSON integers in the int32
  range; a numeric string such as ``"100"`` is refused, as kube-apiserver's
  decoder refuses a string for an int32 field. (A CSV column is text and is
  parsed by its reader.)

A PriorityClass that does not give ``preemptionPolicy`` has
``PreemptLowerPriority``, the API server's default. The built-in classes
(``system-node-critical``, ``system-cluster-critical``) are always present;
a file that lists them (``kubectl get priorityclasses`` does) replaces them
with its copy.

Every error is a ``scoring.objects.ObjectError`` naming the object and the
field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from scoring.objects import ObjectError, checked
from scoring.safe_input import QUOTE_CHARS, quote

__all__ = [
    "PREEMPT_LOWER_PRIORITY",
    "NEVER",
    "PREEMPTION_POLICIES",
    "INT32_RANGE",
    "SYSTEM_CRITICAL_PRIORITY",
    "SYSTEM_CLASSES",
    "PriorityClass",
    "PriorityClasses",
    "priority_class_from_json",
]

PREEMPT_LOWER_PRIORITY: Final = "PreemptLowerPriority"
NEVER: Final = "Never"
PREEMPTION_POLICIES: Final = (PREEMPT_LOWER_PRIORITY, NEVER)
INT32_RANGE: Final = (-(2**31), 2**31 - 1)
"""Upstream's priority is an int32."""
SYSTEM_CRITICAL_PRIORITY: Final = 2_000_000_000
"""Upstream's SystemCriticalPriority (2 * HighestUserDefinablePriority): ``system-cluster-critical``."""

_FIELDS: Final = ("apiVersion", "kind", "metadata", "value", "globalDefault", "preemptionPolicy", "description")


@dataclass(frozen=True, slots=True)
class PriorityClass:
    """What admission reads of a ``scheduling.k8s.io/v1`` PriorityClass."""

    name: str
    value: int
    global_default: bool = False
    preemption_policy: str = PREEMPT_LOWER_PRIORITY
    """PreemptLowerPriority when the object does not say (the API server's default)."""


SYSTEM_CLASSES: Final = (
    PriorityClass("system-node-critical", SYSTEM_CRITICAL_PRIORITY + 1000),
    PriorityClass("system-cluster-critical", SYSTEM_CRITICAL_PRIORITY),
)
"""The classes every cluster has (kube-apiserver creates them at start), upstream's values."""


def _int32(raw: Any, obj: str, field_path: str) -> int:
    """A JSON integer in the int32 range (not a bool, not a numeric string)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ObjectError(obj, field_path, f"expected an integer, got {quote(raw)}")
    if not INT32_RANGE[0] <= raw <= INT32_RANGE[1]:
        raise ObjectError(obj, field_path, f"{raw} is out of the int32 range")
    return raw


def _policy(raw: Any, obj: str, field_path: str) -> str:
    if raw not in PREEMPTION_POLICIES:
        raise ObjectError(obj, field_path, f"expected one of {', '.join(PREEMPTION_POLICIES)}, got {quote(raw)}")
    return str(raw)


def priority_class_from_json(obj: Mapping[str, Any]) -> PriorityClass:
    """A PriorityClass object, checked; ObjectError names the field that cannot be read."""
    if not isinstance(obj, Mapping):
        raise ObjectError("PriorityClass", "(object)", f"expected an object, got {quote(obj)}")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise ObjectError("PriorityClass", "metadata", "expected a mapping")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ObjectError("PriorityClass <unnamed>", "metadata.name", "required")
    ref = f"PriorityClass {name}"
    checked(ref, obj)
    for key in obj:
        if key not in _FIELDS:
            raise ObjectError(ref, key if len(key) <= QUOTE_CHARS else quote(key), "unknown field of a PriorityClass")
    value = obj.get("value")
    if value is None:
        raise ObjectError(ref, "value", "required")
    default = obj.get("globalDefault", False)
    if not isinstance(default, bool):
        raise ObjectError(ref, "globalDefault", f"expected true or false, got {quote(default)}")
    policy = obj.get("preemptionPolicy")
    return PriorityClass(name, _int32(value, ref, "value"), default,
                         PREEMPT_LOWER_PRIORITY if policy is None else _policy(policy, ref, "preemptionPolicy"))


class PriorityClasses:
    """The PriorityClasses of a cluster or a file by name, the built-in ones included, and the
    resolution of pods' priorities by the rules of the module docstring."""

    def __init__(self, classes: Iterable[PriorityClass] = ()) -> None:
        self.items: dict[str, PriorityClass] = {c.name: c for c in SYSTEM_CLASSES}
        self._given: set[str] = set()
        for c in classes:
            self.add(c)

    def add(self, pc: PriorityClass) -> None:
        """Keep ``pc`` (a built-in class of the same name is replaced); a second class of one name is an error."""
        if pc.name in self._given:
            raise ObjectError(f"PriorityClass {pc.name}", "metadata.name", "duplicate PriorityClass")
        self._given.add(pc.name)
        self.items[pc.name] = pc

    def global_default(self) -> PriorityClass | None:
        """The ``globalDefault`` class; with several, the lowest value (then the first name), as admission picks."""
        defaults = [c for c in self.items.values() if c.global_default]
        return min(defaults, key=lambda c: (c.value, c.name)) if defaults else None

    def resolve(self, pod: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
        """``pod`` as admission stores it: ``spec.priority``, ``spec.priorityClassName`` and
        ``spec.preemptionPolicy`` filled in from its class. The result is a copy when anything
        changed, ``pod`` itself otherwise; ``ref`` (``pod ns/name``) names the pod in errors."""
        spec = pod.get("spec")
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            return pod  # not a pod the scheduler can read; pod_from_json says why
        name = spec.get("priorityClassName") or ""
        if not isinstance(name, str):
            raise ObjectError(ref, "spec.priorityClassName", f"expected a string, got {quote(name)}")
        given = spec.get("priority")
        if given is not None:
            given = _int32(given, ref, "spec.priority")
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None:
            given_policy = _policy(given_policy, ref, "spec.preemptionPolicy")
        cls: PriorityClass | None
        if name:
            cls = self.items.get(name)
            if cls is None:
                if given is not None:
                    return pod  # admitted where its class exists; the file left the class out
                raise ObjectError(ref, "spec.priorityClassName", f"no PriorityClass with name {name if len(name) <= QUOTE_CHARS else quote(name)} was found")
        elif given is not None:
            return pod  # a priority given directly (a hand-written snapshot, a CSV trace)
        else:
            cls = self.global_default()
        value = cls.value if cls is not None else 0  # upstream's DefaultPriorityWhenNoDefaultClassExists
        if given is not None and given != value:
            raise ObjectError(ref, "spec.priority",
                              f"the integer value of priority ({given}) must not be provided in pod spec; priority "
                              f"admission controller computed {value} from the given PriorityClass name")
        resolved = {**spec, "priority": value}
        if cls is not None:
            if given_policy is not None and given_policy != cls.preemption_policy:
                raise ObjectError(ref, "spec.preemptionPolicy",
                                  f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod "
                                  f"spec; priority admission controller computed {cls.preemption_policy} from the "
                                  "given PriorityClass name")
            resolved["priorityClassName"] = cls.name
            resolved["preemptionPolicy"] = cls.preemption_policy
        return {**pod, "spec": resolved}
