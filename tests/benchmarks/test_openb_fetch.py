"""``make openb`` (``python -m benchmarks.openb_fetch``) fetches the trace and the FGD results verified.

Each case runs the module as a child process, as ``make openb`` does, against a loopback HTTP
server that serves three small stand-ins for the trace's files (two under the trace URL, one under
the results URL) and counts the requests it gets; the test writes the sums file for them. Failures
must end in one line, the right exit code and no traceback, and leave no wrong or partial file
under a real name.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from benchmarks.openb_fetch import DEFAULT_SUMS, Entry, url_for
from tests.http_support import serve

ROOT = Path(__file__).resolve().parents[2]
NODES = "openb_node_list_gpu_node.csv"
PODS = "openb_pod_list_default.csv"
ALLO = "expected_results/analysis_allo_discrete.csv"
FILES = {
    NODES: b"sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0227,64000,262144,8,G2\n",
    PODS: b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\nopenb-pod-0017,12000,16384,1,1000\n",  # 44 + 34 = 78 bytes
    ALLO: b"policy,tune,seed,total_gpu_occupied\nFGD,1.3,42,6021.3\n",
}
"""In the sums file's order: the fetch goes node list, pod list, results."""
SUMS = {path: hashlib.sha256(data).hexdigest() for path, data in FILES.items()}
PROGRESS = re.compile(r"make openb: \[\d/3\] \S+: (present|downloaded [\d.]+ KiB), SHA-256 matches.*")


