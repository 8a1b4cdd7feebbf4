"""The disruption controller: how many pods each PodDisruptionBudget lets go right now.

A PodDisruptionBudget is a promise made to voluntary disruptions (``kubectl
drain``, the cluster autoscaler, a descheduler): only evict a pod of this
application while enough of its pods stay healthy. The promise is kept in two
places, as in Kubernetes: this controller counts the healthy pods and writes
``status.disruptionsAllowed``, and the Eviction API (``eviction.py``) refuses
an eviction when that number is zero and decrements it when it approves one;
what both must read the same way (selectors, pod readiness, percentages, the
``DisruptionAllowed`` condition) is in ``pdbhelper.py``. A scheduler that
preempts or rebalances pods on this control plane therefore meets the same
budgets as on a real cluster.

What it reproduces of kube-controller-manager's disruption controller: the
pods of a budget are those of its namespace that its selector matches (an
empty selector matches every pod, a missing one none); ``currentHealthy``
counts the Ready pods that are not terminating and not recorded in
``disruptedPods``; ``expectedPods`` and ``desiredHealthy`` come from
``minAvailable`` / ``maxUnavailable``, integers or percentages, where a
percentage and any ``maxUnavailable`` are taken of the summed ``spec.replicas``
of the pods' controllers (a Deployment through its ReplicaSet, a ReplicaSet,
StatefulSet, ReplicationController, or any kind with a ``scale``
subresource), percentages rounding up; ``disruptionsAllowed = max(0,
currentHealthy - desiredHealthy)`` and 0 while ``expectedPods`` is 0;
``disruptedPods`` entries written by the Eviction API are dropped once the pod
is terminating or gone, or after ``DELETION_TIMEOUT`` with a ``NotDeleted``
Event, and a timer re-checks the budget when the next entry expires; the
``DisruptionAllowed`` condition (``SufficientPods``, ``InsufficientPods``,
and ``SyncFailed`` with ``disruptionsAllowed`` forced to 0 when the budget
cannot be computed); Events ``NoPods``, ``UnmanagedPods`` and
``CalculateExpectedPodCountFailed`` with upstream's messages, from the
component ``controllermanager``.

Simplified: the per-budget Events are written when their message changes
rather than on every sync (the Event recorder would aggregate them anyway);
the ``MultiplePodDisruptionBudgets`` Event on pods and the clean-up of stale
``DisruptionTarget`` pod conditions are left out.

Scale: pods are matched to budgets as they are written, through an index of
the budgets of each namespace, and the controller keeps each budget's member
pods and each member's health (parsed once per pod write), so a sync reads
its own pods only and a pod write wakes only the budgets it changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..pdbhelper import (DELETION_TIMEOUT, SelectorError, compile_selector, conditions_up_to_date, is_pod_ready,
                         scaled_value, set_condition, update_disruption_allowed_condition)
from ..store import Entry
from .base import Controller, ControllerContext, Key, Mapper
from .pods import LabelMatcher, parse_time

__all__ = ["DisruptionController"]

PDBS: Final = "poddisruptionbudgets.policy"
PODS: Final = "pods"
_EVENT_SOURCE: Final = "controllermanager"  # upstream's recorder component for this controller
_BATCH: Final = 1000  # member pods read between yields to the event loop, so the API server keeps answering


def _group_of(api_version: str) -> str:
    """``schema.ParseGroupVersion(...).Group``: ``apps/v1`` -> ``apps``, ``v1`` -> ``""``."""
    if api_version.count("/") > 1:
        raise SelectorError(f"unexpected GroupVersion string: {api_version}")
    return api_version.split("/")[0] if "/" in api_version else ""


@dataclass(frozen=True)
class _PodState:
    """What a budget reads of one pod version."""

    uid: str
    rv: int
    healthy_if_listed: bool  # Ready and not terminating
    terminating: bool
    controller: tuple[str, str, str, str] | None  # (apiVersion, kind, name, uid)


def _pod_state(entry: Entry) -> _PodState:
    pod = entry.obj()
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    return _PodState(entry.uid, entry.rv, is_pod_ready(pod) and not terminating, terminating, _controller_ref(pod))


@dataclass
class _Budget:
    """A budget as the pod index sees it: its selector and its member pods' names."""

    selector: Any
    matcher: LabelMatcher | None
    error: str = ""
    members: set[str] = field(default_factory=set)


class _SyncFailed(Exception):
    """A budget whose status cannot be computed: the fail-safe sets ``SyncFailed``."""


