"""Persistent volumes: the PV controller's binding and reclaiming, and a simulated CSI provisioner.

A pod with a PersistentVolumeClaim runs only once its claim is bound to a
PersistentVolume, so the scheduler's volume plugins, the StatefulSets of the
demo and anyone testing storage-aware placement need what a real cluster
does between a claim and its volume. Four control loops do it, as on a real
cluster (each upstream component has a claim queue and a volume queue):

* ``ClaimBinder`` and ``VolumeBinder`` are kube-controller-manager's
  persistentvolume controller (``pkg/controller/volume/persistentvolume``,
  ``syncClaim`` and ``syncVolume``). An unbound claim is bound to the best
  Available volume (``find_best_match``: upstream's ``findBestMatchForClaim``
  over ``FindMatchingVolume`` -- a volume pre-bound to the claim first, else
  the smallest one whose class, access modes, volume mode, selector and
  capacity fit, preferring the fewest access modes); a claim of a
  ``WaitForFirstConsumer`` class is only bound to volumes pre-bound to it
  (by the scheduler) and otherwise waits, with a ``WaitForFirstConsumer`` or
  ``WaitForPodScheduled`` Event, for the scheduler's
  ``volume.kubernetes.io/selected-node``; with no volume to bind, a claim of
  a class with a provisioner is handed to it (the
  ``volume.kubernetes.io/storage-provisioner`` annotation and an
  ``ExternalProvisioning`` Event; ``kubernetes.io/no-provisioner`` classes
  get upstream's ``ProvisioningFailed``). Binding writes, in upstream's
  order, the volume's ``claimRef`` (plus ``bound-by-controller``) and
  ``Bound`` phase, then the claim's ``volumeName`` with ``bind-completed``
  (plus ``bound-by-controller`` when the controller chose the volume) and its
  status (``Bound``, the volume's capacity and access modes). A volume whose
  claim is gone is ``Released`` and reclaimed by its policy: Retain keeps
  it, Delete is the provisioner's (volumes it did not provision and that are
  not CSI fail with ``VolumeFailedDelete``: there are no in-tree deleters).
* ``CSIProvisioner`` and ``CSIDeleter`` (in ``provisioner``) play kubernetes-csi's
  external-provisioner (sig-storage-lib-external-provisioner's controller
  and the csi-provisioner), for every provisioner name but
  ``kubernetes.io/no-provisioner``: a claim annotated for it (and, for a
  ``WaitForFirstConsumer`` class, with a selected node) gets a volume
  ``pvc-<claim uid>`` of the requested size, class, access modes and volume
  mode, the class's reclaim policy (default Delete) and mount options,
  ``spec.csi`` of the provisioner's driver, pre-bound to the claim, and
  node affinity for the selected node's zone (its hostname when it has no
  zone label) or, without a selected node, the class's
  ``allowedTopologies``; the ``Provisioning`` and ``ProvisioningSucceeded``
  Events say so. A selected node that is gone (Node or CSINode) is
  ``ProvisioningFailed`` and the annotation is removed so that the scheduler
  picks again (``rescheduleProvisioning``). Released volumes with policy
  Delete that it provisioned (or static ones of a CSI driver) are deleted.

The DefaultStorageClass admission plugin is not part of the embedded API
server, so ``ClaimBinder`` gives an unbound claim without a class the
default class (the newest with ``storageclass.kubernetes.io/is-default-class``)
before matching it, which is what admission plus the retroactive assignment
of ``assignDefaultStorageClass`` produce. A volume turning Available brings
the claims still unbound back at once (upstream finds them at its next
resync), and so does a StorageClass write. The simulated driver needs no
topology keys on the selected node's CSINode (a real one refuses a node
without them): the node's zone label, else its hostname, is the volume's
topology. Events come from ``persistentvolume-controller`` and
``<provisioner>_vecsched-simulated``. Left out: the pvc-protection and
pv-protection finalizers, recycling (a Recycle volume fails with "No
recycler plugin found for the volume!"), volume expansion and migration
annotations, data sources, storage capacity tracking, and the provisioner's
deletion-protection finalizer. A claim with an invalid field (a malformed
quantity or selector) gets a Warning Event naming the field and is left
alone until it changes; a volume whose capacity cannot be read matches no
claim.
"""

