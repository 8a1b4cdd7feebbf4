"""``vecsched explain --what-if``: which single change would let a pending pod fit.

When no node takes the pod, the operator's next question is what to change. Each
answer here is one change, to the pod or to the cluster, tried on the node table with
the profile's own PreFilter and Filter plugins (and, where pods are placed, its Score
plugins), never by re-reading a plugin's rule; every trial is undone, so the table is
left as it was:

1. **requests** -- for each resource the pod requests, the largest amount no greater
   than today's (the other requests unchanged) with which the pod passes the filters on
   at least one node, and those nodes. Feasibility only grows as one request shrinks, so
   a binary search over the distinct amounts nodes have free (allocatable minus
   requested) finds it; the smallest amount tried is 1 unit (1m of CPU, one byte),
   since a request of zero is no request. None when lowering it alone never helps.
2. **taints** -- each distinct taint (key, value, effect) on a node such that a
   toleration of exactly it (``operator: Equal``) lets the pod fit somewhere, with those
   nodes. A taint the pod already tolerates never qualifies: tolerating it again
   changes nothing.
3. **nodes** -- for each distinct shape of existing node (allocatable, labels other than
   per-node ones, taints other than the node lifecycle's condition taints of
   ``k8s.io/api/core/v1/well_known_taints.go``), whether an empty new node of that
   shape lets the pod fit, and how many it takes to place the pod and its pending
   siblings (pods with the same controller owner and the same requests): they are
   placed one by one with the profile, on whichever node it picks (existing or new), and
   a new node is added whenever none fits, up to ``MAX_NEW_NODES`` of them. A new node carries the
   shape's labels, with ``kubernetes.io/hostname`` (and any label whose value is the
   example node's name) set to its own name, no images and no pods, and is schedulable
   even when the example is cordoned. Shapes are tried most common first, at most
   ``MAX_SHAPES`` of them.
4. **preemption** -- DefaultPreemption's plan as the pod's decision made it: the node
   and the victims, or why there is none; or that the profile does not preempt.

When the pod already fits, the answer says so and nothing else is computed. A PodGroup
backoff that the pod's own decision just recorded (Coscheduling's PostFilter) is set
aside while the changes are tried, so that PreFilter judges the change rather than the
failure it answers; the groups' memory is restored afterwards.

The JSON, the value of ``"whatIf"`` in ``vecsched explain -o json --what-if``
(quantities as Kubernetes quantities, ``3500m``, ``6Gi``; node lists sorted by name)::

    {"fits": false,                       # true: the pod fits as it is ...
     "node": null,                        # ... on this node, and every key below is null
     "requests": [{"resource": "cpu", "requested": "4", "maxFitting": "3500m",
                   "nodes": ["general-a"]}],       # maxFitting null, nodes [] when none
     "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule",
                 "toleration": {"key": "dedicated", "operator": "Equal", "value": "gpu",
                                "effect": "NoSchedule"},
                 "nodes": ["gpu-a"]}],             # only the taints that help
     "nodes": [{"like": "general-a", "existing": 40,
                "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                "labels": {"topology.kubernetes.io/zone": "a"},
                "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                "fits": true,                      # the pod fits an empty node of the shape
                "pods": 3,                         # the pod and its pending siblings
                "placed": 3,                       # of which placed, new nodes included
                "nodesNeeded": 2,                  # new nodes added (null when fits is false)
                "capped": false}],                 # true: stopped at MAX_NEW_NODES new nodes
     "nodeShapesOmitted": 0,                       # shapes beyond MAX_SHAPES, not tried
     "preemption": {"enabled": true, "node": "n2", "victims": ["shop/b1"],
                    "message": ""}}                # message: why no node, when node is null

``placed`` below ``pods`` with ``capped`` false means a sibling fits no new node of the
shape either (e.g. a topology spread constraint that more nodes of one zone cannot meet).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from scheduler.explain import align_columns
from scoring.framework import Decision, Profile
from scoring.objects import CPU, EPHEMERAL_STORAGE, MEMORY, NodeInfo, PodInfo, Taint, node_from_json
from scoring.plugins.default_preemption import NAME as DEFAULT_PREEMPTION, Preemption
from scoring.plugins.podgroups import PodGroups, group_of
from scoring.quantity import format_bytes, format_milli
from scoring.table import BoolArray, NodeTable

__all__ = ["MAX_NEW_NODES", "MAX_SHAPES", "what_if", "render_what_if", "quantity", "siblings"]

MAX_NEW_NODES: Final = 1000
"""New nodes of one shape added before the count stops and says it is capped: far more
than a node pool grows by in one step, few enough that the count takes seconds."""
MAX_SHAPES: Final = 32
"""Node shapes tried, most common first: each costs a placement run of the pod and its
siblings, and clusters with more shapes than this are rare (an empirical guess)."""
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
CONDITION_TAINTS: Final = frozenset({
    "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/memory-pressure", "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/network-unavailable", "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/out-of-service", "node.cloudprovider.kubernetes.io/uninitialized",
    "node.cloudprovider.kubernetes.io/shutdown",
})
"""Taints the node lifecycle puts on and takes off a node as its conditions change
(k8s.io/api/core/v1/well_known_taints.go): a healthy new node does not carry them."""
_SHOWN_NODES: Final = 5
"""Node names a table row lists before ``+N more`` (the JSON has them all)."""


def quantity(resource: str, amount: int) -> str:
    """``amount`` of ``resource`` as a Kubernetes quantity: millicores for CPU (``3500m``,
    ``4``); for byte resources the largest binary suffix that divides exactly (``6Gi``),
    else the largest decimal one (``1500M``); other resources as integers."""
    if resource == CPU:
        return format_milli(amount)
    if resource in (MEMORY, EPHEMERAL_STORAGE) or resource.startswith("hugepages-"):
        shown = format_bytes(amount)
        if shown != str(amount) or amount == 0:
            return shown
        for suffix, factor in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
            if amount % factor == 0:
                return f"{amount // factor}{suffix}"
    return str(amount)


def _controller(pod: PodInfo) -> tuple[str, ...] | None:
    """The pod's controller ownerReference (``controller: true``) as a key, or None."""
    meta = pod.raw.get("metadata") if isinstance(pod.raw, Mapping) else None
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return (pod.namespace, str(ref.get("kind") or ""), str(ref.get("name") or ""), str(ref.get("uid") or ""))
    return None