class DisruptionController(Controller):
    """Keeps every PodDisruptionBudget's status (healthy, desired, expected, allowed) current."""

    name = "disruption-controller"
    primary = PDBS

    def __init__(self, *, ctx: ControllerContext) -> None:
        super().__init__(ctx=ctx)
        self._pdb_type = self.store.type(PDBS)
        self._pod_type = self.store.type(PODS)
        self._budgets: dict[str, dict[str, _Budget]] = {}
        self._pods: dict[tuple[str, str], _PodState] = {}
        self._noted: dict[tuple[str, str], str] = {}
        self.deletion_timeout = float(ctx.settings.get("disruption.deletion_timeout_seconds", DELETION_TIMEOUT))
        """Seconds a ``disruptedPods`` entry is honoured (``disruption.deletion_timeout_seconds``; upstream 120)."""
        for e in self.store.entries(self._pdb_type):
            self._on_budget(None, e)

    def watches(self) -> Mapping[str, Mapper]:
        return {PDBS: self._on_budget, PODS: self._on_pod}

    # ---- indexes ------------------------------------------------------------------------------

    def _on_budget(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        cur = new or old
        assert cur is not None
        in_ns = self._budgets.setdefault(cur.namespace, {})
        if new is None:
            gone = in_ns.pop(cur.name, None)
            if not in_ns:
                del self._budgets[cur.namespace]
            if gone is not None:
                self._forget_pods(cur.namespace, gone.members)
            for k in [k for k in self._noted if k[0] == cur.uid]:
                del self._noted[k]
            return ()
        selector = (new.obj().get("spec") or {}).get("selector")
        budget = in_ns.get(cur.name)
        if budget is not None and budget.selector == selector:
            return ()
        try:
            matcher, error = compile_selector(selector), ""
        except SelectorError as e:
            matcher, error = None, str(e)
        before = budget.members if budget is not None else set()
        budget = in_ns[cur.name] = _Budget(selector, matcher, error)
        if matcher is not None:  # a new selector: one scan of the namespace's pods
            budget.members = {e.name for e in self.store.entries(self._pod_type, cur.namespace)
                              if matcher(e.labels)}
        self._forget_pods(cur.namespace, before - budget.members)
        return ()

    def _forget_pods(self, namespace: str, names: Iterable[str]) -> None:
        budgets = self._budgets.get(namespace, {}).values()
        for n in names:
            if not any(n in b.members for b in budgets):
                self._pods.pop((namespace, n), None)

    def _on_pod(self, old: Entry | None, new: Entry | None) -> Iterable[Key]:
        cur = new or old
        assert cur is not None
        budgets = self._budgets.get(cur.namespace)
        if not budgets:
            return ()
        ns, name = cur.namespace, cur.name
        touched: list[Key] = []
        member_of: list[Key] = []
        for bname, b in budgets.items():
            was = name in b.members
            now = new is not None and b.matcher is not None and b.matcher(new.labels)
            if now:
                b.members.add(name)
                member_of.append((ns, bname))
            elif was:
                b.members.discard(name)
            if was != now:
                touched.append((ns, bname))
        if new is None or not member_of:
            self._pods.pop((ns, name), None)
            return touched
        state = _pod_state(new)
        before = self._pods.get((ns, name))
        self._pods[(ns, name)] = state
        if before is None or (before.uid, before.healthy_if_listed, before.terminating, before.controller) != (
                state.uid, state.healthy_if_listed, state.terminating, state.controller):
            return member_of + [k for k in touched if k not in member_of]
        return touched

    def _state(self, entry: Entry) -> _PodState:
        state = self._pods.get((entry.namespace, entry.name))
        if state is None or state.rv != entry.rv:
            state = self._pods[(entry.namespace, entry.name)] = _pod_state(entry)
        return state

    # ---- sync ---------------------------------------------------------------------------------

    def event(self, obj: Mapping[str, Any], *, reason: str, message: str, type: str = "Normal") -> None:
        self.ctx.recorder.event(obj, component=_EVENT_SOURCE, type=type, reason=reason, message=message)

    def _note(self, pdb: Mapping[str, Any], *, reason: str, message: str = "", type: str = "Normal") -> None:
        """A budget Event, written when its message changes; ``message=""`` clears it."""
        key = (pdb["metadata"]["uid"], reason)
        if not message:
            self._noted.pop(key, None)
        elif self._noted.get(key) != message:
            self._noted[key] = message
            self.event(pdb, type=type, reason=reason, message=message)

    async def reconcile(self, key: Key) -> float | None:
        ns, name = key
        entry = self.store.find(self._pdb_type, ns, name)
        if entry is None:
            return None
        pdb = entry.obj()
        budget = self._budgets.get(ns, {}).get(name)
        if budget is None:
            self._on_budget(None, entry)
            budget = self._budgets[ns][name]
        now = time.time()
        try:
            if budget.matcher is None:
                self.event(pdb, type="Warning", reason="NoPods", message=f"Failed to get pods: {budget.error}")
                raise _SyncFailed(budget.error)
            pods = await self._members(ns, budget)
            self._note(pdb, reason="NoPods", message="" if pods else "No matching pods found")
            try:
                expected, desired, unmanaged = self._expected(pdb, pods)
            except _SyncFailed as e:
                self.event(pdb, type="Warning", reason="CalculateExpectedPodCountFailed",
                           message=f"Failed to calculate the number of expected pods: {e}")
                raise
            self._note(pdb, type="Warning", reason="UnmanagedPods", message=(
                f"Pods selected by this PodDisruptionBudget (selector: {_go_selector(budget.selector)}) were found "
                "to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may "
                "result in undefined behavior. To account for these pods please set \".spec.minAvailable\" "
                "field of the PDB to an integer value.") if unmanaged else "")
            disrupted, recheck = self._disrupted(pdb, pods, now)
            healthy = sum(1 for e, s in pods if s.healthy_if_listed and e.name not in disrupted)
            self._write(pdb, healthy=healthy, desired=desired, expected=expected, disrupted=disrupted)
        except _SyncFailed as e:
            self._fail_safe(pdb, str(e))
            return None
        return max(recheck - now, 0.0) if recheck is not None else None

    async def _members(self, ns: str, budget: _Budget) -> list[tuple[Entry, _PodState]]:
        out: list[tuple[Entry, _PodState]] = []
        for i, pod_name in enumerate(sorted(budget.members)):
            if i and i % _BATCH == 0:
                await asyncio.sleep(0)
            e = self.store.find(self._pod_type, ns, pod_name)
            if e is not None:
                out.append((e, self._state(e)))
        return out

    def _expected(self, pdb: Mapping[str, Any], pods: list[tuple[Entry, _PodState]]) -> tuple[int, int, list[str]]:
        """(expectedPods, desiredHealthy, unmanaged pod names), as ``getExpectedPodCount``."""
        spec = pdb.get("spec") or {}
        ns = pdb["metadata"]["namespace"]
        try:
            if spec.get("maxUnavailable") is not None:
                expected, unmanaged = self._expected_scale(ns, pods)
                unavailable = scaled_value(spec["maxUnavailable"], total=expected, round_up=True)
                return expected, max(expected - unavailable, 0), unmanaged
            min_available = spec.get("minAvailable")
            if isinstance(min_available, int) and not isinstance(min_available, bool):
                return len(pods), min_available, []
            if min_available is not None:
                expected, unmanaged = self._expected_scale(ns, pods)
                return expected, scaled_value(min_available, total=expected, round_up=True), unmanaged
        except SelectorError as e:
            raise _SyncFailed(str(e)) from None
        return 0, 0, []

    def _expected_scale(self, ns: str, pods: list[tuple[Entry, _PodState]]) -> tuple[int, list[str]]:
        """The summed ``spec.replicas`` of the pods' controllers, and the pods without one."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for e, state in pods:
            ref = state.controller
            if ref is None:
                unmanaged.append(e.name)
                continue
            if ref[3] in scales:
                continue
            found = self._controller_scale(ns, ref)
            if found is None:
                raise _SyncFailed(f'found no controllers for pod "{e.name}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    def _find(self, key: str, ns: str, name: str, uid: str) -> Entry | None:
        e = self.store.find(self.store.type(key), ns, name)
        return e if e is not None and e.uid == uid else None

    def _controller_scale(self, ns: str, ref: tuple[str, str, str, str]) -> tuple[str, int] | None:
        """Upstream's finders in order: RC, Deployment (via its ReplicaSet), ReplicaSet, StatefulSet, scale."""
        api_version, kind, name, uid = ref
        group = _group_of(api_version)
        if kind == "ReplicationController" and group == "":
            rc = self._find("replicationcontrollers", ns, name, uid)
            if rc is not None:
                return rc.uid, _replicas(rc.obj())
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = self._find("replicasets.apps", ns, name, uid)
            if rs is not None:
                owner = _controller_ref(rs.obj())
                if owner is not None and owner[1] == "Deployment":
                    if _group_of(owner[0]) in ("apps", "extensions"):
                        d = self._find("deployments.apps", ns, owner[2], owner[3])
                        if d is not None:
                            return d.uid, _replicas(d.obj())
                else:
                    return rs.uid, _replicas(rs.obj())
        if kind == "StatefulSet" and group == "apps":
            ss = self._find("statefulsets.apps", ns, name, uid)
            if ss is not None:
                return ss.uid, _replicas(ss.obj())
        rt = self.store.registry.by_kind(api_version, kind)
        if rt is None:
            raise _SyncFailed(f'no matches for kind "{kind}" in version "{api_version}"')
        if rt.scale is None:
            raise _SyncFailed(f"{rt.key} does not implement the scale subresource")
        obj = self._find(rt.key, ns, name, uid)
        if obj is None:
            return None
        cur: Any = obj.obj()
        for part in rt.scale.spec_replicas.strip(".").split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        return obj.uid, int(cur or 0)

    def _disrupted(self, pdb: Mapping[str, Any], pods: list[tuple[Entry, _PodState]],
                   now: float) -> tuple[dict[str, str], float | None]:
        """``buildDisruptedPodMap``: the entries still waiting for their pod's deletion, and the next expiry."""
        listed = (pdb.get("status") or {}).get("disruptedPods") or {}
        kept: dict[str, str] = {}
        recheck: float | None = None
        if not listed:
            return kept, recheck
        for e, state in pods:
            if state.terminating or e.name not in listed:
                continue
            when = parse_time(listed[e.name])
            expires = (when if when is not None else 0.0) + self.deletion_timeout
            if expires < now:
                meta = pdb["metadata"]
                # Upstream prints the budget's namespace twice here; kept so the text matches a real cluster's.
                self.event(e.obj(), type="Warning", reason="NotDeleted",
                           message=f"Pod was expected by PDB {meta['namespace']}/{meta['namespace']} to be deleted "
                                   "but it wasn't")
            else:
                kept[e.name] = listed[e.name]
                recheck = expires if recheck is None else min(recheck, expires)
        return kept, recheck

    def _write(self, pdb: dict[str, Any], *, healthy: int, desired: int, expected: int,
               disrupted: dict[str, str]) -> None:
        """``updatePdbStatus``: write the four numbers, ``disruptedPods`` and the condition when they changed."""
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0  # a budget that matches nothing yet must not allow disruptions
        status = pdb.get("status") or {}
        generation = int(pdb["metadata"].get("generation") or 0)
        if (status.get("currentHealthy") == healthy and status.get("desiredHealthy") == desired
                and status.get("expectedPods") == expected and status.get("disruptionsAllowed") == allowed
                and (status.get("disruptedPods") or {}) == disrupted
                and int(status.get("observedGeneration") or 0) == generation and conditions_up_to_date(pdb)):
            return
        new: dict[str, Any] = {"observedGeneration": generation}
        if disrupted:
            new["disruptedPods"] = disrupted
        new.update(disruptionsAllowed=allowed, currentHealthy=healthy, desiredHealthy=desired, expectedPods=expected,
                   conditions=list(status.get("conditions") or []))
        update_disruption_allowed_condition(new)
        pdb["status"] = new
        self.client.update_status(PDBS, pdb)

    def _fail_safe(self, pdb: dict[str, Any], message: str) -> None:
        """``failSafe``: when the budget cannot be computed, allow no disruption and say why."""
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        conditions = list(status.get("conditions") or [])
        set_condition(conditions, type="DisruptionAllowed", status="False", reason="SyncFailed", message=message,
                      observed_generation=int(status.get("observedGeneration") or 0))
        status["conditions"] = conditions
        pdb["status"] = status
        self.client.update_status(PDBS, pdb)


def _replicas(obj: Mapping[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1) or 0)


def _controller_ref(obj: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """(apiVersion, kind, name, uid) of the owner reference marked ``controller``."""
    for r in obj["metadata"].get("ownerReferences") or []:
        if isinstance(r, dict) and r.get("controller"):
            return str(r.get("apiVersion", "")), str(r.get("kind", "")), str(r.get("name", "")), str(r.get("uid", ""))
    return None


def _go_selector(selector: Any) -> str:
    """A LabelSelector as Go's ``%v`` prints it in upstream's ``UnmanagedPods`` message."""
    if not isinstance(selector, dict):
        return "nil"
    labels = ",".join(f"{k}: {v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    exprs = ",".join(
        f"LabelSelectorRequirement{{Key:{x.get('key')},Operator:{x.get('operator')},"
        f"Values:[]string{{{','.join(x.get('values') or [])}}},}}"
        for x in selector.get("matchExpressions") or [] if isinstance(x, dict))
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels + ',' if labels else ''}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs + ',' if exprs else ''}}},}}")


_: type[Controller] = DisruptionController
