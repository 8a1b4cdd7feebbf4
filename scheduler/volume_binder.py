"""Volume binding before the pod's binding: upstream's VolumeBinding PreBind (``BindPodVolumes``).

At Reserve, the VolumeBinding plugin (``scoring.plugins.volume_binding``) decides on the
table alone which PersistentVolume each unbound claim of the pod gets on the chosen node
and which claims are to be provisioned there; it assumes those PVs and claims in the
table's ``Volumes`` (so that the next pods do not take them) and leaves a
``VolumeBindingPlan`` in the cycle state. The API must hear of the plan before the pod is
bound -- a kubelet cannot start a pod whose claims are not bound -- and the PV controller
and the external provisioner do the rest. ``VolumeBinder`` is that step. It runs in the
pod's binding task, never in the scheduling cycle, which goes on with the next pod:

1. API updates (upstream's ``bindAPIUpdate``): each PV chosen for a claim gets
   ``spec.claimRef`` naming the claim as it was at Reserve (kind, namespace, name, uid,
   apiVersion and resourceVersion) and, unless its author had pre-bound it to the claim,
   the ``pv.kubernetes.io/bound-by-controller`` annotation (upstream's
   ``GetBindVolumeToClaim``, ``scoring.volumes.with_claim_ref``); each claim to provision
   gets ``volume.kubernetes.io/selected-node``. Each object is read (GET) and written back
   (PUT) with the resourceVersion read, so that a change in between is a conflict; one
   that needs no change is not written. What the decision could not have seen is refused
   rather than overwritten: a PV now bound to another claim or being deleted, a claim
   deleted and created again, being deleted, or selected for another node meanwhile.
2. The wait (upstream's ``checkBindings``, polled): until ``bindings_done`` finds every
   claim of the plan fully bound -- the PV controller set ``spec.volumeName`` and
   ``pv.kubernetes.io/bind-completed`` -- on PVs whose node affinity admits the node. It
   is checked at once, again on every storage or node change the informers deliver
   (``notify``) and at least every ``poll_interval`` seconds, for at most the plugin's
   ``bindTimeoutSeconds``.

A failure raises ``VolumeBindingError`` with upstream's text: the API's message for a
failed update, ``binding volumes: context deadline exceeded`` when the time is up, and
``binding volumes: <reason>`` for a binding that will not complete (``bindings_done``'s
reason, or the node gone). The cycle reports it as ``running PreBind plugin
"VolumeBinding": ...`` after unreserving the pod -- VolumeBinding's Unreserve reverts the
assumed PVs and claims -- and backs the pod off. As upstream, what was written to the API
is not rolled back: the PV controller completes, or undoes, a binding whose pod went
elsewhere. A pod deleted while it waits raises ``PodDeleted`` (nothing to report: it is
gone), and a scheduler that stops ends every wait with ``BindingStopped``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from scoring.objects import ObjectError, PodInfo
from scoring.volumes import (SELECTED_NODE, PersistentVolumeClaim, VolumeBindingPlan, Volumes, bindings_done,
                             pv_from_json, pvc_from_json, with_claim_ref, with_selected_node)
from scheduler.cache import SchedulerCache
from scheduler.kube.client import KubeClient
from scheduler.kube.errors import KubeError, StatusError

__all__ = ["VolumeBinder", "PreparedBinding", "VolumeBindingError", "PodDeleted", "BindingStopped",
           "POLL_INTERVAL_SECONDS", "TIMEOUT_MESSAGE"]

log = logging.getLogger("vecsched.volume_binder")

POLL_INTERVAL_SECONDS: Final = 0.5
"""How long a waiting binding goes without a check when no informer event comes (upstream
polls every second; the informers' events make most checks here, this is the fallback)."""
TIMEOUT_MESSAGE: Final = "binding volumes: context deadline exceeded"
"""Upstream's error when bindTimeoutSeconds pass (``BindPodVolumes`` wrapping the poll's
``context.DeadlineExceeded``)."""


class VolumeBindingError(Exception):
    """The pod's volumes could not be bound; ``message`` is upstream's text for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PodDeleted(Exception):
    """The pod was deleted while its volumes were being bound (upstream's "pod does not exist any more")."""


class BindingStopped(Exception):
    """The scheduler is stopping: the wait ended before the binding completed or failed."""


@dataclass(frozen=True, slots=True)
class PreparedBinding:
    """A VolumeBindingPlan with the claims it binds or provisions as they were at Reserve:
    a PV's claimRef names that claim, and a claim deleted and created again since is not
    the one the decision was made for."""

    plan: VolumeBindingPlan
    claims: Mapping[str, PersistentVolumeClaim] = field(default_factory=dict)
    """Claim key -> the claim (missing when it was not found)."""

    @property
    def has_work(self) -> bool:
        """Whether anything is to be written and waited for (upstream's PreBind skips a pod
        whose claims were all bound already)."""
        return bool(self.plan.bindings or self.plan.provisions)


@dataclass(slots=True)
class _Waiter:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    deleted: bool = False


def _split(key: str) -> tuple[str, str]:
    ns, _, name = key.partition("/")
    return ns, name


def _message(e: KubeError) -> str:
    """An API failure as upstream reports it: the Status message (``err.Error()`` of a StatusError)."""
    return e.message if isinstance(e, StatusError) else str(e)


class VolumeBinder:
    """Writes VolumeBinding plans to the API and waits for the PV controller to complete them.

    ``notify`` is called by the informers' handlers on every storage or node change,
    ``pod_deleted`` when a pod is deleted, ``close`` when the scheduler stops.
    """

    def __init__(self, *, client: KubeClient, cache: SchedulerCache,
                 poll_interval: float = POLL_INTERVAL_SECONDS) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}")
        self.client = client
        self.cache = cache
        self.poll_interval = poll_interval
        self._waiting: dict[str, _Waiter] = {}
        self._closed = False

    # ---- the informers' side ---------------------------------------------------------------

    def notify(self) -> None:
        """Storage objects or nodes changed: every waiting binding checks again."""
        for w in self._waiting.values():
            w.wake.set()

    def pod_deleted(self, key: str) -> None:
        """The pod ``key`` was deleted: its wait, if any, ends (upstream's checkBindings finds it gone)."""
        w = self._waiting.get(key)
        if w is not None:
            w.deleted = True
            w.wake.set()

    def close(self) -> None:
        """End every wait, now and later, with BindingStopped (the scheduler is stopping)."""
        self._closed = True
        self.notify()

    @property
    def waiting(self) -> int:
        """Pods whose volume bindings are under way."""
        return len(self._waiting)

    # ---- the binding task's side -----------------------------------------------------------

    def prepare(self, plan: VolumeBindingPlan) -> PreparedBinding:
        """What ``bind`` will write, read from the table's Volumes now -- call it right after
        Reserve, in the same cycle, while the claims are as the decision saw them."""
        volumes = Volumes.of(self.cache.table)
        claims: dict[str, PersistentVolumeClaim] = {}
        for key in [key for _, key in plan.bindings] + list(plan.provisions):
            claim = volumes.claim(*_split(key))
            if claim is not None:
                claims[key] = claim
        return PreparedBinding(plan, claims)

    async def bind(self, *, pod: PodInfo, prepared: PreparedBinding) -> None:
        """Upstream's BindPodVolumes for ``pod``: the API updates, then the wait. Returns once
        every claim is fully bound; raises VolumeBindingError, PodDeleted or BindingStopped."""
        if not prepared.has_work:
            return
        if self._closed:
            raise BindingStopped()
        waiter = self._waiting[pod.key] = _Waiter()
        try:
            await self._update_api(prepared)
            await self._wait(prepared.plan, waiter)
        finally:
            if self._waiting.get(pod.key) is waiter:
                del self._waiting[pod.key]

    async def _update_api(self, prepared: PreparedBinding) -> None:
        plan = prepared.plan
        try:
            for pv, key in plan.bindings + tuple(("", key) for key in plan.provisions):
                claim = prepared.claims.get(key)
                if claim is None:
                    raise VolumeBindingError(f'persistentvolumeclaims "{_split(key)[1]}" not found')
                if pv:
                    await self._bind_pv(pv, claim)
                else:
                    await self._select_node(claim, plan.node)
        except KubeError as e:
            raise VolumeBindingError(_message(e)) from e
        except ObjectError as e:  # an object the API returned that cannot be read
            raise VolumeBindingError(str(e)) from e

    async def _bind_pv(self, name: str, claim: PersistentVolumeClaim) -> None:
        """Pre-bind PV ``name`` to ``claim`` (upstream's GetBindVolumeToClaim, then Update)."""
        path = f"/api/v1/persistentvolumes/{name}"
        pv = pv_from_json(await self.client.request("GET", path))
        if pv.deleting:
            raise VolumeBindingError(f'persistentvolume "{name}" is being deleted')
        if pv.claim_ref is not None and pv.claim_ref.name and not pv.is_bound_to(claim):
            raise VolumeBindingError(f'persistentvolume "{name}" is bound to another claim: "{pv.claim_ref.key}"')
        bound, dirty = with_claim_ref(pv, claim)
        if dirty:
            await self.client.request("PUT", path, body=bound.raw)
        log.info("persistent volume bound to claim, waiting for the binding to complete",
                 extra={"fields": {"pv": name, "claim": claim.key}})

    async def _select_node(self, claim: PersistentVolumeClaim, node: str) -> None:
        """Ask for ``claim`` to be provisioned on ``node`` (the selected-node annotation)."""
        path = f"/api/v1/namespaces/{claim.namespace}/persistentvolumeclaims/{claim.name}"
        now = pvc_from_json(await self.client.request("GET", path))
        if now.uid != claim.uid:
            raise VolumeBindingError(f'persistentvolumeclaim "{claim.name}" was deleted and created again')
        if now.deleting:
            raise VolumeBindingError(f'persistentvolumeclaim "{claim.name}" is being deleted')
        selected = now.annotations.get(SELECTED_NODE, node)
        if selected != node:
            raise VolumeBindingError(f'persistentvolumeclaim "{claim.name}" was selected for node "{selected}" '
                                     "meanwhile")
        if SELECTED_NODE not in now.annotations:
            await self.client.request("PUT", path, body=with_selected_node(now, node).raw)
        log.info("claim to be provisioned on the selected node", extra={"fields": {"claim": claim.key, "node": node}})

    async def _wait(self, plan: VolumeBindingPlan, waiter: _Waiter) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + plan.timeout
        while True:
            waiter.wake.clear()
            if waiter.deleted:
                raise PodDeleted()
            if self._closed:
                raise BindingStopped()
            table = self.cache.table
            row = table.index.get(plan.node)
            if row is None:
                raise VolumeBindingError(f'binding volumes: failed to get node "{plan.node}": '
                                         f'node "{plan.node}" not found')
            done, reason = bindings_done(Volumes.of(table), plan, table.infos[row])
            if reason:
                raise VolumeBindingError(f"binding volumes: {reason}")
            if done:
                return
            left = deadline - loop.time()
            if left <= 0:
                raise VolumeBindingError(TIMEOUT_MESSAGE)
            try:
                await asyncio.wait_for(waiter.wake.wait(), min(left, self.poll_interval))
            except asyncio.TimeoutError:
                pass
