"""PodGroups: the PodGroup reader, the members as the API has them, the members placed in
the table (upstream's assignedPodsByPG, following ``add_pod``/``remove_pod``), and the
per-group memory on a wall clock with go-cache's expiry rules."""

from __future__ import annotations

from typing import Any

import pytest

from scoring.objects import ObjectError, PodInfo, node_from_json, pod_from_json
from scoring.plugins.podgroups import POD_GROUP_LABEL, PodGroup, PodGroups, group_of, parse_time, podgroup_from_json
from scoring.table import NodeTable

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def make_pod(name: str, *, ns: str = "ns", group: str = "", gated: bool = False) -> PodInfo:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if group:
        meta["labels"] = {POD_GROUP_LABEL: group}
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}
    if gated:
        spec["schedulingGates"] = [{"name": "wait"}]
    return pod_from_json({"metadata": meta, "spec": spec})


def table_with(*names: str) -> NodeTable:
    table = NodeTable(capacity=2)
    for n in names:
        table.set_node(node_from_json({"metadata": {"name": n},
                                       "status": {"allocatable": {"cpu": "4", "pods": "32"}}}))
    return table


def test_podgroup_from_json_reads_the_spec() -> None:
    pg = podgroup_from_json({
        "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
        "metadata": {"name": "train", "namespace": "ml", "uid": "u-1", "creationTimestamp": "2023-11-14T22:13:20Z"},
        "spec": {"minMember": 3, "minResources": {"cpu": "1500m", "memory": "1Gi", "nvidia.com/gpu": "2"},
                 "scheduleTimeoutSeconds": 30},
    })
    # cpu in milli (1.5 -> 1500), memory in bytes (2^30), extended resources as counts.
    assert pg == PodGroup("ml", "train", 3, {"cpu": 1500, "memory": 1 << 30, "nvidia.com/gpu": 2}, 30, NOW, "u-1")
    assert pg.key == "ml/train"
    # Unset fields read as Go reads them: namespace "default", minMember 0, no minResources,
    # no timeout, creation time 0.
    assert podgroup_from_json({"metadata": {"name": "g"}}) == PodGroup("default", "g", 0, None, None, 0.0, "")


@pytest.mark.parametrize(
    ("obj", "ref", "field"),
    [
        ({"metadata": "x"}, "PodGroup", "metadata"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": []}, "PodGroup ns/g", "spec"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": -1}}, "PodGroup ns/g", "spec.minMember"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": "3"}}, "PodGroup ns/g", "spec.minMember"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": True}}, "PodGroup ns/g", "spec.minMember"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": 2**31}}, "PodGroup ns/g",
         "spec.minMember"),  # beyond int32
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"scheduleTimeoutSeconds": -5}}, "PodGroup ns/g",
         "spec.scheduleTimeoutSeconds"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minResources": {"cpu": "lots"}}}, "PodGroup ns/g",
         "spec.minResources.cpu"),
        ({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minResources": {"memory": "-1Gi"}}},
         "PodGroup ns/g", "spec.minResources.memory"),
    ],
)
def test_podgroup_from_json_names_the_bad_field(obj: dict[str, Any], ref: str, field: str) -> None:
    with pytest.raises(ObjectError) as err:
        podgroup_from_json(obj)
    assert (err.value.obj, err.value.field) == (ref, field)
    assert "\n" not in str(err.value)


