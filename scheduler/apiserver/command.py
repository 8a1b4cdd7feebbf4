"""``vecsched apiserver``: the embedded API server as a standalone process.

So that ``kubectl`` and ``vecsched run`` can be pointed at a cluster that
exists only on this machine: it registers simulated nodes, writes a
kubeconfig, prints one line saying where it serves, and on SIGTERM/SIGINT
stops cleanly (saving its objects with ``--state``, loaded again on the next
start). ``--faults`` makes it misbehave as a real control plane does under
stress (see ``faults``), for soak tests of clients; what it injected is served
at ``/metrics/faults`` and printed when it stops. Bad flags raise
``ValueError``; the dispatcher prints it (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
from typing import Any

from .auth import parse_token_spec, read_rbac_file, read_token_file
from .faults import SPEC_HELP, Faults, parse_spec, run_schedule
from .kubelet import NodeShape
from .nodes import DEFAULT_CSI_DRIVER
from .server import ApiServer
from .usage import MAX_USAGE_RATIO

__all__ = ["configure", "run", "parse_shape", "faults_line"]

_SHAPE_KEYS = ("count", "cpu", "memory", "pods", "gpus", "zones", "instance-type", "ephemeral-storage",
               "attach-limit")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default 8080)")
    parser.add_argument("--nodes", type=int, default=3, help="simulated nodes of the --node-* shape (default 3)")
    parser.add_argument("--node-cpu", default="32", help="CPU capacity of each node, a quantity (default 32)")
    parser.add_argument("--node-memory", default="128Gi", help="memory capacity of each node (default 128Gi)")
    parser.add_argument("--node-pods", type=int, default=110, help="max pods per node (default 110)")
    parser.add_argument("--node-gpus", type=int, default=0, help="nvidia.com/gpu per node (default 0)")
    parser.add_argument("--node-zones", default="", help="comma-separated zones assigned round-robin")
    parser.add_argument("--node-instance-type", default="", help="node.kubernetes.io/instance-type label")
    parser.add_argument("--node-label", action="append", default=[], metavar="KEY=VALUE", help="extra node label (repeatable)")
    parser.add_argument("--node-taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT", help="node taint (repeatable)")
    parser.add_argument("--node-attach-limit", type=int, default=None, metavar="N",
                        help="CSI volumes each --nodes node can attach: its CSINode's allocatable.count for "
                             "--csi-driver (default: no limit reported); --shape takes attach-limit=N")
    parser.add_argument("--csi-driver", default=DEFAULT_CSI_DRIVER, metavar="NAME",
                        help="the simulated CSI driver every node registers in its CSINode, with a CSIDriver "
                             f"object (default {DEFAULT_CSI_DRIVER}; '' for none)")
    parser.add_argument("--shape", action="append", default=[], metavar="SPEC",
                        help="extra nodes, e.g. count=4,cpu=64,memory=256Gi,gpus=8,zones=a;b,attach-limit=16 "
                             "(repeatable)")
    parser.add_argument("--kubelet-delay", type=float, default=0.05, help="seconds from binding to Running (default 0.05)")
    parser.add_argument("--kubelet-max-grace", type=float, default=None, metavar="SECONDS",
                        help="stop a deleted pod's containers after at most this long instead of its full grace "
                             "period (default: the full period, 30 s unless the pod says otherwise)")
    parser.add_argument("--node-lease-seconds", type=float, default=10.0, metavar="SECONDS",
                        help="renew each node's Lease in kube-node-lease this often; 0 switches leases off (default 10)")
    parser.add_argument("--node-status-seconds", type=float, default=300.0, metavar="SECONDS",
                        help="refresh each node's condition heartbeats this often; 0 switches them off (default 300; "
                             "every Node write wakes the scheduler)")
    parser.add_argument("--simulated-usage-ratio", default="1", metavar="R",
                        help="what a pod without vecsched.io/simulated-usage-cpu/-memory annotations uses, as a "
                             "multiple of its requests, 0..10 (default 1); served to Prometheus at "
                             "/metrics/node-exporter and /metrics/node-utilisation")
    parser.add_argument("--history", type=int, default=50_000, help="watch history window in events (default 50000)")
    parser.add_argument("--bookmark-interval", type=float, default=5.0, help="seconds between watch bookmarks (default 5)")
    parser.add_argument("--watch-coalesce", type=float, default=0.005,
                        help="seconds a watch stream waits to batch events into one write (default 0.005)")
    parser.add_argument("--kubeconfig-out", default=None, metavar="F", help="write the kubeconfig here (default: a temp file)")
    parser.add_argument("--state", default=None, metavar="F", help="load objects from F on start, save them on shutdown")
    parser.add_argument("--rbac", action="append", default=[], metavar="F", help="RBAC YAML to enforce (repeatable)")
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN=USER", help="bearer token of a user (repeatable)")
    parser.add_argument("--token-file", default=None, metavar="F",
                        help="tokens, one 'token,user,uid[,\"group,...\"]' line each (kube-apiserver's --token-auth-file)")
    parser.add_argument("--admin-token", default=None, help="token of the system:masters user written to the kubeconfig")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help=SPEC_HELP + "; the counts of injected faults are served at /metrics/faults and "
                             "printed on shutdown (default: no faults)")


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ValueError(f"invalid --node-label {item!r}: expected KEY=VALUE")
        out[k] = v
    return out


def _taint(spec: str) -> dict[str, str]:
    kv, sep, effect = spec.rpartition(":")
    if not sep or not kv:
        raise ValueError(f"invalid --node-taint {spec!r}: expected KEY[=VALUE]:EFFECT")
    k, _, v = kv.partition("=")
    t = {"key": k, "effect": effect}
    if v:
        t["value"] = v
    return t


def parse_shape(spec: str, *, csi_driver: str = DEFAULT_CSI_DRIVER) -> NodeShape:
    """``count=4,cpu=64,memory=256Gi,pods=110,gpus=8,zones=a;b,instance-type=x,attach-limit=16`` -> NodeShape
    (whose nodes run ``csi_driver``)."""
    kw: dict[str, Any] = {"csi_driver": csi_driver}
    for part in filter(None, spec.split(",")):
        k, sep, v = part.partition("=")
        if not sep or k not in _SHAPE_KEYS:
            raise ValueError(f"invalid --shape {spec!r}: {part!r} is not one of {', '.join(k + '=' for k in _SHAPE_KEYS)}")
        if k in ("count", "pods", "gpus", "attach-limit"):
            try:
                kw[k.replace("-", "_")] = int(v)
            except ValueError:
                raise ValueError(f"invalid --shape {spec!r}: {k} must be an integer, got {v!r}") from None
        elif k == "zones":
            kw["zones"] = tuple(z for z in v.split(";") if z)
        else:
            kw[k.replace("-", "_")] = v
    return NodeShape(**kw)


def _seconds(value: float, flag: str, *, off: bool) -> float | None:
    """A non-negative number of seconds; 0 means "off" (None) where ``off`` allows it."""
    if value < 0 or value != value:
        raise ValueError(f"{flag} must be a number of seconds >= 0, got {value}")
    return None if off and value == 0 else value


def _usage_ratio(text: str) -> float:
    """``--simulated-usage-ratio``: a number in [0, 10]."""
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0 <= ratio <= MAX_USAGE_RATIO:  # also NaN
        raise ValueError(f"--simulated-usage-ratio must be a number in [0, {MAX_USAGE_RATIO:g}], got {text!r}")
    return ratio


def _server(args: argparse.Namespace) -> ApiServer:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    if args.nodes < 0:
        raise ValueError(f"--nodes must be >= 0, got {args.nodes}")
    if args.node_attach_limit is not None and args.node_attach_limit < 0:
        raise ValueError(f"--node-attach-limit must be a count >= 0, got {args.node_attach_limit}")
    shapes = []
    if args.nodes:
        shapes.append(NodeShape(
            count=args.nodes, cpu=args.node_cpu, memory=args.node_memory, pods=args.node_pods, gpus=args.node_gpus,
            zones=tuple(z for z in args.node_zones.split(",") if z), instance_type=args.node_instance_type,
            labels=_labels(args.node_label), taints=tuple(_taint(t) for t in args.node_taint),
            csi_driver=args.csi_driver, attach_limit=args.node_attach_limit,
        ))
    shapes += [parse_shape(s, csi_driver=args.csi_driver) for s in args.shape]
    tokens = read_token_file(args.token_file) if args.token_file else {}
    tokens.update(parse_token_spec(t) for t in args.token)
    rbac = [doc for f in args.rbac for doc in read_rbac_file(f)] if args.rbac else None
    return ApiServer(
        nodes=shapes, host=args.host, port=args.port, kubelet_delay=args.kubelet_delay, history=args.history,
        bookmark_interval=args.bookmark_interval, watch_coalesce=args.watch_coalesce, tokens=tokens, rbac=rbac, admin_token=args.admin_token,
        kubeconfig_path=args.kubeconfig_out, state_path=args.state,
        kubelet_max_grace_seconds=(None if args.kubelet_max_grace is None
                                   else _seconds(args.kubelet_max_grace, "--kubelet-max-grace", off=False)),
        node_lease_seconds=_seconds(args.node_lease_seconds, "--node-lease-seconds", off=True),
        node_status_seconds=_seconds(args.node_status_seconds, "--node-status-seconds", off=True),
        simulated_usage_ratio=_usage_ratio(args.simulated_usage_ratio),
        faults=parse_spec(args.faults) if args.faults is not None else None,
    )


def faults_line(faults: Faults) -> str:
    """The line printed on shutdown with ``--faults``: ``vecsched apiserver injected faults: errors=3 ...``."""
    return f"vecsched apiserver injected faults: {faults.summary()}"


async def _serve(srv: ApiServer, *, faults: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    srv.http.anonymous_metrics["/metrics/faults"] = srv.faults.metrics_text
    await srv.start()
    schedule = (asyncio.create_task(run_schedule(srv.faults, close_watches=srv.close_watches, compact=srv.compact),
                                    name="fault schedule") if faults else None)
    try:
        print(f"vecsched apiserver serving {srv.url} (kubeconfig: {srv.kubeconfig_path})", flush=True)
        await stop.wait()
    finally:
        if schedule is not None:
            schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)
        await srv.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    srv = _server(args)
    asyncio.run(_serve(srv, faults=args.faults is not None))
    if args.faults is not None:
        print(faults_line(srv.faults), file=sys.stderr, flush=True)
    print("vecsched apiserver stopped" + (f"; state saved to {args.state}" if args.state else ""), file=sys.stderr)
    return 0
