"""``vecsched run``: schedule pods live against a Kubernetes API server.

The flags are kube-scheduler's where it has them (``--kubeconfig``,
``--config``, ``--bind-address``, ``--secure-port`` as ``--port``,
``--leader-elect``, ``--kube-api-qps``, ``--kube-api-burst``, ``--v``), so a
Deployment written for kube-scheduler needs few changes. SIGTERM and SIGINT
stop the scheduler gracefully and the command exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from scheduler.config import load_config
from scheduler.kube.client import ClientSettings
from scheduler.loadmetrics import DEFAULT_INTERVAL
from scheduler.logs import level_from, setup_logging
from scheduler.runtime import RuntimeSettings, Scheduler, run_scheduler

__all__ = ["configure", "run", "run_scheduler", "Scheduler", "RuntimeSettings"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else in-cluster config)")
    parser.add_argument("--context", help="kubeconfig context (default: the file's current-context)")
    parser.add_argument("--config", help="KubeSchedulerConfiguration file (default: one profile 'vecsched')")
    parser.add_argument("--bind-address", default="0.0.0.0", help="address of /metrics /healthz /readyz (default 0.0.0.0)")
    parser.add_argument("--port", "--secure-port", type=int, default=10259, dest="port",
                        help="port of /metrics /healthz /readyz (default 10259; 0 picks a free port)")
    parser.add_argument("--tls-cert-file", help="serve HTTPS with this certificate (with --tls-private-key-file)")
    parser.add_argument("--tls-private-key-file", help="the certificate's private key")
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


def _settings(args: argparse.Namespace) -> RuntimeSettings:
    return RuntimeSettings(
        client=ClientSettings(kubeconfig=args.kubeconfig, context=args.context, qps=args.kube_api_qps,
                              burst=args.kube_api_burst),
        bind_address=args.bind_address, port=args.port, tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_private_key_file, leader_elect=args.leader_elect,
        load_metrics_interval=args.load_metrics_interval, node_metrics_file=args.node_metrics)


async def _main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = _settings(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for w in config.warnings:
        logging.getLogger("vecsched").warning("config: %s", w)
    await run_scheduler(config=config, settings=settings, stop=stop)
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging(level=level_from(log_level=args.log_level, verbosity=args.verbosity), fmt=args.log_format)
    return asyncio.run(_main(args))