def siblings(pod: PodInfo, pending: Sequence[PodInfo]) -> list[PodInfo]:
    """The pending pods with ``pod``'s controller owner and requests, ``pod`` excluded, by
    key: the replicas a new node must make room for as well. None without a controller."""
    owner = _controller(pod)
    if owner is None:
        return []
    return sorted((p for p in pending if p.key != pod.key and _controller(p) == owner and p.requests == pod.requests),
                  key=lambda p: p.key)


def _feasible(profile: Profile, pod: PodInfo, table: NodeTable) -> BoolArray:
    """The profile's PreFilter and Filter verdict over ``table``'s nodes."""
    feasible, _ = profile.run_filters(pod, table, {})
    return feasible


def _names(table: NodeTable, feasible: BoolArray) -> list[str]:
    return sorted(table.names[int(i)] for i in np.flatnonzero(feasible))


# ---- 1. requests ------------------------------------------------------------------------------------


def _request(profile: Profile, pod: PodInfo, table: NodeTable, resource: str, amount: int) -> dict[str, Any]:
    """The largest amount <= ``amount`` of ``resource`` that fits somewhere (binary search
    over the nodes' distinct free amounts below it), and where."""
    col = table.resource_index.get(resource)
    n = table.n
    free = (table.allocatable[:n, col] - table.requested[:n, col]) if col is not None else np.zeros(n, np.int64)
    candidates = np.unique(free[(free >= 1) & (free < amount)])
    best: tuple[int, BoolArray] | None = None
    lo, hi = 0, len(candidates) - 1
    while lo <= hi:  # feasible(candidates[i]) holds for every i up to some index: find the last
        mid = (lo + hi) // 2
        v = int(candidates[mid])
        feasible = _feasible(profile, replace(pod, requests={**pod.requests, resource: v}), table)
        if feasible.any():
            best, lo = (v, feasible), mid + 1
        else:
            hi = mid - 1
    return {"resource": resource, "requested": quantity(resource, amount),
            "maxFitting": None if best is None else quantity(resource, best[0]),
            "nodes": [] if best is None else _names(table, best[1])}


