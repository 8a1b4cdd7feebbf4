"""VolumeBinding: a pod's PersistentVolumeClaims decide where it can go (upstream's
volumebinding plugin: ``volume_binding.go``, ``binder.go``, ``scorer.go``, with
``component-helpers/storage/volume``'s FindMatchingVolume).

PreFilter reads the pod's claims (``spec.volumes[].persistentVolumeClaim`` and generic
ephemeral volumes, whose claim is ``<pod>-<volume>`` and must be owned by the pod). A
pod without claims skips the plugin. A missing claim, a claim being deleted, a Lost
one, or an unbound claim whose class binds Immediately (the PV controller binds it,
not the scheduler) rejects the pod on every node with upstream's message. Bound claims
whose PVs name nodes by ``kubernetes.io/hostname In`` limit the pod to those nodes
(upstream's GetEligibleNodes).

Filter, for every node at once, in upstream's order (FindPodVolumes):
- a bound claim's PV must match the node (its ``spec.nodeAffinity.required``, matched
  over the node labels): ``node(s) had volume node affinity conflict``; a bound
  claim whose PV is gone: ``node(s) unavailable due to one or more pvc(s) bound to
  non-existent pv(s)``;
- an unbound WaitForFirstConsumer claim already given a node (the selected-node
  annotation) fits that node only; the others, smallest request first, each take the
  smallest Available PV of their class that fits them (access modes, volume mode,
  selector, volume attributes class, capacity >= request) and whose node affinity
  matches the node -- a PV pre-bound to the claim wins outright, and a PV chosen for
  an earlier claim of the pod is not chosen again; a claim left without a PV must be
  provisionable there: its class has a provisioner, the node satisfies the class's
  ``allowedTopologies`` (else ``node(s) didn't find available persistent volumes to
  bind``), and -- when the class's CSIDriver publishes capacity -- a
  CSIStorageCapacity of the class that the node can reach holds the request (else
  ``node(s) did not have enough free storage``).
All reasons are unresolvable, as upstream's. The per-node work is numpy over the
table's labels: the node masks of every PV of a class are built once (one row per
distinct affinity; the ``key In [value]`` of local volumes compared for all of them at
once) and kept until the nodes or the class's PVs change, and a claim's candidates are
matched against all nodes a few hundred at a time, smallest first. Only the PVs
pre-bound to the claim and the class's PVs free to bind (``Volumes`` keeps both sets
as PVs change) are looked at, not every PV of the class. Upstream's lists of PVs have
no defined order; among equals vecsched takes the first by name.

Score (upstream's StorageCapacityScoring, on by default in the Kubernetes release
vecsched follows, 1.37; the arg ``vecsched.io/storageCapacityScoring: false`` turns it
off): per storage class, the utilisation ``requested * 100 / capacity`` of the PVs
chosen for the pod on that node -- or, when none is chosen there, of the
CSIStorageCapacity that would hold the provisioned volumes -- mapped through ``shape``
(default: 0% -> 10, 100% -> 0, scaled to 0..100), averaged over the classes.

Reserve pre-binds the chosen PVs (claimRef and the bound-by-controller annotation) and
marks the claims to provision (selected-node annotation) in the ``Volumes`` assume
cache, and leaves a ``VolumeBindingPlan`` in the cycle state for the live scheduler's
PreBind; Unreserve restores what Reserve assumed. The verdict depends on the node
alone: the preemption dry run keeps it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.batching import SKIP, Signed
from scoring.args import ArgsError, boolean, integer, known_fields, mapping
from scoring.framework import (CycleState, FilterPlugin, NodeOnlyFilter, NodeSubset, PreFilterPlugin, Reason,
                               ReservePlugin, ScorePlugin, UnreservePlugin, WaitingPods)
from scoring.objects import ObjectError, PodInfo
from scoring.plugins.node_affinity import terms_mask
from scoring.plugins.pod_selectors import Selector, parse_selector
from scoring.plugins.resource_args import parse_shape, validate_shape
from scoring.plugins.resource_scoring import broken_linear_table
from scoring.plugins.volume_zone import uses_volumes
from scoring.table import BoolArray, IntArray, NodeTable, read_only
from scoring.volumes import (CLAIM_LOST, NO_PROVISIONER, SELECTED_NODE, VOLUME_BINDING_PLAN,
                             WAIT_FOR_FIRST_CONSUMER, CSIStorageCapacity, PersistentVolume, PersistentVolumeClaim,
                             StorageClass, VolumeBindingPlan, Volumes, is_fully_bound, pod_volumes, pv_shape,
                             with_claim_ref, with_selected_node)

__all__ = [
    "NAME", "ERR_REASON_BIND_CONFLICT", "ERR_REASON_NODE_CONFLICT", "ERR_REASON_NOT_ENOUGH_SPACE",
    "ERR_REASON_PV_NOT_EXIST", "ERR_UNBOUND_IMMEDIATE", "SCORING_ARG", "DEFAULT_SHAPE", "VOLUME_BINDING_PLAN",
    "PodClaims", "Match", "Outcome", "ClassMasks", "VolumeBinding", "pod_claims", "eligible_nodes", "pv_mask",
    "class_masks", "selector_mask",
    "topology_mask", "find_matching", "evaluate", "capacity_score", "new",
]

NAME: Final = "VolumeBinding"
ERR_REASON_BIND_CONFLICT: Final = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT: Final = "node(s) had volume node affinity conflict"
ERR_REASON_NOT_ENOUGH_SPACE: Final = "node(s) did not have enough free storage"
ERR_REASON_PV_NOT_EXIST: Final = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_UNBOUND_IMMEDIATE: Final = "pod has unbound immediate PersistentVolumeClaims"
SCORING_ARG: Final = "vecsched.io/storageCapacityScoring"
"""Turns upstream's StorageCapacityScoring behaviour on or off (default on, as in 1.37)."""
DEFAULT_BIND_TIMEOUT: Final = 600
DEFAULT_SHAPE: Final = ((0, 10), (100, 0))
"""Upstream's default shape with StorageCapacityScoring: the emptier the storage, the better."""
HOSTNAME: Final = "kubernetes.io/hostname"
_MAX_UTILIZATION: Final = 100
_CLAIMS_KEY: Final = "PreFilter" + NAME
_OUTCOME_KEY: Final = NAME + "/outcome"
_BOUND_SOURCES: Final = frozenset({"persistentVolumeClaim", "ephemeral"})
"""The volumes whose claims this plugin binds (``pod_claims``)."""


