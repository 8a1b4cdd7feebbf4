"""``/mutate-pods``: route a namespace's new Pods to a vecsched profile, and Jobs' pods into gangs.

Operators adopt a second scheduler one namespace at a time rather than by
editing every chart's ``schedulerName``. The rules, in the order they apply to
a Pod being created:

1. Pods in ``kube-system`` and mirror (static) pods -- annotated
   ``kubernetes.io/config.mirror`` or owned by their Node -- are never touched:
   the kubelet creates mirror pods for pods it already runs, and system pods
   must not depend on vecsched.
2. The profile is the pod's own label ``vecsched.io/scheduler-name`` if it has
   one, else its namespace's label of that name; neither: nothing to do. An
   empty value means the webhook's default profile.
3. ``spec.schedulerName`` is set to the profile only when the pod names no
   scheduler or ``default-scheduler`` (the value the API server defaults);
   a pod naming any other scheduler keeps it.
4. A profile the configuration does not know is refused (403, naming it and
   where it came from), or with ``--unknown-profile warn`` the pod is admitted
   unchanged with a warning: a typo would otherwise leave pods pending forever
   under a scheduler that does not exist.
5. In a namespace labelled ``vecsched.io/pod-group-from-owner: "true"``, a pod
   that ends up with a vecsched profile and has no
   ``scheduling.x-k8s.io/pod-group`` label gets one naming its controlling Job,
   so a Job becomes a gang (with a PodGroup of the Job's name) unedited.

Only CREATE mutates (a pod's scheduler cannot change afterwards); every other
operation is allowed as it is. The decision is a pure function of the pod, its
namespace's labels and the known profiles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from scheduler.webhook.review import BadReview, FieldError, forbidden_status, not_supported, pointer

__all__ = ["SCHEDULER_NAME_LABEL", "POD_GROUP_FROM_OWNER_LABEL", "POD_GROUP_LABEL", "MIRROR_ANNOTATION",
           "DEFAULT_SCHEDULER", "SYSTEM_NAMESPACE", "PodRouting", "Verdict", "mutate_pod"]

SCHEDULER_NAME_LABEL: Final = "vecsched.io/scheduler-name"
POD_GROUP_FROM_OWNER_LABEL: Final = "vecsched.io/pod-group-from-owner"
POD_GROUP_LABEL: Final = "scheduling.x-k8s.io/pod-group"
"""scheduler-plugins' PodGroupLabel (the same constant as ``scoring.plugins.podgroups``)."""
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
DEFAULT_SCHEDULER: Final = "default-scheduler"
SYSTEM_NAMESPACE: Final = "kube-system"
_LABEL_VALUE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_VALUE_MAX: Final = 63