from __future__ import annotations

import abc
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any, ClassVar, Final

from scoring.quantity import QuantityError, parse_quantity

from ..resources import builtin
from ..store import Entry
from .base import Controller, ControllerContext, Key, Mapper
from .pods import selector_matcher

__all__ = [
    "ClaimBinder",
    "VolumeBinder",
    "find_best_match",
    "find_matching_volume",
    "default_class",
    "claim_class",
    "provisioned_name",
    "PV_CONTROLLER",
    "PROVISIONER_IDENTITY",
]

log = logging.getLogger("vecsched.apiserver.controllers")

PVS: Final = builtin("persistentvolumes")
CLAIMS: Final = builtin("persistentvolumeclaims")
CLASSES: Final = builtin("storageclasses.storage.k8s.io")
NODES: Final = builtin("nodes")
CSINODES: Final = builtin("csinodes.storage.k8s.io")
PODS: Final = builtin("pods")
_POD_NODE: Final = PODS.field_index("spec.nodeName")
_POD_PHASE: Final = PODS.field_index("status.phase")

BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER: Final = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY: Final = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER: Final = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER: Final = "volume.beta.kubernetes.io/storage-provisioner"
BETA_CLASS: Final = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS: Final = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS: Final = "storageclass.beta.kubernetes.io/is-default-class"
NO_PROVISIONER: Final = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

PV_CONTROLLER: Final = "persistentvolume-controller"
"""The Event source of the binding loops (kube-controller-manager's component name for them)."""
PROVISIONER_IDENTITY: Final = "vecsched-simulated"
"""The simulated provisioner's identity: its Events come from ``<provisioner>_<identity>``."""
_PROVISIONER_ID_KEY: Final = "storage.kubernetes.io/csiProvisionerIdentity"
# A pod whose JSON holds neither key uses no claim (two substring tests spare parsing every pod write).
_PVC_MARK: Final = b'"persistentVolumeClaim"'
_EPHEMERAL_MARK: Final = b'"ephemeral"'
_AVAILABLE: Final = b'"phase":"Available"'

# The access modes a volume's index key lists, in upstream's GetAccessModesAsString order.
_MODE_ORDER: Final = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


