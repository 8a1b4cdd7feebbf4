"""``vecsched run``: schedule pods live against a Kubernetes API server.

The flags are kube-scheduler's where it has them (``--kubeconfig``,
``--config``, ``--bind-address``, ``--secure-port`` as ``--port``,
``--tls-cert-file``, ``--authorization-always-allow-paths``,
``--leader-elect``, ``--kube-api-qps``, ``--kube-api-burst``, ``--v``), so a
Deployment written for kube-scheduler needs few changes. SIGTERM and SIGINT
stop the scheduler gracefully and the command exits 0.

Serving is kube-scheduler's too: ``--port`` above 0 serves ``/metrics`` and
the probes over HTTPS (a self-signed certificate without ``--tls-cert-file``),
and every path but the always-allowed ones needs a bearer token that the API
server authenticates and authorizes. ``--port 0`` turns HTTPS off; plain HTTP
is then served on a free port, and only on a loopback ``--bind-address``
given explicitly, so that no one serves unauthenticated metrics to a network
by accident.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
from typing import Final

from scheduler.config import load_config
from scheduler.kube.client import ClientSettings
from scheduler.loadmetrics import DEFAULT_INTERVAL
from scheduler.logs import level_from, setup_logging
from scheduler.runtime import RuntimeSettings, Scheduler, run_scheduler
from scheduler.serving import DEFAULT_ALWAYS_ALLOW_PATHS, AlwaysAllowPaths, is_loopback
from scoring.safe_input import quote

__all__ = ["configure", "run", "run_scheduler", "serving_flags", "Scheduler", "RuntimeSettings"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else in-cluster config)")
    parser.add_argument("--context", help="kubeconfig context (default: the file's current-context)")
    parser.add_argument("--config", help="KubeSchedulerConfiguration file (default: one profile 'vecsched')")
    parser.add_argument("--bind-address", default=None,
                        help="address of /metrics /healthz /readyz /livez (default 0.0.0.0; with --port 0, "
                             "required and loopback: 127.0.0.1, ::1 or localhost)")
    parser.add_argument("--port", "--secure-port", type=int, default=10259, dest="port",
                        help="HTTPS port of /metrics /healthz /readyz /livez (default 10259); 0: no HTTPS, plain "
                             "HTTP on a free port of a loopback --bind-address")
    parser.add_argument("--tls-cert-file",
                        help="certificate served over HTTPS (with --tls-private-key-file; default: a self-signed "
                             "certificate made at start)")
    parser.add_argument("--tls-private-key-file", help="the certificate's private key")
    parser.add_argument("--authorization-always-allow-paths", default=",".join(DEFAULT_ALWAYS_ALLOW_PATHS),
                        metavar="PATHS",
                        help="comma-separated paths served over HTTPS without credentials; a trailing * matches a "
                             f"prefix (default {','.join(DEFAULT_ALWAYS_ALLOW_PATHS)})")
    parser.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=None,
                        help="elect a leader among replicas with a Lease (default: the config's leaderElection.leaderElect, true)")
    parser.add_argument("--kube-api-qps", type=float, default=2000.0, help="requests per second to the API (default 2000)")
    parser.add_argument("--kube-api-burst", type=int, default=4000, help="request burst to the API (default 4000)")
    parser.add_argument("--v", type=int, default=0, dest="verbosity", help="klog-style verbosity; 4+ logs per-node detail")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="overrides --v")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--load-metrics-interval", type=_positive_seconds, default=DEFAULT_INTERVAL, metavar="SECONDS",
                        help="seconds between refreshes of the load plugins' node metrics (default 30)")
    parser.add_argument("--node-metrics", metavar="FILE",
                        help="read the load plugins' node metrics from this load-watcher WatcherMetrics JSON file "
                             "(read again at every refresh) instead of their metricProvider or watcherAddress")


def _positive_seconds(v: str) -> float:
    try:
        seconds = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {v!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {v!r}")
    return seconds


def serving_flags(*, port: int, bind_address: str | None) -> str:
    """The bind address ``vecsched run`` serves on: 0.0.0.0 by default; with ``--port 0``, the
    explicit loopback address plain HTTP needs. A ValueError (one line, exit 2) says what to add or change."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port: must be between 0 and 65535, got {port}")
    if port:
        return bind_address if bind_address is not None else "0.0.0.0"
    if bind_address is None:
        raise ValueError("--port 0 turns HTTPS off: add --bind-address 127.0.0.1 (or ::1, localhost) to serve "
                         "plain HTTP on a free loopback port, or give a --port above 0 for HTTPS")
    if not is_loopback(bind_address):
        raise ValueError(f"--bind-address {quote(bind_address)}: --port 0 serves plain HTTP on a loopback address "
                         "only (127.0.0.1, ::1 or localhost); give a --port above 0 for HTTPS")
    return bind_address


def _settings(args: argparse.Namespace) -> RuntimeSettings:
    bind_address = serving_flags(port=args.port, bind_address=args.bind_address)
    if args.port == 0 and (args.tls_cert_file or args.tls_private_key_file):
        raise ValueError("--tls-cert-file: --port 0 serves plain HTTP; give a --port above 0 to serve HTTPS")
    paths = tuple(p.strip() for p in args.authorization_always_allow_paths.split(",") if p.strip())
    AlwaysAllowPaths.parse(paths)  # a bad path is a ValueError naming the flag
    return RuntimeSettings(
        client=ClientSettings(kubeconfig=args.kubeconfig, context=args.context, qps=args.kube_api_qps,
                              burst=args.kube_api_burst),
        bind_address=bind_address, port=args.port, tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_private_key_file, always_allow_paths=paths, leader_elect=args.leader_elect,
        load_metrics_interval=args.load_metrics_interval, node_metrics_file=args.node_metrics)


async def _main(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config = load_config(args.config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for w in config.warnings:
        logging.getLogger("vecsched").warning("config: %s", w)
    await run_scheduler(config=config, settings=settings, stop=stop)
    return 0


_GC_THRESHOLD: Final = (20_000, 10, 10)
"""The cyclic collector's thresholds for `vecsched run`: a young collection every 20,000 new
objects instead of 700. The scheduler of a large cluster holds hundreds of thousands of
long-lived records (a pod's is a few dicts) and decodes a list page or watch event into
thousands of short-lived ones; at the default every few pods triggered a collection, and the
older generations were rescanned so often that collecting took ~40% of a 300,000-pod sync
(measured: 156 us per pod read and charged, 100 us with these thresholds, 89 us with no
collection at all). Nothing the scheduler holds forms reference cycles in bulk."""


def run(args: argparse.Namespace) -> int:
    gc.set_threshold(*_GC_THRESHOLD)
    setup_logging(level=level_from(log_level=args.log_level, verbosity=args.verbosity), fmt=args.log_format)
    return asyncio.run(_main(args))