# ---- PreFilter: the pod's claims ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodClaims:
    """Upstream's PodVolumeClaims: the pod's claims, bound and to bind (WaitForFirstConsumer)."""

    bound: tuple[PersistentVolumeClaim, ...]
    delay: tuple[PersistentVolumeClaim, ...]
    keys: tuple[str, ...]
    """Every claim key of the pod, in ``spec.volumes`` order."""


def pod_claims(pod: PodInfo, volumes: Volumes) -> PodClaims | str | None:
    """Upstream's podHasPVCs and GetPodVolumeClaims: None when the pod has no claim (Skip),
    the message rejecting the pod, or its claims."""
    try:
        found = pod_volumes(pod)
    except ObjectError as e:
        return str(e)
    if not found.claims:
        return None
    names = tuple(dict.fromkeys(found.claims))
    for name in names:
        claim = volumes.api_claim(f"{pod.namespace}/{name}")
        ephemeral = name in found.ephemeral
        if claim is None:
            if ephemeral:
                return f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"'
            return f'persistentvolumeclaim "{name}" not found'
        if claim.phase == CLAIM_LOST:
            return f'persistentvolumeclaim "{name}" bound to non-existent persistentvolume "{claim.volume_name}"'
        if claim.deleting:
            return f'persistentvolumeclaim "{name}" is being deleted'
        if ephemeral and pod.uid not in claim.owners:  # upstream's ephemeral.VolumeIsForPod
            return (f"PVC {claim.namespace}/{claim.name} was not created for pod "
                    f"{pod.namespace}/{pod.name} (pod is not owner)")
    bound: list[PersistentVolumeClaim] = []
    delay: list[PersistentVolumeClaim] = []
    for name in names:
        claim = volumes.claim(pod.namespace, name)  # the assumed version, as upstream's pvcCache
        assert claim is not None
        if is_fully_bound(claim):
            bound.append(claim)
            continue
        sc = volumes.storage_class(claim.class_name) if claim.class_name else None
        if sc is None or sc.binding_mode != WAIT_FOR_FIRST_CONSUMER or claim.volume_name:
            return ERR_UNBOUND_IMMEDIATE  # the PV controller binds these (pre-bound ones too)
        delay.append(claim)
    return PodClaims(tuple(bound), tuple(delay), tuple(f"{pod.namespace}/{n}" for n in names))


