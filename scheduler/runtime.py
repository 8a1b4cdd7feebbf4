"""The live scheduler assembled: informers -> cache and queue -> cycle -> binder -> API.

``Scheduler`` owns every long-running task of one scheduler instance and
starts and stops them in order, so that ``vecsched run``, the demo and tests
all run the same thing in-process::

    async with Scheduler(config=load_config(None), settings=RuntimeSettings(
            client=ClientSettings(kubeconfig=path), port=0, leader_elect=False)) as s:
        await s.wait_ready()
        ...

``port=0`` serves /metrics and the probes over plain HTTP on a free port of the
(loopback) ``bind_address``; a port above 0 serves HTTPS with delegated
authentication and authorization, as ``vecsched run`` and kube-scheduler do.

Stopping is graceful, as kube-scheduler's SIGTERM handling: no new pod is
taken, bindings and evictions in flight finish (for at most ``drain_seconds``),
the lease is released, then the watches close.

The informer handlers turn what they see into cluster events for the queue
(``scoring.queueing_hints``): a node's addition, deletion, or the kinds of change that
plugins read (allocatable, labels, taints, ``spec.unschedulable`` cleared), each with
the node as the cache knew it before; a pod bound (by us or anyone), relabelled, scaled
down, deleted or finished, with its node. The queue moves only the parked pods whose
rejecting plugins' hints say the event may help them; a heartbeat moves nobody.

When a profile runs a volume plugin (VolumeBinding, VolumeZone, NodeVolumeLimits,
VolumeRestrictions), the storage objects they read are watched too, and a change of
one moves the parked pods that one of the plugins registering that change rejected
(upstream's EventsToRegister of the four plugins, without queueing hints): a new PV
may be the one a claim waited for, a claim bound at last lets its pod through.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scoring.framework import Profile
from scoring.objects import NodeInfo, ObjectError, PodInfo
from scoring.plugins import VOLUME_PLUGINS
from scoring.queueing_hints import assigned_pod_events, assigned_pod_left, node_deleted, node_events, storage_event
from scoring.safe_input import is_mapping, quote
from scheduler.cache import ASSUMED_POD_TTL_SECONDS, SchedulerCache, preemption_facts, read_pod, start_informers
from scheduler.config import SchedulerConfig, default_config
from scheduler.cycle import SchedulingCycle
from scheduler.delegated import DelegatingAuth
from scheduler.kube.binder import Binder
from scheduler.kube.client import ClientSettings, KubeClient, connect
from scheduler.kube.events import EventLimiter, EventRecorder, PodRef
from scheduler.kube.informer import STORAGE, Backoff, Delta, Informer
from scheduler.leader import LeaderElector, LeaseSettings
from scheduler.loadmetrics import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, LoadMetricsRefresher, load_fetcher
from scheduler.metrics import Metrics, MetricsServer
from scheduler.podgroup_operator import PodGroupOperator
from scheduler.preemptor import Preemptor, PreemptorSettings
from scheduler.queue import SchedulingQueue
from scheduler.serving import DEFAULT_ALWAYS_ALLOW_PATHS, AlwaysAllowPaths, SelfSigned, is_loopback, server_context
from scheduler.volume_binder import VolumeBinder

__all__ = ["RuntimeSettings", "Scheduler", "run_scheduler"]

log = logging.getLogger("vecsched.runtime")


_RESOURCE_OF: Final = {kind: path.rsplit("/", 1)[1] for path, kind in STORAGE}


def _identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"  # kube-scheduler's holder identity shape


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """How one scheduler instance runs (the profiles come from the SchedulerConfig)."""

    client: ClientSettings = field(default_factory=ClientSettings)
    """How to reach the API server (kubeconfig, QPS, burst)."""
    bind_address: str = "127.0.0.1"
    """Address of the /metrics /healthz /readyz /livez server. Loopback here, so that a program
    that starts a scheduler exposes nothing by default; ``vecsched run`` binds 0.0.0.0, as
    kube-scheduler does."""
    port: int | None = 10259
    """Its port (kube-scheduler's secure port); 0 picks a free one; None serves nothing."""
    secure: bool | None = None
    """HTTPS with delegated authentication and authorization (True), or plain HTTP, which only a
    loopback ``bind_address`` may serve (False). None: ``vecsched run``'s rule, HTTPS on a port
    above 0 and plain HTTP on port 0."""
    tls_cert_file: str | None = None
    """PEM certificate served over HTTPS (with ``tls_key_file``); None: a self-signed one made at start."""
    tls_key_file: str | None = None
    always_allow_paths: tuple[str, ...] = DEFAULT_ALWAYS_ALLOW_PATHS
    """Paths served over HTTPS without credentials (``--authorization-always-allow-paths``; a
    trailing ``*`` matches a prefix)."""
    leader_elect: bool | None = None
    """None: the config's ``leaderElection.leaderElect`` (true by default, as upstream)."""
    lease: LeaseSettings | None = None
    """Lease name, namespace and timings; None: from the config's ``leaderElection``."""
    identity: str = field(default_factory=_identity)
    """This replica's name in the Lease and in Events (``hostname_uuid``, unique per process)."""
    informer_backoff: Backoff = field(default_factory=Backoff)
    """Delays between watch reconnections (client-go's 0.8 s doubling to 30 s)."""
    assumed_ttl: float = ASSUMED_POD_TTL_SECONDS
    """Seconds an assumed pod may stay unconfirmed after its binding (upstream: 30)."""
    drain_seconds: float = 10.0
    """On stop, how long bindings and evictions in flight may take to finish."""
    event_min_interval: float = 5.0
    """Seconds between two FailedScheduling reports of one pod."""
    event_repeat_interval: float = 60.0
    """Seconds before an unchanged FailedScheduling message is reported again."""
    plugin_metrics_sample: float = 0.1
    """Fraction of cycles whose per-plugin durations are observed (upstream: 10%)."""
    preemptor: PreemptorSettings = field(default_factory=PreemptorSettings)
    """Retries of preemption's API calls (DisruptionTarget condition, delete, nominations)."""
    load_metrics_interval: float = DEFAULT_INTERVAL
    """Seconds between refreshes of the load plugins' node metrics (scheduler-plugins' 30)."""
    load_metrics_timeout: float = DEFAULT_TIMEOUT
    """Seconds one request for node metrics may take (load-watcher's 10 for a Prometheus query)."""
    node_metrics_file: str | None = None
    """Read the load plugins' node metrics from this WatcherMetrics JSON file instead of their own source."""

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"--port: must be between 0 and 65535, got {self.port}")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
        AlwaysAllowPaths.parse(self.always_allow_paths)  # a bad path fails here, before anything starts
        if self.port is not None and not self.serves_https:
            if self.tls_cert_file:
                raise ValueError("--tls-cert-file: port 0 serves plain HTTP; give a --port above 0 to serve HTTPS")
            if not is_loopback(self.bind_address):
                raise ValueError(f"--bind-address {quote(self.bind_address)}: plain HTTP (port 0) is served on a "
                                 "loopback address only (127.0.0.1, ::1 or localhost); give a --port above 0 for HTTPS")

    @property
    def serves_https(self) -> bool:
        """Whether the server speaks HTTPS (with delegated auth) rather than plain HTTP."""
        return self.secure if self.secure is not None else bool(self.port)


