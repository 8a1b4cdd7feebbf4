"""``make openb``: download Alibaba's GPU trace and the FGD authors' published results, verified.

The strategy lab's FGD comparison (README, "GPU sharing and FGD on the Alibaba trace") replays
``cluster-trace-gpu-v2023`` -- the ``openb_*.csv`` node and pod lists of
github.com/alibaba/clusterdata -- and compares against the ``analysis_*_discrete.csv`` tables
published with the FGD paper's simulator (github.com/hkust-adsl/kubernetes-scheduler-simulator).
Neither is in vecsched's repository; this command fetches both, at pinned commits, into one
directory::

    DEST/openb_node_list_gpu_node.csv, DEST/openb_pod_list_*.csv, ...
    DEST/expected_results/analysis_{allo,frag,frag_ratio}_discrete.csv

What to fetch and each file's SHA-256 come from ``benchmarks/openb.sha256`` (``sha256sum``
format, paths relative to DEST, so ``cd DEST && sha256sum -c ../../openb.sha256`` checks a
copy by hand). A path under ``expected_results/`` is fetched from the results URL, any other
from the trace URL. A file already in DEST with the right sum is not fetched again; one with a
wrong sum is. A download is written to a hidden temporary file beside its target, hashed while
it streams, and renamed to its real name only when the sum matches: a partial or wrong file
never sits under the real name, so an interrupted run leaves only verified files behind and the
next run fetches the rest.

Only the standard library does the fetching (``urllib.request``, ``hashlib``), so the command
needs nothing the project's install does not already have. Exit codes: 0 done, 1 a download or
a write failed (one line says which and why), 2 bad flags or a bad sums file, 130 interrupted.

    python -m benchmarks.openb_fetch [--dest DIR] [--sums FILE] [--trace-url URL]
                                     [--results-url URL] [--timeout S]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, NoReturn

from scoring.safe_input import InputError, clip, quote, read_text

__all__ = [
    "TRACE_URL",
    "RESULTS_URL",
    "RESULTS_DIR",
    "DEFAULT_DEST",
    "DEFAULT_SUMS",
    "TIMEOUT_S",
    "MAX_FILE_BYTES",
    "Entry",
    "FetchError",
    "read_sums",
    "url_for",
    "sha256_of",
    "download",
    "fetch_all",
    "main",
]

TRACE_URL: Final = ("https://raw.githubusercontent.com/alibaba/clusterdata/"
                    "7a6c496e4f4b6ce6150be8f881cb051bf2abff42/cluster-trace-gpu-v2023/csv")
"""Where the ``openb_*.csv`` files are, at the commit whose bytes ``openb.sha256`` lists."""
RESULTS_URL: Final = ("https://raw.githubusercontent.com/hkust-adsl/kubernetes-scheduler-simulator/"
                      "8f3d6417353c5083c6d56617f255fadd8dc306bc/experiments/analysis/expected_results")
"""Where the FGD authors' ``analysis_*_discrete.csv`` tables are, at the commit ``openb.sha256`` lists."""
RESULTS_DIR: Final = "expected_results"
"""The sums file's paths under this directory come from ``RESULTS_URL``; the others from ``TRACE_URL``."""
DEFAULT_DEST: Final = Path("benchmarks/traces/openb")
"""Relative to the working directory: the repository root, where ``make openb`` runs."""
DEFAULT_SUMS: Final = Path(__file__).with_name("openb.sha256")
TIMEOUT_S: Final = 30.0
"""Seconds to wait for a connection and for each read: raw.githubusercontent.com answers within
a second or two; 30 s tolerates a slow link without hanging for ever on a dead one."""
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
"""Largest download accepted. The largest listed file is 2.3 MiB; the cap stops a server that
streams without end before it fills the disk."""
_MAX_SUMS_BYTES: Final = 1024 * 1024
"""Largest sums file read: the real one is 3 KiB (29 lines of about 100 characters)."""
_MAX_URL_CHARS: Final = 2048
"""Longest base URL accepted, a limit common to browsers and proxies."""
_CHUNK: Final = 1024 * 1024
"""Bytes read and hashed at a time: small enough to stay responsive to Ctrl-C, large enough that
the loop costs nothing beside the transfer."""
_USER_AGENT: Final = "vecsched-openb-fetch"
_PREFIX: Final = "make openb"
_NOT_NEEDED: Final = "the trace is needed only by the benchmarks and the README's FGD command, never by the tests"
_LINE: Final = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
"""A ``sha256sum`` line: 64 hex digits, a space, a space (text) or ``*`` (binary), the path."""