def eligible_nodes(volumes: Volumes, bound: Sequence[PersistentVolumeClaim]) -> frozenset[str] | None:
    """Upstream's GetEligibleNodes: the nodes the bound claims' PVs name in every term by
    ``kubernetes.io/hostname In`` (GetLocalPersistentVolumeNodeNames), intersected over
    the PVs that name any; None when no PV names nodes, or a PV is missing."""
    eligible: set[str] | None = None
    for claim in bound:
        pv = volumes.pv(claim.volume_name)
        if pv is None:
            return None
        if pv.terms is None:
            continue
        names: set[str] = set()
        for term in pv.terms:
            term_names: set[str] | None = None
            for r in term.expressions:
                if r.key == HOSTNAME and r.operator == "In":
                    term_names = set(r.values) if term_names is None else term_names & set(r.values)
            names |= term_names or set()
        if names:
            eligible = names if eligible is None else eligible & names
    return None if eligible is None else frozenset(eligible)


# ---- masks over nodes ---------------------------------------------------------------------------


def pv_mask(table: NodeTable, pv: PersistentVolume) -> BoolArray:
    """Nodes ``[:n]`` that the PV's node affinity admits (upstream's CheckNodeAffinity),
    memoised per distinct affinity until the nodes change."""
    terms = pv.terms
    if terms is None:
        return table.node_derived((NAME, "everywhere"), lambda: read_only(np.ones(table.n, np.bool_)))
    return table.node_derived((NAME, "pv", terms), lambda: read_only(terms_mask(terms, table)))


@dataclass(frozen=True, slots=True)
class ClassMasks:
    """The node masks of every PV of a class: ``masks[rows[pv name]]``, one row per
    distinct node affinity (a zonal class has a few rows, a class of local volumes one
    per node)."""

    rows: Mapping[str, int]
    masks: BoolArray
    starts: npt.NDArray[np.intp]
    """The nodes each row admits, sparse: row ``r``'s are ``nodes[starts[r]:starts[r + 1]]``."""
    nodes: npt.NDArray[np.intp]


_CHUNK: Final = 256
"""Candidate PVs matched against the nodes at once: enough that a class of zonal PVs is
settled in one step, few enough that a class of thousands of local PVs does not build a
candidates x nodes matrix at once."""


_SPARSE: Final = 8
"""How much dearer a (candidate, node) pair visited in the sparse masks is than a cell of
the dense matrix: the sparse path is taken when it visits fewer than 1/_SPARSE as many."""


def class_masks(table: NodeTable, volumes: Volumes, class_name: str) -> ClassMasks:
    """The masks of the PVs of ``class_name`` (as seen, assumed versions included),
    memoised until the nodes or the class's PVs' node affinities change -- one entry per
    class, however many PVs it has."""
    def build() -> ClassMasks:
        unique: dict[object, int] = {}
        rows: dict[str, int] = {}
        for name, pv in volumes.pvs_of_class(class_name).items():
            rows[name] = unique.setdefault(pv.terms, len(unique))
        stacked = np.zeros((len(unique), table.n), np.bool_)
        # The common shape of a local volume -- one term, one ``key In [value]`` -- is
        # compared for all such PVs of a key at once; any other affinity is matched alone.
        single: dict[str, list[tuple[int, int]]] = {}
        for terms, i in unique.items():
            if terms is None:
                stacked[i] = True
                continue
            assert isinstance(terms, tuple)
            t = terms[0] if len(terms) == 1 else None
            r = t.expressions[0] if t is not None and len(t.expressions) == 1 and not t.fields else None
            if r is not None and r.operator == "In" and len(r.values) == 1:
                single.setdefault(r.key, []).append((i, table.labels.code(r.key, r.values[0])))
            else:
                stacked[i] = terms_mask(terms, table)
        for key, pairs in single.items():
            at = np.array([i for i, _ in pairs], np.intp)
            codes = np.array([c for _, c in pairs], np.int32)
            # code -1 (no node has the value) must not match the nodes without the label
            stacked[at] = (table.labels.column(key)[None, :] == codes[:, None]) & (codes[:, None] >= 0)
        at_rows, at_nodes = np.nonzero(stacked)  # row by row, nodes ascending
        starts = np.zeros(len(unique) + 1, np.intp)
        np.cumsum(np.bincount(at_rows, minlength=len(unique)), out=starts[1:])
        return ClassMasks(rows, read_only(stacked), read_only(starts), read_only(at_nodes.astype(np.intp)))
    return table.node_derived((NAME, "class", class_name, volumes.affinity_version(class_name)), build)


