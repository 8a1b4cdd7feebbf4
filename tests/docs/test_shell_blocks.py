"""Every ``sh`` block of README.md and docs/*.md runs as a reader would paste it.

The convention (README.md, "Documentation"): a fenced block whose info string is ``sh`` is run
unless the line just before its fence is ``<!-- not run: REASON -->``, REASON saying why (it
needs Docker or a real cluster, or it takes minutes and a named test runs it instead). Blocks
of other languages -- output, YAML, command synopses -- never run.

Per document, its blocks run in order, each in its own ``bash`` with ``set -euo pipefail``,
from the repository root, with the venv's bin first on PATH (``vecsched``, ``kubectl-vecsched``
and the kubectl ``make`` installs), a throw-away HOME, stdin closed, and KUBECONFIG pointing at a
cluster started for the document: ``vecsched apiserver`` (the embedded control plane, its
controllers and :data:`NODES` simulated nodes of 32 CPU / 128Gi / 110 pods) with the PodGroup
CRD applied, and ``vecsched run`` scheduling on it -- so ``kubectl`` in the docs has a cluster
with vecsched in it. What a block exports carries to the later blocks of its document, as it
would in the reader's terminal (its working directory does not: every block starts at the
root). Background jobs a block starts stay up for the later blocks and are killed when the
document ends: each block is a process group of its own, signalled then. A block gets
:data:`BLOCK_TIMEOUT` seconds. A failure names the document and the block's line, and shows the
block, its exit status and the tail of its output. A block that leaves a new file at the top of
the repository (one .gitignore does not cover) fails too, since the test runs in the checkout;
the file is removed, so that a failing run leaves the checkout as it was.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
BIN: Final = Path(sys.executable).parent
DOCUMENTS: Final = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK_TIMEOUT: Final = 90.0
"""Seconds a block may run: the longest run blocks (a Deployment rolled out on the local
cluster, a strategy replay) take about 10 s on the 2-core machine, so a block near this limit
is stuck, or is one to mark as not run and test elsewhere."""
NODES: Final = 4
"""Simulated nodes of the document's cluster: enough for a Deployment to spread."""
TAIL: Final = 40
"""Output lines shown for a failing block."""
SHELL_INFO: Final = "sh"
NOT_RUN: Final = re.compile(r"^<!-- not run: (?P<reason>.*\S)\s*-->$")
_FENCE: Final = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CARRIED_NOT: Final = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
"""Exported names that describe the block's own shell, not what it set up."""
_GRACE: Final = 5.0
"""Seconds between SIGTERM and SIGKILL for a document's background jobs."""


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block: its document, the line of its opening fence (1-based), its info
    string's first word, its text, and the REASON of a ``not run`` marker before it, if any."""

    document: Path
    line: int
    lang: str
    text: str
    not_run: str | None

    @property
    def where(self) -> str:
        doc = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document
        return f"{doc}:{self.line}"


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of a Markdown document (CommonMark fences: three or more backticks or
    tildes, indented up to three spaces, closed by a fence of the same character at least as
    long; the content's indentation up to the opening fence's is removed)."""
    lines = document.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), len(lines))
        body = [ln[min(indent, len(ln) - len(ln.lstrip(" "))):] for ln in lines[i + 1:end]]
        marker = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
        info = m["info"].strip()
        out.append(Block(document=document, line=i + 1, lang=info.split()[0] if info else "",
                         text="\n".join(body) + "\n", not_run=marker["reason"] if marker else None))
        i = end + 1
    return out


def markers(document: Path) -> list[tuple[int, str]]:
    """Every ``<!-- not run ... -->`` line (1-based line numbers), well-formed or not."""
    return [(n, ln.strip()) for n, ln in enumerate(document.read_text().splitlines(), 1)
            if ln.strip().startswith("<!-- not run")]


def runnable(document: Path) -> list[Block]:
    return [b for b in blocks(document) if b.lang == SHELL_INFO and b.not_run is None]


# ---- the document's cluster ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cluster:
    kubeconfig: Path
    logs: tuple[Path, ...]

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name} (last lines)\n" + "\n".join(p.read_text(errors="replace").splitlines()[-10:])
                         for p in self.logs if p.exists())


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size):
        if proc.poll() is not None:
            raise AssertionError(f"vecsched apiserver exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"vecsched apiserver wrote no kubeconfig in {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def cluster(work: Path, env: dict[str, str]) -> Iterator[Cluster]:
    """``vecsched apiserver`` on a free port with the PodGroup CRD, and ``vecsched run`` on it
    (metrics on a free port, so that a document may start its own scheduler on 10259)."""
    kubeconfig = work / "cluster.kubeconfig"
    api_log, run_log = work / "apiserver.log", work / "scheduler.log"
    with open(api_log, "wb") as out:
        api = subprocess.Popen([str(BIN / "vecsched"), "apiserver", "--port", "0", "--nodes", str(NODES),
                                "--kubeconfig-out", str(kubeconfig)],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        _wait_for_file(kubeconfig, api, api_log, timeout=30)
        # PodGroups are watched only if their CRD is served when the scheduler starts.
        crd = subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), "apply", "-f",
                              str(ROOT / "deploy" / "crds" / "scheduling.x-k8s.io_podgroups.yaml")],
                             capture_output=True, text=True, env=env, timeout=30)
        assert crd.returncode == 0, crd.stderr
        with open(run_log, "wb") as out:
            sched = subprocess.Popen([str(BIN / "vecsched"), "run", "--kubeconfig", str(kubeconfig),
                                      "--no-leader-elect", "--bind-address", "127.0.0.1", "--port", "0"],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
        try:
            yield Cluster(kubeconfig=kubeconfig, logs=(api_log, run_log))
        finally:
            _stop(sched)
    finally:
        _stop(api)


# ---- running blocks --------------------------------------------------------------------------


_PRELUDE: Final = """\
set -euo pipefail
. "$VECSCHED_DOCS_ENV"
trap 'export -p > "$VECSCHED_DOCS_ENV.next"' EXIT
cd "$VECSCHED_DOCS_ROOT"
"""
"""Run before each block: the exports of the blocks before it, and, on exit, its own saved."""


def _carried(exports: str) -> str:
    """``export -p`` output without the shell's own variables and the runner's."""
    keep = []
    for line in exports.splitlines(keepends=True):
        m = re.match(r"declare -\S+ ([A-Za-z_][A-Za-z0-9_]*)", line)
        if m is not None and (m[1] in _CARRIED_NOT or m[1].startswith("VECSCHED_DOCS_")):
            continue
        keep.append(line)
    return "".join(keep)


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _top_level(root: Path) -> set[str]:
    """The names at the top of ``root`` that its .gitignore does not cover."""
    ignore = root / ".gitignore"
    patterns = [p.strip().rstrip("/") for p in (ignore.read_text().splitlines() if ignore.exists() else [])
                if p.strip() and not p.startswith("#")]
    return {n for n in os.listdir(root) if not _ignored(n, patterns)}


@dataclass(frozen=True, slots=True)
class Outcome:
    block: Block
    status: int | None
    """The exit status; None when the block timed out."""
    timeout: float
    output: str
    left: tuple[str, ...]
    """Files it left at the top of the repository."""

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.left

    def report(self) -> str:
        what = (f"timed out after {self.timeout:g} s" if self.status is None else f"exit status {self.status}")
        if self.status == 0 and self.left:
            what = (f"left {', '.join(self.left)} at the top of the repository, removed by the test "
                    "(write under /tmp, or remove it in the block)")
        tail = "\n".join(self.output.splitlines()[-TAIL:])
        return (f"{self.block.where}: {what}\n--- block\n{self.block.text.rstrip()}\n"
                f"--- output (last {TAIL} lines)\n{tail}")


def run_block(block: Block, *, env: dict[str, str], work: Path, root: Path, timeout: float,
              groups: list[int]) -> Outcome:
    """Run one block from ``root`` in its own bash and process group (recorded in ``groups``)."""
    script = work / f"block-{block.line}.sh"
    script.write_text(_PRELUDE + block.text)
    log = work / f"block-{block.line}.out"
    state = Path(env["VECSCHED_DOCS_ENV"])
    before = _top_level(root)
    with open(log, "wb") as out:
        # Output to a file, not a pipe: background jobs keep it open after the block ends.
        proc = subprocess.Popen(["bash", str(script)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    groups.append(proc.pid)
    try:
        status: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        status = None
    nxt = Path(f"{state}.next")
    if status == 0 and nxt.exists():
        state.write_text(_carried(nxt.read_text()))
    nxt.unlink(missing_ok=True)
    left = tuple(sorted(_top_level(root) - before))
    for name in left:  # the test must not leave the checkout dirty; the failure names them
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return Outcome(block=block, status=status, timeout=timeout, output=log.read_text(errors="replace"), left=left)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def end_groups(groups: list[int]) -> None:
    """SIGTERM to every block's process group, SIGKILL to those still there after the grace."""
    live = [g for g in groups if _signal_group(g, signal.SIGTERM)]
    deadline = time.monotonic() + _GRACE
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [g for g in live if _group_exists(g)]
    for g in live:
        _signal_group(g, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class DocumentRun:
    outcomes: tuple[Outcome, ...]
    cluster_logs: str
    """The tails of the cluster's logs (API server, scheduler), for a failure's message."""


def run_document(document: Path, work: Path, *, root: Path = ROOT, timeout: float = BLOCK_TIMEOUT) -> DocumentRun:
    """Run the document's runnable blocks from ``root`` on a cluster of its own."""
    home = work / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "VIRTUAL_ENV", "PYTHONPATH")}
    env = {**base, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
           "VECSCHED_DOCS_ROOT": str(root), "VECSCHED_DOCS_ENV": str(work / "exports")}
    outcomes: list[Outcome] = []
    groups: list[int] = []
    with cluster(work, env) as c:
        (work / "exports").write_text(f"declare -x KUBECONFIG={shlex.quote(str(c.kubeconfig))}\n")
        try:
            for block in runnable(document):
                outcomes.append(run_block(block, env=env, work=work, root=root, timeout=timeout, groups=groups))
        finally:
            end_groups(groups)
        logs = c.log_tails()
    return DocumentRun(outcomes=tuple(outcomes), cluster_logs=logs)