@dataclass(frozen=True)
class Entry:
    """One file to fetch: its path relative to DEST (POSIX, no ``..``) and its SHA-256 in lower-case hex."""

    path: str
    sha256: str


class FetchError(Exception):
    """A download or a write failed; the message is the one line to print (without the prefix)."""


def _check_path(text: str, where: str) -> str:
    """``text`` if it is a plain relative POSIX path that stays inside DEST."""
    p = PurePosixPath(text)
    if (p.is_absolute() or "\\" in text or text != p.as_posix()
            or any(part in ("", ".", "..") for part in p.parts)):
        raise InputError(where, f"the path must be relative to DEST, without '.' or '..', got {quote(text)}")
    return text


def read_sums(path: Path) -> list[Entry]:
    """The entries of a ``sha256sum``-format file, in its order. ``InputError`` naming the file
    and line for a malformed line, a path that would leave DEST, a path listed twice or no line;
    ``OSError`` when the file cannot be read."""
    text = read_text(path, max_bytes=_MAX_SUMS_BYTES)
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        m = _LINE.fullmatch(line)
        if m is None:
            raise InputError(where, f"expected '<64 hex digits>  <path>' as sha256sum writes it, got {quote(line)}")
        name = _check_path(m.group(2), where)
        if name in seen:
            raise InputError(where, f"{quote(name)} is already listed on line {seen[name]}")
        seen[name] = number
        entries.append(Entry(path=name, sha256=m.group(1).lower()))
    if not entries:
        raise InputError(str(path), "lists no file")
    return entries


def url_for(entry: Entry, *, trace_url: str, results_url: str) -> str:
    """The URL ``entry`` is fetched from: ``results_url/<name>`` for ``expected_results/<name>``,
    ``trace_url/<path>`` otherwise (each path segment percent-encoded)."""
    head, _, rest = entry.path.partition("/")
    base, path = (results_url, rest) if head == RESULTS_DIR and rest else (trace_url, entry.path)
    return f"{base.rstrip('/')}/{urllib.parse.quote(path)}"


