"""An extender with a node/pod cache fed by informers from the embedded API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from scheduler.apiserver import ApiServer
from scheduler.config import SchedulerConfig, default_config
from scheduler.extender import ExtenderServer, ExtenderSettings, serve_extender
from scheduler.kube.client import ClientSettings
from scheduler.kube.informer import Backoff


@asynccontextmanager
async def cached_extender(srv: ApiServer, *, config: SchedulerConfig | None = None,
                          **kw: Any) -> AsyncIterator[ExtenderServer]:
    """``kw``: more ExtenderSettings; bind is enabled unless ``enable_bind=False`` says otherwise."""
    kw.setdefault("enable_bind", True)
    settings = ExtenderSettings(bind_address="127.0.0.1", port=0,
                                client=ClientSettings(kubeconfig=str(srv.kubeconfig_path)),
                                informer_backoff=Backoff(initial=0.02, cap=0.2, jitter=0.5), **kw)
    async with serve_extender(config=config or default_config(), settings=settings) as ext:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{ext.url}/readyz") as r:
                assert r.status in (200, 503)
        await ext.view.wait_synced()
        yield ext