# ---- the tests -----------------------------------------------------------------------------


def _doc_id(document: Path) -> str:
    return str(document.relative_to(ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=_doc_id)
def test_not_run_markers_are_well_formed(document: Path) -> None:
    """Each ``not run`` marker gives a reason and sits on the line just before an sh fence."""
    before_sh = {b.line - 1 for b in blocks(document) if b.lang == SHELL_INFO}
    wrong = [f"{_doc_id(document)}:{n}: {text!r}" for n, text in markers(document)
             if NOT_RUN.match(text) is None or n not in before_sh]
    assert not wrong, ("a marker is `<!-- not run: REASON -->` on the line just before a ```sh fence:\n"
                       + "\n".join(wrong))


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if runnable(d)], ids=_doc_id)
def test_shell_blocks_run(document: Path, tmp_path: Path) -> None:
    run = run_document(document, tmp_path)
    failed = [o for o in run.outcomes if not o.ok]
    assert not failed, (f"{len(failed)} of {len(run.outcomes)} sh blocks of {_doc_id(document)} failed "
                        "(mark a block that cannot run here `<!-- not run: REASON -->`):\n\n"
                        + "\n\n".join(o.report() for o in failed) + "\n\n" + run.cluster_logs)


# ---- the runner's own behaviour ------------------------------------------------------------

