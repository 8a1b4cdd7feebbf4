"""Admission: what kube-apiserver changes and refuses before an object is stored.

Schedulers read fields that admission fills and rely on checks that it makes:
a Pod's ``spec.priority`` comes from its PriorityClass (the Priority
admission plugin), a Deployment's ``replicas`` and rollout strategy from the
defaulting of ``apps/v1``, and a bound Pod can never be moved or resized
behind the scheduler's back because pod updates may change only a few fields.
This module reproduces those rules for the kinds the embedded control plane
serves, with upstream's messages, so that a scheduler tested here meets the
same objects and refusals as on a real cluster.

``admit_create`` runs on every new object, ``admit_update`` on every change;
both mutate in place and raise ``ApiError`` (403 Forbidden from admission
plugins, 422 Invalid from validation).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Final

from scoring.priorities import SYSTEM_CLASSES
from scoring.quantity import QuantityError, parse_quantity

from . import errors
from .resources import ResourceType, builtin
from .selectors import label_selector_matches
from .store import Store
from .webhookconfig import MUTATING, VALIDATING, admit_configuration

__all__ = [
    "admit_create",
    "admit_update",
    "system_priority_classes",
    "HIGHEST_USER_PRIORITY",
]

PRIORITY_CLASSES: Final = builtin("priorityclasses.scheduling.k8s.io")

HIGHEST_USER_PRIORITY: Final = 1_000_000_000
"""Upstream's ``HighestUserDefinablePriority``: larger values are for ``system-`` classes only."""
_SYSTEM_DESCRIPTIONS: Final = {
    "system-node-critical": "Used for system critical pods that must not be moved from their current node.",
    "system-cluster-critical":
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
}
# The PriorityClasses every cluster has (kube-apiserver creates them at start); their values are
# scoring.priorities', which the scheduler's own readers of PriorityClasses use too.
_SYSTEM_CLASSES: Final = tuple((c.name, c.value, c.preemption_policy, _SYSTEM_DESCRIPTIONS[c.name])
                               for c in SYSTEM_CLASSES)

# Fields of a Pod's spec that an update may change (pod validation's ValidatePodUpdate); others are
# immutable, so the node a pod is bound to and the resources it was placed with stay what they were.
_POD_MUTABLE_HINT: Final = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
# Kinds with a pod template, defaulted and validated as apps/v1, batch/v1 and core/v1 do them.
_WORKLOAD_KINDS: Final = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController",
                                    "Job", "CronJob"})
_QUANTITY_HINT: Final = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def system_priority_classes() -> list[dict[str, Any]]:
    """The built-in PriorityClass objects, as a new cluster has them."""
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
             "value": value, "description": text, "preemptionPolicy": policy}
            for name, value, policy, text in _SYSTEM_CLASSES]


def admit_create(store: Store, rt: ResourceType, obj: dict[str, Any]) -> None:
    """Mutating admission, defaulting and validation of a new object (after ``prepare_create``)."""
    if rt.group == "" and rt.plural == "pods":
        _priority(store, obj)
        _validate_pod_resources(obj)
    elif rt is PRIORITY_CLASSES:
        _validate_priority_class(store, obj, old=None)
    elif rt.kind in _WORKLOAD_KINDS:
        _default_workload(rt, obj)
        _validate_workload(rt, obj)
    elif rt is MUTATING or rt is VALIDATING:
        admit_configuration(rt, obj, old=None)


def admit_update(store: Store, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any], subresource: str) -> None:
    """Validation of a change to ``old`` (after ``prepare_update``)."""
    _finalizers_after_deletion(rt, obj, old)
    if rt.group == "" and rt.plural == "pods":
        if not subresource:
            _validate_pod_update(obj, old)
    elif rt is PRIORITY_CLASSES:
        _validate_priority_class(store, obj, old=old)
    elif rt.kind in _WORKLOAD_KINDS and subresource != "status":
        _default_workload(rt, obj)
        _validate_workload(rt, obj)
        _immutable_selector(rt, obj, old)
    elif rt is MUTATING or rt is VALIDATING:
        admit_configuration(rt, obj, old=old)


# ---- Priority ----------------------------------------------------------------------------------------


