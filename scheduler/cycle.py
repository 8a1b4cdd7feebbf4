"""The scheduling cycle: one pod at a time, as kube-scheduler does it.

Each cycle takes the next pod from the queue and runs, with no ``await`` in
between, so that the cluster view cannot change under the decision:

1. snapshot -- the cache's NodeTable as it is now;
2. filter   -- which nodes can take the pod (the profile's filters, all nodes at once);
3. score    -- how good each feasible node is;
4. select   -- the best total, ties broken by a seeded draw;
5. assume   -- charge the pod to that node in the cache immediately (Reserve);
6. permit   -- the Permit plugins allow the pod, reject it (Unreserve, forget,
   report) or make it wait, holding its node, with a timeout;
7. prebind  -- in a named background task, after any wait at Permit: the pod's
   volumes, when the VolumeBinding plugin planned any at Reserve, are bound through
   the API and the PV controller (``scheduler.volume_binder``);
8. bind     -- in the same task: annotations patched, the Binding posted, the
   outcome reported, so the next cycle starts without waiting for the API.

Replicas of one workload are decided with opportunistic batching
(``scoring.batching``, kube-scheduler 1.35's OpportunisticBatching, on unless the
profile sets ``vecsched.io/batching: false``): a signable pod whose signature the
profile decided recently is filtered and scored from the state kept for it, with only
the rows changed since recomputed -- the same decision, for less. When nothing fits,
or the pod is unsignable, the ordinary path decides it (and runs PostFilter).

A pod of a PodGroup (with Coscheduling in the profile) brings its group's
pending members into its cycle: they are planned together on the table
(``scoring.plugins.gang``) and assumed only when the plan holds the group's
quorum, each then through Permit, where the one completing the quorum allows
the others. A group that cannot fit assumes nothing; every member is reported
with the group's reason, and so is the PodGroup.

Cycles run in turns: a pass of the event loop takes the next pod and, while more
are ready in activeQ, further pods, up to ``TURN_PODS`` of them or until
``TURN_SECONDS`` have passed, before it lets the watch's events, finished bindings
and other tasks in. Each cycle is still whole and sees the cycles before it; the
turn only lets a backlog's bindings and Events leave in fewer writes and the
watch's events arrive in fewer reads. Upstream's scheduling loop does not wait
for the informers between cycles either: their handlers run beside it.

Several profiles run side by side, each its own ``schedulerName``. A failure
is reported (FailedScheduling Event + PodScheduled=False) and the pod goes
back to the queue: parked when nothing fits, backed off on errors. The loop
never dies on a bad pod or a failing plugin.

When nothing fits, the profile's PostFilter plugins have run (DefaultPreemption).
A preemption plan is acted on as upstream's schedulingCycle and
handleSchedulingFailure do: the pod is nominated to the plan's node in the cache
at once (so that the next cycles leave that room to it), the victims go to the
``Preemptor``, which evicts them in the background, and the failure report sets
``status.nominatedNodeName`` in the same patch as PodScheduled=False. The pod
then waits in the unschedulable pool; its victims' deletions move it back.

A PreBind failure (a volume update refused, the PV controller not done within
``bindTimeoutSeconds``, a binding undone) is a binding-cycle error, as upstream's
handleBindingCycleError treats it: the pod is unreserved (VolumeBinding reverts the PVs
and claims it assumed), the parked pods are moved (the room and the volumes it held are
free again), and it is reported -- ``running PreBind plugin "VolumeBinding": ...`` --
and backed off.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

from scoring.batching import HIT, Batcher, Observe
from scoring.framework import PERMIT_REJECT, Decision, Profile, fit_error_message
from scoring.objects import ObjectError, PodInfo
from scoring.plugins.coscheduling import PODS_TO_ACTIVATE, Coscheduling
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION
from scoring.plugins.gang import group_need, place_group
from scoring.plugins.podgroups import PodGroup, PodGroups, group_of
from scoring.plugins.volume_binding import NAME as VOLUME_BINDING
from scoring.queueing_hints import assigned_pod_left
from scoring.table import NodeTable
from scoring.volumes import VOLUME_BINDING_PLAN, VolumeBindingPlan
from scheduler.cache import SchedulerCache
from scheduler.instrument import Trace, instrument
from scheduler.kube.binder import Binder, Outcome
from scheduler.kube.events import EventRecorder, PodRef
from scheduler.logs import DecisionLog
from scheduler.metrics import Metrics
from scheduler.permit import STOPPING, Waiting, WaitingPodsMap
from scheduler.preemptor import Preemptor
from scheduler.queue import QueuedPod, SchedulingQueue
from scheduler.tasks import drain
from scheduler.volume_binder import BindingStopped, PodDeleted, PreparedBinding, VolumeBinder, VolumeBindingError

__all__ = ["SchedulingCycle"]

log = logging.getLogger("vecsched.cycle")

_SCHEDULED: Final = "scheduled"
_UNSCHEDULABLE: Final = "unschedulable"
_ERROR: Final = "error"
_HINT_USED: Final = "hint_used"
_NO_HINT: Final = "no_hint"
"""Upstream's scheduler_batch_attempts_total results."""
PLUGIN_METRICS_SAMPLE: Final = 0.1
"""Upstream's pluginMetricsSamplePercent: per-plugin durations are observed in 10% of cycles."""
TURN_SECONDS: Final = 0.001
"""How long one pass of the event loop goes on scheduling ready pods (a cycle started in
time is finished): about ten batched decisions at 2,000 nodes, two or three unbatched."""
TURN_PODS: Final = 16
"""Most cycles in one pass of the event loop."""


