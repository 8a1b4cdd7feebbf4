"""A NodeTable update is all-or-nothing: a node or pod the table refuses leaves every
array, index and extension exactly as it was, whatever came before it."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.objects import HostPort, NodeInfo, ObjectError, PodInfo, Taint, node_from_json, pod_from_json
from scoring.table import NodeTable

_BIG = 2**70  # beyond int64: numpy would raise OverflowError writing it


def _node(name: str, *, cpu: int = 4, gpu: int = 0, zone: str = "a", taint: str = "", image: str = "") -> NodeInfo:
    alloc = {"cpu": str(cpu), "memory": "8Gi", "pods": "10"}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    return node_from_json({
        "metadata": {"name": name, "labels": {"zone": zone}},
        "spec": {"taints": [{"key": taint, "value": "v", "effect": "NoSchedule"}] if taint else []},
        "status": {"allocatable": alloc, "images": [{"names": [image], "sizeBytes": 10}] if image else []},
    })


def _pod(name: str, *, cpu: int = 100, gpu: int = 0, port: int = 0) -> PodInfo:
    req = {"cpu": f"{cpu}m"}
    if gpu:
        req["nvidia.com/gpu"] = str(gpu)
    c: dict[str, Any] = {"name": "c", "resources": {"requests": req}}
    if port:
        c["ports"] = [{"containerPort": port, "hostPort": port}]
    return pod_from_json({"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": [c]}})


# Each bad node differs from a good one in one field, every one new to the table (a new
# resource, label, taint and image), so that a write before the check would show.
_BAD_NODES = {
    "allocatable beyond int64": lambda n: dataclasses.replace(
        n, allocatable={**n.allocatable, "example.com/new": _BIG}, labels={"fresh": "x"}),
    "negative allocatable": lambda n: dataclasses.replace(n, allocatable={"cpu": -1, "example.com/new": 1}),
    "image size beyond int64": lambda n: dataclasses.replace(
        n, taints=(Taint("fresh", "", "NoSchedule"),), images=((("new:1",), 5), (("bad:1",), _BIG))),
    "label value not a string": lambda n: dataclasses.replace(
        n, allocatable={"example.com/new": 1}, labels={"zone": 7}),
    "too many taints": lambda n: dataclasses.replace(
        n, taints=tuple(Taint(f"t{i}", "", "NoSchedule") for i in range(32768))),
    "image name not a string": lambda n: dataclasses.replace(n, images=((("ok:1", 3), 5),)),
}
_BAD_NODE_FIELDS = {
    "allocatable beyond int64": "status.allocatable.example.com/new",
    "negative allocatable": "status.allocatable.cpu",
    "image size beyond int64": "status.images[1].sizeBytes",
    "label value not a string": "metadata.labels.zone",
    "too many taints": "spec.taints",
    "image name not a string": "status.images[0].names[1]",
}
_BAD_PODS = {
    "request beyond int64": lambda p: dataclasses.replace(p, requests={"cpu": 1, "example.com/new": _BIG}),
    "negative request": lambda p: dataclasses.replace(p, requests={"example.com/new": 1, "cpu": -5}),
    "priority beyond int32": lambda p: dataclasses.replace(p, priority=2**31),
    "host port out of range": lambda p: dataclasses.replace(p, host_ports=(HostPort("", "TCP", 8080),
                                                                            HostPort("", "TCP", 70000))),
    "scoring cpu beyond int64": lambda p: dataclasses.replace(p, nonzero_cpu=_BIG),
}
_BAD_POD_FIELDS = {
    "request beyond int64": "requests.example.com/new",
    "negative request": "requests.cpu",
    "priority beyond int32": "spec.priority",
    "host port out of range": "ports[1]",
    "scoring cpu beyond int64": "requests.cpu",
}


def _state(t: NodeTable) -> dict[str, Any]:
    """Every attribute of the table (arrays copied, the label index and extensions deep-copied)."""
    out: dict[str, Any] = {}
    for k, v in vars(t).items():
        if k in ("labels", "listeners", "_node_derived", "_vectors"):  # (the last two are memos, not state)
            continue
        if k == "pods":
            out[k] = {key: (p.pod, p.node, p.vector.tolist()) for key, p in v.items()}
            continue
        out[k] = v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)
    out["labels"] = {k: copy.deepcopy(v) for k, v in vars(t.labels).items() if k != "_table"}
    return out


def _assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for k in before:
        b, a = before[k], after[k]
        if isinstance(b, np.ndarray):
            assert b.shape == a.shape and np.array_equal(b, a), k
        elif k == "labels":
            assert b["values"] == a["values"] and b["_ids"] == a["_ids"], k
            assert b["codes"].keys() == a["codes"].keys(), k
            assert all(np.array_equal(b["codes"][c], a["codes"][c]) for c in b["codes"]), k
        else:
            assert b == a, k


def _table() -> NodeTable:
    t = NodeTable(capacity=2)
    t.set_node(_node("n1", gpu=2, taint="k", image="img:1"))
    t.set_node(_node("n2", zone="b"))
    t.add_pod(_pod("a", cpu=300, port=80), "n1")
    t.add_pod(_pod("b", gpu=1), "n1")
    t.add_pod(_pod("held"), "n9")  # held aside for a node not seen yet
    t.extensions["owner"] = {"n1": [1, 2]}
    return t


@pytest.mark.parametrize("case", list(_BAD_NODES), ids=list(_BAD_NODES))
@pytest.mark.parametrize("name", ["n1", "n3"], ids=["update", "add"])
def test_a_refused_node_changes_nothing(case: str, name: str) -> None:
    t = _table()
    before = _state(t)
    with pytest.raises(ObjectError) as err:
        t.set_node(_BAD_NODES[case](_node(name)))
    assert f"node {name}: {_BAD_NODE_FIELDS[case]}:" in str(err.value)
    _assert_same(before, _state(t))


@pytest.mark.parametrize("case", list(_BAD_PODS), ids=list(_BAD_PODS))
@pytest.mark.parametrize("key,node", [("a", "n2"), ("held", "n1"), ("new", "n1")],
                         ids=["placed-moves", "held-arrives", "new"])
def test_a_refused_pod_changes_nothing(case: str, key: str, node: str) -> None:
    t = _table()
    before = _state(t)
    with pytest.raises(ObjectError) as err:
        t.add_pod(_BAD_PODS[case](_pod(key)), node)
    assert f"pod ns/{key}: " in str(err.value) and _BAD_POD_FIELDS[case] in str(err.value)
    _assert_same(before, _state(t))
    # n1 still carries a (300m) + b (100m) = 400m and 2 pods; "held" is still held.
    row = t.index["n1"]
    assert t.requested[row, t.resource_index["cpu"]] == 400 and t.requested[row, t.resource_index["pods"]] == 2
    assert t.node_of("ns/held") is None and "ns/held" in t._orphans["n9"]


class _Counter:
    """A listener counting pods per row, failing on a pod requesting 700m CPU after counting it."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.count: dict[int, int] = {}

    def pod_added(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self.count[node] = self.count.get(node, 0) + 1
        if self.fail and pod.requests.get("cpu") == 700:
            raise RuntimeError("listener fault")

    def pod_removed(self, table: NodeTable, pod: PodInfo, node: int) -> None:
        self.count[node] -= 1

    def node_moved(self, table: NodeTable, src: int, dst: int) -> None:
        self.count[dst] = self.count.pop(src, 0)

    def node_set(self, table: NodeTable, node: int) -> None:
        pass


@pytest.mark.parametrize("earlier", [None, "n2"], ids=["first-placement", "moved-from-n2"])
def test_a_listener_fault_restores_the_earlier_placement(earlier: str | None) -> None:
    t = _table()
    first, second = _Counter(fail=False), _Counter(fail=True)
    if earlier is not None:
        t.add_pod(_pod("bad", cpu=50), earlier)
    t.listeners += [first, second]
    first.count = {r: len(t._node_pods[r]) for r in range(t.n)}
    second.count = dict(first.count)
    before = _state(t)
    counts = dict(first.count)
    with pytest.raises(RuntimeError, match="listener fault"):
        t.add_pod(_pod("bad", cpu=700), "n1")
    after = _state(t)
    # The rollback is itself a change: the generation moves on (snapshots taken before are stale).
    assert after.pop("generation") > before.pop("generation")
    _assert_same(before, after)
    # Both listeners see what they saw before: n1 2 pods (+0), n2 1 pod if "bad" sat there.
    assert first.count == counts and second.count == counts
    assert t.node_of("ns/bad") == earlier


_NAMES = st.sampled_from(["n1", "n2", "n3"])
_PODS = st.sampled_from(["a", "b", "c", "held"])
_OPS = st.one_of(  # (op, name, node cpu | pod's node, taint key | pod variant, bad case or "")
    st.tuples(st.just("node"), _NAMES, st.integers(1, 8), st.sampled_from(["", "k", "j"]),
              st.sampled_from(list(_BAD_NODES) + [""] * 3)),
    st.tuples(st.just("pod"), _PODS, st.sampled_from(["n1", "n2", "n3", "n9"]), st.sampled_from(["0", "1", "2"]),
              st.sampled_from(list(_BAD_PODS) + [""] * 3)),
    st.tuples(st.just("remove-node"), _NAMES, st.just(0), st.just(""), st.just("")),
    st.tuples(st.just("remove-pod"), _PODS, st.just(0), st.just(""), st.just("")),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_OPS, max_size=25))
def test_random_valid_and_invalid_updates(ops: list[tuple[str, str, Any, str, str]]) -> None:
    # After each refused update the table equals its state before it; valid ones go through.
    t = _table()
    for op, name, arg, extra, bad in ops:
        before = _state(t)
        if op == "node":
            info = _node(name, cpu=arg, gpu=arg % 3, taint=extra, image=f"img:{arg}")
            if bad:
                with pytest.raises(ObjectError):
                    t.set_node(_BAD_NODES[bad](info))
                _assert_same(before, _state(t))
            else:
                t.set_node(info)
        elif op == "pod":
            k = int(extra)
            pod = _pod(name, cpu=100 * (k + 1), gpu=k % 2, port=8000 + k if k else 0)
            if bad:
                with pytest.raises(ObjectError):
                    t.add_pod(_BAD_PODS[bad](pod), arg)
                _assert_same(before, _state(t))
            else:
                t.add_pod(pod, arg)
        elif op == "remove-node":
            t.remove_node(name)
        else:
            t.remove_pod(f"ns/{name}")
