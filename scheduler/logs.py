"""Log lines a person can read and a log pipeline can parse.

Lines are structured: callers pass fields as ``extra={"fields": {...}}`` and
the formatter renders them as ``key=value`` pairs (text) or as keys of one
JSON object per line (``--log-format json``). Verbosity follows klog's ``--v``
(0-3 info, 4+ debug) unless ``--log-level`` names a level.

A line per decision would cost about as much CPU as the decision itself at
hundreds of pods a second, so ``DecisionLog`` writes the per-pod lines (with
every field) at debug level only, and at info level a summary at most once per
``interval``: pods scheduled and not scheduled since the last summary, and the
last pod's line with its fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Final, TextIO

__all__ = ["setup_logging", "level_from", "JsonFormatter", "TextFormatter", "DecisionLog", "SUMMARY"]

_DEBUG_VERBOSITY: Final = 4  # klog: --v=4 is "debug level verbosity"


def level_from(*, log_level: str | None, verbosity: int) -> int:
    """The logging level from ``--log-level`` (wins) or klog's ``--v``."""
    if log_level:
        level = logging.getLevelName(log_level.upper())
        if not isinstance(level, int):
            raise ValueError(f"--log-level must be one of debug, info, warning, error; got {log_level!r}")
        return level
    return logging.DEBUG if verbosity >= _DEBUG_VERBOSITY else logging.INFO


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        out.update(_fields(record))
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={json.dumps(v) if isinstance(v, str) and ' ' in v else v}"
                                   for k, v in fields.items())
        return line


def setup_logging(*, level: int = logging.INFO, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the ``vecsched`` loggers (and the root) for the command line."""
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format must be text or json, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("vecsched").setLevel(level)


SUMMARY: Final = "scheduling summary"
"""The message of ``DecisionLog``'s info line."""

Fields = Callable[[], dict[str, Any]]


class DecisionLog:
    """Per-pod decision lines at debug level; at info level one summary line per ``interval``.

    ``record`` is called once per decision with the line's message and a function that builds
    its fields, so that nothing is formatted unless a line is written. The first decision after
    a quiet ``interval`` is summarised at once; later ones within the interval are counted and
    summarised when it ends (a timer on the running loop), with the last one's fields::

        scheduling summary scheduled=412 failed=3 seconds=1.0 last="scheduled pod" pod=ns/name node=...
    """

    def __init__(self, *, logger: logging.Logger, interval: float = 1.0, outcomes: tuple[str, ...] = ("scheduled", "failed"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.outcomes = outcomes
        """Counts every summary carries, 0 or not (``record`` may add others)."""
        self.interval = interval
        """Seconds between two summary lines (1 s: a busy scheduler writes 60 lines a minute, not 30,000)."""
        self.clock = clock
        self._counts: dict[str, int] = {}
        self._last: tuple[str, Fields] | None = None
        self._since = 0.0
        self._written = -float("inf")
        self._timer: asyncio.TimerHandle | None = None

    def record(self, message: str, fields: Fields, *, outcome: str) -> None:
        """One decision: ``message`` ("scheduled pod") and its ``fields``, counted under ``outcome``
        ("scheduled", "failed")."""
        logger = self.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(message, extra={"fields": fields()})
        if not logger.isEnabledFor(logging.INFO):
            return
        if not self._counts:
            self._since = self.clock()
        self._counts[outcome] = self._counts.get(outcome, 0) + 1
        self._last = (message, fields)
        now = self.clock()
        if now - self._written >= self.interval:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to wake us: the next decision (or flush) writes it
                return
            self._timer = loop.call_later(self._written + self.interval - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write the summary of the decisions not yet summarised (nothing when there are none)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._counts or self._last is None:
            return
        message, fields = self._last
        now = self.clock()
        out: dict[str, Any] = {o: 0 for o in self.outcomes}
        out.update(self._counts)
        out["seconds"] = round(max(0.0, now - self._since), 3)
        out["last"] = message
        out.update(fields())
        self._counts, self._last, self._written = {}, None, now
        self.logger.info(SUMMARY, extra={"fields": out})
