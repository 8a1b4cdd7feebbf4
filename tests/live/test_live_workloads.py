"""Services (and controllers, where served) feed PodTopologySpread's default selectors."""

from __future__ import annotations

from scheduler.apiserver import ApiServer
from scoring.plugins.workloads import Workloads
from tests.live.support import bound_count, pod, running, wait_for


async def test_services_are_watched_and_unserved_kinds_do_not_block(apiserver: ApiServer) -> None:
    apiserver.create("services", {"metadata": {"name": "web", "namespace": "default"},
                                  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    # Kinds a server does not serve (or forbids) make their informers stand down without
    # blocking readiness (wait_ready inside running()).
    async with running(apiserver) as s:
        w = Workloads.of(s.cache.table)
        assert w.services.get("default", {}).get("web") == {"app": "web"}
        apiserver.create("services", {"metadata": {"name": "api", "namespace": "default"},
                                      "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}})
        await wait_for(lambda: "api" in w.services.get("default", {}), what="new service seen")
        apiserver.ops.delete(apiserver.resource("services"), namespace="default", name="web")
        await wait_for(lambda: "web" not in w.services.get("default", {}), what="deletion seen")
        for i in range(8):
            p = pod(f"web{i}")
            p["metadata"]["labels"] = {"app": "api"}
            apiserver.create("pods", p)
        await wait_for(lambda: bound_count(apiserver) == 8, what="pods of the service bound")