def _mask_of(table: NodeTable, volumes: Volumes, pv: PersistentVolume) -> BoolArray:
    cm = class_masks(table, volumes, pv.storage_class)
    row = cm.rows.get(pv.name)
    return pv_mask(table, pv) if row is None else cm.masks[row]


def selector_mask(table: NodeTable, selector: Selector) -> BoolArray:
    """Nodes ``[:n]`` whose labels a LabelSelector matches, memoised until the nodes change."""
    def build() -> BoolArray:
        if selector.nothing:
            return read_only(np.zeros(table.n, np.bool_))
        mask = np.ones(table.n, np.bool_)
        for r in selector.requirements:
            col = table.labels.column(r.key)
            if r.operator in ("In", "NotIn"):
                codes = [c for v in r.values if (c := table.labels.code(r.key, v)) >= 0]
                hit = np.isin(col, codes) if codes else np.zeros(table.n, np.bool_)
                mask &= hit if r.operator == "In" else ~hit
            else:
                mask &= (col >= 0) if r.operator == "Exists" else (col < 0)
        return read_only(mask)
    return table.node_derived((NAME, "selector", selector), build)


def topology_mask(table: NodeTable, sc: StorageClass) -> BoolArray:
    """Upstream's MatchTopologySelectorTerms over ``allowedTopologies``: every node when
    there are none; otherwise nodes matching any non-empty term (each expression: the
    label has one of the values)."""
    terms = tuple(tuple((str(e.get("key") or ""), tuple(e.get("values") or ()))
                        for e in (t.get("matchLabelExpressions") or ())) for t in sc.allowed_topologies)

    def build() -> BoolArray:
        if not terms:
            return read_only(np.ones(table.n, np.bool_))
        mask = np.zeros(table.n, np.bool_)
        for term in terms:
            if not term:
                continue  # an empty term selects nothing
            hit = np.ones(table.n, np.bool_)
            for key, values in term:
                codes = [c for v in values if (c := table.labels.code(key, v)) >= 0]
                hit &= np.isin(table.labels.column(key), codes) if codes else False
            mask |= hit
        return read_only(mask)
    return table.node_derived((NAME, "topology", terms), build)


# ---- Filter: FindPodVolumes over all nodes ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """One claim's static binding per node: ``choice[row]`` indexes ``candidates`` (-1: none)."""

    claim: PersistentVolumeClaim
    candidates: tuple[PersistentVolume, ...]
    choice: npt.NDArray[np.int32]


def _fits(pv: PersistentVolume, claim: PersistentVolumeClaim) -> bool:
    """What FindMatchingVolume asks of every PV: big enough, the claim's volume mode and
    attributes class, not being deleted."""
    return (pv.capacity >= claim.request and pv.volume_mode == claim.volume_mode
            and pv.attributes_class == claim.attributes_class and not pv.deleting)


def _free(volumes: Volumes, claim: PersistentVolumeClaim, selector: Selector | None) -> list[PersistentVolume]:
    """The PVs of the claim's class free to bind (no claimRef, not being deleted,
    Available) that fit it, smallest first, then by name."""
    by_size = volumes.available_by_size(claim.class_name)
    start = bisect_left(by_size, claim.request, key=_capacity_of)  # smaller ones never fit
    mode, attributes, modes = claim.volume_mode, claim.attributes_class, claim.access_modes
    # Per PV shape (volume mode, attributes class, access modes): whether it suits the claim.
    fits = {shape: shape[0] == mode and shape[1] == attributes and all(m in shape[2] for m in modes)
            for shape in volumes.available_shapes(claim.class_name)}
    if not any(fits.values()):
        return []
    if selector is None and all(fits.values()):
        return list(by_size[start:])  # the common case: one shape, and it suits the claim
    return [pv for pv in by_size[start:]
            if fits[pv_shape(pv)] and (selector is None or selector.matches(pv.labels))]


def _capacity_of(pv: PersistentVolume) -> int:
    return pv.capacity