F: Final = "```"

# (markdown, expected blocks as (line, lang, text, not_run))
PARSE_CASES: Final[list[tuple[str, str, list[tuple[int, str, str, str | None]]]]] = [
    ("plain-sh", f"text\n{F}sh\necho hi\n{F}\n", [(2, "sh", "echo hi\n", None)]),
    # the marker is the line just before the fence
    ("marked", f"<!-- not run: needs Docker -->\n{F}sh\nmake image\n{F}\n",
     [(2, "sh", "make image\n", "needs Docker")]),
    # a blank line between marker and fence: the marker is not "just before", the block runs
    ("marker-too-far", f"<!-- not run: needs Docker -->\n\n{F}sh\nmake image\n{F}\n",
     [(3, "sh", "make image\n", None)]),
    ("other-languages", f"{F}yaml\na: 1\n{F}\n{F}\nvecsched run [--port P]\n{F}\n{F}shell\nls\n{F}\n",
     [(1, "yaml", "a: 1\n", None), (4, "", "vecsched run [--port P]\n", None), (7, "shell", "ls\n", None)]),
    # the info string's first word
    ("info-words", f"{F}sh title=x\nls\n{F}\n", [(1, "sh", "ls\n", None)]),
    # a fence in a list item: its indentation is removed from the content
    ("indented", f"- step\n  {F}sh\n  echo a\n    echo b\n  {F}\n", [(2, "sh", "echo a\n  echo b\n", None)]),
    # a longer fence holds a shorter one; tildes work as backticks do
    ("nested", f"````md\n{F}sh\nls\n{F}\n````\n~~~sh\npwd\n~~~\n",
     [(1, "md", f"{F}sh\nls\n{F}\n", None), (6, "sh", "pwd\n", None)]),
    # an unclosed fence runs to the end of the document
    ("unclosed", f"{F}sh\necho a\n", [(1, "sh", "echo a\n", None)]),
]


@pytest.mark.parametrize(("markdown", "expected"), [(m, e) for _, m, e in PARSE_CASES],
                         ids=[name for name, _, _ in PARSE_CASES])