# ---- 2. taints --------------------------------------------------------------------------------------


def _taint_json(t: Taint) -> dict[str, str]:
    return {"key": t.key, "value": t.value, "effect": t.effect}


def _tolerating(pod: PodInfo, t: Taint) -> PodInfo:
    """``pod`` with one more toleration: of exactly ``t``."""
    toleration = {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
    raw = dict(pod.raw)
    spec = dict(raw.get("spec") or {})
    spec["tolerations"] = [*(spec.get("tolerations") or []), toleration]
    raw["spec"] = spec
    return replace(pod, tolerations=(*pod.tolerations, toleration), raw=raw)


def _taints(profile: Profile, pod: PodInfo, table: NodeTable) -> list[dict[str, Any]]:
    taints = sorted({t for info in table.infos[: table.n] for t in info.taints},
                    key=lambda t: (t.key, t.value, t.effect))
    out = []
    for t in taints:
        tolerant = _tolerating(pod, t)
        feasible = _feasible(profile, tolerant, table)
        if feasible.any():
            out.append({**_taint_json(t), "toleration": dict(tolerant.tolerations[-1]), "nodes": _names(table, feasible)})
    return out


# ---- 3. new nodes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """A kind of node: what an empty new node copies from an existing one."""

    allocatable: tuple[tuple[str, int], ...]
    labels: tuple[tuple[str, str], ...]
    taints: tuple[Taint, ...]


def _per_node(info: NodeInfo, key: str) -> bool:
    return key == HOSTNAME_LABEL or info.labels[key] == info.name


def _shape_of(info: NodeInfo) -> _Shape:
    return _Shape(tuple(sorted(info.allocatable.items())),
                  tuple(sorted((k, v) for k, v in info.labels.items() if not _per_node(info, k))),
                  tuple(t for t in info.taints if t.key not in CONDITION_TAINTS))


def _new_node(shape: _Shape, example: NodeInfo, name: str) -> NodeInfo:
    """An empty node of ``shape`` named ``name``, read by the Node reader as any node is."""
    labels = dict(shape.labels)
    labels.update({k: name for k in example.labels if _per_node(example, k)})
    status: dict[str, Any] = {"allocatable": {r: quantity(r, a) for r, a in shape.allocatable}}
    example_status = example.raw.get("status") if isinstance(example.raw, Mapping) else None
    if isinstance(example_status, Mapping) and isinstance(example_status.get("capacity"), Mapping):
        status["capacity"] = dict(example_status["capacity"])
    spec = {"taints": [{k: v for k, v in _taint_json(t).items() if v} for t in shape.taints]} if shape.taints else {}
    return node_from_json({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                           "spec": spec, "status": status})


def _fresh_names(table: NodeTable, prefix: str) -> Iterator[str]:
    i = 0
    while True:
        i += 1
        name = f"{prefix}-what-if-{i}"
        if name not in table.index:
            yield name


def _place(profile: Profile, pods: Sequence[PodInfo], table: NodeTable, shape: _Shape,
           example: NodeInfo) -> tuple[int, int, bool]:
    """Place ``pods`` one by one with the profile, adding an empty node of ``shape``
    whenever one fits nowhere; stop when one does not fit a new node either or
    ``MAX_NEW_NODES`` were added. Returns (pods placed, nodes added, capped); every pod
    and node is taken off again."""
    names = _fresh_names(table, example.name)
    added: list[str] = []
    placed: list[str] = []
    capped = False
    try:
        for pod in pods:
            d = profile.schedule(pod, table, post_filter=False)
            if d.node is None:
                if len(added) == MAX_NEW_NODES:
                    capped = True
                    break
                name = next(names)
                table.set_node(_new_node(shape, example, name))
                d = profile.schedule(pod, table, post_filter=False)
                if d.node is None:
                    table.remove_node(name)  # a node that does not help is not needed
                    break
                added.append(name)
            table.add_pod(d.assumed_pod(), d.node)
            placed.append(pod.key)
    finally:
        for key in reversed(placed):
            table.remove_pod(key)
        for name in reversed(added):
            table.remove_node(name)
    return len(placed), len(added), capped


def _nodes(profile: Profile, pod: PodInfo, table: NodeTable,
           pending: Sequence[PodInfo]) -> tuple[list[dict[str, Any]], int]:
    shapes: dict[_Shape, list[NodeInfo]] = {}
    for info in table.infos[: table.n]:
        shapes.setdefault(_shape_of(info), []).append(info)
    ranked = sorted(shapes.items(), key=lambda kv: (-len(kv[1]), kv[1][0].name))
    pods = [pod, *siblings(pod, pending)]
    out = []
    for shape, infos in ranked[:MAX_SHAPES]:
        example = infos[0]
        placed, added, capped = _place(profile, pods, table, shape, example)
        fits = placed > 0
        out.append({"like": example.name, "existing": len(infos),
                    "allocatable": {r: quantity(r, a) for r, a in shape.allocatable},
                    "labels": dict(shape.labels), "taints": [_taint_json(t) for t in shape.taints],
                    "fits": fits, "pods": len(pods), "placed": placed,
                    "nodesNeeded": added if fits else None, "capped": capped})
    return out, max(0, len(ranked) - MAX_SHAPES)


# ---- 4. preemption ----------------------------------------------------------------------------------


def _preemption(profile: Profile, decision: Decision) -> dict[str, Any]:
    if not any(p.name == DEFAULT_PREEMPTION for p in profile.postfilters):
        return {"enabled": False, "node": None, "victims": [],
                "message": f"profile {profile.name} does not preempt ({DEFAULT_PREEMPTION} is not enabled)"}
    mine = decision.post_filters.get(DEFAULT_PREEMPTION)
    plan = mine.detail if mine is not None else None
    if not isinstance(plan, Preemption):
        return {"enabled": True, "node": None, "victims": [], "message": "preemption did not run"}
    return {"enabled": True, "node": plan.node, "victims": [p.key for p in plan.victims], "message": plan.message}


# ---- the answer -------------------------------------------------------------------------------------


@contextmanager
def _group_memory_set_aside(table: NodeTable, pod: PodInfo) -> Iterator[None]:
    """The PodGroups' backoffs, permits and failure times as they are now, restored on
    exit; meanwhile the pod's group is not backed off."""
    groups = table.extensions.get(PodGroups.KEY)
    if not isinstance(groups, PodGroups):
        yield
        return
    saved = (dict(groups.backoff_until), dict(groups.permitted_until), dict(groups.last_failure))
    groups.backoff_until.pop(group_of(pod), None)
    try:
        yield
    finally:
        for live, kept in zip((groups.backoff_until, groups.permitted_until, groups.last_failure), saved):
            live.clear()
            live.update(kept)


def what_if(*, table: NodeTable, pod: PodInfo, profile: Profile, pending: Sequence[PodInfo],
            decision: Decision) -> dict[str, Any]:
    """The ``"whatIf"`` JSON for ``pod`` (shape in the module docstring): each single change
    that would let it fit, tried with ``profile`` on ``table`` and undone. ``decision`` is
    the pod's own decision; ``pending`` the other pending pods (for its siblings)."""
    if decision.node is not None:
        return {"fits": True, "node": decision.node, "requests": None, "taints": None, "nodes": None,
                "nodeShapesOmitted": None, "preemption": None}
    with _group_memory_set_aside(table, pod):
        requests = [_request(profile, pod, table, r, a) for r, a in sorted(pod.requests.items()) if a > 0]
        taints = _taints(profile, pod, table)
        nodes, omitted = _nodes(profile, pod, table, pending)
    return {"fits": False, "node": None, "requests": requests, "taints": taints, "nodes": nodes,
            "nodeShapesOmitted": omitted, "preemption": _preemption(profile, decision)}


# ---- the table --------------------------------------------------------------------------------------


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NODES])
    return shown + (f" (+{len(names) - _SHOWN_NODES} more)" if len(names) > _SHOWN_NODES else "")


