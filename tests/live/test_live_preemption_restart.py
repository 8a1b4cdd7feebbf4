"""A scheduler restarted in the middle of a preemption continues from the API alone.

The first scheduler nominates the pod and starts deleting its victims, and stops
while they are still terminating. The second one reads the nomination from
``status.nominatedNodeName`` and the victims' ``deletionTimestamp`` and
DisruptionTarget condition, so DefaultPreemption finds the pod "not eligible due to
a terminating pod on the nominated node." and it waits: no victim is deleted
twice, nothing else is deleted, and the pod is bound where it was nominated.

Both schedulers run as the ServiceAccount of ``deploy/rbac.yaml`` with RBAC
enforced, so the API server's authorization log holds every call they made.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from scheduler.apiserver.auth import read_rbac_file
from scheduler.kube.client import ClientSettings
from tests.controlplane.support import control_plane
from tests.live.support import events_for, pods_of, running, wait_for
from tests.live.test_live_preemption import (all_running, node_of, nominated, pending, place, priority_class, scrape,
                                             terminating)

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
SERVICE_ACCOUNT = "system:serviceaccount:vecsched:vecsched"


async def test_a_restarted_scheduler_waits_for_the_victims_and_deletes_none_twice(tmp_path: Path) -> None:
    async with control_plane(nodes=2, rbac=read_rbac_file(RBAC), tokens={"sa": SERVICE_ACCOUNT}) as srv:
        kubeconfig = srv.kubeconfig_for(token="sa", path=tmp_path / "sa.kubeconfig")
        client = ClientSettings(kubeconfig=str(kubeconfig))
        priority_class(srv, "mid", 500)
        priority_class(srv, "urgent", 1000)
        # node-0000: 4 x 1 CPU of priority 0, 3 s grace periods (time to restart in).
        # node-0001: 2 x 2 CPU of priority 500.
        for i in range(4):
            place(srv, f"low-{i}", "node-0000", cpu="1", grace=3)
        for i in range(2):
            place(srv, f"mid-{i}", "node-0001", cpu="2", priority="mid")
        await all_running(srv)
        # "urgent" (2 CPU): node-0000 gives 2 victims of priority 0 (2 + 2 = 4), node-0001 1 of
        # priority 500; the lowest highest-victim priority wins -> node-0000, 2 victims.
        async with running(srv, client=client) as first:
            pending(srv, "urgent", cpu="2", priority="urgent")
            await wait_for(lambda: nominated(srv, "urgent") == "node-0000" and len(terminating(srv)) == 2,
                           what="urgent nominated, its 2 victims terminating")
            victims = terminating(srv)
            assert victims < {f"low-{i}" for i in range(4)}
            assert (await scrape(first))["scheduler_preemption_victims_sum"] == 2
        assert node_of(srv, "urgent") is None and terminating(srv) == victims  # still in their grace period

        async with running(srv, client=client) as second:
            # The new scheduler tries urgent at once: node-0000 is still full (its victims hold
            # their CPU until they are gone), and the nominated node has terminating victims.
            await wait_for(lambda: any(e["message"].endswith(
                "preemption: not eligible due to a terminating pod on the nominated node.")
                for e in events_for(srv, "urgent", reason="FailedScheduling")), what="urgent waits")
            await wait_for(lambda: node_of(srv, "urgent") == "node-0000", timeout=10, what="urgent bound")
            m = await scrape(second)
            assert m["scheduler_preemption_attempts_total"] >= 1
            assert m["scheduler_preemption_victims_count"] == 0  # it chose no victims of its own

        pods = pods_of(srv)
        assert set(pods) == ({f"low-{i}" for i in range(4)} - victims) | {"mid-0", "mid-1", "urgent"}
        # Every DELETE either scheduler sent, by pod: each victim once, nothing else.
        deletes = Counter(d.name for d in srv.auth_log
                          if d.user == SERVICE_ACCOUNT and d.verb == "delete" and d.resource == "pods")
        assert deletes == Counter({v: 1 for v in victims})
        assert all(d.allowed for d in srv.auth_log if d.user == SERVICE_ACCOUNT)
        for v in victims:
            assert len(events_for(srv, v, reason="Preempted")) == 1
