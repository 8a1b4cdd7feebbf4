"""The ``vecsched`` command.

Each subcommand lives in its own module, which exposes ``configure(parser)``
to declare its flags and ``run(args) -> int`` to do the work; this module only
dispatches. A user never sees a traceback for bad input: subcommands raise
``UsageError`` (or a ``ValueError`` subclass of the core) and it is printed as
one line on stderr with exit code 2. ``vecsched --version`` prints
``vecsched <version>`` and exits 0, as ``kubectl version --client`` answers
without a cluster: the installed distribution's version, or, run from a
checkout that is not installed, the one its pyproject.toml declares.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["main", "UsageError", "version"]

DISTRIBUTION: Final = "vecsched"
"""The distribution (pyproject's ``project.name``) whose version ``--version`` prints."""
_PYPROJECT: Final = Path(__file__).resolve().parents[1] / "pyproject.toml"

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


def version(*, distribution: str = DISTRIBUTION, pyproject: Path = _PYPROJECT) -> str:
    """The installed ``distribution``'s version (importlib.metadata); when it is not installed,
    ``project.version`` of ``pyproject``; "unknown" when neither says."""
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        with pyproject.open("rb") as f:
            project = tomllib.load(f).get("project")
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    found = project.get("version") if isinstance(project, dict) else None
    return found if isinstance(found, str) and found else "unknown"


class _Version(argparse.Action):
    """``--version``: argparse's version action, with the version looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"vecsched {version()}")
        parser.exit(0)


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
    parser.add_argument("--version", action=_Version, help="print vecsched's version and exit")
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
