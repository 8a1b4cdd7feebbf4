"""``kubectl vecsched explain POD``: ``vecsched explain``'s live mode as a kubectl plugin.

The same answer as ``vecsched explain POD`` -- the code is shared: the cluster is read by
``scheduler.live_cluster`` and decided by ``scheduler.explain`` -- with kubectl's conventions
for the rest (``scheduler.kubectl_plugin``): the connection from ``--kubeconfig``, else
``$KUBECONFIG``, else ``~/.kube/config``, honouring ``--context``; the pod in ``-n``, else the
context's namespace, or given as ``NAMESPACE/NAME``; a usage error or a bad input file is one
``error:`` line and exit 2, a cluster that cannot be read one ``error:`` line and exit 1.
"""

from __future__ import annotations

import argparse
import sys

from scheduler.explain import add_decision_arguments, add_live_arguments, render
from scheduler.kubectl_plugin import Parser, UsageError
from scheduler.live_cluster import InputError, explain_live, live_options

__all__ = ["parser", "run"]


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="kubectl vecsched explain",
               description="Explain where vecsched would place a pod, and why not elsewhere: every node's "
                           "verdict and scores, the preemption plan and the gang verdict when they apply.")
    p.add_argument("target", metavar="POD", help="the pod: NAME (in -n, else the context's namespace) or "
                                                 "NAMESPACE/NAME")
    add_live_arguments(p)
    add_decision_arguments(p)
    return p


async def run(args: argparse.Namespace) -> int:
    try:
        result = await explain_live(live_options(args))
    except InputError as e:
        raise UsageError(str(e)) from None
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(render(result.doc, args.output))
    return 0