def _priority(store: Store, pod: dict[str, Any]) -> None:
    """The Priority admission plugin: ``priorityClassName`` -> ``priority`` and ``preemptionPolicy``."""
    spec = pod["spec"]
    name = spec.get("priorityClassName") or ""
    pod_name = pod["metadata"].get("name", "")
    policy: str | None = None
    if name:
        entry = store.find(PRIORITY_CLASSES, "", name)
        if entry is None:
            raise errors.forbidden(f'pods "{pod_name}" is forbidden: no PriorityClass with name {name} was found',
                                   resource="pods", name=pod_name)
        pc = entry.obj()
        value = int(pc.get("value") or 0)
        policy = pc.get("preemptionPolicy")
    else:
        default = _global_default(store)
        if default is not None:
            spec["priorityClassName"] = default["metadata"]["name"]
            value = int(default.get("value") or 0)
            policy = default.get("preemptionPolicy")
        else:
            value = 0  # upstream's DefaultPriorityWhenNoDefaultClassExists
    given = spec.get("priority")
    if given is not None and given != value:
        raise errors.forbidden(
            f'pods "{pod_name}" is forbidden: the integer value of priority ({given}) must not be provided in pod '
            f"spec; priority admission controller computed {value} from the given PriorityClass name",
            resource="pods", name=pod_name)
    spec["priority"] = value
    if policy is not None:
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None and given_policy != policy:
            raise errors.forbidden(
                f'pods "{pod_name}" is forbidden: the string value of PreemptionPolicy ({given_policy}) must not be '
                f"provided in pod spec; priority admission controller computed {policy} from the given "
                "PriorityClass name", resource="pods", name=pod_name)
        spec["preemptionPolicy"] = policy
    else:
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _global_default(store: Store) -> dict[str, Any] | None:
    """The globalDefault class; with several (only possible by racing creates), the lowest value, as upstream."""
    best: dict[str, Any] | None = None
    for e in store.entries(PRIORITY_CLASSES):
        pc = e.obj()
        if pc.get("globalDefault") and (best is None or int(pc.get("value") or 0) < int(best.get("value") or 0)):
            best = pc
    return best


def _validate_priority_class(store: Store, pc: dict[str, Any], *, old: dict[str, Any] | None) -> None:
    name = pc["metadata"]["name"]
    causes: list[tuple[str, str]] = []
    value = pc.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        causes.append(("value", f"Invalid value: {value!r}: must be an integer"))
    elif name.startswith("system-"):
        if old is None and name not in _SYSTEM_DESCRIPTIONS:
            causes.append(("metadata.name", f'Invalid value: "{name}": priority class names with \'system-\' '
                                            "prefix are reserved for system use only"))
    elif value > HIGHEST_USER_PRIORITY:
        causes.append(("value", f"Invalid value: {value}: maximum allowed value of a user defined priority "
                                f"is {HIGHEST_USER_PRIORITY}"))
    policy = pc.get("preemptionPolicy")
    if policy is not None and policy not in ("PreemptLowerPriority", "Never"):
        causes.append(("preemptionPolicy", f'Unsupported value: "{policy}": supported values: '
                                           '"Never", "PreemptLowerPriority"'))
    if old is not None:
        if old.get("value") != value:
            causes.append(("value", "Invalid value: field is immutable"))
        if old.get("preemptionPolicy", "PreemptLowerPriority") != pc.get("preemptionPolicy", "PreemptLowerPriority"):
            causes.append(("preemptionPolicy", "Invalid value: field is immutable"))
    if causes:
        raise errors.invalid(kind="PriorityClass", group="scheduling.k8s.io", name=name, causes=causes)
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")
    if pc.get("globalDefault"):
        for e in store.entries(PRIORITY_CLASSES):
            if e.name != name and e.obj().get("globalDefault"):
                raise errors.forbidden(
                    f'priorityclasses.scheduling.k8s.io "{name}" is forbidden: PriorityClass {e.name} is already '
                    "marked as default. Only one default can exist",
                    resource="priorityclasses", group="scheduling.k8s.io", name=name)


# ---- Pods ------------------------------------------------------------------------------------------------


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if isinstance(c, dict):
                yield f"spec.{group}[{i}]", c


