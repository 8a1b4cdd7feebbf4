"""``vecsched run`` with the example NodeLabel plugin registered: how a plugin that is not
in vecsched's registry takes part in live scheduling.

``vecsched run`` builds its profiles from ``scoring.plugins.REGISTRY``, which holds
vecsched's own plugins only. A program of one's own does what ``vecsched run`` does with
a registry that has one more entry: ``build_registry()`` (every plugin vecsched knows),
``register`` the new plugin's ``NAME`` and ``new``, read the configuration with that
registry (so that the strict reader accepts the plugin's name and checks its args) and
hand the profiles built from it to ``Scheduler``. Everything else -- informers, queue,
cycle, binding, Events, metrics, leader election -- is vecsched's, unchanged.

    python deploy/examples/plugins/run_scheduler.py --config deploy/examples/plugins/config.yaml \\
        [--kubeconfig F] [--context C] [--bind-address A] [--port 10259] [--tls-cert-file F --tls-private-key-file F]
        [--authorization-always-allow-paths P,...] [--no-leader-elect] [--v N]

Python puts this file's directory first on ``sys.path``, which is how ``node_label``
is found; in an image of one's own, install the plugin module as a package instead.
As ``vecsched run``: bad input is one line and exit code 2; SIGTERM and SIGINT stop the
scheduler gracefully and the command exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Final

import node_label

from scheduler.config import load_config
from scheduler.kube.client import ClientSettings
from scheduler.logs import level_from, setup_logging
from scheduler.run_command import serving_flags
from scheduler.runtime import RuntimeSettings, Scheduler
from scheduler.serving import DEFAULT_ALWAYS_ALLOW_PATHS
from scoring.framework import Registry
from scoring.plugins import build_registry

__all__ = ["registry", "main"]

PROG: Final = "run_scheduler.py"

log = logging.getLogger("vecsched")


def registry() -> Registry:
    """Every plugin vecsched knows, and NodeLabel."""
    r = build_registry()
    r.register(node_label.NAME, node_label.new)
    return r


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="vecsched run, with the example NodeLabel plugin registered")
    p.add_argument("--config", help="KubeSchedulerConfiguration file, or a ConfigMap holding one "
                                    "(default: one profile 'vecsched')")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else in-cluster config)")
    p.add_argument("--context", help="kubeconfig context (default: the file's current-context)")
    # The serving flags of `vecsched run` (scheduler/run_command.py), with the same meaning.
    p.add_argument("--bind-address", default=None,
                   help="address of /metrics /healthz /readyz /livez (default 0.0.0.0; with --port 0, required and "
                        "loopback: 127.0.0.1, ::1 or localhost)")
    p.add_argument("--port", "--secure-port", type=int, default=10259, dest="port",
                   help="HTTPS port of /metrics /healthz /readyz /livez (default 10259); 0: no HTTPS, plain HTTP on "
                        "a free port of a loopback --bind-address")
    p.add_argument("--tls-cert-file", help="certificate served over HTTPS (default: a self-signed one made at start)")
    p.add_argument("--tls-private-key-file", help="the certificate's private key")
    p.add_argument("--authorization-always-allow-paths", default=",".join(DEFAULT_ALWAYS_ALLOW_PATHS), metavar="PATHS",
                   help="comma-separated paths served over HTTPS without credentials "
                        f"(default {','.join(DEFAULT_ALWAYS_ALLOW_PATHS)})")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=None,
                   help="elect a leader among replicas (default: the config's leaderElection.leaderElect, true)")
    p.add_argument("--v", type=int, default=0, dest="verbosity", help="klog-style verbosity; 4+ logs per-node detail")
    return p


async def _run(args: argparse.Namespace) -> int:
    plugins = registry()
    config = load_config(args.config, registry=plugins)
    for w in config.warnings:
        log.warning("config: %s", w)
    bind_address = serving_flags(port=args.port, bind_address=args.bind_address)
    settings = RuntimeSettings(client=ClientSettings(kubeconfig=args.kubeconfig, context=args.context),
                               bind_address=bind_address, port=args.port, tls_cert_file=args.tls_cert_file,
                               tls_key_file=args.tls_private_key_file,
                               always_allow_paths=tuple(p.strip() for p in args.authorization_always_allow_paths.split(",")
                                                        if p.strip()),
                               leader_elect=args.leader_elect)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Scheduler(config=config, profiles=config.build(registry=plugins), settings=settings):
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(level=level_from(log_level=None, verbosity=args.verbosity))
    try:
        return asyncio.run(_run(args))
    except (ValueError, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