def test_blocks_are_parsed(markdown: str, expected: list[tuple[int, str, str, str | None]], tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(markdown)
    assert [(b.line, b.lang, b.text, b.not_run) for b in blocks(doc)] == expected


# (markdown, the markers test_not_run_markers_are_well_formed refuses, by line)
MARKER_CASES: Final[list[tuple[str, str, list[int]]]] = [
    ("good", f"<!-- not run: needs a real cluster -->\n{F}sh\nkubectl get nodes\n{F}\n", []),
    ("no-reason", f"<!-- not run -->\n{F}sh\nls\n{F}\n", [1]),
    ("empty-reason", f"<!-- not run:   -->\n{F}sh\nls\n{F}\n", [1]),
    # only sh blocks run, so a marker elsewhere is a mistake
    ("before-yaml", f"<!-- not run: output -->\n{F}yaml\na: 1\n{F}\n", [1]),
    ("before-text", f"<!-- not run: why -->\ntext\n{F}sh\nls\n{F}\n", [1]),
]


@pytest.mark.parametrize(("markdown", "refused"), [(m, r) for _, m, r in MARKER_CASES],
                         ids=[name for name, _, _ in MARKER_CASES])
def test_marker_check(markdown: str, refused: list[int], tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(markdown)
    before_sh = {b.line - 1 for b in blocks(doc) if b.lang == SHELL_INFO}
    assert [n for n, text in markers(doc) if NOT_RUN.match(text) is None or n not in before_sh] == refused


# (block, exit status or None for a timeout, files left at the top, a line its output holds)
RUN_CASES: Final[list[tuple[str, int | None, tuple[str, ...], str]]] = [
    # starts a background job and exports a variable; changes directory
    ('export GREETING=hello\nsleep 300 &\necho $! > "$HOME/bg.pid"\ncd /\necho started', 0, (), "started"),
    # the export carried, the directory did not; a fresh HOME; the venv's bin first on PATH
    ('test "$GREETING" = hello\ntest "$PWD" = "$VECSCHED_DOCS_ROOT"\ntest ! -e "$HOME/.bashrc"\n'
     'test "$(command -v vecsched)" = "$(dirname "$(command -v kubectl)")/vecsched"\necho carried', 0, (), "carried"),
    # the document's cluster: NODES nodes, the PodGroup CRD, vecsched placing a pod
    ("kubectl get nodes -o name | wc -l\nkubectl get crd podgroups.scheduling.x-k8s.io -o name\n"
     "kubectl run p --image=registry.k8s.io/pause:3.9 --overrides='{\"spec\": {\"schedulerName\": \"vecsched\"}}'\n"
     "kubectl wait --for=condition=PodScheduled pod/p --timeout=20s", 0, (), "pod/p condition met"),
    # a failing command stops the block with its status; both streams are kept
    ("echo to-stdout\necho to-stderr >&2\nexit 3\necho never", 3, (), "to-stderr"),
    ("false | true\necho never", 1, (), ""),                    # pipefail
    ('echo "$UNDEFINED_IN_DOCS"', 1, (), "UNDEFINED_IN_DOCS: unbound variable"),  # nounset
    ("touch left-behind.txt\nmkdir left-dir", 0, ("left-behind.txt", "left-dir"), ""),  # left in the checkout
    ("sleep 30", None, (), ""),                                 # killed at the (test's 3 s) timeout
    ("echo after the failures", 0, (), "after the failures"),   # later blocks still run
]


def test_runner(tmp_path: Path) -> None:
    root, work = tmp_path / "repo", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    doc = root / "doc.md"
    doc.write_text("".join(f"{F}sh\n{block}\n{F}\n\n" for block, _, _, _ in RUN_CASES))
    t0 = time.monotonic()
    run = run_document(doc, work, root=root, timeout=3.0)
    assert [(o.status, o.left) for o in run.outcomes] == [(s, left) for _, s, left, _ in RUN_CASES], \
        "\n\n".join(o.report() for o in run.outcomes)
    for outcome, (_, _, _, line) in zip(run.outcomes, RUN_CASES):
        assert line in outcome.output, outcome.report()
        assert "never" not in outcome.output
    assert run.outcomes[2].output.splitlines()[0].strip() == str(NODES)
    # the background job of the first block was killed when the document ended
    pid = int((work / "home" / "bg.pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert "timed out after 3 s" in run.outcomes[7].report()
    assert sorted(os.listdir(root)) == ["doc.md"]  # what the blocks left was removed
    assert time.monotonic() - t0 < 30
