"""The extension points: one small Protocol per point of kube-scheduler's framework that
vecsched runs, with the result types they exchange. ``scoring.framework`` assembles
them into a profile and re-exports every name here.

A pod's cycle visits them in upstream's order (``pkg/scheduler/framework/interface.go``):
QueueSort orders the queue; PreFilter, then Filter over every node at once; PostFilter
when no node fits (DefaultPreemption, Coscheduling's group rejection); Score and its
NormalizeScore; Reserve (node-local claims, annotations); Permit (allow, reject, or
wait with a timeout -- a waiting pod stays assumed and holds its node); then the
binding, and Unreserve in reverse order of Reserve when the pod is rejected at Permit,
times out there, or its binding fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from scoring.objects import PodInfo
from scoring.table import BoolArray, IntArray, NodeTable

if TYPE_CHECKING:
    from scoring.framework import Profile

__all__ = [
    "CycleState",
    "PREFILTER_REJECTION",
    "SKIPPED_SCORES",
    "ALL_CANDIDATES",
    "Reason",
    "PluginError",
    "Plugin",
    "NodeSubset",
    "PreFilterPlugin",
    "FilterPlugin",
    "ScorePlugin",
    "ScoreExtensions",
    "ReservePlugin",
    "UnreservePlugin",
    "QueueSortPlugin",
    "PERMIT_SUCCESS",
    "PERMIT_WAIT",
    "PERMIT_REJECT",
    "MAX_PERMIT_TIMEOUT_SECONDS",
    "PermitResult",
    "WaitingPod",
    "WaitingPods",
    "NO_WAITING_PODS",
    "PermitPlugin",
    "Remaining",
    "DryRunFilter",
    "NodeOnlyFilter",
    "PostFilterResult",
    "PostFilterPlugin",
]


CycleState = dict[str, Any]
"""Scratch space shared by one pod's plugins during one decision."""
PREFILTER_REJECTION: Final = "framework/prefilter-rejection"
"""CycleState key: the message of the PreFilter plugin that rejected the pod."""
SKIPPED_SCORES: Final = "framework/skipped-scores"
"""CycleState key: names of the score plugins that skipped (added nothing) this cycle."""
ALL_CANDIDATES: Final = "framework/all-candidates"
"""CycleState key: set (by ``explain``) to make PostFilter plugins consider every node
instead of upstream's sample of candidates."""


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the nodes in ``nodes`` (a mask over ``[:n]``) cannot take the pod.

    ``unresolvable`` marks reasons that preemption cannot fix (upstream's
    UnschedulableAndUnresolvable), which the extender reports separately.
    """

    message: str
    nodes: BoolArray
    unresolvable: bool = False


class PluginError(RuntimeError):
    """A plugin broke its contract (e.g. a score outside 0..100); names the plugin."""


class Plugin(Protocol):
    """Every plugin has a name: the one used by the registry and the config."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class NodeSubset:
    """A PreFilter result that limits the pod to the named nodes (upstream's
    PreFilterResult.NodeNames); other nodes are rejected before any filter runs."""

    names: frozenset[str]


@runtime_checkable
class PreFilterPlugin(Protocol):
    """Checks the pod once before any node is looked at.

    Returns a message that rejects the pod on every node (upstream's
    UnschedulableAndUnresolvable), a NodeSubset that limits the nodes to
    consider, or None to go on. May put work in ``state`` for later
    extension points.
    """

    @property
    def name(self) -> str: ...

    def prefilter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> str | NodeSubset | None: ...


@runtime_checkable
class FilterPlugin(Protocol):
    """Decides feasibility for all nodes at once.

    Returns the reasons that reject nodes (an empty sequence or None when
    every node passes). A node is feasible when no reason's mask holds it.
    """

    @property
    def name(self) -> str: ...

    def filter(self, pod: PodInfo, table: NodeTable, state: CycleState) -> Sequence[Reason] | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """Scores the feasible nodes ``nodes`` (row indices into the table).

    Returns an int64 array aligned with ``nodes``, or None to skip (upstream's
    PreScore Skip: the plugin then adds nothing to any node's total).
    Without ``normalize`` the scores must already be in 0..MAX_NODE_SCORE.
    """

    @property
    def name(self) -> str: ...

    def score(self, pod: PodInfo, table: NodeTable, nodes: npt.NDArray[np.intp], state: CycleState) -> IntArray | None: ...


@runtime_checkable
class ScoreExtensions(Protocol):
    """Maps a score plugin's raw scores over the feasible nodes into 0..MAX_NODE_SCORE."""

    def normalize(self, scores: IntArray, state: CycleState) -> IntArray: ...


@runtime_checkable
class ReservePlugin(Protocol):
    """Claims node-local resources for the chosen node (e.g. which GPUs) before the pod
    is assumed. Returns annotations to record on the pod -- the live scheduler patches
    them onto the Pod before binding, so that a device plugin can honour the choice --
    or None when there is nothing to record. Must not change the table."""

    @property
    def name(self) -> str: ...

    def reserve(self, pod: PodInfo, table: NodeTable, row: int, state: CycleState) -> Mapping[str, str] | None: ...