class SchedulingCycle:
    """Pops pods and schedules them; bindings run as background tasks."""

    def __init__(self, *, profiles: Mapping[str, Profile], cache: SchedulerCache, queue: SchedulingQueue,
                 binder: Binder, recorder: EventRecorder, metrics: Metrics, preemptor: Preemptor,
                 is_leader: Callable[[], bool] = lambda: True,
                 plugin_metrics_sample: float = PLUGIN_METRICS_SAMPLE,
                 on_group_failed: Callable[[PodGroup, str], None] | None = None,
                 volume_binder: VolumeBinder | None = None, turn_seconds: float = TURN_SECONDS,
                 turn_pods: int = TURN_PODS) -> None:
        self.profiles = dict(profiles)
        self.turn_seconds = turn_seconds
        """How long one pass of the event loop goes on scheduling ready pods (``TURN_SECONDS``)."""
        self.turn_pods = turn_pods
        """Most cycles in one pass of the event loop (``TURN_PODS``)."""
        self.waiting = WaitingPodsMap()
        for p in self.profiles.values():
            p.waiting = self.waiting
        self.on_group_failed = on_group_failed
        """Told when a PodGroup could not be placed (the PodGroup operator records an Event)."""
        self.traces: dict[str, Trace] = {name: instrument(p, metrics=metrics) for name, p in self.profiles.items()}
        self.batchers: dict[str, Batcher] = {
            name: Batcher(p, observe=self._observer(self.traces[name])) for name, p in self.profiles.items() if p.batching}
        """Opportunistic batching, for the profiles that have it on (``vecsched.io/batching``)."""
        self.cache = cache
        self.queue = queue
        self.binder = binder
        self.recorder = recorder
        self.metrics = metrics
        self.preemptor = preemptor
        self.volume_binder = volume_binder or VolumeBinder(client=binder.client, cache=cache)
        """PreBind for the pods whose volumes the VolumeBinding plugin planned at Reserve."""
        self._pre_binds = {name: VOLUME_BINDING in p.plugin_names for name, p in self.profiles.items()}
        """Which profiles have a PreBind plugin (VolumeBinding), for the extension point's metric."""
        self.is_leader = is_leader
        self._binding: set[asyncio.Task[None]] = set()
        self._sample = random.Random()
        self.plugin_metrics_sample = plugin_metrics_sample
        self.bound = 0
        self.decisions = DecisionLog(logger=log)
        """Per-pod decision lines at debug level, a summary a second at info level."""

    # ---- the loop --------------------------------------------------------------------------

    async def run(self, *, stop: asyncio.Event, leading: asyncio.Event | None = None) -> None:
        """Schedule until ``stop`` is set (or the queue is closed); waits while not leading."""
        while not stop.is_set():
            if leading is not None and not self.is_leader():
                await _first(stop.wait(), leading.wait())
                continue
            qp = await self.queue.pop()
            if qp is None:
                return
            if stop.is_set() or not self.is_leader():
                self.queue.put_back(qp)
                continue
            self._turn(qp, stop)
            # Let watch events and finished bindings in between turns.
            await asyncio.sleep(0)

    def _turn(self, qp: QueuedPod, stop: asyncio.Event) -> None:
        """Schedule ``qp``, then the next ready pods while the turn lasts."""
        ends = time.perf_counter() + self.turn_seconds
        self.schedule_one(qp)
        cycles = 1
        while (cycles < self.turn_pods and time.perf_counter() < ends and not stop.is_set()
               and self.is_leader()):
            nxt = self.queue.pop_nowait()
            if nxt is None:
                break
            self.schedule_one(nxt)
            cycles += 1

    def schedule_one(self, qp: QueuedPod) -> None:
        """One scheduling cycle, up to handing the binding to a background task."""
        pod = qp.pod
        profile = self.profiles.get(pod.scheduler_name)
        if profile is None or self.cache.node_of(pod.key) is not None:
            self.queue.done(pod.key)  # not ours, or already bound: nothing to do
            return
        trace = self.traces[profile.name]
        trace.reset(sampled=self._sample.random() < self.plugin_metrics_sample)
        started = time.perf_counter()
        gang = self._gang(profile, pod)
        if gang is not None:
            self._schedule_group(qp, profile, trace, started, *gang)
            return
        try:
            # Snapshot: the live table; nothing can change it until the pod is assumed below.
            table = self.cache.table
            # Filter, score, select (and reserve node-local devices): one call over all nodes --
            # from the state kept for the pod's signature when batching can (the same decision),
            # else (unsignable, or nothing fits: PostFilter runs) in full.
            decision = self._batched(profile, pod, table)
            if decision is None:
                decision = profile.schedule(pod, table)
        except ObjectError as e:
            # The pod is readable but a plugin found a field it cannot use (e.g. an unknown operator).
            self._observe_points(profile.name, trace, "Error")
            self._failed(qp, profile.name, started, str(e), result=_UNSCHEDULABLE, reason="Unschedulable")
            return
        except Exception as e:
            log.exception("scheduling %s failed in a plugin", pod.key)
            self._observe_points(profile.name, trace, "Error")
            self._failed(qp, profile.name, started, f"scheduler error: {type(e).__name__}: {e}", result=_ERROR,
                         reason="SchedulerError")
            return
        algorithm = time.perf_counter() - started
        self.metrics.algorithm_duration.observe(algorithm)
        if decision.node is None:
            self._observe_points(profile.name, trace, "Unschedulable")
            # PostFilter: act on a preemption plan (nominate, evict in the background).
            nominated = self._post_filter(qp, profile, decision)
            self._failed(qp, profile.name, started, decision.message, result=_UNSCHEDULABLE,
                         plugins=frozenset(trace.rejected_by), nominated=nominated)
            return
        self._observe_points(profile.name, trace, "Success")
        if log.isEnabledFor(logging.DEBUG):
            _log_nodes(decision)
        # Assume (Reserve): the capacity is taken now, before the API hears of it; then Permit.
        self._reserve_and_permit(qp, profile, decision, started, algorithm)

    def _observer(self, trace: Trace) -> Observe:
        """Per-plugin timing of the verdicts a batched decision takes from kept state, into
        the same metric and per-cycle trace as the plugins' own calls (``instrument``)."""
        def observe(plugin: str, point: str, seconds: float, status: str) -> None:
            if trace.sampled:
                self.metrics.plugin_duration.labels(plugin, point, status).observe(seconds)
            trace.seconds[point] = trace.seconds.get(point, 0.0) + seconds
        return observe

    def _batched(self, profile: Profile, pod: PodInfo, table: NodeTable) -> Decision | None:
        """The batched decision, or None for the ordinary path; counts the attempt."""
        batcher = self.batchers.get(profile.name)
        if batcher is None:
            return None
        out = batcher.decide(pod, table)
        self.metrics.batch_attempts.labels(profile.name, _HINT_USED if out.result == HIT else _NO_HINT).inc()
        if out.decision is None:
            # The ordinary path decides (and times) it all again: count its extension points once.
            trace = self.traces[profile.name]
            trace.seconds.clear()
            trace.rejected_by.clear()
        return out.decision

    def _reserve_and_permit(self, qp: QueuedPod, profile: Profile, decision: Decision, started: float,
                            algorithm: float) -> Waiting | bool | None:
        """Assume ``decision`` and run Permit. Allowed or waiting, the binding starts as a
        background task (a waiting one first waits); rejected, the pod is unreserved and
        reported. Returns the Waiting, True when allowed at once, None when rejected."""
        pod, node = qp.pod, str(decision.node)
        self.cache.assume(decision.assumed_pod(), node)
        t = time.perf_counter()
        verdict, waits = profile.run_permit(decision.assumed_pod(), self.cache.table, node, decision.state,
                                            self.waiting)
        if profile.permits:
            self.metrics.extension_point_duration.labels("Permit", verdict.status, profile.name).observe(
                time.perf_counter() - t)
        self._activate(decision.state)
        if verdict.status == PERMIT_REJECT:
            self._unreserve(profile, decision)
            # Upstream reports a Permit rejection as a FitError over the one node it was assumed on.
            self._failed(qp, profile.name, started, fit_error_message(1, {verdict.message: 1}),
                         result=_UNSCHEDULABLE)
            return None
        volumes = self._prepare_volumes(decision)
        waiter = self.waiting.add(pod=decision.assumed_pod(), node=node, waits=waits) if waits else None
        # Bind: in the background (after any wait at Permit); the next cycle starts at once.
        task = asyncio.create_task(self._bind(qp, decision, started, algorithm, waiter, volumes),
                                   name=f"bind {pod.key}")
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)
        return waiter if waiter is not None else True

    def _unreserve(self, profile: Profile, decision: Decision) -> None:
        """Upstream's Unreserve then forget: the pod gives its node back."""
        pod, node = decision.assumed_pod(), str(decision.node)
        try:
            profile.run_unreserve(pod, self.cache.table, node, decision.state, self.waiting)
        except Exception:
            log.exception("unreserving %s failed in a plugin", pod.key)
        self.cache.forget(pod.key)

    def _prepare_volumes(self, decision: Decision) -> PreparedBinding | None:
        """The volume binding VolumeBinding planned at Reserve, with what its API updates need
        from this moment (None when the pod has no claims, or the profile no VolumeBinding)."""
        plan = decision.state.get(VOLUME_BINDING_PLAN)
        return self.volume_binder.prepare(plan) if isinstance(plan, VolumeBindingPlan) else None

    def _revert_volumes(self, profile: Profile, decision: Decision) -> None:
        """Reserve ran for ``decision`` in a group's plan that is not carried out (the pod is not
        assumed): VolumeBinding's Unreserve reverts the PVs and claims it assumed, the one
        Reserve whose effect outlives the plan (Coscheduling's Unreserve, which rejects the
        group's waiting pods, is not for a pod that never reached Permit)."""
        if decision.node is None or VOLUME_BINDING_PLAN not in decision.state:
            return
        for plugin in profile.unreservers:
            if plugin.name == VOLUME_BINDING:
                try:
                    plugin.unreserve(decision.pod, self.cache.table, decision.node, decision.state, self.waiting)
                except Exception:
                    log.exception("reverting the volumes of %s failed in a plugin", decision.pod.key)

    def _activate(self, state: Mapping[str, Any]) -> None:
        """Pods a plugin asked to be tried now (upstream's PodsToActivate)."""
        for key in state.get(PODS_TO_ACTIVATE, ()):
            self.queue.activate(key)

    # ---- gangs -----------------------------------------------------------------------------

    def _gang(self, profile: Profile, pod: PodInfo) -> tuple[Coscheduling, PodGroup] | None:
        """(Coscheduling, the pod's PodGroup) when the pod's group must be placed as a whole:
        the profile runs Coscheduling, the group exists, more than this one member is still
        needed, and Coscheduling's PreFilter lets the group through (otherwise the pod fails
        alone, with that message, as upstream's members do)."""
        key = group_of(pod)
        if not key:
            return None
        plugin = next((p for p in profile.permits if isinstance(p, Coscheduling)), None)
        groups = self.cache.table.extensions.get(PodGroups.KEY)
        group = groups.group(key) if isinstance(groups, PodGroups) else None
        if plugin is None or group is None or group_need(group, self.cache.table)[1] <= 1:
            return None
        if plugin.prefilter(pod, self.cache.table, {}) is not None:
            return None
        return plugin, group

    def _schedule_group(self, qp: QueuedPod, profile: Profile, trace: Trace, started: float,
                        plugin: Coscheduling, group: PodGroup) -> None:
        """Place ``qp``'s PodGroup as a whole: its pending members are taken from the queue
        into this cycle and planned together (``place_group``). When the plan holds the
        quorum, every planned member is assumed and goes through Permit in turn -- the one
        that completes the quorum allows the others -- and is bound; otherwise nothing is
        assumed, every member is reported unschedulable with the group's reason, and
        Coscheduling's PostFilter rejects the group."""
        table = self.cache.table
        members = [qp]
        for key in PodGroups.of(table).pending_members(group.key, table):
            if key == qp.key:
                continue
            sibling = self.queue.take(key)
            if sibling is None:
                continue
            if sibling.pod.scheduler_name != profile.name:
                self.queue.put_back(sibling)  # another profile's pod: its own cycles place it
                continue
            members.append(sibling)
        try:
            plan = place_group(profile, group, [m.pod for m in members], table)
        except Exception as e:
            log.exception("planning pod group %s failed in a plugin", group.key)
            self._observe_points(profile.name, trace, "Error")
            for m in members:
                self._failed(m, profile.name, started, f"scheduler error: {type(e).__name__}: {e}", result=_ERROR,
                             reason="SchedulerError")
            return
        algorithm = time.perf_counter() - started
        self.metrics.algorithm_duration.observe(algorithm)
        planned = dict(zip((m.key for m in members), plan.decisions))
        if not plan.fits:
            self._observe_points(profile.name, trace, "Unschedulable")
            failed = plan.failed or plan.decisions[-1]
            post = plugin.postfilter(failed.pod, table, failed.state, failed.reasons, profile)
            message = f"{plan.message} {post.message}" if post.message else plan.message
            rejecting = frozenset(trace.rejected_by) | {plugin.name}
            for decided in plan.decisions:
                self._revert_volumes(profile, decided)
            for m in members:
                self._failed(m, profile.name, started, message, result=_UNSCHEDULABLE, plugins=rejecting)
            log.info("pod group not placed", extra={"fields": {
                "group": group.key, "members": len(members), "placed_in_plan": len(plan.placed), "need": plan.need,
                "profile": profile.name}})
            if self.on_group_failed is not None:
                self.on_group_failed(group, message)
            return
        self._observe_points(profile.name, trace, "Success")
        log.info("pod group placed", extra={"fields": {
            "group": group.key, "members": len(plan.placed), "need": plan.need, "profile": profile.name,
            "algorithm_ms": round(algorithm * 1000, 3)}})
        rejected = False
        for m in members:
            d = planned.get(m.key)
            if d is None or rejected:
                # Not tried (the plan stopped early), or its group was rejected at Permit meanwhile.
                if d is not None:
                    self._revert_volumes(profile, d)
                self.queue.requeue(m, unschedulable=False)
                continue
            if d.node is None:
                self._failed(m, profile.name, started, d.message, result=_UNSCHEDULABLE)
                continue
            if self._reserve_and_permit(m, profile, d, started, algorithm) is None:
                rejected = True

    # ---- preemption ------------------------------------------------------------------------

    def _post_filter(self, qp: QueuedPod, profile: Profile, decision: Decision) -> str | None:
        """What the PostFilter plugins concluded, acted on. Returns the pod's nomination for
        its status: the node it now waits for, "" to clear it, None to leave it as it is."""
        post = decision.post_filter
        if post is None:
            return None
        if post.plugin == DEFAULT_PREEMPTION or (
                not post.success and any(p.name == DEFAULT_PREEMPTION for p in profile.postfilters)):
            self.metrics.preemption_attempts.inc()  # upstream counts every run of DefaultPreemption's PostFilter
        pod = qp.pod
        if post.success and post.nominated_node:
            node = post.nominated_node
            victims = tuple(getattr(post.detail, "victims", ()) or ())
            # Nominate now: the next cycles see the pod on the node before the API hears of it.
            self.cache.nominate(pod, node)
            self.metrics.preemption_victims.observe(len(victims))
            evicting = self.preemptor.preempt(pod=pod, node=node, victims=victims)
            log.info("preempting", extra={"fields": {
                "pod": pod.key, "node": node, "victims": ",".join(v.key for v in victims),
                "evicting": len(evicting), "profile": profile.name}})
            return node
        if post.nominated_node == "":
            if self.cache.nominations.node_of(pod.key) is not None:
                self.cache.nominate(pod, "")  # preemption cannot help on its node any more
            return ""
        return None

    # ---- binding ---------------------------------------------------------------------------

    async def _bind(self, qp: QueuedPod, decision: Decision, started: float, algorithm: float,
                    waiter: Waiting | None = None, volumes: PreparedBinding | None = None) -> None:
        pod, node = qp.pod, str(decision.node)
        profile = self.profiles[decision.profile]
        try:
            if waiter is not None:
                # WaitOnPermit: the pod holds its node until its Permit plugins allow or reject it.
                outcome = await waiter.wait()
                self.metrics.permit_wait_duration.labels("success" if outcome.allowed else "unschedulable").observe(
                    time.perf_counter() - waiter.started)
                if not outcome.allowed:
                    self._unreserve(profile, decision)
                    self._failed(qp, decision.profile, started, fit_error_message(1, {outcome.message: 1}),
                                 result=_UNSCHEDULABLE, plugins=frozenset({outcome.plugin}))
                    return
            if not self.is_leader():
                self._unreserve(profile, decision)
                self.queue.requeue(qp, unschedulable=False)
                return
            if node not in self.cache.table:
                # The node left while the pod waited for its binding: choose again.
                self._unreserve(profile, decision)
                self._failed(qp, decision.profile, started, f"node {node} was deleted before binding",
                             result=_ERROR, reason="SchedulerError", nominated="")
                return
            if not await self._pre_bind(qp, profile, decision, started, volumes):
                return
            if volumes is not None and volumes.has_work and not self.is_leader():
                # Leadership was lost while the volumes were bound: the next leader binds the pod.
                self._unreserve(profile, decision)
                self.queue.requeue(qp, unschedulable=False)
                return
            t = time.perf_counter()
            result = await self.binder.bind(pod=pod, node=node, annotations=decision.annotations)
            status = "Success" if result.outcome is Outcome.BOUND else "Error"
            self.metrics.extension_point_duration.labels("Bind", status, decision.profile).observe(time.perf_counter() - t)
        except asyncio.CancelledError:
            self._unreserve(profile, decision)
            self.queue.requeue(qp, unschedulable=False)
            raise
        if result.outcome is Outcome.BOUND:
            self.cache.finish_binding(pod.key)
            self.queue.done(pod.key)
            self.bound += 1
            self.recorder.scheduled(PodRef.of(pod), node)
            took = time.perf_counter() - started
            self.metrics.schedule_attempts.labels(_SCHEDULED, decision.profile).inc()
            self.metrics.attempt_duration.labels(_SCHEDULED, decision.profile).observe(took)
            self.metrics.pod_attempts.observe(qp.attempts)
            if qp.initial_attempt is not None:
                sli = max(0.0, self.queue.clock() - qp.initial_attempt)
                self.metrics.sli_duration.labels(str(qp.attempts)).observe(sli)
            attempts = qp.attempts
            self.decisions.record("scheduled pod", lambda: {
                "pod": pod.key, "node": node, "profile": decision.profile, "score": decision.best_total,
                "feasible": int(decision.feasible.sum()), "nodes": len(decision.feasible),
                "algorithm_ms": round(algorithm * 1000, 3), "duration_ms": round(took * 1000, 3),
                "attempts": attempts, "batched": decision.batched}, outcome="scheduled")
            return
        self._unreserve(profile, decision)
        self.metrics.binding_failures.labels(result.outcome.value).inc()
        if result.outcome is Outcome.GONE:
            # Deleted, or bound by someone else: the watch tells the rest. Never retried.
            log.info("binding %s to %s: pod gone (%s)", pod.key, node, result.error)
            self.queue.done(pod.key)
            self.metrics.schedule_attempts.labels(_ERROR, decision.profile).inc()
            return
        log.warning("binding %s to %s failed, will retry: %s", pod.key, node, result.error)
        # As upstream's binding-cycle failure: the nomination, if any, is cleared with the report.
        self._failed(qp, decision.profile, started, f"Binding rejected: {result.error}", result=_ERROR,
                     reason="SchedulerError", not_before=self.queue.clock() + result.retry_after, nominated="")

    async def _pre_bind(self, qp: QueuedPod, profile: Profile, decision: Decision, started: float,
                        volumes: PreparedBinding | None) -> bool:
        """Upstream's RunPreBindPlugins: VolumeBinding's PreBind binds the pod's volumes. Returns
        whether the pod may be bound; when not, the failure has been handled."""
        if not self._pre_binds.get(decision.profile):
            return True
        pod, t = qp.pod, time.perf_counter()
        try:
            if volumes is not None:
                await self.volume_binder.bind(pod=pod, prepared=volumes)
        except PodDeleted:
            # Deleted while its volumes were being bound: nothing to report, never retried.
            log.info("pod %s deleted while its volumes were being bound", pod.key)
            self._unreserve(profile, decision)
            self.queue.done(pod.key)
            self.metrics.schedule_attempts.labels(_ERROR, decision.profile).inc()
            return False
        except BindingStopped:
            # The scheduler stops: the pod is given back untouched, for the next leader.
            self._unreserve(profile, decision)
            self.queue.requeue(qp, unschedulable=False)
            return False
        except VolumeBindingError as e:
            log.warning("binding the volumes of %s on %s failed: %s", pod.key, decision.node, e.message)
            self._pre_bind_failed(qp, profile, decision, started, time.perf_counter() - t, e.message)
            return False
        except Exception as e:
            # A fault of vecsched's own: reported, and the pod tried again, all the same.
            log.exception("binding the volumes of %s on %s failed", pod.key, decision.node)
            self._pre_bind_failed(qp, profile, decision, started, time.perf_counter() - t,
                                  f"scheduler error: {type(e).__name__}: {e}")
            return False
        self.metrics.extension_point_duration.labels("PreBind", "Success", decision.profile).observe(
            time.perf_counter() - t)
        return True

    def _pre_bind_failed(self, qp: QueuedPod, profile: Profile, decision: Decision, started: float, took: float,
                         message: str) -> None:
        """As upstream's handleBindingCycleError for a PreBind error: unreserve (VolumeBinding
        reverts what it assumed), move the parked pods -- the room the pod held and the volumes
        it had assumed are free again -- then report and back the pod off."""
        self.metrics.extension_point_duration.labels("PreBind", "Error", decision.profile).observe(took)
        left = assigned_pod_left(table=self.cache.table, pod=qp.pod, node=str(decision.node))  # before the room is given back
        self._unreserve(profile, decision)
        self.queue.on_event(left)
        self._failed(qp, decision.profile, started, f'running PreBind plugin "{VOLUME_BINDING}": {message}',
                     result=_ERROR, reason="SchedulerError", nominated="")

    # ---- outcomes --------------------------------------------------------------------------

    def _failed(self, qp: QueuedPod, profile: str, started: float, message: str, *, result: str,
                reason: str = "Unschedulable", plugins: frozenset[str] = frozenset(), not_before: float = 0.0,
                nominated: str | None = None) -> None:
        took = time.perf_counter() - started
        self.metrics.schedule_attempts.labels(result, profile).inc()
        self.metrics.attempt_duration.labels(result, profile).observe(took)
        attempts = qp.attempts
        self.decisions.record("pod not scheduled", lambda: {
            "pod": qp.key, "profile": profile, "result": result, "message": message, "attempts": attempts},
            outcome="failed")
        self.recorder.failed(PodRef.of(qp.pod), message, reason=reason, current=qp.pod.raw, nominated=nominated)
        self.queue.requeue(qp, unschedulable=result == _UNSCHEDULABLE, plugins=plugins, not_before=not_before)

    def _observe_points(self, profile: str, trace: Trace, status: str) -> None:
        for point, seconds in trace.seconds.items():
            if trace.failed:
                point_status = "Error"
            elif point in ("PreFilter", "Filter"):
                point_status = status
            else:
                point_status = trace.post_filter if point == "PostFilter" else "Success"
            self.metrics.extension_point_duration.labels(point, point_status, profile).observe(seconds)

    async def drain(self, *, timeout: float) -> int:
        """Reject the pods waiting at Permit (none is bound in part of its group) and end the
        waits for volume bindings (their pods go back to the queue), then wait (at most
        ``timeout`` seconds) for bindings in flight; returns how many were cut short."""
        self.waiting.reject_all("", STOPPING)
        self.volume_binder.close()  # a volume binding may wait minutes for the PV controller: not for a stop
        return await drain(self._binding, timeout=timeout)

    @property
    def bindings_in_flight(self) -> int:
        return len(self._binding)


def _log_nodes(decision: Decision) -> None:
    totals = dict(zip((decision.node_names[int(r)] for r in decision.scored), decision.totals.tolist()))
    for row, name in enumerate(decision.node_names[: len(decision.feasible)]):
        if decision.feasible[row]:
            log.debug("node %s for %s: total %s", name, decision.pod.key, totals.get(name))
        else:
            log.debug("node %s for %s: infeasible: %s", name, decision.pod.key, "; ".join(decision.reasons_of(row)))


async def _first(*coros: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of ``coros`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