class Scheduler:
    """One live scheduler: ``start()``, ``wait_ready()``, ``stop()`` (or ``async with``)."""

    def __init__(self, *, config: SchedulerConfig | None = None, settings: RuntimeSettings | None = None,
                 profiles: Mapping[str, Profile] | None = None, client: KubeClient | None = None) -> None:
        self.config = config or default_config()
        self.settings = settings or RuntimeSettings()
        self.metrics = Metrics()
        self.cache = SchedulerCache(assumed_ttl=self.settings.assumed_ttl)
        self.cache.on_invalid = lambda kind: self.metrics.malformed_objects.labels(kind).inc()
        self.queue = SchedulingQueue(initial_backoff=self.config.pod_initial_backoff_seconds,
                                     max_backoff=self.config.pod_max_backoff_seconds,
                                     on_incoming=self.metrics.incoming)
        self._profiles = dict(profiles) if profiles is not None else self.config.build()
        self.volume_plugins: frozenset[str] = frozenset(
            n for p in self._profiles.values() for n in p.plugin_names if n in VOLUME_PLUGINS)
        """The volume plugins the profiles run; none: storage objects are not watched."""
        sort = next(iter(self._profiles.values())).queue_sort if self._profiles else None
        if sort is not None:
            # The profiles' QueueSort plugin orders the one queue (the config checks they agree).
            self.queue.sort_key = lambda qp: sort.queue_key(qp.pod, self.cache.table, timestamp=qp.timestamp,
                                                           first_seen=qp.first_seen)
        fetcher = load_fetcher(self._profiles, config=self.config, node_metrics=self.settings.node_metrics_file,
                               timeout=self.settings.load_metrics_timeout)
        self.load_refresher = None if fetcher is None else LoadMetricsRefresher(
            fetcher=fetcher, table=self.cache.table, metrics=self.metrics, interval=self.settings.load_metrics_interval)
        """Keeps the load plugins' node metrics fresh (every replica); None where no profile has a load plugin."""
        self._client = client
        self._own_client = client is None
        self._stop = asyncio.Event()
        self._stop_leading = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._informers: list[Informer] = []
        self.elector: LeaderElector | None = None
        self.cycle: SchedulingCycle | None = None
        self.server: MetricsServer | None = None
        self.auth: DelegatingAuth | None = None
        """Delegated authentication and authorization of the HTTPS server (None over plain HTTP)."""
        self.certificate: SelfSigned | None = None
        """The self-signed serving certificate made at start (None: the operator's, or plain HTTP)."""
        self.recorder: EventRecorder | None = None
        self.preemptor: Preemptor | None = None
        self.volume_binder: VolumeBinder | None = None
        """PreBind's volume binding: waits for the PV controller on the informers' events."""
        self.podgroup_operator: PodGroupOperator | None = None
        """Keeps PodGroups' status and Events (leader only); idle where the CRD is not installed."""
        self._unreadable: set[str] = set()
        self._started = False
        self.stopped = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def client(self) -> KubeClient:
        if self._client is None:
            raise RuntimeError("the scheduler has no API client yet: call start() first")
        return self._client

    async def start(self) -> None:
        """Connect, serve metrics, start the informers, the election and the scheduling loop.
        Returns at once; ``wait_ready()`` waits for synced caches (and leadership)."""
        if self._started:
            raise RuntimeError("Scheduler.start() called twice; create a new Scheduler instead")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()  # e.g. the metrics port is taken: close what was opened
            raise

    async def _start(self) -> None:
        if self._client is None:
            self._client = await connect(self.settings.client)
        s = self.settings
        recorder = EventRecorder(client=self.client.with_own_limiter(), instance=s.identity,
                                 limiter=EventLimiter(min_interval=s.event_min_interval,
                                                      repeat_interval=s.event_repeat_interval),
                                 on_suppressed=lambda why: self.metrics.events_dropped.labels(why).inc())
        self.recorder = recorder
        le = self.config.leader_election
        if s.leader_elect if s.leader_elect is not None else le.leader_elect:
            lease = s.lease or LeaseSettings(namespace=le.resource_namespace, name=le.resource_name,
                                             identity=s.identity, lease_duration=le.lease_duration_seconds,
                                             renew_deadline=le.renew_deadline_seconds,
                                             retry_period=le.retry_period_seconds)
            self.elector = LeaderElector(client=self.client, settings=lease,
                                         on_change=lambda v: self.metrics.is_leader.set(1 if v else 0))
        else:
            self.metrics.is_leader.set(1)
        self.preemptor = Preemptor(client=self.client, recorder=recorder, cache=self.cache, queue=self.queue,
                                   metrics=self.metrics, settings=s.preemptor)
        operator = self.podgroup_operator = PodGroupOperator(
            client=self.client, recorder=recorder, metrics=self.metrics,
            limiter=EventLimiter(min_interval=s.event_min_interval, repeat_interval=s.event_repeat_interval))
        self.volume_binder = VolumeBinder(client=self.client, cache=self.cache)
        self.cycle = SchedulingCycle(profiles=self._profiles, cache=self.cache, queue=self.queue,
                                     binder=Binder(client=self.client), recorder=recorder, metrics=self.metrics,
                                     preemptor=self.preemptor,
                                     is_leader=self.elector.is_leader if self.elector else (lambda: True),
                                     plugin_metrics_sample=s.plugin_metrics_sample,
                                     on_group_failed=lambda g, message: operator.group_failed(
                                         namespace=g.namespace, name=g.name, message=message),
                                     volume_binder=self.volume_binder)
        snap = self.metrics.snapshot
        snap.pending = self.queue.counts
        snap.cache_sizes = self.cache.sizes
        snap.unschedulable = lambda: [(p, qp.pod.scheduler_name) for qp in self.queue.unschedulable_pods()
                                      for p in qp.unschedulable_plugins]
        if s.port is not None:
            # /readyz: caches synced, leading or not -- kube-scheduler's standbys are Ready too,
            # so that a Deployment of two replicas can roll and its PodDisruptionBudget can evict.
            ctx, guard = None, None
            if s.serves_https:
                ctx, self.certificate = server_context(cert_file=s.tls_cert_file, key_file=s.tls_key_file,
                                                       bind_address=s.bind_address)
                # Its own rate limit, as kube-scheduler's review clients: scrapes never slow binding.
                guard = self.auth = DelegatingAuth(client=self.client.with_own_limiter(),
                                                   always_allow=AlwaysAllowPaths.parse(s.always_allow_paths))
            self.server = MetricsServer(metrics=self.metrics, ready=lambda: self.synced, host=s.bind_address,
                                        port=s.port, ssl_context=ctx, guard=guard)
            await self.server.start()
        self._informers = start_informers(client=self.client, cache=self.cache, on_node=self._on_node,
                                          on_pod=self._on_pod, backoff=s.informer_backoff, on_budget=self._on_budget,
                                          on_podgroup=self._on_podgroup,
                                          on_storage=self._on_storage if self.volume_plugins else None)
        self._spawn(operator.run(stop=self._stop, is_leader=self.elector.is_leader if self.elector else (lambda: True)),
                    "podgroup operator")
        self._spawn(self.queue.run_flusher(), "queue flusher")
        self._spawn(self._housekeeping(), "cache housekeeping")
        if self.load_refresher is not None:
            self._spawn(self.load_refresher.run(stop=self._stop), "load metrics refresher")
        if self.elector is not None:
            self._spawn(self.elector.run(stop=self._stop_leading), "leader election")
        self._spawn(self._schedule(), "scheduling loop")
        log.info("vecsched started", extra={"fields": {
            "profiles": ",".join(self._profiles), "api": self.client.host, "identity": s.identity,
            "leader_elect": self.elector is not None, "metrics": self.server.url if self.server else ""}})

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %r died: %r", task.get_name(), task.exception(), exc_info=task.exception())

    async def _schedule(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers))
        log.info("caches synced: %d nodes, %d pods charged, %d pods queued", self.cache.table.n,
                 len(self.cache.table.pods), sum(self.queue.counts().values()))
        assert self.cycle is not None
        refresher = self.load_refresher
        if refresher is not None and not refresher.first_attempt.is_set():
            # As Trimaran's collector fetches before its plugin starts: the first pods are scored by load too.
            try:
                await asyncio.wait_for(refresher.first_attempt.wait(), self.settings.load_metrics_timeout)
            except asyncio.TimeoutError:
                log.warning("scheduling without node metrics: the first fetch from %s has not finished after %gs",
                            refresher.fetcher.where, self.settings.load_metrics_timeout)
        await self.cycle.run(stop=self._stop, leading=self.elector.leading if self.elector else None)

    async def _housekeeping(self) -> None:
        while not self._stop.is_set():
            if self.cache.cleanup_expired():
                self.queue.move_all("AssumedPodExpired")
            await asyncio.sleep(1.0)

    @property
    def metrics_url(self) -> str:
        """Base URL of /metrics /healthz /readyz /livez as bound ("" when not serving)."""
        return self.server.url if self.server is not None else ""

    @property
    def synced(self) -> bool:
        return bool(self._informers) and all(i.synced.is_set() for i in self._informers)

    def ready(self) -> bool:
        """Informers synced and, with leader election, leading."""
        return self.synced and (self.elector is None or self.elector.is_leader())

    async def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Wait until the caches are synced (and, with leader election, until leading)."""
        async def _wait() -> None:
            while not self.ready():
                await asyncio.sleep(0.02)
        await asyncio.wait_for(_wait(), timeout)

    async def stop(self) -> None:
        """Stop taking pods, let bindings finish, release the lease, close the watches."""
        if self._stop.is_set():
            await self.stopped.wait()
            return
        self._stop.set()
        self.queue.close()
        try:
            if self.cycle is not None:
                cut = await self.cycle.drain(timeout=self.settings.drain_seconds)
                if cut:
                    log.warning("%d bindings did not finish within %.1fs", cut, self.settings.drain_seconds)
                self.cycle.decisions.flush()  # the decisions not yet summarised
            if self.preemptor is not None:
                cut = await self.preemptor.drain(timeout=self.settings.drain_seconds)
                if cut:
                    log.warning("%d preemptions did not finish within %.1fs", cut, self.settings.drain_seconds)
            # Only now give up the lease: a successor must not bind or evict while ours still run.
            self._stop_leading.set()
            if self.recorder is not None:
                await self.recorder.drain(timeout=2.0)
            for t in self._tasks:
                if t.get_name() != "leader election":
                    t.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=5.0)
            for inf in self._informers:
                await inf.stop()
            if self.server is not None:
                await self.server.stop()
            if self._own_client and self._client is not None:
                await self._client.close()
        finally:
            self.stopped.set()
            log.info("vecsched stopped")

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- informer handlers -----------------------------------------------------------------

    def _on_node(self, delta: Delta) -> None:
        self.metrics.informer_events.labels("nodes", delta.type).inc()
        if delta.type == "SYNCED":
            return
        name = str((delta.obj.get("metadata") or {}).get("name"))
        old = self._node_info(name)  # as the cache knew it, before this change
        if delta.type == "DELETED":
            self.cache.remove_node(name)
            self._volumes_changed()
            if old is not None:
                self.queue.on_event(node_deleted(old=old))
            return
        new = self.cache.set_node(delta.obj)
        if new is not None:
            self._volumes_changed()  # a volume binding checks its PVs' node affinity against the node's labels
            for event in node_events(old=old, new=new):  # none for a change no plugin reads
                self.queue.on_event(event)
        elif name in self.cache.skipped_nodes:
            self.metrics.malformed_objects.labels("node").inc()

    def _node_info(self, name: str) -> NodeInfo | None:
        row = self.cache.table.index.get(name)
        return self.cache.table.infos[row] if row is not None else None

    def _on_budget(self, delta: Delta) -> None:
        self.metrics.informer_events.labels("poddisruptionbudgets", delta.type).inc()
        self.cache.on_budget(delta)
        if delta.type in ("ADDED", "MODIFIED"):
            meta = _section(delta.obj, "metadata")
            if f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}" in self.cache.skipped_budgets:
                self.metrics.malformed_objects.labels("poddisruptionbudget").inc()

    def _on_podgroup(self, delta: Delta) -> None:
        self.metrics.informer_events.labels("podgroups", delta.type).inc()
        if self.podgroup_operator is not None:
            self.podgroup_operator.on_podgroup(delta)
        key = self.cache.on_podgroup(delta)  # (a malformed one is counted by the operator, once)
        if key:
            # Coscheduling registers PodGroup Add/Update: the group's parked members may fit now.
            self.queue.move(self.cache.podgroups.member_keys(key), "PodGroupUpdate")

    def _on_storage(self, kind: str, delta: Delta) -> None:
        self.metrics.informer_events.labels(_RESOURCE_OF[kind], delta.type).inc()
        if delta.type == "SYNCED":
            return
        key = self.cache.on_storage(kind, delta)
        self._volumes_changed()
        if delta.type == "DELETED":
            return
        if f"{kind} {key}" in self.cache.skipped_storage:
            self.metrics.malformed_objects.labels(kind.lower()).inc()
            return
        # The parked pods that a volume plugin registering this change rejected, or that no plugin did.
        self.queue.on_event(storage_event(kind=kind, action="Add" if delta.type == "ADDED" else "Update"))

    def _volumes_changed(self) -> None:
        if self.volume_binder is not None:
            self.volume_binder.notify()

    def _forget_pod(self, key: str) -> None:
        self.cache.forget_member(key)
        if self.volume_binder is not None:
            self.volume_binder.pod_deleted(key)  # its volume binding, if one is under way, ends
        self._forget_terminated(key)

    def _forget_terminated(self, key: str) -> None:
        """The pod finished or was deleted: it no longer charges a node or waits in the queue
        (a finished pod stays a member of its PodGroup until deleted, as upstream lists it)."""
        self._unreadable.discard(key)
        placed = self.cache.table.pods.get(key)
        # Room was freed (upstream's AssignedPodDelete): preemptors waiting for their victims among others.
        event = assigned_pod_left(table=self.cache.table, pod=placed.pod, node=placed.node) if placed else None
        if self.cache.delete_pod(key) and event is not None:
            self.queue.on_event(event)
        self.queue.delete(key)
        if self.preemptor is not None:
            self.preemptor.forget(key)
        if self.recorder is not None:
            self.recorder.forget(key)

    def _on_pod(self, delta: Delta) -> None:
        self.metrics.informer_events.labels("pods", delta.type).inc()
        if self.podgroup_operator is not None:
            self.podgroup_operator.on_pod(delta)  # every pod, SYNCED included: it counts the groups' members
        if delta.type == "SYNCED":
            return
        raw = delta.obj
        ref = PodRef.from_json(raw)
        if delta.type == "DELETED":
            self._forget_pod(ref.key)
            return
        if self._unchanged_running_pod(ref.key, raw):
            return
        # The watch confirming our own binding (the assumed pod with its node), or a placed pod's
        # status changing (the kubelet's start): built from the pod the cache holds, not read again.
        pod = self.cache.confirmation(ref.key, raw) or self.cache.status_update(ref.key, raw)
        if pod is None:
            try:
                pod = read_pod(raw)
            except ObjectError as e:
                self._malformed_pod(raw, ref, e)
                return
        group = self.cache.observe_member(pod)
        if group and delta.type == "ADDED":
            # Coscheduling registers Pod Add: a new member may complete its group's quorum.
            self.queue.move(self.cache.podgroups.member_keys(group), "PodAdd")
        if pod.terminated:
            self._forget_terminated(pod.key)
        elif not pod.node_name and _section(raw, "metadata").get("deletionTimestamp"):
            self.queue.delete(pod.key)  # being deleted: upstream's skipPodSchedule does not place it
            self.cache.drop_nomination(pod.key)
        elif pod.node_name:
            placed = self.cache.table.pods.get(pod.key)
            before = placed.pod if placed is not None and not self.cache.is_assumed(pod.key) else None
            self.cache.update_pod(pod)
            self.queue.delete(pod.key)
            if self.recorder is not None:
                self.recorder.forget(pod.key)
            self._assigned_pod_changed(before, pod.key)
        elif pod.scheduler_name in self._profiles:
            self.cache.observe_pending(pod)
            self.queue.add(pod)

    def _assigned_pod_changed(self, before: PodInfo | None, key: str) -> None:
        """A pod bound (``before`` None: new to the cache, or only assumed so far) or an
        assigned pod updated: its relabelling or scale-down may help parked pods (upstream's
        AssignedPodAdd / AssignedPodUpdate events). Nothing when the table did not take it."""
        placed = self.cache.table.pods.get(key)
        if placed is None or placed.pod is before:
            return
        for event in assigned_pod_events(old=before, new=placed.pod, node=self._node_info(placed.node)):
            self.queue.on_event(event)

    def _unchanged_running_pod(self, key: str, raw: Mapping[str, Any]) -> bool:
        """A kubelet status update of a pod already charged as it is: skip reading it again."""
        placed = self.cache.table.pods.get(key)
        if placed is None or self.cache.is_assumed(key):
            return False
        spec, status, meta = raw.get("spec"), raw.get("status"), raw.get("metadata")
        if not (is_mapping(spec) and is_mapping(status) and is_mapping(meta)):
            return False
        old = placed.pod.raw
        return (spec.get("nodeName") == placed.node and status.get("phase") not in ("Succeeded", "Failed")
                and old.get("spec") == spec and (old.get("metadata") or {}).get("labels") == meta.get("labels")
                and preemption_facts(old) == preemption_facts(raw))

    def _malformed_pod(self, raw: Mapping[str, Any], ref: PodRef, e: ObjectError) -> None:
        self.metrics.malformed_objects.labels("pod").inc()
        spec, status = _section(raw, "spec"), _section(raw, "status")
        ours = spec.get("schedulerName") in self._profiles
        if ours and not spec.get("nodeName") and status.get("phase") not in ("Succeeded", "Failed"):
            self.queue.delete(ref.key)  # an earlier, readable version may be queued
            if self.recorder is not None and self.recorder.failed(ref, f"pod {ref.key} cannot be scheduled: {e.field}: {e.problem}", current=raw):
                log.warning("cannot read pod: %s", e)
        elif spec.get("nodeName") and status.get("phase") not in ("Succeeded", "Failed"):
            self.cache.invalid_pod(ref.key, e)  # its node keeps what it charged
        elif ref.key not in self._unreadable:
            self._unreadable.add(ref.key)  # once per pod: a running pod is updated often
            log.warning("cannot read pod (not ours to schedule): %s", e)


def _section(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = raw.get(key)
    return v if is_mapping(v) else {}


async def run_scheduler(*, config: SchedulerConfig | None = None, settings: RuntimeSettings | None = None,
                        stop: asyncio.Event | None = None) -> None:
    """Run a scheduler until ``stop`` is set (forever when None), then stop it gracefully."""
    async with Scheduler(config=config, settings=settings):
        await (stop or asyncio.Event()).wait()
