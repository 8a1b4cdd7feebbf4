"""``vecsched webhook``: the admission webhook server as a command.

    vecsched webhook [--port 9443] [--bind-address 0.0.0.0] --tls-cert-file F --tls-private-key-file F
                     [--config F] [--default-profile NAME] [--kubeconfig F] [--unknown-profile refuse|warn]
                     [--metrics-port 0]

The profiles a namespace may name are those of ``--config`` (the
KubeSchedulerConfiguration the scheduler runs with); without it, the default
profile alone. ``--default-profile`` (default: the configuration's first
profile, ``vecsched`` without one) is what an empty
``vecsched.io/scheduler-name`` label means. SIGTERM reports not-ready, keeps
serving ``--shutdown-delay-seconds`` (5 s) so that the Service drops the
replica first, then lets requests in flight finish; SIGINT skips the delay.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from scheduler.config import load_config
from scheduler.kube.client import ClientSettings
from scheduler.logs import level_from, setup_logging
from scheduler.webhook.pods import PodRouting
from scheduler.webhook.server import MAX_BODY_BYTES, WebhookSettings, serve_webhook

__all__ = ["configure", "run", "routing_from", "settings_from"]

log = logging.getLogger("vecsched.webhook")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=9443, help="HTTPS port (default 9443; 0 picks a free port)")
    parser.add_argument("--bind-address", default="0.0.0.0", help="address to serve on (default 0.0.0.0)")
    parser.add_argument("--tls-cert-file", required=True, help="serving certificate (PEM); reloaded when it changes")
    parser.add_argument("--tls-private-key-file", required=True, help="the certificate's private key (PEM)")
    parser.add_argument("--config", help="the scheduler's KubeSchedulerConfiguration: its profiles are the names "
                                         "namespaces may ask for (default: the default profile only)")
    parser.add_argument("--default-profile", help="profile an empty vecsched.io/scheduler-name label means "
                                                  "(default: the first profile of --config, else vecsched)")
    parser.add_argument("--unknown-profile", choices=("refuse", "warn"), default="refuse",
                        help="a pod routed to a profile the configuration lacks: refuse it (default), or admit "
                             "it unchanged with a warning")
    parser.add_argument("--kubeconfig", help="kubeconfig for the Namespaces (and Nodes) informers "
                                             "(default: $KUBECONFIG, else in-cluster config)")
    parser.add_argument("--context", help="kubeconfig context (default: the file's current-context)")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve /metrics (and probes) over plain HTTP on this port; 0 (default): /metrics on "
                             "the HTTPS port")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help="largest AdmissionReview accepted (default 3 MiB, kube-apiserver's request limit)")
    parser.add_argument("--request-budget", type=float, default=1.0,
                        help="seconds to answer a review, with 504 if need be (default 1)")
    parser.add_argument("--shutdown-delay-seconds", type=float, default=5.0,
                        help="on SIGTERM, seconds to keep serving while not ready (default 5)")
    parser.add_argument("--v", type=int, default=0, dest="verbosity", help="klog-style verbosity")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="overrides --v")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")


def routing_from(args: argparse.Namespace) -> PodRouting:
    """The profiles from ``--config`` (loaded and validated as ``vecsched run`` does) and the default one."""
    if args.config:
        config = load_config(args.config)
        for w in config.warnings:
            log.warning("config: %s", w)
        names = [p.scheduler_name for p in config.profiles]
        default = args.default_profile or names[0]
        if default not in names:
            raise ValueError(f"--default-profile {default!r}: no such profile in {args.config} "
                             f"(have: {', '.join(names)})")
        return PodRouting(profiles=frozenset(names), default_profile=default, unknown_profile=args.unknown_profile)
    default = args.default_profile or "vecsched"
    return PodRouting(profiles=frozenset({default}), default_profile=default, unknown_profile=args.unknown_profile)


def settings_from(args: argparse.Namespace) -> WebhookSettings:
    if args.metrics_port < 0 or args.port < 0:
        raise ValueError("--port and --metrics-port must be >= 0")
    return WebhookSettings(
        tls_cert_file=args.tls_cert_file, tls_key_file=args.tls_private_key_file,
        bind_address=args.bind_address, port=args.port, metrics_port=args.metrics_port or None,
        client=ClientSettings(kubeconfig=args.kubeconfig, context=args.context),
        max_body_bytes=args.max_body_bytes, request_budget_seconds=args.request_budget,
        shutdown_delay_seconds=args.shutdown_delay_seconds)


async def _main(args: argparse.Namespace) -> int:
    routing = routing_from(args)
    settings = settings_from(args)
    stop = asyncio.Event()
    drain = [False]
    loop = asyncio.get_running_loop()

    def on_signal(graceful: bool) -> None:
        drain[0] = graceful
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_signal, True)
    loop.add_signal_handler(signal.SIGINT, on_signal, False)
    async with serve_webhook(routing=routing, settings=settings) as server:
        await stop.wait()
        if drain[0]:
            await server.drain()
        log.info("stopping")
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging(level=level_from(log_level=args.log_level, verbosity=args.verbosity), fmt=args.log_format)
    return asyncio.run(_main(args))