@dataclass
class Server:
    """What the loopback server serves and what it was asked for."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=lambda: dict(FILES))
    behaviour: dict[str, str] = field(default_factory=dict)
    """path -> "cut" (the first half of the body, then the connection closes), "stall" (the same
    half, then nothing until the test ends), "silent" (no answer until the test ends)."""
    requests: list[str] = field(default_factory=list)
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()

    async def answer(path: str, request: web.Request) -> web.StreamResponse:
        state.requests.append(path)
        how = state.behaviour.get(path)
        if how == "silent":
            await state.release.wait()
        if path not in state.files:
            raise web.HTTPNotFound()
        data = state.files[path]
        if how not in ("cut", "stall"):
            return web.Response(body=data)
        resp = web.StreamResponse()
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[:len(data) // 2])
        if how == "stall":
            state.stalled.set()
            await state.release.wait()
        assert request.transport is not None
        request.transport.close()
        return resp

    async def trace(request: web.Request) -> web.StreamResponse:
        return await answer(request.match_info["name"], request)

    async def results(request: web.Request) -> web.StreamResponse:
        return await answer(f"expected_results/{request.match_info['name']}", request)

    async with serve(("GET", "/trace/{name}", trace), ("GET", "/results/{name}", results), access_log=False) as url:
        state.url = url
        try:
            yield state
        finally:
            state.release.set()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}  # loopback, directly
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.openb_fetch", "--dest", str(tmp_path / "openb"), *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _run(tmp_path: Path, *args: str) -> tuple[int, str, list[str]]:
    proc = await _start(tmp_path, *args)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode().splitlines()


def _write_sums(tmp_path: Path) -> Path:
    sums = tmp_path / "openb.sha256"
    sums.write_text("".join(f"{digest}  {path}\n" for path, digest in SUMS.items()))
    return sums


def _urls(url: str) -> list[str]:
    return ["--trace-url", f"{url}/trace", "--results-url", f"{url}/results/"]


def _dest_files(tmp_path: Path) -> dict[str, bytes]:
    """Every file under DEST (hidden temporary files too) by path relative to it."""
    dest = tmp_path / "openb"
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


def _one_error(err: list[str]) -> str:
    """The error line: stderr is progress lines, then exactly one other line, no traceback."""
    assert not any("Traceback" in line for line in err), err
    *progress, last = err
    assert all(PROGRESS.fullmatch(line) for line in progress), err
    assert not PROGRESS.fullmatch(last)
    return last


_NEEDED = "; the trace is needed only by the benchmarks and the README's FGD command, never by the tests"
_TAMPERED = b"policy,tune,seed,total_gpu_occupied\nFGD,1.3,42,9999.9\n"


@pytest.mark.parametrize(("before", "served", "code", "asked", "summary", "after"), [
    # nothing in DEST: all three fetched, each verified
    pytest.param({}, {}, 0, [NODES, PODS, ALLO], "0 files present, 3 downloaded", FILES, id="fresh"),
    # all three there with the right sums: no request at all
    pytest.param(FILES, {}, 0, [], "3 files present, 0 downloaded", FILES, id="second-run"),
    # the pod list there but changed: only it is fetched again, and replaced
    pytest.param({**FILES, PODS: b"name\nstale\n"}, {}, 0, [PODS], "2 files present, 1 downloaded", FILES,
                 id="wrong-file-refetched"),
    # a partial pod list (its first half): fetched again
    pytest.param({NODES: FILES[NODES], PODS: FILES[PODS][:20]}, {}, 0, [PODS, ALLO],
                 "1 files present, 2 downloaded", FILES, id="partial-file-refetched"),
    # the server sends other bytes for the results table: the two others are kept, it is absent
    pytest.param({}, {ALLO: _TAMPERED}, 1, [NODES, PODS, ALLO], None,
                 {NODES: FILES[NODES], PODS: FILES[PODS]}, id="served-mismatch"),
    # a stale results table, and the new download does not match either: neither stays
    pytest.param({**FILES, ALLO: b"stale"}, {ALLO: _TAMPERED}, 1, [ALLO], None,
                 {NODES: FILES[NODES], PODS: FILES[PODS]}, id="stale-then-mismatch"),
])
async def test_fetch(server: Server, tmp_path: Path, before: dict[str, bytes], served: dict[str, bytes],
                     code: int, asked: list[str], summary: str | None, after: dict[str, bytes]) -> None:
    for path, data in before.items():
        (tmp_path / "openb" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "openb" / path).write_bytes(data)
    server.files.update(served)
    rc, out, err = await _run(tmp_path, "--sums", str(_write_sums(tmp_path)), *_urls(server.url))
    assert rc == code, err
    assert server.requests == asked
    assert _dest_files(tmp_path) == after  # no temporary file left either
    if summary is not None:
        assert out == f"{summary} in {tmp_path / 'openb'}\n"
        assert all(PROGRESS.fullmatch(line) for line in err) and len(err) == 3, err
    else:
        assert out == ""
        assert _one_error(err) == (
            f"make openb: analysis_allo_discrete.csv from {server.url}/results/analysis_allo_discrete.csv "
            f"has SHA-256 {hashlib.sha256(_TAMPERED).hexdigest()}, expected {SUMS[ALLO]}; the download was removed")


@pytest.mark.parametrize(("case", "flags", "asked", "kept", "error"), [
    # the pod list is missing upstream: the node list (fetched first) stays, the results are not asked for
    pytest.param("404", [], [NODES, PODS], [NODES],
                 "cannot download {url}/trace/openb_pod_list_default.csv: HTTP 404 Not Found" + _NEEDED, id="http-404"),
    # nothing listens: the first request fails, stderr is that one line
    pytest.param("closed", [], [], [],
                 "cannot download {url}/trace/openb_node_list_gpu_node.csv: Connection refused" + _NEEDED,
                 id="closed-port"),
    # the pod list's body stops half-way: 78 bytes promised, 78 // 2 = 39 sent, 39 more expected
    pytest.param("cut", [], [NODES, PODS], [NODES],
                 "cannot download {url}/trace/openb_pod_list_default.csv: the connection closed before the end "
                 "of the body, 39 more were expected" + _NEEDED,
                 id="connection-cut"),
    # no answer at all for the pod list within --timeout 0.5
    pytest.param("silent", ["--timeout", "0.5"], [NODES, PODS], [NODES],
                 "cannot download {url}/trace/openb_pod_list_default.csv: no answer within 0.5 s" + _NEEDED,
                 id="timeout"),
])
async def test_download_fails(server: Server, tmp_path: Path, case: str, flags: list[str], asked: list[str],
                              kept: list[str], error: str) -> None:
    url = server.url
    if case == "404":
        del server.files[PODS]
    elif case == "closed":
        url = f"http://127.0.0.1:{_closed_port()}"
    else:
        server.behaviour[PODS] = case
    rc, out, err = await _run(tmp_path, "--sums", str(_write_sums(tmp_path)), *_urls(url), *flags)
    assert rc == 1
    assert out == ""
    assert _one_error(err) == "make openb: " + error.format(url=url)
    assert len(err) == 1 + len(kept)  # a progress line per file kept, then the error
    assert server.requests == asked
    assert _dest_files(tmp_path) == {p: FILES[p] for p in kept}


async def test_ctrl_c(server: Server, tmp_path: Path) -> None:
    """SIGINT while the pod list streams: exit 130, one line, the node list kept, nothing partial."""
    server.behaviour[PODS] = "stall"
    proc = await _start(tmp_path, "--sums", str(_write_sums(tmp_path)), *_urls(server.url))
    await asyncio.wait_for(server.stalled.wait(), 30)
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130
    assert _one_error(err.decode().splitlines()) == (
        f"make openb: interrupted; the files verified so far stay in {tmp_path / 'openb'}, run it again to fetch the rest")
    assert _dest_files(tmp_path) == {NODES: FILES[NODES]}  # the pod list's temporary file is gone


_HEX = "0123456789abcdef" * 4  # 64 hex digits


@pytest.mark.parametrize(("sums", "error"), [
    # a sum of 63 digits: the line is 63 + 2 + 28 (the name) = 93 characters, its first 40 quoted
    pytest.param(f"{_HEX[:63]}  {NODES}\n", f"line 1: expected '<64 hex digits>  <path>' as sha256sum writes it, "
                 f"got '{_HEX[:40]}'... (93 characters)", id="short-sum"),
    pytest.param(f"{_HEX}  ../{NODES}\n", f"line 1: the path must be relative to DEST, without '.' or '..', "
                 f"got '../{NODES}'", id="leaves-dest"),
    pytest.param(f"{_HEX}  /etc/{NODES}\n", f"line 1: the path must be relative to DEST, without '.' or '..', "
                 f"got '/etc/{NODES}'", id="absolute"),
    pytest.param(f"{_HEX}  {NODES}\n\n{_HEX}  {NODES}\n", f"line 3: '{NODES}' is already listed on line 1",
                 id="duplicate"),
    pytest.param("\n", ": lists no file", id="empty"),
])
async def test_bad_sums_file(tmp_path: Path, sums: str, error: str) -> None:
    """A broken sums file: exit 2, one line naming the file and line, nothing fetched (no URL can be reached)."""
    path = tmp_path / "openb.sha256"
    path.write_text(sums)
    rc, out, err = await _run(tmp_path, "--sums", str(path), *_urls(f"http://127.0.0.1:{_closed_port()}"))
    assert (rc, out) == (2, "")
    assert err == [f"make openb: {path}{' ' if error.startswith('line') else ''}{error}"]
    assert not (tmp_path / "openb").exists()


@pytest.mark.parametrize(("flags", "error"), [
    pytest.param(["--trace-url", "ftp://example.org/csv"],
                 "argument --trace-url: expected an http:// or https:// URL with a host, got 'ftp://example.org/csv'",
                 id="not-http"),
    pytest.param(["--results-url", "https:///x"],
                 "argument --results-url: expected an http:// or https:// URL with a host, got 'https:///x'",
                 id="no-host"),
    pytest.param(["--timeout", "0"], "argument --timeout: expected seconds in (0, 3600], got '0'", id="timeout-0"),
])
async def test_bad_flags(tmp_path: Path, flags: list[str], error: str) -> None:
    rc, out, err = await _run(tmp_path, *flags)
    assert (rc, out, err) == (2, "", [f"make openb: {error} (see --help)"])


# The 2 node lists and 24 pod lists of cluster-trace-gpu-v2023/csv, and the 3 discrete analysis tables.
_TRACE_FILES = (
    ["openb_node_list_all_node.csv", "openb_node_list_gpu_node.csv"]
    + [f"openb_pod_list_{kind}.csv" for kind in (
        "default",
        "cpu0", "cpu037", "cpu050", "cpu072", "cpu100", "cpu200", "cpu235", "cpu250", "cpu300",  # 9
        "gpushare20", "gpushare40", "gpushare60", "gpushare80", "gpushare100",  # 5
        "gpuspec05", "gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33",  # 5
        "multigpu20", "multigpu30", "multigpu40", "multigpu50")]  # 4: 1 + 9 + 5 + 5 + 4 = 24
)
_RESULT_FILES = [f"expected_results/analysis_{kind}_discrete.csv" for kind in ("allo", "frag", "frag_ratio")]


def test_shipped_sums_file() -> None:
    """benchmarks/openb.sha256 lists exactly the 29 files, in the layout benchmarks read, with 64-hex sums."""
    lines = DEFAULT_SUMS.read_text().splitlines()
    paths = [line[66:] for line in lines]
    assert sorted(paths) == sorted(_TRACE_FILES + _RESULT_FILES) and len(paths) == 2 + 24 + 3
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in lines)
    assert len({line[:64] for line in lines}) == 29  # 29 different contents


@pytest.mark.parametrize(("path", "url"), [
    pytest.param(PODS, "T/openb_pod_list_default.csv", id="trace"),
    pytest.param(ALLO, "R/analysis_allo_discrete.csv", id="results"),
    # a name with a space is percent-encoded
    pytest.param("openb pods.csv", "T/openb%20pods.csv", id="encoded"),
])
def test_url_for(path: str, url: str) -> None:
    assert url_for(Entry(path=path, sha256=_HEX), trace_url="T/", results_url="R") == url
