"""``kubectl vecsched``: vecsched's answers to "why is my pod not running?" as a kubectl plugin.

kubectl runs any executable named ``kubectl-<name>`` on ``PATH`` for ``kubectl <name> ...``
and passes it the remaining arguments -- and nothing else: no connection, no credentials,
not even the ``--kubeconfig`` it was given before the plugin's name. So the plugin finds the
cluster itself, with the scheduler's own connection code (``scheduler.kube.client``):
``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``, honouring ``--context``, and
its output and exit codes follow kubectl's (column-aligned tables, ``-o json``, one ``error:``
line on stderr).

``pending``: a pending pod of vecsched's carries its last verdict in the ``PodScheduled=False``
condition that the scheduler writes with every failed attempt (``scheduler.kube.events``), so
listing pending pods -- in pages, as kubectl lists -- and grouping them by that condition's
message shows at a glance which reasons hold how many pods back. ``explain``
(``scheduler.kubectl_explain``) and ``top`` (``scheduler.kubectl_top``) live in modules of their
own, imported only when asked for, so that ``pending`` starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NoReturn

from scheduler.durations import human_duration
from scheduler.kube.client import CHUNK_SIZE, ClientSettings, KubeClient, connect, default_namespace
from scheduler.kube.errors import KubeError

__all__ = [
    "PendingPod",
    "pending_pod",
    "group_by_reason",
    "render_table",
    "render_json",
    "list_pods",
    "main",
    "Parser",
    "UsageError",
    "columns",
]

COMMANDS: Final = ("pending", "explain", "top")
_MODULES: Final = {"explain": "scheduler.kubectl_explain", "top": "scheduler.kubectl_top"}
"""Commands in modules of their own; each has ``parser() -> argparse.ArgumentParser`` (a
``Parser``) and ``async run(args) -> int``."""
DEFAULT_SCHEDULER: Final = "vecsched"
SCHEDULING_ATTEMPT_REASONS: Final = frozenset({"Unschedulable", "SchedulerError"})
"""PodScheduled=False reasons that a scheduling attempt writes (upstream's ``v1.PodReason*``)."""
GATED: Final = "SchedulingGated"
NOT_ATTEMPTED: Final = "(not attempted yet)"
NONE: Final = "<none>"
_TIE_RANK: Final = {NOT_ATTEMPTED: 1, GATED: 2}

# kubectl's table writer: text/tabwriter with minwidth 6 and padding 3 (printers.GetNewTabWriter).
_MIN_WIDTH: Final = 6
_PADDING: Final = 3


@dataclass(frozen=True, slots=True)
class PendingPod:
    """One pending pod and why it waits."""

    namespace: str
    name: str
    reason: str
    """One line: the PodScheduled=False message, ``SchedulingGated`` or ``(not attempted yet)``."""
    message: str
    """The whole PodScheduled=False message, the scheduling gates of a gated pod, or ``""``."""
    nominated_node: str | None
    age_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "reason": self.reason, "message": self.message,
                "nominatedNode": self.nominated_node, "age_seconds": self.age_seconds}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _created(pod: Mapping[str, Any]) -> float | None:
    stamp = (pod.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pending_pod(pod: Mapping[str, Any], *, scheduler_names: Iterable[str], now: float) -> PendingPod | None:
    """The pod as a ``PendingPod`` when it waits for one of ``scheduler_names``: no
    ``spec.nodeName``, phase Pending, not being deleted; None otherwise."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if spec.get("nodeName") or status.get("phase") != "Pending" or meta.get("deletionTimestamp"):
        return None
    if spec.get("schedulerName", "default-scheduler") not in set(scheduler_names):
        return None
    gates = [str(g.get("name", "")) for g in spec.get("schedulingGates") or [] if isinstance(g, Mapping)]
    condition = next((c for c in status.get("conditions") or []
                      if isinstance(c, Mapping) and c.get("type") == "PodScheduled"), {})
    if gates:
        reason, message = GATED, "waiting for scheduling gates: " + ", ".join(gates)
    elif condition.get("status") == "False" and condition.get("reason") in SCHEDULING_ATTEMPT_REASONS:
        message = str(condition.get("message") or "")
        reason = _one_line(message) or str(condition["reason"])
    else:
        reason, message = NOT_ATTEMPTED, ""
    created = _created(pod)
    return PendingPod(namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")), reason=reason,
                      message=message, nominated_node=status.get("nominatedNodeName") or None,
                      age_seconds=max(0, int(now - created)) if created is not None else 0)


def group_by_reason(pods: Iterable[PendingPod]) -> tuple[dict[str, int], list[PendingPod]]:
    """Counts per reason, most pods first -- on a tie the scheduler's verdicts, then pods not
    attempted yet, then gated ones, each alphabetically -- and the pods in that order, each group
    by namespace and name."""
    pods = list(pods)
    counts = Counter(p.reason for p in pods)
    order = sorted(counts, key=lambda r: (-counts[r], _TIE_RANK.get(r, 0), r))
    rank = {r: i for i, r in enumerate(order)}
    return {r: counts[r] for r in order}, sorted(pods, key=lambda p: (rank[p.reason], p.namespace, p.name))


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows aligned as kubectl aligns them; the last column is not padded."""
    widths = [max(_MIN_WIDTH, max(len(r[i]) for r in rows) + _PADDING) for i in range(len(rows[0]) - 1)]
    return ["".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] for r in rows]


