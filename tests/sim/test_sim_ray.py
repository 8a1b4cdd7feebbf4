"""``vecsched sim --ray [ADDRESS]``: the same runs as Ray tasks, on a local Ray runtime or on an
existing cluster (a ``ray start --head`` on loopback, one per module), give the records that
local worker processes give, resume from a runs file, stop on Ctrl-C saying what is kept, and
fail in one line without Ray or without a cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import BIN, ROOT, interrupt_after_first_run, small_workload, write

from benchmarks.sim.sweep import RUNS_FILE
from scheduler.cli import main

CLUSTER = "- {count: 2, cpu: 10, memory: 64Gi}\n"
# 20 cpu arrive on a 20-cpu cluster; --inflate 1.5 clones pods of 3..7 cpu, drawn by the seed,
# until 30 arrive: at least 2 clones (20 + 7 = 27 < 30), so every run replays 6 pods or more.
WORKLOAD = "name,cpu,memory,arrival,departure\np5a,5,1Gi,0,\np3,3,1Gi,0,\np7,7,1Gi,0,\np5b,5,1Gi,0,\n"
STRATEGIES, SEEDS = ("FirstFit", "Random"), 3
# Wall-clock measurements of the replay in whichever process ran it; everything else a run
# records (its key included) comes from the inputs and the seed.
TIMING = ("decision_us", "seconds")
RAY_CLI = shutil.which("ray", path=str(BIN))
MISSING = "vecsched sim: --ray needs Ray: pip install 'vecsched[ray]'\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def auth_off() -> Iterator[None]:
    """Ray's token authentication off for this module's runtimes and drivers, so that they do not
    depend on (or write) a token in the home directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        yield