class InvalidObject(Exception):
    """A claim or volume field the controllers cannot read; reported as a Warning Event, not retried."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---- reading the objects ----------------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    ann: Mapping[str, str] = _meta(obj).get("annotations") or {}
    return ann


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = obj.get("spec") or {}
    return spec


def _phase(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def claim_class(claim: Mapping[str, Any]) -> str:
    """``GetPersistentVolumeClaimClass``: the beta annotation, then ``spec.storageClassName`` ("" for none)."""
    beta = _annotations(claim).get(BETA_CLASS)
    return str(beta if beta is not None else _spec(claim).get("storageClassName") or "")


def _claim_has_class(claim: Mapping[str, Any]) -> bool:
    """``PersistentVolumeClaimHasClass``: a class was asked for, even "" (no class)."""
    return BETA_CLASS in _annotations(claim) or _spec(claim).get("storageClassName") is not None


def _volume_class(pv: Mapping[str, Any]) -> str:
    beta = _annotations(pv).get(BETA_CLASS)
    return str(beta if beta is not None else _spec(pv).get("storageClassName") or "")


def _volume_mode(obj: Mapping[str, Any]) -> str:
    return str(_spec(obj).get("volumeMode") or "Filesystem")


def _quantity(obj: Mapping[str, Any], where: str, text: Any) -> Fraction:
    try:
        return parse_quantity(text)
    except QuantityError as e:
        raise InvalidObject("InvalidQuantity", f"{obj.get('kind', 'object')} {_meta(obj).get('name', '')}: "
                                               f"{where}: {e}") from None


def _request(claim: Mapping[str, Any]) -> Fraction:
    """The claim's ``spec.resources.requests.storage`` (0 when absent, as a zero Quantity)."""
    text = ((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage")
    return Fraction(0) if text is None else _quantity(claim, "spec.resources.requests.storage", text)


def _selector(claim: Mapping[str, Any]) -> Callable[[Mapping[str, str]], bool] | None:
    """The claim's ``spec.selector`` as a predicate over volume labels (None when it has none)."""
    selector = _spec(claim).get("selector")
    if selector is None:
        return None
    try:
        return selector_matcher(selector)
    except (ValueError, AttributeError, TypeError) as e:
        raise InvalidObject("InvalidSelector", f"PersistentVolumeClaim {_meta(claim).get('name', '')}: "
                                               f"spec.selector: {e}") from None


def _capacity(pv: Mapping[str, Any]) -> Fraction:
    text = (_spec(pv).get("capacity") or {}).get("storage")
    return Fraction(0) if text is None else _quantity(pv, "spec.capacity.storage", text)


def _claim_ref(pv: Mapping[str, Any]) -> Mapping[str, Any] | None:
    ref: Mapping[str, Any] | None = _spec(pv).get("claimRef") or None
    return ref


def _bound_to(pv: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    """``IsVolumeBoundToClaim``: the volume's claimRef names the claim (and its uid, when it has one)."""
    ref = _claim_ref(pv)
    if ref is None:
        return False
    meta = _meta(claim)
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def claim_ref(claim: Mapping[str, Any]) -> dict[str, Any]:
    """The ObjectReference to a claim a bound volume carries (``reference.GetReference``)."""
    meta = _meta(claim)
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "uid": meta.get("uid", ""), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion", "")}


def provisioned_name(claim: Mapping[str, Any]) -> str:
    """The volume provisioned for a claim: ``pvc-<claim uid>`` (``getProvisionedVolumeNameForClaim``)."""
    return f"pvc-{_meta(claim).get('uid', '')}"


def _is_default(cls: Mapping[str, Any]) -> bool:
    ann = _annotations(cls)
    return ann.get(DEFAULT_CLASS) == "true" or ann.get(BETA_DEFAULT_CLASS) == "true"


def default_class(classes: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """``GetDefaultClass``: of the classes marked default, the newest (the first by name among equals)."""
    marked = [c for c in classes if _is_default(c)]
    if not marked:
        return None
    marked.sort(key=lambda c: str(_meta(c).get("name", "")))
    marked.sort(key=lambda c: str(_meta(c).get("creationTimestamp", "")), reverse=True)
    return marked[0]


def _delay_binding(cls: Mapping[str, Any] | None) -> bool:
    """``IsDelayBindingMode``: the claim's class exists and binds WaitForFirstConsumer."""
    return cls is not None and cls.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


# ---- matching (component-helpers/storage/volume/pv_helpers.go, persistentvolume/index.go) -----------


def find_matching_volume(claim: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]], *,
                         delay_binding: bool) -> Mapping[str, Any] | None:
    """``FindMatchingVolume`` on the controller's path (no node, nothing excluded).

    A volume pre-bound to the claim wins outright when its capacity and volume
    mode fit; otherwise the smallest Available volume of the claim's class
    whose labels match the claim's selector and whose capacity is at least
    the request (the first of equals in ``volumes``' order). Volumes bound to
    other claims and volumes being deleted never match; with
    ``delay_binding`` only pre-bound volumes do.
    """
    request = _request(claim)
    cls = claim_class(claim)
    matches = _selector(claim)
    best: Mapping[str, Any] | None = None
    best_size = Fraction(0)
    for pv in volumes:
        if _claim_ref(pv) is not None and not _bound_to(pv, claim):
            continue
        try:
            size = _capacity(pv)
        except InvalidObject:
            continue  # a volume whose capacity cannot be read fits no claim
        if size < request or _volume_mode(pv) != _volume_mode(claim) or _meta(pv).get("deletionTimestamp"):
            continue
        if _bound_to(pv, claim):
            return pv
        if delay_binding:
            continue  # the scheduler binds unbound volumes of delayed claims
        if _phase(pv) != "Available":
            continue
        if matches is not None and not matches(_meta(pv).get("labels") or {}):
            continue
        if _volume_class(pv) != cls:
            continue
        if best is None or size < best_size:
            best, best_size = pv, size
    return best


def _mode_key(pv: Mapping[str, Any]) -> tuple[str, ...]:
    given = set(_spec(pv).get("accessModes") or ())
    return tuple(m for m in _MODE_ORDER if m in given)


def find_best_match(claim: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]], *,
                    delay_binding: bool) -> Mapping[str, Any] | None:
    """``findBestMatchForClaim``: volumes grouped by their set of access modes; of the groups that offer
    every mode the claim asks for, the ones with the fewest modes are searched first
    (``allPossibleMatchingAccessModes``), each with ``find_matching_volume``. Volumes are taken in name
    order and groups of the same size in mode order, so that ties resolve the same way every time."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for pv in sorted(volumes, key=lambda v: str(_meta(v).get("name", ""))):
        groups[_mode_key(pv)].append(pv)
    wanted = set(_spec(claim).get("accessModes") or ())
    candidates = [k for k in groups if k and wanted <= set(k)]
    candidates.sort(key=lambda k: (len(k), [_MODE_ORDER.index(m) for m in k]))
    for key in candidates:
        found = find_matching_volume(claim, groups[key], delay_binding=delay_binding)
        if found is not None:
            return found
    return None


def _satisfies(pv: Mapping[str, Any], claim: Mapping[str, Any]) -> str:
    """``checkVolumeSatisfyClaim``: why a volume the claim asked for by name cannot be bound ("" when it can)."""
    if _meta(pv).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{_meta(pv).get("name", "")}"'
    if _capacity(pv) < _request(claim):
        return "requested PV is too small"
    if _volume_class(pv) != claim_class(claim):
        return "storageClassName does not match"
    if _volume_mode(pv) != _volume_mode(claim):
        return "incompatible volumeMode"
    if not set(_spec(claim).get("accessModes") or ()) <= set(_spec(pv).get("accessModes") or ()):
        return "incompatible accessMode"
    return ""


def _topology_terms(cls: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A class's ``allowedTopologies`` as NodeSelectorTerms (each label expression an ``In``)."""
    terms = []
    for term in cls.get("allowedTopologies") or []:
        exprs = [{"key": e.get("key", ""), "operator": "In", "values": list(e.get("values") or [])}
                 for e in (term or {}).get("matchLabelExpressions") or []]
        if exprs:
            terms.append({"matchExpressions": exprs})
    return terms