def _validate_pod_resources(pod: dict[str, Any]) -> None:
    """Container quantities must parse, be non-negative, and requests must not exceed limits."""
    causes: list[tuple[str, str]] = []
    for where, c in _containers(pod["spec"]):
        res = c.get("resources") or {}
        if not isinstance(res, dict):
            causes.append((f"{where}.resources", "Invalid value: must be an object"))
            continue
        parsed: dict[str, dict[str, Any]] = {}
        for part in ("limits", "requests"):
            items = res.get(part) or {}
            if not isinstance(items, dict):
                causes.append((f"{where}.resources.{part}", "Invalid value: must be a map of quantities"))
                continue
            for name, q in items.items():
                try:
                    amount = parse_quantity(q)
                except QuantityError:
                    causes.append((f"{where}.resources.{part}[{name}]",
                                   f'Invalid value: "{_short(q)}": {_QUANTITY_HINT}'))
                    continue
                if amount < 0:
                    causes.append((f"{where}.resources.{part}[{name}]",
                                   f'Invalid value: "{q}": must be greater than or equal to 0'))
                parsed.setdefault(part, {})[name] = (amount, q)
        for name, (req, text) in parsed.get("requests", {}).items():
            lim = parsed.get("limits", {}).get(name)
            if lim is not None and req > lim[0]:
                causes.append((f"{where}.resources.requests",
                               f'Invalid value: "{text}": must be less than or equal to {name} limit of {lim[1]}'))
    if causes:
        raise errors.invalid(kind="Pod", name=pod["metadata"].get("name", ""), causes=causes)


def _short(value: object) -> str:
    """A value quoted in an error, cut so that a 10 MB string is not echoed back."""
    text = str(value)
    return text if len(text) <= 64 else text[:64] + "..."


def _validate_pod_update(pod: dict[str, Any], old: dict[str, Any]) -> None:
    """ValidatePodUpdate: outside a few fields, a Pod's spec does not change after creation."""
    name = pod["metadata"].get("name", "")
    new_spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
    if old_spec.get("nodeName") and new_spec.get("nodeName") != old_spec.get("nodeName"):
        raise errors.invalid(kind="Pod", name=name, causes=[("spec.nodeName", _forbidden_update(old_spec, new_spec))])
    a, b = _mask_mutable(new_spec, old_spec), _mask_mutable(old_spec, old_spec)
    if a != b:
        raise errors.invalid(kind="Pod", name=name, causes=[("spec", _forbidden_update(old_spec, new_spec))])