@runtime_checkable
class UnreservePlugin(Protocol):
    """Undoes what Reserve did for a pod that will not be bound after all (rejected at Permit,
    timed out waiting, or its binding failed): upstream's Unreserve, called in the reverse
    order of Reserve. Must not change the table (the caller forgets the assumed pod)."""

    @property
    def name(self) -> str: ...

    def unreserve(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState, waiting: WaitingPods) -> None: ...


@runtime_checkable
class QueueSortPlugin(Protocol):
    """Orders the scheduling queue (upstream's QueueSort ``Less``, as a sort key: smaller
    goes first). ``timestamp`` is when the pod last entered the queue and ``first_seen``
    when it first did, both in wall-clock seconds. One per profile, the same in all."""

    @property
    def name(self) -> str: ...

    def queue_key(self, pod: PodInfo, table: NodeTable, *, timestamp: float, first_seen: float) -> tuple[Any, ...]: ...


PERMIT_SUCCESS: Final = "Success"
PERMIT_WAIT: Final = "Wait"
PERMIT_REJECT: Final = "Unschedulable"
MAX_PERMIT_TIMEOUT_SECONDS: Final = 15 * 60.0
"""Upstream's maxTimeout: no pod waits at Permit longer than 15 minutes, whatever a plugin asks."""


@dataclass(frozen=True, slots=True)
class PermitResult:
    """A Permit verdict: ``status`` is PERMIT_SUCCESS, PERMIT_WAIT (``timeout`` seconds at
    most) or PERMIT_REJECT (``message`` says why)."""

    status: str
    message: str = ""
    timeout: float = 0.0


class WaitingPod(Protocol):
    """A pod assumed on its node and held at Permit until every plugin that asked it to
    wait allows it, or one rejects it (upstream's WaitingPod)."""

    @property
    def pod(self) -> PodInfo: ...

    @property
    def node(self) -> str: ...

    def allow(self, plugin: str) -> None: ...

    def reject(self, plugin: str, message: str) -> None: ...


class WaitingPods(Protocol):
    """The profile's waiting pods, as Permit, PostFilter and Unreserve plugins see them
    (upstream's IterateOverWaitingPods / GetWaitingPod). Allowing or rejecting one takes
    effect when the caller next runs: never inside the plugin's call."""

    def __iter__(self) -> Iterator[WaitingPod]: ...

    def get(self, key: str) -> WaitingPod | None: ...


class _NoWaitingPods:
    """No pod waits (``explain``, the simulator, a scheduler without Permit plugins)."""

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(())

    def get(self, key: str) -> WaitingPod | None:
        return None


NO_WAITING_PODS: Final[WaitingPods] = _NoWaitingPods()


@runtime_checkable
class PermitPlugin(Protocol):
    """Decides, once the pod is assumed on ``node``, whether it may be bound now, must wait,
    or is rejected (upstream's Permit). A waiting pod keeps its capacity until allowed."""

    @property
    def name(self) -> str: ...

    def permit(self, pod: PodInfo, table: NodeTable, node: str, state: CycleState,
               waiting: WaitingPods) -> PermitResult: ...


@dataclass(frozen=True, slots=True)
class Remaining:
    """Nodes ``rows`` as they would be with some of their pods gone (the preemption dry
    run): ``requested`` stands for ``table.requested[rows]`` and ``port_counts`` for
    ``table.port_counts[rows]``; the table itself is not changed."""

    rows: npt.NDArray[np.intp]
    requested: IntArray
    port_counts: npt.NDArray[np.int32]


@runtime_checkable
class DryRunFilter(Protocol):
    """A filter that sees a node's pods only through the table's summed columns
    (requested resources, pod count, used host ports), so that it can judge nodes as
    they would be without some pods, for many nodes at once and without changing the
    table. Returns reasons whose masks are aligned with ``remaining.rows``."""

    @property
    def name(self) -> str: ...

    def filter_remaining(self, pod: PodInfo, table: NodeTable, state: CycleState,
                         remaining: Remaining) -> Sequence[Reason] | None: ...


class NodeOnlyFilter:
    """Mixed into a filter whose verdict depends on the node alone, never on the pods
    placed there (taints, node affinity, ...): the preemption dry run keeps its verdict
    instead of running it again. A filter that can say so per pod defines
    ``depends_on_pods`` itself."""

    def depends_on_pods(self, pod: PodInfo, table: NodeTable, state: CycleState) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    """What a PostFilter plugin concluded when no node fits (upstream's PostFilterResult
    with its Status). ``message`` is appended to the FailedScheduling text (empty when
    the plugin succeeded); ``nominated_node`` is the node to nominate the pod to, ``""``
    to clear its nomination, or None to leave it as it is; ``detail`` is the plugin's
    own account (for DefaultPreemption, its ``Preemption`` plan)."""

    plugin: str
    success: bool
    message: str
    nominated_node: str | None = None
    detail: Any = None


@runtime_checkable
class PostFilterPlugin(Protocol):
    """Runs when no node fits (upstream's PostFilter), with the filters' verdict:
    the feasibility mask (all False) and the reasons. Must leave the table as it was."""

    @property
    def name(self) -> str: ...

    def postfilter(self, pod: PodInfo, table: NodeTable, state: CycleState, reasons: Sequence[Reason],
                   profile: Profile) -> PostFilterResult: ...