def _term_allows(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return all(labels.get(e["key"]) in e["values"] for e in term["matchExpressions"])


# ---- the controllers ----------------------------------------------------------------------------


class _VolumeLoop(Controller):
    """What the four loops share: typed lookups and Events from their upstream component."""

    component: ClassVar[str] = PV_CONTROLLER

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self._pvs = self.store.type(PVS.key)
        self._claims = self.store.type(CLAIMS.key)
        self._classes = self.store.type(CLASSES.key)

    def _record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str, *,
                component: str = "") -> None:
        self.ctx.recorder.event(obj, component=component or self.component, type=type_, reason=reason,
                                message=message)

    def _class(self, name: str) -> dict[str, Any] | None:
        e = self.store.find(self._classes, "", name) if name else None
        return e.obj() if e is not None else None

    def _volume(self, name: str) -> dict[str, Any] | None:
        e = self.store.find(self._pvs, "", name) if name else None
        return e.obj() if e is not None else None

    def _claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        e = self.store.find(self._claims, namespace, name)
        return e.obj() if e is not None else None

    def _volume_phase(self, pv: dict[str, Any], phase: str, message: str = "") -> dict[str, Any]:
        """``updateVolumePhase``: write the phase (and message) when it changes."""
        if _phase(pv) == phase:
            return pv
        status = pv.setdefault("status", {})
        status["phase"] = phase
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        return self.client.update_status(PVS.key, pv)

    def _volume_phase_event(self, pv: dict[str, Any], phase: str, type_: str, reason: str,
                            message: str) -> dict[str, Any]:
        """``updateVolumePhaseWithEvent``: the Event only when the phase changes."""
        if _phase(pv) == phase:
            return pv
        pv = self._volume_phase(pv, phase, message)
        self._record(pv, type_, reason, message)
        return pv

    async def reconcile(self, key: Key) -> float | None:
        try:
            self.sync(key)
        except InvalidObject as bad:
            obj = self._volume(key[1]) if self.primary == PVS.key else self._claim(*key)
            if obj is not None:
                self._record(obj, "Warning", bad.reason, bad.message)
        return None

    @abc.abstractmethod
    def sync(self, key: Key) -> None:
        """Bring the object ``key`` (of ``primary``) to what the loop wants of it."""


