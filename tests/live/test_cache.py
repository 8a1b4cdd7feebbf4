"""The scheduler cache: assume, confirm, forget, expire; pods of others; malformed nodes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from scoring.objects import PodInfo, pod_from_json
from scheduler.cache import SchedulerCache
from tests.live.support import FakeClock


def node(name: str, cpu: str = "4") -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}


def mk(name: str, *, node_name: str = "", phase: str = "Pending", cpu: str = "1") -> PodInfo:
    return pod_from_json({"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
                          "spec": {"nodeName": node_name, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
                          "status": {"phase": phase}})


@pytest.fixture
def cache(clock: FakeClock) -> SchedulerCache:
    c = SchedulerCache(clock=clock)
    c.set_node(node("n1"))
    c.set_node(node("n2"))
    return c


def cpu_used(c: SchedulerCache, name: str) -> int:
    return int(c.table.requested[c.table.index[name], c.table.resource_index["cpu"]])


def test_assume_then_confirm(cache: SchedulerCache) -> None:
    cache.assume(mk("a"), "n1")
    assert cpu_used(cache, "n1") == 1000 and cache.sizes()["assumed_pods"] == 1
    cache.finish_binding("default/a")
    cache.update_pod(mk("a", node_name="n1"))  # the watch shows it bound
    assert cpu_used(cache, "n1") == 1000 and cache.sizes() == {"nodes": 2, "pods": 1, "assumed_pods": 0}


def test_forget_gives_capacity_back(cache: SchedulerCache) -> None:
    cache.assume(mk("a"), "n1")
    cache.forget("default/a")
    assert cpu_used(cache, "n1") == 0 and cache.sizes()["pods"] == 0


def test_forget_after_confirmation_keeps_the_observed_binding(cache: SchedulerCache) -> None:
    cache.assume(mk("a"), "n1")
    cache.update_pod(mk("a", node_name="n1"))  # confirmed before the binding call returned
    cache.forget("default/a")  # e.g. a retried call answered 409
    assert cpu_used(cache, "n1") == 1000


def test_unconfirmed_assumption_expires_30s_after_binding(cache: SchedulerCache, clock: FakeClock) -> None:
    cache.assume(mk("a"), "n1")
    clock.advance(100)
    assert cache.cleanup_expired() == []  # binding still in flight: never expires
    cache.finish_binding("default/a")
    clock.advance(29.9)
    assert cache.cleanup_expired() == []
    clock.advance(0.2)
    assert cache.cleanup_expired() == ["default/a"]
    assert cpu_used(cache, "n1") == 0


def test_unbound_update_keeps_assumption(cache: SchedulerCache) -> None:
    cache.assume(mk("a"), "n1")
    cache.update_pod(mk("a"))  # e.g. the annotation patch, seen before the binding
    assert cache.is_assumed("default/a") and cpu_used(cache, "n1") == 1000


def test_bound_elsewhere_by_another_scheduler(cache: SchedulerCache) -> None:
    cache.assume(mk("a"), "n1")
    cache.update_pod(mk("a", node_name="n2"))
    assert cpu_used(cache, "n1") == 0 and cpu_used(cache, "n2") == 1000
    assert not cache.is_assumed("default/a")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pod_frees_its_node(cache: SchedulerCache, phase: str) -> None:
    cache.update_pod(mk("a", node_name="n1"))
    assert cache.update_pod(mk("a", node_name="n1", phase=phase)) is True
    assert cpu_used(cache, "n1") == 0


def test_deleted_pod_frees_its_node(cache: SchedulerCache) -> None:
    cache.update_pod(mk("a", node_name="n1"))
    assert cache.delete_pod("default/a") is True
    assert cache.delete_pod("default/a") is False
    assert cpu_used(cache, "n1") == 0


def test_malformed_node_is_skipped_with_a_log_line(cache: SchedulerCache, caplog: pytest.LogCaptureFixture) -> None:
    bad = {"metadata": {"name": "n3"}, "status": {"allocatable": {"cpu": "lots"}}}
    with caplog.at_level(logging.WARNING, logger="vecsched.cache"):
        assert cache.set_node(bad) is None
    assert "n3" not in cache.table and "status.allocatable.cpu" in caplog.text
    assert "status.allocatable.cpu" in cache.skipped_nodes["n3"]
    # a node that turns malformed keeps its last readable state; fixed, it is read again
    info = cache.table.infos[cache.table.index["n2"]]
    cache.set_node({**node("n2"), "status": {"allocatable": {"cpu": "x1"}}})
    assert cache.table.infos[cache.table.index["n2"]] is info and "n2" in cache.skipped_nodes
    cache.set_node(node("n2"))
    assert "n2" in cache.table and "n2" not in cache.skipped_nodes


def test_heartbeat_does_not_rewrite_the_table(cache: SchedulerCache) -> None:
    gen = cache.table.generation
    assert cache.set_node(node("n1")) is None
    assert cache.table.generation == gen
    assert cache.set_node(node("n1", cpu="8")) is not None


def test_namespaces_labels(cache: SchedulerCache) -> None:
    cache.set_namespace({"metadata": {"name": "team-a", "labels": {"team": "a"}}})
    assert cache.namespaces.get("team-a") == {"team": "a"}
    cache.delete_namespace("team-a")
    assert cache.namespaces.get("team-a") is None
