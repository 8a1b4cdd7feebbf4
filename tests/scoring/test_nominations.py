"""Pods nominated by preemption, as the framework sees them: each holds room on its node
against pods of equal or lower priority (upstream's addGENominatedPods adds the nominated
pods of equal or higher priority than the pod being scheduled), and a nominated pod goes
to its node when it fits there, unscored (upstream's evaluateNominatedNode)."""

from typing import Any

import pytest

from scheduler.config import default_config
from scoring.framework import Profile
from scoring.nominations import Nominations, nominated_node
from scoring.objects import PodInfo, node_from_json, pod_from_json
from scoring.table import NodeTable


def _node(name: str, cpu: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}


def _pod(name: str, cpu: str, priority: int = 0, nominated: str = "") -> PodInfo:
    raw: dict[str, Any] = {"metadata": {"name": name, "namespace": "default", "uid": name},
                           "spec": {"priority": priority,
                                    "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}
    if nominated:
        raw["status"] = {"nominatedNodeName": nominated}
    return pod_from_json(raw)


def _setup() -> tuple[Profile, NodeTable]:
    table = NodeTable()
    # "small" has 2 CPUs free, "big" 8: the default profile's LeastAllocated prefers "big".
    for name, cpu in (("small", "2"), ("big", "8")):
        table.set_node(node_from_json(_node(name, cpu)))
    return default_config().build()["vecsched"], table


@pytest.mark.parametrize(("priority", "held", "expected"), [
    # A 2-CPU pod of priority 5 is nominated to "big" (8 CPU): 6 CPU stay free for others.
    # A 7-CPU pod of priority 1 (lower) must leave the nominee's room: 7 > 8 - 2, no node fits.
    (1, True, None),
    # Of priority 9 (higher), it does not see the nominee at all: 7 <= 8, "big".
    (9, False, "big"),
    # Of equal priority 5, it must leave the room too (the nominee's 5 >= 5): 7 > 6, no node.
    (5, True, None),
])
def test_nominated_pods_of_equal_or_higher_priority_hold_their_room(priority: int, held: bool,
                                                                    expected: str | None) -> None:
    profile, table = _setup()
    Nominations.of(table).set(_pod("nominee", "2", priority=5), "big")
    d = profile.schedule(_pod("other", "7", priority=priority), table)
    assert d.node == expected
    if held:
        assert d.message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    # The nominee was only charged while the filters ran.
    assert "default/nominee" not in table.pods


def test_a_nominee_goes_to_its_node_when_it_fits_there_unscored() -> None:
    profile, table = _setup()
    # Nominated (by its status, as after a restart) to "small", where 2 CPUs are free:
    # chosen although "big" scores higher, and without scores.
    pod = _pod("preemptor", "2", priority=100, nominated="small")
    assert nominated_node(pod, table) == "small"
    d = profile.schedule(pod, table)
    assert d.node == "small"
    assert d.scores == {} and list(d.scored) == [table.index["small"]]
    # The scheduler's own record wins over the status: nominated to "big" in the cache.
    Nominations.of(table).set(pod, "big")
    assert profile.schedule(pod, table).node == "big"


def test_a_nominee_whose_node_no_longer_fits_is_scheduled_as_any_pod() -> None:
    profile, table = _setup()
    # Nominated to "small" (2 CPUs) but asking 3: scored over the feasible nodes, "big".
    d = profile.schedule(_pod("preemptor", "3", priority=100, nominated="small"), table)
    assert d.node == "big" and d.scores