class ClaimBinder(_VolumeLoop):
    """``syncClaim``: bind each claim to a volume, ask for one to be provisioned, or say why it waits."""

    name = "persistentvolume-binder-controller"
    primary = CLAIMS.key

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        # The pods that use each claim (upstream's PodPVCIndex), for the WaitForPodScheduled Event.
        self._pod_claims: dict[tuple[str, str], tuple[str, ...]] = {}
        self._claim_pods: dict[tuple[str, str], set[str]] = defaultdict(set)
        pods = self.store.type(PODS.key)
        for e in self.store.entries(pods):
            self._on_pod(PODS.key, None, e)
        self.store.add_listener(PODS.key, self._on_pod)

    def watches(self) -> Mapping[str, Mapper]:
        return {PVS.key: self._volume_claims, CLASSES.key: self._pending_claims}

    def _volume_claims(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """A volume's write concerns the claims its claimRef names, before and after; a volume that just
        became Available concerns every claim not bound yet (upstream finds it at the next resync)."""
        keys = set()
        for e in (old, new):
            ref = _claim_ref(e.obj()) if e is not None and b'"claimRef"' in e.raw else None
            if ref is not None and ref.get("name"):
                keys.add((str(ref.get("namespace", "")), str(ref["name"])))
        if new is not None and _AVAILABLE in new.raw and (old is None or _AVAILABLE not in old.raw):
            keys.update(self._pending_claims(old, new))
        return keys

    def _pending_claims(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """A class's write concerns every claim not bound yet (a default class appearing, a class created
        after its claims)."""
        return [(e.namespace, e.name) for e in self.store.entries(self._claims) if b'"volumeName"' not in e.raw]

    def _on_pod(self, key: str, old: Entry | None, new: Entry | None) -> None:
        cur = new or old
        assert cur is not None
        pod = (cur.namespace, cur.name)
        before = self._pod_claims.pop(pod, ())
        for claim in before:
            users = self._claim_pods.get((cur.namespace, claim))
            if users is not None:
                users.discard(cur.name)
                if not users:
                    del self._claim_pods[(cur.namespace, claim)]
        if new is None or (_PVC_MARK not in new.raw and _EPHEMERAL_MARK not in new.raw):
            return
        claims = []
        for v in _spec(new.obj()).get("volumes") or []:
            if not isinstance(v, dict):
                continue
            if isinstance(v.get("persistentVolumeClaim"), dict) and v["persistentVolumeClaim"].get("claimName"):
                claims.append(str(v["persistentVolumeClaim"]["claimName"]))
            elif isinstance(v.get("ephemeral"), dict):
                claims.append(f"{new.name}-{v.get('name', '')}")  # ephemeral.VolumeClaimName
        self._pod_claims[pod] = tuple(claims)
        for claim in claims:
            self._claim_pods[(new.namespace, claim)].add(new.name)

    def sync(self, key: Key) -> None:
        claim = self._claim(*key)
        if claim is None:
            return
        if BIND_COMPLETED not in _annotations(claim):
            self._sync_unbound(claim)
        else:
            self._sync_bound(claim)

    def _sync_unbound(self, claim: dict[str, Any]) -> None:
        """``syncUnboundClaim`` (a claim whose request or selector cannot be read is reported and left alone)."""
        _request(claim)
        _selector(claim)
        if not _claim_has_class(claim) and self._assign_default_class(claim):
            return  # the update brings the claim back with its class
        name = str(_spec(claim).get("volumeName") or "")
        if not name:
            cls_name = claim_class(claim)
            cls = self._class(cls_name)
            delay = _delay_binding(cls)
            volume = find_best_match(claim, (e.obj() for e in self.store.entries(self._pvs)), delay_binding=delay)
            if volume is not None:
                self._bind(dict(volume), claim)
                return
            if delay and SELECTED_NODE not in _annotations(claim):
                self._wait_event(claim)
            elif cls_name:
                self._provision(claim, cls_name, cls)
                return
            else:
                self._record(claim, "Normal", "FailedBinding",
                             "no persistent volumes available for this claim and no storage class is set")
            self._claim_status(claim, "Pending", None)
            return
        pv = self._volume(name)
        if pv is None:  # asked for a volume that does not exist (yet)
            self._claim_status(claim, "Pending", None)
        elif _claim_ref(pv) is None:
            why = _satisfies(pv, claim)
            if why:
                self._record(claim, "Warning", "VolumeMismatch", f'Cannot bind to requested volume "{name}": {why}')
                self._claim_status(claim, "Pending", None)
            else:
                self._bind(pv, claim)
        elif _bound_to(pv, claim):
            self._bind(pv, claim)  # pre-bound to this claim: finish with the claim's uid
        else:
            self._record(claim, "Warning", "FailedBinding", f'volume "{name}" already bound to a different claim.')
            if BOUND_BY_CONTROLLER not in _annotations(claim):
                self._claim_status(claim, "Pending", None)

    def _sync_bound(self, claim: dict[str, Any]) -> None:
        """``syncBoundClaim``: a claim bound before stays bound, or is Lost."""
        name = str(_spec(claim).get("volumeName") or "")
        if not name:
            self._claim_lost(claim, "ClaimLost", "Bound claim has lost reference to PersistentVolume. "
                                                 "Data on the volume is lost!")
            return
        pv = self._volume(name)
        if pv is None:
            self._claim_lost(claim, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
        elif _claim_ref(pv) is None or (_claim_ref(pv) or {}).get("uid") == _meta(claim).get("uid"):
            self._bind(pv, claim)  # re-establish what a write lost, or confirm (no writes when all is set)
        else:
            self._claim_lost(claim, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound "
                                                     "incorrectly")

    def _claim_lost(self, claim: dict[str, Any], reason: str, message: str) -> None:
        if _phase(claim) != "Lost":
            claim = self._claim_status(claim, "Lost", None)
            self._record(claim, "Warning", reason, message)

    def _assign_default_class(self, claim: dict[str, Any]) -> bool:
        """``assignDefaultStorageClass`` (and the DefaultStorageClass admission plugin's effect)."""
        cls = default_class(e.obj() for e in self.store.entries(self._classes))
        if cls is None:
            return False
        claim.setdefault("spec", {})["storageClassName"] = _meta(cls)["name"]
        self.client.update(CLAIMS.key, claim)
        return True

    def _wait_event(self, claim: dict[str, Any]) -> None:
        """``emitEventForUnboundDelayBindingClaim``: which pods, if any, still wait to be scheduled."""
        meta = _meta(claim)
        pods = self.store.type(PODS.key)
        waiting = []
        for pod in sorted(self._claim_pods.get((meta["namespace"], meta["name"]), ())):
            e = self.store.find(pods, meta["namespace"], pod)
            if e is not None and not e.fields[_POD_NODE] and e.fields[_POD_PHASE] not in ("Succeeded", "Failed"):
                waiting.append(pod)
        if not waiting:
            self._record(claim, "Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
        elif len(waiting) == 1:
            self._record(claim, "Normal", "WaitForPodScheduled", f"waiting for pod {waiting[0]} to be scheduled")
        else:
            self._record(claim, "Normal", "WaitForPodScheduled", f"waiting for pods {','.join(waiting)} to be scheduled")

    def _provision(self, claim: dict[str, Any], cls_name: str, cls: Mapping[str, Any] | None) -> None:
        """``provisionClaim``: hand the claim to its class's provisioner (``provisionClaimOperationExternal``)."""
        if cls is None:
            self._record(claim, "Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{cls_name}" not found')
            return
        provisioner = str(cls.get("provisioner") or "")
        if provisioner == NO_PROVISIONER or not provisioner:
            self._record(claim, "Warning", "ProvisioningFailed", f"no volume plugin matched name: {provisioner}")
            return
        if _annotations(claim).get(STORAGE_PROVISIONER) != provisioner:
            ann = claim.setdefault("metadata", {}).setdefault("annotations", {})
            ann[BETA_STORAGE_PROVISIONER] = provisioner
            ann[STORAGE_PROVISIONER] = provisioner
            claim = self.client.update(CLAIMS.key, claim)
        self._record(claim, "Normal", "ExternalProvisioning",
                     f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or "
                     f"manually by the system administrator. If volume creation is delayed, please verify that the "
                     f"provisioner is running and correctly registered.")

    def _bind(self, pv: dict[str, Any], claim: dict[str, Any]) -> None:
        """``bind``: the volume's claimRef, the volume's phase, the claim's volumeName, the claim's status."""
        meta = _meta(claim)
        ref = _claim_ref(pv)
        dirty = False
        if ref is None or (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (
                meta.get("name"), meta.get("namespace"), meta.get("uid")):
            if not _bound_to(pv, claim):
                pv.setdefault("metadata", {}).setdefault("annotations", {}).setdefault(BOUND_BY_CONTROLLER, "yes")
            pv.setdefault("spec", {})["claimRef"] = claim_ref(claim)
            dirty = True
        if dirty:
            pv = self.client.update(PVS.key, pv)
        pv = self._volume_phase(pv, "Bound")
        ann = dict(_annotations(claim))
        if _spec(claim).get("volumeName") != _meta(pv)["name"] or BIND_COMPLETED not in ann:
            if _spec(claim).get("volumeName") != _meta(pv)["name"]:
                claim.setdefault("spec", {})["volumeName"] = _meta(pv)["name"]
                ann.setdefault(BOUND_BY_CONTROLLER, "yes")
            ann.setdefault(BIND_COMPLETED, "yes")
            claim.setdefault("metadata", {})["annotations"] = ann
            claim = self.client.update(CLAIMS.key, claim)
        self._claim_status(claim, "Bound", pv)

    def _claim_status(self, claim: dict[str, Any], phase: str, pv: Mapping[str, Any] | None) -> dict[str, Any]:
        """``updateClaimStatus``: phase, and the bound volume's access modes and (on binding) capacity."""
        status = dict(claim.get("status") or {})
        before = dict(status)
        status["phase"] = phase
        if pv is None:
            status.pop("accessModes", None)
            status.pop("capacity", None)
        else:
            modes = _spec(pv).get("accessModes")
            if modes:
                status["accessModes"] = list(modes)
            else:
                status.pop("accessModes", None)
            if _phase(claim) != phase:
                storage = (_spec(pv).get("capacity") or {}).get("storage")
                if storage is None:
                    raise InvalidObject("VolumeMismatch",
                                        f'PersistentVolume "{_meta(pv).get("name", "")}" is without a storage capacity')
                have = (status.get("capacity") or {}).get("storage")
                if have is None or _quantity(claim, "status.capacity.storage", have) != _capacity(pv):
                    status["capacity"] = dict(_spec(pv).get("capacity") or {})
        if status == before:
            return claim
        claim["status"] = status
        return self.client.update_status(CLAIMS.key, claim)


class VolumeBinder(_VolumeLoop):
    """``syncVolume``: Available, Bound or Released, and the reclaim policy of released volumes."""

    name = "persistentvolume-binder-controller:volumes"
    primary = PVS.key

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self._by_claim: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._claim_of: dict[str, tuple[str, str]] = {}
        for e in self.store.entries(self._pvs):
            self._on_volume(PVS.key, None, e)
        self.store.add_listener(PVS.key, self._on_volume)

    def watches(self) -> Mapping[str, Mapper]:
        return {CLAIMS.key: self._claim_volumes}

    def _on_volume(self, key: str, old: Entry | None, new: Entry | None) -> None:
        """Index the volumes by the claim their claimRef names (upstream reads its claim cache instead)."""
        cur = new or old
        assert cur is not None
        was = self._claim_of.pop(cur.name, None)
        if was is not None:
            names = self._by_claim.get(was)
            if names is not None:
                names.discard(cur.name)
                if not names:
                    del self._by_claim[was]
        ref = _claim_ref(new.obj()) if new is not None and b'"claimRef"' in new.raw else None
        if ref is not None and ref.get("name"):
            claim = (str(ref.get("namespace", "")), str(ref["name"]))
            self._claim_of[cur.name] = claim
            self._by_claim[claim].add(cur.name)

    def _claim_volumes(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        """A claim's write concerns the volume it names and the volumes whose claimRef names it."""
        cur = new or old
        assert cur is not None
        keys = {("", name) for name in self._by_claim.get((cur.namespace, cur.name), ())}
        for e in (old, new):
            if e is not None and b'"volumeName"' in e.raw:
                name = _spec(e.obj()).get("volumeName")
                if name:
                    keys.add(("", str(name)))
        return keys

    def sync(self, key: Key) -> None:
        pv = self._volume(key[1])
        if pv is None:
            return
        ref = _claim_ref(pv)
        if ref is None or not ref.get("uid"):  # unused, or pre-bound to a claim its sync will bind
            self._volume_phase(pv, "Available")
            return
        claim = self._claim(str(ref.get("namespace", "")), str(ref.get("name", "")))
        if claim is not None and _meta(claim).get("uid") != ref.get("uid"):
            claim = None  # the claim it was bound to was deleted, and another took its name
        if claim is None:
            if _phase(pv) not in ("Released", "Failed"):
                pv = self._volume_phase(pv, "Released")
            self._reclaim(pv)
            return
        claimed = str(_spec(claim).get("volumeName") or "")
        if not claimed:
            if _volume_mode(pv) != _volume_mode(claim):
                self._record(pv, "Warning", "VolumeMismatch", f'Cannot bind PersistentVolume to requested '
                             f'PersistentVolumeClaim "{_meta(claim)["name"]}" due to incompatible volumeMode.')
                self._record(claim, "Warning", "VolumeMismatch", f'Cannot bind PersistentVolume '
                             f'"{_meta(pv)["name"]}" to requested PersistentVolumeClaim due to incompatible volumeMode.')
            # Otherwise the claim's sync binds it (the claim loop watches this volume's writes).
        elif claimed == _meta(pv)["name"]:
            self._volume_phase(pv, "Bound")
        elif PROVISIONED_BY in _annotations(pv) and _spec(pv).get("persistentVolumeReclaimPolicy") == "Delete":
            if _phase(pv) not in ("Released", "Failed"):  # provisioned for a claim that got another volume
                pv = self._volume_phase(pv, "Released")
            self._reclaim(pv)
        else:
            self._unbind(pv)

    def _unbind(self, pv: dict[str, Any]) -> None:
        """``unbindVolume``: forget a binding the controller made, or only the uid of a user's pre-binding."""
        if BOUND_BY_CONTROLLER in _annotations(pv):
            pv["spec"].pop("claimRef", None)
            pv["metadata"]["annotations"].pop(BOUND_BY_CONTROLLER, None)
            if not pv["metadata"]["annotations"]:
                del pv["metadata"]["annotations"]
        else:
            pv["spec"]["claimRef"].pop("uid", None)
        pv = self.client.update(PVS.key, pv)
        self._volume_phase(pv, "Available")

    def _reclaim(self, pv: dict[str, Any]) -> None:
        """``reclaimVolume``, for a volume whose claim is gone."""
        policy = _spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        name = _meta(pv)["name"]
        if policy == "Retain":
            return
        if policy == "Recycle":
            self._volume_phase_event(pv, "Failed", "Warning", "VolumeFailedRecycle",
                                     "No recycler plugin found for the volume!")
        elif policy == "Delete":
            if not _deleted_externally(pv):
                self._volume_phase_event(pv, "Failed", "Warning", "VolumeFailedDelete",
                                         f'error getting deleter volume plugin for volume "{name}": '
                                         f"no deletable volume plugin matched")
        else:
            self._volume_phase_event(pv, "Failed", "Warning", "VolumeUnknownReclaimPolicy",
                                     "Volume has unrecognized PersistentVolumeReclaimPolicy")


def _deleted_externally(pv: Mapping[str, Any]) -> bool:
    """``findDeletablePlugin`` finds no in-tree deleter but an external one: the volume was provisioned by
    a provisioner other than ``kubernetes.io/no-provisioner``, or is a CSI volume (what ``CSIDeleter`` deletes)."""
    by = _annotations(pv).get(PROVISIONED_BY)
    if by is not None:
        return bool(by) and by != NO_PROVISIONER
    return bool((_spec(pv).get("csi") or {}).get("driver"))
