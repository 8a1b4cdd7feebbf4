"""The ``vecsched`` command.

Each subcommand lives in its own module, which exposes ``configure(parser)``
to declare its flags and ``run(args) -> int`` to do the work; this module only
dispatches. A user never sees a traceback for bad input: subcommands raise
``UsageError`` (or a ``ValueError`` subclass of the core) and it is printed as
one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["main", "UsageError"]

# subcommand -> (module, one-line help). Modules are imported lazily so that
# `vecsched explain` does not pay for aiohttp and the Kubernetes client.
_COMMANDS: Final = {
    "run": ("scheduler.run_command", "schedule pods live against a Kubernetes API server"),
    "explain": ("scheduler.explain", "explain one placement decision, from the cluster (POD) or a snapshot (--snapshot, --pod)"),
    "extender": ("scheduler.extender", "serve the kube-scheduler extender protocol"),
    "apiserver": ("scheduler.apiserver.command", "serve the embedded Kubernetes API server with simulated nodes"),
    "demo": ("scheduler.demo", "run the whole scheduler on this machine against the embedded API server"),
    "sim": ("benchmarks.sim_command", "replay a workload through placement strategies and compare them"),
    "webhook": ("scheduler.webhook.command", "serve admission webhooks: route namespaces to vecsched, validate PodGroups and configs"),
}


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _available() -> dict[str, str]:
    """Subcommands whose package is installed (all of them in a full install). Only the top-level
    package is looked up: finding ``scheduler.apiserver.command`` would import ``scheduler.apiserver``
    (and aiohttp) for every command."""
    found = {}
    for name, (module, _) in _COMMANDS.items():
        try:
            if importlib.util.find_spec(module.partition(".")[0]) is not None:
                found[name] = module
        except ModuleNotFoundError:
            continue
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecsched", description="A vectorised Kubernetes scheduler.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = _available()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen subcommand's module is imported (and declares its flags).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, module in modules.items():
        p = sub.add_parser(name, help=_COMMANDS[name][1], description=_COMMANDS[name][1])
        if name == chosen:
            importlib.import_module(module).configure(p)
    args = parser.parse_args(argv)
    mod = importlib.import_module(modules[args.command])
    try:
        return int(mod.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (UsageError, ValueError, OSError) as e:
        print(f"vecsched {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
