"""How far from optimal is a strategy? An exact bound for small static workloads.

For a workload where no pod leaves, the best any scheduler could do is a
packing problem, solved here as a mixed-integer program with SciPy's HiGHS
(``scipy.optimize.milp``). Pods with the same request vector and the same
feasibility row are one class ``c`` with ``m_c`` pods, and ``y[c, n]`` is how
many of them go to node ``n``::

    maximise   sum_{c,n} v_c * y[c,n]          v_c = 1 (pods placed) or the class's
                                               request of one resource (allocated amount)
    subject to sum_n y[c,n] <= m_c             every pod at most once
               sum_c req[c,r] * y[c,n] <= alloc[n,r]   for every node n and resource r
                                               (pod slots included)
               y[c,n] = 0 where the profile's filters reject the class on the empty node
               y integer, 0 <= y[c,n] <= m_c

Only resource capacity couples pods; taints, selectors and affinity enter
through the feasibility matrix (the profile's filters run on the empty
cluster), and inter-pod constraints and pod groups are ignored (a group's
all-or-nothing placement can only lower the optimum) -- so this is an upper
bound on what the profile can reach, which is what a ratio needs. When
HiGHS stops at its time limit, the bound reported is its dual bound (still an
upper bound) and ``optimal`` is false.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from benchmarks.sim.model import SimPod
from benchmarks.sim.replay import build_table, demand
from scoring.framework import Profile
from scoring.objects import PODS, NodeInfo

__all__ = ["MAX_VARIABLES", "BoundResult", "pod_classes", "milp_bound"]

MAX_VARIABLES: Final = 200_000
"""Refuse larger models: beyond this HiGHS rarely proves anything within minutes on 2 cores."""


@dataclass(frozen=True, slots=True)
class BoundResult:
    objective: str
    """``pods`` or the resource whose allocated amount is maximised."""
    value: float | None
    """The upper bound (optimum, or the dual bound at the time limit); None when not computed."""
    optimal: bool
    best_found: float | None
    """The best feasible placement HiGHS found (a lower bound on the optimum)."""
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.objective, "value": self.value, "optimal": self.optimal,
                "best_found": self.best_found, "status": self.status}


def pod_classes(nodes: Sequence[NodeInfo], pods: Sequence[SimPod], profile: Profile, resources: Sequence[str]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(requests (C x R), feasibility (C x N), counts (C,)) of the workload's pod classes.

    Feasibility comes from ``profile``'s prefilters and filters on the empty
    cluster; a class is a distinct (request vector, feasibility row).
    """
    table = build_table(nodes)
    cache: dict[Any, np.ndarray] = {}
    classes: dict[tuple[bytes, bytes], int] = {}
    reqs: list[np.ndarray] = []
    feas: list[np.ndarray] = []
    counts: list[int] = []
    for sp in pods:
        pod = sp.pod
        req = np.array([demand(pod, r) for r in resources] + [1], np.int64)
        # Pods that differ only by name filter alike: key the filter run by what filters read.
        fkey = (tuple(sorted(pod.requests.items())), repr(pod.node_selector), repr(pod.affinity),
                repr(pod.tolerations), pod.node_name, pod.host_ports)
        row = cache.get(fkey)
        if row is None:
            row, _ = profile.run_filters(pod, table, {})
            cache[fkey] = row
        key = (req.tobytes(), row.tobytes())
        c = classes.get(key)
        if c is None:
            c = classes[key] = len(reqs)
            reqs.append(req)
            feas.append(row)
            counts.append(0)
        counts[c] += 1
    n = len(nodes)
    return (np.array(reqs, np.int64).reshape(len(reqs), len(resources) + 1),
            np.array(feas, np.bool_).reshape(len(feas), n), np.array(counts, np.int64))


def milp_bound(*, nodes: Sequence[NodeInfo], pods: Sequence[SimPod], profile: Profile, resources: Sequence[str],
               objective: str = "pods", time_limit: float = 60.0) -> BoundResult:
    """The most pods (``objective="pods"``) or the most of one resource that can be placed."""
    if any(sp.duration is not None for sp in pods):
        return BoundResult(objective, None, False, None, "skipped: the workload has departures (not static)")
    if objective != "pods" and objective not in resources:
        return BoundResult(objective, None, False, None, f"skipped: the cluster has no {objective}")
    if not pods or not nodes:
        return BoundResult(objective, 0.0, True, 0.0, "optimal (nothing to place)")
    req, feas, counts = pod_classes(nodes, pods, profile, resources)
    pairs = np.argwhere(feas)  # (class, node) for every feasible pair
    if len(pairs) > MAX_VARIABLES:
        return BoundResult(objective, None, False, None,
                           f"skipped: {len(pairs)} class x node variables (limit {MAX_VARIABLES}); use fewer pods or nodes")
    if len(pairs) == 0:
        return BoundResult(objective, 0.0, True, 0.0, "optimal (no pod fits any node)")
    cls, node = pairs[:, 0], pairs[:, 1]
    nvar = len(pairs)
    table = build_table(nodes)
    cols = [table.resource_index[r] if r in table.resource_index else -1 for r in resources]
    alloc = np.zeros((len(nodes), len(resources) + 1), np.float64)
    for j, col in enumerate(cols):
        if col >= 0:
            alloc[:, j] = table.allocatable[: len(nodes), col]
    alloc[:, -1] = table.allocatable[: len(nodes), table.resource_index[PODS]]
    value = np.ones(len(counts)) if objective == "pods" else req[:, list(resources).index(objective)].astype(np.float64)

    # Each class at most m_c times.
    count_rows = coo_matrix((np.ones(nvar), (cls, np.arange(nvar))), shape=(len(counts), nvar))
    # Per (node, resource) capacity; rows for resources a class requests (> 0).
    nres = len(resources) + 1
    r_idx, v_idx, data = [], [], []
    for r in range(nres):
        amount = req[cls, r].astype(np.float64)
        nz = np.flatnonzero(amount)
        r_idx.append(node[nz] * nres + r)
        v_idx.append(nz)
        data.append(amount[nz])
    cap_rows = coo_matrix((np.concatenate(data), (np.concatenate(r_idx), np.concatenate(v_idx))),
                          shape=(len(nodes) * nres, nvar))
    constraints = [LinearConstraint(count_rows.tocsr(), -np.inf, counts.astype(np.float64)),
                   LinearConstraint(cap_rows.tocsr(), -np.inf, alloc.reshape(-1))]
    res = milp(c=-value[cls], constraints=constraints, integrality=np.ones(nvar),
               bounds=Bounds(np.zeros(nvar), counts[cls].astype(np.float64)),
               options={"time_limit": float(time_limit), "disp": False})
    best = float(-res.fun) if res.x is not None else None
    dual = getattr(res, "mip_dual_bound", None)
    if res.status == 0:
        return BoundResult(objective, best, True, best, "optimal")
    upper = float(-dual) if dual is not None and np.isfinite(dual) else None
    return BoundResult(objective, upper, False, best, f"not proven optimal: {res.message}")