def _first_sparse(cm: ClassMasks, rows: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp], open_: BoolArray,
                  taken: Sequence[npt.NDArray[np.int64]], ids: npt.NDArray[np.int64],
                  choice: npt.NDArray[np.int32], base: int) -> None:
    """Where ``open_``, set ``choice`` to ``base`` + the first candidate (``rows`` of
    ``cm``, in order) whose affinity admits the node and that no earlier claim took
    there (``taken``, by candidate ``ids``): the dense matching's result, read from the
    sparse masks."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    cand = np.repeat(np.arange(len(rows)), lengths)
    pos = np.arange(total) + np.repeat(cm.starts[rows] - (ends - lengths), lengths)
    node = cm.nodes[pos]
    keep = open_[node]
    for earlier in taken:
        keep &= earlier[node] != ids[cand]
    cand, node = cand[keep], node[keep]
    first = np.full(len(choice), len(rows), np.int64)
    np.minimum.at(first, node, cand)
    hit = first < len(rows)
    choice[hit] = base + first[hit]
    open_[hit] = False


def find_matching(table: NodeTable, volumes: Volumes, claims: Sequence[PersistentVolumeClaim], *,
                  excluded: Mapping[str, BoolArray] | None = None) -> list[Match]:
    """Upstream's findMatchingVolumes with FindMatchingVolume, per node: the claims, smallest
    request first, each take the PV pre-bound to them or the smallest fitting Available PV
    whose node affinity admits the node, never one an earlier claim took on that node
    (nor one ``excluded`` on that node: upstream's excludedVolumes). Among PVs upstream
    would find in unspecified order, the first by name is taken."""
    n = table.n
    # What earlier claims took, per node: arrays of PV ids (-1: none), one per claim.
    ids: dict[str, int] = {}
    taken: list[npt.NDArray[np.int64]] = [np.where(mask, ids.setdefault(name, len(ids)), -1)
                                          for name, mask in (excluded or {}).items()]
    out: list[Match] = []
    ordered = sorted(claims, key=lambda c: c.request)
    for at, claim in enumerate(ordered):
        # PV ids matter when some claim took PVs before this one, or one comes after it
        with_ids = bool(taken) or at < len(ordered) - 1
        raw_selector = claim.selector
        selector = None if raw_selector is None else parse_selector(raw_selector, "spec.selector")
        # Only the PVs of the class pre-bound to the claim, or free to bind (no claimRef,
        # not being deleted, Available), can match: the rest upstream skips.
        prebound = [pv for _, pv in sorted(volumes.prebound_to(claim.key).items())
                    if pv.storage_class == claim.class_name and pv.is_bound_to(claim) and _fits(pv, claim)]
        free = _free(volumes, claim, selector)
        candidates = (*prebound, *free)
        cand_ids = np.array([ids.setdefault(pv.name, len(ids)) for pv in candidates] if with_ids else (), np.int64)
        cm = class_masks(table, volumes, claim.class_name)
        choice = np.full(n, -1, np.int32)
        decided = np.zeros(n, np.bool_)
        for i, pv in enumerate(prebound):
            # A pre-bound PV decides the claim: taken where it fits, no match where it does not.
            avail = ~decided
            for earlier in taken:
                avail &= earlier != cand_ids[i]
            choice[avail & cm.masks[cm.rows[pv.name]]] = i
            decided |= avail
        open_ = ~decided
        rows = np.array([cm.rows[pv.name] for pv in free], np.intp)
        lengths = cm.starts[rows + 1] - cm.starts[rows]
        if len(free) and int(lengths.sum()) * _SPARSE < min(len(free), _CHUNK) * n:
            # Few (candidate, node) pairs -- PVs of one node each, as local volumes: visit
            # those rather than a candidates x nodes matrix.
            _first_sparse(cm, rows, lengths, open_, taken, cand_ids[len(prebound):], choice, len(prebound))
            rows = rows[:0]  # nothing left for the dense matching below
        for start in range(0, len(rows), _CHUNK):
            if not open_.any():
                break
            # the first candidate (smallest, then by name) whose affinity admits the node
            sub = cm.masks[rows[start:start + _CHUNK]] & open_
            chunk_ids = cand_ids[len(prebound) + start:len(prebound) + start + _CHUNK]
            for earlier in taken:
                sub &= earlier[None, :] != chunk_ids[:, None]
            hit = np.flatnonzero(sub.any(axis=0))
            choice[hit] = len(prebound) + start + sub[:, hit].argmax(axis=0)
            open_[hit] = False
        if candidates and with_ids:
            taken.append(np.where(choice >= 0, cand_ids[np.maximum(choice, 0)], -1))
        out.append(Match(claim, candidates, choice))
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """FindPodVolumes for every node: the reasons of the nodes that fail, and for the
    others the static bindings (``matches``) and the claims to provision (``provisions``:
    claim, nodes where it is provisioned, and per node the capacity of the
    CSIStorageCapacity that admitted it, -1 when none was consulted)."""

    reasons: tuple[Reason, ...]
    matches: tuple[Match, ...]
    provisions: tuple[tuple[PersistentVolumeClaim, BoolArray, IntArray], ...]


def _capacity(table: NodeTable, volumes: Volumes, claim: PersistentVolumeClaim, sc: StorageClass) -> IntArray | None:
    """Upstream's hasEnoughCapacity per node: None when no capacity is checked (no request,
    or the driver does not publish capacity); else per node the capacity of the first
    CSIStorageCapacity (by namespace/name) of the class that holds the request and that
    the node reaches, -1 where there is none."""
    if not claim.has_request:
        return None
    driver = volumes.driver(sc.provisioner)
    if driver is None or not driver.storage_capacity:
        return None
    found = np.full(table.n, -1, np.int64)
    caps: list[CSIStorageCapacity] = sorted(volumes.capacities(), key=lambda c: c.key)
    for cap in caps:
        limit = cap.maximum_volume_size if cap.maximum_volume_size is not None else cap.capacity
        if cap.storage_class != sc.name or limit is None or limit < claim.request or cap.node_topology is None:
            continue
        reach = selector_mask(table, parse_selector(cap.node_topology, "nodeTopology")) & (found < 0)
        found[reach] = cap.capacity if cap.capacity is not None else 0
    return found


def evaluate(table: NodeTable, volumes: Volumes, claims: PodClaims) -> Outcome:
    """Upstream's FindPodVolumes for every node ``[:n]`` at once."""
    n = table.n
    node_conflict = np.zeros(n, np.bool_)
    pv_missing = np.zeros(n, np.bool_)
    undecided = np.ones(n, np.bool_)
    for claim in claims.bound:  # checkBoundClaims: the first failing claim decides the node
        pv = volumes.pv(claim.volume_name)
        if pv is None:
            pv_missing |= undecided
            break
        mask = _mask_of(table, volumes, pv)
        node_conflict |= undecided & ~mask
        undecided &= mask
    bind_conflict = np.zeros(n, np.bool_)
    no_space = np.zeros(n, np.bool_)
    errors: dict[str, BoolArray] = {}
    matches: list[Match] = []
    provisions: list[tuple[PersistentVolumeClaim, BoolArray, IntArray]] = []
    if claims.delay:
        live = np.ones(n, np.bool_)
        selected = [c for c in claims.delay if SELECTED_NODE in c.annotations]
        for claim in selected:
            row = table.index.get(claim.annotations[SELECTED_NODE])
            only = np.zeros(n, np.bool_)
            if row is not None:
                only[row] = True
            live &= only
        bind_conflict |= ~live
        matches = find_matching(table, volumes, [c for c in claims.delay if SELECTED_NODE not in c.annotations])
        pending = live.copy()
        order = [(c, live) for c in selected] + [(m.claim, live & (m.choice < 0)) for m in matches]
        for claim, wanted in order:  # checkVolumeProvisions: the first failing claim decides the node
            need = wanted & pending
            if not need.any():
                continue
            sc = volumes.storage_class(claim.class_name) if claim.class_name else None
            if sc is None:
                message = (f'no class for claim "{claim.key}"' if not claim.class_name
                           else f'failed to find storage class "{claim.class_name}"')
                errors[message] = errors.get(message, np.zeros(n, np.bool_)) | need
                pending &= ~need
                continue
            if not sc.provisioner or sc.provisioner == NO_PROVISIONER:
                bind_conflict |= need
                pending &= ~need
                continue
            off = need & ~topology_mask(table, sc)
            bind_conflict |= off
            pending &= ~off
            need &= ~off
            found = _capacity(table, volumes, claim, sc)
            if found is None:
                found = np.full(n, -1, np.int64)
            else:
                short = need & (found < 0)
                no_space |= short
                pending &= ~short
            provisions.append((claim, wanted, found))
    failed_with_error = np.zeros(n, np.bool_)
    for mask in errors.values():
        failed_with_error |= mask
    reasons = [Reason(ERR_REASON_NODE_CONFLICT, node_conflict), Reason(ERR_REASON_BIND_CONFLICT, bind_conflict),
               Reason(ERR_REASON_NOT_ENOUGH_SPACE, no_space), Reason(ERR_REASON_PV_NOT_EXIST, pv_missing)]
    out = [Reason(r.message, r.nodes & ~failed_with_error, unresolvable=True) for r in reasons]
    out += [Reason(m, mask, unresolvable=True) for m, mask in errors.items()]
    return Outcome(tuple(r for r in out if r.nodes.any()), tuple(matches), tuple(provisions))