@dataclass(frozen=True, slots=True)
class PodRouting:
    """What the pod webhook knows: the profiles vecsched serves and what to do with others."""

    profiles: frozenset[str]
    """schedulerNames of the profiles in ``--config`` (without it: the default profile alone)."""
    default_profile: str
    """The profile an empty ``vecsched.io/scheduler-name`` label means."""
    unknown_profile: Literal["refuse", "warn"] = "refuse"

    def __post_init__(self) -> None:
        if self.default_profile not in self.profiles:
            raise ValueError(f"--default-profile {self.default_profile!r} is not a profile of the configuration "
                             f"(have: {', '.join(sorted(self.profiles))})")
        if self.unknown_profile not in ("refuse", "warn"):
            raise ValueError(f"--unknown-profile must be refuse or warn, got {self.unknown_profile!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A webhook's answer: allowed (with a JSON patch, possibly empty) or denied with a status."""

    allowed: bool
    patch: Sequence[Mapping[str, Any]] = ()
    warnings: Sequence[str] = ()
    status: Mapping[str, Any] | None = None
    result: str = field(init=False)
    """The metric's ``result`` label: allowed, patched or denied."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", "denied" if not self.allowed else "patched" if self.patch else "allowed")


def _str_map(m: Mapping[str, Any], key: str, path: str) -> Mapping[str, str]:
    v = m.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise BadReview(f"{path}.{key}: expected a map of strings")
    return v


def _mapping(m: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    v = m.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadReview(f"{path}.{key}: expected an object")
    return v


def _owners(meta: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    refs = meta.get("ownerReferences")
    if refs is None:
        return []
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise BadReview("request.object.metadata.ownerReferences: expected a list of objects")
    return refs


def _controlling_job(owners: Sequence[Mapping[str, Any]]) -> str:
    """The name of the pod's controlling Job (``batch/*``, ``controller: true``), or ""."""
    for ref in owners:
        if (ref.get("controller") is True and ref.get("kind") == "Job"
                and str(ref.get("apiVersion") or "").startswith("batch/")):
            name = ref.get("name")
            return name if isinstance(name, str) else ""
    return ""


def _valid_label_value(v: str) -> bool:
    return len(v) <= _LABEL_VALUE_MAX and _LABEL_VALUE.fullmatch(v) is not None


def mutate_pod(*, operation: str, pod: Mapping[str, Any] | None, namespace: str,
               namespace_labels: Mapping[str, str] | None, routing: PodRouting) -> Verdict:
    """The answer for one Pod admission; ``namespace_labels`` None when the namespace is unknown."""
    if operation != "CREATE":
        return Verdict(allowed=True)
    if pod is None:
        raise BadReview("request.object: required for CREATE")
    where = "request.object"
    meta = _mapping(pod, "metadata", where)
    spec = _mapping(pod, "spec", where)
    namespace = namespace or str(meta.get("namespace") or "")
    if namespace == SYSTEM_NAMESPACE:
        return Verdict(allowed=True)
    labels = _str_map(meta, "labels", f"{where}.metadata")
    annotations = _str_map(meta, "annotations", f"{where}.metadata")
    owners = _owners(meta)
    if MIRROR_ANNOTATION in annotations or any(r.get("kind") == "Node" for r in owners):
        return Verdict(allowed=True)
    current = spec.get("schedulerName")
    if current is not None and not isinstance(current, str):
        raise BadReview(f"{where}.spec.schedulerName: expected a string")
    current = current or ""
    ns_labels = namespace_labels or {}
    warnings: list[str] = []
    if namespace_labels is None:
        warnings.append(f"vecsched webhook: namespace {namespace!r} is not known yet; only the pod's own "
                        f"{SCHEDULER_NAME_LABEL} label was considered")

    patch: list[dict[str, Any]] = []
    final = current
    if SCHEDULER_NAME_LABEL in labels:
        wanted, source = labels[SCHEDULER_NAME_LABEL], "the pod's label"
    elif SCHEDULER_NAME_LABEL in ns_labels:
        wanted, source = ns_labels[SCHEDULER_NAME_LABEL], f"namespace {namespace!r}"
    else:
        wanted, source = "", ""
    if source and current in ("", DEFAULT_SCHEDULER):
        profile = wanted or routing.default_profile
        if profile in routing.profiles:
            patch.append({"op": "replace" if "schedulerName" in spec else "add",
                          "path": pointer("spec", "schedulerName"), "value": profile})
            final = profile
        else:
            known = sorted(routing.profiles)
            message = (f"vecsched has no profile {profile!r} ({SCHEDULER_NAME_LABEL} of {source}; "
                       f"known: {', '.join(known)})")
            if routing.unknown_profile == "refuse":
                causes: list[FieldError] = []
                if source == "the pod's label":
                    causes.append(not_supported(f"metadata.labels[{SCHEDULER_NAME_LABEL}]", profile, known))
                return Verdict(allowed=False, status=forbidden_status(message, causes=causes))
            warnings.append(f"{message}: spec.schedulerName left {current or DEFAULT_SCHEDULER!r}")

    if (ns_labels.get(POD_GROUP_FROM_OWNER_LABEL) == "true" and final in routing.profiles
            and POD_GROUP_LABEL not in labels):
        job = _controlling_job(owners)
        if job and _valid_label_value(job):
            if "labels" in meta and meta["labels"] is not None:
                patch.append({"op": "add", "path": pointer("metadata", "labels", POD_GROUP_LABEL), "value": job})
            else:
                patch.append({"op": "add", "path": pointer("metadata", "labels"), "value": {POD_GROUP_LABEL: job}})
        elif job:
            warnings.append(f"vecsched webhook: Job name {job[:80]!r} is not a valid label value; "
                            f"no {POD_GROUP_LABEL} label added")
    return Verdict(allowed=True, patch=patch, warnings=warnings)