def _forbidden_update(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> str:
    changed = sorted(k for k in set(old_spec) | set(new_spec) if old_spec.get(k) != new_spec.get(k))
    return f"Forbidden: {_POD_MUTABLE_HINT} (changed: {', '.join(changed) or 'nothing'})"


def _mask_mutable(spec: dict[str, Any], old_spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the fields an update may change replaced by fixed values."""
    out = copy.deepcopy(spec)
    for group in ("containers", "initContainers"):
        for c in out.get(group) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    for k in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        out.pop(k, None)
    # Tolerations may only grow; scheduling gates may only be removed, and while a pod is gated its
    # node selector and affinity may be added to (pod scheduling readiness).
    old_tols = [t for t in old_spec.get("tolerations") or []]
    tols = out.pop("tolerations", None) or []
    out["tolerations"] = old_tols if all(t in tols for t in old_tols) else tols
    gates = out.pop("schedulingGates", None) or []
    old_gates = old_spec.get("schedulingGates") or []
    out["schedulingGates"] = old_gates if all(g in old_gates for g in gates) else gates
    if old_gates:
        out.pop("nodeSelector", None)
        out.pop("affinity", None)
    return out


def _finalizers_after_deletion(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> None:
    if not old["metadata"].get("deletionTimestamp"):
        return
    before = set(old["metadata"].get("finalizers") or [])
    added = [f for f in obj["metadata"].get("finalizers") or [] if f not in before]
    if added:
        listed = ", ".join(f'"{f}"' for f in added)
        raise errors.invalid(kind=rt.kind, group=rt.group, name=obj["metadata"]["name"], causes=[(
            "metadata.finalizers",
            f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
            f"[]string{{{listed}}}")])


# ---- Workloads (apps/v1, batch/v1, ReplicationControllers) -----------------------------------------------


def _default_workload(rt: ResourceType, obj: dict[str, Any]) -> None:
    """SetDefaults_* of apps/v1 and batch/v1 (the fields controllers and ``kubectl rollout`` read)."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise errors.invalid(kind=rt.kind, group=rt.group, name=obj["metadata"]["name"],
                             causes=[("spec", "Invalid value: must be an object")])
    kind = rt.kind
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"):
        spec.setdefault("replicas", 1)
    if kind == "ReplicationController":
        # SetDefaults_ReplicationController: selector and labels default to the template's labels.
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if labels:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            if not obj["metadata"].get("labels"):
                obj["metadata"]["labels"] = dict(labels)
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        spec.setdefault("revisionHistoryLimit", 10)
    if kind == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    elif kind == "DaemonSet":
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", "RollingUpdate")
        if us["type"] == "RollingUpdate":
            ru = us.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
    elif kind == "Job":
        _default_job(obj)
    elif kind == "CronJob":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        _default_pod_template(template["spec"])


def _default_pod_template(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")


def _default_job(job: dict[str, Any]) -> None:
    spec = job["spec"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    if not spec.get("manualSelector"):
        # The Job's own uid selects its pods (the generated selector of batch/v1).
        uid = job["metadata"].get("uid", "")
        name = job["metadata"]["name"]
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        if not spec.get("selector"):
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template = spec.setdefault("template", {})
        if isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)


def _selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    return isinstance(selector, dict) and label_selector_matches(selector, labels)


def _validate_workload(rt: ResourceType, obj: dict[str, Any]) -> None:
    if rt.kind == "CronJob":
        return
    spec = obj["spec"]
    name = obj["metadata"]["name"]
    causes: list[tuple[str, str]] = []
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        causes.append(("spec.template", "Required value"))
    else:
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = spec.get("selector")
        if rt.kind == "ReplicationController":
            if not selector:
                causes.append(("spec.selector", "Required value"))
            elif any(labels.get(k) != v for k, v in selector.items()):
                causes.append(("spec.template.metadata.labels",
                               f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"))
        elif not selector:
            causes.append(("spec.selector", "Required value"))
        elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(("spec.selector", "Invalid value: \"null\": empty selector is invalid for deployment"))
        elif not _selector_matches(selector, labels):
            causes.append(("spec.template.metadata.labels",
                           f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"))
        policy = template["spec"].get("restartPolicy")
        if rt.kind == "Job" and policy not in ("Never", "OnFailure"):
            causes.append(("spec.template.spec.restartPolicy",
                           f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"'))
        elif rt.kind != "Job" and policy != "Always":
            causes.append(("spec.template.spec.restartPolicy",
                           f'Unsupported value: "{policy}": supported values: "Always"'))
        for where, c in _containers(template["spec"]):
            if not isinstance(c.get("name"), str) or not c.get("name"):
                causes.append((f"spec.template.{where}.name", "Required value"))
    for field in ("replicas", "parallelism", "completions", "backoffLimit", "minReadySeconds"):
        value = spec.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            causes.append((f"spec.{field}", f"Invalid value: {value!r}: must be greater than or equal to 0"))
    if causes:
        raise errors.invalid(kind=rt.kind, group=rt.group, name=name, causes=causes)
    try:
        _validate_pod_resources({"metadata": {"name": name}, "spec": template["spec"]})
    except errors.ApiError as e:
        causes = [(f"spec.template.{c['field']}", c["message"]) for c in (e.details or {}).get("causes", [])]
        raise errors.invalid(kind=rt.kind, group=rt.group, name=name, causes=causes) from None


def _immutable_selector(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> None:
    if rt.kind in ("ReplicationController", "CronJob"):
        return
    if (obj.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
        raise errors.invalid(kind=rt.kind, group=rt.group, name=obj["metadata"]["name"],
                             causes=[("spec.selector", f"Invalid value: {_go_selector(obj)}: field is immutable")])


def _go_map(labels: dict[str, str]) -> str:
    """A map as Go's %#v prints it in upstream's messages: ``map[string]string{"app":"web"}``."""
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


def _go_selector(obj: dict[str, Any]) -> str:
    sel = (obj.get("spec") or {}).get("selector") or {}
    return "v1.LabelSelector{MatchLabels:" + _go_map(sel.get("matchLabels") or {}) + "}"
