"""The controller manager: starts every controller as a task and feeds its queue.

It plays kube-controller-manager's role beside the embedded API server, in
the same event loop: for each controller it registers store listeners that
map writes to keys (the primary kind's own writes, and the kinds its
``watches`` names), queues every existing primary object once at start, re-queues
all of them every ``resync`` seconds (level-triggered: a missed event is
healed by the next resync), and runs ``workers`` tasks per controller that
reconcile keys one at a time, with backoff on failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..errors import ApiError
from ..operations import Operations
from ..store import Entry, Listener, Store
from .base import Client, ClusterView, Controller, ControllerContext, Mapper, Recorder
from .pods import PodIndex

# Kinds whose pods the shared index counts per owner (the controllers that scale pods by counting them).
POD_OWNERS = ("ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet")

__all__ = ["ControllerManager"]

log = logging.getLogger("vecsched.apiserver.controllers")


class ControllerManager:
    """Runs a set of controllers over one store."""

    def __init__(self, *, store: Store, ops: Operations, controllers: Sequence[type[Controller]],
                 resync: float = 30.0, settings: dict[str, object] | None = None) -> None:
        if resync <= 0:
            raise ValueError(f"resync must be > 0 seconds, got {resync}")
        client = Client(store=store, ops=ops)
        self.ctx = ControllerContext(store=store, client=client, view=ClusterView(store=store),
                                     recorder=Recorder(client=client), pods=PodIndex(store=store, kinds=POD_OWNERS),
                                     settings=dict(settings or {}))
        self.controllers = [cls(ctx=self.ctx) for cls in controllers]
        self.resync = resync
        self._tasks: list[asyncio.Task[None]] = []
        for c in self.controllers:
            store.add_listener(c.primary, self._primary_mapper(c))
            for key, mapper in c.watches().items():
                store.add_listener(key, self._mapped(c, mapper))

    def _primary_mapper(self, c: Controller) -> Listener:
        def on_write(key: str, old: Entry | None, new: Entry | None) -> None:
            e = new or old
            if e is not None:
                c.queue.add((e.namespace, e.name))
        return on_write

    @staticmethod
    def _mapped(c: Controller, mapper: Mapper) -> Listener:
        def on_write(key: str, old: Entry | None, new: Entry | None) -> None:
            for k in mapper(old, new):
                c.queue.add(k)
        return on_write

    def get(self, name: str) -> Controller:
        for c in self.controllers:
            if c.name == name:
                return c
        raise KeyError(f"no controller {name!r}; running: {', '.join(c.name for c in self.controllers)}")

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("ControllerManager.start() called twice; call stop() first")
        for c in self.controllers:
            self._enqueue_all(c)
            for i in range(c.workers):
                self._tasks.append(asyncio.create_task(self._worker(c), name=f"{c.name} worker {i}"))
        self._tasks.append(asyncio.create_task(self._resync_loop(), name="controller resync"))

    async def stop(self) -> None:
        for c in self.controllers:
            c.queue.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _enqueue_all(self, c: Controller) -> None:
        rt = self.ctx.store.type(c.primary)
        for e in self.ctx.store.entries(rt):
            c.queue.add((e.namespace, e.name))

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for c in self.controllers:
                self._enqueue_all(c)

    async def _worker(self, c: Controller) -> None:
        while True:
            key = await c.queue.get()
            if key is None:
                return
            try:
                after = await c.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a controller bug or a conflict: retry later, keep the others running
                delay = c.queue.add_rate_limited(key)
                if isinstance(e, ApiError) and e.code == 409:
                    log.debug("%s: %s/%s conflicted, retrying in %.3f s", c.name, key[0], key[1], delay)
                else:
                    # The traceback of a fault once per key and failure streak; the retries just say so.
                    first = delay <= c.queue.base_delay
                    log.warning("%s: reconciling %s/%s failed (retrying in %.3f s): %s", c.name, key[0], key[1],
                                delay, e, exc_info=first and not isinstance(e, ApiError))
            else:
                c.queue.forget(key)
                if after is not None:
                    c.queue.add_after(key, after)
            finally:
                c.reconciles += 1
                c.queue.done(key)
            await asyncio.sleep(0)  # let the API server answer requests between reconciles

    def idle(self) -> bool:
        """No controller has queued work (timers may still be pending)."""
        return all(len(c.queue) == 0 for c in self.controllers)

