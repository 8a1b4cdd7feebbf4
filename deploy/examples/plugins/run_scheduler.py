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
        [--kubeconfig F] [--context C] [--port 10259] [--no-leader-elect] [--v N]

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
from scheduler.runtime import RuntimeSettings, Scheduler
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
    p.add_argument("--bind-address", default="0.0.0.0", help="address of /metrics /healthz /readyz (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=10259, help="port of /metrics /healthz /readyz (default 10259; 0 picks one)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=None,
                   help="elect a leader among replicas (default: the config's leaderElection.leaderElect, true)")
    p.add_argument("--v", type=int, default=0, dest="verbosity", help="klog-style verbosity; 4+ logs per-node detail")
    return p


async def _run(args: argparse.Namespace) -> int:
    plugins = registry()
    config = load_config(args.config, registry=plugins)
    for w in config.warnings:
        log.warning("config: %s", w)
    settings = RuntimeSettings(client=ClientSettings(kubeconfig=args.kubeconfig, context=args.context),
                               bind_address=args.bind_address, port=args.port, leader_elect=args.leader_elect)
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