# ---- Score ---------------------------------------------------------------------------------------


def capacity_score(requested: IntArray, capacity: IntArray, present: BoolArray, lookup: IntArray) -> IntArray:
    """Upstream's buildScorerFunction, over nodes x classes: per class
    ``lookup[requested * 100 // capacity]`` (``lookup[100]`` when the capacity is 0 or
    smaller than the request), averaged over the classes ``present`` on each node and
    rounded half up (math.Round); 0 where no class is present."""
    full = (capacity == 0) | (requested > capacity)
    util = np.where(full, _MAX_UTILIZATION, requested * _MAX_UTILIZATION // np.where(capacity == 0, 1, capacity))
    scores = np.where(present, lookup[np.clip(util, 0, _MAX_UTILIZATION)], 0).sum(axis=1)
    count = present.sum(axis=1)
    return np.where(count > 0, (2 * scores + count) // np.maximum(2 * count, 1), 0).astype(np.int64)


# ---- the plugin ----------------------------------------------------------------------------------


class VolumeBinding(NodeOnlyFilter):
    name: Final = NAME

    def __init__(self, *, bind_timeout: int = DEFAULT_BIND_TIMEOUT,
                 shape: Sequence[tuple[int, int]] | None = DEFAULT_SHAPE) -> None:
        self.bind_timeout = bind_timeout
        self.lookup = None if shape is None else broken_linear_table(shape)
        """Score per utilisation 0..100; None when StorageCapacityScoring is off."""

    def _claims(self, pod: PodInfo, table: NodeTable, state: CycleState) -> PodClaims | str | None:
        if _CLAIMS_KEY not in state:
            state[_CLAIMS_KEY] = pod_claims(pod, Volumes.of(table))
        got: PodClaims | str | None = state[_CLAIMS_KEY]
        return got

    def _outcome(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Outcome | str | None:
        claims = self._claims(pod, table, state)
        if claims is None or isinstance(claims, str):
            return claims
        volumes = Volumes.of(table)
        key = (table.n, table.node_generation, volumes.generation)
        cached = state.get(_OUTCOME_KEY)
        if cached is None or cached[0] != key:
            cached = state[_OUTCOME_KEY] = (key, evaluate(table, volumes, claims))
        outcome: Outcome = cached[1]
        return outcome

    def sign_stamp(self, table: NodeTable) -> None:
        """Batching: ``sign`` reads the pod alone, nothing of the table."""
        return None

    def sign(self, pod: PodInfo, table: NodeTable) -> Signed | str:
        """Batching: a pod without claims (persistent or generic ephemeral) skips this
        plugin; others are unsignable."""
        if uses_volumes(pod, _BOUND_SOURCES):
            return "the pod has persistent or ephemeral volume claims"
        return Signed(SKIP)

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None:
        claims = self._claims(pod, table, state)
        if claims is None or isinstance(claims, str):
            return claims
        names = eligible_nodes(Volumes.of(table), claims.bound)
        return None if names is None else NodeSubset(names)

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None:
        outcome = self._outcome(pod, table, state)
        if outcome is None:
            return None  # upstream's PreFilter Skip
        if isinstance(outcome, str):  # when the profile did not run PreFilter
            return [Reason(outcome, np.ones(table.n, np.bool_), unresolvable=True)]
        return outcome.reasons or None

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None:
        if self.lookup is None:
            return None  # upstream's PreScore Skip without StorageCapacityScoring
        outcome = self._outcome(pod, table, state)
        if outcome is None or isinstance(outcome, str):
            return None
        k = len(nodes)
        classes: dict[str, int] = {}
        rows: list[tuple[int, npt.NDArray[np.bool_], IntArray, IntArray, bool]] = []
        static = np.zeros(k, np.bool_)
        for m in outcome.matches:
            choice = m.choice[nodes]
            has = choice >= 0
            if not has.any():
                continue
            static |= has
            # per candidate chosen somewhere: its class (upstream's BindingInfo.StorageClassName) and size
            cls = np.zeros(len(m.candidates), np.int64)
            size = np.zeros(len(m.candidates), np.int64)
            at = np.unique(choice[has])
            chosen = [m.candidates[i] for i in at.tolist()]
            size[at] = [pv.capacity for pv in chosen]
            spec_classes = {pv.spec_class for pv in chosen}
            cls[at] = (classes.setdefault(spec_classes.pop(), len(classes)) if len(spec_classes) == 1
                       else [classes.setdefault(pv.spec_class, len(classes)) for pv in chosen])
            picked = np.maximum(choice, 0)
            for c in np.unique(cls[choice[has]]).tolist():
                sel = has & (cls[picked] == c)
                rows.append((c, sel, np.where(sel, m.claim.request, 0), np.where(sel, size[picked], 0), True))
        for claim, wanted, found in outcome.provisions:
            got = found[nodes]
            sel = wanted[nodes] & (got >= 0) & ~static
            if sel.any():
                c = classes.setdefault(claim.spec_class or "", len(classes))
                rows.append((c, sel, np.where(sel, claim.request, 0), np.where(sel, got, 0), False))
        requested = np.zeros((k, max(len(classes), 1)), np.int64)
        capacity = np.zeros_like(requested)
        present = np.zeros(requested.shape, np.bool_)
        for c, sel, req, cap, summed in rows:
            requested[:, c] += req
            # Static bindings add up their PVs; a provisioned class takes the pool's capacity once.
            capacity[:, c] = capacity[:, c] + cap if summed else np.where(sel, cap, capacity[:, c])
            present[:, c] |= sel
        return capacity_score(requested, capacity, present, self.lookup)

    def reserve(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> Mapping[str, str] | None:
        """Upstream's AssumePodVolumes: assume the chosen PVs pre-bound and the claims to
        provision annotated with the node, and leave the plan in ``state``."""
        outcome = self._outcome(pod, table, state)
        claims = state.get(_CLAIMS_KEY)
        if outcome is None or isinstance(outcome, str) or not isinstance(claims, PodClaims):
            return None
        node = table.names[row]
        volumes = Volumes.of(table)
        bindings: list[tuple[str, str]] = []
        provisions: list[str] = []
        if claims.delay:
            for m in outcome.matches:
                i = int(m.choice[row])
                if i < 0:
                    continue
                pv, dirty = with_claim_ref(m.candidates[i], m.claim)
                if dirty:
                    try:
                        volumes.assume_pv(pv)
                    except ValueError:
                        pass  # changed since the filter ran: PreBind's update meets the API's conflict
                bindings.append((pv.name, m.claim.key))
            for claim, wanted, _ in outcome.provisions:
                if wanted[row]:
                    try:
                        volumes.assume_claim(with_selected_node(claim, node))
                    except ValueError:
                        pass
                    provisions.append(claim.key)
        state[VOLUME_BINDING_PLAN] = VolumeBindingPlan(node, tuple(bindings), tuple(provisions), claims.keys,
                                                       float(self.bind_timeout))
        return None

    def unreserve(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState, waiting: WaitingPods) -> None:
        """Upstream's RevertAssumedPodVolumes."""
        plan = state.get(VOLUME_BINDING_PLAN)
        if not isinstance(plan, VolumeBindingPlan) or plan.node != node:
            return
        volumes = Volumes.of(table)
        for pv_name, _ in plan.bindings:
            volumes.restore_pv(pv_name)
        for key in plan.provisions:
            volumes.restore_claim(key)


def new(args: Mapping[str, Any], path: str) -> VolumeBinding:
    """VolumeBindingArgs: ``bindTimeoutSeconds`` (>= 0, default 600) and ``shape`` (upstream's
    validation; only with StorageCapacityScoring), plus ``vecsched.io/storageCapacityScoring``."""
    m = mapping(args, path)
    known_fields(m, ("bindTimeoutSeconds", "shape", SCORING_ARG), path)
    timeout = integer(m.get("bindTimeoutSeconds", DEFAULT_BIND_TIMEOUT), f"{path}.bindTimeoutSeconds")
    if timeout < 0:
        raise ArgsError(f"{path}.bindTimeoutSeconds",
                        f"Invalid value: {timeout}: invalid BindTimeoutSeconds, should not be a negative value")
    scoring = boolean(m.get(SCORING_ARG, True), f"{path}.{SCORING_ARG}")
    raw_shape = m.get("shape")
    if not scoring:
        if raw_shape is not None:
            raise ArgsError(f"{path}.shape", "unexpected field `shape`, remove it or turn on the feature gate "
                                             f"StorageCapacityScoring ({SCORING_ARG})")
        return VolumeBinding(bind_timeout=timeout, shape=None)
    shape = parse_shape(raw_shape, f"{path}.shape") or list(DEFAULT_SHAPE)
    validate_shape(shape, f"{path}.shape")
    return VolumeBinding(bind_timeout=timeout, shape=tuple(shape))


_f: type[FilterPlugin] = VolumeBinding
_p: type[PreFilterPlugin] = VolumeBinding
_s: type[ScorePlugin] = VolumeBinding
_r: type[ReservePlugin] = VolumeBinding
_u: type[UnreservePlugin] = VolumeBinding