@pytest.fixture(scope="module")
def head(auth_off: None) -> Iterator[dict[str, str]]:
    """A Ray cluster of 2 CPUs on loopback (``ray start --head --block``, ended by its process id):
    its GCS address, its Ray Client address, and the session its processes run in."""
    assert RAY_CLI, "the ray command is installed with vecsched's test extra"
    gcs, client, agent = _free_port(), _free_port(), _free_port()
    temp = tempfile.mkdtemp(prefix="vr", dir="/tmp")  # Ray's socket paths must stay short
    log = Path(temp) / "head.log"
    with log.open("w") as out:
        proc = subprocess.Popen([RAY_CLI, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                                 f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
                                 "--num-cpus=2", "--object-store-memory=100000000",  # Ray's minimum is 75 MB
                                 "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ray start took over 90 s"
            try:
                socket.create_connection(("127.0.0.1", client), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield {"gcs": f"127.0.0.1:{gcs}", "client": f"ray://127.0.0.1:{client}", "session": str(proc.pid)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever it left in its own process group
            except ProcessLookupError:
                pass
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("ray-inputs")
    return write(d / "cluster.yaml", CLUSTER), write(d / "workload.csv", WORKLOAD)


def _argv(inputs: tuple[str, str], out: Path, *extra: str) -> list[str]:
    return ["sim", "--cluster", inputs[0], "--workload", inputs[1], "--strategies", ",".join(STRATEGIES),
            "--seeds", str(SEEDS), "--inflate", "1.5", "--shuffle", "--out", str(out), "--no-plots", "--quiet",
            *extra]


def _records(out: Path, *, cut: int | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs of ``out``'s runs file without their timing, by (strategy, seed); ``cut``: the
    index of a line an interrupted write left unfinished, which the sweep skips."""
    lines = [x for i, x in enumerate((out / RUNS_FILE).read_text().splitlines()) if i != cut]
    recs = [json.loads(line) for line in lines]
    by_run = {(r["strategy"], r["seed"]): {k: v for k, v in r.items() if k not in TIMING} for r in recs}
    assert len(by_run) == len(lines)  # no run twice
    return by_run


@pytest.fixture(scope="module")
def processes(inputs: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep run by 2 local worker processes: the reference."""
    out = tmp_path_factory.mktemp("processes")
    assert main(_argv(inputs, out, "--jobs", "2")) == 0
    return out


@pytest.mark.parametrize("where", [
    pytest.param(None, id="local-runtime"),
    pytest.param("gcs", id="cluster-gcs-address"),
    pytest.param("client", id="cluster-ray-client"),
])
def test_records_are_those_of_local_processes(inputs: tuple[str, str], processes: Path, head: dict[str, str],
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              where: str | None) -> None:
    ray_flag = ["--ray"] if where is None else ["--ray", head[where]]
    assert main(_argv(inputs, tmp_path, "--jobs", "2", *ray_flag)) == 0
    assert capsys.readouterr().err == ""
    expected = _records(processes)
    # 2 strategies x 3 seeds, each with at least 6 pods (see WORKLOAD), and seeds that draw differently.
    assert sorted(expected) == [(s, n) for s in STRATEGIES for n in range(SEEDS)]
    assert all(r["pods"] >= 6 for r in expected.values())
    assert len({json.dumps(expected[("Random", n)], sort_keys=True) for n in range(SEEDS)}) > 1
    assert _records(tmp_path) == expected


@pytest.mark.parametrize(("kept", "cut"), [
    pytest.param(1, False, id="one-of-six-kept"),
    # An interrupted write left half a line after two runs: the two are kept, the half line rerun.
    pytest.param(2, True, id="two-kept-and-a-cut-line"),
    pytest.param(6, False, id="all-kept-nothing-to-run"),
])
def test_resume_runs_only_the_rest(inputs: tuple[str, str], processes: Path, head: dict[str, str], tmp_path: Path,
                                   kept: int, cut: bool) -> None:
    lines = (processes / RUNS_FILE).read_text().splitlines(keepends=True)
    before = "".join(lines[:kept]) + (lines[kept][:10] if cut else "")
    tmp_path.joinpath(RUNS_FILE).write_text(before)
    assert main(_argv(inputs, tmp_path, "--ray", head["gcs"])) == 0
    after = (tmp_path / RUNS_FILE).read_text()
    # The kept lines stay as they were; 6 - kept runs are appended (after a newline ending a cut line).
    assert after.startswith(before)
    appended = after[len(before):].removeprefix("\n" if cut else "").splitlines()
    assert len(appended) == 6 - kept
    done_before = {(json.loads(x)["strategy"], json.loads(x)["seed"]) for x in lines[:kept]}
    assert {(json.loads(x)["strategy"], json.loads(x)["seed"]) for x in appended} == \
        {(s, n) for s in STRATEGIES for n in range(SEEDS)} - done_before
    assert _records(tmp_path, cut=kept if cut else None) == _records(processes)


@pytest.mark.parametrize(("address", "code", "message"), [
    # Nothing listens on a port just freed: the address is an address, but no cluster answers.
    pytest.param("127.0.0.1:{closed}", 1, "--ray '127.0.0.1:{closed}': cannot reach the Ray cluster: Connection refused",
                 id="no-cluster-at-gcs-address"),
    pytest.param("ray://127.0.0.1:{closed}", 1,
                 "--ray 'ray://127.0.0.1:{closed}': cannot reach the Ray cluster: Connection refused",
                 id="no-cluster-at-client-address"),
    pytest.param("head:port", 2, "--ray: expected [ray://]HOST[:PORT] or auto, got 'head:port'", id="not-an-address"),
])
def test_bad_address_one_line(inputs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              address: str, code: int, message: str) -> None:
    closed = _free_port()
    out = tmp_path / "out"
    assert main(_argv(inputs, out, "--ray", address.format(closed=closed))) == code
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"vecsched sim: {message.format(closed=closed)}\n")
    assert not out.exists()  # failed before reading the inputs or writing anything


@pytest.mark.parametrize(("ray_flag", "code", "stderr"), [
    pytest.param(["--ray"], 2, MISSING, id="ray-flag-without-ray"),
    pytest.param(["--ray", "ray://head:10001"], 2, MISSING, id="ray-address-without-ray"),
    # Without --ray the sweep never imports Ray: an import would fail here.
    pytest.param([], 0, "", id="no-ray-flag-needs-no-ray"),
])
def test_without_ray_installed(inputs: tuple[str, str], tmp_path: Path, ray_flag: list[str], code: int,
                               stderr: str) -> None:
    # ``sys.modules['ray'] = None`` makes ``import ray`` raise ImportError, as when it is not installed.
    blocked = "import sys; sys.modules['ray'] = None; from scheduler.cli import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", blocked, *_argv(inputs, out, *ray_flag)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (code, stderr)
    assert out.exists() == (code == 0)


def test_ctrl_c_ends_the_tasks_and_says_how_to_resume(head: dict[str, str], tmp_path: Path) -> None:
    # 8 runs of a few tenths of a second each on 2 CPUs: still going when the first is on disk.
    seeds = 8
    workload = small_workload(tmp_path)
    out = tmp_path / "out"
    runs = out / RUNS_FILE
    argv = ["sim", "--cluster", "deploy/examples/sim-cluster.yaml", "--workload", workload, "--strategies", "default",
            "--seeds", str(seeds), "--out", str(out), "--no-plots", "--quiet", "--ray", head["gcs"]]
    _, code, stdout, stderr = interrupt_after_first_run(argv, runs)
    kept = len(runs.read_text().splitlines())
    assert 1 <= kept < seeds
    command = ("vecsched sim --cluster deploy/examples/sim-cluster.yaml "
               f"--workload {workload} --strategies default --seeds {seeds} --out {out} --ray {head['gcs']} "
               "--no-plots --quiet")
    # The runs in flight ended with the command: the cluster killed the workers of its job.
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-s", head["session"], "-f", "ray::_run_task"], capture_output=True).stdout:
        assert time.monotonic() < deadline, "a run of the interrupted sweep still runs on the cluster"
        time.sleep(0.1)
    assert (code, stdout, stderr) == (
        130, "", f"vecsched sim: interrupted: {kept} of {seeds} runs are kept in {runs}; resume with: {command}\n"), stderr
