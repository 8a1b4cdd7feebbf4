"""A sweep's runs as Ray tasks: ``vecsched sim --ray [ADDRESS]``.

Reproducing a paper's sweep (17 pod lists x 6 policies x 10 seeds) takes hours
on one machine; on a Ray cluster it takes the cluster's cores. The sweep
(``benchmarks.sim.sweep``) decides which runs are left to do and records each
finished one; this module only runs them, as Ray tasks, and hands every record
back as soon as its task completes (``ray.wait``). So the runs file, resuming,
the progress bar and Ctrl-C behave as with local worker processes, and the
records are the same: everything a run draws comes from its seed.

Without an address Ray runs on this machine (``ray.init`` of ``jobs`` CPUs, no
dashboard, quiet logs) and is shut down afterwards. With one, the sweep joins
an existing cluster (``ray://head:10001``, KubeRay's client port; ``host:port``
of a GCS; or ``auto``), which shares neither the files nor the code: the
inputs travel loaded, once, through the object store (``ray.put``), and the
``scheduler``, ``scoring`` and ``benchmarks`` packages as the job's
``runtime_env`` ``py_modules``. The cluster's Python needs vecsched's
dependencies (numpy, SciPy, ...) and the driver's Python and Ray versions, as
Ray itself requires; a cluster with token authentication takes Ray's own
settings (``RAY_AUTH_MODE=token`` and the token) from the environment.

Ray is optional (``pip install 'vecsched[ray]'``): it is imported here only,
when a sweep is given ``--ray``. Errors::

    RayUsageError (ValueError)      Ray (or its client, for ray://) is not installed, or ADDRESS
                                    is not an address: exit 2
    RayClusterError (RuntimeError)  nothing answers at ADDRESS, or the runtime or the cluster
                                    failed: exit 1

A run's own error (bad input found while replaying) comes out as itself, as
from a local worker process.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from benchmarks.sim.sweep import LoadedInputs, SweepOptions, adopt_inputs, loaded_inputs, run_one
from scheduler.config import ProfileConfig
from scoring.safe_input import quote

__all__ = ["MISSING", "RayClusterError", "RayUsageError", "require_ray", "run_on_ray"]

MISSING: Final = "--ray needs Ray: pip install 'vecsched[ray]'"

# A local runtime's shared-memory object store. The inputs of even the openb traces pickle to a few
# MB and every result is a small record, so 256 MiB is ample; Ray's default (30 % of RAM) would
# reserve /dev/shm that the replays' own processes may need.
LOCAL_OBJECT_STORE_BYTES: Final = 256 * 2**20

# Ray blocks for minutes retrying an address where nothing listens, its C++ core logging every retry
# on stderr; a TCP connect answers at once.
# Five seconds is an empirical margin for a head node across a slow network or a port-forward.
CONNECT_TIMEOUT_S: Final = 5.0

# Ray's default ports: a GCS (``ray start --head``) and the Ray Client server.
_GCS_PORT: Final = 6379
_CLIENT_PORT: Final = 10001

# How long one ray.wait blocks before the loop runs again: an interrupt is handled between two waits.
_WAIT_S: Final = 0.5


class RayUsageError(ValueError):
    """Ray (or, for a ``ray://`` address, its client) is not installed, or the address is not one."""


class RayClusterError(RuntimeError):
    """The Ray runtime could not be started or reached, or lost a run (a worker or node died)."""


def _import_ray() -> ModuleType:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise RayUsageError(MISSING) from None


def _endpoint(address: str) -> tuple[str, int] | None:
    """The host and port of a ``[ray://]HOST[:PORT]`` address; None for Ray's own ``auto`` and ``local``."""
    if address in ("auto", "local"):
        return None
    client = address.startswith("ray://")
    where = address.removeprefix("ray://")
    host, sep, port_text = where.rpartition(":")
    if not sep:
        host, port_text = where, str(_CLIENT_PORT if client else _GCS_PORT)
    host = host.strip("[]")  # an IPv6 literal
    if not host or "/" in host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RayUsageError(f"--ray: expected [ray://]HOST[:PORT] or auto, got {quote(address)}")
    return host, int(port_text)


def require_ray(*, address: str = "") -> None:
    """Fail now, before any input is read or any file written: ``RayUsageError`` if Ray (or its
    client, for ``ray://``) is not installed or ``address`` is not an address, ``RayClusterError``
    if nothing answers there."""
    _import_ray()
    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise RayUsageError(f"--ray {quote(address)}: Ray's client needs grpcio: pip install 'vecsched[ray]'")
    if address:
        _check_reachable(address)


def _check_reachable(address: str) -> None:
    """The cluster at ``address`` must accept a TCP connection (``auto`` is left to Ray)."""
    endpoint = _endpoint(address)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise RayClusterError(f"--ray {quote(address)}: cannot reach the Ray cluster: "
                              f"{e.strerror or type(e).__name__}") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _packages() -> list[str]:
    """The directories of the packages a run imports, for ``py_modules`` (paths, not module
    objects: the Ray Client pickles the runtime_env, and a module does not pickle)."""
    return [str(Path(importlib.import_module(name).__file__ or "").parent)
            for name in ("scheduler", "scoring", "benchmarks")]


def _start(ray: ModuleType, *, address: str, jobs: int) -> None:
    """Start a local runtime (``address`` empty) or join the cluster at ``address``."""
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if not address:
            # "local" starts a new runtime even when RAY_ADDRESS names a cluster.
            ray.init(address="local", num_cpus=jobs, include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
            return
        _check_reachable(address)
        ray.init(address=address, runtime_env={"py_modules": _packages(), "excludes": ["__pycache__/", "*.pyc"]},
                 **quiet)
    except (RayClusterError, RayUsageError):
        raise
    except Exception as e:
        what = f"--ray {quote(address)}: cannot join the Ray cluster" if address else \
            "--ray: cannot start a local Ray runtime"
        raise RayClusterError(f"{what}: {_one_line(e)}") from None


def _run_task(inputs: LoadedInputs, opts: SweepOptions, strategy: str, config: ProfileConfig,
              seed: int) -> dict[str, Any]:
    """One run in a Ray worker, on the driver's inputs rather than on files the worker may not have."""
    adopt_inputs(opts, inputs)
    return run_one(opts, strategy, config, seed)


def _result(ray: ModuleType, ref: Any, run: tuple[str, int]) -> dict[str, Any]:
    """A finished task's record; a run's own error comes out as itself, Ray's as ``RayClusterError``."""
    try:
        rec: dict[str, Any] = ray.get(ref)
        return rec
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
            raise cause from None
        raise RayClusterError(f"--ray: {run[0]} seed {run[1]} failed on the cluster: {_one_line(e)}") from None
    except ray.exceptions.RayError as e:
        raise RayClusterError(f"--ray: {run[0]} seed {run[1]} failed on the cluster: {_one_line(e)}") from None


@contextlib.contextmanager
def _cluster_errors(ray: ModuleType) -> Iterator[None]:
    """Ray's own failures (a lost connection to the cluster, a dead runtime) as ``RayClusterError``."""
    try:
        yield
    except (ray.exceptions.RayError, ConnectionError) as e:
        raise RayClusterError(f"--ray: the Ray cluster failed: {_one_line(e)}") from None


@contextlib.contextmanager
def _quiet_stderr_fd() -> Iterator[None]:
    """File descriptor 2 to /dev/null meanwhile. Ray's C++ core writes there directly, not through
    ``sys.stderr``: leaving Ray with tasks in flight logs a line for each task it fails on the way
    out, where the command's own line about the interrupt is to be the only one."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_on_ray(*, opts: SweepOptions, todo: Sequence[tuple[str, ProfileConfig, int]], jobs: int, address: str,
               record: Callable[[dict[str, Any]], None]) -> None:
    """Run ``todo`` as Ray tasks (``address`` empty: a local runtime of ``jobs`` CPUs; else the
    cluster there, whose CPUs decide how many run at once), calling ``record`` with each record
    as its task completes. In every case, an interrupt or an error included, the driver leaves Ray
    at the end, which ends the tasks in flight (a local runtime ends too; a cluster keeps running)."""
    ray = _import_ray()
    try:
        _start(ray, address=address, jobs=jobs)
        with _cluster_errors(ray):
            inputs = ray.put(loaded_inputs(opts))
            task = ray.remote(num_cpus=1)(_run_task)
            runs: dict[Any, tuple[str, int]] = {task.remote(inputs, opts, name, cfg, seed): (name, seed)
                                                for name, cfg, seed in todo}
        pending = list(runs)
        while pending:
            with _cluster_errors(ray):
                ready, pending = ray.wait(pending, num_returns=1, timeout=_WAIT_S)
            for ref in ready:
                record(_result(ray, ref, runs[ref]))
    finally:
        # Leaving Ray ends this driver's job, and with it every task in flight: a local runtime
        # stops, and a cluster kills the workers of a finished job. (ray.cancel is not used: a
        # cancel that races with the task's completion aborts the driver in Ray 2.60.)
        with _quiet_stderr_fd():
            try:
                ray.shutdown()
            except Exception:
                pass  # a runtime that died with the interrupt has nothing left to shut down