def render_table(pods: Iterable[PendingPod], *, all_namespaces: bool) -> str:
    """``COUNT REASON`` per reason, a blank line, then one row per pod in the same order; the
    NAMESPACE column only with ``-A``, as in ``kubectl get``."""
    counts, ordered = group_by_reason(pods)
    summary = [["COUNT", "REASON"]] + [[str(n), r] for r, n in counts.items()]
    head = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "AGE", "NOMINATED-NODE", "REASON"]
    rows = [head] + [([p.namespace] if all_namespaces else [])
                     + [p.name, human_duration(p.age_seconds), p.nominated_node or NONE, p.reason] for p in ordered]
    return "\n".join(columns(summary) + [""] + columns(rows)) + "\n"


def render_json(pods: Iterable[PendingPod]) -> str:
    counts, ordered = group_by_reason(pods)
    return json.dumps({"pending": [p.to_json() for p in ordered], "byReason": counts}, indent=2) + "\n"


async def list_pods(client: KubeClient, *, namespace: str | None, field_selector: str,
                    chunk_size: int) -> list[dict[str, Any]]:
    """Every pod matching ``field_selector`` in ``namespace`` (None: all namespaces), fetched in
    pages of ``chunk_size`` (0: one request)."""
    path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
    return await client.list_items(path, query=[("fieldSelector", field_selector)], chunk_size=chunk_size)


class UsageError(Exception):
    """The command line is wrong: exit 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line and exit 2, as kubectl's."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _pending_parser() -> argparse.ArgumentParser:
    p = Parser(prog="kubectl vecsched pending",
                description="List the pending pods of vecsched's profiles, grouped by why they wait.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="namespace to list (default: the kubeconfig context's)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="list pods of every namespace")
    p.add_argument("-o", "--output", choices=["json"], help="print JSON instead of tables")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: its current-context)")
    p.add_argument("--scheduler-name", action="append", metavar="NAME",
                   help=f"a profile's schedulerName; repeatable (default: {DEFAULT_SCHEDULER})")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE,
                   help=f"pods per list request, 0 for one request (default: {CHUNK_SIZE})")
    return p


async def _pending(args: argparse.Namespace) -> int:
    names: list[str] = args.scheduler_name or [DEFAULT_SCHEDULER]
    settings = ClientSettings(kubeconfig=args.kubeconfig, context=args.context)
    # spec.nodeName, status.phase and spec.schedulerName are field selectors every API server serves for pods.
    selector = "spec.nodeName=,status.phase=Pending" + (f",spec.schedulerName={names[0]}" if len(names) == 1 else "")
    async with await connect(settings) as client:
        namespace = None if args.all_namespaces else (args.namespace or default_namespace(settings))
        try:
            items = await list_pods(client, namespace=namespace, field_selector=selector, chunk_size=args.chunk_size)
        except KubeError as e:
            raise KubeError(f"cannot list pods: {e}") from e
    now = time.time()
    pods = [p for p in (pending_pod(i, scheduler_names=names, now=now) for i in items) if p is not None]
    if args.output == "json":
        sys.stdout.write(render_json(pods))
    elif not pods:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        print(f"No pending pods of {', '.join(names)} in {where}.", file=sys.stderr)
    else:
        sys.stdout.write(render_table(pods, all_namespaces=namespace is None))
    return 0


_USAGE: Final = "usage: kubectl vecsched COMMAND [flags]; commands: " + ", ".join(COMMANDS)


def _run(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(_USAGE + " (kubectl vecsched COMMAND --help for its flags)")
            return 0
        raise UsageError(_USAGE)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise UsageError(f"unknown command '{command}' for 'kubectl vecsched'; available: {', '.join(COMMANDS)}")
    if command in _MODULES:
        module = importlib.import_module(_MODULES[command])
        return int(asyncio.run(module.run(module.parser().parse_args(rest))))
    args = _pending_parser().parse_args(rest)
    if args.chunk_size < 0:
        raise UsageError(f"--chunk-size must be >= 0, got {args.chunk_size}")
    return asyncio.run(_pending(args))


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kubectl-vecsched`` console script: exit 0, 1 (the cluster or kubeconfig failed) or
    2 (usage); every error is one line on stderr."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except (KubeError, ValueError, OSError) as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