def test_apply_keeps_the_groups_as_they_were_when_unreadable() -> None:
    groups = PodGroups()
    groups.apply({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": 2}})
    with pytest.raises(ObjectError):
        groups.apply({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": -2}})
    group = groups.group("ns/g")
    assert group is not None and group.min_member == 2
    groups.apply({"metadata": {"name": "g", "namespace": "ns"}, "spec": {"minMember": 4}})  # replaced
    group = groups.group("ns/g")
    assert group is not None and group.min_member == 4
    groups.delete("ns", "g")
    assert groups.group("ns/g") is None


def test_parse_time() -> None:
    assert parse_time("2023-11-14T22:13:20Z") == NOW
    assert parse_time("2023-11-14T23:13:20+01:00") == NOW
    assert [parse_time(v) for v in (None, "", "yesterday", 5)] == [None] * 4


def test_group_of() -> None:
    # upstream's GetPodGroupFullName: the pod's namespace and the label's value.
    assert group_of(make_pod("a", ns="ml", group="train")) == "ml/train"
    assert group_of(make_pod("a")) == ""


def test_members_as_the_api_has_them() -> None:
    groups = PodGroups()
    a, b, c = make_pod("a", group="g"), make_pod("b", group="g", gated=True), make_pod("c", group="h")
    for p in (a, b, c):
        groups.observe(p)
    assert groups.counts("ns/g") == (2, 1)  # a and b carry g's label; b is gated
    assert groups.member_keys("ns/g") == ["ns/a", "ns/b"]
    groups.observe(make_pod("b", group="g"))  # b's gate removed
    assert groups.counts("ns/g") == (2, 0)
    groups.observe(make_pod("b", group="h"))  # b's label now names h
    assert (groups.counts("ns/g"), groups.counts("ns/h")) == ((1, 0), (2, 0))
    groups.observe(make_pod("b"))  # label removed: in no group
    assert groups.member_keys("ns/h") == ["ns/c"]
    groups.forget("ns/a")  # deleted from the API
    assert groups.counts("ns/g") == (0, 0) and "ns/g" not in groups.members
    groups.forget("ns/never-seen")  # nothing to do
    # The same name in another namespace is another pod and another group.
    groups.observe(make_pod("c", ns="other", group="h"))
    assert groups.member_keys("ns/h") == ["ns/c"] and groups.member_keys("other/h") == ["other/c"]


def test_assigned_follows_the_table() -> None:
    table = table_with("n1", "n2")
    early = make_pod("early", group="g")
    table.add_pod(early, "n1")  # placed before the extension exists: counted when it is made
    groups = PodGroups.of(table)
    assert PodGroups.of(table) is groups  # one per table
    assert groups.assigned("ns/g") == 1
    late, plain = make_pod("late", group="g"), make_pod("plain")
    table.add_pod(late, "n2")  # assumed
    table.add_pod(plain, "n2")  # no group: not counted anywhere
    assert groups.assigned("ns/g") == 2 and groups.placed == {"ns/g": {"ns/early", "ns/late"}}
    table.add_pod(late, "n1")  # moved (placed again): still one member
    assert groups.assigned("ns/g") == 2
    table.remove_pod("ns/late")  # forgotten
    assert groups.assigned("ns/g") == 1
    table.remove_node("n1")  # its pods are set aside until the node returns
    assert groups.assigned("ns/g") == 0 and groups.placed == {}


def test_pending_members_are_those_on_no_node() -> None:
    table = table_with("n1")
    groups = PodGroups.of(table)
    pods = [make_pod(n, group="g") for n in ("c", "a", "b")]
    for p in pods:
        groups.observe(p)
    table.add_pod(pods[2], "n1")  # b is placed
    assert list(groups.pending_members("ns/g", table)) == ["ns/a", "ns/c"]  # sorted by key


def test_backoff_and_permitted_expire_as_go_cache_entries() -> None:
    now = [NOW]
    groups = PodGroups(clock=lambda: now[0])
    groups.back_off("ns/g", 0)  # upstream's BackoffPodGroup ignores a 0 backoff
    assert not groups.backed_off("ns/g")
    groups.back_off("ns/g", 10)
    now[0] = NOW + 5
    groups.back_off("ns/g", 10)  # go-cache Add: an entry that still holds is kept, not extended
    assert groups.backoff_until == {"ns/g": NOW + 10}
    now[0] = NOW + 10  # at the expiry itself the entry still holds (expired only when now > it)
    assert groups.backed_off("ns/g")
    now[0] = NOW + 10.001
    assert not groups.backed_off("ns/g") and groups.backoff_until == {}
    groups.back_off("ns/g", 10)  # expired: a new backoff starts from now
    assert groups.backoff_until == {"ns/g": NOW + 20.001}

    groups.permit("ns/g", 3)
    assert groups.permitted("ns/g") and not groups.permitted("ns/h")
    now[0] += 3.5
    assert not groups.permitted("ns/g") and groups.permitted_until == {}


def test_failure_memory() -> None:
    now = [NOW]
    groups = PodGroups(clock=lambda: now[0])
    groups.apply({"metadata": {"name": "g", "namespace": "ns", "creationTimestamp": "2023-11-14T22:13:20Z"}})
    pod = make_pod("a", group="g")
    assert groups.sort_time(pod, 5.0) == NOW  # the group's creation
    now[0] = NOW + 30
    groups.mark_failure("ns/g")
    now[0] = NOW + 40
    groups.mark_failure("ns/g")  # each failure moves it (upstream's Store)
    assert groups.sort_time(pod, 5.0) == NOW + 40
    groups.clear_failure("ns/g")
    groups.clear_failure("ns/g")  # clearing twice is harmless
    assert groups.sort_time(pod, 5.0) == NOW