def _taint_text(t: Mapping[str, str]) -> str:
    return f"{t['key']}={t['value']}:{t['effect']}" if t["value"] else f"{t['key']}:{t['effect']}"


def render_what_if(doc: Mapping[str, Any]) -> list[str]:
    """The ``"whatIf"`` JSON as lines for people: one block per question."""
    if doc["fits"]:
        return [f"WHAT IF  the pod fits as it is (on {doc['node']}): nothing to change"]
    lines = ["WHAT IF  each change below alone would let the pod fit", ""]
    rows = [["REQUEST", "NOW", "AT MOST", "FITS ON"]]
    for r in doc["requests"]:
        rows.append([r["resource"], r["requested"], r["maxFitting"] or "-",
                     _listed(r["nodes"]) if r["nodes"] else "(lowering it alone does not help)"])
    lines += align_columns(rows) if len(rows) > 1 else ["REQUEST  the pod requests no resources"]
    lines.append("")
    if doc["taints"]:
        lines += align_columns([["TOLERATE", "FITS ON"], *([_taint_text(t), _listed(t["nodes"])] for t in doc["taints"])])
    else:
        lines.append("TOLERATE  no single toleration helps")
    lines.append("")
    # The table shows what tells the shapes apart: allocatable amounts other than zero, and the
    # labels not every shape carries alike (the JSON has them all).
    # One shape: nothing to tell apart, so no labels.
    shared = set.intersection(*(set(s["labels"].items()) for s in doc["nodes"])) if doc["nodes"] else set()
    rows = [["NEW NODE LIKE", "EXISTING", "FITS", "NODES NEEDED", "PODS PLACED", "ALLOCATABLE", "TAINTS", "LABELS"]]
    for s in doc["nodes"]:
        needed = "-" if s["nodesNeeded"] is None else f"{s['nodesNeeded']}{'+ (capped)' if s['capped'] else ''}"
        rows.append([s["like"], str(s["existing"]), "yes" if s["fits"] else "no", needed,
                     f"{s['placed']}/{s['pods']}",
                     ",".join(f"{k}={v}" for k, v in s["allocatable"].items() if v != "0"),
                     ",".join(_taint_text(t) for t in s["taints"]) or "-",
                     ",".join(f"{k}={v}" for k, v in s["labels"].items() if (k, v) not in shared) or "-"])
    lines += align_columns(rows) if len(rows) > 1 else ["NEW NODE  the cluster has no nodes to copy"]
    if doc["nodeShapesOmitted"]:
        lines.append(f"({doc['nodeShapesOmitted']} less common node shapes not tried)")
    lines.append("")
    p = doc["preemption"]
    if p["node"]:
        lines.append(f"PREEMPT  nominate {p['node']}, evicting {', '.join(p['victims']) or '(none)'}")
    else:
        lines.append(f"PREEMPT  {p['message']}")
    return lines