def sha256_of(path: Path) -> str | None:
    """The SHA-256 of the file at ``path`` in lower-case hex, ``None`` when there is none."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def _reason(e: BaseException, *, timeout: float) -> str:
    """One short line saying why a request failed."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {clip(str(e.reason), 80)}"
    if isinstance(e, urllib.error.URLError):
        return _reason(e.reason, timeout=timeout) if isinstance(e.reason, BaseException) else clip(str(e.reason), 160)
    if isinstance(e, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(e, http.client.IncompleteRead):
        more = f", {e.expected:,} more were expected" if e.expected is not None else ""
        return f"the connection closed before the end of the body{more}"
    if isinstance(e, OSError) and e.strerror:
        return clip(e.strerror, 160)
    return clip(str(e) or type(e).__name__, 160)


def _content_length(header: str | None) -> int | None:
    """The body's promised length, ``None`` when the server did not say (or said nonsense)."""
    return int(header) if header is not None and header.isdecimal() else None


def _cannot_download(url: str, e: BaseException, *, timeout: float) -> FetchError:
    return FetchError(f"cannot download {clip(url, 300)}: {_reason(e, timeout=timeout)}; {_NOT_NEEDED}")


def download(url: str, target: Path, *, expected: str, timeout: float = TIMEOUT_S) -> int:
    """Fetch ``url`` into ``target`` through a temporary file beside it, renamed only once its
    SHA-256 is ``expected``; returns the bytes written. ``FetchError`` when the request or a
    write fails or the sum differs; the temporary file is removed in every case but success."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise FetchError(f"cannot write in {target.parent}: {_reason(e, timeout=timeout)}") from None
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    promised = _content_length(response.headers.get("Content-Length"))
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (OSError, http.client.HTTPException) as e:
                            raise _cannot_download(url, e, timeout=timeout) from None
                        if not chunk:
                            break
                        size += len(chunk)
                        if size > MAX_FILE_BYTES:
                            raise FetchError(f"cannot download {clip(url, 300)}: the answer exceeds "
                                             f"{MAX_FILE_BYTES // 2**20} MiB, no listed file is that large; "
                                             f"{_NOT_NEEDED}")
                        h.update(chunk)
                        try:
                            out.write(chunk)
                        except OSError as e:
                            raise FetchError(f"cannot write {tmp}: {_reason(e, timeout=timeout)}") from None
                    if promised is not None and size < promised:
                        # http.client returns a short body at EOF without a word: say so here
                        raise _cannot_download(url, http.client.IncompleteRead(b"", promised - size),
                                               timeout=timeout)
            except (OSError, ValueError, http.client.HTTPException) as e:
                # URLError and HTTPError are OSErrors; ValueError: a URL urllib cannot parse
                raise _cannot_download(url, e, timeout=timeout) from None
        actual = h.hexdigest()
        if actual != expected:
            raise FetchError(f"{target.name} from {clip(url, 300)} has SHA-256 {actual}, expected {expected}; "
                             f"the download was removed")
        os.replace(tmp, target)
        return size
    except OSError as e:
        raise FetchError(f"cannot write {target}: {_reason(e, timeout=timeout)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def fetch_all(entries: Sequence[Entry], *, dest: Path, trace_url: str = TRACE_URL,
              results_url: str = RESULTS_URL, timeout: float = TIMEOUT_S,
              progress: Callable[[str], None] = lambda line: None) -> tuple[int, int]:
    """Make every entry present and verified under ``dest``; returns (files already present,
    files downloaded). Stops at the first failure with ``FetchError``; the files verified until
    then stay. ``progress`` gets one line per file."""
    present = downloaded = 0
    for i, entry in enumerate(entries, start=1):
        target = dest / entry.path
        step = f"[{i}/{len(entries)}] {entry.path}"
        try:
            actual = sha256_of(target)
        except OSError as e:
            raise FetchError(f"cannot read {target}: {_reason(e, timeout=timeout)}") from None
        if actual == entry.sha256:
            present += 1
            progress(f"{step}: present, SHA-256 matches")
            continue
        if actual is not None:
            # wrong content: it goes now, so that it stays gone if the download fails
            try:
                target.unlink()
            except OSError as e:
                raise FetchError(f"cannot remove {target}: {_reason(e, timeout=timeout)}") from None
        url = url_for(entry, trace_url=trace_url, results_url=results_url)
        size = download(url, target, expected=entry.sha256, timeout=timeout)
        downloaded += 1
        again = " (the file there had another SHA-256)" if actual is not None else ""
        progress(f"{step}: downloaded {_size(size)}, SHA-256 matches{again}")
    return present, downloaded


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): exit 2 with ``make openb: <what is wrong>``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{_PREFIX}: {message} (see --help)\n")


def _base_url(text: str) -> str:
    """An http(s) URL with a host, for ``--trace-url`` and ``--results-url``."""
    parts = urllib.parse.urlsplit(text) if len(text) <= _MAX_URL_CHARS else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL with a host, got {quote(text)}")
    return text


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:  # also false for nan; an hour is longer than any sane wait
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 3600], got {quote(text)}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    ap = _Parser(prog="python -m benchmarks.openb_fetch", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                    help=f"directory to put the files in (default {DEFAULT_DEST})")
    ap.add_argument("--sums", type=Path, default=DEFAULT_SUMS,
                    help="sha256sum-format list of the files and their sums (default benchmarks/openb.sha256)")
    ap.add_argument("--trace-url", type=_base_url, default=TRACE_URL,
                    help="base URL of the openb_*.csv files (default: alibaba/clusterdata at a pinned commit)")
    ap.add_argument("--results-url", type=_base_url, default=RESULTS_URL,
                    help="base URL of the expected_results/ files (default: the FGD simulator's repository "
                         "at a pinned commit)")
    ap.add_argument("--timeout", type=_timeout, default=TIMEOUT_S,
                    help=f"seconds to wait for a connection and for each read (default {TIMEOUT_S:g})")
    args = ap.parse_args(argv)

    def progress(line: str) -> None:
        print(f"{_PREFIX}: {line}", file=sys.stderr, flush=True)

    try:
        try:
            entries = read_sums(args.sums)
        except InputError as e:
            print(f"{_PREFIX}: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"{_PREFIX}: cannot read {args.sums}: {_reason(e, timeout=args.timeout)}", file=sys.stderr)
            return 2
        try:
            present, downloaded = fetch_all(entries, dest=args.dest, trace_url=args.trace_url,
                                            results_url=args.results_url, timeout=args.timeout,
                                            progress=progress)
        except FetchError as e:
            print(f"{_PREFIX}: {e}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print(f"{_PREFIX}: interrupted; the files verified so far stay in {args.dest}, "
              f"run it again to fetch the rest", file=sys.stderr)
        return 130
    print(f"{present} files present, {downloaded} downloaded in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
